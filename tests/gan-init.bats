#!/usr/bin/env bats
# gan-init: checkpoints from presets and specs, their schema, determinism, and bad input.
load helper

G_SMALL='linear 32; lrelu 0.2; linear 64; tanh; reshape 1x8x8'
D_SMALL='flatten; linear 32; lrelu 0.2; linear 1'

# meta FILE KEY: print a metadata value of a safetensors file
meta() {
    $PY -c '
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
print(json.loads(b[8:8 + n])["__metadata__"][sys.argv[2]])' "$1" "$2"
}

# names FILE: tensor names and shapes, one per line
names() {
    $PY -c '
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
for k, v in h.items():
    if k != "__metadata__":
        print(k, v["dtype"], "x".join(map(str, v["shape"])))' "$1"
}

@test "gan-init --help shows the synopsis, every option and an example; --version" {
    run gan-init --help
    [ "$status" -eq 0 ]
    for o in --arch --G --D --like --shape --z --loss --opt-g --opt-d --n-critic --gp --clip \
             --label-smooth --ema --init --seed --batch --threads --device; do
        [[ "$output" == *"$o"* ]] || { echo "help lacks $o"; return 1; }
    done
    [[ "$output" == *"example"* ]]
    run gan-init --version
    [ "$status" -eq 0 ]
    [[ "$output" == gan-init* ]]
}

@test "a checkpoint from specs has the documented metadata and torch-named tensors" {
    gan-init --G "$G_SMALL" --D "$D_SMALL" --shape 1x8x8 --z 16 --seed 3 --ema 0.999 -o "$T/m.st"
    [ "$(meta "$T/m.st" format)" = gan-tools-checkpoint ]
    [ "$(meta "$T/m.st" version)" = 1 ]
    [ "$(meta "$T/m.st" shape)" = 1x8x8 ]
    [ "$(meta "$T/m.st" z_dim)" = 16 ]
    [ "$(meta "$T/m.st" loss)" = ns ]
    [ "$(meta "$T/m.st" step)" = 0 ]
    [ "$(meta "$T/m.st" seed)" = 3 ]
    [ "$(meta "$T/m.st" batch)" = 64 ]
    [ "$(meta "$T/m.st" init)" = torch ]
    [[ "$(meta "$T/m.st" opt_G)" == adam:lr=0.0002,b1=0.5,b2=0.999* ]]
    [ "$(meta "$T/m.st" G_spec)" = "$G_SMALL" ]
    run names "$T/m.st"
    [[ "$output" == *"G.0.weight F32 32x16"* ]]
    [[ "$output" == *"G.2.weight F32 64x32"* ]]
    [[ "$output" == *"D.1.weight F32 32x64"* ]]
    [[ "$output" == *"D.3.bias F32 1"* ]]
    [[ "$output" == *"G_ema.2.bias F32 64"* ]]
    [[ "$output" == *"opt_G.exp_avg F32 2656"* ]]   # 16*32+32 + 32*64+64
    [[ "$output" == *"opt_D.exp_avg_sq F32 2113"* ]] # 64*32+32 + 32+1
}

@test "loss defaults: wgan uses rmsprop, 5 critic steps and clipping; wgan-gp preset uses wgan-gp" {
    gan-init --G "$G_SMALL" --D "$D_SMALL" --shape 1x8x8 --loss wgan -o "$T/w.st"
    [[ "$(meta "$T/w.st" opt_D)" == rmsprop:lr=5e-05* ]]
    [ "$(meta "$T/w.st" n_critic)" = 5 ]
    [ "$(meta "$T/w.st" clip)" = 0.01 ]
    run gan-init --arch wgan-gp --shape 1x28x28 -o "$T/gp.st"
    if [ "$status" -eq 0 ]; then
        [ "$(meta "$T/gp.st" loss)" = wgan-gp ]
        [[ "$(meta "$T/gp.st" opt_G)" == adam:lr=0.0001,b1=0,b2=0.9* ]]
        [ "$(meta "$T/gp.st" n_critic)" = 5 ]
        [ "$(meta "$T/gp.st" init)" = dcgan ]
    else
        echo "wgan-gp preset failed: $output"; return 1
    fi
}

@test "presets mlp and dcgan build for 1x28x28 taken from --like" {
    $PY -c 'import numpy as np; np.save("'"$T"'/d.npy", np.zeros((5, 1, 28, 28), np.uint8))'
    gan-init --arch mlp --like "$T/d.npy" -o "$T/mlp.st"
    [ "$(meta "$T/mlp.st" shape)" = 1x28x28 ]
    [ "$(meta "$T/mlp.st" z_dim)" = 100 ]
    gan-init --arch dcgan --like "$T/d.npy" -o "$T/dc.st"
    run names "$T/dc.st"
    [[ "$output" == *"G.0.weight F32 12544x100"* ]]
    [[ "$output" == *"G.1.running_var F32 12544"* ]]
    [[ "$output" == *"G.1.num_batches_tracked I64 "* ]]
    [[ "$output" == *"G.4.weight F32 256x128x4x4"* ]]
    [[ "$output" == *"D.0.weight F32 64x1x4x4"* ]]
}

@test "the same seed gives the same bytes; another seed other weights" {
    gan-init --G "$G_SMALL" --D "$D_SMALL" --shape 1x8x8 --seed 5 > "$T/a.st"
    gan-init --G "$G_SMALL" --D "$D_SMALL" --shape 1x8x8 --seed 5 -o "$T/b.st"
    cmp "$T/a.st" "$T/b.st"
    gan-init --G "$G_SMALL" --D "$D_SMALL" --shape 1x8x8 --seed 6 -o "$T/c.st"
    ! cmp -s "$T/a.st" "$T/c.st"
}

@test "unknown preset: one line, exit 2, no output file left" {
    run gan-init --arch resnet --shape 1x28x28 -o "$T/x.st"
    assert_one_line_error 2
    [[ "$output" == "gan-init: "*resnet* ]]
    [ -z "$(ls "$T")" ]
}

@test "a spec with a mistake: one line naming the layer, exit 2" {
    run gan-init --G 'linear 32; bogus 3; linear 64; tanh; reshape 1x8x8' --D "$D_SMALL" --shape 1x8x8
    assert_one_line_error 2
    [[ "$output" == *"layer 2"* ]]
    run gan-init --G "$G_SMALL" --D 'flatten; linear abc; linear 1' --shape 1x8x8
    assert_one_line_error 2
    [[ "$output" == *"D"* ]]
}

@test "a generator that does not fit the data, a D that is not one logit: exit 2" {
    run gan-init --G 'linear 50; reshape 2x5x5' --D "$D_SMALL" --shape 1x8x8
    assert_one_line_error 2
    [[ "$output" == *expected* ]]
    run gan-init --G "$G_SMALL" --D 'flatten; linear 3' --shape 1x8x8
    assert_one_line_error 2
    [[ "$output" == *logit* ]]
    run gan-init --arch dcgan --shape 1x30x30
    assert_one_line_error 2
    [[ "$output" == *divisible* ]]
}

@test "bad option values say which option, exit 2" {
    for args in "--z abc" "--z 0" "--n-critic 9" "--loss foo" "--opt-g adm:lr=1" "--opt-d adam:beta=1" \
                "--opt-g adam:lr=x" "--init foo" "--seed -1" "--batch 0" "--ema 1.5" "--gp -1" "--threads x" \
                "--device tpu"; do
        run gan-init --G "$G_SMALL" --D "$D_SMALL" --shape 1x8x8 $args
        assert_one_line_error 2
        opt=${args%% *}
        [[ "$output" == *"$opt"* ]] || { echo "message for $args does not name $opt: $output"; return 1; }
    done
    run gan-init --G "$G_SMALL" --D "$D_SMALL" --shape 1x8
    assert_one_line_error 2
    run gan-init --G "$G_SMALL" --D "$D_SMALL" --shape 1x8x8 --bogus
    assert_one_line_error 2
    run gan-init --G "$G_SMALL" --D "$D_SMALL"
    assert_one_line_error 2
    run gan-init --arch mlp --G "$G_SMALL" --D "$D_SMALL" --shape 1x8x8
    assert_one_line_error 2
}

@test "--like with a file that is not image data: exit 1, one line" {
    echo "hello" > "$T/t.npy"
    run gan-init --arch mlp --like "$T/t.npy"
    assert_one_line_error 1
    $PY -c 'import numpy as np; np.save("'"$T"'/v.npy", np.zeros((5, 784), np.float32))'
    run gan-init --arch mlp --like "$T/v.npy"
    assert_one_line_error 1
    run gan-init --arch mlp --like "$T/missing.npy"
    assert_one_line_error 1
}

@test "--device cuda in a CPU build is a clear error" {
    run gan-init --G "$G_SMALL" --D "$D_SMALL" --shape 1x8x8 --device cuda -o "$T/m.st"
    if [ "$status" -ne 0 ]; then
        assert_one_line_error 2
        [[ "$output" == *CUDA* ]]
    fi
}

@test "--r1, --r2, --reg-every: in --help, stored only when set, checked; a BatchNorm critic refused" {
    run gan-init --help
    for o in --r1 --r2 --reg-every; do [[ "$output" == *"$o"* ]] || { echo "help lacks $o"; return 1; }; done
    gan-init --G "$G_SMALL" --D "$D_SMALL" --shape 1x8x8 -o "$T/off.st"
    run meta "$T/off.st" r1
    [ "$status" -ne 0 ] # off: not in the file, which stays as before
    gan-init --G "$G_SMALL" --D "$D_SMALL" --shape 1x8x8 --r1 10 --r2 0.5 --reg-every 4 -o "$T/on.st"
    [ "$(meta "$T/on.st" r1)" = 10 ]
    [ "$(meta "$T/on.st" r2)" = 0.5 ]
    [ "$(meta "$T/on.st" reg_every)" = 4 ]
    for args in "--r1 -1" "--r2 nan" "--reg-every 0" "--reg-every 1.5"; do
        run gan-init --G "$G_SMALL" --D "$D_SMALL" --shape 1x8x8 $args
        assert_one_line_error 2
        opt=${args%% *}
        [[ "$output" == *"$opt"* ]] || { echo "message for $args does not name $opt: $output"; return 1; }
    done
    run gan-init --G "$G_SMALL" --D 'flatten; linear 32; bn; lrelu 0.2; linear 1' --shape 1x8x8 --r1 1 -o "$T/x.st"
    assert_one_line_error 2
    [[ "$output" == *"r1"*"bn"* ]]
    [ ! -e "$T/x.st" ]
}
