/*
 * MQTT codec unit tests (tests/proxy): misuse first, then framing, acks and
 * DISCONNECT here; CONNECT, PUBLISH, properties and UTF-8 in their own files.
 * One executable, registered as meson test 'mqtt_codec'.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "mqtt_test.h"

/* ---- Safety: NULL and short buffers ---- */

static void test_safety_null(void)
{
	uint8_t pkt[64], out[64];
	struct mqtt_connect c;
	struct mqtt_publish p;
	struct mqtt_span none = { NULL, 0 };
	size_t pl = 99, hl = 99, len = 99;
	uint16_t id = 7;

	MT_ST(mqtt_frame(NULL, 0, 100, &pl, &hl), MQTT_NEED_MORE);
	MT_ST(mqtt_frame(NULL, 3, 100, &pl, &hl), MQTT_MALFORMED);
	pkt[0] = 0xC0;
	pkt[1] = 0x00;
	MT_ST(mqtt_frame(pkt, 2, 100, NULL, &hl), MQTT_MALFORMED);
	MT_ST(mqtt_frame(pkt, 2, 100, &pl, NULL), MQTT_MALFORMED);
	MT_ST(mqtt_parse_connect(NULL, 0, &c), MQTT_MALFORMED);
	MT_ST(mqtt_parse_connect(pkt, 2, NULL), MQTT_MALFORMED);
	MT_ST(mqtt_parse_publish(NULL, 0, MQTT_V311, &p), MQTT_MALFORMED);
	MT_ST(mqtt_parse_publish(pkt, 2, MQTT_V311, NULL), MQTT_MALFORMED);
	MT_ST(mqtt_parse_ack(NULL, 0, &id), MQTT_MALFORMED);
	MT_ST(mqtt_parse_ack(pkt, 2, NULL), MQTT_MALFORMED);
	MT_CHECK(id == 0, "packet id cleared on failure");
	memset(&c, 0, sizeof c);
	c.version = MQTT_V311;
	MT_ST(mqtt_write_connect(out, sizeof out, NULL, &c, none, 0, NULL, NULL), MQTT_MALFORMED);
	MT_ST(mqtt_write_connect(out, sizeof out, &len, NULL, none, 0, NULL, NULL), MQTT_MALFORMED);
	memset(&p, 0, sizeof p);
	MT_ST(mqtt_write_publish(out, sizeof out, NULL, MQTT_V311, &p, none, none), MQTT_MALFORMED);
	MT_ST(mqtt_write_publish(out, sizeof out, &len, MQTT_V311, NULL, none, none),
		MQTT_MALFORMED);
	MT_CHECK(mqtt_varint_write(NULL, 1) == 0, "varint_write(NULL)");
	MT_CHECK(mqtt_write_disconnect(NULL, MQTT_V5, 0) == 0, "write_disconnect(NULL)");
	MT_CHECK(mqtt_utf8_valid(NULL, 0) == 1, "empty NULL string is valid");
	MT_CHECK(mqtt_utf8_valid(NULL, 1) == 0, "NULL with a length is not");
	MT_ST(mqtt_validate_props(NULL, 0, MQTT_PUBLISH), MQTT_OK);
	MT_ST(mqtt_validate_props(NULL, 2, MQTT_PUBLISH), MQTT_MALFORMED);
	MT_ST(mqtt_validate_props(pkt, 0, -1), MQTT_MALFORMED);
	MT_ST(mqtt_validate_props(pkt, 0, 16), MQTT_MALFORMED);
}

static void test_safety_bad_version(void)
{
	uint8_t pkt[64], out[64];
	struct mqtt_publish p;
	struct mqtt_span t = { (const uint8_t *)"a", 1 };
	size_t n = build_publish(pkt, sizeof pkt, MQTT_V311, 0, "a", 0, NULL, "x", 1), len;

	MT_ST(mqtt_parse_publish(pkt, n, 0, &p), MQTT_MALFORMED);
	MT_ST(mqtt_parse_publish(pkt, n, 2, &p), MQTT_MALFORMED);
	MT_ST(mqtt_parse_publish(pkt, n, 6, &p), MQTT_MALFORMED);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V311, &p), MQTT_OK);
	MT_ST(mqtt_write_publish(out, sizeof out, &len, 6, &p, t, t), MQTT_MALFORMED);
	MT_CHECK(mqtt_write_disconnect(out, 2, 0) == 0, "disconnect for version 2");
	MT_CHECK(mqtt_write_disconnect(out, 6, 0) == 0, "disconnect for version 6");
}

/* Short output: MQTT_BUFFER, the size needed, and not one byte written. */
static void test_safety_short_output(void)
{
	uint8_t pkt[64], out[64], ref[64];
	struct mqtt_publish p;
	struct mqtt_connect c;
	struct mqtt_span t = { (const uint8_t *)"a/b", 3 }, pl = { (const uint8_t *)"hello", 5 };
	struct cspec cs = { .version = MQTT_V311, .client_id = "id", .clean = 1 };
	size_t n, len, need;

	n = build_publish(pkt, sizeof pkt, MQTT_V311, 0x02, "a/b", 9, NULL, "hello", 5);
	MT_ST(mqtt_parse_publish(pkt, n, MQTT_V311, &p), MQTT_OK);
	MT_ST(mqtt_write_publish(NULL, 0, &need, MQTT_V311, &p, t, pl), MQTT_BUFFER);
	MT_CHECK(need == n, "size query %zu, packet %zu", need, n);
	memset(out, 0xA5, sizeof out);
	memcpy(ref, out, sizeof out);
	MT_ST(mqtt_write_publish(out, need - 1, &len, MQTT_V311, &p, t, pl), MQTT_BUFFER);
	MT_CHECK(len == need, "len on MQTT_BUFFER");
	MT_CHECK(memcmp(out, ref, sizeof out) == 0, "nothing written on MQTT_BUFFER");
	MT_ST(mqtt_write_publish(out, need, &len, MQTT_V311, &p, t, pl), MQTT_OK);
	MT_CHECK(len == n && memcmp(out, pkt, n) == 0, "exact fit");

	n = build_connect(pkt, sizeof pkt, &cs);
	MT_ST(mqtt_parse_connect(pkt, n, &c), MQTT_OK);
	MT_ST(mqtt_write_connect(NULL, 0, &need, &c, pl, 0, NULL, NULL), MQTT_BUFFER);
	MT_CHECK(need == n, "CONNECT size query %zu, packet %zu", need, n);
	memcpy(out, ref, sizeof out);
	MT_ST(mqtt_write_connect(out, need - 1, &len, &c, pl, 0, NULL, NULL), MQTT_BUFFER);
	MT_CHECK(memcmp(out, ref, sizeof out) == 0, "nothing written on MQTT_BUFFER");
	MT_ST(mqtt_write_connect(out, need, &len, &c, pl, 0, NULL, NULL), MQTT_OK);
	MT_CHECK(len == n && memcmp(out, pkt, n) == 0, "CONNECT exact fit");
}

static void test_safety_strerror(void)
{
	const char *s[6];

	for (int i = 0; i < 6; i++) {
		s[i] = mqtt_strerror((enum mqtt_status)i);
		MT_CHECK(s[i] && *s[i], "strerror(%d)", i);
		for (int j = 0; j < i; j++)
			MT_CHECK(strcmp(s[i], s[j]) != 0, "strerror(%d) == strerror(%d)", i, j);
	}
	MT_CHECK(mqtt_strerror((enum mqtt_status)42) != NULL, "unknown status");
}

static const struct mt_test safety_tests[] = {
	{ "Safety: NULL arguments", test_safety_null },
	{ "Safety: unknown protocol versions", test_safety_bad_version },
	{ "Safety: short output buffers", test_safety_short_output },
	{ "Safety: strerror", test_safety_strerror },
	{ NULL, NULL },
};
const struct mt_suite mt_safety_suite = { "safety", safety_tests };

/* ---- Framing ---- */

static const struct {
	uint32_t v;
	size_t n;
} varints[] = {
	{ 0, 1 }, { 1, 1 }, { 127, 1 }, { 128, 2 }, { 16383, 2 }, { 16384, 3 },
	{ 2097151, 3 }, { 2097152, 4 }, { 268435455, 4 },
};

static void test_frame_varint_boundaries(void)
{
	for (size_t i = 0; i < sizeof varints / sizeof varints[0]; i++) {
		uint8_t buf[8] = { 0x30 }, vb[4];
		struct pb ref;
		size_t n = mqtt_varint_write(vb, varints[i].v), pl, hl, total;

		MT_CHECK(n == varints[i].n, "varint %u: %zu bytes, want %zu", varints[i].v, n,
			varints[i].n);
		pb_init(&ref);
		pb_varint(&ref, varints[i].v);
		MT_CHECK(ref.n == n && memcmp(ref.b, vb, n) == 0, "varint %u encoding",
			varints[i].v);
		memcpy(buf + 1, vb, n);
		total = 1 + n + varints[i].v;
		/* The header alone pins the size: one byte less is TOO_BIG, exact waits. */
		MT_ST(mqtt_frame(buf, 1 + n, total - 1, &pl, &hl), MQTT_TOO_BIG);
		MT_ST(mqtt_frame(buf, 1 + n, total, &pl, &hl),
			varints[i].v ? MQTT_NEED_MORE : MQTT_OK);
		/* Header complete: the sizes are known before the body is there. */
		MT_CHECK(pl == total && hl == 1 + n, "varint %u: sizes %zu/%zu while waiting",
			varints[i].v, pl, hl);
		/* Header cut inside its varint: nothing is known yet. */
		if (n > 1) {
			MT_ST(mqtt_frame(buf, n, total, &pl, &hl), MQTT_NEED_MORE);
			MT_CHECK(pl == 0 && hl == 0, "varint %u cut: sizes cleared", varints[i].v);
		}
	}
	{
		uint8_t vb[4] = { 0 };

		MT_CHECK(mqtt_varint_write(vb, 268435456U) == 0, "2^28 does not fit");
		MT_CHECK(mqtt_varint_write(vb, UINT32_MAX) == 0, "UINT32_MAX does not fit");
		MT_CHECK(mqtt_varint_write(vb, 128) == 2 && vb[0] == 0x80 && vb[1] == 0x01, "128");
		MT_CHECK(mqtt_varint_write(vb, 268435455) == 4 && vb[0] == 0xFF && vb[1] == 0xFF &&
			vb[2] == 0xFF && vb[3] == 0x7F, "max");
	}
}

static void test_frame_whole(void)
{
	uint8_t buf[300];
	size_t n, pl, hl;

	n = build_publish(buf, sizeof buf, MQTT_V311, 0, "t", 0, NULL,
		"0123456789012345678901234567890123456789012345678901234567890123456789"
		"0123456789012345678901234567890123456789012345678901234567890123456789", 140);
	MT_ST(mqtt_frame(buf, n, 1000, &pl, &hl), MQTT_OK);
	MT_CHECK(pl == n && hl == 3, "pkt %zu/%zu hdr %zu", pl, n, hl);
	/* Two packets back to back: only the first is reported. */
	buf[n] = 0xC0;
	buf[n + 1] = 0x00;
	MT_ST(mqtt_frame(buf, n + 2, 1000, &pl, &hl), MQTT_OK);
	MT_CHECK(pl == n, "first packet only");
	MT_ST(mqtt_frame(buf + n, 2, 1000, &pl, &hl), MQTT_OK);
	MT_CHECK(pl == 2 && hl == 2, "PINGREQ");
	MT_ST(mqtt_frame(buf, n, n, &pl, &hl), MQTT_OK);
	MT_ST(mqtt_frame(buf, n, n - 1, &pl, &hl), MQTT_TOO_BIG);
	MT_ST(mqtt_frame(buf, n, 0, &pl, &hl), MQTT_TOO_BIG);
}

static void test_frame_truncation(void)
{
	static uint8_t buf[300], big[20000], payload[17000];
	size_t n, pl, hl;

	memset(payload, 'p', sizeof payload);
	n = build_publish(buf, sizeof buf, MQTT_V5, 0x02, "a/b", 1, NULL, payload, 200);
	for (size_t k = 0; k < n; k++)
		MT_ST(mqtt_frame(buf, k, 1000, &pl, &hl), MQTT_NEED_MORE);
	MT_ST(mqtt_frame(buf, n, 1000, &pl, &hl), MQTT_OK);
	/* A 3-byte Remaining Length, cut inside the header too. */
	n = build_publish(big, sizeof big, MQTT_V311, 0, "t", 0, NULL, payload, sizeof payload);
	MT_ST(mqtt_frame(big, n, sizeof big, &pl, &hl), MQTT_OK);
	MT_CHECK(hl == 4 && pl == n, "3-byte varint header");
	for (size_t k = 0; k < n; k++) {
		if (mqtt_frame(big, k, sizeof big, &pl, &hl) != MQTT_NEED_MORE) {
			MT_CHECK(0, "truncated at %zu", k);
			break;
		}
	}
}

static void test_frame_overlong(void)
{
	static const uint8_t five[] = { 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 };
	static const uint8_t five0[] = { 0x30, 0x80, 0x80, 0x80, 0x80, 0x00 };
	static const uint8_t nm1[] = { 0x30, 0x80, 0x00 };
	static const uint8_t nm2[] = { 0x30, 0xFF, 0x80, 0x00 };
	static const uint8_t nm3[] = { 0x30, 0x80, 0x80, 0x80, 0x00 };
	size_t pl, hl;

	MT_ST(mqtt_frame(five, sizeof five, SIZE_MAX, &pl, &hl), MQTT_MALFORMED);
	/* Decided as soon as the fifth length byte shows up. */
	MT_ST(mqtt_frame(five, 5, SIZE_MAX, &pl, &hl), MQTT_MALFORMED);
	MT_ST(mqtt_frame(five, 4, SIZE_MAX, &pl, &hl), MQTT_NEED_MORE);
	MT_ST(mqtt_frame(five0, sizeof five0, SIZE_MAX, &pl, &hl), MQTT_MALFORMED);
	MT_ST(mqtt_frame(nm1, sizeof nm1, SIZE_MAX, &pl, &hl), MQTT_MALFORMED);
	MT_ST(mqtt_frame(nm1, 2, SIZE_MAX, &pl, &hl), MQTT_NEED_MORE);
	MT_ST(mqtt_frame(nm2, sizeof nm2, SIZE_MAX, &pl, &hl), MQTT_MALFORMED);
	MT_ST(mqtt_frame(nm3, sizeof nm3, SIZE_MAX, &pl, &hl), MQTT_MALFORMED);
}

static void test_frame_too_big_header_only(void)
{
	static const uint8_t hdr[] = { 0x30, 0xFF, 0xFF, 0xFF, 0x7F };
	size_t pl = 1, hl = 1;

	MT_ST(mqtt_frame(hdr, sizeof hdr, 1024, &pl, &hl), MQTT_TOO_BIG);
	MT_CHECK(pl == 0 && hl == 0, "sizes cleared on failure");
	MT_ST(mqtt_frame(hdr, sizeof hdr, 268435455U + 5, &pl, &hl), MQTT_NEED_MORE);
	MT_ST(mqtt_frame(hdr, sizeof hdr, 268435455U + 4, &pl, &hl), MQTT_TOO_BIG);
}

/* MQTT 3.1.1 Table 2.2 / 5.0 Table 2-2. */
static int flags_expected(unsigned type, unsigned flags)
{
	if (type == 0)
		return 0;
	if (type == MQTT_PUBLISH)
		return (flags & 0x6) != 0x6;
	if (type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE)
		return flags == 0x2;
	return flags == 0;
}

static void test_frame_reserved_flags(void)
{
	for (unsigned type = 0; type < 16; type++) {
		for (unsigned flags = 0; flags < 16; flags++) {
			uint8_t pkt[2] = { (uint8_t)(type << 4 | flags), 0 };
			size_t pl, hl;
			enum mqtt_status st = mqtt_frame(pkt, 2, 100, &pl, &hl);

			MT_CHECK((st == MQTT_OK) == flags_expected(type, flags),
				"type %u flags 0x%x: %s", type, flags, mqtt_strerror(st));
			/* The flag check needs only the first byte. */
			st = mqtt_frame(pkt, 1, 100, &pl, &hl);
			MT_CHECK(st == (flags_expected(type, flags) ? MQTT_NEED_MORE :
				MQTT_MALFORMED), "type %u flags 0x%x, one byte: %s", type, flags,
				mqtt_strerror(st));
		}
	}
}

static const struct mt_test frame_tests[] = {
	{ "Frame: varint boundaries 1..4 bytes", test_frame_varint_boundaries },
	{ "Frame: whole packets", test_frame_whole },
	{ "Frame: NEED_MORE at every truncation", test_frame_truncation },
	{ "Frame: overlong and non-minimal varints", test_frame_overlong },
	{ "Frame: TOO_BIG from the header alone", test_frame_too_big_header_only },
	{ "Frame: reserved flags of every type", test_frame_reserved_flags },
	{ NULL, NULL },
};
const struct mt_suite mt_frame_suite = { "frame", frame_tests };

/* ---- Acks and DISCONNECT ---- */

static void ack_case(const uint8_t *pkt, size_t n, enum mqtt_status want, uint16_t want_id,
	const char *what)
{
	uint16_t id = 0xFFFF;
	enum mqtt_status st = mqtt_parse_ack(pkt, n, &id);

	MT_CHECK(st == want, "%s: %s", what, mqtt_strerror(st));
	MT_CHECK(id == (st == MQTT_OK ? want_id : 0), "%s: id %u", what, id);
}

static void test_ack_parse(void)
{
	static const uint8_t puback[] = { 0x40, 0x02, 0x12, 0x34 };
	static const uint8_t pubrec[] = { 0x50, 0x02, 0x00, 0x01 };
	static const uint8_t pubrel[] = { 0x62, 0x02, 0xFF, 0xFF };
	static const uint8_t pubcomp[] = { 0x70, 0x02, 0x00, 0x02 };
	static const uint8_t pubrel0[] = { 0x60, 0x02, 0x00, 0x01 };
	static const uint8_t id0[] = { 0x40, 0x02, 0x00, 0x00 };
	static const uint8_t shortp[] = { 0x40, 0x01, 0x00 };
	static const uint8_t suback[] = { 0x90, 0x03, 0x00, 0x01, 0x00 };
	static const uint8_t v5rc[] = { 0x40, 0x03, 0x00, 0x05, 0x10 };
	static const uint8_t v5rc0[] = { 0x50, 0x04, 0x00, 0x05, 0x00, 0x00 };
	static const uint8_t v5props[] = { 0x70, 0x08, 0x00, 0x05, 0x92, 0x04, 0x1F, 0x00, 0x01,
		'x' };
	static const uint8_t v5bad[] = { 0x40, 0x07, 0x00, 0x05, 0x00, 0x03, 0x23, 0x00, 0x01 };
	static const uint8_t v5trail[] = { 0x40, 0x06, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00 };
	static const uint8_t v5short[] = { 0x40, 0x05, 0x00, 0x05, 0x00, 0x05, 0x1F };

	ack_case(puback, sizeof puback, MQTT_OK, 0x1234, "PUBACK");
	ack_case(pubrec, sizeof pubrec, MQTT_OK, 1, "PUBREC");
	ack_case(pubrel, sizeof pubrel, MQTT_OK, 0xFFFF, "PUBREL");
	ack_case(pubcomp, sizeof pubcomp, MQTT_OK, 2, "PUBCOMP");
	ack_case(pubrel0, sizeof pubrel0, MQTT_MALFORMED, 0, "PUBREL without 0x2");
	ack_case(id0, sizeof id0, MQTT_MALFORMED, 0, "packet id 0");
	ack_case(shortp, sizeof shortp, MQTT_MALFORMED, 0, "1-byte body");
	ack_case(puback, 3, MQTT_MALFORMED, 0, "truncated");
	ack_case(suback, sizeof suback, MQTT_MALFORMED, 0, "SUBACK is not a publish ack");
	ack_case(v5rc, sizeof v5rc, MQTT_OK, 5, "v5 reason code");
	ack_case(v5rc0, sizeof v5rc0, MQTT_OK, 5, "v5 empty properties");
	ack_case(v5props, sizeof v5props, MQTT_OK, 5, "v5 reason string");
	ack_case(v5bad, sizeof v5bad, MQTT_MALFORMED, 0, "v5 Topic Alias in an ack");
	ack_case(v5trail, sizeof v5trail, MQTT_MALFORMED, 0, "v5 bytes after the properties");
	ack_case(v5short, sizeof v5short, MQTT_MALFORMED, 0, "v5 properties past the end");
}

/*
 * A 5.0 ack of @p type, packet id 0x0180, reason 0x10, and a property block
 * of exactly @p plen bytes of User Properties (0 or >= 6). Returns its size.
 */
static size_t build_long_ack(uint8_t *pkt, size_t cap, int type, size_t plen)
{
	uint8_t vb[4];
	size_t n, vn, left = plen;

	vn = mqtt_varint_write(vb, (uint32_t)plen);
	n = 1 + mqtt_varint_write(pkt + 1, (uint32_t)(3 + vn + plen));
	if (n + 3 + vn + plen > cap)
		abort();
	pkt[0] = (uint8_t)(type << 4 | (type == MQTT_PUBREL ? 2 : 0));
	pkt[n++] = 0x01;
	pkt[n++] = 0x80;   /* low id byte 0x80: a failure code if read as one */
	pkt[n++] = 0x10;   /* No matching subscribers: a success */
	memcpy(pkt + n, vb, vn);
	n += vn;
	while (left) {
		size_t chunk = left > 60006 ? 60006 : left, v;

		if (left - chunk && left - chunk < 6)
			chunk -= 6;
		v = chunk - 6;
		pkt[n++] = 0x26;
		pkt[n++] = 0;
		pkt[n++] = 1;
		pkt[n++] = 'k';
		pkt[n++] = (uint8_t)(v >> 8);
		pkt[n++] = (uint8_t)v;
		memset(pkt + n, 'r', v);
		n += v;
		left -= chunk;
	}
	return n;
}

/*
 * 5.0 acks whose Remaining Length takes 1..4 bytes: the reason code sits
 * after a longer header, so reading it at a fixed offset (pkt[4]) takes a
 * byte of the packet id instead (here 0x80, a "failure").
 */
static void test_ack_long_length(void)
{
	static uint8_t pkt[2200000];
	static const size_t plens[] = { 0, 200, 20000, 2100000 };

	for (size_t k = 0; k < 4; k++) {
		for (int type = MQTT_PUBACK; type <= MQTT_PUBCOMP; type++) {
			size_t n = build_long_ack(pkt, sizeof pkt, type, plens[k]), pl, hl;
			uint16_t id = 0;
			uint8_t rc = 0xEE;

			MT_ST(mqtt_frame(pkt, n, sizeof pkt, &pl, &hl), MQTT_OK);
			MT_CHECK(pl == n && hl == 2 + k, "type %d: header %zu bytes, want %zu",
				type, hl, 2 + k);
			MT_ST(mqtt_parse_ack_reason(pkt, n, &id, &rc), MQTT_OK);
			MT_CHECK(id == 0x0180 && rc == 0x10,
				"type %d, %zu-byte header: id 0x%04x reason 0x%02x", type, hl, id, rc);
		}
	}
	{
		static const uint8_t v3[] = { 0x50, 0x02, 0x00, 0x09 };
		static const uint8_t fail[] = { 0x50, 0x03, 0x00, 0x09, 0x87 };
		uint16_t id;
		uint8_t rc = 0xEE;

		MT_ST(mqtt_parse_ack_reason(v3, sizeof v3, &id, &rc), MQTT_OK);
		MT_CHECK(id == 9 && rc == 0, "no reason code: success");
		MT_ST(mqtt_parse_ack_reason(fail, sizeof fail, &id, &rc), MQTT_OK);
		MT_CHECK(rc == 0x87, "reason 0x87");
		MT_ST(mqtt_parse_ack_reason(fail, sizeof fail, &id, NULL), MQTT_MALFORMED);
		MT_ST(mqtt_parse_ack_reason(fail, sizeof fail - 1, &id, &rc), MQTT_MALFORMED);
		MT_CHECK(rc == 0 && id == 0, "cleared on failure");
	}
}

static void test_disconnect(void)
{
	uint8_t out[4];
	size_t n, pl, hl;

	for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
		memset(out, 0xAA, sizeof out);
		n = mqtt_write_disconnect(out, v, 0x8E);
		if (v < MQTT_V5)
			MT_CHECK(n == 2 && out[0] == 0xE0 && out[1] == 0, "v%u DISCONNECT", v);
		else
			MT_CHECK(n == 3 && out[0] == 0xE0 && out[1] == 1 && out[2] == 0x8E,
				"v5 DISCONNECT with reason");
		MT_ST(mqtt_frame(out, n, 16, &pl, &hl), MQTT_OK);
		MT_CHECK(pl == n, "frames as one packet");
	}
	n = mqtt_write_disconnect(out, MQTT_V5, 0);
	MT_CHECK(n == 2 && out[0] == 0xE0 && out[1] == 0, "v5 normal disconnection is 2 bytes");
}

static const struct mt_test ack_tests[] = {
	{ "Acks: PUBACK/PUBREC/PUBREL/PUBCOMP", test_ack_parse },
	{ "Acks: reason code after a 1..4-byte Remaining Length", test_ack_long_length },
	{ "Acks: DISCONNECT per version", test_disconnect },
	{ NULL, NULL },
};
const struct mt_suite mt_ack_suite = { "acks", ack_tests };

int main(void)
{
	const struct mt_suite *suites[] = {
		&mt_safety_suite, &mt_frame_suite, &mt_connect_suite, &mt_publish_suite,
		&mt_ack_suite, &mt_props_suite, &mt_utf8_suite, NULL,
	};
	int ret = 1;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	for (size_t i = 0; suites[i]; i++) {
		CU_pSuite cs = CU_add_suite(suites[i]->name, NULL, NULL);

		if (!cs)
			goto out;
		for (const struct mt_test *t = suites[i]->tests; t->name; t++) {
			if (!CU_add_test(cs, t->name, t->fn))
				goto out;
		}
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	if (CU_basic_run_tests() != CUE_SUCCESS)
		goto out;
	/* A run without a single assertion proves nothing. */
	ret = CU_get_number_of_failures() != 0 || CU_get_number_of_asserts() == 0;
out:
	CU_cleanup_registry();
	return ret;
}
