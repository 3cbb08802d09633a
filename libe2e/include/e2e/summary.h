/*
 * Signed summaries (protocol/SPEC.md sec. 11.6).
 *
 * Sender side, e2e_summary: record every sealed envelope (stream, seq and a
 * running BLAKE2b over per-envelope digests), then emit the interval as one
 * or more signed SUMMARY messages.
 *
 * Receiver side, e2e_sumcheck: record the digest of every accepted envelope,
 * compare with the sender's summaries, and report what they reveal: insider
 * forgeries, messages that never arrived, messages no summary covered.
 * Both are pure and bounded; memory is allocated once at create.
 */
#ifndef E2E_SUMMARY_H
#define E2E_SUMMARY_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"
#include "control.h"
#include "identity.h"

#define E2E_DIGEST_BYTES 16U

struct e2e_summary;

/** An accumulator for @p max_streams streams and @p pool bytes of topics. */
E2E_API enum e2e_status e2e_summary_create(struct e2e_summary **out, uint32_t max_streams,
	uint32_t pool) E2E_WARN_UNUSED;
E2E_API void e2e_summary_destroy(struct e2e_summary *s);

/**
 * Record envelope @p env (sequence @p seq of stream (@p run, @p topic)).
 * E2E_ERR_FULL: no room for a new stream: emit first, then add again.
 */
E2E_API enum e2e_status e2e_summary_add(struct e2e_summary *s, uint32_t run,
	const char *topic, size_t topic_len, uint32_t seq,
	const uint8_t *env, size_t env_len) E2E_WARN_UNUSED;

/** Streams recorded since the last emit. */
E2E_API uint32_t e2e_summary_streams(const struct e2e_summary *s);

/**
 * Build part @p part of summary @p number into @p out, signed by @p id for
 * @p topic ("<control>/<sender hex>"); *parts receives the number of parts.
 * Call with part = 0, 1, ... < *parts, then e2e_summary_reset.
 */
E2E_API enum e2e_status e2e_summary_build(const struct e2e_summary *s,
	const struct e2e_identity *id, const char *topic, uint32_t interval_ms, uint32_t number,
	uint8_t part, uint8_t *parts, uint8_t *out, size_t cap, size_t *len,
	uint64_t now_ms) E2E_WARN_UNUSED;

/** Forget the recorded interval. */
E2E_API void e2e_summary_reset(struct e2e_summary *s);

/** d = BLAKE2b-128(envelope), the per-envelope digest of SPEC 11.6. */
E2E_API void e2e_summary_digest(uint8_t d[E2E_DIGEST_BYTES], const uint8_t *env, size_t len);

/* ---- receiver side ---- */

enum e2e_sumcheck_result {
	E2E_SUM_VERIFIED = 1,     /* every message of the entry received, digest matches */
	E2E_SUM_FORGED,           /* all received, digest differs: an insider forgery */
	E2E_SUM_UNCONFIRMED,      /* @missing messages of the entry never arrived */
	E2E_SUM_UNSUMMARIZED,     /* an accepted message no summary covered */
	E2E_SUM_UNCHECKED,        /* @missing accepted messages (seqs first..last, any
	                           * run) whose summaries never came: not judged */
};

struct e2e_sumcheck_report {
	enum e2e_sumcheck_result result;
	uint32_t sender, run;
	const char *topic;        /* NULL for UNSUMMARIZED and UNCHECKED */
	size_t topic_len;
	uint32_t first, last;     /* seqs concerned */
	uint32_t missing;
};

typedef void (*e2e_sumcheck_report_fn)(void *ctx, const struct e2e_sumcheck_report *r);
/* Whether the receiver subscribes to @p topic (entries it does not are skipped). */
typedef int (*e2e_sumcheck_match_fn)(void *ctx, const char *topic, size_t topic_len);

struct e2e_sumcheck;

E2E_API enum e2e_status e2e_sumcheck_create(struct e2e_sumcheck **out,
	uint32_t max_pending) E2E_WARN_UNUSED;
E2E_API void e2e_sumcheck_destroy(struct e2e_sumcheck *sc);

/** Remember an accepted envelope. When full, the oldest record is dropped
 * (and counted as overflow: its message cannot be confirmed). */
E2E_API void e2e_sumcheck_record(struct e2e_sumcheck *sc, uint32_t sender, uint32_t run,
	const char *topic, size_t topic_len, uint32_t seq, const uint8_t *env, size_t env_len);

/**
 * A complete summary of @p sender has just ARRIVED (call when its last part
 * is received, before it is checked, possibly later). Returns its arrival
 * index, to pass to e2e_sumcheck_summary.
 */
E2E_API uint32_t e2e_sumcheck_arrived(struct e2e_sumcheck *sc, uint32_t sender);

/**
 * The summary of @p sender arriving next (its e2e_sumcheck_arrived call
 * follows) comes after summaries that never arrived: a gap in numbers, or
 * the sender restarted (numbers begin again) before it summarized what it
 * had sent. Records that this or the next arrival do not cover may have been
 * in those: they are reported once, together, as UNCHECKED instead of each
 * UNSUMMARIZED. (The missing summaries themselves are the caller's alarm.)
 */
E2E_API void e2e_sumcheck_missed(struct e2e_sumcheck *sc, uint32_t sender);

/**
 * Check a parsed, verified SUMMARY part from @p sender whose arrival index
 * is @p index. Entries for topics @p match rejects are skipped. A record is
 * reported UNSUMMARIZED when a second summary that ARRIVED after it has been
 * checked without covering it: counting arrivals, not checks, a message sealed
 * just after a summary was sent is not blamed on that one (UNCHECKED after
 * e2e_sumcheck_missed). Reports go to @p report.
 */
E2E_API void e2e_sumcheck_summary(struct e2e_sumcheck *sc, uint32_t sender,
	const struct e2e_ctl *m, uint32_t index, e2e_sumcheck_match_fn match,
	e2e_sumcheck_report_fn report, void *ctx);

/** Records dropped because the table was full. */
E2E_API uint64_t e2e_sumcheck_overflow(const struct e2e_sumcheck *sc);

#ifdef __cplusplus
}
#endif

#endif
