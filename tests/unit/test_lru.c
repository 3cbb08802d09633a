/*
 * The fixed-capacity LRU map (libe2e/base/lru.c) under its lazy free list:
 * nodes never used are taken in order, so a large table costs only the
 * pages its entries touch (a thousand receivers in one process, each with
 * summary-check tables sized for 10,000 msg/s, ran a 24 GiB host out of
 * memory). The map must still hold exactly cap entries, reuse removed
 * ones, keep its order and empty on clear.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testcu.h"
#include "base/lru.h"

static void test_fills_to_cap_then_refuses(void)
{
	struct e2e_lru t;
	uint32_t seen[16] = { 0 };

	CU_ASSERT_EQUAL_FATAL(e2e_lru_alloc(&t, 16), E2E_OK);
	for (uint64_t k = 0; k < 16; k++) {
		uint32_t i = e2e_lru_insert(&t, k, 7);

		CU_ASSERT_FATAL(i < 16);
		CU_ASSERT_EQUAL(seen[i], 0);   /* every index handed out once */
		seen[i] = 1;
	}
	CU_ASSERT_EQUAL(t.count, 16);
	CU_ASSERT_EQUAL(e2e_lru_insert(&t, 99, 7), E2E_LRU_NONE);
	for (uint64_t k = 0; k < 16; k++)
		CU_ASSERT_NOT_EQUAL(e2e_lru_peek(&t, k, 7), E2E_LRU_NONE);
	CU_ASSERT_EQUAL(e2e_lru_peek(&t, 99, 7), E2E_LRU_NONE);
	e2e_lru_free(&t);
}

static void test_removed_reused_before_fresh(void)
{
	struct e2e_lru t;
	uint32_t a, b, c;

	CU_ASSERT_EQUAL_FATAL(e2e_lru_alloc(&t, 8), E2E_OK);
	a = e2e_lru_insert(&t, 1, 0);
	b = e2e_lru_insert(&t, 2, 0);
	e2e_lru_remove(&t, a);
	CU_ASSERT_EQUAL(e2e_lru_peek(&t, 1, 0), E2E_LRU_NONE);
	c = e2e_lru_insert(&t, 3, 0);
	CU_ASSERT_EQUAL(c, a);              /* the removed node, not a fresh one */
	CU_ASSERT_EQUAL(e2e_lru_peek(&t, 2, 0), b);
	CU_ASSERT_EQUAL(e2e_lru_peek(&t, 3, 0), c);
	/* Full again after the fresh ones: 8 in all, never more. */
	for (uint64_t k = 10; k < 16; k++)
		CU_ASSERT_NOT_EQUAL(e2e_lru_insert(&t, k, 0), E2E_LRU_NONE);
	CU_ASSERT_EQUAL(t.count, 8);
	CU_ASSERT_EQUAL(e2e_lru_insert(&t, 20, 0), E2E_LRU_NONE);
	/* Eviction takes the least recently used: key 2 (3 was inserted later). */
	CU_ASSERT_EQUAL(e2e_lru_evict(&t), b);
	CU_ASSERT_EQUAL(e2e_lru_peek(&t, 2, 0), E2E_LRU_NONE);
	e2e_lru_free(&t);
}

static void test_clear_empties_used_table(void)
{
	struct e2e_lru t;

	CU_ASSERT_EQUAL_FATAL(e2e_lru_alloc(&t, 64), E2E_OK);
	e2e_lru_clear(&t);                  /* never used: nothing to wipe */
	CU_ASSERT_EQUAL(t.count, 0);
	for (uint64_t k = 0; k < 40; k++)
		(void)e2e_lru_insert(&t, k, k);
	e2e_lru_clear(&t);
	CU_ASSERT_EQUAL(t.count, 0);
	CU_ASSERT_EQUAL(t.head, E2E_LRU_NONE);
	CU_ASSERT_EQUAL(e2e_lru_evict(&t), E2E_LRU_NONE);
	for (uint64_t k = 0; k < 40; k++)
		CU_ASSERT_EQUAL(e2e_lru_peek(&t, k, k), E2E_LRU_NONE);
	/* The whole capacity is back. */
	for (uint64_t k = 100; k < 164; k++)
		CU_ASSERT_NOT_EQUAL(e2e_lru_insert(&t, k, 1), E2E_LRU_NONE);
	CU_ASSERT_EQUAL(e2e_lru_insert(&t, 999, 1), E2E_LRU_NONE);
	e2e_lru_free(&t);
}

static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Eight tables of 2^18 entries were 80 MiB written at create; now they
 * cost the pages of the entries put in. */
static void test_alloc_touches_no_pages(void)
{
	struct e2e_lru t[8];
	long before, after;

	/* meson sets MALLOC_PERTURB_, with which glibc's calloc writes every
	 * page itself: measure the table, not the debugging aid. */
	mallopt(M_PERTURB, 0);
	before = rss_kib();
	CU_ASSERT_FATAL(before > 0);
	for (unsigned i = 0; i < 8; i++)
		CU_ASSERT_EQUAL_FATAL(e2e_lru_alloc(&t[i], 1U << 18), E2E_OK);
	for (unsigned i = 0; i < 8; i++)
		for (uint64_t k = 0; k < 100; k++)
			CU_ASSERT_NOT_EQUAL(e2e_lru_insert(&t[i], k, i), E2E_LRU_NONE);
	after = rss_kib();
	printf("\n  8 tables of 2^18: %ld KiB resident for 800 entries\n", after - before);
	CU_ASSERT(after - before < 16 * 1024);
	for (unsigned i = 0; i < 8; i++)
		e2e_lru_free(&t[i]);
}

static const struct tu_test tests[] = {
	{ "Fills to cap, each index once, then refuses", test_fills_to_cap_then_refuses },
	{ "Removed nodes reused, capacity exact, LRU order kept", test_removed_reused_before_fresh },
	{ "Clear empties a used table and gives the capacity back", test_clear_empties_used_table },
	{ "A large table costs the pages of its entries, not its capacity",
	  test_alloc_touches_no_pages },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "lru", tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
