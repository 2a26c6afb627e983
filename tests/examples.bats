#!/usr/bin/env bats
# examples.bats: the experiments in examples/Makefile build and train, on a small IDX file so
# that the whole pipeline (idx2tensor, gan-init with the spec files of examples/nets/,
# gan-step, gan-sample, gan-fid) runs in seconds.
load helper

# small_idx FILE N: N random 28x28 images as a gzipped IDX file, as Fashion-MNIST ships them
small_idx() {
    $PY -c '
import gzip, struct, sys, numpy as np
n = int(sys.argv[2])
px = np.random.default_rng(5).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
with gzip.open(sys.argv[1], "wb") as f:
    f.write(struct.pack(">IIII", 0x803, n, 28, 28) + px.tobytes())' "$1" "$2"
}

@test "examples/nets: every tutorial network trains through make -C examples" {
    small_idx "$T/img.gz" 300
    nets=$(cd "$BATS_TEST_DIRNAME/../examples/nets" && ls *.G | sed 's/\.G$//')
    [ -n "$nets" ]
    for n in $nets; do
        [ -f "$BATS_TEST_DIRNAME/../examples/nets/$n.D" ] || { echo "nets/$n.G without nets/$n.D"; return 1; }
    done
    run make -s -C "$BATS_TEST_DIRNAME/../examples" BIN="$GT_BIN" OUT="$T/out" IMAGES="$T/img.gz" \
        STEPS=2 SNAPSHOT_EVERY=1 N_FID=64 PLOT= $nets
    assert_success
    for n in $nets; do
        [ -s "$T/out/$n/samples.png" ] && [ -s "$T/out/$n/fd.txt" ]
        # the network is the spec file's, the optimizer and batch the tutorial's
        tensor-info --full "$T/out/$n/model.st" > "$T/$n.info"
        grep -q "step *= 2" "$T/$n.info"
    done
    grep -q 'opt_G *= sgd:lr=0.0005,momentum=0.9,.*nesterov' "$T/keras-dcgan.info"
    grep -q 'batch *= 128' "$T/keras-dcgan.info"
    grep -q 'D_spec *= conv 64 k5 s1 p2; tanh; maxpool k2' "$T/keras-dcgan.info"
    grep -q 'batch *= 256' "$T/tf-dcgan.info"
}
