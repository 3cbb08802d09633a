/*
 * Sender side of signed summaries (protocol/SPEC.md sec. 11.6): per stream
 * of the interval, first/last seq and every envelope's 8-byte digest d_s,
 * emitted as signed SUMMARY messages bound to (boot, number).
 *
 * Digests are logged in seal order, each linked to the next of its stream,
 * so a stream's digests are walked in seq order without sorting. A stream
 * too long for the room left in a part is split into consecutive entries.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/summary.h"
#include "base/lru.h"
#include "base/topichash.h"
#include "base/wire.h"
#include "control/sumhist.h"

#define PART_MAX (E2E_CTL_SUMMARY_MAX - E2E_CTL_SIG_BYTES - E2E_CTL_HEAD_BYTES - \
	E2E_SUMMARY_HEAD_BYTES)
#define NONE UINT32_MAX
/* Greedy packing fills two consecutive parts with more than PART_MAX bytes,
 * so an interval of at most 100 parts' worth of entries needs < 255 parts. */
#define BYTES_MAX (100ULL * PART_MAX)

struct stream {
	uint32_t run;
	uint32_t topic_off;
	uint16_t topic_len;
	uint32_t first, last;
	uint32_t head, tail;          /* digest log indices */
};

/*
 * Where the packing walk stands at the start of a part: the stream, its next
 * seq and digest. Building the parts of an interval in order (the sender
 * does) resumes each walk where the last one stopped instead of re-walking
 * every digest before it, which made an interval's summary quadratic in its
 * parts (issue 15). Valid only for the summary's contents (gen) and part 0's
 * history size it was taken with.
 */
struct cursor {
	uint64_t gen;
	size_t hist0;
	unsigned part;                /* the part this position starts; 0 = none saved */
	uint32_t i, seq, di;
};

struct digest {
	uint32_t next;                /* next digest of the same stream, NONE at its end */
	uint8_t d[E2E_DIGEST_BYTES];
};

struct e2e_summary {
	struct e2e_lru idx;           /* (topic hash, run) -> stream; indices 0..count-1 */
	struct stream *st;
	char *pool;
	uint32_t pool_cap, pool_used;
	struct digest *log;
	uint32_t log_cap, log_used;
	uint64_t bytes;               /* entry heads and digests recorded: bounds the parts */
	struct topichash th;
	/* History (SPEC 11.6): the ranges of the last intervals, repeated in
	 * part 0; the summary being built (pushed there at reset). */
	struct e2e_sumhist_ring *hist;
	uint32_t built_boot, built_number;
	uint64_t gen;                 /* bumped by every change the walk depends on */
	struct cursor cur;
};

void e2e_summary_digest(uint8_t d[E2E_DIGEST_BYTES], const uint8_t *env, size_t len)
{
	crypto_generichash(d, E2E_DIGEST_BYTES, env, len, NULL, 0);
}

enum e2e_status e2e_summary_create(struct e2e_summary **out, uint32_t max_streams, uint32_t pool,
	uint32_t max_digests)
{
	struct e2e_summary *s = NULL;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!out)
		goto out;
	*out = NULL;
	if (max_streams == 0 || max_streams > 65535 || pool == 0 || max_digests == 0 ||
	    max_digests >= NONE)
		goto out;
	ret = E2E_ERR_NOMEM;
	if (sodium_init() < 0 || !(s = calloc(1, sizeof *s)))
		goto out;
	s->st = calloc(max_streams, sizeof *s->st);
	s->pool = malloc(pool);
	s->log = calloc(max_digests, sizeof *s->log);
	if (!s->st || !s->pool || !s->log || e2e_sumhist_ring_create(&s->hist) != E2E_OK)
		goto out;
	s->pool_cap = pool;
	s->log_cap = max_digests;
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
	e2e_sumhist_ring_destroy(s->hist);
	free(s->st);
	free(s->pool);
	free(s->log);
	free(s);
}

enum e2e_status e2e_summary_add(struct e2e_summary *s, uint32_t run, const char *topic,
	size_t topic_len, uint32_t seq, const uint8_t *env, size_t env_len)
{
	struct stream *x;
	struct digest *d;
	uint64_t th;
	uint32_t i;

	if (!s || !topic || topic_len == 0 || topic_len > E2E_SUMMARY_TOPIC_MAX || !env)
		return E2E_ERR_ARG;
	if (s->log_used == s->log_cap)
		return E2E_ERR_FULL;
	th = topichash(&s->th, (const uint8_t *)topic, topic_len);
	i = e2e_lru_find(&s->idx, th, run);
	if (i != E2E_LRU_NONE && seq != s->st[i].last + 1)
		return E2E_ERR_ARG;   /* seqs of a stream are consecutive (SPEC 5.1) */
	if (s->bytes + E2E_DIGEST_BYTES +
	    (i == E2E_LRU_NONE ? E2E_SUMMARY_ENTRY_FIXED + topic_len : 0) > BYTES_MAX)
		return E2E_ERR_FULL;  /* more than 255 parts: emit this interval first */
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
		x->head = x->tail = NONE;
		s->bytes += E2E_SUMMARY_ENTRY_FIXED + topic_len;
	}
	x = &s->st[i];
	d = &s->log[s->log_used];
	d->next = NONE;
	e2e_summary_digest(d->d, env, env_len);
	if (x->tail == NONE)
		x->head = s->log_used;
	else
		s->log[x->tail].next = s->log_used;
	x->tail = s->log_used++;
	x->last = seq;
	s->gen++;
	s->bytes += E2E_DIGEST_BYTES;
	return E2E_OK;
}

void e2e_summary_hist_swap(struct e2e_summary *a, struct e2e_summary *b)
{
	struct e2e_sumhist_ring *t = a->hist;

	a->hist = b->hist;
	b->hist = t;
	a->gen++;
	b->gen++;
}

uint32_t e2e_summary_streams(const struct e2e_summary *s)
{
	return s ? s->idx.count : 0;
}

void e2e_summary_reset(struct e2e_summary *s)
{
	if (!s)
		return;
	/* The interval just summarized becomes history: its streams' ranges. */
	if (s->built_number) {
		e2e_sumhist_push_begin(s->hist, s->built_boot, s->built_number);
		for (uint32_t i = 0; i < s->idx.count; i++)
			e2e_sumhist_push_range(s->hist, s->st[i].run, s->pool + s->st[i].topic_off,
				s->st[i].topic_len, s->st[i].first, s->st[i].last);
		s->built_number = 0;
	}
	s->gen++;
	e2e_lru_clear(&s->idx);
	s->pool_used = 0;
	s->log_used = 0;
	s->bytes = 0;
}

/*
 * The packing walk: streams in index order, each cut into entries of as many
 * digests as the room left in the part allows (a part is closed when not even
 * the entry head and one digest fit).
 *
 * Without @p w it counts the parts (entry heads only: the digests are not
 * followed) and returns their number, or 0 past 255. With @p w it writes the
 * entries of part @p want, starting from the saved cursor when that is at or
 * before @p want, saves the cursor at the start of part want + 1 and stops
 * there; *nentries is the number of entries written.
 */
static unsigned walk(struct e2e_summary *s, size_t hist0, unsigned want,
	struct e2e_wr *w, uint16_t *nentries)
{
	unsigned part = 0;
	/* Part 0 also carries the history; every part its count byte. */
	size_t room = PART_MAX - hist0;
	uint32_t i = 0, seq = 0, di = NONE;
	int resumed = 0;

	*nentries = 0;
	if (w && s->cur.part != 0 && s->cur.part <= want && s->cur.gen == s->gen &&
	    s->cur.hist0 == hist0) {
		part = s->cur.part;
		room = PART_MAX - 1;
		i = s->cur.i;
		seq = s->cur.seq;
		di = s->cur.di;
		resumed = 1;
	}
	for (; i < s->idx.count; i++) {
		const struct stream *x = &s->st[i];
		size_t head = E2E_SUMMARY_ENTRY_FIXED + x->topic_len;

		if (!resumed) {
			seq = x->first;
			di = x->head;
		}
		while (seq - 1 != x->last) {
			uint64_t left = (uint64_t)x->last - seq + 1, k;
			uint64_t need = head + left * E2E_DIGEST_BYTES;

			/* Split a stream only when it fills a part on its own
			 * (never true at the start of a part: a resumed walk
			 * goes on where the saved one stopped). */
			if ((need > room && need <= PART_MAX - 1) ||
			    room < head + E2E_DIGEST_BYTES) {
				part++;
				room = PART_MAX - 1;
				if (w && part == want + 1) {
					s->cur = (struct cursor){ s->gen, hist0, part, i, seq, di };
					return part;
				}
			}
			resumed = 0;
			k = (room - head) / E2E_DIGEST_BYTES;
			if (k > left)
				k = left;
			room -= head + (size_t)k * E2E_DIGEST_BYTES;
			seq += (uint32_t)k;
			if (!w)
				continue;
			if (part == want) {
				e2e_wr_u32(w, x->run);
				e2e_wr_u8(w, (uint8_t)(x->topic_len >> 8));
				e2e_wr_u8(w, (uint8_t)x->topic_len);
				e2e_wr_bytes(w, (const uint8_t *)s->pool + x->topic_off, x->topic_len);
				e2e_wr_u32(w, seq - (uint32_t)k);
				e2e_wr_u32(w, seq - 1);
				(*nentries)++;
			}
			for (uint64_t j = 0; j < k; j++) {
				if (part == want)
					e2e_wr_bytes(w, s->log[di].d, E2E_DIGEST_BYTES);
				di = s->log[di].next;
			}
		}
		resumed = 0;
	}
	return part + 1 > 255 ? 0 : part + 1;
}

enum e2e_status e2e_summary_build(struct e2e_summary *s, const struct e2e_identity *id,
	const char *topic, uint32_t interval_ms, uint32_t boot, uint32_t number, uint8_t part,
	uint8_t *parts, uint8_t *out, size_t cap, size_t *len, uint64_t now_ms)
{
	struct e2e_wr w;
	size_t at_n, hist0;
	uint16_t n;
	unsigned np;

	if (!s || !id || !topic || !parts || !out || !len || number == 0 || boot == 0)
		return E2E_ERR_ARG;
	hist0 = e2e_sumhist_size(s->hist, boot, number);
	np = walk(s, hist0, 0, NULL, &n);
	if (np == 0)
		return E2E_ERR_FULL;
	*parts = (uint8_t)np;
	if (part >= np)
		return E2E_ERR_ARG;
	e2e_wr_init(&w, out, cap);
	e2e_wr_u8(&w, E2E_CTL_VERSION);
	e2e_wr_u8(&w, E2E_CTL_SUMMARY);
	e2e_wr_u32(&w, e2e_sender_id(&id->pub));
	e2e_wr_u64(&w, now_ms);
	e2e_wr_u32(&w, interval_ms);
	e2e_wr_u32(&w, boot);
	e2e_wr_u32(&w, number);
	e2e_wr_u8(&w, part);
	e2e_wr_u8(&w, *parts);
	at_n = w.off;
	e2e_wr_u8(&w, 0);
	e2e_wr_u8(&w, 0);
	(void)walk(s, hist0, part, &w, &n);
	if (part == 0)
		e2e_sumhist_write(s->hist, boot, number, &w);
	else
		e2e_wr_u8(&w, 0);
	s->built_boot = boot;
	s->built_number = number;
	if (w.bad)
		return E2E_ERR_BUFFER;
	out[at_n] = (uint8_t)(n >> 8);
	out[at_n + 1] = (uint8_t)n;
	*len = w.off;
	return e2e_ctl_sign(out, cap, len, topic, id);
}
