/*
 * Key service tests (protocol/SPEC.md sec. 11.3) with fake enrollment and
 * key callbacks and an injected clock: deliveries, every refusal reason,
 * rate limits and their refill, the replay cache, and that garbage, bad
 * signatures and requests for other senders get no answer but are counted.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "testcu.h"

#define NOW 1700000000000ULL
#define OUT_CAP E2E_CTL_DELIVERY_MAX
#define GRACE_END (NOW + 3600000ULL)

/* Enrollment and keys as the fakes see them. */
struct fake {
	const struct e2e_identity *enrolled[4];
	uint8_t scopes[4][32];
	int revoked[4];
	unsigned n;
	unsigned enrolled_calls, keys_calls;
};

static enum e2e_status fake_enrolled(void *ctx, const struct e2e_public *who, uint8_t scopes[32])
{
	struct fake *f = ctx;

	f->enrolled_calls++;
	for (unsigned i = 0; i < f->n; i++) {
		if (memcmp(&f->enrolled[i]->pub, who, sizeof *who))
			continue;
		if (f->revoked[i])
			return E2E_ERR_PERM;
		memcpy(scopes, f->scopes[i], 32);
		return E2E_OK;
	}
	return E2E_ERR_NOT_FOUND;
}

/* Scope 1: epoch 2 current, epoch 1 in grace; scope 2: epoch 5; others: none. */
static uint8_t fake_keys(void *ctx, uint8_t scope, struct e2e_ctl_key *out, uint8_t cap,
	uint64_t now_ms)
{
	struct fake *f = ctx;
	uint8_t n = 0;

	(void)now_ms;
	f->keys_calls++;
	if (scope == 1 && cap >= 2) {
		out[n] = (struct e2e_ctl_key){ .scope = 1, .epoch = 2 };
		tu_key(out[n++].key, 0x12);
		out[n] = (struct e2e_ctl_key){ .scope = 1, .epoch = 1, .not_after_ms = GRACE_END };
		tu_key(out[n++].key, 0x11);
	} else if (scope == 2 && cap >= 1) {
		out[n] = (struct e2e_ctl_key){ .scope = 2, .epoch = 5 };
		tu_key(out[n++].key, 0x25);
	}
	return n;
}

/* The sender's map: scope 2 for "alarm/#", scope 1 for the rest, 5 s summaries. */
static const struct e2e_scope_rule fake_rules[] = { { 2, "alarm/#", 7 }, { 1, "#", 1 } };

static enum e2e_status fake_map(void *ctx, struct e2e_ctl_map *map)
{
	(void)ctx;
	*map = (struct e2e_ctl_map){ 5000, 2, fake_rules, 0, 0 };
	return E2E_OK;
}

struct svc {
	struct e2e_identity sender, alice, bob, carol, mallory;
	struct fake fake;
	struct e2e_keysvc *ks;
	uint32_t sid;
	uint8_t out[OUT_CAP];
	size_t out_len;
	char reply[E2E_CTL_REPLY_MAX + 1];
};

static void allow(uint8_t bm[32], uint8_t scope)
{
	bm[scope / 8] |= (uint8_t)(1U << (scope % 8));
}

/* alice: scopes 1 and 2; bob: scope 1; carol: revoked; mallory: not enrolled. */
static void svc_init(struct svc *s, const struct e2e_keysvc_config *base)
{
	struct e2e_keysvc_config cfg;

	memset(s, 0, sizeof *s);
	tu_identity(&s->sender);
	tu_identity(&s->alice);
	tu_identity(&s->bob);
	tu_identity(&s->carol);
	tu_identity(&s->mallory);
	s->sid = e2e_sender_id(&s->sender.pub);
	s->fake.enrolled[0] = &s->alice;
	allow(s->fake.scopes[0], 1);
	allow(s->fake.scopes[0], 2);
	s->fake.enrolled[1] = &s->bob;
	allow(s->fake.scopes[1], 1);
	s->fake.enrolled[2] = &s->carol;
	allow(s->fake.scopes[2], 1);
	s->fake.revoked[2] = 1;
	s->fake.n = 3;
	if (base)
		cfg = *base;
	else
		memset(&cfg, 0, sizeof cfg);
	cfg.identity = &s->sender;
	cfg.enrolled = fake_enrolled;
	cfg.keys = fake_keys;
	cfg.map = fake_map;
	cfg.ctx = &s->fake;
	CU_ASSERT_EQUAL_FATAL(e2e_keysvc_create(&s->ks, &cfg), E2E_OK);
}

static void svc_free(struct svc *s)
{
	e2e_keysvc_destroy(s->ks);
	e2e_identity_destroy(&s->sender);
	e2e_identity_destroy(&s->alice);
	e2e_identity_destroy(&s->bob);
	e2e_identity_destroy(&s->carol);
	e2e_identity_destroy(&s->mallory);
}

static enum e2e_status handle_on(struct svc *s, const uint8_t *msg, size_t len, const char *topic,
	uint64_t now)
{
	s->out_len = 0;
	memset(s->reply, 0, sizeof s->reply);
	return e2e_keysvc_handle(s->ks, msg, len, topic, s->out, sizeof s->out, &s->out_len, s->reply,
		now);
}

static enum e2e_status handle(struct svc *s, const struct tu_request *r, uint64_t now)
{
	return handle_on(s, r->msg, r->len, E2E_CTL_TOPIC_DEFAULT, now);
}

/*
 * A fresh request from @p who at @p req_time, handled at @p now: returns the
 * answer's type (0 if none) and fills @p m (a refusal's reason, a delivery's keys).
 */
static uint8_t ask_at(struct svc *s, const struct e2e_identity *who, const struct e2e_ctl_want *want,
	uint8_t nwant, uint64_t req_time, uint64_t now, struct e2e_ctl *m)
{
	struct tu_request r;
	enum e2e_status st;

	tu_request(&r, who, s->sid, want, nwant, req_time);
	st = handle(s, &r, now);
	memset(m, 0, sizeof *m);
	if (st != E2E_OK)
		return 0;
	TU_CHECK(!strcmp(s->reply, r.req.reply_topic), "answer goes to %s, not %s", s->reply,
		r.req.reply_topic);
	return tu_answer(m, &r, s->out, s->out_len, s->reply, &s->sender.pub);
}

static uint8_t ask(struct svc *s, const struct e2e_identity *who, const struct e2e_ctl_want *want,
	uint8_t nwant, uint64_t now, struct e2e_ctl *m)
{
	return ask_at(s, who, want, nwant, now, now, m);
}

/* Refused with @p reason. */
#define ASSERT_REFUSED(type, m, why) do { \
	CU_ASSERT_EQUAL((type), E2E_CTL_REFUSAL); \
	TU_CHECK((m).reason == (why), "reason %u (%s), expected %u", (m).reason, \
		e2e_refusal_name((m).reason), (unsigned)(why)); \
} while (0)

static struct e2e_keysvc_stats stats(const struct svc *s)
{
	struct e2e_keysvc_stats st;

	memset(&st, 0xff, sizeof st);
	e2e_keysvc_stats(s->ks, &st);
	return st;
}

static const struct e2e_ctl_want want1 = { 1, 0 };

/* ---- Safety ------------------------------------------------------------ */

static void test_safety_create(void)
{
	struct e2e_identity id;
	struct e2e_keysvc_config cfg;
	struct e2e_keysvc *ks = (struct e2e_keysvc *)&cfg;
	struct fake f;

	tu_identity(&id);
	memset(&f, 0, sizeof f);
	memset(&cfg, 0, sizeof cfg);
	cfg.identity = &id;
	cfg.enrolled = fake_enrolled;
	cfg.keys = fake_keys;
	cfg.map = fake_map;
	cfg.ctx = &f;
	CU_ASSERT_EQUAL(e2e_keysvc_create(NULL, &cfg), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keysvc_create(&ks, NULL), E2E_ERR_ARG);
	CU_ASSERT_PTR_NULL(ks);
	cfg.identity = NULL;
	CU_ASSERT_EQUAL(e2e_keysvc_create(&ks, &cfg), E2E_ERR_ARG);
	cfg.identity = &id;
	cfg.enrolled = NULL;
	CU_ASSERT_EQUAL(e2e_keysvc_create(&ks, &cfg), E2E_ERR_ARG);
	cfg.enrolled = fake_enrolled;
	cfg.keys = NULL;
	CU_ASSERT_EQUAL(e2e_keysvc_create(&ks, &cfg), E2E_ERR_ARG);
	CU_ASSERT_PTR_NULL(ks);
	cfg.keys = fake_keys;
	cfg.map = NULL;
	CU_ASSERT_EQUAL(e2e_keysvc_create(&ks, &cfg), E2E_ERR_ARG);
	CU_ASSERT_PTR_NULL(ks);
	cfg.map = fake_map;
	CU_ASSERT_EQUAL(e2e_keysvc_create(&ks, &cfg), E2E_OK);
	e2e_keysvc_destroy(ks);
	e2e_keysvc_destroy(NULL);
	e2e_keysvc_stats(NULL, NULL);
	e2e_identity_destroy(&id);
}

static void test_safety_handle(void)
{
	struct svc s;
	struct tu_request r;
	struct e2e_keysvc_stats st;
	size_t len = 0;

	svc_init(&s, NULL);
	tu_request(&r, &s.alice, s.sid, &want1, 1, NOW);
	CU_ASSERT_EQUAL(e2e_keysvc_handle(NULL, r.msg, r.len, E2E_CTL_TOPIC_DEFAULT, s.out,
		sizeof s.out, &len, s.reply, NOW), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keysvc_handle(s.ks, r.msg, r.len, NULL, s.out, sizeof s.out, &len,
		s.reply, NOW), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keysvc_handle(s.ks, r.msg, r.len, E2E_CTL_TOPIC_DEFAULT, NULL,
		sizeof s.out, &len, s.reply, NOW), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keysvc_handle(s.ks, r.msg, r.len, E2E_CTL_TOPIC_DEFAULT, s.out,
		sizeof s.out, NULL, s.reply, NOW), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keysvc_handle(s.ks, r.msg, r.len, E2E_CTL_TOPIC_DEFAULT, s.out,
		sizeof s.out, &len, NULL, NOW), E2E_ERR_ARG);
	/* NULL input is garbage, not a crash. */
	CU_ASSERT_NOT_EQUAL(e2e_keysvc_handle(s.ks, NULL, 0, E2E_CTL_TOPIC_DEFAULT, s.out,
		sizeof s.out, &len, s.reply, NOW), E2E_OK);
	/* Answer buffer too small for the delivery: nothing to publish. */
	CU_ASSERT_EQUAL(e2e_keysvc_handle(s.ks, r.msg, r.len, E2E_CTL_TOPIC_DEFAULT, s.out, 100, &len,
		s.reply, NOW), E2E_ERR_BUFFER);
	st = stats(&s);
	CU_ASSERT_EQUAL(st.ignored_malformed, 1);
	svc_free(&s);
}

/* ---- Answers ----------------------------------------------------------- */

static void test_enrolled_gets_delivery(void)
{
	struct svc s;
	struct e2e_ctl m;
	struct e2e_keysvc_stats st;
	const struct e2e_ctl_key *k;
	uint8_t want_key[32];

	svc_init(&s, NULL);
	CU_ASSERT_EQUAL_FATAL(ask(&s, &s.alice, &want1, 1, NOW, &m), E2E_CTL_DELIVERY);
	CU_ASSERT_EQUAL(m.time_ms, NOW);
	CU_ASSERT_EQUAL(m.nkeys, 2);
	k = tu_ctl_key(&m, 1, 2);
	tu_key(want_key, 0x12);
	CU_ASSERT(k && k->not_after_ms == 0 && !memcmp(k->key, want_key, 32));
	k = tu_ctl_key(&m, 1, 1);
	tu_key(want_key, 0x11);
	CU_ASSERT(k && k->not_after_ms == GRACE_END && !memcmp(k->key, want_key, 32));
	CU_ASSERT_PTR_NULL(tu_ctl_key(&m, 2, 5));   /* not asked for */
	/* n = 0: every scope the requester is enrolled for. */
	CU_ASSERT_EQUAL_FATAL(ask(&s, &s.alice, NULL, 0, NOW, &m), E2E_CTL_DELIVERY);
	CU_ASSERT_EQUAL(m.nkeys, 3);
	CU_ASSERT_PTR_NOT_NULL(tu_ctl_key(&m, 1, 2));
	CU_ASSERT_PTR_NOT_NULL(tu_ctl_key(&m, 1, 1));
	CU_ASSERT_PTR_NOT_NULL(tu_ctl_key(&m, 2, 5));
	CU_ASSERT_EQUAL_FATAL(ask(&s, &s.bob, NULL, 0, NOW, &m), E2E_CTL_DELIVERY);
	CU_ASSERT_EQUAL(m.nkeys, 2);
	CU_ASSERT_PTR_NULL(tu_ctl_key(&m, 2, 5));
	/* Wanted: one allowed scope and one not: only the allowed one. */
	{
		const struct e2e_ctl_want w[] = { { 2, 0 }, { 1, 0 } };

		CU_ASSERT_EQUAL_FATAL(ask(&s, &s.bob, w, 2, NOW, &m), E2E_CTL_DELIVERY);
		CU_ASSERT_EQUAL(m.nkeys, 2);
		CU_ASSERT_PTR_NULL(tu_ctl_key(&m, 2, 5));
	}
	st = stats(&s);
	CU_ASSERT_EQUAL(st.requests, 4);
	CU_ASSERT_EQUAL(st.delivered, 4);
	CU_ASSERT_EQUAL(st.refused, 0);
	e2e_ctl_wipe(&m);
	svc_free(&s);
}

static void test_refusals(void)
{
	struct svc s;
	struct e2e_ctl m;
	struct e2e_keysvc_stats st;
	const struct e2e_ctl_want want3 = { 3, 0 }, want2 = { 2, 0 };

	svc_init(&s, NULL);
	ASSERT_REFUSED(ask(&s, &s.mallory, &want1, 1, NOW, &m), m, E2E_REFUSE_NOT_ENROLLED);
	ASSERT_REFUSED(ask(&s, &s.carol, &want1, 1, NOW, &m), m, E2E_REFUSE_REVOKED);
	ASSERT_REFUSED(ask(&s, &s.bob, &want2, 1, NOW, &m), m, E2E_REFUSE_SCOPE);
	/* A scope the requester is not enrolled for. */
	ASSERT_REFUSED(ask(&s, &s.alice, &want3, 1, NOW, &m), m, E2E_REFUSE_SCOPE);
	/* The requester's enrolled sign key with another X25519 key is someone else. */
	{
		struct e2e_identity twin;

		tu_identity_twin(&twin, &s.bob);
		ASSERT_REFUSED(ask(&s, &twin, &want1, 1, NOW, &m), m, E2E_REFUSE_NOT_ENROLLED);
		e2e_identity_destroy(&twin);
	}
	st = stats(&s);
	CU_ASSERT_EQUAL(st.requests, 5);
	CU_ASSERT_EQUAL(st.refused, 5);
	CU_ASSERT_EQUAL(st.delivered, 0);
	svc_free(&s);
}

static void test_stale(void)
{
	struct svc s;
	struct e2e_ctl m;
	struct e2e_keysvc_config cfg;
	unsigned calls;

	svc_init(&s, NULL);
	/* Default window 300 s: exactly 300 s off is fine, one ms more is stale. */
	CU_ASSERT_EQUAL(ask_at(&s, &s.alice, &want1, 1, NOW - 300000, NOW, &m), E2E_CTL_DELIVERY);
	CU_ASSERT_EQUAL(ask_at(&s, &s.alice, &want1, 1, NOW + 300000, NOW, &m), E2E_CTL_DELIVERY);
	calls = s.fake.keys_calls;
	ASSERT_REFUSED(ask_at(&s, &s.alice, &want1, 1, NOW - 300001, NOW, &m), m, E2E_REFUSE_STALE);
	ASSERT_REFUSED(ask_at(&s, &s.alice, &want1, 1, NOW + 300001, NOW, &m), m, E2E_REFUSE_STALE);
	ASSERT_REFUSED(ask_at(&s, &s.alice, &want1, 1, 0, NOW, &m), m, E2E_REFUSE_STALE);
	/* Stale before anything else: no key is collected, */
	CU_ASSERT_EQUAL(s.fake.keys_calls, calls);
	/* and so also for a requester who is not enrolled. */
	ASSERT_REFUSED(ask_at(&s, &s.mallory, &want1, 1, NOW - 400000, NOW, &m), m,
		E2E_REFUSE_STALE);
	svc_free(&s);

	memset(&cfg, 0, sizeof cfg);
	cfg.max_skew_ms = 1000;
	svc_init(&s, &cfg);
	CU_ASSERT_EQUAL(ask_at(&s, &s.alice, &want1, 1, NOW - 1000, NOW, &m), E2E_CTL_DELIVERY);
	ASSERT_REFUSED(ask_at(&s, &s.alice, &want1, 1, NOW - 1001, NOW, &m), m, E2E_REFUSE_STALE);
	svc_free(&s);
}

static void test_identity_rate_limit(void)
{
	struct svc s;
	struct e2e_ctl m;
	struct e2e_keysvc_stats st;

	svc_init(&s, NULL);
	/* Default burst 10, then one per second. */
	for (int i = 0; i < 10; i++)
		TU_CHECK(ask(&s, &s.alice, &want1, 1, NOW, &m) == E2E_CTL_DELIVERY, "request %d", i);
	ASSERT_REFUSED(ask(&s, &s.alice, &want1, 1, NOW, &m), m, E2E_REFUSE_RATE);
	ASSERT_REFUSED(ask(&s, &s.alice, &want1, 1, NOW + 999, &m), m, E2E_REFUSE_RATE);
	/* Another identity has its own bucket. */
	CU_ASSERT_EQUAL(ask(&s, &s.bob, &want1, 1, NOW + 999, &m), E2E_CTL_DELIVERY);
	/* One token per second comes back. */
	CU_ASSERT_EQUAL(ask(&s, &s.alice, &want1, 1, NOW + 1000, &m), E2E_CTL_DELIVERY);
	ASSERT_REFUSED(ask(&s, &s.alice, &want1, 1, NOW + 1000, &m), m, E2E_REFUSE_RATE);
	CU_ASSERT_EQUAL(ask(&s, &s.alice, &want1, 1, NOW + 2000, &m), E2E_CTL_DELIVERY);
	st = stats(&s);
	CU_ASSERT_EQUAL(st.rate_limited, 3);
	CU_ASSERT_EQUAL(st.refused, 3);
	CU_ASSERT_EQUAL(st.delivered, 13);
	/* A long pause refills to the burst, not beyond. */
	for (int i = 0; i < 10; i++)
		TU_CHECK(ask(&s, &s.alice, &want1, 1, NOW + 200000, &m) == E2E_CTL_DELIVERY,
			"after the pause, request %d", i);
	ASSERT_REFUSED(ask(&s, &s.alice, &want1, 1, NOW + 200000, &m), m, E2E_REFUSE_RATE);
	/* A revoked key is told so, whatever its bucket holds. */
	s.fake.revoked[0] = 1;
	ASSERT_REFUSED(ask(&s, &s.alice, &want1, 1, NOW + 200000, &m), m, E2E_REFUSE_REVOKED);
	svc_free(&s);
}

static void test_identity_rate_limit_config(void)
{
	struct svc s;
	struct e2e_ctl m;
	struct e2e_keysvc_config cfg;

	memset(&cfg, 0, sizeof cfg);
	cfg.per_identity_burst = 2;
	cfg.per_identity_ms = 50;
	svc_init(&s, &cfg);
	CU_ASSERT_EQUAL(ask(&s, &s.alice, &want1, 1, NOW, &m), E2E_CTL_DELIVERY);
	CU_ASSERT_EQUAL(ask(&s, &s.alice, &want1, 1, NOW, &m), E2E_CTL_DELIVERY);
	ASSERT_REFUSED(ask(&s, &s.alice, &want1, 1, NOW + 49, &m), m, E2E_REFUSE_RATE);
	CU_ASSERT_EQUAL(ask(&s, &s.alice, &want1, 1, NOW + 50, &m), E2E_CTL_DELIVERY);
	/* Strangers have no bucket of their own: the global one limits them. */
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(ask(&s, &s.mallory, &want1, 1, NOW + 50, &m), E2E_CTL_REFUSAL);
		CU_ASSERT_EQUAL(m.reason, E2E_REFUSE_NOT_ENROLLED);
	}
	svc_free(&s);
}

static void test_replay(void)
{
	struct svc s;
	struct tu_request r, r2;
	struct e2e_keysvc_stats st;
	size_t first_len;
	uint8_t first[OUT_CAP];

	svc_init(&s, NULL);
	tu_request(&r, &s.alice, s.sid, &want1, 1, NOW);
	CU_ASSERT_EQUAL_FATAL(handle(&s, &r, NOW), E2E_OK);
	memcpy(first, s.out, s.out_len);
	first_len = s.out_len;
	CU_ASSERT(first_len > 0);
	/* The same request again, now or later: ignored, no answer. */
	CU_ASSERT_EQUAL(handle(&s, &r, NOW), E2E_ERR_EXISTS);
	CU_ASSERT_EQUAL(s.out_len, 0);
	CU_ASSERT_EQUAL(handle(&s, &r, NOW + 60000), E2E_ERR_EXISTS);
	/* A refused request is remembered as well. */
	tu_request(&r2, &s.mallory, s.sid, &want1, 1, NOW);
	CU_ASSERT_EQUAL(handle(&s, &r2, NOW), E2E_OK);
	CU_ASSERT_EQUAL(handle(&s, &r2, NOW), E2E_ERR_EXISTS);
	st = stats(&s);
	CU_ASSERT_EQUAL(st.requests, 5);
	CU_ASSERT_EQUAL(st.delivered, 1);
	CU_ASSERT_EQUAL(st.refused, 1);
	CU_ASSERT_EQUAL(st.ignored_replay, 3);
	svc_free(&s);
}

static void test_replay_cache_bounded(void)
{
	struct svc s;
	struct e2e_keysvc_config cfg;
	struct tu_request r[3];

	memset(&cfg, 0, sizeof cfg);
	cfg.replay_cache = 2;
	svc_init(&s, &cfg);
	for (int i = 0; i < 3; i++) {
		tu_request(&r[i], &s.alice, s.sid, &want1, 1, NOW);
		CU_ASSERT_EQUAL(handle(&s, &r[i], NOW), E2E_OK);
	}
	/* The two newest are remembered; the oldest fell out of the bounded cache. */
	CU_ASSERT_EQUAL(handle(&s, &r[2], NOW), E2E_ERR_EXISTS);
	CU_ASSERT_EQUAL(handle(&s, &r[1], NOW), E2E_ERR_EXISTS);
	CU_ASSERT_EQUAL(stats(&s).ignored_replay, 2);
	CU_ASSERT_EQUAL(handle(&s, &r[0], NOW), E2E_OK);
	svc_free(&s);
}

/* ---- Ignored input ----------------------------------------------------- */

static void test_ignored(void)
{
	struct svc s;
	struct tu_request r;
	struct e2e_keysvc_stats st;
	uint8_t msg[E2E_CTL_MSG_MAX + 16];
	char other_topic[] = "e2e/control2";
	unsigned calls;

	svc_init(&s, NULL);
	tu_request(&r, &s.alice, s.sid, &want1, 1, NOW);
	/* Garbage. */
	memset(msg, 0xab, sizeof msg);
	CU_ASSERT_NOT_EQUAL(handle_on(&s, msg, 100, E2E_CTL_TOPIC_DEFAULT, NOW), E2E_OK);
	CU_ASSERT_NOT_EQUAL(handle_on(&s, msg, 0, E2E_CTL_TOPIC_DEFAULT, NOW), E2E_OK);
	/* Too long, wrong version, not a request. */
	memcpy(msg, r.msg, r.len);
	CU_ASSERT_NOT_EQUAL(handle_on(&s, msg, E2E_CTL_MSG_MAX + 1, E2E_CTL_TOPIC_DEFAULT, NOW),
		E2E_OK);
	msg[0] = 2;
	CU_ASSERT_NOT_EQUAL(handle_on(&s, msg, r.len, E2E_CTL_TOPIC_DEFAULT, NOW), E2E_OK);
	msg[0] = E2E_CTL_VERSION;
	msg[1] = E2E_CTL_DELIVERY;
	CU_ASSERT_NOT_EQUAL(handle_on(&s, msg, r.len, E2E_CTL_TOPIC_DEFAULT, NOW), E2E_OK);
	/* Structurally fine but truncated or extended. */
	CU_ASSERT_NOT_EQUAL(handle_on(&s, r.msg, r.len - 1, E2E_CTL_TOPIC_DEFAULT, NOW), E2E_OK);
	memcpy(msg, r.msg, r.len);
	msg[r.len] = 0;
	CU_ASSERT_NOT_EQUAL(handle_on(&s, msg, r.len + 1, E2E_CTL_TOPIC_DEFAULT, NOW), E2E_OK);
	st = stats(&s);
	CU_ASSERT_EQUAL(st.ignored_malformed, 7);
	/* Bad signature: flipped bit in the signature, in the body, re-topicked. */
	memcpy(msg, r.msg, r.len);
	msg[r.len - 1] ^= 0x01;
	CU_ASSERT_EQUAL(handle_on(&s, msg, r.len, E2E_CTL_TOPIC_DEFAULT, NOW), E2E_ERR_AUTH);
	msg[r.len - 1] ^= 0x01;
	msg[20] ^= 0x80;        /* inside the requester's sign_pk */
	CU_ASSERT_EQUAL(handle_on(&s, msg, r.len, E2E_CTL_TOPIC_DEFAULT, NOW), E2E_ERR_AUTH);
	CU_ASSERT_EQUAL(handle_on(&s, r.msg, r.len, other_topic, NOW), E2E_ERR_AUTH);
	st = stats(&s);
	CU_ASSERT_EQUAL(st.ignored_bad_sig, 3);
	/* For another sender: not ours to answer. */
	{
		struct tu_request o;

		tu_request(&o, &s.alice, s.sid ^ 0x80000000U, &want1, 1, NOW);
		CU_ASSERT_EQUAL(handle(&s, &o, NOW), E2E_ERR_NOT_FOUND);
	}
	CU_ASSERT_EQUAL(stats(&s).ignored_other_sender, 1);
	/* None of it reached the keys, none was answered... */
	CU_ASSERT_EQUAL(s.fake.keys_calls, 0);
	st = stats(&s);
	CU_ASSERT_EQUAL(st.requests, 11);
	CU_ASSERT_EQUAL(st.delivered + st.refused + st.ignored_replay + st.rate_limited, 0);
	/* ...and a bad copy does not block the genuine request. */
	calls = s.fake.enrolled_calls;
	CU_ASSERT_EQUAL(handle(&s, &r, NOW), E2E_OK);
	CU_ASSERT_EQUAL(s.fake.enrolled_calls, calls + 1);
	CU_ASSERT_EQUAL(stats(&s).delivered, 1);
	svc_free(&s);
}

/* 10,000 random messages: all ignored and each counted exactly once. */
static void test_flood_garbage(void)
{
	struct svc s;
	struct e2e_keysvc_stats st;
	struct e2e_ctl m;
	static uint8_t msg[3000];
	uint64_t rng = 0x1234567;
	uint64_t want_malformed = 0, want_other = 0;
	unsigned answered = 0;

	svc_init(&s, NULL);
	for (int i = 0; i < 10000; i++) {
		size_t len = (size_t)(tu_rand(&rng) % sizeof msg);
		uint32_t target;

		for (size_t j = 0; j < len; j++)
			msg[j] = (uint8_t)tu_rand(&rng);
		/* Every 4th is a well-formed request for another sender. */
		if (i % 4 == 0) {
			struct tu_request o;

			target = s.sid + 1 + (uint32_t)i;
			tu_request(&o, &s.alice, target, &want1, 1, NOW);
			memcpy(msg, o.msg, o.len);
			len = o.len;
			want_other++;
		} else {
			/* Random bytes fail size, version, type or layout (step 1). */
			want_malformed++;
		}
		answered += handle_on(&s, msg, len, E2E_CTL_TOPIC_DEFAULT, NOW + (uint64_t)i) == E2E_OK;
	}
	st = stats(&s);
	CU_ASSERT_EQUAL(answered, 0);
	CU_ASSERT_EQUAL(st.requests, 10000);
	CU_ASSERT_EQUAL(st.ignored_malformed, want_malformed);
	CU_ASSERT_EQUAL(st.ignored_other_sender, want_other);
	CU_ASSERT(want_other >= 2000);
	CU_ASSERT_EQUAL(st.ignored_bad_sig + st.ignored_replay + st.rate_limited + st.delivered +
		st.refused, 0);
	CU_ASSERT_EQUAL(s.fake.enrolled_calls, 0);
	/* The service still answers. */
	CU_ASSERT_EQUAL(ask(&s, &s.alice, &want1, 1, NOW + 10000, &m), E2E_CTL_DELIVERY);
	svc_free(&s);
}

/* Messages under unenrolled keys cost a global token each (SPEC 11.3 step 3 before 4). */
static void test_global_rate_limit(void)
{
	struct svc s;
	struct e2e_keysvc_stats st;
	struct e2e_keysvc_config cfg;
	struct e2e_ctl m;
	struct tu_request r;
	static uint8_t msg[400];
	uint64_t rng = 77;

	svc_init(&s, NULL);
	/* Default global burst 200, one more token per 10 ms. Well-formed
	 * requests under random (unenrolled) keys with random signatures:
	 * each costs a global token before its signature check. */
	tu_request(&r, &s.mallory, s.sid, &want1, 1, NOW);
	for (int i = 0; i < 10000; i++) {
		CU_ASSERT_FATAL(r.len <= sizeof msg);
		memcpy(msg, r.msg, r.len);
		for (size_t j = 0; j < E2E_SIGN_PK_BYTES; j++)
			msg[E2E_CTL_HEAD_BYTES + j] = (uint8_t)tu_rand(&rng);
		for (size_t j = r.len - E2E_CTL_SIG_BYTES; j < r.len; j++)
			msg[j] = (uint8_t)tu_rand(&rng);
		CU_ASSERT_NOT_EQUAL(handle_on(&s, msg, r.len, E2E_CTL_TOPIC_DEFAULT, NOW),
			E2E_OK);
	}
	st = stats(&s);
	CU_ASSERT_EQUAL(st.requests, 10000);
	CU_ASSERT_EQUAL(st.ignored_bad_sig, 200);
	CU_ASSERT_EQUAL(st.rate_limited, 9800);
	CU_ASSERT_EQUAL(s.fake.keys_calls, 0);
	/* The flood used the global bucket only: an enrolled subscriber still
	 * gets its keys, from its own bucket. */
	CU_ASSERT_EQUAL(ask(&s, &s.alice, &want1, 1, NOW, &m), E2E_CTL_DELIVERY);
	CU_ASSERT_EQUAL(stats(&s).rate_limited, 9800);
	/* A stranger's genuine request meets the empty bucket: no answer, and it
	 * is not remembered, so the same request is answered once tokens return. */
	tu_request(&r, &s.mallory, s.sid, &want1, 1, NOW);
	CU_ASSERT_EQUAL(handle(&s, &r, NOW + 9), E2E_ERR_FULL);
	CU_ASSERT_EQUAL(stats(&s).rate_limited, 9801);
	CU_ASSERT_EQUAL(handle(&s, &r, NOW + 10), E2E_OK);
	CU_ASSERT_EQUAL(tu_answer(&m, &r, s.out, s.out_len, s.reply, &s.sender.pub),
		E2E_CTL_REFUSAL);
	CU_ASSERT_EQUAL(m.reason, E2E_REFUSE_NOT_ENROLLED);
	svc_free(&s);

	/* Configured: 3 tokens, then one per 100 ms, for strangers and for
	 * enrolled identities whose own bucket is empty. */
	memset(&cfg, 0, sizeof cfg);
	cfg.global_burst = 3;
	cfg.global_ms = 100;
	cfg.per_identity_burst = 1;
	cfg.per_identity_ms = 1000000;
	svc_init(&s, &cfg);
	CU_ASSERT_EQUAL(ask(&s, &s.alice, &want1, 1, NOW, &m), E2E_CTL_DELIVERY);  /* own */
	CU_ASSERT_EQUAL(ask(&s, &s.bob, &want1, 1, NOW, &m), E2E_CTL_DELIVERY);    /* own */
	CU_ASSERT_EQUAL(ask(&s, &s.mallory, &want1, 1, NOW, &m), E2E_CTL_REFUSAL); /* global 1 */
	ASSERT_REFUSED(ask(&s, &s.alice, &want1, 1, NOW, &m), m, E2E_REFUSE_RATE);  /* global 2 */
	ASSERT_REFUSED(ask(&s, &s.bob, &want1, 1, NOW, &m), m, E2E_REFUSE_RATE);    /* global 3 */
	CU_ASSERT_EQUAL(ask(&s, &s.mallory, &want1, 1, NOW + 99, &m), 0);
	CU_ASSERT_EQUAL(ask(&s, &s.bob, &want1, 1, NOW + 99, &m), 0);
	CU_ASSERT_EQUAL(ask(&s, &s.mallory, &want1, 1, NOW + 100, &m), E2E_CTL_REFUSAL);
	CU_ASSERT_EQUAL(ask(&s, &s.mallory, &want1, 1, NOW + 100, &m), 0);
	/* Refilled to the burst after a pause, not beyond. */
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(ask(&s, &s.mallory, &want1, 1, NOW + 100000, &m), E2E_CTL_REFUSAL);
	CU_ASSERT_EQUAL(ask(&s, &s.mallory, &want1, 1, NOW + 100000, &m), 0);
	st = stats(&s);
	CU_ASSERT_EQUAL(st.rate_limited, 4 + 2);   /* 4 unanswered + 2 refusal 3 */
	CU_ASSERT_EQUAL(st.delivered, 2);
	CU_ASSERT_EQUAL(st.refused, 2 + 5);
	svc_free(&s);
}

/*
 * M4: an attacker who knows alice's public keys (they are in every request
 * she sends) floods garbage carrying them at 100 messages/s: bad signatures,
 * and copies of her own request with the body changed. Her bucket is charged
 * only for requests that verify, so her genuine requests, one a second, are
 * all answered; the garbage costs global tokens only.
 */
static void test_targeted_starvation(void)
{
	struct svc s;
	struct e2e_ctl m;
	struct tu_request r;
	struct e2e_keysvc_stats st;
	uint64_t rng = 4242, t = NOW;
	unsigned answered = 0, asked = 0;

	svc_init(&s, NULL);
	tu_request(&r, &s.alice, s.sid, &want1, 1, NOW);
	for (int sec = 0; sec < 20; sec++) {
		for (int i = 0; i < 100; i++, t += 10) {
			uint8_t bad[E2E_CTL_MSG_MAX];

			memcpy(bad, r.msg, r.len);
			if (i % 2)
				bad[r.len - 1 - (size_t)(tu_rand(&rng) % E2E_CTL_SIG_BYTES)] ^= 0x01;
			else
				bad[E2E_CTL_HEAD_BYTES + 3 * 32 + (size_t)(tu_rand(&rng) % 16)] ^= 0x20;
			CU_ASSERT_EQUAL(handle_on(&s, bad, r.len, E2E_CTL_TOPIC_DEFAULT, t),
				E2E_ERR_AUTH);
			/* Mid-second: the garbage had the first go at any refill. */
			if (i == 50) {
				asked++;
				answered += ask(&s, &s.alice, &want1, 1, t, &m) == E2E_CTL_DELIVERY;
			}
		}
	}
	TU_CHECK(answered == asked, "alice answered %u of %u under a targeted flood", answered,
		asked);
	st = stats(&s);
	CU_ASSERT_EQUAL(st.ignored_bad_sig, 2000);
	CU_ASSERT_EQUAL(st.delivered, asked);
	/* Bob, enrolled too, never noticed. */
	CU_ASSERT_EQUAL(ask(&s, &s.bob, &want1, 1, t, &m), E2E_CTL_DELIVERY);
	svc_free(&s);

	/* The garbage did cost the global bucket: with a small one, strangers
	 * (who depend on it) are cut off, enrolled identities are not. */
	{
		struct e2e_keysvc_config cfg;

		memset(&cfg, 0, sizeof cfg);
		cfg.global_burst = 5;
		cfg.global_ms = 1000000;
		svc_init(&s, &cfg);
		tu_request(&r, &s.alice, s.sid, &want1, 1, NOW);
		for (int i = 0; i < 5; i++) {
			uint8_t bad[E2E_CTL_MSG_MAX];

			memcpy(bad, r.msg, r.len);
			bad[r.len - 1] ^= (uint8_t)(1U << i);
			CU_ASSERT_EQUAL(handle_on(&s, bad, r.len, E2E_CTL_TOPIC_DEFAULT, NOW),
				E2E_ERR_AUTH);
		}
		CU_ASSERT_EQUAL(ask(&s, &s.mallory, &want1, 1, NOW, &m), 0);
		CU_ASSERT_EQUAL(ask(&s, &s.alice, &want1, 1, NOW, &m), E2E_CTL_DELIVERY);
		svc_free(&s);
	}
}

/* ---- Registration ------------------------------------------------------ */

static const struct tu_test safety_tests[] = {
	{ "Safety: create with NULL or incomplete config", test_safety_create },
	{ "Safety: handle with NULL arguments and a short answer buffer", test_safety_handle },
	{ NULL, NULL },
};

static const struct tu_test keysvc_tests[] = {
	{ "Enrolled: delivery with current and grace keys", test_enrolled_gets_delivery },
	{ "Refusals: not enrolled 1, scope 2, revoked 4", test_refusals },
	{ "Refusal 5: request time outside the window", test_stale },
	{ "Refusal 3: per-identity rate limit and refill", test_identity_rate_limit },
	{ "Refusal 3: configured burst and interval", test_identity_rate_limit_config },
	{ "Replay: the same request twice is answered once", test_replay },
	{ "Replay: the cache is bounded", test_replay_cache_bounded },
	{ "Ignored: garbage, bad signatures, other senders (counted)", test_ignored },
	{ "Ignored: a flood of 10,000 garbage messages", test_flood_garbage },
	{ "Global rate limit: flood, refill, configured burst", test_global_rate_limit },
	{ "Targeted flood under alice's key does not starve alice (M4)", test_targeted_starvation },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "keysvc safety", safety_tests },
		{ "keysvc", keysvc_tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
