/* Receiver internals shared by rx.c (the hot path) and rxstate.c (files). */
#ifndef E2E_RX_IMPL_H
#define E2E_RX_IMPL_H

#include "e2e/rx.h"
#include "base/lru.h"
#include "base/topichash.h"

/*
 * The key (scope, epoch) of a stream's messages and the highest counter
 * accepted under it (SPEC 5.8). ctr = 0: not known (a stream loaded from
 * a version 1 state file, until its next message).
 */
struct rx_keyctr {
	uint8_t scope;
	uint32_t epoch;
	uint64_t ctr;
};

struct rx_stream {
	uint32_t sender, run;
	uint64_t topic_hash;
	struct rx_keyctr kc;
	/* Counters at or below this are FORGOTTEN: its key's floor when the
	 * stream was created afresh, so an earlier life of the same stream,
	 * forgotten for good, cannot come back as LATE. */
	uint64_t low;
	struct e2e_window w;     /* w.bits points into e2e_rx.bits */
};

/* What is remembered of an evicted stream: enough to refuse its past. */
struct rx_gone {
	uint32_t sender, run;
	uint64_t topic_hash;
	uint64_t top;
	struct rx_keyctr kc;
};

/* Replay floor of one key (sender, scope, epoch): the highest counter of
 * any stream under it that left the forgotten list (SPEC 5.8). */
struct rx_floor {
	uint32_t sender;
	struct rx_keyctr kc;
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
	uint32_t max_floors;
	struct e2e_lru floor_idx; /* (scope|epoch, sender) -> index into floors */
	struct rx_floor *floors;
	/* Set by e2e_rx_open: which keys are still held, to choose the floor
	 * to drop when the table is full. NULL outside an open. */
	const struct e2e_keyring *kr;
	uint64_t now_ms;
	uint64_t verdicts[E2E_V_FORGOTTEN + 1];
	uint64_t gap_total;
	uint64_t evicted;
	uint64_t lost_evicted;    /* losses of streams no longer tracked */
	uint64_t floors_dropped;  /* floors of held keys dropped: guarantee lost */
	uint64_t unfolded;        /* v1-file streams forgotten without a known key */
	struct rx_scope_memo *memo;   /* RX_SCOPE_MEMOS entries */
};

static inline uint64_t rx_k2(uint32_t sender, uint32_t run)
{
	return (uint64_t)sender << 32 | run;
}

/* Hash key of a floor: (scope, epoch) and the sender. */
static inline uint64_t rx_fk1(uint8_t scope, uint32_t epoch)
{
	return (uint64_t)scope << 32 | epoch;
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

/* Remember an evicted stream's top in the bounded forgotten list; the
 * entry that leaves the list for good is folded into its key's floor. */
void e2e_rx_remember(struct e2e_rx *rx, uint32_t sender, uint32_t run, uint64_t th,
	uint64_t top, const struct rx_keyctr *kc);

/* Raise the floor of (sender, kc->scope, kc->epoch) to kc->ctr. */
void e2e_rx_fold(struct e2e_rx *rx, uint32_t sender, const struct rx_keyctr *kc);

#endif
