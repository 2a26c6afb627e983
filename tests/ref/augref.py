"""augref.py: DiffAugment (lib/gan/diffaug.h) in PyTorch float64, fed the random numbers our
Philox stream gives: the policies written from the authors' DiffAugment_pytorch.py
(brightness, saturation, contrast; translation by a padded gather with clamped indices;
cutout by a clamped index grid), with the draws keyed as lib/backend/augment_math.h documents
(Philox (seed, PHILOX_STREAM_AUGMENT, step, global sample * DRAWS + draw)). Used by
test_augment_torch.py (each map against aug-probe) and test_train_torch.py (training with
--augment).

    T, tx, ty = augref.transform("color,translation,cutout", H, W, augref.draws(seed, step, index0, B))
    y = T(x)   # x (B, C, H, W) float64 tensor
"""
import numpy as np
import torch
import torch.nn.functional as F

from philoxref import philox_blocks

STREAM_AUGMENT = 8
DRAWS = 8


def draws(seed, step, index0, B):
    """The 32-bit words of draws k = 0..7 of samples index0 .. index0 + B - 1: (B, 8) uint64."""
    idx = (np.arange(index0, index0 + B, dtype=np.uint64)[:, None] * np.uint64(DRAWS) +
           np.arange(DRAWS, dtype=np.uint64)[None, :])
    words = philox_blocks(seed, STREAM_AUGMENT, step, idx >> np.uint64(2))
    return np.choose((idx & np.uint64(3)).astype(np.int64), words)


def uniform(bits):
    return (bits >> np.uint64(8)).astype(np.float64) / 16777216.0


def below(bits, n):
    """A whole number in [0, n): floor(bits * n / 2^32)."""
    return ((bits * np.uint64(n)) >> np.uint64(32)).astype(np.int64)


# ---- the policies, from DiffAugment_pytorch.py, with the random numbers given ------------------

def col(v):
    return torch.tensor(v, dtype=torch.float64).view(-1, 1, 1, 1)


def brightness(x, u):
    return x + (col(u) - 0.5)


def saturation(x, u):
    m = x.mean(dim=1, keepdim=True)
    return (x - m) * (col(u) * 2) + m


def contrast(x, u):
    m = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - m) * (col(u) + 0.5) + m


def translation(x, tx, ty):
    B, _, H, W = x.shape
    tx = torch.tensor(tx).view(-1, 1, 1)
    ty = torch.tensor(ty).view(-1, 1, 1)
    gb, gx, gy = torch.meshgrid(torch.arange(B), torch.arange(H), torch.arange(W), indexing="ij")
    gx = torch.clamp(gx + tx + 1, 0, H + 1)
    gy = torch.clamp(gy + ty + 1, 0, W + 1)
    xp = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return xp.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)


def cutout(x, ox, oy):
    B, _, H, W = x.shape
    cs = int(H * 0.5 + 0.5), int(W * 0.5 + 0.5)
    ox = torch.tensor(ox).view(-1, 1, 1)
    oy = torch.tensor(oy).view(-1, 1, 1)
    gb, gx, gy = torch.meshgrid(torch.arange(B), torch.arange(cs[0]), torch.arange(cs[1]), indexing="ij")
    gx = torch.clamp(gx + ox - cs[0] // 2, min=0, max=H - 1)
    gy = torch.clamp(gy + oy - cs[1] // 2, min=0, max=W - 1)
    mask = torch.ones(B, H, W, dtype=x.dtype)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


def transform(policy, H, W, w):
    """T as a function of x for the words w (B, 8), and the integer draws (for the checks)."""
    sh, sw = int(H * 0.125 + 0.5), int(W * 0.125 + 0.5)
    ch, cw = int(H * 0.5 + 0.5), int(W * 0.5 + 0.5)
    tx, ty = below(w[:, 3], 2 * sh + 1) - sh, below(w[:, 4], 2 * sw + 1) - sw
    ox, oy = below(w[:, 5], H + 1 - ch % 2), below(w[:, 6], W + 1 - cw % 2)

    def T(x):
        for p in policy.split(","):
            if p == "color":
                x = contrast(saturation(brightness(x, uniform(w[:, 0])), uniform(w[:, 1])), uniform(w[:, 2]))
            elif p == "translation":
                x = translation(x, tx, ty)
            else:
                x = cutout(x, ox, oy)
        return x
    return T, tx, ty
