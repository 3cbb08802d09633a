/*
 * Receiver side of signed summaries (protocol/SPEC.md sec. 11.6): digests
 * of accepted envelopes wait here until a summary of their sender covers
 * them; then the chained digest is recomputed and compared.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/summary.h"
#include "lru.h"
#include "topichash.h"
#include "wire.h"

#define SENDERS_MAX 256U

struct rec {
	uint32_t sender, run, seq;
	uint32_t seen;                /* summaries of the sender arrived before this record */
	uint64_t th;
	uint8_t d[E2E_DIGEST_BYTES];
};

/* Complete summaries arrived per sender: a record that two later arrivals
 * passed over is unsummarized. Counting arrivals (not summary numbers) keeps
 * a receiver that starts mid-way from false alarms. missed_at: the latest
 * arrival that followed summaries which never came (a gap in numbers, or the
 * sender restarted before summarizing); a record it or the next arrival
 * passes over may have been in those, so it is unchecked, not unsummarized. */
struct sender_no {
	uint32_t sender;
	uint32_t arrived;
	uint32_t missed_at;
};

struct e2e_sumcheck {
	struct e2e_lru idx;           /* (topic hash ^ seq mix, sender|run) -> rec */
	struct rec *recs;
	struct topichash th;
	uint64_t overflow;
	struct sender_no nos[SENDERS_MAX];
	uint32_t nnos;
};

static uint64_t k1_of(uint64_t th, uint32_t seq)
{
	return th ^ ((uint64_t)seq * 0x9E3779B97F4A7C15ULL);
}

static uint64_t k2_of(uint32_t sender, uint32_t run)
{
	return (uint64_t)sender << 32 | run;
}

static uint64_t topic_hash(struct e2e_sumcheck *sc, const char *topic, size_t len)
{
	return topichash(&sc->th, (const uint8_t *)topic, len);
}

static struct sender_no *checked_of(struct e2e_sumcheck *sc, uint32_t sender)
{
	for (uint32_t i = 0; i < sc->nnos; i++)
		if (sc->nos[i].sender == sender)
			return &sc->nos[i];
	if (sc->nnos == SENDERS_MAX)
		return NULL;
	sc->nos[sc->nnos] = (struct sender_no){ sender, 0, 0 };
	return &sc->nos[sc->nnos++];
}

enum e2e_status e2e_sumcheck_create(struct e2e_sumcheck **out, uint32_t max_pending)
{
	struct e2e_sumcheck *sc = NULL;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!out)
		goto out;
	*out = NULL;
	if (max_pending == 0)
		goto out;
	ret = E2E_ERR_NOMEM;
	if (sodium_init() < 0 || !(sc = calloc(1, sizeof *sc)))
		goto out;
	sc->recs = calloc(max_pending, sizeof *sc->recs);
	if (!sc->recs)
		goto out;
	ret = e2e_lru_alloc(&sc->idx, max_pending);
	if (ret != E2E_OK)
		goto out;
	randombytes_buf(sc->th.key, sizeof sc->th.key);
	*out = sc;
	sc = NULL;
out:
	e2e_sumcheck_destroy(sc);
	return ret;
}

void e2e_sumcheck_destroy(struct e2e_sumcheck *sc)
{
	if (!sc)
		return;
	e2e_lru_free(&sc->idx);
	free(sc->recs);
	free(sc);
}

uint64_t e2e_sumcheck_overflow(const struct e2e_sumcheck *sc)
{
	return sc ? sc->overflow : 0;
}

static uint32_t find(struct e2e_sumcheck *sc, uint32_t sender, uint32_t run, uint64_t th,
	uint32_t seq)
{
	uint32_t i = e2e_lru_find(&sc->idx, k1_of(th, seq), k2_of(sender, run));

	/* The map key mixes topic hash and seq: confirm the fields. */
	if (i != E2E_LRU_NONE && (sc->recs[i].th != th || sc->recs[i].seq != seq))
		return E2E_LRU_NONE;
	return i;
}

void e2e_sumcheck_record(struct e2e_sumcheck *sc, uint32_t sender, uint32_t run,
	const char *topic, size_t topic_len, uint32_t seq, const uint8_t *env, size_t env_len)
{
	struct sender_no *no;
	uint64_t th;
	uint32_t i;
	struct rec *r;

	if (!sc || !topic || !env)
		return;
	no = checked_of(sc, sender);
	th = topic_hash(sc, topic, topic_len);
	i = find(sc, sender, run, th, seq);
	if (i == E2E_LRU_NONE) {
		i = e2e_lru_insert(&sc->idx, k1_of(th, seq), k2_of(sender, run));
		if (i == E2E_LRU_NONE) {
			(void)e2e_lru_evict(&sc->idx);
			sc->overflow++;
			i = e2e_lru_insert(&sc->idx, k1_of(th, seq), k2_of(sender, run));
		}
	}
	r = &sc->recs[i];
	r->sender = sender;
	r->run = run;
	r->seq = seq;
	r->th = th;
	r->seen = no ? no->arrived : 0;
	e2e_summary_digest(r->d, env, env_len);
}

/* Remove every record of stream (sender, run, th) with seq in [first, last]. */
static uint64_t drop_covered(struct e2e_sumcheck *sc, uint32_t sender, uint32_t run, uint64_t th,
	uint32_t first, uint32_t last)
{
	uint32_t i = sc->idx.head;
	uint64_t n = 0;

	while (i != E2E_LRU_NONE) {
		uint32_t next = sc->idx.nodes[i].next;
		const struct rec *r = &sc->recs[i];

		if (r->sender == sender && r->run == run && r->th == th && r->seq >= first &&
		    r->seq <= last) {
			e2e_lru_remove(&sc->idx, i);
			n++;
		}
		i = next;
	}
	return n;
}

static void check_entry(struct e2e_sumcheck *sc, uint32_t sender, const struct e2e_summary_entry *e,
	e2e_sumcheck_report_fn report, void *ctx)
{
	struct e2e_sumcheck_report rep;
	crypto_generichash_state h;
	uint8_t digest[E2E_DIGEST_BYTES];
	uint64_t th = topic_hash(sc, e->topic, e->topic_len);
	uint64_t n = (uint64_t)e->last - e->first + 1, found = 0;

	memset(&rep, 0, sizeof rep);
	rep.sender = sender;
	rep.run = e->run;
	rep.topic = e->topic;
	rep.topic_len = e->topic_len;
	rep.first = e->first;
	rep.last = e->last;
	crypto_generichash_init(&h, NULL, 0, sizeof digest);
	if (n > sc->idx.cap) {
		/* More seqs than we can ever hold: nothing can be confirmed, but the
		 * records it covers are accounted for (not "unsummarized"). */
		found = drop_covered(sc, sender, e->run, th, e->first, e->last);
		rep.result = E2E_SUM_UNCONFIRMED;
		rep.missing = (uint32_t)(n - found > UINT32_MAX ? UINT32_MAX : n - found);
		report(ctx, &rep);
		return;
	}
	for (uint64_t s = e->first; s <= e->last; s++) {
		uint32_t i = find(sc, sender, e->run, th, (uint32_t)s);

		if (i == E2E_LRU_NONE)
			continue;
		crypto_generichash_update(&h, sc->recs[i].d, E2E_DIGEST_BYTES);
		e2e_lru_remove(&sc->idx, i);
		found++;
	}
	crypto_generichash_final(&h, digest, sizeof digest);
	if (found == n) {
		rep.result = sodium_memcmp(digest, e->digest, sizeof digest) == 0 ?
			E2E_SUM_VERIFIED : E2E_SUM_FORGED;
	} else {
		rep.result = E2E_SUM_UNCONFIRMED;
		rep.missing = (uint32_t)(n - found);
	}
	report(ctx, &rep);
}

/* Records of @p sender that two summaries went by without covering: each
 * unsummarized, or all together unchecked when summaries went missing after
 * them. */
static void sweep(struct e2e_sumcheck *sc, uint32_t sender, uint32_t index,
	e2e_sumcheck_report_fn report, void *ctx)
{
	const struct sender_no *no = checked_of(sc, sender);
	struct e2e_sumcheck_report unchecked;
	uint32_t i = sc->idx.head;

	memset(&unchecked, 0, sizeof unchecked);
	unchecked.result = E2E_SUM_UNCHECKED;
	unchecked.sender = sender;
	while (i != E2E_LRU_NONE) {
		uint32_t next = sc->idx.nodes[i].next;
		const struct rec *r = &sc->recs[i];
		struct e2e_sumcheck_report rep;

		if (r->sender != sender || r->seen + 2 > index) {
			i = next;
			continue;
		}
		if (no && no->missed_at > r->seen) {
			if (unchecked.missing == 0 || r->seq < unchecked.first)
				unchecked.first = r->seq;
			if (unchecked.missing == 0 || r->seq > unchecked.last)
				unchecked.last = r->seq;
			unchecked.missing++;
		} else {
			memset(&rep, 0, sizeof rep);
			rep.result = E2E_SUM_UNSUMMARIZED;
			rep.sender = sender;
			rep.run = r->run;
			rep.first = rep.last = r->seq;
			report(ctx, &rep);
		}
		e2e_lru_remove(&sc->idx, i);
		i = next;
	}
	if (unchecked.missing)
		report(ctx, &unchecked);
}

uint32_t e2e_sumcheck_arrived(struct e2e_sumcheck *sc, uint32_t sender)
{
	struct sender_no *no = sc ? checked_of(sc, sender) : NULL;

	return no ? ++no->arrived : 0;
}

void e2e_sumcheck_missed(struct e2e_sumcheck *sc, uint32_t sender)
{
	struct sender_no *no = sc ? checked_of(sc, sender) : NULL;

	if (no)
		no->missed_at = no->arrived + 1;
}

void e2e_sumcheck_summary(struct e2e_sumcheck *sc, uint32_t sender, const struct e2e_ctl *m,
	uint32_t index, e2e_sumcheck_match_fn match, e2e_sumcheck_report_fn report, void *ctx)
{
	struct e2e_summary_iter it;
	struct e2e_summary_entry e;

	if (!sc || !m || m->type != E2E_CTL_SUMMARY || !report)
		return;
	e2e_summary_iter_init(&it, m);
	while (e2e_summary_entry_next(&it, &e))
		if (!match || match(ctx, e.topic, e.topic_len))
			check_entry(sc, sender, &e, report, ctx);
	/* Only a complete summary may declare records unsummarized. */
	if (m->part + 1 == m->parts && index)
		sweep(sc, sender, index, report, ctx);
}
