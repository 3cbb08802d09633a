#!/usr/bin/python3
"""Data-plane attacks of the malicious broker, one per topic, decided by a
seeded PRNG per (seed, client id, topic): the same seed gives the same choices
for the same arrivals. Each attack sees the broker->subscriber PUBLISHes of
its topic in arrival order and uses the Link API of mitm.py (forward, drop
with the Mitm's own PUBACK upstream, inject, later). Counters of what was
done are kept per topic for the report.
"""
import collections
import random
import struct

from nacl import bindings as nb

import mitm as mm

HDR, TAG = 24, 16


class TopicState:
    def __init__(self, rng, n):
        self.rng, self.n = rng, n
        self.i = -1                 # arrival index within the topic
        self.hist = []              # envelopes forwarded unchanged, in order
        self.held = []              # (release at index, pub, kind)
        self.block = None           # reorder block (or splice pair) being collected
        self.block_size = 0
        self.copies = []            # (at index, payload) for delayed duplicates
        self.did = collections.Counter()
        self.flipped_keyid = 0


def flip(b, byte, bit):
    x = bytearray(b)
    x[byte] ^= 1 << bit
    return bytes(x)


class DataPolicy:
    """plan: {topic bytes: attack name}; n: messages per topic; window: the
    subscriber's W (the 'far' reorder and the drop burst are sized by it)."""

    ATTACKS = ("clean", "drop", "duplicate", "reorder", "delay", "replay", "truncate",
               "flip-header", "flip-body", "flip-tag", "retopic", "splice", "forge")

    def __init__(self, link, plan, n, seed, window):
        self.link, self.plan, self.n, self.window = link, plan, n, window
        self.seed = seed
        self.st = {}
        self.sender = None          # learnt from the first envelope
        self.off = False            # True: relay everything unchanged

    def state(self, topic):
        st = self.st.get(topic)
        if st is None:
            st = self.st[topic] = TopicState(
                random.Random("%s/%s/%s" % (self.seed, self.link.client_id, topic.decode())),
                self.n)
        return st

    def __call__(self, link, direction, pub, idx):
        attack = self.plan.get(pub.topic)
        if direction != mm.DOWN or attack is None or self.off:
            link.forward(direction, pub)
            return
        st = self.state(pub.topic)
        st.i += 1
        if self.sender is None and len(pub.payload) >= HDR:
            self.sender = pub.payload[6:10]
        if st.i >= st.n:
            # The last message passes untouched: losing it would be a tail
            # drop, which no later message reveals (only the summaries; that
            # has its own test, m/tail), and 'missed drops' must stay 0.
            self.fwd(st, pub)
        else:
            getattr(self, "a_" + attack.replace("-", "_"))(st, pub)
        # Delayed duplicates and far-held messages whose time has come.
        for at, p, kind in [x for x in st.held if x[0] <= st.i]:
            st.held.remove((at, p, kind))
            self.fwd(st, p, kind)
        for at, payload in [x for x in st.copies if x[0] <= st.i]:
            st.copies.remove((at, payload))
            self.inject(st, pub.topic, payload, "dup-later")
        if st.i == st.n - 1:        # end of the stream: release whatever is held
            self.flush(st, pub.topic)

    # -- helpers ---------------------------------------------------------------
    def fwd(self, st, pub, kind="fwd"):
        self.link.forward(mm.DOWN, pub, kind=kind, origin=st.i)
        st.hist.append(pub.payload)
        if kind != "fwd":
            st.did[kind] += 1

    def inject(self, st, topic, payload, kind):
        self.link.inject(mm.DOWN, topic, payload, kind=kind, origin=st.i)
        st.did[kind] += 1

    def drop(self, st, pub, kind="drop"):
        self.link.drop(mm.DOWN, pub)
        st.did[kind] += 1

    def maybe_original(self, st, pub):
        """After a tampered copy: half the time the original follows (the
        forgery must not have touched the window), else it is lost."""
        if st.rng.random() < 0.5:
            self.fwd(st, pub, "original-after")
        else:
            self.drop(st, pub, "original-dropped")

    def flush(self, st, topic):
        if st.block:
            for p in st.block:
                self.fwd(st, p, "reordered")
            st.block = None
        for _at, p, kind in sorted(st.held, key=lambda x: x[0]):
            self.fwd(st, p, kind)
        st.held = []
        for _at, payload in st.copies:
            self.inject(st, topic, payload, "dup-later")
        st.copies = []

    def chosen(self, st, p):
        """Messages near the start and the end of a stream are never
        attacked: a dropped first or last message leaves no hole a later
        message could reveal (the summaries' business, tested on their own)."""
        return 5 <= st.i < st.n - 5 and st.rng.random() < p

    # -- attacks -----------------------------------------------------------------
    def a_clean(self, st, pub):
        self.fwd(st, pub)

    def a_drop(self, st, pub):
        start = st.n // 3
        burst = self.window + 22 if self.window + 22 < st.n // 2 else st.n // 4
        if start <= st.i < start + burst or self.chosen(st, 0.03):
            self.drop(st, pub)
        else:
            self.fwd(st, pub)

    def a_duplicate(self, st, pub):
        self.fwd(st, pub)
        r = st.rng.random()
        if st.i < st.n - 5 and r < 0.05:
            self.inject(st, pub.topic, pub.payload, "dup-now")
        elif st.i < st.n - 60 and r < 0.08:
            st.copies.append((st.i + st.rng.randint(1, 50), pub.payload))

    def a_reorder(self, st, pub):
        if st.block is not None:
            st.block.append(pub)
            if len(st.block) == st.block_size:
                blk, st.block = st.block, None
                st.rng.shuffle(blk)
                for p in blk:
                    self.fwd(st, p, "reordered")
            return
        if st.i == st.n // 2:
            # One message held back further than the window: TOO_OLD if W is smaller.
            st.held.append((st.i + 133, pub, "held-far"))
            return
        if self.chosen(st, 0.05):
            st.block, st.block_size = [pub], st.rng.randint(2, 16)
            return
        self.fwd(st, pub)

    def a_delay(self, st, pub):
        if self.chosen(st, 0.02):
            self.link.later(0.3, self.fwd, st, pub, "delayed")
        else:
            self.fwd(st, pub)

    def a_replay(self, st, pub):
        self.fwd(st, pub)
        r = st.rng.random()
        if st.i < st.n - 5 and len(st.hist) > 2 and r < 0.05:
            back = st.rng.randint(1, min(100, len(st.hist) - 1))
            self.inject(st, pub.topic, st.hist[-1 - back], "replay")
        elif st.i < st.n - 5 and len(st.hist) > 400 and r < 0.06:
            back = st.rng.randint(300, len(st.hist) - 1)
            self.inject(st, pub.topic, st.hist[-1 - back], "replay-old")

    def a_truncate(self, st, pub):
        if not self.chosen(st, 0.03):
            return self.fwd(st, pub)
        self.inject(st, pub.topic, pub.payload[:st.rng.randrange(len(pub.payload))], "truncated")
        self.maybe_original(st, pub)

    def a_flip_header(self, st, pub):
        if not self.chosen(st, 0.03):
            return self.fwd(st, pub)
        r = st.rng.random()
        if r < 0.05:
            byte = 0                                    # suite
        elif r < 0.15:
            byte = st.rng.randint(6, 9)                 # sender id
        elif r < 0.2 and st.flipped_keyid < 2:
            byte = st.rng.randint(1, 5)                 # scope, epoch (held, then UNKNOWN_KEY)
            st.flipped_keyid += 1
        else:
            byte = st.rng.randint(10, 23)               # run, counter, seq
        self.inject(st, pub.topic, flip(pub.payload, byte, st.rng.randrange(8)), "flip-header")
        self.maybe_original(st, pub)

    def a_flip_body(self, st, pub):
        if not self.chosen(st, 0.03) or len(pub.payload) <= HDR + TAG:
            return self.fwd(st, pub)
        byte = st.rng.randrange(HDR, len(pub.payload) - TAG)
        self.inject(st, pub.topic, flip(pub.payload, byte, st.rng.randrange(8)), "flip-body")
        self.maybe_original(st, pub)

    def a_flip_tag(self, st, pub):
        if not self.chosen(st, 0.03):
            return self.fwd(st, pub)
        byte = st.rng.randrange(len(pub.payload) - TAG, len(pub.payload))
        self.inject(st, pub.topic, flip(pub.payload, byte, st.rng.randrange(8)), "flip-tag")
        self.maybe_original(st, pub)

    def a_retopic(self, st, pub):
        if not self.chosen(st, 0.03):
            return self.fwd(st, pub)
        others = sorted(t for t in self.plan if t != pub.topic)
        r = st.rng.random()
        if r < 0.15:
            target = pub.topic.upper()                  # case
        elif r < 0.25:
            target = pub.topic + b"/"                   # one more level
        else:
            target = st.rng.choice(others)              # another real stream
        self.inject(st, target, pub.payload, "retopic")
        self.maybe_original(st, pub)

    def a_splice(self, st, pub):
        if st.block is not None:                        # pub is B, block holds A
            a = st.block[0]
            st.block = None
            self.inject(st, pub.topic, pub.payload[:HDR] + a.payload[HDR:], "splice")
            self.inject(st, pub.topic, a.payload[:HDR] + pub.payload[HDR:], "splice")
            self.fwd(st, a, "original-after")
            self.fwd(st, pub, "original-after")
            return
        if self.chosen(st, 0.03):
            st.block = [pub]
            return
        self.fwd(st, pub)

    def a_forge(self, st, pub):
        if not self.chosen(st, 0.03):
            return self.fwd(st, pub)
        hdr = bytearray(pub.payload[:HDR])
        body_len = len(pub.payload) - HDR
        v = st.rng.randrange(7)
        if v == 0:      # random run and seq, the real key id, random bytes
            struct.pack_into(">II", hdr, 10, st.rng.getrandbits(32) | 1, 0)
            struct.pack_into(">I", hdr, 20, st.rng.randint(1, 1 << 31))
            hdr[14:20] = (st.rng.getrandbits(47) | 1).to_bytes(6, "big")
            forged, kind = bytes(hdr) + st.rng.randbytes(body_len), "forge-random"
        elif v == 1:    # the very next seq of the stream, ahead of the real one
            forged, kind = bytes(hdr) + st.rng.randbytes(body_len), "forge-next"
        elif v == 2:
            forged, kind = b'{"temperature": 99.5}', "plaintext"
        elif v == 3:
            hdr[0] = 2
            forged, kind = bytes(hdr) + pub.payload[HDR:], "suite-2"
        elif v == 4:    # a correct AEAD, under a key the broker made up
            key = st.rng.randbytes(32)
            forged = bytes(hdr) + nb.crypto_aead_xchacha20poly1305_ietf_encrypt(
                b"forged", bytes(hdr) + pub.topic, bytes(hdr), key)
            kind = "wrong-key"
        elif v == 5:    # a sender nobody trusts
            struct.pack_into(">I", hdr, 6, st.rng.getrandbits(32))
            forged, kind = bytes(hdr) + pub.payload[HDR:], "unknown-sender"
        else:           # an already accepted seq with garbage: suppressed unopened
            if not st.hist:
                return self.fwd(st, pub)
            old = st.hist[-1]
            forged, kind = old[:HDR] + st.rng.randbytes(len(old) - HDR), "forge-seen-seq"
        self.inject(st, pub.topic, forged, kind)
        self.fwd(st, pub)


def policy_factory(plan, n, seed, windows, off_for=()):
    """Mitm policy_factory: a DataPolicy for subscribers whose client id is in
    windows ({client id: W}), plain relay for the others."""
    def make(link):
        if link.client_id in windows and link.client_id not in off_for:
            p = DataPolicy(link, plan, n, seed, windows[link.client_id])
            link.data_policy = p
            return p
        return None
    return make

