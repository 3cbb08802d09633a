#!/usr/bin/python3
"""Reference generator of the mqtt-e2e v1 test vectors (protocol/SPEC.md section 12).

This is an independent implementation of the wire format in Python: it shares
no code with libe2e, uses libsodium only through PyNaCl's one-shot AEAD (libe2e
has its own split-AAD construction), Ed25519 and crypto_box (the sealed box of
control deliveries is built here from crypto_box with a fixed ephemeral key,
so it is deterministic), and writes

    envelope.json  window.json  tx.json  identity.json  control.json  signed.json
    state.json (built by gen_state.py)
    sumcheck.json
    tickets.json (built by gen_ticket.py)

into the directory given as argv[1] (default: the directory of this script).
Every input is a constant, so running it twice gives byte-identical files;
check.py relies on that and re-runs render_all() against the stored files.

Usage: /usr/bin/python3 gen.py [OUTDIR]
"""

import base64
import hashlib
import json
import os
import sys

from nacl import bindings as nb
from nacl.exceptions import CryptoError

SUITE_V1 = 0x01
HEADER_BYTES = 24
TAG_BYTES = 16
OVERHEAD = HEADER_BYTES + TAG_BYTES
COUNTER_MAX = (1 << 48) - 1
SEQ_MAX = (1 << 32) - 1

# Verdict names as in SPEC.md section 5.5 and enum e2e_verdict.
OK, GAP, LATE = "OK", "GAP", "LATE"
DUPLICATE, TOO_OLD = "DUPLICATE", "TOO_OLD"
FORGED, UNKNOWN_KEY, MALFORMED = "FORGED", "UNKNOWN_KEY", "MALFORMED"

HEADER_FIELDS = ("suite", "scope", "epoch", "sender", "run", "counter", "seq")


# --------------------------------------------------------------------------
# Envelope (SPEC section 3)
# --------------------------------------------------------------------------

def header_bytes(suite, scope, epoch, sender, run, counter, seq):
    """Serialise a header. No validation on purpose: negative vectors need
    headers a conforming sender would never produce (suite 3, run 0, ...)."""
    return (bytes([suite, scope])
            + epoch.to_bytes(4, "big")
            + sender.to_bytes(4, "big")
            + run.to_bytes(4, "big")
            + counter.to_bytes(6, "big")
            + seq.to_bytes(4, "big"))


def seal(key, hdr, topic, plaintext):
    """hdr is a dict with HEADER_FIELDS; topic is bytes."""
    h = header_bytes(**hdr)
    # The header is the nonce and the start of the AAD; the topic follows it.
    return h + nb.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, h + topic, h, key)


def parse_header(env):
    """Return (header dict, None) or (None, MALFORMED). Structure only."""
    if len(env) < OVERHEAD:
        return None, MALFORMED
    hdr = {
        "suite": env[0],
        "scope": env[1],
        "epoch": int.from_bytes(env[2:6], "big"),
        "sender": int.from_bytes(env[6:10], "big"),
        "run": int.from_bytes(env[10:14], "big"),
        "counter": int.from_bytes(env[14:20], "big"),
        "seq": int.from_bytes(env[20:24], "big"),
    }
    if hdr["suite"] != SUITE_V1 or hdr["run"] == 0 or hdr["counter"] == 0 or hdr["seq"] == 0:
        return None, MALFORMED
    return hdr, None


# --------------------------------------------------------------------------
# Receiver window (SPEC section 5.3), RFC 6479 ring exactly as libe2e keeps it
# --------------------------------------------------------------------------

class Window:
    """Ring bitmap of size+64 bits. Kept bit-for-bit like the C window so the
    vectors exercise word clearing and wrap-around, not just a set model
    (check.py uses a set model: the two must agree)."""

    def __init__(self, size):
        if size % 64 or not 64 <= size <= 1 << 20:
            raise ValueError("window size must be a multiple of 64 in [64, 2^20]")
        self.size = size
        self.nwords = size // 64 + 1
        self.bits = [0] * self.nwords
        self.top = 0
        self.base = 0
        self.received = 0

    def _bit(self, seq):
        return (self.bits[(seq >> 6) % self.nwords] >> (seq & 63)) & 1

    def check(self, seq):
        """(verdict, gap) without changing state."""
        if self.top == 0:
            return OK, 0
        if seq == self.top + 1:
            return OK, 0
        if seq > self.top + 1:
            return GAP, seq - self.top - 1
        if self.top - seq >= self.size:
            return TOO_OLD, 0
        if self._bit(seq):
            return DUPLICATE, 0
        return LATE, 0

    def update(self, seq):
        """Record an authentic seq that check() classified OK, GAP or LATE."""
        if self.top == 0:
            self.top = self.base = seq
        elif seq > self.top:
            first, last = (self.top >> 6) + 1, seq >> 6
            if last - first + 1 >= self.nwords:
                self.bits = [0] * self.nwords
            else:
                for block in range(first, last + 1):
                    self.bits[block % self.nwords] = 0
            self.top = seq
        elif seq < self.base:
            self.base = seq
        self.bits[(seq >> 6) % self.nwords] |= 1 << (seq & 63)
        self.received += 1

    def losses(self):
        """(pending, lost): holes that may still arrive vs. holes behind the window."""
        if self.top == 0:
            return 0, 0
        lo = max(self.base, self.top - self.size + 1)
        pending = sum(1 for s in range(lo, self.top + 1) if not self._bit(s))
        lost = (self.top - self.base + 1) - self.received - pending
        return pending, lost

    def final(self):
        pending, lost = self.losses()
        return {"top": self.top, "base": self.base, "received": self.received,
                "pending": pending, "lost": lost}


def filter_valid(f):
    """MQTT topic filter (bytes): 1..65535 bytes, no NUL, '+' and '#' only as
    whole levels, '#' only last."""
    if not 1 <= len(f) <= 65535 or b"\x00" in f:
        return False
    levels = f.split(b"/")
    for i, lv in enumerate(levels):
        if b"+" in lv and lv != b"+":
            return False
        if b"#" in lv and (lv != b"#" or i != len(levels) - 1):
            return False
    return True


def topic_matches(f, topic):
    """MQTT 3.1.1 4.7: level by level; '#' also matches the parent level;
    a topic starting with '$' is not matched by a leading wildcard."""
    if topic[:1] == b"$" and f[:1] in (b"+", b"#"):
        return False
    fl, tl = f.split(b"/"), topic.split(b"/")
    for i, lv in enumerate(fl):
        if lv == b"#":
            return True
        if i >= len(tl):
            return False
        if lv != b"+" and lv != tl[i]:
            return False
    return len(fl) == len(tl)


def resolve_scope(rules, topic):
    """The scope of the first rule whose filter matches topic (bytes), or None.
    rules: [{"scope", "filter"}] in match order (SPEC 5.4 step 2)."""
    if not topic or b"+" in topic or b"#" in topic or b"\x00" in topic:
        return None
    for r in rules:
        if topic_matches(r["filter"].encode("utf-8"), topic):
            return r["scope"]
    return None


class Receiver:
    """Minimal receiver: parse -> scope of the topic -> key lookup -> stream
    lookup -> window check -> AEAD -> window update. Streams are keyed by the
    exact topic bytes here (no LRU, no hash): the vectors never need more
    than a few streams."""

    def __init__(self, keys, maps, window=1024):
        self.keys = dict(keys)          # (sender, scope, epoch) -> key
        self.maps = dict(maps)          # sender -> rules
        self.window = window
        self.streams = {}               # (sender, run, topic) -> Window

    def receive(self, topic, env):
        """Return (verdict, gap, plaintext or None)."""
        hdr, bad = parse_header(env)
        if bad:
            return bad, 0, None
        rules = self.maps.get(hdr["sender"])
        if rules is None:
            return UNKNOWN_KEY, 0, None
        if resolve_scope(rules, topic) != hdr["scope"]:
            return FORGED, 0, None      # another scope's topic: before any crypto
        key = self.keys.get((hdr["sender"], hdr["scope"], hdr["epoch"]))
        if key is None:
            return UNKNOWN_KEY, 0, None
        sid = (hdr["sender"], hdr["run"], topic)
        win = self.streams.get(sid) or Window(self.window)
        verdict, gap = win.check(hdr["seq"])
        if verdict in (DUPLICATE, TOO_OLD):
            return verdict, 0, None     # decided without decrypting
        head = bytes(env[:HEADER_BYTES])
        try:
            pt = nb.crypto_aead_xchacha20poly1305_ietf_decrypt(
                bytes(env[HEADER_BYTES:]), head + topic, head, key)
        except CryptoError:
            return FORGED, 0, None      # window untouched
        win.update(hdr["seq"])
        self.streams[sid] = win
        return verdict, gap, pt


# --------------------------------------------------------------------------
# Deterministic inputs
# --------------------------------------------------------------------------

def pattern(n, mul=7, add=3):
    """n bytes of a fixed pattern covering every byte value."""
    return bytes((i * mul + add) & 0xFF for i in range(n))


KEY_A = bytes(range(32))
KEY_B = bytes(range(0xFF, 0xDF, -1))
KEY_C = bytes(range(0x40, 0x60))
KEY_WRONG = bytes(range(1, 33))           # differs from KEY_A in every byte

SENDER_A = 0x1A2B3C4D
RUN_A = 0x5EED0001


def hdr(scope=3, epoch=7, sender=SENDER_A, run=RUN_A, counter=1, seq=1, suite=SUITE_V1):
    return {"suite": suite, "scope": scope, "epoch": epoch, "sender": sender,
            "run": run, "counter": counter, "seq": seq}


def key_entry(h, key):
    return {"sender": h["sender"], "scope": h["scope"], "epoch": h["epoch"], "key": key.hex()}


def rule(scope, filter_):
    return {"scope": scope, "filter": filter_}


def sender_map(sender, rules):
    """A sender's topic map as delivered (SPEC 11.2), rules in match order."""
    return {"sender": sender, "rules": rules}


def maps_of(items):
    return {m["sender"]: m["rules"] for m in items}


def flip(env, byte, bit=0):
    out = bytearray(env)
    out[byte] ^= 1 << bit
    return bytes(out)


# --------------------------------------------------------------------------
# envelope.json
# --------------------------------------------------------------------------

def build_envelope():
    positive = []

    def pos(name, key, h, topic, pt):
        tb = topic.encode("utf-8")
        # The sender's map: another scope first (not matching), then its own;
        # '$'-topics need a rule of their own ('#' does not match them).
        rules = [rule((h["scope"] + 1) % 256, "other/#"), rule(h["scope"], "#")]
        if topic.startswith("$"):
            rules.append(rule(h["scope"], topic.split("/")[0] + "/#"))
        positive.append({
            "name": name, "key": key.hex(), "header": h, "topic": topic,
            "topic_hex": tb.hex(), "plaintext": pt.hex(),
            "maps": [sender_map(h["sender"], rules)],
            "envelope": seal(key, h, tb, pt).hex(),
        })

    pos("empty-plaintext", KEY_A, hdr(counter=1, seq=1), "plant/line1/temp", b"")
    pos("one-byte", KEY_A, hdr(counter=2, seq=2), "plant/line1/temp", b"\x2a")
    pos("64-bytes", KEY_A, hdr(counter=3, seq=1), "plant/line2/pressure", pattern(64))
    pos("1-kib", KEY_A, hdr(counter=4, seq=1), "plant/line3/blob", pattern(1024, 13, 5))
    pos("max-field-values", KEY_B,
        hdr(scope=255, epoch=0xFFFFFFFF, sender=0xFFFFFFFF, run=0xFFFFFFFF,
            counter=COUNTER_MAX, seq=SEQ_MAX),
        "max", b"{\"v\":1}")
    # Zero is legal for scope, epoch and sender (only run/counter/seq must be > 0).
    pos("min-field-values", KEY_C,
        hdr(scope=0, epoch=0, sender=0, run=1, counter=1, seq=1), "m", b"min")
    pos("utf8-multibyte-topic", KEY_A, hdr(counter=5, seq=1),
        "usine/température/Δp/温度/\U0001F321", "21.5 °C".encode("utf-8"))
    pos("long-topic-1000", KEY_A, hdr(counter=6, seq=1),
        "/".join(["level%03d" % i for i in range(112)])[:1000], pattern(32))
    pos("topic-levels", KEY_A, hdr(counter=7, seq=9),
        "/site/a//b/c/d/e/", b"levels, leading/trailing '/' and an empty level")
    pos("dollar-topic", KEY_A, hdr(counter=8, seq=1),
        "$SYS/broker/clients", b"topic starting with '$'")
    for p in positive:
        assert len(p["topic"]) > 0
    assert len(positive[7]["topic"]) == 1000

    # ---- negatives: each processed by a fresh receiver holding exactly "keys"
    negative = []
    topic = "plant/line1/temp"
    tb = topic.encode()
    h0 = hdr(counter=0x0102030405, seq=0x00010203, run=0x5EED0F0F)
    base = seal(KEY_A, h0, tb, pattern(16))          # 56 bytes
    keys0 = [key_entry(h0, KEY_A)]
    # The sender seals plant/ topics under scope 3 (h0) and alarm/ ones under 5.
    rules0 = [rule(3, "plant/#"), rule(5, "alarm/#")]
    maps0 = [sender_map(h0["sender"], rules0)]

    def neg(name, verdict, env, keys=keys0, on_topic=topic, maps=maps0):
        negative.append({
            "name": name, "keys": keys, "maps": maps, "topic": on_topic,
            "topic_hex": on_topic.encode("utf-8").hex(), "envelope": env.hex(),
            "verdict": verdict,
        })

    # Header field regions, one flipped bit each (offsets: SPEC 3.1).
    neg("flip-suite", MALFORMED, flip(base, 0, 0))
    neg("flip-suite-high-bit", MALFORMED, flip(base, 0, 7))
    # The topic's scope (by the sender's map) is 3: another scope byte is
    # FORGED before any key lookup, held key or not (SPEC 5.4 step 2).
    neg("flip-scope", FORGED, flip(base, 1, 0))
    other_scope = dict(h0, scope=h0["scope"] ^ 1)
    neg("flip-scope-same-key-held", FORGED, flip(base, 1, 0),
        keys=keys0 + [key_entry(other_scope, KEY_A)])
    neg("flip-epoch-high", UNKNOWN_KEY, flip(base, 2, 7))
    neg("flip-epoch-low", UNKNOWN_KEY, flip(base, 5, 0))
    other_epoch = dict(h0, epoch=h0["epoch"] ^ 1)
    neg("flip-epoch-same-key-held", FORGED, flip(base, 5, 0),
        keys=keys0 + [key_entry(other_epoch, KEY_A)])
    neg("flip-sender-high", UNKNOWN_KEY, flip(base, 6, 7))
    neg("flip-sender-low", UNKNOWN_KEY, flip(base, 9, 0))
    other_sender = dict(h0, sender=h0["sender"] ^ 1)
    # Same key and map held for the flipped sender too: only the AAD catches it.
    neg("flip-sender-same-key-held", FORGED, flip(base, 9, 0),
        keys=keys0 + [key_entry(other_sender, KEY_A)],
        maps=maps0 + [sender_map(other_sender["sender"], rules0)])
    neg("flip-run-high", FORGED, flip(base, 10, 7))
    neg("flip-run-low", FORGED, flip(base, 13, 0))
    neg("flip-counter-high", FORGED, flip(base, 14, 7))
    neg("flip-counter-low", FORGED, flip(base, 19, 0))
    neg("flip-seq-high", FORGED, flip(base, 20, 7))
    neg("flip-seq-low", FORGED, flip(base, 23, 0))
    # Body.
    neg("flip-ciphertext-first", FORGED, flip(base, HEADER_BYTES, 0))
    neg("flip-ciphertext-last", FORGED, flip(base, len(base) - TAG_BYTES - 1, 7))
    neg("flip-tag-first", FORGED, flip(base, len(base) - TAG_BYTES, 0))
    neg("flip-tag-last", FORGED, flip(base, len(base) - 1, 7))
    # Re-topic: the exact topic bytes are AAD.
    neg("wrong-topic-one-char", FORGED, base, on_topic="plant/line2/temp")
    neg("wrong-topic-case", FORGED, base, on_topic="Plant/line1/temp")
    neg("wrong-topic-prefix", FORGED, base, on_topic="plant/line1")
    neg("wrong-topic-suffix", FORGED, base, on_topic="plant/line1/temp/")
    neg("wrong-topic-extra-level", FORGED, base, on_topic="plant/line1/temp/x")
    # Length.
    empty_pt = seal(KEY_A, h0, tb, b"")              # exactly 40 bytes: valid length
    neg("empty-input", MALFORMED, b"")
    neg("header-only-24", MALFORMED, base[:HEADER_BYTES])
    neg("truncated-39", MALFORMED, empty_pt[:OVERHEAD - 1])
    neg("truncated-last-byte", FORGED, base[:-1])
    neg("truncated-to-40", FORGED, base[:OVERHEAD])
    neg("appended-byte", FORGED, base + b"\x00")
    # Keys.
    neg("wrong-key-same-id", FORGED, base, keys=[key_entry(h0, KEY_WRONG)])
    neg("wrong-epoch-only-other-held", UNKNOWN_KEY, base, keys=[key_entry(other_epoch, KEY_A)])
    neg("no-keys-held", UNKNOWN_KEY, base, keys=[])
    # Splice: header of one authentic envelope, body of another (same key).
    h1 = dict(h0, counter=h0["counter"] + 1, seq=h0["seq"] + 1)
    other = seal(KEY_A, h1, tb, pattern(16))
    neg("splice-header-body", FORGED, base[:HEADER_BYTES] + other[HEADER_BYTES:])
    # Zero fields and unknown suite, sealed correctly under the held key: the
    # parse rules reject them even though the tag would verify.
    neg("run-zero", MALFORMED, seal(KEY_A, dict(h0, run=0), tb, pattern(16)))
    neg("counter-zero", MALFORMED, seal(KEY_A, dict(h0, counter=0), tb, pattern(16)))
    neg("seq-zero", MALFORMED, seal(KEY_A, dict(h0, seq=0), tb, pattern(16)))
    neg("suite-0x03", MALFORMED, seal(KEY_A, dict(h0, suite=0x03), tb, pattern(16)))
    neg("suite-0x00", MALFORMED, seal(KEY_A, dict(h0, suite=0x00), tb, pattern(16)))
    # Parse before key lookup: malformed wins over an unknown key.
    neg("seq-zero-unknown-key", MALFORMED, seal(KEY_A, dict(h0, seq=0), tb, b""), keys=[])
    # Scopes bound to topics (SPEC 5.4 step 2). No map of the sender yet: a
    # key fetch brings one, so UNKNOWN_KEY even with the key held.
    neg("no-map-for-sender", UNKNOWN_KEY, base, maps=[])
    # An insider holding scope 3's key seals, header scope 3, on a topic the
    # sender puts in scope 5 (whose key the victim holds too): FORGED.
    h5 = dict(h0, scope=5)
    insider = seal(KEY_A, h0, b"alarm/boiler", pattern(16))
    neg("insider-scope-3-key-on-scope-5-topic", FORGED, insider, on_topic="alarm/boiler",
        keys=keys0 + [key_entry(h5, KEY_B)])
    # Header scope 5 with scope 3's key on a scope 3 topic: FORGED by the
    # map before the key of scope 5 is even looked up (none is held).
    neg("header-scope-5-on-scope-3-topic", FORGED, seal(KEY_A, h5, tb, pattern(16)))
    neg("topic-matches-no-rule", FORGED, seal(KEY_A, h0, b"office/door", pattern(16)),
        on_topic="office/door")
    # '#' does not match a topic starting with '$' (MQTT 4.7.2).
    neg("dollar-topic-not-matched-by-hash", FORGED,
        seal(KEY_A, h0, b"$plant/x", pattern(16)), on_topic="$plant/x",
        maps=[sender_map(h0["sender"], [rule(3, "#")])])
    # First matching rule wins: plant/line1/# is scope 5, listed before plant/#.
    neg("first-match-wins", FORGED, base,
        maps=[sender_map(h0["sender"], [rule(5, "plant/line1/#"), rule(3, "plant/#")])],
        keys=keys0 + [key_entry(h5, KEY_A)])

    # Cross-check every declared verdict with this file's own receiver.
    for p in positive:
        h = p["header"]
        rx = Receiver({(h["sender"], h["scope"], h["epoch"]): bytes.fromhex(p["key"])},
                      maps_of(p["maps"]))
        v, _, pt = rx.receive(bytes.fromhex(p["topic_hex"]), bytes.fromhex(p["envelope"]))
        assert v == OK and pt.hex() == p["plaintext"], p["name"]
    for n in negative:
        rx = Receiver({(k["sender"], k["scope"], k["epoch"]): bytes.fromhex(k["key"])
                       for k in n["keys"]}, maps_of(n["maps"]))
        v, _, _ = rx.receive(bytes.fromhex(n["topic_hex"]), bytes.fromhex(n["envelope"]))
        assert v == n["verdict"], (n["name"], v)
    names = [x["name"] for x in positive + negative]
    assert len(names) == len(set(names))

    return {"suite": SUITE_V1, "positive": positive, "negative": negative,
            "topic_hashes": build_topic_hashes()}


def build_topic_hashes():
    """SPEC 5.2: topic_hash = SipHash-2-4(k, topic), the 8 output bytes read
    as a little-endian u64 (how files store it, big-endian, in 6.3)."""
    out = []
    for key, topic in ((bytes(16), "a"), (bytes(range(16)), "plant/line1/temp"),
                       (bytes(range(16)), "plant/line1/temP"),
                       (pattern(16, 29, 1), "usine/température/Δp"),
                       (bytes([0xFF] * 16), "$SYS/broker/clients"),
                       (pattern(16, 3, 7), "x" * 1000)):
        tb = topic.encode("utf-8")
        h = nb.crypto_shorthash_siphash24(tb, key)
        out.append({"key": key.hex(), "topic": topic, "topic_hex": tb.hex(),
                    "siphash": h.hex(),
                    # u64 written big-endian as in files (6.3); JSON integers stop at 2^63.
                    "topic_hash": int.from_bytes(h, "little").to_bytes(8, "big").hex()})
    return out


# --------------------------------------------------------------------------
# window.json
# --------------------------------------------------------------------------

def run_window(name, size, arrivals):
    w = Window(size)
    verdicts, gaps = [], []
    for seq in arrivals:
        v, g = w.check(seq)
        if v in (OK, GAP, LATE):        # every arrival is assumed authentic
            w.update(seq)
        verdicts.append(v)
        gaps.append(g)
    return {"name": name, "window": size, "arrivals": list(arrivals),
            "verdicts": verdicts, "gaps": gaps, "final": w.final()}


def clean_reordered(n, seed=12345):
    """1..n with bounded local reordering (at most 40 positions), no loss:
    fixed-seed xorshift so the sequence is identical on every run."""
    out, s, i = [], seed, 1
    while i <= n:
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        k = min(1 + s % 40, n - i + 1)
        block = list(range(i, i + k))
        out.extend(reversed(block) if s & 1 else block[1:] + block[:1])
        i += k
    return out


def build_window():
    W = 1024
    seqs = []

    def case(name, size, arrivals, **expect):
        c = run_window(name, size, arrivals)
        # Pin the properties each case exists to demonstrate.
        for k, v in expect.items():
            if k == "verdicts":
                assert c["verdicts"] == v, (name, c["verdicts"])
            elif k == "gaps":
                assert c["gaps"] == v, (name, c["gaps"])
            else:
                assert c["final"][k] == v, (name, k, c["final"])
        seqs.append(c)

    case("in-order", W, list(range(1, 11)), verdicts=[OK] * 10, lost=0, pending=0)
    case("reorder-40-before-39", W, list(range(1, 39)) + [40, 39, 41],
         verdicts=[OK] * 38 + [GAP, LATE, OK], lost=0, pending=0)
    case("duplicate", W, [1, 2, 3, 2, 3, 3, 4, 1],
         verdicts=[OK, OK, OK, DUPLICATE, DUPLICATE, DUPLICATE, OK, DUPLICATE], received=4)
    # top = 1029 after the jump: 5 is exactly W back, 6 is W-1 back.
    case("edge-exactly-w-back", W, [1, 2, 3, 4, 5, 1029, 5, 6, 7, 4],
         verdicts=[OK] * 5 + [GAP, TOO_OLD, LATE, LATE, TOO_OLD])
    case("edge-w64-exactly-w-back", 64, [1, 65, 1, 2, 66, 2, 3, 67, 68],
         verdicts=[OK, GAP, TOO_OLD, LATE, OK, TOO_OLD, LATE, OK, OK])
    case("huge-jump", W, [1, 1000000, 2, 998976, 998977, 999999, 1000001, 998977],
         gaps=[0, 999998, 0, 0, 0, 0, 0, 0],
         verdicts=[OK, GAP, TOO_OLD, TOO_OLD, LATE, LATE, OK, TOO_OLD], lost=998975)
    case("bitmap-wrap-3000", W, list(range(1, 3001)) + [3000, 2500, 1977, 1976, 1, 3001],
         lost=0, pending=0, received=3001)
    case("w64-in-order-wrap", 64, list(range(1, 201)) + [137, 136, 200, 201],
         verdicts=[OK] * 200 + [DUPLICATE, TOO_OLD, DUPLICATE, OK], lost=0)
    # Skips spanning more words than the ring holds must clear the whole ring.
    case("w64-jump-clears-ring", 64, [1, 2, 3, 500, 437, 436, 3, 1000, 999, 937],
         verdicts=[OK, OK, OK, GAP, LATE, TOO_OLD, TOO_OLD, GAP, LATE, LATE])
    U32 = SEQ_MAX
    case("seq-2^32-boundary", W,
         [U32 - 5, U32 - 3, U32, U32 - 4, U32, U32 - 1, U32 - 2, 1, U32 - 5],
         verdicts=[OK, GAP, GAP, LATE, DUPLICATE, LATE, LATE, TOO_OLD, DUPLICATE],
         top=U32, lost=0, pending=0)
    case("seq-2^32-first-then-w-back", W, [U32, U32 - 1023, U32 - 1024, U32 - 1],
         verdicts=[OK, LATE, TOO_OLD, LATE], base=U32 - 1023)
    case("mid-stream-start", W, [1000, 998, 999, 1001, 997, 997],
         verdicts=[OK, LATE, LATE, OK, LATE, DUPLICATE], base=997, lost=0, pending=0)
    case("mid-stream-start-far", W, [2000, 976, 977, 2001],
         verdicts=[OK, TOO_OLD, LATE, OK], base=977)
    case("window-max-2^20", 1 << 20, [1, (1 << 20) + 1, 1, 2],
         verdicts=[OK, GAP, TOO_OLD, LATE], gaps=[0, (1 << 20) - 1, 0, 0])
    reordered = clean_reordered(500)
    assert sorted(reordered) == list(range(1, 501))
    case("clean-reordered-run-w64", 64, reordered, lost=0, pending=0, received=500)
    case("clean-reordered-run-w1024", W, clean_reordered(2000, seed=777),
         lost=0, pending=0, received=2000)
    # Real losses: every 7th dropped, a burst of 100 dropped, light reordering;
    # 3 dropped ones turn up far too late (TOO_OLD: still lost). The last 64
    # are all received, so nothing is pending and lost is exact.
    dropped = {s for s in range(1, 601) if s % 7 == 0} | set(range(200, 300))
    sent = [s for s in range(1, 601) if s not in dropped]
    for i in range(0, len(sent) - 3, 10):
        # Swap neighbours, but never across the burst: a swap of 199 and 300
        # would make 199 TOO_OLD, i.e. one more (correctly counted) loss.
        if sent[i + 1] - sent[i] < 64:
            sent[i], sent[i + 1] = sent[i + 1], sent[i]
    tail = list(range(601, 680))
    arrivals = sent + [7, 250, 299] + tail
    case("real-losses-exact", 64, arrivals, pending=0, lost=len(dropped))
    case("real-losses-pending", W, [1, 2, 5, 6, 10], pending=5, lost=0,
         verdicts=[OK, OK, GAP, OK, GAP], gaps=[0, 0, 2, 0, 3])
    case("late-fills-then-dup", W, [1, 4, 2, 3, 2, 3, 4, 5],
         verdicts=[OK, GAP, LATE, LATE, DUPLICATE, DUPLICATE, DUPLICATE, OK],
         pending=0, lost=0)

    names = [c["name"] for c in seqs]
    assert len(names) == len(set(names))
    return {"sequences": seqs}


# --------------------------------------------------------------------------
# tx.json (SPEC section 5.1)
# --------------------------------------------------------------------------

def tx_sequence(name, key, sender, scope, epoch, run, floor, topics, plaintexts):
    assert len(topics) == len(plaintexts)
    counter, seqs, expect = floor, {}, []
    for topic, pt in zip(topics, plaintexts):
        counter += 1                                  # floor+1, +2, ...
        seqs[topic] = seqs.get(topic, 0) + 1          # per topic, from 1
        h = hdr(scope=scope, epoch=epoch, sender=sender, run=run,
                counter=counter, seq=seqs[topic])
        expect.append({"counter": counter, "seq": seqs[topic],
                       "envelope": seal(key, h, topic.encode("utf-8"), pt).hex()})
    return {"name": name, "key": key.hex(), "sender": sender, "scope": scope,
            "epoch": epoch, "run": run, "counter_floor": floor, "topics": list(topics),
            "plaintexts": [p.hex() for p in plaintexts], "expect": expect}


def build_tx():
    F = 65536
    a = tx_sequence("wire-facts-example", KEY_A, SENDER_A, 3, 7, RUN_A, F,
                    ["a", "b", "a"], [b"1", b"2", b"3"])
    assert [(e["counter"], e["seq"]) for e in a["expect"]] == [(F + 1, 1), (F + 2, 1), (F + 3, 2)]
    b = tx_sequence("new-key-floor-0", KEY_B, 0x00C0FFEE, 0, 1, 0x00000001, 0,
                    ["plant/l1/t", "plant/l1/t", "plant/l2/t", "plant/l1/t", "plant/l2/t", "x"],
                    [b"", pattern(1), pattern(17), pattern(64), b"{}", pattern(300)])
    c = tx_sequence("restarted-after-crash", KEY_C, 0xFFFFFFFF, 255, 0xFFFFFFFF, 0xFFFFFFFF,
                    3 * F, ["t/°C", "t/°F", "t/°C", "t/°C"],
                    [b"20", b"68", b"21", b"22"])
    return {"sequences": [a, b, c]}


# --------------------------------------------------------------------------
# identity.json (SPEC section 7)
# --------------------------------------------------------------------------

# Not normative (comments are ignored); kept equal to what libe2e writes so a
# test may compare a saved file byte for byte.
SECRET_COMMENT = "# mqtt-e2e identity: SECRET key, keep mode 0600, never share\n"


def identity(seed, dh_sk, name):
    sign_pk, _sign_sk = nb.crypto_sign_seed_keypair(seed)
    dh_pk = nb.crypto_scalarmult_base(dh_sk)
    assert dh_pk != bytes(32)
    fp = hashlib.blake2b(b"mqtt-e2e/v1/fingerprint" + sign_pk + dh_pk, digest_size=16).hexdigest()
    fingerprint = "e2e:" + ":".join(fp[i:i + 4] for i in range(0, 32, 4))
    line = "e2e1 " + base64.b64encode(sign_pk + dh_pk).decode("ascii")
    if name:
        assert 1 <= len(name) <= 64 and all(0x21 <= ord(c) <= 0x7E for c in name)
        line += " " + name
    secret = SECRET_COMMENT + "e2e-secret1 " + base64.b64encode(seed + dh_sk).decode("ascii") + "\n"
    assert len(fingerprint) == 43
    return {"seed": seed.hex(), "dh_sk": dh_sk.hex(), "sign_pk": sign_pk.hex(),
            "dh_pk": dh_pk.hex(), "sender_id": sender_id_of(sign_pk),
            "fingerprint": fingerprint, "name": name or "", "public_line": line,
            "secret_file": secret}


def build_identity():
    long_name = "".join(chr(0x21 + (i * 5) % 94) for i in range(64))   # max length
    return {"vectors": [
        identity(bytes(range(32)), bytes(range(32, 64)), "alice"),
        identity(bytes(range(0xA0, 0xC0)), bytes(range(0x60, 0x80)), None),
        # dh_sk with the bits clamping clears set: stored as is, clamped by X25519.
        identity(pattern(32, 37, 11), bytes([0xFF] * 32), long_name),
    ]}


# --------------------------------------------------------------------------
# control.json (SPEC section 11)
# --------------------------------------------------------------------------

CTL_VERSION = 0x01
CTL_TYPE = {"REQUEST": 0x01, "DELIVERY": 0x02, "REFUSAL": 0x03, "ANNOUNCE": 0x04,
            "SUMMARY": 0x05}
CTL_CONTEXT = b"mqtt-e2e/v1/ctl\x00"
CTL_SIG = 64
CONTROL_TOPIC = "e2e/control"
T0 = 1700000000000                       # ms since the Unix epoch, 2023-11-14
GRACE = 24 * 3600 * 1000
AUTH, VERSION = "AUTH", "VERSION"        # MALFORMED as for envelopes


def sender_id_of(sign_pk):
    digest = hashlib.blake2b(b"mqtt-e2e/v1/sender-id" + sign_pk, digest_size=32).digest()
    return int.from_bytes(digest[:4], "big")


class Party:
    """An identity (SPEC 7) that signs control messages."""

    def __init__(self, seed, dh_sk):
        self.seed = seed
        self.sign_pk, self.sign_sk = nb.crypto_sign_seed_keypair(seed)
        self.dh_pk = nb.crypto_scalarmult_base(dh_sk)
        self.id = sender_id_of(self.sign_pk)


# The same key pairs as identity.json: the sender is vector #2, alice #1.
SENDER = Party(bytes(range(0xA0, 0xC0)), bytes(range(0x60, 0x80)))
ALICE = Party(bytes(range(32)), bytes(range(32, 64)))
MALLORY = Party(pattern(32, 37, 11), bytes([0xFF] * 32))


def ctl_sign(party, topic, unsigned):
    """Ed25519 (deterministic) over context || u16 len(T) || T || head || body."""
    tb = topic.encode("utf-8")
    assert 1 <= len(tb) <= 256
    signed = nb.crypto_sign(CTL_CONTEXT + len(tb).to_bytes(2, "big") + tb + unsigned,
                            party.sign_sk)
    return unsigned + signed[:CTL_SIG]


def ctl_head(type_, sender, time_ms, version=CTL_VERSION):
    return bytes([version, type_]) + sender.to_bytes(4, "big") + time_ms.to_bytes(8, "big")


def str8(s):
    b = s.encode("utf-8")
    return bytes([len(b)]) + b


def str16b(b):
    return len(b).to_bytes(2, "big") + b


def request_body(requester, eph_pk, nonce, reply_topic, want, cred=b""):
    """... || u16 c || cred[c]: the requester's credential (SPEC 13.4), c = 0: none."""
    return (requester.sign_pk + requester.dh_pk + eph_pk + nonce + str8(reply_topic)
            + bytes([len(want)])
            + b"".join(bytes([s]) + e.to_bytes(4, "big") for s, e in want) + str16b(cred))


def key_records(keys):
    """The plaintext of a delivery starts u8 k || k x (scope, epoch, not_after, flags, key)."""
    return bytes([len(keys)]) + b"".join(
        bytes([k["scope"]]) + k["epoch"].to_bytes(4, "big")
        + k["not_after_ms"].to_bytes(8, "big") + bytes([k["flags"]])
        + bytes.fromhex(k["key"]) for k in keys)


def map_records(interval_ms, rules, refresh=(0, 0)):
    """... and ends u32 summary_interval_ms || u64 refresh_from_ms || u64 refresh_by_ms ||
    u16 r || r x (scope u8, str16 filter)."""
    out = (interval_ms.to_bytes(4, "big") + refresh[0].to_bytes(8, "big")
           + refresh[1].to_bytes(8, "big") + len(rules).to_bytes(2, "big"))
    for r in rules:
        fb = r["filter"].encode("utf-8")
        out += bytes([r["scope"]]) + len(fb).to_bytes(2, "big") + fb
    return out


def vector_key(scope, epoch):
    """The sender's key of (scope, epoch): one value per id in every vector."""
    return hashlib.blake2b(b"vector key" + bytes([scope]) + epoch.to_bytes(4, "big"),
                           digest_size=32).digest()


# The sender's scopes table as its deliveries carry it: match order, the
# implied default (scope 0 '#') listed, '$SYS' needing a rule of its own.
SENDER_RULES = [rule(1, "plant/+/temp"), rule(17, "alarm/#"), rule(34, "$SYS/#"),
                rule(0, "#")]
SENDER_INTERVAL = 10000


def box_seal(plain, recipient_pk, box_sk):
    """crypto_box_seal with a chosen (instead of random) ephemeral secret:
    epk || crypto_box(plain, BLAKE2b-192(epk || pk), pk, esk), exactly what
    libsodium computes after drawing esk, so crypto_box_seal_open opens it."""
    epk = nb.crypto_scalarmult_base(box_sk)
    nonce = hashlib.blake2b(epk + recipient_pk, digest_size=24).digest()
    sealed = epk + nb.crypto_box(plain, nonce, recipient_pk, box_sk)
    assert len(sealed) == len(plain) + nb.crypto_box_SEALBYTES
    return sealed


def hist_bytes(hist, h=None):
    """SPEC 11.6 history: u8 h || h x (number u32 || u16 m || m x (run u32 ||
    str16 topic || first u32 || last u32)); hist: [{number, ranges}]."""
    out = bytes([len(hist) if h is None else h])
    for rec in hist:
        out += rec["number"].to_bytes(4, "big") + len(rec["ranges"]).to_bytes(2, "big")
        for x in rec["ranges"]:
            tb = x["topic"].encode("utf-8")
            out += (x["run"].to_bytes(4, "big") + len(tb).to_bytes(2, "big") + tb
                    + x["first"].to_bytes(4, "big") + x["last"].to_bytes(4, "big"))
    return out


def summary_body(interval_ms, boot, number, part, parts, entries, n=None, hist=(), tail=None):
    """SPEC 11.6: interval || boot || number || part || parts || n || entries,
    each run || str16 topic || first || last || one d_s per seq, then the
    history (tail: other bytes in its place)."""
    out = (interval_ms.to_bytes(4, "big") + boot.to_bytes(4, "big") + number.to_bytes(4, "big")
           + bytes([part, parts]) + (len(entries) if n is None else n).to_bytes(2, "big"))
    for e in entries:
        tb = e["topic"].encode("utf-8")
        out += (e["run"].to_bytes(4, "big") + len(tb).to_bytes(2, "big") + tb
                + e["first"].to_bytes(4, "big") + e["last"].to_bytes(4, "big")
                + b"".join(bytes.fromhex(d) for d in e["digests"]))
    return out + (hist_bytes(list(hist)) if tail is None else tail)


def hrange(run, topic, first, last):
    return {"run": run, "topic": topic, "first": first, "last": last}


def d_s(env):
    """The per-envelope digest of SPEC 11.6: BLAKE2b-64 of the envelope."""
    return hashlib.blake2b(env, digest_size=8).digest()


def summary_envelope(run, topic, seq, key=KEY_C, scope=1, epoch=1, counter0=100, pt=None):
    return seal(key, hdr(scope=scope, epoch=epoch, sender=SENDER.id, run=run,
                         counter=counter0 + seq, seq=seq),
                topic.encode("utf-8"), pattern(seq % 23, 11, seq) if pt is None else pt)


def summary_entry(run, topic, first, last, key=KEY_C, scope=1, epoch=1, counter0=100):
    """A stream's envelopes first..last as a conforming sender seals them, and
    their d_s in seq order."""
    envs = [summary_envelope(run, topic, s, key, scope, epoch, counter0)
            for s in range(first, last + 1)]
    return {"run": run, "topic": topic, "first": first, "last": last,
            "envelopes": [e.hex() for e in envs], "digests": [d_s(e).hex() for e in envs]}


BOOT = 0x0B007001                         # the sender run of the summary vectors


def announce_topic(control=CONTROL_TOPIC, sender=None):
    return "%s/%08x" % (control, SENDER.id if sender is None else sender)


def build_control():
    requests, deliveries, refusals, announces, summaries, negative = [], [], [], [], [], []
    by_name = {}

    def common(name, type_, party, topic, msg, sender, time_ms):
        return {"name": name, "type": type_, "seed": party.seed.hex(),
                "signer": party.sign_pk.hex(), "topic": topic, "message": msg.hex(),
                "sender": sender, "time_ms": time_ms}

    def request(name, requester, target, time_ms, eph_sk, nonce, reply_topic, want, cred=b""):
        eph_pk = nb.crypto_scalarmult_base(eph_sk)
        body = request_body(requester, eph_pk, nonce, reply_topic, want, cred)
        msg = ctl_sign(requester, CONTROL_TOPIC, ctl_head(1, target, time_ms) + body)
        item = common(name, "REQUEST", requester, CONTROL_TOPIC, msg, target, time_ms)
        item.update({"requester_sign_pk": requester.sign_pk.hex(),
                     "requester_dh_pk": requester.dh_pk.hex(), "eph_sk": eph_sk.hex(),
                     "eph_pk": eph_pk.hex(), "nonce": nonce.hex(), "reply_topic": reply_topic,
                     "want": [{"scope": s, "epoch": e} for s, e in want], "cred": cred.hex(),
                     "req_hash": hashlib.blake2b(msg, digest_size=32).hexdigest()})
        requests.append(item)
        by_name[name] = item

    def delivery(name, req, time_ms, box_sk, keys, rules=SENDER_RULES,
                 interval_ms=SENDER_INTERVAL, cred=b"", refresh=(0, 0)):
        r = by_name[req]
        plain = key_records(keys) + map_records(interval_ms, rules, refresh)
        sealed = box_seal(plain, bytes.fromhex(r["eph_pk"]), box_sk)
        body = bytes.fromhex(r["req_hash"]) + str16b(cred) + len(sealed).to_bytes(2, "big") + sealed
        msg = ctl_sign(SENDER, r["reply_topic"], ctl_head(2, SENDER.id, time_ms) + body)
        item = common(name, "DELIVERY", SENDER, r["reply_topic"], msg, SENDER.id, time_ms)
        item.update({"request": req, "req_hash": r["req_hash"], "sealed": sealed.hex(),
                     "eph_sk": r["eph_sk"], "eph_pk": r["eph_pk"], "box_sk": box_sk.hex(),
                     "plain": plain.hex(), "keys": keys, "summary_interval_ms": interval_ms,
                     "cred": cred.hex(),
                     "rules": rules, "refresh": list(refresh)})
        assert len(msg) <= 65535
        # libsodium's own opener accepts the deterministic construction.
        assert nb.crypto_box_seal_open(sealed, bytes.fromhex(r["eph_pk"]),
                                       bytes.fromhex(r["eph_sk"])) == plain
        deliveries.append(item)
        by_name[name] = item

    def refusal(name, req, time_ms, reason):
        r = by_name[req]
        body = bytes.fromhex(r["req_hash"]) + bytes([reason])
        msg = ctl_sign(SENDER, r["reply_topic"], ctl_head(3, SENDER.id, time_ms) + body)
        item = common(name, "REFUSAL", SENDER, r["reply_topic"], msg, SENDER.id, time_ms)
        item.update({"request": req, "req_hash": r["req_hash"], "reason": reason})
        refusals.append(item)
        by_name[name] = item

    def announce(name, topic, time_ms, scope, epoch):
        body = bytes([scope]) + epoch.to_bytes(4, "big")
        msg = ctl_sign(SENDER, topic, ctl_head(4, SENDER.id, time_ms) + body)
        item = common(name, "ANNOUNCE", SENDER, topic, msg, SENDER.id, time_ms)
        item.update({"scope": scope, "epoch": epoch})
        announces.append(item)
        by_name[name] = item

    def summary(name, time_ms, interval_ms, number, part, parts, entries, boot=BOOT, hist=()):
        topic = announce_topic()
        body = summary_body(interval_ms, boot, number, part, parts, entries, hist=hist)
        msg = ctl_sign(SENDER, topic, ctl_head(5, SENDER.id, time_ms) + body)
        assert len(msg) <= 65535
        item = common(name, "SUMMARY", SENDER, topic, msg, SENDER.id, time_ms)
        item.update({"interval_ms": interval_ms, "boot": boot, "number": number, "part": part,
                     "parts": parts, "entries": entries, "history": list(hist)})
        summaries.append(item)
        by_name[name] = item

    def key(scope, epoch, not_after_ms, flags=0):
        return {"scope": scope, "epoch": epoch, "not_after_ms": not_after_ms,
                "flags": flags, "key": vector_key(scope, epoch).hex()}

    # ---- positive
    hex32 = "0123456789abcdef" * 2
    request("request-one-scope", ALICE, SENDER.id, T0, pattern(32, 5, 1), pattern(16, 9, 2),
            "e2e/k/" + hex32, [(1, 0)])
    request("request-all-scopes-max-reply-topic", ALICE, SENDER.id, T0 + 1,
            pattern(32, 5, 7), pattern(16, 9, 8), "e2e/k/" + ("fedcba9876543210" * 8)[:122], [])
    request("request-16-scopes", ALICE, SENDER.id, T0 + 2, pattern(32, 5, 13),
            pattern(16, 9, 14), "e2e/k/" + "a" * 40,
            [(s * 17 % 256, [0, 1, 0xFFFFFFFF, 0x01020304][s % 4]) for s in range(16)])
    request("request-other-target-time-0", MALLORY, 0, 0, pattern(32, 5, 19),
            bytes(16), "e2e/k/" + "0" * 32, [(0, 0)])
    assert len(by_name["request-all-scopes-max-reply-topic"]["reply_topic"]) == 128

    # The same (scope, epoch) always has the same key (vector_key); each
    # delivery answers exactly the scopes its request wants (all: 0 and 1).
    delivery("delivery-one-key", "request-one-scope", T0 + 5, pattern(32, 7, 21),
             [key(1, 1, 0)])
    delivery("delivery-current-and-grace", "request-all-scopes-max-reply-topic", T0 + 6,
             pattern(32, 7, 22),
             [key(0, 3, T0 + GRACE), key(0, 4, 0), key(1, 1, 0)])
    # Keys ahead of rotation (SPEC 11.5): scope 0's next epoch, NEXT (flag bit
    # 1) with the time it becomes current in the u64; ask again in the window.
    delivery("delivery-current-and-next", "request-all-scopes-max-reply-topic", T0 + 9,
             pattern(32, 7, 25),
             [key(0, 4, 0), key(0, 5, T0 + 3000, flags=2), key(0, 6, T0 + 6000, flags=2),
              key(1, 1, 0)], refresh=(T0 + 7500, T0 + 8250))
    wanted = [w["scope"] for w in by_name["request-16-scopes"]["want"]]
    assert len(set(wanted)) == 16
    keys32 = []
    for i, sc in enumerate(wanted):
        cur = 4 if sc == 0 else 2             # scope 0 as in the delivery above
        grace_end = (1 << 63) - 1 if i == 15 else T0 + GRACE
        flags = 1 if sc == 17 else 0          # alarm/# is a signed scope
        keys32 += [key(sc, cur - 1, grace_end, flags), key(sc, cur, 0, flags)]
    delivery("delivery-32-keys", "request-16-scopes", T0 + 7, pattern(32, 7, 23), keys32)
    assert len(bytes.fromhex(by_name["delivery-32-keys"]["message"])) <= 2048
    # A large map (after a reload of the sender's scopes): over 2048 bytes,
    # legal for a delivery (up to 65535).
    big_rules = [rule(1 + i % 200, "site%03d/+/line/#" % i) for i in range(150)] + SENDER_RULES
    delivery("delivery-large-map", "request-one-scope", T0 + 8, pattern(32, 7, 24),
             [key(1, 1, 0)], rules=big_rules, interval_ms=0)
    assert len(bytes.fromhex(by_name["delivery-large-map"]["message"])) > 2048
    # Fleet trust (SPEC 13.4): alice's subscriber credential in her request,
    # the sender's own credential in the clear in its delivery (gen_cred.py).
    import gen_cred                                   # noqa: E402 (imports gen)
    request("request-with-credential", ALICE, SENDER.id, T0 + 3, pattern(32, 5, 23),
            pattern(16, 9, 24), "e2e/k/" + "c" * 32, [(1, 0)], cred=gen_cred.ALICE_CRED)
    delivery("delivery-with-credential", "request-with-credential", T0 + 9, pattern(32, 7, 25),
             [key(1, 1, 0)], cred=gen_cred.SENDER_CRED)

    for reason in (1, 2, 3, 4, 5):
        refusal("refusal-reason-%d" % reason, "request-16-scopes" if reason % 2
                else "request-one-scope", T0 + 10 + reason, reason)

    announce("announce-scope-1-epoch-2", announce_topic(), T0 + 20, 1, 2)
    announce("announce-scope-0-epoch-1", announce_topic(), T0 + 21, 0, 1)
    announce("announce-extremes-custom-control-topic", announce_topic("site/ctl"),
             (1 << 63) - 1, 255, 0xFFFFFFFF)

    run = 0x5EED0002
    summary("summary-empty-heartbeat", T0 + 10000, 10000, 1, 0, 1, [])
    summary("summary-two-streams", T0 + 20000, 10000, 2, 0, 1,
            [summary_entry(run, "plant/line1/temp", 1, 3),
             summary_entry(run, "plant/line2/pressure", 5, 5)])
    summary("summary-part-1-of-2", T0 + 30000, 10000, 3, 1, 2,
            [summary_entry(run, "usine/température/Δp", 7, 8)])
    # One summary in two parts: each part signed on its own, both bound to
    # (boot, number, parts); 30000-byte topics, so two entries fill a part.
    big = [summary_entry(run + 8 + i, ("big%d/" % i) + "y" * 29995, 1, 2 + i) for i in range(3)]
    summary("summary-two-parts-0", T0 + 35000, 10000, 5, 0, 2, big[:2], boot=0xFFFFFFFF)
    summary("summary-two-parts-1", T0 + 35000, 10000, 5, 1, 2, big[2:], boot=0xFFFFFFFF)
    assert len(bytes.fromhex(by_name["summary-two-parts-0"]["message"])) > 60000
    # Long topics: > 2048 bytes, legal for a summary only (up to 65535).
    summary("summary-over-2048-bytes", T0 + 40000, 5000, 6, 0, 1,
            [summary_entry(run + i, ("s%d/" % i) + "x" * 997, 1, 2) for i in range(3)])
    assert len(bytes.fromhex(by_name["summary-over-2048-bytes"]["message"])) > 2048
    # History (SPEC 11.6): the ranges of earlier summaries 8, 7 (empty) and 5.
    summary("summary-with-history", T0 + 90000, 10000, 9, 0, 1,
            [summary_entry(run, "plant/line1/temp", 13, 13)],
            hist=[{"number": 8, "ranges": [hrange(run, "plant/line1/temp", 10, 12),
                                           hrange(run + 1, "plant/line2/Δp", 3, 3)]},
                  {"number": 7, "ranges": []},
                  {"number": 5, "ranges": [hrange(run, "plant/line1/temp", 1, 9)]}])

    # ---- negative: the decoder's verdict on each (SPEC 11.2 check order:
    # size, version, type, layout, then the signature; answers also 11.4).
    def neg(name, msg, expect, topic=None, signer=None, base=None, request=None):
        negative.append({"name": name, "message": msg.hex(), "expect": expect,
                         "topic": topic if topic is not None else base["topic"],
                         "signer": signer.sign_pk.hex() if signer else None,
                         "request": request})

    def raw(name):
        return bytes.fromhex(by_name[name]["message"])

    req = by_name["request-one-scope"]
    dlv, ann = by_name["delivery-one-key"], by_name["announce-scope-1-epoch-2"]
    summ, ref = by_name["summary-two-streams"], by_name["refusal-reason-1"]
    rq, dv, an, sm = raw(req["name"]), raw(dlv["name"]), raw(ann["name"]), raw(summ["name"])

    # Re-topicked: the signature binds the topic.
    neg("request-retopicked", rq, AUTH, topic="e2e/control2", base=req)
    neg("request-retopicked-case", rq, AUTH, topic="E2E/control", base=req)
    neg("delivery-retopicked", dv, AUTH, topic="e2e/k/" + "fedcba9876543210" * 2,
        signer=SENDER, base=dlv)
    neg("announce-retopicked", an, AUTH, topic=announce_topic(sender=ALICE.id), signer=SENDER)
    neg("summary-retopicked", sm, AUTH, topic="e2e/control", signer=SENDER)
    # One flipped bit.
    neg("request-flipped-sig-bit", flip(rq, len(rq) - 1, 7), AUTH, base=req)
    neg("announce-flipped-sig-bit", flip(an, len(an) - CTL_SIG, 0), AUTH, signer=SENDER, base=ann)
    neg("request-flipped-nonce-bit", flip(rq, 14 + 96, 3), AUTH, base=req)
    neg("request-flipped-time-bit", flip(rq, 13, 0), AUTH, base=req)
    neg("delivery-flipped-sealed-bit", flip(dv, 14 + 34 + 40, 1), AUTH, signer=SENDER, base=dlv)
    neg("announce-flipped-epoch-bit", flip(an, 18, 1), AUTH, signer=SENDER, base=ann)
    neg("summary-flipped-digest-bit", flip(sm, len(sm) - CTL_SIG - 2, 0), AUTH,  # (the last byte is the history count)
        signer=SENDER, base=summ)
    # Signed by someone else.
    neg("announce-wrong-signer", an, AUTH, signer=ALICE, base=ann)
    neg("request-signed-by-other-key", ctl_sign(MALLORY, CONTROL_TOPIC, rq[:-CTL_SIG]), AUTH,
        base=req)
    # Length: the body must be consumed exactly.
    neg("announce-trailing-byte-appended", an + b"\x00", MALFORMED, signer=SENDER, base=ann)
    neg("announce-trailing-byte-signed", ctl_sign(SENDER, ann["topic"], an[:-CTL_SIG] + b"\x00"),
        MALFORMED, signer=SENDER, base=ann)
    neg("request-trailing-byte-signed", ctl_sign(ALICE, CONTROL_TOPIC, rq[:-CTL_SIG] + b"\x01"),
        MALFORMED, base=req)
    neg("refusal-trailing-byte-signed",
        ctl_sign(SENDER, ref["topic"], raw(ref["name"])[:-CTL_SIG] + b"\x00"),
        MALFORMED, signer=SENDER, base=ref)
    neg("request-truncated-one-byte", rq[:-1], MALFORMED, base=req)
    neg("announce-truncated-one-byte", an[:-1], MALFORMED, signer=SENDER, base=ann)
    neg("delivery-truncated-one-byte", dv[:-1], MALFORMED, signer=SENDER, base=dlv)
    neg("shorter-than-head-and-sig", an[:14 + CTL_SIG - 1], MALFORMED, signer=SENDER, base=ann)
    neg("empty", b"", MALFORMED, signer=SENDER, base=ann)
    neg("non-summary-over-2048-bytes",
        ctl_sign(SENDER, ann["topic"], an[:-CTL_SIG] + bytes(2048 - len(an) + 1)),
        MALFORMED, signer=SENDER, base=ann)
    # Version and type (correctly signed: they fail before the signature anyway).
    for v in (0x00, 0x02, 0xFF):
        neg("version-0x%02x" % v, ctl_sign(SENDER, ann["topic"], bytes([v]) + an[1:-CTL_SIG]),
            VERSION, signer=SENDER, base=ann)
    neg("version-0x02-bad-signature", bytes([2]) + an[1:], VERSION, signer=SENDER, base=ann)
    neg("version-0x02-too-short", bytes([2]) + an[1:14 + CTL_SIG - 1], MALFORMED,
        signer=SENDER, base=ann)
    for t in (0x00, 0x06, 0xFF):
        neg("type-0x%02x" % t, ctl_sign(SENDER, ann["topic"], an[:1] + bytes([t]) + an[2:-CTL_SIG]),
            MALFORMED, signer=SENDER, base=ann)
    # The reply topic: "e2e/k/" + at least 32 lowercase hex digits, <= 128 bytes.
    eph = pattern(32, 5, 1)
    for tname, topic in (("uppercase-hex", "e2e/k/" + hex32.upper()),
                         ("31-hex", "e2e/k/" + hex32[:31]),
                         ("wrong-prefix", "e2e/x/" + hex32),
                         ("no-prefix", hex32 + "012345"),
                         ("non-hex-digit", "e2e/k/" + hex32[:31] + "g"),
                         ("trailing-slash", "e2e/k/" + hex32 + "/"),
                         ("129-bytes", "e2e/k/" + "0" * 123),
                         ("empty", "")):
        body = request_body(ALICE, nb.crypto_scalarmult_base(eph), pattern(16, 9, 2), topic,
                            [(1, 0)])
        neg("request-reply-topic-" + tname,
            ctl_sign(ALICE, CONTROL_TOPIC, ctl_head(1, SENDER.id, T0) + body), MALFORMED,
            base=req)
    body = request_body(ALICE, nb.crypto_scalarmult_base(eph), pattern(16, 9, 2),
                        req["reply_topic"], [(s, 0) for s in range(17)])
    neg("request-17-scopes", ctl_sign(ALICE, CONTROL_TOPIC, ctl_head(1, SENDER.id, T0) + body),
        MALFORMED, base=req)
    # A delivery without a sealed box in it.
    neg("delivery-sealed-empty",
        ctl_sign(SENDER, dlv["topic"], ctl_head(2, SENDER.id, T0) + bytes.fromhex(dlv["req_hash"])
                 + b"\x00\x00"), MALFORMED, signer=SENDER, base=dlv)
    # Authentic answers to another request (11.4): replayed or redirected.
    # Each is a positive answer to request-one-scope with only req_hash
    # replaced (and signed again), on that request's reply topic.
    other = by_name["request-all-scopes-max-reply-topic"]
    for kind, good in (("delivery", dv), ("refusal", raw("refusal-reason-2"))):
        msg = ctl_sign(SENDER, req["reply_topic"],
                       good[:14] + bytes.fromhex(other["req_hash"]) + good[46:-CTL_SIG])
        assert len(msg) == len(good) and msg[46:-CTL_SIG] == good[46:-CTL_SIG]
        neg(kind + "-req-hash-mismatch", msg, AUTH, topic=req["reply_topic"], signer=SENDER,
            request=req["name"])
    # An authentic answer by another (trusted) sender than the one asked, with
    # the right req_hash (anyone reads requests on C): bound to the target
    # sender, it is refused (11.4).
    msg = ctl_sign(MALLORY, req["reply_topic"], ctl_head(2, MALLORY.id, T0 + 5) + dv[14:-CTL_SIG])
    neg("delivery-from-another-sender", msg, AUTH, topic=req["reply_topic"], signer=MALLORY,
        request=req["name"])
    # Authentic deliveries answering the request whose sealed plaintext breaks
    # the layout of 11.2 (found when opened with the request's eph_sk).
    eph_pk1 = bytes.fromhex(req["eph_pk"])
    k1 = key_records([key(1, 1, 0)])
    for mname, plain in (
            ("no-rule", k1 + map_records(0, [])),
            ("filter-hash-not-last", k1 + map_records(0, [rule(1, "a/#/b")])),
            ("filter-plus-in-level", k1 + map_records(0, [rule(1, "a+")])),
            ("filter-empty", k1 + map_records(0, [rule(1, "")])),
            ("filter-nul", k1 + map_records(0, [rule(1, "a\x00")])),
            ("rule-count-above-rules", k1 + map_records(0, [rule(1, "#")])[:20] + b"\x00\x02"
             + map_records(0, [rule(1, "#")])[22:]),
            ("filter-past-the-end", k1 + map_records(0, [rule(1, "#")])[:-1] + b"\x00\x05#"),
            ("trailing-byte", k1 + map_records(0, [rule(1, "#")]) + b"\x00"),
            ("key-flag-bit-2", key_records([key(1, 1, 0, flags=4)]) + map_records(0, [rule(1, "#")])),
            ("key-count-above-records", bytes([2]) + k1[1:] + map_records(0, [rule(1, "#")]))):
        sealed = box_seal(plain, eph_pk1, pattern(32, 11, len(mname)))
        msg = ctl_sign(SENDER, req["reply_topic"], ctl_head(2, SENDER.id, T0 + 5)
                       + bytes.fromhex(req["req_hash"]) + b"\0\0" + len(sealed).to_bytes(2, "big") + sealed)
        neg("delivery-map-" + mname, msg, MALFORMED, topic=req["reply_topic"], signer=SENDER,
            request=req["name"])
    # The keys without interval and map: found when opened. A sealed box
    # shorter than any delivery's (48 + 27 bytes) is a layout error at once.
    for mname, plain in (("delivery-without-map", k1), ("delivery-sealed-too-short", b"\x00")):
        sealed = box_seal(plain, eph_pk1, pattern(32, 11, 99))
        msg = ctl_sign(SENDER, req["reply_topic"], ctl_head(2, SENDER.id, T0 + 5)
                       + bytes.fromhex(req["req_hash"]) + b"\0\0" + len(sealed).to_bytes(2, "big") + sealed)
        neg(mname, msg, MALFORMED, topic=req["reply_topic"], signer=SENDER, request=req["name"])
    # Summaries: boot >= 1, part < parts, parts >= 1, number >= 1, 0 < first <= last,
    # exactly last - first + 1 digests per entry, exactly n entries.
    entries = summ["entries"]
    e0, e1 = entries

    def bad_summary(name, *args, n=None, hist=(), tail=None):
        neg("summary-" + name,
            ctl_sign(SENDER, summ["topic"], ctl_head(5, SENDER.id, T0)
                     + summary_body(*args, n=n, hist=hist, tail=tail)), MALFORMED,
            signer=SENDER, base=summ)

    bad_summary("part-equals-parts", 10000, BOOT, 2, 1, 1, entries)
    bad_summary("part-above-parts", 10000, BOOT, 2, 5, 2, entries)
    bad_summary("parts-zero", 10000, BOOT, 2, 0, 0, entries)
    bad_summary("number-zero", 10000, BOOT, 0, 0, 1, entries)
    bad_summary("boot-zero", 10000, 0, 2, 0, 1, entries)
    bad_summary("first-above-last", 10000, BOOT, 2, 0, 1,
                [dict(e0, first=4, last=3, digests=[])])
    bad_summary("first-zero", 10000, BOOT, 2, 0, 1, [dict(e0, first=0, last=2)])
    bad_summary("n-above-entries", 10000, BOOT, 2, 0, 1, entries, n=3)
    bad_summary("n-below-entries", 10000, BOOT, 2, 0, 1, entries, n=1)
    # One digest too few or too many for first..last (in the first and in the
    # last entry: the count is implied, so the layout no longer adds up).
    bad_summary("digests-one-short-first-entry", 10000, BOOT, 2, 0, 1,
                [dict(e0, digests=e0["digests"][:-1]), e1])
    bad_summary("digests-one-extra-last-entry", 10000, BOOT, 2, 0, 1,
                [e0, dict(e1, digests=e1["digests"] + e1["digests"])])
    bad_summary("digests-none", 10000, BOOT, 2, 0, 1, [dict(e1, digests=[])])
    # History: h <= 6, only in part 0, numbers below the summary's, newest
    # first, at most 6 back; ranges with a topic, 0 < first <= last; at most
    # 4096 bytes; the body ends after it.
    r1 = {"number": 1, "ranges": [hrange(9, "t", 1, 2)]}

    def bad_hist(name, number, hist=(), part=0, parts=1, tail=None):
        bad_summary("history-" + name, 10000, BOOT, number, part, parts, entries, hist=hist,
                    tail=tail)

    bad_hist("missing-count-byte", 2, tail=b"")
    bad_hist("in-part-1", 2, [r1], part=1, parts=2)
    bad_hist("count-7", 8, [{"number": 7 - i, "ranges": []} for i in range(7)])
    bad_hist("count-above-records", 2, tail=hist_bytes([r1], h=2))
    bad_hist("number-not-below", 2, [{"number": 2, "ranges": []}])
    bad_hist("number-zero", 2, [{"number": 0, "ranges": []}])
    bad_hist("more-than-6-back", 9, [{"number": 2, "ranges": []}])
    bad_hist("not-newest-first", 5, [{"number": 3, "ranges": []}, {"number": 4, "ranges": []}])
    bad_hist("range-first-zero", 2, [{"number": 1, "ranges": [hrange(9, "t", 0, 2)]}])
    bad_hist("range-first-above-last", 2, [{"number": 1, "ranges": [hrange(9, "t", 3, 2)]}])
    bad_hist("range-empty-topic", 2, [{"number": 1, "ranges": [hrange(9, "", 1, 2)]}])
    bad_hist("trailing-byte", 2, tail=hist_bytes([r1]) + b"\x00")
    bad_hist("over-4096-bytes", 2, [{"number": 1, "ranges": [hrange(9, "x" * 4100, 1, 2)]}])

    names = [x["name"] for x in requests + deliveries + refusals + announces + summaries
             + negative]
    assert len(names) == len(set(names))
    return {"requests": requests, "deliveries": deliveries, "refusals": refusals,
            "announces": announces, "summaries": summaries, "negative": negative}


# --------------------------------------------------------------------------
# sumcheck.json: receiver verdicts on summaries (SPEC 11.6)
# --------------------------------------------------------------------------

SUM_RUN = 0x5EED0100


def build_sumcheck():
    """Sequences of accepted envelopes and arriving SUMMARY parts of one sender,
    each with the reports a receiver MUST give (a multiset: order free). The
    expectations are written by hand from SPEC 11.6, not computed."""
    ctl = announce_topic()
    cases = []

    def env(topic, seq, run=SUM_RUN, forged=False):
        # An insider seals its own plaintext with the same header and key.
        return summary_envelope(run, topic, seq, pt=b"insider" if forged else None)

    def entry(topic, first, last, run=SUM_RUN):
        return {"run": run, "topic": topic, "first": first, "last": last,
                "digests": [d_s(env(topic, s, run)).hex() for s in range(first, last + 1)]}

    def accept(at, topic, seq, run=SUM_RUN, forged=False):
        return {"at": at, "accept": {"run": run, "topic": topic, "seq": seq,
                                     "envelope": env(topic, seq, run, forged).hex()}}

    def held(kind, at, topic, seq, run, forged):
        return {"at": at, kind: {"run": run, "topic": topic, "seq": seq,
                                 "envelope": env(topic, seq, run, forged).hex()}}

    def hold(at, topic, seq, run=SUM_RUN, forged=False):
        # An authentic envelope under a retired key, held (SPEC 11.5).
        return held("hold", at, topic, seq, run, forged)

    def verify(at, topic, seq, run=SUM_RUN, forged=False):
        return held("verify", at, topic, seq, run, forged)

    def summary(at, number, entries, boot=BOOT, part=0, parts=1, hist=()):
        body = summary_body(1000, boot, number, part, parts, entries, hist=hist)
        return {"at": at, "summary": ctl_sign(SENDER, ctl, ctl_head(5, SENDER.id, T0 + at)
                                               + body).hex()}

    def rep(kind, first, last, count):
        return {"kind": kind, "first": first, "last": last, "count": count}

    def case(name, events, reports, window=1024, open_ms=120000):
        cases.append({"name": name, "window": window, "open_ms": open_ms, "events": events,
                      "reports": reports})

    a, b = "plant/a", "plant/b"
    case("all-verified",
         [accept(1, a, 1), accept(2, a, 2), accept(3, a, 3), summary(10, 1, [entry(a, 1, 3)])],
         [rep("VERIFIED", 1, 3, 0)])
    case("forgery-in-an-interval-with-a-loss",
         [accept(1, a, 1), accept(2, a, 3, forged=True), accept(3, a, 4),
          summary(10, 1, [entry(a, 1, 4)])],
         [rep("FORGED", 3, 3, 1), rep("UNCONFIRMED", 1, 4, 1)])
    case("late-arrival-corrects",
         [accept(1, a, 1), accept(2, a, 3), summary(10, 1, [entry(a, 1, 3)]),
          accept(20, a, 2), summary(30, 2, []), summary(40, 3, [])],
         [rep("UNCONFIRMED", 1, 3, 1), rep("LATE", 2, 2, 1)])
    case("late-forgery",
         [accept(1, a, 1), summary(10, 1, [entry(a, 1, 2)]), accept(20, a, 2, forged=True),
          summary(30, 2, []), summary(40, 3, [])],
         [rep("UNCONFIRMED", 1, 2, 1), rep("FORGED", 2, 2, 1)])
    case("unsummarized-after-two-arrivals",
         [accept(1, a, 1), accept(2, a, 1, run=0xBAD0BAD0), summary(10, 1, [entry(a, 1, 1)]),
          summary(20, 2, [])],
         [rep("VERIFIED", 1, 1, 0), rep("UNSUMMARIZED", 1, 1, 1)])
    case("open-closed-by-the-window",
         [accept(1, a, 1), summary(10, 1, [entry(a, 1, 2)])]
         + [accept(20, a, s) for s in range(3, 67)]
         + [summary(30, 2, [entry(a, 3, 66)]), accept(40, a, 2)],
         [rep("UNCONFIRMED", 1, 2, 1), rep("VERIFIED", 3, 66, 0), rep("UNCHECKED", 2, 2, 1)],
         window=64)
    case("open-closed-by-age",
         [accept(1, a, 1), summary(10, 1, [entry(a, 1, 2)]), summary(5010, 2, []),
          accept(5020, a, 2)],
         [rep("UNCONFIRMED", 1, 2, 1), rep("UNCHECKED", 2, 2, 1)], open_ms=5000)
    case("open-expired-without-a-summary",
         [accept(1, a, 1), summary(10, 1, [entry(a, 1, 2)]), accept(5010, a, 2)],
         [rep("UNCONFIRMED", 1, 2, 1), rep("UNCHECKED", 2, 2, 1)], open_ms=5000)
    case("open-still-open-just-before-the-bound",
         [accept(1, a, 1), summary(10, 1, [entry(a, 1, 2)]), accept(5009, a, 2)],
         [rep("UNCONFIRMED", 1, 2, 1), rep("LATE", 2, 2, 1)], open_ms=5000)
    case("replayed-part-in-place-of-the-current-one",
         [accept(1, a, 1), accept(2, b, 1),
          summary(10, 1, [entry(a, 1, 1)], part=0, parts=2),
          summary(10, 1, [entry(b, 1, 1)], part=1, parts=2),
          accept(11, a, 2), accept(12, b, 2),
          summary(20, 2, [entry(a, 2, 2)], part=0, parts=2),
          summary(10, 1, [entry(b, 1, 1)], part=1, parts=2),     # #1's part 1 again
          summary(30, 3, []), summary(40, 4, [])],
         [rep("VERIFIED", 1, 1, 0), rep("VERIFIED", 1, 1, 0), rep("VERIFIED", 2, 2, 0),
          rep("IGNORED", 0, 0, 1), rep("STALLED_PARTS", 1, 1, 2), rep("UNCHECKED", 2, 2, 1)])
    case("gap-in-numbers",
         [accept(1, a, 1), summary(10, 1, [entry(a, 1, 1)]), accept(11, a, 2),
          accept(21, a, 3), summary(30, 3, [entry(a, 3, 3)]), summary(40, 4, [])],
         [rep("VERIFIED", 1, 1, 0), rep("STALLED", 2, 2, 1), rep("VERIFIED", 3, 3, 0),
          rep("UNCHECKED", 2, 2, 1)])
    # History (SPEC 11.6): summaries 2 and 3 were lost; 4 repeats their
    # ranges, so what never arrived of them is counted per stream.
    case("history-counts-what-lost-summaries-held",
         [accept(1, a, 1), summary(10, 1, [entry(a, 1, 1)]), accept(21, a, 3), accept(41, a, 5),
          summary(40, 4, [entry(a, 5, 5)],
                  hist=[{"number": 3, "ranges": [hrange(SUM_RUN, a, 4, 4)]},
                        {"number": 2, "ranges": [hrange(SUM_RUN, a, 2, 3),
                                                 hrange(SUM_RUN, b, 1, 2)]},
                        {"number": 1, "ranges": [hrange(SUM_RUN, a, 1, 1)]}]),
          summary(50, 5, [], hist=[{"number": 4, "ranges": [hrange(SUM_RUN, a, 5, 5)]}])],
         [rep("VERIFIED", 1, 1, 0), rep("STALLED", 2, 3, 2), rep("HIST_LOST", 2, 2, 1),
          rep("HIST_LOST", 4, 4, 1), rep("HIST_LOST", 1, 2, 2), rep("VERIFIED", 5, 5, 0),
          rep("UNCHECKED", 3, 3, 1)])
    case("history-without-a-gap-is-not-used",
         [accept(1, a, 1), summary(10, 1, [entry(a, 1, 1)]),
          summary(20, 2, [], hist=[{"number": 1, "ranges": [hrange(SUM_RUN, a, 1, 3)]}])],
         [rep("VERIFIED", 1, 1, 0)])
    case("restart-and-an-older-run-replayed",
         [accept(1, a, 1), summary(10, 1, [entry(a, 1, 1)], boot=0x11111111),
          accept(21, b, 1, run=SUM_RUN + 1),
          summary(30, 1, [entry(b, 1, 1, run=SUM_RUN + 1)], boot=0x22222222),
          summary(20, 2, [], boot=0x11111111),
          summary(30, 1, [entry(b, 1, 1, run=SUM_RUN + 1)], boot=0x22222222)],
         [rep("VERIFIED", 1, 1, 0), rep("VERIFIED", 1, 1, 0), rep("IGNORED", 0, 0, 1),
          rep("IGNORED", 0, 0, 1)])
    # Retired keys (SPEC 11.5): each hold and verify reports its outcome,
    # HELD_OK (the summary lists its d_s), HELD_FORGED or HELD_WAIT.
    bad = 0xBAD0BAD1
    case("retired-held-then-confirmed-or-forged",
         [accept(1, a, 1), hold(2, a, 2), hold(3, a, 2, forged=True),
          hold(4, a, 1, run=bad, forged=True), summary(10, 1, [entry(a, 1, 2)]),
          verify(11, a, 2), verify(12, a, 2, forged=True), verify(13, a, 1, run=bad, forged=True),
          summary(20, 2, []), summary(30, 3, []), verify(31, a, 1, run=bad, forged=True)],
         [rep("HELD_WAIT", 2, 2, 1), rep("HELD_WAIT", 2, 2, 1), rep("HELD_WAIT", 1, 1, 1),
          rep("VERIFIED", 1, 2, 0), rep("HELD_OK", 2, 2, 1), rep("HELD_FORGED", 2, 2, 1),
          rep("HELD_WAIT", 1, 1, 1), rep("HELD_WAIT", 1, 1, 1)])
    case("retired-summary-came-first",
         [accept(1, a, 1), summary(10, 1, [entry(a, 1, 3)]), hold(11, a, 2, forged=True),
          hold(12, a, 2), hold(13, a, 2, forged=True)],
         [rep("UNCONFIRMED", 1, 3, 2), rep("HELD_FORGED", 2, 2, 1), rep("LATE", 2, 2, 1),
          rep("HELD_OK", 2, 2, 1), rep("HELD_FORGED", 2, 2, 1)])
    case("first-summary-seen-is-not-number-1",
         [accept(1, a, 7), summary(10, 5, []), summary(20, 6, [])],
         [rep("UNCHECKED", 7, 7, 1)])
    return {"sender": {"seed": SENDER.seed.hex(), "sign_pk": SENDER.sign_pk.hex(),
                       "id": SENDER.id},
            "control_topic": ctl, "cases": cases}


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

# --------------------------------------------------------------------------
# signed.json: suite 0x02 (SPEC 3.4)
# --------------------------------------------------------------------------

SUITE_SIGNED = 0x02
SIG_CONTEXT = b"mqtt-e2e/v1/sig\x00"


def sign_envelope(sign_sk, env, topic):
    """Ed25519 over BLAKE2b-512(context || u16 topic length || topic || env)."""
    digest = hashlib.blake2b(SIG_CONTEXT + len(topic).to_bytes(2, "big") + topic + env,
                             digest_size=64).digest()
    return env + nb.crypto_sign(digest, sign_sk)[:64]


def build_signed():
    seed = bytes(range(0x40, 0x60))
    sign_pk, sign_sk = nb.crypto_sign_seed_keypair(seed)
    other_pk, other_sk = nb.crypto_sign_seed_keypair(bytes(range(0x60, 0x80)))
    # The header names the id SPEC 3.3 derives from the signing key: a
    # receiver refuses a (sender, sign_pk) pair that disagrees.
    sid = sender_id_of(sign_pk)
    signer = {"sender": sid, "sign_pk": sign_pk.hex()}
    topic = "alarms/boiler/overheat"
    tb = topic.encode()
    # The sender's map: alarms/ is the signed scope 3, everything else the
    # unsigned scope 4 (an insider of scope 4 holds KEY_C).
    maps = [sender_map(sid, [rule(3, "alarms/#"), rule(4, "#")])]
    positive, negative = [], []

    def signed(h, pt, sk=sign_sk, on=tb, key=KEY_A):
        return sign_envelope(sk, seal(key, h, on, pt), on)

    for name, h, pt in (
            ("signed-empty", hdr(suite=SUITE_SIGNED, sender=sid, counter=1, seq=1), b""),
            ("signed-64", hdr(suite=SUITE_SIGNED, sender=sid, counter=2, seq=2), pattern(64)),
            ("signed-text", hdr(suite=SUITE_SIGNED, sender=sid, counter=3, seq=3),
             b"boiler 1 over 95 C")):
        env = signed(h, pt)
        body = env[:-64]
        digest = hashlib.blake2b(SIG_CONTEXT + len(tb).to_bytes(2, "big") + tb + body,
                                 digest_size=64).digest()
        positive.append({"name": name, "key": KEY_A.hex(), "header": h, "topic": topic,
                         "topic_hex": tb.hex(), "plaintext": pt.hex(), "maps": maps,
                         "signer": dict(signer, seed=seed.hex()),
                         "digest": digest.hex(), "signature": env[-64:].hex(),
                         "envelope": env.hex()})
    h = hdr(suite=SUITE_SIGNED, sender=sid, counter=9, seq=9)
    good = signed(h, pattern(16))
    h4 = dict(h, scope=4, suite=SUITE_V1)
    keys = [dict(key_entry(h, KEY_A), flags=1),   # delivered with E2E_KEY_SIGNED
            key_entry(h4, KEY_C)]

    def neg(name, verdict, env, signers=(signer,), on=topic):
        negative.append({"name": name, "keys": keys, "maps": maps, "signers": list(signers),
                         "topic": on, "topic_hex": on.encode().hex(), "envelope": env.hex(),
                         "verdict": verdict})

    neg("flip-signature", FORGED, flip(good, len(good) - 1, 0))
    neg("signed-by-another-key", FORGED, signed(h, pattern(16), sk=other_sk))
    neg("no-signer-known", FORGED, good, signers=())
    neg("signature-stripped", FORGED, good[:-64] + bytes(64))
    # One byte under the suite 0x02 minimum of 104 (an empty plaintext).
    neg("too-short-for-a-signature-103", MALFORMED, signed(h, b"")[:OVERHEAD + 63])
    neg("re-topicked", FORGED, good, on="alarms/boiler/normal")
    # The shared key alone (an insider) cannot pass in a signed scope, also
    # not by falling back to suite 0x01: the key was delivered flagged signed.
    neg("insider-unsigned-suite-1", FORGED, seal(KEY_A, dict(h, suite=SUITE_V1), tb, b"x"))
    neg("insider-wrong-signer", FORGED, signed(h, b"y", sk=other_sk))
    # An insider of the unsigned scope 4 seals with its own key and scope on a
    # topic of the signed scope: FORGED by the map, signed or not (H1).
    neg("insider-other-scope-key-suite-1", FORGED, seal(KEY_C, h4, tb, b"z"))
    neg("insider-other-scope-key-own-signature", FORGED,
        signed(dict(h4, suite=SUITE_SIGNED), b"z", sk=other_sk, key=KEY_C))
    # Suite 0x02 under an unsigned scope's key is verified like any other:
    # with the sender's signature it is accepted, with another one FORGED.
    neg("unsigned-scope-suite-2-wrong-signer", FORGED,
        signed(dict(h4, suite=SUITE_SIGNED), b"w", sk=other_sk, key=KEY_C,
               on=b"plant/x"), on="plant/x")
    return {"suite": SUITE_SIGNED, "positive": positive, "negative": negative}


def render(obj):
    """Canonical text: sorted keys, 2-space indent, UTF-8 (not \\u escapes, so
    topics appear as their bytes), one trailing newline."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build_state():
    """state.json lives in gen_state.py (SPEC 4.1-4.2, 5.1, 5.8, 6.2, 6.3)."""
    import gen_state                                  # noqa: E402 (imports gen)
    return gen_state.build_state()


def build_cred():
    """cred.json lives in gen_cred.py (SPEC 13.1, 13.3)."""
    import gen_cred                                   # noqa: E402 (imports gen)
    return gen_cred.build_cred()


def build_tickets():
    """tickets.json lives in gen_ticket.py (SPEC 14)."""
    import gen_ticket                                 # noqa: E402 (imports gen)
    return gen_ticket.build_tickets()


def render_all():
    """File name -> exact file text."""
    return {
        "envelope.json": render(build_envelope()),
        "window.json": render(build_window()),
        "tx.json": render(build_tx()),
        "identity.json": render(build_identity()),
        "control.json": render(build_control()),
        "signed.json": render(build_signed()),
        "state.json": render(build_state()),
        "sumcheck.json": render(build_sumcheck()),
        "cred.json": render(build_cred()),
        "tickets.json": render(build_tickets()),
    }


def main(argv):
    outdir = argv[1] if len(argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for name, text in render_all().items():
        path = os.path.join(outdir, name)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
        print("wrote %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
