"""What an acknowledgement means: the server killed with SIGKILL under load
keeps every event it answered 200 for; a full writer queue answers 503 with
Retry-After instead of holding the agent."""
import http.client
import json
import os
import sqlite3
import struct
import threading
import time
import uuid

import pytest

from conftest import AGENT_TOKEN, ROOT, Server, wait_for

POWERCUT = ROOT / "build" / "powercut.so"


def make_batch(client, n, seq):
    events = []
    for i in range(n):
        key = (client * 7 + i) % 40
        events.append({"id": str(uuid.uuid4()), "check": "disk", "item": f"/v{key}",
                       "state": "critical" if (seq + i) % 3 else "ok",
                       "summary": f"volume {key}", "observed_at":
                       time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return {"host": f"load{client}", "events": events}


def poster(port, client, acked, sent, stop):
    """Post batches on one keep-alive connection until stop or an error."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    seq = 0
    try:
        while not stop.is_set():
            batch = make_batch(client, 50, seq)
            ids = [e["id"] for e in batch["events"]]
            sent.append(ids)
            conn.request("POST", "/api/v1/events", body=json.dumps(batch),
                         headers={"Authorization": f"Bearer {AGENT_TOKEN}",
                                  "Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                acked.append(ids)
            seq += 1
    except (OSError, http.client.HTTPException):
        pass  # the server was killed under us
    finally:
        conn.close()


def stored_ids(db, ids):
    con = sqlite3.connect(db)
    try:
        have = set()
        for i in range(0, len(ids), 500):
            chunk = [uuid.UUID(x).bytes for x in ids[i:i + 500]]
            q = "SELECT id FROM events WHERE id IN (%s)" % ",".join("?" * len(chunk))
            have.update(str(uuid.UUID(bytes=row[0])) for row in con.execute(q, chunk))
        return have
    finally:
        con.close()


def test_sigkill_under_load_loses_nothing_acknowledged(tmp_path):
    srv = Server(tmp_path / "server").start()
    try:
        acked, sent, stop = [], [], threading.Event()
        threads = [threading.Thread(target=poster, args=(srv.port, c, acked, sent, stop))
                   for c in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: len(acked) >= 100, timeout=30, what="100 acknowledged batches")
        srv.kill()
        stop.set()
        for t in threads:
            t.join(timeout=15)
        srv.start()  # recovers the WAL like any restart

        acked_ids = [i for ids in acked for i in ids]
        have = stored_ids(srv.db, [i for ids in sent for i in ids])
        missing = [i for i in acked_ids if i not in have]
        assert missing == [], f"{len(missing)} acknowledged events lost"
        print(f"acknowledged {len(acked)} batches, sent {len(sent)}, stored "
              f"{len(have)} events")
        # batches in flight at the kill are whole or absent, never half
        for ids in sent:
            present = sum(i in have for i in ids)
            assert present in (0, len(ids)), f"a batch was stored in part: {present}"
        con = sqlite3.connect(srv.db)
        dup = con.execute("SELECT count(*) FROM (SELECT host_id, check_name, item"
                          " FROM tickets WHERE status NOT IN ('resolved', 'closed')"
                          " GROUP BY 1, 2, 3 HAVING count(*) > 1)").fetchone()[0]
        con.close()
        assert dup == 0
        assert srv.post_events(make_batch(9, 5, 0)).status == 200
    finally:
        srv.stop()


def test_sigterm_under_load_answers_or_refuses_and_exits_cleanly(tmp_path):
    srv = Server(tmp_path / "server").start()
    try:
        acked, sent, stop = [], [], threading.Event()
        threads = [threading.Thread(target=poster, args=(srv.port, c, acked, sent, stop))
                   for c in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: len(acked) >= 40, timeout=30, what="40 acknowledged batches")
        assert srv.stop() == 0  # SIGTERM: in-flight commits finish, exit 0
        stop.set()
        for t in threads:
            t.join(timeout=15)
        have = stored_ids(srv.db, [i for ids in sent for i in ids])
        assert all(i in have for ids in acked for i in ids)
        for ids in sent:
            assert sum(i in have for i in ids) in (0, len(ids))
        assert "received signal 15, stopping" in srv.log_text()
    finally:
        srv.stop()


def test_full_writer_queue_is_503_with_retry_after(tmp_path):
    srv = Server(tmp_path / "server",
                 extra="writer:\n  max_queue: 1\n").start()
    try:
        # hold SQLite's write lock: the writer's next BEGIN waits for it
        lock = sqlite3.connect(srv.db, isolation_level=None, timeout=10)
        lock.execute("BEGIN IMMEDIATE")
        results, batches = [], []

        def post(i):
            batch = make_batch(i, 3, 0)
            batches.append(batch)
            started = time.monotonic()
            r = srv.post_events(batch)
            results.append((r.status, r.headers.get("Retry-After"),
                            time.monotonic() - started, batch, r.body))

        threads = [threading.Thread(target=post, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        wait_for(lambda: any(r[0] == 503 for r in results), timeout=5,
                 what="a 503 while the writer is stalled")
        lock.execute("COMMIT")
        lock.close()
        for t in threads:
            t.join(timeout=20)
        busy = [r for r in results if r[0] == 503]
        ok = [r for r in results if r[0] == 200]
        assert len(busy) + len(ok) == 6, [r[0] for r in results]
        assert len(ok) >= 1
        print("statuses", sorted((r[0], round(r[2], 2)) for r in results))
        for status, retry, took, batch, body in busy:
            assert retry == "2"
            assert json.loads(body)["error"] == \
                "the collector is busy: its store queue is full; retry later"
            assert took < 2.0  # answered promptly, not after the stall
        refused = [e["id"] for r in busy for e in r[3]["events"]]
        accepted = [e["id"] for r in ok for e in r[3]["events"]]
        have = stored_ids(srv.db, refused + accepted)
        assert not (set(refused) & have)
        assert set(accepted) <= have
        metrics = srv.get("/metrics").body.decode()
        assert f'tocsin_writer_jobs_total{{result="refused"}} {len(busy)}' in metrics
    finally:
        srv.stop()


def test_queued_batches_are_bounded_by_bytes(tmp_path):
    """writer.max_queue_bytes: batches waiting for a stalled writer may hold
    that many request bytes; the next one is 503 at once, and the budget is
    given back as the waiting ones commit."""
    srv = Server(tmp_path / "server",
                 extra="writer:\n  max_queue: 1000\n  max_queue_bytes: 64KiB\n").start()
    try:
        lock = sqlite3.connect(srv.db, isolation_level=None, timeout=10)
        lock.execute("BEGIN IMMEDIATE")
        results = []

        def post(i):
            batch = make_batch(i, 60, 0)  # about 15 KiB each
            for e in batch["events"]:
                e["summary"] = "x" * 200
            r = srv.post_events(batch)
            results.append((r.status, r.headers.get("Retry-After"), r.body, batch))

        threads = [threading.Thread(target=post, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: sum(r[0] == 503 for r in results) >= 6, timeout=10,
                     what="the byte budget refusing batches")
            held = float([l for l in srv.get("/metrics").body.decode().splitlines()
                          if l.startswith("tocsin_writer_queue_bytes ")][0].split()[1])
            assert 30000 < held <= 64 * 1024, held
        finally:
            lock.execute("COMMIT")
            lock.close()
            for t in threads:
                t.join(timeout=20)
        busy = [r for r in results if r[0] == 503]
        ok = [r for r in results if r[0] == 200]
        assert len(busy) + len(ok) == 12
        assert 2 <= len(ok) <= 5, [r[0] for r in results]
        for status, retry, body, batch in busy:
            assert retry == "2"
            assert "(writer.max_queue_bytes); retry later" in json.loads(body)["error"]
        have = stored_ids(srv.db, [e["id"] for r in results for e in r[3]["events"]])
        assert have == {e["id"] for r in ok for e in r[3]["events"]}
        metrics = srv.get("/metrics").body.decode()
        assert "tocsin_writer_queue_bytes 0" in metrics
    finally:
        srv.stop()


def test_the_live_database_is_wal_with_full_synchronous_commits(tmp_path):
    """synchronous is a setting of the server's own connection, so the
    server reports it; journal_mode is the file's, so the test reads it."""
    srv = Server(tmp_path / "server").start()
    try:
        assert srv.post_events(make_batch(0, 3, 0)).status == 200
        con = sqlite3.connect(srv.db)
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        con.close()
        metrics = srv.get("/metrics").body.decode()
        assert 'tocsin_store_durability{journal_mode="wal",synchronous="full"} 1' in metrics
        assert "journal_mode=wal, synchronous=full" in srv.log_text()
    finally:
        srv.stop()


def power_cut_restore(directory):
    """Play back powercut.so's undo files (see tests/powercut/powercut.c),
    newest record first: each file is left as its last sync left it.  The
    -shm file holds nothing durable and goes, as after a real power cut."""
    for undo in directory.glob("*.undo"):
        data, records, pos, size = undo.read_bytes(), [], 0, None
        while pos < len(data):
            kind = data[pos:pos + 1]
            if kind == b"S" and pos + 9 <= len(data):
                (value,) = struct.unpack_from("=Q", data, pos + 1)
                size = value if size is None else size
                pos += 9
            elif kind == b"B" and pos + 17 <= len(data):
                off, n = struct.unpack_from("=QQ", data, pos + 1)
                if pos + 17 + n > len(data):
                    break  # cut mid-record: its write had not begun
                records.append((off, data[pos + 17:pos + 17 + n]))
                pos += 17 + n
            else:
                break
        target = undo.with_name(undo.name[:-len(".undo")])
        with open(target, "r+b") as f:
            for off, old in reversed(records):
                f.seek(off)
                f.write(old)
            if size is not None:
                f.truncate(size)
        undo.unlink()
    for shm in directory.glob("*-shm"):
        shm.unlink()


def power_cut_under_load(tmp_path, ignore_sync):
    """Acknowledged events, and those still there after a simulated power
    cut under load."""
    if not POWERCUT.exists():
        pytest.fail(f"{POWERCUT} is missing: make builds it (TEST_SHIMS)")
    srv = Server(tmp_path / "server")
    env = {"LD_PRELOAD": str(POWERCUT), "POWERCUT_DIR": str(srv.dir),
           # the shim comes before the sanitizer's runtime
           "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
    if ignore_sync:
        env["POWERCUT_IGNORE_SYNC"] = "1"
    srv.start(env=env)
    try:
        acked, sent, stop = [], [], threading.Event()
        threads = [threading.Thread(target=poster, args=(srv.port, c, acked, sent, stop))
                   for c in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: len(acked) >= 60, timeout=30, what="60 acknowledged batches")
        srv.kill()
        stop.set()
        for t in threads:
            t.join(timeout=15)
        undo = {u.name: u.stat().st_size for u in srv.dir.glob("*.undo")}
        assert undo, "the shim tracked no file"
        print(f"power cut after {len(acked)} acknowledged batches; undo bytes {undo}")
        power_cut_restore(srv.dir)
        srv.start()  # recovers from what the "disk" kept
        acked_ids = [i for ids in acked for i in ids]
        have = stored_ids(srv.db, [i for ids in sent for i in ids])
    finally:
        srv.stop()
    return acked_ids, have, sent


def test_a_power_cut_under_load_loses_nothing_acknowledged(tmp_path):
    acked_ids, have, sent = power_cut_under_load(tmp_path, ignore_sync=False)
    missing = [i for i in acked_ids if i not in have]
    assert missing == [], f"{len(missing)} acknowledged events lost in the power cut"
    for ids in sent:
        assert sum(i in have for i in ids) in (0, len(ids))


def test_the_power_cut_model_catches_a_missing_sync(tmp_path):
    """The control: with syncs that never reach the disk, the same test
    must see acknowledged events lost, or it could not catch a missing
    fsync."""
    acked_ids, have, _ = power_cut_under_load(tmp_path, ignore_sync=True)
    missing = [i for i in acked_ids if i not in have]
    print(f"without syncs: {len(missing)} of {len(acked_ids)} acknowledged events lost")
    assert len(missing) > 0


def queued_bytes(srv):
    for line in srv.get("/metrics").body.decode().splitlines():
        if line.startswith("tocsin_writer_queue_bytes "):
            return float(line.split()[1])
    return 0


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_a_waiting_batch_does_not_pin_its_raw_body(tmp_path):
    """A batch suspended until its commit keeps its parsed events, not the
    request body: 24 requests of 1 MiB (a small batch padded with
    whitespace) waiting on a held database must not hold 24 MiB."""
    srv = Server(tmp_path / "server", max_body="2MiB",
                 extra="writer:\n  max_queue_bytes: 1GiB\n")
    # freed memory goes back at once, so that RSS shows what is still held
    srv.start(env={"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
                   ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0"})
    try:
        lock = sqlite3.connect(srv.db, isolation_level=None, timeout=10)
        lock.execute("BEGIN IMMEDIATE")
        base = rss_kib(srv.proc.pid)
        codes = []

        def post(i):
            body = json.dumps(make_batch(i, 2, 0)).encode() + b" " * (1024 * 1024 - 4096)
            codes.append(srv.post_events(None, raw=body).status)

        threads = [threading.Thread(target=post, args=(i,)) for i in range(24)]
        try:
            for t in threads:
                t.start()
            wait_for(lambda: queued_bytes(srv) >= 24 * (1024 * 1024 - 4096),
                     what="24 MiB of batches waiting")
            held = rss_kib(srv.proc.pid) - base
        finally:
            lock.execute("COMMIT")
            lock.close()
            for t in threads:
                t.join(timeout=20)
        assert codes == [200] * 24
        print(f"24 waiting 1 MiB requests: server RSS +{held // 1024} MiB")
        assert held < 12 * 1024, f"the waiting requests hold {held // 1024} MiB"
    finally:
        srv.stop()
