/*
 * A sender's fleet trust in its state directory (SPEC 13.3, 13.5; libe2e
 * fleet.c), through e2e_sender_open/e2e_sender_control: a credential holder
 * is answered and recorded in cred-served, the sender's own credential rides
 * in the delivery; a revocation list naming the holder rotates exactly the
 * scopes it was served and refuses it from then on, also after a restart;
 * a replayed older list changes nothing; a changed `authorities` file is
 * picked up by the tick (plan/run/apply, as the publisher runs it).
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "testcu.h"

#define T0 1700000000000ULL

static uint64_t g_now = T0;

static uint64_t clock_ms(void)
{
	return g_now;
}

struct fx {
	struct tu_tmp t;
	struct e2e_identity id, auth, carol;
	struct e2e_sender_config cfg;
	struct e2e_sender *s;
	struct e2e_authorities au;
	uint8_t carol_cred[E2E_CRED_MAX];
	size_t carol_cred_len;
	char err[512], topic[E2E_REVLIST_TOPIC_MAX];
};

static void put(const struct fx *f, const char *name, const char *text)
{
	char p[4200];
	FILE *fp;

	tu_path(p, sizeof p, f->t.dir, name);
	fp = fopen(p, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	fputs(text, fp);
	fclose(fp);
	chmod(p, 0600);
}

static void put_cred(const struct fx *f, const uint8_t *c, size_t len)
{
	static char text[E2E_CRED_TEXT_MAX + 2];

	CU_ASSERT_EQUAL_FATAL(e2e_cred_format(text, sizeof text - 1, c, len), E2E_OK);
	strcat(text, "\n");
	put(f, "credential", text);
}

static uint32_t epoch_of(const struct fx *f, uint8_t scope)
{
	struct e2e_keystore *ks = NULL;
	const struct e2e_keystore_entry *e;
	char p[4200];
	uint32_t ep;

	tu_path(p, sizeof p, f->t.dir, "keys");
	CU_ASSERT_EQUAL_FATAL(e2e_keystore_load(&ks, p, 0, NULL, 0), E2E_OK);
	e = e2e_keystore_current(ks, scope);
	ep = e ? e->epoch : 0;
	e2e_keystore_free(ks);
	return ep;
}

static void fx_open(struct fx *f)
{
	enum e2e_status st;

	f->cfg.dir = f->t.dir;
	f->cfg.clock_ms = clock_ms;
	f->cfg.err = f->err;
	f->cfg.err_len = sizeof f->err;
	st = e2e_sender_open(&f->s, &f->cfg);
	TU_CHECK(st == E2E_OK, "open: %s (%s)", e2e_strerror(st), f->err);
	CU_ASSERT_EQUAL_FATAL(st, E2E_OK);
}

static void fx_init(struct fx *f)
{
	static const struct e2e_scope_rule rules[] = { { 1, "m/#", 3 } };
	static const uint8_t scopes[] = { 1 };
	struct e2e_cred_spec sc = { .kind = E2E_CRED_SENDER, .serial = 1, .not_before_ms = 0,
		.not_after_ms = T0 * 2, .nrules = 1, .rules = rules };
	uint8_t cred[E2E_CRED_MAX];
	char line[256];
	size_t len;

	memset(f, 0, sizeof *f);
	g_now = T0;
	tu_tmp_open(&f->t, "identity.key");
	tu_identity(&f->id);
	tu_identity(&f->auth);
	tu_identity(&f->carol);
	CU_ASSERT_EQUAL_FATAL(e2e_identity_save(&f->id, f->t.path, 0), E2E_OK);
	put(f, "scopes", "scope 1 tele m/#\nscope 2 sec s/#\n");
	CU_ASSERT_EQUAL_FATAL(e2e_public_format(line, sizeof line - 1, &f->auth.pub, "fleet"),
		E2E_OK);
	strcat(line, "\n");
	put(f, "authorities", line);
	f->au.n = 1;
	f->au.a[0].pub = f->auth.pub;
	e2e_public_fp(f->au.a[0].fp, &f->auth.pub);
	sc.holder = f->id.pub;
	CU_ASSERT_EQUAL_FATAL(e2e_cred_issue(cred, sizeof cred, &len, &sc, &f->auth), E2E_OK);
	put_cred(f, cred, len);
	sc = (struct e2e_cred_spec){ .kind = E2E_CRED_SUBSCRIBER, .serial = 2, .not_before_ms = 0,
		.not_after_ms = T0 * 2, .holder = f->carol.pub, .nscopes = 1, .scopes = scopes };
	CU_ASSERT_EQUAL_FATAL(e2e_cred_issue(f->carol_cred, sizeof f->carol_cred,
		&f->carol_cred_len, &sc, &f->auth), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_revlist_topic(f->topic, sizeof f->topic, E2E_CTL_TOPIC_DEFAULT,
		f->au.a[0].fp), E2E_OK);
	fx_open(f);
}

static void fx_free(struct fx *f)
{
	e2e_sender_close(f->s);
	e2e_identity_destroy(&f->id);
	e2e_identity_destroy(&f->auth);
	e2e_identity_destroy(&f->carol);
	tu_tmp_close(&f->t);
}

/* carol asks for @p scope; the answer's type (and @p m parsed). */
static uint8_t ask(struct fx *f, uint8_t scope, struct e2e_ctl *m)
{
	static uint8_t msg[E2E_CTL_MSG_MAX], out[E2E_CTL_DELIVERY_MAX];
	struct e2e_ctl req;
	struct e2e_ctl_want w = { scope, 0 };
	uint8_t eph[32];
	char reply[E2E_CTL_REPLY_MAX + 1];
	size_t len, olen;

	CU_ASSERT_EQUAL_FATAL(e2e_ctl_request_cred(msg, sizeof msg, &len, &req, eph, &f->carol,
		e2e_sender_id(&f->id.pub), &w, 1, NULL, E2E_CTL_TOPIC_DEFAULT, f->carol_cred,
		f->carol_cred_len, g_now), E2E_OK);
	if (e2e_sender_control(f->s, msg, len, E2E_CTL_TOPIC_DEFAULT, out, sizeof out, &olen, reply,
		g_now) != E2E_OK)
		return 0;
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(m, out, olen, reply, &f->id.pub), E2E_OK);
	return m->type;
}

/* The publisher's tick: plan, run (the file work), apply. */
static enum e2e_status tick(struct fx *f)
{
	struct e2e_sender_tick *t = NULL;
	enum e2e_status st = e2e_sender_tick_plan(f->s, g_now, &t);

	if (st != E2E_OK)
		return st;
	(void)e2e_sender_tick_run(t);
	return e2e_sender_tick_apply(f->s, t);
}

static enum e2e_status revoke(struct fx *f, uint64_t number, const uint8_t *keys, uint16_t n)
{
	static uint8_t msg[8192], out[64];
	char reply[E2E_CTL_REPLY_MAX + 1];
	size_t len, olen;

	CU_ASSERT_EQUAL_FATAL(e2e_revlist_build(msg, sizeof msg, &len, &f->auth, f->topic, number,
		keys, n, g_now), E2E_OK);
	return e2e_sender_control(f->s, msg, len, f->topic, out, sizeof out, &olen, reply, g_now);
}

static void test_served_revoked_rotated(void)
{
	struct fx f;
	struct e2e_ctl m;
	struct e2e_cred sc;
	char p[4200];
	struct stat sb;
	uint32_t e1, e2;

	fx_init(&f);
	CU_ASSERT_EQUAL(ask(&f, 1, &m), E2E_CTL_DELIVERY);
	CU_ASSERT_EQUAL(e2e_cred_check(&sc, m.cred, m.cred_len, &f.au, E2E_CRED_SENDER, g_now),
		E2E_OK);
	CU_ASSERT_EQUAL(ask(&f, 2, &m), E2E_CTL_REFUSAL);
	CU_ASSERT_EQUAL(m.reason, E2E_REFUSE_SCOPE);
	tu_path(p, sizeof p, f.t.dir, "cred-served");
	CU_ASSERT_EQUAL(stat(p, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_size, 130);
	e1 = epoch_of(&f, 1);
	e2 = epoch_of(&f, 2);
	g_now += 1000;
	/* An empty list 1, then list 2 naming carol: scope 1 rotates, 2 does not. */
	CU_ASSERT_EQUAL(revoke(&f, 1, NULL, 0), E2E_ERR_EXISTS);
	CU_ASSERT_EQUAL(tick(&f), E2E_OK);
	CU_ASSERT_EQUAL(epoch_of(&f, 1), e1);
	CU_ASSERT_EQUAL(revoke(&f, 2, f.carol.pub.sign_pk, 1), E2E_ERR_EXISTS);
	/* Refused at once; the rotation is the next tick's file work. */
	CU_ASSERT_EQUAL(ask(&f, 1, &m), E2E_CTL_REFUSAL);
	CU_ASSERT_EQUAL(tick(&f), E2E_OK);
	CU_ASSERT_NOT_EQUAL(epoch_of(&f, 1), e1);
	CU_ASSERT_EQUAL(epoch_of(&f, 2), e2);
	e1 = epoch_of(&f, 1);
	CU_ASSERT_EQUAL(ask(&f, 1, &m), E2E_CTL_REFUSAL);
	CU_ASSERT_EQUAL(m.reason, E2E_REFUSE_REVOKED);
	/* Replays of older lists: nothing rotates, carol stays revoked. */
	CU_ASSERT_EQUAL(revoke(&f, 1, NULL, 0), E2E_ERR_EXISTS);
	CU_ASSERT_EQUAL(tick(&f), E2E_OK);
	CU_ASSERT_EQUAL(epoch_of(&f, 1), e1);
	CU_ASSERT_EQUAL(ask(&f, 1, &m), E2E_CTL_REFUSAL);
	CU_ASSERT_EQUAL(m.reason, E2E_REFUSE_REVOKED);
	/* After a restart: still revoked (the list was persisted). */
	e2e_sender_close(f.s);
	f.s = NULL;
	fx_open(&f);
	CU_ASSERT_EQUAL(ask(&f, 1, &m), E2E_CTL_REFUSAL);
	CU_ASSERT_EQUAL(m.reason, E2E_REFUSE_REVOKED);
	/* A list signed by someone else: refused. */
	{
		static uint8_t msg[4096], out[64];
		char reply[E2E_CTL_REPLY_MAX + 1];
		size_t len, olen;

		CU_ASSERT_EQUAL_FATAL(e2e_revlist_build(msg, sizeof msg, &len, &f.carol, f.topic, 9,
			NULL, 0, g_now), E2E_OK);
		CU_ASSERT_NOT_EQUAL(e2e_sender_control(f.s, msg, len, f.topic, out, sizeof out, &olen,
			reply, g_now), E2E_ERR_EXISTS);
	}
	fx_free(&f);
}

static void test_authorities_reloaded(void)
{
	struct fx f;
	struct e2e_ctl m;

	fx_init(&f);
	CU_ASSERT_EQUAL(ask(&f, 1, &m), E2E_CTL_DELIVERY);
	put(&f, "authorities", "# nobody\n\n");
	g_now += 2000;
	CU_ASSERT_EQUAL(tick(&f), E2E_OK);
	CU_ASSERT_EQUAL(ask(&f, 1, &m), E2E_CTL_REFUSAL);
	CU_ASSERT_EQUAL(m.reason, E2E_REFUSE_NOT_ENROLLED);
	fx_free(&f);
}

static const struct tu_test tests[] = {
	{ "Credential holder served, recorded; revoked: its scopes rotated, refused, persisted",
		test_served_revoked_rotated },
	{ "A changed authorities file is picked up by the tick", test_authorities_reloaded },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = { { "fleet", tests }, { NULL, NULL } };

	return tu_main(suites);
}
