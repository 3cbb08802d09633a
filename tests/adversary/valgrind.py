#!/usr/bin/python3
"""valgrind memcheck over a short integration run of e2e-proxy and e2e-sub.

Both run under `valgrind --error-exitcode=99 --leak-check=full
--errors-for-leak-kinds=definite`: a paho publisher sends 200 QoS 1
messages through the proxy, e2e-sub (key request, decryption, summaries,
state file) receives them; then both are stopped with SIGTERM (proxy: drain;
e2e-sub: state saved). Required: both exit 0 (99 = memcheck errors), every
message delivered, and no 'definitely lost' bytes in either log (Paho and
OpenSSL 'still reachable' blocks are fine).
"""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import advharness as ah  # noqa: E402

h, ph = ah.h, ah.ph
VG = os.environ.get("E2E_VALGRIND", "/usr/bin/valgrind")
N = 200


def vg(env, name):
    return [VG, "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--log-file=" + os.path.join(env.dir, name + ".vg")]


def definitely_lost(path):
    with open(path, errors="replace") as f:
        text = f.read()
    m = re.search(r"definitely lost: ([\d,]+) bytes", text)
    errs = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    return (int(m.group(1).replace(",", "")) if m else 0), (int(errs.group(1)) if errs else -1)


def body(env, c):
    broker = h.Broker(env)
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["v/#"])])
    sub = h.Subscriber(env, "vsub", trust=[s])
    s.enroll(sub, ["telemetry"])
    port = h.free_port()
    argv = vg(env, "proxy") + [ph.proxy_bin(), "--listen", "127.0.0.1:%d" % port, "--broker",
                                "%s:%d" % (broker.host, broker.port), "--cafile",
                                broker.pki["ca_crt"], "--dir", s.dir, "--summary-interval", "1s"]
    px = h.Proc(env, "proxy", argv)
    c.require(px.wait_err(r"relaying to", 60), "e2e-proxy under valgrind is ready")
    sp = h.Proc(env, "sub", vg(env, "sub") + [env.sub_bin] + broker.tls_args() + [
        "--dir", sub.dir, "--json", "-q", "1", "-t", "v/#", "-i", "vsub"], parse_json=True)
    c.require(sp.wait_err(h.EV_KEY, 60), "e2e-sub under valgrind received the key")
    pub = ph.PahoPub(env, port, "vpub")
    for i in range(N):
        pub.publish("v/t", "msg-%d" % i, qos=1)
    c.expect(h.wait_until(lambda: len(pub.acked_set()) >= N, 60), "publisher: %d acknowledged" % N)
    c.expect(sp.wait_json(N, 60) >= N, "e2e-sub delivered the %d messages" % N)
    h.time.sleep(2.5)          # a summary or two checked under valgrind
    pub.close()
    for name, p in (("sub", sp), ("proxy", px)):
        rc = p.stop(timeout=60)
        lost, errs = definitely_lost(os.path.join(env.dir, name + ".vg"))
        c.expect(rc == 0 and lost == 0 and errs == 0,
                 "%s under valgrind: exit %s (99 = memcheck errors), %d errors, %d bytes "
                 "definitely lost" % (name, rc, errs, lost))


if __name__ == "__main__":
    h.main("adversary-valgrind", body)
