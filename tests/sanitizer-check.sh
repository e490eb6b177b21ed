#!/bin/sh
# tests/sanitizer-check.sh — the automake LOG_COMPILER of a --enable-sanitizers
# build (tests/reliability.am).  Runs one test program with every sanitizer report,
# its own and those of every process it starts (bitnetd, bitnetctl, bitnet-mkmodel),
# written to files in a private folder, and fails the test when any report was
# written.  Exit statuses alone miss some: Criterion counts a test whose worker
# process leaks as passed, and a daemon's report would only go to its log.
#
# One kind of report is not ours and is ignored (and said so): a leak report in
# which every leaked block was allocated directly by libcriterion (frame #1 in
# libcriterion.so) — Criterion's runner loses a 48-byte record now and then when
# tests run in parallel jobs and fork processes of their own.  Any other leak, any
# AddressSanitizer error and any UndefinedBehaviorSanitizer report still fails.
# Sanitizers end a process with status 23 (exitcode=23): when that status comes only
# from such an ignored report and Criterion's summary says nothing failed, the test
# passes.
#   usage: sanitizer-check.sh TEST-PROGRAM [ARGS...]
set -u
dir=$(mktemp -d "${TMPDIR:-/tmp}/bitnet-san.XXXXXX") || exit 99
# Later options win: the caller's own settings first, ours last.
SAN_STATUS=23
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:exitcode=$SAN_STATUS:log_path=$dir/asan"
UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:log_path=$dir/ubsan"
export ASAN_OPTIONS UBSAN_OPTIONS
mkdir "$dir/out" || exit 99
"$@" > "$dir/out/log" 2>&1
rc=$?
cat "$dir/out/log"

# 1 when a report file holds only leaks allocated by libcriterion itself.
criterion_only() {
    awk '
        /ERROR: AddressSanitizer|runtime error/ { other = 1 }
        /^(Direct|Indirect) leak of/ { blocks++; want = 1; next }
        want && /^ *#1 / { if ($0 !~ /libcriterion\.so/) other = 1; want = 0 }
        END { exit !(blocks > 0 && !other) }
    ' "$1"
}

bad=0
ignored=0
for f in "$dir"/asan* "$dir"/ubsan*; do
    [ -e "$f" ] || continue
    if criterion_only "$f"; then
        echo "note: ignored a leak report of Criterion's own allocations ($f):"
        grep -E "^(Direct|Indirect) leak of|#1 " "$f"
        ignored=1
        continue
    fi
    echo "==== sanitizer report ($f)"
    cat "$f"
    bad=1
done
if [ $bad = 1 ]; then
    echo "FAIL: $1 or a process it started wrote the sanitizer report(s) above"
    rc=1
elif [ $ignored = 1 ] && [ $rc = $SAN_STATUS ] &&
    grep -q "Synthesis: Tested: .* | Failing: 0 | Crashing: 0" "$dir/out/log"; then
    rc=0
fi
rm -rf "$dir"
exit $rc
