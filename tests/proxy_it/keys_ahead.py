#!/usr/bin/python3
"""Proxy 14: keys ahead of rotation (issue 17.4, SPEC 11.5).

A real e2e-proxy (rotate-age 3 s, rotate-lead 20 s) in front of a real
mosquitto; a real e2e-sub (metrics served) reads through it while a paho
publisher sends 50 messages/s through the proxy. The subscriber's first key
fetch brings the current key and the keys made ahead; across at least three
scheduled rotations it must then decrypt every message of each new epoch
without asking: checks on e2e-sub's metrics (key requests = 1, held = 0,
switches to keys installed ahead >= 3), on the proxy's key service stats
(one request answered), and on the messages (all OK, none missing, several
epochs). Then a forced rotation still works through the announcement:
mallory, an enrolled subscriber who fetched the keys made ahead, is revoked
(e2e-keytool revoke rotates her scope, discarding the keys made ahead); the
subscriber fetches the new epoch (a second request), nothing is lost, and
an envelope mallory seals under a discarded key made ahead is not delivered
(SPEC 11.5: a key made ahead gives a revoked member nothing).
"""
import os
import re
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxyharness as ph  # noqa: E402

h = ph.h
RATE = 50
AGE_S, LEAD_S = 3, 20


def metrics(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=3) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(e2e_sub_[a-z_]+) (\d+)$", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


class Feed(threading.Thread):
    """RATE messages/s, QoS 1, "k<phase>-<n>" on sensors/a, until stopped."""

    def __init__(self, pub):
        super().__init__(daemon=True)
        self.pub, self.sent, self.phase = pub, [], "a"
        self.halt = threading.Event()

    def run(self):
        t0, i = time.monotonic(), 0
        while not self.halt.is_set():
            p = ("k%s-%05d" % (self.phase, i)).encode()
            self.pub.publish("sensors/a", p, qos=1)
            self.sent.append(p)
            i += 1
            delay = t0 + i / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def body(env, c):
    broker = ph.Mosquitto(env)
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["sensors/#"])])
    alice = h.Subscriber(env, "alice", trust=[s])
    mallory = h.Subscriber(env, "mallory", trust=[s])
    s.enroll(alice, ["telemetry"])
    s.enroll(mallory, ["telemetry"])
    px = ph.Proxy(env, broker.addr(), ["--cafile", broker.pki["ca_crt"], "--dir", s.dir,
                                       "--rotate-age", "%ds" % AGE_S,
                                       "--rotate-lead", "%ds" % LEAD_S])
    adv = h.Adversary(env, broker, subscribe=("e2e/none",))
    mport = h.free_port()
    sp = h.start_sub(env, broker, alice, ["sensors/#"], name="sub", qos=1,
                     args=["--state", "none", "--show-all",
                           "--metrics-listen", "127.0.0.1:%d" % mport])
    c.require(sp.wait_err(h.EV_KEY, 15), "e2e-sub got the proxy's keys through the key service")
    c.require(h.wait_until(lambda: metrics(mport).get("e2e_sub_keys_ahead_total", 0) >= 3, 5),
              "the first delivery carried keys ahead (%r)" % metrics(mport))
    m0 = metrics(mport)
    h.log("after the first fetch: %r" % m0)
    c.expect(m0.get("e2e_sub_key_requests_total") == 1, "one key request so far (%r)" %
             m0.get("e2e_sub_key_requests_total"))

    pub = ph.PahoPub(env, px.port, "feeder")
    feed = Feed(pub)
    e0 = s.current_epoch(1)
    feed.start()
    # At least three scheduled rotations while the stream runs.
    time.sleep(3 * AGE_S + 1.5)
    feed.phase = "b"
    n_sched = len(feed.sent)
    time.sleep(0.5)
    m1 = metrics(mport)
    st1 = px.stats() or {}
    h.log("after the scheduled rotations: %r; key service %r" % (m1, st1.get("key_service")))
    e1 = s.current_epoch(1)
    c.expect(e1 is not None and e0 is not None and e1 > e0,
             "the proxy rotated on schedule (epoch %s -> %s)" % (e0, e1))
    c.expect(m1.get("e2e_sub_ahead_switches_total", 0) >= 3,
             "the subscriber switched to >= 3 keys installed ahead without asking (%r)" %
             m1.get("e2e_sub_ahead_switches_total"))
    # The refresh window (SPEC 11.5, [t - L/2, t - L/4] of the first key not
    # made yet) may open ~10 s after the first fetch: a request there is
    # the design, not a rotation's cost. Every other request is a failure.
    refresh = m1.get("e2e_sub_ahead_requests_total", 0)
    c.expect(refresh <= 1, "at most the one refresh-window request (%r)" % refresh)
    c.expect(m1.get("e2e_sub_key_requests_total") == 1 + refresh and
             m1.get("e2e_sub_announce_requests_total") == 0,
             "zero key requests caused by the scheduled rotations (requests %r, of which "
             "refresh-window %r, announcement-caused %r)" % (
                 m1.get("e2e_sub_key_requests_total"), refresh,
                 m1.get("e2e_sub_announce_requests_total")))
    c.expect(m1.get("e2e_sub_held_total") == 0,
             "zero messages held for a key (e2e_sub_held_total %r)" % m1.get("e2e_sub_held_total"))
    ks = st1.get("key_service", {})
    c.expect(ks.get("requests") == 1 + refresh and ks.get("delivered") == 1 + refresh,
             "the proxy's key service answered the first fetch and nothing but the "
             "refresh window (%r)" % ks)
    # The keys made at the proxy's start came too late for the refresh
    # windows (made less than lead/2 before their time): their switches are
    # announced (SPEC 11.5; one made in time is not: unit test 'nextkey').
    c.expect(ks.get("announcements", 0) >= 3, "rotations were announced (%r)" % ks)
    # Every scheduled switch is in the log, announced or not.
    logged = px.err_match(r"key service: rotation: .*scope 1 .*(announced|switched on schedule)")
    c.expect(len(logged) >= 3, "the proxy logged every scheduled switch of scope 1 (%d): %s" % (
        len(logged), logged[-4:]))

    # Mallory, enrolled, fetches the current key and the keys made ahead ...
    mk = h.fetch_keys(adv, mallory, s)
    c.require(mk is not None, "mallory fetched keys")
    ahead = [k for k in mk[0] if k[0] == 1 and k[3] & 2]
    c.require(ahead, "mallory's delivery carries keys made ahead (%r)" % [k[:4] for k in mk[0]])
    stolen = max(ahead, key=lambda k: k[1])
    # ... and is revoked: a forced rotation, through the announcement.
    req0 = metrics(mport).get("e2e_sub_key_requests_total", 0)
    t_rot = time.monotonic()
    s.revoke(mallory)
    c.expect(h.wait_until(lambda: (s.current_epoch(1) or 0) > e1, 3),
             "e2e-keytool revoke rotated the scope")
    e2 = s.current_epoch(1)
    c.expect(e2 is not None and e2 > stolen[1],
             "the forced epoch %s is above every key made ahead (mallory's newest %s)" % (
                 e2, stolen[1]))
    def forced_fetch():
        m = metrics(mport)
        # Not a refresh-window request: one the announcement (or a held
        # first message) caused.
        return (m.get("e2e_sub_key_requests_total", 0) > req0 and
                m.get("e2e_sub_announce_requests_total", 0) + m.get("e2e_sub_held_total", 0) >= 1)
    c.expect(h.wait_until(forced_fetch, 6),
             "the subscriber fetched the forced epoch after its announcement")
    time.sleep(1.0)   # its answer installed: the discarded keys made ahead are gone
    m2 = metrics(mport)
    # The forced epoch was not held: its announcement, or its first message
    # if that came first (then held briefly), made the subscriber ask.
    c.expect(m1.get("e2e_sub_announce_requests_total") == 0 and
             m2.get("e2e_sub_announce_requests_total", 0) + m2.get("e2e_sub_held_total", 0) >= 1,
             "no announcement made it ask before; the forced rotation did (announce %r -> %r, "
             "held %r)" % (m1.get("e2e_sub_announce_requests_total"),
                           m2.get("e2e_sub_announce_requests_total"),
                           m2.get("e2e_sub_held_total")))
    # Mallory seals under the discarded key made ahead: not delivered.
    forged = h.craft_envelope(stolen[4], "sensors/a", s.sender_id, 1, stolen[1], 1,
                              b"forged-under-next")
    adv.publish("sensors/a", forged)
    time.sleep(3.0)
    feed.halt.set()
    feed.join(5)
    time.sleep(1.0)
    sent = set(feed.sent)
    c.require(h.wait_until(lambda: set(pub.acked_set()) >= sent, 10),
              "every publish acknowledged through the proxy")
    h.wait_until(lambda: sp.wait_json(len(sent), 0.1,
                                      lambda o: h.verdict_of(o) in h.DELIVERING) >= len(sent), 10)
    msgs = sp.messages()
    ok = [o for o in msgs if h.verdict_of(o) in h.DELIVERING]
    verdicts = {}
    for o in msgs:
        verdicts[h.verdict_of(o)] = verdicts.get(h.verdict_of(o), 0) + 1
    h.log("verdicts %r; %d sent (%d before the forced rotation)" % (verdicts, len(sent), n_sched))
    got = [h.payload_of(o) for o in ok]
    c.expect(set(got) == sent and len(got) == len(sent),
             "every message delivered exactly once (%d of %d, missing %d)" % (
                 len(got), len(sent), len(sent - set(got))))
    c.expect(b"forged-under-next" not in got,
             "mallory's envelope under the discarded key made ahead was not delivered")
    other = [o for o in msgs if h.verdict_of(o) != "OK" and o.get("epoch") != stolen[1]]
    c.expect(not other, "all verdicts OK but mallory's (%r)" % verdicts)
    h.promise_rows("proxy-keys-ahead", [
        ("17.4 a key made ahead gives a revoked member nothing", "insider (revoked)", True,
         "fetched the keys made ahead, was revoked, sealed under the newest one",
         "verdicts %r, forged payload delivered: %s" % (
             verdicts, b"forged-under-next" in got),
         b"forged-under-next" not in got),
        ("17.4 scheduled rotations cost no key request", "none", False,
         ">= 3 rotations at rotate-age %d s with keys made ahead" % AGE_S,
         "key requests after the first %d (refresh window %d), held %d" % (
             m1.get("e2e_sub_key_requests_total", 0) - 1, refresh,
             m1.get("e2e_sub_held_total", 0)),
         m1.get("e2e_sub_key_requests_total") == 1 + refresh and
         m1.get("e2e_sub_announce_requests_total") == 0 and m1.get("e2e_sub_held_total") == 0),
    ])
    sched = [o for o in ok if h.payload_of(o).startswith(b"ka-")]
    epochs = sorted(set(o.get("epoch") for o in sched))
    c.expect(len(epochs) >= 4, "the stream crossed >= 3 scheduled rotations (epochs %s)" % epochs)
    c.expect(e2 in set(o.get("epoch") for o in ok),
             "messages under the forced epoch %s decrypted" % e2)
    m2 = metrics(mport)
    h.log("at the end: %r (forced rotation %.1f s ago)" % (m2, time.monotonic() - t_rot))
    c.expect(m2.get("e2e_sub_control_rejected_total", 0) == 0, "no rejected control message")
    anomalies = [l for l in sp.err_match(r"\[(UNKNOWN_KEY|FORGED|TOO_OLD|MALFORMED|FORGOTTEN)|"
                                         r"reject") if str(stolen[1]) not in l]
    c.expect(not anomalies, "no anomaly on e2e-sub's stderr but mallory's:\n" +
             "\n".join(anomalies[:5]))
    sp.stop()
    px.stop()


if __name__ == "__main__":
    h.main("proxy-keys-ahead", body)
