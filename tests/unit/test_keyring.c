/*
 * Key ring tests: add / find / retire / remove / expire with an injected
 * clock (now_ms), capacity and conflicting keys.
 */
#include <string.h>

#include "testcu.h"

static const struct e2e_keyid ID_A = { .sender = 0x11223344U, .scope = 1, .epoch = 1 };
static const struct e2e_keyid ID_B = { .sender = 0x11223344U, .scope = 1, .epoch = 2 };
static const struct e2e_keyid ID_C = { .sender = 0x55667788U, .scope = 1, .epoch = 1 };

static struct e2e_keyring *ring(uint32_t cap)
{
	struct e2e_keyring *kr = NULL;

	CU_ASSERT_EQUAL_FATAL(e2e_keyring_create(&kr, cap), E2E_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(kr);
	CU_ASSERT_EQUAL(e2e_keyring_count(kr), 0);
	return kr;
}

static int holds(const struct e2e_keyring *kr, const struct e2e_keyid *id,
	const uint8_t key[E2E_KEY_BYTES], uint64_t now)
{
	const uint8_t *k = e2e_keyring_find(kr, id, now);

	return k && !memcmp(k, key, E2E_KEY_BYTES);
}

/* ---- Safety ------------------------------------------------------------ */

static void test_safety_args(void)
{
	struct e2e_keyring *kr = NULL;
	uint8_t key[E2E_KEY_BYTES];
	uint32_t epoch = 0;

	tu_key(key, 1);
	CU_ASSERT_EQUAL(e2e_keyring_create(NULL, 4), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keyring_create(&kr, 0), E2E_ERR_ARG);
	CU_ASSERT_PTR_NULL(kr);
	kr = ring(2);
	CU_ASSERT_EQUAL(e2e_keyring_add(NULL, &ID_A, key, 0), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, NULL, key, 0), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &ID_A, NULL, 0), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keyring_count(kr), 0);
	CU_ASSERT_EQUAL(e2e_keyring_retire(NULL, &ID_A, 10), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keyring_retire(kr, NULL, 10), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keyring_remove(NULL, &ID_A), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keyring_remove(kr, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keyring_latest(NULL, 1, 1, &epoch), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keyring_latest(kr, 1, 1, NULL), E2E_ERR_ARG);
	CU_ASSERT_PTR_NULL(e2e_keyring_find(NULL, &ID_A, 0));
	CU_ASSERT_PTR_NULL(e2e_keyring_find(kr, NULL, 0));
	CU_ASSERT_EQUAL(e2e_keyring_expire(NULL, 5), 0);
	CU_ASSERT_EQUAL(e2e_keyring_count(NULL), 0);
	e2e_keyring_destroy(kr);
	e2e_keyring_destroy(NULL);
}

static void test_safety_empty(void)
{
	struct e2e_keyring *kr = ring(4);
	uint32_t epoch = 77;

	CU_ASSERT_PTR_NULL(e2e_keyring_find(kr, &ID_A, 0));
	CU_ASSERT_EQUAL(e2e_keyring_retire(kr, &ID_A, 10), E2E_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(e2e_keyring_remove(kr, &ID_A), E2E_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(e2e_keyring_latest(kr, ID_A.sender, ID_A.scope, &epoch), E2E_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(e2e_keyring_expire(kr, UINT64_MAX), 0);
	e2e_keyring_destroy(kr);
}

/* ---- Behaviour --------------------------------------------------------- */

static void test_add_find(void)
{
	struct e2e_keyring *kr = ring(4);
	uint8_t ka[E2E_KEY_BYTES], kb[E2E_KEY_BYTES], kc[E2E_KEY_BYTES];
	struct e2e_keyid other = ID_A;

	tu_key(ka, 1);
	tu_key(kb, 2);
	tu_key(kc, 3);
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &ID_A, ka, 0), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &ID_B, kb, 0), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &ID_C, kc, 0), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_count(kr), 3);
	/* Each id finds its own key; no deadline means usable at any time. */
	CU_ASSERT(holds(kr, &ID_A, ka, 0));
	CU_ASSERT(holds(kr, &ID_B, kb, 12345));
	CU_ASSERT(holds(kr, &ID_C, kc, UINT64_MAX));
	/* Every field of the id matters. */
	other.scope = 2;
	CU_ASSERT_PTR_NULL(e2e_keyring_find(kr, &other, 0));
	other = ID_A;
	other.epoch = 3;
	CU_ASSERT_PTR_NULL(e2e_keyring_find(kr, &other, 0));
	other = ID_A;
	other.sender ^= 1;
	CU_ASSERT_PTR_NULL(e2e_keyring_find(kr, &other, 0));
	/* The ring holds a copy: changing the caller's buffer changes nothing. */
	memset(ka, 0, sizeof ka);
	tu_key(kb, 1);
	CU_ASSERT(holds(kr, &ID_A, kb, 0));
	e2e_keyring_destroy(kr);
}

static void test_grace_deadline(void)
{
	struct e2e_keyring *kr = ring(4);
	uint8_t ka[E2E_KEY_BYTES];

	tu_key(ka, 9);
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &ID_A, ka, 0), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_retire(kr, &ID_A, 5000), E2E_OK);
	CU_ASSERT(holds(kr, &ID_A, ka, 1000));
	CU_ASSERT(holds(kr, &ID_A, ka, 4999));
	/* The deadline is the last usable instant ("before now" expires). */
	CU_ASSERT(holds(kr, &ID_A, ka, 5000));
	CU_ASSERT_PTR_NULL(e2e_keyring_find(kr, &ID_A, 5001));
	CU_ASSERT_PTR_NULL(e2e_keyring_find(kr, &ID_A, UINT64_MAX));
	/* Unusable is not removed: expire does that. */
	CU_ASSERT_EQUAL(e2e_keyring_count(kr), 1);
	CU_ASSERT_EQUAL(e2e_keyring_expire(kr, 5000), 0);
	CU_ASSERT_EQUAL(e2e_keyring_count(kr), 1);
	CU_ASSERT_EQUAL(e2e_keyring_expire(kr, 5001), 1);
	CU_ASSERT_EQUAL(e2e_keyring_count(kr), 0);
	CU_ASSERT_PTR_NULL(e2e_keyring_find(kr, &ID_A, 0));
	e2e_keyring_destroy(kr);
}

static void test_readd_updates_deadline(void)
{
	struct e2e_keyring *kr = ring(1);
	uint8_t ka[E2E_KEY_BYTES];

	tu_key(ka, 4);
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &ID_A, ka, 1000), E2E_OK);
	CU_ASSERT_PTR_NULL(e2e_keyring_find(kr, &ID_A, 2000));
	/* Same key again, even with the ring full: an update, not an insert. */
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &ID_A, ka, 3000), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_count(kr), 1);
	CU_ASSERT(holds(kr, &ID_A, ka, 2000));
	CU_ASSERT_PTR_NULL(e2e_keyring_find(kr, &ID_A, 3001));
	/* ... and 0 lifts the deadline. */
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &ID_A, ka, 0), E2E_OK);
	CU_ASSERT(holds(kr, &ID_A, ka, UINT64_MAX));
	CU_ASSERT_EQUAL(e2e_keyring_expire(kr, UINT64_MAX), 0);
	e2e_keyring_destroy(kr);
}

static void test_conflicting_key(void)
{
	struct e2e_keyring *kr = ring(4);
	uint8_t ka[E2E_KEY_BYTES], kx[E2E_KEY_BYTES];

	tu_key(ka, 4);
	memcpy(kx, ka, sizeof kx);
	kx[E2E_KEY_BYTES - 1] ^= 0x80;
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &ID_A, ka, 1000), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &ID_A, kx, 9000), E2E_ERR_EXISTS);
	/* The refused add changed neither the key nor its deadline. */
	CU_ASSERT_EQUAL(e2e_keyring_count(kr), 1);
	CU_ASSERT(holds(kr, &ID_A, ka, 1000));
	CU_ASSERT_PTR_NULL(e2e_keyring_find(kr, &ID_A, 1001));
	e2e_keyring_destroy(kr);
}

static void test_capacity(void)
{
	struct e2e_keyring *kr = ring(3);
	uint8_t key[E2E_KEY_BYTES];
	struct e2e_keyid id = ID_A;

	for (uint32_t e = 1; e <= 3; e++) {
		id.epoch = e;
		tu_key(key, (uint8_t)e);
		CU_ASSERT_EQUAL(e2e_keyring_add(kr, &id, key, 0), E2E_OK);
	}
	id.epoch = 4;
	tu_key(key, 4);
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &id, key, 0), E2E_ERR_FULL);
	CU_ASSERT_EQUAL(e2e_keyring_count(kr), 3);
	CU_ASSERT_PTR_NULL(e2e_keyring_find(kr, &id, 0));
	/* Removing one frees a slot for it. */
	id.epoch = 2;
	CU_ASSERT_EQUAL(e2e_keyring_remove(kr, &id), E2E_OK);
	id.epoch = 4;
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &id, key, 0), E2E_OK);
	CU_ASSERT(holds(kr, &id, key, 0));
	CU_ASSERT_EQUAL(e2e_keyring_count(kr), 3);
	e2e_keyring_destroy(kr);
}

static void test_remove(void)
{
	struct e2e_keyring *kr = ring(4);
	uint8_t ka[E2E_KEY_BYTES], kb[E2E_KEY_BYTES];

	tu_key(ka, 1);
	tu_key(kb, 2);
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &ID_A, ka, 0), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &ID_B, kb, 0), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_remove(kr, &ID_A), E2E_OK);
	CU_ASSERT_PTR_NULL(e2e_keyring_find(kr, &ID_A, 0));
	CU_ASSERT(holds(kr, &ID_B, kb, 0));
	CU_ASSERT_EQUAL(e2e_keyring_count(kr), 1);
	CU_ASSERT_EQUAL(e2e_keyring_remove(kr, &ID_A), E2E_ERR_NOT_FOUND);
	/* After removal the id is free: a different key may take it. */
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &ID_A, kb, 0), E2E_OK);
	CU_ASSERT(holds(kr, &ID_A, kb, 0));
	e2e_keyring_destroy(kr);
}

static void test_latest(void)
{
	struct e2e_keyring *kr = ring(8);
	static const uint32_t epochs[] = { 3, 7, 5, 0xFFFFFFF0U, 1 };
	uint8_t key[E2E_KEY_BYTES];
	struct e2e_keyid id = { .sender = 42, .scope = 3, .epoch = 0 };
	uint32_t latest = 0;

	for (size_t i = 0; i < 3; i++) {
		id.epoch = epochs[i];
		tu_key(key, (uint8_t)i);
		CU_ASSERT_EQUAL(e2e_keyring_add(kr, &id, key, 0), E2E_OK);
	}
	CU_ASSERT_EQUAL(e2e_keyring_latest(kr, 42, 3, &latest), E2E_OK);
	CU_ASSERT_EQUAL(latest, 7);
	/* Another scope and another sender do not count. */
	id.scope = 4;
	id.epoch = epochs[3];
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &id, key, 0), E2E_OK);
	id.scope = 3;
	id.sender = 43;
	id.epoch = 100;
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &id, key, 0), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_latest(kr, 42, 3, &latest), E2E_OK);
	CU_ASSERT_EQUAL(latest, 7);
	CU_ASSERT_EQUAL(e2e_keyring_latest(kr, 42, 4, &latest), E2E_OK);
	CU_ASSERT_EQUAL(latest, epochs[3]);
	CU_ASSERT_EQUAL(e2e_keyring_latest(kr, 42, 5, &latest), E2E_ERR_NOT_FOUND);
	id.sender = 42;
	id.epoch = 7;
	CU_ASSERT_EQUAL(e2e_keyring_remove(kr, &id), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_latest(kr, 42, 3, &latest), E2E_OK);
	CU_ASSERT_EQUAL(latest, 5);
	e2e_keyring_destroy(kr);
}

static void test_expire_count(void)
{
	struct e2e_keyring *kr = ring(8);
	uint8_t key[E2E_KEY_BYTES];
	struct e2e_keyid id = ID_C;
	static const uint64_t deadlines[] = { 100, 200, 0, 300, 200, 0 };

	for (size_t i = 0; i < sizeof deadlines / sizeof deadlines[0]; i++) {
		id.epoch = (uint32_t)i + 1;
		tu_key(key, (uint8_t)(0x40 + i));
		CU_ASSERT_EQUAL(e2e_keyring_add(kr, &id, key, deadlines[i]), E2E_OK);
	}
	CU_ASSERT_EQUAL(e2e_keyring_count(kr), 6);
	CU_ASSERT_EQUAL(e2e_keyring_expire(kr, 50), 0);
	CU_ASSERT_EQUAL(e2e_keyring_expire(kr, 201), 3);
	CU_ASSERT_EQUAL(e2e_keyring_count(kr), 3);
	CU_ASSERT_EQUAL(e2e_keyring_expire(kr, 201), 0);
	CU_ASSERT_EQUAL(e2e_keyring_expire(kr, 1000), 1);
	CU_ASSERT_EQUAL(e2e_keyring_count(kr), 2);
	/* The survivors are exactly the keys without a deadline. */
	id.epoch = 3;
	tu_key(key, 0x42);
	CU_ASSERT(holds(kr, &id, key, UINT64_MAX));
	id.epoch = 6;
	tu_key(key, 0x45);
	CU_ASSERT(holds(kr, &id, key, UINT64_MAX));
	e2e_keyring_destroy(kr);
}

static void test_retire_earlier(void)
{
	struct e2e_keyring *kr = ring(2);
	uint8_t ka[E2E_KEY_BYTES];

	tu_key(ka, 7);
	CU_ASSERT_EQUAL(e2e_keyring_add(kr, &ID_B, ka, 10000), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_retire(kr, &ID_B, 2000), E2E_OK);
	CU_ASSERT(holds(kr, &ID_B, ka, 2000));
	CU_ASSERT_PTR_NULL(e2e_keyring_find(kr, &ID_B, 2001));
	CU_ASSERT_EQUAL(e2e_keyring_expire(kr, 2001), 1);
	e2e_keyring_destroy(kr);
}

/* SPEC 3.3: the id names the key; a ring refuses a pair that disagrees. */
static void test_signer_id_must_match(void)
{
	struct e2e_keyring *kr;
	struct e2e_identity a, b;
	uint32_t ida, idb;

	tu_identity(&a);
	tu_identity(&b);
	ida = e2e_sender_id(&a.pub);
	idb = e2e_sender_id(&b.pub);
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_create(&kr, 2), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_set_signer(kr, ida, a.pub.sign_pk), E2E_OK);
	CU_ASSERT(e2e_keyring_signer(kr, ida) && !memcmp(e2e_keyring_signer(kr, ida),
		a.pub.sign_pk, 32));
	/* b's key under a's id (replacing), or under any made-up id: refused. */
	CU_ASSERT_EQUAL(e2e_keyring_set_signer(kr, ida, b.pub.sign_pk), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keyring_set_signer(kr, 0x1a2b3c4dU, b.pub.sign_pk), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keyring_set_signer(kr, idb ^ 1U, b.pub.sign_pk), E2E_ERR_ARG);
	CU_ASSERT_PTR_NULL(e2e_keyring_signer(kr, 0x1a2b3c4dU));
	CU_ASSERT(!memcmp(e2e_keyring_signer(kr, ida), a.pub.sign_pk, 32));
	CU_ASSERT_EQUAL(e2e_keyring_set_signer(kr, idb, b.pub.sign_pk), E2E_OK);
	e2e_keyring_destroy(kr);
	e2e_identity_wipe(&a);
	e2e_identity_wipe(&b);
}

/* Profiles: validated filters, at least one rule, replaced as a whole. */
static void test_profile_rules(void)
{
	struct e2e_keyring *kr;
	uint8_t sc = 0;
	uint32_t iv = 7;
	static const struct e2e_scope_rule good[] = { { 4, "a/+/c", 5 }, { 5, "#", 1 } };
	static const struct e2e_scope_rule bad[][1] = {
		{ { 1, "a/#/b", 5 } }, { { 1, "a+", 2 } }, { { 1, "", 0 } }, { { 1, "a#", 2 } },
		{ { 1, "a\0b", 3 } }, { { 1, NULL, 1 } },
	};

	CU_ASSERT_EQUAL_FATAL(e2e_keyring_create(&kr, 2), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_set_profile(NULL, 1, good, 2, 0), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keyring_set_profile(kr, 1, NULL, 2, 0), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keyring_set_profile(kr, 1, good, 0, 0), E2E_ERR_ARG);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		TU_CHECK(e2e_keyring_set_profile(kr, 1, bad[i], 1, 0) == E2E_ERR_ARG,
			"bad filter #%zu accepted", i);
	CU_ASSERT_EQUAL(e2e_keyring_summary_interval(kr, 1, &iv), E2E_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(e2e_keyring_set_profile(kr, 1, good, 2, 2500), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_summary_interval(kr, 1, &iv), E2E_OK);
	CU_ASSERT_EQUAL(iv, 2500);
	CU_ASSERT_EQUAL(e2e_keyring_resolve(kr, 1, (const uint8_t *)"a/x/c", 5, &sc), E2E_OK);
	CU_ASSERT_EQUAL(sc, 4);
	CU_ASSERT_EQUAL(e2e_keyring_resolve(kr, 1, (const uint8_t *)"a/x/d", 5, &sc), E2E_OK);
	CU_ASSERT_EQUAL(sc, 5);
	CU_ASSERT_EQUAL(e2e_keyring_resolve(kr, 1, (const uint8_t *)"$a", 2, &sc),
		E2E_ERR_NOT_FOUND);
	/* Replaced as a whole by the next one. */
	CU_ASSERT_EQUAL(e2e_keyring_set_profile(kr, 1, good + 1, 1, 0), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_resolve(kr, 1, (const uint8_t *)"a/x/c", 5, &sc), E2E_OK);
	CU_ASSERT_EQUAL(sc, 5);
	CU_ASSERT_EQUAL(e2e_keyring_summary_interval(kr, 1, &iv), E2E_OK);
	CU_ASSERT_EQUAL(iv, 0);
	e2e_keyring_destroy(kr);
}

static const struct tu_test safety_tests[] = {
	{ "Safety: NULL arguments and zero capacity", test_safety_args },
	{ "Safety: operations on an empty ring", test_safety_empty },
	{ NULL, NULL },
};

static const struct tu_test ring_tests[] = {
	{ "Keyring: add and find by (sender, scope, epoch)", test_add_find },
	{ "Keyring: retire grace deadline with injected clock", test_grace_deadline },
	{ "Keyring: retire to an earlier deadline", test_retire_earlier },
	{ "Keyring: re-adding the same key updates its deadline", test_readd_updates_deadline },
	{ "Keyring: different key under same id is E2E_ERR_EXISTS", test_conflicting_key },
	{ "Keyring: capacity full is E2E_ERR_FULL", test_capacity },
	{ "Keyring: remove", test_remove },
	{ "Keyring: latest epoch per sender and scope", test_latest },
	{ "Keyring: expire returns how many keys it removed", test_expire_count },
	{ "Keyring: signer refused unless sender = id of sign_pk", test_signer_id_must_match },
	{ "Keyring: profiles validate filters and replace the old", test_profile_rules },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "keyring safety", safety_tests },
		{ "keyring", ring_tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
