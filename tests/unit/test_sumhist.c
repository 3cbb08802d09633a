/*
 * Summary history (SPEC 11.6, libe2e/control/sumhist.c): the sender repeats the
 * ranges of its last intervals in part 0, within the count and byte
 * bounds; a receiver that lost summaries counts, per stream, what they
 * listed and never arrived, and nothing else.
 */
#include <stdio.h>
#include <string.h>

#include "testcu.h"
#include "e2e/summary.h"
#include "control/sumhist.h"

#define CTL "e2e/control/00000001"

static struct e2e_identity g_id;
static int g_have_id;
static uint8_t g_msg[E2E_CTL_SUMMARY_MAX];

/* The envelope bytes of (topic, seq): only their digest matters here. */
static size_t fake_env(uint8_t *out, const char *topic, uint32_t seq)
{
	int n = snprintf((char *)out, 64, "env %s #%u", topic, (unsigned)seq);

	/* A long topic is cut: snprintf returns the length it wanted, and
	 * the digest must not read past the 64 bytes (ASan build). */
	return n < 0 ? 0 : n > 63 ? 63 : (size_t)n;
}

static void add(struct e2e_summary *s, const char *topic, uint32_t seq)
{
	uint8_t env[64];
	size_t n = fake_env(env, topic, seq);

	CU_ASSERT_EQUAL(e2e_summary_add(s, 7, topic, strlen(topic), seq, env, n), E2E_OK);
}

/* Build summary (boot, number) part 0 into g_msg, parse it into @p m, reset. */
static size_t build(struct e2e_summary *s, uint32_t boot, uint32_t number, struct e2e_ctl *m)
{
	uint8_t parts = 0;
	size_t len = 0;

	if (!g_have_id) {
		tu_identity(&g_id);   /* CUnit asserts inside: within a test */
		g_have_id = 1;
	}
	CU_ASSERT_EQUAL_FATAL(e2e_summary_build(s, &g_id, CTL, 1000, boot, number, 0, &parts,
		g_msg, sizeof g_msg, &len, 1), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(m, g_msg, len, CTL, &g_id.pub), E2E_OK);
	e2e_summary_reset(s);
	return len;
}

struct seen {
	uint32_t number[8];
	uint16_t nranges[8];
	unsigned n;
	char topic0[8][64];
	uint32_t first0[8], last0[8];
};

static void walk(const struct e2e_ctl *m, struct seen *v)
{
	struct e2e_sumhist_rec h;
	uint8_t left = m->nhist;
	size_t off = 0;

	memset(v, 0, sizeof *v);
	while (v->n < 8 && e2e_sumhist_next(m, &off, &left, &h)) {
		struct e2e_sumhist_range x;
		uint16_t rl = h.nranges;
		size_t ro = 0;

		v->number[v->n] = h.number;
		v->nranges[v->n] = h.nranges;
		if (e2e_sumhist_range_next(&h, &ro, &rl, &x)) {
			snprintf(v->topic0[v->n], sizeof v->topic0[0], "%.*s", (int)x.topic_len, x.topic);
			v->first0[v->n] = x.first;
			v->last0[v->n] = x.last;
		}
		v->n++;
	}
}

static void test_sender_repeats_last_six(void)
{
	struct e2e_summary *s = NULL;
	struct e2e_ctl m;
	struct seen v;

	CU_ASSERT_EQUAL_FATAL(e2e_summary_create(&s, 16, 1U << 16, 1024), E2E_OK);
	/* The first summary has no history. */
	add(s, "a", 1);
	build(s, 5, 1, &m);
	CU_ASSERT_EQUAL(m.nhist, 0);
	for (uint32_t n = 2; n <= 8; n++) {
		add(s, "a", n);
		if (n == 3) {
			add(s, "b", 1);
			add(s, "b", 2);
		}
		build(s, 5, n, &m);
		walk(&m, &v);
		/* Summary n repeats n-1 .. max(1, n-6), newest first. */
		CU_ASSERT_EQUAL(v.n, n - 1 < 6 ? n - 1 : 6);
		CU_ASSERT_EQUAL(v.number[0], n - 1);
		CU_ASSERT_STRING_EQUAL(v.topic0[0], "a");
		CU_ASSERT(v.first0[0] == n - 1 && v.last0[0] == n - 1);
	}
	/* Summary 9 of an interval with nothing sealed: 8..3, and 3 had two streams. */
	build(s, 5, 9, &m);
	walk(&m, &v);
	CU_ASSERT_EQUAL(v.n, 6);
	CU_ASSERT(v.number[0] == 8 && v.number[5] == 3);
	CU_ASSERT_EQUAL(v.nranges[5], 2);
	/* The empty interval 9 is history too: an empty record. */
	add(s, "a", 9);
	build(s, 5, 10, &m);
	walk(&m, &v);
	CU_ASSERT(v.number[0] == 9 && v.nranges[0] == 0);
	/* Another sender run: none of the old run's intervals. */
	build(s, 6, 1, &m);
	CU_ASSERT_EQUAL(m.nhist, 0);
	e2e_summary_destroy(s);
}

/* A sender fills one accumulator while the other is sent (libe2e's sender
 * does): with the rings swapped along, the history has every interval. */
static void test_double_buffered(void)
{
	struct e2e_summary *cur = NULL, *ready = NULL, *t;
	struct e2e_ctl m;
	struct seen v;

	CU_ASSERT_EQUAL_FATAL(e2e_summary_create(&cur, 16, 1U << 16, 1024), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_summary_create(&ready, 16, 1U << 16, 1024), E2E_OK);
	for (uint32_t n = 1; n <= 5; n++) {
		add(cur, "a", n);
		t = ready;
		ready = cur;
		cur = t;
		e2e_summary_hist_swap(ready, cur);
		build(ready, 5, n, &m);
	}
	walk(&m, &v);
	CU_ASSERT(v.n == 4 && v.number[0] == 4 && v.number[1] == 3 && v.number[2] == 2 &&
		v.number[3] == 1);
	e2e_summary_destroy(cur);
	e2e_summary_destroy(ready);
}

static void test_sender_byte_bound(void)
{
	static char big[2200];
	struct e2e_summary *s = NULL;
	struct e2e_ctl m;
	struct seen v;

	CU_ASSERT_EQUAL_FATAL(e2e_summary_create(&s, 16, 1U << 16, 1024), E2E_OK);
	add(s, "a", 1);
	build(s, 5, 1, &m);
	/* Interval 2: two streams of 2199-byte topics, together over 4096 bytes. */
	for (int i = 0; i < 2; i++) {
		memset(big, 'x', sizeof big - 1);
		big[0] = (char)('p' + i);
		add(s, big, 1);
	}
	build(s, 5, 2, &m);
	/* Interval 3: one such stream, on its own within the bound. */
	add(s, big, 2);
	build(s, 5, 3, &m);
	walk(&m, &v);
	/* 2 is left out whole (never cut); 1 still fits. */
	CU_ASSERT_EQUAL(v.n, 1);
	CU_ASSERT_EQUAL(v.number[0], 1);
	build(s, 5, 4, &m);
	walk(&m, &v);
	CU_ASSERT(v.n == 2 && v.number[0] == 3 && v.number[1] == 1);
	CU_ASSERT(m.hist_len + 1 <= E2E_SUMMARY_HIST_BYTES);
	e2e_summary_destroy(s);
}

struct log {
	struct e2e_sumcheck_report r[32];
	char topic[32][16];
	unsigned n;
};

static void on_report(void *ctx, const struct e2e_sumcheck_report *r)
{
	struct log *l = ctx;

	if (l->n == 32)
		return;
	l->r[l->n] = *r;
	snprintf(l->topic[l->n], sizeof l->topic[0], "%.*s", (int)r->topic_len,
		r->topic ? r->topic : "");
	l->n++;
}

static const struct e2e_sumcheck_report *find(const struct log *l, enum e2e_sumcheck_result res,
	const char *topic, uint32_t number)
{
	for (unsigned i = 0; i < l->n; i++)
		if (l->r[i].result == res && !strcmp(l->topic[i], topic) &&
		    (res != E2E_SUM_HIST_LOST || l->r[i].number == number))
			return &l->r[i];
	return NULL;
}

static unsigned count(const struct log *l, enum e2e_sumcheck_result res)
{
	unsigned k = 0;

	for (unsigned i = 0; i < l->n; i++)
		k += l->r[i].result == res;
	return k;
}

static void receive(struct e2e_sumcheck *sc, const char *topic, uint32_t seq, struct log *l)
{
	uint8_t env[64];
	size_t n = fake_env(env, topic, seq);

	e2e_sumcheck_record(sc, 1, 7, topic, strlen(topic), seq, env, n, 1, on_report, l);
}

/* Deliver summary @p m to the receiver as the client does. */
static void deliver(struct e2e_sumcheck *sc, const struct e2e_ctl *m, struct log *l,
	struct e2e_sumcheck_part *pi)
{
	CU_ASSERT_EQUAL(e2e_sumcheck_accept(sc, 1, m, pi), 0);
	CU_ASSERT_FATAL(pi->accepted);
	e2e_sumcheck_summary(sc, 1, m, pi->index, 1, NULL, on_report, l);
}

static int only_b(void *ctx, const char *topic, size_t len)
{
	(void)ctx;
	return len == 1 && topic[0] == 'b';
}

static void test_receiver_counts_lost(void)
{
	static struct log l;
	struct e2e_summary *s = NULL;
	struct e2e_sumcheck *sc = NULL;
	struct e2e_sumcheck_part pi;
	const struct e2e_sumcheck_report *r;
	struct e2e_ctl m;

	memset(&l, 0, sizeof l);
	CU_ASSERT_EQUAL_FATAL(e2e_summary_create(&s, 16, 1U << 16, 1024), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_sumcheck_create(&sc, NULL), E2E_OK);
	/* 1: a1, received with its summary. */
	add(s, "a", 1);
	receive(sc, "a", 1, &l);
	build(s, 9, 1, &m);
	deliver(sc, &m, &l, &pi);
	/* 2: a2 a3 b1 b2 sealed; only a3 arrives; summary 2 lost. */
	add(s, "a", 2);
	add(s, "a", 3);
	add(s, "b", 1);
	add(s, "b", 2);
	receive(sc, "a", 3, &l);
	build(s, 9, 2, &m);
	/* 3: a4 lost, its summary too. */
	add(s, "a", 4);
	build(s, 9, 3, &m);
	/* 4: a5 and its summary arrive: the history says what 2 and 3 held. */
	add(s, "a", 5);
	receive(sc, "a", 5, &l);
	build(s, 9, 4, &m);
	deliver(sc, &m, &l, &pi);
	CU_ASSERT(pi.gap_from == 2 && pi.gap_to == 3);
	r = find(&l, E2E_SUM_HIST_LOST, "a", 2);
	CU_ASSERT(r && r->first == 2 && r->last == 2 && r->missing == 1);
	r = find(&l, E2E_SUM_HIST_LOST, "b", 2);
	CU_ASSERT(r && r->first == 1 && r->last == 2 && r->missing == 2);
	r = find(&l, E2E_SUM_HIST_LOST, "a", 3);
	CU_ASSERT(r && r->first == 4 && r->last == 4 && r->missing == 1);
	CU_ASSERT_EQUAL(count(&l, E2E_SUM_HIST_LOST), 3);
	/* Never a forgery, never unsummarized for what the outage took. */
	CU_ASSERT_EQUAL(count(&l, E2E_SUM_FORGED), 0);
	CU_ASSERT_EQUAL(count(&l, E2E_SUM_UNSUMMARIZED), 0);
	/* 5: no gap, its history (4) is not counted again. */
	build(s, 9, 5, &m);
	deliver(sc, &m, &l, &pi);
	CU_ASSERT_EQUAL(count(&l, E2E_SUM_HIST_LOST), 3);
	CU_ASSERT_EQUAL(count(&l, E2E_SUM_UNSUMMARIZED), 0);
	e2e_sumcheck_destroy(sc);

	/* Only subscribed topics are counted (the match callback). */
	memset(&l, 0, sizeof l);
	CU_ASSERT_EQUAL_FATAL(e2e_sumcheck_create(&sc, NULL), E2E_OK);
	e2e_summary_reset(s);
	build(s, 10, 1, &m);
	CU_ASSERT_EQUAL(e2e_sumcheck_accept(sc, 1, &m, &pi), 0);
	e2e_sumcheck_summary(sc, 1, &m, pi.index, 1, only_b, on_report, &l);
	add(s, "a", 1);
	add(s, "b", 1);
	build(s, 10, 2, &m);
	build(s, 10, 3, &m);
	CU_ASSERT_EQUAL(e2e_sumcheck_accept(sc, 1, &m, &pi), 0);
	e2e_sumcheck_summary(sc, 1, &m, pi.index, 1, only_b, on_report, &l);
	CU_ASSERT_EQUAL(count(&l, E2E_SUM_HIST_LOST), 1);
	CU_ASSERT_PTR_NOT_NULL(find(&l, E2E_SUM_HIST_LOST, "b", 2));
	e2e_sumcheck_destroy(sc);
	e2e_summary_destroy(s);
}

static void test_outage_longer_than_history(void)
{
	static struct log l;
	struct e2e_summary *s = NULL;
	struct e2e_sumcheck *sc = NULL;
	struct e2e_sumcheck_part pi;
	struct e2e_ctl m;

	memset(&l, 0, sizeof l);
	CU_ASSERT_EQUAL_FATAL(e2e_summary_create(&s, 16, 1U << 16, 1024), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_sumcheck_create(&sc, NULL), E2E_OK);
	build(s, 9, 1, &m);
	deliver(sc, &m, &l, &pi);
	/* 2..9 lost (8 summaries, one seq each): 10 repeats only 9..4. */
	for (uint32_t n = 2; n <= 9; n++) {
		add(s, "a", n - 1);
		build(s, 9, n, &m);
	}
	build(s, 9, 10, &m);
	deliver(sc, &m, &l, &pi);
	CU_ASSERT(pi.gap_from == 2 && pi.gap_to == 9);
	CU_ASSERT_EQUAL(count(&l, E2E_SUM_HIST_LOST), 6);
	for (uint32_t n = 4; n <= 9; n++)
		CU_ASSERT_PTR_NOT_NULL(find(&l, E2E_SUM_HIST_LOST, "a", n));
	CU_ASSERT_PTR_NULL(find(&l, E2E_SUM_HIST_LOST, "a", 3));
	e2e_sumcheck_destroy(sc);
	e2e_summary_destroy(s);
}

static const struct tu_test tests[] = {
	{ "Sender: part 0 repeats the last 6 intervals, newest first", test_sender_repeats_last_six },
	{ "Sender: 4096-byte bound, records whole or left out", test_sender_byte_bound },
	{ "Sender: two accumulators, one history", test_double_buffered },
	{ "Receiver: lost summaries' ranges counted per stream", test_receiver_counts_lost },
	{ "Receiver: an outage longer than the history", test_outage_longer_than_history },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "summary history", tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
