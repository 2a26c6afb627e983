#!/usr/bin/env bash
# run.sh: runs every test suite `make check` promises and prints one closing line,
# "N passed, N failed".  Each suite is a program that prints TAP ("ok N", "not ok N",
# a plan "1..N"); a suite that crashes, exits non-zero or prints fewer results than
# its plan counts as a failure.  Full output of every suite is kept in build/test-logs/.
#
# Suites: C unit tests (release, ASan+UBSan, CUDA emulation, and the real CUDA build when
# make check built it: its backend parity suite runs on a GPU and skips without one), bats
# tests of the programs (release and ASan+UBSan builds; tests/emu/*.bats, --device cuda end to
# end, on the CUDA emulation build), PyTorch/NumPy parity scripts in tests/ref, and the include
# order of ARCHITECTURE.md (tools/check-includes.py).
set -u
cd "$(dirname "$0")/.."
logs=build/test-logs
rm -rf "$logs"; mkdir -p "$logs"
passed=0; failed=0; broken=()
PY=/usr/bin/python3

# run_suite NAME CMD...: run a TAP producer, count its results.
run_suite() {
    local name=$1; shift
    local log="$logs/${name//\//_}.log"
    "$@" >"$log" 2>&1
    local rc=$?
    local ok notok plan
    ok=$(grep -cE '^ok ' "$log")
    notok=$(grep -cE '^not ok ' "$log")
    plan=$(grep -oE '^1\.\.[0-9]+' "$log" | tail -1 | cut -c4-)
    passed=$((passed + ok)); failed=$((failed + notok))
    local status=ok
    if [ "$notok" -gt 0 ]; then status=FAIL
    elif [ "$rc" -ne 0 ] || [ -z "$plan" ] || [ "$plan" -ne "$ok" ]; then
        status=BROKEN; failed=$((failed + 1))
    fi
    printf '%-48s %4d passed %4d failed  %s\n' "$name" "$ok" "$notok" "$status"
    if [ "$status" != ok ]; then
        broken+=("$name")
        grep -E '^not ok |^# ' "$log" | head -40 | sed 's/^/    /'
        [ "$status" = BROKEN ] && tail -5 "$log" | sed 's/^/    | /'
    fi
}

# The include order of ARCHITECTURE.md, and a scratch tree proving that the check catches a
# wrong include.
run_suite "layers/includes" $PY tools/check-includes.py
run_suite "layers/includes-self-test" $PY tools/check-includes.py --self-test

for flavour in release-cuda0 asan-cuda0 emu-cudaemu release-cuda1; do
    for t in build/$flavour/tests/unit/test_*; do
        [ -x "$t" ] || continue
        run_suite "unit/$flavour/$(basename "$t")" "$t"
    done
done

if ls tests/*.bats >/dev/null 2>&1; then
    run_suite "bats/release" env GT_BIN="$PWD/bin" bats --tap tests
    run_suite "bats/asan" env GT_BIN="$PWD/build/asan-cuda0/bin" \
        ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        bats --tap tests
fi
if [ -x build/emu-cudaemu/bin/gan-step ]; then
    run_suite "bats/emu --device cuda" env GT_BIN="$PWD/build/emu-cudaemu/bin" bats --tap tests/emu
fi

for t in tests/ref/test_*.py; do
    [ -f "$t" ] || continue
    run_suite "ref/$(basename "$t" .py)" env GT_BIN="$PWD/bin" $PY "$t"
done

if [ ${#broken[@]} -gt 0 ]; then
    echo "failing suites: ${broken[*]} (logs in $logs/)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
