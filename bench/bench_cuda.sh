#!/usr/bin/env bash
# bench_cuda.sh: what a training step costs on a GPU, per preset at batch 64, 256 and 1024.
#
#   bench/bench_cuda.sh                 counts from the CUDA host emulation (no GPU needed)
#   bench/bench_cuda.sh --device cuda   also measure images/s on the GPU (a make CUDA=1 build)
#
# For each preset and batch: launches per step (kernels; cuBLAS calls,
# device copies and memsets count as one each) when the step is launched operation by operation
# ("launches", gan-step --cuda-graph off) and when it is recorded as one CUDA graph ("graph": the
# graph's launch plus what runs outside it; gan-step's default, kernels/README.md), the GEMM
# FLOPs and the bytes the operations must at least read and write (bench/step_cost.c reads the
# CUDA backend's counters; they do not depend on the device, so the emulation counts them), and
# the floor they put on a step on an H100 SXM: about 60 TFLOP/s float32 without tensor cores,
# about 490 TFLOP/s TF32 dense with them (gan-step --tf32), about 3 TB/s of memory bandwidth.
# floor = max(FLOPs / compute rate, bytes / bandwidth); img/s ceiling = B * n_critic / floor.
# "launch floor" puts 2 us on each launch (a typical launch-to-launch time of small kernels
# queued back to back; an assumption, not a measurement): where it exceeds the floor, the step
# is bound by launches, not by arithmetic or memory (without the graph: the host launches each
# operation; with it, once per step, and the GPU runs the graph's nodes back to back).
# "depth" is the step's serial depth: over its launches, the sum of the longest chain of dependent
# additions one thread does (reductions and class-conditional sums; backend_counters_t), a floor
# in add latencies however many threads the GPU has; "depth_max" the longest of one launch.
# With --device cuda the same steps are timed on the GPU (3 warm-up steps, then 20), in FP32
# and in TF32 with the graph, and in FP32 without it, and printed beside the floors.
# The last rows ("fid") cost gan-fid's feature extraction the same way: one step is the
# Inception features of a batch of 3x32x32 images resized to 299 (random weights written by
# bench/fid_peer.py, which needs python3-torch; the arithmetic is the same as the real file's).
set -eu
cd "$(dirname "$0")/.."
device=emu
if [ "${1:-}" = "--device" ] && [ "${2:-}" = "cuda" ]; then device=cuda; fi

make -s BUILD=emu CUDA=emu unit-tests >/dev/null
emu=build/emu-cudaemu/bench/step_cost
if [ $device = cuda ]; then
    make -s CUDA=1 BIN=build/release-cuda1/bin unit-tests >/dev/null
    gpu=build/release-cuda1/bench/step_cost
fi

printf '# load: %s\n' "$(uptime | sed 's/.*load average/load average/')"
printf '%-8s %5s %8s %6s %9s %9s %9s %9s %9s %11s %11s %8s %9s' preset batch launches graph GFLOP MB \
    floor_fp32 floor_tf32 launch_fl img/s_fp32 img/s_tf32 depth depth_max
[ $device = cuda ] && printf ' %10s %10s %10s %10s %12s' ms_fp32 img/s ms_tf32 img/s ms_fp32_nogr
printf '\n'
# row NAME BATCH STEP_COST_ARGS...: one row of the table, from the emulation's counters (and the
# GPU's timings with --device cuda)
row() {
    local name=$1 b=$2 line r32 rtf rng; shift 2
    if ! line=$(GT_EMU_PROTECT=0 $emu "$@" --batch $b --warmup 1 --steps 1 2>&1); then
        printf '%-8s %5s  (%s)\n' "$name" $b "$(echo "$line" | tail -1)"
        return
    fi
    read -r _ _ ncrit graph gflop mb _ _ _ _ depth dmax launches <<<"$line"
    awk -v p="$name" -v b="$b" -v k="$ncrit" -v l="$launches" -v g="$graph" -v f="$gflop" -v m="$mb" -v d="$depth" -v dm="$dmax" 'BEGIN {
        t32 = f * 1e9 / 60e12; ttf = f * 1e9 / 490e12; tm = m * 1e6 / 3e12; tl = l * 2e-6
        f32 = t32 > tm ? t32 : tm; ftf = ttf > tm ? ttf : tm
        printf "%-8s %5d %8.0f %6.0f %9.2f %9.1f %7.1fus %7.1fus %7.0fus %11.0f %11.0f %8.0f %9.0f", p, b, l, g, f, m,
               f32 * 1e6, ftf * 1e6, tl * 1e6, b * k / f32, b * k / ftf, d, dm }'
    if [ $device = cuda ]; then
        r32=$($gpu --device cuda "$@" --batch $b --warmup 3 --steps 20)
        rtf=$($gpu --device cuda "$@" --batch $b --warmup 3 --steps 20 --tf32)
        rng=$($gpu --device cuda "$@" --batch $b --warmup 3 --steps 20 --cuda-graph off)
        printf ' %10s %10s %10s %10s %12s' "$(echo "$r32" | cut -f7)" "$(echo "$r32" | cut -f8)" \
            "$(echo "$rtf" | cut -f7)" "$(echo "$rtf" | cut -f8)" "$(echo "$rng" | cut -f7)"
    fi
    printf '\n'
}

for ps in mlp:1x28x28 dcgan:1x28x28 dcgan32:3x32x32 wgan-gp:1x28x28 sngan:1x28x28 cmlp:1x28x28 cdcgan:1x28x28 \
          csngan:1x28x28; do
    for b in 64 256 1024; do row "${ps%%:*}" $b --preset "${ps%%:*}" --shape "${ps#*:}"; done
done

weights=$(mktemp --suffix=.safetensors)
trap 'rm -f "$weights"' EXIT
if /usr/bin/python3 bench/fid_peer.py weights "$weights" 2>/dev/null; then
    for b in 16 32; do row fid $b --fid "$weights"; done
else
    echo "fid: skipped (bench/fid_peer.py could not write random Inception weights: python3-torch?)"
fi
