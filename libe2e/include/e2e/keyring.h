/*
 * The receiver's key ring: payload keys of several senders, scopes and
 * epochs, held in guarded (mlocked, zeroed-on-free) libsodium memory.
 * Old epochs stay usable until their grace deadline, so no message in
 * flight across a rotation becomes undecryptable.
 */
#ifndef E2E_KEYRING_H
#define E2E_KEYRING_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"
#include "envelope.h"

struct e2e_keyring;

/** Identity of one payload key. */
struct e2e_keyid {
	uint32_t sender;
	uint8_t  scope;
	uint32_t epoch;
};

/** Allocate a ring with room for @p capacity keys (the only allocation). */
E2E_API enum e2e_status e2e_keyring_create(struct e2e_keyring **out,
	uint32_t capacity) E2E_WARN_UNUSED;

/** Zero and free the ring; NULL is accepted. */
E2E_API void e2e_keyring_destroy(struct e2e_keyring *kr);

/**
 * Add a key. @p not_after_ms is the time after which the key is no longer
 * used (0 = no deadline). Adding the same key again updates the deadline;
 * a different key under the same id is refused with E2E_ERR_EXISTS.
 */
E2E_API enum e2e_status e2e_keyring_add(struct e2e_keyring *kr, const struct e2e_keyid *id,
	const uint8_t key[E2E_KEY_BYTES], uint64_t not_after_ms) E2E_WARN_UNUSED;

/* Flags of a held key (same values as in a key delivery, SPEC 11.2). */
#define E2E_KEYRING_SIGNED 0x01U   /* accept only signed (suite 0x02) envelopes */

/** e2e_keyring_add with flags. */
E2E_API enum e2e_status e2e_keyring_add_flags(struct e2e_keyring *kr, const struct e2e_keyid *id,
	const uint8_t key[E2E_KEY_BYTES], uint64_t not_after_ms, uint8_t flags) E2E_WARN_UNUSED;

/** Like e2e_keyring_find, also returning the key's flags. */
E2E_API const uint8_t *e2e_keyring_lookup(const struct e2e_keyring *kr,
	const struct e2e_keyid *id, uint64_t now_ms, uint8_t *flags);

/** Start the grace period of a key: usable until @p not_after_ms. */
E2E_API enum e2e_status e2e_keyring_retire(struct e2e_keyring *kr, const struct e2e_keyid *id,
	uint64_t not_after_ms) E2E_WARN_UNUSED;

/** Remove a key now (zeroing it). */
E2E_API enum e2e_status e2e_keyring_remove(struct e2e_keyring *kr,
	const struct e2e_keyid *id) E2E_WARN_UNUSED;

/** Remove every key whose deadline is before @p now_ms; returns how many. */
E2E_API uint32_t e2e_keyring_expire(struct e2e_keyring *kr, uint64_t now_ms);

/**
 * Look up a usable key at @p now_ms. Returns a pointer into the ring valid
 * until the next add/remove/expire/destroy, or NULL.
 */
E2E_API const uint8_t *e2e_keyring_find(const struct e2e_keyring *kr,
	const struct e2e_keyid *id, uint64_t now_ms);

/**
 * Remember the Ed25519 public key of @p sender, needed to verify signed
 * (suite 0x02) envelopes. At most 256 senders; replacing is allowed.
 */
E2E_API enum e2e_status e2e_keyring_set_signer(struct e2e_keyring *kr, uint32_t sender,
	const uint8_t sign_pk[32]) E2E_WARN_UNUSED;

/** The signer key of @p sender, or NULL. */
E2E_API const uint8_t *e2e_keyring_signer(const struct e2e_keyring *kr, uint32_t sender);

/** Number of keys held. */
E2E_API uint32_t e2e_keyring_count(const struct e2e_keyring *kr);

/** Highest epoch held for (sender, scope); E2E_ERR_NOT_FOUND if none. */
E2E_API enum e2e_status e2e_keyring_latest(const struct e2e_keyring *kr, uint32_t sender,
	uint8_t scope, uint32_t *epoch) E2E_WARN_UNUSED;

#ifdef __cplusplus
}
#endif

#endif
