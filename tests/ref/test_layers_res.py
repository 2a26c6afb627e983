"""test_layers_res.py: PyTorch float64 parity of residual networks (lib/nn/layer_block.c, the
`block { ... } skip { ... }` form of lib/nn/spec.md) and global sum pooling (lib/nn/
layer_sumpool.c) through the C probe (tests/tools/nn-probe.c, driven by nnref.py, whose
Residual module is main(x) + skip(x) with the Sequentials "main" and "skip"): outputs, input
gradients, parameter gradients and BatchNorm running statistics (1e-4 relative) for a ResNet
generator stack (identity and upsampling shortcuts, BatchNorm in training and evaluation
modes), a ResNet critic (a downsampling shortcut, sumpool, linear) in plain mode and in the
gradient penalty's tangent passes (compared with torch.autograd.grad(create_graph=True),
nnref.reference's jvp mode), every layer's output and the gradient w.r.t. it, inside the blocks
too (the probe's observer against torch forward hooks), cbn inside a block, the checkpoint tensor names against the torch
module's state_dict, and the normalised spec.
Run: GT_BIN=bin /usr/bin/python3 tests/ref/test_layers_res.py"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nnref  # noqa: E402
from tap import Tap  # noqa: E402

t = Tap()
RTOL = 1e-4

GEN = ("linear 32; reshape 8x2x2; "
       "block { bn; relu; upsample 2; conv 6 k3 p1; bn; relu; conv 6 k3 p1 } skip { upsample 2; conv 6 k1 }; "
       "block { bn; relu; conv 6 k3 p1; bn; relu; conv 6 k3 p1 }; bn; relu; conv 2 k3 p1; tanh")
CRITIC = ("block { conv 6 k3 p1; relu; conv 6 k3 p1; avgpool k2 } skip { conv 6 k1; avgpool k2 }; "
          "block { relu; conv 6 k3 p1; relu; conv 6 k3 p1 }; relu; sumpool; linear 1")
cases = [  # name, spec, input shape, batch, train, jvp
    ("sumpool", "sumpool", (3, 4, 5), 4, True, True),
    ("sumpool; linear", "conv 4 k3 p1; relu; sumpool; linear 1", (2, 5, 5), 3, True, True),
    ("identity block", "block { linear 7; lrelu 0.2; linear 7 }", (7, 1, 1), 4, True, True),
    ("generator stack (train)", GEN, (5, 1, 1), 4, True, False),
    ("generator stack (eval)", GEN, (5, 1, 1), 4, False, False),
    ("critic", CRITIC, (2, 8, 8), 3, True, True),
    ("cbn in a generator block", "linear 24; reshape 6x2x2; "
     "block { cbn 3; relu; upsample 2; conv 4 k3 p1; cbn 3; relu; conv 4 k3 p1 } skip { upsample 2; conv 4 k1 }; "
     "tanh", (4, 1, 1), 6, True, False),
    ("proj after a block", "block { conv 3 k3 p1; relu; conv 3 k3 p1 }; relu; sumpool; proj 4",
     (3, 4, 4), 5, True, True),
]
for name, spec, shape, B, train, jvp in cases:
    for j in ((False, True) if jvp else (False,)):
        r = nnref.run(spec, shape, batch=B, seed=4, train=train, jvp=j)
        nnref.compare(t, f"{name} B={B}{' [jvp]' if j else ''}", r, RTOL)
        if not j:  # the net's observer (net.h net_observe): inside the blocks too
            nnref.compare_layers(t, f"{name} B={B}", r, RTOL)

# ---- checkpoint names: ours load into the torch module ---------------------------------------
r = nnref.run(CRITIC, (2, 8, 8), batch=2, seed=2)
ours = [ln[0] for ln in r["ours"]["tensors"]]
t.check("critic: checkpoint names are the torch module's state_dict keys",
        ours == list(r["ref"]["seq"].state_dict()), f"ours {ours}\ntorch {list(r['ref']['seq'].state_dict())}")
t.check("critic: names", ours[:6] == ["0.main.0.weight", "0.main.0.bias", "0.main.2.weight", "0.main.2.bias",
                                      "0.skip.0.weight", "0.skip.0.bias"], f"{ours}")
r = nnref.run(GEN, (5, 1, 1), batch=2, seed=2)
ours = [ln[0] for ln in r["ours"]["tensors"]]
t.check("generator: checkpoint names are the torch module's state_dict keys",
        ours == list(r["ref"]["seq"].state_dict()), f"ours {ours}\ntorch {list(r['ref']['seq'].state_dict())}")
t.check("generator: BatchNorm state inside a block", "2.main.0.running_mean" in ours and
        "2.main.0.num_batches_tracked" in ours and "2.skip.1.weight" in ours, f"{ours}")

# ---- the normalised spec ---------------------------------------------------------------------
want = ("block { conv 6 k3 s1 p1; relu; conv 6 k3 s1 p1; avgpool k2 s2 p0 } skip { conv 6 k1 s1 p0; "
        "avgpool k2 s2 p0 }; block { relu; conv 6 k3 s1 p1; relu; conv 6 k3 s1 p1 }; relu; sumpool; linear 1")
r = nnref.run("block {\n  conv 6 k3 p1; relu  # the main path\n  conv 6 k3 p1\n  avgpool k2\n}\nskip {conv 6 k1;"
              " avgpool k2}\nblock{relu;conv 6 k3 p1;relu;conv 6 k3 p1}\nrelu\nsumpool\nlinear 1", (2, 8, 8), batch=2)
t.check("normalised spec of a multi-line file", r["ours"]["spec"] == want, r["ours"]["spec"])
r2 = nnref.run(want, (2, 8, 8), batch=2)
t.check("the normalised spec normalises to itself", r2["ours"]["spec"] == want, r2["ours"]["spec"])
t.done()
