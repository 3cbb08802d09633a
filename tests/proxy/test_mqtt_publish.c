/* PUBLISH: 3.1 / 3.1.1 / 5.0 parsing and the rewrite of topic and payload. */
#include <string.h>

#include "mqtt_test.h"

static uint8_t pkt[40000], out[40000], again[40000];

static struct mqtt_span sp(const char *s)
{
	struct mqtt_span r = { (const uint8_t *)s, strlen(s) };

	return r;
}

static void test_publish_matrix(void)
{
	static const uint8_t flag_sets[] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x0A, 0x0D };
	struct mqtt_publish p, r;
	size_t n, len;

	for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
		for (size_t i = 0; i < sizeof flag_sets; i++) {
			uint8_t f = flag_sets[i], qos = (f >> 1) & 3;

			n = build_publish(pkt, sizeof pkt, v, f, "home/kitchen/temp", 0x4242, NULL,
				"21.5", 4);
			MT_ST(mqtt_parse_publish(pkt, n, v, &p), MQTT_OK);
			MT_CHECK(p.flags == f && p.qos == qos, "v%u flags 0x%x", v, f);
			MT_CHECK(span_eq_str(p.topic, "home/kitchen/temp"), "topic");
			MT_CHECK(p.packet_id == (qos ? 0x4242 : 0), "packet id %u", p.packet_id);
			MT_CHECK(span_eq_str(p.payload, "21.5"), "payload");
			MT_CHECK(!p.has_alias && !p.has_pfi && p.props.len == 0, "no properties");
			/* Same topic and payload: byte for byte the same packet. */
			MT_ST(mqtt_write_publish(out, sizeof out, &len, v, &p, p.topic, p.payload),
				MQTT_OK);
			MT_CHECK(len == n && memcmp(out, pkt, n) == 0, "v%u flags 0x%x identity",
				v, f);
			/* New payload: lengths follow. */
			MT_ST(mqtt_write_publish(out, sizeof out, &len, v, &p, p.topic,
				sp("ciphertext....")), MQTT_OK);
			MT_ST(mqtt_parse_publish(out, len, v, &r), MQTT_OK);
			MT_CHECK(span_eq_str(r.payload, "ciphertext....") && r.flags == f &&
				r.packet_id == p.packet_id &&
				span_eq_str(r.topic, "home/kitchen/temp"),
				"v%u flags 0x%x rewrite", v, f);
		}
	}
}

static void test_publish_flags(void)
{
	struct mqtt_publish p;
	size_t n;

	n = build_publish(pkt, sizeof pkt, MQTT_V311, 0x08, "t", 0, NULL, "x", 1);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V311, &p), MQTT_MALFORMED);   /* DUP on QoS 0 */
	n = build_publish(pkt, sizeof pkt, MQTT_V311, 0x09, "t", 0, NULL, "x", 1);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V311, &p), MQTT_MALFORMED);
	n = build_publish(pkt, sizeof pkt, MQTT_V311, 0x0A, "t", 1, NULL, "x", 1);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V311, &p), MQTT_OK);          /* DUP on QoS 1 */
	n = build_publish(pkt, sizeof pkt, MQTT_V311, 0x06, "t", 1, NULL, "x", 1);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V311, &p), MQTT_MALFORMED);   /* QoS 3 */
	n = build_publish(pkt, sizeof pkt, MQTT_V5, 0x07, "t", 1, NULL, "x", 1);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V5, &p), MQTT_MALFORMED);
	n = build_publish(pkt, sizeof pkt, MQTT_V311, 0x02, "t", 0, NULL, "x", 1);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V311, &p), MQTT_MALFORMED);   /* packet id 0 */
	n = build_publish(pkt, sizeof pkt, MQTT_V311, 0x00, "t", 0, NULL, "", 0);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V311, &p), MQTT_OK);          /* empty payload */
	MT_CHECK(p.payload.len == 0, "empty payload");
	pkt[0] = 0x20;
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V311, &p), MQTT_MALFORMED);   /* not a PUBLISH */
}

static void test_publish_topics(void)
{
	static const struct {
		const char *topic;
		enum mqtt_status want;
	} cases[] = {
		{ "a", MQTT_OK }, { "/", MQTT_OK }, { "a//b", MQTT_OK }, { "$SYS/x", MQTT_OK },
		{ "caf\xC3\xA9", MQTT_OK }, { " ", MQTT_OK },
		{ "", MQTT_MALFORMED }, { "+", MQTT_MALFORMED }, { "#", MQTT_MALFORMED },
		{ "a/+/b", MQTT_MALFORMED }, { "a/#", MQTT_MALFORMED }, { "a+b", MQTT_MALFORMED },
		{ "\xC0\xAF", MQTT_MALFORMED }, { "a\xED\xB0\x80", MQTT_MALFORMED },
		{ "\xF4\x90\x80\x80", MQTT_MALFORMED }, { "\x80", MQTT_MALFORMED },
	};
	struct mqtt_publish p;
	size_t n, len;

	for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			enum mqtt_status st;

			n = build_publish(pkt, sizeof pkt, v, 0, cases[i].topic, 0, NULL, "x", 1);
			st = mqtt_parse_publish(pkt, n, v, &p);
			MT_CHECK(st == cases[i].want, "v%u topic #%zu: %s", v, i,
				mqtt_strerror(st));
		}
	}
	/* U+0000 in a topic. */
	{
		struct pb b;

		pb_init(&b);
		pb_bin(&b, "a\0", 2);
		n = pb_packet(pkt, sizeof pkt, 0x30, &b);
		MT_ST(mqtt_parse_publish(pkt, n, MQTT_V311, &p), MQTT_MALFORMED);
	}
	/* The writer holds the same line on the topic it is given. */
	n = build_publish(pkt, sizeof pkt, MQTT_V311, 0, "t", 0, NULL, "x", 1);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V311, &p), MQTT_OK);
	MT_ST(mqtt_write_publish(out, sizeof out, &len, MQTT_V311, &p, sp(""), sp("x")),
		MQTT_MALFORMED);
	MT_ST(mqtt_write_publish(out, sizeof out, &len, MQTT_V311, &p, sp("a/#"), sp("x")),
		MQTT_MALFORMED);
	MT_ST(mqtt_write_publish(out, sizeof out, &len, MQTT_V311, &p, sp("\xC0\x80"), sp("x")),
		MQTT_MALFORMED);
	/* A topic length running past the packet. */
	{
		struct pb b;

		pb_init(&b);
		pb_u16(&b, 10);
		pb_raw(&b, "abc", 3);
		n = pb_packet(pkt, sizeof pkt, 0x30, &b);
		MT_ST(mqtt_parse_publish(pkt, n, MQTT_V311, &p), MQTT_MALFORMED);
		pb_init(&b);
		pb_u8(&b, 0);
		n = pb_packet(pkt, sizeof pkt, 0x30, &b);
		MT_ST(mqtt_parse_publish(pkt, n, MQTT_V311, &p), MQTT_MALFORMED);
		/* QoS 1 with the packet id cut. */
		pb_init(&b);
		pb_str(&b, "t");
		pb_u8(&b, 1);
		n = pb_packet(pkt, sizeof pkt, 0x32, &b);
		MT_ST(mqtt_parse_publish(pkt, n, MQTT_V311, &p), MQTT_MALFORMED);
	}
}

static void v5_props(struct pb *b)
{
	pb_init(b);
	pb_u8(b, 0x26); pb_str(b, "first"); pb_str(b, "1");
	pb_u8(b, 0x01); pb_u8(b, 1);                   /* Payload Format Indicator */
	pb_u8(b, 0x02); pb_u32(b, 300);                /* Message Expiry */
	pb_u8(b, 0x23); pb_u16(b, 7);                  /* Topic Alias */
	pb_u8(b, 0x26); pb_str(b, "second"); pb_str(b, "2");
	pb_u8(b, 0x03); pb_str(b, "application/json");
	pb_u8(b, 0x08); pb_str(b, "reply/to");
	pb_u8(b, 0x09); pb_bin(b, "\x00\x01", 2);      /* Correlation Data */
	pb_u8(b, 0x26); pb_str(b, "first"); pb_str(b, "3");
}

static void v5_props_rewritten(struct pb *b)
{
	pb_init(b);
	pb_u8(b, 0x26); pb_str(b, "first"); pb_str(b, "1");
	pb_u8(b, 0x02); pb_u32(b, 300);
	pb_u8(b, 0x26); pb_str(b, "second"); pb_str(b, "2");
	pb_u8(b, 0x03); pb_str(b, "application/json");
	pb_u8(b, 0x08); pb_str(b, "reply/to");
	pb_u8(b, 0x09); pb_bin(b, "\x00\x01", 2);
	pb_u8(b, 0x26); pb_str(b, "first"); pb_str(b, "3");
}

static void test_publish_v5_props(void)
{
	struct pb props, want, body;
	struct mqtt_publish p, r;
	size_t n, len, ref_n;
	uint8_t val[119];

	v5_props(&props);
	v5_props_rewritten(&want);
	for (uint8_t qos = 0; qos <= 2; qos++) {
		uint8_t f = (uint8_t)(qos << 1 | 1);

		n = build_publish(pkt, sizeof pkt, MQTT_V5, f, "a/b", 9, &props, "{\"t\":1}", 7);
		MT_ST(mqtt_parse_publish(pkt, n, MQTT_V5, &p), MQTT_OK);
		MT_CHECK(p.has_alias && p.alias == 7 && p.has_pfi, "alias and PFI seen");
		MT_CHECK(span_eq(p.props, props.b, props.n), "props span");
		MT_ST(mqtt_write_publish(out, sizeof out, &len, MQTT_V5, &p, p.topic, sp("SEALED")),
			MQTT_OK);
		MT_ST(mqtt_parse_publish(out, len, MQTT_V5, &r), MQTT_OK);
		MT_CHECK(!r.has_alias && !r.has_pfi, "alias and PFI dropped");
		MT_CHECK(span_eq(r.props, want.b, want.n), "other properties kept in order");
		MT_CHECK(span_eq_str(r.topic, "a/b") && span_eq_str(r.payload, "SEALED"), "fields");
		MT_CHECK(r.flags == f && r.packet_id == (qos ? 9 : 0), "flags, packet id");
		/* Exact bytes, with the property length recomputed. */
		ref_n = build_publish(again, sizeof again, MQTT_V5, f, "a/b", 9, &want, "SEALED",
			6);
		MT_CHECK(len == ref_n && memcmp(out, again, len) == 0, "qos %u exact bytes", qos);
	}
	/* A property block that shrinks across the 128-byte varint boundary. */
	memset(val, 'v', sizeof val);
	pb_init(&props);
	pb_u8(&props, 0x23); pb_u16(&props, 1);
	pb_u8(&props, 0x26); pb_str(&props, "k");
	pb_bin(&props, val, sizeof val);
	MT_CHECK(props.n == 128, "block of %zu bytes", props.n);
	n = build_publish(pkt, sizeof pkt, MQTT_V5, 0, "t", 0, &props, "x", 1);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V5, &p), MQTT_OK);
	MT_ST(mqtt_write_publish(out, sizeof out, &len, MQTT_V5, &p, p.topic, p.payload), MQTT_OK);
	pb_init(&body);
	pb_raw(&body, props.b + 3, props.n - 3);
	ref_n = build_publish(again, sizeof again, MQTT_V5, 0, "t", 0, &body, "x", 1);
	MT_CHECK(len == ref_n && memcmp(out, again, len) == 0, "property length 128 -> 125");
	MT_ST(mqtt_parse_publish(out, len, MQTT_V5, &r), MQTT_OK);
}

static void test_publish_alias(void)
{
	struct pb props;
	struct mqtt_publish p, r;
	size_t n, len;

	/* Alias only: the topic is empty and must be resolved by the caller. */
	pb_init(&props);
	pb_u8(&props, 0x23); pb_u16(&props, 3);
	n = build_publish(pkt, sizeof pkt, MQTT_V5, 0x02, "", 5, &props, "v", 1);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V5, &p), MQTT_OK);
	MT_CHECK(p.has_alias && p.alias == 3 && p.topic.len == 0, "alias only");
	MT_ST(mqtt_write_publish(out, sizeof out, &len, MQTT_V5, &p, p.topic, p.payload),
		MQTT_MALFORMED);   /* an unresolved alias cannot be written */
	MT_ST(mqtt_write_publish(out, sizeof out, &len, MQTT_V5, &p, sp("dev/9/t"), p.payload),
		MQTT_OK);
	MT_ST(mqtt_parse_publish(out, len, MQTT_V5, &r), MQTT_OK);
	MT_CHECK(span_eq_str(r.topic, "dev/9/t") && !r.has_alias && r.props.len == 0,
		"resolved topic, no alias");
	MT_CHECK(r.packet_id == 5 && span_eq_str(r.payload, "v"), "rest kept");
	/* Topic and alias: sets the mapping. */
	n = build_publish(pkt, sizeof pkt, MQTT_V5, 0, "dev/9/t", 0, &props, "v", 1);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V5, &p), MQTT_OK);
	MT_CHECK(p.has_alias && p.alias == 3 && span_eq_str(p.topic, "dev/9/t"), "topic + alias");
	/* Alias 0 is a protocol error; so is an empty topic without an alias. */
	pb_init(&props);
	pb_u8(&props, 0x23); pb_u16(&props, 0);
	n = build_publish(pkt, sizeof pkt, MQTT_V5, 0, "t", 0, &props, "v", 1);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V5, &p), MQTT_MALFORMED);
	pb_init(&props);
	pb_u8(&props, 0x02); pb_u32(&props, 1);
	n = build_publish(pkt, sizeof pkt, MQTT_V5, 0, "", 0, &props, "v", 1);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V5, &p), MQTT_MALFORMED);
	/* Two aliases. */
	pb_init(&props);
	pb_u8(&props, 0x23); pb_u16(&props, 1);
	pb_u8(&props, 0x23); pb_u16(&props, 2);
	n = build_publish(pkt, sizeof pkt, MQTT_V5, 0, "t", 0, &props, "v", 1);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V5, &p), MQTT_MALFORMED);
	/* The same bytes read as 3.1.1 have no property block: "" is refused. */
	n = build_publish(pkt, sizeof pkt, MQTT_V311, 0, "", 0, NULL, "v", 1);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V311, &p), MQTT_MALFORMED);
}

static void test_publish_pfi(void)
{
	struct pb props;
	struct mqtt_publish p, r;
	size_t n, len;

	pb_init(&props);
	pb_u8(&props, 0x01); pb_u8(&props, 0);
	n = build_publish(pkt, sizeof pkt, MQTT_V5, 0, "t", 0, &props, "v", 1);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V5, &p), MQTT_OK);
	MT_CHECK(p.has_pfi && !p.has_alias, "PFI 0 seen");
	MT_ST(mqtt_write_publish(out, sizeof out, &len, MQTT_V5, &p, p.topic, p.payload), MQTT_OK);
	MT_ST(mqtt_parse_publish(out, len, MQTT_V5, &r), MQTT_OK);
	MT_CHECK(!r.has_pfi && r.props.len == 0 && len == n - 2, "PFI dropped");
	pb_init(&props);
	pb_u8(&props, 0x01); pb_u8(&props, 2);
	n = build_publish(pkt, sizeof pkt, MQTT_V5, 0, "t", 0, &props, "v", 1);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V5, &p), MQTT_MALFORMED);
	/* PFI 1 with a payload that is not UTF-8: ours to encrypt, not to judge. */
	pb_init(&props);
	pb_u8(&props, 0x01); pb_u8(&props, 1);
	n = build_publish(pkt, sizeof pkt, MQTT_V5, 0, "t", 0, &props, "\xFF\x00", 2);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V5, &p), MQTT_OK);
}

static void test_publish_sizes(void)
{
	static uint8_t payload[20000];
	struct mqtt_publish p, r, m;
	struct mqtt_span big = { payload, sizeof payload }, huge = { payload, MQTT_MAX_REMAINING };
	size_t n, len, pl, hl;

	memset(payload, 0x5A, sizeof payload);
	n = build_publish(pkt, sizeof pkt, MQTT_V311, 0x02, "t", 1, NULL, "x", 1);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V311, &p), MQTT_OK);
	/* Payload growing the Remaining Length to three bytes. */
	MT_ST(mqtt_write_publish(out, sizeof out, &len, MQTT_V311, &p, p.topic, big), MQTT_OK);
	MT_ST(mqtt_frame(out, len, sizeof out, &pl, &hl), MQTT_OK);
	MT_CHECK(pl == len && hl == 4 && len == 1 + 3 + 2 + 1 + 2 + sizeof payload,
		"3-byte header");
	MT_ST(mqtt_parse_publish(out, len, MQTT_V311, &r), MQTT_OK);
	MT_CHECK(span_eq(r.payload, payload, sizeof payload), "payload");
	/* At the protocol limit: the size query still answers, then TOO_BIG past it. */
	MT_ST(mqtt_write_publish(NULL, 0, &len, MQTT_V311, &p, p.topic, huge), MQTT_TOO_BIG);
	huge.len = MQTT_MAX_REMAINING - 5;
	MT_ST(mqtt_write_publish(NULL, 0, &len, MQTT_V311, &p, p.topic, huge), MQTT_BUFFER);
	MT_CHECK(len == 5 + MQTT_MAX_REMAINING, "largest packet size %zu", len);
	huge.len++;
	MT_ST(mqtt_write_publish(NULL, 0, &len, MQTT_V311, &p, p.topic, huge), MQTT_TOO_BIG);
	/* A struct the parser would not have produced. */
	m = p;
	m.qos = 2;
	MT_ST(mqtt_write_publish(out, sizeof out, &len, MQTT_V311, &m, p.topic, p.payload),
		MQTT_MALFORMED);
	m = p;
	m.packet_id = 0;
	MT_ST(mqtt_write_publish(out, sizeof out, &len, MQTT_V311, &m, p.topic, p.payload),
		MQTT_MALFORMED);
	m = p;
	m.flags = 0x08;
	m.qos = 0;
	MT_ST(mqtt_write_publish(out, sizeof out, &len, MQTT_V311, &m, p.topic, p.payload),
		MQTT_MALFORMED);
	m = p;
	m.props.p = (const uint8_t *)"\x23\x00";
	m.props.len = 2;
	MT_ST(mqtt_write_publish(out, sizeof out, &len, MQTT_V5, &m, p.topic, p.payload),
		MQTT_MALFORMED);
	/* Properties are ignored below v5: a 3.1.1 rewrite never emits them. */
	MT_ST(mqtt_write_publish(out, sizeof out, &len, MQTT_V311, &m, p.topic, p.payload),
		MQTT_OK);
	MT_CHECK(len == n, "no properties written for 3.1.1");
}

static const struct mt_test publish_tests[] = {
	{ "PUBLISH: v3/v4/v5 x QoS 0/1/2 round trip", test_publish_matrix },
	{ "PUBLISH: DUP, QoS and packet id rules", test_publish_flags },
	{ "PUBLISH: topic names", test_publish_topics },
	{ "PUBLISH: v5 properties, alias/PFI dropped, user properties in order",
		test_publish_v5_props },
	{ "PUBLISH: topic alias inputs", test_publish_alias },
	{ "PUBLISH: payload format indicator", test_publish_pfi },
	{ "PUBLISH: sizes and writer checks", test_publish_sizes },
	{ NULL, NULL },
};
const struct mt_suite mt_publish_suite = { "publish", publish_tests };
