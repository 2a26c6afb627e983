"""test_fid_numpy.py: gan-fid's statistics, Frechet distance, statistics files and KID against
NumPy and SciPy, and its checkpoint-network features against PyTorch.

- The Frechet distance of statistics files written by numpy.savez equals pytorch-fid's formula
  (scipy.linalg.sqrtm of S1 S2, with its eps * I fallback) to 1e-6 relative, at d = 64, 784 and
  2048, for random statistics (N > d) and near-singular ones (N < d: rank N - 1). It also
  equals the exact value, the nuclear norm of the product of the centred data matrices
  (tr sqrt(S1 S2) = sum of the singular values of Xc Yc^T / sqrt((n1-1)(n2-1)), no square root
  of a matrix involved), to 1e-12 (1e-8 near-singular) where that is affordable.
- --save-stats of a feature array gives np.mean and np.cov (N - 1) to 1e-12, n and the features
  name; the file loads in NumPy and scores like the array it came from. A pytorch-fid file (mu
  float32, sigma float64, no n) is read and scored, and refused by --merge-stats.
- Statistics of three shards, merged, equal the whole set's to 1e-12 relative.
- KID equals a NumPy implementation of the same formula on the same subsets (Philox 4x32-10 and
  the Fisher-Yates draw of lib/base/shuffle.h re-implemented here) to 1e-10.
- Precision, recall, density and coverage (--metrics pr,dc) equal a brute-force NumPy
  implementation of the papers' definitions (lib/fid/prdc.h: squared distances summed in feature
  order, radii excluding the row itself, inside when D <= radius) exactly, on random features, on
  features with duplicated rows and integer values (many exact ties), a collapsed generator, at
  d = 300, from float64 files, and with other k.
- --features CKPT.st:LAYER gives D's activations at LAYER as torch computes them (float64).
- clean-fid's resize (lib/fid/resample.h, through tests/tools/resize-probe) equals PIL's
  Image.resize(..., BICUBIC) in mode 'F' to 1e-6 of the values' range, down and up, gray and RGB.
"""
import os
import subprocess
import sys

import numpy as np
import scipy.linalg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tap import BIN, Tap, scratch_dir  # noqa: E402
from philoxref import philox_blocks  # noqa: E402

GAN_FID = os.path.join(BIN, "gan-fid")
STREAM_KID = 7


def run(*args):
    r = subprocess.run([GAN_FID, "-q"] + [str(a) for a in args], capture_output=True, text=True)
    return r


def value(r, label):
    """The number after LABEL in gan-fid's output, or None."""
    for line in r.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == label:
            return float(parts[1])
    return None


def pytorch_fid(mu1, s1, mu2, s2, eps=1e-6):
    """pytorch-fid's calculate_frechet_distance, written from its published definition."""
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def exact_fd(x, y):
    """The Frechet distance of the sample statistics without a matrix square root."""
    mx, my = x.mean(0), y.mean(0)
    a = (x - mx) / np.sqrt(len(x) - 1)
    b = (y - my) / np.sqrt(len(y) - 1)
    nuclear = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    return float(((mx - my) ** 2).sum() + (a * a).sum() + (b * b).sum() - 2 * nuclear)


# ---- Philox and the subsets, as lib/base/philox.h and lib/base/shuffle.h document them ---------------

def shuffle(n, seed, stream, step):
    """Fisher-Yates: for i = n-1 .. 1, r = words 2i (low) and 2i+1 (high), j = r mod (i+1)."""
    i = np.arange(n, dtype=np.uint64)
    w = philox_blocks(seed, stream, step, i >> np.uint64(1))  # words 2i, 2i+1 lie in block i >> 1
    odd = (i & np.uint64(1)).astype(bool)
    lo = np.where(odd, w[2], w[0])
    hi = np.where(odd, w[3], w[1])
    r = [int(v) for v in (lo | (hi << np.uint64(32)))]
    p = list(range(n))
    for k in range(n - 1, 0, -1):
        j = r[k] % (k + 1)
        p[k], p[j] = p[j], p[k]
    return p


def kid_numpy(x, y, subsets, size, seed):
    d = x.shape[1]
    m = min(size, len(x), len(y))
    est = []
    for s in range(subsets):
        a = x[shuffle(len(x), seed, STREAM_KID, 2 * s)[:m]].astype(np.float64)
        b = y[shuffle(len(y), seed, STREAM_KID, 2 * s + 1)[:m]].astype(np.float64)
        kxx = (a @ a.T / d + 1) ** 3
        kyy = (b @ b.T / d + 1) ** 3
        kxy = (a @ b.T / d + 1) ** 3
        est.append((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / m ** 2)
    return float(np.mean(est)), float(np.std(est))


def sqdist(x, y):
    """D(x, y) = sum_k (x_k - y_k)^2 in float64, summed in feature order (prdc.h's definition)."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    acc = np.zeros((len(x), len(y)))
    for k in range(x.shape[1]):
        t = x[:, None, k] - y[None, :, k]
        acc = acc + t * t
    return acc


def knn_radii(x, k):
    """The k-th smallest D from each row to the other rows (the row itself excluded by index)."""
    dd = sqdist(x, x)
    np.fill_diagonal(dd, np.inf)
    return np.sort(dd, axis=1)[:, k - 1]


def prdc_numpy(real, fake, k_pr=3, k_dc=5):
    """Kynkaanniemi et al.'s precision and recall, Naeem et al.'s density and coverage, brute
    force; inside a ball when D <= its radius."""
    d = sqdist(real, fake)
    rr, rf, rd = knn_radii(real, k_pr), knn_radii(fake, k_pr), knn_radii(real, k_dc)
    inside_real = d <= rr[:, None]
    inside_dc = d <= rd[:, None]
    return {"precision": int(inside_real.any(0).sum()) / len(fake),
            "recall": int((d <= rf[None, :]).any(1).sum()) / len(real),
            "density": int(inside_dc.sum()) / (k_dc * len(fake)),
            "coverage": int(inside_dc.any(1).sum()) / len(real)}


def data(rng, n, d, shift):
    """Correlated Gaussian features: n x d, float32 as gan-fid's features are."""
    mix = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    return (rng.standard_normal((n, d)) @ mix * (1 + shift) + shift).astype(np.float32)


def main():
    t = Tap()
    tmp = scratch_dir("gt-fid-")
    rng = np.random.default_rng(7)

    # ---- the Frechet distance of NumPy-written statistics against SciPy and the exact value
    for d in (64, 784, 2048):
        for kind, n in (("random", 2 * d), ("near-singular", d // 2)):
            x = data(rng, n, d, 0.0).astype(np.float64)
            y = data(rng, n + 3, d, 0.2).astype(np.float64)
            s = []
            for name, z in (("a", x), ("b", y)):
                p = os.path.join(tmp, f"{name}{d}.npz")
                mu, sigma = z.mean(0), np.cov(z, rowvar=False)
                np.savez(p, mu=mu, sigma=sigma)
                s.append((p, mu, sigma))
            r = run("--threads", "2", s[0][0], s[1][0])
            ours = value(r, "FID" if d == 2048 else "FD")
            if not t.check(f"d={d} {kind}: gan-fid scores NumPy's .npz statistics", ours is not None,
                           r.stderr + r.stdout):
                continue
            ref = pytorch_fid(s[0][1], s[0][2], s[1][1], s[1][2])
            t.close(ours, ref, 1e-6, f"d={d} {kind} (n={n}): {ours:.10g} equals pytorch-fid's formula {ref:.10g}")
            if n <= 1024:
                # near-singular: rounding sigma to float64 (1e-16) moves its null directions' tiny
                # eigenvalues, whose square roots (1e-8 of the scale) enter tr sqrt(S1 S2)
                tol = 1e-12 if kind == "random" else 1e-8
                ex = exact_fd(x, y)
                t.close(ours, ex, tol, f"d={d} {kind}: equals the exact value {ex:.12g} to {tol:g}")

    # ---- statistics files: ours in NumPy, NumPy's and pytorch-fid's in ours
    x = data(rng, 1500, 40, 0.0)
    y = data(rng, 1200, 40, 0.3)
    fx, fy = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    np.save(fx, x)
    np.save(fy, y)
    sx = os.path.join(tmp, "x.npz")
    r = run("--save-stats", sx, fx)
    if t.check("--save-stats of a feature array", r.returncode == 0, r.stderr):
        z = np.load(sx)
        x64 = x.astype(np.float64)
        t.check("our .npz holds mu, sigma, n and the features name",
                sorted(z.files) == ["features", "mu", "n", "sigma"] and int(z["n"]) == 1500
                and z["mu"].dtype == np.float64 and z["sigma"].dtype == np.float64
                and z["features"].tobytes() == b"features", str(z.files))
        t.close(z["mu"], x64.mean(0), 1e-12, "mu equals np.mean")
        t.close(z["sigma"], np.cov(x64, rowvar=False), 1e-12, "sigma equals np.cov (N - 1)")
        direct = value(run(fx, fy), "FD(features)")
        from_stats = value(run(sx, fy), "FD(features)")
        t.check(f"statistics score like their array ({from_stats} vs {direct})",
                direct is not None and from_stats is not None and abs(direct - from_stats) <= 1e-9 * abs(direct))
        ref = pytorch_fid(x64.mean(0), np.cov(x64, rowvar=False), y.astype(np.float64).mean(0),
                          np.cov(y.astype(np.float64), rowvar=False))
        t.close(direct, ref, 1e-6, "features arrays: equals pytorch-fid's formula")
    # pytorch-fid's file: mu float32 (np.mean of float32 activations), sigma float64, no n
    pf = os.path.join(tmp, "pytorch-fid.npz")
    np.savez(pf, mu=y.mean(0), sigma=np.cov(y, rowvar=False))
    r = run(sx, pf)
    ours = value(r, "FD(features)")
    ref = pytorch_fid(x.astype(np.float64).mean(0), np.cov(x.astype(np.float64), rowvar=False),
                      y.mean(0).astype(np.float64), np.cov(y, rowvar=False))
    if t.check("a pytorch-fid .npz (mu float32, no n) is scored", ours is not None, r.stderr):
        t.close(ours, ref, 1e-6, "pytorch-fid .npz: equals pytorch-fid's formula")
    r = run("--merge-stats", os.path.join(tmp, "m.npz"), sx, pf)
    t.check("merging a file without n is a one-line error",
            r.returncode == 1 and "cannot be merged" in r.stderr and len(r.stderr.strip().splitlines()) == 1
            and not os.path.exists(os.path.join(tmp, "m.npz")), r.stderr)

    # ---- shards merged equal the whole set
    w = data(rng, 3001, 50, 0.1) * np.float32(3) + np.float32(5)  # a mean far from 0
    shards = []
    for i, (a, b) in enumerate(((0, 1000), (1000, 1002), (1002, 3001))):
        p = os.path.join(tmp, f"shard{i}.npy")
        np.save(p, w[a:b])
        sp = os.path.join(tmp, f"shard{i}.npz")
        r = run("--save-stats", sp, p)
        shards.append(sp)
    whole = os.path.join(tmp, "whole.npy")
    np.save(whole, w)
    run("--save-stats", os.path.join(tmp, "whole.npz"), whole)
    r = run("--merge-stats", os.path.join(tmp, "merged.npz"), *shards)
    if t.check("--merge-stats of three shards", r.returncode == 0, r.stderr):
        m, wz = np.load(os.path.join(tmp, "merged.npz")), np.load(os.path.join(tmp, "whole.npz"))
        t.check("merged n is the sum", int(m["n"]) == 3001)
        t.close(m["mu"], wz["mu"], 1e-12, "merged mu equals the whole set's")
        t.close(m["sigma"], wz["sigma"], 1e-12, "merged sigma equals the whole set's")
        w64 = w.astype(np.float64)
        t.close(m["sigma"], np.cov(w64, rowvar=False), 1e-12, "merged sigma equals np.cov of the whole set")
    r = run("--merge-stats", os.path.join(tmp, "merged2.npz"), shards[0], os.path.join(tmp, "shard1.npy"),
            os.path.join(tmp, "shard2.npy"))
    if t.check("--merge-stats of statistics and arrays together", r.returncode == 0, r.stderr):
        m2 = np.load(os.path.join(tmp, "merged2.npz"))
        t.close(m2["sigma"], np.load(os.path.join(tmp, "whole.npz"))["sigma"], 1e-12, "mixed merge equals the whole")

    # ---- KID against NumPy on the same subsets
    kx = data(rng, 300, 32, 0.0) * np.float32(0.5)
    ky = data(rng, 260, 32, 0.1) * np.float32(0.5)
    px, py = os.path.join(tmp, "kx.npy"), os.path.join(tmp, "ky.npy")
    np.save(px, kx)
    np.save(py, ky)
    for subsets, size, seed in ((10, 100, 0), (7, 1000, 12345)):
        r = run("--kid", "--kid-subsets", subsets, "--kid-subset-size", size, "--seed", seed, px, py)
        line = [ln.split() for ln in r.stdout.splitlines() if ln.startswith("KD(features)")]
        if not t.check(f"--kid {subsets} subsets of {size}, seed {seed}", r.returncode == 0 and line, r.stderr):
            continue
        mean, std = float(line[0][1]), float(line[0][3])
        rm, rs = kid_numpy(kx, ky, subsets, size, seed)
        t.check(f"KID mean {mean:.10g} equals NumPy's {rm:.10g}", abs(mean - rm) <= 1e-10 * abs(rm) + 1e-15)
        t.check(f"KID std {std:.10g} equals NumPy's {rs:.10g}", abs(std - rs) <= 1e-8 * abs(rs) + 1e-15)

    # ---- precision, recall, density, coverage against brute force NumPy, exactly
    base = rng.integers(0, 3, (40, 4)).astype(np.float32)
    fl = data(rng, 30, 24, 0.0)
    cases = [
        ("random", data(rng, 150, 6, 0.0), data(rng, 130, 6, 0.3), (), np.float32),
        # integer features: many exactly tied distances; duplicated rows in each set and across
        ("ties and duplicates", np.concatenate([base, base[:15], base[:5]]),
         np.concatenate([base[10:30], rng.integers(0, 3, (30, 4)).astype(np.float32), base[:3]]), (), np.float32),
        ("duplicated random rows", np.concatenate([fl, fl[:20], fl[:20]]) * np.float32(1.7) + np.float32(0.3),
         np.concatenate([fl[5:25], data(rng, 20, 24, 0.2)]) * np.float32(1.7) + np.float32(0.3), (), np.float32),
        ("a collapsed generator (30 copies of one row) against clusters of 13 copies",
         np.concatenate([fl] + [fl[:3]] * 12), np.concatenate([fl[:1]] * 30 + [fl]), (), np.float32),
        ("d=300", data(rng, 90, 300, 0.0), data(rng, 70, 300, 0.1), (), np.float32),
        ("float64 files, --pr-k 1 --dc-k 2", data(rng, 60, 5, 0.0), data(rng, 50, 5, 0.5),
         ("--pr-k", 1, "--dc-k", 2), np.float64),
    ]
    for name, real, fake, extra, dt in cases:
        pr, pf3 = os.path.join(tmp, "real.npy"), os.path.join(tmp, "fake.npy")
        np.save(pr, real.astype(dt))
        np.save(pf3, fake.astype(dt))
        r = run("--metrics", "pr,dc", *extra, pr, pf3)
        kpr, kdc = (int(extra[1]), int(extra[3])) if extra else (3, 5)
        ref = prdc_numpy(real, fake, kpr, kdc)
        got = {m: value(r, f"{m}(features)") for m in ref}
        t.check(f"prdc {name}: {got} equal NumPy's {ref} exactly",
                r.returncode == 0 and got == ref and "FD(" not in r.stdout, r.stderr + r.stdout)

    # ---- a checkpoint's D as the feature network, against torch
    try:
        import torch  # noqa: F401
        import nnref
    except ImportError as e:
        t.check("torch for the network features", False, str(e))
        t.done()
    # ---- clean-fid's resize against PIL (python3-pil)
    try:
        from PIL import Image
    except ImportError as e:
        t.check("PIL for the resize reference (apt-get install python3-pil)", False, str(e))
        t.done()
    for (n, c, h, w), (oh, ow) in (((2, 3, 32, 32), (299, 299)), ((1, 1, 28, 28), (299, 299)),
                                   ((1, 3, 331, 310), (299, 299)), ((2, 1, 17, 45), (9, 50)), ((1, 2, 40, 7), (40, 3))):
        imgs = rng.uniform(-1, 1, (n, c, h, w)).astype(np.float32)
        pin, pout = os.path.join(tmp, "rs-in.npy"), os.path.join(tmp, "rs-out.npy")
        np.save(pin, imgs)
        r = subprocess.run([nnref.tool_path("resize-probe"), pin, str(oh), str(ow), pout], capture_output=True,
                           text=True)
        if not t.check(f"resize-probe {h}x{w} -> {oh}x{ow}", r.returncode == 0, r.stderr):
            continue
        ref = np.stack([np.stack([np.asarray(Image.fromarray(imgs[i, k], mode="F").resize((ow, oh), Image.BICUBIC))
                                  for k in range(c)]) for i in range(n)])
        ours = np.load(pout)
        err = float(np.abs(ours - ref).max()) if ours.shape == ref.shape else float("inf")
        t.check(f"{c}x{h}x{w} -> {oh}x{ow}: equals PIL's BICUBIC in mode F (max error {err:.2g} on values in [-1, 1])",
                err <= 1e-6, "")

    gan_init = os.path.join(BIN, "gan-init")
    ck = os.path.join(tmp, "m.st")
    r = subprocess.run([gan_init, "--G", "linear 64; tanh; reshape 1x8x8",
                        "--D", "flatten; linear 32; bn; lrelu 0.2; linear 16; tanh; linear 1",
                        "--shape", "1x8x8", "--z", "8", "--seed", "3", "-o", ck], capture_output=True, text=True)
    if t.check("gan-init a small model", r.returncode == 0, r.stderr):
        imgs = rng.uniform(-1, 1, (20, 1, 8, 8)).astype(np.float32)
        pi, pf2 = os.path.join(tmp, "imgs.npy"), os.path.join(tmp, "feat.npy")
        np.save(pi, imgs)
        # layer 2, a bn before its activation, is read though net.c would fuse the pair
        for layer, width in ((2, 32), (3, 32), (5, 16), (None, 16)):
            spec = ck if layer is None else f"{ck}:{layer}"
            r = run("--features", spec, "--save-features", pf2, pi)
            if not t.check(f"--features {os.path.basename(spec)} --save-features", r.returncode == 0, r.stderr):
                continue
            f = np.load(pf2)
            ref = d_features(ck, imgs, 5 if layer is None else layer)
            t.check(f"layer {layer}: {f.shape} features", f.shape == (20, width), str(f.shape))
            t.close(f, ref, 1e-5, f"D[:{(5 if layer is None else layer) + 1}] equals torch float64")
    t.done()


def d_features(ck, imgs, layer):
    """torch float64: the output of D's layer LAYER (0-based) on imgs, from the checkpoint."""
    import json
    import struct

    import torch
    import nnref
    b = open(ck, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    net, _ = nnref.build(h["__metadata__"]["D_spec"], imgs.shape[1:])
    sd = {}
    for k, v in h.items():
        if k.startswith("D."):
            s, e = v["data_offsets"]
            dt = {"F32": np.float32, "I64": np.int64}[v["dtype"]]
            a = np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt).reshape(v["shape"]).copy()
            sd[k[2:]] = torch.from_numpy(a.astype(np.float64) if dt == np.float32 else a)
    net.load_state_dict(sd)
    net.eval()
    with torch.no_grad():
        _, outs = nnref.forward(net, torch.from_numpy(imgs).double(), collect=True)
    return outs[layer].reshape(len(imgs), -1).numpy()


if __name__ == "__main__":
    main()
