#!/usr/bin/python3
"""Failover on a real cluster (issue 17 item 2), suite 'slow'.

A private 3-node RabbitMQ cluster (rabbit.py). QoS 1 load runs through
e2e-proxy into node 1 (two topics, signed summaries every second). e2e-sub
reads from node 3 and is given all three nodes (-h/-p node 3, --broker
node 1,node 2). The subscriber is paused (SIGSTOP) for 3 s so that its queue
on node 3 fills with messages and summaries, then node 3's Erlang VM is
killed with SIGKILL by its PID: that queue is gone, with the messages the
cluster had acknowledged and the summaries covering them. The subscriber is
resumed. It must:

  * reconnect to another node, and say so: the reconnect line and its
    --json event name node 3 as the broker lost and node 1 as now used;
  * hand over every message the broker delivered with verdict OK (GAP/LATE:
    delivered, with the loss noted), and only messages that were sent;
  * report the messages the cluster lost as never arrived, per topic, with
    exactly the count lost (the seqs 1..highest sealed, seen by a plain
    subscriber on node 2, that e2e-sub did not get: a publisher's QoS 1
    resend is sealed again, so payloads are not the unit), using the
    history of the first summary after the outage for the summaries that
    were lost with them;
  * report nothing FORGED, DUPLICATE, TOO_OLD (replayed) or MALFORMED, and
    raise no insider-forgery or unsummarized alarm.
"""

import collections
import os
import re
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proxy_it"))
import proxyharness as ph  # noqa: E402

h = ph.h
sys.path.insert(0, HERE)
import rabbit  # noqa: E402

SKIP = 77
BAD = ("FORGED", "DUPLICATE", "TOO_OLD", "MALFORMED", "FORGOTTEN")
NEVER = re.compile(r"(\d+) message\(s\) of '([^']+)' seqs \d+\.\.\d+ from pa never arrived")
HIST = re.compile(r"of '([^']+)' .*listed by its summary \d+, lost as well")


class RawSeqs:
    """A plain subscriber on a node that stays up: the seq of every envelope
    the proxy sealed on each topic (SPEC 3 header), the ground truth."""

    def __init__(self, env, port, topic_filter):
        import paho.mqtt.client as mqtt
        self.lock = threading.Lock()
        self.seqs = collections.defaultdict(set)
        self.ready = threading.Event()
        self.c = mqtt.Client(client_id="raw-" + os.urandom(4).hex(), clean_session=True)
        self.c.on_connect = lambda c, u, f, rc: c.subscribe(topic_filter, qos=1)
        self.c.on_subscribe = lambda c, u, mid, q: self.ready.set()
        self.c.on_message = self._msg
        self.c.connect(ph.LOCAL, port, keepalive=30)
        self.c.loop_start()
        env.clients.append(self)
        if not self.ready.wait(10):
            raise h.TestFailure("raw subscriber on node 2 not subscribed")

    def _msg(self, c, u, m):
        if len(m.payload) >= 24:
            with self.lock:
                self.seqs[m.topic].add(int.from_bytes(m.payload[20:24], "big"))

    def get(self, topic):
        with self.lock:
            return set(self.seqs[topic])

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


class Load(threading.Thread):
    """QoS 1 messages through the proxy, alternating two topics, ~60/s."""

    def __init__(self, pub, topics):
        super().__init__(daemon=True)
        self.pub, self.topics = pub, topics
        self.sent = collections.defaultdict(list)
        self.stop_ev = threading.Event()
        self.n = 0

    def run(self):
        while not self.stop_ev.is_set():
            t = self.topics[self.n % len(self.topics)]
            p = "ld-%06d" % self.n
            self.pub.publish(t, p, qos=1)
            self.sent[t].append(p)
            self.n += 1
            time.sleep(0.016)


def body(env, c):
    why = rabbit.available()
    if why:
        print("SKIP: " + why, flush=True)
        sys.exit(SKIP)
    cl = rabbit.Cluster(env)
    c.require(len(cl.running) == 3, "3 RabbitMQ nodes running: %s" % cl.running)
    n1, n2, n3 = (nd.ep for nd in cl.nodes)
    prefix = "fo-" + os.urandom(4).hex()
    topics = [prefix + "/line1", prefix + "/line2"]
    pa = h.Sender(env, "pa", scopes=[(1, "plant", [prefix + "/#"])])
    s3 = h.Subscriber(env, "s3", trust=[pa])
    pa.enroll(s3, ["plant"])
    px = ph.Proxy(env, n1.addr(), ["--tls", "no", "--dir", pa.dir, "--broker", n2.addr(),
                                   "--summary-interval", "1s"], name="proxy")
    sub = h.start_sub(env, n3, s3, [prefix + "/#"], name="e2e-sub-node3",
                      args=["--show-all", "--broker", "%s,%s" % (n1.addr(), n2.addr())])
    c.require(sub.wait_err(r"key received from pa", 30), "the subscriber on node 3 got pa's key")
    raw = RawSeqs(env, n2.port, prefix + "/#")
    pub = ph.PahoPub(env, px.port, "fo-pub", inflight=50)
    load = Load(pub, topics)
    load.start()
    c.require(h.wait_until(lambda: len(ph.delivered(sub)) >= 100, 20),
              "QoS 1 load flows through node 1 to the subscriber on node 3")
    time.sleep(2.5)                       # a few summaries verified before the outage
    # The subscriber stops reading: its queue on node 3 fills.
    os.kill(sub.pid, signal.SIGSTOP)
    time.sleep(3)
    pid = cl.nodes[2].beam_pid()
    c.require(pid is not None, "node 3's VM PID is known")
    t_kill = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    c.require(h.wait_until(lambda: not cl.nodes[2].mqtt_up(), 10), "node 3 is down")
    os.kill(sub.pid, signal.SIGCONT)
    c.expect(sub.wait_err(r"reconnected: broker %s lost, now %s \(failover\)" % (
        re.escape(n3.addr()), re.escape(n1.addr())), 30, since=t_kill),
        "the subscriber reconnects to node 1 and names node 3 as the broker lost")
    h.wait_until(lambda: [o for o in sub.messages() if o.get("event") == "reconnected"], 5)
    ev = [o for o in sub.messages() if o.get("event") == "reconnected"]
    c.expect(ev and ev[-1].get("broker_lost") == n3.addr() and ev[-1].get("broker") == n1.addr(),
             "--json: the reconnect event names node 3 lost, node 1 now: %s" % ev[-1:])
    time.sleep(4)                         # load after the failover
    load.stop_ev.set()
    load.join(5)
    c.require(h.wait_until(lambda: sum(len(v) for v in load.sent.values()) ==
                           len(pub.acked_set()), 20),
              "the cluster acknowledged every message sent (%d)" % load.n)
    time.sleep(4)                         # the last summaries, and their 1 s check delay
    rc = sub.stop()
    acked = pub.acked_set()
    msgs = [o for o in sub.messages() if o.get("topic") in topics]
    verdicts = collections.Counter(h.verdict_of(o) for o in msgs)
    h.log("verdicts: %s" % dict(verdicts))
    c.expect(not any(verdicts[v] for v in BAD),
             "nothing FORGED, DUPLICATE, TOO_OLD (replayed), MALFORMED: %s" % dict(verdicts))
    got = {t: set(ph.delivered(sub, t)) for t in topics}
    c.expect(all(got[t] <= set(load.sent[t]) for t in topics) and
             all(h.verdict_of(o) in h.DELIVERING for o in msgs),
             "every message the broker delivered is handed over (OK; GAP/LATE noting a loss), "
             "and only messages that were sent")
    h.log("messages acknowledged by the cluster and never delivered: %s" % {
        t: len(set(load.sent[t]) & acked - got[t]) for t in topics})
    # Per topic, the envelopes sealed (seen on node 2) that e2e-sub never got.
    seqs = collections.defaultdict(set)
    for o in msgs:
        if h.verdict_of(o) in h.DELIVERING:
            seqs[o["topic"]].add(o.get("seq"))
    # A stream's seqs are consecutive as sealed (SPEC 5.1): 1 .. the highest
    # one seen anywhere. (The node-2 subscriber alone may miss one as well.)
    sealed = {t: set(range(1, max(raw.get(t) | seqs[t]) + 1)) for t in topics}
    h.log("sealed seqs the node-2 subscriber missed: %s" % {
        t: len(sealed[t] - raw.get(t)) for t in topics})
    lost = {t: len(sealed[t] - seqs[t]) for t in topics}
    h.log("envelopes sealed never delivered: %s" % lost)
    c.require(sum(lost.values()) > 0, "the cluster lost acknowledged messages with node 3")
    never = collections.Counter()
    hist = collections.Counter()
    for line in sub.err_match(r"never arrived"):
        m = NEVER.search(line)
        if m:
            never[m.group(2)] += int(m.group(1))
        m = HIST.search(line)
        if m:
            hist[m.group(1)] += 1
    for line in sub.err_match(r"never arrived|missing|reconnect|connection lost"):
        h.log("sub: " + line)
    # Each range reported against the seqs that were delivered in it.
    for line in sub.err_match(r"never arrived"):
        m = re.search(r"(\d+) message\(s\) of '([^']+)' seqs (\d+)\.\.(\d+)", line)
        if m:
            a, b = int(m.group(3)), int(m.group(4))
            d = sorted(x for x in seqs[m.group(2)] if a <= x <= b)
            h.log("range %s %d..%d: reported %s, delivered in it %s" % (
                m.group(2)[-5:], a, b, m.group(1), d))
    c.expect(all(never[t] == lost[t] for t in topics),
             "per topic, the messages reported never arrived are exactly the envelopes the "
             "cluster lost: reported %s, lost %s" % (dict(never), lost))
    c.expect(all(hist[t] > 0 for t in topics if lost[t]),
             "the counts of the summaries lost with node 3 come from a later summary's "
             "history, for every topic that lost messages: %s" % dict(hist))
    c.expect(not sub.err_match(r"insider forgery|is in no summary"),
             "no insider-forgery or unsummarized alarm: %s" %
             sub.err_match(r"insider forgery|is in no summary")[:3])
    line = (sub.err_match(r"summaries: \d+ received") or [""])[-1]
    h.log("sub: " + line)
    c.expect(rc is not None, "the subscriber exits when stopped (rc %s)" % rc)
    pub.close()


if __name__ == "__main__":
    h.main("cluster-failover", body)
