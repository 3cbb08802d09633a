/*
 * e2e-sub --json lines (subscriber/jsonout.c): whatever bytes a broker puts
 * in a topic or a sender in a payload, each line is one valid JSON object
 * that a parser reads back to the same text (ill-formed UTF-8 as U+FFFD).
 */
#include <stdlib.h>
#include <string.h>

#include "testcu.h"
#include "../../subscriber/jsonout.h"

/* Write one object with topic @p t (@p tl bytes) and payload @p p, parse the
 * line back; returns the parsed object (caller decrefs) or NULL. */
static json_t *roundtrip(const char *t, size_t tl, const uint8_t *p, size_t pl, char **line)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct jout j;
	json_error_t err;
	json_t *v;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	jout_begin(&j, f);
	jout_str(&j, "topic", t, tl);
	if (jout_is_text(p, pl))
		jout_str(&j, "payload", (const char *)p, pl);
	else
		jout_b64(&j, "payload_b64", p, pl);
	jout_u64(&j, "seq", 4294967295U);
	jout_bool(&j, "retained", 1);
	jout_null(&j, "nothing");
	CU_ASSERT_EQUAL(jout_end(&j), 0);
	fclose(f);
	/* Exactly one line, ending in LF. */
	CU_ASSERT(len > 0 && buf[len - 1] == '\n');
	CU_ASSERT_PTR_NULL(memchr(buf, '\n', len - 1));
	v = json_loadb(buf, len, 0, &err);
	if (!v)
		fprintf(stderr, "not JSON: %s: %s\n", err.text, buf);
	*line = buf;
	return v;
}

static void check_topic(const char *in, size_t inl, const char *want)
{
	char *line;
	json_t *v = roundtrip(in, inl, (const uint8_t *)"x", 1, &line);
	const char *got;

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	got = json_string_value(json_object_get(v, "topic"));
	CU_ASSERT_PTR_NOT_NULL(got);
	if (got)
		CU_ASSERT_STRING_EQUAL(got, want);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "seq")), 4294967295LL);
	CU_ASSERT(json_is_true(json_object_get(v, "retained")));
	CU_ASSERT(json_is_null(json_object_get(v, "nothing")));
	/* Fields in the order they were written (tools may rely on it). */
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "{\"topic\":"));
	json_decref(v);
	free(line);
}

static void test_quotes_and_controls(void)
{
	static const char t[] = "a\"b\\c/\n\t\r\x01\x1f\x7f/end";

	check_topic(t, sizeof t - 1, t);
}

static void test_invalid_utf8(void)
{
	/* A lone continuation byte, a truncated 3-byte sequence, an overlong
	 * '/', a surrogate: each ill-formed byte becomes U+FFFD. */
	static const char t[] = "a\x80" "b\xe2\x82" "c\xc0\xaf" "d\xed\xa0\x80";
	static const char ok[] = "caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80";

	check_topic(t, sizeof t - 1,
		"a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd"
		"d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	/* Valid multi-byte text passes unchanged. */
	check_topic(ok, sizeof ok - 1, ok);
}

static void test_binary_payload_base64(void)
{
	static const uint8_t p[] = { 0x00, 0xff, 0x22, 0x5c, 0x0a, 0x80 };
	char *line;
	json_t *v = roundtrip("t", 1, p, sizeof p, &line);

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_PTR_NULL(json_object_get(v, "payload"));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "payload_b64")), "AP8iXAqA");
	json_decref(v);
	free(line);
	/* Text with a control character is not "text". */
	CU_ASSERT_FALSE(jout_is_text((const uint8_t *)"a\tb", 3));
	CU_ASSERT_TRUE(jout_is_text((const uint8_t *)"caf\xc3\xa9", 5));
	CU_ASSERT_TRUE(jout_is_text((const uint8_t *)"", 0));
}

static void test_empty_and_large(void)
{
	size_t n = 1U << 20;
	uint8_t *p = malloc(n);
	char *line;
	json_t *v;

	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)i;
	v = roundtrip("", 0, p, n, &line);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "topic")), "");
	CU_ASSERT_EQUAL(strlen(json_string_value(json_object_get(v, "payload_b64"))),
		(n + 2) / 3 * 4);
	json_decref(v);
	free(line);
	free(p);
}

int main(void)
{
	static const struct tu_test tests[] = {
		{ "quotes, backslashes and control characters", test_quotes_and_controls },
		{ "invalid UTF-8 becomes U+FFFD", test_invalid_utf8 },
		{ "binary payloads as base64", test_binary_payload_base64 },
		{ "empty topic, 1 MiB payload", test_empty_and_large },
		{ NULL, NULL },
	};
	static const struct tu_suite suites[] = { { "jsonout", tests }, { NULL, NULL } };

	return tu_main(suites);
}
