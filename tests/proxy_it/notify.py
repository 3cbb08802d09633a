#!/usr/bin/python3
"""Proxy 11: systemd service notification and journal log lines.

The test owns the NOTIFY_SOCKET: an AF_UNIX datagram socket in its temp dir,
read by a thread that stamps every datagram. e2e-proxy runs against a real
mosquitto with WATCHDOG_USEC=1000000 (systemd's WatchdogSec=1s). Checks:
  * the first datagram is READY=1 with a STATUS= line that says the key
    service is up, and the listener accepts connections when it arrives;
  * WATCHDOG=1 every ~0.5 s (half WATCHDOG_USEC; at least 6 in 4 s, no gap
    over 0.8 s);
  * SIGHUP: RELOADING=1 (with MONOTONIC_USEC) and then READY=1;
  * SIGTERM: STOPPING=1, exit status 0;
  * journal: with JOURNAL_STREAM naming the proxy's stderr (the device and
    inode of its pipe), lines are "<N>message": <6> for info, <4> for a
    refused publish (warning), and carry no timestamp; with JOURNAL_STREAM
    naming another file, the plain "TIME e2e-proxy LEVEL: message" lines;
  * --log-format json: every line is a JSON object with time, level,
    priority, program and message (a topic with quotes and a backslash
    survives escaping); a rotation (keytool rotate while running) is one
    line with event, sender, scope and epoch as fields; SIGHUP gives an
    event "reload" line.
"""
import json
import os
import re
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxyharness as ph  # noqa: E402

h = ph.h


class NotifySocket:
    def __init__(self, env):
        self.path = os.path.join(env.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.msgs = []            # (monotonic time, text)
        self.lock = threading.Lock()
        self.stop = False
        self.hook = None          # called with the text in the reader thread
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            text = data.decode(errors="replace")
            if self.hook:
                self.hook(text)
            with self.lock:
                self.msgs.append((time.monotonic(), text))

    def texts(self, since=0.0):
        with self.lock:
            return [(t, m) for t, m in self.msgs if t >= since]

    def wait(self, pred, timeout, since=0.0):
        return h.wait_until(lambda: any(pred(m) for _, m in self.texts(since)), timeout)

    def close(self):
        self.stop = True
        self.t.join(2)
        self.sock.close()


def fields(text):
    return dict(l.split("=", 1) for l in text.split("\n") if "=" in l)


def start_proxy(env, broker, s, name, extra_env, args=(), shell_journal=False):
    port = h.free_port()
    argv = [ph.proxy_bin(), "--listen", "%s:%d" % (ph.LOCAL, port), "--broker", broker.addr(),
            "--cafile", broker.pki["ca_crt"], "--dir", s.dir] + list(args)
    if shell_journal:
        # JOURNAL_STREAM as systemd sets it: DEV:INO of the stderr the
        # proxy gets (here the pipe the harness reads).
        argv = ["/bin/sh", "-c", 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) '
                'exec "$@"', "sh"] + argv
    p = h.Proc(env, name, argv, extra_env=extra_env)
    p.port = port
    return p


def body(env, c):
    broker = ph.Mosquitto(env)
    # Scope 0 given explicitly: topics outside both filters are refused.
    s = h.Sender(env, "edge", scopes=[(0, "default", ["default/#"]),
                                      (1, "telemetry", ["sensors/#"])])
    ns = NotifySocket(env)
    seen_at_ready = {}
    px = None

    def on_dgram(text):
        # At the moment READY=1 arrives: does the listener accept? (Whether
        # the key service was connected, READY's own STATUS says: the proxy
        # fills it from the state the key service's events set.)
        if "READY=1" in text and "ready" not in seen_at_ready:
            seen_at_ready["ready"] = True
            seen_at_ready["listen"] = bool(px and ph.port_open(px.port))
    ns.hook = on_dgram
    try:
        conf = os.path.join(env.dir, "notify.conf")
        with open(conf, "w") as f:
            f.write("metrics-listen 127.0.0.1:%d\n" % h.free_port())
        px = start_proxy(env, broker, s, "proxy-notify", {
            "NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "1000000",
            "JOURNAL_STREAM": "1:1"},   # not its stderr: plain lines
            args=["--config", conf])
        c.require(ns.wait(lambda m: "READY=1" in m, 15), "READY=1 received:\n" + px.tail())
        first = ns.texts()[0][1]
        c.expect("READY=1" in first and "STATUS=" in first,
                 "first notification is READY=1 with STATUS (%r)" % first)
        c.expect(re.search(r"STATUS=.*connection.*key service up", first) is not None,
                 "STATUS has live figures (%r)" % fields(first).get("STATUS"))
        c.expect("key service up" in fields(first).get("STATUS", "") and
                 px.wait_err(r"key service connected", 2),
                 "READY=1 only after the key service connected (its STATUS says so)")
        c.expect(seen_at_ready.get("listen"), "listener accepts when READY=1 arrives")

        # Watchdog: half of WATCHDOG_USEC.
        t0 = time.monotonic()
        time.sleep(4.0)
        pings = [t for t, m in ns.texts(t0) if "WATCHDOG=1" in m]
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        c.expect(len(pings) >= 6 and gaps and max(gaps) < 0.8,
                 "WATCHDOG=1 about every 0.5 s: %d in 4 s, largest gap %.2f s" % (
                     len(pings), max(gaps) if gaps else -1))
        c.expect(px.wait_err(r"systemd watchdog: every 500 ms", 1), "watchdog interval logged")

        # SIGHUP: RELOADING=1 then READY=1 (and a changed metrics-listen is
        # reported as needing a restart, not silently ignored).
        with open(conf, "w") as f:
            f.write("metrics-listen 127.0.0.1:%d\n" % h.free_port())
        t1 = time.monotonic()
        px.p.send_signal(signal.SIGHUP)
        c.expect(ns.wait(lambda m: "READY=1" in m, 5, since=t1), "READY=1 after SIGHUP")
        seq = [m for _, m in ns.texts(t1) if "RELOADING=1" in m or "READY=1" in m]
        c.expect(len(seq) >= 2 and "RELOADING=1" in seq[0] and "READY=1" in seq[1],
                 "SIGHUP: RELOADING=1, then READY=1 (%r)" % seq[:2])
        c.expect(seq and re.search(r"MONOTONIC_USEC=\d+", seq[0]) is not None,
                 "RELOADING=1 carries MONOTONIC_USEC")
        c.expect(px.wait_err(r"warning: SIGHUP: metrics-listen changed: takes effect at the next "
                             r"restart", 3), "changed metrics-listen: warned at SIGHUP")

        # Plain lines: JOURNAL_STREAM names some other file.
        lines = [l for _, l in px.err_lines]
        c.expect(any(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z e2e-proxy info: relaying to",
                              l) for l in lines),
                 "stderr not the journal: timestamped lines (%r)" % lines[:3])
        c.expect(not any(l.startswith("<") for l in lines), "no <N> prefixes off the journal")

        # SIGTERM: STOPPING=1 and a clean exit.
        t2 = time.monotonic()
        px.p.send_signal(signal.SIGTERM)
        c.expect(ns.wait(lambda m: "STOPPING=1" in m, 5, since=t2), "STOPPING=1 after SIGTERM")
        c.expect(px.wait_exit(15) == 0, "exit status 0 after SIGTERM (%s)" % px.rc())

        # Journal prefixes: JOURNAL_STREAM is its stderr.
        pj = start_proxy(env, broker, s, "proxy-journal", {}, shell_journal=True)
        c.require(pj.wait_err(r"relaying to", 15), "journal proxy ready:\n" + pj.tail())
        ph.mosq_pub(env, pj, "outside/scope", "x", qos=0, check=False)
        c.expect(pj.wait_err(r"^<4>.*refused publish to 'outside/scope'", 5),
                 "journal: <4> on a refused publish (warning)")
        jl = [l for _, l in pj.err_lines]
        c.expect(any(l.startswith("<6>relaying to") for l in jl), "journal: <6>relaying to")
        c.expect(all(re.match(r"<[0-7]>", l) for l in jl) and
                 not any(re.match(r"<\d>\d{4}-", l) for l in jl),
                 "journal: every line has a <N> prefix and no timestamp (%r)" % jl[:4])
        pj.stop()

        # JSON lines.
        pjs = start_proxy(env, broker, s, "proxy-json", {}, args=["--log-format", "json"])
        c.require(pjs.wait_err(r"relaying to", 15), "json proxy ready:\n" + pjs.tail())
        ph.mosq_pub(env, pjs, 'q"uote\\d/x', "x", qos=0, check=False)
        c.expect(pjs.wait_err(r"refused publish", 5), "json: refused publish logged")
        s.rotate("telemetry")
        c.expect(pjs.wait_err(r'"event":"rotation"', 5), "json: rotation logged")
        pjs.p.send_signal(signal.SIGHUP)
        c.expect(pjs.wait_err(r'"event":"reload"', 5), "json: reload logged")
        objs, bad = [], []
        for _, l in pjs.err_lines:
            try:
                objs.append(json.loads(l))
            except ValueError:
                bad.append(l)
        c.expect(not bad and objs, "json: every line parses (%d objects, bad %r)" % (
            len(objs), bad[:2]))
        c.expect(all(set(o) >= {"time", "level", "priority", "program", "message"} and
                     o["program"] == "e2e-proxy" for o in objs), "json: fields on every line")
        c.expect(any(o["level"] == "warning" and o["priority"] == 4 and
                     "'q\"uote\\d/x'" in o["message"] for o in objs),
                 "json: the refusal with the topic's quote and backslash intact")
        rot = [o for o in objs if o.get("event") == "rotation"]
        c.expect(len(rot) == 1 and rot[0].get("sender") == "%08x" % s.sender_id and
                 rot[0].get("scope") == 1 and rot[0].get("epoch") == s.current_epoch(1),
                 "json: the rotation once, with sender, scope and epoch as fields (%r)" % rot)
        pjs.stop()
    finally:
        ns.close()


if __name__ == "__main__":
    h.main("proxy-notify", body)
