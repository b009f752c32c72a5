"""A dead router, end to end, with nothing simulated.

Two real agents (heartbeat only, every second) report for hosts behind
acme-router; the real snmptrap sends the router's linkDown to the real
trap listener; the agents are killed with SIGKILL, so the collector's own
silence detection finds the hosts silent.  The technician must see one
ticket, the router's, with both hosts as its children, not three tickets.
Then the link comes back while one host is still dead: that host gets a
ticket of its own, and the one that came back is resolved with the router.
"""
import signal
import subprocess

import pytest

from conftest import assert_no_sanitizer_errors, binary, wait_for, write_agent_config
from trap_helpers import LINK_DOWN, LINK_UP, TrapServer, link_varbinds, snmptrap

COMMUNITY = "e2e-community"

HOSTS = f"""\
acme-router:
  customer: acme
  role: central
  tags: [network]
  snmp:
    addresses: [127.0.0.1]
    community: {COMMUNITY}
web01: {{customer: acme, role: central, parent: acme-router}}
db01: {{customer: acme, role: central, parent: acme-router}}
"""

EXTRA = """\
customers:
  acme: {name: ACME GmbH}
liveness:
  missed_heartbeats: 2
  default_interval: 1s
  check_every: 100ms
"""


class Agent:
    """A real tocsin-agent daemon that only sends heartbeats, every second."""

    def __init__(self, tmp_path, server, host):
        d = tmp_path / host
        d.mkdir()
        self.config = write_agent_config(
            d / "agent.yaml", server.url, host=host,
            checks="  disk:\n    enabled: false\n  heartbeat:\n    interval: 1s\n")
        self.log = d / "agent.log"
        self.proc = None

    def start(self):
        self.fp = open(self.log, "ab")
        self.proc = subprocess.Popen([binary("tocsin-agent"), "--config", str(self.config)],
                                     stdout=self.fp, stderr=subprocess.STDOUT)
        return self

    def kill(self):
        """The host dies: no goodbye, no last event."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None
            self.fp.close()

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=20) == 0
            self.proc = None
            self.fp.close()
        assert_no_sanitizer_errors(self.log.read_text(errors="replace"), "tocsin-agent")


@pytest.fixture
def world(tmp_path):
    srv = TrapServer(tmp_path / "srv", hosts=HOSTS, traps="")
    srv.config.write_text(srv.config.read_text() + EXTRA)
    srv.start()
    agents = {h: Agent(tmp_path, srv, h) for h in ("web01", "db01")}
    yield srv, agents
    for a in agents.values():
        a.stop()
    srv.stop()


def open_tickets(srv, children=False):
    q = "/api/v1/tickets?state=open" + ("&children=true" if children else "")
    r = srv.get(q)
    assert r.status == 200, r.body
    return r.json()["tickets"]


def key(t):
    return (t["host"], t["check"], t["item"])


def test_dead_router_is_one_ticket_and_the_hosts_behind_it_are_its_children(world):
    srv, agents = world
    for a in agents.values():
        a.start()
    wait_for(lambda: srv.metric('tocsin_heartbeat_hosts{state="alive"}') == 2,
             what="both agents' heartbeats")

    # The router's uplink goes down (a real trap), and its hosts go quiet.
    sent = snmptrap(srv.trap_port, LINK_DOWN, link_varbinds(1, "eth0"), community=COMMUNITY)
    assert sent.returncode == 0, sent.stderr
    for a in agents.values():
        a.kill()
    wait_for(lambda: srv.metric('tocsin_heartbeat_hosts{state="silent"}') == 2,
             what="silence detection to find both hosts")

    def settled():
        every = open_tickets(srv, children=True)
        return len(every) == 3 and all(t["parent_id"] for t in every
                                       if t["host"] != "acme-router") and every
    every = wait_for(settled, what="the hosts' silence tickets attached to the router's")

    top = open_tickets(srv)
    assert [key(t) for t in top] == [("acme-router", "link", "eth0")]
    router = top[0]
    assert router["children_count"] == 2
    assert "eth0 on acme-router is down" in router["summary"]
    children = srv.ticket(router["id"])["children"]
    assert sorted(c["host"] for c in children) == ["db01", "web01"]
    for c in every:
        if c["host"] != "acme-router":
            assert (c["check"], c["item"], c["state"]) == ("heartbeat", "alive", "critical")
            assert "silent" in c["summary"]

    # db01 comes back, then the link: web01 is still dead and stands alone.
    agents["db01"].start()
    wait_for(lambda: srv.metric('tocsin_heartbeat_hosts{state="alive"}') == 1,
             what="db01's heartbeat")
    sent = snmptrap(srv.trap_port, LINK_UP, link_varbinds(1, "eth0", oper=1), community=COMMUNITY)
    assert sent.returncode == 0, sent.stderr

    def after():
        top = open_tickets(srv)
        return [key(t) for t in top] == [("web01", "heartbeat", "alive")] and top
    top = wait_for(after, what="the router's ticket to resolve and web01 to stand alone")
    assert top[0]["parent_id"] is None
    assert srv.ticket(router["id"])["status"] in ("resolved", "recovered")
    journal = [j["action"] for j in srv.ticket(top[0]["id"])["journal"]]
    assert "detached" in journal
    # db01 recovered while attached: no ticket of its own is left open
    assert not [t for t in open_tickets(srv, children=True) if t["host"] == "db01"]
