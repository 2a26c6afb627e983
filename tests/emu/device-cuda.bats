#!/usr/bin/env bats
# The programs with --device cuda, end to end, on the CUDA host emulation build
# (make CUDA=emu; tests/run.sh points GT_BIN at build/emu-cudaemu/bin): training and sampling
# agree with the CPU, resume is exact, --device auto says what it chose, a missing GPU is a
# one-line error, a NaN is found on the device and named by step, the log and snapshots, the
# sngan presets (ResNets, spectral normalization, cbn, proj) train as on the CPU, a step
# recorded as a CUDA graph gives the bits of one run launch by launch.
# The emulation keeps device memory inaccessible to host code between kernels, so each run
# here also checks that nothing outside the backend touches it.
load ../helper

G_SMALL='linear 32; bn; lrelu 0.2; linear 64; tanh; reshape 1x8x8'
D_SMALL='flatten; linear 32; lrelu 0.2; dropout 0.2; linear 1'
D_LN='flatten; linear 32; ln; lrelu 0.2; dropout 0.2; linear 16; sigmoid; linear 1'

data() {
    memo "$3" "data-$1-$2.npy" $PY -c '
import sys, numpy as np
n, dt, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
r = np.random.default_rng(n)
x = r.integers(0, 256, size=(n, 1, 8, 8)).astype(np.uint8)
np.save(path, x if dt == "u8" else (x.astype(np.float32) - 127.5) / 127.5)' "$1" "$2"
}

init() {
    local f=$1; shift
    gan-init --device cpu --G "$G_SMALL" --D "$D_SMALL" --shape 1x8x8 --z 8 --batch 16 --seed 4 "$@" -o "$f"
}

# close A B: checkpoints A and B hold the same tensors and metadata, integers equal, and each
# float tensor within 1e-3 of its rms (the rms of the difference: tests/unit/tolerances.h,
# TOL_STEP_RMS, says why a few steps of training are compared so, not element by element)
close() {
    $PY - "$1" "$2" <<'PY'
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=np.float32 if v["dtype"] == "F32" else np.int64)
    return h["__metadata__"], out
ma, a = load(sys.argv[1])
mb, b = load(sys.argv[2])
assert ma == mb, "metadata differ"
assert a.keys() == b.keys(), "tensors differ"
for k in a:
    x, y = a[k].astype(np.float64), b[k].astype(np.float64)
    if a[k].dtype == np.int64:
        assert (x == y).all(), k
        continue
    if y.size == 0:
        continue
    d, r = np.sqrt(np.mean((x - y) ** 2)), np.sqrt(np.mean(y * y))
    assert d <= 1e-3 * r, "%s differs by %g of its rms" % (k, d / r)
PY
}

@test "gan-step --device cuda agrees with --device cpu: every loss, EMA, float and uint8 data" {
    data 100 u8 "$T/u8.npy"
    data 100 f32 "$T/f32.npy"
    for loss in ns bce hinge lsgan wgan wgan-gp; do
        d="$D_SMALL"; [ $loss = wgan-gp ] && d="$D_LN"
        gan-init --device cpu --G "$G_SMALL" --D "$d" --shape 1x8x8 --z 8 --batch 16 --seed 4 --loss $loss \
            --ema 0.9 -o "$T/m0.st"
        for dt in u8 f32; do
            gan-step -q --device cpu --threads 1 --data "$T/$dt.npy" --steps 5 -i "$T/m0.st" -o "$T/cpu.st"
            gan-step -q --device cuda --data "$T/$dt.npy" --steps 5 -i "$T/m0.st" -o "$T/cuda.st"
            run close "$T/cpu.st" "$T/cuda.st"
            [ "$status" -eq 0 ] || { echo "$loss $dt: $output"; return 1; }
        done
    done
}

@test "gan-step --device cuda: the mlp preset and sgd/rmsprop optimizers agree with the CPU" {
    data 100 u8 "$T/d.npy"
    gan-init --device cpu --arch mlp --shape 1x8x8 --batch 32 --seed 3 -o "$T/m0.st"
    gan-step -q --device cpu --threads 1 --data "$T/d.npy" --steps 4 -i "$T/m0.st" -o "$T/cpu.st"
    gan-step -q --device cuda --data "$T/d.npy" --steps 4 -i "$T/m0.st" -o "$T/cuda.st"
    close "$T/cpu.st" "$T/cuda.st"
    for dev in cpu cuda; do
        gan-step -q --device $dev --threads 1 --data "$T/d.npy" --steps 3 --opt-g rmsprop:lr=1e-3,momentum=0.5,centered \
            --opt-d sgd:lr=0.01,momentum=0.9,nesterov -i "$T/m0.st" -o "$T/$dev.st" 2>/dev/null
    done
    close "$T/cpu.st" "$T/cuda.st"
}

@test "gan-step --device cuda: the sngan and csngan presets agree with the CPU and resume exactly" {
    data 24 u8 "$T/d.npy"
    $PY -c 'import numpy as np; np.save("'"$T"'/l.npy", np.arange(24) % 3)'
    for p in sngan csngan; do
        c=; l=; [ $p = csngan ] && c="--classes 3" && l="--labels $T/l.npy"
        gan-init --device cpu --arch $p --shape 1x8x8 --z 8 --batch 4 --seed 2 $c -o "$T/$p.0.st"
        gan-step -q --device cpu --threads 1 --data "$T/d.npy" $l --steps 2 -i "$T/$p.0.st" -o "$T/$p.cpu.st"
        gan-step -q --device cuda --data "$T/d.npy" $l --steps 2 -i "$T/$p.0.st" -o "$T/$p.a.st"
        close "$T/$p.cpu.st" "$T/$p.a.st"
        gan-step -q --device cuda --data "$T/d.npy" $l --steps 1 -i "$T/$p.0.st" -o "$T/$p.1.st"
        gan-step -q --device cuda --data "$T/d.npy" $l --steps 1 -i "$T/$p.1.st" -o "$T/$p.b.st"
        cmp "$T/$p.a.st" "$T/$p.b.st"
    done
}

@test "gan-init --device cuda writes the CPU's bytes (Philox fills are exact)" {
    for dev in cpu cuda; do
        gan-init --device $dev --arch mlp --shape 1x8x8 --seed 9 --ema 0.99 --opt-d rmsprop:momentum=0.5,centered \
            -o "$T/$dev.st"
        gan-init --device $dev --G "$G_SMALL" --D "$D_LN" --shape 1x8x8 --z 8 --init dcgan --loss wgan-gp \
            -o "$T/$dev-2.st"
    done
    cmp "$T/cpu.st" "$T/cuda.st"
    cmp "$T/cpu-2.st" "$T/cuda-2.st"
}

@test "resume on cuda is exact: 7 steps equal 3 then 4, bit for bit" {
    data 100 u8 "$T/d.npy"
    init "$T/m0.st" --ema 0.9
    gan-step -q --device cuda --data "$T/d.npy" --steps 7 -i "$T/m0.st" -o "$T/a.st"
    gan-step -q --device cuda --data "$T/d.npy" --steps 3 -i "$T/m0.st" -o "$T/m3.st"
    gan-step -q --device cuda --data "$T/d.npy" --steps 4 -i "$T/m3.st" -o "$T/b.st"
    cmp "$T/a.st" "$T/b.st"
}

@test "--device auto picks the GPU and says so on stderr (not with -q)" {
    data 50 u8 "$T/d.npy"
    init "$T/m0.st"
    run gan-step --data "$T/d.npy" --steps 1 -i "$T/m0.st" -o "$T/a.st"
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == "gan-step: device cuda: gan-tools host emulation"* ]] || { echo "$output"; return 1; }
    run gan-step -q --data "$T/d.npy" --steps 1 -i "$T/m0.st" -o "$T/b.st"
    [ "$status" -eq 0 ] && [ -z "$output" ]
    gan-step -q --device cuda --data "$T/d.npy" --steps 1 -i "$T/m0.st" -o "$T/c.st"
    cmp "$T/b.st" "$T/c.st"
}

@test "no GPU: --device cuda is a one-line error writing nothing; auto falls back to the CPU" {
    data 50 u8 "$T/d.npy"
    init "$T/m0.st"
    export GT_EMU_NO_GPU=1
    run gan-step --device cuda --data "$T/d.npy" --steps 1 -i "$T/m0.st" -o "$T/a.st"
    assert_one_line_error 2
    [[ "$output" == *"--device cuda: no CUDA GPU found"* ]]
    [ ! -e "$T/a.st" ]
    run gan-sample --device cuda -n 4 "$T/m0.st" -o "$T/s.npy"
    assert_one_line_error 2
    [ ! -e "$T/s.npy" ]
    run gan-step --data "$T/d.npy" --steps 1 -i "$T/m0.st" -o "$T/b.st"
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == "gan-step: device cpu: no CUDA GPU found"* ]] || { echo "$output"; return 1; }
    gan-step -q --device cpu --data "$T/d.npy" --steps 1 -i "$T/m0.st" -o "$T/c.st"
    cmp "$T/b.st" "$T/c.st"
}

@test "a NaN on cuda stops the run naming the step; nothing is written" {
    data 100 u8 "$T/d.npy"
    init "$T/m.st"
    cp "$T/m.st" "$T/orig.st"
    run gan-step -q --device cuda --data "$T/d.npy" --steps 50 --opt-d sgd:lr=1e38 --in-place "$T/m.st"
    [ "$status" -eq 1 ]
    [[ "${lines[1]}" == "gan-step: step "[0-9]*": "*"stopping" ]] || { echo "$output"; return 1; }
    cpu=$(gan-step -q --device cpu --data "$T/d.npy" --steps 50 --opt-d sgd:lr=1e38 -i "$T/m.st" -o "$T/x.st" 2>&1 | tail -1)
    [ "${lines[1]}" = "$cpu" ] || { echo "cuda: ${lines[1]}; cpu: $cpu"; return 1; }
    cmp "$T/m.st" "$T/orig.st"
    [ "$(ls "$T")" = "$(printf 'd.npy\nm.st\norig.st')" ]
}

@test "the log and snapshots on cuda: the CPU's figures, one row per interval" {
    data 100 u8 "$T/d.npy"
    init "$T/m0.st" --loss wgan-gp --D "$D_LN"
    for dev in cpu cuda; do
        gan-step -q --device $dev --threads 1 --data "$T/d.npy" --steps 6 --log "$T/$dev.tsv" --log-every 2 \
            --snapshot-every 3 --snapshot-dir "$T/snap-$dev" -i "$T/m0.st" -o "$T/$dev.st"
    done
    close "$T/snap-cpu/step-000003.st" "$T/snap-cuda/step-000003.st"
    close "$T/cpu.st" "$T/cuda.st"
    run $PY -c '
import sys
import numpy as np
a = [l.split("\t") for l in open(sys.argv[1])]
b = [l.split("\t") for l in open(sys.argv[2])]
assert a[0] == b[0] and len(a) == len(b) == 4, (a, b)
for r, s in zip(a[1:], b[1:]):
    assert r[:2] == s[:2], (r, s)
    x, y = np.array(r[2:9], float), np.array(s[2:9], float)
    assert np.allclose(x, y, rtol=1e-4, atol=1e-6), (r, s)' "$T/cpu.tsv" "$T/cuda.tsv"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
}

@test "gan-sample --device cuda: the CPU's images, with every latent option" {
    data 100 u8 "$T/d.npy"
    init "$T/m0.st" --ema 0.9
    gan-step -q --device cpu --data "$T/d.npy" --steps 3 -i "$T/m0.st" -o "$T/m.st"
    for dev in cpu cuda; do
        gan-sample --device $dev --threads 1 -n 37 --seed 5 --batch 16 "$T/m.st" > "$T/plain-$dev.npy"
        gan-sample --device $dev --threads 1 -n 9 --seed 5 --truncate 0.7 --best-of 3 --interp 4 --no-ema \
            --z-out "$T/z-$dev.npy" -o "$T/opts-$dev.npy" "$T/m.st"
        gan-sample --device $dev --threads 1 --z-in "$T/z-cpu.npy" --interp 2 -o "$T/zin-$dev.npy" "$T/m.st"
    done
    cmp "$T/z-cpu.npy" "$T/z-cuda.npy"   # latents are Philox draws and interpolations: exact
    run $PY -c '
import sys
import numpy as np
for a, b in zip(sys.argv[1::2], sys.argv[2::2]):
    x, y = np.load(a), np.load(b)
    assert x.shape == y.shape and np.allclose(x, y, rtol=1e-5, atol=1e-6), (a, np.abs(x - y).max())' \
        "$T/plain-cpu.npy" "$T/plain-cuda.npy" "$T/opts-cpu.npy" "$T/opts-cuda.npy" "$T/zin-cpu.npy" "$T/zin-cuda.npy"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
}

@test "SIGINT on cuda finishes the step, writes the checkpoint, exits 130; resuming is exact" {
    data 300 u8 "$T/d.npy"
    init "$T/m0.st"
    gan-step -q --device cuda --data "$T/d.npy" --steps 100000000 -i "$T/m0.st" -o "$T/int.st" &
    local pid=$!
    sleep 1.5
    kill -INT "$pid"
    local rc=0
    wait "$pid" || rc=$?
    [ "$rc" -eq 130 ]
    local s
    s=$($PY -c '
import json, struct, sys
b = open(sys.argv[1], "rb").read()
print(json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])["__metadata__"]["step"])' "$T/int.st")
    [ "$s" -gt 0 ]
    gan-step -q --device cuda --data "$T/d.npy" --steps $((s + 3)) -i "$T/m0.st" -o "$T/full.st"
    gan-step -q --device cuda --data "$T/d.npy" --steps 3 -i "$T/int.st" -o "$T/resumed.st"
    cmp "$T/full.st" "$T/resumed.st"
}

@test "class-conditional on cuda: training with --labels and gan-sample --per-class agree with the CPU" {
    data 100 u8 "$T/d.npy"
    $PY -c 'import numpy as np; np.save("'"$T"'/y.npy", (np.arange(100) % 3).astype(np.uint8))'
    gan-init --device cpu --G 'embed 3 4; linear 32; cbn 3; lrelu 0.2; linear 64; tanh; reshape 1x8x8' \
        --D 'onehot 3; flatten; linear 32; lrelu 0.2; dropout 0.2; proj 3' --shape 1x8x8 --z 8 --batch 16 --seed 4 \
        -o "$T/m0.st"
    gan-step -q --device cpu --threads 1 --data "$T/d.npy" --labels "$T/y.npy" --steps 5 -i "$T/m0.st" -o "$T/cpu.st"
    gan-step -q --device cuda --data "$T/d.npy" --labels "$T/y.npy" --steps 5 -i "$T/m0.st" -o "$T/cuda.st"
    run close "$T/cpu.st" "$T/cuda.st"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    for dev in cpu cuda; do
        gan-sample --device $dev --threads 1 --per-class 5 --seed 5 "$T/cpu.st" > "$T/s-$dev.npy"
    done
    run $PY -c '
import sys
import numpy as np
x, y = np.load(sys.argv[1]), np.load(sys.argv[2])
assert x.shape == (15, 1, 8, 8) and np.allclose(x, y, rtol=1e-5, atol=1e-6), np.abs(x - y).max()' \
        "$T/s-cpu.npy" "$T/s-cuda.npy"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
}

# same_dumps DIR_A DIR_B: the same manifest, and every tensor within 1e-3 of its rms (one
# step from the same checkpoint: TOL_STEP_RMS, tests/unit/tolerances.h), or of 1e-5 where its rms
# is smaller: a tensor that is zero in exact arithmetic (the gradient of a bias that BatchNorm
# follows) holds only rounding noise, around 1e-10, which each backend's GEMM rounds its own way
same_dumps() {
    run $PY - "$1" "$2" <<'PY'
import os, sys
import numpy as np
a, b = sys.argv[1:3]
ma, mb = (open(os.path.join(d, "manifest.tsv")).read() for d in (a, b))
assert ma == mb, "manifests differ"
worst = (0.0, "")
for line in ma.splitlines()[1:]:
    f = line.split("\t")[0]
    x, y = np.load(os.path.join(a, f)).astype(np.float64), np.load(os.path.join(b, f)).astype(np.float64)
    rms = np.sqrt((y ** 2).mean()) if y.size else 0.0
    e = np.sqrt(((x - y) ** 2).mean()) / max(rms, 1e-5) if y.size else 0.0
    worst = max(worst, (e, f))
assert worst[0] <= 1e-3, worst
PY
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
}

@test "inspecting on cuda: --activations, --dump-step and --log-layers give the CPU's tensors and change no bit" {
    data 64 u8 "$T/d.npy"
    init "$T/m0.st" --ema 0.9
    for dev in cpu cuda; do
        gan-sample --device $dev --threads 1 -n 9 --seed 5 --batch 4 --activations "$T/acts-$dev" "$T/m0.st" > "$T/x-$dev.npy"
        gan-step -q --device $dev --threads 1 --data "$T/d.npy" --steps 2 --dump-step 1 --dump-dir "$T/dump-$dev" \
            --log "$T/l-$dev.tsv" --log-every 1 --log-layers -i "$T/m0.st" -o "$T/a-$dev.st"
    done
    gan-sample --device cuda --threads 1 -n 9 --seed 5 --batch 4 "$T/m0.st" | cmp - "$T/x-cuda.npy"
    gan-step -q --device cuda --data "$T/d.npy" --steps 2 -i "$T/m0.st" | cmp - "$T/a-cuda.st"
    same_dumps "$T/acts-cuda" "$T/acts-cpu"
    same_dumps "$T/dump-cuda" "$T/dump-cpu"
    [ "$(head -1 "$T/l-cuda.tsv")" = "$(head -1 "$T/l-cpu.tsv")" ]
}

@test "--cuda-graph on and off, and GT_CUDA_GRAPH=0, give the same bytes; resuming with graphs is exact" {
    # every step-varying argument at once: n_critic 2 and dropout (Philox steps), wgan-gp's mix,
    # annealed instance noise (it stops: another sequence of nodes), lr schedules, EMA, epochs
    # ending mid-step (uncaptured); then lazy R1 (steps alternate), DiffAugment, label flips
    data 100 u8 "$T/d.npy"
    init "$T/a0.st" --loss wgan-gp --n-critic 2 --ema 0.9 --instance-noise 0.2 --instance-noise-steps 4 \
        --lr-schedule-g cosine:6 --lr-schedule-d step:3:0.5
    init "$T/b0.st" --loss ns --r1 1 --reg-every 2 --augment color,translation --label-flip 0.2
    for m in a b; do
        gan-step -q --device cuda --cuda-graph off --data "$T/d.npy" --steps 7 -i "$T/${m}0.st" -o "$T/$m.off.st"
        gan-step -q --device cuda --cuda-graph on --data "$T/d.npy" --steps 7 -i "$T/${m}0.st" -o "$T/$m.on.st"
        cmp "$T/$m.off.st" "$T/$m.on.st"
        GT_CUDA_GRAPH=0 gan-step -q --device cuda --data "$T/d.npy" --steps 3 -i "$T/${m}0.st" -o "$T/$m.3.st"
        gan-step -q --device cuda --data "$T/d.npy" --steps 4 -i "$T/$m.3.st" -o "$T/$m.7.st"
        cmp "$T/$m.off.st" "$T/$m.7.st"
    done
    run gan-step -q --device cuda --cuda-graph maybe --data "$T/d.npy" --steps 1 -i "$T/a0.st" -o "$T/x.st"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--cuda-graph 'maybe': on or off"* ]]
}

@test "gan-step --device cuda: instance noise agrees with the CPU" {
    data 64 u8 "$T/d.npy"
    init "$T/m0.st" --loss ns --instance-noise 0.3 --instance-noise-steps 3
    gan-step -q --device cpu --threads 1 --data "$T/d.npy" --steps 4 -i "$T/m0.st" -o "$T/cpu.st"
    gan-step -q --device cuda --data "$T/d.npy" --steps 4 -i "$T/m0.st" -o "$T/cuda.st"
    close "$T/cpu.st" "$T/cuda.st"
}

@test "gan-step --device cuda: label flipping and two-sided smoothing agree with the CPU" {
    data 64 u8 "$T/d.npy"
    init "$T/m0.st" --loss bce --label-flip 0.3 --label-smooth 0.1 --label-smooth-fake 0.1
    gan-step -q --device cpu --threads 1 --data "$T/d.npy" --steps 4 -i "$T/m0.st" -o "$T/cpu.st"
    gan-step -q --device cuda --data "$T/d.npy" --steps 4 -i "$T/m0.st" -o "$T/cuda.st"
    close "$T/cpu.st" "$T/cuda.st"
}

@test "gan-step --device cuda: learning-rate schedules agree with the CPU" {
    data 64 u8 "$T/d.npy"
    init "$T/m0.st" --lr-schedule-g cosine:3 --lr-schedule-d step:2:0.5
    gan-step -q --device cpu --threads 1 --data "$T/d.npy" --steps 4 -i "$T/m0.st" -o "$T/cpu.st"
    gan-step -q --device cuda --data "$T/d.npy" --steps 4 -i "$T/m0.st" -o "$T/cuda.st"
    close "$T/cpu.st" "$T/cuda.st"
}

@test "--eval-every on cuda: the CPU's scores, gan-sample --device cuda's images, no bit of training changed" {
    data 64 u8 "$T/d.npy"
    init "$T/m0.st" --ema 0.9
    gan-fid -q --device cpu --features pixels --save-stats "$T/ref.npz" "$T/d.npy"
    E="--eval-every 2 --eval-ref $T/ref.npz --eval-features pixels --eval-n 20"
    for dev in cpu cuda; do
        gan-step -q --device $dev --threads 1 --data "$T/d.npy" --steps 4 $E --log "$T/$dev.tsv" --log-every 4 \
            --keep-best "$T/best-$dev.st" -i "$T/m0.st" -o "$T/$dev.st"
    done
    gan-step -q --device cuda --data "$T/d.npy" --steps 4 -i "$T/m0.st" -o "$T/plain.st"
    cmp "$T/cuda.st" "$T/plain.st"
    gan-step -q --device cuda --data "$T/d.npy" --steps 2 -i "$T/m0.st" -o "$T/m2.st"
    gan-sample --device cuda -n 20 --batch 16 -i "$T/m2.st" -o "$T/s.npy" 2>/dev/null
    want=$(gan-fid -q --device cpu --threads 1 --features pixels "$T/ref.npz" "$T/s.npy")   # the run's threads
    got=$(awk -F"\t" '$1 == 2 { print $NF }' "$T/cuda.tsv")
    [ "$want" = "FD(pixels) $got" ] || { echo "$want vs $got"; cat "$T/cuda.tsv"; return 1; }
    run $PY -c '
import sys, numpy as np
a, b = (np.loadtxt(f, skiprows=1)[:, -1] for f in sys.argv[1:])
assert len(a) == 2 and np.allclose(a, b, rtol=1e-4), (a, b)' "$T/cpu.tsv" "$T/cuda.tsv"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    [ -s "$T/best-cuda.st" ]
}
