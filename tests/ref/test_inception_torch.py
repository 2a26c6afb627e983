"""test_inception_torch.py: gan-fid's Inception features equal pytorch-fid's network in torch.

The torch module is built here as pytorch-fid builds it (its published structure: torchvision's
Inception3 with num_classes=1008 and no aux logits, Mixed_5b-d replaced by FIDInceptionA,
Mixed_6b-e by FIDInceptionC, Mixed_7b by FIDInceptionE_1 and Mixed_7c by FIDInceptionE_2;
BasicConv2d = conv without bias, BatchNorm2d(eps=0.001), ReLU; the feature extractor resizes to
299 x 299 bilinearly with align_corners=False, scales [0, 1] to [-1, 1] and keeps block 3's
pool3 output), written from that description without torchvision. Its state_dict, with random
weights and BatchNorm statistics, is saved as a .pth with torchvision's names, converted by
tools/fid-weights.py, and read by gan-fid --weights ... --save-features. The 2048-d features must
equal torch's (float64) to 1e-4 relative on random images of several sizes, gray and RGB,
uint8 and float. Also: the avgpool nopad layer against torch, FID from the features, and
one-line errors for weights of the wrong shape, missing tensors and wrong dtypes.
"""
import os
import subprocess
import sys

import numpy as np
import scipy.linalg
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nnref  # noqa: E402
from tap import BIN, Tap, scratch_dir  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GAN_FID = os.path.join(BIN, "gan-fid")
CONVERT = os.path.join(ROOT, "tools", "fid-weights.py")


# ---- pytorch-fid's network, from its published structure --------------------------------------

class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class FIDInceptionA(nn.Module):
    def __init__(self, cin, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class FIDInceptionC(nn.Module):
    def __init__(self, cin, c7):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for k in range(1, 6):
            bd = getattr(self, f"branch7x7dbl_{k}")(bd)
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for k in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{k}")(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class FIDInceptionE(nn.Module):
    """FIDInceptionE_1 (pool 'avg': average pool without the padding) or _2 (pool 'max')."""

    def __init__(self, cin, pool):
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.pool == "avg":
            bp = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        else:
            bp = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat([b1, b3, bd, self.branch_pool(bp)], 1)


class FIDInception3(nn.Module):
    """The attributes (and so the state_dict names) of torchvision's Inception3(num_classes=1008,
    aux_logits=False) with pytorch-fid's replacements."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, 32)
        self.Mixed_5c = FIDInceptionA(256, 64)
        self.Mixed_5d = FIDInceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, 128)
        self.Mixed_6c = FIDInceptionC(768, 160)
        self.Mixed_6d = FIDInceptionC(768, 160)
        self.Mixed_6e = FIDInceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, "avg")
        self.Mixed_7c = FIDInceptionE(2048, "max")
        self.fc = nn.Linear(2048, 1008)

    def features(self, x01):
        """pytorch-fid's InceptionV3(output_blocks=[3]) on images in [0, 1]: (B, 2048)."""
        x = F.interpolate(x01, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for m in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{m}")(x)
        return F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)


def randomize(net, seed):
    """Random weights that keep activations of order 1 through 94 layers: He-scaled convolutions,
    BatchNorm affine near 1 / 0 and running statistics near 0 / 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.7 + 0.6 * torch.rand(c, generator=g))
                m.bias.copy_(0.1 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
                m.num_batches_tracked.fill_(1000)
            elif isinstance(m, nn.Linear):
                m.weight.copy_(0.01 * torch.randn(m.weight.shape, generator=g))
                m.bias.zero_()


def inception_score_torch(feats, w, splits, bias=None):
    """torch-fidelity's isc_features_to_metric (without its shuffle) on logits = feats W^T (+ bias):
    the mean and the population standard deviation of exp(mean KL(p(y|x) || p(y))) over splits."""
    logits = feats @ w.T if bias is None else feats @ w.T + bias
    n = logits.shape[0]
    p, log_p = logits.softmax(dim=1), logits.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        pc, lc = p[i * n // splits:(i + 1) * n // splits], log_p[i * n // splits:(i + 1) * n // splits]
        q = pc.mean(dim=0, keepdim=True)
        scores.append((pc * (lc - q.log())).sum(dim=1).mean().exp().item())
    return float(np.mean(scores)), float(np.std(scores))


def convert(pth, out):
    return subprocess.run(["/usr/bin/python3", CONVERT, pth, out], capture_output=True, text=True)


def converter():
    """tools/fid-weights.py as a module (its write() converts a state_dict in this process)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("fid_weights", CONVERT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def features(weights, images, tmp, extra=(), program=None):
    out = os.path.join(tmp, "feat.npy")
    if os.path.exists(out):
        os.unlink(out)
    r = subprocess.run([program or GAN_FID, "-q", "--threads", "2", "--weights", weights, *extra, "--save-features", out,
                        images], capture_output=True, text=True)
    return (np.load(out) if r.returncode == 0 else None), r


def main():
    t = Tap()
    tmp = scratch_dir("gt-inception-")
    torch.set_num_threads(2)

    # the pooling layer the FID blocks need, against torch (forward and backward)
    for spec in ("avgpool k3 s1 p1 nopad", "avgpool k3 s2 p1 nopad"):
        nnref.compare(t, spec, nnref.run(spec, (3, 9, 8), batch=2, seed=4))

    net = FIDInception3()
    randomize(net, 1)
    net.eval()
    pth, st = os.path.join(tmp, "pt_inception-random.pth"), os.path.join(tmp, "inception.safetensors")
    torch.save(net.state_dict(), pth)
    r = convert(pth, st)
    if not t.check("tools/fid-weights.py converts a pytorch-fid state_dict", r.returncode == 0, r.stderr):
        t.done()
    ref_net = net.double()

    rng = np.random.default_rng(2)
    # a few images per size (torch float64 costs about 4 s an image on these machines); the
    # gray case crosses a batch boundary (--batch 2)
    cases = [
        ("RGB 299x299 float", rng.uniform(-1, 1, (2, 3, 299, 299)).astype(np.float32)),
        ("gray 28x28 uint8", rng.integers(0, 256, (4, 1, 28, 28), dtype=np.uint8)),
        ("RGB 32x48 uint8", rng.integers(0, 256, (2, 3, 32, 48), dtype=np.uint8)),
        ("gray 331x310 float", rng.uniform(-1, 1, (1, 1, 331, 310)).astype(np.float32)),
    ]
    for name, imgs in cases:
        p = os.path.join(tmp, "imgs.npy")
        np.save(p, imgs)
        ours, r = features(st, p, tmp, ("--batch", "2"))
        if not t.check(f"{name}: gan-fid --save-features", ours is not None, r.stderr):
            continue
        x01 = imgs.astype(np.float64) / 255 if imgs.dtype == np.uint8 else (imgs.astype(np.float64) + 1) / 2
        x01 = torch.from_numpy(x01)
        if x01.shape[1] == 1:
            x01 = x01.repeat(1, 3, 1, 1)
        with torch.no_grad():
            ref = ref_net.features(x01).numpy()
        t.check(f"{name}: features are 2048-d and not degenerate (std {ref.std():.3g})",
                ours.shape == (len(imgs), 2048) and ref.std() > 1e-3 and (ref > 0).mean() > 0.2, str(ours.shape))
        t.close(ours, ref, 1e-4, f"{name}: features equal torch float64 to 1e-4")
        if name.startswith("gray 28x28"):
            is_case = (p + ".is.npy", ours, ref)
            np.save(is_case[0], imgs)

    # --resize clean: clean-fid's PIL bicubic (mode 'F', per channel, clipped) to 299 x 299, then the
    # network (its bilinear resize of 299 x 299 is the identity): torch on PIL-resized images
    try:
        from PIL import Image
        u8 = rng.integers(0, 256, (1, 3, 30, 37), dtype=np.uint8)
        p = os.path.join(tmp, "imgs.npy")
        np.save(p, u8)
        ours, r = features(st, p, tmp, ("--resize", "clean"))
        if t.check("--resize clean --save-features", ours is not None, r.stderr):
            v = (u8.astype(np.float32) / np.float32(255)) * np.float32(2) - np.float32(1)
            big = np.stack([np.stack([np.clip(np.asarray(Image.fromarray(v[0, k], mode="F").resize((299, 299),
                                                                                                 Image.BICUBIC)), -1, 1)
                                      for k in range(3)])])
            with torch.no_grad():
                ref = ref_net.features(torch.from_numpy((big.astype(np.float64) + 1) / 2)).numpy()
            t.close(ours, ref, 1e-4, "--resize clean: features equal torch float64 on PIL's resize to 1e-4")
            bil, _ = features(st, p, tmp)
            t.check("--resize clean differs from the default bilinear resize",
                    bil is not None and np.abs(bil - ours).max() > 1e-3 * np.abs(ours).max(), "")
    except ImportError as e:
        t.check("PIL for the --resize clean reference (apt-get install python3-pil)", False, str(e))

    # the Inception Score: the 1008 logits are pool3 times fc.weight, without the bias. Random
    # images give nearly the same features (their common part is 50 times their differences), so
    # random final weights would give every image the same class and IS = 1: the weights here are
    # made orthogonal to the images' mean features, so that the logits differ between images by a
    # few units; and a bias that the score must ignore
    p, ours_f, ref_f = is_case
    g = torch.Generator().manual_seed(9)
    mf = torch.from_numpy(ref_f.mean(0))
    w = 2.0 * torch.randn(1008, 2048, generator=g, dtype=torch.float64)
    w = (w - (w @ mf)[:, None] * mf[None, :] / (mf @ mf)).float().double()
    fw = converter()
    sd = {k: v.float() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    sd["fc.weight"], sd["fc.bias"] = w.float(), 0.5 * torch.randn(1008, generator=g)
    st_is = os.path.join(tmp, "inception-is.safetensors")
    fw.write(sd, st_is, "is.pth")
    r = subprocess.run([GAN_FID, "-q", "--threads", "2", "--batch", "2", "--weights", st_is, "--is", "--is-splits", "2",
                        p], capture_output=True, text=True)
    line = r.stdout.split()
    if t.check("gan-fid --is of one set prints 'IS MEAN std STD'",
               r.returncode == 0 and len(line) == 4 and line[0] == "IS" and line[2] == "std", r.stderr + r.stdout):
        mean, std = float(line[1]), float(line[3])
        m0, s0 = inception_score_torch(torch.from_numpy(ours_f.astype(np.float64)), w, 2)
        t.check(f"IS {mean:.12g} std {std:.6g} equals torch-fidelity's formula on our features ({m0:.12g}, {s0:.6g})",
                abs(mean - m0) <= 1e-12 * m0 and abs(std - s0) <= 1e-9 * m0, "")
        m1, s1 = inception_score_torch(torch.from_numpy(ref_f), w, 2)
        t.check(f"IS equals torch float64 end to end to 1e-5 ({mean:.10g} vs {m1:.10g}, std {std:.6g} vs {s1:.6g})",
                abs(mean - m1) <= 1e-5 * m1 and abs(std - s1) <= 1e-5 * m1, "")
        mb, _ = inception_score_torch(torch.from_numpy(ref_f), w, 2, bias=sd["fc.bias"].double())
        t.check(f"the bias would change it ({mb:.8g}): the test sees the difference", abs(mb - m1) > 1e-3 * m1, "")
        m10, _ = inception_score_torch(torch.from_numpy(ref_f), w, 1)
        t.check("the splits matter (1 split differs)", abs(m10 - m1) > 1e-6 * m1, "")
        r1 = subprocess.run([GAN_FID, "-q", "--threads", "1", "--batch", "2", "--weights", st_is, "--is", "--is-splits",
                             "2", p], capture_output=True, text=True)
        t.check("--threads 1 prints the same IS line as --threads 2, bit for bit", r1.stdout == r.stdout,
                r1.stdout + r.stdout)

    # the same network on the CUDA backend, in its host emulation (make CUDA=emu, which make check
    # builds): the features of the CPU to 1e-5 (tests/unit/tolerances.h, TOL_OP; the emulation
    # differs from the CPU only in the GEMM's blocks)
    emu = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "emu-cudaemu", "bin", "gan-fid")
    if os.path.exists(emu):
        imgs = rng.integers(0, 256, (3, 3, 45, 37), dtype=np.uint8)
        p = os.path.join(tmp, "imgs.npy")
        np.save(p, imgs)
        cpu, r1 = features(st, p, tmp, ("--batch", "2", "--device", "cpu"))
        cuda, r2 = features(st, p, tmp, ("--batch", "2", "--device", "cuda"), program=emu)
        if t.check("gan-fid --device cuda (emulated) extracts features", cpu is not None and cuda is not None,
                   r1.stderr + r2.stderr):
            t.close(cuda, cpu, 1e-5, "the CUDA backend's Inception features equal the CPU's to 1e-5")
    else:
        print("# no build/emu-cudaemu: the CUDA backend's Inception is not compared here")

    # FID from the features
    a = rng.integers(0, 256, (3, 3, 40, 40), dtype=np.uint8)
    b = rng.integers(0, 256, (3, 1, 40, 40), dtype=np.uint8)
    pa, pb = os.path.join(tmp, "a.npy"), os.path.join(tmp, "b.npy")
    np.save(pa, a)
    np.save(pb, b)
    fa, _ = features(st, pa, tmp)
    fb, _ = features(st, pb, tmp)
    r = subprocess.run([GAN_FID, "--threads", "2", pa, pb], capture_output=True, text=True,
                       env=dict(os.environ, GAN_FID_WEIGHTS=st))
    # statistics remember the resize: bilinear statistics are not compared with clean features
    sa = os.path.join(tmp, "a.npz")
    rs = subprocess.run([GAN_FID, "-q", "--weights", st, "--save-stats", sa, pa], capture_output=True, text=True)
    rc = subprocess.run([GAN_FID, "-q", "--weights", st, "--resize", "clean", "--kid", "--kid-subset-size", "2", pa, pb],
                        capture_output=True, text=True)
    rm = subprocess.run([GAN_FID, "-q", "--weights", st, "--resize", "clean", sa, pb], capture_output=True, text=True)
    t.check("--resize clean prints FID(clean) and KID(clean); statistics of the other resize are refused",
            rs.returncode == 0 and rc.returncode == 0 and rc.stdout.startswith("FID(clean) ")
            and "\nKID(clean) " in rc.stdout and rm.returncode == 1
            and "holds inception features but" in rm.stderr and "inception-clean" in rm.stderr,
            rc.stdout + rc.stderr + rm.stderr)
    if t.check("GAN_FID_WEIGHTS is used: FID printed; N < 2048 warns",
               r.returncode == 0 and r.stdout.startswith("FID ") and "3 samples for 2048 features" in r.stderr,
               r.stderr + r.stdout) and fa is not None and fb is not None:
        x, y = fa.astype(np.float64), fb.astype(np.float64)
        s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
        c, _ = scipy.linalg.sqrtm(s1 @ s2, disp=False)
        ref = ((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * c.real)
        ours = float(r.stdout.split()[1])
        t.check(f"FID {ours:.8g} equals pytorch-fid's formula on the features {ref:.8g}",
                abs(ours - ref) <= 1e-6 * abs(ref), "")

    # bad weights: one line each, exit 1
    fw = converter()
    good = {k: v.float() if v.is_floating_point() else v for k, v in net.state_dict().items()}

    def bad(name, mutate, expect, extra=()):
        sd = dict(good)
        mutate(sd)
        s = os.path.join(tmp, "bad.safetensors")
        fw.write(sd, s, "bad.pth")
        r = subprocess.run([GAN_FID, "-q", "--weights", s, *extra, pa, pb], capture_output=True, text=True)
        lines = r.stderr.strip().splitlines()
        t.check(f"bad weights ({name}): one-line error", r.returncode == 1 and len(lines) == 1 and expect in r.stderr,
                f"exit {r.returncode}: {r.stderr!r}")

    def nan_at(sd, key, i):
        sd[key] = sd[key].clone()
        sd[key].view(-1)[i] = float("nan")

    bad("a weight of the wrong shape",
        lambda sd: sd.__setitem__("Mixed_6b.branch7x7_2.conv.weight", torch.zeros(128, 128, 7, 1)),
        "Mixed_6b.branch7x7_2.conv.weight is 128x128x7x1, expected 128x128x1x7")
    bad("BatchNorm of the wrong size", lambda sd: sd.__setitem__("Conv2d_4a_3x3.bn.running_var", torch.ones(191)),
        "Conv2d_4a_3x3.bn.running_var is 191, expected 192")
    bad("a missing tensor", lambda sd: sd.pop("Mixed_7c.branch_pool.bn.bias"),
        "no tensor 'Mixed_7c.branch_pool.bn.bias'")
    bad("NaN in a weight", lambda sd: nan_at(sd, "Mixed_5d.branch1x1.conv.weight", 5),
        "Mixed_5d.branch1x1.conv.weight holds NaN")
    bad("no final layer, with --is", lambda sd: sd.pop("fc.weight"), "no tensor 'fc.weight'", ("--is",))
    bad("a final layer of the wrong shape, with --is", lambda sd: sd.__setitem__("fc.weight", torch.zeros(1008, 2047)),
        "fc.weight is 1008x2047, expected CLASSES x 2048", ("--is",))
    r = subprocess.run([GAN_FID, "-q", "--weights", st, "--is", "--features", "pixels", pa], capture_output=True,
                       text=True)
    t.check("--is with pixel features is a usage error", r.returncode == 2 and len(r.stderr.splitlines()) == 1,
            r.stderr)
    r = convert(os.path.join(tmp, "nothere.pth"), os.path.join(tmp, "x.safetensors"))
    t.check("converter: a missing input is a one-line error", r.returncode == 1 and len(r.stderr.splitlines()) == 1,
            r.stderr)
    torch.save({"weight": torch.ones(3)}, os.path.join(tmp, "other.pth"))
    r = convert(os.path.join(tmp, "other.pth"), os.path.join(tmp, "x.safetensors"))
    t.check("converter: another state_dict is refused", r.returncode == 1 and "not pytorch-fid's" in r.stderr, r.stderr)
    t.done()


if __name__ == "__main__":
    main()
