#!/usr/bin/env bash
# bench_train_step.sh: the training-step table, ours beside PyTorch 1.13 (the work is in
# bench_train_step.py; `make bench` builds bench/train_bench and the probe it needs).
exec /usr/bin/python3 "$(dirname "$0")/bench_train_step.py" "$@"
