#!/usr/bin/python3
"""Proxy 10: deployment as an operator meets it (issue 14).

Real mosquitto brokers configured here, certificates from the run's PKI.
  * Password-only broker (allow_anonymous false, password_file made with
    mosquitto_passwd): the key service logs in with service-username +
    service-password-file, a publisher with its credentials line; the proxy
    starts and the subscriber (its own password) decrypts.
  * A second proxy with another state dir on the same broker, its key service
    credentials from the credentials line of its derived client id: both run
    side by side, neither key service is knocked off, both keep serving.
  * Wrong service password: the proxy exits 1 saying "bad user name or
    password" (the CONNACK reason), not "Unknown error code".
  * A publisher using the key service's client id: CONNACK "identifier
    rejected" (0x02; MQTT 5: 0x85), the key service stays connected.
  * tls-min 1.3 against a broker that only speaks TLS 1.2: the key service
    refuses (same recipe as the relays) and the error says why; without
    tls-min the same broker is accepted.
  * --check-config: a good configuration passes while the proxy runs; a bad
    one lists every problem (missing dir, missing cafile, world-readable
    credentials and identity, bad scopes) and exits 1; the running proxy's
    stats socket is left alone and still answers.
  * SIGHUP: log level, max packet, drain timeout reported as applied and in
    effect (debug lines, a packet above the old limit relayed), a setting
    that needs a restart named; --listen on the command line replaces the
    file's listen (one listener, the file's port stays closed).
  * Durations: one syntax; "10x" refused with the syntax in the message by
    e2e-proxy, e2e-keytool, e2e-sub and e2e-pub.
  * Errors name their cause: a relay refused by the broker (CONNACK reason
    in the proxy log); e2e-sub/e2e-pub with a wrong password (CONNACK), the
    wrong CA and a certificate for another name (verification result, name
    checked, CA file); e2e-pub to e2e/k/... (reserved, not "insecure
    permissions"); e2e-sub -t 'a/#/b' (invalid filter, not reconnecting).
  * An ALPN-only TLS front (port 443 when free) before mosquitto: without
    --alpn the key service is closed on and the proxy says it may need alpn;
    with --alpn x-amzn-mqtt-ca it gets in, answers, and relays decrypt.
  * The service-user flow (as root): the state dir belongs to 'nobody'
    (standing in for mqtt-e2e); e2e-keytool run as root switches to it,
    e2e-keytool run as that user works, every file stays the user's, and
    e2e-proxy --user nobody serves: the subscriber decrypts.
"""
import os
import re
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxyharness as ph  # noqa: E402

h = ph.h

PASSWORDS = {"keysvc": "k-" + os.urandom(6).hex(), "dev1": "d-" + os.urandom(6).hex(),
             "alice": "a-" + os.urandom(6).hex(), "keysvc2": "k2-" + os.urandom(6).hex()}


def private_file(env, name, text, mode=0o600):
    path = os.path.join(env.dir, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def connack(port, cid, version=4):
    s = ph.raw_conn(port)
    s.sendall(ph.connect_pkt(cid, version=version))
    closed, data = ph.read_until_closed(s, 8)
    s.close()
    return closed, data


def sub_args(user):
    return ["-u", user, "-P", PASSWORDS[user], "--state", "none"]


def passwords_and_collision(env, c):
    broker = ph.Mosquitto(env, passwords=PASSWORDS, name="mosq-passwd")
    pki = broker.pki
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["sensors/#"])])
    s2 = h.Sender(env, "edge2", scopes=[(1, "telemetry", ["sensors/#"])])
    alice = h.Subscriber(env, "alice", trust=[s, s2])
    s.enroll(alice, ["telemetry"])
    s2.enroll(alice, ["telemetry"])
    svc, svc2 = "e2e-keys-%08x" % s.sender_id, "e2e-keys-%08x" % s2.sender_id
    creds = private_file(env, "credentials",
                         "# client-id username password\ndev1 dev1 %s\n%s keysvc2 %s\n" % (
                             PASSWORDS["dev1"], svc2, PASSWORDS["keysvc2"]))
    pwfile = private_file(env, "keysvc.pw", PASSWORDS["keysvc"] + "\n")
    base = ["--cafile", pki["ca_crt"], "--credentials", creds, "--connect-timeout", "3s"]
    px = ph.Proxy(env, broker.addr(), base + ["--dir", s.dir, "--service-username", "keysvc",
                                              "--service-password-file", pwfile])
    c.expect(px.err_match(r"key service connected as '%s'" % svc),
             "password broker: key service logged in as %s (service-username)" % svc)
    c.expect(broker.wait_log(r"New client connected .* as %s .*u'keysvc'" % svc, 5),
             "broker: the key service used username keysvc")
    sp = h.start_sub(env, broker, alice, ["sensors/#"], name="sub", args=sub_args("alice"))
    c.require(sp.wait_err(h.EV_KEY, 15), "subscriber (password login) got the key")
    tok = ph.token("pw")
    cp = ph.mosq_pub(env, px, "sensors/pw/1", tok, qos=1, cid="dev1", check=False)
    c.expect(cp.returncode == 0, "dev1 publishes with its injected password (rc %d %s)" % (
        cp.returncode, cp.stderr.decode(errors="replace")[-200:]))
    c.expect(sp.wait_json(1, 10, pred=lambda o: h.payload_of(o) == tok.encode() and
                          h.verdict_of(o) == "OK"), "subscriber decrypted dev1's message")

    # A publisher without a credentials line: the broker refuses it, the
    # proxy's log says why (the publisher gets the CONNACK itself).
    cp = ph.mosq_pub(env, px, "sensors/pw/2", "x", qos=1, cid="stranger", check=False)
    c.expect(cp.returncode != 0 and px.wait_err(
        r"\(stranger\): broker refused the connection: (not authorized|bad user name)", 3),
        "relay refused by the broker: the proxy logs the CONNACK reason (%s)" %
        px.err_match("stranger")[-2:])

    # e2e-sub and e2e-pub name the cause of a refused connection too.
    cp = h.run(env, "sub-badpw", [env.sub_bin] + broker.tls_args() + [
        "--dir", alice.dir, "-t", "x", "-u", "alice", "-P", "wrong", "--state", "none"],
        check=False, timeout=40)
    out = cp.stderr.decode(errors="replace")
    c.expect(cp.returncode == 2 and re.search(r"refused the connection: (bad user name or "
                                              r"password|not authorized)", out),
             "e2e-sub with a wrong password: exit 2 naming the CONNACK reason: %s" %
             out.strip()[-200:])
    rogue = os.path.join(os.path.dirname(pki["ca_crt"]), "rogue-ca.crt")
    # Its own state dir: the running proxy's may be locked.
    spare = h.Sender(env, "spare", scopes=[(1, "telemetry", ["sensors/#"])])
    cp = h.run(env, "pub-rogue-ca", [env.pub_bin, "-h", ph.LOCAL, "-p", str(broker.port),
                                     "--cafile", rogue, "--dir", spare.dir, "-t", "sensors/x",
                                     "-m", "x", "-u", "dev1", "-P", PASSWORDS["dev1"]],
               check=False, timeout=40)
    out = cp.stderr.decode(errors="replace")
    c.expect(cp.returncode != 0 and re.search(r"certificate verify failed: (unable to get "
                                              r"local issuer|self-signed certificate)", out) and
             rogue in out and "Failure" not in out,
             "e2e-pub with the wrong CA: the verification result and the CA file: %s" %
             out.strip()[-300:])

    # A second proxy, another state dir, same broker: its own derived id,
    # credentials from the credentials line of that id.
    px2 = ph.Proxy(env, broker.addr(), base + ["--dir", s2.dir], name="proxy2")
    c.expect(px2.err_match(r"key service connected as '%s'" % svc2) and svc != svc2,
             "second proxy: key service %s (credentials line), distinct from %s" % (svc2, svc))
    time.sleep(1.5)
    c.expect(px.alive() and px2.alive(), "both proxies run side by side")
    c.expect(not px.err_match(r"key service: .*(connection lost|reconnect)") and
             not px2.err_match(r"key service: .*(connection lost|reconnect)") and
             not broker.wait_log(r"already connected, closing old connection", 0.1),
             "neither key service was knocked off the broker")
    for p, tag in ((px, "one"), (px2, "two")):
        tok = ph.token(tag)
        ph.mosq_pub(env, p, "sensors/side/" + tag, tok, qos=1, cid="dev1", check=False)
        c.expect(sp.wait_json(1, 10, pred=lambda o, t=tok: h.payload_of(o) == t.encode() and
                              h.verdict_of(o) == "OK"),
                 "side by side: subscriber decrypted the message through proxy %s" % tag)

    # The key service's client id is not for publishers.
    for version, want in ((4, b"\x20\x02\x00\x02"), (5, b"\x20\x03\x00\x85")):
        closed, data = connack(px.port, svc, version)
        c.expect(closed and data.startswith(want),
                 "MQTT %s publisher with client id %s: CONNACK identifier rejected (got %r)" % (
                     "5" if version == 5 else "3.1.1", svc, data[:8]))
    c.expect(px.wait_err(r"refused client id '%s'" % svc, 3), "the refusal is logged")
    time.sleep(0.5)
    c.expect(not px.err_match(r"key service: .*connection lost") and
             broker.log_text().count("as %s " % svc) == 1,
             "the key service kept its one session")
    tok = ph.token("after")
    ph.mosq_pub(env, px, "sensors/pw/after", tok, qos=1, cid="dev1", check=False)
    c.expect(sp.wait_json(1, 10, pred=lambda o: h.payload_of(o) == tok.encode()),
             "after the refused collision the proxy still encrypts and the subscriber decrypts")

    # Wrong password: the CONNACK reason, by name.
    bad = private_file(env, "bad.pw", "wrong\n")
    p3 = ph.Proxy(env, broker.addr(), base + ["--dir", spare.dir, "--service-username", "keysvc",
                                              "--service-password-file", bad,
                                              "--service-id", "keys-bad"],
                  name="proxy-badpw", ready=False)
    rc = p3.proc.wait_exit(20)
    # mosquitto answers a wrong password to MQTT 3.1.1 with return code 5.
    line = p3.err_match(r"error: key service.*broker 127\.0\.0\.1:%d refused the connection: "
                        r"(bad user name or password|not authorized)" % broker.port)
    c.expect(rc == 1 and line, "wrong service password: exit 1 naming the CONNACK reason "
             "(rc %r): %s" % (rc, line or p3.proc.tail(3)))
    c.expect(not p3.err_match(r"Unknown error code|: Failure"), "no 'Unknown error code'")
    return px, s, pki, creds


def tls_min(env, c, pki):
    """openssl s_server -tls1_2 stands for a broker that only speaks TLS 1.2
    (mosquitto's tls_version is a minimum). With tls-min 1.3 the key service
    must refuse it in the handshake; with tls-min 1.2 the handshake completes
    (and the start fails later, for want of MQTT)."""
    s = h.Sender(env, "edge-tls", scopes=[(1, "telemetry", ["sensors/#"])])
    port = h.free_port()
    srv = h.Proc(env, "s_server-tls12", [h.OPENSSL, "s_server", "-accept", "%s:%d" % (ph.LOCAL, port),
                                         "-cert", pki["server_crt"], "-key", pki["server_key"],
                                         "-tls1_2"], stdin=True)
    c.require(h.wait_until(lambda: ph.port_open(port), 5), "s_server -tls1_2 listening")
    common = ["--cafile", pki["ca_crt"], "--dir", s.dir, "--connect-timeout", "2s",
              "--log-level", "debug"]
    p = ph.Proxy(env, "%s:%d" % (ph.LOCAL, port), common + ["--tls-min", "1.3"],
                 name="proxy-tls13", ready=False)
    rc = p.proc.wait_exit(20)
    line = p.err_match(r"error: key service.*(protocol version|tls-min)")
    c.expect(rc == 1 and line and not p.err_match(r"upstream TLSv1\.2"),
             "tls-min 1.3 against a TLS 1.2-only server: the key service refuses in the "
             "handshake, exit 1 saying why (rc %r): %s" % (rc, line or p.proc.tail(3)))
    p = ph.Proxy(env, "%s:%d" % (ph.LOCAL, port), common + ["--tls-min", "1.2"],
                 name="proxy-tls12", ready=False)
    c.expect(p.wait_err(r"key service: upstream TLSv1\.2", 10),
             "the same server with tls-min 1.2: the key service's handshake completes (TLSv1.2)")
    p.stop()
    srv.stop()
    # A broker certificate for another name: e2e-sub says hostname mismatch.
    crt, key = ph.issue(env, "other-name", "other.example", usage="serverAuth",
                        san="DNS:other.example")
    port = h.free_port()
    srv = h.Proc(env, "s_server-other", [h.OPENSSL, "s_server", "-accept", "%s:%d" % (ph.LOCAL,
                                                                                      port),
                                         "-cert", crt, "-key", key], stdin=True)
    c.require(h.wait_until(lambda: ph.port_open(port), 5), "s_server (other.example) listening")
    sub = h.Subscriber(env, "dave", trust=[s])
    cp = h.run(env, "sub-other-name", [env.sub_bin, "-h", ph.LOCAL, "-p", str(port), "--cafile",
                                       pki["ca_crt"], "--dir", sub.dir, "-t", "x", "--state",
                                       "none"], check=False, timeout=40)
    out = cp.stderr.decode(errors="replace")
    c.expect(cp.returncode == 2 and re.search(r"hostname mismatch|IP address mismatch", out) and
             pki["ca_crt"] in out,
             "e2e-sub against a certificate for another name: 'mismatch' and the CA file: %s" %
             out.strip()[-300:])
    srv.stop()


def check_config(env, c, px, s, pki, creds):
    argv = [ph.proxy_bin(), "--broker", "127.0.0.1:1", "--cafile", pki["ca_crt"], "--dir", s.dir,
            "--stats-socket", px.stats_path, "--listen", "127.0.0.1:%d" % px.port,
            "--credentials", creds, "--check-config"]
    cp = h.run(env, "check-good", argv, check=False)
    out = (cp.stdout + cp.stderr).decode(errors="replace")
    c.expect(cp.returncode == 0 and "configuration OK" in out,
             "--check-config with the running proxy's settings: OK (rc %d): %s" % (
                 cp.returncode, out[-300:]))
    bad_dir = os.path.join(env.dir, "sender-loose")
    os.makedirs(bad_dir, mode=0o700)
    with open(os.path.join(s.dir, "identity.key"), "rb") as f:
        ident = f.read()
    with open(os.path.join(bad_dir, "identity.key"), "wb") as f:
        f.write(ident)
    os.chmod(os.path.join(bad_dir, "identity.key"), 0o644)
    with open(os.path.join(bad_dir, "scopes"), "w") as f:
        f.write("this is not a scope line\n")
    loose = private_file(env, "credentials-loose", "dev1 dev1 x\n", 0o644)
    checks = [(["--dir", os.path.join(env.dir, "nonexistent")], r"dir .*nonexistent: No such file"),
              (["--dir", bad_dir], r"identity\.key: mode 0644"),
              (["--dir", bad_dir], r"sender-loose/scopes:1: expected"),
              (["--cafile", os.path.join(env.dir, "no-ca.crt")], r"cafile .*no-ca\.crt: No such"),
              (["--cafile", env.dir], r"cafile .*: is a directory, not a file"),
              (["--credentials", loose], r"credentials .*credentials-loose: must be mode 0600.*"
                                         r"0644")]
    for extra, _want in checks:
        cp = h.run(env, "check-bad", [ph.proxy_bin(), "--broker", "127.0.0.1:1",
                                      "--stats-socket", px.stats_path, "--check-config",
                                      "--cafile", pki["ca_crt"], "--dir", s.dir] + extra,
                   check=False)
        out = (cp.stdout + cp.stderr).decode(errors="replace")
        for e2, want in checks:
            if e2 == extra:
                c.expect(cp.returncode == 1 and re.search(want, out),
                         "--check-config %s: exit 1, '%s' listed (rc %d): %s" % (
                             " ".join(extra), want, cp.returncode, out.strip()[-400:]))
    # Every problem at once, counted.
    cp = h.run(env, "check-all", [ph.proxy_bin(), "--broker", "127.0.0.1:1", "--check-config",
                                  "--stats-socket", px.stats_path, "--dir", bad_dir,
                                  "--cafile", os.path.join(env.dir, "no-ca.crt"),
                                  "--credentials", loose], check=False)
    out = (cp.stdout + cp.stderr).decode(errors="replace")
    c.expect(cp.returncode == 1 and re.search(r"has [3-9] problem", out) and
             "identity.key" in out and "no-ca.crt" in out and "credentials-loose" in out,
             "--check-config lists every problem, not just the first: %s" % out.strip()[-600:])
    c.expect(os.path.exists(px.stats_path) and px.stats() is not None,
             "the running proxy's stats socket is untouched and still answers")


def sighup(env, c, pki):
    s = h.Sender(env, "edge-hup", scopes=[(1, "telemetry", ["sensors/#"])])
    broker = ph.Mosquitto(env, name="mosq-hup")
    alice = h.Subscriber(env, "bob", trust=[s])
    s.enroll(alice, ["telemetry"])
    file_port = h.free_port()
    conf = os.path.join(env.dir, "hup.conf")

    def write(level, maxp, ctl):
        with open(conf, "w") as f:
            f.write("listen 127.0.0.1:%d\ncafile %s\ndir %s\nlog-level %s\nmax-packet %d\n"
                    "drain-timeout 5s\ncontrol-topic %s\n" % (file_port, pki["ca_crt"], s.dir,
                                                              level, maxp, ctl))
    write("info", 1000, "e2e/control")
    px = ph.Proxy(env, broker.addr(), name="proxy-hup", config=conf)
    c.expect(len(px.err_match(r"listening on")) == 1 and not ph.port_open(file_port),
             "--listen on the command line replaces the file's listen (one listener: %s)" %
             px.err_match(r"listening on"))
    sp = h.start_sub(env, broker, alice, ["sensors/#"], name="sub-hup", args=["--state", "none"])
    c.require(sp.wait_err(h.EV_KEY, 15), "subscriber got the key")
    big = ph.token("big") + "x" * 1500
    cp = ph.mosq_pub(env, px, "sensors/hup/big", big, qos=1, check=False)
    c.expect(px.wait_err(r"packet too big", 3),
             "before SIGHUP: a 1.5 kB PUBLISH is over max-packet 1000")
    write("debug", 2000000, "e2e/other")
    since = time.monotonic()
    px.send(signal.SIGHUP)
    applied = px.wait_err(r"SIGHUP: applied .*log-level.*max-packet", 5, since=since)
    c.expect(applied, "SIGHUP: log-level and max-packet reported applied (%s)" %
             px.err_match(r"SIGHUP", since))
    c.expect(px.wait_err(r"SIGHUP: .*needs a restart.*control-topic", 2, since=since),
             "SIGHUP: control-topic named as needing a restart")
    c.expect(not px.err_match(r"needs a restart.*listen", since),
             "SIGHUP: listen not reported changed (the command line still wins)")
    cp = ph.mosq_pub(env, px, "sensors/hup/big", big, qos=1, cid="big-after", check=False)
    c.expect(cp.returncode == 0 and sp.wait_json(1, 10, pred=lambda o: h.payload_of(o) ==
                                                 big.encode()),
             "after SIGHUP: the 1.5 kB PUBLISH is relayed and decrypted (max-packet applied)")
    c.expect(px.err_match(r"debug: .*big-after", since),
             "after SIGHUP: debug lines are logged (log-level applied)")
    px.stop()
    # Misleading messages of the tools, now saying what is wrong.
    cp = h.run(env, "pub-reserved", [env.pub_bin] + broker.tls_args() + [
        "--dir", s.dir, "-t", "e2e/k/abc", "-m", "x", "-q", "1"], check=False)
    out = cp.stderr.decode(errors="replace")
    c.expect(cp.returncode != 0 and "reserved for key distribution" in out and
             "insecure permissions" not in out,
             "e2e-pub to e2e/k/...: 'reserved for key distribution' (rc %d): %s" % (
                 cp.returncode, out.strip()[-200:]))


def service_user(env, c, pki):
    """The documented enroll/rotate flow for a service running as its own
    user (e2e-proxy.8, dist/e2e-proxy.service): the state dir belongs to the
    service user; e2e-keytool run as root becomes that owner, or is run as
    that user (runuser -u); the proxy, started as root with --user, drops
    before reading its state and serves. 'nobody' stands in for mqtt-e2e."""
    import pwd
    if os.geteuid() != 0:
        h.log("not root: service-user flow skipped")
        return
    pw = pwd.getpwnam("nobody")
    for d in (env.dir, os.path.dirname(pki["ca_crt"])):
        os.chmod(d, 0o711)
    os.chmod(pki["ca_crt"], 0o644)
    state = os.path.join(env.dir, "svc-state")
    os.mkdir(state, 0o700)
    os.chown(state, pw.pw_uid, pw.pw_gid)
    sender = os.path.join(state, "sender")
    cp = h.run(env, "keytool-genkey-root", [env.keytool, "genkey", "--dir", sender], check=False)
    err = cp.stderr.decode(errors="replace")
    st = os.stat(os.path.join(sender, "identity.key"))
    c.expect(cp.returncode == 0 and st.st_uid == pw.pw_uid and "running as nobody" in err,
             "keytool genkey as root on the service's dir: identity.key owned by the service "
             "user (rc %d, uid %d): %s" % (cp.returncode, st.st_uid, err.strip()))
    with open(os.path.join(env.dir, "svc-scopes"), "w") as f:
        f.write("scope 1 telemetry sensors/#\n")
    # Scopes are written by hand as the service user would.
    h.run(env, "scopes-as-user", ["runuser", "-u", "nobody", "--", "cp",
                                  os.path.join(env.dir, "svc-scopes"),
                                  os.path.join(sender, "scopes")], check=False)
    pub = h.run(env, "keytool-pubkey", [env.keytool, "pubkey", "--dir", sender])
    line = pub.stdout.decode().split("\n")[0]
    carol_sender = type("SvcSender", (), {"name": "svc", "public_line": " ".join(
        line.split()[:2])})()
    carol = h.Subscriber(env, "carol", trust=[carol_sender])
    cp = h.run(env, "keytool-enroll-root", [env.keytool, "enroll", "carol", carol.public_line,
                                            "--scope", "telemetry", "--dir", sender], check=False)
    c.expect(cp.returncode == 0, "keytool enroll as root on the service's dir works (rc %d): %s" %
             (cp.returncode, cp.stderr.decode(errors="replace").strip()))
    cp = h.run(env, "keytool-rotate-user", ["runuser", "-u", "nobody", "--", env.keytool,
                                            "rotate", "--dir", sender], check=False)
    c.expect(cp.returncode == 0, "keytool rotate run as the service user works (rc %d): %s" % (
        cp.returncode, cp.stderr.decode(errors="replace").strip()))
    bad = [f for f in os.listdir(sender) if os.stat(os.path.join(sender, f)).st_uid != pw.pw_uid]
    c.expect(not bad, "every file of the state dir belongs to the service user (%s)" % bad)
    broker = ph.Mosquitto(env, name="mosq-svc")
    px = ph.Proxy(env, broker.addr(), ["--cafile", pki["ca_crt"], "--dir", sender, "--user",
                                       "nobody"], name="proxy-svc", stats=False)
    c.expect(px.err_match(r"running as nobody"), "the proxy runs as the service user")
    sp = h.start_sub(env, broker, carol, ["sensors/#"], name="sub-svc", args=["--state", "none"])
    c.require(sp.wait_err(h.EV_KEY, 15), "the service user's proxy answered the key request")
    tok = ph.token("svc")
    ph.mosq_pub(env, px, "sensors/svc/1", tok, qos=1, check=False)
    c.expect(sp.wait_json(1, 10, pred=lambda o: h.payload_of(o) == tok.encode() and
                          h.verdict_of(o) == "OK"),
             "subscriber decrypted a message sealed by the service user's proxy")
    px.stop()


class AlpnFront:
    """A TLS front that, like AWS IoT on 443, accepts only clients offering
    the ALPN protocol it wants, and forwards them to a plain MQTT port.
    Listens on 443 when it can (root and free), else on a free port."""

    def __init__(self, env, pki, backend_port, proto="x-amzn-mqtt-ca"):
        import ssl
        import threading
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki["server_crt"], pki["server_key"])
        self.ctx.set_alpn_protocols([proto])
        self.proto, self.backend = proto, backend_port
        self.accepted, self.refused = 0, 0
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.ls.bind((ph.LOCAL, 443))
        except OSError:
            self.ls.bind((ph.LOCAL, 0))
        self.port = self.ls.getsockname()[1]
        self.ls.listen(16)
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()
        env.clients.append(self)

    def _serve(self):
        import ssl
        import threading
        self.ls.settimeout(0.2)
        while not self.stop_ev.is_set():
            try:
                a, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                a.settimeout(5)
                t = self.ctx.wrap_socket(a, server_side=True)
            except (OSError, ssl.SSLError):
                self.refused += 1
                a.close()
                continue
            if t.selected_alpn_protocol() != self.proto:
                self.refused += 1
                t.close()
                continue
            self.accepted += 1
            b = socket.create_connection((ph.LOCAL, self.backend), timeout=3)
            threading.Thread(target=self._pipe, args=(t, b), daemon=True).start()

    def _pipe(self, t, b):
        t.settimeout(0.2)
        b.settimeout(0.2)
        try:
            while not self.stop_ev.is_set():
                for src, dst in ((t, b), (b, t)):
                    try:
                        d = src.recv(65536)
                    except (socket.timeout, BlockingIOError):
                        continue
                    if not d:
                        return
                    dst.sendall(d)
        except OSError:
            return
        finally:
            t.close()
            b.close()

    def close(self):
        self.stop_ev.set()
        self.ls.close()
        self.t.join(2)


def alpn_broker(env, c, pki):
    """An ALPN-only TLS endpoint (443 when possible) in front of mosquitto:
    the proxy's key service reaches it with --alpn and answers a subscriber;
    without --alpn it is refused there, and the proxy says so."""
    broker = ph.Mosquitto(env, listeners=[{"kind": "tls"}, {"kind": "plain"}], name="mosq-alpn")
    front = AlpnFront(env, pki, broker.ports[1])
    s = h.Sender(env, "edge-alpn", scopes=[(1, "telemetry", ["sensors/#"])])
    erin = h.Subscriber(env, "erin", trust=[s])
    s.enroll(erin, ["telemetry"])
    p = ph.Proxy(env, "%s:%d" % (ph.LOCAL, front.port), ["--cafile", pki["ca_crt"], "--dir", s.dir,
                                                          "--connect-timeout", "3s"],
                 name="proxy-no-alpn", ready=False)
    rc = p.proc.wait_exit(20)
    c.expect(rc == 1 and front.accepted == 0 and
             p.err_match(r"error: key service.*closed the connection without answering.*alpn"),
             "ALPN broker on port %d without --alpn: refused, the proxy exits 1 (rc %r): %s" % (
                 front.port, rc, p.err_match(r"error: key service")))
    px = ph.Proxy(env, "%s:%d" % (ph.LOCAL, front.port), ["--cafile", pki["ca_crt"], "--dir",
                                                           s.dir, "--alpn", "x-amzn-mqtt-ca"],
                  name="proxy-alpn")
    c.expect(front.accepted >= 1, "ALPN broker on port %d: the key service offered "
             "x-amzn-mqtt-ca and got in" % front.port)
    sp = h.start_sub(env, broker, erin, ["sensors/#"], name="sub-alpn", args=["--state", "none"])
    c.require(sp.wait_err(h.EV_KEY, 15), "the key service behind the ALPN broker answered")
    tok = ph.token("alpn")
    ph.mosq_pub(env, px, "sensors/alpn/1", tok, qos=1, check=False)
    c.expect(sp.wait_json(1, 10, pred=lambda o: h.payload_of(o) == tok.encode() and
                          h.verdict_of(o) == "OK"),
             "a publisher relayed through the ALPN broker: subscriber decrypted it")
    px.stop()


def durations(env, c, s):
    nowhere = os.path.join(env.dir, "no-such-dir")
    for prog in (env.sub_bin, env.pub_bin):
        cp = h.run(env, "missing-dir", [prog, "--dir", nowhere, "-t", "a", "-m", "x", "-p", "1"]
                   if prog == env.pub_bin else [prog, "--dir", nowhere, "-t", "a", "-p", "1"],
                   check=False)
        out = cp.stderr.decode(errors="replace")
        c.expect(cp.returncode == 1 and "directory %s does not exist" % nowhere in out,
                 "%s --dir missing: the directory is named (rc %d): %s" % (
                     os.path.basename(prog), cp.returncode, out.strip()))
    sub = h.Subscriber(env, "frank", trust=[s])
    for state, want in ((os.path.join(env.dir, "nowhere", "state"), "does not exist"),
                        (env.dir, "is a directory, not a file")):
        cp = h.run(env, "sub-bad-state", [env.sub_bin, "--dir", sub.dir, "-t", "x", "--state",
                                          state, "-p", "1"], check=False)
        out = cp.stderr.decode(errors="replace")
        c.expect(cp.returncode == 1 and want in out and "input/output" not in out and
                 "insecure permissions" not in out,
                 "e2e-sub --state %s: '%s' (rc %d): %s" % (state, want, cp.returncode,
                                                          out.strip()))
    cp = h.run(env, "sub-bad-filter", [env.sub_bin, "-t", "a/#/b"], check=False)
    out = cp.stderr.decode(errors="replace")
    c.expect(cp.returncode == 1 and "not a valid topic filter" in out,
             "e2e-sub -t 'a/#/b': refused at once as an invalid filter (rc %d): %s" % (
                 cp.returncode, out.strip()))
    for name, argv in (
            ("e2e-proxy", [ph.proxy_bin(), "--broker", "127.0.0.1:1", "--check-config",
                           "--connect-timeout", "10x"]),
            ("e2e-keytool", [env.keytool, "rotate", "--dir", s.dir, "--grace", "10x"]),
            ("e2e-sub", [env.sub_bin, "-t", "a", "-W", "10x"]),
            ("e2e-pub", [env.pub_bin, "-t", "a", "-m", "x", "--linger", "10x"])):
        cp = h.run(env, name + "-duration", argv, check=False)
        out = (cp.stdout + cp.stderr).decode(errors="replace")
        c.expect(cp.returncode != 0 and "10x" in out and ("duration" in out or "24h" in out),
                 "%s: '10x' refused as a duration, naming the syntax (rc %d): %s" % (
                     name, cp.returncode, out.strip()[-200:]))


def body(env, c):
    px, s, pki, creds = passwords_and_collision(env, c)
    check_config(env, c, px, s, pki, creds)
    tls_min(env, c, pki)
    sighup(env, c, pki)
    durations(env, c, s)
    alpn_broker(env, c, pki)
    service_user(env, c, pki)


if __name__ == "__main__":
    h.main("proxy-deploy", body)
