"""A contract that a reload or a restart no longer configures (the customer
moved from "fast" to "fast-2027"): its open tickets keep their targets and
their SLA clocks keep running, on the calendar of the customer's current
contract (else round the clock), the log says so once per contract, and the
escalation timer still breaches them."""
import signal
from datetime import datetime, timedelta, timezone

from conftest import Server, wait_for
from helpdesk_util import act, helpdesk_extra, open_ticket

# The seed contract "fast", renamed: same calendar shape, other targets (so
# that a kept target shows), another zone (so that the calendar is its own).
MOVED_TARGETS = ("    targets:\n"
                 "      P1: {response: 2h, resolution: 2d}\n")


def moved(extra, hours="daily: 00:00-24:00"):
    """The configuration with acme on fast-2027 and fast gone."""
    start = extra.index("contracts:\n  fast:\n")
    end = extra.index("people:\n")
    contract = ("contracts:\n  fast-2027:\n    name: Round the clock, 2027\n"
                "    calendar:\n      timezone: UTC\n      hours:\n"
                f"        {hours}\n" + MOVED_TARGETS)
    out = extra[:start] + contract + extra[end:]
    return out.replace("contract: fast\n", "contract: fast-2027\n")


def without_contract(extra):
    """acme with no contract at all, and fast gone."""
    return moved(extra).replace("    contract: fast-2027\n", "")


def without_the_customer(extra):
    """fast gone, and acme too: its hosts are globex's, which has no contract."""
    out = moved(extra).replace(
        "  acme:\n    name: ACME GmbH\n    contract: fast-2027\n"
        "    contacts: [it@acme.example]\n", "  globex:\n    name: Globex\n")
    assert out.count("customer: acme") == 3
    return out.replace("customer: acme", "customer: globex")


def reload(srv, extra, count=1):
    srv.write_config(extra=extra)
    srv.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: srv.log_text().count("SIGHUP: configuration reloaded") >= count,
             what="the reload")


def overdue_by_timer(srv, tid):
    t = srv.ticket(tid)
    return t if ("tocsin", "overdue", "response") in [
        (j["actor"], j["action"], j["new"]) for j in t["journal"]] else None


def gauge(srv, name):
    for line in srv.get("/metrics").body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def test_a_reload_without_the_contract_keeps_the_clocks_running_and_breaching(tmp_path):
    extra = helpdesk_extra(response="6s", resolution="1h")
    srv = Server(tmp_path / "server", extra=extra).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        assert srv.ticket(tid)["sla"]["calendar"] == "fast"
        assert srv.ticket(tid)["sla"]["calendar_note"] is None
        reload(srv, moved(extra))
        log = srv.log_text()
        assert ('SIGHUP: contract "fast" is no longer configured: 1 open ticket keeps '
                'its targets and uses the calendar of contract "fast-2027"') in log
        t = srv.ticket(tid)
        assert t["contract"] == "fast"
        sla = t["sla"]
        # The target it was opened with, not fast-2027's two hours.
        assert sla["response"] is not None, "the clocks stopped"
        assert sla["response"]["target_s"] == 6
        assert sla["response"]["state"] in ("running", "overdue")
        assert sla["response"]["due"] is not None
        assert sla["calendar"] == "fast-2027"
        assert "contract fast is no longer configured" in sla["calendar_note"]
        assert "fast-2027 (customer acme's)" in sla["calendar_note"]
        assert t["response_due"] == sla["response"]["due"]
        assert gauge(srv, "tocsin_helpdesk_contract_gone_tickets") == 1
        # The escalation timer still breaches it.
        t = wait_for(lambda: overdue_by_timer(srv, tid), timeout=20,
                     what="the timer's response breach")
        assert t["overdue"] is True
        assert t["sla"]["response"]["state"] == "overdue"
        # A new ticket of acme gets fast-2027 and its targets.
        new = srv.ticket(open_ticket(srv, "web01", "critical", item="/var"))
        assert new["contract"] == "fast-2027"
        assert new["sla"]["response"]["target_s"] == 7200
        assert new["sla"]["calendar_note"] is None
    finally:
        srv.stop()


def test_the_clocks_follow_the_customers_new_calendar(tmp_path):
    extra = helpdesk_extra(response="1h", resolution="1d")
    srv = Server(tmp_path / "server", extra=extra).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        wait_for(lambda: srv.ticket(tid)["sla"]["response"]["elapsed_s"] >= 1,
                 what="a second on fast's round-the-clock calendar")
        # fast-2027 opens for one hour a day, 5 to 6 hours from now (UTC):
        # recomputed over the ticket's whole life on its calendar, no
        # business time has passed yet (24x7 would count the seconds), and
        # the hour's target is due when that opening hour ends.
        opens = (datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
                 + timedelta(hours=6))
        window = f"daily: {opens:%H}:00-{opens.hour + 1:02d}:00"
        reload(srv, moved(extra, hours=window))
        sla = srv.ticket(tid)["sla"]
        assert sla["calendar"] == "fast-2027"
        assert sla["response"]["target_s"] == 3600
        assert sla["response"]["elapsed_s"] == 0
        assert sla["response"]["due"] == f"{opens + timedelta(hours=1):%Y-%m-%dT%H:%M:%S}.000Z"
    finally:
        srv.stop()


def test_a_customer_without_a_contract_runs_round_the_clock(tmp_path):
    extra = helpdesk_extra(response="1h", resolution="1d")
    srv = Server(tmp_path / "server", extra=extra).start()
    try:
        first = open_ticket(srv, "web01", "critical")
        second = open_ticket(srv, "web01", "critical", item="/var")
        reload(srv, without_contract(extra))
        assert ('SIGHUP: contract "fast" is no longer configured: 2 open tickets keep '
                'their targets and use a 24x7 calendar') in srv.log_text()
        sla = srv.ticket(first)["sla"]
        assert sla["calendar"] == "24x7"
        assert "customer acme has no contract" in sla["calendar_note"]
        assert sla["response"]["state"] == "running"
        assert sla["response"]["target_s"] == 3600
        # A new priority has no contract to take targets from: kept.
        r = act(srv, second, {"action": "priority", "priority": "P3"})
        assert r.status == 200, r.body
        sla = srv.ticket(second)["sla"]
        assert sla["response"]["target_s"] == 3600
        assert sla["resolution"]["target_s"] == 86400
        assert sla["response"]["state"] == "running"
    finally:
        srv.stop()


def test_a_customer_gone_with_its_contract_is_named_as_gone(tmp_path):
    extra = helpdesk_extra(response="1h", resolution="1d")
    srv = Server(tmp_path / "server", extra=extra).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        reload(srv, without_the_customer(extra))
        t = srv.ticket(tid)
        assert t["customer"] == "acme"
        sla = t["sla"]
        assert sla["calendar"] == "24x7"
        assert "customer acme is no longer configured either" in sla["calendar_note"]
        assert "has no contract" not in sla["calendar_note"]
        assert sla["response"]["target_s"] == 3600
    finally:
        srv.stop()


def test_a_restart_without_the_contract_keeps_the_clocks_running(tmp_path):
    extra = helpdesk_extra(response="8s", resolution="1h")
    srv = Server(tmp_path / "server", extra=extra).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        closed = open_ticket(srv, "web01", "critical", item="/var")
        assert act(srv, closed, {"action": "resolve", "note": "done"}).status == 200
        assert act(srv, closed, {"action": "close"}).status == 200
    finally:
        srv.stop()
    srv.write_config(extra=moved(extra))
    srv.start()
    try:
        # Else the breach below could be the old server's.
        assert overdue_by_timer(srv, tid) is None, "restarted too late for the test"
        log = srv.log_text()
        # One line for the contract, counting only the open ticket.
        line = ('contract "fast" is no longer configured: 1 open ticket keeps its '
                'targets and uses the calendar of contract "fast-2027"')
        assert log.count(line) == 1
        assert "SIGHUP: " + line not in log
        sla = srv.ticket(tid)["sla"]
        assert sla["calendar"] == "fast-2027"
        assert sla["response"]["target_s"] == 8
        assert gauge(srv, "tocsin_helpdesk_contract_gone_tickets") == 1
        wait_for(lambda: overdue_by_timer(srv, tid), timeout=20,
                 what="the timer's response breach after the restart")
    finally:
        srv.stop()
