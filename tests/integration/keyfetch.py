#!/usr/bin/python3
"""Integration 1: key fetch over TLS, refusal, scope isolation.

One sender with scopes alpha (a/#) and beta (b/#), a real e2e-pub -l as the
sender (its key service runs while stdin is open), three e2e-sub:
  full   enrolled for alpha,beta: gets the keys over TLS, decrypts everything
         (payload equal, verdict OK, seq 1..N per topic);
  alpha  enrolled for alpha only: decrypts a/... but b/... stays UNKNOWN_KEY,
         never plaintext;
  stranger  trusts the sender but is not enrolled: gets a signed refusal
         ("not enrolled"), delivers nothing, --strict exits 3.
The broker's view ('#') checks the wire: refusal signed by the sender and
bound to the stranger's request hash; no plaintext on any topic.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

N_A = 25
N_B = 10


def body(env, c):
    broker = h.Broker(env)
    adv = h.Adversary(env, broker)
    s = h.Sender(env, "site1", scopes=[(1, "alpha", ["a/#"]), (2, "beta", ["b/#"])])
    full = h.Subscriber(env, "full", trust=[s])
    alpha = h.Subscriber(env, "alphaonly", trust=[s])
    stranger = h.Subscriber(env, "stranger", trust=[s])
    s.enroll(full, ["alpha", "beta"])
    s.enroll(alpha, ["alpha"])

    pub_a = h.start_pub_lines(env, broker, s, "a/data", qos=1, name="pub-a")
    c.require(adv.probe_key_service(s, 10) is not None,
              "e2e-pub -l answers key requests on e2e/control (key service up)")

    t_start = time.monotonic()
    sub_full = h.start_sub(env, broker, full, ["a/#", "b/#"], name="sub-full")
    sub_alpha = h.start_sub(env, broker, alpha, ["a/#", "b/#"], name="sub-alpha",
                            args=["--show-all", "--state", "none"])
    sub_str = h.start_sub(env, broker, stranger, ["a/#"], name="sub-stranger",
                          args=["--show-all", "--strict", "--state", "none"])

    c.expect(sub_full.wait_err(h.EV_KEY + r".*scope 1", 10) and sub_full.wait_err(
        h.EV_KEY + r".*scope 2", 2), "enrolled subscriber received keys of scope 1 and 2")
    c.expect(sub_alpha.wait_err(h.EV_KEY + r".*scope 1", 10),
             "alpha-only subscriber received the scope 1 key")
    c.expect(not sub_alpha.err_match(h.EV_KEY + r".*scope 2"),
             "alpha-only subscriber received no scope 2 key")
    ref = sub_str.wait_err(r"refused.*not enrolled", 10)
    c.expect(ref, "non-enrolled subscriber reports a refusal ('not enrolled'); stderr:\n" +
             sub_str.tail())
    log_keys = time.monotonic() - t_start
    h.log("keys/refusal after %.2f s" % log_keys)

    # Wire check of the refusal: signed by the sender on the stranger's reply
    # topic, bound to the hash of the stranger's exact request.
    req = adv.wait_request(stranger.sign_pk, 5)
    c.require(req is not None, "adversary saw the stranger's key request on e2e/control")
    answers = adv.wait_seen(lambda m: m[1] == req["reply_topic"], 5)
    ok_refusal = False
    for _t, topic, p, _r in answers:
        d = h.parse_ctl(p)
        if d and d["type"] == h.CTL_REFUSAL and h.ctl_verify(s.sign_pk, topic, p) and \
                d["request_hash"] == h.ctl_hash(req["raw"]) and d["reason"] == 1 and \
                d["sender"] == s.sender_id:
            ok_refusal = True
    c.expect(ok_refusal, "refusal on the wire: type 3, reason 1 (not enrolled), signed by "
             "the sender over the reply topic, request hash = BLAKE2b(request)")
    c.expect(not any(h.parse_ctl(p) and h.parse_ctl(p)["type"] == h.CTL_DELIVERY
                     for _t, _tp, p, _r in answers),
             "no key delivery was sent to the non-enrolled subscriber")

    # Scope alpha data.
    payload_a = ["alpha message %03d %s" % (i, os.urandom(4).hex()) for i in range(1, N_A + 1)]
    for line in payload_a:
        pub_a.write(line + "\n")
    pub_a.flush()
    got = sub_full.wait_json(N_A, 15, lambda o: o.get("topic") == "a/data")
    c.expect(got >= N_A, "enrolled subscriber got %d/%d scope-alpha messages" % (got, N_A))
    sub_alpha.wait_json(N_A, 10, lambda o: o.get("topic") == "a/data")
    rc = h.finish_pub(pub_a, 20)
    c.expect(rc == 0, "e2e-pub -l (a/data) exited 0 after end of input (rc %r)" % rc)

    for name, sp in (("full", sub_full), ("alpha-only", sub_alpha)):
        msgs = [o for o in sp.messages() if o.get("topic") == "a/data"]
        c.expect([h.payload_of(o) for o in msgs] == [p.encode() for p in payload_a],
                 "%s: payloads of a/data equal what was published, in order" % name)
        c.expect(all(h.verdict_of(o) == "OK" for o in msgs),
                 "%s: every a/data verdict is OK (got %s)" % (
                     name, sorted(set(h.verdict_of(o) for o in msgs))))
        c.expect([o.get("seq") for o in msgs] == list(range(1, N_A + 1)),
                 "%s: seq 1..%d (got %s...)" % (name, N_A, [o.get("seq") for o in msgs][:8]))
        c.expect(all(o.get("scope") == 1 and o.get("sender") == s.name for o in msgs),
                 "%s: scope 1, sender named %r from the trust store" % (name, s.name))

    # Scope beta data: a second e2e-pub run on the same sender directory.
    pub_b = h.start_pub_lines(env, broker, s, "b/data", qos=1, name="pub-b")
    c.require(adv.probe_key_service(s, 10) is not None, "second e2e-pub -l key service up")
    payload_b = ["beta message %03d %s" % (i, os.urandom(4).hex()) for i in range(1, N_B + 1)]
    for line in payload_b:
        pub_b.write(line + "\n")
    pub_b.flush()
    got = sub_full.wait_json(N_B, 15, lambda o: o.get("topic") == "b/data")
    c.expect(got >= N_B, "enrolled subscriber got %d/%d scope-beta messages" % (got, N_B))
    msgs = [o for o in sub_full.messages() if o.get("topic") == "b/data"]
    c.expect([h.payload_of(o) for o in msgs] == [p.encode() for p in payload_b] and
             all(h.verdict_of(o) == "OK" and o.get("scope") == 2 for o in msgs),
             "full: b/data payloads equal, verdict OK, scope 2")
    # The alpha-only subscriber holds b/... (UNKNOWN_KEY), asks again (the
    # sender answers with what it may have: alpha only), and reports each
    # message UNKNOWN_KEY at the end of the hold time or at exit.
    time.sleep(2.5)
    c.expect(not sub_alpha.err_match(h.EV_KEY + r".*scope 2"),
             "alpha-only subscriber never received a scope 2 key")
    rc = h.finish_pub(pub_b, 20)
    c.expect(rc == 0, "e2e-pub -l (b/data) exited 0 (rc %r)" % rc)

    rc_alpha = sub_alpha.stop()
    c.expect(rc_alpha == 0, "alpha-only e2e-sub (no --strict) exits 0 (rc %r)" % rc_alpha)
    rc_str = sub_str.stop()
    rc_full = sub_full.stop()
    c.expect(rc_full == 0, "enrolled e2e-sub exits 0 on SIGTERM (rc %r)" % rc_full)
    c.expect(rc_str == 3, "non-enrolled e2e-sub --strict exits 3 (anomaly: refused), rc %r" % rc_str)

    b_alpha = [o for o in sub_alpha.messages() if o.get("topic") == "b/data"]
    c.expect(len(b_alpha) == N_B and all(h.verdict_of(o) == "UNKNOWN_KEY" for o in b_alpha),
             "alpha-only: all %d b/data messages reported UNKNOWN_KEY (got %s)" % (
                 N_B, [h.verdict_of(o) for o in b_alpha]))
    c.expect(all(h.payload_of(o) is None for o in b_alpha),
             "alpha-only: no plaintext for b/data")
    a_str = sub_str.messages()
    c.expect(not any(h.verdict_of(o) in h.DELIVERING for o in a_str),
             "non-enrolled: no message delivered (verdicts %s)" % sorted(
                 set(h.verdict_of(o) for o in a_str)))
    c.expect(len(a_str) == N_A and all(h.verdict_of(o) == "UNKNOWN_KEY" for o in a_str),
             "non-enrolled: the %d a/data messages reported UNKNOWN_KEY (got %d lines)" % (
                 N_A, len(a_str)))
    # No plaintext anywhere it should not be.
    out_str = "\n".join(sub_str.out_lines) + sub_str.stderr_text()
    out_alpha = "\n".join(sub_alpha.out_lines) + sub_alpha.stderr_text()
    c.expect(not any(p in out_str for p in payload_a + payload_b),
             "no plaintext in the non-enrolled subscriber's output")
    c.expect(not any(p in out_alpha for p in payload_b),
             "no scope-beta plaintext in the alpha-only subscriber's output")
    wire = b"".join(p for _t, _tp, p, _r in adv.seen())
    c.expect(not any(p.encode() in wire for p in payload_a + payload_b),
             "the broker saw no plaintext (%d messages observed)" % len(adv.seen()))
    c.expect(all(not (sp.bad_json) for sp in (sub_full, sub_alpha, sub_str)),
             "every stdout line of e2e-sub --json is a JSON object")


if __name__ == "__main__":
    h.main("keyfetch", body)
