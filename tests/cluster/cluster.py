#!/usr/bin/python3
"""The whole chain across a real clustered broker: a private 3-node
RabbitMQ 3.10 cluster (rabbit.py) with its MQTT plugin, on 127.0.0.1.

  mosquitto_pub -> e2e-proxy "pa" -> node 1 \\
  mosquitto_pub -> e2e-proxy "pb" -> node 2  >  cluster  >  node 3 -> e2e-sub
                                                         (node 1 -> e2e-sub: retained)

Every control message crosses the cluster: the subscriber's key requests
(published on node 3) reach the proxies' key services (subscribed on nodes
1 and 2), the deliveries come back, pa's announcement after a rotation
(--rotate-messages) and both proxies' signed summaries (1 s) reach node 3.

What RabbitMQ 3.10 does differently, measured here, and what the proxy does
about it (docs/brokers.md):
  * MQTT 3.1.1 only: an MQTT 5 CONNECT is closed without CONNACK. The proxy
    does not downgrade; it refuses the publisher with a 5.0 CONNACK 0x84
    (unsupported protocol version) and says why in its log.
  * QoS 2 is answered with PUBACK (downgraded to QoS 1): a plain mosquitto_pub
    -q 2 fails on that (protocol error). Through the proxy the publisher's
    QoS 2 flow completes (PUBREC, PUBREL, PUBCOMP), the message arrives once.
  * Retained messages are kept by the node that received them: a subscriber
    on node 1 gets pa's retained message, one on node 3 does not.
  * A persistent session's queue lives on the node it was made on (node 3):
    reachable from node 2 while node 3 runs; with node 3 stopped the session
    cannot resume anywhere (the broker closes it at each attempt), while
    clean sessions on the other nodes go on working.
One cluster start (~30 s), every check on it.
"""

import os
import re
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proxy_it"))
import proxyharness as ph  # noqa: E402

h = ph.h
sys.path.insert(0, HERE)
import rabbit  # noqa: E402

SKIP = 77
LOCAL = ph.LOCAL


def mosq_pub(env, ep_port, topic, lines, qos=1, version="mqttv311", retain=False):
    """mosquitto_pub to 127.0.0.1:ep_port; one message per line (-l) or -m
    for a single one. Returns the CompletedProcess."""
    argv = [ph.MOSQ_PUB, "-h", LOCAL, "-p", str(ep_port), "-V", version, "-q", str(qos),
            "-t", topic, "-i", "mp-" + os.urandom(4).hex()] + (["-r"] if retain else [])
    argv += ["-m", lines[0]] if len(lines) == 1 else ["-l"]
    return h.run(env, "mosquitto_pub", argv, timeout=20, check=False,
                 input=None if len(lines) == 1 else "".join(t + "\n" for t in lines).encode())


def keys_from(sub, name, n=1):
    return len(sub.err_match(r"key received from %s\b" % re.escape(name))) >= n


def body(env, c):
    why = rabbit.available()
    if why:
        print("SKIP: " + why, flush=True)
        sys.exit(SKIP)
    cl = rabbit.Cluster(env)
    c.require(len(cl.running) == 3 and all(n.name in cl.running for n in cl.nodes),
              "3 RabbitMQ nodes, 2 and 3 joined to 1, all running: %s" % cl.running)
    h.log("RabbitMQ RSS (KiB): %s" % cl.rss_kib())
    n1, n2, n3 = (nd.ep for nd in cl.nodes)

    prefix = "cl-" + os.urandom(4).hex()
    pa = h.Sender(env, "pa", scopes=[(1, "plant", [prefix + "/#"])])
    pb = h.Sender(env, "pb", scopes=[(1, "plant", [prefix + "/#"])])
    s3 = h.Subscriber(env, "s3", trust=[pa, pb])
    r1 = h.Subscriber(env, "r1", trust=[pa])
    r3 = h.Subscriber(env, "r3", trust=[pa])
    ps = h.Subscriber(env, "ps", trust=[pa])
    for s in (s3, r1, r3, ps):
        pa.enroll(s, ["plant"])
    pb.enroll(s3, ["plant"])

    # pa rotates after 5 messages: its announcement crosses the cluster too.
    # Each key service has its own client id by default (e2e-keys-<sender
    # id>): a cluster, like one broker, keeps one session per client id and
    # takes it over from the other node, so a shared id would throw them out.
    proxy_a = ph.Proxy(env, n1.addr(), ["--tls", "no", "--dir", pa.dir,
                                        "--summary-interval", "1s", "--rotate-messages", "5"],
                       name="proxy-a")
    proxy_b = ph.Proxy(env, n2.addr(), ["--tls", "no", "--dir", pb.dir,
                                        "--summary-interval", "1s"], name="proxy-b")
    sub = h.start_sub(env, n3, s3, [prefix + "/#"], name="e2e-sub-node3", args=["--strict"])
    c.require(h.wait_until(lambda: (keys_from(sub, "pa") and keys_from(sub, "pb")) or
                           not sub.alive(), 30) and sub.alive(),
              "e2e-sub on node 3 got the keys of pa (node 1) and pb (node 2): key requests "
              "and deliveries crossed the cluster")

    sent = []   # (topic, text, sender name)

    def pub(px, sender, leaf, n, qos=1, version="mqttv311", expect_ok=True):
        topic = "%s/%s/%s" % (prefix, sender.name, leaf)
        texts = [ph.token(sender.name) for _ in range(n)]
        cp = mosq_pub(env, px.port, topic, texts, qos=qos, version=version)
        if expect_ok:
            c.expect(cp.returncode == 0, "mosquitto_pub -V %s -q %d through %s (%d message%s): "
                     "rc 0 (rc %d %s)" % (version, qos, px.name, n, "s" * (n > 1), cp.returncode,
                                          cp.stderr.decode(errors="replace").strip()[-200:]))
            sent.extend((topic, t, sender.name) for t in texts)
        return cp

    pub(proxy_a, pa, "seq", 8)           # crosses the rotation after 5
    pub(proxy_b, pb, "seq", 4)
    pub(proxy_b, pb, "q0", 1, qos=0)

    # QoS 2: what the broker does on its own, then through the proxy.
    raw = mosq_pub(env, n1.port, "probe/" + os.urandom(4).hex(), ["q2"], qos=2)
    c.expect(raw.returncode != 0, "measured: RabbitMQ answers QoS 2 with PUBACK, a plain "
             "mosquitto_pub -q 2 fails on it (rc %d: %s)" % (
                 raw.returncode, raw.stderr.decode(errors="replace").strip()[-120:]))
    since = time.monotonic()
    pub(proxy_a, pa, "q2", 1, qos=2)
    pub(proxy_b, pb, "q2", 2, qos=2)
    c.expect(proxy_a.wait_err(r"answered a QoS 2 PUBLISH with PUBACK", 5, since=since),
             "proxy-a logs that the broker downgrades QoS 2 and that it completes the flow")

    # MQTT 5 publisher: refused clearly, nothing relayed, the proxy carries on.
    since = time.monotonic()
    cp = pub(proxy_b, pb, "v5", 1, qos=1, version="mqttv5", expect_ok=False)
    err = cp.stderr.decode(errors="replace").strip()
    c.expect(cp.returncode != 0 and "protocol version" in err.lower(),
             "an MQTT 5 publisher through the proxy is refused with 'unsupported protocol "
             "version' (rc %d: %s)" % (cp.returncode, err[-160:]))
    c.expect(proxy_b.wait_err(r"MQTT 3\.1\.1 only", 5, since=since),
             "proxy-b says why: the broker closed an MQTT 5 connection without CONNACK")
    pub(proxy_b, pb, "after-v5", 1)
    c.expect(proxy_a.alive() and proxy_b.alive(), "both proxies still run")

    # Everything sent arrives at node 3 once, OK, from its sender.
    sub.wait_json(len(sent), 30)
    msgs = sub.messages()
    by_payload = {}
    for o in msgs:
        by_payload.setdefault(h.payload_of(o), []).append(o)
    wrong = []
    for topic, text, who in sent:
        got = by_payload.get(text.encode(), [])
        if len(got) != 1 or h.verdict_of(got[0]) != "OK" or got[0].get("topic") != topic or \
                got[0].get("sender") != who:
            wrong.append("%s: %s" % (text, [{k: o.get(k) for k in ("verdict", "topic", "sender")}
                                            for o in got]))
    c.expect(not wrong, "e2e-sub on node 3: all %d messages through nodes 1 and 2 once, verdict "
             "OK, right topic and sender (%d printed)%s" % (
                 len(sent), len(msgs), "" if not wrong else ":\n    " + "\n    ".join(wrong[:8])))
    q2 = [o for o in msgs if o.get("topic", "").endswith("/q2")]
    c.expect(len(q2) == 3, "the 3 QoS 2 messages arrived once each (%d)" % len(q2))
    epochs = sorted(set(o.get("epoch") for o in msgs if o.get("sender") == "pa"))
    c.expect(len(epochs) >= 2 and keys_from(sub, "pa", 2),
             "pa rotated after 5 messages: its announcement reached node 3 and the new key was "
             "fetched across the cluster (epochs %s)" % epochs)

    # Retained messages stay on the node that took them.
    ret_text = ph.token("retained")
    cp = mosq_pub(env, proxy_a.port, prefix + "/pa/ret", [ret_text], qos=1, retain=True)
    c.expect(cp.returncode == 0, "retained message through proxy-a (node 1): rc %d" %
             cp.returncode)
    on1 = h.start_sub(env, n1, r1, [prefix + "/pa/ret"], name="e2e-sub-ret-node1")
    on3 = h.start_sub(env, n3, r3, [prefix + "/pa/ret"], name="e2e-sub-ret-node3")
    got1 = on1.wait_json(1, 20)
    c.expect(got1 == 1 and h.payload_of(on1.messages()[0]) == ret_text.encode() and
             on1.messages()[0].get("retained") is True and
             h.verdict_of(on1.messages()[0]) == "OK",
             "a new subscriber on node 1 gets the retained message (retained, OK)")
    c.require(h.wait_until(lambda: keys_from(on3, "pa") or not on3.alive(), 20),
              "the new subscriber on node 3 got pa's key")
    on3.wait_json(1, 3)
    c.expect(not on3.messages(), "measured: a new subscriber on node 3 does not get it "
             "(RabbitMQ keeps retained messages per node): %d message(s)" % len(on3.messages()))

    # Summaries crossed the cluster: verified, nothing contradicted; no alarm.
    time.sleep(2.5)   # one more summary interval after the last message
    since = time.monotonic()
    rc = sub.stop()
    line = " ".join(l for l in sub.err_match(r"summaries:"))
    m = re.search(r"summaries: (\d+) received; entries verified (\d+), contradicted (\d+)", line)
    c.expect(m and int(m.group(1)) > 0 and int(m.group(2)) > 0 and int(m.group(3)) == 0,
             "e2e-sub on node 3 received and verified summaries of both proxies, none "
             "contradicted: %s" % (line or "(no summaries line)"))
    c.expect(not sub.err_match(r"insider forgery|is in no summary|FORGED [1-9]"),
             "no insider or forgery alarm")
    c.expect(rc == 0, "e2e-sub --strict exits 0 (no security anomaly; rc %s)" % rc)
    for p in (on1, on3):
        p.stop()

    # A persistent session's queue lives on the node it was made on.
    cid = "e2e-persist-" + os.urandom(3).hex()
    ptopic = prefix + "/pa/persist"

    def persistent(ep, name):
        return h.start_sub(env, ep, ps, [ptopic], name=name, args=["-i", cid])

    p = persistent(n3, "e2e-sub-persist-node3")
    c.require(h.wait_until(lambda: keys_from(p, "pa") or not p.alive(), 20),
              "persistent subscriber (client id %s) on node 3 got pa's key" % cid)
    p.stop()
    away = [ph.token("away") for _ in range(2)]
    mosq_pub(env, proxy_a.port, ptopic, away, qos=1)
    p = persistent(n2, "e2e-sub-persist-node2")
    p.wait_json(2, 15)
    c.expect(sorted(ph.delivered(p)) == sorted(away) and
             all(h.verdict_of(o) == "OK" for o in p.messages()),
             "node 3 up: the session's queue (on node 3) is reachable from node 2: both "
             "messages sent while away arrive, OK")
    p.stop()
    lost = ph.token("lost")
    mosq_pub(env, proxy_a.port, ptopic, [lost], qos=1)
    cl.nodes[2].stop()
    since = time.monotonic()
    p = persistent(n2, "e2e-sub-persist-node3-down")
    h.wait_until(lambda: len(p.err_match(r"connection lost", since)) >= 2, 15)
    # (--json also has a line per reconnection: {"event": "reconnected"}.)
    c.expect(not [o for o in p.messages() if "event" not in o] and
             len(p.err_match(r"connection lost", since)) >= 2,
             "measured: node 3 down, the persistent session cannot resume on node 2: the broker "
             "closes it again and again (%d times), nothing delivered" % len(
                 p.err_match(r"connection lost", since)))
    c.expect(not p.err_match(r"insider forgery|is in no summary|FORGED [1-9]"),
             "no security alarm for the unreachable session")
    p.stop()
    fresh = h.start_sub(env, n2, r1, [ptopic], name="e2e-sub-clean-node2")
    c.require(h.wait_until(lambda: keys_from(fresh, "pa") or not fresh.alive(), 20),
              "a clean-session subscriber on node 2 gets pa's key with node 3 down")
    after = ph.token("after")
    mosq_pub(env, proxy_a.port, ptopic, [after], qos=1)
    fresh.wait_json(1, 10)
    c.expect(ph.delivered(fresh) == {after: 1}, "... and the next message, OK: the cluster "
             "still works for sessions not homed on node 3")
    fresh.stop()
    h.log("RabbitMQ RSS (KiB) at the end: %s" % cl.rss_kib())


if __name__ == "__main__":
    h.main("cluster-rabbitmq", body)
