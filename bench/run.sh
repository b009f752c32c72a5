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
# business calendars: span arithmetic with and without recurring holidays (RRULE), per call
build/rel/bench/calendar_span 20000
# helpdesk: what notifications cost the writer (mail + webhook rows per opened ticket, a full outbox)
build/rel/bench/bench_outbox 20000
# SNMP traps: traps/s received, decoded, mapped, deduplicated and stored with zero loss; snmptrapd alongside
bench/trap_bench.sh 10
# collector ingest over HTTP: simulated agents, batches of 100 events, 10,000 keys, realistic (headline) and churn mixes
bench/ingest.sh 10 32 realistic
bench/ingest.sh 10 64 realistic
bench/ingest.sh 10 32 realistic --ids v4
bench/ingest.sh 10 32 churn
# the ingest path without HTTP: parse cost and the single writer's ceiling, same agents and mixes
build/rel/bench/store_apply 300000 64 realistic
build/rel/bench/store_apply 300000 64 churn
# UUIDv7 against random v4 event ids on a table of a million events (use 10000000 and more for an established collector)
build/rel/bench/event_ids 1000000 "${TMPDIR:-/tmp}"
# retention.tickets: the writer's prune jobs deleting 20,000 old closed tickets (20 events, 4 journal lines, 2 mails each): longest job, tickets/s
build/rel/bench/ticket_retention 20000 20 2000 "${TMPDIR:-/tmp}"
# per-host credential authentication: in-memory index vs indexed SELECT
build/rel/bench/auth_lookup 10000
# console login limits: the failed-login counters' cost per login with every table full
build/rel/bench/login_limit 200000
# agent outbox alone: enqueue in rounds of 100, drain in acknowledged batches of 500 (real SQLite, fsync)
build/rel/bench/outbox_bench throughput 200000 100
# agent outbox end to end: 100,000 queued events delivered by the real agent to the real collector
bench/outbox_e2e.sh 100000 10000
# agent footprint with every default check over HTTPS, and monit's beside it: RSS/PSS averaged over the window and peak, CPU (AGENT_FOOTPRINT_WINDOW seconds, default 600)
bench/agent_footprint.sh "${AGENT_FOOTPRINT_WINDOW:-600}"
# what the agent's split costs per delivery: the real deliverer started, one post over HTTP and HTTPS, further posts
bench/deliver_cost.sh 50
# package logs (updates, services): a 200,000-upgrade dpkg.log read into the newest 4096 records
build/rel/bench/pkglog_read 200000 "${TMPDIR:-/tmp}"
# reads beside the writer: ingest alone and with /metrics and a 1,000-ticket list read in a loop
bench/scrape_stall.sh 6 4
# the web console: time from navigation to the rendered list of 1,000 open tickets in headless chromium, page weight
bench/console_bench.sh 1000 7
