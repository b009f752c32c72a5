#!/bin/bash
# Collector ingest under load: a fresh database, the release build of
# tocsin-server, and bench/ingest_load posting batches of 100 events over
# 10,000 problem keys with unique ids.  Prints the load generator's line and
# the server's peak RSS.
#
#   bench/ingest.sh [SECONDS] [THREADS] [extra ingest_load options]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-10}
threads=${2:-8}
shift $(( $# < 2 ? $# : 2 ))
dir=$(mktemp -d /tmp/tocsin-bench.XXXXXX)
token=bench-agent-token-0123456789
cat >"$dir/server.yaml" <<YAML
listen: 127.0.0.1:0
database: $dir/tocsin.db
allow_plain_http: true
log_level: warning
http:
  threads: ${TOCSIN_BENCH_HTTP_THREADS:-4}
auth:
  tokens:
    - {name: bench, token: $token, role: agent}
YAML
"$top/bin/tocsin-server" --config "$dir/server.yaml" --port-file "$dir/port" \
	>"$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do [ -s "$dir/port" ] && break; sleep 0.05; done
port=$(cat "$dir/port")
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.05; done
"$top/build/rel/bench/ingest_load" 127.0.0.1 "$port" "$token" --threads "$threads" \
	--seconds "$seconds" "$@"
rss=$(awk '/VmHWM/ {print $2 " " $3}' /proc/$pid/status)
db=$(du -sh "$dir" | cut -f1)
echo "ingest: server peak RSS $rss, database and WAL $db"
