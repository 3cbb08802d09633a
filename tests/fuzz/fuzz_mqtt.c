/*
 * libFuzzer target for the MQTT codec (security.md F3/F4): frame the input,
 * parse it as CONNECT, PUBLISH (as 3.1, 3.1.1 and 5.0), ack and property
 * block, then write every accepted packet back and check the invariants the
 * proxy relies on:
 *
 *   - spans point inside the packet; sizes reported by the writer's size
 *     query equal what it then writes;
 *   - rewriting with nothing changed reproduces the input byte for byte
 *     (for PUBLISH: when it had no Topic Alias and no PFI);
 *   - a rewrite with a new payload / will / credentials parses back, with
 *     the new values, the old everything-else, and no alias or PFI;
 *   - mqtt_utf8_valid agrees with an independent decoder.
 *
 * Standalone: clang -fsanitize=fuzzer,address -Iproxy tests/fuzz/fuzz_mqtt.c \
 *             proxy/mqtt_codec.c proxy/mqtt_props.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_codec.h"
#include "ref_utf8.h"

#define MAX_PACKET (1U << 20)
#define OUT_CAP (MAX_PACKET + 70000U)

static uint8_t out[OUT_CAP], out2[OUT_CAP];

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
		abort(); \
	} \
} while (0)

static int inside(struct mqtt_span s, const uint8_t *p, size_t n)
{
	return s.len == 0 || (s.p >= p && s.len <= n && (size_t)(s.p - p) <= n - s.len);
}

static int span_same(struct mqtt_span a, struct mqtt_span b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/*
 * Does the (validated) block @props hold property @id? Walked with our own
 * table of value sizes (MQTT 5.0 Table 2-4), apart from the codec's.
 */
static int has_prop(struct mqtt_span props, uint8_t id)
{
	static const char kinds[0x2B] = {
		[0x01] = 'b', [0x17] = 'b', [0x19] = 'b', [0x24] = 'b', [0x25] = 'b',
		[0x28] = 'b', [0x29] = 'b', [0x2A] = 'b',
		[0x13] = '2', [0x21] = '2', [0x22] = '2', [0x23] = '2',
		[0x02] = '4', [0x11] = '4', [0x18] = '4', [0x27] = '4',
		[0x0B] = 'v',
		[0x03] = 's', [0x08] = 's', [0x12] = 's', [0x15] = 's', [0x1A] = 's', [0x1C] = 's',
		[0x1F] = 's', [0x09] = 's', [0x16] = 's',
		[0x26] = 'p',
	};
	size_t i = 0;

	while (i < props.len) {
		uint8_t pid = props.p[i++];
		size_t strings = 0;

		CHECK(pid < sizeof kinds && kinds[pid]);
		if (pid == id)
			return 1;
		switch (kinds[pid]) {
		case 'b': i += 1; break;
		case '2': i += 2; break;
		case '4': i += 4; break;
		case 'v': while (i < props.len && (props.p[i++] & 0x80)) {} break;
		case 's': strings = 1; break;
		default:  strings = 2; break;
		}
		while (strings--) {
			CHECK(i + 2 <= props.len);
			i += 2 + (size_t)(props.p[i] << 8 | props.p[i + 1]);
		}
		CHECK(i <= props.len);
	}
	return 0;
}

static void fuzz_connect(const uint8_t *pkt, size_t n)
{
	static const uint8_t sealed[300] = { 0xE2, 0xE2 };
	struct mqtt_span wp = { sealed, sizeof sealed };
	struct mqtt_span user = { (const uint8_t *)"proxy", 5 };
	struct mqtt_span pass = { (const uint8_t *)"pw", 2 };
	struct mqtt_connect c, r;
	size_t len, need;

	if (mqtt_parse_connect(pkt, n, &c) != MQTT_OK)
		return;
	CHECK(c.version >= MQTT_V31 && c.version <= MQTT_V5);
	CHECK(inside(c.client_id, pkt, n) && inside(c.will_topic, pkt, n) &&
		inside(c.will_payload, pkt, n) && inside(c.username, pkt, n) &&
		inside(c.password, pkt, n) && inside(c.props, pkt, n) &&
		inside(c.will_props, pkt, n));
	/* Identity. */
	CHECK(mqtt_write_connect(NULL, 0, &need, &c, c.will_payload, 0, NULL, NULL) == MQTT_BUFFER);
	CHECK(need == n);
	CHECK(mqtt_write_connect(out, OUT_CAP, &len, &c, c.will_payload, 0, NULL, NULL) == MQTT_OK);
	CHECK(len == n && memcmp(out, pkt, n) == 0);
	/* Rewrite: sealed will, PFI dropped, credentials injected. */
	CHECK(mqtt_write_connect(NULL, 0, &need, &c, wp, 1, &user, &pass) == MQTT_BUFFER);
	CHECK(mqtt_write_connect(out, OUT_CAP, &len, &c, wp, 1, &user, &pass) == MQTT_OK);
	CHECK(len == need);
	CHECK(mqtt_parse_connect(out, len, &r) == MQTT_OK);
	CHECK(r.version == c.version && r.keepalive == c.keepalive && r.will == c.will);
	CHECK(r.will_qos == c.will_qos && r.will_retain == c.will_retain);
	CHECK((r.flags & 0x02) == (c.flags & 0x02));
	CHECK(span_same(r.client_id, c.client_id) && span_same(r.props, c.props));
	CHECK(span_same(r.username, user) && span_same(r.password, pass));
	if (c.will) {
		CHECK(span_same(r.will_topic, c.will_topic) && span_same(r.will_payload, wp));
		CHECK(!has_prop(r.will_props, 0x01) || c.version != MQTT_V5);
		CHECK(r.will_props.len <= c.will_props.len);
	}
	/* And that rewrite is a fixed point. */
	CHECK(mqtt_write_connect(out2, OUT_CAP, &need, &r, r.will_payload, 1, NULL, NULL) ==
		MQTT_OK);
	CHECK(need == len && memcmp(out2, out, len) == 0);
}

static void fuzz_publish(const uint8_t *pkt, size_t n, uint8_t version)
{
	static const struct mqtt_span subst = { (const uint8_t *)"resolved/topic", 14 };
	struct mqtt_publish p, r;
	struct mqtt_span topic, payload;
	size_t len, need;

	if (mqtt_parse_publish(pkt, n, version, &p) != MQTT_OK)
		return;
	CHECK(inside(p.topic, pkt, n) && inside(p.payload, pkt, n) && inside(p.props, pkt, n));
	CHECK(p.qos <= 2 && p.qos == ((p.flags >> 1) & 3) && (p.qos == 0) == (p.packet_id == 0));
	CHECK(p.topic.len > 0 || (version == MQTT_V5 && p.has_alias));
	CHECK(!p.has_alias || p.alias != 0);
	topic = p.topic.len ? p.topic : subst;
	/* Identity when nothing is dropped. */
	CHECK(mqtt_write_publish(out, OUT_CAP, &len, version, &p, topic, p.payload) == MQTT_OK);
	if (!p.has_alias && !p.has_pfi)
		CHECK(len == n && memcmp(out, pkt, n) == 0);
	/* New payload: a slice of the input, reversed roles. */
	payload.p = pkt;
	payload.len = n / 2;
	CHECK(mqtt_write_publish(NULL, 0, &need, version, &p, topic, payload) == MQTT_BUFFER);
	CHECK(mqtt_write_publish(out, OUT_CAP, &len, version, &p, topic, payload) == MQTT_OK);
	CHECK(len == need);
	CHECK(mqtt_parse_publish(out, len, version, &r) == MQTT_OK);
	CHECK(r.flags == p.flags && r.packet_id == p.packet_id);
	CHECK(span_same(r.topic, topic) && span_same(r.payload, payload));
	CHECK(!r.has_alias && !r.has_pfi);
	CHECK(r.props.len <= p.props.len);
	if (!p.has_alias && !p.has_pfi)
		CHECK(span_same(r.props, p.props));
	/* Fixed point. */
	CHECK(mqtt_write_publish(out2, OUT_CAP, &need, version, &r, r.topic, r.payload) == MQTT_OK);
	CHECK(need == len && memcmp(out2, out, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t pl, hl;
	uint16_t id;
	uint8_t vb[4];

	CHECK(mqtt_utf8_valid(data, size) == mt_ref_utf8(data, size));
	/* Whatever the bytes, a property block either validates or not; never crashes. */
	for (int t = 0; t < 16; t++)
		(void)mqtt_validate_props(data, size, t);
	if (size >= 4) {
		uint32_t v = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
			(uint32_t)data[2] << 8 | data[3];
		size_t k = mqtt_varint_write(vb, v);

		CHECK((k == 0) == (v > MQTT_MAX_REMAINING));
	}
	switch (mqtt_frame(data, size, MAX_PACKET, &pl, &hl)) {
	case MQTT_OK:
		break;
	case MQTT_NEED_MORE:
		CHECK(size < 5 + MAX_PACKET);
		/* A complete header already tells the size to wait for. */
		CHECK(pl == 0 || (pl > size && pl <= MAX_PACKET && hl >= 2 && hl <= 5));
		return 0;
	default:
		return 0;
	}
	CHECK(hl >= 2 && hl <= 5 && hl <= pl && pl <= size && pl <= MAX_PACKET);
	/* Remaining Length re-encodes to the same header bytes (minimal encoding). */
	CHECK(mqtt_varint_write(vb, (uint32_t)(pl - hl)) == hl - 1 &&
		memcmp(vb, data + 1, hl - 1) == 0);
	fuzz_connect(data, pl);
	for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++)
		fuzz_publish(data, pl, v);
	if (mqtt_parse_ack(data, pl, &id) == MQTT_OK)
		CHECK(id != 0);
	return 0;
}
