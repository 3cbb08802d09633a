/*
 * CUnit side of the test helpers: the runner every suite's main() calls,
 * vector loading from $E2E_VECTORS (jansson), and small fixtures that record
 * a CUnit failure instead of returning an error.
 */
#ifndef E2E_TESTCU_H
#define E2E_TESTCU_H

#include <CUnit/CUnit.h>
#include <jansson.h>

#include "testutil.h"

struct tu_test {
	const char *name;
	CU_TestFunc fn;
};

struct tu_suite {
	const char *name;
	const struct tu_test *tests;  /* ends with { NULL, NULL } */
};

/**
 * Register @p suites (ends with { NULL, NULL }), run them and return the
 * process exit code: 0 only if every assertion passed.
 */
int tu_main(const struct tu_suite *suites);

/** Parse $E2E_VECTORS/@p file; records a failure and returns NULL if absent. */
json_t *tu_vectors(const char *file);

/** The array @p key of @p root (or @p root itself if it is an array); fails if empty. */
json_t *tu_jarray(json_t *root, const char *key);

/** An unsigned JSON integer (or decimal string); 0 on success, no failure recorded. */
int tu_juint_value(const json_t *v, uint64_t *out);

/**
 * Load $E2E_VECTORS/@p file and call @p fn on every element of its array
 * @p key; records a failure if the file or a non-empty array is missing.
 */
void tu_each_vector(const char *file, const char *key, void (*fn)(const json_t *v));

/** Required members; a missing or mistyped one records a failure and returns -1/NULL. */
const char *tu_jstr(const json_t *o, const char *key);
int tu_jhex(const json_t *o, const char *key, uint8_t *out, size_t cap, size_t *len);
int tu_juint(const json_t *o, const char *key, uint64_t *v);
/** Optional member: 1 if present and read, 0 if absent, -1 if malformed. */
int tu_jopt_uint(const json_t *o, const char *key, uint64_t *v);
/** A verdict given by name. */
int tu_jverdict(const json_t *o, const char *key, enum e2e_verdict *v);

/** Seal @p pt_len bytes of @p pt on @p topic under header @p h; returns the envelope size. */
size_t tu_seal(uint8_t *out, size_t cap, const struct e2e_header *h,
	const uint8_t key[E2E_KEY_BYTES], const char *topic, const uint8_t *pt, size_t pt_len);

/** A ring holding one key without deadline, and a map sending every topic ('#') to its scope. */
struct e2e_keyring *tu_keyring_with(const struct e2e_keyid *id, const uint8_t key[E2E_KEY_BYTES]);

/** A receiver with the given limits (0 = defaults) and a random hash key. */
struct e2e_rx *tu_rx_new(uint32_t max_streams, uint32_t window);

/** e2e_rx_open on a text topic at time 1000; asserts E2E_OK and returns the verdict. */
enum e2e_verdict tu_rx_open(struct e2e_rx *rx, const struct e2e_keyring *kr,
	struct e2e_rx_result *res, uint8_t *pt, size_t pt_cap,
	const char *topic, const uint8_t *env, size_t env_len);

/**
 * tu_rx_open past the retired-key gate (SPEC 11.5): for tests of the window
 * and floors that hold several epochs of one scope without deadlines.
 */
enum e2e_verdict tu_rx_open_confirmed(struct e2e_rx *rx, const struct e2e_keyring *kr,
	struct e2e_rx_result *res, uint8_t *pt, size_t pt_cap,
	const char *topic, const uint8_t *env, size_t env_len);

/** Assert @p cond, with a printf-style message naming the case on failure. */
#define TU_CHECK(cond, ...) tu_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
void tu_check(int ok, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/** A fresh temporary directory and a file path inside it (fatal on failure). */
struct tu_tmp {
	char *dir;
	char path[4096];
};
void tu_tmp_open(struct tu_tmp *t, const char *name);
void tu_tmp_close(struct tu_tmp *t);

/*
 * Receiver fixture: one sender key (TU_FX_ID) in a ring, a receiver, and a
 * conforming sender's counter so tests can craft any (topic, run, seq).
 */
#define TU_ENV_CAP 256U
#define TU_FX_ID { .sender = 0xABCD0001U, .scope = 1, .epoch = 1 }

struct tu_fx {
	uint8_t key[E2E_KEY_BYTES];
	struct e2e_keyring *kr;
	struct e2e_rx *rx;
	uint64_t counter;           /* the sender's counter, shared by all streams */
	uint8_t pt[TU_ENV_CAP];     /* last plaintext opened */
};

void tu_fx_init(struct tu_fx *f, uint32_t max_streams, uint32_t window);
void tu_fx_free(struct tu_fx *f);
/** The envelope for (topic, run, seq), payload "<topic>#<seq>"; returns its size. */
size_t tu_fx_env(struct tu_fx *f, uint8_t env[TU_ENV_CAP], const char *topic, uint32_t run,
	uint32_t seq);
enum e2e_verdict tu_fx_open(struct tu_fx *f, const char *topic, const uint8_t *env, size_t len,
	struct e2e_rx_result *res);
/** Seal and receive at once. */
enum e2e_verdict tu_fx_recv(struct tu_fx *f, const char *topic, uint32_t run, uint32_t seq,
	struct e2e_rx_result *res);
/** Receive seqs from..to, asserting each is OK. */
void tu_fx_recv_range(struct tu_fx *f, const char *topic, uint32_t run, uint32_t from,
	uint32_t to);
struct e2e_rx_stats tu_fx_stats(const struct tu_fx *f);

/** Assert a verdict, printing both names when they differ. */
#define TU_ASSERT_VERDICT(actual, expected) \
	tu_assert_verdict((actual), (expected), __FILE__, __LINE__)
void tu_assert_verdict(enum e2e_verdict actual, enum e2e_verdict expected,
	const char *file, int line);


/* ---- Control messages (SPEC 11) ---------------------------------------- */

/** A fresh random identity (fatal on failure). */
void tu_identity(struct e2e_identity *id);

/** The identity of Ed25519 seed @p seed and X25519 secret @p dh_sk (NULL: the public dh key zero; destroy it). */
void tu_identity_from_seed(struct e2e_identity *id, const uint8_t seed[32], const uint8_t *dh_sk);

/** @p of's signing key with a fresh X25519 key pair (destroy it). */
void tu_identity_twin(struct e2e_identity *twin, const struct e2e_identity *of);
/** A one-rule map (scope 0 '#', summaries every 10 s) for deliveries built in tests. */
extern const struct e2e_ctl_map TU_MAP;
/** Scratch for e2e_ctl_open_delivery: rules of an opened delivery point into it. */
extern uint8_t tu_plain[E2E_CTL_PLAIN_MAX];
#define TU_PLAIN tu_plain, sizeof tu_plain

/** A key request made with e2e_ctl_request on the default control topic (asserted). */
struct tu_request {
	uint8_t msg[E2E_CTL_MSG_MAX];
	size_t len;
	struct e2e_ctl req;               /* what was sent (eph_pk, reply topic, ...) */
	uint8_t eph_sk[E2E_DH_BYTES];
	uint8_t hash[E2E_CTL_HASH_BYTES]; /* e2e_ctl_hash of msg */
};
void tu_request(struct tu_request *r, const struct e2e_identity *who, uint32_t target,
	const struct e2e_ctl_want *want, uint8_t nwant, uint64_t now_ms);

/**
 * Accept an answer to @p r as a subscriber does (SPEC 11.4): it must verify
 * with @p sender over @p topic (the request's reply topic) and carry r's hash;
 * a delivery is opened with r's ephemeral key. Records failures; returns the
 * message type (E2E_CTL_DELIVERY or E2E_CTL_REFUSAL), 0 if not accepted.
 */
uint8_t tu_answer(struct e2e_ctl *m, const struct tu_request *r, const uint8_t *msg, size_t len,
	const char *topic, const struct e2e_public *sender);

/** The key (@p scope, @p epoch) of an opened delivery, or NULL. */
const struct e2e_ctl_key *tu_ctl_key(const struct e2e_ctl *m, uint8_t scope, uint32_t epoch);

#endif
