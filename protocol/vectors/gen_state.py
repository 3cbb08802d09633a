"""state.json: persisted state and bounded receivers (SPEC 4.1-4.2, 5.1, 5.8, 6.2, 6.3).

Imported by gen.py (render_all). A reference model written from the SPEC:

- reservation files (6.2): records -> exact bytes, and damaged files a reader
  MUST refuse;
- bounded receivers (5.8): a small stream table, its forgotten list and the
  per-key replay floors, driven by authentic envelopes; every verdict and the
  receiver file (6.3, version 2) written at the end, byte for byte (records in
  least-recently-used order, as a conforming writer SHOULD);
- a version 1 receiver file and what a reader must make of it;
- sender runs (5.1) and limits (4.1-4.2): when a new run starts, how counters
  continue, which ceilings are reserved, where sealing stops.

Receiver tables keep the libe2e order rules: a new or authentic stream becomes
most recently used; a forgotten entry that is remembered again moves to the
most recent end; a floor moves there whenever it is folded into.
"""

import hashlib
from collections import OrderedDict

from nacl import bindings as nb

import gen

TX_MAGIC = b"E2ETX1\0\0"
RX_MAGIC = b"E2ERX2\0\0"
RX_MAGIC_V1 = b"E2ERX1\0\0"


def u32(v):
    return v.to_bytes(4, "big")


def u64(v):
    return v.to_bytes(8, "big")


def with_sum(body):
    return body + hashlib.blake2b(body, digest_size=32).digest()


# --------------------------------------------------------------------------
# 6.2 reservation file
# --------------------------------------------------------------------------

def tx_file(records, sort=True):
    recs = sorted(records, key=lambda r: (r[0], r[1], r[2])) if sort else records
    body = TX_MAGIC + u32(len(recs))
    for sender, scope, epoch, ceiling in recs:
        body += u32(sender) + bytes([scope, 0, 0, 0]) + u32(epoch) + u64(ceiling)
    return with_sum(body)


def reseal(data):
    return with_sum(data[:-32])


def build_reservations():
    recs = [(gen.SENDER_A, 3, 7, 65536), (gen.SENDER_A, 3, 8, 131072),
            (gen.SENDER_A, 0, 1_700_000_000, 1), (0xFFFFFFFF, 255, 0xFFFFFFFF, gen.COUNTER_MAX),
            (0, 0, 0, 0)]
    good = tx_file(recs)
    assert len(good) == 44 + 20 * len(recs)
    positive = [
        {"name": "five-records", "records": [
            {"sender": s, "scope": c, "epoch": e, "ceiling": v}
            for s, c, e, v in sorted(recs)], "file": good.hex()},
        {"name": "empty", "records": [], "file": tx_file([]).hex()},
    ]
    bad = []

    def neg(name, data):
        bad.append({"name": name, "file": data.hex(), "error": "CORRUPT"})

    neg("truncated-by-one", good[:-1])
    neg("one-byte-appended", good + b"\0")
    neg("count-says-six", reseal(good[:8] + u32(6) + good[12:]))
    neg("bad-magic", reseal(b"E2ETX2\0\0" + good[8:]))
    neg("bad-checksum", good[:-1] + bytes([good[-1] ^ 1]))
    flipped = bytearray(good)
    flipped[12 + 20 + 4 + 1] = 1          # pad byte of the second record
    neg("non-zero-padding", reseal(bytes(flipped)))
    dup = [recs[0], recs[0]]
    neg("duplicate-key", tx_file(dup, sort=False))
    neg("too-short-for-a-header", with_sum(TX_MAGIC[:6]))
    return positive, bad


# --------------------------------------------------------------------------
# 5.8 bounded receiver and 6.3 receiver file
# --------------------------------------------------------------------------

def topic_hash(hash_key, topic):
    return int.from_bytes(nb.crypto_shorthash_siphash24(topic, hash_key), "little")


class Stream:
    def __init__(self, window):
        self.w = gen.Window(window)
        self.scope = self.epoch = self.ctr = 0
        self.low = 0


class BoundedReceiver:
    """SPEC 5.4 + 5.8 with max_streams streams, as many forgotten entries and
    max_floors floors. Keys never expire here: a key is held iff listed."""

    def __init__(self, keys, window, max_streams, max_floors, hash_key):
        self.keys = dict(keys)
        self.window, self.max_streams, self.max_floors = window, max_streams, max_floors
        self.hash_key = hash_key
        self.streams = OrderedDict()    # (sender, run, th) -> Stream, LRU first
        self.gone = OrderedDict()       # (sender, run, th) -> (top, scope, epoch, ctr)
        self.floors = OrderedDict()     # (sender, scope, epoch) -> ctr
        self.floors_dropped = 0

    def fold(self, sender, scope, epoch, ctr):
        if ctr == 0:
            self.floors_dropped += 1
            return
        k = (sender, scope, epoch)
        if k in self.floors:
            self.floors[k] = max(self.floors[k], ctr)
            self.floors.move_to_end(k)
            return
        if len(self.floors) == self.max_floors:
            victim = next((f for f in self.floors if f not in self.keys), None)
            if victim is None:
                victim = next(iter(self.floors))
                self.floors_dropped += 1
            del self.floors[victim]
        self.floors[k] = ctr

    def remember(self, sid, top, scope, epoch, ctr):
        if sid in self.gone:
            self.gone.move_to_end(sid)
        elif len(self.gone) == self.max_streams:
            old_sid, (_top, s, e, c) = self.gone.popitem(last=False)
            self.fold(old_sid[0], s, e, c)
        self.gone[sid] = (top, scope, epoch, ctr)

    def track(self, sid):
        if len(self.streams) == self.max_streams:
            old_sid, old = self.streams.popitem(last=False)
            self.remember(old_sid, old.w.top, old.scope, old.epoch, old.ctr)
        st = Stream(self.window)
        self.streams[sid] = st
        return st

    def floor_of(self, h):
        return self.floors.get((h["sender"], h["scope"], h["epoch"]), 0)

    def receive(self, topic, env):
        h, bad = gen.parse_header(env)
        if bad:
            return bad, 0
        key = self.keys.get((h["sender"], h["scope"], h["epoch"]))
        if key is None:
            return gen.UNKNOWN_KEY, 0
        sid = (h["sender"], h["run"], topic_hash(self.hash_key, topic))
        gap = 0
        if sid in self.streams:
            st = self.streams[sid]
            verdict, gap = st.w.check(h["seq"])
            if verdict in (gen.OK, gen.GAP, gen.LATE) and h["counter"] <= st.low:
                verdict, gap = "FORGOTTEN", 0
        elif sid in self.gone:
            top = self.gone[sid][0]
            if h["seq"] <= top:
                verdict = "FORGOTTEN"
            else:
                gap = h["seq"] - top - 1
                verdict = gen.GAP if gap else gen.OK
        else:
            verdict = "FORGOTTEN" if h["counter"] <= self.floor_of(h) else gen.OK
        if verdict in (gen.DUPLICATE, gen.TOO_OLD):
            return verdict, 0
        head = bytes(env[:gen.HEADER_BYTES])
        try:
            nb.crypto_aead_xchacha20poly1305_ietf_decrypt(
                bytes(env[gen.HEADER_BYTES:]), head + topic, head, key)
        except gen.CryptoError:
            return gen.FORGED, 0
        if verdict == "FORGOTTEN":
            return verdict, 0
        if sid in self.streams:
            st = self.streams[sid]
            self.streams.move_to_end(sid)
        else:
            gone = self.gone.pop(sid, None)
            low = 0 if gone else self.floor_of(h)
            st = self.track(sid)
            st.low = low
            if gone:
                top, st.scope, st.epoch, st.ctr = gone
                resume(st.w, top)
        if st.ctr and (st.scope, st.epoch) != (h["scope"], h["epoch"]):
            self.fold(h["sender"], st.scope, st.epoch, st.ctr)
            st.ctr = 0
        st.scope, st.epoch = h["scope"], h["epoch"]
        st.ctr = max(st.ctr, h["counter"])
        st.w.update(h["seq"])
        return verdict, gap

    def file(self):
        """The version 2 receiver file (SPEC 6.3)."""
        body = (RX_MAGIC + u32(self.window) + u32(len(self.streams)) + u32(len(self.gone))
                + u32(len(self.floors)) + self.hash_key)
        for (sender, run, th), st in self.streams.items():
            body += (u32(sender) + u32(run) + u64(th) + keyctr(st.scope, st.epoch, st.ctr)
                     + u64(st.low) + u64(st.w.top) + u64(st.w.base) + u64(st.w.received)
                     + b"".join(u64(x) for x in st.w.bits))
        for (sender, run, th), (top, scope, epoch, ctr) in self.gone.items():
            body += u32(sender) + u32(run) + u64(th) + keyctr(scope, epoch, ctr) + u64(top)
        for (sender, scope, epoch), ctr in self.floors.items():
            body += u32(sender) + keyctr(scope, epoch, ctr)
        return with_sum(body)

    def file_v1(self):
        """The same state as a version 1 file (no keys, counters, low marks, floors)."""
        body = (RX_MAGIC_V1 + u32(self.window) + u32(len(self.streams)) + u32(len(self.gone))
                + self.hash_key)
        for (sender, run, th), st in self.streams.items():
            body += (u32(sender) + u32(run) + u64(th) + u64(st.w.top) + u64(st.w.base)
                     + u64(st.w.received) + b"".join(u64(x) for x in st.w.bits))
        for (sender, run, th), (top, _s, _e, _c) in self.gone.items():
            body += u32(sender) + u32(run) + u64(th) + u64(top)
        return with_sum(body)

    def forget_keys(self):
        """What loading a version 1 file leaves: keys and counters unknown."""
        for st in self.streams.values():
            st.scope = st.epoch = st.ctr = st.low = 0
        for sid, (top, _s, _e, _c) in list(self.gone.items()):
            self.gone[sid] = (top, 0, 0, 0)
        self.floors.clear()


def keyctr(scope, epoch, ctr):
    return bytes([scope, 0, 0, 0]) + u32(epoch) + u64(ctr)


def resume(w, top):
    """5.8: top = T, base = T + 1, received = 0, every bitmap word all ones but
    the word of T, which holds exactly bits 0..(T mod 64)."""
    ones = (1 << 64) - 1
    w.bits = [ones] * w.nwords
    w.bits[(top >> 6) % w.nwords] = ones if top & 63 == 63 else (1 << ((top & 63) + 1)) - 1
    w.top, w.base, w.received = top, top + 1, 0


HASH_KEY = bytes(range(0xA0, 0xB0))
KEY_S1E1, KEY_S1E2 = gen.KEY_A, gen.KEY_B


class Feed:
    """A conforming sender of one identity: one counter per key, runs chosen
    by the test, envelopes sealed and kept for replays."""

    def __init__(self):
        self.counters = {}
        self.sent = []

    def env(self, topic, run, seq, scope=1, epoch=1, key=None, counter=None):
        k = (scope, epoch)
        if counter is None:
            counter = self.counters.get(k, 0) + 1
            self.counters[k] = counter
        key = key or (KEY_S1E1 if epoch == 1 else KEY_S1E2)
        h = gen.hdr(scope=scope, epoch=epoch, sender=gen.SENDER_A, run=run,
                    counter=counter, seq=seq)
        e = gen.seal(key, h, topic.encode("utf-8"), ("%s#%d" % (topic, seq)).encode())
        self.sent.append((topic, e))
        return topic, e


def run_case(name, window, max_streams, max_floors, events, expect=None, v1_then=None):
    keys = {(gen.SENDER_A, 1, 1): KEY_S1E1, (gen.SENDER_A, 1, 2): KEY_S1E2}
    rx = BoundedReceiver(keys, window, max_streams, max_floors, HASH_KEY)
    out = []
    for topic, env in events:
        v, g = rx.receive(topic.encode("utf-8"), env)
        out.append({"topic": topic, "envelope": env.hex(), "verdict": v, "gap": g})
    if expect:
        got = [e["verdict"] for e in out]
        assert got == expect, (name, got)
    case = {"name": name, "window": window, "max_streams": max_streams,
            "max_floors": max_floors, "hash_key": HASH_KEY.hex(),
            "keys": [{"sender": s, "scope": c, "epoch": e, "key": k.hex()}
                     for (s, c, e), k in sorted(keys.items())],
            "events": out, "file": rx.file().hex(),
            "floors": len(rx.floors), "streams": len(rx.streams),
            "forgotten": len(rx.gone), "floors_dropped": rx.floors_dropped}
    if v1_then is not None:
        case["file_v1"] = rx.file_v1().hex()
        rx.forget_keys()
        after = []
        for topic, env in v1_then:
            v, g = rx.receive(topic.encode("utf-8"), env)
            after.append({"topic": topic, "envelope": env.hex(), "verdict": v, "gap": g})
        case["after_v1_load"] = after
    return case


def build_receivers():
    cases = []
    OK, GAP, DUP, LATE, FG = gen.OK, gen.GAP, gen.DUPLICATE, gen.LATE, "FORGOTTEN"
    R1, R2 = 0x0000A001, 0x0000B002

    # Forgotten and resumed (5.8): table of 2, forgotten list of 2.
    f = Feed()
    a1, a2 = f.env("a", R1, 1), f.env("a", R1, 2)
    b1 = f.env("b", R1, 1)
    ev = [a1, a2, b1, f.env("c", R1, 1),        # c evicts a (top 2)
          a2, a1,                                # FORGOTTEN, nothing moves
          f.env("a", R1, 5),                     # resumes: GAP(2), evicts b
          a2, f.env("a", R1, 4),                 # DUPLICATE (resumed bits), LATE
          b1, f.env("b", R1, 2)]                 # b remembered: FORGOTTEN, then resumes OK
    cases.append(run_case("forgotten-and-resumed", 64, 2, 8, ev,
                          [OK, OK, OK, OK, FG, FG, GAP, DUP, LATE, FG, OK]))

    # Replay floors: more streams than table + list; every replay suppressed.
    f = Feed()
    first = [f.env("a", R1, 1), f.env("a", R1, 2)]
    others = [f.env("s%d" % i, R2, 1) for i in range(6)]
    ev = first + others + first + [f.env("a", R1, 3), first[1], others[0], others[5]]
    cases.append(run_case("replay-floor-after-many-streams", 64, 2, 8, ev,
                          [OK] * 8 + [FG, FG, OK, FG, FG, DUP]))

    # Two keys (a rotation = a new run), floors per key, a full floor table
    # keeps the key still held (both are) and drops the oldest.
    f = Feed()
    e1 = [f.env("k1/%d" % i, R1, 1, epoch=1) for i in range(3)]
    e2 = [f.env("k2/%d" % i, R2, 1, epoch=2) for i in range(3)]
    ev = e1 + e2 + [e1[0], e2[0]]
    cases.append(run_case("floor-table-too-small", 64, 1, 1, ev,
                          [OK] * 6 + [OK, FG]))
    assert cases[-1]["floors_dropped"] == 1

    # A version 1 file: the same windows and forgotten list, no keys: what it
    # recorded stays protected; nothing else is.
    f = Feed()
    x = [f.env("x", R1, s) for s in (1, 2, 3)]
    y1 = f.env("y", R1, 1)
    z1 = f.env("z", R1, 1)
    ev = x + [y1, z1]                            # table of 2: x forgotten (top 3)
    then = [x[1], y1, f.env("x", R1, 4), z1]
    cases.append(run_case("version-1-file", 64, 2, 8, ev, [OK] * 5, v1_then=then))
    assert [e["verdict"] for e in cases[-1]["after_v1_load"]] == [FG, DUP, OK, DUP]
    return cases


def build_receiver_negatives(good_case):
    good = bytes.fromhex(good_case["file"])
    bad = []

    def neg(name, data, error="CORRUPT"):
        bad.append({"name": name, "file": data.hex(), "error": error})

    head = 40
    neg("truncated-by-one", good[:-1])
    neg("bad-magic", reseal(b"E2ERX3\0\0" + good[8:]))
    neg("bad-checksum", good[:-1] + bytes([good[-1] ^ 1]))
    neg("window-128", reseal(good[:8] + u32(128) + good[12:]), "VERSION")
    neg("nfloors-off-by-one", reseal(good[:20] + u32(int.from_bytes(good[20:24], "big") + 1)
                                     + good[24:]))
    b = bytearray(good)
    b[head + 17] = 1                              # pad after the first stream's scope
    neg("non-zero-padding", reseal(bytes(b)))
    b = bytearray(good)
    b[head + 32:head + 40] = b[head + 24:head + 32]   # low = counter
    neg("low-not-below-counter", reseal(bytes(b)))
    b = bytearray(good)
    b[head + 16] = 5                              # scope 5 with counter ...
    b[head + 24:head + 32] = u64(0)               # ... 0 = unknown key
    b[head + 32:head + 40] = u64(0)
    neg("unknown-key-with-scope", reseal(bytes(b)))
    return bad


# --------------------------------------------------------------------------
# 5.1 runs and 4.1-4.2 limits (sender)
# --------------------------------------------------------------------------

def tx_runs(name, max_topics, floor, block, limit, topics):
    """Which seal starts a new run (0, 1, ...), its counter and seq, and the
    ceilings stored; EXHAUSTED once the counter would pass the limit."""
    limit = min(limit, gen.COUNTER_MAX)
    counter = ceiling = floor
    reserved, out = [], []
    if counter >= limit:
        return {"name": name, "max_topics": max_topics, "counter_floor": floor, "block": block,
                "limit": limit, "topics": topics, "start": "EXHAUSTED", "reserved": [],
                "expect": []}
    ceiling = min(ceiling + block, limit)
    reserved.append(ceiling)
    run, seqs = 0, OrderedDict()
    for t in topics:
        if counter >= limit:
            out.append("EXHAUSTED")
            continue
        if counter == ceiling:
            ceiling = min(ceiling + block, limit)
            reserved.append(ceiling)
        if t not in seqs and len(seqs) == max_topics:
            run, seqs = run + 1, OrderedDict()
        if t in seqs and seqs[t] == gen.SEQ_MAX:
            run, seqs = run + 1, OrderedDict()
        seqs[t] = seqs.get(t, 0) + 1
        seqs.move_to_end(t)
        counter += 1
        out.append({"run": run, "counter": counter, "seq": seqs[t]})
    return {"name": name, "max_topics": max_topics, "counter_floor": floor, "block": block,
            "limit": limit, "topics": topics, "start": "OK", "reserved": reserved,
            "expect": out}


def build_tx_runs():
    cases = [
        tx_runs("table-full-starts-a-new-run", 2, 100, 65536, 1 << 32,
                ["a", "b", "a", "c", "a", "b"]),
        tx_runs("blocks-and-the-limit", 4, 0, 3, 7, ["t"] * 9),
        tx_runs("floor-at-limit-refuses-to-start", 4, 7, 3, 7, ["t"]),
        tx_runs("limit-clamped-to-counter-max", 4, gen.COUNTER_MAX - 2, 65536, 1 << 60,
                ["t"] * 3),
    ]
    assert [e["run"] for e in cases[0]["expect"]] == [0, 0, 0, 1, 1, 2]
    assert cases[1]["reserved"] == [3, 6, 7] and cases[1]["expect"][7:] == ["EXHAUSTED"] * 2
    assert cases[3]["expect"][-1] == "EXHAUSTED"
    return cases


def build_state():
    rpos, rneg = build_reservations()
    receivers = build_receivers()
    return {"reservation_files": rpos, "reservation_negative": rneg,
            "receivers": receivers,
            "receiver_negative": build_receiver_negatives(receivers[0]),
            "tx_runs": build_tx_runs()}
