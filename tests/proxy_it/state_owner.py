#!/usr/bin/python3
"""Proxy 10: one owner per state directory; late key answers are not attacks.

1. A second e2e-proxy, and an e2e-pub, on the state directory of a running
   e2e-proxy refuse to start, naming the running proxy's pid (SPEC 6.1);
   the running proxy is undisturbed and txstate is unchanged by them.
2. The proxy stops; two subscribers start while it is down and ask for keys
   for more than 6 s (at least three requests each, queued by the broker
   for the key service's persistent session). The proxy returns and answers
   every queued request: both get their keys, no "rejected" is reported,
   and the --strict one exits 0 (before: the answers to the earlier
   requests were called "replayed or redirected" and --strict exited 3).
3. Answers captured on the wire and injected again into the other
   subscriber (the answer it used, and a late one it dropped quietly) are
   still reported: a request gets at most one answer.
"""
import hashlib
import os
import signal
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxyharness as ph  # noqa: E402

h = ph.h

TOPIC = "sensors/late"
DOWN_S = 7.5


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def body(env, c):
    broker = ph.Mosquitto(env)
    adv = h.Adversary(env, broker)
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["sensors/#"])])
    alice = h.Subscriber(env, "alice", trust=[s])
    bob = h.Subscriber(env, "bob", trust=[s])
    s.enroll(alice, ["telemetry"])
    s.enroll(bob, ["telemetry"])
    args = ["--cafile", broker.pki["ca_crt"], "--dir", s.dir]
    px = ph.Proxy(env, broker.addr(), args)
    txstate = os.path.join(s.dir, "txstate")
    ph.mosq_pub(env, px, TOPIC, "first", qos=1)
    c.require(h.wait_until(lambda: os.path.exists(txstate), 5), "the proxy reserved counters")
    before = sha256(txstate)

    # ---- 1. a second owner is refused -----------------------------------
    px2 = ph.Proxy(env, broker.addr(), args, name="proxy-second", ready=False)
    rc = px2.proc.wait_exit(20)
    c.expect(rc not in (None, 0), "second e2e-proxy on the same --dir exits non-zero (rc %s)" % rc)
    c.expect(px2.err_match(r"in use by process %d\b" % px.pid),
             "its error names the running proxy's pid %d:\n%s" % (px.pid, px2.proc.tail(5)))
    cp = h.run(env, "pub-second", [env.pub_bin] + broker.tls_args() +
               ["--dir", s.dir, "-t", TOPIC, "-m", "from a second owner", "-q", "1"], check=False)
    err = cp.stderr.decode(errors="replace")
    c.expect(cp.returncode != 0 and ("in use by process %d" % px.pid) in err,
             "e2e-pub on the proxy's --dir refuses naming pid %d (rc %d): %s" % (
                 px.pid, cp.returncode, err.strip()))
    c.expect(px.alive() and sha256(txstate) == before,
             "the running proxy is undisturbed and txstate unchanged by the refused starts")

    # ---- 2. subscribers started while the proxy is down -----------------
    px.stop()
    t_down = time.monotonic()
    sa = h.start_sub(env, broker, alice, [TOPIC], name="sub-strict",
                     args=["--strict", "--state", "none"])
    sb = h.start_sub(env, broker, bob, [TOPIC], name="sub-bob", args=["--state", "none"])
    c.require(adv.wait_request(alice.sign_pk, 10, since=t_down) is not None and
              adv.wait_request(bob.sign_pk, 10, since=t_down) is not None,
              "both subscribers ask for keys while the proxy is down")
    time.sleep(max(0.0, DOWN_S - (time.monotonic() - t_down)))
    na = len(adv.requests(t_down, alice.sign_pk))
    nb = len(adv.requests(t_down, bob.sign_pk))
    c.expect(na >= 3 and nb >= 3, "several requests each before the proxy returns "
             "(alice %d, bob %d)" % (na, nb))
    t_up = time.monotonic()
    px3 = ph.Proxy(env, broker.addr(), args, name="proxy-back", port=px.port)
    c.expect(sa.wait_err(h.EV_KEY, 20) and sb.wait_err(h.EV_KEY, 20),
             "both subscribers got their keys after the proxy returned")
    # Every queued request is answered: wait until all answers went by.
    reply_b = adv.requests(t_down, bob.sign_pk)[-1]["reply_topic"]
    reply_a = adv.requests(t_down, alice.sign_pk)[-1]["reply_topic"]
    h.wait_until(lambda: len(adv.seen(lambda m: m[1] == reply_a, t_up)) >= na and
                 len(adv.seen(lambda m: m[1] == reply_b, t_up)) >= nb, 10)
    ans_a = adv.seen(lambda m: m[1] == reply_a, t_up)
    ans_b = adv.seen(lambda m: m[1] == reply_b, t_up)
    h.log("answers: alice %d of %d requests, bob %d of %d" % (len(ans_a), na, len(ans_b), nb))
    c.expect(len(ans_a) >= 2 and len(ans_b) >= 2,
             "the key service answered the earlier requests too (alice %d, bob %d)" % (
                 len(ans_a), len(ans_b)))
    ph.mosq_pub(env, px3, TOPIC, "after-outage", qos=1)
    c.expect(sa.wait_json(1, 10, lambda o: h.payload_of(o) == b"after-outage"),
             "the strict subscriber decrypts a message sealed after the outage")
    time.sleep(1.0)
    for sp in (sa, sb):
        c.expect(not sp.err_match(h.EV_REJECTED) and not sp.err_match(r"replay|redirect"),
                 "%s: no rejected answer, no replay alarm:\n%s" % (sp.name, sp.tail(8)))
    rc = sa.stop()
    c.expect(rc == 0, "--strict subscriber exits 0 (rc %s):\n%s" % (rc, sa.tail(8)))

    # ---- 3. a genuinely replayed answer is still reported ---------------
    for label, (_t, topic, payload, _r) in (("the answer it used", ans_b[-1]),
                                            ("an earlier answer it dropped", ans_b[0])):
        since = time.monotonic()
        adv.publish(topic, payload)
        c.expect(sb.wait_err(r"reject.*(replay|redirect|not an answer)", 5, since),
                 "replayed %s -> reported as not an answer to our request" % label)
    sb.stop()
    px3.stop()


if __name__ == "__main__":
    h.main("proxy-state-owner", body)
