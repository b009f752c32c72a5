"""The alert lifecycle against what technicians do with its tickets, all
through the real server and its real actions API: a recovery happens once
per stretch (the routine ok results that follow do not undo a
technician's start or reopen), a ticket a technician resolved comes back
as new, and one a technician had acknowledged comes back acknowledged."""
import pytest

from conftest import TECH_TOKEN
from lifecycle_helpers import event, find, post, start_server

RULES = """
lifecycle:
  tick: 100ms
  rules:
    - match: {check: raid}
      on_recovery: review
"""


@pytest.fixture
def server(tmp_path):
    srv = start_server(tmp_path, RULES)
    yield srv
    srv.stop()


def act(server, ticket_id, body):
    r = server.request("POST", f"/api/v1/tickets/{ticket_id}/actions", body=body,
                       token=TECH_TOKEN)
    assert r.status == 200, r.body
    return r.json()


def journal(server, ticket_id):
    return [(j["actor"], j["action"], j["new"]) for j in server.ticket(ticket_id)["journal"]]


def test_routine_oks_leave_a_review_in_progress(server):
    post(server, "db01", event("raid", "md0", "critical"))
    post(server, "db01", event("raid", "md0", "ok"))
    t = find(server.tickets("all"), "db01", "raid", "md0")
    assert t["status"] == "recovered"
    assert act(server, t["id"], {"action": "start", "text": "looking at it"})["status"] == "in_progress"
    # the agent goes on reporting ok every interval: that is no recovery
    post(server, "db01", event("raid", "md0", "ok"))
    post(server, "db01", event("raid", "md0", "ok"))
    assert server.ticket(t["id"])["status"] == "in_progress", journal(server, t["id"])
    # the next real problem and recovery does move it again
    post(server, "db01", event("raid", "md0", "critical"))
    post(server, "db01", event("raid", "md0", "ok"))
    assert server.ticket(t["id"])["status"] == "recovered"


def test_a_technicians_reopen_sticks_until_the_next_recovery(server):
    post(server, "web01", event("disk", "/srv", "critical"))
    post(server, "web01", event("disk", "/srv", "ok"))
    t = find(server.tickets("all"), "web01", "disk", "/srv")
    assert t["status"] == "resolved"
    assert act(server, t["id"], {"action": "reopen", "text": "not really fixed"})["status"] == "in_progress"
    post(server, "web01", event("disk", "/srv", "ok"))
    post(server, "web01", event("disk", "/srv", "ok"))
    t = server.ticket(t["id"])
    assert t["status"] == "in_progress", journal(server, t["id"])
    assert [a for a in journal(server, t["id"]) if a[1] == "resolved"] == [("tocsin", "resolved", "ok")]
    post(server, "web01", event("disk", "/srv", "critical"))
    post(server, "web01", event("disk", "/srv", "ok"))
    assert server.ticket(t["id"])["status"] == "resolved"


def test_a_ticket_a_technician_resolved_comes_back_new(server):
    post(server, "db01", event("raid", "md0", "critical"))
    t = find(server.tickets("all"), "db01", "raid", "md0")
    act(server, t["id"], {"action": "acknowledge"})
    post(server, "db01", event("raid", "md0", "ok"))
    assert server.ticket(t["id"])["status"] == "recovered"
    act(server, t["id"], {"action": "resolve", "note": "reviewed, fine"})
    # back within reopen_within (1 h by default): the same ticket, as new
    r = post(server, "db01", event("raid", "md0", "critical"))
    assert r["tickets_opened"] == 0
    assert find(server.tickets("open"), "db01", "raid", "md0")["id"] == t["id"]
    t = server.ticket(t["id"])
    assert t["status"] == "new"
    assert journal(server, t["id"])[-1] == ("tocsin", "reopened", "new")


def test_an_acknowledged_ticket_comes_back_acknowledged(server):
    post(server, "db01", event("raid", "md0", "critical"))
    t = find(server.tickets("all"), "db01", "raid", "md0")
    assert act(server, t["id"], {"action": "acknowledge"})["status"] == "acknowledged"
    post(server, "db01", event("raid", "md0", "ok"))
    assert server.ticket(t["id"])["status"] == "recovered"
    r = post(server, "db01", event("raid", "md0", "critical"))
    assert r["tickets_opened"] == 0
    assert find(server.tickets("open"), "db01", "raid", "md0")["id"] == t["id"]
    assert server.ticket(t["id"])["status"] == "acknowledged"
    # and one resolved by the system (auto-resolve) comes back as it was too
    post(server, "web01", event("disk", "/", "critical"))
    d = find(server.tickets("all"), "web01", "disk", "/")
    act(server, d["id"], {"action": "acknowledge"})
    post(server, "web01", event("disk", "/", "ok"))
    assert server.ticket(d["id"])["status"] == "resolved"
    post(server, "web01", event("disk", "/", "critical"))
    assert server.ticket(d["id"])["status"] == "acknowledged"
