/* Bounds-checked big-endian cursors; see wire.h. */
#include <stdint.h>
#include <string.h>

#include "base/wire.h"

void e2e_rd_init(struct e2e_rd *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = p ? len : 0;
	r->off = 0;
	r->bad = 0;
}

const uint8_t *e2e_rd_skip(struct e2e_rd *r, size_t n)
{
	const uint8_t *at;

	if (r->bad || n > r->len - r->off) {
		r->bad = 1;
		return NULL;
	}
	at = r->p + r->off;
	r->off += n;
	return at;
}

static uint64_t rd_be(struct e2e_rd *r, size_t n)
{
	const uint8_t *p = e2e_rd_skip(r, n);
	uint64_t v = 0;
	size_t i;

	if (!p)
		return 0;
	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

uint8_t e2e_rd_u8(struct e2e_rd *r) { return (uint8_t)rd_be(r, 1); }
uint16_t e2e_rd_u16(struct e2e_rd *r) { return (uint16_t)rd_be(r, 2); }
uint32_t e2e_rd_u32(struct e2e_rd *r) { return (uint32_t)rd_be(r, 4); }
uint64_t e2e_rd_u48(struct e2e_rd *r) { return rd_be(r, 6); }
uint64_t e2e_rd_u64(struct e2e_rd *r) { return rd_be(r, 8); }

void e2e_rd_bytes(struct e2e_rd *r, uint8_t *dst, size_t n)
{
	const uint8_t *p = e2e_rd_skip(r, n);

	if (p)
		memcpy(dst, p, n);
	else if (n)
		memset(dst, 0, n);
}

size_t e2e_rd_left(const struct e2e_rd *r)
{
	return r->bad ? 0 : r->len - r->off;
}

void e2e_wr_init(struct e2e_wr *w, uint8_t *p, size_t cap)
{
	w->p = p;
	w->cap = p ? cap : 0;
	w->off = 0;
	w->bad = 0;
}

/* !bad implies off <= cap, so cap - off cannot wrap. */
static uint8_t *wr_take(struct e2e_wr *w, size_t n)
{
	uint8_t *at = NULL;

	if (w->bad || !w->p || n > w->cap - w->off) {
		if (n)
			w->bad = 1;
	} else {
		at = w->p + w->off;
	}
	w->off = n > SIZE_MAX - w->off ? SIZE_MAX : w->off + n;
	return at;
}

static void wr_be(struct e2e_wr *w, uint64_t v, size_t n)
{
	uint8_t *p = wr_take(w, n);
	size_t i;

	if (!p)
		return;
	for (i = n; i > 0; i--) {
		p[i - 1] = (uint8_t)v;
		v >>= 8;
	}
}

void e2e_wr_u8(struct e2e_wr *w, uint8_t v) { wr_be(w, v, 1); }
void e2e_wr_u16(struct e2e_wr *w, uint16_t v) { wr_be(w, v, 2); }
void e2e_wr_u32(struct e2e_wr *w, uint32_t v) { wr_be(w, v, 4); }
void e2e_wr_u48(struct e2e_wr *w, uint64_t v) { wr_be(w, v, 6); }
void e2e_wr_u64(struct e2e_wr *w, uint64_t v) { wr_be(w, v, 8); }

void e2e_wr_bytes(struct e2e_wr *w, const uint8_t *src, size_t n)
{
	uint8_t *p = wr_take(w, n);

	if (p && n)
		memcpy(p, src, n);
}
