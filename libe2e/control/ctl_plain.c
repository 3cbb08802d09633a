/*
 * The control message builders without a credential (c = 0, SPEC 13.4):
 * what every caller but the fleet-trust ones uses. Kept apart from
 * control.c and ctl_cred.c so neither depends back on the other.
 */
#include "e2e/control.h"

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
