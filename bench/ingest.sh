#!/bin/bash
# Collector ingest under load: a fresh database, the release build of
# tocsin-server, and bench/ingest_load (simulated agents, batches of 100
# events over 10,000 problem keys, unique ids).  Prints the load
# generator's lines (events/s, latency, CPU per event of both sides) and
# the server's peak RSS.
#
#   bench/ingest.sh [SECONDS] [CONNECTIONS] [realistic|churn] [extra ingest_load options]
#
# The churn mix runs with flap detection off, so that every state change
# stays a real ticket change (see ingest_load.c).  Environment:
# TOCSIN_BENCH_HTTP_THREADS (default 2), TOCSIN_BENCH_SERVER_YAML (more
# server configuration, appended), TOCSIN_BENCH_DIR (where the database
# goes, default /tmp), TOCSIN_BENCH_PERF=FILE (record a perf profile of
# the server with call graphs into FILE while the load runs).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-10}
conns=${2:-32}
mix=${3:-realistic}
shift $(( $# < 3 ? $# : 3 ))
dir=$(mktemp -d "${TOCSIN_BENCH_DIR:-/tmp}/tocsin-bench.XXXXXX")
token=bench-agent-token-0123456789
viewer=bench-viewer-token-0123456789
cat >"$dir/server.yaml" <<YAML
listen: 127.0.0.1:0
database: $dir/tocsin.db
allow_plain_http: true
log_level: warning
http:
  threads: ${TOCSIN_BENCH_HTTP_THREADS:-2}
auth:
  tokens:
    - {name: bench, token: $token, role: agent}
    - {name: viewer, token: $viewer, role: viewer}
YAML
if [ "$mix" = churn ]; then
	printf 'lifecycle:\n  defaults:\n    flap_threshold: 0\n' >>"$dir/server.yaml"
fi
printf '%s\n' "${TOCSIN_BENCH_SERVER_YAML:-}" >>"$dir/server.yaml"
"$top/bin/tocsin-server" --config "$dir/server.yaml" --port-file "$dir/port" \
	>"$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do [ -s "$dir/port" ] && break; sleep 0.05; done
port=$(cat "$dir/port")
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.05; done
if [ -n "${TOCSIN_BENCH_PERF:-}" ]; then
	perf record -q -F 999 --call-graph dwarf,16384 -o "$TOCSIN_BENCH_PERF" -p "$pid" \
		-- sleep "$(( ${seconds%.*} + 2 ))" 2>/dev/null &
fi
"$top/build/rel/bench/ingest_load" 127.0.0.1 "$port" "$token" \
	--connections "$conns" --seconds "$seconds" --mix "$mix" \
	--server-pid "$pid" "$@"
rss=$(awk '/VmHWM/ {print $2 " " $3}' /proc/$pid/status)
curl -sf -H "Authorization: Bearer $viewer" "http://127.0.0.1:$port/metrics" |
	grep -E '^tocsin_(events_received_total|writer_commits_total|wal_checkpoints_total|wal_pages|retention_events_deleted_total|retention_events_kept_total)[ {]' |
	tr '\n' ' ' | sed 's/^/ingest: server metrics: /; s/ $/\n/' || true
db=$(du -sh "$dir" | cut -f1)
echo "ingest: server peak RSS $rss, database and WAL $db"
if grep -v "serving plain HTTP" "$dir/server.log" | grep -q .; then
	echo "ingest: server log:" && grep -v "serving plain HTTP" "$dir/server.log" | tail -5
fi
