/* The key service's credential checks (SPEC 13.5); see keysvc_cred.h. */
#include <sodium.h>
#include <string.h>

#include "control/keysvc_cred.h"

enum e2e_status e2e_kscred_init(struct e2e_kscred_cache *c, uint32_t cap)
{
	return e2e_lru_alloc(&c->verified, cap);
}

void e2e_kscred_free(struct e2e_kscred_cache *c)
{
	e2e_lru_free(&c->verified);
}

static void cred_key(const struct e2e_cred *cred, uint64_t k[2])
{
	uint8_t h[16];

	crypto_generichash(h, sizeof h, cred->raw, cred->raw_len, NULL, 0);
	memcpy(&k[0], h, 8);
	memcpy(&k[1], h + 8, 8);
}

enum e2e_kscred e2e_kscred_peek(struct e2e_kscred_cache *c, const struct e2e_authorities *au,
	const struct e2e_ctl *req, struct e2e_cred *cred, uint64_t now_ms)
{
	uint64_t k[2];

	if (!au || au->n == 0 || !req->cred_len ||
	    e2e_cred_parse(cred, req->cred, req->cred_len) != E2E_OK)
		return E2E_KSCRED_NONE;
	/* The credential must be for the keys that signed the request, of the
	 * subscriber kind, from an authority we list, and current. */
	if (cred->kind != E2E_CRED_SUBSCRIBER ||
	    memcmp(&cred->holder, &req->requester, sizeof cred->holder) != 0 ||
	    !e2e_authorities_find(au, cred->authority) || !e2e_cred_current(cred, now_ms))
		return E2E_KSCRED_NONE;
	cred_key(cred, k);
	if (e2e_lru_find(&c->verified, k[0], k[1]) != E2E_LRU_NONE)
		return E2E_KSCRED_KNOWN;
	return E2E_KSCRED_UNVERIFIED;
}

enum e2e_kscred e2e_kscred_verify(struct e2e_kscred_cache *c, const struct e2e_authorities *au,
	const struct e2e_cred *cred)
{
	const struct e2e_authority *a = e2e_authorities_find(au, cred->authority);
	uint64_t k[2];

	if (!a || e2e_cred_verify(cred, &a->pub) != E2E_OK)
		return E2E_KSCRED_NONE;
	cred_key(cred, k);
	if (e2e_lru_insert(&c->verified, k[0], k[1]) == E2E_LRU_NONE) {
		(void)e2e_lru_evict(&c->verified);
		(void)e2e_lru_insert(&c->verified, k[0], k[1]);
	}
	return E2E_KSCRED_KNOWN;
}

void e2e_kscred_allowed(const struct e2e_cred *cred, uint8_t allowed[32])
{
	memset(allowed, 0, 32);
	for (uint8_t i = 0; i < cred->nscopes; i++)
		allowed[cred->scopes[i] / 8] |= (uint8_t)(1U << (cred->scopes[i] % 8));
}
