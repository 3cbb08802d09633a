/*
 * XChaCha20-Poly1305-IETF (draft-irtf-cfrg-xchacha, RFC 8439 construction)
 * with split associated data; see aead.h for why.
 */
#include <sodium.h>
#include <string.h>

#include "aead.h"

static const uint8_t zeros[16];

static void store64_le(uint8_t out[8], uint64_t v)
{
	for (size_t i = 0; i < 8; i++) {
		out[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* XChaCha20: the HChaCha20 subkey and the 12-byte ChaCha20-IETF nonce. */
static void derive(uint8_t subkey[32], uint8_t n2[12], const uint8_t nonce[24],
	const uint8_t key[32])
{
	crypto_core_hchacha20(subkey, nonce, key, NULL);
	memset(n2, 0, 4);
	memcpy(n2 + 4, nonce + 16, 8);
}

/* Tag over a1 || a2 || pad || c || pad || len(a) || len(c) (RFC 8439 2.8). */
static void aead_mac(uint8_t tag[16], const uint8_t subkey[32], const uint8_t n2[12],
	const uint8_t *c, size_t clen,
	const uint8_t *a1, size_t a1len, const uint8_t *a2, size_t a2len)
{
	crypto_onetimeauth_poly1305_state st;
	uint8_t block0[64];
	uint8_t lens[16];
	size_t alen = a1len + a2len;

	crypto_stream_chacha20_ietf(block0, sizeof block0, n2, subkey);
	crypto_onetimeauth_poly1305_init(&st, block0);
	sodium_memzero(block0, sizeof block0);

	crypto_onetimeauth_poly1305_update(&st, a1, a1len);
	if (a2len)
		crypto_onetimeauth_poly1305_update(&st, a2, a2len);
	crypto_onetimeauth_poly1305_update(&st, zeros, (0x10 - alen) & 0xf);
	crypto_onetimeauth_poly1305_update(&st, c, clen);
	crypto_onetimeauth_poly1305_update(&st, zeros, (0x10 - clen) & 0xf);
	store64_le(lens, alen);
	store64_le(lens + 8, clen);
	crypto_onetimeauth_poly1305_update(&st, lens, sizeof lens);
	crypto_onetimeauth_poly1305_final(&st, tag);
	sodium_memzero(&st, sizeof st);
}

void e2e_aead_seal(uint8_t *c, uint8_t tag[16], const uint8_t *m, size_t mlen,
	const uint8_t *a1, size_t a1len, const uint8_t *a2, size_t a2len,
	const uint8_t nonce[24], const uint8_t key[32])
{
	uint8_t subkey[32];
	uint8_t n2[12];

	/* Encrypt first (block counter 1 onwards), then MAC the ciphertext. */
	derive(subkey, n2, nonce, key);
	crypto_stream_chacha20_ietf_xor_ic(c, m, mlen, n2, 1U, subkey);
	aead_mac(tag, subkey, n2, c, mlen, a1, a1len, a2, a2len);
	sodium_memzero(subkey, sizeof subkey);
}

int e2e_aead_open(uint8_t *m, const uint8_t *c, size_t clen, const uint8_t tag[16],
	const uint8_t *a1, size_t a1len, const uint8_t *a2, size_t a2len,
	const uint8_t nonce[24], const uint8_t key[32])
{
	uint8_t subkey[32];
	uint8_t n2[12];
	uint8_t want[16];
	int ret = -1;

	derive(subkey, n2, nonce, key);
	aead_mac(want, subkey, n2, c, clen, a1, a1len, a2, a2len);
	if (crypto_verify_16(want, tag) != 0)
		goto out;
	/* Verified: only now produce plaintext. */
	crypto_stream_chacha20_ietf_xor_ic(m, c, clen, n2, 1U, subkey);
	ret = 0;
out:
	sodium_memzero(subkey, sizeof subkey);
	sodium_memzero(want, sizeof want);
	return ret;
}
