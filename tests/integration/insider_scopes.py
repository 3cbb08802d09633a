#!/usr/bin/python3
"""Integration 10: scopes are bound to topics (SPEC 5.4 step 2, 11.2; H1).

A sender with three scopes: telemetry (1, "t/#", unsigned), alarms (2,
"a/#", signed) and status (3, "s/#", unsigned). The victim is enrolled for
all three, the insider only for telemetry. The insider asks the real key
service for its keys with its own identity (what its key ring gets), then
seals with its telemetry key, header scope 1, on an alarm topic and on a
status topic, with the run and the next seq of the live stream, and
publishes to the real mosquitto. Checked:
  1. the delivery carries the sender's complete map in match order (the
     implied default last) and no key of a scope the insider lacks;
  2. the victim reports both forgeries FORGED (also a suite 0x02 one signed
     with the insider's own key), delivers no forged plaintext, and the
     genuine messages with those seqs then arrive OK, not DUPLICATE;
  3. control: the same crafting on a telemetry topic is accepted (the
     insider's key is real, only the topic's scope refuses it);
  4. a stale map costs latency, not messages: the operator moves s/# to
     telemetry while the victim runs; the sender's next message on s/line
     (now scope 1) is refused by the victim's old map, held while it fetches
     the sender's current map, and then delivered OK.
"""
import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from nacl import bindings as nb  # noqa: E402


def signed_env(sign_sk, env, topic):
    """SPEC 3.4: Ed25519 over BLAKE2b-512(context || u16 len || topic || env)."""
    t = topic.encode()
    d = hashlib.blake2b(b"mqtt-e2e/v1/sig\x00" + len(t).to_bytes(2, "big") + t + env,
                        digest_size=64).digest()
    return env + nb.crypto_sign(d, sign_sk)[:64]


def feed(pub, line):
    pub.write(line + "\n")
    pub.flush()


def body(env, c):
    broker = h.Broker(env)
    adv = h.Adversary(env, broker)
    s = h.Sender(env, "site", scopes=[(1, "telemetry", ["t/#"]), (2, "alarms", ["a/#"]),
                                      (3, "status", ["s/#"])])
    with open(os.path.join(s.dir, "scopes"), "a") as f:
        f.write("sign alarms\n")
    victim = h.Subscriber(env, "victim", trust=[s])
    insider = h.Subscriber(env, "insider", trust=[s])
    s.enroll(victim, ["telemetry", "alarms", "status"])
    s.enroll(insider, ["telemetry"])

    # One sender process per state directory (SPEC 6.5): the two topics'
    # publishers take turns, a/boiler's first, then s/line's to the end.
    apub = h.start_pub_lines(env, broker, s, "a/boiler", qos=1, name="pub-a")
    spub = None
    c.require(adv.probe_key_service(s, 10) is not None, "sender's key service is up")

    # ---- 1. the insider's own keys, and the map that comes with them
    got = h.fetch_keys(adv, insider, s)
    c.require(got is not None, "the key service answered the insider with a delivery")
    keys, interval, rules = got
    c.expect(rules == [(1, "t/#"), (2, "a/#"), (3, "s/#"), (0, "#")],
             "delivery carries the complete map in match order, default listed: %s" % rules)
    c.expect(interval > 0, "delivery carries the sender's summary interval (%d ms)" % interval)
    c.expect(keys and all(k[0] == 1 for k in keys),
             "the insider received keys of telemetry only: %s" % [(k[0], k[1]) for k in keys])
    c.require(keys, "the insider has a telemetry key")
    _scope, epoch_a, _na, _flags, key_a = keys[0]

    vic = h.start_sub(env, broker, victim, ["t/#", "a/#", "s/#"], name="victim",
                      args=["--show-all", "--state", "none"])
    time.sleep(0.5)

    def genuine(pub, topic, text):
        feed(pub, text)
        vic.wait_json(1, 15, pred=lambda m: h.payload_of(m) == text.encode())
        return [m for m in vic.messages() if h.payload_of(m) == text.encode()]

    # ---- 2. forgeries on the signed and on the unsigned scope's topics
    for topic, signed in (("a/boiler", True), ("s/line", False)):
        if signed:
            pub = apub
        else:
            c.expect(h.finish_pub(apub) == 0, "a/boiler's publisher exited 0")
            spub = pub = h.start_pub_lines(env, broker, s, "s/line", qos=1, name="pub-s")
            c.require(adv.probe_key_service(s, 10) is not None, "key service up again")
        first = genuine(pub, topic, "genuine %s 1" % topic)
        c.require(first and h.verdict_of(first[0]) == "OK",
                  "%s: first genuine message OK (%s)" % (topic, first and h.verdict_of(first[0])))
        raw = adv.seen(lambda m, t=topic: m[1] == t)
        last = h.env_parse(raw[-1][2])
        c.expect(last["suite"] == (2 if signed else 1),
                 "%s travels as suite 0x%02x" % (topic, last["suite"]))
        # The insider's key and scope, the live stream's run and next seq.
        hdr = h.env_header(1, epoch_a, s.sender_id, last["run"], last["counter"] + 1,
                           last["seq"] + 1)
        forged = [h.env_seal(key_a, topic, hdr, b"insider on " + topic.encode())]
        if signed:
            hdr2 = h.env_header(1, epoch_a, s.sender_id, last["run"], last["counter"] + 2,
                                last["seq"] + 1, suite=2)
            forged.append(signed_env(insider.id["sign_sk"],
                                     h.env_seal(key_a, topic, hdr2, b"signed insider"), topic))
        n_before = len(vic.messages())
        for f in forged:
            adv.publish(topic, f)
        vic.wait_json(n_before + len(forged), 10)
        fakes = [m for m in vic.messages()[n_before:] if m.get("topic") == topic]
        c.expect(len(fakes) == len(forged) and all(h.verdict_of(m) == "FORGED" for m in fakes),
                 "%s: the insider's envelopes are FORGED (got %s)" %
                 (topic, [h.verdict_of(m) for m in fakes]))
        c.expect(not any(h.payload_of(m) in (b"insider on " + topic.encode(), b"signed insider")
                         for m in vic.messages()), "%s: no forged plaintext delivered" % topic)
        second = genuine(pub, topic, "genuine %s 2" % topic)
        c.expect(second and h.verdict_of(second[0]) == "OK",
                 "%s: the genuine message with the forged seq is OK, not DUPLICATE (%s)" %
                 (topic, second and h.verdict_of(second[0])))

    # ---- 3. control: the same crafting on the insider's own scope is accepted
    ctl = h.craft_envelope(key_a, "t/x", s.sender_id, 1, epoch_a, 1, b"insider on t/x")
    adv.publish("t/x", ctl)
    vic.wait_json(1, 10, pred=lambda m: m.get("topic") == "t/x")
    own = [m for m in vic.messages() if h.payload_of(m) == b"insider on t/x"]
    c.expect(own and h.verdict_of(own[0]) == "OK",
             "control: the insider's key is accepted on its own scope's topic (crafting is right)")

    # ---- 4. the sender moves s/# to telemetry: the victim's map is stale
    with open(os.path.join(s.dir, "scopes"), "w") as f:
        f.write("scope 1 telemetry t/# s/#\nscope 2 alarms a/#\nscope 3 status st/#\n"
                "sign alarms\n")
    time.sleep(2.5)   # e2e-pub reloads its scopes file within about a second
    moved = genuine(spub, "s/line", "moved to telemetry")
    raw = adv.seen(lambda m: m[1] == "s/line")
    c.expect(raw and h.env_parse(raw[-1][2])["scope"] == 1,
             "after the reload the sender seals s/line under scope 1")
    c.expect(moved and h.verdict_of(moved[0]) == "OK",
             "the victim, holding the old map, fetches the new one and accepts it OK (%s)" %
             (moved and h.verdict_of(moved[0])))
    c.expect(h.finish_pub(spub) == 0, "s/line's publisher exited 0")
    vic.stop()
    h.promise_rows("insider-scopes", [
        ("13.1 scopes are bound to topics", "insider", True,
         "an enrolled subscriber of telemetry only seals with its own key on a signed and on "
         "an unsigned scope's topic (suite 0x01 and 0x02) and publishes to the real broker",
         "every forgery FORGED, the genuine messages with those seqs OK; a moved topic "
         "accepted after the map refresh", not c.failed)])


if __name__ == "__main__":
    h.main("insider-scopes", body)
