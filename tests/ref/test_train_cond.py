"""test_train_cond.py: class-conditional training works. A cdcgan (gan-init --arch cdcgan: G
conditioned by a class embedding joined with z, D by the projection term) trained on the
60000 Fashion-MNIST training images with their labels, at a fixed seed and budget, makes samples
of the class asked for: a nearest-class-mean classifier (Euclidean distance to the mean image of
each class of the real training images, read here with NumPy from the IDX files, independently
of the C code) assigns at least 80% of 1000 conditional samples (gan-sample --per-class 100) to
the class they were drawn for.

For scale: the same classifier labels 67.7% of the real test images correctly (it is a weak
classifier), and 10% is chance; an untrained model scores about chance, and the trained model's
samples scored against shifted classes (the class + 1) score far below the threshold (both are
checked, so the test can fail).

Calibration (seeds 1-3, batch 64, uint8 data and labels from idx2tensor --u8, gan-sample
--per-class 100 --seed 11; the fraction in the class asked for after 100, 200, 300 steps):
    EMA of G's weights (decay 0.99), what the test samples:
        seed 1: 0.10 0.38 0.999      seed 2: 0.10 0.30 0.937      seed 3: 0.10 0.28 0.466
    G's own weights (gan-sample --no-ema):
        seed 1: 0.33 0.955 0.866     seed 2: 0.10 0.862 0.502     seed 3: 0.44 0.53 0.721
Without EMA the samples of one step swing with the game (a class can vanish for a while, e.g.
seed 1's sandals at step 300); the EMA generator is steadier but lags (its BatchNorm statistics
are the trained G's), so it needs 300 steps. Seed 3 learns the classes more slowly (its EMA
scores 0.466 at 300 and 0.896 at 400). The test runs seed 1 at 300 steps with EMA (0.999 in calibration, so the
80% threshold leaves room for a change of rounding; the bits do not depend on the thread
count; after dropout's masks were keyed by layer index, which changes every cdcgan run, seed 1
scores 0.996 at 300 steps). Cost: about 0.7 s of CPU per step at batch 64 (measured on the shared 2-core machine:
about 210 CPU-seconds for the training, 2 minutes on 2 idle cores).
"""
import gzip
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tap import BIN, Tap, scratch_dir  # noqa: E402

FM = "/usr/share/datasets/fashion-mnist"
SEED, STEPS, EMA, PER_CLASS, THRESHOLD = 1, 300, "0.99", 100, 0.8


def prog(name):
    return os.path.join(BIN, name)


def idx(name, offset):
    return np.frombuffer(gzip.open(os.path.join(FM, name)).read(), np.uint8, offset=offset)


def main():
    t = Tap()
    tmp = scratch_dir("gt-cond-")
    x = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(np.float64)
    y = idx("train-labels-idx1-ubyte.gz", 8).astype(np.int64)
    means = np.stack([((x[y == k] - 127.5) / 127.5).mean(0) for k in range(10)])

    def ncm(a):
        a = a.reshape(a.shape[0], -1).astype(np.float64)
        d = (a ** 2).sum(1)[:, None] - 2 * a @ means.T + (means ** 2).sum(1)[None]
        return d.argmin(1)

    tx = (idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(np.float64) - 127.5) / 127.5
    ty = idx("t10k-labels-idx1-ubyte.gz", 8)
    real_acc = float((ncm(tx) == ty).mean())
    t.check(f"the classifier: {real_acc:.3f} of the real test images (a weak but real classifier)",
            0.6 < real_acc < 0.75)

    data, labels = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    for src, dst in (("train-images-idx3-ubyte.gz", data), ("train-labels-idx1-ubyte.gz", labels)):
        r = subprocess.run([prog("idx2tensor"), "--u8", os.path.join(FM, src), "-o", dst], capture_output=True,
                           text=True)
        if not t.check(f"idx2tensor --u8 {src}", r.returncode == 0, r.stderr):
            t.done()
            return
    t.check("uint8 labels as NumPy reads them", np.array_equal(np.load(labels), y))
    m0, m1 = os.path.join(tmp, "c0.st"), os.path.join(tmp, "c1.st")
    r = subprocess.run([prog("gan-init"), "--arch", "cdcgan", "--like", data, "--labels", labels, "--seed",
                        str(SEED), "--ema", EMA, "-o", m0], capture_output=True, text=True)
    if not t.check("gan-init --arch cdcgan --labels", r.returncode == 0, r.stderr):
        t.done()
        return
    r = subprocess.run([prog("gan-step"), "-q", "--data", data, "--labels", labels, "--steps", str(STEPS),
                        "--threads", "2", "-i", m0, "-o", m1], capture_output=True, text=True)
    if not t.check(f"gan-step --labels, {STEPS} steps", r.returncode == 0, r.stderr):
        t.done()
        return
    want = np.repeat(np.arange(10), PER_CLASS)
    acc = {}
    for which, m in (("untrained", m0), ("trained", m1)):
        out = os.path.join(tmp, which + ".npy")
        subprocess.run([prog("gan-sample"), "--per-class", str(PER_CLASS), "--seed", "11", "-i", m, "-o", out],
                       check=True)
        s = np.load(out)
        t.check(f"{which}: {s.shape[0]} samples", s.shape == (10 * PER_CLASS, 1, 28, 28))
        pred = ncm(s)
        acc[which] = float((pred == want).mean())
        acc[which + " shifted"] = float((pred == (want + 1) % 10).mean())
        per = " ".join(f"{(pred[want == k] == k).mean():.2f}" for k in range(10))
        print(f"# {which}: accuracy {acc[which]:.3f}, per class {per}")
    t.check(f"trained: {acc['trained']:.3f} of 1000 conditional samples in the class asked for (>= {THRESHOLD})",
            acc["trained"] >= THRESHOLD)
    t.check(f"control: against the next class {acc['trained shifted']:.3f} (< 0.3)", acc["trained shifted"] < 0.3)
    t.check(f"control: untrained {acc['untrained']:.3f} (< 0.3)", acc["untrained"] < 0.3)
    t.done()


if __name__ == "__main__":
    main()
