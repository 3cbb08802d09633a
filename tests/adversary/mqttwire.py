#!/usr/bin/python3
"""MQTT 3.1.1 and 5 framing for the malicious-broker harness (tests/adversary/).

Only what a man in the middle needs: split a byte stream into packets
(fixed header + remaining length, at most 4 length bytes), read CONNECT
(protocol level and client id), PUBLISH (flags, topic, packet id, MQTT 5
properties, payload) and the packet id of acknowledgements, and build
PUBLISH/PUBACK again. The builders of tests/proxy_it/proxyharness.py
(varint, mstr, packet) are reused, not copied.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proxy_it"))
import proxyharness as ph  # noqa: E402

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK = 8, 9
PROP_TOPIC_ALIAS = 0x23

# MQTT 5 PUBLISH properties: id -> kind (SPEC MQTT 5.0 sec. 2.2.2.2).
_PROP_KIND = {0x01: "b", 0x02: "i", 0x23: "h", 0x08: "s", 0x09: "s", 0x26: "p", 0x0B: "v",
              0x03: "s"}


class Malformed(Exception):
    pass


def read_varint(buf, off):
    """(value, next offset); None if more bytes are needed."""
    val = mul = 0
    for i in range(4):
        if off + i >= len(buf):
            return None
        b = buf[off + i]
        val += (b & 0x7F) << mul
        if not b & 0x80:
            return val, off + i + 1
        mul += 7
    raise Malformed("variable byte integer longer than 4 bytes")


def split(buf):
    """Complete packets at the start of buf: ([(type, flags, body, raw)], rest)."""
    out = []
    off = 0
    while off < len(buf):
        r = read_varint(buf, off + 1)
        if r is None:
            break
        rl, start = r
        if start + rl > len(buf):
            break
        out.append((buf[off] >> 4, buf[off] & 0x0F, bytes(buf[start:start + rl]),
                    bytes(buf[off:start + rl])))
        off = start + rl
    return out, buf[off:]


def connect_info(body):
    """(protocol level, client id) of a CONNECT body."""
    n = struct.unpack(">H", body[:2])[0]
    level = body[2 + n]
    off = 2 + n + 4                      # level, flags, keepalive
    if level == 5:
        plen, off = read_varint(body, off)
        off += plen
    cl = struct.unpack(">H", body[off:off + 2])[0]
    return level, body[off + 2:off + 2 + cl].decode("utf-8", "replace")


def _props(buf):
    """Split MQTT 5 PUBLISH properties into [(id, raw bytes of the property)]."""
    out = []
    off = 0
    while off < len(buf):
        pid = buf[off]
        kind = _PROP_KIND.get(pid)
        if kind is None:
            raise Malformed("unknown PUBLISH property 0x%02x" % pid)
        o = off + 1
        if kind == "b":
            o += 1
        elif kind == "h":
            o += 2
        elif kind == "i":
            o += 4
        elif kind == "v":
            o = read_varint(buf, o)[1]
        elif kind == "s":
            o += 2 + struct.unpack(">H", buf[o:o + 2])[0]
        else:                            # string pair
            for _ in range(2):
                o += 2 + struct.unpack(">H", buf[o:o + 2])[0]
        out.append((pid, bytes(buf[off:o])))
        off = o
    return out


class Publish:
    """A PUBLISH packet, parsed. topic is bytes (exact, as bound in the AAD)."""

    __slots__ = ("topic", "payload", "qos", "retain", "dup", "pid", "props", "version", "alias")

    def __init__(self, topic, payload, qos=0, retain=False, dup=False, pid=None, props=(),
                 version=4, alias=None):
        self.topic, self.payload, self.qos, self.retain, self.dup = topic, payload, qos, retain, dup
        self.pid, self.props, self.version, self.alias = pid, list(props), version, alias

    @classmethod
    def parse(cls, flags, body, version, aliases):
        qos = (flags >> 1) & 3
        tl = struct.unpack(">H", body[:2])[0]
        topic = body[2:2 + tl]
        off = 2 + tl
        pid = None
        if qos:
            pid = struct.unpack(">H", body[off:off + 2])[0]
            off += 2
        props = []
        alias = None
        if version == 5:
            plen, off = read_varint(body, off)
            props = _props(body[off:off + plen])
            off += plen
            for p, raw in props:
                if p == PROP_TOPIC_ALIAS:
                    alias = struct.unpack(">H", raw[1:3])[0]
            if alias is not None:
                if topic:
                    aliases[alias] = topic
                else:
                    topic = aliases.get(alias, b"")
        return cls(topic, body[off:], qos, bool(flags & 1), bool(flags & 8), pid,
                   [p for p in props if p[0] != PROP_TOPIC_ALIAS], version, alias)

    def copy(self, **kw):
        c = Publish(self.topic, self.payload, self.qos, self.retain, self.dup, self.pid,
                    self.props, self.version)
        for k, v in kw.items():
            setattr(c, k, v)
        return c

    def build(self, pid=None):
        """Serialized with the full topic (no alias) and packet id pid."""
        body = ph.mstr(self.topic)
        if self.qos:
            body += struct.pack(">H", pid if pid is not None else self.pid)
        if self.version == 5:
            pr = b"".join(raw for _p, raw in self.props)
            body += ph.varint(len(pr)) + pr
        first = 0x30 | (self.qos << 1) | (1 if self.retain else 0) | (8 if self.dup else 0)
        return ph.packet(first, body + self.payload)


def ack_pid(body):
    return struct.unpack(">H", body[:2])[0]


def puback(pid, rest=b""):
    """PUBACK for pid; rest = MQTT 5 reason code and properties, kept as they were."""
    return ph.packet(0x40, struct.pack(">H", pid) + rest)
