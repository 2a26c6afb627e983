#!/usr/bin/env bash
# bench_fid.sh: gan-fid beside its peers, on the same machine in the same run.
#   Inception features: images/s of gan-fid (--save-features to /dev/null) on 3x32x32 uint8 images
#     resized to 299 (the FID Inception's 5.7 GFLOP an image), with random weights (the real file
#     cannot be downloaded here; the arithmetic is the same); the fixed cost (reading the 95 MB of
#     weights, allocating) is taken out by timing N_SMALL and N images. Peer: pytorch-fid's network
#     in torch 1.13 float32 (the tests' module), timed inside Python, batch 16, after a warm-up.
#   The distance at d = 2048: gan-fid on two statistics files (reading both, 2 x 32 MB, included)
#     beside pytorch-fid's formula (scipy.linalg.sqrtm of S1 S2) timed inside Python.
#   Statistics: gan-fid --save-stats of 20000 x 2048 float32 features, beside np.mean + np.cov.
# Figures are the best of BENCH_REPEAT (default 2) runs, wall clock. Threads: 1 and 2 (OpenBLAS
# and torch alike; OMP_WAIT_POLICY=passive for torch, see shared/PERF.md).
set -eu
R=${BENCH_REPEAT:-2}
T=${BENCH_TMP:-$(mktemp -d)}
PY=/usr/bin/python3
PEER="$PY $(dirname "$0")/fid_peer.py"
N=${BENCH_FID_IMAGES:-48}
N_SMALL=8

# best CMD: the best wall-clock seconds of R runs of CMD (a shell string)
best() {
    local b=""
    for _ in $(seq "$R"); do
        /usr/bin/time -f "%e" -o "$T/time" bash -c "$1" > /dev/null
        b=$(awk -v b="$b" '{ print (b == "" || $1 < b) ? $1 : b }' "$T/time")
    done
    echo "$b"
}

$PEER weights "$T/w.safetensors"
$PY -c "import numpy as np; r = np.random.default_rng(0)
np.save('$T/n.npy', r.integers(0, 256, ($N, 3, 32, 32), dtype=np.uint8))
np.save('$T/s.npy', r.integers(0, 256, ($N_SMALL, 3, 32, 32), dtype=np.uint8))"
echo "Inception features, 3x32x32 uint8 -> 299x299 (images/s, higher is better):"
for th in 1 2; do
    big=$(best "gan-fid -q --threads $th --batch 16 --weights '$T/w.safetensors' --save-features /dev/null '$T/n.npy'")
    small=$(best "gan-fid -q --threads $th --batch 16 --weights '$T/w.safetensors' --save-features /dev/null '$T/s.npy'")
    peer=$(OMP_WAIT_POLICY=passive $PEER torch "$N" "$th" 16 "$R")
    awk -v th="$th" -v b="$big" -v s="$small" -v n="$N" -v m="$N_SMALL" -v p="$peer" 'BEGIN {
        ours = (n - m) / (b - s)
        printf "  %d thread%s: gan-fid %6.2f images/s (fixed cost %.2f s)   torch %6.2f images/s   ratio %.2f\n",
               th, (th > 1 ? "s" : " "), ours, s - m / ours, p, ours / p }'
done

$PEER stats 4096 2048 "$T/a.npz" "$T/b.npz"
echo "Frechet distance at d = 2048 (seconds, lower is better):"
for th in 1 2; do
    ours=$(best "gan-fid -q --threads $th '$T/a.npz' '$T/b.npz'")
    peer=$(OPENBLAS_NUM_THREADS=$th OMP_NUM_THREADS=$th $PEER scipy "$T/a.npz" "$T/b.npz" "$R")
    awk -v th="$th" -v o="$ours" -v p="$peer" 'BEGIN {
        printf "  %d thread%s: gan-fid %6.2f s (with reading both files)   scipy sqrtm %6.2f s   ratio %.2f\n",
               th, (th > 1 ? "s" : " "), o, p, p / o }'
done
echo "  value: gan-fid $(gan-fid -q "$T/a.npz" "$T/b.npz")"

$PY -c "import numpy as np; np.save('$T/f.npy', np.random.default_rng(2).standard_normal((20000, 2048)).astype(np.float32))"
echo "Statistics of 20000 x 2048 float32 features (seconds):"
for th in 1 2; do
    ours=$(best "gan-fid -q --threads $th --save-stats /dev/null '$T/f.npy'")
    peer=$(OPENBLAS_NUM_THREADS=$th $PEER numpy "$T/f.npy" "$R")
    awk -v th="$th" -v o="$ours" -v p="$peer" 'BEGIN {
        printf "  %d thread%s: gan-fid %6.2f s (with reading 164 MB)   np.mean + np.cov %6.2f s\n",
               th, (th > 1 ? "s" : " "), o, p }'
done
