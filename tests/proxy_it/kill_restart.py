#!/usr/bin/python3
"""Proxy 5: SIGKILL the proxy under QoS 1 load, restart it.

A paho-mqtt publisher with a persistent session (clean_session=False, fixed
client id, resends unacknowledged QoS 1 on reconnect) streams N messages
through the proxy; when about a third are acknowledged the proxy is killed
with SIGKILL and restarted on the same port and state directory. Checks:
  * the publisher reconnects and every message is acknowledged in the end;
  * e2e-sub --json --show-all sees every message id at least once with a
    delivering verdict; an id delivered more than once came in that many
    distinct envelopes at the broker (a redelivered envelope must be flagged
    DUPLICATE, not delivered again);
  * at the broker (raw mosquitto_sub -F '%t %x'): every envelope opens with
    the sender's key to an id of the stream, no (sender, scope, epoch, run,
    counter) header tuple repeats (no nonce reuse), the restart drew a new
    run, and its counters start above every counter used before the kill
    (SPEC 4.1 reservation).
"""
import collections
import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxyharness as ph  # noqa: E402

h = ph.h

N = 5000
TOPIC = "sensors/load"


def body(env, c):
    broker = ph.Mosquitto(env)
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["sensors/#"])])
    alice = h.Subscriber(env, "alice", trust=[s])
    s.enroll(alice, ["telemetry"])
    args = ["--cafile", broker.pki["ca_crt"], "--dir", s.dir]
    px = ph.Proxy(env, broker.addr(), args)
    raw = ph.RawSub(env, broker, topics=(TOPIC,), fmt="%t %x", name="raw-env")
    sp = h.start_sub(env, broker, alice, [TOPIC], name="sub", qos=1,
                     args=["--state", "none", "--show-all"])
    c.require(sp.wait_err(h.EV_KEY, 15), "subscriber got the key")

    pub = ph.PahoPub(env, px.port, "loadgen", clean_session=False, inflight=20)
    ids = ["m-%05d" % i for i in range(N)]
    stop = threading.Event()

    def produce():
        for i, m in enumerate(ids):
            if stop.is_set():
                return
            pub.publish(TOPIC, m, qos=1)
            if i % 50 == 49:
                time.sleep(0.01)     # steady load, not one burst in paho's queue
    t = threading.Thread(target=produce, daemon=True)
    t.start()
    c.require(h.wait_until(lambda: len(pub.acked_set()) >= N // 3, 60),
              "a third of the stream acknowledged before the kill (%d)" % len(pub.acked_set()))
    at_kill = len(pub.acked_set())
    old_pid = px.pid
    px.stop(signal.SIGKILL)
    h.log("proxy killed with %d of %d acknowledged" % (at_kill, N))
    c.expect(at_kill < N, "killed mid-stream (%d of %d acknowledged)" % (at_kill, N))
    px2 = ph.Proxy(env, broker.addr(), args, name="proxy-restarted", port=px.port)
    c.expect(px2.pid != old_pid and px2.alive(), "proxy restarted on port %d" % px.port)

    done = h.wait_until(lambda: len(pub.acked_set()) >= N, 90)
    stop.set()
    t.join(5)
    acked = pub.acked_set()
    c.expect(done, "publisher: all %d acknowledged after the restart (%d; %d connects)" % (
        N, len(acked), pub.connects))
    c.expect(pub.connects >= 2, "publisher reconnected through the restarted proxy (%d connects)"
             % pub.connects)

    h.wait_until(lambda: len(ph.delivered(sp)) >= N, 30)
    per_id = ph.delivered(sp)
    got = set(per_id)
    missing = [m for m in ids if m not in got]
    c.expect(not missing, "subscriber: every id delivered at least once (%d missing: %s)" % (
        len(missing), missing[:10]))
    verdicts = collections.Counter(h.verdict_of(o) for o in sp.messages())
    c.expect(set(verdicts) <= set(h.DELIVERING) | {"DUPLICATE"},
             "subscriber verdicts are delivering or DUPLICATE only: %s" % dict(verdicts))
    dups = {m: n for m, n in per_id.items() if n > 1}
    h.log("ids delivered more than once: %d (verdict counts %s)" % (len(dups), dict(verdicts)))

    # Everything the broker saw.
    h.wait_until(lambda: len(raw.hex_payloads(TOPIC)) >= sum(per_id.values()), 10)
    envs = raw.hex_payloads(TOPIC)
    tuples = collections.Counter()
    envelopes_per_id = collections.Counter()
    runs = collections.OrderedDict()
    unopened = 0
    for topic, payload in envs:
        e = h.env_parse(payload or b"")
        if not e:
            unopened += 1
            continue
        tuples[(e["sender"], e["scope"], e["epoch"], e["run"], e["counter"])] += 1
        runs.setdefault(e["run"], []).append(e["counter"])
        pt = ph.env_open(s, topic, payload)
        if pt is None:
            unopened += 1
        else:
            envelopes_per_id[pt.decode(errors="replace")] += 1
    c.expect(len(envs) >= N and unopened == 0,
             "broker saw %d envelopes, all open with the sender's key (%d did not)" % (
                 len(envs), unopened))
    c.expect(set(envelopes_per_id) <= set(ids) and len(envelopes_per_id) == N,
             "the envelopes carry exactly the %d ids of the stream (%d)" % (N,
                                                                          len(envelopes_per_id)))
    reused = [k for k, n in tuples.items() if n > 1]
    c.expect(not reused, "no (sender, scope, epoch, run, counter) repeats among %d envelopes "
             "(%d repeated: %s)" % (len(envs), len(reused), reused[:3]))
    over = {m: (n, envelopes_per_id[m]) for m, n in per_id.items() if n > envelopes_per_id[m]}
    c.expect(not over, "no envelope delivered twice as new: ids delivered more often than they "
             "were sealed: %s" % list(over.items())[:5])
    rl = list(runs.items())
    c.expect(len(rl) >= 2, "the restart drew a new run (%d runs: %s)" % (
        len(rl), [hex(r) for r, _ in rl]))
    if len(rl) >= 2:
        before = max(rl[0][1])
        after = min(min(v) for _r, v in rl[1:])
        c.expect(after > before, "counters after the restart (from %d) are above every counter "
                 "used before it (up to %d)" % (after, before))
    c.expect(px2.alive(), "restarted proxy still running")
    pub.close()


if __name__ == "__main__":
    h.main("proxy-kill-restart", body)
