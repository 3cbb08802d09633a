/*
 * Window tests: the RFC 6479 anti-replay / loss window of one stream.
 * Safety first, then the shared vectors (protocol/vectors/window.json), then
 * edge cases and a randomised comparison against a plain reference model
 * written straight from the spec.
 */
#include <stdlib.h>
#include <string.h>

#include "testcu.h"

#define W_SMALL 64U

struct win {
	struct e2e_window w;
	uint64_t *bits;
};

static int win_init(struct win *x, uint32_t size)
{
	x->bits = calloc(E2E_WINDOW_WORDS(size), sizeof *x->bits);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x->bits);
	return e2e_window_init(&x->w, x->bits, size);
}

static void win_free(struct win *x)
{
	free(x->bits);
	x->bits = NULL;
}

/* check, then update when the verdict delivers: what the receiver does. */
static enum e2e_verdict win_feed(struct e2e_window *w, uint64_t seq, uint64_t *gap)
{
	uint64_t g = 0;
	enum e2e_verdict v = e2e_window_check(w, seq, &g);

	if (v == E2E_V_OK || v == E2E_V_GAP || v == E2E_V_LATE)
		e2e_window_update(w, seq);
	if (gap)
		*gap = g;
	return v;
}

static void feed_range(struct e2e_window *w, uint64_t from, uint64_t to)
{
	for (uint64_t s = from; s <= to; s++) {
		enum e2e_verdict v = win_feed(w, s, NULL);

		TU_CHECK(v == E2E_V_OK, "seq %llu: %s", (unsigned long long)s, tu_verdict_str(v));
	}
}

static void assert_losses(const struct e2e_window *w, uint64_t pending, uint64_t lost)
{
	uint64_t p = 99, l = 99;

	e2e_window_losses(w, &p, &l);
	TU_CHECK(p == pending && l == lost, "losses pending=%llu lost=%llu, expected %llu/%llu",
		(unsigned long long)p, (unsigned long long)l,
		(unsigned long long)pending, (unsigned long long)lost);
}

/* ---- Safety ------------------------------------------------------------ */

static void test_safety_init_args(void)
{
	uint64_t bits[E2E_WINDOW_WORDS(W_SMALL)];
	struct e2e_window w;

	CU_ASSERT_EQUAL(e2e_window_init(NULL, bits, W_SMALL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_window_init(&w, NULL, W_SMALL), E2E_ERR_ARG);
	memset(bits, 0xff, sizeof bits);
	CU_ASSERT_EQUAL(e2e_window_init(&w, bits, W_SMALL), E2E_OK);
	/* init zeroes the caller's bitmap and the counters. */
	for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
		CU_ASSERT_EQUAL(bits[i], 0);
	CU_ASSERT_EQUAL(w.top, 0);
	CU_ASSERT_EQUAL(w.base, 0);
	CU_ASSERT_EQUAL(w.received, 0);
	CU_ASSERT_EQUAL(w.size, W_SMALL);
}

static void test_safety_init_sizes(void)
{
	static const uint32_t bad[] = { 0, 1, 32, 63, 65, 96, 100, 1000,
		E2E_WINDOW_MAX + 64U, E2E_WINDOW_MAX * 2U, 0xFFFFFFC0U, 0xFFFFFFFFU };
	static const uint32_t good[] = { 64, 128, 192, 1024, 4096, E2E_WINDOW_MAX };
	uint64_t bits[4];
	struct e2e_window w;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		/* Rejected before the (too small) bitmap could be touched. */
		TU_CHECK(e2e_window_init(&w, bits, bad[i]) == E2E_ERR_ARG,
			"window size %u accepted", bad[i]);
	}
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		struct win x;

		TU_CHECK(win_init(&x, good[i]) == E2E_OK, "window size %u refused", good[i]);
		win_free(&x);
	}
}

static void test_safety_empty_losses(void)
{
	struct win x;

	CU_ASSERT_EQUAL_FATAL(win_init(&x, W_SMALL), E2E_OK);
	assert_losses(&x.w, 0, 0);
	win_free(&x);
}

/* ---- Vectors ----------------------------------------------------------- */

/*
 * One sequence of window.json: a window size, the arrivals (each assumed
 * authentic), the expected verdict and gap per arrival and the final state.
 */
static void run_window_case(const json_t *c)
{
	static const char *const fields[5] = { "top", "base", "received", "pending", "lost" };
	const json_t *arr = json_object_get(c, "arrivals");
	const json_t *verdicts = json_object_get(c, "verdicts");
	const json_t *gaps = json_object_get(c, "gaps");
	const json_t *fin = json_object_get(c, "final");
	const char *name = tu_jstr(c, "name");
	uint64_t size = 0, want, got[5];
	struct win x;
	size_t i;
	json_t *a;

	if (!name || tu_juint(c, "window", &size) || !json_is_array(arr) ||
	    json_array_size(verdicts) != json_array_size(arr) ||
	    json_array_size(gaps) != json_array_size(arr) || !json_is_object(fin)) {
		TU_CHECK(0, "window sequence %s incomplete", name ? name : "?");
		return;
	}
	if (win_init(&x, (uint32_t)size) != E2E_OK) {
		TU_CHECK(0, "%s: window size %llu refused", name, (unsigned long long)size);
		win_free(&x);
		return;
	}
	json_array_foreach(arr, i, a) {
		uint64_t seq = 0, gap_want = 0, gap = 0;
		enum e2e_verdict want_v = E2E_V_OK, v;
		const char *vname = json_string_value(json_array_get(verdicts, i));

		if (tu_juint_value(a, &seq) || tu_juint_value(json_array_get(gaps, i), &gap_want) ||
		    tu_verdict_parse(vname, &want_v)) {
			TU_CHECK(0, "%s: arrival %zu unreadable", name, i);
			break;
		}
		v = win_feed(&x.w, seq, &gap);
		TU_CHECK(v == want_v && gap == gap_want,
			"%s: arrival %zu seq %llu: %s gap %llu, expected %s gap %llu", name, i,
			(unsigned long long)seq, tu_verdict_str(v), (unsigned long long)gap,
			vname, (unsigned long long)gap_want);
	}
	got[0] = x.w.top;
	got[1] = x.w.base;
	got[2] = x.w.received;
	e2e_window_losses(&x.w, &got[3], &got[4]);
	for (i = 0; i < 5; i++) {
		if (tu_juint(fin, fields[i], &want))
			continue;
		TU_CHECK(got[i] == want, "%s: final %s %llu, expected %llu", name,
			fields[i], (unsigned long long)got[i], (unsigned long long)want);
	}
	win_free(&x);
}

static void test_vectors(void)
{
	tu_each_vector("window.json", "sequences", run_window_case);
}

/* ---- Edge cases -------------------------------------------------------- */

static void test_first_and_in_order(void)
{
	struct win x;
	uint64_t gap = 7;

	CU_ASSERT_EQUAL_FATAL(win_init(&x, W_SMALL), E2E_OK);
	/* The first message of a stream is OK whatever its number. */
	TU_ASSERT_VERDICT(win_feed(&x.w, 500, &gap), E2E_V_OK);
	CU_ASSERT_EQUAL(gap, 0);
	CU_ASSERT_EQUAL(x.w.top, 500);
	CU_ASSERT_EQUAL(x.w.base, 500);
	CU_ASSERT_EQUAL(x.w.received, 1);
	feed_range(&x.w, 501, 700);
	CU_ASSERT_EQUAL(x.w.top, 700);
	CU_ASSERT_EQUAL(x.w.received, 201);
	assert_losses(&x.w, 0, 0);
	win_free(&x);
}

static void test_gap_then_late(void)
{
	struct win x;
	uint64_t gap = 0;

	CU_ASSERT_EQUAL_FATAL(win_init(&x, W_SMALL), E2E_OK);
	feed_range(&x.w, 1, 3);
	TU_ASSERT_VERDICT(win_feed(&x.w, 7, &gap), E2E_V_GAP);
	CU_ASSERT_EQUAL(gap, 3);
	assert_losses(&x.w, 3, 0);
	TU_ASSERT_VERDICT(win_feed(&x.w, 5, &gap), E2E_V_LATE);
	CU_ASSERT_EQUAL(gap, 0);
	assert_losses(&x.w, 2, 0);
	TU_ASSERT_VERDICT(win_feed(&x.w, 5, NULL), E2E_V_DUPLICATE);
	TU_ASSERT_VERDICT(win_feed(&x.w, 4, NULL), E2E_V_LATE);
	TU_ASSERT_VERDICT(win_feed(&x.w, 6, NULL), E2E_V_LATE);
	/* A clean run with reordering ends with no loss at all. */
	assert_losses(&x.w, 0, 0);
	CU_ASSERT_EQUAL(x.w.top, 7);
	CU_ASSERT_EQUAL(x.w.received, 7);
	win_free(&x);
}

static void edge_of_window(uint32_t size)
{
	struct win x;
	uint64_t top = 5000;

	CU_ASSERT_EQUAL_FATAL(win_init(&x, size), E2E_OK);
	TU_ASSERT_VERDICT(win_feed(&x.w, 1, NULL), E2E_V_OK);
	TU_ASSERT_VERDICT(win_feed(&x.w, top, NULL), E2E_V_GAP);
	/* top - seq == W: just behind the window. */
	TU_CHECK(e2e_window_check(&x.w, top - size, NULL) == E2E_V_TOO_OLD,
		"W=%u: exactly W back is not TOO_OLD", size);
	TU_CHECK(e2e_window_check(&x.w, top - size - 1, NULL) == E2E_V_TOO_OLD,
		"W=%u: W+1 back is not TOO_OLD", size);
	TU_CHECK(e2e_window_check(&x.w, 1, NULL) == E2E_V_TOO_OLD,
		"W=%u: accepted seq far behind is not TOO_OLD", size);
	/* top - seq == W - 1: the oldest slot still inside. */
	TU_CHECK(e2e_window_check(&x.w, top - size + 1, NULL) == E2E_V_LATE,
		"W=%u: W-1 back is not LATE", size);
	e2e_window_update(&x.w, top - size + 1);
	TU_CHECK(e2e_window_check(&x.w, top - size + 1, NULL) == E2E_V_DUPLICATE,
		"W=%u: W-1 back accepted twice", size);
	/* Moving the top by one pushes that slot out. */
	TU_ASSERT_VERDICT(win_feed(&x.w, top + 1, NULL), E2E_V_OK);
	TU_CHECK(e2e_window_check(&x.w, top - size + 1, NULL) == E2E_V_TOO_OLD,
		"W=%u: slot did not leave the window", size);
	win_free(&x);
}

static void test_exactly_w_back(void)
{
	edge_of_window(64);
	edge_of_window(128);
	edge_of_window(E2E_WINDOW_DEFAULT);
}

static void test_late_before_base(void)
{
	struct win x;

	CU_ASSERT_EQUAL_FATAL(win_init(&x, W_SMALL), E2E_OK);
	TU_ASSERT_VERDICT(win_feed(&x.w, 10, NULL), E2E_V_OK);
	TU_ASSERT_VERDICT(win_feed(&x.w, 5, NULL), E2E_V_LATE);
	CU_ASSERT_EQUAL(x.w.base, 5);
	CU_ASSERT_EQUAL(x.w.top, 10);
	CU_ASSERT_EQUAL(x.w.received, 2);
	assert_losses(&x.w, 4, 0);
	win_free(&x);
}

/* Old bits that alias the new positions after a jump must read as unseen. */
static void test_jump_clears_aliases(void)
{
	struct win x;
	const uint64_t ring = W_SMALL + 64U; /* bits in the bitmap */

	CU_ASSERT_EQUAL_FATAL(win_init(&x, W_SMALL), E2E_OK);
	feed_range(&x.w, 1, ring);           /* every bit set once */
	TU_ASSERT_VERDICT(win_feed(&x.w, ring + W_SMALL + 1, NULL), E2E_V_GAP);
	for (uint64_t s = ring + 2; s <= ring + W_SMALL; s++) {
		enum e2e_verdict v = e2e_window_check(&x.w, s, NULL);

		TU_CHECK(v == E2E_V_LATE, "seq %llu after jump: %s", (unsigned long long)s,
			tu_verdict_str(v));
	}
	win_free(&x);

	/* A jump of exactly one ring lands on the same bit index. */
	CU_ASSERT_EQUAL_FATAL(win_init(&x, W_SMALL), E2E_OK);
	feed_range(&x.w, 1, 10);
	TU_ASSERT_VERDICT(win_feed(&x.w, 10 + ring, NULL), E2E_V_GAP);
	for (uint64_t s = 1 + ring; s < 10 + ring; s++)
		TU_CHECK(e2e_window_check(&x.w, s, NULL) == E2E_V_LATE,
			"aliased seq %llu not LATE", (unsigned long long)s);
	TU_ASSERT_VERDICT(e2e_window_check(&x.w, 10 + ring, NULL), E2E_V_DUPLICATE);
	win_free(&x);
}

static void test_huge_jumps(void)
{
	struct win x;
	uint64_t gap = 0, top = 1ULL << 40;

	CU_ASSERT_EQUAL_FATAL(win_init(&x, E2E_WINDOW_DEFAULT), E2E_OK);
	feed_range(&x.w, 1, 5);
	TU_ASSERT_VERDICT(win_feed(&x.w, top, &gap), E2E_V_GAP);
	CU_ASSERT_EQUAL(gap, top - 6);
	CU_ASSERT_EQUAL(x.w.top, top);
	CU_ASSERT_EQUAL(x.w.base, 1);
	CU_ASSERT_EQUAL(x.w.received, 6);
	/* The whole window but the top is pending; the rest is lost. */
	assert_losses(&x.w, E2E_WINDOW_DEFAULT - 1, top - 6 - (E2E_WINDOW_DEFAULT - 1));
	TU_ASSERT_VERDICT(e2e_window_check(&x.w, 5, NULL), E2E_V_TOO_OLD);
	TU_ASSERT_VERDICT(e2e_window_check(&x.w, top - 1, NULL), E2E_V_LATE);
	TU_ASSERT_VERDICT(e2e_window_check(&x.w, top, NULL), E2E_V_DUPLICATE);
	TU_ASSERT_VERDICT(win_feed(&x.w, top + 1, NULL), E2E_V_OK);
	win_free(&x);
}

static void test_seq_near_2_32(void)
{
	struct win x;
	const uint64_t s32 = 1ULL << 32;
	uint64_t gap = 0;

	CU_ASSERT_EQUAL_FATAL(win_init(&x, W_SMALL), E2E_OK);
	feed_range(&x.w, s32 - 3, s32 + 2);
	CU_ASSERT_EQUAL(x.w.top, s32 + 2);
	TU_ASSERT_VERDICT(e2e_window_check(&x.w, s32 - 1, NULL), E2E_V_DUPLICATE);
	TU_ASSERT_VERDICT(win_feed(&x.w, s32 + 10, &gap), E2E_V_GAP);
	CU_ASSERT_EQUAL(gap, 7);
	TU_ASSERT_VERDICT(win_feed(&x.w, s32 + 5, NULL), E2E_V_LATE);
	assert_losses(&x.w, 6, 0);
	/* The largest 32-bit value on the wire is an ordinary number. */
	TU_ASSERT_VERDICT(e2e_window_check(&x.w, 0xFFFFFFFFULL, NULL), E2E_V_DUPLICATE);
	win_free(&x);
}

static void test_seq_near_2_63(void)
{
	struct win x;
	const uint64_t s63 = 1ULL << 63;
	uint64_t gap = 0;

	CU_ASSERT_EQUAL_FATAL(win_init(&x, W_SMALL), E2E_OK);
	TU_ASSERT_VERDICT(win_feed(&x.w, 2, NULL), E2E_V_OK);
	TU_ASSERT_VERDICT(win_feed(&x.w, s63 - 2, &gap), E2E_V_GAP);
	CU_ASSERT_EQUAL(gap, s63 - 5);
	feed_range(&x.w, s63 - 1, s63 + 3);
	CU_ASSERT_EQUAL(x.w.top, s63 + 3);
	CU_ASSERT_EQUAL(x.w.base, 2);
	CU_ASSERT_EQUAL(x.w.received, 7);
	TU_ASSERT_VERDICT(e2e_window_check(&x.w, s63, NULL), E2E_V_DUPLICATE);
	TU_ASSERT_VERDICT(e2e_window_check(&x.w, s63 - 3, NULL), E2E_V_LATE);
	TU_ASSERT_VERDICT(e2e_window_check(&x.w, s63 + 3 - W_SMALL, NULL), E2E_V_TOO_OLD);
	TU_ASSERT_VERDICT(e2e_window_check(&x.w, 2, NULL), E2E_V_TOO_OLD);
	assert_losses(&x.w, W_SMALL - 6, s63 + 3 - 2 + 1 - 7 - (W_SMALL - 6));
	win_free(&x);
}

static int same_state(const struct win *a, const struct e2e_window *snap, const uint64_t *bits)
{
	return a->w.top == snap->top && a->w.base == snap->base &&
		a->w.received == snap->received && a->w.size == snap->size &&
		a->w.bits == snap->bits &&
		!memcmp(a->bits, bits, E2E_WINDOW_WORDS(snap->size) * sizeof *bits);
}

static void test_check_does_not_mutate(void)
{
	struct win x;
	uint64_t snap_bits[E2E_WINDOW_WORDS(W_SMALL)];
	struct e2e_window snap;
	unsigned seen[E2E_V_FORGOTTEN + 1] = { 0 };

	CU_ASSERT_EQUAL_FATAL(win_init(&x, W_SMALL), E2E_OK);
	feed_range(&x.w, 100, 120);
	TU_ASSERT_VERDICT(win_feed(&x.w, 150, NULL), E2E_V_GAP);
	snap = x.w;
	memcpy(snap_bits, x.bits, sizeof snap_bits);
	/* Every class of answer: TOO_OLD, LATE, DUPLICATE, OK, GAP. */
	for (uint64_t s = 1; s <= 400; s++) {
		enum e2e_verdict v = e2e_window_check(&x.w, s, NULL);

		seen[v]++;
		TU_CHECK(same_state(&x, &snap, snap_bits), "check(%llu) changed the window",
			(unsigned long long)s);
	}
	CU_ASSERT(seen[E2E_V_TOO_OLD] > 0);
	CU_ASSERT(seen[E2E_V_LATE] > 0);
	CU_ASSERT(seen[E2E_V_DUPLICATE] > 0);
	CU_ASSERT_EQUAL(seen[E2E_V_OK], 1);
	CU_ASSERT(seen[E2E_V_GAP] > 0);
	win_free(&x);
}

static void test_duplicate_never_moves(void)
{
	struct win x;
	uint64_t snap_bits[E2E_WINDOW_WORDS(W_SMALL)];
	struct e2e_window snap;

	CU_ASSERT_EQUAL_FATAL(win_init(&x, W_SMALL), E2E_OK);
	feed_range(&x.w, 1, 10);
	TU_ASSERT_VERDICT(win_feed(&x.w, 40, NULL), E2E_V_GAP);
	snap = x.w;
	memcpy(snap_bits, x.bits, sizeof snap_bits);
	for (int round = 0; round < 3; round++) {
		for (uint64_t s = 1; s <= 10; s++)
			TU_ASSERT_VERDICT(win_feed(&x.w, s, NULL), E2E_V_DUPLICATE);
		TU_ASSERT_VERDICT(win_feed(&x.w, 40, NULL), E2E_V_DUPLICATE);
	}
	CU_ASSERT(same_state(&x, &snap, snap_bits));
	assert_losses(&x.w, 29, 0);
	win_free(&x);
}

/* Reference model: the spec's rules over an explicit set of seen numbers. */
#define MODEL_SEQS 6000U

struct model {
	uint8_t seen[MODEL_SEQS + 1];
	uint64_t top, base, received;
	uint32_t size;
};

static enum e2e_verdict model_check(const struct model *m, uint64_t seq, uint64_t *gap)
{
	*gap = 0;
	if (m->top == 0 || seq == m->top + 1)
		return E2E_V_OK;
	if (seq > m->top) {
		*gap = seq - m->top - 1;
		return E2E_V_GAP;
	}
	if (m->top - seq >= m->size)
		return E2E_V_TOO_OLD;
	return m->seen[seq] ? E2E_V_DUPLICATE : E2E_V_LATE;
}

static void model_update(struct model *m, uint64_t seq)
{
	if (m->top == 0 || seq < m->base)
		m->base = seq;
	if (seq > m->top)
		m->top = seq;
	m->seen[seq] = 1;
	m->received++;
}

static void model_losses(const struct model *m, uint64_t *pending, uint64_t *lost)
{
	uint64_t lo;

	*pending = *lost = 0;
	if (m->top == 0)
		return;
	lo = m->top >= m->size && m->top - m->size + 1 > m->base ? m->top - m->size + 1 : m->base;
	for (uint64_t s = lo; s <= m->top; s++)
		*pending += !m->seen[s];
	*lost = m->top - m->base + 1 - m->received - *pending;
}

/*
 * Sequence shapes: 0 mostly forward with reordering, duplicates and jumps;
 * 1 adversarial: replays from anywhere in [1, cursor], seqs exactly at and
 * around the window edges (top - W, top - W + 1) and bursts of reordering.
 */
static uint64_t next_seq(int shape, uint32_t size, uint64_t *cursor, uint64_t r,
	const struct model *m)
{
	uint64_t seq;

	if (shape == 0) {
		if (r % 50 == 0)
			*cursor += 1 + (r >> 8) % (3 * size);
		else if (r % 3 == 0)
			*cursor += 1;
		seq = *cursor + (r >> 20) % 8;
		return seq > (r >> 40) % (size + 40) ? seq - (r >> 40) % (size + 40) : 1;
	}
	switch (r % 32) {
	case 0: case 1: case 2: case 3:           /* replay of anything seen so far */
		return 1 + (r >> 8) % *cursor;
	case 4: case 5:                           /* the window edges */
		seq = m->top + 2 > size ? m->top + 2 - size : 1;
		return seq > (r >> 8) % 3 ? seq - (r >> 8) % 3 : 1;
	case 6:                                   /* a jump of about W */
		*cursor += size - 2 + (r >> 8) % 5;
		return *cursor;
	default:                                  /* in order, locally reordered */
		*cursor += 1;
		return *cursor + (r >> 8) % 4;
	}
}

static void compare_with_model(uint32_t size, uint64_t rng, int shape)
{
	struct model *m = calloc(1, sizeof *m);
	uint64_t cursor = 1 + tu_rand(&rng) % 50;
	unsigned mismatches = 0;
	struct win x;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	m->size = size;
	CU_ASSERT_EQUAL_FATAL(win_init(&x, size), E2E_OK);
	for (unsigned i = 0; i < 8000 && mismatches < 5; i++) {
		uint64_t r = tu_rand(&rng), seq, g1 = 0, g2 = 0, p1, l1, p2, l2;
		enum e2e_verdict v1, v2;

		seq = next_seq(shape, size, &cursor, r, m);
		if (seq > MODEL_SEQS || cursor > MODEL_SEQS)
			break;
		v1 = e2e_window_check(&x.w, seq, &g1);
		v2 = model_check(m, seq, &g2);
		if (v1 == E2E_V_OK || v1 == E2E_V_GAP || v1 == E2E_V_LATE)
			e2e_window_update(&x.w, seq);
		if (v2 == E2E_V_OK || v2 == E2E_V_GAP || v2 == E2E_V_LATE)
			model_update(m, seq);
		e2e_window_losses(&x.w, &p1, &l1);
		model_losses(m, &p2, &l2);
		if (v1 != v2 || g1 != g2 || x.w.top != m->top || x.w.base != m->base ||
		    x.w.received != m->received || p1 != p2 || l1 != l2) {
			mismatches++;
			TU_CHECK(0, "W=%u step %u seq %llu: got %s gap %llu top %llu base %llu "
				"recv %llu pend %llu lost %llu; model %s gap %llu top %llu base %llu "
				"recv %llu pend %llu lost %llu", size, i, (unsigned long long)seq,
				tu_verdict_str(v1), (unsigned long long)g1,
				(unsigned long long)x.w.top, (unsigned long long)x.w.base,
				(unsigned long long)x.w.received, (unsigned long long)p1,
				(unsigned long long)l1, tu_verdict_str(v2), (unsigned long long)g2,
				(unsigned long long)m->top, (unsigned long long)m->base,
				(unsigned long long)m->received, (unsigned long long)p2,
				(unsigned long long)l2);
		}
	}
	CU_ASSERT(m->received > 100);
	win_free(&x);
	free(m);
}

static void test_random_vs_model(void)
{
	compare_with_model(64, 1, 0);
	compare_with_model(128, 2, 0);
	compare_with_model(256, 3, 0);
	compare_with_model(1024, 4, 0);
}

static void test_adversarial_vs_model(void)
{
	for (uint64_t seed = 11; seed < 19; seed++) {
		compare_with_model(64, seed, 1);
		compare_with_model(128, seed * 7, 1);
	}
	compare_with_model(256, 5, 1);
}

static void test_verdict_names(void)
{
	for (int v = E2E_V_OK; v <= E2E_V_FORGOTTEN; v++) {
		const char *n = e2e_verdict_name((enum e2e_verdict)v);
		int delivers = v == E2E_V_OK || v == E2E_V_GAP || v == E2E_V_LATE;

		TU_CHECK(n && !strcmp(n, tu_verdict_str((enum e2e_verdict)v)),
			"verdict %d named \"%s\"", v, n ? n : "(null)");
		TU_CHECK(!!e2e_verdict_delivers((enum e2e_verdict)v) == delivers,
			"verdict %s delivers=%d", tu_verdict_str((enum e2e_verdict)v),
			e2e_verdict_delivers((enum e2e_verdict)v));
	}
	CU_ASSERT_PTR_NOT_NULL(e2e_verdict_name((enum e2e_verdict)99));
}

static const struct tu_test safety_tests[] = {
	{ "Safety: NULL arguments to init, bitmap zeroed", test_safety_init_args },
	{ "Safety: init rejects sizes not a multiple of 64 or out of [64, 2^20]", test_safety_init_sizes },
	{ "Safety: losses of an empty window", test_safety_empty_losses },
	{ NULL, NULL },
};

static const struct tu_test vector_tests[] = {
	{ "Vectors: window.json sequences", test_vectors },
	{ NULL, NULL },
};

static const struct tu_test edge_tests[] = {
	{ "Window: first message and in-order run", test_first_and_in_order },
	{ "Window: gap then late arrivals fill the holes", test_gap_then_late },
	{ "Window: exactly W back is TOO_OLD, W-1 back is LATE", test_exactly_w_back },
	{ "Window: late arrival before the first one lowers base", test_late_before_base },
	{ "Window: a jump clears bits that alias new positions", test_jump_clears_aliases },
	{ "Window: huge jump", test_huge_jumps },
	{ "Window: sequence numbers around 2^32", test_seq_near_2_32 },
	{ "Window: sequence numbers around 2^63", test_seq_near_2_63 },
	{ "Window: check() does not mutate", test_check_does_not_mutate },
	{ "Window: duplicates never move the state", test_duplicate_never_moves },
	{ "Window: randomised sequences match the spec model", test_random_vs_model },
	{ "Window: adversarial sequences (replays, window edges, W jumps) match the model",
	  test_adversarial_vs_model },
	{ "Window: verdict names and delivery", test_verdict_names },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "window safety", safety_tests },
		{ "window vectors", vector_tests },
		{ "window edges", edge_tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
