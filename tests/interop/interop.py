#!/usr/bin/python3
"""Helpers of the interoperability tests (tests/interop/).

Built on tests/integration/harness.py (Env, Proc, run, main, Checks, PKI,
Broker, Sender/Subscriber, start_sub, Adversary, env_parse) and
tests/proxy_it/proxyharness.py (Proxy, mosq_pub, token), imported, not
copied. Added here, for the interop tests only:

  * node_modules(): aedes / MQTT.js from the npm registry, installed once
    into a cache directory (E2E_NODE_CACHE, default <build>/interop-node);
    no node, no npm or an unreachable registry SKIPs the test (exit 77);
  * Aedes: the aedes broker (aedes_broker.js) on kernel-chosen ports, plain
    TCP and TLS with the run's certificate, stopped by its PID;
  * Endpoint: how clients reach a broker (host, port, TLS or not), with the
    interface of harness.Broker that start_sub and Adversary use;
  * RawJs: a keyless MQTT.js subscriber (raw_sub.js);
  * run_matrix(): the full chain mosquitto_pub -V 3.1.1/5 -> e2e-proxy ->
    broker(s) -> e2e-sub -V 311/5 and a keyless subscriber, with every check.

Rules as in harness.py: real processes, 127.0.0.1 only, free ports, every
process stopped by its PID, every wait bounded, temp dirs removed.
"""

import fcntl
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proxy_it"))
import proxyharness as ph  # noqa: E402

h = ph.h
SKIP = 77            # meson: the test was skipped
LOCAL = ph.LOCAL

# Pinned: a new release of a broker must not change what a test run means.
# aedes 1.x (stable) speaks MQTT 3.1/3.1.1 only; 2.0.0-beta.1 is the first
# aedes with MQTT 5.
AEDES_STABLE = os.environ.get("E2E_AEDES_STABLE", "1.2.0")
AEDES_MQTT5 = os.environ.get("E2E_AEDES_MQTT5", "2.0.0-beta.1")
MQTTJS = os.environ.get("E2E_MQTTJS", "5.16.0")

PUB_VERSIONS = ("mqttv311", "mqttv5")      # mosquitto_pub -V, to the proxy
SUB_VERSIONS = ("311", "5")                # e2e-sub -V, at the broker


def skip(why):
    print("SKIP: " + why, flush=True)
    sys.exit(SKIP)


# ---------------------------------------------------------------------------
# Node.js packages
# ---------------------------------------------------------------------------

def _cache_root():
    c = os.environ.get("E2E_NODE_CACHE")
    if c:
        return c
    b = os.environ.get("E2E_BUILD") or os.path.join(HERE, "..", "..", "build")
    return os.path.join(os.path.abspath(b), "interop-node")


_NODE = []


def node_bin():
    """Node.js >= 20 (what aedes needs), else the test is skipped."""
    if _NODE:
        return _NODE[0]
    n = os.environ.get("E2E_NODE") or shutil.which("node") or shutil.which("nodejs")
    if not n:
        skip("node is not installed (scripts/lib/deps.sh e2e_install_node installs nodejs and npm)")
    try:
        ver = subprocess.run([n, "-e", "process.stdout.write(process.versions.node)"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20,
                             check=False).stdout.decode(errors="replace").strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        skip("%s does not run: %s" % (n, e))
    if not re.match(r"\d+\.", ver) or int(ver.split(".")[0]) < 20:
        skip("aedes needs Node.js >= 20; %s is %r" % (n, ver))
    _NODE.append(n)
    return n


def node_modules(packages):
    """DIR/node_modules holding exactly these npm packages ("name@version"),
    installed once into the cache and reused offline afterwards. Skips the
    test (exit 77) without node/npm or when the npm registry cannot be
    reached; an install that fails otherwise is a failure (exit 1)."""
    node_bin()
    npm = shutil.which("npm")
    if not npm:
        skip("npm is not installed (scripts/lib/deps.sh e2e_install_node installs nodejs and npm)")
    name = "+".join(p.replace("/", "_") for p in sorted(packages))
    root = _cache_root()
    prefix = os.path.join(root, name)
    marker = os.path.join(prefix, ".complete")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(marker):
            return os.path.join(prefix, "node_modules")
        h.log("installing %s from npm into %s" % (" ".join(packages), prefix))
        npm_env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false",
                       npm_config_audit="false")
        try:
            ping = subprocess.run([npm, "ping", "--fetch-retries=0", "--fetch-timeout=15000"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=30, env=npm_env)
            reachable = ping.returncode == 0
            lines = ping.stdout.decode(errors="replace").strip().splitlines() or ["?"]
            why = "npm ping: " + ([l for l in lines if " code " in l] or lines)[0].strip()
        except subprocess.TimeoutExpired:
            reachable, why = False, "npm ping timed out after 30 s"
        tmp = prefix + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        # Without the registry, npm's own cache may still hold them.
        argv = [npm, "install", "--prefix", tmp, "--no-save", "--loglevel=error"] + \
            ([] if reachable else ["--offline"]) + list(packages)
        try:
            cp = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                timeout=100, env=npm_env)
            out, rc = cp.stdout.decode(errors="replace"), cp.returncode
        except subprocess.TimeoutExpired:
            out, rc = "timed out after 100 s", None
        if rc != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            if not reachable:
                skip("the npm registry is unreachable (%s) and npm's cache lacks %s" % (
                    why, " ".join(packages)))
            print("FAIL: npm install %s (rc %s):\n%s" % (" ".join(packages), rc, out[-2000:]))
            sys.exit(1)
        with open(os.path.join(tmp, ".complete"), "w") as f:
            f.write("\n".join(packages) + "\n")
        shutil.rmtree(prefix, ignore_errors=True)
        os.rename(tmp, prefix)
        return os.path.join(prefix, "node_modules")


# ---------------------------------------------------------------------------
# Brokers and endpoints
# ---------------------------------------------------------------------------

class Endpoint:
    """How clients reach a broker: 127.0.0.1:port, TLS with the run's CA or
    plain TCP. Offers what harness.start_sub / harness.Adversary use of a
    harness.Broker (host, port, pki, tls_args)."""

    def __init__(self, env, port, tls=True, label=None):
        self.host = LOCAL
        self.port = port
        self.tls = tls
        self.pki = env.pki()
        self.label = label or "%s:%d" % ("tls" if tls else "tcp", port)

    def tls_args(self, client_cert=False, cafile=True):
        a = ["-h", self.host, "-p", str(self.port)]
        if self.tls and cafile:
            a += ["--cafile", self.pki["ca_crt"]]
        return a

    def addr(self):
        return "%s:%d" % (self.host, self.port)

    def proxy_args(self):
        """e2e-proxy options to relay to this endpoint."""
        return ["--cafile", self.pki["ca_crt"]] if self.tls else ["--tls", "no"]

    def url(self):
        return "%s://%s:%d" % ("mqtts" if self.tls else "mqtt", self.host, self.port)


def mosquitto_endpoint(broker):
    return Endpoint(broker.env, broker.port, tls=True,
                    label=os.path.splitext(os.path.basename(broker.conf))[0])


class Aedes:
    """aedes (Node.js) on 127.0.0.1: .tcp and .tls Endpoints. The ports are
    chosen by the kernel (listen on port 0) and printed by the broker."""

    def __init__(self, env, modules, name="aedes"):
        self.env = env
        pki = env.pki()
        self.proc = h.Proc(env, name, [node_bin(), os.path.join(HERE, "aedes_broker.js"),
                                       "--modules", modules, "--cert", pki["server_crt"],
                                       "--key", pki["server_key"]])
        ready = h.wait_until(lambda: [l for l in list(self.proc.out_lines)
                                      if l.startswith("ready ")] or not self.proc.alive(), 20)
        if not ready or not self.proc.alive():
            raise h.TestFailure("aedes did not start:\n" + self.proc.tail(25))
        _r, tcp, tls = ready[0].split()
        self.tcp = Endpoint(env, int(tcp), tls=False, label="aedes tcp")
        self.tls = Endpoint(env, int(tls), tls=True, label="aedes tls")
        h.log("aedes (pid %d) on tcp %s, tls %s" % (self.proc.pid, tcp, tls))


class RawJs:
    """A keyless MQTT.js subscriber (raw_sub.js) at an Endpoint."""

    def __init__(self, env, modules, ep, topics=("#",), version=4, name="rawjs"):
        argv = [node_bin(), os.path.join(HERE, "raw_sub.js"), "--modules", modules,
                "--url", ep.url(), "--version", str(version)]
        if ep.tls:
            argv += ["--ca", ep.pki["ca_crt"]]
        for t in topics:
            argv += ["--topic", t]
        self.proc = h.Proc(env, name, argv, parse_json=True)
        if not self.proc.wait_json(1, 15, pred=lambda o: o.get("ready")):
            raise h.TestFailure("MQTT.js subscriber did not subscribe:\n" + self.proc.tail())

    def seen(self):
        """[(topic, payload bytes)] in arrival order."""
        return [(o["topic"], bytes.fromhex(o["hex"])) for o in self.proc.messages()
                if "topic" in o]


class RawPaho:
    """A keyless paho-mqtt subscriber (harness.Adversary, TLS) at a broker."""

    def __init__(self, env, broker, topics=("#",), name="rawpaho"):
        self.adv = h.Adversary(env, broker, name=name, subscribe=topics)

    def seen(self):
        return [(m[1], m[2]) for m in self.adv.seen()]


# ---------------------------------------------------------------------------
# The chain
# ---------------------------------------------------------------------------

def check_envelopes(c, label, raw, prefix, plaintexts, sender, n_expected, topics):
    """What a keyless subscriber saw under prefix/: only envelopes of this
    sender (suite byte 0x01, >= 40 bytes, scope 1; on the signed scope 2:
    0x02, >= 104 bytes), no plaintext anywhere, each message once, on every
    expected topic (not vacuous)."""
    got = [(t, p) for t, p in raw.seen() if t.startswith(prefix + "/")]
    c.expect(len(got) == n_expected, "%s: the keyless subscriber got all %d messages, once (%d)"
             % (label, n_expected, len(got)))
    c.expect(set(t for t, _p in got) == set(topics),
             "%s: the keyless subscriber saw every topic (%s)" % (
                 label, sorted(set(topics) ^ set(t for t, _p in got)) or "all"))
    leaked = [(t, s) for t, p in got for s in plaintexts if s.encode() in p]
    c.expect(not leaked, "%s: no plaintext in any payload the keyless subscriber got%s" % (
        label, "" if not leaked else ": LEAKED %r" % leaked[:3]))
    bad = []
    for t, p in got:
        scope, suite, least = scope_of(t)
        e = h.env_parse(p)
        if len(p) < least or p[0] != suite or not e or e["sender"] != sender.sender_id or \
                e["scope"] != scope:
            bad.append((t, p[:24].hex(), len(p)))
    c.expect(not bad, "%s: every payload is an envelope of this sender (suite 0x01, >= 40 bytes, "
             "scope 1; signed scope 2: 0x02, >= 104 bytes)%s" % (
                 label, "" if not bad else ": NOT %r" % bad[:3]))


def new_prefix():
    """A random topic prefix: runs never see each other's messages."""
    return "interop-" + os.urandom(4).hex()


def start_proxy(env, upstream, sender, name="proxy"):
    return ph.Proxy(env, upstream.addr(), upstream.proxy_args() + [
        "--dir", sender.dir, "--summary-interval", "1s"], name=name)


def make_parties(env, prefix, sub_versions=SUB_VERSIONS):
    """A sender with two scopes: 2 "alarms" (prefix/+/alarm, signed: suite
    0x02) and 1 "interop" (the rest of prefix/#); one enrolled, trusting
    subscriber identity per e2e-sub MQTT version."""
    sender = h.Sender(env, env.uniq("proxy"), scopes=[(2, "alarms", [prefix + "/+/alarm"]),
                                                       (1, "interop", [prefix + "/#"])])
    with open(os.path.join(sender.dir, "scopes"), "a") as f:
        f.write("sign alarms\n")
    subs = {}
    for v in sub_versions:
        subs[v] = h.Subscriber(env, env.uniq("sub-v%s-" % v), trust=[sender])
        sender.enroll(subs[v], ["interop", "alarms"])
    return sender, subs


def start_subs(env, c, label, downstream, subs, prefix):
    """e2e-sub --json --strict -q 1 -V <v> per subscriber; waits for the keys."""
    procs = {}
    for v, s in subs.items():
        procs[v] = h.start_sub(env, downstream, s, [prefix + "/#"], name="e2e-" + s.name,
                               args=["-V", v, "--strict"])
    for v, p in procs.items():
        c.require(h.wait_until(lambda: all(p.err_match(h.EV_KEY + r".*scope %d\b" % s)
                                           for s in (1, 2)) or not p.alive(), 20) and p.alive(),
                  "%s: e2e-sub -V %s got the keys of scopes 1 and 2 through %s" % (
                      label, v, downstream.label))
    return procs


def publish_all(env, c, label, proxy, prefix, pub_versions=PUB_VERSIONS, tag="pt"):
    """Through the proxy, per mosquitto_pub version: one QoS 0 message on
    prefix/<v>/q0, one QoS 2 message on prefix/<v>/q2, three QoS 1 messages
    on prefix/<v>/seq from one connection (mosquitto_pub -l), which every
    broker must forward in order (MQTT 3.1.1 sec. 4.6), and one QoS 1
    message on prefix/<v>/alarm (signed scope). Messages of one topic from
    different connections may be reordered by a broker (aedes does: a
    PUBCOMP can overtake the delivery), so each topic has one publisher
    connection. Returns [(topic, text)]."""
    sent = []
    for v in pub_versions:
        for leaf, qos, n in (("q0", 0, 1), ("q2", 2, 1), ("seq", 1, 3), ("alarm", 1, 1)):
            topic = "%s/%s/%s" % (prefix, v, leaf)
            texts = [ph.token(tag) for _ in range(n)]
            argv = [ph.MOSQ_PUB, "-h", LOCAL, "-p", str(proxy.port), "-V", v, "-q", str(qos),
                    "-t", topic, "-i", "mp-" + os.urandom(4).hex()]
            argv += ["-m", texts[0]] if n == 1 else ["-l"]
            cp = h.run(env, "mosquitto_pub", argv, timeout=20, check=False,
                       input=None if n == 1 else "".join(t + "\n" for t in texts).encode())
            c.expect(cp.returncode == 0, "%s: mosquitto_pub -V %s -q %d %s%s: rc 0 (rc %d %s)" % (
                label, v, qos, "-l (%d lines) " % n if n > 1 else "", topic, cp.returncode,
                cp.stderr.decode(errors="replace").strip()[-200:]))
            sent += [(topic, t) for t in texts]
    return sent


def scope_of(topic):
    """(scope id, suite byte, minimum envelope size) of a topic of publish_all."""
    return (2, 0x02, 104) if topic.endswith("/alarm") else (1, 0x01, 40)


def check_delivery(c, label, procs, sent, sender, epoch=None, timeout=20, before=None):
    """Every e2e-sub printed every sent message, verdict OK, right topic,
    from sender (its name in the trust file) and epoch; nothing else.
    epoch: the n-th epoch of the topic's scope in the sender's keys file
    (1 = its first; epoch numbers themselves start at the Unix time, SPEC
    6.4). before: {version: number of JSON lines printed earlier, not
    looked at}."""
    def nth_epoch(scope, n):
        es = sorted({e for s, e, _c, _na, _k in sender.keys() if s == scope})
        return es[n - 1] if len(es) >= n else None
    for v, p in procs.items():
        skip_n = (before or {}).get(v, 0)
        p.wait_json(skip_n + len(sent), timeout)
        msgs = p.messages()[skip_n:]
        by_payload = {}
        for o in msgs:
            by_payload.setdefault(h.payload_of(o), []).append(o)
        wrong = []
        for topic, text in sent:
            os_ = by_payload.get(text.encode(), [])
            if len(os_) != 1:
                wrong.append("%s: %d copies" % (text, len(os_)))
                continue
            o = os_[0]
            if h.verdict_of(o) != "OK" or o.get("topic") != topic or \
                    o.get("sender") != sender.name or o.get("scope") != scope_of(topic)[0] or \
                    (epoch is not None and o.get("epoch") != nth_epoch(o.get("scope"), epoch)):
                wrong.append("%s: %s" % (text, {k: o.get(k) for k in
                                                 ("verdict", "topic", "sender", "scope",
                                                  "epoch")}))
        extra = [o for o in msgs if h.payload_of(o) not in {t.encode() for _x, t in sent}]
        c.expect(not wrong and len(msgs) >= len(sent),
                 "%s: e2e-sub -V %s: all %d messages verdict OK on their topic%s (%d printed)%s" % (
                     label, v, len(sent), "" if epoch is None else ", epoch #%d of its scope" % epoch,
                     len(msgs), "" if not wrong else ":\n    " + "\n    ".join(wrong[:8])))
        c.expect(not extra, "%s: e2e-sub -V %s printed nothing else%s" % (
            label, v, "" if not extra else ": %r" % extra[:3]))
        c.expect(not p.bad_json, "%s: e2e-sub -V %s printed only JSON lines%s" % (
            label, v, "" if not p.bad_json else ": %r" % p.bad_json[:3]))


def stop_subs(c, label, procs):
    """SIGTERM: exit status 0 under --strict (no security anomaly seen)."""
    for v, p in procs.items():
        rc = p.stop()
        c.expect(rc == 0, "%s: e2e-sub -V %s --strict exits 0 on SIGTERM (rc %s)%s" % (
            label, v, rc, "" if rc == 0 else "\n" + p.tail(8)))


def run_matrix(env, c, label, upstream, downstream, raw, pub_versions=PUB_VERSIONS,
               sub_versions=SUB_VERSIONS, prefix=None):
    """The full chain: unmodified mosquitto_pub (pub_versions) -> e2e-proxy
    -> upstream broker [-> ... -> downstream broker] -> e2e-sub
    (sub_versions) and the keyless subscriber raw at the downstream broker.
    Every publisher version reaches every subscriber version with verdict
    OK; raw sees envelopes only. Returns a dict (sender, proxy, subs, procs,
    prefix, sent) for scenario-specific steps."""
    prefix = prefix or new_prefix()
    sender, subs = make_parties(env, prefix, sub_versions)
    proxy = start_proxy(env, upstream, sender)
    procs = start_subs(env, c, label, downstream, subs, prefix)
    sent = publish_all(env, c, label, proxy, prefix, pub_versions)
    check_delivery(c, label, procs, sent, sender, epoch=1)
    h.wait_until(lambda: len([1 for t, _p in raw.seen() if t.startswith(prefix + "/")]) >=
                 len(sent), 5)
    check_envelopes(c, label, raw, prefix, [t for _x, t in sent], sender, len(sent),
                    [t for t, _x in sent])
    return {"sender": sender, "proxy": proxy, "subs": subs, "procs": procs, "prefix": prefix,
            "sent": sent}

