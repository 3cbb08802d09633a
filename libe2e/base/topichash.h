/*
 * Keyed topic hash (SipHash-2-4, SPEC 5.2) with a one-entry cache: a
 * stream of messages on the same topic (the common case for a sensor) pays
 * a short compare instead of a hash per message.
 */
#ifndef E2E_TOPICHASH_H
#define E2E_TOPICHASH_H

#include <sodium.h>
#include <string.h>

#include "base/wire.h"

#define TOPICHASH_CACHE 128U

struct topichash {
	uint8_t key[crypto_shorthash_KEYBYTES];
	uint64_t last_hash;
	size_t last_len;                 /* 0: cache empty */
	uint8_t last[TOPICHASH_CACHE];
};

static inline uint64_t topichash(struct topichash *t, const uint8_t *topic, size_t len)
{
	uint8_t hb[crypto_shorthash_BYTES];

	if (len == t->last_len && memcmp(topic, t->last, len) == 0)
		return t->last_hash;   /* topics are public: no constant time needed */
	crypto_shorthash(hb, topic, len, t->key);
	t->last_hash = e2e_get_u64_le(hb);
	if (len <= TOPICHASH_CACHE) {
		memcpy(t->last, topic, len);
		t->last_len = len;
	} else {
		t->last_len = 0;
	}
	return t->last_hash;
}

#endif
