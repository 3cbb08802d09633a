#!/usr/bin/python3
"""Helpers of the e2e-proxy integration tests (tests/proxy_it/).

Built on tests/integration/harness.py (imported, not copied): its Env, Proc,
run, main, Checks, wait_until, free_port, PKI, Sender/Subscriber, e2e-sub
starter and envelope parser are used as they are. What is added here is what
only the proxy tests need:

  * Mosquitto: a broker with any mix of listeners (TLS with or without client
    certificates, identity as username, TLS-PSK), an ACL file, a psk_file;
  * issue(): more leaf certificates from the run's CA (or the untrusted CA);
  * Proxy: e2e-proxy on a free 127.0.0.1 port, stopped by its PID;
  * RawSub: plain mosquitto_sub at the broker (what the broker sees);
  * Router: a TCP splitter that sends the first connection (the proxy's key
    service) to one server and the rest (publisher relays) to another;
  * mqtt_*: raw MQTT packet builders for hostile input;
  * paho publishers through the proxy.

Rules as in harness.py: real processes, 127.0.0.1 only, free ports, every
process stopped by its PID, every wait bounded, temp dirs removed.
"""

import collections
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness as h  # noqa: E402


def _on_sigterm(signum, frame):
    # meson's timeout sends SIGTERM: fail through harness.main so that every
    # process is still stopped by its PID and the temp dir removed.
    raise h.TestFailure("terminated by signal %d (test timeout?)" % signum)


if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _on_sigterm)

MOSQ_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
MOSQ_SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
MOSQ_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
LOCAL = "127.0.0.1"


def proxy_bin():
    b = os.path.join(os.environ.get("E2E_BUILD", ""), "proxy", "e2e-proxy")
    if not os.environ.get("E2E_PROXY") and os.access(b, os.X_OK):
        return b
    return h.find_binary("e2e-proxy", "E2E_PROXY")


def token(tag="pt"):
    """A distinctive random ASCII string: found in raw bytes only if leaked."""
    return "%s-%s" % (tag, os.urandom(10).hex())


# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------

def issue(env, name, cn, ca="ca", san=None, usage="clientAuth"):
    """A leaf certificate (EC P-256) signed by the run's CA ("ca") or by the
    CA the broker does not trust ("rogue-ca"). Returns (crt, key) paths."""
    pki = env.pki()
    d = os.path.dirname(pki["ca_crt"])
    out = os.path.join(env.dir, "certs")
    os.makedirs(out, mode=0o700, exist_ok=True)
    crt, key = os.path.join(out, name + ".crt"), os.path.join(out, name + ".key")
    csr, ext = os.path.join(out, name + ".csr"), os.path.join(out, name + ".ext")
    h.run(env, "openssl", [h.OPENSSL, "req", "-newkey", "ec", "-pkeyopt",
                           "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr,
                           "-subj", "/CN=" + cn])
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=%s\n" % usage +
                ("subjectAltName=%s\n" % san if san else ""))
    h.run(env, "openssl", [h.OPENSSL, "x509", "-req", "-in", csr, "-CA",
                           os.path.join(d, ca + ".crt"), "-CAkey", os.path.join(d, ca + ".key"),
                           "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext])
    os.chmod(key, 0o600)
    return crt, key


# ---------------------------------------------------------------------------
# Broker with configurable listeners
# ---------------------------------------------------------------------------

class Mosquitto(h.Broker):
    """mosquitto 2.0 on 127.0.0.1. listeners: list of dicts with "kind":
    "plain" (no TLS), "tls" (server certificate of the run's PKI; "require_certificate",
    "identity" = use_identity_as_username) or "psk" ("hint"). The first
    listener is .port; all are in .ports. A harness.Broker with its own
    configuration (tls_args, log_text, stop are inherited) for
    harness.start_sub/Adversary, which need a certificate TLS listener first."""

    def __init__(self, env, listeners=({"kind": "tls"},), acl=None, psk=None,  # noqa: super-init
                 name="mosquitto", passwords=None):  # pylint: disable=super-init-not-called
        self.env = env
        self.pki = env.pki()
        self.host = LOCAL
        self.name = name
        self.logfile = os.path.join(env.dir, name + ".log")
        conf = os.path.join(env.dir, name + ".conf")
        head = ["per_listener_settings false", "allow_anonymous true", "persistence false",
                "log_dest file " + self.logfile, "log_type all", "connection_messages true",
                "log_timestamp true", "max_queued_messages 200000", "max_inflight_messages 100"]
        if os.geteuid() == 0:
            head.append("user root")
        if passwords is not None:
            # Password-only broker: no anonymous clients, a password_file
            # made with mosquitto_passwd (hashed, as an operator would).
            path = os.path.join(env.dir, name + ".passwd")
            open(path, "w").close()
            for user, pw in passwords.items():
                h.run(env, "mosquitto_passwd", [MOSQ_PASSWD, "-b", path, user, pw])
            os.chmod(path, 0o600)
            head[1] = "allow_anonymous false"
            head.append("password_file " + path)
        if acl is not None:
            path = os.path.join(env.dir, name + ".acl")
            with open(path, "w") as f:
                f.write(acl)
            head.append("acl_file " + path)
        if psk is not None:
            path = os.path.join(env.dir, name + ".psk")
            with open(path, "w") as f:
                f.write("".join("%s:%s\n" % kv for kv in psk.items()))
            os.chmod(path, 0o600)
            head.append("psk_file " + path)
        for attempt in range(3):
            self.ports = [h.free_port() for _ in listeners]
            body = []
            for port, li in zip(self.ports, listeners):
                body.append("listener %d %s" % (port, LOCAL))
                if li["kind"] == "plain":
                    continue
                if li["kind"] == "psk":
                    body.append("psk_hint " + li.get("hint", "mqtt-e2e"))
                    if li.get("identity"):
                        body.append("use_identity_as_username true")
                    continue
                body += ["cafile " + self.pki["ca_crt"], "certfile " + self.pki["server_crt"],
                         "keyfile " + self.pki["server_key"],
                         "require_certificate " + ("true" if li.get("require_certificate") else
                                                   "false")]
                if li.get("identity"):
                    body.append("use_identity_as_username true")
                if li.get("tls_version"):
                    body.append("tls_version " + li["tls_version"])
            with open(conf, "w") as f:
                f.write("# generated by tests/proxy_it/proxyharness.py\n" +
                        "\n".join(head + body) + "\n")
            self.port = self.ports[0]
            self.conf = conf
            if self._start(name):
                return
            self.proc.stop()
            h.log("mosquitto did not come up (attempt %d):\n%s\n%s" % (
                attempt + 1, self.proc.tail(), self.log_text()[-2000:]))
        raise h.TestFailure("cannot start mosquitto; see " + self.logfile)

    def _start(self, name):
        self.proc = h.Proc(self.env, name, [h.MOSQUITTO, "-c", self.conf])
        return h.wait_until(lambda: all(port_open(p) for p in self.ports) or
                            not self.proc.alive(), 10) and self.proc.alive()

    def restart(self, name=None):
        """Start it again (after proc.stop()) on the same ports and
        configuration: a broker coming back after an outage, without its
        sessions (persistence false)."""
        if not self._start(name or self.name + "-restarted"):
            raise h.TestFailure("cannot restart mosquitto on port %d:\n%s" % (
                self.port, self.proc.tail()))

    def addr(self, i=0):
        return "%s:%d" % (LOCAL, self.ports[i])

    def wait_log(self, pattern, timeout):
        rx = re.compile(pattern)
        return h.wait_until(lambda: rx.search(self.log_text()), timeout)


def port_open(port, host=LOCAL):
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------
# e2e-proxy
# ---------------------------------------------------------------------------

class Proxy:
    """e2e-proxy listening on a free 127.0.0.1 port. ready: wait for its
    "relaying to" line (key service connected). A port found busy between
    free_port() and bind() is retried."""

    def __init__(self, env, broker_addr, args=(), name="proxy", port=None, ready=True,
                 stats=True, config=None, timeout=15, extra_env=None):
        self.env = env
        self.name = name
        self.stats_path = os.path.join(env.dir, name + ".sock") if stats else None
        for attempt in range(3):
            self.port = port or h.free_port()
            argv = [proxy_bin()]
            if config:
                argv += ["--config", config]
            argv += ["--listen", "%s:%d" % (LOCAL, self.port)]
            if broker_addr:
                argv += ["--broker", broker_addr]
            if self.stats_path:
                argv += ["--stats-socket", self.stats_path]
            argv += list(args)
            self.proc = h.Proc(env, name, argv, extra_env=extra_env)
            self.pid = self.proc.pid
            if not ready:
                return
            if self.proc.wait_err(r"relaying to", timeout) and self.proc.alive():
                return
            if self.proc.alive() or not self.proc.err_match("Address already in use") or port:
                break
        raise h.TestFailure("e2e-proxy did not become ready (alive %s):\n%s" % (
            self.proc.alive(), self.proc.tail(25)))

    def alive(self):
        return self.proc.alive()

    def err_match(self, pattern, since=0.0):
        return self.proc.err_match(pattern, since)

    def wait_err(self, pattern, timeout, since=0.0):
        return self.proc.wait_err(pattern, timeout, since)

    def send(self, sig):
        os.kill(self.pid, sig)

    def stats(self):
        """One JSON line from the stats socket, or None."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(3)
        try:
            s.connect(self.stats_path)
            data = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                data += b
            return json.loads(data.decode())
        except (OSError, ValueError):
            return None
        finally:
            s.close()

    def stop(self, sig=signal.SIGTERM, timeout=15):
        return self.proc.stop(sig, timeout)


def delivered(sub, topic=None):
    """Payloads an e2e-sub (--json) handed to the application (OK, GAP,
    LATE), decoded, each with how often; only topic's if given."""
    return collections.Counter(
        h.payload_of(o).decode(errors="replace") for o in sub.messages()
        if h.verdict_of(o) in h.DELIVERING and h.payload_of(o) and
        (topic is None or o.get("topic") == topic))


# ---------------------------------------------------------------------------
# What the broker sees
# ---------------------------------------------------------------------------

class RawSub:
    """mosquitto_sub at the broker (TLS, the run's CA). fmt None: -v (topic,
    space, raw payload bytes); else mosquitto_sub -F fmt. Readiness is
    proven by a probe message published directly to the broker."""

    def __init__(self, env, broker, topics=("#",), fmt=None, name="rawsub", qos=1,
                 client_cert=None):
        self.env = env
        self.broker = broker
        self.probe_topic = "probe/" + os.urandom(6).hex()
        argv = [MOSQ_SUB] + self._tls(client_cert) + ["-q", str(qos), "-i", name + "-" +
                                                       os.urandom(3).hex()]
        argv += ["-F", fmt] if fmt else ["-v"]
        for t in list(topics) + [self.probe_topic]:
            argv += ["-t", t]
        self.proc = h.Proc(env, name, argv)
        self.client_cert = client_cert
        self._ready()

    def _tls(self, client_cert):
        a = ["-h", LOCAL, "-p", str(self.broker.port), "--cafile", self.broker.pki["ca_crt"]]
        if client_cert:
            a += ["--cert", client_cert[0], "--key", client_cert[1]]
        return a

    def _ready(self):
        for _ in range(20):
            h.run(self.env, "probe-pub", [MOSQ_PUB] + self._tls(self.client_cert) + [
                "-t", self.probe_topic, "-m", "probe", "-q", "1"], timeout=10, check=False)
            if h.wait_until(lambda: any(self.probe_topic in l for l in self.proc.out_lines) or
                            not self.proc.alive(), 0.5):
                return
        raise h.TestFailure("mosquitto_sub at the broker never became ready:\n" + self.proc.tail())

    def lines(self):
        with self.proc.lock:
            return [l for l in self.proc.out_lines if self.probe_topic not in l]

    def text(self):
        return "\n".join(self.lines())

    def hex_payloads(self, prefix=""):
        """For fmt '%t %x': [(topic, payload bytes)] of topics under prefix."""
        out = []
        for l in self.lines():
            t, _, x = l.partition(" ")
            if t.startswith(prefix):
                try:
                    out.append((t, bytes.fromhex(x.strip())))
                except ValueError:
                    out.append((t, None))
        return out

    def stop(self):
        self.proc.stop()


# ---------------------------------------------------------------------------
# Publishers through the proxy
# ---------------------------------------------------------------------------

def mosq_pub(env, proxy, topic, msg, qos=0, version="mqttv311", cid=None, extra=(), timeout=20,
             check=True):
    argv = [MOSQ_PUB, "-h", LOCAL, "-p", str(proxy.port), "-V", version, "-q", str(qos),
            "-t", topic, "-m", msg, "-i", cid or ("mp-" + os.urandom(4).hex())] + list(extra)
    return h.run(env, "mosquitto_pub", argv, timeout=timeout, check=check)


class PahoPub:
    """paho-mqtt publisher through the proxy (plain TCP to the listener).
    Records the message ids acknowledged (on_publish) per payload."""

    def __init__(self, env, port, client_id, clean_session=True, version=4, inflight=20,
                 reconnect=True):
        import paho.mqtt.client as mqtt
        self.mqtt = mqtt
        self.lock = threading.Lock()
        self.acked = set()          # payloads whose PUBACK/PUBCOMP came back
        self.mid_payload = {}
        self.early = set()
        self.connects = 0
        self.disconnects = 0
        self.connected = threading.Event()
        self.reconnect = reconnect
        proto = {3: mqtt.MQTTv31, 4: mqtt.MQTTv311, 5: mqtt.MQTTv5}[version]
        kw = {"client_id": client_id, "protocol": proto}
        if version != 5:
            kw["clean_session"] = clean_session
        self.c = mqtt.Client(**kw)
        self.c.max_inflight_messages_set(inflight)
        self.c.max_queued_messages_set(0)
        self.c.reconnect_delay_set(0.1, 0.5)
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_publish = self._on_publish
        self.c.connect(LOCAL, port, keepalive=30)
        self.c.loop_start()
        env.clients.append(self)
        if not self.connected.wait(10):
            raise h.TestFailure("paho %s could not connect through the proxy" % client_id)

    def _on_connect(self, c, u, flags, rc, *props):
        if rc == 0:
            with self.lock:
                self.connects += 1
            self.connected.set()

    def _on_disconnect(self, c, u, rc, *props):
        with self.lock:
            self.disconnects += 1
        self.connected.clear()
        if not self.reconnect:
            c.disconnect()        # ends paho's loop instead of reconnecting

    def _on_publish(self, c, u, mid):
        # Called by paho with its own locks held: take ours only briefly and
        # never call paho under it (publish() below does not either).
        with self.lock:
            p = self.mid_payload.pop(mid, None)
            if p is None:
                self.early.add(mid)          # acknowledged before publish() returned
            else:
                self.acked.add(p)

    def publish(self, topic, payload, qos=1, retain=False):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            with self.lock:
                if info.mid in self.early:
                    self.early.discard(info.mid)
                    self.acked.add(payload)
                else:
                    self.mid_payload[info.mid] = payload
        return info

    def acked_set(self):
        with self.lock:
            return set(self.acked)

    def close(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()


# ---------------------------------------------------------------------------
# TCP splitter: first connection to one server, the others to another
# ---------------------------------------------------------------------------

class Router:
    """Listens on a free port. The first accepted connection is forwarded to
    first_port (a real broker: the proxy's key service must connect for the
    proxy to start); every later one to .target (set it per scenario)."""

    def __init__(self, env, first_port, target=None):
        self.first_port = first_port
        self.target = target
        self.n = 0
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((LOCAL, 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.stop_ev = threading.Event()
        self.socks = []
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()
        env.clients.append(self)

    def _accept(self):
        self.ls.settimeout(0.2)
        while not self.stop_ev.is_set():
            try:
                a, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            port = self.first_port if self.n == 0 else self.target
            self.n += 1
            try:
                b = socket.create_connection((LOCAL, port), timeout=3)
            except OSError:
                a.close()
                continue
            self.socks += [a, b]
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a, b):
        peers = {a: b, b: a}
        try:
            while not self.stop_ev.is_set():
                r, _, _ = select.select([a, b], [], [], 0.2)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self):
        self.stop_ev.set()
        self.ls.close()
        self.t.join(2)


# ---------------------------------------------------------------------------
# Raw MQTT packets (hostile input)
# ---------------------------------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def connect_pkt(client_id, version=4, props=b"", keepalive=30):
    vh = mstr("MQTT") + bytes([version, 0x02]) + struct.pack(">H", keepalive)
    if version == 5:
        vh += varint(len(props)) + props
    return packet(0x10, vh + mstr(client_id))


def publish_pkt(topic, payload, version=4, qos=0, mid=1, props=b""):
    body = mstr(topic)
    if qos:
        body += struct.pack(">H", mid)
    if version == 5:
        body += varint(len(props)) + props
    return packet(0x30 | (qos << 1), body + payload)


def alias_prop(n):
    return bytes([0x23]) + struct.pack(">H", n)


def raw_conn(port, timeout=5):
    s = socket.create_connection((LOCAL, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until_closed(s, timeout):
    """Read until EOF/reset (True) or timeout (False); returns (closed, bytes)."""
    end = time.monotonic() + timeout
    data = b""
    while time.monotonic() < end:
        s.settimeout(max(0.05, end - time.monotonic()))
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            return True, data
        if not b:
            return True, data
        data += b
    return False, data


def raise_nofile(n):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---------------------------------------------------------------------------
# Envelopes seen at the broker
# ---------------------------------------------------------------------------

def env_open(sender, topic, envelope):
    """Open an envelope with the sender's own keys file (the test holds the
    sender directory): the plaintext, or None if it does not open."""
    from nacl import bindings as nb
    e = h.env_parse(envelope)
    if not e:
        return None
    keys = {(sc, ep): k for sc, ep, _c, _na, k in sender.keys()}
    key = keys.get((e["scope"], e["epoch"]))
    if key is None:
        return None
    hdr = envelope[:h.ENV_HEADER]
    try:
        return nb.crypto_aead_xchacha20poly1305_ietf_decrypt(
            envelope[h.ENV_HEADER:], hdr + topic.encode(), hdr, key)
    except Exception:
        return None
