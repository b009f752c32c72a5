#!/bin/bash
# Trap listener start-up and reload with many devices: N inventory hosts
# with snmp: keys (an address, an engine id and one SNMPv3 user each, from
# bench/trap_scale_gen.py).  Times the start to the port file and a
# SIGHUP to the log line "trap listener: reloaded configuration applied".
#
#   bench/trap_scale.sh [N ...]          # default: 1000 4000 16000
#   SERVER=path/to/tocsin-server bench/trap_scale.sh 16000
#
# Prints figures, asserts none.
set -euo pipefail
cd "$(dirname "$0")/.."

server=${SERVER:-bin/tocsin-server}
[ -n "${SERVER:-}" ] || make --no-print-directory -s bin/tocsin-server
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1000 4000 16000)
work=$(mktemp -d /tmp/tocsin-trap-scale-XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

printf "%-8s %10s %10s\n" devices start_s reload_s
for n in "${counts[@]}"; do
	dir="$work/$n"
	mkdir -p "$dir"
	python3 bench/trap_scale_gen.py "$n" "$dir" >"$dir/s.yaml"
	t0=$(now)
	"$server" --config "$dir/s.yaml" --port-file "$dir/port" >"$dir/log" 2>&1 &
	pid=$!
	until [ -s "$dir/port" ]; do
		kill -0 "$pid" 2>/dev/null || { echo "tocsin-server exited:"; cat "$dir/log"; exit 1; }
		sleep 0.01
	done
	start=$(since "$t0")
	t0=$(now)
	kill -HUP "$pid"
	until grep -q "trap listener: reloaded configuration applied" "$dir/log"; do
		kill -0 "$pid" 2>/dev/null || { echo "tocsin-server exited:"; cat "$dir/log"; exit 1; }
		sleep 0.01
	done
	reload=$(since "$t0")
	kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
	printf "%-8s %10s %10s\n" "$n" "$start" "$reload"
done
