"""test_layers_net.py: PyTorch float64 parity of the network core's layers (linear, relu, lrelu,
tanh, sigmoid, reshape, flatten), in plain and in gradient-penalty (jvp) mode, of the
normalised spec, checkpoint tensor names, initialisation, and of the presets' G and D
(outputs, input gradients, parameter gradients, BatchNorm state; 1e-4 relative).
Run: GT_BIN=build/net/bin /usr/bin/python3 tests/ref/test_layers_net.py"""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nnref  # noqa: E402
from tap import Tap, rel_err  # noqa: E402

t = Tap()
RTOL = 1e-4
FEAT = (7, 1, 1)

# ---- single layers and small stacks, plain and jvp --------------------------------------
cases = [
    ("linear 5", FEAT, 1.0),
    ("linear 5 nobias", FEAT, 1.0),
    ("linear 6; relu", FEAT, 1.0),
    ("linear 6; lrelu", FEAT, 1.0),
    ("linear 6; lrelu 0.2; linear 3", FEAT, 1.0),
    ("linear 6; tanh; linear 2", FEAT, 1.0),
    ("linear 6; sigmoid; linear 2", FEAT, 1.0),
    ("sigmoid", FEAT, 30.0),  # large inputs: the stable form must not overflow
    ("tanh", FEAT, 30.0),
    ("flatten; linear 12; reshape 3x2x2; tanh; flatten; linear 2", (2, 3, 2), 1.0),
    ("reshape 4x1x3; flatten; lrelu 0.1", (2, 3, 2), 1.0),
]
for spec, shape, scale in cases:
    for jvp in (False, True):
        r = nnref.run(spec, shape, batch=5, seed=3, jvp=jvp, scale=scale)
        nnref.compare(t, f"{spec}{' [jvp]' if jvp else ''}", r, RTOL)

# larger sizes: the parallel element loops (>= 32768 elements) and several threads
r = nnref.run("linear 300; lrelu 0.2; linear 200; tanh; linear 10; sigmoid", (150, 1, 1), batch=200, seed=4,
              threads=2)
nnref.compare(t, "wide MLP, 2 threads", r, RTOL)
r = nnref.run("linear 300; lrelu 0.2; linear 200; tanh; linear 10; sigmoid", (150, 1, 1), batch=200, seed=4,
              threads=2, jvp=True)
nnref.compare(t, "wide MLP, 2 threads [jvp]", r, RTOL)

# ---- the harness can fail: a reference with another slope must not match ----------------
x = np.random.default_rng(0).standard_normal((4, 7, 1, 1)).astype(np.float32)
ours = nnref.run_probe("linear 5; lrelu 0.2", FEAT, 4, x)
ref = nnref.reference("linear 5; lrelu 0.25", FEAT, ours, x.astype(np.float64))
t.check("negative control: lrelu 0.25 reference differs from lrelu 0.2",
        rel_err(ours["y"], ref["y"]) > 1e-3)

# ---- normalised spec: re-running it gives the same numbers --------------------------------
spec = "# comment\nlinear 6   ; lrelu 0.3\n\ntanh;flatten ; linear 2 nobias"
a = nnref.run_probe(spec, FEAT, 3, x[:3])
b = nnref.run_probe(a["spec"], FEAT, 3, x[:3])
t.check("normalised spec text", a["spec"] == "linear 6; lrelu 0.3; tanh; flatten; linear 2 nobias", a["spec"])
t.check("normalised spec gives identical outputs", np.array_equal(a["y"], b["y"]) and a["spec"] == b["spec"])

# ---- checkpoint names and shapes match torch's state_dict --------------------------------
def names_match(spec, shape, ours):
    seq, _ = nnref.build(spec, shape)
    want = [(k, list(v.shape)) for k, v in seq.state_dict().items()]
    got = [(row[0], [int(v) for v in row[2:]] if "=" not in row else [int(v) for v in row[2:row.index("=")]])
           for row in ours["tensors"]]
    return want == got, f"ours {got}\ntorch {want}"


ok, msg = names_match("linear 4; relu; linear 2 nobias; tanh", FEAT, nnref.run_probe(
    "linear 4; relu; linear 2 nobias; tanh", FEAT, 2, x[:2]))
t.check("tensor names and shapes = torch state_dict", ok, msg)

# ---- initialisation ----------------------------------------------------------------------
xi = np.zeros((1, 300, 1, 1), np.float32)
p = nnref.run_probe("linear 400", (300, 1, 1), 1, xi, init="torch", seed=11)["params"]
w, bias = p[:400 * 300], p[400 * 300:]
bound = 1 / np.sqrt(300)
t.check("torch init: weights within +-1/sqrt(fan_in)", np.max(np.abs(w)) <= bound * (1 + 1e-6))
t.check("torch init: weight variance = bound^2/3 (1%)", abs(np.var(w) / (bound ** 2 / 3) - 1) < 0.01,
        f"ratio {np.var(w) / (bound ** 2 / 3)}")
t.check("torch init: bias within bound, not constant", np.max(np.abs(bias)) <= bound and np.std(bias) > bound / 3)
p = nnref.run_probe("linear 400", (300, 1, 1), 1, xi, init="dcgan", seed=11)["params"]
t.check("dcgan init: weight std 0.02 (1%)", abs(np.std(p[:120000]) / 0.02 - 1) < 0.01, f"std {np.std(p[:120000])}")
t.check("dcgan init: bias 0", np.all(p[120000:] == 0))
p2 = nnref.run_probe("linear 400", (300, 1, 1), 1, xi, init="dcgan", seed=12)["params"]
t.check("init depends on the seed", not np.array_equal(p, p2))

# ---- presets: G and D against torch -------------------------------------------------------
def preset_specs(name, data, zdim):
    pr = subprocess.run([nnref.tool_path("nn-probe"), "--preset", name, "--data", "x".join(map(str, data)),
                         "--zdim", str(zdim)], capture_output=True, text=True)
    if pr.returncode != 0:
        raise RuntimeError(pr.stderr)
    g, d = pr.stdout.strip().split("\n")
    return g, d


def available(spec):
    """All of the spec's kinds are built into this tree (others' layers arrive in parallel)."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = subprocess.run([nnref.tool_path("nn-probe"), "--spec", spec, "--in", "1x1x1", "--batch", "1",
                                "--x", "/dev/null", "--out", tmp], capture_output=True, text=True)
    return "unknown layer kind" not in probe.stderr


ZDIM = 16
for name, data, batch in (("mlp", (1, 28, 28), 8), ("dcgan", (1, 28, 28), 4), ("wgan-gp", (1, 28, 28), 4),
                          ("dcgan32", (3, 32, 32), 3)):
    g, d = preset_specs(name, data, ZDIM)
    for role, spec, shape in (("G", g, (ZDIM, 1, 1)), ("D", d, data)):
        label = f"preset {name} {role}"
        if not available(spec):
            t.check(f"{label} # SKIP a layer kind is not built yet", True)
            continue
        init = "torch" if name == "mlp" else "dcgan"
        r = nnref.run(spec, shape, batch=batch, seed=5, init=init, train=True)
        nnref.compare(t, label, r, RTOL)
        if name == "wgan-gp" and role == "D":
            r = nnref.run(spec, shape, batch=batch, seed=6, init=init, train=True, jvp=True)
            nnref.compare(t, label + " [jvp]", r, RTOL)
        if role == "G":
            r = nnref.run(spec, shape, batch=batch, seed=7, init=init, train=False)
            nnref.compare(t, label + " eval", r, RTOL)

t.done()
