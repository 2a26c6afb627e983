#!/usr/bin/env bash
# bench_quality.sh: `bash bench/run.sh quality`, the quality yardstick at a short budget so that it
# stays usable here: the recipes of bench/quality_recipes.sh, BUDGET seconds of gan-step each
# (default 30), scored by bench/quality.sh; the table and grids stay in OUT (default
# build/quality-bench). The first run also trains the classifier once (a few minutes).
set -eu
BUDGET=${BUDGET:-30} OUT=${OUT:-build/quality-bench} exec bash "$(dirname "$0")/quality_recipes.sh" "$@"
