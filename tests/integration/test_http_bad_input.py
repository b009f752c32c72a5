"""Every bad request gets a clear 4xx and loses nothing already accepted."""
import json
import socket
import uuid

import pytest

from conftest import ADMIN_TOKEN, AGENT_TOKEN, TECH_TOKEN, Server, http


def event(state="critical", item="/srv", **over):
    ev = {"id": str(uuid.uuid4()), "check": "disk", "item": item, "state": state,
          "summary": f"{item} is {state}", "metrics": {"used_percent": 97.5},
          "observed_at": "2026-11-22T10:00:00Z"}
    ev.update(over)
    return ev


def test_valid_batch_is_accepted(server):
    r = server.post_events({"host": "h1", "events": [event(), event(item="/var")]})
    assert r.status == 200, r.body
    assert r.json()["accepted"] == 2
    assert r.json()["tickets_opened"] == 2


def test_malformed_json_is_400_with_position_and_stores_nothing(server):
    r = server.post_events(None, raw=b'{"host": "h1",\n "events": [{"id": }]}')
    assert r.status == 400
    msg = r.json()["error"]
    assert "invalid JSON at line 2, column" in msg
    assert server.db_count("events") == 0
    assert server.db_count("tickets") == 0


def test_batch_is_all_or_nothing(server):
    good = event(item="/good")
    bad = event(item="/bad", state="on fire")
    r = server.post_events({"host": "h1", "events": [good, bad]})
    assert r.status == 400
    assert r.json()["error"] == \
        "events[1].state: 'on fire' is not one of ok, warning, critical, unknown"
    assert server.db_count("events") == 0
    assert server.tickets("all") == []
    # the valid event on its own is then accepted
    assert server.post_events({"host": "h1", "events": [good]}).status == 200
    assert len(server.tickets("open")) == 1


@pytest.mark.parametrize("field", ["id", "check", "item", "state", "summary", "observed_at"])
def test_missing_field_is_named(server, field):
    ev = event()
    del ev[field]
    r = server.post_events({"host": "h1", "events": [ev]})
    assert r.status == 400
    assert r.json()["error"] == f"events[0].{field}: missing"


def test_oversized_body_is_413(tmp_path):
    srv = Server(tmp_path / "srv", max_body="4KiB").start()
    try:
        big = {"host": "h1", "events": [event(summary="x" * 2000) for _ in range(3)]}
        r = srv.post_events(big)
        assert r.status == 413
        assert "exceeds the limit of 4096 bytes" in r.json()["error"]
        # chunked upload without Content-Length is bounded as well
        body = json.dumps(big).encode()
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            head = (f"POST /api/v1/events HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: Bearer {AGENT_TOKEN}\r\n"
                    "Content-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            s.sendall(head.encode())
            for i in range(0, len(body), 1000):
                chunk = body[i:i + 1000]
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            s.sendall(b"0\r\n\r\n")
            reply = b""
            while True:
                data = s.recv(65536)
                if not data:
                    break
                reply += data
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
        assert srv.db_count("events") == 0
    finally:
        srv.stop()


def test_batch_over_event_limit_is_400(tmp_path):
    srv = Server(tmp_path / "srv", max_batch=5).start()
    try:
        r = srv.post_events({"host": "h1", "events": [event() for _ in range(6)]})
        assert r.status == 400
        assert "6 events in one batch, the limit is 5" in r.json()["error"]
    finally:
        srv.stop()


def test_missing_or_wrong_token_is_401(server):
    payload = json.dumps({"host": "h1", "events": [event()]}).encode()
    r = http("POST", server.url + "/api/v1/events", body=payload)
    assert r.status == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.json()["error"] == "missing or invalid bearer token"
    r = http("POST", server.url + "/api/v1/events", body=payload, token="wrong-token-1234567890")
    assert r.status == 401
    r = http("GET", server.url + "/api/v1/tickets")
    assert r.status == 401
    assert server.db_count("events") == 0


def test_roles_are_enforced(server):
    # an agent credential may post events but not read tickets
    r = server.get("/api/v1/tickets", token=AGENT_TOKEN)
    assert r.status == 403
    assert "may not GET" in r.json()["error"]
    # a technician may read but not pose as an agent
    r = server.post_events({"host": "h1", "events": [event()]}, token=TECH_TOKEN)
    assert r.status == 403
    assert server.get("/api/v1/tickets", token=ADMIN_TOKEN).status == 200


def test_unknown_paths_methods_and_params(server):
    assert server.get("/api/v1/nothing").status == 404
    r = http("DELETE", server.url + "/api/v1/tickets", token=TECH_TOKEN)
    assert r.status == 405
    r = server.get("/api/v1/tickets?state=sideways")
    assert r.status == 400
    assert "state: 'sideways' is not one of open, resolved, all" in r.json()["error"]
    assert server.get("/api/v1/tickets?limit=-1").status == 400
    assert server.get("/api/v1/tickets/abc").status == 400
    r = server.get("/api/v1/tickets/999")
    assert r.status == 404
    assert r.json()["error"] == "no ticket 999"


def test_resent_batch_is_idempotent(server):
    batch = {"host": "h1", "events": [event(), event(state="warning")]}
    assert server.post_events(batch).json()["accepted"] == 2
    again = server.post_events(batch).json()
    assert again["accepted"] == 0 and again["duplicates"] == 2
    tickets = server.tickets("all")
    assert len(tickets) == 1 and tickets[0]["occurrence_count"] == 2


def test_metrics_need_a_token_and_count_batches(server):
    assert server.get("/metrics", token=None).status == 401
    ok = server.post_events({"host": "h1", "events": [{
        "id": "0b7e0f4c-3f0e-4c1a-9d7e-1f2a3b4c5d6e", "check": "disk",
        "item": "/", "state": "warning", "summary": "s",
        "observed_at": "2026-11-22T10:00:00Z"}]})
    assert ok.status == 200, ok.body
    assert server.post_events(None, raw=b"{").status == 400
    r = server.get("/metrics")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = r.body.decode()
    assert "# TYPE tocsin_events_received_total counter" in text
    assert "tocsin_events_received_total 1\n" in text
    assert 'tocsin_ingest_batches_total{result="committed"} 1\n' in text
    assert 'tocsin_ingest_batches_total{result="rejected"} 1\n' in text
    assert 'tocsin_ingest_tickets_total{change="opened"} 1\n' in text
    assert "tocsin_writer_commits_total " in text


@pytest.mark.parametrize("path, status", [("/nope%ff", 404),
                                          ("/api/v1/tickets/%ff", 400),
                                          ("/api/v1/silences/%c3", 400)])
def test_error_quoting_invalid_utf8_still_says_why(server, path, status):
    # the message quotes the request's bytes: jansson refuses invalid
    # UTF-8, which used to leave the answer without its reason
    r = server.get(path)
    assert r.status == status
    msg = r.json()["error"]
    assert msg and "?" in msg, msg


def test_control_characters_in_free_text_are_made_harmless(server):
    # an escape sequence must not reach a technician's terminal via the CLI
    ev = event(summary="\x1b[2J\x1b]0;pwned\x07disk\tfull\nsee log\x7f",
               context={"lines": ["\x1b[31mfailed\x1b[0m"]})
    r = server.post_events({"host": "h1", "events": [ev]})
    assert r.status == 200, r.body
    t = server.tickets("open")[0]
    assert t["summary"] == "?[2J?]0;pwned?disk\tfull\nsee log?"
    occ = server.ticket(t["id"])["occurrences"][0]
    assert occ["context"] == {"lines": ["?[31mfailed?[0m"]}


@pytest.mark.parametrize("observed", ["0000-01-01T00:00:00+23:59",
                                      "9999-12-31T23:59:59-00:01"])
def test_observed_at_no_clock_gives_is_400(server, observed):
    r = server.post_events({"host": "h1", "events": [event(observed_at=observed)]})
    assert r.status == 400, r.body
    assert r.json()["error"] == \
        f"events[0].observed_at: '{observed}' is not between 1970 and 9999 (UTC)"
    assert server.db_count("events") == 0
