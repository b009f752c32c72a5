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
# collector ingest over HTTP: batches of 100 events, 10,000 keys, 8 and 64 connections, churn and steady mixes
bench/ingest.sh 10 8
bench/ingest.sh 10 64
bench/ingest.sh 10 64 --steady
# the ingest path without HTTP: parse cost and the single writer's ceiling
build/rel/bench/store_apply 300000 256
build/rel/bench/store_apply 300000 256 steady
# per-host credential authentication: in-memory index vs indexed SELECT
build/rel/bench/auth_lookup 10000
# reads beside the writer: ingest alone and with /metrics and a 1,000-ticket list read in a loop
bench/scrape_stall.sh 6 4
