"""Helpers for the helpdesk tests: a real SMTP server (aiosmtpd), a real
HTTP webhook receiver, events and actions against the real tocsin-server."""
import email
import email.policy
import json
import socket
import sqlite3
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from conftest import AGENT_TOKEN, TECH_TOKEN, http

BOB_TOKEN = "bob-token-0123456789abcdef"
CAROL_TOKEN = "carol-token-0123456789abcdef"

# Extra tokens and the helpdesk configuration every test starts from.  The
# calendar is open round the clock so that targets of seconds run in real
# time, whatever hour the test runs at.
HELPDESK_CONFIG = """\
    - name: bob
      token: {bob}
      role: technician
    - name: carol
      token: {carol}
      role: technician
customers:
  acme:
    name: ACME GmbH
    contract: fast
    contacts: [it@acme.example]
hosts:
  web01: {{customer: acme, role: central}}
  backup01: {{customer: acme, role: central, tags: [backup]}}
  printer01: {{customer: acme, role: decentral}}
contracts:
  fast:
    name: Round the clock, seconds
    calendar:
      timezone: Europe/Berlin
      hours:
        daily: 00:00-24:00
    targets:
      P1: {{response: {response}, resolution: {resolution}}}
      P2: {{response: {response}, resolution: {resolution}}}
      P3: {{response: 1h, resolution: 1d}}
      P4: {{response: 1h, resolution: 1d}}
people:
  alice: {{name: Alice Adams, email: alice@shop.example, level: 1, queues: [managed-it]}}
  bob: {{name: Bob Builder, email: bob@shop.example, level: 2, queues: [managed-it, data-centre]}}
  carol: {{name: Carol Chief, email: carol@shop.example, level: 3, queues: [managed-it]}}
helpdesk:
  queues:
    managed-it: {{email: managed-it@shop.example, lead: carol}}
    data-centre: {{}}
    shop: {{}}
  default_queue: managed-it
  routing:
    - match: {{tag: backup}}
      set: {{category: data-centre, queue: data-centre, level: 2}}
    - match: {{role: decentral}}
      set: {{queue: shop, urgency: low}}
  knowledge:
    disk: "Runbook: https://wiki.shop.example/disk"
  warn_at: {warn_at}
  close_after: {close_after}
  status_updates: {status_updates}
  tick: 100ms
notify:
  from: "Tocsin monitoring <tocsin@shop.example>"
  signature: "-- \\nTocsin, the monitoring system of Example IT"
  settle: {settle}
  poll: 100ms
  retry: {{initial: {retry}, max: 2s, attempts: 10}}
{smtp}{webhooks}"""


def helpdesk_extra(smtp_port=None, webhooks="", response="1h", resolution="1d",
                   warn_at="75%", close_after="7d", status_updates="0s",
                   settle="1s", retry="200ms"):
    smtp = (f"  smtp:\n    url: smtp://127.0.0.1:{smtp_port}\n    starttls: none\n"
            "    timeout: 5s\n") if smtp_port else ""
    return HELPDESK_CONFIG.format(bob=BOB_TOKEN, carol=CAROL_TOKEN, response=response,
                                  resolution=resolution, warn_at=warn_at,
                                  close_after=close_after, status_updates=status_updates,
                                  settle=settle, retry=retry, smtp=smtp,
                                  webhooks=webhooks)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """A real SMTP server on loopback that keeps what it receives."""

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                  "msg": msg})
        return "250 OK"

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()

    def to(self, address):
        with self.lock:
            return [m for m in self.messages if address in m["to"]]

    def matching(self, address, subject_part):
        return [m for m in self.to(address) if subject_part in m["msg"]["Subject"]]


class WebhookReceiver:
    """A real HTTP server that fails the first `failures` requests."""

    def __init__(self, failures=0):
        self.failures = failures
        self.requests = []  # (status answered, idempotency key header, body)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    status = 500 if receiver.failures > 0 else 200
                    receiver.failures -= 1
                    receiver.requests.append((status, self.headers.get("Idempotency-Key"),
                                              json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def accepted(self):
        with self.lock:
            return [r for r in self.requests if r[0] == 200]

    def attempts(self):
        with self.lock:
            return list(self.requests)


class ZammadReceiver:
    """A real HTTP server that answers like Zammad's ticket API: POST
    /api/v1/tickets creates a ticket and answers its id, PUT
    /api/v1/tickets/{id} updates it.  Keeps (method, path, body)."""

    def __init__(self, first_id=4711):
        self.requests = []
        self.lock = threading.Lock()
        self.next_id = first_id
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status, doc):
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _read(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with receiver.lock:
                    receiver.requests.append((self.command, self.path, body))
                return body

            def do_POST(self):
                body = self._read()
                with receiver.lock:
                    ticket_id = receiver.next_id
                    receiver.next_id += 1
                self._answer(201, {"id": ticket_id, "title": body.get("title")})

            def do_PUT(self):
                self._read()
                self._answer(200, {"id": int(self.path.rsplit("/", 1)[1])})

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def seen(self):
        with self.lock:
            return list(self.requests)


class BlackHole:
    """A TCP listener that accepts connections and never says a word: a
    webhook receiver that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(conn)

    def start(self):
        self.thread.start()
        return self

    def accepted(self):
        with self.lock:
            return len(self.conns)

    def closed(self):
        """How many of the connections the client closed (what it sent is
        read and dropped)."""
        with self.lock:
            conns = list(self.conns)
        n = 0
        for c in conns:
            c.setblocking(False)
            try:
                while c.recv(65536):
                    pass
                n += 1
            except BlockingIOError:
                pass
            except ConnectionResetError:
                n += 1
        return n

    def stop(self):
        self.sock.close()
        with self.lock:
            for c in self.conns:
                c.close()


def event(host, state, item="/srv", check="disk", summary=None):
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"host": host, "events": [{
        "id": str(uuid.uuid4()), "check": check, "item": item, "state": state,
        "summary": summary or f"{item} is {state}", "observed_at": now}]}


def many_events(host, n, state, item="/srv"):
    """One batch of n events of host's disk check on item/0 .. item/n-1:
    as many tickets when they are problems."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"host": host, "events": [
        {"id": str(uuid.uuid4()), "check": "disk", "item": f"{item}/{i}", "state": state,
         "summary": f"{item}/{i} is {state}", "observed_at": now}
        for i in range(n)]}


def post(server, payload):
    r = server.post_events(payload)
    assert r.status == 200, r.body
    return r.json()


def open_ticket(server, host, state="critical", item="/srv", check="disk"):
    post(server, event(host, state, item, check))
    for t in server.tickets("open"):
        if t["host"] == host and t["item"] == item and t["check"] == check:
            return t["id"]
    raise AssertionError(f"no open ticket for {host} {item}")


def act(server, ticket_id, body, token=TECH_TOKEN):
    return http("POST", f"{server.url}/api/v1/tickets/{ticket_id}/actions",
                body=json.dumps(body).encode(), token=token)


def outbox(server, where="1"):
    con = sqlite3.connect(server.db)
    try:
        return con.execute(f"SELECT id, ticket_id, channel, target, subject, state, "
                           f"attempts, idem_key FROM hd_outbox WHERE {where} ORDER BY id"
                           ).fetchall()
    finally:
        con.close()


__all__ = ["AGENT_TOKEN", "TECH_TOKEN", "BOB_TOKEN", "CAROL_TOKEN", "Mailbox",
           "WebhookReceiver", "ZammadReceiver", "BlackHole", "helpdesk_extra", "event",
           "many_events", "post", "open_ticket", "act", "outbox"]
