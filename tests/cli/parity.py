#!/usr/bin/python3
"""CLI parity: the same command lines against mosquitto_sub/_pub and e2e-sub/_pub.

Two real mosquitto brokers on free 127.0.0.1 ports (TLS, the run's CA):
  A (plaintext reference): mosquitto_pub -> A -> mosquitto_sub
  B (end to end):          mosquitto_pub -> e2e-proxy (sender "edge") -> B -> e2e-sub
                           e2e-pub (sender "pubber", own state dir) -> B -> e2e-sub
Each case runs one subscriber command line on both sides (only the
e2e-specific --dir/--state are added on B), publishes the same messages,
and compares what the user sees: stdout byte for byte (timestamps of %j
masked), and the exit status (-C, -W 27, -E, --retained-only, usage errors).
e2e-pub cases publish with mosquitto_pub on A and e2e-pub on B with the same
options (-m --repeat --repeat-delay, -l, -f, -s, -n, -r, -q, -L) and compare
what the subscribers print. Refusals (-D, --quiet, ...) must say why.
"""
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proxy_it"))
import proxyharness as ph  # noqa: E402

h = ph.h
LOCAL = ph.LOCAL
TST = re.compile(rb'"tst":"[^"]*"')


class Sides:
    def __init__(self, env):
        self.env = env
        self.a = ph.Mosquitto(env, name="broker-plain")
        self.b = ph.Mosquitto(env, name="broker-e2e")
        self.edge = h.Sender(env, "edge")
        self.pubber = h.Sender(env, "pubber")
        self.sub = h.Subscriber(env, "alice", trust=[self.edge, self.pubber])
        self.edge.enroll(self.sub, ["default"])
        self.pubber.enroll(self.sub, ["default"])
        self.proxy = ph.Proxy(env, self.b.addr(), ["--cafile", self.b.pki["ca_crt"],
                                                   "--dir", self.edge.dir])
        self.ca = self.a.pki["ca_crt"]
        self.n = 0

    def conn(self, side):
        br = self.a if side == "plain" else self.b
        return ["-h", LOCAL, "-p", str(br.port), "--cafile", self.ca]

    def broker(self, side):
        return self.a if side == "plain" else self.b

    # -- publishing the same message on both paths -----------------------------
    def publish(self, side, topic, msg=None, retain=False, qos=1):
        """mosquitto_pub to A directly, or through the proxy (sealed) to B."""
        conn = self.conn("plain") if side == "plain" else ["-h", LOCAL, "-p",
                                                           str(self.proxy.port)]
        argv = [ph.MOSQ_PUB] + conn + ["-q", str(qos), "-t", topic]
        argv += ["-n"] if msg is None else ["-m", msg]
        if retain:
            argv.append("-r")
        h.run(self.env, "pub-" + side, argv, timeout=20)

    # -- one subscriber run ------------------------------------------------------
    def sub_run(self, side, args, pre=(), live=(), timeout=20, publish=None, stop_after=None,
                cid=None):
        """Start the subscriber of @side with @args, publish @pre (before) and
        @live (after it is subscribed, and on B after it has the key), wait
        for its exit. Returns (rc or None, stdout bytes, stderr text)."""
        for m in pre:
            (publish or self.publish)(side, *m)
        self.n += 1
        cid = "%s-%s" % (cid, side) if cid else "par-%s-%d" % (side, self.n)
        base = os.path.join(self.env.dir, "%s-%d" % (cid, self.n))
        if side == "plain":
            argv = [ph.MOSQ_SUB] + self.conn(side) + ["-i", cid] + list(args)
        else:
            argv = [self.env.sub_bin] + self.conn(side) + ["--dir", self.sub.dir, "--state",
                                                           "none", "-i", cid] + list(args)
        h.log("start %s: %s" % (cid, " ".join(argv)))
        with open(base + ".out", "wb") as fo, open(base + ".err", "wb") as fe:
            p = subprocess.Popen(argv, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                                 cwd=self.env.dir)
        br = self.broker(side)

        def err():
            with open(base + ".err", "rb") as f:
                return f.read().decode(errors="replace")
        ready = lambda: ("Sending SUBACK to " + cid) in br.log_text() and (
            side == "plain" or "key received from edge" in err())
        h.wait_until(lambda: p.poll() is not None or ready(), 15)
        for m in live:
            (publish or self.publish)(side, *m)
        if stop_after is not None:
            time.sleep(stop_after)
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait(5)
            rc = None
        with open(base + ".out", "rb") as f:
            out = f.read()
        return rc, out, err()


def body(env, c):
    s = Sides(env)

    def same(name, args, pre=(), live=(), timeout=20, mask=False, want_rc=None):
        """Run @args on both sides; stdout and exit status must be equal."""
        rp, op, ep = s.sub_run("plain", args, pre, live, timeout)
        re_, oe, ee = s.sub_run("e2e", args, pre, live, timeout)
        if mask:
            op, oe = TST.sub(b'"tst":"T"', op), TST.sub(b'"tst":"T"', oe)
        c.expect(op == oe, "%s: same output (mosquitto_sub %r, e2e-sub %r; e2e-sub stderr: %s)"
                 % (name, op, oe, ee.strip()[-300:]))
        c.expect(rp == re_, "%s: same exit status (mosquitto_sub %s, e2e-sub %s)" % (name, rp, re_))
        if want_rc is not None:
            c.expect(re_ == want_rc, "%s: e2e-sub exits %s (rc %s)" % (name, want_rc, re_))
        return op, oe, ee

    # --- output: -v, -N, empty payloads, -C -----------------------------------------
    op, _, _ = same("-v -C 3", ["-t", "c1/#", "-v", "-C", "3"],
                    live=[("c1/a", "hello"), ("c1/b", None), ("c1/c", "world")], want_rc=0)
    c.expect(op == b"c1/a hello\nc1/b (null)\nc1/c world\n", "-v output is what mosquitto "
             "prints (not vacuous): %r" % op)
    same("plain -C 3 (empty payload prints nothing)", ["-t", "c2/#", "-C", "3"],
         live=[("c2/a", "one"), ("c2/b", None), ("c2/c", "three")], want_rc=0)
    op, _, _ = same("-N -C 3", ["-t", "c3/#", "-N", "-C", "3"],
                    live=[("c3/a", "one"), ("c3/b", "two"), ("c3/c", "three")], want_rc=0)
    c.expect(op == b"onetwothree", "-N: no newlines (%r)" % op)

    # --- -F: mosquitto's sequences, flags, widths, escapes; then ours ------------------
    fmt = ("%t|%p|%l|%q|%r|%x|%X|%%|%5.2t|%-8t|%-p|%-5x|%3p|%-3p|%06l|%-4l|%8p|"
           "%A%C%D%E%F%P%R%S|%-05.2t|%09.3p|\\t|\\\\|@@|\\e|%-3X")
    op, _, _ = same("-F mosquitto sequences", ["-t", "c4/#", "-F", fmt, "-C", "2"],
                    live=[("c4/ab", "hello"), ("c4/cd", "x y")], want_rc=0)
    c.expect(op.startswith(b"c4/ab|hello|5|0|0|68656c6c6f|68656C6C6F|%|"), "-F output sane: %r"
             % op[:60])
    for bad in ("a%", "a@", "a\\", "\\q", "%5", "%-", "%.3", "%Z"):
        same("-F %r refused" % bad, ["-t", "c5/#", "-F", bad, "-E"], want_rc=1, timeout=10)
    same("-F with \\0 and -N", ["-t", "c5/#", "-F", "%t\\0%p\\0", "-N", "-C", "2"],
         live=[("c5/a", "p q"), ("c5/b", "r")], want_rc=0)
    same("-F %j (tst masked)", ["-t", "c6/#", "-F", "%j", "-C", "3"],
         live=[("c6/a", 'say "hi"'), ("c6/b", None), ("c6/c", "tab\there")], mask=True, want_rc=0)
    same("-F %J (JSON payload)", ["-t", "c7/#", "-F", "%J", "-C", "1"],
         live=[("c7/a", '{"v":[1,2,"x"],"o":{"k":null}}')], mask=True, want_rc=0)
    # Time sequences differ from run to run: compared by shape.
    tfmt = "%I|%U|@Y-@m-@d|@N|%j"
    shapes = {}
    for side in ("plain", "e2e"):
        rc, o, _e = s.sub_run(side, ["-t", "c8/#", "-F", tfmt, "-C", "1"], live=[("c8/a", "t")])
        shapes[side] = (rc, re.sub(rb"\d", b"9", o))
    c.expect(shapes["plain"] == shapes["e2e"] and shapes["plain"][0] == 0,
             "-F %%I %%U @Y @N %%j: same shapes (%r vs %r)" % (shapes["plain"], shapes["e2e"]))
    rc, oe, ee = s.sub_run("e2e", ["-t", "c9/#", "-F", "%V %n %e %s %o %g %t %p", "-C", "2"],
                           live=[("c9/a", "v1"), ("c9/a", "v2")])
    c.expect(rc == 0 and re.fullmatch(rb"OK edge \d+ 1 0 0 c9/a v1\nOK edge \d+ 2 0 0 c9/a v2\n",
                                      oe) is not None,
             "-F %%V %%n %%e %%s %%o %%g: verdict, sender, epoch, seq, scope, gap (%r; %s)"
             % (oe, ee[-200:]))

    # --- filters: -T, -R, --retained-only ------------------------------------------------
    same("-T filter-out", ["-t", "c10/#", "-T", "c10/skip/#", "-v", "-C", "2"],
         live=[("c10/skip/x", "no"), ("c10/a", "yes1"), ("c10/skip", "no2"), ("c10/b", "yes2")],
         want_rc=0)
    same("-R (no stale)", ["-t", "c11/#", "-v", "-R", "-C", "1"],
         pre=[("c11/r", "old", True)], live=[("c11/r", "new")], want_rc=0)
    op, _, _ = same("--retained-only", ["-t", "c12/#", "-v", "--retained-only"],
                    pre=[("c12/r1", "a", True), ("c12/r2", "b", True)], live=[("c12/x", "fresh")],
                    want_rc=0)
    c.expect(b"fresh" not in op and b"c12/r1 a" in op, "--retained-only prints the stale ones "
             "and stops at the fresh one (%r)" % op)
    same("-F %r -C 2 (retain flag)", ["-t", "c13/#", "-F", "%r %t %p", "-C", "2"],
         pre=[("c13/r", "kept", True)], live=[("c13/l", "live")], want_rc=0)

    # --- ends: -E, -W, -C with -W, -U ---------------------------------------------------
    same("-E", ["-t", "c14/#", "-E"], want_rc=0)
    same("-W 2 times out", ["-t", "c15/#", "-W", "2"], want_rc=27)
    same("-C 2 -W 20", ["-t", "c16/#", "-C", "2", "-W", "20"],
         live=[("c16/a", "1"), ("c16/a", "2")], want_rc=0)
    same("-U after subscribing, -E", ["-t", "c17/#", "-U", "c17/#", "-E"], want_rc=0)
    # -L carries host and port: built per side.
    outs = {}
    for side in ("plain", "e2e"):
        url = "mqtts://user:pw@%s:%d/c18/t" % (LOCAL, s.broker(side).port)
        outs[side] = s.sub_run(side, ["-L", url, "-v", "-C", "1"], live=[("c18/t", "via url")])
    c.expect(all("u'user'" in s.broker(side).log_text() for side in ("plain", "e2e")),
             "-L user:pw@: the username reached both brokers")
    c.expect(outs["plain"][:2] == outs["e2e"][:2] == (0, b"c18/t via url\n"),
             "-L mqtts://host:port/topic: same output and status (%r, %r)" % (
                 outs["plain"][:2], outs["e2e"][:2]))

    # -c keeps the session (QoS 1 queued while away); -U takes a filter out of it.
    sess = {}
    for side in ("plain", "e2e"):
        steps = [s.sub_run(side, ["-c", "-q", "1", "-t", "c21/x", "-E"], cid="keep")]
        s.publish(side, "c21/x", "while away")
        steps.append(s.sub_run(side, ["-c", "-q", "1", "-t", "c21/x", "-C", "1"], cid="keep"))
        steps.append(s.sub_run(side, ["-c", "-q", "1", "-t", "c21/y", "-U", "c21/x", "-E"],
                               cid="keep"))
        s.publish(side, "c21/x", "after -U")
        steps.append(s.sub_run(side, ["-c", "-q", "1", "-t", "c21/y", "-W", "3"], cid="keep"))
        sess[side] = [st[:2] for st in steps]
    c.expect(sess["plain"] == sess["e2e"] == [(0, b""), (0, b"while away\n"), (0, b""),
                                              (27, b"")],
             "-c -i: queued while away, then -U: nothing more queued (%r vs %r)" % (
                 sess["plain"], sess["e2e"]))

    # --- session, keepalive, TLS version, usage errors ---------------------------------
    for name, args, want in [
            ("-k 2 refused", ["-t", "c19", "-k", "2"], 1),
            ("-W 0 refused", ["-t", "c19", "-W", "0"], 1),
            ("-x 60 -c -E", ["-t", "c19", "-x", "60", "-c", "-E"], 0),
            ("-k 30 -V 5 -E", ["-t", "c19", "-k", "30", "-V", "5", "-E"], 0),
            ("--tls-version tlsv1.2 -E", ["-t", "c19", "--tls-version", "tlsv1.2", "-E"], 0),
            ("--tls-version tlsv1.3 -E", ["-t", "c19", "--tls-version", "tlsv1.3", "-E"], 0),
            ("--tls-version tlsv9 refused", ["-t", "c19", "--tls-version", "tlsv9", "-E"], 1),
            ("-q 2 -E", ["-t", "c19", "-q", "2", "-E"], 0)]:
        same(name, args, want_rc=want, timeout=15)
    # -c needs an id: both refuse when none is given (sub_run always adds -i, so run here).
    for side, binary, extra in (("plain", ph.MOSQ_SUB, []),
                                ("e2e", env.sub_bin, ["--dir", s.sub.dir, "--state", "none"])):
        cp = h.run(env, "no-id-" + side, [binary] + s.conn(side) + extra + ["-t", "c", "-c"],
                   check=False, timeout=15)
        c.expect(cp.returncode == 1, "%s -c without -i: exit 1 (rc %d)" % (side, cp.returncode))

    # --- wills: the broker publishes them in plaintext, for both ------------------------
    wills = {}
    for side in ("plain", "e2e"):
        w = ph.RawSub(env, s.broker(side), topics=("c20/#",), name="will-watch-" + side)
        s.sub_run(side, ["-t", "c20/none", "--will-topic", "c20/will", "--will-payload",
                         "gone " + side, "--will-qos", "1"], stop_after=0.5, timeout=10)
        h.wait_until(lambda: any("c20/will" in l for l in w.lines()), 10)
        wills[side] = w.lines()
        w.stop()
    c.expect(wills["plain"] == ["c20/will gone plain"] and wills["e2e"] == ["c20/will gone e2e"],
             "--will-topic/--will-payload: the broker published the will when the client was "
             "killed (%r)" % wills)

    # --- e2e-pub against mosquitto_pub ---------------------------------------------------
    def pub_with(args, stdin=None):
        def publish(side, *_m):
            if side == "plain":
                argv = [ph.MOSQ_PUB] + s.conn(side) + args
            else:
                argv = [env.pub_bin] + s.conn(side) + ["--dir", s.pubber.dir, "--linger",
                                                       "4"] + args
            cp = h.run(env, "pub-" + side, argv, input=stdin, timeout=40, check=False)
            c.expect(cp.returncode == 0, "%s %s: exit 0 (rc %d, %s)" % (
                argv[0], " ".join(args), cp.returncode, cp.stderr.decode(errors="replace")[-200:]))
        return publish

    fpath = os.path.join(env.dir, "payload.bin")
    with open(fpath, "wb") as f:
        f.write(b"file line 1\nfile line 2")
    pub_cases = [
        ("-m --repeat 3 --repeat-delay 0.2", ["-t", "p1/t", "-m", "again", "--repeat", "3",
                                              "--repeat-delay", "0.2"], None, 3),
        ("-l", ["-t", "p2/t", "-l"], b"l1\nl2\n\nl4\n", 4),
        ("-f", ["-t", "p3/t", "-f", fpath], None, 1),
        ("-s", ["-t", "p4/t", "-s"], b"all\nof stdin\n", 1),
        ("-n", ["-t", "p5/t", "-n"], None, 1),
        ("-q 1 -m", ["-t", "p6/t", "-q", "1", "-m", "q1"], None, 1),
    ]
    for name, args, stdin, n in pub_cases:
        topic = args[1]
        fmt = ["-F", "%t %q %l %x"]
        r = {}
        for side in ("plain", "e2e"):
            r[side] = s.sub_run(side, ["-t", topic, "-q", "1", "-C", str(n)] + fmt,
                                live=[()], publish=pub_with(args, stdin), timeout=30)
        c.expect(r["plain"][:2] == r["e2e"][:2] and r["plain"][0] == 0,
                 "mosquitto_pub vs e2e-pub %s: subscribers print the same (%r vs %r; %s)" % (
                     name, r["plain"][:2], r["e2e"][:2], r["e2e"][2][-200:]))
    # -r: a subscriber that comes later gets it, flagged retained.
    # A retained sealed message can only be opened while its sender's key service
    # answers: e2e-pub lingers (in the background) while the late subscriber starts.
    r = {}
    for side in ("plain", "e2e"):
        if side == "plain":
            pub_with(["-t", "p7/t", "-r", "-m", "kept"])(side)
            r[side] = s.sub_run(side, ["-t", "p7/t", "-C", "1", "-F", "%r %t %p"], timeout=30)
            continue
        bg = h.Proc(env, "pub-retained", [env.pub_bin] + s.conn(side) + [
            "--dir", s.pubber.dir, "--linger", "15", "-t", "p7/t", "-r", "-m", "kept"])
        c.expect(s.b.wait_log(r"Received PUBLISH from .*'p7/t'", 15), "e2e-pub -r published")
        r[side] = s.sub_run(side, ["-t", "p7/t", "-C", "1", "-F", "%r %t %p"], timeout=30)
        bg.stop()
    c.expect(r["plain"][:2] == r["e2e"][:2] == (0, b"1 p7/t kept\n"),
             "mosquitto_pub vs e2e-pub -r: retained for later subscribers (%r vs %r)" % (
                 r["plain"][:2], r["e2e"][:2]))

    # -L: host, port, TLS and the topic from the URL.
    r = {}
    for side in ("plain", "e2e"):
        url = "mqtts://%s:%d/p8/t" % (LOCAL, s.broker(side).port)
        r[side] = s.sub_run(side, ["-t", "p8/t", "-C", "1", "-v"], live=[()], timeout=30,
                            publish=pub_with(["-L", url, "-m", "via url", "-d"]))
    c.expect(r["plain"][:2] == r["e2e"][:2] == (0, b"p8/t via url\n"),
             "mosquitto_pub vs e2e-pub -L URL -d: same (%r vs %r)" % (r["plain"][:2],
                                                                     r["e2e"][:2]))
    # Wills: a publisher killed mid-stream; the broker publishes its will (plaintext).
    wills = {}
    for side in ("plain", "e2e"):
        w = ph.RawSub(env, s.broker(side), topics=("p9/#",), name="pwill-watch-" + side)
        binary = [ph.MOSQ_PUB] if side == "plain" else [env.pub_bin, "--dir", s.pubber.dir]
        p = h.Proc(env, "pwill-" + side, binary + s.conn(side) + [
            "-t", "p9/t", "-l", "-q", "1", "--will-topic", "p9/will", "--will-payload",
            "bye " + side, "--will-retain"], stdin=True)
        p.write(b"first\n")
        p.flush()
        h.wait_until(lambda: any(l.startswith("p9/t ") for l in w.lines()), 10)
        p.stop(signal.SIGKILL)
        h.wait_until(lambda: any("p9/will" in l for l in w.lines()), 10)
        wills[side] = [l for l in w.lines() if l.startswith("p9/will")]
        w.stop()
    c.expect(wills["plain"] == ["p9/will bye plain"] and wills["e2e"] == ["p9/will bye e2e"],
             "publisher --will-*: the broker published the will (in plaintext) when the "
             "publisher was killed (%r)" % wills)

    # -D publish: the properties reach the broker (in plaintext, and e2e-pub says so).
    props = ["-D", "publish", "user-property", "k1", "v1", "-D", "publish", "content-type",
             "text/x", "-D", "publish", "response-topic", "rt/x", "-D", "publish",
             "message-expiry-interval", "60", "-D", "publish", "user-property", "k2", "v2"]
    seen = {}
    for side in ("plain", "e2e"):
        cid = "props-watch-" + side
        w = h.Proc(env, cid, [ph.MOSQ_SUB] + s.conn(side) + [
            "-V", "5", "-i", cid, "-t", "p10/t", "-F", "%t|%P|%C|%R|%E", "-C", "1"])
        h.wait_until(lambda: ("Sending SUBACK to " + cid) in s.broker(side).log_text(), 10)
        binary = [ph.MOSQ_PUB] if side == "plain" else [env.pub_bin, "--dir", s.pubber.dir]
        cp = h.run(env, "props-" + side, binary + s.conn(side) + [
            "-V", "5", "-t", "p10/t", "-m", "with props", "-q", "1"] + props, check=False)
        seen[side] = (cp.returncode, w.wait_exit(10), w.out_lines[:])
        if side == "e2e":
            c.expect("plaintext" in cp.stderr.decode(errors="replace"),
                     "e2e-pub -D says the properties travel in plaintext")
    c.expect(seen["plain"] == seen["e2e"] and seen["plain"][2] == [
        "p10/t|k1:v1 k2:v2|text/x|rt/x|60"],
             "mosquitto_pub vs e2e-pub -D publish ...: the broker passes the same properties "
             "(%r vs %r)" % (seen["plain"], seen["e2e"]))

    # --- refusals that say why ------------------------------------------------------------
    for binary, args, why in [
            (env.pub_bin, ["-t", "x", "-m", "y", "-D", "connect", "user-property", "a", "b"],
             "only PUBLISH properties"),
            (env.pub_bin, ["-t", "x", "-m", "y", "-D", "publish", "topic-alias", "3"],
             "bound into each envelope"),
            (env.pub_bin, ["-t", "x", "-m", "y", "-D", "publish", "payload-format-indicator",
                           "1"], "binary envelope"),
            (env.sub_bin, ["-t", "x", "-D", "subscribe", "user-property", "a", "b"], "plaintext"),
            (env.sub_bin, ["-t", "x", "--quiet"], "stderr"),
            (env.pub_bin, ["-t", "x", "-m", "y", "--unix", "/tmp/s"], "Paho"),
            (env.sub_bin, ["-t", "x", "--remove-retained"], "mosquitto_pub -r -n"),
            (env.sub_bin, ["-t", "x", "--pretty"], "jq"),
            (env.sub_bin, ["-t", "x", "-A", "127.0.0.1"], "Paho"),
            (env.pub_bin, ["-t", "x", "-m", "y", "--tls-engine", "e"], "Paho"),
            (env.sub_bin, ["-t", "x", "--will-qos", "1"], "--will-topic"),
            (env.pub_bin, ["-t", "x", "-m", "y", "--repeat", "0"], "--repeat")]:
        cp = h.run(env, "refuse", [binary] + args, check=False, timeout=10)
        err = cp.stderr.decode(errors="replace")
        c.expect(cp.returncode == 1 and why in err, "%s %s: exit 1 saying why ('%s' in %r)" % (
            os.path.basename(binary), " ".join(args), why, err[-200:]))
    for binary in (env.sub_bin, env.pub_bin):
        cp = h.run(env, "help", [binary, "--help"], timeout=10)
        out = cp.stdout.decode()
        for opt in ("-L URL", "-k ", "-c ", "-x ", "-d ", "--will-topic", "--tls-version"):
            c.expect(opt in out, "%s --help lists %s" % (os.path.basename(binary), opt))
    cp = h.run(env, "help", [env.sub_bin, "--help"], timeout=10)
    for opt in ("-F FORMAT", "-N ", "-T FILTER", "-R ", "--retained-only", "-U FILTER", "-E ",
                "-C COUNT", "-W TIME"):
        c.expect(opt in cp.stdout.decode(), "e2e-sub --help lists %s" % opt)


if __name__ == "__main__":
    h.main("cli-parity", body)
