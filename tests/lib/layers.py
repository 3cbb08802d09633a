"""The source tree's layers (issue 15 item 5; docs/architecture.md "Layers").

Reads every #include of the product's C sources and checks:
  1. libe2e's folders depend only downward, in the order LAYERS gives. A file
     depends on a folder when it includes a private header of it
     ("state/fileio.h") or a public header (<e2e/x.h>) declaring functions that
     folder defines (the highest such folder counts).
  (Circles inside a folder: tests/lib/circles.py, test no-circles.)
  2. The programs (proxy/, subscriber/, keytool/, ...) never include each
     other's files, and libe2e never includes a program's.
  3. No product source file is longer than MAX_LINES.
Prints every violation and exits 1 if there is one.

usage: layers.py <source root>
"""
import os
import re
import sys

LAYERS = ["base", "state", "keys", "envelope", "control", "sender", "client"]
PROGRAMS = ["proxy", "subscriber", "keytool", "authority"]
SHARED = ["ops"]      # operators' plumbing every program may use
MAX_LINES = 600
DEF = re.compile(r'^[a-z][\w \*]*?\b(e2e_\w+)\([^;]*$', re.M)   # a definition starts at column 0
DECL = re.compile(r'E2E_API[^;(]*?\b(e2e_\w+)\s*\(')
INC = re.compile(r'^\s*#\s*include\s+[<"]([^">]+)[">]', re.M)


def sources(root, top):
    for d, _, fs in os.walk(os.path.join(root, top)):
        for f in fs:
            if f.endswith((".c", ".h")):
                yield os.path.relpath(os.path.join(d, f), root)


def main(root):
    bad = []
    lib = [p for p in sources(root, "libe2e")]
    folder_of = {}      # libe2e path -> layer
    impl_of = {}        # public header stem -> layer implementing it
    for p in lib:
        parts = p.split(os.sep)
        if parts[1] == "include":
            continue
        layer = parts[1] if len(parts) > 2 else None
        if layer not in LAYERS:
            bad.append("%s: libe2e source outside a layer folder (%s)" % (p, ", ".join(LAYERS)))
            continue
        folder_of[p] = layer
    # which layers define the functions a public header declares
    defined = {}
    for p, layer in folder_of.items():
        if p.endswith(".c"):
            text = open(os.path.join(root, p), errors="replace").read()
            for name in DEF.findall(text):
                defined[name] = layer
    incdir = os.path.join(root, "libe2e", "include", "e2e")
    for h in os.listdir(incdir):
        text = open(os.path.join(incdir, h), errors="replace").read()
        layers = {defined[n] for n in DECL.findall(text) if n in defined}
        if layers:
            impl_of[h[:-2]] = max(layers, key=LAYERS.index)
    # 1. folders depend only downward
    for p, layer in sorted(folder_of.items()):
        text = open(os.path.join(root, p), errors="replace").read()
        for inc in INC.findall(text):
            target = None
            head = inc.split("/")[0]
            if head in LAYERS:
                target = head
            elif inc.startswith("e2e/"):
                target = impl_of.get(os.path.basename(inc)[:-2])
            if head in PROGRAMS:
                bad.append("%s includes a program's file %s" % (p, inc))
            if target and LAYERS.index(target) > LAYERS.index(layer):
                bad.append("%s (layer %s) includes %s of the higher layer %s"
                           % (p, layer, inc, target))
    # 2. programs never reach sideways: a quoted include that names a file of
    # another program's folder (and none of its own, of ops/ or of libe2e)
    own = {top: {os.path.basename(p) for p in sources(root, top)} for top in PROGRAMS + SHARED}
    for top in PROGRAMS:
        for p in sources(root, top):
            text = open(os.path.join(root, p), errors="replace").read()
            for inc in re.findall(r'^\s*#\s*include\s+"([^"]+)"', text, re.M):
                base = os.path.basename(inc)
                if base in own[top] or any(base in own[s] for s in SHARED):
                    continue
                for other in PROGRAMS:
                    if other != top and base in own[other]:
                        bad.append("%s includes %s of %s/ (another program's file)"
                                   % (p, inc, other))
    # 3. small files
    for top in ["libe2e"] + PROGRAMS + SHARED:
        for p in sources(root, top):
            n = sum(1 for _ in open(os.path.join(root, p), errors="replace"))
            if n > MAX_LINES:
                bad.append("%s: %d lines (more than %d)" % (p, n, MAX_LINES))
    for b in bad:
        print("layers:", b)
    print("layers: %d libe2e files in %d layers, %d problems"
          % (len(folder_of), len(set(folder_of.values())), len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
