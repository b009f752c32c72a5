"""What the trap listener does when the store refuses or lags: the writer
held up by another connection's lock on the real SQLite file, beyond
SQLite's busy timeout, and a stop while the writer's queue is full."""
import signal
import socket
import sqlite3

from conftest import wait_for
from trap_helpers import LINK_DOWN, TrapServer, capture, link_varbinds

COMMUNITY = "store-community"
HOSTS = f"sw:\n  snmp:\n    addresses: [127.0.0.1]\n    community: {COMMUNITY}\n"


def send_all(srv, packets):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for p in packets:
            s.sendto(p, ("127.0.0.1", srv.trap_port))


def udp_queue_empty(port):
    """Whether the kernel holds nothing for the socket on port (read it all)."""
    for line in open("/proc/net/udp").read().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            return int(fields[4].split(":")[1], 16) == 0
    return False


def test_a_job_the_store_refuses_is_tried_again_and_nothing_is_lost(tmp_path):
    """The reviewer's experiment: the lock held for longer than the writer's
    busy timeout (5 s) made the job fail, and its traps were lost for good."""
    srv = TrapServer(tmp_path / "srv", hosts=HOSTS).start()
    blocker = sqlite3.connect(srv.db, timeout=10, isolation_level=None)
    try:
        packets = [capture(LINK_DOWN, link_varbinds(i, f"ge{i}"), community=COMMUNITY)
                   for i in range(10)]
        blocker.execute("BEGIN IMMEDIATE")
        send_all(srv, packets)
        # /metrics waits for the store as well: the log says when it failed.
        wait_for(lambda: "trying again" in srv.log_text(), timeout=15,
                 what="the trap job to fail on the held lock")
        blocker.execute("ROLLBACK")
        srv.wait_metric("tocsin_traps_matched_total", 10, timeout=30)
        m = srv.metrics()
        assert m['tocsin_traps_dropped_total{reason="store_failed"}'] == 0
        assert m["tocsin_traps_store_retries_total"] >= 1
        assert len(srv.tickets()) == 10
        assert "they are lost" not in srv.log_text()
    finally:
        blocker.close()
        srv.stop()


def test_stopping_waits_for_room_at_the_writer_instead_of_dropping(tmp_path):
    """One trap per job and a writer queue of one: at a stop most batches
    still wait for the writer, which is held up; they must be stored, not
    dropped because the queue was full."""
    srv = TrapServer(tmp_path / "srv", hosts=HOSTS, traps="batch: 1\n")
    srv.config.write_text(srv.config.read_text() + "writer:\n  max_queue: 1\n")
    srv.start()
    blocker = sqlite3.connect(srv.db, timeout=10, isolation_level=None)
    try:
        packets = [capture(LINK_DOWN, link_varbinds(i, f"ge{i}"), community=COMMUNITY)
                   for i in range(6)]
        blocker.execute("BEGIN IMMEDIATE")
        send_all(srv, packets)
        wait_for(lambda: udp_queue_empty(srv.trap_port), what="the listener to read the traps")
        srv.proc.send_signal(signal.SIGTERM)
        # The HTTP server stops first: once it is gone, the listener stops.
        wait_for(lambda: not srv._healthy(), what="the server to stop serving HTTP")
        blocker.execute("ROLLBACK")
        assert srv.proc.wait(timeout=30) == 0
        srv.proc = None
        srv.log_fp.close()
        assert "they are lost" not in srv.log_text()
        assert srv.db_count("events") == 6
    finally:
        blocker.close()
        srv.stop()
