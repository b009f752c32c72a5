"""SIGHUP applies the inventory, lifecycle: rules and topology: to the alert
lifecycle at once (a writer job swaps the deduplication's context), and
names what only a restart applies."""
import signal

from conftest import Server, wait_for
from lifecycle_helpers import event, find, post

ROUTER = """\
customers:
  acme: {name: ACME}
hosts:
  acme-router: {customer: acme, role: central}
"""

BEHIND = ROUTER + """\
  web01: {customer: acme, role: central, parent: acme-router}
"""


def reload(srv, extra, count=1):
    srv.write_config(extra=extra)
    srv.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: srv.log_text().count("SIGHUP: configuration reloaded") >= count,
             what="the reload")


def all_tickets(srv):
    r = srv.get("/api/v1/tickets?state=all&children=true")
    assert r.status == 200
    return r.json()["tickets"]


def test_a_host_added_behind_a_down_router_is_attached_after_a_reload(tmp_path):
    srv = Server(tmp_path / "server", extra=ROUTER).start()
    try:
        post(srv, "acme-router", event("heartbeat", "alive", "critical"))
        reload(srv, BEHIND)
        post(srv, "web01", event("heartbeat", "alive", "critical"))
        router = find(all_tickets(srv), "acme-router", "heartbeat", "alive")
        web01 = find(all_tickets(srv), "web01", "heartbeat", "alive")
        assert web01["parent_id"] == router["id"]
        assert [t["host"] for t in srv.tickets("open")] == ["acme-router"]
        assert "1 hosts in the inventory" not in srv.log_text()
        assert "2 hosts in the inventory" in srv.log_text()
    finally:
        srv.stop()


def test_lifecycle_rules_apply_after_a_reload(tmp_path):
    srv = Server(tmp_path / "server",
                 extra="lifecycle:\n  defaults:\n    confirm_after: 3\n").start()
    try:
        post(srv, "web01", event("disk", "/srv", "critical"))
        assert find(srv.tickets("all"), "web01", "disk", "/srv") is None
        reload(srv, "lifecycle:\n  rules:\n    - match: {check: disk}\n      confirm_after: 1\n")
        post(srv, "web02", event("disk", "/srv", "critical"))
        assert find(srv.tickets("all"), "web02", "disk", "/srv") is not None
        assert "1 lifecycle rules" in srv.log_text()
    finally:
        srv.stop()


NOTIFY = """\
notify:
  from: "Tocsin monitoring <tocsin@shop.example>"
  poll: 100ms
"""
RESTART_ONLY = ("lifecycle:\n  tick: 2s\n"
                "helpdesk:\n  categories: [telephony, managed-it]\n")


def named_for_a_restart(srv):
    """What the reloads so far said only a restart applies."""
    return [line.split("SIGHUP: ", 1)[1] for line in srv.log_text().splitlines()
            if line.endswith("; restart the server to apply it")]


def test_what_needs_a_restart_is_named(tmp_path):
    srv = Server(tmp_path / "server", extra=NOTIFY).start()
    try:
        # notify: and the helpdesk change too, but they reload: only the
        # tick is named (notify: was, before it reloaded)
        reload(srv, RESTART_ONLY + NOTIFY.replace("100ms", "200ms"))
        assert named_for_a_restart(srv) == \
            ["lifecycle.tick changed; restart the server to apply it"]
        log = srv.log_text()
        assert "SIGHUP: notify reloaded (" in log
        assert "helpdesk reloaded" in log
        # a reload that changes nothing says nothing of it
        reload(srv, RESTART_ONLY + NOTIFY.replace("100ms", "200ms"), count=2)
        assert len(named_for_a_restart(srv)) == 1
        assert srv.log_text().count("SIGHUP: notify reloaded (") == 2
    finally:
        srv.stop()
