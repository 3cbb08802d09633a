#!/usr/bin/python3
"""Print the tables of docs/performance.md from a results directory of
scripts/bench, so the page is updated from the CSV files and not by hand:

    tests/bench/benchmd.py build/bench-results/<timestamp> [--base DIR]

--base DIR: a results directory of an earlier run; adds a "before" column to
the idle-connection and key-service tables (before/after of a fix).
--plots: draw the PNG plots of DIR again from its CSV files (benchreport).
--runs DIR...: the goals table over several runs (each DIR's result.txt, the
RESULT line): every run's figure, the spread, met only if every run meets it.
"""
import argparse
import csv
import os
import sys


def rows(d, name):
    path = os.path.join(d, name)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(x, nd=0):
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return "{:,.{}f}".format(v, nd)


def table(head, body):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in body]
    return "\n".join(out)


def key(r):
    return (int(r["qos"]), int(r["size"]), int(r["pubs"]))


def by_cell(d, name):
    """{(qos, size, pubs): {path: row}} of one CSV file."""
    by = {}
    for r in rows(d, name):
        by.setdefault(key(r), {})[r["path"]] = r
    return by


def throughput(d):
    by = by_cell(d, "throughput.csv")
    body = []
    for k in sorted(by):
        p = by[k]
        t = {x: float(p[x]["msgs_per_s"]) if x in p else 0.0 for x in
             ("plain", "tls", "bridge", "proxy")}
        body.append([k[0], k[1], k[2]] + [num(t[x]) for x in ("plain", "tls", "bridge", "proxy")] +
                    [num(t["proxy"] / t["tls"], 2) if t["tls"] else "n/a",
                     num(t["proxy"] / t["bridge"], 2) if t["bridge"] else "n/a",
                     p.get("proxy", {}).get("bottleneck", "").split(" (")[0]])
    return table(["QoS", "size", "pubs", "plain TCP", "direct TLS", "TLS bridge", "e2e-proxy",
                  "proxy/TLS", "proxy/bridge", "bottleneck on the proxy path"], body)


def latency(d):
    by = by_cell(d, "latency.csv")
    body = []
    for k in sorted(by):
        p = by[k]
        cells = ["%s / %s" % (num(p[x]["p50_us"]), num(p[x]["p99_us"])) if x in p else "n/a"
                 for x in ("plain", "tls", "bridge", "proxy")]
        diff = (float(p["proxy"]["p50_us"]) - float(p["tls"]["p50_us"])
                if "proxy" in p and "tls" in p else None)
        rate = next(iter(p.values()))["rate"]
        body.append([k[0], k[1], k[2], rate] + cells +
                    ["%+d" % round(diff) if diff is not None else "n/a"])
    return table(["QoS", "size", "pubs", "rate", "plain TCP", "direct TLS", "TLS bridge",
                  "e2e-proxy", "proxy p50 − TLS p50"], body)


def subscriber(d):
    # The ratio of messages per CPU second, from the unrounded µs figures.
    body = [["QoS %s, %s B" % (r["qos"], r["size"]), r["e2e_us_per_msg"], r["plain_us_per_msg"],
             num(float(r["plain_us_per_msg"]) / float(r["e2e_us_per_msg"]), 3)]
            for r in rows(d, "sub_vs_plain.csv")]
    return table(["same stream, 10,000 msg/s", "e2e_client µs/msg", "plain Paho µs/msg", "ratio"],
                 body)


def idle(d, base):
    before = {r["connections"]: r for r in rows(base, "idle_conns.csv")} if base else {}
    body = []
    for r in rows(d, "idle_conns.csv"):
        row = [num(r["connections"]), "%.1f MiB" % (int(r["proxy_rss_kib"]) / 1024.0),
               num(r["kib_per_conn"], 1) + " KiB" if r["kib_per_conn"] else ""]
        if base:
            b = before.get(r["connections"]) or {}
            row.append(num(b.get("kib_per_conn"), 1) + " KiB" if b.get("kib_per_conn") else "")
        body.append(row + [num(r["proxy_fds"])])
    head = ["connections", "proxy VmRSS", "per connection"]
    return table(head + (["before the fix"] if base else []) + ["descriptors"], body)


def keys(d, base):
    before = {r["case"]: r for r in rows(base, "keysvc.csv")} if base else {}

    def what(r):
        if r["delivered_per_s"] and not r["sent"]:
            return "%s requests/s on one core" % num(r["delivered_per_s"])
        s = "%s of %s delivered" % (r["delivered"], r["sent"])
        if r["refused"] and r["refused"] != "0":
            s += ", %s refused (rate)" % r["refused"]
        if r["unanswered"] and r["unanswered"] != "0":
            s += ", %s unanswered" % r["unanswered"]
        if r["p50_ms"]:
            s += "; p50 %s ms" % r["p50_ms"]
        if r["flood_per_s"] and float(r["flood_per_s"]) > 0:
            s += "; %s forged/s, proxy CPU %s %%" % (num(r["flood_per_s"]), num(r["proxy_cpu_pct"]))
        return s
    body = []
    for r in rows(d, "keysvc.csv"):
        row = [r["case"], what(r)]
        if base:
            b = before.get(r["case"])
            row.append(what(b) if b else "")
        body.append(row)
    return table(["case", "result"] + (["before the fix"] if base else []), body)


def slowdisk(d):
    body = [[r["case"], r["window"], num(r["rate"]), num(r["p50_us"]), num(r["p99_us"]),
             num(r["max_us"]), r["samples"], r["announcements"], r["seals_waited"]]
            for r in rows(d, "slowdisk.csv")]
    return table(["proxy", "window", "msg/s", "p50", "p99", "max", "samples", "key announcements so far",
                  "seals waited"], body) if body else "(not measured)"


def typed(r):
    out = {}
    for k, v in r.items():
        for conv in (int, float):
            try:
                out[k] = conv(v)
                break
            except (TypeError, ValueError):
                continue
        else:
            out[k] = v if v != "" else None
    return out


# RESULT field -> (goal text, test on the figure)
GOALS = (("proxy_vs_tls", ">= 0.95 (min over 12 cells)", lambda v: v >= 0.95),
         ("proxy_vs_bridge", ">= 1.2 (min over 12 cells)", lambda v: v >= 1.2),
         ("sub_vs_plain", ">= 0.95", lambda v: v >= 0.95),
         ("p50_over", "0 of 24 cells over direct TLS + 100 µs", lambda v: v == 0),
         ("p99_over", "0 of 24 cells over the bridge's p99", lambda v: v == 0),
         ("rot_p99_ratio", "<= 1.2", lambda v: v <= 1.2),
         ("kb_per_conn", "<= 40 KiB", lambda v: v <= 40))


def runs(dirs):
    res = []
    for d in dirs:
        with open(os.path.join(d, "result.txt")) as f:
            line = f.read().split()
        res.append({k: v for k, v in (t.split("=", 1) for t in line[1:])})
    body = []
    for name, text, ok in GOALS:
        vals = [r.get(name, "n/a") for r in res]
        nums = [float(v) for v in vals if v != "n/a"]
        spread = "%s … %s" % (min(nums), max(nums)) if len(nums) > 1 else "n/a"
        met = ("met in all %d" % len(vals) if len(nums) == len(vals) and all(map(ok, nums))
               else "**missed** in %d of %d" % (len(vals) - sum(map(ok, nums)), len(vals)))
        body.append(["%s %s" % (name, text)] + vals + [spread, met])
    return table(["goal"] + [os.path.basename(d.rstrip("/")) for d in dirs] +
                 ["spread (min … max)", "verdict"], body)


def replot(d):
    """benchreport.plot() over the CSV files instead of a live Bench."""
    import types
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import benchreport
    idle = [typed(r) for r in rows(d, "idle_conns.csv")]
    b = types.SimpleNamespace(
        tput=[typed(r) for r in rows(d, "throughput.csv")],
        lat=[typed(r) for r in rows(d, "latency.csv")],
        subrows=[typed(r) for r in rows(d, "sub_vs_plain.csv")],
        cpurows=[typed(r) for r in rows(d, "cpu_per_msg.csv")],
        idlerows=idle, kb_per_conn=idle[-1]["kib_per_conn"] if idle else None,
        sdrows=[typed(r) for r in rows(d, "slowdisk.csv")])
    if b.sdrows:
        try:
            with open(os.path.join(d, "result.txt")) as f:
                b.rot_ratio = float(f.read().split("rot_p99_ratio=")[1].split()[0])
        except (OSError, IndexError, ValueError):
            b.rot_ratio = None
    return benchreport.plot(b, d)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--base")
    ap.add_argument("--plots", action="store_true")
    ap.add_argument("--runs", nargs="*", help="more results directories: goals over all runs")
    a = ap.parse_args()
    if a.runs is not None:
        print(runs([a.dir] + a.runs))
        return
    if not os.path.isdir(a.dir):
        sys.exit("benchmd: no such results directory: %s" % a.dir)
    if a.plots:
        print("plots: " + ", ".join(p for p in replot(a.dir) if p))
        return
    for title, text in (("Throughput (msg/s)", throughput(a.dir)),
                        ("Latency at a fixed rate (µs, p50 / p99)", latency(a.dir)),
                        ("Subscriber", subscriber(a.dir)),
                        ("Idle publishers", idle(a.dir, a.base)),
                        ("Key service", keys(a.dir, a.base)),
                        ("Rotation every second, fsync slowed by 100 ms", slowdisk(a.dir))):
        print("### %s\n\n%s\n" % (title, text))


if __name__ == "__main__":
    main()
