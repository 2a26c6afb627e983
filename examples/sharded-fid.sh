#!/usr/bin/env bash
# sharded-fid.sh: the FID of N generated images, computed in SHARDS independent jobs and merged.
#
#   examples/sharded-fid.sh CHECKPOINT REAL N SHARDS [JOBS]
#
# Shard i of SHARDS: `gan-sample -n N --seed S --shard i/SHARDS` writes its slice of exactly the
# images one `gan-sample -n N --seed S` writes, `gan-fid --save-stats` scores them, and the
# images are deleted; `gan-fid --merge-stats` pools the statistics files (exactly, to rounding)
# and `gan-fid REAL merged.npz` prints the FID. JOBS shards run at once (xargs -P; default: the
# number of cores); on a cluster, run the shard command on N machines and merge the .npz files.
# REAL: images, or their statistics from `gan-fid --save-stats`. Environment: SEED (default 0),
# FEATURES (gan-fid --features; default inception, which needs GAN_FID_WEIGHTS), BATCH
# (gan-sample --batch; default 256), KEEP=DIR keeps the shards' statistics in DIR.
#
# example (100000 samples, 8 shards, 4 at a time; about 1.2 GB of images at a time, not 12):
#   GAN_FID_WEIGHTS=inception.safetensors examples/sharded-fid.sh m.st train-stats.npz 100000 8 4
set -euo pipefail
if [ $# -lt 4 ] || [ $# -gt 5 ]; then
    sed -n 's/^#   //p' "$0" | head -1 >&2
    exit 2
fi
ck=$1 real=$2 n=$3 shards=$4 jobs=${5:-$(nproc)}
seed=${SEED:-0} features=${FEATURES:-inception} batch=${BATCH:-256}
nb=$(((n + batch - 1) / batch))
if [ "$shards" -gt "$nb" ]; then
    echo "sharded-fid.sh: $shards shards of $nb batches of $batch: some would be empty; give at most $nb" >&2
    exit 2
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/sharded-fid.XXXXXX")
trap 'rm -rf "$dir"' EXIT

# one shard: sample, score, delete the images
shard() {
    local i=$1
    gan-sample -n "$n" --seed "$seed" --batch "$batch" --shard "$i/$shards" -i "$ck" -o "$dir/fake-$i.npy"
    gan-fid -q --features "$features" --save-stats "$dir/stats-$i.npz" "$dir/fake-$i.npy"
    rm -f "$dir/fake-$i.npy"
}
export -f shard
export n seed batch shards ck dir features
seq 0 $((shards - 1)) | xargs -P "$jobs" -I{} bash -c 'shard {}'

stats=()
for ((i = 0; i < shards; i++)); do stats+=("$dir/stats-$i.npz"); done
gan-fid -q --merge-stats "$dir/merged.npz" "${stats[@]}"
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "${stats[@]}" "$dir/merged.npz" "$KEEP/"; fi
gan-fid -q --features "$features" "$real" "$dir/merged.npz"
