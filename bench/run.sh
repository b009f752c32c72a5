#!/bin/sh
# Every benchmark, one line each.  They print figures and assert nothing
# about time: the machine they run on decides those.
#
#   bench/run.sh [BUILD_DIR]     (make bench builds them first)
set -eu
build=${1:-build/rel}

"$build/bench/bench_sla" 100000   # SLA clocks of 100,000 open tickets from their journals
