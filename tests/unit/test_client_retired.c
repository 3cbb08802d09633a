/*
 * The subscriber client's decisions on envelopes under a retired key
 * (SPEC 11.5), without a broker: a client that never connects, fed
 * envelopes and signed summaries through its internal entry points
 * (e2e_client_process, e2e_client_on_summary, e2e_client_check_summaries).
 * A revoked member's envelopes (same seq, above the top, a fresh run) are
 * never delivered and end FORGED; genuine ones sealed before the rotation
 * are delivered once a summary lists them, marked confirmed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client_impl.h"
#include "e2e/enroll.h"
#include "e2e/tx.h"
#include "testcu.h"

#define TOPIC "a/x"
#define RUN 0x5EED0200U
#define MAXM 64

struct got {
	unsigned n;
	struct { enum e2e_verdict v; uint32_t seq, epoch; int confirmed; char pt[32]; } m[MAXM];
	unsigned forgeries;      /* "retired key forgery" events */
	unsigned other_alarms;   /* any other insider/unsummarized/unconfirmed event */
};

static void on_message(void *ctx, const struct e2e_client_msg *m)
{
	struct got *g = ctx;

	if (g->n >= MAXM)
		return;
	g->m[g->n].v = m->verdict;
	g->m[g->n].seq = m->seq;
	g->m[g->n].epoch = m->epoch;
	g->m[g->n].confirmed = m->confirmed;
	snprintf(g->m[g->n].pt, sizeof g->m[g->n].pt, "%.*s", (int)(m->len < 31 ? m->len : 31),
		m->payload ? (const char *)m->payload : "");
	g->n++;
}

static void on_event(void *ctx, const struct e2e_client_event *ev)
{
	struct got *g = ctx;

	if (ev->type == E2E_EV_INSIDER_FORGERY && strstr(ev->detail, "retired key forgery"))
		g->forgeries++;
	else if (ev->type == E2E_EV_INSIDER_FORGERY || ev->type == E2E_EV_UNSUMMARIZED ||
		 ev->type == E2E_EV_UNCONFIRMED || ev->type == E2E_EV_UNCHECKED)
		g->other_alarms++;
}

struct kfx {
	char *dir;
	char p_id[4096], p_trust[4096];
	struct e2e_identity sender;
	uint32_t sid;
	struct e2e_client_config cfg;
	struct e2e_client *c;
	struct trusted *t;
	uint8_t key1[E2E_KEY_BYTES], key2[E2E_KEY_BYTES];
	struct tu_reserve res;
	struct e2e_tx *tx;
	struct e2e_summary *sum;
	uint32_t number;
	struct got got;
};

static void kfx_init(struct kfx *f)
{
	struct e2e_scope_rule all = { 1, "#", 1 };
	struct e2e_keyid id;
	struct e2e_tx_config tc;

	memset(f, 0, sizeof *f);
	f->dir = tu_tmpdir();
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->dir);
	CU_ASSERT_EQUAL_FATAL(tu_subscriber_files(f->dir, f->p_id, sizeof f->p_id, f->p_trust,
		sizeof f->p_trust, &f->sender), 0);
	f->sid = e2e_sender_id(&f->sender.pub);
	f->cfg.conn.host = "127.0.0.1";
	f->cfg.conn.port = 1;
	f->cfg.identity_file = f->p_id;
	f->cfg.trust_file = f->p_trust;
	f->cfg.on_message = on_message;
	f->cfg.on_event = on_event;
	f->cfg.ctx = &f->got;
	CU_ASSERT_EQUAL_FATAL(e2e_client_create(&f->c, &f->cfg), E2E_OK);
	/* What a key delivery installs: the map, summaries every second, epoch 1. */
	tu_key(f->key1, 0x71);
	tu_key(f->key2, 0x72);
	id = (struct e2e_keyid){ f->sid, 1, 1 };
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_set_profile(f->c->kr, f->sid, &all, 1, 1000), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_add(f->c->kr, &id, f->key1, 0), E2E_OK);
	f->t = e2e_client_trusted(f->c, f->sid);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->t);
	e2e_client_expect_summaries(f->c, f->t, 1000, e2e_mono_ms());
	CU_ASSERT_EQUAL_FATAL(e2e_session_subscribe(&f->c->sess, "a/#", 1, 0), E2E_OK);
	memset(&tc, 0, sizeof tc);
	tc.id = id;
	tc.key = f->key1;
	tc.run = RUN;
	tc.reserve = tu_reserve_cb;
	tc.reserve_ctx = &f->res;
	CU_ASSERT_EQUAL_FATAL(e2e_tx_create(&f->tx, &tc), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_summary_create(&f->sum, 64, 4096, 1024), E2E_OK);
}

static void kfx_free(struct kfx *f)
{
	e2e_client_destroy(f->c);
	e2e_tx_destroy(f->tx);
	e2e_summary_destroy(f->sum);
	e2e_identity_wipe(&f->sender);
	tu_rmtree(f->dir);
	free(f->dir);
}

/* The sender seals (and summarizes) message @p text. */
static size_t seal(struct kfx *f, uint8_t env[TU_ENV_CAP], const char *text)
{
	struct e2e_header h;
	size_t len = 0;

	CU_ASSERT_EQUAL_FATAL(e2e_tx_seal(f->tx, env, TU_ENV_CAP, &len, (const uint8_t *)TOPIC,
		strlen(TOPIC), (const uint8_t *)text, strlen(text)), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_header_parse(&h, env, len), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_summary_add(f->sum, h.run, TOPIC, strlen(TOPIC), h.seq, env, len),
		E2E_OK);
	return len;
}

/* A revoked member seals with the old key. */
static size_t forge(struct kfx *f, uint8_t env[TU_ENV_CAP], uint32_t run, uint64_t ctr,
	uint32_t seq)
{
	struct e2e_header h = tu_header(f->sid, 1, 1, run, ctr, seq);

	return tu_seal(env, TU_ENV_CAP, &h, f->key1, TOPIC, (const uint8_t *)"evil", 4);
}

static void deliver(struct kfx *f, const uint8_t *env, size_t len)
{
	e2e_client_process(f->c, TOPIC, env, len, 1, 0, 0);
}

/* The sender's summary of what it sealed since the last, checked now. */
static void summary(struct kfx *f)
{
	static uint8_t msg[E2E_CTL_SUMMARY_MAX];
	char topic[64];
	uint8_t parts = 0;
	size_t len = 0;
	struct e2e_ctl m;

	CU_ASSERT_EQUAL_FATAL(e2e_ctl_sender_topic(topic, sizeof topic, f->c->control_topic,
		f->sid), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_summary_build(f->sum, &f->sender, topic, 1000, 0xB0070002U,
		++f->number, 0, &parts, msg, sizeof msg, &len, e2e_now_ms()), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(parts, 1);
	e2e_summary_reset(f->sum);
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(&m, msg, len, topic, &f->sender.pub), E2E_OK);
	e2e_client_on_summary(f->c, f->t, topic, msg, len, &m);
	/* Past the reordering delay. */
	e2e_client_check_summaries(f->c, e2e_mono_ms() + SUMMARY_DELAY_MS + 1);
}

static unsigned count(const struct got *g, enum e2e_verdict v, int confirmed)
{
	unsigned n = 0;

	/* E2E_V_OK: any delivering verdict. */
	for (unsigned i = 0; i < g->n; i++)
		n += (v == E2E_V_OK ? e2e_verdict_delivers(g->m[i].v) : g->m[i].v == v) &&
			(confirmed < 0 || g->m[i].confirmed == confirmed);
	return n;
}

static void test_retired_decisions(void)
{
	struct kfx f;
	uint8_t e1[TU_ENV_CAP], e2[TU_ENV_CAP], g3[TU_ENV_CAP], g4[TU_ENV_CAP];
	uint8_t x4[TU_ENV_CAP], x9[TU_ENV_CAP], xr[TU_ENV_CAP];
	size_t l1, l2, l3, l4, lx4, lx9, lxr;
	struct e2e_keyid id2;
	struct e2e_client_stats st;

	kfx_init(&f);
	l1 = seal(&f, e1, "m1");
	l2 = seal(&f, e2, "m2");
	deliver(&f, e1, l1);
	deliver(&f, e2, l2);
	CU_ASSERT_EQUAL(count(&f.got, E2E_V_OK, 0), 2);
	summary(&f);
	/* Sealed before the rotation, still in flight. */
	l3 = seal(&f, g3, "m3");
	l4 = seal(&f, g4, "m4");
	/* The rotation: epoch 2 installed, epoch 1 retired. */
	id2 = (struct e2e_keyid){ f.sid, 1, 2 };
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_add(f.c->kr, &id2, f.key2, 0), E2E_OK);
	lx4 = forge(&f, x4, RUN, 4, 4);
	lx9 = forge(&f, x9, RUN, 9, 9);
	lxr = forge(&f, xr, 0x0BAD0002U, 1000, 1);
	f.got.n = 0;
	deliver(&f, x4, lx4);            /* the forgery first: must not block the genuine seq 4 */
	deliver(&f, g4, l4);
	deliver(&f, g3, l3);
	deliver(&f, x9, lx9);
	deliver(&f, xr, lxr);
	CU_ASSERT_EQUAL(f.got.n, 0);     /* nothing delivered on the key's word */
	CU_ASSERT_EQUAL(f.c->hold_count, 5);
	summary(&f);                     /* lists 3 and 4 */
	/* In the order they were held: 4 (GAP 1), then 3 (LATE). */
	CU_ASSERT_EQUAL(count(&f.got, E2E_V_GAP, 1), 1);
	CU_ASSERT_EQUAL(count(&f.got, E2E_V_LATE, 1), 1);
	CU_ASSERT_EQUAL(count(&f.got, E2E_V_OK, 1), 2);
	CU_ASSERT_EQUAL(count(&f.got, E2E_V_FORGED, 0), 1);
	for (unsigned i = 0; i < f.got.n; i++)
		if (e2e_verdict_delivers(f.got.m[i].v))
			TU_CHECK(!strcmp(f.got.m[i].pt, f.got.m[i].seq == 3 ? "m3" : "m4"),
				"seq %u delivered '%s'", f.got.m[i].seq, f.got.m[i].pt);
		else
			TU_CHECK(f.got.m[i].seq == 4 && !f.got.m[i].pt[0], "forged seq %u",
				f.got.m[i].seq);
	CU_ASSERT_EQUAL(f.c->hold_count, 2);
	/* The genuine seq 4 came through: the forgery again is a (silent)
	 * duplicate now, decided before any crypto, not held. */
	deliver(&f, x4, lx4);
	CU_ASSERT_EQUAL(f.got.n, 3);
	CU_ASSERT_EQUAL(f.c->hold_count, 2);
	CU_ASSERT_EQUAL(f.got.forgeries, 1);
	/* The summary that confirmed 3 and 4 was the first after 9 and the
	 * fresh run arrived, without them; the next is the second: forged. */
	summary(&f);
	CU_ASSERT_EQUAL(f.c->hold_count, 0);
	CU_ASSERT_EQUAL(count(&f.got, E2E_V_FORGED, 0), 3);
	CU_ASSERT_EQUAL(f.got.forgeries, 3);
	CU_ASSERT_EQUAL(f.got.other_alarms, 0);
	/* No summary comes at all (withheld): at the hold's time bound (3
	 * intervals, at least the UNKNOWN_KEY hold time) it is not delivered,
	 * and not called forged either: nothing said so (the stall alarm
	 * speaks of the missing summaries). */
	lx9 = forge(&f, x9, RUN, 30, 30);
	deliver(&f, x9, lx9);
	CU_ASSERT_EQUAL(f.c->hold_count, 1);
	e2e_client_release(f.c, e2e_mono_ms() + 1000, 0);
	CU_ASSERT_EQUAL(f.c->hold_count, 1);
	e2e_client_release(f.c, e2e_mono_ms() + f.c->cfg.hold_ms + 1, 0);
	CU_ASSERT_EQUAL(f.c->hold_count, 0);
	CU_ASSERT_EQUAL(count(&f.got, E2E_V_FORGED, 0), 3);
	CU_ASSERT_EQUAL(count(&f.got, E2E_V_UNKNOWN_KEY, 0), 1);
	CU_ASSERT_EQUAL(count(&f.got, E2E_V_OK, -1), 2);   /* nothing more delivered */
	/* Summaries off for this sender: a retired key accepts nothing new
	 * (unconfirmed, at once). */
	f.t->sum_interval_ms = 0;
	lx9 = forge(&f, x9, RUN, 20, 20);
	deliver(&f, x9, lx9);
	CU_ASSERT_EQUAL(count(&f.got, E2E_V_FORGED, 0), 3);
	CU_ASSERT_EQUAL(count(&f.got, E2E_V_UNKNOWN_KEY, 0), 2);
	CU_ASSERT_EQUAL(f.c->hold_count, 0);
	/* Before any summary of the sender (a retained message read at start):
	 * two summaries that do not list it only say it may have been in one
	 * this subscriber never saw; unconfirmed, not forged. */
	f.t->sum_interval_ms = 1000;
	f.t->sum_boot = 0;   /* as for a subscriber that has received none yet */
	lx9 = forge(&f, x9, 0x0BAD0003U, 2000, 1);
	deliver(&f, x9, lx9);
	CU_ASSERT_EQUAL(f.c->hold_count, 1);
	summary(&f);
	summary(&f);
	CU_ASSERT_EQUAL(f.c->hold_count, 0);
	CU_ASSERT_EQUAL(count(&f.got, E2E_V_FORGED, 0), 3);
	CU_ASSERT_EQUAL(count(&f.got, E2E_V_UNKNOWN_KEY, 0), 3);
	CU_ASSERT_EQUAL(count(&f.got, E2E_V_OK, -1), 2);
	CU_ASSERT_EQUAL(f.got.forgeries, 3);
	e2e_client_stats(f.c, &st);
	CU_ASSERT_EQUAL(st.retired_held, 8);
	CU_ASSERT_EQUAL(st.retired_confirmed, 2);
	CU_ASSERT_EQUAL(st.retired_forged, 3);
	CU_ASSERT_EQUAL(st.retired_unconfirmed, 3);
	CU_ASSERT_EQUAL(st.insider_forgeries, 0);
	kfx_free(&f);
}

/* A subscriber of '#' also gets the other subscribers' key deliveries
 * (e2e/k/...) and requests (the control topic): none of them is data
 * (SPEC 11.1), so none gets a verdict, least of all UNKNOWN_KEY; an
 * envelope on a data topic, through the same entry point, still does. */
static void test_route_not_data(void)
{
	struct kfx f;
	uint8_t e1[TU_ENV_CAP], junk[200];
	size_t l1;
	struct e2e_client_stats st;
	uint64_t total = 0;

	kfx_init(&f);
	l1 = seal(&f, e1, "m1");
	/* A DELIVERY's first bytes: version 1, type 2, a sender id, a time. */
	memset(junk, 0xA5, sizeof junk);
	junk[0] = 1;
	junk[1] = 2;
	f.c->sess.on_msg(f.c, "e2e/k/0123456789abcdef0123456789abcdef", junk, sizeof junk, 1, 0);
	f.c->sess.on_msg(f.c, "e2e/k/0123456789abcdef0123456789abcdef", e1, l1, 1, 0);
	f.c->sess.on_msg(f.c, "e2e/control", junk, sizeof junk, 1, 0);
	e2e_client_stats(f.c, &st);
	for (int v = 0; v <= E2E_V_FORGOTTEN; v++)
		total += st.verdicts[v];
	CU_ASSERT_EQUAL(total, 0);
	CU_ASSERT_EQUAL(f.got.n, 0);
	f.c->sess.on_msg(f.c, TOPIC, e1, l1, 1, 0);
	e2e_client_stats(f.c, &st);
	CU_ASSERT_EQUAL(st.verdicts[E2E_V_OK], 1);
	CU_ASSERT_EQUAL(st.verdicts[E2E_V_UNKNOWN_KEY], 0);
	CU_ASSERT_EQUAL(count(&f.got, E2E_V_OK, -1), 1);
	kfx_free(&f);
}

int main(void)
{
	static const struct tu_test tests[] = {
		{ "Retired key: held, confirmed by the summary or FORGED (SPEC 11.5)",
			test_retired_decisions },
		{ "Others' key deliveries and requests are not data (SPEC 11.1)",
			test_route_not_data },
		{ NULL, NULL },
	};
	static const struct tu_suite suites[] = {
		{ "client retired keys", tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
