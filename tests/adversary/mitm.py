#!/usr/bin/python3
"""A malicious broker in front of a real one: an MQTT-parsing TCP/TLS relay.

Clients (e2e-sub, or e2e-proxy's upstream connections) connect to the
Mitm's TLS listener, which presents the broker's own certificate (the test
PKI: a malicious broker holds its certificate); for each connection it opens
a TLS connection to the real mosquitto and relays packet by packet. PUBLISH
packets in either direction go through a policy, which may forward, drop,
hold, duplicate, rewrite or inject; every other packet passes unchanged.

Packet ids are remapped per direction, so injected and duplicated QoS 1
messages get ids of their own: the client's PUBACK for an injected copy is
swallowed, the one for a relayed message goes back with the broker's id, and
a dropped QoS 1 message is acknowledged to its sender by the Mitm itself (so
the drop is real: the broker will not redeliver it).

Everything runs in one asyncio loop on a thread of its own; policies run on
that thread. Each connection is a Link with logs of what arrived and what was
sent, in order, for the tests to compare with what the subscriber reported.
"""
import asyncio
import ssl
import threading
import time

import mqttwire as mw

DOWN, UP = "down", "up"      # broker -> client, client -> broker
OTHER = {DOWN: UP, UP: DOWN}


class Sent:
    """One PUBLISH written by the Mitm. kind: 'fwd' (relayed unchanged) or
    the attack that made it; origin: the arrival index it derives from."""

    __slots__ = ("t", "topic", "payload", "retain", "kind", "origin")

    def __init__(self, topic, payload, retain, kind, origin):
        self.t = time.monotonic()
        self.topic, self.payload, self.retain, self.kind, self.origin = (
            topic, payload, retain, kind, origin)


class Link:
    """One client connection relayed to the broker."""

    def __init__(self, mitm, n):
        self.mitm = mitm
        self.n = n
        self.client_id = None
        self.version = 4
        self.closed = threading.Event()
        self.writers = {}
        self.pidmap = {DOWN: {}, UP: {}}     # pid we sent -> sender's pid, None if ours
        self.next_pid = {DOWN: 0, UP: 0}
        self.aliases = {DOWN: {}, UP: {}}
        self.arrived = {DOWN: [], UP: []}    # (monotonic time, Publish) as received
        self.sent = {DOWN: [], UP: []}       # Sent records in write order
        self.policy = None
        self.qos2 = 0

    # -- API for policies (loop thread) -----------------------------------
    def _alloc(self, direction):
        m = self.pidmap[direction]
        for _ in range(65535):
            self.next_pid[direction] = self.next_pid[direction] % 65535 + 1
            if self.next_pid[direction] not in m:
                return self.next_pid[direction]
        raise RuntimeError("no free packet id")

    def send(self, direction, pub, kind="fwd", origin=None, src_pid=None):
        """Write pub towards direction; src_pid: the sender's id to acknowledge
        when the receiver acknowledges (None: injected, ack swallowed)."""
        w = self.writers.get(direction)
        if w is None or w.is_closing():
            return
        if pub.qos:
            pid = self._alloc(direction)
            self.pidmap[direction][pid] = src_pid
            w.write(pub.build(pid))
        else:
            w.write(pub.build())
        self.sent[direction].append(Sent(pub.topic, pub.payload, pub.retain, kind, origin))

    def forward(self, direction, pub, kind="fwd", origin=None):
        self.send(direction, pub, kind, origin, src_pid=pub.pid)

    def inject(self, direction, topic, payload, qos=1, retain=False, kind="inject", origin=None):
        t = topic.encode() if isinstance(topic, str) else topic
        self.send(direction, mw.Publish(t, payload, qos, retain, version=self.version), kind, origin)

    def ack(self, direction, pub):
        """Acknowledge a PUBLISH that travelled in direction to its sender."""
        w = self.writers.get(OTHER[direction])
        if pub.qos == 1 and w is not None and not w.is_closing():
            w.write(mw.puback(pub.pid))

    def drop(self, direction, pub):
        self.ack(direction, pub)

    def later(self, seconds, fn, *a):
        self.mitm.loop.call_later(seconds, fn, *a)

    # -- relay ---------------------------------------------------------------
    def _handle(self, direction, typ, flags, body, raw):
        if typ == mw.CONNECT and direction == UP:
            self.version, self.client_id = mw.connect_info(body)
            self.policy = self.mitm.policy_for(self)
        if typ == mw.PUBLISH:
            pub = mw.Publish.parse(flags, body, self.version, self.aliases[direction])
            if pub.qos == 2:      # not remapped: ids would clash with ours
                self.qos2 += 1
                self.writers[direction].write(raw)
                return
            self.arrived[direction].append((time.monotonic(), pub))
            if self.policy:
                self.policy(self, direction, pub, len(self.arrived[direction]) - 1)
            else:
                self.forward(direction, pub)
            return
        if typ == mw.PUBACK:
            # Travelling `direction`, it acknowledges a PUBLISH sent the other way.
            m = self.pidmap[OTHER[direction]]
            pid = mw.ack_pid(body)
            if pid in m:
                src = m.pop(pid)
                if src is not None:
                    self.writers[direction].write(mw.puback(src, body[2:]))
                return
        self.writers[direction].write(raw)

    async def pump(self, reader, direction):
        buf = b""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                buf += data
                pkts, buf = mw.split(buf)
                for p in pkts:
                    self._handle(direction, *p)
        except (ConnectionError, OSError, mw.Malformed, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            self.close()

    def close(self):
        for w in self.writers.values():
            if not w.is_closing():
                w.close()
        self.closed.set()


class Mitm:
    """Listens on 127.0.0.1:<free port> with TLS; relays to broker (a
    harness.Broker). policy_factory(link) -> policy(link, direction, pub, idx)
    or None (relay unchanged); called when the client's CONNECT is seen."""

    def __init__(self, env, broker, name="mitm", policy_factory=None):
        self.env = env
        self.name = name
        self.host = "127.0.0.1"
        self.up = (broker.host, broker.port)
        self.pki = broker.pki
        self.policy_factory = policy_factory
        self.links = []
        self.srv_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.srv_ctx.load_cert_chain(self.pki["server_crt"], self.pki["server_key"])
        self.cli_ctx = ssl.create_default_context(cafile=self.pki["ca_crt"])
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = self.run_coro(asyncio.start_server(self._accept, self.host, 0,
                                                         ssl=self.srv_ctx))
        self.port = self.server.sockets[0].getsockname()[1]
        env.clients.append(self)

    # harness.Broker look-alike, so harness.start_sub() can connect here.
    def tls_args(self, client_cert=False, cafile=True):
        return ["-h", self.host, "-p", str(self.port), "--cafile", self.pki["ca_crt"]]

    def addr(self):
        return "%s:%d" % (self.host, self.port)

    def policy_for(self, link):
        return self.policy_factory(link) if self.policy_factory else None

    async def _accept(self, reader, writer):
        link = Link(self, len(self.links))
        self.links.append(link)
        try:
            ur, uw = await asyncio.open_connection(self.up[0], self.up[1], ssl=self.cli_ctx,
                                                   server_hostname=self.up[0])
        except Exception:        # broker gone, or the Mitm closing
            writer.close()
            link.closed.set()
            return
        link.writers = {DOWN: writer, UP: uw}
        await asyncio.gather(link.pump(reader, UP), link.pump(ur, DOWN))

    # -- from the test thread ---------------------------------------------
    def run_coro(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn, *a, timeout=30):
        """Run fn(*a) on the loop thread; returns its result."""
        async def go():
            return fn(*a)
        return self.run_coro(go(), timeout)

    def link(self, client_prefix, newest=True):
        ls = [l for l in self.links if l.client_id and l.client_id.startswith(client_prefix)]
        return (ls[-1] if newest else ls[0]) if ls else None

    def close(self):
        if not self.loop.is_running():
            return
        try:
            def stop_all():
                self.server.close()
                for l in self.links:
                    l.close()
            self.call(stop_all, timeout=5)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
