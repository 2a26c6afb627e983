#!/usr/bin/env bats
# The classic tutorials' training options (lib/gan/tricks.h): instance noise on D's inputs,
# label flipping and two-sided smoothing, learning-rate schedules.
# Each: stored in the checkpoint (absent when off, so other checkpoints keep their bytes),
# exact resume, --threads 1 and 2 identical, an override said and stored, bad values refused.
# Their numbers are checked against torch in tests/ref/test_train_torch.py.
load helper

G_SMALL='linear 32; lrelu 0.2; linear 64; tanh; reshape 1x8x8'
D_SMALL='flatten; linear 32; lrelu 0.2; dropout 0.2; linear 1'

meta() {
    $PY -c '
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
print(json.loads(b[8:8 + n])["__metadata__"].get(sys.argv[2], "absent"))' "$1" "$2"
}

# data FILE: 80 random uint8 images 1 x 8 x 8
data() {
    $PY -c '
import sys, numpy as np
np.save(sys.argv[1], np.random.default_rng(8).integers(0, 256, size=(80, 1, 8, 8)).astype(np.uint8))' "$1"
}

init() {
    local f=$1; shift
    gan-init --G "$G_SMALL" --D "$D_SMALL" --shape 1x8x8 --z 8 --batch 16 --seed 4 "$@" -o "$f"
}

# same_tensors A B: checkpoints A and B hold the same tensors, byte for byte
same_tensors() {
    $PY - "$1" "$2" <<'PY'
import json, struct, sys
def tensors(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
assert a == b, [k for k in a if a[k] != b.get(k)]
PY
}

# same_runs M0 STEPS SPLIT: STEPS steps from M0 with 1 thread, with 2 threads, and SPLIT then
# STEPS - SPLIT steps through a checkpoint are the same bytes; leaves $T/a.st
same_runs() {
    gan-step -q --data "$T/d.npy" --steps "$2" --threads 1 -i "$1" -o "$T/a.st"
    gan-step -q --data "$T/d.npy" --steps "$2" --threads 2 -i "$1" -o "$T/b.st"
    gan-step -q --data "$T/d.npy" --steps "$3" --threads 2 -i "$1" -o "$T/half.st"
    gan-step -q --data "$T/d.npy" --steps $(($2 - $3)) --threads 1 -i "$T/half.st" -o "$T/c.st"
    cmp "$T/a.st" "$T/b.st"
    cmp "$T/a.st" "$T/c.st"
}

@test "--instance-noise: stored, resume exact across the annealing's end, 1 and 2 threads identical" {
    data "$T/d.npy"
    init "$T/plain.st"
    [ "$(meta "$T/plain.st" instance_noise)" = absent ]
    init "$T/m0.st" --instance-noise 0.5 --instance-noise-steps 4 --augment translation --r1 1
    [ "$(meta "$T/m0.st" instance_noise)" = 0.5 ]
    [ "$(meta "$T/m0.st" instance_noise_steps)" = 4 ]
    run tensor-info "$T/m0.st"
    [[ "$output" == *"instance_noise "*"0.5"* && "$output" == *"instance_noise_steps"*"4"* ]]
    same_runs "$T/m0.st" 6 3
    gan-step -q --data "$T/d.npy" --steps 6 --instance-noise 0 -i "$T/m0.st" -o "$T/off.st"
    ! cmp -s "$T/a.st" "$T/off.st"
    [ "$(meta "$T/off.st" instance_noise)" = absent ]
    # after step 4 the noise has annealed away: steps 4..5 are those of a run without it
    gan-step -q --data "$T/d.npy" --steps 4 -i "$T/m0.st" -o "$T/m4.st"
    gan-step -q --data "$T/d.npy" --steps 2 --instance-noise 0 -i "$T/m4.st" -o "$T/e.st"
    gan-step -q --data "$T/d.npy" --steps 2 --instance-noise 0.5 -i "$T/m4.st" -o "$T/f.st"
    same_tensors "$T/e.st" "$T/f.st"
}

@test "--instance-noise overrides are said and stored; bad values are usage errors" {
    data "$T/d.npy"
    init "$T/m.st"
    run gan-step --data "$T/d.npy" --steps 1 --instance-noise 0.1 --instance-noise-steps 100 --in-place "$T/m.st"
    [ "$status" -eq 0 ]
    [[ "$output" == *"instance noise 0 -> 0.1"* && "$output" == *"instance noise steps 0 -> 100"* ]]
    [ "$(meta "$T/m.st" instance_noise)" = 0.1 ]
    run gan-init --arch mlp --shape 1x8x8 --instance-noise -1
    assert_one_line_error 2
    [[ "$output" == *"--instance-noise"* ]]
    run gan-step --data "$T/d.npy" --steps 1 --instance-noise-steps x -i "$T/m.st"
    assert_one_line_error 2
}

@test "--label-flip, --label-smooth-fake: stored, resume exact, 1 and 2 threads identical, each changes training" {
    data "$T/d.npy"
    init "$T/plain.st"
    [ "$(meta "$T/plain.st" label_flip)" = absent ]
    [ "$(meta "$T/plain.st" label_smooth_fake)" = absent ]
    init "$T/m0.st" --n-critic 2 --label-flip 0.2 --label-smooth 0.1 --label-smooth-fake 0.05
    [ "$(meta "$T/m0.st" label_flip)" = 0.2 ]
    [ "$(meta "$T/m0.st" label_smooth_fake)" = 0.05 ]
    run tensor-info "$T/m0.st"
    [[ "$output" == *"label_flip"*"0.2"* && "$output" == *"label_smooth_fake"*"0.05"* ]]
    same_runs "$T/m0.st" 4 1
    gan-step -q --data "$T/d.npy" --steps 4 --label-flip 0 -i "$T/m0.st" -o "$T/noflip.st"
    gan-step -q --data "$T/d.npy" --steps 4 --label-smooth-fake 0 -i "$T/m0.st" -o "$T/onesided.st"
    ! cmp -s "$T/a.st" "$T/noflip.st"
    ! cmp -s "$T/a.st" "$T/onesided.st"
    [ "$(meta "$T/noflip.st" label_flip)" = absent ]
}

@test "--label-flip and --label-smooth-fake: said when overridden; other losses and bad values are refused" {
    data "$T/d.npy"
    init "$T/m.st"
    run gan-step --data "$T/d.npy" --steps 1 --label-flip 0.1 --label-smooth-fake 0.2 --in-place "$T/m.st"
    [ "$status" -eq 0 ]
    [[ "$output" == *"label flipping 0 -> 0.1"* && "$output" == *"fake label smoothing 0 -> 0.2"* ]]
    run gan-init --arch mlp --shape 1x8x8 --loss hinge --label-flip 0.1
    assert_one_line_error 2
    [[ "$output" == *"need the bce or ns loss, not hinge"* ]]
    init "$T/w.st" --loss wgan
    run gan-step --data "$T/d.npy" --steps 1 --label-smooth-fake 0.1 -i "$T/w.st" -o "$T/x.st"
    assert_one_line_error 2
    [[ "$output" == *"need the bce or ns loss, not wgan"* ]]
    [ ! -e "$T/x.st" ]
    run gan-init --arch mlp --shape 1x8x8 --label-flip 1.5
    assert_one_line_error 2
    [[ "$output" == *"--label-flip"* ]]
}

@test "--lr-schedule: stored per optimizer, resume exact mid-schedule, 1 and 2 threads identical" {
    data "$T/d.npy"
    init "$T/plain.st"
    [ "$(meta "$T/plain.st" lr_schedule_G)" = absent ]
    init "$T/m0.st" --lr-schedule cosine:5 --lr-schedule-d step:2:0.5
    [ "$(meta "$T/m0.st" lr_schedule_G)" = cosine:5 ]
    [ "$(meta "$T/m0.st" lr_schedule_D)" = step:2:0.5 ]
    run tensor-info "$T/m0.st"
    [[ "$output" == *"lr_schedule_G"*"cosine:5"* && "$output" == *"lr_schedule_D"*"step:2:0.5"* ]]
    same_runs "$T/m0.st" 5 2
    gan-step -q --data "$T/d.npy" --steps 5 --lr-schedule-g constant -i "$T/m0.st" -o "$T/const.st"
    ! cmp -s "$T/a.st" "$T/const.st"
    [ "$(meta "$T/const.st" lr_schedule_G)" = absent ]
    [ "$(meta "$T/const.st" lr_schedule_D)" = step:2:0.5 ]
    # linear:2 brings both learning rates to 0 from step 2 on: with SGD nothing moves any more
    init "$T/s0.st" --opt-g sgd:lr=0.1 --opt-d sgd:lr=0.1 --lr-schedule linear:2
    gan-step -q --data "$T/d.npy" --steps 2 -i "$T/s0.st" -o "$T/s2.st"
    gan-step -q --data "$T/d.npy" --steps 2 -i "$T/s2.st" -o "$T/s4.st"
    ! same_tensors "$T/s0.st" "$T/s2.st"
    same_tensors "$T/s2.st" "$T/s4.st"
}

@test "--lr-schedule: overrides said; bad schedules are usage errors naming the option" {
    data "$T/d.npy"
    init "$T/m.st"
    run gan-step --data "$T/d.npy" --steps 1 --lr-schedule linear:100 --lr-schedule-d step:10:0.9 --in-place "$T/m.st"
    [ "$status" -eq 0 ]
    [[ "$output" == *"G lr schedule constant -> linear:100"* && "$output" == *"D lr schedule constant -> step:10:0.9"* ]]
    [ "$(meta "$T/m.st" lr_schedule_D)" = step:10:0.9 ]
    for bad in foo linear linear:0 cosine:1.5 step:3 step:3:0 step:3:2; do
        run gan-init --arch mlp --shape 1x8x8 --lr-schedule-g "$bad"
        assert_one_line_error 2
        [[ "$output" == *"--lr-schedule-g"* ]]
    done
}
