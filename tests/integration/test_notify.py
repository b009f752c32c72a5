"""Notifications through the persisted outbox: real mail to a real SMTP
server (aiosmtpd) and real webhooks to a real HTTP receiver, across a real
restart of the server."""
import sqlite3
import subprocess

import pytest

from conftest import Server, binary, wait_for
from helpdesk_util import (Mailbox, WebhookReceiver, act, event, helpdesk_extra,
                           open_ticket, outbox, post)

SYSTEM_FROM = "Tocsin monitoring <tocsin@shop.example>"
SIGNATURE = "Tocsin, the monitoring system of Example IT"


def body_of(m):
    return m["msg"].get_content()


def test_technicians_hear_of_new_tickets_and_the_customer_of_solved_ones(tmp_path, mailbox):
    srv = Server(tmp_path / "server",
                 extra=helpdesk_extra(smtp_port=mailbox.port, settle="1s")).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        # Level 1 of the ticket's queue and the queue's own address.
        mail = wait_for(lambda: mailbox.matching("alice@shop.example", f"#{tid}]"),
                        what="the technicians' mail")[0]
        assert "managed-it@shop.example" in mail["to"]
        assert "bob@shop.example" not in mail["to"]  # level 2, not told yet
        assert mail["from"] == "tocsin@shop.example"
        assert mail["msg"]["From"] == SYSTEM_FROM
        assert mail["msg"]["Subject"] == f"[Tocsin #{tid}] P1 disk /srv on web01"
        text = body_of(mail)
        assert "Runbook: https://wiki.shop.example/disk" in text
        assert "Respond by:" in text and SIGNATURE in text
        assert mailbox.to("it@acme.example") == []

        # The problem goes away: the customer hears, but only after settling.
        post(srv, event("web01", "ok"))
        pending = outbox(srv, "target = 'it@acme.example'")
        assert [row[5] for row in pending] == ["pending"]
        mail = wait_for(lambda: mailbox.to("it@acme.example"), what="the customer's mail")[0]
        assert mail["msg"]["Subject"] == f"[Tocsin #{tid}] solved: disk /srv on web01"
        assert mail["msg"]["From"] == SYSTEM_FROM and SIGNATURE in body_of(mail)
        # Marked sent only after the SMTP server accepted it: wait for the mark.
        wait_for(lambda: outbox(srv, "target = 'it@acme.example' AND state = 'sent'"),
                 what="the customer's mail to be marked sent")
        wait_for(lambda: len(outbox(srv, "state = 'sent'")) == 2, what="both marks")

        metrics = srv.get("/metrics").body.decode()
        assert 'tocsin_notify_total{result="sent"} 2' in metrics
        # The gauge is a mirror the senders refresh (no count(*) per scrape).
        wait_for(lambda: "tocsin_notify_queued 0" in srv.get("/metrics").body.decode(),
                 what="the queued gauge to follow")
    finally:
        srv.stop()


def test_a_flapping_check_sends_the_customer_nothing(tmp_path, mailbox):
    srv = Server(tmp_path / "server",
                 extra=helpdesk_extra(smtp_port=mailbox.port, settle="30s")).start()
    try:
        first = open_ticket(srv, "web01", "critical")
        post(srv, event("web01", "ok"))
        assert [r[5] for r in outbox(srv, "target = 'it@acme.example'")] == ["pending"]
        # Back within the settling time: the "solved" mail is cancelled.  The
        # recurrence is within the lifecycle's reopen_within (1h by default),
        # so it reopens the same ticket.
        second = open_ticket(srv, "web01", "critical")
        assert second == first
        assert srv.ticket(first)["status"] == "new"
        assert [r[5] for r in outbox(srv, "target = 'it@acme.example'")] == ["cancelled"]
        # Another problem's mail to the technicians arrives: the sender ran
        # past the cancelled row, and still nothing went to the customer.
        other = open_ticket(srv, "web01", "critical", item="/var")
        wait_for(lambda: mailbox.matching("alice@shop.example", f"#{other}]"),
                 what="the mail about the other ticket")
        assert mailbox.to("it@acme.example") == []
        assert 'tocsin_notify_total{result="cancelled"} 1' in srv.get("/metrics").body.decode()
    finally:
        srv.stop()


def test_reminders_speak_in_the_systems_name(tmp_path, mailbox):
    srv = Server(tmp_path / "server", extra=helpdesk_extra(
        smtp_port=mailbox.port, response="4s", resolution="60s", warn_at="50%")).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        assert act(srv, tid, {"action": "assign", "assignee": "bob"}).status == 200
        reminder = wait_for(lambda: mailbox.matching("bob@shop.example", "reminder"),
                            what="the reminder to the assignee")[0]
        # From the system, signed by the system: never by the technician.
        assert reminder["msg"]["From"] == SYSTEM_FROM
        text = body_of(reminder)
        assert text.rstrip().endswith(SIGNATURE)
        assert "Bob Builder" not in text and "Bob Builder" not in reminder["msg"]["From"]
        assert "Alice" not in text
        # At the breach the next level (bob, level 2) and the lead (carol) hear.
        overdue = wait_for(lambda: mailbox.matching("carol@shop.example", "OVERDUE"),
                           what="the overdue mail")[0]
        assert "bob@shop.example" in overdue["to"]
        assert overdue["msg"]["From"] == SYSTEM_FROM
        assert SIGNATURE in body_of(overdue)
    finally:
        srv.stop()


def test_customer_questions_comments_and_status_updates(tmp_path, mailbox):
    srv = Server(tmp_path / "server", extra=helpdesk_extra(
        smtp_port=mailbox.port, status_updates="1s")).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        act(srv, tid, {"action": "comment", "text": "internal only"})
        act(srv, tid, {"action": "comment", "text": "We are on it.", "visibility": "customer"})
        act(srv, tid, {"action": "ask", "text": "May we reboot tonight?"})
        wait_for(lambda: mailbox.matching("it@acme.example", "question"), what="the question")
        update = wait_for(lambda: mailbox.matching("it@acme.example", "update"),
                          what="the visible comment")[0]
        assert "We are on it." in body_of(update)
        assert not any("internal only" in body_of(m) for m in mailbox.to("it@acme.example"))
        status = wait_for(lambda: mailbox.matching("it@acme.example", "status:"),
                          what="the periodic status update")[0]
        assert "still working on" in body_of(status) and SIGNATURE in body_of(status)
    finally:
        srv.stop()


def test_mail_server_down_then_up_nothing_lost(tmp_path):
    port_holder = Mailbox()  # only its free port for now: nothing listens yet
    srv = Server(tmp_path / "server", extra=helpdesk_extra(
        smtp_port=port_holder.port, retry="100ms")).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        wait_for(lambda: [r for r in outbox(srv) if r[6] >= 2], what="failed attempts")
        assert "retried" in srv.get("/metrics").body.decode()
        port_holder.start()
        wait_for(lambda: port_holder.matching("alice@shop.example", f"#{tid}]"),
                 what="the mail once the server is up")
        assert len(port_holder.matching("alice@shop.example", f"#{tid}]")) == 1
    finally:
        srv.stop()
        port_holder.stop()


def webhooks_config(port, failing_port=None):
    text = (f"  webhooks:\n    - name: tickets\n      url: http://127.0.0.1:{port}/hook\n"
            "      format: generic\n      events: [opened, resolved]\n")
    if failing_port:
        text += (f"    - name: zammad\n      url: http://127.0.0.1:{failing_port}/api\n"
                 "      format: zammad\n      headers: {Authorization: \"Token token=abc\"}\n"
                 "      events: [opened]\n")
    return text


def test_webhook_delivered_exactly_once_across_a_restart(tmp_path):
    receiver = WebhookReceiver(failures=2).start()
    zammad = WebhookReceiver(failures=0).start()
    srv = Server(tmp_path / "server", extra=helpdesk_extra(
        webhooks=webhooks_config(receiver.port, zammad.port), retry="1s"))
    srv.start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        # The first attempt fails; stop the server before its retry is due.
        wait_for(lambda: len(receiver.attempts()) >= 1, what="the first attempt")
        srv.stop()
        assert receiver.accepted() == []
        srv.start()
        wait_for(lambda: receiver.accepted(), timeout=15, what="the delivery after the restart")
        wait_for(lambda: all(r[5] == "sent" for r in outbox(srv, "target = 'tickets'")),
                 what="the row to be marked sent")
        attempts = receiver.attempts()
        keys = {key for _, key, _ in attempts}
        # Every attempt carried the same key, and exactly one was accepted.
        assert len(attempts) == 3 and len(keys) == 1
        assert len(receiver.accepted()) == 1
        _, key, payload = receiver.accepted()[0]
        assert payload["idempotency_key"] == key
        assert payload["event"] == "opened" and payload["ticket"]["id"] == tid
        assert payload["ticket"]["priority"] == "P1" and payload["ticket"]["customer"] == "acme"
        # The Zammad-shaped payload went to the other receiver.
        (_, zkey, z), = wait_for(zammad.accepted, what="the Zammad delivery")
        assert z["title"] == "disk /srv on web01" and z["group"] == "managed-it"
        assert z["customer"] == "it@acme.example" and z["article"]["type"] == "note"
        assert z["idempotency_key"] == zkey != key
        # A further restart sends nothing again.
        srv.stop()
        srv.start()
        post(srv, event("web01", "ok"))
        wait_for(lambda: len(receiver.accepted()) == 2, what="the resolved webhook")
        assert [p["event"] for _, _, p in receiver.accepted()] == ["opened", "resolved"]
        assert len({k for _, k, _ in receiver.accepted()}) == 2
    finally:
        srv.stop()
        receiver.stop()
        zammad.stop()


def test_notify_config_errors(tmp_path):
    srv = Server(tmp_path / "server", extra=helpdesk_extra(smtp_port=25) + """\
  templates:
    opened:
      subject: "#{id} {nonsense}"
  webhooks:
    - name: bad
      url: ftp://x
      events: [exploded]
""")
    r = subprocess.run([binary("tocsin-server"), "--config", str(srv.config), "--check-config"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "notify.templates.opened.subject: unknown placeholder {nonsense}" in r.stderr
    assert "notify.webhooks[0].url: a webhook needs an http:// or https:// url" in r.stderr
    assert "notify.webhooks[0].events[0]: not one of opened" in r.stderr


@pytest.fixture
def certificate(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return key, cert


@pytest.mark.parametrize("mode", ["starttls", "smtps"])
def test_mail_over_tls_with_authentication(tmp_path, certificate, mode):
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    key, cert = certificate
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((mechanism, auth_data.login, auth_data.password, session.ssl is not None))
        return AuthResult(success=auth_data.password == b"s3cret")

    box = Mailbox()
    if mode == "starttls":
        kwargs = dict(tls_context=ctx, require_starttls=True, authenticator=authenticator,
                      auth_require_tls=True)
    else:
        # TLS from the first byte: aiosmtpd does not see it as "TLS" for
        # AUTH, so it must be told that AUTH on this connection is fine.
        kwargs = dict(ssl_context=ctx, authenticator=authenticator, auth_require_tls=False)
    box.controller = Controller(box, hostname="127.0.0.1", port=box.port, **kwargs)
    box.start()
    scheme = "smtp" if mode == "starttls" else "smtps"
    smtp = (f"  smtp:\n    url: {scheme}://127.0.0.1:{box.port}\n    starttls: required\n"
            f"    username: tocsin\n    password: s3cret\n    ca_file: {cert}\n    timeout: 5s\n")
    extra = helpdesk_extra().replace("  retry:", smtp + "  retry:")
    srv = Server(tmp_path / "server", extra=extra).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        mail = wait_for(lambda: box.matching("alice@shop.example", f"#{tid}]"),
                        what="the mail over TLS")[0]
        assert mail["msg"]["From"] == SYSTEM_FROM
        # Authenticated; with STARTTLS only once the connection was encrypted.
        assert logins and all(login == b"tocsin" for _, login, _, _ in logins)
        if mode == "starttls":
            assert all(tls for *_, tls in logins)
    finally:
        srv.stop()
        box.stop()


def test_smtp_ca_file_is_the_only_trust_anchor(tmp_path, certificate):
    """notify.smtp.ca_file names the CA the mail server must have: a mail
    server whose certificate only the system's trust directory vouches for
    gets no mail (and no password) then.  The control, in the same setup
    with its own CA as ca_file, gets the mail: the refusal is the CA's."""
    import ssl

    from aiosmtpd.controller import Controller

    from agentlib import system_trust_with

    key, cert = certificate
    other = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=other CA",
                    "-keyout", str(tmp_path / "other-ca.key"), "-out", str(other)],
                   check=True, capture_output=True, timeout=60)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    box = Mailbox()
    box.controller = Controller(box, hostname="127.0.0.1", port=box.port,
                                tls_context=ctx, require_starttls=True)
    box.start()
    smtp = (f"  smtp:\n    url: smtp://127.0.0.1:{box.port}\n    starttls: required\n"
            f"    ca_file: {other}\n    timeout: 5s\n")
    extra = helpdesk_extra(retry="100ms").replace("  retry:", smtp + "  retry:")
    # the mail server's certificate is in the system's trust directory
    srv = Server(tmp_path / "server", extra=extra,
                 prefix=system_trust_with(tmp_path, cert)).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        wait_for(lambda: [r for r in outbox(srv) if r[6] >= 2], what="failed attempts")
        con = sqlite3.connect(srv.db)
        errors = [e for (e,) in con.execute("SELECT last_error FROM hd_outbox")]
        con.close()
        assert any(e and "certificate" in e.lower() for e in errors), errors
        assert box.matching("alice@shop.example", f"#{tid}]") == []

        # The same mail server, trust directory, outbox and mail, only
        # ca_file naming the server's CA (a restart: the outbox stays).
        srv.stop()
        srv.write_config(extra=extra.replace(f"ca_file: {other}\n", f"ca_file: {cert}\n"))
        srv.start()
        wait_for(lambda: box.matching("alice@shop.example", f"#{tid}]"),
                 what="the mail once ca_file names the mail server's CA")
    finally:
        srv.stop()
        box.stop()


def test_sent_rows_are_forgotten_after_keep(tmp_path, mailbox):
    extra = helpdesk_extra(smtp_port=mailbox.port).replace("  poll: 100ms\n",
                                                           "  poll: 100ms\n  keep: 1ms\n")
    srv = Server(tmp_path / "server", extra=extra).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        wait_for(lambda: outbox(srv, "state = 'sent'"), what="the mail to be sent")
        # The purge runs when the sender starts and then hourly.
        srv.stop()
        srv.start()
        wait_for(lambda: outbox(srv) == [], what="the sent row to be forgotten")
        assert len(mailbox.matching("alice@shop.example", f"#{tid}]")) == 1
    finally:
        srv.stop()


def test_a_long_summary_with_a_multibyte_character_is_delivered(tmp_path):
    """The reviewer's reproduction: a summary whose 1023rd byte starts an
    'ä' once made every ingest of its batch fail with 503 (the ticket's
    copy was cut inside the character and the webhook could not be
    encoded).  Now the batch is accepted and the webhook carries it whole."""
    receiver = WebhookReceiver().start()
    hooks = (f"  webhooks:\n    - name: tickets\n      url: http://127.0.0.1:{receiver.port}/hook\n"
             "      events: [opened]\n")
    srv = Server(tmp_path / "server", extra=helpdesk_extra(webhooks=hooks)).start()
    try:
        summary = "x" * 1022 + "ä" + "tail"
        r = srv.post_events(event("web01", "critical", summary=summary))
        assert r.status == 200, r.body
        assert r.json()["tickets_opened"] == 1
        (_, _, payload), = wait_for(receiver.accepted, what="the webhook")
        assert payload["ticket"]["summary"] == summary
        assert payload["text"] == summary
        # An item and a check name at their limits match their problem whole.
        item = "/" + "é" * 255
        r = srv.post_events(event("web01", "critical", item=item, check="c" * 64))
        assert r.status == 200, r.body
        wait_for(lambda: len(receiver.accepted()) == 2, what="the second webhook")
        assert receiver.accepted()[1][2]["ticket"]["item"] == item
        assert receiver.accepted()[1][2]["ticket"]["check"] == "c" * 64
    finally:
        srv.stop()
        receiver.stop()


def test_assignment_and_escalation_tell_the_people(tmp_path, mailbox):
    from helpdesk_util import BOB_TOKEN

    srv = Server(tmp_path / "server", extra=helpdesk_extra(smtp_port=mailbox.port)).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        assert act(srv, tid, {"action": "assign", "assignee": "bob",
                              "text": "you know this disk"}).status == 200
        mail = wait_for(lambda: mailbox.matching("bob@shop.example", "assigned to you"),
                        what="the assignment mail")[0]
        assert f"#{tid}]" in mail["msg"]["Subject"] and "you know this disk" in body_of(mail)
        assert mail["msg"]["From"] == SYSTEM_FROM
        # Escalated to level 2 of managed-it: bob is the one there.
        assert act(srv, tid, {"action": "escalate", "text": "needs storage"}).status == 200
        mail = wait_for(lambda: mailbox.matching("bob@shop.example", "escalated to level 2"),
                        what="the escalation mail")[0]
        assert "carol@shop.example" not in mail["to"]
        # bob escalates to level 3: carol hears, bob does not mail himself.
        assert act(srv, tid, {"action": "escalate"}, token=BOB_TOKEN).status == 200
        wait_for(lambda: mailbox.matching("carol@shop.example", "escalated to level 3"),
                 what="the mail to level 3")
        assert mailbox.matching("bob@shop.example", "escalated to level 3") == []
        # Taking a ticket oneself mails nobody.
        assert act(srv, tid, {"action": "assign", "assignee": "bob"},
                   token=BOB_TOKEN).status == 200
        assert [r for r in outbox(srv, f"ticket_id = {tid}") if r[4] and "assigned" in r[4]
                and r[5] != "sent"] == []
        assert len(mailbox.matching("bob@shop.example", "assigned to you")) == 1
        # Unassigning queues no mail ("assigned to" nobody).
        before = len(outbox(srv, f"ticket_id = {tid}"))
        assert act(srv, tid, {"action": "unassign"}).status == 200
        assert len(outbox(srv, f"ticket_id = {tid}")) == before
    finally:
        srv.stop()


def test_zammad_gets_a_creation_then_updates_of_that_ticket(tmp_path):
    from helpdesk_util import ZammadReceiver

    zammad = ZammadReceiver(first_id=4711).start()
    hooks = (f"  webhooks:\n    - name: zammad\n"
             f"      url: http://127.0.0.1:{zammad.port}/api/v1/tickets\n"
             "      format: zammad\n      headers: {Authorization: \"Token token=abc\"}\n"
             "      events: [opened, resolved, action]\n")
    srv = Server(tmp_path / "server", extra=helpdesk_extra(webhooks=hooks)).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        act(srv, tid, {"action": "comment", "text": "checking the RAID"})
        act(srv, tid, {"action": "comment", "text": "We are on it.", "visibility": "customer"})
        post(srv, event("web01", "ok"))
        seen = wait_for(lambda: (lambda s: s if len(s) == 4 else None)(zammad.seen()),
                        what="the creation and three updates")
        (m0, p0, create), *updates = seen
        assert (m0, p0) == ("POST", "/api/v1/tickets")
        assert create["title"] == "disk /srv on web01" and create["group"] == "managed-it"
        assert create["article"]["internal"] is True
        assert create["tocsin_ticket_id"] == tid
        # Every later change updates ticket 4711, the id Zammad answered.
        assert [(m, p) for m, p, _ in updates] == [("PUT", "/api/v1/tickets/4711")] * 3
        internal = [u["article"]["internal"] for _, _, u in updates]
        # Internal unless meant for the customer.
        assert internal == [True, False, True]
        assert "We are on it." in updates[1][2]["article"]["body"]
        assert updates[2][2]["state"] == "closed"
        assert len({u["idempotency_key"] for _, _, u in seen}) == 4
    finally:
        srv.stop()
        zammad.stop()
