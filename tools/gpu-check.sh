#!/usr/bin/env bash
# gpu-check.sh: validate the CUDA backend on this machine's GPU, once, and print a summary to
# paste into a bug report.
#
#   tools/gpu-check.sh [--out DIR] [--no-bench]
#
# Stages, each PASS, FAIL or SKIP (with why):
#   build       make CUDA=1 BIN=build/release-cuda1/bin all unit-tests
#   parity      build/release-cuda1/tests/unit/test_backend_parity: every backend operation and
#               training steps of every loss and optimizer, GPU against CPU; the worst
#               deviations go into the summary
#   memcheck, racecheck, initcheck
#               compute-sanitizer over the parity suite and over 2 training steps of every
#               preset (mlp, dcgan, wgan-gp, sngan, cmlp, cdcgan, csngan on 1x28x28, dcgan32 on 1x32x32; random
#               data made here)
#   bench       bench/bench_cuda.sh --device cuda (images/s beside the floors; --no-bench skips)
# Logs of every stage and the summary (summary.txt) go to DIR (default build/gpu-check).
#
# Exit status: 0 every stage ran and passed; 1 a stage failed; 77 no GPU (no nvidia-smi, or it
# lists none: NVIDIA_SMI=... names another): nothing could be validated, the summary says what
# was skipped. The CUDA backend has so far run only in the host emulation (make CUDA=emu), never
# on a GPU: this is the first thing to run on one.
set -u
cd "$(dirname "$0")/.."
out=build/gpu-check
bench=1
while [ $# -gt 0 ]; do
    case $1 in
    --out) out=$2; shift 2 ;;
    --no-bench) bench=0; shift ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
summary=$out/summary.txt
: > "$summary"
failed=0
B=build/release-cuda1
NVIDIA_SMI=${NVIDIA_SMI:-nvidia-smi}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
NVCC=$(command -v nvcc || echo "$CUDA_HOME/bin/nvcc")
SANITIZER=$(command -v compute-sanitizer || echo "$CUDA_HOME/bin/compute-sanitizer")

say() { echo "$*" | tee -a "$summary"; }
# stage NAME RESULT [DETAIL]
stage() {
    printf '%-10s %-4s %s\n' "$1" "$2" "${3:-}" | tee -a "$summary"
    [ "$2" = FAIL ] && failed=1
    return 0
}

say "gan-tools GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (modified)')"
say "host:    $(uname -srm)"
say "nvcc:    $([ -x "$NVCC" ] && "$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p' || echo 'not found')"
gpus=""
if command -v "$NVIDIA_SMI" >/dev/null 2>&1; then
    gpus=$("$NVIDIA_SMI" --query-gpu=index,name,driver_version,memory.total,pci.bus_id --format=csv,noheader 2>/dev/null)
fi
if [ -z "$gpus" ]; then
    say "GPU:     none ($NVIDIA_SMI not found or lists no GPU)"
else
    cuda_drv=$("$NVIDIA_SMI" 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -1)
    say "driver CUDA version: ${cuda_drv:-unknown}"
    while IFS= read -r g; do say "GPU:     $g"; done <<< "$gpus"
fi
say ""

if [ -z "$gpus" ]; then
    for s in build parity memcheck racecheck initcheck bench; do stage $s SKIP "no GPU"; done
    say ""
    say "result:  SKIP (exit 77): no GPU, nothing validated"
    exit 77
fi

# build
if [ ! -x "$NVCC" ]; then
    stage build FAIL "nvcc not found (install the CUDA toolkit, or set CUDA_HOME)"
elif make -j"$(nproc)" CUDA=1 BIN=$B/bin all unit-tests > "$out/build.log" 2>&1; then
    stage build PASS "$B"
else
    stage build FAIL "see $out/build.log"
fi

# parity
if [ ! -x $B/tests/unit/test_backend_parity ]; then
    stage parity SKIP "not built"
else
    $B/tests/unit/test_backend_parity > "$out/parity.log" 2>&1
    rc=$?
    nok=$(grep -c '^ok ' "$out/parity.log"); nbad=$(grep -c '^not ok ' "$out/parity.log")
    if grep -q '^1\.\.0 # SKIP' "$out/parity.log"; then
        stage parity FAIL "the suite found no GPU: $(grep -m1 SKIP "$out/parity.log")"
    elif [ $rc -eq 0 ] && [ "$nbad" -eq 0 ]; then
        stage parity PASS "$nok cases"
    else
        stage parity FAIL "$nbad of $((nok + nbad)) cases failed, exit $rc (see $out/parity.log)"
    fi
    say "  the suite's device: $(sed -n 's/^# cuda backend: //p' "$out/parity.log" | head -1)"
    say "  worst deviations (the suite's own lines, largest first):"
    grep -E '^# .*worst' "$out/parity.log" |
        awk '{w = 0; for (i = 1; i <= NF; i++) if ($i == "difference" || $i == "worst") { v = $(i + 1) + 0; if (v > w) w = v } print w "\t" $0}' |
        sort -g -r | head -8 | cut -f2- | sed 's/^# /    /' | tee -a "$summary"
    grep '^not ok ' "$out/parity.log" | sed 's/^/    /' | tee -a "$summary"
fi

# random uint8 data as .npy: npy N C H W FILE (and labels 0..9: npy_labels N FILE)
npy() {
    local n=$1 c=$2 h=$3 w=$4 f=$5
    local hdr="{'descr': '|u1', 'fortran_order': False, 'shape': ($n, $c, $h, $w), }"
    while [ $(((10 + ${#hdr} + 1) % 64)) -ne 0 ]; do hdr="$hdr "; done
    { printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $(((${#hdr} + 1) % 256)))\\x$(printf %02x $(((${#hdr} + 1) / 256)))"
      printf '%s\n' "$hdr"; head -c $((n * c * h * w)) /dev/urandom; } > "$f"
}
npy_labels() {
    local n=$1 f=$2 i
    local hdr="{'descr': '|u1', 'fortran_order': False, 'shape': ($n,), }"
    while [ $(((10 + ${#hdr} + 1) % 64)) -ne 0 ]; do hdr="$hdr "; done
    { printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $(((${#hdr} + 1) % 256)))\\x$(printf %02x $(((${#hdr} + 1) / 256)))"
      printf '%s\n' "$hdr"; for ((i = 0; i < n; i++)); do printf "\\x0$((i % 10))"; done; } > "$f"
}

# training steps of every preset under a tool: steps TOOL... (returns non-zero on the first failure)
steps() {
    local d=$out/data p data extra
    mkdir -p "$d"
    [ -f "$d/d.npy" ] || { npy 64 1 28 28 "$d/d.npy"; npy 64 1 32 32 "$d/d32.npy"; npy_labels 64 "$d/l.npy"; }
    for p in mlp dcgan wgan-gp sngan cmlp cdcgan csngan dcgan32; do
        data=$d/d.npy; extra=""
        [ $p = dcgan32 ] && data=$d/d32.npy
        case $p in c*) extra="--labels $d/l.npy" ;; esac
        echo "== $p"
        $B/bin/gan-init --arch $p --like "$data" $extra --seed 3 --batch 16 -o "$d/$p.st" || return 1
        "$@" $B/bin/gan-step -q --device cuda --data "$data" $extra --steps 2 -i "$d/$p.st" -o "$d/$p.2.st" || return 1
    done
}

# compute-sanitizer's tools
for tool in memcheck racecheck initcheck; do
    if [ ! -x $B/tests/unit/test_backend_parity ]; then stage $tool SKIP "not built"; continue; fi
    if [ ! -x "$SANITIZER" ]; then stage $tool SKIP "compute-sanitizer not found"; continue; fi
    log=$out/$tool.log
    if "$SANITIZER" --tool $tool --error-exitcode 99 $B/tests/unit/test_backend_parity > "$log" 2>&1 &&
        steps "$SANITIZER" --tool $tool --error-exitcode 99 >> "$log" 2>&1; then
        stage $tool PASS "parity suite and 2 steps of every preset"
    else
        stage $tool FAIL "$(grep -m1 -E '^========= (Invalid|Uninitialized|Race|Error|ERROR)' "$log" || echo "see $log")"
    fi
done

# bench
if [ $bench = 0 ]; then
    stage bench SKIP "--no-bench"
elif bash bench/bench_cuda.sh --device cuda > "$out/bench.log" 2>&1; then
    stage bench PASS "see $out/bench.log"
else
    stage bench FAIL "see $out/bench.log"
fi

say ""
if [ $failed = 0 ]; then say "result:  PASS (exit 0)"; exit 0; fi
say "result:  FAIL (exit 1): logs in $out"
exit 1
