#!/usr/bin/env bats
# idx2tensor: Fashion-MNIST checked against NumPy's own reading of the gzip bytes, options
# (--u8, --range, --offset, --limit, several inputs, stdin), CIFAR-10 batches made by a script,
# and one clean error line, exit 1 and no output file for every bad input.
load helper

# idx FILE TYPE "DIMS" [NBYTES]: a hand-made IDX file (TYPE in hex), data bytes i % 251; NBYTES
# (default: the product of DIMS) data bytes follow the header whatever the dims say.
idx() {
    $PY - "$@" <<'EOF'
import struct, sys
path, typ, dims = sys.argv[1], int(sys.argv[2], 16), [int(d) for d in sys.argv[3].split()]
n = 1
for d in dims:
    n *= d
if len(sys.argv) > 4:
    n = int(sys.argv[4])
hdr = bytes([0, 0, typ, len(dims)]) + b''.join(struct.pack('>I', d) for d in dims)
open(path, 'wb').write(hdr + bytes(i % 251 for i in range(n)))
EOF
}

# cifar FILE N [LABEL_OF_RECORD_2]: N random CIFAR-10 records (seeded by N), and FILE.ref.npz
# holding the images (N x 3 x 32 x 32) and labels NumPy expects.
cifar() {
    $PY - "$@" <<'EOF'
import sys, numpy as np
path, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(n)
x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
y = rng.integers(0, 10, n, dtype=np.uint8)
if len(sys.argv) > 3:
    y[2] = int(sys.argv[3])
open(path, 'wb').write(np.concatenate([y[:, None], x.reshape(n, -1)], 1).tobytes())
np.savez(path + '.ref.npz', x=x, y=y)
EOF
}

# no_output: the -o target and any temporary beside it are gone.
no_output() {
    run bash -c "ls '$T' | grep -E '^out\.npy' || true"
    assert_output ""
}

# bad FILE MESSAGE [OPTIONS...]: one line "idx2tensor: FILE: ...MESSAGE...", exit 1, no -o file.
bad() {
    local f=$1 msg=$2
    shift 2
    run idx2tensor "$@" "$f" -o "$T/out.npy"
    assert_one_line_error 1
    assert_output --regexp "^idx2tensor: $f: "
    assert_output --partial "$msg"
    no_output
}

@test "Fashion-MNIST train images: 60000x1x28x28 float32, NumPy's (v - 127.5) / 127.5 of the gzip bytes" {
    [ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || skip "no Fashion-MNIST"
    run idx2tensor "$FMNIST/train-images-idx3-ubyte.gz" -o "$T/train.npy"
    assert_success
    assert_output ""
    run $PY -c "
import gzip, numpy as np
raw = gzip.open('$FMNIST/train-images-idx3-ubyte.gz').read()
assert raw[:4] == b'\0\0\x08\x03'
ref = np.frombuffer(raw, np.uint8, offset=16).reshape(60000, 1, 28, 28)
ref = (ref.astype(np.float32) - np.float32(127.5)) / np.float32(127.5)
a = np.load('$T/train.npy', mmap_mode='r')
assert a.dtype == np.float32 and a.shape == (60000, 1, 28, 28), (a.dtype, a.shape)
assert np.array_equal(a, ref)
assert a.min() == -1 and a.max() == 1
print('ok')"
    assert_output "ok"
}

@test "Fashion-MNIST --u8: the data bytes of the IDX file, unchanged; test set is 10000 images" {
    [ -f "$FMNIST/t10k-images-idx3-ubyte.gz" ] || skip "no Fashion-MNIST"
    idx2tensor --u8 "$FMNIST/train-images-idx3-ubyte.gz" -o "$T/u8.npy"
    run tensor-info --json "$T/u8.npy"
    assert_output --partial '"dtype":"uint8","descr":"|u1","shape":[60000,1,28,28]'
    # the .npy data (after its 128-byte header) is the IDX data (after its 16-byte header)
    [ "$(head -c 128 "$T/u8.npy" | tail -c 1 | od -An -c | tr -d ' ')" = '\n' ]
    cmp <(tail -c +129 "$T/u8.npy") <(zcat "$FMNIST/train-images-idx3-ubyte.gz" | tail -c +17)
    run bash -c "idx2tensor --u8 '$FMNIST/t10k-images-idx3-ubyte.gz' | tensor-info --json"
    assert_output --partial '"shape":[10000,1,28,28]'
}

@test "Fashion-MNIST labels: int64 0..9, 6000 of each class in train, 1000 in test" {
    [ -f "$FMNIST/train-labels-idx1-ubyte.gz" ] || skip "no Fashion-MNIST"
    idx2tensor "$FMNIST/train-labels-idx1-ubyte.gz" -o "$T/y.npy"
    idx2tensor "$FMNIST/t10k-labels-idx1-ubyte.gz" -o "$T/yt.npy"
    idx2tensor --u8 "$FMNIST/t10k-labels-idx1-ubyte.gz" -o "$T/yt8.npy"
    run $PY -c "
import gzip, numpy as np
y, yt, yt8 = np.load('$T/y.npy'), np.load('$T/yt.npy'), np.load('$T/yt8.npy')
assert y.dtype == np.int64 and y.shape == (60000,) and yt.shape == (10000,) and yt8.dtype == np.uint8
assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10
ref = np.frombuffer(gzip.open('$FMNIST/train-labels-idx1-ubyte.gz').read(), np.uint8, offset=8)
assert np.array_equal(y, ref) and np.array_equal(yt, yt8)
print('ok')"
    assert_output "ok"
}

@test "--offset and --limit count across several inputs, in order" {
    idx "$T/a.idx" 08 "5 3 2"
    idx "$T/b.idx" 08 "4 3 2"
    gzip -c "$T/b.idx" > "$T/b.gz"
    for args in "--offset 3 --limit 4" "--offset 5" "--limit 2" "--offset 8" "--offset 0 --limit 100"; do
        idx2tensor --u8 $args "$T/a.idx" "$T/b.gz" -o "$T/x.npy"
        run $PY -c "
import numpy as np, sys
def load(p, n):
    return np.frombuffer(open(p, 'rb').read(), np.uint8, offset=16).reshape(n, 1, 3, 2)
both = np.concatenate([load('$T/a.idx', 5), load('$T/b.idx', 4)])
a = sys.argv[1].split()
o = dict(zip(a[::2], map(int, a[1::2])))
off = o.get('--offset', 0)
ref = both[off:off + o.get('--limit', 10**9)]
x = np.load('$T/x.npy')
assert x.dtype == np.uint8 and np.array_equal(x, ref), (x.shape, ref.shape)
print('ok')" "$args"
        assert_output "ok"
    done
    run idx2tensor --offset 9 "$T/a.idx" "$T/b.gz" -o "$T/out.npy"
    assert_one_line_error 1
    assert_output "idx2tensor: --offset 9: the inputs hold only 9 images"
    no_output
}

@test "--range 0,1 is v / 255 in float32; the default is bit for bit (v - 127.5) / 127.5" {
    idx "$T/a.idx" 08 "2 16 16"
    idx2tensor --range 0,1 "$T/a.idx" -o "$T/r01.npy"
    idx2tensor "$T/a.idx" -o "$T/r11.npy"
    idx2tensor --range -3,5 "$T/a.idx" -o "$T/r35.npy"
    run $PY -c "
import numpy as np
v = np.frombuffer(open('$T/a.idx', 'rb').read(), np.uint8, offset=16).reshape(2, 1, 16, 16)
f = v.astype(np.float32)
assert np.array_equal(np.load('$T/r01.npy'), f / np.float32(255))
assert np.array_equal(np.load('$T/r11.npy'), (f - np.float32(127.5)) / np.float32(127.5))
assert np.array_equal(np.load('$T/r35.npy'), (-3 + 8 * (v / 255.0)).astype(np.float32))
print('ok')"
    assert_output "ok"
}

@test "gzip is told by its magic bytes, not the name; stdin and '-' work" {
    idx "$T/a.idx" 08 "3 4 4"
    gzip -c "$T/a.idx" > "$T/compressed.idx"
    cp "$T/a.idx" "$T/plain.gz"
    idx2tensor "$T/a.idx" -o "$T/ref.npy"
    for f in compressed.idx plain.gz; do
        idx2tensor "$T/$f" -o "$T/x.npy"
        cmp "$T/x.npy" "$T/ref.npy"
    done
    cmp <(idx2tensor < "$T/compressed.idx") "$T/ref.npy"
    cmp <(cat "$T/a.idx" | idx2tensor -) "$T/ref.npy"
    # two gzip members (cat a.gz b.gz) are one stream, as gzip(1) reads them
    idx "$T/lab.idx" 08 "6"
    head -c 10 "$T/lab.idx" | gzip -c > "$T/two.gz"
    tail -c +11 "$T/lab.idx" | gzip -c >> "$T/two.gz"
    cmp <(idx2tensor "$T/two.gz") <(idx2tensor "$T/lab.idx")
}

@test "CIFAR-10 batches: images N x 3 x 32 x 32, labels with --labels, several batches, gzip" {
    cifar "$T/b1.bin" 5
    cifar "$T/b2.bin" 7
    gzip -c "$T/b2.bin" > "$T/b2.bin.gz"
    idx2tensor --cifar "$T/b1.bin" "$T/b2.bin.gz" --labels "$T/y.npy" -o "$T/x.npy"
    idx2tensor --cifar --u8 --offset 3 --limit 6 "$T/b1.bin" "$T/b2.bin" --labels "$T/y8.npy" -o "$T/x8.npy"
    run $PY -c "
import numpy as np
r1, r2 = np.load('$T/b1.bin.ref.npz'), np.load('$T/b2.bin.ref.npz')
X = np.concatenate([r1['x'], r2['x']]); Y = np.concatenate([r1['y'], r2['y']])
x, y = np.load('$T/x.npy'), np.load('$T/y.npy')
assert x.shape == (12, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
assert np.array_equal(x, (X.astype(np.float32) - np.float32(127.5)) / np.float32(127.5)) and np.array_equal(y, Y)
x8, y8 = np.load('$T/x8.npy'), np.load('$T/y8.npy')
assert x8.dtype == np.uint8 and y8.dtype == np.uint8 and np.array_equal(x8, X[3:9]) and np.array_equal(y8, Y[3:9])
print('ok')"
    assert_output "ok"
    # labels to stdout while the images go to a file
    run bash -c "idx2tensor --cifar '$T/b1.bin' --labels - -o '$T/x1.npy' | tensor-info --json"
    assert_output --partial '"dtype":"int64","descr":"<i8","shape":[5]'
}

@test "bad IDX input: one line naming the file and the problem, exit 1, no output file" {
    : > "$T/empty"
    bad "$T/empty" "empty file"
    idx "$T/good.idx" 08 "100 28 28"
    head -c 3 "$T/good.idx" > "$T/hdr3"
    bad "$T/hdr3" "truncated IDX header"
    head -c 10 "$T/good.idx" > "$T/dims"
    bad "$T/dims" "truncated IDX header: 3 dimensions announced, the file ends after 1"
    head -c 5000 "$T/good.idx" > "$T/short"
    bad "$T/short" "data is truncated: the header announces 78400 bytes (100x28x28), the file has 4984"
    cp "$T/good.idx" "$T/long"; printf 'xyz' >> "$T/long"
    bad "$T/long" "3 bytes of trailing data after the IDX data"
    printf 'GIF89a\1\0\1\0\0\0' > "$T/gif"
    bad "$T/gif" "not an IDX file: it starts with bytes 47 49 46 38"
    idx "$T/lie" 08 "60000 28 28" 784
    bad "$T/lie" "data is truncated: the header announces 47040000 bytes (60000x28x28), the file has 784"
    idx "$T/neg" 08 "4294967295 28 28" 0
    bad "$T/neg" "dimension 0 is 4294967295, beyond 2^31-1"
    idx "$T/ovf" 08 "2147483647 2147483647 2147483647" 0
    bad "$T/ovf" "dimensions are too large: their product overflows"
    idx "$T/absurd" 08 "2147483647 2147483647 1" 10
    bad "$T/absurd" "the header announces 4611686014132420609 bytes"
    idx "$T/float" 0D "2 2" 16
    bad "$T/float" "IDX type 0x0D (float32) is not supported: only unsigned bytes (type 0x08) are read"
    idx "$T/int32" 0C "2" 8
    bad "$T/int32" "IDX type 0x0C (int32) is not supported"
    idx "$T/type42" 42 "2" 2
    bad "$T/type42" "unknown type byte 0x42"
    idx "$T/d2" 08 "3 4" 12
    bad "$T/d2" "IDX data with 2 dimensions: idx2tensor converts images (N x H x W) and labels (N)"
    printf '\0\0\010\0' > "$T/d0"
    bad "$T/d0" "IDX header with 0 dimensions"
}

@test "bad gzip: corrupt, truncated, trailing garbage, gzip of nothing" {
    idx "$T/a.idx" 08 "50 28 28"
    gzip -c "$T/a.idx" > "$T/a.gz"
    n=$(stat -c %s "$T/a.gz")
    cp "$T/a.gz" "$T/corrupt.gz"
    printf '\xff\xff\xff\xff' | dd of="$T/corrupt.gz" bs=1 seek=$((n / 2)) conv=notrunc 2>/dev/null
    bad "$T/corrupt.gz" "corrupt gzip data"
    cp "$T/a.gz" "$T/crc.gz"
    printf '\x00' | dd of="$T/crc.gz" bs=1 seek=$((n - 8)) conv=notrunc 2>/dev/null
    printf '\x01' | dd of="$T/crc.gz" bs=1 seek=$((n - 7)) conv=notrunc 2>/dev/null
    bad "$T/crc.gz" "corrupt gzip data: incorrect data check"
    head -c $((n / 2)) "$T/a.gz" > "$T/half.gz"
    bad "$T/half.gz" "truncated gzip data"
    head -c $((n - 1)) "$T/a.gz" > "$T/last.gz"
    bad "$T/last.gz" "truncated gzip data"
    cp "$T/a.gz" "$T/junk.gz"; printf 'junk' >> "$T/junk.gz"
    bad "$T/junk.gz" "trailing garbage after the gzip data"
    printf '' | gzip -c > "$T/nothing.gz"
    bad "$T/nothing.gz" "empty file (inside the gzip data)"
    # the same through a pipe: named stdin
    run bash -c "head -c $((n / 2)) '$T/a.gz' | idx2tensor -o '$T/out.npy'"
    assert_one_line_error 1
    assert_output "idx2tensor: stdin: truncated gzip data (the compressed stream ends early)"
    no_output
}

@test "inputs that do not go together, bad CIFAR batches" {
    idx "$T/img.idx" 08 "2 28 28"
    idx "$T/img32.idx" 08 "2 32 32"
    idx "$T/lab.idx" 08 "2"
    bad "$T/lab.idx" "IDX labels, but $T/img.idx holds images: convert them separately" "$T/img.idx"
    bad "$T/img32.idx" "images of 32x32 pixels, but those of $T/img.idx are 28x28" "$T/img.idx"
    cifar "$T/c.bin" 4
    head -c 5000 "$T/c.bin" > "$T/cshort.bin"
    bad "$T/cshort.bin" "5000 bytes is not a whole number of 3073-byte records" --cifar
    cifar "$T/clab.bin" 4 10
    bad "$T/clab.bin" "record 2: label 10 is not in 0..9: not a CIFAR-10 binary batch" --cifar
    gzip -c "$T/cshort.bin" > "$T/cshort.gz"
    bad "$T/cshort.gz" "truncated: 1927 bytes after record 1" --cifar
    : > "$T/cempty"
    bad "$T/cempty" "empty file" --cifar
    # a failing second input leaves neither output behind
    run idx2tensor --cifar "$T/c.bin" "$T/clab.bin" --labels "$T/out.npy.labels" -o "$T/out.npy"
    assert_failure 1
    [ -z "$(ls "$T" | grep out.npy)" ]
}

@test "a missing file, a directory" {
    run idx2tensor "$T/nope.gz" -o "$T/out.npy"
    assert_one_line_error 1
    assert_output "idx2tensor: $T/nope.gz: No such file or directory"
    run idx2tensor "$T" -o "$T/out.npy"
    assert_one_line_error 1
    assert_output "idx2tensor: $T: is a directory"
    no_output
}

@test "a full disk is an error; a closed pipe ends quietly" {
    idx "$T/a.idx" 08 "200 28 28"
    run idx2tensor "$T/a.idx" -o /dev/full
    assert_one_line_error 1
    assert_output "idx2tensor: /dev/full: write failed: No space left on device"
    run bash -c "idx2tensor '$T/a.idx' > /dev/full"
    assert_one_line_error 1
    assert_output --partial "write failed: No space left on device"
    run bash -c "idx2tensor '$T/a.idx' | head -c 100 > /dev/null; echo \"status \${PIPESTATUS[0]}\""
    assert_output "status 141"
}

@test "usage: binary to a terminal, unknown options, bad values, --help, --version" {
    idx "$T/a.idx" 08 "2 2 2"
    run script -qec "idx2tensor '$T/a.idx'" /dev/null
    [ "$status" -eq 2 ]
    assert_output --partial "idx2tensor: refusing to write binary data to a terminal"
    run idx2tensor --bogus "$T/a.idx"
    assert_one_line_error 2
    assert_output "idx2tensor: unknown option '--bogus' (see idx2tensor --help)"
    for args in "--limit 0" "--limit x" "--offset -1" "--range 1,0" "--range 0" "--u8 --range 0,1" "--labels y.npy" \
        "--cifar --labels -" "-o" "--limit"; do
        run idx2tensor "$T/a.idx" $args
        assert_one_line_error 2
        assert_output --regexp "^idx2tensor: .*\(see idx2tensor --help\)$"
    done
    run idx2tensor --help
    assert_success
    assert_line --index 0 --partial "usage: idx2tensor"
    for opt in --range --u8 --offset --limit --cifar --labels -o; do assert_output --partial -- "$opt"; done
    run idx2tensor --version
    assert_success
    assert_output --regexp "^idx2tensor \(gan-tools\) [0-9]"
}
