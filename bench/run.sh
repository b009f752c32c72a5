#!/bin/sh
# make bench: every benchmark, one line each.  They print figures and
# assert nothing; other work on the machine makes them noisy.
set -u
cd "$(dirname "$0")/.."

# services and updates checks: failure-to-event latency over D-Bus, CPU per round (root: a systemd container)
/usr/bin/python3 bench/services_bench.py 20
# helpdesk: SLA clocks of 100,000 open tickets recomputed from their journals, in a real SQLite file
build/rel/bench/bench_sla 100000
# SNMP traps: traps/s received, decoded, mapped, deduplicated and stored with zero loss; snmptrapd alongside
bench/trap_bench.sh 10
