"""Independent check of state.json (imported by check.py).

Written from SPEC 4.1-4.2, 5.1, 5.8, 6.2 and 6.3 apart from gen_state.py:
files are decoded with struct and every reader rule of the SPEC; the bounded
receiver keeps each window as a set of accepted seqs plus the remembered top
of a resumed stream, its tables as plain lists in least-recently-used order,
and rebuilds the ring bitmap only to compare the file bit for bit.
"""

import hashlib
import struct

from nacl import bindings as nb
from nacl.exceptions import CryptoError

COUNTER_MAX = (1 << 48) - 1
TX_REC = struct.Struct(">IB3sIQ")
KEYCTR = struct.Struct(">B3sIQ")


class Reject(Exception):
    def __init__(self, error):
        super().__init__(error)
        self.error = error


def checksum_ok(data):
    return len(data) >= 40 and hashlib.blake2b(data[:-32], digest_size=32).digest() == data[-32:]


# ---------------------------------------------------------------- 6.2

def decode_tx(data):
    if len(data) < 44 or data[:8] != b"E2ETX1\0\0":
        raise Reject("CORRUPT")
    (n,) = struct.unpack_from(">I", data, 8)
    if len(data) != 44 + 20 * n or not checksum_ok(data):
        raise Reject("CORRUPT")
    recs, seen = [], set()
    for i in range(n):
        sender, scope, pad, epoch, ceiling = TX_REC.unpack_from(data, 12 + 20 * i)
        if pad != b"\0\0\0" or (sender, scope, epoch) in seen or ceiling > COUNTER_MAX:
            raise Reject("CORRUPT")
        seen.add((sender, scope, epoch))
        recs.append({"sender": sender, "scope": scope, "epoch": epoch, "ceiling": ceiling})
    return recs


# ---------------------------------------------------------------- 6.3

def read_keyctr(data, off):
    scope, pad, epoch, ctr = KEYCTR.unpack_from(data, off)
    if pad != b"\0\0\0" or ctr > COUNTER_MAX or (ctr == 0 and (scope or epoch)):
        raise Reject("CORRUPT")
    return scope, epoch, ctr


def decode_rx(data, window, max_streams, max_floors):
    """Both versions; version 1 records get key (0, 0) and counter 0."""
    if len(data) < 8 + 32:
        raise Reject("CORRUPT")
    v1 = data[:8] == b"E2ERX1\0\0"
    if not v1 and data[:8] != b"E2ERX2\0\0":
        raise Reject("CORRUPT")
    if not checksum_ok(data):
        raise Reject("CORRUPT")
    head = 36 if v1 else 40
    if len(data) < head + 32:
        raise Reject("CORRUPT")
    w, ns, ng = struct.unpack_from(">III", data, 8)
    nf = 0 if v1 else struct.unpack_from(">I", data, 20)[0]
    words = w // 64 + 1
    slen = (40 if v1 else 64) + 8 * words
    glen = 24 if v1 else 40
    if w != window:
        raise Reject("VERSION")
    if ns > max_streams or ng > max_streams or nf > max_floors or \
            len(data) != head + ns * slen + ng * glen + 20 * nf + 32:
        raise Reject("CORRUPT")
    hash_key = data[head - 16:head]
    off, streams, gone, floors, ids = head, [], [], [], set()
    for _ in range(ns):
        sender, run, th = struct.unpack_from(">IIQ", data, off)
        if v1:
            scope = epoch = ctr = low = 0
            p = off + 16
        else:
            scope, epoch, ctr = read_keyctr(data, off + 16)
            (low,) = struct.unpack_from(">Q", data, off + 32)
            p = off + 40
        top, base, received = struct.unpack_from(">QQQ", data, p)
        bits = list(struct.unpack_from(">%dQ" % words, data, p + 24))
        if run == 0 or base == 0 or top < base or received == 0 or \
                received > top - base + 1 or (ctr and ctr <= low) or low > COUNTER_MAX:
            raise Reject("CORRUPT")
        if not (bits[(top >> 6) % words] >> (top & 63)) & 1:
            raise Reject("CORRUPT")
        if (sender, run, th) in ids:
            raise Reject("CORRUPT")
        ids.add((sender, run, th))
        streams.append({"id": (sender, run, th), "key": (scope, epoch), "ctr": ctr, "low": low,
                        "top": top, "base": base, "received": received, "bits": bits})
        off += slen
    for _ in range(ng):
        sender, run, th = struct.unpack_from(">IIQ", data, off)
        if v1:
            scope = epoch = ctr = 0
            (top,) = struct.unpack_from(">Q", data, off + 16)
        else:
            scope, epoch, ctr = read_keyctr(data, off + 16)
            (top,) = struct.unpack_from(">Q", data, off + 32)
        if run == 0 or top == 0 or (sender, run, th) in ids:
            raise Reject("CORRUPT")
        ids.add((sender, run, th))
        gone.append({"id": (sender, run, th), "key": (scope, epoch), "ctr": ctr, "top": top})
        off += glen
    fkeys = set()
    for _ in range(nf):
        (sender,) = struct.unpack_from(">I", data, off)
        scope, epoch, ctr = read_keyctr(data, off + 4)
        if ctr == 0 or (sender, scope, epoch) in fkeys:
            raise Reject("CORRUPT")
        fkeys.add((sender, scope, epoch))
        floors.append({"key": (sender, scope, epoch), "ctr": ctr})
        off += 20
    return {"version": 1 if v1 else 2, "hash_key": hash_key, "streams": streams,
            "forgotten": gone, "floors": floors}


# ---------------------------------------------------------------- 5.8 model

class Win:
    def __init__(self, size, resumed_top=0):
        self.size, self.upto = size, resumed_top     # every seq <= upto reads as seen
        self.seen = set()
        self.top, self.base = resumed_top, resumed_top + 1 if resumed_top else 0

    def is_seen(self, s):
        return (self.upto and s <= self.upto) or s in self.seen

    def check(self, s):
        if self.top == 0:
            return "OK", 0
        if s > self.top:
            return ("GAP", s - self.top - 1) if s > self.top + 1 else ("OK", 0)
        if self.top - s >= self.size:
            return "TOO_OLD", 0
        return ("DUPLICATE", 0) if self.is_seen(s) else ("LATE", 0)

    def update(self, s):
        if self.top == 0:
            self.base = s
        elif s < self.base and not self.upto:
            self.base = s
        self.top = max(self.top, s)
        self.seen.add(s)

    def ring(self):
        n = self.size // 64 + 1
        out = [0] * n
        tb = self.top >> 6
        for b in range(tb - n + 1, tb + 1):
            word = 0
            for i in range(64):
                if self.is_seen(64 * b + i):
                    word |= 1 << i
            out[b % n] = word
        return out


class Model:
    def __init__(self, case):
        self.case = case
        self.keys = {(k["sender"], k["scope"], k["epoch"]): bytes.fromhex(k["key"])
                     for k in case["keys"]}
        self.hk = bytes.fromhex(case["hash_key"])
        self.n, self.nf, self.W = case["max_streams"], case["max_floors"], case["window"]
        self.streams = []     # [sid, key, ctr, low, Win], least recently used first
        self.gone = []        # [sid, key, ctr, top]
        self.floors = []      # [(sender, scope, epoch), ctr]
        self.dropped = 0

    def find(self, table, sid):
        for i, e in enumerate(table):
            if e[0] == sid:
                return i
        return None

    def floor(self, k):
        for fk, c in self.floors:
            if fk == k:
                return c
        return 0

    def fold(self, sender, key, ctr):
        if ctr == 0:
            self.dropped += 1
            return
        k = (sender,) + key
        for i, (fk, c) in enumerate(self.floors):
            if fk == k:
                self.floors.append([k, max(c, ctr)])
                del self.floors[i]
                return
        if len(self.floors) == self.nf:
            idx = next((i for i, (fk, _c) in enumerate(self.floors) if fk not in self.keys), None)
            if idx is None:
                idx, self.dropped = 0, self.dropped + 1
            del self.floors[idx]
        self.floors.append([k, ctr])

    def remember(self, sid, key, ctr, top):
        i = self.find(self.gone, sid)
        if i is not None:
            del self.gone[i]
        elif len(self.gone) == self.n:
            old = self.gone.pop(0)
            self.fold(old[0][0], old[1], old[2])
        self.gone.append([sid, key, ctr, top])

    def receive(self, topic, env):
        if len(env) < 40 or env[0] != 1:
            return "MALFORMED", 0
        suite, scope, epoch, sender, run = struct.unpack_from(">BBIII", env)
        counter = int.from_bytes(env[14:20], "big")
        (seq,) = struct.unpack_from(">I", env, 20)
        if run == 0 or counter == 0 or seq == 0:
            return "MALFORMED", 0
        key = self.keys.get((sender, scope, epoch))
        if key is None:
            return "UNKNOWN_KEY", 0
        th = int.from_bytes(nb.crypto_shorthash_siphash24(topic, self.hk), "little")
        sid = (sender, run, th)
        si, gi = self.find(self.streams, sid), self.find(self.gone, sid)
        gap = 0
        if si is not None:
            v, gap = self.streams[si][4].check(seq)
            if v in ("OK", "GAP", "LATE") and counter <= self.streams[si][3]:
                v, gap = "FORGOTTEN", 0
        elif gi is not None:
            t = self.gone[gi][3]
            v, gap = ("FORGOTTEN", 0) if seq <= t else (("GAP", seq - t - 1) if seq > t + 1
                                                      else ("OK", 0))
        else:
            v = "FORGOTTEN" if counter <= self.floor((sender, scope, epoch)) else "OK"
        if v in ("DUPLICATE", "TOO_OLD"):
            return v, 0
        try:
            nb.crypto_aead_xchacha20poly1305_ietf_decrypt(bytes(env[24:]), bytes(env[:24]) + topic,
                                                          bytes(env[:24]), key)
        except CryptoError:
            return "FORGED", 0
        if v == "FORGOTTEN":
            return v, 0
        if si is not None:
            ent = self.streams.pop(si)
        else:
            g = self.gone.pop(gi) if gi is not None else None
            low = 0 if g else self.floor((sender, scope, epoch))
            if len(self.streams) == self.n:
                old = self.streams.pop(0)
                self.remember(old[0], old[1], old[2], old[4].top)
            if g:
                ent = [sid, g[1], g[2], 0, Win(self.W, g[3])]
            else:
                ent = [sid, (0, 0), 0, low, Win(self.W)]
        if ent[2] and ent[1] != (scope, epoch):
            self.fold(sender, ent[1], ent[2])
            ent[2] = 0
        ent[1], ent[2] = (scope, epoch), max(ent[2], counter)
        ent[4].update(seq)
        self.streams.append(ent)
        return v, gap

    def strip_keys(self):
        for e in self.streams:
            e[1], e[2], e[3] = (0, 0), 0, 0
        for g in self.gone:
            g[1], g[2] = (0, 0), 0
        self.floors = []

    def compare(self, dec, f, where, keys=True):
        f.expect(dec["hash_key"] == self.hk, where, "hash key")
        f.expect([s["id"] for s in dec["streams"]] == [e[0] for e in self.streams], where,
                 "stream records or their order")
        for s, e in zip(dec["streams"], self.streams):
            w = e[4]
            want = {"top": w.top, "base": w.base, "received": len(w.seen), "bits": w.ring()}
            if keys:
                want.update({"key": e[1], "ctr": e[2], "low": e[3]})
            got = {k: s[k] for k in want}
            f.expect(got == want, where, "stream %r: %r != %r" % (e[0], got, want))
        f.expect([(g["id"], g["top"]) + ((g["key"], g["ctr"]) if keys else ())
                  for g in dec["forgotten"]] ==
                 [(g[0], g[3]) + ((g[1], g[2]) if keys else ()) for g in self.gone],
                 where, "forgotten records")
        if keys:
            f.expect([(x["key"], x["ctr"]) for x in dec["floors"]] ==
                     [(k, c) for k, c in self.floors], where, "floor records")


def run_events(model, events, f, where):
    for i, ev in enumerate(events):
        v, g = model.receive(ev["topic"].encode("utf-8"), bytes.fromhex(ev["envelope"]))
        f.expect((v, g) == (ev["verdict"], ev["gap"]), "%s event %d" % (where, i),
                 "%s/%d, vector says %s/%d" % (v, g, ev["verdict"], ev["gap"]))
    return len(events)


# ---------------------------------------------------------------- 5.1, 4.1-4.2

def simulate_tx(c):
    limit = min(c["limit"], COUNTER_MAX)
    counter = ceiling = c["counter_floor"]
    if counter >= limit:
        return "EXHAUSTED", [], []
    reserved = []
    ceiling = min(ceiling + c["block"], limit)
    reserved.append(ceiling)
    run, topics, out = 0, {}, []
    for t in c["topics"]:
        if counter == limit:
            out.append("EXHAUSTED")
            continue
        if counter == ceiling:
            ceiling = min(ceiling + c["block"], limit)
            reserved.append(ceiling)
        if t not in topics and len(topics) >= c["max_topics"]:
            run, topics = run + 1, {}
        topics[t] = topics.get(t, 0) + 1
        counter += 1
        out.append({"run": run, "counter": counter, "seq": topics[t]})
    return "OK", reserved, out


# ---------------------------------------------------------------- entry

def check_state(doc, f):
    n = 0
    for c in doc["reservation_files"]:
        data = bytes.fromhex(c["file"])
        try:
            f.expect(decode_tx(data) == c["records"], c["name"], "records differ")
        except Reject as e:
            f.expect(False, c["name"], "refused: %s" % e.error)
        n += 1
    for c in doc["reservation_negative"]:
        try:
            decode_tx(bytes.fromhex(c["file"]))
            f.expect(False, c["name"], "accepted")
        except Reject as e:
            f.expect(e.error == c["error"], c["name"], "%s, vector says %s" % (e.error, c["error"]))
        n += 1
    for c in doc["receivers"]:
        m = Model(c)
        n += run_events(m, c["events"], f, c["name"])
        try:
            dec = decode_rx(bytes.fromhex(c["file"]), c["window"], c["max_streams"],
                            c["max_floors"])
            f.expect(dec["version"] == 2, c["name"], "writers write version 2")
            m.compare(dec, f, c["name"])
            f.expect((len(dec["streams"]), len(dec["forgotten"]), len(dec["floors"])) ==
                     (c["streams"], c["forgotten"], c["floors"]), c["name"], "counts")
        except Reject as e:
            f.expect(False, c["name"], "file refused: %s" % e.error)
        f.expect(m.dropped == c["floors_dropped"], c["name"], "floors_dropped")
        if "file_v1" in c:
            try:
                dec = decode_rx(bytes.fromhex(c["file_v1"]), c["window"], c["max_streams"],
                                c["max_floors"])
                m.strip_keys()
                m.compare(dec, f, c["name"] + " v1", keys=False)
            except Reject as e:
                f.expect(False, c["name"], "version 1 file refused: %s" % e.error)
            n += run_events(m, c["after_v1_load"], f, c["name"] + " after v1 load")
    good = doc["receivers"][0]
    for c in doc["receiver_negative"]:
        try:
            decode_rx(bytes.fromhex(c["file"]), good["window"], good["max_streams"],
                      good["max_floors"])
            f.expect(False, c["name"], "accepted")
        except Reject as e:
            f.expect(e.error == c["error"], c["name"], "%s, vector says %s" % (e.error, c["error"]))
        n += 1
    for c in doc["tx_runs"]:
        start, reserved, out = simulate_tx(c)
        f.expect((start, reserved, out) == (c["start"], c["reserved"], c["expect"]), c["name"],
                 "runs, counters or reservations differ")
        n += 1
    return n
