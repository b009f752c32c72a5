#!/bin/sh
# make bench: every benchmark, one line each.  They print figures and
# assert nothing; other work on the machine makes them noisy.
set -u
cd "$(dirname "$0")/.."

# services and updates checks: failure-to-event latency over D-Bus, CPU per round (root: a systemd container)
/usr/bin/python3 bench/services_bench.py 20
# helpdesk: SLA clocks of 100,000 open tickets recomputed from their journals, in a real SQLite file
build/rel/bench/bench_sla 100000
# agent outbox alone: enqueue in rounds of 100, drain in acknowledged batches of 500 (real SQLite, fsync)
build/rel/bench/outbox_bench throughput 200000 100
# agent outbox end to end: 100,000 queued events delivered by the real agent to the real collector
bench/outbox_e2e.sh 100000 10000
# agent idle footprint: RSS, PSS, CPU seconds over a window (AGENT_FOOTPRINT_WINDOW seconds, default 600)
bench/agent_footprint.sh "${AGENT_FOOTPRINT_WINDOW:-600}"
