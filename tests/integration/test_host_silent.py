"""Silence detection with real heartbeats posted over HTTP and intervals of a
second: one ticket per silent host, resolved with the gap in its journal, and
no ticket storm when the collector itself restarts."""
import datetime
import subprocess
import time
import uuid

import pytest

from conftest import Server, binary, wait_for

SILENCE = """\
liveness:
  missed_heartbeats: 2
  default_interval: 1s
  check_every: 100ms
"""


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def heartbeat(server, host, interval_s=1):
    r = server.post_events({"host": host, "events": [{
        "id": str(uuid.uuid4()), "check": "heartbeat", "item": "alive",
        "state": "ok", "summary": "tocsin-agent 0.1.0 alive, 6 checks",
        "metrics": {"interval_s": interval_s, "uptime_s": 10},
        "context": {"version": "0.1.0", "checks": [{"name": "disk", "interval_s": 60}]},
        "observed_at": now_rfc3339()}]})
    assert r.status == 200, r.body
    return r.json()


def silence_tickets(server, state="all"):
    return [t for t in server.tickets(state)
            if (t["check"], t["item"]) == ("heartbeat", "alive")]


@pytest.fixture
def srv(tmp_path):
    s = Server(tmp_path / "server", extra=SILENCE).start()
    yield s
    s.stop()


def test_silent_host_gets_one_ticket_and_is_resolved_when_back(srv):
    heartbeat(srv, "web01")
    heartbeat(srv, "db01")
    # db01 keeps beating, web01 goes quiet
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline and not silence_tickets(srv, "open"):
        heartbeat(srv, "db01")
        time.sleep(0.2)
    (t,) = wait_for(lambda: silence_tickets(srv, "open"), what="a silence ticket")
    assert t["host"] == "web01"
    assert t["state"] == "critical"
    assert t["summary"].startswith("web01 silent for ")
    assert "expected every 1 s)" in t["summary"]
    assert "(last heartbeat 20" in t["summary"] and " UTC, " in t["summary"]

    # more rounds of the timer: still one ticket, one occurrence
    for _ in range(5):
        heartbeat(srv, "db01")
        time.sleep(0.2)
    (again,) = silence_tickets(srv, "all")
    assert again["id"] == t["id"] and again["occurrence_count"] == 1

    back = heartbeat(srv, "web01")
    assert back["tickets_resolved"] == 1
    detail = srv.ticket(t["id"])
    assert detail["status"] == "resolved"
    resolved = [j for j in detail["journal"] if j["action"] == "resolved"]
    assert len(resolved) == 1
    assert "back after " in resolved[0]["text"] and "of silence" in resolved[0]["text"]
    assert resolved[0]["text"].startswith("tocsin-agent 0.1.0 alive, 6 checks; back after ")


def test_heartbeat_without_interval_uses_the_default(tmp_path):
    s = Server(tmp_path / "server", extra=SILENCE.replace(
        "default_interval: 1s", "default_interval: 2s").replace(
        "missed_heartbeats: 2", "missed_heartbeats: 1")).start()
    try:
        r = s.post_events({"host": "old-agent", "events": [{
            "id": str(uuid.uuid4()), "check": "heartbeat", "item": "alive",
            "state": "ok", "summary": "alive", "observed_at": now_rfc3339()}]})
        assert r.status == 200
        (t,) = wait_for(lambda: silence_tickets(s, "open"), timeout=10,
                        what="a silence ticket")
        assert "expected every 2 s" in t["summary"]
    finally:
        s.stop()


def test_no_ticket_storm_after_the_collector_restarts(tmp_path):
    s = Server(tmp_path / "server", extra=SILENCE).start()
    try:
        hosts = [f"host{i:02d}" for i in range(20)]
        for h in hosts:
            heartbeat(s, h)
        s.stop()
        # the collector is down for longer than every host's silence limit
        time.sleep(2.5)
        s.start()
        started = time.monotonic()
        # within the grace after start (2 intervals) nobody is flagged,
        # while the hosts come back one after the other
        while time.monotonic() - started < 1.5:
            for h in hosts[:10]:
                heartbeat(s, h)
            assert silence_tickets(s) == []
            time.sleep(0.2)
        # hosts that did not come back are flagged once the grace is over
        wait_for(lambda: len(silence_tickets(s, "open")) == 10, timeout=10,
                 what="the ten silent hosts")
        assert sorted(t["host"] for t in silence_tickets(s, "open")) == hosts[10:]
    finally:
        s.stop()


def test_a_silence_survives_a_restart_without_a_second_ticket(srv):
    heartbeat(srv, "web01")
    (t,) = wait_for(lambda: silence_tickets(srv, "open"), what="a silence ticket")
    heartbeat(srv, "sentinel")
    srv.stop()
    srv.start()
    # the sentinel is flagged once the grace after the start is over: by
    # then the timer had every chance to flag web01 a second time
    wait_for(lambda: len(silence_tickets(srv, "open")) == 2, timeout=10,
             what="the sentinel's silence ticket")
    (same,) = [x for x in silence_tickets(srv, "all") if x["host"] == "web01"]
    assert same["id"] == t["id"] and same["occurrence_count"] == 1
    metrics = srv.get("/metrics").body.decode()
    assert 'tocsin_heartbeat_hosts{state="silent"} 2' in metrics
    assert "tocsin_silence_flagged_total 1" in metrics  # since this start
    heartbeat(srv, "web01")
    detail = srv.ticket(t["id"])
    assert detail["status"] == "resolved"
    assert "of silence" in detail["journal"][-1]["text"]
    assert 'tocsin_heartbeat_hosts{state="alive"} 1' in srv.get("/metrics").body.decode()


def test_a_silent_host_gets_its_ticket_whatever_confirm_after_says(tmp_path):
    """Silence detection raises one event per silence: confirm_after: 3
    (for everything, heartbeats included) has no repeats to count, and
    --check-config says so."""
    extra = SILENCE + "lifecycle:\n  defaults:\n    confirm_after: 3\n"
    s = Server(tmp_path / "server", extra=extra)
    check = subprocess.run([binary("tocsin-server"), "--config", str(s.config), "--check-config"],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    assert ("warning: lifecycle.defaults: confirm_after: 3 does not apply to host silence"
            in check.stderr), check.stderr
    s.start()
    try:
        heartbeat(s, "web01")
        (t,) = wait_for(lambda: silence_tickets(s, "open"), what="a silence ticket")
        assert t["host"] == "web01"
        heartbeat(s, "web01")
        wait_for(lambda: not silence_tickets(s, "open"), what="the silence to be resolved")
    finally:
        s.stop()


def test_a_clock_that_ran_a_year_ahead_still_resolves_its_silence(srv):
    """The agent's clock ran a year ahead, then was put right: its silence
    ticket (dated just after its last heartbeat) resolves all the same."""
    ahead = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=365)
    r = srv.post_events({"host": "web01", "events": [{
        "id": str(uuid.uuid4()), "check": "heartbeat", "item": "alive",
        "state": "ok", "summary": "tocsin-agent 0.1.0 alive",
        "metrics": {"interval_s": 1},
        "observed_at": ahead.isoformat(timespec="milliseconds").replace("+00:00", "Z")}]})
    assert r.status == 200, r.body
    (t,) = wait_for(lambda: silence_tickets(srv, "open"), what="a silence ticket")
    heartbeat(srv, "web01")
    wait_for(lambda: not silence_tickets(srv, "open"), what="the silence to be resolved")
    assert srv.ticket(t["id"])["status"] == "resolved"
