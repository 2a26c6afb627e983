"""nnref.py: PyTorch float64 reference for networks written in the spec language (lib/nn/spec.md),
and the driver of the C probe (tests/tools/nn-probe.c), for the layer parity scripts.

    import nnref
    from tap import Tap
    t = Tap()
    r = nnref.run("conv 8 k3 p1; relu", (3, 8, 8), batch=4, seed=1)   # ours and torch's
    nnref.compare(t, "conv relu", r)          # y, dx, dparams, state (and ty, dtx in jvp mode)
    t.done()

run() draws x, dy (and tx, dty with jvp=True) from a NumPy generator, runs the probe (float32),
then builds the equivalent torch.nn.Sequential in float64 from the same spec, loads the
parameters the probe used (its params.npy: our initialisation, or the ones passed in), and
runs the same pass with autograd. Dropout's mask cannot come from torch's RNG: it is read off
the probe's own activations (mask = output != 0 where the input is non-zero). The noise layer's
draw is computed here from our Philox key (philoxref.py), inside blocks too.

Residual blocks (`block { ... } skip { ... }`) are Residual modules holding the Sequentials
`main` and `skip`; dropout masks are read off the probe's activations only for top-level
dropout layers. In plain mode the probe writes every layer's output (act_NAME) and, with dy, the
gradient w.r.t. it (dact_NAME), inside blocks too, NAME being the torch module's name ("3",
"3.main.2"); reference() gets torch's from forward hooks on the named modules (acts, dacts), and
compare_layers checks them.

Layouts: the flat parameter vector is every layer's parameters in order (a block's main path
then its shortcut), each tensor in
PyTorch layout, weight then bias (torch's module.parameters() order); the flat state vector
is every BatchNorm's running_mean then running_var, and every spectral-normalized layer's u
then v (torch.nn.utils.spectral_norm's weight_u, weight_v), in layer order. Under spectral_norm
a layer's trained weight is weight_orig (listed first, as ours: parameters()).
"""
import os
import subprocess
import tempfile

import numpy as np
import torch
import torch.nn as nn

from philoxref import philox_normal

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def tool_path(name):
    """A test-only program built from tests/tools/NAME.c, found relative to $GT_BIN:
    $GT_BIN/../tests/tools/NAME (private builds), or for the default release build whose
    programs are in bin/, build/release-cuda0/tests/tools/NAME."""
    gt_bin = os.path.abspath(os.environ.get("GT_BIN", os.path.join(ROOT, "bin")))
    cands = [os.path.normpath(os.path.join(gt_bin, "..", "tests", "tools", name))]
    if os.path.normpath(gt_bin) == os.path.join(ROOT, "bin"):
        cands.insert(0, os.path.join(ROOT, "build", "release-cuda0", "tests", "tools", name))
    for c in cands:
        if os.access(c, os.X_OK):
            return os.path.normpath(c)
    raise FileNotFoundError(f"{name} not built (looked in {', '.join(cands)}); run make unit-tests")


# ---- the spec language, parsed independently of lib/nn/spec.c ------------------------------

def _pair(s):
    if "x" in s:
        a, b = s.split("x")
        return int(a), int(b)
    return int(s), int(s)


def _parse_layer(toks):
    """(kind, args) of one layer's tokens."""
    kind, rest = toks[0], toks[1:]
    a = {"bias": True, "slope": 0.01, "p": 0.5, "eps": 1e-5, "momentum": 0.1,
         "s": None, "pad": (0, 0), "op": (0, 0)}
    pos = []
    for t in rest:
        if t in ("nobias", "noaffine"):
            a["bias"] = False
        elif t == "nopad":
            a["nopad"] = True
        elif t == "sn":
            a["sn"] = 1
        elif t == "wn":
            a["wn"] = True
        elif t.startswith("sn="):
            a["sn"] = int(t[3:])
        elif t.startswith("eps="):
            a["eps"] = float(t[4:])
        elif t.startswith("momentum="):
            a["momentum"] = float(t[9:])
        elif t.startswith("op") and t[2:3].isdigit():
            a["op"] = _pair(t[2:])
        elif t[0] == "k" and t[1:2].isdigit():
            a["k"] = _pair(t[1:])
        elif t[0] == "s" and t[1:2].isdigit():
            a["s"] = _pair(t[1:])
        elif t[0] == "p" and t[1:2].isdigit():
            a["pad"] = _pair(t[1:])
        else:
            pos.append(t)
    if kind in CLASS_KINDS:
        a["K"] = int(pos[0])
        if len(pos) > 1:
            a["n"] = int(pos[1])
    elif pos:
        if kind == "reshape":
            a["shape"] = tuple(int(v) for v in pos[0].split("x"))
        elif kind in ("lrelu",):
            a["slope"] = float(pos[0])
        elif kind == "dropout":
            a["p"] = float(pos[0])
        elif kind == "noise":
            a["sigma"] = float(pos[0])
        else:
            a["n"] = int(pos[0])
    if a["s"] is None:
        a["s"] = a["k"] if kind in ("maxpool", "avgpool") else (1, 1)
    return kind, a


def parse_spec(text):
    """[(kind, args)] with args a dict of the layer's settings (defaults filled in). A residual
    block `block { ... } [skip { ... }]` is ("block", {"main": [...], "skip": [...] or None})."""
    lines = [ln.split("#", 1)[0] for ln in text.split("\n")]
    flat = ";".join(lines).replace("{", ";{;").replace("}", ";};")
    items = [it.split() for it in flat.split(";") if it.split()]

    def path(k):
        assert items[k] == ["{"], f"nnref: expected '{{' at item {k}"
        out, k = [], k + 1
        while items[k] != ["}"]:
            out.append(_parse_layer(items[k]))
            k += 1
        return out, k + 1

    layers, k = [], 0
    while k < len(items):
        if items[k] == ["block"]:
            main, k = path(k + 1)
            skip = None
            if k < len(items) and items[k] == ["skip"]:
                skip, k = path(k + 1)
            layers.append(("block", {"main": main, "skip": skip}))
        else:
            layers.append(_parse_layer(items[k]))
            k += 1
    return layers


CLASS_KINDS = ("embed", "onehot", "cbn", "proj")


def all_layers(layers):
    """parse_spec's layers with the blocks' own layers in their place (main path, then skip)."""
    out = []
    for kind, a in layers:
        if kind == "block":
            out += all_layers(a["main"]) + all_layers(a["skip"] or [])
        else:
            out.append((kind, a))
    return out


def _as4(x):
    return x if x.dim() == 4 else x.reshape(x.shape[0], -1, 1, 1)


class ClassConcat(nn.Module):
    """embed K N (a learned table, torch's nn.Embedding layout: weight (K, N)) or onehot K:
    x (B, C, H, W) joined with the class's channels, the same at every position. The batch's
    classes are set as .labels (a LongTensor) before a pass."""

    def __init__(self, K, n=None):
        super().__init__()
        self.K, self.labels = K, None
        self.weight = nn.Parameter(torch.zeros(K, n)) if n is not None else None

    def forward(self, x):
        x = _as4(x)
        B, _, H, W = x.shape
        e = self.weight[self.labels] if self.weight is not None else \
            nn.functional.one_hot(self.labels, self.K).to(x.dtype)
        return torch.cat([x, e[:, :, None, None].expand(B, e.shape[1], H, W)], 1)


class CondBatchNorm(nn.BatchNorm2d):
    """cbn K: BatchNorm without affine, then weight[label, c] and bias[label, c] (K, C). A
    BatchNorm2d whose weight and bias are K x C tables, so its state_dict names are BatchNorm's
    (weight, bias, running_mean, running_var, num_batches_tracked), as our checkpoints write."""

    def __init__(self, K, C, eps, momentum):
        super().__init__(C, eps=eps, momentum=momentum, affine=False)
        self.weight = nn.Parameter(torch.ones(K, C))
        self.bias = nn.Parameter(torch.zeros(K, C))
        self.labels = None

    def forward(self, x):
        x = _as4(x)
        if self.training:
            self.num_batches_tracked += 1
        h = nn.functional.batch_norm(x, self.running_mean, self.running_var, None, None, self.training,
                                     self.momentum, self.eps)
        return h * self.weight[self.labels][:, :, None, None] + self.bias[self.labels][:, :, None, None]


class Projection(nn.Linear):
    """proj K: the projection discriminator's output, Linear(F, 1)(h) + <embed(label), h>."""

    def __init__(self, F, K, bias=True):
        super().__init__(F, 1, bias=bias)
        self.embed = nn.Embedding(K, F)
        self.labels = None

    def forward(self, h):
        return super().forward(h) + (self.embed(self.labels) * h).sum(1, keepdim=True)


def set_labels(seq, labels):
    """Give every class-conditional module of seq the batch's classes."""
    lab = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    for m in seq.modules():
        if hasattr(m, "labels"):
            m.labels = lab


class SumPool(nn.Module):
    """sumpool: the sum over H and W, keeping (B, C, 1, 1)."""

    def forward(self, x):
        return _as4(x).sum(dim=(2, 3), keepdim=True)


class Residual(nn.Module):
    """block { main } skip { skip }: main(x) + skip(x), skip None for the identity. The
    Sequentials are registered main first, so parameters() and state_dict() list the main
    path's tensors before the shortcut's ("3.main.0.weight", "3.skip.0.weight")."""

    def __init__(self, main, skip):
        super().__init__()
        self.main = main
        if skip is not None:
            self.skip = skip
        self.has_skip = skip is not None

    def forward(self, x):
        a = forward(self.main, x)
        b = forward(self.skip, x) if self.has_skip else x
        return (a.reshape(a.shape[0], -1) + b.reshape(b.shape[0], -1)).reshape(a.shape)


class MaskDropout(nn.Module):
    """nn.Dropout with a given mask (taken from our probe): y = x * mask / (1 - p) in training."""

    def __init__(self, p):
        super().__init__()
        self.p = p
        self.mask = None

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        return x * self.mask.reshape(x.shape) / (1 - self.p)


PHILOX_STREAM_NOISE = 9


class PhiloxNoise(nn.Module):
    """noise SIGMA: x + sigma z in training mode, x in evaluation mode, z our Philox draw
    (lib/nn/layer_noise.c's key: seed, PHILOX_STREAM_NOISE, step, layer * 2^48 + sample * N +
    element) computed here in NumPy (philoxref), not read off the probe. seed, step and the
    layer's number (index) are set before a pass (set_keys); samples count from 0."""

    def __init__(self, sigma):
        super().__init__()
        self.sigma, self.seed, self.step, self.index = sigma, 1, 0, 0

    def forward(self, x):
        if not self.training or self.sigma == 0:
            return x
        n = x[0].numel()
        idx = (np.uint64(self.index) << np.uint64(48)) + np.arange(x.shape[0] * n, dtype=np.uint64)
        z = philox_normal(self.seed, PHILOX_STREAM_NOISE, self.step, idx).astype(np.float64)
        return x + float(np.float32(self.sigma)) * torch.as_tensor(z).reshape(x.shape)


def set_keys(seq, seed, step):
    """Give the noise layers of seq (built by build()) the pass's Philox seed and step."""
    for m in seq.modules():
        if isinstance(m, PhiloxNoise):
            m.seed, m.step = seed, step


def _number(seq):
    """Each layer's Philox number (lib/nn/spec.md, "Initialisation"): top-level layers by
    position, the blocks' layers after the last, block by block, main path then shortcut; set
    as .index on the noise modules."""
    nxt = len(seq)
    for i, m in enumerate(seq):
        if isinstance(m, PhiloxNoise):
            m.index = i
        if isinstance(m, Residual):
            for sub in [m.main] + ([m.skip] if m.has_skip else []):
                for mm in sub:
                    if isinstance(mm, PhiloxNoise):
                        mm.index = nxt
                    nxt += 1


FEATURE_KINDS = (nn.Linear, nn.BatchNorm1d)
IMAGE_KINDS = (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.InstanceNorm2d, nn.MaxPool2d, nn.AvgPool2d,
               nn.Upsample)


def _adapt(m, x):
    """Give module m its input in torch's rank: (B, n) for features, (B, C, H, W) for images."""
    B = x.shape[0]
    if isinstance(m, FEATURE_KINDS) or isinstance(m, nn.Unflatten) or (
            isinstance(m, nn.LayerNorm) and len(m.normalized_shape) == 1):
        return x.reshape(B, -1)
    if isinstance(m, IMAGE_KINDS) or isinstance(m, nn.LayerNorm):
        return x if x.dim() == 4 else x.reshape(B, -1, 1, 1)
    return x


def forward(seq, x, collect=False):
    """Run the Sequential with rank adapters; returns the output (and each layer's output)."""
    outs = []
    for m in seq:
        x = m(_adapt(m, x))
        outs.append(x)
    return (x, outs) if collect else x


def build(spec, in_shape):
    """(nn.Sequential in float64, [output shape (C, H, W) per layer]) for the spec."""
    seq, shapes = _build_seq(parse_spec(spec), in_shape)
    _number(seq)
    return seq, shapes


def _build_seq(layers, in_shape):
    C, H, W = in_shape
    mods, shapes = [], []
    x = torch.zeros(1, C, H, W, dtype=torch.float64)
    for kind, a in layers:
        c, h, w = x.shape[1], (x.shape[2] if x.dim() == 4 else 1), (x.shape[3] if x.dim() == 4 else 1)
        feat = h == 1 and w == 1
        if kind == "block":
            main, _ = _build_seq(a["main"], (c, h, w))
            skip = _build_seq(a["skip"], (c, h, w))[0] if a["skip"] else None
            m = Residual(main, skip)
        elif kind == "sumpool":
            m = SumPool()
        elif kind == "linear":
            m = nn.Linear(c * h * w, a["n"], bias=a["bias"])
        elif kind == "conv":
            m = nn.Conv2d(c, a["n"], a["k"], stride=a["s"], padding=a["pad"], bias=a["bias"])
        elif kind == "convT":
            m = nn.ConvTranspose2d(c, a["n"], a["k"], stride=a["s"], padding=a["pad"],
                                   output_padding=a["op"], bias=a["bias"])
        elif kind == "bn":
            cls = nn.BatchNorm1d if feat else nn.BatchNorm2d
            m = cls(c, eps=a["eps"], momentum=a["momentum"], affine=a["bias"])
        elif kind == "ln":
            m = nn.LayerNorm(c if feat else [c, h, w], eps=a["eps"], elementwise_affine=a["bias"])
        elif kind == "in":
            m = nn.InstanceNorm2d(c, eps=a["eps"], affine=a["bias"], track_running_stats=False)
        elif kind == "relu":
            m = nn.ReLU()
        elif kind == "lrelu":
            m = nn.LeakyReLU(a["slope"])
        elif kind == "tanh":
            m = nn.Tanh()
        elif kind == "sigmoid":
            m = nn.Sigmoid()
        elif kind == "dropout":
            m = MaskDropout(a["p"])
        elif kind == "noise":
            m = PhiloxNoise(a["sigma"])
        elif kind == "reshape":
            m = nn.Unflatten(1, a["shape"])
        elif kind == "flatten":
            m = nn.Flatten()
        elif kind == "upsample":
            m = nn.Upsample(scale_factor=a["n"], mode="nearest")
        elif kind == "maxpool":
            m = nn.MaxPool2d(a["k"], stride=a["s"], padding=a["pad"])
        elif kind == "avgpool":
            m = nn.AvgPool2d(a["k"], stride=a["s"], padding=a["pad"], count_include_pad=not a.get("nopad"))
        elif kind in ("embed", "onehot"):
            m = ClassConcat(a["K"], a.get("n"))
        elif kind == "cbn":
            m = CondBatchNorm(a["K"], c, a["eps"], a["momentum"])
        elif kind == "proj":
            m = Projection(c * h * w, a["K"], bias=a["bias"])
        else:
            raise ValueError(f"nnref: unknown layer kind {kind!r}")
        m = m.double()
        if a.get("sn"):
            # torch's own: W = weight_orig / sigma, u, v buffers, dim 1 for ConvTranspose2d
            m = nn.utils.spectral_norm(m, n_power_iterations=a["sn"])
        if a.get("wn"):
            # torch's own: weight = weight_v * (weight_g / ||weight_v||), dim 0 for every module
            m = nn.utils.weight_norm(m)
        m.eval()
        for mm in m.modules():
            if hasattr(mm, "labels"):
                mm.labels = torch.zeros(1, dtype=torch.int64)
        with torch.no_grad():
            x = m(_adapt(m, x))
        mods.append(m)
        s = tuple(x.shape[1:])
        shapes.append(s + (1,) * (3 - len(s)))
    return nn.Sequential(*mods), shapes


def parameters(seq):
    """seq's parameters in our order: module by module as seq.modules() walks them (inside
    residual blocks too, main path then shortcut), each module's weight (weight_orig under
    spectral_norm, weight_v under weight_norm, which torch registers after the bias) first, then
    its others in torch's order, weight_norm's weight_g last (after the bias, as ours)."""
    out = []
    for m in seq.modules():
        ps = list(m.named_parameters(recurse=False))
        ps.sort(key=lambda kv: 0 if kv[0] in ("weight_orig", "weight_v") else 2 if kv[0] == "weight_g" else 1)
        out += [p for _, p in ps]
    return out


def flat_params(seq):
    ps = parameters(seq)
    return torch.cat([p.detach().reshape(-1) for p in ps]) if ps else torch.zeros(0, dtype=torch.float64)


def set_params(seq, flat):
    flat = torch.as_tensor(np.asarray(flat, dtype=np.float64))
    n = sum(p.numel() for p in parameters(seq))
    if n != flat.numel():
        raise ValueError(f"nnref: {flat.numel()} parameters given, the torch net has {n}")
    off = 0
    with torch.no_grad():
        for p in parameters(seq):
            p.copy_(flat[off:off + p.numel()].reshape(p.shape))
            off += p.numel()


def bn_modules(seq):
    return [m for m in seq.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]


def state_buffers(seq):
    """The buffers of our flat state, in layer order: BatchNorm's running_mean and running_var,
    spectral normalization's weight_u and weight_v."""
    out = []
    for m in seq.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            out += [m.running_mean, m.running_var]
        elif hasattr(m, "weight_u"):
            out += [m.weight_u, m.weight_v]
    return out


def flat_state(seq):
    parts = [b.reshape(-1) for b in state_buffers(seq)]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


def set_state(seq, flat):
    flat = torch.as_tensor(np.asarray(flat, dtype=np.float64))
    off = 0
    with torch.no_grad():
        for buf in state_buffers(seq):
            buf.copy_(flat[off:off + buf.numel()])
            off += buf.numel()
    if off != flat.numel():
        raise ValueError(f"nnref: {flat.numel()} state values given, the torch net has {off}")


def _save(path, a):
    np.save(path, np.ascontiguousarray(a, dtype=np.float32))


def run_probe(spec, in_shape, batch, x, params=None, state=None, dy=None, tx=None, dty=None,
              train=True, seed=1, step=0, init=None, threads=1, labels=None):
    """Run nn-probe; returns a dict of its outputs (float64 arrays) plus 'spec' and 'tensors'."""
    with tempfile.TemporaryDirectory() as d:
        args = [tool_path("nn-probe"), "--spec", spec, "--in", "x".join(str(v) for v in in_shape),
                "--batch", str(batch), "--out", d, "--seed", str(seed), "--step", str(step),
                "--threads", str(threads), "--train" if train else "--eval"]
        for name, arr in (("x", x), ("params", params), ("state", state), ("dy", dy), ("tx", tx), ("dty", dty),
                          ("labels", labels)):
            if arr is not None:
                _save(os.path.join(d, name + "_in.npy"), arr)
                args += ["--" + name, os.path.join(d, name + "_in.npy")]
        if init is not None:
            args += ["--init", init]
        p = subprocess.run(args, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"nn-probe failed ({p.returncode}): {p.stderr.strip()}")
        out = {}
        for f in os.listdir(d):
            if f.endswith(".npy") and not f.endswith("_in.npy"):
                out[f[:-4]] = np.load(os.path.join(d, f)).astype(np.float64)
        with open(os.path.join(d, "spec.txt")) as fh:
            out["spec"] = fh.read().strip()
        with open(os.path.join(d, "tensors.txt")) as fh:
            out["tensors"] = [ln.split() for ln in fh.read().splitlines()]
        return out


def _mask_from(act_in, act_out):
    """Dropout's keep mask read off our activations: kept where the output is non-zero
    (where the input is zero the mask cannot be seen, and does not matter: taken as kept)."""
    return ((act_out != 0) | (act_in == 0)).astype(np.float64)


def reference(spec, in_shape, ours, x, state=None, dy=None, tx=None, dty=None, train=True, labels=None, seed=1,
              step=0):
    """Torch float64 results for the pass the probe ran (its params and dropout masks; the
    noise layers' draws for seed and step)."""
    seq, shapes = build(spec, in_shape)
    set_params(seq, ours["params"])
    set_keys(seq, seed, step)
    if labels is not None:
        set_labels(seq, labels)
    if state is None and ours.get("state0") is not None:
        state = ours["state0"]  # the probe's initial state (spectral normalization's u, v)
    if state is not None:
        set_state(seq, state)
    seq.train(train)
    B = x.shape[0]
    # dropout masks from our activations
    for i, m in enumerate(seq):
        if isinstance(m, MaskDropout):
            a_in = x.reshape(B, -1) if i == 0 else ours[f"act_{i - 1}"].reshape(B, -1)
            a_out = ours[f"act_{i}"].reshape(B, -1)
            m.mask = torch.as_tensor(_mask_from(a_in, a_out))
    xt = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    params = parameters(seq)
    res = {}
    if tx is None:
        named, hooks = {}, []
        for mname, mod in seq.named_modules():
            if mname and mname.split(".")[-1].isdigit():  # a Sequential's layer, not a part of one
                hooks.append(mod.register_forward_hook(
                    lambda _m, _i, o, mname=mname: named.__setitem__(mname, o)))
        y, outs = forward(seq, xt, collect=True)
        for h in hooks:
            h.remove()
        res["y"] = y.detach().numpy().reshape(ours["y"].shape)
        for i, o in enumerate(outs):
            res[f"act_{i}"] = o.detach().numpy().reshape((B,) + shapes[i])
        res["acts"] = {k: v.detach().numpy() for k, v in named.items()}
        if dy is not None:
            dyt = torch.as_tensor(np.asarray(dy, dtype=np.float64)).reshape(y.shape)
            keys = list(named)
            grads = torch.autograd.grad(y, [xt] + params + [named[k] for k in keys], dyt, allow_unused=True)
            res["dx"] = grads[0].numpy().reshape(x.shape)
            res["dparams"] = _flat_grads(grads[1:1 + len(params)], params)
            res["dacts"] = {k: _zeros_if_none(g, named[k]).numpy() for k, g in zip(keys, grads[1 + len(params):])}
    else:
        txt = torch.tensor(np.asarray(tx, dtype=np.float64), requires_grad=True)
        y = forward(seq, xt)
        u = torch.zeros_like(y, requires_grad=True)
        (g,) = torch.autograd.grad(y, xt, u, create_graph=True)  # J^T u
        (ty,) = torch.autograd.grad(g, u, txt, create_graph=True)  # J tx
        res["y"] = y.detach().numpy().reshape(ours["y"].shape)
        res["ty"] = ty.detach().numpy().reshape(ours["y"].shape)
        dyt = torch.zeros_like(y) if dy is None else torch.as_tensor(np.asarray(dy, dtype=np.float64)).reshape(y.shape)
        dtyt = torch.as_tensor(np.asarray(dty, dtype=np.float64)).reshape(y.shape)
        s = (y * dyt).sum() + (ty * dtyt).sum()
        grads = torch.autograd.grad(s, [xt, txt] + params, allow_unused=True)
        res["dx"] = _zeros_if_none(grads[0], xt).numpy().reshape(x.shape)
        res["dtx"] = _zeros_if_none(grads[1], txt).numpy().reshape(x.shape)
        res["dparams"] = _flat_grads(grads[2:], params)
    res["state"] = flat_state(seq).numpy()
    res["seq"] = seq
    return res


def _zeros_if_none(g, like):
    return torch.zeros_like(like) if g is None else g.detach()


def _flat_grads(grads, params):
    if not params:
        return np.zeros(0)
    return torch.cat([_zeros_if_none(g, p).reshape(-1) for g, p in zip(grads, params)]).numpy()


def run(spec, in_shape, batch=4, seed=1, params=None, state=None, train=True, jvp=False, backward=True,
        init=None, step=0, threads=1, x=None, scale=1.0, labels=None):
    """Random x, dy (and tx, dty when jvp) from seed; probe then torch. Returns
    {'ours': probe outputs, 'ref': torch results, 'x': x, ...}. A spec with class-conditional
    layers gets random labels in [0, K) unless labels are given."""
    rng = np.random.default_rng(seed)
    C, H, W = in_shape
    if x is None:
        x = (rng.standard_normal((batch, C, H, W)) * scale).astype(np.float32)
    ks = [a["K"] for k, a in all_layers(parse_spec(spec)) if k in CLASS_KINDS]
    if labels is None and ks:
        labels = rng.integers(0, min(ks), batch)
    ref_seq, shapes = build(spec, in_shape)
    out_shape = (batch,) + shapes[-1]
    dy = rng.standard_normal(out_shape).astype(np.float32) if backward else None
    tx = dty = None
    if jvp:
        tx = rng.standard_normal((batch, C, H, W)).astype(np.float32)
        dty = rng.standard_normal(out_shape).astype(np.float32)
    ours = run_probe(spec, in_shape, batch, x, params=params, state=state, dy=dy, tx=tx, dty=dty, train=train,
                     seed=seed, step=step, init=init, threads=threads, labels=labels)
    ref = reference(spec, in_shape, ours, x.astype(np.float64), state=state, dy=dy, tx=tx, dty=dty, train=train,
                    labels=labels, seed=seed, step=step)
    return {"ours": ours, "ref": ref, "x": x, "dy": dy, "tx": tx, "dty": dty, "labels": labels}


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)) if a.size else 0.0


def first_divergence(r, rtol=1e-4):
    """'layer I (KIND): relative error E' for the first layer whose output differs, or None
    (plain mode only: the probe's act_I against torch's)."""
    kinds = [k for k, _ in parse_spec(r["ours"]["spec"])]
    for i, kind in enumerate(kinds):
        k = f"act_{i}"
        if k in r["ours"] and k in r["ref"]:
            e = _rel(r["ours"][k], r["ref"][k])
            if not e <= rtol:
                return f"first differing output: layer {i + 1} ({kind}), relative error {e:.3g}"
    return None


def compare_layers(t, name, r, rtol=1e-4):
    """Two TAP checks (plain mode): the probe wrote an output for every torch module (blocks'
    children and the blocks themselves included) and each equals torch's; each gradient w.r.t. an
    output the probe wrote (with dy) equals torch's."""
    ours, ref = r["ours"], r["ref"]
    mine = sorted(k[4:] for k in ours if isinstance(k, str) and k.startswith("act_"))
    worst, where = 0.0, ""
    for k in ref["acts"]:
        a = ours.get("act_" + k)
        e = _rel(a, ref["acts"][k].reshape(a.shape)) if a is not None and a.size == ref["acts"][k].size else np.inf
        if not e <= worst:
            worst, where = e, k
    ok = t.check(f"{name}: every layer's output ({len(ref['acts'])})",
                 sorted(ref["acts"]) == mine and worst <= rtol,
                 f"names ours {mine} torch {sorted(ref['acts'])}; worst {where}: {worst:.3g}")
    if "dacts" in ref:
        worst, where, n = 0.0, "", 0
        for k in ref["dacts"]:
            if "dact_" + k not in ours:
                continue
            n += 1
            e = _rel(ours["dact_" + k], ref["dacts"][k].reshape(ours["dact_" + k].shape))
            if not e <= worst:
                worst, where = e, k
        ok &= t.check(f"{name}: gradient w.r.t. every layer's output ({n})", n > 0 and worst <= rtol,
                      f"worst {where}: {worst:.3g}")
    return ok


def compare(t, name, r, rtol=1e-4, keys=("y", "dx", "dparams", "state", "ty", "dtx")):
    """One TAP check per tensor present in both results: max |ours - ref| / max |ref| <= rtol.
    A failing output also names the first layer whose output differs."""
    ok = True
    for k in keys:
        if k in r["ours"] and k in r["ref"]:
            if k == "state" and r["ref"][k].size == 0 and r["ours"][k].size == 0:
                continue
            e = _rel(r["ours"][k], r["ref"][k])
            msg = f"relative error {e:.3g} > {rtol:g}"
            if not e <= rtol and k == "y":
                msg += "\n" + (first_divergence(r, rtol) or "")
            ok &= bool(t.check(f"{name}: {k}", e <= rtol, msg))
    return ok
