"""test_sample_torch.py: gan-sample's images equal the checkpoint's generator run in PyTorch.

The generator is rebuilt as a torch.nn.Sequential in float64 from the checkpoint's G_spec
(nnref.build), its state_dict is loaded from the safetensors file (parsed here with json and
numpy), and it runs in eval mode on the latents gan-sample used (--z-out). Checked for a
linear model, the mlp and dcgan presets (BatchNorm running statistics, EMA weights and
--no-ema), --best-of's choice against D's scores computed in torch, and --activations: every
layer's output (inside residual blocks too) equals torch's module of that name (forward hooks),
the input is the latents and the last output is the images, byte for byte.
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nnref  # noqa: E402
from tap import BIN, Tap, scratch_dir  # noqa: E402


def prog(name):
    return os.path.join(BIN, name)


def read_st(path):
    """(metadata, {name: array}) of a safetensors file."""
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
    return h["__metadata__"], out


def torch_net(meta, tensors, which, ema):
    """The network `which` (G or D) of a checkpoint as a float64 torch Sequential in eval mode."""
    if which == "G":
        in_shape = (int(meta["z_dim"]), 1, 1)
    else:
        in_shape = tuple(int(v) for v in meta["shape"].split("x"))
    seq, _ = nnref.build(meta[which + "_spec"], in_shape)
    sd = {}
    for name in seq.state_dict():
        src = tensors[which + "." + name]
        if ema and which == "G" and ("G_ema." + name) in tensors:
            src = tensors["G_ema." + name]
        sd[name] = torch.as_tensor(np.array(src)).to(torch.float64 if src.dtype == np.float32 else torch.int64)
    seq.load_state_dict(sd)
    seq.eval()
    return seq


def run(args, **kw):
    return subprocess.run(args, check=True, **kw)


def check_activations(t, tmp, name, m, meta, tensors):
    """gan-sample --activations against torch's G with forward hooks on its named layers."""
    d = os.path.join(tmp, name + "-acts")
    x_path, z_path = os.path.join(tmp, name + "-ax.npy"), os.path.join(tmp, name + "-az.npy")
    run([prog("gan-sample"), "-n", "9", "--seed", "2", "--batch", "4", "--activations", d, "--z-out", z_path,
         "-i", m, "-o", x_path])
    with open(os.path.join(d, "manifest.tsv")) as f:
        rows = [ln.rstrip("\n").split("\t") for ln in f][1:]
    G = torch_net(meta, tensors, "G", True)
    outs = {}
    for mname, mod in G.named_modules():
        if mname and mname.split(".")[-1].isdigit():
            mod.register_forward_hook(lambda _m, _i, o, mname=mname: outs.__setitem__(mname, o.detach().numpy()))
    z = np.load(z_path)
    with torch.no_grad():
        nnref.forward(G, torch.as_tensor(z, dtype=torch.float64))
    names = [r[4] for r in rows]
    t.check(f"{name}: --activations writes the input and every layer of torch's G",
            sorted(names) == sorted(list(outs) + ["input"]) and all(r[0] == f"G.{r[4]}.npy" for r in rows),
            f"ours {names}\ntorch {list(outs)}")
    worst, where = 0.0, ""
    for r in rows:
        a = np.load(os.path.join(d, r[0]))
        if r[6] != "x".join(map(str, a.shape)):
            worst, where = np.inf, r[0] + " shape"
            break
        if r[4] == "input":
            continue
        ref = outs[r[4]].reshape(a.shape)
        e = np.abs(a - ref).max() / max(np.abs(ref).max(), 1e-30)
        if not e <= worst:
            worst, where = e, r[0]
    t.check(f"{name}: every layer's activation equals torch's (worst {where}: {worst:.2g})", worst <= 1e-5,
            f"{where}: {worst}")
    last = os.path.join(d, f"G.{len(G) - 1}.npy")
    t.check(f"{name}: G.input.npy is the latents and the last activation is the images, bit for bit",
            np.array_equal(np.load(os.path.join(d, "G.input.npy")).reshape(z.shape), z)
            and np.array_equal(np.load(last), np.load(x_path)))


def main():
    t = Tap()
    tmp = scratch_dir("gt-sample-")
    rng = np.random.default_rng(0)
    data28 = os.path.join(tmp, "d28.npy")
    np.save(data28, rng.integers(0, 256, size=(128, 1, 28, 28)).astype(np.uint8))
    data8 = os.path.join(tmp, "d8.npy")
    np.save(data8, rng.integers(0, 256, size=(64, 1, 8, 8)).astype(np.uint8))

    cases = [
        ("linear", ["--G", "linear 32; lrelu 0.2; linear 64; tanh; reshape 1x8x8",
                    "--D", "flatten; linear 32; lrelu 0.2; linear 1", "--shape", "1x8x8", "--z", "8"], data8),
        ("mlp", ["--arch", "mlp", "--shape", "1x28x28", "--z", "20"], data28),
        ("dcgan", ["--arch", "dcgan", "--shape", "1x28x28", "--z", "20"], data28),
        ("resnet", ["--G", "linear 64; reshape 4x4x4; block { bn; relu; upsample 2; conv 4 k3 p1 } "
                    "skip { upsample 2; conv 4 k1 }; block { bn; relu; conv 4 k3 p1 }; conv 1 k3 p1; tanh",
                    "--D", "flatten; linear 32; lrelu 0.2; linear 1", "--shape", "1x8x8", "--z", "8"], data8),
    ]
    for name, init_args, data in cases:
        m0 = os.path.join(tmp, name + "-0.st")
        m = os.path.join(tmp, name + ".st")
        r = subprocess.run([prog("gan-init")] + init_args + ["--seed", "3", "--ema", "0.7", "--batch", "16",
                                                              "-o", m0], capture_output=True, text=True)
        if not t.check(f"{name}: gan-init", r.returncode == 0, r.stderr):
            continue
        r = subprocess.run([prog("gan-step"), "-q", "--data", data, "--steps", "3", "-i", m0, "-o", m],
                           capture_output=True, text=True)
        if not t.check(f"{name}: gan-step 3 steps", r.returncode == 0, r.stderr):
            continue
        meta, tensors = read_st(m)
        x_path, z_path = os.path.join(tmp, name + "-x.npy"), os.path.join(tmp, name + "-z.npy")
        for ema in (True, False):
            run([prog("gan-sample"), "-n", "20", "--seed", "5", "--batch", "7", "--z-out", z_path, "-i", m, "-o", x_path]
                + ([] if ema else ["--no-ema"]))
            x, z = np.load(x_path), np.load(z_path)
            G = torch_net(meta, tensors, "G", ema)
            with torch.no_grad():
                ref = nnref.forward(G, torch.as_tensor(z, dtype=torch.float64)).numpy().reshape(x.shape)
            t.close(x, ref, 1e-5, f"{name}: gan-sample {'(EMA)' if ema else '--no-ema'} equals torch's G")
        check_activations(t, tmp, name, m, meta, tensors)
        # --best-of: the 4 of 12 draws that torch's D scores highest, in draw order
        zb, za = os.path.join(tmp, name + "-zb.npy"), os.path.join(tmp, name + "-za.npy")
        run([prog("gan-sample"), "-n", "4", "--seed", "9", "--best-of", "3", "--z-out", zb, "-i", m, "-o", os.devnull])
        run([prog("gan-sample"), "-n", "12", "--seed", "9", "--z-out", za, "-i", m, "-o", os.devnull])
        G, D = torch_net(meta, tensors, "G", True), torch_net(meta, tensors, "D", False)
        with torch.no_grad():
            scores = nnref.forward(D, nnref.forward(G, torch.as_tensor(np.load(za), dtype=torch.float64)))
        scores = scores.numpy().reshape(-1)
        keep = sorted(np.argsort(-scores, kind="stable")[:4])
        t.check(f"{name}: --best-of keeps D's top 4 of 12 in draw order",
                np.array_equal(np.load(zb), np.load(za)[keep]), f"torch keeps {keep}")
    t.done()


if __name__ == "__main__":
    main()
