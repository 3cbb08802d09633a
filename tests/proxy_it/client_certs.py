#!/usr/bin/python3
"""Proxy 2: one client certificate per device (--cert DIR/%c.crt --key DIR/%c.key).

mosquitto with require_certificate true + use_identity_as_username true and
an ACL that lets a client write only below sensors/<its certificate CN>/.
Certificates (CN = client id) are made for devA, devB and the key service
(e2e-keys-<sender id>, the id the proxy derives for it: the documented
service certificate is the template's file for that id). Checks:
  * the broker's log shows each relayed connection with the username of its
    own certificate (u'devA', u'devB');
  * devA may publish to sensors/devA/..., devB to sensors/devB/...: the
    subscriber decrypts both; devA publishing to sensors/devB/... is denied
    by the broker (so the broker really saw devA's identity) and never
    reaches the subscriber; the MQTT 5 PUBACK reason "not authorized" comes
    back through the proxy;
  * a client id with no certificate file is refused: its connection is
    closed without CONNACK and the proxy logs which file is missing;
  * a client id that would make a path (../, /) is refused and logged.
"""
import os
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxyharness as ph  # noqa: E402

h = ph.h

ACL = """# write only below sensors/<certificate CN>/
pattern readwrite e2e/#
pattern readwrite probe/#
pattern read sensors/#
pattern write sensors/%u/#
"""


def body(env, c):
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["sensors/#"])])
    svc = "e2e-keys-%08x" % s.sender_id
    for cid in ("devA", "devB", svc):
        ph.issue(env, cid, cid)
    certs = os.path.join(env.dir, "certs")
    broker = ph.Mosquitto(env, listeners=[{"kind": "tls", "require_certificate": True,
                                           "identity": True}], acl=ACL)
    pki = broker.pki
    alice = h.Subscriber(env, "alice", trust=[s])
    s.enroll(alice, ["telemetry"])
    px = ph.Proxy(env, broker.addr(), [
        "--cafile", pki["ca_crt"], "--dir", s.dir, "--cert", os.path.join(certs, "%c.crt"),
        "--key", os.path.join(certs, "%c.key")])
    c.expect(broker.wait_log(r"as %s \(.*u'%s'\)" % (svc, svc), 5),
             "key service connected with its own certificate (username %s)" % svc)
    sp = h.start_sub(env, broker, alice, ["sensors/#"], client_cert=True, name="sub",
                     args=["--state", "none"])
    c.require(sp.wait_err(h.EV_KEY, 15), "subscriber (client certificate) got the key")

    ok = {}
    for cid in ("devA", "devB"):
        tok = ph.token(cid)
        cp = ph.mosq_pub(env, px, "sensors/%s/temp" % cid, tok, qos=1, cid=cid, check=False)
        c.expect(cp.returncode == 0, "%s publishes to sensors/%s/temp: rc 0 (rc %d %s)" % (
            cid, cid, cp.returncode, cp.stderr.decode(errors="replace")[-200:]))
        ok[tok] = "sensors/%s/temp" % cid
        c.expect(broker.wait_log(r"New client connected from .* as %s \(.*u'%s'\)" % (cid, cid),
                                 5),
                 "broker: %s connected with username %s (its own certificate)" % (cid, cid))

    denied = ph.token("cross")
    cp = ph.mosq_pub(env, px, "sensors/devB/temp", denied, qos=1, cid="devA", check=False)
    c.expect(broker.wait_log(r"Denied PUBLISH from devA .*sensors/devB/temp", 5),
             "broker denied devA's publish to sensors/devB/temp (ACL by certificate CN)")
    denied5 = ph.token("cross5")
    cp = ph.mosq_pub(env, px, "sensors/devB/temp", denied5, qos=1, cid="devA", version="mqttv5",
                     extra=["-d"], check=False)
    out = (cp.stdout + cp.stderr).decode(errors="replace")
    c.expect("rc:135" in out.lower().replace(" ", "") or "not authorized" in out.lower(),
             "MQTT 5: PUBACK 'not authorized' (135) reached devA through the proxy (%s)" %
             out.strip().splitlines()[-3:])

    got = sp.wait_json(len(ok), 10)
    time.sleep(1.0)   # a denied message would have arrived by now
    msgs = {h.payload_of(o).decode(errors="replace"): o for o in sp.messages()
            if h.payload_of(o)}
    for tok, topic in ok.items():
        o = msgs.get(tok)
        c.expect(o and o.get("topic") == topic and h.verdict_of(o) == "OK",
                 "subscriber decrypted %s (verdict %s)" % (topic, o and o.get("verdict")))
    c.expect(got >= len(ok) and denied not in msgs and denied5 not in msgs,
             "the denied cross-device publishes never reached the subscriber")

    # No certificate for this client id: refused.
    for cid, why in (("ghost", r"certificate .*ghost\.crt"),
                     ("..", r"id not usable in a certificate path"),
                     ("a/b", r"id not usable in a certificate path")):
        s1 = ph.raw_conn(px.port)
        s1.sendall(ph.connect_pkt(cid))
        closed, data = ph.read_until_closed(s1, 8)
        s1.close()
        c.expect(closed and not data.startswith(b"\x20"),
                 "client id %r: connection closed without CONNACK (closed %s, got %r)" % (
                     cid, closed, data[:8]))
        c.expect(px.wait_err(why, 3), "client id %r: proxy logged the reason (%s)" % (cid, why))
    cp = ph.mosq_pub(env, px, "sensors/ghost/temp", ph.token(), qos=1, cid="ghost", check=False,
                     timeout=30)
    c.expect(cp.returncode != 0, "mosquitto_pub -i ghost fails (rc %d: %s)" % (
        cp.returncode, cp.stderr.decode(errors="replace").strip()[-120:]))
    c.expect(not broker.wait_log(r"as ghost ", 0.5) and not broker.wait_log(r"as \.\. ", 0.1),
             "the broker never saw a connection for ghost or '..'")
    c.expect(px.alive(), "proxy still running")


if __name__ == "__main__":
    h.main("proxy-client-certs", body)
