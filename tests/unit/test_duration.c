/*
 * e2e_duration_parse: the one duration syntax of every tool. A bare number
 * is seconds; units ms, s, m, h, d; anything else is refused.
 */
#include <stdint.h>

#include "e2e/common.h"
#include "testcu.h"

static void test_units(void)
{
	static const struct { const char *in; uint64_t ms; } ok[] = {
		{ "250ms", 250 }, { "10s", 10000 }, { "5m", 300000 }, { "24h", 86400000 },
		{ "7d", 604800000 }, { "0", 0 }, { "0ms", 0 }, { "90", 90000 }, { "1", 1000 },
	};

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		uint64_t v = 12345;

		CU_ASSERT_EQUAL_FATAL(e2e_duration_parse(ok[i].in, &v), E2E_OK);
		CU_ASSERT_EQUAL(v, ok[i].ms);
	}
}

static void test_refusals(void)
{
	static const char *bad[] = { "", "s", "10x", "-1", "+5s", " 5s", "5s ", "5 s", "1.5s",
		"5sec", "5M", "10ms5", "18446744073709551616", "18446744073709551615s", "1y" };

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint64_t v = 777;

		CU_ASSERT_EQUAL(e2e_duration_parse(bad[i], &v), E2E_ERR_ARG);
		CU_ASSERT_EQUAL(v, 777);   /* untouched on failure */
	}
	CU_ASSERT_EQUAL(e2e_duration_parse(NULL, &(uint64_t){ 0 }), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_duration_parse("5s", NULL), E2E_ERR_ARG);
}

int main(void)
{
	static const struct tu_test tests[] = {
		{ "units, bare number = seconds", test_units },
		{ "refusals", test_refusals },
		{ NULL, NULL },
	};
	static const struct tu_suite suites[] = { { "duration", tests }, { NULL, NULL } };

	return tu_main(suites);
}
