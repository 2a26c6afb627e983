"""make_corpus.py: writes the seed corpora tests/fuzz/corpus/<target>/ for fuzz_npy,
fuzz_npz, fuzz_safetensors, fuzz_idx and fuzz_png: a few small valid files of every dtype, version, colour
type and compression, and a few invalid ones (bad magic, lying lengths, odd headers, broken
gzip, bad CRCs), so the fuzzer starts near the interesting paths. Run with /usr/bin/python3
(needs numpy); the output is committed."""
import gzip
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
from numpy.lib import format as npformat

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "data"))
import pngpy  # noqa: E402


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy(a, ver=(1, 0)):
    b = io.BytesIO()
    npformat.write_array(b, a, version=ver)
    return b.getvalue()


def raw(dict_text, data=b"", ver=1):
    h = dict_text.encode()
    return b"\x93NUMPY" + bytes([ver, 0]) + struct.pack("<H" if ver == 1 else "<I", len(h)) + h + data


put("fuzz_npy", "f4_2x3", npy(np.arange(6, dtype="<f4").reshape(2, 3)))
put("fuzz_npy", "f8_scalar_v2", npy(np.float64(1.5) * np.ones(()), (2, 0)))
put("fuzz_npy", "u1_v3", npy(np.arange(10, dtype=np.uint8), (3, 0)))
put("fuzz_npy", "i8_empty", npy(np.zeros((0, 3), "<i8")))
put("fuzz_npy", "f4_4d", npy(np.ones((2, 1, 2, 2), "<f4")))
put("fuzz_npy", "py2_L", raw("{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }\n", b"\0" * 8))
put("fuzz_npy", "fortran", npy(np.asfortranarray(np.ones((2, 2), "<f4"))))
put("fuzz_npy", "bigendian", npy(np.ones(2, ">f4")))
put("fuzz_npy", "f2", npy(np.ones(2, np.float16)))
put("fuzz_npy", "overflow", raw("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"))
put("fuzz_npy", "negative", raw("{'descr': '|u1', 'fortran_order': False, 'shape': (-1,), }"))
put("fuzz_npy", "lying_len", b"\x93NUMPY\x01\x00\xff\xff{'descr'")
put("fuzz_npy", "structured", npy(np.zeros(1, dtype=[("a", "<f4")])))


def st(tensors, meta=None):
    h, blobs, off = {}, b"", 0
    if meta:
        h["__metadata__"] = meta
    for k, (dt, a) in tensors.items():
        b = a.tobytes()
        h[k] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs += b
    hj = json.dumps(h).encode()
    hj += b" " * (-len(hj) % 8)
    return struct.pack("<Q", len(hj)) + hj + blobs


def sth(text, data=b""):
    return struct.pack("<Q", len(text)) + text.encode() + data


put("fuzz_safetensors", "all_dtypes", st({
    "w": ("F32", np.ones((2, 3), "<f4")), "d": ("F64", np.ones(2)), "u": ("U8", np.arange(3, dtype=np.uint8)),
    "s": ("I64", np.array(5, "<i8"))}, {"format": "gan-tools-checkpoint", "spec": "linear 10\nrelu"}))
put("fuzz_safetensors", "empty_tensor", st({"e": ("F32", np.zeros((0, 2), "<f4"))}))
put("fuzz_safetensors", "meta_only", st({}, {"k": "v"}))
put("fuzz_safetensors", "empty_object", sth("{}"))
put("fuzz_safetensors", "gap", sth('{"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', b"\0" * 8))
put("fuzz_safetensors", "overlap", sth('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},'
                                       '"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"ab"))
put("fuzz_safetensors", "f16", sth('{"t":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}', b"\0" * 4))
put("fuzz_safetensors", "lying_len", b"\xff\xff\x00\x00\x00\x00\x00\x00{}")
put("fuzz_safetensors", "dup_names", sth('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                         '"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"ab"))
put("fuzz_safetensors", "escapes", sth('{"__metadata__":{"k\\u00e9":"a\\nb\\"c"},"x\\ty":'
                                       '{"dtype":"I64","shape":[],"data_offsets":[0,8]}}', b"\1" * 8))


def idx(typ, dims, data=None):
    n = int(np.prod(dims)) if dims else 0
    if data is None:
        data = bytes(i * 7 % 256 for i in range(n))
    return bytes([0, 0, typ, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data


def gz(b):
    return gzip.compress(b, mtime=0)


images = idx(8, [3, 5, 4])
labels = idx(8, [6], bytes([0, 9, 3, 3, 7, 1]))
put("fuzz_idx", "images", images)
put("fuzz_idx", "labels", labels)
put("fuzz_idx", "images_gz", gz(images))
put("fuzz_idx", "labels_two_members", gz(labels[:5]) + gz(labels[5:]))
put("fuzz_idx", "four_dims", idx(8, [2, 1, 3, 2]))
put("fuzz_idx", "empty_images", idx(8, [0, 28, 28]))
put("fuzz_idx", "lying", idx(8, [60000, 28, 28], b"\0" * 10))
put("fuzz_idx", "negative", idx(8, [0xFFFFFFFF, 2], b""))
put("fuzz_idx", "overflow", idx(8, [0x7FFFFFFF] * 3, b""))
put("fuzz_idx", "float_type", idx(0x0D, [2], b"\0" * 8))
put("fuzz_idx", "gz_truncated", gz(images)[:-5])
put("fuzz_idx", "gz_trailing", gz(labels) + b"junk")
rng = np.random.default_rng(0)
rec = np.concatenate([[3], rng.integers(0, 256, 3072)]).astype(np.uint8).tobytes()
put("fuzz_idx", "cifar_one", rec)
put("fuzz_idx", "cifar_two_gz", gz(rec + rec))

g = (np.arange(24).reshape(4, 6) * 11 % 256).astype(np.uint8)
c = (np.arange(72).reshape(4, 6, 3) * 7 % 256).astype(np.uint8)
pal = (np.arange(48).reshape(16, 3) * 5 % 256).astype(np.uint8)
put("fuzz_png", "gray", pngpy.encode(g, "gray", filters=(0, 1, 2, 3, 4)))
put("fuzz_png", "gray1", pngpy.encode(g % 2, "gray", depth=1))
put("fuzz_png", "gray4_interlaced", pngpy.encode(g % 16, "gray", depth=4, interlace=True))
put("fuzz_png", "gray16", pngpy.encode(g.astype(np.uint16) * 257 + 3, "gray", depth=16))
put("fuzz_png", "gray_alpha", pngpy.encode(np.stack([g, 255 - g], -1), "gray+alpha"))
put("fuzz_png", "rgb_interlaced", pngpy.encode(c, "rgb", filters=(4, 3), interlace=True))
put("fuzz_png", "rgba16", pngpy.encode(np.concatenate([c, c[..., :1]], -1).astype(np.uint16) * 300, "rgba", depth=16))
put("fuzz_png", "palette_trns", pngpy.encode(g % 16, "palette", depth=4, palette=pal, trns=bytes(range(16))))
put("fuzz_png", "gamma_text", pngpy.encode(g, "gray", extra=[(b"gAMA", struct.pack(">I", 45455)), (b"tEXt", b"k\0v")]))
good = pngpy.encode(c, "rgb")
put("fuzz_png", "truncated", good[:len(good) - 20])
bad = bytearray(good)
bad[20] ^= 1
put("fuzz_png", "bad_crc", bytes(bad))
put("fuzz_png", "huge_ihdr", pngpy.SIG + pngpy.chunk(b"IHDR", struct.pack(">IIBBBBB", 900000, 900000, 8, 6, 0, 0, 0))
    + pngpy.chunk(b"IDAT", zlib.compress(b"\0" * 10)) + pngpy.chunk(b"IEND", b""))


def npz(compressed=False, **arrays):
    b = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(b, **arrays)
    return b.getvalue()


put("fuzz_npz", "stats", npz(mu=np.arange(3.0), sigma=np.eye(3), n=np.int64(7)))
put("fuzz_npz", "stats_deflated", npz(True, mu=np.arange(3.0), sigma=np.eye(3)))
put("fuzz_npz", "u1_f4", npz(a=np.arange(5, dtype=np.uint8), b=np.ones((2, 2), "<f4")))
put("fuzz_npz", "empty_archive", npz())
put("fuzz_npz", "eocd_only", b"PK\x05\x06" + b"\0" * 18)
put("fuzz_npz", "zip64_locator", b"PK\x06\x07" + b"\0" * 16 + b"PK\x05\x06" + b"\0" * 4 + b"\xff" * 12 + b"\0\0")
