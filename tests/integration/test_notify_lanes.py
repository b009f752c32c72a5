"""The outbox's lanes on the real server: a webhook receiver that hangs
delays only its own lane, never the technicians' mail (real aiosmtpd, a
real TCP listener that never answers), and a burst of problems reaches a
technician as one digest, not a mail per problem, within a per-recipient
rate."""
import time
import uuid
from datetime import datetime, timezone

from conftest import Server, wait_for
from helpdesk_util import (BlackHole, event, helpdesk_extra, open_ticket, outbox, post)


def test_a_hanging_webhook_does_not_delay_the_mail(tmp_path, mailbox):
    hole = BlackHole().start()
    hooks = (f"  webhooks:\n    - name: hangs\n      url: http://127.0.0.1:{hole.port}/hook\n"
             "      timeout: 20s\n      events: [opened]\n")
    srv = Server(tmp_path / "server",
                 extra=helpdesk_extra(smtp_port=mailbox.port, webhooks=hooks)).start()
    try:
        first = open_ticket(srv, "web01", "critical", item="/srv")
        wait_for(lambda: mailbox.matching("alice@shop.example", f"#{first}]"),
                 what="the first mail")
        # The webhook's request now hangs for its 20 s timeout.
        wait_for(lambda: hole.accepted() >= 1, what="the webhook's connection")
        for item in ("/var", "/home", "/opt"):
            began = time.monotonic()
            tid = open_ticket(srv, "web01", "critical", item=item)
            wait_for(lambda: mailbox.matching("alice@shop.example", f"#{tid}]"),
                     timeout=2.0, what=f"the mail about {item} while the webhook hangs")
            assert time.monotonic() - began < 2.0
        # The webhook rows still wait, in their own lane.
        assert any(r[2] == "webhook" and r[5] == "pending" for r in outbox(srv))
        # Stopping abandons the hanging request instead of waiting it out.
        began = time.monotonic()
        srv.stop()
        assert time.monotonic() - began < 5
    finally:
        srv.stop()
        hole.stop()


def burst(host, items, state="critical"):
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"host": host, "events": [
        {"id": str(uuid.uuid4()), "check": "disk", "item": item, "state": state,
         "summary": f"{item} is {state}", "observed_at": now} for item in items]}


def test_a_burst_of_problems_is_one_digest(tmp_path, mailbox):
    srv = Server(tmp_path / "server", extra=helpdesk_extra(smtp_port=mailbox.port)).start()
    try:
        items = [f"/srv/vol{i}" for i in range(40)]
        post(srv, burst("web01", items))
        tickets = [t for t in srv.tickets("open") if t["item"] in items]
        assert len(tickets) == 40
        wait_for(lambda: len(outbox(srv, "kind = 'opened' AND state = 'sent'")) == 40,
                 what="all 40 opening notifications sent")
        mails = mailbox.to("alice@shop.example")
        # 40 problems, and alice got one mail that lists them all.
        assert len(mails) == 1, [m["msg"]["Subject"] for m in mails]
        digest = mails[0]
        assert digest["msg"]["Subject"].startswith("[Tocsin] 40 notifications:")
        text = digest["msg"].get_content()
        for t in tickets:
            assert f"[Tocsin #{t['id']}]" in text
        assert "tocsin_notify_digests_total 1" in srv.get("/metrics").body.decode()
    finally:
        srv.stop()


def test_mail_beyond_the_rate_waits_for_the_window(tmp_path, mailbox):
    extra = helpdesk_extra(smtp_port=mailbox.port).replace(
        "  poll: 100ms\n", "  poll: 100ms\n  rate: {mails: 2, per: 10m}\n")
    srv = Server(tmp_path / "server", extra=extra).start()
    try:
        for n, item in enumerate(("/a", "/b"), 1):
            tid = open_ticket(srv, "web01", "critical", item=item)
            wait_for(lambda: mailbox.matching("alice@shop.example", f"#{tid}]"),
                     what=f"mail {n} within the rate")
        third = open_ticket(srv, "web01", "critical", item="/c")
        # The third waits for the end of the window: its row is put off by
        # about 10 minutes, and nothing more reached alice meanwhile.
        row = wait_for(lambda: [r for r in outbox(srv, f"ticket_id = {third}")
                                if r[2] == "mail" and waiting_for(srv, r[0]) > 9 * 60],
                       what="the third mail to be put off")
        assert row and row[0][5] == "pending"
        assert len(mailbox.to("alice@shop.example")) == 2
    finally:
        srv.stop()


def waiting_for(srv, row_id):
    """Seconds until the outbox row is due."""
    import sqlite3

    con = sqlite3.connect(srv.db)
    try:
        (next_ms,) = con.execute("SELECT next_attempt FROM hd_outbox WHERE id = ?",
                                 (row_id,)).fetchone()
    finally:
        con.close()
    return next_ms / 1000 - time.time()


def test_a_receiver_that_is_down_costs_one_attempt_per_backoff(tmp_path):
    from helpdesk_util import free_port

    port = free_port()  # nothing listens
    hooks = (f"  webhooks:\n    - name: down\n      url: http://127.0.0.1:{port}/hook\n"
             "      events: [opened]\n")
    extra = helpdesk_extra(webhooks=hooks, retry="1s")
    srv = Server(tmp_path / "server", extra=extra).start()
    try:
        post(srv, burst("web01", [f"/d{i}" for i in range(10)]))
        wait_for(lambda: any(r[6] >= 1 for r in outbox(srv, "channel = 'webhook'")),
                 what="a first attempt")
        # The lane waits as a whole after a refused connection: the other
        # nine rows are not tried one after the other at once.
        time.sleep(0.5)
        attempts = sum(r[6] for r in outbox(srv, "channel = 'webhook'"))
        assert attempts == 1, attempts
    finally:
        srv.stop()
