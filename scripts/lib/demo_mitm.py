#!/usr/bin/python3
"""scripts/demo --attack: a tampering broker between the real mosquitto and
one subscriber, built on the adversary suite's man in the middle
(tests/adversary/mitm.py). On the data topics it drops one message, replays
one, flips a ciphertext bit in one, re-topics one and injects a forgery,
printing each action; the subscriber's verdicts show every one caught.

usage: demo_mitm.py BROKER_HOST BROKER_PORT CA_CRT SERVER_CRT SERVER_KEY PREFIX
Prints "listening <port>" when ready; runs until SIGTERM.
"""
import os
import signal
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "adversary"))
sys.dont_write_bytecode = True
import mitm as M  # noqa: E402


class Broker:
    def __init__(self, host, port, ca, crt, key):
        self.host, self.port = host, port
        self.pki = {"ca_crt": ca, "server_crt": crt, "server_key": key}


class Env:
    clients = []


def say(msg):
    print("  man in the middle: " + msg, flush=True)


def policy_factory(prefix):
    count = [0]

    def policy(link, direction, pub, idx):
        data = direction == M.DOWN and pub.topic.startswith(prefix + b"/")
        if not data:
            return link.forward(direction, pub)
        count[0] += 1
        n = count[0]
        if n == 2:
            say("drops message 2 (and acknowledges it to the broker)")
            return link.drop(direction, pub)
        if n == 3:
            say("delivers message 3 twice (a replay)")
            link.forward(direction, pub)
            return link.inject(direction, pub.topic, pub.payload, qos=1, kind="replay")
        if n == 4:
            say("flips one ciphertext bit of message 4")
            b = bytearray(pub.payload)
            b[30] ^= 0x01
            return link.forward(direction, pub.copy(payload=bytes(b)))
        if n == 5:
            say("delivers message 5, then a copy re-topicked to %s/plant1/valve"
                % prefix.decode())
            link.forward(direction, pub)
            return link.inject(direction, prefix + b"/plant1/valve", pub.payload, qos=1)
        if n == 6:
            say("forges a message with a made-up sequence number 99")
            link.forward(direction, pub)
            forged = pub.payload[:20] + b"\x00\x00\x00\x63" + os.urandom(len(pub.payload) - 24)
            return link.inject(direction, pub.topic, forged, qos=1)
        return link.forward(direction, pub)

    return lambda link: policy


def main(argv):
    host, port, ca, crt, key, prefix = argv[1:7]
    m = M.Mitm(Env(), Broker(host, int(port), ca, crt, key),
               policy_factory=policy_factory(prefix.encode()))
    print("listening %d" % m.port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    m.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
