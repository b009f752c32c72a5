"""The read side of the API and /metrics run on a connection of their own,
so that they answer while the writer is in the middle of a group commit
(here: stuck on the database's write lock, which another process holds),
instead of waiting for it."""
import sqlite3
import threading
import time

from conftest import ADMIN_TOKEN, Server, wait_for
from lifecycle_helpers import event, post


def test_reads_do_not_wait_for_a_stuck_writer(tmp_path):
    srv = Server(tmp_path / "server").start()
    try:
        post(srv, "web01", event("disk", "/srv", "critical"))
        ticket = srv.tickets("open")[0]
        lock = sqlite3.connect(srv.db, isolation_level=None, timeout=10)
        lock.execute("BEGIN IMMEDIATE")  # the writer's next BEGIN waits (5 s)
        done = []
        poster = threading.Thread(
            target=lambda: done.append(srv.post_events(
                {"host": "web02", "events": [event("disk", "/", "critical")]}).status))
        poster.start()
        try:
            wait_for(lambda: "tocsin_writer_queue 0" in srv.get("/metrics").body.decode()
                     and not done, what="the writer to hold the batch")
            took = {}
            for path, token in (("/metrics", None), ("/api/v1/tickets", None),
                                (f"/api/v1/tickets/{ticket['id']}", None),
                                ("/api/v1/silences", None),
                                ("/api/v1/credentials", ADMIN_TOKEN),
                                ("/api/v1/enrollment-tokens", ADMIN_TOKEN),
                                ("/api/v1/audit", ADMIN_TOKEN)):
                started = time.monotonic()
                r = srv.get(path, **({"token": token} if token else {}))
                took[path] = time.monotonic() - started
                assert r.status == 200, (path, r.body)
            assert not done, "the batch committed although the writer was held"
            assert max(took.values()) < 1.0, took
        finally:
            lock.execute("COMMIT")
            lock.close()
            poster.join()
        assert done == [200]
        # what committed meanwhile is visible to the next read at once
        assert len(srv.tickets("open")) == 2
    finally:
        srv.stop()
