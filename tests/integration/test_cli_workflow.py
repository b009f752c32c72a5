"""Working tickets from the command line against the real server."""
import pytest

from conftest import TECH_TOKEN, Server, run_cli
from helpdesk_util import BOB_TOKEN, helpdesk_extra, open_ticket


@pytest.fixture
def desk(tmp_path):
    srv = Server(tmp_path / "server", extra=helpdesk_extra()).start()
    yield srv
    srv.stop()


def cli(server, *args, token=TECH_TOKEN):
    return run_cli(*args, env={"TOCSIN_URL": server.url, "TOCSIN_TOKEN": token,
                               "HOME": str(server.dir)})


def test_cli_walks_a_ticket_through_its_life(desk):
    tid = str(open_ticket(desk, "web01", "critical"))
    r = cli(desk, "ack", tid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (f"ticket #{tid}: acknowledged, priority P1, queue managed-it, "
                                "level 1, assignee nobody")
    assert cli(desk, "assign", tid, "bob").stdout.endswith("assignee bob\n")
    assert cli(desk, "unassign", tid, "back", "to", "the", "queue").stdout.endswith(
        "assignee nobody\n")
    assert cli(desk, "assign", tid, "bob").stdout.endswith("assignee bob\n")
    assert cli(desk, "comment", tid, "--customer", "We", "are", "on", "it").returncode == 0
    assert "waiting" in cli(desk, "ask", tid, "--third-party", "Vendor?").stdout
    assert "in_progress" in cli(desk, "start", tid).stdout
    assert "level 2" in cli(desk, "escalate", tid, "storage").stdout
    assert "priority P2" in cli(desk, "priority", tid, "P2").stdout
    r = cli(desk, "resolve", tid, "replaced", "the", "disk", token=BOB_TOKEN)
    assert r.returncode == 0 and "resolved" in r.stdout
    assert "closed" in cli(desk, "close", tid).stdout
    r = cli(desk, "ticket", tid)
    assert "priority:    P2 (impact high, urgency high)" in r.stdout
    assert "queue:       managed-it, level 2, category managed-it, assignee bob" in r.stdout
    assert "knowledge:   Runbook: https://wiki.shop.example/disk" in r.stdout
    t = desk.ticket(int(tid))
    comment = [j for j in t["journal"] if j["action"] == "comment"][0]
    assert (comment["new"], comment["text"]) == ("customer", "We are on it")
    ask = [j for j in t["journal"] if j["action"] == "ask"][0]
    assert ask["new"] == "third_party"
    resolve = [j for j in t["journal"] if j["new"] == "resolved"][0]
    assert (resolve["actor"], resolve["text"]) == ("bob", "replaced the disk")


def test_cli_errors_are_clear(desk):
    tid = str(open_ticket(desk, "web01", "critical"))
    r = cli(desk, "close", tid)
    assert r.returncode == 1
    assert f"HTTP 409: cannot close ticket {tid}: it is new" in r.stderr
    r = cli(desk, "resolve", tid)
    assert r.returncode == 2 and "the text is missing" in r.stderr
    r = cli(desk, "assign", tid)
    assert r.returncode == 2 and "an argument is missing" in r.stderr
    r = cli(desk, "ack", "x")
    assert r.returncode == 2 and "a ticket id is a positive number" in r.stderr
    r = cli(desk, "merge", tid, "nine")
    assert r.returncode == 2 and "merge into a ticket id" in r.stderr
    r = cli(desk, "ack", "777")
    assert r.returncode == 1 and "HTTP 404: no ticket 777" in r.stderr


def test_cli_text_may_hold_words_that_look_like_options(desk):
    tid = str(open_ticket(desk, "web01", "critical"))
    r = cli(desk, "comment", tid, "rm", "-rf", "/srv/old", "was", "the", "fix")
    assert r.returncode == 0, r.stderr
    r = cli(desk, "comment", tid, "--customer", "-v", "shows", "it")
    assert r.returncode == 0, r.stderr
    # "--" for a text that starts with one of the command's option names.
    r = cli(desk, "comment", tid, "--", "--customer", "asked", "for", "this")
    assert r.returncode == 0, r.stderr
    r = cli(desk, "assign", tid, "bob", "--json", "-", "handover")
    assert r.returncode == 0, r.stderr
    comments = [(j["new"], j["text"]) for j in desk.ticket(int(tid))["journal"]
                if j["action"] in ("comment", "assignee")]
    assert comments == [("internal", "rm -rf /srv/old was the fix"),
                        ("customer", "-v shows it"),
                        ("internal", "--customer asked for this"),
                        ("bob", "- handover")]
    # Before the ticket id only options may come.
    r = cli(desk, "comment", "--force", tid, "text")
    assert r.returncode == 2 and "unknown option --force" in r.stderr
