/*
 * e2e-sub -F (subscriber/fmt.c): the format check refuses what mosquitto_sub
 * refuses, and the time-independent sequences print what mosquitto_sub(1)
 * prints, quirks included (a width also truncates %p; %x halves it; "%-p"
 * pads with as many blanks as the payload is long). tests/cli/parity.py
 * compares against the real mosquitto_sub; this pins the details without a
 * broker.
 */
#include <stdlib.h>
#include <string.h>

#include "testcu.h"
#include "../../subscriber/fmt.h"

static char *render(const char *format, int eol, const char *topic, const char *payload,
	int retained)
{
	struct e2e_client_msg m;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	memset(&m, 0, sizeof m);
	m.topic = topic;
	m.payload = (const uint8_t *)payload;
	m.len = strlen(payload);
	m.verdict = E2E_V_GAP;
	m.gap = 3;
	m.sender = 0x0a0b0c0d;
	m.sender_name = NULL;
	m.epoch = 7;
	m.seq = 42;
	m.scope = 2;
	m.retained = retained;
	m.qos = 1;
	sub_fmt_print(f, format, eol, &m);
	fclose(f);
	return buf;
}

static void expect(const char *format, const char *payload, const char *want)
{
	char *got = render(format, 0, "a/topic", payload, 0);

	if (strcmp(got, want) != 0)
		fprintf(stderr, "-F '%s' on '%s': got '%s', want '%s'\n", format, payload, got, want);
	CU_ASSERT_STRING_EQUAL(got, want);
	free(got);
}

static void test_check(void)
{
	static const char *ok[] = { "", "%t %p", "%-05.2t", "%%", "@@", "@Y", "\\n\\0\\e",
		"%V %n %e %s %o %g", "%A%C%D%E%F%P%R%S%I%j%J%l%m%q%r%U%x%X" };
	static const char *bad[] = { "a%", "a@", "a\\", "\\q", "%5", "%-", "%.3", "%0", "%Z",
		"%5.2", "%y" };
	char why[64];

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		CU_ASSERT_EQUAL(sub_fmt_check(ok[i], why, sizeof why), 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CU_ASSERT_EQUAL(sub_fmt_check(bad[i], why, sizeof why), -1);
		CU_ASSERT(strlen(why) > 0);
	}
}

static void test_print(void)
{
	expect("%t|%p|%l|%q|%r", "hello", "a/topic|hello|5|1|0");
	expect("%x|%X", "\x01\xab", "01ab|01AB");
	expect("%5.2t|%-8t|", "x", "   a/|a/topic |");
	expect("%-p|", "hello", "hello     |");           /* mosquitto's negative padding */
	expect("%-5x|%3p|%-3p|%8p", "hello", "6865 |hel|hel|   hello");
	expect("%06l|%-4l|%4l", "hello", "000005|5   |   5");
	expect("%A%C%D%E%F%P%R%S|%3A|%5C|", "x", "|   |     |");
	expect("\\t\\\\@@%%\\e", "x", "\t\\@%\033");
	expect("%V %n %e %s %o %g", "x", "GAP 0a0b0c0d 7 42 2 3");
	expect("%-4V|%04s|%.1n", "x", "GAP |0042|0");
	expect("%m", "x", "0");
}

static void test_eol_and_json(void)
{
	char *got = render("%p", 1, "t", "p", 1);

	CU_ASSERT_STRING_EQUAL(got, "p\n");
	free(got);
	got = render("%j", 0, "t", "say \"hi\"\tnow", 1);
	/* tst varies; the rest is mosquitto 2.0.11's shape. */
	CU_ASSERT_PTR_NOT_NULL(strstr(got, "\",\"topic\":\"t\",\"qos\":1,\"retain\":1,"
		"\"payloadlen\":12,\"mid\":0,\"payload\":\"say \\\"hi\\\"\\tnow\"}"));
	CU_ASSERT(strncmp(got, "{\"tst\":\"", 8) == 0);
	free(got);
	got = render("%J", 0, "t", "{\"a\":[1,null]}", 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(got, "\"payload\":{\"a\":[1,null]}}"));
	free(got);
}

static const struct tu_test fmt_tests[] = {
	{ "-F check: refuses what mosquitto_sub refuses", test_check },
	{ "-F print: sequences, flags, widths, quirks, ours", test_print },
	{ "-F print: newline, %j, %J", test_eol_and_json },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "e2e-sub -F", fmt_tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
