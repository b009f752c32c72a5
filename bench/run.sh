#!/bin/sh
# make bench: every benchmark, one line each.  They print figures and
# assert nothing; other work on the machine makes them noisy.
set -u
cd "$(dirname "$0")/.."

# services and updates checks: failure-to-event latency over D-Bus, CPU per round (root: a systemd container)
/usr/bin/python3 bench/services_bench.py 20
# disk, backup, plugin, heartbeat: CPU time of one round (getrusage)
bench/checks_round.sh
# the agent's RSS/PSS with every check enabled, and what each library costs
bench/footprint.sh
# dedup with and without the alert lifecycle: events/s on a real SQLite file (3 rounds of 100,000 events)
build/rel/bench/dedup_bench 3 "${TMPDIR:-/tmp}"
# helpdesk: SLA clocks of 100,000 open tickets recomputed from their journals, in a real SQLite file
build/rel/bench/bench_sla 100000
# SNMP traps: traps/s received, decoded, mapped, deduplicated and stored with zero loss; snmptrapd alongside
bench/trap_bench.sh 10
