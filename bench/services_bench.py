#!/usr/bin/python3
"""Failure-to-event latency and the CPU of one round of updates and services.

Boots the test suite's systemd container (tests/integration/
systemd_container.py; needs root), runs the release agent inside it
against a release collector on the host, and measures:

  * latency: from `systemctl start fail-N.service` returning (the unit's
    /bin/false exits at once) to the event as the agent made it
    (observed_at) and as the collector committed it (received_at), over
    ROUNDS distinct units; the services check polls hourly here, so every
    event came through the D-Bus subscription;
  * CPU: bench/check_cost inside the container for each check, the apt
    simulation (child processes) reported separately.

Prints figures, asserts nothing.  Usage: bench/services_bench.py [ROUNDS]
"""
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
os.environ.setdefault("TOCSIN_BIN", str(TOP / "bin"))
sys.path.insert(0, str(TOP / "tests" / "integration"))

from conftest import AGENT_TOKEN, Server, wait_for  # noqa: E402
from systemd_container import Container, unavailable_reason  # noqa: E402

AGENT_CONFIG = """\
host: bench01
role: central
state_dir: /var/lib/tocsin-agent
server:
  url: {url}
  allow_plain_http: true
  token: {token}
checks:
  disk:
    enabled: false
  updates:
    enabled: false
  services:
    interval: 1h
    journal_wait: 300ms
"""

COST_CONFIG = """\
role: central
checks:
  services:
    watch: [dbus.service, systemd-journald.service]
  updates: {}
"""


def parse_time(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() \
        if "." in text else datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").timestamp()


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def latency(c, server, rounds):
    for i in range(rounds):
        c.write(f"/etc/systemd/system/fail-{i:02d}.service",
                "[Service]\nExecStart=/bin/false\n")
    c.systemctl("daemon-reload")
    c.write("/etc/tocsin/agent.yaml", AGENT_CONFIG.format(url=server.url, token=AGENT_TOKEN))
    log = open(Path(server.dir) / "agent.log", "wb")
    agent, pid = c.spawn("/usr/local/bin/tocsin-agent", "--config", "/etc/tocsin/agent.yaml",
                         stdout=log)
    try:
        wait_for(lambda: any(t["item"] == "failed" for t in server.tickets("all"))
                 or server.db_count("events") > 0, timeout=30,
                 what="the agent's first round")
        to_agent, to_collector = [], []
        for i in range(rounds):
            unit = f"fail-{i:02d}.service"
            c.systemctl("start", unit)
            returned = time.time()

            def ticket():
                return next((t for t in server.tickets("all") if t["item"] == unit), None)
            t = wait_for(ticket, timeout=10, what=unit)
            occ = server.ticket(t["id"])["occurrences"][0]
            to_agent.append((parse_time(occ["observed_at"]) - returned) * 1000)
            to_collector.append((parse_time(occ["received_at"]) - returned) * 1000)
        for name, values in (("agent result (observed_at)", to_agent),
                             ("collector commit (received_at)", to_collector)):
            print(f"failure-to-event latency, {name}: median {statistics.median(values):.0f} ms, "
                  f"p90 {pct(values, 90):.0f} ms, min {min(values):.0f} ms, "
                  f"max {max(values):.0f} ms over {rounds} unit failures")
    finally:
        if pid:
            os.kill(pid, 15)
        agent.wait(timeout=30)
        log.close()


def cpu(c):
    c.write("/etc/tocsin/cost.yaml", COST_CONFIG)
    for check in ("services", "updates"):
        out = c.run("/usr/local/bin/check_cost", "/etc/tocsin/cost.yaml", check, "200").stdout
        for line in out.splitlines():
            print(f"cpu: {line}")


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    reason = unavailable_reason()
    if reason:
        print(f"services_bench: skipped: {reason}")
        return 0
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as tmp:
        with Container(Path(tmp) / "container") as c:
            c.unpack()
            c.copy_in(TOP / "bin" / "tocsin-agent", "/usr/local/bin/tocsin-agent")
            # the agent finds its deliverer beside itself
            c.copy_in(TOP / "bin" / "tocsin-agent-deliver", "/usr/local/bin/tocsin-agent-deliver")
            c.copy_in(TOP / "build" / "rel" / "bench" / "check_cost", "/usr/local/bin/check_cost")
            c.boot()
            server = Server(Path(tmp) / "server").start()
            try:
                latency(c, server, rounds)
                cpu(c)
            finally:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
