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
    [ "${#lines[@]}" -eq 19 ]
    [[ "${lines[0]}" == "FD(pixels) 7.968"* ]]
    [[ "${lines[1]}" == "FD(pixels) 526.07"* ]]
    [ "${lines[2]}" = "${lines[0]}" ]
    [[ "${lines[3]}" == "KD(pixels) "*" std "* ]]
    [ "${lines[4]}" = "precision(pixels) 0.7705" ]
    [ "${lines[7]}" = "coverage(pixels) 0.977" ]
    # --labels: the overall line, then one line per class
    [ "${lines[8]}" = "${lines[0]}" ]
    [[ "${lines[9]}" == "FD(pixels)[class=0] 32.72"* ]]
    [[ "${lines[18]}" == "FD(pixels)[class=9] 33.83"* ]]
    for k in 1 2 3 4 5 6 7 8; do [[ "${lines[$((k + 9))]}" == "FD(pixels)[class=$k] "[0-9]* ]]; done
    $PY -c "import numpy as np; z = np.load('$T/real.npz'); assert int(z['n']) == 2000 and z['sigma'].shape == (784, 784)"
}

@test "README: the tensor-info, gan-init, gan-step and gan-sample examples run" {
    [ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || skip "no Fashion-MNIST"
    for p in tensor-info gan-init gan-step gan-sample; do examples $p; done > "$T/ex.sh"
    [ "$(grep -c . "$T/ex.sh")" -ge 16 ]
    run bash -c "cd '$T' && set -e -o pipefail && source ex.sh 2>/dev/null"
    assert_success
    assert_output --partial "shape   1000x1x28x28 (784000 elements)"
    assert_output --partial '"shape":[1000,1,28,28]'
    assert_output --partial "ema          = 0.99"
    assert_output --partial "resume is exact"
    assert_output --partial "the same images"
    assert_output --partial "shape   505x1x28x28"
    run tensor-info --json "$T/wgangp0.st"
    assert_output --partial '"n_critic":"5"'
    run tensor-info --json "$T/tiny0.st"
    assert_output --partial '"loss":"lsgan"'
    run tensor-info "$T/picked.npy"
    assert_output --partial "shape   16x1x28x28"
    [ "$(wc -l < "$T/loss.tsv")" -eq 3 ]
    [ "$(cut -f12 "$T/eval.tsv" | head -1)" = eval_fd ] && [ "$(wc -l < "$T/eval.tsv")" -eq 3 ] && [ -s "$T/best.st" ]
    $PY -c "import numpy as np; l = np.load('$T/c-labels.npy'); assert l.dtype == np.int64 and l.tolist() == [k for k in range(10) for _ in range(3)], l
assert np.load('$T/c.npy').shape == (30, 1, 28, 28)"
}

@test "README: the inspecting-intermediate-tensors examples run" {
    awk '/^## Inspecting intermediate tensors/ { on = 1; next } /^##/ { on = 0 } on && /^```sh/ { c = 1; next }
         /^```/ { c = 0 } on && c' "$BATS_TEST_DIRNAME/../README.md" > "$T/ex.sh"
    [ "$(grep -c . "$T/ex.sh")" -ge 8 ]
    $PY -c "import numpy as np; np.save('$T/train.npy', np.random.default_rng(0).integers(0, 256, (64, 1, 28, 28)).astype(np.uint8))"
    run bash -c "cd '$T' && set -e -o pipefail && source ex.sh"
    assert_success
    assert_output --partial "step3/grad.G.0.weight.npy"
    assert_output --partial "G.0.act_mean"
    assert_output --partial "shape   8x16x1x1"
}

@test "README: the evaluating-a-run examples run and print what they say" {
    awk '/^## Evaluating a run/ { on = 1; next } /^##/ { on = 0 } on && /^```sh/ { c = 1; next }
         /^```/ { c = 0 } on && c' "$BATS_TEST_DIRNAME/../README.md" > "$T/ex.sh"
    [ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || skip "no Fashion-MNIST"
    [ "$(grep -c . "$T/ex.sh")" -ge 8 ]
    run bash -c "cd '$T' && set -e -o pipefail && source ex.sh"
    assert_success
    # the figures the comments quote
    assert_output --partial "FD(pixels) 15.60"
    assert_output --partial "precision(pixels) 0.775"
    # the trained model's, within 2% (the last digits follow the CPU's GEMM kernels)
    near() { awk -v x="$1" -v want="$2" 'BEGIN { exit !(x != "" && (x - want) / want < 0.02 && (want - x) / want < 0.02) }' \
        || { echo "$3 is $1, not within 2% of $2"; return 1; }; }
    near "$(grep '^FD(pixels) ' <<< "$output" | sed -n 2p | cut -d' ' -f2)" 399 "FD(pixels) of the fakes"
    near "$(grep '^FD(m.st:6) ' <<< "$output" | cut -d' ' -f2)" 41 "FD(m.st:6)"
}
