"""philoxref.py: Philox 4x32-10 in NumPy, written from lib/base/philox.h's description (the counter
is (block low word, block high word, step, stream), the key the 64-bit seed), for the
reference scripts that must reproduce our random streams bit for bit."""
import numpy as np

MASK = np.uint64(0xFFFFFFFF)


def philox_blocks(seed, stream, step, blocks):
    """The four 32-bit output words (uint64 arrays) of Philox block number `blocks` (an
    array) of stream `stream` at step `step`, for key `seed`."""
    blocks = np.asarray(blocks, dtype=np.uint64)
    c = [blocks & MASK, blocks >> np.uint64(32), np.full_like(blocks, step & 0xFFFFFFFF),
         np.full_like(blocks, stream & 0xFFFFFFFF)]
    k0, k1 = np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32)
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c[0]
        p1 = np.uint64(0xCD9E8D57) * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & MASK, (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & MASK]
        k0 = (k0 + np.uint64(0x9E3779B9)) & MASK
        k1 = (k1 + np.uint64(0xBB67AE85)) & MASK
    return c


def philox_normal(seed, stream, step, idx):
    """philox_normal of lib/base/philox.h for the element indices idx (an array of uint64):
    Box-Muller in double on the word pair (2j, 2j+1) of each element's block, element 2j the
    cosine and 2j+1 the sine, rounded to float32."""
    idx = np.asarray(idx, dtype=np.uint64).reshape(-1)
    r = np.stack(philox_blocks(seed, stream, step, idx >> np.uint64(2)))
    pair = ((idx & np.uint64(3)) >> np.uint64(1)).astype(np.int64)
    cols = np.arange(idx.size)
    u1 = (r[2 * pair, cols].astype(np.float64) + 1.0) / 4294967296.0
    u2 = r[2 * pair + 1, cols].astype(np.float64) / 4294967296.0
    rad, ang = np.sqrt(-2.0 * np.log(u1)), 6.283185307179586476925 * u2
    odd = (idx & np.uint64(1)).astype(bool)
    return np.where(odd, rad * np.sin(ang), rad * np.cos(ang)).astype(np.float32)
