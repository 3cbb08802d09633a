/*
 * Receiver context: opens envelopes and tracks one window per stream.
 * A stream is (sender, run, topic): what one subscriber sees in order, so a
 * partial or wildcard subscription counts gaps exactly on its own topics.
 *
 * Order per message (SPEC 5.4): parse -> scope of the topic by the
 * sender's map (e2e_keyring_set_profile) -> key lookup -> window check ->
 * AEAD open -> signature (suite 0x02) -> window update. Nothing moves
 * unless the envelope authenticated.
 */
#ifndef E2E_RX_H
#define E2E_RX_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"
#include "envelope.h"
#include "keyring.h"
#include "window.h"

struct e2e_rx;

#define E2E_RX_STREAMS_DEFAULT 1024U
/* Replay floors (SPEC 5.8): one per key (sender, scope, epoch) of a
 * forgotten stream. Keep it above the key ring's capacity: a full table
 * then always has a key the receiver no longer holds to drop. */
#define E2E_RX_FLOORS_DEFAULT 4096U
#define E2E_HASH_KEY_BYTES 16U

struct e2e_rx_config {
	uint32_t max_streams;   /* 0 = default; least recently used is evicted */
	uint32_t window;        /* 0 = E2E_WINDOW_DEFAULT; multiple of 64 */
	/* Key of the stream hash (E2E_HASH_KEY_BYTES), NULL = random. A loaded
	 * state file replaces it. */
	const uint8_t *hash_key;
	/* Replay floors kept (0 = E2E_RX_FLOORS_DEFAULT); at most 2^24. */
	uint32_t max_floors;
};

/* Flags in e2e_rx_result.flags */
#define E2E_RX_NEW_STREAM 0x01U  /* first message of a stream this receiver tracks */
/* FORGED by the sender's topic map (SPEC 5.4 step 2), before any key or
 * crypto: not of the scope the map gives the topic, or no rule matches.
 * With a map older than the sender's scopes table this can be a genuine
 * message: a client may fetch the sender's current map and decide again. */
#define E2E_RX_SCOPE_MISMATCH 0x02U
/* Authentic, but under a retired key (SPEC 11.5, E2E_KEYRING_RETIRED): the
 * verdict is UNKNOWN_KEY, nothing is delivered and the window did not move.
 * Deliver it only once a summary of the sender lists this envelope
 * (e2e_sumcheck_hold / e2e_sumcheck_verify), through e2e_rx_open_confirmed. */
#define E2E_RX_RETIRED 0x04U
/* Accepted under a key delivered ahead of its rotation (E2E_KEYRING_NEXT):
 * the sender has switched to it. Call e2e_keyring_promote for the header's
 * key id, so the previous epoch counts as retired from now on (SPEC 11.5). */
#define E2E_RX_NEXT 0x08U

struct e2e_rx_result {
	enum e2e_verdict verdict;
	uint64_t gap;            /* for E2E_V_GAP: sequence numbers skipped */
	struct e2e_header hdr;   /* valid unless verdict is E2E_V_MALFORMED */
	size_t pt_len;           /* plaintext bytes written (delivering verdicts only) */
	uint32_t flags;
};

E2E_API enum e2e_status e2e_rx_create(struct e2e_rx **out,
	const struct e2e_rx_config *cfg) E2E_WARN_UNUSED;
E2E_API void e2e_rx_destroy(struct e2e_rx *rx);

/**
 * Classify and, where authentic, decrypt one envelope received on @p topic.
 * No profile of the header's sender in @p kr: UNKNOWN_KEY. The topic
 * matching no rule of the sender's map, or a rule of another scope than
 * the header's: FORGED, before any key lookup or decryption.
 * Returns E2E_OK whenever a verdict was reached (see res->verdict; the
 * plaintext is valid iff e2e_verdict_delivers()); other statuses mean bad
 * arguments (E2E_ERR_ARG) or a too-small @p pt (E2E_ERR_BUFFER: nothing moved).
 */
E2E_API enum e2e_status e2e_rx_open(struct e2e_rx *rx, const struct e2e_keyring *kr,
	uint8_t *pt, size_t pt_cap, struct e2e_rx_result *res,
	const uint8_t *topic, size_t topic_len,
	const uint8_t *env, size_t env_len, uint64_t now_ms) E2E_WARN_UNUSED;

/**
 * e2e_rx_open for an envelope a summary of its sender has confirmed
 * (E2E_SUM_VERIFIED by e2e_sumcheck_verify): a retired key is accepted
 * like a current one. Every other check (map, window, AEAD, signature) is
 * the same. Never call it for an envelope no summary confirmed.
 */
E2E_API enum e2e_status e2e_rx_open_confirmed(struct e2e_rx *rx, const struct e2e_keyring *kr,
	uint8_t *pt, size_t pt_cap, struct e2e_rx_result *res,
	const uint8_t *topic, size_t topic_len,
	const uint8_t *env, size_t env_len, uint64_t now_ms) E2E_WARN_UNUSED;

struct e2e_rx_stats {
	uint64_t verdicts[E2E_V_FORGOTTEN + 1]; /* count per verdict */
	uint64_t gap_total;      /* sum of GAP(n) */
	uint64_t pending;        /* holes that may still arrive (LATE) */
	uint64_t lost;           /* holes behind the window: confirmed losses */
	uint32_t streams;        /* streams tracked */
	uint64_t evicted;        /* streams forgotten (LRU) */
	uint32_t floors;         /* replay floors held (keys of forgotten streams) */
	/* Floors of keys still held that had to be dropped (table full): the
	 * replay guarantee of SPEC 5.8 no longer holds for those keys. Also
	 * counts streams of a version 1 state file forgotten before their key
	 * was known. Non-zero: raise max_floors. */
	uint64_t floors_dropped;
};

/** Totals; pending/lost are computed over all streams (not a hot-path call). */
E2E_API void e2e_rx_stats(const struct e2e_rx *rx, struct e2e_rx_stats *st);

/** Persist all windows atomically to @p path (mode 0600). */
E2E_API enum e2e_status e2e_rx_save(const struct e2e_rx *rx, const char *path) E2E_WARN_UNUSED;

/**
 * Load windows saved by e2e_rx_save into an empty receiver. A missing file
 * is E2E_ERR_NOT_FOUND (fresh start); a damaged one E2E_ERR_CORRUPT, and the
 * receiver is left empty: never a silent reset.
 */
E2E_API enum e2e_status e2e_rx_load(struct e2e_rx *rx, const char *path) E2E_WARN_UNUSED;

#ifdef __cplusplus
}
#endif

#endif
