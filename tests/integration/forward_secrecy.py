#!/usr/bin/python3
"""Integration 5: forward secrecy of key deliveries.

The adversary records a real key request and its delivery (subscribed to
'#'). Later the subscriber's long-term identity is stolen (the test reads
its identity.key). With PyNaCl the adversary tries crypto_box_seal_open on
the recorded delivery with every long-term X25519 key it now has (the
identity's X25519 key, and the X25519 form of its Ed25519 key): all fail,
because the delivery is sealed to the request's ephemeral key, which e2e-sub
wipes after use and which never left the process. Controls: the same code
opens a box sealed to the long-term key (so the failure is not a harness
bug), and the payload key travels nowhere in clear.
"""
import base64
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from nacl import bindings as nb  # noqa: E402
from nacl.exceptions import CryptoError  # noqa: E402

TOPIC = "fs/t"


def try_open(sealed, pk, sk):
    try:
        return nb.crypto_box_seal_open(sealed, pk, sk)
    except CryptoError:
        return None


def body(env, c):
    broker = h.Broker(env)
    adv = h.Adversary(env, broker)
    s = h.Sender(env, "site")
    f = h.Subscriber(env, "fiona", trust=[s])
    s.enroll(f, ["default"])

    pub = h.start_pub_lines(env, broker, s, TOPIC, name="pub")
    c.require(adv.probe_key_service(s, 10) is not None, "e2e-pub key service up")
    sp = h.start_sub(env, broker, f, [TOPIC], name="sub", args=["--state", "none"])
    c.require(sp.wait_err(h.EV_KEY, 10), "subscriber received the key")
    pub.write("hello forward secrecy\n")
    pub.flush()
    c.expect(sp.wait_json(1, 10) >= 1 and h.payload_of(sp.messages()[0]) ==
             b"hello forward secrecy", "subscriber decrypts with the delivered key")
    req = adv.wait_request(f.sign_pk, 5)
    c.require(req is not None, "recorded the key request")
    dels = [h.parse_ctl(p) for _t, tp, p, _r in adv.seen(lambda m: m[1] == req["reply_topic"])]
    dels = [d for d in dels if d and d["type"] == h.CTL_DELIVERY and
            d["request_hash"] == h.ctl_hash(req["raw"])]
    c.require(dels, "recorded the delivery answering it")
    d = dels[0]
    sp.stop()
    c.expect(h.finish_pub(pub, 20) == 0, "e2e-pub exited 0")

    # The theft: the subscriber's long-term secret key file.
    ident = h.load_identity(os.path.join(f.dir, "identity.key"))
    c.expect(req["dh_pk"] == ident["dh_pk"] and req["sign_pk"] == ident["sign_pk"],
             "the request names the subscriber's long-term keys (we hold the right secret)")
    c.expect(req["eph_pk"] != ident["dh_pk"],
             "the request carries a separate ephemeral X25519 key")
    rec = 46   # SPEC 11.2: scope, epoch, not_after, flags, key
    # ... then the summary interval, refresh window and map: u32, 2 x u64, u16 r = 1,
    # (0, str16 "#").
    tail = len(h.map_bytes([(0, "#")]))
    c.expect(len(d["sealed"]) == 48 + 1 + rec * ((len(d["sealed"]) - 49 - tail) // rec) + tail
             and (len(d["sealed"]) - 49 - tail) % rec == 0,
             "delivery holds a sealed box of n key records and the map (%d bytes)"
             % len(d["sealed"]))

    # Control: our opening code works with the long-term key on a box sealed to it.
    probe = nb.crypto_box_seal(b"control", ident["dh_pk"])
    c.require(try_open(probe, ident["dh_pk"], ident["dh_sk"]) == b"control",
              "control: crypto_box_seal_open works with the long-term X25519 key")

    c.expect(try_open(d["sealed"], ident["dh_pk"], ident["dh_sk"]) is None,
             "recorded delivery does NOT open with the long-term X25519 key")
    ed_x_sk = nb.crypto_sign_ed25519_sk_to_curve25519(ident["sign_sk"])
    ed_x_pk = nb.crypto_sign_ed25519_pk_to_curve25519(ident["sign_pk"])
    c.expect(try_open(d["sealed"], ed_x_pk, ed_x_sk) is None,
             "nor with the X25519 form of the long-term Ed25519 key")
    c.expect(try_open(d["sealed"], req["eph_pk"], ident["dh_sk"]) is None,
             "nor with the long-term secret paired with the ephemeral public key")

    # The payload keys are nowhere on the wire in clear (raw or base64).
    keys = [k for _s, _e, _c, _n, k in s.keys()]
    c.require(keys, "sender keys file readable")
    wire = b"".join(p for _t, _tp, p, _r in adv.seen())
    leaked = [k for k in keys if k in wire or base64.b64encode(k) in wire]
    c.expect(not leaked, "no payload key appears in clear in %d recorded messages" %
             len(adv.seen()))
    # Nor in anything the subscriber printed.
    blob = "\n".join(sp.out_lines) + sp.stderr_text()
    c.expect(not any(base64.b64encode(k).decode() in blob for k in keys),
             "subscriber output holds no payload key")


if __name__ == "__main__":
    h.main("forward-secrecy", body)
