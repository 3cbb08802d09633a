/*
 * Signed summaries (protocol/SPEC.md sec. 11.6).
 *
 * Sender side, e2e_summary: record every sealed envelope (stream, seq and
 * its 8-byte digest d_s), then emit the interval as one or more signed
 * SUMMARY messages, each part bound to (boot, number).
 *
 * Receiver side, e2e_sumcheck: keep the digest of every accepted envelope,
 * compare each with the sender's d_s for that seq, and report what the
 * summaries reveal: insider forgeries (naming the seq), messages that never
 * arrived (kept open: a late arrival is still checked and corrects the
 * count), messages no summary covered, and what could not be checked.
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

#define E2E_DIGEST_BYTES E2E_SUMMARY_DIGEST_BYTES

struct e2e_summary;

/**
 * An accumulator for @p max_streams streams, @p pool bytes of topics and
 * @p max_digests envelopes per interval.
 */
E2E_API enum e2e_status e2e_summary_create(struct e2e_summary **out, uint32_t max_streams,
	uint32_t pool, uint32_t max_digests) E2E_WARN_UNUSED;
E2E_API void e2e_summary_destroy(struct e2e_summary *s);

/**
 * Record envelope @p env (sequence @p seq of stream (@p run, @p topic)).
 * E2E_ERR_FULL: no room (streams, topics or digests): emit first, then add
 * again. E2E_ERR_ARG also for a topic longer than E2E_SUMMARY_TOPIC_MAX
 * (it could not be listed in a part).
 */
E2E_API enum e2e_status e2e_summary_add(struct e2e_summary *s, uint32_t run,
	const char *topic, size_t topic_len, uint32_t seq,
	const uint8_t *env, size_t env_len) E2E_WARN_UNUSED;

/** Streams recorded since the last emit. */
E2E_API uint32_t e2e_summary_streams(const struct e2e_summary *s);

/**
 * Build part @p part of summary (@p boot, @p number) into @p out, signed by
 * @p id for @p topic ("<control>/<sender hex>"); *parts receives the number
 * of parts. Call with part = 0, 1, ... < *parts, then e2e_summary_reset.
 * E2E_ERR_FULL: the interval would need more than 255 parts (cannot happen
 * within the accumulator's bounds; checked anyway).
 */
E2E_API enum e2e_status e2e_summary_build(struct e2e_summary *s,
	const struct e2e_identity *id, const char *topic, uint32_t interval_ms, uint32_t boot,
	uint32_t number, uint8_t part, uint8_t *parts, uint8_t *out, size_t cap, size_t *len,
	uint64_t now_ms) E2E_WARN_UNUSED;

/** Forget the recorded interval. */
E2E_API void e2e_summary_reset(struct e2e_summary *s);

/** d = BLAKE2b-64(envelope), the per-envelope digest d_s of SPEC 11.6. */
E2E_API void e2e_summary_digest(uint8_t d[E2E_DIGEST_BYTES], const uint8_t *env, size_t len);

/* ---- receiver side ---- */

enum e2e_sumcheck_result {
	E2E_SUM_VERIFIED = 1,     /* every message of the entry received, each d_s matches */
	E2E_SUM_FORGED,           /* seq @first (= @last): accepted message whose d_s differs:
	                           * an insider forgery */
	E2E_SUM_UNCONFIRMED,      /* @missing messages of the entry not (yet) arrived; they
	                           * stay open until the window closes over them */
	E2E_SUM_UNSUMMARIZED,     /* an accepted message no summary covered */
	E2E_SUM_UNCHECKED,        /* @missing messages (seqs first..last) that could not be
	                           * judged: their summaries never came, or a bound was hit */
	E2E_SUM_LATE,             /* seq @first, reported unconfirmed before, arrived late
	                           * and matches its d_s: @missing (1) fewer unconfirmed */
	E2E_SUM_HIST_LOST,        /* summary @number never arrived, but a later one's history
	                           * lists its range of the entry's stream: @missing of seqs
	                           * first..last never arrived (SPEC 11.6 history) */
};

struct e2e_sumcheck_report {
	enum e2e_sumcheck_result result;
	uint32_t sender, run;
	const char *topic;        /* NULL for UNSUMMARIZED, LATE and UNCHECKED */
	size_t topic_len;
	uint32_t first, last;     /* seqs concerned */
	uint32_t missing;
	uint32_t number;          /* E2E_SUM_HIST_LOST: the summary that never arrived */
};

typedef void (*e2e_sumcheck_report_fn)(void *ctx, const struct e2e_sumcheck_report *r);
/* Whether the receiver subscribes to @p topic (entries it does not are skipped). */
typedef int (*e2e_sumcheck_match_fn)(void *ctx, const char *topic, size_t topic_len);

struct e2e_sumcheck_config {
	uint32_t max_records;     /* accepted envelopes waiting for a summary (0 = 262144) */
	uint32_t max_open;        /* summarized seqs not (yet) arrived (0 = 65536) */
	uint32_t max_streams;     /* streams tracked (0 = 4096) */
	uint32_t window;          /* the receiver's replay window W (0 = 1024) */
	uint32_t open_ms;         /* an open seq is closed after this long (0 = 120 s) */
};

struct e2e_sumcheck;

E2E_API enum e2e_status e2e_sumcheck_create(struct e2e_sumcheck **out,
	const struct e2e_sumcheck_config *cfg) E2E_WARN_UNUSED;
E2E_API void e2e_sumcheck_destroy(struct e2e_sumcheck *sc);

/**
 * Remember an accepted envelope (@p now_ms: any monotonic clock, the same
 * for every call). A seq a checked summary listed as not arrived is checked
 * at once: LATE (matches) or FORGED (differs). One behind what the checked
 * summaries covered but no longer open is UNCHECKED. When the table is full
 * the envelope is not kept, and the summary that covers it reports it
 * UNCHECKED, never unconfirmed.
 */
E2E_API void e2e_sumcheck_record(struct e2e_sumcheck *sc, uint32_t sender, uint32_t run,
	const char *topic, size_t topic_len, uint32_t seq, const uint8_t *env, size_t env_len,
	uint64_t now_ms, e2e_sumcheck_report_fn report, void *ctx);

/* What e2e_sumcheck_accept found about a summary part. */
/* What the summaries say about one envelope under a retired key (SPEC 11.5). */
enum e2e_sum_verdict {
	E2E_SUMV_UNKNOWN = 0,     /* no summary of the sender covered its seq yet */
	E2E_SUMV_VERIFIED,        /* a summary lists exactly this envelope (its d_s) */
	E2E_SUMV_FORGED,          /* a summary covers the seq with another d_s, or covered
	                           * it and no longer waits for it */
};

/**
 * Hold an authentic envelope under a retired key (E2E_RX_RETIRED) until a
 * summary of @p sender covers (@p run, @p topic, @p seq). Returns at once
 * what the summaries already checked say (VERIFIED: its summary came first,
 * it arrived late, reported E2E_SUM_LATE; FORGED), else UNKNOWN and the
 * envelope's d_s is kept: the summary that covers it counts it as arrived
 * (no "never arrived" for it), and e2e_sumcheck_verify tells the outcome.
 * Several envelopes with one seq (a forgery and the genuine one) share the
 * record: each is compared with the sender's d_s on its own.
 */
E2E_API enum e2e_sum_verdict e2e_sumcheck_hold(struct e2e_sumcheck *sc, uint32_t sender,
	uint32_t run, const char *topic, size_t topic_len, uint32_t seq, const uint8_t *env,
	size_t env_len, uint64_t now_ms, e2e_sumcheck_report_fn report, void *ctx);

/**
 * The summaries' word on a held envelope (call after each checked
 * summary, e2e_sumcheck_summary): VERIFIED, FORGED or still UNKNOWN. Looks
 * only; the holder decides when UNKNOWN has lasted too long (SPEC 11.5: two
 * complete summaries of the sender checked after it arrived).
 */
E2E_API enum e2e_sum_verdict e2e_sumcheck_verify(struct e2e_sumcheck *sc, uint32_t sender,
	uint32_t run, const char *topic, size_t topic_len, uint32_t seq, const uint8_t *env,
	size_t env_len, uint64_t now_ms, e2e_sumcheck_report_fn report, void *ctx);

struct e2e_sumcheck_part {
	int accepted;             /* 0: a replay, or a part of a summary other than the
	                           * current one: ignore it (count it) */
	int restarted;            /* a newer sender run (boot) than the last accepted */
	uint32_t gap_from, gap_to;   /* summary numbers that never arrived (gap_to 0: none) */
	uint32_t parts_number;       /* summary whose parts never arrived (0: none) */
	uint8_t parts_from, parts_to;
	uint32_t index;           /* arrival index when this part completes its summary
	                           * (pass to e2e_sumcheck_summary), else 0 */
};

/**
 * The ordering rules of SPEC 11.6 for a verified SUMMARY part of @p sender
 * (call on arrival, in arrival order): a part 0 is accepted if newer than
 * the last one accepted (same boot: a higher number; another boot: a newer
 * signed time); a later part only for the (boot, number, parts) of the
 * accepted part 0, once, in order. Numbers and parts skipped are reported
 * in @p out and make what they covered UNCHECKED (e2e_sumcheck_missed is
 * applied). -1 for bad arguments, else 0: @p out->accepted says whether to
 * check the part.
 */
E2E_API int e2e_sumcheck_accept(struct e2e_sumcheck *sc, uint32_t sender,
	const struct e2e_ctl *m, struct e2e_sumcheck_part *out);

/**
 * (Without e2e_sumcheck_accept, which does both itself.)
 * A complete summary of @p sender has just ARRIVED (call when its last part
 * is received, before it is checked, possibly later). Returns its arrival
 * index, to pass to e2e_sumcheck_summary.
 */
E2E_API uint32_t e2e_sumcheck_arrived(struct e2e_sumcheck *sc, uint32_t sender);

/**
 * The summary of @p sender arriving next (its e2e_sumcheck_arrived call
 * follows) comes after summaries (or parts) that never arrived: a gap in
 * numbers, or the sender restarted (numbers begin again) before it
 * summarized what it had sent. Records that this or the next arrival do not
 * cover may have been in those: they are reported once, together, as
 * UNCHECKED instead of each UNSUMMARIZED.
 */
E2E_API void e2e_sumcheck_missed(struct e2e_sumcheck *sc, uint32_t sender);

/**
 * Check a parsed, verified SUMMARY part from @p sender whose arrival index
 * is @p index (0 for a part that does not complete its summary). Entries
 * for topics @p match rejects are skipped. A record is reported
 * UNSUMMARIZED when a second summary that ARRIVED after it has been checked
 * without covering it (UNCHECKED after e2e_sumcheck_missed). Open seqs the
 * window has passed, or older than open_ms, are closed here.
 */
E2E_API void e2e_sumcheck_summary(struct e2e_sumcheck *sc, uint32_t sender,
	const struct e2e_ctl *m, uint32_t index, uint64_t now_ms, e2e_sumcheck_match_fn match,
	e2e_sumcheck_report_fn report, void *ctx);

struct e2e_sumcheck_stats {
	uint64_t not_kept;        /* envelopes not kept: record table full */
	uint64_t open_full;       /* missing seqs not kept open: open table full */
	uint64_t streams_evicted; /* streams forgotten: stream table full */
	uint32_t records, open;   /* in use now */
};

E2E_API void e2e_sumcheck_stats(const struct e2e_sumcheck *sc, struct e2e_sumcheck_stats *st);

#ifdef __cplusplus
}
#endif

#endif
