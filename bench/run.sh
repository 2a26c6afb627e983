#!/usr/bin/env bash
# run.sh: runs every benchmark in bench/ (one script per benchmark: bench_*.py with
# /usr/bin/python3, bench_*.sh with bash), each printing its own table. `make bench` builds
# the programs and the drivers first. The machine may be shared: each script prints the load.
set -u
cd "$(dirname "$0")/.."
status=0
for b in bench/bench_*; do
    [ -f "$b" ] || continue
    echo "== $b"
    case "$b" in
    *.py) /usr/bin/python3 "$b" || status=1 ;;
    *.sh) bash "$b" || status=1 ;;
    esac
done
exit $status
