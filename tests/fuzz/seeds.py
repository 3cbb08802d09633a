#!/usr/bin/python3
"""Write seed inputs for the libFuzzer targets from protocol/vectors.

usage: seeds.py VECTOR_DIR OUT_DIR   (one subdirectory per target)
"""
import json
import os
import sys


def write(out, target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main(vdir, out):
    env = json.load(open(os.path.join(vdir, "envelope.json"), encoding="utf-8"))
    for i, v in enumerate(env["positive"] + env["negative"]):
        topic = bytes.fromhex(v["topic_hex"])[:32]
        # fuzz_envelope: first byte = topic length - 1, topic, envelope
        write(out, "fuzz_envelope", "env%03d" % i,
              bytes([max(len(topic), 1) - 1]) + topic + bytes.fromhex(v["envelope"]))
    ctl = json.load(open(os.path.join(vdir, "control.json"), encoding="utf-8"))
    n = 0
    for kind in ("requests", "deliveries", "refusals", "announces", "summaries", "negative"):
        for v in ctl[kind]:
            if "message" in v:
                write(out, "fuzz_control", "ctl%03d" % n, bytes.fromhex(v["message"]))
                n += 1
    ident = json.load(open(os.path.join(vdir, "identity.json"), encoding="utf-8"))
    for i, v in enumerate(ident["vectors"]):
        write(out, "fuzz_state", "secret%d" % i, v["secret_file"].encode())
        write(out, "fuzz_files", "public%d" % i, v["public_line"].encode())
    cred = json.load(open(os.path.join(vdir, "cred.json"), encoding="utf-8"))
    for i, v in enumerate(cred["credentials"] + cred["negative"]):
        write(out, "fuzz_cred", "cred%03d" % i, bytes.fromhex(v["credential"]))
    for i, v in enumerate(cred["revocations"] + cred["revocation_negative"]):
        write(out, "fuzz_cred", "rev%03d" % i, bytes.fromhex(v["message"]))
    for i, v in enumerate(cred["credentials"][:2]):
        write(out, "fuzz_cred", "text%d" % i, (v["text"] + "\n").encode())
    write(out, "fuzz_cred", "authorities", (cred["authority"]["public_line"] + "\n").encode())
    for i, v in enumerate(ctl["requests"]):
        if v.get("cred"):
            write(out, "fuzz_cred", "req%03d" % i, bytes.fromhex(v["message"]))
    write(out, "fuzz_files", "scopes", b"scope 1 telemetry sensors/# plant/+/temp\nsign telemetry\n")
    tk = json.load(open(os.path.join(vdir, "tickets.json"), encoding="utf-8"))
    for kind in ("redeems", "grants", "negative"):
        for i, v in enumerate(tk[kind]):
            write(out, "fuzz_ticket", "%s%03d" % (kind, i), bytes.fromhex(v["message"]))
    for i, v in enumerate(tk["tokens"] + tk["token_negative"]):
        write(out, "fuzz_ticket", "token%03d" % i, v["token"].encode())
    write(out, "fuzz_config", "conf", b"listen 127.0.0.1:1883\nbroker b:8883\ntls yes\n"
          b"unmapped refuse\nmax-packet 1048576\nconnect-timeout 10s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
