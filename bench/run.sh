#!/usr/bin/env bash
# run.sh: `make bench`. Runs every benchmark script bench/bench_*.sh in turn (or the ones named:
# `bash bench/run.sh data`), each printing its own figures. A new benchmark is a new
# bench_NAME.sh; it finds the programs on PATH (bin/ first) and may use $BENCH_TMP, a scratch
# directory removed afterwards. Timings on shared machines drift: compare ratios measured in
# one run; the machine's load (uptime) is printed first.
set -u
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH"
BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/gt-bench.XXXXXX")
export BENCH_TMP
trap 'rm -rf "$BENCH_TMP"' EXIT
echo "bench: $(uname -m), $(nproc) cores, load: $(uptime | sed 's/.*load average: //')"
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for f in bench/bench_*.sh; do names+=("$(basename "$f" .sh)"); done
fi
rc=0
for n in "${names[@]}"; do
    f=bench/${n#bench_}; f=bench/bench_${f#bench/}.sh
    [ -f "$f" ] || { echo "bench: no $f" >&2; rc=2; continue; }
    echo "== ${f#bench/}"
    bash "$f" || { echo "bench: ${f#bench/} failed" >&2; rc=1; }
done
exit $rc
