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
