#!/usr/bin/python3
"""No circles (issue 15 item 5): inside one folder, no two modules reach
each other, neither by #include lines (a module is X.c with X.h) nor by
the functions their objects call (nm: a module using a symbol another
defines). A circle is broken with a narrow header or by returning a
result instead of calling back (proxy/relay.c's RELAY_DIAL).

usage: circles.py SRCROOT NM FOLDER... -- OBJDIR...
"""
import os
import re
import subprocess
import sys


def tarjan(g):
    """Strongly connected components of more than one node."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def include_graph(folder):
    g, why = {}, {}
    for f in sorted(os.listdir(folder)):
        if not f.endswith((".c", ".h")):
            continue
        stem = f.rsplit(".", 1)[0]
        g.setdefault(stem, set())
        with open(os.path.join(folder, f), errors="replace") as fh:
            for line in fh:
                m = re.match(r'\s*#\s*include\s+"([^"/]+)\.h"', line)
                if m and m.group(1) != stem and os.path.exists(
                        os.path.join(folder, m.group(1) + ".h")):
                    g[stem].add(m.group(1))
                    why.setdefault((stem, m.group(1)), []).append(f)
    return g, why


def symbol_graph(nm, objdir):
    defs, uses = {}, {}
    for o in sorted(os.listdir(objdir)):
        if not o.endswith(".o"):
            continue
        mod = o.split(".c.o")[0]
        d, u = set(), set()
        out = subprocess.run([nm, os.path.join(objdir, o)], capture_output=True,
                             text=True, check=True).stdout
        for line in out.splitlines():
            p = line.split()
            if len(p) == 3 and p[1] in "TDBR":
                d.add(p[2])
            elif len(p) == 2 and p[0] == "U":
                u.add(p[1])
        defs[mod], uses[mod] = d, u
    owner = {s: m for m, d in defs.items() for s in d}
    g, why = {m: set() for m in defs}, {}
    for m, u in uses.items():
        for s in u:
            if s in owner and owner[s] != m:
                g[m].add(owner[s])
                why.setdefault((m, owner[s]), []).append(s)
    return g, why


def report(where, g, why):
    bad = 0
    for comp in tarjan(g):
        bad = 1
        print("FAIL: %s: circle %s" % (where, " <-> ".join(comp)))
        for a in comp:
            for b in comp:
                if (a, b) in why:
                    print("    %s -> %s (%s)" % (a, b, ", ".join(sorted(why[(a, b)])[:5])))
    return bad


def main():
    root, nm = sys.argv[1], sys.argv[2]
    rest = sys.argv[3:]
    cut = rest.index("--") if "--" in rest else len(rest)
    folders, objdirs = rest[:cut], rest[cut + 1:]
    bad, checked = 0, 0
    for f in folders:
        g, why = include_graph(os.path.join(root, f))
        bad |= report(f + " (#include)", g, why)
        checked += len(g)
    for d in objdirs:
        if not os.path.isdir(d):
            print("FAIL: no objects in %s" % d)
            bad = 1
            continue
        g, why = symbol_graph(nm, d)
        if not g:
            print("FAIL: no objects in %s" % d)
            bad = 1
        bad |= report(os.path.basename(d) + " (symbols)", g, why)
        checked += len(g)
    print("%s: %d modules checked" % ("FAIL" if bad else "ok", checked))
    return bad


if __name__ == "__main__":
    sys.exit(main())
