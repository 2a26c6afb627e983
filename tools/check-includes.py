#!/usr/bin/env python3
"""check-includes.py: the include order of ARCHITECTURE.md, checked over every #include "..." line.

Each source folder has a level; a file may include headers of its own folder, of a folder of the
same subsystem level that it is allowed to see, and of any lower level, never of a higher one:

    0  lib/base          helpers, tensors, Philox, the process group
    1  formats           file formats (on the base only)
    2  lib/backend       the backend interface and the host+device math
    3  lib/cpu, kernels  the two backends (neither sees the other)
    4  lib/nn            layers, networks, the spec language
    5  lib/fid           the Frechet distance and the Inception network
    6  lib/gan           settings, checkpoints, trainer, sampler, presets
    7  cmd               the programs
       tests, bench, tools, examples: anything

A quoted include is resolved as the compiler does with -I.: first beside the including file, then
from the repository root. It must name an existing file. Library sources must also have distinct
base names (the static library is built with `ar`, which keys its members by base name).

Usage: check-includes.py [--root DIR]    prints TAP; exits 1 when a check fails.
       check-includes.py --self-test     checks that a wrong include in a scratch tree is caught.
"""
import os
import re
import subprocess
import sys
import tempfile

LEVELS = [
    ("lib/base", 0),
    ("formats", 1),
    ("lib/backend", 2),
    ("lib/cpu", 3),
    ("kernels", 3),
    ("lib/nn", 4),
    ("lib/fid", 5),
    ("lib/gan", 6),
    ("cmd", 7),
]
UNRESTRICTED = ("tests", "bench", "tools", "examples")
SOURCE = re.compile(r"\.(c|h|cu)$")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(path):
    """The (folder, level) a repository path belongs to, or (None, None) if unrestricted."""
    for folder, level in LEVELS:
        if path == folder or path.startswith(folder + "/"):
            return folder, level
    return None, None


def sources(root):
    out = []
    for top in [f for f, _ in LEVELS] + list(UNRESTRICTED):
        d = os.path.join(root, top)
        for dirpath, _, names in os.walk(d):
            for n in names:
                if SOURCE.search(n):
                    out.append(os.path.relpath(os.path.join(dirpath, n), root))
    return sorted(set(out))


def check(root):
    """Returns (order_errors, unresolved, clashes): lists of one-line messages."""
    order, unresolved = [], []
    for src in sources(root):
        text = open(os.path.join(root, src), encoding="utf-8", errors="replace").read()
        s_folder, s_level = folder_of(src)
        for m in INCLUDE.finditer(text):
            name = m.group(1)
            line = text.count("\n", 0, m.start()) + 1
            beside = os.path.normpath(os.path.join(os.path.dirname(src), name))
            if os.path.isfile(os.path.join(root, beside)):
                target = beside
            elif os.path.isfile(os.path.join(root, name)):
                target = os.path.normpath(name)
            else:
                unresolved.append(f"{src}:{line}: #include \"{name}\" names no file (beside it or from the root)")
                continue
            if s_level is None:
                continue
            t_folder, t_level = folder_of(target)
            if t_folder is None:
                order.append(f"{src}:{line}: {s_folder} includes {target}, outside the library")
            elif t_level > s_level or (t_level == s_level and t_folder != s_folder):
                order.append(f"{src}:{line}: {s_folder} (level {s_level}) includes {target} "
                             f"({t_folder}, level {t_level}): against ARCHITECTURE.md's order")
    seen, clashes = {}, []
    for src in sources(root):
        folder, _ = folder_of(src)
        if folder is None or folder == "cmd" or not src.endswith(".c"):
            continue
        base = os.path.basename(src)
        if base in seen:
            clashes.append(f"{src} and {seen[base]} share the object name {base[:-2]}.o")
        seen[base] = src
    return order, unresolved, clashes


def report(root):
    order, unresolved, clashes = check(root)
    results = [
        ("every quoted include names an existing file", unresolved),
        ("every include follows the layer order", order),
        ("library sources have distinct object names", clashes),
    ]
    print(f"1..{len(results)}")
    bad = 0
    for i, (what, errs) in enumerate(results, 1):
        print(("not ok" if errs else "ok") + f" {i} - {what}")
        for e in errs:
            print(f"# {e}")
        bad += bool(errs)
    return 1 if bad else 0


def self_test():
    """A scratch tree with one wrong include: the checker must fail and name it; fixed, it passes."""
    with tempfile.TemporaryDirectory() as d:
        def put(path, text):
            os.makedirs(os.path.dirname(os.path.join(d, path)), exist_ok=True)
            open(os.path.join(d, path), "w").write(text)
        put("lib/base/common.h", "")
        put("lib/gan/model.h", '#include "lib/base/common.h"\n')
        put("lib/base/tensor.c", '#include "common.h"\n#include "lib/gan/model.h"\n')
        run = subprocess.run([sys.executable, __file__, "--root", d], capture_output=True, text=True)
        caught = run.returncode == 1 and "lib/base/tensor.c:2: lib/base (level 0) includes lib/gan/model.h" in run.stdout
        put("lib/base/tensor.c", '#include "common.h"\n')
        fixed = subprocess.run([sys.executable, __file__, "--root", d], capture_output=True, text=True)
    print("1..2")
    print(("ok" if caught else "not ok") + " 1 - a base file including lib/gan is refused, with file and line")
    if not caught:
        print("# " + run.stdout.replace("\n", "\n# "))
    print(("ok" if fixed.returncode == 0 else "not ok") + " 2 - the same tree without it passes")
    return 0 if caught and fixed.returncode == 0 else 1


if __name__ == "__main__":
    args = sys.argv[1:]
    if args == ["--self-test"]:
        sys.exit(self_test())
    root = args[1] if len(args) == 2 and args[0] == "--root" else os.path.join(os.path.dirname(__file__), "..")
    if args and not (len(args) == 2 and args[0] == "--root"):
        sys.exit("usage: check-includes.py [--root DIR | --self-test]")
    sys.exit(report(os.path.abspath(root)))
