"""test_npz_numpy.py: formats/npz.c against NumPy and Python's zipfile.

What NumPy writes is read: numpy.savez and numpy.savez_compressed archives of every dtype we
support (scalars, empty arrays, a 700 x 700 float64 matrix), archives written to an unseekable
stream (data descriptors), and archives with ZIP64 end records and ZIP64 sizes in the central
directory (made here by hand, byte by byte from the ZIP specification, and checked with zipfile
first). What we write loads in NumPy, stored and deflated, and passes zipfile's CRC check.
Refusals: every truncation of an archive, flipped bytes, encryption, bzip2, duplicate names,
members that are not .npy, a .npy given as .npz, each a one-line error (exit 1), never a crash.
The reader/writer is driven through tests/tools/npz-roundtrip.
"""
import io
import os
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nnref import tool_path  # noqa: E402
from tap import Tap, scratch_dir  # noqa: E402

RT = tool_path("npz-roundtrip")


def roundtrip(src, dst, compress=False):
    args = [RT] + (["--compress"] if compress else []) + [src, dst]
    return subprocess.run(args, capture_output=True, text=True)


def same(a, b):
    """np.load results a and b hold the same arrays (names, dtypes, shapes, bytes)."""
    if sorted(a.files) != sorted(b.files):
        return False, f"members {sorted(a.files)} vs {sorted(b.files)}"
    for k in a.files:
        x, y = a[k], b[k]
        if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
            return False, f"{k}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}"
    return True, ""


class Unseekable(io.RawIOBase):
    """A write-only stream without tell/seek: zipfile then writes data descriptors."""

    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.buf += bytes(b)
        return len(b)


def npy_bytes(a):
    b = io.BytesIO()
    np.lib.format.write_array(b, a)
    return b.getvalue()


def zip64_archive(arrays):
    """An archive whose central directory records carry 0xFFFFFFFF sizes and offsets with a
    ZIP64 extra field, ended by a ZIP64 end record, its locator and an EOCD of 0xFFFF counts."""
    out = bytearray()
    central = bytearray()
    for name, a in arrays.items():
        data = npy_bytes(a)
        fname = (name + ".npy").encode()
        crc = zlib.crc32(data)
        off = len(out)
        lextra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                           len(fname), len(lextra)) + fname + lextra + data
        cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x032D, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF,
                               0xFFFFFFFF, len(fname), len(cextra), 0, 0, 0, 0, 0xFFFFFFFF) + fname + cextra
    cd_off = len(out)
    out += central
    rec_off = len(out)
    n = len(arrays)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(central), cd_off)
    out += struct.pack("<IIQI", 0x07064B50, 0, rec_off, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return bytes(out)


def main():
    t = Tap()
    tmp = scratch_dir("gt-npz-")
    rng = np.random.default_rng(3)
    arrays = {
        "mu": rng.standard_normal(700),
        "sigma": rng.standard_normal((700, 700)),
        "n": np.int64(50000),
        "f4": rng.standard_normal((3, 1, 4, 5)).astype(np.float32),
        "u1": rng.integers(0, 256, (7, 3), dtype=np.uint8),
        "empty": np.zeros((0, 5), np.float32),
        "scalar": np.float64(2.5) * np.ones(()),
    }
    small = {"mu": arrays["mu"][:8], "sigma": arrays["sigma"][:8, :8], "n": arrays["n"]}

    # ---- NumPy's archives are read, and written back identically in content
    for kind, save in (("savez", np.savez), ("savez_compressed", np.savez_compressed)):
        src = os.path.join(tmp, f"{kind}.npz")
        save(src, **arrays)
        for compress in (False, True):
            dst = os.path.join(tmp, f"{kind}-rt{int(compress)}.npz")
            r = roundtrip(src, dst, compress)
            if t.check(f"{kind}: read, written back {'deflated' if compress else 'stored'}", r.returncode == 0, r.stderr):
                ok, why = same(np.load(src), np.load(dst))
                t.check(f"{kind}: np.load of ours equals np.load of NumPy's ({'deflated' if compress else 'stored'})",
                        ok, why)
                with zipfile.ZipFile(dst) as z:
                    bad = z.testzip()
                    t.check(f"{kind}: zipfile's CRC check passes on ours", bad is None, f"bad member {bad}")
                    want = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
                    t.check(f"{kind}: members {'deflated' if compress else 'stored'}",
                            all(i.compress_type == want for i in z.infolist()))
    # ours is deterministic: the same arrays give the same bytes
    a1, a2 = os.path.join(tmp, "savez-rt0.npz"), os.path.join(tmp, "savez_compressed-rt0.npz")
    t.check("the bytes depend only on the arrays", open(a1, "rb").read() == open(a2, "rb").read())

    # ---- written to an unseekable stream: data descriptors (flag bit 3)
    u = Unseekable()
    np.savez(u, **small)
    p = os.path.join(tmp, "descr.npz")
    open(p, "wb").write(u.buf)
    flags = zipfile.ZipFile(p).infolist()[0].flag_bits
    r = roundtrip(p, os.path.join(tmp, "descr-rt.npz"))
    ok = r.returncode == 0 and same(np.load(p), np.load(os.path.join(tmp, "descr-rt.npz")))[0]
    t.check(f"archive with data descriptors (flags {flags:#x}) is read", ok and flags & 8, r.stderr)

    # ---- ZIP64 end records and central-directory sizes, made by hand
    p = os.path.join(tmp, "zip64.npz")
    open(p, "wb").write(zip64_archive(small))
    with zipfile.ZipFile(p) as z:  # the hand-made archive is valid for zipfile
        t.check("hand-made ZIP64 archive passes zipfile's check", z.testzip() is None)
    r = roundtrip(p, os.path.join(tmp, "zip64-rt.npz"))
    ok = r.returncode == 0 and same(np.load(p), np.load(os.path.join(tmp, "zip64-rt.npz")))[0]
    t.check("ZIP64 end record and ZIP64 central sizes are read", ok, r.stderr)

    # ---- stdin and stdout
    src = os.path.join(tmp, "small.npz")
    np.savez(src, **small)
    r = subprocess.run([RT, "-", "-"], stdin=open(src, "rb"), capture_output=True)
    ok = r.returncode == 0 and same(np.load(src), np.load(io.BytesIO(r.stdout)))[0]
    t.check("reads stdin, writes stdout", ok, r.stderr)

    # ---- refusals: one line, exit 1, never a crash
    def refuse(name, data, expect):
        p = os.path.join(tmp, "bad.npz")
        open(p, "wb").write(data)
        r = roundtrip(p, os.path.join(tmp, "bad-out.npz"))
        lines = r.stderr.strip().splitlines()
        ok = r.returncode == 1 and len(lines) == 1 and expect in r.stderr
        return t.check(f"refused: {name}", ok, f"exit {r.returncode}: {r.stderr!r}")

    good = open(src, "rb").read()
    crashes = []
    cuts = sorted(set(range(0, len(good), 9)) | set(range(len(good) - 120, len(good))))
    for cut in cuts:
        p = os.path.join(tmp, "cut.npz")
        open(p, "wb").write(good[:cut])
        r = roundtrip(p, os.path.join(tmp, "cut-out.npz"))
        if r.returncode != 1 or len(r.stderr.strip().splitlines()) != 1:
            crashes.append((cut, r.returncode, r.stderr))
    t.check(f"each of {len(cuts)} truncations is a one-line error", not crashes, str(crashes[:3]))
    flips = []
    for pos in range(0, len(good), 11):
        b = bytearray(good)
        b[pos] ^= 0x5A
        p = os.path.join(tmp, "flip.npz")
        open(p, "wb").write(bytes(b))
        r = roundtrip(p, os.path.join(tmp, "flip-out.npz"))
        if r.returncode not in (0, 1) or (r.returncode == 1 and len(r.stderr.strip().splitlines()) != 1):
            flips.append((pos, r.returncode, r.stderr))
    t.check("flipped bytes give a result or a one-line error", not flips, str(flips[:3]))
    # a flipped data byte is caught by the CRC
    data_at = good.index(b"\x93NUMPY") + 130  # inside the first member's data (its header is 128 bytes)
    b = bytearray(good)
    b[data_at] ^= 1
    refuse("a flipped data byte (CRC)", bytes(b), "CRC-32 mismatch")
    refuse("empty file", b"", "empty file")
    refuse("a .npy given as .npz", npy_bytes(np.ones(3)), "a .npy file, not a .npz archive")
    refuse("not a ZIP", b"hello world, this is not an archive at all", "not a .npz file")
    b = bytearray(good)
    b[6] |= 1  # local flags: encrypted
    cd = good.rindex(b"PK\x01\x02")
    b[cd + 8] |= 1
    refuse("encrypted member", bytes(b), "encrypted")
    bz = io.BytesIO()
    with zipfile.ZipFile(bz, "w", zipfile.ZIP_BZIP2) as z:
        z.writestr("mu.npy", npy_bytes(np.ones(3)))
    refuse("bzip2 member", bz.getvalue(), "compression method 12")
    dup = io.BytesIO()
    with zipfile.ZipFile(dup, "w") as z:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            z.writestr("mu.npy", npy_bytes(np.ones(3)))
            z.writestr("mu.npy", npy_bytes(np.ones(4)))
    refuse("duplicate member", dup.getvalue(), "appears twice")
    other = io.BytesIO()
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("notes.txt", b"hello")
    refuse("a member that is not .npy", other.getvalue(), "is not a NAME.npy array")
    bad_npy = io.BytesIO()
    with zipfile.ZipFile(bad_npy, "w") as z:
        z.writestr("mu.npy", npy_bytes(np.ones(3, dtype=np.float16)))
    refuse("a member of an unsupported dtype", bad_npy.getvalue(), "member 'mu.npy': unsupported dtype")
    # a deflated member whose declared size is a lie
    p = os.path.join(tmp, "c.npz")
    np.savez_compressed(p, mu=np.zeros(1000))
    b = bytearray(open(p, "rb").read())
    cd = bytes(b).rindex(b"PK\x01\x02")
    usize = struct.unpack_from("<I", b, cd + 24)[0]
    struct.pack_into("<I", b, cd + 24, usize - 1)
    refuse("deflated data longer than declared", bytes(b), "longer than")
    struct.pack_into("<I", b, cd + 24, usize + 1)
    refuse("deflated data shorter than declared", bytes(b), "declared")
    struct.pack_into("<I", b, cd + 24, 0x7FFFFFFF)
    refuse("a declared size impossible for deflate", bytes(b), "impossible")
    t.done()


if __name__ == "__main__":
    main()
