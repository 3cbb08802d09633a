/*
 * Receiver context (protocol/SPEC.md sec. 5.4): per message
 * parse -> scope of the topic -> key -> stream -> window check -> AEAD ->
 * window update.
 * Nothing is allocated after e2e_rx_create, and only authenticated
 * messages may create, evict or move a stream.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "envelope/keyring_impl.h"
#include "envelope/rx_impl.h"
#include "envelope/window_impl.h"
#include "base/wire.h"

enum e2e_status e2e_rx_create(struct e2e_rx **out, const struct e2e_rx_config *cfg)
{
	struct e2e_rx *rx = NULL;
	enum e2e_status ret = E2E_ERR_ARG;
	uint32_t window, streams, floors;

	if (!out)
		goto out;
	*out = NULL;
	window = cfg && cfg->window ? cfg->window : E2E_WINDOW_DEFAULT;
	streams = cfg && cfg->max_streams ? cfg->max_streams : E2E_RX_STREAMS_DEFAULT;
	floors = cfg && cfg->max_floors ? cfg->max_floors : E2E_RX_FLOORS_DEFAULT;
	if (window < E2E_WINDOW_MIN || window > E2E_WINDOW_MAX || window % 64U ||
	    streams > (1U << 24) || floors > (1U << 24))
		goto out;
	ret = E2E_ERR_CRYPTO;
	if (sodium_init() < 0)
		goto out;
	ret = E2E_ERR_NOMEM;
	rx = calloc(1, sizeof *rx);
	if (!rx)
		goto out;
	rx->window = window;
	rx->max_streams = streams;
	rx->st = calloc(streams, sizeof *rx->st);
	rx->bits = calloc((size_t)streams * E2E_WINDOW_WORDS(window), sizeof *rx->bits);
	rx->gone = calloc(streams, sizeof *rx->gone);
	rx->memo = calloc(RX_SCOPE_MEMOS, sizeof *rx->memo);
	rx->max_floors = floors;
	rx->floors = calloc(floors, sizeof *rx->floors);
	if (!rx->st || !rx->bits || !rx->gone || !rx->floors ||
	    !rx->memo)
		goto out;
	ret = e2e_lru_alloc(&rx->streams, streams);
	if (ret != E2E_OK)
		goto out;
	ret = e2e_lru_alloc(&rx->gone_idx, streams);
	if (ret != E2E_OK)
		goto out;
	ret = e2e_lru_alloc(&rx->floor_idx, floors);
	if (ret != E2E_OK)
		goto out;
	if (cfg && cfg->hash_key)
		memcpy(rx->th.key, cfg->hash_key, sizeof rx->th.key);
	else
		randombytes_buf(rx->th.key, sizeof rx->th.key);
	*out = rx;
	rx = NULL;
	ret = E2E_OK;
out:
	e2e_rx_destroy(rx);
	return ret;
}

void e2e_rx_destroy(struct e2e_rx *rx)
{
	if (!rx)
		return;
	e2e_lru_free(&rx->streams);
	e2e_lru_free(&rx->gone_idx);
	e2e_lru_free(&rx->floor_idx);
	free(rx->st);
	free(rx->bits);
	free(rx->gone);
	free(rx->floors);
	free(rx->memo);
	free(rx);
}

void e2e_rx_reset(struct e2e_rx *rx)
{
	e2e_lru_clear(&rx->streams);
	e2e_lru_clear(&rx->gone_idx);
	e2e_lru_clear(&rx->floor_idx);
	memset(rx->verdicts, 0, sizeof rx->verdicts);
	rx->gap_total = rx->evicted = rx->lost_evicted = 0;
	rx->floors_dropped = rx->unfolded = 0;
}

/* The floor to give up when the table is full: the least recently raised
 * one of a key no longer held (its envelopes are UNKNOWN_KEY anyway), else
 * the least recently raised one, and that loss is counted (SPEC 5.8). */
static uint32_t floor_victim(struct e2e_rx *rx)
{
	for (uint32_t i = rx->floor_idx.tail; rx->kr && i != E2E_LRU_NONE;
	     i = rx->floor_idx.nodes[i].prev) {
		const struct rx_floor *f = &rx->floors[i];
		struct e2e_keyid id = { f->sender, f->kc.scope, f->kc.epoch };

		if (!e2e_keyring_lookup(rx->kr, &id, rx->now_ms, NULL))
			return i;
	}
	rx->floors_dropped++;
	return rx->floor_idx.tail;
}

void e2e_rx_fold(struct e2e_rx *rx, uint32_t sender, const struct rx_keyctr *kc)
{
	uint64_t k1 = rx_fk1(kc->scope, kc->epoch);
	uint32_t f;

	if (kc->ctr == 0) {
		rx->unfolded++;   /* key never known (version 1 file): nothing to keep */
		return;
	}
	f = e2e_lru_find(&rx->floor_idx, k1, sender);
	if (f != E2E_LRU_NONE) {
		if (rx->floors[f].kc.ctr < kc->ctr)
			rx->floors[f].kc.ctr = kc->ctr;
		return;
	}
	f = e2e_lru_insert(&rx->floor_idx, k1, sender);
	if (f == E2E_LRU_NONE) {
		e2e_lru_remove(&rx->floor_idx, floor_victim(rx));
		f = e2e_lru_insert(&rx->floor_idx, k1, sender);
	}
	rx->floors[f] = (struct rx_floor){ sender, *kc };
}

void e2e_rx_remember(struct e2e_rx *rx, uint32_t sender, uint32_t run, uint64_t th,
	uint64_t top, const struct rx_keyctr *kc)
{
	uint64_t k2 = rx_k2(sender, run);
	uint32_t g = e2e_lru_find(&rx->gone_idx, th, k2);

	if (g == E2E_LRU_NONE) {
		g = e2e_lru_insert(&rx->gone_idx, th, k2);
		if (g == E2E_LRU_NONE) {
			/* Bounded: the oldest memory goes, its counter into its key's floor. */
			g = e2e_lru_evict(&rx->gone_idx);
			e2e_rx_fold(rx, rx->gone[g].sender, &rx->gone[g].kc);
			g = e2e_lru_insert(&rx->gone_idx, th, k2);
		}
	}
	rx->gone[g] = (struct rx_gone){ sender, run, th, top, *kc };
}

uint32_t e2e_rx_track(struct e2e_rx *rx, uint32_t sender, uint32_t run, uint64_t th)
{
	uint32_t i = e2e_lru_insert(&rx->streams, th, rx_k2(sender, run));

	if (i == E2E_LRU_NONE) {
		struct rx_stream *old;
		uint64_t pending, lost;

		i = e2e_lru_evict(&rx->streams);
		old = &rx->st[i];
		/* Its unresolved holes can no longer arrive: count them lost. */
		e2e_window_losses(&old->w, &pending, &lost);
		rx->lost_evicted += pending + lost;
		rx->evicted++;
		e2e_rx_remember(rx, old->sender, old->run, old->topic_hash, old->w.top, &old->kc);
		i = e2e_lru_insert(&rx->streams, th, rx_k2(sender, run));
	}
	rx->st[i].sender = sender;
	rx->st[i].run = run;
	rx->st[i].topic_hash = th;
	memset(&rx->st[i].kc, 0, sizeof rx->st[i].kc);
	rx->st[i].low = 0;
	e2e_window_reset(&rx->st[i].w, rx_bits(rx, i), rx->window);
	return i;
}

/* A forgotten stream resumes above its remembered top; everything at or
 * below it reads as seen, so an old message is never accepted again. */
static void resume_window(struct e2e_window *w, uint64_t top)
{
	uint32_t nwords = E2E_WINDOW_WORDS(w->size);
	uint32_t shift = (uint32_t)(top & 63U);

	memset(w->bits, 0xff, (size_t)nwords * sizeof *w->bits);
	e2e_window_set_top(w, top);
	w->bits[w->top_pos] = shift == 63U ? ~(uint64_t)0 :
		((uint64_t)1 << (shift + 1U)) - 1U;
	w->base = top + 1;
	w->received = 0;
}

/* The replay floor of the header's key; 0 if none. */
static uint64_t key_floor(const struct e2e_rx *rx, const struct e2e_header *h)
{
	uint32_t f = e2e_lru_peek(&rx->floor_idx, rx_fk1(h->scope, h->epoch), h->sender);

	return f == E2E_LRU_NONE ? 0 : rx->floors[f].kc.ctr;
}

static enum e2e_verdict classify(struct e2e_rx *rx, const struct e2e_header *h,
	uint64_t th, uint32_t *idx, struct e2e_rx_result *res)
{
	uint64_t k2 = rx_k2(h->sender, h->run);
	/* Peek only: an unauthenticated message must not refresh a stream. */
	uint32_t i = e2e_lru_peek(&rx->streams, th, k2), g;

	*idx = i;
	if (i != E2E_LRU_NONE) {
		enum e2e_verdict v = e2e_window_check(&rx->st[i].w, h->seq, &res->gap);

		if (e2e_verdict_delivers(v) && h->counter <= rx->st[i].low) {
			res->gap = 0;
			return E2E_V_FORGOTTEN;
		}
		return v;
	}
	g = e2e_lru_peek(&rx->gone_idx, th, k2);
	if (g == E2E_LRU_NONE) {
		uint64_t floor = key_floor(rx, h);

		/* Neither tracked nor remembered: at or below its key's floor it
		 * may be a replay of a stream forgotten for good (5.8). */
		if (h->counter <= floor)
			return E2E_V_FORGOTTEN;
		res->flags |= E2E_RX_NEW_STREAM;
		return E2E_V_OK;
	}
	if (h->seq <= rx->gone[g].top)
		return E2E_V_FORGOTTEN;
	res->gap = h->seq - rx->gone[g].top - 1;
	return res->gap ? E2E_V_GAP : E2E_V_OK;
}

/*
 * Keep the stream's key and highest counter, what its floor will be once
 * it is forgotten for good. One stream has one key (a sender starts a new
 * run at every rotation, 5.1); should another key ever appear, the old
 * key's counter becomes a floor at once, which only makes floors higher.
 */
static void note_counter(struct e2e_rx *rx, struct rx_stream *s, const struct e2e_header *h)
{
	if (s->kc.ctr && (s->kc.scope != h->scope || s->kc.epoch != h->epoch)) {
		e2e_rx_fold(rx, s->sender, &s->kc);
		s->kc.ctr = 0;
	}
	s->kc.scope = h->scope;
	s->kc.epoch = h->epoch;
	if (h->counter > s->kc.ctr)
		s->kc.ctr = h->counter;
}

/*
 * SPEC 5.4 step 2 through the memo: E2E_OK and *scope, E2E_ERR_NOT_FOUND (no
 * rule matches: FORGED) or E2E_ERR_UNKNOWN_KEY (no map of this sender yet,
 * never remembered: the map may arrive any moment).
 */
static enum e2e_status topic_scope(struct e2e_rx *rx, const struct e2e_keyring *kr,
	uint32_t sender, uint64_t th, const uint8_t *topic, size_t topic_len, uint8_t *scope)
{
	struct rx_scope_memo *m = &rx->memo[th % RX_SCOPE_MEMOS];
	uint64_t gen = e2e_keyring_generation(kr);
	enum e2e_status st;

	if (m->len == topic_len && m->kr == kr && m->gen == gen && m->sender == sender &&
	    memcmp(m->topic, topic, topic_len) == 0) {
		*scope = m->scope;
		return m->found ? E2E_OK : E2E_ERR_NOT_FOUND;
	}
	st = e2e_keyring_resolve(kr, sender, topic, topic_len, scope);
	if ((st == E2E_OK || st == E2E_ERR_NOT_FOUND) && topic_len <= RX_SCOPE_TOPIC) {
		m->kr = kr;
		m->gen = gen;
		m->sender = sender;
		m->len = (uint16_t)topic_len;
		m->found = st == E2E_OK;
		m->scope = st == E2E_OK ? *scope : 0;
		memcpy(m->topic, topic, topic_len);
	}
	return st;
}

/* Suite 0x02: the sender's own signature, not just the shared key. */
static int signed_by_sender(const struct e2e_keyring *kr, const struct e2e_rx_result *res,
	const uint8_t *topic, size_t topic_len, const uint8_t *env, size_t env_len)
{
	const uint8_t *pk = e2e_keyring_signer(kr, res->hdr.sender);

	return pk && e2e_envelope_verify(env, env_len, topic, topic_len, pk) == E2E_OK;
}

static enum e2e_status open_env(struct e2e_rx *rx, const struct e2e_keyring *kr,
	uint8_t *pt, size_t pt_cap, struct e2e_rx_result *res,
	const uint8_t *topic, size_t topic_len,
	const uint8_t *env, size_t env_len, uint64_t now_ms, int confirmed)
{
	struct e2e_keyid id;
	const uint8_t *key;
	uint8_t kflags = 0, scope = 0;
	enum e2e_status st;
	uint64_t th;
	uint32_t i;
	enum e2e_verdict v;

	if (!rx || !res || (!pt && pt_cap) || !topic || topic_len == 0 ||
	    topic_len > E2E_TOPIC_MAX || (!env && env_len))
		return E2E_ERR_ARG;
	memset(res, 0, sizeof *res);

	if (e2e_header_parse(&res->hdr, env, env_len) != E2E_OK) {
		v = E2E_V_MALFORMED;
		goto done;
	}
	/*
	 * The topic decides the scope, by the sender's own map (SPEC 5.4 step 2):
	 * a holder of another scope's key (an insider) cannot seal for this
	 * topic, whatever scope byte it writes. No map yet: a key fetch brings it.
	 */
	th = topichash(&rx->th, topic, topic_len);
	st = kr ? topic_scope(rx, kr, res->hdr.sender, th, topic, topic_len, &scope) :
		E2E_ERR_UNKNOWN_KEY;
	if (st == E2E_ERR_UNKNOWN_KEY) {
		v = E2E_V_UNKNOWN_KEY;
		goto done;
	}
	if (st != E2E_OK || scope != res->hdr.scope) {
		v = E2E_V_FORGED;
		res->flags |= E2E_RX_SCOPE_MISMATCH;
		goto done;
	}
	id.sender = res->hdr.sender;
	id.scope = res->hdr.scope;
	id.epoch = res->hdr.epoch;
	key = e2e_keyring_lookup(kr, &id, now_ms, &kflags);
	if (!key) {
		v = E2E_V_UNKNOWN_KEY;
		goto done;
	}
	/* A signed scope: the shared key alone (an insider) must not suffice. */
	if ((kflags & E2E_KEYRING_SIGNED) && res->hdr.suite != E2E_SUITE_V1_SIGNED) {
		v = E2E_V_FORGED;
		goto done;
	}
	if (pt_cap < env_len - e2e_suite_overhead(res->hdr.suite))
		return E2E_ERR_BUFFER;

	v = classify(rx, &res->hdr, th, &i, res);
	if (!e2e_verdict_delivers(v) && v != E2E_V_FORGOTTEN)
		goto done;  /* DUPLICATE, TOO_OLD: decided before any crypto */

	if (e2e_envelope_open(pt, pt_cap, &res->pt_len, key, topic, topic_len,
			env, env_len) != E2E_OK ||
	    (res->hdr.suite == E2E_SUITE_V1_SIGNED && !signed_by_sender(kr, res, topic,
		    topic_len, env, env_len))) {
		/* The AEAD (cheap) went first; a signature costs ~40 us. */
		if (res->pt_len)
			sodium_memzero(pt, res->pt_len);
		res->pt_len = 0;
		v = E2E_V_FORGED;
		res->gap = 0;
		res->flags = 0;
		goto done;
	}
	if (v == E2E_V_FORGOTTEN) {
		sodium_memzero(pt, res->pt_len);
		res->pt_len = 0;
		goto done;
	}
	/*
	 * A retired key (SPEC 11.5) may be held by a revoked member: authentic
	 * under it proves nothing until the sender's summary lists this very
	 * envelope. Not delivered, and the window does not move, so a forgery
	 * cannot make the genuine envelope with its seq a DUPLICATE.
	 */
	if ((kflags & E2E_KEYRING_RETIRED) && !confirmed) {
		sodium_memzero(pt, res->pt_len);
		res->pt_len = 0;
		res->gap = 0;
		res->flags = E2E_RX_RETIRED;
		v = E2E_V_UNKNOWN_KEY;
		goto done;
	}
	if (kflags & E2E_KEYRING_NEXT)
		res->flags |= E2E_RX_NEXT;   /* the caller promotes the key */
	rx->kr = kr;   /* for floor_victim, while tracking may fold */
	rx->now_ms = now_ms;
	if (i == E2E_LRU_NONE) {
		uint32_t g = e2e_lru_peek(&rx->gone_idx, th, rx_k2(res->hdr.sender, res->hdr.run));
		struct rx_gone gone = { 0 };
		uint64_t low;

		/* Take it out now: tracking may evict and overwrite the gone list,
		 * and a resumed stream is tracked, no longer remembered (5.8). */
		if (g != E2E_LRU_NONE) {
			gone = rx->gone[g];
			e2e_lru_remove(&rx->gone_idx, g);
		}
		/* A fresh stream refuses what its key's floor covers (classify
		 * checked this message against the same value). A resumed one
		 * refuses every seq up to the remembered top instead. */
		low = gone.top ? 0 : key_floor(rx, &res->hdr);

		i = e2e_rx_track(rx, res->hdr.sender, res->hdr.run, th);
		rx->st[i].low = low;
		if (gone.top) {
			resume_window(&rx->st[i].w, gone.top);
			rx->st[i].kc = gone.kc;
		}
	} else {
		e2e_lru_touch(&rx->streams, i);   /* authentic: now it counts as used */
	}
	note_counter(rx, &rx->st[i], &res->hdr);
	rx->kr = NULL;
	e2e_window_update(&rx->st[i].w, res->hdr.seq);
	if (v == E2E_V_GAP)
		rx->gap_total += res->gap;
done:
	res->verdict = v;
	rx->verdicts[v]++;
	return E2E_OK;
}

enum e2e_status e2e_rx_open(struct e2e_rx *rx, const struct e2e_keyring *kr,
	uint8_t *pt, size_t pt_cap, struct e2e_rx_result *res,
	const uint8_t *topic, size_t topic_len,
	const uint8_t *env, size_t env_len, uint64_t now_ms)
{
	return open_env(rx, kr, pt, pt_cap, res, topic, topic_len, env, env_len, now_ms, 0);
}

enum e2e_status e2e_rx_open_confirmed(struct e2e_rx *rx, const struct e2e_keyring *kr,
	uint8_t *pt, size_t pt_cap, struct e2e_rx_result *res,
	const uint8_t *topic, size_t topic_len,
	const uint8_t *env, size_t env_len, uint64_t now_ms)
{
	return open_env(rx, kr, pt, pt_cap, res, topic, topic_len, env, env_len, now_ms, 1);
}

void e2e_rx_stats(const struct e2e_rx *rx, struct e2e_rx_stats *st)
{
	if (!rx || !st)
		return;
	memset(st, 0, sizeof *st);
	memcpy(st->verdicts, rx->verdicts, sizeof st->verdicts);
	st->gap_total = rx->gap_total;
	st->evicted = rx->evicted;
	st->streams = rx->streams.count;
	st->lost = rx->lost_evicted;
	st->floors = rx->floor_idx.count;
	st->floors_dropped = rx->floors_dropped + rx->unfolded;
	for (uint32_t i = rx->streams.head; i != E2E_LRU_NONE; i = rx->streams.nodes[i].next) {
		uint64_t pending, lost;

		e2e_window_losses(&rx->st[i].w, &pending, &lost);
		st->pending += pending;
		st->lost += lost;
	}
}
