#!/usr/bin/env bash
# quality.sh: the quality yardstick for Fashion-MNIST GANs. For each MODEL, the Frechet distance
# of N_SAMPLES (default 10000) samples to the 10000 Fashion-MNIST test images, in the feature
# space of a small classifier (bench/quality_classifier.py, trained once and cached) and in
# pixel space (gan-fid --features pixels), and a 10 x 10 grid of samples beside the model.
#
#   bash bench/quality.sh MODEL...
#
# MODEL is a recipe directory holding model.st (what bench/quality_recipes.sh writes; the grid
# goes to DIR/grid.png), a checkpoint FILE.st (grid FILE-grid.png), or an .npy of 28 x 28
# images scored as they are, the first N_SAMPLES of them (e.g. real training images: the
# floor a perfect generator would reach; grid FILE-grid.png). Prints one line per model,
# tab-separated: NAME, "FD(classifier) VALUE", "FD(pixels) VALUE", GRID.
# Environment: N_SAMPLES (10000), SEED (1, gan-sample's latent seed; the grid uses the first
# 100 of the same latents), THREADS (0: all cores), PY (/usr/bin/python3), and the
# classifier's GAN_QUALITY_CACHE and GAN_QUALITY_DATA (the Fashion-MNIST directory).
# The test set, not the training set, is the reference: the classifier was fitted to the
# training images, so its features of those are not distributed as its features of unseen
# images, which the samples are; and 10000 test images match the 10000 samples.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
export PATH="$here/../bin:$PATH"
PY=${PY:-/usr/bin/python3}
N=${N_SAMPLES:-10000}
SEED=${SEED:-1}
THREADS=${THREADS:-0}
DATA=${GAN_QUALITY_DATA:-/usr/share/datasets/fashion-mnist}

cls() { "$PY" "$here/quality_classifier.py" "$@"; }
die() { echo "quality.sh: $*" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: bash bench/quality.sh MODEL... (a recipe directory, a checkpoint .st or images .npy)" >&2; exit 2; }
for m in "$@"; do
    [ -e "$m" ] || die "$m: no such file or directory"
    if [ -d "$m" ]; then [ -f "$m/model.st" ] || die "$m: a directory without model.st"; fi
done
command -v gan-fid > /dev/null || die "gan-fid not found: run make first"

T=$(mktemp -d "${TMPDIR:-/tmp}/gt-quality.XXXXXX")
trap 'rm -rf "$T"' EXIT

# The reference: statistics of the test images, in both feature spaces.
idx2tensor --u8 "$DATA/t10k-images-idx3-ubyte.gz" -o "$T/test.npy" || die "cannot read the test images in $DATA"
cls features "$T/test.npy" "$T/test-f.npy"
gan-fid -q --threads "$THREADS" --save-stats "$T/ref-classifier.npz" "$T/test-f.npy"
gan-fid -q --threads "$THREADS" --features pixels --save-stats "$T/ref-pixels.npz" "$T/test.npy"

# value LINE: the number in gan-fid's "FD(...) VALUE" line
value() { awk 'NR == 1 { print $2 }' <<< "$1"; }

for m in "$@"; do
    case "$m" in
        */) m=${m%/} ;;
    esac
    if [ -d "$m" ]; then
        name=$(basename "$m"); grid="$m/grid.png"; ckpt="$m/model.st"
    else
        name=$(basename "$m"); name=${name%.*}; grid="${m%.*}-grid.png"; ckpt=""
        case "$m" in *.st) ckpt=$m ;; esac
    fi
    if [ -n "$ckpt" ]; then
        gan-sample -n "$N" --seed "$SEED" --threads "$THREADS" -i "$ckpt" -o "$T/fake.npy"
        gan-sample -n 100 --seed "$SEED" --threads "$THREADS" -i "$ckpt" | tensor2png --cols 10 -o "$grid"
        imgs=$T/fake.npy
    else
        "$PY" -c "import numpy as np, sys; a = np.load(sys.argv[1], mmap_mode='r')
if len(a) < $N: sys.exit(f'quality.sh: {sys.argv[1]}: {len(a)} images, fewer than N_SAMPLES=$N')
np.save(sys.argv[2], a[:$N]); np.save(sys.argv[3], a[:100])" "$m" "$T/fake.npy" "$T/grid.npy"
        tensor2png --cols 10 -o "$grid" "$T/grid.npy"
        imgs=$T/fake.npy
    fi
    cls features "$imgs" "$T/fake-f.npy"
    fdc=$(value "$(gan-fid -q --threads "$THREADS" "$T/ref-classifier.npz" "$T/fake-f.npy")")
    fdp=$(value "$(gan-fid -q --threads "$THREADS" --features pixels "$T/ref-pixels.npz" "$imgs")")
    printf '%s\tFD(classifier) %.3f\tFD(pixels) %.3f\t%s\n' "$name" "$fdc" "$fdp" "$grid"
done
