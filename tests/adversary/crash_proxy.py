#!/usr/bin/python3
"""Crash and restart safety of e2e-proxy (SPEC 4, 6; security.md sec. 3).

  1. kill -9 under QoS 1 load, 20 cycles at seeded random points: a paho
     publisher with a persistent session resends what was not acknowledged.
     Every envelope the proxy ever sent is captured by the Mitm in front of
     the broker: no (sender, scope, epoch, run, counter) tuple appears twice
     with different content (no nonce reuse), every restart draws a new run
     and starts above the counters used before (reservation); the subscriber
     gets every message, and no envelope is delivered twice.
  2. Restoring an older copy of the state directory: counters are reused,
     the run differs, so no nonce repeats (SPEC 4.3).
  3. Damaged files at start (txstate, keys, identity.key: truncated,
     bit-flipped, missing, group-readable): a clear error, or a start that
     reuses no nonce.
  4. E2E_FAILPOINT crashes at every stage of the atomic write, during counter
     reservation (first seal, and the reservation of a new epoch after a
     rotation): afterwards the proxy starts, every envelope it ever sent still
     opens with the keys on disk, and no nonce repeats.
Writes section 'c-crash-proxy' of the security-tests report (advharness.DOC).
"""
import collections
import os
import random
import shutil
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import advharness as ah  # noqa: E402

h, mm, ph = ah.h, ah.mm, ah.ph
CYCLES = 20
N = 4000
STAGES = ("write:before_fsync", "write:before_rename", "write:before_dirsync", "write:done")


def envelopes(site):
    """Every data envelope the proxy sent to the broker: [(topic, bytes)]."""
    out = []
    for link in list(site.pm.links):
        if link.client_id and link.client_id.startswith("e2e-proxy"):
            continue
        out += [(p.topic.decode(), bytes(p.payload)) for _t, p in list(link.arrived[mm.UP])
                if not p.topic.startswith(b"e2e/")]
    return out


def nonce_report(envs):
    """(tuples reused with different content, runs in order of first use)."""
    seen, reused, runs = {}, [], []
    for topic, e in envs:
        hd = h.env_parse(e)
        if not hd:
            continue
        k = (hd["sender"], hd["scope"], hd["epoch"], hd["run"], hd["counter"])
        if k in seen and seen[k] != (topic, e):
            reused.append(k)
        seen[k] = (topic, e)
        if hd["run"] not in [r for r, _ in runs]:
            runs.append((hd["run"], hd["counter"]))
    return reused, runs


def unopened(site, envs):
    return sum(1 for t, e in envs if ph.env_open(site.sender, t, e) is None)


def body(env, c):
    rng = random.Random(ah.SEED)
    site = ah.Site(env, c, scopes=((1, "telemetry", ["k/#"]),), summary="10s")
    ident = site.subscriber("subK")
    px = site.start_proxy()
    port = px.port
    sub = site.start_sub(ident, ["k/#"], "subK", args=["--state", "none"])
    c.require(sub.wait_err(h.EV_KEY, 15), "subscriber received the key")
    rows = []

    # ---- 1. kill -9 under load ---------------------------------------------------
    pub = ph.PahoPub(env, port, "loadgen", clean_session=False, inflight=20)
    ids = ["k-%05d" % i for i in range(N)]
    stop = threading.Event()

    def produce():
        for i, m in enumerate(ids):
            if stop.is_set():
                return
            pub.publish("k/load", m, qos=1)
            if i % 40 == 39:
                time.sleep(0.01)
    t = threading.Thread(target=produce, daemon=True)
    t.start()
    kills = 0
    for cyc in range(CYCLES):
        time.sleep(rng.uniform(0.02, 0.15))
        site.proxy.stop(signal.SIGKILL)
        kills += 1
        site.start_proxy(name="proxy-%d" % (cyc + 1), port=port)
    done = h.wait_until(lambda: len(pub.acked_set()) >= N, 120)
    stop.set()
    t.join(5)
    c.expect(done, "publisher: all %d acknowledged across %d kills (%d)" % (
        N, kills, len(pub.acked_set())))
    h.wait_until(lambda: {h.payload_of(o) for o in sub.messages() if h.verdict_of(o) in
                          h.DELIVERING} >= {m.encode() for m in ids}, 30)
    envs = [(tp, e) for tp, e in envelopes(site) if tp == "k/load"]
    reused, runs = nonce_report(envs)
    per_id = collections.Counter(h.payload_of(o) for o in sub.messages()
                                 if h.verdict_of(o) in h.DELIVERING)
    sealed = collections.Counter(ph.env_open(site.sender, tp, e) for tp, e in envs)
    missing = [m for m in ids if per_id[m.encode()] == 0]
    over = [m for m, n in per_id.items() if n > sealed[m]]
    resent = sum(1 for m, n in per_id.items() if n > 1)
    by_run = collections.defaultdict(list)
    for _t, e in envs:
        by_run[h.env_parse(e)["run"]].append(h.env_parse(e)["counter"])
    rising = all(min(by_run[runs[i + 1][0]]) > max(by_run[runs[i][0]])
                 for i in range(len(runs) - 1))
    verdicts = collections.Counter(h.verdict_of(o) for o in sub.messages())
    ok = done and not reused and not missing and not over and len(runs) >= 2 and rising and \
        set(verdicts) <= {"OK", "GAP", "LATE", "DUPLICATE"}
    c.expect(not reused, "no nonce reuse among %d envelopes (%d tuples repeated: %s)" % (
        len(envs), len(reused), reused[:3]))
    c.expect(len(runs) >= 2 and rising, "every start that sealed drew a new run (%d runs for "
             "%d starts) and its counters rose above all earlier ones: %s" % (
                 len(runs), kills + 1, rising))
    c.expect(not missing, "every message delivered (%d missing: %s)" % (len(missing),
                                                                        missing[:5]))
    c.expect(not over, "no envelope delivered twice (ids delivered more often than sealed: %s)"
             % over[:5])
    h.log("ids delivered twice because the publisher resent them after a kill and the restarted "
          "proxy sealed them anew (QoS 1 at least once on the publisher hop): %d" % resent)
    rows.append(("kill -9 under QoS 1 load, %d cycles at random points" % kills, N,
                 "no nonce reuse, new run and higher counters per start, every message "
                 "delivered, no envelope delivered twice",
                 "%d envelopes, %d runs, %d tuples reused, %d missing; %s; %d ids resent by the "
                 "publisher and sealed anew" % (len(envs), len(runs), len(reused), len(missing),
                                                ah.fmt_tally(verdicts), resent), ah.yes(ok)))
    pub.close()

    # ---- 2. restore an older copy of the state directory -------------------------
    def burst(topic, n, prefix):
        p = ah.Traffic(env, port, [topic], n, clients=1, prefix=prefix)
        p.run()
        return p.wait_acked(8)

    backup = os.path.join(env.dir, "backup")
    site.proxy.stop()
    shutil.copytree(site.sender.dir, backup)
    site.start_proxy(name="proxy-before-restore", port=port)
    burst("k/restore", 100, "rs1")
    site.proxy.stop()
    shutil.rmtree(site.sender.dir)
    shutil.copytree(backup, site.sender.dir)
    site.start_proxy(name="proxy-restored", port=port)
    burst("k/restore", 100, "rs2")
    envs_r = [(tp, e) for tp, e in envelopes(site) if tp == "k/restore"]
    reused, runs = nonce_report(envs_r)
    cnt = [set(h.env_parse(e)["counter"] for _t, e in envs_r if h.env_parse(e)["run"] == r)
           for r, _ in runs]
    overlap = len(runs) == 2 and bool(cnt[0] & cnt[1])
    ok = not reused and len(runs) == 2
    c.expect(ok, "restored state directory: counters reused (%s), runs differ (%d runs), "
             "no nonce repeats (%d)" % (overlap, len(runs), len(reused)))
    rows.append(("restore an older copy of the proxy's state directory", len(envs_r),
                 "counters may repeat, the run differs: no nonce reuse",
                 "%d runs, counters overlap: %s, %d tuples reused" % (
                     len(runs), "yes" if overlap else "no", len(reused)), ah.yes(ok)))

    # ---- 3. damaged files at start -----------------------------------------------
    def damaged(name, fn):
        site.proxy.stop()
        saved = os.path.join(env.dir, "saved-" + name)
        shutil.rmtree(saved, ignore_errors=True)
        shutil.copytree(site.sender.dir, saved)
        before = envelopes(site)
        keys0 = {(sc, ep): k for sc, ep, _c, _na, k in site.sender.keys()}
        fn(site.sender.dir)
        p = ph.Proxy(env, site.pm.addr(), site.proxy_args, name="proxy-" + name, port=port,
                     stats=False, ready=False)
        rc = p.proc.wait_exit(4)
        if rc is None and p.proc.err_match("relaying to"):
            site.proxy = p
            burst("k/damaged", 5, "dm-" + name)
            after = envelopes(site)[len(before):]
            reused, _runs = nonce_report(before + after)
            old = collections.defaultdict(int)
            for _t, e in before:
                hd = h.env_parse(e)
                if hd:
                    k = (hd["scope"], hd["epoch"])
                    old[k] = max(old[k], hd["counter"])
            again = [h.env_parse(e) for _t, e in after if h.env_parse(e) and
                     h.env_parse(e)["counter"] <= old.get((h.env_parse(e)["scope"],
                                                           h.env_parse(e)["epoch"]), 0)]
            keys1 = {(sc, ep): k for sc, ep, _c, _na, k in site.sender.keys()}
            rekeyed = sorted(k for k in keys1 if k in keys0 and keys1[k] != keys0[k])
            outcome = "started; %d tuples reused; %d envelopes reuse counters of the same key " \
                "(only the run differs)" % (len(reused), len(again))
            if rekeyed:
                outcome += "; NEW KEY under an existing (scope, epoch) %s" % rekeyed
            # A lost txstate record no longer restarts its key at counter 0
            # (SPEC 6.2): no counter of a key is sealed twice, in any case.
            ok = not reused and not rekeyed and not again
        else:
            p.proc.stop()
            err = [l for l in p.proc.stderr_text().splitlines() if "error" in l.lower() or
                   "cannot" in l.lower() or "refus" in l.lower()]
            outcome = "exit %s: %s" % (rc, (err or ["(no message)"])[-1][-110:])
            ok = rc not in (None, 0) and bool(err)
        c.expect(ok, "damaged %s: %s" % (name, outcome))
        rows.append(("proxy start with %s" % name, "-", "clear error, or a start that reuses "
                     "no nonce", outcome, ah.yes(ok)))
        if site.proxy.alive():
            site.proxy.stop()
        # Back to the saved copy, keeping the txstate of a proxy that ran, as
        # docs/operations.md says to restore: it records the epochs that run
        # issued (an older txstate would let the next case issue them again).
        ran = os.path.join(env.dir, "txstate-ran-" + name)
        kept = rc is None and os.path.exists(os.path.join(site.sender.dir, "txstate"))
        if kept:
            shutil.copy2(os.path.join(site.sender.dir, "txstate"), ran)
        shutil.rmtree(site.sender.dir)
        shutil.copytree(saved, site.sender.dir)
        if kept:
            shutil.copy2(ran, os.path.join(site.sender.dir, "txstate"))
        site.start_proxy(name="proxy-after-" + name, port=port)

    def trunc(f, n):
        return lambda d: os.truncate(os.path.join(d, f), n)

    def flip(f, off):
        def go(d):
            p = os.path.join(d, f)
            b = bytearray(open(p, "rb").read())
            b[off % len(b)] ^= 0x10
            open(p, "wb").write(bytes(b))
        return go

    damaged("txstate truncated", trunc("txstate", 30))
    damaged("txstate bit-flipped", flip("txstate", 20))
    damaged("txstate missing", lambda d: os.unlink(os.path.join(d, "txstate")))
    damaged("keys truncated", trunc("keys", 20))
    damaged("keys bit-flipped", flip("keys", -10))
    damaged("identity.key truncated", trunc("identity.key", 30))
    damaged("identity.key group-readable", lambda d: os.chmod(os.path.join(d, "identity.key"),
                                                              0o640))

    # ---- 4. failpoints in the atomic writer --------------------------------------
    fp_rows = collections.OrderedDict()
    fp_start = len(envelopes(site))
    # The crash points exist only in a build with meson -Dfailpoints=true
    # (scripts/test); without them this section would prove nothing: fail.
    have_fp = c.expect(os.environ.get("E2E_FAILPOINTS") == "1",
                       "this build has the crash points (meson -Dfailpoints=true)")
    for stage in STAGES if have_fp else ():
        for n in (1, 2):
            site.proxy.stop()
            argv = [ph.proxy_bin(), "--listen", "127.0.0.1:%d" % port, "--broker",
                    site.pm.addr()] + site.proxy_args
            p = h.Proc(env, "proxy-fp", argv, extra_env={"E2E_FAILPOINT": "%s:%d" % (stage, n)})
            h.wait_until(lambda: p.err_match("relaying to") or not p.alive(), 5)
            if p.alive():
                try:
                    ppub = ph.PahoPub(env, port, "fp%s%d" % (stage[6:9], n), reconnect=False)
                    ppub.publish("k/fp", "a", qos=1)
                    h.run(env, "keytool-rotate", [env.keytool, "rotate", "--dir",
                                                  site.sender.dir])
                    time.sleep(1.3)
                    ppub.publish("k/fp", "b", qos=1)
                except h.TestFailure:
                    pass
                h.wait_until(lambda: not p.alive(), 1.5)
            rc = p.rc()
            if rc is None:
                p.stop(signal.SIGKILL)
            site.start_proxy(name="proxy-after-fp", port=port)
            burst("k/fp", 5, "fpafter")
            all_env = envelopes(site)
            reused, _ = nonce_report(all_env)
            lost = unopened(site, all_env[fp_start:])
            ok = site.proxy.alive() and not reused and lost == 0
            fp_rows.setdefault(stage, []).append((n, rc, ok, len(reused), lost))
            c.expect(ok, "failpoint %s:%d (proxy exit %s): restart works, %d tuples reused, %d "
                     "envelopes no longer open" % (stage, n, rc, len(reused), lost))
    for stage, rs in fp_rows.items():
        rows.append(("E2E_FAILPOINT=%s:1..2 (first reservation; new epoch's reservation "
                     "after a rotation)" % stage, "-", "restart works; every envelope sent still opens; "
                     "no nonce reuse", "; ".join("n=%d exit %s, reused %d, unopenable %d" % (
                         n, rc, ru, lo) for n, rc, _ok, ru, lo in rs),
                     ah.yes(all(r[2] for r in rs) and any(r[1] == 86 for r in rs))))
        c.expect(any(r[1] == 86 for r in rs), "failpoint %s was reached (exit 86)" % stage)
    ah.doc_section("c-crash-proxy", "Crash and restart: e2e-proxy", """
A paho publisher (persistent session, QoS 1) streams through e2e-proxy; the man in the middle
in front of the broker captures every envelope the proxy ever sent. A nonce is the envelope
header, so "reused" counts (sender, scope, epoch, run, counter) tuples seen with different
content. Failpoints end the process with exit 86 at the chosen stage of libe2e's atomic file
writer (temp file, fsync, rename, directory fsync).""", rows)


if __name__ == "__main__":
    h.main("adversary-crash-proxy", body)
