#!/usr/bin/python3
"""Proxy 10: MQTT conformance at the publisher listener.

mosquitto with a TLS listener, e2e-proxy in front (default max-packet, 1 MiB),
one enrolled subscriber (e2e-sub --json). Checks, each against the real
proxy and broker:
  * a PUBLISH just under max-packet (1 MiB - 256) passes whole: from a raw
    3.1.1 socket at QoS 1 (PUBACK comes back) and from paho-mqtt 5 at QoS 1;
    e2e-sub decrypts both with verdict OK and the exact payload (the proxy
    used to stop reading at 64 KiB of an incomplete packet and hang);
  * a CONNECT and a PUBLISH (2-byte Remaining Length) sent one byte per TCP
    segment, 3.1.1 and 5: CONNACK, PUBACK, delivered;
  * protocol level 9, and "MQIsdp" with level 4: CONNACK 0x01 (3.1.1 form,
    "20 02 00 01"), then the proxy closes; logged;
  * an MQTT 5 CONNECT with a bad property block: closed without CONNACK;
  * the proxy stays up throughout;
  * in-flight counting against a scripted TLS broker (a Router sends the key
    service to mosquitto, the relay to the script): two MQTT 5 QoS 2
    publishes with packet ids 0x0180/0x0181 get PUBRECs whose Remaining
    Length takes 2 bytes (a Reason String), then one PUBCOMP. One flow is
    still open, so SIGTERM must wait (drain) until the second PUBCOMP. A
    proxy that read the reason code at pkt[4] (the id's low byte, >= 0x80)
    counted both flows as finished and exited at once.
"""
import os
import signal
import socket
import ssl
import struct
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxyharness as ph  # noqa: E402

h = ph.h
MAX_PACKET = 1 << 20


_pending = {}      # socket -> bytes read past the last packet returned


def read_packet(s, timeout):
    """One whole MQTT packet from @s (first byte, body), or None. Bytes of
    later packets that arrived with it are kept for the next call."""
    end = time.monotonic() + timeout
    buf = _pending.pop(s, b"")
    try:
        while True:
            if len(buf) >= 2:
                n, mult, i = 0, 1, 1
                while i < len(buf) and i <= 4:
                    n += (buf[i] & 0x7F) * mult
                    mult *= 128
                    if not buf[i] & 0x80:
                        break
                    i += 1
                if i < len(buf) and not buf[i] & 0x80 and len(buf) >= i + 1 + n:
                    _pending[s] = buf[i + 1 + n:]
                    return buf[0], buf[i + 1:i + 1 + n]
            if time.monotonic() >= end:
                break
            s.settimeout(max(0.05, end - time.monotonic()))
            b = s.recv(65536)
            if not b:
                break
            buf += b
    except (socket.timeout, OSError):
        pass
    _pending[s] = buf
    return None


def send_bytewise(s, data, pause=0.002):
    """One byte per segment (TCP_NODELAY is set by raw_conn)."""
    for i in range(len(data)):
        s.sendall(data[i:i + 1])
        time.sleep(pause)


def connect(px, cid, version=4, bytewise=False):
    s = ph.raw_conn(px.port, timeout=10)
    pkt = ph.connect_pkt(cid, version=version)
    if bytewise:
        send_bytewise(s, pkt)
    else:
        s.sendall(pkt)
    p = read_packet(s, 10)
    if not p or p[0] != 0x20 or p[1][1] != 0:
        raise h.TestFailure("%s: no successful CONNACK through the proxy (%r)" % (cid, p))
    return s


def wait_puback(s, mid, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        p = read_packet(s, end - time.monotonic())
        if p is None:
            return False
        if p[0] == 0x40 and struct.unpack(">H", p[1][:2])[0] == mid:
            return True
    return False


def got(sp, payload, topic, timeout):
    return sp.wait_json(1, timeout, pred=lambda o: h.payload_of(o) == payload and
                        o.get("topic") == topic and h.verdict_of(o) == "OK") >= 1


def long_pubrec(mid):
    """MQTT 5 PUBREC, reason 0x00, with a Reason String: Remaining Length >= 128."""
    props = b"\x1f" + ph.mstr("r" * 150)
    return ph.packet(0x50, struct.pack(">H", mid) + b"\x00" + ph.varint(len(props)) + props)


def inflight_drain(env, c, broker):
    pki = env.pki()
    s2 = h.Sender(env, "edge2", scopes=[(1, "telemetry", ["sensors/#"])])
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((ph.LOCAL, 0))
    ls.listen(4)
    ls.settimeout(15)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server_crt"], pki["server_key"])
    router = ph.Router(env, broker.port, target=ls.getsockname()[1])
    px2 = ph.Proxy(env, "%s:%d" % (ph.LOCAL, router.port), [
        "--cafile", pki["ca_crt"], "--dir", s2.dir, "--drain-timeout", "20s"], name="proxy-drain",
        stats=False)
    pub = ph.raw_conn(px2.port, timeout=10)
    pub.sendall(ph.connect_pkt("drainer", version=5))
    try:
        raw, _ = ls.accept()
    except OSError as e:
        raise h.TestFailure("the relay never reached the scripted broker: %s" % e)
    fake = ctx.wrap_socket(raw, server_side=True)
    c.require(read_packet(fake, 10) is not None, "scripted broker: CONNECT relayed")
    fake.sendall(b"\x20\x03\x00\x00\x00")
    p = read_packet(pub, 10)
    c.require(p and p[0] == 0x20, "drainer: CONNACK through the proxy (%r)" % (p,))
    mids = (0x0180, 0x0181)
    for mid in mids:
        pub.sendall(ph.publish_pkt("sensors/drain", b"q2-" + os.urandom(4).hex().encode(),
                                   version=5, qos=2, mid=mid))
    for mid in mids:
        p = read_packet(fake, 10)
        c.require(p and p[0] >> 4 == 3 and struct.unpack(">H", p[1][2 + 13:2 + 15])[0] == mid,
                  "scripted broker: sealed QoS 2 PUBLISH 0x%04x" % mid)
    pubrec = long_pubrec(mids[0])
    c.expect(pubrec[1] & 0x80, "the PUBREC has a 2-byte Remaining Length (%d bytes)" %
             len(pubrec))
    for mid in mids:
        fake.sendall(long_pubrec(mid))
    for mid in mids:
        p = read_packet(pub, 10)
        c.require(p and p[0] == 0x50, "drainer: PUBREC 0x%04x relayed" % mid)
        pub.sendall(b"\x62\x02" + struct.pack(">H", mid))
    for mid in mids:
        p = read_packet(fake, 10)
        c.require(p and p[0] == 0x62, "scripted broker: PUBREL 0x%04x" % mid)
    fake.sendall(b"\x70\x02" + struct.pack(">H", mids[0]))
    p = read_packet(pub, 10)
    c.require(p and p[0] == 0x70, "drainer: first PUBCOMP relayed")
    t0 = time.monotonic()
    px2.send(signal.SIGTERM)
    c.expect(px2.wait_err(r"SIGTERM: draining 1 connection", 5), "SIGTERM: draining")
    time.sleep(1.5)
    c.expect(px2.alive() and not px2.err_match(r"drain complete"),
             "one QoS 2 flow still open: the proxy waits for it (alive after %.1f s)" % (
                 time.monotonic() - t0))
    fake.sendall(b"\x70\x02" + struct.pack(">H", mids[1]))
    c.expect(px2.wait_err(r"drain complete", 10), "the last PUBCOMP completes the drain")
    c.expect(px2.proc.wait_exit(10) == 0, "then the proxy exits 0")
    for x in (pub, fake, ls):
        try:
            x.close()
        except OSError:
            pass
    router.close()


def body(env, c):
    broker = ph.Mosquitto(env)
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["sensors/#"])])
    alice = h.Subscriber(env, "alice", trust=[s])
    s.enroll(alice, ["telemetry"])
    px = ph.Proxy(env, broker.addr(), ["--cafile", broker.pki["ca_crt"], "--dir", s.dir])
    sp = h.start_sub(env, broker, alice, ["sensors/#"], name="sub", args=["--state", "none"])
    c.require(sp.wait_err(h.EV_KEY, 15), "e2e-sub got the key")

    # --- PUBLISH just under max-packet, raw 3.1.1 socket, QoS 1 ------------
    topic = "sensors/big/raw"
    payload = (ph.token("big") + "-").encode()
    head = len(ph.publish_pkt(topic, b"", qos=1)) + 4     # header grows with the length
    payload = (payload * (MAX_PACKET // len(payload) + 1))[:MAX_PACKET - 256 - head]
    pkt = ph.publish_pkt(topic, payload, qos=1, mid=7)
    c.expect(MAX_PACKET - 300 < len(pkt) <= MAX_PACKET - 256,
             "test packet is %d bytes, just under max-packet" % len(pkt))
    sock = connect(px, "big-raw")
    t0 = time.monotonic()
    sock.sendall(pkt)
    c.expect(wait_puback(sock, 7, 20), "1 MiB - 256 PUBLISH (3.1.1, QoS 1): PUBACK in %.2f s" % (
        time.monotonic() - t0))
    c.expect(got(sp, payload, topic, 20), "subscriber decrypted the %d-byte payload" %
             len(payload))
    sock.close()

    # --- the same size from a real client: paho-mqtt, MQTT 5 ---------------
    topic5 = "sensors/big/paho5"
    payload5 = bytes(payload[::-1])
    pp = ph.PahoPub(env, px.port, "big-paho5", version=5, reconnect=False)
    pp.publish(topic5, payload5, qos=1)
    c.expect(h.wait_until(lambda: payload5 in pp.acked_set(), 20),
             "paho-mqtt 5: %d-byte publish acknowledged" % len(payload5))
    c.expect(got(sp, payload5, topic5, 20), "subscriber decrypted paho's large payload")
    pp.close()

    # --- CONNECT and PUBLISH one byte per segment ---------------------------
    for version in (4, 5):
        cid = "bytewise-v%d" % version
        topic = "sensors/bytewise/v%d" % version
        small = ("%s-" % ph.token("bw")).encode() * 6          # > 127: 2-byte length
        sock = connect(px, cid, version=version, bytewise=True)
        pkt = ph.publish_pkt(topic, small, version=version, qos=1, mid=3)
        c.expect(pkt[1] & 0x80, "%s: PUBLISH has a 2-byte Remaining Length" % cid)
        send_bytewise(sock, pkt)
        c.expect(wait_puback(sock, 3, 10), "%s: PUBACK after a byte-by-byte PUBLISH" % cid)
        c.expect(got(sp, small, topic, 15), "%s: delivered" % cid)
        sock.close()

    # --- unsupported protocol levels: CONNACK 0x01 then close ---------------
    for what, name, level in (("level 9", "MQTT", 9), ("MQIsdp level 4", "MQIsdp", 4),
                              ("MQTT level 3", "MQTT", 3)):
        sock = ph.raw_conn(px.port)
        peer = sock.getsockname()[1]
        vh = ph.mstr(name) + bytes([level, 0x02]) + struct.pack(">H", 30)
        sock.sendall(ph.packet(0x10, vh + ph.mstr("old-" + str(level))))
        closed, reply = ph.read_until_closed(sock, 6)
        sock.close()
        c.expect(reply == b"\x20\x02\x00\x01", "%s: CONNACK 0x01 (got %r)" % (what, reply))
        c.expect(closed, "%s: then the proxy closed the connection" % what)
        c.expect(px.wait_err(r"127\.0\.0\.1:%d\b.*unsupported protocol level %d" % (peer, level),
                             3), "%s: logged for that peer" % what)

    # --- MQTT 5 CONNECT with bad properties: closed, no CONNACK -------------
    for what, props in (("unknown property", b"\xff\x01"),
                        ("Topic Alias in CONNECT", b"\x23\x00\x01"),
                        ("duplicate Receive Maximum", b"\x21\x00\x05" * 2)):
        sock = ph.raw_conn(px.port)
        sock.sendall(ph.connect_pkt("badprops", version=5, props=props))
        closed, reply = ph.read_until_closed(sock, 6)
        sock.close()
        c.expect(closed and reply == b"", "v5 CONNECT with %s: closed without CONNACK "
                 "(closed %s, got %r)" % (what, closed, reply))

    inflight_drain(env, c, broker)

    c.expect(px.alive(), "proxy still running at the end")
    st = px.stats() or {}
    c.expect(st.get("messages", {}).get("sealed", 0) >= 4, "stats count the sealed publishes: %s"
             % st.get("messages"))


if __name__ == "__main__":
    h.main("proxy-conformance", body)
