/*
 * Receiver tests: every verdict, per-stream windows, eviction (FORGOTTEN and
 * resume), partial and wildcard subscriptions, and that nothing moves unless
 * an envelope authenticated.
 */
#include <string.h>

#include "testcu.h"

#define RUN_A 0x0000A001U
#define RUN_B 0x0000B002U
#define ENV_CAP TU_ENV_CAP

static const struct e2e_keyid RX_ID = TU_FX_ID;

/* ---- Safety ------------------------------------------------------------ */

static void test_safety_create(void)
{
	struct e2e_rx_config cfg;
	struct e2e_rx *rx = (struct e2e_rx *)&cfg;
	static const uint32_t bad[] = { 1, 32, 100, E2E_WINDOW_MAX + 64 };

	memset(&cfg, 0, sizeof cfg);
	CU_ASSERT_EQUAL(e2e_rx_create(NULL, &cfg), E2E_ERR_ARG);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cfg.window = bad[i];
		TU_CHECK(e2e_rx_create(&rx, &cfg) == E2E_ERR_ARG, "window %u accepted", bad[i]);
		CU_ASSERT_PTR_NULL(rx);
	}
	CU_ASSERT_EQUAL(e2e_rx_create(&rx, NULL), E2E_OK);
	e2e_rx_destroy(rx);
	e2e_rx_destroy(NULL);
}

static void test_safety_open_args(void)
{
	struct tu_fx f;
	struct e2e_rx_result res;
	uint8_t env[ENV_CAP];
	size_t len;
	const uint8_t *t = (const uint8_t *)"a";

	tu_fx_init(&f, 0, 0);
	len = tu_fx_env(&f, env, "a", RUN_A, 1);
	CU_ASSERT_EQUAL(e2e_rx_open(NULL, f.kr, f.pt, sizeof f.pt, &res, t, 1, env, len, 0),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_rx_open(f.rx, f.kr, f.pt, sizeof f.pt, NULL, t, 1, env, len, 0),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_rx_open(f.rx, f.kr, f.pt, sizeof f.pt, &res, NULL, 1, env, len, 0),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_rx_open(f.rx, f.kr, NULL, sizeof f.pt, &res, t, 1, env, len, 0),
		E2E_ERR_ARG);
	CU_ASSERT_NOT_EQUAL(e2e_rx_open(f.rx, f.kr, f.pt, sizeof f.pt, &res, t, 0, env, len, 0),
		E2E_OK);
	/* None of that reached a verdict. */
	CU_ASSERT_EQUAL(tu_fx_stats(&f).streams, 0);
	for (int v = 0; v <= E2E_V_FORGOTTEN; v++)
		CU_ASSERT_EQUAL(tu_fx_stats(&f).verdicts[v], 0);
	tu_fx_free(&f);
}

/* E2E_ERR_BUFFER is not a verdict: nothing counted, created or moved. */
static void test_safety_buffer_untouched(void)
{
	struct tu_fx f;
	struct e2e_rx_result res;
	struct e2e_rx_stats before, after;
	uint8_t env[ENV_CAP];
	size_t len;

	tu_fx_init(&f, 0, 0);
	len = tu_fx_env(&f, env, "a", RUN_A, 1);
	before = tu_fx_stats(&f);
	CU_ASSERT_EQUAL(e2e_rx_open(f.rx, f.kr, f.pt, len - E2E_ENVELOPE_OVERHEAD - 1, &res,
		(const uint8_t *)"a", 1, env, len, 1000), E2E_ERR_BUFFER);
	after = tu_fx_stats(&f);
	CU_ASSERT(!memcmp(&before, &after, sizeof before));
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_OK);
	CU_ASSERT(res.flags & E2E_RX_NEW_STREAM);
	/* Mid-stream too: seq 2 refused for space is still fresh afterwards. */
	len = tu_fx_env(&f, env, "a", RUN_A, 2);
	before = tu_fx_stats(&f);
	CU_ASSERT_EQUAL(e2e_rx_open(f.rx, f.kr, f.pt, 0, &res, (const uint8_t *)"a", 1, env, len,
		1000), E2E_ERR_BUFFER);
	after = tu_fx_stats(&f);
	CU_ASSERT(!memcmp(&before, &after, sizeof before));
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_OK);
	CU_ASSERT_EQUAL(res.gap, 0);
	tu_fx_free(&f);
}

/* ---- One test per verdict ---------------------------------------------- */

static void test_ok_and_new_stream(void)
{
	struct tu_fx f;
	struct e2e_rx_result res;

	tu_fx_init(&f, 0, 0);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "plant/a", RUN_A, 1, &res), E2E_V_OK);
	CU_ASSERT(res.flags & E2E_RX_NEW_STREAM);
	CU_ASSERT_EQUAL(res.hdr.sender, RX_ID.sender);
	CU_ASSERT_EQUAL(res.hdr.run, RUN_A);
	CU_ASSERT_EQUAL(res.hdr.seq, 1);
	CU_ASSERT_EQUAL(res.pt_len, strlen("plant/a#1"));
	CU_ASSERT(!memcmp(f.pt, "plant/a#1", res.pt_len));
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "plant/a", RUN_A, 2, &res), E2E_V_OK);
	CU_ASSERT_FALSE(res.flags & E2E_RX_NEW_STREAM);
	CU_ASSERT(!memcmp(f.pt, "plant/a#2", res.pt_len));
	/* A stream that starts mid-way (subscriber joined late) is just OK. */
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "plant/b", RUN_A, 777, &res), E2E_V_OK);
	CU_ASSERT(res.flags & E2E_RX_NEW_STREAM);
	CU_ASSERT_EQUAL(res.gap, 0);
	/* Another run or another topic is another stream. */
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "plant/a", RUN_B, 1, &res), E2E_V_OK);
	CU_ASSERT(res.flags & E2E_RX_NEW_STREAM);
	CU_ASSERT_EQUAL(tu_fx_stats(&f).streams, 3);
	tu_fx_free(&f);
}

static void test_duplicate(void)
{
	struct tu_fx f;
	struct e2e_rx_result res;
	uint8_t env[ENV_CAP];
	size_t len;

	tu_fx_init(&f, 0, 0);
	len = tu_fx_env(&f, env, "a", RUN_A, 1);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_OK);
	for (int i = 0; i < 3; i++) {
		memset(f.pt, 0x77, sizeof f.pt);
		TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_DUPLICATE);
		CU_ASSERT_EQUAL(res.pt_len, 0);
		CU_ASSERT_FALSE(e2e_verdict_delivers(res.verdict));
	}
	/* Decided before any crypto (RFC 4303 order): a damaged copy is DUPLICATE too. */
	env[len - 1] ^= 1;
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_DUPLICATE);
	CU_ASSERT_EQUAL(tu_fx_stats(&f).verdicts[E2E_V_DUPLICATE], 4);
	tu_fx_free(&f);
}

static void test_gap_and_late(void)
{
	struct tu_fx f;
	struct e2e_rx_result res;
	struct e2e_rx_stats st;

	tu_fx_init(&f, 0, 0);
	tu_fx_recv_range(&f, "a", RUN_A, 1, 2);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "a", RUN_A, 6, &res), E2E_V_GAP);
	CU_ASSERT_EQUAL(res.gap, 3);
	CU_ASSERT(e2e_verdict_delivers(res.verdict));
	CU_ASSERT(!memcmp(f.pt, "a#6", 3));
	st = tu_fx_stats(&f);
	CU_ASSERT_EQUAL(st.gap_total, 3);
	CU_ASSERT_EQUAL(st.pending, 3);
	CU_ASSERT_EQUAL(st.lost, 0);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "a", RUN_A, 4, &res), E2E_V_LATE);
	CU_ASSERT_EQUAL(res.gap, 0);
	CU_ASSERT(!memcmp(f.pt, "a#4", 3));
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "a", RUN_A, 3, &res), E2E_V_LATE);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "a", RUN_A, 5, &res), E2E_V_LATE);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "a", RUN_A, 7, &res), E2E_V_OK);
	st = tu_fx_stats(&f);
	CU_ASSERT_EQUAL(st.pending, 0);
	CU_ASSERT_EQUAL(st.lost, 0);
	CU_ASSERT_EQUAL(st.verdicts[E2E_V_LATE], 3);
	CU_ASSERT_EQUAL(st.verdicts[E2E_V_GAP], 1);
	tu_fx_free(&f);
}

static void test_too_old(void)
{
	struct tu_fx f;
	struct e2e_rx_result res;
	uint8_t held[ENV_CAP];
	size_t hl;

	tu_fx_init(&f, 0, 64);
	tu_fx_recv_range(&f, "a", RUN_A, 1, 1);
	hl = tu_fx_env(&f, held, "a", RUN_A, 2);        /* delayed by the broker */
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "a", RUN_A, 3, &res), E2E_V_GAP);
	tu_fx_recv_range(&f, "a", RUN_A, 4, 66);         /* top - 2 == 64 == W */
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", held, hl, &res), E2E_V_TOO_OLD);
	CU_ASSERT_EQUAL(res.pt_len, 0);
	CU_ASSERT_EQUAL(tu_fx_stats(&f).lost, 1);
	CU_ASSERT_EQUAL(tu_fx_stats(&f).pending, 0);
	tu_fx_free(&f);
}

static void test_forged(void)
{
	struct tu_fx f;
	struct e2e_rx_result res;
	uint8_t env[ENV_CAP];
	size_t len;

	tu_fx_init(&f, 0, 0);
	tu_fx_recv_range(&f, "a", RUN_A, 1, 1);
	len = tu_fx_env(&f, env, "a", RUN_A, 2);
	env[E2E_HEADER_BYTES] ^= 0x01;
	memset(f.pt, 0xEE, sizeof f.pt);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_FORGED);
	CU_ASSERT_EQUAL(res.pt_len, 0);
	for (size_t i = 0; i < len - E2E_ENVELOPE_OVERHEAD; i++)
		CU_ASSERT_EQUAL(f.pt[i], 0);
	/* Re-topic: authentic bytes on another topic. */
	env[E2E_HEADER_BYTES] ^= 0x01;
	TU_ASSERT_VERDICT(tu_fx_open(&f, "b", env, len, &res), E2E_V_FORGED);
	CU_ASSERT_EQUAL(tu_fx_stats(&f).streams, 1);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_OK);
	CU_ASSERT_EQUAL(tu_fx_stats(&f).verdicts[E2E_V_FORGED], 2);
	tu_fx_free(&f);
}

static void test_unknown_key(void)
{
	struct tu_fx f;
	struct e2e_rx_result res;
	struct e2e_keyid later = RX_ID;
	uint8_t env[ENV_CAP];
	size_t len;
	struct e2e_header h;

	tu_fx_init(&f, 0, 0);
	/* Epoch 2 not held yet. */
	later.epoch = 2;
	h = tu_header(later.sender, later.scope, later.epoch, RUN_A, 1, 1);
	len = tu_seal(env, sizeof env, &h, f.key, "a", (const uint8_t *)"x", 1);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_UNKNOWN_KEY);
	CU_ASSERT_EQUAL(res.hdr.epoch, 2);    /* the app learns what to fetch */
	CU_ASSERT_EQUAL(res.pt_len, 0);
	CU_ASSERT_EQUAL(tu_fx_stats(&f).streams, 0);
	/* Held message retried after the key arrived: accepted, first of its stream. */
	CU_ASSERT_EQUAL(e2e_keyring_add(f.kr, &later, f.key, 0), E2E_OK);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_OK);
	CU_ASSERT(res.flags & E2E_RX_NEW_STREAM);
	/* A key past its grace deadline is no longer used. */
	CU_ASSERT_EQUAL(e2e_keyring_retire(f.kr, &RX_ID, 500), E2E_OK);
	len = tu_fx_env(&f, env, "a", RUN_B, 1);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_UNKNOWN_KEY);
	tu_fx_free(&f);
}

static void test_malformed(void)
{
	struct tu_fx f;
	struct e2e_rx_result res;
	uint8_t env[ENV_CAP];
	size_t len;

	tu_fx_init(&f, 0, 0);
	len = tu_fx_env(&f, env, "a", RUN_A, 1);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, E2E_ENVELOPE_OVERHEAD - 1, &res), E2E_V_MALFORMED);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, 0, &res), E2E_V_MALFORMED);
	env[0] = 0x02;
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_MALFORMED);
	CU_ASSERT_EQUAL(tu_fx_stats(&f).verdicts[E2E_V_MALFORMED], 3);
	CU_ASSERT_EQUAL(tu_fx_stats(&f).streams, 0);
	tu_fx_free(&f);
}

/* ---- Eviction ---------------------------------------------------------- */

static void test_forgotten_and_resume(void)
{
	struct tu_fx f;
	struct e2e_rx_result res;
	uint8_t a1[ENV_CAP], a2[ENV_CAP], b1[ENV_CAP], bad[ENV_CAP];
	size_t a1l, a2l, b1l;
	struct e2e_rx_stats st;

	tu_fx_init(&f, 2, 64);
	a1l = tu_fx_env(&f, a1, "a", RUN_A, 1);
	a2l = tu_fx_env(&f, a2, "a", RUN_A, 2);
	b1l = tu_fx_env(&f, b1, "b", RUN_A, 1);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", a1, a1l, &res), E2E_V_OK);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", a2, a2l, &res), E2E_V_OK);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "b", b1, b1l, &res), E2E_V_OK);
	tu_fx_recv_range(&f, "c", RUN_A, 1, 1);        /* evicts "a", least recently used */
	st = tu_fx_stats(&f);
	CU_ASSERT_EQUAL(st.streams, 2);
	CU_ASSERT_EQUAL(st.evicted, 1);
	/* Replays of the forgotten stream: authentic, but never delivered. */
	memset(f.pt, 0x55, sizeof f.pt);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", a2, a2l, &res), E2E_V_FORGOTTEN);
	CU_ASSERT_FALSE(e2e_verdict_delivers(res.verdict));
	CU_ASSERT_EQUAL(res.pt_len, 0);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", a1, a1l, &res), E2E_V_FORGOTTEN);
	/* A forgery on the forgotten stream is still FORGED. */
	memcpy(bad, a1, a1l);
	bad[a1l - 1] ^= 0x10;
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", bad, a1l, &res), E2E_V_FORGED);
	/* Newer messages resume it: the next one is OK (evicts "b"). */
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "a", RUN_A, 3, &res), E2E_V_OK);
	CU_ASSERT_EQUAL(res.gap, 0);
	CU_ASSERT(!memcmp(f.pt, "a#3", 3));
	/* Resumed, its past still never comes back. */
	TU_CHECK(!e2e_verdict_delivers(tu_fx_open(&f, "a", a2, a2l, &res)), "old a#2 delivered: %s",
		tu_verdict_str(res.verdict));
	TU_CHECK(!e2e_verdict_delivers(tu_fx_open(&f, "a", a1, a1l, &res)), "old a#1 delivered: %s",
		tu_verdict_str(res.verdict));
	/* "b" (top 1) was evicted in turn and resumes with a gap. */
	TU_ASSERT_VERDICT(tu_fx_open(&f, "b", b1, b1l, &res), E2E_V_FORGOTTEN);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "b", RUN_A, 5, &res), E2E_V_GAP);
	CU_ASSERT_EQUAL(res.gap, 3);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "b", RUN_A, 4, &res), E2E_V_LATE);
	st = tu_fx_stats(&f);
	CU_ASSERT(st.verdicts[E2E_V_FORGOTTEN] >= 3);
	CU_ASSERT(st.evicted >= 2);
	CU_ASSERT_EQUAL(st.streams, 2);
	tu_fx_free(&f);
}

/*
 * SPEC 5.8: a replay is never accepted, however many streams came between.
 * Far more streams than the table and the forgotten list hold push the
 * first ones out for good; their replays stay suppressed (their counters
 * are at or below their key's floor), and newer messages still arrive.
 */
static void test_replay_after_many_streams(void)
{
	enum { N = 2 * E2E_RX_STREAMS_DEFAULT + 100 };
	static uint8_t first[N][ENV_CAP];
	static size_t flen[N];
	uint8_t a[3][ENV_CAP];
	size_t al[3];
	struct tu_fx f;
	struct e2e_rx_result res;
	struct e2e_rx_stats st;
	char t[16];
	int delivered = 0;

	tu_fx_init(&f, 0, 0);
	for (uint32_t s = 1; s <= 3; s++) {
		al[s - 1] = tu_fx_env(&f, a[s - 1], "a", RUN_A, s);
		TU_ASSERT_VERDICT(tu_fx_open(&f, "a", a[s - 1], al[s - 1], &res), E2E_V_OK);
	}
	for (int i = 0; i < N; i++) {
		snprintf(t, sizeof t, "t%d", i);
		flen[i] = tu_fx_env(&f, first[i], t, RUN_B, 1);
		TU_ASSERT_VERDICT(tu_fx_open(&f, t, first[i], flen[i], &res), E2E_V_OK);
	}
	st = tu_fx_stats(&f);
	CU_ASSERT(st.evicted >= N + 1 - E2E_RX_STREAMS_DEFAULT);
	CU_ASSERT_EQUAL(st.floors, 1);
	CU_ASSERT_EQUAL(st.floors_dropped, 0);
	for (int k = 0; k < 3; k++) {
		TU_ASSERT_VERDICT(tu_fx_open(&f, "a", a[k], al[k], &res), E2E_V_FORGOTTEN);
		CU_ASSERT_EQUAL(res.pt_len, 0);
	}
	/* Every stream's first message replayed: tracked ones are DUPLICATE,
	 * remembered and forgotten-for-good ones FORGOTTEN; none delivered. */
	for (int i = 0; i < N; i++) {
		snprintf(t, sizeof t, "t%d", i);
		delivered += e2e_verdict_delivers(tu_fx_open(&f, t, first[i], flen[i], &res));
	}
	CU_ASSERT_EQUAL(delivered, 0);
	/* The genuine stream goes on (its next message is above the floor). */
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "a", RUN_A, 4, &res), E2E_V_OK);
	CU_ASSERT(res.flags & E2E_RX_NEW_STREAM);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", a[2], al[2], &res), E2E_V_FORGOTTEN);
	tu_fx_free(&f);
}

/* One stream under key @p epoch: topic, run and seq 1 at @p ctr. */
static enum e2e_verdict floor_msg(struct e2e_rx *rx, const struct e2e_keyring *kr,
	const uint8_t key[E2E_KEY_BYTES], uint32_t epoch, const char *topic, uint64_t ctr,
	uint8_t env[ENV_CAP], size_t *len)
{
	struct e2e_header h = tu_header(RX_ID.sender, RX_ID.scope, epoch, RUN_A, ctr, 1);
	struct e2e_rx_result res;
	uint8_t pt[ENV_CAP];

	*len = tu_seal(env, ENV_CAP, &h, key, topic, (const uint8_t *)"x", 1);
	/* Several epochs held at once: older ones are retired (SPEC 11.5); this
	 * tests the floors, as if a summary had confirmed each message. */
	return tu_rx_open_confirmed(rx, kr, &res, pt, sizeof pt, topic, env, *len);
}

/* A full floor table gives up the floor of a key no longer held first,
 * and counts it when it must give up one of a held key. */
static void test_floor_table_full(void)
{
	struct e2e_rx_config cfg = { 1, 64, NULL, 2 };
	struct e2e_rx *rx = NULL;
	struct e2e_keyring *kr = NULL;
	uint8_t key[5][E2E_KEY_BYTES], env[8][ENV_CAP], pt[ENV_CAP];
	size_t len[8];
	struct e2e_rx_stats st;
	struct e2e_rx_result res;

	CU_ASSERT_EQUAL_FATAL(e2e_rx_create(&rx, &cfg), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_create(&kr, 8), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_set_single_scope(kr, RX_ID.sender, RX_ID.scope), E2E_OK);
	for (uint32_t e = 1; e <= 4; e++) {
		struct e2e_keyid id = { RX_ID.sender, RX_ID.scope, e };

		tu_key(key[e], (uint8_t)(0x40 + e));
		CU_ASSERT_EQUAL_FATAL(e2e_keyring_add(kr, &id, key[e], 0), E2E_OK);
	}
	/* One stream tracked, one remembered: the third new one folds the first. */
	TU_ASSERT_VERDICT(floor_msg(rx, kr, key[2], 2, "a", 10, env[0], &len[0]), E2E_V_OK);
	TU_ASSERT_VERDICT(floor_msg(rx, kr, key[1], 1, "b", 10, env[1], &len[1]), E2E_V_OK);
	TU_ASSERT_VERDICT(floor_msg(rx, kr, key[3], 3, "c", 10, env[2], &len[2]), E2E_V_OK);
	TU_ASSERT_VERDICT(floor_msg(rx, kr, key[3], 3, "d", 11, env[3], &len[3]), E2E_V_OK);
	e2e_rx_stats(rx, &st);
	CU_ASSERT_EQUAL(st.floors, 2);     /* epochs 2 (oldest) and 1 */
	{
		struct e2e_keyid id1 = { RX_ID.sender, RX_ID.scope, 1 };

		CU_ASSERT_EQUAL(e2e_keyring_remove(kr, &id1), E2E_OK);
	}
	/* Folding "c" (epoch 3) needs room: epoch 1 is no longer held, so it goes,
	 * not epoch 2 although that is older. */
	TU_ASSERT_VERDICT(floor_msg(rx, kr, key[3], 3, "e", 12, env[4], &len[4]), E2E_V_OK);
	e2e_rx_stats(rx, &st);
	CU_ASSERT_EQUAL(st.floors, 2);
	CU_ASSERT_EQUAL(st.floors_dropped, 0);
	TU_ASSERT_VERDICT(tu_rx_open_confirmed(rx, kr, &res, pt, sizeof pt, "a", env[0], len[0]),
		E2E_V_FORGOTTEN);
	TU_ASSERT_VERDICT(tu_rx_open_confirmed(rx, kr, &res, pt, sizeof pt, "c", env[2], len[2]),
		E2E_V_FORGOTTEN);
	/* Epochs 2, 3 and 4 all held: the table is too small and says so. */
	TU_ASSERT_VERDICT(floor_msg(rx, kr, key[4], 4, "f", 13, env[5], &len[5]), E2E_V_OK);
	TU_ASSERT_VERDICT(floor_msg(rx, kr, key[4], 4, "g", 14, env[6], &len[6]), E2E_V_OK);
	TU_ASSERT_VERDICT(floor_msg(rx, kr, key[4], 4, "h", 15, env[7], &len[7]), E2E_V_OK);
	e2e_rx_stats(rx, &st);
	CU_ASSERT(st.floors_dropped >= 1);
	e2e_rx_destroy(rx);
	e2e_keyring_destroy(kr);
}

/* A (non-conforming) sender that changes keys inside one stream: the old
 * key's counter becomes a floor at once, so neither key's past comes back. */
static void test_key_change_inside_a_stream(void)
{
	struct e2e_rx_config cfg = { 1, 64, NULL, 0 };
	struct e2e_rx *rx = NULL;
	struct e2e_keyring *kr = NULL;
	uint8_t key[3][E2E_KEY_BYTES], env[2][ENV_CAP], pt[ENV_CAP], other[ENV_CAP];
	size_t len[2], ol;
	struct e2e_rx_result res;
	struct e2e_rx_stats st;

	CU_ASSERT_EQUAL_FATAL(e2e_rx_create(&rx, &cfg), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_create(&kr, 4), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_set_single_scope(kr, RX_ID.sender, RX_ID.scope), E2E_OK);
	for (uint32_t e = 1; e <= 2; e++) {
		struct e2e_keyid id = { RX_ID.sender, RX_ID.scope, e };

		tu_key(key[e], (uint8_t)(0x60 + e));
		CU_ASSERT_EQUAL_FATAL(e2e_keyring_add(kr, &id, key[e], 0), E2E_OK);
	}
	for (uint32_t i = 0; i < 2; i++) {
		struct e2e_header h = tu_header(RX_ID.sender, RX_ID.scope, i + 1, RUN_A,
			i ? 5 : 10, i + 1);

		len[i] = tu_seal(env[i], ENV_CAP, &h, key[i + 1], "a", (const uint8_t *)"x", 1);
		TU_ASSERT_VERDICT(tu_rx_open_confirmed(rx, kr, &res, pt, sizeof pt, "a", env[i], len[i]),
			E2E_V_OK);
	}
	e2e_rx_stats(rx, &st);
	CU_ASSERT_EQUAL(st.floors, 1);      /* epoch 1's counter, folded at the change */
	/* Two more streams push "a" out for good (table 1, list 1). */
	for (uint32_t i = 0; i < 2; i++) {
		struct e2e_header h = tu_header(RX_ID.sender, RX_ID.scope, 2, RUN_B, 20 + i, 1);
		const char *t = i ? "c" : "b";

		ol = tu_seal(other, ENV_CAP, &h, key[2], t, (const uint8_t *)"y", 1);
		TU_ASSERT_VERDICT(tu_rx_open_confirmed(rx, kr, &res, pt, sizeof pt, t, other, ol), E2E_V_OK);
	}
	e2e_rx_stats(rx, &st);
	CU_ASSERT_EQUAL(st.floors, 2);
	for (uint32_t i = 0; i < 2; i++)
		TU_ASSERT_VERDICT(tu_rx_open_confirmed(rx, kr, &res, pt, sizeof pt, "a", env[i], len[i]),
			E2E_V_FORGOTTEN);
	e2e_rx_destroy(rx);
	e2e_keyring_destroy(kr);
}

/* Only authenticated envelopes may refresh a stream's place in the LRU. */
static void test_forgery_does_not_refresh_lru(void)
{
	struct tu_fx f;
	struct e2e_rx_result res;
	uint8_t a1[ENV_CAP], b1[ENV_CAP], fake[ENV_CAP];
	size_t a1l, b1l, fl;

	tu_fx_init(&f, 2, 64);
	a1l = tu_fx_env(&f, a1, "a", RUN_A, 1);
	b1l = tu_fx_env(&f, b1, "b", RUN_A, 1);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", a1, a1l, &res), E2E_V_OK);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "b", b1, b1l, &res), E2E_V_OK);
	/* An attacker forges traffic on "a" to keep it alive. */
	for (uint32_t s = 2; s < 6; s++) {
		fl = tu_fx_env(&f, fake, "a", RUN_A, s);
		fake[fl - 1] ^= 0x01;
		TU_ASSERT_VERDICT(tu_fx_open(&f, "a", fake, fl, &res), E2E_V_FORGED);
	}
	tu_fx_recv_range(&f, "c", RUN_A, 1, 1);
	/* "a" was still the least recently *authenticated* stream. */
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", a1, a1l, &res), E2E_V_FORGOTTEN);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "b", b1, b1l, &res), E2E_V_DUPLICATE);
	tu_fx_free(&f);
}

/* ---- Nothing moves unless authentic ------------------------------------ */

static void test_forged_fresh_seq_does_not_move(void)
{
	struct tu_fx f;
	struct e2e_rx_result res;
	uint8_t env[ENV_CAP];
	size_t len;

	tu_fx_init(&f, 0, 0);
	/* A forged first message creates no stream. */
	len = tu_fx_env(&f, env, "a", RUN_A, 1);
	env[len - 5] ^= 0x40;
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_FORGED);
	CU_ASSERT_EQUAL(tu_fx_stats(&f).streams, 0);
	env[len - 5] ^= 0x40;
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_OK);
	CU_ASSERT(res.flags & E2E_RX_NEW_STREAM);
	/* Forged seq 2 and a forged far jump: neither is recorded. */
	len = tu_fx_env(&f, env, "a", RUN_A, 2);
	env[E2E_HEADER_BYTES + 1] ^= 0x02;
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_FORGED);
	env[E2E_HEADER_BYTES + 1] ^= 0x02;
	{
		uint8_t far[ENV_CAP];
		size_t fl = tu_fx_env(&f, far, "a", RUN_A, 50);

		far[fl - 1] ^= 0x80;
		TU_ASSERT_VERDICT(tu_fx_open(&f, "a", far, fl, &res), E2E_V_FORGED);
	}
	CU_ASSERT_EQUAL(tu_fx_stats(&f).gap_total, 0);
	CU_ASSERT_EQUAL(tu_fx_stats(&f).pending, 0);
	/* The genuine seq 2 is in order: not DUPLICATE, not LATE. */
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_OK);
	CU_ASSERT_EQUAL(res.gap, 0);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "a", RUN_A, 3, &res), E2E_V_OK);
	tu_fx_free(&f);
}

static void test_suppressed_leave_others_alone(void)
{
	struct tu_fx f;
	struct e2e_rx_result res;
	struct e2e_rx_stats before, after;
	uint8_t env[3][ENV_CAP], old[ENV_CAP];
	size_t len[3], ol;

	tu_fx_init(&f, 0, 64);
	for (uint32_t s = 1; s <= 3; s++) {
		len[s - 1] = tu_fx_env(&f, env[s - 1], "a", RUN_A, s);
		TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env[s - 1], len[s - 1], &res), E2E_V_OK);
	}
	ol = tu_fx_env(&f, old, "a", RUN_A, 4);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "a", RUN_A, 5, &res), E2E_V_GAP);
	tu_fx_recv_range(&f, "a", RUN_A, 6, 100);
	tu_fx_recv_range(&f, "b", RUN_A, 1, 3);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "b", RUN_A, 10, &res), E2E_V_GAP);   /* b: 6 pending */
	before = tu_fx_stats(&f);
	for (int i = 0; i < 3; i++)
		TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env[i], len[i], &res), E2E_V_TOO_OLD);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", old, ol, &res), E2E_V_TOO_OLD);
	{
		uint8_t dup[ENV_CAP];
		size_t dl = tu_fx_env(&f, dup, "a", RUN_A, 99);

		TU_ASSERT_VERDICT(tu_fx_open(&f, "a", dup, dl, &res), E2E_V_DUPLICATE);
		TU_ASSERT_VERDICT(tu_fx_open(&f, "a", dup, dl, &res), E2E_V_DUPLICATE);
	}
	after = tu_fx_stats(&f);
	/* Only the two counters moved. */
	CU_ASSERT_EQUAL(after.verdicts[E2E_V_TOO_OLD], before.verdicts[E2E_V_TOO_OLD] + 4);
	CU_ASSERT_EQUAL(after.verdicts[E2E_V_DUPLICATE], before.verdicts[E2E_V_DUPLICATE] + 2);
	after.verdicts[E2E_V_TOO_OLD] = before.verdicts[E2E_V_TOO_OLD];
	after.verdicts[E2E_V_DUPLICATE] = before.verdicts[E2E_V_DUPLICATE];
	CU_ASSERT(!memcmp(&before, &after, sizeof before));
	CU_ASSERT_EQUAL(before.pending, 6);
	/* Both streams continue exactly where they were. */
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "b", RUN_A, 11, &res), E2E_V_OK);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "a", RUN_A, 101, &res), E2E_V_OK);
	tu_fx_free(&f);
}

/* ---- Subscriptions ----------------------------------------------------- */

/* A real sender interleaves topics; the receiver sees only some of them. */
static void subscription_case(const char *const *topics, size_t ntopics,
	const int *subscribed, int drop_one)
{
	uint8_t key[E2E_KEY_BYTES], env[ENV_CAP], pt[ENV_CAP];
	struct tu_reserve r = { 0 };
	struct e2e_tx_config cfg;
	struct e2e_tx *tx = NULL;
	struct e2e_keyring *kr;
	struct e2e_rx *rx = tu_rx_new(0, 0);
	struct e2e_rx_stats st;
	uint64_t rng = 7, seen = 0;
	int dropped = 0;

	tu_key(key, 0x31);
	memset(&cfg, 0, sizeof cfg);
	cfg.id = RX_ID;
	cfg.key = key;
	cfg.reserve = tu_reserve_cb;
	cfg.reserve_ctx = &r;
	CU_ASSERT_EQUAL_FATAL(e2e_tx_create(&tx, &cfg), E2E_OK);
	kr = tu_keyring_with(&RX_ID, key);
	for (unsigned i = 0; i < 300; i++) {
		size_t t = (size_t)(tu_rand(&rng) % ntopics), el = 0;
		struct e2e_rx_result res;
		enum e2e_verdict v;

		CU_ASSERT_EQUAL_FATAL(e2e_tx_seal(tx, env, sizeof env, &el,
			(const uint8_t *)topics[t], strlen(topics[t]), (const uint8_t *)"v", 1), E2E_OK);
		if (!subscribed[t])
			continue;
		if (drop_one && !dropped && seen == 20) {
			dropped = 1;            /* the broker loses exactly one */
			continue;
		}
		v = tu_rx_open(rx, kr, &res, pt, sizeof pt, topics[t], env, el);
		if (!drop_one)
			TU_CHECK(v == E2E_V_OK, "message %u on %s: %s", i, topics[t], tu_verdict_str(v));
		seen++;
	}
	e2e_rx_stats(rx, &st);
	CU_ASSERT(seen > 50);
	CU_ASSERT_EQUAL(st.verdicts[E2E_V_GAP], (uint64_t)drop_one);
	CU_ASSERT_EQUAL(st.gap_total, (uint64_t)drop_one);
	CU_ASSERT_EQUAL(st.pending, (uint64_t)drop_one);
	CU_ASSERT_EQUAL(st.lost, 0);
	CU_ASSERT_EQUAL(st.verdicts[E2E_V_OK] + st.verdicts[E2E_V_GAP], seen);
	e2e_rx_destroy(rx);
	e2e_keyring_destroy(kr);
	e2e_tx_destroy(tx);
}

static void test_partial_subscription(void)
{
	static const char *const topics[] = { "a", "b", "c" };
	static const int only_a[] = { 1, 0, 0 };

	subscription_case(topics, 3, only_a, 0);
	/* The same set-up does see a real loss. */
	subscription_case(topics, 3, only_a, 1);
}

static void test_wildcard_subscription(void)
{
	static const char *const topics[] = { "sensors/1/temp", "sensors/2/temp",
		"sensors/1/hum", "other/x", "sensors/3/temp/raw" };
	/* sensors/+/temp */
	static const int matches[] = { 1, 1, 0, 0, 0 };

	subscription_case(topics, 5, matches, 0);
	subscription_case(topics, 5, matches, 1);
}

/* ---- Stats ------------------------------------------------------------- */

static void test_stats_counts(void)
{
	struct tu_fx f;
	struct e2e_rx_result res;
	struct e2e_rx_stats st;
	uint8_t env[ENV_CAP];
	size_t len;
	static const uint64_t want[E2E_V_FORGOTTEN + 1] = {
		[E2E_V_OK] = 6, [E2E_V_DUPLICATE] = 2, [E2E_V_LATE] = 1, [E2E_V_GAP] = 2,
		[E2E_V_TOO_OLD] = 1, [E2E_V_FORGED] = 1, [E2E_V_UNKNOWN_KEY] = 1,
		[E2E_V_MALFORMED] = 1, [E2E_V_FORGOTTEN] = 1,
	};

	tu_fx_init(&f, 2, 64);
	len = tu_fx_env(&f, env, "a", RUN_A, 1);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_OK);           /* OK 1 */
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_DUPLICATE);    /* DUP 1 */
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "a", RUN_A, 4, &res), E2E_V_GAP);          /* GAP 1 (2) */
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "a", RUN_A, 3, &res), E2E_V_LATE);         /* LATE 1 */
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "a", RUN_A, 100, &res), E2E_V_GAP);        /* GAP 2 (95) */
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_TOO_OLD);      /* TOO_OLD 1 */
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "a", RUN_A, 101, &res), E2E_V_OK);         /* OK 2 */
	len = tu_fx_env(&f, env, "a", RUN_A, 102);
	env[30] ^= 4;
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_FORGED);       /* FORGED 1 */
	env[30] ^= 4;
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_OK);           /* OK 3 */
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_DUPLICATE);    /* DUP 2 */
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, 3, &res), E2E_V_MALFORMED);      /* MALFORMED 1 */
	env[5] ^= 1;                                                              /* epoch */
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_UNKNOWN_KEY);  /* UNKNOWN 1 */
	tu_fx_recv_range(&f, "b", RUN_A, 1, 1);                                      /* OK 4 */
	tu_fx_recv_range(&f, "c", RUN_A, 1, 1);                                      /* OK 5, evicts a */
	len = tu_fx_env(&f, env, "a", RUN_A, 101);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", env, len, &res), E2E_V_FORGOTTEN);    /* FORGOTTEN 1 */
	tu_fx_recv_range(&f, "c", RUN_A, 2, 2);                                      /* OK 6 */
	st = tu_fx_stats(&f);
	for (int v = 0; v <= E2E_V_FORGOTTEN; v++)
		TU_CHECK(st.verdicts[v] == want[v], "verdict %s counted %llu, expected %llu",
			tu_verdict_str((enum e2e_verdict)v), (unsigned long long)st.verdicts[v],
			(unsigned long long)want[v]);
	CU_ASSERT_EQUAL(st.gap_total, 2 + 95);
	CU_ASSERT_EQUAL(st.streams, 2);
	CU_ASSERT_EQUAL(st.evicted, 1);
	CU_ASSERT_EQUAL(st.pending, 0);
	tu_fx_free(&f);
}

/* ---- Defaults ---------------------------------------------------------- */

static void test_default_window(void)
{
	struct tu_fx f;
	struct e2e_rx_result res;
	uint8_t held[2][ENV_CAP];
	size_t hl[2];

	tu_fx_init(&f, 0, 0);
	tu_fx_recv_range(&f, "a", RUN_A, 1, 1);
	hl[0] = tu_fx_env(&f, held[0], "a", RUN_A, 2);
	hl[1] = tu_fx_env(&f, held[1], "a", RUN_A, 3);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "a", RUN_A, 2 + E2E_WINDOW_DEFAULT, &res), E2E_V_GAP);
	/* 1024 back is behind, 1023 back still inside. */
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", held[0], hl[0], &res), E2E_V_TOO_OLD);
	TU_ASSERT_VERDICT(tu_fx_open(&f, "a", held[1], hl[1], &res), E2E_V_LATE);
	tu_fx_free(&f);
}

static void test_default_max_streams(void)
{
	struct tu_fx f;
	struct e2e_rx_result res;
	char topic[32];

	tu_fx_init(&f, 0, 64);
	for (unsigned i = 0; i < E2E_RX_STREAMS_DEFAULT; i++) {
		snprintf(topic, sizeof topic, "t/%u", i);
		if (tu_fx_recv(&f, topic, RUN_A, 1, &res) != E2E_V_OK)
			break;
	}
	CU_ASSERT_EQUAL(tu_fx_stats(&f).streams, E2E_RX_STREAMS_DEFAULT);
	CU_ASSERT_EQUAL(tu_fx_stats(&f).evicted, 0);
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "one/more", RUN_A, 1, &res), E2E_V_OK);
	CU_ASSERT_EQUAL(tu_fx_stats(&f).streams, E2E_RX_STREAMS_DEFAULT);
	CU_ASSERT_EQUAL(tu_fx_stats(&f).evicted, 1);
	/* The oldest one went. */
	TU_ASSERT_VERDICT(tu_fx_recv(&f, "t/0", RUN_A, 1, &res), E2E_V_FORGOTTEN);
	tu_fx_free(&f);
}

/* A stream is (sender, run, topic): two senders on one topic never collide. */
static void test_streams_per_sender(void)
{
	struct tu_fx f;
	struct e2e_rx_result res;
	struct e2e_keyid other = RX_ID;
	uint8_t env[ENV_CAP], key2[E2E_KEY_BYTES];
	struct e2e_header h;
	size_t len;

	tu_fx_init(&f, 0, 0);
	other.sender ^= 0x80000000U;
	tu_key(key2, 0x99);
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_add(f.kr, &other, key2, 0), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_set_single_scope(f.kr, other.sender, other.scope), E2E_OK);
	tu_fx_recv_range(&f, "shared/topic", RUN_A, 1, 5);
	/* Same topic, same run value, seq 1..5 again: a different sender. */
	for (uint32_t s = 1; s <= 5; s++) {
		h = tu_header(other.sender, other.scope, other.epoch, RUN_A, s, s);
		len = tu_seal(env, sizeof env, &h, key2, "shared/topic", (const uint8_t *)"y", 1);
		TU_ASSERT_VERDICT(tu_fx_open(&f, "shared/topic", env, len, &res), E2E_V_OK);
		CU_ASSERT_EQUAL(!!(res.flags & E2E_RX_NEW_STREAM), s == 1);
	}
	CU_ASSERT_EQUAL(tu_fx_stats(&f).streams, 2);
	CU_ASSERT_EQUAL(tu_fx_stats(&f).gap_total, 0);
	tu_fx_free(&f);
}

/* ---- Scopes bound to topics (SPEC 5.4 step 2) ---------------------------- */

/*
 * A sender with three scopes: 1 "plant/#" (unsigned, the insider's), 2
 * "alarm/#" (signed), 3 "+/status" (unsigned). The receiver (the victim)
 * holds all three keys, the sender's map and its signer key.
 */
#define SC_A 1
#define SC_B 2
#define SC_C 3

struct scoped {
	struct e2e_identity sender;
	struct e2e_keyring *kr;
	struct e2e_rx *rx;
	uint8_t key[4][E2E_KEY_BYTES];
	uint32_t sid;
	uint64_t counter;
	uint8_t pt[TU_ENV_CAP];
};

static const struct e2e_scope_rule scoped_map[] = {
	{ SC_A, "plant/#", 7 }, { SC_B, "alarm/#", 7 }, { SC_C, "+/status", 8 },
};

static void scoped_init(struct scoped *x)
{
	memset(x, 0, sizeof *x);
	tu_identity(&x->sender);
	x->sid = e2e_sender_id(&x->sender.pub);
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_create(&x->kr, 8), E2E_OK);
	for (uint8_t sc = SC_A; sc <= SC_C; sc++) {
		struct e2e_keyid id = { x->sid, sc, 1 };

		tu_key(x->key[sc], (uint8_t)(0x40 + sc));
		CU_ASSERT_EQUAL_FATAL(e2e_keyring_add_flags(x->kr, &id, x->key[sc], 0,
			sc == SC_B ? E2E_KEYRING_SIGNED : 0), E2E_OK);
	}
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_set_signer(x->kr, x->sid, x->sender.pub.sign_pk), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_set_profile(x->kr, x->sid, scoped_map, 3, 10000), E2E_OK);
	x->rx = tu_rx_new(0, 0);
}

static struct e2e_rx_stats rx_stats(const struct e2e_rx *rx)
{
	struct e2e_rx_stats st;

	e2e_rx_stats(rx, &st);
	return st;
}

static void scoped_free(struct scoped *x)
{
	e2e_rx_destroy(x->rx);
	e2e_keyring_destroy(x->kr);
	e2e_identity_wipe(&x->sender);
}

/* An envelope with header scope @p scope sealed with key @p key_scope on
 * @p topic; suite 0x02 signed by the real sender when @p sign. */
static size_t scoped_env(struct scoped *x, uint8_t *env, uint8_t scope, uint8_t key_scope,
	const char *topic, uint32_t seq, int sign, const char *pt)
{
	struct e2e_header h = tu_header(x->sid, scope, 1, RUN_A, ++x->counter, seq);
	size_t len = 0;

	if (sign)
		h.suite = E2E_SUITE_V1_SIGNED;
	len = tu_seal(env, TU_ENV_CAP, &h, x->key[key_scope], topic, (const uint8_t *)pt,
		strlen(pt));
	if (sign)
		CU_ASSERT_EQUAL(e2e_envelope_sign(env, TU_ENV_CAP, &len, (const uint8_t *)topic,
			strlen(topic), x->sender.sign_sk), E2E_OK);
	return len;
}

static enum e2e_verdict scoped_open(struct scoped *x, const char *topic, const uint8_t *env,
	size_t len, struct e2e_rx_result *res)
{
	return tu_rx_open(x->rx, x->kr, res, x->pt, sizeof x->pt, topic, env, len);
}

/*
 * H1: a subscriber enrolled only for unsigned scope A seals with A's key,
 * header scope A, on a topic of signed scope B (and of unsigned scope C).
 * Both are FORGED before decryption; the genuine messages with those seqs
 * are then still OK (the forgery marked nothing as seen).
 */
static void test_insider_cross_scope(void)
{
	struct scoped x;
	struct e2e_rx_result res;
	uint8_t env[TU_ENV_CAP];
	size_t len;

	scoped_init(&x);
	/* The insider's forgeries: its own (valid) key, its own scope byte. */
	len = scoped_env(&x, env, SC_A, SC_A, "alarm/boiler", 1, 0, "all clear");
	TU_ASSERT_VERDICT(scoped_open(&x, "alarm/boiler", env, len, &res), E2E_V_FORGED);
	CU_ASSERT_EQUAL(res.pt_len, 0);
	CU_ASSERT(res.flags & E2E_RX_SCOPE_MISMATCH);   /* refused by the map, not the AEAD */
	len = scoped_env(&x, env, SC_A, SC_A, "line1/status", 1, 0, "ok");
	TU_ASSERT_VERDICT(scoped_open(&x, "line1/status", env, len, &res), E2E_V_FORGED);
	/* Nor by naming the victim scope in the header with its own key. */
	len = scoped_env(&x, env, SC_C, SC_A, "line1/status", 2, 0, "ok");
	TU_ASSERT_VERDICT(scoped_open(&x, "line1/status", env, len, &res), E2E_V_FORGED);
	CU_ASSERT_EQUAL(rx_stats(x.rx).streams, 0);
	/* The genuine messages of those seqs: OK, not DUPLICATE. */
	len = scoped_env(&x, env, SC_B, SC_B, "alarm/boiler", 1, 1, "OVERHEAT");
	TU_ASSERT_VERDICT(scoped_open(&x, "alarm/boiler", env, len, &res), E2E_V_OK);
	CU_ASSERT(res.pt_len == 8 && !memcmp(x.pt, "OVERHEAT", 8));
	len = scoped_env(&x, env, SC_C, SC_C, "line1/status", 1, 0, "down");
	TU_ASSERT_VERDICT(scoped_open(&x, "line1/status", env, len, &res), E2E_V_OK);
	len = scoped_env(&x, env, SC_C, SC_C, "line1/status", 2, 0, "up");
	TU_ASSERT_VERDICT(scoped_open(&x, "line1/status", env, len, &res), E2E_V_OK);
	/* The insider's own scope still works on its own topics. */
	len = scoped_env(&x, env, SC_A, SC_A, "plant/line1", 1, 0, "21C");
	TU_ASSERT_VERDICT(scoped_open(&x, "plant/line1", env, len, &res), E2E_V_OK);
	CU_ASSERT_FALSE(res.flags & E2E_RX_SCOPE_MISMATCH);
	/* Another scope's key under the right scope byte: the AEAD refuses it. */
	len = scoped_env(&x, env, SC_A, SC_C, "plant/line1", 2, 0, "x");
	TU_ASSERT_VERDICT(scoped_open(&x, "plant/line1", env, len, &res), E2E_V_FORGED);
	CU_ASSERT_FALSE(res.flags & E2E_RX_SCOPE_MISMATCH);
	scoped_free(&x);
}

/* Mismatch is decided before any key lookup or decryption: even a garbage
 * body is FORGED (not UNKNOWN_KEY), and nothing moves. */
static void test_scope_mismatch_before_crypto(void)
{
	struct scoped x;
	struct e2e_rx_result res;
	struct e2e_rx_stats st;
	uint8_t env[TU_ENV_CAP];
	size_t len;

	scoped_init(&x);
	for (uint32_t seq = 1; seq <= 2; seq++) {
		len = scoped_env(&x, env, SC_A, SC_A, "plant/line1", seq, 0, "x");
		TU_ASSERT_VERDICT(scoped_open(&x, "plant/line1", env, len, &res), E2E_V_OK);
	}
	/* Header scope 9 (no key held at all): FORGED by the map, not UNKNOWN_KEY. */
	len = scoped_env(&x, env, 9, SC_A, "plant/line1", 5, 0, "x");
	TU_ASSERT_VERDICT(scoped_open(&x, "plant/line1", env, len, &res), E2E_V_FORGED);
	/* A body of zeros with the right scope would be FORGED by the AEAD; with
	 * the wrong scope it never gets there: same verdict, window untouched. */
	len = scoped_env(&x, env, SC_B, SC_A, "plant/line1", 3, 0, "x");
	memset(env + E2E_HEADER_BYTES, 0, len - E2E_HEADER_BYTES);
	TU_ASSERT_VERDICT(scoped_open(&x, "plant/line1", env, len, &res), E2E_V_FORGED);
	st = rx_stats(x.rx);
	CU_ASSERT_EQUAL(st.streams, 1);
	CU_ASSERT_EQUAL(st.pending, 0);
	CU_ASSERT_EQUAL(st.gap_total, 0);
	/* Seq 3 after the forgeries: the next in order, so no gap was opened. */
	len = scoped_env(&x, env, SC_A, SC_A, "plant/line1", 3, 0, "x");
	TU_ASSERT_VERDICT(scoped_open(&x, "plant/line1", env, len, &res), E2E_V_OK);
	scoped_free(&x);
}

/* A topic no rule matches ('$'-topics against '#', an unmapped prefix) is
 * FORGED; a sender without a map yet is UNKNOWN_KEY (a key fetch brings it). */
static void test_scope_no_rule_and_no_map(void)
{
	struct scoped x;
	struct e2e_rx_result res;
	uint8_t env[TU_ENV_CAP];
	struct e2e_keyring *bare;
	struct e2e_keyid id;
	uint8_t sc = 0xff;
	uint32_t interval = 0;
	size_t len;

	scoped_init(&x);
	len = scoped_env(&x, env, SC_A, SC_A, "office/door", 1, 0, "x");
	TU_ASSERT_VERDICT(scoped_open(&x, "office/door", env, len, &res), E2E_V_FORGED);
	len = scoped_env(&x, env, SC_A, SC_A, "$plant/x", 1, 0, "x");
	TU_ASSERT_VERDICT(scoped_open(&x, "$plant/x", env, len, &res), E2E_V_FORGED);
	/* Resolve follows the sender's first-match order and MQTT rules. */
	CU_ASSERT_EQUAL(e2e_keyring_resolve(x.kr, x.sid, (const uint8_t *)"plant/status", 12, &sc),
		E2E_OK);
	CU_ASSERT_EQUAL(sc, SC_A);          /* "plant/#" comes before "+/status" */
	CU_ASSERT_EQUAL(e2e_keyring_resolve(x.kr, x.sid, (const uint8_t *)"alarm", 5, &sc), E2E_OK);
	CU_ASSERT_EQUAL(sc, SC_B);          /* "alarm/#" matches its parent */
	CU_ASSERT_EQUAL(e2e_keyring_resolve(x.kr, x.sid, (const uint8_t *)"a/b/status", 10, &sc),
		E2E_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(e2e_keyring_resolve(x.kr, x.sid, (const uint8_t *)"plant/+", 7, &sc),
		E2E_ERR_NOT_FOUND);          /* not a topic name */
	CU_ASSERT_EQUAL(e2e_keyring_resolve(x.kr, x.sid ^ 1, (const uint8_t *)"plant/a", 7, &sc),
		E2E_ERR_UNKNOWN_KEY);
	CU_ASSERT_EQUAL(e2e_keyring_summary_interval(x.kr, x.sid, &interval), E2E_OK);
	CU_ASSERT_EQUAL(interval, 10000);
	CU_ASSERT_EQUAL(e2e_keyring_summary_interval(x.kr, x.sid ^ 1, &interval),
		E2E_ERR_NOT_FOUND);
	/* Keys but no map: UNKNOWN_KEY, then OK once the map is installed. */
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_create(&bare, 4), E2E_OK);
	id = (struct e2e_keyid){ x.sid, SC_A, 1 };
	CU_ASSERT_EQUAL(e2e_keyring_add(bare, &id, x.key[SC_A], 0), E2E_OK);
	len = scoped_env(&x, env, SC_A, SC_A, "plant/line2", 1, 0, "x");
	TU_ASSERT_VERDICT(tu_rx_open(x.rx, bare, &res, x.pt, sizeof x.pt, "plant/line2", env, len),
		E2E_V_UNKNOWN_KEY);
	CU_ASSERT_EQUAL(e2e_keyring_set_profile(bare, x.sid, scoped_map, 3, 0), E2E_OK);
	TU_ASSERT_VERDICT(tu_rx_open(x.rx, bare, &res, x.pt, sizeof x.pt, "plant/line2", env, len),
		E2E_V_OK);
	/* A newer map replaces the old one: plant/ moves to scope C. */
	{
		static const struct e2e_scope_rule moved[] = { { SC_C, "#", 1 } };

		CU_ASSERT_EQUAL(e2e_keyring_set_profile(bare, x.sid, moved, 1, 0), E2E_OK);
		len = scoped_env(&x, env, SC_A, SC_A, "plant/line2", 2, 0, "x");
		TU_ASSERT_VERDICT(tu_rx_open(x.rx, bare, &res, x.pt, sizeof x.pt, "plant/line2",
			env, len), E2E_V_FORGED);
	}
	e2e_keyring_destroy(bare);
	scoped_free(&x);
}

static const struct tu_test safety_tests[] = {
	{ "Safety: create NULL and bad window sizes", test_safety_create },
	{ "Safety: open NULL arguments reach no verdict", test_safety_open_args },
	{ "Safety: E2E_ERR_BUFFER leaves the receiver untouched", test_safety_buffer_untouched },
	{ NULL, NULL },
};

static const struct tu_test verdict_tests[] = {
	{ "Verdict: OK and the new-stream flag", test_ok_and_new_stream },
	{ "Verdict: DUPLICATE (decided before decryption)", test_duplicate },
	{ "Verdict: GAP(n) then LATE fills the holes", test_gap_and_late },
	{ "Verdict: TOO_OLD behind the window", test_too_old },
	{ "Verdict: FORGED (tampered, re-topicked) wipes plaintext", test_forged },
	{ "Verdict: UNKNOWN_KEY (new epoch, expired key)", test_unknown_key },
	{ "Verdict: MALFORMED", test_malformed },
	{ "Verdict: FORGOTTEN after eviction, resume with newer seq", test_forgotten_and_resume },
	{ "Verdict: no replay accepted after more streams than the table holds",
		test_replay_after_many_streams },
	{ "Verdict: a full floor table drops keys no longer held first", test_floor_table_full },
	{ "Verdict: a key change inside a stream keeps both keys' past out",
		test_key_change_inside_a_stream },
	{ NULL, NULL },
};

static const struct tu_test state_tests[] = {
	{ "State: forged fresh seq does not move the window", test_forged_fresh_seq_does_not_move },
	{ "State: forgeries do not refresh a stream in the LRU", test_forgery_does_not_refresh_lru },
	{ "State: DUPLICATE/TOO_OLD change nothing else", test_suppressed_leave_others_alone },
	{ "State: partial subscription sees zero false gaps", test_partial_subscription },
	{ "State: wildcard subscription sees zero false gaps", test_wildcard_subscription },
	{ "State: statistics count every verdict", test_stats_counts },
	{ "State: streams are per sender", test_streams_per_sender },
	{ "Scope: insider of unsigned A forges nothing on B (signed) or C (H1)",
		test_insider_cross_scope },
	{ "Scope: mismatch is FORGED before decryption, window untouched",
		test_scope_mismatch_before_crypto },
	{ "Scope: no matching rule is FORGED, no map is UNKNOWN_KEY",
		test_scope_no_rule_and_no_map },
	{ "Defaults: window of 1024", test_default_window },
	{ "Defaults: 1024 streams, LRU eviction", test_default_max_streams },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "rx safety", safety_tests },
		{ "rx verdicts", verdict_tests },
		{ "rx state", state_tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
