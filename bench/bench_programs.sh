#!/usr/bin/env bash
# bench_programs.sh: the programs' table: gan-step and gan-sample images/s for every preset beside
# PyTorch 1.13 (the work is in bench_programs.py; `make bench` builds what it needs).
exec /usr/bin/python3 "$(dirname "$0")/bench_programs.py" "$@"
