#!/usr/bin/python3
"""Keys ahead of rotation, measured (issue 17.4; docs/performance.md).

Real processes on 127.0.0.1: mosquitto (plain listener, logging errors only),
e2e-proxy with rotate-age AGE and rotate-lead LEAD relaying to it, and
tests/bench/aheadbench: N real libe2e-client subscriber sessions in one
process (each its own MQTT connection, identity, enrollment, key fetch, key
ring and replay window). A paho publisher sends RATE messages/s through the
proxy, each carrying its send time, for DURATION seconds: several scheduled
rotations. The rotations are found in the data (the first message of each
new epoch). Side by side: the p99 of the messages sent within WINDOW ms of
each rotation, and the p99 of a steady window as wide midway to the next
rotation (pooled: ratio; per rotation: ratio_min/median/max). A probe
subscriber on the broker logs, per switch, when the envelope left the proxy
and which control messages went out around it.

Checks (the test fails otherwise; the latency ratio only with E2E_AHEAD_STRICT=1, since it
scatters with the host's load): every subscriber got every message, no
message was held for a key, no key request at a rotation (the only requests
after each session's first fetch are the refreshes a delivery schedules,
spread over its refresh window, counted apart), and the p99 latency across
the rotations is within 1.2x the steady state's.
Prints one line: RESULT n=... msgs=... rotations=... held=... requests_at_rotation=...
p50/p99_all_ms p50/p99_steady_ms p50/p99_rotation_ms ratio ratio_min ratio_median ratio_max
switch_vs_before_median/max (p99 of each epoch's first message over the one
before it: the switch's own cost) announces load1 (the host's 1-minute load
average at the end).

Environment: E2E_AHEAD_N (1000), E2E_AHEAD_RATE (10), E2E_AHEAD_SECONDS (42),
E2E_AHEAD_AGE (5), E2E_AHEAD_LEAD (35), E2E_AHEAD_WINDOW_MS (1000), E2E_AHEAD_SAMPLES
(a path: keep the samples there).
"""
import os
import resource
import shutil
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proxy_it"))
import proxyharness as ph  # noqa: E402

h = ph.h
N = int(os.environ.get("E2E_AHEAD_N", "1000"))
RATE = int(os.environ.get("E2E_AHEAD_RATE", "10"))
SECONDS = float(os.environ.get("E2E_AHEAD_SECONDS", "42"))
AGE = int(os.environ.get("E2E_AHEAD_AGE", "5"))
LEAD = int(os.environ.get("E2E_AHEAD_LEAD", "35"))
WINDOW_MS = int(os.environ.get("E2E_AHEAD_WINDOW_MS", "1000"))


def pct(xs, p):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


class Probe:
    """One raw paho subscriber on the broker itself: when each envelope left
    the proxy (its k-th message on sensors/a is seq k: one QoS 1 publisher,
    in order) and when each ANNOUNCE and summary went out. Tells a delay
    at the sender from one in the fan-out to the N sessions."""

    def __init__(self, port):
        import paho.mqtt.client as mqtt
        self.lock = threading.Lock()
        self.data = []              # arrival time (unix ns) of seq 1, 2, ...
        self.control = []           # (arrival unix ns, payload length)
        self.c = mqtt.Client(client_id="ahead-probe", protocol=mqtt.MQTTv311)
        self.c.on_message = self._on_message
        self.c.connect(ph.LOCAL, port, keepalive=30)
        self.c.subscribe([("sensors/#", 0), ("e2e/control/+", 0)])
        self.c.loop_start()

    def _on_message(self, _c, _u, m):
        t = time.time_ns()
        with self.lock:
            if m.topic.startswith("sensors/"):
                self.data.append(t)
            else:
                d = h.parse_ctl(bytes(m.payload))
                self.control.append((t, d["type"] if d else 0))

    def stop(self):
        self.c.disconnect()
        self.c.loop_stop()


def side_by_side(lat, switch, wseq):
    """p99 of the messages within wseq of each rotation next to the p99 of a
    steady window as wide, centred between that rotation and the next (so
    as far from both as the run allows), pooled over the run."""
    rot, steady, rows = [], [], []
    for a, b in zip(switch, switch[1:]):
        m = (a + b) // 2
        r = [x for q in range(a - wseq, a + wseq + 1) for x in lat.get(q, [])]
        s = [x for q in range(m - wseq, m + wseq + 1) for x in lat.get(q, [])]
        rot += r
        steady += s
        if r and s:
            rows.append((a, pct(r, 99), m, pct(s, 99)))
    return rot, steady, rows


def body(env, c):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * N + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    port = h.free_port()
    conf = os.path.join(env.dir, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write("per_listener_settings false\nallow_anonymous true\npersistence false\n"
                "log_dest file %s\nlog_type error\nlog_type warning\n"
                "max_queued_messages 200000\nlistener %d %s\n%s" % (
                    os.path.join(env.dir, "mosquitto.log"), port, ph.LOCAL,
                    "user root\n" if os.geteuid() == 0 else ""))
    broker = h.Proc(env, "mosquitto", [h.MOSQUITTO, "-c", conf])
    c.require(h.wait_until(lambda: ph.port_open(port), 10), "mosquitto listening")
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["sensors/#"])])
    bench = os.path.join(ph.h._build_dir(), "tests", "bench", "aheadbench")
    work = os.path.join(env.dir, "subs")
    os.mkdir(work)
    t = time.monotonic()
    h.run(env, "aheadbench-setup", [bench, "setup", "--sender-dir", s.dir, "--work", work,
                                    "--n", str(N)], timeout=120)
    h.log("%d subscriber identities enrolled in %.1f s" % (N, time.monotonic() - t))
    px = ph.Proxy(env, "%s:%d" % (ph.LOCAL, port), ["--tls", "no", "--dir", s.dir,
                                                    "--rotate-age", "%ds" % AGE,
                                                    "--rotate-lead", "%ds" % LEAD,
                                                    # Not a multiple of the age: summaries
                                                    # (each session verifies every one) must
                                                    # not all land on rotations.
                                                    "--summary-interval", "7s"], timeout=30)
    t_px = time.monotonic()
    ready = os.path.join(env.dir, "ready")
    out = os.path.join(env.dir, "samples.txt")
    # MALLOC_PERTURB_ (meson sets it to a random byte) makes glibc's calloc
    # write every page of a fresh mmap: each session's summary-check tables,
    # sized for 10,000 msg/s, would then cost 24 MiB at create and 1,000 of
    # them all of the host's 24 GiB (the OOM killer ended the run). A
    # subscriber in service runs without it: measure that.
    subs = h.Proc(env, "aheadbench", [bench, "run", "--port", str(port), "--work", work,
                                      "--n", str(N), "--topic", "sensors/#", "--ready", ready,
                                      "--out", out], stdin=True,
                  extra_env={"MALLOC_PERTURB_": "0"})
    c.require(h.wait_until(lambda: os.path.exists(ready) or not subs.alive(), 300),
              "%d sessions connected and keyed" % N)
    c.require(subs.alive(), "aheadbench running:\n" + subs.tail())
    st0 = (px.stats() or {}).get("key_service", {})
    h.log("keyed; key service: %r" % st0)

    # The keys the proxy made at its start came less than LEAD/2 before
    # their time (their epochs, a second apart from the start's, bound when
    # they were made): their switches are announced (SPEC 11.5). The stream
    # starts once those are past (with AGE 5 s: by 0.75 LEAD), so every
    # rotation it crosses is one made ahead in time, as in service. LEAD
    # 35 s: the refresh window (LEAD/4) spreads 1,000 requests over 8.75 s;
    # with 20 s (5 s) a host at load 75 left them unanswered, retried, and
    # the sessions fell back to held messages and requests at rotations.
    while time.monotonic() < t_px + 0.75 * LEAD + 1.0:
        time.sleep(0.1)
    probe = Probe(port)
    pub = ph.PahoPub(env, px.port, "ahead-pub")
    t0 = time.monotonic()
    seq = 0
    sent = {}
    while time.monotonic() - t0 < SECONDS:
        seq += 1
        sent[seq] = time.time_ns()
        pub.publish("sensors/a", ("%d %d" % (seq, sent[seq])).encode(), qos=1)
        delay = t0 + seq / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    c.require(h.wait_until(lambda: len(pub.acked_set()) >= seq, 15), "every publish acknowledged")
    time.sleep(3.0)
    probe.stop()
    st1 = (px.stats() or {}).get("key_service", {})
    subs.write("%d\n" % seq)
    subs.flush()
    subs.close_stdin()
    c.require(subs.wait_exit(330) == 0, "aheadbench exited 0:\n" + subs.tail())
    subs._t_out.join(5)
    res = {}
    with subs.lock:
        for l in subs.out_lines:
            if l.startswith("AHEAD "):
                res = dict(kv.split("=") for kv in l.split()[1:])
    with open(out) as f:
        samples = [tuple(int(x) for x in l.split()) for l in f]
    if os.environ.get("E2E_AHEAD_SAMPLES"):     # "<seq> <epoch> <latency_us>" kept
        shutil.copy(out, os.environ["E2E_AHEAD_SAMPLES"])
    h.log("aheadbench: %r" % res)
    # Rotations: the send time of the first message of each new epoch.
    first = {}
    for sq, ep, _lat in samples:
        if ep not in first or sq < first[ep]:
            first[ep] = sq
    switch = sorted(first.values())[1:]
    wseq = WINDOW_MS * RATE // 1000
    lat = {}
    for sq, _e, l in samples:
        lat.setdefault(sq, []).append(l / 1000.0)
    complete = sum(1 for q in range(1, seq + 1) if len(lat.get(q, ())) == N)
    rot, steady, rows = side_by_side(lat, switch, wseq)
    allms = [x for v in lat.values() for x in v]
    p99s, p99r = pct(steady, 99), pct(rot, 99)
    ratio = p99r / p99s if p99s else 0.0
    ratios = sorted(r / s for _a, r, _m, s in rows if s)
    for a, r, m, st in rows:
        h.log("rotation at seq %d: p99 %.1f ms | steady at seq %d: p99 %.1f ms | %.2fx" % (
            a, r, m, st, r / st if st else 0.0))
    # Where a rotation's delay is: leaving the proxy (probe) or in the fan-out.
    with probe.lock:
        out_ms = {k + 1: (t - sent[k + 1]) / 1e6 for k, t in enumerate(probe.data)
                  if k + 1 in sent}
        ctl = list(probe.control)
    for a in switch:
        near_ctl = [(t - sent[a]) / 1e6 for t, _n in ctl if a in sent and
                    abs(t - sent[a]) < 1e9]
        h.log("switch seq %d: proxy out %.1f ms (seq before %.1f); sessions p50 %.1f p99 "
              "%.1f ms (seq before %.1f / %.1f); control messages within 1 s: %s" % (
                  a, out_ms.get(a, -1), out_ms.get(a - 1, -1), pct(lat.get(a, []), 50),
                  pct(lat.get(a, []), 99), pct(lat.get(a - 1, []), 50),
                  pct(lat.get(a - 1, []), 99), ["%+.0f ms" % x for x in near_ctl]))
    p50s = pct(steady, 50)
    # The switch's own cost, apart from what else the window caught: the p99
    # of the first message of each epoch over that of the message before it.
    own = sorted(pct(lat[a], 99) / pct(lat[a - 1], 99) for a in switch
                 if lat.get(a) and lat.get(a - 1) and pct(lat[a - 1], 99) > 0)
    announces = sum(1 for _t, ty in ctl if ty == h.CTL_ANNOUNCE)
    requests_after = st1.get("requests", 0) - st0.get("requests", 0)
    refreshes = int(res.get("ahead_requests", "0"))
    # A rotation makes a session ask only for a held message (held) or an
    # announced epoch it does not hold (announce_requests); the other
    # requests after the first fetch are the refreshes the deliveries
    # schedule and the retries of requests unanswered within 2 s.
    at_rotation = int(res.get("announce_requests", "-1")) + int(res.get("held", "-1"))
    retries = int(res.get("key_requests", "0")) - refreshes
    print("RESULT n=%d msgs=%d deliveries=%d rotations=%d held=%s requests_at_rotation=%d "
          "refresh_requests=%d retries=%d service_requests=%d switches=%s p50_all_ms=%.2f "
          "p99_all_ms=%.2f p50_steady_ms=%.2f p99_steady_ms=%.2f p50_rotation_ms=%.2f "
          "p99_rotation_ms=%.2f ratio=%.2f ratio_min=%.2f ratio_median=%.2f ratio_max=%.2f "
          "switch_vs_before_median=%.2f switch_vs_before_max=%.2f announces=%d load1=%.2f" % (
              N, seq, len(samples), len(switch), res.get("held"), at_rotation, refreshes,
              retries, requests_after, res.get("switches"), pct(allms, 50), pct(allms, 99),
              p50s, p99s, pct(rot, 50), p99r, ratio, ratios[0] if ratios else 0.0,
              ratios[len(ratios) // 2] if ratios else 0.0, ratios[-1] if ratios else 0.0,
              own[len(own) // 2] if own else 0.0, own[-1] if own else 0.0, announces,
              os.getloadavg()[0]))
    sys.stdout.flush()
    c.expect(len(switch) >= 3, "the stream crossed >= 3 scheduled rotations (%d)" % len(switch))
    c.expect(complete == seq, "every subscriber got every message (%d of %d complete)" % (
        complete, seq))
    c.expect(res.get("held") == "0", "zero messages held (%s)" % res.get("held"))
    # SPEC 11.5: a switch to a key made ahead in time is not announced (its
    # fan-out delayed the first envelope of the new epoch 2-3x).
    c.expect(announces == 0, "no ANNOUNCE during the stream's scheduled rotations (%d)" %
             announces)
    c.expect(at_rotation == 0,
             "zero key requests at the rotations (held %s, announcement requests %s; the key "
             "service got %d requests after the first fetches: %d scheduled refreshes, %d "
             "retries)" % (res.get("held"), res.get("announce_requests"), requests_after,
                           refreshes, retries))
    # The latency ratio scatters with the host's load (docs/performance.md):
    # asserted on request (a quiet host), else reported.
    if os.environ.get("E2E_AHEAD_STRICT") == "1":
        c.expect(ratio <= 1.2, "p99 across rotations %.2f ms within 1.2x steady %.2f ms "
                 "(%.2fx)" % (p99r, p99s, ratio))
    else:
        h.log("p99 across rotations %.2f ms vs steady %.2f ms: %.2fx (goal <= 1.2x; "
              "E2E_AHEAD_STRICT=1 asserts it)" % (p99r, p99s, ratio))
    px.stop()
    broker.stop()


if __name__ == "__main__":
    h.main("bench-keys-ahead", body)
