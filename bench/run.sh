#!/bin/bash
# make bench: every benchmark, one line each.  They print figures and never
# assert timings; on a shared machine the figures are noisy.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# Collector ingest over HTTP (8, 64 connections; churn and steady state mixes).
bench/ingest.sh 10 8
bench/ingest.sh 10 64
bench/ingest.sh 10 64 --steady
# The ingest path without HTTP: parse cost and the single writer's ceiling.
build/bench/store_apply 300000 256
build/bench/store_apply 300000 256 steady
# Authenticating per-host credentials: in-memory index vs indexed SELECT.
build/bench/auth_lookup 10000
