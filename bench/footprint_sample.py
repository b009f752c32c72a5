#!/usr/bin/python3
"""Sample the memory and CPU of the running agent (with its deliverers)
and of monit over a window, for bench/agent_footprint.sh.  Printed, never
asserted.

    bench/footprint_sample.py WINDOW_S AGENT_PID AGENT_LOG MONIT_PID

Every 0.5 s: Rss and Pss (/proc/PID/smaps_rollup) of tocsin-agent, of
each deliverer alive at that moment (the agent's children named
tocsin-agent-deliver) summed with it, and of monit.  Averages are
weighted by the time between samples; peaks are the largest sample.
CPU: time on a CPU (/proc/PID/schedstat, nanoseconds) over the window
for the agent and monit; for the deliverers, which live seconds, the agent's own
accounting: it logs each one's CPU (wait4 rusage) at debug level when it
reaps it ("deliverer N exited ...: R requests in T ms, C us CPU").
"""
import re
import sys
import time
from pathlib import Path

TICK = 100  # os.sysconf("SC_CLK_TCK") on Linux
INTERVAL = 0.5


def rollup(pid):
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    values = dict(re.findall(r"^(Rss|Pss):\s+(\d+) kB", text, re.M))
    return int(values.get("Rss", 0)), int(values.get("Pss", 0))


def cpu_s(pid):
    """CPU time in seconds: schedstat's nanoseconds on a CPU where the
    kernel keeps them (stat's utime + stime count 10 ms ticks)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (FileNotFoundError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK


def children_cpu_s(pid):
    """CPU of the children the agent reaped (stat's cutime + cstime):
    deliverers, and apt-get, apt-config and plugins."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / TICK


def deliverers(pid):
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    found = []
    for k in kids:
        try:
            if Path(f"/proc/{k}/comm").read_text().strip() == "tocsin-agent-de":
                found.append(int(k))
        except FileNotFoundError:
            pass
    return found


class Series:
    def __init__(self):
        self.weighted = [0.0, 0.0]
        self.peak = [0, 0]
        self.seconds = 0.0

    def add(self, rss, pss, dt):
        self.weighted[0] += rss * dt
        self.weighted[1] += pss * dt
        self.seconds += dt
        self.peak = [max(self.peak[0], rss), max(self.peak[1], pss)]

    def text(self):
        avg = [w / self.seconds / 1024 for w in self.weighted]
        return (f"RSS {avg[0]:.2f} MB on average (peak {self.peak[0] / 1024:.2f} MB), "
                f"PSS {avg[1]:.2f} MB on average (peak {self.peak[1] / 1024:.2f} MB)")


def deliverer_cpu(log, offset):
    text = Path(log).read_bytes()[offset:].decode(errors="replace")
    costs = [int(m) for m in re.findall(r"deliverer \d+ [^:]*: \d+ requests in \d+ ms, (\d+) us CPU",
                                        text)]
    return len(costs), sum(costs) / 1e6


def main():
    window = float(sys.argv[1])
    agent, log, monit = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    offset = Path(log).stat().st_size
    cpu0 = cpu_s(agent), cpu_s(monit), children_cpu_s(agent)
    total, alone, mon = Series(), Series(), Series()
    with_deliverer = 0.0
    start = last = time.monotonic()
    while last - start < window:
        time.sleep(INTERVAL)
        now = time.monotonic()
        dt = now - last
        last = now
        a, m = rollup(agent), rollup(monit)
        if a is None or m is None:
            sys.exit("footprint: the agent or monit is gone")
        rss, pss = a
        alone.add(rss, pss, dt)
        dvs = [r for r in (rollup(d) for d in deliverers(agent)) if r]
        if dvs:
            with_deliverer += dt
        total.add(rss + sum(r for r, _ in dvs), pss + sum(p for _, p in dvs), dt)
        mon.add(*m, dt)
    elapsed = last - start
    agent_cpu, monit_cpu = cpu_s(agent) - cpu0[0], cpu_s(monit) - cpu0[1]
    n, dcpu = deliverer_cpu(log, offset)
    # the rest of what the reaped children cost: apt, plugins (stat
    # counts 10 ms ticks, so a few milliseconds either way)
    other = max(0.0, children_cpu_s(agent) - cpu0[2] - dcpu)
    per_hour = 3600 / elapsed
    print(f"agent footprint over {elapsed:.0f} s: tocsin-agent with its deliverers: {total.text()}; "
          f"a deliverer ran {100 * with_deliverer / elapsed:.1f}% of the time")
    print(f"agent footprint over {elapsed:.0f} s: tocsin-agent alone: {alone.text()}")
    print(f"agent footprint over {elapsed:.0f} s: CPU tocsin-agent {agent_cpu:.2f} s + "
          f"{n} deliverers {dcpu:.3f} s ({1000 * dcpu / n if n else 0:.1f} ms each) = "
          f"{agent_cpu + dcpu:.2f} s, {(agent_cpu + dcpu) * per_hour:.2f} s per hour; "
          f"other children (apt-get, apt-config) {other:.2f} s")
    print(f"monit footprint over {elapsed:.0f} s (same run): {mon.text()}; CPU {monit_cpu:.2f} s, "
          f"{monit_cpu * per_hour:.2f} s per hour")


if __name__ == "__main__":
    main()
