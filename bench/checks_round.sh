#!/bin/sh
# CPU time of one round of the disk, backup, plugin and heartbeat checks:
# disk (discovery and prediction), backup (a target of 10 files),
# plugin (/bin/true), heartbeat.  ROUNDS=1000 by default.  The updates and
# services checks have their own benchmark (bench/services_bench.py).
set -eu
cd "$(dirname "$0")/.."
bin=build/rel/bench/checks_round
[ -x "$bin" ] || make --no-print-directory "$bin" >/dev/null

dir=$(mktemp -d /tmp/tocsin-bench-round.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/backups"
for i in 0 1 2 3 4 5 6 7 8 9; do
	head -c $((100000 + i * 1000)) /dev/zero > "$dir/backups/db-$i.sql.gz"
	touch -d "$((2 + 24 * i)) hours ago" "$dir/backups/db-$i.sql.gz"
done
cat > "$dir/agent.yaml" <<YAML
host: bench
state_dir: $dir/state
server: {url: "https://127.0.0.1:9", token: unused}
checks:
  disk: {}
  backup:
    targets:
      - {name: db, path: "$dir/backups/db-*.sql.gz"}
  plugin:
    plugins:
      - {name: true, command: [/bin/true]}
  heartbeat: {}
  # measured by checks-b's bench/services_bench.py
  updates: {enabled: false}
  services: {enabled: false}
YAML
echo "checks_round: mounts checked here: $(awk '$3 !~ /^(proc|sysfs|tmpfs|devtmpfs|devpts|cgroup2?|overlay|mqueue|securityfs|debugfs|pstore|bpf|tracefs|hugetlbfs|fusectl|configfs|autofs|binfmt_misc|nsfs|squashfs)$/' /proc/self/mounts | wc -l) (before bind-mount dedup)"
"$bin" "$dir/agent.yaml" "${ROUNDS:-1000}"
