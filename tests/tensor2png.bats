#!/usr/bin/env bats
# tensor2png: grids and single images decoded by an independent decoder (tests/data/pngpy.py)
# and compared with the same picture composed in NumPy; value mapping, clamping and NaN;
# --each naming; one clean error line for every bad input.
load helper

DATA="$BATS_TEST_DIRNAME/data"

py() {
    $PY -c "import sys; sys.path.insert(0, '$DATA'); import numpy as np, pngpy; T = '$T'
$1"
}

# grid(x, cols, pad, padv, scale): the picture tensor2png should draw from uint8 images x
# (N, C, H, W), composed in NumPy, as (H', W', C).
GRID='
def grid(x, cols, pad, padv, scale):
    n, c, h, w = x.shape
    rows = -(-n // cols)
    g = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), padv, np.uint8)
    for i in range(n):
        y0, x0 = pad + (i // cols) * (h + pad), pad + (i % cols) * (w + pad)
        g[y0:y0 + h, x0:x0 + w] = x[i].transpose(1, 2, 0)
    return g.repeat(scale, 0).repeat(scale, 1)
def png(path):
    px, ctype, depth = pngpy.decode(open(path, "rb").read())
    assert depth == 8 and ctype in (0, 2), (ctype, depth)
    return px
'

@test "grids: layout, --cols, --pad, --pad-value, --scale, gray and RGB, decoded independently" {
    py "
rng = np.random.default_rng(6)
np.save(T + '/g.npy', rng.integers(0, 256, (10, 1, 5, 7), dtype=np.uint8))
np.save(T + '/c.npy', rng.integers(0, 256, (5, 3, 4, 6), dtype=np.uint8))"
    tensor2png "$T/g.npy" -o "$T/g-default.png"
    tensor2png --cols 3 --pad 1 --pad-value 200 --scale 3 "$T/g.npy" -o "$T/g-3.png"
    tensor2png --cols 20 --pad 0 "$T/g.npy" -o "$T/g-row.png"
    tensor2png --cols 2 --pad 3 --pad-value 255 --scale 2 --level 0 < "$T/c.npy" > "$T/c-2.png"
    run py "$GRID
g, c = np.load(T + '/g.npy'), np.load(T + '/c.npy')
assert np.array_equal(png(T + '/g-default.png'), grid(g, 4, 2, 0, 1))     # ceil(sqrt(10)) = 4
assert np.array_equal(png(T + '/g-3.png'), grid(g, 3, 1, 200, 3))
assert np.array_equal(png(T + '/g-row.png'), grid(g, 10, 0, 0, 1))        # at most N columns
assert np.array_equal(png(T + '/c-2.png'), grid(c, 2, 3, 255, 2))
assert pngpy.decode(open(T + '/c-2.png', 'rb').read())[1] == 2            # RGB
print('ok')"
    assert_output "ok"
    for n in 1 4 9 16 17 63 64 65; do
        py "np.save(T + '/n.npy', np.zeros(($n, 1, 2, 2), np.uint8))"
        tensor2png --pad 0 "$T/n.npy" -o "$T/n.png"
        run py "px = pngpy.decode(open(T + '/n.png', 'rb').read())[0]; print(px.shape[1] // 2)"
        want=$($PY -c "import math; print(math.ceil(math.sqrt($n)))")
        [ "$output" -eq "$want" ] || { echo "N=$n: $output columns, want $want"; false; }
    done
}

@test "one image: H x W and C x H x W are drawn without padding" {
    py "
rng = np.random.default_rng(7)
np.save(T + '/hw.npy', rng.integers(0, 256, (5, 8), dtype=np.uint8))
np.save(T + '/chw.npy', rng.integers(0, 256, (3, 5, 8), dtype=np.uint8))
np.save(T + '/1hw.npy', rng.integers(0, 256, (1, 5, 8), dtype=np.uint8))"
    for f in hw chw 1hw; do tensor2png --scale 2 "$T/$f.npy" -o "$T/$f.png"; done
    run py "$GRID
for f in ('hw', 'chw', '1hw'):
    x = np.load(T + '/' + f + '.npy')
    x = x[None, None] if x.ndim == 2 else x[None]
    assert np.array_equal(png(T + '/' + f + '.png'), grid(x, 1, 0, 0, 2)), f
print('ok')"
    assert_output "ok"
}

@test "floats: [-1, 1] or --range to bytes, rounded; outside values clamped, NaN drawn as the low end; float64 too" {
    py "
x = np.array([-1, 1, 0, -2, 5, np.nan, np.inf, -np.inf, 2 / 255 - 1, 4 / 255 - 1, 0.9 / 255 - 1, -0.5], np.float32)
np.save(T + '/x.npy', x.reshape(1, 12))
np.save(T + '/x64.npy', x.astype(np.float64).reshape(1, 12))
np.save(T + '/y.npy', np.array([[0, 0.5, 1, 3, -3, 0.25]], np.float32))"
    tensor2png "$T/x.npy" -o "$T/x.png"
    tensor2png "$T/x64.npy" -o "$T/x64.png"
    tensor2png --range 0,1 "$T/y.npy" -o "$T/y.png"
    tensor2png --range 0,1 --range -3,3 "$T/y.npy" -o "$T/y3.png"
    run py "
d = lambda f: pngpy.decode(open(T + '/' + f, 'rb').read())[0][..., 0].ravel().tolist()
assert d('x.png') == [0, 255, 128, 0, 255, 0, 255, 0, 1, 2, 0, 64], d('x.png')
assert d('x64.png') == d('x.png')
assert d('y.png') == [0, 128, 255, 255, 0, 64], d('y.png')
assert d('y3.png') == [128, 149, 170, 255, 0, 138], d('y3.png')
print('ok')"
    assert_output "ok"
}

@test "--each: one PNG per image, named by the pattern's %d" {
    py "np.save(T + '/x.npy', np.arange(3 * 3 * 2 * 2, dtype=np.uint8).reshape(3, 3, 2, 2) * 7)"
    mkdir "$T/out"
    tensor2png --each "$T/out/img-%05d.png" "$T/x.npy"
    tensor2png --each "$T/out/%d-100%%.png" --scale 2 "$T/x.npy"
    tensor2png --each "$T/out/[%-3i].png" "$T/x.npy"
    run bash -c "cd '$T/out' && ls | LC_ALL=C sort | tr '\n' ' '"
    assert_output "0-100%.png 1-100%.png 2-100%.png [0  ].png [1  ].png [2  ].png img-00000.png img-00001.png img-00002.png "
    run py "$GRID
x = np.load(T + '/x.npy')
for i in range(3):
    assert np.array_equal(png(T + '/out/img-%05d.png' % i), grid(x[i:i + 1], 1, 0, 0, 1))
    assert np.array_equal(png(T + '/out/%d-100%%.png' % i), grid(x[i:i + 1], 1, 0, 0, 2))
print('ok')"
    assert_output "ok"
}

@test "--each shows progress on a terminal; -q silences it" {
    py "np.save(T + '/x.npy', np.zeros((6000, 1, 8, 8), np.uint8))"
    mkdir "$T/a" "$T/b"
    run script -qec "tensor2png --each '$T/a/%d.png' '$T/x.npy'" /dev/null
    assert_success
    assert_output --partial "tensor2png: wrote "
    assert_output --partial " of 6000 images ($T/a/"
    run script -qec "tensor2png -q --each '$T/b/%d.png' '$T/x.npy'" /dev/null
    assert_success
    assert_output ""
    [ "$(ls "$T/b" | wc -l)" -eq 6000 ]
}

# bad ARGS MESSAGE: one line "tensor2png: ...MESSAGE", exit 1, no output file.
bad() {
    local msg=$1
    shift
    run tensor2png "$@" -o "$T/out.png"
    assert_one_line_error 1
    assert_output "$msg"
    [ -z "$(ls "$T" | grep 'out\.png')" ]
}

@test "bad input: not images, wrong dtype, empty, a bad .npy, a picture too large" {
    py "
np.save(T + '/c5.npy', np.zeros((2, 5, 4, 4), np.float32))
np.save(T + '/c2.npy', np.zeros((2, 4, 4), np.float32))
np.save(T + '/v.npy', np.zeros(7, np.float32))
np.save(T + '/d5.npy', np.zeros((1, 1, 1, 2, 2), np.float32))
np.save(T + '/i8.npy', np.zeros((1, 1, 2, 2), np.int64))
np.save(T + '/n0.npy', np.zeros((0, 1, 2, 2), np.float32))
np.save(T + '/w0.npy', np.zeros((3, 0), np.uint8))
np.save(T + '/wide.npy', np.zeros((1, 1, 1, 20000), np.uint8))
np.save(T + '/f.npy', np.asfortranarray(np.zeros((3, 4), np.float32)))
np.save(T + '/h.npy', np.zeros((3, 4), np.float16))"
    bad "tensor2png: $T/c5.npy: shape 2x5x4x4 has 5 channels; tensor2png draws 1 (gray) or 3 (RGB)" "$T/c5.npy"
    bad "tensor2png: $T/c2.npy: shape 2x4x4 has 2 channels; tensor2png draws 1 (gray) or 3 (RGB)" "$T/c2.npy"
    bad "tensor2png: $T/v.npy: shape 7 is not images: expected N x C x H x W, C x H x W or H x W" "$T/v.npy"
    bad "tensor2png: $T/d5.npy: shape 1x1x1x2x2 is not images: expected N x C x H x W, C x H x W or H x W" "$T/d5.npy"
    bad "tensor2png: $T/i8.npy: int64 data; tensor2png draws float32, float64 or uint8 images" "$T/i8.npy"
    bad "tensor2png: $T/n0.npy: shape 0x1x2x2 holds no pixels to draw" "$T/n0.npy"
    bad "tensor2png: $T/w0.npy: shape 3x0 holds no pixels to draw" "$T/w0.npy"
    bad "tensor2png: the picture would be 1280256x320 pixels; PNG images here are at most 1000000 on a side (use --cols, --scale or --each)" \
        --scale 64 "$T/wide.npy"
    bad "tensor2png: $T/f.npy: Fortran order is not supported; save with np.ascontiguousarray" "$T/f.npy"
    bad "tensor2png: $T/h.npy: unsupported dtype '<f2' (supported: <f4, <f8, |u1, <i8)" "$T/h.npy"
    : > "$T/e.npy"
    bad "tensor2png: $T/e.npy: empty file" "$T/e.npy"
    py "np.save(T + '/ok.npy', np.zeros((4, 1, 8, 8), np.float32))"
    head -c 200 "$T/ok.npy" > "$T/t.npy"
    bad "tensor2png: $T/t.npy: data is truncated: the shape needs 1024 bytes, the file has 72" "$T/t.npy"
    run bash -c "head -c 200 '$T/ok.npy' | tensor2png -o '$T/out.png'"
    assert_one_line_error 1
    assert_output "tensor2png: stdin: data is truncated: the shape needs 1024 bytes, the file has 72"
    bad "tensor2png: $T/none.npy: No such file or directory" "$T/none.npy"
    # --each into a directory that is not there: the first file cannot be created
    run tensor2png --each "$T/nodir/%d.png" "$T/ok.npy"
    assert_one_line_error 1
    assert_output "tensor2png: $T/nodir/0.png: cannot create: No such file or directory"
}

@test "a full disk is an error; a closed pipe ends quietly; binary to a terminal is refused" {
    py "np.save(T + '/x.npy', np.random.default_rng(8).integers(0, 256, (64, 1, 64, 64), dtype=np.uint8))"
    run tensor2png "$T/x.npy" -o /dev/full
    assert_one_line_error 1
    assert_output "tensor2png: /dev/full: write failed: No space left on device"
    run bash -c "tensor2png '$T/x.npy' > /dev/full"
    assert_one_line_error 1
    assert_output --partial "write failed: No space left on device"
    run bash -c "tensor2png --level 0 '$T/x.npy' | head -c 10 > /dev/null; echo \"status \${PIPESTATUS[0]}\""
    assert_output "status 141"
    run script -qec "tensor2png '$T/x.npy'" /dev/null
    [ "$status" -eq 2 ]
    assert_output --partial "tensor2png: refusing to write binary data to a terminal"
}

@test "usage: patterns, exclusive options, bad values, --help, --version" {
    run tensor2png --bogus x.npy
    assert_one_line_error 2
    assert_output "tensor2png: unknown option '--bogus' (see tensor2png --help)"
    for args in "--each a.png" "--each a%s.png" "--each a%d%d.png" "--each a%5.2d.png" "--each a%d.png -o b.png" \
        "--each a%d.png --cols 2" "--cols 0" "--pad -1" "--pad-value 256" "--scale 0" "--scale 65" "--level 10" \
        "--range 1,1" "x.npy y.npy" "--cols"; do
        run tensor2png x.npy $args
        assert_one_line_error 2
        assert_output --regexp "^tensor2png: .*\(see tensor2png --help\)$"
    done
    run tensor2png --help
    assert_success
    assert_line --index 0 --partial "usage: tensor2png"
    for opt in --range --cols --pad --pad-value --scale --each --level -o clamped; do assert_output --partial -- "$opt"; done
    run tensor2png --version
    assert_success
    assert_output --regexp "^tensor2png \(gan-tools\) [0-9]"
}
