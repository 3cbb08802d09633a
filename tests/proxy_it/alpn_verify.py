#!/usr/bin/python3
"""Proxy 4: ALPN, broker certificate verification and --sni.

The proxy's key service must reach a real MQTT broker before the proxy
serves anyone, so a Router hands the first connection (the key service) to
mosquitto and the publisher relays to an `openssl s_server` chosen per
scenario. Checks:
  * --alpn x-amzn-mqtt-ca,foo: s_server prints that the client offered
    exactly "x-amzn-mqtt-ca, foo", the handshake completes (s_server selects
    x-amzn-mqtt-ca, the proxy logs it) and the publisher's CONNECT arrives;
  * the key service offers the same ALPN list (proxy pointed at s_server
    directly; it then exits 1 since s_server speaks no MQTT);
  * a broker certificate from a CA not in --cafile: refused (publisher
    closed without CONNACK, nothing relayed), "certificate verify failed" /
    "unable to get local issuer certificate" in the log;
  * a certificate for another host name: refused, "hostname mismatch";
  * --sni wrong.example against a certificate for localhost/127.0.0.1: the
    key service (same recipe as the relays) refuses the broker and the proxy
    exits 1 naming "hostname mismatch" and the CA file; --sni localhost:
    accepted.
"""
import os
import re
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxyharness as ph  # noqa: E402

h = ph.h

ALPN = "x-amzn-mqtt-ca,foo"
ADV = re.compile(r"ALPN protocols advertised by the client: (.*)$", re.M)


class ChunkProc(h.Proc):
    """A Proc whose stdout is kept as raw chunks: s_server prints the bytes
    it receives without a newline, which a line reader would hold back."""

    def _read(self, f, is_out):
        if not is_out:
            return super()._read(f, is_out)
        for chunk in iter(lambda: f.read1(65536), b""):
            with self.lock:
                self.out_lines.append(chunk.decode("latin-1"))
                self.outlog.write(chunk.decode("latin-1"))
        f.close()


class SServer:
    """openssl s_server on a free 127.0.0.1 port (stdin kept open)."""

    def __init__(self, env, name, crt, key, alpn=None):
        for _ in range(3):
            self.port = h.free_port()
            argv = [h.OPENSSL, "s_server", "-accept", "%s:%d" % (ph.LOCAL, self.port), "-cert",
                    crt, "-key", key]
            if alpn:
                argv += ["-alpn", alpn]
            self.proc = ChunkProc(env, name, argv, stdin=True)
            if h.wait_until(lambda: "ACCEPT" in self.text() or not self.proc.alive(), 5) and \
                    self.proc.alive():
                return
            self.proc.stop()
        raise h.TestFailure("openssl s_server did not start:\n" + self.proc.tail())

    def text(self):
        with self.proc.lock:
            return "".join(self.proc.out_lines)

    def advertised(self):
        return [m.strip() for m in ADV.findall(self.text())]


def try_connect(px, cid, timeout=6):
    """A raw publisher: CONNECT, then wait for the proxy to close us.
    Returns (closed, bytes received)."""
    s = ph.raw_conn(px.port)
    s.sendall(ph.connect_pkt(cid))
    closed, data = ph.read_until_closed(s, timeout)
    s.close()
    return closed, data


def body(env, c):
    pki = env.pki()
    broker = ph.Mosquitto(env)
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["sensors/#"])])
    good = SServer(env, "s_server-good", pki["server_crt"], pki["server_key"],
                   alpn="x-amzn-mqtt-ca")
    rogue = SServer(env, "s_server-rogue-ca", *ph.issue(env, "rogue-server", "localhost",
                                                        ca="rogue-ca", usage="serverAuth",
                                                        san="IP:127.0.0.1,DNS:localhost"))
    other = SServer(env, "s_server-other-name", *ph.issue(env, "other-server", "other.example",
                                                          usage="serverAuth",
                                                          san="DNS:other.example"))
    common = ["--cafile", pki["ca_crt"], "--dir", s.dir, "--connect-timeout", "3s",
              "--log-level", "debug"]

    # 1. ALPN on the publisher relay.
    r1 = ph.Router(env, broker.port, target=good.port)
    px = ph.Proxy(env, "%s:%d" % (ph.LOCAL, r1.port), common + ["--alpn", ALPN])
    s1 = ph.raw_conn(px.port)
    s1.sendall(ph.connect_pkt("alpn-dev"))
    c.expect(h.wait_until(lambda: good.advertised(), 8),
             "s_server saw a ClientHello with ALPN from the relay")
    c.expect(good.advertised()[:1] == ["x-amzn-mqtt-ca, foo"],
             "the relay offered exactly x-amzn-mqtt-ca, foo (s_server: %s)" % good.advertised())
    c.expect(h.wait_until(lambda: "MQTT" in good.text(), 5),
             "handshake completed and the publisher's CONNECT reached s_server")
    c.expect(px.wait_err(r"alpn-dev: upstream TLSv1\.[23] alpn x-amzn-mqtt-ca", 3),
             "proxy logged the negotiated ALPN x-amzn-mqtt-ca")
    s1.close()

    # 2. and 3. Certificates the proxy must refuse.
    for srv, what, why in ((rogue, "certificate from an untrusted CA",
                            r"certificate verify failed.*unable to get local issuer certificate"),
                           (other, "certificate for another host name",
                            r"certificate verify failed.*(hostname|IP address) mismatch")):
        r1.target = srv.port
        cid = "dev-" + srv.proc.name
        closed, data = try_connect(px, cid)
        c.expect(closed and not data, "%s: publisher closed without CONNACK (closed %s, got %r)"
                 % (what, closed, data[:8]))
        line = px.wait_err(r"%s.*TLS to broker failed: .*%s" % (re.escape(cid), why), 3)
        c.expect(line, "%s: refused with a clear log line (%s)" % (
            what, line or px.err_match(re.escape(cid))))
        c.expect(not h.wait_until(lambda: "MQTT" in srv.text(), 0.3),
                 "%s: nothing was relayed to that server" % what)
    c.expect(px.alive(), "proxy still running after the refusals")
    px.stop()

    # 4. --sni: the name sent and verified, by the relays and by the key
    # service alike (one upstream recipe): a wrong name stops the start with
    # the verification result and the CA file it was checked against.
    r = ph.Router(env, broker.port, target=good.port)
    sessions = broker.log_text().count("as e2e-keys-")
    p = ph.Proxy(env, "%s:%d" % (ph.LOCAL, r.port), common + ["--sni", "wrong.example", "--alpn",
                                                              ALPN],
                 name="proxy-sni-wrong", ready=False)
    rc = p.proc.wait_exit(20)
    line = p.err_match(r"error: key service.*hostname mismatch.*'wrong\.example'.*CA file %s" %
                       re.escape(pki["ca_crt"]))
    c.expect(rc == 1 and line,
             "--sni wrong.example: the key service refuses the broker, the proxy exits 1 (rc %r) "
             "naming hostname mismatch and the CA file (%s)" % (rc, p.proc.tail(4)))
    c.expect(broker.log_text().count("as e2e-keys-") == sessions,
             "--sni wrong.example: no key service session at the broker")
    r.close()
    env.clients.remove(r)
    r = ph.Router(env, broker.port, target=good.port)
    mqtt_before = good.text().count("MQTT")
    p = ph.Proxy(env, "%s:%d" % (ph.LOCAL, r.port), common + ["--sni", "localhost", "--alpn",
                                                              ALPN], name="proxy-sni-localhost")
    s2 = ph.raw_conn(p.port)
    s2.sendall(ph.connect_pkt("sni-localhost"))
    c.expect(h.wait_until(lambda: good.text().count("MQTT") > mqtt_before, 8),
             "--sni localhost: accepted, CONNECT relayed")
    s2.close()
    p.stop()

    # 5. The key service offers the same ALPN list.
    before = len(good.advertised())
    p = ph.Proxy(env, "%s:%d" % (ph.LOCAL, good.port), common + ["--alpn", ALPN,
                                                                 "--connect-timeout", "2s"],
                 name="proxy-keys-alpn", ready=False)
    rc = p.proc.wait_exit(20)
    adv = good.advertised()[before:]
    c.expect(adv[:1] == ["x-amzn-mqtt-ca, foo"],
             "the key service offered exactly x-amzn-mqtt-ca, foo (s_server: %s)" % adv)
    c.expect(rc == 1 and p.err_match(r"key service"),
             "proxy without a reachable MQTT broker exits 1 naming the key service (rc %r)" % rc)


if __name__ == "__main__":
    h.main("proxy-alpn-verify", body)
