#!/usr/bin/python3
"""Many senders on one cluster (issue 17 item 3), shared by the test
(tests/cluster/many.py, suite 'slow') and the bench
(tests/bench/manysenders.py, suite 'bench'):

  mqttload x10 (100 connections each) -> e2e-proxy s0..s9 -> nodes 1, 2
                                      cluster -> node 3 -> e2e-sub x2 (#)
                                                        -> spy (e2e/control)

Ten senders with their own identity and state dir (e2e-keytool init), each
enrolling every subscriber; the subscribers trust all ten. mqttload (the
bench's load generator, tests/bench/mqttload.c) opens 100 MQTT connections
to one proxy and publishes at a fixed rate on <prefix>/s<i>/<k>; its own
subscriber (node 3) opens the envelopes with the sender's keys, so each
load generator also reports what it saw end to end. The e2e-subs print
nothing (-T '#'): their counts come from their Prometheus metrics, their
memory and CPU from /proc.
"""

import json
import os
import re
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
import proxyharness as ph  # noqa: E402  (the caller puts tests/proxy_it on sys.path)

h = ph.h
LOCAL = ph.LOCAL
CLK_TCK = os.sysconf("SC_CLK_TCK")
BAD = ("FORGED", "REPLAYED", "UNKNOWN_KEY")


def mqttload_bin():
    p = os.environ.get("E2E_MQTTLOAD")
    if p and os.access(p, os.X_OK):
        return p
    for rel in ("tests/cluster/mqttload-many", "tests/bench/mqttload"):
        q = os.path.join(os.environ.get("E2E_BUILD", "build"), rel)
        if os.access(q, os.X_OK):
            return q
    raise h.TestFailure("mqttload not built (E2E_MQTTLOAD)")


def proc_cpu_s(pid):
    """utime + stime of a process, seconds (/proc/<pid>/stat fields 14, 15)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def metrics(port):
    """e2e-sub's /metrics as {name or name{labels}: value}."""
    try:
        with urllib.request.urlopen("http://%s:%d/metrics" % (LOCAL, port), timeout=3) as r:
            text = r.read().decode()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def verdicts(m):
    return {k[len('e2e_sub_messages_total{verdict="'):-2].upper(): int(v)
            for k, v in (m or {}).items() if k.startswith("e2e_sub_messages_total{")}


class Spy:
    """A plain MQTT client on the control topic (node 3): counts key
    requests per target sender, with their arrival times."""

    def __init__(self, env, port, name="spy"):
        import paho.mqtt.client as mqtt
        self.lock = threading.Lock()
        self.reqs = []            # (monotonic, target sender id, requester sign_pk)
        self.ok = threading.Event()
        self.c = mqtt.Client(client_id="%s-%s" % (name, os.urandom(3).hex()), clean_session=True)
        self.sums = set()         # sender ids whose signed SUMMARY went by
        self.c.on_connect = lambda c, u, f, rc: rc == 0 and c.subscribe(
            [(h.CONTROL_TOPIC, 0), (h.CONTROL_TOPIC + "/+", 0)])
        self.c.on_subscribe = lambda *a: self.ok.set()
        self.c.on_message = self._msg
        self.c.connect(LOCAL, port, keepalive=30)
        self.c.loop_start()
        if not self.ok.wait(15):
            self.close()
            raise h.TestFailure("spy could not subscribe to %s" % h.CONTROL_TOPIC)
        env.clients.append(self)

    def _msg(self, c, u, m):
        p = bytes(m.payload)
        if m.topic != h.CONTROL_TOPIC:
            # SUMMARY (type 5): parse_ctl knows only the key messages.
            if len(p) > h.CTL_HEAD and p[0] == 1 and p[1] == 5:
                with self.lock:
                    self.sums.add(int.from_bytes(p[2:6], "big"))
            return
        d = h.parse_ctl(p)
        if d and d["type"] == h.CTL_REQUEST:
            with self.lock:
                self.reqs.append((time.monotonic(), d["sender"], d["sign_pk"]))

    def summary_senders(self):
        with self.lock:
            return set(self.sums)

    def requests(self, since=0.0, until=None):
        with self.lock:
            return [r for r in self.reqs if r[0] >= since and (until is None or r[0] < until)]

    def close(self):
        try:
            self.c.loop_stop()
            self.c.disconnect()
        except Exception:
            pass


class Monitor:
    """Samples every subscriber once per @step: time, OK count, RSS, CPU."""

    def __init__(self, subs, step=0.5):
        self.subs = subs
        self.step = step
        self.samples = {s.name: [] for s in subs}
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop_ev.is_set():
            for s in self.subs:
                v = verdicts(metrics(s.mport))
                self.samples[s.name].append((time.monotonic(), v.get("OK", 0), s.proc.rss_kib(),
                                             proc_cpu_s(s.proc.pid)))
            self.stop_ev.wait(self.step)

    def stop(self):
        self.stop_ev.set()
        self.t.join(10)

    def max_rss(self, name):
        return max((x[2] for x in self.samples[name] if x[2]), default=None)


class SubProc:
    def __init__(self, proc, ident, mport):
        self.proc = proc
        self.ident = ident
        self.mport = mport
        self.name = proc.name


class Many:
    """The whole set-up on a running rabbit.Cluster."""

    def __init__(self, env, cl, nsenders=10, nsubs=2, summary="1s", proxy_args=()):
        self.env = env
        self.cl = cl
        self.prefix = "ms-" + os.urandom(3).hex()
        t0 = time.monotonic()
        self.senders = [h.Sender(env, "s%d" % i,
                                 scopes=[(1, "plant", ["%s/s%d/#" % (self.prefix, i)])])
                        for i in range(nsenders)]
        self.idents = [h.Subscriber(env, "sub%d" % j, trust=self.senders) for j in range(nsubs)]
        for s in self.senders:
            for sub in self.idents:
                s.enroll(sub, ["plant"])
        h.log("%d senders, %d subscribers, enrolled and trusted in %.1f s" % (
            nsenders, nsubs, time.monotonic() - t0))
        n1, n2, n3 = (nd.ep for nd in cl.nodes)
        self.n3 = n3
        # Proxies spread over nodes 1 and 2.
        self.proxies = [ph.Proxy(env, (n1 if i % 2 == 0 else n2).addr(),
                                 ["--tls", "no", "--dir", s.dir, "--summary-interval", summary] +
                                 list(proxy_args), name="proxy-%s" % s.name, timeout=30)
                        for i, s in enumerate(self.senders)]
        self.spy = Spy(env, n3.port)
        self.subs = []
        for sub in self.idents:
            mport = h.free_port()
            p = h.start_sub(env, n3, sub, ["#"], name="e2e-sub-" + sub.name,
                            args=["-T", "#", "--strict", "--metrics-listen", "%s:%d" % (LOCAL, mport)])
            self.subs.append(SubProc(p, sub, mport))

    def keys_from_all(self, timeout=40):
        """Every subscriber got a key from every sender. Returns the misses."""
        def misses():
            return ["%s<-%s" % (s.name, snd.name) for s in self.subs for snd in self.senders
                    if not s.proc.err_match(r"key received from %s\b" % re.escape(snd.name))]
        h.wait_until(lambda: not misses() or not all(s.proc.alive() for s in self.subs),
                     timeout, step=0.2)
        return misses()

    def load(self, rate_per_proxy, duration, pubs=100, size=64, warmup=1.0, qos=1):
        """mqttload on every proxy at once. Returns their RUN lines as dicts."""
        procs = []
        for i, (s, px) in enumerate(zip(self.senders, self.proxies)):
            argv = [mqttload_bin(), "run", "--pub", "%s:%d" % (LOCAL, px.port),
                    "--sub", self.n3.addr(), "--pubs", str(pubs), "--qos", str(qos),
                    "--size", str(size), "--rate", str(rate_per_proxy),
                    "--warmup", str(warmup), "--duration", str(duration), "--drain", "8",
                    "--open", s.dir, "--prefix", "%s/s%d" % (self.prefix, i)]
            procs.append(h.Proc(self.env, self.env.uniq("mqttload-%s-" % s.name), argv))
        out = []
        for p in procs:
            rc = p.wait_exit(duration + warmup + 60)
            with p.lock:
                line = next((l for l in p.out_lines if l.startswith("RUN ")), None)
            r = {"name": p.name, "rc": rc}
            if line:
                for kv in line.split()[1:]:
                    k, _, v = kv.partition("=")
                    try:
                        r[k] = float(v)
                    except ValueError:
                        r[k] = v
            else:
                h.log("%s printed no RUN line (rc %s):\n%s" % (p.name, rc, p.tail()))
            out.append(r)
        return out

    def proxy_key_requests(self):
        """Key requests the proxies' key services saw (stats socket), summed."""
        return sum(int(((px.stats() or {}).get("key_service") or {}).get("requests", 0))
                   for px in self.proxies)

    def storm(self, settle=12.0):
        """e2e-keytool rotate on every sender's state dir at once; key
        requests on the control topic in the following @settle seconds.
        Returns (requests, per-sender counts, seconds from the rotation to
        the last request, new keys seen by every subscriber)."""
        import subprocess
        before = {s.name: len(s.proc.err_match(r"key received from")) for s in self.subs}
        t0 = time.monotonic()
        ps = [subprocess.Popen([self.env.keytool, "rotate", "--dir", s.dir],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
              for s in self.senders]
        rcs = [p.wait(30) for p in ps]
        if any(rcs):
            raise h.TestFailure("e2e-keytool rotate failed: %s" % rcs)
        want = len(self.senders)

        def all_new():
            return all(len(s.proc.err_match(r"key received from")) - before[s.name] >= want
                       for s in self.subs)
        h.wait_until(all_new, settle, step=0.2)
        got_all = all_new()
        time.sleep(max(0.0, t0 + settle - time.monotonic()))
        reqs = self.spy.requests(since=t0)
        per = {}
        for _t, snd, _pk in reqs:
            per[snd] = per.get(snd, 0) + 1
        last = max((r[0] for r in reqs), default=t0) - t0
        return len(reqs), per, last, got_all

    def stop_subs(self):
        """SIGTERM the subscribers; their final summary lines, parsed."""
        res = {}
        for s in self.subs:
            rc = s.proc.stop(timeout=10)
            line = " ".join(s.proc.err_match(r"summaries:"))
            m = re.search(r"summaries: (\d+) received; entries verified (\d+), contradicted (\d+); "
                          r"messages never arrived (\d+), unsummarized (\d+), not checked (\d+); "
                          r"stalls (\d+)", line)
            res[s.name] = {"rc": rc, "line": line,
                           "sum": [int(x) for x in m.groups()] if m else None}
        return res


def steady_rate(samples, lo=0.2, hi=0.8):
    """msg/s between the samples at @lo and @hi of the span during which the
    OK count grew; and CPU seconds per message over the same span."""
    act = [x for x in samples if x[3] is not None]
    if len(act) < 4:
        return None, None
    first = next((i for i in range(1, len(act)) if act[i][1] > act[i - 1][1]), None)
    last = next((i for i in range(len(act) - 1, 0, -1) if act[i][1] > act[i - 1][1]), None)
    if first is None or last is None or last - first < 3:
        return None, None
    a = act[first + int((last - first) * lo)]
    b = act[first + int((last - first) * hi)]
    n = b[1] - a[1]
    if n <= 0 or b[0] <= a[0]:
        return None, None
    return n / (b[0] - a[0]), (b[3] - a[3]) / n


def dump(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
