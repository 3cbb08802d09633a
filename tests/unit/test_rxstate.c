/*
 * Receiver state file tests: e2e_rx_save / e2e_rx_load round trip (replay
 * protection survives a restart), the file layout of wire-facts, and every
 * kind of damage refused without a silent reset.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "testcu.h"

#define RUN_A 0x000A0001U
#define WIN 64U
#define HEAD_LEN 40U                           /* magic 8, 4 x u32, hash key 16 */
#define STREAM_LEN (64U + 8U * E2E_WINDOW_WORDS(WIN))
#define GONE_LEN 40U
#define FLOOR_LEN 20U
#define SUM_LEN 32U
#define HEAD_LEN_V1 36U
#define STREAM_LEN_V1 (40U + 8U * E2E_WINDOW_WORDS(WIN))
#define GONE_LEN_V1 24U

/* Messages from before the "restart", kept for replay. */
struct saved {
	uint8_t env[6][TU_ENV_CAP];
	size_t len[6];
	struct tu_tmp t;
};

/*
 * Three streams, max_streams 3: "a" 1..5, "b" 1,2 then 6 (3..5 pending),
 * "c" 1, then "d" evicts "a" into the forgotten list. Saved to state.bin.
 */
static void build_and_save(struct tu_fx *f, struct saved *sv)
{
	struct e2e_rx_result res;

	tu_fx_init(f, 3, WIN);
	tu_tmp_open(&sv->t, "state.bin");
	tu_fx_recv_range(f, "a", RUN_A, 1, 4);
	sv->len[0] = tu_fx_env(f, sv->env[0], "a", RUN_A, 5);
	TU_ASSERT_VERDICT(tu_fx_open(f, "a", sv->env[0], sv->len[0], &res), E2E_V_OK);
	sv->len[1] = tu_fx_env(f, sv->env[1], "b", RUN_A, 1);
	TU_ASSERT_VERDICT(tu_fx_open(f, "b", sv->env[1], sv->len[1], &res), E2E_V_OK);
	sv->len[2] = tu_fx_env(f, sv->env[2], "b", RUN_A, 2);
	TU_ASSERT_VERDICT(tu_fx_open(f, "b", sv->env[2], sv->len[2], &res), E2E_V_OK);
	sv->len[3] = tu_fx_env(f, sv->env[3], "b", RUN_A, 6);
	TU_ASSERT_VERDICT(tu_fx_open(f, "b", sv->env[3], sv->len[3], &res), E2E_V_GAP);
	sv->len[4] = tu_fx_env(f, sv->env[4], "c", RUN_A, 1);
	TU_ASSERT_VERDICT(tu_fx_open(f, "c", sv->env[4], sv->len[4], &res), E2E_V_OK);
	tu_fx_recv_range(f, "d", RUN_A, 1, 1);        /* evicts "a" */
	/* Not yet received: "b" seq 4, delivered after the restart. */
	sv->len[5] = tu_fx_env(f, sv->env[5], "b", RUN_A, 4);
	CU_ASSERT_EQUAL(tu_fx_stats(f).streams, 3);
	CU_ASSERT_EQUAL(tu_fx_stats(f).evicted, 1);
	CU_ASSERT_EQUAL_FATAL(e2e_rx_save(f->rx, sv->t.path), E2E_OK);
}

static void saved_free(struct saved *sv)
{
	tu_tmp_close(&sv->t);
}

/* A fresh receiver (new process) with the same key and window. */
static struct e2e_rx *fresh_rx(uint32_t window)
{
	return tu_rx_new(3, window);
}

static void assert_empty(struct e2e_rx *rx)
{
	struct e2e_rx_stats st;

	e2e_rx_stats(rx, &st);
	CU_ASSERT_EQUAL(st.streams, 0);
	CU_ASSERT_EQUAL(st.pending, 0);
	CU_ASSERT_EQUAL(st.evicted, 0);
}

/* ---- Safety ------------------------------------------------------------ */

static void test_safety_args(void)
{
	struct e2e_rx *rx = fresh_rx(WIN);

	CU_ASSERT_EQUAL(e2e_rx_save(NULL, "x"), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_rx_save(rx, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_rx_load(NULL, "x"), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_rx_load(rx, NULL), E2E_ERR_ARG);
	e2e_rx_destroy(rx);
}

static void test_safety_missing(void)
{
	struct tu_tmp t;
	struct e2e_rx *rx = fresh_rx(WIN);

	tu_tmp_open(&t, "nope.bin");
	CU_ASSERT_EQUAL(e2e_rx_load(rx, t.path), E2E_ERR_NOT_FOUND);
	assert_empty(rx);
	/* Nothing was created by the attempt. */
	CU_ASSERT_EQUAL(tu_dir_entries(t.dir), 0);
	e2e_rx_destroy(rx);
	tu_tmp_close(&t);
}

/* ---- Round trip -------------------------------------------------------- */

static void test_round_trip(void)
{
	struct tu_fx f;
	struct saved sv;
	struct e2e_rx_result res;
	struct e2e_rx_stats st0, st1;
	struct e2e_rx *rx;
	uint8_t other_key[E2E_HASH_KEY_BYTES];
	struct e2e_rx_config cfg;
	struct stat sb;

	build_and_save(&f, &sv);
	st0 = tu_fx_stats(&f);
	CU_ASSERT_EQUAL_FATAL(stat(sv.t.path, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 07777, 0600);
	CU_ASSERT(S_ISREG(sb.st_mode));
	/* Only the state file: no temporary left behind. */
	CU_ASSERT_EQUAL(tu_dir_entries(sv.t.dir), 1);

	/* The new process has another hash key: the file's one replaces it. */
	memset(other_key, 0x5C, sizeof other_key);
	memset(&cfg, 0, sizeof cfg);
	cfg.max_streams = 3;
	cfg.window = WIN;
	cfg.hash_key = other_key;
	CU_ASSERT_EQUAL_FATAL(e2e_rx_create(&rx, &cfg), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_rx_load(rx, sv.t.path), E2E_OK);
	e2e_rx_destroy(f.rx);
	f.rx = rx;
	st1 = tu_fx_stats(&f);
	CU_ASSERT_EQUAL(st1.streams, st0.streams);
	CU_ASSERT_EQUAL(st1.pending, st0.pending);
	CU_ASSERT_EQUAL(st1.pending, 3);

	/* Every replay of a pre-restart message is caught. */
	TU_ASSERT_VERDICT(tu_fx_open(&f, "b", sv.env[1], sv.len[1], &res), E2E_V_DUPLICATE);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "b", sv.env[2], sv.len[2], &res), E2E_V_DUPLICATE);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "b", sv.env[3], sv.len[3], &res), E2E_V_DUPLICATE);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "c", sv.env[4], sv.len[4], &res), E2E_V_DUPLICATE);
	/* The forgotten list survived too. */
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", sv.env[0], sv.len[0], &res), E2E_V_FORGOTTEN);
	/* A hole from before the restart still arrives as LATE, new ones are OK. */
	TU_ASSERT_VERDICT(tu_fx_open(&f, "b", sv.env[5], sv.len[5], &res), E2E_V_LATE);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "b", RUN_A, 7, &res), E2E_V_OK);
	CU_ASSERT_FALSE(res.flags & E2E_RX_NEW_STREAM);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "c", RUN_A, 2, &res), E2E_V_OK);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "d", RUN_A, 2, &res), E2E_V_OK);
	CU_ASSERT_EQUAL(tu_fx_stats(&f).pending, 2);
	tu_fx_free(&f);
	saved_free(&sv);
}

static void test_layout(void)
{
	struct tu_fx f;
	struct saved sv;
	uint8_t *buf, sum[SUM_LEN];
	size_t len = 0;

	build_and_save(&f, &sv);
	buf = tu_read_file(sv.t.path, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	/* 3 streams and 1 forgotten: exact size of wire-facts. */
	CU_ASSERT_EQUAL(len, HEAD_LEN + 3 * STREAM_LEN + 1 * GONE_LEN + SUM_LEN);
	CU_ASSERT(!memcmp(buf, "E2ERX2\0\0", 8));
	CU_ASSERT(buf[8] == 0 && buf[9] == 0 && buf[10] == 0 && buf[11] == WIN);
	CU_ASSERT(buf[15] == 3 && buf[19] == 1 && buf[23] == 0);
	/* Each stream record names its key (scope 1, epoch 1 of TU_FX_ID). */
	CU_ASSERT(buf[HEAD_LEN + 16] == 1 && buf[HEAD_LEN + 23] == 1);
	crypto_generichash(sum, sizeof sum, buf, len - SUM_LEN, NULL, 0);
	CU_ASSERT(!memcmp(sum, buf + len - SUM_LEN, SUM_LEN));
	free(buf);
	tu_fx_free(&f);
	saved_free(&sv);
}

/* ---- Damage ------------------------------------------------------------ */

/* Write @p data as the state file and expect it refused, leaving rx empty. */
static void expect_refused(const char *path, const uint8_t *data, size_t len,
	enum e2e_status want, const char *what, const uint8_t *good, size_t good_len)
{
	struct e2e_rx *rx = fresh_rx(WIN);
	enum e2e_status st;

	CU_ASSERT_EQUAL_FATAL(tu_write_file(path, data, len, 0600), 0);
	st = e2e_rx_load(rx, path);
	TU_CHECK(st == want, "%s: %s, expected %s", what, e2e_strerror(st), e2e_strerror(want));
	assert_empty(rx);
	/* Empty indeed: the intact file still loads into the same receiver. */
	CU_ASSERT_EQUAL_FATAL(tu_write_file(path, good, good_len, 0600), 0);
	TU_CHECK(e2e_rx_load(rx, path) == E2E_OK, "%s: receiver not left empty", what);
	e2e_rx_destroy(rx);
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void test_truncated(void)
{
	struct tu_fx f;
	struct saved sv;
	uint8_t *good;
	size_t len = 0;

	build_and_save(&f, &sv);
	good = tu_read_file(sv.t.path, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(good);
	{
		const size_t cuts[] = { 0, 1, 7, 8, 20, HEAD_LEN, HEAD_LEN + 1, len / 2,
			len - SUM_LEN, len - 1 };

		for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
			char what[64];

			snprintf(what, sizeof what, "truncated to %zu of %zu", cuts[i], len);
			expect_refused(sv.t.path, good, cuts[i], E2E_ERR_CORRUPT, what, good, len);
		}
	}
	{
		uint8_t *longer = malloc(len + 1);

		CU_ASSERT_PTR_NOT_NULL_FATAL(longer);
		memcpy(longer, good, len);
		longer[len] = 0;
		expect_refused(sv.t.path, longer, len + 1, E2E_ERR_CORRUPT, "one byte appended",
			good, len);
		free(longer);
	}
	free(good);
	tu_fx_free(&f);
	saved_free(&sv);
}

static void test_flipped_and_magic(void)
{
	struct tu_fx f;
	struct saved sv;
	uint8_t *good, *bad;
	size_t len = 0;

	build_and_save(&f, &sv);
	good = tu_read_file(sv.t.path, &len);
	bad = malloc(len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(good);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bad);
	/* One flipped bit anywhere: magic, counts, hash key, windows, checksum. */
	for (size_t off = 0; off < len; off += (off < HEAD_LEN ? 1 : 13)) {
		char what[64];

		memcpy(bad, good, len);
		bad[off] ^= 0x04;
		snprintf(what, sizeof what, "bit flipped at offset %zu", off);
		expect_refused(sv.t.path, bad, len, E2E_ERR_CORRUPT, what, good, len);
	}
	/* Another magic, even with a matching checksum. */
	memcpy(bad, good, len);
	memcpy(bad, "E2ERX3\0\0", 8);
	tu_reseal(bad, len);
	{
		struct e2e_rx *rx = fresh_rx(WIN);
		enum e2e_status st;

		CU_ASSERT_EQUAL_FATAL(tu_write_file(sv.t.path, bad, len, 0600), 0);
		st = e2e_rx_load(rx, sv.t.path);
		TU_CHECK(st == E2E_ERR_CORRUPT || st == E2E_ERR_VERSION, "bad magic: %s",
			e2e_strerror(st));
		assert_empty(rx);
		e2e_rx_destroy(rx);
	}
	free(bad);
	free(good);
	tu_fx_free(&f);
	saved_free(&sv);
}

/* A well-formed file with impossible numbers, checksum recomputed. */
static void test_inconsistent_records(void)
{
	struct tu_fx f;
	struct saved sv;
	uint8_t *good, *bad;
	size_t len = 0;
	const size_t s0 = HEAD_LEN;              /* first stream record */

	build_and_save(&f, &sv);
	good = tu_read_file(sv.t.path, &len);
	bad = malloc(len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(good);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bad);
	/* top < base */
	memcpy(bad, good, len);
	put_u64(bad + s0 + 40, 1);
	put_u64(bad + s0 + 48, 5);
	tu_reseal(bad, len);
	expect_refused(sv.t.path, bad, len, E2E_ERR_CORRUPT, "top < base", good, len);
	/* base == 0 */
	memcpy(bad, good, len);
	put_u64(bad + s0 + 48, 0);
	tu_reseal(bad, len);
	expect_refused(sv.t.path, bad, len, E2E_ERR_CORRUPT, "base 0", good, len);
	/* low mark at or above the highest counter accepted */
	memcpy(bad, good, len);
	memcpy(bad + s0 + 32, bad + s0 + 24, 8);
	tu_reseal(bad, len);
	expect_refused(sv.t.path, bad, len, E2E_ERR_CORRUPT, "low = counter", good, len);
	/* non-zero padding after the scope */
	memcpy(bad, good, len);
	bad[s0 + 17] = 1;
	tu_reseal(bad, len);
	expect_refused(sv.t.path, bad, len, E2E_ERR_CORRUPT, "pad", good, len);
	/* received > top - base + 1 */
	memcpy(bad, good, len);
	put_u64(bad + s0 + 56, 1000);
	tu_reseal(bad, len);
	expect_refused(sv.t.path, bad, len, E2E_ERR_CORRUPT, "received too large", good, len);
	/* stream count that does not match the size */
	memcpy(bad, good, len);
	bad[15] = 2;
	tu_reseal(bad, len);
	expect_refused(sv.t.path, bad, len, E2E_ERR_CORRUPT, "nstreams off by one", good, len);
	free(bad);
	free(good);
	tu_fx_free(&f);
	saved_free(&sv);
}

static void test_wrong_window(void)
{
	struct tu_fx f;
	struct saved sv;
	static const uint32_t others[] = { 128, E2E_WINDOW_DEFAULT };

	build_and_save(&f, &sv);
	for (size_t i = 0; i < 2; i++) {
		struct e2e_rx *rx = fresh_rx(others[i]);
		enum e2e_status st = e2e_rx_load(rx, sv.t.path);

		TU_CHECK(st == E2E_ERR_VERSION, "window %u vs file %u: %s", others[i], WIN,
			e2e_strerror(st));
		assert_empty(rx);
		e2e_rx_destroy(rx);
	}
	tu_fx_free(&f);
	saved_free(&sv);
}

static void test_save_replaces(void)
{
	struct tu_fx f;
	struct saved sv;
	struct e2e_rx_result res;
	struct e2e_rx *rx;

	build_and_save(&f, &sv);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "c", RUN_A, 2, &res), E2E_V_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_rx_save(f.rx, sv.t.path), E2E_OK);
	CU_ASSERT_EQUAL(tu_dir_entries(sv.t.dir), 1);
	rx = fresh_rx(WIN);
	CU_ASSERT_EQUAL_FATAL(e2e_rx_load(rx, sv.t.path), E2E_OK);
	e2e_rx_destroy(f.rx);
	f.rx = rx;
	/* The second save holds c#2 as well. */
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "c", RUN_A, 2, &res), E2E_V_DUPLICATE);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "c", RUN_A, 3, &res), E2E_V_OK);
	tu_fx_free(&f);
	saved_free(&sv);
}

/* One message on each of @p n new topics "s<i>", pushing older streams out. */
static void other_streams(struct tu_fx *f, int from, int n)
{
	char t[16];

	for (int i = from; i < from + n; i++) {
		snprintf(t, sizeof t, "s%d", i);
		tu_fx_recv_range(f, t, RUN_A, 1, 1);
	}
}

/* A stream forgotten for good leaves its counter as its key's floor, and
 * the floor is in the file: its replay stays FORGOTTEN after a restart. */
static void test_floors_survive(void)
{
	struct tu_fx f;
	struct tu_tmp t;
	struct e2e_rx_result res;
	uint8_t a1[TU_ENV_CAP], *buf;
	size_t a1l, len = 0;
	struct e2e_rx *rx;

	tu_fx_init(&f, 2, WIN);
	tu_tmp_open(&t, "state.bin");
	a1l = tu_fx_env(&f, a1, "a", RUN_A, 1);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", a1, a1l, &res), E2E_V_OK);
	other_streams(&f, 0, 6);   /* 2 tracked + 2 remembered < 6: "a" folded */
	CU_ASSERT_EQUAL(tu_fx_stats(&f).floors, 1);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", a1, a1l, &res), E2E_V_FORGOTTEN);
	CU_ASSERT_EQUAL_FATAL(e2e_rx_save(f.rx, t.path), E2E_OK);
	buf = tu_read_file(t.path, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	CU_ASSERT_EQUAL(len, HEAD_LEN + 2 * STREAM_LEN + 2 * GONE_LEN + FLOOR_LEN + SUM_LEN);
	CU_ASSERT(buf[23] == 1);
	free(buf);
	rx = fresh_rx(WIN);
	CU_ASSERT_EQUAL_FATAL(e2e_rx_load(rx, t.path), E2E_OK);
	e2e_rx_destroy(f.rx);
	f.rx = rx;
	CU_ASSERT_EQUAL(tu_fx_stats(&f).floors, 1);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", a1, a1l, &res), E2E_V_FORGOTTEN);
	/* New messages (higher counters) are not affected. */
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "a", RUN_A, 2, &res), E2E_V_OK);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "z", RUN_A + 1, 1, &res), E2E_V_OK);
	tu_fx_free(&f);
	tu_tmp_close(&t);
}

/* A version 1 file (no keys, counters or floors) still loads, and keeps
 * protecting what it recorded. */
static void test_v1_file(void)
{
	struct tu_fx f;
	struct saved sv;
	struct e2e_rx_result res;
	uint8_t *v2, *v1;
	size_t len = 0, o = 0, p;
	struct e2e_rx *rx;

	build_and_save(&f, &sv);
	v2 = tu_read_file(sv.t.path, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v2);
	CU_ASSERT_EQUAL_FATAL(len, HEAD_LEN + 3 * STREAM_LEN + GONE_LEN + SUM_LEN);
	v1 = malloc(len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v1);
	memcpy(v1, "E2ERX1\0\0", 8);
	memcpy(v1 + 8, v2 + 8, 12);             /* window, nstreams, nforgotten */
	memcpy(v1 + 20, v2 + 24, 16);           /* hash key */
	o = HEAD_LEN_V1;
	for (p = HEAD_LEN; p < HEAD_LEN + 3 * STREAM_LEN; p += STREAM_LEN) {
		memcpy(v1 + o, v2 + p, 16);
		memcpy(v1 + o + 16, v2 + p + 40, STREAM_LEN - 40);
		o += STREAM_LEN_V1;
	}
	memcpy(v1 + o, v2 + p, 16);
	memcpy(v1 + o + 16, v2 + p + 32, 8);
	o += GONE_LEN_V1 + SUM_LEN;
	CU_ASSERT_EQUAL_FATAL(o, HEAD_LEN_V1 + 3 * STREAM_LEN_V1 + GONE_LEN_V1 + SUM_LEN);
	tu_reseal(v1, o);
	CU_ASSERT_EQUAL_FATAL(tu_write_file(sv.t.path, v1, o, 0600), 0);
	rx = fresh_rx(WIN);
	CU_ASSERT_EQUAL_FATAL(e2e_rx_load(rx, sv.t.path), E2E_OK);
	e2e_rx_destroy(f.rx);
	f.rx = rx;
	TU_ASSERT_VERDICT(tu_fx_open(&f, "b", sv.env[1], sv.len[1], &res), E2E_V_DUPLICATE);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", sv.env[0], sv.len[0], &res), E2E_V_FORGOTTEN);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "b", sv.env[5], sv.len[5], &res), E2E_V_LATE);
	/* Saved again, it is a version 2 file. */
	CU_ASSERT_EQUAL_FATAL(e2e_rx_save(f.rx, sv.t.path), E2E_OK);
	free(v2);
	v2 = tu_read_file(sv.t.path, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v2);
	CU_ASSERT(!memcmp(v2, "E2ERX2", 6));
	free(v2);
	free(v1);
	tu_fx_free(&f);
	saved_free(&sv);
}

/* ---- Vectors: protocol/vectors/state.json (SPEC 5.8, 6.3) -------------- */

#define VEC_FILE_MAX 16384U

/* A receiver and key ring as a state.json case describes them. */
static int vec_setup(const json_t *c, struct e2e_rx **rx, struct e2e_keyring **kr)
{
	uint8_t hk[E2E_HASH_KEY_BYTES];
	uint64_t w = 0, ms = 0, mf = 0;
	size_t len = 0, i;
	struct e2e_rx_config cfg;
	const json_t *keys = json_object_get(c, "keys"), *k;

	*rx = NULL;
	*kr = NULL;
	if (tu_juint(c, "window", &w) || tu_juint(c, "max_streams", &ms) ||
	    tu_juint(c, "max_floors", &mf) || tu_jhex(c, "hash_key", hk, sizeof hk, &len) ||
	    len != sizeof hk || !json_is_array(keys))
		return -1;
	memset(&cfg, 0, sizeof cfg);
	cfg.window = (uint32_t)w;
	cfg.max_streams = (uint32_t)ms;
	cfg.max_floors = (uint32_t)mf;
	cfg.hash_key = hk;
	if (e2e_rx_create(rx, &cfg) != E2E_OK || e2e_keyring_create(kr, 16) != E2E_OK)
		return -1;
	json_array_foreach(keys, i, k) {
		uint64_t sender = 0, scope = 0, epoch = 0;
		uint8_t key[E2E_KEY_BYTES];
		struct e2e_keyid id;

		if (tu_juint(k, "sender", &sender) || tu_juint(k, "scope", &scope) ||
		    tu_juint(k, "epoch", &epoch) || tu_jhex(k, "key", key, sizeof key, &len))
			return -1;
		id = (struct e2e_keyid){ (uint32_t)sender, (uint8_t)scope, (uint32_t)epoch };
		/* state.json: every sender's map is the one rule '#' -> its keys'
		 * scope (each receiver case has one scope per sender, SPEC 12). */
		if (e2e_keyring_add(*kr, &id, key, 0) != E2E_OK ||
		    e2e_keyring_set_single_scope(*kr, id.sender, id.scope) != E2E_OK)
			return -1;
	}
	return 0;
}

static void vec_events(const char *name, struct e2e_rx *rx, const struct e2e_keyring *kr,
	const json_t *events)
{
	size_t i;
	const json_t *ev;

	json_array_foreach(events, i, ev) {
		uint8_t env[TU_ENV_CAP], pt[TU_ENV_CAP];
		size_t len = 0;
		uint64_t gap = 0;
		enum e2e_verdict want = E2E_V_OK, got;
		struct e2e_rx_result res;
		const char *topic = tu_jstr(ev, "topic");

		if (!topic || tu_jhex(ev, "envelope", env, sizeof env, &len) ||
		    tu_jverdict(ev, "verdict", &want) || tu_juint(ev, "gap", &gap)) {
			TU_CHECK(0, "%s: event %zu unreadable", name, i);
			return;
		}
		/* state.json models windows and floors (5.8, 6.3) with several
		 * epochs held at once, not the retired-key gate of 11.5. */
		got = tu_rx_open_confirmed(rx, kr, &res, pt, sizeof pt, topic, env, len);
		TU_CHECK(got == want && res.gap == gap, "%s: event %zu on %s: %s gap %llu, "
			"expected %s gap %llu", name, i, topic, tu_verdict_str(got),
			(unsigned long long)res.gap, tu_verdict_str(want), (unsigned long long)gap);
	}
}

/* Events give the verdicts of the vector, and the saved file is its bytes. */
static void run_receiver_vector(const json_t *c)
{
	const char *name = tu_jstr(c, "name");
	struct e2e_rx *rx = NULL;
	struct e2e_keyring *kr = NULL;
	static uint8_t want[VEC_FILE_MAX];
	uint8_t *got;
	size_t wlen = 0, glen = 0;
	struct tu_tmp t;

	if (!name || vec_setup(c, &rx, &kr) != 0 ||
	    tu_jhex(c, "file", want, sizeof want, &wlen)) {
		TU_CHECK(0, "receiver vector %s unreadable", name ? name : "?");
		goto out;
	}
	vec_events(name, rx, kr, json_object_get(c, "events"));
	tu_tmp_open(&t, "v.bin");
	CU_ASSERT_EQUAL_FATAL(e2e_rx_save(rx, t.path), E2E_OK);
	got = tu_read_file(t.path, &glen);
	TU_CHECK(got && glen == wlen && !memcmp(got, want, wlen),
		"%s: saved file differs from the vector (%zu vs %zu bytes)", name, glen, wlen);
	free(got);
	if (json_object_get(c, "file_v1")) {
		struct e2e_rx *rx1 = NULL;
		struct e2e_keyring *kr1 = NULL;

		/* A version 1 file of the same state: loads, then the events after. */
		if (vec_setup(c, &rx1, &kr1) == 0 &&
		    tu_jhex(c, "file_v1", want, sizeof want, &wlen) == 0) {
			CU_ASSERT_EQUAL_FATAL(tu_write_file(t.path, want, wlen, 0600), 0);
			TU_CHECK(e2e_rx_load(rx1, t.path) == E2E_OK, "%s: version 1 file refused",
				name);
			vec_events(name, rx1, kr1, json_object_get(c, "after_v1_load"));
		} else {
			TU_CHECK(0, "%s: version 1 part unreadable", name);
		}
		e2e_rx_destroy(rx1);
		e2e_keyring_destroy(kr1);
	}
	tu_tmp_close(&t);
out:
	e2e_rx_destroy(rx);
	e2e_keyring_destroy(kr);
}

static const json_t *g_first_receiver;

static void run_receiver_negative(const json_t *c)
{
	const char *name = tu_jstr(c, "name"), *err = tu_jstr(c, "error");
	struct e2e_rx *rx = NULL;
	struct e2e_keyring *kr = NULL;
	static uint8_t data[VEC_FILE_MAX];
	size_t len = 0;
	enum e2e_status st, want;
	struct tu_tmp t;

	if (!name || !err || vec_setup(g_first_receiver, &rx, &kr) != 0 ||
	    tu_jhex(c, "file", data, sizeof data, &len)) {
		TU_CHECK(0, "negative receiver file %s unreadable", name ? name : "?");
		goto out;
	}
	want = !strcmp(err, "VERSION") ? E2E_ERR_VERSION : E2E_ERR_CORRUPT;
	tu_tmp_open(&t, "v.bin");
	CU_ASSERT_EQUAL_FATAL(tu_write_file(t.path, data, len, 0600), 0);
	st = e2e_rx_load(rx, t.path);
	TU_CHECK(st == want, "%s: %s, expected %s", name, e2e_strerror(st), e2e_strerror(want));
	assert_empty(rx);
	tu_tmp_close(&t);
out:
	e2e_rx_destroy(rx);
	e2e_keyring_destroy(kr);
}

static void test_state_vectors(void)
{
	json_t *root = tu_vectors("state.json");
	json_t *arr = root ? tu_jarray(root, "receivers") : NULL;

	CU_ASSERT_PTR_NOT_NULL_FATAL(arr);
	g_first_receiver = json_array_get(arr, 0);
	tu_each_vector("state.json", "receivers", run_receiver_vector);
	tu_each_vector("state.json", "receiver_negative", run_receiver_negative);
	json_decref(root);
}

static const struct tu_test safety_tests[] = {
	{ "Safety: NULL arguments", test_safety_args },
	{ "Safety: missing file is E2E_ERR_NOT_FOUND", test_safety_missing },
	{ NULL, NULL },
};

static const struct tu_test state_tests[] = {
	{ "Rxstate: save/load round trip keeps replay protection, mode 0600", test_round_trip },
	{ "Rxstate: file layout and checksum", test_layout },
	{ "Rxstate: a second save replaces the first", test_save_replaces },
	{ "Rxstate: truncated files are E2E_ERR_CORRUPT, receiver stays empty", test_truncated },
	{ "Rxstate: flipped bits and bad magic are refused", test_flipped_and_magic },
	{ "Rxstate: impossible records with valid checksum are refused", test_inconsistent_records },
	{ "Rxstate: other window size is E2E_ERR_VERSION", test_wrong_window },
	{ "Rxstate: replay floors survive save/load", test_floors_survive },
	{ "Rxstate: a version 1 file still loads and protects", test_v1_file },
	{ "Vectors: state.json receivers (verdicts, file bytes) and damaged files",
		test_state_vectors },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "rxstate safety", safety_tests },
		{ "rxstate", state_tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
