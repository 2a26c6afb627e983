#!/usr/bin/env bash
# bench_fid.sh: gan-fid beside its peers, on the same machine in the same run.
#   Inception features: images/s of gan-fid (--save-features to /dev/null) on 3x32x32 uint8 images
#     resized to 299 (the FID Inception's 5.7 G multiply-adds, 11.4 GFLOP, an image), with random weights (the real file
#     cannot be downloaded here; the arithmetic is the same); the fixed cost (reading the 95 MB of
#     weights, allocating) is taken out by timing N_SMALL and N images. Peer: pytorch-fid's network
#     in torch 1.13 float32 (the tests' module), timed inside Python, batch 16, after a warm-up.
#   The distance at d = 2048: gan-fid on two statistics files (reading both, 2 x 32 MB, included)
#     beside pytorch-fid's formula (scipy.linalg.sqrtm of S1 S2) timed inside Python.
#   Statistics: gan-fid --save-stats of 20000 x 2048 float32 features, beside np.mean + np.cov.
# Figures are the best of BENCH_REPEAT (default 2) runs, by wall clock and by CPU time (user +
# system, all threads: the steadier figure on a shared machine). Threads: 1 and 2 (OpenBLAS and
# torch alike; OMP_WAIT_POLICY=passive for torch, see bench/README.md).
set -eu
R=${BENCH_REPEAT:-2}
T=${BENCH_TMP:-$(mktemp -d)}
PY=/usr/bin/python3
PEER="$PY $(dirname "$0")/fid_peer.py"
N=${BENCH_FID_IMAGES:-48}
N_SMALL=8

# best CMD: "WALL CPU", the best wall-clock and the best CPU (user + system) seconds of R runs
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

$PEER weights "$T/w.safetensors"
$PY -c "import numpy as np; r = np.random.default_rng(0)
np.save('$T/n.npy', r.integers(0, 256, ($N, 3, 32, 32), dtype=np.uint8))
np.save('$T/s.npy', r.integers(0, 256, ($N_SMALL, 3, 32, 32), dtype=np.uint8))"
echo "Inception features, 3x32x32 uint8 -> 299x299, images/s by wall clock (by CPU time):"
for th in 1 2; do
    big=$(best "gan-fid -q --threads $th --batch 16 --weights '$T/w.safetensors' --save-features /dev/null '$T/n.npy'")
    small=$(best "gan-fid -q --threads $th --batch 16 --weights '$T/w.safetensors' --save-features /dev/null '$T/s.npy'")
    peer=$(OMP_WAIT_POLICY=passive $PEER torch "$N" "$th" 16 "$R")
    echo "$big $small $peer" | awk -v th="$th" -v n="$N" -v m="$N_SMALL" '{
        w = (n - m) / ($1 - $3); c = (n - m) / ($2 - $4)
        printf "  %d thread%s: gan-fid %5.2f (%5.2f) images/s   torch %5.2f (%5.2f)   ratio %.2f (%.2f)\n",
               th, (th > 1 ? "s" : " "), w, c, $5, $6, w / $5, c / $6 }'
done

$PEER stats 4096 2048 "$T/a.npz" "$T/b.npz"
echo "Frechet distance at d = 2048, seconds by wall clock (CPU time); gan-fid's include reading both files:"
for th in 1 2; do
    ours=$(best "gan-fid -q --threads $th '$T/a.npz' '$T/b.npz'")
    peer=$(OPENBLAS_NUM_THREADS=$th OMP_NUM_THREADS=$th $PEER scipy "$T/a.npz" "$T/b.npz" "$R")
    echo "$ours $peer" | awk -v th="$th" '{
        printf "  %d thread%s: gan-fid %6.2f (%6.2f) s   scipy sqrtm %6.2f (%6.2f) s   speed-up %.2f (%.2f)\n",
               th, (th > 1 ? "s" : " "), $1, $2, $3, $4, $3 / $1, $4 / $2 }'
done
echo "  value: gan-fid $(gan-fid -q "$T/a.npz" "$T/b.npz")"

$PY -c "import numpy as np; np.save('$T/f.npy', np.random.default_rng(2).standard_normal((20000, 2048)).astype(np.float32))"
echo "Statistics of 20000 x 2048 float32 features, seconds by wall clock (CPU time):"
for th in 1 2; do
    ours=$(best "gan-fid -q --threads $th --save-stats /dev/null '$T/f.npy'")
    peer=$(OPENBLAS_NUM_THREADS=$th $PEER numpy "$T/f.npy" "$R")
    echo "$ours $peer" | awk -v th="$th" '{
        printf "  %d thread%s: gan-fid %6.2f (%6.2f) s with reading 164 MB   np.mean + np.cov %6.2f (%6.2f) s in memory\n",
               th, (th > 1 ? "s" : " "), $1, $2, $3, $4 }'
done
