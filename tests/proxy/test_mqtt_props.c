/* MQTT 5 properties (mqtt_validate_props) and the UTF-8 rule (mqtt_utf8_valid). */
#include <string.h>

#include "mqtt_test.h"
#include "ref_utf8.h"

enum kind { K_BYTE, K_U16, K_U32, K_VARINT, K_STR, K_BIN, K_PAIR };

/*
 * MQTT 5.0 Table 2-4 and the property lists of sections 3.1-3.15, written
 * out as packet names so this table and the codec's bitmasks are two
 * independent transcriptions of the spec.
 */
static const struct {
	uint8_t id;
	enum kind kind;
	const char *where;
} spec[] = {
	{ 0x01, K_BYTE,   " PUBLISH WILL " },
	{ 0x02, K_U32,    " PUBLISH WILL " },
	{ 0x03, K_STR,    " PUBLISH WILL " },
	{ 0x08, K_STR,    " PUBLISH WILL " },
	{ 0x09, K_BIN,    " PUBLISH WILL " },
	{ 0x0B, K_VARINT, " PUBLISH SUBSCRIBE " },
	{ 0x11, K_U32,    " CONNECT CONNACK DISCONNECT " },
	{ 0x12, K_STR,    " CONNACK " },
	{ 0x13, K_U16,    " CONNACK " },
	{ 0x15, K_STR,    " CONNECT CONNACK AUTH " },
	{ 0x16, K_BIN,    " CONNECT CONNACK AUTH " },
	{ 0x17, K_BYTE,   " CONNECT " },
	{ 0x18, K_U32,    " WILL " },
	{ 0x19, K_BYTE,   " CONNECT " },
	{ 0x1A, K_STR,    " CONNACK " },
	{ 0x1C, K_STR,    " CONNACK DISCONNECT " },
	{ 0x1F, K_STR,    " CONNACK PUBACK PUBREC PUBREL PUBCOMP SUBACK UNSUBACK DISCONNECT"
	                  " AUTH " },
	{ 0x21, K_U16,    " CONNECT CONNACK " },
	{ 0x22, K_U16,    " CONNECT CONNACK " },
	{ 0x23, K_U16,    " PUBLISH " },
	{ 0x24, K_BYTE,   " CONNACK " },
	{ 0x25, K_BYTE,   " CONNACK " },
	{ 0x26, K_PAIR,   " WILL CONNECT CONNACK PUBLISH PUBACK PUBREC PUBREL PUBCOMP SUBSCRIBE"
	                  " SUBACK UNSUBSCRIBE UNSUBACK DISCONNECT AUTH " },
	{ 0x27, K_U32,    " CONNECT CONNACK " },
	{ 0x28, K_BYTE,   " CONNACK " },
	{ 0x29, K_BYTE,   " CONNACK " },
	{ 0x2A, K_BYTE,   " CONNACK " },
};

static const char *const type_names[16] = {
	" WILL ", " CONNECT ", " CONNACK ", " PUBLISH ", " PUBACK ", " PUBREC ", " PUBREL ",
	" PUBCOMP ", " SUBSCRIBE ", " SUBACK ", " UNSUBSCRIBE ", " UNSUBACK ", " PINGREQ ",
	" PINGRESP ", " DISCONNECT ", " AUTH ",
};

#define NSPEC (sizeof spec / sizeof spec[0])

/* One valid instance of property @i. */
static void put_valid(struct pb *b, size_t i)
{
	pb_u8(b, spec[i].id);
	switch (spec[i].kind) {
	case K_BYTE:   pb_u8(b, 1); break;
	case K_U16:    pb_u16(b, 1); break;
	case K_U32:    pb_u32(b, 1); break;
	case K_VARINT: pb_varint(b, 1); break;
	case K_STR:    pb_str(b, "a"); break;
	case K_BIN:    pb_bin(b, "\x00\xFF", 2); break;
	case K_PAIR:   pb_str(b, "k"); pb_str(b, "v"); break;
	}
}

/* Some packet type that allows property @i. */
static int home_type(size_t i)
{
	for (int t = 0; t < 16; t++) {
		if (strstr(spec[i].where, type_names[t]))
			return t;
	}
	return -1;
}

static void test_props_where(void)
{
	for (size_t i = 0; i < NSPEC; i++) {
		struct pb b;

		pb_init(&b);
		put_valid(&b, i);
		for (int t = 0; t < 16; t++) {
			int allowed = strstr(spec[i].where, type_names[t]) != NULL;
			enum mqtt_status st = mqtt_validate_props(b.b, b.n, t);

			MT_CHECK(st == (allowed ? MQTT_OK : MQTT_MALFORMED),
				"property 0x%02X in%s: %s", spec[i].id, type_names[t],
				mqtt_strerror(st));
		}
	}
	/* Empty blocks are fine everywhere. */
	for (int t = 0; t < 16; t++)
		MT_ST(mqtt_validate_props((const uint8_t *)"", 0, t), MQTT_OK);
}

static void test_props_unknown(void)
{
	for (unsigned id = 0; id < 256; id++) {
		uint8_t blk[8] = { (uint8_t)id, 0, 1, 'a', 0, 1, 'b' };
		int known = 0;

		for (size_t i = 0; i < NSPEC; i++)
			known |= spec[i].id == id;
		if (known)
			continue;
		for (int t = 0; t < 16; t++)
			MT_ST(mqtt_validate_props(blk, sizeof blk, t), MQTT_MALFORMED);
	}
}

static void test_props_truncated(void)
{
	for (size_t i = 0; i < NSPEC; i++) {
		int t = home_type(i);
		struct pb b;

		pb_init(&b);
		put_valid(&b, i);
		MT_ST(mqtt_validate_props(b.b, b.n, t), MQTT_OK);
		for (size_t cut = 1; cut < b.n; cut++) {
			enum mqtt_status st = mqtt_validate_props(b.b, b.n - cut, t);

			MT_CHECK(st == MQTT_MALFORMED, "0x%02X cut by %zu: %s", spec[i].id, cut,
				mqtt_strerror(st));
		}
		/* A trailing lone byte is a property without its value. */
		pb_u8(&b, spec[i].id);
		MT_ST(mqtt_validate_props(b.b, b.n, t), MQTT_MALFORMED);
	}
	{
		/* String lengths claiming more than the block holds. */
		static const uint8_t s[] = { 0x03, 0x00, 0x05, 'a', 'b' };
		static const uint8_t pair[] = { 0x26, 0x00, 0x01, 'k', 0x00, 0x02, 'v' };
		static const uint8_t bin[] = { 0x09, 0xFF, 0xFF, 0x00 };

		MT_ST(mqtt_validate_props(s, sizeof s, MQTT_PUBLISH), MQTT_MALFORMED);
		MT_ST(mqtt_validate_props(pair, sizeof pair, MQTT_PUBLISH), MQTT_MALFORMED);
		MT_ST(mqtt_validate_props(bin, sizeof bin, MQTT_PUBLISH), MQTT_MALFORMED);
	}
}

static void test_props_duplicates(void)
{
	for (size_t i = 0; i < NSPEC; i++) {
		int t = home_type(i);
		int repeatable = spec[i].id == 0x26 || spec[i].id == 0x0B;
		struct pb b;
		enum mqtt_status st;

		pb_init(&b);
		put_valid(&b, i);
		pb_u8(&b, 0x26); pb_str(&b, "x"); pb_str(&b, "y");
		if (spec[i].id == 0x26)
			t = MQTT_PUBLISH;
		put_valid(&b, i);
		st = mqtt_validate_props(b.b, b.n, t);
		MT_CHECK(st == (repeatable ? MQTT_OK : MQTT_MALFORMED), "0x%02X twice: %s",
			spec[i].id, mqtt_strerror(st));
	}
}

static void test_props_values(void)
{
	static const struct {
		uint8_t blk[8];
		size_t n;
		int type;
		enum mqtt_status want;
		const char *what;
	} cases[] = {
		{ { 0x01, 0 }, 2, MQTT_PUBLISH, MQTT_OK, "PFI 0" },
		{ { 0x01, 2 }, 2, MQTT_PUBLISH, MQTT_MALFORMED, "PFI 2" },
		{ { 0x17, 2 }, 2, MQTT_CONNECT, MQTT_MALFORMED, "Request Problem Information 2" },
		{ { 0x19, 0xFF }, 2, MQTT_CONNECT, MQTT_MALFORMED,
			"Request Response Information 255" },
		{ { 0x24, 2 }, 2, MQTT_CONNACK, MQTT_MALFORMED, "Maximum QoS 2" },
		{ { 0x25, 2 }, 2, MQTT_CONNACK, MQTT_MALFORMED, "Retain Available 2" },
		{ { 0x2A, 3 }, 2, MQTT_CONNACK, MQTT_MALFORMED, "Shared Subscription Available 3" },
		{ { 0x23, 0, 0 }, 3, MQTT_PUBLISH, MQTT_MALFORMED, "Topic Alias 0" },
		{ { 0x23, 0xFF, 0xFF }, 3, MQTT_PUBLISH, MQTT_OK, "Topic Alias 65535" },
		{ { 0x21, 0, 0 }, 3, MQTT_CONNECT, MQTT_MALFORMED, "Receive Maximum 0" },
		{ { 0x27, 0, 0, 0, 0 }, 5, MQTT_CONNECT, MQTT_MALFORMED, "Maximum Packet Size 0" },
		{ { 0x22, 0, 0 }, 3, MQTT_CONNECT, MQTT_OK, "Topic Alias Maximum 0" },
		{ { 0x0B, 0x00 }, 2, MQTT_PUBLISH, MQTT_MALFORMED, "Subscription Identifier 0" },
		{ { 0x0B, 0xFF, 0xFF, 0xFF, 0x7F }, 5, MQTT_PUBLISH, MQTT_OK, "Sub Id 268435455" },
		{ { 0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 }, 6, MQTT_PUBLISH, MQTT_MALFORMED,
			"Sub Id in 5 bytes" },
		{ { 0x0B, 0x80, 0x00 }, 3, MQTT_PUBLISH, MQTT_MALFORMED, "Sub Id non-minimal" },
		{ { 0x0B, 0x81, 0x80, 0x00 }, 4, MQTT_PUBLISH, MQTT_MALFORMED,
			"Sub Id non-minimal 3" },
		{ { 0x0B, 0x80, 0x01 }, 3, MQTT_PUBLISH, MQTT_OK, "Sub Id 128" },
		{ { 0x08, 0, 0 }, 3, MQTT_PUBLISH, MQTT_MALFORMED, "empty Response Topic" },
		{ { 0x08, 0, 1, '#' }, 4, MQTT_PUBLISH, MQTT_MALFORMED, "Response Topic #" },
		{ { 0x03, 0, 0 }, 3, MQTT_PUBLISH, MQTT_OK, "empty Content Type" },
		{ { 0x03, 0, 2, 0xC0, 0x80 }, 5, MQTT_PUBLISH, MQTT_MALFORMED, "overlong NUL" },
		{ { 0x03, 0, 1, 0x00 }, 4, MQTT_PUBLISH, MQTT_MALFORMED, "U+0000 in Content Type" },
		{ { 0x1F, 0, 1, 0xFF }, 4, MQTT_PUBACK, MQTT_MALFORMED, "Reason String 0xFF" },
		{ { 0x26, 0, 1, 0x80, 0, 0 }, 6, MQTT_PUBLISH, MQTT_MALFORMED,
			"User Property name" },
		{ { 0x26, 0, 0, 0, 1, 0x00 }, 6, MQTT_PUBLISH, MQTT_MALFORMED,
			"User Property value" },
		{ { 0x26, 0, 0, 0, 0 }, 5, MQTT_PUBLISH, MQTT_OK, "empty User Property" },
		{ { 0x09, 0, 2, 0x00, 0xFF }, 5, MQTT_PUBLISH, MQTT_OK,
			"Correlation Data is binary" },
		{ { 0x26, 0, 0, 0, 0 }, 5, MQTT_PINGREQ, MQTT_MALFORMED, "nothing in PINGREQ" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum mqtt_status st = mqtt_validate_props(cases[i].blk, cases[i].n, cases[i].type);

		MT_CHECK(st == cases[i].want, "%s: %s", cases[i].what, mqtt_strerror(st));
	}
}

static const struct mt_test props_tests[] = {
	{ "Props: which packet allows which property", test_props_where },
	{ "Props: unknown identifiers", test_props_unknown },
	{ "Props: truncated values and bad lengths", test_props_truncated },
	{ "Props: duplicates (User Property, Sub Id repeat)", test_props_duplicates },
	{ "Props: value rules and UTF-8", test_props_values },
	{ NULL, NULL },
};
const struct mt_suite mt_props_suite = { "props", props_tests };

/* ---- UTF-8 ---- */

static void test_utf8_cases(void)
{
	static const struct {
		const char *s;
		size_t n;
		int ok;
		const char *what;
	} cases[] = {
		{ "", 0, 1, "empty" },
		{ "abc/def", 7, 1, "ASCII" },
		{ "\x01\x1F\x7F", 3, 1, "controls are only a SHOULD NOT" },
		{ "\xC2\x80", 2, 1, "U+0080" },
		{ "\xDF\xBF", 2, 1, "U+07FF" },
		{ "\xE0\xA0\x80", 3, 1, "U+0800" },
		{ "\xED\x9F\xBF", 3, 1, "U+D7FF" },
		{ "\xEE\x80\x80", 3, 1, "U+E000" },
		{ "\xEF\xBB\xBF", 3, 1, "BOM is kept, not skipped" },
		{ "\xEF\xBF\xBF", 3, 1, "U+FFFF" },
		{ "\xF0\x90\x80\x80", 4, 1, "U+10000" },
		{ "\xF4\x8F\xBF\xBF", 4, 1, "U+10FFFF" },
		{ "\x00", 1, 0, "U+0000" },
		{ "a\x00" "b", 3, 0, "U+0000 inside" },
		{ "\xC0\x80", 2, 0, "overlong U+0000" },
		{ "\xC0\xAF", 2, 0, "overlong / (2)" },
		{ "\xE0\x80\xAF", 3, 0, "overlong / (3)" },
		{ "\xF0\x80\x80\xAF", 4, 0, "overlong / (4)" },
		{ "\xC1\xBF", 2, 0, "overlong U+007F" },
		{ "\xE0\x9F\xBF", 3, 0, "overlong U+07FF" },
		{ "\xF0\x8F\xBF\xBF", 4, 0, "overlong U+FFFF" },
		{ "\xED\xA0\x80", 3, 0, "U+D800" },
		{ "\xED\xBF\xBF", 3, 0, "U+DFFF" },
		{ "\xED\xA0\xBD\xED\xB2\xA9", 6, 0, "CESU-8 surrogate pair" },
		{ "\xF4\x90\x80\x80", 4, 0, "U+110000" },
		{ "\xF5\x80\x80\x80", 4, 0, "lead F5" },
		{ "\xF7\xBF\xBF\xBF", 4, 0, "U+1FFFFF" },
		{ "\xF8\x88\x80\x80\x80", 5, 0, "5-byte form" },
		{ "\xFC\x84\x80\x80\x80\x80", 6, 0, "6-byte form" },
		{ "\xFE", 1, 0, "FE" },
		{ "\xFF", 1, 0, "FF" },
		{ "\x80", 1, 0, "lone continuation" },
		{ "\xBF", 1, 0, "lone continuation BF" },
		{ "\xC2", 1, 0, "truncated 2" },
		{ "\xE0\xA0", 2, 0, "truncated 3" },
		{ "\xF0\x90\x80", 3, 0, "truncated 4" },
		{ "\xC2\x41", 2, 0, "bad continuation" },
		{ "\xE1\x80\x41", 3, 0, "bad third byte" },
		{ "\xF1\x80\x80\xC0", 4, 0, "bad fourth byte" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int got = mqtt_utf8_valid((const uint8_t *)cases[i].s, cases[i].n);

		MT_CHECK(got == cases[i].ok, "%s: %d", cases[i].what, got);
		MT_CHECK(mt_ref_utf8((const uint8_t *)cases[i].s, cases[i].n) == cases[i].ok,
			"reference disagrees on %s", cases[i].what);
	}
}

/* Every 1-, 2- and 3-byte string, and 4-byte strings around the lead bytes that matter. */
static void test_utf8_exhaustive(void)
{
	static const uint8_t edges[] = { 0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
		0xC0, 0xFF };
	unsigned long bad = 0;
	uint8_t s[4];

	for (unsigned a = 0; a < 256; a++) {
		s[0] = (uint8_t)a;
		bad += mqtt_utf8_valid(s, 1) != mt_ref_utf8(s, 1);
		for (unsigned b = 0; b < 256; b++) {
			s[1] = (uint8_t)b;
			bad += mqtt_utf8_valid(s, 2) != mt_ref_utf8(s, 2);
			for (unsigned c = 0; c < 256; c++) {
				s[2] = (uint8_t)c;
				bad += mqtt_utf8_valid(s, 3) != mt_ref_utf8(s, 3);
			}
		}
	}
	for (unsigned a = 0xE0; a < 256; a++) {
		for (unsigned b = 0; b < 256; b++) {
			for (size_t c = 0; c < sizeof edges; c++) {
				for (size_t d = 0; d < sizeof edges; d++) {
					s[0] = (uint8_t)a;
					s[1] = (uint8_t)b;
					s[2] = edges[c];
					s[3] = edges[d];
					bad += mqtt_utf8_valid(s, 4) != mt_ref_utf8(s, 4);
				}
			}
		}
	}
	MT_CHECK(bad == 0, "%lu strings where the validator and the reference disagree", bad);
}

static const struct mt_test utf8_tests[] = {
	{ "UTF-8: edge cases (overlong, surrogates, > U+10FFFF, U+0000)", test_utf8_cases },
	{ "UTF-8: exhaustive against a reference decoder", test_utf8_exhaustive },
	{ NULL, NULL },
};
const struct mt_suite mt_utf8_suite = { "utf8", utf8_tests };
