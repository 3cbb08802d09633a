#!/usr/bin/python3
"""Adversary: fleet trust (issue 18; SPEC 13). Real mosquitto, real e2e-pub -l
as the sender, real e2e-sub subscribers, and an attacker on the broker
(harness.Adversary) that publishes what it likes. Nobody is in an `enrolled`
file or a trust store: senders and subscribers list one authority.

  1. alice (subscriber credential: scopes 1, 2) receives m/a from the sender
     (sender credential: scope 1 m/# only): OK;
  2. the sender seals s/x, outside its credential: FORGED at alice;
  3. bob's credential is signed by another authority: refused (not enrolled);
  4. carol's credential has expired: refused;
  5. dave (credential: scope 2) asks for scope 1 in a request of his own:
     REFUSAL 2 (scope not allowed), no delivery;
  6. a second sender whose credential names our authority but is signed by
     another key, and a third whose credential has expired: alice rejects
     their deliveries, their data stays UNKNOWN_KEY;
  7. revocation list 1 revokes alice: the sender refuses her (REFUSAL 4) and
     rotates scope 1, which she had been served; her old key decrypts nothing
     sealed after it;
  8. list 2 revokes the sender: erin (valid credential) drops its keys, its
     data is UNKNOWN_KEY from then on; a replayed list 1 leaves list 2 in force
     (the persisted highest number stays 2).
"""
import base64
import hashlib
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import advharness as ah  # noqa: E402

h = ah.h
nb = h.nb


class Authority:
    def __init__(self, env, name):
        self.env = env
        self.dir = os.path.join(env.dir, "authority-" + name)
        cp = h.run(env, "authority-init", [env.keytool, "authority", "init", "--dir", self.dir,
                                           "--name", name])
        self.public_line = cp.stdout.decode().strip()
        self.sign_pk, self.dh_pk = h.parse_public_line(self.public_line)
        self.fp = hashlib.blake2b(b"mqtt-e2e/v1/fingerprint" + self.sign_pk + self.dh_pk,
                                  digest_size=16).digest()

    def issue(self, who, *args):
        cp = h.run(self.env, "authority-issue", [self.env.keytool, "authority", "issue",
                                                 "--dir", self.dir] + list(args) +
                   [who.public_line])
        return cp.stdout.decode().strip()

    def revoke(self, who):
        h.run(self.env, "authority-revoke", [self.env.keytool, "authority", "revoke", "--dir",
                                             self.dir, who.public_line])
        with open(os.path.join(self.dir, "revocations"), "rb") as f:
            return f.read()

    def topic(self):
        return "e2e/control/authority/" + self.fp.hex()


def put(d, name, text):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write(text + "\n")
    os.chmod(p, 0o600)


def cred_bytes(line):
    return base64.b64decode(line.split()[1])


def ask(adv, who, sender, cred, want):
    """A signed request of @who's own (its identity file) carrying @cred; the answer."""
    reply = "e2e/k/" + os.urandom(16).hex()
    adv.c.subscribe(reply, qos=1)
    time.sleep(0.2)
    eph_pk, _eph_sk = nb.crypto_box_keypair()
    since = time.monotonic()
    msg = h.build_request(who.id["sign_sk"], who.sign_pk, who.dh_pk, eph_pk, sender.sender_id,
                          reply, want=want, cred=cred)
    adv.publish(h.CONTROL_TOPIC, msg)
    got = adv.wait_seen(lambda m: m[1] == reply and h.ctl_verify(sender.sign_pk, reply, m[2]),
                        5, since=since)
    return h.parse_ctl(got[0][2]) if got else None


def feed(pub, lines):
    for line in lines:
        pub.write(line + "\n")
    pub.flush()


def body(env, c):
    rows = []
    broker = h.Broker(env)
    adv = h.Adversary(env, broker)
    auth = Authority(env, "fleet")
    rogue = Authority(env, "rogue")

    s = h.Sender(env, "edge", scopes=[(1, "tele", ["m/#"]), (2, "secret", ["s/#"])])
    put(s.dir, "authorities", auth.public_line)
    put(s.dir, "credential", auth.issue(s, "--sender", "--filter", "1:m/#"))

    def member(name, by, *scopes, ttl="1h"):
        sub = h.Subscriber(env, name)
        put(sub.dir, "authorities", auth.public_line)
        args = ["--subscriber", "--ttl", ttl]
        for sc in scopes:
            args += ["--scope", str(sc)]
        line = by.issue(sub, *args)
        put(sub.dir, "credential", line)
        return sub, cred_bytes(line)

    alice, _ = member("alice", auth, 1, 2)
    bob, _ = member("bob", rogue, 1)
    carol, _ = member("carol", auth, 1, ttl="1s")
    dave, dave_cred = member("dave", auth, 2)
    erin, _ = member("erin", auth, 1, 2)
    time.sleep(1.2)   # carol's credential has expired

    pub = h.start_pub_lines(env, broker, s, "m/a", name="pub-m")
    c.require(adv.probe_key_service(s, 10) is not None, "sender key service up")
    subs = {}
    for who in (alice, bob, carol, erin):
        subs[who.name] = h.start_sub(env, broker, who, ["m/#", "s/#", "r/#"],
                                     name="sub-" + who.name, args=["--show-all", "--state",
                                                                   "none"])
    time.sleep(1.0)
    # A first message makes the subscribers ask (they learn of the sender by
    # its data); the counted ones follow once the keys are in, so a slow
    # machine does not turn them into UNKNOWN_KEY at the end of the hold.
    feed(pub, ["warm-up"])
    c.require(subs["alice"].wait_err(h.EV_KEY, 30) and subs["erin"].wait_err(h.EV_KEY, 30),
              "alice and erin received keys from the credentialed sender")
    feed(pub, ["hello %d" % i for i in range(5)])
    ok = subs["alice"].wait_json(5, 15, lambda o: o.get("topic") == "m/a" and
                                 h.verdict_of(o) == "OK" and
                                 h.payload_of(o).startswith(b"hello"))
    c.expect(ok >= 5, "1. alice (credential only) decrypts m/a from the credentialed sender "
             "(%d/5 OK)" % ok)
    rows.append(("a subscriber trusting the authority accepts a credentialed sender", "-", "",
                 "5 messages on m/a, no trust store, no enrollment", "%d/5 OK" % ok, ok >= 5))
    for name, who in (("bob", bob), ("carol", carol)):
        # The refusal comes from a sender the subscriber cannot verify yet (it
        # knows senders by the credential a DELIVERY carries): the sender's
        # own log says what it refused.
        ref = pub.wait_err(r"refused \(not enrolled\): subscriber key " +
                           who.sign_pk[:8].hex(), 10)
        got = [o for o in subs[name].messages() if h.verdict_of(o) == "OK"]
        c.expect(ref and not got, "%s: %s credential refused, nothing decrypted" % (
            name, "forged (other authority)" if name == "bob" else "expired"))
        rows.append(("a credential of another authority or expired gets no key",
                     "subscriber", "insider" if name == "carol" else "",
                     "%s asks with a credential %s" % (name, "signed by another authority"
                                                       if name == "bob" else "expired 1 s ago"),
                     "refused (not enrolled), 0 decrypted" if ref and not got else "accepted",
                     bool(ref and not got)))
    rc = h.finish_pub(pub, 20)
    c.expect(rc == 0, "e2e-pub -l m/a exited 0")

    # 2. outside its credential
    pub = h.start_pub_lines(env, broker, s, "s/x", name="pub-s")
    c.require(adv.probe_key_service(s, 10) is not None, "sender key service up (s/x)")
    feed(pub, ["secret %d" % i for i in range(3)])
    n = subs["alice"].wait_json(3, 20, lambda o: o.get("topic") == "s/x")
    vs = sorted(set(h.verdict_of(o) for o in subs["alice"].messages() if o.get("topic") == "s/x"))
    c.expect(n >= 3 and vs == ["FORGED"], "2. s/x (outside the sender's credential) is FORGED "
             "at alice (verdicts %s)" % vs)
    rows.append(("a sender seals only the topics of its credential", "sender", "insider",
                 "the sender seals s/x, its credential lists m/# only", "verdicts %s" % vs,
                 n >= 3 and vs == ["FORGED"]))
    rc = h.finish_pub(pub, 20)

    # 5. dave asks a scope outside his credential
    pub = h.start_pub_lines(env, broker, s, "m/a", name="pub-m2")
    c.require(adv.probe_key_service(s, 10) is not None, "sender key service up (2)")
    d = ask(adv, dave, s, dave_cred, [(1, 0)])
    c.expect(d is not None and d["type"] == h.CTL_REFUSAL and d["reason"] == 2,
             "5. dave (scope 2) asking scope 1: REFUSAL 2 (got %r)" % ((d and (d["type"],
                                                                              d.get("reason"))),))
    d2 = ask(adv, dave, s, dave_cred, [(2, 0)])
    c.expect(d2 is not None and d2["type"] == h.CTL_DELIVERY and len(d2["cred"]) > 0,
             "dave asking scope 2: a DELIVERY carrying the sender's credential")
    rows.append(("a subscriber gets only the scopes of its credential", "subscriber", "insider",
                 "dave (credential: scope 2) asks for scope 1",
                 "REFUSAL %s" % (d and d.get("reason")), bool(d and d.get("reason") == 2)))

    # 6. a sender with a forged credential
    s2 = h.Sender(env, "fake", scopes=[(1, "tele", ["r/#"])])
    put(s2.dir, "authorities", auth.public_line)
    forged = bytearray(cred_bytes(rogue.issue(s2, "--sender", "--filter", "1:r/#")))
    forged[2:18] = auth.fp            # names our authority, signed by the rogue one
    put(s2.dir, "credential", "e2e-cred1 " + base64.b64encode(bytes(forged)).decode())
    t6 = time.monotonic()
    pub2 = h.start_pub_lines(env, broker, s2, "r/z", name="pub-fake")
    c.require(adv.probe_key_service(s2, 10) is not None, "fake sender key service up")
    feed(pub2, ["fake %d" % i for i in range(2)])
    rej = subs["alice"].wait_err(r"key answer from cred:%08x rejected" % s2.sender_id, 15,
                                 since=t6)
    time.sleep(1)
    got = [o for o in subs["alice"].messages() if o.get("topic") == "r/z" and
           h.verdict_of(o) == "OK"]
    c.expect(rej and not got, "6. a sender credential not signed by the authority: delivery "
             "rejected, nothing of r/z decrypted")
    rows.append(("a subscriber trusts only senders the authority signed", "sender", "",
                 "a sender carries a credential naming the authority, signed by another key",
                 "delivery rejected, 0 decrypted" if rej and not got else "accepted",
                 bool(rej and not got)))
    h.finish_pub(pub2, 20)

    # 6b. a sender whose credential has expired: no new delivery accepted
    s3 = h.Sender(env, "old", scopes=[(1, "tele", ["r/y/#"])])
    put(s3.dir, "authorities", auth.public_line)
    put(s3.dir, "credential", auth.issue(s3, "--sender", "--filter", "1:r/y/#", "--ttl", "1s"))
    time.sleep(1.2)
    t6b = time.monotonic()
    pub3 = h.start_pub_lines(env, broker, s3, "r/y/z", name="pub-old")
    c.require(adv.probe_key_service(s3, 10) is not None, "expired sender key service up")
    feed(pub3, ["stale %d" % i for i in range(2)])
    rej3 = subs["alice"].wait_err(r"key answer from cred:%08x rejected" % s3.sender_id, 15,
                                  since=t6b)
    time.sleep(1)
    got3 = [o for o in subs["alice"].messages() if o.get("topic") == "r/y/z" and
            h.verdict_of(o) == "OK"]
    c.expect(rej3 and not got3, "6b. a sender credential past its end: delivery rejected, "
             "nothing of r/y/z decrypted")
    rows.append(("a subscriber trusts only senders the authority signed", "sender", "insider",
                 "a sender carries its credential after its end (ttl 1 s)",
                 "delivery rejected, 0 decrypted" if rej3 and not got3 else "accepted",
                 bool(rej3 and not got3)))
    h.finish_pub(pub3, 20)

    # 7. revoke alice: refused, scope 1 rotated
    epoch0 = s.current_epoch(1)
    list1 = auth.revoke(alice)
    adv.publish(auth.topic(), list1, retain=True)
    c.expect(h.wait_until(lambda: (s.current_epoch(1) or 0) > (epoch0 or 0), 10),
             "7. the sender rotated scope 1 (served to alice) on revocation list 1 "
             "(epoch %s -> %s)" % (epoch0, s.current_epoch(1)))
    feed(pub, ["after revocation %d" % i for i in range(3)])
    time.sleep(2)
    late = [o for o in subs["alice"].messages() if h.payload_of(o) and
            h.payload_of(o).startswith(b"after revocation")]
    ref = subs["alice"].wait_err(r"refused our key request: revoked", 10)
    c.expect(not late and ref, "revoked alice decrypts nothing sealed after the rotation and is "
             "refused (revoked)")
    got_erin = subs["erin"].wait_json(3, 15, lambda o: h.payload_of(o) and
                                      h.payload_of(o).startswith(b"after revocation") and
                                      h.verdict_of(o) == "OK")
    c.expect(got_erin >= 3, "erin still decrypts after the rotation (%d/3)" % got_erin)
    rows.append(("a revoked subscriber decrypts nothing new", "subscriber", "insider",
                 "revocation list 1 names alice", "sender rotated, alice refused, 0 decrypted"
                 if not late and ref else "decrypted", bool(not late and ref)))

    # 8. revoke the sender; then replay list 1
    list2 = auth.revoke(s)
    adv.publish(auth.topic(), list2, retain=True)
    dropped = subs["erin"].wait_err(r"revocation list: its keys are dropped", 10)
    feed(pub, ["from a revoked sender %d" % i for i in range(3)])
    time.sleep(2)
    adv.publish(auth.topic(), list1, retain=True)     # the attacker replays list 1
    time.sleep(1)
    ok2 = [o for o in subs["erin"].messages() if h.payload_of(o) and
           h.payload_of(o).startswith(b"from a revoked sender") and h.verdict_of(o) == "OK"]
    c.expect(dropped and not ok2, "8. erin drops the revoked sender's keys; nothing of it "
             "decrypted afterwards")
    c.expect(not subs["erin"].err_match(r"is in no summary|never arrived|stalled"),
             "no summary alarm about the revoked sender, whose summaries erin no longer reads")
    held = os.path.join(erin.dir, "revocations-" + auth.fp.hex())
    kept = open(held, "rb").read() if os.path.exists(held) else b""
    c.expect(kept == list2, "a replayed older list (1) leaves list 2 in force at erin")
    rows.append(("a subscriber stops trusting a revoked sender", "sender", "insider",
                 "revocation list 2 names the sender", "keys dropped, 0 decrypted"
                 if dropped and not ok2 else "decrypted", bool(dropped and not ok2)))
    rows.append(("a replayed older revocation list changes nothing", "broker", "",
                 "the broker republishes list 1 after list 2", "list 2 kept"
                 if kept == list2 else "list replaced", kept == list2))
    h.finish_pub(pub, 20)
    for p in subs.values():
        p.stop()
    h.promise_rows("adversary-fleet", rows)


if __name__ == "__main__":
    h.main("adversary-fleet", body)
