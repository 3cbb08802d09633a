#!/usr/bin/python3
"""Adversary: a revoked member forges under the key made ahead that it was
delivered before its revocation (SPEC 11.5, keys ahead of rotation).

Real processes: mosquitto, e2e-proxy (summaries every second, rotate-age 120 s
with a lead of 240 s: two keys made ahead from the first tick on, no
scheduled switch during the test), alice's e2e-sub behind the malicious
broker (mitm.py). Bob is a real enrolled subscriber: it fetches its keys with
its own identity over the broker, as its key ring would, and so holds the
current key and the keys made ahead (NEXT). Under QoS 1 load through the
proxy on m/a, m/b, m/c:

  1. the broker holds back 20 genuine m/b messages from alice (in flight at
     the rotation) and, once she asks for keys, her next DELIVERY;
     `e2e-keytool revoke bob`: the proxy rotates scope 1, discards the keys
     made ahead and issues an epoch above them; alice learns its number from
     the ANNOUNCE, and bob seals under the discarded NEXT key right then;
     then the DELIVERY (no longer listing the discarded keys) is released;
  2. with the DELIVERY in, bob seals under the discarded NEXT key again (a
     fresh run on m/a and on m/quiet) and under the old key (a fresh run on
     m/b, m/c's stream continued above its top), published to the real
     mosquitto while the load goes on; the held m/b messages are released
     after their summary was checked.

(Before alice knows the new epoch at all, e.g. the broker withholds the
ANNOUNCE too, bob can forge under a discarded key as under the current one:
the window revocation always has, SPEC 11.5. Not tested here.)

Expected: each forgery reported FORGED, none delivered; nothing delivered
under a discarded key (no early promotion); every genuine message delivered
exactly once, OK or LATE (those in flight at the rotation confirmed by their
summary; a GAP only where the broker held messages back); no other FORGED
verdict, no summary alarm on the genuine traffic.
"""
import collections
import os
import re
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import advharness as ah  # noqa: E402

h, mm = ah.h, ah.mm
HOLD = 20                            # genuine m/b messages held back across the rotation
TOPICS = ["m/a", "m/b", "m/c"]
RX_END = re.compile(r"summaries: (\d+) received; entries verified (\d+), contradicted (\d+); "
                    r"messages never arrived (\d+), unsummarized (\d+), not checked (\d+); "
                    r"stalls (\d+); arrived late (\d+), .*retired-key messages confirmed "
                    r"(\d+), forged (\d+)")


class Policy:
    """On alice's link: hold back the next hold[topic] messages on a topic
    (the broker acknowledges them), until release."""

    def __init__(self):
        self.hold = {}
        self.held = collections.defaultdict(list)
        self.hold_replies = False        # key deliveries to alice (e2e/k/...)
        self.replies = []

    def __call__(self, link, d, pub, idx):
        if d == mm.DOWN and self.hold_replies and pub.topic.startswith(b"e2e/k/"):
            link.ack(d, pub)
            self.replies.append((link, pub, idx))
            return
        if d == mm.DOWN and self.hold.get(pub.topic, 0) > 0:
            self.hold[pub.topic] -= 1
            link.ack(d, pub)
            self.held[pub.topic].append((link, pub, idx))
            return
        link.forward(d, pub)

    def release(self, topic):
        for link, pub, idx in self.held[topic]:
            link.send(mm.DOWN, pub, "released", idx, None)

    def release_replies(self):
        self.hold_replies = False
        for link, pub, idx in self.replies:
            link.send(mm.DOWN, pub, "released", idx, None)


class Load:
    """QoS 1 traffic through the proxy in a thread: 5 messages on each topic
    every 50 ms (300 msg/s) until stopped, bounded to 60 s."""

    def __init__(self, env):
        self.tr = None
        self.env = env
        self.i = 0
        self.stop_ev = threading.Event()
        self.t = None

    def start(self, port):
        self.tr = ah.Traffic(self.env, port, TOPICS, 0, clients=2, prefix="npub")
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        end = time.monotonic() + 60
        while not self.stop_ev.is_set() and time.monotonic() < end:
            self.tr.run(first=self.i, count=5)
            self.i += 5
            time.sleep(0.05)

    def stop(self):
        self.stop_ev.set()
        self.t.join(10)
        return self.i


def streams(adv, topic, epoch):
    """Headers of the envelopes the proxy published on @topic under @epoch."""
    out = []
    for _t, _tp, p, _r in adv.seen(lambda m: m[1] == topic):
        hd = h.env_parse(bytes(p))
        if hd and hd["epoch"] == epoch:
            out.append(hd)
    return out


def body(env, c):
    pol = Policy()
    site = ah.Site(env, c, scopes=((1, "telemetry", ["m/#"]),),
                   proxy_args=["--rotate-age", "120s", "--rotate-lead", "240s"],
                   sub_policy=lambda link: pol if (link.client_id or "").startswith("subA")
                   else None)
    alice = site.subscriber("alice")
    bob = site.subscriber("bob")
    site.start_proxy()
    adv = h.Adversary(env, site.broker)
    pa = site.start_sub(alice, ["m/#"], "subA")
    c.require(pa.wait_err(h.EV_KEY, 15), "alice received the key")
    sid = site.sender.sender_id
    epoch0 = site.sender.current_epoch(1)
    got = None
    end = time.monotonic() + 10
    while time.monotonic() < end:     # the keys made ahead come with the first tick
        got = h.fetch_keys(adv, bob, site.sender)
        if got and any(sc == 1 and fl & 2 for sc, _ep, _na, fl, _k in got[0]):
            break
        time.sleep(0.5)
    c.require(got is not None, "bob (enrolled) fetched its keys with its own identity")
    key0 = [k for sc, ep, _na, _fl, k in got[0] if sc == 1 and ep == epoch0]
    ahead = sorted((ep, k) for sc, ep, _na, fl, k in got[0] if sc == 1 and fl & 2)
    c.require(key0 and ahead, "bob holds the current key (epoch %s) and keys made ahead (%s)" % (
        epoch0, [ep for ep, _k in ahead]))
    key0 = key0[0]
    next_ep, next_key = ahead[0]

    load = Load(env)
    load.start(site.proxy.port)
    c.require(pa.wait_json(60, 15) >= 60, "alice receives the load before the revocation")

    # In flight at the rotation: the broker holds these back from alice.
    site.sm.call(setattr, pol, "hold", {b"m/b": HOLD})
    c.require(h.wait_until(lambda: len(pol.held[b"m/b"]) >= HOLD // 2, 10),
              "the broker holds back genuine m/b messages")
    # The broker also holds back alice's next key delivery: between the
    # ANNOUNCE and the DELIVERY she knows the new epoch only by its number.
    site.sm.call(setattr, pol, "hold_replies", True)
    t_rev = time.monotonic()
    site.sender.revoke(bob)
    epoch1 = site.sender.current_epoch(1)
    c.require(epoch1 is not None and epoch1 > ahead[-1][0],
              "revoke rotated scope 1 above every key made ahead (epoch %s -> %s, ahead %s)" % (
                  epoch0, epoch1, [ep for ep, _k in ahead]))
    c.require(h.wait_until(lambda: len(pol.replies) >= 1, 10),
              "alice asked for the announced epoch; the broker holds its DELIVERY back")
    rnd = lambda: int.from_bytes(os.urandom(4), "big") | 1   # noqa: E731
    fpay = {}

    def forge(what, topic, ep, key, seq, run, ctr):
        text = ("bob after revocation: %s %s" % (what, os.urandom(3).hex())).encode()
        fpay[text] = (topic, seq, ep, what)
        adv.publish(topic, h.env_seal(key, topic, h.env_header(1, ep, sid, run, ctr, seq), text))

    forge("discarded NEXT key, after the ANNOUNCE, before the DELIVERY", "m/early", next_ep,
          next_key, 1, rnd(), 1)
    time.sleep(0.5)
    site.sm.call(pol.release_replies)
    c.require(pa.wait_err(h.EV_KEY + r".*epoch %d" % epoch1, 15, since=t_rev),
              "alice fetched epoch %s" % epoch1)
    time.sleep(0.3)

    # Bob, revoked, seals under the discarded key made ahead and the old key.
    c_top = max(streams(adv, "m/c", epoch0), key=lambda x: x["seq"])
    forged = [
        ("discarded NEXT key, fresh run on m/a", "m/a", next_ep, next_key, 1, rnd(), 1),
        ("discarded NEXT key, fresh run on m/quiet", "m/quiet", next_ep, next_key, 1, rnd(), 1),
        ("old key, fresh run on m/b", "m/b", epoch0, key0, 1, rnd(), 1 << 40),
        ("old key, m/c continued above its top", "m/c", epoch0, key0, c_top["seq"] + 5,
         c_top["run"], c_top["counter"] + 1000),
    ]
    for f in forged:
        forge(*f)
        time.sleep(0.1)
    # Summaries every second pass over the forgeries; the load goes on. The
    # held genuine ones come after their summary was checked.
    time.sleep(2.0)
    c.require(h.wait_until(lambda: len(pol.held[b"m/b"]) == HOLD, 5), "all %d held" % HOLD)
    site.sm.call(pol.release, b"m/b")
    time.sleep(2.0)
    n = load.stop()
    c.require(load.tr.wait_acked(30), "every publish of the load acknowledged (%d per topic)" % n)
    h.wait_until(lambda: len(pa.err_match(r"retired key forgery")) >= len(fpay), 15)
    total = n * len(TOPICS)
    h.wait_until(lambda: sum(1 for o in pa.messages() if h.payload_of(o) is not None) >= total,
                 20)
    time.sleep(2.5)                      # the last summaries: nothing left held
    c.expect(pa.stop() == 0, "alice exits 0")

    msgs = pa.messages()
    delivered = [o for o in msgs if h.payload_of(o) is not None]
    payloads = collections.Counter(h.payload_of(o) for o in delivered)
    leaked = [fpay[p][3] for p in fpay if p in payloads]
    c.expect(not leaked, "no forgery of the revoked member delivered (%s)" % leaked)
    promoted = [o for o in delivered if o.get("epoch") == next_ep]
    c.expect(not promoted, "nothing delivered under the discarded key made ahead (epoch %s): no "
             "early promotion (%d)" % (next_ep, len(promoted)))
    fv = {}
    for o in msgs:
        for p, (topic, seq, ep, what) in fpay.items():
            if (o.get("topic"), o.get("seq"), o.get("epoch")) == (topic, seq, ep) and \
                    h.payload_of(o) is None:
                fv[what] = h.verdict_of(o)
    ok_forged = len(fv) == len(fpay) and all(v == "FORGED" for v in fv.values())
    c.expect(ok_forged, "each forgery reported FORGED: %s" % fv)
    sent = [load.tr.payload(t, i).encode() for i in range(n) for t in TOPICS]
    once = sum(1 for p in sent if payloads[p] == 1)
    c.expect(once == len(sent) and len(delivered) == len(sent),
             "every genuine message delivered exactly once (%d of %d, %d deliveries)" % (
                 once, len(sent), len(delivered)))
    # A GAP is true on m/b only: the broker held HOLD messages back there
    # (they come later, LATE and confirmed).
    bad = collections.Counter(h.verdict_of(o) for o in delivered
                              if h.verdict_of(o) not in ("OK", "LATE") and not (
                                  h.verdict_of(o) == "GAP" and o.get("topic") == "m/b" and
                                  0 < (o.get("gap") or 0) <= HOLD))
    c.expect(not bad, "every genuine message OK or LATE, GAP only past the held-back ones "
             "(others: %r: %s)" % (dict(bad), [
                 {k: o.get(k) for k in ("topic", "seq", "epoch", "gap", "confirmed", "verdict")}
                 for o in delivered if h.verdict_of(o) not in ("OK", "LATE")][:5]))
    conf = sum(1 for o in delivered if o.get("confirmed"))
    c.expect(conf >= 1, "genuine old-key messages held across the rotation were delivered, "
             "confirmed by their summary (%d)" % conf)
    false_forged = [o for o in msgs if h.verdict_of(o) == "FORGED" and
                    (o.get("topic"), o.get("seq"), o.get("epoch")) not in
                    {(t, s, e) for t, s, e, _w in fpay.values()}]
    c.expect(not false_forged, "no FORGED verdict but the forgeries' (%s)" % [
        (o.get("topic"), o.get("seq"), o.get("epoch")) for o in false_forged])
    end = None
    for line in reversed(pa.err_match(r"summaries: ")):
        end = RX_END.search(line)
        if end:
            break
    c.require(end, "alice printed the summaries exit line")
    contradicted, never, unsum = int(end.group(3)), int(end.group(4)), int(end.group(5))
    alarms = [l for l in pa.err_match(ah.RX_SUMMARY_ALARM) if "retired key" not in l]
    no_false = not alarms and unsum == 0 and never == 0 and contradicted == 0
    c.expect(no_false, "no summary alarm on the genuine traffic: %s, unsummarized %d, never "
             "arrived %d, contradicted %d" % (alarms, unsum, never, contradicted))
    h.log("%d genuine delivered (%d confirmed by a summary after the rotation); forgeries %s" %
          (len(delivered), conf, fv))
    ah.promise_rows("adversary-revoked-next", [
        ("13.7 a revoked member's key made ahead forges nothing once the new epoch is known "
         "(SPEC 11.5)", "revoked member", True,
         "bob, revoked, seals under the discarded NEXT key and the old key under QoS 1 load",
         "%d FORGED, %d delivered, %d under the discarded key" % (
             sum(1 for v in fv.values() if v == "FORGED"), len(leaked), len(promoted)),
         ok_forged and not leaked and not promoted),
        ("13.7 genuine traffic across a revocation is delivered, with no false alarm",
         "revoked member", True, "%d genuine QoS 1 messages through the revocation" % len(sent),
         "%d delivered once, %d false FORGED, %d alarms" % (
             once, len(false_forged), len(alarms) + unsum + never + contradicted),
         once == len(sent) and not false_forged and no_false),
    ])


if __name__ == "__main__":
    h.main("adversary-revoked-next", body)
