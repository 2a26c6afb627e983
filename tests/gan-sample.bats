#!/usr/bin/env bats
# gan-sample: image arrays, latents (seeded, --z-in/--z-out, --interp, --truncate, --best-of),
# EMA, streaming, and bad input.
load helper

G_SMALL='linear 32; lrelu 0.2; linear 64; tanh; reshape 1x8x8'
D_SMALL='flatten; linear 32; lrelu 0.2; linear 1'

# model FILE: a small model trained a few steps with EMA (so EMA and trained weights differ)
model() {
    $PY -c 'import numpy as np; np.save("'"$T"'/d.npy", np.random.default_rng(0).integers(0, 256, (64, 1, 8, 8)).astype(np.uint8))'
    gan-init --G "$G_SMALL" --D "$D_SMALL" --shape 1x8x8 --z 8 --batch 16 --ema 0.5 --seed 9 -o "$T/m0.st"
    gan-step -q --data "$T/d.npy" --steps 3 -i "$T/m0.st" -o "$1"
}

# pycheck CODE ARGS...: run a Python check with numpy imported as np
pycheck() {
    local code=$1; shift
    run $PY -c "import sys, numpy as np
$code" "$@"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
}

@test "gan-sample --help lists every option and an example" {
    run gan-sample --help
    [ "$status" -eq 0 ]
    for o in -n --seed --z-in --z-out --labels-out --interp --truncate --best-of --no-ema --batch --activations --shard --threads --device -o; do
        [[ "$output" == *"$o"* ]] || { echo "help lacks $o"; return 1; }
    done
    [[ "$output" == *example* ]]
}

@test "N x C x H x W float32 images in [-1, 1]; the same seed the same images; prefixes agree" {
    model "$T/m.st"
    gan-sample -n 10 --seed 3 < "$T/m.st" > "$T/a.npy"
    gan-sample -n 10 --seed 3 -i "$T/m.st" -o "$T/b.npy"
    cmp "$T/a.npy" "$T/b.npy"
    gan-sample -n 4 --seed 3 --batch 3 "$T/m.st" > "$T/c.npy"
    gan-sample -n 10 --seed 4 "$T/m.st" > "$T/d.npy"
    pycheck '
a, c, d = (np.load(f) for f in sys.argv[1:4])
assert a.dtype == np.float32 and a.shape == (10, 1, 8, 8), (a.dtype, a.shape)
assert a.min() >= -1 and a.max() <= 1 and a.std() > 0
# other batch sizes change BLAS blocking, so rounding may differ in the last bits
assert np.abs(a[:4] - c).max() < 1e-5, "the first 4 of 10 differ from -n 4 (batch 3)"
assert not np.array_equal(a, d), "seeds 3 and 4 gave the same images"' "$T/a.npy" "$T/c.npy" "$T/d.npy"
}

@test "--z-out then --z-in reproduces the images; latents are N(0, 1)" {
    model "$T/m.st"
    gan-sample -n 500 --seed 1 --z-out "$T/z.npy" -i "$T/m.st" -o "$T/a.npy"
    gan-sample --z-in "$T/z.npy" -i "$T/m.st" -o "$T/b.npy"
    cmp "$T/a.npy" "$T/b.npy"
    pycheck '
z = np.load(sys.argv[1])
assert z.dtype == np.float32 and z.shape == (500, 8), z.shape
assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05, (z.mean(), z.std())' "$T/z.npy"
}

@test "--interp K: (M-1)*K+1 images along straight lines through the latents" {
    model "$T/m.st"
    gan-sample -n 3 --seed 2 --z-out "$T/z.npy" "$T/m.st" > "$T/a.npy"
    gan-sample -n 3 --seed 2 --interp 4 --z-out "$T/zi.npy" "$T/m.st" > "$T/i.npy"
    pycheck '
z, zi, a, i = (np.load(f) for f in sys.argv[1:5])
assert zi.shape == (9, 8) and i.shape == (9, 1, 8, 8), (zi.shape, i.shape)
for k in range(3):
    assert np.array_equal(zi[4 * k], z[k]) and np.abs(i[4 * k] - a[k]).max() < 1e-5
for s in range(2):
    for j in range(1, 4):
        t = j / 4
        assert np.allclose(zi[4 * s + j], (1 - t) * z[s] + t * z[s + 1], atol=1e-6)' \
        "$T/z.npy" "$T/zi.npy" "$T/a.npy" "$T/i.npy"
}

@test "--truncate T keeps every component within T and is deterministic" {
    model "$T/m.st"
    gan-sample -n 200 --seed 5 --truncate 0.7 --z-out "$T/z1.npy" "$T/m.st" > "$T/a.npy"
    gan-sample -n 200 --seed 5 --truncate 0.7 --z-out "$T/z2.npy" "$T/m.st" > "$T/b.npy"
    cmp "$T/z1.npy" "$T/z2.npy"
    gan-sample -n 200 --seed 5 --z-out "$T/z0.npy" "$T/m.st" > "$T/c.npy"
    pycheck '
z1, z0 = np.load(sys.argv[1]), np.load(sys.argv[2])
assert np.abs(z1).max() <= 0.7
inside = np.abs(z0) <= 0.7
assert np.array_equal(z1[inside], z0[inside]), "components inside T were changed"
assert z1.std() > 0.3' "$T/z1.npy" "$T/z0.npy"
}

@test "--best-of K keeps N of the K*N draws, in draw order" {
    model "$T/m.st"
    gan-sample -n 6 --seed 8 --best-of 5 --z-out "$T/zb.npy" "$T/m.st" > "$T/b.npy"
    gan-sample -n 30 --seed 8 --z-out "$T/zall.npy" "$T/m.st" > "$T/all.npy"
    pycheck '
zb, za = np.load(sys.argv[1]), np.load(sys.argv[2])
assert zb.shape == (6, 8)
idx = [int(np.flatnonzero((za == r).all(axis=1))[0]) for r in zb]
assert idx == sorted(idx) and len(set(idx)) == 6, idx
assert idx != list(range(6)), "kept the first 6 draws: no selection happened"' "$T/zb.npy" "$T/zall.npy"
}

@test "EMA weights by default, trained weights with --no-ema" {
    model "$T/m.st"
    gan-sample -n 5 "$T/m.st" > "$T/e.npy"
    gan-sample -n 5 --no-ema "$T/m.st" > "$T/n.npy"
    ! cmp -s "$T/e.npy" "$T/n.npy"
    gan-sample -n 5 "$T/m0.st" > "$T/e0.npy"         # EMA equals G at step 0
    gan-sample -n 5 --no-ema "$T/m0.st" > "$T/n0.npy"
    cmp "$T/e0.npy" "$T/n0.npy"
}

@test "streams many images through a pipe in bounded memory" {
    model "$T/m.st"
    bytes=$(gan-sample -n 50000 --batch 1000 "$T/m.st" | wc -c)
    [ "$bytes" -eq $((128 + 50000 * 64 * 4)) ]
    if [ -z "${ASAN_OPTIONS:-}" ] && [ -x /usr/bin/time ]; then
        /usr/bin/time -f %M -o "$T/rss" gan-sample -n 50000 --batch 1000 "$T/m.st" > /dev/null
        [ "$(cat "$T/rss")" -lt 200000 ]   # KiB; the output alone is 12.8 MB
    fi
}

@test "a checkpoint of the wrong kind or truncated: one line, exit 1" {
    model "$T/m.st"
    run gan-sample -n 2 -i "$T/d.npy" -o "$T/x.npy"
    assert_one_line_error 1
    run bash -c "head -c 3000 '$T/m.st' | gan-sample -n 2 -o '$T/x.npy'"
    assert_one_line_error 1
    [[ "$output" == *stdin* ]]
    run bash -c "printf '' | gan-sample -n 2 -o '$T/x.npy'"
    assert_one_line_error 1
    [ ! -e "$T/x.npy" ]
}

@test "latents of the wrong shape: one line, exit 1" {
    model "$T/m.st"
    $PY -c 'import numpy as np; np.save("'"$T"'/z.npy", np.zeros((4, 7), np.float32))'
    run gan-sample --z-in "$T/z.npy" -i "$T/m.st" -o "$T/x.npy"
    assert_one_line_error 1
    [[ "$output" == *"4x7"* ]]
    [ ! -e "$T/x.npy" ]
}

@test "bad usage: exit 2, one line naming the option" {
    model "$T/m.st"
    for args in "-n 0" "-n x" "--interp 0" "--truncate -1" "--truncate 0" "--best-of 0" "--batch 0" "--seed x" \
                "--threads -2"; do
        run gan-sample -i "$T/m.st" -o "$T/x.npy" $args
        assert_one_line_error 2
        opt=${args%% *}
        [[ "$output" == *"$opt"* ]] || { echo "message for $args does not name $opt: $output"; return 1; }
    done
    gan-sample -n 3 --z-out "$T/z.npy" "$T/m.st" > /dev/null
    run gan-sample --z-in "$T/z.npy" --best-of 2 "$T/m.st" -o "$T/x.npy"
    assert_one_line_error 2
    run gan-sample --z-in "$T/z.npy" -n 5 "$T/m.st" -o "$T/x.npy"
    assert_one_line_error 2
    run gan-sample -n 1 --interp 3 "$T/m.st" -o "$T/x.npy"
    assert_one_line_error 2
    run gan-sample --bogus "$T/m.st"
    assert_one_line_error 2
    run gan-sample "$T/m.st" "$T/m.st"
    assert_one_line_error 2
    run gan-sample -n 2 --z-out - "$T/m.st"        # images and latents both to stdout
    assert_one_line_error 2
    [[ "$output" == *"--z-out"*"share stdout"* ]]
    [ ! -e "$T/x.npy" ]
}

# concat_equals WHOLE PART...: the data of the .npy PARTs, concatenated, is WHOLE's data byte
# for byte, and the row counts add up (headers differ in their first dimension only)
concat_equals() {
    pycheck '
whole = np.load(sys.argv[1]); parts = [np.load(f) for f in sys.argv[2:]]
assert sum(len(p) for p in parts) == len(whole), ([len(p) for p in parts], len(whole))
assert all(p.shape[1:] == whole.shape[1:] and p.dtype == whole.dtype for p in parts)
assert b"".join(p.tobytes() for p in parts) == whole.tobytes(), "the slices differ from the whole"' "$@"
}

@test "--shard I/N: the N slices concatenate to the unsharded images and latents, byte for byte" {
    model "$T/m.st"
    gan-sample -n 23 --seed 5 --batch 4 --z-out "$T/z.npy" -i "$T/m.st" -o "$T/all.npy"
    for N in 1 2 3 4 7 9; do   # 6 batches: N dividing it or not, N > batches (empty slices)
        parts=() zparts=()
        for ((i = 0; i < N; i++)); do
            gan-sample -n 23 --seed 5 --batch 4 --shard $i/$N --z-out "$T/z$i.npy" -i "$T/m.st" -o "$T/p$i.npy"
            parts+=("$T/p$i.npy") zparts+=("$T/z$i.npy")
        done
        concat_equals "$T/all.npy" "${parts[@]}"
        concat_equals "$T/z.npy" "${zparts[@]}"
    done
    # slices are contiguous runs of whole batches: 6 batches in 4 slices are 1, 2, 1, 2 batches
    gan-sample -n 23 --seed 5 --batch 4 --shard 1/4 -i "$T/m.st" -o "$T/s.npy"
    pycheck 'assert np.load(sys.argv[1]).shape[0] == 8' "$T/s.npy"
}

@test "--shard with --interp, --truncate and --z-in: slices of the same images" {
    model "$T/m.st"
    gan-sample -n 5 --seed 2 --z-out "$T/z.npy" -i "$T/m.st" -o /dev/null
    for opts in "-n 5 --seed 2 --interp 5 --truncate 1" "--z-in $T/z.npy --interp 3"; do
        gan-sample $opts --batch 3 -i "$T/m.st" -o "$T/all.npy"
        gan-sample $opts --batch 3 --shard 0/3 -i "$T/m.st" -o "$T/a.npy"
        gan-sample $opts --batch 3 --shard 1/3 -i "$T/m.st" -o "$T/b.npy"
        gan-sample $opts --batch 3 --shard 2/3 -i "$T/m.st" -o "$T/c.npy"
        concat_equals "$T/all.npy" "$T/a.npy" "$T/b.npy" "$T/c.npy"
    done
}

@test "--shard: bad slices and --best-of are usage errors (exit 2, one line)" {
    model "$T/m.st"
    for s in 4/4 -1/4 1/0 1 1/ /4 a/b 1/2/3; do
        run gan-sample -n 8 --shard "$s" -i "$T/m.st" -o "$T/x.npy"
        assert_one_line_error 2
        [[ "$output" == gan-sample:*--shard* ]] || { echo "$s: $output"; return 1; }
    done
    run gan-sample -n 8 --best-of 2 --shard 0/2 -i "$T/m.st" -o "$T/x.npy"
    assert_one_line_error 2
    [[ "$output" == *--best-of*--shard* ]]
    [ ! -e "$T/x.npy" ]
}

@test "examples/sharded-fid.sh: the FD of 3 sharded, scored and merged slices is the FD of the whole set" {
    command -v gan-fid >/dev/null || skip "gan-fid is not built on this branch"
    model "$T/m.st"
    gan-sample -n 40 --seed 9 -i "$T/m.st" -o "$T/real.npy"
    gan-sample -n 50 --seed 2 --batch 8 -i "$T/m.st" -o "$T/whole.npy"
    run gan-fid -q --features pixels "$T/real.npy" "$T/whole.npy"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    local whole=${lines[-1]}
    run env FEATURES=pixels SEED=2 BATCH=8 KEEP="$T/keep" "$BATS_TEST_DIRNAME/../examples/sharded-fid.sh" \
        "$T/m.st" "$T/real.npy" 50 3 2
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    local sharded=${lines[-1]}
    echo "whole: $whole; sharded: $sharded"
    [ "$(ls "$T/keep" | wc -l)" -eq 4 ]
    pycheck '
w, s = (float(a.split()[-1]) for a in sys.argv[1:3])
assert w > 0 and abs(w - s) <= 1e-9 * w, (w, s)' "$whole" "$sharded"
    run "$BATS_TEST_DIRNAME/../examples/sharded-fid.sh" "$T/m.st" "$T/real.npy" 50 9
    [ "$status" -eq 2 ] && [[ "$output" == *"at most 1"* ]]
}

@test "--activations DIR: every layer of G by name, a manifest, the same images; a used DIR is refused" {
    model "$T/m.st"
    gan-sample -n 5 --seed 2 --batch 2 < "$T/m.st" > "$T/plain.npy"
    gan-sample -n 5 --seed 2 --batch 2 --activations "$T/acts" < "$T/m.st" > "$T/with.npy"
    cmp "$T/plain.npy" "$T/with.npy"
    run cat "$T/acts/manifest.tsv"
    [ "${lines[0]}" = "$(printf 'file\tphase\tnet\twhat\tname\tkind\tshape')" ]
    [ "${lines[1]}" = "$(printf 'G.input.npy\tsample\tG\tinput\tinput\tinput\t5x8x1x1')" ]
    [ "${lines[6]}" = "$(printf 'G.4.npy\tsample\tG\toutput\t4\treshape\t5x1x8x8')" ]
    [ "${#lines[@]}" -eq 7 ]
    cmp <(tail -c 320 "$T/acts/G.4.npy") <(tail -c 320 "$T/plain.npy")
    tensor-info "$T/acts/G.1.npy" | grep -q 'shape   5x32x1x1'
    run gan-sample -n 5 --activations "$T/acts" -i "$T/m.st" -o "$T/again.npy"
    assert_one_line_error 2
    [[ "$output" == *"acts is not empty"* ]]
    [ ! -e "$T/again.npy" ]
    touch "$T/file"
    run gan-sample -n 5 --activations "$T/file/x" -i "$T/m.st" -o "$T/again.npy"
    assert_one_line_error 1
}
