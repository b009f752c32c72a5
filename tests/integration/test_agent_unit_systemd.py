"""The shipped unit, packaging/tocsin-agent.service, run by a real systemd
(PID 1 of a systemd-nspawn container, see systemd_container.py): the agent
starts as Type=notify under the whole sandbox as its own user, delivers to
a real collector on the host's loopback, keeps the watchdog fed, reloads
and stops cleanly.  Its deliverer is installed where the package puts it
(/usr/libexec/tocsin/tocsin-agent-deliver) and runs under the same
sandbox, started by the agent when there is something to send.

The release binary runs here, as the package ships it: the sanitizer
runtime's own set-up (setrlimit) is exactly what SystemCallFilter=
~@resources forbids.
"""
import re

import pytest

from conftest import AGENT_TOKEN, ROOT, Server, wait_for
from systemd_container import Container, unavailable_reason

UNIT = ROOT / "packaging" / "tocsin-agent.service"
AGENT = ROOT / "bin" / "tocsin-agent"
DELIVERER = ROOT / "bin" / "tocsin-agent-deliver"

CONFIG = """\
host: unit01
server:
  url: {url}
  token: {token}
  allow_plain_http: true
checks:
  disk:
    interval: 1s
    discover: false
    warning: 0%
    critical: 100%
    mounts: [/]
  updates:
    enabled: false
"""


@pytest.fixture
def booted(tmp_path):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    assert AGENT.exists(), "bin/tocsin-agent is missing: run make first"
    srv = Server(tmp_path / "server").start()
    c = Container(tmp_path / "container", name="agentunit")
    try:
        c.unpack()
        c.copy_in(AGENT, "/usr/sbin/tocsin-agent")
        c.copy_in(DELIVERER, "/usr/libexec/tocsin/tocsin-agent-deliver")
        c.write("/lib/systemd/system/tocsin-agent.service", UNIT.read_text())
        # what the package's sysusers.d file does
        c.write("/usr/lib/sysusers.d/tocsin-agent.conf",
                'u tocsin-agent - "Tocsin agent" /var/lib/tocsin-agent\n'
                "m tocsin-agent systemd-journal\nm tocsin-agent adm\n")
        c.write("/etc/tocsin/agent.yaml", CONFIG.format(url=srv.url, token=AGENT_TOKEN))
        # a short watchdog, so that a missed keep-alive shows within the test
        c.write("/etc/systemd/system/tocsin-agent.service.d/watchdog.conf",
                "[Service]\nWatchdogSec=2s\n")
        c.boot()
        yield c, srv
    finally:
        c.stop()
        srv.stop()


def show(c, *props):
    out = c.systemctl("show", "tocsin-agent", *[f"--property={p}" for p in props]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_unit_runs_sandboxed_delivers_reloads_and_stops(booted):
    c, srv = booted
    # Type=notify: start returns once the agent said READY=1
    c.systemctl("start", "tocsin-agent")
    wait_for(lambda: any(t["host"] == "unit01" for t in srv.tickets("all")), timeout=20,
             what="the containerised agent's ticket at the collector")
    props = show(c, "ActiveState", "MainPID", "WatchdogUSec", "User")
    assert props["ActiveState"] == "active"
    assert props["WatchdogUSec"] in ("2s", "2000000")
    pid = props["MainPID"]
    user = c.run("stat", "-c", "%U", f"/proc/{pid}").stdout.strip()
    assert user == "tocsin-agent"
    caps = c.run("grep", "^CapEff", f"/proc/{pid}/status").stdout.split()[1]
    assert int(caps, 16) == 0
    # the long-running process never maps libcurl: its deliverer does the network
    maps = c.run("cat", f"/proc/{pid}/maps").stdout
    assert "libcurl" not in maps and "libssl" not in maps, maps
    state = c.run("stat", "-c", "%U %a", "/var/lib/tocsin-agent").stdout.split()
    assert state == ["tocsin-agent", "700"]
    assert c.run("test", "-s", "/var/lib/tocsin-agent/agent.db", check=False).returncode == 0

    # three watchdog periods later it is the same process: every keep-alive came
    first = int(show(c, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"])
    wait_for(lambda: int(show(c, "WatchdogTimestampMonotonic")
                         ["WatchdogTimestampMonotonic"]) > first + 5_000_000,
             timeout=20, what="watchdog keep-alives over five seconds")
    props = show(c, "MainPID", "NRestarts", "ActiveState")
    assert (props["MainPID"], props["NRestarts"], props["ActiveState"]) == (pid, "0", "active")

    c.systemctl("reload", "tocsin-agent")
    wait_for(lambda: "configuration reloaded" in journal(c), what="the reload in the journal")
    assert show(c, "ActiveState")["ActiveState"] == "active"

    c.systemctl("stop", "tocsin-agent")
    props = show(c, "ActiveState", "Result", "ExecMainStatus")
    assert props == {"ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0"}
    text = journal(c)
    assert "received signal 15, stopping" in text
    assert not re.search(r"Bad system call|Operation not permitted|SIGSYS", text), text


def journal(c):
    return c.run("journalctl", "--no-pager", "-o", "cat", "-u", "tocsin-agent").stdout
