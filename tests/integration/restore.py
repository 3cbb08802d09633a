#!/usr/bin/python3
"""Integration 10: a sender state directory restored from a backup (L5, P5).

A running e2e-pub -l and a subscriber that stays up throughout. The whole
sender directory is copied (the backup); the operator rotates twice and the
subscriber fetches both new keys. Then the directory is restored from the
backup (the restored keys file and txstate know only the first epoch) and
the restore procedure of docs/operations.md is followed: wait until the
clock has passed the last rotation, rotate every scope, start the sender.
Expected: the new epoch is above every epoch issued before (max(highest
known + 1, Unix seconds), SPEC 6.4), so the subscriber, which still holds
the keys of the lost epochs, accepts the new key and decrypts every message
published after the restore: OK, no FORGED, no rejected key.
"""
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TOPIC = "plant/t"


def publish(pub, prefix, n):
    lines = ["%s %d %s" % (prefix, i, os.urandom(3).hex()) for i in range(n)]
    pub.write("".join(l + "\n" for l in lines))
    pub.flush()
    return [l.encode() for l in lines]


def body(env, c):
    broker = h.Broker(env)
    adv = h.Adversary(env, broker)
    s = h.Sender(env, "site", scopes=[(1, "plant", ["plant/#"])])
    sub = h.Subscriber(env, "reader", trust=[s])
    s.enroll(sub, ["plant"])

    pub = h.start_pub_lines(env, broker, s, TOPIC, name="pub1")
    c.require(adv.probe_key_service(s, 10) is not None, "e2e-pub key service up")
    sp = h.start_sub(env, broker, sub, [TOPIC], name="sub", args=["--state", "none"])
    c.require(sp.wait_err(h.EV_KEY, 10), "subscriber received the first key")
    e0 = s.current_epoch(1)
    c.expect(e0 is not None and abs(e0 - time.time()) < 120,
             "the first epoch is the Unix time in seconds (%s)" % e0)
    want = publish(pub, "before", 3)
    c.expect(sp.wait_json(3, 10) >= 3, "subscriber decrypts the first messages")

    backup = os.path.join(env.dir, "site-backup")
    shutil.copytree(s.dir, backup)
    h.log("backed up %s (epoch %s)" % (s.dir, e0))

    epochs = []
    for i in range(2):
        time.sleep(1.1)          # one rotation per second: the epochs follow the clock
        t_rot = time.monotonic()
        s.rotate()
        e = s.current_epoch(1)
        epochs.append(e)
        c.expect(sp.wait_err(h.EV_KEY + r".*epoch %s" % e, 8, since=t_rot),
                 "subscriber fetched the key of rotation %d (epoch %s)" % (i + 1, e))
        want += publish(pub, "rot%d" % (i + 1), 3)
    c.expect(e0 < epochs[0] < epochs[1], "two rotations: epochs %s -> %s" % (e0, epochs))
    c.expect(sp.wait_json(len(want), 10) >= len(want), "subscriber decrypts under both new keys")
    c.expect(h.finish_pub(pub, 20) == 0, "e2e-pub exited 0")

    # Restore the whole directory from the backup (keys and txstate too).
    shutil.rmtree(s.dir)
    shutil.copytree(backup, s.dir)
    c.expect(s.current_epoch(1) == e0, "the restored keys file knows only epoch %s" % e0)
    # docs/operations.md: the clock must have passed the last rotation.
    while time.time() < epochs[1] + 1.05:
        time.sleep(0.1)
    t_rot = time.monotonic()
    s.rotate()
    e3 = s.current_epoch(1)
    h.log("after the restore: rotate gave epoch %s (lost epochs %s)" % (e3, epochs))
    c.expect(e3 is not None and e3 > epochs[1],
             "the rotation after the restore issues a new epoch above the lost ones "
             "(%s > %s), not one the subscriber holds under another key" % (e3, epochs[1]))

    pub = h.start_pub_lines(env, broker, s, TOPIC, name="pub2")
    c.require(adv.probe_key_service(s, 10) is not None, "restored e2e-pub key service up")
    after = publish(pub, "restored", 5)
    n = len(want) + len(after)
    c.expect(sp.wait_json(n, 15) >= n, "subscriber received the post-restore messages")
    c.expect(sp.wait_err(h.EV_KEY + r".*epoch %s" % e3, 5, since=t_rot),
             "subscriber installed the post-restore key (epoch %s)" % e3)
    msgs = sp.messages()
    post = [o for o in msgs if h.payload_of(o) in after]
    c.expect(len(post) == len(after) and all(h.verdict_of(o) == "OK" and o.get("epoch") == e3
                                             for o in post),
             "every post-restore message delivered, verdict OK, epoch %s: %s" % (
                 e3, [(h.verdict_of(o), o.get("epoch")) for o in post]))
    bad = sp.err_match(r"FORGED|different key|reject")
    c.expect(not bad, "no FORGED message and no rejected key:\n" + "\n".join(bad[:5]))
    c.expect(h.finish_pub(pub, 20) == 0, "restored e2e-pub exited 0")
    sp.stop()
    h.promise_rows("restore", [
        ("13.9 a restored state directory re-issues no epoch", "operator restoring a backup",
         False, "backs up the sender's directory, rotates twice, restores it, rotates",
         "new epoch %s above the lost ones; every later message OK, none FORGED" % e3,
         not c.failed)])


if __name__ == "__main__":
    h.main("restore", body)
