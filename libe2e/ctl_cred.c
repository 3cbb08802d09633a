/*
 * The credential carried by REQUEST (the subscriber's) and DELIVERY (the
 * sender's, in the clear before the sealed part), SPEC 13.4: u16 c ||
 * cred[c]. Its layout is part of the message layout (11.2 step 4), checked
 * before any signature; its authority signature is the receiver's business.
 */
#include <string.h>

#include "ctl_cred.h"
#include "e2e/control.h"

enum e2e_status e2e_ctl_cred_write(struct e2e_wr *w, const uint8_t *cred, size_t len)
{
	struct e2e_cred c;

	if (len && (!cred || len > E2E_CTL_CRED_MAX || e2e_cred_parse(&c, cred, len) != E2E_OK))
		return E2E_ERR_ARG;
	e2e_wr_u16(w, (uint16_t)len);
	if (len)
		e2e_wr_bytes(w, cred, len);
	return E2E_OK;
}

enum e2e_status e2e_ctl_cred_read(struct e2e_rd *r, const uint8_t **cred, size_t *len)
{
	struct e2e_cred c;
	uint16_t n = e2e_rd_u16(r);

	*cred = NULL;
	*len = 0;
	if (r->bad || n > E2E_CTL_CRED_MAX)
		return E2E_ERR_MALFORMED;
	if (n == 0)
		return E2E_OK;
	*cred = e2e_rd_skip(r, n);
	if (!*cred || e2e_cred_parse(&c, *cred, n) != E2E_OK) {
		*cred = NULL;
		return E2E_ERR_MALFORMED;
	}
	*len = n;
	return E2E_OK;
}

enum e2e_status e2e_ctl_request(uint8_t *out, size_t cap, size_t *len,
	struct e2e_ctl *req, uint8_t eph_sk[E2E_DH_BYTES],
	const struct e2e_identity *subscriber, uint32_t target_sender,
	const struct e2e_ctl_want *want, uint8_t nwant, const char *reply_topic,
	const char *control_topic, uint64_t now_ms)
{
	return e2e_ctl_request_cred(out, cap, len, req, eph_sk, subscriber, target_sender, want,
		nwant, reply_topic, control_topic, NULL, 0, now_ms);
}

enum e2e_status e2e_ctl_delivery(uint8_t *out, size_t cap, size_t *len,
	const struct e2e_identity *sender, const struct e2e_ctl *req,
	const uint8_t req_hash[E2E_CTL_HASH_BYTES],
	const struct e2e_ctl_key *keys, uint8_t nkeys, const struct e2e_ctl_map *map,
	uint64_t now_ms)
{
	return e2e_ctl_delivery_cred(out, cap, len, sender, req, req_hash, keys, nkeys, map,
		NULL, 0, now_ms);
}
