"""test_data_numpy.py: the data programs against an independent reading in NumPy.

- Debian's Fashion-MNIST (IDX, gzip): idx2tensor's train and test images and labels equal what
  NumPy reads from the gzip bytes (Python's gzip module, the IDX header parsed here): shapes
  60000 x 1 x 28 x 28 and 10000 x 1 x 28 x 28, float32 (v - 127.5) / 127.5 bit for bit, labels
  0..9 with 6000 per class in train; --limit 10000 as test_train_fid uses it.
- The whole training set round trip: IDX -> .npy uint8 -> 60000 PNG files (tensor2png --each)
  -> png2tensor gives back the same bytes; a sample of the PNGs decoded by tests/data/pngpy.py
  (a decoder written from the PNG specification) holds the same pixels.
- Floats in [-1, 1] -> PNG grid -> decoded independently: each value became
  round((x + 1) * 127.5), clamped; back through png2tensor the error is at most half a step.
- CIFAR-10 batches written here from random records: images and labels as NumPy slices them.
"""
import gzip
import io
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "data"))
import pngpy  # noqa: E402
from tap import BIN, Tap  # noqa: E402

FM = "/usr/share/datasets/fashion-mnist"


def prog(name, *args, **kw):
    return subprocess.run([os.path.join(BIN, name), *args], capture_output=True, **kw)


def read_idx(path):
    """An IDX file by hand: magic, type, dims (big endian), data."""
    raw = gzip.open(path).read()
    zero, typ, nd = struct.unpack(">HBB", raw[:4])
    assert zero == 0 and typ == 0x08, (zero, typ)
    dims = struct.unpack(">" + "I" * nd, raw[4:4 + 4 * nd])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)


def to_float(u8):
    return (u8.astype(np.float32) - np.float32(127.5)) / np.float32(127.5)


def main():
    tmp = tempfile.mkdtemp(prefix="gt-data-")
    try:
        run(Tap(), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(t, tmp):
    have_fm = os.path.exists(os.path.join(FM, "train-images-idx3-ubyte.gz"))
    if have_fm:
        for split, n in (("train", 60000), ("t10k", 10000)):
            img, lab = read_idx(f"{FM}/{split}-images-idx3-ubyte.gz"), read_idx(f"{FM}/{split}-labels-idx1-ubyte.gz")
            out = os.path.join(tmp, f"{split}.npy")
            r = prog("idx2tensor", f"{FM}/{split}-images-idx3-ubyte.gz", "-o", out)
            if t.check(f"idx2tensor {split} images", r.returncode == 0, r.stderr):
                x = np.load(out)
                t.check(f"{split}: shape {x.shape} float32", x.shape == (n, 1, 28, 28) and x.dtype == np.float32)
                t.check(f"{split}: (v - 127.5) / 127.5 of NumPy's reading, bit for bit",
                        np.array_equal(x, to_float(img[:, None])))
            r = prog("idx2tensor", f"{FM}/{split}-labels-idx1-ubyte.gz", "-o", out)
            if t.check(f"idx2tensor {split} labels", r.returncode == 0, r.stderr):
                y = np.load(out)
                counts = np.bincount(y, minlength=10).tolist() if y.dtype == np.int64 else None
                t.check(f"{split} labels: int64, equal to NumPy's, {n // 10} per class",
                        y.dtype == np.int64 and np.array_equal(y, lab) and counts == [n // 10] * 10, counts)
        img = read_idx(f"{FM}/train-images-idx3-ubyte.gz")
        r = prog("idx2tensor", "--limit", "10000", f"{FM}/train-images-idx3-ubyte.gz")
        x = np.load(io.BytesIO(r.stdout)) if r.returncode == 0 else None
        t.check("--limit 10000 to stdout (as test_train_fid uses it)",
                x is not None and np.array_equal(x, to_float(img[:10000, None])), r.stderr)

        # the whole training set through one PNG per image and back
        u8 = os.path.join(tmp, "u8.npy")
        pngdir = os.path.join(tmp, "png")
        os.mkdir(pngdir)
        r1 = prog("idx2tensor", "--u8", f"{FM}/train-images-idx3-ubyte.gz", "-o", u8)
        r2 = prog("tensor2png", "--each", os.path.join(pngdir, "img-%05d.png"), u8)
        r3 = prog("png2tensor", "--u8", pngdir, "-o", os.path.join(tmp, "back.npy"))
        ok = r1.returncode == 0 and r2.returncode == 0 and r3.returncode == 0
        if t.check("IDX -> npy u8 -> 60000 PNGs -> png2tensor", ok, r1.stderr + r2.stderr + r3.stderr):
            t.check("60000 files", len(os.listdir(pngdir)) == 60000)
            back = np.load(os.path.join(tmp, "back.npy"))
            t.check("png2tensor gives back the same bytes", back.dtype == np.uint8 and np.array_equal(back, img[:, None]))
            t.check("and the .npy files are identical", open(u8, "rb").read() == open(os.path.join(tmp, "back.npy"), "rb").read())
            sample = np.random.default_rng(0).choice(60000, 25, replace=False)
            same = all(np.array_equal(pngpy.decode(open(os.path.join(pngdir, "img-%05d.png" % i), "rb").read())[0][..., 0],
                                      img[i]) for i in sample)
            t.check("25 PNGs decoded independently hold the images' pixels", same)
    else:
        t.check("Fashion-MNIST present (make deps installs dataset-fashion-mnist)", False)

    # floats to a grid, decoded independently; and back through png2tensor
    rng = np.random.default_rng(1)
    x = rng.uniform(-1.2, 1.2, (7, 3, 9, 11)).astype(np.float32)
    x[0, 0, 0, :3] = [np.nan, -1, 1]
    f = os.path.join(tmp, "f.npy")
    np.save(f, x)
    r = prog("tensor2png", "--cols", "3", "--pad", "1", "--pad-value", "9", f)
    if t.check("tensor2png of floats", r.returncode == 0, r.stderr):
        px, ctype, depth = pngpy.decode(r.stdout)
        q = np.clip(np.floor((np.nan_to_num(x, nan=-1).astype(np.float64) + 1) * 127.5 + 0.5), 0, 255).astype(np.uint8)
        g = np.full((3 * 10 + 1, 3 * 12 + 1, 3), 9, np.uint8)
        for i in range(7):
            y0, x0 = 1 + (i // 3) * 10, 1 + (i % 3) * 12
            g[y0:y0 + 9, x0:x0 + 11] = q[i].transpose(1, 2, 0)
        t.check("grid: RGB, every value round((x + 1) * 127.5) clamped, padding 9", ctype == 2 and np.array_equal(px, g))
    x = np.clip(x[1:], -1, 1)
    np.save(f, x)
    d = os.path.join(tmp, "each")
    os.mkdir(d)
    r1 = prog("tensor2png", "--each", os.path.join(d, "%03d.png"), f)
    r2 = prog("png2tensor", d)
    if t.check("float [-1, 1] -> PNG -> png2tensor", r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr):
        back = np.load(io.BytesIO(r2.stdout)).astype(np.float64)
        err = np.abs(back - x).max()
        t.check(f"only 8-bit quantisation is lost: max error {err * 255:.6f} / 255 <= 1 / 255", err <= 1 / 255 + 1e-7)

    # CIFAR-10
    n = [10000, 3]
    files, xs, ys = [], [], []
    for k, m in enumerate(n):
        xi = rng.integers(0, 256, (m, 3, 32, 32), dtype=np.uint8)
        yi = rng.integers(0, 10, m, dtype=np.uint8)
        p = os.path.join(tmp, f"batch{k}.bin")
        with open(p, "wb") as fh:
            fh.write(np.concatenate([yi[:, None], xi.reshape(m, -1)], 1).tobytes())
        files.append(p)
        xs.append(xi)
        ys.append(yi)
    X, Y = np.concatenate(xs), np.concatenate(ys)
    out, lab = os.path.join(tmp, "cx.npy"), os.path.join(tmp, "cy.npy")
    r = prog("idx2tensor", "--cifar", "--offset", "9998", *files, "--labels", lab, "-o", out)
    if t.check("idx2tensor --cifar, two batches", r.returncode == 0, r.stderr):
        cx, cy = np.load(out), np.load(lab)
        t.check("CIFAR images: N x 3 x 32 x 32, NumPy's slice", cx.shape == (5, 3, 32, 32) and np.array_equal(cx, to_float(X[9998:])))
        t.check("CIFAR labels: int64", cy.dtype == np.int64 and np.array_equal(cy, Y[9998:]))
    t.done()


if __name__ == "__main__":
    main()
