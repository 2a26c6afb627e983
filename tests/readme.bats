#!/usr/bin/env bats
# readme.bats: the examples in README.md's sections on the data programs run as written, in
# order, in a scratch directory (with bin/ on PATH), and do what they say.
load helper

# the ```sh blocks of README section "### NAME..." (up to the next heading)
examples() {
    awk -v s="### $1" 'index($0, s) == 1 { on = 1; next } /^##/ { on = 0 } on && /^```sh/ { c = 1; next }
        /^```/ { c = 0 } on && c' "$BATS_TEST_DIRNAME/../README.md"
}

@test "README: the idx2tensor, png2tensor and tensor2png examples run" {
    [ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || skip "no Fashion-MNIST"
    for p in idx2tensor png2tensor tensor2png; do examples $p; done > "$T/ex.sh"
    [ "$(grep -c . "$T/ex.sh")" -ge 7 ]
    # the examples put ./bin on PATH, which is not in the scratch directory: the suite's
    # programs (maybe a sanitizer build) are the ones that run
    run bash -c "cd '$T' && set -e -o pipefail && source ex.sh"
    assert_success
    assert_output --partial "shape   60000 (60000 elements)"
    assert_output --partial "the same bytes"
    run tensor-info --json "$T/train.npy"
    assert_output --partial '"shape":[60000,1,28,28]'
    run $PY -c "import struct; d = open('$T/grid.png', 'rb').read(); print(d[:8] == b'\x89PNG\r\n\x1a\n', *struct.unpack('>IIBB', d[16:26]))"
    assert_output "True 484 484 8 0"
}

@test "README: the gan-fid example runs" {
    [ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || skip "no Fashion-MNIST"
    examples gan-fid > "$T/ex.sh"
    [ "$(grep -c . "$T/ex.sh")" -ge 8 ]
    run bash -c "cd '$T' && set -e -o pipefail && source ex.sh 2>/dev/null"
    assert_success
    [ "${#lines[@]}" -eq 4 ]
    [[ "${lines[0]}" == "FD(pixels) 7.968"* ]]
    [[ "${lines[1]}" == "FD(pixels) 526.07"* ]]
    [ "${lines[2]}" = "${lines[0]}" ]
    [[ "${lines[3]}" == "KD(pixels) "*" std "* ]]
    $PY -c "import numpy as np; z = np.load('$T/real.npz'); assert int(z['n']) == 2000 and z['sigma'].shape == (784, 784)"
}
