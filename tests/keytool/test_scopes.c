/*
 * Scope table and MQTT topic matching: the wildcard rules ('+', '#',
 * '$'-topics), strict filter/topic validation, first-match order, the
 * implied default scope, and parse errors with their line numbers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ktest.h"

static struct e2e_scopes tbl;   /* ~90 KiB: not on the stack */
static char err[256];

static int matches(const char *filter, const char *topic)
{
	return e2e_topic_matches(filter, strlen(filter), topic, strlen(topic));
}

static enum e2e_status parse(const char *text)
{
	return e2e_scopes_parse(&tbl, text, strlen(text), "scopes", err, sizeof err);
}

static uint8_t lookup(const char *topic, enum e2e_status want)
{
	uint8_t id = 0xEE;

	CU_ASSERT_EQUAL(e2e_scopes_lookup(&tbl, topic, strlen(topic), &id), want);
	return id;
}

/* ---- Safety ------------------------------------------------------------ */

static void test_safety(void)
{
	uint8_t id;

	CU_ASSERT_EQUAL(e2e_scopes_parse(NULL, "", 0, "x", err, sizeof err), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_scopes_parse(&tbl, NULL, 5, "x", err, sizeof err), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_scopes_load(NULL, "x", err, sizeof err), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_scopes_load(&tbl, NULL, err, sizeof err), E2E_ERR_ARG);
	e2e_scopes_init(&tbl);
	CU_ASSERT_EQUAL(e2e_scopes_lookup(NULL, "a", 1, &id), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_scopes_lookup(&tbl, NULL, 1, &id), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_scopes_lookup(&tbl, "a", 1, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_scopes_lookup(&tbl, "a", 0, &id), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_scopes_lookup(&tbl, "a/+", 3, &id), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_scopes_id(NULL, "a", 1, &id), E2E_ERR_ARG);
	CU_ASSERT_PTR_NULL(e2e_scopes_get(NULL, 0));
	CU_ASSERT_PTR_NULL(e2e_scope_filter(&tbl, NULL, 0));
	CU_ASSERT_PTR_NULL(e2e_scope_filter(&tbl, &tbl.scope[0], 1));
	CU_ASSERT_EQUAL(e2e_topic_matches(NULL, 0, "a", 1), 0);
	CU_ASSERT_EQUAL(e2e_topic_matches("#", 1, NULL, 0), 0);
	e2e_scopes_init(NULL);
	/* A NULL error buffer is allowed. */
	CU_ASSERT_EQUAL(e2e_scopes_parse(&tbl, "bad", 3, "x", NULL, 0), E2E_ERR_MALFORMED);
}

/* ---- Matching ---------------------------------------------------------- */

static const struct { const char *filter, *topic; int want; } match_table[] = {
	/* '#': everything at and below its level, including the parent */
	{ "#", "a", 1 }, { "#", "a/b/c", 1 }, { "#", "/", 1 }, { "#", "/a", 1 },
	{ "a/#", "a", 1 }, { "a/#", "a/", 1 }, { "a/#", "a/b/c", 1 }, { "a/#", "ab", 0 },
	{ "a/#", "b/a", 0 }, { "/#", "/", 1 }, { "/#", "a", 0 },
	{ "sport/#", "sport", 1 }, { "sport/tennis/#", "sport/tennis/player1/ranking", 1 },
	/* '+': exactly one level, possibly empty */
	{ "+", "a", 1 }, { "+", "a/b", 0 }, { "+", "/a", 0 }, { "a/+", "a/b", 1 },
	{ "a/+", "a", 0 }, { "a/+", "a/", 1 }, { "a/+", "a/b/c", 0 }, { "+/+", "/finance", 1 },
	{ "/+", "/finance", 1 }, { "+", "/finance", 0 }, { "a/+/c", "a//c", 1 },
	{ "a/+/c", "a/b/c", 1 }, { "a/+/c", "a/b/d", 0 }, { "+/#", "a", 1 },
	{ "+/+/#", "a", 0 }, { "+/+/#", "a/b", 1 }, { "sport/+", "sport", 0 },
	{ "sport/tennis/+", "sport/tennis/player1", 1 },
	{ "sport/tennis/+", "sport/tennis/player1/ranking", 0 },
	/* literal levels: exact, case-sensitive, empty levels count */
	{ "a/b", "a/b", 1 }, { "a/b", "a/b/", 0 }, { "a/b", "A/b", 0 }, { "a/b", "a", 0 },
	{ "a//b", "a//b", 1 }, { "a//b", "a/b", 0 }, { "/", "/", 1 }, { "a", "ab", 0 },
	/* '$'-topics: no wildcard matches the first level */
	{ "#", "$SYS/uptime", 0 }, { "+/uptime", "$SYS/uptime", 0 }, { "+", "$SYS", 0 },
	{ "$SYS/#", "$SYS/uptime", 1 }, { "$SYS/#", "$SYS", 1 }, { "$SYS/+", "$SYS/uptime", 1 },
	{ "$SYS/broker/+/count", "$SYS/broker/clients/count", 1 }, { "a/$x", "a/$x", 1 },
	{ "a/+", "a/$x", 1 }, { "a/#", "a/$x/y", 1 },
	/* invalid filters never match */
	{ "a#", "a", 0 }, { "a/#/b", "a/x/b", 0 }, { "a+", "a", 0 }, { "a/b+", "a/b", 0 },
	{ "++", "a", 0 }, { "#/", "a", 0 }, { "+a/b", "xa/b", 0 }, { "", "a", 0 },
	/* invalid topic names never match */
	{ "#", "", 0 }, { "#", "a/+", 0 }, { "#", "a/#", 0 }, { "+", "+", 0 },
};

static void test_match_table(void)
{
	for (size_t i = 0; i < sizeof match_table / sizeof match_table[0]; i++) {
		int got = matches(match_table[i].filter, match_table[i].topic);

		if (got != match_table[i].want)
			fprintf(stderr, "\n  filter '%s' topic '%s': got %d want %d\n",
				match_table[i].filter, match_table[i].topic, got,
				match_table[i].want);
		CU_ASSERT_EQUAL(got, match_table[i].want);
	}
}

static void test_match_lengths(void)
{
	static char big[E2E_TOPIC_MAX + 2];

	/* Lengths are honoured: no reliance on NUL termination. */
	CU_ASSERT_EQUAL(e2e_topic_matches("a/bXXX", 3, "a/bYYY", 3), 1);
	CU_ASSERT_EQUAL(e2e_topic_matches("a/#", 3, "a/b", 1), 1);
	/* NUL inside a topic is invalid in MQTT. */
	CU_ASSERT_EQUAL(e2e_topic_name_valid("a\0b", 3), 0);
	CU_ASSERT_EQUAL(e2e_topic_matches("#", 1, "a\0b", 3), 0);
	CU_ASSERT_EQUAL(e2e_topic_filter_valid("a\0b", 3), 0);
	memset(big, 'a', sizeof big);
	CU_ASSERT_EQUAL(e2e_topic_name_valid(big, E2E_TOPIC_MAX), 1);
	CU_ASSERT_EQUAL(e2e_topic_name_valid(big, E2E_TOPIC_MAX + 1), 0);
	CU_ASSERT_EQUAL(e2e_topic_matches("#", 1, big, E2E_TOPIC_MAX), 1);
}

static void test_name_valid(void)
{
	CU_ASSERT_EQUAL(e2e_scope_name_valid("telemetry_2-x", 13), 1);
	CU_ASSERT_EQUAL(e2e_scope_name_valid("Telemetry", 9), 0);
	CU_ASSERT_EQUAL(e2e_scope_name_valid("a.b", 3), 0);
	CU_ASSERT_EQUAL(e2e_scope_name_valid("", 0), 0);
	CU_ASSERT_EQUAL(e2e_scope_name_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 32), 1);
	CU_ASSERT_EQUAL(e2e_scope_name_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 33), 0);
}

/* ---- Table ------------------------------------------------------------- */

static void test_implied_default(void)
{
	e2e_scopes_init(&tbl);
	CU_ASSERT_EQUAL(tbl.count, 1);
	CU_ASSERT_EQUAL(tbl.implied_default, 1);
	CU_ASSERT_STRING_EQUAL(tbl.scope[0].name, "default");
	CU_ASSERT_EQUAL(lookup("any/topic", E2E_OK), 0);
	/* '#' does not cover '$'-topics, so they have no scope. */
	lookup("$SYS/x", E2E_ERR_NOT_FOUND);
	/* An empty file (only comments) is the same table. */
	CU_ASSERT_EQUAL(parse("# nothing\n\n   \n"), E2E_OK);
	CU_ASSERT_EQUAL(tbl.count, 1);
	CU_ASSERT_EQUAL(tbl.implied_default, 1);
}

static void test_first_match(void)
{
	uint8_t id = 0;

	CU_ASSERT_EQUAL_FATAL(parse("# site scopes\r\n"
		"scope 7 alarms plant/+/alarm alarms/#\r\n"
		"\n"
		"   scope\t1  telemetry\tsensors/#   plant/#\n"
		"scope 2 sys $SYS/#\n"), E2E_OK);
	CU_ASSERT_EQUAL(tbl.count, 4);
	CU_ASSERT_EQUAL(tbl.implied_default, 1);
	CU_ASSERT_EQUAL(tbl.scope[0].id, 7);
	CU_ASSERT_EQUAL(tbl.scope[0].line, 2);
	CU_ASSERT_EQUAL(tbl.scope[1].line, 4);
	CU_ASSERT_EQUAL(tbl.scope[3].id, 0);
	CU_ASSERT_STRING_EQUAL(e2e_scope_filter(&tbl, &tbl.scope[1], 1), "plant/#");
	/* plant/3/alarm matches both 7 and 1: the earlier line wins. */
	CU_ASSERT_EQUAL(lookup("plant/3/alarm", E2E_OK), 7);
	CU_ASSERT_EQUAL(lookup("plant/3/temp", E2E_OK), 1);
	CU_ASSERT_EQUAL(lookup("alarms", E2E_OK), 7);
	CU_ASSERT_EQUAL(lookup("sensors", E2E_OK), 1);
	CU_ASSERT_EQUAL(lookup("$SYS/load", E2E_OK), 2);
	CU_ASSERT_EQUAL(lookup("other", E2E_OK), 0);
	CU_ASSERT_EQUAL(e2e_scopes_id(&tbl, "telemetry", 9, &id), E2E_OK);
	CU_ASSERT_EQUAL(id, 1);
	CU_ASSERT_EQUAL(e2e_scopes_id(&tbl, "telemetryX", 9, &id), E2E_OK);
	CU_ASSERT_EQUAL(e2e_scopes_id(&tbl, "default", 7, &id), E2E_OK);
	CU_ASSERT_EQUAL(id, 0);
	CU_ASSERT_EQUAL(e2e_scopes_id(&tbl, "tele", 4, &id), E2E_ERR_NOT_FOUND);
	CU_ASSERT_PTR_NOT_NULL(e2e_scopes_get(&tbl, 2));
	CU_ASSERT_PTR_NULL(e2e_scopes_get(&tbl, 3));
}

static void test_explicit_zero(void)
{
	uint8_t id = 0;

	CU_ASSERT_EQUAL_FATAL(parse("scope 1 t t/#\nscope 0 misc misc/#\n"), E2E_OK);
	CU_ASSERT_EQUAL(tbl.count, 2);
	CU_ASSERT_EQUAL(tbl.implied_default, 0);
	CU_ASSERT_EQUAL(lookup("misc/x", E2E_OK), 0);
	/* The implied catch-all is gone: unmatched topics have no scope. */
	lookup("other", E2E_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(e2e_scopes_id(&tbl, "default", 7, &id), E2E_ERR_NOT_FOUND);
	/* With scope 0 explicit, "default" is a free name. */
	CU_ASSERT_EQUAL(parse("scope 0 zero #\nscope 3 default d/#\n"), E2E_OK);
}

static const struct { const char *text; enum e2e_status st; const char *msg; } bad[] = {
	{ "scope 1 t\n", E2E_ERR_MALFORMED, "scopes:1: expected" },
	{ "\n# c\nscope 256 t a\n", E2E_ERR_MALFORMED, "scopes:3: scope id must be 0..255" },
	{ "scope 01 t a\n", E2E_ERR_MALFORMED, "scopes:1: scope id" },
	{ "scope -1 t a\n", E2E_ERR_MALFORMED, "scopes:1: scope id" },
	{ "scope 1 T a\n", E2E_ERR_MALFORMED, "scopes:1: scope name" },
	{ "scope 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa a\n", E2E_ERR_MALFORMED, "scopes:1: scope name" },
	{ "scope 1 t a/#/b\n", E2E_ERR_MALFORMED, "scopes:1: invalid topic filter 'a/#/b'" },
	{ "scope 1 t ok a+\n", E2E_ERR_MALFORMED, "scopes:1: invalid topic filter 'a+'" },
	{ "scope 1 t #/\n", E2E_ERR_MALFORMED, "scopes:1: invalid topic filter" },
	{ "scope 1 t a\n\nscope 1 u b\n", E2E_ERR_EXISTS, "scopes:3: scope id 1 already on line 1" },
	{ "scope 1 t a\nscope 2 t b\n", E2E_ERR_EXISTS, "scopes:2: scope name 't' already on line 1" },
	{ "scop 1 t a\n", E2E_ERR_MALFORMED, "scopes:1: expected 'scope'" },
	{ "scope 1 t a\nscope 2 default b\n", E2E_ERR_EXISTS, "scopes:2: name 'default'" },
	{ "scope 1 t a\x01\n", E2E_ERR_MALFORMED, "scopes:1: control character 0x01" },
	{ "scope 1 t a\nscope 2 u b\0\n", E2E_ERR_MALFORMED, "scopes:2: control character 0x00" },
	{ "scope 1 t a b c d e f g h i j k l m n o p q\n", E2E_ERR_MALFORMED,
	  "scopes:1: more than 16 topic filters" },
};

static void test_parse_errors(void)
{
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		/* The NUL case needs its real length: strlen would stop early. */
		size_t len = strlen(bad[i].text);

		if (strstr(bad[i].msg, "0x00"))
			len += 2;
		memset(err, 0, sizeof err);
		CU_ASSERT_EQUAL(e2e_scopes_parse(&tbl, bad[i].text, len, "scopes", err,
			sizeof err), bad[i].st);
		if (strncmp(err, bad[i].msg, strlen(bad[i].msg)) != 0)
			fprintf(stderr, "\n  case %zu: got '%s' want '%s...'\n", i, err, bad[i].msg);
		CU_ASSERT_NSTRING_EQUAL(err, bad[i].msg, strlen(bad[i].msg));
		/* Failing closed: nothing maps after a bad file. */
		CU_ASSERT_EQUAL(tbl.count, 0);
		lookup("a", E2E_ERR_NOT_FOUND);
	}
}

static void test_pool_full(void)
{
	/* 256 scopes x 16 filters x 1 KiB is far beyond the 64 KiB pool. */
	size_t cap = 256U * (40U + 16U * 1026U), len = 0;
	char *text = malloc(cap), filt[1025];

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	memset(filt, 'f', 1024);
	filt[1024] = '\0';
	for (unsigned id = 1; id < 256; id++) {
		len += (size_t)snprintf(text + len, cap - len, "scope %u s%u", id, id);
		for (int k = 0; k < 16; k++)
			len += (size_t)snprintf(text + len, cap - len, " %s", filt);
		len += (size_t)snprintf(text + len, cap - len, "\n");
	}
	CU_ASSERT_EQUAL(e2e_scopes_parse(&tbl, text, len, "scopes", err, sizeof err), E2E_ERR_FULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "exceed"));
	/* One byte over the per-filter limit is refused as malformed. */
	snprintf(text, cap, "scope 1 a %sX\n", filt);
	CU_ASSERT_EQUAL(parse(text), E2E_ERR_MALFORMED);
	free(text);
}

static void test_all_ids(void)
{
	size_t cap = 256U * 32U, len = 0;
	char *text = malloc(cap);

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	for (unsigned id = 0; id < 256; id++)
		len += (size_t)snprintf(text + len, cap - len, "scope %u n%u t%u/#\n", id, id, id);
	CU_ASSERT_EQUAL(e2e_scopes_parse(&tbl, text, len, "scopes", err, sizeof err), E2E_OK);
	CU_ASSERT_EQUAL(tbl.count, 256);
	CU_ASSERT_EQUAL(lookup("t255/x", E2E_OK), 255);
	free(text);
}

static void test_load(void)
{
	const char *dir = kt_tmpdir();

	/* Absent file: the implied default. */
	CU_ASSERT_EQUAL(e2e_scopes_load(&tbl, kt_file(dir, "scopes"), err, sizeof err), E2E_OK);
	CU_ASSERT_EQUAL(tbl.implied_default, 1);
	CU_ASSERT_EQUAL_FATAL(kt_write(kt_file(dir, "scopes"), "scope 4 x x/#\n", 0644), 0);
	CU_ASSERT_EQUAL(e2e_scopes_load(&tbl, kt_file(dir, "scopes"), err, sizeof err), E2E_OK);
	CU_ASSERT_EQUAL(lookup("x/y", E2E_OK), 4);
	CU_ASSERT_EQUAL_FATAL(kt_write(kt_file(dir, "scopes"), "scope 4 x x/#\nbad\n", 0644), 0);
	CU_ASSERT_EQUAL(e2e_scopes_load(&tbl, kt_file(dir, "scopes"), err, sizeof err),
		E2E_ERR_MALFORMED);
	/* Messages name the real path. */
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/scopes:2: "));
	kt_tmpdir_remove();
}

static const struct kt_case cases[] = {
	{ "Safety: NULL and invalid arguments", test_safety },
	{ "Matching: wildcard table", test_match_table },
	{ "Matching: lengths, NUL and limits", test_match_lengths },
	{ "Names: scope name rules", test_name_valid },
	{ "Table: implied default scope", test_implied_default },
	{ "Table: first match in file order", test_first_match },
	{ "Table: explicit scope 0 replaces the default", test_explicit_zero },
	{ "Parse: errors name file and line", test_parse_errors },
	{ "Parse: filter pool and length limits", test_pool_full },
	{ "Parse: all 256 scope ids", test_all_ids },
	{ "Load: missing, good and bad files", test_load },
	{ NULL, NULL },
};

int main(void)
{
	return kt_run("scopes", cases);
}
