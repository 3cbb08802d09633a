/*
 * Receiver key ring: a fixed array of slots in sodium_malloc memory (guard
 * pages, mlocked, zeroed on free). Few keys are held at once (current and
 * grace epochs per sender and scope), so lookup is a linear scan.
 */
#include <sodium.h>
#include <string.h>

#include "e2e/keyring.h"

struct slot {
	struct e2e_keyid id;
	uint64_t not_after_ms;   /* 0 = no deadline */
	uint8_t key[E2E_KEY_BYTES];
	uint8_t used;
	uint8_t flags;
};

#define SIGNERS_MAX 256U

struct signer {
	uint32_t sender;
	uint8_t pk[32];
};

struct e2e_keyring {
	uint32_t cap;
	uint32_t count;
	struct slot *slots;      /* sodium_allocarray */
	uint32_t nsigners;
	struct signer signers[SIGNERS_MAX];   /* public keys: not secret */
};

static int same_id(const struct e2e_keyid *a, const struct e2e_keyid *b)
{
	return a->sender == b->sender && a->scope == b->scope && a->epoch == b->epoch;
}

static struct slot *lookup(const struct e2e_keyring *kr, const struct e2e_keyid *id)
{
	for (uint32_t i = 0; i < kr->cap; i++)
		if (kr->slots[i].used && same_id(&kr->slots[i].id, id))
			return &kr->slots[i];
	return NULL;
}

static void slot_clear(struct e2e_keyring *kr, struct slot *s)
{
	sodium_memzero(s, sizeof *s);
	kr->count--;
}

enum e2e_status e2e_keyring_create(struct e2e_keyring **out, uint32_t capacity)
{
	struct e2e_keyring *kr = NULL;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!out || capacity == 0 || capacity > 65536)
		goto out;
	*out = NULL;
	ret = E2E_ERR_CRYPTO;
	if (sodium_init() < 0)
		goto out;
	ret = E2E_ERR_NOMEM;
	kr = sodium_malloc(sizeof *kr);
	if (!kr)
		goto out;
	kr->slots = sodium_allocarray(capacity, sizeof *kr->slots);
	if (!kr->slots) {
		sodium_free(kr);
		goto out;
	}
	sodium_memzero(kr->slots, (size_t)capacity * sizeof *kr->slots);
	kr->cap = capacity;
	kr->count = 0;
	kr->nsigners = 0;
	*out = kr;
	ret = E2E_OK;
out:
	return ret;
}

void e2e_keyring_destroy(struct e2e_keyring *kr)
{
	if (!kr)
		return;
	sodium_free(kr->slots);   /* zeroes before unmapping */
	sodium_free(kr);
}

enum e2e_status e2e_keyring_add(struct e2e_keyring *kr, const struct e2e_keyid *id,
	const uint8_t key[E2E_KEY_BYTES], uint64_t not_after_ms)
{
	return e2e_keyring_add_flags(kr, id, key, not_after_ms, 0);
}

enum e2e_status e2e_keyring_add_flags(struct e2e_keyring *kr, const struct e2e_keyid *id,
	const uint8_t key[E2E_KEY_BYTES], uint64_t not_after_ms, uint8_t flags)
{
	struct slot *s;

	if (!kr || !id || !key || (flags & ~E2E_KEYRING_SIGNED))
		return E2E_ERR_ARG;
	s = lookup(kr, id);
	if (s) {
		/* A second, different key under one id would be an attack or a bug. */
		if (sodium_memcmp(s->key, key, E2E_KEY_BYTES) != 0 || s->flags != flags)
			return E2E_ERR_EXISTS;
		s->not_after_ms = not_after_ms;
		return E2E_OK;
	}
	for (uint32_t i = 0; i < kr->cap; i++) {
		s = &kr->slots[i];
		if (s->used)
			continue;
		s->id = *id;
		memcpy(s->key, key, E2E_KEY_BYTES);
		s->not_after_ms = not_after_ms;
		s->flags = flags;
		s->used = 1;
		kr->count++;
		return E2E_OK;
	}
	return E2E_ERR_FULL;
}

enum e2e_status e2e_keyring_retire(struct e2e_keyring *kr, const struct e2e_keyid *id,
	uint64_t not_after_ms)
{
	struct slot *s;

	if (!kr || !id || not_after_ms == 0)
		return E2E_ERR_ARG;
	s = lookup(kr, id);
	if (!s)
		return E2E_ERR_NOT_FOUND;
	/* Never extend a deadline already set: retiring only shortens life. */
	if (s->not_after_ms == 0 || not_after_ms < s->not_after_ms)
		s->not_after_ms = not_after_ms;
	return E2E_OK;
}

enum e2e_status e2e_keyring_remove(struct e2e_keyring *kr, const struct e2e_keyid *id)
{
	struct slot *s;

	if (!kr || !id)
		return E2E_ERR_ARG;
	s = lookup(kr, id);
	if (!s)
		return E2E_ERR_NOT_FOUND;
	slot_clear(kr, s);
	return E2E_OK;
}

uint32_t e2e_keyring_expire(struct e2e_keyring *kr, uint64_t now_ms)
{
	uint32_t n = 0;

	if (!kr)
		return 0;
	for (uint32_t i = 0; i < kr->cap; i++) {
		struct slot *s = &kr->slots[i];

		if (s->used && s->not_after_ms && s->not_after_ms < now_ms) {
			slot_clear(kr, s);
			n++;
		}
	}
	return n;
}

const uint8_t *e2e_keyring_lookup(const struct e2e_keyring *kr, const struct e2e_keyid *id,
	uint64_t now_ms, uint8_t *flags)
{
	const struct slot *s;

	if (!kr || !id)
		return NULL;
	s = lookup(kr, id);
	if (!s || (s->not_after_ms && s->not_after_ms < now_ms))
		return NULL;
	if (flags)
		*flags = s->flags;
	return s->key;
}

const uint8_t *e2e_keyring_find(const struct e2e_keyring *kr, const struct e2e_keyid *id,
	uint64_t now_ms)
{
	return e2e_keyring_lookup(kr, id, now_ms, NULL);
}

enum e2e_status e2e_keyring_set_signer(struct e2e_keyring *kr, uint32_t sender,
	const uint8_t sign_pk[32])
{
	uint32_t i;

	if (!kr || !sign_pk)
		return E2E_ERR_ARG;
	for (i = 0; i < kr->nsigners && kr->signers[i].sender != sender; i++)
		;
	if (i == SIGNERS_MAX)
		return E2E_ERR_FULL;
	kr->signers[i].sender = sender;
	memcpy(kr->signers[i].pk, sign_pk, 32);
	if (i == kr->nsigners)
		kr->nsigners++;
	return E2E_OK;
}

const uint8_t *e2e_keyring_signer(const struct e2e_keyring *kr, uint32_t sender)
{
	for (uint32_t i = 0; kr && i < kr->nsigners; i++)
		if (kr->signers[i].sender == sender)
			return kr->signers[i].pk;
	return NULL;
}

uint32_t e2e_keyring_count(const struct e2e_keyring *kr)
{
	return kr ? kr->count : 0;
}

enum e2e_status e2e_keyring_latest(const struct e2e_keyring *kr, uint32_t sender,
	uint8_t scope, uint32_t *epoch)
{
	int found = 0;

	if (!kr || !epoch)
		return E2E_ERR_ARG;
	for (uint32_t i = 0; i < kr->cap; i++) {
		const struct slot *s = &kr->slots[i];

		if (!s->used || s->id.sender != sender || s->id.scope != scope)
			continue;
		if (!found || s->id.epoch > *epoch)
			*epoch = s->id.epoch;
		found = 1;
	}
	return found ? E2E_OK : E2E_ERR_NOT_FOUND;
}
