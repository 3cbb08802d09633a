"""Independent check of tickets.json (imported by check.py), SPEC 14.

A second decoder, written from the SPEC without gen_ticket.py: tokens are
decoded, every REDEEM is parsed, its signature and MAC checked, every GRANT
is accepted as a redeemer would (14.5 steps 1-6), and each negative MUST fail
with the outcome it names at the first failing step.
"""

import base64
import hashlib
import struct

from nacl import bindings as nb
from nacl.exceptions import BadSignatureError, CryptoError

CTX = b"mqtt-e2e/v1/ctl\x00"


class Refused(Exception):
    def __init__(self, outcome):
        super().__init__(outcome)
        self.outcome = outcome


def token_decode(t):
    if len(t) != 60 or not t.startswith("e2et1-"):
        raise Refused("MALFORMED")
    body = t[6:]
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    if not set(body) <= alphabet:
        raise Refused("MALFORMED")
    raw = base64.urlsafe_b64decode(body + "==")
    if len(raw) != 40 or base64.urlsafe_b64encode(raw).decode().rstrip("=") != body:
        raise Refused("MALFORMED")
    return raw[:8], raw[8:24], raw[24:]


def sig_ok(pk, topic, msg):
    t = topic.encode()
    try:
        nb.crypto_sign_open(msg[-64:] + CTX + struct.pack(">H", len(t)) + t + msg[:-64], pk)
        return True
    except (BadSignatureError, CryptoError, ValueError):
        return False


def sender_id(sign_pk):
    return struct.unpack(">I", hashlib.blake2b(b"mqtt-e2e/v1/sender-id" + sign_pk,
                                               digest_size=32).digest()[:4])[0]


def fingerprint(sign_pk, dh_pk):
    return hashlib.blake2b(b"mqtt-e2e/v1/fingerprint" + sign_pk + dh_pk, digest_size=16).digest()


def head(msg, type_):
    if len(msg) < 14 + 64 or len(msg) > 2048:
        raise Refused("MALFORMED")
    if msg[0] != 1:
        raise Refused("VERSION")
    if msg[1] != type_:
        raise Refused("MALFORMED")
    return struct.unpack(">I", msg[2:6])[0], struct.unpack(">Q", msg[6:14])[0]


def reply_ok(t):
    h = t[6:]
    return t.startswith("e2e/k/") and 38 <= len(t) <= 128 and all(c in "0123456789abcdef" for c in h)


def parse_redeem(msg, topic):
    sender, time_ms = head(msg, 0x07)
    body = msg[14:-64]
    if sender != 0 or len(body) < 8 + 64 + 16 + 1 + 32:
        raise Refused("MALFORMED")
    tid, spk, dpk, nonce = body[:8], body[8:40], body[40:72], body[72:88]
    n = body[88]
    reply = body[89:89 + n]
    if len(body) != 89 + n + 32:
        raise Refused("MALFORMED")
    try:
        reply = reply.decode("ascii")
    except UnicodeDecodeError:
        raise Refused("MALFORMED")
    if not reply_ok(reply):
        raise Refused("MALFORMED")
    if not sig_ok(spk, topic, msg):
        raise Refused("AUTH")
    return {"ticket_id": tid, "sign_pk": spk, "dh_pk": dpk, "nonce": nonce, "reply_topic": reply,
            "mac": body[-32:], "time_ms": time_ms}


def mac_ok(msg, secret):
    unsigned = msg[:-64]
    want = hashlib.blake2b(b"mqtt-e2e/v1/ticket\x00" + unsigned[:-32], digest_size=32,
                           key=secret).digest()
    return want == unsigned[-32:]


def parse_cred(c):
    """SPEC 13 layout; returns (kind, fp, holder sign_pk, dh_pk, signed part, sig)."""
    if len(c) < 2 + 16 + 24 + 64 + 64 or c[0] != 1 or c[1] not in (1, 2):
        raise Refused("MALFORMED")
    kind, fp = c[1], c[2:18]
    spk, dpk = c[42:74], c[74:106]
    rest = c[106:-64]
    if kind == 2:
        if not rest or len(rest) != 1 + rest[0] or rest[0] == 0:
            raise Refused("MALFORMED")
    else:
        if len(rest) < 2:
            raise Refused("MALFORMED")
        r, off = struct.unpack(">H", rest[:2])[0], 2
        for _ in range(r):
            if off + 3 > len(rest):
                raise Refused("MALFORMED")
            fl = struct.unpack(">H", rest[off + 1:off + 3])[0]
            off += 3 + fl
        if off != len(rest) or r == 0:
            raise Refused("MALFORMED")
    return kind, fp, spk, dpk, c[:-64], c[-64:]


def accept_grant(msg, topic, req_hash, fp, redeemer_sign_pk, redeemer_dh_pk):
    sender, _ = head(msg, 0x08)
    body = msg[14:-64]
    if len(body) < 32 + 64 + 1 + 2:
        raise Refused("MALFORMED")
    rh, spk, dpk, reason = body[:32], body[32:64], body[64:96], body[96]
    c = struct.unpack(">H", body[97:99])[0]
    cred = body[99:]
    if len(cred) != c or (reason == 0) != (c != 0):
        raise Refused("MALFORMED")
    if fingerprint(spk, dpk) != fp:
        raise Refused("AUTH")
    if sender != sender_id(spk):
        raise Refused("MALFORMED")
    if not sig_ok(spk, topic, msg):
        raise Refused("AUTH")
    if rh != req_hash:
        raise Refused("OTHER_REQUEST")
    if reason == 0:
        kind, cfp, hs, hd, signed, sig = parse_cred(cred)
        try:
            nb.crypto_sign_open(sig + b"mqtt-e2e/v1/cred\x00" + signed, spk)   # SPEC 13.1
            ok = True
        except (BadSignatureError, CryptoError, ValueError):
            ok = False
        if not ok:
            raise Refused("AUTH")
        if cfp != fp or kind != 2 or hs != redeemer_sign_pk or hd != redeemer_dh_pk:
            raise Refused("AUTH")
    return reason, cred


def check_tickets(doc, f):
    n = 0
    auth = doc["authority"]
    fp = bytes.fromhex(auth["fp"])
    f.expect(fingerprint(bytes.fromhex(auth["sign_pk"]), bytes.fromhex(auth["dh_pk"])) == fp,
             "tickets authority", "fp")
    topic = "%s/authority/%s/redeem" % (doc["control_topic"], fp.hex())
    for t in doc["tokens"]:
        tid, sec, tfp = token_decode(t["token"])
        f.expect((tid.hex(), sec.hex(), tfp.hex()) == (t["id"], t["secret"], t["fp"]),
                 "token " + t["name"], "decoded fields")
        n += 1
    for t in doc["token_negative"]:
        try:
            token_decode(t["token"])
            f.expect(False, "token_negative " + t["name"], "accepted")
        except (Refused, ValueError):
            pass
        n += 1
    redeems = {}
    for r in doc["redeems"]:
        where = "redeem " + r["name"]
        msg = bytes.fromhex(r["message"])
        f.expect(r["topic"] == topic, where, "topic")
        p = parse_redeem(msg, r["topic"])
        tid, sec, tfp = token_decode(r["token"])
        f.expect(tfp == fp and tid.hex() == r["ticket_id"] and sec.hex() == r["secret"], where,
                 "token")
        for k in ("ticket_id", "sign_pk", "dh_pk", "nonce", "mac"):
            f.expect(p[k].hex() == r[k], where, k)
        f.expect(p["reply_topic"] == r["reply_topic"] and p["time_ms"] == r["time_ms"], where,
                 "reply topic/time")
        f.expect(mac_ok(msg, sec), where, "mac")
        f.expect(hashlib.blake2b(msg, digest_size=32).hexdigest() == r["req_hash"], where,
                 "req_hash")
        redeems[r["name"]] = r
        n += 1
    for g in doc["grants"]:
        where = "grant " + g["name"]
        r = redeems[g["request"]]
        reason, cred = accept_grant(bytes.fromhex(g["message"]), r["reply_topic"],
                                    bytes.fromhex(r["req_hash"]), fp, bytes.fromhex(r["sign_pk"]),
                                    bytes.fromhex(r["dh_pk"]))
        f.expect(reason == g["reason"] and cred.hex() == g["cred"] and g["topic"] ==
                 r["reply_topic"], where, "fields")
        n += 1
    for v in doc["negative"]:
        where = "negative " + v["name"]
        msg = bytes.fromhex(v["message"])
        got = "OK"
        try:
            if v["kind"] == "redeem":
                parse_redeem(msg, v["topic"])
                sec = bytes.fromhex(redeems["alice redeems"]["secret"])
                if not mac_ok(msg, sec):
                    got = "MAC"
            else:
                r = redeems[v["request"]]
                accept_grant(msg, v["topic"], bytes.fromhex(r["req_hash"]), fp,
                             bytes.fromhex(r["sign_pk"]), bytes.fromhex(r["dh_pk"]))
        except Refused as e:
            got = e.outcome
        f.expect(got == v["expect"], where, "got %s, want %s" % (got, v["expect"]))
        n += 1
    return n
