/*
 * The state directory of a sender (SPEC 6): its lock, identity, scopes,
 * enrolled, keys and txstate. Reloads what e2e-keytool changed (checked by
 * inode, size and mtime on each tick), writes the keys file when it
 * rotates, and makes counter reservations durable, either inline
 * (e2e_sender_seal) or on the caller's I/O thread (e2e_sender_io_run).
 * The only part of the sender that opens, locks or syncs a file.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "e2e/txstate.h"
#include "state/fileio.h"
#include "sender/sender_impl.h"

static int scope_signed(const struct e2e_sender *s, uint8_t scope)
{
	const struct e2e_scope *sc = e2e_scopes_get(s->scopes, scope);

	return sc && sc->sign;
}

/* Record on the current key of @p scope the mode the scope has now. */
static enum e2e_status mark_mode(struct e2e_sender *s, uint8_t scope)
{
	const struct e2e_keystore_entry *cur = e2e_keystore_current(s->keys, scope);

	if (!cur)
		return E2E_ERR_NOT_FOUND;
	return e2e_keystore_set_flags(s->keys, scope, cur->epoch,
		scope_signed(s, scope) ? E2E_KEYSTORE_SIGNED : 0);
}

/*
 * The tx's counter reservation: a read-modify-write of txstate, so under
 * the directory's write lock. e2e-keytool records key epochs in the same
 * file under that lock; without it, its write of a copy read before ours
 * would lower the ceiling we just made durable (SPEC 6.5).
 */
static enum e2e_status reserve(struct e2e_sender *s, const struct e2e_keyid *id,
	uint64_t ceiling, int wait)
{
	int lock = -1;
	enum e2e_status st = e2e_dir_lock_mode(s->cfg.dir, &lock, wait);

	if (st != E2E_OK)
		return st;
	st = e2e_txstate_reserve(s->p_txstate, id, ceiling);
	e2e_dir_unlock(lock);
	return st;
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
	st = e2e_statedir_keys_begin(s, &lock);
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
			return e2e_statedir_fail(s, st, "cannot create a key in", s->p_keys);
		}
	}
	return e2e_statedir_keys_commit(s, lock);
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
	map = (struct e2e_ctl_map){ 0, *n, *out, 0, 0 };
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
	e2e_file_sig(&s->sig_scopes, s->p_scopes);
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
	s->scopes_changed = 1;
	/* Scopes may have changed their signing mode: rebuild every tx. */
	for (unsigned sc = 0; sc < E2E_SCOPES_MAX; sc++)
		e2e_sender_drop_tx(s, (uint8_t)sc);
	return E2E_OK;
}

static enum e2e_status load_enrolled(struct e2e_sender *s)
{
	struct e2e_enroll *n = NULL;
	enum e2e_status st;

	e2e_file_sig(&s->sig_enrolled, s->p_enrolled);
	st = e2e_enroll_load(&n, E2E_ENROLL_SENDER, s->scopes, s->p_enrolled, 0, s->cfg.err,
		s->cfg.err_len);
	if (st != E2E_OK)
		return st;
	e2e_enroll_free(s->enrolled);
	s->enrolled = n;
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
	return st == E2E_OK ? st : e2e_statedir_fail(s, st, "cannot lock", s->cfg.dir);
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
	uint64_t floor = 0, limit = e2e_sender_tx_limit(s), want;

	for (int rotated = 0;; rotated = 1) {
		cur = e2e_keystore_current(s->keys, scope);
		if (!cur)
			return E2E_ERR_UNKNOWN_KEY;
		if (s->tx[scope].tx && s->tx[scope].epoch == cur->epoch) {
			*tx = s->tx[scope].tx;
			return E2E_OK;
		}
		e2e_sender_drop_tx(s, scope);
		id = (struct e2e_keyid){ s->self, scope, cur->epoch };
		st = e2e_txstate_get(s->p_txstate, &id, &floor);
		if (st == E2E_ERR_NOT_FOUND) {
			st = reserve(s, &id, E2E_COUNTER_MAX, !s->in_tick);
			if (st != E2E_OK)
				return e2e_statedir_fail(s, st, "cannot retire an unrecorded key in", s->p_txstate);
			st = E2E_ERR_EXHAUSTED;
		} else if (st != E2E_OK) {
			return e2e_statedir_fail(s, st, "cannot read counter reservations", s->p_txstate);
		} else if (floor >= limit) {
			st = E2E_ERR_EXHAUSTED;
		} else if (s->tx[scope].pre_epoch == cur->epoch && floor == s->tx[scope].pre_ceiling) {
			/* Reserved ahead of its switch (nextkey.c): no file work now. */
			st = e2e_sender_open_tx(s, scope, cur, 0, floor, limit, e2e_sender_tx_block(s));
			s->tx[scope].pre_epoch = 0;
			if (st == E2E_OK)
				break;
		} else {
			want = e2e_first_ceiling(floor, e2e_sender_tx_block(s), limit);
			st = reserve(s, &id, want, !s->in_tick);
			if (st != E2E_OK)
				return st == E2E_ERR_BUSY ? st : E2E_ERR_RESERVE;
			st = e2e_sender_open_tx(s, scope, cur, floor, want, limit, e2e_sender_tx_block(s));
			if (st == E2E_OK)
				break;
		}
		if (st != E2E_ERR_EXHAUSTED)
			return st;
		if (rotated)
			return e2e_statedir_fail(s, st, "new key unusable: check", s->p_txstate);
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
	st = e2e_statedir_keys_begin(s, &lock);
	if (st != E2E_OK)
		return st;
	st = e2e_keystore_rotate(s->keys, scope, now_ms, s->cfg.grace_ms, &epoch);
	if (st == E2E_OK)
		st = mark_mode(s, scope);
	if (st != E2E_OK) {
		e2e_dir_unlock(lock);
		return st;
	}
	st = e2e_statedir_keys_commit(s, lock);
	if (st != E2E_OK)
		return st;
	e2e_sender_drop_tx(s, scope);
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

/* The synchronous I/O the sealing core asked for, done inline. */
enum e2e_status e2e_statedir_seal_io(struct e2e_sender *s, uint8_t scope, enum e2e_status why)
{
	struct e2e_tx *tx = NULL;
	struct e2e_keyid id;
	uint64_t want;
	enum e2e_status st;

	if (why == E2E_ERR_EXHAUSTED) {
		/* Key usage limit reached: switch to the key made ahead (or a new
		 * one) now and seal under it. */
		st = e2e_sender_advance(s, scope, s->cfg.clock_ms());
		return st == E2E_OK ? scope_tx(s, scope, &tx) : st;
	}
	st = scope_tx(s, scope, &tx);
	if (st != E2E_OK || !e2e_tx_reserve_due(tx, &id, &want))
		return st;
	st = reserve(s, &id, want, 1);
	return st == E2E_OK ? e2e_tx_extend(tx, want) : E2E_ERR_RESERVE;
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
				it->ceiling = e2e_first_ceiling(it->floor, it->block, it->limit);
		}
		if (it->st == E2E_OK && reserve(s, &it->id, it->ceiling, 1) != E2E_OK)
			it->st = E2E_ERR_RESERVE;
		if (it->st != E2E_OK && ret == E2E_OK)
			ret = it->st;
	}
	return ret;
}

enum e2e_status e2e_statedir_tick(struct e2e_sender *s, uint64_t now_ms)
{
	struct file_sig fs;
	enum e2e_status ret = E2E_OK, st;

	/* A failed reload keeps the previous configuration in force. */
	e2e_file_sig(&fs, s->p_scopes);
	if (e2e_file_sig_changed(&fs, &s->sig_scopes) && (st = load_scopes(s)) != E2E_OK)
		ret = st == E2E_ERR_BUSY ? ret : st;   /* retried next tick */
	e2e_file_sig(&fs, s->p_enrolled);
	if (e2e_file_sig_changed(&fs, &s->sig_enrolled) && (st = load_enrolled(s)) != E2E_OK)
		ret = st == E2E_ERR_BUSY ? ret : st;
	e2e_file_sig(&fs, s->p_keys);
	if (e2e_file_sig_changed(&fs, &s->sig_keys) && (st = e2e_statedir_load_keys(s)) != E2E_OK)
		ret = st == E2E_ERR_BUSY ? ret : st;
	if ((st = ensure_keys(s, now_ms)) != E2E_OK)
		ret = st == E2E_ERR_BUSY ? ret : st;
	if ((st = sync_sign_modes(s, now_ms)) != E2E_OK)
		ret = st == E2E_ERR_BUSY ? ret : st;
	/* Scheduled rotations and the keys made ahead of them (nextkey.c). */
	if ((st = e2e_nextkey_tick(s, now_ms)) != E2E_OK)
		ret = st == E2E_ERR_BUSY ? ret : st;
	if (e2e_keystore_prune(s->keys, now_ms)) {
		int lock = -1;

		/* Re-read under the lock, prune what is expired there, write. */
		if (e2e_statedir_keys_begin(s, &lock) == E2E_OK) {
			(void)e2e_keystore_prune(s->keys, now_ms);
			if ((st = e2e_statedir_keys_commit(s, lock)) != E2E_OK)
				ret = st == E2E_ERR_BUSY ? ret : st;
		}
	}
	/* Here, while this tick does file work anyway, not in the first seal. */
	for (uint32_t i = 0; s->cfg.prepare_keys && i < s->scopes->count; i++) {
		uint8_t sc = s->scopes->scope[i].id;
		const struct e2e_keystore_entry *cur = e2e_keystore_current(s->keys, sc);
		struct e2e_tx *tx;

		/* A tick's copy: the sender's own tx for this key stays. */
		if (!cur || (s->have_epoch && !s->scopes_changed &&
		             s->have_epoch[sc] == (uint64_t)cur->epoch + 1))
			continue;
		if ((st = scope_tx(s, sc, &tx)) != E2E_OK)
			ret = st == E2E_ERR_BUSY ? ret : st;
	}
	return ret;
}

enum e2e_status e2e_sender_tick(struct e2e_sender *s, uint64_t now_ms)
{
	enum e2e_status st;

	if (!s)
		return E2E_ERR_ARG;
	/* A threaded caller (prepare_keys) ticks under its sealing lock:
	 * there the directory lock is only tried, never waited for. */
	s->in_tick = s->cfg.prepare_keys;
	st = e2e_statedir_tick(s, now_ms);
	s->in_tick = 0;
	return st;
}

/*
 * The file half of e2e_sender_open: become the directory's owner, then
 * load identity, scopes, enrolled and keys (creating the keys a scope
 * lacks, rotating a scope whose sign mode changed).
 */
enum e2e_status e2e_statedir_open(struct e2e_sender *s)
{
	const char *dir = s->cfg.dir;
	enum e2e_status ret;

	snprintf(s->p_identity, PATH_MAX, "%s/identity.key", dir);
	snprintf(s->p_scopes, PATH_MAX, "%s/scopes", dir);
	snprintf(s->p_enrolled, PATH_MAX, "%s/enrolled", dir);
	snprintf(s->p_keys, PATH_MAX, "%s/keys", dir);
	snprintf(s->p_txstate, PATH_MAX, "%s/txstate", dir);
	/* Before anything is read: a second sender on this directory would
	 * reserve counters and rotate keys behind this one's back. */
	ret = own_dir(s);
	if (ret != E2E_OK)
		return ret;
	ret = e2e_identity_load(&s->id, s->p_identity);
	if (ret != E2E_OK)
		return e2e_statedir_fail(s, ret, "cannot load identity", s->p_identity);
	s->self = e2e_sender_id(&s->id.pub);
	ret = e2e_ctl_sender_topic(s->announce_topic, sizeof s->announce_topic, s->control_topic,
		s->self);
	if (ret != E2E_OK)
		return ret;
	if ((ret = load_scopes(s)) == E2E_OK && (ret = load_enrolled(s)) == E2E_OK &&
	    (ret = e2e_statedir_load_keys(s)) == E2E_OK && (ret = ensure_keys(s, s->cfg.clock_ms())) == E2E_OK)
		ret = sync_sign_modes(s, s->cfg.clock_ms());
	return ret;
}

void e2e_statedir_close(struct e2e_sender *s)
{
	e2e_dir_unlock(s->owner);
}
