#!/usr/bin/python3
"""Proxy 9: the broker crashes, then the proxy crashes; nothing false is said.

1. Broker outage: mosquitto (no persistence) is killed with SIGKILL while
   the proxy, its key service, e2e-sub and a publisher with a persistent
   session (QoS 1) run, then started again on the same port. The proxy
   keeps running and reports the loss, its key service and the subscriber
   reconnect and resubscribe by themselves, and the messages the publisher
   queued during the outage are acknowledged after it. The broker lost its
   sessions, so what it delivered before the subscriber resubscribed is
   gone: the subscriber must report exactly those as missing (GAP, then
   lost/pending), deliver everything else once, report the summaries that
   were never sent as missing, and raise no insider-forgery alarm for the
   messages those summaries would have covered.
2. Proxy crash: SIGKILL, restarted on the same port and state. Its
   summaries are numbered from 1 again: the subscriber takes them as new
   (signed times, not numbers, order summaries across restarts) instead of
   replays, and calls nothing a forgery; when the proxy then stops for good,
   the subscriber reports the stall.
"""
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxyharness as ph  # noqa: E402

h = ph.h

TOPIC = "sensors/outage"
N_BEFORE, N_DURING, N_AFTER, N_RESTART = 100, 30, 100, 60
INTERVAL = 2          # s between summaries: room to seal and deliver between two
FALSE_ALARMS = r"insider forgery|in no summary|control message rejected|anomaly"


def not_checked(sp):
    """Messages the subscriber reported 'not checked', over the whole run."""
    return sum(int(m.group(1)) for m in (
        re.search(r"(\d+) accepted message\(s\) from edge .* not checked", l)
        for l in sp.err_match(r"not checked")) if m)


def body(env, c):
    broker = ph.Mosquitto(env)
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["sensors/#"])])
    alice = h.Subscriber(env, "alice", trust=[s])
    s.enroll(alice, ["telemetry"])
    args = ["--cafile", broker.pki["ca_crt"], "--dir", s.dir, "--summary-interval",
            "%ds" % INTERVAL]
    px = ph.Proxy(env, broker.addr(), args)
    sp = h.start_sub(env, broker, alice, [TOPIC], name="sub", qos=1,
                     args=["--show-all", "-i", "outage-sub"])
    c.require(sp.wait_err(h.EV_KEY, 15), "subscriber got the key")
    raw = ph.RawSub(env, broker, topics=(h.CONTROL_TOPIC + "/+",), name="raw-control")
    pub = ph.PahoPub(env, px.port, "outage-pub", clean_session=False, inflight=20)
    # Right after a summary (the subscriber has seen one, so later numbers
    # reveal the missing ones): the next one, which would cover the first
    # messages, is then due when the broker is already gone.
    n0 = len(raw.lines())
    c.require(h.wait_until(lambda: len(raw.lines()) > n0, 2 * INTERVAL + 2, step=0.01),
              "a summary went by")
    t_sum = time.monotonic()

    def obs():
        return [o for o in sp.messages() if o.get("topic") == TOPIC]

    def delivered():
        return ph.delivered(sp, TOPIC)

    ids = ["o-%04d" % i for i in range(N_BEFORE + N_DURING + N_AFTER + N_RESTART)]
    during = ids[N_BEFORE:N_BEFORE + N_DURING]
    after = ids[N_BEFORE + N_DURING:N_BEFORE + N_DURING + N_AFTER]
    restart = ids[N_BEFORE + N_DURING + N_AFTER:]
    for m in ids[:N_BEFORE]:
        pub.publish(TOPIC, m, qos=1)
    c.require(h.wait_until(lambda: len(pub.acked_set()) >= N_BEFORE, 20) and
              h.wait_until(lambda: len(delivered()) >= N_BEFORE, 20),
              "before the outage: %d acknowledged and delivered" % N_BEFORE)

    # ---- 1. the broker dies --------------------------------------------------
    t_kill = time.monotonic()
    broker.proc.stop(signal.SIGKILL)
    raw.stop()
    h.log("broker killed %.2f s after a summary (interval %d s)" % (t_kill - t_sum, INTERVAL))
    c.expect(px.wait_err(r"key service: connection lost", 10, since=t_kill),
             "proxy: 'key service: connection lost'")
    c.expect(sp.wait_err(r"connection lost", 10, since=t_kill),
             "subscriber: 'connection lost (reconnecting)'")
    for m in during:
        pub.publish(TOPIC, m, qos=1)      # the publisher queues them: nothing takes them
    time.sleep(3)
    c.expect(px.alive() and sp.alive(), "proxy and subscriber still running 3 s into the outage")
    c.expect(len(pub.acked_set()) == N_BEFORE,
             "nothing acknowledged while the broker is down (%d)" % len(pub.acked_set()))
    c.expect(px.err_match(r"cannot reach broker", t_kill),
             "proxy: publishers' connections refused with 'cannot reach broker'")

    t_back = time.monotonic()
    broker.restart()
    c.expect(px.wait_err(r"key service: connected", 30, since=t_back),
             "proxy: 'key service: connected' again")
    c.expect(sp.wait_err(r"reconnected", 30, since=t_back), "subscriber reconnected")
    c.expect(h.wait_until(lambda: len(pub.acked_set()) >= N_BEFORE + N_DURING, 30),
             "the %d messages queued during the outage are acknowledged after it (%d; %d "
             "publisher connects)" % (N_DURING, len(pub.acked_set()), pub.connects))
    # Resubscribed by now: what follows must all arrive.
    time.sleep(1)
    for m in after:
        pub.publish(TOPIC, m, qos=1)
    c.expect(h.wait_until(lambda: len(pub.acked_set()) >= N_BEFORE + N_DURING + N_AFTER, 30),
             "all %d acknowledged" % (N_BEFORE + N_DURING + N_AFTER))
    h.wait_until(lambda: all(m in delivered() for m in after), 20)
    time.sleep(2 * INTERVAL + 1.5)    # two summaries go by: everything is judged
    got = delivered()
    lost = [m for m in during if m not in got]
    c.expect(all(got[m] == 1 for m in ids[:N_BEFORE] + after),
             "before and after the outage: every message delivered exactly once")
    gaps = sum(o.get("gap", 0) for o in obs() if h.verdict_of(o) == "GAP") - \
        sum(1 for o in obs() if h.verdict_of(o) == "LATE")
    h.log("published during the outage: %d; %d delivered, %d lost by the restarted broker "
          "(it delivered them before the subscriber resubscribed)" % (
              N_DURING, N_DURING - len(lost), len(lost)))
    c.expect(gaps == len(lost), "the subscriber reported exactly the %d lost ones by GAPs (%d)" % (
        len(lost), gaps))
    c.expect(all(got[m] <= 1 for m in during), "none of them delivered twice")
    sums = sp.err_match(r"summary: ", t_kill)
    for line in sums:
        h.log("sub: " + line)
    c.expect(any(re.search(r"summary\(ies\) of edge missing", l) for l in sums),
             "subscriber: the summaries not sent during the outage are reported missing")
    unchecked = not_checked(sp)
    c.expect(unchecked == N_BEFORE or t_kill - t_sum >= INTERVAL,
             "the %d messages sealed before the crash, whose summary was never sent: %d "
             "'not checked', none blamed" % (N_BEFORE, unchecked))
    c.expect(not sp.err_match(FALSE_ALARMS),
             "no insider-forgery, unsummarized, rejection or anomaly report: %s" %
             sp.err_match(FALSE_ALARMS)[:3])

    # ---- 2. the proxy dies ----------------------------------------------------
    t_px = time.monotonic()
    px.stop(signal.SIGKILL)
    px2 = ph.Proxy(env, broker.addr(), args, name="proxy-restarted", port=px.port)
    for m in restart:
        pub.publish(TOPIC, m, qos=1)
    c.expect(h.wait_until(lambda: len(pub.acked_set()) >= len(ids), 30),
             "after the proxy restart: all %d acknowledged (%d publisher connects)" % (
                 len(ids), pub.connects))
    c.expect(h.wait_until(lambda: all(m in delivered() for m in restart), 20),
             "every message after the proxy restart delivered")
    time.sleep(2 * INTERVAL + 1.5)    # two summaries of the new run arrive and are checked
    sums = sp.err_match(r"summary: ", t_px)
    for line in sums:
        h.log("sub: " + line)
    c.expect(not sp.err_match(FALSE_ALARMS),
             "still no insider-forgery, unsummarized, rejection or anomaly report: %s" %
             sp.err_match(FALSE_ALARMS)[:3])
    c.expect(px2.alive() and sp.alive(), "proxy and subscriber still running")
    # Taken as new, the restarted proxy's summaries cleared any stall: when it
    # stops for good, the subscriber notices (a subscriber that took them for
    # replays would still be stalled, and say nothing new).
    t_stop = time.monotonic()
    px2.stop()
    c.expect(sp.wait_err(r"summary: no summary from edge", 2.5 * INTERVAL + 3, since=t_stop),
             "the restarted proxy's summaries (numbered from 1 again) were taken as new: "
             "its final stop is reported as a stall")
    c.expect(sp.stop() == 0, "subscriber exits 0")
    line = (sp.err_match(r"summaries: \d+ received") or [""])[-1]
    h.log("sub: " + line)
    m = re.search(r"summaries: (\d+) received; entries verified (\d+), contradicted (\d+); "
                  r"messages never arrived (\d+), unsummarized (\d+), not checked (\d+); "
                  r"stalls (\d+)", line)
    c.expect(m and int(m.group(2)) > 0 and int(m.group(3)) == 0 and int(m.group(5)) == 0 and
             int(m.group(6)) == not_checked(sp) and int(m.group(7)) >= 2,
             "exit line: summaries verified entries, none contradicted or unsummarized, "
             "%d not checked as reported, >= 2 stalls (outage, final stop)" % not_checked(sp))
    pub.close()


if __name__ == "__main__":
    h.main("proxy-outages", body)
