"""tap.py: the TAP output tests/run.sh reads, for the PyTorch and NumPy parity scripts.

    from tap import Tap
    t = Tap()
    t.check("name", cond, "message if it fails")
    t.close(a, b, rtol, "name")      # max relative error of arrays a vs reference b
    t.done()                           # prints the plan, exits 1 if anything failed
    tmp = scratch_dir("gt-x-")         # a temporary directory removed when the script exits

A script that raises counts as broken: the runner sees fewer results than planned.
"""
import atexit
import os
import shutil
import sys
import tempfile

import numpy as np

BIN = os.environ.get("GT_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "bin"))


def scratch_dir(prefix):
    """A new temporary directory, removed (with what is in it) when the script exits."""
    d = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, d, True)
    return d


def rel_err(a, b):
    """Max |a - b| / max(1e-12 + |b|_max, ...): relative to the reference's scale."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    scale = max(np.max(np.abs(b)), 1e-30)
    return float(np.max(np.abs(a - b)) / scale)


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def check(self, name, cond, msg=""):
        self.n += 1
        if cond:
            print(f"ok {self.n} - {name}")
        else:
            self.failed += 1
            print(f"not ok {self.n} - {name}")
            if msg:
                for line in str(msg).splitlines():
                    print(f"# {line}")
        sys.stdout.flush()
        return cond

    def close(self, a, b, rtol, name):
        e = rel_err(a, b)
        return self.check(name, e <= rtol, f"relative error {e:.3g} > {rtol:g}")

    def done(self):
        print(f"1..{self.n}")
        sys.exit(1 if self.failed else 0)
