#!/usr/bin/python3
"""Proxy 6: hostile input on the publisher listener.

e2e-proxy with --connect-timeout 2s, --max-connections 2000 and --max-packet
65536. While 1,000 half-open TCP connections (connected, nothing sent) are
held open, raw sockets send: random bytes, a 5-byte Remaining Length, a
CONNECT claiming more than max-packet, a CONNECT followed by an oversized
PUBLISH, MQTT 5 CONNECTs with garbage properties, topic-alias abuse (used
before set, alias 0, more aliases than the proxy keeps), publishes to
e2e/control and e2e/k/..., a second CONNECT and a CONNECT that never
completes. Checks, for every case: the proxy closes that connection within
a bounded time, logs a line for that peer saying why, and stays up; the
broker never receives the refused publishes; a good publisher (mosquitto_pub
QoS 1) still gets through while the half-open connections are held, and
again after the proxy timed them all out (which it must, within
connect-timeout + slack).
"""
import os
import random
import re
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxyharness as ph  # noqa: E402

h = ph.h
HALF_OPEN = 1000
MAX_PACKET = 65536


def connected(px, cid, version=4, props=b""):
    """A raw client that completed CONNECT/CONNACK through the proxy."""
    s = ph.raw_conn(px.port)
    s.sendall(ph.connect_pkt(cid, version=version, props=props))
    s.settimeout(5)
    data = b""
    end = time.monotonic() + 5
    while len(data) < 2 and time.monotonic() < end:
        b = s.recv(64)
        if not b:
            break
        data += b
    if not data.startswith(b"\x20"):
        raise h.TestFailure("%s: no CONNACK through the proxy (%r)" % (cid, data[:8]))
    return s


def good_publish(env, c, px, sp, what):
    tok = ph.token("good")
    cp = ph.mosq_pub(env, px, "sensors/good", tok, qos=1, cid="good-" + os.urandom(3).hex(),
                     check=False, timeout=20)
    c.expect(cp.returncode == 0, "%s: good publisher acknowledged (rc %d %s)" % (
        what, cp.returncode, cp.stderr.decode(errors="replace")[-150:]))
    c.expect(sp.wait_json(1, 10, pred=lambda o: h.payload_of(o) == tok.encode() and
                          h.verdict_of(o) == "OK") >= 1,
             "%s: subscriber decrypted the good message" % what)


def body(env, c):
    ph.raise_nofile(HALF_OPEN + 1024)
    broker = ph.Mosquitto(env)
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["sensors/#"])])
    alice = h.Subscriber(env, "alice", trust=[s])
    s.enroll(alice, ["telemetry"])
    px = ph.Proxy(env, broker.addr(), [
        "--cafile", broker.pki["ca_crt"], "--dir", s.dir, "--connect-timeout", "2s",
        "--max-connections", "2000", "--max-packet", str(MAX_PACKET)])
    sp = h.start_sub(env, broker, alice, ["sensors/#"], name="sub", args=["--state", "none"])
    c.require(sp.wait_err(h.EV_KEY, 15), "subscriber got the key")

    # 1,000 half-open connections, held open by us.
    t0 = time.monotonic()
    half = []
    for _ in range(HALF_OPEN):
        half.append(ph.raw_conn(px.port))
    h.log("%d half-open connections in %.2f s" % (len(half), time.monotonic() - t0))
    st = h.wait_until(lambda: (lambda x: x if x and x["connections"]["active"] >= HALF_OPEN
                               else None)(px.stats()), 5)
    c.expect(st, "proxy holds the %d half-open connections (stats: %s)" % (
        HALF_OPEN, st and st["connections"]))
    good_publish(env, c, px, sp, "during %d half-open connections" % HALF_OPEN)

    rnd = random.Random(0xE2E)
    noise = bytes(rnd.randrange(256) for _ in range(4096))
    while noise[0] >> 4 == 1:            # not a CONNECT header by chance
        noise = noise[1:]

    cases = [
        ("random bytes", None, noise, r"malformed|not CONNECT|too big"),
        ("5-byte Remaining Length", None, b"\x10\xff\xff\xff\xff\x7f" + b"\x00" * 16,
         r"malformed MQTT packet from publisher"),
        ("CONNECT larger than max-packet", None, b"\x10" + ph.varint(4 * MAX_PACKET) +
         b"\x00" * 256, r"packet too big from publisher"),
        ("PUBLISH larger than max-packet", ("big-pub", 4, b""),
         b"\x30" + ph.varint(2 * MAX_PACKET) + ph.mstr("sensors/big") + b"x" * 4096,
         r"packet too big from publisher"),
        ("MQTT 5 CONNECT, unknown property id", None,
         ph.connect_pkt("bad-props", version=5, props=b"\xff\x01\x02\x03"),
         r"bad CONNECT: malformed"),
        ("MQTT 5 CONNECT, property length past the packet", None,
         ph.packet(0x10, ph.mstr("MQTT") + b"\x05\x02\x00\x1e" + ph.varint(60) + b"\x11\x00" +
                   ph.mstr("x")), r"bad CONNECT: malformed"),
        ("MQTT 5 CONNECT, duplicate session expiry", None,
         ph.connect_pkt("dup-props", version=5, props=b"\x11\x00\x00\x00\x05" * 2),
         r"bad CONNECT: malformed"),
        ("topic alias used before it was set", ("alias-unset", 5, b""),
         ph.publish_pkt("", b"secret", version=5, props=ph.alias_prop(7)),
         r"topic alias 7 used before it was set"),
        ("topic alias 0", ("alias-zero", 5, b""),
         ph.publish_pkt("sensors/a0", b"secret", version=5, props=ph.alias_prop(0)),
         r"bad PUBLISH: malformed"),
        ("more topic aliases than the proxy keeps", ("alias-many", 5, b""),
         b"".join(ph.publish_pkt("sensors/many/%d" % i, b"m", version=5,
                                 props=ph.alias_prop(i + 1)) for i in range(65)),
         r"more than 64 topic aliases"),
        ("publish to e2e/control", ("ctl-pub", 4, b""),
         ph.publish_pkt("e2e/control", b"forged-" + os.urandom(8).hex().encode(), qos=1),
         r"refused.* 'e2e/control'"),
        ("publish to e2e/control/x (MQTT 5)", ("ctl-pub5", 5, b""),
         ph.publish_pkt("e2e/control/x", b"forged", version=5, qos=1),
         r"refused.* 'e2e/control/x'"),
        ("publish to e2e/k/<reply topic>", ("ctl-reply", 4, b""),
         ph.publish_pkt("e2e/k/" + os.urandom(16).hex(), b"forged", qos=1),
         r"refused.* 'e2e/k/[0-9a-f]{32}'"),
        ("second CONNECT", ("twice", 4, b""), ph.connect_pkt("twice"), r"second CONNECT"),
        ("CONNECT never completed", None, ph.connect_pkt("slow")[:7], r"no CONNECT in time"),
    ]
    for what, pre, data, why in cases:
        try:
            if pre:
                sock = connected(px, pre[0], version=pre[1], props=pre[2])
            else:
                sock = ph.raw_conn(px.port)
            peer = sock.getsockname()[1]
            sock.sendall(data)
        except OSError as e:
            c.expect(False, "%s: could not send (%s)" % (what, e))
            continue
        except h.TestFailure as e:
            c.expect(False, "%s: %s" % (what, e))
            continue
        closed, reply = ph.read_until_closed(sock, 6)
        sock.close()
        c.expect(closed, "%s: the proxy closed the connection" % what)
        # The line names the peer, or the client id once CONNECT was read.
        rx = r"(127\.0\.0\.1:%d\b|\b%s\b).*(%s)" % (peer, re.escape(pre[0]) if pre else
                                                  "(?!)", why)
        line = px.wait_err(rx, 3)
        c.expect(line, "%s: logged for that peer: %s" % (
            what, line[0].split(" ", 3)[-1] if line else
            px.err_match(r"127\.0\.0\.1:%d\b" % peer) or "(nothing)"))
        c.expect(px.alive(), "%s: proxy still running" % what)

    for cid in ("ctl-pub", "ctl-pub5", "ctl-reply"):
        c.expect(not re.search(r"Received PUBLISH from %s .*'e2e/" % cid, broker.log_text()),
                 "%s: the broker never received its publish to e2e/..." % cid)
    c.expect(not re.search(r"Received PUBLISH from alias-(unset|zero) ", broker.log_text()),
             "the alias abusers' publishes never reached the broker")

    # The proxy times the half-open connections out (connect-timeout 2s).
    st = h.wait_until(lambda: (lambda x: x if x and x["timeouts"] >= HALF_OPEN else None)(
        px.stats()), 10)
    c.expect(st, "proxy timed out all %d half-open connections (stats: %s)" % (
        HALF_OPEN, st or px.stats()))
    sample = half[::50]
    closed = sum(1 for sock in sample if ph.read_until_closed(sock, 2)[0])
    c.expect(closed == len(sample), "half-open sockets see EOF (%d of %d sampled)" % (
        closed, len(sample)))
    for sock in half:
        sock.close()
    c.expect(px.err_match(r"closed: no CONNECT in time"), "timeouts logged as 'no CONNECT in time'")
    good_publish(env, c, px, sp, "after the hostile input")
    st = px.stats() or {}
    m = st.get("messages", {})
    c.expect(m.get("malformed", 0) >= 8, "stats count the 8 malformed inputs: %s" % m)
    c.expect(m.get("refused", 0) >= 3, "stats count the 3 refused publishes to reserved topics "
             "as refused: %s" % m)
    c.expect(px.alive(), "proxy still running at the end")


if __name__ == "__main__":
    h.main("proxy-hostile", body)
