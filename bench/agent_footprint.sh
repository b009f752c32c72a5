#!/bin/bash
# The agent's idle footprint: the release agent as a daemon with the default
# checks at their default 60 s interval, delivering to a real collector on
# loopback, sampled after WINDOW seconds:
#   RSS and PSS from /proc/PID/smaps_rollup, CPU seconds (utime + stime
#   from /proc/PID/stat), and the five mappings that weigh most in PSS.
#
#   bench/agent_footprint.sh [WINDOW_SECONDS]     (default 600)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/collector.sh"
window=${1:-600}
work=$(mktemp -d /tmp/tocsin-bench-footprint-XXXXXX)
agent_pid=
trap '[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null; collector_stop; rm -rf "$work"' EXIT

collector_start "$work/server"
mkdir -p "$work/agent"
agent_config "$work/agent/agent.yaml" "$work/agent"
"$top/bin/tocsin-agent" --config "$work/agent/agent.yaml" >"$work/agent/agent.log" 2>&1 &
agent_pid=$!

sample() { # sample LABEL
	local rss pss hwm cpu
	rss=$(awk '/^Rss:/ {print $2}' "/proc/$agent_pid/smaps_rollup")
	pss=$(awk '/^Pss:/ {print $2}' "/proc/$agent_pid/smaps_rollup")
	hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$agent_pid/status")
	cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$agent_pid/stat")
	echo "agent footprint $1: RSS $rss kB (peak $hwm kB), PSS $pss kB, CPU $cpu s"
}

sleep 5
sample "after start (first round delivered)"
sleep "$window"
sample "after ${window} s idle at the default 60 s interval"
events=$(sqlite3 "$work/server/tocsin.db" "SELECT count(*) FROM events")
echo "agent footprint: $events events delivered in the window; heaviest mappings by PSS:"
awk '/^[0-9a-f]+-[0-9a-f]+ / {n = split($6, p, "/"); name = n ? p[n] : "[anon]"; if (name == "") name = "[anon]"}
     /^Pss:/ {pss[name] += $2}
     END {for (k in pss) printf "%8d kB  %s\n", pss[k], k}' "/proc/$agent_pid/smaps" | sort -rn | head -5
