/* Key service: answers key requests; see e2e/keysvc.h for the order of checks. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/keysvc.h"
#include "base/lru.h"
#include "control/keysvc_cred.h"

struct bucket {
	uint64_t last_ms;
	uint32_t tokens;
};

struct e2e_keysvc {
	struct e2e_keysvc_config cfg;
	uint32_t self;                  /* our sender id */
	struct e2e_lru seen;            /* request hashes already answered */
	struct e2e_lru who;             /* identity -> index into buckets */
	struct bucket *buckets;
	struct bucket global;
	struct e2e_kscred_cache creds;  /* credentials verified before */
	struct e2e_keysvc_stats st;
};

#define IDENTITIES 1024U

enum e2e_status e2e_keysvc_create(struct e2e_keysvc **out, const struct e2e_keysvc_config *cfg)
{
	struct e2e_keysvc *ks = NULL;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!out)
		goto out;
	*out = NULL;
	if (!cfg || !cfg->identity || !cfg->enrolled || !cfg->keys || !cfg->map)
		goto out;
	ret = E2E_ERR_NOMEM;
	ks = calloc(1, sizeof *ks);
	if (!ks)
		goto out;
	ks->cfg = *cfg;
	if (!ks->cfg.max_skew_ms) ks->cfg.max_skew_ms = 300000;
	if (!ks->cfg.per_identity_burst) ks->cfg.per_identity_burst = 10;
	if (!ks->cfg.per_identity_ms) ks->cfg.per_identity_ms = 1000;
	if (!ks->cfg.global_burst) ks->cfg.global_burst = 200;
	if (!ks->cfg.global_ms) ks->cfg.global_ms = 10;
	if (!ks->cfg.replay_cache) ks->cfg.replay_cache = 4096;
	if (!ks->cfg.cred_cache) ks->cfg.cred_cache = 16384;
	ks->buckets = calloc(IDENTITIES, sizeof *ks->buckets);
	if (!ks->buckets)
		goto out;
	ret = e2e_lru_alloc(&ks->seen, ks->cfg.replay_cache);
	if (ret != E2E_OK)
		goto out;
	ret = e2e_lru_alloc(&ks->who, IDENTITIES);
	if (ret != E2E_OK)
		goto out;
	ret = e2e_kscred_init(&ks->creds, ks->cfg.cred_cache);
	if (ret != E2E_OK)
		goto out;
	ks->self = e2e_sender_id(&cfg->identity->pub);
	ks->global.tokens = ks->cfg.global_burst;
	*out = ks;
	ks = NULL;
out:
	e2e_keysvc_destroy(ks);
	return ret;
}

void e2e_keysvc_destroy(struct e2e_keysvc *ks)
{
	if (!ks)
		return;
	e2e_lru_free(&ks->seen);
	e2e_lru_free(&ks->who);
	e2e_kscred_free(&ks->creds);
	free(ks->buckets);
	free(ks);
}

/* Token bucket: refill by elapsed time, then take one token if any. */
static int take(struct bucket *b, uint32_t burst, uint32_t every_ms, uint64_t now_ms)
{
	if (now_ms > b->last_ms) {
		uint64_t add = (now_ms - b->last_ms) / every_ms;

		if (add) {
			b->tokens = add >= burst - b->tokens ? burst : b->tokens + (uint32_t)add;
			b->last_ms = now_ms;
		}
	}
	if (b->tokens == 0)
		return 0;
	b->tokens--;
	return 1;
}

static uint64_t k64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

/* Refill @p b by elapsed time; whether it holds a token (none is taken). */
static int has_token(struct bucket *b, uint32_t burst, uint32_t every_ms, uint64_t now_ms)
{
	if (!take(b, burst, every_ms, now_ms))
		return 0;
	b->tokens++;
	return 1;
}

/* The bucket of an enrolled (or revoked) identity, created full. */
static struct bucket *identity_bucket(struct e2e_keysvc *ks, const struct e2e_public *who,
	uint64_t now_ms)
{
	uint32_t i = e2e_lru_find(&ks->who, k64(who->sign_pk), k64(who->sign_pk + 8));

	if (i == E2E_LRU_NONE) {
		i = e2e_lru_insert(&ks->who, k64(who->sign_pk), k64(who->sign_pk + 8));
		if (i == E2E_LRU_NONE) {
			(void)e2e_lru_evict(&ks->who);
			i = e2e_lru_insert(&ks->who, k64(who->sign_pk), k64(who->sign_pk + 8));
		}
		ks->buckets[i].tokens = ks->cfg.per_identity_burst;
		ks->buckets[i].last_ms = now_ms;
	}
	return &ks->buckets[i];
}

/* Collect the keys for the request: wanted scopes, or all allowed ones. */
static uint8_t collect(struct e2e_keysvc *ks, const struct e2e_ctl *req,
	const uint8_t allowed[32], struct e2e_ctl_key *keys, uint64_t now_ms)
{
	uint8_t n = 0;

	for (unsigned s = 0; s < 256; s++) {
		int wanted = req->nwant == 0;

		if (!(allowed[s / 8] & (1U << (s % 8))))
			continue;
		for (uint8_t i = 0; i < req->nwant && !wanted; i++)
			wanted = req->want[i].scope == s;
		if (!wanted || n >= E2E_CTL_KEYS_MAX)
			continue;
		n = (uint8_t)(n + ks->cfg.keys(ks->cfg.ctx, (uint8_t)s, keys + n,
				(uint8_t)(E2E_CTL_KEYS_MAX - n), now_ms));
	}
	return n;
}

enum e2e_status e2e_keysvc_handle(struct e2e_keysvc *ks,
	const uint8_t *msg, size_t len, const char *topic,
	uint8_t *out, size_t cap, size_t *out_len,
	char reply_topic[E2E_CTL_REPLY_MAX + 1], uint64_t now_ms)
{
	struct e2e_ctl req;
	struct e2e_ctl_key keys[E2E_CTL_KEYS_MAX];
	struct e2e_public who;
	struct bucket *mine;
	struct e2e_ctl_map map;
	struct e2e_cred cred;
	const struct e2e_authorities *au = NULL;
	const uint8_t *own_cred = NULL;
	size_t own_cred_len = 0;
	enum e2e_kscred cst = E2E_KSCRED_NONE;
	uint8_t hash[E2E_CTL_HASH_BYTES], allowed[32];
	uint64_t skew;
	int own;
	enum e2e_refusal reason = 0;
	enum e2e_status ret = E2E_ERR_ARG, st, est;
	uint8_t nkeys = 0;

	if (!ks || !out || !out_len || !reply_topic || !topic)
		goto out;
	ks->st.requests++;
	/* Cheapest first: size, version, type, target and layout, no crypto. */
	st = e2e_ctl_peek(&req, msg, len);
	if (st != E2E_OK || req.type != E2E_CTL_REQUEST) {
		ks->st.ignored_malformed++;
		ret = st != E2E_OK ? st : E2E_ERR_MALFORMED;
		goto out;
	}
	if (req.sender != ks->self) {
		ks->st.ignored_other_sender++;
		ret = E2E_ERR_NOT_FOUND;
		goto out;
	}
	e2e_ctl_hash(hash, msg, len);
	ret = E2E_ERR_EXISTS;
	if (e2e_lru_find(&ks->seen, k64(hash), k64(hash + 8)) != E2E_LRU_NONE) {
		ks->st.ignored_replay++;
		goto out;
	}
	/*
	 * Who asks, as the request claims (not yet verified). An enrolled key
	 * whose own bucket holds a token is verified without spending anything
	 * first, so neither a flood under random keys (the global bucket) nor
	 * garbage carrying its public key can starve it: its own token is taken
	 * only once the signature verifies, and garbage under a known key costs
	 * a global token (SPEC 11.3). Everything else takes a global token
	 * before the signature check, which bounds what strangers can cost.
	 */
	who = req.requester;
	memset(allowed, 0, sizeof allowed);
	est = ks->cfg.enrolled(ks->cfg.ctx, &who, allowed);
	/* Not enrolled: a credential (SPEC 13.5), judged cheaply now; only one
	 * verified before earns the requester's own bucket before any crypto. */
	if (ks->cfg.fleet)
		ks->cfg.fleet(ks->cfg.ctx, &au, &own_cred, &own_cred_len);
	if (est == E2E_ERR_NOT_FOUND)
		cst = e2e_kscred_peek(&ks->creds, au, &req, &cred, now_ms);
	mine = est == E2E_OK || est == E2E_ERR_PERM || cst == E2E_KSCRED_KNOWN ?
		identity_bucket(ks, &who, now_ms) : NULL;
	own = mine && has_token(mine, ks->cfg.per_identity_burst, ks->cfg.per_identity_ms, now_ms);
	ret = E2E_ERR_FULL;
	if (!own && !take(&ks->global, ks->cfg.global_burst, ks->cfg.global_ms, now_ms)) {
		ks->st.rate_limited++;
		goto out;
	}
	st = e2e_ctl_parse(&req, msg, len, topic, NULL);
	if (st != E2E_OK) {
		if (st == E2E_ERR_AUTH)
			ks->st.ignored_bad_sig++;
		else
			ks->st.ignored_malformed++;
		if (own)
			(void)take(&ks->global, ks->cfg.global_burst, ks->cfg.global_ms, now_ms);
		ret = st;
		goto out;
	}
	if (own)
		(void)take(mine, ks->cfg.per_identity_burst, ks->cfg.per_identity_ms, now_ms);
	if (cst == E2E_KSCRED_UNVERIFIED) {
		/* Paid a global token; the authority signature only now. */
		ks->st.cred_verified++;
		cst = e2e_kscred_verify(&ks->creds, au, &cred);
		if (cst == E2E_KSCRED_KNOWN) {
			mine = identity_bucket(ks, &who, now_ms);
			own = take(mine, ks->cfg.per_identity_burst, ks->cfg.per_identity_ms, now_ms);
		}
	}
	if (cst == E2E_KSCRED_KNOWN) {
		est = E2E_OK;
		e2e_kscred_allowed(&cred, allowed);
	}
	if (ks->cfg.revoked && ks->cfg.revoked(ks->cfg.ctx, who.sign_pk))
		est = E2E_ERR_PERM;
	skew = req.time_ms > now_ms ? req.time_ms - now_ms : now_ms - req.time_ms;
	if (skew > ks->cfg.max_skew_ms) {
		reason = E2E_REFUSE_STALE;
	} else if (est == E2E_ERR_PERM) {
		reason = E2E_REFUSE_REVOKED;
	} else if (est != E2E_OK) {
		reason = E2E_REFUSE_NOT_ENROLLED;
	} else if (!own) {
		ks->st.rate_limited++;
		reason = E2E_REFUSE_RATE;
	} else if ((nkeys = collect(ks, &req, allowed, keys, now_ms)) == 0) {
		reason = E2E_REFUSE_SCOPE;
	}
	memcpy(reply_topic, req.reply_topic, sizeof req.reply_topic);
	if (reason)
		ret = e2e_ctl_refusal(out, cap, out_len, ks->cfg.identity, &req, hash, reason, now_ms);
	else if ((ret = ks->cfg.map(ks->cfg.ctx, &map)) == E2E_OK)
		ret = e2e_ctl_delivery_cred(out, cap, out_len, ks->cfg.identity, &req, hash, keys,
			nkeys, &map, own_cred, own_cred_len, now_ms);
	if (ret != E2E_OK)
		goto out;   /* nothing answered: a retry of this request stays welcome */
	if (reason) {
		ks->st.refused++;
		ks->st.refused_by[reason & 7U]++;
	} else {
		ks->st.delivered++;
		if (cst == E2E_KSCRED_KNOWN) {
			ks->st.cred_delivered++;
			if (ks->cfg.served)
				ks->cfg.served(ks->cfg.ctx, &who, allowed);
		}
	}
	/* Answered: remember it so a replay gets nothing. */
	if (e2e_lru_insert(&ks->seen, k64(hash), k64(hash + 8)) == E2E_LRU_NONE) {
		(void)e2e_lru_evict(&ks->seen);
		(void)e2e_lru_insert(&ks->seen, k64(hash), k64(hash + 8));
	}
out:
	sodium_memzero(keys, sizeof keys);
	e2e_ctl_wipe(&req);
	return ret;
}

void e2e_keysvc_stats(const struct e2e_keysvc *ks, struct e2e_keysvc_stats *st)
{
	if (ks && st)
		*st = ks->st;
}
