/*
 * Summary history (SPEC 11.6; see sumhist.h): the wire, the sender's ring
 * of the last intervals' ranges, and the receiver's count of what the
 * summaries it lost had listed.
 */
#include <stdlib.h>
#include <string.h>

#include "control/sumhist.h"

/* A range longer than this is looked up only this far; the rest counts as
 * never arrived (the receiver's tables hold far fewer envelopes anyway). */
#define LOOKUP_MAX (1U << 22)

enum e2e_status e2e_sumhist_parse(struct e2e_ctl *m, struct e2e_rd *r)
{
	size_t start = r->off;
	uint32_t prev = m->number;

	m->nhist = e2e_rd_u8(r);
	m->hist = r->p + r->off;
	if (r->bad || m->nhist > E2E_SUMMARY_HIST_MAX || (m->part != 0 && m->nhist != 0))
		return E2E_ERR_MALFORMED;
	for (uint8_t i = 0; i < m->nhist; i++) {
		uint32_t number = e2e_rd_u32(r);
		uint16_t n = e2e_rd_u16(r);

		/* Earlier summaries of this run, newest first, at most H back. */
		if (r->bad || number == 0 || number >= prev ||
		    m->number - number > E2E_SUMMARY_HIST_MAX)
			return E2E_ERR_MALFORMED;
		prev = number;
		for (uint16_t j = 0; j < n; j++) {
			uint32_t first, last;
			uint16_t tl;

			(void)e2e_rd_u32(r);
			tl = e2e_rd_u16(r);
			if (tl == 0 || !e2e_rd_skip(r, tl))
				return E2E_ERR_MALFORMED;
			first = e2e_rd_u32(r);
			last = e2e_rd_u32(r);
			if (r->bad || first == 0 || last < first)
				return E2E_ERR_MALFORMED;
		}
	}
	m->hist_len = (size_t)(r->p + r->off - m->hist);
	if (r->bad || r->off - start > E2E_SUMMARY_HIST_BYTES || e2e_rd_left(r) != 0)
		return E2E_ERR_MALFORMED;
	return E2E_OK;
}

int e2e_sumhist_next(const struct e2e_ctl *m, size_t *off, uint8_t *left,
	struct e2e_sumhist_rec *h)
{
	struct e2e_rd r;

	if (*left == 0 || m->type != E2E_CTL_SUMMARY)
		return 0;
	e2e_rd_init(&r, m->hist + *off, m->hist_len - *off);
	h->number = e2e_rd_u32(&r);
	h->nranges = e2e_rd_u16(&r);
	h->ranges = r.p + r.off;
	for (uint16_t j = 0; j < h->nranges; j++) {
		(void)e2e_rd_u32(&r);
		(void)e2e_rd_skip(&r, e2e_rd_u16(&r));
		(void)e2e_rd_u32(&r);
		(void)e2e_rd_u32(&r);
	}
	h->len = (size_t)(r.p + r.off - h->ranges);
	*off += r.off;
	(*left)--;
	return !r.bad;
}

int e2e_sumhist_range_next(const struct e2e_sumhist_rec *h, size_t *off, uint16_t *left,
	struct e2e_sumhist_range *x)
{
	struct e2e_rd r;

	if (*left == 0)
		return 0;
	e2e_rd_init(&r, h->ranges + *off, h->len - *off);
	x->run = e2e_rd_u32(&r);
	x->topic_len = e2e_rd_u16(&r);
	x->topic = (const char *)e2e_rd_skip(&r, x->topic_len);
	x->first = e2e_rd_u32(&r);
	x->last = e2e_rd_u32(&r);
	*off += r.off;
	(*left)--;
	return !r.bad;
}

/* ---- sender ---- */

struct ring_rec {
	uint32_t boot, number;        /* number 0: empty */
	uint16_t n;
	int too_big;                  /* its ranges exceed the byte bound: never repeated */
	uint32_t len;
	uint8_t buf[E2E_SUMMARY_HIST_BYTES];
};

struct e2e_sumhist_ring {
	struct ring_rec rec[E2E_SUMMARY_HIST_MAX];
	uint32_t next;
	struct ring_rec *cur;         /* the record being filled */
};

enum e2e_status e2e_sumhist_ring_create(struct e2e_sumhist_ring **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? E2E_OK : E2E_ERR_NOMEM;
}

void e2e_sumhist_ring_destroy(struct e2e_sumhist_ring *h)
{
	free(h);
}

void e2e_sumhist_push_begin(struct e2e_sumhist_ring *h, uint32_t boot, uint32_t number)
{
	struct ring_rec *x = &h->rec[h->next];

	h->next = (h->next + 1) % E2E_SUMMARY_HIST_MAX;
	x->boot = boot;
	x->number = number;
	x->n = 0;
	x->len = 0;
	x->too_big = 0;
	h->cur = x;
}

void e2e_sumhist_push_range(struct e2e_sumhist_ring *h, uint32_t run, const char *topic,
	size_t topic_len, uint32_t first, uint32_t last)
{
	struct ring_rec *x = h->cur;
	struct e2e_wr w;

	if (!x || x->too_big)
		return;
	/* Room for the count byte and the record head, always. */
	if (x->n == UINT16_MAX || 1 + E2E_SUMMARY_HIST_FIXED + x->len + E2E_SUMMARY_RANGE_FIXED +
	    topic_len > E2E_SUMMARY_HIST_BYTES) {
		x->too_big = 1;
		return;
	}
	e2e_wr_init(&w, x->buf + x->len, sizeof x->buf - x->len);
	e2e_wr_u32(&w, run);
	e2e_wr_u16(&w, (uint16_t)topic_len);
	e2e_wr_bytes(&w, (const uint8_t *)topic, topic_len);
	e2e_wr_u32(&w, first);
	e2e_wr_u32(&w, last);
	x->len += (uint32_t)w.off;
	x->n++;
}

/*
 * The records summary (@p boot, @p number) repeats: those of the same run
 * numbered number-1 down to number-H, newest first, each whole, while they
 * fit in the byte bound (one that does not is left out, older ones may
 * still fit). Indices into @p idx; returns their count.
 */
static unsigned pick(const struct e2e_sumhist_ring *h, uint32_t boot, uint32_t number,
	const struct ring_rec *idx[E2E_SUMMARY_HIST_MAX], size_t *bytes)
{
	unsigned n = 0;

	*bytes = 1;
	for (uint32_t back = 1; back <= E2E_SUMMARY_HIST_MAX && back < number; back++) {
		for (unsigned i = 0; i < E2E_SUMMARY_HIST_MAX; i++) {
			const struct ring_rec *x = &h->rec[i];

			if (x->number != number - back || x->boot != boot || x->too_big ||
			    *bytes + E2E_SUMMARY_HIST_FIXED + x->len > E2E_SUMMARY_HIST_BYTES)
				continue;
			idx[n++] = x;
			*bytes += E2E_SUMMARY_HIST_FIXED + x->len;
			break;
		}
	}
	return n;
}

size_t e2e_sumhist_size(const struct e2e_sumhist_ring *h, uint32_t boot, uint32_t number)
{
	const struct ring_rec *idx[E2E_SUMMARY_HIST_MAX];
	size_t bytes;

	(void)pick(h, boot, number, idx, &bytes);
	return bytes;
}

void e2e_sumhist_write(const struct e2e_sumhist_ring *h, uint32_t boot, uint32_t number,
	struct e2e_wr *w)
{
	const struct ring_rec *idx[E2E_SUMMARY_HIST_MAX];
	size_t bytes;
	unsigned n = pick(h, boot, number, idx, &bytes);

	e2e_wr_u8(w, (uint8_t)n);
	for (unsigned i = 0; i < n; i++) {
		e2e_wr_u32(w, idx[i]->number);
		e2e_wr_u16(w, idx[i]->n);
		e2e_wr_bytes(w, idx[i]->buf, idx[i]->len);
	}
}

/* ---- receiver ---- */

static void check_range(const struct e2e_sumhist_range *x, uint32_t sender, uint32_t number,
	e2e_sumhist_arrived_fn arrived, void *actx, e2e_sumcheck_report_fn report, void *ctx)
{
	struct e2e_sumcheck_report rep;
	uint64_t span = (uint64_t)x->last - x->first + 1;
	uint32_t look = span > LOOKUP_MAX ? LOOKUP_MAX : (uint32_t)span;

	memset(&rep, 0, sizeof rep);
	for (uint32_t k = 0; k < look; k++) {
		uint32_t seq = x->first + k;

		if (arrived(actx, x->run, x->topic, x->topic_len, seq))
			continue;
		if (rep.missing == 0)
			rep.first = seq;
		rep.last = seq;
		rep.missing++;
	}
	if (span > look) {
		if (rep.missing == 0)
			rep.first = x->first + look;
		rep.last = x->last;
		rep.missing += (uint32_t)(span - look);
	}
	if (!rep.missing)
		return;
	rep.result = E2E_SUM_HIST_LOST;
	rep.sender = sender;
	rep.run = x->run;
	rep.topic = x->topic;
	rep.topic_len = x->topic_len;
	rep.number = number;
	report(ctx, &rep);
}

uint32_t e2e_sumhist_check(const struct e2e_ctl *m, uint32_t sender, uint32_t from,
	uint32_t to, e2e_sumcheck_match_fn match, e2e_sumhist_arrived_fn arrived, void *actx,
	e2e_sumcheck_report_fn report, void *ctx)
{
	struct e2e_sumhist_rec h;
	uint32_t covered = 0;
	uint8_t left = m->nhist;
	size_t off = 0;

	if (from == 0 || to < from)
		return 0;
	while (e2e_sumhist_next(m, &off, &left, &h)) {
		struct e2e_sumhist_range x;
		uint16_t rl = h.nranges;
		size_t ro = 0;

		if (h.number < from || h.number > to)
			continue;
		covered++;
		while (e2e_sumhist_range_next(&h, &ro, &rl, &x))
			if (!match || match(ctx, x.topic, x.topic_len))
				check_range(&x, sender, h.number, arrived, actx, report, ctx);
	}
	return to - from + 1 - covered;
}
