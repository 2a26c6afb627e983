"""fid_peer.py: the Python side of bench/bench_fid.sh: random Inception weights for gan-fid, and
the peers' timings (torch 1.13 CPU for the Inception features, SciPy for the distance, NumPy for
the statistics), measured inside Python so that interpreter start-up and model building are not
counted. Each timing prints "WALL CPU": the best wall-clock and the best CPU (process, all
threads) seconds of REPEAT runs; the torch command prints images/s by each instead.

    fid_peer.py weights OUT.safetensors          random FID-Inception weights (tests' torch module)
    fid_peer.py torch N THREADS BATCH REPEAT      images/s of torch float32 on N 3x32x32 images
    fid_peer.py scipy A.npz B.npz REPEAT          seconds of pytorch-fid's distance (scipy sqrtm)
    fid_peer.py numpy FEATURES.npy REPEAT         seconds of np.mean + np.cov (float64)
    fid_peer.py stats N D A.npz [B.npz]           statistics files of N random features of dim D
"""
import importlib.util
import os
import sys
import time

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))
    spec.loader.exec_module(mod)
    return mod


def best(fn, repeat):
    """(best wall seconds, best CPU seconds) of REPEAT calls of fn"""
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def main():
    cmd = sys.argv[1]
    if cmd == "weights":
        ti = load("tests/ref/test_inception_torch.py", "ti")
        net = ti.FIDInception3()
        ti.randomize(net, 1)
        load("tools/fid-weights.py", "fw").write(net.state_dict(), sys.argv[2], "random")
    elif cmd == "torch":
        import torch
        n, threads, batch, repeat = (int(v) for v in sys.argv[2:6])
        torch.set_num_threads(threads)
        ti = load("tests/ref/test_inception_torch.py", "ti")
        net = ti.FIDInception3()
        ti.randomize(net, 1)
        net.eval()
        x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (n, 3, 32, 32)).astype(np.float32) / 255)

        def run():
            with torch.no_grad():
                for i in range(0, n, batch):
                    net.features(x[i:i + batch])
        run()  # warm-up
        w, c = best(run, repeat)
        print(f"{n / w:.3f} {n / c:.3f}")
    elif cmd == "scipy":
        import scipy.linalg
        a, b, repeat = np.load(sys.argv[2]), np.load(sys.argv[3]), int(sys.argv[4])

        def fd():
            mu1, s1, mu2, s2 = a["mu"], a["sigma"], b["mu"], b["sigma"]
            covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
            if not np.isfinite(covmean).all():
                off = np.eye(s1.shape[0]) * 1e-6
                covmean = scipy.linalg.sqrtm((s1 + off).dot(s2 + off))
            d = mu1 - mu2
            return d.dot(d) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real)
        print("%.3f %.3f" % best(fd, repeat))
    elif cmd == "numpy":
        x, repeat = np.load(sys.argv[2]), int(sys.argv[3])
        print("%.3f %.3f" % best(lambda: (np.mean(x, axis=0), np.cov(x, rowvar=False)), repeat))
    elif cmd == "stats":
        n, d = int(sys.argv[2]), int(sys.argv[3])
        rng = np.random.default_rng(1)
        for k, path in enumerate(sys.argv[4:]):
            x = rng.standard_normal((n, d)) @ (np.eye(d) + rng.standard_normal((d, d)) / np.sqrt(d)) + 0.1 * k
            np.savez(path, mu=x.mean(0), sigma=np.cov(x, rowvar=False), n=np.int64(n))
    else:
        sys.exit(f"fid_peer.py: unknown command {cmd}")


if __name__ == "__main__":
    main()
