/* Order and binding of summary parts per sender; see sumorder.h. */
#include <string.h>

#include "control/sumorder.h"

struct sender_no *e2e_sumorder_of(struct e2e_sumorder *o, uint32_t sender)
{
	for (uint32_t i = 0; i < o->nnos; i++)
		if (o->nos[i].sender == sender)
			return &o->nos[i];
	if (o->nnos == E2E_SUMORDER_SENDERS)
		return NULL;
	memset(&o->nos[o->nnos], 0, sizeof o->nos[o->nnos]);
	o->nos[o->nnos].sender = sender;
	return &o->nos[o->nnos++];
}

/* Parts of the current summary that will never come: what they covered is
 * unchecked. */
static void parts_missed(struct sender_no *no, uint8_t to, struct e2e_sumcheck_part *out)
{
	if (no->next_part >= to || no->parts == 0)
		return;
	out->parts_number = no->number;
	out->parts_from = no->next_part;
	out->parts_to = (uint8_t)(to - 1);
	no->missed_at = no->arrived + 1;
}

static int accept_first(struct sender_no *no, const struct e2e_ctl *m,
	struct e2e_sumcheck_part *out)
{
	uint32_t k;

	if (no->boot == m->boot && m->number <= no->number)
		return 0;   /* this sender run's old summary, replayed */
	if (no->boot && no->boot != m->boot) {
		if (m->time_ms <= no->time_ms)
			return 0;   /* an older run's summary, replayed */
		/* The sender restarted: what it sealed since its last summary
		 * here was never summarized. */
		parts_missed(no, no->parts, out);
		out->restarted = 1;
		no->number = 0;
		no->parts = no->next_part = 0;
		no->missed_at = no->arrived + 1;
	} else if (!no->boot && m->number > 1) {
		/* The first one we see, and not the sender's first: what we
		 * accepted before it may be in summaries we never saw. */
		no->missed_at = no->arrived + 1;
	}
	parts_missed(no, no->parts, out);
	if (no->number && m->number > no->number + 1) {
		out->gap_from = no->number + 1;
		out->gap_to = m->number - 1;
		no->missed_at = no->arrived + 1;
		/* This part 0's history may say what they held. */
		k = no->hist_next++ % E2E_SUMORDER_HIST_SLOTS;
		no->hist[k].boot = m->boot;
		no->hist[k].for_ = m->number;
		no->hist[k].from = out->gap_from;
		no->hist[k].to = out->gap_to;
	}
	no->boot = m->boot;
	no->number = m->number;
	no->parts = m->parts;
	no->next_part = 0;
	return 1;
}

int e2e_sumorder_accept(struct e2e_sumorder *o, uint32_t sender, const struct e2e_ctl *m,
	struct e2e_sumcheck_part *out)
{
	struct sender_no *no;

	if (!m || m->type != E2E_CTL_SUMMARY || !(no = e2e_sumorder_of(o, sender)))
		return -1;
	if (m->part == 0) {
		if (!accept_first(no, m, out))
			return 0;
	} else if (!no->boot || m->boot != no->boot || m->number != no->number ||
		   m->parts != no->parts || m->part < no->next_part) {
		return 0;   /* not a part of the summary whose part 0 we accepted */
	} else {
		parts_missed(no, m->part, out);
	}
	out->accepted = 1;
	no->next_part = (uint8_t)(m->part + 1);
	if (m->time_ms > no->time_ms)
		no->time_ms = m->time_ms;
	if (m->part + 1 == m->parts)
		out->index = ++no->arrived;
	return 0;
}

