#!/usr/bin/python3
"""Interop 2: the full chain through aedes (Node.js), the second broker.

  aedes_chain.py stable   aedes 1.x (stable, MQTT 3.1/3.1.1 only)
  aedes_chain.py mqtt5    aedes 2.0.0-beta.1 (the first aedes with MQTT 5)

aedes and MQTT.js come from the npm registry, installed once into a cache
directory (see interop.py); without node, npm or the registry the test is
SKIPPED (exit 77) with the reason, never passed.

stable: mosquitto_pub -V mqttv311 -> e2e-proxy -> aedes -> e2e-sub -V 311,
  once over TLS and once over plain TCP (e2e-proxy --tls no); an MQTT 5
  publisher through the proxy gets aedes' refusal (mosquitto_pub fails, the
  proxy keeps serving others).
mqtt5: mosquitto_pub -V mqttv311 / mqttv5 -> e2e-proxy -> aedes (TLS) ->
  e2e-sub -V 311 and -V 5: every combination.
Checks for each chain (messages as in interop.publish_all: QoS 0, 2, an
ordered QoS 1 run, a signed scope): every message once, verdict OK, on its
topic and scope, from the proxy's sender identity, epoch 1; a keyless
MQTT.js subscriber on '#' got every message once, only envelopes (suite
byte, size, sender, scope) without plaintext; e2e-sub --strict exits 0.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop as iop  # noqa: E402

h = iop.h
ph = iop.ph


def stable(env, c, modules):
    aedes = iop.Aedes(env, modules)
    for ep in (aedes.tls, aedes.tcp):
        label = "aedes %s %s" % (iop.AEDES_STABLE, "TLS" if ep.tls else "plain TCP")
        raw = iop.RawJs(env, modules, ep, name=env.uniq("rawjs-"))
        r = iop.run_matrix(env, c, label, ep, ep, raw, pub_versions=("mqttv311",),
                           sub_versions=("311",))
        iop.stop_subs(c, label, r["procs"])
        if not ep.tls:
            break
        # aedes 1.x refuses MQTT 5: the refusal reaches the publisher.
        px = r["proxy"]
        cp = ph.mosq_pub(env, px, r["prefix"] + "/v5", ph.token(), qos=1, version="mqttv5",
                         check=False)
        err = cp.stderr.decode(errors="replace").strip()
        c.expect(cp.returncode != 0 and "protocol version" in err.lower(),
                 "%s: an MQTT 5 publisher through the proxy gets aedes' CONNACK refusal "
                 "(unsupported protocol version; rc %d: %s)" % (label, cp.returncode, err[-200:]))
        cp = ph.mosq_pub(env, px, r["prefix"] + "/after", ph.token(), qos=1, check=False)
        c.expect(px.alive() and cp.returncode == 0,
                 "%s: the proxy still relays MQTT 3.1.1 afterwards (rc %d)" % (label,
                                                                             cp.returncode))
        px.stop()


def mqtt5(env, c, modules):
    aedes = iop.Aedes(env, modules)
    label = "aedes %s TLS" % iop.AEDES_MQTT5
    raw = iop.RawJs(env, modules, aedes.tls, version=5)
    r = iop.run_matrix(env, c, label, aedes.tls, aedes.tls, raw)
    iop.stop_subs(c, label, r["procs"])


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "stable"
    version = iop.AEDES_STABLE if which == "stable" else iop.AEDES_MQTT5
    mods = iop.node_modules(["aedes@" + version, "mqtt@" + iop.MQTTJS])
    h.main("interop-aedes-" + which,
           lambda env, c: (stable if which == "stable" else mqtt5)(env, c, mods))
