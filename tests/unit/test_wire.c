/*
 * libe2e/base/wire.c: the tree's one bounds-checked cursor (libe2e's formats and
 * the proxy's MQTT codec read and write through it).
 */
#include <string.h>

#include "testcu.h"
#include "base/wire.h"

static void test_rd_short_is_sticky(void)
{
	static const uint8_t in[3] = { 0x12, 0x34, 0x56 };
	struct e2e_rd r;
	uint8_t out[4] = { 0xAA, 0xAA, 0xAA, 0xAA };

	e2e_rd_init(&r, in, sizeof in);
	TU_CHECK(e2e_rd_u16(&r) == 0x1234, "u16 big-endian");
	TU_CHECK(e2e_rd_left(&r) == 1, "one byte left");
	TU_CHECK(e2e_rd_u16(&r) == 0 && r.bad, "a short u16 reads 0 and fails");
	TU_CHECK(e2e_rd_u8(&r) == 0, "a failed reader stays failed although a byte is left");
	TU_CHECK(e2e_rd_left(&r) == 0, "a failed reader has nothing left");
	e2e_rd_bytes(&r, out, sizeof out);
	TU_CHECK(out[0] == 0 && out[3] == 0, "a failed copy zeroes the destination");
	TU_CHECK(e2e_rd_skip(&r, 0) == NULL, "no span from a failed reader");

	e2e_rd_init(&r, NULL, 5);
	TU_CHECK(e2e_rd_left(&r) == 0 && e2e_rd_skip(&r, 1) == NULL && r.bad,
		"NULL input has length 0");
}

static void test_rd_skip_bounds(void)
{
	static const uint8_t in[4] = { 1, 2, 3, 4 };
	struct e2e_rd r;
	const uint8_t *p;

	e2e_rd_init(&r, in, sizeof in);
	p = e2e_rd_skip(&r, 3);
	TU_CHECK(p == in && r.off == 3, "skip returns the span");
	TU_CHECK(e2e_rd_skip(&r, (size_t)-1) == NULL && r.bad, "a huge length cannot wrap");
}

static void test_wr_counts_and_stops(void)
{
	uint8_t buf[5];
	struct e2e_wr w;

	memset(buf, 0xEE, sizeof buf);
	e2e_wr_init(&w, buf, 4);
	e2e_wr_u16(&w, 0xA1B2);
	e2e_wr_u8(&w, 0xC3);
	TU_CHECK(!w.bad && w.off == 3, "three bytes stored");
	e2e_wr_u16(&w, 0xD4E5);
	TU_CHECK(w.bad && w.off == 5, "a write past cap fails but is counted");
	e2e_wr_u8(&w, 0x77);
	TU_CHECK(w.off == 6, "later writes are counted");
	TU_CHECK(buf[0] == 0xA1 && buf[1] == 0xB2 && buf[2] == 0xC3 && buf[3] == 0xEE &&
		buf[4] == 0xEE, "nothing is stored once a write did not fit (not even one that would)");
}

static void test_wr_size_query(void)
{
	static const uint8_t blob[7] = { 0 };
	struct e2e_wr w;

	e2e_wr_init(&w, NULL, 100);
	e2e_wr_u32(&w, 1);
	e2e_wr_bytes(&w, blob, sizeof blob);
	e2e_wr_u64(&w, 2);
	TU_CHECK(w.off == 4 + 7 + 8, "a writer on NULL counts the size (%zu)", w.off);
	TU_CHECK(w.bad, "and says nothing was stored");

	e2e_wr_init(&w, NULL, 0);
	e2e_wr_bytes(&w, NULL, 0);
	TU_CHECK(!w.bad && w.off == 0, "an empty write to a counting writer is fine");
}

static const struct tu_test wire_tests[] = {
	{ "Reader: short read fails, stays failed, zeroes copies", test_rd_short_is_sticky },
	{ "Reader: skip bounds, no wrap on huge lengths", test_rd_skip_bounds },
	{ "Writer: counts past cap, stores nothing after a failure", test_wr_counts_and_stops },
	{ "Writer: NULL buffer is a size query", test_wr_size_query },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "wire", wire_tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
