#!/usr/bin/python3
"""fid-weights.py: convert pytorch-fid's Inception weights to the safetensors file gan-fid reads.

    /usr/bin/python3 tools/fid-weights.py pt_inception-2015-12-05-6726825d.pth inception.safetensors
    gan-fid --weights inception.safetensors real.npy fake.npy      (or export GAN_FID_WEIGHTS=...)

The input is the state_dict pytorch-fid downloads (torch.load'able; pytorch-fid's release
"fid_weights", file pt_inception-2015-12-05-6726825d.pth, the TensorFlow FID Inception ported
to PyTorch); a pickled module is accepted too (its state_dict is taken). Every tensor is written
under its own name (torchvision's Inception3 names: Conv2d_1a_3x3.conv.weight, ...bn.running_var,
Mixed_5b.branch1x1.conv.weight, ..., and fc.weight, the final layer that gan-fid --is needs),
floating point as float32, integers as int64,
in a safetensors file (8-byte little-endian header length, JSON header padded with spaces to a
multiple of 8, the data; int64 tensors first so that every tensor is aligned). The output is
written to a temporary file beside it and renamed. Needs torch (Debian's python3-torch).
Exit status: 0 converted, 1 bad input, 2 bad usage.
"""
import json
import os
import struct
import sys

# what gan-fid's Inception needs: the stem, then the Mixed blocks (lib/fid/inception_net.c)
REQUIRED = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
            "Mixed_5b.branch1x1", "Mixed_6a.branch3x3", "Mixed_6e.branch7x7dbl_5", "Mixed_7a.branch7x7x3_4",
            "Mixed_7c.branch_pool"]


def fail(msg, code=1):
    print(f"fid-weights: {msg}", file=sys.stderr)
    sys.exit(code)


def main():
    if len(sys.argv) != 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip().split("\n\n")[0] + "\n\nusage: fid-weights.py IN.pth OUT.safetensors",
              file=sys.stderr if len(sys.argv) != 2 else sys.stdout)
        sys.exit(0 if len(sys.argv) == 2 else 2)
    src, dst = sys.argv[1], sys.argv[2]
    try:
        import torch
    except ImportError:
        fail("needs torch: apt-get install python3-torch")
    try:
        sd = torch.load(src, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any unreadable input is one message
        fail(f"{src}: cannot load: {e}".splitlines()[0])
    if hasattr(sd, "state_dict") and not isinstance(sd, dict):
        sd = sd.state_dict()
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        fail(f"{src}: not a state_dict of tensors")
    write(sd, dst, os.path.basename(src))


def write(sd, dst, source):
    """Write state_dict SD (name -> torch tensor) to DST as safetensors; exits 1 on bad input."""
    import torch
    missing = [p for p in REQUIRED if f"{p}.conv.weight" not in sd]
    if missing:
        fail(f"{source}: not pytorch-fid's Inception weights (no {missing[0]}.conv.weight)")
    items = []
    for name, t in sd.items():
        t = t.detach().cpu().contiguous()
        if t.is_floating_point():
            t, dtype, np_dtype = t.float(), "F32", "<f4"
        elif t.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            t, dtype, np_dtype = t.long(), "I64", "<i8"
        else:
            fail(f"{source}: tensor {name} has dtype {t.dtype}")
        items.append((name, dtype, list(t.shape), t.numpy().astype(np_dtype).tobytes()))
    items.sort(key=lambda it: it[1] != "I64")  # stable: int64 first, then float32, each in order
    header, off = {"__metadata__": {"format": "pytorch-fid-inception-v3", "source": source}}, 0
    for name, dtype, shape, data in items:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = f"{dst}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h)
            for _, _, _, data in items:
                f.write(data)
        os.replace(tmp, dst)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        fail(f"{dst}: {e.strerror}")


if __name__ == "__main__":
    main()
