/* The v1 envelope: header codec, seal and open (protocol/SPEC.md sec. 3). */
#include <sodium.h>
#include <string.h>

#include "e2e/envelope.h"
#include "aead.h"
#include "wire.h"

void e2e_header_write(uint8_t out[E2E_HEADER_BYTES], const struct e2e_header *h)
{
	/* Fixed offsets: this runs once per message, so no cursor. */
	out[0] = h->suite;
	out[1] = h->scope;
	e2e_put_u32(out + 2, h->epoch);
	e2e_put_u32(out + 6, h->sender);
	e2e_put_u32(out + 10, h->run);
	out[14] = (uint8_t)(h->counter >> 40);
	out[15] = (uint8_t)(h->counter >> 32);
	e2e_put_u32(out + 16, (uint32_t)h->counter);
	e2e_put_u32(out + 20, h->seq);
}

enum e2e_status e2e_header_parse(struct e2e_header *h, const uint8_t *env, size_t env_len)
{
	if (!h)
		return E2E_ERR_ARG;
	memset(h, 0, sizeof *h);
	if (!env || env_len < E2E_ENVELOPE_OVERHEAD)
		return E2E_ERR_MALFORMED;
	if (env[0] != E2E_SUITE_V1_XCHACHA)
		return E2E_ERR_VERSION;

	/* Fixed offsets (SPEC 3.1): this runs once per message. */
	h->suite = env[0];
	h->scope = env[1];
	h->epoch = e2e_get_u32(env + 2);
	h->sender = e2e_get_u32(env + 6);
	h->run = e2e_get_u32(env + 10);
	h->counter = (uint64_t)env[14] << 40 | (uint64_t)env[15] << 32 | e2e_get_u32(env + 16);
	h->seq = e2e_get_u32(env + 20);
	/* Zero values are never produced by a sender (SPEC 3.2). */
	if (h->run == 0 || h->counter == 0 || h->seq == 0)
		return E2E_ERR_MALFORMED;
	return E2E_OK;
}

enum e2e_status e2e_envelope_seal(uint8_t *out, size_t out_cap, size_t *out_len,
	const struct e2e_header *h, const uint8_t key[E2E_KEY_BYTES],
	const uint8_t *topic, size_t topic_len,
	const uint8_t *pt, size_t pt_len)
{
	if (!out || !out_len || !h || !key || (!pt && pt_len) || (!topic && topic_len))
		return E2E_ERR_ARG;
	*out_len = 0;
	if (topic_len > E2E_TOPIC_MAX || pt_len > E2E_PLAINTEXT_MAX ||
	    h->suite != E2E_SUITE_V1_XCHACHA || h->run == 0 || h->counter == 0 ||
	    h->counter > E2E_COUNTER_MAX || h->seq == 0)
		return E2E_ERR_ARG;
	if (out_cap < e2e_envelope_size(pt_len))
		return E2E_ERR_BUFFER;

	e2e_header_write(out, h);
	/* The header is both the nonce and the first part of the AAD. */
	e2e_aead_seal(out + E2E_HEADER_BYTES, out + E2E_HEADER_BYTES + pt_len, pt, pt_len,
		out, E2E_HEADER_BYTES, topic, topic_len, out, key);
	*out_len = e2e_envelope_size(pt_len);
	return E2E_OK;
}

enum e2e_status e2e_envelope_open(uint8_t *pt, size_t pt_cap, size_t *pt_len,
	const uint8_t key[E2E_KEY_BYTES],
	const uint8_t *topic, size_t topic_len,
	const uint8_t *env, size_t env_len)
{
	size_t clen;

	if (!pt_len || !key || (!topic && topic_len) || (!pt && pt_cap))
		return E2E_ERR_ARG;
	*pt_len = 0;
	if (topic_len > E2E_TOPIC_MAX)
		return E2E_ERR_ARG;
	if (!env || env_len < E2E_ENVELOPE_OVERHEAD)
		return E2E_ERR_MALFORMED;
	clen = env_len - E2E_ENVELOPE_OVERHEAD;
	if (pt_cap < clen)
		return E2E_ERR_BUFFER;
	if (e2e_aead_open(pt, env + E2E_HEADER_BYTES, clen, env + E2E_HEADER_BYTES + clen,
			env, E2E_HEADER_BYTES, topic, topic_len, env, key) != 0) {
		if (clen)
			sodium_memzero(pt, clen);
		return E2E_ERR_AUTH;
	}
	*pt_len = clen;
	return E2E_OK;
}
