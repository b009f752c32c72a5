#!/bin/bash
# Every benchmark, one line each.  They print figures and assert nothing.
set -u
cd "$(dirname "$0")/.."
rc=0
bench/trap_bench.sh || rc=1
exit $rc
