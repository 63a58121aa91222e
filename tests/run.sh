#!/bin/sh
# run.sh BUILD_DIR - everything `make test` proves: cmocka units, integration scripts
# with real clients against qshim-mock, and valgrind over runs through the shim.
# Each part prints its own summary; the last line adds them up ("N passed, N failed").
B=${1:-build}
export QS_BUILD=$(cd "$B" && pwd)
export QS_ROOT=$(cd "$(dirname "$0")/.." && pwd)
passed=0
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

count() { # adds the "N passed, N failed" of the last matching line of $out
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    p=$(echo "$line" | sed -E 's/(^|.*[^0-9])([0-9]+) passed.*/\2/')
    f=$(echo "$line" | sed -E 's/.*passed, ([0-9]+) failed.*/\1/')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
}

echo "== unit tests"
for t in "$QS_BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    t0=$(date +%s)
    "$t" >"$out" 2>&1
    rc=$?
    cat "$out"
    echo "($(basename "$t"): $(($(date +%s) - t0)) s)"
    p=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$out" | sed -E 's/.*\] ([0-9]+) test.*/\1/' | awk '{s+=$1} END {print s+0}')
    f=$(grep -E '^\[  FAILED  \] [0-9]+ test' "$out" | sed -E 's/.*\] ([0-9]+) test.*/\1/' | awk '{s+=$1} END {print s+0}')
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    passed=$((passed + p))
    failed=$((failed + f))
done

for s in "$QS_ROOT"/tests/integration/test_*.sh; do
    echo "== $(basename "$s")"
    t0=$(date +%s)
    sh "$s" >"$out" 2>&1
    rc=$?
    cat "$out"
    echo "($(basename "$s" .sh): $(($(date +%s) - t0)) s)"
    if grep -qE '[0-9]+ passed, [0-9]+ failed' "$out"; then
        count
        [ "$rc" -ne 0 ] && ! grep -qE ' [1-9][0-9]* failed' "$out" && failed=$((failed + 1))
    else
        echo "$(basename "$s"): no summary (exit $rc)"
        failed=$((failed + 1))
    fi
done

echo "== total"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
