#!/usr/bin/python3
"""Interop 1: the full chain through mosquitto, MQTT 3.1.1 and 5 on both sides.

mosquitto_pub -V mqttv311 / mqttv5 (unmodified) -> e2e-proxy -> mosquitto
(TLS) -> e2e-sub -V 311 and e2e-sub -V 5 (--json --strict), plus a keyless
paho-mqtt subscriber on '#'. Checks:
  * each publisher version reaches each subscriber version: every message
    (QoS 0, QoS 2, three QoS 1 from one connection, and one on a signed
    scope, per version) printed once, verdict OK, on its topic and scope,
    from the proxy's sender identity, epoch 1;
  * the keyless subscriber got every message once, and each payload is an
    envelope of this sender (suite 0x01, >= 40 bytes, scope 1; signed
    scope 2: 0x02, >= 104 bytes) without any of the plaintext strings;
  * both e2e-sub --strict exit 0 (no anomaly) on SIGTERM.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop as iop  # noqa: E402

h = iop.h


def body(env, c):
    broker = h.Broker(env)
    raw = iop.RawPaho(env, broker)
    r = iop.run_matrix(env, c, "mosquitto", iop.mosquitto_endpoint(broker),
                      iop.mosquitto_endpoint(broker), raw)
    iop.stop_subs(c, "mosquitto", r["procs"])


if __name__ == "__main__":
    h.main("interop-mosquitto", body)
