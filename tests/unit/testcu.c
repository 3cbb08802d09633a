/* CUnit runner, vector loading and fixtures: see testcu.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <sodium.h>

#include "testcu.h"

int tu_main(const struct tu_suite *suites)
{
	unsigned failures;
	int ret = 1;

	if (e2e_init() != E2E_OK) {
		fprintf(stderr, "e2e_init failed\n");
		return 1;
	}
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	for (const struct tu_suite *s = suites; s->name; s++) {
		CU_pSuite cs = CU_add_suite(s->name, NULL, NULL);

		if (!cs)
			goto out;
		for (const struct tu_test *t = s->tests; t->name; t++) {
			if (!CU_add_test(cs, t->name, t->fn))
				goto out;
		}
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	if (CU_basic_run_tests() != CUE_SUCCESS)
		goto out;
	failures = CU_get_number_of_failures();
	/* A suite that ran no assertion at all proves nothing. */
	ret = failures != 0 || CU_get_number_of_asserts() == 0;
out:
	CU_cleanup_registry();
	return ret;
}

void tu_check(int ok, const char *file, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* CUnit copies the condition text into its failure record. */
	CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, (unsigned)line, msg, file, "", CU_FALSE);
}

void tu_assert_verdict(enum e2e_verdict actual, enum e2e_verdict expected,
	const char *file, int line)
{
	tu_check(actual == expected, file, line, "verdict %s, expected %s",
		tu_verdict_str(actual), tu_verdict_str(expected));
}

json_t *tu_vectors(const char *file)
{
	const char *dir = getenv("E2E_VECTORS");
	char path[4096];
	json_error_t err;
	json_t *root;

	if (!dir) {
		CU_FAIL("E2E_VECTORS is not set (run through meson test)");
		return NULL;
	}
	tu_path(path, sizeof path, dir, file);
	root = json_load_file(path, 0, &err);
	TU_CHECK(root != NULL, "cannot load %s: %s (line %d)", path, err.text, err.line);
	return root;
}

json_t *tu_jarray(json_t *root, const char *key)
{
	json_t *a = json_is_array(root) ? root : json_object_get(root, key);

	TU_CHECK(json_is_array(a) && json_array_size(a) > 0, "vector array \"%s\" missing or empty", key);
	return json_is_array(a) ? a : NULL;
}

void tu_each_vector(const char *file, const char *key, void (*fn)(const json_t *v))
{
	json_t *root = tu_vectors(file);
	json_t *arr = root ? tu_jarray(root, key) : NULL;
	json_t *v;
	size_t i;

	json_array_foreach(arr, i, v)
		fn(v);
	json_decref(root);
}

void tu_tmp_open(struct tu_tmp *t, const char *name)
{
	t->dir = tu_tmpdir();
	CU_ASSERT_PTR_NOT_NULL_FATAL(t->dir);
	tu_path(t->path, sizeof t->path, t->dir, name);
}

void tu_tmp_close(struct tu_tmp *t)
{
	tu_rmtree(t->dir);
	free(t->dir);
	t->dir = NULL;
}

const char *tu_jstr(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	TU_CHECK(json_is_string(v), "vector field \"%s\" missing or not a string", key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int tu_jhex(const json_t *o, const char *key, uint8_t *out, size_t cap, size_t *len)
{
	const char *s = tu_jstr(o, key);
	int ok = s && tu_unhex(out, cap, len, s) == 0;

	TU_CHECK(ok, "vector field \"%s\" is not hex of at most %zu bytes", key, cap);
	return ok ? 0 : -1;
}

int tu_juint_value(const json_t *v, uint64_t *out)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	/* Values beyond 2^63 travel as decimal strings. */
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;

		if (*s >= '0' && *s <= '9') {
			*out = strtoull(s, &end, 0);
			return *end ? -1 : 0;
		}
	}
	return -1;
}

int tu_juint(const json_t *o, const char *key, uint64_t *v)
{
	int ok = tu_juint_value(json_object_get(o, key), v) == 0;

	TU_CHECK(ok, "vector field \"%s\" missing or not an unsigned integer", key);
	return ok ? 0 : -1;
}

int tu_jopt_uint(const json_t *o, const char *key, uint64_t *v)
{
	const json_t *j = json_object_get(o, key);

	if (!j || json_is_null(j))
		return 0;
	if (tu_juint_value(j, v)) {
		TU_CHECK(0, "vector field \"%s\" is not an unsigned integer", key);
		return -1;
	}
	return 1;
}

int tu_jverdict(const json_t *o, const char *key, enum e2e_verdict *v)
{
	const char *s = tu_jstr(o, key);
	int ok = s && tu_verdict_parse(s, v) == 0;

	TU_CHECK(ok, "vector field \"%s\" is not a verdict name", key);
	return ok ? 0 : -1;
}

size_t tu_seal(uint8_t *out, size_t cap, const struct e2e_header *h,
	const uint8_t key[E2E_KEY_BYTES], const char *topic, const uint8_t *pt, size_t pt_len)
{
	size_t n = 0;
	enum e2e_status st = e2e_envelope_seal(out, cap, &n, h, key,
		(const uint8_t *)topic, strlen(topic), pt, pt_len);

	TU_CHECK(st == E2E_OK, "e2e_envelope_seal: %s", e2e_strerror(st));
	return st == E2E_OK ? n : 0;
}

struct e2e_keyring *tu_keyring_with(const struct e2e_keyid *id, const uint8_t key[E2E_KEY_BYTES])
{
	struct e2e_keyring *kr = NULL;

	CU_ASSERT_EQUAL_FATAL(e2e_keyring_create(&kr, 8), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_add(kr, id, key, 0), E2E_OK);
	/* Its sender seals every topic ('#') under this scope (SPEC 5.4 step 2). */
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_set_single_scope(kr, id->sender, id->scope), E2E_OK);
	return kr;
}

struct e2e_rx *tu_rx_new(uint32_t max_streams, uint32_t window)
{
	struct e2e_rx_config cfg;
	struct e2e_rx *rx = NULL;

	memset(&cfg, 0, sizeof cfg);
	cfg.max_streams = max_streams;
	cfg.window = window;
	CU_ASSERT_EQUAL_FATAL(e2e_rx_create(&rx, &cfg), E2E_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rx);
	return rx;
}

enum e2e_verdict tu_rx_open(struct e2e_rx *rx, const struct e2e_keyring *kr,
	struct e2e_rx_result *res, uint8_t *pt, size_t pt_cap,
	const char *topic, const uint8_t *env, size_t env_len)
{
	enum e2e_status st;

	memset(res, 0, sizeof *res);
	st = e2e_rx_open(rx, kr, pt, pt_cap, res, (const uint8_t *)topic, strlen(topic),
		env, env_len, 1000);
	TU_CHECK(st == E2E_OK, "e2e_rx_open on \"%s\": %s", topic, e2e_strerror(st));
	/* An impossible verdict value never matches an expected one. */
	return st == E2E_OK ? res->verdict : (enum e2e_verdict)99;
}

enum e2e_verdict tu_rx_open_confirmed(struct e2e_rx *rx, const struct e2e_keyring *kr,
	struct e2e_rx_result *res, uint8_t *pt, size_t pt_cap,
	const char *topic, const uint8_t *env, size_t env_len)
{
	enum e2e_status st;

	memset(res, 0, sizeof *res);
	st = e2e_rx_open_confirmed(rx, kr, pt, pt_cap, res, (const uint8_t *)topic,
		strlen(topic), env, env_len, 1000);
	TU_CHECK(st == E2E_OK, "e2e_rx_open_confirmed on \"%s\": %s", topic, e2e_strerror(st));
	return st == E2E_OK ? res->verdict : (enum e2e_verdict)99;
}

static const struct e2e_keyid fx_id = TU_FX_ID;

void tu_fx_init(struct tu_fx *f, uint32_t max_streams, uint32_t window)
{
	memset(f, 0, sizeof *f);
	tu_key(f->key, 0x21);
	f->kr = tu_keyring_with(&fx_id, f->key);
	f->rx = tu_rx_new(max_streams, window);
}

void tu_fx_free(struct tu_fx *f)
{
	e2e_rx_destroy(f->rx);
	e2e_keyring_destroy(f->kr);
	f->rx = NULL;
	f->kr = NULL;
}

size_t tu_fx_env(struct tu_fx *f, uint8_t env[TU_ENV_CAP], const char *topic, uint32_t run,
	uint32_t seq)
{
	struct e2e_header h = tu_header(fx_id.sender, fx_id.scope, fx_id.epoch, run,
		++f->counter, seq);
	char pt[64];
	int n = snprintf(pt, sizeof pt, "%s#%u", topic, seq);

	return tu_seal(env, TU_ENV_CAP, &h, f->key, topic, (const uint8_t *)pt, (size_t)n);
}

enum e2e_verdict tu_fx_open(struct tu_fx *f, const char *topic, const uint8_t *env, size_t len,
	struct e2e_rx_result *res)
{
	return tu_rx_open(f->rx, f->kr, res, f->pt, sizeof f->pt, topic, env, len);
}

enum e2e_verdict tu_fx_recv(struct tu_fx *f, const char *topic, uint32_t run, uint32_t seq,
	struct e2e_rx_result *res)
{
	uint8_t env[TU_ENV_CAP];
	size_t len = tu_fx_env(f, env, topic, run, seq);

	return tu_fx_open(f, topic, env, len, res);
}

void tu_fx_recv_range(struct tu_fx *f, const char *topic, uint32_t run, uint32_t from,
	uint32_t to)
{
	struct e2e_rx_result res;

	for (uint32_t s = from; s <= to; s++) {
		enum e2e_verdict v = tu_fx_recv(f, topic, run, s, &res);

		TU_CHECK(v == E2E_V_OK, "%s seq %u: %s", topic, s, tu_verdict_str(v));
	}
}

struct e2e_rx_stats tu_fx_stats(const struct tu_fx *f)
{
	struct e2e_rx_stats st;

	memset(&st, 0, sizeof st);
	e2e_rx_stats(f->rx, &st);
	return st;
}

void tu_identity(struct e2e_identity *id)
{
	CU_ASSERT_EQUAL_FATAL(e2e_identity_generate(id), E2E_OK);
}

void tu_identity_from_seed(struct e2e_identity *id, const uint8_t seed[32], const uint8_t *dh_sk)
{
	static const uint8_t any_dh[32] = { 1 };

	CU_ASSERT_EQUAL_FATAL(e2e_identity_from_secrets(id, seed, dh_sk ? dh_sk : any_dh), E2E_OK);
	/* Sign-only vectors were made with a zero X25519 public key. */
	if (!dh_sk)
		memset(id->pub.dh_pk, 0, sizeof id->pub.dh_pk);
}

void tu_identity_twin(struct e2e_identity *twin, const struct e2e_identity *of)
{
	uint8_t dh_sk[32];

	randombytes_buf(dh_sk, sizeof dh_sk);
	/* The first half of libsodium's Ed25519 secret key is the seed. */
	CU_ASSERT_EQUAL_FATAL(e2e_identity_from_secrets(twin, of->sign_sk, dh_sk), E2E_OK);
	sodium_memzero(dh_sk, sizeof dh_sk);
}

static const struct e2e_scope_rule tu_map_rules[] = { { 0, "#", 1 } };
const struct e2e_ctl_map TU_MAP = { 10000, 1, tu_map_rules, 0, 0 };
uint8_t tu_plain[E2E_CTL_PLAIN_MAX];

void tu_request(struct tu_request *r, const struct e2e_identity *who, uint32_t target,
	const struct e2e_ctl_want *want, uint8_t nwant, uint64_t now_ms)
{
	enum e2e_status st;

	memset(r, 0, sizeof *r);
	st = e2e_ctl_request(r->msg, sizeof r->msg, &r->len, &r->req, r->eph_sk, who, target, want,
		nwant, NULL, E2E_CTL_TOPIC_DEFAULT, now_ms);
	TU_CHECK(st == E2E_OK, "e2e_ctl_request: %s", e2e_strerror(st));
	CU_ASSERT_EQUAL_FATAL(st, E2E_OK);
	e2e_ctl_hash(r->hash, r->msg, r->len);
}

uint8_t tu_answer(struct e2e_ctl *m, const struct tu_request *r, const uint8_t *msg, size_t len,
	const char *topic, const struct e2e_public *sender)
{
	enum e2e_status st = e2e_ctl_parse(m, msg, len, topic, sender);

	TU_CHECK(st == E2E_OK, "answer on %s: %s", topic, e2e_strerror(st));
	if (st != E2E_OK)
		return 0;
	TU_CHECK(!strcmp(topic, r->req.reply_topic), "answer on %s, asked on %s", topic,
		r->req.reply_topic);
	TU_CHECK(m->type == E2E_CTL_DELIVERY || m->type == E2E_CTL_REFUSAL, "answer type %u",
		m->type);
	TU_CHECK(!memcmp(m->request_hash, r->hash, sizeof r->hash), "answer binds another request");
	TU_CHECK(m->sender == e2e_sender_id(sender), "answer from sender %08x", m->sender);
	if (m->type == E2E_CTL_DELIVERY) {
		/* The map's rules point into tu_plain: valid until its next use. */
		st = e2e_ctl_open_delivery(m, r->req.eph_pk, r->eph_sk, TU_PLAIN);
		TU_CHECK(st == E2E_OK, "open delivery: %s", e2e_strerror(st));
		if (st != E2E_OK)
			return 0;
	}
	return memcmp(m->request_hash, r->hash, sizeof r->hash) ? 0 : m->type;
}

const struct e2e_ctl_key *tu_ctl_key(const struct e2e_ctl *m, uint8_t scope, uint32_t epoch)
{
	for (uint8_t i = 0; i < m->nkeys; i++)
		if (m->keys[i].scope == scope && m->keys[i].epoch == epoch)
			return &m->keys[i];
	return NULL;
}
