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
#
# Cost: each suite's line shows its wall time and its CPU time (user+sys of everything it ran);
# build/test-logs/times.tsv keeps them, slowest (by CPU) first.  Suites are independent and run
# GT_TEST_JOBS at a time (default: the number of cores), the longest first; the lines appear as
# suites finish, the closing line comes last.  GT_TEST_ONLY=REGEX runs only the suites whose
# name matches (e.g. GT_TEST_ONLY='^bats/release/gan-step$' bash tests/run.sh).
set -u
cd "$(dirname "$0")/.."
logs=build/test-logs
rm -rf "$logs"; mkdir -p "$logs/.result"
PY=/usr/bin/python3
jobs=${GT_TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: GT_TEST_JOBS must be a positive integer, not '$jobs'"; exit 2; }
t_start=$EPOCHREALTIME
started=()

# cpu_seconds FILE: user+sys seconds of a shell's waited-for children, from the second line of
# the `times` written to FILE (run `times >FILE` in the shell itself: in a command substitution
# it would report a subshell's children).
cpu_seconds() {
    awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] }
                   printf "%.2f", s }' "$1"
}

# run_one NAME CMD...: run a TAP producer (in a subshell of its own), count its results, print
# its line, and leave "name ok notok status wall cpu" in $logs/.result for the totals.
run_one() {
    local name=$1; shift
    local log="$logs/${name//\//_}.log"
    local c0 w0 c1 w1
    times >"$log.times"; c0=$(cpu_seconds "$log.times"); w0=$EPOCHREALTIME
    "$@" >"$log" 2>&1
    local rc=$?
    w1=$EPOCHREALTIME; times >"$log.times"; c1=$(cpu_seconds "$log.times"); rm -f "$log.times"
    local wall cpu
    wall=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.1f", b - a }')
    cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.1f", b - a }')
    local ok notok plan
    ok=$(grep -cE '^ok ' "$log")
    notok=$(grep -cE '^not ok ' "$log")
    plan=$(grep -oE '^1\.\.[0-9]+' "$log" | tail -1 | cut -c4-)
    local status=ok
    if [ "$notok" -gt 0 ]; then status=FAIL
    elif [ "$rc" -ne 0 ] || [ -z "$plan" ] || [ "$plan" -ne "$ok" ]; then status=BROKEN
    fi
    {
        printf '%-44s %4d passed %4d failed %7ss wall %7ss cpu  %s\n' "$name" "$ok" "$notok" "$wall" "$cpu" "$status"
        if [ "$status" != ok ]; then
            grep -E '^not ok |^# ' "$log" | head -40 | sed 's/^/    /'
            [ "$status" = BROKEN ] && tail -5 "$log" | sed 's/^/    | /'
        fi
    } >"$log.line"
    cat "$log.line"; rm -f "$log.line"
    printf '%s\t%d\t%d\t%s\t%s\t%s\n' "$name" "$ok" "$notok" "$status" "$wall" "$cpu" \
        >"$logs/.result/${name//\//_}"
}

# run_suite NAME CMD...: start run_one in the background once fewer than $jobs are running
# (only the suites whose name matches the regular expression $GT_TEST_ONLY, when it is set).
run_suite() {
    [[ "$1" =~ ${GT_TEST_ONLY:-.} ]] || return 0
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    started+=("$1")
    run_one "$@" &
}

# The longest suites first, so that the short ones fill the other cores at the end.  Each bats
# file is a suite of its own (bats --timing: each test's line in the log says how long it took).
# A bats file whose tests do not run the programs of $GT_BIN (they check the Makefile, the CUDA
# build, a tool script) says so with a line "# run.sh: release build only" and is not run again
# on the sanitizer build, where it would test the same files a second time.
asan_env=(ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1)
for f in tests/*.bats; do
    [ -f "$f" ] || continue
    grep -q '^# run.sh: release build only' "$f" && continue
    b=${f##*/}
    run_suite "bats/asan/${b%.bats}" env GT_BIN="$PWD/build/asan-cuda0/bin" "${asan_env[@]}" \
        bats --tap --timing "$f"
done
if [ -x build/emu-cudaemu/bin/gan-step ]; then
    for f in tests/emu/*.bats; do
        [ -f "$f" ] || continue
        b=${f##*/}
        run_suite "bats/emu/${b%.bats}" env GT_BIN="$PWD/build/emu-cudaemu/bin" \
            bats --tap --timing "$f"
    done
fi
for f in tests/*.bats; do
    [ -f "$f" ] || continue
    b=${f##*/}
    run_suite "bats/release/${b%.bats}" env GT_BIN="$PWD/bin" bats --tap --timing "$f"
done

# then the reference scripts (torch's start-up and a training each), then the many short unit tests
for t in tests/ref/test_*.py; do
    [ -f "$t" ] || continue
    t=${t##*/}
    run_suite "ref/${t%.py}" env GT_BIN="$PWD/bin" $PY "tests/ref/$t"
done
# The convolutions' and training's parity once more with OpenBLAS choosing its own kernels: where
# the environment pins OPENBLAS_CORETYPE (ours sets Haswell), the suites above never take the CPU
# backend's other GEMM rule (on an AVX-512 CPU, OpenBLAS's AVX-512 kernels for the plain products
# beside ours for the convolutions: lib/cpu/README.md, "The GEMM").
for t in test_layers_conv test_train_torch; do
    run_suite "ref/$t:openblas-own" env -u OPENBLAS_CORETYPE GT_BIN="$PWD/bin" $PY "tests/ref/$t.py"
done

for flavour in asan-cuda0 emu-cudaemu release-cuda0 release-cuda1; do
    for t in build/$flavour/tests/unit/test_*; do
        [ -x "$t" ] || continue
        run_suite "unit/$flavour/${t##*/}" "$t"
    done
done

# The include order of ARCHITECTURE.md, and a scratch tree proving that the check catches a
# wrong include.
run_suite "layers/includes" $PY tools/check-includes.py
run_suite "layers/includes-self-test" $PY tools/check-includes.py --self-test
wait

passed=0; failed=0; broken=(); cpu_total=0
{ printf 'suite\tpassed\tfailed\tstatus\twall_s\tcpu_s\n'; cat "$logs"/.result/* | sort -t$'\t' -k6,6gr; } \
    >"$logs/times.tsv"
while IFS=$'\t' read -r name ok notok status wall cpu; do
    [ "$name" = suite ] && continue
    passed=$((passed + ok)); failed=$((failed + notok))
    [ "$status" = BROKEN ] && failed=$((failed + 1))
    [ "$status" != ok ] && broken+=("$name")
    cpu_total=$(awk -v a="$cpu_total" -v b="$cpu" 'BEGIN { printf "%.1f", a + b }')
done <"$logs/times.tsv"
# a suite whose runner died before it could leave its result
for name in "${started[@]}"; do
    [ -f "$logs/.result/${name//\//_}" ] && continue
    echo "$name: no result (its runner died)"; broken+=("$name"); failed=$((failed + 1))
done
rm -rf "$logs/.result"
wall_total=$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
echo "tests took ${wall_total}s wall, ${cpu_total}s cpu ($jobs at a time; per suite: $logs/times.tsv)"
if [ ${#broken[@]} -gt 0 ]; then
    echo "failing suites: ${broken[*]} (logs in $logs/)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
