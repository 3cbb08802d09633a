#!/usr/bin/python3
"""Integration 9: insiders and withholding (SPEC 3.4, 11.6).

An enrolled subscriber ("insider") holds the shared payload key of its
scopes, so it can seal envelopes the others accept. Checked here:
  1. summaries: the insider slips a forged message into the live stream
     (same run, the next seq, sealed with the real key) before the sender's
     own message with that seq; the reader accepts it first, and the signed
     summary of that interval flags an insider forgery; a forged stream with
     a made-up run is reported unsummarized;
  2. signed scope (sign alarms): the insider's envelopes are FORGED at once,
     whether it falls back to suite 0x01 or signs with its own key, while
     the sender's signed alarms arrive OK;
  3. withholding: when the sender's traffic stops (SIGSTOP), the reader
     reports the sender stalled within 2.5 summary intervals.
Control run: before any attack, the reader reports nothing.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from nacl import bindings as nb  # noqa: E402

INTERVAL_MS = 1000
EV_FORGERY = r"insider forgery"
EV_UNSUMMARIZED = r"in no summary"
EV_STALLED = r"no summary from"


def key_of(sender, scope):
    epoch = sender.current_epoch(scope)
    for s, e, _c, _na, k in sender.keys():
        if s == scope and e == epoch:
            return epoch, k
    raise h.TestFailure("no current key for scope %d" % scope)


def signed_env(sign_sk, env, topic):
    """SPEC 3.4: Ed25519 over BLAKE2b-512(context || u16 len || topic || env)."""
    import hashlib
    t = topic.encode()
    d = hashlib.blake2b(b"mqtt-e2e/v1/sig\x00" + len(t).to_bytes(2, "big") + t + env,
                        digest_size=64).digest()
    return env + nb.crypto_sign(d, sign_sk)[:64]


def feed(pub, lines):
    pub.write("".join(l + "\n" for l in lines))
    pub.flush()


def body(env, c):
    broker = h.Broker(env)
    adv = h.Adversary(env, broker)
    s = h.Sender(env, "site", scopes=[(1, "telemetry", ["t/#"]), (2, "alarms", ["a/#"])])
    with open(os.path.join(s.dir, "scopes"), "a") as f:
        f.write("sign alarms\n")
    reader = h.Subscriber(env, "reader", trust=[s])
    insider = h.Subscriber(env, "insider", trust=[s])
    s.enroll(reader, ["telemetry", "alarms"])
    s.enroll(insider, ["telemetry", "alarms"])

    # ---- 1. summaries catch an insider forgery in the live stream
    pub = h.start_pub_lines(env, broker, s, "t/x", qos=1, name="pub-t",
                            args=["--summary-interval", "%dms" % INTERVAL_MS])
    c.require(adv.probe_key_service(s, 10) is not None, "sender's key service is up")
    sub = h.start_sub(env, broker, reader, ["t/#", "a/#"], name="reader",
                      args=["--show-all", "--state", "none"])
    c.require(sub.wait_err(h.EV_KEY, 10), "reader received its keys")
    feed(pub, ["clean %d" % i for i in range(5)])
    c.require(sub.wait_json(5, 10) >= 5, "5 clean messages arrived")
    time.sleep(2.5 * INTERVAL_MS / 1000)   # two summaries over clean traffic
    c.expect(not sub.err_match(EV_FORGERY) and not sub.err_match(EV_UNSUMMARIZED),
             "clean run: no insider or unsummarized alarm")

    envs = adv.seen(lambda m: m[1] == "t/x")
    c.require(envs, "broker view has the envelopes of t/x")
    last = h.env_parse(envs[-1][2])
    epoch, key = key_of(s, 1)
    t_attack = time.monotonic()
    forged = h.env_seal(key, "t/x", h.env_header(1, epoch, s.sender_id, last["run"],
                                                 last["counter"] + 1, last["seq"] + 1),
                        b"forged by the insider")
    adv.publish("t/x", forged)
    # A whole stream of its own (made-up run): no summary will ever list it.
    adv.publish("t/x", h.craft_envelope(key, "t/x", s.sender_id, 1, epoch, 1,
                                        b"fake stream", counter=7))
    time.sleep(0.3)
    feed(pub, ["real %d" % i for i in range(3)])   # the real seq last+1 comes second
    c.require(sub.wait_json(5 + 2 + 3, 10) >= 10,
              "reader saw the forged, the fake stream and the real messages")
    ok_forged = [m for m in sub.messages() if h.payload_of(m) == b"forged by the insider"]
    c.expect(ok_forged and h.verdict_of(ok_forged[0]) == "OK",
             "the forgery itself is accepted at first (a holder of the shared key)")
    c.expect(sub.wait_err(EV_FORGERY, 3 * INTERVAL_MS / 1000 + 2, since=t_attack),
             "the signed summary flags the insider forgery within one interval (+ delay)")
    c.expect(sub.wait_err(EV_UNSUMMARIZED, 5 * INTERVAL_MS / 1000 + 3, since=t_attack),
             "the made-up stream is reported as unsummarized")
    c.expect(h.finish_pub(pub) == 0, "publisher exited 0")

    # ---- 2. a signed scope refuses the insider at once
    apub = h.start_pub_lines(env, broker, s, "a/boiler", qos=1, name="pub-a",
                             args=["--summary-interval", "%dms" % INTERVAL_MS])
    c.require(adv.probe_key_service(s, 10) is not None, "alarm publisher's key service is up")
    feed(apub, ["overheat 1"])
    c.require(sub.wait_json(1, 15, pred=lambda m: m.get("topic") == "a/boiler") >= 1,
              "the sender's signed alarm arrived")
    alarm = [m for m in sub.messages() if h.payload_of(m) == b"overheat 1"]
    c.expect(alarm and h.verdict_of(alarm[0]) == "OK", "signed alarm verdict OK")
    raw = adv.seen(lambda m: m[1] == "a/boiler")
    c.expect(raw and raw[-1][2][0] == 2 and len(raw[-1][2]) >= 104,
             "alarms travel as suite 0x02 (signed) envelopes")
    aepoch, akey = key_of(s, 2)
    plain1 = h.craft_envelope(akey, "a/boiler", s.sender_id, 2, aepoch, 50, b"fake alarm v1")
    ins_sk = insider.id["sign_sk"]
    hdr2 = h.env_header(2, aepoch, s.sender_id, 0x1234567, 51, 51, suite=2)
    signed_by_insider = signed_env(ins_sk, h.env_seal(akey, "a/boiler", hdr2, b"fake alarm v2"),
                                   "a/boiler")
    n_before = len(sub.messages())
    adv.publish("a/boiler", plain1)
    adv.publish("a/boiler", signed_by_insider)
    sub.wait_json(n_before + 2, 10)
    fakes = [m for m in sub.messages()[n_before:] if m.get("topic") == "a/boiler"]
    c.expect(len(fakes) == 2 and all(h.verdict_of(m) == "FORGED" for m in fakes),
             "both insider alarms FORGED (got %s)" % [h.verdict_of(m) for m in fakes])
    c.expect(not any(h.payload_of(m) in (b"fake alarm v1", b"fake alarm v2")
                     for m in sub.messages()), "no fake alarm plaintext delivered")

    # ---- 3. withholding: the sender's traffic stops
    t_stop = time.monotonic()
    os.kill(apub.pid, signal.SIGSTOP)
    try:
        c.expect(sub.wait_err(EV_STALLED, 2.5 * INTERVAL_MS / 1000 + 2.5, since=t_stop),
                 "reader reports the sender stalled within 2.5 intervals")
    finally:
        os.kill(apub.pid, signal.SIGCONT)
    c.expect(h.finish_pub(apub) == 0, "alarm publisher exited 0")
    sub.stop()


if __name__ == "__main__":
    h.main("insider", body)
