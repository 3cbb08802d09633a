#!/usr/bin/python3
"""Integration 12: targeted starvation of the key service (M4).

An attacker who has seen one of alice's key requests knows her public keys
(they are in every request). It floods the control topic at ~100 msg/s with
well-formed requests carrying alice's keys but bad signatures. Alice's own
rate bucket is charged only for requests whose signature verifies (SPEC
11.3), so her genuine requests, sent during the flood faster than her own
rate would allow a single attacker-drained bucket, are all answered with a
signed delivery; before, the garbage emptied her bucket and she got
"rate limited" refusals.
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from nacl import bindings as nb  # noqa: E402

TOPIC = "tg/t"
FLOOD_S = 8.0
RATE = 100
ASK_EVERY_S = 0.7


def body(env, c):
    broker = h.Broker(env)
    adv = h.Adversary(env, broker)
    s = h.Sender(env, "site")
    alice = h.Subscriber(env, "alice", trust=[s])
    s.enroll(alice, ["default"])
    pub = h.start_pub_lines(env, broker, s, TOPIC, name="pub")
    c.require(adv.probe_key_service(s, 10) is not None, "e2e-pub key service up")

    stop = threading.Event()
    sent = [0]

    def flood():
        t0 = time.monotonic()
        while not stop.is_set() and time.monotonic() - t0 < FLOOD_S:
            eph, _ = nb.crypto_box_keypair()
            m = h.build_request(None, alice.sign_pk, alice.dh_pk, eph, s.sender_id,
                                "e2e/k/" + os.urandom(16).hex(), sign=False)
            adv.c.publish(h.CONTROL_TOPIC, m, qos=0)
            sent[0] += 1
            due = t0 + sent[0] / RATE
            if due > time.monotonic():
                time.sleep(due - time.monotonic())

    th = threading.Thread(target=flood, daemon=True)
    th.start()
    time.sleep(1.0)           # her bucket (burst 10) would be empty by now
    asked = answered = 0
    kinds = []
    t_end = time.monotonic() + FLOOD_S - 2.0
    while time.monotonic() < t_end:
        reply = "e2e/k/" + os.urandom(16).hex()
        adv.probe_topics.add(reply)
        adv.c.subscribe(reply, qos=1)
        time.sleep(0.05)
        eph, _ = nb.crypto_box_keypair()
        req = h.build_request(alice.id["sign_sk"], alice.sign_pk, alice.dh_pk, eph, s.sender_id,
                              reply)
        t = time.monotonic()
        adv.c.publish(h.CONTROL_TOPIC, req, qos=1)
        asked += 1
        got = adv.wait_seen(lambda m, r=reply: m[1] == r and len(m[2]) > 1 and
                            h.ctl_verify(s.sign_pk, r, m[2]), 3, since=t)
        d = h.parse_ctl(got[0][2]) if got else None
        kinds.append((d["type"], d.get("reason")) if d else None)
        answered += bool(d and d["type"] == h.CTL_DELIVERY and
                         d.get("request_hash") == h.ctl_hash(req))
        time.sleep(max(0, ASK_EVERY_S - (time.monotonic() - t)))
    stop.set()
    th.join(5)
    h.log("flood: %d garbage requests under alice's keys in %.0f s; alice asked %d times" % (
        sent[0], FLOOD_S, asked))
    c.expect(sent[0] >= RATE * FLOOD_S * 0.7, "the flood ran at ~%d msg/s (%d sent)" % (
        RATE, sent[0]))
    c.expect(asked >= 6 and answered == asked,
             "alice's genuine requests during the flood: %d of %d answered with a delivery "
             "(answers: %s)" % (answered, asked, kinds))
    c.expect(pub.alive(), "e2e-pub survived the flood")
    c.expect(h.finish_pub(pub, 20) == 0, "e2e-pub exited 0")
    h.promise_rows("control-targeted", [
        ("13.8 the key service cannot be starved on someone's behalf", "malicious broker",
         False, "floods garbage requests carrying alice's public key at ~%d msg/s" % RATE,
         "%d of %d of alice's genuine requests answered with keys" % (answered, asked),
         not c.failed)])


if __name__ == "__main__":
    h.main("control-targeted", body)
