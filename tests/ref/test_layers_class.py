"""test_layers_class.py: PyTorch float64 parity of the class-conditional layers (lib/nn/layer_class.c:
embed, onehot, cbn, proj) through the C probe (tests/tools/nn-probe.c --labels, driven by
nnref.py): outputs, input gradients, parameter gradients (the class tables included) and
running statistics, 1e-4 relative; the gradient penalty's tangent passes (jvp) through embed,
onehot and proj; checkpoint tensor names; the cdcgan and cmlp presets' G and D on a batch.
The torch twins (nnref.ClassConcat, CondBatchNorm, Projection) index nn.Embedding-style tables
with the batch's labels; the labels are random in [0, K), with some classes absent.
Run: GT_BIN=bin /usr/bin/python3 tests/ref/test_layers_class.py"""
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nnref  # noqa: E402
from tap import Tap  # noqa: E402

t = Tap()
RTOL = 1e-4

# ---- single layers and stacks, plain and jvp ------------------------------------------------
cases = [  # spec, input shape, batch, jvp too
    ("embed 3 4", (5, 1, 1), 6, True),
    ("embed 3 2; flatten; linear 5", (2, 3, 3), 5, True),
    ("embed 10 50; linear 24 nobias; bn; lrelu 0.2", (7, 1, 1), 8, False),
    ("onehot 4", (2, 3, 3), 5, True),
    ("onehot 3; conv 4 k3 p1; lrelu 0.2; flatten; proj 3", (2, 5, 5), 6, True),
    ("cbn 3", (4, 3, 3), 7, False),
    ("cbn 2 eps=0.1 momentum=0.3", (5, 1, 1), 6, False),
    ("linear 12; cbn 4; relu; reshape 3x2x2; cbn 4; tanh", (6, 1, 1), 9, False),
    ("flatten; proj 3", (2, 3, 3), 6, True),
    ("flatten; proj 4 nobias", (6, 1, 1), 5, True),
    ("embed 3 4; linear 6; lrelu 0.2; proj 3", (3, 1, 1), 5, True),
]
for spec, shape, B, jvp in cases:
    for j in ((False, True) if jvp else (False,)):
        r = nnref.run(spec, shape, batch=B, seed=3, jvp=j)
        nnref.compare(t, f"{spec} {shape} B={B}{' [jvp]' if j else ''}", r, RTOL)

# one class only, and every sample of another: the per-class sums of empty classes stay zero
r = nnref.run("linear 6; cbn 3; flatten; proj 3", (4, 1, 1), batch=5, seed=4, labels=[1, 1, 1, 1, 1])
nnref.compare(t, "all samples of class 1", r, RTOL)
dp = r["ours"]["dparams"]  # linear 30, then cbn's weight (3, 6) at 30, bias (3, 6) at 48
t.check("classes 0 and 2 get no gradient in cbn's tables",
        all(np.all(dp[a:a + 6] == 0) for a in (30, 42, 48, 60)) and np.all(dp[36:42] != 0))

# eval mode: cbn uses the running statistics
rng = np.random.default_rng(8)
state = np.concatenate([rng.standard_normal(3), rng.uniform(0.3, 3, 3)]).astype(np.float32)
r = nnref.run("cbn 4", (3, 2, 2), batch=5, seed=9, train=False, state=state)
nnref.compare(t, "eval: cbn 4 (3, 2, 2)", r, RTOL)

# dcgan initialisation: embed N(0, 1), cbn weight near 1, proj's table N(0, 0.02)
r = nnref.run("embed 5 40; linear 8; cbn 5; proj 5", (3, 1, 1), batch=6, seed=7, init="dcgan")
p = r["ours"]["params"]
c0 = 200 + 8 * 43 + 8  # embed (5, 40), linear (8, 43) and its bias, then cbn's weight (5, 8)
emb, cbw, cbb, pe = p[:200], p[c0:c0 + 40], p[c0 + 40:c0 + 80], p[-40:]
t.check("dcgan init: embed ~ N(0, 1)", 0.8 < emb.std() < 1.2 and abs(emb.mean()) < 0.25, f"{emb.mean()} {emb.std()}")
t.check("dcgan init: cbn weight near 1, bias 0", np.all(np.abs(cbw - 1) < 0.1) and np.any(cbw != 1) and
        np.all(cbb == 0))
t.check("dcgan init: proj table ~ N(0, 0.02)", 0.01 < pe.std() < 0.03, str(pe.std()))
nnref.compare(t, "dcgan init: embed; linear; cbn; proj", r, RTOL)

# checkpoint names and shapes
names = [ln[0] + " " + " ".join(ln[2:]) for ln in r["ours"]["tensors"]]
t.check("checkpoint tensors", names == ["0.weight 5 40", "1.weight 8 43", "1.bias 8", "2.weight 5 8", "2.bias 5 8",
                                       "2.running_mean 8", "2.running_var 8", "2.num_batches_tracked = 1",
                                       "3.weight 1 8", "3.bias 1", "3.embed.weight 5 8"], str(names))
t.check("torch state_dict names match", [k for k in r["ref"]["seq"].state_dict()] ==
        ["0.weight", "1.weight", "1.bias", "2.weight", "2.bias", "2.running_mean", "2.running_var",
         "2.num_batches_tracked", "3.weight", "3.bias", "3.embed.weight"])


# ---- presets: G and D against torch ----------------------------------------------------------
def preset_specs(name, data, zdim, k):
    pr = subprocess.run([nnref.tool_path("nn-probe"), "--preset", name, "--data", "x".join(map(str, data)),
                         "--zdim", str(zdim), "--classes", str(k)], capture_output=True, text=True, check=True)
    return pr.stdout.strip().split("\n")


ZDIM = 16
for name, data, batch, k in (("cdcgan", (1, 28, 28), 6, 10), ("cmlp", (1, 28, 28), 8, 3)):
    g, d = preset_specs(name, data, ZDIM, k)
    t.check(f"preset {name}: G starts with embed, D ends with proj",
            g.startswith(f"embed {k} 50; ") and d.endswith(f"proj {k}"), g + " | " + d)
    for role, spec, shape in (("G", g, (ZDIM, 1, 1)), ("D", d, data)):
        init = "torch" if name == "cmlp" else "dcgan"
        r = nnref.run(spec, shape, batch=batch, seed=5, init=init, train=True)
        nnref.compare(t, f"preset {name} {role}", r, RTOL)
        if role == "G":
            r = nnref.run(spec, shape, batch=batch, seed=7, init=init, train=False)
            nnref.compare(t, f"preset {name} G eval", r, RTOL)

t.done()
