#!/usr/bin/python3
"""quality_classifier.py: the feature network of the quality yardstick (bench/quality.sh).

A small Fashion-MNIST classifier, trained once with PyTorch on the first 50000 training images
and cached; its penultimate layer (128 ReLU units) is the feature space in which bench/quality.sh
measures the Frechet distance between a GAN's samples and the test images, as FID does with
Inception's pool3 features. The last 10000 training images are held out (TRAIN_N): real images
the classifier has not seen either, whose distance to the test images is the floor a perfect
generator would reach.

    quality_classifier.py train                 train (if not cached), print accuracy and path
    quality_classifier.py features IN.npy OUT.npy

IN.npy holds N images: float32/float64 N x 1 x 28 x 28 in [-1, 1] (what gan-sample and
idx2tensor write), or uint8 N x 28 x 28 or N x 1 x 28 x 28 (mapped to (x - 127.5) / 127.5 as
idx2tensor and gan-step do). OUT.npy gets N x 128 float32 activations.

The network: conv 3x3 16, BatchNorm, ReLU, max-pool 2; conv 3x3 32, BatchNorm, ReLU,
max-pool 2; linear 1568 -> 128, ReLU (the features); linear 128 -> 10: 1.2 M multiply-adds an
image, small enough to train in a few CPU-minutes. Trained for EPOCHS epochs of Adam (batch
64, lr 1e-3, 3e-4, 1e-4 by epoch) from torch.manual_seed(SEED), with deterministic algorithms,
a seeded shuffle and one thread (the same bits on any machine with the same torch; and on a
shared 2-core machine one torch thread is faster than two, bench/README.md).

The cache: ${GAN_QUALITY_CACHE:-${XDG_CACHE_HOME:-~/.cache}/gan-tools} holds
quality-classifier-KEY.pt (the weights) and quality-classifier-KEY.json (test accuracy,
training time), where KEY is the first 16 hex digits of the SHA-256 of this file and of the
torch version: a change to this script, or another torch, trains a new classifier. It lives
outside the repository so that every worktree and `make clean` keep it; it is written
through a temporary and renamed, so a killed run leaves no half file.
"""

import gzip
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA_DIR = os.environ.get("GAN_QUALITY_DATA", "/usr/share/datasets/fashion-mnist")
SEED = 1
EPOCHS = 3
BATCH = 64
LR = (1e-3, 3e-4, 1e-4)  # per epoch
FEATURES = 128
TRAIN_N = 50000  # the classifier's training images: the first TRAIN_N of 60000


def fail(msg):
    """Print one line naming the program and exit 1."""
    print(f"quality_classifier.py: {msg}", file=sys.stderr)
    sys.exit(1)


class Classifier(nn.Module):
    """Two conv blocks, a 128-unit feature layer, a 10-way linear head."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32 * 7 * 7, FEATURES)
        self.head = nn.Linear(FEATURES, 10)

    def features(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)  # 16 x 14 x 14
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)  # 32 x 7 x 7
        return F.relu(self.fc(x.flatten(1)))

    def forward(self, x):
        return self.head(self.features(x))


def cache_paths():
    """The weights and the report file, keyed by this script's bytes and torch's version."""
    h = hashlib.sha256()
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    h.update(torch.__version__.encode())
    key = h.hexdigest()[:16]
    base = os.environ.get("GAN_QUALITY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gan-tools")
    stem = os.path.join(base, f"quality-classifier-{key}")
    return stem + ".pt", stem + ".json"


def read_idx(name):
    """An IDX file of the dataset (gzip) as a NumPy array; images N x 28 x 28, labels N."""
    path = os.path.join(DATA_DIR, name)
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        fail(f"{path}: {e.strerror or e} (set GAN_QUALITY_DATA to the Fashion-MNIST directory)")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def to_input(u8):
    """uint8 pixels (N x 28 x 28) as the network's float input in [-1, 1], N x 1 x 28 x 28."""
    return torch.from_numpy((u8.astype(np.float32) - 127.5) / 127.5).reshape(-1, 1, 28, 28)


def accuracy(net, x, y):
    """Fraction of x that net classifies as y."""
    net.eval()
    with torch.no_grad():
        hits = sum(int((net(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum())
                   for i in range(0, len(x), 1000))
    return hits / len(x)


def train(weights, report):
    """Train the classifier from its seed, save the weights and report atomically."""
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    x = to_input(read_idx("train-images-idx3-ubyte.gz")[:TRAIN_N])
    y = torch.from_numpy(read_idx("train-labels-idx1-ubyte.gz")[:TRAIN_N].astype(np.int64))
    xt = to_input(read_idx("t10k-images-idx3-ubyte.gz"))
    yt = torch.from_numpy(read_idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
    net = Classifier()
    opt = torch.optim.Adam(net.parameters(), lr=LR[0])
    shuffle = torch.Generator().manual_seed(SEED)
    t0 = time.time()
    for epoch in range(EPOCHS):
        net.train()
        for group in opt.param_groups:
            group["lr"] = LR[epoch]
        order = torch.randperm(len(x), generator=shuffle)
        for i in range(0, len(x), BATCH):
            idx = order[i:i + BATCH]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"quality_classifier.py: epoch {epoch + 1}/{EPOCHS}: loss {loss.item():.4f}, "
              f"{time.time() - t0:.0f} s", file=sys.stderr)
    seconds = time.time() - t0
    acc = accuracy(net, xt, yt)
    os.makedirs(os.path.dirname(weights), exist_ok=True)
    tmp = f"{weights}.tmp.{os.getpid()}"
    torch.save(net.state_dict(), tmp)
    os.replace(tmp, weights)
    info = {"test_accuracy": acc, "train_seconds": round(seconds, 1), "epochs": EPOCHS,
            "train_images": TRAIN_N, "seed": SEED, "threads": torch.get_num_threads(),
            "torch": torch.__version__}
    tmp = f"{report}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    os.replace(tmp, report)


def load():
    """The cached classifier (trained first if missing) and its report."""
    weights, report = cache_paths()
    if not (os.path.exists(weights) and os.path.exists(report)):
        print(f"quality_classifier.py: training the classifier once into {weights}",
              file=sys.stderr)
        train(weights, report)
    net = Classifier()
    net.load_state_dict(torch.load(weights))
    net.eval()
    with open(report) as f:
        return net, json.load(f), weights


def as_images(path):
    """An .npy of images as a memory map with shape N x 1 x 28 x 28, and whether it is uint8."""
    try:
        a = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:
        fail(f"{path}: not a readable .npy ({e})")
    if a.dtype not in (np.uint8, np.float32, np.float64):
        fail(f"{path}: dtype {a.dtype}; want uint8, float32 or float64 images")
    if a.ndim == 3 and a.shape[1:] == (28, 28):
        a = a.reshape(a.shape[0], 1, 28, 28)
    if a.ndim != 4 or a.shape[1:] != (1, 28, 28):
        fail(f"{path}: shape {'x'.join(map(str, a.shape))}; want N x 1 x 28 x 28 or N x 28 x 28")
    return a


def features(src, dst):
    """Write the N x 128 float32 penultimate activations of the images in src to dst."""
    net, _, _ = load()
    a = as_images(src)
    out = np.empty((a.shape[0], FEATURES), np.float32)
    with torch.no_grad():
        for i in range(0, a.shape[0], 1000):
            chunk = np.asarray(a[i:i + 1000])
            if chunk.dtype == np.uint8:
                x = (chunk.astype(np.float32) - 127.5) / 127.5
            else:
                x = chunk.astype(np.float32)
            if not np.isfinite(x).all():
                fail(f"{src}: NaN or infinite pixels")
            out[i:i + len(x)] = net.features(torch.from_numpy(x)).numpy()
    tmp = f"{dst}.tmp.{os.getpid()}.npy"
    np.save(tmp, out)
    os.replace(tmp, dst)


def main(argv):
    torch.set_num_threads(1)
    if len(argv) == 2 and argv[1] == "train":
        _, info, weights = load()
        print(f"classifier {weights}: test accuracy {100 * info['test_accuracy']:.2f}% "
              f"({info['train_images']} images, {info['epochs']} epochs, "
              f"{info['train_seconds']} s to train, torch {info['torch']})")
    elif len(argv) == 4 and argv[1] == "features":
        features(argv[2], argv[3])
    else:
        print(__doc__.split("\n\n")[2], file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
