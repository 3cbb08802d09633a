/*
 * Sender tests: a state directory (identity.key, scopes, enrolled, keys) and
 * an injected clock. Key creation, topic-to-scope mapping, the key service
 * behind e2e_sender_control, rotation and announcements, reloading files
 * changed on disk, and signed summaries of what was sealed.
 */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "testcu.h"

#define T0 1700000000000ULL
/* Epoch n of a scope whose keys were all made by T0 + (n-1) s: a new epoch
 * is max(highest + 1, Unix seconds now) (SPEC 6.4). */
#define EP(n) ((uint32_t)(T0 / 1000U) + (n) - 1U)
#define GRACE 60000ULL
#define ENV_CAP 512U
#define PATH_CAP 4096U

static uint64_t g_now;

static uint64_t fake_clock(void)
{
	return g_now;
}

struct sfx {
	struct tu_tmp t;                 /* t.path: identity.key */
	char p_scopes[PATH_CAP], p_enrolled[PATH_CAP], p_keys[PATH_CAP];
	struct e2e_identity id, bob, mallory;
	struct e2e_sender_config cfg;
	struct e2e_sender *s;
	char err[512];
	char ctl_topic[64];
};

/* Replace @p path by @p text through a rename, as e2e-keytool does. */
static void write_text(const char *path, const char *text, mode_t mode)
{
	char tmp[PATH_CAP + 8];

	snprintf(tmp, sizeof tmp, "%s.new", path);
	CU_ASSERT_EQUAL_FATAL(tu_write_file(tmp, text, strlen(text), mode), 0);
	CU_ASSERT_EQUAL_FATAL(rename(tmp, path), 0);
}

/* "<name> <scopes> e2e1 <base64>\n" appended to @p buf. */
static void enrolled_line(char *buf, size_t cap, const char *name, const char *scopes,
	const struct e2e_public *pub)
{
	char line[256];
	size_t used = strlen(buf);

	CU_ASSERT_EQUAL_FATAL(e2e_public_format(line, sizeof line, pub, NULL), E2E_OK);
	snprintf(buf + used, cap - used, "%s %s %s\n", name, scopes, line);
}

/* The state directory: bob is enrolled for "telemetry", keys is empty. */
static void sfx_dir(struct sfx *f)
{
	char text[1024] = "";

	memset(f, 0, sizeof *f);
	g_now = T0;
	tu_tmp_open(&f->t, "identity.key");
	tu_path(f->p_scopes, sizeof f->p_scopes, f->t.dir, "scopes");
	tu_path(f->p_enrolled, sizeof f->p_enrolled, f->t.dir, "enrolled");
	tu_path(f->p_keys, sizeof f->p_keys, f->t.dir, "keys");
	tu_identity(&f->id);
	tu_identity(&f->bob);
	tu_identity(&f->mallory);
	CU_ASSERT_EQUAL_FATAL(e2e_identity_save(&f->id, f->t.path, 0), E2E_OK);
	write_text(f->p_scopes, "scope 1 telemetry sensors/#\n", 0644);
	enrolled_line(text, sizeof text, "bob", "telemetry", &f->bob.pub);
	write_text(f->p_enrolled, text, 0644);
	write_text(f->p_keys, "", 0600);
	f->cfg.dir = f->t.dir;
	f->cfg.clock_ms = fake_clock;
	f->cfg.grace_ms = GRACE;
	f->cfg.reserve_block = 16;
	f->cfg.err = f->err;
	f->cfg.err_len = sizeof f->err;
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_sender_topic(f->ctl_topic, sizeof f->ctl_topic,
		E2E_CTL_TOPIC_DEFAULT, e2e_sender_id(&f->id.pub)), E2E_OK);
}

static void sfx_open(struct sfx *f)
{
	enum e2e_status st = e2e_sender_open(&f->s, &f->cfg);

	TU_CHECK(st == E2E_OK, "e2e_sender_open: %s (%s)", e2e_strerror(st), f->err);
	CU_ASSERT_EQUAL_FATAL(st, E2E_OK);
}

static void sfx_init(struct sfx *f)
{
	sfx_dir(f);
	sfx_open(f);
}

static void sfx_free(struct sfx *f)
{
	e2e_sender_close(f->s);
	e2e_identity_destroy(&f->id);
	e2e_identity_destroy(&f->bob);
	e2e_identity_destroy(&f->mallory);
	tu_tmp_close(&f->t);
}

/* Seal a message on @p topic (asserted); returns the size, header in @p h. */
static size_t seal_on(struct sfx *f, uint8_t env[ENV_CAP], const char *topic, struct e2e_header *h)
{
	size_t len = 0;
	enum e2e_status st = e2e_sender_seal(f->s, env, ENV_CAP, &len, topic, strlen(topic),
		(const uint8_t *)topic, strlen(topic));

	TU_CHECK(st == E2E_OK, "seal on %s: %s", topic, e2e_strerror(st));
	CU_ASSERT_EQUAL_FATAL(st, E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_header_parse(h, env, len), E2E_OK);
	return len;
}

/* Key request of @p who handled by the sender; answer type (0: none). */
static uint8_t ask(struct sfx *f, const struct e2e_identity *who, const struct e2e_ctl_want *want,
	uint8_t nwant, struct e2e_ctl *m)
{
	struct tu_request r;
	static uint8_t out[E2E_CTL_DELIVERY_MAX];
	size_t len = 0;
	char reply[E2E_CTL_REPLY_MAX + 1];
	enum e2e_status st;

	tu_request(&r, who, e2e_sender_self(f->s), want, nwant, g_now);
	st = e2e_sender_control(f->s, r.msg, r.len, E2E_CTL_TOPIC_DEFAULT, out, sizeof out, &len,
		reply, g_now);
	memset(m, 0, sizeof *m);
	TU_CHECK(st == E2E_OK, "e2e_sender_control: %s", e2e_strerror(st));
	if (st != E2E_OK)
		return 0;
	return tu_answer(m, &r, out, len, reply, e2e_sender_public(f->s));
}

/* The (scope, epoch) key in the keys file on disk; 0 if present. */
static int file_key(const struct sfx *f, uint8_t scope, uint32_t epoch,
	struct e2e_keystore_entry *out)
{
	struct e2e_keystore *ks = NULL;
	const struct e2e_keystore_entry *e;
	enum e2e_status st = e2e_keystore_load(&ks, f->p_keys, 0, NULL, 0);

	TU_CHECK(st == E2E_OK, "load %s: %s", f->p_keys, e2e_strerror(st));
	if (st != E2E_OK)
		return -1;
	e = e2e_keystore_find(ks, scope, epoch);
	if (e)
		*out = *e;
	e2e_keystore_free(ks);
	return e ? 0 : -1;
}

static unsigned file_key_count(const struct sfx *f)
{
	struct e2e_keystore *ks = NULL;
	unsigned n;

	if (e2e_keystore_load(&ks, f->p_keys, 0, NULL, 0) != E2E_OK)
		return 0;
	n = e2e_keystore_count(ks);
	e2e_keystore_free(ks);
	return n;
}

/* The next queued announcement, parsed; 0 if none. */
static int next_announce(struct sfx *f, struct e2e_ctl *m)
{
	uint8_t out[E2E_CTL_MSG_MAX];
	char topic[128];
	size_t len = 0;
	enum e2e_status st = e2e_sender_next_announce(f->s, out, sizeof out, &len, topic,
		sizeof topic, g_now);

	if (st == E2E_ERR_NOT_FOUND)
		return 0;
	TU_CHECK(st == E2E_OK, "next_announce: %s", e2e_strerror(st));
	TU_CHECK(!strcmp(topic, f->ctl_topic), "announce on %s", topic);
	st = e2e_ctl_parse(m, out, len, f->ctl_topic, &f->id.pub);
	TU_CHECK(st == E2E_OK && m->type == E2E_CTL_ANNOUNCE, "announce: %s", e2e_strerror(st));
	TU_CHECK(m->sender == e2e_sender_self(f->s) && m->time_ms == g_now, "announce head");
	return st == E2E_OK;
}

static const struct e2e_ctl_want want0 = { 0, 0 }, want1 = { 1, 0 };

/* ---- Safety ------------------------------------------------------------ */

static void test_safety(void)
{
	struct sfx f;
	struct e2e_sender *s = NULL;
	struct e2e_sender_config cfg;
	uint8_t env[ENV_CAP];
	size_t len = 0;
	char topic[64], reply[E2E_CTL_REPLY_MAX + 1];

	sfx_dir(&f);
	CU_ASSERT_EQUAL(e2e_sender_open(NULL, &f.cfg), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_sender_open(&s, NULL), E2E_ERR_ARG);
	cfg = f.cfg;
	cfg.dir = NULL;
	CU_ASSERT_EQUAL(e2e_sender_open(&s, &cfg), E2E_ERR_ARG);
	/* A directory without identity: refused, with a message. */
	cfg.dir = "/nonexistent/e2e-test";
	f.err[0] = '\0';
	CU_ASSERT_NOT_EQUAL(e2e_sender_open(&s, &cfg), E2E_OK);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT(strlen(f.err) > 0);
	/* A keys file others can read is refused, never used. */
	CU_ASSERT_EQUAL_FATAL(chmod(f.p_keys, 0644), 0);
	CU_ASSERT_EQUAL(e2e_sender_open(&s, &f.cfg), E2E_ERR_PERM);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_EQUAL_FATAL(chmod(f.p_keys, 0600), 0);

	sfx_open(&f);
	CU_ASSERT_EQUAL(e2e_sender_seal(NULL, env, sizeof env, &len, "a", 1, (const uint8_t *)"x", 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_sender_seal(f.s, env, sizeof env, &len, NULL, 1, (const uint8_t *)"x", 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_sender_seal(f.s, env, 40, &len, "a", 1, (const uint8_t *)"x", 1),
		E2E_ERR_BUFFER);
	CU_ASSERT_EQUAL(e2e_sender_seal(f.s, env, 41, &len, "a", 1, (const uint8_t *)"x", 1), E2E_OK);
	CU_ASSERT_EQUAL(len, 41);
	CU_ASSERT_EQUAL(e2e_sender_control(NULL, env, len, E2E_CTL_TOPIC_DEFAULT, env, sizeof env,
		&len, reply, T0), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_sender_tick(NULL, T0), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_sender_rotate(NULL, 1, T0), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_sender_rotate_topic(NULL, "a", T0), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_sender_rotate_topic(f.s, NULL, T0), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_sender_next_summary(NULL, env, sizeof env, &len, topic, sizeof topic, T0),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_sender_next_summary(f.s, NULL, sizeof env, &len, topic, sizeof topic, T0),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_sender_next_summary(f.s, env, sizeof env, NULL, topic, sizeof topic, T0),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_sender_next_summary(f.s, env, sizeof env, &len, NULL, sizeof topic, T0),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_sender_next_announce(NULL, env, sizeof env, &len, topic, sizeof topic,
		T0), E2E_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(e2e_sender_unsummarized(NULL), 0);
	e2e_sender_keysvc_stats(NULL, NULL);
	e2e_sender_close(NULL);
	sfx_free(&f);
}

/* ---- Keys and sealing -------------------------------------------------- */

static void test_open_creates_keys(void)
{
	struct sfx f;
	struct e2e_keystore_entry k0, k1, again;
	struct stat sb;

	sfx_init(&f);
	CU_ASSERT_EQUAL(e2e_sender_self(f.s), e2e_sender_id(&f.id.pub));
	CU_ASSERT(!memcmp(e2e_sender_public(f.s), &f.id.pub, sizeof f.id.pub));
	/* Epoch 1 for the implied scope 0 and for scope 1, written mode 0600. */
	CU_ASSERT_EQUAL_FATAL(stat(f.p_keys, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
	CU_ASSERT_EQUAL(file_key_count(&f), 2);
	CU_ASSERT_EQUAL_FATAL(file_key(&f, 0, EP(1), &k0), 0);
	CU_ASSERT_EQUAL_FATAL(file_key(&f, 1, EP(1), &k1), 0);
	CU_ASSERT(k0.not_after_ms == 0 && k1.not_after_ms == 0);
	CU_ASSERT(k0.created_ms == T0 && k1.created_ms == T0);
	CU_ASSERT(memcmp(k0.key, k1.key, 32) != 0);
	CU_ASSERT_FALSE(tu_all_zero(k0.key, 32));
	/* Reopening keeps them. */
	e2e_sender_close(f.s);
	g_now = T0 + 5000;
	sfx_open(&f);
	CU_ASSERT_EQUAL(file_key_count(&f), 2);
	CU_ASSERT_EQUAL_FATAL(file_key(&f, 1, EP(1), &again), 0);
	CU_ASSERT(!memcmp(again.key, k1.key, 32) && again.created_ms == T0);
	sfx_free(&f);
}

static void test_seal_maps_scopes(void)
{
	struct sfx f;
	struct e2e_keystore_entry k0, k1;
	struct e2e_header h;
	uint8_t env[ENV_CAP], pt[ENV_CAP];
	size_t len, pt_len = 0;
	static const struct { const char *topic; uint8_t scope; } cases[] = {
		{ "sensors/temp", 1 }, { "sensors/a/b/c", 1 }, { "plant/x", 0 }, { "sensorsx", 0 },
		{ "Sensors/temp", 0 }, { "x/sensors/temp", 0 },
	};

	sfx_init(&f);
	CU_ASSERT_EQUAL_FATAL(file_key(&f, 0, EP(1), &k0), 0);
	CU_ASSERT_EQUAL_FATAL(file_key(&f, 1, EP(1), &k1), 0);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *t = cases[i].topic;

		len = seal_on(&f, env, t, &h);
		TU_CHECK(h.scope == cases[i].scope, "%s sealed under scope %u", t, h.scope);
		TU_CHECK(h.epoch == EP(1) && h.sender == e2e_sender_self(f.s), "%s: header", t);
		CU_ASSERT_EQUAL(h.seq, 1);
		/* Under exactly that scope's key from the keys file. */
		CU_ASSERT_EQUAL(e2e_envelope_open(pt, sizeof pt, &pt_len,
			cases[i].scope ? k1.key : k0.key, (const uint8_t *)t, strlen(t), env, len), E2E_OK);
		CU_ASSERT(pt_len == strlen(t) && !memcmp(pt, t, pt_len));
	}
	len = seal_on(&f, env, "sensors/temp", &h);
	CU_ASSERT_EQUAL(h.seq, 2);
	sfx_free(&f);
}

/*
 * L2: a will is sealed at CONNECT but published only if the client vanishes.
 * Sealed in a run of its own, it takes no seq of the topic's stream: the
 * next message is no GAP whether or not the will is ever published, and the
 * will itself, when published, is a new stream (SPEC 5.1, 8).
 */
static void test_will_is_no_gap(void)
{
	struct sfx f;
	struct e2e_keystore_entry k1;
	struct e2e_header h, w, h2;
	uint8_t env[3][ENV_CAP], pt[ENV_CAP];
	size_t len[3], wlen = 0;
	struct e2e_keyring *kr;
	struct e2e_rx *rx;
	struct e2e_rx_result res;
	struct e2e_keyid id;

	sfx_init(&f);
	CU_ASSERT_EQUAL_FATAL(file_key(&f, 1, EP(1), &k1), 0);
	len[0] = seal_on(&f, env[0], "sensors/a", &h);
	CU_ASSERT_EQUAL_FATAL(e2e_sender_seal_will(f.s, env[1], ENV_CAP, &wlen, "sensors/a", 9,
		(const uint8_t *)"gone", 4), E2E_OK);
	len[1] = wlen;
	CU_ASSERT_EQUAL_FATAL(e2e_header_parse(&w, env[1], wlen), E2E_OK);
	len[2] = seal_on(&f, env[2], "sensors/a", &h2);
	/* Its own run and seq 1; the key's counter still only moves up. */
	CU_ASSERT(w.run != h.run && w.seq == 1 && w.scope == 1 && w.epoch == EP(1));
	CU_ASSERT(h.counter < w.counter && w.counter < h2.counter);
	CU_ASSERT(h2.run == h.run && h2.seq == h.seq + 1);
	/* A subscriber: the stream goes on without a gap; the will, published
	 * late, is a new stream and delivered once. */
	id = (struct e2e_keyid){ e2e_sender_self(f.s), 1, EP(1) };
	kr = tu_keyring_with(&id, k1.key);
	rx = tu_rx_new(0, 0);
	TU_ASSERT_VERDICT(tu_rx_open(rx, kr, &res, pt, sizeof pt, "sensors/a", env[0], len[0]),
		E2E_V_OK);
	TU_ASSERT_VERDICT(tu_rx_open(rx, kr, &res, pt, sizeof pt, "sensors/a", env[2], len[2]),
		E2E_V_OK);
	CU_ASSERT_EQUAL(res.gap, 0);
	TU_ASSERT_VERDICT(tu_rx_open(rx, kr, &res, pt, sizeof pt, "sensors/a", env[1], len[1]),
		E2E_V_OK);
	CU_ASSERT(res.flags & E2E_RX_NEW_STREAM);
	CU_ASSERT(res.pt_len == 4 && !memcmp(pt, "gone", 4));
	TU_ASSERT_VERDICT(tu_rx_open(rx, kr, &res, pt, sizeof pt, "sensors/a", env[1], len[1]),
		E2E_V_DUPLICATE);
	{
		struct e2e_rx_stats st;

		e2e_rx_stats(rx, &st);
		CU_ASSERT_EQUAL(st.gap_total, 0);
		CU_ASSERT_EQUAL(st.pending + st.lost, 0);
	}
	/* The control topics stay refused for wills too. */
	CU_ASSERT_EQUAL(e2e_sender_seal_will(f.s, env[1], ENV_CAP, &wlen, "e2e/control", 11,
		(const uint8_t *)"x", 1), E2E_ERR_PERM);
	e2e_rx_destroy(rx);
	e2e_keyring_destroy(kr);
	sfx_free(&f);
}

/* SPEC 11.1: senders MUST refuse to seal for topics under C and e2e/k/. */
static void test_seal_refuses_control_topics(void)
{
	struct sfx f;
	uint8_t env[ENV_CAP];
	size_t len = 0;
	static const char *const topics[] = {
		"e2e/control", "e2e/control/a1b2c3d4", "e2e/k/0123456789abcdef0123456789abcdef",
	};

	sfx_init(&f);
	for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
		enum e2e_status st = e2e_sender_seal(f.s, env, sizeof env, &len, topics[i],
			strlen(topics[i]), (const uint8_t *)"x", 1);

		TU_CHECK(st != E2E_OK, "sealed a message for %s", topics[i]);
	}
	sfx_free(&f);
}

/* ---- Key service ------------------------------------------------------- */

static void test_key_service(void)
{
	struct sfx f;
	struct e2e_ctl m;
	struct e2e_keystore_entry k1;
	struct e2e_keysvc_stats st;
	const struct e2e_ctl_key *k;
	struct e2e_header h;
	uint8_t env[ENV_CAP], pt[ENV_CAP];
	size_t len, pt_len = 0;

	sfx_init(&f);
	CU_ASSERT_EQUAL_FATAL(file_key(&f, 1, EP(1), &k1), 0);
	/* bob: scope 1 only. */
	CU_ASSERT_EQUAL_FATAL(ask(&f, &f.bob, &want1, 1, &m), E2E_CTL_DELIVERY);
	CU_ASSERT_EQUAL(m.nkeys, 1);
	k = tu_ctl_key(&m, 1, EP(1));
	CU_ASSERT_FATAL(k != NULL);
	CU_ASSERT(!memcmp(k->key, k1.key, 32) && k->not_after_ms == 0);
	/* With the sender's complete map (the implied default listed) and interval. */
	{
		struct e2e_ctl_rule_iter it;
		struct e2e_scope_rule r;

		CU_ASSERT_EQUAL(m.summary_interval_ms, 10000);
		CU_ASSERT_EQUAL_FATAL(m.nrules, 2);
		e2e_ctl_rules_init(&it, &m);
		CU_ASSERT(e2e_ctl_rule_next(&it, &r) && r.scope == 1 && r.filter_len == 9 &&
			!memcmp(r.filter, "sensors/#", 9));
		CU_ASSERT(e2e_ctl_rule_next(&it, &r) && r.scope == 0 && r.filter_len == 1 &&
			r.filter[0] == '#');
	}
	/* The delivered key opens what the sender seals for the scope. */
	len = seal_on(&f, env, "sensors/t", &h);
	CU_ASSERT_EQUAL(e2e_envelope_open(pt, sizeof pt, &pt_len, k->key,
		(const uint8_t *)"sensors/t", 9, env, len), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(ask(&f, &f.bob, NULL, 0, &m), E2E_CTL_DELIVERY);
	CU_ASSERT(m.nkeys == 1 && tu_ctl_key(&m, 1, EP(1)) != NULL);
	CU_ASSERT_EQUAL(ask(&f, &f.bob, &want0, 1, &m), E2E_CTL_REFUSAL);
	CU_ASSERT_EQUAL(m.reason, E2E_REFUSE_SCOPE);
	/* Not enrolled, and bob's signing key with another X25519 key. */
	CU_ASSERT_EQUAL(ask(&f, &f.mallory, &want1, 1, &m), E2E_CTL_REFUSAL);
	CU_ASSERT_EQUAL(m.reason, E2E_REFUSE_NOT_ENROLLED);
	{
		struct e2e_identity twin;

		tu_identity_twin(&twin, &f.bob);
		CU_ASSERT_EQUAL(ask(&f, &twin, &want1, 1, &m), E2E_CTL_REFUSAL);
		CU_ASSERT_EQUAL(m.reason, E2E_REFUSE_NOT_ENROLLED);
		e2e_identity_destroy(&twin);
	}
	memset(&st, 0, sizeof st);
	e2e_sender_keysvc_stats(f.s, &st);
	CU_ASSERT_EQUAL(st.requests, 5);
	CU_ASSERT_EQUAL(st.delivered, 2);
	CU_ASSERT_EQUAL(st.refused, 3);
	e2e_ctl_wipe(&m);
	sfx_free(&f);
}

/* A map too large for one delivery (65535 bytes next to 32 keys): refused
 * at start, and at reload the previous table stays in force. */
static void test_map_too_large(void)
{
	struct sfx f;
	struct e2e_sender *s = NULL;
	static char text[70000];
	char filter[1001];
	size_t used = 0;

	sfx_dir(&f);
	memset(filter, 'x', 1000);
	filter[1000] = '\0';
	/* 64 filters of 1000 bytes: 64 x 1003 bytes of rules, over E2E_CTL_MAP_MAX. */
	for (unsigned i = 0; i < 64; i++)
		used += (size_t)snprintf(text + used, sizeof text - used, "scope %u s%u %c%s\n",
			i + 1, i, 'a' + i % 26, filter + 1);
	write_text(f.p_scopes, text, 0644);
	CU_ASSERT_EQUAL(e2e_sender_open(&s, &f.cfg), E2E_ERR_FULL);
	CU_ASSERT_PTR_NULL(s);
	TU_CHECK(strstr(f.err, "does not fit a key delivery") != NULL, "error: %s", f.err);
	write_text(f.p_scopes, "scope 1 telemetry sensors/#\n", 0644);
	sfx_open(&f);
	write_text(f.p_scopes, text, 0644);
	g_now += 2000;
	CU_ASSERT_EQUAL(e2e_sender_tick(f.s, g_now), E2E_ERR_FULL);
	{
		struct e2e_ctl m;
		struct e2e_header h;
		uint8_t env[ENV_CAP];

		(void)seal_on(&f, env, "sensors/t", &h);
		CU_ASSERT_EQUAL(h.scope, 1);
		CU_ASSERT_EQUAL_FATAL(ask(&f, &f.bob, &want1, 1, &m), E2E_CTL_DELIVERY);
		CU_ASSERT_EQUAL(m.nrules, 2);
		e2e_ctl_wipe(&m);
	}
	sfx_free(&f);
}

/* ---- Rotation ---------------------------------------------------------- */

static void test_rotate(void)
{
	uint32_t run0;
	struct sfx f;
	struct e2e_ctl m;
	struct e2e_keystore_entry old, cur;
	const struct e2e_ctl_key *k;
	struct e2e_header h;
	uint8_t env[ENV_CAP];

	sfx_init(&f);
	(void)seal_on(&f, env, "sensors/a", &h);
	CU_ASSERT_EQUAL(h.epoch, EP(1));
	run0 = h.run;
	CU_ASSERT_EQUAL(next_announce(&f, &m), 0);
	g_now = T0 + 1000;
	CU_ASSERT_EQUAL_FATAL(e2e_sender_rotate(f.s, 1, g_now), E2E_OK);
	/* The next seal uses the new epoch in a new run (one stream, one key:
	 * SPEC 5.1, 5.8); the other scope is unchanged. */
	(void)seal_on(&f, env, "sensors/a", &h);
	CU_ASSERT(h.scope == 1 && h.epoch == EP(2) && h.seq == 1);
	CU_ASSERT(h.run != run0 && h.counter == 1);
	(void)seal_on(&f, env, "plant/a", &h);
	CU_ASSERT(h.scope == 0 && h.epoch == EP(1));
	/* One announcement, once. */
	CU_ASSERT_EQUAL_FATAL(next_announce(&f, &m), 1);
	CU_ASSERT(m.scope == 1 && m.epoch == EP(2));
	CU_ASSERT_EQUAL(next_announce(&f, &m), 0);
	/* On disk: epoch 2 current, epoch 1 until now + grace. */
	CU_ASSERT_EQUAL_FATAL(file_key(&f, 1, EP(1), &old), 0);
	CU_ASSERT_EQUAL_FATAL(file_key(&f, 1, EP(2), &cur), 0);
	CU_ASSERT_EQUAL(old.not_after_ms, T0 + 1000 + GRACE);
	CU_ASSERT_EQUAL(cur.not_after_ms, 0);
	/* Both are delivered, the old one with its deadline. */
	CU_ASSERT_EQUAL_FATAL(ask(&f, &f.bob, &want1, 1, &m), E2E_CTL_DELIVERY);
	CU_ASSERT_EQUAL(m.nkeys, 2);
	k = tu_ctl_key(&m, 1, EP(2));
	CU_ASSERT(k && k->not_after_ms == 0 && !memcmp(k->key, cur.key, 32));
	k = tu_ctl_key(&m, 1, EP(1));
	CU_ASSERT(k && k->not_after_ms == T0 + 1000 + GRACE && !memcmp(k->key, old.key, 32));
	/* By topic. */
	CU_ASSERT_EQUAL(e2e_sender_rotate_topic(f.s, "sensors/zz", g_now), E2E_OK);
	(void)seal_on(&f, env, "sensors/a", &h);
	CU_ASSERT_EQUAL(h.epoch, EP(3));
	CU_ASSERT(next_announce(&f, &m) == 1 && m.scope == 1 && m.epoch == EP(3));
	/* After the grace period the old keys are pruned: no longer delivered. */
	g_now = T0 + 1000 + GRACE + 1;
	CU_ASSERT_EQUAL(e2e_sender_tick(f.s, g_now), E2E_OK);
	CU_ASSERT_EQUAL(file_key_count(&f), 2);       /* scope 0 epoch 1, scope 1 epoch 3 */
	CU_ASSERT_EQUAL_FATAL(ask(&f, &f.bob, &want1, 1, &m), E2E_CTL_DELIVERY);
	CU_ASSERT(m.nkeys == 1 && tu_ctl_key(&m, 1, EP(3)) != NULL);
	e2e_ctl_wipe(&m);
	sfx_free(&f);
}

/* The key usage limit rotates by itself (SPEC 4.2). */
static void test_rotate_by_count_and_age(void)
{
	struct sfx f;
	struct e2e_ctl m;
	struct e2e_header h;
	uint8_t env[ENV_CAP];

	sfx_dir(&f);
	f.cfg.max_messages = 3;
	sfx_open(&f);
	for (int i = 0; i < 3; i++) {
		(void)seal_on(&f, env, "sensors/a", &h);
		CU_ASSERT_EQUAL(h.epoch, EP(1));
	}
	(void)seal_on(&f, env, "sensors/a", &h);
	CU_ASSERT_EQUAL(h.epoch, EP(2));
	CU_ASSERT(next_announce(&f, &m) == 1 && m.scope == 1 && m.epoch == EP(2));
	CU_ASSERT_EQUAL(next_announce(&f, &m), 0);
	e2e_sender_close(f.s);
	f.s = NULL;
	f.cfg.max_messages = 0;

	/* By age: both scopes once their key is max_age old (all created at T0). */
	f.cfg.max_age_ms = 5000;
	sfx_open(&f);
	CU_ASSERT_EQUAL(e2e_sender_tick(f.s, T0 + 4999), E2E_OK);
	CU_ASSERT_EQUAL(next_announce(&f, &m), 0);
	g_now = T0 + 5000;
	CU_ASSERT_EQUAL(e2e_sender_tick(f.s, g_now), E2E_OK);
	/* The keys made ahead at T0 + 4.999 s (half the age before, SPEC 11.5)
	 * take over: the clock was ahead of highest + 1 then (SPEC 6.4). */
	CU_ASSERT(next_announce(&f, &m) == 1 && m.scope == 0 && m.epoch == EP(5));
	CU_ASSERT(next_announce(&f, &m) == 1 && m.scope == 1 && m.epoch == EP(5));
	CU_ASSERT_EQUAL(next_announce(&f, &m), 0);
	(void)seal_on(&f, env, "plant/a", &h);
	CU_ASSERT_EQUAL(h.epoch, EP(5));
	sfx_free(&f);
}

/*
 * L4: turning `sign` on for a scope rotates it. Its old key was delivered as
 * unsigned, so every subscriber holding it could forge suite 0x01 envelopes;
 * only a new key, delivered as signed, makes the signature mandatory. The
 * mode is kept per key, so a change made while the sender was stopped is
 * caught at start, and turning signing off rotates too.
 */
static void test_sign_on_rotates(void)
{
	struct sfx f;
	struct e2e_ctl m;
	struct e2e_header h;
	uint8_t env[ENV_CAP];
	const struct e2e_ctl_key *k;

	sfx_init(&f);
	(void)seal_on(&f, env, "sensors/a", &h);
	CU_ASSERT(h.suite == E2E_SUITE_V1_XCHACHA && h.epoch == EP(1));
	CU_ASSERT_EQUAL(next_announce(&f, &m), 0);
	/* The operator adds "sign telemetry"; the running sender reloads. */
	g_now = T0 + 1000;
	write_text(f.p_scopes, "scope 1 telemetry sensors/#\nsign telemetry\n", 0644);
	CU_ASSERT_EQUAL(e2e_sender_tick(f.s, g_now), E2E_OK);
	(void)seal_on(&f, env, "sensors/a", &h);
	TU_CHECK(h.suite == E2E_SUITE_V1_SIGNED && h.epoch == EP(2),
		"after sign on: suite %u epoch %u (want signed, a new epoch)", h.suite, h.epoch);
	CU_ASSERT(next_announce(&f, &m) == 1 && m.scope == 1 && m.epoch == EP(2));
	/* Delivered: the new key signed, the old one as it was used. */
	CU_ASSERT_EQUAL_FATAL(ask(&f, &f.bob, &want1, 1, &m), E2E_CTL_DELIVERY);
	k = tu_ctl_key(&m, 1, EP(2));
	CU_ASSERT(k && k->flags == E2E_KEY_SIGNED);
	k = tu_ctl_key(&m, 1, EP(1));
	CU_ASSERT(k && k->flags == 0 && k->not_after_ms != 0);
	/* Nothing more on the next ticks or a restart: the mode is on the key. */
	CU_ASSERT_EQUAL(e2e_sender_tick(f.s, g_now), E2E_OK);
	e2e_sender_close(f.s);
	f.s = NULL;
	sfx_open(&f);
	(void)seal_on(&f, env, "sensors/a", &h);
	CU_ASSERT(h.suite == E2E_SUITE_V1_SIGNED && h.epoch == EP(2));
	/* Turned off while the sender is stopped: rotated at start. */
	e2e_sender_close(f.s);
	f.s = NULL;
	write_text(f.p_scopes, "scope 1 telemetry sensors/#\n", 0644);
	sfx_open(&f);
	(void)seal_on(&f, env, "sensors/a", &h);
	CU_ASSERT(h.suite == E2E_SUITE_V1_XCHACHA && h.epoch == EP(3));
	e2e_ctl_wipe(&m);
	sfx_free(&f);
}

/* ---- Reloading files changed on disk ----------------------------------- */

static void test_reload(void)
{
	struct sfx f;
	struct e2e_ctl m;
	struct e2e_keystore *ks = NULL;
	struct e2e_keystore_entry k;
	struct e2e_header h;
	uint8_t env[ENV_CAP];
	uint32_t epoch = 0;
	char text[2048] = "";

	sfx_init(&f);
	/* e2e-keytool rotates scope 0 in the keys file, recording the new
	 * epoch in txstate first (SPEC 6.4) as it does. */
	g_now = T0 + 2000;
	CU_ASSERT_EQUAL_FATAL(e2e_keystore_load(&ks, f.p_keys, 1, NULL, 0), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_keystore_rotate(ks, 0, g_now, GRACE, &epoch), E2E_OK);
	CU_ASSERT_EQUAL(epoch, EP(3));
	{
		struct e2e_keyid nid = { e2e_sender_id(&f.id.pub), 0, epoch };
		char txp[PATH_MAX];

		tu_path(txp, sizeof txp, f.t.dir, "txstate");
		CU_ASSERT_EQUAL_FATAL(e2e_txstate_note(txp, &nid, 1), E2E_OK);
	}
	CU_ASSERT_EQUAL_FATAL(e2e_keystore_save(ks, f.p_keys), E2E_OK);
	e2e_keystore_free(ks);
	(void)seal_on(&f, env, "plant/a", &h);
	CU_ASSERT_EQUAL(h.epoch, EP(1));      /* not yet picked up */
	CU_ASSERT_EQUAL(e2e_sender_tick(f.s, g_now), E2E_OK);
	(void)seal_on(&f, env, "plant/a", &h);
	CU_ASSERT(h.scope == 0 && h.epoch == EP(3));
	CU_ASSERT(next_announce(&f, &m) == 1 && m.scope == 0 && m.epoch == EP(3));
	CU_ASSERT_EQUAL(next_announce(&f, &m), 0);

	/* mallory gets enrolled for both scopes. */
	CU_ASSERT_EQUAL(ask(&f, &f.mallory, &want0, 1, &m), E2E_CTL_REFUSAL);
	enrolled_line(text, sizeof text, "bob", "telemetry", &f.bob.pub);
	enrolled_line(text, sizeof text, "mallory", "default,telemetry", &f.mallory.pub);
	write_text(f.p_enrolled, text, 0644);
	CU_ASSERT_EQUAL(e2e_sender_tick(f.s, g_now), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(ask(&f, &f.mallory, &want0, 1, &m), E2E_CTL_DELIVERY);
	/* The scope 0 keys are the ones of the rewritten file. */
	CU_ASSERT_EQUAL_FATAL(file_key(&f, 0, EP(3), &k), 0);
	CU_ASSERT(m.nkeys == 2 && tu_ctl_key(&m, 0, EP(3)) &&
		!memcmp(tu_ctl_key(&m, 0, EP(3))->key, k.key, 32));
	CU_ASSERT(tu_ctl_key(&m, 0, EP(1)) && tu_ctl_key(&m, 0, EP(1))->not_after_ms == T0 + 2000 + GRACE);

	/* A broken file is reported and the previous configuration stays. */
	write_text(f.p_enrolled, "this is not an enrollment line\n", 0644);
	f.err[0] = '\0';
	CU_ASSERT_NOT_EQUAL(e2e_sender_tick(f.s, g_now), E2E_OK);
	CU_ASSERT(strlen(f.err) > 0);
	CU_ASSERT_EQUAL(ask(&f, &f.mallory, &want0, 1, &m), E2E_CTL_DELIVERY);

	/* bob is revoked. */
	text[0] = '\0';
	enrolled_line(text, sizeof text, "revoked", "bob", &f.bob.pub);
	enrolled_line(text, sizeof text, "mallory", "default,telemetry", &f.mallory.pub);
	write_text(f.p_enrolled, text, 0644);
	CU_ASSERT_EQUAL(e2e_sender_tick(f.s, g_now), E2E_OK);
	CU_ASSERT_EQUAL(ask(&f, &f.bob, &want1, 1, &m), E2E_CTL_REFUSAL);
	CU_ASSERT_EQUAL(m.reason, E2E_REFUSE_REVOKED);
	CU_ASSERT_EQUAL(ask(&f, &f.mallory, &want1, 1, &m), E2E_CTL_DELIVERY);
	e2e_ctl_wipe(&m);
	sfx_free(&f);
}

/* ---- Summaries --------------------------------------------------------- */

struct sealed {
	char topic[32];
	uint8_t env[ENV_CAP];
	size_t len;
	struct e2e_header h;
};

/* The next summary at @p now, parsed; 0 if none is due. */
static int next_summary(struct sfx *f, uint64_t now, struct e2e_ctl *m, uint8_t *buf, size_t cap)
{
	char topic[128];
	size_t len = 0;
	enum e2e_status st = e2e_sender_next_summary(f->s, buf, cap, &len, topic, sizeof topic, now);

	if (st == E2E_ERR_NOT_FOUND)
		return 0;
	TU_CHECK(st == E2E_OK, "next_summary: %s", e2e_strerror(st));
	if (st != E2E_OK)
		return 0;
	TU_CHECK(!strcmp(topic, f->ctl_topic), "summary on %s", topic);
	st = e2e_ctl_parse(m, buf, len, f->ctl_topic, &f->id.pub);
	TU_CHECK(st == E2E_OK && m->type == E2E_CTL_SUMMARY, "summary: %s", e2e_strerror(st));
	TU_CHECK(m->sender == e2e_sender_self(f->s) && m->time_ms == now, "summary head");
	return st == E2E_OK;
}

/* Every entry matches the envelopes sealed on its stream: seqs and chained digest. */
static void check_entries(const struct e2e_ctl *m, const struct sealed *all, size_t n)
{
	struct e2e_summary_iter it;
	struct e2e_summary_entry e;

	e2e_summary_iter_init(&it, m);
	while (e2e_summary_entry_next(&it, &e)) {
		uint8_t d[E2E_DIGEST_BYTES];
		uint32_t next = e.first, count = 0;

		for (size_t i = 0; i < n; i++) {
			const struct sealed *x = &all[i];

			if (x->h.run != e.run || strlen(x->topic) != e.topic_len ||
			    memcmp(x->topic, e.topic, e.topic_len) || x->h.seq < e.first ||
			    x->h.seq > e.last)
				continue;
			TU_CHECK(x->h.seq == next, "%.*s: seq %u, expected %u", (int)e.topic_len, e.topic,
				x->h.seq, next);
			e2e_summary_digest(d, x->env, x->len);
			TU_CHECK(!memcmp(d, e.digests + (size_t)(x->h.seq - e.first) * sizeof d,
				sizeof d), "%.*s: d_s of seq %u", (int)e.topic_len, e.topic, x->h.seq);
			next++;
			count++;
		}
		TU_CHECK(count == e.last - e.first + 1, "%.*s: %u of %u..%u sealed", (int)e.topic_len,
			e.topic, count, e.first, e.last);
	}
}

static void seal_into(struct sfx *f, struct sealed *x, const char *topic)
{
	snprintf(x->topic, sizeof x->topic, "%s", topic);
	x->len = seal_on(f, x->env, topic, &x->h);
}

static void count_reports(void *ctx, const struct e2e_sumcheck_report *r)
{
	unsigned *counts = ctx;

	counts[r->result]++;
}

static void test_summaries(void)
{
	static uint8_t buf[E2E_CTL_SUMMARY_MAX];
	struct sfx f;
	struct e2e_ctl m;
	struct sealed all[8];
	struct e2e_sumcheck *sc = NULL;
	unsigned counts[8] = { 0 };
	size_t n = 0;

	sfx_dir(&f);
	f.cfg.summary_ms = 1000;
	sfx_open(&f);
	CU_ASSERT_EQUAL_FATAL(e2e_sumcheck_create(&sc, NULL), E2E_OK);
	seal_into(&f, &all[n++], "sensors/a");
	seal_into(&f, &all[n++], "plant/b");
	seal_into(&f, &all[n++], "sensors/a");
	seal_into(&f, &all[n++], "plant/b");
	seal_into(&f, &all[n++], "sensors/a");
	for (size_t i = 0; i < n; i++)
		e2e_sumcheck_record(sc, all[i].h.sender, all[i].h.run, all[i].topic,
			strlen(all[i].topic), all[i].h.seq, all[i].env, all[i].len, T0, count_reports,
			counts);
	/* Not before the interval. */
	CU_ASSERT_EQUAL(next_summary(&f, T0 + 999, &m, buf, sizeof buf), 0);
	CU_ASSERT_EQUAL_FATAL(next_summary(&f, T0 + 1000, &m, buf, sizeof buf), 1);
	CU_ASSERT(m.number == 1 && m.part == 0 && m.parts == 1 && m.interval_ms == 1000 &&
		m.boot != 0);
	CU_ASSERT_EQUAL(m.nentries, 2);
	check_entries(&m, all, n);
	e2e_sumcheck_summary(sc, e2e_sender_self(f.s), &m,
		e2e_sumcheck_arrived(sc, e2e_sender_self(f.s)), T0, NULL, count_reports, counts);
	CU_ASSERT_EQUAL(counts[E2E_SUM_VERIFIED], 2);
	/* Then nothing until the next interval. */
	CU_ASSERT_EQUAL(next_summary(&f, T0 + 1000, &m, buf, sizeof buf), 0);
	CU_ASSERT_EQUAL(next_summary(&f, T0 + 1999, &m, buf, sizeof buf), 0);
	seal_into(&f, &all[n++], "sensors/a");
	e2e_sumcheck_record(sc, all[n - 1].h.sender, all[n - 1].h.run, all[n - 1].topic,
		strlen(all[n - 1].topic), all[n - 1].h.seq, all[n - 1].env, all[n - 1].len, T0,
		count_reports, counts);
	CU_ASSERT_EQUAL_FATAL(next_summary(&f, T0 + 2000, &m, buf, sizeof buf), 1);
	CU_ASSERT(m.number == 2 && m.nentries == 1);
	check_entries(&m, all, n);
	{
		struct e2e_summary_iter it;
		struct e2e_summary_entry e;

		e2e_summary_iter_init(&it, &m);
		CU_ASSERT(e2e_summary_entry_next(&it, &e) && e.first == 4 && e.last == 4);
	}
	e2e_sumcheck_summary(sc, e2e_sender_self(f.s), &m,
		e2e_sumcheck_arrived(sc, e2e_sender_self(f.s)), T0, NULL, count_reports, counts);
	CU_ASSERT_EQUAL(counts[E2E_SUM_VERIFIED], 3);
	/* A quiet interval still gets its (empty) summary: the heartbeat. */
	CU_ASSERT_EQUAL_FATAL(next_summary(&f, T0 + 3000, &m, buf, sizeof buf), 1);
	CU_ASSERT(m.number == 3 && m.nentries == 0);
	e2e_sumcheck_summary(sc, e2e_sender_self(f.s), &m,
		e2e_sumcheck_arrived(sc, e2e_sender_self(f.s)), T0, NULL, count_reports, counts);
	CU_ASSERT_EQUAL(counts[E2E_SUM_VERIFIED], 3);
	CU_ASSERT_EQUAL(counts[E2E_SUM_FORGED] + counts[E2E_SUM_UNCONFIRMED] +
		counts[E2E_SUM_UNSUMMARIZED], 0);
	CU_ASSERT_EQUAL(e2e_sender_unsummarized(f.s), 0);
	e2e_sumcheck_destroy(sc);
	e2e_sender_close(f.s);

	/* Disabled: never a summary. */
	f.cfg.no_summaries = 1;
	sfx_open(&f);
	(void)seal_on(&f, all[0].env, "sensors/a", &all[0].h);
	CU_ASSERT_EQUAL(next_summary(&f, T0 + 1000000, &m, buf, sizeof buf), 0);
	sfx_free(&f);
}

/* A buffer too small for the next message loses nothing: the call can be repeated. */
static void test_short_buffers_keep_queue(void)
{
	static uint8_t buf[E2E_CTL_SUMMARY_MAX];
	struct sfx f;
	struct e2e_ctl m;
	struct e2e_header h;
	uint8_t env[ENV_CAP];
	char topic[128];
	size_t len = 0;
	int got;

	sfx_dir(&f);
	f.cfg.summary_ms = 1000;
	sfx_open(&f);
	memset(&m, 0, sizeof m);
	/* Announcements: message buffer, then topic buffer too small. */
	CU_ASSERT_EQUAL_FATAL(e2e_sender_rotate(f.s, 1, g_now), E2E_OK);
	CU_ASSERT_EQUAL(e2e_sender_next_announce(f.s, buf, 20, &len, topic, sizeof topic, g_now),
		E2E_ERR_BUFFER);
	TU_CHECK(next_announce(&f, &m) == 1 && m.scope == 1 && m.epoch == EP(2),
		"announcement lost after a short message buffer");
	CU_ASSERT_EQUAL_FATAL(e2e_sender_rotate(f.s, 1, g_now), E2E_OK);
	CU_ASSERT_EQUAL(e2e_sender_next_announce(f.s, buf, sizeof buf, &len, topic, 5, g_now),
		E2E_ERR_BUFFER);
	TU_CHECK(next_announce(&f, &m) == 1 && m.scope == 1 && m.epoch == EP(3),
		"announcement lost after a short topic buffer");
	/* Summaries: the same, and the number stays consecutive. */
	(void)seal_on(&f, env, "sensors/a", &h);
	(void)seal_on(&f, env, "sensors/a", &h);
	CU_ASSERT_EQUAL(e2e_sender_next_summary(f.s, buf, 50, &len, topic, sizeof topic, T0 + 1000),
		E2E_ERR_BUFFER);
	memset(&m, 0, sizeof m);
	got = next_summary(&f, T0 + 1000, &m, buf, sizeof buf);
	TU_CHECK(got && m.number == 1 && m.nentries == 1,
		"summary after a short message buffer: %s, number %u, %u entries",
		got ? "sent" : "none", m.number, m.nentries);
	(void)seal_on(&f, env, "sensors/a", &h);
	CU_ASSERT_EQUAL(e2e_sender_next_summary(f.s, buf, sizeof buf, &len, topic, 5, T0 + 2000),
		E2E_ERR_BUFFER);
	memset(&m, 0, sizeof m);
	got = next_summary(&f, T0 + 2000, &m, buf, sizeof buf);
	TU_CHECK(got && m.number == 2 && m.nentries == 1,
		"summary after a short topic buffer: %s, number %u, %u entries",
		got ? "sent" : "none", m.number, m.nentries);
	sfx_free(&f);
}


/* ---- One owner per state directory; txstate safety (SPEC 6.1, 6.4) ----- */

static void test_second_owner_refused(void)
{
	struct sfx f;
	struct e2e_sender *s2 = NULL;
	char want[64], err2[512] = "";
	struct e2e_sender_config c2;
	int status = -1;
	pid_t child;

	sfx_init(&f);
	c2 = f.cfg;
	c2.err = err2;
	c2.err_len = sizeof err2;
	/* A second sender of this process: its own open file, so refused too. */
	CU_ASSERT_EQUAL(e2e_sender_open(&s2, &c2), E2E_ERR_BUSY);
	CU_ASSERT_PTR_NULL(s2);
	snprintf(want, sizeof want, "process %ld ", (long)getpid());
	TU_CHECK(strstr(err2, want) != NULL, "error names the holder's pid (%s): %s", want, err2);
	/* Another process: refused naming our pid; nothing it could touch changed. */
	child = fork();
	CU_ASSERT_FATAL(child >= 0);
	if (child == 0) {
		char e[512] = "";
		struct e2e_sender *s3 = NULL;

		c2.err = e;
		c2.err_len = sizeof e;
		_exit(e2e_sender_open(&s3, &c2) == E2E_ERR_BUSY && strstr(e, want) ? 0 : 1);
	}
	CU_ASSERT_EQUAL(waitpid(child, &status, 0), child);
	TU_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		"another process is refused with the owner's pid (status %d)", status);
	/* Lock files hold no secret and stay openable by another user (0644). */
	{
		const char *names[] = { "lock", ".lock" };

		for (unsigned i = 0; i < 2; i++) {
			char p[PATH_MAX];
			struct stat sb;

			tu_path(p, sizeof p, f.t.dir, names[i]);
			CU_ASSERT_EQUAL_FATAL(stat(p, &sb), 0);
			TU_CHECK((sb.st_mode & 0777) == 0644, "%s mode %o", names[i],
				(unsigned)(sb.st_mode & 0777));
		}
	}
	/* Closing releases the directory. */
	e2e_sender_close(f.s);
	f.s = NULL;
	CU_ASSERT_EQUAL(e2e_sender_open(&s2, &c2), E2E_OK);
	e2e_sender_close(s2);
	sfx_free(&f);
}

/* Seal @p n messages on sensors/x; the highest counter into *@p max. */
static void seal_many(struct sfx *f, unsigned n, uint32_t *epoch, uint64_t *max)
{
	uint8_t env[ENV_CAP];
	struct e2e_header h;

	*max = 0;
	for (unsigned i = 0; i < n; i++) {
		(void)seal_on(f, env, "sensors/x", &h);
		*epoch = h.epoch;
		if (h.counter > *max)
			*max = h.counter;
	}
}

static void test_missing_record_not_restarted(void)
{
	struct sfx f;
	struct e2e_header h;
	struct e2e_keyid id;
	uint8_t env[ENV_CAP];
	char txp[PATH_MAX];
	uint64_t max = 0;
	uint32_t epoch = 0;

	uint8_t *old_keys;
	size_t old_len = 0;
	uint64_t c = 0;

	sfx_init(&f);
	tu_path(txp, sizeof txp, f.t.dir, "txstate");
	seal_many(&f, 40, &epoch, &max);
	CU_ASSERT(epoch == EP(1) && max >= 40);
	e2e_sender_close(f.s);
	f.s = NULL;
	old_keys = tu_read_file(f.p_keys, &old_len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(old_keys);
	/* The key's record is gone (restored older txstate, hand edit)... */
	id = (struct e2e_keyid){ e2e_sender_id(&f.id.pub), 1, epoch };
	CU_ASSERT_EQUAL_FATAL(e2e_txstate_forget(txp, &id), E2E_OK);
	sfx_open(&f);
	(void)seal_on(&f, env, "sensors/x", &h);
	/* ...so that key must not seal from counter 0 again: a new epoch does. */
	TU_CHECK(h.epoch != epoch || h.counter > max, "after a lost record: epoch %u counter %llu "
		"(before: epoch %u up to %llu)", h.epoch, (unsigned long long)h.counter, epoch,
		(unsigned long long)max);
	CU_ASSERT(h.epoch > epoch);
	/* The old key is retired for good, not recorded as unused. */
	CU_ASSERT_EQUAL(e2e_txstate_get(txp, &id, &c), E2E_OK);
	CU_ASSERT_EQUAL(c, E2E_COUNTER_MAX);
	e2e_sender_close(f.s);
	f.s = NULL;
	/* An older keys file restored (epoch 1 current again): still not reused. */
	write_text(f.p_keys, (const char *)old_keys, 0600);
	free(old_keys);
	sfx_open(&f);
	(void)seal_on(&f, env, "sensors/x", &h);
	TU_CHECK(h.epoch > epoch + 1, "keys restored after the retirement: epoch %u counter %llu",
		h.epoch, (unsigned long long)h.counter);
	e2e_sender_close(f.s);
	f.s = NULL;
	/* The whole file lost: the same rule. */
	epoch = h.epoch;
	max = h.counter;
	CU_ASSERT_EQUAL_FATAL(unlink(txp), 0);
	sfx_open(&f);
	(void)seal_on(&f, env, "sensors/x", &h);
	TU_CHECK(h.epoch > epoch, "after txstate was deleted: epoch %u counter %llu (before: epoch "
		"%u up to %llu)", h.epoch, (unsigned long long)h.counter, epoch,
		(unsigned long long)max);
	sfx_free(&f);
}

/*
 * What e2e-keytool rotate does, in a loop: under the write lock, load keys,
 * rotate, record every epoch in txstate (a read-modify-write of the file the
 * sender reserves counters in), save keys.
 */
static void keytool_rotate_loop(const char *dir, const char *keys, const char *txp,
	uint32_t self, int stop_fd)
{
	for (unsigned i = 0;; i++) {
		struct e2e_keystore *ks = NULL;
		struct e2e_keyid ids[512];
		uint32_t epoch, n;
		char c;
		int lock = -1;

		if (read(stop_fd, &c, 1) == 0)
			_exit(0);   /* parent closed the pipe */
		if (e2e_dir_lock(dir, &lock) != E2E_OK ||
		    e2e_keystore_load(&ks, keys, 1, NULL, 0) != E2E_OK)
			_exit(2);
		/* Keep the file small: the old keys expire at once. */
		(void)e2e_keystore_prune(ks, T0 + 2 * i + 1);
		if (e2e_keystore_rotate(ks, 1, T0 + 2 * i + 2, 1, &epoch) != E2E_OK)
			_exit(3);
		n = e2e_keystore_count(ks);
		if (n > 512)
			_exit(4);
		for (uint32_t k = 0; k < n; k++) {
			const struct e2e_keystore_entry *e = e2e_keystore_at(ks, k);

			ids[k] = (struct e2e_keyid){ self, e->scope, e->epoch };
		}
		if (e2e_txstate_note(txp, ids, n) != E2E_OK || e2e_keystore_save(ks, keys) != E2E_OK)
			_exit(5);
		e2e_keystore_free(ks);
		e2e_dir_unlock(lock);
	}
}

/* The real thing: `e2e-keytool rotate` run again and again ($E2E_KEYTOOL). */
static void keytool_exec_loop(const char *keytool, const char *dir, int stop_fd)
{
	for (;;) {
		int status = -1;
		char c;
		pid_t k;

		if (read(stop_fd, &c, 1) == 0)
			_exit(0);
		k = fork();
		if (k < 0)
			_exit(6);
		if (k == 0) {
			int null = open("/dev/null", O_WRONLY);

			(void)dup2(null, 1);
			(void)dup2(null, 2);
			execl(keytool, "e2e-keytool", "rotate", "--dir", dir, "--scope", "telemetry",
				"--grace", "1s", (char *)NULL);
			_exit(127);
		}
		if (waitpid(k, &status, 0) != k || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			_exit(7);
	}
}

static void stress(int real_keytool)
{
	struct sfx f;
	struct e2e_header h;
	struct e2e_keyid id;
	uint8_t env[ENV_CAP];
	char txp[PATH_MAX];
	uint64_t last = 0, ceiling = 0, t_end;
	unsigned seals = 0, below = 0, dropped = 0;
	int pfd[2], status = -1;
	pid_t child;

	sfx_dir(&f);
	f.cfg.reserve_block = 1;   /* a txstate write per message: most chances to race */
	sfx_open(&f);
	tu_path(txp, sizeof txp, f.t.dir, "txstate");
	(void)seal_on(&f, env, "sensors/x", &h);
	id = (struct e2e_keyid){ h.sender, h.scope, h.epoch };
	CU_ASSERT_FATAL(pipe(pfd) == 0);
	/* The sender stays on its key (no tick) while the keys file churns. */
	child = fork();
	CU_ASSERT_FATAL(child >= 0);
	if (child == 0) {
		close(pfd[1]);
		/* Non-blocking reads of a pipe nobody writes: EAGAIN until closed. */
		(void)fcntl(pfd[0], F_SETFL, O_NONBLOCK);
		if (real_keytool)
			keytool_exec_loop(getenv("E2E_KEYTOOL"), f.t.dir, pfd[0]);
		keytool_rotate_loop(f.t.dir, f.p_keys, txp, h.sender, pfd[0]);
	}
	close(pfd[0]);
	t_end = e2e_mono_ms() + 3000;
	while (seals < 600 && e2e_mono_ms() < t_end) {
		(void)seal_on(&f, env, "sensors/x", &h);
		seals++;
		CU_ASSERT_EQUAL_FATAL(e2e_txstate_get(txp, &id, &ceiling), E2E_OK);
		/* Every sealed counter is durably reserved, and stays so. */
		below += ceiling < h.counter;
		dropped += ceiling < last;
		if (ceiling > last)
			last = ceiling;
	}
	close(pfd[1]);
	CU_ASSERT_EQUAL(waitpid(child, &status, 0), child);
	TU_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "keytool loop status %d", status);
	TU_CHECK(below == 0 && dropped == 0, "%u seals against a rotating keytool: %u sealed above "
		"the persisted ceiling, %u ceiling decreases", seals, below, dropped);
	CU_ASSERT(seals >= 100);
	sfx_free(&f);
}

/* ---- The sealing core without files (issue 15) --------------------- */

static enum e2e_status seal_nowait(struct sfx *f, const char *topic, struct e2e_header *h)
{
	uint8_t env[ENV_CAP];
	size_t len = 0;
	enum e2e_status st = e2e_sender_seal_nowait(f->s, 0, env, sizeof env, &len, topic,
		strlen(topic), (const uint8_t *)"x", 1);

	if (st == E2E_OK && h)
		CU_ASSERT_EQUAL_FATAL(e2e_header_parse(h, env, len), E2E_OK);
	return st;
}

static void prepare(struct sfx *f, struct e2e_sender_io *io)
{
	CU_ASSERT(e2e_sender_io_plan(f->s, io) >= 1);
	CU_ASSERT_EQUAL(e2e_sender_io_run(f->s, io), E2E_OK);
	CU_ASSERT_EQUAL(e2e_sender_io_apply(f->s, io), E2E_OK);
}

/*
 * e2e_sender_seal_nowait touches no file: with the whole state directory
 * moved away it seals from the reservation the I/O side made durable, asks
 * for more at half a block left, and stops exactly at the durable ceiling
 * (SPEC 4.1); nothing reappears where the directory was.
 */
static void test_nowait_core_needs_no_files(void)
{
	struct e2e_sender_io *io = calloc(1, sizeof *io);
	char gone[PATH_CAP + 8];
	struct e2e_header h;
	struct stat sb;
	struct sfx f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(io);
	sfx_init(&f);   /* reserve_block 16 */
	/* Nothing prepared: refused, and the I/O side is asked for. */
	CU_ASSERT_EQUAL(seal_nowait(&f, "sensors/a", NULL), E2E_ERR_RESERVE);
	CU_ASSERT_EQUAL(e2e_sender_io_wanted(f.s), 1);
	prepare(&f, io);
	CU_ASSERT_EQUAL(e2e_sender_io_wanted(f.s), 0);
	snprintf(gone, sizeof gone, "%s.gone", f.t.dir);
	CU_ASSERT_EQUAL_FATAL(rename(f.t.dir, gone), 0);
	for (uint64_t i = 1; i <= 16; i++) {
		CU_ASSERT_EQUAL_FATAL(seal_nowait(&f, i % 2 ? "sensors/a" : "sensors/b", &h),
			E2E_OK);
		CU_ASSERT_EQUAL(h.counter, i);
		TU_CHECK(e2e_sender_io_wanted(f.s) == (i >= 8), "seal %llu: io wanted %d",
			(unsigned long long)i, e2e_sender_io_wanted(f.s));
	}
	CU_ASSERT_EQUAL(seal_nowait(&f, "sensors/a", NULL), E2E_ERR_RESERVE);
	CU_ASSERT_NOT_EQUAL(stat(f.t.dir, &sb), 0);
	CU_ASSERT_EQUAL_FATAL(rename(gone, f.t.dir), 0);
	/* The I/O side extends the ceiling; sealing resumes above it. */
	prepare(&f, io);
	CU_ASSERT_EQUAL(seal_nowait(&f, "sensors/a", &h), E2E_OK);
	CU_ASSERT_EQUAL(h.counter, 17);
	sfx_free(&f);
	free(io);
}

/*
 * A threaded caller's tick (prepare_keys) holds its sealing lock: it must
 * never wait for e2e-keytool's directory lock. With the lock held by
 * someone else (here this process, through another open file: flock
 * conflicts) a due rotation is put off, not waited for (a tick that waited
 * would hang this test), and done at the next tick.
 */
static void test_tick_never_waits_for_keytool(void)
{
	uint8_t env[ENV_CAP];
	struct e2e_header h;
	uint32_t e0;
	struct sfx f;
	int fd = -1;

	sfx_dir(&f);
	f.cfg.prepare_keys = 1;
	f.cfg.max_age_ms = 1000;
	sfx_open(&f);
	(void)seal_on(&f, env, "sensors/a", &h);
	e0 = h.epoch;
	g_now += 5000;
	CU_ASSERT_EQUAL_FATAL(e2e_dir_lock(f.t.dir, &fd), E2E_OK);
	CU_ASSERT_EQUAL(e2e_sender_tick(f.s, g_now), E2E_OK);
	e2e_dir_unlock(fd);
	(void)seal_on(&f, env, "sensors/a", &h);
	CU_ASSERT_EQUAL(h.epoch, e0);
	CU_ASSERT_EQUAL(e2e_sender_tick(f.s, g_now), E2E_OK);
	/* Rotated, and the new key made ready by the tick: no file needed. */
	CU_ASSERT_EQUAL(seal_nowait(&f, "sensors/a", &h), E2E_OK);
	CU_ASSERT_NOT_EQUAL(h.epoch, e0);
	sfx_free(&f);
}

#ifdef E2E_FAILPOINTS
struct slow_io {
	struct sfx *f;
	struct e2e_sender_io *io;
	atomic_int started, done;
	enum e2e_status st;
};

static void *slow_io_main(void *arg)
{
	struct slow_io *w = arg;

	atomic_store(&w->started, 1);
	w->st = e2e_sender_io_run(w->f->s, w->io);
	atomic_store(&w->done, 1);
	return NULL;
}
#endif

/*
 * A slow disk does not stall sealing: while the I/O thread's reservation
 * waits on fsyncs delayed by 300 ms each (E2E_FSYNC_DELAY_MS, failpoint
 * builds), the sealing thread uses the rest of the durable reservation and
 * is then refused at the ceiling, every call returning before the
 * reservation does; then the new ceiling is swapped in. Structural, not
 * timed: a seal that reserved for itself (e2e_sender_seal) waits for the
 * I/O thread's directory lock and the disk, and this test fails.
 */
static void test_slow_fsync_does_not_stall_sealing(void)
{
#ifdef E2E_FAILPOINTS
	struct e2e_sender_io *io = calloc(1, sizeof *io);
	struct slow_io w = { 0 };
	struct e2e_header h;
	pthread_t th;
	uint64_t ceiling = 0;
	struct e2e_keyid id;
	char p_tx[PATH_CAP];
	struct sfx f;
	int before_done = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(io);
	sfx_init(&f);
	prepare(&f, io);
	for (int i = 0; i < 8; i++)
		CU_ASSERT_EQUAL_FATAL(seal_nowait(&f, "sensors/a", &h), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_sender_io_plan(f.s, io), 1);
	CU_ASSERT_EQUAL(io->item[0].open, 0);
	CU_ASSERT_EQUAL(io->item[0].ceiling, 32);
	setenv("E2E_FSYNC_DELAY_MS", "300", 1);
	w.f = &f;
	w.io = io;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, slow_io_main, &w), 0);
	while (!atomic_load(&w.started))
		sched_yield();
	for (int i = 0; i < 8; i++) {
		CU_ASSERT_EQUAL(seal_nowait(&f, "sensors/a", &h), E2E_OK);
		before_done += !atomic_load(&w.done);
	}
	/* Used up, the reservation not yet durable: refused, not waited for. */
	CU_ASSERT_EQUAL(seal_nowait(&f, "sensors/a", NULL), E2E_ERR_RESERVE);
	before_done += !atomic_load(&w.done);
	TU_CHECK(before_done == 9, "%d of 9 seals returned before the slow reservation",
		before_done);
	pthread_join(th, NULL);
	unsetenv("E2E_FSYNC_DELAY_MS");
	CU_ASSERT_EQUAL(w.st, E2E_OK);
	CU_ASSERT_EQUAL(e2e_sender_io_apply(f.s, io), E2E_OK);
	CU_ASSERT_EQUAL(seal_nowait(&f, "sensors/a", &h), E2E_OK);
	CU_ASSERT_EQUAL(h.counter, 17);
	/* Never sealed past what is on disk. */
	tu_path(p_tx, sizeof p_tx, f.t.dir, "txstate");
	id = (struct e2e_keyid){ e2e_sender_id(&f.id.pub), h.scope, h.epoch };
	CU_ASSERT_EQUAL(e2e_txstate_get(p_tx, &id, &ceiling), E2E_OK);
	CU_ASSERT_EQUAL(ceiling, 32);
	sfx_free(&f);
	free(io);
#endif
}

/*
 * The tick without the sealing lock: plan and apply touch no file (the
 * state directory is moved away for both), sealing goes on under the old
 * key between them, and a key used past half its message limit is rotated
 * AHEAD by the tick, so the seal that would have found it exhausted seals
 * under the prepared new key instead, in memory.
 */
static void test_tick_plan_run_apply(void)
{
	struct e2e_sender_io *io = calloc(1, sizeof *io);
	struct e2e_sender_tick *t = NULL;
	char gone[PATH_CAP + 8], topic[300];
	uint8_t msg[E2E_CTL_MSG_MAX];
	struct e2e_header h;
	size_t len;
	uint32_t e0;
	struct sfx f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(io);
	sfx_dir(&f);
	f.cfg.prepare_keys = 1;
	f.cfg.max_messages = 8;
	sfx_open(&f);
	prepare(&f, io);
	for (int i = 1; i <= 3; i++)
		CU_ASSERT_EQUAL_FATAL(seal_nowait(&f, "sensors/a", &h), E2E_OK);
	e0 = h.epoch;
	CU_ASSERT_EQUAL(e2e_sender_tick_wanted(f.s), 0);
	CU_ASSERT_EQUAL(seal_nowait(&f, "sensors/a", &h), E2E_OK);   /* 4 of 8: low water */
	CU_ASSERT_EQUAL(e2e_sender_tick_wanted(f.s), 1);
	snprintf(gone, sizeof gone, "%s.gone", f.t.dir);
	CU_ASSERT_EQUAL_FATAL(rename(f.t.dir, gone), 0);
	CU_ASSERT_EQUAL_FATAL(e2e_sender_tick_plan(f.s, g_now, &t), E2E_OK);
	CU_ASSERT_EQUAL(e2e_sender_tick_wanted(f.s), 0);
	CU_ASSERT_EQUAL_FATAL(rename(gone, f.t.dir), 0);
	/* The old key goes on while the copy rotates on disk. */
	CU_ASSERT_EQUAL(seal_nowait(&f, "sensors/a", &h), E2E_OK);
	CU_ASSERT_EQUAL(e2e_sender_tick_run(t), E2E_OK);
	for (int i = 6; i <= 8; i++)
		CU_ASSERT_EQUAL(seal_nowait(&f, "sensors/a", &h), E2E_OK);
	CU_ASSERT_EQUAL(h.epoch, e0);
	CU_ASSERT_EQUAL(h.counter, 8);
	CU_ASSERT_EQUAL(seal_nowait(&f, "sensors/a", NULL), E2E_ERR_EXHAUSTED);
	CU_ASSERT_EQUAL_FATAL(rename(f.t.dir, gone), 0);
	CU_ASSERT_EQUAL(e2e_sender_tick_apply(f.s, t), E2E_OK);
	CU_ASSERT_EQUAL(seal_nowait(&f, "sensors/a", &h), E2E_OK);
	CU_ASSERT_NOT_EQUAL(h.epoch, e0);
	CU_ASSERT_EQUAL(h.counter, 1);
	CU_ASSERT_EQUAL(e2e_sender_next_announce(f.s, msg, sizeof msg, &len, topic,
		sizeof topic, g_now), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(rename(gone, f.t.dir), 0);
	/* Asked for: e2e_sender_rotate_later, done by the next tick. */
	e0 = h.epoch;
	g_now += 2000;
	CU_ASSERT_EQUAL(e2e_sender_rotate_later(f.s, "sensors/b"), E2E_OK);
	CU_ASSERT_EQUAL(e2e_sender_rotate_later(f.s, "sensors/#"), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_sender_tick_wanted(f.s), 1);
	CU_ASSERT_EQUAL_FATAL(e2e_sender_tick_plan(f.s, g_now, &t), E2E_OK);
	CU_ASSERT_EQUAL(e2e_sender_tick_run(t), E2E_OK);
	CU_ASSERT_EQUAL(e2e_sender_tick_apply(f.s, t), E2E_OK);
	CU_ASSERT_EQUAL(seal_nowait(&f, "sensors/a", &h), E2E_OK);
	CU_ASSERT_NOT_EQUAL(h.epoch, e0);
	/* A planned tick may be dropped. */
	CU_ASSERT_EQUAL_FATAL(e2e_sender_tick_plan(f.s, g_now, &t), E2E_OK);
	e2e_sender_tick_free(t);
	sfx_free(&f);
	free(io);
}

#ifdef E2E_FAILPOINTS
/* A fresh thread: the guard marks a thread at its first seal_nowait. */
static void *guarded_seal(void *arg)
{
	struct sfx *f = arg;
	uint8_t env[ENV_CAP];
	size_t len = 0;

	if (seal_nowait(f, "sensors/a", NULL) != E2E_ERR_RESERVE)
		return (void *)(intptr_t)2;
	return (void *)(intptr_t)(e2e_sender_seal(f->s, env, sizeof env, &len, "sensors/a", 9,
		(const uint8_t *)"x", 1) == E2E_OK ? 0 : 3);
}
#endif

/*
 * The file guard of test builds (E2E_FILEIO_GUARD=1): once a thread sealed
 * with e2e_sender_seal_nowait, any state file I/O on it ends the process
 * with 87. In a child: a seal that does its file work inline is caught;
 * without the variable the same seal succeeds.
 */
static void test_fileio_guard(void)
{
#ifdef E2E_FAILPOINTS
	for (int guarded = 0; guarded <= 1; guarded++) {
		struct sfx f;
		int status = 0;
		pid_t pid;

		sfx_init(&f);
		pid = fork();
		CU_ASSERT_FATAL(pid >= 0);
		if (pid == 0) {
			pthread_t th;
			void *rc = (void *)(intptr_t)4;

			if (guarded)
				setenv("E2E_FILEIO_GUARD", "1", 1);
			if (pthread_create(&th, NULL, guarded_seal, &f) == 0)
				pthread_join(th, &rc);
			_exit((int)(intptr_t)rc);
		}
		CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
		TU_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == (guarded ? 87 : 0),
			"guard %d: child status %d", guarded, status);
		sfx_free(&f);
	}
#endif
}

static void test_stress_ceiling_never_decreases(void)
{
	stress(0);
}

static void test_stress_real_keytool(void)
{
	if (!getenv("E2E_KEYTOOL")) {
		fprintf(stderr, "(E2E_KEYTOOL not set: skipped) ");
		return;
	}
	stress(1);
}

/* ---- Registration ------------------------------------------------------ */

static const struct tu_test safety_tests[] = {
	{ "Safety: NULL arguments, missing identity, readable keys, short buffer", test_safety },
	{ NULL, NULL },
};

static const struct tu_test sender_tests[] = {
	{ "Open: epoch 1 keys for every scope, keys file 0600", test_open_creates_keys },
	{ "Seal: topics map to scopes (header scope, key)", test_seal_maps_scopes },
	{ "Seal: a will takes no seq of its topic (no false GAP)", test_will_is_no_gap },
	{ "Rotate: turning sign on (or off) for a scope rotates it", test_sign_on_rotates },
	{ "Key service: a map too large for a delivery is refused", test_map_too_large },
	{ "Seal: refuses control and reply topics", test_seal_refuses_control_topics },
	{ "Key service: enrolled delivery, refusals", test_key_service },
	{ "Rotate: new epoch, announcement, grace keys, pruning", test_rotate },
	{ "Rotate: by message count and by age", test_rotate_by_count_and_age },
	{ "Tick: reloads keys and enrolled rewritten on disk", test_reload },
	{ "Summaries: per interval, covering every sealed envelope", test_summaries },
	{ "Short buffers keep queued announcements and summaries", test_short_buffers_keep_queue },
	{ "Owner: a second sender on the directory is refused, naming the pid",
		test_second_owner_refused },
	{ "Txstate: a key without a record never restarts at counter 0",
		test_missing_record_not_restarted },
	{ "Core: seal_nowait needs no files, stops at the durable ceiling",
		test_nowait_core_needs_no_files },
	{ "Core: a threaded caller's tick never waits for e2e-keytool's lock",
		test_tick_never_waits_for_keytool },
	{ "Core: a slow fsync (failpoint builds) does not stall sealing",
		test_slow_fsync_does_not_stall_sealing },
	{ "Core: tick plan/run/apply: no file in plan and apply, usage rotated ahead",
		test_tick_plan_run_apply },
	{ "Core: the file guard (failpoint builds) catches file I/O on the sealing thread",
		test_fileio_guard },
	{ "Stress: keytool rotations never lower a reserved ceiling",
		test_stress_ceiling_never_decreases },
	{ "Stress: e2e-keytool rotate processes never lower a reserved ceiling",
		test_stress_real_keytool },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "sender safety", safety_tests },
		{ "sender", sender_tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
