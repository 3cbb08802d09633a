#!/usr/bin/python3
"""Shared pieces of the adversary suite (tests/adversary/).

Built on tests/integration/harness.py (processes, broker, identities,
control-message and envelope helpers) and tests/proxy_it/proxyharness.py
(e2e-proxy, paho publishers, envelope opening), both imported. Added here:

  * Site: mosquitto + sender directory + e2e-proxy whose broker connections
    go through a Mitm (mitm.py), subscribers behind another Mitm;
  * Traffic: paho publishers through the proxy, several topics, QoS 1,
    unique payloads;
  * the oracle: protocol/vectors/check.py's Receiver (SPEC 5.4 over a set
    model of the window, an implementation independent of libe2e) replays
    exactly what a Mitm wrote to a subscriber, giving the verdict the
    subscriber must report for every message; compare() lines the two up;
  * doc_section(): writes one generated section of the security-tests report.
"""
import collections
import fcntl
import os
import re
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "proxy_it"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "protocol", "vectors"))
import proxyharness as ph  # noqa: E402
import check as model  # noqa: E402  (protocol/vectors/check.py)
import mitm as mm  # noqa: E402
import mqttwire as mw  # noqa: E402

h = ph.h
SRC = os.environ.get("E2E_SRC") or os.path.abspath(os.path.join(HERE, "..", ".."))
# A plain `meson test` writes the report into the build directory and leaves
# the source tree alone; scripts/test sets E2E_SECURITY_DOC to regenerate
# docs/security-tests.md from the full run (issue #7 asks for that).
DOC = os.environ.get("E2E_SECURITY_DOC") or os.path.join(
    os.environ.get("E2E_BUILD") or os.path.join(SRC, "build"), "security-tests.md")
SEED = int(os.environ.get("E2E_ADV_SEED", "20261123"))

RX_UNCONFIRMED = re.compile(r"summary: (\d+) message\(s\) of '([^']*)' seqs (\d+)\.\.(\d+) "
                            r"from (\S+) never arrived")
RX_STALLED = re.compile(r"summary: (?:no summary from|\d+ summary(?:\(ies\)| part\(s\)) of) ")
RX_SUMMARY_ALARM = r"summary: (?:insider forgery|accepted message seq)"
RX_REJECTED = r"control message rejected"
RX_EXIT = re.compile(r"(\d+) received: (.*); lost (\d+) pending (\d+)")


# ---------------------------------------------------------------------------
# The system under attack
# ---------------------------------------------------------------------------

class Site:
    """mosquitto, a sender directory with scopes, e2e-proxy connected through
    self.pm (a Mitm: the broker as the proxy sees it), and self.sm (the
    broker as subscribers see it)."""

    def __init__(self, env, c, scopes=((1, "telemetry", ["m/#"]),), proxy_args=(),
                 proxy_policy=None, sub_policy=None, summary="1s"):
        self.env, self.c = env, c
        self.broker = h.Broker(env)
        self.sender = h.Sender(env, "edge", scopes=list(scopes))
        self.scopes = list(scopes)
        self.scope_names = [n for _i, n, _f in scopes]
        self.pm = mm.Mitm(env, self.broker, "proxy-side", proxy_policy)
        self.sm = mm.Mitm(env, self.broker, "sub-side", sub_policy)
        self.proxy_args = ["--cafile", self.broker.pki["ca_crt"], "--dir", self.sender.dir,
                           "--summary-interval", summary] + list(proxy_args)
        self.proxy = None
        self.subs = {}

    def start_proxy(self, name="proxy", port=None):
        self.proxy = ph.Proxy(self.env, self.pm.addr(), self.proxy_args, name=name, port=port,
                              stats=False)
        return self.proxy

    def subscriber(self, name):
        s = h.Subscriber(self.env, name, trust=[self.sender])
        self.sender.enroll(s, self.scope_names)
        return s

    def start_sub(self, ident, topics, cid, window=None, version=None, args=(), via=None,
                  name=None):
        a = ["-i", cid, "--show-all"]
        if window:
            a += ["--window", str(window)]
        if version:
            a += ["-V", str(version)]
        p = h.start_sub(self.env, via or self.sm, ident, topics, name=name or cid,
                        args=a + list(args))
        self.subs[cid] = p
        return p

    def keys(self):
        """The model's key ring: every key of the sender directory."""
        return {(self.sender.sender_id, sc, ep): k for sc, ep, _c, _na, k in self.sender.keys()}

    def maps(self):
        """The sender's topic map as its deliveries carry it (SPEC 11.2): its
        scopes in order, then the implied default scope 0 '#'."""
        rules = [{"scope": i, "filter": f} for i, _n, fs in self.scopes for f in fs]
        if not any(i == 0 for i, _n, _f in self.scopes):
            rules.append({"scope": 0, "filter": "#"})
        return {self.sender.sender_id: rules}


class Traffic:
    """Paho publishers through the proxy: n messages on each topic,
    round-robin, unique payloads '<topic>#<i>', QoS 1."""

    def __init__(self, env, port, topics, n, clients=2, versions=(4, 5), prefix="pub"):
        self.topics, self.n = list(topics), n
        self.pubs = [ph.PahoPub(env, port, "%s%d" % (prefix, i), version=versions[i % len(versions)],
                                inflight=50) for i in range(clients)]
        self.sent = 0

    def payload(self, topic, i):
        return "%s#%05d" % (topic, i)

    def run(self, first=0, count=None, pause_every=200, pause=0.02, delivered=None,
            max_backlog=200, stall=30):
        """delivered: None, or a function counting what the slowest subscriber's
        side has received so far; then publishing waits (up to stall seconds
        each time) while more than max_backlog of this run's messages are still
        on their way. A fixed pace cannot bound that queue on a slower or busier
        machine, and a summary queued behind it arrives late enough to look
        withheld."""
        count = self.n if count is None else count
        base = delivered() if delivered else 0
        k = 0
        for i in range(first, first + count):
            for j, t in enumerate(self.topics):
                self.pubs[j % len(self.pubs)].publish(t, self.payload(t, i), qos=1)
                k += 1
                if k % pause_every == 0:
                    time.sleep(pause)
                    if delivered:
                        h.wait_until(lambda: base + k - delivered() <= max_backlog, stall,
                                     step=0.01)
        self.sent += k

    def wait_acked(self, timeout):
        return h.wait_until(lambda: sum(len(p.acked_set()) for p in self.pubs) >= self.sent,
                            timeout)


# ---------------------------------------------------------------------------
# Oracle: what the subscriber must report for what the Mitm wrote to it
# ---------------------------------------------------------------------------

# held: FORGED by the sender's map (SPEC 5.4 step 2): the client holds it while
# it fetches the current map (11.4, stale maps) and reports it later.
Exp = collections.namedtuple("Exp", "topic verdict gap seq payload kind origin held")


def data_sent(link, prefix=b""):
    """Mitm records of data PUBLISHes written to the subscriber (not e2e/...)."""
    return [s for s in list(link.sent[mm.DOWN])
            if not s.topic.startswith(b"e2e/") and s.topic.startswith(prefix)]


def oracle(records, keys, window, maps):
    """The verdict of every record, in order (check.py's Receiver + the gap)."""
    rx = model.Receiver(keys, maps, window)
    out = []
    for s in records:
        env = bytes(s.payload)
        gap = seq = 0
        held = False
        if len(env) >= model.HEADER.size + model.TAG:
            hd = model.unpack_header(env)
            seq = hd["seq"]
            w = rx.streams.get((hd["sender"], hd["run"], s.topic))
            if w is not None:
                gap = w.check(seq)[1]
            held = hd["sender"] in maps and \
                model.topic_scope(maps[hd["sender"]], s.topic) != hd["scope"]
        v, pt = rx.receive(s.topic, env)
        out.append(Exp(s.topic.decode("utf-8", "replace"), v, gap if v == "GAP" else 0, seq, pt,
                       s.kind, s.origin, held and v == "FORGED"))
    return out


def reported_now(records, keys, maps):
    """How many of records a subscriber reports at once: all but those held
    for a key (UNKNOWN_KEY from a trusted sender, reported later) or for the
    sender's current map (FORGED by the map the subscriber holds)."""
    senders = {k[0] for k in keys}
    n = 0
    for s in records:
        p = bytes(s.payload)
        if len(p) >= model.HEADER.size + model.TAG and p[0] == 1:
            hd = model.unpack_header(p)
            if hd["run"] and hd["counter"] and hd["seq"] and hd["sender"] in senders and \
                    (model.topic_scope(maps.get(hd["sender"], []), s.topic) != hd["scope"] or
                     (hd["sender"], hd["scope"], hd["epoch"]) not in keys):
                continue
        n += 1
    return n


def observed(proc, topic_prefix=""):
    return [o for o in proc.messages() if o.get("topic", "").startswith(topic_prefix)]


def key_of(e):
    """Comparable fields of an expected item or an observed JSON object."""
    if isinstance(e, Exp):
        v, t, g, s, p = e.verdict, e.topic, e.gap, e.seq, e.payload
    else:
        v, t, g, s, p = h.verdict_of(e), e.get("topic"), e.get("gap", 0), e.get("seq"), \
            h.payload_of(e)
    if v == "MALFORMED":
        return (t, v)
    return (t, v, g, s, p if v in h.DELIVERING else None)


def compare(exp, obs):
    """Line up expected and observed, message by message. UNKNOWN_KEY of a
    trusted sender is held by the client and reported later, so those are
    compared as a multiset. Returns (pairs [(Exp or None, obs or None)],
    mismatch strings)."""
    bad = []
    e_ord = [e for e in exp if e.verdict != "UNKNOWN_KEY" and not e.held]
    # FORGED by the map: held, so reported late; take the last observed ones
    # with their (topic, seq) out of the ordered comparison.
    want_held = collections.Counter((e.topic, e.seq) for e in exp if e.held)
    left = collections.Counter(want_held)
    o_held, o_rev = [], []
    for o in reversed(obs):
        k = (o.get("topic"), o.get("seq"))
        if h.verdict_of(o) == "FORGED" and left[k] > 0:
            left[k] -= 1
            o_held.append(o)
        elif h.verdict_of(o) != "UNKNOWN_KEY":
            o_rev.append(o)
    o_ord = list(reversed(o_rev))
    if +left:
        bad.append("FORGED by the map: expected %s, not observed %s" % (dict(want_held),
                                                                       dict(+left)))
    pairs = [(e, o) for e, o in zip([e for e in exp if e.held], reversed(o_held))]
    for i in range(max(len(e_ord), len(o_ord))):
        e = e_ord[i] if i < len(e_ord) else None
        o = o_ord[i] if i < len(o_ord) else None
        pairs.append((e, o))
        if (e is None or o is None or key_of(e) != key_of(o)) and len(bad) < 8:
            bad.append("#%d (%s, origin %s): expected %s, observed %s" % (
                i, e.kind if e else "-", e.origin if e else "-", key_of(e) if e else None,
                key_of(o) if o is not None else None))
    ek = collections.Counter((e.topic, e.seq) for e in exp if e.verdict == "UNKNOWN_KEY")
    ok = collections.Counter((o.get("topic"), o.get("seq")) for o in obs
                             if h.verdict_of(o) == "UNKNOWN_KEY")
    if ek != ok:
        bad.append("UNKNOWN_KEY: expected %s, observed %s" % (dict(ek), dict(ok)))
    o_uk = [o for o in obs if h.verdict_of(o) == "UNKNOWN_KEY"]
    for i, e in enumerate(e for e in exp if e.verdict == "UNKNOWN_KEY"):
        pairs.append((e, o_uk[i] if ek == ok else None))
    return pairs, bad


def model_final(records, keys, window, maps):
    """Σ lost and pending over the streams after records (SPEC 5.6)."""
    rx = model.Receiver(keys, maps, window)
    for s in records:
        rx.receive(s.topic, bytes(s.payload))
    tot = collections.Counter()
    for w in rx.streams.values():
        f = w.final()
        tot["lost"] += f["lost"]
        tot["pending"] += f["pending"]
    return tot


def tally(items):
    """Verdict counts (+ Σ gap) of expected items or observed JSON objects."""
    c = collections.Counter()
    for e in items:
        v = e.verdict if isinstance(e, Exp) else h.verdict_of(e)
        c[v] += 1
        c["gap_sum"] += e.gap if isinstance(e, Exp) else e.get("gap", 0)
    return c


def fmt_tally(c):
    order = ["OK", "GAP", "LATE", "DUPLICATE", "TOO_OLD", "FORGED", "MALFORMED", "UNKNOWN_KEY",
             "FORGOTTEN"]
    s = ", ".join("%s %d" % (v, c[v]) for v in order if c.get(v))
    return s + (" (Σgap %d)" % c["gap_sum"] if c.get("gap_sum") else "")


def holes(obs_topic, n):
    """(never delivered seqs among 1..n, holes the subscriber reported:
    Σ GAP n − LATE). Both for one topic of one run."""
    got = {o.get("seq") for o in obs_topic if h.verdict_of(o) in h.DELIVERING}
    missing = sum(1 for s in range(1, n + 1) if s not in got)
    tail = 0
    for s in range(n, 0, -1):
        if s in got:
            break
        tail += 1
    reported = sum(o.get("gap", 0) for o in obs_topic if h.verdict_of(o) == "GAP") - \
        sum(1 for o in obs_topic if h.verdict_of(o) == "LATE")
    return missing, tail, reported


def unconfirmed(proc, since=0.0):
    """{topic: messages reported unconfirmed by signed summaries} from stderr."""
    out = collections.Counter()
    for line in proc.err_match(r"never arrived", since):
        m = RX_UNCONFIRMED.search(line)
        if m:
            out[m.group(2)] += int(m.group(1))
    return out


def exit_line(proc):
    for line in reversed(proc.err_match(r"received: ")):
        m = RX_EXIT.search(line)
        if m:
            return {"received": int(m.group(1)), "lost": int(m.group(3)),
                    "pending": int(m.group(4)), "text": m.group(2)}
    return None


# ---------------------------------------------------------------------------
# docs/security-tests.md: generated, one section per test script
# ---------------------------------------------------------------------------

DOC_HEAD = """# Security tests: adversary matrix and crash safety

Generated by the adversary suite (sources in `tests/adversary/`); do not edit
by hand. `scripts/test` rewrites this file on every full run; a plain `meson test`
writes `<build>/security-tests.md` instead (set `E2E_SECURITY_DOC` to choose).
Every row is one attack carried out
on real traffic: real mosquitto 2.0 over TLS on 127.0.0.1, real `e2e-proxy`
sealing for paho publishers, real `e2e-sub` subscribers; the malicious broker
is a man in the middle (`tests/adversary/mitm.py`) that parses MQTT 3.1.1 and 5
and rewrites what the broker sends, deterministically from a seed.

*Expected* comes from an oracle independent of libe2e
(`protocol/vectors/check.py`: SPEC 5.4 over a set model of the window) replaying
exactly what the man in the middle wrote to the subscriber; *observed* is what
`e2e-sub --json --show-all` reported, compared message by message. *Held* is
yes only if they agree exactly and the attack's own property holds (no false
accept, every dropped message counted, no false alarm).
"""


def _lock_path(what):
    """A lock file for the report, outside the source tree."""
    import hashlib
    import tempfile
    return os.path.join(tempfile.gettempdir(), "e2e-secdoc-%s-%s.lock" % (
        hashlib.sha256(os.path.abspath(DOC).encode()).hexdigest()[:16], what))


def doc_section(key, title, intro, rows, cols=("attack", "messages", "expected", "observed",
                                                 "held")):
    """Replace section `key` of the report DOC (sections sorted by key)."""
    text = "## %s\n\n%s\n\n| %s |\n|%s|\n" % (title, intro.strip(), " | ".join(cols),
                                           "|".join("---" for _ in cols))
    for r in rows:
        text += "| %s |\n" % " | ".join(str(x).replace("|", "\\|") for x in r)
    # Tests run in parallel: one writer at a time (read, change, replace).
    os.makedirs(os.path.dirname(DOC), exist_ok=True)
    with open(_lock_path("doc"), "a") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        _doc_section_locked(key, text)


def _doc_section_locked(key, text):
    sections = {}
    try:
        with open(DOC) as f:
            cur = None
            for line in f:
                m = re.match(r"<!-- section (\S+) -->", line)
                if m:
                    cur = m.group(1)
                    sections[cur] = ""
                elif line.startswith("<!-- end -->"):
                    cur = None
                elif cur:
                    sections[cur] += line
    except FileNotFoundError:
        pass
    sections[key] = text
    os.makedirs(os.path.dirname(DOC), exist_ok=True)
    tmp = DOC + ".tmp"
    with open(tmp, "w") as f:
        f.write(DOC_HEAD)
        for k in sorted(sections):
            f.write("\n<!-- section %s -->\n%s<!-- end -->\n" % (k, sections[k]))
    os.replace(tmp, DOC)
    h.log("wrote section %s of %s" % (key, DOC))


PROMISE_COLS = ("promise", "adversary", "insider", "what the test does", "observed", "held",
                "test")


def promise_rows(test, rows):
    os.makedirs(os.path.dirname(DOC), exist_ok=True)
    with open(_lock_path("rows"), "a") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        _promise_rows_locked(test, rows)


def _promise_rows_locked(test, rows):
    """Rows of the report's promise table (section '0-promises'): one per
    (promise, adversary) this test checks, as (promise, adversary, insider,
    what, observed, ok). Rows written by other tests stay; this test's rows
    (last column = @test) are replaced. Sorted by promise, so the table reads
    as the list of promises with the attack that tried each."""
    old = []
    try:
        with open(DOC) as f:
            inside = False
            for line in f:
                if line.startswith("<!-- section 0-promises -->"):
                    inside = True
                elif line.startswith("<!-- end -->"):
                    inside = False
                elif inside and line.startswith("| ") and not line.startswith("| promise |"):
                    cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
                    if len(cells) == len(PROMISE_COLS) and cells[-1] != test:
                        old.append(cells)
    except FileNotFoundError:
        pass
    new = [[str(p), str(adv), "yes" if ins else "—", str(what), str(obs), yes(ok), test]
           for p, adv, ins, what, obs, ok in rows]
    allrows = sorted(old + new, key=lambda r: (r[0], r[1], r[-1]))
    doc_section("0-promises", "Promises and the attacks that try them", """
One row per promise of SPEC 1/10/11 and README and per adversary that tries to break it:
a malicious broker (a man in the middle between mosquitto and the subscribers or the
proxy), an *insider* (a real enrolled subscriber with its own key ring, sealing with the
keys it was delivered), a revoked member, an operator restoring a backup. *Held* is yes
only if the subscriber's verdicts and events were exactly the promised ones, with no false
alarm on the genuine traffic. The last column names the test that wrote the row.
""", [r[:-1] + [r[-1]] for r in allrows], cols=PROMISE_COLS)


def yes(ok):
    return "yes" if ok else "**NO**"


def summary_topic(sender):
    """Where a sender publishes its announcements and summaries."""
    return "%s/%08x" % (h.CONTROL_TOPIC, sender.sender_id)


def summary_lag(link, sender):
    """Largest delay (s) between a signed summary written to the subscriber
    and a data message it covers written after it, how many such messages
    (the client checks a summary 1 s after it arrives), and how many
    summaries came after one with a higher number (broker reordering)."""
    topic = summary_topic(sender)
    sent = list(link.sent[mm.DOWN])
    at = {}
    for s in sent:
        if len(s.payload) >= model.HEADER.size + model.TAG and not s.topic.startswith(b"e2e/"):
            hd = model.unpack_header(bytes(s.payload))
            at.setdefault((s.topic.decode("utf-8", "replace"), hd["run"], hd["seq"]), s.t)
    worst, late, top, disorder = 0.0, 0, 0, 0
    for s in sent:
        if s.topic.decode() != topic:
            continue
        out, f = model.decode_control(bytes(s.payload), topic, sender.sign_pk)
        if out != "OK" or f.get("type") != "SUMMARY":
            continue
        disorder += f["number"] < top
        top = max(top, f["number"])
        for e in f["entries"]:
            for q in range(e["first"], e["last"] + 1):
                t = at.get((e["topic"], e["run"], q))
                if t is not None and t > s.t:
                    worst = max(worst, t - s.t)
                    late += 1
    return worst, late, disorder


def summary_gap(times):
    """Largest pause (s) between two consecutive summaries, given their times,
    and when it ended (monotonic); (0.0, None) for fewer than two."""
    gaps = [(b - a, b) for a, b in zip(times, times[1:])]
    return max(gaps) if gaps else (0.0, None)


def summary_times(links, direction, sender):
    """When each of sender's summaries crossed a Mitm: arrival times from the
    proxy (direction UP, links of the proxy-side Mitm) or write times to a
    subscriber (DOWN, one subscriber's link), in order."""
    topic = summary_topic(sender).encode()
    out = []
    for lk in links:
        if direction == mm.UP:
            out += [t for t, p in list(lk.arrived[mm.UP]) if p.topic == topic]
        else:
            out += [s.t for s in list(lk.sent[mm.DOWN]) if s.topic == topic]
    return sorted(out)


def arrival_disorder(link, topic):
    """Largest displacement (in seqs) of topic's envelopes as the broker sent them."""
    top = worst = 0
    for _t, pub in list(link.arrived[mm.DOWN]):
        if pub.topic == topic and len(pub.payload) >= model.HEADER.size:
            seq = model.unpack_header(bytes(pub.payload))["seq"]
            worst = max(worst, top - seq)
            top = max(top, seq)
    return worst
