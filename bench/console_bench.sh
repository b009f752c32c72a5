#!/bin/sh
# The web console: page weight and the time from navigation to the
# rendered list of N open tickets, in headless chromium, against the
# release collector (bin/tocsin-server) on loopback.
#
#   bench/console_bench.sh [N] [ROUNDS]
set -eu
cd "$(dirname "$0")/.."
n=${1:-1000}
rounds=${2:-5}
make --no-print-directory build/console-tests/node_modules/playwright-core/package.json >/dev/null
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
admin=bench-admin-token-0123456789
agent=bench-agent-token-0123456789
cat > "$dir/server.yaml" <<YAML
listen: 127.0.0.1:0
database: $dir/tocsin.db
allow_plain_http: true
auth:
  tokens:
    - {name: admin, token: $admin, role: admin}
    - {name: agents, token: $agent, role: agent}
YAML
bin/tocsin-server -c "$dir/server.yaml" --port-file "$dir/port" 2>"$dir/log" &
pid=$!
i=0
until [ -s "$dir/port" ] && curl -sf "http://127.0.0.1:$(cat "$dir/port")/healthz" >/dev/null; do
	i=$((i + 1)); [ $i -lt 500 ] || { cat "$dir/log"; exit 1; }
	sleep 0.01
done
url=http://127.0.0.1:$(cat "$dir/port")
curl -sf -X PUT "$url/api/v1/accounts/bench" -H "Authorization: Bearer $admin" \
	-H 'Content-Type: application/json' \
	-d '{"role": "technician", "password": "bench password"}' >/dev/null
/usr/bin/python3 - "$url" "$agent" "$n" <<'PY'
import json, sys, urllib.request, uuid
from datetime import datetime, timezone
url, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
for start in range(0, n, 1000):
    events = [{"id": str(uuid.uuid4()), "check": "disk", "item": f"/srv/{i}",
               "state": "warning", "summary": f"/srv/{i}: 91% used, 9 GiB free",
               "observed_at": now} for i in range(start, min(n, start + 1000))]
    req = urllib.request.Request(url + "/api/v1/events", method="POST",
                                 data=json.dumps({"host": "bench01", "events": events}).encode(),
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
PY
NODE_PATH=build/console-tests/node_modules node bench/console_render.js "$url" bench "bench password" "$rounds"
echo "console: page weight $(cat console/*.html console/*.css console/*.js | wc -c | tr -d ' ') bytes of HTML+CSS+JS (uncompressed; $(cat console/*.html console/*.css console/*.js | gzip -9 | wc -c | tr -d ' ') gzipped)"
