"""GET /api/v1/helpdesk/scales: what the console offers a technician to
pick (impacts, urgencies, priorities, queues, people), from the running
helpdesk configuration, to any logged-in role, and as a SIGHUP changed it."""
import json
import signal

from conftest import AGENT_TOKEN, TECH_TOKEN, Server, wait_for
from console_util import Session, create_account
from helpdesk_util import act, helpdesk_extra, open_ticket

PATH = "/api/v1/helpdesk/scales"
PEOPLE = [
    {"id": "alice", "name": "Alice Adams", "level": 1, "queues": ["managed-it"]},
    {"id": "bob", "name": "Bob Builder", "level": 2, "queues": ["managed-it", "data-centre"]},
    {"id": "carol", "name": "Carol Chief", "level": 3, "queues": ["managed-it"]},
]


def test_the_scales_need_a_login_and_name_no_address(tmp_path):
    srv = Server(tmp_path / "server", extra=helpdesk_extra()).start()
    try:
        # Neither a session nor a token: 401, as for the tickets.
        assert srv.request("GET", PATH).status == 401
        assert srv.request("GET", PATH, token="not-a-token-0123456789").status == 401
        assert srv.request("GET", PATH, headers={"Cookie": "tocsin_session=forged"}).status == 401
        # An agent's token does not read the helpdesk.
        assert srv.request("GET", PATH, token=AGENT_TOKEN).status == 403

        # A viewer's console session is enough.
        create_account(srv, "vera", role="viewer")
        r = Session(srv, "vera").request("GET", PATH)
        assert r.status == 200, r.body
        scales = r.json()
        assert scales == {
            # helpdesk_extra() keeps the default scales.
            "impacts": ["high", "medium", "low"],
            "urgencies": ["critical", "high", "medium", "low"],
            "priorities": ["P1", "P2", "P3", "P4"],
            "queues": ["managed-it", "data-centre", "shop"],
            "people": PEOPLE,
        }
        # The people's (and queues') e-mail addresses stay in the configuration.
        assert "@" not in json.dumps(scales)
        # A technician's bearer token reads the same.
        assert srv.get(PATH, token=TECH_TOKEN).json() == scales
    finally:
        srv.stop()


def test_a_reload_shows_the_new_scales(tmp_path):
    srv = Server(tmp_path / "server", extra=helpdesk_extra()).start()
    try:
        assert srv.get(PATH).json()["impacts"] == ["high", "medium", "low"]
        changed = helpdesk_extra().replace(
            "helpdesk:\n", "helpdesk:\n  impacts: [severe, high, medium, low]\n"
                           "  priorities: [P1, P2, P3, P4, P5]\n").replace(
            "people:\n", "people:\n  dave: {name: Dave Diver, level: 2, queues: [shop]}\n")
        srv.write_config(extra=changed)
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP: configuration reloaded" in srv.log_text(),
                 what="the reload")
        scales = srv.get(PATH).json()
        assert scales["impacts"] == ["severe", "high", "medium", "low"]
        assert scales["priorities"] == ["P1", "P2", "P3", "P4", "P5"]
        assert scales["people"] == [
            {"id": "dave", "name": "Dave Diver", "level": 2, "queues": ["shop"]}, *PEOPLE]
        # What the endpoint offers is what an action is checked against.
        ticket = open_ticket(srv, "web01")
        r = act(srv, ticket, {"action": "impact", "impact": "severe"})
        assert r.status == 200, r.body
        assert srv.ticket(ticket)["impact"] == "severe"
        assert act(srv, ticket, {"action": "assign", "assignee": "dave"}).status == 200
    finally:
        srv.stop()
