#!/usr/bin/env bash
# bench_mpi.sh: data-parallel gan-step on this machine: seconds per training step of the mlp and
# dcgan presets (batch 64, 1x28x28) for P = 1 process (2 threads) and P = 2 processes under
# mpirun (1 thread each), and the bytes each step all-reduces (float32 gradients of D per critic
# update and of G, plus a few float64 figures and BatchNorm sums). A step's time is the
# difference of a long and a 2-step run over their difference in steps (start-up and loading
# cancel out; long enough that the launch's jitter, some 50 ms, is a few percent of the
# difference: 202 steps for mlp, 22 for dcgan); CPU time (user + sys of every process) is
# printed beside wall time, steadier on a shared machine. P = 1
# and P = 2 alternate, REPEAT rounds (default 3); P = 2 runs three times a round, its optimizer
# sharded (gan-step's default, "2s": on one machine the slices are read from memory the processes
# share), not (--shard-optimizer off, "2"), and sharded with messages instead (GT_DIST_SHARED=0,
# "2m").
# Needs a gan-step built with MPI and mpirun; bench/bench_mpi.md turns the figures into
# expected 8-GPU step times. Last, what a step sums across processes, as the backends count it.
set -eu
command -v mpirun >/dev/null || { echo "bench_mpi: mpirun not found (apt-get install openmpi-bin)"; exit 0; }
ldd "$(command -v gan-step)" | grep -q libmpi || { echo "bench_mpi: gan-step built without MPI (make MPI=1)"; exit 0; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_btl=self,vader OMPI_MCA_plm_rsh_agent=false
T=${BENCH_TMP:-$(mktemp -d)}
PY=/usr/bin/python3
$PY -c 'import numpy as np; np.save("'"$T"'/d.npy", np.random.default_rng(0).integers(0, 256, (2048, 1, 28, 28)).astype(np.uint8))'

# run_time P STEPS MODEL [OPTION...]: "wall cpu" seconds of one run (cpu: user + sys of the run's processes,
# which mpirun waits for, from bash's `times` before and after, in this subshell)
run_time() {
    local p=$1 steps=$2 model=$3
    shift 3
    (
        t0=$(date +%s.%N)
        if [ "$p" -eq 1 ]; then
            gan-step -q --threads 2 --data "$T/d.npy" --steps "$steps" -i "$model" -o "$T/out.st"
        else
            mpirun -np "$p" gan-step -q --threads 1 --data "$T/d.npy" --steps "$steps" -i "$model" -o "$T/out.st" "$@"
        fi
        t1=$(date +%s.%N)
        # the second line of `times`: children's user and system time, e.g. "0m1.234s 0m0.100s"
        times > "$T/times" # (a builtin in a pipeline would run in a fresh subshell: no children)
        sed -n 2p "$T/times" | tr 'ms' '  ' | awk -v t0=$t0 -v t1=$t1 '{printf "%.3f %.3f\n", t1 - t0, $1 * 60 + $2 + $3 * 60 + $4}'
    )
}

printf '%-6s %2s %12s %12s %14s %12s\n' preset P "wall s/step" "cpu s/step" "grad MB/step" "params"
for preset in mlp dcgan; do
    gan-init --arch $preset --like "$T/d.npy" --batch 64 --seed 1 -o "$T/m.st"
    # parameters of G and D: the bytes a step all-reduces (D once per critic update; n_critic = 1)
    params=$($PY -c '
import json, struct, sys
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
import math
cnt = {"G": 0, "D": 0}
for k, v in h.items():
    if k[:2] in ("G.", "D.") and "running" not in k and "num_batches" not in k:
        cnt[k[0]] += math.prod(v["shape"])
print(cnt["G"], cnt["D"])' "$T/m.st")
    read -r nG nD <<< "$params"
    # P = 1 and P = 2 interleaved, REPEAT times (the machine is shared: compare within a round)
    for rep in $(seq "${REPEAT:-3}"); do
        for p in 1 2 2s 2m; do
            long=$([ $preset = mlp ] && echo 202 || echo 22)
            opt=()
            [ $p = 2 ] && opt=(--shard-optimizer off)
            # 2m: sharded, the slices passed as messages rather than read from shared memory
            shared=$([ $p = 2m ] && echo 0 || echo 1)
            read -r w2 c2 <<< "$(GT_DIST_SHARED=$shared run_time ${p:0:1} 2 "$T/m.st" "${opt[@]}")"
            read -r w12 c12 <<< "$(GT_DIST_SHARED=$shared run_time ${p:0:1} $long "$T/m.st" "${opt[@]}")"
            awk -v pr=$preset -v p=$p -v w2=$w2 -v w12=$w12 -v c2=$c2 -v c12=$c12 -v g=$nG -v d=$nD -v k=$((long - 2)) \
                'BEGIN {printf "%-6s %2s %12.4f %12.4f %14.2f %6.2fM+%.2fM\n", pr, p, (w12 - w2) / k, (c12 - c2) / k, 4 * (g + d) / 1e6, g / 1e6, d / 1e6}'
        done
    done
done

# What a data-parallel step sums across processes, counted by the backends themselves (the calls
# of sum_procs and their bytes: gradients, loss figures, BatchNorm statistics; the stop decision,
# two ints on the host, is not among them) from one step of mpirun -np 2 bench/step_cost: the CPU
# backend (MPI_Allreduce) and the CUDA backend on its host emulation (ncclAllReduce on a GPU),
# batch 64. Launches per step on the CUDA backend include the all-reduces and the synced
# BatchNorm's finishing kernels (compare bench/bench_cuda.sh's one-process counts).
printf '\n%-6s %-5s %9s %12s %9s\n' preset dev "sums/step" "MB/step" launches
for preset in mlp dcgan; do
    for dev in cpu cuda; do
        if [ $dev = cpu ]; then
            make -s unit-tests >/dev/null && sc=build/release-cuda0/bench/step_cost
        else
            make -s BUILD=emu CUDA=emu unit-tests >/dev/null && sc=build/emu-cudaemu/bench/step_cost
        fi
        line=$(GT_EMU_PROTECT=0 GT_EMU_DEVICES=2 mpirun -np 2 $sc --device $dev --preset $preset --shape 1x28x28 --batch 64 \
            --warmup 1 --steps 1 2>/dev/null) || { echo "$preset $dev: step_cost failed"; continue; }
        read -r _ _ _ launches _ _ _ _ sums mb _ <<< "$line"
        printf '%-6s %-5s %9.0f %12.3f %9s\n' $preset $dev "$sums" "$mb" "$([ $dev = cuda ] && echo "$launches" || echo -)"
    done
done
