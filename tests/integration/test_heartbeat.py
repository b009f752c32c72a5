"""The heartbeat's event shape, as the collector's silence detection
reads it, delivered by the real agent daemon to the real server."""
import json
import sqlite3
import subprocess

from checkutil import agent_daemon, metrics_of, rows
from conftest import assert_no_sanitizer_errors, binary, wait_for, write_agent_config


def heartbeats(server):
    con = sqlite3.connect(server.db)
    try:
        return con.execute(
            "SELECT e.check_name, e.item, e.state, e.summary, e.metrics, e.context"
            " FROM events e JOIN hosts h ON h.id = e.host_id"
            " WHERE h.name = 'beating' AND e.check_name = 'heartbeat'"
            " ORDER BY e.observed_at").fetchall()
    finally:
        con.close()


def test_heartbeat_every_interval_with_inventory(server, tmp_path):
    config = write_agent_config(tmp_path / "agent.yaml", server.url, host="beating",
                                checks="  heartbeat:\n    interval: 1s\n"
                                       "  disk:\n    interval: 2m\n    discover: false\n")
    with agent_daemon(config, tmp_path / "agent.log"):
        wait_for(lambda: len(heartbeats(server)) >= 3, timeout=20,
                 what="three heartbeats")

    beats = heartbeats(server)
    for check, item, state, summary, metrics, context in beats:
        assert (check, item, state) == ("heartbeat", "alive", "ok")
        assert summary == "tocsin-agent 0.1.0 alive, 2 checks"
        m = json.loads(metrics)
        assert set(m) == {"interval_s", "uptime_s"} and m["interval_s"] == 1
        assert json.loads(context) == {
            "version": "0.1.0",
            "checks": [{"name": "disk", "interval_s": 120},
                       {"name": "heartbeat", "interval_s": 1}]}
    uptimes = [json.loads(b[4])["uptime_s"] for b in beats]
    assert uptimes == sorted(uptimes) and uptimes[-1] >= 1
    # an ok heartbeat never opens a ticket
    assert server.tickets("all") == []


def test_heartbeat_is_on_by_default(tmp_path):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"state_dir: {tmp_path}\nserver:\n  url: https://127.0.0.1:9\n  token: t\n"
                   "checks:\n  disk:\n    discover: false\n"
                   "  updates:\n    enabled: false\n  services:\n    enabled: false\n")
    run = subprocess.run([binary("tocsin-agent"), "--config", str(cfg), "check"],
                         capture_output=True, text=True, timeout=30)
    assert_no_sanitizer_errors(run.stderr, "tocsin-agent")
    assert run.returncode == 0, run.stderr
    assert rows(run.stdout)["alive"] == ("heartbeat", "ok",
                                         "tocsin-agent 0.1.0 alive, 2 checks")
    # it runs every 60 s, but an agent whose checks find nothing new
    # delivers every server.hold_repeats (5 min): that is when the
    # collector's silence detection may expect it
    assert metrics_of(run.stdout, "alive")["interval_s"] == "300"
    hold0 = cfg.read_text().replace("  token: t\n", "  token: t\n  hold_repeats: 0s\n")
    cfg.write_text(hold0)
    run = subprocess.run([binary("tocsin-agent"), "--config", str(cfg), "check", "heartbeat"],
                         capture_output=True, text=True, timeout=30)
    assert_no_sanitizer_errors(run.stderr, "tocsin-agent")
    assert run.returncode == 0, run.stderr
    assert metrics_of(run.stdout, "alive")["interval_s"] == "60"
