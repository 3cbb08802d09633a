/*
 * Order and binding of summary parts per sender (SPEC 11.6): which part 0
 * is new, which parts belong to it, which summaries and parts never came,
 * and the count of complete summaries arrived (what sumcheck.c's records
 * are aged by). Internal to libe2e; sumcheck.c owns one e2e_sumorder.
 */
#ifndef E2E_SUMORDER_H
#define E2E_SUMORDER_H

#include "e2e/control.h"
#include "e2e/summary.h"

#define E2E_SUMORDER_SENDERS 256U
#define E2E_SUMORDER_HIST_SLOTS 4U

/* Complete summaries arrived per sender: a record that two later arrivals
 * passed over is unsummarized. Counting arrivals (not summary numbers) keeps
 * a receiver that starts mid-way from false alarms. missed_at: the latest
 * arrival that followed summaries which never came; a record it or the next
 * arrival passes over may have been in those, so it is unchecked. */
struct sender_no {
	uint32_t sender;
	uint32_t arrived;
	uint32_t missed_at;
	/* The last part 0 accepted (SPEC 11.6 ordering); boot 0: none yet. */
	uint32_t boot, number;
	uint64_t time_ms;
	uint8_t parts, next_part;
	/* Summary numbers from..to of run boot never arrived: the part 0 of
	 * summary @for_ may list their ranges (history). A few slots: a second
	 * gap may be found before the first one's summary is checked. */
	struct {
		uint32_t boot, for_, from, to;
	} hist[E2E_SUMORDER_HIST_SLOTS];
	uint32_t hist_next;
};

struct e2e_sumorder {
	struct sender_no nos[E2E_SUMORDER_SENDERS];
	uint32_t nnos;
};

/* The sender's entry, created if new; NULL when the table is full. */
struct sender_no *e2e_sumorder_of(struct e2e_sumorder *o, uint32_t sender);

/* e2e_sumcheck_accept (@p out zeroed by the caller). */
int e2e_sumorder_accept(struct e2e_sumorder *o, uint32_t sender, const struct e2e_ctl *m,
	struct e2e_sumcheck_part *out);

#endif
