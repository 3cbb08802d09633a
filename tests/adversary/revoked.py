#!/usr/bin/python3
"""Adversary: a revoked member loses its forging power at once (issue 13
item 7, finding M2; SPEC 11.5).

Real processes: mosquitto, e2e-proxy (summaries every second), alice's e2e-sub
behind the malicious broker (mitm.py). Bob is a real enrolled subscriber: it
fetches its keys with its own identity over the broker, as its key ring
would. Then:

  1. the broker holds back 3 genuine messages on m/g and 2 on m/h sealed
     under the old key (in flight at the rotation);
  2. `e2e-keytool revoke bob`: the proxy rotates, alice fetches the new epoch;
  3. bob seals with the old key and publishes to the real mosquitto: a fresh
     run on m/a, m/a's stream continued above its top, and the hole on m/g
     (the seq of a held genuine message, sent before it);
  4. the broker releases the m/g messages at once, and the m/h ones only
     after alice checked the summary that lists them (it reports them "never
     arrived": the summary-first path).

Expected: each forgery reported FORGED ("retired key forgery"), none
delivered; the 5 genuine ones delivered after the summary confirmed them
(JSON "confirmed": true), none lost, no false alarm (each "never arrived" the
delay caused corrected "arrived late"); everything sealed after the rotation
OK.
"""
import collections
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import advharness as ah  # noqa: E402

h, mm = ah.h, ah.mm
HOLD = 3                             # m/g: released right after the forgeries
HOLD_H = 2                           # m/h: released after their summary said "never arrived"
RX_END = re.compile(r"summaries: (\d+) received; entries verified (\d+), contradicted (\d+); "
                    r"messages never arrived (\d+), unsummarized (\d+), not checked (\d+); "
                    r"stalls (\d+); arrived late (\d+), .*retired-key messages confirmed "
                    r"(\d+), forged (\d+)")


class Policy:
    """On alice's link: hold back the next hold[topic] messages on a topic."""

    def __init__(self):
        self.hold = {}
        self.held = collections.defaultdict(list)

    def __call__(self, link, d, pub, idx):
        if d == mm.DOWN and self.hold.get(pub.topic, 0) > 0:
            self.hold[pub.topic] -= 1
            link.ack(d, pub)             # the broker thinks it delivered
            self.held[pub.topic].append((link, pub, idx))
            return
        link.forward(d, pub)

    def release(self, topic):
        for link, pub, idx in self.held[topic]:
            link.send(mm.DOWN, pub, "released", idx, None)


def streams(adv, topic, epoch, since=0.0):
    """Envelopes the proxy published on @topic under @epoch: [(header, payload)]."""
    out = []
    for _t, tp, p, _r in adv.seen(lambda m: m[1] == topic, since=since):
        hd = h.env_parse(bytes(p))
        if hd and hd["epoch"] == epoch:
            out.append((hd, bytes(p)))
    return out


def body(env, c):
    pol = Policy()
    site = ah.Site(env, c, scopes=((1, "telemetry", ["m/#"]),),
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
    got = h.fetch_keys(adv, bob, site.sender)
    c.require(got is not None, "bob (enrolled) fetched its keys with its own identity")
    key0 = [k for sc, ep, _na, _fl, k in got[0] if sc == 1 and ep == epoch0]
    c.require(key0, "bob holds the current key of scope 1 (epoch %s)" % epoch0)
    key0 = key0[0]

    topics = ["m/a", "m/g", "m/h"]
    tr = ah.Traffic(env, site.proxy.port, topics, 20, clients=1, prefix="rpub")
    tr.run(first=0, count=5)
    c.require(tr.wait_acked(20) and pa.wait_json(15, 15) >= 15,
              "alice received the 15 messages before the revocation")
    # In flight at the rotation: the broker holds these back from alice.
    site.sm.call(setattr, pol, "hold", {b"m/g": HOLD, b"m/h": HOLD_H})
    tr.run(first=5, count=HOLD)
    c.require(tr.wait_acked(20) and h.wait_until(
        lambda: len(pol.held[b"m/g"]) == HOLD and len(pol.held[b"m/h"]) == HOLD_H, 10),
        "the broker holds back %d genuine m/g and %d m/h messages under epoch %s" % (
            HOLD, HOLD_H, epoch0))
    time.sleep(0.3)
    a_env = streams(adv, "m/a", epoch0)
    g_env = streams(adv, "m/g", epoch0)
    c.require(len(a_env) == 5 + HOLD and len(g_env) == 5 + HOLD,
              "the adversary saw the old-epoch streams (%d, %d)" % (len(a_env), len(g_env)))
    a_top = max(a_env, key=lambda x: x[0]["seq"])[0]
    g_held = sorted((x[0] for x in g_env), key=lambda x: x["seq"])[-HOLD:]

    t_rev = time.monotonic()
    site.sender.revoke(bob)
    epoch1 = site.sender.current_epoch(1)
    c.require(epoch1 is not None and epoch1 > epoch0,
              "revoke rotated scope 1 (epoch %s -> %s)" % (epoch0, epoch1))
    c.require(pa.wait_err(h.EV_KEY + r".*epoch %d" % epoch1, 15, since=t_rev),
              "alice fetched epoch %s" % epoch1)

    # Bob, revoked, seals with the old key it still holds.
    mid = g_held[1]
    forged = [
        ("fresh run on m/a", "m/a", 1, int.from_bytes(os.urandom(4), "big") | 1, 1 << 40),
        ("m/a continued above its top", "m/a", a_top["seq"] + 3, a_top["run"],
         a_top["counter"] + 1000),
        ("the hole on m/g (a held seq)", "m/g", mid["seq"], mid["run"], mid["counter"]),
    ]
    fpay = {}
    for what, topic, seq, run, ctr in forged:
        text = ("bob after revocation: %s %s" % (what, os.urandom(3).hex())).encode()
        fpay[(topic, seq)] = text
        e = h.env_seal(key0, topic, h.env_header(1, epoch0, sid, run, ctr, seq), text)
        adv.publish(topic, e)
    time.sleep(0.5)
    site.sm.call(pol.release, b"m/g")
    # m/h: its summary comes first ("never arrived"), then the messages.
    c.expect(pa.wait_err(r"message\(s\) of 'm/h' .*never arrived", 10),
             "the summary listing the held m/h messages was checked before they came")
    site.sm.call(pol.release, b"m/h")
    tr.run(first=5 + HOLD, count=3)      # under the new epoch
    c.require(tr.wait_acked(20), "post-rotation messages acknowledged")
    # Two summaries (1 s) pass over the forgeries that no summary covers.
    h.wait_until(lambda: len(pa.err_match(r"retired key forgery")) >= len(forged), 12)
    time.sleep(1.5)
    c.expect(pa.stop() == 0, "alice exits 0")

    msgs = pa.messages()
    delivered = [o for o in msgs if h.payload_of(o) is not None]
    payloads = collections.Counter(h.payload_of(o) for o in delivered)
    c.expect(not any(p in payloads for p in fpay.values()),
             "no forgery of the revoked member was delivered")
    fv = {}
    for o in msgs:
        k = (o.get("topic"), o.get("seq"))
        if k in fpay and o.get("epoch") == epoch0 and h.payload_of(o) is None:
            fv[k] = h.verdict_of(o)
    ok_forged = all(fv.get(k) == "FORGED" for k in fpay)
    c.expect(ok_forged, "each forgery reported FORGED: %s" % fv)
    lines = pa.err_match(r"retired key forgery")
    c.expect(len(lines) == len(forged), "one 'retired key forgery' event per forgery (%d): %s"
             % (len(lines), lines))
    sent = [tr.payload(t, i).encode() for i in range(5 + HOLD + 3) for t in topics]
    c.expect(all(payloads[p] == 1 for p in sent) and len(delivered) == len(sent),
             "every genuine message delivered exactly once (%d of %d)" % (
                 sum(1 for p in sent if payloads[p] == 1), len(sent)))
    held_pay = [tr.payload("m/g", i).encode() for i in range(5, 5 + HOLD)] + \
        [tr.payload("m/h", i).encode() for i in range(5, 5 + HOLD_H)]
    conf = [o for o in delivered if h.payload_of(o) in held_pay]
    ok_held = len(conf) == HOLD + HOLD_H and all(o.get("confirmed") is True and o.get("epoch") == epoch0
                                        and h.verdict_of(o) in ("OK", "LATE") for o in conf)
    c.expect(ok_held, "the %d held genuine messages delivered OK under epoch %s, confirmed by "
             "the summary: %s" % (HOLD + HOLD_H, epoch0, [(o.get("seq"), h.verdict_of(o),
                                                  o.get("confirmed")) for o in conf]))
    post = [o for o in delivered if o.get("epoch") == epoch1]
    c.expect(len(post) == 3 * len(topics) and all(h.verdict_of(o) == "OK" and "confirmed" not in o
                                    for o in post),
             "post-rotation messages OK under epoch %s, not held" % epoch1)
    others = [o for o in delivered if h.payload_of(o) not in held_pay and o.get("confirmed")]
    c.expect(not others, "only the held ones waited for a summary")
    end = None
    for line in reversed(pa.err_match(r"summaries: ")):
        end = RX_END.search(line)
        if end:
            break
    c.require(end, "alice printed the summaries exit line")
    contradicted, never, unsum, late = (int(end.group(3)), int(end.group(4)),
                                        int(end.group(5)), int(end.group(8)))
    r_conf, r_forged = int(end.group(9)), int(end.group(10))
    c.expect(r_conf == HOLD + HOLD_H and r_forged == len(forged),
             "exit line: retired-key messages confirmed %d, forged %d" % (r_conf, r_forged))
    alarms = [l for l in pa.err_match(ah.RX_SUMMARY_ALARM) if "retired key" not in l]
    no_false = not alarms and unsum == 0 and never == 0 and contradicted == 0 and late >= HOLD_H
    c.expect(no_false, "no false alarm on the genuine traffic: other alarms %s, unsummarized "
             "%d, never arrived %d (after %d arrived late, >= %d expected), contradicted %d" % (
                 alarms, unsum, never, late, HOLD_H, contradicted))
    ah.promise_rows("adversary-revoked", [
        ("13.7 revocation takes forging power away at once (SPEC 11.5)", "revoked member", True,
         "bob, revoked, seals under the old key: fresh run, stream continued above its top, a "
         "held seq's hole", "%d FORGED, %d delivered" % (
             sum(1 for v in fv.values() if v == "FORGED"),
             sum(1 for p in fpay.values() if p in payloads)), ok_forged and len(lines) == 3),
        ("13.7 in-flight messages of a retired key are delivered once a summary confirms them",
         "revoked member + broker", True,
         "%d genuine old-key messages held back past the rotation (%d past their summary), bob "
         "forges one of their seqs first" % (HOLD + HOLD_H, HOLD_H), "%d delivered confirmed, %d false alarms" % (
             len(conf), len(alarms) + unsum + never), ok_held and no_false),
    ])


if __name__ == "__main__":
    h.main("adversary-revoked", body)
