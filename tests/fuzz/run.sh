#!/usr/bin/env bash
# run.sh: `make fuzz`. Builds every tests/fuzz/fuzz_*.c as a libFuzzer target with
# clang -fsanitize=fuzzer,address,undefined (linked with the library sources directly, so
# they are instrumented too) and runs each for FUZZ_SECONDS (default 60) seconds, starting
# from its seed corpus tests/fuzz/corpus/<target>/ (made by tests/fuzz/make_corpus.py when
# one is missing). New inputs go to build/fuzz/corpus/<target>/; crashes to build/fuzz/crashes/.
# Exit status: 0 if no target found anything, 1 otherwise.
#
#   FUZZ_SECONDS=10 bash tests/fuzz/run.sh            # every target
#   bash tests/fuzz/run.sh fuzz_npy                   # only the named ones
#
# A target may name extra library sources it needs in a line "// fuzz-sources: a.c b.c"
# (paths from the repository root); the default is lib/base/common.c lib/base/tensor.c, the target's
# format (formats/<name>.c for fuzz_<name>.c) and what it lists.
set -u
cd "$(dirname "$0")/../.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
CLANG=${CLANG:-clang}
out=build/fuzz
mkdir -p "$out/crashes"
command -v "$CLANG" >/dev/null || { echo "run.sh: $CLANG not found (apt install clang)" >&2; exit 2; }
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
for t in "${targets[@]}"; do
    [ -d "tests/fuzz/corpus/$t" ] || { /usr/bin/python3 tests/fuzz/make_corpus.py; break; }
done

failed=()
for t in "${targets[@]}"; do
    src=tests/fuzz/$t.c
    name=${t#fuzz_}
    srcs=(lib/base/common.c lib/base/tensor.c)
    [ -f "formats/$name.c" ] && srcs+=("formats/$name.c")
    extra=$(sed -n 's,^// fuzz-sources: *,,p' "$src")
    # shellcheck disable=SC2206
    srcs+=($extra)
    echo "== $t: building"
    if ! "$CLANG" -std=c11 -g -O1 -I. -D_FILE_OFFSET_BITS=64 -I/usr/include/cjson \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        "$src" "${srcs[@]}" -lcjson -lpng -lz -lm -o "$out/$t"; then
        failed+=("$t(build)")
        continue
    fi
    mkdir -p "$out/corpus/$t" "tests/fuzz/corpus/$t"
    echo "== $t: fuzzing for ${SECONDS_EACH}s"
    if ! "$out/$t" -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$out/crashes/$t-" -print_final_stats=1 \
        "$out/corpus/$t" "tests/fuzz/corpus/$t" 2>"$out/$t.log"; then
        failed+=("$t")
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$out/$t.log" | head -10
    fi
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$out/$t.log" | tr '\n' ' '
    echo "corpus $(ls "$out/corpus/$t" | wc -l) files"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (logs and inputs in $out/)"
    exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${SECONDS_EACH}s each, nothing found"
