#!/usr/bin/python3
"""What the agent's split costs per delivery: CPU of the real deliverer
(bin/tocsin-agent-deliver, release build), started the way tocsin-agent
starts it (its socket as descriptor 3), measured with getrusage of the
children it leaves behind.  Printed, never asserted.

    bench/deliver_cost.py RUNS PLAIN_URL TLS_URL CA_FILE TOKEN

  exec only          the deliverer starts and exits at once (its socket is
                     closed): exec, loading libcurl's ~35 libraries, exit
  one post, HTTP     hello + one batch of 4 events over plain HTTP (curl's
                     set-up, a connection, the collector's answer)
  one post, HTTPS    the same over TLS (the handshake, verification
                     against the CA file)
  10 posts, HTTPS    one deliverer, ten batches: what a lingering
                     deliverer pays per further batch
bench/deliver_cost.sh starts the collectors and runs this.
"""
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
DELIVERER = TOP / "bin" / "tocsin-agent-deliver"


def frame(head, body=b""):
    h = json.dumps(head).encode()
    return struct.pack(">II", len(h), len(body)) + h + body


def read_frame(sock):
    def exactly(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise EOFError("the deliverer closed the socket")
            data += chunk
        return data
    hl, bl = struct.unpack(">II", exactly(8))
    head = json.loads(exactly(hl))
    exactly(bl)
    return head


def batch(n=4):
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    events = [{"id": str(uuid.uuid4()), "check": "disk", "item": f"/m{i}", "state": "ok",
               "summary": "fine", "observed_at": now, "metrics": {"used_percent": 20.0}}
              for i in range(n)]
    return json.dumps({"host": "bench01", "events": events,
                       "agent": {"version": "bench"}}).encode()


def start(url, token, ca):
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    # the socket on descriptor 3, without Python code in the child (that
    # would count as the deliverer's CPU)
    try:
        saved = os.dup(3)  # whatever we were given as 3 is put back after
    except OSError:
        saved = None
    os.dup2(child.fileno(), 3, inheritable=True)
    proc = subprocess.Popen([str(DELIVERER)], pass_fds=(3,), stdin=subprocess.DEVNULL)
    if saved is None:
        os.close(3)
    else:
        os.dup2(saved, 3, inheritable=False)
        os.close(saved)
    child.close()
    hello = {"op": "hello", "protocol": 1, "agent_pid": os.getpid(), "urls": [url],
             "token": token, "timeout_ms": 10000, "allow_plain_http": url.startswith("http:"),
             "retry_primary_ms": 300000, "current": 0, "primary_retry_in_ms": 0}
    if ca:
        hello["ca_file"] = ca
    parent.sendall(frame(hello))
    return proc, parent


def run(url, token, ca, posts):
    proc, sock = start(url, token, ca)
    for _ in range(posts):
        sock.sendall(frame({"op": "post", "path": "/api/v1/events"}, batch()))
        answer = read_frame(sock)
        if not 200 <= answer.get("status", 0) < 300:
            raise SystemExit(f"deliver_cost: the collector answered {answer}")
    sock.close()
    proc.wait()


def exec_only():
    proc, sock = start("http://127.0.0.1:9", "x" * 20, None)
    sock.close()
    proc.wait()


def measure(label, runs, fn):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    for _ in range(runs):
        fn()
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user = (after.ru_utime - before.ru_utime) / runs * 1000
    system = (after.ru_stime - before.ru_stime) / runs * 1000
    print(f"deliver cost: {label:34s} {user + system:6.2f} ms CPU per deliverer "
          f"(user {user:.2f}, system {system:.2f}), {wall / runs * 1000:6.1f} ms wall")
    return user + system


def main():
    runs = int(sys.argv[1])
    plain, tls, ca, token = sys.argv[2:6]
    measure("exec only (load libcurl, exit)", runs, exec_only)
    measure("one post, HTTP", runs, lambda: run(plain, token, None, 1))
    one = measure("one post, HTTPS", runs, lambda: run(tls, token, ca, 1))
    ten = measure("10 posts in one deliverer, HTTPS", max(runs // 5, 2),
                  lambda: run(tls, token, ca, 10))
    print(f"deliver cost: each further post of a lingering deliverer, HTTPS: "
          f"{(ten - one) / 9:.2f} ms CPU (kept-alive connection)")


if __name__ == "__main__":
    main()
