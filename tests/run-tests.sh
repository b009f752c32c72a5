#!/bin/bash
# Run the unit tests (cmocka) and the integration tests (pytest) against the
# sanitizer build, and print one summary at the end.
#
#   tests/run-tests.sh [--unit-only|--integration-only] BUILD_DIR PYTHON
set -u

mode=all
case "${1:-}" in
--unit-only) mode=unit; shift ;;
--integration-only) mode=integration; shift ;;
esac
build=${1:?build directory}
python=${2:-/usr/bin/python3}
top=$(cd "$(dirname "$0")/.." && pwd)

# Sanitizer failures must fail the run, and leaks count as failures.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0}

unit_pass=0 unit_fail=0 failed_units=()
integration_status="not run"
rc=0

if [ "$mode" != integration ]; then
	echo "== unit tests (cmocka, ASan/UBSan) =="
	for t in "$build"/tests/test_*; do
		[ -x "$t" ] || continue
		name=$(basename "$t")
		if out=$(cd "$top" && "$t" 2>&1); then
			unit_pass=$((unit_pass + 1))
			echo "$out" | grep -E '^\[  PASSED  \]' | sed "s/^/$name: /"
		else
			unit_fail=$((unit_fail + 1))
			failed_units+=("$name")
			echo "$out"
			echo "$name: FAILED"
		fi
	done
	[ $unit_fail -eq 0 ] || rc=1
fi

if [ "$mode" != unit ]; then
	echo "== integration tests (pytest, real daemons, ASan/UBSan) =="
	junit=$(mktemp)
	TOCSIN_BIN="$top/$build/bin" "$python" -m pytest -q -rfEs \
		-p no:cacheprovider --junitxml="$junit" "$top/tests/integration"
	prc=$?
	integration_status=$("$python" - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    s = ET.parse(sys.argv[1]).getroot()
    s = s if s.tag == "testsuite" else s.find("testsuite")
    t, f, e, k = (int(s.get(x, 0)) for x in ("tests", "failures", "errors", "skipped"))
    print(f"{t - f - e - k} passed, {f + e} failed, {k} skipped")
except Exception as exc:
    print(f"no report ({exc})")
PY
)
	rm -f "$junit"
	[ $prc -eq 0 ] || rc=1
fi

echo
echo "================ summary ================"
if [ "$mode" != integration ]; then
	echo "unit test programs: $unit_pass passed, $unit_fail failed ${failed_units[*]:-}"
fi
if [ "$mode" != unit ]; then
	echo "integration tests:  $integration_status"
fi
if [ $rc -eq 0 ]; then echo "RESULT: PASS"; else echo "RESULT: FAIL"; fi
exit $rc
