#!/usr/bin/python3
"""Proxy 10: Prometheus metrics of e2e-proxy and e2e-sub, scraped by a real
Prometheus (Debian's prometheus package).

mosquitto (TLS), e2e-proxy --metrics-listen (summary interval 1 s), an
enrolled subscriber alice (e2e-sub --metrics-listen), a subscriber mallory
the sender never enrolled. Prometheus runs with a minimal configuration (a
free 127.0.0.1 port, storage in the temp dir, scrape and rule evaluation
every second, dist/prometheus/e2e-alerts.yml loaded) and is stopped by its
PID. Checks:
  * promtool check rules accepts the shipped alert rules; every metric the
    rules and the Grafana dashboard (dist/grafana) use is exported;
  * both /metrics endpoints answer in the text exposition format, other
    paths 404;
  * /api/v1/targets: both targets up;
  * /api/v1/query: messages relayed and sealed per QoS (5 at QoS 0, 7 at
    QoS 1, 3 at QoS 2, all from paho through the proxy) equal what was
    sent; the relay latency histogram counts every sealed publish; bytes
    to the broker are at least the sealed payloads; alice's OK verdicts
    equal the messages sent; one MALFORMED and one FORGED (an envelope under
    a wrong key, published straight to the broker) are counted as such;
    mallory's refusal is counted under reason not_enrolled; a rotation
    (keytool rotate) adds one to the rotations counter; summaries were sent
    and received, none contradicted;
  * the E2EForgedMessages alert of the shipped rules fires;
  * the proxy's log: the rotation once with sender, scope and new epoch;
    mallory's refusal with its reason and her key; enrolling and then
    revoking mallory (keytool, proxy running) logged once each, with her
    scopes and key; alice (unchanged) not at all.
"""
import json
import os
import re
import shutil
import sys
import time
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxyharness as ph  # noqa: E402

h = ph.h
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
SENT = {0: 5, 1: 7, 2: 3}


def http_get(url, timeout=3):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, "", ""
    except OSError:
        return None, "", ""


class Prometheus:
    def __init__(self, env, targets, rules):
        self.env = env
        d = os.path.join(env.dir, "prometheus")
        os.makedirs(os.path.join(d, "data"))
        conf = os.path.join(d, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\nrule_files:\n  - %s\nscrape_configs:\n" % rules)
            for job, addr in targets:
                f.write("  - job_name: %s\n    static_configs:\n      - targets: ['%s']\n" % (
                    job, addr))
        for attempt in range(3):
            self.port = h.free_port()
            self.base = "http://127.0.0.1:%d" % self.port
            self.proc = h.Proc(env, "prometheus", [
                PROMETHEUS, "--config.file=" + conf, "--storage.tsdb.path=" + os.path.join(d, "data"),
                "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn",
                "--storage.tsdb.retention.time=1h"])
            if h.wait_until(lambda: http_get(self.base + "/-/ready")[0] == 200 or
                            not self.proc.alive(), 30) and self.proc.alive():
                return
            self.proc.stop()
            h.log("prometheus did not come up (attempt %d):\n%s" % (attempt + 1, self.proc.tail()))
        raise h.TestFailure("cannot start prometheus")

    def api(self, path, **params):
        st, _, body = http_get(self.base + path + ("?" + urllib.parse.urlencode(params)
                                                   if params else ""))
        if st != 200:
            return None
        try:
            o = json.loads(body)
        except ValueError:
            return None
        return o.get("data") if o.get("status") == "success" else None

    def query(self, expr):
        """The value of a one-element instant vector, None otherwise."""
        d = self.api("/api/v1/query", query=expr)
        if not d or d.get("resultType") != "vector" or len(d["result"]) != 1:
            return None
        return float(d["result"][0]["value"][1])

    def wait_value(self, expr, pred, timeout=20):
        last = [None]

        def ok():
            last[0] = self.query(expr)
            return last[0] is not None and pred(last[0])
        h.wait_until(ok, timeout, step=0.5)
        return last[0]


def body(env, c):
    rules = os.path.join(os.environ.get("E2E_SRC", os.path.join(ph.HERE, "..", "..")),
                         "dist", "prometheus", "e2e-alerts.yml")
    cp = h.run(env, "promtool", [PROMTOOL, "check", "rules", rules], check=False)
    c.expect(cp.returncode == 0, "promtool check rules %s (rc %d): %s" % (
        rules, cp.returncode, (cp.stdout + cp.stderr).decode(errors="replace").strip()[-400:]))

    broker = ph.Mosquitto(env)
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["sensors/#"])])
    alice = h.Subscriber(env, "alice", trust=[s])
    mallory = h.Subscriber(env, "mallory", trust=[s])
    s.enroll(alice, ["telemetry"])
    pm = h.free_port()
    px = ph.Proxy(env, broker.addr(), ["--cafile", broker.pki["ca_crt"], "--dir", s.dir,
                                       "--summary-interval", "1s",
                                       "--metrics-listen", "127.0.0.1:%d" % pm])
    c.require(px.wait_err(r"metrics on http://127\.0\.0\.1:%d/metrics" % pm, 5),
              "proxy says where its metrics are")
    sm = h.free_port()
    sa = h.start_sub(env, broker, alice, ["sensors/#"], name="sub-alice", qos=2,
                     args=["--state", "none", "--metrics-listen", "127.0.0.1:%d" % sm])
    c.require(sa.wait_err(h.EV_KEY, 15), "alice got the key")
    sb = h.start_sub(env, broker, mallory, ["sensors/#"], name="sub-mallory", qos=1,
                     args=["--state", "none"])
    c.expect(sb.wait_err(h.EV_REFUSED, 15), "mallory (not enrolled) is refused")

    # The endpoints themselves: text format, /metrics only.
    for name, port, metric in (("e2e-proxy", pm, "e2e_proxy_messages_sealed_total"),
                               ("e2e-sub", sm, "e2e_sub_messages_total")):
        st, ctype, text = http_get("http://127.0.0.1:%d/metrics" % port)
        c.expect(st == 200 and ctype.startswith("text/plain; version=0.0.4") and
                 ("# TYPE %s counter" % metric) in text,
                 "%s /metrics: 200, text/plain; version=0.0.4, TYPE line (%s, %r)" % (
                     name, st, ctype))
        c.expect(http_get("http://127.0.0.1:%d/other" % port)[0] == 404,
                 "%s: other paths 404" % name)

    # Every metric the shipped dashboard and alert rules use is exported.
    exported = set()
    for port in (pm, sm):
        exported |= set(re.findall(r"^(e2e_\w+?)(?:\{| )", http_get(
            "http://127.0.0.1:%d/metrics" % port)[2], re.M))
    dist = os.path.dirname(os.path.dirname(rules))
    for f in (rules, os.path.join(dist, "grafana", "mqtt-e2e-dashboard.json")):
        with open(f) as fh:
            used = set(re.findall(r"\b(e2e_(?:proxy|sub)_\w+)", fh.read()))
        c.expect(used and not (used - exported), "%s: every metric used is exported (missing %s)" % (
            os.path.basename(f), sorted(used - exported)))

    prom = Prometheus(env, [("e2e-proxy", "127.0.0.1:%d" % pm), ("e2e-sub", "127.0.0.1:%d" % sm)],
                      rules)

    def targets_up():
        d = prom.api("/api/v1/targets")
        act = (d or {}).get("activeTargets", [])
        return len(act) == 2 and all(t.get("health") == "up" for t in act)
    c.expect(h.wait_until(targets_up, 20, step=0.5),
             "Prometheus: both targets up (%s)" % json.dumps(prom.api("/api/v1/targets"))[:600])

    # A rotation while running: one new epoch announced.
    rot0 = prom.wait_value("e2e_proxy_key_rotations_total", lambda v: True)
    s.rotate("telemetry")
    c.expect(prom.wait_value("e2e_proxy_key_rotations_total",
                             lambda v: rot0 is not None and v == rot0 + 1) == (rot0 or 0) + 1,
             "keytool rotate: e2e_proxy_key_rotations_total +1 (before %s, now %s)" % (
                 rot0, prom.query("e2e_proxy_key_rotations_total")))

    # Messages through the proxy, per QoS (paho waits for QoS 1/2 acks).
    pub = ph.PahoPub(env, px.port, "metrics-pub")
    toks = []
    for qos, n in SENT.items():
        for _ in range(n):
            tok = ph.token("q%d" % qos)
            toks.append(tok)
            pub.publish("sensors/q%d" % qos, tok, qos=qos)
    total = sum(SENT.values())
    c.expect(h.wait_until(lambda: len(ph.delivered(sa)) >= total, 20),
             "alice received all %d messages (%d)" % (total, len(ph.delivered(sa))))

    # Two bad messages straight at the broker: not an envelope, and an
    # envelope of this sender's current epoch under a wrong key.
    epoch = s.current_epoch(1)
    bad = os.path.join(env.dir, "forged.bin")
    with open(bad, "wb") as f:
        f.write(h.craft_envelope(os.urandom(32), "sensors/forged", s.sender_id, 1, epoch, 424242,
                                 b"forged"))
    h.run(env, "pub-malformed", [ph.MOSQ_PUB] + broker.tls_args() + [
        "-t", "sensors/malformed", "-m", "not an envelope", "-q", "1"])
    h.run(env, "pub-forged", [ph.MOSQ_PUB] + broker.tls_args() + [
        "-t", "sensors/forged", "-f", bad, "-q", "1"])

    for qos, n in SENT.items():
        for metric in ("e2e_proxy_messages_relayed_total", "e2e_proxy_messages_sealed_total"):
            q = '%s{qos="%d"}' % (metric, qos)
            v = prom.wait_value(q, lambda x, n=n: x == n)
            c.expect(v == n, "Prometheus: %s = %d (got %s)" % (q, n, v))
    v = prom.wait_value("e2e_proxy_relay_latency_seconds_count", lambda x: x == total)
    c.expect(v == total, "latency histogram counts every sealed publish: %s == %d" % (v, total))
    v = prom.query('e2e_proxy_relay_latency_seconds_bucket{le="+Inf"}')
    c.expect(v == total, "histogram +Inf bucket = %d (%s)" % (total, v))
    v = prom.query('e2e_proxy_bytes_total{direction="to_broker"}')
    c.expect(v is not None and v >= sum(len(t) for t in toks) + total * 40,
             "bytes to the broker cover the sealed payloads (%s)" % v)
    v = prom.wait_value('e2e_sub_messages_total{verdict="ok"}', lambda x: x == total)
    c.expect(v == total, "e2e-sub: OK verdicts = %d (got %s)" % (total, v))
    for verdict in ("malformed", "forged"):
        q = 'e2e_sub_messages_total{verdict="%s"}' % verdict
        v = prom.wait_value(q, lambda x: x == 1)
        c.expect(v == 1, "e2e-sub: %s = 1 (got %s)" % (q, v))
    v = prom.wait_value('e2e_proxy_key_requests_refused_total{reason="not_enrolled"}',
                        lambda x: x >= 1)
    c.expect(v is not None and v >= 1, "refusal of mallory counted as not_enrolled (%s)" % v)
    # Refused, mallory waits (5 s, then 10 s, 20 s ...) before asking again:
    # the 17 messages she cannot open do not each send a request (at most 4
    # refusals fit in this run even under ASan; per message it was 17+).
    c.expect(v is not None and v <= 4, "mallory, refused, did not ask again per message "
             "(%s refusals)" % v)
    v = prom.query('sum(e2e_proxy_key_requests_refused_total{reason!="not_enrolled"})')
    c.expect(v == 0, "no refusal for another reason (%s)" % v)
    v = prom.query("e2e_proxy_key_requests_answered_total")
    c.expect(v is not None and v >= 2, "alice's key requests answered (%s)" % v)
    v = prom.wait_value("e2e_proxy_summaries_sent_total", lambda x: x >= 1)
    c.expect(v is not None and v >= 1, "summaries sent (%s)" % v)
    v = prom.wait_value("e2e_sub_summaries_received_total", lambda x: x >= 1)
    c.expect(v is not None and v >= 1, "summaries received by alice (%s)" % v)
    c.expect(prom.query("e2e_sub_insider_forgeries_total") == 0, "no summary contradicted")
    c.expect(prom.query("e2e_proxy_key_service_up") == 1 and prom.query("e2e_sub_connected") == 1,
             "key service and subscriber connected")
    c.expect(prom.query("e2e_proxy_connections_accepted_total") == 1,
             "one publisher connection accepted (%s)" % prom.query(
                 "e2e_proxy_connections_accepted_total"))

    def alert_firing():
        d = prom.api("/api/v1/alerts")
        return any(a.get("labels", {}).get("alertname") == "E2EForgedMessages" and
                   a.get("state") == "firing" for a in (d or {}).get("alerts", []))
    c.expect(h.wait_until(alert_firing, 20, step=0.5),
             "alert E2EForgedMessages fires (%s)" % json.dumps(prom.api("/api/v1/alerts"))[:600])
    prom.proc.stop()
    pub.c.disconnect()

    # The audit log: each event once, with sender, scope, epoch or key.
    def count(pattern):
        rx = re.compile(pattern)
        return sum(1 for _, l in px.proc.err_lines if rx.search(l))
    sid = "%08x" % s.sender_id
    epoch = s.current_epoch(1)
    c.expect(count(r"rotation: sender %s scope 1 epoch %d announced$" % (sid, epoch)) == 1,
             "rotation logged once with sender, scope and epoch %d" % epoch)
    mkey = mallory.sign_pk[:8].hex()
    c.expect(count(r"sender %s: key request refused \(not enrolled\): subscriber key %s$" % (
        sid, mkey)) >= 1, "mallory's refusal logged with the reason and her key")
    s.enroll(mallory, ["telemetry"])
    c.expect(px.wait_err(r"enrollment: mallory enrolled for scope\(s\) telemetry \(1\) "
                         r"\(key %s\)" % mkey, 5), "enrollment logged with scope and key")
    s.revoke(mallory)
    c.expect(px.wait_err(r"enrollment: mallory revoked \(key %s\)" % mkey, 5),
             "revocation logged with the key")
    time.sleep(1.5)
    c.expect(count(r"enrollment: mallory enrolled") == 1 and
             count(r"enrollment: mallory revoked") == 1 and count(r"enrollment: alice") == 0,
             "each enrollment change logged once, unchanged entries not at all")


if __name__ == "__main__":
    h.main("proxy-metrics", body)
