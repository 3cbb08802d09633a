#!/usr/bin/python3
"""Consumer groups: two e2e-sub in one shared subscription
($share/<group>/<filter>, MQTT 5 and mosquitto's 3.1.1 extension) on
mosquitto, behind an e2e-proxy sending signed summaries every second, plus
one ordinary subscriber as the control.

What the application is told (protocol/SPEC.md sec. 8, docs/brokers.md):
  * every message is decrypted by exactly one member of the group (the
    union is everything sent, the intersection empty), verdict OK with gap 0:
    a member sees a subset of the stream, and the sequence numbers it skips
    are the other members' messages, so the gap alarm is off for topics it
    receives only through $share; its statistics count them as pending or
    lost (e2e-sub's exit line), never as an attack;
  * no FORGED, no insider alarm: the summaries reach every member (they come
    on the sender's own topics, not through the group), but entries for
    topics a member receives only through $share are not checked (it cannot
    tell "given to the other member" from "withheld"), so nothing is
    reported as never arrived or unsummarized; e2e-sub --strict exits 0;
  * the ordinary subscriber gets everything OK and verifies the summaries.
"""

import os
import re
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proxy_it"))
import proxyharness as ph  # noqa: E402

h = ph.h
N = 40


def body(env, c):
    broker = h.Broker(env)
    prefix = "grp-" + os.urandom(4).hex()
    topic = prefix + "/line1/temp"
    sender = h.Sender(env, "plant", scopes=[(1, "plant", [prefix + "/#"])])
    members = [h.Subscriber(env, "member%d" % i, trust=[sender]) for i in (1, 2)]
    control = h.Subscriber(env, "control", trust=[sender])
    for s in members + [control]:
        sender.enroll(s, ["plant"])
    proxy = ph.Proxy(env, "%s:%d" % (broker.host, broker.port), [
        "--cafile", broker.pki["ca_crt"], "--dir", sender.dir, "--summary-interval", "1s"])

    group = "$share/workers/%s/#" % prefix
    subs = [h.start_sub(env, broker, s, [group], name="e2e-sub-" + s.name,
                        args=["--strict"]) for s in members]
    ctl = h.start_sub(env, broker, control, [prefix + "/#"], name="e2e-sub-control",
                      args=["--strict"])
    for p in subs + [ctl]:
        c.require(h.wait_until(lambda: p.err_match(h.EV_KEY) or not p.alive(), 20) and
                  p.alive(), "%s got the key" % p.name)

    texts = [ph.token("m%02d" % i) for i in range(N)]
    cp = h.run(env, "mosquitto_pub", [ph.MOSQ_PUB, "-h", ph.LOCAL, "-p", str(proxy.port),
                                      "-q", "1", "-t", topic, "-l"],
               input="".join(t + "\n" for t in texts).encode(), timeout=30, check=False)
    c.require(cp.returncode == 0, "%d QoS 1 messages through the proxy (rc %d)" % (
        N, cp.returncode))

    ctl.wait_json(N, 20)
    h.wait_until(lambda: sum(len(ph.delivered(p)) for p in subs) >= N, 20)
    got = [ph.delivered(p, topic) for p in subs]
    union = set(got[0]) | set(got[1])
    both = set(got[0]) & set(got[1])
    twice = [t for g in got for t, n in g.items() if n > 1]
    c.expect(union == set(texts), "the group decrypted every message (%d of %d)" % (
        len(union & set(texts)), N))
    c.expect(not both and not twice, "each message by exactly one member (%d by both, %d twice)"
             % (len(both), len(twice)))
    c.expect(all(len(g) > 0 for g in got), "both members took part (%s)" % [len(g) for g in got])

    # A member's gaps are the other members' messages, not losses: the gap
    # alarm is off for topics received only through $share (client.c), the
    # verdict is OK with gap 0, and the sequence numbers it never got are
    # counted as pending/lost in its statistics (the exit line of e2e-sub).
    verdicts = [[(h.verdict_of(o), o.get("gap")) for o in p.messages()] for p in subs]
    c.expect(all(set(v) == {("OK", 0)} for v in verdicts),
             "members are told OK, gap 0 (no gap alarm in a group): %s" % [
                 sorted(set(v)) for v in verdicts])
    # A summary interval more, then what each one says at exit.
    h.wait_until(lambda: False, 2.5)
    for p in subs + [ctl]:
        rc = p.stop()
        c.expect(rc == 0, "%s --strict exits 0 (rc %s)" % (p.name, rc))
        alarms = p.err_match(r"insider forgery|is in no summary|never arrived \(|FORGED [1-9]")
        c.expect(not alarms, "%s: no insider, withheld or forgery alarm%s" % (
            p.name, "" if not alarms else ": %s" % alarms[:3]))
        h.log("%s says: %s" % (p.name, " | ".join(p.err_match(r"received|summaries:"))))
        if p is ctl:
            continue
        st = re.search(r"lost (\d+) pending (\d+)", " ".join(p.err_match(r"lost \d+")))
        skipped = int(st.group(1)) + int(st.group(2)) if st else -1
        c.expect(0 < skipped < N, "%s: the other members' messages are counted as lost or "
                 "pending (%d), not alarmed" % (p.name, skipped))
    ctl_line = " ".join(ctl.err_match(r"summaries:"))
    m = re.search(r"entries verified (\d+)", ctl_line)
    c.expect(m and int(m.group(1)) > 0, "the ordinary subscriber verified the summaries: %s"
             % (ctl_line or "(no summaries line)"))
    c.expect(sorted(ph.delivered(ctl, topic)) == sorted(texts) and
             all(h.verdict_of(o) == "OK" for o in ctl.messages()),
             "the ordinary subscriber got all %d, OK" % N)


if __name__ == "__main__":
    h.main("share-groups", body)
