"""The helpdesk workflow on the real server: ticket fields from routing and
contracts, technicians' actions with their journal, the SLA clock from the
journal, and every refusal with a clear message."""
import subprocess
import time

import pytest

from conftest import AGENT_TOKEN, ROOT, TECH_TOKEN, Server, binary, http, wait_for
from helpdesk_util import BOB_TOKEN, act, event, helpdesk_extra, open_ticket, post


@pytest.fixture
def desk(tmp_path):
    srv = Server(tmp_path / "server", extra=helpdesk_extra()).start()
    yield srv
    srv.stop()


def test_automatic_ticket_gets_routed_fields_and_due_dates(desk):
    tid = open_ticket(desk, "web01", "critical")
    t = desk.ticket(tid)
    # A central host of a customer with a contract, no rule matches.
    assert t["customer"] == "acme" and t["contract"] == "fast"
    assert (t["queue"], t["level"], t["category"]) == ("managed-it", 1, "managed-it")
    assert (t["impact"], t["urgency"], t["priority"]) == ("high", "high", "P1")
    assert t["assignee"] is None and t["status"] == "new"
    assert t["knowledge_hint"] == "Runbook: https://wiki.shop.example/disk"
    assert t["description"] == "/srv is critical"
    assert t["sla"]["response"]["target_s"] == 3600
    assert t["sla"]["response"]["state"] == "running"
    assert t["sla"]["resolution"]["target_s"] == 86400
    assert t["response_due"] == t["sla"]["response"]["due"]
    assert t["history"] == []

    # A rule on a tag routes backups to the data centre, level 2.
    t = desk.ticket(open_ticket(desk, "backup01", "warning"))
    assert (t["queue"], t["level"], t["category"]) == ("data-centre", 2, "data-centre")
    assert (t["impact"], t["urgency"], t["priority"]) == ("high", "medium", "P2")
    # Decentral devices go to the shop with less impact: central outranks them.
    t = desk.ticket(open_ticket(desk, "printer01", "critical"))
    assert (t["queue"], t["impact"], t["urgency"], t["priority"]) == ("shop", "low", "low", "P4")
    # An unknown host still gets a ticket with defaults and no contract.
    t = desk.ticket(open_ticket(desk, "stranger", "critical"))
    assert t["customer"] is None and t["contract"] is None
    assert t["sla"]["response"] is None and t["response_due"] is None
    # The list shows the fields too.
    listed = {x["id"]: x for x in desk.tickets("open")}
    assert listed[tid]["priority"] == "P1" and listed[tid]["queue"] == "managed-it"


def journal_of(server, tid):
    return [(j["actor"], j["action"], j["old"], j["new"]) for j in server.ticket(tid)["journal"]]


def test_actions_walk_the_states_and_journal_every_change(desk):
    tid = open_ticket(desk, "web01", "critical")
    r = act(desk, tid, {"action": "acknowledge"})
    assert r.status == 200, r.body
    assert r.json()["status"] == "acknowledged"
    # The response clock stopped at the acknowledgement: the target is met.
    assert r.json()["sla"]["response"]["state"] == "met"

    r = act(desk, tid, {"action": "assign", "assignee": "bob", "actor": "mallory"})
    assert r.status == 200 and r.json()["assignee"] == "bob"
    r = act(desk, tid, {"action": "comment", "text": "looked at it", "visibility": "internal"})
    assert r.status == 200
    r = act(desk, tid, {"action": "ask", "text": "May we delete /srv/old?", "party": "customer"})
    assert r.status == 200 and r.json()["status"] == "waiting"
    assert r.json()["sla"]["resolution"]["state"] == "paused"
    assert r.json()["sla"]["resolution"]["due"] is None
    r = act(desk, tid, {"action": "start"})
    assert r.json()["status"] == "in_progress"
    assert r.json()["sla"]["resolution"]["state"] == "running"
    r = act(desk, tid, {"action": "escalate", "text": "needs the storage people"})
    assert r.json()["level"] == 2
    r = act(desk, tid, {"action": "urgency", "urgency": "low"})
    assert (r.json()["urgency"], r.json()["priority"]) == ("low", "P2")
    # A new priority gives new targets from the opening on.
    assert r.json()["sla"]["response"]["target_s"] == 3600
    r = act(desk, tid, {"action": "priority", "priority": "P1"})
    assert r.json()["priority"] == "P1"
    # Set by hand, the priority no longer follows impact and urgency.
    r = act(desk, tid, {"action": "impact", "impact": "low"})
    assert (r.json()["impact"], r.json()["priority"]) == ("low", "P1")
    r = act(desk, tid, {"action": "resolve", "note": "deleted old backups"}, token=BOB_TOKEN)
    assert r.status == 200 and r.json()["status"] == "resolved"
    assert r.json()["sla"]["resolution"]["state"] == "met"
    r = act(desk, tid, {"action": "close"})
    assert r.json()["status"] == "closed"
    r = act(desk, tid, {"action": "reopen", "text": "it is back"})
    assert r.json()["status"] == "in_progress" and r.json()["resolved_at"] is None

    journal = journal_of(desk, tid)
    # The actor is the authenticated principal, never a name from the body.
    assert ("alice", "assignee", None, "bob") in journal
    assert all(actor != "mallory" for actor, *_ in journal)
    for entry in [("alice", "status", "new", "acknowledged"),
                  ("alice", "comment", None, "internal"),
                  ("alice", "ask", None, "customer"),
                  ("alice", "status", "acknowledged", "waiting"),
                  ("alice", "status", "waiting", "in_progress"),
                  ("alice", "level", "1", "2"),
                  ("alice", "urgency", "high", "low"),
                  ("alice", "priority", "P1", "P2"),
                  ("alice", "priority", "P2", "P1"),
                  ("alice", "impact", "high", "low"),
                  ("bob", "status", "in_progress", "resolved"),
                  ("alice", "status", "resolved", "closed"),
                  ("alice", "status", "closed", "in_progress")]:
        assert entry in journal, (entry, journal)


def test_unassign_leaves_a_ticket_to_nobody(desk):
    tid = open_ticket(desk, "web01", "critical")
    r = act(desk, tid, {"action": "unassign"})
    assert r.status == 409
    assert r.json()["error"] == f"cannot unassign ticket {tid}: it has no assignee"
    assert act(desk, tid, {"action": "assign", "assignee": "bob"}).status == 200
    r = act(desk, tid, {"action": "unassign", "text": "bob is on leave"})
    assert r.status == 200, r.body
    assert r.json()["assignee"] is None
    assert [(j["actor"], j["old"], j["new"], j["text"]) for j in desk.ticket(tid)["journal"]
            if j["action"] == "assignee"] == [("alice", None, "bob", None),
                                              ("alice", "bob", None, "bob is on leave")]
    # The list's filter for tickets without an assignee finds it again.
    assert tid in [t["id"] for t in desk.get("/api/v1/tickets?assignee=").json()["tickets"]]
    # Only while open, like assign.
    assert act(desk, tid, {"action": "assign", "assignee": "bob"}).status == 200
    assert act(desk, tid, {"action": "resolve", "note": "done"}).status == 200
    r = act(desk, tid, {"action": "unassign"})
    assert r.status == 409 and "and unassign needs new" in r.json()["error"]


def test_refusals_are_clear(desk):
    tid = open_ticket(desk, "web01", "critical")
    url = f"{desk.url}/api/v1/tickets"
    r = act(desk, tid, {"action": "close"})
    assert r.status == 409
    assert r.json()["error"] == (f"cannot close ticket {tid}: it is new, and close needs "
                                 "recovered, resolved")
    assert act(desk, tid, {"action": "acknowledge"}).status == 200
    r = act(desk, tid, {"action": "acknowledge"})
    assert r.status == 409 and "it is acknowledged, and acknowledge needs new" in r.json()["error"]
    r = act(desk, 9999, {"action": "acknowledge"})
    assert r.status == 404 and r.json()["error"] == "no ticket 9999"
    r = act(desk, tid, {"action": "dance"})
    assert r.status == 400 and r.json()["error"].startswith("action: 'dance' is not one of")
    r = act(desk, tid, {"action": "resolve"})
    assert r.status == 400 and r.json()["error"] == "note: needed for resolve"
    r = act(desk, tid, {"action": "assign", "assignee": "nobody"})
    assert r.status == 400 and "'nobody' is neither under people: nor" in r.json()["error"]
    r = act(desk, tid, {"action": "priority", "priority": "P9"})
    assert r.status == 400 and r.json()["error"] == "priority: 'P9' is not one of P1, P2, P3, P4"
    r = act(desk, tid, {"action": "comment", "text": "x", "visibility": "everyone"})
    assert r.status == 400 and "visibility: 'everyone' is not internal or customer" in r.json()["error"]
    r = act(desk, tid, {"action": "merge", "into": tid})
    assert r.status == 400 and "cannot be merged into itself" in r.json()["error"]
    r = http("POST", f"{url}/{tid}/actions", body=b"{\"action\": ", token=TECH_TOKEN)
    assert r.status == 400 and "malformed JSON at line 1" in r.json()["error"]
    r = http("POST", f"{url}/abc/actions", body=b"{}", token=TECH_TOKEN)
    assert r.status == 400 and "'abc' is not a ticket id" in r.json()["error"]
    # Agents may post events, not work tickets; nobody acts anonymously.
    r = act(desk, tid, {"action": "start"}, token=AGENT_TOKEN)
    assert r.status == 403
    r = http("POST", f"{url}/{tid}/actions", body=b"{\"action\":\"start\"}")
    assert r.status == 401
    for _ in range(2):
        assert act(desk, tid, {"action": "escalate"}).status == 200
    r = act(desk, tid, {"action": "escalate"})
    assert r.status == 409 and "already at level 3, the last" in r.json()["error"]
    # Nothing refused left a trace in the journal.
    assert [j["action"] for j in desk.ticket(tid)["journal"]] == [
        "opened", "status", "level", "level"]


def test_merge_duplicates_and_reopen_rules(desk):
    a = open_ticket(desk, "web01", "critical", item="/srv")
    b = open_ticket(desk, "web01", "critical", item="/var")
    r = act(desk, b, {"action": "merge", "into": a, "text": "same disk"})
    assert r.status == 200, r.body
    assert r.json()["status"] == "closed" and r.json()["merged_into"] == a
    assert ("alice", "merged", None, str(b)) in journal_of(desk, a)
    r = act(desk, b, {"action": "reopen"})
    assert r.status == 409 and f"it was merged into ticket {a}" in r.json()["error"]
    r = act(desk, a, {"action": "merge", "into": 4242})
    assert r.status == 404 and "into: no ticket 4242" in r.json()["error"]
    # A resolved ticket cannot reopen while another is open for its problem.
    assert act(desk, a, {"action": "resolve", "note": "cleaned"}).status == 200
    c = open_ticket(desk, "web01", "critical", item="/srv")
    assert c != a
    r = act(desk, a, {"action": "reopen"})
    assert r.status == 409 and "another ticket is open for the same problem" in r.json()["error"]
    # The new ticket for the same host and check shows the earlier ones.
    history = desk.ticket(c)["history"]
    assert [(h["id"], h["resolution"]) for h in history][:1] == [(a, "cleaned")]


def test_sla_warning_breach_and_auto_close(tmp_path):
    srv = Server(tmp_path / "server", extra=helpdesk_extra(
        response="1500ms", resolution="60s", warn_at="50%", close_after="1s")).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        wait_for(lambda: any(j["action"] == "sla_warning" for j in srv.ticket(tid)["journal"]),
                 what="the response warning")
        t = wait_for(lambda: (lambda t: t if t["overdue"] else None)(srv.ticket(tid)),
                     what="the ticket to become overdue")
        assert t["sla"]["response"]["state"] == "overdue"
        assert t["sla"]["response"]["breached"] is True
        journal = [(j["actor"], j["action"], j["new"]) for j in t["journal"]]
        assert ("tocsin", "sla_warning", "response") in journal
        assert ("tocsin", "overdue", "response") in journal
        # A late acknowledgement stops the clock, but it stays breached.
        t = act(srv, tid, {"action": "acknowledge"}).json()
        assert t["sla"]["response"]["state"] == "breached"
        # Resolved tickets close by themselves after close_after.
        assert act(srv, tid, {"action": "resolve", "note": "fixed"}).status == 200
        t = wait_for(lambda: (lambda t: t if t["status"] == "closed" else None)(srv.ticket(tid)),
                     what="the automatic close")
        assert t["journal"][-1]["actor"] == "tocsin"
        assert "closed automatically" in t["journal"][-1]["text"]
    finally:
        srv.stop()



def check_config(config):
    return subprocess.run([binary("tocsin-server"), "--config", str(config), "--check-config"],
                          capture_output=True, text=True, timeout=30)


def test_calendar_errors_name_file_line_and_column(tmp_path):
    srv = Server(tmp_path / "server")
    dropin = tmp_path / "server" / "server.d"
    dropin.mkdir()
    (dropin / "40-contracts.yaml").write_text(
        "contracts:\n"
        "  broken:\n"
        "    calendar:\n"
        "      timezone: Europe/Springfield\n"
        "      hours:\n"
        "        mon-fri: 17:00-08:00\n"
        "        sun: 9-5\n"
        "      holidays: [2026-13-01]\n"
        "      holidays_file: feiertage.ics\n")
    (dropin / "feiertage.ics").write_text(
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:2026XMAS\nEND:VEVENT\n")
    r = check_config(srv.config)
    assert r.returncode == 2
    f = dropin / "40-contracts.yaml"
    assert (f"{f}:4:17: contracts.broken.calendar.timezone: unknown time zone "
            "'Europe/Springfield'") in r.stderr
    assert (f"{f}:6:18: contracts.broken.calendar.hours.mon-fri: '17:00-08:00' ends "
            "before it starts") in r.stderr
    assert f"{f}:7:14: contracts.broken.calendar.hours.sun: '9-5' is not a range" in r.stderr
    assert f"{f}:8:18: contracts.broken.calendar.holidays[0]: '2026-13-01' is not a date" in r.stderr
    assert (f"{f}:9:22: contracts.broken.calendar.holidays_file: {dropin}/feiertage.ics:3: "
            "'2026XMAS' is not a date") in r.stderr


def test_recurring_holidays_load_and_unsupported_rules_name_their_line(tmp_path):
    """A public-holiday file with RRULEs is accepted by --check-config;
    one with a part outside the subset is refused with file:line."""
    srv = Server(tmp_path / "server")
    dropin = tmp_path / "server" / "server.d"
    dropin.mkdir()
    contract = ("contracts:\n"
                "  yearly:\n"
                "    calendar:\n"
                "      timezone: Europe/Berlin\n"
                "      hours: {mon-fri: 08:00-17:00}\n"
                "      holidays: [{date: \"12-31\", every: year}]\n"
                "      holidays_file: feiertage.ics\n")
    (dropin / "40-contracts.yaml").write_text(contract)
    (dropin / "feiertage.ics").write_text(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Weihnachten\r\n"
        "DTSTART;VALUE=DATE:20261224\r\nDTEND;VALUE=DATE:20261227\r\n"
        "RRULE:FREQ=YEARLY\r\nEXDATE;VALUE=DATE:20301224\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261126\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH;UNTIL=20401231\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n")
    r = check_config(srv.config)
    assert r.returncode == 0, r.stderr

    (dropin / "feiertage.ics").write_text(
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261130\n"
        "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=MO;BYSETPOS=-1\nEND:VEVENT\n")
    r = check_config(srv.config)
    assert r.returncode == 2
    assert (f"{dropin}/feiertage.ics:4: RRULE: BYSETPOS is not supported") in r.stderr


def test_shipped_examples_are_valid():
    r = check_config(ROOT / "conf.d" / "server.yaml")
    assert r.returncode == 0, r.stderr


def test_a_worse_check_state_raises_the_urgency(desk):
    tid = open_ticket(desk, "web01", "warning")
    t = desk.ticket(tid)
    assert (t["urgency"], t["priority"]) == ("medium", "P2")
    # The disk goes from warning to critical: more urgent, a higher priority.
    post(desk, event("web01", "critical"))
    t = desk.ticket(tid)
    assert (t["urgency"], t["priority"]) == ("high", "P1")
    journal = [(j["actor"], j["action"], j["old"], j["new"]) for j in t["journal"]]
    assert ("tocsin", "urgency", "medium", "high") in journal
    assert ("tocsin", "priority", "P2", "P1") in journal
    # Easing again lowers nothing.
    post(desk, event("web01", "warning"))
    assert desk.ticket(tid)["urgency"] == "high"

    # Set by hand, the urgency stays.
    other = open_ticket(desk, "web01", "warning", item="/var")
    assert act(desk, other, {"action": "urgency", "urgency": "low"}).status == 200
    post(desk, event("web01", "critical", item="/var"))
    assert desk.ticket(other)["urgency"] == "low"
    # A routing rule that fixes the urgency (decentral devices: low) holds too.
    printer = open_ticket(desk, "printer01", "warning")
    post(desk, event("printer01", "critical"))
    assert desk.ticket(printer)["urgency"] == "low"


def test_a_new_priority_takes_back_marks_its_clocks_no_longer_justify(tmp_path):
    srv = Server(tmp_path / "server", extra=helpdesk_extra(
        response="1500ms", resolution="60s", warn_at="50%")).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        wait_for(lambda: srv.ticket(tid)["overdue"], what="the response breach")
        # P3 answers within an hour: 1.5 s is far from overdue or a warning.
        t = act(srv, tid, {"action": "priority", "priority": "P3"}).json()
        assert t["sla"]["response"]["target_s"] == 3600
        assert t["overdue"] is False
        assert t["sla"]["response"]["state"] == "running"
        # Back to P1: overdue again, with the timer's journal line and mail.
        t = act(srv, tid, {"action": "priority", "priority": "P1"}).json()
        wait_for(lambda: srv.ticket(tid)["overdue"], what="the breach again")
        overdue = [j for j in srv.ticket(tid)["journal"] if j["action"] == "overdue"]
        assert len(overdue) == 2
    finally:
        srv.stop()


def test_history_prefers_the_technicians_resolution_note(desk):
    first = open_ticket(desk, "web01", "critical")
    assert act(desk, first, {"action": "resolve", "note": "replaced the disk"}).status == 200
    assert act(desk, first, {"action": "reopen", "text": "still red"}).status == 200
    # The agent's ok summary resolves it afterwards, and it is closed.
    post(desk, event("web01", "ok", summary="/srv is fine: 20% used"))
    assert desk.ticket(first)["status"] == "resolved"
    assert act(desk, first, {"action": "close"}).status == 200
    second = open_ticket(desk, "web01", "critical")
    assert second != first
    history = desk.ticket(second)["history"]
    assert [(h["id"], h["resolution"]) for h in history] == [(first, "replaced the disk")]


def test_the_timer_runs_no_job_while_nothing_is_due(desk):
    open_ticket(desk, "web01", "critical")  # its first reminder is 45 min away

    def jobs():
        for line in desk.get("/metrics").body.decode().splitlines():
            if line.startswith("tocsin_helpdesk_timer_jobs_total "):
                return float(line.split()[1])
        raise AssertionError("no tocsin_helpdesk_timer_jobs_total")

    # helpdesk.tick is 100ms: ten ticks and more, and not one job.
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:
        assert jobs() == 0
        time.sleep(0.1)
