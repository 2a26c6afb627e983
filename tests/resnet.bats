#!/usr/bin/env bats
# Residual networks end to end (lib/nn/spec.md, "Residual blocks"; sumpool): a tiny ResNet GAN
# resumes bit for bit (WGAN-GP's tangent passes and dropout inside a critic block; cbn inside
# generator blocks with labels), trains the same on 1 and 2 threads, the spec.md examples build,
# checkpoints name the blocks' tensors after the torch module tree, a block whose paths
# disagree is one line naming the block, and the sngan and csngan presets show their spec text
# and settings and resume exactly.
load helper

G_RES='linear 32; reshape 8x2x2
block { bn; relu; upsample 2; conv 4 k3 p1; bn; relu; conv 4 k3 p1 } skip { upsample 2; conv 4 k1 }
block { bn; relu; upsample 2; conv 4 k3 p1 } skip { upsample 2 }
bn; relu; conv 1 k3 p1; tanh'
D_RES='block { conv 4 k3 p1; relu; conv 4 k3 p1; avgpool k2 } skip { conv 4 k1; avgpool k2 }
block { relu; dropout 0.2; conv 4 k3 p1 }; relu; sumpool; linear 1'

# data N FILE: N random 1x8x8 uint8 images; labels in [0, 3) beside it (FILE.labels.npy)
data() {
    $PY -c '
import sys, numpy as np
n, path = int(sys.argv[1]), sys.argv[2]
r = np.random.default_rng(n)
np.save(path, r.integers(0, 256, size=(n, 1, 8, 8)).astype(np.uint8))
np.save(path + ".labels.npy", r.integers(0, 3, size=n).astype(np.int64))' "$@"
}

names() {
    $PY -c '
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
print(" ".join(k for k in json.loads(b[8:8 + n]) if k != "__metadata__"))' "$1"
}

@test "a ResNet WGAN-GP resumes exactly: 4 steps equal 1 then 3, bit for bit" {
    data 48 "$T/d.npy"
    gan-init --G "$G_RES" --D "$D_RES" --shape 1x8x8 --z 6 --batch 8 --seed 3 --loss wgan-gp --n-critic 2 \
        --ema 0.9 -o "$T/m0.st"
    gan-step -q --data "$T/d.npy" --steps 4 -i "$T/m0.st" -o "$T/a.st"
    gan-step -q --data "$T/d.npy" --steps 1 -i "$T/m0.st" -o "$T/m1.st"
    gan-step -q --data "$T/d.npy" --steps 3 -i "$T/m1.st" -o "$T/b.st"
    cmp "$T/a.st" "$T/b.st"
    ! cmp -s "$T/a.st" "$T/m1.st"
    n=$(names "$T/a.st")
    for k in G.2.main.0.running_mean G.2.main.0.num_batches_tracked G.2.skip.1.weight G.3.main.3.weight \
             G_ema.2.skip.1.bias D.0.main.2.weight D.0.skip.0.bias D.1.main.2.weight D.4.weight; do
        [[ " $n " == *" $k "* ]] || { echo "no $k in: $n"; return 1; }
    done
}

@test "a conditional ResNet (cbn inside generator blocks) resumes exactly" {
    data 48 "$T/d.npy"
    G='linear 32; reshape 8x2x2
block { cbn 3; relu; upsample 2; conv 4 k3 p1; cbn 3; relu; conv 4 k3 p1 } skip { upsample 2; conv 4 k1 }
block { cbn 3; relu; upsample 2; conv 4 k3 p1 } skip { upsample 2 }; bn; relu; conv 1 k3 p1; tanh'
    gan-init --G "$G" --D "${D_RES/linear 1/proj 3}" --shape 1x8x8 --z 6 --batch 8 --seed 3 --classes 3 \
        -o "$T/m0.st"
    gan-step -q --data "$T/d.npy" --labels "$T/d.npy.labels.npy" --steps 3 -i "$T/m0.st" -o "$T/a.st"
    gan-step -q --data "$T/d.npy" --labels "$T/d.npy.labels.npy" --steps 2 -i "$T/m0.st" -o "$T/m2.st"
    gan-step -q --data "$T/d.npy" --labels "$T/d.npy.labels.npy" --steps 1 -i "$T/m2.st" -o "$T/b.st"
    cmp "$T/a.st" "$T/b.st"
    gan-sample -n 4 --class 2 -o "$T/s.npy" < "$T/a.st"
}

@test "a ResNet GAN: --threads 1 and --threads 2 give identical weights" {
    data 64 "$T/d.npy"
    gan-init --G "$G_RES" --D "$D_RES" --shape 1x8x8 --z 6 --batch 32 --seed 5 -o "$T/m0.st"
    gan-step -q --data "$T/d.npy" --steps 2 --threads 1 -i "$T/m0.st" -o "$T/t1.st"
    gan-step -q --data "$T/d.npy" --steps 2 --threads 2 -i "$T/m0.st" -o "$T/t2.st"
    cmp "$T/t1.st" "$T/t2.st"
}

@test "the ResNet examples of lib/nn/spec.md build for 3x32x32" {
    specs=$($PY -c '
import re, sys
t = open(sys.argv[1]).read()
blk = t[t.index("## Residual blocks"):]
blk = blk[blk.index("```") + 4:]
blk = blk[:blk.index("```")]
g, d = blk.split("\n\n")
print(g.replace("\n", "\\n")); print(d.replace("\n", "\\n"))' "$BATS_TEST_DIRNAME/../lib/nn/spec.md")
    G=$(printf '%b' "$(echo "$specs" | sed -n 1p)")
    D=$(printf '%b' "$(echo "$specs" | sed -n 2p)")
    [[ "$G" == *"block {"* && "$D" == *sumpool* ]]
    gan-init --G "$G" --D "$D" --shape 3x32x32 --z 128 --loss wgan-gp -o "$T/m.st"
}

@test "a block whose paths disagree, or a bn in a WGAN-GP critic block: one line naming the block" {
    run gan-init --G "$G_RES" --D 'block { conv 8 k3 p1 } skip { conv 4 k1 }; sumpool; linear 1' --shape 1x8x8 \
        -o "$T/m.st"
    assert_one_line_error 2
    [[ "$output" == *"block 1: main gives 8x8x8, skip gives 4x8x8"* ]]
    run gan-init --G "$G_RES" --D 'block { conv 4 k3 p1; bn } skip { conv 4 k1 }; sumpool; linear 1' \
        --shape 1x8x8 --loss wgan-gp -o "$T/m.st"
    assert_one_line_error 2
    [[ "$output" == *"block 1: main layer 2 (bn) cannot be in a gradient-penalty critic"* ]]
    [ ! -e "$T/m.st" ]
}

# The sngan preset for 1x28x28 as tensor-info --full shows it (lib/gan/presets.h; cmd/gan-init.md)
SNGAN_G='linear 3136; reshape 64x7x7; block { bn eps=1e-05 momentum=0.1; relu; upsample 2; conv 64 k3 s1 p1; bn eps=1e-05 momentum=0.1; relu; conv 64 k3 s1 p1 } skip { upsample 2; conv 64 k1 s1 p0 }; block { bn eps=1e-05 momentum=0.1; relu; upsample 2; conv 64 k3 s1 p1; bn eps=1e-05 momentum=0.1; relu; conv 64 k3 s1 p1 } skip { upsample 2; conv 64 k1 s1 p0 }; bn eps=1e-05 momentum=0.1; relu; conv 1 k3 s1 p1; tanh'
SNGAN_D='block { conv 32 k3 s1 p1 sn; relu; conv 32 k3 s1 p1 sn; avgpool k2 s2 p0 } skip { avgpool k2 s2 p0; conv 32 k1 s1 p0 sn }; block { relu; conv 32 k3 s1 p1 sn; relu; conv 32 k3 s1 p1 sn; avgpool k2 s2 p0 } skip { conv 32 k1 s1 p0 sn; avgpool k2 s2 p0 }; block { relu; conv 32 k3 s1 p1 sn; relu; conv 32 k3 s1 p1 sn }; block { relu; conv 32 k3 s1 p1 sn; relu; conv 32 k3 s1 p1 sn }; relu; sumpool; linear 1 sn'

@test "the sngan and csngan presets: their spec text in tensor-info, their settings, steps that resume exactly" {
    gan-init --arch sngan --shape 1x28x28 -o "$T/s28.st"
    run tensor-info --full "$T/s28.st"
    [[ "$output" == *"G_spec       = $SNGAN_G"$'\n'* ]] || { echo "$output"; return 1; }
    [[ "$output" == *"D_spec       = $SNGAN_D"$'\n'* ]] || { echo "$output"; return 1; }
    for k in "loss         = hinge" "opt_G        = adam:lr=0.0002,b1=0,b2=0.9," "opt_D        = adam:lr=0.0002,b1=0,b2=0.9," \
             "n_critic     = 5"; do
        [[ "$output" == *"$k"* ]] || { echo "no '$k' in: $output"; return 1; }
    done
    gan-init --arch csngan --shape 1x28x28 --classes 3 -o "$T/c28.st"
    run tensor-info --full "$T/c28.st"
    G=${SNGAN_G//bn eps=1e-05 momentum=0.1; relu; upsample/cbn 3 eps=1e-05 momentum=0.1; relu; upsample}
    G=${G//bn eps=1e-05 momentum=0.1; relu; conv 64/cbn 3 eps=1e-05 momentum=0.1; relu; conv 64}
    [[ "$output" == *"G_spec       = $G"$'\n'* ]] || { echo "want $G in: $output"; return 1; }
    [[ "$output" == *"D_spec       = ${SNGAN_D%linear 1 sn}proj 3"$'\n'* ]] || { echo "$output"; return 1; }
    [[ "$output" == *"loss         = hinge"* && "$output" == *"n_critic     = 5"* ]]
    # a few steps of each, split in two with a checkpoint between: the same bits
    data 24 "$T/d.npy"
    for p in sngan csngan; do
        c=; l=; [ $p = csngan ] && c="--classes 3" && l="--labels $T/d.npy.labels.npy"
        gan-init --arch $p --shape 1x8x8 --z 8 --batch 4 --seed 2 $c -o "$T/$p.0.st"
        gan-step -q --data "$T/d.npy" $l --steps 2 -i "$T/$p.0.st" -o "$T/$p.a.st"
        gan-step -q --data "$T/d.npy" $l --steps 1 -i "$T/$p.0.st" -o "$T/$p.1.st"
        gan-step -q --data "$T/d.npy" $l --steps 1 -i "$T/$p.1.st" -o "$T/$p.b.st"
        cmp "$T/$p.a.st" "$T/$p.b.st"
        ! cmp -s "$T/$p.a.st" "$T/$p.1.st"
    done
    gan-sample -n 3 --class 1 -o "$T/s.npy" < "$T/csngan.a.st"
}
