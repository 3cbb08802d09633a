/*
 * The key service logic of a sender (protocol/SPEC.md sec. 11.3): answers
 * key requests read from the control topic. Pure: the caller moves bytes to
 * and from MQTT and supplies enrollment and keys through callbacks, so the
 * same code serves the proxy and native publisher apps.
 *
 * Order of checks: size/version/type/target/layout (e2e_ctl_peek, no
 * crypto), replay cache, the requester's enrollment (a lookup of the key it
 * carries), then the Ed25519 signature. An enrolled key with a token left in
 * its own bucket is verified at no charge and pays its own token only when
 * the signature verifies; any other request pays a global token before the
 * check; a bad signature under an enrolled key pays a global token. A flood
 * under unenrolled keys thus spends only the global bucket, and garbage
 * carrying an enrolled subscriber's public key never touches that
 * subscriber's bucket: neither can starve it. Garbage and bad signatures
 * get no answer (no amplification); a valid request that is not allowed
 * gets a signed refusal.
 */
#ifndef E2E_KEYSVC_H
#define E2E_KEYSVC_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"
#include "control.h"
#include "cred.h"
#include "identity.h"

struct e2e_keysvc;

/**
 * Enrollment lookup: scopes allowed for @p who as a 256-bit map
 * (bit s of byte s/8), E2E_ERR_NOT_FOUND if not enrolled, E2E_ERR_PERM if revoked.
 */
typedef enum e2e_status (*e2e_keysvc_enrolled_fn)(void *ctx, const struct e2e_public *who,
	uint8_t scopes[32]);

/**
 * Keys of @p scope to hand out: the current key and those still in their
 * grace period (at most @p cap). Returns the count written to @p out.
 */
typedef uint8_t (*e2e_keysvc_keys_fn)(void *ctx, uint8_t scope, struct e2e_ctl_key *out,
	uint8_t cap, uint64_t now_ms);

/**
 * The sender's profile to put in every delivery (SPEC 11.2): its complete
 * topic map in match order (the implied default listed) and its summary
 * interval. @p map's rules must stay valid until the next call.
 */
typedef enum e2e_status (*e2e_keysvc_map_fn)(void *ctx, struct e2e_ctl_map *map);

/**
 * Fleet trust (SPEC 13.5), asked once per request: the authorities the
 * sender lists (NULL or empty: credentials are not accepted) and its own
 * credential for deliveries (NULL, 0: none). Both must stay valid until
 * the next call.
 */
typedef void (*e2e_keysvc_fleet_fn)(void *ctx, const struct e2e_authorities **authorities,
	const uint8_t **cred, size_t *cred_len);

/** 1 if @p sign_pk is on a revocation list the sender accepted (SPEC 13.3). */
typedef int (*e2e_keysvc_revoked_fn)(void *ctx, const uint8_t sign_pk[E2E_SIGN_PK_BYTES]);

/**
 * A credential holder (not enrolled) was delivered the keys of the scopes in
 * @p scopes: the sender records it, to rotate them if the holder is revoked.
 */
typedef void (*e2e_keysvc_served_fn)(void *ctx, const struct e2e_public *who,
	const uint8_t scopes[32]);

struct e2e_keysvc_config {
	const struct e2e_identity *identity;   /* the sender's; must outlive the service */
	e2e_keysvc_enrolled_fn enrolled;
	e2e_keysvc_keys_fn keys;
	e2e_keysvc_map_fn map;                 /* required */
	void *ctx;
	uint64_t max_skew_ms;       /* accepted |now - request time| (0 = 300 s) */
	uint32_t per_identity_burst; /* requests per identity before limiting (0 = 10) */
	uint32_t per_identity_ms;   /* refill: one request per this interval (0 = 1000) */
	uint32_t global_burst;      /* strangers and limited identities (0 = 200) */
	uint32_t global_ms;         /* refill interval of the global bucket (0 = 10) */
	uint32_t replay_cache;      /* remembered request hashes (0 = 4096) */
	e2e_keysvc_fleet_fn fleet;       /* optional: credentials (SPEC 13.5) */
	e2e_keysvc_revoked_fn revoked;   /* optional: revocation lists (SPEC 13.3) */
	e2e_keysvc_served_fn served;     /* optional */
	uint32_t cred_cache;        /* remembered verified credentials (0 = 16384) */
};

struct e2e_keysvc_stats {
	uint64_t requests, delivered, refused, ignored_malformed, ignored_bad_sig,
		ignored_replay, ignored_other_sender, rate_limited;
	uint64_t cred_delivered;     /* deliveries on a credential (no enrollment) */
	uint64_t cred_verified;      /* credential signatures checked (cache misses) */
	uint64_t refused_by[8];      /* signed refusals per enum e2e_refusal (metrics) */
};

E2E_API enum e2e_status e2e_keysvc_create(struct e2e_keysvc **out,
	const struct e2e_keysvc_config *cfg) E2E_WARN_UNUSED;
E2E_API void e2e_keysvc_destroy(struct e2e_keysvc *ks);

/**
 * Handle one message from the control topic @p topic. On E2E_OK an answer
 * (delivery or refusal) of *out_len bytes is in @p out (size it
 * E2E_CTL_DELIVERY_MAX: a delivery carries the whole map), to be published on
 * @p reply_topic. Any other status: publish nothing (the reason is counted
 * in the stats: malformed, bad signature, replay, not for this sender).
 */
E2E_API enum e2e_status e2e_keysvc_handle(struct e2e_keysvc *ks,
	const uint8_t *msg, size_t len, const char *topic,
	uint8_t *out, size_t cap, size_t *out_len,
	char reply_topic[E2E_CTL_REPLY_MAX + 1], uint64_t now_ms) E2E_WARN_UNUSED;

E2E_API void e2e_keysvc_stats(const struct e2e_keysvc *ks, struct e2e_keysvc_stats *st);

#ifdef __cplusplus
}
#endif

#endif
