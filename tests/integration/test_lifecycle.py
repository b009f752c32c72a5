"""Lifecycle rules against the real server: confirm (by count, across a
real SIGKILL, and by duration through the real timer), flapping and its
calm-down, reopen within and after the window, recovered for review, and
the metrics that count all of it."""
import datetime
import signal
import time

import pytest

from conftest import wait_for
from lifecycle_helpers import event, find, metric, now, post, start_server

RULES = """
lifecycle:
  tick: 100ms
  rules:
    - match: {check: http, host: web02}
      flap_threshold: 4
      flap_window: 2s
    - match: {check: http}
      flap_threshold: 4
      flap_window: 10m
    - match: {check: disk}
      confirm_after: 3
    - match: {check: backup}
      confirm_after: 0
      confirm_for: 1s
    - match: {check: svc}
      reopen_within: 1s
    - match: {check: raid}
      on_recovery: review
"""


@pytest.fixture
def server(tmp_path):
    srv = start_server(tmp_path, RULES)
    yield srv
    srv.stop()


def minutes_ago(m):
    return now() - datetime.timedelta(minutes=m)


def test_confirm_after_three_results_survives_a_kill(server):
    r = post(server, "web01", event("disk", "/srv", "critical"), event("disk", "/srv", "critical"))
    assert r["tickets_opened"] == 0
    assert server.tickets("all") == []
    assert metric(server, "tocsin_problems_waiting", 'phase="unconfirmed"') == 1
    # the count is on disk: a killed server does not forget it
    server.stop(signal.SIGKILL)
    server.start()
    r = post(server, "web01", event("disk", "/srv", "critical"))
    assert r["tickets_opened"] == 1
    t = server.tickets("open")[0]
    assert t["occurrence_count"] == 3
    assert [j["action"] for j in server.ticket(t["id"])["journal"]] == ["opened", "confirmed"]
    assert metric(server, "tocsin_problems_waiting", 'phase="unconfirmed"') == 0


def test_confirm_for_a_duration_opens_by_the_timer(server):
    # one report (a trap, say), nothing after it: the timer confirms it
    post(server, "nas", event("backup", "/srv/backup", "critical", "last backup 3 days old"))
    assert server.tickets("all") == []
    t = wait_for(lambda: server.tickets("open"), timeout=10, what="the timer to confirm")[0]
    assert (t["host"], t["check"]) == ("nas", "backup")
    assert t["summary"] == "last backup 3 days old"


def test_flapping_is_one_ticket_and_calms_down(server):
    states = ["critical", "ok", "critical", "ok", "critical", "ok", "critical", "ok"]
    for i, s in enumerate(states):
        post(server, "web01", event("http", "/", s, observed=minutes_ago(8 - i)))
    tickets = server.get("/api/v1/tickets?state=all").json()["tickets"]
    assert len(tickets) == 1, tickets
    t = server.ticket(tickets[0]["id"])
    assert t["flapping"] is True
    assert t["status"] == "new"  # the last ok did not resolve it
    assert [j["action"] for j in t["journal"]].count("flapping") == 1
    assert metric(server, "tocsin_flapping_tickets") == 1

    # a window of 2 s on the collector's clock passes: the timer calms it
    for s in ["critical", "ok", "critical", "ok"]:
        post(server, "web02", event("http", "/", s))
    web02 = find(server.tickets("all"), "web02", "http", "/")
    assert server.ticket(web02["id"])["flapping"] is True
    def calmed():
        d = server.ticket(web02["id"])
        return d if not d["flapping"] else None
    d = wait_for(calmed, timeout=10, what="flapping to calm down")
    assert d["status"] == "resolved"  # it was ok when it calmed down
    assert [j["action"] for j in d["journal"]].count("flapping") == 2
    assert metric(server, "tocsin_flapping_total", 'change="calmed"') == 1


def test_reopen_within_the_window_and_not_after(server):
    post(server, "web01", event("raid", "md0", "critical"))
    post(server, "web01", event("raid", "md0", "ok"))
    t = server.tickets("open")[0]
    assert t["status"] == "recovered"  # awaits a technician's review
    assert metric(server, "tocsin_open_tickets", 'status="recovered"') == 1
    r = post(server, "web01", event("raid", "md0", "critical"))
    assert r["tickets_opened"] == 0
    d = server.ticket(t["id"])
    assert d["status"] == "new"
    assert [j["action"] for j in d["journal"]] == ["opened", "recovered", "reopened"]

    post(server, "web01", event("svc", "nginx", "critical"))
    post(server, "web01", event("svc", "nginx", "ok"))
    first = find(server.tickets("all"), "web01", "svc", "nginx")
    post(server, "web01", event("svc", "nginx", "critical"))
    assert find(server.tickets("all"), "web01", "svc", "nginx")["id"] == first["id"]
    post(server, "web01", event("svc", "nginx", "ok"))
    # the rule's reopen window is 1 s of the server's clock: let it pass
    time.sleep(1.2)
    post(server, "web01", event("svc", "nginx", "critical"))
    again = find(server.tickets("all"), "web01", "svc", "nginx")
    assert again["id"] != first["id"]
    assert metric(server, "tocsin_tickets_total", 'change="reopened"') == 2
    assert metric(server, "tocsin_tickets_total", 'change="recovered"') == 1


def test_lifecycle_config_errors_name_the_place(tmp_path):
    from conftest import Server, binary
    import subprocess
    srv = Server(tmp_path / "bad", extra="lifecycle:\n  rules:\n    - match: {check: disk}\n"
                 "      on_recovery: forget\n")
    proc = subprocess.run([binary("tocsin-server"), "--config", str(srv.config), "--check-config"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"{srv.config}:" in proc.stderr
    assert "lifecycle.rules[0].on_recovery: 'forget' is not one of: resolve, review" in proc.stderr


def test_commented_examples_in_conf_d_are_valid(tmp_path):
    """The examples in conf.d/server.d/30-lifecycle.yaml, uncommented, parse."""
    import re
    import subprocess
    from conftest import ROOT, Server, binary
    srv = Server(tmp_path / "examples")
    dropins = srv.config.parent / "server.d"
    dropins.mkdir()
    for name in ("20-inventory.yaml", "30-lifecycle.yaml"):
        lines = []
        for line in (ROOT / "conf.d" / "server.d" / name).read_text().splitlines():
            # "#key:" and "#  key:" are examples; "# text" is prose
            if re.match(r"^#(\S|\s{2,})", line):
                lines.append(line[1:])
        (dropins / name).write_text("\n".join(lines) + "\n")
    assert "confirm_after: 3" in (dropins / "30-lifecycle.yaml").read_text()
    proc = subprocess.run([binary("tocsin-server"), "--config", str(srv.config),
                           "--check-config"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_clock_a_year_ahead_does_not_make_the_ticket_unresolvable(server):
    """One result dated a year ahead, then the agent's clock is put right:
    the next ok resolves the ticket (its last_seen is capped at when the
    result arrived), and the stored event keeps the agent's own time."""
    ahead = now() + datetime.timedelta(days=365)
    post(server, "web01", event("svc", "nginx", "critical", observed=ahead))
    t = find(server.tickets("all"), "web01", "svc", "nginx")
    assert not t["last_seen"].startswith(ahead.strftime("%Y-%m-%d"))  # capped
    post(server, "web01", event("svc", "nginx", "ok"))
    t = server.ticket(t["id"])
    assert t["status"] == "resolved", t["journal"]
    assert any(o["observed_at"].startswith(ahead.strftime("%Y-%m-%d")) for o in t["occurrences"])


def test_an_agent_an_hour_behind_does_not_confirm_at_once(server):
    """confirm_for counts from when results arrive: a result observed an
    hour ago by a clock that is behind does not open a ticket at once."""
    post(server, "nas", event("backup", "/srv", "critical", observed=minutes_ago(60)))
    time.sleep(0.5)  # five ticks of the timer (tick: 100ms) that must not confirm it
    assert find(server.tickets("all"), "nas", "backup", "/srv") is None
    wait_for(lambda: find(server.tickets("all"), "nas", "backup", "/srv"),
             what="confirm_for: 1s to pass on the collector's clock")
