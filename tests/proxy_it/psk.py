#!/usr/bin/python3
"""Proxy 3: TLS-PSK to the broker (--psk HEX --psk-identity ID).

mosquitto with two listeners: TLS-PSK (psk_hint + psk_file, identity used
as username) for the proxy, and a certificate TLS listener for the
subscriber and the observers. Checks:
  * e2e-proxy --psk/--psk-identity starts (its key service connects over
    PSK), relays publishers over the PSK listener (the broker logs them on
    that port, with the PSK identity as username), the subscriber decrypts
    the messages and the broker never sees the plaintext;
  * after SIGHUP (TLS context rebuilt) new publishers are still relayed
    over PSK;
  * a wrong PSK, and an identity the broker does not know, on a publisher's
    relay (a Router gives the key service a second broker that accepts it):
    the publisher's connection is closed without CONNACK, no session at the
    broker, and the proxy's log line says why (handshake/PSK/alert);
  * a wrong PSK at start-up: the key service cannot connect, the proxy exits
    1 in bounded time, and its error line says why.
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

IDENTITY = "site-17"
# What a clear TLS/PSK failure line names (OpenSSL reasons or the words).
CLEAR = re.compile(r"handshake|psk|alert|decrypt|bad record mac|unexpected eof|"
                   r"certificate|verify|tls[^:]*(fail|error)|ssl routines", re.I)


def body(env, c):
    key = os.urandom(32).hex()
    broker = ph.Mosquitto(env, listeners=[{"kind": "tls"},
                                          {"kind": "psk", "hint": "e2e-test", "identity": True}],
                          psk={IDENTITY: key})
    psk_port = broker.ports[1]
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["sensors/#"])])
    alice = h.Subscriber(env, "alice", trust=[s])
    s.enroll(alice, ["telemetry"])
    raw = ph.RawSub(env, broker)
    px = ph.Proxy(env, broker.addr(1), ["--psk", key, "--psk-identity", IDENTITY, "--dir", s.dir,
                                        "--log-level", "debug"])
    c.expect(broker.wait_log(r"as e2e-keys-%08x \(.*u'%s'\)" % (s.sender_id, IDENTITY), 5),
             "key service connected over PSK (username = PSK identity %s)" % IDENTITY)
    sp = h.start_sub(env, broker, alice, ["sensors/#"], name="sub", args=["--state", "none"])
    c.require(sp.wait_err(h.EV_KEY, 15), "subscriber got the key from the PSK-connected proxy")

    toks = {}
    for version in ("mqttv311", "mqttv5"):
        tok = ph.token("psk")
        cid = "psk-" + version
        cp = ph.mosq_pub(env, px, "sensors/psk/" + version, tok, qos=1, version=version, cid=cid,
                         check=False)
        c.expect(cp.returncode == 0, "mosquitto_pub -V %s over the PSK proxy: rc 0 (rc %d %s)" % (
            version, cp.returncode, cp.stderr.decode(errors="replace")[-200:]))
        toks[tok] = "sensors/psk/" + version
        c.expect(broker.wait_log(r"New client connected from 127\.0\.0\.1:\d+ as %s \(.*u'%s'\)" %
                                 (cid, IDENTITY), 5),
                 "broker: %s relayed with PSK identity %s as username" % (cid, IDENTITY))
    c.expect(broker.wait_log(r"New connection from 127\.0\.0\.1:\d+ on port %d" % psk_port, 1),
             "broker: connections arrived on the PSK listener (port %d)" % psk_port)
    sp.wait_json(len(toks), 10)
    msgs = {h.payload_of(o).decode(errors="replace"): o for o in sp.messages()
            if h.payload_of(o)}
    for tok, topic in toks.items():
        o = msgs.get(tok)
        c.expect(o and o.get("topic") == topic and h.verdict_of(o) == "OK",
                 "subscriber decrypted %s (verdict %s)" % (topic, o and o.get("verdict")))
    c.expect(not [t for t in toks if t in raw.text()], "broker never saw the plaintext")
    c.expect(px.err_match(r"upstream TLSv1\.[23]"), "proxy logged the PSK TLS session (%s)" %
             px.err_match(r"upstream TLS"))

    # SIGHUP rebuilds the TLS context: PSK relays must keep working.
    since = time.monotonic()
    px.send(signal.SIGHUP)
    c.expect(px.wait_err(r"SIGHUP: reloaded", 5, since=since), "SIGHUP: reloaded")
    tok = ph.token("psk-hup")
    cp = ph.mosq_pub(env, px, "sensors/psk/after-hup", tok, qos=1, cid="psk-hup", check=False)
    c.expect(cp.returncode == 0 and px.alive(),
             "after SIGHUP a new publisher is relayed over PSK (rc %d, proxy alive %s): %s" % (
                 cp.returncode, px.alive(), px.err_match(r"psk-hup")[-2:]))
    c.expect(sp.wait_json(1, 10, pred=lambda o: h.payload_of(o) == tok.encode() and
                          h.verdict_of(o) == "OK"),
             "after SIGHUP: subscriber decrypted the PSK-relayed message")

    # Wrong key / unknown identity on the publisher relays: a second broker
    # knows the proxy's (wrong) key, so its key service can connect there
    # (the Router sends it the first connection) while the relays reach the
    # real PSK listener.
    wrong = os.urandom(32).hex()
    # The extra proxies run beside the good one: a state directory of their
    # own (one owner per directory, SPEC 6.5).
    s2 = h.Sender(env, "edge-extra", scopes=[(1, "telemetry", ["sensors/#"])])
    other = ph.Mosquitto(env, listeners=[{"kind": "psk", "hint": "other", "identity": True}],
                         psk={IDENTITY: wrong, "site-99": key}, name="mosquitto-other")
    for what, args in (("wrong PSK", ["--psk", wrong, "--psk-identity", IDENTITY]),
                       ("unknown identity", ["--psk", key, "--psk-identity", "site-99"])):
        router = ph.Router(env, other.port, target=psk_port)
        bad = ph.Proxy(env, "%s:%d" % (ph.LOCAL, router.port), args + [
            "--dir", s2.dir, "--connect-timeout", "3s"], name="proxy-relay-bad")
        s1 = ph.raw_conn(bad.port)
        s1.sendall(ph.connect_pkt("psk-bad"))
        closed, data = ph.read_until_closed(s1, 8)
        s1.close()
        c.expect(closed and not data.startswith(b"\x20"),
                 "%s: publisher connection closed without CONNACK (closed %s, got %r)" % (
                     what, closed, data[:8]))
        line = bad.wait_err(r"psk-bad.*(TLS|SSL).*fail", 3)
        c.expect(line, "%s: proxy logged the TLS failure of the relay: %s" % (what, line))
        c.expect(line and CLEAR.search(line[0]),
                 "%s: the line says why (handshake/PSK/alert), not just 'failure': %s" % (
                     what, line))
        c.expect(not broker.wait_log(r"as psk-bad ", 0.2),
                 "%s: the broker accepted no MQTT session for the publisher" % what)
        bad.stop()
        router.close()
        env.clients.remove(router)

    # Wrong key at start-up: the key service cannot connect; the proxy must
    # say so clearly and exit 1 (bounded).
    bad = ph.Proxy(env, broker.addr(1), ["--psk", wrong, "--psk-identity", IDENTITY, "--dir", s2.dir,
                                         "--connect-timeout", "3s", "--service-id", "keys-bad"],
                   name="proxy-start-bad", ready=False)
    rc = bad.proc.wait_exit(20)
    c.expect(rc == 1, "wrong PSK at start-up: proxy exits 1 (rc %r)" % rc)
    lines = [l for _t, l in bad.proc.err_lines if "error" in l]
    c.expect(any(CLEAR.search(l) for l in lines),
             "wrong PSK at start-up: the error says why (handshake/PSK/alert), not just "
             "'failure': %s" % lines)
    c.expect(not broker.wait_log(r"as keys-bad ", 0.2), "the broker accepted no session from it")
    c.expect(px.alive(), "the good proxy is still running")


if __name__ == "__main__":
    h.main("proxy-psk", body)
