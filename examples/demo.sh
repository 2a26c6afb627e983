#!/usr/bin/env bash
# demo.sh: README's main job. Trains the small DCGAN of examples/nets/small-dcgan.{G,D} (the
# dcgan preset at half its widths, chosen by measurement: bench/README.md, "The demo's recipe")
# on Fashion-MNIST and writes, in $DEMO_OUT (default demo-out/):
#   samples.png    an 8x8 grid of samples from the trained generator
#   progress.gif   the same 64 fixed latents sampled at every snapshot
#   losses.png     D and G losses from the training log (losses.tsv)
# Environment: DEMO_STEPS (default 2100), DEMO_SNAPSHOT (default 150), DEMO_THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH"

out=${DEMO_OUT:-demo-out}
steps=${DEMO_STEPS:-2100}
every=${DEMO_SNAPSHOT:-150}
threads=${DEMO_THREADS:-0}
data=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ ! -r "$data" ]; then
    echo "demo: $data not found; run 'make deps' as root (it installs dataset-fashion-mnist)" >&2
    exit 1
fi
mkdir -p "$out/snap" "$out/frames"
rm -f "$out"/snap/*.st "$out"/frames/*.png

echo "demo: converting Fashion-MNIST" >&2
idx2tensor --u8 "$data" -o "$out/train.npy"
tensor-info "$out/train.npy" >&2

echo "demo: a new small-dcgan model, and 64 fixed latents to watch it learn" >&2
gan-init --G "$(cat examples/nets/small-dcgan.G)" --D "$(cat examples/nets/small-dcgan.D)" --init dcgan \
    --like "$out/train.npy" --seed 1 --ema 0.99 -o "$out/model-0.st"
gan-sample -n 64 --seed 7 --z-out "$out/z64.npy" -o /dev/null < "$out/model-0.st"

echo "demo: training $steps steps at batch 64 (snapshots every $every)" >&2
start=$(date +%s)
gan-step --data "$out/train.npy" --steps "$steps" --batch 64 --threads "$threads" \
    --log "$out/losses.tsv" --log-every 10 \
    --snapshot-every "$every" --snapshot-dir "$out/snap" \
    -i "$out/model-0.st" -o "$out/model.st"
echo "demo: trained in $(( $(date +%s) - start )) s" >&2

for snap in "$out/model-0.st" "$out"/snap/*.st; do
    name=$(basename "$snap" .st)
    gan-sample --z-in "$out/z64.npy" < "$snap" | tensor2png --cols 8 --scale 2 -o "$out/frames/$name.png"
done
gan-sample --z-in "$out/z64.npy" < "$out/model.st" | tensor2png --cols 8 --scale 3 -o "$out/samples.png"

if command -v convert >/dev/null; then
    convert -delay 40 -loop 0 "$out/frames/model-0.png" "$out"/frames/step-*.png "$out/progress.gif"
else
    echo "demo: ImageMagick's convert not found; skipping progress.gif (make deps installs it)" >&2
fi
if command -v gnuplot >/dev/null; then
    gnuplot -e "set terminal pngcairo size 900,450 noenhanced; set output '$out/losses.png';
        set datafile separator '\t'; set key autotitle columnhead; set xlabel 'step'; set ylabel 'loss';
        set title 'small-dcgan on Fashion-MNIST';
        plot '$out/losses.tsv' using 'step':'loss_d' with lines title 'D loss', '' using 'step':'loss_g' with lines title 'G loss'" \
        || gnuplot -e "set terminal png size 900,450; set output '$out/losses.png';
        set datafile separator '\t'; set key autotitle columnhead; set xlabel 'step';
        plot '$out/losses.tsv' using 'step':'loss_d' with lines title 'D loss', '' using 'step':'loss_g' with lines title 'G loss'"
else
    echo "demo: gnuplot not found; skipping losses.png (make deps installs it)" >&2
fi
echo "demo: wrote $out/samples.png, $out/progress.gif, $out/losses.png" >&2
