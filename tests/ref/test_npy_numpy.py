"""test_npy_numpy.py: our .npy and safetensors readers and writers against NumPy.

NumPy writes arrays of every supported dtype and many shapes, in versions 1.0, 2.0 and
3.0; we read them (tensor-info --json, and npy-roundtrip which loads with npy_load and
writes with npy_write), NumPy loads what we wrote, it is equal, and its bytes are exactly
what np.save writes. Arrays NumPy can save but we do not support are refused with one line.
For safetensors (no Python package here) the format is written and read by a few lines of
json + numpy that follow the spec, and checked against st-roundtrip's reader and writer.

Run: GT_BIN=path/to/bin /usr/bin/python3 tests/ref/test_npy_numpy.py
"""
import io
import json
import os
import struct
import subprocess
import sys

import numpy as np
from numpy.lib import format as npformat

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tap import BIN, Tap, scratch_dir  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def tool(name):
    """A test-only program: beside GT_BIN's build, or the default release build's."""
    for d in (os.path.join(BIN, "..", "tests", "tools"), os.path.join(REPO, "build", "release-cuda0", "tests", "tools")):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    raise SystemExit(f"{name} not found; build it with `make unit-tests`")


NPY_RT = tool("npy-roundtrip")
ST_RT = tool("st-roundtrip")
INFO = os.path.join(BIN, "tensor-info")
t = Tap()
tmp = scratch_dir("test_npy_numpy.")
rng = np.random.default_rng(2024)


def run(args, data=None):
    return subprocess.run(args, input=data, capture_output=True)


def sample(dt, shape):
    n = int(np.prod(shape, dtype=np.int64))
    if dt == "|u1":
        return rng.integers(0, 256, n).astype(np.uint8).reshape(shape)
    if dt == "<i8":
        return rng.integers(-(2**62), 2**62, n, dtype=np.int64).reshape(shape)
    return (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(dt).reshape(shape)


def saved(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


# ---- .npy: NumPy writes, we read and write back -------------------------------------------

shapes = [(), (0,), (1,), (5,), (2, 3), (0, 3), (3, 0, 2), (3, 1, 4, 5), (2, 1, 1, 1, 1, 1, 1, 3), (1000, 7)]
for dt in ("<f4", "<f8", "|u1", "<i8"):
    for shape in shapes:
        a = sample(dt, shape)
        for ver in ((1, 0), (2, 0), (3, 0)):
            src = os.path.join(tmp, "src.npy")
            with open(src, "wb") as f:
                npformat.write_array(f, a, version=ver)
            name = f"{dt} {shape} v{ver[0]}"
            for mode, args, data in (
                ("mmap", [NPY_RT, src, "-"], None),
                ("pipe", [NPY_RT, "-", "-"], open(src, "rb").read()),
                ("stream", [NPY_RT, "--stream", src, "-"], None),
            ):
                r = run(args, data)
                ok = r.returncode == 0
                if ok:
                    back = np.load(io.BytesIO(r.stdout))
                    ok = back.dtype == a.dtype and back.shape == a.shape and np.array_equal(back, a, equal_nan=True)
                    ok = ok and r.stdout == saved(a)
                t.check(f"npy {name} {mode}: read, written back, bytes equal np.save's", ok, r.stderr.decode())
            r = run([INFO, "--json", src])
            ok = r.returncode == 0
            if ok:
                d = json.loads(r.stdout)
                x = a.astype(np.float64)
                ok = d["shape"] == list(a.shape) and d["descr"] == dt and d["version"] == f"{ver[0]}.0"
                if a.size:
                    for key, ref in (("min", x.min()), ("max", x.max()), ("mean", x.mean()), ("std", x.std())):
                        tol = 1e-12 * max(1.0, abs(ref), float(np.abs(x).max()))
                        ok = ok and abs(d[key] - ref) <= tol
                else:
                    ok = ok and d["min"] is None
            t.check(f"tensor-info {name}: shape, dtype and statistics equal NumPy's", ok, r.stdout.decode() + r.stderr.decode())

# float64 -> float32 conversion on load
a = sample("<f8", (17, 3))
src = os.path.join(tmp, "d.npy")
np.save(src, a)
r = run([NPY_RT, "--f32", src, "-"])
t.check("npy_load(to_f32) converts float64 as NumPy's astype(float32)",
        r.returncode == 0 and r.stdout == saved(a.astype(np.float32)), r.stderr.decode())

# Arrays NumPy saves that we do not support: one line, naming the file, exit 1.
refused = {
    "float16": (np.ones(3, np.float16), "unsupported dtype '<f2'"),
    "bool": (np.ones(3, bool), "unsupported dtype '|b1'"),
    "int32": (np.ones(3, np.int32), "unsupported dtype '<i4'"),
    "complex": (np.ones(3, np.complex64), "unsupported dtype '<c8'"),
    "fortran": (np.asfortranarray(np.ones((2, 3), np.float32)), "Fortran order"),
    "big-endian": (np.ones(3, ">f8"), "big-endian dtype '>f8'"),
    "structured": (np.zeros(2, dtype=[("a", "<f4"), ("b", "<i8")]), "structured"),
}
for name, (a, msg) in refused.items():
    src = os.path.join(tmp, f"bad_{name}.npy")
    np.save(src, a)
    for args in ([NPY_RT, src, "-"], [INFO, src]):
        r = run(args)
        err = r.stderr.decode()
        t.check(f"refuses {name} ({os.path.basename(args[0])})",
                r.returncode == 1 and r.stdout == b"" and err.count("\n") == 1 and src in err and msg in err, err)

# A pickled object array cannot be read as data.
src = os.path.join(tmp, "object.npy")
np.save(src, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
r = run([INFO, src])
t.check("refuses an object (pickle) array", r.returncode == 1 and "unsupported dtype '|O'" in r.stderr.decode(), r.stderr.decode())

# ---- safetensors: by the spec with json + numpy ---------------------------------------------

ST_DT = {"F32": "<f4", "F64": "<f8", "U8": "|u1", "I64": "<i8"}
NP_ST = {np.dtype(v): k for k, v in ST_DT.items()}


def st_write(tensors, meta=None, pad=True, order=None):
    """A safetensors file as the spec describes it (tensors laid out in dict order)."""
    h, blobs, off = {}, b"", 0
    if meta is not None:
        h["__metadata__"] = meta
    for k, a in tensors.items():
        b = a.tobytes()
        h[k] = {"dtype": NP_ST[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs += b
    if order:  # a JSON key order different from the data order
        h = {k: h[k] for k in order}
    hj = json.dumps(h, ensure_ascii=False).encode()
    if pad:
        hj += b" " * (-len(hj) % 8)
    return struct.pack("<Q", len(hj)) + hj + blobs


def st_read(b):
    """Parse and check a file by the spec; returns (tensors, metadata, header length)."""
    (n,) = struct.unpack("<Q", b[:8])
    assert 8 + n <= len(b), "header runs past the end"
    text = b[8:8 + n].decode("utf-8")
    assert text.startswith("{")
    h = json.loads(text)
    data = b[8 + n:]
    meta = h.pop("__metadata__", {})
    assert all(isinstance(v, str) for v in meta.values())
    out, ranges = {}, []
    for k, v in h.items():
        s, e = v["data_offsets"]
        dt = np.dtype(ST_DT[v["dtype"]])
        assert e - s == int(np.prod(v["shape"], dtype=np.int64)) * dt.itemsize
        out[k] = np.frombuffer(data[s:e], dtype=dt).reshape(v["shape"])
        ranges.append((s, e))
    pos = 0
    for s, e in sorted(ranges):
        assert s == pos, "gap or overlap"
        pos = e
    assert pos == len(data), "data not fully indexed"
    return out, meta, n


tensors = {
    "G.0.weight": sample("<f4", (16, 8)),
    "labels": sample("|u1", (7,)),          # odd length: what follows is misaligned
    "G.0.bias": sample("<f4", (16,)),
    "num_batches_tracked": np.array(12345678901, dtype="<i8"),
    "ema.d": sample("<f8", (3, 2, 2)),
    "empty": np.zeros((0, 4), "<f4"),
}
meta = {"format": "gan-tools-checkpoint", "spec": "conv 64 4 2 1\nrelu", "unicode": "\u00e9\u20ac\U0001f600", "q": "\"\\"}
order = ["ema.d", "__metadata__"] + [k for k in tensors if k != "ema.d"]
for pad in (True, False):
    src = os.path.join(tmp, "py.st")
    with open(src, "wb") as f:
        f.write(st_write(tensors, meta, pad=pad, order=order))
    for mode, args, data in (("mmap", [ST_RT, src, "-"], None), ("pipe", [ST_RT, "-", "-"], open(src, "rb").read())):
        r = run(args, data)
        ok, msg = r.returncode == 0, r.stderr.decode()
        if ok:
            try:
                back, bmeta, n = st_read(r.stdout)
                ok = bmeta == meta and set(back) == set(tensors) and n % 8 == 0
                ok = ok and all(back[k].dtype == tensors[k].dtype and back[k].shape == tensors[k].shape
                                and np.array_equal(back[k], tensors[k]) for k in tensors)
                # the writer lays out largest elements first, so every tensor is aligned
                hdr = json.loads(r.stdout[8:8 + n])
                ok = ok and all(v["data_offsets"][0] % np.dtype(ST_DT[v["dtype"]]).itemsize == 0
                                for k, v in hdr.items() if k != "__metadata__")
                # and keeps the tensors in the order it read them, after the metadata
                ok = ok and list(hdr) == ["__metadata__"] + [k for k in order if k != "__metadata__"]
                again = run([ST_RT, "-", "-"], r.stdout)
                ok = ok and again.returncode == 0 and again.stdout == r.stdout
            except (AssertionError, ValueError, KeyError) as e:
                ok, msg = False, repr(e)
        t.check(f"safetensors (pad={pad}, {mode}): read, written back by the spec, equal, aligned, stable", ok, msg)
    r = run([INFO, "--json", src])
    ok = r.returncode == 0
    if ok:
        d = json.loads(r.stdout)
        ok = d["metadata"] == meta and len(d["tensors"]) == len(tensors)
        for e in d["tensors"]:
            x = tensors[e["name"]].astype(np.float64)
            ok = ok and e["shape"] == list(x.shape)
            if x.size:
                for key, ref in (("min", x.min()), ("max", x.max()), ("mean", x.mean()), ("std", x.std())):
                    ok = ok and abs(e[key] - ref) <= 1e-12 * max(1.0, float(np.abs(x).max()))
    t.check(f"tensor-info safetensors (pad={pad}): metadata and statistics equal NumPy's", ok, r.stdout.decode() + r.stderr.decode())

# Files that break the spec are refused by our reader.
bad = {
    "unindexed bytes": lambda: st_write({"a": np.ones(2, "<f4")})[:-8] + b"\0" * 4 + st_write({"a": np.ones(2, "<f4")})[-8:],
    "truncated": lambda: st_write(tensors, meta)[:-1],
    "trailing": lambda: st_write(tensors, meta) + b"\0",
}
for name, mk in bad.items():
    r = run([ST_RT, "-", "-"], mk())
    t.check(f"safetensors {name}: refused with one line", r.returncode == 1 and r.stderr.decode().count("\n") == 1, r.stderr.decode())

subprocess.run(["rm", "-rf", tmp])
t.done()
