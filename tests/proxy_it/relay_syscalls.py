#!/usr/bin/python3
"""Proxy 12: the metrics add no system call per message.

e2e-proxy (metrics-listen on, as deployed) runs under `strace -f -c` twice,
relaying 200 and then 5,000 QoS 0 publishes from one mosquitto_pub -l
connection to a TLS mosquitto. The counters, the snapshot for the metrics
thread and the relay latency histogram (a vDSO clock read per flushed
batch) must not enter the kernel per message, so the two system call
totals differ by far less than the 4,800 extra messages (at most 0.1 per
message, which leaves room for time-driven calls: ticks, the audit stat,
Paho's keep-alive). clock_gettime must not appear as a system call in
bulk. SIGUSR1 logs the stats so each run proves its messages were sealed.

Skipped (77) when strace cannot trace here.
"""
import os
import re
import shutil
import signal
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxyharness as ph  # noqa: E402

h = ph.h
STRACE = shutil.which("strace")
SMALL, LARGE = 200, 5000


def run_once(env, c, broker, s, n):
    trace = os.path.join(env.dir, "strace.%d" % n)
    port = h.free_port()
    argv = [STRACE, "-f", "-c", "-o", trace, ph.proxy_bin(), "--listen", "%s:%d" % (ph.LOCAL, port),
            "--broker", broker.addr(), "--cafile", broker.pki["ca_crt"], "--dir", s.dir,
            "--metrics-listen", "127.0.0.1:%d" % h.free_port()]
    p = h.Proc(env, "strace-proxy-%d" % n, argv)
    c.require(p.wait_err(r"relaying to", 20), "traced proxy ready:\n" + p.tail())
    kids = open("/proc/%d/task/%d/children" % (p.pid, p.pid)).read().split()
    c.require(len(kids) == 1, "the proxy is strace's only child (%r)" % kids)
    pid = int(kids[0])
    lines = "".join("m%06d\n" % i for i in range(n)).encode()
    h.run(env, "mosquitto_pub-%d" % n, [ph.MOSQ_PUB, "-h", ph.LOCAL, "-p", str(port), "-q", "0",
                                        "-t", "sensors/x", "-l", "-i", "sys-%d" % n],
          input=lines, timeout=60)
    time.sleep(1.0)
    os.kill(pid, signal.SIGUSR1)
    c.require(p.wait_err(r"stats \{", 5), "stats logged")
    m = re.search(r'"sealed":(\d+)', p.stderr_text())
    c.expect(m and int(m.group(1)) == n, "%d publishes sealed (%s)" % (n, m and m.group(1)))
    os.kill(pid, signal.SIGTERM)
    c.require(p.wait_exit(20) is not None, "traced proxy exited")
    table = {}
    total = None
    with open(trace) as f:
        for l in f:
            w = l.split()
            if len(w) >= 5 and re.match(r"^[\d.]+$", w[0]):
                if w[-1] == "total":
                    total = int(w[3])
                else:
                    table[w[-1]] = int(w[3])
    c.require(total is not None, "strace table for N=%d" % n)
    h.log("N=%d: %d system calls; %s" % (n, total, ", ".join(
        "%s %d" % kv for kv in sorted(table.items(), key=lambda kv: -kv[1])[:8])))
    return total, table


def body(env, c):
    if not STRACE or h.run(env, "strace-probe", [STRACE, "-f", "-c", "-o", os.devnull, "true"],
                           check=False).returncode != 0:
        print("strace missing or cannot trace here: skipping")
        sys.exit(77)
    broker = ph.Mosquitto(env)
    s = h.Sender(env, "edge", scopes=[(1, "telemetry", ["sensors/#"])])
    t_small, _ = run_once(env, c, broker, s, SMALL)
    t_large, tab = run_once(env, c, broker, s, LARGE)
    extra = LARGE - SMALL
    c.expect(t_large - t_small < extra // 10,
             "%d more messages cost %d more system calls (< %d: none per message)" % (
                 extra, t_large - t_small, extra // 10))
    c.expect(tab.get("clock_gettime", 0) < 50,
             "clock reads stay in the vDSO (%d clock_gettime system calls)" %
             tab.get("clock_gettime", 0))


if __name__ == "__main__":
    h.main("proxy-syscalls", body)
