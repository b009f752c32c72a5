#!/bin/bash
# Trap benchmark: sustained traps per second that tocsin-server receives,
# decodes, maps, deduplicates and stores (SQLite, synchronous=FULL), with
# the kernel's UDP receive errors, and Debian's snmptrapd on the same
# machine for comparison (logging to a file; and with a traphandle).
#
#   bench/trap_bench.sh [seconds per run, default 10]
#   DEVICES=10000 bench/trap_bench.sh    # the senders among 10,000 devices
#   SERVER=path/to/tocsin-server bench/trap_bench.sh   # another build
#
# DEVICES (default 10) devices are configured: the ten that send come
# last, after DEVICES - 10 others with an address and a sys_name each, so
# that finding the sender is a lookup among them all (a scan of every
# device would cost the most here).  snmptrapd is compared with the
# default only.
#
# "lost" = sent - handled: either the kernel's receive errors (the
# listener thread did not read in time) or "dropped" (the writer was
# traps.backlog traps behind).
#
# Traps come from bench/trap_sender (packets encoded once by net-snmp and
# replayed with sendmmsg at a fixed rate).  Prints figures, asserts none.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
top=$(pwd)
work=$(mktemp -d /tmp/tocsin-trap-bench-XXXXXX)
out=build/bench
mkdir -p "$out"
token=bench-admin-token-0123456789
server_pid= trapd_pid=

cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	[ -n "$trapd_pid" ] && kill "$trapd_pid" 2>/dev/null && wait "$trapd_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# Built by the Makefile with the project's warnings (make bench builds it).
make --no-print-directory -s bin/tocsin-server build/rel/bench/trap_sender
sender=build/rel/bench/trap_sender

devices=10 interfaces=50
configured=${DEVICES:-10}
if [ "$configured" -lt "$devices" ]; then
	echo "DEVICES must be at least $devices" >&2
	exit 2
fi
{
	echo "listen: 127.0.0.1:0"
	echo "database: $work/tocsin.db"
	echo "log_level: warning"
	echo "allow_plain_http: true"
	echo "auth:"
	echo "  tokens:"
	echo "    - {name: bench, token: $token, role: admin}"
	echo "traps:"
	echo "  listen: 127.0.0.1:0"
	echo "  mappings_dir: $work/none"
	echo "  receive_buffer: 32MiB"
	# Ten busy switches behind one NAT address, at up to 60,000 traps/s:
	# limits for such a site (the defaults, 5,000/s a source and 2,000/s a
	# device, would refuse most of it); the buckets are still evaluated.
	echo "  rate_limit: {source: 100000, source_burst: 200000, device: 10000, device_burst: 20000}"
	echo "hosts:"
	for ((p = 0; p < configured - devices; p++)); do
		echo "  bench-pad$p:"
		echo "    snmp: {addresses: [10.$((p / 65536 % 256)).$((p / 256 % 256)).$((p % 256))], sys_name: bench-pad$p, community: bench-community}"
	done
	for d in $(seq 0 $((devices - 1))); do
		echo "  bench-sw$d:"
		echo "    snmp: {sys_name: bench-sw$d, community: bench-community}"
	done
} >"$work/server.yaml"

metric() { # name -> summed value of every sample of that name
	curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$http_port/metrics" |
		awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%d\n", s }'
}

# Wait until the server has handled everything it received.
settle() {
	local last=-1 now
	for _ in $(seq 1 300); do
		now=$(( $(metric tocsin_traps_matched_total) + $(metric tocsin_traps_unmatched_total) + $(metric tocsin_traps_dropped_total) + $(metric tocsin_traps_rejected_total) ))
		if [ "$now" = "$last" ] && [ "$(metric tocsin_traps_jobs_in_flight)" = 0 ]; then
			return
		fi
		last=$now
		sleep 0.2
	done
}

"${SERVER:-bin/tocsin-server}" --config "$work/server.yaml" --port-file "$work/port" \
	--trap-port-file "$work/trap-port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 1200); do [ -s "$work/port" ] && break; sleep 0.05; done
http_port=$(cat "$work/port") trap_port=$(cat "$work/trap-port")

echo "== tocsin-server: $devices devices (of $configured configured) x $interfaces interfaces, 9 linkDowns then a linkUp each, ${secs}s per rate =="
echo "(2-core machine shared with other work: figures are noisy)"
printf "%-8s %10s %10s %10s %10s %8s %12s %10s %10s\n" target sent/s sent handled lost loss% udp_rcv_err dropped tickets
best=0
for rate in 10000 20000 30000 40000 60000; do
	before_h=$(( $(metric tocsin_traps_matched_total) + $(metric tocsin_traps_unmatched_total) ))
	before_e=$(metric tocsin_traps_udp_receive_errors_total)
	before_d=$(metric tocsin_traps_dropped_total)
	line=$("$sender" --port "$trap_port" --rate "$rate" --duration "$secs" \
		--devices $devices --interfaces $interfaces)
	sent=$(sed 's/.*sent=\([0-9]*\).*/\1/' <<<"$line")
	achieved=$(sed 's/.*rate=\([0-9]*\).*/\1/' <<<"$line")
	settle
	handled=$(( $(metric tocsin_traps_matched_total) + $(metric tocsin_traps_unmatched_total) - before_h ))
	errs=$(( $(metric tocsin_traps_udp_receive_errors_total) - before_e ))
	dropped=$(( $(metric tocsin_traps_dropped_total) - before_d ))
	lost=$((sent - handled))
	tickets=$(sqlite3 "$work/tocsin.db" "SELECT count(*) FROM tickets" 2>/dev/null || echo ?)
	printf "%-8s %10s %10s %10s %10s %8s %12s %10s %10s\n" "$rate" "$achieved" "$sent" "$handled" \
		"$lost" "$(awk -v l=$lost -v s=$sent 'BEGIN { printf "%.2f", s ? 100 * l / s : 0 }')" "$errs" "$dropped" "$tickets"
	if [ "$lost" -eq 0 ]; then best=$achieved; else break; fi
done
echo "highest rate with zero loss: ${best}/s (every trap received, decoded, mapped, deduplicated and committed)"
echo "writer commits: $(metric tocsin_writer_commits_total), trap jobs: $(metric tocsin_traps_jobs_total), events: $(sqlite3 "$work/tocsin.db" 'SELECT count(*) FROM events')"
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=

# --- snmptrapd for comparison -------------------------------------------------
if [ "$configured" != "$devices" ]; then
	exit 0
fi
if ! command -v snmptrapd >/dev/null; then
	echo "snmptrapd is not installed: no comparison"
	exit 0
fi
free_port() {
	python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Kernel drops for the socket on port $1 (the drops column of /proc/net/udp).
udp_drops() {
	awk -v p="$(printf '%04X' "$1")" 'NR > 1 && toupper(substr($2, index($2, ":") + 1)) == p { print $13 }' /proc/net/udp
}
run_trapd() { # label rate seconds conf-extra
	local label=$1 rate=$2 dur=$3 extra=$4 port log
	port=$(free_port)
	log="$work/trapd-$label.log"
	: >"$log"
	printf 'disableAuthorization yes\n%b\n' "$extra" >"$work/snmptrapd-$label.conf"
	# Its default format: a header line and a line of varbinds per trap.
	MIBS="" snmptrapd -f -n -C -c "$work/snmptrapd-$label.conf" -Lf "$log" \
		"udp:127.0.0.1:$port" >/dev/null 2>&1 &
	trapd_pid=$!
	for _ in $(seq 1 100); do [ -n "$(udp_drops "$port")" ] && break; sleep 0.05; done
	line=$("$sender" --port "$port" --rate "$rate" --duration "$dur" \
		--devices $devices --interfaces $interfaces)
	sent=$(sed 's/.*sent=\([0-9]*\).*/\1/' <<<"$line")
	achieved=$(sed 's/.*rate=\([0-9]*\).*/\1/' <<<"$line")
	sleep 2
	drops=$(udp_drops "$port")
	kill "$trapd_pid"; wait "$trapd_pid" 2>/dev/null || true; trapd_pid=
	handled=$(grep -c '^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9] .*UDP: ' "$log" || true)
	[ -f "$work/handled-$label" ] && handled=$(wc -l <"$work/handled-$label")
	printf "%-22s %8s %10s %10s %10s %10s %8s %12s\n" "$label" "$rate" "$achieved" "$sent" "$handled" \
		"$(awk -v h=$handled -v d=$dur 'BEGIN { printf "%.0f", h / (d + 2) }')" \
		"$(awk -v h=$handled -v s=$sent 'BEGIN { printf "%.2f", s ? 100 * (s - h) / s : 0 }')" "$drops"
}
echo
echo "== Debian snmptrapd $(snmptrapd -v 2>&1 | awk '/NET-SNMP Version/ { print $NF }'), same sender =="
printf "%-22s %8s %10s %10s %10s %10s %8s %12s\n" mode target sent/s sent handled handled/s loss% udp_rcv_err
run_trapd log-to-file 20000 "$secs" ""
cat >"$work/handler.sh" <<EOF
#!/bin/sh
cat >/dev/null
echo x >>"$work/handled-traphandle"
EOF
chmod +x "$work/handler.sh"
run_trapd traphandle 1000 "$secs" "traphandle default $work/handler.sh"
