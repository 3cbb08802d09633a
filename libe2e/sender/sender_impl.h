/*
 * Internal to libe2e: the sender object shared by its two halves,
 * sender.c (the sealing core: memory only, no file) and statedir.c (every
 * file of the state directory: lock, identity, scopes, enrolled, keys,
 * txstate). See docs/architecture.md.
 */
#ifndef E2E_SENDER_IMPL_H
#define E2E_SENDER_IMPL_H

#include <limits.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "e2e/enroll.h"
#include "e2e/keystore.h"
#include "e2e/scopes.h"
#include "e2e/sender.h"
#include "e2e/summary.h"
#include "e2e/tx.h"

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
	/* The first counter block of the scope's key made ahead (nextkey.c),
	 * made durable before its switch, so the switch needs no txstate
	 * write: that key never sealed, so its counters start at 0 in this
	 * process (after a restart the durable ceiling is the floor). */
	uint32_t pre_epoch;
	uint64_t pre_ceiling;
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
	uint8_t switched[E2E_SCOPES_MAX / 8];   /* switched on schedule, not announced: to log */
	struct e2e_keysvc *svc;
	struct e2e_fleet *fleet;          /* authorities, credential, revocations (fleet.c) */
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
	int switch_unsaved;             /* a scheduled switch not yet in `keys` (nextkey.c) */
	int in_tick;                    /* statedir: try the directory lock, never wait */
	/* Rotations for the next tick (statetick.c): asked for, or a key
	 * below its usage low-water mark (rotate_due wakes the ticker). */
	uint8_t rotate_req[E2E_SCOPES_MAX / 8];
	int rotate_due;
	int scopes_changed;             /* load_scopes ran (a tick's copy) */
	/* A tick's copy only: epoch + 1 of the tx the sender already has per
	 * scope (0: none), so the copy prepares only the keys that are new. */
	const uint64_t *have_epoch;
};

/* sendertx.c: the tx contexts, the leaf of sender.c, statedir.c and statetick.c. */
void e2e_sender_drop_tx(struct e2e_sender *s, uint8_t scope);
enum e2e_status e2e_sender_open_tx(struct e2e_sender *s, uint8_t scope,
	const struct e2e_keystore_entry *cur, uint64_t floor, uint64_t ceiling, uint64_t limit,
	uint32_t block);
uint64_t e2e_sender_tx_limit(const struct e2e_sender *s);
uint32_t e2e_sender_tx_block(const struct e2e_sender *s);

/* The ceiling to make durable for a key whose counters start above @p floor. */
static inline uint64_t e2e_first_ceiling(uint64_t floor, uint32_t block, uint64_t limit)
{
	uint64_t want = floor + block;

	return want > limit || want < floor ? limit : want;
}

/* Keys with fewer counters left than this are rotated ahead by the tick. */
uint64_t e2e_sender_low_water(const struct e2e_sender *s);

/* keysfile.c: the keys file, and what statedir.c and nextkey.c share. */
enum e2e_status e2e_statedir_fail(struct e2e_sender *s, enum e2e_status st, const char *what,
	const char *path);
void e2e_file_sig(struct file_sig *fs, const char *path);
int e2e_file_sig_changed(const struct file_sig *a, const struct file_sig *b);
/* (Re)load the keys file; scopes whose current epoch changed get a new tx
 * on their next message and an announcement. */
enum e2e_status e2e_statedir_load_keys(struct e2e_sender *s);
/* statedir.c: the files. Writing `keys`: begin takes the directory lock
 * and re-reads what e2e-keytool changed; commit records the epochs in
 * txstate, writes the file and unlocks (also on failure). */
enum e2e_status e2e_statedir_keys_begin(struct e2e_sender *s, int *lock);
enum e2e_status e2e_statedir_keys_commit(struct e2e_sender *s, int lock);
enum e2e_status e2e_statedir_open(struct e2e_sender *s);
void e2e_statedir_close(struct e2e_sender *s);
/* The file work the sealing core asked for (@p why), done inline. */
enum e2e_status e2e_statedir_seal_io(struct e2e_sender *s, uint8_t scope, enum e2e_status why);
/* The tick's file work on @p s (the sender, or a tick's copy of it). */
enum e2e_status e2e_statedir_tick(struct e2e_sender *s, uint64_t now_ms);

/* nextkey.c: scheduled rotations and keys ahead of them (SPEC 11.5). */
enum e2e_status e2e_nextkey_tick(struct e2e_sender *s, uint64_t now_ms);
/* A scheduled rotation of @p scope: to its key made ahead, else a new one. */
enum e2e_status e2e_sender_advance(struct e2e_sender *s, uint8_t scope, uint64_t now_ms);
/* The refresh window a delivery carries (SPEC 11.2); 0, 0 = none. */
void e2e_nextkey_refresh(const struct e2e_sender *s, uint64_t now_ms, uint64_t *from,
	uint64_t *by);

#endif
