"""torch_peer.py: the PyTorch 1.13 CPU peer of bench/train_bench.c: the same GAN training step
(lib/gan/trainer.h: per critic update D on a real batch, G(z), D on G(z) (and the penalty), D's Adam
step; then G through D and G's Adam step), on the same architecture, built from our preset's spec
text (printed by nn-probe --preset), in float32; the losses and the gradient penalty are
tests/ref/ganref.py's, which the training-step parity test (test_train_torch.py) uses too. `--loss ns` (default): the non-saturating loss, Adam lr 2e-4 betas 0.5/0.999, one D step
per G step. `--loss wgan-gp`: gan-init's wgan-gp settings: 5 critic steps per G step, each with
the gradient penalty (lambda 10) at random interpolates eps real + (1 - eps) fake through a
double backward (autograd.grad with create_graph), Adam lr 1e-4 betas 0/0.9; a critic update runs
D forward and backward on the real, the fake and the interpolated batch, as ours. `--loss hinge`: gan-init's sngan settings: the hinge
loss (D: relu(1 - D(real)) + relu(1 + D(fake)), G: -D(fake)), Adam lr 2e-4 betas 0/0.9, 5 critic
steps per G step (spectral normalization, as the spec's `sn` flags ask, is torch's
nn.utils.spectral_norm, which nnref applies). `--shape C,H,W` is the data's shape (default 1,28,28);
a step is one G step, so it consumes n_critic real batches. `--sample N`: instead of training,
times what gan-sample does: N images from G in evaluation mode without autograd, in batches of
--batch, latents drawn per batch (prints img_s for the whole run after one warm-up batch).

    OMP_WAIT_POLICY=passive /usr/bin/python3 bench/torch_peer.py --arch dcgan --batch 64 --threads 2 \
        --steps 10 --warmup 2 --specs G_SPEC D_SPEC

prints one line: arch=.. batch=.. threads=.. step_ms=<median> img_s=.. peak_rss_mb=..
cpu_ms=<CPU time of all threads per timed step, mean> (as train_bench's: on a loaded machine the
CPU time a step costs says more than its wall time)
Thread settings must be given before torch starts (OMP_WAIT_POLICY in the environment), so the
caller runs one process per setting."""
import argparse
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
import nnref  # noqa: E402  (the spec language, parsed independently of lib/nn/spec.c)
import ganref  # noqa: E402  (the losses and the gradient penalty, as test_train_torch.py builds them)


def build(spec, in_shape):
    """nn.Sequential in float32 for the spec; real nn.Dropout (not nnref's mask-taking one), and
    nn.Flatten after sumpool (whose N x C x 1 x 1 nnref.forward flattens for the linear after it)."""
    seq, _ = nnref.build(spec, in_shape)
    mods = []
    for m in seq:
        mods.append(nn.Dropout(m.p) if isinstance(m, nnref.MaskDropout) else m)
        if isinstance(m, nnref.SumPool):
            mods.append(nn.Flatten())
    return nn.Sequential(*mods).float().train()


def dcgan_init(seq):
    """DCGAN's N(0, 0.02) weights, zero biases, BatchNorm weight N(1, 0.02) (values do not
    change the timing; they keep the activations in a realistic range)."""
    with torch.no_grad():
        for m in seq:
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                m.weight.normal_(0, 0.02)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm1d) or isinstance(m, nn.BatchNorm2d):
                m.weight.normal_(1, 0.02)
                m.bias.zero_()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--zdim", type=int, default=100)
    ap.add_argument("--specs", nargs=2, required=True, metavar=("G_SPEC", "D_SPEC"))
    ap.add_argument("--loss", choices=("ns", "wgan-gp", "hinge"), default="ns")
    ap.add_argument("--shape", default="1,28,28")
    ap.add_argument("--sample", type=int, default=0)
    a = ap.parse_args()
    shape = tuple(int(v) for v in a.shape.split(","))
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    B, zd = a.batch, a.zdim
    G, D = build(a.specs[0], (zd, 1, 1)), build(a.specs[1], shape)
    if a.arch not in ("mlp", "sngan"):  # those two start from torch's defaults, as our presets do
        dcgan_init(G)
        dcgan_init(D)
    if a.sample:
        G.eval()
        with torch.no_grad():
            G(torch.randn(B, zd))
            t0 = time.perf_counter()
            for done in range(0, a.sample, B):
                G(torch.randn(min(B, a.sample - done), zd))
            sec = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(f"arch={a.arch} batch={B} threads={a.threads} n={a.sample} sec={sec:.3f} "
              f"img_s={a.sample / sec:.1f} peak_rss_mb={rss:.1f}")
        return
    lr, betas, n_critic = {"wgan-gp": (1e-4, (0.0, 0.9), 5), "hinge": (2e-4, (0.0, 0.9), 5)}.get(
        a.loss, (2e-4, (0.5, 0.999), 1))
    l_real, l_fake, l_g = ganref.losses(a.loss, 0.0)
    oG = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    oD = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    n = max(4 * B * n_critic, 4096)
    data = (torch.randint(0, 256, (n,) + shape, dtype=torch.uint8).float() - 127.5) / 127.5
    times, cpu0 = [], 0.0
    pos, perm = n, None
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            cpu0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(n_critic):
            if pos + B > n:
                perm, pos = torch.randperm(n), 0
            real = data[perm[pos:pos + B]]
            pos += B
            oD.zero_grad()
            l_real(D(real)).backward()
            fake = G(torch.randn(B, zd))
            loss = l_fake(D(fake.detach()))
            if a.loss == "wgan-gp":
                eps = torch.rand(B, 1, 1, 1)
                mix = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
                loss = loss + ganref.gradient_penalty(D, mix, 10.0)
            loss.backward()
            oD.step()
        oG.zero_grad()
        l_g(D(fake)).backward()
        oG.step()
        if i >= a.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    med = statistics.median(times)
    cpu_ms = (time.process_time() - cpu0) * 1e3 / a.steps
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"arch={a.arch} batch={B} threads={a.threads} step_ms={med:.2f} img_s={B * n_critic / med * 1e3:.1f} "
          f"peak_rss_mb={rss:.1f} cpu_ms={cpu_ms:.1f} omp_wait_policy={os.environ.get('OMP_WAIT_POLICY', 'default')}")


if __name__ == "__main__":
    main()
