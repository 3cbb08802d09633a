/*
 * Bounds-checked big-endian cursors (after s2n-tls's stuffer), the only
 * ones in the tree (libe2e's formats and the proxy's MQTT codec): every
 * read and write checks the remaining length, and a failed cursor stays
 * failed, so a parser can do a run of reads and test once at the end.
 *
 * The writer also counts: @off grows by every byte asked for, stored or
 * not, so one serialiser gives both the size (a writer on NULL, 0) and
 * the bytes (coreMQTT's GetPacketSize + Serialize without two code paths).
 * Nothing is stored once a write did not fit; @bad says so.
 */
#ifndef E2E_WIRE_H
#define E2E_WIRE_H

#include <stddef.h>
#include <stdint.h>

struct e2e_rd {
	const uint8_t *p;
	size_t len;
	size_t off;
	int bad;
};

struct e2e_wr {
	uint8_t *p;       /* NULL with cap 0: count only */
	size_t cap;
	size_t off;       /* bytes asked for so far, stored or not */
	int bad;          /* a write did not fit (always, when counting only) */
};

void e2e_rd_init(struct e2e_rd *r, const uint8_t *p, size_t len);
uint8_t e2e_rd_u8(struct e2e_rd *r);
uint16_t e2e_rd_u16(struct e2e_rd *r);
uint32_t e2e_rd_u32(struct e2e_rd *r);
uint64_t e2e_rd_u48(struct e2e_rd *r);
uint64_t e2e_rd_u64(struct e2e_rd *r);
/* Copy @p n bytes out; on failure @p dst is zeroed. */
void e2e_rd_bytes(struct e2e_rd *r, uint8_t *dst, size_t n);
/* Pointer to the next @p n bytes (NULL on failure). */
const uint8_t *e2e_rd_skip(struct e2e_rd *r, size_t n);
size_t e2e_rd_left(const struct e2e_rd *r);

void e2e_wr_init(struct e2e_wr *w, uint8_t *p, size_t cap);
void e2e_wr_u8(struct e2e_wr *w, uint8_t v);
void e2e_wr_u16(struct e2e_wr *w, uint16_t v);
void e2e_wr_u32(struct e2e_wr *w, uint32_t v);
void e2e_wr_u48(struct e2e_wr *w, uint64_t v);
void e2e_wr_u64(struct e2e_wr *w, uint64_t v);
void e2e_wr_bytes(struct e2e_wr *w, const uint8_t *src, size_t n);

/* Fixed-position helpers for the hot path, where lengths are known. */
static inline void e2e_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t e2e_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Little-endian load, e.g. of a SipHash output (SPEC 5.2 defines it so). */
static inline uint64_t e2e_get_u64_le(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

#endif
