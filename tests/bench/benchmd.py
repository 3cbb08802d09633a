#!/usr/bin/python3
"""Print the tables of docs/performance.md from a results directory of
scripts/bench, so the page is updated from the CSV files and not by hand:

    tests/bench/benchmd.py build/bench-results/<timestamp> [--base DIR]

--base DIR: a results directory of an earlier run; adds a "before" column to
the idle-connection and key-service tables (before/after of a fix).
--plots: draw the PNG plots of DIR again from its CSV files (benchreport).
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
        idlerows=idle, kb_per_conn=idle[-1]["kib_per_conn"] if idle else None)
    return benchreport.plot(b, d)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--base")
    ap.add_argument("--plots", action="store_true")
    a = ap.parse_args()
    if not os.path.isdir(a.dir):
        sys.exit("benchmd: no such results directory: %s" % a.dir)
    if a.plots:
        print("plots: " + ", ".join(p for p in replot(a.dir) if p))
        return
    for title, text in (("Throughput (msg/s)", throughput(a.dir)),
                        ("Latency at a fixed rate (µs, p50 / p99)", latency(a.dir)),
                        ("Subscriber", subscriber(a.dir)),
                        ("Idle publishers", idle(a.dir, a.base)),
                        ("Key service", keys(a.dir, a.base))):
        print("### %s\n\n%s\n" % (title, text))


if __name__ == "__main__":
    main()
