#!/usr/bin/python3
"""Interop 3: two mosquitto brokers joined by a bridge (TLS between them).

mosquitto_pub -V mqttv311 / mqttv5 -> e2e-proxy -> broker A --bridge--> broker B
-> e2e-sub -V 311 and -V 5, and a keyless paho subscriber, at B. A's bridge
(MQTT 3.1.1 over TLS, verified with the run's CA) carries the data topics
out to B and the key distribution topics both ways: e2e/control (requests,
B -> A), e2e/k/# (answers, A -> B), e2e/control/+ (announcements and
summaries, A -> B). Checks:
  * the bridge is up both ways before anything starts (probe messages);
  * both e2e-sub at B get the key from the proxy at A: their requests reach
    A exactly once (no bridge loop), the answers come back to B;
  * every publisher version reaches every subscriber version across the
    bridge (messages as in interop.publish_all, a signed scope included):
    each message once, verdict OK, epoch 1; the keyless subscriber at B
    sees each once, only envelopes, no plaintext;
  * key rotation (e2e-keytool rotate) while everything runs: the proxy's
    announcement of epoch 2 crosses the bridge, and the next messages are
    delivered at B with verdict OK under epoch 2;
  * both e2e-sub --strict exit 0.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop as iop  # noqa: E402

h = iop.h


def bridge_conf(env, to, prefix):
    return [
        "connection bridge-a-to-b",
        "address %s:%d" % (to.host, to.port),
        "bridge_cafile " + env.pki()["ca_crt"],
        "bridge_insecure false",
        "bridge_protocol_version mqttv311",
        "remote_clientid bridge-a-%d" % os.getpid(),
        "cleansession true",
        "try_private true",
        "notifications false",
        "start_type automatic",
        "restart_timeout 1",
        "topic e2e/control both 1",
        "topic e2e/control/+ both 1",
        "topic e2e/k/# both 1",
        "topic %s/# out 1" % prefix,
    ]


def probe(c, src, dst, what):
    """A message published at src on e2e/k/<random> arrives at dst."""
    topic = "e2e/k/probe" + os.urandom(6).hex()
    ok = False
    for _ in range(20):
        src.adv.publish(topic, b"probe")
        if dst.adv.wait_seen(lambda m: m[1] == topic, 0.5):
            ok = True
            break
    c.require(ok, "bridge up: a message published at %s reaches %s" % what)


def body(env, c):
    prefix = iop.new_prefix()
    b = h.Broker(env, name="mosquitto-b")
    a = h.Broker(env, name="mosquitto-a", extra_conf=bridge_conf(env, b, prefix))
    raw_a = iop.RawPaho(env, a, name="raw-a")
    raw_b = iop.RawPaho(env, b, name="raw-b")
    probe(c, raw_a, raw_b, ("A", "B"))
    probe(c, raw_b, raw_a, ("B", "A"))

    label = "A->bridge->B"
    r = iop.run_matrix(env, c, label, iop.mosquitto_endpoint(a), iop.mosquitto_endpoint(b),
                       raw_b, prefix=prefix)
    sender, procs = r["sender"], r["procs"]

    # Key distribution crossed the bridge: requests B -> A, answers A -> B.
    subs_pk = {s.sign_pk for s in r["subs"].values()}
    reqs = [q for q in raw_a.adv.requests() if q["sign_pk"] in subs_pk]
    c.expect(set(q["sign_pk"] for q in reqs) == subs_pk,
             "%s: both subscribers' key requests (published at B) reached A" % label)
    raws = [q["raw"] for q in reqs]
    c.expect(len(raws) == len(set(raws)), "%s: each key request reached A once (no bridge loop; "
             "%d requests, %d distinct)" % (label, len(raws), len(set(raws))))
    replies = {q["reply_topic"] for q in reqs}
    answered = {m[1] for m in raw_b.adv.seen(lambda m: m[1] in replies)}
    c.expect(answered == replies, "%s: the proxy's answers (published at A) reached B on every "
             "reply topic (%d of %d)" % (label, len(answered), len(replies)))

    # Rotation: the announcement crosses the bridge, epoch 2 is delivered.
    before = {v: len(p.messages()) for v, p in procs.items()}
    sender.rotate()

    def announced():
        for _t, topic, payload, _r in raw_b.adv.seen(
                lambda m: m[1] == "e2e/control/%08x" % sender.sender_id):
            d = h.parse_ctl(payload)
            # The scope's second epoch (numbers start at the Unix time).
            if d and d["type"] == h.CTL_ANNOUNCE and len(
                    {e for s, e, *_ in sender.keys() if s == d["scope"]}) >= 2 and \
                    d["epoch"] == max(e for s, e, *_ in sender.keys() if s == d["scope"]):
                return True
        return False
    c.expect(h.wait_until(announced, 10), "%s: the proxy's announcement of epoch 2 (at A) "
             "reached B on e2e/control/%08x" % (label, sender.sender_id))
    sent2 = iop.publish_all(env, c, label + " epoch 2", r["proxy"], prefix, tag="rot")
    iop.check_delivery(c, label + " epoch 2", procs, sent2, sender, epoch=2, before=before)
    h.wait_until(lambda: len([1 for t, _p in raw_b.seen() if t.startswith(prefix + "/")]) >=
                 len(r["sent"]) + len(sent2), 5)
    allsent = r["sent"] + sent2
    iop.check_envelopes(c, label + " (both epochs)", raw_b, prefix, [t for _x, t in allsent],
                        sender, len(allsent), [t for t, _x in allsent])
    iop.stop_subs(c, label, procs)


if __name__ == "__main__":
    h.main("interop-bridge", body)
