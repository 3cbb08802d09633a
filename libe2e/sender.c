/*
 * A sender backed by its state directory; see e2e/sender.h. Owns the files
 * of the directory: it reloads what e2e-keytool changed (checked by inode,
 * size and mtime on each tick) and writes the keys file when it rotates.
 */
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "e2e/clock.h"
#include "e2e/enroll.h"
#include "e2e/keystore.h"
#include "e2e/scopes.h"
#include "e2e/sender.h"
#include "e2e/summary.h"
#include "e2e/tx.h"
#include "e2e/txstate.h"

struct file_sig {
	int exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct scope_tx {
	struct e2e_tx *tx;
	uint32_t epoch;
	uint32_t gen;     /* changes whenever tx is replaced: stale plans are dropped */
};

struct e2e_sender {
	struct e2e_sender_config cfg;
	int owner;                        /* "<dir>/lock", held while open (SPEC 6.5) */
	char p_identity[PATH_MAX], p_scopes[PATH_MAX], p_enrolled[PATH_MAX];
	char p_keys[PATH_MAX], p_txstate[PATH_MAX];
	char control_topic[256];
	char announce_topic[300];
	struct e2e_identity id;
	uint32_t self;
	struct e2e_scopes *scopes;
	struct e2e_scope_rule *rules;   /* scopes as the map in deliveries */
	uint32_t nrules;
	struct e2e_enroll *enrolled;
	struct e2e_keystore *keys;
	struct file_sig sig_scopes, sig_enrolled, sig_keys;
	struct scope_tx tx[E2E_SCOPES_MAX];
	uint8_t announce[E2E_SCOPES_MAX / 8];   /* scopes with a new epoch to announce */
	struct e2e_keysvc *svc;
	/* Summaries: seal records into cur; at the interval (or when cur is
	 * full) cur becomes ready and is emitted part by part. */
	struct e2e_summary *sum_cur, *sum_ready;
	int ready_due;
	uint8_t ready_part, ready_parts;
	uint32_t sum_boot;              /* random non-zero per start: binds every part */
	uint32_t sum_number;
	uint64_t sum_last_ms;
	uint64_t unsummarized;
	int io_wanted;                  /* the sealing core needs the I/O side */
};

static enum e2e_status fail(struct e2e_sender *s, enum e2e_status st, const char *what,
	const char *path)
{
	/* Parsers already wrote "<file>:<line>: reason"; keep theirs. */
	if (s->cfg.err && s->cfg.err_len && what)
		snprintf(s->cfg.err, s->cfg.err_len, "%s %s: %s", what, path, e2e_strerror(st));
	return st;
}

static void file_sig(struct file_sig *fs, const char *path)
{
	struct stat sb;

	memset(fs, 0, sizeof *fs);
	if (stat(path, &sb) != 0)
		return;
	fs->exists = 1;
	fs->dev = sb.st_dev;
	fs->ino = sb.st_ino;
	fs->size = sb.st_size;
	fs->mtime = sb.st_mtim;
}

static int sig_changed(const struct file_sig *a, const struct file_sig *b)
{
	return a->exists != b->exists || a->dev != b->dev || a->ino != b->ino ||
	       a->size != b->size || a->mtime.tv_sec != b->mtime.tv_sec ||
	       a->mtime.tv_nsec != b->mtime.tv_nsec;
}

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

static int scope_signed(const struct e2e_sender *s, uint8_t scope)
{
	const struct e2e_scope *sc = e2e_scopes_get(s->scopes, scope);

	return sc && sc->sign;
}

static enum e2e_status on_map(void *ctx, struct e2e_ctl_map *map)
{
	struct e2e_sender *s = ctx;

	map->summary_interval_ms = s->cfg.no_summaries ? 0 : s->cfg.summary_ms;
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

	/* The current key and every key still in its grace period. */
	for (uint32_t i = 0; i < n && k < cap; i++) {
		const struct e2e_keystore_entry *e = e2e_keystore_at(s->keys, i);

		if (e->scope != scope || (e->not_after_ms && e->not_after_ms < now_ms))
			continue;
		out[k].scope = e->scope;
		out[k].epoch = e->epoch;
		out[k].not_after_ms = e->not_after_ms;
		/* Each key in the mode it was made in: its envelopes all are. */
		out[k].flags = e->flags & E2E_KEYSTORE_SIGNED ? E2E_KEY_SIGNED : 0;
		memcpy(out[k].key, e->key, E2E_KEY_BYTES);
		k++;
	}
	return k;
}

static enum e2e_status load_keys(struct e2e_sender *s);
static void drop_tx(struct e2e_sender *s, uint8_t scope);

/* Record on the current key of @p scope the mode the scope has now. */
static enum e2e_status mark_mode(struct e2e_sender *s, uint8_t scope)
{
	const struct e2e_keystore_entry *cur = e2e_keystore_current(s->keys, scope);

	if (!cur)
		return E2E_ERR_NOT_FOUND;
	return e2e_keystore_set_flags(s->keys, scope, cur->epoch,
		scope_signed(s, scope) ? E2E_KEYSTORE_SIGNED : 0);
}

/* Every key's (scope, epoch) into the reservation file (SPEC 6.4). */
static enum e2e_status note_keys(const char *txstate, uint32_t self,
	const struct e2e_keystore *ks)
{
	uint32_t n = e2e_keystore_count(ks);
	struct e2e_keyid *ids = calloc(n ? n : 1, sizeof *ids);
	enum e2e_status st;

	if (!ids)
		return E2E_ERR_NOMEM;
	for (uint32_t i = 0; i < n; i++) {
		const struct e2e_keystore_entry *e = e2e_keystore_at(ks, i);

		ids[i] = (struct e2e_keyid){ self, e->scope, e->epoch };
	}
	st = e2e_txstate_note(txstate, ids, n);
	free(ids);
	return st;
}

/*
 * Writing `keys`: hold the directory lock, and first take in any change
 * e2e-keytool made since our last read, so neither side loses the other's
 * rotation (a lost rotation after a revocation would keep a revoked key).
 */
static enum e2e_status keys_begin(struct e2e_sender *s, int *lock)
{
	struct file_sig fs;
	enum e2e_status st = e2e_dir_lock(s->cfg.dir, lock);

	if (st != E2E_OK)
		return fail(s, st, "cannot lock", s->cfg.dir);
	file_sig(&fs, s->p_keys);
	if (sig_changed(&fs, &s->sig_keys) && (st = load_keys(s)) != E2E_OK) {
		e2e_dir_unlock(*lock);
		*lock = -1;
	}
	return st;
}

static enum e2e_status keys_commit(struct e2e_sender *s, int lock)
{
	enum e2e_status st = note_keys(s->p_txstate, s->self, s->keys);

	/* The ledger first: a key is never in use without its epoch recorded. */
	if (st != E2E_OK) {
		e2e_dir_unlock(lock);
		return fail(s, st, "cannot record key epochs in", s->p_txstate);
	}
	st = e2e_keystore_save(s->keys, s->p_keys);
	if (st == E2E_OK)
		file_sig(&s->sig_keys, s->p_keys);
	else
		fail(s, st, "cannot write", s->p_keys);
	e2e_dir_unlock(lock);
	return st;
}

/*
 * The tx's counter reservation: a read-modify-write of txstate, so under
 * the directory's write lock. e2e-keytool records key epochs in the same
 * file under that lock; without it, its write of a copy read before ours
 * would lower the ceiling we just made durable (SPEC 6.5).
 */
static enum e2e_status reserve(void *ctx, const struct e2e_keyid *id, uint64_t ceiling)
{
	struct e2e_sender *s = ctx;
	int lock = -1;
	enum e2e_status st = e2e_dir_lock(s->cfg.dir, &lock);

	if (st != E2E_OK)
		return st;
	st = e2e_txstate_reserve(s->p_txstate, id, ceiling);
	e2e_dir_unlock(lock);
	return st;
}

static void drop_tx(struct e2e_sender *s, uint8_t scope)
{
	if (s->tx[scope].tx) {
		s->io_wanted = 1;   /* the scope's next key needs a reservation */
		s->tx[scope].gen++;
	}
	e2e_tx_destroy(s->tx[scope].tx);
	s->tx[scope].tx = NULL;
	s->tx[scope].epoch = 0;
}

/* Every scope has a current key; write the keys file if one was added. */
static enum e2e_status ensure_keys(struct e2e_sender *s, uint64_t now_ms)
{
	int lock = -1, missing = 0;
	enum e2e_status st;

	for (uint32_t i = 0; i < s->scopes->count; i++)
		missing |= !e2e_keystore_current(s->keys, s->scopes->scope[i].id);
	if (!missing)
		return E2E_OK;
	st = keys_begin(s, &lock);
	if (st != E2E_OK)
		return st;
	for (uint32_t i = 0; i < s->scopes->count; i++) {
		uint8_t sc = s->scopes->scope[i].id;
		int created = 0;

		st = e2e_keystore_ensure(s->keys, sc, now_ms, &created);
		if (st == E2E_OK && created)
			st = mark_mode(s, sc);
		if (st != E2E_OK) {
			e2e_dir_unlock(lock);
			return fail(s, st, "cannot create a key in", s->p_keys);
		}
	}
	return keys_commit(s, lock);
}

/*
 * A scope whose `sign` setting differs from the mode of its current key is
 * rotated (L4): the old key was handed out as unsigned, so any subscriber
 * holding it could seal suite 0x01 envelopes under it; only a new key,
 * delivered as signed, makes the signature mandatory. Turning signing off
 * rotates too, so that a key is only ever used in one mode.
 */
static enum e2e_status sync_sign_modes(struct e2e_sender *s, uint64_t now_ms)
{
	enum e2e_status ret = E2E_OK, st;

	for (uint32_t i = 0; i < s->scopes->count; i++) {
		uint8_t sc = s->scopes->scope[i].id;
		const struct e2e_keystore_entry *cur = e2e_keystore_current(s->keys, sc);

		if (!cur || !(cur->flags & E2E_KEYSTORE_SIGNED) == !scope_signed(s, sc))
			continue;
		st = e2e_sender_rotate(s, sc, now_ms);
		if (st != E2E_OK)
			ret = st;
	}
	return ret;
}

/* The table as the map every delivery carries (SPEC 11.2); refused when
 * it cannot fit one next to 32 keys, so no subscriber would get keys. */
static enum e2e_status scope_rules(struct e2e_sender *s, const struct e2e_scopes *tbl,
	struct e2e_scope_rule **out, uint32_t *n)
{
	struct e2e_ctl_map map;
	size_t size;

	*out = NULL;
	if (e2e_scopes_rules(tbl, NULL, 0, n) == E2E_ERR_ARG || *n == 0)
		return E2E_ERR_ARG;
	*out = calloc(*n, sizeof **out);
	if (!*out)
		return E2E_ERR_NOMEM;
	if (e2e_scopes_rules(tbl, *out, *n, n) != E2E_OK)
		return E2E_ERR_ARG;
	map = (struct e2e_ctl_map){ 0, *n, *out };
	size = e2e_ctl_map_size(&map);
	if (size == 0 || size > E2E_CTL_MAP_MAX) {
		if (s->cfg.err && s->cfg.err_len)
			snprintf(s->cfg.err, s->cfg.err_len, "%s: the topic map (%zu bytes) does "
				"not fit a key delivery (at most %u bytes of rules)", s->p_scopes,
				size, (unsigned)E2E_CTL_MAP_MAX);
		return E2E_ERR_FULL;
	}
	return E2E_OK;
}

static enum e2e_status load_scopes(struct e2e_sender *s)
{
	struct e2e_scopes *n = malloc(sizeof *n);
	struct e2e_scope_rule *rules = NULL;
	uint32_t nrules = 0;
	enum e2e_status st;

	if (!n)
		return E2E_ERR_NOMEM;
	file_sig(&s->sig_scopes, s->p_scopes);
	st = e2e_scopes_load(n, s->p_scopes, s->cfg.err, s->cfg.err_len);
	if (st == E2E_OK)
		st = scope_rules(s, n, &rules, &nrules);
	if (st != E2E_OK) {
		free(rules);
		free(n);
		return st;
	}
	free(s->scopes);
	free(s->rules);
	s->scopes = n;
	s->rules = rules;
	s->nrules = nrules;
	/* Scopes may have changed their signing mode: rebuild every tx. */
	for (unsigned sc = 0; sc < E2E_SCOPES_MAX; sc++)
		drop_tx(s, (uint8_t)sc);
	return E2E_OK;
}

static enum e2e_status load_enrolled(struct e2e_sender *s)
{
	struct e2e_enroll *n = NULL;
	enum e2e_status st;

	file_sig(&s->sig_enrolled, s->p_enrolled);
	st = e2e_enroll_load(&n, E2E_ENROLL_SENDER, s->scopes, s->p_enrolled, 0, s->cfg.err,
		s->cfg.err_len);
	if (st != E2E_OK)
		return st;
	e2e_enroll_free(s->enrolled);
	s->enrolled = n;
	return E2E_OK;
}

/* Epochs txstate shows in use are never issued again, even if the keys
 * file lost them (truncated, restored from an older backup). */
static enum e2e_status set_floors(struct e2e_sender *s, struct e2e_keystore *ks)
{
	uint32_t used[256];
	enum e2e_status st = e2e_txstate_epochs(s->p_txstate, s->self, used);

	if (st != E2E_OK)
		return fail(s, st, "cannot read counter reservations", s->p_txstate);
	for (unsigned sc = 0; sc < 256; sc++)
		e2e_keystore_set_floor(ks, (uint8_t)sc, used[sc]);
	return E2E_OK;
}

/* (Re)load the keys file; scopes whose current epoch changed get a new
 * tx on their next message and an announcement. */
static enum e2e_status load_keys(struct e2e_sender *s)
{
	struct e2e_keystore *n = NULL;
	enum e2e_status st;

	file_sig(&s->sig_keys, s->p_keys);
	st = e2e_keystore_load(&n, s->p_keys, E2E_SCOPES_MAX, s->cfg.err, s->cfg.err_len);
	if (st != E2E_OK)
		return st;
	st = set_floors(s, n);
	if (st != E2E_OK) {
		e2e_keystore_free(n);
		return st;
	}
	for (unsigned sc = 0; sc < E2E_SCOPES_MAX; sc++) {
		const struct e2e_keystore_entry *cur = e2e_keystore_current(n, (uint8_t)sc);

		if (s->tx[sc].tx && (!cur || cur->epoch != s->tx[sc].epoch))
			drop_tx(s, (uint8_t)sc);
		if (s->keys && cur) {
			const struct e2e_keystore_entry *old = e2e_keystore_current(s->keys, (uint8_t)sc);

			if (!old || old->epoch != cur->epoch)
				s->announce[sc / 8] |= (uint8_t)(1U << (sc % 8));
		}
	}
	e2e_keystore_free(s->keys);
	s->keys = n;
	return E2E_OK;
}

static enum e2e_status own_dir(struct e2e_sender *s)
{
	long pid = 0;
	enum e2e_status st = e2e_dir_own(s->cfg.dir, &s->owner, &pid);

	if (st == E2E_ERR_BUSY && s->cfg.err && s->cfg.err_len) {
		if (pid)
			snprintf(s->cfg.err, s->cfg.err_len, "state directory %s is in use by process "
				"%ld (lock held on %s/lock): one sender per directory", s->cfg.dir, pid,
				s->cfg.dir);
		else
			snprintf(s->cfg.err, s->cfg.err_len, "state directory %s is in use by another "
				"process (lock held on %s/lock): one sender per directory", s->cfg.dir,
				s->cfg.dir);
		return st;
	}
	return st == E2E_OK ? st : fail(s, st, "cannot lock", s->cfg.dir);
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
	snprintf(s->p_identity, PATH_MAX, "%s/identity.key", cfg->dir);
	snprintf(s->p_scopes, PATH_MAX, "%s/scopes", cfg->dir);
	snprintf(s->p_enrolled, PATH_MAX, "%s/enrolled", cfg->dir);
	snprintf(s->p_keys, PATH_MAX, "%s/keys", cfg->dir);
	snprintf(s->p_txstate, PATH_MAX, "%s/txstate", cfg->dir);
	/* Before anything is read: a second sender on this directory would
	 * reserve counters and rotate keys behind this one's back. */
	ret = own_dir(s);
	if (ret != E2E_OK)
		goto out;
	ret = e2e_identity_load(&s->id, s->p_identity);
	if (ret != E2E_OK) {
		fail(s, ret, "cannot load identity", s->p_identity);
		goto out;
	}
	s->self = e2e_sender_id(&s->id.pub);
	ret = e2e_ctl_sender_topic(s->announce_topic, sizeof s->announce_topic, s->control_topic,
		s->self);
	if (ret != E2E_OK)
		goto out;
	if ((ret = load_scopes(s)) != E2E_OK || (ret = load_enrolled(s)) != E2E_OK ||
	    (ret = load_keys(s)) != E2E_OK || (ret = ensure_keys(s, s->cfg.clock_ms())) != E2E_OK ||
	    (ret = sync_sign_modes(s, s->cfg.clock_ms())) != E2E_OK)
		goto out;
	memset(&kc, 0, sizeof kc);
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
		drop_tx(s, (uint8_t)sc);
	e2e_keysvc_destroy(s->svc);
	e2e_summary_destroy(s->sum_cur);
	e2e_summary_destroy(s->sum_ready);
	e2e_keystore_free(s->keys);
	e2e_enroll_free(s->enrolled);
	free(s->scopes);
	free(s->rules);
	e2e_identity_destroy(&s->id);
	e2e_dir_unlock(s->owner);
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

/* The message limit and reservation block every tx of this sender uses. */
static uint64_t tx_limit(const struct e2e_sender *s)
{
	uint64_t l = s->cfg.max_messages ? s->cfg.max_messages : E2E_TX_LIMIT_DEFAULT;

	return l > E2E_COUNTER_MAX ? E2E_COUNTER_MAX : l;
}

static uint32_t tx_block(const struct e2e_sender *s)
{
	return s->cfg.reserve_block ? s->cfg.reserve_block : E2E_TX_BLOCK_DEFAULT;
}

/* The ceiling to make durable for a key whose counters start above @p floor. */
static uint64_t first_ceiling(uint64_t floor, uint32_t block, uint64_t limit)
{
	uint64_t want = floor + block;

	return want > limit || want < floor ? limit : want;
}

/*
 * A tx for the current key @p cur of @p scope, counters in (floor, ceiling]
 * already durable. Creating it is memory work only: the tx never reserves
 * by itself (asynchronous reservation), so sealing never touches a file.
 */
static enum e2e_status open_tx(struct e2e_sender *s, uint8_t scope,
	const struct e2e_keystore_entry *cur, uint64_t floor, uint64_t ceiling, uint64_t limit,
	uint32_t block)
{
	struct e2e_tx_config tc;
	enum e2e_status st;

	drop_tx(s, scope);
	memset(&tc, 0, sizeof tc);
	tc.id = (struct e2e_keyid){ s->self, scope, cur->epoch };
	tc.key = cur->key;
	tc.counter_floor = floor;
	tc.ceiling = ceiling;
	tc.limit = limit;
	tc.block = block;
	/* The key's own mode, the one it was delivered with. */
	tc.sign_sk = cur->flags & E2E_KEYSTORE_SIGNED ? s->id.sign_sk : NULL;
	st = e2e_tx_create(&s->tx[scope].tx, &tc);
	if (st == E2E_OK) {
		s->tx[scope].epoch = cur->epoch;
		s->tx[scope].gen++;
	}
	return st;
}

/*
 * The tx of @p scope under its current key, created on first use (the
 * synchronous path: reads and writes txstate). Its counters continue above
 * the key's txstate ceiling. A key with no txstate
 * record at all (txstate lost, restored from an older backup, or the keys
 * file edited by hand) may have sealed before: starting it at 0 could
 * repeat counters. It is retired instead (recorded with the highest
 * ceiling, so it never seals again, even if a restored keys file makes it
 * current once more) and the scope rotated: the new key, whose record is
 * written before the keys file (SPEC 6.4), starts at 0. A key exhausted
 * on disk is rotated the same way.
 */
static enum e2e_status scope_tx(struct e2e_sender *s, uint8_t scope, struct e2e_tx **tx)
{
	const struct e2e_keystore_entry *cur;
	struct e2e_keyid id;
	enum e2e_status st;
	uint64_t floor = 0, limit = tx_limit(s), want;

	for (int rotated = 0;; rotated = 1) {
		cur = e2e_keystore_current(s->keys, scope);
		if (!cur)
			return E2E_ERR_UNKNOWN_KEY;
		if (s->tx[scope].tx && s->tx[scope].epoch == cur->epoch) {
			*tx = s->tx[scope].tx;
			return E2E_OK;
		}
		drop_tx(s, scope);
		id = (struct e2e_keyid){ s->self, scope, cur->epoch };
		st = e2e_txstate_get(s->p_txstate, &id, &floor);
		if (st == E2E_ERR_NOT_FOUND) {
			st = reserve(s, &id, E2E_COUNTER_MAX);
			if (st != E2E_OK)
				return fail(s, st, "cannot retire an unrecorded key in", s->p_txstate);
			st = E2E_ERR_EXHAUSTED;
		} else if (st != E2E_OK) {
			return fail(s, st, "cannot read counter reservations", s->p_txstate);
		} else if (floor >= limit) {
			st = E2E_ERR_EXHAUSTED;
		} else {
			want = first_ceiling(floor, tx_block(s), limit);
			st = reserve(s, &id, want);
			if (st != E2E_OK)
				return E2E_ERR_RESERVE;
			st = open_tx(s, scope, cur, floor, want, limit, tx_block(s));
			if (st == E2E_OK)
				break;
		}
		if (st != E2E_ERR_EXHAUSTED)
			return st;
		if (rotated)
			return fail(s, st, "new key unusable: check", s->p_txstate);
		st = e2e_sender_rotate(s, scope, s->cfg.clock_ms());
		if (st != E2E_OK)
			return st;
	}
	*tx = s->tx[scope].tx;
	return E2E_OK;
}

enum e2e_status e2e_sender_rotate(struct e2e_sender *s, uint8_t scope, uint64_t now_ms)
{
	uint32_t epoch;
	int lock = -1;
	enum e2e_status st;

	if (!s)
		return E2E_ERR_ARG;
	st = keys_begin(s, &lock);
	if (st != E2E_OK)
		return st;
	st = e2e_keystore_rotate(s->keys, scope, now_ms, s->cfg.grace_ms, &epoch);
	if (st == E2E_OK)
		st = mark_mode(s, scope);
	if (st != E2E_OK) {
		e2e_dir_unlock(lock);
		return st;
	}
	st = keys_commit(s, lock);
	if (st != E2E_OK)
		return st;
	drop_tx(s, scope);
	s->announce[scope / 8] |= (uint8_t)(1U << (scope % 8));
	return E2E_OK;
}

enum e2e_status e2e_sender_rotate_topic(struct e2e_sender *s, const char *topic,
	uint64_t now_ms)
{
	uint8_t scope;
	enum e2e_status st;

	if (!s || !topic)
		return E2E_ERR_ARG;
	st = e2e_scopes_lookup(s->scopes, topic, strlen(topic), &scope);
	return st == E2E_OK ? e2e_sender_rotate(s, scope, now_ms) : st;
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
	/* A will is published only if the client vanishes, and only then
	 * could a summary vouch for it. */
	if (st == E2E_OK && s->sum_cur && !will)
		summarize(s, topic, topic_len, out, *out_len);
	return st;
}

/* The synchronous I/O the sealing core asked for, done inline. */
static enum e2e_status seal_io(struct e2e_sender *s, uint8_t scope, enum e2e_status why)
{
	struct e2e_tx *tx = NULL;
	struct e2e_keyid id;
	uint64_t want;
	enum e2e_status st;

	if (why == E2E_ERR_EXHAUSTED) {
		/* Key usage limit reached: rotate now and seal under the new key. */
		st = e2e_sender_rotate(s, scope, s->cfg.clock_ms());
		return st == E2E_OK ? scope_tx(s, scope, &tx) : st;
	}
	st = scope_tx(s, scope, &tx);
	if (st != E2E_OK || !e2e_tx_reserve_due(tx, &id, &want))
		return st;
	st = reserve(s, &id, want);
	return st == E2E_OK ? e2e_tx_extend(tx, want) : E2E_ERR_RESERVE;
}

static enum e2e_status seal(struct e2e_sender *s, int will, uint8_t *out, size_t cap,
	size_t *out_len, const char *topic, size_t topic_len, const uint8_t *pt, size_t pt_len)
{
	uint8_t scope = 0;
	enum e2e_status st = seal_core(s, will, out, cap, out_len, topic, topic_len, pt, pt_len,
		&scope);

	if (st != E2E_ERR_RESERVE && st != E2E_ERR_EXHAUSTED)
		return st;
	st = seal_io(s, scope, st);
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
	limit = tx_limit(s);
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
				*it = (struct e2e_sender_io_item){ id, 0, want, limit, tx_block(s),
					0, E2E_OK, s->tx[sc].gen };
				io->n++;
			}
			continue;
		}
		*it = (struct e2e_sender_io_item){ { s->self, sc, cur->epoch }, 0, 0, limit,
			tx_block(s), 1, E2E_OK, s->tx[sc].gen };
		io->n++;
	}
	return io->n;
}

/*
 * Reads only what never changes after open (the paths, our id) and the
 * plan: safe while another thread seals. Every durable write is here.
 */
enum e2e_status e2e_sender_io_run(struct e2e_sender *s, struct e2e_sender_io *io)
{
	enum e2e_status ret = E2E_OK;

	if (!s || !io)
		return E2E_ERR_ARG;
	for (uint32_t i = 0; i < io->n; i++) {
		struct e2e_sender_io_item *it = &io->item[i];

		if (it->open) {
			it->st = e2e_txstate_get(s->p_txstate, &it->id, &it->floor);
			/* An unrecorded key is retired and its scope rotated:
			 * keys file work, left to the synchronous path. */
			if (it->st == E2E_OK && it->floor >= it->limit)
				it->st = E2E_ERR_EXHAUSTED;
			if (it->st == E2E_OK)
				it->ceiling = first_ceiling(it->floor, it->block, it->limit);
		}
		if (it->st == E2E_OK && reserve(s, &it->id, it->ceiling) != E2E_OK)
			it->st = E2E_ERR_RESERVE;
		if (it->st != E2E_OK && ret == E2E_OK)
			ret = it->st;
	}
	return ret;
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
			st = open_tx(s, sc, cur, it->floor, it->ceiling, it->limit, it->block);
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
	return e2e_keysvc_handle(s->svc, msg, len, topic, out, cap, out_len, reply_topic, now_ms);
}

enum e2e_status e2e_sender_tick(struct e2e_sender *s, uint64_t now_ms)
{
	struct file_sig fs;
	enum e2e_status ret = E2E_OK, st;

	if (!s)
		return E2E_ERR_ARG;
	/* A failed reload keeps the previous configuration in force. */
	file_sig(&fs, s->p_scopes);
	if (sig_changed(&fs, &s->sig_scopes) && (st = load_scopes(s)) != E2E_OK)
		ret = st;
	file_sig(&fs, s->p_enrolled);
	if (sig_changed(&fs, &s->sig_enrolled) && (st = load_enrolled(s)) != E2E_OK)
		ret = st;
	file_sig(&fs, s->p_keys);
	if (sig_changed(&fs, &s->sig_keys) && (st = load_keys(s)) != E2E_OK)
		ret = st;
	if ((st = ensure_keys(s, now_ms)) != E2E_OK)
		ret = st;
	if ((st = sync_sign_modes(s, now_ms)) != E2E_OK)
		ret = st;
	if (s->cfg.max_age_ms) {
		for (uint32_t i = 0; i < s->scopes->count; i++) {
			uint8_t sc = s->scopes->scope[i].id;
			const struct e2e_keystore_entry *cur = e2e_keystore_current(s->keys, sc);

			if (cur && now_ms - cur->created_ms >= s->cfg.max_age_ms &&
			    (st = e2e_sender_rotate(s, sc, now_ms)) != E2E_OK)
				ret = st;
		}
	}
	if (e2e_keystore_prune(s->keys, now_ms)) {
		int lock = -1;

		/* Re-read under the lock, prune what is expired there, write. */
		if (keys_begin(s, &lock) == E2E_OK) {
			(void)e2e_keystore_prune(s->keys, now_ms);
			if ((st = keys_commit(s, lock)) != E2E_OK)
				ret = st;
		}
	}
	/* Here, while this tick does file work anyway, not in the first seal. */
	for (uint32_t i = 0; s->cfg.prepare_keys && i < s->scopes->count; i++) {
		struct e2e_tx *tx;

		if (e2e_keystore_current(s->keys, s->scopes->scope[i].id) &&
		    (st = scope_tx(s, s->scopes->scope[i].id, &tx)) != E2E_OK)
			ret = st;
	}
	return ret;
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
