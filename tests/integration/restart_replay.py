#!/usr/bin/python3
"""Integration 6: replay after a subscriber restart (persisted windows).

e2e-sub --state FILE receives N messages on two topics and stops (SIGTERM:
state saved). The adversary, which recorded every envelope, replays them
all (exact bytes, same topics, retain=false) while a new e2e-sub with the
same --state runs. Expected: every replay is DUPLICATE or TOO_OLD (shown
with --show-all --json), none OK/GAP/LATE; fresh messages afterwards are
delivered OK with the next sequence numbers (the state is not just blocking
everything). A second e2e-sub on the same state file is refused (one
process per state file) and changes nothing. A control run without state shows what the replays would do
to a subscriber that forgot (logged, informative).
"""
import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TOPICS = ["rs/a", "rs/b"]
N = 20          # per topic
M = 5           # fresh messages per topic after the replay


def body(env, c):
    broker = h.Broker(env)
    adv = h.Adversary(env, broker)
    s = h.Sender(env, "site")
    z = h.Subscriber(env, "zoe", trust=[s])
    s.enroll(z, ["default"])
    state = os.path.join(z.dir, "replay.state")

    pubs = {t: h.start_pub_lines(env, broker, s, t, name="pub-" + t.replace("/", "-"))
            for t in TOPICS[:1]}
    c.require(adv.probe_key_service(s, 10) is not None, "e2e-pub key service up")
    z1 = h.start_sub(env, broker, z, ["rs/#"], name="z-run1", args=["--state", state])
    c.require(z1.wait_err(h.EV_KEY, 10), "run 1 received the key")
    # Two streams, from two publisher runs on the same sender directory.
    pubs[TOPICS[0]].write("".join("a%d\n" % i for i in range(N)))
    pubs[TOPICS[0]].flush()
    c.expect(z1.wait_json(N, 10) >= N, "run 1 received the %d messages of %s" % (N, TOPICS[0]))
    c.expect(h.finish_pub(pubs[TOPICS[0]], 20) == 0, "publisher of %s exited 0" % TOPICS[0])
    pb = h.start_pub_lines(env, broker, s, TOPICS[1], name="pub-b")
    c.require(adv.probe_key_service(s, 10) is not None, "second e2e-pub key service up")
    pb.write("".join("b%d\n" % i for i in range(N)))
    pb.flush()
    c.expect(z1.wait_json(2 * N, 10) >= 2 * N, "run 1 received the %d messages of %s" % (
        N, TOPICS[1]))
    time.sleep(0.3)
    rc1 = z1.stop()
    c.expect(rc1 == 0, "run 1 exits 0 on SIGTERM (rc %r)" % rc1)
    c.expect(os.path.exists(state), "run 1 wrote its state file %s" % state)

    # A start that fails changes nothing (SPEC 6.3): a --window other than
    # the saved one, or a corrupt file, is refused naming the file, which
    # stays byte for byte as it was (it used to be overwritten, empty).
    def sha(path):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    before = sha(state)
    cp = h.run(env, "z-window", [env.sub_bin] + broker.tls_args() + [
        "--dir", z.dir, "--state", state, "--window", "2048", "-t", "rs/#", "-W", "2"],
        check=False)
    err = cp.stderr.decode(errors="replace")
    c.expect(cp.returncode != 0 and state in err and "window" in err,
             "--window 2048 against a state saved with 1024: refused naming the file and the "
             "window (rc %d): %s" % (cp.returncode, err.strip()))
    c.expect(sha(state) == before, "the state file is unchanged (sha256) after that failed start")
    bad = state + ".corrupt"
    with open(state, "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0x40
    with open(bad, "wb") as f:
        f.write(data)
    os.chmod(bad, 0o600)
    bad_sha = sha(bad)
    cp = h.run(env, "z-corrupt", [env.sub_bin] + broker.tls_args() + [
        "--dir", z.dir, "--state", bad, "-t", "rs/#", "-W", "2"], check=False)
    err = cp.stderr.decode(errors="replace")
    c.expect(cp.returncode != 0 and bad in err and "corrupt" in err,
             "a corrupt state file is refused naming it (rc %d): %s" % (cp.returncode,
                                                                       err.strip()))
    c.expect(sha(bad) == bad_sha, "the corrupt state file is left as it was (sha256)")
    c.expect(sha(state) == before, "the good state file is still unchanged")

    # One owner per sender directory: pb (e2e-pub -l) holds it.
    cp = h.run(env, "pub-second", [env.pub_bin] + broker.tls_args() + [
        "--dir", s.dir, "-t", TOPICS[1], "-m", "second owner"], check=False)
    err = cp.stderr.decode(errors="replace")
    c.expect(cp.returncode != 0 and ("in use by process %d" % pb.pid) in err,
             "a second e2e-pub on the running one's --dir refuses naming pid %d (rc %d): %s" % (
                 pb.pid, cp.returncode, err.strip()))
    m1 = z1.messages()
    c.expect(len(m1) == 2 * N and all(h.verdict_of(o) == "OK" for o in m1),
             "run 1: %d messages, all OK" % len(m1))

    recorded = [(tp, p) for _t, tp, p, _r in adv.seen(lambda m: m[1] in TOPICS)]
    c.require(len(recorded) == 2 * N, "adversary recorded the %d envelopes (got %d)" % (
        2 * N, len(recorded)))

    # Run 2: same state file; the sender (pb) is still up, so it gets the key.
    z2 = h.start_sub(env, broker, z, ["rs/#"], name="z-run2",
                     args=["--state", state, "--show-all"])
    c.require(z2.wait_err(h.EV_KEY, 10), "run 2 received the key")
    # One subscriber per state file: a second one would save its own window
    # over run 2's and so forget what run 2 accepted (a replay accepted twice).
    z2_sha = sha(state)
    cp = h.run(env, "z-second", [env.sub_bin] + broker.tls_args() + [
        "--dir", z.dir, "--state", state, "-t", "rs/#", "-W", "2"], check=False)
    err = cp.stderr.decode(errors="replace")
    c.expect(cp.returncode != 0 and state in err and ("pid %d" % z2.pid) in err,
             "a second e2e-sub on run 2's --state refuses naming the file and pid %d (rc %d): %s"
             % (z2.pid, cp.returncode, err.strip()))
    c.expect(sha(state) == z2_sha, "the state file is unchanged by the refused second subscriber")
    for tp, p in recorded:
        adv.publish(tp, p, qos=1, retain=False)
    n = z2.wait_json(2 * N, 15)
    c.expect(n >= 2 * N, "run 2 reported all %d replays (%d lines)" % (2 * N, n))
    m2 = z2.messages()[:2 * N]
    verdicts = {}
    for o in m2:
        verdicts[h.verdict_of(o)] = verdicts.get(h.verdict_of(o), 0) + 1
    c.expect(all(h.verdict_of(o) in ("DUPLICATE", "TOO_OLD") for o in m2),
             "every replay is DUPLICATE or TOO_OLD (got %s)" % verdicts)
    c.expect(not any(h.verdict_of(o) in h.DELIVERING for o in z2.messages()),
             "no replay delivered as OK/GAP/LATE")
    c.expect(all(h.payload_of(o) is None for o in m2), "no plaintext for any replay")

    # Fresh messages after the replays: delivered, next sequence numbers.
    pb.write("".join("fresh%d\n" % i for i in range(M)))
    pb.flush()
    n = z2.wait_json(M, 10, lambda o: h.verdict_of(o) in h.DELIVERING)
    fresh = [o for o in z2.messages() if h.verdict_of(o) in h.DELIVERING]
    c.expect(len(fresh) == M and all(h.verdict_of(o) == "OK" for o in fresh) and
             [o.get("seq") for o in fresh] == list(range(N + 1, N + M + 1)),
             "fresh messages after the replays: OK with seq %d..%d (got %s)" % (
                 N + 1, N + M, [(h.verdict_of(o), o.get("seq")) for o in fresh]))
    rc2 = z2.stop()
    c.expect(rc2 == 0, "run 2 exits 0 (rc %r)" % rc2)

    # Control (informative): a subscriber without the state file.
    z3 = h.start_sub(env, broker, z, ["rs/#"], name="z-nostate",
                     args=["--state", "none", "--show-all"])
    if z3.wait_err(h.EV_KEY, 10):
        for tp, p in recorded:
            adv.publish(tp, p, qos=1, retain=False)
        z3.wait_json(2 * N, 8)
        acc = sum(1 for o in z3.messages() if h.verdict_of(o) in h.DELIVERING)
        h.log("control: without the state file, %d of %d replays were accepted (this is what "
              "the persisted state prevents)" % (acc, 2 * N))
    z3.stop()
    c.expect(h.finish_pub(pb, 20) == 0, "publisher exited 0")


if __name__ == "__main__":
    h.main("restart-replay", body)
