#!/usr/bin/python3
"""Failover (issue 17 item 2): several brokers for e2e-proxy and e2e-sub.

Two independent mosquittos A and B (the same PKI). The proxy runs with
--broker A --broker B, the subscriber with -h/-p A and --broker B. Then:

1. A second subscriber given "--broker <closed port>,B" connects at start
   through the second address: both --broker values are used, in order.
2. Messages through the proxy reach the subscriber on A.
3. A is killed (SIGKILL, by PID; the subscriber paused meanwhile). The
   subscriber reconnects to B and says
   so: the reconnect line and its --json event name A as lost and B as now
   used; the proxy's next upstream connections (publishers' relays and the
   key service) go to B and it logs the failover naming both. Messages
   published after the failover arrive OK; nothing is FORGED or REPLAYED.
4. A comes back and B is killed: both move back to A (each reconnection
   round starts from the first broker), again naming the broker lost.
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

TOPIC = "sensors/failover"
BAD = ("FORGED", "REPLAYED", "MALFORMED")


def verdicts(sp):
    return [h.verdict_of(o) for o in sp.messages() if o.get("topic") == TOPIC]


def events(sp):
    return [o for o in sp.messages() if o.get("event") == "reconnected"]


def publish(pub, c, ids):
    for m in ids:
        pub.publish(TOPIC, m, qos=1)
    c.require(h.wait_until(lambda: set(ids) <= pub.acked_set(), 20),
              "the broker acknowledged %s..%s" % (ids[0], ids[-1]))


def body(env, c):
    a = ph.Mosquitto(env, name="mosq-a")
    b = ph.Mosquitto(env, name="mosq-b")
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["sensors/#"])])
    alice = h.Subscriber(env, "alice", trust=[s])
    bob = h.Subscriber(env, "bob", trust=[s])
    s.enroll(alice, ["telemetry"])
    s.enroll(bob, ["telemetry"])
    px = ph.Proxy(env, a.addr(), ["--cafile", a.pki["ca_crt"], "--dir", s.dir,
                                  "--broker", b.addr(), "--summary-interval", "2s"])
    c.expect(px.err_match(r"relaying to %s,%s .*failover" % (re.escape(a.addr()),
                                                              re.escape(b.addr()))),
             "the proxy takes both brokers, in order")
    sp = h.start_sub(env, a, alice, [TOPIC], name="sub", qos=1,
                     args=["--show-all", "--broker", b.addr()])
    c.require(sp.wait_err(h.EV_KEY, 15), "subscriber got the key")
    # 1: the first address of a --broker list is down, the second is used.
    dead = h.free_port()
    sp2 = h.Proc(env, "sub-list", [env.sub_bin, "--cafile", a.pki["ca_crt"], "--dir", bob.dir,
                                   "--json", "-q", "1", "-t", TOPIC, "--show-all", "--broker",
                                   "127.0.0.1:%d,%s" % (dead, b.addr())], parse_json=True)
    # (The key service is on A for now: its key comes after the failover.)
    c.require(b.wait_log(r"New client connected .* as e2e-", 10) and sp2.alive(),
              "a subscriber whose first --broker is down connects to the second")

    pub = ph.PahoPub(env, px.port, "failover-pub", inflight=20)
    first = ["f-%03d" % i for i in range(20)]
    publish(pub, c, first)
    c.require(h.wait_until(lambda: set(first) <= set(ph.delivered(sp, TOPIC)), 15),
              "messages through the proxy on A reach the subscriber")

    # 3: A dies.
    # The subscriber is paused across the kill (as a busy host would be): it
    # finds the connection dead only on waking, with the key service and
    # proxy already moved.
    t_kill = time.monotonic()
    os.kill(sp.pid, signal.SIGSTOP)
    time.sleep(1)
    os.kill(a.proc.pid, signal.SIGKILL)
    a.proc.wait_exit(5)
    os.kill(sp.pid, signal.SIGCONT)
    c.require(sp.wait_err(r"reconnected: broker %s lost, now %s \(failover\)" % (
        re.escape(a.addr()), re.escape(b.addr())), 20, since=t_kill),
        "the subscriber reconnects to B and names A as the broker lost")
    h.wait_until(lambda: events(sp), 5)   # stdout and stderr are read apart
    ev = events(sp)
    c.expect(ev and ev[-1].get("broker_lost") == a.addr() and ev[-1].get("broker") == b.addr()
             and ev[-1].get("failover") is True,
             "--json has the reconnect event naming A lost and B now: %s" % ev[-1:])
    c.require(h.wait_until(lambda: pub.connected.is_set(), 20),
              "the publisher reconnected through the proxy")
    c.expect(px.wait_err(r"upstream failover: broker %s lost, now %s" % (
        re.escape(a.addr()), re.escape(b.addr())), 20),
        "the proxy's upstream failed over to B and logged it")
    second = ["s-%03d" % i for i in range(20)]
    publish(pub, c, second)
    c.require(h.wait_until(lambda: set(second) <= set(ph.delivered(sp, TOPIC)), 15),
              "after the failover, messages reach the subscriber through B")
    c.expect(sp2.wait_err(h.EV_KEY, 20) and
             h.wait_until(lambda: set(second) <= set(ph.delivered(sp2, TOPIC)), 15),
             "and to the subscriber started on the list's second address (its key from the "
             "key service, now on B too)")

    # 4: A returns, B dies: back to A.
    a.restart()
    time.sleep(1.5)
    t_b = time.monotonic()
    os.kill(b.proc.pid, signal.SIGKILL)
    b.proc.wait_exit(5)
    c.require(sp.wait_err(r"reconnected: broker %s lost, now %s \(failover\)" % (
        re.escape(b.addr()), re.escape(a.addr())), 40, since=t_b),
        "with A back and B dead, the subscriber goes back to A")
    c.require(h.wait_until(lambda: pub.connected.is_set(), 30),
              "the publisher reconnected through the proxy again")
    third = ["t-%03d" % i for i in range(20)]
    publish(pub, c, third)
    c.require(h.wait_until(lambda: set(third) <= set(ph.delivered(sp, TOPIC)), 20),
              "messages reach the subscriber through A again")
    bad = [v for v in verdicts(sp) + verdicts(sp2) if v in BAD]
    c.expect(not bad, "nothing FORGED, REPLAYED or MALFORMED: %s" % bad[:5])
    c.expect(not sp.err_match(r"insider forgery|in no summary|anomaly"),
             "no false alarm: %s" % sp.err_match(r"insider forgery|in no summary|anomaly")[:3])
    pub.close()
    c.expect(sp.stop() == 0, "subscriber exits 0")
    sp2.stop()


if __name__ == "__main__":
    h.main("proxy-failover", body)
