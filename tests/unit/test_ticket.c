/*
 * One-time tickets (SPEC 14): tokens, REDEEM and GRANT against tickets.json,
 * the authority's decision on every kind of REDEEM (granted, the same REDEEM
 * again, used up, unknown, forged, expired, stale, moved), the redeemer's
 * check of answers, and the `tickets` file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "testcu.h"

#define T0 1700000000000ULL
#define HOUR 3600000ULL

static struct e2e_identity auth, alice, mallory;
static char topic[E2E_TICKET_TOPIC_MAX + 1];

static int setup(void)
{
	uint8_t fp[E2E_FP_BYTES];

	if (e2e_init() != E2E_OK || e2e_identity_generate(&auth) != E2E_OK ||
	    e2e_identity_generate(&alice) != E2E_OK || e2e_identity_generate(&mallory) != E2E_OK)
		return 1;
	e2e_public_fp(fp, &auth.pub);
	return e2e_ticket_redeem_topic(topic, sizeof topic, "e2e/control", fp) != E2E_OK;
}

static void test_safety(void)
{
	struct e2e_ticket_token t;
	struct e2e_redeem r;
	uint8_t buf[16];
	size_t len;

	CU_ASSERT_EQUAL(e2e_ticket_token_parse(NULL, "x"), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ticket_token_parse(&t, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ticket_redeem_parse(&r, NULL, 0, "t"), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ticket_redeem_parse(&r, buf, 0, "t"), E2E_ERR_MALFORMED);
	CU_ASSERT_EQUAL(e2e_ticket_grant_parse(&r, buf, sizeof buf, "t", NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ticket_redeem(buf, sizeof buf, &len, &r, &alice, &t, NULL, topic, 1),
		E2E_ERR_BUFFER);
	CU_ASSERT_FALSE(e2e_ticket_redeem_mac_ok(buf, sizeof buf, buf));
	CU_ASSERT_EQUAL(e2e_tickets_load(NULL, "x", NULL, 0), E2E_ERR_ARG);
}

static void test_token(void)
{
	struct e2e_ticket_token t, back;
	char s[E2E_TICKET_TOKEN_LEN + 1], padded[E2E_TICKET_TOKEN_LEN + 8];

	randombytes_buf(&t, sizeof t);
	e2e_ticket_token_format(s, &t);
	CU_ASSERT_EQUAL(strlen(s), E2E_TICKET_TOKEN_LEN);
	CU_ASSERT_EQUAL(e2e_ticket_token_parse(&back, s), E2E_OK);
	CU_ASSERT_EQUAL(memcmp(&t, &back, sizeof t), 0);
	snprintf(padded, sizeof padded, "  %s\n", s);
	CU_ASSERT_EQUAL(e2e_ticket_token_parse(&back, padded), E2E_OK);
}

static void token_vector(const json_t *v)
{
	struct e2e_ticket_token t;
	uint8_t id[8], sec[16], fp[16];
	size_t n;
	char s[E2E_TICKET_TOKEN_LEN + 1];
	const char *name = tu_jstr(v, "name");

	CU_ASSERT_EQUAL_FATAL(e2e_ticket_token_parse(&t, tu_jstr(v, "token")), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(tu_jhex(v, "id", id, sizeof id, &n), 0);
	CU_ASSERT_EQUAL_FATAL(tu_jhex(v, "secret", sec, sizeof sec, &n), 0);
	CU_ASSERT_EQUAL_FATAL(tu_jhex(v, "fp", fp, sizeof fp, &n), 0);
	TU_CHECK(!memcmp(t.id, id, 8) && !memcmp(t.secret, sec, 16) && !memcmp(t.fp, fp, 16),
		"%s: fields", name);
	e2e_ticket_token_format(s, &t);
	TU_CHECK(strcmp(s, tu_jstr(v, "token")) == 0, "%s: format", name);
}

static void token_negative(const json_t *v)
{
	struct e2e_ticket_token t;

	TU_CHECK(e2e_ticket_token_parse(&t, tu_jstr(v, "token")) == E2E_ERR_MALFORMED, "%s",
		tu_jstr(v, "name"));
}

static json_t *doc;

static const json_t *redeem_named(const char *name)
{
	size_t i;
	json_t *r;

	json_array_foreach(json_object_get(doc, "redeems"), i, r)
		if (strcmp(tu_jstr(r, "name"), name) == 0)
			return r;
	return NULL;
}

static void redeem_vector(const json_t *v)
{
	uint8_t msg[E2E_CTL_MSG_MAX], sec[16], want[32], h[32];
	size_t len, n;
	struct e2e_redeem r;
	const char *name = tu_jstr(v, "name");

	CU_ASSERT_EQUAL_FATAL(tu_jhex(v, "message", msg, sizeof msg, &len), 0);
	CU_ASSERT_EQUAL_FATAL(tu_jhex(v, "secret", sec, sizeof sec, &n), 0);
	TU_CHECK(e2e_ticket_redeem_parse(&r, msg, len, tu_jstr(v, "topic")) == E2E_OK, "%s", name);
	TU_CHECK(strcmp(r.reply_topic, tu_jstr(v, "reply_topic")) == 0, "%s: reply", name);
	TU_CHECK(e2e_ticket_redeem_mac_ok(msg, len, sec), "%s: mac", name);
	CU_ASSERT_EQUAL_FATAL(tu_jhex(v, "sign_pk", want, sizeof want, &n), 0);
	TU_CHECK(memcmp(r.redeemer.sign_pk, want, 32) == 0, "%s: sign_pk", name);
	CU_ASSERT_EQUAL_FATAL(tu_jhex(v, "req_hash", want, sizeof want, &n), 0);
	e2e_ctl_hash(h, msg, len);
	TU_CHECK(memcmp(h, want, 32) == 0, "%s: req_hash", name);
}

/* The redeemer's view of an answer to the vector REDEEM @p req. */
static enum e2e_status accept_as(const char *req, const uint8_t *msg, size_t len,
	const char *on, struct e2e_redeem *g)
{
	const json_t *r = redeem_named(req);
	uint8_t rmsg[E2E_CTL_MSG_MAX], h[32], fp[16];
	size_t rlen, n;
	struct e2e_redeem sent;
	struct e2e_cred c;

	if (!r || tu_jhex(r, "message", rmsg, sizeof rmsg, &rlen) != 0 ||
	    tu_jhex(json_object_get(doc, "authority"), "fp", fp, sizeof fp, &n) != 0 ||
	    e2e_ticket_redeem_parse(&sent, rmsg, rlen, tu_jstr(r, "topic")) != E2E_OK)
		return E2E_ERR_ARG;
	e2e_ctl_hash(h, rmsg, rlen);
	return e2e_ticket_accept(g, &c, msg, len, on, &sent, h, fp);
}

static void grant_vector(const json_t *v)
{
	uint8_t msg[E2E_CTL_MSG_MAX];
	size_t len;
	uint64_t reason = 0;
	struct e2e_redeem g;
	const char *name = tu_jstr(v, "name");

	CU_ASSERT_EQUAL_FATAL(tu_jhex(v, "message", msg, sizeof msg, &len), 0);
	CU_ASSERT_EQUAL_FATAL(tu_juint(v, "reason", &reason), 0);
	TU_CHECK(accept_as(tu_jstr(v, "request"), msg, len, tu_jstr(v, "topic"), &g) == E2E_OK,
		"%s: accepted", name);
	TU_CHECK(g.reason == reason, "%s: reason %u", name, g.reason);
}

static void negative_vector(const json_t *v)
{
	uint8_t msg[E2E_CTL_MSG_MAX], sec[16];
	size_t len, n;
	struct e2e_redeem r;
	const char *name = tu_jstr(v, "name"), *expect = tu_jstr(v, "expect");
	const char *got = "OK";
	enum e2e_status st;

	CU_ASSERT_EQUAL_FATAL(tu_jhex(v, "message", msg, sizeof msg, &len), 0);
	if (strcmp(tu_jstr(v, "kind"), "redeem") == 0) {
		st = e2e_ticket_redeem_parse(&r, msg, len, tu_jstr(v, "topic"));
		CU_ASSERT_EQUAL_FATAL(tu_jhex(redeem_named("alice redeems"), "secret", sec,
			sizeof sec, &n), 0);
		if (st == E2E_OK && !e2e_ticket_redeem_mac_ok(msg, len, sec))
			got = "MAC";
	} else {
		st = accept_as(json_string_value(json_object_get(v, "request")), msg, len,
			tu_jstr(v, "topic"), &r);
		if (st == E2E_ERR_EXISTS)
			got = "OTHER_REQUEST";
	}
	if (st == E2E_ERR_MALFORMED)
		got = "MALFORMED";
	else if (st == E2E_ERR_VERSION)
		got = "VERSION";
	else if (st == E2E_ERR_AUTH)
		got = "AUTH";
	TU_CHECK(strcmp(got, expect) == 0, "%s: got %s, want %s", name, got, expect);
}

static void test_vectors(void)
{
	doc = tu_vectors("tickets.json");
	CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
	tu_each_vector("tickets.json", "tokens", token_vector);
	tu_each_vector("tickets.json", "token_negative", token_negative);
	tu_each_vector("tickets.json", "redeems", redeem_vector);
	tu_each_vector("tickets.json", "grants", grant_vector);
	tu_each_vector("tickets.json", "negative", negative_vector);
	json_decref(doc);
	doc = NULL;
}

struct redemption {
	uint8_t msg[E2E_CTL_MSG_MAX];
	size_t len;
	struct e2e_redeem sent;
	uint8_t hash[32];
};

static void redeem_with(struct redemption *x, const struct e2e_identity *who,
	const struct e2e_ticket *t, const uint8_t *secret, uint64_t now)
{
	struct e2e_ticket_token tok;

	memcpy(tok.id, t->id, sizeof tok.id);
	memcpy(tok.secret, secret, sizeof tok.secret);
	e2e_public_fp(tok.fp, &auth.pub);
	CU_ASSERT_EQUAL_FATAL(e2e_ticket_redeem(x->msg, sizeof x->msg, &x->len, &x->sent, who, &tok,
		NULL, topic, now), E2E_OK);
	e2e_ctl_hash(x->hash, x->msg, x->len);
}

static uint8_t serve(struct e2e_tickets *ts, const struct redemption *x, uint64_t now,
	struct e2e_ticket_outcome *res, uint8_t *out, size_t *out_len)
{
	CU_ASSERT_EQUAL_FATAL(e2e_ticket_serve(out, E2E_CTL_MSG_MAX, out_len, res, ts, &auth,
		x->msg, x->len, topic, now, 300000, 90 * 24 * HOUR), E2E_OK);
	return res->reason;
}

static void test_serve(void)
{
	static const uint8_t scopes[] = { 1, 3 };
	struct e2e_tickets ts = { 0 };
	const struct e2e_ticket *t;
	struct e2e_ticket *tm;
	struct e2e_ticket_outcome res;
	struct redemption a, a2, m, bad;
	struct e2e_redeem g;
	struct e2e_cred c;
	uint8_t out[E2E_CTL_MSG_MAX], out2[E2E_CTL_MSG_MAX], secret[16], fp[16], wrong[16];
	uint8_t cred[E2E_TICKET_CRED_MAX];
	size_t len = 0, len2 = 0, cred_len;

	e2e_public_fp(fp, &auth.pub);
	CU_ASSERT_EQUAL_FATAL(e2e_tickets_add(&ts, scopes, 2, T0 + HOUR, 1, T0, &t), E2E_OK);
	memcpy(secret, t->secret, sizeof secret);
	redeem_with(&a, &alice, t, secret, T0);
	/* Granted: one use consumed, a credential for alice's keys and scopes 1, 3. */
	CU_ASSERT_EQUAL(serve(&ts, &a, T0 + 10, &res, out, &len), 0);
	CU_ASSERT_TRUE(res.consumed);
	CU_ASSERT_EQUAL(ts.t[0].uses_left, 0);
	CU_ASSERT_STRING_EQUAL(res.reply_topic, a.sent.reply_topic);
	CU_ASSERT_EQUAL_FATAL(e2e_ticket_accept(&g, &c, out, len, a.sent.reply_topic, &a.sent,
		a.hash, fp), E2E_OK);
	CU_ASSERT_EQUAL(g.reason, 0);
	CU_ASSERT_TRUE(e2e_cred_grants(&c, 1) && e2e_cred_grants(&c, 3) && !e2e_cred_grants(&c, 2));
	CU_ASSERT_TRUE(e2e_cred_current(&c, T0 + 10));
	cred_len = g.cred_len;
	memcpy(cred, g.cred, cred_len);
	/* The same REDEEM again: the same credential, no use consumed (none left anyway). */
	CU_ASSERT_EQUAL(serve(&ts, &a, T0 + 20, &res, out2, &len2), 0);
	CU_ASSERT_TRUE(res.replayed && !res.consumed);
	CU_ASSERT_EQUAL_FATAL(e2e_ticket_accept(&g, &c, out2, len2, a.sent.reply_topic, &a.sent,
		a.hash, fp), E2E_OK);
	CU_ASSERT_TRUE(g.cred_len == cred_len && memcmp(g.cred, cred, cred_len) == 0);
	/* Another redemption of a used-up ticket: 8, by the same or another key. */
	redeem_with(&a2, &alice, t, secret, T0 + 30);
	CU_ASSERT_EQUAL(serve(&ts, &a2, T0 + 30, &res, out, &len), E2E_REFUSE_TICKET_USED);
	CU_ASSERT_FALSE(res.consumed);
	CU_ASSERT_EQUAL_FATAL(e2e_ticket_accept(&g, &c, out, len, a2.sent.reply_topic, &a2.sent,
		a2.hash, fp), E2E_OK);
	CU_ASSERT_EQUAL(g.reason, E2E_REFUSE_TICKET_USED);
	/* alice's GRANT replayed to mallory's redemption: another req_hash. */
	redeem_with(&m, &mallory, t, secret, T0 + 40);
	CU_ASSERT_EQUAL(e2e_ticket_accept(&g, &c, out2, len2, a.sent.reply_topic, &m.sent, m.hash,
		fp), E2E_ERR_EXISTS);
	/* A second ticket: forged secret (9), unknown id (6), expired (7), stale (5). */
	CU_ASSERT_EQUAL_FATAL(e2e_tickets_add(&ts, scopes, 1, T0 + HOUR, 3, T0, &t), E2E_OK);
	tm = e2e_tickets_find(&ts, t->id);
	memcpy(secret, tm->secret, sizeof secret);
	memcpy(wrong, secret, sizeof wrong);
	wrong[0] ^= 1;
	redeem_with(&bad, &mallory, tm, wrong, T0);
	CU_ASSERT_EQUAL(serve(&ts, &bad, T0, &res, out, &len), E2E_REFUSE_TICKET_MAC);
	CU_ASSERT_EQUAL(tm->uses_left, 3);
	redeem_with(&bad, &mallory, tm, secret, T0 - 400000);
	CU_ASSERT_EQUAL(serve(&ts, &bad, T0, &res, out, &len), E2E_REFUSE_STALE);
	redeem_with(&bad, &mallory, tm, secret, T0 + HOUR);
	CU_ASSERT_EQUAL(serve(&ts, &bad, T0 + HOUR, &res, out, &len), E2E_REFUSE_TICKET_EXPIRED);
	tm->id[0] ^= 1;
	CU_ASSERT_EQUAL(serve(&ts, &bad, T0 + HOUR, &res, out, &len), E2E_REFUSE_TICKET_UNKNOWN);
	tm->id[0] ^= 1;
	CU_ASSERT_EQUAL(tm->uses_left, 3);
	/* Moved to another topic: dropped, no answer. */
	CU_ASSERT_EQUAL(e2e_ticket_serve(out, sizeof out, &len, &res, &ts, &auth, bad.msg, bad.len,
		"e2e/control/authority/00000000000000000000000000000000/redeem", T0, 300000, HOUR),
		E2E_ERR_AUTH);
	/* Keys swapped in flight (signed by the broker's key): the MAC fails. */
	redeem_with(&bad, &alice, tm, secret, T0);
	memcpy(bad.msg + E2E_CTL_HEAD_BYTES + 8, mallory.pub.sign_pk, 32);
	bad.len -= 64;
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_sign(bad.msg, sizeof bad.msg, &bad.len, topic, &mallory),
		E2E_OK);
	CU_ASSERT_EQUAL(serve(&ts, &bad, T0, &res, out, &len), E2E_REFUSE_TICKET_MAC);
	e2e_tickets_free(&ts);
}

static void test_file(void)
{
	static const uint8_t scopes[] = { 0, 7, 255 };
	char dir[] = "/tmp/e2e-ticket-XXXXXX", path[64], err[256] = "";
	struct e2e_tickets ts = { 0 }, back = { 0 };
	const struct e2e_ticket *t;
	uint8_t hash[32] = { 1 }, cred[100] = { 2 };
	struct stat sb;
	FILE *f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/tickets", dir);
	CU_ASSERT_EQUAL(e2e_tickets_load(&ts, path, err, sizeof err), E2E_OK);   /* missing: empty */
	CU_ASSERT_EQUAL(ts.n, 0);
	CU_ASSERT_EQUAL_FATAL(e2e_tickets_add(&ts, scopes, 3, T0 + 1, 2, T0, &t), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_ticket_consume(&ts.t[0], hash, cred, sizeof cred), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_tickets_add(&ts, scopes, 1, T0 + 2, 1, T0, &t), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_tickets_save(&ts, path), E2E_OK);
	CU_ASSERT_EQUAL(stat(path, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
	CU_ASSERT_EQUAL_FATAL(e2e_tickets_load(&back, path, err, sizeof err), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(back.n, 2);
	CU_ASSERT_EQUAL(back.t[0].uses_left, 1);
	CU_ASSERT_EQUAL(back.t[0].nscopes, 3);
	CU_ASSERT_EQUAL(back.t[0].scopes[2], 255);
	CU_ASSERT_EQUAL(memcmp(back.t[0].secret, ts.t[0].secret, 16), 0);
	CU_ASSERT_PTR_NOT_NULL(e2e_ticket_use_find(&back.t[0], hash));
	CU_ASSERT_EQUAL(e2e_ticket_use_find(&back.t[0], hash)->cred_len, sizeof cred);
	e2e_tickets_free(&back);
	/* Records expired more than a day ago go when a ticket is added. */
	CU_ASSERT_EQUAL_FATAL(e2e_tickets_add(&ts, scopes, 1, T0 + 3 * 24 * HOUR, 1,
		T0 + 2 * 24 * HOUR, &t), E2E_OK);
	CU_ASSERT_EQUAL(ts.n, 1);
	/* Damage is refused with the line. */
	f = fopen(path, "a");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("ticket 00 zz 1 1 1\n", f);
	fclose(f);
	CU_ASSERT_EQUAL(e2e_tickets_load(&back, path, err, sizeof err), E2E_ERR_CORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, ":5:"));
	/* Readable by others: refused (the secrets redeem tickets). */
	CU_ASSERT_EQUAL(chmod(path, 0644), 0);
	CU_ASSERT_EQUAL(e2e_tickets_load(&back, path, err, sizeof err), E2E_ERR_PERM);
	unlink(path);
	rmdir(dir);
	e2e_tickets_free(&ts);
}

static const struct tu_test ticket_tests[] = {
	{ "Safety: NULL and short buffers", test_safety },
	{ "Token: format and parse round trip", test_token },
	{ "Vectors: tickets.json (tokens, REDEEM, GRANT, negatives)", test_vectors },
	{ "Serve: granted once, replay answered again, every refusal", test_serve },
	{ "File: tickets round trip, 0600, pruning, damage refused", test_file },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "ticket", ticket_tests },
		{ NULL, NULL },
	};

	if (setup())
		return 1;
	return tu_main(suites);
}
