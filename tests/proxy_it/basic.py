#!/usr/bin/python3
"""Proxy 1: unmodified publishers through e2e-proxy, broker sees envelopes only.

mosquitto with a TLS listener; e2e-proxy --cafile in front of it with a
sender state directory (scope 1 "telemetry" = sensors/#) and one enrolled
subscriber. Through the proxy: mosquitto_pub -V mqttv311 / mqttv5 / mqttv31
at QoS 0, 1 and 2, retained messages (-r), MQTT 5 topic aliases, wills
(publisher killed with SIGKILL), and paho-mqtt publishers (3.1.1 and 5).
Checks:
  * a plain mosquitto_sub -v -t '#' at the broker never sees any of the
    random plaintext strings, and does see every topic (not vacuous);
  * every payload on sensors/# at the broker is an envelope of this sender,
    scope 1, with the size of a sealed plaintext (header + text + tag);
  * e2e-sub --json decrypts every message with verdict OK, on the right
    topic and QoS; the wills too; a subscriber started afterwards gets the
    retained ones with retained=true and verdict OK.
"""
import os
import signal
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxyharness as ph  # noqa: E402

h = ph.h


def body(env, c):
    broker = ph.Mosquitto(env)
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["sensors/#"])])
    alice = h.Subscriber(env, "alice", trust=[s])
    s.enroll(alice, ["telemetry"])
    px = ph.Proxy(env, broker.addr(), ["--cafile", broker.pki["ca_crt"], "--dir", s.dir,
                                       "--log-level", "debug"])
    raw = ph.RawSub(env, broker, name="raw-v")
    rawhex = ph.RawSub(env, broker, topics=("sensors/#",), fmt="%t %x", name="raw-hex")
    sp = h.start_sub(env, broker, alice, ["sensors/#"], name="sub-live", qos=2,
                     args=["--state", "none"])
    c.require(sp.wait_err(h.EV_KEY, 15), "e2e-sub got the proxy's key through the key service")

    expect = {}      # token -> (topic, qos the subscriber gets, retained publish?)

    def pub(topic, qos, version, extra=(), tag="pt"):
        tok = ph.token(tag)
        cp = ph.mosq_pub(env, px, topic, tok, qos=qos, version=version, extra=extra,
                         check=False)
        c.expect(cp.returncode == 0, "mosquitto_pub -V %s -q %d %s%s through the proxy: rc 0 "
                 "(rc %d, %s)" % (version, qos, " ".join(extra), topic, cp.returncode,
                                  cp.stderr.decode(errors="replace").strip()[-200:]))
        expect[tok] = (topic, qos, "-r" in extra)
        return tok

    for version in ("mqttv311", "mqttv5"):
        for qos in (0, 1, 2):
            pub("sensors/%s/q%d" % (version, qos), qos, version)
        pub("sensors/ret/%s" % version, 1, version, extra=["-r"])
    pub("sensors/mqttv31/q1", 1, "mqttv31")

    # MQTT 5 topic alias: the second line is sent with the alias only.
    alias_toks = [ph.token("alias"), ph.token("alias")]
    cp = h.run(env, "mosquitto_pub-alias", [ph.MOSQ_PUB, "-h", ph.LOCAL, "-p", str(px.port),
               "-V", "mqttv5", "-q", "1", "-t", "sensors/alias", "-D", "publish", "topic-alias",
               "3", "-l", "-i", "alias-pub"], input=("\n".join(alias_toks) + "\n").encode(),
               timeout=20, check=False)
    c.expect(cp.returncode == 0, "mosquitto_pub -V mqttv5 -D publish topic-alias 3 -l: rc 0 "
             "(rc %d, %s)" % (cp.returncode, cp.stderr.decode(errors="replace")[-200:]))
    for t in alias_toks:
        expect[t] = ("sensors/alias", 1, False)

    # Wills: connected through the proxy, then killed without DISCONNECT.
    for version in ("mqttv311", "mqttv5"):
        tok, cid = ph.token("will"), "will-" + version
        wp = h.Proc(env, "willpub-" + version, [
            ph.MOSQ_PUB, "-h", ph.LOCAL, "-p", str(px.port), "-V", version, "-i", cid,
            "-t", "sensors/alive/" + version, "-q", "1", "-l",
            "--will-topic", "sensors/will/" + version, "--will-payload", tok,
            "--will-qos", "1"], stdin=True)
        c.expect(broker.wait_log(r"New client connected .* as %s " % cid, 10),
                 "%s: publisher with a will connected through the proxy" % cid)
        c.expect(px.err_match(r"client '%s' MQTT .*with will \(sealed\)" % cid),
                 "%s: the proxy logged its will as sealed" % cid)
        wp.stop(signal.SIGKILL)
        expect[tok] = ("sensors/will/" + version, 1, False)

    # A will that is never published is no GAP (L2): a message, then a client
    # with a will on the same topic that publishes and disconnects cleanly
    # (the will is discarded), then a third message. All must be OK: the
    # will, sealed at CONNECT in a run of its own, took no seq of the topic.
    unused = "sensors/will-unused"
    pub(unused, 1, "mqttv311")
    pub(unused, 1, "mqttv311", extra=["--will-topic", unused, "--will-payload",
                                      ph.token("never"), "--will-qos", "1"])
    pub(unused, 1, "mqttv5")

    # paho-mqtt publishers (3.1.1 and 5), QoS 1 and 2, one retained.
    for version in (4, 5):
        pp = ph.PahoPub(env, px.port, "paho-v%d" % version, version=version)
        infos = []
        for qos, retain in ((1, False), (2, False), (1, True)):
            tok = ph.token("paho")
            topic = "sensors/paho%d/%s" % (version, "ret" if retain else "q%d" % qos)
            infos.append((tok, pp.publish(topic, tok, qos=qos, retain=retain)))
            expect[tok] = (topic, qos, retain)
        for tok, info in infos:
            info.wait_for_publish(10)
            c.expect(info.is_published(), "paho v%d: %s acknowledged through the proxy" % (
                version, expect[tok][0]))
        pp.close()

    n = len(expect)
    got = sp.wait_json(n, 20)
    c.expect(got >= n, "e2e-sub received %d of %d messages" % (got, n))
    by_payload = {}
    for o in sp.messages():
        p = h.payload_of(o)
        by_payload.setdefault(p.decode(errors="replace") if p else None, []).append(o)
    for tok, (topic, qos, _r) in sorted(expect.items(), key=lambda kv: kv[1][0]):
        ms = by_payload.get(tok, [])
        c.expect(len(ms) == 1 and h.verdict_of(ms[0]) == "OK" and ms[0].get("topic") == topic and
                 ms[0].get("qos") == qos and ms[0].get("sender") == "edge" and
                 ms[0].get("scope") == 1,
                 "%s: decrypted once, verdict OK, QoS %d, sender edge, scope 1 (got %s)" % (
                     topic, qos, [{k: m.get(k) for k in ("topic", "verdict", "qos", "sender")}
                                  for m in ms]))
    c.expect(not sp.bad_json, "e2e-sub printed only JSON lines (%s)" % sp.bad_json[:3])

    # What the broker saw.
    text = raw.text()
    leaked = [t for t in expect if t in text]
    c.expect(not leaked, "no plaintext string in mosquitto_sub -v -t '#' output (leaked: %s)" %
             leaked)
    for topic in sorted({v[0] for v in expect.values()}):
        c.expect(any(l.startswith(topic + " ") for l in raw.lines()),
                 "mosquitto_sub -v at the broker saw a message on %s" % topic)
    envs = rawhex.hex_payloads("sensors/")
    bad = []
    for topic, payload in envs:
        e = h.env_parse(payload) if payload is not None else None
        if not e or e["suite"] != 1 or e["scope"] != 1 or e["sender"] != s.sender_id:
            bad.append((topic, e))
    c.expect(len(envs) >= n and not bad,
             "all %d payloads on sensors/# at the broker are envelopes of sender %08x scope 1 "
             "(bad: %s)" % (len(envs), s.sender_id, bad[:3]))
    sizes = {len(p) for _t, p in envs if p}
    want = {h.ENV_HEADER + len(t) + h.ENV_TAG for t in expect}
    c.expect(sizes <= want, "envelope sizes are header + plaintext + tag (%s vs %s)" % (
        sorted(sizes), sorted(want)))

    # Retained: a subscriber that arrives later gets them, marked retained.
    sp.stop()
    retained = {t: v for t, v in expect.items() if v[2]}
    late = h.start_sub(env, broker, alice, ["sensors/+/ret", "sensors/ret/+"], name="sub-late",
                       qos=1, args=["--state", "none", "-C", str(len(retained)), "-W", "20"])
    rc = late.wait_exit(30)
    c.expect(rc == 0, "late e2e-sub -C %d exited 0 (rc %r)" % (len(retained), rc))
    for tok, (topic, _q, _r) in retained.items():
        ms = [o for o in late.messages() if h.payload_of(o) == tok.encode()]
        c.expect(len(ms) == 1 and h.verdict_of(ms[0]) == "OK" and ms[0].get("retained") is True
                 and ms[0].get("topic") == topic,
                 "retained %s: decrypted by a late subscriber, verdict OK, retained=true (got %s)"
                 % (topic, [(m.get("verdict"), m.get("retained")) for m in ms]))
    st = px.stats()
    c.expect(st and st["messages"]["sealed"] >= n and st["messages"]["plaintext"] == 0,
             "proxy stats: %s sealed, 0 plaintext" % (st and st["messages"]))
    c.expect(px.alive(), "proxy still running")


if __name__ == "__main__":
    h.main("proxy-basic", body)
