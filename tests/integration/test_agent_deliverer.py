"""The agent's deliverer (tocsin-agent-deliver), the separate process that
does the network, with real processes killed and stopped for real: the
real agent, its real deliverer, the real collector, agentlib.Proxy (a real
HTTP peer that forwards to it) where a request must hang.

What the split promises: an idle agent is one process without libcurl;
the deliverer lives while there is work and a linger after it, holds no
descriptor of the agent's but its socket; one that dies in the middle of
a batch loses nothing and duplicates nothing; one that hangs is killed by
its time limit; and the agent believes nothing it does not check.
"""
import json
import os
import re
import signal
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentlib import Agent, Proxy, occurrences_match_events, server_event_ids
from conftest import ROOT, Server, binary, run_agent, wait_for, write_agent_config

DELIVERER_COMM = "tocsin-agent-de"  # the kernel keeps 15 characters


def children(pid):
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(c) for c in text.split()]


def deliverers(agent):
    found = []
    for c in children(agent.proc.pid):
        try:
            if Path(f"/proc/{c}/comm").read_text().strip() == DELIVERER_COMM:
                found.append(c)
        except FileNotFoundError:
            pass
    return found


def disk_checks(tmp_path, n, interval="1s"):
    mounts = []
    for i in range(n):
        d = tmp_path / "mnt" / f"m{i}"
        d.mkdir(parents=True, exist_ok=True)
        mounts.append(str(d))
    return (f"  disk:\n    interval: {interval}\n    discover: false\n"
            "    warning: 0%\n    critical: 100%\n    mounts:\n" +
            "".join(f"      - {m}\n" for m in mounts))


def config_for(tmp_path, url, checks, linger="1s", timeout="60s", extra="",
               server_extra="  backoff_max: 1s\n"):
    state = tmp_path / "agent"
    state.mkdir(exist_ok=True)
    config = write_agent_config(state / "agent.yaml", url, host="deliv01", checks=checks,
                                server_extra=server_extra,
                                extra=f"log_level: debug\ndeliverer:\n  linger: {linger}\n" + extra)
    config.write_text(config.read_text().replace("timeout: 5s", f"timeout: {timeout}"))
    return config


def sends_of(proxy, ids):
    return [b for b in proxy.bodies if ids & {e["id"] for e in json.loads(b)["events"]}]


def assert_once_each(server):
    ids = server_event_ids(server)
    assert len(ids) == len(set(ids))
    counts = occurrences_match_events(server)
    assert all(occ == linked for occ, linked in counts), counts


@pytest.mark.parametrize("mode", ["stall_before", "stall_after"])
def test_deliverer_killed_mid_batch_the_next_one_delivers_once(server, tmp_path, mode):
    """stall_before: the collector never saw the batch; stall_after: it
    committed it and the answer was lost with the deliverer.  The agent
    sends the same ids again through a new deliverer: all arrive, once."""
    with Proxy(server.url) as proxy:
        proxy.mode = mode
        agent = Agent(config_for(tmp_path, f"http://127.0.0.1:{proxy.port}",
                                 disk_checks(tmp_path, 3))).start()
        try:
            assert proxy.stalled.wait(20), "the agent never sent a batch"
            in_flight = set(proxy.ids_in(0))
            [first] = wait_for(lambda: deliverers(agent), what="the deliverer")
            os.kill(first, signal.SIGKILL)
            agent.wait_log("the deliverer ended during a request")
            assert in_flight <= agent.outbox_ids()  # nothing was acknowledged
            proxy.mode = "pass"
            proxy.release.set()
            wait_for(lambda: in_flight <= set(server_event_ids(server)), timeout=20,
                     what="the batch at the collector through a new deliverer")
            wait_for(lambda: not (in_flight & agent.outbox_ids()), timeout=10,
                     what="the batch to leave the outbox")
            assert first not in deliverers(agent)
        finally:
            rc = agent.stop()
    assert rc == 0, agent.text()
    text = agent.text()
    assert re.search(r"the deliverer ended during a request \(deliverer pid \d+ was killed "
                     r"by signal 9 \(Killed\)\); \d+ events stay in the outbox; next attempt in",
                     text), text
    assert_once_each(server)
    # the killed batch went out exactly twice: cut off, then for good
    assert len(sends_of(proxy, in_flight)) == 2


def test_hung_deliverer_is_killed_by_its_time_limit(server, tmp_path):
    """A deliverer that stops answering (SIGSTOP: alive, but it never
    runs again) is killed when server.timeout for each URL plus the
    slack has passed, the failure is logged and a new one delivers."""
    with Proxy(server.url) as proxy:
        proxy.mode = "stall_before"
        agent = Agent(config_for(tmp_path, f"http://127.0.0.1:{proxy.port}",
                                 disk_checks(tmp_path, 1), timeout="1s")).start()
        try:
            assert proxy.stalled.wait(20)
            in_flight = set(proxy.ids_in(0))
            [hung] = wait_for(lambda: deliverers(agent), what="the deliverer")
            os.kill(hung, signal.SIGSTOP)
            stopped = time.monotonic()
            proxy.mode = "pass"
            proxy.release.set()
            agent.wait_log("did not answer within 6 s and was killed", timeout=20)
            waited = time.monotonic() - stopped
            # killed and reaped: the process is gone, not a zombie
            assert not Path(f"/proc/{hung}").exists()
            wait_for(lambda: in_flight <= set(server_event_ids(server)), timeout=20,
                     what="the batch at the collector through a new deliverer")
        finally:
            rc = agent.stop()
    assert rc == 0, agent.text()
    assert 3 < waited < 15, waited
    assert re.search(rf"the deliverer \(pid {hung}\) did not answer within 6 s and was killed; "
                     r"\d+ events stay in the outbox; next attempt in \d+s", agent.text())
    assert_once_each(server)


def maps_of(pid):
    return Path(f"/proc/{pid}/maps").read_text()


def test_idle_agent_is_one_process_without_libcurl(server, tmp_path):
    config = config_for(tmp_path, server.url, disk_checks(tmp_path, 1, interval="1h"),
                        linger="1s")
    agent = Agent(config).start()
    try:
        wait_for(lambda: server.db_count("events") >= 1, what="the first round's event")
        agent.wait_log("started the deliverer")
        # after the linger the deliverer exits, and the agent reaps it
        wait_for(lambda: re.search(r"deliverer \d+ exited with status 0: 1 requests",
                                   agent.text()), timeout=10, what="the deliverer's exit")
        assert deliverers(agent) == []
        assert children(agent.proc.pid) == []  # no zombie either
        maps = maps_of(agent.proc.pid)
        for lib in ("libcurl", "libssl", "libcrypto", "libgnutls", "libnghttp2"):
            assert lib not in maps, lib
    finally:
        rc = agent.stop()
    assert rc == 0, agent.text()


def test_deliverer_holds_only_its_socket_and_lingers(server, tmp_path):
    """While it lingers the deliverer is reused for the next rounds; it
    holds none of the agent's descriptors (no agent.db, no signalfd), runs
    as the agent's user, and a reload stops it."""
    config = config_for(tmp_path, server.url, disk_checks(tmp_path, 1), linger="1h")
    agent = Agent(config).start()
    try:
        wait_for(lambda: server.db_count("events") >= 3, timeout=20,
                 what="three rounds delivered")
        [dv] = deliverers(agent)
        assert agent.text().count("started the deliverer") == 1
        assert "libcurl" in maps_of(dv)
        assert os.stat(f"/proc/{dv}").st_uid == os.stat(f"/proc/{agent.proc.pid}").st_uid
        fds = {int(fd): os.readlink(f"/proc/{dv}/fd/{fd}") for fd in os.listdir(f"/proc/{dv}/fd")}
        assert fds[0] == "/dev/null"
        assert fds[3].startswith("socket:")
        others = {fd: target for fd, target in fds.items() if fd > 3}
        # curl's connection to the collector may be open; nothing else
        assert all(t.startswith("socket:") for t in others.values()), fds
        agent_fds = {os.readlink(f"/proc/{agent.proc.pid}/fd/{fd}")
                     for fd in os.listdir(f"/proc/{agent.proc.pid}/fd")}
        shared = {t for t in fds.values() if t in agent_fds and not t.startswith("socket:")}
        assert shared <= {fds[0], fds[1], fds[2]}, shared  # only stdio

        agent.send_signal(signal.SIGHUP)
        agent.wait_log("configuration reloaded")
        wait_for(lambda: dv not in deliverers(agent), what="the reload to stop the deliverer")
        count = server.db_count("events")
        wait_for(lambda: server.db_count("events") > count + 1, timeout=20,
                 what="delivery through a new deliverer after the reload")
    finally:
        rc = agent.stop()
    assert rc == 0, agent.text()


def test_once_waits_for_the_deliverer_to_exit(server, tmp_path):
    config = config_for(tmp_path, server.url, disk_checks(tmp_path, 2), linger="1h")
    run = run_agent(config, "--once")
    assert run.returncode == 0, run.stderr
    assert "delivered 2 events" in run.stdout
    # asked to exit at once despite the linger, and reaped before the exit
    assert re.search(r"deliverer \d+ exited with status 0: 1 requests", run.stderr), run.stderr


# A deliverer that lies: this one is a test double on purpose (a real
# deliverer only says what curl saw), to show that the agent checks what
# it is told.  It reads the hello and a post and answers with a URL index
# the agent never gave it.
LYING_DELIVERER = r'''#!/usr/bin/python3
import json, os, struct
def frame():
    head = os.read(3, 8)
    if len(head) < 8:
        raise SystemExit(0)
    hl, bl = struct.unpack(">II", head)
    data = b""
    while len(data) < hl + bl:
        data += os.read(3, hl + bl - len(data))
    return json.loads(data[:hl])
frame()  # hello
while True:
    frame()
    answer = json.dumps({"status": 200, "url": 7}).encode()
    os.write(3, struct.pack(">II", len(answer), 0) + answer)
'''


def run_with_deliverer(server, tmp_path, program, line):
    """The agent with program as its deliverer, until line is in its log,
    then stopped: what was queued by then is queued still (nothing was
    taken as delivered)."""
    path = tmp_path / "double"
    path.write_text(program)
    path.chmod(0o755)
    config = config_for(tmp_path, server.url, disk_checks(tmp_path, 1),
                        extra=f"  path: {path}\n")
    agent = Agent(config).start()
    try:
        agent.wait_log(line)
        queued = agent.outbox_ids()
    finally:
        rc = agent.stop()
    assert rc == 0, agent.text()
    assert queued and queued <= agent.outbox_ids()  # nothing was taken as delivered
    return agent


def test_agent_believes_no_answer_it_cannot_check(server, tmp_path):
    agent = run_with_deliverer(server, tmp_path, LYING_DELIVERER,
                               'the deliverer\'s answer to a post has no valid "url"')
    assert server.db_count("events") == 0
    assert re.search(r'has no valid "url" \(deliverer pid \d+ was killed\); \d+ events stay '
                     r'in the outbox; next attempt in', agent.text())


# A deliverer that sends a malformed frame in answer to a post (a test
# double, as the liar above): then it waits to be killed, or exits.
BABBLING_DELIVERER = LYING_DELIVERER.split("while True:")[0] + r'''
import sys, time
frame()  # the post
os.write(3, {frame!r})
if {exits!r}:
    sys.exit(0)
time.sleep(60)
'''


@pytest.mark.parametrize("frame,exits,said", [
    (struct.pack(">II", 3, 0) + b"[1]", False,
     r"the deliverer sent what is not an answer: a frame header that is an array, "
     r"not a JSON object \(deliverer pid \d+ was killed\)"),
    (struct.pack(">II", 2, 1 << 20) + b"{}", False,
     r"the deliverer sent what is not an answer: a frame body of 1048576 bytes, "
     r"beyond the limit of 65536 \(deliverer pid \d+ was killed\)"),
    (struct.pack(">II", 8, 0) + b'{"status', False,
     r"the deliverer sent what is not an answer: a frame header that is not JSON: "
     r".+ \(at byte \d+ of 8\) \(deliverer pid \d+ was killed\)"),
    (struct.pack(">II", 20, 0) + b'{"st', True,
     r"the deliverer ended during a request: a frame cut short: end of file after "
     r"12 of its 28 bytes \(deliverer pid \d+ exited with status 0\)"),
], ids=["array", "huge-body", "bad-json", "cut-short"])
def test_a_malformed_answer_is_named_in_the_log(server, tmp_path, frame, exits, said):
    """What was wrong with the deliverer's frame reaches the agent's log
    line, not only that something was."""
    agent = run_with_deliverer(server, tmp_path,
                               BABBLING_DELIVERER.format(frame=frame, exits=exits),
                               "next attempt in")
    text = agent.text()
    assert re.search(said + r"; \d+ events stay in the outbox; next attempt in", text), text


# A deliverer that dies with the agent's post unread (a test double, as
# the liar above): the agent's read fails with a reset, not an end of file.
RESETTING_DELIVERER = LYING_DELIVERER.split("while True:")[0] + r'''
import select
select.select([3], [], [])  # the post is there: leave it unread
'''


def test_a_reset_is_named_in_the_log(server, tmp_path):
    """A deliverer that dies before it read the request (the kernel
    resets the socket) is named as such in the agent's log line, the
    read's own error, not a generic one."""
    agent = run_with_deliverer(server, tmp_path, RESETTING_DELIVERER, "next attempt in")
    text = agent.text()
    assert re.search(r"the deliverer ended during a request: read from the deliverer: "
                     r"Connection reset by peer between frames \(deliverer pid \d+ exited "
                     r"with status 0\); \d+ events stay in the outbox; next attempt in",
                     text), text


@pytest.mark.parametrize("value,error", [
    ("bin/tocsin-agent-deliver", "'bin/tocsin-agent-deliver' is not an absolute path"),
    ("/nonexistent/tocsin-agent-deliver", "cannot run /nonexistent/tocsin-agent-deliver: No such file"),
])
def test_deliverer_path_errors_name_the_place(tmp_path, value, error):
    config = write_agent_config(tmp_path / "agent.yaml", "http://127.0.0.1:9",
                                extra=f"deliverer:\n  path: {value}\n")
    run = run_agent(config, "--check-config")
    assert run.returncode == 2
    assert re.search(rf"agent\.yaml:\d+:\d+: deliverer\.path: {re.escape(error)}", run.stderr), \
        run.stderr


def test_linger_must_be_a_duration(tmp_path):
    config = write_agent_config(tmp_path / "agent.yaml", "http://127.0.0.1:9",
                                extra="deliverer:\n  linger: soon\n")
    run = run_agent(config, "--check-config")
    assert run.returncode == 2 and "deliverer.linger" in run.stderr, run.stderr


def test_deliverer_refuses_to_run_by_hand():
    run = subprocess.run([binary("tocsin-agent-deliver")], capture_output=True, text=True,
                         timeout=10)
    assert run.returncode == 2
    assert "is started by tocsin-agent" in run.stderr


PLUGIN = """#!/bin/sh
state=$(cat {state})
echo "switch is $state"
exit $state
"""


def test_repeats_wait_for_hold_repeats_and_a_change_goes_at_once(server, tmp_path):
    """server.hold_repeats: events that only repeat their key's state wait
    (so an idle agent starts a deliverer seldom); a state change goes at
    once and takes the waiting repeats with it."""
    state = tmp_path / "switch"
    state.write_text("0")
    plugin = tmp_path / "switch.sh"
    plugin.write_text(PLUGIN.format(state=state))
    plugin.chmod(0o755)
    checks = ("  disk:\n    enabled: false\n  plugin:\n    plugins:\n"
              f"      - {{name: switch, command: [{plugin}], interval: 1s}}\n")
    with Proxy(server.url) as proxy:
        config = config_for(tmp_path, f"http://127.0.0.1:{proxy.port}", checks,
                            server_extra="  hold_repeats: 1h\n")
        agent = Agent(config).start()
        try:
            # the first result is news (no state known): it goes at once
            wait_for(lambda: server.db_count("events") == 1, timeout=10,
                     what="the first result at the collector")
            posts = len(proxy.bodies)
            wait_for(lambda: agent.outbox_count() >= 3, timeout=10,
                     what="repeated samples waiting in the outbox")
            assert len(proxy.bodies) == posts  # nothing went for them
            assert deliverers(agent) == []      # and no deliverer runs
            waiting = agent.outbox_ids()

            state.write_text("2")  # the plugin turns critical: a change
            changed = time.monotonic()
            wait_for(lambda: [t for t in server.tickets("open") if t["state"] == "critical"],
                     timeout=10, what="the critical ticket")
            took = time.monotonic() - changed
            assert waiting <= set(server_event_ids(server))  # the repeats went along
        finally:
            rc = agent.stop()
    assert rc == 0, agent.text()
    assert took < 5, took  # at once, not after the hour
    assert_once_each(server)


LIVENESS = """\
liveness:
  missed_heartbeats: 2
  default_interval: 1s
  check_every: 100ms
"""


def test_held_heartbeats_promise_what_the_collector_gets(tmp_path):
    """A heartbeat every second, delivered every 3 s (hold_repeats): it
    tells the collector to expect it every 3 s, so a collector that flags
    a host after 2 missed heartbeats does not between the deliveries."""
    srv = Server(tmp_path / "server", extra=LIVENESS).start()
    try:
        with Proxy(srv.url) as proxy:
            config = config_for(tmp_path, f"http://127.0.0.1:{proxy.port}",
                                "  disk:\n    enabled: false\n"
                                "  heartbeat:\n    interval: 1s\n",
                                server_extra="  backoff_max: 1s\n  hold_repeats: 3s\n")
            agent = Agent(config).start()
            try:
                wait_for(lambda: len(proxy.bodies) >= 4, timeout=20,
                         what="four deliveries of held heartbeats")
                beats = [e for b in proxy.bodies for e in json.loads(b)["events"]]
                tickets = srv.tickets("all")
            finally:
                rc = agent.stop()
    finally:
        srv.stop()
    assert rc == 0, agent.text()
    # several heartbeats per delivery: they were held ...
    assert len(beats) >= 2 * len(proxy.bodies) - 2, (len(beats), len(proxy.bodies))
    assert {e["metrics"]["interval_s"] for e in beats} == {3}
    # ... and the host was never taken for silent
    assert [t for t in tickets if t["check"] == "heartbeat"] == [], tickets


def test_a_collector_answer_that_is_not_utf8_is_reported_not_fatal(tmp_path):
    """A peer (here a plain Python HTTP server, not a collector) answers
    503 with bytes that are not UTF-8: the deliverer passes the reason
    on, cleaned, and stays alive; the events stay queued."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import threading

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = b"\xff\xfe overloaded \xc3"
            self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        config = config_for(tmp_path, f"http://127.0.0.1:{httpd.server_address[1]}",
                            disk_checks(tmp_path, 1), linger="1h")
        agent = Agent(config).start()
        try:
            agent.wait_log("HTTP 503")
            agent.wait_log("next attempt in")
            [dv] = deliverers(agent)  # the same deliverer goes on
        finally:
            rc = agent.stop()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert rc == 0, agent.text()
    assert "the deliverer ended" not in agent.text()
    assert agent.outbox_count() >= 1
