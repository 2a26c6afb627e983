#!/usr/bin/env bats
# Class-conditional models end to end: gan-init --classes/--labels and the presets cdcgan and
# cmlp, gan-step --labels (int64 and uint8, exact resume, errors), gan-sample --class,
# --classes, --per-class (with --z-in/--z-out/--interp/--best-of) and --labels-out (with
# --shard), gan-fid --labels on a conditional model's samples, and every error's one line.
load helper

G_C='embed 3 4; linear 32; cbn 3; lrelu 0.2; linear 64; tanh; reshape 1x8x8'
D_C='onehot 3; flatten; linear 32; lrelu 0.2; dropout 0.2; proj 3'

meta() {
    $PY -c '
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
print(h["__metadata__"].get(sys.argv[2], "-") if sys.argv[2] != "TENSORS" else " ".join(sorted(h)))' "$1" "$2"
}

# data N FILE LABELS [u8|i8] [K]: N random 1x8x8 uint8 images and N labels in [0, K) (default 3)
data() {
    $PY -c '
import sys, numpy as np
n, path, lpath, dt, k = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
r = np.random.default_rng(n)
np.save(path, r.integers(0, 256, size=(n, 1, 8, 8)).astype(np.uint8))
np.save(lpath, (np.arange(n) % k).astype(np.uint8 if dt == "u8" else np.int64))' "$1" "$2" "$3" "${4:-i8}" "${5:-3}"
}

init() {
    gan-init --G "$G_C" --D "$D_C" --shape 1x8x8 --z 8 --batch 16 --seed 4 "$@"
}

@test "help texts list the conditional options" {
    run gan-init --help
    for o in --classes --labels cdcgan cmlp; do [[ "$output" == *"$o"* ]] || { echo "gan-init lacks $o"; return 1; }; done
    run gan-step --help
    [[ "$output" == *"--labels"* ]]
    run gan-sample --help
    for o in --class --classes --per-class --labels-out; do [[ "$output" == *"$o"* ]] || { echo "gan-sample lacks $o"; return 1; }; done
    run gan-fid --help
    [[ "$output" == *"--labels"* ]]
}

@test "gan-init: cdcgan and cmlp take K from --classes or from --labels; the checkpoint records it" {
    data 30 "$T/x.npy" "$T/y.npy" i8 7
    gan-init --arch cdcgan --shape 1x28x28 --classes 7 --seed 1 -o "$T/a.st"
    [ "$(meta "$T/a.st" classes)" = 7 ]
    [[ "$(meta "$T/a.st" G_spec)" == "embed 7 50; linear 12544 nobias;"* ]]
    [[ "$(meta "$T/a.st" D_spec)" == *"; flatten; proj 7" ]]
    [[ "$(meta "$T/a.st" TENSORS)" == *"D.7.embed.weight"* ]]
    gan-init --arch cmlp --like "$T/x.npy" --labels "$T/y.npy" --seed 1 -o "$T/b.st"
    [ "$(meta "$T/b.st" classes)" = 7 ]
    gan-init --arch dcgan --shape 1x28x28 -o "$T/u.st"
    [ "$(meta "$T/u.st" classes)" = - ]
}

@test "gan-init: conditional errors are one line, exit 2, no output" {
    data 30 "$T/x.npy" "$T/y.npy" i8 7
    run gan-init --arch cdcgan --shape 1x28x28 -o "$T/m.st"
    assert_one_line_error 2
    [[ "$output" == *"class-conditional: give the number of classes"* ]]
    run gan-init --arch dcgan --shape 1x28x28 --classes 10 -o "$T/m.st"
    assert_one_line_error 2
    [[ "$output" == *"not class-conditional"* ]]
    run gan-init --arch cdcgan --like "$T/x.npy" --labels "$T/y.npy" --classes 5 -o "$T/m.st"
    assert_one_line_error 2
    [[ "$output" == *"--classes 5 but the labels"*"give 7 classes"* ]]
    run gan-init --G "$G_C" --D "$D_C" --shape 1x8x8 --z 8 --classes 4 -o "$T/m.st"
    assert_one_line_error 2
    run gan-init --G 'linear 64; tanh; reshape 1x8x8' --D 'flatten; linear 1' --shape 1x8x8 --classes 4 -o "$T/m.st"
    assert_one_line_error 2
    [[ "$output" == *"no class-conditional layer"* ]]
    run gan-init --G "$G_C" --D 'onehot 4; flatten; proj 4' --shape 1x8x8 --z 8 -o "$T/m.st"
    assert_one_line_error 2
    [[ "$output" == *"G has 3 classes but D has 4"* ]]
    run gan-init --G "$G_C" --D 'flatten; linear 8; cbn 3; proj 3' --shape 1x8x8 --z 8 --loss wgan-gp -o "$T/m.st"
    assert_one_line_error 2
    [[ "$output" == *"(cbn) cannot be in a gradient-penalty critic"* ]]
    run gan-init --arch cdcgan --shape 1x28x28 --classes 0 -o "$T/m.st"
    assert_one_line_error 2
    # with --like, one label per image of the data, as gan-step will want
    $PY -c 'import numpy as np; np.save("'"$T"'/short.npy", np.load("'"$T"'/y.npy")[:-1])'
    run gan-init --arch cdcgan --like "$T/x.npy" --labels "$T/short.npy" -o "$T/m.st"
    assert_one_line_error 1
    [[ "$output" == *"short.npy: labels are "*" but the data has "*" images: want one label per image"* ]]
    $PY -c 'import numpy as np; np.save("'"$T"'/f.npy", np.zeros(3, np.float32))'
    run gan-init --arch cdcgan --shape 1x28x28 --labels "$T/f.npy" -o "$T/m.st"
    assert_one_line_error 1
    [[ "$output" == *"labels must be int64 or uint8"* ]]
    [ ! -e "$T/m.st" ]
}

@test "gan-step --labels: int64 and uint8 labels train the same; resume is exact" {
    data 40 "$T/x.npy" "$T/y.npy" i8
    data 40 "$T/x.npy" "$T/y8.npy" u8
    init -o "$T/m0.st"
    gan-step --data "$T/x.npy" --labels "$T/y.npy" --steps 6 -q -i "$T/m0.st" -o "$T/a.st"
    gan-step --data "$T/x.npy" --labels "$T/y8.npy" --steps 6 -q -i "$T/m0.st" -o "$T/b.st"
    cmp "$T/a.st" "$T/b.st"
    gan-step --data "$T/x.npy" --labels "$T/y.npy" --steps 2 -q -i "$T/m0.st" -o "$T/m2.st"
    gan-step --data "$T/x.npy" --labels "$T/y.npy" --steps 4 -q -i "$T/m2.st" -o "$T/c.st"
    cmp "$T/a.st" "$T/c.st"
    # the labels matter: other labels, other weights
    $PY -c 'import numpy as np; np.save("'"$T"'/z.npy", (np.arange(40) * 2 % 3).astype(np.int64))'
    gan-step --data "$T/x.npy" --labels "$T/z.npy" --steps 6 -q -i "$T/m0.st" -o "$T/d.st"
    ! cmp -s "$T/a.st" "$T/d.st"
    [ "$(meta "$T/a.st" classes)" = 3 ]
}

@test "gan-step --labels errors: one line each, no output" {
    data 40 "$T/x.npy" "$T/y.npy"
    init -o "$T/m0.st"
    run gan-step --data "$T/x.npy" --steps 1 -i "$T/m0.st" -o "$T/o.st"
    assert_one_line_error 2
    [[ "$output" == *"class-conditional (3 classes): give --labels"* ]]
    $PY -c 'import numpy as np; np.save("'"$T"'/short.npy", np.zeros(39, np.int64))'
    run gan-step --data "$T/x.npy" --labels "$T/short.npy" --steps 1 -i "$T/m0.st" -o "$T/o.st"
    assert_one_line_error 1
    [[ "$output" == *"short.npy: labels are 39 but the data has 40 images"* ]]
    $PY -c 'import numpy as np; a = np.zeros(40, np.int64); a[17] = 3; np.save("'"$T"'/big.npy", a)'
    run gan-step --data "$T/x.npy" --labels "$T/big.npy" --steps 1 -i "$T/m0.st" -o "$T/o.st"
    assert_one_line_error 1
    [[ "$output" == *"big.npy: label 3 of image 17 is outside 0..2 (the model has 3 classes)"* ]]
    $PY -c 'import numpy as np; a = np.zeros(40, np.int64); a[5] = -1; np.save("'"$T"'/neg.npy", a)'
    run gan-step --data "$T/x.npy" --labels "$T/neg.npy" --steps 1 -i "$T/m0.st" -o "$T/o.st"
    assert_one_line_error 1
    [[ "$output" == *"label -1 of image 5"* ]]
    $PY -c 'import numpy as np; np.save("'"$T"'/f.npy", np.zeros(40, np.float32))'
    run gan-step --data "$T/x.npy" --labels "$T/f.npy" --steps 1 -i "$T/m0.st" -o "$T/o.st"
    assert_one_line_error 1
    [[ "$output" == *"labels must be int64 or uint8"* ]]
    run gan-step --data "$T/x.npy" --labels "$T/nonexistent.npy" --steps 1 -i "$T/m0.st" -o "$T/o.st"
    assert_one_line_error 1
    gan-init --G 'linear 64; tanh; reshape 1x8x8' --D 'flatten; linear 1' --shape 1x8x8 --z 8 --batch 16 -o "$T/u.st"
    run gan-step --data "$T/x.npy" --labels "$T/y.npy" --steps 1 -i "$T/u.st" -o "$T/o.st"
    assert_one_line_error 1
    [[ "$output" == *"not class-conditional"* ]]
    [ ! -e "$T/o.st" ]
}

@test "gan-sample --per-class, --classes, --class: shapes, class order, shared latents" {
    data 40 "$T/x.npy" "$T/y.npy"
    init -o "$T/m0.st"
    gan-step --data "$T/x.npy" --labels "$T/y.npy" --steps 3 -q -i "$T/m0.st" -o "$T/m.st"
    gan-sample --per-class 4 --seed 2 "$T/m.st" > "$T/pc.npy"
    gan-sample --classes 0,0,0,0,1,1,1,1,2,2,2,2 -n 12 --seed 2 "$T/m.st" > "$T/cl.npy"
    cmp "$T/pc.npy" "$T/cl.npy" && return 1 # --classes draws latent i for image i
    gan-sample --class 1 -n 4 --seed 2 "$T/m.st" > "$T/c1.npy"
    gan-sample -n 9 --seed 2 "$T/m.st" > "$T/def.npy"
    $PY -c '
import numpy as np, sys
pc, cl, c1, d = (np.load(sys.argv[i]) for i in range(1, 5))
assert pc.shape == (12, 1, 8, 8) and cl.shape == (12, 1, 8, 8) and d.shape == (9, 1, 8, 8)
# (other batch sizes round the matrix products differently: close, not equal)
close = lambda a, b: np.allclose(a, b, rtol=0, atol=1e-5)
assert close(pc[4:8], c1)                      # class 1 row = --class 1 with latents 0..3
assert np.array_equal(cl[:4], pc[:4])          # class 0, latents 0..3 in both
assert np.abs(pc[0] - pc[4]).max() > 1e-3      # same latent, other class: another image
assert close(d[:3], np.stack([pc[0], pc[5], pc[10]]))  # default: class i mod K, latent i
' "$T/pc.npy" "$T/cl.npy" "$T/c1.npy" "$T/def.npy"
}

@test "gan-sample with a fixed class: --z-out/--z-in round trip, --interp, --best-of" {
    data 40 "$T/x.npy" "$T/y.npy"
    init -o "$T/m.st"
    gan-sample --class 2 -n 5 --seed 3 --z-out "$T/z.npy" "$T/m.st" > "$T/a.npy"
    gan-sample --class 2 --z-in "$T/z.npy" "$T/m.st" > "$T/b.npy"
    cmp "$T/a.npy" "$T/b.npy"
    gan-sample --class 2 -n 3 --interp 4 "$T/m.st" > "$T/i.npy"
    gan-sample --class 2 -n 3 --best-of 4 "$T/m.st" > "$T/k.npy"
    $PY -c '
import numpy as np, sys
assert np.load(sys.argv[1]).shape == (9, 1, 8, 8)
assert np.load(sys.argv[2]).shape == (3, 1, 8, 8)' "$T/i.npy" "$T/k.npy"
}

@test "gan-sample class errors: one line, exit 2, no output" {
    init -o "$T/m.st"
    for args in "--class 3" "--classes 0,3" "--classes 1,,2" "--classes x" "--class 1 --per-class 2" \
                "--per-class 2 -n 6" "--classes 1,2 -n 3" "--per-class 2 --interp 2" "--classes 1,2 --best-of 2" \
                "--interp 2 -n 2"; do
        run gan-sample $args -o "$T/o.npy" "$T/m.st"
        assert_one_line_error 2 || { echo "for $args"; return 1; }
        [ ! -e "$T/o.npy" ]
    done
    gan-init --G 'linear 64; tanh; reshape 1x8x8' --D 'flatten; linear 1' --shape 1x8x8 --z 8 -o "$T/u.st"
    run gan-sample --class 0 "$T/u.st" -o "$T/o.npy"
    assert_one_line_error 2
    [[ "$output" == *"not class-conditional"* ]]
}

@test "gan-sample --labels-out: the classes of the images written, in order, for every way of choosing them" {
    init -o "$T/m.st"
    gan-sample -n 10 --labels-out "$T/def.npy" "$T/m.st" > "$T/x.npy"
    gan-sample --classes 2,0,1,1,2 --labels-out "$T/list.npy" "$T/m.st" > "$T/x.npy"
    gan-sample --per-class 4 --batch 5 --labels-out "$T/pc.npy" "$T/m.st" > "$T/x.npy"
    gan-sample --class 1 -n 3 --interp 4 --labels-out "$T/interp.npy" "$T/m.st" > "$T/x.npy"
    gan-sample --class 2 -n 3 --best-of 2 --labels-out "$T/best.npy" -o "$T/x.npy" "$T/m.st"
    $PY -c '
import numpy as np, sys
d, l, pc, it, b = (np.load(sys.argv[i]) for i in range(1, 6))
for a in (d, l, pc, it, b): assert a.dtype == np.int64 and a.ndim == 1, (a.dtype, a.shape)
assert d.tolist() == [i % 3 for i in range(10)], d
assert l.tolist() == [2, 0, 1, 1, 2], l
assert pc.tolist() == [0] * 4 + [1] * 4 + [2] * 4, pc
assert it.tolist() == [1] * 9, it
assert b.tolist() == [2] * 3, b' "$T/def.npy" "$T/list.npy" "$T/pc.npy" "$T/interp.npy" "$T/best.npy"
    # --shard: the slices' labels concatenate to the unsharded run's, as the images do
    for opts in "-n 23" "--per-class 7" "--classes 2,2,0,1,0,2,1,1,0"; do
        gan-sample $opts --batch 4 --labels-out "$T/all.npy" "$T/m.st" > "$T/all-x.npy"
        for i in 0 1 2 3 4; do
            gan-sample $opts --batch 4 --shard $i/5 --labels-out "$T/l$i.npy" "$T/m.st" > "$T/x$i.npy"
        done
        $PY -c '
import numpy as np, sys
whole = np.load(sys.argv[1]); parts = [np.load(p) for p in sys.argv[2:7]]
assert np.array_equal(np.concatenate(parts), whole), (parts, whole)
assert [len(p) for p in parts] == [len(np.load(p)) for p in sys.argv[7:]]' \
            "$T/all.npy" "$T"/l{0,1,2,3,4}.npy "$T"/x{0,1,2,3,4}.npy || { echo "for $opts"; return 1; }
    done
}

@test "gan-sample --labels-out on an unconditional model: one line, exit 2, nothing written" {
    gan-init --G 'linear 64; tanh; reshape 1x8x8' --D 'flatten; linear 1' --shape 1x8x8 --z 8 -o "$T/u.st"
    run gan-sample -n 4 --labels-out "$T/l.npy" -o "$T/o.npy" "$T/u.st"
    assert_one_line_error 2
    [[ "$output" == *"not class-conditional"*"--labels-out"* ]]
    [ ! -e "$T/l.npy" ] && [ ! -e "$T/o.npy" ]
    [ -z "$(ls "$T" | grep '\.tmp\.')" ]
    init -o "$T/m.st"
    run gan-sample -n 4 --labels-out - "$T/m.st"
    assert_one_line_error 2
    [[ "$output" == *"share stdout"* ]]
    run gan-sample -n 4 --labels-out - --z-out - -o "$T/o.npy" "$T/m.st"
    assert_one_line_error 2
    [[ "$output" == *"share stdout"* ]]
    [ ! -e "$T/o.npy" ]
}

@test "end to end: cmlp model -> gan-sample --labels-out -> gan-fid --labels prints one line per class" {
    data 60 "$T/x.npy" "$T/y.npy" u8 4
    gan-init --arch cmlp --like "$T/x.npy" --labels "$T/y.npy" --seed 1 --batch 16 -o "$T/m0.st"
    gan-step --data "$T/x.npy" --labels "$T/y.npy" --steps 1 -q -i "$T/m0.st" -o "$T/m1.st"
    gan-sample -n 48 --seed 3 --labels-out "$T/ly.npy" -i "$T/m1.st" -o "$T/fake.npy"
    run gan-fid -q --features pixels --labels "$T/y.npy,$T/ly.npy" "$T/x.npy" "$T/fake.npy"
    assert_success
    [ "${#lines[@]}" -eq 5 ]
    [[ "${lines[0]}" == "FD(pixels) "[0-9]* ]]
    for k in 0 1 2 3; do
        [[ "${lines[$((k + 1))]}" == "FD(pixels)[class=$k] "[0-9]* ]] || { echo "class $k: ${lines[$((k + 1))]}"; return 1; }
    done
    [ "${lines[0]}" = "$(gan-fid -q --features pixels "$T/x.npy" "$T/fake.npy")" ]
}
