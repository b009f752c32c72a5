#!/bin/bash
# The agent's footprint, and monit's in the same run: the release agent as a
# daemon with every default check (disk, updates, services, heartbeat) at
# their default intervals (60 s; updates 5 min), delivering over HTTPS to a
# real collector on loopback; beside it Debian's monit with an equivalent
# configuration (a 60 s cycle, the root file system's space, two services).
# Both are sampled over the whole window by bench/footprint_sample.py: RSS
# and PSS every 0.5 s, averaged over time and at their peak (the agent and
# its deliverer summed while one runs), and CPU seconds of the agent, of
# its deliverers and of monit.  Then the agent's heaviest mappings.
#
#   bench/agent_footprint.sh [WINDOW_SECONDS]     (default 600)
#
# Needs root for apt-get when monit is missing (it is installed then).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/collector.sh"
window=${1:-600}
work=$(mktemp -d /tmp/tocsin-bench-footprint-XXXXXX)
agent_pid= monit_pid= service_pid=
trap 'for p in $agent_pid $monit_pid $service_pid; do kill "$p" 2>/dev/null; done; collector_stop; rm -rf "$work"' EXIT

if ! command -v monit >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends monit >/dev/null
fi

collector_start "$work/server" tls
mkdir -p "$work/agent"
# debug: the agent logs each deliverer's CPU when it reaps it
agent_config "$work/agent/agent.yaml" "$work/agent" "log_level: debug"
"$top/bin/tocsin-agent" --config "$work/agent/agent.yaml" >"$work/agent/agent.log" 2>&1 &
agent_pid=$!

# monit: the same cycle, the root file system and two services by process
# (the collector, and a stand-in for a second daemon)
sleep 100000 &
service_pid=$!
cat >"$work/monitrc" <<EOF
set daemon 60
set logfile $work/monit.log
set pidfile $work/monit.pid
set idfile $work/monit.id
set statefile $work/monit.state
check filesystem rootfs with path /
  if space usage > 90% then alert
check process collector matching "tocsin-server"
check process standin matching "sleep 100000"
EOF
chmod 600 "$work/monitrc"
monit -c "$work/monitrc" -I >"$work/monit.out" 2>&1 &
monit_pid=$!

# the first round (and the first apt simulation) is start-up, not idling
sleep 10
/usr/bin/python3 "$top/bench/footprint_sample.py" "$window" "$agent_pid" \
	"$work/agent/agent.log" "$monit_pid"
# the apt simulation ran once at start-up, before the window; in the
# window it runs only if apt's inputs changed (it says so above as other
# children): what one run costs, for the per-hour figure on a host whose
# lists change N times a day (apt's timer: about twice)
apt=$(sqlite3 "$work/server/tocsin.db" "SELECT json_extract(metrics, '\$.apt_cpu_seconds')
	FROM events WHERE check_name = 'updates' AND item = 'pending' ORDER BY seq DESC LIMIT 1")
runs=$(sqlite3 "$work/server/tocsin.db" "SELECT count(DISTINCT json_extract(metrics, '\$.apt_cpu_seconds'))
	FROM events WHERE check_name = 'updates' AND item = 'pending'")
echo "agent footprint: one apt simulation costs ${apt:-?} s CPU (apt-get and apt-config); $runs distinct run(s) reported; at two changes of the package lists a day that adds $(awk -v a="${apt:-0}" 'BEGIN {printf "%.2f", a * 2 / 24}') s per hour"
events=$(sqlite3 "$work/server/tocsin.db" "SELECT count(*) FROM events")
echo "agent footprint: $events events delivered over HTTPS; heaviest mappings of tocsin-agent by PSS:"
awk '/^[0-9a-f]+-[0-9a-f]+ / {n = split($6, p, "/"); name = n ? p[n] : "[anon]"; if (name == "") name = "[anon]"}
     /^Pss:/ {pss[name] += $2}
     END {for (k in pss) printf "%8d kB  %s\n", pss[k], k}' "/proc/$agent_pid/smaps" | sort -rn | head -5
