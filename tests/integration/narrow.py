#!/usr/bin/python3
"""Integration 11: re-enrolling a subscriber with fewer scopes (M2).

A subscriber enrolled for two scopes holds both current keys. Enrolling it
again for one of them must rotate the other (it still holds that scope's
key), so it decrypts nothing sealed afterwards under the scope it lost,
while a subscriber that keeps the scope follows the rotation.
Expected: keytool enroll rotates exactly the lost scope; the running
e2e-pub announces and uses the new epoch; the narrowed subscriber's
requests get no aux key and it decrypts none of the later messages (held,
then UNKNOWN_KEY); the other subscriber decrypts all of them.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TOPIC = "n/aux/x"
N = 5


def body(env, c):
    broker = h.Broker(env)
    adv = h.Adversary(env, broker)
    s = h.Sender(env, "site", scopes=[(1, "plant", ["n/plant/#"]), (2, "aux", ["n/aux/#"])])
    narrow = h.Subscriber(env, "narrow", trust=[s])
    keep = h.Subscriber(env, "keep", trust=[s])
    s.enroll(narrow, ["plant", "aux"])
    s.enroll(keep, ["aux"])

    pub = h.start_pub_lines(env, broker, s, TOPIC, name="pub")
    c.require(adv.probe_key_service(s, 10) is not None, "e2e-pub key service up")
    sn = h.start_sub(env, broker, narrow, [TOPIC], name="sub-narrow",
                     args=["--show-all", "--state", "none"])
    sk = h.start_sub(env, broker, keep, [TOPIC], name="sub-keep", args=["--state", "none"])
    c.require(sn.wait_err(h.EV_KEY, 10) and sk.wait_err(h.EV_KEY, 10),
              "both subscribers hold the aux key")
    before = ["before %d %s" % (i, os.urandom(3).hex()) for i in range(N)]
    pub.write("".join(l + "\n" for l in before))
    pub.flush()
    c.expect(sn.wait_json(N, 10) >= N and sk.wait_json(N, 10) >= N,
             "both decrypt the messages published before")
    plant0, aux0 = s.current_epoch(1), s.current_epoch(2)

    t_narrow = time.monotonic()
    out = s.enroll(narrow, ["plant"])
    aux1 = s.current_epoch(2)
    c.expect(aux1 is not None and aux1 > aux0,
             "re-enrolling with fewer scopes rotated the lost scope aux (%s -> %s)" % (aux0, aux1))
    c.expect(s.current_epoch(1) == plant0, "the kept scope plant was not rotated")
    c.expect(b"plant" not in out.stdout, "keytool printed only the rotated scope: %r" % out.stdout)
    c.expect(sk.wait_err(h.EV_KEY + r".*epoch %s" % aux1, 5, since=t_narrow),
             "the other subscriber fetched the new aux key")

    after = ["after %d %s" % (i, os.urandom(3).hex()) for i in range(N)]
    pub.write("".join(l + "\n" for l in after))
    pub.flush()
    c.expect(sk.wait_json(2 * N, 10) >= 2 * N, "the other subscriber decrypts every later message")
    kmsgs = sk.messages()[N:]
    c.expect([h.payload_of(o) for o in kmsgs] == [a.encode() for a in after] and
             all(o.get("epoch") == aux1 for o in kmsgs),
             "later messages are sealed under the new aux epoch %s" % aux1)
    time.sleep(1)
    sn.stop()
    sk.stop()
    c.expect(h.finish_pub(pub, 20) == 0, "e2e-pub exited 0")
    nmsgs = sn.messages()
    c.expect(not any(h.payload_of(o) in [a.encode() for a in after] for o in nmsgs),
             "the narrowed subscriber decrypted none of the later aux messages")
    c.expect(not sn.err_match(h.EV_KEY + r".*epoch %s" % aux1),
             "the narrowed subscriber never installed aux epoch %s" % aux1)
    # It did ask (announcement, then the unknown epoch in the data); the key
    # service answers with the scopes it still has (plant), never aux.
    reqs = adv.requests(since=t_narrow, requester=narrow.sign_pk)
    c.expect(reqs, "the narrowed subscriber asked for keys after the change (%d requests)" %
             len(reqs))
    c.expect(len([o for o in nmsgs if h.verdict_of(o) == "UNKNOWN_KEY"]) == N,
             "it reported the %d later messages UNKNOWN_KEY (verdicts %s)" % (
                 N, [h.verdict_of(o) for o in nmsgs[N:]]))


if __name__ == "__main__":
    h.main("narrow", body)
