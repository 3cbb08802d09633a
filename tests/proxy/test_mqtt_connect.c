/* CONNECT: 3.1, 3.1.1 and 5.0 parsing, and the rewrite of will and credentials. */
#include <string.h>

#include "mqtt_test.h"

static uint8_t pkt[2048], out[2048], again[2048];

static enum mqtt_status parse_spec(const struct cspec *cs, struct mqtt_connect *c, size_t *n)
{
	*n = build_connect(pkt, sizeof pkt, cs);
	return mqtt_parse_connect(pkt, *n, c);
}

/* Writing back with nothing replaced gives the very same bytes. */
static void check_identity(const struct mqtt_connect *c, size_t n)
{
	size_t len = 0;

	MT_ST(mqtt_write_connect(out, sizeof out, &len, c, c->will_payload, 0, NULL, NULL),
		MQTT_OK);
	MT_CHECK(len == n && memcmp(out, pkt, n) == 0, "identity rewrite (%zu vs %zu bytes)",
		len, n);
}

static void test_connect_v31(void)
{
	struct cspec cs = { .version = MQTT_V31, .client_id = "paho/1234", .clean = 1,
		.keepalive = 60 };
	struct mqtt_connect c;
	size_t n;

	MT_ST(parse_spec(&cs, &c, &n), MQTT_OK);
	MT_CHECK(c.version == MQTT_V31 && c.flags == 0x02 && c.keepalive == 60, "header fields");
	MT_CHECK(span_eq_str(c.client_id, "paho/1234"), "client id");
	MT_CHECK(!c.will && !c.has_username && !c.has_password, "no optional fields");
	MT_CHECK(c.props.len == 0 && c.will_props.len == 0, "no properties before v5");
	check_identity(&c, n);

	cs.will_topic = "dev/1/lwt";
	cs.will_payload = "offline";
	cs.will_payload_len = 7;
	cs.will_qos = 2;
	cs.username = "u";
	cs.password = "p";
	cs.password_len = 1;
	MT_ST(parse_spec(&cs, &c, &n), MQTT_OK);
	MT_CHECK(c.will && c.will_qos == 2 && !c.will_retain, "will flags");
	MT_CHECK(span_eq_str(c.will_topic, "dev/1/lwt") && span_eq_str(c.will_payload, "offline"),
		"will");
	MT_CHECK(span_eq_str(c.username, "u") && span_eq_str(c.password, "p"), "credentials");
	check_identity(&c, n);
}

static void test_connect_v311_rewrite(void)
{
	static const uint8_t sealed[300] = { 0xE2, 0x00, 0xFF };
	struct cspec cs = { .version = MQTT_V311, .client_id = "sensor-7", .keepalive = 30,
		.will_topic = "s/7/status", .will_payload = "gone", .will_payload_len = 4,
		.will_qos = 1, .will_retain = 1, .username = "alice", .password = "\x00\xFFpw",
		.password_len = 4 };
	struct mqtt_span wp = { sealed, sizeof sealed };
	struct mqtt_span user = { (const uint8_t *)"proxy-user", 10 };
	struct mqtt_span pass = { (const uint8_t *)"s3cret", 6 };
	struct mqtt_connect c, r;
	size_t n, len;

	MT_ST(parse_spec(&cs, &c, &n), MQTT_OK);
	MT_CHECK(c.flags == (0x04 | 0x08 | 0x20 | 0x40 | 0x80), "flags 0x%02x", c.flags);
	MT_CHECK(c.will && c.will_qos == 1 && c.will_retain, "will qos/retain");
	MT_CHECK(span_eq(c.password, "\x00\xFFpw", 4), "password is binary");
	check_identity(&c, n);

	/* The will payload is replaced by a larger one: lengths must follow. */
	MT_ST(mqtt_write_connect(out, sizeof out, &len, &c, wp, 0, &user, &pass), MQTT_OK);
	MT_ST(mqtt_parse_connect(out, len, &r), MQTT_OK);
	MT_CHECK(r.version == MQTT_V311 && r.keepalive == 30 && r.flags == c.flags, "header kept");
	MT_CHECK(span_eq_str(r.client_id, "sensor-7") && span_eq_str(r.will_topic, "s/7/status"),
		"client id and will topic kept");
	MT_CHECK(span_eq(r.will_payload, sealed, sizeof sealed), "will payload replaced");
	MT_CHECK(span_eq_str(r.username, "proxy-user") && span_eq_str(r.password, "s3cret"),
		"credentials replaced");
	MT_CHECK(r.will_qos == 1 && r.will_retain, "will qos/retain kept");

	/* Credentials injected into a CONNECT that had none; clean session kept. */
	cs.username = NULL;
	cs.password = NULL;
	cs.will_topic = NULL;
	cs.clean = 1;
	MT_ST(parse_spec(&cs, &c, &n), MQTT_OK);
	MT_ST(mqtt_write_connect(out, sizeof out, &len, &c, wp, 0, &user, &pass), MQTT_OK);
	MT_ST(mqtt_parse_connect(out, len, &r), MQTT_OK);
	MT_CHECK(r.flags == (0x02 | 0x40 | 0x80), "flags 0x%02x", r.flags);
	MT_CHECK(!r.will && r.will_payload.len == 0, "no will invented");
	MT_CHECK(span_eq_str(r.username, "proxy-user") && span_eq_str(r.password, "s3cret"),
		"credentials injected");
	/* Username only. */
	MT_ST(mqtt_write_connect(out, sizeof out, &len, &c, wp, 0, &user, NULL), MQTT_OK);
	MT_ST(mqtt_parse_connect(out, len, &r), MQTT_OK);
	MT_CHECK(r.has_username && !r.has_password, "username only");
	/* A password alone is not 3.1.1. */
	MT_ST(mqtt_write_connect(out, sizeof out, &len, &c, wp, 0, NULL, &pass), MQTT_MALFORMED);
}

/* Build a property block from (id, bytes) pieces. */
static void props_v5(struct pb *p, struct pb *will)
{
	pb_init(p);
	pb_u8(p, 0x11); pb_u32(p, 3600);            /* Session Expiry */
	pb_u8(p, 0x26); pb_str(p, "k1"); pb_str(p, "v1");
	pb_u8(p, 0x21); pb_u16(p, 20);              /* Receive Maximum */
	pb_u8(p, 0x26); pb_str(p, "k2"); pb_str(p, "v2");
	pb_u8(p, 0x15); pb_str(p, "SCRAM-SHA-1");   /* Authentication Method */
	pb_u8(p, 0x16); pb_bin(p, "\x01\x02", 2);   /* Authentication Data */
	pb_init(will);
	pb_u8(will, 0x18); pb_u32(will, 10);        /* Will Delay Interval */
	pb_u8(will, 0x01); pb_u8(will, 1);          /* Payload Format Indicator */
	pb_u8(will, 0x03); pb_str(will, "text/plain");
	pb_u8(will, 0x26); pb_str(will, "a"); pb_str(will, "1");
	pb_u8(will, 0x26); pb_str(will, "b"); pb_str(will, "2");
}

static void test_connect_v5(void)
{
	static const uint8_t sealed[70] = { 1, 2, 3 };
	struct pb props, wprops, expect;
	struct cspec cs = { .version = MQTT_V5, .client_id = "", .clean = 1, .keepalive = 5,
		.props = &props, .will_props = &wprops, .will_topic = "lwt", .will_payload = "bye",
		.will_payload_len = 3, .username = "bob", .password = "pw", .password_len = 2 };
	struct mqtt_span wp = { sealed, sizeof sealed };
	struct mqtt_connect c, r;
	size_t n, len;

	props_v5(&props, &wprops);
	MT_ST(parse_spec(&cs, &c, &n), MQTT_OK);
	MT_CHECK(c.version == MQTT_V5 && c.client_id.len == 0, "v5, empty client id");
	MT_CHECK(span_eq(c.props, props.b, props.n), "CONNECT properties span");
	MT_CHECK(span_eq(c.will_props, wprops.b, wprops.n), "will properties span");
	check_identity(&c, n);

	/* Drop PFI from the will: everything else stays, in order. */
	MT_ST(mqtt_write_connect(out, sizeof out, &len, &c, wp, 1, NULL, NULL), MQTT_OK);
	MT_ST(mqtt_parse_connect(out, len, &r), MQTT_OK);
	pb_init(&expect);
	pb_u8(&expect, 0x18); pb_u32(&expect, 10);
	pb_u8(&expect, 0x03); pb_str(&expect, "text/plain");
	pb_u8(&expect, 0x26); pb_str(&expect, "a"); pb_str(&expect, "1");
	pb_u8(&expect, 0x26); pb_str(&expect, "b"); pb_str(&expect, "2");
	MT_CHECK(span_eq(r.will_props, expect.b, expect.n), "will properties without PFI");
	MT_CHECK(span_eq(r.props, props.b, props.n), "CONNECT properties untouched");
	MT_CHECK(span_eq(r.will_payload, sealed, sizeof sealed), "will payload replaced");
	MT_CHECK(span_eq_str(r.username, "bob") && span_eq_str(r.password, "pw"), "credentials");
	/* The rewritten packet is itself stable under a second rewrite. */
	MT_ST(mqtt_write_connect(again, sizeof again, &n, &r, r.will_payload, 1, NULL, NULL),
		MQTT_OK);
	MT_CHECK(n == len && memcmp(again, out, len) == 0, "second rewrite is identical");

	/* v5 allows a password without a username (dropped MQTT-3.1.2-22). */
	cs.username = NULL;
	cs.will_topic = NULL;
	MT_ST(parse_spec(&cs, &c, &n), MQTT_OK);
	MT_CHECK(!c.has_username && c.has_password, "password alone");
	check_identity(&c, n);
	MT_ST(mqtt_write_connect(out, sizeof out, &len, &c, wp, 1, NULL, &c.password), MQTT_OK);
	cs.version = MQTT_V311;
	MT_ST(parse_spec(&cs, &c, &n), MQTT_MALFORMED);
	cs.version = MQTT_V31;
	MT_ST(parse_spec(&cs, &c, &n), MQTT_MALFORMED);
}

static void test_connect_protocol(void)
{
	static const struct {
		const char *name;
		int level;
		enum mqtt_status want;
	} cases[] = {
		{ "MQIsdp", 3, MQTT_OK }, { "MQTT", 4, MQTT_OK }, { "MQTT", 5, MQTT_OK },
		/* A known name with a foreign level: answered with CONNACK 0x01. */
		{ "MQTT", 3, MQTT_UNSUPPORTED }, { "MQIsdp", 4, MQTT_UNSUPPORTED },
		{ "MQIsdp", 5, MQTT_UNSUPPORTED }, { "MQTT", 6, MQTT_UNSUPPORTED },
		{ "MQTT", 9, MQTT_UNSUPPORTED },
		{ "MQTT", 2, MQTT_UNSUPPORTED }, { "MQTT", 0x84, MQTT_UNSUPPORTED },
		{ "mqtt", 4, MQTT_MALFORMED }, { "MQTTX", 4, MQTT_MALFORMED },
		{ "MQT", 4, MQTT_MALFORMED }, { "", 4, MQTT_MALFORMED },
		{ "MQIsd", 3, MQTT_MALFORMED },
	};
	struct mqtt_connect c;
	size_t n;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cspec cs = { .version = (uint8_t)cases[i].level, .name = cases[i].name,
			.level = cases[i].level, .client_id = "x" };
		enum mqtt_status st;

		/* Level 5 carries a property length; give other levels none. */
		if (cs.version != MQTT_V5)
			cs.version = MQTT_V311;
		st = parse_spec(&cs, &c, &n);
		MT_CHECK(st == cases[i].want, "\"%s\" level %d: %s", cases[i].name, cases[i].level,
			mqtt_strerror(st));
		if (st == MQTT_UNSUPPORTED)
			MT_CHECK(c.version == (uint8_t)cases[i].level && c.client_id.p == NULL,
				"level %d kept for the log, nothing else", cases[i].level);
	}
}

/* Level 9 is refused on name and level alone: what follows may be anything. */
static void test_connect_unsupported_level_only(void)
{
	static const uint8_t lvl9[] = { 0x10, 0x07, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x09 };
	static const uint8_t lvl9junk[] = { 0x10, 0x0A, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x09,
		0xFF, 0xFF, 0xFF };
	static const uint8_t noname[] = { 0x10, 0x07, 0x00, 0x04, 'M', 'Q', 'X', 'X', 0x09 };
	static const uint8_t nolevel[] = { 0x10, 0x06, 0x00, 0x04, 'M', 'Q', 'T', 'T' };
	uint8_t ack[5];
	struct mqtt_connect c;

	MT_ST(mqtt_parse_connect(lvl9, sizeof lvl9, &c), MQTT_UNSUPPORTED);
	MT_CHECK(c.version == 9, "level %u", c.version);
	MT_ST(mqtt_parse_connect(lvl9junk, sizeof lvl9junk, &c), MQTT_UNSUPPORTED);
	MT_ST(mqtt_parse_connect(noname, sizeof noname, &c), MQTT_MALFORMED);
	MT_ST(mqtt_parse_connect(nolevel, sizeof nolevel, &c), MQTT_MALFORMED);
	/* A truncated packet is not a CONNECT at all, whatever its first bytes. */
	MT_ST(mqtt_parse_connect(lvl9, sizeof lvl9 - 1, &c), MQTT_MALFORMED);
	MT_CHECK(mqtt_write_connack(ack, MQTT_V311, MQTT_CONNACK_BAD_PROTOCOL) == 4 &&
		!memcmp(ack, "\x20\x02\x00\x01", 4), "3.1.1 CONNACK 0x01");
	MT_CHECK(mqtt_write_connack(ack, MQTT_V31, 0x01) == 4 && ack[3] == 0x01, "3.1 CONNACK");
	MT_CHECK(mqtt_write_connack(ack, MQTT_V5, 0x84) == 5 &&
		!memcmp(ack, "\x20\x03\x00\x84\x00", 5), "5.0 CONNACK 0x84");
	MT_CHECK(mqtt_write_connack(ack, 9, 0x01) == 0, "no CONNACK form for level 9");
	MT_CHECK(mqtt_write_connack(NULL, MQTT_V5, 0x01) == 0, "NULL");
}

static void test_connect_flags(void)
{
	static const struct {
		int flags;
		int with_will;
		enum mqtt_status want;
		const char *what;
	} cases[] = {
		{ 0x00, 0, MQTT_OK, "none" },
		{ 0x01, 0, MQTT_MALFORMED, "reserved bit" },
		{ 0x03, 0, MQTT_MALFORMED, "reserved bit with clean" },
		{ 0x08, 0, MQTT_MALFORMED, "will QoS 1 without will" },
		{ 0x10, 0, MQTT_MALFORMED, "will QoS 2 without will" },
		{ 0x20, 0, MQTT_MALFORMED, "will retain without will" },
		{ 0x1C, 1, MQTT_MALFORMED, "will QoS 3" },
		{ 0x34, 1, MQTT_OK, "will QoS 2 retained" },
	};
	struct mqtt_connect c;
	size_t n;

	for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			struct cspec cs = { .version = v, .client_id = "x",
				.flags = 0x100 | cases[i].flags };
			enum mqtt_status st;

			if (cases[i].with_will) {
				cs.will_topic = "w";
				cs.will_payload = "p";
				cs.will_payload_len = 1;
			}
			st = parse_spec(&cs, &c, &n);
			MT_CHECK(st == cases[i].want, "v%u %s: %s", v, cases[i].what,
				mqtt_strerror(st));
		}
	}
}

static void test_connect_fields(void)
{
	struct cspec base = { .version = MQTT_V311, .client_id = "x", .will_topic = "w",
		.will_payload = "", .username = "u" };
	struct mqtt_connect c;
	struct cspec cs;
	struct pb b;
	size_t n;

	cs = base;
	MT_ST(parse_spec(&cs, &c, &n), MQTT_OK);
	MT_CHECK(c.will && c.will_payload.len == 0, "empty will payload is fine");
	cs = base;
	cs.client_id = "\xC0\x80";
	MT_ST(parse_spec(&cs, &c, &n), MQTT_MALFORMED);
	cs = base;
	cs.will_topic = "a/\xED\xA0\x80";
	MT_ST(parse_spec(&cs, &c, &n), MQTT_MALFORMED);
	cs = base;
	cs.will_topic = "";
	MT_ST(parse_spec(&cs, &c, &n), MQTT_MALFORMED);
	cs = base;
	cs.will_topic = "a/+/c";
	MT_ST(parse_spec(&cs, &c, &n), MQTT_MALFORMED);
	cs = base;
	cs.will_topic = "a/#";
	MT_ST(parse_spec(&cs, &c, &n), MQTT_MALFORMED);
	cs = base;
	cs.username = "\xFF";
	MT_ST(parse_spec(&cs, &c, &n), MQTT_MALFORMED);

	/* U+0000 inside the client id. */
	pb_init(&b);
	pb_str(&b, "MQTT");
	pb_u8(&b, 4);
	pb_u8(&b, 0x02);
	pb_u16(&b, 0);
	pb_bin(&b, "a\0b", 3);
	n = pb_packet(pkt, sizeof pkt, 0x10, &b);
	MT_ST(mqtt_parse_connect(pkt, n, &c), MQTT_MALFORMED);
	/* Fixed header flags must be zero. */
	cs = base;
	n = build_connect(pkt, sizeof pkt, &cs);
	pkt[0] = 0x12;
	MT_ST(mqtt_parse_connect(pkt, n, &c), MQTT_MALFORMED);
	/* A PUBLISH is not a CONNECT. */
	pkt[0] = 0x30;
	MT_ST(mqtt_parse_connect(pkt, n, &c), MQTT_MALFORMED);
}

static void test_connect_truncated(void)
{
	struct pb props, wprops;
	struct cspec cs = { .version = MQTT_V5, .client_id = "cid", .props = &props,
		.will_props = &wprops, .will_topic = "t", .will_payload = "p",
		.will_payload_len = 1,
		.username = "u", .password = "p", .password_len = 1 };
	struct mqtt_connect c;
	size_t n, pl, hl;

	props_v5(&props, &wprops);
	n = build_connect(pkt, sizeof pkt, &cs);
	MT_ST(mqtt_parse_connect(pkt, n, &c), MQTT_OK);
	MT_ST(mqtt_frame(pkt, n, n, &pl, &hl), MQTT_OK);
	/* Remaining Length shortened: the body ends inside some field. */
	for (size_t cut = 1; cut <= n - hl; cut++) {
		struct pb b;
		size_t m;

		pb_init(&b);
		pb_raw(&b, pkt + hl, n - hl - cut);
		m = pb_packet(again, sizeof again, 0x10, &b);
		if (mqtt_parse_connect(again, m, &c) != MQTT_MALFORMED) {
			MT_CHECK(0, "CONNECT cut by %zu parsed", cut);
			break;
		}
		MT_CHECK(c.version == 0 && c.client_id.p == NULL, "result cleared");
	}
	/* Whole packets only: a short buffer or extra bytes are refused. */
	MT_ST(mqtt_parse_connect(pkt, n - 1, &c), MQTT_MALFORMED);
	memcpy(again, pkt, n);
	again[n] = 0;
	MT_ST(mqtt_parse_connect(again, n + 1, &c), MQTT_MALFORMED);
	{
		struct pb b;
		size_t m;

		pb_init(&b);
		pb_raw(&b, pkt + hl, n - hl);
		pb_u8(&b, 0);   /* trailing byte inside the Remaining Length */
		m = pb_packet(again, sizeof again, 0x10, &b);
		MT_ST(mqtt_parse_connect(again, m, &c), MQTT_MALFORMED);
	}
}

static void test_connect_v5_props(void)
{
	struct pb props, wprops;
	struct cspec cs = { .version = MQTT_V5, .client_id = "c", .props = &props,
		.will_props = &wprops, .will_topic = "t" };
	struct mqtt_connect c;
	size_t n;

	pb_init(&wprops);
	pb_init(&props);
	pb_u8(&props, 0x23); pb_u16(&props, 1);     /* Topic Alias: PUBLISH only */
	MT_ST(parse_spec(&cs, &c, &n), MQTT_MALFORMED);
	pb_init(&props);
	pb_u8(&props, 0x11); pb_u32(&props, 1);
	pb_u8(&props, 0x11); pb_u32(&props, 2);     /* duplicate */
	MT_ST(parse_spec(&cs, &c, &n), MQTT_MALFORMED);
	pb_init(&props);
	pb_u8(&wprops, 0x11); pb_u32(&wprops, 1);   /* Session Expiry is not a will property */
	MT_ST(parse_spec(&cs, &c, &n), MQTT_MALFORMED);
	pb_init(&wprops);
	pb_u8(&wprops, 0x01); pb_u8(&wprops, 2);    /* PFI must be 0 or 1 */
	MT_ST(parse_spec(&cs, &c, &n), MQTT_MALFORMED);
	pb_init(&wprops);
	pb_u8(&wprops, 0x08); pb_str(&wprops, "re/+"); /* Response Topic with a wildcard */
	MT_ST(parse_spec(&cs, &c, &n), MQTT_MALFORMED);
	pb_init(&wprops);
	pb_u8(&wprops, 0x08); pb_str(&wprops, "re/1");
	MT_ST(parse_spec(&cs, &c, &n), MQTT_OK);
}

static void test_connect_write_limits(void)
{
	static uint8_t big[70000];
	struct cspec cs = { .version = MQTT_V311, .client_id = "c", .will_topic = "t" };
	struct mqtt_span wp = { big, 65535 }, bad = { (const uint8_t *)"\xC3", 1 };
	struct mqtt_connect c, m;
	size_t n, len;

	MT_ST(parse_spec(&cs, &c, &n), MQTT_OK);
	MT_ST(mqtt_write_connect(NULL, 0, &len, &c, wp, 0, NULL, NULL), MQTT_BUFFER);
	/* Remaining Length grows from one byte to three. */
	MT_CHECK(len == n + 65535 + 2, "size with the largest will payload");
	wp.len = 65536;
	MT_ST(mqtt_write_connect(NULL, 0, &len, &c, wp, 0, NULL, NULL), MQTT_TOO_BIG);
	MT_ST(mqtt_write_connect(out, sizeof out, &len, &c, c.will_payload, 0, &bad, NULL),
		MQTT_MALFORMED);
	m = c;
	m.version = 6;
	MT_ST(mqtt_write_connect(out, sizeof out, &len, &m, c.will_payload, 0, NULL, NULL),
		MQTT_MALFORMED);
	m = c;
	m.will_qos = 3;
	MT_ST(mqtt_write_connect(out, sizeof out, &len, &m, c.will_payload, 0, NULL, NULL),
		MQTT_MALFORMED);
	m = c;
	m.will_topic.len = 0;
	MT_ST(mqtt_write_connect(out, sizeof out, &len, &m, c.will_payload, 0, NULL, NULL),
		MQTT_MALFORMED);
	/* Without a will the will payload argument is ignored. */
	m = c;
	m.will = 0;
	MT_ST(mqtt_write_connect(out, sizeof out, &len, &m, wp, 0, NULL, NULL), MQTT_OK);
	MT_ST(mqtt_parse_connect(out, len, &c), MQTT_OK);
	MT_CHECK(!c.will, "no will");
}

static const struct mt_test connect_tests[] = {
	{ "CONNECT: 3.1 (MQIsdp)", test_connect_v31 },
	{ "CONNECT: 3.1.1 will and credential rewrite", test_connect_v311_rewrite },
	{ "CONNECT: 5.0 properties, will properties, PFI drop", test_connect_v5 },
	{ "CONNECT: protocol name/level combinations", test_connect_protocol },
	{ "CONNECT: unsupported level from name and level alone", test_connect_unsupported_level_only },
	{ "CONNECT: connect flags", test_connect_flags },
	{ "CONNECT: strings and topics", test_connect_fields },
	{ "CONNECT: truncated and padded", test_connect_truncated },
	{ "CONNECT: 5.0 property rules", test_connect_v5_props },
	{ "CONNECT: writer limits", test_connect_write_limits },
	{ NULL, NULL },
};
const struct mt_suite mt_connect_suite = { "connect", connect_tests };
