"""cred.json: credentials and revocation lists (SPEC 13.1, 13.3).

Imported by gen.py (render_all, and build_control for the REQUEST and
DELIVERY that carry a credential). Ed25519 is deterministic, so every
credential and list is reproduced byte for byte from the fixed seeds.
"""

import base64
import hashlib

from nacl import bindings as nb

import gen

CRED_LABEL = b"mqtt-e2e/v1/cred\0"
REV_LABEL = b"mqtt-e2e/v1/revocations\0"
AUTHORITY = gen.Party(gen.pattern(32, 13, 5), gen.pattern(32, 29, 7))
ROGUE = gen.Party(gen.pattern(32, 17, 9), gen.pattern(32, 31, 3))
CRED_T0 = gen.T0 - 3600 * 1000
CRED_T1 = gen.T0 + 90 * 24 * 3600 * 1000


def fp(party):
    return hashlib.blake2b(b"mqtt-e2e/v1/fingerprint" + party.sign_pk + party.dh_pk,
                           digest_size=16).digest()


def cred_unsigned(authority_fp, kind, serial, nbf, naf, holder, rules=(), scopes=(), version=1):
    out = (bytes([version, kind]) + authority_fp + serial.to_bytes(8, "big")
           + nbf.to_bytes(8, "big") + naf.to_bytes(8, "big") + holder.sign_pk + holder.dh_pk)
    if kind == 1:
        out += len(rules).to_bytes(2, "big")
        for r in rules:
            fb = r["filter"].encode("utf-8")
            out += bytes([r["scope"]]) + len(fb).to_bytes(2, "big") + fb
    else:
        out += bytes([len(scopes)]) + bytes(scopes)
    return out


def sign_cred(signer, unsigned):
    return unsigned + nb.crypto_sign(CRED_LABEL + unsigned, signer.sign_sk)[:64]


def credential(kind, holder, rules=(), scopes=(), serial=1, signer=AUTHORITY, nbf=CRED_T0,
               naf=CRED_T1):
    return sign_cred(signer, cred_unsigned(fp(AUTHORITY), kind, serial, nbf, naf, holder,
                                           rules, scopes))


# The control vectors' parties: SENDER holds a sender credential for two of
# its rules, ALICE a subscriber credential for scopes 1 and 17.
SENDER_CRED = credential(1, gen.SENDER, rules=[gen.rule(1, "plant/+/temp"),
                                               gen.rule(17, "alarm/#")], serial=0x5E)
ALICE_CRED = credential(2, gen.ALICE, scopes=[1, 17], serial=0xA1)


def revocation_topic(authority=AUTHORITY, control=gen.CONTROL_TOPIC):
    return "%s/authority/%s" % (control, fp(authority).hex())


def revocation_list(number, keys, time_ms, signer=AUTHORITY, topic=None, authority=AUTHORITY):
    topic = topic or revocation_topic(authority)
    unsigned = (gen.ctl_head(6, gen.sender_id_of(authority.sign_pk), time_ms) + fp(authority)
                + number.to_bytes(8, "big") + len(keys).to_bytes(2, "big") + b"".join(keys))
    tb = topic.encode("utf-8")
    sig = nb.crypto_sign(REV_LABEL + len(tb).to_bytes(2, "big") + tb + unsigned,
                         signer.sign_sk)[:64]
    return unsigned + sig


def build_cred():
    creds, negative, lists, list_negative = [], [], [], []

    def pos(name, raw, kind, holder, rules=(), scopes=(), serial=1, nbf=CRED_T0, naf=CRED_T1):
        item = {"name": name, "credential": raw.hex(), "kind": kind, "serial": serial,
                "not_before_ms": nbf, "not_after_ms": naf, "sign_pk": holder.sign_pk.hex(),
                "dh_pk": holder.dh_pk.hex(), "authority_fp": fp(AUTHORITY).hex(),
                "text": "e2e-cred1 " + base64.b64encode(raw).decode()}
        if kind == 1:
            item["rules"] = list(rules)
        else:
            item["scopes"] = list(scopes)
        creds.append(item)

    pos("sender", SENDER_CRED, 1, gen.SENDER, rules=[gen.rule(1, "plant/+/temp"),
                                                   gen.rule(17, "alarm/#")], serial=0x5E)
    pos("subscriber", ALICE_CRED, 2, gen.ALICE, scopes=[1, 17], serial=0xA1)
    many = [gen.rule(i % 7, "f/%d/#" % i) for i in range(64)]
    pos("sender-64-rules", credential(1, gen.MALLORY, rules=many, serial=2**63 - 1),
        1, gen.MALLORY, rules=many, serial=2**63 - 1)
    allsc = list(range(64))
    pos("subscriber-64-scopes", credential(2, gen.MALLORY, scopes=allsc, serial=0), 2,
        gen.MALLORY, scopes=allsc, serial=0)

    def neg(name, raw, expect):
        negative.append({"name": name, "credential": raw.hex(), "expect": expect})

    good = ALICE_CRED
    neg("signed-by-another-key", sign_cred(ROGUE, good[:-64]), "AUTH")
    neg("another-authority", sign_cred(ROGUE, cred_unsigned(fp(ROGUE), 2, 1, CRED_T0, CRED_T1,
                                                           gen.ALICE, scopes=[1])), "AUTH")
    neg("flipped-sig-bit", good[:-1] + bytes([good[-1] ^ 1]), "AUTH")
    neg("flipped-serial-bit", good[:18] + bytes([good[18] ^ 0x80]) + good[19:], "AUTH")
    neg("version-2", sign_cred(AUTHORITY, cred_unsigned(fp(AUTHORITY), 2, 1, CRED_T0, CRED_T1,
                                                        gen.ALICE, scopes=[1], version=2)),
        "VERSION")
    neg("kind-3", sign_cred(AUTHORITY, cred_unsigned(fp(AUTHORITY), 3, 1, CRED_T0, CRED_T1,
                                                     gen.ALICE, scopes=[1])), "MALFORMED")
    neg("no-scope", sign_cred(AUTHORITY, cred_unsigned(fp(AUTHORITY), 2, 1, CRED_T0, CRED_T1,
                                                       gen.ALICE, scopes=[])), "MALFORMED")
    neg("no-rule", sign_cred(AUTHORITY, cred_unsigned(fp(AUTHORITY), 1, 1, CRED_T0, CRED_T1,
                                                      gen.ALICE, rules=[])), "MALFORMED")
    neg("invalid-filter", sign_cred(AUTHORITY, cred_unsigned(
        fp(AUTHORITY), 1, 1, CRED_T0, CRED_T1, gen.ALICE, rules=[gen.rule(1, "a/#/b")])),
        "MALFORMED")
    neg("65-scopes", sign_cred(AUTHORITY, cred_unsigned(fp(AUTHORITY), 2, 1, CRED_T0, CRED_T1,
                                                        gen.ALICE, scopes=list(range(65)))),
        "MALFORMED")
    neg("truncated", good[:-1], "MALFORMED")
    neg("trailing-byte", good + b"\0", "MALFORMED")
    neg("empty", b"", "MALFORMED")

    k1, k2 = gen.ALICE.sign_pk, gen.MALLORY.sign_pk
    t = revocation_topic()

    def lpos(name, number, keys, time_ms):
        msg = revocation_list(number, keys, time_ms)
        lists.append({"name": name, "topic": t, "message": msg.hex(), "number": number,
                      "time_ms": time_ms, "keys": [k.hex() for k in keys],
                      "authority_fp": fp(AUTHORITY).hex(),
                      "sender": gen.sender_id_of(AUTHORITY.sign_pk)})

    lpos("empty-list-1", 1, [], gen.T0)
    lpos("list-2", 2, [k1], gen.T0 + 1000)
    lpos("list-3", 3, [k1, k2], gen.T0 + 2000)
    ok = revocation_list(2, [k1], gen.T0 + 1000)

    def lneg(name, msg, expect, topic=t):
        list_negative.append({"name": name, "topic": topic, "message": msg.hex(),
                              "expect": expect})

    lneg("signed-by-another-key", revocation_list(2, [k1], gen.T0, signer=ROGUE), "AUTH")
    lneg("re-topicked", ok, "AUTH", topic=revocation_topic(ROGUE))
    lneg("flipped-key-bit", ok[:40] + bytes([ok[40] ^ 1]) + ok[41:], "AUTH")
    lneg("unknown-authority", revocation_list(2, [k1], gen.T0, signer=ROGUE, authority=ROGUE,
                                              topic=t), "NOT_FOUND")
    lneg("number-0", revocation_list(0, [k1], gen.T0), "MALFORMED")
    lneg("count-above-keys", ok[:38] + (2).to_bytes(2, "big") + ok[40:], "MALFORMED")
    lneg("version-2", bytes([2]) + ok[1:], "VERSION")
    lneg("type-5", ok[:1] + bytes([5]) + ok[2:], "MALFORMED")
    lneg("truncated", ok[:-65], "MALFORMED")
    return {"authority": {"seed": AUTHORITY.seed.hex(), "sign_pk": AUTHORITY.sign_pk.hex(),
                          "dh_pk": AUTHORITY.dh_pk.hex(), "fp": fp(AUTHORITY).hex(),
                          "public_line": "e2e1 " + base64.b64encode(
                              AUTHORITY.sign_pk + AUTHORITY.dh_pk).decode() + " fleet"},
            "control_topic": gen.CONTROL_TOPIC, "credentials": creds, "negative": negative,
            "revocations": lists, "revocation_negative": list_negative}
