#!/usr/bin/python3
"""Adversary matrix, control plane, epochs, restarts and retained messages.

e2e-proxy's broker connections and the subscribers' go through Mitms, so
the malicious broker sits on both sides of the key distribution. On live
traffic (QoS 1 paho publisher through the proxy) it:
  * injects forged, replayed and redirected answers on a subscriber's reply
    topic (DELIVERY, REFUSAL), forged and replayed ANNOUNCE and SUMMARY
    on the sender's topic -> each rejected or ignored, keys unchanged;
  * injects into the proxy's key-service connection a request with a bad
    signature (no answer), a validly signed one from a stranger (one signed
    REFUSAL), a replay of a subscriber's answered request, once and 100
    times (no answer), and a flood of 5,000 hostile requests during data
    traffic (data unharmed, key service still answering);
  * withholds the rotation announcement: the new epoch's messages are held,
    the key fetched, every message delivered;
  * replays the old epoch within the grace period (DUPLICATE), releases
    withheld old-epoch messages after it (never accepted: UNKNOWN_KEY);
  * replays everything after the subscriber restarts with its state, with
    a stale retained message first and a redirected delivery racing the
    real one.
Writes section 'b-control' of the security-tests report (advharness.DOC).
"""
import collections
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import advharness as ah  # noqa: E402

h, mm = ah.h, ah.mm
nb = h.nb
TOPIC = "m/a"
N = 300
GRACE = 6.0


def down(link, topic):
    return [s for s in list(link.sent[mm.DOWN]) if s.topic == topic.encode()]


def up(link, topic):
    return [p for _t, p in list(link.arrived[mm.UP]) if p.topic == topic.encode()]


def ctl_type(payload):
    return payload[1] if len(payload) > 1 else None


def body(env, c):
    site = ah.Site(env, c, proxy_args=["--grace", "%ds" % GRACE])
    sid = site.sender.sender_id
    ann_topic = "%s/%08x" % (h.CONTROL_TOPIC, sid)
    x_id, y_id = site.subscriber("subX"), site.subscriber("subY")
    state = os.path.join(x_id.dir, "state")
    site.start_proxy()
    x = site.start_sub(x_id, ["m/#"], "subX", args=["--state", state])
    y = site.start_sub(y_id, ["m/#"], "subY")
    c.require(x.wait_err(h.EV_KEY, 15) and y.wait_err(h.EV_KEY, 15), "X and Y received keys")
    lx, ly, lk = site.sm.link("subX"), site.sm.link("subY"), site.pm.link("e2e-keys-%08x" % sid)
    c.require(lx and ly and lk, "X, Y and the key service go through the Mitms")
    req_x = up(lx, h.CONTROL_TOPIC)[0].payload
    rx_topic = h.parse_ctl(req_x)["reply_topic"]
    ry_topic = h.parse_ctl(up(ly, h.CONTROL_TOPIC)[0].payload)["reply_topic"]
    deliv_x = down(lx, rx_topic)[0].payload
    deliv_y = down(ly, ry_topic)[0].payload
    rows = []

    # Phase 1: epoch 1 traffic; X is denied 20 messages (kept for later).
    withheld = []

    def deny20(link, d, pub, idx):
        if d == mm.DOWN and pub.topic == TOPIC.encode() and len(withheld) < 20 and idx % 7 == 3:
            withheld.append(pub.payload)
            link.drop(d, pub)
        else:
            link.forward(d, pub)
    site.sm.call(setattr, lx, "policy", deny20)
    tr = ah.Traffic(env, site.proxy.port, [TOPIC], N, clients=1)
    tr.run()
    c.require(tr.wait_acked(30), "phase 1 acknowledged")
    site.sm.call(setattr, lx, "policy", None)
    c.expect(x.wait_json(N - 20, 15) >= N - 20, "X got phase 1 (less the 20 withheld)")
    epoch1 = [s.payload for s in down(lx, TOPIC)]

    # ---- answers and announcements forged, replayed, redirected (to X) ----
    rogue_pk, rogue_sk = nb.crypto_sign_keypair()
    t0 = time.monotonic()
    req_x_now = h.build_request(x_id.id["sign_sk"], x_id.sign_pk, x_id.dh_pk,
                                nb.crypto_box_keypair()[0], sid, rx_topic)
    forged_delivery = h.build_delivery(rogue_sk, sid, req_x_now, [(1, 1, 0, os.urandom(32))],
                                       rx_topic)
    stranger = h.Subscriber(env, "stranger", trust=[site.sender])   # not enrolled
    adv = h.Adversary(env, site.broker, subscribe=())
    s_reply = "e2e/k/" + os.urandom(16).hex()
    adv.c.subscribe(s_reply, qos=1)
    time.sleep(0.2)
    adv.publish(h.CONTROL_TOPIC, h.build_request(stranger.id["sign_sk"], stranger.sign_pk,
                                                 stranger.dh_pk, nb.crypto_box_keypair()[0], sid,
                                                 s_reply))
    got_ref = adv.wait_seen(lambda m: m[1] == s_reply, 5)
    refusal = got_ref[0][2] if got_ref else None
    c.expect(refusal and ctl_type(refusal) == h.CTL_REFUSAL,
             "a signed REFUSAL answered the stranger's request (recorded for replay)")
    forged_refusal = h.ctl_sign(rogue_sk, rx_topic, h.ctl_head(h.CTL_REFUSAL, sid, int(
        time.time() * 1000)) + h.ctl_hash(req_x_now) + bytes([1]))
    forged_ann = h.ctl_sign(rogue_sk, ann_topic, h.ctl_head(h.CTL_ANNOUNCE, sid, int(
        time.time() * 1000)) + bytes([1]) + (7).to_bytes(4, "big"))
    h.wait_until(lambda: len([s for s in down(lx, ann_topic) if ctl_type(s.payload) == 5]) >= 2, 5)
    real_sum = [s.payload for s in down(lx, ann_topic) if ctl_type(s.payload) == 5]
    forged_sum = bytearray(real_sum[-1])
    forged_sum[-1] ^= 1
    cases = [
        ("forged DELIVERY (signed by another key) on X's reply topic", rx_topic, forged_delivery,
         True),
        ("replayed DELIVERY (X's first one) on X's reply topic", rx_topic, deliv_x, True),
        ("forged REFUSAL on X's reply topic", rx_topic, forged_refusal, True),
        ("replayed REFUSAL (the stranger's, another reply topic)", rx_topic, refusal or b"", True),
        ("redirected DELIVERY (Y's) on X's reply topic", rx_topic, deliv_y, True),
        ("forged ANNOUNCE (epoch 7)", ann_topic, forged_ann, True),
        ("forged SUMMARY (signature bit flipped)", ann_topic, bytes(forged_sum), True),
        ("replayed SUMMARY (an old one)", ann_topic, real_sum[0], False),
    ]
    n_req = len(up(lx, h.CONTROL_TOPIC))
    for name, topic, msg, rejected in cases:
        since = time.monotonic()
        site.sm.call(lx.inject, mm.DOWN, topic, msg)
        h.wait_until(lambda: x.err_match(ah.RX_REJECTED, since), 2 if rejected else 1)
        n = len(x.err_match(ah.RX_REJECTED, since))
        ok = n == (1 if rejected else 0)
        c.expect(ok, "%s: %s (%d rejection events)" % (
            name, "rejected" if rejected else "ignored", n))
        rows.append((name, 1, "rejected: 'control message rejected', keys unchanged" if rejected
                     else "ignored (older than the last one), no event", "%d rejection event(s)"
                     % n, ah.yes(ok)))
    time.sleep(0.5)
    c.expect(len(up(lx, h.CONTROL_TOPIC)) == n_req and not x.err_match(r"key received", t0),
             "X sent no key request and installed no key because of them")

    # ---- hostile requests to the proxy's key service ------------------------
    def answers(topic, since):
        return [p for t, p in list(lk.arrived[mm.UP]) if t >= since and p.topic == topic.encode()]
    cases = [("request with a bad signature", h.build_request(
        stranger.id["sign_sk"], stranger.sign_pk, stranger.dh_pk, nb.crypto_box_keypair()[0], sid,
        s_reply, sign=False), 1, 0), ("replay of X's answered request", req_x, 1, 0),
        ("replay of X's answered request, 100 times", req_x, 100, 0),
        ("validly signed request from an unenrolled identity", h.build_request(
            stranger.id["sign_sk"], stranger.sign_pk, stranger.dh_pk, nb.crypto_box_keypair()[0],
            sid, s_reply), 1, 1)]
    for name, msg, times, want in cases:
        since = time.monotonic()
        reply = h.parse_ctl(msg)["reply_topic"]
        for _ in range(times):
            site.pm.call(lk.inject, mm.DOWN, h.CONTROL_TOPIC, msg)
        time.sleep(1.0)
        got = answers(reply, since)
        ok = len(got) == want and all(ctl_type(p.payload) == h.CTL_REFUSAL for p in got)
        c.expect(ok, "key service, %s: %d answer(s), expected %d" % (name, len(got), want))
        rows.append(("to the proxy: " + name, times, "no answer" if not want else
                     "one signed REFUSAL (not enrolled)", "%d answer(s)" % len(got), ah.yes(ok)))

    # Flood: 5,000 hostile requests into the key service during 600 data messages.
    rss0 = site.proxy.proc.rss_kib() or 0
    seen0 = len(x.messages())
    fl = collections.Counter()

    def flood():
        for i in range(5000):
            k = i % 3
            m = (os.urandom(1 + i % 300) if k == 0 else req_x if k == 1 else
                 h.build_request(rogue_sk, rogue_pk, stranger.dh_pk, stranger.dh_pk, sid,
                                 "e2e/k/" + "%032x" % i, sign=False))
            lk.inject(mm.DOWN, h.CONTROL_TOPIC, m, qos=0)
            fl[k] += 1
    site.pm.call(flood)
    tr2 = ah.Traffic(env, site.proxy.port, ["m/flood"], 600, clients=1, prefix="fl")
    tr2.run()
    acked = tr2.wait_acked(30)
    flood_ok = x.wait_json(seen0 + 600, 20) >= seen0 + 600
    fresh = [o for o in x.messages()[seen0:] if o.get("topic") == "m/flood"]
    probe = adv.probe_key_service(site.sender, 10)
    rss1 = site.proxy.proc.rss_kib() or 0
    ok = acked and flood_ok and len(fresh) == 600 and all(
        h.verdict_of(o) == "OK" for o in fresh) and probe is not None and rss1 - rss0 < 20000
    c.expect(ok, "flood of 5,000 requests: 600 data messages all OK (%d), key service answers "
             "after it (%s s), proxy RSS +%d KiB" % (len(fresh), probe, rss1 - rss0))
    rows.append(("control-topic flood into the key service (garbage, replays, bad signatures) "
                 "during data traffic", 5000, "data unharmed, key service still answers, memory "
                 "bounded", "600/600 OK, answered after %.1f s, RSS +%d KiB" % (
                     probe or -1, rss1 - rss0), ah.yes(ok)))
    since = time.monotonic()

    def sub_flood():
        for i in range(1000):
            lx.inject(mm.DOWN, ann_topic if i % 2 else rx_topic, os.urandom(20 + i % 200), qos=0)
    site.sm.call(sub_flood)
    h.wait_until(lambda: len(x.err_match(ah.RX_REJECTED, since)) >= 1000, 10)
    n = len(x.err_match(ah.RX_REJECTED, since))
    c.expect(n == 1000 and x.alive(), "flood of 1,000 garbage control messages to X: %d rejected, "
             "X alive" % n)
    rows.append(("control-topic flood to a subscriber (reply and sender topics)", 1000,
                 "each rejected, subscriber unharmed", "%d rejected" % n, ah.yes(n == 1000)))

    # ---- rotation with the announcement withheld ----------------------------
    def no_announce(link, d, pub, idx):
        if d == mm.DOWN and pub.topic == ann_topic.encode() and ctl_type(pub.payload) == 4:
            link.drop(d, pub)
        else:
            link.forward(d, pub)
    site.sm.call(setattr, lx, "policy", no_announce)
    t_rot = time.monotonic()
    h.run(env, "keytool-rotate", [env.keytool, "rotate", "--dir", site.sender.dir, "--grace",
                                  "%ds" % GRACE])
    c.expect(h.wait_until(lambda: any(ctl_type(p.payload) == 4 for t, p in lk.arrived[mm.UP]
                                      if t >= t_rot), 5), "the proxy announced epoch 2")
    announced = sum(1 for s in down(lx, ann_topic) if ctl_type(s.payload) == 4 and s.t >= t_rot)
    seen1 = len(x.messages())
    tr3 = ah.Traffic(env, site.proxy.port, ["m/rot"], 200, clients=1, prefix="rot")
    tr3.run()
    c.expect(tr3.wait_acked(20), "epoch 2 traffic acknowledged")
    x.wait_json(seen1 + 200, 15)
    rot = [o for o in x.messages()[seen1:] if o.get("topic") == "m/rot"]
    # Epoch numbers are not 1, 2, ...: a new one is at least the Unix time
    # (SPEC 6.4), so take the rotated scope's current epoch from the keys file.
    epoch_now = site.sender.current_epoch(1)
    ok = announced == 0 and len(rot) == 200 and all(h.verdict_of(o) in ("OK", "GAP", "LATE") and
                                                    o.get("epoch") == epoch_now for o in rot) and \
        len({o["seq"] for o in rot}) == 200
    c.expect(ok, "announcement withheld (%d reached X): all 200 epoch-2 messages delivered once "
             "(%s)" % (announced, ah.fmt_tally(ah.tally(rot))))
    rows.append(("withhold the rotation announcement", 200, "new epoch fetched on first use: "
                 "every message delivered once, none UNKNOWN_KEY", ah.fmt_tally(ah.tally(rot)),
                 ah.yes(ok)))
    site.sm.call(setattr, lx, "policy", None)

    # ---- old epoch: replay within the grace period, release after it --------
    since = len(x.messages())
    for p in epoch1:
        site.sm.call(lx.inject, mm.DOWN, TOPIC, p)
    x.wait_json(since + len(epoch1), 10)
    rep = x.messages()[since:]
    ok = len(rep) == len(epoch1) and all(h.verdict_of(o) == "DUPLICATE" for o in rep)
    c.expect(ok, "epoch 1 replayed after the rotation, within grace: %s" % ah.fmt_tally(
        ah.tally(rep)))
    rows.append(("replay of the older epoch after rotation (within grace)", len(epoch1),
                 "DUPLICATE", ah.fmt_tally(ah.tally(rep)), ah.yes(ok)))
    time.sleep(max(0.0, GRACE + 1.5 - (time.monotonic() - t_rot)))
    since = len(x.messages())
    for p in withheld:
        site.sm.call(lx.inject, mm.DOWN, TOPIC, p)
    time.sleep(1.0)
    late = x.messages()[since:]
    c.expect(not any(h.verdict_of(o) in h.DELIVERING for o in late),
             "20 withheld epoch-1 messages released after the grace period: none accepted "
             "(%s so far; held ones are reported at exit)" % ah.fmt_tally(ah.tally(late)))

    # ---- X restarts; replay of everything, stale retained, redirected answer --
    c.expect(x.stop() == 0, "X exits 0 (state saved)")
    epoch2 = [s.payload for s in down(lx, "m/rot")]
    n_unknown = sum(1 for o in x.messages() if h.verdict_of(o) == "UNKNOWN_KEY")
    c.expect(n_unknown == 20, "the 20 released old-epoch messages ended UNKNOWN_KEY (%d)" %
             n_unknown)
    rows.append(("withheld old-epoch messages released after the grace period", 20,
                 "never accepted (UNKNOWN_KEY: the key expired)", "UNKNOWN_KEY %d" % n_unknown,
                 ah.yes(n_unknown == 20)))

    once = []

    def on_restart(link, d, pub, idx):
        link.forward(d, pub)
        if d == mm.UP and pub.topic == h.CONTROL_TOPIC.encode() and not once:
            once.append(1)
            reply = h.parse_ctl(pub.payload)["reply_topic"]
            link.inject(mm.DOWN, reply, deliv_y, kind="redirect")       # races the real one
            link.inject(mm.DOWN, "m/rot", epoch2[4], retain=True, kind="stale-retained")

    site.sm.policy_factory = lambda link: on_restart if link.client_id == "subX" else None
    x2 = site.start_sub(x_id, ["m/#"], "subX", args=["--state", state], name="subX-restarted")
    c.expect(x2.wait_err(h.EV_KEY, 15), "restarted X received keys despite the redirected answer")
    c.expect(len(x2.err_match(ah.RX_REJECTED)) >= 1, "the redirected delivery was rejected")
    lx2 = site.sm.link("subX")
    x2.wait_json(1, 5)
    for p in epoch2:
        site.sm.call(lx2.inject, mm.DOWN, "m/rot", p)
    x2.wait_json(len(epoch2) + 1, 10)
    time.sleep(0.3)
    m2 = x2.messages()
    ret = [o for o in m2 if o.get("retained")]
    ok_ret = len(ret) == 1 and h.verdict_of(ret[0]) == "DUPLICATE"
    rep2 = [o for o in m2 if not o.get("retained")]
    ok_rep = len(rep2) == len(epoch2) and all(h.verdict_of(o) in ("DUPLICATE", "TOO_OLD")
                                              for o in rep2)
    c.expect(ok_ret, "stale retained message after the restart: %s" % [
        (h.verdict_of(o), o.get("seq")) for o in ret])
    c.expect(ok_rep, "replay of all %d epoch-2 messages after the restart: %s" % (
        len(epoch2), ah.fmt_tally(ah.tally(rep2))))
    rows.append(("redirect: another subscriber's delivery on the reply topic, racing the real "
                 "answer", 1, "rejected, the real answer accepted", "%d rejected, key %s" % (
                     len(x2.err_match(ah.RX_REJECTED)), "received" if x2.err_match(h.EV_KEY)
                     else "missing"), ah.yes(x2.err_match(h.EV_KEY) and
                                             x2.err_match(ah.RX_REJECTED))))
    rows.append(("stale retained message after the subscriber restarts (saved state)", 1,
                 "DUPLICATE, flagged retained", ", ".join(h.verdict_of(o) for o in ret),
                 ah.yes(ok_ret)))
    rows.append(("replay of every message after the subscriber restarts (saved state)",
                 len(epoch2), "DUPLICATE or TOO_OLD, nothing delivered",
                 ah.fmt_tally(ah.tally(rep2)), ah.yes(ok_rep)))
    x2.stop()
    c.expect(y.alive() and not y.err_match(ah.RX_REJECTED), "Y, never attacked, saw no rejection")
    ah.doc_section("b-control", "Control plane, epochs, restarts, retained messages", """
e2e-proxy's key-service connection and the subscribers' connections both go through the man in
the middle. Subscriber X ('m/#', state file) is attacked, Y is the bystander. Grace period of
the old epoch: %d s.""" % GRACE, rows)


if __name__ == "__main__":
    h.main("adversary-control", body)
