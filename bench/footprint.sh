#!/bin/sh
# The agent's memory with every check enabled, after a few rounds: the
# real tocsin-agent daemon delivering to a real tocsin-server on
# loopback, every check on a 5 s interval for SECONDS_RUN (default 30)
# seconds; then Rss/Pss from /proc/PID/smaps_rollup and its CPU seconds.
# A second agent with only the disk check (no prediction) runs at the
# same time, so that the difference is what the other checks cost.
# Then what each library costs alone (bench/libcost.c), to tell the
# agent's own memory from its libraries'.
set -eu
cd "$(dirname "$0")/.."
run_s=${SECONDS_RUN:-30}
dir=$(mktemp -d /tmp/tocsin-bench-fp.XXXXXX)
server_pid= agent_pid= base_pid=
cleanup() {
	[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
	[ -n "$base_pid" ] && kill "$base_pid" 2>/dev/null && wait "$base_pid" 2>/dev/null
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

cat > "$dir/server.yaml" <<YAML
listen: 127.0.0.1:0
database: $dir/tocsin.db
auth:
  tokens:
    - {name: agents, token: bench-agent-token-0123456789, role: agent}
YAML
bin/tocsin-server --config "$dir/server.yaml" --port-file "$dir/port" \
	>"$dir/server.log" 2>&1 &
server_pid=$!
i=0
while [ ! -s "$dir/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
port=$(cat "$dir/port")

mkdir "$dir/backups"
for i in 0 1 2 3 4; do
	head -c 100000 /dev/zero > "$dir/backups/db-$i.gz"
	touch -d "$((2 + 24 * i)) hours ago" "$dir/backups/db-$i.gz"
done
cat > "$dir/agent.yaml" <<YAML
host: bench
state_dir: $dir/state
log_level: warning
server: {url: "http://127.0.0.1:$port", token: bench-agent-token-0123456789, allow_plain_http: true}
checks:
  disk: {interval: 5s}
  backup:
    interval: 5s
    targets:
      - {name: db, path: "$dir/backups/db-*.gz"}
  plugin:
    plugins:
      - {name: true, command: [/bin/true], interval: 5s}
  heartbeat: {interval: 5s}
  # updates and services on their defaults (on): every check enabled
  updates: {}
  services: {}
YAML
cat > "$dir/base.yaml" <<YAML
host: bench-base
state_dir: $dir/state-base
log_level: warning
server: {url: "http://127.0.0.1:$port", token: bench-agent-token-0123456789, allow_plain_http: true}
checks:
  disk: {interval: 5s, predict: false}
  heartbeat: {enabled: false}
  updates: {enabled: false}
  services: {enabled: false}
YAML
bin/tocsin-agent --config "$dir/agent.yaml" >"$dir/agent.log" 2>&1 &
agent_pid=$!
bin/tocsin-agent --config "$dir/base.yaml" >"$dir/base.log" 2>&1 &
base_pid=$!
sleep "$run_s"

rollup() { awk -v k="$1:" '$1 == k {print $2}' "/proc/${2:-$agent_pid}/smaps_rollup"; }
ticks=$(getconf CLK_TCK)
cpu=$(awk -v t="$ticks" '{sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / t}' "/proc/$agent_pid/stat")
events=$(sqlite3 "$dir/tocsin.db" "SELECT count(*) FROM events" 2>/dev/null || echo "?")
echo "footprint: agent, every check on 5 s, after ${run_s} s ($events events delivered):" \
	"RSS $(rollup Rss) kB, PSS $(rollup Pss) kB (anon $(rollup Pss_Anon) kB, file $(rollup Pss_File) kB)," \
	"CPU ${cpu} s"
echo "footprint: agent with only disk, no prediction, same time:" \
	"RSS $(rollup Rss "$base_pid") kB, PSS $(rollup Pss "$base_pid") kB (anon $(rollup Pss_Anon "$base_pid") kB)"

# each library alone, doing once what the agent does with it
cc=${CC:-cc}
out=build/bench
mkdir -p "$out"
for lib in none:"" sqlite:sqlite3 curl:libcurl sdbus:libsystemd jansson:jansson yaml:yaml-0.1; do
	name=${lib%%:*} pkg=${lib#*:}
	flag=$(echo "$name" | tr a-z A-Z)
	libs=$([ -n "$pkg" ] && pkg-config --cflags --libs "$pkg" || true)
	# shellcheck disable=SC2086
	$cc -O2 -DUSE_$flag -o "$out/libcost-$name" bench/libcost.c $libs
	"$out/libcost-$name" "$dir"
done
