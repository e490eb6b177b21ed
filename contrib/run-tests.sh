#!/usr/bin/env bash
# Build bitnetd out of tree and run the whole test suite (make check).
#   contrib/run-tests.sh                 # build/ with -O2
#   contrib/run-tests.sh --sanitizers    # build-asan/ with ASan + UBSan + LeakSanitizer
# Test data: ../shared/data beside the checkout, or BITNET_TEST_DATA=DIR (see README).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
bdir="$src/build"
conf=()
if [ "${1:-}" = "--sanitizers" ]; then
    bdir="$src/build-asan"
    conf+=(--enable-sanitizers)
fi
[ -n "${BITNET_TEST_DATA:-}" ] && conf+=("--with-test-data=$BITNET_TEST_DATA")
"$src/contrib/install-deps.sh"
cd "$src"
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
    autoreconf -fi >/dev/null
fi
mkdir -p "$bdir"
cd "$bdir"
[ -f Makefile ] || "$src/configure" -q "${conf[@]}"
make -s -j2
status=0
make -s -j2 check || status=$?
# One closing line with the number of individual test cases (Criterion's synthesis
# lines, summed over all test programs).
awk '/Synthesis: Tested:/ { for (i = 1; i <= NF; i++) {
        if ($i == "Passing:") p += $(i + 1); if ($i == "Failing:") f += $(i + 1);
        if ($i == "Crashing:") c += $(i + 1); if ($i == "Skipped:") s += $(i + 1) } }
     END { printf "tests: %d passed, %d failed\n", p, f + c }' tests/*.log 2>/dev/null | tee test-summary.txt || true
if [ $status -ne 0 ]; then
    echo "make check failed; logs:" >&2
    for log in tests/*.log; do
        grep -q -E '^(FAIL|ERROR)' "${log%.log}.trs" 2>/dev/null && { echo "=== $log"; tail -n 40 "$log"; } >&2
    done
fi
exit $status
