/*
 * A sender: everything an e2e-proxy or a native publisher needs to encrypt
 * and to run the key service, backed by its state directory
 * (identity.key, scopes, enrolled, keys, txstate; see e2e-keytool(1)).
 *
 *  - e2e_sender_seal maps the topic to its key scope and seals with that
 *    scope's current key (one e2e_tx per scope, counters reserved in txstate).
 *  - e2e_sender_control answers key requests (e2e_keysvc).
 *  - e2e_sender_tick (call about once a second) reloads files changed by
 *    e2e-keytool, rotates keys by age or message count, and queues signed
 *    rotation announcements to be published (e2e_sender_next_announce).
 *
 * Not thread-safe: callers serialise access (one lock), except
 * e2e_sender_io_run and e2e_sender_tick_run, which may run on another
 * thread while the lock's holder seals (see "Sealing without waiting on
 * disk" below and docs/architecture.md).
 */
#ifndef E2E_SENDER_H
#define E2E_SENDER_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"
#include "control.h"
#include "identity.h"
#include "keysvc.h"
#include "keyring.h"

struct e2e_sender;

struct e2e_sender_config {
	const char *dir;               /* state directory */
	const char *control_topic;     /* default "e2e/control" */
	uint64_t grace_ms;             /* old epoch accepted after rotation (0 = 24 h) */
	uint64_t max_age_ms;           /* rotate a key older than this (0 = never) */
	uint64_t max_messages;         /* rotate after this many messages (0 = 2^32) */
	uint32_t reserve_block;        /* counter reservation block (0 = default) */
	uint64_t (*clock_ms)(void);    /* wall clock in ms for key times (NULL = realtime) */
	uint32_t summary_ms;           /* signed summary interval (0 = 10 s) */
	int no_summaries;              /* disable summaries (SPEC 11.6) */
	/* For a threaded caller: a tick (e2e_sender_tick_run, or
	 * e2e_sender_tick) ends by making every new current key ready to
	 * seal (txstate read, first block reserved), so a seal after a
	 * rotation or a reload needs no file (e2e_sender_seal_nowait).
	 * e2e_sender_tick, which runs under the caller's sealing lock, then
	 * only tries the directory lock: held by e2e-keytool, its writes wait
	 * for the next tick instead of the caller's lock waiting for the
	 * keytool. */
	int prepare_keys;
	char *err;                     /* receives a message on failure (may be NULL); also
	                                  written by e2e_sender_tick: must outlive the sender */
	size_t err_len;
	/* With max_age_ms: make each next key this long before it is due and
	 * deliver it ahead (0 = half the age; at most 7 periods; SPEC 11.5). */
	uint64_t rotate_lead_ms;
};

/**
 * Become the owner of cfg->dir (its `lock`, held until e2e_sender_close;
 * SPEC 6.5) and load its files. Nothing is written unless a scope has no
 * key yet. A key without a txstate record is never sealed from counter 0:
 * its scope is rotated at first use (SPEC 6.2).
 * @return E2E_OK; E2E_ERR_BUSY if another sender owns the directory (cfg->err
 *         names its pid); a load error with cfg->err naming the file.
 */
E2E_API enum e2e_status e2e_sender_open(struct e2e_sender **out,
	const struct e2e_sender_config *cfg) E2E_WARN_UNUSED;
E2E_API void e2e_sender_close(struct e2e_sender *s);

/**
 * Change the key lifetime and summary settings of a running sender (SIGHUP):
 * 0 keeps the defaults of e2e_sender_open. They apply from the next tick,
 * rotation and key on.
 */
E2E_API void e2e_sender_set_policy(struct e2e_sender *s, uint64_t grace_ms, uint64_t max_age_ms,
	uint64_t max_messages, uint32_t summary_ms);

/** Change the rotation lead time (rotate_lead_ms) of a running sender. */
E2E_API void e2e_sender_set_lead(struct e2e_sender *s, uint64_t lead_ms);

/** Our sender id and public key. */
E2E_API uint32_t e2e_sender_self(const struct e2e_sender *s);
E2E_API const struct e2e_public *e2e_sender_public(const struct e2e_sender *s);

/**
 * Seal @p pt published on @p topic (NUL-free, @p topic_len bytes).
 * E2E_ERR_PERM for the control topic and the reply topics (SPEC 11.1);
 * E2E_ERR_NOT_FOUND for a topic in no scope.
 */
E2E_API enum e2e_status e2e_sender_seal(struct e2e_sender *s, uint8_t *out, size_t cap,
	size_t *out_len, const char *topic, size_t topic_len,
	const uint8_t *pt, size_t pt_len) E2E_WARN_UNUSED;

/**
 * Seal an MQTT will for @p topic: like e2e_sender_seal, but in a run of its
 * own (e2e_tx_seal_alone) and not recorded for summaries, so a will that is
 * never published leaves no gap and no missing message (SPEC 5.1, 8).
 */
E2E_API enum e2e_status e2e_sender_seal_will(struct e2e_sender *s, uint8_t *out, size_t cap,
	size_t *out_len, const char *topic, size_t topic_len,
	const uint8_t *pt, size_t pt_len) E2E_WARN_UNUSED;

/*
 * Sealing without waiting on disk. e2e_sender_seal does the file work the
 * sealing core needs inline (reading txstate for a key's first use,
 * reserving the next counter block, rotating an exhausted key). A caller
 * whose sealing thread must never wait on a file uses instead:
 *
 *  - e2e_sender_seal_nowait: memory only, never opens, locks or syncs a
 *    file. E2E_ERR_RESERVE when the topic's scope has no durable counter
 *    reservation for its current key yet (or it is used up), and
 *    E2E_ERR_EXHAUSTED when the key reached its message limit; nothing is
 *    sealed then (never past a durable ceiling, SPEC 4.1).
 *  - e2e_sender_io_wanted: 1 when the core wants the I/O side (a reservation
 *    fell below its low-water mark of half a block, or a seal was refused).
 *  - e2e_sender_io_plan (under the caller's lock, memory only): what to make
 *    durable; e2e_sender_io_run (WITHOUT the lock, on an I/O thread: it
 *    reads nothing the sealing thread changes): the txstate reads and
 *    fsynced reservations; e2e_sender_io_apply (under the lock, memory
 *    only): the new durable ceilings and the ready tx contexts of new keys
 *    are swapped in. A seal keeps going from the old durable reservation
 *    while e2e_sender_io_run waits on the disk.
 *
 * Rotations, reloads and pruning have the same three steps (below:
 * e2e_sender_tick_plan/run/apply); io->rotate says an exhausted key waits
 * for one.
 */
#define E2E_SENDER_IO_MAX 256U   /* one item per scope (E2E_SCOPES_MAX) */

struct e2e_sender_io_item {
	struct e2e_keyid id;       /* the key */
	uint64_t floor;            /* open: ceiling read from txstate */
	uint64_t ceiling;          /* the ceiling made durable */
	uint64_t limit;            /* the key's message limit when planned */
	uint32_t block;            /* reservation block when planned */
	int open;                  /* 1: a tx for a new key; 0: extend one */
	enum e2e_status st;        /* result of e2e_sender_io_run */
	uint32_t gen;              /* the scope's tx generation when planned */
};

struct e2e_sender_io {
	uint32_t n;
	int rotate;                /* an exhausted key waits for e2e_sender_tick */
	struct e2e_sender_io_item item[E2E_SENDER_IO_MAX];
};

/** Seal (@p will: as e2e_sender_seal_will) without any file I/O; see above. */
E2E_API enum e2e_status e2e_sender_seal_nowait(struct e2e_sender *s, int will, uint8_t *out,
	size_t cap, size_t *out_len, const char *topic, size_t topic_len, const uint8_t *pt,
	size_t pt_len) E2E_WARN_UNUSED;

E2E_API int e2e_sender_io_wanted(const struct e2e_sender *s);

/** Fill @p io with the reservations due; returns how many (0: nothing to do). */
E2E_API uint32_t e2e_sender_io_plan(struct e2e_sender *s, struct e2e_sender_io *io);

/** Make the planned reservations durable; the first failure is returned (per item in st). */
E2E_API enum e2e_status e2e_sender_io_run(struct e2e_sender *s,
	struct e2e_sender_io *io) E2E_WARN_UNUSED;

/** Swap in what e2e_sender_io_run made durable (stale items are skipped). */
E2E_API enum e2e_status e2e_sender_io_apply(struct e2e_sender *s,
	const struct e2e_sender_io *io) E2E_WARN_UNUSED;

/**
 * Handle a message from the control topic; see e2e_keysvc_handle. A message
 * on "<control>/authority/<fp>" is a revocation list (SPEC 13.3): applied
 * (a revoked holder's scopes rotated) and never answered, so the result is
 * never E2E_OK: E2E_ERR_EXISTS when it was applied or is not newer than the
 * one held, else the reason it was refused (MALFORMED, AUTH, NOT_FOUND).
 */
E2E_API enum e2e_status e2e_sender_control(struct e2e_sender *s, const uint8_t *msg,
	size_t len, const char *topic, uint8_t *out, size_t cap, size_t *out_len,
	char reply_topic[E2E_CTL_REPLY_MAX + 1], uint64_t now_ms) E2E_WARN_UNUSED;

/**
 * Periodic work: reload changed files, rotate by age/count, expire keys.
 * Returns E2E_OK, or the error of a reload (the previous configuration stays
 * in force; the text is in cfg.err).
 */
E2E_API enum e2e_status e2e_sender_tick(struct e2e_sender *s, uint64_t now_ms) E2E_WARN_UNUSED;

/*
 * The tick without the lock (docs/architecture.md). e2e_sender_tick does
 * its file work (reloads, rotations by age, count, sign mode or request,
 * pruning, the first reservation of every new key) on the sender itself,
 * so a threaded caller would hold its sealing lock across about six
 * fsyncs per rotation. Instead:
 *
 *  - e2e_sender_tick_plan (under the lock, memory only): copies of the
 *    key table, scopes and their map, and which scopes to rotate: those
 *    asked for (e2e_sender_rotate_later) and those whose key fell below
 *    its usage low-water mark (half its message limit, at most four
 *    reservation blocks, left), so a key is rotated AHEAD of its
 *    limit and a seal never meets it exhausted.
 *  - e2e_sender_tick_run (WITHOUT the lock): the tick on the copies: every
 *    file read, lock, write and fsync, and a tx with a durable reservation
 *    for every new current key.
 *  - e2e_sender_tick_apply (under the lock, memory only): swaps the new
 *    tables in, replaces the tx of every scope whose key changed by the
 *    prepared one, queues announcements, and frees @p t.
 *
 * Only one tick (either kind) and one e2e_sender_io_run at a time, from
 * one thread; no e2e_sender_rotate meanwhile (use e2e_sender_rotate_later).
 */
struct e2e_sender_tick;

/** 1 when a rotation is due or asked for: tick now rather than at the next second. */
E2E_API int e2e_sender_tick_wanted(const struct e2e_sender *s);

/** Ask the next tick to rotate the scope of @p topic (memory only). */
E2E_API enum e2e_status e2e_sender_rotate_later(struct e2e_sender *s,
	const char *topic) E2E_WARN_UNUSED;

E2E_API enum e2e_status e2e_sender_tick_plan(struct e2e_sender *s, uint64_t now_ms,
	struct e2e_sender_tick **out) E2E_WARN_UNUSED;
/** The tick's result (as e2e_sender_tick's) is returned again by apply. */
E2E_API enum e2e_status e2e_sender_tick_run(struct e2e_sender_tick *t);
E2E_API enum e2e_status e2e_sender_tick_apply(struct e2e_sender *s,
	struct e2e_sender_tick *t) E2E_WARN_UNUSED;
/** Free a planned tick that will not be applied. */
E2E_API void e2e_sender_tick_free(struct e2e_sender_tick *t);

/** Rotate @p scope now (as e2e-keytool rotate does, but in-process). */
E2E_API enum e2e_status e2e_sender_rotate(struct e2e_sender *s, uint8_t scope,
	uint64_t now_ms) E2E_WARN_UNUSED;

/** Rotate the scope that @p topic belongs to. */
E2E_API enum e2e_status e2e_sender_rotate_topic(struct e2e_sender *s, const char *topic,
	uint64_t now_ms) E2E_WARN_UNUSED;

/**
 * Next queued announcement: message and topic to publish. E2E_ERR_NOT_FOUND
 * when none is queued.
 */
E2E_API enum e2e_status e2e_sender_next_announce(struct e2e_sender *s, uint8_t *out,
	size_t cap, size_t *len, char *topic, size_t topic_cap, uint64_t now_ms) E2E_WARN_UNUSED;

/**
 * Next scope switched on schedule to a key made ahead in time, which is not
 * announced (SPEC 11.5): for the caller's log, as an announcement would be.
 * @return E2E_OK with @p scope and its new @p epoch; E2E_ERR_NOT_FOUND when
 * none is queued; E2E_ERR_ARG.
 */
E2E_API enum e2e_status e2e_sender_next_switch(struct e2e_sender *s, uint8_t *scope,
	uint32_t *epoch) E2E_WARN_UNUSED;

/**
 * Next signed summary message to publish on @p topic, if its interval has
 * passed (call often, e.g. every 100 ms). E2E_ERR_NOT_FOUND when nothing is due.
 */
E2E_API enum e2e_status e2e_sender_next_summary(struct e2e_sender *s, uint8_t *out, size_t cap,
	size_t *len, char *topic, size_t topic_cap, uint64_t now_ms) E2E_WARN_UNUSED;

/** Envelopes that could not be summarized (both accumulators full). */
E2E_API uint64_t e2e_sender_unsummarized(const struct e2e_sender *s);

E2E_API void e2e_sender_keysvc_stats(const struct e2e_sender *s, struct e2e_keysvc_stats *st);

#ifdef __cplusplus
}
#endif

#endif
