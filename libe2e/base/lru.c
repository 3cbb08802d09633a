/* Fixed-capacity LRU map; see lru.h. */
#include <stdlib.h>
#include <string.h>

#include "base/lru.h"

static uint32_t slot_of(const struct e2e_lru *t, uint64_t k1, uint64_t k2)
{
	/* k1 is already a keyed hash or a small id; mix both halves anyway. */
	uint64_t h = (k1 ^ (k2 * 0x9E3779B97F4A7C15ULL)) * 0xBF58476D1CE4E5B9ULL;

	return (uint32_t)(h >> 32) & t->mask;
}

enum e2e_status e2e_lru_alloc(struct e2e_lru *t, uint32_t cap)
{
	uint32_t nslots = 2;

	memset(t, 0, sizeof *t);
	if (cap == 0 || cap > (1U << 28))
		return E2E_ERR_ARG;
	while (nslots < 2 * cap)
		nslots <<= 1;
	t->slots = calloc(nslots, sizeof *t->slots);
	t->nodes = calloc(cap, sizeof *t->nodes);
	if (!t->slots || !t->nodes) {
		e2e_lru_free(t);
		return E2E_ERR_NOMEM;
	}
	t->cap = cap;
	t->mask = nslots - 1;
	/* calloc's zeroed slots are empty: nothing to write (clear would
	 * touch every page). */
	t->free_head = t->head = t->tail = E2E_LRU_NONE;
	return E2E_OK;
}

void e2e_lru_free(struct e2e_lru *t)
{
	free(t->slots);
	free(t->nodes);
	memset(t, 0, sizeof *t);
}

void e2e_lru_clear(struct e2e_lru *t)
{
	/* Only an insert writes a slot: a table never used is still all zero. */
	if (t->fresh)
		memset(t->slots, 0, ((size_t)t->mask + 1) * sizeof *t->slots);
	t->fresh = 0;
	t->free_head = t->head = t->tail = E2E_LRU_NONE;
	t->count = 0;
}

static void list_unlink(struct e2e_lru *t, uint32_t i)
{
	struct e2e_lru_node *n = &t->nodes[i];

	if (n->prev != E2E_LRU_NONE)
		t->nodes[n->prev].next = n->next;
	else
		t->head = n->next;
	if (n->next != E2E_LRU_NONE)
		t->nodes[n->next].prev = n->prev;
	else
		t->tail = n->prev;
}

static void list_push_head(struct e2e_lru *t, uint32_t i)
{
	struct e2e_lru_node *n = &t->nodes[i];

	n->prev = E2E_LRU_NONE;
	n->next = t->head;
	if (t->head != E2E_LRU_NONE)
		t->nodes[t->head].prev = i;
	t->head = i;
	if (t->tail == E2E_LRU_NONE)
		t->tail = i;
}

uint32_t e2e_lru_peek(const struct e2e_lru *t, uint64_t k1, uint64_t k2)
{
	uint32_t s = slot_of(t, k1, k2);

	for (;;) {
		uint32_t v = t->slots[s];

		if (v == 0)
			return E2E_LRU_NONE;
		if (t->nodes[v - 1].k1 == k1 && t->nodes[v - 1].k2 == k2)
			return v - 1;
		s = (s + 1) & t->mask;
	}
}

void e2e_lru_touch(struct e2e_lru *t, uint32_t i)
{
	if (t->head != i) {
		list_unlink(t, i);
		list_push_head(t, i);
	}
}

uint32_t e2e_lru_find(struct e2e_lru *t, uint64_t k1, uint64_t k2)
{
	uint32_t i = e2e_lru_peek(t, k1, k2);

	if (i != E2E_LRU_NONE)
		e2e_lru_touch(t, i);
	return i;
}

uint32_t e2e_lru_insert(struct e2e_lru *t, uint64_t k1, uint64_t k2)
{
	uint32_t i = t->free_head, s;

	if (i != E2E_LRU_NONE)
		t->free_head = t->nodes[i].next;
	else if (t->fresh < t->cap)
		i = t->fresh++;
	else
		return E2E_LRU_NONE;
	s = slot_of(t, k1, k2);
	/* Load factor <= 1/2 guarantees an empty slot. */
	while (t->slots[s] != 0)
		s = (s + 1) & t->mask;
	t->slots[s] = i + 1;
	t->nodes[i].k1 = k1;
	t->nodes[i].k2 = k2;
	t->nodes[i].slot = s;
	list_push_head(t, i);
	t->count++;
	return i;
}

/* Backward-shift deletion keeps every probe chain unbroken. */
static void slot_delete(struct e2e_lru *t, uint32_t hole)
{
	uint32_t s = hole;

	for (;;) {
		uint32_t v, home;

		s = (s + 1) & t->mask;
		v = t->slots[s];
		if (v == 0)
			break;
		home = slot_of(t, t->nodes[v - 1].k1, t->nodes[v - 1].k2);
		/* Move v into the hole unless its home lies cyclically in (hole, s]. */
		if (((s - home) & t->mask) >= ((s - hole) & t->mask)) {
			t->slots[hole] = v;
			t->nodes[v - 1].slot = hole;
			hole = s;
		}
	}
	t->slots[hole] = 0;
}

void e2e_lru_remove(struct e2e_lru *t, uint32_t i)
{
	list_unlink(t, i);
	slot_delete(t, t->nodes[i].slot);
	t->nodes[i].next = t->free_head;
	t->free_head = i;
	t->count--;
}

uint32_t e2e_lru_evict(struct e2e_lru *t)
{
	uint32_t i = t->tail;

	if (i != E2E_LRU_NONE)
		e2e_lru_remove(t, i);
	return i;
}
