#!/usr/bin/python3
"""Proxy 13: a slow disk and rotations every second do not make the relay
seal do file work (issue 15).

e2e-proxy runs with every fsync of its state files delayed by 100 ms
(E2E_FSYNC_DELAY_MS, failpoint builds only) and rotate-age 1 s. Five
bursts of publishes spread over rotations go through it. Checks: every
publish is sealed, keys rotated meanwhile (announcements), and no seal
found its key without a durable reservation (stats "seals_waited" = 0): a
rotated key is made ready by the I/O thread, reservations are kept ahead
by it, so the event loop's seals never read, lock or sync a file
themselves.
"""
import os
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxyharness as ph  # noqa: E402

h = ph.h
BURSTS, PER_BURST = 5, 400


def body(env, c):
    broker = ph.Mosquitto(env)
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["sensors/#"]),
                                      (2, "alarms", ["alarms/#"])])
    px = ph.Proxy(env, broker.addr(), ["--cafile", broker.pki["ca_crt"], "--dir", s.dir,
                                       "--rotate-age", "1s"],
                  extra_env={"E2E_FSYNC_DELAY_MS": "100"}, timeout=30)
    for b in range(BURSTS):
        lines = "".join("b%d-%05d\n" % (b, i) for i in range(PER_BURST)).encode()
        for topic in ("sensors/x", "alarms/y"):
            h.run(env, "pub-%d-%s" % (b, topic[0]), [ph.MOSQ_PUB, "-h", ph.LOCAL, "-p",
                  str(px.port), "-q", "0", "-t", topic, "-l", "-i", "slow-%d" % b],
                  input=lines, timeout=60)
        time.sleep(0.7)
    time.sleep(1.0)
    st = px.stats()
    c.require(st is not None, "stats socket answers")
    h.log("stats: %r" % st)
    total = BURSTS * PER_BURST * 2
    c.expect(st["messages"]["sealed"] == total, "%d publishes sealed (%d)" % (
        total, st["messages"]["sealed"]))
    c.expect(st["key_service"]["announcements"] >= 2,
             "keys rotated while publishing (%d announcements)" %
             st["key_service"]["announcements"])
    c.expect(st.get("seals_waited") == 0,
             "no seal waited for a reservation (seals_waited %r)" % st.get("seals_waited"))
    px.stop()


if __name__ == "__main__":
    h.main("proxy-slow-disk", body)
