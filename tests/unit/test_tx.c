/*
 * Sender tests: tx.json sequences with a fixed run, counter reservation
 * through the callback (block, failure, crash), key limits, runs, and a
 * round trip through a receiver.
 */
#include <stdlib.h>
#include <string.h>

#include "testcu.h"

static const struct e2e_keyid TX_ID = { .sender = 0xC0FFEE01U, .scope = 2, .epoch = 5 };

static struct e2e_tx_config config(const uint8_t *key, struct tu_reserve *r)
{
	struct e2e_tx_config cfg;

	memset(&cfg, 0, sizeof cfg);
	cfg.id = TX_ID;
	cfg.key = key;
	cfg.run = 0x0BADCAFEU;
	cfg.reserve = tu_reserve_cb;
	cfg.reserve_ctx = r;
	return cfg;
}

static struct e2e_tx *make_tx(const struct e2e_tx_config *cfg)
{
	struct e2e_tx *tx = NULL;

	CU_ASSERT_EQUAL_FATAL(e2e_tx_create(&tx, cfg), E2E_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(tx);
	return tx;
}

/* Seal a text payload on a text topic; returns the parsed header. */
static struct e2e_header seal_text(struct e2e_tx *tx, const char *topic, const char *pt,
	uint8_t *env, size_t cap, size_t *len)
{
	struct e2e_header h;
	enum e2e_status st;
	size_t n = 0;

	memset(&h, 0, sizeof h);
	st = e2e_tx_seal(tx, env, cap, &n, (const uint8_t *)topic, strlen(topic),
		(const uint8_t *)pt, strlen(pt));
	TU_CHECK(st == E2E_OK, "seal on %s: %s", topic, e2e_strerror(st));
	if (st == E2E_OK) {
		CU_ASSERT_EQUAL(n, e2e_envelope_size(strlen(pt)));
		CU_ASSERT_EQUAL(e2e_header_parse(&h, env, n), E2E_OK);
	}
	if (len)
		*len = n;
	return h;
}

/* ---- Safety ------------------------------------------------------------ */

static void test_safety_create(void)
{
	uint8_t key[E2E_KEY_BYTES];
	struct tu_reserve r = { 0 };
	struct e2e_tx_config cfg;
	struct e2e_tx *tx = (struct e2e_tx *)&r;

	tu_key(key, 1);
	cfg = config(key, &r);
	CU_ASSERT_EQUAL(e2e_tx_create(NULL, &cfg), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_tx_create(&tx, NULL), E2E_ERR_ARG);
	CU_ASSERT_PTR_NULL(tx);
	cfg.key = NULL;
	CU_ASSERT_EQUAL(e2e_tx_create(&tx, &cfg), E2E_ERR_ARG);
	cfg = config(key, &r);
	cfg.reserve = NULL;
	CU_ASSERT_EQUAL(e2e_tx_create(&tx, &cfg), E2E_ERR_ARG);
	CU_ASSERT_PTR_NULL(tx);
	CU_ASSERT_EQUAL(r.calls, 0);
	e2e_tx_destroy(NULL);
}

static void test_safety_seal(void)
{
	uint8_t key[E2E_KEY_BYTES], out[64];
	struct tu_reserve r = { 0 };
	struct e2e_tx_config cfg;
	struct e2e_tx_stats st;
	struct e2e_tx *tx;
	const uint8_t *t = (const uint8_t *)"a/b";
	size_t n = 5;

	tu_key(key, 1);
	cfg = config(key, &r);
	tx = make_tx(&cfg);
	CU_ASSERT_EQUAL(e2e_tx_seal(NULL, out, sizeof out, &n, t, 3, t, 3), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_tx_seal(tx, NULL, sizeof out, &n, t, 3, t, 3), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_tx_seal(tx, out, sizeof out, NULL, t, 3, t, 3), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_tx_seal(tx, out, sizeof out, &n, NULL, 3, t, 3), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_tx_seal(tx, out, sizeof out, &n, t, 3, NULL, 3), E2E_ERR_ARG);
	/* An MQTT topic name is never empty. */
	CU_ASSERT_NOT_EQUAL(e2e_tx_seal(tx, out, sizeof out, &n, t, 0, t, 3), E2E_OK);
	/* One byte short: E2E_ERR_BUFFER, nothing written, nothing consumed. */
	memset(out, 0x5A, sizeof out);
	CU_ASSERT_EQUAL(e2e_tx_seal(tx, out, e2e_envelope_size(3) - 1, &n, t, 3, t, 3),
		E2E_ERR_BUFFER);
	CU_ASSERT_EQUAL(n, 0);
	for (size_t i = 0; i < sizeof out; i++)
		CU_ASSERT_EQUAL(out[i], 0x5A);
	e2e_tx_stats(tx, &st);
	CU_ASSERT_EQUAL(st.sealed, 0);
	CU_ASSERT_EQUAL(st.counter, 0);
	CU_ASSERT_EQUAL(st.streams, 0);
	{
		struct e2e_header h = seal_text(tx, "a/b", "abc", out, sizeof out, &n);

		CU_ASSERT_EQUAL(h.counter, 1);
		CU_ASSERT_EQUAL(h.seq, 1);
	}
	e2e_tx_destroy(tx);
}

/* ---- Vectors ----------------------------------------------------------- */

static void run_tx_vector(const json_t *v)
{
	const char *name = tu_jstr(v, "name");
	const json_t *topics = json_object_get(v, "topics");
	const json_t *pts = json_object_get(v, "plaintexts");
	const json_t *expect = json_object_get(v, "expect");
	uint64_t sender = 0, scope = 0, epoch = 0, run = 0, floor = 0;
	uint8_t key[E2E_KEY_BYTES], pt[1024], want[2048], env[2048];
	struct tu_reserve r = { 0 };
	struct e2e_tx_config cfg;
	struct e2e_tx *tx = NULL;
	size_t kl = 0, i;
	const json_t *e;
	enum e2e_status st;

	if (!name || tu_jhex(v, "key", key, sizeof key, &kl) || kl != E2E_KEY_BYTES ||
	    tu_juint(v, "sender", &sender) || tu_juint(v, "scope", &scope) ||
	    tu_juint(v, "epoch", &epoch) || tu_juint(v, "run", &run) ||
	    tu_juint(v, "counter_floor", &floor) || !json_is_array(expect) ||
	    json_array_size(topics) != json_array_size(expect) ||
	    json_array_size(pts) != json_array_size(expect)) {
		TU_CHECK(0, "tx vector %s unreadable", name ? name : "?");
		return;
	}
	cfg = config(key, &r);
	cfg.id.sender = (uint32_t)sender;
	cfg.id.scope = (uint8_t)scope;
	cfg.id.epoch = (uint32_t)epoch;
	cfg.run = (uint32_t)run;
	cfg.counter_floor = floor;
	st = e2e_tx_create(&tx, &cfg);
	TU_CHECK(st == E2E_OK, "%s: create: %s", name, e2e_strerror(st));
	if (st != E2E_OK)
		return;
	json_array_foreach(expect, i, e) {
		const char *topic = json_string_value(json_array_get(topics, i));
		const char *pthex = json_string_value(json_array_get(pts, i));
		uint64_t counter = 0, seq = 0;
		size_t pl = 0, wl = 0, el = 0;
		struct e2e_header h;

		if (!topic || tu_unhex(pt, sizeof pt, &pl, pthex) || tu_juint(e, "counter", &counter) ||
		    tu_juint(e, "seq", &seq) || tu_jhex(e, "envelope", want, sizeof want, &wl)) {
			TU_CHECK(0, "%s: message %zu unreadable", name, i);
			break;
		}
		st = e2e_tx_seal(tx, env, sizeof env, &el, (const uint8_t *)topic, strlen(topic), pt, pl);
		TU_CHECK(st == E2E_OK, "%s: message %zu: %s", name, i, e2e_strerror(st));
		TU_CHECK(e2e_header_parse(&h, env, el) == E2E_OK && h.counter == counter &&
			h.seq == seq && h.run == run, "%s: message %zu: counter %llu seq %u run %08x, "
			"expected %llu %llu %08llx", name, i, (unsigned long long)h.counter, h.seq, h.run,
			(unsigned long long)counter, (unsigned long long)seq, (unsigned long long)run);
		TU_CHECK(el == wl && !memcmp(env, want, wl), "%s: message %zu: bytes differ", name, i);
	}
	/* The first block was reserved before any seal and covers them all. */
	TU_CHECK(r.calls == 1 && r.last == floor + E2E_TX_BLOCK_DEFAULT,
		"%s: reserve calls %u last %llu", name, r.calls, (unsigned long long)r.last);
	e2e_tx_destroy(tx);
}

static void test_vectors(void)
{
	tu_each_vector("tx.json", "sequences", run_tx_vector);
}

/* ---- Reservation ------------------------------------------------------- */

static void test_reserve_blocks(void)
{
	uint8_t key[E2E_KEY_BYTES], env[128];
	struct tu_reserve r = { 0 };
	struct e2e_tx_config cfg;
	struct e2e_tx_stats st;
	struct e2e_tx *tx;
	const uint64_t floor = 10;

	tu_key(key, 2);
	cfg = config(key, &r);
	cfg.counter_floor = floor;
	cfg.block = 4;
	tx = make_tx(&cfg);
	/* Reserved floor + block before the first seal, for this key id. */
	CU_ASSERT_EQUAL(r.calls, 1);
	CU_ASSERT_EQUAL(r.last, floor + 4);
	CU_ASSERT(r.last_id.sender == TX_ID.sender && r.last_id.scope == TX_ID.scope &&
		r.last_id.epoch == TX_ID.epoch);
	e2e_tx_stats(tx, &st);
	CU_ASSERT_EQUAL(st.ceiling, floor + 4);
	CU_ASSERT_EQUAL(st.counter, 0);
	for (unsigned i = 1; i <= 13; i++) {
		struct e2e_header h = seal_text(tx, "t", "x", env, sizeof env, NULL);
		unsigned want_calls = 1 + (i - 1) / 4;

		TU_CHECK(h.counter == floor + i, "seal %u: counter %llu", i,
			(unsigned long long)h.counter);
		/* A new block exactly when the counter passes the ceiling. */
		TU_CHECK(r.calls == want_calls, "seal %u: %u reserve calls, expected %u", i,
			r.calls, want_calls);
		TU_CHECK(r.last == floor + 4 * want_calls, "seal %u: ceiling %llu", i,
			(unsigned long long)r.last);
		TU_CHECK(h.counter <= r.last, "seal %u: counter beyond reservation", i);
	}
	e2e_tx_stats(tx, &st);
	CU_ASSERT_EQUAL(st.counter, floor + 13);
	CU_ASSERT_EQUAL(st.ceiling, floor + 16);
	CU_ASSERT_EQUAL(st.sealed, 13);
	e2e_tx_destroy(tx);
}

static void test_reserve_fails_at_create(void)
{
	uint8_t key[E2E_KEY_BYTES];
	struct tu_reserve r = { .fail = E2E_ERR_IO };
	struct e2e_tx_config cfg;
	struct e2e_tx *tx = (struct e2e_tx *)&r;

	tu_key(key, 3);
	cfg = config(key, &r);
	CU_ASSERT_EQUAL(e2e_tx_create(&tx, &cfg), E2E_ERR_RESERVE);
	CU_ASSERT_PTR_NULL(tx);
	CU_ASSERT_EQUAL(r.calls, 1);
}

static void test_reserve_fails_at_crossing(void)
{
	uint8_t key[E2E_KEY_BYTES], env[128];
	struct tu_reserve r = { 0 };
	struct e2e_tx_config cfg;
	struct e2e_tx_stats before, after;
	struct e2e_tx *tx;
	struct e2e_header h;
	size_t n = 3;

	tu_key(key, 4);
	cfg = config(key, &r);
	cfg.block = 4;
	tx = make_tx(&cfg);
	for (int i = 0; i < 4; i++)
		(void)seal_text(tx, "t", "x", env, sizeof env, NULL);
	e2e_tx_stats(tx, &before);
	CU_ASSERT_EQUAL(before.counter, 4);
	r.fail = E2E_ERR_IO;
	for (int attempt = 0; attempt < 3; attempt++) {
		memset(env, 0xC3, sizeof env);
		CU_ASSERT_EQUAL(e2e_tx_seal(tx, env, sizeof env, &n, (const uint8_t *)"t", 1,
			(const uint8_t *)"x", 1), E2E_ERR_RESERVE);
		/* Nothing produced: no length, no bytes, no counter, no seq. */
		CU_ASSERT_EQUAL(n, 0);
		for (size_t i = 0; i < sizeof env; i++)
			CU_ASSERT_EQUAL(env[i], 0xC3);
		e2e_tx_stats(tx, &after);
		CU_ASSERT_EQUAL(after.counter, before.counter);
		CU_ASSERT_EQUAL(after.sealed, before.sealed);
		CU_ASSERT_EQUAL(after.ceiling, before.ceiling);
	}
	CU_ASSERT_EQUAL(r.calls, 4);
	/* The disk recovers: the next seal reserves and goes on. */
	r.fail = E2E_OK;
	h = seal_text(tx, "t", "x", env, sizeof env, NULL);
	CU_ASSERT_EQUAL(h.counter, 5);
	CU_ASSERT_EQUAL(h.seq, 5);
	CU_ASSERT_EQUAL(r.calls, 5);
	CU_ASSERT_EQUAL(r.last, 8);
	e2e_tx_destroy(tx);
}

/* ---- Limits and runs --------------------------------------------------- */

static void test_limit_exhausted(void)
{
	uint8_t key[E2E_KEY_BYTES], env[128];
	struct tu_reserve r = { 0 };
	struct e2e_tx_config cfg;
	struct e2e_tx_stats st;
	struct e2e_tx *tx;
	size_t n = 1;

	tu_key(key, 5);
	cfg = config(key, &r);
	cfg.limit = 3;
	cfg.block = 2;
	tx = make_tx(&cfg);
	for (uint64_t i = 1; i <= 3; i++)
		CU_ASSERT_EQUAL(seal_text(tx, "t", "x", env, sizeof env, NULL).counter, i);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(e2e_tx_seal(tx, env, sizeof env, &n, (const uint8_t *)"t", 1,
			(const uint8_t *)"x", 1), E2E_ERR_EXHAUSTED);
		CU_ASSERT_EQUAL(n, 0);
	}
	e2e_tx_stats(tx, &st);
	CU_ASSERT_EQUAL(st.sealed, 3);
	CU_ASSERT_EQUAL(st.counter, 3);
	e2e_tx_destroy(tx);
}

static void test_counter_space_exhausted(void)
{
	uint8_t key[E2E_KEY_BYTES], env[128];
	struct tu_reserve r = { 0 };
	struct e2e_tx_config cfg;
	struct e2e_tx *tx;
	size_t n;

	tu_key(key, 6);
	cfg = config(key, &r);
	cfg.limit = UINT64_MAX;
	cfg.counter_floor = E2E_COUNTER_MAX - 2;
	tx = make_tx(&cfg);
	CU_ASSERT(r.last <= E2E_COUNTER_MAX);
	CU_ASSERT_EQUAL(seal_text(tx, "t", "x", env, sizeof env, NULL).counter, E2E_COUNTER_MAX - 1);
	CU_ASSERT_EQUAL(seal_text(tx, "t", "x", env, sizeof env, NULL).counter, E2E_COUNTER_MAX);
	/* Never wraps to a 48-bit counter already used. */
	CU_ASSERT_EQUAL(e2e_tx_seal(tx, env, sizeof env, &n, (const uint8_t *)"t", 1,
		(const uint8_t *)"x", 1), E2E_ERR_EXHAUSTED);
	e2e_tx_destroy(tx);
}

static void test_floor_at_limit(void)
{
	uint8_t key[E2E_KEY_BYTES], env[128];
	struct tu_reserve r = { 0 };
	struct e2e_tx_config cfg;
	struct e2e_tx *tx = NULL;
	enum e2e_status st;
	size_t n;

	tu_key(key, 7);
	cfg = config(key, &r);
	cfg.counter_floor = E2E_TX_LIMIT_DEFAULT;
	st = e2e_tx_create(&tx, &cfg);
	/* Either refused at once or on the first seal: never a message. */
	if (st == E2E_OK) {
		CU_ASSERT_EQUAL(e2e_tx_seal(tx, env, sizeof env, &n, (const uint8_t *)"t", 1,
			(const uint8_t *)"x", 1), E2E_ERR_EXHAUSTED);
		e2e_tx_destroy(tx);
	} else {
		CU_ASSERT_EQUAL(st, E2E_ERR_EXHAUSTED);
		CU_ASSERT_PTR_NULL(tx);
	}
}

static void test_topic_table_full(void)
{
	uint8_t key[E2E_KEY_BYTES], env[128];
	struct tu_reserve r = { 0 };
	struct e2e_tx_config cfg;
	struct e2e_tx_stats st0, st1;
	struct e2e_tx *tx;
	struct e2e_header a1, b1, a2, c1, a3;

	tu_key(key, 8);
	cfg = config(key, &r);
	cfg.max_streams = 2;
	tx = make_tx(&cfg);
	a1 = seal_text(tx, "a", "1", env, sizeof env, NULL);
	b1 = seal_text(tx, "b", "2", env, sizeof env, NULL);
	a2 = seal_text(tx, "a", "3", env, sizeof env, NULL);
	e2e_tx_stats(tx, &st0);
	CU_ASSERT_EQUAL(a1.run, cfg.run);
	CU_ASSERT(a1.seq == 1 && b1.seq == 1 && a2.seq == 2);
	CU_ASSERT(b1.run == a1.run && a2.run == a1.run);
	CU_ASSERT_EQUAL(st0.streams, 2);
	/* A third topic: new run, every seq restarts, the counter goes on. */
	c1 = seal_text(tx, "c", "4", env, sizeof env, NULL);
	e2e_tx_stats(tx, &st1);
	CU_ASSERT_EQUAL(st1.runs, st0.runs + 1);
	CU_ASSERT_NOT_EQUAL(c1.run, a1.run);
	CU_ASSERT_NOT_EQUAL(c1.run, 0);
	CU_ASSERT_EQUAL(st1.run, c1.run);
	CU_ASSERT_EQUAL(c1.seq, 1);
	CU_ASSERT_EQUAL(c1.counter, a2.counter + 1);
	a3 = seal_text(tx, "a", "5", env, sizeof env, NULL);
	CU_ASSERT_EQUAL(a3.run, c1.run);
	CU_ASSERT_EQUAL(a3.seq, 1);
	CU_ASSERT_EQUAL(a3.counter, c1.counter + 1);
	e2e_tx_stats(tx, &st1);
	CU_ASSERT_EQUAL(st1.runs, st0.runs + 1);
	CU_ASSERT_EQUAL(st1.streams, 2);
	CU_ASSERT_EQUAL(st1.sealed, 5);
	e2e_tx_destroy(tx);
}

static void test_random_runs(void)
{
	uint8_t key[E2E_KEY_BYTES], env[128];
	struct tu_reserve r = { 0 };
	struct e2e_tx_config cfg;
	uint32_t runs[4];

	tu_key(key, 9);
	cfg = config(key, &r);
	cfg.run = 0;
	for (int i = 0; i < 4; i++) {
		struct e2e_tx *tx = make_tx(&cfg);

		runs[i] = seal_text(tx, "t", "x", env, sizeof env, NULL).run;
		CU_ASSERT_NOT_EQUAL(runs[i], 0);
		e2e_tx_destroy(tx);
	}
	/* Four random 32-bit values collide with probability ~2^-29.4. */
	for (int i = 0; i < 4; i++)
		for (int j = i + 1; j < 4; j++)
			TU_CHECK(runs[i] != runs[j], "run %08x repeated", runs[i]);
}

static void test_default_topic_table(void)
{
	uint8_t key[E2E_KEY_BYTES], env[128];
	struct tu_reserve r = { 0 };
	struct e2e_tx_config cfg;
	struct e2e_tx_stats st;
	struct e2e_tx *tx;
	char topic[32];
	struct e2e_header h;

	tu_key(key, 12);
	cfg = config(key, &r);
	tx = make_tx(&cfg);
	for (unsigned i = 0; i < E2E_TX_STREAMS_DEFAULT; i++) {
		snprintf(topic, sizeof topic, "t/%u", i);
		h = seal_text(tx, topic, "x", env, sizeof env, NULL);
		if (h.run != cfg.run || h.seq != 1)
			break;
	}
	e2e_tx_stats(tx, &st);
	CU_ASSERT_EQUAL(st.streams, E2E_TX_STREAMS_DEFAULT);
	CU_ASSERT_EQUAL(st.run, cfg.run);
	h = seal_text(tx, "one/more", "x", env, sizeof env, NULL);
	CU_ASSERT_NOT_EQUAL(h.run, cfg.run);
	CU_ASSERT_EQUAL(h.seq, 1);
	CU_ASSERT_EQUAL(h.counter, E2E_TX_STREAMS_DEFAULT + 1);
	e2e_tx_destroy(tx);
}

/* ---- Round trip and crash ---------------------------------------------- */

static void test_round_trip_rx(void)
{
	static const char *const topics[] = { "s/1/temp", "s/2/temp", "s/1/hum" };
	uint8_t key[E2E_KEY_BYTES], env[600], pt[560], back[560];
	struct tu_reserve r = { 0 };
	struct e2e_tx_config cfg;
	struct e2e_keyring *kr;
	struct e2e_rx *rx;
	struct e2e_tx *tx;
	struct e2e_rx_stats st;
	uint64_t rng = 42;
	unsigned first[3] = { 1, 1, 1 };

	tu_key(key, 10);
	cfg = config(key, &r);
	tx = make_tx(&cfg);
	kr = tu_keyring_with(&TX_ID, key);
	rx = tu_rx_new(0, 0);
	for (unsigned i = 0; i < 60; i++) {
		size_t len = tu_rand(&rng) % sizeof pt, el = 0;
		unsigned t = (unsigned)(tu_rand(&rng) % 3);
		struct e2e_rx_result res;

		for (size_t k = 0; k < len; k++)
			pt[k] = (uint8_t)tu_rand(&rng);
		CU_ASSERT_EQUAL_FATAL(e2e_tx_seal(tx, env, sizeof env, &el,
			(const uint8_t *)topics[t], strlen(topics[t]), pt, len), E2E_OK);
		TU_ASSERT_VERDICT(tu_rx_open(rx, kr, &res, back, sizeof back, topics[t], env, el),
			E2E_V_OK);
		CU_ASSERT_EQUAL(res.pt_len, len);
		CU_ASSERT(!memcmp(back, pt, len));
		CU_ASSERT_EQUAL(!!(res.flags & E2E_RX_NEW_STREAM), first[t]);
		CU_ASSERT_EQUAL(res.hdr.counter, i + 1);
		first[t] = 0;
	}
	e2e_rx_stats(rx, &st);
	CU_ASSERT_EQUAL(st.verdicts[E2E_V_OK], 60);
	CU_ASSERT_EQUAL(st.gap_total, 0);
	CU_ASSERT_EQUAL(st.streams, 3 - first[0] - first[1] - first[2]);
	e2e_rx_destroy(rx);
	e2e_keyring_destroy(kr);
	e2e_tx_destroy(tx);
}

/*
 * Crash between reserve and use: each "process" reads its floor from the
 * state file, seals a few messages and dies without any shutdown call. The
 * next one must start strictly above every counter used before.
 */
static void test_crash_restart(void)
{
	uint8_t key[E2E_KEY_BYTES], env[128];
	struct tu_tmp t;
	uint64_t max_used = 0;

	tu_tmp_open(&t, "tx.state");
	tu_key(key, 11);
	for (unsigned life = 0; life < 6; life++) {
		struct e2e_tx_config cfg = config(key, NULL);
		struct e2e_tx *tx = NULL;
		uint64_t floor = 12345;
		enum e2e_status st = e2e_txstate_get(t.path, &TX_ID, &floor);

		if (life == 0) {
			CU_ASSERT_EQUAL(st, E2E_ERR_NOT_FOUND);
			CU_ASSERT_EQUAL(floor, 0);
			floor = 0;
		} else {
			CU_ASSERT_EQUAL(st, E2E_OK);
		}
		TU_CHECK(floor >= max_used, "life %u: floor %llu below used %llu", life,
			(unsigned long long)floor, (unsigned long long)max_used);
		cfg.counter_floor = floor;
		cfg.block = 8;
		cfg.run = 0;
		cfg.reserve = e2e_txstate_reserve_cb;
		cfg.reserve_ctx = t.path;
		CU_ASSERT_EQUAL_FATAL(e2e_tx_create(&tx, &cfg), E2E_OK);
		for (unsigned i = 0; i < 3 + life * 5; i++) {
			struct e2e_header h = seal_text(tx, "t", "x", env, sizeof env, NULL);

			TU_CHECK(h.counter > max_used, "life %u: counter %llu reused (max %llu)", life,
				(unsigned long long)h.counter, (unsigned long long)max_used);
			if (i == 0)
				CU_ASSERT_EQUAL(h.counter, floor + 1);
			max_used = h.counter;
		}
		e2e_tx_destroy(tx);   /* the crash: nothing else is written */
	}
	CU_ASSERT(max_used > 40);
	/* Only the state file remains: no temporary left behind. */
	CU_ASSERT_EQUAL(tu_dir_entries(t.dir), 1);
	tu_tmp_close(&t);
}

/* ---- Vectors: state.json tx_runs (SPEC 4.1-4.2, 5.1) -------------------- */

struct ceilings {
	uint64_t v[16];
	unsigned n;
};

static enum e2e_status record_ceiling(void *ctx, const struct e2e_keyid *id, uint64_t ceiling)
{
	struct ceilings *c = ctx;

	(void)id;
	if (c->n < 16)
		c->v[c->n] = ceiling;
	c->n++;
	return E2E_OK;
}

/* Runs are random in C: the vector's run index must map to one fresh run id each. */
static void run_tx_runs(const json_t *c)
{
	const char *name = tu_jstr(c, "name"), *start = tu_jstr(c, "start");
	const json_t *topics = json_object_get(c, "topics"), *expect = json_object_get(c, "expect");
	const json_t *reserved = json_object_get(c, "reserved");
	uint64_t floor = 0, block = 0, limit = 0, max_topics = 0;
	uint32_t runs[16] = { 0 };
	uint8_t key[E2E_KEY_BYTES], env[128];
	struct ceilings cl = { { 0 }, 0 };
	struct e2e_tx_config cfg;
	struct e2e_tx *tx = NULL;
	enum e2e_status st;
	size_t i;

	if (!name || !start || !json_is_array(topics) || !json_is_array(expect) ||
	    !json_is_array(reserved) || tu_juint(c, "counter_floor", &floor) ||
	    tu_juint(c, "block", &block) || tu_juint(c, "limit", &limit) ||
	    tu_juint(c, "max_topics", &max_topics)) {
		TU_CHECK(0, "tx_runs vector %s unreadable", name ? name : "?");
		return;
	}
	tu_key(key, 9);
	memset(&cfg, 0, sizeof cfg);
	cfg.id = TX_ID;
	cfg.key = key;
	cfg.counter_floor = floor;
	cfg.block = (uint32_t)block;
	cfg.limit = limit;
	cfg.max_streams = (uint32_t)max_topics;
	cfg.reserve = record_ceiling;
	cfg.reserve_ctx = &cl;
	st = e2e_tx_create(&tx, &cfg);
	TU_CHECK((st == E2E_OK) == !strcmp(start, "OK"), "%s: create %s, vector says %s", name,
		e2e_strerror(st), start);
	if (st != E2E_OK)
		goto out;
	for (i = 0; i < json_array_size(topics); i++) {
		const char *t = json_string_value(json_array_get(topics, i));
		const json_t *e = json_array_get(expect, i);
		struct e2e_header h;
		size_t n = 0;
		uint64_t run = 0, counter = 0, seq = 0;

		st = e2e_tx_seal(tx, env, sizeof env, &n, (const uint8_t *)t, strlen(t),
			(const uint8_t *)"x", 1);
		if (json_is_string(e)) {
			TU_CHECK(st == E2E_ERR_EXHAUSTED, "%s: seal %zu: %s, expected EXHAUSTED", name, i,
				e2e_strerror(st));
			continue;
		}
		if (tu_juint(e, "run", &run) || tu_juint(e, "counter", &counter) ||
		    tu_juint(e, "seq", &seq) || run >= 16 || st != E2E_OK ||
		    e2e_header_parse(&h, env, n) != E2E_OK) {
			TU_CHECK(0, "%s: seal %zu: %s", name, i, e2e_strerror(st));
			continue;
		}
		if (!runs[run])
			runs[run] = h.run;
		TU_CHECK(h.run == runs[run] && h.counter == counter && h.seq == seq,
			"%s: seal %zu: run %08x counter %llu seq %u, expected run #%llu counter %llu "
			"seq %llu", name, i, h.run, (unsigned long long)h.counter, h.seq,
			(unsigned long long)run, (unsigned long long)counter, (unsigned long long)seq);
		TU_CHECK(run == 0 || runs[run] != runs[run - 1], "%s: run #%llu is not new", name,
			(unsigned long long)run);
	}
	TU_CHECK(cl.n == json_array_size(reserved), "%s: %u reservations, vector has %zu", name,
		cl.n, json_array_size(reserved));
	for (i = 0; i < json_array_size(reserved) && i < cl.n && i < 16; i++) {
		uint64_t want = 0;

		(void)tu_juint_value(json_array_get(reserved, i), &want);
		TU_CHECK(cl.v[i] == want, "%s: reservation %zu is %llu, expected %llu", name, i,
			(unsigned long long)cl.v[i], (unsigned long long)want);
	}
out:
	e2e_tx_destroy(tx);
}

static void test_run_vectors(void)
{
	tu_each_vector("state.json", "tx_runs", run_tx_runs);
}

/*
 * The sealing core with no files at all: no reserve callback, a ceiling the
 * caller made durable. It seals up to that ceiling and not one counter
 * beyond (SPEC 4.1), asks for more at the low-water mark (half a block
 * left), and goes on once the owner extends the ceiling.
 */
static void test_async_reservation(void)
{
	uint8_t key[E2E_KEY_BYTES], env[128];
	struct e2e_tx_config cfg;
	struct e2e_tx_stats st;
	struct e2e_keyid id;
	struct e2e_tx *tx;
	uint64_t want = 0;
	size_t n = 0;

	tu_key(key, 3);
	cfg = config(key, NULL);
	cfg.reserve = NULL;
	cfg.counter_floor = 100;
	cfg.block = 16;
	/* No callback needs a durable ceiling above the floor. */
	cfg.ceiling = 100;
	CU_ASSERT_EQUAL(e2e_tx_create(&tx, &cfg), E2E_ERR_ARG);
	cfg.ceiling = 116;
	tx = make_tx(&cfg);
	CU_ASSERT_EQUAL(e2e_tx_reserve_due(tx, &id, &want), 0);
	for (unsigned i = 1; i <= 16; i++) {
		struct e2e_header h = seal_text(tx, "t", "x", env, sizeof env, NULL);

		CU_ASSERT_EQUAL(h.counter, 100 + i);
		/* Due from 8 left (half a block) on, not before. */
		TU_CHECK(e2e_tx_reserve_due(tx, &id, &want) == (16 - i <= 8), "seal %u: due %d",
			i, e2e_tx_reserve_due(tx, NULL, NULL));
	}
	CU_ASSERT_EQUAL(want, 132);
	CU_ASSERT(id.sender == TX_ID.sender && id.scope == TX_ID.scope && id.epoch == TX_ID.epoch);
	/* At the durable ceiling: refused, nothing consumed, no output. */
	CU_ASSERT_EQUAL(e2e_tx_seal(tx, env, sizeof env, &n, (const uint8_t *)"t", 1,
		(const uint8_t *)"x", 1), E2E_ERR_RESERVE);
	CU_ASSERT_EQUAL(n, 0);
	e2e_tx_stats(tx, &st);
	CU_ASSERT_EQUAL(st.counter, 116);
	CU_ASSERT_EQUAL(st.ceiling, 116);
	/* A late, lower answer changes nothing; the planned one resumes sealing. */
	CU_ASSERT_EQUAL(e2e_tx_extend(tx, 110), E2E_OK);
	e2e_tx_stats(tx, &st);
	CU_ASSERT_EQUAL(st.ceiling, 116);
	CU_ASSERT_EQUAL(e2e_tx_extend(tx, want), E2E_OK);
	CU_ASSERT_EQUAL(seal_text(tx, "t", "x", env, sizeof env, NULL).counter, 117);
	CU_ASSERT_EQUAL(e2e_tx_reserve_due(tx, NULL, NULL), 0);
	CU_ASSERT_EQUAL(e2e_tx_exhausted(tx), 0);
	e2e_tx_destroy(tx);

	/* The limit caps both the planned and the extended ceiling. */
	cfg.counter_floor = 0;
	cfg.ceiling = 16;
	cfg.limit = 20;
	tx = make_tx(&cfg);
	for (unsigned i = 1; i <= 8; i++)
		(void)seal_text(tx, "t", "x", env, sizeof env, NULL);
	CU_ASSERT_EQUAL(e2e_tx_reserve_due(tx, NULL, &want), 1);
	CU_ASSERT_EQUAL(want, 20);
	CU_ASSERT_EQUAL(e2e_tx_extend(tx, 1000), E2E_OK);
	e2e_tx_stats(tx, &st);
	CU_ASSERT_EQUAL(st.ceiling, 20);
	for (unsigned i = 9; i <= 20; i++)
		(void)seal_text(tx, "t", "x", env, sizeof env, NULL);
	CU_ASSERT_EQUAL(e2e_tx_reserve_due(tx, NULL, NULL), 0);
	CU_ASSERT_EQUAL(e2e_tx_exhausted(tx), 1);
	CU_ASSERT_EQUAL(e2e_tx_seal(tx, env, sizeof env, &n, (const uint8_t *)"t", 1,
		(const uint8_t *)"x", 1), E2E_ERR_EXHAUSTED);
	e2e_tx_destroy(tx);
}

static const struct tu_test safety_tests[] = {
	{ "Safety: create with NULL or incomplete config", test_safety_create },
	{ "Safety: seal NULL arguments and short buffer consume nothing", test_safety_seal },
	{ NULL, NULL },
};

static const struct tu_test vector_tests[] = {
	{ "Vectors: tx.json sequences byte-exact with fixed run", test_vectors },
	{ "Vectors: state.json runs, reservations and limits", test_run_vectors },
	{ NULL, NULL },
};

static const struct tu_test tx_tests[] = {
	{ "Reserve: floor+block before first seal, again exactly at the ceiling", test_reserve_blocks },
	{ "Reserve: failing callback at create", test_reserve_fails_at_create },
	{ "Reserve: asynchronous (no files): stops at the durable ceiling, low-water, extend",
		test_async_reservation },
	{ "Reserve: failing callback makes seal E2E_ERR_RESERVE, no output",
		test_reserve_fails_at_crossing },
	{ "Limit: key usage limit gives E2E_ERR_EXHAUSTED", test_limit_exhausted },
	{ "Limit: 48-bit counter space ends in E2E_ERR_EXHAUSTED", test_counter_space_exhausted },
	{ "Limit: floor already at the limit", test_floor_at_limit },
	{ "Runs: topic table full starts a new run", test_topic_table_full },
	{ "Runs: random run ids are non-zero and fresh", test_random_runs },
	{ "Runs: 4096 topics per run by default", test_default_topic_table },
	{ "Round trip: tx seal, rx open", test_round_trip_rx },
	{ "Crash: restart from the txstate ceiling never reuses a counter", test_crash_restart },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "tx safety", safety_tests },
		{ "tx vectors", vector_tests },
		{ "tx", tx_tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
