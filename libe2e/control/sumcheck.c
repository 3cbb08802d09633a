/*
 * Receiver side of signed summaries (protocol/SPEC.md sec. 11.6).
 *
 * Three bounded tables, all allocated at create:
 *  - records: the digest d_s of every accepted envelope, until a summary of
 *    its sender covers it (then compared, seq by seq) or two summaries went
 *    by without covering it (unsummarized);
 *  - open: seqs a checked summary listed that had not arrived, with the
 *    sender's d_s, until the receiver's window has passed them or open_ms
 *    went by: a late arrival is checked against it (arrived late, or an
 *    insider forgery) instead of being blamed on a summary that came first;
 *  - streams: per (sender, run, topic) the highest seq accepted (to close
 *    open seqs the window passed), the seqs checked summaries covered, and
 *    the seqs not kept because the record table was full (judged "not
 *    checked", never "never arrived").
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/summary.h"
#include "base/lru.h"
#include "base/topichash.h"
#include "base/wire.h"
#include "control/sumhist.h"
#include "control/sumorder.h"

struct rec {
	uint64_t th;
	uint32_t seq;
	uint32_t seen;                /* summaries of the sender arrived before this record */
	uint8_t d[E2E_DIGEST_BYTES];
	/* Held (e2e_sumcheck_hold): an envelope under a retired key, not
	 * delivered; checked: a summary covered its seq, @sd is the sender's d_s. */
	uint8_t held, checked;
	uint8_t sd[E2E_DIGEST_BYTES];
};

struct open {
	uint64_t th;
	uint64_t since_ms;
	uint32_t seq;
	uint8_t d[E2E_DIGEST_BYTES];
};

struct stream {
	uint32_t top;                 /* highest seq accepted (0: none) */
	uint32_t lo, hi;              /* seqs covered by checked entries (hi 0: none) */
	uint32_t unkept_lo, unkept_hi;   /* seqs not kept, table full (hi 0: none) */
};

struct e2e_sumcheck {
	struct e2e_sumcheck_config cfg;
	struct e2e_lru rid, oid, sid; /* records, open seqs, streams */
	struct rec *recs;
	struct open *opens;
	struct stream *streams;
	struct topichash th;
	struct e2e_sumcheck_stats st;
	struct e2e_sumorder order;    /* per sender: parts and numbers (sumorder.c) */
};

static uint64_t k1_of(uint64_t th, uint32_t seq)
{
	return th ^ ((uint64_t)seq * 0x9E3779B97F4A7C15ULL);
}

static uint64_t k2_of(uint32_t sender, uint32_t run)
{
	return (uint64_t)sender << 32 | run;
}

static struct sender_no *nos_of(struct e2e_sumcheck *sc, uint32_t sender)
{
	return e2e_sumorder_of(&sc->order, sender);
}

enum e2e_status e2e_sumcheck_create(struct e2e_sumcheck **out,
	const struct e2e_sumcheck_config *cfg)
{
	struct e2e_sumcheck *sc = NULL;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!out)
		goto out;
	*out = NULL;
	ret = E2E_ERR_NOMEM;
	if (sodium_init() < 0 || !(sc = calloc(1, sizeof *sc)))
		goto out;
	if (cfg)
		sc->cfg = *cfg;
	if (!sc->cfg.max_records) sc->cfg.max_records = 1U << 18;
	if (!sc->cfg.max_open) sc->cfg.max_open = 1U << 16;
	if (!sc->cfg.max_streams) sc->cfg.max_streams = 4096;
	if (!sc->cfg.window) sc->cfg.window = 1024;
	if (!sc->cfg.open_ms) sc->cfg.open_ms = 120000;
	sc->recs = calloc(sc->cfg.max_records, sizeof *sc->recs);
	sc->opens = calloc(sc->cfg.max_open, sizeof *sc->opens);
	sc->streams = calloc(sc->cfg.max_streams, sizeof *sc->streams);
	if (!sc->recs || !sc->opens || !sc->streams)
		goto out;
	if ((ret = e2e_lru_alloc(&sc->rid, sc->cfg.max_records)) != E2E_OK ||
	    (ret = e2e_lru_alloc(&sc->oid, sc->cfg.max_open)) != E2E_OK ||
	    (ret = e2e_lru_alloc(&sc->sid, sc->cfg.max_streams)) != E2E_OK)
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
	e2e_lru_free(&sc->rid);
	e2e_lru_free(&sc->oid);
	e2e_lru_free(&sc->sid);
	free(sc->recs);
	free(sc->opens);
	free(sc->streams);
	free(sc);
}

void e2e_sumcheck_stats(const struct e2e_sumcheck *sc, struct e2e_sumcheck_stats *st)
{
	if (!sc || !st)
		return;
	*st = sc->st;
	st->records = sc->rid.count;
	st->open = sc->oid.count;
}

static uint32_t find_rec(struct e2e_sumcheck *sc, uint64_t k2, uint64_t th, uint32_t seq)
{
	uint32_t i = e2e_lru_peek(&sc->rid, k1_of(th, seq), k2);

	/* The map key mixes topic hash and seq: confirm the fields. */
	return i != E2E_LRU_NONE && sc->recs[i].th == th && sc->recs[i].seq == seq ? i :
		E2E_LRU_NONE;
}

static uint32_t find_open(struct e2e_sumcheck *sc, uint64_t k2, uint64_t th, uint32_t seq)
{
	uint32_t i = e2e_lru_peek(&sc->oid, k1_of(th, seq), k2);

	return i != E2E_LRU_NONE && sc->opens[i].th == th && sc->opens[i].seq == seq ? i :
		E2E_LRU_NONE;
}

/* The stream's entry, created (evicting the least recently used) if new. */
static struct stream *stream_of(struct e2e_sumcheck *sc, uint64_t k2, uint64_t th)
{
	uint32_t i = e2e_lru_find(&sc->sid, th, k2);

	if (i != E2E_LRU_NONE)
		return &sc->streams[i];
	i = e2e_lru_insert(&sc->sid, th, k2);
	if (i == E2E_LRU_NONE) {
		(void)e2e_lru_evict(&sc->sid);
		sc->st.streams_evicted++;
		i = e2e_lru_insert(&sc->sid, th, k2);
	}
	memset(&sc->streams[i], 0, sizeof sc->streams[i]);
	return &sc->streams[i];
}

static int in_range(uint32_t lo, uint32_t hi, uint32_t seq)
{
	return hi != 0 && seq >= lo && seq <= hi;
}

static void widen(uint32_t *lo, uint32_t *hi, uint32_t first, uint32_t last)
{
	if (*hi == 0 || first < *lo)
		*lo = first;
	if (*hi == 0 || last > *hi)
		*hi = last;
}

static void report_one(enum e2e_sumcheck_result res, uint32_t sender, uint32_t run,
	const char *topic, size_t topic_len, uint32_t seq, e2e_sumcheck_report_fn report,
	void *ctx)
{
	struct e2e_sumcheck_report rep;

	memset(&rep, 0, sizeof rep);
	rep.result = res;
	rep.sender = sender;
	rep.run = run;
	rep.topic = topic;
	rep.topic_len = topic ? topic_len : 0;
	rep.first = rep.last = seq;
	rep.missing = 1;
	if (report)
		report(ctx, &rep);
}

void e2e_sumcheck_record(struct e2e_sumcheck *sc, uint32_t sender, uint32_t run,
	const char *topic, size_t topic_len, uint32_t seq, const uint8_t *env, size_t env_len,
	uint64_t now_ms, e2e_sumcheck_report_fn report, void *ctx)
{
	uint8_t d[E2E_DIGEST_BYTES];
	uint64_t k2 = k2_of(sender, run), th;
	struct sender_no *no;
	struct stream *x;
	uint32_t i;

	if (!sc || !topic || !env)
		return;
	no = nos_of(sc, sender);
	th = topichash(&sc->th, (const uint8_t *)topic, topic_len);
	x = stream_of(sc, k2, th);
	if (seq > x->top)
		x->top = seq;
	e2e_summary_digest(d, env, env_len);
	/* A seq a checked summary said had not arrived: judge it now. */
	i = find_open(sc, k2, th, seq);
	if (i != E2E_LRU_NONE && now_ms - sc->opens[i].since_ms >= sc->cfg.open_ms) {
		e2e_lru_remove(&sc->oid, i);   /* open too long: closed (below) */
		i = E2E_LRU_NONE;
	}
	if (i != E2E_LRU_NONE) {
		int same = sodium_memcmp(d, sc->opens[i].d, sizeof d) == 0;

		e2e_lru_remove(&sc->oid, i);
		report_one(same ? E2E_SUM_LATE : E2E_SUM_FORGED, sender, run, same ? NULL : topic,
			topic_len, seq, report, ctx);
		return;
	}
	/* Covered by a checked summary but no longer open (closed by age, or
	 * never kept): nothing left to compare it with. */
	if (in_range(x->lo, x->hi, seq)) {
		report_one(E2E_SUM_UNCHECKED, sender, run, NULL, 0, seq, report, ctx);
		return;
	}
	i = find_rec(sc, k2, th, seq);
	if (i == E2E_LRU_NONE)
		i = e2e_lru_insert(&sc->rid, k1_of(th, seq), k2);
	if (i == E2E_LRU_NONE) {
		/* Full: not kept. Its summary will say "not checked" for it. */
		widen(&x->unkept_lo, &x->unkept_hi, seq, seq);
		sc->st.not_kept++;
		return;
	}
	memset(&sc->recs[i], 0, sizeof sc->recs[i]);
	sc->recs[i].th = th;
	sc->recs[i].seq = seq;
	sc->recs[i].seen = no ? no->arrived : 0;
	memcpy(sc->recs[i].d, d, sizeof d);
}

enum e2e_sum_verdict e2e_sumcheck_verify(struct e2e_sumcheck *sc, uint32_t sender,
	uint32_t run, const char *topic, size_t topic_len, uint32_t seq, const uint8_t *env,
	size_t env_len, uint64_t now_ms, e2e_sumcheck_report_fn report, void *ctx)
{
	uint8_t d[E2E_DIGEST_BYTES];
	uint64_t k2 = k2_of(sender, run), th;
	uint32_t i, si;

	if (!sc || !topic || !env)
		return E2E_SUMV_UNKNOWN;
	th = topichash(&sc->th, (const uint8_t *)topic, topic_len);
	e2e_summary_digest(d, env, env_len);
	i = find_rec(sc, k2, th, seq);
	if (i != E2E_LRU_NONE && sc->recs[i].held) {
		if (!sc->recs[i].checked)
			return E2E_SUMV_UNKNOWN;
		return sodium_memcmp(d, sc->recs[i].sd, sizeof d) == 0 ? E2E_SUMV_VERIFIED :
			E2E_SUMV_FORGED;
	}
	/* Its summary came first (the envelope was delayed past it). */
	i = find_open(sc, k2, th, seq);
	if (i != E2E_LRU_NONE && now_ms - sc->opens[i].since_ms < sc->cfg.open_ms) {
		if (sodium_memcmp(d, sc->opens[i].d, sizeof d) != 0)
			return E2E_SUMV_FORGED;   /* the genuine one may still come */
		e2e_lru_remove(&sc->oid, i);
		report_one(E2E_SUM_LATE, sender, run, NULL, 0, seq, report, ctx);
		return E2E_SUMV_VERIFIED;
	}
	/* A checked summary covered the seq and waits for nothing there: the
	 * sender did not seal this envelope, or it came too late to tell. */
	si = e2e_lru_peek(&sc->sid, th, k2);
	if (si != E2E_LRU_NONE && in_range(sc->streams[si].lo, sc->streams[si].hi, seq))
		return E2E_SUMV_FORGED;
	return E2E_SUMV_UNKNOWN;
}

enum e2e_sum_verdict e2e_sumcheck_hold(struct e2e_sumcheck *sc, uint32_t sender,
	uint32_t run, const char *topic, size_t topic_len, uint32_t seq, const uint8_t *env,
	size_t env_len, uint64_t now_ms, e2e_sumcheck_report_fn report, void *ctx)
{
	enum e2e_sum_verdict v = e2e_sumcheck_verify(sc, sender, run, topic, topic_len, seq, env,
		env_len, now_ms, report, ctx);
	const struct sender_no *no;
	uint64_t k2 = k2_of(sender, run), th;
	uint32_t i;

	if (v != E2E_SUMV_UNKNOWN || !sc || !topic || !env)
		return v;
	no = nos_of(sc, sender);
	/* No stream entry: a held envelope moved nothing, and an insider's
	 * fresh runs must not evict genuine streams. */
	th = topichash(&sc->th, (const uint8_t *)topic, topic_len);
	i = find_rec(sc, k2, th, seq);
	if (i != E2E_LRU_NONE)
		return v;   /* another envelope with this seq is held: one record serves both */
	i = e2e_lru_insert(&sc->rid, k1_of(th, seq), k2);
	if (i == E2E_LRU_NONE) {
		/* Full: its summary lists the seq as not arrived (open), and the
		 * next e2e_sumcheck_verify finds it there. */
		sc->st.not_kept++;
		return v;
	}
	memset(&sc->recs[i], 0, sizeof sc->recs[i]);
	sc->recs[i].th = th;
	sc->recs[i].seq = seq;
	sc->recs[i].seen = no ? no->arrived : 0;
	sc->recs[i].held = 1;
	e2e_summary_digest(sc->recs[i].d, env, env_len);
	return v;
}

static void check_entry(struct e2e_sumcheck *sc, uint32_t sender,
	const struct e2e_summary_entry *e, uint64_t now_ms, e2e_sumcheck_report_fn report,
	void *ctx)
{
	uint64_t k2 = k2_of(sender, e->run);
	uint64_t th = topichash(&sc->th, (const uint8_t *)e->topic, e->topic_len);
	struct stream *x = stream_of(sc, k2, th);
	struct e2e_sumcheck_report rep;
	uint32_t missing = 0, forged = 0, unchecked = 0, ulo = 0, uhi = 0;
	uint32_t s = e->first;

	for (const uint8_t *ds = e->digests;; ds += E2E_DIGEST_BYTES, s++) {
		uint32_t i = find_rec(sc, k2, th, s);

		if (i != E2E_LRU_NONE && sc->recs[i].held) {
			/* Not delivered: the holder asks e2e_sumcheck_verify, which
			 * compares each held envelope (genuine or not) with @sd. */
			sc->recs[i].checked = 1;
			memcpy(sc->recs[i].sd, ds, E2E_DIGEST_BYTES);
		} else if (i != E2E_LRU_NONE) {
			if (sodium_memcmp(sc->recs[i].d, ds, E2E_DIGEST_BYTES) != 0) {
				forged++;
				report_one(E2E_SUM_FORGED, sender, e->run, e->topic, e->topic_len, s,
					report, ctx);
			}
			e2e_lru_remove(&sc->rid, i);
		} else if (in_range(x->unkept_lo, x->unkept_hi, s)) {
			widen(&ulo, &uhi, s, s);
			unchecked++;
		} else if (find_open(sc, k2, th, s) == E2E_LRU_NONE && !in_range(x->lo, x->hi, s)) {
			/* Not arrived (yet): keep its d_s for a late arrival. */
			i = e2e_lru_insert(&sc->oid, k1_of(th, s), k2);
			if (i == E2E_LRU_NONE) {
				sc->st.open_full++;
				widen(&ulo, &uhi, s, s);
				unchecked++;
			} else {
				sc->opens[i].th = th;
				sc->opens[i].seq = s;
				sc->opens[i].since_ms = now_ms;
				memcpy(sc->opens[i].d, ds, E2E_DIGEST_BYTES);
				missing++;
			}
		}
		if (s == e->last)
			break;
	}
	widen(&x->lo, &x->hi, e->first, e->last);
	memset(&rep, 0, sizeof rep);
	rep.sender = sender;
	rep.run = e->run;
	rep.topic = e->topic;
	rep.topic_len = e->topic_len;
	rep.first = e->first;
	rep.last = e->last;
	if (missing) {
		rep.result = E2E_SUM_UNCONFIRMED;
		rep.missing = missing;
		report(ctx, &rep);
	}
	if (unchecked) {
		rep.result = E2E_SUM_UNCHECKED;
		rep.first = ulo;
		rep.last = uhi;
		rep.missing = unchecked;
		report(ctx, &rep);
	}
	if (!missing && !unchecked && !forged) {
		rep.result = E2E_SUM_VERIFIED;
		report(ctx, &rep);
	}
}

/* Open seqs that can no longer arrive (the window moved W past them) or
 * waited open_ms: they stay what was reported, never arrived. */
static void close_open(struct e2e_sumcheck *sc, uint64_t now_ms)
{
	uint32_t i = sc->oid.head;

	while (i != E2E_LRU_NONE) {
		uint32_t next = sc->oid.nodes[i].next;
		const struct open *o = &sc->opens[i];
		uint32_t si = e2e_lru_peek(&sc->sid, o->th, sc->oid.nodes[i].k2);
		const struct stream *x = si == E2E_LRU_NONE ? NULL : &sc->streams[si];

		if (now_ms - o->since_ms >= sc->cfg.open_ms ||
		    (x && x->top > o->seq && x->top - o->seq >= sc->cfg.window))
			e2e_lru_remove(&sc->oid, i);
		i = next;
	}
}

/* Records of @p sender that two summaries went by without covering: each
 * unsummarized, or all together unchecked when summaries went missing after
 * them. */
static void sweep(struct e2e_sumcheck *sc, uint32_t sender, uint32_t index,
	e2e_sumcheck_report_fn report, void *ctx)
{
	const struct sender_no *no = nos_of(sc, sender);
	struct e2e_sumcheck_report unchecked;
	uint32_t i = sc->rid.head;

	memset(&unchecked, 0, sizeof unchecked);
	unchecked.result = E2E_SUM_UNCHECKED;
	unchecked.sender = sender;
	while (i != E2E_LRU_NONE) {
		uint32_t next = sc->rid.nodes[i].next;
		const struct rec *r = &sc->recs[i];
		uint64_t k2 = sc->rid.nodes[i].k2;

		if ((uint32_t)(k2 >> 32) != sender || r->seen + 2 > index) {
			i = next;
			continue;
		}
		if (r->held) {
			/* The holder judges it (its own count of summaries); a
			 * checked one stays two more for e2e_sumcheck_verify. */
			if (!r->checked || r->seen + 4 <= index)
				e2e_lru_remove(&sc->rid, i);
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
			report_one(E2E_SUM_UNSUMMARIZED, sender, (uint32_t)k2, NULL, 0, r->seq,
				report, ctx);
		}
		e2e_lru_remove(&sc->rid, i);
		i = next;
	}
	if (unchecked.missing)
		report(ctx, &unchecked);
}

int e2e_sumcheck_accept(struct e2e_sumcheck *sc, uint32_t sender, const struct e2e_ctl *m,
	struct e2e_sumcheck_part *out)
{
	if (!out)
		return -1;
	memset(out, 0, sizeof *out);
	if (!sc)
		return -1;
	return e2e_sumorder_accept(&sc->order, sender, m, out);
}

uint32_t e2e_sumcheck_arrived(struct e2e_sumcheck *sc, uint32_t sender)
{
	struct sender_no *no = sc ? nos_of(sc, sender) : NULL;

	return no ? ++no->arrived : 0;
}

void e2e_sumcheck_missed(struct e2e_sumcheck *sc, uint32_t sender)
{
	struct sender_no *no = sc ? nos_of(sc, sender) : NULL;

	if (no)
		no->missed_at = no->arrived + 1;
}

struct arrival {
	struct e2e_sumcheck *sc;
	uint32_t sender;
};

/* For the history (sumhist.c): did this seq arrive? Not kept, or judged
 * by a summary already: cannot tell, so never counted lost. */
static int arrived(void *actx, uint32_t run, const char *topic, size_t topic_len, uint32_t seq)
{
	const struct arrival *a = actx;
	struct e2e_sumcheck *sc = a->sc;
	uint64_t k2 = k2_of(a->sender, run);
	uint64_t th = topichash(&sc->th, (const uint8_t *)topic, topic_len);
	uint32_t si = e2e_lru_peek(&sc->sid, th, k2);
	const struct stream *x = si == E2E_LRU_NONE ? NULL : &sc->streams[si];

	return find_rec(sc, k2, th, seq) != E2E_LRU_NONE ||
	       (x && (in_range(x->unkept_lo, x->unkept_hi, seq) || in_range(x->lo, x->hi, seq)));
}

void e2e_sumcheck_summary(struct e2e_sumcheck *sc, uint32_t sender, const struct e2e_ctl *m,
	uint32_t index, uint64_t now_ms, e2e_sumcheck_match_fn match,
	e2e_sumcheck_report_fn report, void *ctx)
{
	struct e2e_summary_iter it;
	struct e2e_summary_entry e;
	struct sender_no *no;

	if (!sc || !m || m->type != E2E_CTL_SUMMARY || !report)
		return;
	close_open(sc, now_ms);
	no = nos_of(sc, sender);
	for (uint32_t k = 0; no && m->part == 0 && k < E2E_SUMORDER_HIST_SLOTS; k++) {
		struct arrival a = { sc, sender };

		if (!no->hist[k].for_ || no->hist[k].for_ != m->number ||
		    no->hist[k].boot != m->boot)
			continue;
		/* Summaries lost before this one: what their ranges held that
		 * never arrived, per topic (the rest stays "missing"). */
		(void)e2e_sumhist_check(m, sender, no->hist[k].from, no->hist[k].to, match,
			arrived, &a, report, ctx);
		no->hist[k].for_ = 0;
	}
	e2e_summary_iter_init(&it, m);
	while (e2e_summary_entry_next(&it, &e))
		if (!match || match(ctx, e.topic, e.topic_len))
			check_entry(sc, sender, &e, now_ms, report, ctx);
	/* Only a complete summary may declare records unsummarized. */
	if (index)
		sweep(sc, sender, index, report, ctx);
}
