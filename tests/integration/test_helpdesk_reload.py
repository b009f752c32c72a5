"""SIGHUP applies the helpdesk (contracts, people, helpdesk:, the customers'
contract and contacts) to the running server: new tickets get the new SLA
and mail goes to the new addresses; a helpdesk with an error is refused,
naming file:line:column, and the running one kept."""
import signal

from conftest import Server, wait_for
from helpdesk_util import helpdesk_extra, open_ticket

RESTART_ONLY = "restart the server to apply it"


def reload(srv, extra, count=1, what="SIGHUP: configuration reloaded"):
    srv.write_config(extra=extra)
    srv.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: srv.log_text().count(what) >= count, what="the reload")


def test_a_new_response_time_applies_to_new_tickets_after_a_reload(tmp_path):
    srv = Server(tmp_path / "server", extra=helpdesk_extra(response="1h")).start()
    try:
        before = open_ticket(srv, "web01", "critical", item="/srv")
        assert srv.ticket(before)["sla"]["response"]["target_s"] == 3600
        reload(srv, helpdesk_extra(response="2h"))
        after = open_ticket(srv, "web01", "critical", item="/var")
        t = srv.ticket(after)
        assert t["contract"] == "fast"
        assert t["sla"]["response"]["target_s"] == 7200
        assert t["response_due"] == t["sla"]["response"]["due"]
        # An open ticket keeps the target it was opened with.
        assert srv.ticket(before)["sla"]["response"]["target_s"] == 3600
        log = srv.log_text()
        assert "SIGHUP: helpdesk reloaded (1 contracts, 3 people)" in log
        assert "the SLA clocks of 1 tickets recomputed" in log
        assert RESTART_ONLY not in log
    finally:
        srv.stop()


def test_a_customer_moved_to_another_contract_after_a_reload(tmp_path):
    slow = ("  slow:\n    name: Office hours\n    calendar:\n"
            "      timezone: UTC\n      hours:\n        daily: 00:00-24:00\n"
            "    targets:\n      P1: {response: 4h, resolution: 5d}\n")
    extra = helpdesk_extra().replace("contracts:\n", "contracts:\n" + slow)
    srv = Server(tmp_path / "server", extra=extra).start()
    try:
        assert srv.ticket(open_ticket(srv, "web01", item="/a"))["contract"] == "fast"
        reload(srv, extra.replace("contract: fast", "contract: slow"))
        t = srv.ticket(open_ticket(srv, "web01", item="/b"))
        assert t["contract"] == "slow"
        assert t["sla"]["response"]["target_s"] == 4 * 3600
    finally:
        srv.stop()


def test_mail_goes_to_a_persons_new_address_after_a_reload(tmp_path, mailbox):
    extra = helpdesk_extra(smtp_port=mailbox.port)
    srv = Server(tmp_path / "server", extra=extra).start()
    try:
        first = open_ticket(srv, "web01", item="/srv")
        wait_for(lambda: mailbox.matching("alice@shop.example", f"#{first}]"),
                 what="the mail to alice's first address")
        reload(srv, extra.replace("alice@shop.example", "alice@new.example"))
        second = open_ticket(srv, "web01", item="/var")
        wait_for(lambda: mailbox.matching("alice@new.example", f"#{second}]"),
                 what="the mail to alice's new address")
        assert mailbox.matching("alice@shop.example", f"#{second}]") == []
        assert RESTART_ONLY not in srv.log_text()
    finally:
        srv.stop()


def test_a_contract_with_an_error_keeps_the_running_helpdesk(tmp_path):
    srv = Server(tmp_path / "server", extra=helpdesk_extra(response="1h")).start()
    try:
        broken = helpdesk_extra(response="soon")
        reload(srv, broken, what="keeping the running configuration")
        text = srv.config.read_text().splitlines()
        line = next(i for i, s in enumerate(text) if "P1: {response: soon" in s)
        col = text[line].index("soon") + 1
        log = srv.log_text()
        assert f"SIGHUP: {srv.config}:{line + 1}:{col}: contracts.fast.targets.P1.response" in log
        t = srv.ticket(open_ticket(srv, "web01"))
        assert t["sla"]["response"]["target_s"] == 3600
        assert "helpdesk reloaded" not in log
    finally:
        srv.stop()


def test_notify_reloads_without_a_restart(tmp_path):
    # test_notify_reload.py checks what a reloaded notify: does
    extra = helpdesk_extra()
    srv = Server(tmp_path / "server", extra=extra).start()
    try:
        reload(srv, extra.replace("poll: 100ms", "poll: 200ms"))
        log = srv.log_text()
        assert "SIGHUP: notify reloaded (mail off, 0 webhooks" in log
        assert RESTART_ONLY not in log
    finally:
        srv.stop()
