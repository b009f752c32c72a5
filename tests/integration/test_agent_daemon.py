"""The agent as a daemon: checks on their interval, reload, clean stop."""
import signal
import subprocess

from conftest import assert_no_sanitizer_errors, binary, wait_for, write_agent_config


def test_daemon_runs_checks_on_interval_reloads_and_stops(server, tmp_path):
    checks = "  disk:\n    interval: 1s\n    discover: false\n    mounts:\n      - path: /\n        warning: 0%\n"
    config = write_agent_config(tmp_path / "agent.yaml", server.url, host="daemon01",
                                checks=checks)
    log = open(tmp_path / "agent.log", "wb")
    agent = subprocess.Popen([binary("tocsin-agent"), "--config", str(config)],
                             stdout=log, stderr=subprocess.STDOUT)
    try:
        # one ticket, growing by one occurrence per interval
        wait_for(lambda: server.tickets("open") and
                 server.tickets("open")[0]["occurrence_count"] >= 3,
                 timeout=20, what="three occurrences from the running agent")
        assert len(server.tickets("all")) == 1

        # a broken configuration is refused on SIGHUP; the agent keeps going
        config.write_text(config.read_text().replace("interval: 1s", "interval: often"))
        agent.send_signal(signal.SIGHUP)
        wait_for(lambda: b"configuration not reloaded" in (tmp_path / "agent.log").read_bytes(),
                 what="the reload refusal in the log")
        assert agent.poll() is None
        before = server.tickets("open")[0]["occurrence_count"]
        wait_for(lambda: server.tickets("open")[0]["occurrence_count"] > before,
                 timeout=10, what="the agent to keep reporting after a refused reload")

        # a good configuration is taken: the threshold now says ok and resolves
        config.write_text(config.read_text().replace("interval: often", "interval: 1s")
                          .replace("warning: 0%", "warning: 90%"))
        agent.send_signal(signal.SIGHUP)
        wait_for(lambda: server.tickets("open") == [], timeout=10,
                 what="the reloaded agent to resolve the ticket")
    finally:
        agent.send_signal(signal.SIGTERM)
        rc = agent.wait(timeout=20)
        log.close()
    text = (tmp_path / "agent.log").read_text()
    assert_no_sanitizer_errors(text, "tocsin-agent")
    assert rc == 0, text
    assert "received signal 15, stopping" in text
