/*
 * Per-stream anti-replay and loss window (RFC 6479): a ring of 64-bit words
 * covering size + 64 sequence numbers, cleared a whole word at a time as the
 * top advances, so an update costs O(1) amortised and never loops per bit.
 */
#include <string.h>

#include "envelope/window_impl.h"

static uint32_t words_of(const struct e2e_window *w)
{
	return E2E_WINDOW_WORDS(w->size);
}

/*
 * Word of @p seq (top - W < seq <= top), from top's word position: the
 * distance in words is below the word count, so a conditional add
 * replaces a 64-bit division on every message.
 */
static uint32_t bit_word(const struct e2e_window *w, uint64_t seq)
{
	uint32_t d = (uint32_t)((w->top >> 6) - (seq >> 6));

	return w->top_pos >= d ? w->top_pos - d : w->top_pos + words_of(w) - d;
}

void e2e_window_set_top(struct e2e_window *w, uint64_t top)
{
	w->top = top;
	w->top_pos = (uint32_t)((top >> 6) % words_of(w));
}

static int bit_get(const struct e2e_window *w, uint64_t seq)
{
	return (int)((w->bits[bit_word(w, seq)] >> (seq & 63U)) & 1U);
}

enum e2e_status e2e_window_init(struct e2e_window *w, uint64_t *bits, uint32_t size)
{
	if (!w || !bits || size < E2E_WINDOW_MIN || size > E2E_WINDOW_MAX || size % 64U)
		return E2E_ERR_ARG;
	e2e_window_reset(w, bits, size);
	return E2E_OK;
}

void e2e_window_reset(struct e2e_window *w, uint64_t *bits, uint32_t size)
{
	memset(w, 0, sizeof *w);
	w->size = size;
	w->bits = bits;
	memset(bits, 0, (size_t)E2E_WINDOW_WORDS(size) * sizeof *bits);
}

enum e2e_verdict e2e_window_check(const struct e2e_window *w, uint64_t seq, uint64_t *gap)
{
	uint64_t skipped = 0;
	enum e2e_verdict v;

	if (seq == 0) {
		v = E2E_V_MALFORMED;
	} else if (w->top == 0) {
		v = E2E_V_OK;
	} else if (seq > w->top) {
		skipped = seq - w->top - 1;
		v = skipped ? E2E_V_GAP : E2E_V_OK;
	} else if (w->top - seq >= w->size) {
		v = E2E_V_TOO_OLD;
	} else if (bit_get(w, seq)) {
		v = E2E_V_DUPLICATE;
	} else {
		v = E2E_V_LATE;
	}
	if (gap)
		*gap = skipped;
	return v;
}

void e2e_window_update(struct e2e_window *w, uint64_t seq)
{
	uint32_t nwords = words_of(w);

	if (w->top == 0) {
		w->base = seq;
		e2e_window_set_top(w, seq);
	} else if (seq > w->top) {
		/* Clear the words that the advancing top brings into use. */
		uint64_t delta = (seq >> 6) - (w->top >> 6);

		if (delta >= nwords) {
			memset(w->bits, 0, (size_t)nwords * sizeof *w->bits);
			e2e_window_set_top(w, seq);
		} else {
			for (uint64_t b = 0; b < delta; b++) {
				w->top_pos = w->top_pos + 1 == nwords ? 0 : w->top_pos + 1;
				w->bits[w->top_pos] = 0;
			}
			w->top = seq;
		}
	} else if (seq < w->base) {
		/* A reordered message from before the stream's first one. */
		w->base = seq;
	}
	w->bits[bit_word(w, seq)] |= (uint64_t)1 << (seq & 63U);
	w->received++;
}

void e2e_window_losses(const struct e2e_window *w, uint64_t *pending, uint64_t *lost)
{
	uint64_t lo, seen = 0, span, holes;

	if (w->top == 0) {
		*pending = *lost = 0;
		return;
	}
	/* The sequence numbers still inside the window: [lo, top]. */
	lo = w->top - w->base + 1 > w->size ? w->top - w->size + 1 : w->base;
	for (uint64_t s = lo; s <= w->top; s++)
		seen += (uint64_t)bit_get(w, s);
	span = w->top - lo + 1;
	holes = w->top - w->base + 1 - w->received;
	*pending = span - seen;
	*lost = holes - *pending;
}
