# helper.bash: loaded by every tests/*.bats file (`load helper`).
# Programs are taken from $GT_BIN (tests/run.sh points it at the release or the sanitizer
# build; default bin/). Each test gets a private scratch directory $T.

# bats-support and bats-assert: their src/*.bash, as their load.bash lists them, sourced directly.
# (load.bash finds each with a $(dirname ...): 14 process starts before every test, which cost
# 0.2 s of CPU a test, more than many tests themselves.) A load.bash of another form is loaded.
gt_load_lib() {
    local dir=/usr/lib/bats/$1 line n=0
    local re='^source "\$\(dirname "\$\{BASH_SOURCE\[0\]\}"\)/([A-Za-z0-9_/.-]+\.bash)"$'
    while IFS= read -r line; do
        [[ $line =~ $re ]] || continue
        source "$dir/${BASH_REMATCH[1]}" || return 1
        n=$((n + 1))
    done <"$dir/load.bash"
    [ "$n" -gt 0 ] || load "$dir/load"
}
gt_load_lib bats-support
gt_load_lib bats-assert

GT_BIN=${GT_BIN:-$BATS_TEST_DIRNAME/../bin}
PATH="$GT_BIN:$PATH"
PY=/usr/bin/python3
FMNIST=/usr/share/datasets/fashion-mnist

setup() {
    T=$(mktemp -d "${BATS_TMPDIR:-/tmp}/gt.XXXXXX")
}

teardown() {
    rm -rf "$T"
}

# memo OUT KEY CMD...: CMD... writes a fixture to the path it is given as its last argument; the
# first call with KEY in a bats file runs it (into $BATS_FILE_TMPDIR), each call copies that file
# to OUT. For fixtures that are the same bytes every time (seeded data), which many tests of a file
# make alike: Python and NumPy start in 0.2-0.3 s of CPU, a copy in none.
memo() {
    local out=$1 key=$BATS_FILE_TMPDIR/memo.$2; shift 2
    if [ ! -f "$key" ]; then
        local tmp
        tmp=$(mktemp -d "$BATS_FILE_TMPDIR/memo.XXXXXX") || return 1
        "$@" "$tmp/$(basename "$key")" && mv "$tmp/$(basename "$key")" "$key" || { rm -rf "$tmp"; return 1; }
        rm -rf "$tmp"
    fi
    cp "$key" "$out"
}

# assert_one_line_error CODE: the last `run` failed with exit CODE and printed exactly one
# line on stderr+stdout, starting with the program's name.
assert_one_line_error() {
    [ "$status" -eq "$1" ] || { echo "exit $status, expected $1: $output"; return 1; }
    [ "${#lines[@]}" -eq 1 ] || { echo "expected one line, got: $output"; return 1; }
}
