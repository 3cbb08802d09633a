/*
 * Sender context: seals (topic, payload) with one payload key.
 *
 * Nonce uniqueness (protocol/SPEC.md section 4): the nonce is the header,
 * unique because (run, counter) never repeats under one key:
 *  - the counter is strictly increasing and reserved on disk in blocks ahead
 *    of use through the reserve callback, so a crash never reuses a value;
 *  - run is a fresh random value at every start, so a restored backup or a
 *    cloned VM that replays an old reservation still uses different nonces.
 * seal makes no syscall and no allocation, except the reserve callback once
 * per block and a fresh run when the stream table is full.
 */
#ifndef E2E_TX_H
#define E2E_TX_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"
#include "envelope.h"
#include "keyring.h"

struct e2e_tx;

/**
 * Persist that counters up to and including @p ceiling may be used for key
 * @p id. Must be durable (fsync) before returning E2E_OK.
 */
typedef enum e2e_status (*e2e_reserve_fn)(void *ctx, const struct e2e_keyid *id,
	uint64_t ceiling);

#define E2E_TX_BLOCK_DEFAULT   65536U
#define E2E_TX_STREAMS_DEFAULT 4096U
#define E2E_TX_LIMIT_DEFAULT   (1ULL << 32) /* messages per key before rotation */

struct e2e_tx_config {
	struct e2e_keyid id;              /* sender, scope, epoch of the key */
	const uint8_t *key;               /* E2E_KEY_BYTES, copied into guarded memory */
	uint64_t counter_floor;           /* last reserved ceiling loaded from disk (0 = new key) */
	uint64_t limit;                   /* max messages under this key (0 = default) */
	uint32_t block;                   /* reservation block (0 = default) */
	uint32_t max_streams;             /* topics tracked per run (0 = default) */
	uint32_t run;                     /* 0 = random (always, except in tests) */
	/* Synchronous reservation: called from seal when the ceiling is
	 * reached (a file write and fsync). NULL: asynchronous reservation,
	 * seal never does I/O; the owner keeps the ceiling ahead with
	 * e2e_tx_reserve_due / e2e_tx_extend, and seal returns
	 * E2E_ERR_RESERVE at a ceiling not yet extended. */
	e2e_reserve_fn reserve;
	void *reserve_ctx;
	/* Ed25519 secret key (64 bytes) of the sender: when set, envelopes are
	 * suite 0x02 and carry a signature (E2E_SIGNED_OVERHEAD). Kept by
	 * reference: it must outlive the context. */
	const uint8_t *sign_sk;
	/* Asynchronous reservation only: counters up to here are already
	 * durable (must be > counter_floor). */
	uint64_t ceiling;
};

/** Create a sender; reserves the first counter block before returning. */
E2E_API enum e2e_status e2e_tx_create(struct e2e_tx **out,
	const struct e2e_tx_config *cfg) E2E_WARN_UNUSED;

/** Zero and free; NULL accepted. */
E2E_API void e2e_tx_destroy(struct e2e_tx *tx);

/**
 * Seal @p pt published on @p topic into @p out (pt_len + E2E_ENVELOPE_OVERHEAD
 * bytes, or + E2E_SIGNED_OVERHEAD when signing). E2E_ERR_EXHAUSTED means the
 * key reached its limit: rotate.
 */
E2E_API enum e2e_status e2e_tx_seal(struct e2e_tx *tx, uint8_t *out, size_t out_cap,
	size_t *out_len, const uint8_t *topic, size_t topic_len,
	const uint8_t *pt, size_t pt_len) E2E_WARN_UNUSED;

/**
 * Seal like e2e_tx_seal, but in a fresh run of its own with seq 1: the next
 * counter of the key is used, no seq of any topic's stream is (SPEC 5.1).
 * For a message that may never be published (an MQTT will), so that its
 * absence is no gap in the topic's stream.
 */
E2E_API enum e2e_status e2e_tx_seal_alone(struct e2e_tx *tx, uint8_t *out, size_t out_cap,
	size_t *out_len, const uint8_t *topic, size_t topic_len,
	const uint8_t *pt, size_t pt_len) E2E_WARN_UNUSED;

/**
 * Low-water mark of an asynchronous reservation: 1 when fewer than half a
 * block of reserved counters remain and the key's limit allows more, with
 * the key in @p id and the ceiling to make durable in @p ceiling (then call
 * e2e_tx_extend). 0 when nothing is due.
 */
E2E_API int e2e_tx_reserve_due(const struct e2e_tx *tx, struct e2e_keyid *id,
	uint64_t *ceiling);

/** Raise the durable ceiling to @p ceiling (never lowers it; capped at the limit). */
E2E_API enum e2e_status e2e_tx_extend(struct e2e_tx *tx, uint64_t ceiling) E2E_WARN_UNUSED;

/** 1 when the key reached its message limit: the scope must be rotated. */
E2E_API int e2e_tx_exhausted(const struct e2e_tx *tx);

struct e2e_tx_stats {
	uint32_t run;          /* current run id */
	uint64_t counter;      /* last counter used (0 = none yet) */
	uint64_t ceiling;      /* reserved up to */
	uint64_t sealed;       /* envelopes produced */
	uint32_t streams;      /* topics tracked in this run */
	uint32_t runs;         /* runs started by this context */
};

E2E_API void e2e_tx_stats(const struct e2e_tx *tx, struct e2e_tx_stats *st);

#ifdef __cplusplus
}
#endif

#endif
