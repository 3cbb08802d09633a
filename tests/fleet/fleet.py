#!/usr/bin/python3
"""Fleet: 200 subscribers enrolled by one-time tickets against 5 e2e-proxy
senders under one authority, on a real mosquitto (issue 18 item 5).

  1. `e2e-keytool authority init`; 5 sender directories, each with a sender
     credential (`authority issue --sender`) for its own topics and the
     authority in `authorities`; 5 real e2e-proxy; a real e2e-authority;
  2. 200 tickets (`e2e-keytool ticket`), each redeemed by a real
     `e2e-sub --enroll TOKEN -E` (8 at a time): no public line copied;
  3. the 200 subscribers run as libe2e-client sessions in one process
     (tests/fleet/fleet_subs.c; 200 e2e-sub processes would need ~2 GB),
     trusting the proxies only through `authorities` + `credential`;
  4. phase a: every proxy publishes; every subscriber decrypts everything;
  5. `e2e-keytool authority revoke` of subscriber 0, SIGHUP to e2e-authority
     (retained list on C/authority/<fp>): every proxy rotates scope 1;
  6. phase b: the 199 others decrypt everything, subscriber 0 nothing.
"""
import os
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, "..", "proxy_it"))
import proxyharness as ph  # noqa: E402

h = ph.h
N_SUBS = int(os.environ.get("E2E_FLEET_SUBS_N", "200"))
N_PROXIES = 5
PER_PROXY = 4                      # messages per proxy per phase
PARALLEL = 8


def epochs(env, sdir):
    cp = h.run(env, "status", [env.keytool, "status", "--dir", sdir])
    m = re.search(r"scope 1 \S+\n((?:  epoch.*\n)+)", cp.stdout.decode())
    return [int(x) for x in re.findall(r"epoch (\d+)\s+current", m.group(1))] if m else []


def spread(rep, key):
    """{value: number of subscribers} of one report column."""
    out = {}
    for r in rep.values():
        out[r[key]] = out.get(r[key], 0) + 1
    return dict(sorted(out.items()))


class FleetSubs:
    """tests/fleet/fleet_subs.c driven over stdin/stdout."""

    def __init__(self, env, broker, dirs):
        argv = [os.environ["E2E_FLEET_SUBS"], broker.host, str(broker.port),
                broker.pki["ca_crt"], "plant/#"] + dirs
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=open(os.path.join(env.dir, "fleet_subs.stderr"), "w"),
                                  cwd=env.dir, text=True)
        env.clients.append(self)
        self.ready = self._line(120)

    def _line(self, timeout):
        out = []
        t = threading.Thread(target=lambda: out.append(self.p.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        return out[0].strip() if out else None

    def report(self):
        self.p.stdin.write("report\n")
        self.p.stdin.flush()
        rows = {}
        while True:
            line = self._line(30)
            if line is None or line == "end":
                return rows
            f = [int(x) for x in line.split()]
            rows[f[0]] = {"a": f[1], "b": f[2], "anomalies": f[4], "refused": f[5],
                          "keys": f[6], "timeouts": f[7], "rejected": f[8], "events": f[9]}

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("quit\n")
                self.p.stdin.flush()
                self.p.wait(30)
            except Exception:
                self.p.kill()


def body(env, c):
    broker = h.Broker(env)
    k = env.keytool
    adir = os.path.join(env.dir, "authority")
    apub = h.run(env, "init", [k, "authority", "init", "--dir", adir]).stdout.decode().strip()
    c.require(apub.startswith("e2e1 "), "authority made: %s" % apub[:20])

    proxies, sdirs = [], []
    for i in range(N_PROXIES):
        sdir = os.path.join(env.dir, "sender%d" % i)
        spub = h.run(env, "genkey%d" % i, [k, "genkey", "--dir", sdir]).stdout.decode() \
            .strip().splitlines()[-1]
        with open(os.path.join(sdir, "scopes"), "w") as f:
            f.write("scope 1 data plant/%d/#\n" % i)
        with open(os.path.join(sdir, "authorities"), "w") as f:
            f.write(apub + "\n")
        h.run(env, "issue%d" % i, [k, "authority", "issue", "--dir", adir, "--sender", spub,
                                   "--filter", "1:plant/%d/#" % i, "--ttl", "1d", "-o",
                                   os.path.join(sdir, "credential")])
        proxies.append(ph.Proxy(env, "%s:%d" % (broker.host, broker.port),
                                ["--cafile", broker.pki["ca_crt"], "--dir", sdir,
                                 "--summary-interval", "2s"], name="proxy%d" % i, stats=False))
        sdirs.append(sdir)
    auth = h.Proc(env, "authority", [os.environ["E2E_AUTHORITY"], "--dir", adir] +
                  broker.tls_args())
    c.require(auth.wait_err(r"serving redemptions", 10), "e2e-authority serving")

    # 200 tickets, each redeemed once by a real e2e-sub --enroll.
    t0 = time.monotonic()
    tokens = [h.run(env, "ticket", [k, "ticket", "--dir", adir, "--scope", "1", "--ttl", "1h"]
                    ).stdout.decode().strip() for _ in range(N_SUBS)]
    dirs = [os.path.join(env.dir, "sub%03d" % i) for i in range(N_SUBS)]
    enrolled = [False] * N_SUBS

    def enroll(i):
        cp = subprocess.run([env.sub_bin] + broker.tls_args() + [
            "--dir", dirs[i], "--enroll", tokens[i], "-t", "plant/#", "-E"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, cwd=env.dir)
        enrolled[i] = b"enrolled: " in cp.stderr and os.path.exists(
            os.path.join(dirs[i], "credential"))
        if not enrolled[i]:
            h.log("enroll %d failed: %s" % (i, cp.stderr.decode(errors="replace")))

    for start in range(0, N_SUBS, PARALLEL):
        ts = [threading.Thread(target=enroll, args=(i,))
              for i in range(start, min(N_SUBS, start + PARALLEL))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    c.require(all(enrolled), "%d of %d subscribers enrolled by ticket with e2e-sub --enroll "
              "(%.1f s)" % (sum(enrolled), N_SUBS, time.monotonic() - t0))

    subs = FleetSubs(env, broker, dirs)
    c.require(subs.ready == "ready %d" % N_SUBS, "%d subscriber sessions connected (%s)" % (
        N_SUBS, subs.ready))

    pubs = [ph.PahoPub(env, p.port, "fleetpub%d" % i) for i, p in enumerate(proxies)]

    def phase(letter):
        for n in range(PER_PROXY):
            for i, pb in enumerate(pubs):
                pb.publish("plant/%d/t%d" % (i, n), ("%s-%d-%d" % (letter, i, n)).encode())
        c.require(h.wait_until(lambda: all(len(pb.acked_set()) >= PER_PROXY *
                                           (1 if letter == "a" else 2) for pb in pubs), 30),
                  "phase %s: every proxy's messages acknowledged" % letter)

    want = N_PROXIES * PER_PROXY
    phase("a")
    h.wait_until(lambda: all(r["a"] >= want for r in subs.report().values()), 90, step=2)
    rep = subs.report()
    full = sum(1 for r in rep.values() if r["a"] == want)
    c.expect(full == N_SUBS, "phase a: %d of %d subscribers decrypted all %d messages of the "
             "%d proxies (decrypted: %s; anomalies: %s; keys received: %s)" % (
                 full, N_SUBS, want, N_PROXIES, spread(rep, "a"), spread(rep, "anomalies"),
                 spread(rep, "keys")))

    # Revoke subscriber 0 at the authority; the service publishes the list.
    before = [epochs(env, d) for d in sdirs]
    pub0 = h.run(env, "pub0", [k, "pubkey", os.path.join(dirs[0], "identity.key")]
                 ).stdout.decode().strip()
    t_rev = time.monotonic()
    h.run(env, "revoke", [k, "authority", "revoke", "--dir", adir, pub0])
    auth.p.send_signal(1)   # SIGHUP: publish the new list, retained
    rotated = h.wait_until(lambda: all(epochs(env, d) and before[i] and
                                       max(epochs(env, d)) > max(before[i])
                                       for i, d in enumerate(sdirs)), 30)
    c.expect(rotated, "every proxy rotated scope 1 after the revocation (%.1f s): %s -> %s" % (
        time.monotonic() - t_rev, before, [epochs(env, d) for d in sdirs]))
    time.sleep(2)
    phase("b")
    others = lambda rep: [r for i, r in rep.items() if i != 0]  # noqa: E731
    h.wait_until(lambda: all(r["b"] >= want for r in others(subs.report())), 90, step=2)
    time.sleep(3)
    rep = subs.report()
    full = sum(1 for r in others(rep) if r["b"] == want)
    c.expect(full == N_SUBS - 1, "phase b: %d of %d remaining subscribers decrypted all %d "
             "new messages (decrypted: %s; anomalies: %s; keys received: %s; key timeouts: %s; "
             "control rejected: %s; other events: %s)" % (
                 full, N_SUBS - 1, want, spread(rep, "b"), spread(rep, "anomalies"),
                 spread(rep, "keys"), spread(rep, "timeouts"), spread(rep, "rejected"),
                 spread(rep, "events")))
    c.expect(rep[0]["b"] == 0, "the revoked subscriber decrypted nothing new (%d of %d; %d "
             "refusals)" % (rep[0]["b"], want, rep[0]["refused"]))
    c.expect(rep[0]["a"] == want, "before the revocation it had decrypted all %d" % want)
    h.promise_rows("fleet-200", [
        ("18.5 a fleet is enrolled by tickets and a revocation reaches every sender (SPEC 13, "
         "14)", "revoked member", True,
         "%d subscribers enrolled by tickets, %d proxies trusted through one authority; one "
         "subscriber revoked at the authority" % (N_SUBS, N_PROXIES),
         "every proxy rotated: %s; revoked decrypted %d new, others %d of %d" % (
             "yes" if rotated else "no", rep[0]["b"], full, N_SUBS - 1),
         rotated and rep[0]["b"] == 0 and full == N_SUBS - 1)])


if __name__ == "__main__":
    h.main("fleet-200", body)
