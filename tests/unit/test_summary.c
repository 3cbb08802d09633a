/*
 * Signed summary tests (protocol/SPEC.md sec. 11.6): the sender accumulator
 * (e2e_summary) and the receiver check (e2e_sumcheck) end to end over e2e_tx
 * and e2e_rx: verified intervals, insider forgeries, unconfirmed messages,
 * unsummarized ones, topic filtering, multi-part summaries and full tables.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "testcu.h"

#define NOW 1700000000000ULL
#define INTERVAL 10000U
#define LOG_MAX 512U
#define RUN 0x5EED0001U

struct logged {
	enum e2e_sumcheck_result result;
	uint32_t sender, run, first, last, missing;
	int has_topic;
	char topic[80];          /* first bytes of the topic, NUL-terminated */
	size_t topic_len;
};

struct log {
	unsigned n;
	struct logged r[LOG_MAX];
	const char *reject;      /* match callback: refuse topics with this prefix */
	unsigned matched;
};

static void on_report(void *ctx, const struct e2e_sumcheck_report *r)
{
	struct log *l = ctx;
	struct logged *x;

	TU_CHECK(l->n < LOG_MAX, "more than %u reports", LOG_MAX);
	if (l->n >= LOG_MAX)
		return;
	x = &l->r[l->n++];
	memset(x, 0, sizeof *x);
	x->result = r->result;
	x->sender = r->sender;
	x->run = r->run;
	x->first = r->first;
	x->last = r->last;
	x->missing = r->missing;
	x->has_topic = r->topic != NULL;
	x->topic_len = r->topic_len;
	if (r->topic)
		memcpy(x->topic, r->topic, r->topic_len < sizeof x->topic - 1 ?
			r->topic_len : sizeof x->topic - 1);
}

static int on_match(void *ctx, const char *topic, size_t len)
{
	struct log *l = ctx;
	size_t pl = l->reject ? strlen(l->reject) : 0;

	l->matched++;
	return !(l->reject && len >= pl && !memcmp(topic, l->reject, pl));
}

/* The report for @p topic (by prefix of 79 bytes), or NULL. */
static const struct logged *report_for(const struct log *l, const char *topic)
{
	for (unsigned i = 0; i < l->n; i++)
		if (l->r[i].has_topic && !strncmp(l->r[i].topic, topic, sizeof l->r[i].topic - 1))
			return &l->r[i];
	return NULL;
}

/* Assert the report of @p topic: result, seqs first..last and missing count. */
#define EXPECT_REPORT(l, topic, res, first, last, missing) \
	expect_report((l), (topic), (res), (first), (last), (missing), __LINE__)

static void expect_report(const struct log *l, const char *topic, enum e2e_sumcheck_result res,
	uint32_t first, uint32_t last, uint32_t missing, int line)
{
	const struct logged *r = report_for(l, topic);

	if (!r) {
		tu_check(0, __FILE__, line, "no report for %s", topic);
		return;
	}
	tu_check(r->result == res && r->first == first && r->last == last && r->missing == missing,
		__FILE__, line, "%s: result %d, seqs %u..%u, missing %u; expected %d, %u..%u, %u",
		topic, (int)r->result, r->first, r->last, r->missing, (int)res, first, last, missing);
}

static unsigned count_result(const struct log *l, enum e2e_sumcheck_result res)
{
	unsigned n = 0;

	for (unsigned i = 0; i < l->n; i++)
		n += l->r[i].result == res;
	return n;
}

/* Sender (identity, one key, tx, accumulator) and receiver (ring, rx, sumcheck). */
struct fx {
	struct e2e_identity id;
	uint32_t sid;
	uint8_t key[E2E_KEY_BYTES];
	struct e2e_keyid kid;
	struct tu_reserve res;
	struct e2e_tx *tx;
	struct e2e_summary *sum;
	struct e2e_keyring *kr;
	struct e2e_rx *rx;
	struct e2e_sumcheck *sc;
	char ctl_topic[64];
	uint32_t boot;
	uint32_t number;
	uint32_t sealed;         /* messages sealed, for distinct payloads */
	uint64_t now;
	struct log log;
};

static void fx_init(struct fx *f, uint32_t max_streams, uint32_t pool, uint32_t max_pending)
{
	struct e2e_tx_config tc;

	memset(f, 0, sizeof *f);
	tu_identity(&f->id);
	f->sid = e2e_sender_id(&f->id.pub);
	tu_key(f->key, 0x61);
	f->kid = (struct e2e_keyid){ f->sid, 1, 1 };
	memset(&tc, 0, sizeof tc);
	tc.id = f->kid;
	tc.key = f->key;
	tc.run = RUN;
	tc.reserve = tu_reserve_cb;
	tc.reserve_ctx = &f->res;
	CU_ASSERT_EQUAL_FATAL(e2e_tx_create(&f->tx, &tc), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_summary_create(&f->sum, max_streams, pool, 1U << 16), E2E_OK);
	f->kr = tu_keyring_with(&f->kid, f->key);
	f->rx = tu_rx_new(0, 0);
	{
		struct e2e_sumcheck_config sc = { max_pending, 0, 0, 0, 0 };

		CU_ASSERT_EQUAL_FATAL(e2e_sumcheck_create(&f->sc, &sc), E2E_OK);
	}
	f->boot = 0xB0070001U;
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_sender_topic(f->ctl_topic, sizeof f->ctl_topic,
		E2E_CTL_TOPIC_DEFAULT, f->sid), E2E_OK);
	f->now = NOW;
}

static void fx_free(struct fx *f)
{
	e2e_tx_destroy(f->tx);
	e2e_summary_destroy(f->sum);
	e2e_keyring_destroy(f->kr);
	e2e_rx_destroy(f->rx);
	e2e_sumcheck_destroy(f->sc);
	e2e_identity_destroy(&f->id);
}

/* Seal the next message on @p topic and record it for the summary. */
static size_t fx_seal(struct fx *f, uint8_t env[TU_ENV_CAP], const char *topic,
	struct e2e_header *h)
{
	size_t len = 0;
	char pt[32];
	int n = snprintf(pt, sizeof pt, "m%u", ++f->sealed);
	enum e2e_status st;

	st = e2e_tx_seal(f->tx, env, TU_ENV_CAP, &len, (const uint8_t *)topic, strlen(topic),
		(const uint8_t *)pt, (size_t)n);
	CU_ASSERT_EQUAL_FATAL(st, E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_header_parse(h, env, len), E2E_OK);
	st = e2e_summary_add(f->sum, h->run, topic, strlen(topic), h->seq, env, len);
	TU_CHECK(st == E2E_OK, "e2e_summary_add %s #%u: %s", topic, h->seq, e2e_strerror(st));
	return len;
}

/* The receiver gets an envelope: accepted ones are recorded. */
static void fx_receive(struct fx *f, const char *topic, const uint8_t *env, size_t len)
{
	struct e2e_rx_result res;
	uint8_t pt[TU_ENV_CAP];
	enum e2e_verdict v = tu_rx_open(f->rx, f->kr, &res, pt, sizeof pt, topic, env, len);

	TU_CHECK(e2e_verdict_delivers(v), "%s seq %u: %s", topic, res.hdr.seq, tu_verdict_str(v));
	if (e2e_verdict_delivers(v))
		e2e_sumcheck_record(f->sc, f->sid, res.hdr.run, topic, strlen(topic), res.hdr.seq, env,
			len, f->now, on_report, &f->log);
}

/* Seal @p n messages on @p topic; deliver those whose bit in @p drop is clear. */
static void fx_send(struct fx *f, const char *topic, unsigned n, uint32_t drop)
{
	uint8_t env[TU_ENV_CAP];
	struct e2e_header h;

	for (unsigned i = 0; i < n; i++) {
		size_t len = fx_seal(f, env, topic, &h);

		if (!(i < 32 && (drop >> i) & 1))
			fx_receive(f, topic, env, len);
	}
}

/*
 * Build part @p part of summary @p number, verify it as a subscriber does and
 * let the receiver check it (@p match may be NULL). *parts: the part count.
 */
static void fx_part(struct fx *f, uint32_t number, uint8_t part, uint8_t *parts,
	e2e_sumcheck_match_fn match)
{
	static uint8_t msg[E2E_CTL_SUMMARY_MAX];
	struct e2e_ctl m;
	size_t len = 0;
	struct e2e_sumcheck_part pi;
	enum e2e_status st = e2e_summary_build(f->sum, &f->id, f->ctl_topic, INTERVAL, f->boot,
		number, part, parts, msg, sizeof msg, &len, f->now);

	TU_CHECK(st == E2E_OK, "build part %u: %s", part, e2e_strerror(st));
	CU_ASSERT_EQUAL_FATAL(st, E2E_OK);
	st = e2e_ctl_parse(&m, msg, len, f->ctl_topic, &f->id.pub);
	TU_CHECK(st == E2E_OK, "parse part %u: %s", part, e2e_strerror(st));
	CU_ASSERT_EQUAL_FATAL(st, E2E_OK);
	CU_ASSERT(m.number == number && m.part == part && m.parts == *parts &&
		m.interval_ms == INTERVAL && m.sender == f->sid && m.time_ms == f->now &&
		m.boot == f->boot);
	CU_ASSERT_EQUAL(e2e_sumcheck_accept(f->sc, f->sid, &m, &pi), 0);
	TU_CHECK(pi.accepted, "part %u of %u not accepted", part, number);
	e2e_sumcheck_summary(f->sc, f->sid, &m, pi.index, f->now, match, on_report, &f->log);
}

/* Emit the interval (every part) and let the receiver check it. */
static uint8_t fx_summary(struct fx *f)
{
	uint8_t parts = 1;

	f->number++;
	f->now += INTERVAL;
	for (uint8_t part = 0; part < parts; part++)
		fx_part(f, f->number, part, &parts, on_match);
	e2e_summary_reset(f->sum);
	CU_ASSERT_EQUAL(e2e_summary_streams(f->sum), 0);
	return parts;
}

/* ---- Safety ------------------------------------------------------------ */

static void test_safety(void)
{
	struct e2e_summary *s = NULL;
	struct e2e_sumcheck *sc = NULL;
	struct e2e_identity id;
	struct e2e_ctl m;
	uint8_t env[64] = { 0 }, out[512], parts = 0;
	size_t len = 0, need;

	tu_identity(&id);
	CU_ASSERT_EQUAL(e2e_summary_create(NULL, 4, 64, 8), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_summary_create(&s, 0, 64, 8), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_summary_create(&s, 65536, 64, 8), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_summary_create(&s, 4, 0, 8), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_summary_create(&s, 4, 64, 0), E2E_ERR_ARG);
	CU_ASSERT_EQUAL_FATAL(e2e_summary_create(&s, 4, 64, 8), E2E_OK);
	CU_ASSERT_EQUAL(e2e_summary_add(NULL, 1, "t", 1, 1, env, sizeof env), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_summary_add(s, 1, NULL, 1, 1, env, sizeof env), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_summary_add(s, 1, "t", 0, 1, env, sizeof env), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_summary_add(s, 1, "t", 1, 1, NULL, sizeof env), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_summary_streams(s), 0);
	CU_ASSERT_EQUAL(e2e_summary_streams(NULL), 0);
	CU_ASSERT_EQUAL(e2e_summary_add(s, 1, "t", 1, 1, env, sizeof env), E2E_OK);
	CU_ASSERT_EQUAL(e2e_summary_build(NULL, &id, "c", 1, 7, 1, 0, &parts, out, sizeof out, &len, 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_summary_build(s, NULL, "c", 1, 7, 1, 0, &parts, out, sizeof out, &len, 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_summary_build(s, &id, NULL, 1, 7, 1, 0, &parts, out, sizeof out, &len, 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_summary_build(s, &id, "c", 1, 7, 1, 0, NULL, out, sizeof out, &len, 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_summary_build(s, &id, "c", 1, 7, 1, 0, &parts, NULL, sizeof out, &len, 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_summary_build(s, &id, "c", 1, 7, 1, 0, &parts, out, sizeof out, NULL, 1),
		E2E_ERR_ARG);
	/* boot is never 0, number counts from 1; part must exist. */
	CU_ASSERT_EQUAL(e2e_summary_build(s, &id, "c", 1, 0, 1, 0, &parts, out, sizeof out, &len, 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_summary_build(s, &id, "c", 1, 7, 0, 0, &parts, out, sizeof out, &len, 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_summary_build(s, &id, "c", 1, 7, 1, 1, &parts, out, sizeof out, &len, 1),
		E2E_ERR_ARG);
	/* head 14 + 16 + one entry (14 + topic 1 + one digest 8) + no history 1 + sig 64 */
	need = 14 + 16 + 23 + 1 + 64;
	CU_ASSERT_EQUAL(e2e_summary_build(s, &id, "c", 1, 7, 1, 0, &parts, out, need - 1, &len, 1),
		E2E_ERR_BUFFER);
	CU_ASSERT_EQUAL(e2e_summary_build(s, &id, "c", 1, 7, 1, 0, &parts, out, need - 64, &len, 1),
		E2E_ERR_BUFFER);
	CU_ASSERT_EQUAL(e2e_summary_build(s, &id, "c", 1, 7, 1, 0, &parts, out, need, &len, 1), E2E_OK);
	CU_ASSERT_EQUAL(len, need);
	CU_ASSERT_EQUAL(parts, 1);
	CU_ASSERT_EQUAL(e2e_ctl_parse(&m, out, len, "c", &id.pub), E2E_OK);
	e2e_summary_reset(NULL);
	e2e_summary_destroy(s);
	e2e_summary_destroy(NULL);

	CU_ASSERT_EQUAL(e2e_sumcheck_create(NULL, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL_FATAL(e2e_sumcheck_create(&sc, NULL), E2E_OK);
	e2e_sumcheck_record(NULL, 1, 1, "t", 1, 1, env, sizeof env, 0, on_report, NULL);
	e2e_sumcheck_record(sc, 1, 1, NULL, 1, 1, env, sizeof env, 0, on_report, NULL);
	e2e_sumcheck_record(sc, 1, 1, "t", 1, 1, NULL, sizeof env, 0, on_report, NULL);
	e2e_sumcheck_summary(NULL, 1, &m, 1, 0, NULL, on_report, NULL);
	e2e_sumcheck_summary(sc, 1, NULL, 1, 0, NULL, on_report, NULL);
	e2e_sumcheck_summary(sc, 1, &m, 1, 0, NULL, NULL, NULL);
	CU_ASSERT_EQUAL(e2e_sumcheck_arrived(NULL, 1), 0);
	{
		struct e2e_sumcheck_part pi;

		CU_ASSERT_EQUAL(e2e_sumcheck_accept(NULL, 1, &m, &pi), -1);
		CU_ASSERT_EQUAL(e2e_sumcheck_accept(sc, 1, NULL, &pi), -1);
		CU_ASSERT_EQUAL(e2e_sumcheck_accept(sc, 1, &m, NULL), -1);
	}
	/* A message that is not a summary is ignored. */
	m.type = E2E_CTL_ANNOUNCE;
	e2e_sumcheck_summary(sc, 1, &m, 1, 0, NULL, on_report, NULL);
	{
		struct e2e_sumcheck_stats st;

		e2e_sumcheck_stats(sc, &st);
		CU_ASSERT(st.not_kept == 0 && st.open == 0 && st.records == 0);
		e2e_sumcheck_stats(NULL, &st);
	}
	e2e_sumcheck_destroy(sc);
	e2e_sumcheck_destroy(NULL);
	e2e_identity_destroy(&id);
}

/* ---- Vectors ----------------------------------------------------------- */

/*
 * control.json summaries: per-envelope digests, the signed message rebuilt
 * by the accumulator byte for byte (single-part ones) and verified by the
 * receiver check from the envelopes.
 */
static void check_summary_vector(const json_t *v)
{
	static uint8_t msg[E2E_CTL_SUMMARY_MAX], out[E2E_CTL_SUMMARY_MAX], env[1024];
	const char *name = tu_jstr(v, "name"), *topic = tu_jstr(v, "topic");
	const json_t *entries = json_object_get(v, "entries"), *e, *x;
	uint64_t sender = 0, time_ms = 0, interval = 0, number = 0, parts = 0, boot = 0;
	uint8_t seed[32], got_parts = 0, d[E2E_DIGEST_BYTES], dv[E2E_DIGEST_BYTES];
	size_t len = 0, out_len = 0, n = 0, i, j, count = 0;
	struct e2e_identity id;
	struct e2e_summary *s = NULL;
	struct e2e_sumcheck *sc = NULL;
	struct e2e_ctl m;
	static struct log log;

	memset(&log, 0, sizeof log);
	if (!name || !topic || !json_is_array(entries) || tu_jhex(v, "seed", seed, 32, &n) ||
	    tu_jhex(v, "message", msg, sizeof msg, &len) || tu_juint(v, "sender", &sender) ||
	    tu_juint(v, "time_ms", &time_ms) || tu_juint(v, "interval_ms", &interval) ||
	    tu_juint(v, "number", &number) || tu_juint(v, "parts", &parts) ||
	    tu_juint(v, "boot", &boot))
		return;
	tu_identity_from_seed(&id, seed, NULL);
	CU_ASSERT_EQUAL_FATAL(e2e_summary_create(&s, 16, 1U << 20, 64), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_sumcheck_create(&sc, NULL), E2E_OK);
	json_array_foreach(entries, i, e) {
		const char *et = tu_jstr(e, "topic");
		const json_t *envs = json_object_get(e, "envelopes"), *digs = json_object_get(e, "digests");
		uint64_t run = 0, first = 0;

		if (!et || tu_juint(e, "run", &run) || tu_juint(e, "first", &first) ||
		    !json_is_array(envs) || !json_is_array(digs))
			continue;
		json_array_foreach(envs, j, x) {
			size_t el = 0, dl = 0;

			if (!json_is_string(x) || tu_unhex(env, sizeof env, &el, json_string_value(x)) ||
			    tu_unhex(dv, sizeof dv, &dl, json_string_value(json_array_get(digs, j))) ||
			    dl != sizeof dv) {
				TU_CHECK(0, "%s: bad envelope/digest #%zu", name, j);
				continue;
			}
			e2e_summary_digest(d, env, el);
			TU_CHECK(!memcmp(d, dv, sizeof d), "%s: d_s of %s #%zu", name, et, j);
			CU_ASSERT_EQUAL(e2e_summary_add(s, (uint32_t)run, et, strlen(et),
				(uint32_t)(first + j), env, el), E2E_OK);
			e2e_sumcheck_record(sc, (uint32_t)sender, (uint32_t)run, et, strlen(et),
				(uint32_t)(first + j), env, el, 0, on_report, &log);
		}
	}
	/* A summary with history needs the earlier intervals: test_sumhist.c. */
	if (parts == 1 && json_array_size(json_object_get(v, "history")) == 0) {
		CU_ASSERT_EQUAL(e2e_summary_build(s, &id, topic, (uint32_t)interval, (uint32_t)boot,
			(uint32_t)number, 0, &got_parts, out, sizeof out, &out_len, time_ms), E2E_OK);
		CU_ASSERT_EQUAL(got_parts, 1);
		TU_CHECK(out_len == len && !memcmp(out, msg, len),
			"%s: e2e_summary_build gives other bytes", name);
	}
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(&m, msg, len, topic, &id.pub), E2E_OK);
	CU_ASSERT_EQUAL(m.boot, boot);
	e2e_sumcheck_summary(sc, (uint32_t)sender, &m, m.part + 1 == m.parts ?
		e2e_sumcheck_arrived(sc, (uint32_t)sender) : 0, 0, NULL, on_report, &log);
	json_array_foreach(entries, i, e) {
		const char *et = tu_jstr(e, "topic");
		const struct logged *r = et ? report_for(&log, et) : NULL;

		count++;
		TU_CHECK(r && r->result == E2E_SUM_VERIFIED, "%s: %s not verified", name,
			et ? et : "?");
	}
	TU_CHECK(log.n == count && count_result(&log, E2E_SUM_VERIFIED) == count,
		"%s: %u reports for %zu entries", name, log.n, count);
	e2e_summary_destroy(s);
	e2e_sumcheck_destroy(sc);
	e2e_identity_destroy(&id);
}

static void test_vectors(void)
{
	tu_each_vector("control.json", "summaries", check_summary_vector);
}

/*
 * The two-part summary of control.json rebuilt by the accumulator: gen.py
 * packs as SPEC 11.6 describes libe2e doing it (streams in first-seal order,
 * a new part when an entry does not fit), so both parts come out byte for byte.
 */
static void test_vectors_two_parts(void)
{
	static uint8_t env[1024], out[E2E_CTL_SUMMARY_MAX], msg[E2E_CTL_SUMMARY_MAX];
	json_t *root = tu_vectors("control.json");
	json_t *items = root ? tu_jarray(root, "summaries") : NULL;
	const json_t *v, *e, *x;
	struct e2e_summary *s = NULL;
	struct e2e_identity id;
	const json_t *parts_of[2] = { NULL, NULL };
	uint64_t boot = 0, number = 0, interval = 0, time_ms = 0;
	uint8_t seed[32], got_parts = 0;
	size_t i, j, k, n = 0;

	if (!items) {
		json_decref(root);
		return;
	}
	json_array_foreach(items, i, v) {
		const char *name = tu_jstr(v, "name");

		if (name && !strcmp(name, "summary-two-parts-0"))
			parts_of[0] = v;
		if (name && !strcmp(name, "summary-two-parts-1"))
			parts_of[1] = v;
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(parts_of[0]);
	CU_ASSERT_PTR_NOT_NULL_FATAL(parts_of[1]);
	CU_ASSERT_FATAL(!tu_jhex(parts_of[0], "seed", seed, 32, &n) && n == 32 &&
		!tu_juint(parts_of[0], "boot", &boot) && !tu_juint(parts_of[0], "number", &number) &&
		!tu_juint(parts_of[0], "interval_ms", &interval) &&
		!tu_juint(parts_of[0], "time_ms", &time_ms));
	tu_identity_from_seed(&id, seed, NULL);
	CU_ASSERT_EQUAL_FATAL(e2e_summary_create(&s, 16, 1U << 20, 64), E2E_OK);
	for (k = 0; k < 2; k++) {
		json_array_foreach(json_object_get(parts_of[k], "entries"), i, e) {
			const char *et = tu_jstr(e, "topic");
			uint64_t run = 0, first = 0;

			if (!et || tu_juint(e, "run", &run) || tu_juint(e, "first", &first))
				continue;
			json_array_foreach(json_object_get(e, "envelopes"), j, x) {
				size_t el = 0;

				CU_ASSERT_FATAL(!tu_unhex(env, sizeof env, &el, json_string_value(x)));
				CU_ASSERT_EQUAL(e2e_summary_add(s, (uint32_t)run, et, strlen(et),
					(uint32_t)(first + j), env, el), E2E_OK);
			}
		}
	}
	for (k = 0; k < 2; k++) {
		size_t len = 0, out_len = 0;
		const char *topic = tu_jstr(parts_of[k], "topic");

		CU_ASSERT_FATAL(topic && !tu_jhex(parts_of[k], "message", msg, sizeof msg, &len));
		CU_ASSERT_EQUAL(e2e_summary_build(s, &id, topic, (uint32_t)interval, (uint32_t)boot,
			(uint32_t)number, (uint8_t)k, &got_parts, out, sizeof out, &out_len, time_ms),
			E2E_OK);
		CU_ASSERT_EQUAL(got_parts, 2);
		TU_CHECK(out_len == len && !memcmp(out, msg, len),
			"summary-two-parts-%zu: e2e_summary_build gives other bytes", k);
	}
	e2e_summary_destroy(s);
	e2e_identity_wipe(&id);
	json_decref(root);
}

/*
 * sumcheck.json: receiver verdicts (SPEC 11.6). Each case's accepted
 * envelopes and summary parts go through e2e_sumcheck_accept/record/summary;
 * the reports (and the ordering outcomes the client turns into events) must
 * equal the listed ones as a multiset.
 */
struct vrep {
	char kind[16];
	uint64_t first, last, count;
};

struct vlog {
	unsigned n;
	struct vrep r[64];
};

static void vlog_add(struct vlog *l, const char *kind, uint64_t first, uint64_t last,
	uint64_t count)
{
	TU_CHECK(l->n < 64, "too many reports");
	if (l->n >= 64)
		return;
	snprintf(l->r[l->n].kind, sizeof l->r[l->n].kind, "%s", kind);
	l->r[l->n].first = first;
	l->r[l->n].last = last;
	l->r[l->n++].count = count;
}

static void vlog_report(void *ctx, const struct e2e_sumcheck_report *r)
{
	static const char *names[] = { "?", "VERIFIED", "FORGED", "UNCONFIRMED", "UNSUMMARIZED",
		"UNCHECKED", "LATE", "HIST_LOST" };

	vlog_add(ctx, (unsigned)r->result <= E2E_SUM_HIST_LOST ? names[r->result] : "?", r->first,
		r->last, r->missing);
}

static int vrep_cmp(const void *a, const void *b)
{
	const struct vrep *x = a, *y = b;
	int c = strcmp(x->kind, y->kind);

	if (c)
		return c;
	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	if (x->last != y->last)
		return x->last < y->last ? -1 : 1;
	return x->count < y->count ? -1 : x->count > y->count;
}

static void replay_case(const json_t *c, const struct e2e_identity *id, uint32_t sid,
	const char *ctl)
{
	static uint8_t msg[E2E_CTL_SUMMARY_MAX];
	static struct vlog got, want;
	const char *name = tu_jstr(c, "name");
	const json_t *events = json_object_get(c, "events"), *reports = json_object_get(c, "reports");
	const json_t *ev;
	struct e2e_sumcheck_config cfg = { 0 };
	struct e2e_sumcheck *sc = NULL;
	uint64_t window = 0, open_ms = 0;
	size_t i;

	memset(&got, 0, sizeof got);
	memset(&want, 0, sizeof want);
	if (!name || !json_is_array(events) || !json_is_array(reports) ||
	    tu_juint(c, "window", &window) || tu_juint(c, "open_ms", &open_ms))
		return;
	cfg.window = (uint32_t)window;
	cfg.open_ms = (uint32_t)open_ms;
	CU_ASSERT_EQUAL_FATAL(e2e_sumcheck_create(&sc, &cfg), E2E_OK);
	json_array_foreach(events, i, ev) {
		const json_t *a = json_object_get(ev, "accept");
		const json_t *hv = json_object_get(ev, "hold");
		const json_t *vf = json_object_get(ev, "verify");
		uint64_t at = 0, run = 0, seq = 0;
		size_t len = 0;

		if (tu_juint(ev, "at", &at))
			break;
		if (hv || vf) {
			/* SPEC 11.5: a held envelope under a retired key. */
			static const char *held[] = { "HELD_WAIT", "HELD_OK", "HELD_FORGED" };
			const json_t *x = hv ? hv : vf;
			const char *topic = tu_jstr(x, "topic");
			enum e2e_sum_verdict v;

			if (!topic || tu_juint(x, "run", &run) || tu_juint(x, "seq", &seq) ||
			    tu_jhex(x, "envelope", msg, sizeof msg, &len))
				break;
			v = (hv ? e2e_sumcheck_hold : e2e_sumcheck_verify)(sc, sid, (uint32_t)run,
				topic, strlen(topic), (uint32_t)seq, msg, len, at, vlog_report, &got);
			vlog_add(&got, (unsigned)v <= E2E_SUMV_FORGED ? held[v] : "?", seq, seq, 1);
		} else if (a) {
			const char *topic = tu_jstr(a, "topic");

			if (!topic || tu_juint(a, "run", &run) || tu_juint(a, "seq", &seq) ||
			    tu_jhex(a, "envelope", msg, sizeof msg, &len))
				break;
			e2e_sumcheck_record(sc, sid, (uint32_t)run, topic, strlen(topic),
				(uint32_t)seq, msg, len, at, vlog_report, &got);
		} else {
			struct e2e_sumcheck_part pi;
			struct e2e_ctl m;

			if (tu_jhex(ev, "summary", msg, sizeof msg, &len))
				break;
			CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(&m, msg, len, ctl, &id->pub), E2E_OK);
			CU_ASSERT_EQUAL(e2e_sumcheck_accept(sc, sid, &m, &pi), 0);
			if (!pi.accepted) {
				vlog_add(&got, "IGNORED", 0, 0, 1);
				continue;
			}
			if (pi.parts_number)
				vlog_add(&got, "STALLED_PARTS", pi.parts_from, pi.parts_to,
					pi.parts_number);
			if (pi.gap_to)
				vlog_add(&got, "STALLED", pi.gap_from, pi.gap_to,
					pi.gap_to - pi.gap_from + 1);
			e2e_sumcheck_summary(sc, sid, &m, pi.index, at, NULL, vlog_report, &got);
		}
	}
	json_array_foreach(reports, i, ev) {
		const char *kind = tu_jstr(ev, "kind");
		uint64_t first = 0, last = 0, count = 0;

		if (!kind || tu_juint(ev, "first", &first) || tu_juint(ev, "last", &last) ||
		    tu_juint(ev, "count", &count))
			continue;
		vlog_add(&want, kind, first, last, count);
	}
	qsort(got.r, got.n, sizeof got.r[0], vrep_cmp);
	qsort(want.r, want.n, sizeof want.r[0], vrep_cmp);
	TU_CHECK(got.n == want.n, "%s: %u reports, expected %u", name, got.n, want.n);
	for (unsigned k = 0; k < got.n && k < want.n; k++)
		TU_CHECK(!vrep_cmp(&got.r[k], &want.r[k]), "%s: report %s %llu..%llu (%llu), "
			"expected %s %llu..%llu (%llu)", name, got.r[k].kind,
			(unsigned long long)got.r[k].first, (unsigned long long)got.r[k].last,
			(unsigned long long)got.r[k].count, want.r[k].kind,
			(unsigned long long)want.r[k].first, (unsigned long long)want.r[k].last,
			(unsigned long long)want.r[k].count);
	e2e_sumcheck_destroy(sc);
}

static void test_verdict_vectors(void)
{
	json_t *root = tu_vectors("sumcheck.json");
	const json_t *sender = root ? json_object_get(root, "sender") : NULL;
	const char *ctl = root ? tu_jstr(root, "control_topic") : NULL;
	json_t *cases = root ? tu_jarray(root, "cases") : NULL;
	struct e2e_identity id;
	uint8_t seed[32];
	uint64_t sid = 0;
	size_t n = 0, i;
	const json_t *c;

	if (!sender || !ctl || !cases || tu_jhex(sender, "seed", seed, sizeof seed, &n) ||
	    n != 32 || tu_juint(sender, "id", &sid)) {
		json_decref(root);
		return;
	}
	tu_identity_from_seed(&id, seed, NULL);
	CU_ASSERT_EQUAL(e2e_sender_id(&id.pub), sid);
	json_array_foreach(cases, i, c)
		replay_case(c, &id, (uint32_t)sid, ctl);
	e2e_identity_wipe(&id);
	json_decref(root);
}

/* ---- Behaviour --------------------------------------------------------- */

static void test_all_received_verified(void)
{
	struct fx f;
	const struct logged *r;

	fx_init(&f, 64, 4096, 1024);
	fx_send(&f, "plant/a", 5, 0);
	fx_send(&f, "plant/b", 1, 0);
	fx_send(&f, "plant/a", 2, 0);
	fx_send(&f, "plant/c/°C", 3, 0);
	CU_ASSERT_EQUAL(e2e_summary_streams(f.sum), 3);
	CU_ASSERT_EQUAL(fx_summary(&f), 1);
	CU_ASSERT_EQUAL(f.log.n, 3);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_VERIFIED), 3);
	EXPECT_REPORT(&f.log, "plant/a", E2E_SUM_VERIFIED, 1, 7, 0);
	EXPECT_REPORT(&f.log, "plant/b", E2E_SUM_VERIFIED, 1, 1, 0);
	EXPECT_REPORT(&f.log, "plant/c/°C", E2E_SUM_VERIFIED, 1, 3, 0);
	r = report_for(&f.log, "plant/a");
	CU_ASSERT(r && r->run == RUN && r->sender == f.sid && r->topic_len == 7);
	/* The next interval continues the streams' seqs. */
	memset(&f.log, 0, sizeof f.log);
	fx_send(&f, "plant/a", 2, 0);
	fx_summary(&f);
	CU_ASSERT_EQUAL(f.log.n, 1);
	EXPECT_REPORT(&f.log, "plant/a", E2E_SUM_VERIFIED, 8, 9, 0);
	/* Nothing was left over: quiet intervals report nothing. */
	memset(&f.log, 0, sizeof f.log);
	fx_summary(&f);
	fx_summary(&f);
	CU_ASSERT_EQUAL(f.log.n, 0);
	fx_free(&f);
}

static void test_insider_forgery(void)
{
	struct fx f;
	uint8_t env[TU_ENV_CAP], forged[TU_ENV_CAP];
	struct e2e_header h;
	size_t len, flen;

	fx_init(&f, 64, 4096, 1024);
	fx_send(&f, "plant/a", 1, 0);
	fx_send(&f, "plant/b", 2, 0);
	/* Seq 2 of plant/a: the sender's envelope never arrives; an enrolled
	 * subscriber's, sealed with the shared key and the same seq, does. */
	len = fx_seal(&f, env, "plant/a", &h);
	CU_ASSERT_EQUAL(h.seq, 2);
	h.counter = 0xFFFFFF;
	flen = tu_seal(forged, sizeof forged, &h, f.key, "plant/a", (const uint8_t *)"open valve", 10);
	CU_ASSERT(flen != len || memcmp(forged, env, len) != 0);
	fx_receive(&f, "plant/a", forged, flen);
	fx_send(&f, "plant/a", 1, 0);
	fx_summary(&f);
	/* Named at its seq; the entry is not reported verified. */
	CU_ASSERT_EQUAL(f.log.n, 2);
	EXPECT_REPORT(&f.log, "plant/a", E2E_SUM_FORGED, 2, 2, 1);
	EXPECT_REPORT(&f.log, "plant/b", E2E_SUM_VERIFIED, 1, 2, 0);
	fx_free(&f);
}

static void test_missing_unconfirmed(void)
{
	struct fx f;

	fx_init(&f, 64, 4096, 1024);
	/* plant/a: 6 sent, #2 and the tail #5, #6 dropped; plant/b: all dropped. */
	fx_send(&f, "plant/a", 6, (1U << 1) | (1U << 4) | (1U << 5));
	fx_send(&f, "plant/b", 4, 0xF);
	fx_send(&f, "plant/c", 2, 0);
	fx_summary(&f);
	CU_ASSERT_EQUAL(f.log.n, 3);
	EXPECT_REPORT(&f.log, "plant/a", E2E_SUM_UNCONFIRMED, 1, 6, 3);
	EXPECT_REPORT(&f.log, "plant/b", E2E_SUM_UNCONFIRMED, 1, 4, 4);
	EXPECT_REPORT(&f.log, "plant/c", E2E_SUM_VERIFIED, 1, 2, 0);
	/* The received ones of plant/a were consumed: nothing turns up later. */
	memset(&f.log, 0, sizeof f.log);
	fx_summary(&f);
	fx_summary(&f);
	fx_summary(&f);
	CU_ASSERT_EQUAL(f.log.n, 0);
	fx_free(&f);
}

static void test_match_skips_topics(void)
{
	struct fx f;
	uint8_t env[TU_ENV_CAP];
	struct e2e_header h;

	fx_init(&f, 64, 4096, 1024);
	/* The receiver subscribes to plant/#, not to office/#. */
	f.log.reject = "office/";
	fx_send(&f, "plant/a", 3, 0);
	for (int i = 0; i < 4; i++)
		(void)fx_seal(&f, env, "office/printer", &h);
	fx_send(&f, "plant/b", 1, 0);
	fx_summary(&f);
	CU_ASSERT_EQUAL(f.log.matched, 3);
	CU_ASSERT_EQUAL(f.log.n, 2);
	CU_ASSERT_PTR_NULL(report_for(&f.log, "office/printer"));
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_VERIFIED), 2);
	/* Without a match callback every entry is checked: office/ never arrived. */
	f.log.reject = NULL;
	memset(&f.log, 0, sizeof f.log);
	for (int i = 0; i < 2; i++)
		(void)fx_seal(&f, env, "office/printer", &h);
	{
		uint8_t parts = 0;

		fx_part(&f, 99, 0, &parts, NULL);
	}
	CU_ASSERT(f.log.n == 1 && f.log.r[0].result == E2E_SUM_UNCONFIRMED &&
		f.log.r[0].missing == 2 && f.log.r[0].first == 5 && f.log.r[0].last == 6);
	fx_free(&f);
}

static void test_unsummarized(void)
{
	struct fx f;
	uint8_t env[TU_ENV_CAP];
	struct e2e_header h;
	size_t len;

	fx_init(&f, 64, 4096, 1024);
	fx_send(&f, "plant/a", 2, 0);
	/* A stream the sender never sealed (an insider's own run). */
	h = tu_header(f.sid, 1, 1, 0xBAD0BAD0U, 1, 1);
	len = tu_seal(env, sizeof env, &h, f.key, "plant/a", (const uint8_t *)"x", 1);
	fx_receive(&f, "plant/a", env, len);
	fx_summary(&f);
	/* One complete summary went by: not yet. */
	CU_ASSERT_EQUAL(f.log.n, 1);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_VERIFIED), 1);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_UNSUMMARIZED), 0);
	/* The second one (an empty heartbeat) reveals it. */
	memset(&f.log, 0, sizeof f.log);
	fx_summary(&f);
	CU_ASSERT_EQUAL_FATAL(f.log.n, 1);
	CU_ASSERT_EQUAL(f.log.r[0].result, E2E_SUM_UNSUMMARIZED);
	CU_ASSERT_EQUAL(f.log.r[0].run, 0xBAD0BAD0U);
	CU_ASSERT_EQUAL(f.log.r[0].sender, f.sid);
	CU_ASSERT(f.log.r[0].first == 1 && f.log.r[0].last == 1);
	CU_ASSERT_FALSE(f.log.r[0].has_topic);
	/* Reported once. */
	memset(&f.log, 0, sizeof f.log);
	fx_summary(&f);
	CU_ASSERT_EQUAL(f.log.n, 0);

	/* One that arrives after a summary was checked needs two more. */
	h = tu_header(f.sid, 1, 1, 0xBAD0BAD1U, 2, 1);
	len = tu_seal(env, sizeof env, &h, f.key, "plant/z", (const uint8_t *)"y", 1);
	fx_receive(&f, "plant/z", env, len);
	fx_summary(&f);
	CU_ASSERT_EQUAL(f.log.n, 0);
	fx_summary(&f);
	CU_ASSERT(f.log.n == 1 && f.log.r[0].result == E2E_SUM_UNSUMMARIZED &&
		f.log.r[0].run == 0xBAD0BAD1U);
	fx_free(&f);
}

/*
 * Summaries that never came (a gap in numbers, a sender restart): what they
 * would have covered is UNCHECKED, once and together, never UNSUMMARIZED;
 * records accepted after the gap are judged as usual again.
 */
static void test_missed_unchecked(void)
{
	struct fx f;
	uint8_t env[TU_ENV_CAP];
	struct e2e_header h;
	size_t len;

	fx_init(&f, 64, 4096, 1024);
	e2e_sumcheck_missed(NULL, f.sid);             /* no crash */
	fx_send(&f, "plant/a", 3, 0);
	fx_send(&f, "plant/b", 2, 0);
	/* Summary 1 is built and lost: the next to arrive is number 2. */
	f.number++;
	f.now += INTERVAL;
	e2e_summary_reset(f.sum);
	e2e_sumcheck_missed(f.sc, f.sid);
	fx_summary(&f);
	CU_ASSERT_EQUAL(f.log.n, 0);
	fx_summary(&f);
	CU_ASSERT_EQUAL_FATAL(f.log.n, 1);
	CU_ASSERT_EQUAL(f.log.r[0].result, E2E_SUM_UNCHECKED);
	CU_ASSERT_EQUAL(f.log.r[0].sender, f.sid);
	CU_ASSERT_EQUAL(f.log.r[0].missing, 5);
	CU_ASSERT(f.log.r[0].first == 1 && f.log.r[0].last == 3);
	CU_ASSERT_FALSE(f.log.r[0].has_topic);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_UNSUMMARIZED), 0);

	/* After the gap, a record no summary covers is UNSUMMARIZED again. */
	memset(&f.log, 0, sizeof f.log);
	fx_send(&f, "plant/a", 1, 0);
	h = tu_header(f.sid, 1, 1, 0xBAD0BAD2U, 1, 1);
	len = tu_seal(env, sizeof env, &h, f.key, "plant/a", (const uint8_t *)"z", 1);
	fx_receive(&f, "plant/a", env, len);
	fx_summary(&f);
	fx_summary(&f);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_VERIFIED), 1);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_UNCHECKED), 0);
	CU_ASSERT_EQUAL_FATAL(count_result(&f.log, E2E_SUM_UNSUMMARIZED), 1);
	CU_ASSERT_EQUAL(f.log.r[f.log.n - 1].run, 0xBAD0BAD2U);
	fx_free(&f);
}

/* Summaries of one sender never sweep another sender's records. */
static void test_other_sender(void)
{
	struct fx f;
	uint8_t env[TU_ENV_CAP];
	struct e2e_header h;
	size_t len;

	fx_init(&f, 64, 4096, 1024);
	h = tu_header(f.sid, 1, 1, RUN, 1, 1);
	len = tu_seal(env, sizeof env, &h, f.key, "plant/a", (const uint8_t *)"x", 1);
	/* Recorded as coming from another sender id. */
	e2e_sumcheck_record(f.sc, f.sid ^ 1, RUN, "plant/a", 7, 1, env, len, f.now, on_report,
		&f.log);
	fx_summary(&f);
	fx_summary(&f);
	fx_summary(&f);
	CU_ASSERT_EQUAL(f.log.n, 0);
	fx_free(&f);
}

/* Many streams with long topics: the builder splits the interval. */
static void test_multi_part(void)
{
	static uint8_t msg[E2E_CTL_SUMMARY_MAX];
	static char topics[200][1001];
	static uint8_t seen[200];
	struct fx f;
	uint8_t parts = 0, first_parts = 0;
	uint32_t total = 0, stray_run = 0xBAD00001U;
	uint8_t env[TU_ENV_CAP];
	struct e2e_header h;
	size_t len;

	fx_init(&f, 256, 256 * 1024, 4096);
	for (int i = 0; i < 200; i++) {
		int n = snprintf(topics[i], sizeof topics[i], "site/stream-%03d/", i);

		memset(topics[i] + n, 'a' + i % 26, (size_t)(1000 - n));
		topics[i][1000] = '\0';
		fx_send(&f, topics[i], 1 + (unsigned)(i % 3), 0);
	}
	CU_ASSERT_EQUAL(e2e_summary_streams(f.sum), 200);
	/* Each part on its own: a valid signed summary of at most 65535 bytes. */
	memset(seen, 0, sizeof seen);
	for (uint8_t part = 0; part == 0 || part < parts; part++) {
		struct e2e_ctl m;
		struct e2e_summary_iter it;
		struct e2e_summary_entry e;

		CU_ASSERT_EQUAL_FATAL(e2e_summary_build(f.sum, &f.id, f.ctl_topic, INTERVAL, f.boot, 7,
			part, &parts, msg, sizeof msg, &len, NOW), E2E_OK);
		if (part == 0)
			first_parts = parts;
		CU_ASSERT_EQUAL(parts, first_parts);
		CU_ASSERT(len <= E2E_CTL_SUMMARY_MAX && len > E2E_CTL_MSG_MAX);
		CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(&m, msg, len, f.ctl_topic, &f.id.pub), E2E_OK);
		CU_ASSERT(m.part == part && m.parts == parts && m.number == 7 && m.boot == f.boot);
		e2e_summary_iter_init(&it, &m);
		while (e2e_summary_entry_next(&it, &e)) {
			unsigned idx = 0;
			int ok = e.topic_len == 1000 && sscanf(e.topic, "site/stream-%3u/", &idx) == 1 &&
				idx < 200 && !memcmp(e.topic, topics[idx], 1000);

			TU_CHECK(ok, "part %u: unexpected topic", part);
			if (!ok)
				continue;
			TU_CHECK(!seen[idx], "stream %u in two parts", idx);
			seen[idx] = 1;
			CU_ASSERT(e.first == 1 && e.last == 1 + idx % 3 && e.run == RUN);
			total++;
		}
	}
	/* 200 entries of > 1014 bytes need at least 4 parts of 65535 bytes. */
	CU_ASSERT(parts >= 4);
	CU_ASSERT_EQUAL(total, 200);
	/* The receiver checks them all, part by part. */
	h = tu_header(f.sid, 1, 1, stray_run, 0xABCDEF, 1);
	len = tu_seal(env, sizeof env, &h, f.key, "stray", (const uint8_t *)"x", 1);
	fx_receive(&f, "stray", env, len);
	CU_ASSERT_EQUAL(fx_summary(&f), parts);
	CU_ASSERT_EQUAL(f.log.n, 200);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_VERIFIED), 200);
	/* Only complete summaries count towards unsummarized: parts of the next
	 * one (all but its last) do not reveal the stray record. */
	memset(&f.log, 0, sizeof f.log);
	for (int i = 0; i < 200; i++)
		fx_send(&f, topics[i], 1, 0);
	f.number++;
	for (uint8_t part = 0; part + 1 < parts; part++)
		fx_part(&f, f.number, part, &parts, NULL);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_UNSUMMARIZED), 0);
	fx_part(&f, f.number, (uint8_t)(parts - 1), &parts, NULL);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_VERIFIED), 200);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_UNSUMMARIZED), 1);
	fx_free(&f);
}

/* Record a (dummy) envelope of stream (@p run, @p topic). */
static enum e2e_status add(struct e2e_summary *s, uint32_t run, const char *topic, uint32_t seq)
{
	static const uint8_t env[48] = { 1 };

	return e2e_summary_add(s, run, topic, strlen(topic), seq, env, sizeof env);
}

/*
 * The build resumes each part where the previous one stopped (issue 15):
 * parts built out of order, a part built twice, and a part built after the
 * summary changed are byte for byte what a walk from the start gives. Four
 * streams of 10,000 digests (each longer than a part: split) among 299 short
 * ones, at least four parts; the reference is a second summary fed the same records, built part
 * by part after every add so that it never resumes a stale position.
 */
static void test_parts_any_order(void)
{
	enum { STREAMS = 303, NPARTS_MAX = 8 };
	static uint8_t ref[NPARTS_MAX][E2E_CTL_SUMMARY_MAX], got[E2E_CTL_SUMMARY_MAX];
	static const uint8_t order[] = { 2, 0, 1, 1, 3, 2, 0, 3 };
	size_t ref_len[NPARTS_MAX], len = 0;
	struct e2e_summary *a = NULL, *b = NULL;
	struct e2e_identity id;
	uint8_t parts = 0, pb = 0;
	char topic[32];

	tu_identity(&id);
	CU_ASSERT_EQUAL_FATAL(e2e_summary_create(&a, 512, 1U << 16, 1U << 16), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_summary_create(&b, 512, 1U << 16, 1U << 16), E2E_OK);
	for (int i = 0; i < STREAMS; i++) {
		uint32_t n = i % 100 == 0 ? 10000 : 1 + (uint32_t)i % 5;

		snprintf(topic, sizeof topic, "t/%d", i);
		for (uint32_t q = 1; q <= n; q++) {
			CU_ASSERT_EQUAL_FATAL(add(a, 9, topic, q), E2E_OK);
			CU_ASSERT_EQUAL_FATAL(add(b, 9, topic, q), E2E_OK);
		}
	}
	for (uint8_t p = 0; p == 0 || p < parts; p++) {
		CU_ASSERT_EQUAL_FATAL(e2e_summary_build(a, &id, "c", 1, 7, 1, p, &parts, ref[p],
			sizeof ref[p], &ref_len[p], 1), E2E_OK);
		CU_ASSERT_FATAL(parts <= NPARTS_MAX);
	}
	CU_ASSERT_FATAL(parts >= 4);
	for (size_t k = 0; k < sizeof order; k++) {
		CU_ASSERT_EQUAL(e2e_summary_build(a, &id, "c", 1, 7, 1, order[k], &pb, got, sizeof got,
			&len, 1), E2E_OK);
		TU_CHECK(pb == parts && len == ref_len[order[k]] && !memcmp(got, ref[order[k]], len),
			"part %u built after part %u differs", order[k], k ? order[k - 1] : 99);
	}
	/* A record added to the first stream after part 1 was built (the walk
	 * stopped at the start of part 2, past that stream): every later entry
	 * moves by one digest, and part 2 is that of the new contents (b, built
	 * from the start), not resumed from the old walk. */
	CU_ASSERT_EQUAL(e2e_summary_build(a, &id, "c", 1, 7, 1, 1, &pb, got, sizeof got, &len, 1),
		E2E_OK);
	CU_ASSERT_EQUAL(add(a, 9, "t/0", 10001), E2E_OK);
	CU_ASSERT_EQUAL(add(b, 9, "t/0", 10001), E2E_OK);
	CU_ASSERT_EQUAL(e2e_summary_build(b, &id, "c", 1, 7, 1, 2, &pb, ref[0], sizeof ref[0],
		&ref_len[0], 1), E2E_OK);
	CU_ASSERT_EQUAL(e2e_summary_build(a, &id, "c", 1, 7, 1, 2, &pb, got, sizeof got, &len, 1),
		E2E_OK);
	CU_ASSERT(len == ref_len[0] && !memcmp(got, ref[0], len));
	CU_ASSERT(len != ref_len[2] || memcmp(got, ref[2], len) != 0);
	e2e_summary_destroy(a);
	e2e_summary_destroy(b);
	e2e_identity_destroy(&id);
}

static void test_full(void)
{
	struct e2e_summary *s = NULL;

	/* Stream table: 2 streams. */
	CU_ASSERT_EQUAL_FATAL(e2e_summary_create(&s, 2, 1024, 64), E2E_OK);
	CU_ASSERT_EQUAL(add(s, 1, "a", 1), E2E_OK);
	CU_ASSERT_EQUAL(add(s, 2, "a", 1), E2E_OK);
	CU_ASSERT_EQUAL(add(s, 1, "b", 1), E2E_ERR_FULL);
	CU_ASSERT_EQUAL(add(s, 3, "a", 1), E2E_ERR_FULL);
	/* Known streams still take messages. */
	CU_ASSERT_EQUAL(add(s, 1, "a", 2), E2E_OK);
	CU_ASSERT_EQUAL(e2e_summary_streams(s), 2);
	e2e_summary_reset(s);
	CU_ASSERT_EQUAL(add(s, 1, "b", 1), E2E_OK);
	e2e_summary_destroy(s);

	/* Topic pool: 6 bytes. */
	CU_ASSERT_EQUAL_FATAL(e2e_summary_create(&s, 16, 6, 64), E2E_OK);
	CU_ASSERT_EQUAL(add(s, 1, "abcd", 1), E2E_OK);
	CU_ASSERT_EQUAL(add(s, 1, "xyz", 1), E2E_ERR_FULL);
	CU_ASSERT_EQUAL(add(s, 1, "xy", 1), E2E_OK);
	CU_ASSERT_EQUAL(add(s, 1, "z", 1), E2E_ERR_FULL);
	CU_ASSERT_EQUAL(add(s, 1, "abcd", 2), E2E_OK);
	CU_ASSERT_EQUAL(e2e_summary_streams(s), 2);
	e2e_summary_reset(s);
	CU_ASSERT_EQUAL(add(s, 1, "abcdef", 1), E2E_OK);
	e2e_summary_destroy(s);

	/* Digest log: 3 envelopes per interval; seqs of a stream consecutive. */
	CU_ASSERT_EQUAL_FATAL(e2e_summary_create(&s, 16, 64, 3), E2E_OK);
	CU_ASSERT_EQUAL(add(s, 1, "a", 1), E2E_OK);
	CU_ASSERT_EQUAL(add(s, 1, "a", 3), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(add(s, 1, "a", 2), E2E_OK);
	CU_ASSERT_EQUAL(add(s, 1, "b", 1), E2E_OK);
	CU_ASSERT_EQUAL(add(s, 1, "a", 3), E2E_ERR_FULL);
	e2e_summary_reset(s);
	CU_ASSERT_EQUAL(add(s, 1, "a", 3), E2E_OK);
	e2e_summary_destroy(s);
}

/*
 * A full receiver table keeps what it has: what it could not keep is "not
 * checked" when its summary comes, never "never arrived", and never later
 * unsummarized.
 */
static void test_overflow_not_checked(void)
{
	struct fx f;
	struct e2e_sumcheck_stats st;

	fx_init(&f, 64, 4096, 4);
	fx_send(&f, "plant/a", 3, 0);
	fx_send(&f, "plant/b", 3, 0);
	e2e_sumcheck_stats(f.sc, &st);
	CU_ASSERT_EQUAL(st.not_kept, 2);
	CU_ASSERT_EQUAL(st.records, 4);
	fx_summary(&f);
	CU_ASSERT_EQUAL(f.log.n, 2);
	EXPECT_REPORT(&f.log, "plant/a", E2E_SUM_VERIFIED, 1, 3, 0);
	EXPECT_REPORT(&f.log, "plant/b", E2E_SUM_UNCHECKED, 2, 3, 2);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_UNCONFIRMED), 0);
	memset(&f.log, 0, sizeof f.log);
	fx_send(&f, "plant/b", 1, 0);
	fx_summary(&f);
	fx_summary(&f);
	fx_summary(&f);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_UNSUMMARIZED), 0);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_UNCONFIRMED), 0);
	EXPECT_REPORT(&f.log, "plant/b", E2E_SUM_VERIFIED, 4, 4, 0);
	fx_free(&f);
}

/* An insider's forgery in an interval that also lost a message is found,
 * at its seq (L1): each d_s is compared on its own. */
static void test_forgery_with_loss(void)
{
	struct fx f;
	uint8_t env[TU_ENV_CAP], forged[TU_ENV_CAP];
	struct e2e_header h;
	size_t len, flen;

	fx_init(&f, 64, 4096, 1024);
	fx_send(&f, "plant/a", 1, 0);
	(void)fx_seal(&f, env, "plant/a", &h);              /* seq 2: dropped */
	len = fx_seal(&f, env, "plant/a", &h);              /* seq 3: replaced */
	CU_ASSERT_EQUAL(h.seq, 3);
	h.counter = 0xFFFFF0;
	flen = tu_seal(forged, sizeof forged, &h, f.key, "plant/a", (const uint8_t *)"open", 4);
	CU_ASSERT(flen != len || memcmp(forged, env, len) != 0);
	fx_receive(&f, "plant/a", forged, flen);
	fx_send(&f, "plant/a", 1, 0);
	fx_summary(&f);
	CU_ASSERT_EQUAL(f.log.n, 2);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_FORGED), 1);
	EXPECT_REPORT(&f.log, "plant/a", E2E_SUM_FORGED, 3, 3, 1);
	CU_ASSERT(f.log.r[1].result == E2E_SUM_UNCONFIRMED && f.log.r[1].first == 1 &&
		f.log.r[1].last == 4 && f.log.r[1].missing == 1);
	fx_free(&f);
}

/*
 * Delay is not forgery: seqs a summary listed before they arrived stay open;
 * the authentic late arrival corrects the count (LATE), an insider's
 * envelope with that seq is a forgery, and neither is ever unsummarized.
 */
static void test_late_arrival(void)
{
	struct fx f;
	uint8_t held2[TU_ENV_CAP], held4[TU_ENV_CAP], env[TU_ENV_CAP], forged[TU_ENV_CAP];
	struct e2e_header h;
	size_t len2, len4, len, flen;

	fx_init(&f, 64, 4096, 1024);
	fx_send(&f, "plant/a", 1, 0);
	len2 = fx_seal(&f, held2, "plant/a", &h);
	fx_send(&f, "plant/a", 1, 0);
	len4 = fx_seal(&f, held4, "plant/a", &h);
	fx_send(&f, "plant/a", 1, 0);
	(void)len4;
	fx_summary(&f);
	CU_ASSERT_EQUAL(f.log.n, 1);
	EXPECT_REPORT(&f.log, "plant/a", E2E_SUM_UNCONFIRMED, 1, 5, 2);
	memset(&f.log, 0, sizeof f.log);
	/* Seq 2 arrives, authentic: LATE. */
	fx_receive(&f, "plant/a", held2, len2);
	CU_ASSERT_EQUAL_FATAL(f.log.n, 1);
	CU_ASSERT(f.log.r[0].result == E2E_SUM_LATE && f.log.r[0].first == 2 &&
		f.log.r[0].missing == 1 && f.log.r[0].run == RUN);
	/* Seq 4 arrives sealed by an insider: FORGED at seq 4. */
	h.seq = 4;
	h.counter = 0xFFFFF1;
	flen = tu_seal(forged, sizeof forged, &h, f.key, "plant/a", (const uint8_t *)"x", 1);
	fx_receive(&f, "plant/a", forged, flen);
	CU_ASSERT_EQUAL_FATAL(f.log.n, 2);
	EXPECT_REPORT(&f.log, "plant/a", E2E_SUM_FORGED, 4, 4, 1);
	/* Nothing of it is left to be swept later. */
	memset(&f.log, 0, sizeof f.log);
	len = fx_seal(&f, env, "plant/a", &h);
	fx_receive(&f, "plant/a", env, len);
	fx_summary(&f);
	fx_summary(&f);
	fx_summary(&f);
	CU_ASSERT_EQUAL(f.log.n, 1);
	EXPECT_REPORT(&f.log, "plant/a", E2E_SUM_VERIFIED, 6, 6, 0);
	fx_free(&f);
}

/* ---- Simulation: the sumcheck alone, envelopes as plain bytes ---------- */

struct counts {
	uint64_t n[E2E_SUM_LATE + 1];
	uint64_t missing[E2E_SUM_LATE + 1];   /* summed r->missing */
	uint64_t seqs_verified;               /* last - first + 1 of VERIFIED */
};

static void count_cb(void *ctx, const struct e2e_sumcheck_report *r)
{
	struct counts *c = ctx;

	if ((unsigned)r->result > E2E_SUM_LATE)
		return;
	c->n[r->result]++;
	c->missing[r->result] += r->missing;
	if (r->result == E2E_SUM_VERIFIED)
		c->seqs_verified += (uint64_t)r->last - r->first + 1;
}

struct sim {
	struct e2e_identity id;
	uint32_t sid, boot, number;
	struct e2e_summary *sum;
	struct e2e_sumcheck *sc;
	char ctl_topic[64];
	uint8_t *msgs[256];
	size_t lens[256];
	unsigned nmsgs;
	struct counts c;
};

static void sim_init(struct sim *s, const struct e2e_sumcheck_config *cfg)
{
	memset(s, 0, sizeof *s);
	tu_identity(&s->id);
	s->sid = e2e_sender_id(&s->id.pub);
	s->boot = 0x5150B007U;
	CU_ASSERT_EQUAL_FATAL(e2e_summary_create(&s->sum, 64, 1U << 20, 1U << 18), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_sumcheck_create(&s->sc, cfg), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_sender_topic(s->ctl_topic, sizeof s->ctl_topic,
		E2E_CTL_TOPIC_DEFAULT, s->sid), E2E_OK);
}

static void sim_free(struct sim *s)
{
	for (unsigned i = 0; i < s->nmsgs; i++)
		free(s->msgs[i]);
	e2e_summary_destroy(s->sum);
	e2e_sumcheck_destroy(s->sc);
	e2e_identity_wipe(&s->id);
}

static const char *sim_topic(unsigned t)
{
	static const char *names[] = { "f/0", "f/1", "f/2", "f/3", "f/4", "f/5", "f/6", "f/7",
		"f/8", "f/9" };

	return names[t % 10];
}

/* Envelope bytes of (topic, seq): distinct per message. */
static void sim_env(uint8_t env[40], unsigned t, uint32_t seq)
{
	memset(env, 0xA5, 40);
	env[0] = (uint8_t)t;
	memcpy(env + 1, &seq, sizeof seq);
}

static void sim_seal(struct sim *s, unsigned t, uint32_t seq)
{
	uint8_t env[40];

	sim_env(env, t, seq);
	CU_ASSERT_EQUAL(e2e_summary_add(s->sum, RUN, sim_topic(t), 3, seq, env, sizeof env),
		E2E_OK);
}

static void sim_recv(struct sim *s, unsigned t, uint32_t seq, uint64_t now)
{
	uint8_t env[40];

	sim_env(env, t, seq);
	e2e_sumcheck_record(s->sc, s->sid, RUN, sim_topic(t), 3, seq, env, sizeof env, now,
		count_cb, &s->c);
}

/* The sender emits its interval: every part, signed, kept until checked. */
static void sim_emit(struct sim *s, uint64_t now)
{
	uint8_t parts = 1;

	s->number++;
	for (uint8_t p = 0; p < parts; p++) {
		uint8_t *m = malloc(E2E_CTL_SUMMARY_MAX);
		size_t len = 0;

		CU_ASSERT_PTR_NOT_NULL_FATAL(m);
		CU_ASSERT_EQUAL_FATAL(e2e_summary_build(s->sum, &s->id, s->ctl_topic, INTERVAL,
			s->boot, s->number, p, &parts, m, E2E_CTL_SUMMARY_MAX, &len, now), E2E_OK);
		CU_ASSERT_FATAL(s->nmsgs < 256);
		s->msgs[s->nmsgs] = m;
		s->lens[s->nmsgs++] = len;
	}
	e2e_summary_reset(s->sum);
}

/* The subscriber checks every summary part emitted so far (its delay over). */
static void sim_check(struct sim *s, uint64_t now)
{
	for (unsigned i = 0; i < s->nmsgs; i++) {
		struct e2e_sumcheck_part pi;
		struct e2e_ctl m;

		CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(&m, s->msgs[i], s->lens[i], s->ctl_topic,
			&s->id.pub), E2E_OK);
		CU_ASSERT_EQUAL(e2e_sumcheck_accept(s->sc, s->sid, &m, &pi), 0);
		CU_ASSERT(pi.accepted && !pi.gap_to && !pi.parts_number);
		e2e_sumcheck_summary(s->sc, s->sid, &m, pi.index, now, NULL, count_cb, &s->c);
		free(s->msgs[i]);
	}
	s->nmsgs = 0;
}

/*
 * 10,000 msg/s for a minute (10 topics, a message every millisecond on each),
 * summaries every 10 s checked 1 s after they are sent, with the default
 * table sizes: every message verified, nothing unconfirmed, unchecked or
 * unsummarized, nothing dropped from the tables (L6).
 */
static void test_10k_per_second(void)
{
	struct sim s;
	struct e2e_sumcheck_stats st;
	uint32_t seq = 0, peak = 0;
	uint64_t t0 = 1000000, check_at = 0;

	sim_init(&s, NULL);
	for (uint64_t ms = 1; ms <= 61000; ms++) {
		uint64_t now = t0 + ms;

		if (ms <= 60000) {
			seq++;
			for (unsigned t = 0; t < 10; t++) {
				sim_seal(&s, t, seq);
				sim_recv(&s, t, seq, now);
			}
		}
		if (ms % 10000 == 0) {
			sim_emit(&s, now);
			check_at = now + 1000;
		}
		if (now == check_at)
			sim_check(&s, now);
		e2e_sumcheck_stats(s.sc, &st);
		if (st.records > peak)
			peak = st.records;
	}
	e2e_sumcheck_stats(s.sc, &st);
	TU_CHECK(s.c.seqs_verified == 600000, "%llu of 600000 verified",
		(unsigned long long)s.c.seqs_verified);
	TU_CHECK(s.c.missing[E2E_SUM_UNCONFIRMED] == 0 && s.c.n[E2E_SUM_UNSUMMARIZED] == 0 &&
		s.c.missing[E2E_SUM_UNCHECKED] == 0 && s.c.n[E2E_SUM_FORGED] == 0,
		"unconfirmed %llu, unsummarized %llu, unchecked %llu, forged %llu",
		(unsigned long long)s.c.missing[E2E_SUM_UNCONFIRMED],
		(unsigned long long)s.c.n[E2E_SUM_UNSUMMARIZED],
		(unsigned long long)s.c.missing[E2E_SUM_UNCHECKED],
		(unsigned long long)s.c.n[E2E_SUM_FORGED]);
	CU_ASSERT(st.not_kept == 0 && st.open_full == 0 && st.records == 0 && st.open == 0);
	/* 11 s of traffic waits at the peak: the default (2^18) has room for 2x. */
	TU_CHECK(peak >= 100000 && peak <= 120000, "peak %u records", peak);
	sim_free(&s);
}

/*
 * The case: every message held back 3 s by the broker, summaries
 * every 2 s. What the summaries list as not arrived is corrected by LATE,
 * message by message; nothing is unsummarized, forged or unchecked.
 */
static void test_delay_is_not_forgery(void)
{
	struct sim s;
	uint32_t seq = 0;
	uint64_t t0 = 5000000, check_at = 0;
	const uint64_t delay = 3000, interval = 2000;

	sim_init(&s, NULL);
	for (uint64_t ms = 1; ms <= 20000 + 2 * delay + 2 * interval; ms++) {
		uint64_t now = t0 + ms;

		/* 100 msg/s on one topic, delivered delay ms after sealing. */
		if (ms <= 20000 && ms % 10 == 0)
			sim_seal(&s, 0, ++seq);
		if (ms > delay && ms - delay <= 20000 && (ms - delay) % 10 == 0)
			sim_recv(&s, 0, (uint32_t)((ms - delay) / 10), now);
		if (ms % interval == 0) {
			sim_emit(&s, now);
			check_at = now + 1000;
		}
		if (now == check_at)
			sim_check(&s, now);
	}
	TU_CHECK(s.c.missing[E2E_SUM_UNCONFIRMED] > 0, "the delay was never noticed");
	TU_CHECK(s.c.missing[E2E_SUM_LATE] == s.c.missing[E2E_SUM_UNCONFIRMED],
		"%llu reported never arrived, %llu corrected late",
		(unsigned long long)s.c.missing[E2E_SUM_UNCONFIRMED],
		(unsigned long long)s.c.missing[E2E_SUM_LATE]);
	TU_CHECK(s.c.n[E2E_SUM_UNSUMMARIZED] == 0 && s.c.n[E2E_SUM_FORGED] == 0 &&
		s.c.n[E2E_SUM_UNCHECKED] == 0, "unsummarized %llu, forged %llu, unchecked %llu",
		(unsigned long long)s.c.n[E2E_SUM_UNSUMMARIZED],
		(unsigned long long)s.c.n[E2E_SUM_FORGED],
		(unsigned long long)s.c.n[E2E_SUM_UNCHECKED]);
	sim_free(&s);
}

/* Open seqs close when the window has passed them (they can no longer be
 * accepted) or after open_ms; a late arrival then is not checked. */
static void test_open_closes(void)
{
	struct e2e_sumcheck_config cfg = { 0, 0, 0, 64, 5000 };
	struct sim s;

	sim_init(&s, &cfg);
	for (uint32_t q = 1; q <= 3; q++)
		sim_seal(&s, 0, q);
	sim_recv(&s, 0, 1, 100);
	sim_recv(&s, 0, 3, 100);
	sim_seal(&s, 1, 1);                      /* f/1 seq 1: never arrives in time */
	sim_emit(&s, 100);
	sim_check(&s, 100);
	CU_ASSERT_EQUAL(s.c.missing[E2E_SUM_UNCONFIRMED], 2);
	/* f/0 moves 64 past seq 2; the next check closes it. */
	for (uint32_t q = 4; q <= 66; q++) {
		sim_seal(&s, 0, q);
		sim_recv(&s, 0, q, 200);
	}
	sim_emit(&s, 200);
	sim_check(&s, 200);
	{
		struct e2e_sumcheck_stats st;

		e2e_sumcheck_stats(s.sc, &st);
		CU_ASSERT_EQUAL(st.open, 1);          /* f/1 seq 1 only */
	}
	sim_emit(&s, 100 + 5000);
	sim_check(&s, 100 + 5000);               /* f/1 seq 1: open 5 s, closed */
	memset(&s.c, 0, sizeof s.c);
	sim_recv(&s, 0, 2, 6000);
	sim_recv(&s, 1, 1, 6000);
	CU_ASSERT_EQUAL(s.c.n[E2E_SUM_LATE], 0);
	CU_ASSERT_EQUAL(s.c.missing[E2E_SUM_UNCHECKED], 2);
	sim_emit(&s, 7000);
	sim_check(&s, 7000);
	sim_emit(&s, 8000);
	sim_check(&s, 8000);
	CU_ASSERT_EQUAL(s.c.n[E2E_SUM_UNSUMMARIZED], 0);
	sim_free(&s);
}

/* Build a part of summary (boot, number) with @p streams streams of long
 * topics, so it has several parts; returns it parsed in @p m (buffer @p buf). */
static uint8_t two_part(struct sim *s, uint32_t boot, uint32_t number, uint8_t part,
	uint64_t time_ms, uint8_t *buf, struct e2e_ctl *m)
{
	static char topic[20000];
	uint8_t parts = 0;
	size_t len = 0;

	e2e_summary_reset(s->sum);
	for (unsigned i = 0; i < 4; i++) {
		uint8_t env[40];

		memset(topic, 'a' + (int)i, sizeof topic - 1);
		topic[sizeof topic - 1] = '\0';
		sim_env(env, i, number);
		CU_ASSERT_EQUAL(e2e_summary_add(s->sum, RUN, topic, strlen(topic), number, env,
			sizeof env), E2E_OK);
	}
	CU_ASSERT_EQUAL_FATAL(e2e_summary_build(s->sum, &s->id, s->ctl_topic, INTERVAL, boot,
		number, part, &parts, buf, E2E_CTL_SUMMARY_MAX, &len, time_ms), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(m, buf, len, s->ctl_topic, &s->id.pub), E2E_OK);
	e2e_summary_reset(s->sum);
	return parts;
}

static int accepted(struct sim *s, const struct e2e_ctl *m, struct e2e_sumcheck_part *pi)
{
	CU_ASSERT_EQUAL(e2e_sumcheck_accept(s->sc, s->sid, m, pi), 0);
	return pi->accepted;
}

/*
 * Every part is bound to its summary (boot, number, parts): a part of
 * another summary, replayed in place of the current one, is ignored, and
 * the parts that did not come are reported (H3).
 */
static void test_parts_binding(void)
{
	static uint8_t b[6][E2E_CTL_SUMMARY_MAX];
	struct e2e_ctl p0, p1, q0, q1, r0, x1;
	struct e2e_sumcheck_part pi;
	struct sim s;
	const uint32_t boot = 0x0B007001U;

	sim_init(&s, NULL);
	CU_ASSERT_EQUAL_FATAL(two_part(&s, boot, 1, 0, 1000, b[0], &p0), 2);
	(void)two_part(&s, boot, 1, 1, 1000, b[1], &p1);
	(void)two_part(&s, boot, 2, 0, 2000, b[2], &q0);
	(void)two_part(&s, boot, 2, 1, 2000, b[3], &q1);
	(void)two_part(&s, boot, 3, 0, 3000, b[4], &r0);
	(void)two_part(&s, boot ^ 1, 2, 1, 2000, b[5], &x1);   /* another run's part 1 of #2 */
	CU_ASSERT(p0.entries && p1.nentries > 0 && q1.nentries > 0);
	/* A later part before any part 0: not bound to anything. */
	CU_ASSERT_FALSE(accepted(&s, &p1, &pi));
	CU_ASSERT(accepted(&s, &p0, &pi) && pi.index == 0 && !pi.gap_to);
	CU_ASSERT(accepted(&s, &p1, &pi) && pi.index == 1);
	CU_ASSERT_FALSE(accepted(&s, &p1, &pi));     /* the same part again */
	CU_ASSERT_FALSE(accepted(&s, &p0, &pi));     /* an old part 0 */
	CU_ASSERT(accepted(&s, &q0, &pi) && pi.index == 0);
	/* Summary 2's part 1 is withheld; summary 1's is replayed in its place,
	 * then another run's part 1 numbered 2: both ignored. */
	CU_ASSERT_FALSE(accepted(&s, &p1, &pi));
	CU_ASSERT_FALSE(accepted(&s, &x1, &pi));
	/* The next summary reveals the missing part. */
	CU_ASSERT(accepted(&s, &r0, &pi));
	CU_ASSERT(pi.parts_number == 2 && pi.parts_from == 1 && pi.parts_to == 1);
	CU_ASSERT_FALSE(accepted(&s, &q1, &pi));     /* too late: #3 is current */
	sim_free(&s);
	(void)q1;
}

/* Gaps in numbers, a sender restart (new boot, newer time) and a replay of
 * an older run's summary (new boot, older time). */
static void test_order_rules(void)
{
	static uint8_t b[E2E_CTL_SUMMARY_MAX];
	struct e2e_sumcheck_part pi;
	struct e2e_ctl m;
	struct sim s;
	uint8_t parts;

	sim_init(&s, NULL);
	parts = two_part(&s, 7, 5, 0, 5000, b, &m);
	CU_ASSERT_EQUAL(parts, 2);
	CU_ASSERT(accepted(&s, &m, &pi) && !pi.gap_to && !pi.restarted);
	(void)two_part(&s, 7, 8, 0, 8000, b, &m);
	CU_ASSERT(accepted(&s, &m, &pi));
	CU_ASSERT(pi.gap_from == 6 && pi.gap_to == 7);            /* numbers 6..7 */
	CU_ASSERT(pi.parts_number == 5 && pi.parts_from == 1);    /* and 5's part 1 */
	(void)two_part(&s, 9, 1, 0, 7000, b, &m);                 /* older run */
	CU_ASSERT_FALSE(accepted(&s, &m, &pi));
	(void)two_part(&s, 9, 1, 0, 9000, b, &m);                 /* restart */
	CU_ASSERT(accepted(&s, &m, &pi) && pi.restarted && !pi.gap_to);
	(void)two_part(&s, 9, 1, 1, 9000, b, &m);
	CU_ASSERT(accepted(&s, &m, &pi) && pi.index != 0);
	sim_free(&s);
}

/* ---- Registration ------------------------------------------------------ */

/* ---- Retired keys (SPEC 11.5) ------------------------------------------- */

/* e2e_rx_open on a retired key: UNKNOWN_KEY + E2E_RX_RETIRED, window untouched. */
static void expect_retired(struct fx *f, const char *topic, const uint8_t *env, size_t len)
{
	struct e2e_rx_result res;
	uint8_t pt[TU_ENV_CAP];
	enum e2e_verdict v = tu_rx_open(f->rx, f->kr, &res, pt, sizeof pt, topic, env, len);

	TU_CHECK(v == E2E_V_UNKNOWN_KEY && (res.flags & E2E_RX_RETIRED) && res.pt_len == 0,
		"%s seq %u: %s flags %x, expected retired", topic, res.hdr.seq, tu_verdict_str(v),
		res.flags);
}

static enum e2e_sum_verdict fx_hold(struct fx *f, const char *topic, const uint8_t *env,
	size_t len)
{
	struct e2e_header h;

	CU_ASSERT_EQUAL_FATAL(e2e_header_parse(&h, env, len), E2E_OK);
	return e2e_sumcheck_hold(f->sc, f->sid, h.run, topic, strlen(topic), h.seq, env, len,
		f->now, on_report, &f->log);
}

static enum e2e_sum_verdict fx_verify(struct fx *f, const char *topic, const uint8_t *env,
	size_t len)
{
	struct e2e_header h;

	CU_ASSERT_EQUAL_FATAL(e2e_header_parse(&h, env, len), E2E_OK);
	return e2e_sumcheck_verify(f->sc, f->sid, h.run, topic, strlen(topic), h.seq, env, len,
		f->now, on_report, &f->log);
}

/* An insider's envelope under the old key: run @p run, seq @p seq. */
static size_t forge(struct fx *f, uint8_t env[TU_ENV_CAP], const char *topic, uint32_t run,
	uint64_t ctr, uint32_t seq)
{
	struct e2e_header h = tu_header(f->sid, f->kid.scope, f->kid.epoch, run, ctr, seq);

	return tu_seal(env, TU_ENV_CAP, &h, f->key, topic, (const uint8_t *)"evil", 4);
}

static void test_retired_key(void)
{
	struct fx f;
	uint8_t g3[TU_ENV_CAP], g4[TU_ENV_CAP], g5[TU_ENV_CAP], x4[TU_ENV_CAP], x5[TU_ENV_CAP];
	uint8_t x9[TU_ENV_CAP], xr[TU_ENV_CAP], x2[TU_ENV_CAP], pt[TU_ENV_CAP];
	size_t l3, l4, l5, lx4, lx5, lx9, lxr, lx2;
	struct e2e_header h;
	struct e2e_rx_result res;
	uint8_t key2[E2E_KEY_BYTES];
	struct e2e_keyid k2;
	uint8_t fl = 0;

	fx_init(&f, 64, 4096, 0);
	fx_send(&f, "a/x", 2, 0);
	/* Current key: not retired. */
	CU_ASSERT_PTR_NOT_NULL(e2e_keyring_lookup(f.kr, &f.kid, 1000, &fl));
	CU_ASSERT_EQUAL(fl & E2E_KEYRING_RETIRED, 0);
	/* The sender seals 3 and 4 before the rotation; they are in flight. */
	l3 = fx_seal(&f, g3, "a/x", &h);
	l4 = fx_seal(&f, g4, "a/x", &h);
	/* An announced newer epoch retires the key (before it is fetched). */
	CU_ASSERT_EQUAL(e2e_keyring_note_epoch(f.kr, f.sid, f.kid.scope, f.kid.epoch + 1), E2E_OK);
	CU_ASSERT_PTR_NOT_NULL(e2e_keyring_lookup(f.kr, &f.kid, 1000, &fl));
	CU_ASSERT_EQUAL(fl & E2E_KEYRING_RETIRED, E2E_KEYRING_RETIRED);
	/* ... and so does holding it (the delivery of the new epoch). */
	tu_key(key2, 0x62);
	k2 = (struct e2e_keyid){ f.sid, f.kid.scope, f.kid.epoch + 1 };
	CU_ASSERT_EQUAL(e2e_keyring_add(f.kr, &k2, key2, 0), E2E_OK);
	CU_ASSERT_PTR_NOT_NULL(e2e_keyring_lookup(f.kr, &k2, 1000, &fl));
	CU_ASSERT_EQUAL(fl & E2E_KEYRING_RETIRED, 0);

	/* The revoked member: same seq as a genuine one, beyond the top, a fresh run. */
	lx4 = forge(&f, x4, "a/x", RUN, 4, 4);
	lx9 = forge(&f, x9, "a/x", RUN, 9, 9);
	lxr = forge(&f, xr, "a/x", 0x0BAD0001U, 100, 1);
	/* The forgery first: it must not make the genuine seq 4 a DUPLICATE. */
	expect_retired(&f, "a/x", x4, lx4);
	expect_retired(&f, "a/x", x4, lx4);
	expect_retired(&f, "a/x", g4, l4);
	expect_retired(&f, "a/x", g3, l3);
	expect_retired(&f, "a/x", x9, lx9);
	expect_retired(&f, "a/x", xr, lxr);
	CU_ASSERT_EQUAL(fx_hold(&f, "a/x", x4, lx4), E2E_SUMV_UNKNOWN);
	CU_ASSERT_EQUAL(fx_hold(&f, "a/x", g4, l4), E2E_SUMV_UNKNOWN);
	CU_ASSERT_EQUAL(fx_hold(&f, "a/x", g3, l3), E2E_SUMV_UNKNOWN);
	CU_ASSERT_EQUAL(fx_hold(&f, "a/x", x9, lx9), E2E_SUMV_UNKNOWN);
	CU_ASSERT_EQUAL(fx_hold(&f, "a/x", xr, lxr), E2E_SUMV_UNKNOWN);

	/* The summary lists 1..4: held ones count as arrived (no false alarm). */
	fx_summary(&f);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_UNCONFIRMED), 0);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_FORGED), 0);
	EXPECT_REPORT(&f.log, "a/x", E2E_SUM_VERIFIED, 1, 4, 0);
	CU_ASSERT_EQUAL(fx_verify(&f, "a/x", g3, l3), E2E_SUMV_VERIFIED);
	CU_ASSERT_EQUAL(fx_verify(&f, "a/x", g4, l4), E2E_SUMV_VERIFIED);
	CU_ASSERT_EQUAL(fx_verify(&f, "a/x", x4, lx4), E2E_SUMV_FORGED);
	CU_ASSERT_EQUAL(fx_verify(&f, "a/x", x9, lx9), E2E_SUMV_UNKNOWN);
	CU_ASSERT_EQUAL(fx_verify(&f, "a/x", xr, lxr), E2E_SUMV_UNKNOWN);
	/* Confirmed: delivered in order, then the forgery is a mere duplicate. */
	TU_ASSERT_VERDICT(tu_rx_open_confirmed(f.rx, f.kr, &res, pt, sizeof pt, "a/x", g3, l3),
		E2E_V_OK);
	TU_ASSERT_VERDICT(tu_rx_open_confirmed(f.rx, f.kr, &res, pt, sizeof pt, "a/x", g4, l4),
		E2E_V_OK);
	TU_ASSERT_VERDICT(tu_rx_open(f.rx, f.kr, &res, pt, sizeof pt, "a/x", x4, lx4),
		E2E_V_DUPLICATE);

	/* Two more summaries: what none covered stays unknown (the holder calls
	 * it forged) and is never reported unsummarized or unchecked. */
	fx_summary(&f);
	fx_summary(&f);
	CU_ASSERT_EQUAL(fx_verify(&f, "a/x", x9, lx9), E2E_SUMV_UNKNOWN);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_UNSUMMARIZED), 0);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_UNCHECKED), 0);

	/* A message delayed past its summary: the summary says "not arrived"
	 * (open, with its d_s); the genuine one is confirmed at once (LATE), a
	 * forgery for that hole is not. Hold it before the summary: nothing. */
	l5 = fx_seal(&f, g5, "a/x", &h);
	f.log.n = 0;
	fx_summary(&f);
	EXPECT_REPORT(&f.log, "a/x", E2E_SUM_UNCONFIRMED, 5, 5, 1);
	lx5 = forge(&f, x5, "a/x", RUN, 5, 5);
	CU_ASSERT_EQUAL(fx_hold(&f, "a/x", x5, lx5), E2E_SUMV_FORGED);
	CU_ASSERT_EQUAL(fx_hold(&f, "a/x", g5, l5), E2E_SUMV_VERIFIED);
	CU_ASSERT_EQUAL(count_result(&f.log, E2E_SUM_LATE), 1);
	/* A seq a checked summary covered and no longer awaits. */
	lx2 = forge(&f, x2, "a/x", RUN, 2, 2);
	CU_ASSERT_EQUAL(fx_verify(&f, "a/x", x2, lx2), E2E_SUMV_FORGED);
	/* A deadline alone retires a key too. */
	CU_ASSERT_EQUAL(e2e_keyring_retire(f.kr, &k2, 5000), E2E_OK);
	CU_ASSERT_PTR_NOT_NULL(e2e_keyring_lookup(f.kr, &k2, 1000, &fl));
	CU_ASSERT_EQUAL(fl & E2E_KEYRING_RETIRED, E2E_KEYRING_RETIRED);
	/* Bad arguments. */
	CU_ASSERT_EQUAL(e2e_keyring_note_epoch(NULL, 1, 1, 1), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_sumcheck_verify(NULL, 1, 1, "t", 1, 1, g3, l3, 0, NULL, NULL),
		E2E_SUMV_UNKNOWN);
	CU_ASSERT_EQUAL(e2e_sumcheck_hold(f.sc, 1, 1, NULL, 1, 1, g3, l3, 0, NULL, NULL),
		E2E_SUMV_UNKNOWN);
	fx_free(&f);
}

static const struct tu_test safety_tests[] = {
	{ "Safety: NULL arguments, bad parts, short buffers", test_safety },
	{ NULL, NULL },
};

static const struct tu_test vector_tests[] = {
	{ "Vectors: control.json summaries rebuilt and verified", test_vectors },
	{ "Vectors: control.json two-part summary rebuilt byte for byte", test_vectors_two_parts },
	{ "Vectors: sumcheck.json receiver verdicts", test_verdict_vectors },
	{ NULL, NULL },
};

static const struct tu_test summary_tests[] = {
	{ "All received: VERIFIED", test_all_received_verified },
	{ "Insider envelope with the same seq: FORGED", test_insider_forgery },
	{ "Missing envelopes: UNCONFIRMED with exact count", test_missing_unconfirmed },
	{ "Topics the match callback rejects are skipped", test_match_skips_topics },
	{ "UNSUMMARIZED only after two complete summaries", test_unsummarized },
	{ "Missed summaries: UNCHECKED, then judged as usual", test_missed_unchecked },
	{ "Records of other senders are not swept", test_other_sender },
	{ "Multi-part summaries cover every stream once", test_multi_part },
	{ "Parts built in any order or twice: byte for byte the same", test_parts_any_order },
	{ "E2E_ERR_FULL: streams and topic pool", test_full },
	{ "Table full: not checked, never unconfirmed or unsummarized", test_overflow_not_checked },
	{ "Forgery in an interval with a loss: found at its seq", test_forgery_with_loss },
	{ "Late arrival: LATE correction or FORGED, never unsummarized", test_late_arrival },
	{ "Open seqs close by window and by age", test_open_closes },
	{ "10,000 msg/s for 60 s: all verified, none unconfirmed", test_10k_per_second },
	{ "Data held back 1.5 intervals: every loss corrected LATE", test_delay_is_not_forgery },
	{ "Parts bound to (boot, number, parts): replayed parts ignored", test_parts_binding },
	{ "Order: number gaps, restarts, older runs", test_order_rules },
	{ "Retired key: held until a summary confirms or contradicts (SPEC 11.5)",
		test_retired_key },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "summary safety", safety_tests },
		{ "summary vectors", vector_tests },
		{ "summary", summary_tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
