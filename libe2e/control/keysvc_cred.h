/*
 * Internal: the credential path of the key service (SPEC 13.5). Split in
 * two like the request itself: a cheap look (layout, kind, keys, listed
 * authority, window, and whether this exact credential was verified before)
 * that decides which bucket pays, and the authority signature, checked only
 * after the request's own signature verified.
 */
#ifndef E2E_KEYSVC_CRED_H
#define E2E_KEYSVC_CRED_H

#include "e2e/control.h"
#include "e2e/cred.h"
#include "base/lru.h"

enum e2e_kscred {
	E2E_KSCRED_NONE = 0,     /* no usable credential: not enrolled (REFUSAL 1) */
	E2E_KSCRED_UNVERIFIED,   /* plausible, its signature not checked yet */
	E2E_KSCRED_KNOWN,        /* this exact credential verified before */
};

struct e2e_kscred_cache {
	struct e2e_lru verified;   /* BLAKE2b-128 of credentials whose signature verified */
};

enum e2e_status e2e_kscred_init(struct e2e_kscred_cache *c, uint32_t cap);
void e2e_kscred_free(struct e2e_kscred_cache *c);

/* Cheap: no signature. On KNOWN or UNVERIFIED @p cred is filled (points into req). */
enum e2e_kscred e2e_kscred_peek(struct e2e_kscred_cache *c, const struct e2e_authorities *au,
	const struct e2e_ctl *req, struct e2e_cred *cred, uint64_t now_ms);

/* The authority signature of an UNVERIFIED credential: KNOWN (remembered) or NONE. */
enum e2e_kscred e2e_kscred_verify(struct e2e_kscred_cache *c, const struct e2e_authorities *au,
	const struct e2e_cred *cred);

/* The scopes a credential grants, as the 256-bit map of the enrolled callback. */
void e2e_kscred_allowed(const struct e2e_cred *cred, uint8_t allowed[32]);

#endif
