/*
 * Summary history (protocol/SPEC.md sec. 11.6): part 0 of each SUMMARY
 * also repeats the stream ranges (run, topic, first, last; no digests) of
 * up to E2E_SUMMARY_HIST_MAX earlier summaries of the same sender run, so
 * that a receiver that lost summaries can still say which messages of
 * which topic never arrived. Internal to libe2e: the wire (parse, walk),
 * the sender's ring of past intervals, and the receiver's count.
 */
#ifndef E2E_SUMHIST_H
#define E2E_SUMHIST_H

#include "e2e/control.h"
#include "e2e/summary.h"
#include "base/wire.h"

/* ---- wire ---- */

/* One earlier summary's ranges, as carried. */
struct e2e_sumhist_rec {
	uint32_t number;
	uint16_t nranges;
	const uint8_t *ranges;       /* into the message */
	size_t len;
};

struct e2e_sumhist_range {
	uint32_t run;
	const char *topic;           /* into the message, not NUL-terminated */
	size_t topic_len;
	uint32_t first, last;
};

/** After a SUMMARY's entries: u8 h and the h records, validated; the body must end there. */
enum e2e_status e2e_sumhist_parse(struct e2e_ctl *m, struct e2e_rd *r);

/* Walks (validated by parse): start with *off = 0 and *left = m->nhist
 * (resp. h->nranges); 1 and the item, or 0 at the end. */
int e2e_sumhist_next(const struct e2e_ctl *m, size_t *off, uint8_t *left,
	struct e2e_sumhist_rec *h);
int e2e_sumhist_range_next(const struct e2e_sumhist_rec *h, size_t *off, uint16_t *left,
	struct e2e_sumhist_range *r);

/* ---- sender: the ranges of the last E2E_SUMMARY_HIST_MAX intervals ---- */

struct e2e_sumhist_ring;

enum e2e_status e2e_sumhist_ring_create(struct e2e_sumhist_ring **out);
void e2e_sumhist_ring_destroy(struct e2e_sumhist_ring *h);
/* The interval of summary (@p boot, @p number) ends: its ranges follow. */
void e2e_sumhist_push_begin(struct e2e_sumhist_ring *h, uint32_t boot, uint32_t number);
void e2e_sumhist_push_range(struct e2e_sumhist_ring *h, uint32_t run, const char *topic,
	size_t topic_len, uint32_t first, uint32_t last);
/* Bytes the history of summary (@p boot, @p number) takes (with its count byte). */
size_t e2e_sumhist_size(const struct e2e_sumhist_ring *h, uint32_t boot, uint32_t number);
/* Write it (the same records e2e_sumhist_size counted). */
void e2e_sumhist_write(const struct e2e_sumhist_ring *h, uint32_t boot, uint32_t number,
	struct e2e_wr *w);

/*
 * A sender that double-buffers its accumulators (one filling, one being
 * sent) keeps one history: swap the rings when it swaps the accumulators,
 * so the one being built always holds every interval's ranges.
 */
struct e2e_summary;
void e2e_summary_hist_swap(struct e2e_summary *a, struct e2e_summary *b);

/* ---- receiver ---- */

/* Whether seq @p seq of stream (@p run, @p topic) of the sender arrived: 1
 * yes or cannot tell (never counted as lost), 0 it did not. */
typedef int (*e2e_sumhist_arrived_fn)(void *actx, uint32_t run, const char *topic,
	size_t topic_len, uint32_t seq);

/**
 * Summaries @p from..@p to of the sender run of @p m (part 0) never
 * arrived: for each of them that @p m's history lists, report per entry
 * whose topic @p match accepts the seqs that did not arrive
 * (E2E_SUM_HIST_LOST, @missing of them, @number the lost summary).
 * @return the numbers in from..to that the history did NOT cover (their
 *         content stays unknown).
 */
uint32_t e2e_sumhist_check(const struct e2e_ctl *m, uint32_t sender, uint32_t from,
	uint32_t to, e2e_sumcheck_match_fn match, e2e_sumhist_arrived_fn arrived, void *actx,
	e2e_sumcheck_report_fn report, void *ctx);

#endif
