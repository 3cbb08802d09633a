/*
 * The sealing core of a sender; see e2e/sender.h. Memory only: topic to
 * scope, the scope's tx, AEAD, summaries, the key service's callbacks,
 * announcements, and the plan/apply halves of the I/O hand-off. Every file
 * of the state directory is statedir.c's (docs/architecture.md).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/clock.h"
#include "sender/fleet.h"
#include "sender/sender_impl.h"
#include "state/fileio.h"
#include "control/sumhist.h"

static enum e2e_status on_enrolled(void *ctx, const struct e2e_public *who, uint8_t scopes[32])
{
	struct e2e_sender *s = ctx;
	const struct e2e_enroll_entry *e = e2e_enroll_find_key(s->enrolled, who->sign_pk);

	/* The request must carry the enrolled X25519 key too. */
	if (!e || sodium_memcmp(e->pub.dh_pk, who->dh_pk, E2E_DH_BYTES) != 0)
		return E2E_ERR_NOT_FOUND;
	if (e->revoked)
		return E2E_ERR_PERM;
	memcpy(scopes, e->scopes, E2E_SCOPE_BITMAP_BYTES);
	return E2E_OK;
}

static enum e2e_status on_map(void *ctx, struct e2e_ctl_map *map)
{
	struct e2e_sender *s = ctx;

	map->summary_interval_ms = s->cfg.no_summaries ? 0 : s->cfg.summary_ms;
	e2e_nextkey_refresh(s, s->cfg.clock_ms(), &map->refresh_from_ms, &map->refresh_by_ms);
	map->nrules = s->nrules;
	map->rules = s->rules;
	return E2E_OK;
}

static uint8_t on_keys(void *ctx, uint8_t scope, struct e2e_ctl_key *out, uint8_t cap,
	uint64_t now_ms)
{
	struct e2e_sender *s = ctx;
	uint32_t n = e2e_keystore_count(s->keys);
	uint8_t k = 0;

	/* The current key, every key still in its grace period and the keys
	 * made ahead (SPEC 11.5), in epoch order: a cap drops the last ahead. */
	for (uint32_t i = 0; i < n && k < cap; i++) {
		const struct e2e_keystore_entry *e = e2e_keystore_at(s->keys, i);

		if (e->scope != scope || (e->not_after_ms && e->not_after_ms < now_ms))
			continue;
		out[k].scope = e->scope;
		out[k].epoch = e->epoch;
		out[k].not_after_ms = e->not_after_ms;
		/* Each key in the mode it was made in: its envelopes all are. */
		out[k].flags = (uint8_t)((e->flags & E2E_KEYSTORE_SIGNED ? E2E_KEY_SIGNED : 0) |
			(e->flags & E2E_KEYSTORE_NEXT ? E2E_KEY_NEXT : 0));
		/* A key ahead: the time it becomes current, in the same field. */
		if (e->flags & E2E_KEYSTORE_NEXT)
			out[k].not_after_ms = e->created_ms;
		memcpy(out[k].key, e->key, E2E_KEY_BYTES);
		k++;
	}
	return k;
}

void e2e_sender_set_policy(struct e2e_sender *s, uint64_t grace_ms, uint64_t max_age_ms,
	uint64_t max_messages, uint32_t summary_ms)
{
	s->cfg.grace_ms = grace_ms ? grace_ms : 24ULL * 3600 * 1000;
	s->cfg.max_age_ms = max_age_ms;
	s->cfg.max_messages = max_messages;
	/* Summaries stay off if they were off: the tables exist only when on. */
	if (!s->cfg.no_summaries)
		s->cfg.summary_ms = summary_ms ? summary_ms : 10000;
}

enum e2e_status e2e_sender_open(struct e2e_sender **out, const struct e2e_sender_config *cfg)
{
	struct e2e_sender *s = NULL;
	struct e2e_keysvc_config kc;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!out || !cfg || !cfg->dir)
		goto out;
	*out = NULL;
	ret = E2E_ERR_NOMEM;
	s = calloc(1, sizeof *s);
	if (!s)
		goto out;
	s->cfg = *cfg;
	s->owner = -1;
	if (!s->cfg.grace_ms)
		s->cfg.grace_ms = 24ULL * 3600 * 1000;
	if (!s->cfg.clock_ms)
		s->cfg.clock_ms = e2e_now_ms;
	snprintf(s->control_topic, sizeof s->control_topic, "%s",
		cfg->control_topic ? cfg->control_topic : E2E_CTL_TOPIC_DEFAULT);
	/* The files: directory lock, identity, scopes, enrolled, keys. */
	ret = e2e_statedir_open(s);
	if (ret == E2E_OK)
		ret = e2e_fleet_open(s, &s->fleet);
	if (ret != E2E_OK)
		goto out;
	memset(&kc, 0, sizeof kc);
	e2e_fleet_keysvc(&kc);
	kc.identity = &s->id;
	kc.enrolled = on_enrolled;
	kc.keys = on_keys;
	kc.map = on_map;
	kc.ctx = s;
	ret = e2e_keysvc_create(&s->svc, &kc);
	if (ret != E2E_OK)
		goto out;
	if (!cfg->no_summaries) {
		if (!s->cfg.summary_ms)
			s->cfg.summary_ms = 10000;
		/* 2^18 digests: 10,000 msg/s for 26 s, beyond the default
		 * interval; a fuller interval is emitted early. */
		if ((ret = e2e_summary_create(&s->sum_cur, 4096, 1U << 20, 1U << 18)) != E2E_OK ||
		    (ret = e2e_summary_create(&s->sum_ready, 4096, 1U << 20, 1U << 18)) != E2E_OK)
			goto out;
		s->sum_last_ms = s->cfg.clock_ms();
	}
	*out = s;
	s = NULL;
out:
	e2e_sender_close(s);
	return ret;
}

void e2e_sender_close(struct e2e_sender *s)
{
	if (!s)
		return;
	for (unsigned sc = 0; sc < E2E_SCOPES_MAX; sc++)
		e2e_sender_drop_tx(s, (uint8_t)sc);
	e2e_keysvc_destroy(s->svc);
	e2e_fleet_close(s->fleet);
	e2e_summary_destroy(s->sum_cur);
	e2e_summary_destroy(s->sum_ready);
	e2e_keystore_free(s->keys);
	e2e_enroll_free(s->enrolled);
	free(s->scopes);
	free(s->rules);
	e2e_identity_destroy(&s->id);
	e2e_statedir_close(s);
	free(s);
}

uint32_t e2e_sender_self(const struct e2e_sender *s)
{
	return s->self;
}

const struct e2e_public *e2e_sender_public(const struct e2e_sender *s)
{
	return &s->id.pub;
}


static int reserved_topic(const struct e2e_sender *s, const char *t, size_t len)
{
	size_t cl = strlen(s->control_topic), kl = sizeof E2E_CTL_REPLY_PREFIX - 1;

	return (len >= cl && memcmp(t, s->control_topic, cl) == 0 && (len == cl || t[cl] == '/')) ||
	       (len >= kl && memcmp(t, E2E_CTL_REPLY_PREFIX, kl) == 0);
}

/* Record a sealed envelope for the next summary. */
static void summarize(struct e2e_sender *s, const char *topic, size_t topic_len,
	const uint8_t *env, size_t len)
{
	struct e2e_header h;

	if (e2e_header_parse(&h, env, len) != E2E_OK)
		return;
	if (e2e_summary_add(s->sum_cur, h.run, topic, topic_len, h.seq, env, len) == E2E_OK)
		return;
	/* cur is full: hand it over early if ready is free, else give up on this one. */
	if (!s->ready_due) {
		struct e2e_summary *t = s->sum_ready;

		s->sum_ready = s->sum_cur;
		s->sum_cur = t;
		s->ready_due = 1;
		s->ready_part = 0;
		if (e2e_summary_add(s->sum_cur, h.run, topic, topic_len, h.seq, env, len) == E2E_OK)
			return;
	}
	s->unsummarized++;
}

static int below_low_water(const struct e2e_sender *s, const struct e2e_tx *tx)
{
	struct e2e_tx_stats ts;
	uint64_t limit = e2e_sender_tx_limit(s);

	e2e_tx_stats(tx, &ts);
	return ts.counter >= limit || limit - ts.counter <= e2e_sender_low_water(s);
}

static enum e2e_status tx_seal(struct e2e_tx *tx, int alone, uint8_t *out, size_t cap,
	size_t *out_len, const char *topic, size_t topic_len, const uint8_t *pt, size_t pt_len)
{
	return (alone ? e2e_tx_seal_alone : e2e_tx_seal)(tx, out, cap, out_len,
		(const uint8_t *)topic, topic_len, pt, pt_len);
}

/*
 * The sealing core: memory only, never a file. E2E_ERR_RESERVE when the
 * scope has no tx for its current key or the durable reservation is used
 * up, E2E_ERR_EXHAUSTED when the key reached its message limit: both are
 * work for the I/O side (*scope says which scope).
 */
static enum e2e_status seal_core(struct e2e_sender *s, int will, uint8_t *out, size_t cap,
	size_t *out_len, const char *topic, size_t topic_len, const uint8_t *pt, size_t pt_len,
	uint8_t *scope)
{
	const struct e2e_keystore_entry *cur;
	struct e2e_tx *tx;
	enum e2e_status st;

	if (!s || !topic)
		return E2E_ERR_ARG;
	if (reserved_topic(s, topic, topic_len))
		return E2E_ERR_PERM;   /* SPEC 11.1: never speak for the key service */
	st = e2e_scopes_lookup(s->scopes, topic, topic_len, scope);
	if (st != E2E_OK)
		return st;
	cur = e2e_keystore_current(s->keys, *scope);
	if (!cur)
		return E2E_ERR_UNKNOWN_KEY;
	tx = s->tx[*scope].tx;
	if (!tx || s->tx[*scope].epoch != cur->epoch) {
		s->io_wanted = 1;
		return E2E_ERR_RESERVE;
	}
	st = tx_seal(tx, will, out, cap, out_len, topic, topic_len, pt, pt_len);
	if (st == E2E_ERR_RESERVE || st == E2E_ERR_EXHAUSTED || e2e_tx_reserve_due(tx, NULL, NULL))
		s->io_wanted = 1;
	if (!s->rotate_due && (st == E2E_ERR_EXHAUSTED || below_low_water(s, tx)))
		s->rotate_due = 1;   /* the ticker rotates ahead, off this thread */
	/* A will is published only if the client vanishes, and only then
	 * could a summary vouch for it. */
	if (st == E2E_OK && s->sum_cur && !will)
		summarize(s, topic, topic_len, out, *out_len);
	return st;
}

static enum e2e_status seal(struct e2e_sender *s, int will, uint8_t *out, size_t cap,
	size_t *out_len, const char *topic, size_t topic_len, const uint8_t *pt, size_t pt_len)
{
	uint8_t scope = 0;
	enum e2e_status st = seal_core(s, will, out, cap, out_len, topic, topic_len, pt, pt_len,
		&scope);

	if (st != E2E_ERR_RESERVE && st != E2E_ERR_EXHAUSTED)
		return st;
	st = e2e_statedir_seal_io(s, scope, st);
	if (st == E2E_OK)
		st = seal_core(s, will, out, cap, out_len, topic, topic_len, pt, pt_len, &scope);
	return st;
}

enum e2e_status e2e_sender_seal(struct e2e_sender *s, uint8_t *out, size_t cap,
	size_t *out_len, const char *topic, size_t topic_len, const uint8_t *pt, size_t pt_len)
{
	return seal(s, 0, out, cap, out_len, topic, topic_len, pt, pt_len);
}

enum e2e_status e2e_sender_seal_will(struct e2e_sender *s, uint8_t *out, size_t cap,
	size_t *out_len, const char *topic, size_t topic_len, const uint8_t *pt, size_t pt_len)
{
	return seal(s, 1, out, cap, out_len, topic, topic_len, pt, pt_len);
}

enum e2e_status e2e_sender_seal_nowait(struct e2e_sender *s, int will, uint8_t *out,
	size_t cap, size_t *out_len, const char *topic, size_t topic_len, const uint8_t *pt,
	size_t pt_len)
{
	uint8_t scope = 0;

#ifdef E2E_FAILPOINTS
	e2e_fileio_mark_sealing();   /* E2E_FILEIO_GUARD: no file I/O on this thread */
#endif
	return seal_core(s, will, out, cap, out_len, topic, topic_len, pt, pt_len, &scope);
}

int e2e_sender_io_wanted(const struct e2e_sender *s)
{
	return s && s->io_wanted;
}

uint32_t e2e_sender_io_plan(struct e2e_sender *s, struct e2e_sender_io *io)
{
	uint64_t limit, want;
	struct e2e_keyid id;

	if (!s || !io)
		return 0;
	memset(io, 0, sizeof *io);
	s->io_wanted = 0;
	limit = e2e_sender_tx_limit(s);
	for (uint32_t i = 0; i < s->scopes->count && io->n < E2E_SENDER_IO_MAX; i++) {
		uint8_t sc = s->scopes->scope[i].id;
		const struct e2e_keystore_entry *cur = e2e_keystore_current(s->keys, sc);
		struct e2e_tx *tx = s->tx[sc].tx;
		struct e2e_sender_io_item *it = &io->item[io->n];

		if (!cur)
			continue;
		if (tx && s->tx[sc].epoch == cur->epoch) {
			if (e2e_tx_exhausted(tx)) {
				io->rotate = 1;   /* keys file work: e2e_sender_tick */
			} else if (e2e_tx_reserve_due(tx, &id, &want)) {
				*it = (struct e2e_sender_io_item){ id, 0, want, limit, e2e_sender_tx_block(s),
					0, E2E_OK, s->tx[sc].gen };
				io->n++;
			}
			continue;
		}
		*it = (struct e2e_sender_io_item){ { s->self, sc, cur->epoch }, 0, 0, limit,
			e2e_sender_tx_block(s), 1, E2E_OK, s->tx[sc].gen };
		io->n++;
	}
	return io->n;
}

enum e2e_status e2e_sender_io_apply(struct e2e_sender *s, const struct e2e_sender_io *io)
{
	enum e2e_status ret = E2E_OK, st;

	if (!s || !io)
		return E2E_ERR_ARG;
	for (uint32_t i = 0; i < io->n; i++) {
		const struct e2e_sender_io_item *it = &io->item[i];
		uint8_t sc = it->id.scope;
		const struct e2e_keystore_entry *cur = e2e_keystore_current(s->keys, sc);

		if (it->st != E2E_OK) {
			ret = it->st;
			continue;
		}
		/* Rotated or reloaded meanwhile: the reservation stays on disk, unused. */
		if (!cur || cur->epoch != it->id.epoch)
			continue;
		if (s->tx[sc].tx && s->tx[sc].epoch == cur->epoch)
			st = e2e_tx_extend(s->tx[sc].tx, it->ceiling);
		else if (it->open && it->gen == s->tx[sc].gen)
			/* No tx of this scope came and went since the floor was
			 * read: no counter above it was used. */
			st = e2e_sender_open_tx(s, sc, cur, it->floor, it->ceiling, it->limit, it->block);
		else
			st = E2E_OK;
		if (st != E2E_OK)
			ret = st;
	}
	return ret;
}

enum e2e_status e2e_sender_control(struct e2e_sender *s, const uint8_t *msg, size_t len,
	const char *topic, uint8_t *out, size_t cap, size_t *out_len,
	char reply_topic[E2E_CTL_REPLY_MAX + 1], uint64_t now_ms)
{
	if (!s)
		return E2E_ERR_ARG;
	/* The authority's revocation list: applied, never answered. */
	if (topic && e2e_fleet_is_authority_topic(s, topic)) {
		enum e2e_status st = e2e_fleet_revocations(s, msg, len, topic, now_ms);

		return st == E2E_OK ? E2E_ERR_EXISTS : st;
	}
	return e2e_keysvc_handle(s->svc, msg, len, topic, out, cap, out_len, reply_topic, now_ms);
}

enum e2e_status e2e_sender_next_announce(struct e2e_sender *s, uint8_t *out, size_t cap,
	size_t *len, char *topic, size_t topic_cap, uint64_t now_ms)
{
	for (unsigned sc = 0; s && sc < E2E_SCOPES_MAX; sc++) {
		const struct e2e_keystore_entry *cur;

		enum e2e_status st;

		if (!(s->announce[sc / 8] & (1U << (sc % 8))))
			continue;
		cur = e2e_keystore_current(s->keys, (uint8_t)sc);
		if (!cur) {
			s->announce[sc / 8] &= (uint8_t)~(1U << (sc % 8));
			continue;
		}
		if ((size_t)snprintf(topic, topic_cap, "%s", s->announce_topic) >= topic_cap)
			return E2E_ERR_BUFFER;   /* still queued */
		st = e2e_ctl_announce(out, cap, len, &s->id, s->announce_topic, (uint8_t)sc,
			cur->epoch, now_ms);
		if (st == E2E_OK)
			s->announce[sc / 8] &= (uint8_t)~(1U << (sc % 8));
		return st;
	}
	return E2E_ERR_NOT_FOUND;
}

enum e2e_status e2e_sender_next_switch(struct e2e_sender *s, uint8_t *scope, uint32_t *epoch)
{
	if (!s || !scope || !epoch)
		return E2E_ERR_ARG;
	for (unsigned sc = 0; sc < E2E_SCOPES_MAX; sc++) {
		const struct e2e_keystore_entry *cur;

		if (!(s->switched[sc / 8] & (1U << (sc % 8))))
			continue;
		s->switched[sc / 8] &= (uint8_t)~(1U << (sc % 8));
		cur = e2e_keystore_current(s->keys, (uint8_t)sc);
		if (!cur)
			continue;
		*scope = (uint8_t)sc;
		*epoch = cur->epoch;
		return E2E_OK;
	}
	return E2E_ERR_NOT_FOUND;
}

enum e2e_status e2e_sender_next_summary(struct e2e_sender *s, uint8_t *out, size_t cap,
	size_t *len, char *topic, size_t topic_cap, uint64_t now_ms)
{
	enum e2e_status st;
	uint32_t number;

	if (!s || !out || !len || !topic)
		return E2E_ERR_ARG;
	if (!s->sum_cur)
		return E2E_ERR_NOT_FOUND;
	if (!s->ready_due) {
		struct e2e_summary *t;

		/* An empty summary is sent too: it is the heartbeat that shows
		 * the broker is not withholding this sender. */
		if (now_ms - s->sum_last_ms < s->cfg.summary_ms)
			return E2E_ERR_NOT_FOUND;
		t = s->sum_ready;
		s->sum_ready = s->sum_cur;
		s->sum_cur = t;
		/* One history (SPEC 11.6) for both: it goes with the one sent. */
		e2e_summary_hist_swap(s->sum_ready, s->sum_cur);
		s->ready_due = 1;
		s->ready_part = 0;
	}
	if ((size_t)snprintf(topic, topic_cap, "%s", s->announce_topic) >= topic_cap)
		return E2E_ERR_BUFFER;
	/* On failure nothing changes: the same part is built again next call. */
	number = s->ready_part == 0 ? s->sum_number + 1 : s->sum_number;
	while (s->sum_boot == 0)
		s->sum_boot = randombytes_random();
	st = e2e_summary_build(s->sum_ready, &s->id, s->announce_topic, s->cfg.summary_ms,
		s->sum_boot, number, s->ready_part, &s->ready_parts, out, cap, len, now_ms);
	if (st == E2E_ERR_FULL) {
		/* More than 255 parts (the accumulator's bound makes this
		 * impossible): drop the interval rather than retry it forever;
		 * subscribers see the number gap and report it. */
		s->unsummarized += 1;
		e2e_summary_reset(s->sum_ready);
		s->ready_due = 0;
		s->ready_part = 0;
		s->sum_number = number;
		return st;
	}
	if (st != E2E_OK)
		return st;
	if (s->ready_part == 0) {
		s->sum_number = number;
		s->sum_last_ms = now_ms;
	}
	if (++s->ready_part >= s->ready_parts) {
		e2e_summary_reset(s->sum_ready);
		s->ready_due = 0;
		s->ready_part = 0;
	}
	return E2E_OK;
}

uint64_t e2e_sender_unsummarized(const struct e2e_sender *s)
{
	return s ? s->unsummarized : 0;
}

void e2e_sender_keysvc_stats(const struct e2e_sender *s, struct e2e_keysvc_stats *st)
{
	if (s)
		e2e_keysvc_stats(s->svc, st);
}
