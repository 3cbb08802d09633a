/*
 * Sender side of signed summaries (protocol/SPEC.md sec. 11.6): per stream
 * of the interval, first/last seq and a BLAKE2b-128 chained over the
 * per-envelope digests, emitted as signed SUMMARY messages.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/summary.h"
#include "lru.h"
#include "topichash.h"
#include "wire.h"

#define HEAD 14U           /* control message head */
#define SUM_HEAD 12U       /* interval, number, part, parts, n */
#define ENTRY_FIXED 30U    /* run 4, topic len 2, first 4, last 4, digest 16 */
#define PART_MAX (E2E_CTL_SUMMARY_MAX - E2E_CTL_SIG_BYTES - HEAD - SUM_HEAD)

struct stream {
	crypto_generichash_state h;   /* first member: keeps the 64-byte alignment */
	uint32_t run;
	uint32_t topic_off;
	uint16_t topic_len;
	uint32_t first, last;
};

struct e2e_summary {
	struct e2e_lru idx;           /* (topic hash, run) -> stream; indices 0..count-1 */
	struct stream *st;
	char *pool;
	uint32_t pool_cap, pool_used;
	struct topichash th;
};

void e2e_summary_digest(uint8_t d[E2E_DIGEST_BYTES], const uint8_t *env, size_t len)
{
	crypto_generichash(d, E2E_DIGEST_BYTES, env, len, NULL, 0);
}

enum e2e_status e2e_summary_create(struct e2e_summary **out, uint32_t max_streams, uint32_t pool)
{
	struct e2e_summary *s = NULL;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!out)
		goto out;
	*out = NULL;
	if (max_streams == 0 || max_streams > 65535 || pool == 0)
		goto out;
	ret = E2E_ERR_NOMEM;
	if (sodium_init() < 0 || !(s = calloc(1, sizeof *s)))
		goto out;
	/* libsodium's hash state wants 64-byte alignment. */
	s->st = aligned_alloc(64, ((size_t)max_streams * sizeof *s->st + 63) & ~(size_t)63);
	s->pool = malloc(pool);
	if (!s->st || !s->pool)
		goto out;
	s->pool_cap = pool;
	ret = e2e_lru_alloc(&s->idx, max_streams);
	if (ret != E2E_OK)
		goto out;
	randombytes_buf(s->th.key, sizeof s->th.key);
	*out = s;
	s = NULL;
out:
	e2e_summary_destroy(s);
	return ret;
}

void e2e_summary_destroy(struct e2e_summary *s)
{
	if (!s)
		return;
	e2e_lru_free(&s->idx);
	free(s->st);
	free(s->pool);
	free(s);
}

enum e2e_status e2e_summary_add(struct e2e_summary *s, uint32_t run, const char *topic,
	size_t topic_len, uint32_t seq, const uint8_t *env, size_t env_len)
{
	uint8_t d[E2E_DIGEST_BYTES];
	struct stream *x;
	uint64_t th;
	uint32_t i;

	if (!s || !topic || topic_len == 0 || topic_len > 65535 || !env)
		return E2E_ERR_ARG;
	th = topichash(&s->th, (const uint8_t *)topic, topic_len);
	i = e2e_lru_find(&s->idx, th, run);
	if (i == E2E_LRU_NONE) {
		if (topic_len > s->pool_cap - s->pool_used)
			return E2E_ERR_FULL;
		i = e2e_lru_insert(&s->idx, th, run);
		if (i == E2E_LRU_NONE)
			return E2E_ERR_FULL;
		x = &s->st[i];
		x->run = run;
		x->topic_off = s->pool_used;
		x->topic_len = (uint16_t)topic_len;
		memcpy(s->pool + s->pool_used, topic, topic_len);
		s->pool_used += (uint32_t)topic_len;
		x->first = seq;
		crypto_generichash_init(&x->h, NULL, 0, E2E_DIGEST_BYTES);
	}
	x = &s->st[i];
	e2e_summary_digest(d, env, env_len);
	crypto_generichash_update(&x->h, d, sizeof d);
	x->last = seq;
	return E2E_OK;
}

uint32_t e2e_summary_streams(const struct e2e_summary *s)
{
	return s ? s->idx.count : 0;
}

void e2e_summary_reset(struct e2e_summary *s)
{
	if (!s)
		return;
	e2e_lru_clear(&s->idx);
	s->pool_used = 0;
}

static size_t entry_size(const struct stream *x)
{
	return ENTRY_FIXED + x->topic_len;
}

/* Greedy packing: stream index where part @p part starts, and its end. */
static uint8_t pack(const struct e2e_summary *s, uint8_t part, uint32_t *from, uint32_t *to)
{
	uint32_t i = 0, start = 0;
	size_t used = 0;
	uint8_t p = 0;

	*from = *to = 0;
	for (; i < s->idx.count; i++) {
		if (used + entry_size(&s->st[i]) > PART_MAX) {
			if (p == part) {
				*from = start;
				*to = i;
			}
			p++;
			start = i;
			used = 0;
		}
		used += entry_size(&s->st[i]);
	}
	if (p == part) {
		*from = start;
		*to = i;
	}
	return (uint8_t)(p + 1);
}

enum e2e_status e2e_summary_build(const struct e2e_summary *s, const struct e2e_identity *id,
	const char *topic, uint32_t interval_ms, uint32_t number, uint8_t part, uint8_t *parts,
	uint8_t *out, size_t cap, size_t *len, uint64_t now_ms)
{
	struct e2e_wr w;
	uint32_t from, to;

	if (!s || !id || !topic || !parts || !out || !len || number == 0)
		return E2E_ERR_ARG;
	*parts = pack(s, part, &from, &to);
	if (part >= *parts)
		return E2E_ERR_ARG;
	e2e_wr_init(&w, out, cap);
	e2e_wr_u8(&w, E2E_CTL_VERSION);
	e2e_wr_u8(&w, E2E_CTL_SUMMARY);
	e2e_wr_u32(&w, e2e_sender_id(&id->pub));
	e2e_wr_u64(&w, now_ms);
	e2e_wr_u32(&w, interval_ms);
	e2e_wr_u32(&w, number);
	e2e_wr_u8(&w, part);
	e2e_wr_u8(&w, *parts);
	e2e_wr_u8(&w, (uint8_t)((to - from) >> 8));
	e2e_wr_u8(&w, (uint8_t)(to - from));
	for (uint32_t i = from; i < to; i++) {
		const struct stream *x = &s->st[i];
		crypto_generichash_state h = x->h;   /* final consumes the state */
		uint8_t digest[E2E_DIGEST_BYTES];

		crypto_generichash_final(&h, digest, sizeof digest);
		e2e_wr_u32(&w, x->run);
		e2e_wr_u8(&w, (uint8_t)(x->topic_len >> 8));
		e2e_wr_u8(&w, (uint8_t)x->topic_len);
		e2e_wr_bytes(&w, (const uint8_t *)s->pool + x->topic_off, x->topic_len);
		e2e_wr_u32(&w, x->first);
		e2e_wr_u32(&w, x->last);
		e2e_wr_bytes(&w, digest, sizeof digest);
	}
	if (w.bad)
		return E2E_ERR_BUFFER;
	*len = w.off;
	return e2e_ctl_sign(out, cap, len, topic, id);
}
