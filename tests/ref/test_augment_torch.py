"""test_augment_torch.py: PyTorch float64 parity of DiffAugment (lib/gan/diffaug.h) through the C
probe tests/tools/aug-probe.c: for each policy and a few image shapes, our augmented images
T(x), the tangent map (T's linear part) applied to v and its adjoint applied to v (the gradient
that flows back into the images) against torch.autograd's jvp and vjp of the policies of
augref.py (written from the authors' DiffAugment_pytorch.py, fed the random numbers our Philox
stream gives). Also that the draws really vary (shifts of both signs, cut-out zeros) and a
finite-difference check of the reference itself. 1e-5 relative.
Run: GT_BIN=$PWD/bin /usr/bin/python3 tests/ref/test_augment_torch.py"""
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nnref  # noqa: E402
from augref import draws, transform  # noqa: E402
from tap import Tap, scratch_dir  # noqa: E402

RTOL = 1e-5
t = Tap()
tmp = scratch_dir("gt-aug-")
probe = nnref.tool_path("aug-probe")


def run(policy, shape, B, seed, step, index0, threads=1, rng=0):
    g = np.random.default_rng(rng)
    x = g.standard_normal((B,) + shape).astype(np.float32)
    v = g.standard_normal((B,) + shape).astype(np.float32)
    np.save(f"{tmp}/x.npy", x)
    np.save(f"{tmp}/v.npy", v)
    subprocess.run([probe, "--policy", policy, "--x", f"{tmp}/x.npy", "--v", f"{tmp}/v.npy", "--seed", str(seed),
                    "--step", str(step), "--index0", str(index0), "--threads", str(threads), "--out", tmp],
                   check=True)
    ours = {k: np.load(f"{tmp}/{k}.npy").astype(np.float64) for k in ("y", "ty", "dx")}
    T, tx, ty = transform(policy, shape[1], shape[2], draws(seed, step, index0, B))
    xt = torch.tensor(x, dtype=torch.float64)
    vt = torch.tensor(v, dtype=torch.float64)
    y, jv = torch.autograd.functional.jvp(T, xt, vt)
    _, vj = torch.autograd.functional.vjp(T, xt, vt)
    name = f"{policy} {shape} B={B} step={step} index0={index0}"
    t.close(ours["y"], y.numpy(), RTOL, f"{name}: T(x)")
    t.close(ours["ty"], jv.numpy(), RTOL, f"{name}: tangent (linear part of T) of v")
    t.close(ours["dx"], vj.numpy(), RTOL, f"{name}: adjoint of v (gradient w.r.t. x)")
    return ours, tx, ty


policies = ["color", "translation", "cutout", "translation,cutout", "color,cutout", "color,translation,cutout"]
for i, p in enumerate(policies):
    run(p, (3, 8, 8), 5, seed=7, step=16 * 3 + 1, index0=0, rng=i)
for i, p in enumerate(["color,translation,cutout", "translation,cutout"]):
    run(p, (1, 7, 10), 6, seed=11, step=5, index0=13, rng=10 + i)  # odd and uneven sizes
    run(p, (2, 1, 5), 4, seed=11, step=5, index0=13, rng=20 + i)   # one row: a cut of 1
# large enough that the CPU splits the work over threads
ours, tx, ty = run("color,translation,cutout", (3, 32, 32), 12, seed=3, step=1234, index0=40, threads=2, rng=30)

# the draws vary: shifts of both signs and zero, cut-out pixels
_, tx, ty = run("translation", (1, 16, 16), 64, seed=1, step=0, index0=0, rng=40)
t.check("translations take every value in [-2, 2]", set(tx.tolist()) == {-2, -1, 0, 1, 2} and
        set(ty.tolist()) == {-2, -1, 0, 1, 2}, f"tx {sorted(set(tx.tolist()))} ty {sorted(set(ty.tolist()))}")
o, _, _ = run("cutout", (1, 16, 16), 8, seed=1, step=0, index0=0, rng=41)
zeros = (o["y"] == 0).reshape(8, -1).sum(axis=1)
t.check("cutout zeroes up to an 8 x 8 square in every sample", np.all((zeros > 0) & (zeros <= 64)), str(zeros))

# the reference's own gradient against central differences (one direction, float64)
T, _, _ = transform("color,translation,cutout", 6, 6, draws(2, 3, 0, 3))
x = torch.randn(3, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
u = torch.randn(3, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
c = torch.randn(3, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
(gx,) = torch.autograd.grad((T(x) * c).sum(), x)
h = 1e-6
fd = ((T(x + h * u) * c).sum() - (T(x - h * u) * c).sum()) / (2 * h)
t.check("reference gradient agrees with finite differences", abs(fd.item() - (gx * u).sum().item()) < 1e-6)
t.done()
