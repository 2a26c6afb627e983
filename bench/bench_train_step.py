"""bench_train_step.py: our GAN training step beside PyTorch 1.13 CPU's, same architecture, same
machine, same run (the training-step speed table).

For the presets mlp and dcgan (1x28x28 data, z 100, ns loss, Adam) at batch 64 and 256, wgan-gp
(dcgan's G, a critic without normalization or dropout, the WGAN loss with the gradient penalty,
lambda 10, through a double backward, Adam lr 1e-4 betas (0, 0.9), 5 critic steps) and sngan
(its ResNets with spectral normalization in D, hinge loss, Adam betas (0, 0.9), 5 critic steps) at
batch 64, it runs
  ours:  build/<flavour>/bench/train_bench (lib/gan/trainer.h's step, all cores)
  torch: bench/torch_peer.py with 1 thread, and with 2 threads and OMP_WAIT_POLICY=passive
         (bench/README.md: torch's default 2-thread setting spins on the core OpenBLAS needs); the
         faster of the two is the peer
and prints images/s of both and their ratio, gan-step's own images/s (bin/gan-init and bin/gan-step
on random pixels, logging every step: the program users run, beside the harness), our GFLOP/s (the
convolution and linear arithmetic of our step, bench/train_bench.c) beside OpenBLAS's 2-thread sgemm ceiling measured in the same
environment and beside the machine's limit (that ceiling without OPENBLAS_CORETYPE, where OpenBLAS
picks the kernels for the CPU: the issue's yardstick), peak resident memory of both processes, and whether our steps after the first
allocated anything. Beside the ceiling it prints train_bench --cross-core: how much slower a pass
runs over data the other core just wrote than over its own (about 1 where the two cores share a
cache, up to 2 on a virtual machine whose cores do not: then every pass split unlike the one
before it pays, and the 2-thread step's CPU time exceeds the 1-thread step's). Step times are medians over the timed steps; images/s counts the real images
a step consumes (batch x critic steps). The progress lines also give the CPU time (all threads) a
timed step took, ours and the peer's: on a loaded machine wall-clock ratios drift with the
scheduling, CPU time much less.

OpenBLAS 0.3.21 picks its kernels by CPU model unless OPENBLAS_CORETYPE says which to use. The
table is measured in the environment the script runs in; when that sets OPENBLAS_CORETYPE (our
development machines set Haswell, OpenBLAS's AVX2 kernels, where OpenBLAS itself would take its
AVX-512 ones), the whole table is measured a second time without it, for ours, the peer and the
ceiling alike (both programs link the same OpenBLAS).

The machine may be shared: the load average is printed before and after; compare ratios from
one run.

    /usr/bin/python3 bench/bench_train_step.py            (make bench runs it)
    BENCH_STEPS=4 ... for a quick look;  BENCH_ENVS=inherited (or openblas) for one environment;
    BENCH_ARCHS=sngan (or a comma-separated subset of mlp,dcgan,wgan-gp,sngan) for some presets only"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
BUILD = os.environ.get("GT_BUILD", os.path.join(ROOT, "build", "release-cuda0"))
STEPS = int(os.environ.get("BENCH_STEPS", "10"))
PY = "/usr/bin/python3"
BIN = os.environ.get("GT_BIN", os.path.join(ROOT, "bin"))


def kv(line):
    return dict(item.split("=", 1) for item in line.split())


def environment(env):
    """os.environ changed by env (a value None removes the variable)."""
    e = dict(os.environ)
    for k, v in env.items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    return e


def run(cmd, env):
    """Run cmd with the environment changed by env (a value None removes the variable)."""
    e = environment(env)
    p = subprocess.run(cmd, capture_output=True, text=True, env=e)
    if p.returncode != 0:
        sys.exit(f"bench_train_step: {' '.join(cmd[:2])} failed: {p.stderr.strip()}")
    return kv(p.stdout.strip().splitlines()[-1])


def gan_step_rate(arch, batch, steps, env, tmp):
    """images/s of the program users run: gan-init --arch ARCH, then gan-step for 2 warm-up and
    STEPS timed steps on random pixels, logging every step; the median of the timed steps' img_per_s
    (real images a second, as the harness counts them)."""
    import numpy as np
    data = os.path.join(tmp, "pixels.npy")
    if not os.path.exists(data):
        np.save(data, np.random.default_rng(1).integers(0, 256, (4096, 1, 28, 28), dtype=np.uint8))
    m0, m1, log = (os.path.join(tmp, f) for f in ("m0.st", "m1.st", "log.tsv"))
    for f in (m1, log):
        if os.path.exists(f):
            os.remove(f)
    e = environment(env)
    for cmd in ([os.path.join(BIN, "gan-init"), "--arch", arch, "--batch", str(batch), "--seed", "1", "--like", data,
                 "-o", m0],
                [os.path.join(BIN, "gan-step"), "-q", "--data", data, "--steps", str(steps + 2), "--log", log,
                 "--log-every", "1", "-i", m0, "-o", m1]):
        p = subprocess.run(cmd, capture_output=True, text=True, env=e)
        if p.returncode != 0:
            sys.exit(f"bench_train_step: {os.path.basename(cmd[0])} failed: {p.stderr.strip()}")
    with open(log) as f:
        rows = [line.split("\t") for line in f.read().splitlines()]
    col = rows[0].index("img_per_s")
    rates = sorted(float(r[col]) for r in rows[1 + 2:])
    return rates[len(rates) // 2]


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def table(tb, probe, env, label, tmp, machine):
    """machine: train_bench --sgemm-ceiling's figures without OPENBLAS_CORETYPE, already measured
    (None when the environment does not set it: then this table's own ceiling is the machine's)"""
    ceil = machine if machine and env.get("OPENBLAS_CORETYPE", "") is None else run([tb, "--sgemm-ceiling"], env)
    s1, s2 = float(ceil["sgemm1"]), float(ceil["sgemm2"])
    limit = max(float(machine["sgemm2"]) if machine else 0.0, s2)
    print(f"## {label}: OpenBLAS core {ceil['core']}, sgemm ceiling {s1:.0f} GFLOP/s on 1 thread, {s2:.0f} on 2",
          flush=True)
    cross = run([tb, "--cross-core"], env)
    print(f"# the two cores' caches: an Adam step over 1.5M parameters reading the gradients the other core wrote "
          f"takes {cross['ratio']}x the time of reading its own ({cross['other_ms']} and {cross['own_ms']} ms; "
          "near 1 where the cores share a cache)", flush=True)
    rows = []
    want = os.environ.get("BENCH_ARCHS")
    for arch, batches, loss in (("mlp", (64, 256), "ns"), ("dcgan", (64, 256), "ns"), ("wgan-gp", (64,), "wgan-gp"),
                                ("sngan", (64,), "hinge")):
        if want and arch not in want.split(","):
            continue
        g, d = subprocess.run([probe, "--preset", arch, "--data", "1x28x28", "--zdim", "100"], capture_output=True,
                              text=True, check=True).stdout.strip().split("\n")
        for batch in batches:
            # dcgan at 256, wgan-gp and sngan (5 critic updates a step) take longer per step
            steps = max(3, STEPS // 2) if (arch == "dcgan" and batch == 256) or arch in ("wgan-gp", "sngan") else STEPS
            ours = run([tb, "--arch", arch, "--batch", str(batch), "--steps", str(steps), "--warmup", "2"], env)
            ours["gan_step_img_s"] = gan_step_rate(arch, batch, steps, env, tmp)
            peers = []
            for threads, extra in ((1, {}), (2, {"OMP_WAIT_POLICY": "passive"})):
                peers.append(run([PY, os.path.join(HERE, "torch_peer.py"), "--arch", arch, "--batch", str(batch),
                                  "--threads", str(threads), "--steps", str(steps), "--warmup", "2",
                                  "--loss", loss, "--specs", g, d], dict(env, **extra)))
            best = max(peers, key=lambda r: float(r["img_s"]))
            rows.append((arch, batch, ours, peers, best))
            o, t = float(ours["img_s"]), float(best["img_s"])
            print(f"# {arch} B={batch}: ours {o:.0f} img/s (gan-step {ours['gan_step_img_s']:.0f}), torch {t:.0f} img/s "
                  f"(1 thread {float(peers[0]['img_s']):.0f}, 2 passive {float(peers[1]['img_s']):.0f}), "
                  f"ratio {o / t:.2f}; CPU ms a step: ours {float(ours['cpu_ms']):.0f}, "
                  f"torch {float(best['cpu_ms']):.0f}", flush=True)
    print()
    print("| config | ours img/s | gan-step img/s | torch img/s (setting) | ratio | ours GFLOP/s | "
          "2-thread sgemm ceiling | of ceiling | of the machine's limit | ours peak RSS | torch peak RSS | "
          "allocations after step 1 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for arch, batch, ours, peers, best in rows:
        o, t, gf = float(ours["img_s"]), float(best["img_s"]), float(ours["gflops"])
        setting = "1 thread" if best is peers[0] else "2 threads, passive"
        print(f"| {arch} B={batch} | {o:.0f} | {ours['gan_step_img_s']:.0f} | {t:.0f} ({setting}) | {o / t:.2f} | {gf:.1f} | {s2:.0f} | "
              f"{100 * gf / s2:.0f}% | {100 * gf / limit:.0f}% | {float(ours['peak_rss_mb']):.0f} MB | "
              f"{float(best['peak_rss_mb']):.0f} MB | "
              f"{ours['allocs_after_first']} |")
    print(flush=True)


def main():
    tb = os.path.join(BUILD, "bench", "train_bench")
    probe = os.path.join(BUILD, "tests", "tools", "nn-probe")
    for p in (tb, probe):
        if not os.access(p, os.X_OK):
            sys.exit(f"bench_train_step: {p} is not built; run make bench")
    print(f"# load average before: {load()} (2 cores; others may be running)")
    core = os.environ.get("OPENBLAS_CORETYPE")
    envs = [("inherited", "this environment" + (f" (OPENBLAS_CORETYPE={core})" if core else ""), {})]
    if core:
        envs.append(("openblas", "OPENBLAS_CORETYPE unset (OpenBLAS picks its kernels) for both",
                     {"OPENBLAS_CORETYPE": None}))
    want = os.environ.get("BENCH_ENVS")
    # the machine's limit: OpenBLAS's 2-thread sgemm with the kernels it picks for this CPU (with
    # OPENBLAS_CORETYPE=Haswell on an AVX-512 machine the environment's ceiling is AVX2's, which
    # our AVX-512 kernels pass)
    machine = run([tb, "--sgemm-ceiling"], {"OPENBLAS_CORETYPE": None}) if core else None
    if machine:
        print(f"# the machine's limit: {float(machine['sgemm2']):.0f} GFLOP/s (OpenBLAS's own 2-thread sgemm, "
              "OPENBLAS_CORETYPE unset; the tables' last percentage is of the larger of this and their own "
              "ceiling)", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_train_step.") as tmp:
        for key, label, env in envs:
            if want and key not in want.split(","):
                continue
            table(tb, probe, env, label, tmp, machine)
    print(f"# load average after: {load()}")


if __name__ == "__main__":
    main()
