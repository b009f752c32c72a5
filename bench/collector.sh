# Sourced by the agent benchmarks: a real tocsin-server (release build) on
# a free loopback port with its database in $work, plain HTTP.
#   collector_start DIR   sets COLLECTOR_URL and COLLECTOR_PID
#   collector_stop
AGENT_TOKEN=bench-agent-token-0123456789

collector_start() {
	local dir=$1 conf=$1/server.yaml
	mkdir -p "$dir"
	cat >"$conf" <<YAML
listen: 127.0.0.1:0
database: $dir/tocsin.db
allow_plain_http: true
auth:
  tokens:
    - {name: bench, token: $AGENT_TOKEN, role: agent}
YAML
	# A collector without TLS support does not know allow_plain_http yet.
	if ! "$top/bin/tocsin-server" --config "$conf" --check-config >/dev/null 2>&1; then
		sed -i '/^allow_plain_http/d' "$conf"
	fi
	"$top/bin/tocsin-server" --config "$conf" --port-file "$dir/port" >"$dir/server.log" 2>&1 &
	COLLECTOR_PID=$!
	for _ in $(seq 100); do
		[ -s "$dir/port" ] && curl -sf "http://127.0.0.1:$(cat "$dir/port")/healthz" >/dev/null && break
		sleep 0.1
	done
	COLLECTOR_URL=http://127.0.0.1:$(cat "$dir/port")
}

collector_stop() {
	kill "$COLLECTOR_PID" 2>/dev/null && wait "$COLLECTOR_PID" 2>/dev/null || true
}

# agent_config FILE STATE_DIR [CHECKS-YAML]
agent_config() {
	cat >"$1" <<YAML
host: bench01
state_dir: $2
server:
  url: $COLLECTOR_URL
  token: $AGENT_TOKEN
  allow_plain_http: true
${3:-}
YAML
}
