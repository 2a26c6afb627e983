#!/usr/bin/env bats
# gan-step: exact resume (also after SIGINT/SIGTERM), thread-count independence, logs,
# snapshots, overrides, NaN handling, and bad input.
load helper

G_SMALL='linear 32; lrelu 0.2; linear 64; tanh; reshape 1x8x8'
D_SMALL='flatten; linear 32; lrelu 0.2; dropout 0.2; linear 1'
D_NODROP='flatten; linear 32; lrelu 0.2; linear 1'

meta() {
    $PY -c '
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
print(json.loads(b[8:8 + n])["__metadata__"][sys.argv[2]])' "$1" "$2"
}

# data N DTYPE FILE: random images N x 1 x 8 x 8 (uint8 or float32 in [-1, 1])
data() {
    memo "$3" "data-$1-$2.npy" $PY -c '
import sys, numpy as np
n, dt, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
r = np.random.default_rng(n)
x = r.integers(0, 256, size=(n, 1, 8, 8)).astype(np.uint8)
np.save(path, x if dt == "u8" else (x.astype(np.float32) - 127.5) / 127.5)' "$1" "$2"
}

# init FILE [args]: a small model
init() {
    local f=$1; shift
    local d="$D_SMALL"
    gan-init --G "$G_SMALL" --D "$d" --shape 1x8x8 --z 8 --batch 16 --seed 4 "$@" -o "$f" 2>/dev/null || \
        gan-init --G "$G_SMALL" --D "$D_NODROP" --shape 1x8x8 --z 8 --batch 16 --seed 4 "$@" -o "$f"
}

@test "gan-step --help lists every option and an example" {
    run gan-step --help
    [ "$status" -eq 0 ]
    for o in --data --steps --epochs -i -o --in-place --batch --opt-g --opt-d --n-critic --gp --clip \
             --label-smooth --ema --augment --log --log-every --snapshot-every --snapshot-dir --threads --device -q \
             --eval-every --eval-ref --eval-n --eval-features --eval-weights --eval-resize --eval-metric --keep-best; do
        [[ "$output" == *"$o"* ]] || { echo "help lacks $o"; return 1; }
    done
    [[ "$output" == *example* ]]
}

@test "resume is exact: 12 steps equal 5 then 7 from the checkpoint, bit for bit" {
    data 100 u8 "$T/d.npy"
    init "$T/m0.st" --ema 0.9
    gan-step -q --data "$T/d.npy" --steps 12 -i "$T/m0.st" -o "$T/a.st"
    gan-step -q --data "$T/d.npy" --steps 5 < "$T/m0.st" > "$T/m5.st"
    gan-step -q --data "$T/d.npy" --steps 7 -i "$T/m5.st" -o "$T/b.st"
    [ "$(meta "$T/a.st" step)" = 12 ]
    [ "$(meta "$T/a.st" epoch)" = 1 ]      # 6 batches of 16 per epoch of 100 images: 2 epochs done,
    [ "$(meta "$T/a.st" epoch_pos)" = 96 ] # the next batch starts epoch 2
    cmp "$T/a.st" "$T/b.st"
    ! cmp -s "$T/a.st" "$T/m5.st"
}

@test "resume is exact for wgan (5 critic steps, clipping) and float32 data" {
    data 64 f32 "$T/d.npy"
    init "$T/m0.st" --loss wgan --opt-d rmsprop:lr=1e-3
    gan-step -q --data "$T/d.npy" --steps 4 -i "$T/m0.st" -o "$T/a.st"
    gan-step -q --data "$T/d.npy" --steps 1 -i "$T/m0.st" -o "$T/m1.st"
    gan-step -q --data "$T/d.npy" --steps 3 -i "$T/m1.st" -o "$T/b.st"
    cmp "$T/a.st" "$T/b.st"
    [ "$(meta "$T/a.st" opt_D_steps)" = 20 ]
    [ "$(meta "$T/a.st" opt_G_steps)" = 4 ]
}

@test "wgan-gp: the penalty is logged, and resume is exact" {
    data 64 u8 "$T/d.npy"
    gan-init --G "$G_SMALL" --D "$D_NODROP" --shape 1x8x8 --z 8 --batch 16 --seed 4 --loss wgan-gp -o "$T/m0.st"
    gan-step -q --data "$T/d.npy" --steps 3 --log "$T/l.tsv" --log-every 1 -i "$T/m0.st" -o "$T/a.st"
    gan-step -q --data "$T/d.npy" --steps 2 -i "$T/m0.st" -o "$T/m2.st"
    gan-step -q --data "$T/d.npy" --steps 1 -i "$T/m2.st" -o "$T/b.st"
    cmp "$T/a.st" "$T/b.st"
    run $PY -c '
import sys
rows = [l.split("\t") for l in open(sys.argv[1])][1:]
assert len(rows) == 3 and all(float(r[6]) > 0 for r in rows), rows' "$T/l.tsv"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
}

@test "--epochs E trains E * floor(N / batch) / n_critic steps" {
    data 100 u8 "$T/d.npy"
    init "$T/m0.st"
    gan-step -q --data "$T/d.npy" --epochs 2 -i "$T/m0.st" -o "$T/a.st"
    [ "$(meta "$T/a.st" step)" = 12 ]
    [ "$(meta "$T/a.st" data_n)" = 100 ]
    init "$T/w0.st" --loss wgan                            # 5 real batches per step
    gan-step -q --data "$T/d.npy" --epochs 5 -i "$T/w0.st" -o "$T/w.st"
    [ "$(meta "$T/w.st" step)" = 6 ]
    [ "$(meta "$T/w.st" epoch)" = 4 ]
    [ "$(meta "$T/w.st" epoch_pos)" = 96 ]
}

# interrupt SIGNAL CODE: a run interrupted by SIGNAL exits CODE, and resuming it to the same
# total gives the weights of an uninterrupted run
interrupt() {
    data 300 u8 "$T/d.npy"
    init "$T/m0.st"
    gan-step -q --data "$T/d.npy" --steps 100000000 -i "$T/m0.st" -o "$T/int.st" &
    local pid=$!
    sleep 1.5
    kill -"$1" "$pid"
    local rc=0
    wait "$pid" || rc=$?
    [ "$rc" -eq "$2" ] || { echo "exit $rc, expected $2"; return 1; }
    local s
    s=$(meta "$T/int.st" step)
    [ "$s" -gt 0 ]
    gan-step -q --data "$T/d.npy" --steps $((s + 7)) -i "$T/m0.st" -o "$T/full.st"
    gan-step -q --data "$T/d.npy" --steps 7 -i "$T/int.st" -o "$T/resumed.st"
    cmp "$T/full.st" "$T/resumed.st"
}

@test "SIGINT finishes the step, writes the checkpoint, exits 130; resuming is exact" {
    interrupt INT 130
}

@test "SIGTERM: exit 143 with a checkpoint that resumes exactly" {
    interrupt TERM 143
}

@test "--threads 1 and --threads 2 give identical weights" {
    data 200 u8 "$T/d.npy"
    gan-init --G 'linear 128; lrelu 0.2; linear 256; lrelu 0.2; linear 64; tanh; reshape 1x8x8' \
        --D 'flatten; linear 256; lrelu 0.2; linear 128; lrelu 0.2; linear 1' --shape 1x8x8 --batch 64 --seed 2 \
        -o "$T/m0.st"
    gan-step -q --data "$T/d.npy" --steps 6 --threads 1 -i "$T/m0.st" -o "$T/t1.st"
    gan-step -q --data "$T/d.npy" --steps 6 --threads 2 -i "$T/m0.st" -o "$T/t2.st"
    cmp "$T/t1.st" "$T/t2.st"
}

# DiffAugment on 3x16x16 images, a batch of 48: the augment operations split over threads
@test "--augment: stored; resume is exact and --threads 1 and 2 agree, the penalty included" {
    $PY -c '
import sys, numpy as np
np.save(sys.argv[1], np.random.default_rng(3).integers(0, 256, size=(96, 3, 16, 16)).astype(np.uint8))' "$T/d.npy"
    gan-init --G 'linear 32; lrelu 0.2; linear 768; tanh; reshape 3x16x16' \
        --D 'flatten; linear 32; lrelu 0.2; linear 1' --shape 3x16x16 --z 8 --batch 48 --seed 5 --loss wgan-gp \
        --n-critic 2 --augment color,translation,cutout -o "$T/m0.st"
    [ "$(meta "$T/m0.st" augment)" = color,translation,cutout ]
    gan-step -q --data "$T/d.npy" --steps 3 --threads 1 -i "$T/m0.st" -o "$T/a.st"
    gan-step -q --data "$T/d.npy" --steps 3 --threads 2 -i "$T/m0.st" -o "$T/b.st"
    gan-step -q --data "$T/d.npy" --steps 1 --threads 2 -i "$T/m0.st" -o "$T/m1.st"
    gan-step -q --data "$T/d.npy" --steps 2 --threads 1 -i "$T/m1.st" -o "$T/c.st"
    cmp "$T/a.st" "$T/b.st"
    cmp "$T/a.st" "$T/c.st"
    [ "$(meta "$T/a.st" augment)" = color,translation,cutout ]
    gan-step -q --data "$T/d.npy" --steps 3 --augment none -i "$T/m0.st" -o "$T/n.st"
    ! cmp -s "$T/a.st" "$T/n.st"
}

@test "--augment overrides the checkpoint's (said, stored); none removes it from the file" {
    data 64 u8 "$T/d.npy"
    init "$T/m.st" --augment translation
    run gan-step --data "$T/d.npy" --steps 1 --augment color,cutout --in-place "$T/m.st"
    [ "$status" -eq 0 ]
    [[ "$output" == *"augmentation translation -> color,cutout"* ]]
    [ "$(meta "$T/m.st" augment)" = color,cutout ]
    gan-step -q --data "$T/d.npy" --steps 1 --augment none --in-place "$T/m.st"
    run meta "$T/m.st" augment
    [ "$status" -ne 0 ]
    [[ "$output" == *KeyError* ]]
}

@test "spectral normalization (sn), in a block's main and skip paths too: resume is exact, 1 and 2 threads identical, u and v saved and moving" {
    data 64 u8 "$T/d.npy"
    gan-init --G 'linear 32 sn; relu; reshape 2x4x4; convT 4 k4 s2 p1 sn=2; relu; conv 1 k3 p1 sn; tanh' \
        --D 'conv 8 k4 s2 p1 sn; lrelu 0.2; block { conv 8 k3 p1 sn; lrelu 0.2; conv 8 k3 p1 sn } skip { conv 8 k1 sn }; flatten; linear 1 sn' \
        --shape 1x8x8 --z 8 --batch 16 --seed 4 \
        --loss wgan-gp --n-critic 2 -o "$T/m0.st"
    [ "$(meta "$T/m0.st" G_spec)" = "linear 32 sn; relu; reshape 2x4x4; convT 4 k4 s2 p1 op0 sn=2; relu; conv 1 k3 s1 p1 sn; tanh" ]
    gan-step -q --data "$T/d.npy" --steps 3 --threads 1 -i "$T/m0.st" -o "$T/a.st"
    gan-step -q --data "$T/d.npy" --steps 3 --threads 2 -i "$T/m0.st" -o "$T/t2.st"
    cmp "$T/a.st" "$T/t2.st"
    gan-step -q --data "$T/d.npy" --steps 1 -i "$T/m0.st" -o "$T/m1.st"
    gan-step -q --data "$T/d.npy" --steps 2 -i "$T/m1.st" -o "$T/b.st"
    cmp "$T/a.st" "$T/b.st"
    run $PY -c '
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32)
            for k, v in h.items() if k != "__metadata__" and v["dtype"] == "F32"}
a, b = load(sys.argv[1]), load(sys.argv[2])
for k in ("G.0.weight_u", "G.0.weight_v", "G.3.weight_u", "D.0.weight_v", "D.2.main.0.weight_u", "D.2.main.2.weight_v",
          "D.2.skip.0.weight_u", "D.4.weight_v"):
    assert abs(np.linalg.norm(b[k]) - 1) < 1e-5, k + " is not a unit vector"
    assert not np.array_equal(a[k], b[k]), k + " did not move"
assert "G.0.weight" not in a and "D.2.main.0.weight" not in a and "D.2.main.0.weight_orig" in a' "$T/m0.st" "$T/a.st"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    gan-sample -n 4 -i "$T/a.st" -o "$T/s.npy"
}

@test "noise, instance norm and weight normalization (wn), in a block too: resume is exact, 1 and 2 threads identical, weight_g and weight_v named as torch" {
    data 64 u8 "$T/d.npy"
    gan-init --G 'linear 32 wn; relu; reshape 2x4x4; convT 4 k4 s2 p1 wn; relu; conv 1 k3 p1; tanh' \
        --D 'noise 0.1; conv 8 k4 s2 p1 wn; in; lrelu 0.2; block { noise 0.2; conv 8 k3 p1 wn; in noaffine; lrelu 0.2 } skip { conv 8 k1 wn }; flatten; linear 1 wn' \
        --shape 1x8x8 --z 8 --batch 16 --seed 4 --loss wgan-gp --n-critic 2 -o "$T/m0.st"
    [ "$(meta "$T/m0.st" D_spec)" = "noise 0.1; conv 8 k4 s2 p1 wn; in eps=1e-05; lrelu 0.2; block { noise 0.2; conv 8 k3 s1 p1 wn; in eps=1e-05 noaffine; lrelu 0.2 } skip { conv 8 k1 s1 p0 wn }; flatten; linear 1 wn" ]
    gan-step -q --data "$T/d.npy" --steps 3 --threads 1 -i "$T/m0.st" -o "$T/a.st"
    gan-step -q --data "$T/d.npy" --steps 3 --threads 2 -i "$T/m0.st" -o "$T/t2.st"
    cmp "$T/a.st" "$T/t2.st"
    gan-step -q --data "$T/d.npy" --steps 1 -i "$T/m0.st" -o "$T/m1.st"
    gan-step -q --data "$T/d.npy" --steps 2 -i "$T/m1.st" -o "$T/b.st"
    cmp "$T/a.st" "$T/b.st"
    run tensor-info "$T/a.st"
    [[ "$output" == *"G.0.weight_g "*"32x1 "* ]]
    [[ "$output" == *"G.3.weight_g "*"2x1x1x1 "* ]]   # convT: dimension 0 is the input channels
    [[ "$output" == *"D.1.weight_v "*"8x1x4x4 "* ]]
    [[ "$output" == *"D.4.main.1.weight_g "*"8x1x1x1 "* ]]
    [[ "$output" == *"D.4.skip.0.weight_v "* ]]
    [[ "$output" == *"D.2.weight "*"8 "* ]]             # in: torch's weight and bias of C
    [[ "$output" != *"D.1.weight "* ]]
    gan-sample -n 4 -i "$T/a.st" -o "$T/s.npy"
}

@test "--log writes a header and one row per --log-every steps; appends on resume" {
    data 100 u8 "$T/d.npy"
    init "$T/m0.st"
    gan-step -q --data "$T/d.npy" --steps 6 --log "$T/l.tsv" --log-every 2 -i "$T/m0.st" -o "$T/a.st"
    gan-step -q --data "$T/d.npy" --steps 3 --log "$T/l.tsv" --log-every 2 -i "$T/a.st" -o "$T/b.st"
    run $PY -c '
import sys, math
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
head = rows[0]
assert head == ["step", "epoch", "loss_d", "loss_g", "d_real", "d_fake", "gp", "gnorm_g", "gnorm_d",
                "img_per_s", "wall_s"], head
steps = [int(r[0]) for r in rows[1:]]
assert steps == [2, 4, 6, 8, 9], steps
for r in rows[1:]:
    assert len(r) == 11 and all(math.isfinite(float(v)) for v in r), r
    assert 0 < float(r[4]) < 1 and 0 < float(r[5]) < 1, r   # probabilities for ns
    assert float(r[7]) > 0 and float(r[8]) > 0, r
print("ok")' "$T/l.tsv"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
}

@test "snapshots: DIR/step-NNNNNN.st every N steps, each equal to a run of that length" {
    data 100 u8 "$T/d.npy"
    init "$T/m0.st"
    gan-step -q --data "$T/d.npy" --steps 6 --snapshot-every 2 --snapshot-dir "$T/snap" -i "$T/m0.st" -o "$T/a.st"
    [ "$(ls "$T/snap")" = "$(printf 'step-000002.st\nstep-000004.st\nstep-000006.st')" ]
    gan-step -q --data "$T/d.npy" --steps 4 -i "$T/m0.st" -o "$T/four.st"
    cmp "$T/snap/step-000004.st" "$T/four.st"
    cmp "$T/snap/step-000006.st" "$T/a.st"
}

@test "overrides are said on stderr and stored; --in-place replaces the file" {
    data 100 u8 "$T/d.npy"
    init "$T/m.st"
    run gan-step -q --data "$T/d.npy" --steps 2 --batch 32 --opt-g adam:lr=1e-3,b1=0.5 --label-smooth 0.1 \
        --ema 0.99 --in-place "$T/m.st"
    [ "$status" -eq 0 ]
    [[ "$output" == *"batch 16 -> 32"* ]]
    [[ "$output" == *"G optimizer"*"lr=0.001"* ]]
    [[ "$output" == *"label smoothing"* ]]
    [ "$(meta "$T/m.st" batch)" = 32 ]
    [ "$(meta "$T/m.st" step)" = 2 ]
    [ "$(meta "$T/m.st" label_smooth)" = 0.1 ]
    [ "$(meta "$T/m.st" ema)" = 0.99 ]
    [[ "$(meta "$T/m.st" opt_G)" == adam:lr=0.001,* ]]
    [ "$(ls "$T")" = "$(printf 'd.npy\nm.st')" ]
}

@test "a NaN or Inf stops the run naming the step; the old file stays" {
    data 100 u8 "$T/d.npy"
    init "$T/m.st"
    cp "$T/m.st" "$T/orig.st"
    run gan-step -q --data "$T/d.npy" --steps 50 --opt-d sgd:lr=1e38 --in-place "$T/m.st"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 2 ]                        # the override notice, then the error
    [[ "${lines[1]}" == "gan-step: step "[0-9]*": "*"stopping" ]]
    cmp "$T/m.st" "$T/orig.st"
    [ "$(ls "$T")" = "$(printf 'd.npy\nm.st\norig.st')" ]
}

@test "SIGKILL: the --in-place file stays as it was, an -o file is not made, no temporary is left" {
    data 300 u8 "$T/d.npy"
    init "$T/m.st"
    cp "$T/m.st" "$T/orig.st"
    gan-step -q --data "$T/d.npy" --steps 100000000 --in-place "$T/m.st" &
    local p1=$!
    gan-step -q --data "$T/d.npy" --steps 100000000 -i "$T/orig.st" -o "$T/out.st" &
    local p2=$!
    sleep 1.5
    kill -KILL "$p1" "$p2"
    wait "$p1" || true
    wait "$p2" || true
    cmp "$T/m.st" "$T/orig.st"
    [ "$(ls -A "$T")" = "$(printf 'd.npy\nm.st\norig.st')" ] || { ls -lA "$T"; return 1; }
}

@test "a full disk: the message says why, for a file and for stdout" {
    data 100 u8 "$T/d.npy"
    init "$T/m.st"                                  # the checkpoint outgrows stdio's buffer
    run gan-step -q --data "$T/d.npy" --steps 1 -i "$T/m.st" -o /dev/full
    assert_one_line_error 1
    assert_output "gan-step: /dev/full: write failed: No space left on device"
    run bash -c "gan-step -q --data '$T/d.npy' --steps 1 -i '$T/m.st' > /dev/full"
    assert_one_line_error 1
    assert_output "gan-step: stdout: write failed: No space left on device"
}

@test "a checkpoint of the wrong kind: one line, exit 1" {
    data 100 u8 "$T/d.npy"
    run gan-step --data "$T/d.npy" --steps 1 -i "$T/d.npy" -o "$T/x.st"
    assert_one_line_error 1
    [[ "$output" == *npy* ]]
    $PY -c '
import json, struct
h = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
h += b" " * (-len(h) % 8)
open("'"$T"'/plain.st", "wb").write(struct.pack("<Q", len(h)) + h + b"\0\0\0\0")'
    run gan-step --data "$T/d.npy" --steps 1 -i "$T/plain.st" -o "$T/x.st"
    assert_one_line_error 1
    [[ "$output" == *"not a gan-tools checkpoint"* ]]
    [ ! -e "$T/x.st" ]
}

@test "a truncated checkpoint on stdin: one line, exit 1" {
    data 100 u8 "$T/d.npy"
    init "$T/m.st"
    size=$(stat -c %s "$T/m.st")
    for n in 0 5 100 $((size / 2)) $((size - 1)); do
        run bash -c "head -c $n '$T/m.st' | gan-step --data '$T/d.npy' --steps 1 -o '$T/x.st'"
        assert_one_line_error 1
        [[ "$output" == "gan-step: stdin: "* ]]
    done
}

@test "a checkpoint with a tensor of the wrong shape or missing: one line, exit 1" {
    data 100 u8 "$T/d.npy"
    init "$T/m.st"
    $PY -c '
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
def write(path, h):
    j = json.dumps(h).encode(); j += b" " * (-len(j) % 8)
    open(path, "wb").write(struct.pack("<Q", len(j)) + j + b[8 + n:])
h2 = json.loads(json.dumps(h)); h2["G.0.weight"]["shape"] = [8, 32]; write(sys.argv[2], h2)
h3 = json.loads(json.dumps(h)); h3["G.0.weight2"] = h3.pop("G.0.weight"); write(sys.argv[3], h3)
h4 = json.loads(json.dumps(h)); h4["__metadata__"]["G_spec"] = "linear 32; bogus"; write(sys.argv[4], h4)
' "$T/m.st" "$T/shape.st" "$T/missing.st" "$T/spec.st"
    run gan-step --data "$T/d.npy" --steps 1 -i "$T/shape.st" -o "$T/x.st"
    assert_one_line_error 1
    [[ "$output" == *G.0.weight* ]]
    run gan-step --data "$T/d.npy" --steps 1 -i "$T/missing.st" -o "$T/x.st"
    assert_one_line_error 1
    [[ "$output" == *"lacks tensor 'G.0.weight'"* ]]
    run gan-step --data "$T/d.npy" --steps 1 -i "$T/spec.st" -o "$T/x.st"
    assert_one_line_error 1
}

@test "data whose shape does not fit the model: one line, exit 1" {
    init "$T/m.st"
    $PY -c 'import numpy as np; np.save("'"$T"'/d.npy", np.zeros((50, 1, 28, 28), np.float32))'
    run gan-step --data "$T/d.npy" --steps 1 -i "$T/m.st" -o "$T/x.st"
    assert_one_line_error 1
    [[ "$output" == *"1x8x8"* ]]
    $PY -c 'import numpy as np; np.save("'"$T"'/few.npy", np.zeros((3, 1, 8, 8), np.float32))'
    run gan-step --data "$T/few.npy" --steps 1 -i "$T/m.st" -o "$T/x.st"
    assert_one_line_error 1
    [[ "$output" == *batch* ]]
    run gan-step --data "$T/missing.npy" --steps 1 -i "$T/m.st" -o "$T/x.st"
    assert_one_line_error 1
    [ ! -e "$T/x.st" ]
}

@test "bad usage: exit 2, one line naming the option" {
    data 100 u8 "$T/d.npy"
    init "$T/m.st"
    for args in "--steps -1" "--steps abc" "--batch 0" "--n-critic 9" "--log-every 0" "--threads x" \
                "--opt-d adam:lr=-1" "--opt-g rms" "--clip -1" "--augment flip" "--augment cutout,translation"; do
        run gan-step --data "$T/d.npy" -i "$T/m.st" -o "$T/x.st" --steps 1 $args
        assert_one_line_error 2
        opt=${args%% *}
        [[ "$output" == *"$opt"* ]] || { echo "message for $args does not name $opt: $output"; return 1; }
    done
    run gan-step -i "$T/m.st" -o "$T/x.st" --steps 1
    assert_one_line_error 2
    run gan-step --data "$T/d.npy" -i "$T/m.st" -o "$T/x.st"
    assert_one_line_error 2
    run gan-step --data "$T/d.npy" -i "$T/m.st" -o "$T/x.st" --steps 1 --epochs 1
    assert_one_line_error 2
    run gan-step --data "$T/d.npy" -i "$T/m.st" -o "$T/x.st" --steps 1 --frobnicate
    assert_one_line_error 2
    run gan-step --data "$T/d.npy" -i "$T/m.st" -o "$T/x.st" --steps 1 --snapshot-every 5
    assert_one_line_error 2
    run gan-step --data "$T/d.npy" -i "$T/m.st" -o "$T/x.st" --steps 1 --device cuda
    assert_one_line_error 2
    [[ "$output" == *CUDA* ]]
    [ ! -e "$T/x.st" ]
}

@test "R1 and R2, lazily: stored, logged every K-th step, resume exact, 1 and 2 threads identical" {
    run gan-step --help
    for o in --r1 --r2 --reg-every; do [[ "$output" == *"$o"* ]] || { echo "help lacks $o"; return 1; }; done
    data 64 u8 "$T/d.npy"
    init "$T/m0.st" --r1 5 --reg-every 2
    [ "$(meta "$T/m0.st" r1)" = 5 ]
    [ "$(meta "$T/m0.st" reg_every)" = 2 ]
    gan-step -q --data "$T/d.npy" --steps 5 --threads 1 --log "$T/l.tsv" --log-every 1 -i "$T/m0.st" -o "$T/a.st"
    gan-step -q --data "$T/d.npy" --steps 5 --threads 2 -i "$T/m0.st" -o "$T/t2.st"
    cmp "$T/a.st" "$T/t2.st"
    gan-step -q --data "$T/d.npy" --steps 3 -i "$T/m0.st" -o "$T/m3.st"
    [ "$(meta "$T/m3.st" reg_steps)" = 3 ]
    gan-step -q --data "$T/d.npy" --steps 2 -i "$T/m3.st" -o "$T/b.st"
    cmp "$T/a.st" "$T/b.st"
    [ "$(meta "$T/a.st" reg_steps)" = 5 ]
    # the penalty (gp column) on D updates 1, 3, 5, none on 2 and 4
    run $PY -c '
import sys
rows = [l.split("\t") for l in open(sys.argv[1])][1:]
assert [float(r[6]) > 0 for r in rows] == [True, False, True, False, True], rows' "$T/l.tsv"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    # an override is said and stored; the penalty changes the weights
    run gan-step -q --data "$T/d.npy" --steps 1 --r2 1 --reg-every 1 -i "$T/m3.st" -o "$T/c.st"
    [ "$status" -eq 0 ]
    [[ "$output" == *"r2 0 -> 1"* && "$output" == *"reg_every 2 -> 1"* ]]
    [ "$(meta "$T/c.st" r2)" = 1 ]
    ! meta "$T/c.st" reg_every 2>/dev/null # the default is not stored
    gan-step -q --data "$T/d.npy" --steps 1 --r1 0 -i "$T/m3.st" -o "$T/d.st"
    ! cmp -s "$T/c.st" "$T/d.st"
}

@test "R1 and R2: bad values and a critic without a double backward are usage errors" {
    data 64 u8 "$T/d.npy"
    init "$T/m.st"
    for args in "--r1 -1" "--r2 x" "--reg-every 0"; do
        run gan-step --data "$T/d.npy" -i "$T/m.st" -o "$T/x.st" --steps 1 $args
        assert_one_line_error 2
        opt=${args%% *}
        [[ "$output" == *"$opt"* ]] || { echo "message for $args does not name $opt: $output"; return 1; }
    done
    gan-init --G "$G_SMALL" --D 'flatten; linear 32; bn; lrelu 0.2; linear 1' --shape 1x8x8 --z 8 --batch 16 \
        -o "$T/bn.st"
    run gan-step --data "$T/d.npy" -i "$T/bn.st" -o "$T/x.st" --steps 1 --r1 1
    assert_one_line_error 2
    [[ "$output" == *"--r1"*"bn"* ]]
    [ ! -e "$T/x.st" ]
}


# inspect_py CODE ARGS...: a Python check of a dump or log, numpy imported as np
inspect_py() {
    local code=$1; shift
    run $PY -c "import sys, numpy as np
$code" "$@"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
}

@test "--dump-step N --dump-dir DIR: every tensor of step N with a manifest; the weights are bit-identical" {
    run gan-step --help
    for o in --dump-step --dump-dir --log-layers; do [[ "$output" == *"$o"* ]] || { echo "help lacks $o"; return 1; }; done
    data 64 u8 "$T/d.npy"
    init "$T/m0.st" --loss wgan-gp --n-critic 2 --r1 0.5
    gan-step -q --data "$T/d.npy" --steps 3 --dump-step 2 --dump-dir "$T/dump" < "$T/m0.st" > "$T/a.st"
    gan-step -q --data "$T/d.npy" --steps 3 < "$T/m0.st" > "$T/b.st"
    cmp "$T/a.st" "$T/b.st"
    run cut -f2 "$T/dump/manifest.tsv"
    for p in before dstep gstep dstep1_real dstep1_G dstep1_fake dstep1_gp dstep1_r1 dstep2_real dstep2_fake gstep_D gstep_G; do
        [[ " ${lines[*]} " == *" $p "* ]] || { echo "no phase $p"; return 1; }
    done
    # every file is listed, every listed file is there with the listed shape
    inspect_py '
import os
d = sys.argv[1]
rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(d, "manifest.tsv"))][1:]
assert sorted(r[0] for r in rows) == sorted(f for f in os.listdir(d) if f != "manifest.tsv")
for r in rows:
    a = np.load(os.path.join(d, r[0]))
    assert a.dtype == np.float32 and "x".join(map(str, a.shape)) == r[6], r
have = {r[0] for r in rows}
for f in ("real.npy", "fake.npy", "z.npy", "dstep1_real.D.input.npy", "gstep_D.D.input.grad.npy",
          "gstep_G.G.0.grad.npy", "grad.G.0.weight.npy", "grad.D.4.bias.npy", "param.D.1.weight.npy"):
    assert f in have, f
assert np.array_equal(np.load(os.path.join(d, "fake.npy")), np.load(os.path.join(d, "dstep2_G.G.4.npy")))' "$T/dump"
    tensor-info "$T/dump/gstep_D.D.input.grad.npy" | grep -q 'shape   16x1x8x8'
}

@test "--dump-step: bad usage and a used DIR are one line, exit 2; a step the run does not reach dumps nothing" {
    data 64 u8 "$T/d.npy"
    init "$T/m0.st"
    run gan-step --data "$T/d.npy" --steps 2 --dump-step 1 -i "$T/m0.st" -o "$T/x.st"
    assert_one_line_error 2
    run gan-step --data "$T/d.npy" --steps 2 --dump-step 3 --dump-dir "$T/dd" -i "$T/m0.st" -o "$T/x.st"
    assert_one_line_error 2
    [[ "$output" == *"steps 1..2"* ]]
    run gan-step --data "$T/d.npy" --steps 2 --log-layers -i "$T/m0.st" -o "$T/x.st"
    assert_one_line_error 2
    mkdir "$T/used" && touch "$T/used/a"
    run gan-step --data "$T/d.npy" --steps 2 --dump-step 1 --dump-dir "$T/used" -i "$T/m0.st" -o "$T/x.st"
    assert_one_line_error 2
    [[ "$output" == *"not empty"* ]]
    [ ! -e "$T/x.st" ]
}

@test "--log-layers: per-layer activation and gradient columns, documented names; the weights are bit-identical; other columns are not appended" {
    data 64 u8 "$T/d.npy"
    init "$T/m0.st"
    gan-step -q --data "$T/d.npy" --steps 4 --log "$T/l.tsv" --log-every 2 --log-layers < "$T/m0.st" > "$T/a.st"
    gan-step -q --data "$T/d.npy" --steps 4 < "$T/m0.st" > "$T/b.st"
    cmp "$T/a.st" "$T/b.st"
    inspect_py '
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
h = rows[0]
assert len(rows) == 3 and all(len(r) == len(h) for r in rows), [len(r) for r in rows]
want = ["G.0.act_mean", "G.0.act_std", "G.0.grad_norm", "G.1.act_mean", "G.4.act_std",
        "D.0.act_mean_real", "D.0.act_std_fake", "D.1.grad_norm", "D.3.act_mean_fake", "D.4.grad_norm"]
for w in want:
    assert w in h, w
assert "G.1.grad_norm" not in h and "D.0.grad_norm" not in h   # no parameters
v = {k: float(x) for k, x in zip(h, rows[2])}
assert v["G.4.act_std"] > 0 and -1 <= v["G.4.act_mean"] <= 1 and v["D.1.grad_norm"] > 0
assert all(np.isfinite(list(v.values())))
' "$T/l.tsv"
    # appending rows of other columns is refused before anything is written
    cp "$T/l.tsv" "$T/l0.tsv"
    run gan-step -q --data "$T/d.npy" --steps 1 --log "$T/l.tsv" -i "$T/a.st" -o "$T/c.st"
    [ "$status" -eq 2 ] && [[ "$output" == *"l.tsv: its header names other columns than this run writes"* ]] || { echo "$output"; return 1; }
    cmp "$T/l.tsv" "$T/l0.tsv"
    [ ! -e "$T/c.st" ] && [ -z "$(ls "$T" | grep -v '^[abd]\.\(st\|npy\)$\|^m0\.st$\|^l0\?\.tsv$')" ]
    gan-step -q --data "$T/d.npy" --steps 1 --log "$T/l.tsv" --log-every 1 --log-layers -i "$T/a.st" -o "$T/c.st"
    [ "$(wc -l < "$T/l.tsv")" -eq 4 ]
}

# evalcol FILE STEP: the eval_* column of the log row of STEP
evalcol() { awk -F'\t' -v s="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i ~ /^eval_/) c = i } NR > 1 && $1 == s { print $c }' "$1"; }

@test "--eval-every: the log's score is gan-sample -n K + gan-fid's; weights bit-identical; --keep-best keeps the best step" {
    data 100 u8 "$T/d.npy"
    init "$T/m0.st" --ema 0.9
    gan-fid -q --features pixels --save-stats "$T/ref.npz" "$T/d.npy"
    E="--eval-every 3 --eval-ref $T/ref.npz --eval-features pixels --eval-n 40"
    run gan-step --data "$T/d.npy" --steps 10 $E --log "$T/l.tsv" --log-every 5 --keep-best "$T/best.st" \
        --snapshot-every 3 --snapshot-dir "$T/snap" -i "$T/m0.st" -o "$T/a.st"
    [ "$status" -eq 0 ]
    [[ "$output" == *"FD(pixels) "*"(best "* ]]       # the progress line shows the score
    gan-step -q --data "$T/d.npy" --steps 10 -i "$T/m0.st" -o "$T/b.st"
    cmp "$T/a.st" "$T/b.st"                             # evaluation leaves the training alone
    [ "$(head -1 "$T/l.tsv" | cut -f12)" = eval_fd ]
    [ "$(cut -f1 "$T/l.tsv" | tail -n +2 | tr '\n' ' ')" = "3 5 6 9 10 " ]   # log rows and scored steps
    [ "$(evalcol "$T/l.tsv" 5)" = nan ]
    best= bs=
    for s in 3 6 9; do
        gan-sample -n 40 --batch 16 -i "$T/snap/step-00000$s.st" -o "$T/s.npy" 2>/dev/null
        want=$(gan-fid -q --features pixels "$T/ref.npz" "$T/s.npy")
        [ "$want" = "FD(pixels) $(evalcol "$T/l.tsv" $s)" ] || { echo "step $s: $want vs log"; return 1; }
        v=${want#FD(pixels) }
        if [ -z "$best" ] || $PY -c "import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))" "$v" "$best"; then
            best=$v bs=$s
        fi
    done
    [ "$(meta "$T/best.st" eval_step)" = "$bs" ]
    [ "$(meta "$T/best.st" step)" = "$bs" ]
    [ "$(meta "$T/best.st" eval_score)" = "$best" ]
    [ "$(meta "$T/best.st" eval_features)" = pixels ]
    gan-sample -n 8 -i "$T/best.st" -o "$T/x1.npy" 2>/dev/null
    gan-sample -n 8 -i "$T/snap/step-00000$bs.st" -o "$T/x2.npy" 2>/dev/null
    cmp "$T/x1.npy" "$T/x2.npy"
}

@test "--eval-metric kid against images; a resumed run keeps the same best file and scores" {
    data 100 u8 "$T/d.npy"
    init "$T/m0.st" --ema 0.9
    E="--eval-every 2 --eval-ref $T/d.npy --eval-features pixels --eval-n 30 --eval-metric kid"
    gan-step -q --data "$T/d.npy" --steps 7 $E --keep-best "$T/k1.st" --log "$T/l1.tsv" -i "$T/m0.st" -o "$T/a.st"
    gan-step -q --data "$T/d.npy" --steps 3 $E --keep-best "$T/k2.st" --log "$T/l2.tsv" -i "$T/m0.st" -o "$T/h.st"
    gan-step -q --data "$T/d.npy" --steps 4 $E --keep-best "$T/k2.st" --log "$T/l2.tsv" -i "$T/h.st" -o "$T/b.st"
    cmp "$T/a.st" "$T/b.st"
    cmp "$T/k1.st" "$T/k2.st"
    for s in 2 4 6; do [ "$(evalcol "$T/l1.tsv" $s)" = "$(evalcol "$T/l2.tsv" $s)" ]; done
    gan-step -q --data "$T/d.npy" --steps 2 -i "$T/m0.st" -o "$T/m2.st"
    gan-sample -n 30 --batch 16 -i "$T/m2.st" -o "$T/s.npy" 2>/dev/null
    run gan-fid -q --features pixels --kid "$T/d.npy" "$T/s.npy"
    [[ "${lines[1]}" == "KD(pixels) $(evalcol "$T/l1.tsv" 2) std "* ]]
    # a kept file from another evaluation is not silently overwritten
    run gan-step -q --data "$T/d.npy" --steps 2 --eval-every 2 --eval-ref "$T/d.npy" --eval-features pixels \
        --eval-n 30 --keep-best "$T/k1.st" -i "$T/m0.st" -o "$T/x.st"
    assert_one_line_error 1
    [[ "$output" == *"eval_metric"* ]]
    cmp "$T/k1.st" "$T/k2.st"
}

@test "--eval-every errors: one line, nothing written" {
    data 64 u8 "$T/d.npy"
    init "$T/m0.st"
    gan-fid -q --features pixels --save-stats "$T/ref.npz" "$T/d.npy"
    $PY -c 'import numpy as np; np.save("'"$T"'/small.npy", np.zeros((4, 1, 4, 4), np.uint8) + np.arange(4, dtype=np.uint8).reshape(4, 1, 1, 1))'
    gan-fid -q --features pixels --save-stats "$T/small.npz" "$T/small.npy"
    for args in "--keep-best $T/b.st" "--eval-ref $T/ref.npz" "--eval-every 2" "--eval-every 2 --eval-ref $T/ref.npz --eval-metric mmd" \
                "--eval-every 0 --eval-ref $T/ref.npz" "--eval-every 2 --eval-ref $T/ref.npz --eval-resize bicubic" \
                "--eval-every 2 --eval-ref $T/ref.npz --eval-features pixels --eval-resize clean"; do
        run gan-step --data "$T/d.npy" --steps 2 $args -i "$T/m0.st" -o "$T/x.st"
        assert_one_line_error 2
    done
    for args in "--eval-ref $T/missing.npz" "--eval-ref $T/small.npz" "--eval-ref $T/small.npy" \
                "--eval-ref $T/ref.npz --eval-metric kid" "--eval-ref $T/ref.npz --eval-features inception --eval-weights $T/none.st"; do
        run gan-step --data "$T/d.npy" --steps 2 --eval-every 1 --eval-features pixels $args -i "$T/m0.st" -o "$T/x.st"
        assert_one_line_error 1
    done
    run gan-step --data "$T/d.npy" --steps 2 --eval-every 1 --eval-features pixels --eval-ref "$T/small.npz" -i "$T/m0.st" -o "$T/x.st"
    [[ "$output" == *"16 features"*"gives 64"* ]]
    [ ! -e "$T/x.st" ] && [ ! -e "$T/b.st" ]
}
