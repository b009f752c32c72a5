#!/bin/bash
# What the agent's split costs per delivery (bench/deliver_cost.py): the
# real release deliverer against real release collectors on loopback, one
# plain HTTP and one HTTPS (a CA and certificate made by openssl).
#
#   bench/deliver_cost.sh [RUNS]     (default 50)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/collector.sh"
runs=${1:-50}
work=$(mktemp -d /tmp/tocsin-bench-deliver-XXXXXX)
plain_pid=
trap '[ -n "$plain_pid" ] && kill "$plain_pid" 2>/dev/null; collector_stop; rm -rf "$work"' EXIT

collector_start "$work/plain"
plain_pid=$COLLECTOR_PID plain_url=$COLLECTOR_URL
collector_start "$work/tls" tls
/usr/bin/python3 "$top/bench/deliver_cost.py" "$runs" "$plain_url" "$COLLECTOR_URL" \
	"$COLLECTOR_CA" "$AGENT_TOKEN"
