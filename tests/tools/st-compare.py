#!/usr/bin/python3
"""st-compare.py [--norm max|l2] [--rtol R] [--loose NAME]... [--tol GLOB=R]... [--skip GLOB]... A.st B.st:
compare two gan-tools checkpoints tensor by tensor.

Used by tests/mpi.bats to check that a data-parallel run gives the one-process weights. For
every tensor (weights, optimizer state, BatchNorm running statistics, EMA) the relative error
is max|a - b| / max|b| (--norm max, the default) or |a - b| / |b| in the L2 norm (--norm
l2); tensors named by --loose are allowed 1e-3, tensors whose name matches the shell pattern
GLOB of a --tol are allowed R (the last matching --tol counts), tensors matching a --skip are
reported but not judged; integer tensors (num_batches_tracked) and the metadata that counts
(step, epoch, epoch position, seed) must be equal. Prints one line per tensor that is not
bit-identical and a summary: "identical K of N tensors; worst NAME REL" (over the judged
tensors). Exit 0 when every judged tensor is within its tolerance (--rtol, default 1e-5),
1 otherwise."""
import fnmatch
import json
import struct
import sys

import numpy as np


def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    data = b[8 + n:]
    dt = {"F32": np.float32, "I64": np.int64, "F64": np.float64, "U8": np.uint8}
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(data[s:e], dtype=dt[v["dtype"]]).reshape(v["shape"])
    return h.get("__metadata__", {}), out


def main():
    args = sys.argv[1:]
    rtol, norm, loose, tols, skips = 1e-5, "max", set(), [], []
    while "--loose" in args:
        i = args.index("--loose")
        loose.add(args[i + 1])
        del args[i:i + 2]
    while "--tol" in args:
        i = args.index("--tol")
        pat, _, r = args[i + 1].rpartition("=")
        tols.append((pat, float(r)))
        del args[i:i + 2]
    while "--skip" in args:
        i = args.index("--skip")
        skips.append(args[i + 1])
        del args[i:i + 2]
    if "--norm" in args:
        i = args.index("--norm")
        norm = args[i + 1]
        del args[i:i + 2]
    if "--rtol" in args:
        i = args.index("--rtol")
        rtol = float(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    ma, a = read_st(args[0])
    mb, b = read_st(args[1])
    bad = []
    if sorted(a) != sorted(b):
        bad.append("tensor names differ: %s" % sorted(set(a) ^ set(b)))
    for k in ("step", "epoch", "epoch_pos", "seed"):
        if k in ma or k in mb:
            if ma.get(k) != mb.get(k):
                bad.append("metadata %s: %s vs %s" % (k, ma.get(k), mb.get(k)))
    same, worst, worst_name = 0, 0.0, "-"
    for k in sorted(set(a) & set(b)):
        x, y = a[k], b[k]
        if x.shape != y.shape or x.dtype != y.dtype:
            bad.append("%s: %s %s vs %s %s" % (k, x.dtype, x.shape, y.dtype, y.shape))
            continue
        if x.tobytes() == y.tobytes():
            same += 1
            continue
        if x.dtype.kind in "iu":
            bad.append("%s: integers differ" % k)
            continue
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        if norm == "max":
            scale, diff = np.abs(y64).max(), np.abs(x64 - y64).max()
        else:
            scale, diff = np.linalg.norm(y64), np.linalg.norm(x64 - y64)
        err = diff / scale if scale > 0 else diff
        if not np.isfinite(err):
            err = np.inf
        skip = any(fnmatch.fnmatchcase(k, g) for g in skips)
        print("%-28s rel %.3g (%d of %d elements differ)%s" % (k, err, int((x != y).sum()), x.size,
                                                              " (not judged)" if skip else ""))
        if skip:
            continue
        if err > worst:
            worst, worst_name = err, k
        tol = 1e-3 if k in loose else rtol
        for pat, r in tols:
            if fnmatch.fnmatchcase(k, pat):
                tol = r
        if err > tol:
            bad.append("%s: relative error %.3g > %g" % (k, err, tol))
    print("identical %d of %d tensors; worst %s %.3g" % (same, len(a), worst_name, worst))
    for m in bad:
        print("FAIL " + m)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
