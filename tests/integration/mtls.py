#!/usr/bin/python3
"""Integration 8: mutual TLS.

mosquitto with require_certificate true (CA, server and client certificates
made by openssl for this run). e2e-pub and e2e-sub with --cafile --cert
--key connect, fetch keys and exchange messages. Without a client
certificate, or with one from a CA the broker does not trust, both fail to
connect with exit status 2 (bounded in time), and so does a client that
does not trust the broker's CA (server authentication).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TOPIC = "mtls/t"
N = 5


def body(env, c):
    broker = h.Broker(env, require_certificate=True)
    adv = h.Adversary(env, broker, client_cert=True)
    s = h.Sender(env, "site")
    sub = h.Subscriber(env, "alice", trust=[s])
    s.enroll(sub, ["default"])
    pki = broker.pki

    pub = h.start_pub_lines(env, broker, s, TOPIC, name="pub", client_cert=True)
    c.require(adv.probe_key_service(s, 10) is not None,
              "e2e-pub with --cert/--key connected; key service up")
    sp = h.start_sub(env, broker, sub, [TOPIC], name="sub", client_cert=True,
                     args=["--state", "none", "-C", str(N), "-W", "30"])
    c.expect(sp.wait_err(h.EV_KEY, 10), "e2e-sub with --cert/--key received the key")
    lines = ["mtls %d" % i for i in range(N)]
    pub.write("".join(l + "\n" for l in lines))
    pub.flush()
    rc = sp.wait_exit(15)
    c.expect(rc == 0, "e2e-sub -C %d exited 0 (rc %r)" % (N, rc))
    c.expect([h.payload_of(o) for o in sp.messages()] == [l.encode() for l in lines] and
             all(h.verdict_of(o) == "OK" for o in sp.messages()),
             "messages decrypted over mutual TLS")
    c.expect(h.finish_pub(pub, 20) == 0, "e2e-pub exited 0")

    base = ["-h", broker.host, "-p", str(broker.port)]
    cases = [
        ("no client certificate", ["--cafile", pki["ca_crt"]]),
        ("client certificate of an untrusted CA",
         ["--cafile", pki["ca_crt"], "--cert", pki["rogue_crt"], "--key", pki["rogue_key"]]),
        ("broker CA not trusted (server authentication)",
         ["--cafile", pki["rogue_crt"], "--cert", pki["client_crt"], "--key", pki["client_key"]]),
    ]
    for what, tls in cases:
        cp = h.run(env, "sub-bad", [env.sub_bin] + base + tls + [
            "--dir", sub.dir, "--state", "none", "-t", TOPIC, "-W", "5", "--json"],
            timeout=40, check=False)
        err = cp.stderr.decode(errors="replace").strip()
        c.expect(cp.returncode == 2, "e2e-sub, %s: exit 2 (rc %d; stderr: %s)" % (
            what, cp.returncode, err[-300:]))
        c.expect(not cp.stdout.strip(), "e2e-sub, %s: printed no message" % what)
        cp = h.run(env, "pub-bad", [env.pub_bin] + base + tls + [
            "--dir", s.dir, "-t", TOPIC, "-q", "1", "-m", "must not arrive"],
            timeout=40, check=False)
        err = cp.stderr.decode(errors="replace").strip()
        c.expect(cp.returncode == 2, "e2e-pub, %s: exit 2 (rc %d; stderr: %s)" % (
            what, cp.returncode, err[-300:]))
    c.expect(not adv.seen(lambda m: m[1] == TOPIC)[N:],
             "no message reached the topic from the rejected publishers")


if __name__ == "__main__":
    h.main("mtls", body)
