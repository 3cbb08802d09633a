#!/usr/bin/python3
"""What e2e-proxy does in front of a 3.1.1-only broker that downgrades
QoS 2, packet by packet, without RabbitMQ: a fake broker in Python that
behaves as RabbitMQ 3.10 was measured to (tests/cluster/cluster.py):
an MQTT 5 CONNECT is closed without CONNACK, a QoS 2 PUBLISH is answered
with PUBACK. The proxy's key service goes to a real mosquitto (a Router
sends the first connection there, every publisher connection to the fake).

Checks, with raw packets on the publisher side:
  * QoS 2: PUBLISH id 7 -> the publisher gets PUBREC 7 (the broker's PUBACK
    rewritten), PUBREL 7 -> PUBCOMP 7 from the proxy; the broker never sees
    a PUBREL; a second flow with id 8 works the same; QoS 1 is untouched
    (PUBACK); a PUBREL for an id the proxy does not own is relayed;
  * MQTT 5 CONNECT: the publisher gets CONNACK 20 03 00 84 00 (Unsupported
    Protocol Version) and the proxy logs why, instead of a bare close.
"""

import os
import socket
import ssl
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proxy_it"))
import proxyharness as ph  # noqa: E402

h = ph.h


class FakeBroker:
    """RabbitMQ 3.10's MQTT answers, nothing more. .seen: packet types
    (high nibble) received after CONNECT, with ids, per connection."""

    def __init__(self, env):
        pki = env.pki()
        # TLS with the run's server certificate: the proxy speaks to every
        # upstream the same way, and its key service is at mosquitto.
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki["server_crt"], pki["server_key"])
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.bind((ph.LOCAL, 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.seen = []
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()
        env.clients.append(self)

    def _accept(self):
        self.ls.settimeout(0.2)
        while not self.stop_ev.is_set():
            try:
                s, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._tls_serve, args=(s,), daemon=True).start()

    def _tls_serve(self, raw):
        raw.settimeout(10)
        try:
            s = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        self._serve(s)

    @staticmethod
    def _read_packet(s, buf):
        while True:
            if len(buf) >= 2:
                n, mul, i = 0, 1, 1
                while i < len(buf) and i <= 4:
                    n += (buf[i] & 0x7F) * mul
                    mul *= 128
                    if not buf[i] & 0x80:
                        break
                    i += 1
                if i < len(buf) and len(buf) >= i + 1 + n:
                    return buf[:i + 1 + n], buf[i + 1 + n:], i + 1
            b = s.recv(65536)
            if not b:
                return None, buf, 0
            buf += b

    def _serve(self, s):
        s.settimeout(10)
        buf = b""
        try:
            pkt, buf, hl = self._read_packet(s, buf)
            if not pkt or pkt[0] >> 4 != 1:
                return
            level = pkt[hl + 6]
            if level == 5:
                return                      # RabbitMQ 3.10: close, no CONNACK
            s.sendall(b"\x20\x02\x00\x00")
            while True:
                pkt, buf, hl = self._read_packet(s, buf)
                if not pkt:
                    return
                t = pkt[0] >> 4
                if t == 3:
                    qos = (pkt[0] >> 1) & 3
                    tl = struct.unpack(">H", pkt[hl:hl + 2])[0]
                    mid = struct.unpack(">H", pkt[hl + 2 + tl:hl + 4 + tl])[0] if qos else None
                    with self.lock:
                        self.seen.append(("PUBLISH", qos, mid))
                    if qos:                 # QoS 2 downgraded: PUBACK
                        s.sendall(b"\x40\x02" + struct.pack(">H", mid))
                elif t == 6:
                    with self.lock:
                        self.seen.append(("PUBREL", None, struct.unpack(">H", pkt[hl:hl + 2])[0]))
                elif t == 14:
                    return
        except OSError:
            return
        finally:
            s.close()

    def close(self):
        self.stop_ev.set()
        self.ls.close()


def expect_bytes(s, want, timeout=5):
    got = b""
    s.settimeout(timeout)
    try:
        while len(got) < len(want):
            b = s.recv(len(want) - len(got))
            if not b:
                break
            got += b
    except OSError:
        pass
    return got


def connect(port, version=4):
    s = ph.raw_conn(port)
    s.sendall(ph.connect_pkt("quirk-" + os.urandom(3).hex(), version=version))
    return s


def body(env, c):
    broker = h.Broker(env)
    fake = FakeBroker(env)
    router = ph.Router(env, broker.port, target=fake.port)
    sender = h.Sender(env, "quirks", scopes=[(1, "plant", ["q/#"])])
    proxy = ph.Proxy(env, "%s:%d" % (ph.LOCAL, router.port), [
        "--cafile", broker.pki["ca_crt"], "--dir", sender.dir, "--sni", "localhost"])

    s = connect(proxy.port)
    c.require(expect_bytes(s, b"\x20\x02\x00\x00") == b"\x20\x02\x00\x00",
              "MQTT 3.1.1 publisher connected through the proxy to the fake broker")
    s.sendall(ph.publish_pkt("q/a", b"one", qos=2, mid=7))
    got = expect_bytes(s, b"\x50\x02\x00\x07")
    c.expect(got == b"\x50\x02\x00\x07", "QoS 2 PUBLISH 7: the broker's PUBACK reaches the "
             "publisher as PUBREC 7 (%s)" % got.hex())
    s.sendall(b"\x62\x02\x00\x07")
    got = expect_bytes(s, b"\x70\x02\x00\x07")
    c.expect(got == b"\x70\x02\x00\x07", "PUBREL 7 is answered PUBCOMP 7 by the proxy (%s)"
             % got.hex())
    s.sendall(ph.publish_pkt("q/a", b"two", qos=2, mid=8))
    got = expect_bytes(s, b"\x50\x02\x00\x08")
    s.sendall(b"\x62\x02\x00\x08")
    got += expect_bytes(s, b"\x70\x02\x00\x08")
    c.expect(got == b"\x50\x02\x00\x08\x70\x02\x00\x08",
             "a second QoS 2 flow (id 8) completes the same way (%s)" % got.hex())
    s.sendall(ph.publish_pkt("q/a", b"three", qos=1, mid=9))
    got = expect_bytes(s, b"\x40\x02\x00\x09")
    c.expect(got == b"\x40\x02\x00\x09", "QoS 1 is untouched: PUBACK 9 (%s)" % got.hex())
    # A PUBREL the proxy does not own (no QoS 2 PUBLISH with that id) goes on.
    s.sendall(b"\x62\x02\x00\x2a")
    h.wait_until(lambda: ("PUBREL", None, 42) in fake.seen, 5)
    with fake.lock:
        seen = list(fake.seen)
    c.expect(("PUBLISH", 2, 7) in seen and ("PUBLISH", 2, 8) in seen,
             "the broker got both QoS 2 PUBLISHes as QoS 2 (%s)" % seen)
    c.expect([x for x in seen if x[0] == "PUBREL"] == [("PUBREL", None, 42)],
             "the broker never saw PUBREL 7 or 8, only the foreign PUBREL 42 (%s)" % seen)
    c.expect(proxy.err_match(r"answered a QoS 2 PUBLISH with PUBACK"),
             "the proxy logged the downgrade")
    s.sendall(b"\xe0\x00")
    s.close()

    since = time.monotonic()
    s = connect(proxy.port, version=5)
    closed, data = ph.read_until_closed(s, 5)
    s.close()
    c.expect(closed and data == b"\x20\x03\x00\x84\x00",
             "MQTT 5 CONNECT closed by the broker without CONNACK: the publisher gets CONNACK "
             "0x84 (Unsupported Protocol Version) and the close (%s, closed %s)" % (
                 data.hex(), closed))
    c.expect(proxy.wait_err(r"MQTT 3\.1\.1 only", 5, since=since), "the proxy logged why")
    c.expect(proxy.alive(), "the proxy still runs")


if __name__ == "__main__":
    h.main("broker-quirks", body)
