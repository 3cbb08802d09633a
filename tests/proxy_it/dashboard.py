#!/usr/bin/python3
"""The shipped Grafana dashboard, drawn from a real Prometheus scrape.

No Grafana here (it is not in Debian), so this test draws the dashboard
itself: it runs mosquitto, e2e-proxy and e2e-sub with --metrics-listen,
a real Prometheus scraping both every second, and about 45 s of traffic
with the events the panels are for (QoS 0/1/2 publishes, a key rotation, a
refused subscriber, forged and malformed messages at the broker). Then,
for every panel of dist/grafana/mqtt-e2e-dashboard.json, it runs the
panel's own PromQL (the $proxy / $subscriber variables matching every
instance, the rate windows shortened to fit the run) through
/api/v1/query_range or /api/v1/query and draws it with gnuplot in the
dashboard's grid: a time series per target, a stat as a number.

Checks: every time-series panel got data, every stat a value; the picture
was written. With E2E_DASHBOARD_PNG=FILE the picture is also copied there
(scripts/test does not; docs/monitoring-dashboard.png was made that way).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metrics as pm_test  # noqa: E402  (its Prometheus helper)
import proxyharness as ph  # noqa: E402

h = ph.h
RUN_S = 45
WINDOWS = {"1m": "10s", "5m": "15s", "1h": "60s"}   # rate windows that fit a 45 s run


def panel_query(expr):
    """The panel's PromQL for this run: every instance, short windows."""
    expr = re.sub(r'instance=~"\$\w+"', 'instance=~".+"', expr)
    return re.sub(r"\[(1m|5m|1h)\]", lambda m: "[%s]" % WINDOWS[m.group(1)], expr)


def series_name(metric, legend):
    """Grafana's legendFormat ({{label}}), or the labels themselves."""
    if legend:
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(metric.get(m.group(1), "")), legend)
    labels = ", ".join("%s=%s" % kv for kv in sorted(metric.items()) if kv[0] != "__name__")
    return labels or "value"


def draw(out_png, tmpdir, panels, t0):
    """panels: (title, kind, data): kind 'ts' with [(name, [(t, v)])], or 'stat' with a value."""
    cols = 3
    ts_panels = [p for p in panels if p[1] == "ts"]
    stats = [p for p in panels if p[1] == "stat"]
    rows = (len(ts_panels) + cols - 1) // cols + 1
    gp = ["set terminal pngcairo noenhanced size %d,%d font 'DejaVu Sans,9'" % (
        cols * 420, rows * 250), "set output '%s'" % out_png,
        "set multiplot layout %d,%d title 'mqtt-e2e dashboard (dist/grafana), drawn from a real "
        "Prometheus scrape of e2e-proxy and e2e-sub' font ',11'" % (rows, cols),
        "set grid", "set key top left font ',7' samplen 1", "set xlabel 's'",
        "set yrange [0:*]"]
    for i, (title, _k, series) in enumerate(ts_panels):
        fn = os.path.join(tmpdir, "panel%d.dat" % i)
        with open(fn, "w") as f:
            for name, pts in series:
                f.write("# %s\n" % name)
                for t, v in pts:
                    f.write("%.1f %s\n" % (t - t0, v))
                f.write("\n\n")
        plots = ", ".join("'%s' index %d u 1:2 w l lw 2 t '%s'" % (
            fn, j, name.replace("'", "")[:40]) for j, (name, _p) in enumerate(series))
        gp += ["set title '%s'" % title.replace("'", ""), "plot %s" % plots]
    # The stats, side by side in the last row.
    for k in range((len(ts_panels) % cols and cols - len(ts_panels) % cols) or 0):
        gp += ["set multiplot next"]
    text = "   ".join("%s: %s" % (title, ("%g" % v) if v is not None else "-")
                      for title, _k, v in stats)
    gp += ["unset border", "unset tics", "unset xlabel", "unset grid", "unset key",
           "set title 'stats'", "set label 1 '%s' at screen 0.02, screen %f font ',11'" % (
               text.replace("'", ""), 0.5 / rows),
           "plot [0:1][0:1] NaN t ''", "unset multiplot"]
    script = os.path.join(tmpdir, "dashboard.gp")
    with open(script, "w") as f:
        f.write("\n".join(gp) + "\n")
    return subprocess.run(["gnuplot", script], capture_output=True, timeout=60)


def body(env, c):
    c.require(shutil.which("gnuplot"), "gnuplot is installed (scripts/lib/deps.sh)")
    src = os.environ.get("E2E_SRC", os.path.join(ph.HERE, "..", ".."))
    dash = json.load(open(os.path.join(src, "dist", "grafana", "mqtt-e2e-dashboard.json")))
    broker = ph.Mosquitto(env)
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["sensors/#"])])
    alice = h.Subscriber(env, "alice", trust=[s])
    mallory = h.Subscriber(env, "mallory", trust=[s])
    s.enroll(alice, ["telemetry"])
    mp, ms = h.free_port(), h.free_port()
    px = ph.Proxy(env, broker.addr(), ["--cafile", broker.pki["ca_crt"], "--dir", s.dir,
                                       "--summary-interval", "2s",
                                       "--metrics-listen", "127.0.0.1:%d" % mp])
    sa = h.start_sub(env, broker, alice, ["sensors/#"], name="sub-alice", qos=1,
                     args=["--state", "none", "--metrics-listen", "127.0.0.1:%d" % ms])
    c.require(sa.wait_err(h.EV_KEY, 15), "alice got the key")
    prom = pm_test.Prometheus(env, [("e2e-proxy", "127.0.0.1:%d" % mp),
                                    ("e2e-sub", "127.0.0.1:%d" % ms)],
                              os.path.join(src, "dist", "prometheus", "e2e-alerts.yml"))
    c.require(h.wait_until(lambda: prom.query("up{job='e2e-sub'}") == 1, 20, step=0.5),
              "Prometheus scrapes both")
    pub = ph.PahoPub(env, px.port, "dash-pub")
    t0 = time.time()
    i = 0
    events = {10: "rotate", 20: "mallory", 30: "bad"}
    while time.time() - t0 < RUN_S:
        sec = int(time.time() - t0)
        ev = events.pop(sec, None)
        if ev == "rotate":
            s.rotate("telemetry")
        elif ev == "mallory":
            h.start_sub(env, broker, mallory, ["sensors/#"], name="sub-mallory",
                        args=["--state", "none"])
        elif ev == "bad":
            bad = os.path.join(env.dir, "forged.bin")
            with open(bad, "wb") as f:
                f.write(h.craft_envelope(os.urandom(32), "sensors/forged", s.sender_id, 1,
                                         s.current_epoch(1), 777, b"forged"))
            for k in range(3):
                h.run(env, "pub-forged", [ph.MOSQ_PUB] + broker.tls_args() + [
                    "-t", "sensors/forged", "-f", bad, "-q", "1"])
            h.run(env, "pub-malformed", [ph.MOSQ_PUB] + broker.tls_args() + [
                "-t", "sensors/malformed", "-m", "not an envelope", "-q", "1"])
        # A steady load that grows: ~20 to ~60 messages a second, QoS 0, 1, 2.
        for _ in range(1 + sec // 15):
            for qos in (0, 1, 2):
                pub.publish("sensors/line%d" % qos, "reading %d" % i, qos=qos)
                i += 1
        time.sleep(0.05)
    time.sleep(3)   # the last scrapes
    t1 = time.time()

    panels = []
    for p in dash.get("panels", []):
        kind = {"timeseries": "ts", "stat": "stat"}.get(p.get("type"))
        if not kind:
            continue
        if kind == "stat":
            expr = panel_query(p["targets"][0]["expr"])
            d = prom.api("/api/v1/query", query=expr)
            v = float(d["result"][0]["value"][1]) if d and d.get("result") else None
            panels.append((p["title"], "stat", v))
            c.expect(v is not None, "stat '%s' has a value (%s)" % (p["title"], v))
            continue
        series = []
        for tg in p.get("targets", []):
            d = prom.api("/api/v1/query_range", query=panel_query(tg["expr"]), start="%.0f" % t0,
                         end="%.0f" % t1, step="2")
            for r in (d or {}).get("result", []):
                pts = [(float(t), float(v)) for t, v in r["values"] if v not in ("NaN", "+Inf")]
                if pts:
                    series.append((series_name(r["metric"], tg.get("legendFormat")), pts))
        panels.append((p["title"], "ts", series))
        c.expect(series, "panel '%s' has data (%d series)" % (p["title"], len(series)))
    out = os.path.join(env.dir, "dashboard.png")
    r = draw(out, env.dir, panels, t0)
    c.expect(r.returncode == 0 and os.path.getsize(out) > 10000,
             "gnuplot drew the dashboard (%s)" % r.stderr.decode(errors="replace")[-300:])
    dest = os.environ.get("E2E_DASHBOARD_PNG")
    if dest and os.path.exists(out):
        shutil.copyfile(out, dest)
        h.log("dashboard picture copied to %s" % dest)
    pub.close() if hasattr(pub, "close") else None


if __name__ == "__main__":
    h.main("proxy-dashboard", body)
