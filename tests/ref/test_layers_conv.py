"""test_layers_conv.py: PyTorch float64 parity of the spatial layers (conv, convT, maxpool,
avgpool, upsample) through the C probe (tests/tools/nn-probe.c, driven by nnref.py): outputs,
input gradients and parameter gradients, and in gradient-penalty mode the tangent and the
reverse pass of the pair (checked against torch's double backward), 1e-4 relative.

Shapes are drawn at random from a fixed seed (odd sizes, non-square kernels, strides, padding,
output padding, no bias); fixed cases cover both convolution paths (im2col, and kn2row for few
output channels), stacks, batches split into several chunks, and two threads. Negative controls
show the comparison can fail. Run: GT_BIN=build/x/bin /usr/bin/python3 tests/ref/test_layers_conv.py"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nnref  # noqa: E402
from tap import Tap, rel_err  # noqa: E402

t = Tap()
RTOL = 1e-4
rng = np.random.default_rng(20261123)


def pair(a, b):
    return f"{a}" if a == b else f"{a}x{b}"


def draw_conv():
    C, O = int(rng.integers(1, 6)), int(rng.integers(1, 7))
    H, W = int(rng.integers(3, 12)), int(rng.integers(3, 12))
    kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    ph, pw = int(rng.integers(0, 3)), int(rng.integers(0, 3))
    kh, kw = min(kh, H + 2 * ph), min(kw, W + 2 * pw)
    spec = f"conv {O} k{pair(kh, kw)} s{pair(sh, sw)} p{pair(ph, pw)}" + (" nobias" if rng.random() < 0.3 else "")
    return spec, (C, H, W)


def draw_convT():
    C, O = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    H, W = int(rng.integers(2, 8)), int(rng.integers(2, 8))
    kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    ph, pw = int(rng.integers(0, 3)), int(rng.integers(0, 3))
    oph, opw = int(rng.integers(0, sh)), int(rng.integers(0, sw))
    # the output must not be empty: (H - 1) s - 2 p + k + op >= 1
    ph = min(ph, ((H - 1) * sh + kh + oph - 1) // 2)
    pw = min(pw, ((W - 1) * sw + kw + opw - 1) // 2)
    spec = (f"convT {O} k{pair(kh, kw)} s{pair(sh, sw)} p{pair(ph, pw)} op{pair(oph, opw)}" +
            (" nobias" if rng.random() < 0.3 else ""))
    return spec, (C, H, W)


def draw_pool(kind):
    C, H, W = int(rng.integers(1, 4)), int(rng.integers(2, 12)), int(rng.integers(2, 12))
    kh, kw = int(rng.integers(1, min(5, H + 1))), int(rng.integers(1, min(5, W + 1)))
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
    return f"{kind} k{pair(kh, kw)} s{pair(sh, sw)} p{pair(ph, pw)}", (C, H, W)


def draw_upsample():
    return f"upsample {int(rng.integers(1, 5))}", (int(rng.integers(1, 4)), int(rng.integers(1, 7)),
                                                   int(rng.integers(1, 7)))


draws = ([draw_conv() for _ in range(10)] + [draw_convT() for _ in range(10)] +
         [draw_pool("maxpool") for _ in range(6)] + [draw_pool("avgpool") for _ in range(6)] +
         [draw_upsample() for _ in range(3)])
for i, (spec, shape) in enumerate(draws):
    B = int(rng.integers(1, 4))
    for jvp in (False, True):
        r = nnref.run(spec, shape, batch=B, seed=100 + i, jvp=jvp)
        nnref.compare(t, f"{spec} {shape} B={B}{' [jvp]' if jvp else ''}", r, RTOL)

# ---- fixed cases: both convolution paths, stacks, chunks, threads --------------------------
cases = [
    ("conv 1 k7 p3", (6, 9, 8), 3, 1),                     # kn2row, one output channel (dcgan's last layer)
    ("conv 3 k3 p1", (16, 7, 9), 2, 1),                    # kn2row, weight regrouped (dcgan32's last layer)
    ("conv 2 k3x5 p1x2 nobias", (9, 6, 7), 2, 1),          # kn2row, non-square, no bias
    ("conv 8 k4 s2 p1; lrelu 0.2; conv 16 k4 s2 p1; lrelu 0.2; flatten; linear 1", (1, 12, 12), 3, 1),
    ("linear 48 nobias; reshape 3x4x4; convT 4 k4 s2 p1 nobias; tanh; conv 1 k7 p3; tanh", (5, 1, 1), 3, 1),
    ("conv 4 k3 p1; maxpool k2; lrelu 0.2; conv 6 k3 p1; avgpool k2; upsample 2; conv 2 k3 p1; sigmoid",
     (3, 8, 10), 2, 1),
    # (no ln in these stacks: nnref's jvp reference takes a third derivative, which torch 1.13 gets
    # wrong for layer_norm; test_layers_norm.py checks ln with a double-backward reference)
    ("upsample 2; conv 4 k3 p1; tanh; convT 2 k3 s2 p1 op1; sigmoid; flatten; linear 2", (2, 3, 4), 2, 1),
    ("conv 64 k3 p1", (64, 32, 32), 8, 2),                 # im2col in chunks of 6 samples, 2 threads
    ("conv 2 k5 p2", (400, 40, 40), 7, 2),                 # kn2row in chunks of 5
    ("convT 64 k4 s2 p1", (64, 36, 36), 3, 2),             # convT in chunks of 2
    ("conv 32 k4 s2 p1; lrelu 0.2; maxpool k3 s2 p1; convT 16 k4 s2 p1 op1; tanh; avgpool k2; upsample 3",
     (3, 48, 40), 12, 2),
]
for spec, shape, B, threads in cases:
    for jvp in (False, True):
        if jvp and shape[0] * shape[1] * shape[2] * B > 1_000_000:
            continue  # the double-backward reference is slow at this size; the plain pass checks the chunks
        r = nnref.run(spec, shape, batch=B, seed=7, jvp=jvp, threads=threads)
        nnref.compare(t, f"{spec} {shape} B={B} threads={threads}{' [jvp]' if jvp else ''}", r, RTOL)

# dcgan initialisation through the probe is what torch trains from (init dcgan: N(0, 0.02))
r = nnref.run("conv 8 k4 s2 p1; lrelu 0.2; convT 3 k4 s2 p1", (3, 10, 10), batch=2, seed=8, init="dcgan")
w = r["ours"]["params"][:8 * 3 * 16]
t.check("dcgan init: conv weight std 0.02 (20%)", abs(np.std(w) / 0.02 - 1) < 0.2, f"std {np.std(w)}")
nnref.compare(t, "dcgan init: conv; lrelu; convT", r, RTOL)

# checkpoint names and shapes are torch's state_dict
spec = "conv 4 k3x2 s2; relu; convT 2 k3 s2 p1 op1 nobias; maxpool k2; avgpool k1; upsample 2"
ours = nnref.run_probe(spec, (3, 9, 8), 1, rng.standard_normal((1, 3, 9, 8)).astype(np.float32))
seq, _ = nnref.build(spec, (3, 9, 8))
want = [(k, list(v.shape)) for k, v in seq.state_dict().items()]
got = [(row[0], [int(v) for v in row[2:]]) for row in ours["tensors"]]
t.check("tensor names and shapes = torch state_dict", want == got, f"ours {got}\ntorch {want}")

# torch init bounds: conv's fan_in is C*kh*kw, convT's is O*kh*kw (weight.size(1) * kernel)
for spec, shape, fan_in in (("conv 50 k3x2", (40, 6, 6), 40 * 6), ("convT 30 k4 s2", (60, 3, 3), 30 * 16)):
    p = nnref.run_probe(spec, shape, 1, np.zeros((1,) + shape, np.float32), init="torch", seed=3)["params"]
    bound = 1 / np.sqrt(fan_in)
    nw = 50 * 40 * 6 if spec.startswith("conv ") else 60 * 30 * 16
    t.check(f"{spec}: torch init within +-1/sqrt({fan_in}), variance bound^2/3 (3%)",
            np.max(np.abs(p)) <= bound * (1 + 1e-6) and abs(np.var(p[:nw]) / (bound ** 2 / 3) - 1) < 0.03,
            f"max {np.max(np.abs(p))}, bound {bound}, variance ratio {np.var(p[:nw]) / (bound ** 2 / 3)}")

# ---- negative controls: the reference can tell ----------------------------------------------
x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
ours = nnref.run_probe("avgpool k3 s2 p1", (2, 5, 5), 2, x)
ref = torch.nn.functional.avg_pool2d(torch.tensor(x, dtype=torch.float64), 3, 2, 1, count_include_pad=False)
t.check("negative control: count_include_pad=False differs from ours", rel_err(ours["y"], ref.numpy()) > 1e-2)
ours = nnref.run_probe("convT 3 k3 s2 p1 op1", (2, 4, 4), 2, rng.standard_normal((2, 2, 4, 4)).astype(np.float32))
ref = nnref.reference("convT 3 k3 s2 p1 op1", (2, 4, 4), ours,
                      rng.standard_normal((2, 2, 4, 4)))  # another input: must not match
t.check("negative control: another input differs", rel_err(ours["y"], ref["y"]) > 1e-2)
x = rng.standard_normal((1, 1, 6, 6)).astype(np.float32)
ours = nnref.run_probe("maxpool k2", (1, 6, 6), 1, x, dy=np.ones((1, 1, 3, 3), np.float32))
t.check("maxpool: each window's gradient goes to its largest element only",
        np.array_equal(ours["dx"].reshape(6, 6) != 0,
                       (x[0, 0] == np.repeat(np.repeat(x[0, 0].reshape(3, 2, 3, 2).max(axis=(1, 3)), 2, 0), 2, 1))))

t.done()
