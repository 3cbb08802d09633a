/* Receiver internals shared by rx.c (the hot path) and rxstate.c (files). */
#ifndef E2E_RX_IMPL_H
#define E2E_RX_IMPL_H

#include "e2e/rx.h"
#include "lru.h"
#include "topichash.h"

struct rx_stream {
	uint32_t sender, run;
	uint64_t topic_hash;
	struct e2e_window w;     /* w.bits points into e2e_rx.bits */
};

/* What is remembered of an evicted stream: enough to refuse its past. */
struct rx_gone {
	uint32_t sender, run;
	uint64_t topic_hash;
	uint64_t top;
};

/*
 * A remembered answer of the scope step (SPEC 5.4 step 2) for one topic of
 * one sender, valid while the key ring's generation is unchanged: a
 * stream's messages pay a compare, not a walk over the sender's map.
 */
#define RX_SCOPE_MEMOS 256U           /* direct-mapped by topic hash */
#define RX_SCOPE_TOPIC 128U           /* longer topics are not remembered */

struct rx_scope_memo {
	const struct e2e_keyring *kr;
	uint64_t gen;
	uint32_t sender;
	uint16_t len;                     /* 0: empty */
	uint8_t found;                    /* a rule matched (else: FORGED) */
	uint8_t scope;
	uint8_t topic[RX_SCOPE_TOPIC];
};

struct e2e_rx {
	uint32_t window;
	uint32_t max_streams;
	struct topichash th;          /* key = the stream hash key (SPEC 5.2) */
	struct e2e_lru streams;   /* (topic hash, sender|run) -> index */
	struct rx_stream *st;
	uint64_t *bits;           /* max_streams * E2E_WINDOW_WORDS(window) */
	struct e2e_lru gone_idx;  /* same key -> index into gone */
	struct rx_gone *gone;
	uint64_t verdicts[E2E_V_FORGOTTEN + 1];
	uint64_t gap_total;
	uint64_t evicted;
	uint64_t lost_evicted;    /* losses of streams no longer tracked */
	struct rx_scope_memo *memo;   /* RX_SCOPE_MEMOS entries */
};

static inline uint64_t rx_k2(uint32_t sender, uint32_t run)
{
	return (uint64_t)sender << 32 | run;
}

/* Window memory of stream slot @p i. */
static inline uint64_t *rx_bits(const struct e2e_rx *rx, uint32_t i)
{
	return rx->bits + (size_t)i * E2E_WINDOW_WORDS(rx->window);
}

/* Empty the receiver (keeps configuration and hash key). */
void e2e_rx_reset(struct e2e_rx *rx);

/* Start tracking a stream, evicting the least recently used if needed. */
uint32_t e2e_rx_track(struct e2e_rx *rx, uint32_t sender, uint32_t run, uint64_t th);

/* Remember an evicted stream's top in the bounded forgotten list. */
void e2e_rx_remember(struct e2e_rx *rx, uint32_t sender, uint32_t run, uint64_t th,
	uint64_t top);

#endif
