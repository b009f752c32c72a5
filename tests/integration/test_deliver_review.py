"""Review findings on the agent's delivery path since the split into the
agent and its deliverer, each with the experiment that showed it: the real
agent and its real deliverer against a real HTTP peer (a plain Python HTTP
server that answers what the test needs: a collector cannot be made to
send these answers).
"""
import json
import os
import re
import signal
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pathlib import Path

import pytest

from agentlib import Agent
from conftest import wait_for
from test_agent_deliverer import config_for, deliverers, disk_checks


class Peer:
    """An HTTP peer on loopback that answers every POST with status,
    headers and body, and keeps the bodies it was sent, with the time."""

    def __init__(self, status, headers=(), body=b'{"error": "busy"}', stall=False):
        peer = self
        self.posts = []
        self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                peer.posts.append((time.monotonic(), data))
                if stall:  # never answer (until the test ends)
                    peer.release.wait(60)
                    return
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_huge_retry_after_is_capped_not_overflowed(tmp_path):
    """Retry-After: 9300000000000000 (seconds) times 1000 does not fit in
    64 bits: the deliverer must cap it, not overflow (undefined behaviour,
    and a negative figure the agent rightly refuses as no answer)."""
    with Peer(503, [("Retry-After", "9300000000000000")]) as peer:
        config = config_for(tmp_path, peer.url, disk_checks(tmp_path, 1), linger="1h")
        agent = Agent(config).start()
        try:
            agent.wait_log("next attempt in")
            [dv] = deliverers(agent)  # the same deliverer goes on
        finally:
            rc = agent.stop()
    text = agent.text()
    assert rc == 0, text
    assert "runtime error" not in text, text
    assert "the deliverer ended" not in text, text
    assert "not an answer" not in text and "no valid" not in text, text
    assert "next attempt in 3600s" in text, text  # RETRY_AFTER_MAX_MS
    assert agent.outbox_count() >= 1


FLAPPER = """#!/bin/sh
# ok, critical, ok, ...: every run is a state change
n=$(cat {count} 2>/dev/null || echo 0)
echo $((n + 1)) > {count}
echo "run $n"
exit $((n % 2 * 2))
"""


def runs(count):
    """How often the plugin ran (0 while it rewrites the file)."""
    try:
        return int(count.read_text())
    except (ValueError, FileNotFoundError):
        return 0


def test_changes_seen_as_they_happen_wait_for_retry_after(tmp_path):
    """A state change seen as it happens goes before the backoff would
    allow, but not before the collector's Retry-After: a plugin that flaps
    every second must not make the agent post every second to a collector
    that said 429, Retry-After: 30."""
    plugin = tmp_path / "flap.sh"
    plugin.write_text(FLAPPER.format(count=tmp_path / "count"))
    plugin.chmod(0o755)
    checks = ("  disk:\n    enabled: false\n  plugin:\n    plugins:\n"
              f"      - {{name: flap, command: [{plugin}], interval: 1s}}\n")
    with Peer(429, [("Retry-After", "30")]) as peer:
        config = config_for(tmp_path, peer.url, checks, linger="1h")
        agent = Agent(config).start()
        try:
            agent.wait_log("next attempt in 30s")
            first = len(peer.posts)
            # five more changes at least, each of them urgent
            seen = runs(tmp_path / "count")
            wait_for(lambda: runs(tmp_path / "count") >= seen + 5, timeout=20,
                     what="five more plugin runs")
            posts = len(peer.posts)
        finally:
            rc = agent.stop()
    assert rc == 0, agent.text()
    assert first == 1, peer.posts
    assert posts == first, agent.text()


def proc_state(pid):
    """The state letter of /proc/PID/stat (Z: a zombie waiting for its reaping)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_a_stop_that_signals_the_whole_unit_is_no_delivery_failure(tmp_path, busy):
    """systemd's stop (and Ctrl-C at a terminal) signals every process of
    the unit, the deliverer too: when the agent finds its deliverer dead
    and the stop waiting at once, it stops; that death is not a delivery
    failure to warn about and retry ("next attempt in ...").  Made
    deterministic: the agent is stopped (SIGSTOP) while its deliverer dies
    of SIGTERM, then gets its own SIGTERM and continues."""
    peer_args = dict(stall=True) if busy else dict(body=b'{"accepted": 1}')
    with Peer(200, **peer_args) as peer:
        config = config_for(tmp_path, peer.url, disk_checks(tmp_path, 1, interval="1h"),
                            linger="1h")
        agent = Agent(config).start()
        try:
            wait_for(lambda: peer.posts and deliverers(agent), what="a post and its deliverer")
            [dv] = deliverers(agent)
            if not busy:
                agent.wait_log("delivered 1 events")
            agent.send_signal(signal.SIGSTOP)
            os.kill(dv, signal.SIGTERM)
            wait_for(lambda: proc_state(dv) == "Z", what="the deliverer to die")
            agent.send_signal(signal.SIGTERM)
            agent.send_signal(signal.SIGCONT)
        finally:
            rc = agent.stop()  # one more SIGTERM, merged with the first
    text = agent.text()
    assert rc == 0, text
    assert "received signal 15, stopping" in text, text
    assert "the deliverer ended" not in text, text
    assert "next attempt in" not in text, text
    if busy:
        assert "abandoned the request in flight" in text, text


def test_once_stops_on_sigterm_with_its_results_printed(tmp_path):
    """--once waiting for a deliverer that cannot finish (a collector that
    never answers): SIGTERM abandons the request, as should_abort() says,
    instead of killing the agent outright, which lost the results it had
    printed into a pipe's buffer; the events stay in the outbox."""
    import subprocess
    from conftest import binary
    with Peer(200, stall=True) as peer:
        config = config_for(tmp_path, peer.url, disk_checks(tmp_path, 1), linger="1h")
        proc = subprocess.Popen([binary("tocsin-agent"), "--config", str(config), "--once"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: peer.posts, what="the post of --once")
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 1, (proc.returncode, err)
    assert "not delivered: interrupted" in err, err
    assert "disk" in out, out  # the results it printed before the flush
    agent = Agent(config)
    assert agent.outbox_count() == 1


def test_a_refused_scheduled_rotation_is_logged_on_one_line(tmp_path):
    """The collector's words in a refused scheduled rotation reach the log
    through the deliverer: like every other answer they are one line, so
    a peer cannot write log lines of its own."""
    body = json.dumps({"error": "no\ntocsin-agent: notice: credential rotated"}).encode()
    with Peer(403, body=body) as peer:
        config = config_for(tmp_path, peer.url, disk_checks(tmp_path, 1, interval="1h"),
                            linger="1h", server_extra="  backoff_max: 1s\n  rotate_every: 1s\n")
        config.write_text("\n".join(l for l in config.read_text().splitlines()
                                    if not l.startswith("  token:")) + "\n")
        cred = config.parent / "credential"
        cred.write_text("0123456789abcdef0123456789abcdef\n")
        cred.chmod(0o600)
        os.utime(cred, (time.time() - 60, time.time() - 60))
        agent = Agent(config).start()
        try:
            agent.wait_log("scheduled credential rotation failed")
        finally:
            rc = agent.stop()
    text = agent.text()
    assert rc == 0, text
    assert not [l for l in text.splitlines()
                if l.startswith("tocsin-agent: notice: credential rotated")], text


def test_once_interrupted_at_a_terminal_says_so(tmp_path):
    """Ctrl-C at a terminal signals the whole process group: the deliverer
    dies of the SIGINT the agent has blocked.  The agent wakes for the
    dead deliverer and must see the interruption waiting, not report the
    death as a delivery failure."""
    import subprocess
    from conftest import binary
    with Peer(200, stall=True) as peer:
        config = config_for(tmp_path, peer.url, disk_checks(tmp_path, 1), linger="1h")
        proc = subprocess.Popen([binary("tocsin-agent"), "--config", str(config), "--once"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            wait_for(lambda: peer.posts, what="the post of --once")
            os.killpg(proc.pid, signal.SIGINT)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 1, (proc.returncode, err)
    assert "not delivered: interrupted" in err, err
    assert "the deliverer ended" not in err, err


def test_a_400_that_is_not_the_collectors_keeps_the_events(tmp_path):
    """The collector refuses an event it will never take with 400 or 413
    and says why as {"error": ...}; the agent then splits the batch and
    drops the event alone.  A peer that answers 400 to everything in
    other words (nginx's "plain HTTP request was sent to HTTPS port", a
    web application firewall) refuses no event: dropping one after the
    other emptied the whole outbox in a second.  The events stay, and the
    agent backs off saying why."""
    body = b"<html><body>400 The plain HTTP request was sent to HTTPS port</body></html>"
    with Peer(400, [("Content-Type", "text/html")], body=body) as peer:
        config = config_for(tmp_path, peer.url, disk_checks(tmp_path, 4, interval="1h"),
                            linger="1h")
        agent = Agent(config).start()
        try:
            wait_for(lambda: agent.text().count("next attempt in") >= 2, timeout=20,
                     what="two refused attempts")
            kept = agent.outbox_count()
            meta = agent.outbox_meta()
        finally:
            rc = agent.stop()
    text = agent.text()
    assert rc == 0, text
    assert kept == 4, text
    assert meta["rejected"] == 0, meta
    assert "dropped and counted" not in text, text
    assert "not in the collector's words" in text, text


def test_a_2xx_that_is_not_the_collectors_acknowledgement_keeps_the_events(tmp_path):
    """The collector acknowledges a batch, after its commit, with
    {"accepted": N, "duplicates": M, ...}.  A 200 from something else at
    the URL (a web application's catch-all route, a portal) acknowledges
    nothing: deleting the batch on it lost every event.  The events stay,
    and the agent backs off saying why."""
    body = b"<!doctype html><html><body>Welcome</body></html>"
    with Peer(200, [("Content-Type", "text/html")], body=body) as peer:
        config = config_for(tmp_path, peer.url, disk_checks(tmp_path, 3, interval="1h"),
                            linger="1h")
        agent = Agent(config).start()
        try:
            wait_for(lambda: agent.text().count("next attempt in") >= 2, timeout=20,
                     what="two unacknowledged attempts")
            kept = agent.outbox_count()
        finally:
            rc = agent.stop()
    text = agent.text()
    assert rc == 0, text
    assert kept == 3, text
    assert "not with the collector's acknowledgement" in text, text


def test_a_reload_keeps_the_collectors_retry_after(tmp_path):
    """A reload (configuration management pushes one to every agent at
    once) with the same collector URLs must not send at once to a
    collector that said 429, Retry-After: 30: a fleet reloaded during an
    overload would come back all together."""
    with Peer(429, [("Retry-After", "30")]) as peer:
        config = config_for(tmp_path, peer.url, disk_checks(tmp_path, 1), linger="1h")
        agent = Agent(config).start()
        try:
            agent.wait_log("next attempt in 30s")
            posts = len(peer.posts)
            agent.send_signal(signal.SIGHUP)
            agent.wait_log("configuration reloaded")
            # the disk check runs every second: three rounds after the reload
            queued = agent.outbox_count()
            wait_for(lambda: agent.outbox_count() >= queued + 3, timeout=20,
                     what="three rounds queued after the reload")
            after = len(peer.posts)
        finally:
            rc = agent.stop()
    assert rc == 0, agent.text()
    assert posts == 1, agent.text()
    assert after == posts, agent.text()


def test_a_restart_keeps_the_collectors_retry_after(tmp_path):
    """An agent restarting in a loop (a crash, a unit restarted by
    configuration management) must not post at once to a collector that
    said 503, Retry-After: 30: the wait is kept in the state database."""
    with Peer(503, [("Retry-After", "30")]) as peer:
        config = config_for(tmp_path, peer.url, disk_checks(tmp_path, 1), linger="1h")
        agent = Agent(config).start()
        try:
            agent.wait_log("next attempt in 30s")
        finally:
            assert agent.stop() == 0, agent.text()
        posts = len(peer.posts)
        agent = Agent(config).start()
        try:
            agent.wait_log("the collector asked to wait (Retry-After) before the restart")
            # the disk check runs every second: three rounds after the restart
            queued = agent.outbox_count()
            wait_for(lambda: agent.outbox_count() >= queued + 3, timeout=20,
                     what="three rounds queued after the restart")
            after = len(peer.posts)
        finally:
            rc = agent.stop()
    text = agent.text()
    assert rc == 0, text
    assert posts == 1, text
    assert after == posts, text
    assert re.search(r"before the restart: next attempt in (2[5-9]|30)s", text), text


def failed_and_stopped(tmp_path, peer):
    """An agent that failed to deliver to peer once, stopped: its
    configuration and a connection to its state database."""
    config = config_for(tmp_path, peer.url, disk_checks(tmp_path, 1), linger="1h")
    agent = Agent(config).start()
    try:
        agent.wait_log("next attempt in")
    finally:
        assert agent.stop() == 0, agent.text()
    return config, sqlite3.connect(tmp_path / "agent" / "agent.db", timeout=10)


def test_a_kept_wait_is_capped_when_the_clock_went_back(tmp_path):
    """The kept wait is on the wall clock: set back ten days (as if the
    clock jumped), it is capped at server.backoff_max (1s here), and
    delivery goes on."""
    with Peer(503) as peer:
        config, con = failed_and_stopped(tmp_path, peer)
        with con:
            [(n,)] = con.execute("SELECT count(*) FROM delivery_wait WHERE retry_after = 0")
            assert n == 1
            con.execute("UPDATE delivery_wait SET not_before_ms = not_before_ms + ?",
                        (10 * 86400 * 1000,))
        con.close()
        posts = len(peer.posts)
        agent = Agent(config).start()
        try:
            agent.wait_log("delivery was failing before the restart: next attempt in 1s")
            wait_for(lambda: len(peer.posts) > posts, timeout=10,
                     what="a post after the restart")
        finally:
            rc = agent.stop()
    assert rc == 0, agent.text()


def test_a_wait_the_state_database_refuses_is_a_warning_once(tmp_path):
    """The kept wait is the backoff a fleet restarting together counts
    on: when the state database refuses to keep it (here a trigger that
    fails every insert into delivery_wait, the outbox still working),
    a warning says so, once in the streak of failed attempts, not once
    an attempt."""
    with Peer(503) as peer:
        config, con = failed_and_stopped(tmp_path, peer)
        with con:
            con.execute("CREATE TRIGGER refuse_wait BEFORE INSERT ON delivery_wait"
                        " BEGIN SELECT RAISE(FAIL, 'refused by the test'); END")
        con.close()
        agent = Agent(config)
        before = len(agent.text())
        agent.start()
        try:
            # server.backoff_max is 1s: an attempt about every second
            wait_for(lambda: agent.text()[before:].count("next attempt in") >= 4,
                     timeout=20, what="four failed attempts after the restart")
        finally:
            rc = agent.stop()
    text = agent.text()[before:]
    assert rc == 0, text
    assert text.count("warning: cannot keep the delivery wait in the state database") == 1, text
    assert "if the agent restarts, it forgets the backoff" in text, text
