"""A dead router and the hosts behind it, against the real server.

The events are exactly those the trap listener and silence detection
raise: (acme-router, link, eth0) critical for the router's linkDown,
(host, heartbeat, alive) critical for a host that went silent.  The
integrator adds the end-to-end version with real snmptrap and real
silence detection.
"""
import pytest

from conftest import TECH_TOKEN, run_cli
from lifecycle_helpers import event, find, post, start_server, metric

INVENTORY = """
customers:
  acme: {name: ACME GmbH}
hosts:
  acme-router: {customer: acme, role: central, tags: [network]}
  web01: {customer: acme, role: central, parent: acme-router}
  web02: {customer: acme, role: central, parent: acme-router}
  mail01: {customer: acme, role: central, parent: acme-router}
"""


@pytest.fixture
def server(tmp_path):
    srv = start_server(tmp_path, INVENTORY)
    yield srv
    srv.stop()


def test_router_down_gives_one_parent_ticket_with_the_hosts_as_children(server):
    # hosts often go silent before the router's trap arrives
    post(server, "web01", event("heartbeat", "alive", "critical", "web01 silent for 3 min"))
    post(server, "acme-router", event("link", "eth0", "critical", "eth0 on acme-router is down"))
    post(server, "web02", event("heartbeat", "alive", "critical", "web02 silent for 3 min"))
    post(server, "mail01", event("heartbeat", "alive", "critical", "mail01 silent for 3 min"))

    top = server.tickets("open")
    assert len(top) == 1, top
    router = top[0]
    assert (router["host"], router["check"], router["item"]) == ("acme-router", "link", "eth0")
    assert router["children_count"] == 3

    detail = server.ticket(router["id"])
    assert sorted(c["host"] for c in detail["children"]) == ["mail01", "web01", "web02"]
    everything = server.get("/api/v1/tickets?state=open&children=true").json()["tickets"]
    assert len(everything) == 4
    web01 = find(everything, "web01", "heartbeat", "alive")
    assert web01["parent_id"] == router["id"]
    journal = [j["action"] for j in server.ticket(web01["id"])["journal"]]
    assert journal == ["opened", "attached"]  # adopted after the fact
    assert metric(server, "tocsin_topology_children_total", 'change="attached"') == 3

    # the CLI shows the same to a technician
    env = {"TOCSIN_URL": server.url, "TOCSIN_TOKEN": TECH_TOKEN}
    cli = run_cli("ticket", str(router["id"]), env=env)
    assert cli.returncode == 0, cli.stderr
    assert "Children (hosts behind this device):" in cli.stdout
    assert "web01" in cli.stdout and "mail01" in cli.stdout
    cli = run_cli("ticket", str(web01["id"]), env=env)
    assert f"parent:      #{router['id']}" in cli.stdout
    assert "web01" not in run_cli("tickets", env=env).stdout
    assert "web01" in run_cli("tickets", "--children", env=env).stdout

    # mail01 comes back before the router; the router comes back; web01
    # stays silent and becomes a ticket of its own
    post(server, "mail01", event("heartbeat", "alive", "ok", "mail01 back"))
    post(server, "web02", event("heartbeat", "alive", "ok", "web02 back"))
    post(server, "acme-router", event("link", "eth0", "ok", "eth0 on acme-router is up"))
    top = server.tickets("open")
    assert [(t["host"], t["check"]) for t in top] == [("web01", "heartbeat")]
    assert top[0]["parent_id"] is None
    web01 = server.ticket(top[0]["id"])
    assert web01["status"] == "new"
    assert [j["action"] for j in web01["journal"]][-1] == "detached"
    for host in ("mail01", "web02"):
        t = find(server.get("/api/v1/tickets?state=all&children=true").json()["tickets"],
                 host, "heartbeat", "alive")
        assert t["status"] == "resolved" and t["parent_id"] == router["id"]
    assert server.ticket(router["id"])["status"] == "resolved"
    assert metric(server, "tocsin_topology_children_total", 'change="detached"') == 1


def test_bad_children_parameter_is_a_clear_400(server):
    r = server.get("/api/v1/tickets?children=maybe")
    assert r.status == 400
    assert r.json()["error"] == "query parameter children: 'maybe' is not true or false"
