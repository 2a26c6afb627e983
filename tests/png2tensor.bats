#!/usr/bin/env bats
# png2tensor: PNGs of every colour type, bit depth, filter and interlace, made by an independent
# encoder (tests/data/pngpy.py), read back as NumPy computes them; directories sorted by name;
# exact round trips with tensor2png; one clean error line for every bad input.
load helper

DATA="$BATS_TEST_DIRNAME/data"

# py CODE...: run Python with pngpy importable and T set; prints what the code prints.
py() {
    $PY -c "import sys; sys.path.insert(0, '$DATA'); import numpy as np, pngpy; T = '$T'
$1"
}

# the one-image tensor png2tensor --u8 makes of FILE, as (C, H, W)
u8_of() {
    png2tensor --u8 "$@" -o "$T/u8.npy"
}

@test "every colour type and depth: the stored samples, alpha dropped, palettes expanded, 16 bits round(v/257)" {
    run py "
rng = np.random.default_rng(3)
H, W = 11, 13
cases = {}
g = rng.integers(0, 256, (H, W), dtype=np.uint8)
cases['gray8'] = (pngpy.encode(g, 'gray'), g[None])
for d in (1, 2, 4):
    v = rng.integers(0, 1 << d, (H, W))
    cases[f'gray{d}'] = (pngpy.encode(v, 'gray', depth=d), (v * (255 // ((1 << d) - 1)))[None])
g16 = rng.integers(0, 65536, (H, W)).astype(np.uint16)
g16[0, :6] = [0, 128, 129, 385, 65407, 65535]
cases['gray16'] = (pngpy.encode(g16, 'gray', depth=16), np.floor(g16 / 257 + 0.5)[None])
ga = rng.integers(0, 256, (H, W, 2), dtype=np.uint8)
cases['gray+alpha'] = (pngpy.encode(ga, 'gray+alpha'), ga[None, :, :, 0])
rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
cases['rgb'] = (pngpy.encode(rgb, 'rgb'), rgb.transpose(2, 0, 1))
rgb16 = rng.integers(0, 65536, (H, W, 3)).astype(np.uint16)
cases['rgb16'] = (pngpy.encode(rgb16, 'rgb', depth=16), np.floor(rgb16 / 257 + 0.5).transpose(2, 0, 1))
rgba = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
cases['rgba'] = (pngpy.encode(rgba, 'rgba'), rgba[..., :3].transpose(2, 0, 1))
rgba16 = rng.integers(0, 65536, (H, W, 4)).astype(np.uint16)
cases['rgba16'] = (pngpy.encode(rgba16, 'rgba', depth=16), np.floor(rgba16[..., :3] / 257 + 0.5).transpose(2, 0, 1))
pal = rng.integers(0, 256, (16, 3), dtype=np.uint8)
for d in (1, 2, 4, 8):
    i = rng.integers(0, min(16, 1 << d), (H, W))
    cases[f'palette{d}'] = (pngpy.encode(i, 'palette', depth=d, palette=pal[:1 << d]), pal[i].transpose(2, 0, 1))
i = rng.integers(0, 16, (H, W))
cases['palette+tRNS'] = (pngpy.encode(i, 'palette', palette=pal, trns=bytes(range(0, 160, 10))), pal[i].transpose(2, 0, 1))
cases['filters'] = (pngpy.encode(rgb, 'rgb', filters=(0, 1, 2, 3, 4)), rgb.transpose(2, 0, 1))
cases['interlaced'] = (pngpy.encode(rgb, 'rgb', filters=(4, 3, 1), interlace=True), rgb.transpose(2, 0, 1))
cases['interlaced gray2'] = (pngpy.encode(i % 4, 'gray', depth=2, interlace=True), (i % 4 * 85)[None])
cases['gamma, text'] = (pngpy.encode(g, 'gray', extra=[(b'gAMA', (45455).to_bytes(4, 'big')), (b'tEXt', b'k\0v')]), g[None])
for name, (data, want) in cases.items():
    f = name.replace(' ', '_').replace(',', '') + '.png'
    open(f'{T}/{f}', 'wb').write(data)
    np.save(f'{T}/{f}.want.npy', np.asarray(want, np.uint8))
    print(f)
"
    assert_success
    for f in $output; do
        png2tensor --u8 "$T/$f" -o "$T/got.npy"
        run py "
got, want = np.load(T + '/got.npy'), np.load(T + '/$f.want.npy')
assert got.dtype == np.uint8 and got.shape == (1,) + want.shape, (got.shape, want.shape)
assert np.array_equal(got[0], want), np.argwhere(got[0] != want)[:5]
print('ok')"
        [ "$output" = ok ] || { echo "$f: $output"; false; }
    done
}

@test "--gray is (299 R + 587 G + 114 B + 500) / 1000, --rgb repeats gray; default is float (v - 127.5) / 127.5" {
    py "
rng = np.random.default_rng(4)
rgb = rng.integers(0, 256, (9, 10, 3), dtype=np.uint8)
rgb[0, :3] = [[255, 255, 255], [0, 0, 0], [1, 2, 3]]
open(T + '/c.png', 'wb').write(pngpy.encode(rgb, 'rgb'))
g = rng.integers(0, 256, (9, 10), dtype=np.uint8)
open(T + '/g.png', 'wb').write(pngpy.encode(g, 'gray'))
np.save(T + '/rgb.npy', rgb); np.save(T + '/g.npy', g)"
    png2tensor --gray --u8 "$T/c.png" -o "$T/cg.npy"
    png2tensor --rgb --u8 "$T/g.png" -o "$T/gc.npy"
    png2tensor "$T/c.png" "$T/c.png" -o "$T/cf.npy"
    png2tensor --range 0,1 --gray "$T/c.png" "$T/g.png" -o "$T/mixed01.npy"
    run py "
rgb = np.load(T + '/rgb.npy').astype(np.int64); g = np.load(T + '/g.npy')
luma = (299 * rgb[..., 0] + 587 * rgb[..., 1] + 114 * rgb[..., 2] + 500) // 1000
assert np.array_equal(np.load(T + '/cg.npy')[0, 0], luma)
assert np.array_equal(np.load(T + '/gc.npy')[0], np.stack([g] * 3))
cf = np.load(T + '/cf.npy')
ref = (rgb.transpose(2, 0, 1).astype(np.float32) - np.float32(127.5)) / np.float32(127.5)
assert cf.dtype == np.float32 and cf.shape == (2, 3, 9, 10) and np.array_equal(cf[0], ref) and np.array_equal(cf[1], ref)
m = np.load(T + '/mixed01.npy')
assert m.shape == (2, 1, 9, 10) and np.array_equal(m[0, 0], luma.astype(np.float32) / np.float32(255))
assert np.array_equal(m[1, 0], g.astype(np.float32) / np.float32(255))
print('ok')"
    assert_output "ok"
}

@test "a directory: its .png files sorted by name (byte order), others and subdirectories left out" {
    mkdir -p "$T/d/sub"
    for name in img-10 img-02 B a img-1 .hidden; do
        py "v = sum(map(ord, '$name')) % 256; open(T + '/d/$name.png', 'wb').write(pngpy.encode(np.full((2, 3), v, np.uint8), 'gray'))"
    done
    py "open(T + '/d/UPPER.PNG', 'wb').write(pngpy.encode(np.full((2, 3), 7, np.uint8), 'gray'))"
    cp "$T/d/a.png" "$T/d/sub/z.png"
    echo "not an image" > "$T/d/notes.txt"
    png2tensor --u8 "$T/d" -o "$T/x.npy"
    run py "
x = np.load(T + '/x.npy')
names = ['B', 'UPPER', 'a', 'img-02', 'img-1', 'img-10']
want = [7 if n == 'UPPER' else sum(map(ord, n)) % 256 for n in names]
assert x.shape == (6, 1, 2, 3), x.shape
assert x[:, 0, 0, 0].tolist() == want, (x[:, 0, 0, 0].tolist(), want)
print('ok')"
    assert_output "ok"
    # a directory and files together, in argument order
    png2tensor --u8 "$T/d/a.png" "$T/d/" "$T/d/B.png" -o "$T/y.npy"
    run tensor-info --json "$T/y.npy"
    assert_output --partial '"shape":[8,1,2,3]'
}

@test "round trip: Fashion-MNIST images -> npy u8 -> one PNG each -> png2tensor gives the same bytes" {
    [ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || skip "no Fashion-MNIST"
    idx2tensor --u8 --limit 1000 "$FMNIST/train-images-idx3-ubyte.gz" -o "$T/x.npy"
    mkdir "$T/png"
    tensor2png --each "$T/png/img-%05d.png" "$T/x.npy"
    [ "$(ls "$T/png" | wc -l)" -eq 1000 ]
    png2tensor --u8 "$T/png" -o "$T/back.npy"
    cmp "$T/x.npy" "$T/back.npy"
    # float: [-1, 1] -> PNG -> [-1, 1] is exact for values that came from bytes
    idx2tensor --limit 50 "$FMNIST/train-images-idx3-ubyte.gz" -o "$T/f.npy"
    rm "$T"/png/*
    tensor2png --each "$T/png/%d.png" "$T/f.npy"
    png2tensor "$T"/png/{0..49}.png -o "$T/fback.npy"
    cmp "$T/f.npy" "$T/fback.npy"
}

@test "round trip of arbitrary floats in [-1, 1]: only 8-bit quantisation is lost" {
    py "
rng = np.random.default_rng(5)
x = rng.uniform(-1, 1, (6, 3, 17, 19)).astype(np.float32)
x[0, 0, 0, :4] = [-1, 1, 0, 1 / 255]
np.save(T + '/x.npy', x)"
    mkdir "$T/p"
    tensor2png --each "$T/p/i%02d.png" "$T/x.npy"
    png2tensor "$T/p" -o "$T/y.npy"
    run py "
x, y = np.load(T + '/x.npy').astype(np.float64), np.load(T + '/y.npy').astype(np.float64)
err = np.abs(x - y).max()
assert err <= 1 / 255 + 1e-6, err                      # half a step of 2/255
q = np.floor((x + 1) * 127.5 + 0.5)                     # the byte each value rounds to
assert np.array_equal(y, ((q - 127.5) / 127.5).astype(np.float32).astype(np.float64))
assert err > 0.9 / 255                                  # and the quantisation is really there
print('ok', err * 255)"
    assert_output --regexp "^ok (0\.9|1\.0)"
}

# bad ARGS MESSAGE: one line "png2tensor: ...MESSAGE", exit 1, no output file.
bad() {
    local msg=$1
    shift
    run png2tensor "$@" -o "$T/out.npy"
    assert_one_line_error 1
    assert_output --partial "$msg"
    [ ! -e "$T/out.npy" ] && [ -z "$(ls "$T" | grep 'out\.npy')" ]
}

@test "bad input: not a PNG, empty, truncated, corrupt, a size or channel mismatch in a set" {
    py "
open(T + '/a.png', 'wb').write(pngpy.encode(np.zeros((28, 28), np.uint8), 'gray'))
open(T + '/b.png', 'wb').write(pngpy.encode(np.zeros((28, 28), np.uint8), 'gray'))
open(T + '/big.png', 'wb').write(pngpy.encode(np.zeros((32, 32), np.uint8), 'gray'))
open(T + '/tall.png', 'wb').write(pngpy.encode(np.zeros((29, 28), np.uint8), 'gray'))
open(T + '/rgb.png', 'wb').write(pngpy.encode(np.zeros((28, 28, 3), np.uint8), 'rgb'))
open(T + '/pal.png', 'wb').write(pngpy.encode(np.zeros((28, 28), np.uint8), 'palette', palette=[[1, 2, 3]]))
d = bytearray(open(T + '/a.png', 'rb').read()); d[20] ^= 1
open(T + '/crc.png', 'wb').write(d)"
    bad "png2tensor: $T/big.png: 32x32 pixels, but $T/a.png is 28x28: every image must have the same size" \
        "$T/a.png" "$T/b.png" "$T/big.png"
    bad "png2tensor: $T/tall.png: 28x29 pixels, but $T/a.png is 28x28" "$T/a.png" "$T/tall.png"
    bad "png2tensor: $T/rgb.png: RGB (3 channels), but $T/a.png is gray (1 channel); use --gray or --rgb to convert" \
        "$T/a.png" "$T/rgb.png"
    bad "png2tensor: $T/a.png: gray (1 channel), but $T/pal.png is palette (3 channels)" "$T/pal.png" "$T/a.png"
    png2tensor --gray "$T/a.png" "$T/rgb.png" "$T/pal.png" -o "$T/ok.npy"
    : > "$T/empty.png"
    bad "png2tensor: $T/empty.png: empty file" "$T/a.png" "$T/empty.png"
    printf 'GIF89a\1\0\1\0\0\0' > "$T/gif.png"
    bad "png2tensor: $T/gif.png: not a PNG file (bad signature)" "$T/gif.png"
    n=$(stat -c %s "$T/a.png")
    for cut in 8 20 40 $((n - 12)); do
        head -c $cut "$T/a.png" > "$T/cut.png"
        bad "png2tensor: $T/cut.png: truncated PNG (the data ends early)" "$T/cut.png"
    done
    bad "png2tensor: $T/crc.png: bad PNG: IHDR: CRC error" "$T/crc.png"
    bad "png2tensor: $T/none.png: No such file or directory" "$T/none.png"
    mkdir "$T/nopng"
    touch "$T/nopng/x.txt"
    bad "png2tensor: $T/nopng: no .png files in this directory" "$T/nopng"
    # from stdin
    run bash -c "head -c 30 '$T/a.png' | png2tensor -o '$T/out.npy'"
    assert_one_line_error 1
    assert_output "png2tensor: stdin: truncated PNG (the data ends early)"
}

@test "a full disk is an error; a closed pipe ends quietly; binary to a terminal is refused" {
    py "open(T + '/a.png', 'wb').write(pngpy.encode(np.arange(256 * 256).reshape(256, 256) % 251, 'gray'))"
    run png2tensor "$T/a.png" -o /dev/full
    assert_one_line_error 1
    assert_output "png2tensor: /dev/full: write failed: No space left on device"
    run bash -c "png2tensor '$T/a.png' '$T/a.png' '$T/a.png' '$T/a.png' | head -c 10 > /dev/null; echo \"status \${PIPESTATUS[0]}\""
    assert_output "status 141"
    run script -qec "png2tensor '$T/a.png'" /dev/null
    [ "$status" -eq 2 ]
    assert_output --partial "png2tensor: refusing to write binary data to a terminal"
}

@test "usage: unknown options, exclusive options, --help, --version" {
    run png2tensor --bogus x.png
    assert_one_line_error 2
    assert_output "png2tensor: unknown option '--bogus' (see png2tensor --help)"
    for args in "--gray --rgb" "--u8 --range 0,1" "--range 2,1" "--range" "- -" "-o"; do
        run png2tensor x.png $args
        assert_one_line_error 2
        assert_output --regexp "^png2tensor: .*\(see png2tensor --help\)$"
    done
    run png2tensor --help
    assert_success
    assert_line --index 0 --partial "usage: png2tensor"
    for opt in --gray --rgb --range --u8 -o; do assert_output --partial -- "$opt"; done
    run png2tensor --version
    assert_success
    assert_output --regexp "^png2tensor \(gan-tools\) [0-9]"
}
