#!/usr/bin/python3
"""Proxy 8: back-pressure, and TLS towards publishers (listen-tls).

A publisher that is faster than the broker must be slowed down by TCP, not
disconnected: the proxy stops reading it while its queue towards the broker
is full, and reads again when the broker catches up. Here the broker is
frozen (SIGSTOP) while raw publishers push 1 KiB QoS 0 publishes as fast as
the sockets take them, first over plain TCP, then over TLS to a second
proxy with listen-tls (where decrypted bytes held inside OpenSSL get no
epoll event: the proxy must come back for them when the broker drains).

Checks, for each: the publisher's socket stops accepting data while the
broker is frozen (the proxy holds a bounded amount, its RSS stays bounded),
the publisher is never reset, every publish reaches a subscriber at the
broker as an envelope (payload + 40 bytes) once the broker is thawed, and
the proxy logs no output-limit line. Then listen-tls with listen-cafile:
a publisher without a client certificate is refused and logged, one with a
certificate of the CA gets through, and a plain-TCP client gets nothing.
"""
import os
import signal
import socket
import ssl
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxyharness as ph  # noqa: E402

h = ph.h
N = 24000             # 1 KiB publishes per publisher: ~24 MiB, far above every buffer
SIZE = 1024
FROZEN_S = 2.5


class Flood(threading.Thread):
    """Sends N QoS 0 publishes on an established MQTT connection, blocking
    in sendall when the proxy does not read; records progress."""

    def __init__(self, sock, topic):
        super().__init__(daemon=True)
        self.sock = sock
        self.pkt = ph.publish_pkt(topic, os.urandom(SIZE))
        self.sent = 0
        self.error = None
        self.done = threading.Event()

    def run(self):
        batch = self.pkt * 16
        try:
            self.sock.settimeout(120)
            while self.sent < N:
                self.sock.sendall(batch)
                self.sent += 16
        except OSError as e:
            self.error = e
        self.done.set()


def connect(sock, cid):
    sock.sendall(ph.connect_pkt(cid))
    sock.settimeout(10)
    data = b""
    while len(data) < 4:
        b = sock.recv(4 - len(data))
        if not b:
            break
        data += b
    return data[:2] == b"\x20\x02" and data[3] == 0


def count(raw, topic):
    return sum(1 for l in raw.lines() if l.split(" ")[0] == topic)


def sizes_ok(raw, topic):
    return all(l.split(" ")[1] == str(SIZE + 40) for l in raw.lines() if l.split(" ")[0] == topic)


def flood_through(env, c, broker, raw, px, sock, topic, what):
    c.require(connect(sock, "flood-" + os.urandom(3).hex()), "%s: CONNACK through the proxy" % what)
    rss0 = px.proc.rss_kib()
    os.kill(broker.proc.pid, signal.SIGSTOP)
    try:
        fl = Flood(sock, topic)
        fl.start()
        # Wait until the publisher is blocked: no progress for a while.
        last, still = -1, 0
        end = time.monotonic() + 20
        while time.monotonic() < end and not fl.done.is_set():
            time.sleep(0.25)
            still = still + 1 if fl.sent == last else 0
            last = fl.sent
            if still >= 4:
                break
        time.sleep(FROZEN_S)
        held = fl.sent
        rss = px.proc.rss_kib()
        c.expect(not fl.done.is_set() and held < N,
                 "%s: with the broker frozen the publisher is held back by TCP (%d of %d sent)"
                 % (what, held, N))
        c.expect(rss - rss0 < 16 * 1024, "%s: proxy RSS grew %d KiB while holding it (< 16 MiB)"
                 % (what, rss - rss0))
        c.expect(px.alive(), "%s: proxy alive while the broker is frozen" % what)
    finally:
        os.kill(broker.proc.pid, signal.SIGCONT)
    c.expect(fl.done.wait(90) and fl.error is None,
             "%s: the publisher sent all %d publishes, never reset (%s)" % (what, N, fl.error))
    c.expect(h.wait_until(lambda: count(raw, topic) >= N, 90),
             "%s: all %d reached the subscriber at the broker (got %d)" % (what, N,
                                                                          count(raw, topic)))
    c.expect(sizes_ok(raw, topic), "%s: each as an envelope of %d bytes" % (what, SIZE + 40))
    c.expect(not px.err_match(r"output limit|exceeds limits"),
             "%s: no output-limit line in the proxy's log" % what)
    sock.close()


def body(env, c):
    broker = ph.Mosquitto(env)
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["bp/#"])])
    raw = ph.RawSub(env, broker, topics=("bp/#",), fmt="%t %l", name="raw-len", qos=0)
    common = ["--cafile", broker.pki["ca_crt"], "--dir", s.dir]

    # 1. Plain publisher.
    px = ph.Proxy(env, broker.addr(), common, name="proxy-plain")
    flood_through(env, c, broker, raw, px, ph.raw_conn(px.port, timeout=10), "bp/plain",
                  "plain TCP")
    px.stop()

    # 2. TLS publisher (listen-tls), with publisher certificates required.
    pki = env.pki()
    lcrt, lkey = ph.issue(env, "listener", "localhost", san="IP:127.0.0.1,DNS:localhost",
                          usage="serverAuth")
    pcrt, pkey = ph.issue(env, "sensor-1", "sensor-1")
    rcrt, rkey = ph.issue(env, "rogue", "rogue", ca="rogue-ca")
    px = ph.Proxy(env, broker.addr(), common + [
        "--listen-tls", "yes", "--listen-cert", lcrt, "--listen-key", lkey,
        "--listen-cafile", pki["ca_crt"]], name="proxy-tls")

    def tls_conn(cert=None):
        ctx = ssl.create_default_context(cafile=pki["ca_crt"])
        if cert:
            ctx.load_cert_chain(*cert)
        return ctx.wrap_socket(ph.raw_conn(px.port, timeout=10), server_hostname="127.0.0.1")

    flood_through(env, c, broker, raw, px, tls_conn((pcrt, pkey)), "bp/tls", "listen-tls")

    for what, cert in (("no client certificate", None), ("a rogue CA's certificate",
                                                          (rcrt, rkey))):
        t0 = time.monotonic()
        ok = False
        try:
            sk = tls_conn(cert)
            # TLS 1.3: the server's verdict on the certificate comes after the
            # handshake; the connection must end without a CONNACK.
            ok = connect(sk, "nocert")
        except (OSError, ssl.SSLError, IndexError):
            pass
        c.expect(not ok, "listen-tls: a publisher with %s gets no CONNACK" % what)
        c.expect(px.wait_err(r"TLS handshake with the publisher failed", 10, since=t0),
                 "listen-tls: the refusal (%s) is logged" % what)
    plain = ph.raw_conn(px.port, timeout=5)
    try:
        plain.sendall(ph.connect_pkt("plain-on-tls"))
        closed, data = ph.read_until_closed(plain, 5)
    except OSError:
        closed, data = True, b""
    c.expect(not data.startswith(b"\x20"), "listen-tls: plain MQTT gets no CONNACK (%r)" %
             data[:8])
    c.expect(px.alive(), "proxy alive at the end")
    st = px.stats() or {}
    c.expect(st.get("messages", {}).get("sealed", 0) >= N,
             "stats: the listen-tls proxy sealed all %d (%s)" % (N, st.get("messages")))


if __name__ == "__main__":
    h.main("proxy-backpressure", body)
