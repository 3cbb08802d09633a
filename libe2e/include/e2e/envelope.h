/*
 * The v1 data envelope (protocol/SPEC.md section 3): a 24-byte header, the
 * ciphertext and a 16-byte Poly1305 tag. Stateless functions; the sender
 * context (tx.h) and receiver context (rx.h) build on them.
 */
#ifndef E2E_ENVELOPE_H
#define E2E_ENVELOPE_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"

#define E2E_SUITE_V1_XCHACHA  0x01U  /* version 1, XChaCha20-Poly1305-IETF */
/* Version 1, XChaCha20-Poly1305-IETF plus an Ed25519 signature of the sender
 * (immediate source authentication for low-rate scopes, SPEC 3.4). */
#define E2E_SUITE_V1_SIGNED   0x02U
#define E2E_HEADER_BYTES      24U
#define E2E_TAG_BYTES         16U
#define E2E_ENVELOPE_OVERHEAD (E2E_HEADER_BYTES + E2E_TAG_BYTES) /* 40 */
#define E2E_SIG_BYTES         64U
#define E2E_SIGNED_OVERHEAD   (E2E_ENVELOPE_OVERHEAD + E2E_SIG_BYTES) /* 104 */
#define E2E_OVERHEAD_MAX      E2E_SIGNED_OVERHEAD /* size buffers with this */
#define E2E_KEY_BYTES         32U
#define E2E_TOPIC_MAX         65535U
#define E2E_COUNTER_MAX       0xFFFFFFFFFFFFULL /* 48-bit message counter */
#define E2E_SEQ_MAX           0xFFFFFFFFULL     /* 32-bit stream sequence */
/* Largest plaintext: an MQTT payload is at most 268435455 bytes. */
#define E2E_PLAINTEXT_MAX     (268435455U - E2E_ENVELOPE_OVERHEAD)

/** The decoded header. All multi-byte fields are big-endian on the wire. */
struct e2e_header {
	uint8_t  suite;    /* E2E_SUITE_V1_XCHACHA */
	uint8_t  scope;    /* key scope of the sender */
	uint32_t epoch;    /* key epoch within the scope */
	uint32_t sender;   /* sender id: see e2e_sender_id() */
	uint32_t run;      /* random, non-zero, fresh at each sender start */
	uint64_t counter;  /* 48-bit message counter within (key, run), > 0 */
	uint32_t seq;      /* per-stream sequence number, > 0 */
};

/** Size of the (unsigned, suite 0x01) envelope for @p pt_len bytes. */
static inline size_t e2e_envelope_size(size_t pt_len)
{
	return pt_len + E2E_ENVELOPE_OVERHEAD;
}

/** Bytes after the plaintext for an envelope of suite @p suite. */
static inline size_t e2e_suite_overhead(uint8_t suite)
{
	return suite == E2E_SUITE_V1_SIGNED ? E2E_SIGNED_OVERHEAD : E2E_ENVELOPE_OVERHEAD;
}

/** Serialise @p h into exactly E2E_HEADER_BYTES bytes. */
E2E_API void e2e_header_write(uint8_t out[E2E_HEADER_BYTES], const struct e2e_header *h);

/**
 * Parse and sanity-check the header of @p env. Checks only structure:
 * suite, minimum length, non-zero run/counter/seq. Nothing is authentic yet.
 * @return E2E_OK, E2E_ERR_MALFORMED or E2E_ERR_VERSION.
 */
E2E_API enum e2e_status e2e_header_parse(struct e2e_header *h,
	const uint8_t *env, size_t env_len) E2E_WARN_UNUSED;

/**
 * Seal @p pt under @p key with header @p h, binding @p topic. Writes
 * e2e_envelope_size(pt_len) bytes to @p out. @p out must not overlap @p pt.
 */
E2E_API enum e2e_status e2e_envelope_seal(uint8_t *out, size_t out_cap, size_t *out_len,
	const struct e2e_header *h, const uint8_t key[E2E_KEY_BYTES],
	const uint8_t *topic, size_t topic_len,
	const uint8_t *pt, size_t pt_len) E2E_WARN_UNUSED;

/**
 * Sign a suite 0x02 envelope of @p env_len bytes (as sealed, without its
 * signature) published on @p topic: appends E2E_SIG_BYTES to @p env.
 */
E2E_API enum e2e_status e2e_envelope_sign(uint8_t *env, size_t cap, size_t *env_len,
	const uint8_t *topic, size_t topic_len, const uint8_t sign_sk[64]) E2E_WARN_UNUSED;

/** Verify the signature of a suite 0x02 envelope with the sender's key. */
E2E_API enum e2e_status e2e_envelope_verify(const uint8_t *env, size_t env_len,
	const uint8_t *topic, size_t topic_len, const uint8_t sign_pk[32]) E2E_WARN_UNUSED;

/**
 * Authenticate and decrypt @p env (whose header must already have been
 * parsed) into @p pt. On failure @p pt is zeroed and E2E_ERR_AUTH returned.
 * For suite 0x02 only the AEAD is checked here (see e2e_envelope_verify).
 */
E2E_API enum e2e_status e2e_envelope_open(uint8_t *pt, size_t pt_cap, size_t *pt_len,
	const uint8_t key[E2E_KEY_BYTES],
	const uint8_t *topic, size_t topic_len,
	const uint8_t *env, size_t env_len) E2E_WARN_UNUSED;

#ifdef __cplusplus
}
#endif

#endif
