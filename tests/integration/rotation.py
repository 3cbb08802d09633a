#!/usr/bin/python3
"""Integration 3: key rotation in the middle of a QoS 1 stream >= 1000 msg/s.

e2e-pub -l -q 1 is fed by a paced generator; `e2e-keytool rotate` runs
mid-stream, the running publisher reloads the keys file (<= 1 s), announces
the new epoch (signed, on e2e/control/<sender id>) and seals with it; the
subscriber fetches the new key while holding the messages that need it.
Expected: every message arrives exactly once (count exact, payload set
exact), 0 lost, no UNKNOWN_KEY/FORGED/other anomaly, epochs seen = old and
new, the publisher exits 0 (every QoS 1 message acknowledged) and the whole
stream ran at >= 1000 msg/s end to end.
"""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

N = int(os.environ.get("E2E_ROTATION_N", "6000"))
RATE = int(os.environ.get("E2E_ROTATION_RATE", "1500"))  # lines/s offered to e2e-pub
MIN_RATE = int(os.environ.get("E2E_ROTATION_MIN_RATE", "1000"))
TOPIC = "rot/stream"


def body(env, c):
    broker = h.Broker(env)
    adv = h.Adversary(env, broker, subscribe=("e2e/#",))
    s = h.Sender(env, "site")
    sub = h.Subscriber(env, "reader", trust=[s])
    s.enroll(sub, ["default"])

    # E2E_ROTATION_QOS=0: diagnostic run of the subscriber side at full rate.
    pub = h.start_pub_lines(env, broker, s, TOPIC, qos=int(os.environ.get("E2E_ROTATION_QOS", "1")),
                            name="pub")
    c.require(adv.probe_key_service(s, 10) is not None, "e2e-pub key service up")
    epoch0 = s.current_epoch(0)
    c.require(epoch0 is not None, "sender has a current key for scope 0 (epoch %r)" % epoch0)

    sp = h.start_sub(env, broker, sub, [TOPIC], name="sub",
                     args=["--show-all", "-C", str(N), "-W", "90", "--state", "none"])
    c.require(sp.wait_err(h.EV_KEY, 10), "subscriber received the current key")

    lines = ["m%06d" % i for i in range(N)]
    marks = {}
    expected_s = N / RATE

    def feed():
        t0 = time.monotonic()
        marks["start"] = t0
        i = 0
        try:
            while i < N:
                # pace: never ahead of RATE lines/s
                due = int((time.monotonic() - t0) * RATE) + 1
                end = min(N, max(due, i + 1))
                pub.write("".join(l + "\n" for l in lines[i:end]))
                pub.flush()
                i = end
                if i < N and int((time.monotonic() - t0) * RATE) < i:
                    time.sleep(0.002)
        except (BrokenPipeError, OSError) as e:
            marks["error"] = repr(e)
        marks["fed"] = time.monotonic()
        marks["count"] = i

    th = threading.Thread(target=feed, daemon=True)
    th.start()
    # Rotate a third of the way into the stream (by time: the pipe would hide
    # a slow publisher from a count of lines written).
    time.sleep(expected_s / 3)
    t_rot = time.monotonic()
    n_at_rot = sp.wait_json(0, 0, lambda o: h.verdict_of(o) in h.DELIVERING)
    s.rotate()
    epoch1 = s.current_epoch(0)
    h.log("rotated scope 0: epoch %s -> %s; %d messages delivered so far" % (
        epoch0, epoch1, n_at_rot))
    c.expect(epoch1 is not None and epoch1 > epoch0,
             "keytool rotate created a new epoch (%s -> %s)" % (epoch0, epoch1))
    th.join(expected_s + 30)
    c.require(not th.is_alive(), "generator finished writing")
    c.expect("error" not in marks, "publisher kept reading stdin (%s)" % marks.get("error"))
    # Bounded: the whole stream must be through at >= MIN_RATE, plus slack
    # for the start and the key fetch at the rotation.
    budget = N / MIN_RATE + 8
    n_del = sp.wait_json(N, max(0.1, marks["start"] + budget - time.monotonic()),
                         lambda o: h.verdict_of(o) in h.DELIVERING)
    t_end = time.monotonic()
    if n_del < N:
        rate_seen = n_del / (t_end - marks["start"])
        c.expect(False, "throughput: only %d of %d messages delivered %.1f s after the first "
                 "line was written (%.0f msg/s; need >= %d msg/s at QoS 1)" % (
                     n_del, N, t_end - marks["start"], rate_seen, MIN_RATE))
    rc = h.finish_pub(pub, 10 if n_del >= N else 2)
    t_pub_done = time.monotonic()
    if n_del >= N:
        c.expect(rc == 0, "e2e-pub exited 0: every QoS 1 message acknowledged (rc %r)" % rc)
    rc_sub = sp.wait_exit(5 if n_del >= N else 0.1)
    if rc_sub is None:
        sp.stop()
        rc_sub = None if n_del < N else sp.rc()
    msgs = sp.messages()
    delivered = [o for o in msgs if h.verdict_of(o) in h.DELIVERING]
    verdicts = {}
    for o in msgs:
        verdicts[h.verdict_of(o)] = verdicts.get(h.verdict_of(o), 0) + 1
    h.log("verdicts: %s" % verdicts)
    if n_del >= N:
        c.expect(rc_sub == 0, "e2e-sub -C %d exited 0 (rc %r)" % (N, rc_sub))
    c.expect(len(delivered) == N, "subscriber delivered exactly %d messages (got %d)" % (
        N, len(delivered)))
    got = [h.payload_of(o) for o in delivered]
    c.expect(sorted(got) == [l.encode() for l in lines],
             "delivered payloads are exactly the %d published (missing %d, extra/dup %d)" % (
                 N, len(set(l.encode() for l in lines) - set(got)), len(got) - len(set(got))))
    bad = {v: n for v, n in verdicts.items() if v not in h.DELIVERING + ("DUPLICATE",)}
    c.expect(not bad, "no UNKNOWN_KEY / FORGED / TOO_OLD / MALFORMED verdicts (got %s)" % bad)
    c.expect(verdicts.get("GAP", 0) == 0, "no GAP verdict (got %d)" % verdicts.get("GAP", 0))
    summ = [l for l in sp.err_match(r"lost \d+ pending \d+")]
    m = re.search(r"lost (\d+) pending (\d+)", summ[-1]) if summ else None
    c.expect(n_del < N or (m and m.group(1) == "0"),
             "subscriber summary reports 0 lost (%s)" % (summ[-1] if summ else "no summary"))
    anomalies = sp.err_match(r"\[(UNKNOWN_KEY|FORGED|TOO_OLD|MALFORMED|FORGOTTEN)|reject|anomal")
    c.expect(not anomalies, "no anomaly on the subscriber's stderr:\n" + "\n".join(anomalies[:5]))
    epochs = sorted(set(o.get("epoch") for o in delivered))
    c.expect(epoch0 in epochs and epoch1 in epochs,
             "epochs seen include old %s and new %s (seen %s)" % (epoch0, epoch1, epochs))
    # The stream: old epoch first, then new, never back to old once new began.
    seq_epochs = [o.get("epoch") for o in sorted(delivered, key=lambda o: h.payload_of(o))]
    first_new = seq_epochs.index(epoch1) if epoch1 in seq_epochs else None
    c.expect(first_new is not None and all(e == epoch1 for e in seq_epochs[first_new:]),
             "the publisher switched to the new epoch once and for all (message %s)" % first_new)
    # Publisher reload and announcement within ~1 s of the rotation.
    ann = [(t, p) for t, tp, p, _r in adv.seen(lambda m: m[1] == "e2e/control/%08x" % s.sender_id)]
    ann_ok = [(t, h.parse_ctl(p)) for t, p in ann
              if h.ctl_verify(s.sign_pk, "e2e/control/%08x" % s.sender_id, p)]
    ann_new = [t for t, d in ann_ok if d and d["type"] == h.CTL_ANNOUNCE and d["epoch"] == epoch1]
    c.expect(ann_new, "signed announcement of epoch %s on e2e/control/%08x" % (epoch1, s.sender_id))
    if ann_new:
        c.expect(ann_new[0] - t_rot <= 2.5,
                 "announcement %.2f s after keytool rotate (reload within ~1 s)" % (
                     ann_new[0] - t_rot))
    # Rate, end to end: first line written .. last message delivered.
    if delivered and n_del >= N:
        t_last = max(o["_t"] for o in delivered)
        dur = t_last - marks["start"]
        rate = len(delivered) / dur if dur > 0 else 0
        h.log("stream: %d msgs in %.2f s = %.0f msg/s end to end; publisher done after %.2f s" % (
            N, dur, rate, t_pub_done - marks["start"]))
        c.expect(rate >= MIN_RATE, "end-to-end rate %.0f msg/s >= %d" % (rate, MIN_RATE))


if __name__ == "__main__":
    h.main("rotation", body)
