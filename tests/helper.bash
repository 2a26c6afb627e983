# helper.bash: loaded by every tests/*.bats file (`load helper`).
# Programs are taken from $GT_BIN (tests/run.sh points it at the release or the sanitizer
# build; default bin/). Each test gets a private scratch directory $T.
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

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

# assert_one_line_error CODE: the last `run` failed with exit CODE and printed exactly one
# line on stderr+stdout, starting with the program's name.
assert_one_line_error() {
    [ "$status" -eq "$1" ] || { echo "exit $status, expected $1: $output"; return 1; }
    [ "${#lines[@]}" -eq 1 ] || { echo "expected one line, got: $output"; return 1; }
}
