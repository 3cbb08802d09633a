/*
 * Credentials and authorities (SPEC 13): issue/parse/verify round trip,
 * every way a credential must fail (other authority, a flipped bit, a
 * truncation, outside its window, wrong kind), the text form and the
 * `authorities` file.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "testcu.h"

static struct e2e_identity auth, other, holder;

static int setup(void)
{
	return e2e_init() != E2E_OK || e2e_identity_generate(&auth) != E2E_OK ||
		e2e_identity_generate(&other) != E2E_OK || e2e_identity_generate(&holder) != E2E_OK;
}

static size_t issue_sender(uint8_t *out, size_t cap, const struct e2e_identity *by,
	uint64_t nb, uint64_t na)
{
	static const struct e2e_scope_rule rules[] = {
		{ 1, "plant/+/temp", 12 }, { 2, "alarms/#", 8 },
	};
	struct e2e_cred_spec s = { .kind = E2E_CRED_SENDER, .serial = 7, .not_before_ms = nb,
		.not_after_ms = na, .holder = holder.pub, .nrules = 2, .rules = rules };
	size_t len = 0;

	CU_ASSERT_EQUAL_FATAL(e2e_cred_issue(out, cap, &len, &s, by), E2E_OK);
	return len;
}

static size_t issue_sub(uint8_t *out, size_t cap, uint64_t nb, uint64_t na)
{
	static const uint8_t scopes[] = { 1, 3 };
	struct e2e_cred_spec s = { .kind = E2E_CRED_SUBSCRIBER, .serial = 9, .not_before_ms = nb,
		.not_after_ms = na, .holder = holder.pub, .nscopes = 2, .scopes = scopes };
	size_t len = 0;

	CU_ASSERT_EQUAL_FATAL(e2e_cred_issue(out, cap, &len, &s, &auth), E2E_OK);
	return len;
}

static void test_roundtrip(void)
{
	uint8_t buf[E2E_CRED_MAX], fp[E2E_FP_BYTES];
	struct e2e_cred c;
	size_t len = issue_sender(buf, sizeof buf, &auth, 1000, 2000);

	CU_ASSERT_EQUAL(e2e_cred_parse(&c, buf, len), E2E_OK);
	CU_ASSERT_EQUAL(c.kind, E2E_CRED_SENDER);
	CU_ASSERT_EQUAL(c.serial, 7);
	CU_ASSERT_EQUAL(c.nrules, 2);
	e2e_public_fp(fp, &auth.pub);
	CU_ASSERT_EQUAL(memcmp(fp, c.authority, sizeof fp), 0);
	CU_ASSERT_EQUAL(memcmp(&c.holder, &holder.pub, sizeof c.holder), 0);
	CU_ASSERT_EQUAL(e2e_cred_verify(&c, &auth.pub), E2E_OK);
	CU_ASSERT_EQUAL(e2e_cred_verify(&c, &other.pub), E2E_ERR_AUTH);
	CU_ASSERT_TRUE(e2e_cred_has_rule(&c, 1, "plant/+/temp", 12));
	CU_ASSERT_FALSE(e2e_cred_has_rule(&c, 2, "plant/+/temp", 12));
	CU_ASSERT_FALSE(e2e_cred_has_rule(&c, 1, "plant/#", 7));
	CU_ASSERT_FALSE(e2e_cred_grants(&c, 1));
	CU_ASSERT_TRUE(e2e_cred_current(&c, 1000));
	CU_ASSERT_TRUE(e2e_cred_current(&c, 1999));
	CU_ASSERT_FALSE(e2e_cred_current(&c, 999));
	CU_ASSERT_FALSE(e2e_cred_current(&c, 2000));
	len = issue_sub(buf, sizeof buf, 0, 10);
	CU_ASSERT_EQUAL(e2e_cred_parse(&c, buf, len), E2E_OK);
	CU_ASSERT_TRUE(e2e_cred_grants(&c, 3));
	CU_ASSERT_FALSE(e2e_cred_grants(&c, 2));
	CU_ASSERT_EQUAL(e2e_cred_verify(&c, &auth.pub), E2E_OK);
}

/* Every bit flip fails the layout or the signature; every truncation the layout. */
static void test_tamper(void)
{
	uint8_t buf[E2E_CRED_MAX];
	struct e2e_cred c;
	size_t len = issue_sender(buf, sizeof buf, &auth, 0, 5);

	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x01;
		CU_ASSERT_TRUE(e2e_cred_parse(&c, buf, len) != E2E_OK ||
			e2e_cred_verify(&c, &auth.pub) == E2E_ERR_AUTH);
		buf[i] ^= 0x01;
	}
	for (size_t n = 0; n < len; n++)
		CU_ASSERT_NOT_EQUAL(e2e_cred_parse(&c, buf, n), E2E_OK);
	buf[0] = 2;
	CU_ASSERT_EQUAL(e2e_cred_parse(&c, buf, len), E2E_ERR_VERSION);
}

static void test_issue_refuses(void)
{
	static const struct e2e_scope_rule bad[] = { { 1, "a/#/b", 5 } };
	uint8_t buf[E2E_CRED_MAX];
	struct e2e_cred_spec s = { .kind = E2E_CRED_SENDER, .not_before_ms = 0,
		.not_after_ms = 1, .holder = holder.pub, .nrules = 1, .rules = bad };
	size_t len;

	CU_ASSERT_EQUAL(e2e_cred_issue(buf, sizeof buf, &len, &s, &auth), E2E_ERR_ARG);
	s.kind = 3;
	CU_ASSERT_EQUAL(e2e_cred_issue(buf, sizeof buf, &len, &s, &auth), E2E_ERR_ARG);
	s.kind = E2E_CRED_SUBSCRIBER;
	CU_ASSERT_EQUAL(e2e_cred_issue(buf, sizeof buf, &len, &s, &auth), E2E_ERR_ARG);
}

static void test_text_and_check(void)
{
	uint8_t buf[E2E_CRED_MAX], back[E2E_CRED_MAX];
	static char text[E2E_CRED_TEXT_MAX + 64];
	char line[E2E_PUBLINE_MIN + E2E_NAME_MAX + 1], file[512], err[256];
	struct e2e_authorities au;
	struct e2e_cred c;
	size_t len = issue_sub(buf, sizeof buf, 100, 200), blen = 0;

	strcpy(text, "# a comment\n\n");
	CU_ASSERT_EQUAL_FATAL(e2e_cred_format(text + strlen(text), E2E_CRED_TEXT_MAX, buf, len),
		E2E_OK);
	strcat(text, "\n");
	CU_ASSERT_EQUAL(e2e_cred_decode(back, sizeof back, &blen, text, strlen(text)), E2E_OK);
	CU_ASSERT_EQUAL(blen, len);
	CU_ASSERT_EQUAL(memcmp(back, buf, len), 0);
	strcat(text, "e2e-cred1 AAAA\n");
	CU_ASSERT_EQUAL(e2e_cred_decode(back, sizeof back, &blen, text, strlen(text)),
		E2E_ERR_CORRUPT);

	CU_ASSERT_EQUAL_FATAL(e2e_public_format(line, sizeof line, &auth.pub, "fleet"), E2E_OK);
	snprintf(file, sizeof file, "# trusted\n%s\n", line);
	CU_ASSERT_EQUAL_FATAL(e2e_authorities_parse(&au, file, strlen(file), err, sizeof err),
		E2E_OK);
	CU_ASSERT_EQUAL(au.n, 1);
	CU_ASSERT_STRING_EQUAL(au.a[0].name, "fleet");
	CU_ASSERT_EQUAL(e2e_cred_check(&c, buf, len, &au, E2E_CRED_SUBSCRIBER, 150), E2E_OK);
	CU_ASSERT_EQUAL(e2e_cred_check(&c, buf, len, &au, E2E_CRED_SUBSCRIBER, 200),
		E2E_ERR_EXHAUSTED);
	CU_ASSERT_EQUAL(e2e_cred_check(&c, buf, len, &au, E2E_CRED_SENDER, 150), E2E_ERR_ARG);
	len = issue_sender(buf, sizeof buf, &other, 0, 1000);
	CU_ASSERT_EQUAL(e2e_cred_check(&c, buf, len, &au, E2E_CRED_SENDER, 150),
		E2E_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(e2e_authorities_parse(&au, "e2e1 nope\n", 10, err, sizeof err),
		E2E_ERR_CORRUPT);
	CU_ASSERT_EQUAL(au.n, 0);
	CU_ASSERT_EQUAL(e2e_authorities_parse(&au, "", 0, err, sizeof err), E2E_OK);
	CU_ASSERT_EQUAL(au.n, 0);
}

/* cred.json (SPEC 13.1, 13.3): the independent generator's bytes. */
static struct e2e_authorities vec_au;

static void vec_authority(void)
{
	json_t *doc = tu_vectors("cred.json");
	json_t *a = doc ? json_object_get(doc, "authority") : NULL;
	char err[128];
	const char *line = a ? tu_jstr(a, "public_line") : NULL;

	CU_ASSERT_PTR_NOT_NULL_FATAL(line);
	CU_ASSERT_EQUAL_FATAL(e2e_authorities_parse(&vec_au, line, strlen(line), err, sizeof err),
		E2E_OK);
	json_decref(doc);
}

static enum e2e_status expect_of(const char *s)
{
	return !strcmp(s, "AUTH") ? E2E_ERR_AUTH : !strcmp(s, "VERSION") ? E2E_ERR_VERSION :
		!strcmp(s, "NOT_FOUND") ? E2E_ERR_NOT_FOUND : !strcmp(s, "OK") ? E2E_OK :
		E2E_ERR_MALFORMED;
}

static void vec_cred(const json_t *v)
{
	static uint8_t raw[E2E_CRED_MAX + 8];
	struct e2e_cred c;
	size_t len = 0;
	uint64_t serial = 0, kind = 0;

	CU_ASSERT_EQUAL_FATAL(tu_jhex(v, "credential", raw, sizeof raw, &len), 0);
	CU_ASSERT_EQUAL_FATAL(e2e_cred_parse(&c, raw, len), E2E_OK);
	CU_ASSERT_EQUAL(e2e_cred_verify(&c, &vec_au.a[0].pub), E2E_OK);
	CU_ASSERT_EQUAL(tu_juint(v, "serial", &serial), 0);
	CU_ASSERT_EQUAL(tu_juint(v, "kind", &kind), 0);
	CU_ASSERT_EQUAL(c.serial, serial);
	CU_ASSERT_EQUAL(c.kind, kind);
}

static void vec_cred_negative(const json_t *v)
{
	static uint8_t raw[E2E_CRED_MAX + 8];
	struct e2e_cred c;
	size_t len = 0;
	enum e2e_status want = expect_of(tu_jstr(v, "expect")), st;

	CU_ASSERT_EQUAL_FATAL(tu_jhex(v, "credential", raw, sizeof raw, &len), 0);
	st = e2e_cred_parse(&c, raw, len);
	if (st == E2E_OK)
		st = e2e_cred_verify(&c, &vec_au.a[0].pub);
	if (st != want)
		fprintf(stderr, "%s: %s, expected %s\n", tu_jstr(v, "name"), e2e_strerror(st),
			e2e_strerror(want));
	CU_ASSERT_EQUAL(st, want);
}

static void vec_revocations(const json_t *v)
{
	static uint8_t msg[E2E_REVLIST_MAX];
	struct e2e_revlist rl;
	size_t len = 0;
	uint64_t number = 0;
	const json_t *keys = json_object_get(v, "keys");

	CU_ASSERT_EQUAL_FATAL(tu_jhex(v, "message", msg, sizeof msg, &len), 0);
	CU_ASSERT_EQUAL_FATAL(e2e_revlist_parse(&rl, msg, len, tu_jstr(v, "topic"), &vec_au),
		E2E_OK);
	CU_ASSERT_EQUAL(tu_juint(v, "number", &number), 0);
	CU_ASSERT_EQUAL(rl.number, number);
	CU_ASSERT_EQUAL(rl.n, json_array_size(keys));
}

static void vec_revocations_negative(const json_t *v)
{
	static uint8_t msg[E2E_REVLIST_MAX];
	struct e2e_revlist rl;
	size_t len = 0;
	enum e2e_status want = expect_of(tu_jstr(v, "expect")), st;

	CU_ASSERT_EQUAL_FATAL(tu_jhex(v, "message", msg, sizeof msg, &len), 0);
	st = e2e_revlist_parse(&rl, msg, len, tu_jstr(v, "topic"), &vec_au);
	if (st != want)
		fprintf(stderr, "%s: %s, expected %s\n", tu_jstr(v, "name"), e2e_strerror(st),
			e2e_strerror(want));
	CU_ASSERT_EQUAL(st, want);
}

static void test_vectors(void)
{
	vec_authority();
	tu_each_vector("cred.json", "credentials", vec_cred);
	tu_each_vector("cred.json", "negative", vec_cred_negative);
	tu_each_vector("cred.json", "revocations", vec_revocations);
	tu_each_vector("cred.json", "revocation_negative", vec_revocations_negative);
}

/* A numbered list is kept, persisted; an older or equal one changes nothing. */
static void test_revstate(void)
{
	static uint8_t m1[4096], m2[4096];
	struct e2e_revstate rs, again;
	struct e2e_authorities au;
	struct tu_tmp t;
	char topic[E2E_REVLIST_TOPIC_MAX];
	size_t l1, l2;

	memset(&au, 0, sizeof au);
	au.n = 1;
	au.a[0].pub = auth.pub;
	e2e_public_fp(au.a[0].fp, &auth.pub);
	tu_tmp_open(&t, "unused");
	CU_ASSERT_EQUAL_FATAL(e2e_revlist_topic(topic, sizeof topic, "e2e/control", au.a[0].fp),
		E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_revlist_build(m1, sizeof m1, &l1, &auth, topic, 1,
		holder.pub.sign_pk, 1, 5), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_revlist_build(m2, sizeof m2, &l2, &auth, topic, 2, NULL, 0, 6),
		E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_revstate_init(&rs, t.dir, "e2e/control", &au), E2E_OK);
	CU_ASSERT_EQUAL(e2e_revstate_apply(&rs, &au, m1, l1, topic, NULL, NULL), E2E_OK);
	CU_ASSERT_TRUE(e2e_revstate_has(&rs, holder.pub.sign_pk));
	CU_ASSERT_EQUAL(e2e_revstate_apply(&rs, &au, m1, l1, topic, NULL, NULL), E2E_ERR_EXISTS);
	CU_ASSERT_EQUAL(e2e_revstate_apply(&rs, &au, m2, l2, topic, NULL, NULL), E2E_OK);
	CU_ASSERT_FALSE(e2e_revstate_has(&rs, holder.pub.sign_pk));
	/* After a restart: list 2 from disk, list 1 (a replay) still refused. */
	CU_ASSERT_EQUAL_FATAL(e2e_revstate_init(&again, t.dir, "e2e/control", &au), E2E_OK);
	CU_ASSERT_EQUAL(e2e_revstate_number(&again, au.a[0].fp), 2);
	CU_ASSERT_EQUAL(e2e_revstate_apply(&again, &au, m1, l1, topic, NULL, NULL),
		E2E_ERR_EXISTS);
	CU_ASSERT_EQUAL(e2e_revstate_apply(&rs, &au, m2, l2, "e2e/control/authority/x", NULL, NULL),
		E2E_ERR_AUTH);
	e2e_revstate_free(&rs);
	e2e_revstate_free(&again);
	tu_tmp_close(&t);
}

static const struct tu_test cred_tests[] = {
	{ "Issue, parse, verify; rules, scopes, window", test_roundtrip },
	{ "Any flipped bit or truncation is refused", test_tamper },
	{ "Issue refuses bad kinds, filters, empty grants", test_issue_refuses },
	{ "Text form, authorities file, full check", test_text_and_check },
	{ "Vectors: cred.json credentials and revocation lists", test_vectors },
	{ "Revocation state: newest kept and persisted, replays ignored", test_revstate },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "cred", cred_tests },
		{ NULL, NULL },
	};

	if (setup())
		return 1;
	return tu_main(suites);
}
