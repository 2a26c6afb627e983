#!/usr/bin/env bats
# make install PREFIX=...: every program of cmd/ lands in PREFIX/bin, runs from there, and
# make uninstall removes them again.
# run.sh: release build only (nothing here runs the programs of $GT_BIN)
load helper

@test "make install PREFIX=DIR installs every program; uninstall removes them" {
    root=$BATS_TEST_DIRNAME/..
    run env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -s -C "$root" install PREFIX="$T/prefix"
    assert_success
    want=$(cd "$root/cmd" && ls *.c | sed 's/\.c$//' | LC_ALL=C sort | tr '\n' ' ')
    got=$(ls "$T/prefix/bin" | LC_ALL=C sort | tr '\n' ' ')
    [ "$got" = "$want" ] || { echo "installed: $got; programs: $want"; false; }
    for p in "$T"/prefix/bin/*; do
        [ -x "$p" ]
        run "$p" --version
        assert_success
        assert_output --regexp "^$(basename "$p") \(gan-tools\) [0-9]"
    done
    # DESTDIR for packagers
    run env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -s -C "$root" install PREFIX=/usr DESTDIR="$T/stage"
    assert_success
    [ -x "$T/stage/usr/bin/idx2tensor" ]
    run env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -s -C "$root" uninstall PREFIX="$T/prefix"
    assert_success
    [ -z "$(ls "$T/prefix/bin")" ]
}

@test "plain make builds the programs (the default goal is all, whatever rule comes first)" {
    run bash -c "make -C '$BATS_TEST_DIRNAME/..' -pqn 2>/dev/null | grep '^.DEFAULT_GOAL'"
    assert_output ".DEFAULT_GOAL := all"
}
