# mpi_helper.bash: what tests/mpi.bats (the CPU backend) and tests/emu/mpi.bats (the CUDA
# backend, on the host emulation, where NCCL's all-reduce is MPI's) share: Open MPI's settings
# for running as root in a container with ranks oversubscribed on 2 cores, the fixtures, and the
# comparison of P processes with one. Load after helper.bash. DEV (default cpu) is the
# --device every gan-step here runs on.

DEV=${DEV:-cpu}

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_btl=self,vader OMPI_MCA_plm_rsh_agent=false
# ranks that wait for a message yield the core (Open MPI does so by itself only when the ranks
# outnumber the cores): tests/run.sh runs another suite beside this one, which spinning ranks
# would slow down, and their spinning would count as this suite's CPU time
export OMPI_MCA_mpi_yield_when_idle=1

COMPARE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tools/st-compare.py"
REF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/ref"

gan_step_has_mpi() { ldd "$(command -v gan-step)" 2>/dev/null | grep -q libmpi; }
need_mpi() {
    command -v mpirun >/dev/null || skip "mpirun not installed (apt-get install openmpi-bin)"
    gan_step_has_mpi || skip "this gan-step is built without MPI"
}

# a test that fails while its mpirun runs in the background must not leave it running
teardown() {
    [ -f "$T/launcher" ] && kill "$(cat "$T/launcher")" 2>/dev/null
    rm -rf "$T"
}

# rank_pid LAUNCHER R: the pid of rank R among mpirun's children
rank_pid() {
    local p
    for p in $(pgrep -P "$1"); do
        tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo $p; return; }
    done
}

# data N FILE: N random 1x28x28 uint8 images
data() {
    memo "$2" "data-$1.npy" $PY -c 'import numpy as np, sys; np.save(sys.argv[2], np.random.default_rng(3).integers(0, 256, (int(sys.argv[1]), 1, 28, 28)).astype(np.uint8))' "$1"
}

# init_model NAME BATCH FILE: the mlp or dcgan preset for 1x28x28 images, or its twin with tanh
# in place of every LeakyReLU (NAME-tanh: the same layers, BatchNorm and dropout included, with
# a smooth activation); wgan-gp-tanh: the wgan-gp preset's twin, with a LayerNorm in the critic
# (the gradient penalty's passes through it; 5 critic updates a step); r1-tanh: dcgan-tanh
# with R1 and R2 every 2 D updates; mlp-tanh-tricks: mlp-tanh with instance noise, label
# flipping, two-sided smoothing and learning-rate schedules (lib/gan/tricks.h)
init_model() {
    local name=$1 batch=$2 out=$3
    case $name in
    mlp|dcgan) gan-init --arch "$name" --like "$T/d.npy" --batch "$batch" --seed 4 -o "$out" ;;
    mlp-tanh) gan-init --like "$T/d.npy" --batch "$batch" --seed 4 -o "$out" \
        --G "linear 256; tanh; linear 512; bn; tanh; linear 1024; bn; tanh; linear 784; tanh; reshape 1x28x28" \
        --D "flatten; linear 1024; tanh; linear 512; tanh; linear 256; tanh; linear 1" ;;
    mlp-tanh-aug) gan-init --like "$T/d.npy" --batch "$batch" --seed 4 -o "$out" \
        --augment color,translation,cutout \
        --G "linear 256; tanh; linear 512; bn; tanh; linear 1024; bn; tanh; linear 784; tanh; reshape 1x28x28" \
        --D "flatten; linear 1024; tanh; linear 512; tanh; linear 256; tanh; linear 1" ;;
    mlp-tanh-tricks) gan-init --like "$T/d.npy" --batch "$batch" --seed 4 -o "$out" \
        --augment translation --instance-noise 0.2 --instance-noise-steps 6 --label-flip 0.2 \
        --label-smooth 0.1 --label-smooth-fake 0.05 --lr-schedule cosine:8 --lr-schedule-d step:3:0.5 \
        --G "linear 256; tanh; linear 512; bn; tanh; linear 1024; bn; tanh; linear 784; tanh; reshape 1x28x28" \
        --D "flatten; linear 1024; tanh; linear 512; tanh; linear 256; tanh; linear 1" ;;
    dcgan-tanh) gan-init --like "$T/d.npy" --batch "$batch" --seed 4 --init dcgan -o "$out" \
        --G "linear 12544 nobias; bn; tanh; reshape 256x7x7; convT 128 k4 s2 p1 nobias; bn; tanh; convT 64 k4 s2 p1 nobias; bn; tanh; conv 1 k7 p3; tanh" \
        --D "conv 64 k4 s2 p1; tanh; dropout 0.3; conv 128 k4 s2 p1; tanh; dropout 0.3; flatten; linear 1" ;;
    wgan-gp-tanh) gan-init --like "$T/d.npy" --batch "$batch" --seed 4 --init dcgan --loss wgan-gp -o "$out" \
        --G "linear 12544 nobias; bn; tanh; reshape 256x7x7; convT 128 k4 s2 p1 nobias; bn; tanh; convT 64 k4 s2 p1 nobias; bn; tanh; conv 1 k7 p3; tanh" \
        --D "conv 64 k4 s2 p1; tanh; conv 128 k4 s2 p1; ln; tanh; flatten; linear 1" ;;
    # r1-tanh at seed 2: the penalties' second-order passes amplify the processes' other summation
    # order more on some trajectories than others. Measured (np 2 against one process, 4 steps,
    # worst tensor, relative L2), with glibc's tanhf / act_math.h's own tanh: seed 1 2.1e-6 / 2.6e-6,
    # 2 2.9e-6 / 1.8e-6, 3 8.6e-6 / 7.2e-6, 4 5.5e-6 / 1.8e-5, 5 2.6e-5 / 5.7e-5, 6 5.3e-6 / 3.9e-6.
    r1-tanh) gan-init --like "$T/d.npy" --batch "$batch" --seed 2 --init dcgan --r1 5 --r2 1 --reg-every 2 -o "$out" \
        --G "linear 12544 nobias; bn; tanh; reshape 256x7x7; convT 128 k4 s2 p1 nobias; bn; tanh; convT 64 k4 s2 p1 nobias; bn; tanh; conv 1 k7 p3; tanh" \
        --D "conv 64 k4 s2 p1; tanh; dropout 0.3; conv 128 k4 s2 p1; tanh; dropout 0.3; flatten; linear 1" ;;
    esac
}

# same_as_one_process NAME BATCH STEPS "P..." [OPTION...]: one process trains model NAME STEPS
# steps (Adam, lr 2e-4); mpirun -np 1 gives its bytes; mpirun -np P (each P) gives its weights
# within 1e-5: every tensor (weights, Adam's moments, BatchNorm statistics), relative in the L2
# norm, save where the OPTIONs of tests/tools/st-compare.py (--loose, --tol, --skip) say.
# The tanh twins are compared over 20 steps at 2 and 4 processes: they hold every layer kind of
# the presets (BatchNorm over the global batch, dropout keyed by global sample index), so they
# show that P processes compute the one-process function. The LeakyReLU presets are compared
# over one step only: P processes sum in another order, which changes last bits, and where a
# LeakyReLU input lies within rounding of 0 its derivative (1 or 0.2) is decided by that
# rounding; Adam and the GAN's dynamics then amplify such a flip (the mlp preset at P = 2:
# 1e-3 after 8 steps, 1e-2 after 10).
same_as_one_process() {
    local name=$1 batch=$2 steps=$3 ranks=$4; shift 4
    local opts=("$@") np
    data 128 "$T/d.npy"
    init_model "$name" "$batch" "$T/m0.st"
    gan-step -q --device $DEV --threads 1 --data "$T/d.npy" --steps $steps -i "$T/m0.st" -o "$T/one.st"
    run mpirun -np 1 gan-step -q --device $DEV --data "$T/d.npy" --steps $steps -i "$T/m0.st" -o "$T/p1.st"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    cmp "$T/p1.st" "$T/one.st"
    for np in $ranks; do
        run mpirun -np $np gan-step -q --device $DEV --data "$T/d.npy" --steps $steps -i "$T/m0.st" -o "$T/p.st"
        [ "$status" -eq 0 ] || { echo "np $np: $output"; return 1; }
        run $PY "$COMPARE" --norm l2 --rtol 1e-5 "${opts[@]}" "$T/p.st" "$T/one.st"
        echo "$name ($DEV) np $np, $steps steps: ${lines[-1]}"
        [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    done
    # a negative control: one step more is far from it
    gan-step -q --device $DEV --threads 1 --data "$T/d.npy" --steps 1 -i "$T/one.st" -o "$T/more.st"
    run $PY "$COMPARE" --norm l2 --rtol 1e-5 "${opts[@]}" "$T/more.st" "$T/one.st"
    [ "$status" -eq 1 ] && [[ "$output" == *"FAIL "*"relative error"* ]]
}

# The biases of layers that feed a BatchNorm (the mlp preset's linear layers) have exact
# gradient zero, so that they move by rounding noise (which Adam scales to steps of lr) in any
# run, and the running means that track them: 1e-3.
MLP_LOOSE="--loose G.2.bias --loose G.5.bias --loose G.3.running_mean --loose G.6.running_mean"

# rank0_alone_writes NAME: 4 steps of model NAME at batch 16 by mpirun -np 2, logging and
# snapshotting every 2: only rank 0 writes (the snapshots and the checkpoint, no temporaries,
# nothing of rank 1's), and the log's losses, D outputs and gradient norms (the global batch's)
# are one process's to 1e-4.
rank0_alone_writes() {
    data 64 "$T/d.npy"
    init_model "$1" 16 "$T/m0.st"
    gan-step -q --device $DEV --threads 1 --data "$T/d.npy" --steps 4 --log "$T/one.tsv" --log-every 2 \
        -i "$T/m0.st" -o "$T/one.st"
    mkdir "$T/out"
    cd "$T/out"
    mpirun -np 2 gan-step -q --device $DEV --data "$T/d.npy" --steps 4 --log "$T/two.tsv" --log-every 2 \
        --snapshot-every 2 --snapshot-dir snaps -i "$T/m0.st" -o two.st
    [ "$(ls snaps)" = "$(printf 'step-000002.st\nstep-000004.st')" ]
    [ "$(ls)" = "$(printf 'snaps\ntwo.st')" ]
    [ "$(wc -l < "$T/two.tsv")" -eq 3 ]
    $PY -c '
import sys, numpy as np
a, b = (np.loadtxt(f, skiprows=1)[:, 2:9] for f in sys.argv[1:])
assert np.allclose(a, b, rtol=1e-4, atol=1e-6), (a, b)' "$T/two.tsv" "$T/one.tsv"
}

# failing_rank_stops_all: rank 1 of 2 is given a data file that does not exist; every rank
# stops at once with rank 1's error, and no checkpoint is written.
failing_rank_stops_all() {
    data 64 "$T/d.npy"
    gan-init --arch mlp --like "$T/d.npy" --batch 16 --seed 4 -o "$T/m0.st"
    printf '#!/bin/sh\n[ "$OMPI_COMM_WORLD_RANK" = 1 ] && exec gan-step --data %s/missing.npy "$@"\nexec gan-step --data %s/d.npy "$@"\n' "$T" "$T" > "$T/wrap"
    chmod +x "$T/wrap"
    run timeout 60 mpirun -np 2 "$T/wrap" -q --device $DEV --steps 50 -i "$T/m0.st" -o "$T/x.st"
    [ "$status" -ne 0 ] && [ "$status" -ne 124 ]
    [[ "$output" == *"gan-step: rank 1: "*"missing.npy"* ]]
    [ ! -e "$T/x.st" ]
}

# buckets_and_local_bn: a small tanh MLP with two BatchNorms in G (their linears without bias,
# whose gradient would be rounding noise), batch 8 of 1x8x8, 2 steps at P = 2 with --bn-sync
# local: the gradients summed in buckets of every layer (--bucket-mb 1e-5) give the bytes of one
# sum after the backward pass (--bucket-mb 0); the setting is stored (1 step + 1 resumed are 2
# in one go); and the weights equal tests/ref/test_train_torch.py's reference of two processes
# with local BatchNorm (torch float64, 1e-4), and are far from its one-process (synced) training.
buckets_and_local_bn() {
    $PY -c 'import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(5).integers(0, 256, (32, 1, 8, 8)).astype(np.uint8))' "$T/d.npy"
    gan-init --like "$T/d.npy" --batch 8 --z 6 --seed 11 -o "$T/m0.st" \
        --G "linear 16; tanh; linear 32 nobias; bn; tanh; linear 32 nobias; bn; tanh; linear 64; tanh; reshape 1x8x8" \
        --D "flatten; linear 32; tanh; linear 16; tanh; linear 1"
    local run2=(mpirun -np 2 gan-step -q --device $DEV --threads 1 --data "$T/d.npy")
    "${run2[@]}" --steps 2 --bn-sync local --bucket-mb 0 -i "$T/m0.st" -o "$T/local.st"
    "${run2[@]}" --steps 2 --bn-sync local --bucket-mb 1e-5 -i "$T/m0.st" -o "$T/b1.st"
    cmp "$T/local.st" "$T/b1.st"
    "${run2[@]}" --steps 1 --bn-sync local -i "$T/m0.st" -o "$T/l1.st"
    "${run2[@]}" --steps 1 -i "$T/l1.st" -o "$T/l2.st"
    cmp "$T/local.st" "$T/l2.st"
    run gan-step --data "$T/d.npy" --steps 1 --bn-sync global -i "$T/m0.st" -o "$T/x.st"
    [ "$status" -eq 2 ] && [[ "$output" == *"--bn-sync: 'global': give synced"* ]]
    $PY - "$REF" "$T/m0.st" "$T/d.npy" "$T/local.st" <<'PY'
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
import test_train_torch as t
from tap import rel_err
m0, data, local = sys.argv[2:]
meta, ours = t.read_st(local)
assert int(meta["bn_local"]) == 1, meta.get("bn_local")
def worst(ref):
    return max(rel_err(np.asarray(ours[k], np.float64).reshape(-1), np.asarray(v, np.float64).reshape(-1))
               for k, v in ref.items())
near, far = worst(t.reference(m0, np.load(data), 2, procs=2)), worst(t.reference(m0, np.load(data), 2))
print(f"--bn-sync local at P = 2 against torch's two processes: {near:.2g}; against one process: {far:.2g}")
assert near <= 1e-4 and far > 1e-3, (near, far)
PY
}

# sharded_equals_whole: the sharded optimizer (lib/gan/ddp.h; gan-step --shard-optimizer) at
# P = 2 against every rank stepping the whole vectors: mlp-tanh at batch 16 (D's 1.5M weights
# are 23 parts of 65536, 11 of them rank 0's; G's 1.6M), its gradients summed in buckets of
# 0.5 MB that straddle the slices, gives the same bytes and the same log (losses, the gradient
# norms from the gathered parts: as printed on the CPU, to 1e-6 on the CUDA backend, whose
# unsharded norm is one reduction over the vector), and its snapshot at step 1 resumes to the same bytes (the
# optimizer state gathered for the snapshot: a state left to each slice's owner would fail);
# wgan-gp-tanh (5 critic updates, weight clipping, EMA) for one step, the same bytes.
sharded_equals_whole() {
    data 64 "$T/d.npy"
    init_model mlp-tanh 16 "$T/m0.st"
    local run2=(mpirun -np 2 gan-step -q --device $DEV --data "$T/d.npy" --bucket-mb 0.5 --log-every 1)
    "${run2[@]}" --steps 2 --shard-optimizer off --log "$T/off.tsv" -i "$T/m0.st" -o "$T/off.st"
    "${run2[@]}" --steps 2 --log "$T/on.tsv" --snapshot-every 1 --snapshot-dir "$T/snaps" -i "$T/m0.st" -o "$T/on.st"
    cmp "$T/on.st" "$T/off.st"
    if [ $DEV = cpu ]; then
        diff <(cut -f1-9 "$T/on.tsv") <(cut -f1-9 "$T/off.tsv")
    else # the CUDA backend's parts are summed in another order than one reduction of the vector
        $PY -c '
import sys, numpy as np
a, b = (np.loadtxt(f, skiprows=1)[:, :9] for f in sys.argv[1:])
assert a.shape == b.shape and np.allclose(a, b, rtol=1e-6, atol=0), (a, b)' "$T/on.tsv" "$T/off.tsv"
    fi
    "${run2[@]}" --steps 1 -i "$T/snaps/step-000001.st" -o "$T/resumed.st"
    cmp "$T/resumed.st" "$T/on.st"
    init_model wgan-gp-tanh 16 "$T/w0.st"
    "${run2[@]}" --steps 1 --clip 0.05 --ema 0.9 --shard-optimizer off -i "$T/w0.st" -o "$T/woff.st" 2>/dev/null
    "${run2[@]}" --steps 1 --clip 0.05 --ema 0.9 -i "$T/w0.st" -o "$T/won.st" 2>/dev/null
    cmp "$T/won.st" "$T/woff.st"
    run gan-step -q --device $DEV --data "$T/d.npy" --steps 1 --shard-optimizer maybe -i "$T/m0.st" -o "$T/x.st"
    [ "$status" -eq 2 ] && [[ "$output" == *"--shard-optimizer 'maybe': on or off"* ]]
}
