#!/usr/bin/env python3
"""The exported symbol set of libe2e.so and libe2e-client.so is deliberate.

For each library, four lists must be equal: the functions declared E2E_API
in its public headers, the global: list of its version script, the
symbols `nm -D --defined-only` finds in the built .so (no stray export, no
missing one) and the names libe2e(3) documents. Every export must carry the
version node of its script.

Usage: abi.py SRCDIR BUILDDIR NM
"""
import os
import re
import subprocess
import sys

src, build, nm = sys.argv[1:4]
failures = []

LIBS = [  # (shared object, version script, public header dirs)
    ("libe2e/libe2e.so", "libe2e/libe2e.map", ["libe2e/include/e2e"]),
    ("libe2e/client/libe2e-client.so", "libe2e/client/libe2e-client.map",
     ["libe2e/client/include/e2e"]),
]


def header_api(dirs):
    names = {}
    for d in dirs:
        for f in sorted(os.listdir(os.path.join(src, d))):
            if not f.endswith(".h"):
                continue
            text = open(os.path.join(src, d, f)).read()
            text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
            text = re.sub(r"#define[^\n]*", " ", text)
            for m in re.finditer(r"\bE2E_API\b([^;{]*?)\b(\w+)\s*\(", text):
                names[m.group(2)] = f
    return names


def script(path):
    text = re.sub(r"/\*.*?\*/", " ", open(os.path.join(src, path)).read(), flags=re.S)
    m = re.search(r"([\w.]+)\s*\{\s*global:(.*?)local:\s*\*;\s*\}\s*;", text, re.S)
    if not m:
        failures.append("%s: no 'NODE { global: ... local: *; };' block" % path)
        return None, set()
    return m.group(1), {s.strip() for s in m.group(2).split(";") if s.strip()}


def exported(so):
    out = subprocess.run([nm, "-D", "--defined-only", "--with-symbol-versions",
                          os.path.join(build, so)], check=True, capture_output=True,
                         text=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        name, _, ver = parts[2].partition("@")
        syms[name] = (parts[1], ver.lstrip("@"))
    return syms


man = open(os.path.join(src, "man/libe2e.3")).read()
man_words = set(re.findall(r"\be2e_\w+", man.replace("\\fB", " ").replace("\\fR", " ")))

for so, mapfile, dirs in LIBS:
    api = header_api(dirs)
    node, listed = script(mapfile)
    syms = exported(so)
    # The version node itself is an absolute symbol of that name.
    got = {n for n, (t, _v) in syms.items() if n != node}

    def diff(what, a, b):
        if a - b:
            failures.append("%s: %s: %s" % (so, what, " ".join(sorted(a - b))))

    diff("declared E2E_API but not in %s" % mapfile, set(api), listed)
    diff("in %s but not declared E2E_API in a public header" % mapfile, listed, set(api))
    diff("exported but not in %s (stray symbol)" % mapfile, got, listed)
    diff("in %s but not exported" % mapfile, listed, got)
    diff("exported but not documented in man/libe2e.3", listed, man_words)
    for n in sorted(got & listed):
        if syms[n][1] != node:
            failures.append("%s: %s has version '%s', not %s" % (so, n, syms[n][1], node))
    print("%s: %d symbols, version %s" % (so, len(got), node))

for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
