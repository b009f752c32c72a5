#!/bin/bash
# Trap listener start-up and reload with many devices: N inventory hosts
# with snmp: keys (an address, an engine id and one SNMPv3 user each, from
# bench/trap_scale_gen.py).  Times the start to the port file and a
# SIGHUP to the log line "trap listener: reloaded configuration applied",
# then to the next such line after a SIGHUP with the user's pass phrase
# changed (rekey: its localisation to every device's engine is redone).
# USERS=2: every device lists two users, and the rekey changes the second
# one's (its localisations are redone among the first one's).
#
#   bench/trap_scale.sh [N ...]          # default: 1000 4000 16000
#   SERVER=path/to/tocsin-server bench/trap_scale.sh 16000
#   USERS=2 bench/trap_scale.sh 16000
#
# Prints figures, asserts none.
set -euo pipefail
cd "$(dirname "$0")/.."

server=${SERVER:-bin/tocsin-server}
[ -n "${SERVER:-}" ] || make --no-print-directory -s bin/tocsin-server
counts=("$@")
users=${USERS:-1}
# The pass phrase of the last user (bench/trap_scale_gen.py).
rekey=authpass123
[ "$users" -gt 1 ] && rekey="authpass$((users - 1))x123"
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

# Send SIGHUP to $pid and wait for the n-th "reloaded configuration applied".
reload() {
	local n=$1
	kill -HUP "$pid"
	until [ "$(grep -c "trap listener: reloaded configuration applied" "$dir/log")" -ge "$n" ]; do
		kill -0 "$pid" 2>/dev/null || { echo "tocsin-server exited:"; cat "$dir/log"; exit 1; }
		sleep 0.01
	done
}

printf "%-8s %10s %10s %10s\n" devices start_s reload_s rekey_s
for n in "${counts[@]}"; do
	dir="$work/$n"
	mkdir -p "$dir"
	python3 bench/trap_scale_gen.py "$n" "$dir" "$users" >"$dir/s.yaml"
	t0=$(now)
	"$server" --config "$dir/s.yaml" --port-file "$dir/port" >"$dir/log" 2>&1 &
	pid=$!
	until [ -s "$dir/port" ]; do
		kill -0 "$pid" 2>/dev/null || { echo "tocsin-server exited:"; cat "$dir/log"; exit 1; }
		sleep 0.01
	done
	start=$(since "$t0")
	t0=$(now)
	reload 1
	reload=$(since "$t0")
	sed -i "s/auth_key: $rekey,/auth_key: $rekey-new,/" "$dir/s.yaml"
	t0=$(now)
	reload 2
	rekey=$(since "$t0")
	kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
	printf "%-8s %10s %10s %10s\n" "$n" "$start" "$reload" "$rekey"
done
