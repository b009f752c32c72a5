#!/bin/bash
# make demo: start a collector with SQLite in ./demo-data, run an agent against
# this machine with thresholds set just below the real usage of / so that a
# real ticket appears, and show how to look at it.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
data=${TOCSIN_DEMO_DIR:-$top/demo-data}
bin=$top/bin
mkdir -p "$data"

# A previous demo's server would hold the database: stop it first.
if [ -f "$data/server.pid" ] && kill -0 "$(cat "$data/server.pid")" 2>/dev/null; then
	kill "$(cat "$data/server.pid")"
	while kill -0 "$(cat "$data/server.pid")" 2>/dev/null; do sleep 0.1; done
fi
rm -f "$data/port" "$data/server.pid"

token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
password() { head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
if [ ! -f "$data/tokens" ]; then
	printf 'AGENT_TOKEN=%s\nTECH_TOKEN=%s\nADMIN_TOKEN=%s\nCONSOLE_PASSWORD=%s\n' \
		"$(token)" "$(token)" "$(token)" "$(password)" >"$data/tokens"
	chmod 600 "$data/tokens"
fi
. "$data/tokens"
# tokens written by an older demo lack the administrator's
if [ -z "${ADMIN_TOKEN:-}" ]; then
	ADMIN_TOKEN=$(token) CONSOLE_PASSWORD=$(password)
	printf 'ADMIN_TOKEN=%s\nCONSOLE_PASSWORD=%s\n' "$ADMIN_TOKEN" "$CONSOLE_PASSWORD" >>"$data/tokens"
fi

cat >"$data/server.yaml" <<YAML
# Written by make demo.  See conf.d/server.yaml for every option.
listen: 127.0.0.1:0
database: $data/tocsin.db
# The demo stays on loopback; configure tls: (see conf.d/server.yaml) beyond it.
allow_plain_http: true
auth:
  tokens:
    - name: demo-agent
      token: $AGENT_TOKEN
      role: agent
    - name: demo-technician
      token: $TECH_TOKEN
      role: technician
    - name: demo-admin
      token: $ADMIN_TOKEN
      role: admin
YAML

"$bin/tocsin-server" --config "$data/server.yaml" --port-file "$data/port" \
	>>"$data/server.log" 2>&1 &
echo $! >"$data/server.pid"
for _ in $(seq 100); do
	[ -s "$data/port" ] && break
	kill -0 "$(cat "$data/server.pid")" 2>/dev/null || { cat "$data/server.log"; exit 1; }
	sleep 0.05
done
url=http://127.0.0.1:$(cat "$data/port")
until curl -sf "$url/healthz" >/dev/null; do sleep 0.05; done

# Warn one point below what / uses now, so the demo shows a real warning.
used=$(df --output=pcent / | tail -1 | tr -dc '0-9')
warn=$(( used > 1 ? used - 1 : 1 ))
cat >"$data/agent.yaml" <<YAML
# Written by make demo.  See conf.d/agent.yaml for every option.
host: $(hostname)-demo
state_dir: $data/agent
server:
  url: $url
  allow_plain_http: true
  token: $AGENT_TOKEN
checks:
  disk:
    warning: $warn%
    critical: 99%
YAML
mkdir -p "$data/agent"

echo "== the agent checks this machine once and delivers (warning at $warn% used) =="
"$bin/tocsin-agent" --config "$data/agent.yaml" --once
echo
echo "== open tickets on the collector =="
export TOCSIN_URL=$url TOCSIN_TOKEN=$TECH_TOKEN
"$bin/tocsin" tickets
# The disk ticket the thresholds above made (its "id" comes before "check";
# awk reads to the end: exiting early would kill tocsin with SIGPIPE).
first=$("$bin/tocsin" tickets --json | awk '
	/^ *"id": [0-9]+,?$/ { gsub(/[^0-9]/, ""); id = $0 }
	/^ *"check": "disk",?$/ && id != "" && !found { print id; found = 1 }')
if [ -n "$first" ]; then
	echo
	"$bin/tocsin" ticket "$first"
fi
# an account for the web console (the password from standard input)
printf '%s\n' "$CONSOLE_PASSWORD" |
	TOCSIN_TOKEN=$ADMIN_TOKEN "$bin/tocsin" account set demo --role technician >/dev/null
cat <<TXT

The web console: open $url/ and log in as demo, password $CONSOLE_PASSWORD

The collector keeps running (pid $(cat "$data/server.pid"), log $data/server.log).
Look around with:

  export TOCSIN_URL=$url TOCSIN_TOKEN=$TECH_TOKEN
  $bin/tocsin tickets --state all
  $bin/tocsin ticket ${first:-1}
  curl -H "Authorization: Bearer \$TOCSIN_TOKEN" $url/api/v1/tickets

Run the agent again (a second occurrence on the same ticket):
  $bin/tocsin-agent --config $data/agent.yaml --once
Stop the collector:
  kill $(cat "$data/server.pid")
TXT
