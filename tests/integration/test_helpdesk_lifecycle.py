"""The helpdesk's notifications next to the alert lifecycle, on the real
server with a real SMTP server (aiosmtpd): flapping, reopening, child
tickets behind a dead device and their detaching."""
from conftest import Server, wait_for
from helpdesk_util import (BOB_TOKEN, act, event, helpdesk_extra, open_ticket, outbox,
                           post)


def journal_actions(srv, tid):
    return [j["action"] for j in srv.ticket(tid)["journal"]]


def test_n_flaps_one_ticket_one_technician_mail_no_customer_mail(tmp_path, mailbox):
    srv = Server(tmp_path / "server",
                 extra=helpdesk_extra(smtp_port=mailbox.port, settle="30s")).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        for _ in range(8):
            post(srv, event("web01", "ok"))
            post(srv, event("web01", "critical"))
        tickets = [t for t in srv.tickets("all") if t["host"] == "web01"]
        assert [t["id"] for t in tickets] == [tid]
        t = srv.ticket(tid)
        assert t["flapping"] is True
        actions = journal_actions(srv, tid)
        assert "reopened" in actions and "flapping" in actions
        # A barrier: another problem's mail arrives, so the sender is past
        # everything the flapping queued.
        other = open_ticket(srv, "web01", "critical", item="/var")
        wait_for(lambda: mailbox.matching("alice@shop.example", f"#{other}]"),
                 what="the mail about the other ticket")
        about = [m for m in mailbox.to("alice@shop.example")
                 if f"#{tid}]" in m["msg"]["Subject"]]
        assert len(about) == 1 and "reopened" not in about[0]["msg"]["Subject"]
        assert mailbox.to("it@acme.example") == []
        # Every "solved" mail the flapping queued was cancelled, none waits.
        rows = outbox(srv, f"ticket_id = {tid} AND target = 'it@acme.example'")
        assert rows and all(r[5] == "cancelled" for r in rows)
    finally:
        srv.stop()


def test_a_reopened_ticket_tells_its_assignee(tmp_path, mailbox):
    srv = Server(tmp_path / "server",
                 extra=helpdesk_extra(smtp_port=mailbox.port, settle="1s")).start()
    try:
        tid = open_ticket(srv, "web01", "critical")
        assert act(srv, tid, {"action": "assign", "assignee": "bob"}).status == 200
        post(srv, event("web01", "ok"))
        # The recovery held for notify.settle: the customer heard...
        wait_for(lambda: mailbox.matching("it@acme.example", "solved"),
                 what="the customer's solved mail")
        # ...and then the problem came back: news for the assignee.
        post(srv, event("web01", "critical"))
        assert srv.ticket(tid)["status"] != "resolved"
        mail = wait_for(lambda: mailbox.matching("bob@shop.example", "reopened"),
                        what="the reopened mail to the assignee")[0]
        assert mail["msg"]["Subject"].startswith(f"[Tocsin #{tid}] reopened:")
        assert "open again" in mail["msg"].get_content()
        # A technician reopening by hand tells the assignee, not themselves.
        assert act(srv, tid, {"action": "resolve", "note": "fixed"}, token=BOB_TOKEN).status == 200
        assert act(srv, tid, {"action": "reopen", "text": "not fixed"}).status == 200
        wait_for(lambda: len(mailbox.matching("bob@shop.example", "reopened")) == 2,
                 what="the second reopened mail")
        assert mailbox.matching("alice@shop.example", "reopened") == []
    finally:
        srv.stop()


TOPOLOGY = """\
hosts:
  acme-router: {customer: acme, role: central, tags: [network]}
  web05: {customer: acme, role: central, parent: acme-router}
"""


def test_children_mail_nothing_and_a_detached_child_mails_opened(tmp_path, mailbox):
    srv = Server(tmp_path / "server", extra=helpdesk_extra(smtp_port=mailbox.port))
    (srv.dir / "server.d").mkdir()
    (srv.dir / "server.d" / "50-topology.yaml").write_text(TOPOLOGY)
    srv.start()
    try:
        router = open_ticket(srv, "acme-router", "critical", check="link", item="eth0")
        post(srv, event("web05", "critical", check="heartbeat", item="alive"))
        child = [t for t in srv.get("/api/v1/tickets?state=open&children=true").json()["tickets"]
                 if t["host"] == "web05"][0]
        assert child["parent_id"] == router
        wait_for(lambda: mailbox.matching("alice@shop.example", f"#{router}]"),
                 what="the router's mail")
        # The child opened quietly: nothing was queued for it.
        assert outbox(srv, f"ticket_id = {child['id']}") == []
        # What a technician does on a child is no automatic news: it goes out.
        assert act(srv, child["id"], {"action": "comment", "text": "power is back soon",
                                       "visibility": "customer"}).status == 200
        wait_for(lambda: mailbox.matching("it@acme.example", f"#{child['id']}] update"),
                 what="the visible comment on the child")
        # The router is back, web05 is still silent: a ticket of its own,
        # announced with the normal opening mail.
        post(srv, event("acme-router", "ok", check="link", item="eth0"))
        assert srv.ticket(child["id"])["parent_id"] is None
        mail = wait_for(lambda: [m for m in mailbox.matching("alice@shop.example",
                                                             f"#{child['id']}]")
                                 if "update" not in m["msg"]["Subject"]],
                        what="the detached child's opening mail")
        assert len(mail) == 1
        assert mail[0]["msg"]["Subject"] == (f"[Tocsin #{child['id']}] P1 heartbeat alive "
                                             "on web05")
        assert "A new ticket is waiting" in mail[0]["msg"].get_content()
    finally:
        srv.stop()
