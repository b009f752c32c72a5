"""Silences (maintenance windows) against the real server: the API and
the CLI with their errors, no ticket while silenced, recovery during a
silence, and the ticket a problem gets when its silence is removed."""
import json

import pytest

from conftest import AGENT_TOKEN, TECH_TOKEN, http, run_cli, wait_for
from lifecycle_helpers import event, find, metric, post, start_server

VIEWER = "viewer-token-0123456789abcdef"
EXTRA = f"""
lifecycle:
  tick: 100ms
silences:
  max_duration: 7d
"""


@pytest.fixture
def server(tmp_path):
    srv = start_server(tmp_path, EXTRA)
    # a viewer may read silences but not make them
    text = srv.config.read_text().replace(
        "auth:\n  tokens:\n",
        f"auth:\n  tokens:\n    - name: victor\n      token: {VIEWER}\n      role: viewer\n")
    srv.stop()
    srv.config.write_text(text)
    srv.start()
    yield srv
    srv.stop()


def create(server, token=TECH_TOKEN, **body):
    return http("POST", server.url + "/api/v1/silences", json.dumps(body).encode(), token=token)


def test_silence_api_and_its_errors(server):
    r = create(server, host="web*", check="disk", duration="2h", comment="RAID rebuild")
    assert r.status == 201, r.body
    s = r.json()
    assert (s["host"], s["check"], s["item"], s["state"]) == ("web*", "disk", None, "active")
    assert s["author"] == "alice"  # the token's name, never the body's
    assert s["comment"] == "RAID rebuild"

    cases = [
        ({"host": "a", "duration": "5x", "comment": "c"},
         "duration: '5x' is not a duration such as 30m, 2h or 7d"),
        ({"host": "a", "start": "2030-01-01T12:00:00Z", "end": "2030-01-01T11:00:00Z", "comment": "c"},
         "end 2030-01-01T11:00:00.000Z is not after start 2030-01-01T12:00:00.000Z"),
        ({"host": "a", "duration": "8d", "comment": "c"},
         "is longer than the longest silence allowed (7 d, silences.max_duration)"),
        ({"host": "a", "duration": "1h"}, "comment: required"),
        ({"duration": "1h", "comment": "c"}, "host: required"),
        ({"host": "a", "duration": "1h", "comment": "c", "author": "mallory"},
         "unknown key 'author'"),
    ]
    for body, message in cases:
        r = create(server, **body)
        assert r.status == 400, (body, r.body)
        assert message in r.json()["error"], (body, r.json())
    r = http("POST", server.url + "/api/v1/silences", b"{\"host\": ", token=TECH_TOKEN)
    assert r.status == 400 and r.json()["error"].startswith("malformed JSON at line 1")

    # roles: technicians create and remove; viewers read; agents neither
    assert create(server, token=VIEWER, host="a", duration="1h", comment="c").status == 403
    assert create(server, token=AGENT_TOKEN, host="a", duration="1h", comment="c").status == 403
    assert server.get("/api/v1/silences", token=VIEWER).status == 200
    assert server.get("/api/v1/silences", token=AGENT_TOKEN).status == 403
    r = http("DELETE", server.url + f"/api/v1/silences/{s['id']}", token=VIEWER)
    assert r.status == 403

    r = server.get("/api/v1/silences?state=active")
    assert [x["id"] for x in r.json()["silences"]] == [s["id"]]
    assert server.get("/api/v1/silences?state=sleeping").json()["error"] == \
        "query parameter state: 'sleeping' is not one of active, pending, expired, all"
    r = http("DELETE", server.url + f"/api/v1/silences/{s['id']}", token=TECH_TOKEN)
    assert r.status == 200
    assert r.json()["state"] == "expired" and r.json()["removed_by"] == "alice"
    # expired silences stay listed, as expired
    listed = server.get("/api/v1/silences").json()["silences"]
    assert [(x["id"], x["state"]) for x in listed] == [(s["id"], "expired")]
    r = http("DELETE", server.url + f"/api/v1/silences/{s['id']}", token=TECH_TOKEN)
    assert r.status == 409 and f"silence {s['id']} has expired already" in r.json()["error"]
    r = http("DELETE", server.url + "/api/v1/silences/4242", token=TECH_TOKEN)
    assert r.status == 404 and r.json()["error"] == "no silence 4242"
    r = http("DELETE", server.url + "/api/v1/silences/x1", token=TECH_TOKEN)
    assert r.status == 400 and r.json()["error"] == "'x1' is not a silence id (a positive number)"
    assert server.get("/api/v1/silences/4242").status == 404


def test_silence_holds_back_tickets_but_not_resolutions(server):
    # a ticket opened before the maintenance
    post(server, "web01", event("disk", "/srv", "critical"))
    before = server.tickets("open")[0]
    r = create(server, host="web01", duration="1h", comment="kernel update")
    assert r.status == 201
    sid = r.json()["id"]

    # during the maintenance the host goes silent: stored, no ticket
    r = post(server, "web01", event("heartbeat", "alive", "critical", "web01 silent for 3 min"))
    assert r["accepted"] == 1 and r["tickets_opened"] == 0
    assert server.db_count("events") == 2
    assert metric(server, "tocsin_silenced_events_total") == 1
    assert metric(server, "tocsin_problems_waiting", 'phase="silenced"') == 1
    assert metric(server, "tocsin_silences", 'state="active"') == 1
    # the old problem recovers during the silence: resolved all the same
    r = post(server, "web01", event("disk", "/srv", "ok"))
    assert r["tickets_resolved"] == 1
    assert server.ticket(before["id"])["status"] == "resolved"

    # the silence is lifted with the host still silent: not forgotten
    r = http("DELETE", server.url + f"/api/v1/silences/{sid}", token=TECH_TOKEN)
    assert r.status == 200
    t = wait_for(lambda: find(server.tickets("open"), "web01", "heartbeat", "alive"),
                 timeout=10, what="the ticket held back by the silence")
    journal = [j["action"] for j in server.ticket(t["id"])["journal"]]
    assert journal == ["opened", "silence"]


def test_cli_silence_add_list_remove(server, tmp_path):
    env = {"TOCSIN_URL": server.url, "TOCSIN_TOKEN": TECH_TOKEN, "HOME": str(tmp_path)}
    r = run_cli("silence", "add", "--host", "db*", "--check", "backup", "--duration", "30m",
                "--comment", "restore test", env=env)
    assert r.returncode == 0, r.stderr
    assert "db*" in r.stdout and "restore test" in r.stdout and "active" in r.stdout
    sid = r.stdout.splitlines()[1].split()[0]
    r = run_cli("silence", "list", "--json", env=env)
    assert r.returncode == 0
    assert json.loads(r.stdout)["silences"][0]["comment"] == "restore test"
    r = run_cli("silence", "list", "--state", "active", env=env)
    assert r.returncode == 0 and "restore test" in r.stdout
    r = run_cli("silence", "remove", sid, env=env)
    assert r.returncode == 0 and "expired" in r.stdout

    # errors: the server's own words, and the CLI's usage
    r = run_cli("silence", "add", "--host", "x", "--duration", "soon", "--comment", "c", env=env)
    assert r.returncode == 1
    assert "HTTP 400: duration: 'soon' is not a duration such as 30m, 2h or 7d" in r.stderr
    r = run_cli("silence", "add", "--host", "x", "--start", "2030-01-01T12:00:00Z",
                "--end", "2030-01-01T10:00:00Z", "--comment", "c", env=env)
    assert r.returncode == 1 and "is not after start" in r.stderr
    r = run_cli("silence", "remove", "999", env=env)
    assert r.returncode == 1 and "HTTP 404: no silence 999" in r.stderr
    r = run_cli("silence", "add", "--host", "x", "--duration", "1h", env=env)
    assert r.returncode == 2 and "needs --comment" in r.stderr
    r = run_cli("silence", "mute", env=env)
    assert r.returncode == 2 and "unknown subcommand 'mute'" in r.stderr
    r = run_cli("silence", "remove", "abc", env=env)
    assert r.returncode == 2 and "a silence id is a positive number" in r.stderr
