"""SIGHUP applies notify: to the running server: a new SMTP server and new
templates for new notifications (real aiosmtpd servers), what is queued
keeps going as it was rendered, a webhook added is called and one removed
has its pending rows failed, saying why (real HTTP receivers), and a
notify: section with an error is refused, naming file:line:column, with
mail still going to the running server."""
import signal
import sqlite3
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from conftest import Server, wait_for
from helpdesk_util import (BlackHole, Mailbox, WebhookReceiver, event, helpdesk_extra,
                           open_ticket, outbox, post)

RESTART_ONLY = "restart the server to apply it"
RELOADED = "SIGHUP: notify reloaded"


def reload(srv, extra, what="SIGHUP: configuration reloaded"):
    """Rewrite the configuration, SIGHUP, and wait for the log to say so
    once more than before."""
    before = srv.log_text().count(what)
    srv.write_config(extra=extra)
    srv.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: srv.log_text().count(what) > before, what=f"the reload ({what})")


def notify_extra(port, more="", **kw):
    """The helpdesk of helpdesk_util with mail to port and more lines of notify:."""
    return helpdesk_extra(smtp_port=port, webhooks=more, **kw)


def last_error(srv, row_id):
    con = sqlite3.connect(srv.db)
    try:
        return con.execute("SELECT last_error FROM hd_outbox WHERE id = ?",
                           (row_id,)).fetchone()[0]
    finally:
        con.close()


def deferred(srv, ticket_id):
    """Whether the ticket's mail waits at least a minute from now."""
    con = sqlite3.connect(srv.db)
    try:
        row = con.execute("SELECT state, next_attempt FROM hd_outbox WHERE ticket_id = ?"
                          " AND channel = 'mail'", (ticket_id,)).fetchone()
    finally:
        con.close()
    return row is not None and row[0] == "pending" and row[1] > time.time() * 1000 + 60000


class AuthMailbox(Mailbox):
    """A Mailbox that takes mail only from user tocsin with its password."""

    def __init__(self, password):
        super().__init__()
        self.password = password
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                     auth_required=True, auth_require_tls=False,
                                     authenticator=self._authenticate)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"tocsin" and auth_data.password == self.password.encode()
        return AuthResult(success=ok)


@pytest.fixture
def mailboxes():
    old, new = Mailbox().start(), Mailbox().start()
    yield old, new
    old.stop()
    new.stop()


def test_mail_goes_to_the_new_server_with_the_new_subject(tmp_path, mailboxes):
    old, new = mailboxes
    srv = Server(tmp_path / "server", extra=notify_extra(old.port, settle="5s")).start()
    try:
        first = open_ticket(srv, "web01", "critical", item="/srv")
        wait_for(lambda: old.matching("alice@shop.example", f"#{first}]"),
                 what="the first mail, at the first server")
        # The recovery queues the customer's "solved" mail, rendered now but
        # due only after settling: it is in the outbox across the reload.
        post(srv, event("web01", "ok", item="/srv"))
        assert [r[5] for r in outbox(srv, "target = 'it@acme.example'")] == ["pending"]

        templates = ("  templates:\n"
                     "    opened: {subject: \"NEW #{id}: {title}\"}\n"
                     "    resolved: {subject: \"FIXED #{id}\"}\n")
        reload(srv, notify_extra(new.port, templates, settle="5s"))
        second = open_ticket(srv, "web01", "critical", item="/var")
        mail = wait_for(lambda: new.matching("alice@shop.example", f"NEW #{second}:"),
                        what="the new ticket's mail at the new server")[0]
        assert mail["msg"]["Subject"] == f"NEW #{second}: disk /var on web01"
        assert old.matching("alice@shop.example", f"#{second}") == []
        # The row queued before the reload goes to the new server as it was
        # rendered: with the old template's subject.
        solved = wait_for(lambda: new.to("it@acme.example"), timeout=20,
                          what="the queued mail, at the new server")[0]
        assert solved["msg"]["Subject"] == f"[Tocsin #{first}] solved: disk /srv on web01"
        assert old.to("it@acme.example") == []
        log = srv.log_text()
        assert (f"SIGHUP: notify reloaded (mail via smtp://127.0.0.1:{new.port}/, "
                "0 webhooks; 1 sender lanes: 0 started, 0 retired; "
                "0 pending rows of removed channels failed)") in log
        assert RESTART_ONLY not in log
    finally:
        srv.stop()


def test_a_webhook_added_on_reload_is_called(tmp_path, mailboxes):
    old, _ = mailboxes
    hook = WebhookReceiver().start()
    srv = Server(tmp_path / "server", extra=notify_extra(old.port)).start()
    try:
        before = open_ticket(srv, "web01", "critical", item="/srv")
        hooks = (f"  webhooks:\n    - name: added\n"
                 f"      url: http://127.0.0.1:{hook.port}/hook\n"
                 "      events: [opened]\n")
        reload(srv, notify_extra(old.port, hooks))
        after = open_ticket(srv, "web01", "critical", item="/var")
        got = wait_for(lambda: hook.accepted(), what="the added webhook's request")
        assert [r[2]["ticket"]["id"] for r in got] == [after]
        assert got[0][2]["event"] == "opened"
        # The mail lane went on as it was.
        wait_for(lambda: old.matching("alice@shop.example", f"#{after}]"),
                 what="the mail after the reload")
        assert old.matching("alice@shop.example", f"#{before}]")
        assert [r[0] for r in hook.accepted()] == [200]
        assert "2 sender lanes: 1 started, 0 retired" in srv.log_text()
    finally:
        srv.stop()
        hook.stop()


def test_a_removed_webhooks_rows_fail_and_its_hanging_send_is_abandoned(tmp_path, mailboxes):
    old, _ = mailboxes
    hole = BlackHole().start()
    hook = WebhookReceiver().start()
    hanging = (f"  webhooks:\n    - name: hangs\n"
               f"      url: http://127.0.0.1:{hole.port}/hook\n"
               "      timeout: 1h\n      events: [opened]\n")
    srv = Server(tmp_path / "server", extra=notify_extra(old.port, hanging)).start()
    try:
        first = open_ticket(srv, "web01", "critical", item="/srv")
        wait_for(lambda: hole.accepted() >= 1, what="the hanging webhook's connection")
        # The webhook is replaced by another: its lane ends without waiting
        # out the hour's timeout (the reload would not finish), the
        # connection is dropped, and its row fails with the reason.
        fresh = (f"  webhooks:\n    - name: fresh\n"
                 f"      url: http://127.0.0.1:{hook.port}/hook\n"
                 "      events: [opened]\n")
        assert hole.closed() == 0
        reload(srv, notify_extra(old.port, fresh))
        wait_for(lambda: hole.closed() == 1, what="the hanging send abandoned")
        rows = outbox(srv, "channel = 'webhook'")
        assert [(r[1], r[3], r[5]) for r in rows] == [(first, "hangs", "failed")]
        assert "webhook 'hangs' is no longer configured" in last_error(srv, rows[0][0])
        second = open_ticket(srv, "web01", "critical", item="/var")
        got = wait_for(lambda: hook.accepted(), what="the new webhook's request")
        assert [r[2]["ticket"]["id"] for r in got] == [second]
        assert ("2 sender lanes: 1 started, 1 retired; "
                "1 pending rows of removed channels failed") in srv.log_text()
    finally:
        srv.stop()
        hook.stop()
        hole.stop()


def test_mail_turned_off_fails_the_queued_mail_saying_why(tmp_path, mailboxes):
    old, _ = mailboxes
    srv = Server(tmp_path / "server", extra=notify_extra(old.port, settle="30s")).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        wait_for(lambda: old.matching("alice@shop.example", f"#{tid}]"), what="the mail")
        post(srv, event("web01", "ok"))
        [row] = outbox(srv, "target = 'it@acme.example'")
        assert row[5] == "pending"
        reload(srv, helpdesk_extra(settle="30s"))
        assert outbox(srv, f"id = {row[0]}")[0][5] == "failed"
        assert last_error(srv, row[0]) == "no notify.smtp.url is configured"
        assert ("SIGHUP: notify reloaded (mail off, 0 webhooks; 0 sender lanes: "
                "0 started, 1 retired; 1 pending rows of removed channels failed)"
                ) in srv.log_text()
    finally:
        srv.stop()


def test_the_rate_of_a_recipient_list_survives_a_reload(tmp_path, mailboxes):
    old, _ = mailboxes
    rate = "  rate: {mails: 1, per: 10m}\n"
    srv = Server(tmp_path / "server", extra=notify_extra(old.port, rate)).start()
    try:
        first = open_ticket(srv, "web01", "critical", item="/srv")
        wait_for(lambda: old.matching("alice@shop.example", f"#{first}]"), what="the mail")
        # Another template, the same rate: the list had its one mail.
        reload(srv, notify_extra(old.port, rate + "  templates:\n"
                                 "    opened: {subject: \"NEW #{id}\"}\n"))
        second = open_ticket(srv, "web01", "critical", item="/var")
        # The lane looked at the row and put it off to the rate's window.
        wait_for(lambda: deferred(srv, second), what="the second mail to wait for the window")
        assert old.matching("alice@shop.example", f"#{second}") == []
    finally:
        srv.stop()


def test_a_broken_notify_section_is_refused_and_mail_keeps_its_server(tmp_path, mailboxes):
    old, new = mailboxes
    srv = Server(tmp_path / "server", extra=notify_extra(old.port)).start()
    try:
        broken = notify_extra(new.port, "  templates:\n"
                              "    opened: {subject: \"#{id} {nosuch}\"}\n")
        reload(srv, broken, what="keeping the running configuration")
        text = srv.config.read_text().splitlines()
        line = next(i for i, s in enumerate(text) if "{nosuch}" in s)
        col = text[line].index('"#{id}') + 1
        log = srv.log_text()
        assert (f"SIGHUP: {srv.config}:{line + 1}:{col}: notify.templates.opened.subject: "
                "unknown placeholder {nosuch}") in log
        assert RELOADED not in log
        tid = open_ticket(srv, "web01", "critical")
        mail = wait_for(lambda: old.matching("alice@shop.example", f"#{tid}]"),
                        what="the mail, at the running server")[0]
        assert mail["msg"]["Subject"] == f"[Tocsin #{tid}] P1 disk /srv on web01"
        assert new.messages == []
    finally:
        srv.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_rotated_smtp_password_applies_after_a_reload(tmp_path):
    box = AuthMailbox("old-secret").start()
    secret = tmp_path / "smtp-password"
    secret.write_text("old-secret\n")
    auth = f"    username: tocsin\n    password_file: {secret}\n"
    srv = Server(tmp_path / "server", extra=notify_extra(box.port, auth)).start()
    try:
        first = open_ticket(srv, "web01", "critical", item="/srv")
        wait_for(lambda: box.matching("alice@shop.example", f"#{first}]"),
                 what="the mail with the first password")
        # The mail server's password changes, and so does the file.
        box.password = "new-secret"
        secret.write_text("new-secret\n")
        reload(srv, notify_extra(box.port, auth))
        second = open_ticket(srv, "web01", "critical", item="/var")
        wait_for(lambda: box.matching("alice@shop.example", f"#{second}]"),
                 what="the mail with the new password")
        assert outbox(srv, "state = 'failed'") == []
        assert "new-secret" not in srv.log_text()
    finally:
        srv.stop()
        box.stop()
