#!/bin/bash
# What reads cost the writer: collector ingest (bench/ingest_load, batches
# of 100 events over 10,000 keys) alone, then with a client scraping
# /metrics and listing 1,000 tickets in a closed loop beside it.  Reads
# that take the writer's store lock stall its group commits, which shows
# as ingest p99/max latency and throughput; reads on the read connection
# do not.  Prints the load generator's line for both runs and the readers'
# request count and latencies.
#
#   bench/scrape_stall.sh [SECONDS] [THREADS]
#   TOCSIN_SERVER=path/to/tocsin-server bench/scrape_stall.sh   (another build)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-8}
threads=${2:-8}
server=${TOCSIN_SERVER:-$top/bin/tocsin-server}
dir=$(mktemp -d /tmp/tocsin-bench.XXXXXX)
token=bench-agent-token-0123456789
viewer=bench-viewer-token-0123456789
cat >"$dir/server.yaml" <<YAML
listen: 127.0.0.1:0
database: $dir/tocsin.db
allow_plain_http: true
log_level: warning
auth:
  tokens:
    - {name: bench, token: $token, role: agent}
    - {name: scraper, token: $viewer, role: viewer}
YAML
"$server" --config "$dir/server.yaml" --port-file "$dir/port" >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do [ -s "$dir/port" ] && break; sleep 0.05; done
port=$(cat "$dir/port")
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.05; done
waited() {
	curl -s -H "Authorization: Bearer $viewer" "http://127.0.0.1:$port/metrics" |
		awk '/^tocsin_writer_lock_wait_seconds_total / { print $2 }'
}
load() {
	local before after
	before=$(waited)
	"$top/build/rel/bench/ingest_load" 127.0.0.1 "$port" "$token" \
		--connections "$threads" --mix churn --seconds "$seconds"
	after=$(waited)
	[ -n "$before" ] && awk -v a="$after" -v b="$before" -v s="$seconds" \
		'BEGIN { printf "scrape_stall: the writer waited %.1f ms for others holding its store (%.2f%% of %d s)\n", (a - b) * 1000, (a - b) * 100 / s, s }'
	return 0
}
# fill the database first, so that the ticket list has 1,000 rows to read
"$top/build/rel/bench/ingest_load" 127.0.0.1 "$port" "$token" --connections 4 --mix churn --warmup 0 --seconds 2 >/dev/null
echo "scrape_stall: $(basename "$server"), no readers:"
load
: >"$dir/reads"
(
	while [ ! -e "$dir/stop" ]; do
		curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $viewer" \
			"http://127.0.0.1:$port/metrics" >>"$dir/reads"
		curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $viewer" \
			"http://127.0.0.1:$port/api/v1/tickets?state=all&limit=1000" >>"$dir/reads"
	done
) &
reader=$!
echo "scrape_stall: with /metrics and a 1,000-ticket list read in a loop:"
load
touch "$dir/stop"
wait $reader
sort -n "$dir/reads" | awk '{ v[NR] = $1; sum += $1 } END {
	if (NR == 0) { print "scrape_stall: no reads"; exit }
	printf "scrape_stall: %d reads, p50 %.1f ms, p99 %.1f ms, max %.1f ms, %.1f s in all\n",
	       NR, v[int(NR * 0.5) + 1] * 1000, v[int(NR * 0.99) + 1] * 1000, v[NR] * 1000, sum }'
