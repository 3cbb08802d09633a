#!/usr/bin/python3
"""Adversary matrix, data plane: a malicious broker attacks real traffic.

Two paho publishers (MQTT 3.1.1 and 5) send N messages on each of 13 topics
through e2e-proxy; the broker side is a real mosquitto. Three e2e-sub
subscribers connect through the man in the middle (mitm.py):
  A  'm/#' wildcard, MQTT 3.1.1, window 128   - attacked
  B  every topic exactly, MQTT 5, window 1024  - attacked (own seeded choices)
  C  'm/#' wildcard, MQTT 3.1.1, window 128   - clean control run, same traffic
Each topic carries one attack (attacks.py): drop (incl. a burst longer than
the window), duplicate, reorder (incl. one held past the window), delay,
replay within and beyond the window, truncate, bit flips in header, body and
tag, re-topic, header splice, forged data. Then, on A only: a tail drop (the
last messages of a topic: no later message reveals it, the proxy's signed
summaries every second must) and withholding everything for 4 s (summaries
stop: 'stalled').

For every subscriber the oracle (check.py's Receiver, independent of
libe2e) replays exactly what the Mitm wrote to it; the subscriber's
--json --show-all output must match message by message, its exit line's
lost/pending must equal the model's. Required: 0 false accepts (every
delivered payload is the publisher's for that topic and seq), 0 missed drops
(Σ GAP − LATE = messages never delivered, per topic), 0 false alarms on C.
Writes the table of section 'a-data' of the security-tests report (advharness.DOC).
"""
import collections
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import advharness as ah  # noqa: E402
import attacks  # noqa: E402

h, mm = ah.h, ah.mm
N = int(os.environ.get("E2E_ADV_N", "600"))         # messages per topic
TOPICS = ["m/" + a for a in attacks.DataPolicy.ATTACKS]
TAIL = "m/tail"
SUBS = {"subA": 128, "subB": 1024, "subC": 128}
TAIL_N, TAIL_DROP = 20, 6


def body(env, c):
    plan = {t.encode(): t[2:] for t in TOPICS}
    windows = {k: w for k, w in SUBS.items() if k != "subC"}
    site = ah.Site(env, c, sub_policy=attacks.policy_factory(plan, N, ah.SEED, windows))
    idents = {cid: site.subscriber(cid) for cid in SUBS}   # enrolled before the proxy starts
    site.start_proxy()
    subs = {}
    for cid, w in SUBS.items():
        ident = idents[cid]
        topics = TOPICS if cid == "subB" else ["m/#"]
        subs[cid] = site.start_sub(ident, topics, cid, window=w,
                                   version=5 if cid == "subB" else None)
    for cid, p in subs.items():
        c.require(p.wait_err(h.EV_KEY, 15), "%s received the key" % cid)
    links = {cid: site.sm.link(cid) for cid in SUBS}
    c.require(all(links.values()), "every subscriber connected through the Mitm")

    # ---- the attacked run ---------------------------------------------------
    tr = ah.Traffic(env, site.proxy.port, TOPICS, N)
    # Paced by what the subscribers' side received: unpaced (and on a busy
    # 2-core CI machine even at a fixed pace) the broker queues more than a
    # second of traffic for the Python man in the middle and its three
    # subscribers, which delays a summary past the 2.5-interval stall
    # threshold (I = 1 s) and makes the unattacked control run report a stall.
    tr.run(pause_every=50, max_backlog=150,
           delivered=lambda: min(len(lk.arrived[mm.DOWN]) for lk in links.values()))
    c.require(tr.wait_acked(120), "publishers: all %d messages acknowledged" % tr.sent)
    keys = site.keys()
    maps = site.maps()

    def settled():
        return all(len(subs[k].messages()) >= ah.reported_now(ah.data_sent(links[k]), keys, maps)
                   for k in SUBS)
    c.expect(h.wait_until(settled, 60, step=0.5), "subscribers reported every message")

    # ---- tail drop: the last TAIL_DROP of TAIL_N on m/tail (A only) ---------
    pol_a = links["subA"].data_policy
    tail_seen = collections.Counter()

    def tail_policy(link, d, pub, idx):
        if d == mm.DOWN and pub.topic == TAIL.encode():
            tail_seen[0] += 1
            if tail_seen[0] > TAIL_N - TAIL_DROP:
                link.drop(d, pub)
                return
        pol_a(link, d, pub, idx)
    site.sm.call(setattr, links["subA"], "policy", tail_policy)
    t_tail = h.time.monotonic()
    tr_tail = ah.Traffic(env, site.proxy.port, [TAIL], TAIL_N, clients=1, prefix="tailpub")
    tr_tail.run()
    c.expect(tr_tail.wait_acked(20), "tail messages acknowledged")
    got = h.wait_until(lambda: ah.unconfirmed(subs["subA"], t_tail).get(TAIL), 8)
    t_detect = h.time.monotonic() - t_tail
    c.expect(got == TAIL_DROP, "tail drop: A reports %s unconfirmed on %s via summaries "
             "(%d dropped), %.1f s after the stream started" % (got, TAIL, TAIL_DROP, t_detect))

    # ---- withhold everything from A for 4 s ---------------------------------
    t_wh = h.time.monotonic()
    withheld = collections.Counter()

    def withhold(link, d, pub, idx):
        if d == mm.DOWN:
            withheld["data" if not pub.topic.startswith(b"e2e/") else "control"] += 1
            link.drop(d, pub)
            return
        link.forward(d, pub)
    site.sm.call(setattr, links["subA"], "policy", withhold)
    tr_wh = ah.Traffic(env, site.proxy.port, [TAIL], 16, clients=1, prefix="whpub")
    for i in range(16):
        tr_wh.run(first=TAIL_N + i, count=1)
        h.time.sleep(0.25)
    stall = h.wait_until(lambda: subs["subA"].err_first(r"summary: no summary from", t_wh), 3)
    t_stall = (stall or h.time.monotonic()) - t_wh   # when the line came, not when we looked
    site.sm.call(setattr, links["subA"], "policy", None)
    tr_wh.run(first=TAIL_N + 16, count=4)
    c.expect(tr_wh.wait_acked(20), "withhold-phase messages acknowledged")
    c.expect(stall, "withholding: A reports 'no summary' (stalled) %.1f s after it began "
             "(interval 1 s; %d data and %d control messages withheld)" % (
                 t_stall, withheld["data"], withheld["control"]))
    resumed = h.wait_until(lambda: subs["subA"].err_match(r"summary\(ies\) of \S+ missing", t_wh),
                           5)
    c.expect(resumed, "after withholding: A reports the missing summary numbers")
    h.time.sleep(2.5)       # the last summaries are checked 1 s after they arrive

    # Where a late summary was held up, should a stall ever show on C: in the
    # proxy (its timer), or between the proxy and the subscriber. Times as
    # in this log.
    gap, at = ah.summary_gap(ah.summary_times(site.pm.links, mm.UP, site.sender))
    h.log("proxy: largest pause between two summaries it sent: %.2f s%s" % (
        gap, " (ended at %.2f)" % (at - h._T0) if at else ""))
    for cid in SUBS:
        gap, at = ah.summary_gap(ah.summary_times([links[cid]], mm.DOWN, site.sender))
        h.log("%s: largest pause between two summaries written to it: %.2f s%s" % (
            cid, gap, " (ended at %.2f)" % (at - h._T0) if at else ""))
    for cid in SUBS:
        disp = ah.arrival_disorder(links[cid], b"m/clean")
        h.log("%s: the broker delivered m/clean out of order by up to %d positions" % (cid, disp))
        lag, late, dis = ah.summary_lag(links[cid], site.sender)
        h.log("%s: %d data messages reached the subscriber after the summary covering them, "
              "up to %.2f s later; %d summaries overtaken by a later one" % (cid, late, lag, dis))
    ends = {}
    for cid, p in subs.items():
        c.expect(p.stop() == 0, "%s exits 0" % cid)
        ends[cid] = ah.exit_line(p)

    # ---- judge ----------------------------------------------------------------
    rows = []
    for cid in SUBS:
        rows += judge(c, cid, subs[cid], links[cid], keys, maps, ends[cid], plan)
    c.expect(links["subC"].sent[mm.DOWN] and all(s.kind == "fwd" for s in
                                                 links["subC"].sent[mm.DOWN]),
             "control run C: the Mitm relayed everything unchanged")
    rows.append(("tail drop (last %d of %d on %s), A" % (TAIL_DROP, TAIL_N, TAIL), TAIL_N,
                 "unconfirmed(%d) from the signed summaries within ~2 intervals" % TAIL_DROP,
                 "unconfirmed(%s)" % got, ah.yes(got == TAIL_DROP and t_detect < 6)))
    rows.append(("withhold everything 4 s, A", "%d data, %d control" % (
        withheld["data"], withheld["control"]),
        "'no summary' (stalled) within 2.5 intervals, then the missing summary numbers",
        "stalled%s, missing numbers %s" % (" (%.0f s)" % t_stall if stall else ": none",
                                           "reported" if resumed else "not reported"),
        ah.yes(stall and resumed)))
    held = collections.defaultdict(list)
    for r in rows:
        held[r[0].split()[0]].append(r[4] == "yes")

    def all_held(kinds):
        got = [ok for a in kinds for ok in held.get(a, [])]
        return bool(got) and all(got), sum(got), len(got)

    promises = []
    for promise, kinds, what in (
            ("no payload forged: tampered, spliced, truncated or injected envelopes are FORGED "
             "or MALFORMED", ("flip-body", "flip-header", "flip-tag", "splice", "truncate",
                              "forge"), "bit flips in header, body and tag; splices; "
             "truncations; forged, plaintext and unknown-sender injections"),
            ("no replay accepted: duplicates and replays are suppressed", ("replay", "duplicate"),
             "replays (recent and old) and duplicates"),
            ("no re-topic: an envelope moved to another topic is FORGED", ("retopic",),
             "envelopes republished on other topics"),
            ("every drop counted exactly (GAP, then lost), no false loss on reordering",
             ("drop", "delay", "reorder", "clean", "control"),
             "drops, delays and reordering beside a clean control run"),
            ("tail drops reported by the signed summaries", ("tail",),
             "the last messages of a stream dropped"),
            ("withholding reported (stalled)", ("withhold",),
             "everything withheld from a subscriber for 4 s")):
        ok, n_ok, n = all_held(kinds)
        promises.append((promise, "malicious broker", False, what,
                         "%d of %d attack rows held" % (n_ok, n), ok))
    ah.promise_rows("adversary-matrix", promises)
    ah.doc_section("a-data", "Data plane: %d messages per topic, seed %d" % (N, ah.SEED), """
Subscribers A ('m/#', MQTT 3.1.1, window 128) and B (13 exact topics, MQTT 5, window 1024)
are attacked, each with its own seeded choices; C ('m/#', window 128) gets the same traffic
relayed unchanged (the clean control run). One attack per topic; QoS 1 drops are acknowledged
to the broker by the man in the middle. *Messages*: envelopes the subscriber was sent on that
topic (its share of injected, duplicated or tampered copies included).""", rows)


def judge(c, cid, proc, link, keys, maps, end, plan):
    recs = ah.data_sent(link)
    exp = ah.oracle(recs, keys, SUBS[cid], maps)
    obs = ah.observed(proc)
    pairs, bad = ah.compare(exp, obs)
    c.expect(not bad, "%s: %d messages, subscriber verdicts == oracle, message by message%s" % (
        cid, len(exp), ("\n    " + "\n    ".join(bad)) if bad else ""))
    mf = ah.model_final(recs, keys, SUBS[cid], maps)
    c.expect(end and (end["lost"], end["pending"]) == (mf["lost"], mf["pending"]),
             "%s: exit line lost/pending %s == model %s" % (
                 cid, end and (end["lost"], end["pending"]), dict(mf)))
    fa = [o for o in obs if h.verdict_of(o) in h.DELIVERING and h.payload_of(o) !=
          ("%s#%05d" % (o["topic"], o["seq"] - 1)).encode()]
    c.expect(not fa, "%s: 0 false accepts: every delivered payload is the publisher's for its "
             "topic and seq (%d are not: %s)" % (cid, len(fa), fa[:3]))
    unconf = ah.unconfirmed(proc)
    rows = []
    by_attack = collections.defaultdict(list)
    for e, o in pairs:
        a = "retopic" if e and e.kind == "retopic" else plan.get((e.topic if e else o.get(
            "topic", "")).encode(), "tail")
        by_attack[a].append((e, o))
    for topic in sorted(plan):
        a = plan[topic]
        t = topic.decode()
        ps = by_attack.get(a, [])
        e_t = ah.tally([e for e, _o in ps if e])
        o_t = ah.tally([o for _e, o in ps if o is not None])
        missing, tail, reported = ah.holes([o for o in obs if o.get("topic") == t], N)
        ok_holes = tail == 0 and reported == missing
        fa_t = sum(1 for e, o in ps if o is not None and e is not None and
                   h.verdict_of(o) in h.DELIVERING and e.verdict not in h.DELIVERING)
        held = e_t == o_t and ok_holes and fa_t == 0 and not any(
            e is None or o is None for e, o in ps)
        if cid == "subC":
            clean = set(o_t) <= {"OK", "LATE", "GAP", "gap_sum"} and missing == 0 and \
                not unconf.get(t)
            c.expect(clean, "%s %s: no false alarm (%s; unconfirmed %d)" % (
                cid, t, ah.fmt_tally(o_t), unconf.get(t, 0)))
            held = held and clean
        elif a == "clean":
            # The broker's own reordering (also beyond the window) is allowed: the oracle
            # judged it; nothing else may show up on an unattacked topic.
            clean = set(o_t) <= {"OK", "LATE", "GAP", "TOO_OLD", "gap_sum"}
            c.expect(clean, "%s %s: only the broker's reordering shows (%s)" % (
                cid, t, ah.fmt_tally(o_t)))
            held = held and clean
        c.expect(ok_holes, "%s %s: 0 missed drops: %d never delivered, %d reported by GAPs "
                 "(Σgap − LATE), tail %d" % (cid, t, missing, reported, tail))
        if a == "drop" and cid != "subC":
            # Informative: summaries are checked 1 s after arrival, so data the broker
            # delays longer counts too; exactness is the GAPs' job (above).
            h.log("%s %s: %d dropped, %s reported unconfirmed by the summaries" % (
                cid, t, missing, unconf.get(t, 0)))
        if cid == "subC" and a != "clean":
            continue
        did = collections.Counter()
        for s in link.sent[mm.DOWN]:
            if s.kind != "fwd" and (s.topic == topic or (a == "retopic" and s.kind == "retopic")):
                did[s.kind] += 1
        pol = getattr(link, "data_policy", None)
        if pol and topic in pol.st:
            did.update({k: v for k, v in pol.st[topic].did.items() if k in ("drop",
                                                                             "original-dropped")})
        what = ", ".join("%s %d" % kv for kv in sorted(did.items())) or "none"
        rows.append(("%s (%s) on %s: %s" % (a if cid != "subC" else "control run", cid, t, what),
                     len(ps), ah.fmt_tally(e_t) + ("; %d missing" % missing if missing else ""),
                     ah.fmt_tally(o_t) + ("; Σgap−LATE %d" % reported if missing else ""),
                     ah.yes(held)))
    if cid == "subC":
        c.expect(not proc.err_match(ah.RX_REJECTED) and not proc.err_match(ah.RX_SUMMARY_ALARM)
                 and not any(ah.RX_STALLED.search(l) for l in proc.err_match("summary")) and
                 not unconf, "subC: no control rejection, no summary alarm, nothing unconfirmed")
        c.expect(end and end["lost"] == 0 and end["pending"] == 0,
                 "subC: lost 0 pending 0 (%s)" % end)
        rows.append(("control run (subC), all topics: summaries and exit line", sum(
            1 for _ in obs), "no rejection, no summary alarm, lost 0 pending 0",
            "lost %s pending %s, %d summary alarms" % (
                end and end["lost"], end and end["pending"],
                len(proc.err_match(r"summary: "))), ah.yes(
                    end and end["lost"] == end["pending"] == 0 and
                    not proc.err_match(r"summary: "))))
    return rows


if __name__ == "__main__":
    h.main("adversary-matrix", body)
