/*
 * The sender's secret keys file: ensure and rotate (epochs, grace
 * deadlines), prune, permission refusal, corrupt lines with their line
 * numbers (and no key text in messages), capacity, and round trips.
 */
#include <stdio.h>
#include <string.h>

#include "ktest.h"

#define K1 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="   /* bytes 0..31 */
#define K2 "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="   /* bytes 32..63 */

static char err[256];

static struct e2e_keystore *parse(const char *text, uint32_t spare, enum e2e_status want)
{
	struct e2e_keystore *ks = NULL;

	memset(err, 0, sizeof err);
	CU_ASSERT_EQUAL(e2e_keystore_parse(&ks, text, strlen(text), "keys", spare, err,
		sizeof err), want);
	if (want != E2E_OK)
		CU_ASSERT_PTR_NULL(ks);
	return ks;
}

static struct e2e_keystore *empty(uint32_t cap)
{
	struct e2e_keystore *ks = NULL;

	CU_ASSERT_EQUAL_FATAL(e2e_keystore_create(&ks, cap), E2E_OK);
	return ks;
}

/* ---- Safety ------------------------------------------------------------ */

static void test_safety(void)
{
	struct e2e_keystore *ks = NULL;

	CU_ASSERT_EQUAL(e2e_keystore_create(NULL, 1), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keystore_create(&ks, 0), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keystore_create(&ks, E2E_KEYSTORE_MAX + 1), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keystore_parse(NULL, "", 0, "k", 0, NULL, 0), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keystore_parse(&ks, NULL, 3, "k", 0, NULL, 0), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keystore_load(&ks, NULL, 0, NULL, 0), E2E_ERR_ARG);
	CU_ASSERT_PTR_NULL(ks);
	CU_ASSERT_EQUAL(e2e_keystore_ensure(NULL, 0, 1, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keystore_rotate(NULL, 0, 1, 1, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keystore_save(NULL, "x"), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keystore_prune(NULL, 5), 0);
	CU_ASSERT_EQUAL(e2e_keystore_count(NULL), 0);
	CU_ASSERT_PTR_NULL(e2e_keystore_current(NULL, 0));
	CU_ASSERT_PTR_NULL(e2e_keystore_find(NULL, 0, 1));
	CU_ASSERT_PTR_NULL(e2e_keystore_at(NULL, 0));
	e2e_keystore_free(NULL);
	ks = empty(1);
	CU_ASSERT_EQUAL(e2e_keystore_save(ks, NULL), E2E_ERR_ARG);
	CU_ASSERT_PTR_NULL(e2e_keystore_at(ks, 0));
	e2e_keystore_free(ks);
}

/* ---- Rotation ---------------------------------------------------------- */

static void test_ensure(void)
{
	struct e2e_keystore *ks = empty(4);
	const struct e2e_keystore_entry *e;
	static const uint8_t zero[E2E_KEY_BYTES];
	int created = -1;

	CU_ASSERT_PTR_NULL(e2e_keystore_current(ks, 3));
	CU_ASSERT_EQUAL(e2e_keystore_ensure(ks, 3, 1000, &created), E2E_OK);
	CU_ASSERT_EQUAL(created, 1);
	e = e2e_keystore_current(ks, 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->epoch, 1);
	CU_ASSERT_EQUAL(e->created_ms, 1000);
	CU_ASSERT_EQUAL(e->not_after_ms, 0);
	CU_ASSERT(memcmp(e->key, zero, sizeof zero) != 0);
	/* Already has a current key: nothing changes. */
	CU_ASSERT_EQUAL(e2e_keystore_ensure(ks, 3, 2000, &created), E2E_OK);
	CU_ASSERT_EQUAL(created, 0);
	CU_ASSERT_EQUAL(e2e_keystore_count(ks), 1);
	CU_ASSERT_PTR_NULL(e2e_keystore_current(ks, 4));
	e2e_keystore_free(ks);
}

static void test_rotate(void)
{
	struct e2e_keystore *ks = empty(8);
	const struct e2e_keystore_entry *e1, *e2;
	uint8_t k1[E2E_KEY_BYTES];
	uint32_t epoch = 0;

	CU_ASSERT_EQUAL(e2e_keystore_ensure(ks, 1, 1000, NULL), E2E_OK);
	memcpy(k1, e2e_keystore_current(ks, 1)->key, sizeof k1);
	CU_ASSERT_EQUAL(e2e_keystore_rotate(ks, 1, 1500, 600, &epoch), E2E_OK);
	CU_ASSERT_EQUAL(epoch, 2);
	e1 = e2e_keystore_find(ks, 1, 1);
	e2 = e2e_keystore_find(ks, 1, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e2);
	/* The old key is unchanged but now has a grace deadline. */
	CU_ASSERT(memcmp(e1->key, k1, sizeof k1) == 0);
	CU_ASSERT_EQUAL(e1->not_after_ms, 2100);
	CU_ASSERT_EQUAL(e2->not_after_ms, 0);
	CU_ASSERT_EQUAL(e2->created_ms, 1500);
	CU_ASSERT(memcmp(e2->key, k1, sizeof k1) != 0);
	CU_ASSERT_PTR_EQUAL(e2e_keystore_current(ks, 1), e2);
	/* Rotating a scope without keys starts at epoch 1. */
	CU_ASSERT_EQUAL(e2e_keystore_rotate(ks, 9, 1500, 600, &epoch), E2E_OK);
	CU_ASSERT_EQUAL(epoch, 1);
	/* A huge grace saturates instead of wrapping into the past (and the
	 * clock part of the epoch saturates at the largest epoch). */
	CU_ASSERT_EQUAL(e2e_keystore_rotate(ks, 1, UINT64_MAX - 10, 1000, &epoch), E2E_OK);
	CU_ASSERT_EQUAL(epoch, UINT32_MAX);
	CU_ASSERT_EQUAL(e2e_keystore_rotate(ks, 1, 1000, 1000, &epoch), E2E_ERR_EXHAUSTED);
	CU_ASSERT_EQUAL(e2e_keystore_find(ks, 1, 2)->not_after_ms, UINT64_MAX);
	/* Zero grace at time 0 still marks the key as retired (0 means current). */
	CU_ASSERT_EQUAL(e2e_keystore_rotate(ks, 9, 0, 0, &epoch), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keystore_find(ks, 9, 1)->not_after_ms, 1);
	/* Entries stay in (scope, epoch) order. */
	for (uint32_t i = 1; i < e2e_keystore_count(ks); i++) {
		const struct e2e_keystore_entry *a = e2e_keystore_at(ks, i - 1);
		const struct e2e_keystore_entry *b = e2e_keystore_at(ks, i);

		CU_ASSERT(a->scope < b->scope || (a->scope == b->scope && a->epoch < b->epoch));
	}
	e2e_keystore_free(ks);
}

/*
 * SPEC 6.4 (P5): a new epoch is max(highest known + 1, Unix seconds now),
 * so a keys file restored from a backup cannot hand out again an epoch that
 * was issued after the backup (with another key) once the clock has passed it.
 */
static void test_epoch_clock_after_restore(void)
{
	const uint64_t t0 = 1700000000000ULL;
	struct e2e_keystore *ks = empty(8), *backup = empty(8);
	uint32_t e0, e1, e2, e3;

	CU_ASSERT_EQUAL_FATAL(e2e_keystore_ensure(ks, 1, t0, NULL), E2E_OK);
	e0 = e2e_keystore_current(ks, 1)->epoch;
	CU_ASSERT_EQUAL(e0, (uint32_t)(t0 / 1000));
	CU_ASSERT_EQUAL_FATAL(e2e_keystore_ensure(backup, 1, t0, NULL), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keystore_current(backup, 1)->epoch, e0);
	/* Two rotations after the backup, the second within the same second. */
	CU_ASSERT_EQUAL(e2e_keystore_rotate(ks, 1, t0 + 1000, 600, &e1), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keystore_rotate(ks, 1, t0 + 1200, 600, &e2), E2E_OK);
	CU_ASSERT(e1 == e0 + 1 && e2 == e0 + 2);
	/* The restored file knows only e0: counting on from it would reissue e1. */
	CU_ASSERT_EQUAL(e2e_keystore_rotate(backup, 1, t0 + 3000, 600, &e3), E2E_OK);
	CU_ASSERT(e3 > e2);
	CU_ASSERT_EQUAL(e3, (uint32_t)(t0 / 1000) + 3);
	e2e_keystore_free(ks);
	e2e_keystore_free(backup);
}

static void test_prune(void)
{
	struct e2e_keystore *ks = empty(8);

	CU_ASSERT_EQUAL(e2e_keystore_ensure(ks, 1, 0, NULL), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keystore_rotate(ks, 1, 1000, 500, NULL), E2E_OK);   /* e1 until 1500 */
	CU_ASSERT_EQUAL(e2e_keystore_rotate(ks, 1, 2000, 500, NULL), E2E_OK);   /* e2 until 2500 */
	CU_ASSERT_EQUAL(e2e_keystore_prune(ks, 1500), 0);   /* a deadline is inclusive */
	CU_ASSERT_EQUAL(e2e_keystore_prune(ks, 1501), 1);
	CU_ASSERT_PTR_NULL(e2e_keystore_find(ks, 1, 1));
	CU_ASSERT_PTR_NOT_NULL(e2e_keystore_find(ks, 1, 2));
	/* The current key has no deadline and is never pruned. */
	CU_ASSERT_EQUAL(e2e_keystore_prune(ks, UINT64_MAX), 1);
	CU_ASSERT_EQUAL(e2e_keystore_count(ks), 1);
	CU_ASSERT_EQUAL(e2e_keystore_current(ks, 1)->epoch, 3);
	/* Pruned epochs are never reissued: the next one is 4. */
	CU_ASSERT_EQUAL(e2e_keystore_rotate(ks, 1, 3000, 0, NULL), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keystore_current(ks, 1)->epoch, 4);
	e2e_keystore_free(ks);
}

static void test_limits(void)
{
	struct e2e_keystore *ks = parse("key 5 4294967295 1 0 " K1 "\n", 1, E2E_OK);
	uint32_t epoch = 7;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ks);
	/* The epoch space is spent: refusing beats wrapping to a used epoch. */
	CU_ASSERT_EQUAL(e2e_keystore_rotate(ks, 5, 10, 10, &epoch), E2E_ERR_EXHAUSTED);
	CU_ASSERT_EQUAL(epoch, 7);
	CU_ASSERT_EQUAL(e2e_keystore_current(ks, 5)->not_after_ms, 0);
	CU_ASSERT_EQUAL(e2e_keystore_count(ks), 1);
	/* spare = 1: one key fits, the next does not, and nothing changes. */
	CU_ASSERT_EQUAL(e2e_keystore_ensure(ks, 6, 10, NULL), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keystore_rotate(ks, 6, 10, 10, NULL), E2E_ERR_FULL);
	CU_ASSERT_EQUAL(e2e_keystore_current(ks, 6)->epoch, 1);
	CU_ASSERT_EQUAL(e2e_keystore_count(ks), 2);
	e2e_keystore_free(ks);
}

/* ---- Parsing ----------------------------------------------------------- */

static void test_parse(void)
{
	struct e2e_keystore *ks = parse("# keys\n\nkey 2 1 100 0 " K2 "\r\n"
		"key 1 3 300 900 " K1 "\n\tkey  1\t2  200  0 " K2 "\n", 0, E2E_OK);
	const struct e2e_keystore_entry *e;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ks);
	CU_ASSERT_EQUAL(e2e_keystore_count(ks), 3);
	/* Sorted whatever the file order was. */
	CU_ASSERT_EQUAL(e2e_keystore_at(ks, 0)->epoch, 2);
	CU_ASSERT_EQUAL(e2e_keystore_at(ks, 1)->epoch, 3);
	CU_ASSERT_EQUAL(e2e_keystore_at(ks, 2)->scope, 2);
	e = e2e_keystore_find(ks, 1, 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->created_ms, 300);
	CU_ASSERT_EQUAL(e->not_after_ms, 900);
	CU_ASSERT_EQUAL(e->key[0], 0);
	CU_ASSERT_EQUAL(e->key[31], 31);
	/* Current = highest epoch WITHOUT deadline, here 2 although 3 exists. */
	CU_ASSERT_EQUAL(e2e_keystore_current(ks, 1)->epoch, 2);
	CU_ASSERT_EQUAL(e2e_keystore_current(ks, 1)->key[0], 32);
	e2e_keystore_free(ks);
}

static void test_corrupt(void)
{
	static const struct { const char *text; enum e2e_status st; const char *msg; } bad[] = {
		{ "kee 1 1 0 0 " K1 "\n", E2E_ERR_MALFORMED, "keys:1: expected: key" },
		{ "\nkey 1 1 0 " K1 "\n", E2E_ERR_MALFORMED, "keys:2: expected: key" },
		{ "key 256 1 0 0 " K1 "\n", E2E_ERR_MALFORMED, "keys:1: scope must be 0..255" },
		{ "key 1 4294967296 0 0 " K1 "\n", E2E_ERR_MALFORMED, "keys:1: epoch" },
		{ "key 1 01 0 0 " K1 "\n", E2E_ERR_MALFORMED, "keys:1: epoch" },
		{ "key 1 1 -5 0 " K1 "\n", E2E_ERR_MALFORMED, "keys:1: times" },
		{ "key 1 1 0 18446744073709551616 " K1 "\n", E2E_ERR_MALFORMED, "keys:1: times" },
		{ "key 1 1 0 0 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh==\n",
		  E2E_ERR_MALFORMED, "keys:1: key is not base64 of 32 bytes" },
		{ "key 1 1 0 0 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n",
		  E2E_ERR_MALFORMED, "keys:1: key is not base64" },
		{ "key 1 1 0 0 " K1 "\nkey 1 2 0 0 " K2 "x\n", E2E_ERR_MALFORMED, "keys:2: key is not" },
		{ "key 1 1 0 0 " K1 "\n# x\nkey 1 1 5 0 " K2 "\n", E2E_ERR_EXISTS,
		  "keys:3: scope 1 epoch 1 listed twice" },
		{ "key 1 1 0 0 " K1 " extra\n", E2E_ERR_CORRUPT, "keys:1: check value does not match" },
		{ "key 1 1 0 0 " K1 " 00000000 signed next extra\n", E2E_ERR_MALFORMED,
			"keys:1: too many fields" },
		{ "key 1 1 0 0 " K1 " 00000000 extra\n", E2E_ERR_MALFORMED, "keys:1: expected" },
		{ "key 1 1 0 0 " K1 "\x1b\n", E2E_ERR_MALFORMED, "keys:1: control character" },
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		parse(bad[i].text, 4, bad[i].st);
		if (strncmp(err, bad[i].msg, strlen(bad[i].msg)) != 0)
			fprintf(stderr, "\n  case %zu: got '%s' want '%s...'\n", i, err, bad[i].msg);
		CU_ASSERT_NSTRING_EQUAL(err, bad[i].msg, strlen(bad[i].msg));
		/* Secret material never ends up in a message. */
		CU_ASSERT_PTR_NULL(strstr(err, "AAEC"));
		CU_ASSERT_PTR_NULL(strstr(err, "ICEi"));
	}
}

/* ---- Files ------------------------------------------------------------- */

static void test_permissions(void)
{
	const char *dir = kt_tmpdir();
	char path[512];
	struct e2e_keystore *ks = NULL;
	static const mode_t refused[] = { 0640, 0604, 0660, 0644, 0601, 0610 };

	snprintf(path, sizeof path, "%s", kt_file(dir, "keys"));
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		CU_ASSERT_EQUAL_FATAL(kt_write(path, "key 1 1 0 0 " K1 "\n", refused[i]), 0);
		CU_ASSERT_EQUAL(kt_mode(path), (int)refused[i]);
		CU_ASSERT_EQUAL(e2e_keystore_load(&ks, path, 0, err, sizeof err), E2E_ERR_PERM);
		CU_ASSERT_PTR_NULL(ks);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	}
	CU_ASSERT_EQUAL_FATAL(kt_write(path, "key 1 1 0 0 " K1 "\n", 0600), 0);
	CU_ASSERT_EQUAL(e2e_keystore_load(&ks, path, 0, err, sizeof err), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keystore_count(ks), 1);
	e2e_keystore_free(ks);
	ks = NULL;
	/* A corrupt file on disk names its path and line. */
	CU_ASSERT_EQUAL_FATAL(kt_write(path, "key 1 1 0 0 " K1 "\nkey x\n", 0600), 0);
	CU_ASSERT_EQUAL(e2e_keystore_load(&ks, path, 0, err, sizeof err), E2E_ERR_MALFORMED);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/keys:2: "));
	kt_tmpdir_remove();
}

static void test_round_trip(void)
{
	const char *dir = kt_tmpdir();
	char path[512];
	struct e2e_keystore *ks = NULL, *back = NULL;

	snprintf(path, sizeof path, "%s", kt_file(dir, "keys"));
	/* Missing file: an empty store with room for the spare keys. */
	CU_ASSERT_EQUAL_FATAL(e2e_keystore_load(&ks, path, 3, err, sizeof err), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keystore_count(ks), 0);
	CU_ASSERT_EQUAL(e2e_keystore_ensure(ks, 0, 111, NULL), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keystore_ensure(ks, 255, 222, NULL), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keystore_rotate(ks, 0, 333, 86400000, NULL), E2E_OK);
	/* The signed mark of one key survives the round trip. */
	CU_ASSERT_EQUAL(e2e_keystore_set_flags(ks, 255, 1, E2E_KEYSTORE_SIGNED), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keystore_set_flags(ks, 254, 1, E2E_KEYSTORE_SIGNED), E2E_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(e2e_keystore_set_flags(ks, 255, 1, 0x80), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_keystore_save(ks, path), E2E_OK);
	CU_ASSERT_EQUAL(kt_mode(path), 0600);
	CU_ASSERT_EQUAL_FATAL(e2e_keystore_load(&back, path, 0, err, sizeof err), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_keystore_count(back), 3);
	for (uint32_t i = 0; i < 3; i++) {
		const struct e2e_keystore_entry *x = e2e_keystore_at(ks, i);
		const struct e2e_keystore_entry *y = e2e_keystore_at(back, i);

		CU_ASSERT_EQUAL(x->scope, y->scope);
		CU_ASSERT_EQUAL(x->epoch, y->epoch);
		CU_ASSERT_EQUAL(x->created_ms, y->created_ms);
		CU_ASSERT_EQUAL(x->not_after_ms, y->not_after_ms);
		CU_ASSERT_EQUAL(x->flags, y->flags);
		CU_ASSERT(memcmp(x->key, y->key, E2E_KEY_BYTES) == 0);
	}
	CU_ASSERT_EQUAL(e2e_keystore_current(back, 255)->flags, E2E_KEYSTORE_SIGNED);
	CU_ASSERT_EQUAL(e2e_keystore_current(back, 0)->flags, 0);
	CU_ASSERT_EQUAL(e2e_keystore_find(back, 0, 1)->not_after_ms, 333 + 86400000ULL);
	CU_ASSERT_EQUAL(e2e_keystore_current(back, 255)->created_ms, 222);
	e2e_keystore_free(back);
	e2e_keystore_free(ks);
	kt_tmpdir_remove();
}

static const struct kt_case cases[] = {
	{ "Safety: NULL and invalid arguments", test_safety },
	{ "Rotation: ensure creates epoch 1 once", test_ensure },
	{ "Rotation: new epoch, grace deadline, saturation", test_rotate },
	{ "Rotation: a restored keys file issues no epoch twice (clock)", test_epoch_clock_after_restore },
	{ "Rotation: prune expired keys, never the current", test_prune },
	{ "Rotation: epoch exhaustion and capacity", test_limits },
	{ "Parse: fields, order and current key", test_parse },
	{ "Parse: corrupt lines name file and line, never key text", test_corrupt },
	{ "Files: group/world readable key files are refused", test_permissions },
	{ "Files: save and load round trip", test_round_trip },
	{ NULL, NULL },
};

int main(void)
{
	return kt_run("keystore", cases);
}
