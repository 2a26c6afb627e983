#!/usr/bin/env bash
# bench_data.sh: the data programs on Fashion-MNIST, beside NumPy doing the same job.
#   idx2tensor: the 60000 training images (26 MB gzip) to float32 [-1, 1] (188 MB) and to uint8,
#               to /dev/null and to a file (-o: a temporary, fsync, rename); the peer is NumPy
#               (gzip module, frombuffer, the same arithmetic, np.save).
#   tensor2png: a grid of 10000 images (100 x 100, 3002 x 3002 pixels), from uint8 and from
#               float32, at zlib levels 6 (default), 1 and 9; the peer is NumPy + zlib writing
#               the same grid as a PNG without row filters.
# Each figure is the best of BENCH_REPEAT (default 3) runs: wall clock, and CPU time (user +
# system, the steadier figure on a shared machine); throughput is by wall clock.
set -eu
D=${FMNIST:-/usr/share/datasets/fashion-mnist}
IDX=$D/train-images-idx3-ubyte.gz
[ -r "$IDX" ] || { echo "bench_data: $IDX not found (make deps installs dataset-fashion-mnist)"; exit 1; }
R=${BENCH_REPEAT:-3}
T=${BENCH_TMP:-$(mktemp -d)}
PY=/usr/bin/python3

# best CMD: "WALL CPU", the best wall-clock and the best CPU (user + system) seconds of R runs
# of CMD (a shell string). CPU time is the steadier figure on a shared machine.
best() {
    local out=""
    for _ in $(seq "$R"); do
        /usr/bin/time -f "%e %U %S" -o "$T/time" bash -c "$1" > /dev/null
        out="$out$(cat "$T/time")
"
    done
    echo "$out" | awk 'NF == 3 { w = $1; c = $2 + $3; if (bw == "" || w < bw) bw = w; if (bc == "" || c < bc) bc = c }
        END { print bw, bc }'
}

# line WHAT "WALL CPU" N UNIT: one figure with its throughput (by wall clock)
line() {
    echo "$2" | awk -v w="$1" -v n="$3" -v u="$4" \
        '{ printf "%-56s %6.3f s wall %6.3f s cpu %8.0f %s/s\n", w, $1, $2, n / $1, u }'
}

line "idx2tensor 60000 -> float32, to /dev/null" "$(best "idx2tensor '$IDX' > /dev/null")" 60000 images
line "idx2tensor 60000 -> float32, -o file" "$(best "idx2tensor '$IDX' -o '$T/x.npy'")" 60000 images
line "idx2tensor 60000 -> uint8, -o file" "$(best "idx2tensor --u8 '$IDX' -o '$T/u8.npy'")" 60000 images
line "idx2tensor --limit 10000 (whole file still read)" "$(best "idx2tensor --limit 10000 '$IDX' > /dev/null")" 10000 images
line "peer: NumPy gzip + (v - 127.5) / 127.5 + np.save, file" "$(best "$PY -c \"
import gzip, numpy as np
a = np.frombuffer(gzip.open('$IDX').read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
np.save('$T/p.npy', (a.astype(np.float32) - np.float32(127.5)) / np.float32(127.5))\"")" 60000 images
line "gunzip alone (zcat > /dev/null)" "$(best "zcat '$IDX'")" 60000 images

idx2tensor --limit 10000 "$IDX" -o "$T/f10k.npy"
idx2tensor --u8 --limit 10000 "$IDX" -o "$T/u10k.npy"
line "tensor2png 10000-image grid (3002x3002), uint8, level 6" "$(best "tensor2png '$T/u10k.npy' -o '$T/g.png'")" 10000 images
line "tensor2png 10000-image grid, float32, level 6" "$(best "tensor2png '$T/f10k.npy' -o '$T/g.png'")" 10000 images
echo "    (grid PNG: $(stat -c %s "$T/g.png") bytes)"
line "tensor2png 10000-image grid, float32, --level 1" "$(best "tensor2png --level 1 '$T/f10k.npy' -o '$T/g1.png'")" 10000 images
echo "    (grid PNG: $(stat -c %s "$T/g1.png") bytes)"
line "tensor2png 10000-image grid, float32, --level 9" "$(best "tensor2png --level 9 '$T/f10k.npy' -o '$T/g9.png'")" 10000 images
echo "    (grid PNG: $(stat -c %s "$T/g9.png") bytes)"
line "peer: NumPy grid + zlib level 6, no row filters" "$(best "$PY -c \"
import struct, zlib, numpy as np
x = np.load('$T/f10k.npy')
q = np.clip(np.floor((x + 1) * np.float32(127.5) + np.float32(0.5)), 0, 255).astype(np.uint8)
g = np.zeros((3002, 3002), np.uint8)
v = g[2:, 2:].reshape(100, 30, 100, 30)[:, :28, :, :28]
v[...] = q.reshape(100, 100, 28, 28).transpose(0, 2, 1, 3)
raw = np.concatenate([np.zeros((3002, 1), np.uint8), g], 1).tobytes()
c = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
open('$T/p.png', 'wb').write(b'\x89PNG\r\n\x1a\n' + c(b'IHDR', struct.pack('>IIBBBBB', 3002, 3002, 8, 0, 0, 0, 0))
    + c(b'IDAT', zlib.compress(raw, 6)) + c(b'IEND', b''))\"")" 10000 images
echo "    (peer PNG: $(stat -c %s "$T/p.png") bytes)"
