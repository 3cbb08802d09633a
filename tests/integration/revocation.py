#!/usr/bin/python3
"""Integration 4: revocation.

Two enrolled subscribers, a running e2e-pub -l. `e2e-keytool revoke NAME`
marks the subscriber revoked and rotates every scope it held; the running
publisher reloads, announces the new epoch, and seals with it.
Expected: the kept subscriber gets the new key and decrypts everything
published after the revocation; the revoked one asks (on the announcement
and on the unknown epoch), gets signed refusals "revoked", and decrypts
none of it (UNKNOWN_KEY); a fresh run of the revoked identity is refused too.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TOPIC = "rev/t"
N_BEFORE = 5
N_AFTER = 10


def body(env, c):
    broker = h.Broker(env)
    adv = h.Adversary(env, broker)
    s = h.Sender(env, "site", scopes=[(1, "plant", ["rev/#"]), (2, "aux", ["aux/#"]),
                                      (3, "other", ["other/#"])])
    kept = h.Subscriber(env, "kept", trust=[s])
    gone = h.Subscriber(env, "gone", trust=[s])
    s.enroll(kept, ["plant"])
    s.enroll(gone, ["plant", "aux"])

    pub = h.start_pub_lines(env, broker, s, TOPIC, name="pub")
    c.require(adv.probe_key_service(s, 10) is not None, "e2e-pub key service up")
    sk = h.start_sub(env, broker, kept, [TOPIC], name="sub-kept", args=["--state", "none"])
    sg = h.start_sub(env, broker, gone, [TOPIC], name="sub-gone",
                     args=["--show-all", "--strict", "--state", "none"])
    c.require(sk.wait_err(h.EV_KEY, 10) and sg.wait_err(h.EV_KEY, 10),
              "both subscribers received the key before revocation")
    epoch0 = s.current_epoch(1)
    aux0, other0 = s.current_epoch(2), s.current_epoch(3)
    before = ["before %d %s" % (i, os.urandom(3).hex()) for i in range(N_BEFORE)]
    pub.write("".join(l + "\n" for l in before))
    pub.flush()
    c.expect(sk.wait_json(N_BEFORE, 10) >= N_BEFORE and sg.wait_json(N_BEFORE, 10) >= N_BEFORE,
             "both decrypt the messages published before the revocation")

    t_rev = time.monotonic()
    s.revoke(gone)
    epoch1 = s.current_epoch(1)
    c.expect(epoch1 is not None and epoch0 is not None and epoch1 > epoch0,
             "revoke rotated the scope the subscriber held (epoch %s -> %s)" % (epoch0, epoch1))
    aux1 = s.current_epoch(2)
    c.expect(aux0 is not None and aux1 is not None and aux1 > aux0,
             "revoke rotated every scope it held: aux too (epoch %s -> %s)" % (aux0, aux1))
    c.expect(s.current_epoch(3) == other0,
             "a scope it did not hold was not rotated (other stays at %s)" % other0)
    lst = h.run(env, "keytool-list", [env.keytool, "list", "--dir", s.dir], check=False)
    c.expect("gone" in lst.stdout.decode() and "revoked" in lst.stdout.decode(),
             "keytool list shows 'gone' as revoked")
    # The publisher announces the new epoch after its reload (<= 1 s).
    ann_topic = "e2e/control/%08x" % s.sender_id
    got = adv.wait_seen(lambda m: m[1] == ann_topic and h.parse_ctl(m[2]) and
                        h.parse_ctl(m[2])["type"] == h.CTL_ANNOUNCE and
                        h.parse_ctl(m[2])["epoch"] == epoch1, 5, since=t_rev)
    c.expect(got, "the running publisher announced epoch %s" % epoch1)
    c.expect(sk.wait_err(h.EV_KEY + r".*epoch %s" % epoch1, 5, since=t_rev),
             "kept subscriber fetched the new key on the announcement")
    c.expect(sg.wait_err(r"refused.*revoked", 5, since=t_rev),
             "revoked subscriber's request was refused: 'revoked'; stderr:\n" + sg.tail(6))

    after = ["after %d %s" % (i, os.urandom(3).hex()) for i in range(N_AFTER)]
    pub.write("".join(l + "\n" for l in after))
    pub.flush()
    c.expect(sk.wait_json(N_BEFORE + N_AFTER, 10) >= N_BEFORE + N_AFTER,
             "kept subscriber received every post-revocation message")
    kmsgs = sk.messages()[N_BEFORE:]
    c.expect([h.payload_of(o) for o in kmsgs] == [a.encode() for a in after] and
             all(h.verdict_of(o) == "OK" and o.get("epoch") == epoch1 for o in kmsgs),
             "kept: post-revocation payloads equal, verdict OK, epoch %s" % epoch1)
    time.sleep(1.5)   # the revoked one asks again for the unknown epoch
    # A fresh run of the revoked identity is refused as well.
    g2 = h.start_sub(env, broker, gone, [TOPIC], name="sub-gone-fresh",
                     args=["--strict", "--state", "none", "-W", "4"])
    rc_g2 = g2.wait_exit(15)
    c.expect(g2.err_match(r"refused.*revoked"), "fresh run of the revoked identity refused: "
             "'revoked'; stderr:\n" + g2.tail(5))
    c.expect(rc_g2 == 3, "fresh run with --strict exits 3 (rc %r)" % rc_g2)
    c.expect(not g2.err_match(h.EV_KEY), "fresh run of the revoked identity got no key")

    rc_g = sg.stop()   # held messages are reported UNKNOWN_KEY at exit
    sk.stop()
    c.expect(h.finish_pub(pub, 20) == 0, "e2e-pub exited 0")
    gmsgs = sg.messages()
    post = [o for o in gmsgs if o.get("topic") == TOPIC and h.payload_of(o) is None]
    c.expect(not any(h.payload_of(o) in [a.encode() for a in after] for o in gmsgs),
             "revoked subscriber decrypted none of the post-revocation messages")
    c.expect(len([o for o in post if h.verdict_of(o) == "UNKNOWN_KEY"]) == N_AFTER,
             "revoked subscriber reported the %d post-revocation messages UNKNOWN_KEY "
             "(verdicts: %s)" % (N_AFTER, [h.verdict_of(o) for o in gmsgs[N_BEFORE:]]))
    c.expect(not sg.err_match(h.EV_KEY + r".*epoch %s" % epoch1),
             "revoked subscriber never installed epoch %s" % epoch1)
    c.expect(rc_g == 3, "revoked e2e-sub --strict exits 3 (rc %r)" % rc_g)
    # On the wire: only refusals (reason 4) went to the revoked identity after revoke.
    reqs = [r for r in adv.requests(since=t_rev, requester=gone.sign_pk)]
    c.expect(reqs, "revoked subscriber sent fresh key requests after the revocation")
    answers = []
    for r in reqs:
        for _t, tp, p, _r in adv.seen(lambda m, rt=r["reply_topic"]: m[1] == rt, since=t_rev):
            d = h.parse_ctl(p)
            if d and d.get("request_hash") == h.ctl_hash(r["raw"]):
                answers.append(d)
    h.log("revoked identity sent %d key requests after the revocation (%d answered)" % (
        len(reqs), len(answers)))
    # Reason 4 = revoked; 3 = rate limited (the sender's per-identity limit
    # may answer a burst of retries that way); never a delivery.
    c.expect(answers and all(d["type"] == h.CTL_REFUSAL and d["reason"] in (3, 4)
                             for d in answers) and any(d["reason"] == 4 for d in answers),
             "every answer to the revoked identity's requests is a refusal, reason 4 (revoked) "
             "or 3 (rate limited): %s" % [(d["type"], d.get("reason")) for d in answers])


if __name__ == "__main__":
    h.main("revocation", body)
