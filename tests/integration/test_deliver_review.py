"""Review findings on the agent's delivery path since the split into the
agent and its deliverer, each with the experiment that showed it: the real
agent and its real deliverer against a real HTTP peer (a plain Python HTTP
server that answers what the test needs: a collector cannot be made to
send these answers).
"""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from agentlib import Agent
from conftest import wait_for
from test_agent_deliverer import config_for, deliverers, disk_checks


class Peer:
    """An HTTP peer on loopback that answers every POST with status,
    headers and body, and keeps the bodies it was sent, with the time."""

    def __init__(self, status, headers=(), body=b'{"error": "busy"}'):
        peer = self
        self.posts = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                peer.posts.append((time.monotonic(), data))
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
