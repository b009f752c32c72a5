#!/bin/sh
# Every benchmark, one line each.  They print figures and assert nothing;
# on a shared machine the figures are noisy.  Run with: make bench
set -eu
cd "$(dirname "$0")/.."

bench/checks_round.sh   # CPU time of one round of every check (getrusage)
bench/footprint.sh      # agent RSS/PSS with every check enabled, and what each library costs
