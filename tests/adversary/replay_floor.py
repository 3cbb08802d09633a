#!/usr/bin/python3
"""A replay is never accepted, however many streams came between (issue 13
item 6, SPEC 5.8).

A subscriber tracks at most --max-streams streams and remembers as many
evicted ones; before replay floors, a stream pushed out of both was
forgotten for good and its old envelopes were accepted again as new (OK).
Here the malicious broker (the man in the middle between mosquitto and the
subscriber) waits until the subscriber has seen many more streams than it
can hold, then replays:

  * the first message of the first stream, long forgotten: FORGOTTEN;
  * a message of a stream still tracked: DUPLICATE (the control);
  * after the sender publishes on the first topic again (a new message,
    accepted OK), the old first message once more: still not delivered.

Nothing replayed is delivered, and the genuine traffic stays OK.
Writes rows of the promise table (advharness.promise_rows).
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import advharness as ah  # noqa: E402

h, mm = ah.h, ah.mm
MAX_STREAMS = 4            # tracked, and as many remembered after eviction
TOPICS = ["m/r/%02d" % i for i in range(20)]   # 5 times what the subscriber can hold


def body(env, c):
    site = ah.Site(env, c)
    site.start_proxy()
    x = site.subscriber("subX")
    sub = site.start_sub(x, ["m/#"], "subX", args=["--max-streams", str(MAX_STREAMS)])
    c.require(sub.wait_err(h.EV_KEY, 15), "subscriber X holds the sender's key")

    # One message on each of 20 topics: the first 12 streams leave the table
    # and the forgotten list for good.
    tr = ah.Traffic(env, site.proxy.port, TOPICS, 1, clients=1, prefix="rpub")
    tr.run()
    c.require(tr.wait_acked(20), "20 messages acknowledged")
    c.require(sub.wait_json(len(TOPICS), 15) >= len(TOPICS), "X received the 20 messages")
    first = [o for o in sub.messages() if o.get("topic") in TOPICS]
    c.expect(len(first) == len(TOPICS) and all(h.verdict_of(o) == "OK" for o in first),
             "all 20 genuine messages OK (%s)" % ah.fmt_tally(ah.tally(first)))

    link = site.sm.link("subX")
    sent = {s.topic.decode(): bytes(s.payload) for s in ah.data_sent(link, b"m/r/")}
    c.require(TOPICS[0] in sent and TOPICS[-1] in sent, "the envelopes written to X are known")

    def replay(topic):
        n = len(sub.messages())
        site.sm.call(link.inject, mm.DOWN, topic, sent[topic])
        sub.wait_json(n + 1, 10)
        got = sub.messages()[n:]
        return got[0] if got else None

    old = replay(TOPICS[0])
    c.expect(old is not None and h.verdict_of(old) == "FORGOTTEN",
             "the first stream's first envelope, replayed after %d other streams: FORGOTTEN, "
             "not delivered (%s)" % (len(TOPICS) - 1, old and h.verdict_of(old)))
    recent = replay(TOPICS[-1])
    c.expect(recent is not None and h.verdict_of(recent) == "DUPLICATE",
             "control: a tracked stream's envelope replayed: DUPLICATE (%s)" % (
                 recent and h.verdict_of(recent)))

    # The sender goes on on the first topic: a genuine new message is accepted,
    # and the old one replayed once more is still refused.
    n = len(sub.messages())
    tr.run(first=1, count=1)
    c.require(tr.wait_acked(20), "second round acknowledged")
    sub.wait_json(n + len(TOPICS), 15)
    again = [o for o in sub.messages()[n:] if o.get("topic") == TOPICS[0]]
    c.expect(again and h.verdict_of(again[0]) in ("OK", "GAP"),
             "a genuine new message on the first topic is accepted (%s)" % (
                 again and h.verdict_of(again[0])))
    old2 = replay(TOPICS[0])
    c.expect(old2 is not None and h.verdict_of(old2) in ("FORGOTTEN", "DUPLICATE", "TOO_OLD"),
             "the old envelope replayed once more: not delivered (%s)" % (
                 old2 and h.verdict_of(old2)))
    delivered_twice = [t for t in TOPICS if sum(
        1 for o in sub.messages() if o.get("topic") == t and h.verdict_of(o) in h.DELIVERING
        and h.payload_of(o) == ("%s#%05d" % (t, 0)).encode()) > 1]
    c.expect(not delivered_twice, "no payload delivered twice (%s)" % delivered_twice)
    c.expect(sub.stop() == 0, "X exits 0")
    ah.promise_rows("adversary-replay-floor", [
        ("13.6 a replay is never accepted, however many streams came between",
         "malicious broker", False,
         "replays a stream's first envelope after the subscriber saw 5x the streams it can "
         "hold (--max-streams %d), and again after the stream went on" % MAX_STREAMS,
         "%s, then %s; control %s" % (old and h.verdict_of(old), old2 and h.verdict_of(old2),
                                       recent and h.verdict_of(recent)),
         not c.failed)])


if __name__ == "__main__":
    h.main("adversary-replay-floor", body)
