# Sourced by the agent benchmarks: a real tocsin-server (release build) on
# a free loopback port with its database in $work, plain HTTP, or HTTPS
# with a CA and a certificate for 127.0.0.1 made by openssl.
#   collector_start DIR [tls]   sets COLLECTOR_URL and COLLECTOR_PID (and
#                               COLLECTOR_CA, the CA's PEM, with tls)
#   collector_stop
AGENT_TOKEN=bench-agent-token-0123456789

collector_start() {
	local dir=$1 conf=$1/server.yaml transport="allow_plain_http: true" scheme=http
	mkdir -p "$dir"
	COLLECTOR_CA=
	if [ "${2:-}" = tls ]; then
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$dir/ca.key" -out "$dir/ca.pem" -subj "/CN=tocsin bench CA" -days 2 2>/dev/null
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$dir/server.key" -out "$dir/server.csr" -subj /CN=127.0.0.1 2>/dev/null
		echo "subjectAltName=IP:127.0.0.1" >"$dir/san.ext"
		openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
			-CAcreateserial -out "$dir/server.pem" -days 2 -extfile "$dir/san.ext" 2>/dev/null
		transport="tls: {cert: $dir/server.pem, key: $dir/server.key}"
		COLLECTOR_CA=$dir/ca.pem
		scheme=https
	fi
	cat >"$conf" <<YAML
listen: 127.0.0.1:0
database: $dir/tocsin.db
$transport
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
		[ -s "$dir/port" ] && curl -sf ${COLLECTOR_CA:+--cacert "$COLLECTOR_CA"} \
			"$scheme://127.0.0.1:$(cat "$dir/port")/healthz" >/dev/null && break
		sleep 0.1
	done
	COLLECTOR_URL=$scheme://127.0.0.1:$(cat "$dir/port")
}

collector_stop() {
	kill "$COLLECTOR_PID" 2>/dev/null && wait "$COLLECTOR_PID" 2>/dev/null || true
}

# agent_config FILE STATE_DIR [CHECKS-YAML]
agent_config() {
	local transport="  allow_plain_http: true"
	[ -n "${COLLECTOR_CA:-}" ] && transport="  ca_file: $COLLECTOR_CA"
	cat >"$1" <<YAML
host: bench01
state_dir: $2
server:
  url: $COLLECTOR_URL
  token: $AGENT_TOKEN
$transport
${3:-}
YAML
}
