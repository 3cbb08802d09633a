/*
 * Receiver windows on disk (protocol/SPEC.md sec. 6.3), version 2:
 * "E2ERX2\0\0" | window u32 | nstreams u32 | nforgotten u32 | nfloors u32 |
 * hash key 16 |
 * streams {sender u32, run u32, topic_hash u64, scope u8, pad 3, epoch u32,
 *          counter u64, low u64, top u64, base u64, received u64,
 *          bitmap words u64...} |
 * forgotten {sender u32, run u32, topic_hash u64, scope u8, pad 3, epoch u32,
 *            counter u64, top u64} |
 * floors {sender u32, scope u8, pad 3, epoch u32, counter u64} |
 * BLAKE2b-256 of everything before.
 * Version 1 files ("E2ERX1", no keys, counters or floors) are still read:
 * their streams get their key at their next message (5.8).
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "state/fileio.h"
#include "envelope/rx_impl.h"
#include "envelope/window_impl.h"
#include "base/wire.h"

#define MAGIC "E2ERX2\0\0"
#define MAGIC_V1 "E2ERX1\0\0"
#define MAGIC_LEN 8U
#define HEAD_LEN (MAGIC_LEN + 16U + E2E_HASH_KEY_BYTES)
#define HEAD_LEN_V1 (MAGIC_LEN + 12U + E2E_HASH_KEY_BYTES)
#define KEYCTR_LEN 16U              /* scope u8, pad 3, epoch u32, counter u64 */
#define STREAM_FIXED (48U + KEYCTR_LEN)
#define STREAM_FIXED_V1 40U
#define GONE_LEN (24U + KEYCTR_LEN)
#define GONE_LEN_V1 24U
#define FLOOR_LEN (4U + KEYCTR_LEN)
#define SUM_LEN 32U

static size_t stream_len(uint32_t window, size_t fixed)
{
	return fixed + (size_t)E2E_WINDOW_WORDS(window) * 8U;
}

static void wr_keyctr(struct e2e_wr *w, const struct rx_keyctr *kc)
{
	static const uint8_t pad[3];

	e2e_wr_u8(w, kc->scope);
	e2e_wr_bytes(w, pad, sizeof pad);
	e2e_wr_u32(w, kc->epoch);
	e2e_wr_u64(w, kc->ctr);
}

/* A key and counter; counter 0 (unknown) only with scope = epoch = 0. */
static int rd_keyctr(struct e2e_rd *r, struct rx_keyctr *kc)
{
	uint8_t pad[3];

	kc->scope = e2e_rd_u8(r);
	e2e_rd_bytes(r, pad, sizeof pad);
	kc->epoch = e2e_rd_u32(r);
	kc->ctr = e2e_rd_u64(r);
	return !r->bad && !(pad[0] | pad[1] | pad[2]) && kc->ctr <= E2E_COUNTER_MAX &&
	       (kc->ctr || (!kc->scope && !kc->epoch));
}

enum e2e_status e2e_rx_save(const struct e2e_rx *rx, const char *path)
{
	size_t len;
	uint8_t *buf = NULL;
	struct e2e_wr w;
	uint32_t words, i;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!rx || !path)
		goto out;
	words = E2E_WINDOW_WORDS(rx->window);
	len = HEAD_LEN + rx->streams.count * stream_len(rx->window, STREAM_FIXED) +
	      (size_t)rx->gone_idx.count * GONE_LEN + (size_t)rx->floor_idx.count * FLOOR_LEN +
	      SUM_LEN;
	ret = E2E_ERR_NOMEM;
	buf = malloc(len);
	if (!buf)
		goto out;
	e2e_wr_init(&w, buf, len);
	e2e_wr_bytes(&w, (const uint8_t *)MAGIC, MAGIC_LEN);
	e2e_wr_u32(&w, rx->window);
	e2e_wr_u32(&w, rx->streams.count);
	e2e_wr_u32(&w, rx->gone_idx.count);
	e2e_wr_u32(&w, rx->floor_idx.count);
	e2e_wr_bytes(&w, rx->th.key, sizeof rx->th.key);
	/* Least recently used first, so a load rebuilds the same LRU order. */
	for (i = rx->streams.tail; i != E2E_LRU_NONE; i = rx->streams.nodes[i].prev) {
		const struct rx_stream *s = &rx->st[i];

		e2e_wr_u32(&w, s->sender);
		e2e_wr_u32(&w, s->run);
		e2e_wr_u64(&w, s->topic_hash);
		wr_keyctr(&w, &s->kc);
		e2e_wr_u64(&w, s->low);
		e2e_wr_u64(&w, s->w.top);
		e2e_wr_u64(&w, s->w.base);
		e2e_wr_u64(&w, s->w.received);
		for (uint32_t j = 0; j < words; j++)
			e2e_wr_u64(&w, s->w.bits[j]);
	}
	for (i = rx->gone_idx.tail; i != E2E_LRU_NONE; i = rx->gone_idx.nodes[i].prev) {
		const struct rx_gone *g = &rx->gone[i];

		e2e_wr_u32(&w, g->sender);
		e2e_wr_u32(&w, g->run);
		e2e_wr_u64(&w, g->topic_hash);
		wr_keyctr(&w, &g->kc);
		e2e_wr_u64(&w, g->top);
	}
	for (i = rx->floor_idx.tail; i != E2E_LRU_NONE; i = rx->floor_idx.nodes[i].prev) {
		const struct rx_floor *f = &rx->floors[i];

		e2e_wr_u32(&w, f->sender);
		wr_keyctr(&w, &f->kc);
	}
	ret = E2E_ERR_BUFFER;
	if (w.bad || w.off != len - SUM_LEN)
		goto out;
	ret = e2e_state_store(path, buf, len);
out:
	free(buf);
	return ret;
}

/* Read one stream record; E2E_ERR_CORRUPT if inconsistent. */
static enum e2e_status load_stream(struct e2e_rx *rx, struct e2e_rd *r, int v1)
{
	uint32_t sender = e2e_rd_u32(r), run = e2e_rd_u32(r), i, words;
	uint64_t th = e2e_rd_u64(r);
	struct rx_keyctr kc = { 0 };
	int kc_ok = v1 || rd_keyctr(r, &kc);
	uint64_t low = v1 ? 0 : e2e_rd_u64(r);
	uint64_t top = e2e_rd_u64(r), base = e2e_rd_u64(r), received = e2e_rd_u64(r);
	struct e2e_window *w;

	/* An accepted counter is above the stream's low mark. */
	if (r->bad || !kc_ok || run == 0 || base == 0 || top < base || received == 0 ||
	    received > top - base + 1 || (kc.ctr && kc.ctr <= low) || low > E2E_COUNTER_MAX)
		return E2E_ERR_CORRUPT;
	if (e2e_lru_find(&rx->streams, th, rx_k2(sender, run)) != E2E_LRU_NONE)
		return E2E_ERR_CORRUPT;  /* a stream listed twice */
	i = e2e_rx_track(rx, sender, run, th);
	rx->st[i].kc = kc;
	rx->st[i].low = low;
	w = &rx->st[i].w;
	e2e_window_set_top(w, top);
	w->base = base;
	w->received = received;
	words = E2E_WINDOW_WORDS(rx->window);
	for (uint32_t j = 0; j < words; j++)
		w->bits[j] = e2e_rd_u64(r);
	/* The newest message must be marked as seen. */
	if (r->bad || e2e_window_check(w, top, NULL) != E2E_V_DUPLICATE)
		return E2E_ERR_CORRUPT;
	return E2E_OK;
}

static enum e2e_status load_gone(struct e2e_rx *rx, struct e2e_rd *r, int v1)
{
	uint32_t sender = e2e_rd_u32(r), run = e2e_rd_u32(r);
	uint64_t th = e2e_rd_u64(r), top;
	struct rx_keyctr kc = { 0 };
	int kc_ok = v1 || rd_keyctr(r, &kc);

	top = e2e_rd_u64(r);
	if (r->bad || !kc_ok || run == 0 || top == 0 ||
	    e2e_lru_peek(&rx->gone_idx, th, rx_k2(sender, run)) != E2E_LRU_NONE ||
	    e2e_lru_peek(&rx->streams, th, rx_k2(sender, run)) != E2E_LRU_NONE)
		return E2E_ERR_CORRUPT;
	e2e_rx_remember(rx, sender, run, th, top, &kc);
	return E2E_OK;
}

static enum e2e_status load_floor(struct e2e_rx *rx, struct e2e_rd *r)
{
	uint32_t sender = e2e_rd_u32(r);
	struct rx_keyctr kc;

	if (!rd_keyctr(r, &kc) || kc.ctr == 0 ||
	    e2e_lru_peek(&rx->floor_idx, rx_fk1(kc.scope, kc.epoch), sender) != E2E_LRU_NONE)
		return E2E_ERR_CORRUPT;
	e2e_rx_fold(rx, sender, &kc);
	return E2E_OK;
}

enum e2e_status e2e_rx_load(struct e2e_rx *rx, const char *path)
{
	uint8_t *buf = NULL;
	const uint8_t *body;
	size_t len = 0, body_len, slen, glen;
	struct e2e_rd r;
	uint32_t window, nstreams, ngone, nfloors = 0, i;
	int v1 = 0;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!rx || !path || rx->streams.count || rx->gone_idx.count || rx->floor_idx.count)
		goto out;
	rx->kr = NULL;
	ret = e2e_state_load(path, MAGIC, &buf, &len, &body, &body_len);
	if (ret == E2E_ERR_CORRUPT && len >= MAGIC_LEN && !memcmp(buf, MAGIC_V1, MAGIC_LEN)) {
		e2e_file_free(buf, len);
		buf = NULL;
		len = 0;
		v1 = 1;
		ret = e2e_state_load(path, MAGIC_V1, &buf, &len, &body, &body_len);
	}
	if (ret != E2E_OK)
		goto out;
	ret = E2E_ERR_CORRUPT;
	if (body_len < (v1 ? HEAD_LEN_V1 : HEAD_LEN) - MAGIC_LEN)
		goto out;
	e2e_rd_init(&r, body, body_len);
	window = e2e_rd_u32(&r);
	nstreams = e2e_rd_u32(&r);
	ngone = e2e_rd_u32(&r);
	if (!v1)
		nfloors = e2e_rd_u32(&r);
	ret = E2E_ERR_VERSION;
	if (window != rx->window)
		goto out;
	ret = E2E_ERR_CORRUPT;
	slen = stream_len(window, v1 ? STREAM_FIXED_V1 : STREAM_FIXED);
	glen = v1 ? GONE_LEN_V1 : GONE_LEN;
	/* Check the sizes before trusting the counts (each count < 2^24). */
	if (nstreams > rx->max_streams || ngone > rx->max_streams || nfloors > rx->max_floors ||
	    e2e_rd_left(&r) != E2E_HASH_KEY_BYTES + (size_t)nstreams * slen +
			      (size_t)ngone * glen + (size_t)nfloors * FLOOR_LEN)
		goto out;
	e2e_rd_bytes(&r, rx->th.key, sizeof rx->th.key);
	rx->th.last_len = 0;   /* a new key: the cached hash is stale */
	for (i = 0; i < nstreams; i++) {
		ret = load_stream(rx, &r, v1);
		if (ret != E2E_OK)
			goto out;
	}
	for (i = 0; i < ngone; i++) {
		ret = load_gone(rx, &r, v1);
		if (ret != E2E_OK)
			goto out;
	}
	for (i = 0; i < nfloors; i++) {
		ret = load_floor(rx, &r);
		if (ret != E2E_OK)
			goto out;
	}
	ret = E2E_OK;
out:
	if (ret != E2E_OK && ret != E2E_ERR_ARG && rx)
		e2e_rx_reset(rx);
	e2e_file_free(buf, len);
	return ret;
}
