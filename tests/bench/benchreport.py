"""scripts/bench: summary.txt, gnuplot PNGs and the RESULT line, from the
rows a bench.Bench collected (its CSV files hold the same numbers)."""
import os
import shutil
import subprocess

PATHS = ("plain", "tls", "bridge", "proxy")
TITLE = {"plain": "plain TCP", "tls": "direct TLS", "bridge": "TLS bridge", "proxy": "e2e-proxy"}
# Issue 15 item 7 (and item 1: rot_p99_ratio).
GOALS = {"proxy_vs_bridge": 1.2, "proxy_vs_tls": 0.95, "kb_per_conn": 40.0, "sub_vs_plain": 0.95,
         "p50_over_tls_us": 100.0, "rot_p99_ratio": 1.2}
_NUM = r"(?:[0-9]+\.[0-9]+|n/a)"
_CNT = r"(?:[0-9]+|n/a)"
# The RESULT line (bench.py checks every run's against it).
RESULT_RE = (r"RESULT proxy_vs_tls=%s proxy_vs_bridge=%s kb_per_conn=%s sub_vs_plain=%s "
             r"p50_over=(?P<p50>%s) p99_over=(?P<p99>%s) rot_p99_ratio=(?P<rot>%s)" % (
                 _NUM, _NUM, _NUM, _NUM, _CNT, _CNT, _NUM))


def f2(x, nd=2):
    return "n/a" if x is None or x == "" else "%.*f" % (nd, x)


def cell(rows, **k):
    for r in rows:
        if all(r[a] == b for a, b in k.items()):
            return r
    return None


def report(b, out, elapsed):
    lines = []
    say = lines.append
    (tls_min, tls_at), tls_all = b.ratio("tls")
    (br_min, br_at), br_all = b.ratio("bridge")
    sub_min = min((r["ratio"] for r in b.subrows), default=None)
    say("mqtt-e2e benchmark (%s run), %.0f s" % (b.cfg["name"], elapsed))
    with open(os.path.join(out, "machine.txt")) as f:
        say(f.read().rstrip())
    say("load at end: " + open("/proc/loadavg").read().strip())
    steal = [r["steal_pct"] for r in b.tput + b.lat if r.get("steal_pct", -1) >= 0]
    if steal:
        say("CPU time stolen by the hypervisor during the paths runs: mean %.1f%%, max %.1f%% of "
            "both cores%s" % (sum(steal) / len(steal), max(steal),
                              " (a busy host: expect noisy tails)" if max(steal) > 5 else ""))
    say("")
    if b.tput:
        say("Throughput (msg/s received by the subscriber at the broker, saturating publishers)")
        say("%-4s %6s %4s %9s %9s %9s %9s %9s %9s  %s" % (
            "qos", "size", "pubs", "plain", "tls", "bridge", "proxy", "prx/tls", "prx/brg",
            "bottleneck (proxy path | tls path)"))
        for r in (x for x in b.tput if x["path"] == "proxy"):
            k = {a: r[a] for a in ("qos", "size", "pubs")}
            v = {p: cell(b.tput, path=p, **k) for p in PATHS}
            t = {p: (v[p]["msgs_per_s"] if v[p] else None) for p in PATHS}
            say("%-4d %6d %4d %9s %9s %9s %9s %9s %9s  %s | %s" % (
                r["qos"], r["size"], r["pubs"], f2(t["plain"], 0), f2(t["tls"], 0),
                f2(t["bridge"], 0), f2(t["proxy"], 0),
                f2(t["proxy"] / t["tls"] if t["tls"] else None),
                f2(t["proxy"] / t["bridge"] if t["bridge"] else None), r["bottleneck"],
                v["tls"]["bottleneck"] if v["tls"] else "-"))
        say("")
    p50_miss, p99_miss = [], []
    if b.lat:
        say("Latency (us, messages sent at a fixed rate = min(%d, half the slowest path's "
            "throughput); p50/p99/p99.9)" % b.cfg["lat_rate_max"])
        say("%-4s %6s %4s %6s  %-20s %-20s %-20s %-20s" % ("qos", "size", "pubs", "rate",
                                                           "plain", "tls", "bridge", "proxy"))
        for r in (x for x in b.lat if x["path"] == "proxy"):
            k = {a: r[a] for a in ("qos", "size", "pubs")}
            v = {p: cell(b.lat, path=p, **k) for p in PATHS}
            say("%-4d %6d %4d %6d  %s" % (r["qos"], r["size"], r["pubs"], r["rate"], " ".join(
                "%-20s" % ("%.0f/%.0f/%.0f" % (v[p]["p50_us"], v[p]["p99_us"], v[p]["p999_us"])
                           if v[p] else "-") for p in PATHS)))
            if v["tls"] and r["p50_us"] > v["tls"]["p50_us"] + GOALS["p50_over_tls_us"]:
                p50_miss.append((r, r["p50_us"] - v["tls"]["p50_us"]))
            if v["bridge"] and r["p99_us"] > v["bridge"]["p99_us"]:
                p99_miss.append((r, r["p99_us"], v["bridge"]["p99_us"]))
        say("")
    cpu = [r for r in b.cpurows if r["path"] in ("proxy", "bridge")]
    if cpu:
        say("Relay CPU per message (us; the relay's utime+stime / messages; broker in brackets)")
        for mode in ("fixed rate", "saturated"):
            for r in (x for x in cpu if x["mode"] == mode and x["path"] == "proxy"):
                br = cell(cpu, mode=mode, path="bridge", qos=r["qos"], size=r["size"],
                          pubs=r["pubs"])
                say("  %-10s QoS %d %5d B %3d pubs at %7.0f/s: proxy %6s [%s]  bridge %6s [%s]" % (
                    mode, r["qos"], r["size"], r["pubs"], r["msgs_per_s"],
                    f2(r["relay_us_per_msg"], 1), f2(r["broker_us_per_msg"], 1),
                    f2(br["relay_us_per_msg"], 1) if br else "-",
                    f2(br["broker_us_per_msg"], 1) if br else "-"))
        say("")
    if b.subrows:
        say("Subscriber: e2e_client app vs plain Paho, same stream (messages per CPU second)")
        for r in b.subrows:
            say("  QoS %d %5d B at %d/s: e2e %.2f us/msg (%d msgs, %d not delivered), plain "
                "%.2f us/msg (%d msgs): ratio %.3f" % (
                    r["qos"], r["size"], r["rate"], r["e2e_us_per_msg"], r["e2e_msgs"],
                    r["e2e_other"], r["plain_us_per_msg"], r["plain_msgs"], r["ratio"]))
        say("")
    if b.idlerows:
        say("Idle publishers held by one proxy (VmRSS of the proxy)")
        for r in b.idlerows:
            say("  %6d connected (%d failed): %8d KiB, %5s fds, broker %s KiB, %s KiB/conn, %.1f s" % (
                r["connections"], r["failed"], r["proxy_rss_kib"], r["proxy_fds"],
                r["broker_rss_kib"], f2(r["kib_per_conn"], 1), r["seconds"]))
        chk = getattr(b, "idle_check", None)
        say("  with all held: relay check (1 publisher, QoS 1, 1000/s) %s; dropped by proxy: %s; "
            "proxy alive: %s; RSS after close %s KiB" % (
                "p50 %.0f us p99 %.0f us, lost %d" % (chk["p50_us"], chk["p99_us"], chk["lost"])
                if chk else "FAILED", getattr(b, "idle_dropped", "?"),
                getattr(b, "idle_alive", "?"), getattr(b, "idle_after", "?")))
        say("")
    if b.keyrows:
        say("Key service")
        for r in b.keyrows:
            if "sent" not in r:
                say("  %-45s %8.0f requests/s" % (r["case"], r["delivered_per_s"]))
                continue
            say("  %-28s offered %3d/s: sent %d, delivered %d (%.1f/s), refused %d (rate %d), "
                "unanswered %d, p50 %.1f ms p99 %.1f ms; flood %.0f/s; proxy CPU %.0f%%, RSS %d KiB%s" % (
                    r["case"], r["offered_per_s"], r["sent"], r["delivered"], r["delivered_per_s"],
                    r["refused"], r["refused_rate"], r["unanswered"], r["p50_ms"], r["p99_ms"],
                    r["flood_per_s"], r["proxy_cpu_pct"], r["proxy_rss_kib"] or 0,
                    "; data path p50 %.0f us p99 %.0f us" % (r["data_p50_us"], r["data_p99_us"])
                    if r["data_p50_us"] != "" else ""))
        say("")
    prof = os.path.join(out, "profile.csv")
    if os.path.exists(prof):
        say("Profile (per message): see profile.csv and profile_*.txt")
        with open(prof) as f:
            for line in list(f)[1:]:
                say("  " + line.strip())
        say("")
    say("Goals (ratios: minimum over QoS 0/1 x 64 B, 1 KiB x publisher counts; latency: "
        "every cell)")
    goal = lambda ok: "met" if ok else "MISSED"
    if tls_min is not None:
        say("  proxy_vs_tls    %.3f >= %.2f: %s (worst: QoS %d %d B %d pubs; median %.3f)" % (
            tls_min, GOALS["proxy_vs_tls"], goal(tls_min >= GOALS["proxy_vs_tls"]), tls_at["qos"], tls_at["size"], tls_at["pubs"],
            median([x for x, _ in tls_all])))
    if br_min is not None:
        say("  proxy_vs_bridge %.3f >= %.2f: %s (worst: QoS %d %d B %d pubs; median %.3f)" % (
            br_min, GOALS["proxy_vs_bridge"], goal(br_min >= GOALS["proxy_vs_bridge"]), br_at["qos"], br_at["size"], br_at["pubs"],
            median([x for x, _ in br_all])))
    if b.lat:
        say("  p50 <= direct TLS + 100 us: %s (%d of %d cells over%s)" % (
            goal(not p50_miss), len(p50_miss), len(b.lat) // len(PATHS), "".join(
                "; QoS %d %d B %d pubs +%.0f us" % (r["qos"], r["size"], r["pubs"], d)
                for r, d in p50_miss[:6])))
        say("  p99 <= bridge p99: %s (%d of %d cells over%s)" % (
            goal(not p99_miss), len(p99_miss), len(b.lat) // len(PATHS), "".join(
                "; QoS %d %d B %d pubs %.0f > %.0f" % (r["qos"], r["size"], r["pubs"], x, y)
                for r, x, y in p99_miss[:6])))
    if b.kb_per_conn is not None:
        say("  kb_per_conn     %.1f KiB <= 40 at %d connections: %s" % (
            b.kb_per_conn, getattr(b, "idle_n", 0), goal(b.kb_per_conn <= 40)))
    if sub_min is not None:
        say("  sub_vs_plain    %.3f >= %.2f: %s" % (sub_min, GOALS["sub_vs_plain"],
                                                   goal(sub_min >= GOALS["sub_vs_plain"])))
    rot = getattr(b, "rot_ratio", None)
    if getattr(b, "rot_note", None):
        say("  rot_p99_ratio   %s <= %.1f: %s (%s)" % (
            f2(rot, 3), GOALS["rot_p99_ratio"],
            "n/a" if rot is None else goal(rot <= GOALS["rot_p99_ratio"]), b.rot_note))
    if b.errors:
        say("")
        say("ERRORS:")
        lines.extend("  " + e.replace("\n", "\n    ") for e in b.errors)
    plots = plot(b, out)
    say("")
    say("plots: " + (", ".join(plots) if plots else "none" if shutil.which("gnuplot") else
                     "none (gnuplot not installed: apt-get install gnuplot-nox)"))
    text = "\n".join(lines)
    with open(os.path.join(out, "summary.txt"), "w") as f:
        f.write(text + "\n")
    print(text, flush=True)
    ncells = len(b.lat) // len(PATHS)
    b.result_line = ("RESULT proxy_vs_tls=%s proxy_vs_bridge=%s kb_per_conn=%s sub_vs_plain=%s "
                     "p50_over=%s p99_over=%s rot_p99_ratio=%s" % (
                         f2(tls_min, 3), f2(br_min, 3), f2(b.kb_per_conn, 1), f2(sub_min, 3),
                         len(p50_miss) if ncells else "n/a", len(p99_miss) if ncells else "n/a",
                         f2(rot, 3)))


def median(v):
    v = sorted(v)
    n = len(v)
    return (v[n // 2] + v[(n - 1) // 2]) / 2.0 if v else float("nan")


# ---- plots -----------------------------------------------------------------

def gnuplot(out, name, script):
    gp = os.path.join(out, name + ".gp")
    with open(gp, "w") as f:
        # noenhanced: names such as proxy_vs_tls are text, not subscripts.
        f.write("set terminal pngcairo noenhanced size %s font 'DejaVu Sans,9'\n"
                "set output '%s.png'\n" % (script[0], name) + script[1])
    r = subprocess.run(["gnuplot", gp], cwd=out, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("gnuplot %s: %s" % (name, r.stderr.decode(errors="replace")[-400:]))
    os.unlink(gp)
    return name + ".png"


def dat(out, name, header, rows):
    with open(os.path.join(out, name), "w") as f:
        f.write("# " + " ".join(header) + "\n")
        for r in rows:
            f.write(" ".join("NaN" if v is None or v == "" else str(v) for v in r) + "\n")
    return name


def bars(out, name, width, ylabel, title, first, second, rows, extra=""):
    """Clustered bars: rows of (label, first value, second value)."""
    fn = dat(out, name + ".dat", ["case", first[0], second[0]],
             [("\"%s\"" % lab, x, y) for lab, x, y in rows])
    png = gnuplot(out, name, ("%d,360" % width,
        "set style data histograms\nset style fill solid 0.8 border -1\nset grid y\n"
        "set key outside top center horizontal\n" + extra +
        "set yrange [0:*]\nset ylabel '%s'\nset title '%s'\n"
        "plot '%s' u 2:xtic(1) t '%s' lc rgb '%s', '' u 3 t '%s' lc rgb '%s'\n" % (
            ylabel, title, fn, first[0], first[1], second[0], second[1])))
    os.unlink(os.path.join(out, fn))
    return png


def plot(b, out):
    if not shutil.which("gnuplot"):
        return []
    made, tmp = [], []
    sizes = sorted({r["size"] for r in b.tput})
    pubs = sorted({r["pubs"] for r in b.tput})
    style = "set style line 1 lc rgb '#777777' lw 2 pt 7\nset style line 2 lc rgb '#1f77b4' lw 2 pt 5\n" \
            "set style line 3 lc rgb '#ff7f0e' lw 2 pt 9\nset style line 4 lc rgb '#d62728' lw 2 pt 11\n" \
            "set grid\nset key at screen 0.5,0.04 center center horizontal maxrows 1 font ',8' samplen 2\n" \
            "set bmargin 6\nset logscale x\nset xrange [0.7:%d]\n" \
            "set xtics (%s)\nset xlabel 'publishers'\n" % (
                int(max(pubs or [1]) * 1.5), ",".join(str(p) for p in pubs))
    for qos in sorted({r["qos"] for r in b.tput}):
        for what, rows, keys in (("throughput", b.tput, ("msgs_per_s",)),
                                 ("latency", b.lat, ("p50_us", "p99_us"))):
            if not rows:
                continue
            s = style + "set multiplot layout 1,%d title '%s, QoS %d'\n" % (
                len(sizes), "Throughput (msg/s)" if what == "throughput" else
                "Latency at a fixed rate (us): p50 solid, p99 dashed", qos)
            s += "set logscale y\n" if what == "latency" else "set yrange [0:*]\n"
            for si, size in enumerate(sizes):
                data = []
                for n in pubs:
                    row = [n]
                    for k in keys:
                        for p in PATHS:
                            c = cell(rows, path=p, qos=qos, size=size, pubs=n)
                            row.append(c[k] if c else None)
                    data.append(row)
                fn = dat(out, "%s_q%d_%d.dat" % (what, qos, size), ["pubs"] + [
                    "%s_%s" % (k, p) for k in keys for p in PATHS], data)
                tmp.append(fn)
                curves = []
                for ki, k in enumerate(keys):
                    for pi, p in enumerate(PATHS):
                        curves.append("'%s' u 1:%d w lp ls %d %s t '%s'" % (
                            fn, 2 + ki * len(PATHS) + pi, pi + 1, "dt 2" if ki else "",
                            # One legend for all panels, under them (placed on the screen,
                            # so no panel shrinks), not one over every panel's axis.
                            TITLE[p] if ki == 0 and si == 0 else ""))
                s += ("" if si == 0 else "unset key\n") + "set title '%s'\nplot %s\n" % (
                    "%d B" % size if size < 1024 else "%d KiB" % (size // 1024), ", ".join(curves))
            s += "unset multiplot\n"
            made.append(gnuplot(out, "%s_qos%d" % (what, qos), ("%d,380" % (260 * len(sizes) + 60), s)))
    if b.idlerows:
        fn = dat(out, "idle.dat", ["conns", "proxy_mib"], [
            (r["connections"], r["proxy_rss_kib"] / 1024.0) for r in b.idlerows])
        tmp.append(fn)
        made.append(gnuplot(out, "idle_rss", ("640,360",
            "set grid\nset key top left\nset xlabel 'idle publisher connections'\n"
            "set ylabel 'RSS (MiB)'\nset title 'Memory with idle publishers (proxy: %s KiB each)'\n"
            "plot '%s' u 1:2 w lp lw 2 pt 7 t 'e2e-proxy VmRSS'\n" % (f2(b.kb_per_conn, 1), fn))))
    if b.subrows:
        made.append(bars(out, "sub_vs_plain", 640, "subscriber CPU per message (us)",
                         "e2e_client (verify, decrypt, verdict) vs plain Paho",
                         ("e2e_client", "#d62728"), ("plain Paho", "#777777"), [
                             ("QoS%d/%dB" % (r["qos"], r["size"]), r["e2e_us_per_msg"],
                              r["plain_us_per_msg"]) for r in b.subrows]))
    cpu = [r for r in b.cpurows if r["mode"] == "fixed rate" and r["path"] == "proxy"]
    if cpu:
        rows = []
        for r in cpu:
            br = cell(b.cpurows, mode="fixed rate", path="bridge", qos=r["qos"], size=r["size"],
                      pubs=r["pubs"])
            rows.append(("Q%d %s %dp" % (r["qos"], "%dB" % r["size"] if r["size"] < 1024 else
                                            "%dK" % (r["size"] // 1024), r["pubs"]),
                         r["relay_us_per_msg"], br["relay_us_per_msg"] if br else None))
        made.append(bars(out, "cpu_per_msg", max(640, 40 * len(rows)),
                         "relay CPU per message (us)", "Relay CPU per message at the latency "
                         "rate: e2e-proxy vs bridging mosquitto", ("e2e-proxy", "#d62728"),
                         ("bridge mosquitto", "#ff7f0e"), rows, "set xtics rotate by -45 font ',7'\n"))
    sd = getattr(b, "sdrows", [])
    if sd:
        rows = []
        for k in ("p50_us", "p99_us"):
            v = {c: median([r[k] for r in sd if r["case"] == c])
                 for c in ("normal", "slow-fsync-rotate-1s")}
            rows.append((k[:3] + " (median of windows)", v["normal"], v["slow-fsync-rotate-1s"]))
        made.append(bars(out, "rotation_slow_fsync", 640, "relay latency (us)",
                         "QoS 1, 64 B, 1 publisher at a fixed rate: rot_p99_ratio %s" %
                         f2(getattr(b, "rot_ratio", None), 2),
                         ("no rotation, plain fsync", "#777777"),
                         ("rotation every 1 s, fsync +100 ms", "#d62728"), rows))
    for fn in tmp:
        os.unlink(os.path.join(out, fn))
    return made
