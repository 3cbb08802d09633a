"""tickets.json: one-time enrollment tickets (SPEC 14).

Imported by gen.py (render_all). Written from the SPEC: tokens (14.1), REDEEM
(14.3) with its MAC and signature, GRANT (14.5) carrying a subscriber
credential (13) built here from the credential layout, and negatives a
parser or redeemer MUST refuse, each with the outcome of the checks of 14.4
steps 1-4 (REDEEM) or 14.5 steps 1-6 (GRANT) in their order.
"""

import base64
import hashlib

from nacl import bindings as nb

import gen

REDEEM, GRANT = 0x07, 0x08
TOKEN_PREFIX = "e2et1-"
MAC_CONTEXT = b"mqtt-e2e/v1/ticket\x00"
CRED_CONTEXT = b"mqtt-e2e/v1/cred\x00"
T0 = gen.T0

AUTHORITY = gen.Party(bytes(range(0x40, 0x60)), bytes(range(0x10, 0x30)))
OTHER_AUTHORITY = gen.Party(gen.pattern(32, 11, 5), gen.pattern(32, 13, 7))
REDEEMER = gen.ALICE
MALLORY = gen.MALLORY


def fp_of(party):
    return hashlib.blake2b(b"mqtt-e2e/v1/fingerprint" + party.sign_pk + party.dh_pk,
                           digest_size=16).digest()


def token_of(tid, secret, fp):
    raw = base64.urlsafe_b64encode(tid + secret + fp).decode("ascii").rstrip("=")
    return TOKEN_PREFIX + raw


def redeem_topic(fp, control=gen.CONTROL_TOPIC):
    return "%s/authority/%s/redeem" % (control, fp.hex())


def mac_of(secret, unsigned):
    return hashlib.blake2b(MAC_CONTEXT + unsigned, digest_size=32, key=secret).digest()


def redeem_msg(redeemer, tid, secret, nonce, reply, time_ms, topic, signer=None, sender=0,
               keys=None, mac_secret=None, version=gen.CTL_VERSION):
    sign_pk, dh_pk = keys if keys else (redeemer.sign_pk, redeemer.dh_pk)
    unsigned = (gen.ctl_head(REDEEM, sender, time_ms, version) + tid + sign_pk + dh_pk + nonce +
                gen.str8(reply))
    unsigned += mac_of(mac_secret if mac_secret is not None else secret, unsigned)
    return gen.ctl_sign(signer or redeemer, topic, unsigned)


def cred_sign(signed, party):
    """Ed25519 (SPEC 13.1) over the context and the credential without its signature."""
    return nb.crypto_sign(CRED_CONTEXT + signed, party.sign_sk)[:64]


def sub_cred(authority, holder, serial, nb_ms, na_ms, scopes, signer=None):
    body = (bytes([1, 2]) + fp_of(authority) + serial.to_bytes(8, "big") +
            nb_ms.to_bytes(8, "big") + na_ms.to_bytes(8, "big") + holder.sign_pk + holder.dh_pk +
            bytes([len(scopes)]) + bytes(scopes))
    return body + cred_sign(body, signer or authority)


def sender_cred(authority, holder, serial, nb_ms, na_ms, rules):
    body = (bytes([1, 1]) + fp_of(authority) + serial.to_bytes(8, "big") +
            nb_ms.to_bytes(8, "big") + na_ms.to_bytes(8, "big") + holder.sign_pk + holder.dh_pk +
            len(rules).to_bytes(2, "big") +
            b"".join(bytes([sc]) + gen.str16b(f.encode()) for sc, f in rules))
    return body + cred_sign(body, authority)


def grant_msg(authority, req_hash, reason, cred, time_ms, topic, signer=None, keys=None,
              sender=None):
    sign_pk, dh_pk = keys if keys else (authority.sign_pk, authority.dh_pk)
    sid = sender if sender is not None else gen.sender_id_of(sign_pk)
    unsigned = (gen.ctl_head(GRANT, sid, time_ms) + req_hash + sign_pk + dh_pk + bytes([reason]) +
                len(cred).to_bytes(2, "big") + cred)
    return gen.ctl_sign(signer or authority, topic, unsigned)


def req_hash_of(msg):
    return hashlib.blake2b(msg, digest_size=32).digest()


def build_tickets():
    fp = fp_of(AUTHORITY)
    tid = bytes.fromhex("0123456789abcdef")
    secret = bytes(range(0xC0, 0xD0))
    tid2 = bytes([0xFF] * 8)
    secret2 = bytes([0x00] * 16)
    topic = redeem_topic(fp)
    reply = "e2e/k/" + "0f" * 16
    reply2 = "e2e/k/" + "a1b2c3d4" * 6
    nonce = bytes(range(0x30, 0x40))
    doc = {"authority": {"seed": AUTHORITY.seed.hex(), "sign_pk": AUTHORITY.sign_pk.hex(),
                         "dh_pk": AUTHORITY.dh_pk.hex(), "fp": fp.hex(),
                         "sender": AUTHORITY.id},
           "control_topic": gen.CONTROL_TOPIC,
           "tokens": [], "token_negative": [], "redeems": [], "grants": [], "negative": []}

    for name, i, s, f in (("plain", tid, secret, fp), ("all ones and zeros", tid2, secret2,
                                                          bytes(16))):
        doc["tokens"].append({"name": name, "id": i.hex(), "secret": s.hex(), "fp": f.hex(),
                              "token": token_of(i, s, f)})
    good = token_of(tid, secret, fp)
    for name, t in (("empty", ""), ("prefix only", TOKEN_PREFIX),
                    ("other prefix", "e2et2-" + good[6:]), ("upper-case prefix", "E2ET1-" + good[6:]),
                    ("one character short", good[:-1]), ("one character more", good + "A"),
                    ("padded", good + "="), ("standard alphabet", good[:-2] + "+/"),
                    ("a blank inside", good[:20] + " " + good[21:]),
                    ("non-canonical last character", good[:-1] + chr(ord(good[-1]) + 1))):
        doc["token_negative"].append({"name": name, "token": t})

    def redeem(name, redeemer, t_id, sec, rep, time_ms, nonce_=nonce):
        msg = redeem_msg(redeemer, t_id, sec, nonce_, rep, time_ms, topic)
        unsigned = msg[:-64]
        item = {"name": name, "seed": redeemer.seed.hex(), "topic": topic,
                "token": token_of(t_id, sec, fp), "secret": sec.hex(), "ticket_id": t_id.hex(),
                "sign_pk": redeemer.sign_pk.hex(), "dh_pk": redeemer.dh_pk.hex(),
                "nonce": nonce_.hex(), "reply_topic": rep, "time_ms": time_ms,
                "mac": unsigned[-32:].hex(), "message": msg.hex(),
                "req_hash": req_hash_of(msg).hex()}
        doc["redeems"].append(item)
        return msg

    r1 = redeem("alice redeems", REDEEMER, tid, secret, reply, T0)
    r2 = redeem("mallory redeems another ticket", MALLORY, tid2, secret2, reply2, T0 + 5,
                bytes(16))
    h1, h2 = req_hash_of(r1), req_hash_of(r2)

    cred1 = sub_cred(AUTHORITY, REDEEMER, 0x1122334455667788, T0 - 60000, T0 + 90 * 86400000,
                     [1, 3])

    def grant(name, req_name, rh, rep, reason, cred, time_ms):
        msg = grant_msg(AUTHORITY, rh, reason, cred, time_ms, rep)
        doc["grants"].append({"name": name, "request": req_name, "topic": rep,
                              "req_hash": rh.hex(), "reason": reason, "cred": cred.hex(),
                              "time_ms": time_ms, "message": msg.hex()})
        return msg

    g1 = grant("granted", "alice redeems", h1, reply, 0, cred1, T0 + 1)
    for reason in (5, 6, 7, 8, 9):
        grant("refused %d" % reason, "mallory redeems another ticket", h2, reply2, reason, b"",
              T0 + 6)

    def neg(name, kind, msg, expect, topic_=None, request=None):
        doc["negative"].append({"name": name, "kind": kind, "topic": topic_ or
                                (topic if kind == "redeem" else reply),
                                "message": msg.hex(), "request": request, "expect": expect})

    # REDEEM: 14.4 steps 1-2 (MALFORMED, VERSION, AUTH), then the MAC (step 4).
    other_topic = redeem_topic(fp_of(OTHER_AUTHORITY))
    neg("redeem moved to another authority's topic", "redeem", r1, "AUTH", other_topic)
    neg("redeem on the authority's list topic", "redeem", r1, "AUTH", topic[:-len("/redeem")])
    neg("redeem: flipped signature bit", "redeem", r1[:-1] + bytes([r1[-1] ^ 1]), "AUTH")
    neg("redeem: keys swapped by the broker, signed by it", "redeem",
        redeem_msg(REDEEMER, tid, secret, nonce, reply, T0, topic, signer=MALLORY,
                   keys=(MALLORY.sign_pk, MALLORY.dh_pk), mac_secret=b"\x00" * 16), "MAC")
    neg("redeem: reply topic changed by the broker, re-signed with its own key", "redeem",
        redeem_msg(MALLORY, tid, secret, nonce, reply2, T0, topic, mac_secret=bytes(16)), "MAC")
    neg("redeem: forged token secret", "redeem",
        redeem_msg(REDEEMER, tid, secret, nonce, reply, T0, topic,
                   mac_secret=secret[:-1] + bytes([secret[-1] ^ 0x80])), "MAC")
    neg("redeem: sender field not 0", "redeem",
        redeem_msg(REDEEMER, tid, secret, nonce, reply, T0, topic, sender=1), "MALFORMED")
    neg("redeem: version 2", "redeem",
        redeem_msg(REDEEMER, tid, secret, nonce, reply, T0, topic, version=2), "VERSION")
    neg("redeem: truncated", "redeem", r1[:60], "MALFORMED")
    neg("redeem: a trailing byte, signed", "redeem",
        gen.ctl_sign(REDEEMER, topic, r1[:-64] + b"\x00"), "MALFORMED")
    neg("redeem: bad reply topic", "redeem",
        redeem_msg(REDEEMER, tid, secret, nonce, "e2e/k/" + "0F" * 16, T0, topic), "MALFORMED")
    neg("redeem: type GRANT on the redeem topic", "redeem", g1, "MALFORMED", topic)

    # GRANT: 14.5 steps 1-6, as the redeemer of "alice redeems" sees them.
    req = "alice redeems"
    neg("grant: signed by another authority with its own keys", "grant",
        grant_msg(OTHER_AUTHORITY, h1, 0, sub_cred(OTHER_AUTHORITY, REDEEMER, 1, T0, T0 + 1000,
                                                   [1]), T0, reply), "AUTH", request=req)
    neg("grant: the authority's keys, signed by another", "grant",
        grant_msg(AUTHORITY, h1, 0, cred1, T0, reply, signer=MALLORY), "AUTH", request=req)
    neg("grant: moved to another reply topic", "grant", g1, "AUTH", reply2, request=req)
    neg("grant: another redeemer's grant replayed (req_hash)", "grant",
        grant_msg(AUTHORITY, h2, 0, sub_cred(AUTHORITY, MALLORY, 2, T0, T0 + 1000, [1]), T0,
                  reply), "OTHER_REQUEST", request=req)
    neg("grant: a credential for the broker's keys", "grant",
        grant_msg(AUTHORITY, h1, 0, sub_cred(AUTHORITY, MALLORY, 3, T0, T0 + 1000, [1, 3]), T0,
                  reply), "AUTH", request=req)
    neg("grant: a sender credential", "grant",
        grant_msg(AUTHORITY, h1, 0, sender_cred(AUTHORITY, REDEEMER, 4, T0, T0 + 1000,
                                                [(1, "plant/#")]), T0, reply), "AUTH",
        request=req)
    neg("grant: credential signed by another authority", "grant",
        grant_msg(AUTHORITY, h1, 0, sub_cred(AUTHORITY, REDEEMER, 5, T0, T0 + 1000, [1],
                                             signer=OTHER_AUTHORITY), T0, reply), "AUTH",
        request=req)
    neg("grant: reason 0 without a credential", "grant",
        grant_msg(AUTHORITY, h1, 0, b"", T0, reply), "MALFORMED", request=req)
    neg("grant: a refusal with a credential", "grant",
        grant_msg(AUTHORITY, h1, 8, cred1, T0, reply), "MALFORMED", request=req)
    neg("grant: sender field not the authority's id", "grant",
        grant_msg(AUTHORITY, h1, 0, cred1, T0, reply, sender=AUTHORITY.id ^ 1), "MALFORMED",
        request=req)
    neg("grant: credential length beyond the end", "grant",
        gen.ctl_sign(AUTHORITY, reply, g1[:-64 - len(cred1) - 2] + b"\x04\x00" + cred1),
        "MALFORMED", request=req)
    neg("grant: flipped bit in the credential", "grant",
        gen.ctl_sign(AUTHORITY, reply, g1[:-64 - 10] + bytes([g1[-64 - 10] ^ 1]) + g1[-64 - 9:-64]),
        "AUTH", request=req)
    return doc
