/*
 * Keys ahead of rotation (SPEC 11.5): the sender makes the next key before
 * a scheduled rotation (by age at its lead, by use at 7/8 of the limit),
 * keeps it in its keys file across a restart, delivers it flagged NEXT with
 * the time it becomes current and a refresh window, switches to it on time
 * and discards it at a forced rotation; a receiver installs it, opens under
 * it at once, and retires the previous epoch only once it is promoted.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "testcu.h"
#include "e2e/txstate.h"

#define T0 1700000000000ULL
#define EP(n) ((uint32_t)(T0 / 1000U) + (n) - 1U)
#define GRACE 60000ULL
#define AGE 4000ULL
#define LEAD 2000ULL
#define ENV_CAP 512U
#define PATH_CAP 4096U

static uint64_t g_now;

static uint64_t fake_clock(void)
{
	return g_now;
}

struct nfx {
	struct tu_tmp t;
	char p_keys[PATH_CAP];
	struct e2e_identity id, bob;
	struct e2e_sender_config cfg;
	struct e2e_sender *s;
	char err[512];
};

static void write_text(const char *dir, const char *name, const char *text, mode_t mode)
{
	char path[PATH_CAP];

	tu_path(path, sizeof path, dir, name);
	CU_ASSERT_EQUAL_FATAL(tu_write_file(path, text, strlen(text), mode), 0);
}

static void nfx_init(struct nfx *f, uint64_t age, uint64_t lead, uint64_t max_messages)
{
	char line[256], text[512];

	memset(f, 0, sizeof *f);
	g_now = T0;
	tu_tmp_open(&f->t, "identity.key");
	tu_path(f->p_keys, sizeof f->p_keys, f->t.dir, "keys");
	tu_identity(&f->id);
	tu_identity(&f->bob);
	CU_ASSERT_EQUAL_FATAL(e2e_identity_save(&f->id, f->t.path, 0), E2E_OK);
	write_text(f->t.dir, "scopes", "scope 1 telemetry sensors/#\n", 0644);
	CU_ASSERT_EQUAL_FATAL(e2e_public_format(line, sizeof line, &f->bob.pub, NULL), E2E_OK);
	snprintf(text, sizeof text, "bob telemetry %s\n", line);
	write_text(f->t.dir, "enrolled", text, 0644);
	write_text(f->t.dir, "keys", "", 0600);
	f->cfg.dir = f->t.dir;
	f->cfg.clock_ms = fake_clock;
	f->cfg.grace_ms = GRACE;
	f->cfg.reserve_block = 4;
	f->cfg.max_age_ms = age;
	f->cfg.rotate_lead_ms = lead;
	f->cfg.max_messages = max_messages;
	f->cfg.no_summaries = 1;
	f->cfg.err = f->err;
	f->cfg.err_len = sizeof f->err;
	CU_ASSERT_EQUAL_FATAL(e2e_sender_open(&f->s, &f->cfg), E2E_OK);
}

static void nfx_free(struct nfx *f)
{
	e2e_sender_close(f->s);
	e2e_identity_destroy(&f->id);
	e2e_identity_destroy(&f->bob);
	tu_tmp_close(&f->t);
}

static void tick(struct nfx *f, uint64_t now)
{
	g_now = now;
	CU_ASSERT_EQUAL(e2e_sender_tick(f->s, now), E2E_OK);
}

static size_t seal(struct nfx *f, uint8_t env[ENV_CAP], struct e2e_header *h)
{
	size_t len = 0;
	enum e2e_status st = e2e_sender_seal(f->s, env, ENV_CAP, &len, "sensors/a", 9,
		(const uint8_t *)"v", 1);

	TU_CHECK(st == E2E_OK, "seal: %s", e2e_strerror(st));
	CU_ASSERT_EQUAL_FATAL(st, E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_header_parse(h, env, len), E2E_OK);
	return len;
}

/* bob's key request answered: a DELIVERY, asserted. */
static void ask(struct nfx *f, struct e2e_ctl *m)
{
	struct tu_request r;
	static uint8_t out[E2E_CTL_DELIVERY_MAX];
	size_t len = 0;
	char reply[E2E_CTL_REPLY_MAX + 1];

	tu_request(&r, &f->bob, e2e_sender_self(f->s), NULL, 0, g_now);
	CU_ASSERT_EQUAL_FATAL(e2e_sender_control(f->s, r.msg, r.len, E2E_CTL_TOPIC_DEFAULT, out,
		sizeof out, &len, reply, g_now), E2E_OK);
	memset(m, 0, sizeof *m);
	CU_ASSERT_EQUAL_FATAL(tu_answer(m, &r, out, len, reply, e2e_sender_public(f->s)),
		E2E_CTL_DELIVERY);
}

static uint64_t txstate_ceiling(struct nfx *f, uint32_t epoch)
{
	char path[PATH_CAP];
	struct e2e_keyid id = { e2e_sender_self(f->s), 1, epoch };
	uint64_t ceiling = 0;

	tu_path(path, sizeof path, f->t.dir, "txstate");
	CU_ASSERT_EQUAL(e2e_txstate_get(path, &id, &ceiling), E2E_OK);
	return ceiling;
}

static const struct e2e_ctl_key *next_of(const struct e2e_ctl *m)
{
	for (uint8_t i = 0; i < m->nkeys; i++)
		if (m->keys[i].flags & E2E_KEY_NEXT)
			return &m->keys[i];
	return NULL;
}

static int announced(struct nfx *f, uint32_t *epoch)
{
	uint8_t out[E2E_CTL_MSG_MAX];
	char topic[128];
	size_t len = 0;
	struct e2e_ctl m;

	if (e2e_sender_next_announce(f->s, out, sizeof out, &len, topic, sizeof topic,
		    g_now) != E2E_OK)
		return 0;
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(&m, out, len, topic, &f->id.pub), E2E_OK);
	*epoch = m.epoch;
	return 1;
}

/* ---- Keystore ------------------------------------------------------------ */

static void test_keystore_ahead(void)
{
	struct e2e_keystore *ks = NULL, *back = NULL;
	struct tu_tmp t;
	const struct e2e_keystore_entry *e;
	uint8_t key2[E2E_KEY_BYTES];
	uint32_t e2 = 0, e3 = 0, e4 = 0, got = 0;

	tu_tmp_open(&t, "keys");
	CU_ASSERT_EQUAL_FATAL(e2e_keystore_create(&ks, 16), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keystore_add_ahead(NULL, 1, T0, T0, 0, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keystore_add_ahead(ks, 1, T0, T0, E2E_KEYSTORE_NEXT, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keystore_ensure(ks, 1, T0, NULL), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_keystore_add_ahead(ks, 1, T0 + 10, T0 + AGE, E2E_KEYSTORE_SIGNED,
		&e2), E2E_OK);
	CU_ASSERT_EQUAL(e2, EP(2));
	/* Made ahead: not current, the next one. */
	CU_ASSERT_EQUAL(e2e_keystore_current(ks, 1)->epoch, EP(1));
	e = e2e_keystore_next(ks, 1);
	CU_ASSERT_FATAL(e != NULL);
	CU_ASSERT(e->epoch == e2 && e->created_ms == T0 + AGE &&
		e->flags == (E2E_KEYSTORE_NEXT | E2E_KEYSTORE_SIGNED));
	memcpy(key2, e->key, sizeof key2);
	/* A restart reads the same key ahead back. */
	CU_ASSERT_EQUAL_FATAL(e2e_keystore_save(ks, t.path), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_keystore_load(&back, t.path, 0, NULL, 0), E2E_OK);
	e = e2e_keystore_next(back, 1);
	CU_ASSERT(e && e->epoch == e2 && e->created_ms == T0 + AGE &&
		!memcmp(e->key, key2, sizeof key2) && (e->flags & E2E_KEYSTORE_SIGNED));
	CU_ASSERT_EQUAL(e2e_keystore_current(back, 1)->epoch, EP(1));
	e2e_keystore_free(back);
	/* The scheduled switch: on time, it keeps its time as its start. */
	CU_ASSERT_EQUAL(e2e_keystore_advance(ks, 1, T0 + AGE + 300, GRACE, &got), E2E_OK);
	CU_ASSERT_EQUAL(got, e2);
	e = e2e_keystore_current(ks, 1);
	CU_ASSERT(e && e->epoch == e2 && e->created_ms == T0 + AGE && !(e->flags & E2E_KEYSTORE_NEXT));
	CU_ASSERT_EQUAL(e2e_keystore_find(ks, 1, EP(1))->not_after_ms, T0 + AGE + 300 + GRACE);
	CU_ASSERT(e2e_keystore_next(ks, 1) == NULL);
	/* A forced rotation discards what was made ahead, and goes above it. */
	CU_ASSERT_EQUAL(e2e_keystore_add_ahead(ks, 1, T0 + AGE, 2 * AGE, 0, &e3), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keystore_rotate(ks, 1, T0 + AGE, GRACE, &e4), E2E_OK);
	CU_ASSERT(e4 > e3 && e3 > e2);
	CU_ASSERT(e2e_keystore_find(ks, 1, e3) == NULL);
	CU_ASSERT(e2e_keystore_next(ks, 1) == NULL);
	CU_ASSERT_EQUAL(e2e_keystore_current(ks, 1)->epoch, e4);
	/* With no key ahead, advance is a rotation. */
	CU_ASSERT_EQUAL(e2e_keystore_advance(ks, 1, T0 + AGE, GRACE, &got), E2E_OK);
	CU_ASSERT(got > e4);
	/* A missing current key is replaced by the key made ahead. */
	e2e_keystore_free(ks);
	CU_ASSERT_EQUAL_FATAL(e2e_keystore_create(&ks, 4), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keystore_add_ahead(ks, 2, T0, T0 + 5, 0, &e2), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keystore_ensure(ks, 2, T0 + 9, NULL), E2E_OK);
	CU_ASSERT(e2e_keystore_current(ks, 2) && e2e_keystore_current(ks, 2)->epoch == e2);
	e2e_keystore_free(ks);
	tu_tmp_close(&t);
}

/* ---- Sender -------------------------------------------------------------- */

static void test_sender_by_age(void)
{
	struct nfx f;
	struct e2e_ctl m;
	struct e2e_header h;
	const struct e2e_ctl_key *nx;
	uint8_t env[ENV_CAP], key[E2E_KEY_BYTES];
	uint32_t next_epoch, ep = 0;

	nfx_init(&f, AGE, LEAD, 0);
	tick(&f, T0 + AGE - LEAD - 1);
	ask(&f, &m);
	CU_ASSERT(m.nkeys == 1 && next_of(&m) == NULL);
	/* Not made yet: ask again in [due - lead/2, due - lead/4]. */
	CU_ASSERT(m.refresh_from_ms == T0 + AGE - LEAD / 2 && m.refresh_by_ms == T0 + AGE - LEAD / 4);
	e2e_ctl_wipe(&m);

	tick(&f, T0 + AGE - LEAD);
	ask(&f, &m);
	nx = next_of(&m);
	CU_ASSERT_FATAL(m.nkeys == 2 && nx != NULL);
	CU_ASSERT(nx->epoch > EP(1) && nx->not_after_ms == T0 + AGE && nx->scope == 1);
	CU_ASSERT(m.refresh_from_ms == T0 + 2 * AGE - LEAD / 2);
	next_epoch = nx->epoch;
	memcpy(key, nx->key, sizeof key);
	e2e_ctl_wipe(&m);
	CU_ASSERT_EQUAL(announced(&f, &ep), 0);   /* made ahead: nothing to announce */

	/* A restart keeps the same key ahead (the keys file says "next"). */
	e2e_sender_close(f.s);
	f.s = NULL;
	g_now = T0 + AGE - LEAD + 500;
	CU_ASSERT_EQUAL_FATAL(e2e_sender_open(&f.s, &f.cfg), E2E_OK);
	tick(&f, g_now);
	ask(&f, &m);
	nx = next_of(&m);
	CU_ASSERT_FATAL(nx != NULL);
	CU_ASSERT(nx->epoch == next_epoch && !memcmp(nx->key, key, sizeof key));
	CU_ASSERT(m.nkeys == 2);
	e2e_ctl_wipe(&m);
	(void)seal(&f, env, &h);
	CU_ASSERT_EQUAL(h.epoch, EP(1));

	tick(&f, T0 + AGE - 1);
	CU_ASSERT_EQUAL(announced(&f, &ep), 0);
	/* Its first counter block is durable before its switch ... */
	CU_ASSERT_EQUAL(txstate_ceiling(&f, next_epoch), 4);
	tick(&f, T0 + AGE);
	/* A switch by age is not announced (SPEC 11.5): its subscribers hold
	 * the key, and the ANNOUNCE's fan-out would delay its first envelope. */
	CU_ASSERT_EQUAL(announced(&f, &ep), 0);
	{
		/* ... but reported, for the caller's log (scope 0, '#', too). */
		uint8_t sc = 0;
		uint32_t sep = 0;
		int n = 0, one = 0;

		while (n < 4 && e2e_sender_next_switch(f.s, &sc, &sep) == E2E_OK) {
			n++;
			one += sc == 1 && sep == next_epoch;
		}
		CU_ASSERT(n == 2 && one == 1);
	}
	(void)seal(&f, env, &h);
	CU_ASSERT_EQUAL(h.epoch, next_epoch);
	/* ... by the sender before its restart: this one continues above it. */
	CU_ASSERT_EQUAL(h.counter, 5);
	CU_ASSERT_EQUAL(txstate_ceiling(&f, next_epoch), 8);
	ask(&f, &m);
	/* Old key in its grace period, the switched one current; the key
	 * after it is due at 2 x AGE, made at 2 x AGE - LEAD: not yet. */
	CU_ASSERT(tu_ctl_key(&m, 1, EP(1)) && tu_ctl_key(&m, 1, EP(1))->not_after_ms ==
		T0 + AGE + GRACE);
	CU_ASSERT(tu_ctl_key(&m, 1, next_epoch) && tu_ctl_key(&m, 1, next_epoch)->flags == 0 &&
		!memcmp(tu_ctl_key(&m, 1, next_epoch)->key, key, sizeof key));
	CU_ASSERT(next_of(&m) == NULL && m.refresh_from_ms == T0 + 2 * AGE - LEAD / 2);
	e2e_ctl_wipe(&m);
	tick(&f, T0 + 2 * AGE - LEAD);
	ask(&f, &m);
	nx = next_of(&m);
	CU_ASSERT_FATAL(nx && nx->epoch > next_epoch && nx->not_after_ms == T0 + 2 * AGE);
	next_epoch = nx->epoch;
	e2e_ctl_wipe(&m);
	/* Without a restart the block reserved ahead is used from counter 1:
	 * the switch writes no txstate while seals wait. */
	CU_ASSERT_EQUAL(txstate_ceiling(&f, next_epoch), 4);
	tick(&f, T0 + 2 * AGE);
	(void)seal(&f, env, &h);
	CU_ASSERT(h.epoch == next_epoch && h.counter == 1);
	CU_ASSERT_EQUAL(txstate_ceiling(&f, next_epoch), 4);
	nfx_free(&f);
}

static void test_sender_lead_spans_periods(void)
{
	struct nfx f;
	struct e2e_ctl m;
	unsigned n = 0;
	uint64_t t = 0;

	/* A lead of 3.5 periods: three keys ahead, due every AGE. */
	nfx_init(&f, AGE, 7 * AGE / 2, 0);
	tick(&f, T0 + 1);
	ask(&f, &m);
	for (uint8_t i = 0; i < m.nkeys; i++) {
		if (!(m.keys[i].flags & E2E_KEY_NEXT))
			continue;
		n++;
		CU_ASSERT(m.keys[i].not_after_ms == T0 + n * AGE && m.keys[i].not_after_ms > t);
		t = m.keys[i].not_after_ms;
	}
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT(m.refresh_from_ms == T0 + 4 * AGE - 7 * AGE / 4);
	e2e_ctl_wipe(&m);
	nfx_free(&f);
}

static void test_sender_by_use(void)
{
	struct nfx f;
	struct e2e_ctl m;
	struct e2e_header h;
	const struct e2e_ctl_key *nx;
	uint8_t env[ENV_CAP];
	uint32_t next_epoch;

	/* Limit 64, blocks of 4: the low-water mark W = min(64/2, 4 blocks)
	 * = 16; the key ahead is made once fewer than 2W = 32 are left. */
	nfx_init(&f, 0, 0, 64);
	for (int i = 0; i < 31; i++)
		(void)seal(&f, env, &h);
	tick(&f, T0 + 100);
	ask(&f, &m);
	CU_ASSERT(next_of(&m) == NULL && m.refresh_from_ms == 0 && m.refresh_by_ms == 0);
	e2e_ctl_wipe(&m);
	(void)seal(&f, env, &h);   /* the 32nd: 32 left = 2W */
	tick(&f, T0 + 200);
	ask(&f, &m);
	nx = next_of(&m);
	CU_ASSERT_FATAL(nx != NULL);
	CU_ASSERT(nx->not_after_ms == 0);   /* no time: by use */
	next_epoch = nx->epoch;
	e2e_ctl_wipe(&m);
	/* Single-threaded (no tick meanwhile): the switch comes at exhaustion;
	 * a publisher's ticker switches at W left (proxy-slow-disk). */
	for (int i = 32; i < 64; i++)
		(void)seal(&f, env, &h);
	CU_ASSERT_EQUAL(h.epoch, EP(1));
	(void)seal(&f, env, &h);   /* the 65th: the key made ahead */
	CU_ASSERT_EQUAL(h.epoch, next_epoch);
	nfx_free(&f);
}

static void test_forced_rotation_discards(void)
{
	struct nfx f;
	struct e2e_ctl m;
	uint32_t ahead, ep = 0;

	nfx_init(&f, AGE, LEAD, 0);
	tick(&f, T0 + AGE - LEAD);
	ask(&f, &m);
	CU_ASSERT_FATAL(next_of(&m) != NULL);
	ahead = next_of(&m)->epoch;
	e2e_ctl_wipe(&m);
	/* The operator's rotation (keytool, revocation): above the key ahead. */
	CU_ASSERT_EQUAL(e2e_sender_rotate(f.s, 1, g_now), E2E_OK);
	CU_ASSERT(announced(&f, &ep) == 1 && ep > ahead);
	ask(&f, &m);
	CU_ASSERT(tu_ctl_key(&m, 1, ahead) == NULL);
	CU_ASSERT(tu_ctl_key(&m, 1, ep) && !(tu_ctl_key(&m, 1, ep)->flags & E2E_KEY_NEXT));
	e2e_ctl_wipe(&m);
	nfx_free(&f);
}

/* ---- Receiver ------------------------------------------------------------ */

/* Install a delivery as libe2e-client does. */
static void install(struct e2e_keyring *kr, uint32_t sender, const struct e2e_ctl *m)
{
	for (uint8_t i = 0; i < m->nkeys; i++) {
		struct e2e_keyid id = { sender, m->keys[i].scope, m->keys[i].epoch };
		int next = (m->keys[i].flags & E2E_KEY_NEXT) != 0;

		CU_ASSERT_EQUAL(e2e_keyring_add_flags(kr, &id, m->keys[i].key,
			next ? 0 : m->keys[i].not_after_ms, next ? E2E_KEYRING_NEXT : 0), E2E_OK);
	}
}

static void test_receiver_switches_without_request(void)
{
	struct nfx f;
	struct e2e_ctl m;
	struct e2e_header h;
	struct e2e_keyring *kr = NULL;
	struct e2e_rx *rx = NULL;
	struct e2e_rx_result res;
	uint8_t old_env[ENV_CAP], env[ENV_CAP], pt[ENV_CAP], fl = 0;
	size_t old_len, len;
	uint32_t self, next_epoch;
	struct e2e_keyid cur, nid;

	nfx_init(&f, AGE, LEAD, 0);
	self = e2e_sender_self(f.s);
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_create(&kr, 16), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_set_single_scope(kr, self, 1), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_rx_create(&rx, NULL), E2E_OK);
	tick(&f, T0 + AGE - LEAD);
	ask(&f, &m);
	CU_ASSERT_FATAL(next_of(&m) != NULL);
	next_epoch = next_of(&m)->epoch;
	install(kr, self, &m);
	e2e_ctl_wipe(&m);
	cur = (struct e2e_keyid){ self, 1, EP(1) };
	nid = (struct e2e_keyid){ self, 1, next_epoch };
	/* Holding the key ahead retires nothing. */
	CU_ASSERT(e2e_keyring_lookup(kr, &cur, g_now, &fl) && !(fl & E2E_KEYRING_RETIRED));
	CU_ASSERT(e2e_keyring_lookup(kr, &nid, g_now, &fl) && (fl & E2E_KEYRING_NEXT));
	old_len = seal(&f, old_env, &h);

	tick(&f, T0 + AGE);
	len = seal(&f, env, &h);
	CU_ASSERT_EQUAL(h.epoch, next_epoch);
	/* The first message of the new epoch opens at once: no request. */
	CU_ASSERT_EQUAL(e2e_rx_open(rx, kr, pt, sizeof pt, &res, (const uint8_t *)"sensors/a", 9,
		env, len, g_now), E2E_OK);
	CU_ASSERT_EQUAL(res.verdict, E2E_V_OK);
	CU_ASSERT(res.flags & E2E_RX_NEXT);
	CU_ASSERT(res.pt_len == 1 && pt[0] == 'v');
	/* Its replay is caught as always. */
	CU_ASSERT_EQUAL(e2e_rx_open(rx, kr, pt, sizeof pt, &res, (const uint8_t *)"sensors/a", 9,
		env, len, g_now), E2E_OK);
	CU_ASSERT_EQUAL(res.verdict, E2E_V_DUPLICATE);
	/* Promoted: from now on the old epoch is retired (SPEC 11.5). */
	CU_ASSERT_EQUAL(e2e_keyring_promote(kr, &nid), E2E_OK);
	CU_ASSERT(e2e_keyring_lookup(kr, &nid, g_now, &fl) && !(fl & E2E_KEYRING_NEXT));
	CU_ASSERT(e2e_keyring_lookup(kr, &cur, g_now, &fl) && (fl & E2E_KEYRING_RETIRED));
	CU_ASSERT_EQUAL(e2e_rx_open(rx, kr, pt, sizeof pt, &res, (const uint8_t *)"sensors/a", 9,
		old_env, old_len, g_now), E2E_OK);
	CU_ASSERT(res.verdict == E2E_V_UNKNOWN_KEY && (res.flags & E2E_RX_RETIRED));
	e2e_rx_destroy(rx);
	e2e_keyring_destroy(kr);
	nfx_free(&f);
}

static void test_keyring_next_flags(void)
{
	struct e2e_keyring *kr = NULL;
	struct e2e_keyid a = { 7, 1, 10 }, b = { 7, 1, 11 }, c = { 7, 1, 12 };
	uint8_t k1[E2E_KEY_BYTES], k2[E2E_KEY_BYTES], k3[E2E_KEY_BYTES], fl = 0;
	uint32_t keep[] = { 10, 12 };

	randombytes_buf(k1, sizeof k1);
	randombytes_buf(k2, sizeof k2);
	randombytes_buf(k3, sizeof k3);
	CU_ASSERT_EQUAL(e2e_keyring_promote(NULL, &a), E2E_ERR_ARG);
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_create(&kr, 8), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_promote(kr, &a), E2E_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(e2e_keyring_add_flags(kr, &a, k1, 0, 0), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_add_flags(kr, &b, k2, 0, E2E_KEYRING_NEXT), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_add_flags(kr, &c, k3, 0, E2E_KEYRING_NEXT), E2E_OK);
	/* A different key under an epoch held ahead is still refused. */
	CU_ASSERT_EQUAL(e2e_keyring_add_flags(kr, &b, k1, 0, E2E_KEYRING_NEXT), E2E_ERR_EXISTS);
	/* Delivered again as current: promoted; never NEXT again after. */
	CU_ASSERT_EQUAL(e2e_keyring_add_flags(kr, &b, k2, 0, 0), E2E_OK);
	CU_ASSERT(e2e_keyring_lookup(kr, &b, 0, &fl) && !(fl & E2E_KEYRING_NEXT));
	CU_ASSERT(e2e_keyring_lookup(kr, &a, 0, &fl) && (fl & E2E_KEYRING_RETIRED));
	CU_ASSERT_EQUAL(e2e_keyring_add_flags(kr, &b, k2, 0, E2E_KEYRING_NEXT), E2E_OK);
	CU_ASSERT(e2e_keyring_lookup(kr, &b, 0, &fl) && !(fl & E2E_KEYRING_NEXT));
	/* A key ahead a newer delivery no longer lists is dropped; kept ones stay. */
	CU_ASSERT_EQUAL(e2e_keyring_prune_next(kr, 7, 1, keep, 2), 0);
	CU_ASSERT_EQUAL(e2e_keyring_prune_next(kr, 7, 1, keep, 1), 1);
	CU_ASSERT(e2e_keyring_find(kr, &c, 0) == NULL);
	CU_ASSERT(e2e_keyring_find(kr, &a, 0) != NULL && e2e_keyring_find(kr, &b, 0) != NULL);
	/* retire_next keeps it instead, retired until the deadline (a revoked
	 * member's envelopes under it wait for a summary: FORGED), then gone. */
	CU_ASSERT_EQUAL(e2e_keyring_add_flags(kr, &c, k3, 0, E2E_KEYRING_NEXT), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_retire_next(kr, 7, 1, keep, 2, 5000), 0);
	CU_ASSERT(e2e_keyring_lookup(kr, &c, 0, &fl) && (fl & E2E_KEYRING_NEXT));
	CU_ASSERT_EQUAL(e2e_keyring_retire_next(kr, 7, 1, keep, 1, 5000), 1);
	CU_ASSERT(e2e_keyring_lookup(kr, &c, 4000, &fl) && !(fl & E2E_KEYRING_NEXT) &&
		(fl & E2E_KEYRING_RETIRED));
	CU_ASSERT(e2e_keyring_lookup(kr, &c, 5001, &fl) == NULL);
	CU_ASSERT_EQUAL(e2e_keyring_retire_next(kr, 7, 1, keep, 1, 5000), 0);   /* no longer NEXT */
	e2e_keyring_destroy(kr);
}

static const struct tu_test tests[] = {
	{ "Keystore: keys ahead kept in the file, advanced to, discarded by rotate",
		test_keystore_ahead },
	{ "Sender: by age, made at its lead, delivered NEXT with its time, kept across a "
		"restart, switched to on time", test_sender_by_age },
	{ "Sender: a lead of several periods makes several keys ahead", test_sender_lead_spans_periods },
	{ "Sender: by use, made 2 low-water spans before the limit, switched to", test_sender_by_use },
	{ "Sender: a forced rotation discards keys ahead, goes above them", test_forced_rotation_discards },
	{ "Receiver: opens under the key ahead without a request; retires on promotion",
		test_receiver_switches_without_request },
	{ "Keyring: NEXT flag kept, cleared by promotion or delivery, pruned", test_keyring_next_flags },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "keys ahead of rotation", tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
