#!/usr/bin/python3
"""Integration 2: the broker attacks the key distribution.

The adversary subscribes to '#' (the broker's view), reads each key request
on e2e/control (reply topic, ephemeral key; layout of libe2e/control/control.c) and
answers in the subscriber's place:
  (a) forged delivery: issuer = the trusted sender, bound to the right
      request, but signed with another Ed25519 key -> rejected; the key in it
      never decrypts anything.
  (b) replay of a recorded real delivery: to a new e2e-sub run (new reply
      topic: signature is topic-bound) and, within a run, on the right reply
      topic but for an older request (request-hash binding) -> rejected.
  (c) redirect: a delivery for subscriber X put on subscriber Y's reply
      topic, as is and even re-signed for Y's topic -> rejected by Y.
  (d) another trusted sender answers: Z trusts two senders; an authentic
      delivery by the second one, carrying the hash of Z's request to the
      first, on Z's reply topic -> rejected as an answer to a request to
      another sender (SPEC 11.4); the same signed by the sender asked is
      accepted.
Positive controls use the sender's real key (the test can read the sender
directory): the same crafted deliveries, correctly signed and bound, ARE
accepted, so each rejection is due to the one property under test.
No e2e-pub runs while the attacks happen, so the subscribers' requests stay
pending and nothing legitimate races the adversary.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from nacl import bindings as nb  # noqa: E402

TOPIC = "d/t"


def new_lines(proc, pattern, since):
    return proc.err_match(pattern, since)


def body(env, c):
    broker = h.Broker(env)
    adv = h.Adversary(env, broker)
    s = h.Sender(env, "site")
    x = h.Subscriber(env, "xavier", trust=[s])
    y = h.Subscriber(env, "yvonne", trust=[s])
    s.enroll(x, ["default"])
    s.enroll(y, ["default"])
    sid = s.sender_id

    # ---- Phase 1: a real exchange, recorded by the adversary -------------
    pub = h.start_pub_lines(env, broker, s, TOPIC, name="pub")
    c.require(adv.probe_key_service(s, 10) is not None, "e2e-pub key service up")
    x1 = h.start_sub(env, broker, x, ["d/#"], name="x-run1")
    c.require(x1.wait_err(h.EV_KEY, 10), "X run 1 received the key from the real sender")
    r1 = adv.wait_request(x.sign_pk, 5)
    c.require(r1 is not None, "adversary read X's key request on e2e/control")
    t1 = r1["reply_topic"]
    d1s = adv.wait_seen(lambda m: m[1] == t1, 5)
    c.require(d1s, "adversary recorded the delivery on X's reply topic %s" % t1)
    d1 = d1s[0][2]
    pd1 = h.parse_ctl(d1)
    c.expect(pd1 and pd1["type"] == h.CTL_DELIVERY and pd1["sender"] == sid and
             h.ctl_verify(s.sign_pk, t1, d1) and pd1["request_hash"] == h.ctl_hash(r1["raw"]),
             "real delivery: type 2, issuer = sender id, Ed25519 over the reply topic, "
             "request hash = BLAKE2b(request)")
    c.expect(not h.ctl_verify(s.sign_pk, "e2e/k/" + "0" * 32, d1),
             "real delivery's signature does not verify for another topic")
    for i in range(3):
        pub.write("phase1 %d\n" % i)
    pub.flush()
    c.expect(x1.wait_json(3, 10) >= 3, "X run 1 decrypted the real messages")
    x1.stop()
    c.expect(h.finish_pub(pub, 20) == 0, "e2e-pub exited 0")

    # ---- Phase 2: X run 2; no sender online, its request stays pending -----
    t_x2 = time.monotonic()
    x2 = h.start_sub(env, broker, x, ["d/#"], name="x-run2", args=["--show-all"])
    r2 = adv.fresh_request(x.sign_pk, 10, since=t_x2)
    c.require(r2 is not None and r2["reply_topic"] != t1,
              "X run 2 sent a new request with a new reply topic")
    t2 = r2["reply_topic"]

    # (b1) replay the recorded delivery to the new run.
    since = time.monotonic()
    adv.publish(t2, d1)
    c.expect(x2.wait_err(h.EV_REJECTED, 5, since),
             "(b) replayed old delivery on the new run's reply topic -> rejected")
    c.expect(not new_lines(x2, h.EV_KEY, since), "(b) no key installed from the replay")

    # (a) forged delivery: bound to X's current request, signed by a wrong key.
    k_forged = os.urandom(32)
    wrong_pk, wrong_sk = nb.crypto_sign_keypair()
    req = adv.fresh_request(x.sign_pk, 10)
    c.require(req is not None, "X's current request")
    forged = h.build_delivery(wrong_sk, sid, req["raw"], [(0, 999, 0, k_forged)],
                              req["reply_topic"])
    since = time.monotonic()
    adv.publish(t2, forged)
    c.expect(x2.wait_err(h.EV_REJECTED, 5, since),
             "(a) delivery signed with a wrong key -> rejected")
    c.expect(not new_lines(x2, h.EV_KEY, since), "(a) no key installed from the forgery")
    # The forged key must not decrypt anything: an envelope sealed with it.
    forged_pt = b"FORGED-KEY-PLAINTEXT-" + os.urandom(6).hex().encode()
    adv.publish(TOPIC, h.craft_envelope(k_forged, TOPIC, sid, 0, 999, 5000, forged_pt))
    time.sleep(1.0)
    c.expect(not any(h.payload_of(o) == forged_pt for o in x2.messages()),
             "(a) envelope under the forged key is not delivered")

    # Positive control for (a): same construction, signed by the real sender.
    k_ctl = os.urandom(32)
    req = adv.fresh_request(x.sign_pk, 10)
    c.require(req is not None, "X's current request (control)")
    good = h.build_delivery(s.id["sign_sk"], sid, req["raw"], [(0, 998, 0, k_ctl)],
                            req["reply_topic"])
    since = time.monotonic()
    adv.publish(t2, good)
    ok = x2.wait_err(h.EV_KEY + r".*epoch 998", 5, since)
    c.expect(ok, "control: the same delivery signed by the real sender is accepted "
             "(so (a) failed on the signature alone); stderr:\n" + x2.tail(5))
    ctl_pt = b"CONTROL-PLAINTEXT-" + os.urandom(6).hex().encode()
    adv.publish(TOPIC, h.craft_envelope(k_ctl, TOPIC, sid, 0, 998, 6000, ctl_pt))
    x2.wait_json(1, 5, lambda o: h.payload_of(o) == ctl_pt)
    c.expect(any(h.payload_of(o) == ctl_pt and h.verdict_of(o) in h.DELIVERING
                 for o in x2.messages()),
             "control: an envelope under the accepted key decrypts (crafting is right)")

    # (b2) replay within the run: right topic, valid signature, but for an
    # older request. An envelope of an epoch X lacks makes it ask again.
    since = time.monotonic()
    adv.publish(TOPIC, h.craft_envelope(os.urandom(32), TOPIC, sid, 0, 996, 6500, b"junk"))
    adv.wait_request(x.sign_pk, 5, since=since)
    req_new = adv.fresh_request(x.sign_pk, 10)
    c.require(req_new is not None and req_new["raw"] != req["raw"],
              "X has a new pending request (it still lacks epoch 999)")
    since = time.monotonic()
    adv.publish(t2, good)
    c.expect(x2.wait_err(r"reject.*(replay|redirect|not an answer)", 5, since),
             "(b) accepted-before delivery replayed on the same reply topic -> rejected as "
             "not an answer to the current request")
    c.expect(not new_lines(x2, h.EV_KEY, since), "(b) replay installed no key")

    # ---- (c) redirect from X's reply topic to Y's -------------------------
    t_y = time.monotonic()
    y1 = h.start_sub(env, broker, y, ["d/#"], name="y", args=["--show-all", "--state", "none"])
    ry = adv.fresh_request(y.sign_pk, 10, since=t_y)
    c.require(ry is not None, "Y's key request seen")
    ty = ry["reply_topic"]
    k_x = os.urandom(32)
    rx = adv.fresh_request(x.sign_pk, 10)
    c.require(rx is not None, "X's current request")
    # Epoch 1001, above the 998 X holds: a lower epoch would be retired at once
    # (SPEC 11.5) and, with summaries off here, accept nothing.
    dx = h.build_delivery(s.id["sign_sk"], sid, rx["raw"], [(0, 1001, 0, k_x)], t2)
    dx_resigned = h.build_delivery(s.id["sign_sk"], sid, rx["raw"], [(0, 1001, 0, k_x)], ty)
    since = time.monotonic()
    adv.publish(ty, dx)
    c.expect(y1.wait_err(h.EV_REJECTED, 5, since),
             "(c) X's delivery redirected to Y's reply topic -> rejected by Y")
    since = time.monotonic()
    adv.publish(ty, dx_resigned)
    c.expect(y1.wait_err(r"reject.*(replay|redirect|not an answer)", 5, since),
             "(c) X's delivery even re-signed for Y's topic -> rejected (bound to X's request)")
    since = time.monotonic()
    adv.publish(t2, dx)
    c.expect(x2.wait_err(h.EV_KEY + r".*epoch 1001", 5, since),
             "control: the same delivery on X's own reply topic is accepted by X")
    x_pt = b"REDIRECTED-KEY-PLAINTEXT-" + os.urandom(6).hex().encode()
    adv.publish(TOPIC, h.craft_envelope(k_x, TOPIC, sid, 0, 1001, 7000, x_pt))
    x2.wait_json(1, 5, lambda o: h.payload_of(o) == x_pt)
    time.sleep(0.5)
    c.expect(any(h.payload_of(o) == x_pt for o in x2.messages()),
             "control: X decrypts under that key")
    c.expect(not any(h.payload_of(o) == x_pt for o in y1.messages()),
             "(c) Y decrypts nothing under the redirected key")
    c.expect(not y1.err_match(h.EV_KEY), "(c) Y installed no key at all")

    # ---- (d) an answer by another trusted sender than the one asked ------
    s2 = h.Sender(env, "other-site")
    z = h.Subscriber(env, "zoe", trust=[s, s2])
    s.enroll(z, ["default"])
    s2.enroll(z, ["default"])
    t_z = time.monotonic()
    z1 = h.start_sub(env, broker, z, ["d/#"], name="z", args=["--show-all", "--state", "none"])

    def z_request_to(target):
        h.wait_until(lambda: [r for r in adv.requests(t_z, z.sign_pk) if r["sender"] == target],
                     10)
        rs = [r for r in adv.requests(t_z, z.sign_pk) if r["sender"] == target]
        return rs[-1] if rs else None

    rz = z_request_to(sid)
    c.require(rz is not None and z_request_to(s2.sender_id) is not None,
              "Z asked both trusted senders for keys")
    k_z = os.urandom(32)
    wrong_issuer = h.build_delivery(s2.id["sign_sk"], s2.sender_id, rz["raw"],
                                    [(0, 995, 0, k_z)], rz["reply_topic"])
    since = time.monotonic()
    adv.publish(rz["reply_topic"], wrong_issuer)
    c.expect(z1.wait_err(r"reject.*request to another sender", 5, since),
             "(d) authentic delivery by the other sender, bound to Z's request to the first "
             "-> rejected as answering a request to another sender; stderr:\n" + z1.tail(5))
    c.expect(not new_lines(z1, h.EV_KEY, since), "(d) no key installed from it")
    rz = z_request_to(sid)
    right_issuer = h.build_delivery(s.id["sign_sk"], sid, rz["raw"], [(0, 995, 0, k_z)],
                                    rz["reply_topic"])
    since = time.monotonic()
    adv.publish(rz["reply_topic"], right_issuer)
    c.expect(z1.wait_err(h.EV_KEY + r".*epoch 995", 5, since),
             "control: the same delivery by the sender asked is accepted")
    z1.stop()

    y1.stop()
    x2.stop()
    allx = x2.messages()
    c.expect(not any(h.payload_of(o) == forged_pt for o in allx),
             "(a) forged-key plaintext never delivered (undelivered verdicts seen: %s)" % [
                 h.verdict_of(o) for o in allx if h.payload_of(o) is None])
    c.expect(not any(forged_pt.decode() in l for l in x2.out_lines),
             "(a) forged-key plaintext nowhere in X's output")


if __name__ == "__main__":
    h.main("control-adversary", body)
