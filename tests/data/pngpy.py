"""pngpy.py: a small PNG encoder and decoder in Python (zlib, struct, numpy), written from the PNG
specification and independent of libpng, so that tests can make PNG fixtures of every colour type,
bit depth, filter and interlace, and check what our writer produces.

    encode(a, color, depth=8, palette=None, trns=None, interlace=False, filters=(0,)) -> bytes
        a: (H, W) for gray and palette indices, (H, W, 2) gray+alpha, (H, W, 3) RGB, (H, W, 4) RGBA;
        color: 'gray', 'gray+alpha', 'rgb', 'rgba', 'palette'; depth 1, 2, 4, 8 or 16 (as the
        colour type allows); palette: (K, 3) uint8; trns: bytes of a tRNS chunk; filters: the
        filter types used for the rows, in turn (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth).
    decode(data) -> (pixels, color_type, depth): pixels (H, W, channels) as stored (uint8 or
        uint16; palette images as indices), for non-interlaced images of any type and filter.
    chunks(data) -> [(tag, payload)] for inspecting a file.
"""
import struct
import zlib

import numpy as np

SIG = b"\x89PNG\r\n\x1a\n"
COLOR = {"gray": (0, 1), "rgb": (2, 3), "palette": (3, 1), "gray+alpha": (4, 2), "rgba": (6, 4)}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(tag, payload):
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def chunks(data):
    assert data[:8] == SIG, "not a PNG"
    out, p = [], 8
    while p < len(data):
        (n,) = struct.unpack(">I", data[p:p + 4])
        out.append((data[p + 4:p + 8], data[p + 8:p + 8 + n]))
        p += 12 + n
    return out


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _filter_row(kind, row, prev, bpp):
    out = bytearray(len(row))
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = [0, a, b, (a + b) // 2, _paeth(a, b, c)][kind]
        out[i] = (x - pred) & 0xFF
    return bytes([kind]) + bytes(out)


def _unfilter_row(kind, row, prev, bpp):
    out = bytearray(len(row))
    for i, x in enumerate(row):
        a = out[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = [0, a, b, (a + b) // 2, _paeth(a, b, c)][kind]
        out[i] = (x + pred) & 0xFF
    return bytes(out)


def _pack_rows(a, channels, depth):
    """(H, W[, C]) samples to a list of byte rows at the bit depth."""
    h = a.shape[0]
    a = a.reshape(h, -1)
    rows = []
    for y in range(h):
        s = a[y]
        if depth == 16:
            rows.append(s.astype(">u2").tobytes())
        elif depth == 8:
            rows.append(s.astype(np.uint8).tobytes())
        else:
            per = 8 // depth
            padded = np.zeros(-(-len(s) // per) * per, np.uint8)
            padded[:len(s)] = s
            b = np.zeros(len(padded) // per, np.uint8)
            for k in range(per):
                b |= (padded[k::per] << (8 - depth * (k + 1))).astype(np.uint8)
            rows.append(b.tobytes())
    return rows


def _image_data(a, channels, depth, filters):
    bpp = max(1, channels * depth // 8)
    rows = _pack_rows(a, channels, depth)
    raw, prev = b"", bytes(len(rows[0])) if rows else b""
    for y, row in enumerate(rows):
        raw += _filter_row(filters[y % len(filters)], row, prev, bpp)
        prev = row
    return raw


def encode(a, color, depth=8, palette=None, trns=None, interlace=False, filters=(0,), extra=()):
    a = np.asarray(a)
    ctype, channels = COLOR[color]
    h, w = a.shape[:2]
    out = SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 1 if interlace else 0))
    for tag, payload in extra:
        out += chunk(tag, payload)
    if palette is not None:
        out += chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
    if trns is not None:
        out += chunk(b"tRNS", trns)
    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = a[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += _image_data(sub, channels, depth, filters)
    else:
        raw = _image_data(a, channels, depth, filters)
    out += chunk(b"IDAT", zlib.compress(raw, 9))
    return out + chunk(b"IEND", b"")


def decode(data):
    cs = chunks(data)
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", cs[0][1])
    assert interlace == 0, "decode: interlaced images are not handled"
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    raw = zlib.decompress(b"".join(p for t, p in cs if t == b"IDAT"))
    bpp = max(1, channels * depth // 8)
    stride = (w * channels * depth + 7) // 8
    prev, rows, p = bytes(stride), [], 0
    for _ in range(h):
        kind, row = raw[p], raw[p + 1:p + 1 + stride]
        p += 1 + stride
        prev = _unfilter_row(kind, row, prev, bpp)
        rows.append(prev)
    assert p == len(raw), "decode: extra image data"
    buf = np.frombuffer(b"".join(rows), np.uint8).reshape(h, stride)
    if depth == 16:
        px = buf.view(">u2").astype(np.uint16)
    elif depth == 8:
        px = buf.copy()
    else:
        per = 8 // depth
        bits = np.stack([(buf >> (8 - depth * (k + 1))) & ((1 << depth) - 1) for k in range(per)], -1)
        px = bits.reshape(h, -1)[:, :w * channels]
    return px.reshape(h, w, channels), ctype, depth
