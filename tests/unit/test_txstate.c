/*
 * Sender state file tests: counter reservations per key, never lowered,
 * the exact layout of wire-facts, damage refused, atomic writes.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "testcu.h"

#define HEAD_LEN 12U     /* magic 8, count u32 */
#define REC_LEN 20U
#define SUM_LEN 32U

static struct e2e_keyid kid(uint32_t sender, uint8_t scope, uint32_t epoch)
{
	struct e2e_keyid id = { .sender = sender, .scope = scope, .epoch = epoch };

	return id;
}

static uint64_t get(const char *path, struct e2e_keyid id)
{
	uint64_t c = 0;

	CU_ASSERT_EQUAL(e2e_txstate_get(path, &id, &c), E2E_OK);
	return c;
}

/* ---- Safety ------------------------------------------------------------ */

static void test_safety_args(void)
{
	struct e2e_keyid id = kid(1, 1, 1);
	uint64_t c;

	CU_ASSERT_EQUAL(e2e_txstate_get(NULL, &id, &c), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_txstate_get("x", NULL, &c), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_txstate_get("x", &id, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_txstate_reserve(NULL, &id, 5), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_txstate_reserve("x", NULL, 5), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_txstate_forget(NULL, &id), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_txstate_forget("x", NULL), E2E_ERR_ARG);
}

static void test_safety_missing(void)
{
	struct tu_tmp t;
	struct e2e_keyid id = kid(1, 1, 1);
	uint64_t c = 99;

	tu_tmp_open(&t, "tx.state");
	CU_ASSERT_EQUAL(e2e_txstate_get(t.path, &id, &c), E2E_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(c, 0);    /* a new key: ceiling 0 */
	CU_ASSERT_EQUAL(e2e_txstate_forget(t.path, &id), E2E_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(tu_dir_entries(t.dir), 0);
	tu_tmp_close(&t);
}

/* ---- Behaviour --------------------------------------------------------- */

static void test_reserve_never_lowers(void)
{
	struct tu_tmp t;
	struct e2e_keyid id = kid(0xAABBCCDDU, 4, 9);

	tu_tmp_open(&t, "tx.state");
	CU_ASSERT_EQUAL(e2e_txstate_reserve(t.path, &id, 65536), E2E_OK);
	CU_ASSERT_EQUAL(get(t.path, id), 65536);
	CU_ASSERT_EQUAL(e2e_txstate_reserve(t.path, &id, 131072), E2E_OK);
	CU_ASSERT_EQUAL(get(t.path, id), 131072);
	/* A lower (stale) reservation never moves the ceiling back. */
	CU_ASSERT_EQUAL(e2e_txstate_reserve(t.path, &id, 100), E2E_OK);
	CU_ASSERT_EQUAL(get(t.path, id), 131072);
	CU_ASSERT_EQUAL(e2e_txstate_reserve(t.path, &id, 0), E2E_OK);
	CU_ASSERT_EQUAL(get(t.path, id), 131072);
	/* The callback form takes the path as its context. */
	CU_ASSERT_EQUAL(e2e_txstate_reserve_cb(t.path, &id, E2E_COUNTER_MAX), E2E_OK);
	CU_ASSERT_EQUAL(get(t.path, id), E2E_COUNTER_MAX);
	tu_tmp_close(&t);
}

static void test_multiple_keys(void)
{
	struct tu_tmp t;
	/* Inserted out of order; ids differ in one field at a time. */
	const struct e2e_keyid ids[] = {
		kid(5, 1, 1), kid(1, 1, 1), kid(1, 2, 1), kid(1, 1, 2),
		kid(0xFFFFFFFFU, 255, 0xFFFFFFFFU), kid(0, 0, 0), kid(1, 1, 0x100),
	};
	const size_t n = sizeof ids / sizeof ids[0];
	uint64_t c;
	struct e2e_keyid absent = kid(1, 3, 1);

	tu_tmp_open(&t, "tx.state");
	for (size_t i = 0; i < n; i++)
		CU_ASSERT_EQUAL(e2e_txstate_reserve(t.path, &ids[i], 1000 * (i + 1)), E2E_OK);
	for (size_t i = 0; i < n; i++)
		TU_CHECK(get(t.path, ids[i]) == 1000 * (i + 1), "key %zu has another ceiling", i);
	CU_ASSERT_EQUAL(e2e_txstate_get(t.path, &absent, &c), E2E_ERR_NOT_FOUND);
	/* Forget one: the others are intact. */
	CU_ASSERT_EQUAL(e2e_txstate_forget(t.path, &ids[2]), E2E_OK);
	CU_ASSERT_EQUAL(e2e_txstate_get(t.path, &ids[2], &c), E2E_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(e2e_txstate_forget(t.path, &ids[2]), E2E_ERR_NOT_FOUND);
	for (size_t i = 0; i < n; i++)
		if (i != 2)
			CU_ASSERT_EQUAL(get(t.path, ids[i]), 1000 * (i + 1));
	tu_tmp_close(&t);
}

static void test_layout_and_mode(void)
{
	struct tu_tmp t;
	struct stat sb;
	uint8_t *buf, sum[SUM_LEN];
	size_t len = 0;
	struct e2e_keyid a = kid(0x01020304U, 5, 0x0A0B0C0DU), b = kid(0x01020304U, 2, 7);
	static const uint8_t rec_b[REC_LEN] = {
		0x01, 0x02, 0x03, 0x04, 0x02, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0x01, 0x00 };
	static const uint8_t rec_a[REC_LEN] = {
		0x01, 0x02, 0x03, 0x04, 0x05, 0, 0, 0, 0x0A, 0x0B, 0x0C, 0x0D,
		0, 0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66 };

	tu_tmp_open(&t, "tx.state");
	CU_ASSERT_EQUAL(e2e_txstate_reserve(t.path, &a, 0x112233445566ULL), E2E_OK);
	CU_ASSERT_EQUAL(e2e_txstate_reserve(t.path, &b, 256), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(stat(t.path, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 07777, 0600);
	/* Atomic write through a temporary: nothing left behind. */
	CU_ASSERT_EQUAL(tu_dir_entries(t.dir), 1);
	buf = tu_read_file(t.path, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	CU_ASSERT_EQUAL_FATAL(len, HEAD_LEN + 2 * REC_LEN + SUM_LEN);
	CU_ASSERT(!memcmp(buf, "E2ETX1\0\0", 8));
	CU_ASSERT(buf[8] == 0 && buf[9] == 0 && buf[10] == 0 && buf[11] == 2);
	/* Sorted by (sender, scope, epoch): b (scope 2) before a (scope 5). */
	CU_ASSERT(!memcmp(buf + HEAD_LEN, rec_b, REC_LEN));
	CU_ASSERT(!memcmp(buf + HEAD_LEN + REC_LEN, rec_a, REC_LEN));
	crypto_generichash(sum, sizeof sum, buf, len - SUM_LEN, NULL, 0);
	CU_ASSERT(!memcmp(sum, buf + len - SUM_LEN, SUM_LEN));
	free(buf);
	tu_tmp_close(&t);
}

/* ---- Damage ------------------------------------------------------------ */

static void expect_corrupt(const struct tu_tmp *t, const uint8_t *data, size_t len,
	const char *what)
{
	struct e2e_keyid id = kid(1, 1, 1);
	uint64_t c = 0;
	enum e2e_status st;

	CU_ASSERT_EQUAL_FATAL(tu_write_file(t->path, data, len, 0600), 0);
	st = e2e_txstate_get(t->path, &id, &c);
	TU_CHECK(st == E2E_ERR_CORRUPT, "%s: get gave %s", what, e2e_strerror(st));
	/* A damaged file is never silently replaced (that would lower ceilings). */
	st = e2e_txstate_reserve(t->path, &id, 5);
	TU_CHECK(st == E2E_ERR_CORRUPT, "%s: reserve gave %s", what, e2e_strerror(st));
}

static void test_corrupt(void)
{
	struct tu_tmp t;
	uint8_t *good, *bad;
	size_t len = 0;
	const struct e2e_keyid ids[] = { kid(1, 1, 1), kid(2, 1, 1), kid(3, 1, 1) };

	tu_tmp_open(&t, "tx.state");
	for (size_t i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(e2e_txstate_reserve(t.path, &ids[i], 77 + i), E2E_OK);
	good = tu_read_file(t.path, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(good);
	bad = malloc(len + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bad);
	/* Truncated anywhere, and one byte too long. */
	for (size_t cut = 0; cut < len; cut += (cut < 16 ? 1 : 9)) {
		char what[48];

		snprintf(what, sizeof what, "truncated to %zu", cut);
		expect_corrupt(&t, good, cut, what);
	}
	memcpy(bad, good, len);
	bad[len] = 0;
	expect_corrupt(&t, bad, len + 1, "one byte appended");
	/* Every single flipped bit. */
	for (size_t off = 0; off < len; off++) {
		char what[48];

		memcpy(bad, good, len);
		bad[off] ^= 0x20;
		snprintf(what, sizeof what, "bit flipped at %zu", off);
		expect_corrupt(&t, bad, len, what);
	}
	/* Valid checksum, invalid content: non-zero pad, duplicate key, bad magic, count. */
	memcpy(bad, good, len);
	bad[HEAD_LEN + 5] = 1;
	tu_reseal(bad, len);
	expect_corrupt(&t, bad, len, "non-zero pad");
	memcpy(bad, good, len);
	memcpy(bad + HEAD_LEN + REC_LEN, bad + HEAD_LEN, REC_LEN);
	tu_reseal(bad, len);
	expect_corrupt(&t, bad, len, "duplicate record");
	memcpy(bad, good, len);
	bad[5] = 'Y';
	tu_reseal(bad, len);
	expect_corrupt(&t, bad, len, "bad magic");
	memcpy(bad, good, len);
	bad[11] = 4;
	tu_reseal(bad, len);
	expect_corrupt(&t, bad, len, "count too large");
	/* The intact file is still good afterwards. */
	CU_ASSERT_EQUAL_FATAL(tu_write_file(t.path, good, len, 0600), 0);
	CU_ASSERT_EQUAL(get(t.path, ids[1]), 78);
	free(bad);
	free(good);
	tu_tmp_close(&t);
}

static void test_many_updates_no_leftovers(void)
{
	struct tu_tmp t;
	struct e2e_keyid id = kid(9, 9, 9);

	tu_tmp_open(&t, "tx.state");
	for (uint64_t c = 1; c <= 40; c++)
		CU_ASSERT_EQUAL(e2e_txstate_reserve(t.path, &id, c * 65536), E2E_OK);
	CU_ASSERT_EQUAL(get(t.path, id), 40 * 65536);
	CU_ASSERT_EQUAL(tu_dir_entries(t.dir), 1);
	tu_tmp_close(&t);
}

/* ---- Vectors: state.json reservation files (SPEC 6.2) ------------------- */

static void run_reservation_file(const json_t *c)
{
	const char *name = tu_jstr(c, "name");
	const json_t *recs = json_object_get(c, "records"), *r;
	uint8_t data[4096];
	size_t len = 0, i;
	struct tu_tmp t;

	if (!name || !json_is_array(recs) || tu_jhex(c, "file", data, sizeof data, &len)) {
		TU_CHECK(0, "reservation vector %s unreadable", name ? name : "?");
		return;
	}
	tu_tmp_open(&t, "txstate");
	CU_ASSERT_EQUAL_FATAL(tu_write_file(t.path, data, len, 0600), 0);
	json_array_foreach(recs, i, r) {
		uint64_t sender = 0, scope = 0, epoch = 0, want = 0, got = 0;
		struct e2e_keyid id;
		enum e2e_status st;

		if (tu_juint(r, "sender", &sender) || tu_juint(r, "scope", &scope) ||
		    tu_juint(r, "epoch", &epoch) || tu_juint(r, "ceiling", &want))
			break;
		id = (struct e2e_keyid){ (uint32_t)sender, (uint8_t)scope, (uint32_t)epoch };
		st = e2e_txstate_get(t.path, &id, &got);
		TU_CHECK(st == E2E_OK && got == want, "%s: record %zu: %s, ceiling %llu (want %llu)",
			name, i, e2e_strerror(st), (unsigned long long)got, (unsigned long long)want);
	}
	tu_tmp_close(&t);
}

static void run_reservation_negative(const json_t *c)
{
	const char *name = tu_jstr(c, "name");
	uint8_t data[4096];
	size_t len = 0;
	uint64_t ceiling = 99;
	struct e2e_keyid id = { 0x1A2B3C4DU, 3, 7 };
	struct tu_tmp t;
	enum e2e_status st;

	if (!name || tu_jhex(c, "file", data, sizeof data, &len)) {
		TU_CHECK(0, "reservation negative %s unreadable", name ? name : "?");
		return;
	}
	tu_tmp_open(&t, "txstate");
	CU_ASSERT_EQUAL_FATAL(tu_write_file(t.path, data, len, 0600), 0);
	st = e2e_txstate_get(t.path, &id, &ceiling);
	TU_CHECK(st == E2E_ERR_CORRUPT, "%s: %s, expected corrupt", name, e2e_strerror(st));
	tu_tmp_close(&t);
}

static void test_vectors(void)
{
	tu_each_vector("state.json", "reservation_files", run_reservation_file);
	tu_each_vector("state.json", "reservation_negative", run_reservation_negative);
}

static const struct tu_test safety_tests[] = {
	{ "Safety: NULL arguments", test_safety_args },
	{ "Safety: missing file is E2E_ERR_NOT_FOUND with ceiling 0", test_safety_missing },
	{ NULL, NULL },
};

static const struct tu_test state_tests[] = {
	{ "Txstate: reserve never lowers a ceiling", test_reserve_never_lowers },
	{ "Txstate: several keys, forget one", test_multiple_keys },
	{ "Txstate: layout, sort order, checksum, mode 0600, no temp file", test_layout_and_mode },
	{ "Txstate: truncated, flipped and inconsistent files are E2E_ERR_CORRUPT", test_corrupt },
	{ "Txstate: repeated updates leave exactly one file", test_many_updates_no_leftovers },
	{ "Vectors: state.json reservation files and damaged ones", test_vectors },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "txstate safety", safety_tests },
		{ "txstate", state_tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
