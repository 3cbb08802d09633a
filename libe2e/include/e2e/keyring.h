/*
 * The receiver's key ring: payload keys of several senders, scopes and
 * epochs, held in guarded (mlocked, zeroed-on-free) libsodium memory.
 * Old epochs stay usable until their grace deadline, so no message in
 * flight across a rotation becomes undecryptable. Next to the keys it holds
 * each sender's profile from its newest key delivery: the topic map that
 * binds scopes to topics (e2e_rx_open accepts nothing from a sender without
 * one) and the summary interval.
 */
#ifndef E2E_KEYRING_H
#define E2E_KEYRING_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"
#include "envelope.h"
#include "scopes.h"

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
/* Delivered ahead of its rotation (SPEC 11.5): usable at once (the sender
 * switches at its time or on exhaustion, by its own clock), but it retires
 * nothing until it is promoted (e2e_keyring_promote): holding it, the
 * current key stays current. Stored; cleared by promotion only. */
#define E2E_KEYRING_NEXT 0x02U
/* Reported by e2e_keyring_lookup only (never stored): the key is retired
 * (SPEC 11.5): it has a grace deadline, or a newer epoch of its (sender,
 * scope) is held (and not NEXT) or was announced (e2e_keyring_note_epoch).
 * An envelope under it is not accepted as new before a summary confirms it. */
#define E2E_KEYRING_RETIRED 0x80U

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
 * @return E2E_ERR_ARG also if @p sender is not the id of @p sign_pk
 *         (SPEC 3.3): a key ring never holds a mismatched (id, key) pair.
 */
E2E_API enum e2e_status e2e_keyring_set_signer(struct e2e_keyring *kr, uint32_t sender,
	const uint8_t sign_pk[32]) E2E_WARN_UNUSED;

/** The signer key of @p sender, or NULL. */
E2E_API const uint8_t *e2e_keyring_signer(const struct e2e_keyring *kr, uint32_t sender);

/**
 * Install the profile of @p sender from its newest accepted key delivery
 * (SPEC 11.2): its topic map (@p rules in match order, 1..65535 rules,
 * every filter a valid MQTT topic filter, copied) and its summary interval
 * (0 = the sender publishes no summaries). Replaces the previous profile.
 * e2e_rx_open accepts an envelope of @p sender only on a topic the map
 * gives the envelope's scope (SPEC 5.4). Allocates (not a hot-path call).
 * @return E2E_OK; E2E_ERR_ARG (bad rule or no rule); E2E_ERR_FULL (256
 *         senders already); E2E_ERR_NOMEM.
 */
E2E_API enum e2e_status e2e_keyring_set_profile(struct e2e_keyring *kr, uint32_t sender,
	const struct e2e_scope_rule *rules, uint32_t nrules,
	uint32_t summary_interval_ms) E2E_WARN_UNUSED;

/**
 * The scope @p sender uses for @p topic, by its installed map (first
 * matching rule).
 * @return E2E_OK and *@p scope; E2E_ERR_UNKNOWN_KEY if no profile of
 *         @p sender is installed; E2E_ERR_NOT_FOUND if no rule matches
 *         (or @p topic is no valid topic name): the sender cannot have
 *         sealed on it.
 */
E2E_API enum e2e_status e2e_keyring_resolve(const struct e2e_keyring *kr, uint32_t sender,
	const uint8_t *topic, size_t topic_len, uint8_t *scope) E2E_WARN_UNUSED;

/**
 * The summary interval of @p sender's installed profile, in ms (0 = no
 * summaries). Start expecting its summaries when its keys are installed.
 * @return E2E_OK; E2E_ERR_NOT_FOUND if no profile is installed.
 */
E2E_API enum e2e_status e2e_keyring_summary_interval(const struct e2e_keyring *kr,
	uint32_t sender, uint32_t *interval_ms) E2E_WARN_UNUSED;

/**
 * Test and tool helper: a profile of one rule, every topic ('#') in
 * @p scope, and summaries off. '$'-topics match no rule under it.
 */
E2E_API enum e2e_status e2e_keyring_set_single_scope(struct e2e_keyring *kr, uint32_t sender,
	uint8_t scope) E2E_WARN_UNUSED;

/**
 * A verified ANNOUNCE of @p sender named @p epoch for @p scope: keys of
 * older epochs of (sender, scope) count as retired from now on, before the
 * new key is fetched (SPEC 11.5). Only raises what is remembered.
 * @return E2E_OK; E2E_ERR_ARG; E2E_ERR_FULL (256 senders already).
 */
E2E_API enum e2e_status e2e_keyring_note_epoch(struct e2e_keyring *kr, uint32_t sender,
	uint8_t scope, uint32_t epoch) E2E_WARN_UNUSED;

/**
 * The sender uses key @p id (an envelope under it was accepted, or it was
 * delivered as current): clear its NEXT flag, so the older epochs of its
 * (sender, scope) count as retired from now on (SPEC 11.5).
 * @return E2E_OK (also if it was not NEXT); E2E_ERR_NOT_FOUND; E2E_ERR_ARG.
 */
E2E_API enum e2e_status e2e_keyring_promote(struct e2e_keyring *kr,
	const struct e2e_keyid *id) E2E_WARN_UNUSED;

/**
 * After a delivery for (@p sender, @p scope): remove (zeroing) the keys
 * still NEXT that it no longer lists (@p keep, @p nkeep epochs): keys the
 * sender discarded at a forced rotation (SPEC 11.5). Returns how many.
 */
E2E_API uint32_t e2e_keyring_prune_next(struct e2e_keyring *kr, uint32_t sender,
	uint8_t scope, const uint32_t *keep, uint32_t nkeep);

/**
 * As e2e_keyring_prune_next, but the keys it no longer lists stay, retired
 * (no longer NEXT, with deadline @p not_after_ms; 0 removes them): an
 * envelope under one is then held for a summary that never lists it and
 * reported FORGED (SPEC 11.5: a revoked member may hold them). Returns how
 * many.
 */
E2E_API uint32_t e2e_keyring_retire_next(struct e2e_keyring *kr, uint32_t sender,
	uint8_t scope, const uint32_t *keep, uint32_t nkeep, uint64_t not_after_ms);

/** Number of keys held. */
E2E_API uint32_t e2e_keyring_count(const struct e2e_keyring *kr);

/** Highest epoch held for (sender, scope); E2E_ERR_NOT_FOUND if none. */
E2E_API enum e2e_status e2e_keyring_latest(const struct e2e_keyring *kr, uint32_t sender,
	uint8_t scope, uint32_t *epoch) E2E_WARN_UNUSED;

#ifdef __cplusplus
}
#endif

#endif
