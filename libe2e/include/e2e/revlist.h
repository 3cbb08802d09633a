/*
 * The authority's revocation list (protocol/SPEC.md sec. 13.3): a control
 * message of type 0x06, published retained on "<C>/authority/<32 hex of
 * fp>", numbered; receivers keep the highest number per authority (on
 * disk) and ignore older or equal ones, so a replayed old list changes
 * nothing.
 */
#ifndef E2E_REVLIST_H
#define E2E_REVLIST_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"
#include "cred.h"
#include "identity.h"

#define E2E_CTL_REVOCATIONS  0x06U
#define E2E_REVLIST_MAX      65535U
/* head 14, fp 16, number 8, u16 n, sig 64 */
#define E2E_REVLIST_KEYS_MAX ((E2E_REVLIST_MAX - 14U - 16U - 8U - 2U - 64U) / 32U)
#define E2E_REVLIST_TOPIC_MAX 300U

/* A parsed list; keys point into the message (n x 32 bytes of sign_pk). */
struct e2e_revlist {
	uint8_t authority[E2E_FP_BYTES];
	uint64_t number;
	uint64_t time_ms;
	uint16_t n;
	const uint8_t *keys;
};

/** "<control>/authority/<32 hex digits of fp>". */
E2E_API enum e2e_status e2e_revlist_topic(char *out, size_t cap, const char *control_topic,
	const uint8_t fp[E2E_FP_BYTES]) E2E_WARN_UNUSED;

/**
 * Build list @p number of @p n signing keys (n x 32 bytes), signed by
 * @p authority for @p topic (e2e_revlist_topic). At most E2E_REVLIST_MAX bytes.
 */
E2E_API enum e2e_status e2e_revlist_build(uint8_t *out, size_t cap, size_t *len,
	const struct e2e_identity *authority, const char *topic, uint64_t number,
	const uint8_t *keys, uint16_t n, uint64_t now_ms) E2E_WARN_UNUSED;

/**
 * Parse and verify a list received on @p topic: size, version, type, layout
 * (MALFORMED/VERSION), the authority it names listed in @p au (NOT_FOUND),
 * head sender = that authority's sender id and the signature over @p topic
 * (AUTH). @p rl points into @p msg.
 */
E2E_API enum e2e_status e2e_revlist_parse(struct e2e_revlist *rl, const uint8_t *msg,
	size_t len, const char *topic, const struct e2e_authorities *au) E2E_WARN_UNUSED;

/** 1 if @p sign_pk is on the list. */
E2E_API int e2e_revlist_has(const struct e2e_revlist *rl, const uint8_t sign_pk[E2E_SIGN_PK_BYTES]);

/*
 * What a sender or subscriber holds: the newest accepted list per authority,
 * each persisted as "<dir>/revocations-<32 hex of fp>" (the signed message,
 * 0600), reloaded and re-verified at start.
 */
struct e2e_revstate_entry {
	uint8_t fp[E2E_FP_BYTES];
	uint8_t *msg;                /* malloc'd copy of the accepted message */
	size_t len;
	struct e2e_revlist list;     /* points into msg */
};

struct e2e_revstate {
	char dir[4096];
	char control_topic[256];
	uint32_t n;
	struct e2e_revstate_entry e[E2E_AUTHORITIES_MAX];
};

/**
 * Start empty, then load what @p dir holds for the authorities of @p au
 * (a file that fails verification is ignored: the retained list comes again).
 */
E2E_API enum e2e_status e2e_revstate_init(struct e2e_revstate *rs, const char *dir,
	const char *control_topic, const struct e2e_authorities *au) E2E_WARN_UNUSED;
E2E_API void e2e_revstate_free(struct e2e_revstate *rs);

/**
 * A list that arrived on @p topic: E2E_OK if it is newer than the one held
 * (kept and persisted; @p added, if not NULL, is called for every key it
 * lists that the previous one did not), E2E_ERR_EXISTS if its number is not
 * higher (ignored), or the e2e_revlist_parse failure.
 */
E2E_API enum e2e_status e2e_revstate_apply(struct e2e_revstate *rs,
	const struct e2e_authorities *au, const uint8_t *msg, size_t len, const char *topic,
	void (*added)(void *ctx, const uint8_t sign_pk[E2E_SIGN_PK_BYTES]), void *ctx)
	E2E_WARN_UNUSED;

/** 1 if any held list names @p sign_pk. */
E2E_API int e2e_revstate_has(const struct e2e_revstate *rs,
	const uint8_t sign_pk[E2E_SIGN_PK_BYTES]);

/** The highest number held for authority @p fp (0: none). */
E2E_API uint64_t e2e_revstate_number(const struct e2e_revstate *rs,
	const uint8_t fp[E2E_FP_BYTES]);

#ifdef __cplusplus
}
#endif

#endif
