#!/usr/bin/python3
"""Integration 7: flood of the control topic.

While a sender (e2e-pub -l, key service up) runs, the adversary publishes
10,000 hostile messages on e2e/control (QoS 1, so the broker really hands
every one to the sender): random garbage of 0..2100 bytes, well-formed key
requests for this sender with bad signatures, oversized messages (> 2048
bytes, up to 16 KiB, a few of 256 KiB, with a valid-looking header) and replays of one signed
request. Expected: the sender stays up, answers none of the garbage (no
amplification), its RSS (VmRSS) grows by less than 20 MiB, and afterwards a
legitimate subscriber gets its key within a few seconds and decrypts.

In the middle of the flood, after 1,800 forged requests under random keys
have emptied the key service's global rate bucket, sits one genuine request
of an enrolled subscriber: it must be answered with a delivery at once (its
own bucket, SPEC 11.3 step 3), not starved until the flood is over.
"""
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from nacl import bindings as nb  # noqa: E402

TOPIC = "fl/t"
TOTAL = 10000
MID = 6000           # where the genuine request goes: after 1,800 forged ones
RSS_BOUND_KIB = 20 * 1024
KEY_WITHIN_S = 5.0


def hostile_messages(s, rnd):
    sid = s.sender_id
    sign_pk, sign_sk = nb.crypto_sign_keypair()
    dh_pk, _ = nb.crypto_box_keypair()
    eph_pk, _ = nb.crypto_box_keypair()
    replay = h.build_request(sign_sk, sign_pk, dh_pk, eph_pk, sid, "e2e/k/" + os.urandom(16).hex())
    out = []
    for i in range(TOTAL):
        k = i % 10
        if k < 4:      # garbage, including empty and header-like prefixes
            n = rnd.randrange(0, 2101)
            m = rnd.randbytes(n)
            if i % 3 == 0 and n >= 2:
                m = bytes([1, rnd.randrange(0, 8)]) + m[2:]
        elif k < 7:    # well-formed requests to this sender, bad signature
            m = h.build_request(None, rnd.randbytes(32), rnd.randbytes(32), rnd.randbytes(32),
                                sid, "e2e/k/" + rnd.randbytes(16).hex(), sign=False,
                                want=[(0, 0)] * rnd.randrange(0, 4))
        elif k < 9:    # oversized, valid-looking head
            n = 262144 if i % 1000 == 7 else rnd.randrange(2049, 16385)
            m = h.ctl_head(h.CTL_REQUEST, sid, int(time.time() * 1000)) + rnd.randbytes(n - 14)
        else:          # replays of one correctly signed request
            m = replay
        out.append(m)
    return out


def ctl_ok(sender, topic, msg):
    return h.ctl_verify(sender.sign_pk, topic, msg)


def body(env, c):
    broker = h.Broker(env)
    adv = h.Adversary(env, broker)
    s = h.Sender(env, "site")
    legit = h.Subscriber(env, "legit", trust=[s])
    s.enroll(legit, ["default"])
    mid = h.Subscriber(env, "mid", trust=[s])
    s.enroll(mid, ["default"])
    rnd = random.Random(int.from_bytes(os.urandom(4), "big"))
    msgs = hostile_messages(s, rnd)

    pub = h.start_pub_lines(env, broker, s, TOPIC, name="pub")
    c.require(adv.probe_key_service(s, 10) is not None, "e2e-pub key service up")
    time.sleep(0.5)
    rss0 = pub.rss_kib()
    c.require(rss0, "read VmRSS of e2e-pub (pid %d)" % pub.pid)
    peak = [rss0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            r = pub.rss_kib()
            if r:
                peak[0] = max(peak[0], r)
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()

    # The enrolled subscriber's genuine request, in the middle of the flood.
    mid_reply = "e2e/k/" + os.urandom(16).hex()
    adv.probe_topics.add(mid_reply)
    adv.c.subscribe(mid_reply, qos=1)
    time.sleep(0.2)
    eph_pk, _eph_sk = nb.crypto_box_keypair()
    msgs.insert(MID, h.build_request(mid.id["sign_sk"], mid.sign_pk, mid.dh_pk, eph_pk,
                                     s.sender_id, mid_reply))

    t0 = time.monotonic()
    infos = [adv.c.publish(h.CONTROL_TOPIC, m, qos=1) for m in msgs]
    deadline = time.monotonic() + 90
    for info in infos:
        info.wait_for_publish(max(0.1, deadline - time.monotonic()))
    acked = sum(1 for i in infos if i.is_published())
    t_flood = time.monotonic() - t0
    h.log("flood: %d/%d acked by the broker in %.1f s (%.1f MB)" % (
        acked, TOTAL, t_flood, sum(len(m) for m in msgs) / 1e6))
    c.require(acked == len(msgs), "broker acknowledged the whole flood (%d/%d)" % (
        acked, len(msgs)))
    # The adversary's '#' subscription is one more consumer of the flood;
    # once it has all of it back, the broker fanned it out to the sender too.
    adv.wait_seen(lambda m: m[1] == h.CONTROL_TOPIC, 60, n=len(msgs), since=t0)

    got_mid = adv.wait_seen(lambda m: m[1] == mid_reply and len(m[2]) > 1 and
                            m[2][1] == h.CTL_DELIVERY and ctl_ok(s, mid_reply, m[2]), 10, since=t0)
    c.expect(got_mid, "the enrolled subscriber's request in the middle of the flood (after "
             "1,800 forged ones) was answered with a signed delivery")

    # A probe queued behind the flood: answered => the sender worked through it.
    took = adv.probe_key_service(s, 30)
    c.expect(took is not None, "sender still answers key requests after the flood")
    h.log("sender answered a probe %.2f s after the flood was delivered" % (took or -1))
    c.expect(pub.alive(), "e2e-pub survived the flood")

    t_sub = time.monotonic()
    sp = h.start_sub(env, broker, legit, [TOPIC], name="sub", args=["--state", "none"])
    got_key = sp.wait_err(h.EV_KEY, 20)
    dt = time.monotonic() - t_sub
    c.expect(got_key and dt <= KEY_WITHIN_S,
             "legitimate subscriber got its key %.2f s after starting (bound %.0f s)" % (
                 dt, KEY_WITHIN_S))
    pub.write("after the flood\n")
    pub.flush()
    c.expect(sp.wait_json(1, 10) >= 1 and h.payload_of(sp.messages()[0]) == b"after the flood",
             "legitimate subscriber decrypts after the flood")
    time.sleep(0.3)
    stop.set()
    th.join(2)
    rss1 = pub.rss_kib() or peak[0]
    grow = max(peak[0], rss1) - rss0
    h.log("e2e-pub VmRSS: before %d KiB, peak %d KiB, after %d KiB" % (rss0, peak[0], rss1))
    c.expect(grow < RSS_BOUND_KIB, "sender RSS grew by %d KiB (< %d KiB)" % (grow, RSS_BOUND_KIB))

    # No amplification: answers on reply topics during the flood are at most
    # the one for the replayed request (plus our probes).
    answers = adv.seen(lambda m: m[1].startswith("e2e/k/") and m[1] not in adv.probe_topics
                       and m[0] < t_sub, since=t0)
    c.expect(len(answers) <= 1,
             "sender answered %d of the 10,000 hostile messages (at most the first copy of "
             "the replayed signed request)" % len(answers))
    sp.stop()
    c.expect(h.finish_pub(pub, 20) == 0, "e2e-pub exited 0")


if __name__ == "__main__":
    h.main("control-flood", body)
