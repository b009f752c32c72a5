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
    try:
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
    finally:
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


TICKETS = "retention:\n  tickets: 2s\n  prune_every: 100ms\n"

# Every table that names a ticket, and its column.
TICKET_COLUMNS = [("events", "ticket_id"), ("journal", "ticket_id"),
                  ("hd_tickets", "ticket_id"), ("hd_tickets", "merged_into"),
                  ("hd_outbox", "ticket_id"), ("hd_external", "ticket_id"),
                  ("problems", "ticket_id"), ("tickets", "parent_id")]


def rows_naming(con, ticket_id):
    return {f"{t}.{c}": con.execute(f"SELECT count(*) FROM {t} WHERE {c} = ?",
                                    (ticket_id,)).fetchone()[0]
            for t, c in TICKET_COLUMNS}


def orphans(con):
    return {f"{t}.{c}": n for t, c in TICKET_COLUMNS
            if (n := con.execute(f"SELECT count(*) FROM {t} WHERE {c} NOT IN "
                                 "(SELECT id FROM tickets)").fetchone()[0])}


def ticket_of(srv, item):
    return max(t["id"] for t in srv.tickets() if t["item"] == item)


def test_old_closed_tickets_go_with_all_their_rows(tmp_path):
    from helpdesk_util import act
    srv = Server(tmp_path / "server", extra=TICKETS).start()
    try:
        srv.post_events({"host": "web01", "events": [event("/old", "critical")]})
        srv.post_events({"host": "web01", "events": [event("/old", "ok")]})
        old = ticket_of(srv, "/old")
        assert act(srv, old, {"action": "comment", "text": "disk swapped"}).status == 200
        r = act(srv, old, {"action": "close", "text": "done"})
        assert r.status == 200 and r.json()["status"] == "closed"
        srv.post_events({"host": "web01", "events": [event("/open", "critical")]})
        srv.post_events({"host": "web01", "events": [event("/res", "critical")]})
        srv.post_events({"host": "web01", "events": [event("/res", "ok")]})
        open_, resolved = ticket_of(srv, "/open"), ticket_of(srv, "/res")
        con = sqlite3.connect(srv.db)
        try:
            before = rows_naming(con, old)
            assert before["journal.ticket_id"] >= 3 and before["events.ticket_id"] == 2
            assert before["problems.ticket_id"] == 1

            # Two seconds after its last change the closed ticket goes, whole.
            wait_for(lambda: (metric(srv, "tocsin_retention_tickets_deleted_total") or 0) >= 1,
                     timeout=20, what="the closed ticket deleted")
            assert srv.get(f"/api/v1/tickets/{old}").status == 404
            assert all(n == 0 for n in rows_naming(con, old).values()), rows_naming(con, old)
            assert orphans(con) == {}
            assert con.execute("SELECT count(*) FROM problems WHERE item = '/old'"
                               " AND ticket_id IS NULL").fetchone()[0] == 1
            # Open and resolved tickets stay, however old: once both are past
            # the retention, a prune job more has left them.
            newest = con.execute("SELECT max(last_seen, opened_at, coalesce(resolved_at, 0))"
                                 " FROM tickets WHERE id = ?", (resolved,)).fetchone()[0]
            wait_for(lambda: time.time() * 1000 > newest + 2500, timeout=20, what="2s past")
            jobs = metric(srv, 'tocsin_retention_jobs_total{result="ok"}')
            wait_for(lambda: metric(srv, 'tocsin_retention_jobs_total{result="ok"}') > jobs,
                     timeout=20, what="another prune job")
            assert srv.ticket(open_)["status"] == "new"
            assert srv.ticket(resolved)["status"] == "resolved"
            assert metric(srv, "tocsin_retention_tickets_deleted_total") == 1

            # The problem again: a new ticket with a new id.
            srv.post_events({"host": "web01", "events": [event("/old", "critical")]})
            again = ticket_of(srv, "/old")
            assert again > max(old, open_, resolved)
            assert srv.ticket(again)["status"] == "new"
        finally:
            con.close()
    finally:
        srv.stop()


def test_a_bad_ticket_retention_is_refused_with_its_place(tmp_path):
    cfg = tmp_path / "server.yaml"
    cfg.write_text("listen: 127.0.0.1:0\nallow_plain_http: true\n"
                   "auth:\n  tokens:\n    - {name: a, token: agent-token-0123456789, role: agent}\n"
                   "retention:\n  tickets: 10ms\n")
    r = subprocess.run([binary("tocsin-server"), "--config", str(cfg), "--check-config"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert (f"{cfg}:7:12: retention.tickets: must be 0 (keep for ever) or between 1s"
            " and 3650d") in r.stderr, r.stderr
