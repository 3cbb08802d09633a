#!/usr/bin/python3
"""Adversary: one-time tickets (issue 18 item 3, SPEC 14) with real processes.

mosquitto, two authorities (`e2e-keytool authority init`, each served by a
real `e2e-authority`), redeemers (`e2e-sub --enroll TOKEN`) connected through
a malicious broker (mitm.py) that rewrites their traffic:

  * a ticket used twice (another machine replays the token): "used up";
  * an expired ticket; a forged token (secret changed) and an unknown id;
  * the broker replays a REDEEM three times: one use consumed, one GRANT;
  * the broker moves a REDEEM for authority B onto authority A's topic;
  * the broker swaps the redeemer's keys for its own (re-signing the REDEEM);
  * the broker replays one redeemer's GRANT to another redeemer.

Expected: every attack refused with its reason (or, for what the redeemer
drops, no credential and the words of the drop), nothing granted to a key
that did not redeem, no use consumed by an attack, the genuine redemptions
granted for exactly the redeemer's keys.
"""
import base64
import os
import re
import struct
import sys
import time

from nacl import bindings as nb

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import advharness as ah  # noqa: E402

h, mm = ah.h, ah.mm
TEST = "adversary-tickets"
REDEEM, GRANT = 7, 8


class Policy:
    """Switchable attacks on the redeemers' links (client ids 'rdm...')."""

    def __init__(self):
        self.mode = None
        self.moved_to = None      # redeem topic the REDEEM is moved onto
        self.mallory = nb.crypto_sign_keypair()
        self.mallory_dh = os.urandom(32)
        self.grants = []          # (reply topic, payload) of every GRANT seen
        self.replay_grant = None  # a GRANT to put in place of the genuine one

    def __call__(self, link, d, pub, idx):
        p = bytes(pub.payload)
        if d == mm.UP and len(p) > 2 and p[1] == REDEEM and self.mode:
            if self.mode == "replay":
                for _ in range(3):
                    link.inject(mm.UP, pub.topic, p, kind="replayed REDEEM", origin=idx)
                link.forward(d, pub)
            elif self.mode == "move":
                link.drop(d, pub)
                link.inject(mm.UP, self.moved_to, p, kind="moved REDEEM", origin=idx)
            elif self.mode == "swap":
                link.drop(d, pub)
                link.inject(mm.UP, pub.topic, self.swap_keys(pub.topic, p), kind="keys swapped",
                            origin=idx)
            else:
                link.forward(d, pub)
            return
        if d == mm.DOWN and len(p) > 2 and p[1] == GRANT:
            self.grants.append((bytes(pub.topic), p))
            if self.mode == "grant-replay" and self.replay_grant:
                link.drop(d, pub)
                link.inject(mm.DOWN, pub.topic, self.replay_grant, kind="replayed GRANT",
                            origin=idx)
                return
        link.forward(d, pub)

    def swap_keys(self, topic, msg):
        """The broker's keys in place of the redeemer's, signed by the broker:
        all it can do without the ticket secret (the MAC stays the old one)."""
        sign_pk, sign_sk = self.mallory
        dh_pk = nb.crypto_scalarmult_base(self.mallory_dh)
        body = msg[:14 + 8] + sign_pk + dh_pk + msg[14 + 8 + 64:-64]
        return h.ctl_sign(sign_sk, topic, body)


def token_parts(tok):
    raw = base64.urlsafe_b64decode(tok[6:] + "==")
    return raw[:8], raw[8:24], raw[24:]


def token_of(tid, secret, fp):
    return "e2et1-" + base64.urlsafe_b64encode(tid + secret + fp).decode().rstrip("=")


def ticket_record(adir, tid):
    """(uses left, number of used lines) of ticket tid in adir/tickets."""
    left, used = None, 0
    with open(os.path.join(adir, "tickets")) as f:
        for line in f:
            w = line.split()
            if len(w) == 6 and w[0] == "ticket" and w[1] == tid.hex():
                left = int(w[4])
            elif len(w) == 4 and w[0] == "used" and w[1] == tid.hex():
                used += 1
    return left, used


def body(env, c):
    broker = h.Broker(env)
    pol = Policy()
    sm = mm.Mitm(env, broker, "redeem-side",
                 lambda link: pol if (link.client_id or "").startswith("rdm") else None)
    auth_bin = h.find_binary("e2e-authority", "E2E_AUTHORITY")
    auths = {}
    for name in ("A", "B"):
        d = os.path.join(env.dir, "auth" + name)
        h.run(env, "init" + name, [env.keytool, "authority", "init", "--dir", d])
        p = h.Proc(env, "authority" + name, [auth_bin, "--dir", d, "-v"] + broker.tls_args())
        c.require(p.wait_err(r"serving redemptions on", 10), "authority %s serving" % name)
        fp = re.search(r"/authority/([0-9a-f]{32})/redeem", p.err_match("serving")[0]).group(1)
        auths[name] = (d, p, bytes.fromhex(fp))
    adir, aproc, afp = auths["A"]

    def ticket(ttl="1h", uses=1, d=adir, scope="1"):
        cp = h.run(env, "ticket", [env.keytool, "ticket", "--dir", d, "--scope", scope,
                                   "--ttl", ttl, "--uses", str(uses)])
        return cp.stdout.decode().strip()

    def redeem(name, tok, timeout="6s"):
        d = os.path.join(env.dir, "sub-" + name)
        p = h.Proc(env, "enroll-" + name, [env.sub_bin] + sm.tls_args() + [
            "-i", "rdm" + name, "--dir", d, "--enroll", tok, "--enroll-timeout", timeout,
            "-t", "x/#", "-E"])
        p.wait_exit(40)
        return d, p

    def granted(d, p):
        """Enrolled, with a credential for exactly this machine's keys."""
        if not p.err_match(r"enrolled: "):
            return False
        cp = h.run(env, "pub-" + os.path.basename(d), [env.keytool, "pubkey",
                                                       os.path.join(d, "identity.key")])
        pub = base64.b64decode(cp.stdout.decode().split()[1])
        with open(os.path.join(d, "credential")) as f:
            cred = base64.b64decode([l for l in f if l.startswith("e2e-cred1 ")][0].split()[1])
        return cred[1] == 2 and cred[2:18] == afp and cred[42:106] == pub

    def nothing_written(d):
        return not os.path.exists(os.path.join(d, "credential")) and \
            not os.path.exists(os.path.join(d, "authorities"))

    def refused(p, words):
        return bool(p.err_match(r"--enroll: the authority refused the ticket: " + words))

    rows = []
    # 1. Genuine, then the same token on a second machine.
    tok = ticket()
    tid = token_parts(tok)[0]
    d1, p1 = redeem("one", tok)
    ok1 = granted(d1, p1) and ticket_record(adir, tid) == (0, 1)
    c.expect(ok1, "a genuine redemption is granted for the redeemer's keys, one use recorded")
    d2, p2 = redeem("two", tok)
    ok = refused(p2, r"ticket already redeemed") and nothing_written(d2) and \
        ticket_record(adir, tid) == (0, 1)
    c.expect(ok, "the same token on another machine: refused, used up, nothing written")
    rows.append(("18.3 a ticket works once (SPEC 14.4)", "token holder", False,
                 "the token of a redeemed ticket redeemed again by a second machine",
                 "refused: used up; no credential" if ok else "granted", ok and ok1))

    # 2. Expired.
    tok = ticket(ttl="1s")
    time.sleep(1.5)
    d, p = redeem("expired", tok)
    ok = refused(p, r"ticket expired") and nothing_written(d)
    c.expect(ok, "an expired ticket: refused, expired")
    rows.append(("18.3 a ticket expires (SPEC 14.4)", "token holder", False,
                 "a ticket of --ttl 1s redeemed after 1.5 s", "refused: expired" if ok else
                 "granted", ok))

    # 3. Forged token (secret changed), unknown ticket id.
    tok = ticket(uses=2)
    tid, sec, fp = token_parts(tok)
    d, p = redeem("forged", token_of(tid, bytes(16), fp))
    ok_f = refused(p, r"forged ticket \(bad mac\)") and nothing_written(d) and \
        ticket_record(adir, tid) == (2, 0)
    c.expect(ok_f, "a token with another secret: refused, bad mac, no use consumed")
    d, p = redeem("unknown", token_of(os.urandom(8), sec, fp))
    ok_u = refused(p, r"unknown ticket") and nothing_written(d)
    c.expect(ok_u, "a token with an unknown id: refused, unknown ticket")
    rows.append(("18.3 a forged ticket is refused (SPEC 14.3)", "forger", False,
                 "a real ticket's id with another secret; a made-up id",
                 "refused: bad mac / unknown ticket" if ok_f and ok_u else "accepted",
                 ok_f and ok_u))

    # 4. The broker replays a REDEEM three times: one use, one credential.
    pol.mode = "replay"
    d, p = redeem("replayed", tok)
    pol.mode = None
    time.sleep(0.5)
    answers = len(aproc.err_match(r"the same redemption again"))
    ok = granted(d, p) and ticket_record(adir, tid) == (1, 1) and answers >= 1
    c.expect(ok, "a REDEEM replayed 3 times by the broker: granted once, one use consumed "
             "(uses left %s), replays answered from the record (%d)" % (
                 ticket_record(adir, tid), answers))
    rows.append(("18.3 a replayed redemption never consumes a second use (SPEC 14.4)",
                 "malicious broker", False, "the broker sends the redeemer's REDEEM 3 more "
                 "times", "uses left %d of 2, %d replays answered with the recorded GRANT" % (
                     ticket_record(adir, tid)[0], answers), ok))

    # 5. A REDEEM for authority B moved onto authority A's redeem topic.
    bdir, bproc, bfp = auths["B"]
    tokb = ticket(d=bdir)
    tidb = token_parts(tokb)[0]
    pol.mode, pol.moved_to = "move", "e2e/control/authority/%s/redeem" % afp.hex()
    d, p = redeem("moved", tokb, timeout="4s")
    pol.mode = None
    ok = nothing_written(d) and p.err_match(r"no valid answer from the authority") and \
        ticket_record(bdir, tidb) == (1, 0) and \
        aproc.err_match(r"dropped a message on .*: authentication failed")
    c.expect(ok, "a REDEEM moved to another authority's topic: dropped there (signature over "
             "the topic), no use consumed, nothing written")
    rows.append(("18.3 a redemption cannot be redirected to another authority (SPEC 14.3)",
                 "malicious broker", False, "the broker moves a REDEEM for authority B onto "
                 "authority A's redeem topic", "dropped by A (signature), B's ticket unused, no "
                 "credential" if ok else "answered", bool(ok)))

    # 6. The broker swaps the redeemer's keys for its own and re-signs.
    toks = ticket()
    tids = token_parts(toks)[0]
    pol.mode = "swap"
    d, p = redeem("swapped", toks, timeout="4s")
    pol.mode = None
    ok = nothing_written(d) and ticket_record(adir, tids) == (1, 0) and \
        aproc.err_match(r"ticket %s, redeemer .*: forged ticket \(bad mac\)" % tids.hex()) and \
        p.err_match(r"answers to another redemption were dropped")
    c.expect(ok, "keys swapped by the broker: refused bad mac, the redeemer drops the answer "
             "to the altered REDEEM, no use consumed")
    d, p = redeem("after-swap", toks)
    ok2 = granted(d, p)
    c.expect(ok2, "the same ticket, unattacked, is then granted to the genuine redeemer")
    rows.append(("18.3 a ticket binds the redeemer's key (SPEC 14.3)", "malicious broker", False,
                 "the broker replaces the redeemer's keys in the REDEEM by its own, signs it",
                 "refused: bad mac; ticket unused, then granted to the redeemer" if ok and ok2
                 else "granted to the broker's key", bool(ok and ok2)))

    # 7. One redeemer's GRANT replayed to another redeemer.
    g_one = [g for t, g in pol.grants if g[14 + 32 + 64] == 0]
    c.require(g_one, "the broker recorded a GRANT")
    pol.replay_grant = g_one[0]
    pol.mode = "grant-replay"
    tokg = ticket()
    tidg = token_parts(tokg)[0]
    d, p = redeem("grant-replay", tokg, timeout="4s")
    pol.mode = None
    ok = nothing_written(d) and p.err_match(
        r"answers (to another redemption|that failed verification) were dropped")
    c.expect(ok, "another redeemer's GRANT in place of the genuine one: dropped (signed over "
             "the other reply topic), nothing written")
    rows.append(("18.3 a GRANT cannot be given to another redeemer (SPEC 14.5)",
                 "malicious broker", False, "the broker drops a redeemer's GRANT and delivers "
                 "an earlier redeemer's GRANT instead", "dropped (signature over its reply topic); no credential" if ok
                 else "installed", bool(ok)))
    c.expect(ticket_record(adir, tidg) == (0, 1),
             "(the authority did consume that use: the GRANT was lost to the broker)")
    ah.promise_rows(TEST, rows)


if __name__ == "__main__":
    h.main(TEST, body)
