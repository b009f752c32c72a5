"""Event retention in the real server: old events are pruned by the
writer's timer jobs, an open ticket keeps its latest, the metrics count
it, and a retention shorter than the agents' resend window is refused."""
import re
import sqlite3
import subprocess
import time
import uuid

from conftest import Server, binary, wait_for

RETENTION = ("retention:\n  events: 2s\n  event_ids: 1s\n  prune_every: 100ms\n"
             "  keep_per_ticket: 2\n")


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def event(item, state, event_id=None):
    return {"id": event_id or str(uuid.uuid4()), "check": "disk", "item": item,
            "state": state, "summary": f"{item} is {state}", "observed_at": now()}


def metric(srv, name):
    text = srv.get("/metrics").body.decode()
    m = re.search(rf"^{re.escape(name)} (\d+)", text, re.M)
    return int(m.group(1)) if m else None


def test_old_events_are_pruned_and_an_open_ticket_keeps_its_latest(tmp_path):
    srv = Server(tmp_path / "server", extra=RETENTION).start()
    ok_ids = [str(uuid.uuid4()) for _ in range(4)]
    r = srv.post_events({"host": "web01", "events":
                         [event("/srv", "critical") for _ in range(5)] +
                         [event("/var", "ok", i) for i in ok_ids]})
    assert r.status == 200 and r.json()["accepted"] == 9
    (ticket,) = srv.tickets()
    assert srv.db_count("events") == 9

    # Two seconds on, the timer's jobs delete all but the ticket's latest two.
    wait_for(lambda: (metric(srv, "tocsin_retention_events_deleted_total") or 0) >= 7,
             timeout=20, what="seven events pruned")
    assert srv.db_count("events") == 2
    t = srv.ticket(ticket["id"])
    assert t["occurrence_count"] == 5
    assert len(t["occurrences"]) == 2
    assert metric(srv, "tocsin_retention_events_kept_total") >= 2
    assert metric(srv, 'tocsin_retention_jobs_total{result="ok"}') >= 1

    # A resend of a pruned event is new again: what retention.event_ids is for.
    r = srv.post_events({"host": "web01", "events": [event("/var", "ok", ok_ids[0])]})
    assert r.json()["accepted"] == 1
    # Resolved, the ticket's kept events go with the next look behind the
    # cursor (hourly); they are still there now.
    srv.post_events({"host": "web01", "events": [event("/srv", "ok")]})
    con = sqlite3.connect(srv.db)
    try:
        kept = con.execute("SELECT count(*) FROM events WHERE ticket_id = ?",
                           (ticket["id"],)).fetchone()[0]
    finally:
        con.close()
    assert kept == 3
    srv.stop()


def test_retention_shorter_than_the_resend_window_is_refused(tmp_path):
    cfg = tmp_path / "server.yaml"
    cfg.write_text("listen: 127.0.0.1:0\nallow_plain_http: true\n"
                   "auth:\n  tokens:\n    - {name: a, token: agent-token-0123456789, role: agent}\n"
                   "retention:\n  events: 1d\n  keep_per_ticket: -1\n")
    r = subprocess.run([binary("tocsin-server"), "--config", str(cfg), "--check-config"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    line = next((l for l in r.stderr.splitlines() if l.startswith(f"{cfg}:7:11: ")), "")
    assert line.startswith(f"{cfg}:7:11: retention.events: 1 d is shorter than "
                           "retention.event_ids (7 d): an event's id is its idempotency key"), r.stderr
    assert f"{cfg}:8:20: retention.keep_per_ticket" in r.stderr
