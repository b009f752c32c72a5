#!/bin/bash
# The benchmarks, one line each.  They print figures and assert nothing;
# other work on the machine makes them noisy.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build/rel/bench/outbox_bench throughput 200000 100
bench/outbox_e2e.sh 100000 10000
bench/agent_footprint.sh "${AGENT_FOOTPRINT_WINDOW:-600}"
