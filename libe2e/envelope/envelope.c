/* The v1 envelope: header codec, seal and open (protocol/SPEC.md sec. 3). */
#include <sodium.h>
#include <string.h>

#include "e2e/envelope.h"
#include "envelope/aead.h"
#include "base/wire.h"

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
	if (env[0] != E2E_SUITE_V1_XCHACHA && env[0] != E2E_SUITE_V1_SIGNED)
		return E2E_ERR_VERSION;
	if (env_len < e2e_suite_overhead(env[0]))
		return E2E_ERR_MALFORMED;

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
	    (h->suite != E2E_SUITE_V1_XCHACHA && h->suite != E2E_SUITE_V1_SIGNED) ||
	    h->run == 0 || h->counter == 0 ||
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
	if (!env || env_len < E2E_ENVELOPE_OVERHEAD || env_len < e2e_suite_overhead(env[0]))
		return E2E_ERR_MALFORMED;
	/* A signed envelope carries its signature after the tag. */
	if (env[0] == E2E_SUITE_V1_SIGNED)
		env_len -= E2E_SIG_BYTES;
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

/* What a suite 0x02 signature covers: context, topic, envelope before it. */
static void sig_hash(uint8_t out[64], const uint8_t *env, size_t len, const uint8_t *topic,
	size_t topic_len)
{
	static const uint8_t ctx[16] = "mqtt-e2e/v1/sig";
	crypto_generichash_state st;
	uint8_t tl[2] = { (uint8_t)(topic_len >> 8), (uint8_t)topic_len };

	crypto_generichash_init(&st, NULL, 0, 64);
	crypto_generichash_update(&st, ctx, sizeof ctx);
	crypto_generichash_update(&st, tl, sizeof tl);
	crypto_generichash_update(&st, topic, topic_len);
	crypto_generichash_update(&st, env, len);
	crypto_generichash_final(&st, out, 64);
}

enum e2e_status e2e_envelope_sign(uint8_t *env, size_t cap, size_t *env_len,
	const uint8_t *topic, size_t topic_len, const uint8_t sign_sk[64])
{
	uint8_t h[64];

	if (!env || !env_len || !topic || !sign_sk || *env_len < E2E_ENVELOPE_OVERHEAD ||
	    env[0] != E2E_SUITE_V1_SIGNED || topic_len > E2E_TOPIC_MAX)
		return E2E_ERR_ARG;
	if (cap - *env_len < E2E_SIG_BYTES || cap < *env_len)
		return E2E_ERR_BUFFER;
	/* Sign a 64-byte BLAKE2b digest: the envelope may be large. */
	sig_hash(h, env, *env_len, topic, topic_len);
	crypto_sign_detached(env + *env_len, NULL, h, sizeof h, sign_sk);
	*env_len += E2E_SIG_BYTES;
	return E2E_OK;
}

enum e2e_status e2e_envelope_verify(const uint8_t *env, size_t env_len, const uint8_t *topic,
	size_t topic_len, const uint8_t sign_pk[32])
{
	uint8_t h[64];

	if (!env || !topic || !sign_pk || env_len < E2E_SIGNED_OVERHEAD ||
	    env[0] != E2E_SUITE_V1_SIGNED || topic_len > E2E_TOPIC_MAX)
		return E2E_ERR_ARG;
	sig_hash(h, env, env_len - E2E_SIG_BYTES, topic, topic_len);
	return crypto_sign_verify_detached(env + env_len - E2E_SIG_BYTES, h, sizeof h,
		sign_pk) == 0 ? E2E_OK : E2E_ERR_AUTH;
}
