"""bench_programs.py: the programs' own figures, beside PyTorch 1.13 CPU, from
one run on this machine:
  gan-step   images/s of a whole `gan-step --steps S --batch 64` run (start-up, data mapping,
             checkpoint read and atomic write included) for every preset: mlp, dcgan and wgan-gp
             on 10000 Fashion-MNIST images (random bytes when the dataset is not installed),
             dcgan32 on 10000 random 3x32x32 images; the peer is bench/torch_peer.py's step
             (same spec, same optimizer settings, same n_critic; its best of 1 thread and 2
             passive threads). images/s counts real images D sees: steps x batch x n_critic.
  gan-sample images/s of `gan-sample -n N -o FILE` (batches of 256, EMA-free checkpoint; the
             atomic write of the N images, fsync included, counts)
             beside torch_peer.py --sample (G in eval mode under no_grad, the same batches).
The programs' figures include process start and file I/O, the peer's do not: the comparison
is, if anything, unfair to us. Load average printed before and after; compare ratios.

    /usr/bin/python3 bench/bench_programs.py       (make bench runs it; BENCH_STEPS=N to change S)"""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
BIN = os.path.join(ROOT, "bin")
PROBE = os.path.join(os.environ.get("GT_BUILD", os.path.join(ROOT, "build", "release-cuda0")),
                     "tests", "tools", "nn-probe")
STEPS = int(os.environ.get("BENCH_STEPS", "20"))
SAMPLES = int(os.environ.get("BENCH_SAMPLES", "4096"))  # mlp: 16 times as many (start-up is most of it)
PY = "/usr/bin/python3"
FASHION = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def kv(line):
    return dict(item.split("=", 1) for item in line.split())


def sh(cmd, env=None, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)
    if p.returncode != 0:
        sys.exit(f"bench_programs: {' '.join(cmd[:3])} failed: {p.stderr.strip()[-300:]}")
    return p.stdout


def timed(cmd):
    t0 = time.perf_counter()
    sh(cmd)
    return time.perf_counter() - t0


def peer(args):
    """Best img/s of the torch peer over 1 thread and 2 passive threads, with the setting."""
    best = None
    for threads, extra in ((1, {}), (2, {"OMP_WAIT_POLICY": "passive"})):
        r = kv(sh([PY, os.path.join(HERE, "torch_peer.py"), "--threads", str(threads)] + args,
                  dict(os.environ, **extra)).strip().splitlines()[-1])
        r["setting"] = "1 thread" if threads == 1 else "2 threads, passive"
        if best is None or float(r["img_s"]) > float(best["img_s"]):
            best = r
    return best


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    for p in (os.path.join(BIN, "gan-step"), PROBE):
        if not os.access(p, os.X_OK):
            sys.exit(f"bench_programs: {p} is not built; run make bench")
    print(f"# load average before: {load()} (2 cores; others may be running)", flush=True)
    tmp = tempfile.mkdtemp(prefix="gt-bench-programs.")
    gray = os.path.join(tmp, "gray.npy")
    if os.access(FASHION, os.R_OK):
        sh([os.path.join(BIN, "idx2tensor"), "--u8", "--limit", "10000", FASHION, "-o", gray])
        src = "Fashion-MNIST"
    else:
        np.save(gray, np.random.default_rng(1).integers(0, 256, (10000, 1, 28, 28), dtype=np.uint8))
        src = "random bytes"
    rgb = os.path.join(tmp, "rgb.npy")
    np.save(rgb, np.random.default_rng(2).integers(0, 256, (10000, 3, 32, 32), dtype=np.uint8))
    presets = (("mlp", gray, "1,28,28", "ns", 1), ("dcgan", gray, "1,28,28", "ns", 1),
               ("wgan-gp", gray, "1,28,28", "wgan-gp", 5), ("dcgan32", rgb, "3,32,32", "ns", 1))
    rows = []
    for arch, data, shape, loss, ncrit in presets:
        ck = os.path.join(tmp, arch + ".st")
        sh([os.path.join(BIN, "gan-init"), "--arch", arch, "--like", data, "--seed", "1", "-o", ck])
        # mlp steps are short: 10 times as many, so start-up and the checkpoint write do not dominate
        steps = max(4, STEPS // ncrit) * (10 if arch == "mlp" else 1)
        sec = timed([os.path.join(BIN, "gan-step"), "--data", data, "--steps", str(steps), "--batch", "64",
                     "-q", "-i", ck, "-o", os.path.join(tmp, "out.st")])
        ours_step = steps * 64 * ncrit / sec
        g, d = sh([PROBE, "--preset", arch, "--data", shape.replace(",", "x"), "--zdim", "100"]).strip().split("\n")
        ps = peer(["--arch", arch, "--batch", "64", "--steps", str(steps), "--warmup", "2", "--loss", loss,
                   "--shape", shape, "--specs", g, d])
        n = SAMPLES * (16 if arch == "mlp" else 1)
        sec = timed([os.path.join(BIN, "gan-sample"), "-n", str(n), "--seed", "3", "-i", ck,
                     "-o", os.path.join(tmp, "s.npy")])
        ours_sample = n / sec
        pp = peer(["--arch", arch, "--batch", "256", "--sample", str(n), "--shape", shape,
                   "--specs", g, d])
        rows.append((arch, shape, ncrit, ours_step, ps, ours_sample, pp))
        print(f"# {arch}: gan-step {ours_step:.0f} img/s vs torch {float(ps['img_s']):.0f}; "
              f"gan-sample {ours_sample:.0f} img/s vs torch {float(pp['img_s']):.0f}", flush=True)
    print()
    print(f"| preset (data) | gan-step img/s | torch step img/s (setting) | ratio | gan-sample img/s | "
          f"torch G forward img/s (setting) | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for arch, shape, ncrit, os_, ps, osm, pp in rows:
        t, tp = float(ps["img_s"]), float(pp["img_s"])
        print(f"| {arch} ({shape.replace(',', 'x')}, n_critic {ncrit}) | {os_:.0f} | {t:.0f} ({ps['setting']}) | "
              f"{os_ / t:.2f} | {osm:.0f} | {tp:.0f} ({pp['setting']}) | {osm / tp:.2f} |")
    print(f"\n# gan-step: {src} data, batch 64, {STEPS} steps (mlp: {10 * STEPS}, wgan-gp: {max(4, STEPS // 5)}) per run; "
          f"gan-sample: {SAMPLES} images (mlp {16 * SAMPLES}). load average after: {load()}")
    sh(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
