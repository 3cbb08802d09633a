#!/usr/bin/python3
"""Many senders on the 3-node RabbitMQ cluster: the figures of
docs/performance.md's "Many senders" (issue 17 item 3).

The set-up of tests/cluster/many.py (manylib.Many): 10 e2e-proxies with 100
publishers each (mqttload), proxies on nodes 1 and 2, 2 e2e-subs of '#' on
node 3. For each offered rate (msg/s per proxy, fixed, spread over its 100
publishers) it measures, per subscriber and in steady state:
  * messages/s end to end (the subscriber's OK count over time, from its
    Prometheus metrics),
  * CPU per message (utime + stime from /proc/<pid>/stat, over the same
    span, divided by the messages),
  * RSS (max of the /proc samples),
then rotates all ten senders at once (e2e-keytool rotate on every state
dir, in parallel) --storms times and counts the key requests on the
control topic in the following seconds (a spy on node 3, and the proxies'
own key-service counters).

  E2E_BUILD=build E2E_MQTTLOAD=build/tests/cluster/mqttload-many \\
    /usr/bin/python3 tests/bench/manysenders.py --out /tmp/ms --docs docs

Writes OUT/manysenders.json, OUT/manysenders.dat, OUT/many-senders.png (and
copies the PNG to --docs), and prints the Markdown rows for the doc.
--quick (meson's 'bench' suite): one short step and one storm; asserts no
figure, proves the bench runs end to end. Exit 77 without rabbitmq-server.
"""

import argparse
import os
import shutil
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proxy_it"))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
import manylib as ml  # noqa: E402
import rabbit  # noqa: E402
import benchreport  # noqa: E402  (gnuplot helper, as scripts/bench draws)

h = ml.h


def step(m, rate, duration):
    """One offered rate; returns a row dict."""
    before = {s.name: ml.verdicts(ml.metrics(s.mport)).get("OK", 0) for s in m.subs}
    mon = ml.Monitor(m.subs, step=0.5)
    runs = m.load(rate, duration)
    sent = sum(int(r.get("sent", 0)) for r in runs)
    for s in m.subs:
        h.wait_until(lambda: ml.verdicts(ml.metrics(s.mport)).get("OK", 0) - before[s.name] >=
                     sent, 60, step=0.5)
    time.sleep(1.0)
    mon.stop()
    row = {"rate_per_proxy": rate, "offered": rate * len(m.proxies), "sent": sent,
           "loadavg": os.getloadavg()[0],
           "gen_ok": all(r.get("rc") == 0 and r.get("lost", 1) == 0 and r.get("bad", 1) == 0
                         for r in runs), "subs": {}}
    for s in m.subs:
        v = ml.verdicts(ml.metrics(s.mport))
        tput, cpu = ml.steady_rate(mon.samples[s.name])
        row["subs"][s.name] = {
            "tput": tput, "cpu_us": cpu * 1e6 if cpu is not None else None,
            "rss_kib": mon.max_rss(s.name), "ok": v.get("OK", 0) - before[s.name],
            "bad": {k: v.get(k, 0) for k in ml.BAD},
            "caught_up_s": catch_up(mon.samples[s.name], before[s.name],
                                    before[s.name] + sent)}
        cu = row["subs"][s.name]["caught_up_s"]
        # End to end over the whole step: every message of the step, from
        # the first arrival to the last (a subscriber that falls behind
        # takes longer than the generators sent for).
        row["subs"][s.name]["avg"] = sent / cu if cu else None
        h.log("rate %d/proxy: %s %s" % (rate, s.name, row["subs"][s.name]))
    return row


def catch_up(samples, base, target):
    """Seconds from the first growth of the OK count past the probes (each
    generator's first message or few, sent while its 100 connections are
    still being made) to reaching target."""
    first = next((x[0] for i, x in enumerate(samples) if i and x[1] > base + 50 and
                  x[1] > samples[i - 1][1]), None)
    done = next((x[0] for x in samples if x[1] >= target), None)
    return None if first is None or done is None else done - first


def storm(m, settle):
    k0 = m.proxy_key_requests()
    n, per, last, got_all = m.storm(settle=settle)
    k1 = m.proxy_key_requests()
    pairs = len(m.proxies) * len(m.subs)
    r = {"requests": n, "pairs": pairs, "senders": len(m.proxies), "per_pair": n / pairs, "last_s": last,
         "proxy_requests": k1 - k0, "all_new_keys": got_all,
         "max_per_sender": max(per.values(), default=0)}
    h.log("storm: %s" % r)
    return r


def plot(out, rows):
    names = sorted(rows[0]["subs"]) if rows else []
    data = []
    for r in rows:
        tp = [r["subs"][n]["avg"] for n in names]
        cu = [r["subs"][n]["cpu_us"] for n in names]
        data.append((r["offered"], sum(x for x in tp if x) / max(1, len(tp)),
                     sum(x for x in cu if x) / max(1, len(cu))))
    fn = benchreport.dat(out, "manysenders.dat", ["offered", "delivered_per_sub", "cpu_us"], data)
    return benchreport.gnuplot(out, "many-senders", ("720,360",
        "set grid\nset key top left\nset xlabel 'offered msg/s (10 proxies x 100 publishers)'\n"
        "set ylabel 'msg/s delivered OK per subscriber'\nset y2label 'subscriber CPU us/msg'\n"
        "set y2tics\nset ytics nomirror\nset yrange [0:*]\nset y2range [0:*]\n"
        "set title 'Many senders on a 3-node RabbitMQ cluster: 2 e2e-subs of #'\n"
        "plot '%s' u 1:2 w linespoints lw 2 t 'e2e-sub msg/s', "
        "'' u 1:1 w lines dt 2 t 'offered', "
        "'' u 1:3 axes x1y2 w linespoints t 'e2e-sub CPU us/msg'\n" % fn))


def markdown(res):
    out = ["| offered msg/s | e2e-sub msg/s end to end (each) | steady-state slope | "
           "CPU µs/msg | RSS MiB | all in after (s) |", "|---:|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        ss = list(r["subs"].values())

        def rng(k, f="%.0f"):
            v = [s[k] for s in ss if s[k] is not None]
            return "n/a" if not v else " / ".join(f % x for x in v)
        out.append("| %d | %s | %s | %s | %s | %s |" % (
            r["offered"], rng("avg"), rng("tput"), rng("cpu_us", "%.1f"),
            " / ".join("%.1f" % (s["rss_kib"] / 1024.0) for s in ss if s["rss_kib"]),
            rng("caught_up_s", "%.1f")))
    out += ["", "| storm | key requests | per subscriber-sender pair | last request after (s) | "
            "checked by each key service |", "|---:|---:|---:|---:|---:|"]
    for i, s in enumerate(res["storms"], 1):
        out.append("| %d | %d | %.2f | %.1f | %d |" % (i, s["requests"], s["per_pair"],
                                                       s["last_s"], s["proxy_requests"] // max(1, s["senders"])))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.environ.get("E2E_BUILD", "build"),
                                                  "many-senders"))
    ap.add_argument("--docs", help="copy the PNG into this directory")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rates", default="50,100,200,300", help="msg/s per proxy")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--storms", type=int, default=3)
    ap.add_argument("--prefetch", type=int, default=100)
    a = ap.parse_args()
    why = rabbit.available()
    if why:
        print("SKIP: " + why, flush=True)
        sys.exit(77)
    rates = [int(x) for x in a.rates.split(",")]
    if a.quick:
        rates, a.duration, a.storms = [50], 4.0, 1
    os.makedirs(a.out, exist_ok=True)
    env = h.Env("many-bench")
    failed = True
    t0 = time.monotonic()
    try:
        cl = rabbit.Cluster(env, extra_conf=["mqtt.prefetch = %d" % a.prefetch])
        m = ml.Many(env, cl)
        miss = m.keys_from_all(40)
        if miss:
            raise h.TestFailure("keys missing: %s" % miss)
        res = {"prefetch": a.prefetch, "duration": a.duration, "rows": [], "storms": [],
               "machine": {"cpus": os.cpu_count(), "load": os.getloadavg()}}
        for r in rates:
            res["rows"].append(step(m, r, a.duration))
        for _ in range(a.storms):
            time.sleep(2.0)
            res["storms"].append(storm(m, 10.0))
        ml.dump(os.path.join(a.out, "manysenders.json"), res)
        png = None
        if shutil.which("gnuplot") and len(res["rows"]) > 1:
            png = plot(a.out, res["rows"])
            if a.docs:
                shutil.copy(os.path.join(a.out, png), os.path.join(a.docs, png))
        print(markdown(res))
        print("RESULT many_senders rows=%d storms=%d plot=%s (%.0f s)" % (
            len(res["rows"]), len(res["storms"]), png, time.monotonic() - t0), flush=True)
        failed = not all(r["gen_ok"] for r in res["rows"])
    except h.TestFailure as e:
        print("FAILED: %s" % e, flush=True)
    finally:
        env.cleanup(failed)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
