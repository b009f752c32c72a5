"""The collector under systemd's eyes: sd_notify READY/RELOADING/STOPPING and
watchdog pings read from a real notification socket, SIGHUP reloads, SIGTERM
stops cleanly, and the shipped unit file passes systemd-analyze verify.

No systemd runs as PID 1 here; the notification protocol is a datagram
socket named by NOTIFY_SOCKET, which the test owns exactly as systemd would.
"""
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading

import pytest

from conftest import (ADMIN_TOKEN, AGENT_TOKEN, ROOT, TECH_TOKEN, Server,
                      wait_for)
from test_durability import make_batch


class NotifySocket:
    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages = []

    def poll(self):
        try:
            while True:
                self.messages.append(self.sock.recv(4096).decode())
        except (socket.timeout, BlockingIOError):
            pass
        return self.messages

    def wait(self, text, count=1, timeout=10):
        wait_for(lambda: sum(text in m for m in self.poll()) >= count,
                 timeout=timeout, what=f"{count} x {text!r} on NOTIFY_SOCKET")

    def close(self):
        self.sock.close()


WITHHELD = "watchdog: the writer thread has committed nothing for 2 ticks"
RESUMED = "watchdog: the writer thread commits again"


def pings(notify):
    return sum("WATCHDOG=1" in m for m in notify.poll())


def withholding_since(srv, offset):
    """Whether the server's log says, past offset, that it withholds
    WATCHDOG=1, or said so before and has not resumed since."""
    text = srv.log_text()
    return (WITHHELD in text[offset:]
            or text.rfind(WITHHELD, 0, offset) > text.rfind(RESUMED))


@pytest.fixture
def notify(tmp_path):
    n = NotifySocket(tmp_path / "notify.sock")
    yield n
    n.close()


def test_ready_watchdog_and_stopping(tmp_path, notify):
    srv = Server(tmp_path / "server")
    srv.start(env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "200000"})
    try:
        notify.wait("READY=1")
        # four pings per watchdog period while the writer runs its probe jobs
        notify.wait("WATCHDOG=1", count=5)
        srv.proc.send_signal(signal.SIGTERM)
        notify.wait("STOPPING=1")
        assert srv.stop() == 0
    finally:
        srv.stop()


def test_no_watchdog_ping_while_the_writer_is_stuck_under_load(tmp_path, notify):
    """The database locked by another process hangs the writer on its next
    BEGIN while agents keep its small queue full.  A probe the full queue
    refuses is no sign of health: no WATCHDOG=1 until the writer commits
    again."""
    srv = Server(tmp_path / "server", extra="writer:\n  max_queue: 2\n")
    srv.start(env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"})
    try:
        notify.wait("READY=1")
        notify.wait("WATCHDOG=1", count=3)
        stop, codes = threading.Event(), []

        def flood():
            while not stop.is_set():
                try:
                    codes.append(srv.post_events(make_batch(1, 2, 0)).status)
                except OSError:
                    pass

        threads = [threading.Thread(target=flood) for _ in range(8)]
        for t in threads:
            t.start()
        lock = sqlite3.connect(srv.db, isolation_level=None, timeout=10)
        try:
            wait_for(lambda: 503 in codes, what="the loaded queue refusing batches")
            lock.execute("BEGIN IMMEDIATE")  # held until the server says it is stuck
            before, logged = pings(notify), len(srv.log_text())
            # Two ticks in a row without a commit: the server says it
            # withheld the ping (never, if the refused probes fed it).
            wait_for(lambda: withholding_since(srv, logged),
                     what="the server withholding WATCHDOG=1")
            # The first tick after the lock may still announce a commit
            # made just before it; the two since announced none.
            stuck = pings(notify) - before
        finally:
            if lock.in_transaction:
                lock.execute("COMMIT")
            lock.close()
            stop.set()
            for t in threads:
                t.join()
        assert stuck <= 1, f"{stuck} WATCHDOG=1 pings while the writer was stuck"
        notify.wait("WATCHDOG=1", count=before + stuck + 1)  # it commits again: pings resume
        wait_for(lambda: RESUMED in srv.log_text(), what="the server saying the pings resume")
    finally:
        srv.stop()


def test_sighup_reloads_tokens_and_keeps_a_broken_config_out(tmp_path, notify):
    srv = Server(tmp_path / "server")
    srv.start(env={"NOTIFY_SOCKET": notify.path})
    try:
        notify.wait("READY=1")
        new_agent = "rotated-agent-token-0123456789"
        srv.write_config(tokens=(new_agent, TECH_TOKEN, ADMIN_TOKEN),
                         extra="liveness:\n  missed_heartbeats: 5\n")
        srv.proc.send_signal(signal.SIGHUP)
        notify.wait("RELOADING=1")
        notify.wait("READY=1", count=2)
        batch = {"host": "h", "events": []}
        assert srv.post_events(batch, token=new_agent).status == 200
        assert srv.post_events(batch, token=AGENT_TOKEN).status == 401
        assert "SIGHUP: configuration reloaded" in srv.log_text()

        # a configuration with an error is refused; the running one stays
        srv.config.write_text(srv.config.read_text() + "bogus_key: 1\n")
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "keeping the running configuration" in srv.log_text(),
                 what="the refused reload in the log")
        assert "bogus_key: unknown key 'bogus_key'" in srv.log_text()
        assert srv.post_events(batch, token=new_agent).status == 200
    finally:
        srv.stop()


def test_sighup_names_settings_that_need_a_restart(tmp_path):
    srv = Server(tmp_path / "server").start()
    try:
        port = srv.port
        srv.write_config(max_body="2MiB", extra="writer:\n  max_group: 16\n")
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP: configuration reloaded" in srv.log_text(),
                 what="the reload")
        log = srv.log_text()
        assert "SIGHUP: http.max_body changed; restart the server to apply it" in log
        assert "SIGHUP: writer.max_queue or max_group changed; restart" in log
        assert srv.get("/healthz").status == 200 and srv.port == port
    finally:
        srv.stop()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")
def test_unit_file_verifies(tmp_path):
    server_bin = ROOT / "bin" / "tocsin-server"
    assert server_bin.exists(), "make builds bin/tocsin-server"
    unit = tmp_path / "tocsin-server.service"
    unit.write_text((ROOT / "packaging" / "tocsin-server.service").read_text()
                    .replace("/usr/sbin/tocsin-server", str(server_bin)))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    text = unit.read_text()
    for line in ("Type=notify", "User=tocsin", "StateDirectory=tocsin",
                 "ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes",
                 "WatchdogSec=", "SystemCallFilter=@system-service",
                 "AmbientCapabilities=CAP_NET_BIND_SERVICE"):
        assert line in text, line
