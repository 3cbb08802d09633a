#!/usr/bin/python3
"""Independent check of the mqtt-e2e v1 test vectors (protocol/SPEC.md section 12).

Decodes the vectors with code written separately from gen.py on purpose
(sumcheck.json: a dict-and-set model of the summary receiver, SPEC 11.6):
headers are parsed with struct, the receiver follows SPEC 5.4 step by step
and the replay window is a plain set model instead of gen.py's RFC 6479
ring, so a bug in one of them shows up as a mismatch here. Control messages
(SPEC 11) are decoded with a cursor over struct formats, signatures checked
with crypto_sign_open, deliveries opened with libsodium's crypto_box_seal_open.
Finally gen.py's render_all() must reproduce the stored files byte for byte.

Usage: /usr/bin/python3 check.py [VECTOR_DIR]     (default: this script's dir)
Exit status 0 only if everything matches; run as a meson test.
"""

import base64
import hashlib
import json
import os
import struct
import sys

# Importing gen.py must not leave __pycache__ in the source tree (meson test).
sys.dont_write_bytecode = True

from nacl import bindings as nb                      # noqa: E402
from nacl.exceptions import CryptoError              # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = struct.Struct(">BBIIIHII")   # counter is u48: high u16 + low u32
assert HEADER.size == 24
TAG = 16
DELIVERS = ("OK", "GAP", "LATE")
ALL_VERDICTS = ("OK", "DUPLICATE", "LATE", "GAP", "TOO_OLD", "FORGED",
                "UNKNOWN_KEY", "MALFORMED", "FORGOTTEN")


class Failures:
    """Collects mismatches so one run reports all of them, not just the first."""

    def __init__(self):
        self.items = []

    def expect(self, cond, where, msg):
        if not cond:
            self.items.append("%s: %s" % (where, msg))
        return cond


# ---------------------------------------------------------------- envelope

def pack_header(h):
    return HEADER.pack(h["suite"], h["scope"], h["epoch"], h["sender"], h["run"],
                       h["counter"] >> 32, h["counter"] & 0xFFFFFFFF, h["seq"])


def unpack_header(env):
    suite, scope, epoch, sender, run, c_hi, c_lo, seq = HEADER.unpack_from(env)
    return {"suite": suite, "scope": scope, "epoch": epoch, "sender": sender,
            "run": run, "counter": (c_hi << 32) | c_lo, "seq": seq}


class SetWindow:
    """The window algorithm of SPEC 5.3 over an unbounded set of accepted
    sequence numbers: same verdicts as a correct ring bitmap by definition."""

    def __init__(self, size):
        self.size, self.top, self.base, self.seen = size, 0, 0, set()

    def check(self, seq):
        if self.top == 0 or seq == self.top + 1:
            return "OK", 0
        if seq > self.top:
            return "GAP", seq - self.top - 1
        if self.top - seq >= self.size:
            return "TOO_OLD", 0
        return ("DUPLICATE", 0) if seq in self.seen else ("LATE", 0)

    def update(self, seq):
        self.base = seq if self.top == 0 else min(self.base, seq)
        self.top = max(self.top, seq)
        self.seen.add(seq)

    def final(self):
        if self.top == 0:
            return {"top": 0, "base": 0, "received": 0, "pending": 0, "lost": 0}
        lo = max(self.base, self.top - self.size + 1)
        pending = (self.top - lo + 1) - sum(1 for s in self.seen if lo <= s <= self.top)
        holes = (self.top - self.base + 1) - len(self.seen)
        return {"top": self.top, "base": self.base, "received": len(self.seen),
                "pending": pending, "lost": holes - pending}


def mqtt_filter_ok(f):
    """A topic filter as bytes: non-empty, at most 65535 bytes, no NUL, a
    wildcard is a whole level, '#' is the last level."""
    if len(f) == 0 or len(f) > 65535 or 0 in f:
        return False
    n = len(f)
    for i, c in enumerate(f):
        whole = (i == 0 or f[i - 1] == 0x2F) and (i == n - 1 or f[i + 1] == 0x2F)
        if c == 0x2B and not whole:
            return False
        if c == 0x23 and not (whole and i == n - 1):
            return False
    return True


def mqtt_match(flt, topic):
    """Walk filter and topic level by level (written apart from gen.py's)."""
    if topic.startswith(b"$") and flt[:1] in (b"+", b"#"):
        return False
    fi = ti = 0
    while True:
        fe = flt.find(b"/", fi)
        fe = len(flt) if fe < 0 else fe
        level = flt[fi:fe]
        if level == b"#":
            return True
        if ti > len(topic):
            return False               # the topic ran out of levels first
        te = topic.find(b"/", ti)
        te = len(topic) if te < 0 else te
        if level != b"+" and level != topic[ti:te]:
            return False
        fi, ti = fe + 1, te + 1
        if fi > len(flt):
            return ti > len(topic)
        if ti > len(topic) and flt[fi:] != b"#":
            return False


def topic_scope(rules, topic):
    """SPEC 5.4 step 2: the first rule (in the sender's order) whose filter
    matches; None for no rule or a topic that is no valid topic name."""
    if len(topic) == 0 or any(c in (0, 0x23, 0x2B) for c in topic):
        return None
    for r in rules:
        if mqtt_match(r["filter"].encode("utf-8"), topic):
            return r["scope"]
    return None


def maps_by_sender(items):
    return {m["sender"]: m["rules"] for m in items}


class Receiver:
    """SPEC 5.4: parse -> scope by the sender's map -> key lookup -> stream
    lookup -> window check -> AEAD open -> window update -> deliver."""

    def __init__(self, keys, maps, window=1024):
        self.keys, self.maps, self.window, self.streams = keys, maps, window, {}

    def receive(self, topic, env):
        if len(env) < HEADER.size + TAG:
            return "MALFORMED", None
        h = unpack_header(env)
        if h["suite"] != 1 or not (h["run"] and h["counter"] and h["seq"]):
            return "MALFORMED", None
        if h["sender"] not in self.maps:
            return "UNKNOWN_KEY", None
        if topic_scope(self.maps[h["sender"]], topic) != h["scope"]:
            return "FORGED", None
        key = self.keys.get((h["sender"], h["scope"], h["epoch"]))
        if key is None:
            return "UNKNOWN_KEY", None
        w = self.streams.setdefault((h["sender"], h["run"], topic), SetWindow(self.window))
        verdict, _gap = w.check(h["seq"])
        if verdict not in DELIVERS:
            return verdict, None
        nonce = bytes(env[:24])
        try:
            pt = nb.crypto_aead_xchacha20poly1305_ietf_decrypt(bytes(env[24:]), nonce + topic,
                                                               nonce, key)
        except CryptoError:
            return "FORGED", None
        w.update(h["seq"])
        return verdict, pt


def topic_bytes(item, f, where):
    tb = item["topic"].encode("utf-8")
    f.expect(tb.hex() == item["topic_hex"], where, "topic_hex does not match topic")
    return tb


def check_envelope(doc, f):
    n = 0
    f.expect(doc.get("suite") == 1, "envelope", "suite must be 1")
    for p in doc["positive"]:
        where = "envelope positive %r" % p["name"]
        key, pt, env = (bytes.fromhex(p[k]) for k in ("key", "plaintext", "envelope"))
        tb = topic_bytes(p, f, where)
        head = pack_header(p["header"])
        sealed = head + nb.crypto_aead_xchacha20poly1305_ietf_encrypt(pt, head + tb, head, key)
        f.expect(sealed == env, where, "re-encryption differs from stored envelope")
        f.expect(len(env) == len(pt) + 40, where, "overhead is not 40 bytes")
        h = p["header"]
        rx = Receiver({(h["sender"], h["scope"], h["epoch"]): key}, maps_by_sender(p["maps"]))
        verdict, got = rx.receive(tb, env)
        f.expect(verdict == "OK" and got == pt, where,
                 "decode gave %s, plaintext %s" % (verdict, "ok" if got == pt else "differs"))
        # The same envelope again is a replay: suppressed before decryption.
        f.expect(rx.receive(tb, env)[0] == "DUPLICATE", where, "second copy not DUPLICATE")
        n += 1
    for q in doc["negative"]:
        where = "envelope negative %r" % q["name"]
        tb = topic_bytes(q, f, where)
        keys = {(k["sender"], k["scope"], k["epoch"]): bytes.fromhex(k["key"]) for k in q["keys"]}
        f.expect(len(keys) == len(q["keys"]), where, "duplicate key ids")
        verdict, got = Receiver(keys, maps_by_sender(q["maps"])).receive(
            tb, bytes.fromhex(q["envelope"]))
        f.expect(q["verdict"] in ("FORGED", "MALFORMED", "UNKNOWN_KEY"), where,
                 "unexpected verdict class %s" % q["verdict"])
        f.expect(verdict == q["verdict"] and got is None, where,
                 "expected %s, decoder says %s" % (q["verdict"], verdict))
        n += 1
    for t in doc["topic_hashes"]:
        where = "topic hash %r" % t["topic"][:40]
        tb = topic_bytes(t, f, where)
        got = siphash24(bytes.fromhex(t["key"]), tb)
        f.expect(got.hex() == t["siphash"], where, "SipHash-2-4 differs")
        f.expect(struct.unpack("<Q", got)[0] == int(t["topic_hash"], 16), where,
                 "topic_hash is not the output read little-endian")
        n += 1
    return n


def siphash24(key, data):
    """SipHash-2-4 (Aumasson, Bernstein) in plain Python: 8 output bytes."""
    mask = (1 << 64) - 1

    def rotl(x, b):
        return ((x << b) | (x >> (64 - b))) & mask

    k0, k1 = struct.unpack("<QQ", key)
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D,
         k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def rnd():
        v[0] = (v[0] + v[1]) & mask
        v[1] = rotl(v[1], 13) ^ v[0]
        v[0] = rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & mask
        v[3] = rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & mask
        v[3] = rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & mask
        v[1] = rotl(v[1], 17) ^ v[2]
        v[2] = rotl(v[2], 32)

    tail = len(data) % 8
    blocks = data[:len(data) - tail]
    for i in range(0, len(blocks), 8):
        m = struct.unpack_from("<Q", blocks, i)[0]
        v[3] ^= m
        rnd()
        rnd()
        v[0] ^= m
    last = (len(data) & 0xFF) << 56
    for i, c in enumerate(data[len(data) - tail:]):
        last |= c << (8 * i)
    v[3] ^= last
    rnd()
    rnd()
    v[0] ^= last
    v[2] ^= 0xFF
    for _ in range(4):
        rnd()
    return struct.pack("<Q", v[0] ^ v[1] ^ v[2] ^ v[3])


# ---------------------------------------------------------------- window

def check_window(doc, f):
    n = 0
    for s in doc["sequences"]:
        where = "window %r" % s["name"]
        size = s["window"]
        f.expect(size % 64 == 0 and 64 <= size <= 1 << 20, where, "bad window size")
        f.expect(len(s["arrivals"]) == len(s["verdicts"]) == len(s["gaps"]), where,
                 "arrivals/verdicts/gaps lengths differ")
        w = SetWindow(size)
        for i, (seq, want, want_gap) in enumerate(zip(s["arrivals"], s["verdicts"], s["gaps"])):
            f.expect(1 <= seq <= 0xFFFFFFFF, where, "arrival %d out of u32 range" % i)
            verdict, gap = w.check(seq)
            if not f.expect((verdict, gap) == (want, want_gap), where,
                            "arrival #%d seq %d: model %s(%d), file %s(%d)"
                            % (i, seq, verdict, gap, want, want_gap)):
                break
            if verdict in DELIVERS:
                w.update(seq)
        f.expect(w.final() == s["final"], where,
                 "final state: model %s, file %s" % (w.final(), s["final"]))
        n += 1
    return n


# ---------------------------------------------------------------- tx

def check_tx(doc, f):
    n = 0
    for s in doc["sequences"]:
        where = "tx %r" % s["name"]
        key = bytes.fromhex(s["key"])
        f.expect(len(s["topics"]) == len(s["plaintexts"]) == len(s["expect"]), where,
                 "topics/plaintexts/expect lengths differ")
        # The sender seals all its topics under this one scope.
        rx = Receiver({(s["sender"], s["scope"], s["epoch"]): key},
                      {s["sender"]: [{"scope": s["scope"], "filter": "#"}]})
        seqs = {}
        for i, (topic, pt_hex, e) in enumerate(zip(s["topics"], s["plaintexts"], s["expect"])):
            seqs[topic] = seqs.get(topic, 0) + 1
            f.expect(e["counter"] == s["counter_floor"] + 1 + i, where, "#%d counter" % i)
            f.expect(e["seq"] == seqs[topic], where, "#%d seq" % i)
            h = {"suite": 1, "scope": s["scope"], "epoch": s["epoch"], "sender": s["sender"],
                 "run": s["run"], "counter": e["counter"], "seq": e["seq"]}
            head, tb, pt = pack_header(h), topic.encode("utf-8"), bytes.fromhex(pt_hex)
            env = bytes.fromhex(e["envelope"])
            f.expect(head + nb.crypto_aead_xchacha20poly1305_ietf_encrypt(pt, head + tb, head, key)
                     == env, where, "#%d envelope differs" % i)
            # An in-order sender stream decodes as OK (first one of each topic too).
            verdict, got = rx.receive(tb, env)
            f.expect(verdict == "OK" and got == pt, where, "#%d decodes as %s" % (i, verdict))
        n += 1
    return n


# ---------------------------------------------------------------- identity

def parse_secret_file(text):
    """SPEC 7.1: LF-terminated lines (CR before LF dropped); empty lines and
    '#' lines ignored; exactly one secret line."""
    found = []
    for line in text.split("\n"):
        line = line[:-1] if line.endswith("\r") else line
        if line == "" or line.startswith("#"):
            continue
        if not line.startswith("e2e-secret1 "):
            raise ValueError("unexpected line")
        found.append(base64.b64decode(line[len("e2e-secret1 "):], validate=True))
    if len(found) != 1 or len(found[0]) != 64:
        raise ValueError("need exactly one 64-byte secret line")
    return found[0][:32], found[0][32:]


def check_identity(doc, f):
    n = 0
    for i, v in enumerate(doc["vectors"]):
        where = "identity #%d" % i
        seed, dh_sk = parse_secret_file(v["secret_file"])
        f.expect(seed.hex() == v["seed"] and dh_sk.hex() == v["dh_sk"], where,
                 "secret_file does not hold seed/dh_sk")
        f.expect(v["secret_file"].startswith("#") and v["secret_file"].endswith("\n"), where,
                 "secret_file must start with a comment and end with a newline")
        sign_pk = nb.crypto_sign_seed_keypair(seed)[0]
        dh_pk = nb.crypto_scalarmult_base(dh_sk)
        f.expect(sign_pk.hex() == v["sign_pk"], where, "sign_pk")
        f.expect(dh_pk.hex() == v["dh_pk"], where, "dh_pk")
        f.expect(sender_id(sign_pk) == v["sender_id"], where, "sender_id")
        fp = hashlib.new("blake2b", b"mqtt-e2e/v1/fingerprint" + sign_pk + dh_pk,
                         digest_size=16).digest()
        want_fp = "e2e:" + ":".join(fp[j:j + 2].hex() for j in range(0, 16, 2))
        f.expect(v["fingerprint"] == want_fp, where, "fingerprint")
        parts = v["public_line"].split(" ")
        f.expect(parts[0] == "e2e1" and len(parts[1]) == 88 and len(parts) in (2, 3), where,
                 "public_line shape")
        f.expect(base64.b64decode(parts[1], validate=True) == sign_pk + dh_pk, where,
                 "public_line keys")
        name = parts[2] if len(parts) == 3 else ""
        f.expect(name == v["name"], where, "public_line name")
        f.expect(name == "" or (len(name) <= 64 and all(0x21 <= ord(c) <= 0x7E for c in name)),
                 where, "name characters")
        n += 1
    return n


# ---------------------------------------------------------------- control

CTL_TYPES = {1: "REQUEST", 2: "DELIVERY", 3: "REFUSAL", 4: "ANNOUNCE", 5: "SUMMARY"}
CTL_HEAD = struct.Struct(">BBIQ")     # version, type, sender, time_ms
assert CTL_HEAD.size == 14
CTL_SIG = 64
SEALBYTES = 48                        # crypto_box_SEALBYTES: epk || MAC
KEY_REC = struct.Struct(">BIQB32s")   # scope, epoch, not_after, flags, key
OUTCOMES = ("MALFORMED", "VERSION", "AUTH")


class Layout(Exception):
    """The body does not follow the layout of its type."""


class Reader:
    """Bounds-checked big-endian reads over the body."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def get(self, fmt):
        st = struct.Struct(">" + fmt)
        if self.pos + st.size > len(self.data):
            raise Layout("short")
        vals = st.unpack_from(self.data, self.pos)
        self.pos += st.size
        return vals if len(vals) > 1 else vals[0]

    def raw(self, n):
        if self.pos + n > len(self.data):
            raise Layout("short")
        self.pos += n
        return self.data[self.pos - n:self.pos]


# --------------------------------------------------------------------------
# SPEC 13: credentials and revocation lists
# --------------------------------------------------------------------------

CRED_FIXED = struct.Struct(">BB16sQQQ32s32s")


def decode_cred(c):
    """SPEC 13.1 layout (no signature): a dict, or None if malformed or not version 1."""
    if len(c) < CRED_FIXED.size + 1 + 64 or len(c) > 4096:
        return None
    version, kind, fp, serial, nbf, naf, spk, dpk = CRED_FIXED.unpack_from(c)
    if version != 1:
        return None
    r = Reader(c[CRED_FIXED.size:-64])
    d = {"kind": kind, "authority_fp": fp.hex(), "serial": serial, "not_before_ms": nbf,
         "not_after_ms": naf, "sign_pk": spk.hex(), "dh_pk": dpk.hex()}
    try:
        if kind == 1:
            n = r.get("H")
            if not 1 <= n <= 64:
                return None
            d["rules"] = []
            for _ in range(n):
                scope = r.get("B")
                flt = r.raw(r.get("H"))
                if not mqtt_filter_ok(flt):
                    return None
                d["rules"].append({"scope": scope, "filter": flt.decode("utf-8")})
        elif kind == 2:
            n = r.get("B")
            if not 1 <= n <= 64:
                return None
            d["scopes"] = list(r.raw(n))
        else:
            return None
    except (Layout, UnicodeDecodeError):
        return None
    if r.pos != len(r.data):
        return None
    return d


def fingerprint_bytes(sign_pk, dh_pk):
    return hashlib.blake2b(b"mqtt-e2e/v1/fingerprint" + sign_pk + dh_pk, digest_size=16).digest()


def verify_cred(c, authority_sign_pk, authority_dh_pk):
    """The authority named (fp) and its Ed25519 signature over the domain string."""
    d = decode_cred(c)
    if d is None:
        return False
    if bytes.fromhex(d["authority_fp"]) != fingerprint_bytes(authority_sign_pk, authority_dh_pk):
        return False
    try:
        nb.crypto_sign_open(c[-64:] + b"mqtt-e2e/v1/cred\0" + c[:-64], authority_sign_pk)
    except CryptoError:
        return False
    return True



def decode_revocations(msg, topic, authority):
    """SPEC 13.3: size, version, type, layout, listed authority, sender id, signature."""
    if len(msg) < 14 + 26 + 64 or len(msg) > 65535:
        return "MALFORMED", None
    version, type_, sender, time_ms = CTL_HEAD.unpack_from(msg)
    if version != 1:
        return "VERSION", None
    if type_ != 6:
        return "MALFORMED", None
    r = Reader(msg[CTL_HEAD.size:-64])
    try:
        afp = r.raw(16)
        number = r.get("Q")
        n = r.get("H")
        keys = [r.raw(32).hex() for _ in range(n)]
    except Layout:
        return "MALFORMED", None
    if r.pos != len(r.data) or number == 0:
        return "MALFORMED", None
    spk, dpk = authority
    if afp != fingerprint_bytes(spk, dpk):
        return "NOT_FOUND", None
    if sender != sender_id(spk):
        return "AUTH", None
    tb = topic.encode("utf-8")
    try:
        nb.crypto_sign_open(msg[-64:] + b"mqtt-e2e/v1/revocations\0" + struct.pack(">H", len(tb))
                            + tb + msg[:-64], spk)
    except CryptoError:
        return "AUTH", None
    return "OK", {"authority_fp": afp.hex(), "number": number, "keys": keys, "time_ms": time_ms,
                  "sender": sender}


def check_cred(doc, f):
    """cred.json: credentials (13.1) and revocation lists (13.3)."""
    a = doc["authority"]
    spk, dpk = bytes.fromhex(a["sign_pk"]), bytes.fromhex(a["dh_pk"])
    pk, _sk = nb.crypto_sign_seed_keypair(bytes.fromhex(a["seed"]))
    f.expect(pk == spk and fingerprint_bytes(spk, dpk).hex() == a["fp"], "cred/authority",
             "seed, keys and fp disagree")
    f.expect(a["public_line"].split()[1] == base64.b64encode(spk + dpk).decode(),
             "cred/authority", "public line")
    count = 0
    for c in doc["credentials"]:
        where = "cred/" + c["name"]
        raw = bytes.fromhex(c["credential"])
        d = decode_cred(raw)
        if not f.expect(d is not None, where, "does not decode"):
            continue
        for k, v in d.items():
            f.expect(c.get(k) == v, where, "field %s: decoded %r, file %r" % (k, v, c.get(k)))
        f.expect(verify_cred(raw, spk, dpk), where, "signature does not verify")
        f.expect(base64.b64decode(c["text"].split()[1]) == raw and
                 c["text"].startswith("e2e-cred1 "), where, "text form")
        count += 1
    for c in doc["negative"]:
        where = "cred/negative/" + c["name"]
        raw = bytes.fromhex(c["credential"])
        d = decode_cred(raw)
        if raw[:1] not in (b"", b"\x01") and len(raw) >= CRED_FIXED.size + 65:
            got = "VERSION"
        elif d is None:
            got = "MALFORMED"
        else:
            got = "OK" if verify_cred(raw, spk, dpk) else "AUTH"
        f.expect(got == c["expect"], where, "got %s, want %s" % (got, c["expect"]))
        count += 1
    for lst in doc["revocations"]:
        where = "cred/revocations/" + lst["name"]
        got, fields = decode_revocations(bytes.fromhex(lst["message"]), lst["topic"], (spk, dpk))
        if f.expect(got == "OK", where, "got %s" % got):
            for k, v in fields.items():
                f.expect(lst.get(k) == v, where, "field %s" % k)
        f.expect(lst["topic"] == "%s/authority/%s" % (doc["control_topic"], a["fp"]), where,
                 "topic")
        count += 1
    for lst in doc["revocation_negative"]:
        where = "cred/revocations/negative/" + lst["name"]
        got, _ = decode_revocations(bytes.fromhex(lst["message"]), lst["topic"], (spk, dpk))
        f.expect(got == lst["expect"], where, "got %s, want %s" % (got, lst["expect"]))
        count += 1
    return count


def reply_topic_valid(t):
    """'e2e/k/' + at least 32 lowercase hex digits, at most 128 bytes."""
    if len(t) > 128 or not t.startswith(b"e2e/k/"):
        return False
    digits = t[6:]
    return len(digits) >= 32 and all(c in b"0123456789abcdef" for c in digits)


def body_request(r):
    f = {"requester_sign_pk": r.raw(32).hex(), "requester_dh_pk": r.raw(32).hex(),
         "eph_pk": r.raw(32).hex(), "nonce": r.raw(16).hex()}
    reply = r.raw(r.get("B"))
    if not reply_topic_valid(reply):
        raise Layout("reply topic")
    f["reply_topic"] = reply.decode("ascii")
    n = r.get("B")
    if n > 16:
        raise Layout("more than 16 scopes")
    f["want"] = [dict(zip(("scope", "epoch"), r.get("BI"))) for _ in range(n)]
    f["cred"] = read_cred_field(r)
    return f


def read_cred_field(r):
    """u16 c || cred[c] (SPEC 13.4): a non-empty credential must have the 13.1 layout."""
    c = r.raw(r.get("H"))
    if c and decode_cred(c) is None:
        raise Layout("credential")
    return c.hex()


def body_delivery(r):
    f = {"req_hash": r.raw(32).hex()}
    f["cred"] = read_cred_field(r)
    m = r.get("H")
    # The smallest sealed plaintext: no key, the interval, one rule of a
    # one-byte filter: 1 + 4 + 2 + 4 bytes.
    if m < SEALBYTES + 27:   # k, interval, refresh window, one rule
        raise Layout("sealed length")
    f["sealed"] = r.raw(m).hex()
    return f


def body_refusal(r):
    return {"req_hash": r.raw(32).hex(), "reason": r.get("B")}


def body_announce(r):
    scope, epoch = r.get("BI")
    return {"scope": scope, "epoch": epoch}


def body_summary(r):
    interval, boot, number, part, parts, n = r.get("IIIBBH")
    if boot == 0 or number == 0 or parts == 0 or part >= parts:
        raise Layout("boot/number/part/parts")
    entries = []
    for _ in range(n):
        run = r.get("I")
        topic = r.raw(r.get("H")).decode("utf-8")
        first, last = r.get("II")
        if first == 0 or first > last:
            raise Layout("first/last")
        digests = [r.raw(8).hex() for _ in range(last - first + 1)]
        entries.append({"run": run, "topic": topic, "first": first, "last": last,
                        "digests": digests})
    # History: earlier summaries' ranges, part 0 only, newest first, <= 6 back.
    start, h = r.pos, r.get("B")
    if h > 6 or (part != 0 and h != 0):
        raise Layout("history count")
    history, prev = [], number
    for _ in range(h):
        hn, m = r.get("IH")
        if hn == 0 or hn >= prev or number - hn > 6:
            raise Layout("history number")
        prev, ranges = hn, []
        for _ in range(m):
            run = r.get("I")
            tl = r.get("H")
            if tl == 0:
                raise Layout("history topic")
            topic = r.raw(tl).decode("utf-8")
            first, last = r.get("II")
            if first == 0 or first > last:
                raise Layout("history first/last")
            ranges.append({"run": run, "topic": topic, "first": first, "last": last})
        history.append({"number": hn, "ranges": ranges})
    if r.pos - start > 4096:
        raise Layout("history bytes")
    return {"interval_ms": interval, "boot": boot, "number": number, "part": part,
            "parts": parts, "entries": entries, "history": history}


CTL_BODIES = {1: body_request, 2: body_delivery, 3: body_refusal, 4: body_announce,
              5: body_summary}


def decode_control(msg, topic, signer_pk):
    """SPEC 11.2, checks in its order: size, version, type, layout, signature.
    signer_pk None: a REQUEST verified with the key it carries.
    Returns (outcome, fields): "OK" or one of OUTCOMES."""
    if len(msg) < CTL_HEAD.size + CTL_SIG:
        return "MALFORMED", None
    if len(msg) > (65535 if msg[1] in (2, 5) else 2048):
        return "MALFORMED", None
    version, type_, sender, time_ms = CTL_HEAD.unpack_from(msg)
    if version != 1:
        return "VERSION", None
    if type_ not in CTL_BODIES:
        return "MALFORMED", None
    r = Reader(msg[CTL_HEAD.size:-CTL_SIG])
    try:
        fields = CTL_BODIES[type_](r)
    except (Layout, UnicodeDecodeError):
        return "MALFORMED", None
    if r.pos != len(r.data):
        return "MALFORMED", None
    fields.update({"type": CTL_TYPES[type_], "sender": sender, "time_ms": time_ms})
    if signer_pk is None:
        if type_ != 1:
            return "AUTH", None
        signer_pk = bytes.fromhex(fields["requester_sign_pk"])
    tb = topic.encode("utf-8")
    signed = b"mqtt-e2e/v1/ctl\0" + struct.pack(">H", len(tb)) + tb + msg[:-CTL_SIG]
    try:
        if not 1 <= len(tb) <= 256:
            raise CryptoError("topic length")
        nb.crypto_sign_open(msg[-CTL_SIG:] + signed, signer_pk)
    except CryptoError:
        return "AUTH", None
    return "OK", fields


def open_keys(sealed, eph_pk, eph_sk):
    """A delivery's sealed plaintext: (plaintext, [key dicts], interval, [rules],
    (refresh_from_ms, refresh_by_ms)). Layout errors raise Layout."""
    plain = nb.crypto_box_seal_open(sealed, eph_pk, eph_sk)
    r = Reader(plain)
    k = r.get("B")
    if k > 32:
        raise Layout("more than 32 keys")
    keys = []
    for _ in range(k):
        scope, epoch, not_after, flags, key = KEY_REC.unpack(r.raw(KEY_REC.size))
        if flags & ~3:   # bit 0 signed scope, bit 1 NEXT (SPEC 11.2)
            raise Layout("unknown key flags")
        keys.append({"scope": scope, "epoch": epoch, "not_after_ms": not_after,
                     "flags": flags, "key": key.hex()})
    interval, refresh_from, refresh_by, nrules = r.get("IQQH")
    if nrules == 0:
        raise Layout("a map of no rule")
    rules = []
    for _ in range(nrules):
        scope = r.get("B")
        flt = r.raw(r.get("H"))
        if not mqtt_filter_ok(flt):
            raise Layout("invalid topic filter")
        rules.append({"scope": scope, "filter": flt.decode("utf-8")})
    if r.pos != len(plain):
        raise Layout("trailing bytes")
    return plain, keys, interval, rules, (refresh_from, refresh_by)


def sender_id(sign_pk):
    d = hashlib.new("blake2b", b"mqtt-e2e/v1/sender-id" + sign_pk, digest_size=32).digest()
    return struct.unpack(">I", d[:4])[0]


def check_control_item(item, kind, requests, delivered, f):
    where = "control %s %r" % (kind, item["name"])
    msg = bytes.fromhex(item["message"])
    signer = bytes.fromhex(item["signer"])
    f.expect(nb.crypto_sign_seed_keypair(bytes.fromhex(item["seed"]))[0] == signer, where,
             "seed does not give signer")
    outcome, got = decode_control(msg, item["topic"], None if kind == "REQUEST" else signer)
    if not f.expect(outcome == "OK", where, "decoder says %s" % outcome):
        return
    for k, v in got.items():
        if k == "entries":
            want = [{x: e[x] for x in ("run", "topic", "first", "last", "digests")}
                    for e in item["entries"]]
            f.expect(v == want, where, "entries differ")
        else:
            f.expect(item.get(k) == v, where, "field %s: decoded %r, file %r" % (k, v, item.get(k)))
    f.expect(got["type"] == kind, where, "type")
    if kind == "REQUEST":
        f.expect(got["requester_sign_pk"] == item["signer"], where, "signed by another key")
        f.expect(item["topic"] == "e2e/control", where, "requests go to the control topic")
        f.expect(hashlib.new("blake2b", msg, digest_size=32).hexdigest() == item["req_hash"],
                 where, "req_hash")
        f.expect(nb.crypto_scalarmult_base(bytes.fromhex(item["eph_sk"])).hex() == item["eph_pk"],
                 where, "eph_sk does not give eph_pk")
        return
    f.expect(got["sender"] == sender_id(signer), where, "sender is not the signer's id")
    if kind in ("DELIVERY", "REFUSAL"):
        req = requests.get(item["request"])
        if not f.expect(req is not None, where, "unknown request"):
            return
        f.expect(item["req_hash"] == req["req_hash"], where, "answers another request")
        f.expect(item["topic"] == req["reply_topic"], where, "not on the reply topic")
        f.expect(got["sender"] == req["sender"], where, "answered by another sender than asked")
    if kind == "REFUSAL":
        f.expect(1 <= got["reason"] <= 5, where, "reason")
    elif kind == "DELIVERY":
        f.expect((item["eph_pk"], item["eph_sk"]) == (req["eph_pk"], req["eph_sk"]), where,
                 "ephemeral key is not the request's")
        sealed = bytes.fromhex(got["sealed"])
        try:
            plain, keys, interval, rules, refresh = open_keys(sealed, bytes.fromhex(req["eph_pk"]),
                                                     bytes.fromhex(req["eph_sk"]))
        except (CryptoError, ValueError, Layout) as e:
            f.expect(False, where, "sealed box: %s" % e)
            return
        f.expect(plain.hex() == item["plain"] and keys == item["keys"], where, "keys differ")
        f.expect(interval == item["summary_interval_ms"] and rules == item["rules"], where,
                 "map differs")
        f.expect(list(refresh) == item["refresh"], where, "refresh window differs")
        # A NEXT key's time field is when it becomes current: later than
        # every other key of its scope's (SPEC 11.5).
        f.expect(all(k["epoch"] > o["epoch"] for k in keys if k["flags"] & 2
                     for o in keys if o["scope"] == k["scope"] and not o["flags"] & 2), where,
                 "a NEXT key is not the newest epoch of its scope")
        wanted = {w["scope"] for w in req["want"]}
        f.expect(not wanted or all(k["scope"] in wanted for k in keys), where,
                 "keys for scopes the request did not ask for")
        for k in keys:
            seen = delivered.setdefault((got["sender"], k["scope"], k["epoch"]), k["key"])
            f.expect(seen == k["key"], where, "two keys for (%d, %d)" % (k["scope"], k["epoch"]))
        f.expect(sealed[:32] == nb.crypto_scalarmult_base(bytes.fromhex(item["box_sk"])), where,
                 "box_sk does not give the sealed box's ephemeral key")
    elif kind in ("ANNOUNCE", "SUMMARY"):
        f.expect(item["topic"].endswith("/%08x" % got["sender"]), where, "not on C/<sender id>")
    if kind == "SUMMARY":
        for e in item["entries"]:
            envs = [bytes.fromhex(x) for x in e["envelopes"]]
            f.expect(len(envs) == e["last"] - e["first"] + 1, where, "one envelope per seq")
            for i, env in enumerate(envs):
                h = unpack_header(env)
                f.expect((h["suite"], h["sender"], h["run"], h["seq"])
                         == (1, got["sender"], e["run"], e["first"] + i), where,
                         "envelope %d of %s: header" % (i, e["topic"]))
            ds = [hashlib.new("blake2b", env, digest_size=8).hexdigest() for env in envs]
            f.expect(ds == e["digests"], where, "per-envelope digests d_s of %s" % e["topic"])
        f.expect([{k: e[k] for k in ("run", "topic", "first", "last", "digests")}
                  for e in item["entries"]] == got["entries"], where, "decoded entries")
        f.expect(got["history"] == item["history"], where, "decoded history")
        f.expect((got["boot"], got["number"], got["part"], got["parts"], got["interval_ms"])
                 == (item["boot"], item["number"], item["part"], item["parts"],
                     item["interval_ms"]), where, "summary head")


def check_control(doc, f):
    n = 0
    requests = {r["name"]: r for r in doc["requests"]}
    delivered = {}                    # (sender, scope, epoch) -> key, across deliveries
    kinds = (("requests", "REQUEST"), ("deliveries", "DELIVERY"), ("refusals", "REFUSAL"),
             ("announces", "ANNOUNCE"), ("summaries", "SUMMARY"))
    for key, kind in kinds:
        f.expect(len(doc[key]) > 0, "control", "no %s" % key)
        for item in doc[key]:
            check_control_item(item, kind, requests, delivered, f)
            n += 1
    for q in doc["negative"]:
        where = "control negative %r" % q["name"]
        signer = bytes.fromhex(q["signer"]) if q["signer"] is not None else None
        outcome, got = decode_control(bytes.fromhex(q["message"]), q["topic"], signer)
        # An authentic answer still has to answer the outstanding request, to
        # the sender asked (11.4), and a delivery must open to a valid layout.
        if outcome == "OK" and q["request"] is not None:
            req = requests[q["request"]]
            if got["req_hash"] != req["req_hash"] or got["sender"] != req["sender"]:
                outcome = "AUTH"
            elif got["type"] == "DELIVERY":
                try:
                    open_keys(bytes.fromhex(got["sealed"]), bytes.fromhex(req["eph_pk"]),
                              bytes.fromhex(req["eph_sk"]))
                except CryptoError:
                    outcome = "AUTH"
                except (Layout, UnicodeDecodeError, struct.error):
                    outcome = "MALFORMED"
        f.expect(q["expect"] in OUTCOMES, where, "unexpected outcome class %s" % q["expect"])
        f.expect(outcome == q["expect"], where, "expected %s, decoder says %s"
                 % (q["expect"], outcome))
        n += 1
    names = [x["name"] for key, _ in kinds for x in doc[key]] + [q["name"] for q in doc["negative"]]
    f.expect(len(names) == len(set(names)), "control", "duplicate names")
    return n


# ---------------------------------------------------------------- signed (SPEC 3.4)

def signed_receive(keys, flagged, signers, maps, topic, env):
    """SPEC 5.4 with both suites, written out separately: parse (minimum 40
    bytes for suite 1, 104 for suite 2), scope by the sender's map, key,
    signed-scope rule, AEAD, then the signature."""
    if len(env) < 1 or env[0] not in (1, 2) or len(env) < (104 if env[0] == 2 else 40):
        return "MALFORMED", None
    h = unpack_header(env)
    if not (h["run"] and h["counter"] and h["seq"]):
        return "MALFORMED", None
    kid = (h["sender"], h["scope"], h["epoch"])
    if h["sender"] not in maps:
        return "UNKNOWN_KEY", None
    if topic_scope(maps[h["sender"]], topic) != h["scope"]:
        return "FORGED", None
    if kid not in keys:
        return "UNKNOWN_KEY", None
    if kid in flagged and h["suite"] != 2:
        return "FORGED", None
    body = env[:-64] if h["suite"] == 2 else env
    try:
        pt = nb.crypto_aead_xchacha20poly1305_ietf_decrypt(body[24:], body[:24] + topic,
                                                          body[:24], keys[kid])
    except CryptoError:
        return "FORGED", None
    if h["suite"] == 2:
        pk = signers.get(h["sender"])
        msg = hashlib.blake2b(b"mqtt-e2e/v1/sig\x00" + struct.pack(">H", len(topic)) + topic
                              + body, digest_size=64).digest()
        try:
            if pk is None:
                raise CryptoError("no signer")
            nb.crypto_sign_open(env[-64:] + msg, pk)
        except CryptoError:
            return "FORGED", None
    return "OK", pt


def check_signed(doc, f):
    n = 0
    for p in doc["positive"]:
        where = "signed/" + p["name"]
        h = p["header"]
        kid = (h["sender"], h["scope"], h["epoch"])
        keys = {kid: bytes.fromhex(p["key"])}
        pk = bytes.fromhex(p["signer"]["sign_pk"])
        f.expect(nb.crypto_sign_seed_keypair(bytes.fromhex(p["signer"]["seed"]))[0] == pk,
                 where, "seed does not give sign_pk")
        f.expect(p["signer"]["sender"] == sender_id(pk) == h["sender"], where,
                 "sender id is not the one SPEC 3.3 derives from sign_pk")
        signers = {p["signer"]["sender"]: pk}
        tb = bytes.fromhex(p["topic_hex"])
        env = bytes.fromhex(p["envelope"])
        digest = hashlib.blake2b(b"mqtt-e2e/v1/sig\x00" + struct.pack(">H", len(tb)) + tb
                                 + env[:-64], digest_size=64).digest()
        f.expect(digest.hex() == p["digest"] and env[-64:].hex() == p["signature"], where,
                 "digest or signature field")
        v, pt = signed_receive(keys, {kid}, signers, maps_by_sender(p["maps"]), tb, env)
        f.expect(v == "OK" and pt is not None and pt.hex() == p["plaintext"], where,
                 "got %s" % v)
        n += 1
    for q in doc["negative"]:
        keys = {(k["sender"], k["scope"], k["epoch"]): bytes.fromhex(k["key"]) for k in q["keys"]}
        flagged = {(k["sender"], k["scope"], k["epoch"]) for k in q["keys"]
                   if k.get("flags", 0) & 1}
        signers = {s["sender"]: bytes.fromhex(s["sign_pk"]) for s in q["signers"]}
        for s_ in q["signers"]:
            f.expect(sender_id(bytes.fromhex(s_["sign_pk"])) == s_["sender"],
                     "signed/" + q["name"], "signer id does not match its key")
        v, _ = signed_receive(keys, flagged, signers, maps_by_sender(q["maps"]),
                              bytes.fromhex(q["topic_hex"]), bytes.fromhex(q["envelope"]))
        f.expect(v == q["verdict"], "signed/" + q["name"], "got %s, want %s" % (v, q["verdict"]))
        n += 1
    return n


# ---------------------------------------------------------------- sumcheck (SPEC 11.6)

class SummaryReceiver:
    """SPEC 11.6's receiver, written out with dicts and sets: what was accepted
    waits in `pending` until a complete summary covers it; what a checked
    entry listed but had not arrived waits in `open`."""

    def __init__(self, window, open_ms):
        self.window, self.open_ms = window, open_ms
        self.pending = {}          # (run, topic, seq) -> (d_s, complete summaries arrived before)
        self.open = {}             # (run, topic, seq) -> (d_s, since)
        self.covered = {}          # (run, topic) -> set of seqs checked entries listed
        self.top = {}              # (run, topic) -> highest seq accepted
        self.held = {}             # (run, topic, seq) -> [arrived before, summary's d_s or None]
        self.arrived = 0           # complete summaries arrived
        self.missed_at = 0
        self.last = None           # (boot, number, parts, next part) of the accepted part 0
        self.newest_time = -1
        self.hist_gap = None       # summary numbers lost just before this part 0
        self.reports = []

    def report(self, kind, first, last, count):
        self.reports.append((kind, first, last, count))

    def accept(self, run, topic, seq, env, at):
        d = hashlib.blake2b(env, digest_size=8).digest()
        key = (run, topic, seq)
        self.top[(run, topic)] = max(self.top.get((run, topic), 0), seq)
        if key in self.open and at - self.open[key][1] >= self.open_ms:
            del self.open[key]               # open too long: closed
        if key in self.open:
            want, _ = self.open.pop(key)
            self.report("LATE" if want == d else "FORGED", seq, seq, 1)
        elif seq in self.covered.get((run, topic), ()):
            self.report("UNCHECKED", seq, seq, 1)
        else:
            self.pending[key] = (d, self.arrived)

    def verify(self, run, topic, seq, env, at):
        """SPEC 11.5: what the summaries say of a held envelope under a retired key."""
        d = hashlib.blake2b(env, digest_size=8).digest()
        key = (run, topic, seq)
        if key in self.held:
            sd = self.held[key][1]
            return "WAIT" if sd is None else ("OK" if sd == d else "FORGED")
        if key in self.open and at - self.open[key][1] < self.open_ms:
            if self.open[key][0] != d:
                return "FORGED"
            del self.open[key]
            self.report("LATE", seq, seq, 1)
            return "OK"
        if seq in self.covered.get((run, topic), ()):
            return "FORGED"
        return "WAIT"

    def hold(self, run, topic, seq, env, at):
        v = self.verify(run, topic, seq, env, at)
        if v == "WAIT" and (run, topic, seq) not in self.held:
            self.held[(run, topic, seq)] = [self.arrived, None]
        return v

    def missing_summary(self):
        self.missed_at = self.arrived + 1

    def part(self, m, at):
        """m: a decoded SUMMARY. The order rules, then the check."""
        boot, number, part, parts = m["boot"], m["number"], m["part"], m["parts"]
        if part == 0:
            if self.last and self.last[0] == boot and number <= self.last[1]:
                self.report("IGNORED", 0, 0, 1)
                return
            if self.last and self.last[0] != boot:
                if m["time_ms"] <= self.newest_time:
                    self.report("IGNORED", 0, 0, 1)
                    return
                if self.last[3] < self.last[2]:
                    self.report("STALLED_PARTS", self.last[3], self.last[2] - 1, self.last[1])
                self.last = None
                self.missing_summary()
            elif self.last is None and number > 1:
                self.missing_summary()
            if self.last and self.last[3] < self.last[2]:
                self.report("STALLED_PARTS", self.last[3], self.last[2] - 1, self.last[1])
                self.missing_summary()
            if self.last and number > self.last[1] + 1:
                self.report("STALLED", self.last[1] + 1, number - 1, number - self.last[1] - 1)
                self.missing_summary()
                # What the lost ones listed may come in this part 0's history.
                self.hist_gap = (self.last[1] + 1, number - 1)
        else:
            if (self.last is None or (self.last[0], self.last[1], self.last[2])
                    != (boot, number, parts) or part < self.last[3]):
                self.report("IGNORED", 0, 0, 1)
                return
            if part > self.last[3]:
                self.report("STALLED_PARTS", self.last[3], part - 1, number)
                self.missing_summary()
        self.last = (boot, number, parts, part + 1)
        self.newest_time = max(self.newest_time, m["time_ms"])
        index = None
        if part + 1 == parts:
            self.arrived += 1
            index = self.arrived
        gap, self.hist_gap = (self.hist_gap if part == 0 else None), None
        for rec in (m["history"] if gap else []):
            if not gap[0] <= rec["number"] <= gap[1]:
                continue
            for x in rec["ranges"]:
                lost = [s for s in range(x["first"], x["last"] + 1)
                        if (x["run"], x["topic"], s) not in self.pending and
                        (x["run"], x["topic"], s) not in self.held and
                        s not in self.covered.get((x["run"], x["topic"]), ())]
                if lost:
                    self.report("HIST_LOST", lost[0], lost[-1], len(lost))
        # Open seqs that can no longer come, or waited too long.
        for key, (_, since) in list(self.open.items()):
            if at - since >= self.open_ms or \
                    self.top.get(key[:2], 0) - key[2] >= self.window:
                del self.open[key]
        for e in m["entries"]:
            verdicts = []
            for i, s in enumerate(range(e["first"], e["last"] + 1)):
                key = (e["run"], e["topic"], s)
                want = bytes.fromhex(e["digests"][i])
                if key in self.held:
                    self.held[key][1] = want     # counts as arrived; the holder judges it
                    verdicts.append("ok")
                elif key in self.pending:
                    got, _ = self.pending.pop(key)
                    verdicts.append("ok" if got == want else "forged")
                    if got != want:
                        self.report("FORGED", s, s, 1)
                elif key not in self.open and s not in self.covered.get(key[:2], ()):
                    self.open[key] = (want, at)
                    verdicts.append("missing")
            self.covered.setdefault((e["run"], e["topic"]), set()).update(
                range(e["first"], e["last"] + 1))
            if "missing" in verdicts:
                self.report("UNCONFIRMED", e["first"], e["last"], verdicts.count("missing"))
            if "missing" not in verdicts and "forged" not in verdicts:
                self.report("VERIFIED", e["first"], e["last"], 0)
        if index is None:
            return
        for key, (seen, sd) in list(self.held.items()):
            # Never unsummarized: the holder counts summaries itself.
            if seen + (2 if sd is None else 4) <= index:
                del self.held[key]
        unchecked = []
        for key, (_, seen) in list(self.pending.items()):
            if seen + 2 > index:
                continue
            del self.pending[key]
            if self.missed_at > seen:
                unchecked.append(key[2])
            else:
                self.report("UNSUMMARIZED", key[2], key[2], 1)
        if unchecked:
            self.report("UNCHECKED", min(unchecked), max(unchecked), len(unchecked))


def check_sumcheck(doc, f):
    n = 0
    signer = bytes.fromhex(doc["sender"]["sign_pk"])
    f.expect(nb.crypto_sign_seed_keypair(bytes.fromhex(doc["sender"]["seed"]))[0] == signer,
             "sumcheck", "seed does not give sign_pk")
    f.expect(sender_id(signer) == doc["sender"]["id"], "sumcheck", "sender id")
    f.expect(doc["control_topic"].endswith("/%08x" % doc["sender"]["id"]), "sumcheck",
             "not C/<sender id>")
    for c in doc["cases"]:
        where = "sumcheck %r" % c["name"]
        rx = SummaryReceiver(c["window"], c["open_ms"])
        for ev in c["events"]:
            if "accept" in ev:
                a = ev["accept"]
                env = bytes.fromhex(a["envelope"])
                h = unpack_header(env)
                f.expect((h["sender"], h["run"], h["seq"]) == (doc["sender"]["id"], a["run"],
                                                               a["seq"]), where, "header")
                rx.accept(a["run"], a["topic"], a["seq"], env, ev["at"])
            elif "hold" in ev or "verify" in ev:
                a = ev.get("hold") or ev["verify"]
                env = bytes.fromhex(a["envelope"])
                fn = rx.hold if "hold" in ev else rx.verify
                rx.report("HELD_" + fn(a["run"], a["topic"], a["seq"], env, ev["at"]),
                          a["seq"], a["seq"], 1)
            else:
                outcome, m = decode_control(bytes.fromhex(ev["summary"]), doc["control_topic"],
                                            signer)
                if not f.expect(outcome == "OK" and m["type"] == "SUMMARY", where,
                                "summary: %s" % outcome):
                    break
                rx.part(m, ev["at"])
        want = sorted((r["kind"], r["first"], r["last"], r["count"]) for r in c["reports"])
        f.expect(sorted(rx.reports) == want, where, "reports %r, expected %r"
                 % (sorted(rx.reports), want))
        n += 1
    return n


# ---------------------------------------------------------------- main

def check_state_file(doc, f):
    """state.json: decoded by check_state.py (SPEC 4.1-4.2, 5.1, 5.8, 6.2, 6.3)."""
    sys.path.insert(0, HERE)
    import check_state                                # noqa: E402
    return check_state.check_state(doc, f)


def check_tickets_file(doc, f):
    """tickets.json: decoded by check_ticket.py (SPEC 14)."""
    sys.path.insert(0, HERE)
    import check_ticket                               # noqa: E402
    return check_ticket.check_tickets(doc, f)


CHECKS = (("envelope.json", check_envelope), ("window.json", check_window),
          ("tx.json", check_tx), ("identity.json", check_identity),
          ("control.json", check_control), ("signed.json", check_signed),
          ("state.json", check_state_file),
          ("sumcheck.json", check_sumcheck),
          ("cred.json", check_cred),
          ("tickets.json", check_tickets_file))


def main(argv):
    vdir = argv[1] if len(argv) > 1 else HERE
    f = Failures()
    stored = {}
    for name, fn in CHECKS:
        path = os.path.join(vdir, name)
        try:
            with open(path, "rb") as fh:
                stored[name] = fh.read()
            doc = json.loads(stored[name].decode("utf-8"))
        except (OSError, ValueError) as e:
            f.items.append("%s: cannot load: %s" % (path, e))
            continue
        before = len(f.items)
        try:
            count = fn(doc, f)
        except (KeyError, TypeError, ValueError) as e:
            f.items.append("%s: bad structure: %r" % (name, e))
            continue
        if len(f.items) == before:
            print("%s: %d ok" % (name, count))

    # The generator must reproduce the stored files exactly.
    sys.path.insert(0, HERE)
    import gen                                        # noqa: E402
    generated = gen.render_all()
    for name, text in generated.items():
        if name in stored and stored[name] != text.encode("utf-8"):
            f.items.append("%s: differs from gen.py output (re-run gen.py?)" % name)
    if set(generated) != {name for name, _ in CHECKS}:
        f.items.append("gen.py and check.py disagree on the set of files")

    for item in f.items[:50]:
        print("FAIL " + item, file=sys.stderr)
    if len(f.items) > 50:
        print("FAIL ... and %d more" % (len(f.items) - 50), file=sys.stderr)
    if f.items:
        print("%d failure(s)" % len(f.items), file=sys.stderr)
        return 1
    print("generator reproduces all %d files byte for byte" % len(CHECKS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
