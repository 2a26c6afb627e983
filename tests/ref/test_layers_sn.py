"""test_layers_sn.py: spectral normalization (spec flag `sn` / `sn=N`, lib/nn/layer_sn.c) against
torch.nn.utils.spectral_norm, and weight normalization (`wn`, lib/nn/layer_wn.c) against
torch.nn.utils.weight_norm, in PyTorch float64 (1e-4 relative):
  - one pass of linear, conv, convT (torch's dim 1) and embed with sn, in training mode (one power
    iteration) and evaluation mode (none), plain and gradient-penalty (jvp): outputs, input and
    parameter gradients (weight_orig's through sigma), u and v after the pass;
  - the initial u, v: Philox normals (seed, stream INIT, layer index, after the weight and bias
    draws), normalized, recomputed here in NumPy;
  - the normalised spec and its errors; the checkpoint names weight_orig, weight_u, weight_v;
  - the same inside residual blocks, in main and skip paths (a ResNet critic as SNGAN's and a
    generator stack), the nested checkpoint names (`0.main.0.weight_orig`, `0.skip.0.weight_u`)
    against the torch module's state_dict, and the nested layers' initial u, v;
  - ten gan-step training steps (test_train_torch.py's torch procedure; several power
    iterations per step, one per use of a net) for G and D with sn on linear, conv, convT and
    embed, and for ResNet critics with sn inside blocks (hinge; wgan-gp, whose penalty runs
    the tangent passes through them): every weight, u, v, optimizer buffer and EMA weight;
  - wn: one pass (plain and jvp) of linear, conv, convT (dim 0: its input channels) and layers
    in residual blocks, with g away from ||v||; the initial v (the plain layer's weight) and
    g = ||v||; torch's checkpoint names and shapes; sn with wn refused; ten wgan-gp steps with
    wn in G and in a ResNet critic's blocks (weight_g, weight_v, optimizer state, EMA).
Run: GT_BIN=$PWD/bin /usr/bin/python3 tests/ref/test_layers_sn.py"""
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nnref  # noqa: E402
import test_train_torch as tt  # noqa: E402
from tap import BIN, Tap, rel_err, scratch_dir  # noqa: E402

t = Tap()
RTOL = 1e-4
FEAT = (7, 1, 1)
STREAM_INIT = 1

# ---- one pass, every kind, train and eval, plain and jvp ----------------------------------
cases = [
    ("linear 5 sn", FEAT),
    ("linear 6 sn=3; lrelu 0.2; linear 2 nobias sn", FEAT),
    ("conv 4 k3 p1 sn; lrelu 0.2", (2, 5, 5)),
    ("conv 3 k3 s2 sn; tanh; flatten; linear 2 sn", (2, 7, 7)),
    ("convT 3 k4 s2 p1 sn", (4, 3, 3)),
    ("convT 2 k3 s2 p1 op1 nobias sn=2; tanh", (3, 2, 2)),
    ("embed 3 4 sn; flatten; linear 2", (5, 1, 1)),
]
for spec, shape in cases:
    for train in (True, False):
        for jvp in (False, True):
            r = nnref.run(spec, shape, batch=5, seed=3, jvp=jvp, train=train)
            nnref.compare(t, f"{spec} [{'train' if train else 'eval'}{', jvp' if jvp else ''}]", r, RTOL)
            if not train:
                t.check(f"{spec} [eval{', jvp' if jvp else ''}]: u, v unchanged",
                        np.array_equal(r["ours"]["state"], r["ours"]["state0"]))

# two threads and a larger weight: the parallel loops give the same bits as one thread
x = np.random.default_rng(5).standard_normal((6, 40, 1, 1)).astype(np.float32)
one = nnref.run_probe("linear 300 sn; relu; linear 5 sn", (40, 1, 1), 6, x, dy=np.ones((6, 5, 1, 1), np.float32))
two = nnref.run_probe("linear 300 sn; relu; linear 5 sn", (40, 1, 1), 6, x, dy=np.ones((6, 5, 1, 1), np.float32),
                      threads=2)
t.check("1 and 2 threads: identical y, gradients, u and v",
        all(np.array_equal(one[k], two[k]) for k in ("y", "dx", "dparams", "state")))

# ---- the harness can fail: torch with another iteration count must not match --------------
ours = nnref.run_probe("linear 5 sn", FEAT, 4, x[:4, :7])
ref = nnref.reference("linear 5 sn=2", FEAT, ours, x[:4, :7].astype(np.float64))
t.check("negative control: sn=2 reference differs from sn in u, v", rel_err(ours["state"], ref["state"]) > 1e-3)

# ---- initial u, v ---------------------------------------------------------------------------
r = nnref.run_probe("linear 3; relu; linear 5 sn", FEAT, 2, x[:2, :7])
n_params = 5 * 3 + 5  # layer 2: weight 5x3, bias 5
u = tt.normal(1, STREAM_INIT, 2, np.arange(n_params, n_params + 5, dtype=np.uint64)).astype(np.float64)
v = tt.normal(1, STREAM_INIT, 2, np.arange(n_params + 5, n_params + 8, dtype=np.uint64)).astype(np.float64)
want = np.concatenate([u / np.linalg.norm(u), v / np.linalg.norm(v)])
t.check("initial u, v: normalized Philox normals after the weight and bias draws",
        rel_err(r["state0"], want) < 1e-6, f"{r['state0']} vs {want}")
plain = nnref.run_probe("linear 3; relu; linear 5", FEAT, 2, x[:2, :7])
t.check("sn leaves the weights' initialisation as it is", np.array_equal(r["params"], plain["params"]))
t.check("checkpoint names", [row[0] for row in r["tensors"]] ==
        ["0.weight", "0.bias", "2.weight_orig", "2.bias", "2.weight_u", "2.weight_v"], str(r["tensors"]))

# ---- inside residual blocks (SNGAN's critic): main and skip paths --------------------------------
SN_CRITIC = ("block { conv 6 k3 p1 sn; relu; conv 6 k3 p1 sn=2; avgpool k2 } skip { conv 6 k1 sn; avgpool k2 }; "
             "block { relu; conv 6 k3 p1 sn; relu; conv 6 k3 p1 sn }; relu; sumpool; linear 1 sn")
SN_GEN = ("linear 24 sn; reshape 6x2x2; block { relu; convT 4 k4 s2 p1 sn; relu; conv 4 k3 p1 sn } "
          "skip { upsample 2; conv 4 k1 nobias sn }; tanh")
for name, spec, shape, B in (("sn critic in blocks", SN_CRITIC, (2, 8, 8), 3),
                             ("sn generator in blocks (convT in main)", SN_GEN, (5, 1, 1), 4)):
    for train in (True, False):
        for jvp in (False, True):
            r = nnref.run(spec, shape, batch=B, seed=6, jvp=jvp, train=train)
            tag = f"{name} [{'train' if train else 'eval'}{', jvp' if jvp else ''}]"
            nnref.compare(t, tag, r, RTOL)
            if train:
                t.check(f"{tag}: u, v moved", not np.array_equal(r["ours"]["state"], r["ours"]["state0"]))
            else:
                t.check(f"{tag}: u, v unchanged", np.array_equal(r["ours"]["state"], r["ours"]["state0"]))
r = nnref.run(SN_CRITIC, (2, 8, 8), batch=2, seed=2)
ours = [row[0] for row in r["ours"]["tensors"]]
sd = list(r["ref"]["seq"].state_dict())
t.check("sn critic in blocks: checkpoint names are the torch module's state_dict keys", sorted(ours) == sorted(sd),
        f"ours {ours}\ntorch {sd}")
t.check("sn critic in blocks: nested names", ours[:6] == [
    "0.main.0.weight_orig", "0.main.0.bias", "0.main.0.weight_u", "0.main.0.weight_v",
    "0.main.2.weight_orig", "0.main.2.bias"] and "0.skip.0.weight_u" in ours and "1.main.3.weight_v" in ours, f"{ours}")
# the initial u, v of a layer inside a block: Philox keyed by its own number (after the top level)
r = nnref.run_probe("linear 7; block { linear 7 sn; relu } skip { linear 7 sn }", FEAT, 2, x[:2, :7])
n_params = 7 * 7 + 7
want = []
for index in (2, 4):  # the top level is layers 0, 1; the block's children are 2, 3 (relu), 4
    u = tt.normal(1, STREAM_INIT, index, np.arange(n_params, n_params + 7, dtype=np.uint64)).astype(np.float64)
    v = tt.normal(1, STREAM_INIT, index, np.arange(n_params + 7, n_params + 14, dtype=np.uint64)).astype(np.float64)
    want += [u / np.linalg.norm(u), v / np.linalg.norm(v)]
want = np.concatenate(want)
t.check("initial u, v inside a block: keyed by each layer's number", rel_err(r["state0"], want) < 1e-6,
        f"{r['state0']} vs {want}")

# ---- the spec text -----------------------------------------------------------------------------
a = nnref.run_probe("linear 5 sn=1; relu; linear 2 sn=4 nobias", FEAT, 2, x[:2, :7])
t.check("normalised spec", a["spec"] == "linear 5 sn; relu 0.01; linear 2 nobias sn=4" or
        a["spec"] == "linear 5 sn; relu; linear 2 nobias sn=4", a["spec"])
for bad, msg in (("relu sn", "layer 1 (relu): unknown argument 'sn'"),
                 ("linear 5 sn=0", "layer 1 (linear): bad value in 'sn=0'"),
                 ("linear 5 sn=x", "layer 1 (linear): bad value in 'sn=x'"),
                 ("linear 5 sn sn=2", "layer 1 (linear): argument 'sn=2' given twice")):
    try:
        nnref.run_probe(bad, FEAT, 2, x[:2, :7])
        t.check(f"spec '{bad}' refused", False, "accepted")
    except RuntimeError as e:
        t.check(f"spec '{bad}' refused: {msg}", msg in str(e), str(e))

# ---- weight normalization (spec flag wn, lib/nn/layer_wn.c) against torch.nn.utils.weight_norm --
WN_CASES = [
    ("linear 5 wn", FEAT),
    ("linear 6 wn; lrelu 0.2; linear 2 nobias wn", FEAT),
    ("conv 4 k3 p1 wn; lrelu 0.2", (2, 5, 5)),
    ("conv 3 k3 s2 wn; tanh; flatten; linear 2 wn", (2, 7, 7)),
    ("convT 3 k4 s2 p1 wn", (4, 3, 3)),            # dim 0 of a ConvTranspose2d weight: input channels
    ("convT 2 k3 s2 p1 op1 nobias wn; tanh", (3, 2, 2)),
    ("conv 4 k3 p1; block { conv 4 k3 p1 wn; lrelu 0.2; conv 4 k3 p1 wn } skip { convT 4 k1 wn }; lrelu 0.2; "
     "sumpool; linear 1 wn", (2, 6, 6)),
]
rng = np.random.default_rng(21)
for spec, shape in WN_CASES:
    for jvp in (False, True):
        # g away from ||v|| so that the two tensors play different parts
        base = nnref.run_probe(spec, shape, 4, np.zeros((4,) + shape, np.float32))["params"]
        params = (base * (1 + 0.3 * rng.standard_normal(base.shape))).astype(np.float32)
        r = nnref.run(spec, shape, batch=4, seed=3, jvp=jvp, params=params)
        nnref.compare(t, f"wn: {spec}{' [jvp]' if jvp else ''}", r, RTOL)
# initialisation: v is the layer's own initial weight (drawn as without wn), g = ||v|| per slice of dim 0
for spec, plain, shape in (("conv 4 k3 p1 wn", "conv 4 k3 p1", (2, 5, 5)),
                           ("convT 3 k4 s2 p1 wn", "convT 3 k4 s2 p1", (4, 3, 3))):
    a = nnref.run_probe(spec, shape, 2, np.zeros((2,) + shape, np.float32))
    b = nnref.run_probe(plain, shape, 2, np.zeros((2,) + shape, np.float32))
    names = [row[0] for row in a["tensors"]]
    shapes = {row[0]: tuple(int(v) for v in row[2:]) for row in a["tensors"]}
    seq, _ = nnref.build(spec, shape)
    t.check(f"wn init {spec}: checkpoint names and shapes are torch's",
            sorted(names) == sorted(seq.state_dict()) and
            all(shapes[k] == tuple(v.shape) for k, v in seq.state_dict().items()), f"{shapes}")
    nw = b["params"].size - int(b["tensors"][1][1])
    v, g = a["params"][:nw], a["params"][b["params"].size:]
    rows = int(b["tensors"][0][2])
    t.check(f"wn init {spec}: v is the plain layer's weight, then its bias",
            np.array_equal(a["params"][:b["params"].size], b["params"]))
    t.check(f"wn init {spec}: g = ||v|| per slice of dimension 0",
            rel_err(g, np.linalg.norm(v.reshape(rows, -1), axis=1)) < 1e-6, f"{g}")
# the harness can fail: another dim must not match (for convT torch's dim 0 is the input channels)
r = nnref.run("convT 3 k4 s2 p1 wn", (4, 3, 3), batch=2, seed=3)
nw = 4 * 3 * 16
v, b, g = (r["ours"]["params"][s] for s in (slice(0, nw), slice(nw, nw + 3), slice(nw + 3, None)))
t.check("convT wn: g has the input channels (dim 0 of the weight (4, 3, 4, 4))", g.size == 4)
# g matters: with g != ||v||, the plain layer with weight v gives another output
params = r["ours"]["params"].copy()
params[nw + 3:] *= 1.5
r = nnref.run("convT 3 k4 s2 p1 wn", (4, 3, 3), batch=2, seed=3, params=params.astype(np.float32))
seq, _ = nnref.build("convT 3 k4 s2 p1", (4, 3, 3))
nnref.set_params(seq, params[:nw + 3])
with torch.no_grad():
    y1 = nnref.forward(seq, torch.as_tensor(r["x"].astype(np.float64)))
t.check("negative control: weight v alone (g ignored) gives another output",
        rel_err(r["ours"]["y"], y1.numpy().reshape(r["ours"]["y"].shape)) > 1e-2 and
        rel_err(r["ours"]["y"], r["ref"]["y"]) < RTOL)
for bad, msg in (("linear 5 sn wn", "layer 1 (linear): sn and wn cannot be combined (choose spectral or weight "
                                    "normalization)"),
                 ("linear 5 wn wn", "layer 1 (linear): argument 'wn' given twice"),
                 ("lrelu 0.2 wn", "layer 1 (lrelu): unknown argument 'wn'"),
                 ("embed 3 4 wn", "layer 1 (embed): unknown argument 'wn'")):
    try:
        nnref.run_probe(bad, FEAT, 2, x[:2, :7])
        t.check(f"spec '{bad}' refused", False, "accepted")
    except RuntimeError as e:
        t.check(f"spec '{bad}' refused: {msg}", msg in str(e), str(e))
a = nnref.run_probe("linear 5 wn; relu; linear 2 nobias wn", FEAT, 2, x[:2, :7])
t.check("wn: normalised spec", a["spec"] == "linear 5 wn; relu; linear 2 nobias wn", a["spec"])

# ---- ten training steps against torch --------------------------------------------------------
TRAIN = [
    ("linear sn, sn=2 hinge ema", ["--G", "linear 32 sn; relu; linear 64 sn=2; tanh; reshape 1x8x8",
                                   "--D", "flatten; linear 32 sn; lrelu 0.2; linear 1 sn", "--loss", "hinge",
                                   "--ema", "0.9"], False),
    ("conv, convT sn wgan-gp n_critic 2", [
        "--G", "linear 32; relu; reshape 2x4x4; convT 4 k4 s2 p1 sn; relu; conv 1 k3 p1 sn; tanh",
        "--D", "conv 4 k4 s2 p1 sn; lrelu 0.2; flatten; linear 1 sn", "--loss", "wgan-gp", "--gp", "5",
        "--n-critic", "2", "--opt-d", "adam:lr=1e-3,b1=0,b2=0.9"], False),
    ("resnet critic, sn in blocks' main and skip paths, hinge n_critic 2", [
        "--G", "linear 64; reshape 4x4x4; block { relu; upsample 2; conv 4 k3 p1 } skip { upsample 2; conv 4 k1 }; "
               "relu; conv 1 k3 p1; tanh",
        "--D", "block { conv 4 k3 p1 sn; lrelu 0.2; conv 4 k3 p1 sn; avgpool k2 } skip { conv 4 k1 sn; avgpool k2 }; "
               "block { lrelu 0.2; conv 4 k3 p1 sn }; lrelu 0.2; sumpool; linear 1 sn",
        "--loss", "hinge", "--n-critic", "2", "--opt-d", "adam:lr=1e-3,b1=0,b2=0.9"], False),
    ("resnet critic, sn in blocks, wgan-gp (the penalty through sn in blocks)", [
        "--G", "linear 32; relu; linear 64; tanh; reshape 1x8x8",
        "--D", "block { conv 4 k3 p1 sn; lrelu 0.2; conv 4 k3 p1 sn=2; avgpool k2 } skip { conv 4 k1 sn; "
               "avgpool k2 }; lrelu 0.2; sumpool; linear 1 sn",
        "--loss", "wgan-gp", "--gp", "5", "--opt-d", "adam:lr=1e-3,b1=0,b2=0.9"], False),
    ("wn on linear, convT, conv and in a resnet critic's blocks, wgan-gp", [
        "--G", "linear 32 wn; relu; reshape 2x4x4; convT 4 k4 s2 p1 wn; relu; conv 1 k3 p1 wn; tanh",
        "--D", "block { conv 4 k3 p1 wn; lrelu 0.2; conv 4 k3 p1 wn; avgpool k2 } skip { conv 4 k1 wn; avgpool k2 }; "
               "lrelu 0.2; sumpool; linear 1 wn", "--loss", "wgan-gp", "--gp", "5", "--ema", "0.9",
        "--n-critic", "2", "--opt-d", "adam:lr=1e-3,b1=0,b2=0.9"], False),
    ("embed sn ns", ["--G", "embed 3 4 sn; linear 32; relu; linear 64 sn; tanh; reshape 1x8x8",
                     "--D", "flatten; linear 32 sn; lrelu 0.2; linear 1 sn", "--loss", "ns", "--classes", "3"],
     True),
]
tmp = scratch_dir("gt-sn-")
data = np.random.default_rng(1).integers(0, 256, size=(40, 1, 8, 8)).astype(np.uint8)
labels = np.random.default_rng(2).integers(0, 3, size=40).astype(np.int64)
dpath, lpath = os.path.join(tmp, "d.npy"), os.path.join(tmp, "l.npy")
np.save(dpath, data)
np.save(lpath, labels)
steps = 10
for name, args, cond in TRAIN:
    m0, m = os.path.join(tmp, "m0.st"), os.path.join(tmp, "m.st")
    r = subprocess.run([os.path.join(BIN, "gan-init")] + args + ["--shape", "1x8x8", "--z", "6", "--batch", "16",
                                                                  "--seed", "11", "-o", m0],
                       capture_output=True, text=True)
    if not t.check(f"{name}: gan-init", r.returncode == 0, r.stderr):
        continue
    r = subprocess.run([os.path.join(BIN, "gan-step"), "-q", "--data", dpath, "--steps", str(steps), "-i", m0,
                        "-o", m] + (["--labels", lpath] if cond else []), capture_output=True, text=True)
    if not t.check(f"{name}: gan-step", r.returncode == 0, r.stderr):
        continue
    _, ours = tt.read_st(m)
    ref = tt.reference(m0, data, steps, labels=labels if cond else None)
    missing = sorted(set(ref) ^ set(ours))
    t.check(f"{name}: the same tensors", not missing, f"only on one side: {missing}")
    t.check(f"{name}: u and v (or g and v) are in the checkpoint",
            any(k.endswith("weight_u") or k.endswith("weight_g") for k in ours))
    worst, where = 0.0, ""
    for k, v in ref.items():
        if k in ours:
            e = rel_err(np.asarray(ours[k], np.float64).reshape(-1), np.asarray(v, np.float64).reshape(-1))
            if e > worst:
                worst, where = e, k
    t.check(f"{name}: {steps} steps equal torch float64 (worst {worst:.2g} in {where})", worst <= RTOL,
            f"relative error {worst:.3g} in {where}")
t.done()
