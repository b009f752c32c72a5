"""The agent as a service: the sd_notify protocol (read from a real
AF_UNIX datagram socket, the one systemd itself would read), the watchdog
kept fed while a request hangs, SIGTERM in the middle of a send, and
failover between collector URLs.
"""
import signal
import socket
import time

from agentlib import Agent, Proxy, occurrences_match_events
from conftest import wait_for, write_agent_config


class NotifySocket:
    """What a service manager reads: NOTIFY_SOCKET datagrams, time-stamped."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages = []  # (monotonic time, text)

    def pump(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def seen(self, prefix):
        self.pump()
        return [(t, m) for t, m in self.messages if m.startswith(prefix)]

    def close(self):
        self.sock.close()


def mounts_checks(n=2):
    return ("  disk:\n    interval: 1s\n    discover: false\n    warning: 0%\n"
            "    critical: 100%\n    mounts:\n" +
            "".join("      - /\n" for _ in range(n)))


def test_notify_watchdog_during_a_hung_request_reload_and_stop(server, tmp_path):
    notify = NotifySocket(tmp_path / "notify")
    with Proxy(server.url) as proxy:
        proxy.mode = "stall_before"  # the collector hangs on every request
        config = write_agent_config(tmp_path / "agent.yaml", f"http://127.0.0.1:{proxy.port}",
                                    host="svc01", checks=mounts_checks())
        config.write_text(config.read_text().replace("timeout: 5s", "timeout: 60s"))
        agent = Agent(config, env={"NOTIFY_SOCKET": notify.path,
                                   "WATCHDOG_USEC": "2500000"}).start()
        try:
            wait_for(lambda: notify.seen("READY=1"), what="READY=1")
            assert proxy.stalled.wait(20)
            # a request hangs, yet the watchdog is fed before it fires: at
            # half the interval, from curl's progress callback (called at
            # least once a second)
            wait_for(lambda: len(notify.seen("WATCHDOG=1")) >= 4, timeout=20,
                     what="four watchdog keep-alives")
            times = [t for t, _ in notify.seen("WATCHDOG=1")]
            gaps = [b - a for a, b in zip(times, times[1:])]
            assert max(gaps) < 2.5, gaps

            agent.send_signal(signal.SIGHUP)
            wait_for(lambda: notify.seen("RELOADING=1"), what="RELOADING=1")
            reloading = notify.seen("RELOADING=1")[-1]
            assert "MONOTONIC_USEC=" in reloading[1]
            wait_for(lambda: [m for t, m in notify.seen("READY=1") if t > reloading[0]],
                     what="READY=1 after the reload")

            in_flight = set(proxy.ids_in(0))
            began = time.monotonic()
            rc = agent.stop()
            stopped_in = time.monotonic() - began
        finally:
            agent.stop()
            notify.pump()
            notify.close()
    assert rc == 0, agent.text()
    assert any(m == "STOPPING=1" for _, m in notify.messages)
    assert any(m.startswith("STATUS=") for _, m in notify.messages)
    # SIGTERM abandoned the hung send at once; its events stay queued
    assert stopped_in < 10, stopped_in
    assert in_flight and in_flight <= agent.outbox_ids()
    assert "received signal 15, stopping" in agent.text()


def test_failover_sticks_to_the_url_that_answers_and_returns(server, tmp_path):
    with Proxy(server.url) as primary:
        primary.mode = "fail503"
        port = primary.port
        config = write_agent_config(
            tmp_path / "agent.yaml", f"[http://127.0.0.1:{port}, {server.url}]",
            host="fail01", checks=mounts_checks(1),
            server_extra="  retry_primary: 2s\n")
        agent = Agent(config).start()
        try:
            agent.wait_log(f"delivering to {server.url} now")
            before = len(primary.bodies)
            wait_for(lambda: server.db_count("events") >= 7, timeout=30,
                     what="seven rounds through the second URL")
            # sticky: the failing primary is tried every 2 s, not per batch
            tried = len(primary.bodies) - before
            assert tried <= 4, (tried, server.db_count("events"))

            primary.mode = "pass"  # the primary is back
            agent.wait_log(f"delivering to http://127.0.0.1:{port} now")
            through_primary = len(primary.bodies)
            wait_for(lambda: len(primary.bodies) >= through_primary + 2, timeout=20,
                     what="the next batches through the primary")
        finally:
            rc = agent.stop()
    assert rc == 0, agent.text()
    counts = occurrences_match_events(server)
    assert len(counts) == 1 and counts[0][0] == counts[0][1]
    assert agent.outbox_count() <= 1  # at most the round queued at stop
