#!/usr/bin/env bats
# tensor-info: text and JSON output on known arrays (checked against NumPy), safetensors
# tables and metadata, pipes, and one clean error line for every bad input.
load helper

# npy_raw FILE VERSION DICT DATA_BYTES: a hand-made .npy (header text as given).
npy_raw() {
    $PY - "$@" <<'EOF'
import struct, sys
path, ver, d, nbytes = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), int(sys.argv[4])
pre = b'\x93NUMPY' + bytes([ver, 0])
pre += struct.pack('<H' if ver == 1 else '<I', len(d))
open(path, 'wb').write(pre + d + bytes(range(256)) * (nbytes // 256) + bytes(nbytes % 256))
EOF
}

@test "npy float32: every line of the text output" {
    $PY -c "import numpy as np; np.save('$T/x.npy', np.array([[1, 2, np.nan], [np.inf, 5, -6]], np.float32))"
    run tensor-info "$T/x.npy"
    assert_success
    assert_line --index 0 "file    $T/x.npy"
    assert_line --index 1 "format  npy 1.0"
    assert_line --index 2 "dtype   float32 (<f4)"
    assert_line --index 3 "shape   2x3 (6 elements)"
    assert_line --index 4 "bytes   24"
    assert_line --index 5 "min     -6"
    assert_line --index 6 "max     5"
    assert_line --index 7 "mean    0.5"
    assert_line --index 8 "std     4.03112887"
    assert_line --index 9 "nan     1"
    assert_line --index 10 "inf     1"
}

@test "--json statistics agree with NumPy for every dtype, version and shape" {
    $PY - "$T" <<'EOF'
import numpy as np, sys
from numpy.lib import format as F
rng = np.random.default_rng(5)
arrs = {
    'f4': (rng.standard_normal((7, 3, 5)) * 1e3 + 1e4).astype('<f4'),
    'f8': rng.standard_normal(1000) * 1e-5 + 1.0,
    'u1': rng.integers(0, 256, (4, 1, 28, 28)).astype(np.uint8),
    'i8': rng.integers(-2**40, 2**40, 33).astype('<i8'),
    'scalar': np.float32(-2.5) * np.ones((), np.float32),
    'empty': np.zeros((0, 4), np.float32),
}
for k, a in arrs.items():
    for v in (1, 2, 3):
        with open(f'{sys.argv[1]}/{k}_v{v}.npy', 'wb') as f:
            F.write_array(f, a, version=(v, 0))
    np.save(f'{sys.argv[1]}/{k}.ref.npy', a)
EOF
    run tensor-info --json "$T"/*_v?.npy
    assert_success
    echo "$output" > "$T/out.jsonl"
    run $PY - "$T" <<'EOF'
import json, sys, numpy as np
T = sys.argv[1]
lines = open(f'{T}/out.jsonl').read().splitlines()
assert len(lines) == 18, len(lines)
for line in lines:
    d = json.loads(line)
    name = d['file'].rsplit('/', 1)[1]
    a = np.load(f"{T}/{name.split('_v')[0]}.ref.npy")
    assert d['format'] == 'npy' and d['version'] == name[-5] + '.0', d
    assert d['shape'] == list(a.shape) and d['numel'] == a.size and d['bytes'] == a.nbytes, d
    assert d['dtype'] == {'float32': 'float32', 'float64': 'float64', 'uint8': 'uint8', 'int64': 'int64'}[str(a.dtype)]
    if a.size == 0:
        assert d['min'] is None and d['mean'] is None and d['std'] is None, d
        continue
    x = a.astype(np.float64)
    for key, ref in (('min', x.min()), ('max', x.max()), ('mean', x.mean()), ('std', x.std())):
        assert abs(d[key] - ref) <= 1e-12 * max(1.0, abs(ref)) + 1e-15, (name, key, d[key], ref)
    assert d['nan'] == 0 and d['inf'] == 0
print('ok')
EOF
    assert_success
    assert_output "ok"
}

@test "safetensors: metadata shortened, --full shows it all, a table of tensors" {
    $PY - "$T/m.st" <<'EOF'
import json, struct, sys, numpy as np
long = 'conv 64 4 2 1, relu; ' * 10
t = {'G.0.weight': np.arange(6, dtype='<f4').reshape(2, 3), 'labels': np.array([3, 1, 2], '<i8')}
h = {'__metadata__': {'format': 'gan-tools-checkpoint', 'g_spec': long + '\nend'}}
off, blobs = 0, b''
for k, a in t.items():
    b = a.tobytes()
    h[k] = {'dtype': {'float32': 'F32', 'int64': 'I64'}[str(a.dtype)], 'shape': list(a.shape), 'data_offsets': [off, off + len(b)]}
    off += len(b); blobs += b
hj = json.dumps(h).encode()
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(hj)) + hj + blobs)
EOF
    run tensor-info "$T/m.st"
    assert_success
    assert_line --index 1 "format    safetensors"
    assert_line --index 2 --regexp "^tensors   2 \(48 bytes of data, [0-9]+ of header\)$"
    assert_line --index 3 "metadata  2 keys"
    assert_line --index 4 "  format = gan-tools-checkpoint"
    assert_line --index 5 --regexp "^  g_spec = conv 64 4 2 1, relu; conv.*\.\.\. \(214 characters; --full shows all\)$"
    assert_line --index 6 --regexp "^name +dtype +shape +min +max +mean +std +nan +inf$"
    assert_line --index 7 --regexp "^G\.0\.weight +float32 +2x3 +0 +5 +2\.5 +1\.70783 +0 +0$"
    assert_line --index 8 --regexp "^labels +int64 +3 +1 +3 +2 +0\.816497 +0 +0$"
    # columns line up: every row of the table is as long as the header
    w=$(tensor-info "$T/m.st" | tail -3 | awk '{ print length($0) }' | sort -u | wc -l)
    [ "$w" -eq 1 ]
    run tensor-info --full "$T/m.st"
    assert_success
    assert_output --partial "relu; conv 64 4 2 1, relu; "
    assert_output --partial "      end"
    refute_output --partial "characters; --full"
    run tensor-info --json "$T/m.st"
    assert_success
    run $PY -c "
import json, sys
d = json.loads(sys.argv[1])
assert d['format'] == 'safetensors' and d['data_bytes'] == 48
assert d['metadata']['g_spec'].endswith('\nend') and len(d['metadata']['g_spec']) == 214
t = {x['name']: x for x in d['tensors']}
assert t['G.0.weight']['shape'] == [2, 3] and t['G.0.weight']['data_offsets'] == [0, 24]
assert t['labels']['st_dtype'] == 'I64' and t['labels']['mean'] == 2.0
print('ok')" "$output"
    assert_output "ok"
}

@test "reads through a pipe, from '-' and from stdin with no argument" {
    $PY -c "import numpy as np; np.save('$T/u.npy', np.arange(300).astype(np.uint8))"
    run bash -c "cat '$T/u.npy' | tensor-info"
    assert_success
    assert_line --index 0 "file    stdin"
    assert_line --index 6 "max     255"
    run bash -c "cat '$T/u.npy' | tensor-info --json - '$T/u.npy'"
    assert_success
    [ "${#lines[@]}" -eq 2 ]
    [ "${lines[0]#*\"format\"}" = "${lines[1]#*\"format\"}" ]
    run bash -c "tensor-info < '$T/u.npy'"
    assert_success
    assert_line --index 7 "mean    111.953333"
}

@test "NaN and Inf are counted and left out of the statistics" {
    $PY -c "import numpy as np; np.save('$T/n.npy', np.array([np.nan, -np.inf, 1.0, 3.0, np.inf, np.nan]))"
    run tensor-info --json "$T/n.npy"
    assert_success
    assert_output --partial '"min":1,"max":3,"mean":2,"std":1,"nan":2,"inf":2}'
    $PY -c "import numpy as np; np.save('$T/all.npy', np.array([np.nan, np.inf], np.float32))"
    run tensor-info "$T/all.npy"
    assert_success
    assert_line --index 5 "min     -"
    assert_line --index 8 "std     -"
}

@test "a bad file among good ones: its error, the others still shown, exit 1" {
    $PY -c "import numpy as np; np.save('$T/a.npy', np.ones(3, np.float32))"
    : > "$T/empty.npy"
    run tensor-info --json "$T/a.npy" "$T/empty.npy" "$T/a.npy"
    assert_failure 1
    [ "${#lines[@]}" -eq 3 ]
    assert_line --index 1 "tensor-info: $T/empty.npy: empty file"
}

# Each bad input: exactly one line, naming the file, exit 1.
bad() {
    run tensor-info "$T/$1"
    assert_one_line_error 1
    assert_output --regexp "^tensor-info: $T/$1: "
    assert_output --partial "$2"
    run bash -c "cat '$T/$1' | tensor-info"
    assert_one_line_error 1
    assert_output --regexp "^tensor-info: stdin: "
    assert_output --partial "$2"
}

@test "empty file" {
    : > "$T/e.npy"
    bad e.npy "empty file"
}

@test "truncated file" {
    $PY -c "import numpy as np; np.save('$T/full.npy', np.ones((10, 10), np.float32))"
    head -c 300 "$T/full.npy" > "$T/t.npy"
    bad t.npy "data is truncated"
    head -c 50 "$T/full.npy" > "$T/h.npy"
    bad h.npy "runs past the end"
    head -c 3 "$T/full.npy" > "$T/m.npy"
    bad m.npy "truncated .npy header"
}

@test "wrong magic" {
    printf 'GIF89a this is not an array at all' > "$T/w.npy"
    bad w.npy "not a .npy or safetensors file"
    printf '\x93NUMPZ\x01\x00\x02\x00{}' > "$T/z.npy"
    bad z.npy "not a .npy or safetensors file"
}

@test "header lying about its length" {
    npy_raw "$T/l.npy" 1 "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }" 16
    printf '\xff\x7f' | dd of="$T/l.npy" bs=1 seek=8 conv=notrunc 2>/dev/null
    bad l.npy "header length 32767 runs past the end"
}

@test "dims whose product overflows 64 bits" {
    npy_raw "$T/o.npy" 1 "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 2), }" 0
    bad o.npy "overflows"
}

@test "negative dims" {
    npy_raw "$T/n.npy" 1 "{'descr': '<f4', 'fortran_order': False, 'shape': (3, -1), }" 0
    bad n.npy "negative"
}

@test "unsupported dtype <f2" {
    $PY -c "import numpy as np; np.save('$T/h.npy', np.ones(4, np.float16))"
    bad h.npy "unsupported dtype '<f2'"
}

@test "Fortran order" {
    $PY -c "import numpy as np; np.save('$T/f.npy', np.asfortranarray(np.ones((3, 4), np.float32)))"
    bad f.npy "Fortran order is not supported; save with np.ascontiguousarray"
}

@test "big-endian" {
    $PY -c "import numpy as np; np.save('$T/b.npy', np.ones(4, '>f4'))"
    bad b.npy "big-endian dtype '>f4'"
}

@test "trailing garbage after the array" {
    $PY -c "import numpy as np; np.save('$T/g.npy', np.ones(4, np.float32))"
    printf 'junk' >> "$T/g.npy"
    bad g.npy "4 bytes of trailing data"
}

@test "bad safetensors: lying length, bad JSON, wrong size, gap" {
    st() { $PY -c "import struct,sys; h=sys.argv[2].encode(); open(sys.argv[1],'wb').write(struct.pack('<Q',len(h)+int(sys.argv[4]))+h+b'\0'*int(sys.argv[3]))" "$@"; }
    st "$T/a.st" '{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' 8 1000
    bad a.st "header length"
    st "$T/b.st" '{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}' 8 0
    bad b.st "not a valid JSON object"
    st "$T/c.st" '{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}' 8 0
    bad c.st "span 8 bytes but the shape needs 12"
    st "$T/d.st" '{"t":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}' 12 0
    bad d.st "gap of 4 bytes"
    st "$T/e.st" '{"t":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}' 4 0
    bad e.st "BF16 is not supported"
}

@test "a missing file and a directory" {
    run tensor-info "$T/nope.npy"
    assert_one_line_error 1
    assert_output "tensor-info: $T/nope.npy: No such file or directory"
    run tensor-info "$T"
    assert_one_line_error 1
    assert_output "tensor-info: $T: is a directory"
}

@test "--bogus is a usage error; --help and --version" {
    run tensor-info --bogus
    assert_one_line_error 2
    assert_output "tensor-info: unknown option '--bogus' (see tensor-info --help)"
    run tensor-info --help
    assert_success
    assert_line --index 0 --partial "usage: tensor-info"
    assert_output --partial "--json"
    assert_output --partial "--full"
    assert_output --partial "example:"
    run tensor-info --version
    assert_success
    assert_output --regexp "^tensor-info \(gan-tools\) [0-9]"
}

@test "Fashion-MNIST training images as uint8: NumPy's statistics" {
    [ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || skip "no Fashion-MNIST"
    $PY -c "
import gzip, numpy as np
a = np.frombuffer(gzip.open('$FMNIST/train-images-idx3-ubyte.gz').read()[16:], np.uint8).reshape(60000, 1, 28, 28)
np.save('$T/fm.npy', a)
open('$T/ref', 'w').write('%r %r' % (a.mean(dtype=np.float64), a.std(dtype=np.float64)))"
    run tensor-info --json "$T/fm.npy"
    assert_success
    run $PY -c "
import json, sys
d = json.loads(sys.argv[1]); m, s = map(float, open('$T/ref').read().split())
assert d['shape'] == [60000, 1, 28, 28] and d['min'] == 0 and d['max'] == 255, d
assert abs(d['mean'] - m) < 1e-12 * m and abs(d['std'] - s) < 1e-12 * s, (d, m, s)
print('ok')" "$output"
    assert_output "ok"
}

@test "a gan-step dump: every file the manifest lists is described, with NumPy's statistics" {
    $PY -c "import numpy as np; np.save('$T/d.npy', np.random.default_rng(0).integers(0, 256, (32, 1, 8, 8)).astype(np.uint8))"
    gan-init --G 'linear 16; relu; linear 64; tanh; reshape 1x8x8' --D 'flatten; linear 8; lrelu 0.2; linear 1' \
        --shape 1x8x8 --z 4 --batch 8 --seed 1 -o "$T/m0.st"
    gan-step -q --data "$T/d.npy" --steps 1 --dump-step 1 --dump-dir "$T/dump" -i "$T/m0.st" -o "$T/m1.st"
    tensor-info --json "$T"/dump/*.npy > "$T/info.jsonl"
    run $PY - "$T/dump" "$T/info.jsonl" <<'PY'
import json, os, sys
import numpy as np
d = sys.argv[1]
info = {os.path.basename(j["file"]): j for j in map(json.loads, open(sys.argv[2]))}
rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(d, "manifest.tsv"))][1:]
assert sorted(info) == sorted(r[0] for r in rows), (sorted(info), [r[0] for r in rows])
for r in rows:
    j, a = info[r[0]], np.load(os.path.join(d, r[0])).astype(np.float64)
    assert "x".join(map(str, j["shape"])) == r[6] and j["dtype"] == "float32", (r, j)
    assert abs(j["mean"] - a.mean()) <= 1e-6 * max(1, abs(a).max()) and abs(j["std"] - a.std()) <= 1e-6 * max(1, a.std()), r
PY
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
}
