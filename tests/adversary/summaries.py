#!/usr/bin/python3
"""Adversary: the signed-summary promises (issue 13 items 2-5; SPEC 11.6).

One e2e-proxy (summaries every second) and four e2e-sub subscribers, each
behind the malicious broker (mitm.py) with an attack of its own:

  W  fresh subscriber whose sender's summaries (the whole C/<sender> topic)
     are withheld from its first connection on: it still reports the sender
     stalled, counted from its key install;
  D  every data message held back 1.5 intervals (still inside the window):
     accepted, never called unsummarized or an insider forgery, and every
     message a summary said never arrived is corrected "arrived late";
  R  summaries in two parts (30,000-byte topics): part 1 of the current
     summary is withheld and the previous summary's part 1 replayed in its
     place: ignored (counted), and the missing part reported;
  I  an insider (holder of the enrolled scope key) forges a message in an
     interval in which the broker dropped another one: the forgery is found
     at its seq, the drop reported unconfirmed (L1).
  K  the sender's clock 60 s behind (summaries signed with its key, injected
     while the real ones are withheld): clock skew reported once, again after
     it recovered, and never trusted silently;
  S  (control) a shared subscription ($share/g/m/d) sees part of a stream, so
     summaries skip it: none of its messages may be called unsummarized.
"""
import collections
import os
import re
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import advharness as ah  # noqa: E402

h, mm = ah.h, ah.mm
INTERVAL = 1.0                       # the proxy's summary interval, s
# The interval a subscriber expects from key install on, before any summary
# arrived: the one the sender's signed key delivery names (SPEC 11.2, 11.6).
EXPECT_I = INTERVAL
DELAY = 1.5 * INTERVAL
LONG = ["L/%s/" % c + c * 29995 for c in "abc"]      # two fill a part, the third spills
FORGE_AT = 20                        # on m/i: drop #20, forge #21
RX_END = re.compile(r"summaries: (\d+) received; entries verified (\d+), contradicted (\d+); "
                    r"messages never arrived (\d+), unsummarized (\d+), not checked (\d+); "
                    r"stalls (\d+); arrived late (\d+), replayed parts ignored (\d+), "
                    r"clock skews (\d+)")
END_KEYS = ("summaries", "verified", "contradicted", "never_arrived", "unsummarized",
            "not_checked", "stalls", "arrived_late", "parts_ignored", "clock_skews")


def summary_head(payload):
    """(number, part, parts) of a SUMMARY (SPEC 11.6), else None."""
    p = bytes(payload)
    if len(p) < 14 + 16 or p[1] != 5:
        return None
    return int.from_bytes(p[22:26], "big"), p[26], p[27]


class Policies:
    """The four attacks, chosen by client id; they run on the Mitm's thread."""

    def __init__(self, site):
        self.site = site
        self.did = collections.Counter()
        self.armed_r = False
        self.saved_part1 = None          # (number, payload) of the newest part 1 seen
        self.max_parts = 0
        self.m_i = 0
        self.forged_seq = None

    def factory(self, link):
        return {"subW": self.withhold, "subD": self.delay, "subR": self.replace_part,
                "subI": self.insider, "subK": self.withhold}.get((link.client_id or "")[:4])

    def ctl(self):
        return ah.summary_topic(self.site.sender).encode()

    def withhold(self, link, d, pub, idx):
        if d == mm.DOWN and pub.topic == self.ctl():
            self.did[link.client_id[:4] + "-withheld"] += 1
            link.drop(d, pub)
            return
        link.forward(d, pub)

    def delay(self, link, d, pub, idx):
        if d == mm.DOWN and pub.topic.startswith(b"m/"):
            link.ack(d, pub)             # the broker thinks it delivered
            self.did["D-delayed"] += 1
            link.later(DELAY, link.send, d, pub, "delayed", idx, None)
            return
        link.forward(d, pub)

    def replace_part(self, link, d, pub, idx):
        head = summary_head(pub.payload) if d == mm.DOWN and pub.topic == self.ctl() else None
        if head:
            number, part, parts = head
            self.max_parts = max(self.max_parts, parts)
            if part == 1:
                if self.armed_r and self.saved_part1 and number > self.saved_part1[0]:
                    self.armed_r = False
                    self.did["R-replaced"] += 1
                    link.drop(d, pub)
                    link.inject(d, pub.topic, self.saved_part1[1], kind="replayed-part")
                    return
                self.saved_part1 = (number, bytes(pub.payload))
        link.forward(d, pub)

    def insider(self, link, d, pub, idx):
        if d == mm.DOWN and pub.topic == b"m/i":
            self.m_i += 1
            if self.m_i == FORGE_AT:
                self.did["I-dropped"] += 1
                link.drop(d, pub)
                return
            if self.m_i == FORGE_AT + 1:
                # Same header (run, counter, seq), the enrolled scope key, its own text.
                hd = h.env_parse(bytes(pub.payload))
                key = self.site.keys()[(hd["sender"], hd["scope"], hd["epoch"])]
                forged = h.env_seal(key, "m/i", h.env_header(hd["scope"], hd["epoch"],
                                                             hd["sender"], hd["run"],
                                                             hd["counter"], hd["seq"]),
                                    b"forged by an insider")
                self.forged_seq = hd["seq"]
                self.did["I-forged"] += 1
                link.drop(d, pub)
                link.inject(d, pub.topic, forged, kind="forged")
                return
        link.forward(d, pub)


def end_counts(proc):
    for line in reversed(proc.err_match(r"summaries: ")):
        m = RX_END.search(line)
        if m:
            return dict(zip(END_KEYS, (int(x) for x in m.groups())))
    return None


def unconfirmed_total(proc, since=0.0):
    return sum(int(m.group(1)) for m in (ah.RX_UNCONFIRMED.search(l) for l in
                                         proc.err_match(r"never arrived", since)) if m)


def body(env, c):
    pol = None
    site = ah.Site(env, c, scopes=((1, "telemetry", ["m/#", "L/#"]),),
                   sub_policy=lambda link: pol.factory(link) if pol else None)
    pol = Policies(site)
    idents = {cid: site.subscriber(cid) for cid in ("subW", "subD", "subR", "subI", "subS",
                                                    "subK")}
    site.start_proxy()
    subs = {"subW": site.start_sub(idents["subW"], ["m/#"], "subW"),
            "subD": site.start_sub(idents["subD"], ["m/d"], "subD"),
            "subR": site.start_sub(idents["subR"], ["L/#"], "subR"),
            "subI": site.start_sub(idents["subI"], ["m/i"], "subI"),
            "subS": site.start_sub(idents["subS"], ["$share/g/m/d"], "subS"),
            "subK": site.start_sub(idents["subK"], ["m/none"], "subK")}
    t_key = {}
    for cid, p in subs.items():
        c.require(p.wait_err(h.EV_KEY, 15), "%s received the key" % cid)
        t_key[cid] = p.err_first(h.EV_KEY) or h.time.monotonic()

    # ---- traffic: 8 s; m/d and m/i 10 msg/s, the long topics ~3 msg/s ----
    short = ah.Traffic(env, site.proxy.port, ["m/d", "m/i"], 80, clients=1, prefix="spub")
    long_ = ah.Traffic(env, site.proxy.port, LONG, 27, clients=1, prefix="lpub")
    t0 = h.time.monotonic()
    for i in range(80):
        short.run(first=i, count=1)
        if i % 3 == 0:
            long_.run(first=i // 3, count=1)
        if i == 30:
            site.sm.call(setattr, pol, "armed_r", True)
        h.time.sleep(0.1)
    c.require(short.wait_acked(30) and long_.wait_acked(30), "publishers: all acknowledged")

    # ---- K: summaries signed 60 s behind, on time, 60 s behind again --------
    ident = h.load_identity(os.path.join(site.sender.dir, "identity.key"))
    ctl = ah.summary_topic(site.sender)
    link_k = site.sm.link("subK")
    for number, off in ((1, -60000), (2, 0), (3, -60000)):
        # no entries, no history (SPEC 11.6)
        body = struct.pack(">IIIBBHB", 1000, 0x5CE3ED01, number, 0, 1, 0, 0)
        msg = h.ctl_sign(ident["sign_sk"], ctl, h.ctl_head(5, site.sender.sender_id,
                                                           int(time.time() * 1000) + off) + body)
        site.sm.call(link_k.inject, mm.DOWN, ctl, msg)
        h.time.sleep(0.3)
    h.time.sleep(DELAY + 3 * INTERVAL + 1)   # delayed data in, last summaries checked

    # ---- W: stalled although no summary ever arrived ---------------------
    bound = 2.5 * EXPECT_I + 3
    stall = h.wait_until(lambda: subs["subW"].err_first(r"summary: no summary from"),
                         max(0.0, t_key["subW"] + bound - h.time.monotonic()) + 0.5)
    t_stall = (stall or h.time.monotonic()) - t_key["subW"]
    c.expect(pol.did["subW-withheld"] > 0 and stall and t_stall <= bound,
             "W: fresh subscriber, every summary withheld (%d): stalled %s after its key "
             "install (bound 2.5 x %.0f s + 3 s)" % (pol.did["subW-withheld"],
                                                    "%.1f s" % t_stall if stall else "never",
                                                    EXPECT_I))
    # ---- stop everyone, read the exit lines --------------------------------
    ends = {}
    for cid, p in subs.items():
        c.expect(p.stop() == 0, "%s exits 0" % cid)
        ends[cid] = end_counts(p)
        h.log("%s: %s" % (cid, ends[cid]))
    for cid in ("subD", "subR", "subI", "subS", "subK"):
        c.require(ends[cid] is not None, "%s printed the summaries exit line" % cid)

    # ---- D: delay is not forgery -------------------------------------------
    d, pd = ends["subD"], subs["subD"]
    unconf = unconfirmed_total(pd)
    c.expect(pol.did["D-delayed"] >= 80 and unconf > 0,
             "D: %d data messages held back %.1f s; %d reported not arrived at first "
             "(the delay reached past a summary)" % (pol.did["D-delayed"], DELAY, unconf))
    c.expect(not pd.err_match(ah.RX_SUMMARY_ALARM),
             "D: no 'insider forgery' and no 'in no summary' line (%d)"
             % len(pd.err_match(ah.RX_SUMMARY_ALARM)))
    c.expect(d["unsummarized"] == 0 and d["contradicted"] == 0 and d["never_arrived"] == 0 and
             d["arrived_late"] == unconf,
             "D: exit line: never arrived %d, arrived late %d (= %d reported), unsummarized %d, "
             "contradicted %d" % (d["never_arrived"], d["arrived_late"], unconf,
                                  d["unsummarized"], d["contradicted"]))
    late_lines = len(pd.err_match(r"summary: \d+ message\(s\) from \S+ \(seq \d+.*arrived late"))
    c.expect(late_lines == unconf, "D: one 'arrived late' event per message (%d)" % late_lines)

    # ---- R: replayed part ---------------------------------------------------
    r, pr = ends["subR"], subs["subR"]
    c.require(pol.max_parts >= 2, "R: summaries came in %d parts" % pol.max_parts)
    c.expect(pol.did["R-replaced"] == 1 and r["parts_ignored"] >= 1,
             "R: the previous summary's part 1 replayed in place of the current one: "
             "ignored (%d)" % r["parts_ignored"])
    c.expect(pr.err_match(r"summary: 1 summary part\(s\) of \S+ missing"),
             "R: the withheld part is reported stalled")
    c.expect(not pr.err_match(ah.RX_SUMMARY_ALARM) and r["never_arrived"] == 0,
             "R: no forgery or unsummarized alarm, nothing reported never arrived "
             "(the replay changed no verdict)")

    # ---- I: forgery in an interval with a loss ------------------------------
    i, pi = ends["subI"], subs["subI"]
    c.require(pol.forged_seq, "I: the insider's envelope was sent")
    forged = pi.err_match(r"insider forgery: .* on 'm/i' seq %d " % pol.forged_seq)
    c.expect(forged, "I: insider forgery reported at seq %d" % pol.forged_seq)
    c.expect(i["contradicted"] == 1 and unconfirmed_total(pi) == 1,
             "I: one forgery, one message never arrived (%d, %d)" % (
                 i["contradicted"], unconfirmed_total(pi)))
    # ---- K: clock skew --------------------------------------------------------
    k, pk = ends["subK"], subs["subK"]
    skew_lines = pk.err_match(r"summary: \S+'s summary is signed \d+ ms behind our clock")
    c.expect(k["clock_skews"] == 2 and len(skew_lines) == 2 and k["summaries"] == 3,
             "K: summaries signed 60 s behind, on time, 60 s behind: clock skew reported "
             "twice (%d, %d lines), all 3 accepted (%d)" % (k["clock_skews"], len(skew_lines),
                                                          k["summaries"]))

    # ---- S: a shared subscription is not summarized ------------------------
    sh, ps = ends["subS"], subs["subS"]
    c.expect(len(ps.messages()) > 0 and sh["unsummarized"] == 0 and
             not ps.err_match(ah.RX_SUMMARY_ALARM) and sh["never_arrived"] == 0,
             "S: shared subscription, %d messages: no unsummarized or forgery alarm, nothing "
             "never arrived" % len(ps.messages()))
    ah.promise_rows("adversary-summaries", [
        ("13.2 withholding is reported, also to a fresh subscriber", "malicious broker", False,
         "withholds the sender's control topic from a subscriber's first connection on",
         "stalled %s after key install (interval %.0f s)" % (
             "%.1f s" % t_stall if stall else "never", EXPECT_I),
         bool(stall and t_stall <= bound)),
        ("13.2 a summary's signed time is checked against the local clock", "malicious broker",
         False, "injects summaries signed 60 s behind, on time, behind again",
         "%d clock skews reported" % k["clock_skews"], k["clock_skews"] == 2),
        ("13.3 delay is not forgery", "malicious broker", False,
         "holds data back 1.5 summary intervals (inside the window)",
         "%d not arrived, %d arrived late, %d unsummarized, %d contradicted" % (
             unconf, d["arrived_late"], d["unsummarized"], d["contradicted"]),
         unconf == d["arrived_late"] and not d["unsummarized"] and not d["contradicted"]),
        ("13.4 no summary part replayed in place of another", "malicious broker", False,
         "replays the previous summary's part 1 in place of the current one",
         "%d ignored, missing part reported" % r["parts_ignored"], r["parts_ignored"] >= 1),
        ("13.5 forgery found in an interval with losses", "malicious broker + insider", True,
         "drops one message; an enrolled subscriber's key seals the next seq",
         "forgery reported at seq %s, %d unconfirmed" % (pol.forged_seq, unconfirmed_total(pi)),
         bool(forged) and i["contradicted"] == 1),
    ])
    ah.doc_section("a-summaries", "Signed summaries (interval %.0f s)" % INTERVAL, """
Each subscriber is attacked by the broker in one way; what the signed summaries must report.""", [
        ("withhold the sender's control topic from a fresh subscriber",
         pol.did["subW-withheld"], "stalled within 2.5 x the interval it knows (%.0f s) of "
         "key install" % EXPECT_I, "after %.1f s" % t_stall if stall else "never",
         ah.yes(stall and t_stall <= bound)),
        ("data held back %.1f s (1.5 I)" % DELAY, pol.did["D-delayed"],
         "no forgery/unsummarized; every not-arrived corrected late",
         "%d not arrived, %d late, %d unsummarized" % (unconf, d["arrived_late"],
                                                      d["unsummarized"]),
         ah.yes(unconf == d["arrived_late"] and not d["unsummarized"])),
        ("old part 1 replayed in place of the current one", pol.did["R-replaced"],
         "ignored, missing part reported", "%d ignored" % r["parts_ignored"],
         ah.yes(r["parts_ignored"] >= 1)),
        ("sender clock 60 s behind, on time, behind again", 3, "clock skew twice",
         "%d clock skews" % k["clock_skews"], ah.yes(k["clock_skews"] == 2)),
        ("insider forgery in an interval with a drop", 2, "forgery at its seq, 1 unconfirmed",
         "%d forgery, %d unconfirmed" % (i["contradicted"], unconfirmed_total(pi)),
         ah.yes(bool(forged)))])


if __name__ == "__main__":
    h.main("adversary-summaries", body)
