#!/usr/bin/env bash
# Build the libFuzzer targets and run each for a while (docs/FUZZING.md).
#   contrib/run-fuzzers.sh                  # every target, 60 s each
#   FUZZ_SECONDS=300 contrib/run-fuzzers.sh gguf ipc
# Installs clang and libclang-rt-14-dev (libFuzzer's runtime) when missing, builds in
# build-fuzz/ (FUZZ_BUILD_DIR=DIR to use another folder), runs the targets one after
# the other with one job each, and prints per target the inputs executed, execs/s and
# libFuzzer's final coverage (cov: edges, ft: features).  The working corpus is kept in
# BUILD/tests/fuzz/work/TARGET, so coverage grows from run to run; crash inputs go to
# BUILD/tests/fuzz/artifacts/TARGET/.  Exits 1 if any target crashed or broke a property.
# Test data (Llama-3 vocabulary for tokenizer/chat/stop): ../shared/data beside the
# checkout, or BITNET_TEST_DATA=DIR.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
bdir="${FUZZ_BUILD_DIR:-$src/build-fuzz}"
seconds="${FUZZ_SECONDS:-60}"
all_targets=(gguf ipc tokenizer chat stop config)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
    case " ${all_targets[*]} " in *" $t "*) ;; *) echo "run-fuzzers: unknown target '$t' (known: ${all_targets[*]})" >&2; exit 2 ;; esac
done

BITNET_DEPS_EXTRA="clang libclang-rt-14-dev ${BITNET_DEPS_EXTRA:-}" "$src/contrib/install-deps.sh"
conf=()
[ -n "${BITNET_TEST_DATA:-}" ] && conf+=("--with-test-data=$BITNET_TEST_DATA")
cd "$src"
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
    autoreconf -fi >/dev/null
fi
mkdir -p "$bdir"
cd "$bdir"
[ -f Makefile ] || "$src/configure" -q "${conf[@]}"
make -s -j2 tests/fuzz/gen-seeds
make -s fuzz-seeds

status=0
summary=()
for t in "${targets[@]}"; do
    work="tests/fuzz/work/$t"
    art="tests/fuzz/artifacts/$t"
    log="tests/fuzz/fuzz-$t.log"
    mkdir -p "$work" "$art"
    maxlen=4096
    [ "$t" = gguf ] && maxlen=65536 # the reference models' 64 KB headers are seeds
    echo "== fuzz-$t: $seconds s"
    rc=0
    # one target at a time, so a layer that does not build stops only its own target
    if ! make -s -j2 "tests/fuzz/fuzz-$t" >"$log" 2>&1; then
        status=1
        tail -n 20 "$log" >&2
        summary+=("$t: does not build (make tests/fuzz/fuzz-$t; see $bdir/$log)")
        continue
    fi
    # saved crash inputs first, through the clang build (sanitizers included)
    regress=("$src/tests/fuzz/regressions/$t"/*)
    if [ -e "${regress[0]}" ] && ! "tests/fuzz/fuzz-$t" "${regress[@]}" >"$log" 2>&1 &&
        ! grep -q "cannot start:" "$log"; then
        status=1
        echo "fuzz-$t: a saved regression input fails again; see $bdir/$log" >&2
        summary+=("$t: a regression input in tests/fuzz/regressions/$t fails again")
        continue
    fi
    "tests/fuzz/fuzz-$t" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -max_len="$maxlen" \
        -artifact_prefix="$art/" "$work" "tests/fuzz/seeds/$t" >"$log" 2>&1 || rc=$?
    if grep -q "cannot start:" "$log"; then
        line="$t: skipped ($(grep -m1 'cannot start:' "$log" | sed 's/.*cannot start: //'))"
    else
        # (a target that fails on its first input prints no status line: no match is fine)
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1 || true)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1 || true)
        cov=$({ grep -E '^#[0-9]+.*cov: ' "$log" || true; } | tail -n1 |
            sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+).*/cov \1 ft \2/')
        line=$(printf '%-10s %10s execs %7s execs/s  %s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-cov ? ft ?}")
        if [ $rc -ne 0 ]; then
            status=1
            crash=$(ls -t "$art" 2>/dev/null | head -n1 || true)
            line="$line  FAILED (exit $rc): $bdir/$art/${crash:-?}"
            echo "fuzz-$t failed; the end of $bdir/$log:" >&2
            grep -E -A3 'ERROR|runtime error|^fuzz: ' "$log" | head -n 30 >&2 || tail -n 30 "$log" >&2
            echo "minimize: $bdir/tests/fuzz/fuzz-$t -minimize_crash=1 -runs=20000 $bdir/$art/${crash:-CRASH}" >&2
            echo "then save it under tests/fuzz/regressions/$t/ (make check replays it)" >&2
        fi
    fi
    echo "$line"
    summary+=("$line")
done
echo "== summary ($seconds s per target, $(date -u +%Y-%m-%d))"
printf '%s\n' "${summary[@]}"
exit $status
