#!/usr/bin/python3
"""Proxy 7: SIGHUP (enrollment and configuration changes) and SIGTERM drain.

e2e-proxy runs from a configuration file (dir, unmapped refuse, limits) plus
--cafile on the command line; a long-lived mosquitto_pub -l stays connected
through it the whole time. Checks:
  * enrollment while running: a subscriber "bob" started before he is
    enrolled is refused; `e2e-keytool enroll` + SIGHUP: bob receives the
    key within seconds and decrypts, the proxy keeps its PID and its
    publisher connections ("reloaded (N connection(s) kept)"), and the
    long-lived publisher's next message still arrives;
  * configuration change: with "unmapped refuse" a topic in no key scope is
    refused; the file is changed to "unmapped plaintext", SIGHUP, and the
    same publish now passes (as plaintext, logged as such), while
    publishes on sensors/# are still sealed and new connections still
    verify the broker (the --cafile given on the command line still holds);
  * a configuration file with an error + SIGHUP: logged, the running
    configuration is kept, the proxy keeps working;
  * SIGTERM with QoS 1 in flight (paho publisher streaming): the proxy
    exits 0 after "drain complete", and every message acknowledged to the
    publisher is received by the subscriber.
"""
import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxyharness as ph  # noqa: E402

h = ph.h


def write_conf(path, s, unmapped, extra=""):
    with open(path, "w") as f:
        f.write("# e2e-proxy test configuration\ndir %s\nunmapped %s\nmax-connections 100\n"
                "connect-timeout 5s\ndrain-timeout 10s\nlog-level info\n%s" % (
                    s.dir, unmapped, extra))


def body(env, c):
    broker = ph.Mosquitto(env)
    # Scope 0 given explicitly: topics outside both filters are unmapped.
    s = h.Sender(env, "edge", scopes=[(0, "default", ["default/#"]),
                                      (1, "telemetry", ["sensors/#"])])
    alice = h.Subscriber(env, "alice", trust=[s])
    bob = h.Subscriber(env, "bob", trust=[s])
    s.enroll(alice, ["telemetry"])
    conf = os.path.join(env.dir, "proxy.conf")
    write_conf(conf, s, "refuse")
    px = ph.Proxy(env, broker.addr(), ["--cafile", broker.pki["ca_crt"]], config=conf)
    raw = ph.RawSub(env, broker, name="raw-v")
    sa = h.start_sub(env, broker, alice, ["sensors/#"], name="sub-alice", qos=1,
                     args=["--state", "none"])
    c.require(sa.wait_err(h.EV_KEY, 15), "alice got the key")

    steady = h.Proc(env, "steady-pub", [ph.MOSQ_PUB, "-h", ph.LOCAL, "-p", str(px.port), "-q",
                                        "1", "-t", "sensors/steady", "-l", "-i", "steady"],
                    stdin=True)
    c.require(broker.wait_log(r"New client connected .* as steady ", 10),
              "long-lived publisher connected through the proxy")

    # --- enrollment while running -------------------------------------------
    sb = h.start_sub(env, broker, bob, ["sensors/#"], name="sub-bob", qos=1,
                     args=["--state", "none"])
    c.expect(sb.wait_err(h.EV_REFUSED, 10), "bob (not enrolled) is refused by the key service")
    t0 = time.monotonic()
    s.enroll(bob, ["telemetry"])
    px.send(signal.SIGHUP)
    c.expect(px.wait_err(r"SIGHUP: reloaded \(([1-9]\d*) connection\(s\) kept\)", 5),
             "SIGHUP: reloaded, publisher connections kept (%s)" % px.err_match(r"SIGHUP"))
    # bob asks again when a message he cannot open arrives, 5 s after the
    # refusal at the earliest (then 10 s, 20 s, ...): keep them coming.
    toks = []
    got_key = None
    while time.monotonic() - t0 < 10:
        tok = ph.token("steady")
        toks.append(tok)
        steady.write(tok + "\n")
        steady.flush()
        if sb.wait_err(h.EV_KEY, 0.5):
            got_key = time.monotonic() - t0
            break
    c.expect(got_key is not None, "bob received the key %s after enrollment (no restart)" % (
        "%.1f s" % got_key if got_key else "never (10 s)"))
    tok = ph.token("steady")
    steady.write(tok + "\n")
    steady.flush()
    c.expect(sb.wait_json(1, 10, pred=lambda o: h.payload_of(o) == tok.encode() and
                          h.verdict_of(o) == "OK"),
             "bob decrypts the long-lived publisher's next message")
    c.expect(sa.wait_json(1, 10, pred=lambda o: h.payload_of(o) == tok.encode()),
             "alice too: the connection made before SIGHUP still relays")
    c.expect(px.alive() and px.proc.err_match(r"relaying to") and
             len(px.proc.err_match(r"relaying to")) == 1, "same proxy process, not restarted")

    # --- configuration change -----------------------------------------------
    def unmapped_publish(tag):
        tok = ph.token(tag)
        cp = ph.mosq_pub(env, px, "other/x", tok, qos=1, cid="unmapped-" + tag, check=False)
        return tok, cp.returncode

    tok_refused, rc = unmapped_publish("before")
    c.expect(rc != 0 and px.wait_err(r"refused publish to 'other/x'.*no key scope", 3),
             "unmapped refuse: publish to other/x refused (rc %d)" % rc)
    write_conf(conf, s, "plaintext")
    since = time.monotonic()
    px.send(signal.SIGHUP)
    c.expect(px.wait_err(r"SIGHUP: reloaded", 5, since=since), "SIGHUP after the config change")
    tok_plain, rc = unmapped_publish("after")
    c.expect(rc == 0, "unmapped plaintext (after SIGHUP): publish to other/x accepted (rc %d)" %
             rc)
    c.expect(h.wait_until(lambda: ("other/x " + tok_plain) in raw.text(), 5) and
             px.wait_err(r"other/x' is in no scope: passed as PLAINTEXT", 3),
             "the broker got it as plaintext, and the proxy logged that")
    c.expect(("other/x " + tok_refused) not in raw.text(), "the refused one never reached it")
    tok = ph.token("sealed")
    cp = ph.mosq_pub(env, px, "sensors/after-hup", tok, qos=1, check=False)
    c.expect(cp.returncode == 0, "new connection after SIGHUP: broker still verified with the "
             "command-line --cafile (rc %d; %s)" % (cp.returncode, px.proc.tail(3)))
    c.expect(sa.wait_json(1, 10, pred=lambda o: h.payload_of(o) == tok.encode() and
                          h.verdict_of(o) == "OK") and tok not in raw.text(),
             "sensors/# still sealed after the reload")

    # --- broken configuration -----------------------------------------------
    with open(conf, "a") as f:
        f.write("no-such-option 1\n")
    since = time.monotonic()
    px.send(signal.SIGHUP)
    c.expect(px.wait_err(r"SIGHUP: configuration has errors; keeping the running one", 5,
                         since=since), "broken config: error logged, running config kept")
    tok_plain2, rc = unmapped_publish("kept")
    c.expect(px.alive() and rc == 0, "proxy alive and still on 'unmapped plaintext' (rc %d)" % rc)
    steady.close_stdin()
    steady.wait_exit(10)

    # --- SIGTERM drain with QoS 1 in flight ---------------------------------
    pub = ph.PahoPub(env, px.port, "drain-pub", inflight=50, reconnect=False)
    ids = ["d-%05d" % i for i in range(20000)]
    stop = threading.Event()

    def produce():
        for i, m in enumerate(ids):
            if stop.is_set():
                return
            pub.publish("sensors/drain", m, qos=1)
            if i % 100 == 99:
                time.sleep(0.005)
    t = threading.Thread(target=produce, daemon=True)
    t.start()
    c.require(h.wait_until(lambda: len(pub.acked_set()) >= 1000, 30),
              "stream under way (%d acknowledged)" % len(pub.acked_set()))
    # Freeze the broker so that QoS 1 messages are surely in flight (relayed,
    # not acknowledged) at SIGTERM, whatever the host's load: without it a
    # starved producer could have nothing in flight and the drain nothing
    # to complete. The broker resumes during the drain.
    os.kill(broker.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(0.7)   # acks already on their way arrive; the producer fills its window
        at_term = len(pub.acked_set())
        px.send(signal.SIGTERM)
        t_term = time.monotonic()
        c.expect(px.wait_err(r"SIGTERM: draining", 5), "SIGTERM: drain started")
        time.sleep(0.3)
        c.expect(px.alive(), "the proxy waits for the broker's acknowledgements while draining")
    finally:
        os.kill(broker.proc.pid, signal.SIGCONT)
    rc = px.proc.wait_exit(20)
    stop.set()
    c.expect(rc == 0, "SIGTERM: proxy exited 0 (rc %r) after %.1f s" % (
        rc, time.monotonic() - t_term))
    c.expect(px.err_match(r"SIGTERM: draining") and px.err_match(r"drain complete"),
             "drain logged and complete: %s" % [l for l in (px.err_match(r"drain"))])
    t.join(5)
    time.sleep(0.5)
    acked = pub.acked_set()
    pub.close()
    c.expect(len(acked) < len(ids), "SIGTERM came with the stream in progress (%d of %d acked)" %
             (len(acked), len(ids)))
    c.expect(len(acked) > at_term, "QoS 1 in flight at SIGTERM was completed during the drain "
             "(%d acknowledged at SIGTERM, %d at exit)" % (at_term, len(acked)))

    h.wait_until(lambda: acked <= set(ph.delivered(sa)), 15)
    lost = sorted(acked - set(ph.delivered(sa)))
    c.expect(not lost, "every message acknowledged to the publisher reached the subscriber "
             "(%d acked, %d lost: %s)" % (len(acked), len(lost), lost[:10]))


if __name__ == "__main__":
    h.main("proxy-signals", body)
