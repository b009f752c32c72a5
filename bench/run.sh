#!/bin/sh
# Run every benchmark; each prints its own figures (never a pass/fail).
# One line per benchmark.
set -eu
cd "$(dirname "$0")/.."
build/rel/bench/dedup_bench 3 "${TMPDIR:-/tmp}"
