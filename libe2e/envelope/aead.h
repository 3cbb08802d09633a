/*
 * XChaCha20-Poly1305-IETF with the associated data given in two parts
 * (header, topic). Byte-for-byte the same as libsodium's
 * crypto_aead_xchacha20poly1305_ietf_*_detached over ad = a1 || a2, built
 * from libsodium's own primitives so the topic is never copied to make the
 * associated data contiguous.
 */
#ifndef E2E_AEAD_H
#define E2E_AEAD_H

#include <stddef.h>
#include <stdint.h>

#define E2E_AEAD_NONCE_BYTES 24U

void e2e_aead_seal(uint8_t *c, uint8_t tag[16], const uint8_t *m, size_t mlen,
	const uint8_t *a1, size_t a1len, const uint8_t *a2, size_t a2len,
	const uint8_t nonce[E2E_AEAD_NONCE_BYTES], const uint8_t key[32]);

/* Returns 0 and writes m only if the tag verifies; -1 otherwise. */
int e2e_aead_open(uint8_t *m, const uint8_t *c, size_t clen, const uint8_t tag[16],
	const uint8_t *a1, size_t a1len, const uint8_t *a2, size_t a2len,
	const uint8_t nonce[E2E_AEAD_NONCE_BYTES], const uint8_t key[32]);

#endif
