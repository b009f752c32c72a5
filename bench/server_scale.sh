#!/bin/bash
# A collector configured for a large MSP: N customers, contracts,
# technicians (and their tokens) and queues, 4 * N trap devices in N trap
# networks, 4 * N host credentials (CREDENTIALS= to set) in the database
# (bench/server_scale_gen.py).  Times --check-config, the start to the
# port file, and a SIGHUP to the log lines of both the configuration's
# and the trap listener's reload.  CALLGRIND=1 also counts instructions
# (the reliable measure on a shared machine): of --check-config, and of
# a start to the port file, a SIGHUP reload and the exit under callgrind.
#
#   bench/server_scale.sh [N ...]          # default: 1000 4000
#   SERVER=path/to/tocsin-server bench/server_scale.sh 4000
#   CREDENTIALS=200000 bench/server_scale.sh 1000
#   CALLGRIND=1 bench/server_scale.sh 4000
#
# Prints figures, asserts none.
set -euo pipefail
cd "$(dirname "$0")/.."

server=${SERVER:-bin/tocsin-server}
[ -n "${SERVER:-}" ] || make --no-print-directory -s bin/tocsin-server
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1000 4000)
work=$(mktemp -d /tmp/tocsin-server-scale-XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# Start the server on $dir (its output to $log), wait for its port file.
start() {
	rm -f "$dir/port"
	"$@" "$server" --config "$dir/s.yaml" --port-file "$dir/port" >"$log" 2>&1 &
	pid=$!
	until [ -s "$dir/port" ]; do
		kill -0 "$pid" 2>/dev/null || { echo "tocsin-server exited:"; cat "$log"; exit 1; }
		sleep 0.01
	done
}

stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

# Wait for a line matching $1 in $log.
await() {
	until grep -q "$1" "$log"; do
		kill -0 "$pid" 2>/dev/null || { echo "tocsin-server exited:"; cat "$log"; exit 1; }
		sleep 0.01
	done
}

reload() {
	kill -HUP "$pid"
	await "SIGHUP: configuration reloaded"
	await "trap listener: reloaded configuration applied"
}

collected() { sed -n 's/.*Collected : \([0-9]*\)/\1/p' "$1"; }

printf "%-6s %8s %8s %8s %14s %14s\n" n check_s start_s reload_s check_Ir start_reload_Ir
for n in "${counts[@]}"; do
	dir="$work/$n"
	log="$dir/log"
	mkdir -p "$dir"
	python3 bench/server_scale_gen.py "$n" "$dir" >"$dir/s.yaml"
	start; stop   # creates the database
	python3 bench/server_scale_gen.py --credentials "$n" "$dir" ${CREDENTIALS:-}
	t0=$(now)
	"$server" --config "$dir/s.yaml" --check-config >/dev/null
	check=$(since "$t0")
	t0=$(now)
	start
	started=$(since "$t0")
	t0=$(now)
	reload
	reloaded=$(since "$t0")
	stop
	check_ir=- run_ir=-
	if [ -n "${CALLGRIND:-}" ]; then
		valgrind --tool=callgrind --callgrind-out-file="$dir/cg.check" \
			"$server" --config "$dir/s.yaml" --check-config >/dev/null 2>"$dir/cg.log"
		check_ir=$(collected "$dir/cg.log")
		log="$dir/cg.run.log"
		start valgrind --tool=callgrind --callgrind-out-file="$dir/cg.run"
		reload
		stop
		run_ir=$(collected "$log")
	fi
	printf "%-6s %8s %8s %8s %14s %14s\n" "$n" "$check" "$started" "$reloaded" "$check_ir" "$run_ir"
done
