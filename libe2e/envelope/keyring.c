/*
 * Receiver key ring: a fixed array of slots in sodium_malloc memory (guard
 * pages, mlocked, zeroed on free). Few keys are held at once (current and
 * grace epochs per sender and scope), so lookup is a linear scan.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/identity.h"
#include "envelope/keyring_impl.h"

struct slot {
	struct e2e_keyid id;
	uint64_t not_after_ms;   /* 0 = no deadline */
	uint8_t key[E2E_KEY_BYTES];
	uint8_t used;
	uint8_t flags;
};

#define SIGNERS_MAX 256U
#define RULES_MAX 65535U           /* a u16 count on the wire (SPEC 11.2) */

/* A sender's map and summary interval: one allocation, filters in pool. */
struct profile {
	uint32_t interval_ms;
	uint32_t nrules;
	struct e2e_scope_rule *rules;   /* filters point into the same block */
};

/* What we know of one sender: public data, not secret. */
#define ANNOUNCED_MAX 16U

struct signer {
	uint32_t sender;
	uint8_t has_pk;
	uint8_t pk[32];
	struct profile *prof;
	/* Newest epoch announced per scope (SPEC 11.5): keys below it are retired
	 * even before the new key is fetched. */
	uint32_t nann;
	uint8_t ann_scope[ANNOUNCED_MAX];
	uint32_t ann_epoch[ANNOUNCED_MAX];
};

struct e2e_keyring {
	uint32_t cap;
	uint32_t count;
	struct slot *slots;      /* sodium_allocarray */
	uint64_t gen;            /* changes with every profile: see keyring_impl.h */
	uint32_t nsigners;
	struct signer signers[SIGNERS_MAX];   /* public keys and maps: not secret */
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
	randombytes_buf(&kr->gen, sizeof kr->gen);
	*out = kr;
	ret = E2E_OK;
out:
	return ret;
}

void e2e_keyring_destroy(struct e2e_keyring *kr)
{
	if (!kr)
		return;
	for (uint32_t i = 0; i < kr->nsigners; i++)
		free(kr->signers[i].prof);
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

	if (!kr || !id || !key || (flags & ~(E2E_KEYRING_SIGNED | E2E_KEYRING_NEXT)))
		return E2E_ERR_ARG;
	s = lookup(kr, id);
	if (s) {
		/* A second, different key under one id would be an attack or a bug. */
		if (sodium_memcmp(s->key, key, E2E_KEY_BYTES) != 0 ||
		    (s->flags ^ flags) & E2E_KEYRING_SIGNED)
			return E2E_ERR_EXISTS;
		/* Delivered as current now: promoted. Never NEXT again once used. */
		s->flags &= (uint8_t)(flags | ~E2E_KEYRING_NEXT);
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

static struct signer *find_signer(const struct e2e_keyring *kr, uint32_t sender);

/*
 * A key is retired (SPEC 11.5) once it has a deadline, or a newer epoch of
 * its (sender, scope) is held or was announced: its holders may include a
 * revoked member, so what it seals is no longer taken on its own word.
 * One pass over the slots finds the key and any newer epoch (the lookup
 * cost stays what it was).
 */
const uint8_t *e2e_keyring_lookup(const struct e2e_keyring *kr, const struct e2e_keyid *id,
	uint64_t now_ms, uint8_t *flags)
{
	const struct slot *s = NULL;
	const struct signer *g;
	int newer = 0;

	if (!kr || !id)
		return NULL;
	for (uint32_t i = 0; i < kr->cap; i++) {
		const struct slot *k = &kr->slots[i];

		if (!k->used || k->id.sender != id->sender || k->id.scope != id->scope)
			continue;
		if (k->id.epoch == id->epoch)
			s = k;
		else if (k->id.epoch > id->epoch && !(k->flags & E2E_KEYRING_NEXT))
			newer = 1;   /* a key made ahead retires nothing before it is used */
	}
	if (!s || (s->not_after_ms && s->not_after_ms < now_ms))
		return NULL;
	if (flags) {
		if (!newer && !s->not_after_ms && (g = find_signer(kr, id->sender)) != NULL)
			for (uint32_t i = 0; i < g->nann && !newer; i++)
				newer = g->ann_scope[i] == id->scope && g->ann_epoch[i] > id->epoch;
		*flags = (uint8_t)(s->flags | (newer || s->not_after_ms ? E2E_KEYRING_RETIRED : 0));
	}
	return s->key;
}

const uint8_t *e2e_keyring_find(const struct e2e_keyring *kr, const struct e2e_keyid *id,
	uint64_t now_ms)
{
	return e2e_keyring_lookup(kr, id, now_ms, NULL);
}

static struct signer *find_signer(const struct e2e_keyring *kr, uint32_t sender)
{
	for (uint32_t i = 0; i < kr->nsigners; i++)
		if (kr->signers[i].sender == sender)
			return (struct signer *)&kr->signers[i];
	return NULL;
}

static struct signer *get_signer(struct e2e_keyring *kr, uint32_t sender)
{
	struct signer *g = find_signer(kr, sender);

	if (g || kr->nsigners == SIGNERS_MAX)
		return g;
	g = &kr->signers[kr->nsigners++];
	memset(g, 0, sizeof *g);
	g->sender = sender;
	return g;
}

enum e2e_status e2e_keyring_set_signer(struct e2e_keyring *kr, uint32_t sender,
	const uint8_t sign_pk[32])
{
	struct e2e_public pub;
	struct signer *g;

	if (!kr || !sign_pk)
		return E2E_ERR_ARG;
	/* The id names the key (SPEC 3.3): a pair that disagrees would let one
	 * sender's envelopes be checked against another's key. */
	memset(&pub, 0, sizeof pub);
	memcpy(pub.sign_pk, sign_pk, sizeof pub.sign_pk);
	if (e2e_sender_id(&pub) != sender)
		return E2E_ERR_ARG;
	g = get_signer(kr, sender);
	if (!g)
		return E2E_ERR_FULL;
	memcpy(g->pk, sign_pk, 32);
	g->has_pk = 1;
	return E2E_OK;
}

const uint8_t *e2e_keyring_signer(const struct e2e_keyring *kr, uint32_t sender)
{
	const struct signer *g = kr ? find_signer(kr, sender) : NULL;

	return g && g->has_pk ? g->pk : NULL;
}

enum e2e_status e2e_keyring_set_profile(struct e2e_keyring *kr, uint32_t sender,
	const struct e2e_scope_rule *rules, uint32_t nrules, uint32_t summary_interval_ms)
{
	struct profile *p = NULL;
	struct signer *g;
	size_t pool = 0, off = 0;
	char *dst;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!kr || !rules || nrules == 0 || nrules > RULES_MAX)
		goto out;
	for (uint32_t i = 0; i < nrules; i++) {
		if (!e2e_topic_filter_valid(rules[i].filter, rules[i].filter_len))
			goto out;
		pool += rules[i].filter_len;
	}
	ret = E2E_ERR_FULL;
	g = get_signer(kr, sender);
	if (!g)
		goto out;
	ret = E2E_ERR_NOMEM;
	p = malloc(sizeof *p + (size_t)nrules * sizeof *p->rules + pool);
	if (!p)
		goto out;
	p->interval_ms = summary_interval_ms;
	p->nrules = nrules;
	p->rules = (struct e2e_scope_rule *)(p + 1);
	dst = (char *)(p->rules + nrules);
	for (uint32_t i = 0; i < nrules; i++) {
		memcpy(dst + off, rules[i].filter, rules[i].filter_len);
		p->rules[i].scope = rules[i].scope;
		p->rules[i].filter = dst + off;
		p->rules[i].filter_len = rules[i].filter_len;
		off += rules[i].filter_len;
	}
	free(g->prof);
	g->prof = p;
	kr->gen++;
	ret = E2E_OK;
out:
	return ret;
}

enum e2e_status e2e_keyring_resolve(const struct e2e_keyring *kr, uint32_t sender,
	const uint8_t *topic, size_t topic_len, uint8_t *scope)
{
	const struct signer *g;

	if (!kr || !scope || (!topic && topic_len))
		return E2E_ERR_ARG;
	g = find_signer(kr, sender);
	if (!g || !g->prof)
		return E2E_ERR_UNKNOWN_KEY;
	return e2e_scope_rules_match(g->prof->rules, g->prof->nrules, (const char *)topic,
		topic_len, scope) ? E2E_OK : E2E_ERR_NOT_FOUND;
}

uint64_t e2e_keyring_generation(const struct e2e_keyring *kr)
{
	return kr->gen;
}

enum e2e_status e2e_keyring_summary_interval(const struct e2e_keyring *kr, uint32_t sender,
	uint32_t *interval_ms)
{
	const struct signer *g;

	if (!kr || !interval_ms)
		return E2E_ERR_ARG;
	g = find_signer(kr, sender);
	if (!g || !g->prof)
		return E2E_ERR_NOT_FOUND;
	*interval_ms = g->prof->interval_ms;
	return E2E_OK;
}

enum e2e_status e2e_keyring_set_single_scope(struct e2e_keyring *kr, uint32_t sender,
	uint8_t scope)
{
	struct e2e_scope_rule all = { scope, "#", 1 };

	return e2e_keyring_set_profile(kr, sender, &all, 1, 0);
}

enum e2e_status e2e_keyring_note_epoch(struct e2e_keyring *kr, uint32_t sender, uint8_t scope,
	uint32_t epoch)
{
	struct signer *g;
	uint32_t i, low = 0;

	if (!kr)
		return E2E_ERR_ARG;
	g = get_signer(kr, sender);
	if (!g)
		return E2E_ERR_FULL;
	for (i = 0; i < g->nann; i++) {
		if (g->ann_scope[i] == scope) {
			if (epoch > g->ann_epoch[i])
				g->ann_epoch[i] = epoch;
			return E2E_OK;
		}
		if (g->ann_epoch[i] < g->ann_epoch[low])
			low = i;
	}
	/* Full: the scope announced longest ago (lowest epoch) gives way; its
	 * newer key is fetched by then and retires the old one anyway. */
	i = g->nann < ANNOUNCED_MAX ? g->nann++ : low;
	g->ann_scope[i] = scope;
	g->ann_epoch[i] = epoch;
	return E2E_OK;
}

enum e2e_status e2e_keyring_promote(struct e2e_keyring *kr, const struct e2e_keyid *id)
{
	struct slot *s;

	if (!kr || !id)
		return E2E_ERR_ARG;
	s = lookup(kr, id);
	if (!s)
		return E2E_ERR_NOT_FOUND;
	s->flags &= (uint8_t)~E2E_KEYRING_NEXT;
	return E2E_OK;
}

uint32_t e2e_keyring_retire_next(struct e2e_keyring *kr, uint32_t sender, uint8_t scope,
	const uint32_t *keep, uint32_t nkeep, uint64_t not_after_ms)
{
	uint32_t n = 0;

	for (uint32_t i = 0; kr && i < kr->cap; i++) {
		struct slot *s = &kr->slots[i];
		int kept = 0;

		if (!s->used || !(s->flags & E2E_KEYRING_NEXT) || s->id.sender != sender ||
		    s->id.scope != scope)
			continue;
		for (uint32_t k = 0; keep && k < nkeep && !kept; k++)
			kept = keep[k] == s->id.epoch;
		if (kept)
			continue;
		n++;
		if (!not_after_ms) {
			slot_clear(kr, s);
			continue;
		}
		/* Kept, retired: the sender sealed nothing under it, but whoever
		 * the forced rotation removed holds it. Its envelopes then wait
		 * for a summary that never lists them (FORGED), instead of
		 * passing as a key we never had (UNKNOWN_KEY, a request each). */
		s->flags &= (uint8_t)~E2E_KEYRING_NEXT;
		s->not_after_ms = not_after_ms;
	}
	return n;
}

uint32_t e2e_keyring_prune_next(struct e2e_keyring *kr, uint32_t sender, uint8_t scope,
	const uint32_t *keep, uint32_t nkeep)
{
	return e2e_keyring_retire_next(kr, sender, scope, keep, nkeep, 0);
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
