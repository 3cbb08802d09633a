/*
 * A fixed-capacity map from a 128-bit key to a dense index 0..cap-1, with
 * least-recently-used order. Linear probing with backward-shift deletion
 * (no tombstones, so lookups never degrade); all memory is allocated once
 * at create time, so lookups, inserts and evictions never allocate.
 */
#ifndef E2E_LRU_H
#define E2E_LRU_H

#include <stdint.h>

#include "e2e/common.h"

#define E2E_LRU_NONE UINT32_MAX

struct e2e_lru_node {
	uint64_t k1, k2;
	uint32_t prev, next;   /* LRU list; E2E_LRU_NONE at the ends */
	uint32_t slot;         /* position in the hash array */
};

struct e2e_lru {
	uint32_t cap, count;
	uint32_t mask;         /* hash slots - 1 (a power of two >= 2 * cap) */
	uint32_t *slots;       /* node index + 1; 0 = empty */
	struct e2e_lru_node *nodes;
	uint32_t head, tail;   /* most and least recently used */
	uint32_t free_head;    /* nodes removed since, chained through next */
	/* Nodes fresh..cap-1 were never used: taken in order, so pages of a
	 * large table are touched only as entries come (a process with a
	 * thousand receivers, each sized for 10,000 msg/s, pays for what it
	 * holds, not for 12 MiB each at create). */
	uint32_t fresh;
};

enum e2e_status e2e_lru_alloc(struct e2e_lru *t, uint32_t cap);
void e2e_lru_free(struct e2e_lru *t);
void e2e_lru_clear(struct e2e_lru *t);

/* Index of the key, made most recent; E2E_LRU_NONE if absent. */
uint32_t e2e_lru_find(struct e2e_lru *t, uint64_t k1, uint64_t k2);

/* Index of the key without changing the order; E2E_LRU_NONE if absent. */
uint32_t e2e_lru_peek(const struct e2e_lru *t, uint64_t k1, uint64_t k2);

/* Make entry @p i the most recently used. */
void e2e_lru_touch(struct e2e_lru *t, uint32_t i);

/* Insert an absent key; E2E_LRU_NONE when full (evict first). */
uint32_t e2e_lru_insert(struct e2e_lru *t, uint64_t k1, uint64_t k2);

/* Remove the least recently used entry; returns its index (keys stay
 * readable in nodes[] until reused) or E2E_LRU_NONE when empty. */
uint32_t e2e_lru_evict(struct e2e_lru *t);

/* Remove entry @p i (an index returned by find or insert). */
void e2e_lru_remove(struct e2e_lru *t, uint32_t i);

#endif
