/*
 * Adversary proofs at unit level (issue #7):
 *
 *  - WireGuard's counter-window self-test (linux drivers/net/wireguard/
 *    selftest/counter.c, ported 1:1 in wireguard-go replay/replay_test.go),
 *    re-derived for our window: WireGuard accepts a counter up to
 *    windowSize behind the newest, we accept up to W - 1 behind (exactly W
 *    back is TOO_OLD, SPEC 5.3), so windowSize = W - 1 and T_LIM = W. Their
 *    counters start at 0, our seqs at 1 (0 is MALFORMED), so every counter n
 *    is our seq n + 1. Their REJECT_AFTER_MESSAGES cases become the top of
 *    our u32 seq field (seqs above it cannot be encoded).
 *  - A forged envelope leaves the receiver state bit for bit unchanged:
 *    e2e_rx_save before and after every forgery gives the same file.
 */
#include <stdlib.h>
#include <string.h>

#include "testcu.h"

#define RUN_A 0x0A0A0A0AU

/* One WireGuard T(n, expected) on our window: accepted = delivered. */
struct wg {
	struct e2e_window w;
	uint64_t *bits;
	uint32_t size;
	unsigned n;             /* case number, as in counter.c */
	const char *bulk;
};

static void wg_init(struct wg *t, uint32_t size, const char *bulk)
{
	free(t->bits);
	t->bits = calloc(E2E_WINDOW_WORDS(size), sizeof *t->bits);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t->bits);
	CU_ASSERT_EQUAL_FATAL(e2e_window_init(&t->w, t->bits, size), E2E_OK);
	t->size = size;
	t->n = 0;
	t->bulk = bulk;
}

/* T(counter, expected): counter is WireGuard's (0-based), seq = counter + 1. */
static void T(struct wg *t, uint64_t counter, int expected)
{
	uint64_t seq = counter + 1, gap = 0;
	enum e2e_verdict v = e2e_window_check(&t->w, seq, &gap);
	int accepted = v == E2E_V_OK || v == E2E_V_GAP || v == E2E_V_LATE;

	t->n++;
	if (accepted)
		e2e_window_update(&t->w, seq);
	TU_CHECK(accepted == expected && (accepted || v == E2E_V_DUPLICATE || v == E2E_V_TOO_OLD),
		"W=%u %s case %u: seq %llu %s, expected %s", t->size, t->bulk, t->n,
		(unsigned long long)seq, tu_verdict_str(v), expected ? "accepted" : "rejected");
}

static void wg_counter_cases(uint32_t size)
{
	struct wg t = { 0 };
	const uint64_t T_LIM = size;            /* windowSize + 1 */
	const uint64_t top = 0xFFFFFFFFULL - 1; /* counter of the largest seq, 2^32 - 1 */

	wg_init(&t, size, "sequence");
	T(&t, 0, 1);                            /*  1 */
	T(&t, 1, 1);                            /*  2 */
	T(&t, 1, 0);                            /*  3 */
	T(&t, 9, 1);                            /*  4 */
	T(&t, 8, 1);                            /*  5 */
	T(&t, 7, 1);                            /*  6 */
	T(&t, 7, 0);                            /*  7 */
	T(&t, T_LIM, 1);                        /*  8 */
	T(&t, T_LIM - 1, 1);                    /*  9 */
	T(&t, T_LIM - 1, 0);                    /* 10 */
	T(&t, T_LIM - 2, 1);                    /* 11 */
	T(&t, 2, 1);                            /* 12 */
	T(&t, 2, 0);                            /* 13 */
	T(&t, T_LIM + 16, 1);                   /* 14 */
	T(&t, 3, 0);                            /* 15 */
	T(&t, T_LIM + 16, 0);                   /* 16 */
	T(&t, T_LIM * 4, 1);                    /* 17 */
	T(&t, T_LIM * 4 - (T_LIM - 1), 1);      /* 18 */
	T(&t, 10, 0);                           /* 19 */
	T(&t, T_LIM * 4 - T_LIM, 0);            /* 20 */
	T(&t, T_LIM * 4 - (T_LIM + 1), 0);      /* 21 */
	T(&t, T_LIM * 4 - (T_LIM - 2), 1);      /* 22 */
	T(&t, T_LIM * 4 + 1 - T_LIM, 0);        /* 23 */
	T(&t, 0, 0);                            /* 24 */
	/* 25-34: WireGuard's counter ceiling. Counters >= the ceiling (25, 27,
	 * 30, 31) cannot be encoded in our u32 seq; the others, at the top of it: */
	t.n = 25;
	T(&t, top, 1);                          /* 26 */
	t.n++;
	T(&t, top, 0);                          /* 28 */
	T(&t, top - 1, 1);                      /* 29 */
	t.n += 2;
	T(&t, top - 1, 0);                      /* 32 */
	T(&t, top - 2, 1);                      /* 33 */
	T(&t, 0, 0);                            /* 34 */

	/* Bulk tests 1-6, windowSize = W - 1. */
	wg_init(&t, size, "bulk 1");
	for (uint64_t i = 1; i <= T_LIM - 1; i++)
		T(&t, i, 1);
	T(&t, 0, 1);
	T(&t, 0, 0);

	wg_init(&t, size, "bulk 2");
	for (uint64_t i = 2; i <= T_LIM; i++)
		T(&t, i, 1);
	T(&t, 1, 1);
	T(&t, 0, 0);

	wg_init(&t, size, "bulk 3");
	for (uint64_t i = T_LIM; i > 0; i--)
		T(&t, i, 1);

	wg_init(&t, size, "bulk 4");
	for (uint64_t i = T_LIM + 1; i > 1; i--)
		T(&t, i, 1);
	T(&t, 0, 0);

	wg_init(&t, size, "bulk 5");
	for (uint64_t i = T_LIM - 1; i > 0; i--)
		T(&t, i, 1);
	T(&t, T_LIM, 1);
	T(&t, 0, 0);

	wg_init(&t, size, "bulk 6");
	for (uint64_t i = T_LIM - 1; i > 0; i--)
		T(&t, i, 1);
	T(&t, 0, 1);
	T(&t, T_LIM, 1);
	free(t.bits);
}

static void test_wg_counter_w64(void)
{
	wg_counter_cases(64);
}

static void test_wg_counter_default(void)
{
	wg_counter_cases(E2E_WINDOW_DEFAULT);
}

static void test_wg_counter_w8192(void)
{
	/* WireGuard's own COUNTER_BITS_TOTAL. */
	wg_counter_cases(8192);
}

/* ---- Forgeries leave the receiver state unchanged ------------------------ */

static uint8_t *saved(struct tu_fx *f, struct tu_tmp *t, size_t *len)
{
	uint8_t *b;

	CU_ASSERT_EQUAL_FATAL(e2e_rx_save(f->rx, t->path), E2E_OK);
	b = tu_read_file(t->path, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	return b;
}

/* Open a forgery; the state file written afterwards must equal @p before. */
static void forged_is_inert(struct tu_fx *f, struct tu_tmp *t, const uint8_t *before,
	size_t before_len, const char *topic, const uint8_t *env, size_t len, const char *what)
{
	struct e2e_rx_result res;
	enum e2e_verdict v = tu_fx_open(f, topic, env, len, &res);
	size_t after_len = 0;
	uint8_t *after;

	TU_CHECK(!e2e_verdict_delivers(v), "%s: %s delivered", what, tu_verdict_str(v));
	after = saved(f, t, &after_len);
	TU_CHECK(after_len == before_len && memcmp(after, before, before_len) == 0,
		"%s (%s): receiver state changed", what, tu_verdict_str(v));
	free(after);
}

static void test_forgery_state_unchanged(void)
{
	struct tu_fx f;
	struct tu_tmp t;
	uint8_t env[TU_ENV_CAP], bad[TU_ENV_CAP], other[TU_ENV_CAP], *before;
	size_t len, olen, blen = 0;
	struct e2e_rx_result res;
	unsigned cases = 0;

	tu_fx_init(&f, 8, 64);
	tu_tmp_open(&t, "rxstate");
	/* A stream with history: 1..10, a hole at 11..12, then 13, 15 (14 pending). */
	tu_fx_recv_range(&f, "s/a", RUN_A, 1, 10);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "s/a", RUN_A, 13, &res), E2E_V_GAP);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "s/a", RUN_A, 15, &res), E2E_V_GAP);
	tu_fx_recv_range(&f, "s/b", RUN_A, 1, 3);
	before = saved(&f, &t, &blen);

	/* Every single-bit flip of an envelope whose seq (11, a pending hole) was
	 * never accepted: no flip may open, move top, or mark a seq as seen. */
	len = tu_fx_env(&f, env, "s/a", RUN_A, 11);
	for (size_t byte = 0; byte < len; byte++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			char what[64];

			memcpy(bad, env, len);
			bad[byte] ^= (uint8_t)(1U << bit);
			snprintf(what, sizeof what, "flip byte %zu bit %u", byte, bit);
			forged_is_inert(&f, &t, before, blen, "s/a", bad, len, what);
			cases++;
		}
	}
	/* Every truncation, and an extension. */
	for (size_t cut = 0; cut < len; cut++, cases++)
		forged_is_inert(&f, &t, before, blen, "s/a", env, cut, "truncated");
	memcpy(bad, env, len);
	bad[len] = 0;
	forged_is_inert(&f, &t, before, blen, "s/a", bad, len + 1, "extended");
	/* Re-topic: on a stream that exists, on a new one, case and level variants. */
	forged_is_inert(&f, &t, before, blen, "s/b", env, len, "re-topic to s/b");
	forged_is_inert(&f, &t, before, blen, "s/c", env, len, "re-topic to a new topic");
	forged_is_inert(&f, &t, before, blen, "S/A", env, len, "re-topic, case");
	forged_is_inert(&f, &t, before, blen, "s/a/", env, len, "re-topic, extra level");
	/* Splice: header of seq 11 on the body of seq 14 and the reverse. */
	olen = tu_fx_env(&f, other, "s/a", RUN_A, 14);
	memcpy(bad, env, E2E_HEADER_BYTES);
	memcpy(bad + E2E_HEADER_BYTES, other + E2E_HEADER_BYTES, olen - E2E_HEADER_BYTES);
	forged_is_inert(&f, &t, before, blen, "s/a", bad, olen, "splice 11|14");
	memcpy(bad, other, E2E_HEADER_BYTES);
	memcpy(bad + E2E_HEADER_BYTES, env + E2E_HEADER_BYTES, len - E2E_HEADER_BYTES);
	forged_is_inert(&f, &t, before, blen, "s/a", bad, len, "splice 14|11");
	/* A seq far ahead (would move top by 1000 and make 1..15 TOO_OLD). */
	len = tu_fx_env(&f, env, "s/a", RUN_A, 1015);
	env[len - 1] ^= 1;
	forged_is_inert(&f, &t, before, blen, "s/a", env, len, "forged far-ahead seq");
	CU_ASSERT(cases > 400);

	/* Positive control: the genuine envelopes still open afterwards. */
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "s/a", RUN_A, 11, &res), E2E_V_LATE);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "s/a", RUN_A, 14, &res), E2E_V_LATE);
	free(before);
	tu_tmp_close(&t);
	tu_fx_free(&f);
}

static const struct tu_test wg_tests[] = {
	{ "WireGuard counter cases 1-34 and bulk 1-6, W = 64", test_wg_counter_w64 },
	{ "WireGuard counter cases 1-34 and bulk 1-6, W = 1024 (default)", test_wg_counter_default },
	{ "WireGuard counter cases 1-34 and bulk 1-6, W = 8192", test_wg_counter_w8192 },
	{ NULL, NULL },
};

static const struct tu_test forgery_tests[] = {
	{ "Forgeries (bit flips, truncation, re-topic, splice) leave e2e_rx_save output unchanged",
	  test_forgery_state_unchanged },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "adversary window (WireGuard)", wg_tests },
		{ "adversary forgeries", forgery_tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
