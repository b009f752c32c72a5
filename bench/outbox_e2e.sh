#!/bin/bash
# End to end: EVENTS events (over KEYS problem keys) waiting in a real
# agent's outbox are delivered by the real agent (tocsin-agent --once,
# batches of 500) to the real collector on loopback, which commits each
# batch durably and deduplicates before it answers.
#
#   bench/outbox_e2e.sh [EVENTS] [KEYS]     (default 100000 10000)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/collector.sh"
events=${1:-100000}
keys=${2:-10000}
work=$(mktemp -d /tmp/tocsin-bench-e2e-XXXXXX)
trap 'collector_stop; rm -rf "$work"' EXIT

collector_start "$work/server"
mkdir -p "$work/agent"
# No checks of its own, and room for every event: only the queued ones go.
agent_config "$work/agent/agent.yaml" "$work/agent" "outbox: {max_events: 10000000}
checks: {disk: {enabled: false}, updates: {enabled: false}, services: {enabled: false},
         heartbeat: {enabled: false}}"
"$top/build/rel/bench/outbox_bench" fill "$work/agent" "$events" "$keys"

start=$(date +%s.%N)
out=$(/usr/bin/time -f "agent-cpu %U %S" "$top/bin/tocsin-agent" --config "$work/agent/agent.yaml" --once 2>&1)
end=$(date +%s.%N)
stored=$(sqlite3 "$work/server/tocsin.db" "SELECT count(*) FROM events")
# At least the queued events (a check left on adds its own).
sent=$(echo "$out" | sed -n 's/^delivered \([0-9]*\) events.*/\1/p')
[ "${sent:-0}" -ge "$events" ] || { echo "outbox_e2e: $out" >&2; exit 1; }
cpu=$(echo "$out" | awk '/^agent-cpu/ {print $2 + $3}')
awk -v n="$events" -v s="$stored" -v k="$keys" -v a="$start" -v b="$end" -v c="$cpu" 'BEGIN {
	printf "outbox end to end through the real collector (%d keys, batches of 500, durable commits): %.0f events/s (%d events in %.2f s, %d stored; the agent used %.2f s CPU)\n",
	       k, n / (b - a), n, b - a, s, c }'
