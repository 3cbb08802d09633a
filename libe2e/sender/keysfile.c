/*
 * A sender's keys file (SPEC 6, 11.5): read when e2e-keytool changed it
 * (by inode, size and mtime), written under the state directory's lock
 * with every epoch noted in txstate first. Below both the state directory
 * (statedir.c) and the keys made ahead (nextkey.c), which both write it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "e2e/txstate.h"
#include "state/fileio.h"
#include "sender/sender_impl.h"

enum e2e_status e2e_statedir_fail(struct e2e_sender *s, enum e2e_status st, const char *what,
	const char *path)
{
	/* Parsers already wrote "<file>:<line>: reason"; keep theirs. */
	if (s->cfg.err && s->cfg.err_len && what)
		snprintf(s->cfg.err, s->cfg.err_len, "%s %s: %s", what, path, e2e_strerror(st));
	return st;
}

void e2e_file_sig(struct file_sig *fs, const char *path)
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

int e2e_file_sig_changed(const struct file_sig *a, const struct file_sig *b)
{
	return a->exists != b->exists || a->dev != b->dev || a->ino != b->ino ||
	       a->size != b->size || a->mtime.tv_sec != b->mtime.tv_sec ||
	       a->mtime.tv_nsec != b->mtime.tv_nsec;
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

/* Epochs txstate shows in use are never issued again, even if the keys
 * file lost them (truncated, restored from an older backup). */
static enum e2e_status set_floors(struct e2e_sender *s, struct e2e_keystore *ks)
{
	uint32_t used[256];
	enum e2e_status st = e2e_txstate_epochs(s->p_txstate, s->self, used);

	if (st != E2E_OK)
		return e2e_statedir_fail(s, st, "cannot read counter reservations", s->p_txstate);
	for (unsigned sc = 0; sc < 256; sc++)
		e2e_keystore_set_floor(ks, (uint8_t)sc, used[sc]);
	return E2E_OK;
}

/* (Re)load the keys file; scopes whose current epoch changed get a new
 * tx on their next message and an announcement. */
enum e2e_status e2e_statedir_load_keys(struct e2e_sender *s)
{
	struct e2e_keystore *n = NULL;
	enum e2e_status st;

	e2e_file_sig(&s->sig_keys, s->p_keys);
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
			e2e_sender_drop_tx(s, (uint8_t)sc);
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

/*
 * Writing `keys`: hold the directory lock, and first take in any change
 * e2e-keytool made since our last read, so neither side loses the other's
 * rotation (a lost rotation after a revocation would keep a revoked key).
 */
enum e2e_status e2e_statedir_keys_begin(struct e2e_sender *s, int *lock)
{
	struct file_sig fs;
	/* In a tick of a threaded caller: never wait for e2e-keytool while
	 * the caller's sealing lock is held; the next tick tries again. */
	enum e2e_status st = e2e_dir_lock_mode(s->cfg.dir, lock, !s->in_tick);

	if (st != E2E_OK)
		return e2e_statedir_fail(s, st, "cannot lock", s->cfg.dir);
	e2e_file_sig(&fs, s->p_keys);
	if (e2e_file_sig_changed(&fs, &s->sig_keys) && (st = e2e_statedir_load_keys(s)) != E2E_OK) {
		e2e_dir_unlock(*lock);
		*lock = -1;
	}
	return st;
}

enum e2e_status e2e_statedir_keys_commit(struct e2e_sender *s, int lock)
{
	enum e2e_status st = note_keys(s->p_txstate, s->self, s->keys);

	/* The ledger first: a key is never in use without its epoch recorded. */
	if (st != E2E_OK) {
		e2e_dir_unlock(lock);
		return e2e_statedir_fail(s, st, "cannot record key epochs in", s->p_txstate);
	}
	st = e2e_keystore_save(s->keys, s->p_keys);
	if (st == E2E_OK) {
		e2e_file_sig(&s->sig_keys, s->p_keys);
		s->switch_unsaved = 0;   /* it carried any switch made in memory */
	}
	else
		e2e_statedir_fail(s, st, "cannot write", s->p_keys);
	e2e_dir_unlock(lock);
	return st;
}
