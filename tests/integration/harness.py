#!/usr/bin/python3
"""Shared harness of the mqtt-e2e integration tests (tests/integration/).

Real processes only: a real mosquitto started on 127.0.0.1 with a free port
and a TLS listener (CA + server certificate made with openssl in a temp
dir), the real e2e-keytool / e2e-pub / e2e-sub binaries of the build tree,
and an adversary written with paho-mqtt + PyNaCl. The adversary is an MQTT
client subscribed to '#': it sees what the broker sees and can publish
anything anywhere, which is the broker's power over the protocol.

Rules kept here for every test: every process we start is stopped by its PID
(SIGTERM, then SIGKILL), every wait is bounded, temp dirs are removed (kept
when E2E_KEEP=1 or a test failed and E2E_KEEP_ON_FAIL=1).

Environment:
  E2E_BUILD        build directory (meson.project_build_root()); the binaries
                   are looked up below it (override: E2E_KEYTOOL, E2E_SUB, E2E_PUB)
  E2E_MOSQUITTO    broker binary (default /usr/sbin/mosquitto)
  E2E_VERBOSE=1    echo process output while the test runs
"""

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

from nacl import bindings as nb

HERE = os.path.dirname(os.path.abspath(__file__))
VERBOSE = os.environ.get("E2E_VERBOSE") == "1"
MOSQUITTO = os.environ.get("E2E_MOSQUITTO", "/usr/sbin/mosquitto")
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

CONTROL_TOPIC = "e2e/control"
CTL_CONTEXT = b"mqtt-e2e/v1/ctl\x00"
CTL_REQUEST, CTL_DELIVERY, CTL_REFUSAL, CTL_ANNOUNCE = 1, 2, 3, 4
CTL_HEAD = 14
CTL_SIG = 64
ENV_HEADER = 24
ENV_TAG = 16

DELIVERING = ("OK", "GAP", "LATE")     # verdicts that hand plaintext to the app


# ---------------------------------------------------------------------------
# Failures
# ---------------------------------------------------------------------------

class TestFailure(Exception):
    pass


def log(*a):
    print("[%7.2f]" % (time.monotonic() - _T0), *a, flush=True)


_T0 = time.monotonic()


class Checks:
    """Soft assertions: a test records every failed expectation and fails at
    the end with all of them, so one run reports the whole picture."""

    def __init__(self):
        self.failed = []

    def expect(self, cond, msg):
        if cond:
            log("  ok:", msg.split("\n")[0])
        else:
            log("  FAIL:", msg)
            self.failed.append(msg)
        return bool(cond)

    def require(self, cond, msg):
        """Hard assertion: nothing after it makes sense if it fails."""
        if not self.expect(cond, msg):
            raise TestFailure(msg)


def wait_until(pred, timeout, step=0.05):
    """Poll pred() until true or timeout (seconds); returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


# ---------------------------------------------------------------------------
# Binaries
# ---------------------------------------------------------------------------

def _build_dir():
    b = os.environ.get("E2E_BUILD")
    if b:
        return b
    # Fallback for running a script by hand from the source tree.
    for cand in ("build-it", "build"):
        p = os.path.join(HERE, "..", "..", cand)
        if os.path.isdir(p):
            return os.path.abspath(p)
    return os.getcwd()


def find_binary(name, env_var):
    p = os.environ.get(env_var)
    if p:
        return p
    build = _build_dir()
    for sub in ("keytool", "subscriber", "publisher", "tools", "clients", ""):
        c = os.path.join(build, sub, name)
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    for root, _dirs, files in os.walk(build):
        if name in files:
            c = os.path.join(root, name)
            if os.access(c, os.X_OK):
                return c
    raise TestFailure("binary %s not found under E2E_BUILD=%s (set %s)" % (name, build, env_var))


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

class Proc:
    """A child process with its stdout/stderr read by threads into lists.
    stdout lines that parse as JSON objects go to .json as well."""

    def __init__(self, env, name, argv, stdin=False, parse_json=False, extra_env=None):
        self.env = env
        self.name = name
        self.argv = argv
        self.out_lines = []
        self.err_lines = []
        self.json = []
        self.bad_json = []
        self.lock = threading.Lock()
        self.errlog = open(os.path.join(env.dir, "%s.stderr" % name), "a")
        self.outlog = open(os.path.join(env.dir, "%s.stdout" % name), "a")
        penv = dict(os.environ)
        if extra_env:
            penv.update(extra_env)
        log("start %s: %s" % (name, " ".join(argv)))
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=penv,
                                  cwd=env.dir)
        self.pid = self.p.pid
        self.started = time.monotonic()
        self.parse_json = parse_json
        self._t_out = threading.Thread(target=self._read, args=(self.p.stdout, True), daemon=True)
        self._t_err = threading.Thread(target=self._read, args=(self.p.stderr, False), daemon=True)
        self._t_out.start()
        self._t_err.start()
        env.procs.append(self)

    def _read(self, f, is_out):
        for raw in iter(f.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            now = time.monotonic()
            with self.lock:
                if is_out:
                    self.out_lines.append(line)
                    self.outlog.write(line + "\n")
                    if self.parse_json and line.strip():
                        try:
                            o = json.loads(line)
                            if isinstance(o, dict):
                                o["_t"] = now
                                self.json.append(o)
                            else:
                                self.bad_json.append(line)
                        except ValueError:
                            self.bad_json.append(line)
                else:
                    self.err_lines.append((now, line))
                    self.errlog.write(line + "\n")
            if VERBOSE:
                print("    %s %s: %s" % (self.name, "out" if is_out else "err", line), flush=True)
        f.close()

    # -- queries --------------------------------------------------------
    def alive(self):
        return self.p.poll() is None

    def rc(self):
        return self.p.poll()

    def stderr_text(self):
        with self.lock:
            return "\n".join(l for _t, l in self.err_lines)

    def messages(self):
        with self.lock:
            return list(self.json)

    def err_first(self, pattern, since=0.0):
        """When (monotonic) the first stderr line matching pattern came, or None."""
        rx = re.compile(pattern, re.I)
        with self.lock:
            return next((t for t, l in self.err_lines if t >= since and rx.search(l)), None)

    def err_match(self, pattern, since=0.0):
        rx = re.compile(pattern, re.I)
        with self.lock:
            return [l for t, l in self.err_lines if t >= since and rx.search(l)]

    def wait_err(self, pattern, timeout, since=0.0):
        return wait_until(lambda: self.err_match(pattern, since) or (not self.alive() and
                          self.err_match(pattern, since)) or None, timeout)

    def wait_json(self, n, timeout, pred=None):
        def count():
            with self.lock:
                return sum(1 for o in self.json if pred is None or pred(o))
        wait_until(lambda: count() >= n or not self.alive(), timeout)
        # the readers may still be draining after exit
        if not self.alive():
            self._t_out.join(2)
        return count()

    def wait_exit(self, timeout):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._t_out.join(5)
        self._t_err.join(5)
        return rc

    def tail(self, n=15):
        with self.lock:
            lines = [l for _t, l in self.err_lines][-n:]
        return "\n".join("      | " + l for l in lines) or "      | (no stderr)"

    def rss_kib(self):
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    # -- stdin ----------------------------------------------------------
    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.p.stdin.write(data)

    def flush(self):
        self.p.stdin.flush()

    def close_stdin(self):
        try:
            if self.p.stdin and not self.p.stdin.closed:
                self.p.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    # -- stop ------------------------------------------------------------
    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Stop this process by its PID: sig, then SIGKILL after timeout."""
        if self.p.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                log("%s (pid %d) ignored signal %d for %.0f s: SIGKILL" %
                    (self.name, self.pid, sig, timeout))
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait(5)
        self.close_stdin()
        self._t_out.join(5)
        self._t_err.join(5)
        for f in (self.errlog, self.outlog):
            try:
                f.close()
            except OSError:
                pass
        return self.p.returncode


def run(env, name, argv, timeout=30, input=None, check=True):
    """Run a short command to completion; returns CompletedProcess."""
    log("run %s: %s" % (name, " ".join(argv)))
    try:
        cp = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=timeout, cwd=env.dir if env else None)
    except subprocess.TimeoutExpired:
        raise TestFailure("%s did not finish within %d s: %s" % (name, timeout, " ".join(argv)))
    if env:
        with open(os.path.join(env.dir, "%s.log" % name), "ab") as f:
            f.write(b"$ " + " ".join(argv).encode() + b"\n" + cp.stdout + cp.stderr +
                    b"\n[rc %d]\n" % cp.returncode)
    if check and cp.returncode != 0:
        raise TestFailure("%s failed (rc %d): %s\nstdout: %s\nstderr: %s" % (
            name, cp.returncode, " ".join(argv), cp.stdout.decode(errors="replace"),
            cp.stderr.decode(errors="replace")))
    return cp


# ---------------------------------------------------------------------------
# Test environment: temp dir + process registry
# ---------------------------------------------------------------------------

class Env:
    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="e2e-it-%s-" % name)
        os.chmod(self.dir, 0o700)
        self.procs = []
        self.clients = []
        self._pki = None
        self._n = 0

    @property
    def keytool(self):
        return find_binary("e2e-keytool", "E2E_KEYTOOL")

    @property
    def sub_bin(self):
        return find_binary("e2e-sub", "E2E_SUB")

    @property
    def pub_bin(self):
        return find_binary("e2e-pub", "E2E_PUB")

    def uniq(self, base):
        self._n += 1
        return "%s%d" % (base, self._n)

    def cleanup(self, failed):
        for c in reversed(self.clients):
            try:
                c.close()
            except Exception:
                pass
        for p in reversed(self.procs):
            try:
                p.stop(timeout=3)
            except Exception:
                traceback.print_exc()
        keep = os.environ.get("E2E_KEEP") == "1" or (failed and os.environ.get("E2E_KEEP_ON_FAIL") == "1")
        if keep:
            log("kept temp dir", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- PKI ---------------------------------------------------------------
    def pki(self):
        if not self._pki:
            self._pki = make_pki(self, os.path.join(self.dir, "pki"))
        return self._pki


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_pki(env, d):
    """CA, server certificate for 127.0.0.1/localhost, a client certificate,
    and a client certificate from a CA the broker does not trust."""
    os.makedirs(d, mode=0o700)
    j = lambda n: os.path.join(d, n)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def ca(name, cn):
        run(env, "openssl", [OPENSSL, "req", "-x509"] + ec + [
            "-keyout", j(name + ".key"), "-out", j(name + ".crt"), "-days", "2", "-subj", "/CN=" + cn,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign"])

    def leaf(name, cn, cadn, ext):
        run(env, "openssl", [OPENSSL, "req"] + ec + [
            "-keyout", j(name + ".key"), "-out", j(name + ".csr"), "-subj", "/CN=" + cn])
        with open(j(name + ".ext"), "w") as f:
            f.write(ext)
        run(env, "openssl", [OPENSSL, "x509", "-req", "-in", j(name + ".csr"), "-CA", j(cadn + ".crt"),
                             "-CAkey", j(cadn + ".key"), "-CAcreateserial", "-out", j(name + ".crt"),
                             "-days", "2", "-extfile", j(name + ".ext")])

    ca("ca", "mqtt-e2e test CA")
    ca("rogue-ca", "untrusted test CA")
    leaf("server", "localhost", "ca",
         "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
         "basicConstraints=CA:FALSE\n")
    leaf("client", "e2e-client", "ca", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")
    leaf("rogue", "rogue-client", "rogue-ca",
         "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")
    for n in os.listdir(d):
        os.chmod(j(n), 0o600)
    return {k: j(k.replace("_", ".")) for k in
            ("ca_crt", "server_crt", "server_key", "client_crt", "client_key", "rogue_crt",
             "rogue_key")}


# ---------------------------------------------------------------------------
# Broker
# ---------------------------------------------------------------------------

class Broker:
    """mosquitto 2.0 with one TLS listener on 127.0.0.1:<free port>.
    extra_conf: more configuration lines, written after the listener (for
    example a bridge: "connection ...", "address ...", "topic ...")."""

    def __init__(self, env, require_certificate=False, name="mosquitto", extra_conf=()):
        self.env = env
        self.pki = env.pki()
        self.host = "127.0.0.1"
        self.require_certificate = require_certificate
        self.logfile = os.path.join(env.dir, name + ".log")
        self.conf = os.path.join(env.dir, name + ".conf")
        for attempt in range(3):
            self.port = free_port()
            with open(self.conf, "w") as f:
                f.write("\n".join([
                    "# generated by tests/integration/harness.py",
                    "per_listener_settings false",
                    "allow_anonymous true",
                    "persistence false",
                    "user root" if os.geteuid() == 0 else "",
                    "log_dest file " + self.logfile,
                    "log_type error", "log_type warning", "log_type notice",
                    "log_type information", "connection_messages true",
                    "log_timestamp true",
                    # QoS1 runs at >= 1000 msg/s: no silent queue drops.
                    "max_queued_messages 200000",
                    "max_inflight_messages 100",
                    "listener %d %s" % (self.port, self.host),
                    "cafile " + self.pki["ca_crt"],
                    "certfile " + self.pki["server_crt"],
                    "keyfile " + self.pki["server_key"],
                    "require_certificate " + ("true" if require_certificate else "false"),
                ] + list(extra_conf) + [""]))
            self.proc = Proc(env, name, [MOSQUITTO, "-c", self.conf])
            if wait_until(lambda: self._listening() or not self.proc.alive(), 10) and \
                    self.proc.alive():
                return
            self.proc.stop()
            log("mosquitto did not come up on port %d (attempt %d):\n%s" % (
                self.port, attempt + 1, self.proc.tail()))
        raise TestFailure("cannot start mosquitto; log in " + self.logfile)

    def _listening(self):
        try:
            s = socket.create_connection((self.host, self.port), timeout=0.5)
            s.close()
            return True
        except OSError:
            return False

    def tls_args(self, client_cert=False, cafile=True):
        a = ["-h", self.host, "-p", str(self.port)]
        if cafile:
            a += ["--cafile", self.pki["ca_crt"]]
        if client_cert:
            a += ["--cert", self.pki["client_crt"], "--key", self.pki["client_key"]]
        return a

    def stop(self):
        self.proc.stop()

    def log_text(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


# ---------------------------------------------------------------------------
# Identities and keytool
# ---------------------------------------------------------------------------

def sender_id(sign_pk):
    return int.from_bytes(hashlib.blake2b(b"mqtt-e2e/v1/sender-id" + sign_pk,
                                          digest_size=32).digest()[:4], "big")


def load_identity(path):
    """identity.key (SPEC 7.1) -> dict(seed, sign_sk, sign_pk, dh_sk, dh_pk)."""
    with open(path) as f:
        for line in f:
            line = line.rstrip("\r\n")
            if line.startswith("e2e-secret1 "):
                raw = base64.b64decode(line.split(" ", 1)[1])
                seed, dh_sk = raw[:32], raw[32:64]
                sign_pk, sign_sk = nb.crypto_sign_seed_keypair(seed)
                return {"seed": seed, "sign_sk": sign_sk, "sign_pk": sign_pk, "dh_sk": dh_sk,
                        "dh_pk": nb.crypto_scalarmult_base(dh_sk)}
    raise TestFailure("no e2e-secret1 line in " + path)


def parse_public_line(line):
    parts = line.split()
    raw = base64.b64decode(parts[1])
    return raw[:32], raw[32:64]


class Identity:
    def __init__(self, env, name, kind):
        self.env = env
        self.name = name
        self.dir = os.path.join(env.dir, kind + "-" + name)
        run(env, "keytool-genkey", [env.keytool, "genkey", "--dir", self.dir])
        cp = run(env, "keytool-pubkey", [env.keytool, "pubkey", "--dir", self.dir])
        out = cp.stdout.decode().strip().splitlines()
        line = [l for l in out if l.startswith("e2e1 ")]
        if not line:
            raise TestFailure("keytool pubkey printed no public line: %r" % out)
        self.public_line = " ".join(line[0].split()[:2])
        self.sign_pk, self.dh_pk = parse_public_line(self.public_line)
        self.id = load_identity(os.path.join(self.dir, "identity.key"))
        if self.id["sign_pk"] != self.sign_pk or self.id["dh_pk"] != self.dh_pk:
            raise TestFailure("identity.key and pubkey output disagree for " + name)
        self.sender_id = sender_id(self.sign_pk)


class Sender(Identity):
    """A sender state directory: identity, scopes file, enrolled list."""

    def __init__(self, env, name="sender", scopes=None):
        super().__init__(env, name, "sender")
        if scopes:
            with open(os.path.join(self.dir, "scopes"), "w") as f:
                f.write("# test scopes\n" + "".join(
                    "scope %d %s %s\n" % (sid, sname, " ".join(filters))
                    for sid, sname, filters in scopes))
            # Never group/world-writable, whatever the umask (SPEC 7.4).
            os.chmod(os.path.join(self.dir, "scopes"), 0o644)

    def enroll(self, sub, scopes):
        return run(self.env, "keytool-enroll", [self.env.keytool, "enroll", sub.name, sub.public_line,
                                         "--scope", ",".join(scopes), "--dir", self.dir])

    def revoke(self, sub):
        return run(self.env, "keytool-revoke", [self.env.keytool, "revoke", sub.name, "--dir", self.dir])

    def rotate(self, scope=None):
        a = [self.env.keytool, "rotate", "--dir", self.dir]
        if scope:
            a += ["--scope", scope]
        return run(self.env, "keytool-rotate", a)

    def status(self):
        return run(self.env, "keytool-status", [self.env.keytool, "status", "--dir", self.dir],
                   check=False).stdout.decode(errors="replace")

    def keys(self):
        """Parsed keys file: list of (scope, epoch, created, not_after, key)."""
        out = []
        try:
            with open(os.path.join(self.dir, "keys")) as f:
                for line in f:
                    p = line.split()
                    # 7th: check value; then "signed" (a key made for a signed scope)
                    # and "next" (made ahead of its rotation: not current yet)
                    if len(p) in (6, 7, 8, 9) and p[0] == "key" and "next" not in p[7:]:
                        out.append((int(p[1]), int(p[2]), int(p[3]), int(p[4]),
                                    base64.b64decode(p[5])))
        except FileNotFoundError:
            pass
        return out

    def current_epoch(self, scope):
        es = [e for s, e, _c, na, _k in self.keys() if s == scope and na == 0]
        return max(es) if es else None


class Subscriber(Identity):
    def __init__(self, env, name, trust=()):
        super().__init__(env, name, "sub")
        for s in trust:
            self.trust(s)

    def trust(self, sender):
        run(self.env, "keytool-trust", [self.env.keytool, "trust", sender.name, sender.public_line,
                                        "--dir", self.dir])


# ---------------------------------------------------------------------------
# e2e-sub / e2e-pub
# ---------------------------------------------------------------------------

# Patterns for the events e2e-sub prints on stderr (case-insensitive).
EV_KEY = r"(?:key received)"
EV_REFUSED = r"refus"
EV_REJECTED = r"reject"


def start_sub(env, broker, sub, topics, name=None, args=(), client_cert=False, qos=1,
              extra_env=None):
    argv = [env.sub_bin] + broker.tls_args(client_cert=client_cert) + ["--dir", sub.dir, "--json",
                                                                        "-q", str(qos)]
    for t in topics:
        argv += ["-t", t]
    argv += list(args)
    return Proc(env, name or env.uniq("sub-" + sub.name + "-"), argv, parse_json=True,
                extra_env=extra_env)


def start_pub_lines(env, broker, sender, topic, qos=1, name=None, args=(), client_cert=False):
    """e2e-pub -l: one message per stdin line; the key service runs until
    stdin is closed."""
    argv = [env.pub_bin] + broker.tls_args(client_cert=client_cert) + [
        "--dir", sender.dir, "-t", topic, "-q", str(qos), "-l"] + list(args)
    return Proc(env, name or env.uniq("pub-"), argv, stdin=True)


def finish_pub(pub, timeout=30):
    """Close stdin of an e2e-pub -l and wait for it to exit; returns rc."""
    pub.close_stdin()
    rc = pub.wait_exit(timeout)
    if rc is None:
        log("%s did not exit within %d s after end of input" % (pub.name, timeout))
        pub.stop()
        return None
    return rc


def verdict_of(o):
    v = o.get("verdict")
    return v.upper() if isinstance(v, str) else v


def payload_of(o):
    if "payload" in o and o["payload"] is not None:
        return o["payload"].encode() if isinstance(o["payload"], str) else o["payload"]
    if "payload_b64" in o and o["payload_b64"] is not None:
        return base64.b64decode(o["payload_b64"])
    return None


# ---------------------------------------------------------------------------
# Control messages (libe2e/control/control.c layout) and envelopes (SPEC sec. 3)
# ---------------------------------------------------------------------------

def ctl_sig_input(topic, body):
    t = topic.encode() if isinstance(topic, str) else topic
    return CTL_CONTEXT + struct.pack(">H", len(t)) + t + body


def ctl_sign(sign_sk, topic, body):
    # PyNaCl's crypto_sign gives sig || message: keep the detached signature.
    return body + nb.crypto_sign(ctl_sig_input(topic, body), sign_sk)[:CTL_SIG]


def ctl_verify(sign_pk, topic, msg):
    if len(msg) < CTL_SIG:
        return False
    try:
        nb.crypto_sign_open(msg[-CTL_SIG:] + ctl_sig_input(topic, msg[:-CTL_SIG]), sign_pk)
        return True
    except Exception:
        return False


def ctl_head(mtype, sender, time_ms):
    return struct.pack(">BBIQ", 1, mtype, sender, time_ms)


def ctl_hash(msg):
    return hashlib.blake2b(msg, digest_size=32).digest()


def parse_ctl(msg):
    """Decode a control message (no signature check). Returns a dict or None."""
    if len(msg) < CTL_HEAD + CTL_SIG or msg[0] != 1:
        return None
    ver, mtype, sender, tms = struct.unpack(">BBIQ", msg[:CTL_HEAD])
    body = msg[CTL_HEAD:-CTL_SIG]
    d = {"type": mtype, "sender": sender, "time_ms": tms, "raw": msg}
    try:
        if mtype == CTL_REQUEST:
            d["sign_pk"], d["dh_pk"], d["eph_pk"] = body[0:32], body[32:64], body[64:96]
            d["nonce"] = body[96:112]
            n = body[112]
            d["reply_topic"] = body[113:113 + n].decode()
            off = 113 + n
            nwant = body[off]
            d["want"] = [struct.unpack(">BI", body[off + 1 + 5 * i: off + 6 + 5 * i])
                         for i in range(nwant)]
            off += 1 + 5 * nwant
            c = struct.unpack(">H", body[off:off + 2])[0]
            d["cred"] = body[off + 2:off + 2 + c]
        elif mtype == CTL_DELIVERY:
            d["request_hash"] = body[:32]
            c = struct.unpack(">H", body[32:34])[0]   # the sender's credential (SPEC 13.4)
            d["cred"] = body[34:34 + c]
            off = 34 + c
            n = struct.unpack(">H", body[off:off + 2])[0]
            d["sealed"] = body[off + 2:off + 2 + n]
            if len(d["sealed"]) != n or len(body) != off + 2 + n:
                return None
        elif mtype == CTL_REFUSAL:
            d["request_hash"] = body[:32]
            d["reason"] = body[32]
        elif mtype == CTL_ANNOUNCE:
            d["scope"], d["epoch"] = struct.unpack(">BI", body[:5])
        else:
            return None
    except (IndexError, struct.error, UnicodeDecodeError):
        return None
    return d


def build_request(sign_sk, sign_pk, dh_pk, eph_pk, target_sender, reply_topic, want=(),
                  time_ms=None, nonce=None, control_topic=CONTROL_TOPIC, sign=True, cred=b""):
    t = reply_topic.encode()
    body = (ctl_head(CTL_REQUEST, target_sender, time_ms if time_ms is not None else
                     int(time.time() * 1000)) + sign_pk + dh_pk + eph_pk +
            (nonce or os.urandom(16)) + bytes([len(t)]) + t + bytes([len(want)]) +
            b"".join(struct.pack(">BI", s, e) for s, e in want) +
            struct.pack(">H", len(cred)) + cred)
    if sign:
        return ctl_sign(sign_sk, control_topic, body)
    return body + os.urandom(CTL_SIG)


def map_bytes(rules, interval_ms=0, refresh=(0, 0)):
    """The end of a delivery's plaintext (SPEC 11.2): u32 summary interval ||
    u64 refresh_from || u64 refresh_by || u16 r || r x (scope u8, str16
    filter); rules: [(scope, filter)]."""
    out = struct.pack(">IQQH", interval_ms, refresh[0], refresh[1], len(rules))
    for scope, flt in rules:
        fb = flt.encode()
        out += struct.pack(">BH", scope, len(fb)) + fb
    return out


def build_delivery(sign_sk, issuer, request_msg, keys, reply_topic, time_ms=None,
                   rules=((0, "#"),), interval_ms=0, cred=b""):
    """keys: list of (scope, epoch, not_after_ms, key32[, flags]); rules: the
    sender's topic map. Sealed to the request's ephemeral key, bound to the
    request hash, signed for reply_topic (SPEC 11.2)."""
    req = parse_ctl(request_msg)
    plain = bytes([len(keys)]) + b"".join(
        struct.pack(">BIQB", k[0], k[1], k[2], k[4] if len(k) > 4 else 0) + k[3] for k in keys)
    plain += map_bytes(list(rules), interval_ms)
    sealed = nb.crypto_box_seal(plain, req["eph_pk"])
    body = (ctl_head(CTL_DELIVERY, issuer, time_ms if time_ms is not None else
                     int(time.time() * 1000)) + ctl_hash(request_msg) +
            struct.pack(">H", len(cred)) + cred + struct.pack(">H", len(sealed)) + sealed)
    return ctl_sign(sign_sk, reply_topic, body)


def open_delivery_plain(plain):
    """A delivery's sealed plaintext -> (keys [(scope, epoch, not_after, flags,
    key)], summary_interval_ms, rules [(scope, filter)])."""
    k = plain[0]
    keys = [struct.unpack(">BIQB", plain[1 + 46 * i: 15 + 46 * i]) + (plain[15 + 46 * i:
            47 + 46 * i],) for i in range(k)]
    off = 1 + 46 * k
    interval, _rfrom, _rby, r = struct.unpack(">IQQH", plain[off:off + 22])
    off += 22
    rules = []
    for _ in range(r):
        scope, n = struct.unpack(">BH", plain[off:off + 3])
        rules.append((scope, plain[off + 3:off + 3 + n].decode()))
        off += 3 + n
    return keys, interval, rules


def fetch_keys(adv, sub, sender, timeout=10.0):
    """What an enrolled subscriber's own key ring receives: a real key request
    signed with @sub's identity, answered by @sender's key service over the
    broker, opened with the request's ephemeral key. Returns (keys, interval,
    rules) as open_delivery_plain, or None."""
    reply = "e2e/k/" + os.urandom(16).hex()
    adv.c.subscribe(reply, qos=1)
    time.sleep(0.2)
    try:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            eph_pk, eph_sk = nb.crypto_box_keypair()
            since = time.monotonic()
            adv.publish(CONTROL_TOPIC, build_request(sub.id["sign_sk"], sub.sign_pk, sub.dh_pk,
                                                     eph_pk, sender.sender_id, reply))
            got = adv.wait_seen(lambda m: m[1] == reply and ctl_verify(sender.sign_pk, reply,
                                                                        m[2]), 1.0, since=since)
            for _t, _topic, msg, _r in got:
                d = parse_ctl(msg)
                if d and d["type"] == CTL_DELIVERY:
                    return open_delivery_plain(nb.crypto_box_seal_open(d["sealed"], eph_pk,
                                                                       eph_sk))
    finally:
        adv.c.unsubscribe(reply)
    return None


def env_header(scope, epoch, sender, run, counter, seq, suite=1):
    return (bytes([suite, scope]) + struct.pack(">II", epoch, sender) + struct.pack(">I", run) +
            counter.to_bytes(6, "big") + struct.pack(">I", seq))


def env_seal(key, topic, hdr, plaintext):
    """SPEC 3.2 (as protocol/vectors/gen.py): header is the nonce and the AAD
    start, the exact topic bytes follow it."""
    t = topic.encode() if isinstance(topic, str) else topic
    return hdr + nb.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, hdr + t, hdr, key)


def craft_envelope(key, topic, sender, scope, epoch, seq, plaintext, run=None, counter=None):
    """An envelope as a sender would seal it (any key the caller holds)."""
    run = run or (int.from_bytes(os.urandom(4), "big") | 1)
    return env_seal(key, topic, env_header(scope, epoch, sender, run, counter or seq, seq),
                    plaintext)


def env_parse(env):
    if len(env) < ENV_HEADER + ENV_TAG:
        return None
    suite, scope = env[0], env[1]
    epoch, sender, run = struct.unpack(">III", env[2:14])
    counter = int.from_bytes(env[14:20], "big")
    seq = struct.unpack(">I", env[20:24])[0]
    return {"suite": suite, "scope": scope, "epoch": epoch, "sender": sender, "run": run,
            "counter": counter, "seq": seq}


# ---------------------------------------------------------------------------
# Adversary: an MQTT client with the broker's view ('#') and its power
# ---------------------------------------------------------------------------

class Adversary:
    def __init__(self, env, broker, name="adversary", client_cert=False, subscribe=("#",)):
        import paho.mqtt.client as mqtt
        self.mqtt = mqtt
        self.env = env
        self.lock = threading.Lock()
        self.msgs = []          # (monotonic time, topic, payload bytes, retain)
        self.probe_topics = set()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.c = mqtt.Client(client_id="%s-%d" % (name, os.getpid()), clean_session=True)
        self.c.tls_set(ca_certs=broker.pki["ca_crt"],
                       certfile=broker.pki["client_crt"] if client_cert else None,
                       keyfile=broker.pki["client_key"] if client_cert else None,
                       cert_reqs=ssl.CERT_REQUIRED)
        self.c.max_inflight_messages_set(100)
        self.c.max_queued_messages_set(0)
        self._subs = list(subscribe)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.connect(broker.host, broker.port, keepalive=30)
        self.c.loop_start()
        if not self.connected.wait(10):
            self.close()
            raise TestFailure("adversary could not connect to the broker")
        if self._subs and not self.subscribed.wait(10):
            self.close()
            raise TestFailure("adversary could not subscribe to %s" % self._subs)
        env.clients.append(self)

    def _on_connect(self, c, u, flags, rc):
        if rc == 0:
            for s in self._subs:
                c.subscribe(s, qos=1)
            self.connected.set()

    def _on_message(self, c, u, m):
        with self.lock:
            self.msgs.append((time.monotonic(), m.topic, bytes(m.payload), bool(m.retain)))

    def seen(self, pred=None, since=0.0):
        with self.lock:
            return [m for m in self.msgs if m[0] >= since and (pred is None or pred(m))]

    def wait_seen(self, pred, timeout, n=1, since=0.0):
        wait_until(lambda: len(self.seen(pred, since)) >= n, timeout)
        return self.seen(pred, since)

    def requests(self, since=0.0, requester=None):
        out = []
        for t, topic, p, _r in self.seen(lambda m: m[1] == CONTROL_TOPIC, since):
            d = parse_ctl(p)
            if d and d["type"] == CTL_REQUEST and (requester is None or d["sign_pk"] == requester):
                d["_t"] = t
                out.append(d)
        return out

    def wait_request(self, requester, timeout, since=0.0, n=1):
        wait_until(lambda: len(self.requests(since, requester)) >= n, timeout)
        r = self.requests(since, requester)
        return r[n - 1] if len(r) >= n else None

    def fresh_request(self, requester, timeout=10.0, max_age=1.0, since=0.0):
        """The requester's latest key request, if seen at most max_age s ago;
        else wait for its next one. A subscriber retries after >= 2 s, so an
        answer crafted right away is still for its current request."""
        end = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            reqs = self.requests(since=since, requester=requester)
            if reqs and now - reqs[-1]["_t"] <= max_age:
                return reqs[-1]
            if now >= end:
                return None
            self.wait_request(requester, end - now, since=max(now, since))

    def publish(self, topic, payload, qos=1, retain=False, wait=10.0):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        if qos and wait:
            info.wait_for_publish(wait)
            if not info.is_published():
                raise TestFailure("adversary publish to %s not acknowledged" % topic)
        return info

    def probe_key_service(self, sender, timeout=10.0):
        """Send a signed key request from a throwaway (not enrolled) identity
        to @sender until a signed answer comes back on our reply topic: the
        sender's key service is then subscribed and answering. Returns the
        seconds it took, or None."""
        t0 = time.monotonic()
        sign_pk, sign_sk = nb.crypto_sign_keypair()
        dh_pk, _dh_sk = nb.crypto_box_keypair()
        reply = "e2e/k/" + os.urandom(16).hex()
        self.probe_topics.add(reply)
        self.c.subscribe(reply, qos=1)
        time.sleep(0.1)
        while time.monotonic() - t0 < timeout:
            eph_pk, _eph_sk = nb.crypto_box_keypair()
            since = time.monotonic()
            self.publish(CONTROL_TOPIC, build_request(sign_sk, sign_pk, dh_pk, eph_pk,
                                                     sender.sender_id, reply))
            got = self.wait_seen(lambda m: m[1] == reply and
                                 ctl_verify(sender.sign_pk, reply, m[2]), 0.5, since=since)
            if got:
                self.c.unsubscribe(reply)
                return time.monotonic() - t0
        self.c.unsubscribe(reply)
        return None

    def close(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()


# ---------------------------------------------------------------------------
# Entry point for test scripts
# ---------------------------------------------------------------------------

def promise_rows(test, rows):
    """Rows of the security report's promise table (docs/security-tests.md,
    tests/adversary/advharness.py): (promise, adversary, insider, what the
    test did, observed, held)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                    "adversary"))
    import advharness  # noqa: E402  (imports this module back: loaded lazily)
    advharness.promise_rows(test, rows)


def main(name, body):
    """Run body(env, checks); exit 0 on success, 1 on any failure."""
    t0 = time.monotonic()
    checks = Checks()
    env = None
    try:
        env = Env(name)
        log("=== %s (temp dir %s)" % (name, env.dir))
        body(env, checks)
    except TestFailure as e:
        if str(e) not in checks.failed:
            checks.failed.append(str(e))
            log("  FAIL:", e)
    except Exception:
        traceback.print_exc()
        checks.failed.append("unexpected exception: " + traceback.format_exc().splitlines()[-1])
    finally:
        if env:
            if checks.failed:
                for p in env.procs:
                    log("stderr tail of %s (pid %d, rc %s):\n%s" % (p.name, p.pid, p.rc(), p.tail()))
            env.cleanup(bool(checks.failed))
    dt = time.monotonic() - t0
    if checks.failed:
        print("\n%s: FAILED (%.1f s)" % (name, dt))
        for f in checks.failed:
            print("  - " + f)
        sys.exit(1)
    print("\n%s: PASSED (%.1f s)" % (name, dt))
    sys.exit(0)
