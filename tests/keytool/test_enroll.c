/*
 * Peer lists: the sender's `enrolled` file and the subscriber's `trust`
 * file. Parse errors with line numbers, lookup by key and name, editing
 * (add, scopes, remove, revoke), capacity, and save/load round trips.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ktest.h"

static struct e2e_scopes tbl;
static char err[512];

/* An assertion that says what it saw when it fails. */
#define KT_CHECK(cond, ...) do { \
	int kt_ok_ = !!(cond); \
	if (!kt_ok_) { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } \
	CU_ASSERT(kt_ok_); \
} while (0)
static struct e2e_public pa, pb, pc;
static char la[E2E_PUBLINE_MIN], lb[E2E_PUBLINE_MIN], lc[E2E_PUBLINE_MIN];

static int setup(void)
{
	static const char scopes[] = "scope 1 telemetry t/#\nscope 2 alarms a/#\n";

	kt_pub(&pa, la, sizeof la);
	kt_pub(&pb, lb, sizeof lb);
	kt_pub(&pc, lc, sizeof lc);
	return e2e_scopes_parse(&tbl, scopes, strlen(scopes), "scopes", err, sizeof err) != E2E_OK;
}

static struct e2e_enroll *parse(enum e2e_enroll_kind kind, const char *text, uint32_t spare,
	enum e2e_status want)
{
	struct e2e_enroll *en = (struct e2e_enroll *)&err;   /* must be reset to NULL */

	memset(err, 0, sizeof err);
	CU_ASSERT_EQUAL(e2e_enroll_parse(&en, kind, &tbl, text, strlen(text),
		kind == E2E_ENROLL_TRUST ? "trust" : "enrolled", spare, err, sizeof err), want);
	if (want != E2E_OK)
		CU_ASSERT_PTR_NULL(en);
	return en;
}

/* ---- Safety ------------------------------------------------------------ */

static void test_safety(void)
{
	struct e2e_enroll *en = NULL;
	uint8_t bm[E2E_SCOPE_BITMAP_BYTES] = { 2 };

	CU_ASSERT_EQUAL(e2e_enroll_parse(NULL, E2E_ENROLL_TRUST, NULL, "", 0, "t", 0, NULL, 0),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_enroll_parse(&en, 7, &tbl, "", 0, "t", 0, NULL, 0), E2E_ERR_ARG);
	/* An enrolled list cannot resolve scope names without the table. */
	CU_ASSERT_EQUAL(e2e_enroll_parse(&en, E2E_ENROLL_SENDER, NULL, "", 0, "t", 0, NULL, 0),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_enroll_load(&en, E2E_ENROLL_TRUST, NULL, NULL, 0, NULL, 0), E2E_ERR_ARG);
	CU_ASSERT_PTR_NULL(en);
	CU_ASSERT_EQUAL(e2e_enroll_add(NULL, "a", &pa, bm), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_enroll_remove(NULL, "a"), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_enroll_revoke(NULL, "a", NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_enroll_save(NULL, &tbl, "x"), E2E_ERR_ARG);
	CU_ASSERT_PTR_NULL(e2e_enroll_find_key(NULL, pa.sign_pk));
	CU_ASSERT_PTR_NULL(e2e_enroll_find_name(NULL, "a"));
	CU_ASSERT_PTR_NULL(e2e_enroll_at(NULL, 0));
	CU_ASSERT_EQUAL(e2e_enroll_count(NULL), 0);
	CU_ASSERT_EQUAL(e2e_enroll_allows(NULL, 1), 0);
	e2e_enroll_free(NULL);
	en = parse(E2E_ENROLL_SENDER, "", 1, E2E_OK);
	CU_ASSERT_EQUAL(e2e_enroll_add(en, "a", &pa, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_enroll_add(en, "a", NULL, bm), E2E_ERR_ARG);
	/* Trust-only and sender-only operations are kept apart. */
	CU_ASSERT_EQUAL(e2e_enroll_kind(en), E2E_ENROLL_SENDER);
	e2e_enroll_free(en);
	en = parse(E2E_ENROLL_TRUST, "", 1, E2E_OK);
	CU_ASSERT_EQUAL(e2e_enroll_revoke(en, "a", NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_enroll_set_scopes(en, "a", bm), E2E_ERR_ARG);
	e2e_enroll_free(en);
}

/* ---- Parsing ----------------------------------------------------------- */

static void test_parse_enrolled(void)
{
	char text[1024];
	struct e2e_enroll *en;
	const struct e2e_enroll_entry *e;

	snprintf(text, sizeof text, "# subscribers\n\nalice telemetry,alarms %s\r\n"
		"  bob\talarms   %s\nrevoked carol %s\n", la, lb, lc);
	en = parse(E2E_ENROLL_SENDER, text, 0, E2E_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(en);
	CU_ASSERT_EQUAL(e2e_enroll_count(en), 3);
	e = e2e_enroll_find_key(en, pa.sign_pk);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_STRING_EQUAL(e->name, "alice");
	CU_ASSERT_EQUAL(e->line, 3);
	CU_ASSERT(memcmp(&e->pub, &pa, sizeof pa) == 0);
	CU_ASSERT(e2e_enroll_allows(e, 1) && e2e_enroll_allows(e, 2));
	CU_ASSERT(!e2e_enroll_allows(e, 0) && !e2e_enroll_allows(e, 3));
	e = e2e_enroll_find_name(en, "bob");
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT(e2e_enroll_allows(e, 2) && !e2e_enroll_allows(e, 1));
	CU_ASSERT_PTR_EQUAL(e, e2e_enroll_find_key(en, pb.sign_pk));
	/* A revoked key is found (to refuse it) but allows nothing. */
	e = e2e_enroll_find_key(en, pc.sign_pk);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->revoked, 1);
	CU_ASSERT_STRING_EQUAL(e->name, "carol");
	CU_ASSERT(!e2e_enroll_allows(e, 1) && !e2e_enroll_allows(e, 2));
	CU_ASSERT_PTR_NULL(e2e_enroll_find_name(en, "carol"));
	CU_ASSERT_PTR_NULL(e2e_enroll_find_name(en, "Alice"));
	e2e_enroll_free(en);
}

static void test_parse_errors(void)
{
	char text[1024];
	/* Each line is pre + alice's public line (when key) + post. */
	const struct { const char *pre; int key; const char *post, *msg; } bad[] = {
		{ "alice nope ", 1, "\n", "enrolled:1: unknown scope 'nope'" },
		{ "\n#\nalice alarms,,telemetry ", 1, "\n", "enrolled:3: empty scope" },
		{ "alice alarms, ", 1, "\n", "enrolled:1: empty scope" },
		{ "al/ice alarms ", 1, "\n", "enrolled:1: name must match" },
		{ "revoked revoked ", 1, "\n", "enrolled:1: name must match" },
		{ "alice alarms ", 1, "x\n", "enrolled:1: bad public key" },
		{ "alice alarms e2e2", 1, "\n", "enrolled:1: bad public key" },
		{ "alice alarms e2e1 AAAA", 0, "\n", "enrolled:1: bad public key" },
		{ "alice alarms", 0, "\n", "enrolled:1: expected: <name> <scope>" },
		{ "alice alarms ", 1, " extra\n", "enrolled:1: expected" },
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		/* "e2e2" + "e2e1 ..." makes the tag "e2e2e2e1": a bad tag. */
		snprintf(text, sizeof text, "%s%s%s", bad[i].pre, bad[i].key ? la : "", bad[i].post);
		parse(E2E_ENROLL_SENDER, text, 0, E2E_ERR_MALFORMED);
		if (strncmp(err, bad[i].msg, strlen(bad[i].msg)) != 0)
			fprintf(stderr, "\n  case %zu: got '%s' want '%s...'\n", i, err, bad[i].msg);
		CU_ASSERT_NSTRING_EQUAL(err, bad[i].msg, strlen(bad[i].msg));
	}
}

static void test_parse_duplicates(void)
{
	char text[1024];

	snprintf(text, sizeof text, "alice alarms %s\nbob alarms %s\n# x\nalice telemetry %s\n",
		la, lb, lc);
	parse(E2E_ENROLL_SENDER, text, 0, E2E_ERR_EXISTS);
	CU_ASSERT_STRING_EQUAL(err, "enrolled:4: name 'alice' already on line 1");
	snprintf(text, sizeof text, "alice alarms %s\nbob alarms %s\nrevoked carol %s\n",
		la, lb, la);
	parse(E2E_ENROLL_SENDER, text, 0, E2E_ERR_EXISTS);
	CU_ASSERT_STRING_EQUAL(err, "enrolled:3: public key already listed on line 1");
	/* A revoked name may be reused by a new key. */
	snprintf(text, sizeof text, "revoked alice %s\nalice alarms %s\nrevoked alice %s\n",
		la, lb, lc);
	e2e_enroll_free(parse(E2E_ENROLL_SENDER, text, 0, E2E_OK));
}

static void test_parse_trust(void)
{
	char text[1024];
	struct e2e_enroll *en;

	snprintf(text, sizeof text, "site1 %s\n# comment\nsite-2.example@x %s\n", la, lb);
	en = parse(E2E_ENROLL_TRUST, text, 0, E2E_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(en);
	CU_ASSERT_EQUAL(e2e_enroll_count(en), 2);
	CU_ASSERT_STRING_EQUAL(e2e_enroll_find_key(en, pb.sign_pk)->name, "site-2.example@x");
	CU_ASSERT_PTR_NULL(e2e_enroll_find_key(en, pc.sign_pk));
	e2e_enroll_free(en);
	snprintf(text, sizeof text, "site1 %s\nsite2 alarms %s\n", la, lb);
	parse(E2E_ENROLL_TRUST, text, 0, E2E_ERR_MALFORMED);
	CU_ASSERT_NSTRING_EQUAL(err, "trust:2: expected: <name> e2e1", 30);
	snprintf(text, sizeof text, "site1 %s\nsite1 %s\n", la, lb);
	parse(E2E_ENROLL_TRUST, text, 0, E2E_ERR_EXISTS);
	CU_ASSERT_STRING_EQUAL(err, "trust:2: name 'site1' already on line 1");
}

/* ---- Editing ----------------------------------------------------------- */

static void test_edit(void)
{
	uint8_t bm[E2E_SCOPE_BITMAP_BYTES] = { 0 }, held[E2E_SCOPE_BITMAP_BYTES], none[32] = { 0 };
	struct e2e_enroll *en = parse(E2E_ENROLL_SENDER, "", 2, E2E_OK);

	CU_ASSERT_PTR_NOT_NULL_FATAL(en);
	e2e_scope_bitmap_set(bm, 1);
	CU_ASSERT(e2e_scope_bitmap_has(bm, 1) && !e2e_scope_bitmap_has(bm, 0));
	CU_ASSERT_EQUAL(e2e_enroll_add(en, "revoked", &pa, bm), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_enroll_add(en, "a b", &pa, bm), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_enroll_add(en, "alice", &pa, none), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_enroll_add(en, "alice", &pa, bm), E2E_OK);
	CU_ASSERT_EQUAL(e2e_enroll_add(en, "alice", &pb, bm), E2E_ERR_EXISTS);
	CU_ASSERT_EQUAL(e2e_enroll_add(en, "alice2", &pa, bm), E2E_ERR_EXISTS);
	e2e_scope_bitmap_set(bm, 2);
	CU_ASSERT_EQUAL(e2e_enroll_set_scopes(en, "alice", bm), E2E_OK);
	CU_ASSERT(e2e_enroll_allows(e2e_enroll_find_name(en, "alice"), 2));
	CU_ASSERT_EQUAL(e2e_enroll_set_scopes(en, "nobody", bm), E2E_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(e2e_enroll_set_scopes(en, "alice", none), E2E_ERR_ARG);
	/* Revoke hands back the scopes to rotate; the key stays listed. */
	memset(held, 0, sizeof held);
	CU_ASSERT_EQUAL(e2e_enroll_revoke(en, "alice", held), E2E_OK);
	CU_ASSERT(memcmp(held, bm, sizeof bm) == 0);
	CU_ASSERT_EQUAL(e2e_enroll_revoke(en, "alice", held), E2E_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(e2e_enroll_find_key(en, pa.sign_pk)->revoked, 1);
	CU_ASSERT_EQUAL(e2e_enroll_add(en, "alice", &pa, bm), E2E_ERR_EXISTS);
	/* Same name, new key: allowed once the old one is revoked. */
	CU_ASSERT_EQUAL(e2e_enroll_add(en, "alice", &pb, bm), E2E_OK);
	/* Room for 2 was asked for: a third entry does not fit. */
	CU_ASSERT_EQUAL(e2e_enroll_add(en, "carol", &pc, bm), E2E_ERR_FULL);
	CU_ASSERT_EQUAL(e2e_enroll_remove(en, "alice"), E2E_OK);
	CU_ASSERT_EQUAL(e2e_enroll_remove(en, "alice"), E2E_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(e2e_enroll_count(en), 1);
	CU_ASSERT_EQUAL(e2e_enroll_add(en, "carol", &pc, bm), E2E_OK);
	CU_ASSERT_STRING_EQUAL(e2e_enroll_at(en, 1)->name, "carol");
	e2e_enroll_free(en);
}

/* The key index: colliding hashes, removals and re-adds keep every lookup right. */
static void test_index(void)
{
	enum { N = 3000 };
	static struct e2e_public keys[N];
	uint8_t bm[E2E_SCOPE_BITMAP_BYTES] = { 0 };
	struct e2e_enroll *en = parse(E2E_ENROLL_SENDER, "", N, E2E_OK);
	char name[32];
	int bad = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(en);
	e2e_scope_bitmap_set(bm, 1);
	for (int i = 0; i < N; i++) {
		randombytes_buf(&keys[i], sizeof keys[i]);
		/* A third share their first 4 bytes (the hash): long probe runs. */
		if (i % 3 == 0)
			memset(keys[i].sign_pk, 0xAB, 4);
		snprintf(name, sizeof name, "s%d", i);
		bad += e2e_enroll_add(en, name, &keys[i], bm) != E2E_OK;
	}
	CU_ASSERT_EQUAL(bad, 0);
	for (int i = 0; i < N; i++)
		bad += e2e_enroll_find_key(en, keys[i].sign_pk) != e2e_enroll_at(en, (uint32_t)i);
	CU_ASSERT_EQUAL(bad, 0);
	/* Unknown keys, with and without the shared prefix. */
	{
		struct e2e_public x;

		randombytes_buf(&x, sizeof x);
		CU_ASSERT_PTR_NULL(e2e_enroll_find_key(en, x.sign_pk));
		memset(x.sign_pk, 0xAB, 4);
		CU_ASSERT_PTR_NULL(e2e_enroll_find_key(en, x.sign_pk));
	}
	/* Remove every other entry: the removed are gone, the rest still found. */
	for (int i = 0; i < N; i += 2) {
		snprintf(name, sizeof name, "s%d", i);
		bad += e2e_enroll_remove(en, name) != E2E_OK;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(e2e_enroll_count(en), N / 2);
	for (int i = 0; i < N; i++) {
		const struct e2e_enroll_entry *e = e2e_enroll_find_key(en, keys[i].sign_pk);

		snprintf(name, sizeof name, "s%d", i);
		bad += i % 2 == 0 ? e != NULL : (!e || strcmp(e->name, name) != 0);
	}
	CU_ASSERT_EQUAL(bad, 0);
	/* Added back under new names: found again, as the new entries. */
	for (int i = 0; i < N; i += 2) {
		snprintf(name, sizeof name, "t%d", i);
		bad += e2e_enroll_add(en, name, &keys[i], bm) != E2E_OK;
		bad += strcmp(e2e_enroll_find_key(en, keys[i].sign_pk)->name, name) != 0;
	}
	CU_ASSERT_EQUAL(bad, 0);
	e2e_enroll_free(en);
}

/* ---- Files ------------------------------------------------------------- */

static void test_round_trip(void)
{
	const char *dir = kt_tmpdir();
	char path[512], text[1024];
	uint8_t bm[E2E_SCOPE_BITMAP_BYTES] = { 0 };
	struct e2e_enroll *en = NULL, *back = NULL;
	struct e2e_scopes *none = NULL;

	snprintf(path, sizeof path, "%s", kt_file(dir, "enrolled"));
	/* Missing file: an empty list. */
	CU_ASSERT_EQUAL(e2e_enroll_load(&en, E2E_ENROLL_SENDER, &tbl, path, 1, err, sizeof err),
		E2E_OK);
	CU_ASSERT_EQUAL(e2e_enroll_count(en), 0);
	e2e_enroll_free(en);
	snprintf(text, sizeof text, "# hand-written\nalice telemetry,alarms %s\nrevoked bob %s\n",
		la, lb);
	CU_ASSERT_EQUAL_FATAL(kt_write(path, text, 0644), 0);
	CU_ASSERT_EQUAL_FATAL(e2e_enroll_load(&en, E2E_ENROLL_SENDER, &tbl, path, 1, err,
		sizeof err), E2E_OK);
	e2e_scope_bitmap_set(bm, 2);
	CU_ASSERT_EQUAL(e2e_enroll_add(en, "carol", &pc, bm), E2E_OK);
	CU_ASSERT_EQUAL(e2e_enroll_save(en, &tbl, path), E2E_OK);
	CU_ASSERT_EQUAL(kt_mode(path), 0600);
	CU_ASSERT_EQUAL_FATAL(e2e_enroll_load(&back, E2E_ENROLL_SENDER, &tbl, path, 0, err,
		sizeof err), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_enroll_count(back), 3);
	for (uint32_t i = 0; i < 3; i++) {
		const struct e2e_enroll_entry *x = e2e_enroll_at(en, i), *y = e2e_enroll_at(back, i);

		CU_ASSERT_STRING_EQUAL(x->name, y->name);
		CU_ASSERT(memcmp(&x->pub, &y->pub, sizeof x->pub) == 0);
		CU_ASSERT(memcmp(x->scopes, y->scopes, sizeof x->scopes) == 0);
		CU_ASSERT_EQUAL(x->revoked, y->revoked);
	}
	/* A scope bit the table cannot name is not written. */
	memset(bm, 0, sizeof bm);
	e2e_scope_bitmap_set(bm, 9);
	CU_ASSERT_EQUAL(e2e_enroll_set_scopes(back, "alice", bm), E2E_OK);
	CU_ASSERT_EQUAL(e2e_enroll_save(back, &tbl, path), E2E_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(e2e_enroll_save(back, none, path), E2E_ERR_ARG);
	e2e_enroll_free(back);
	e2e_enroll_free(en);
	kt_tmpdir_remove();
}

static void test_trust_file(void)
{
	const char *dir = kt_tmpdir();
	char path[512];
	struct e2e_enroll *en = NULL;

	snprintf(path, sizeof path, "%s", kt_file(dir, "trust"));
	CU_ASSERT_EQUAL_FATAL(e2e_enroll_load(&en, E2E_ENROLL_TRUST, NULL, path, 1, err,
		sizeof err), E2E_OK);
	CU_ASSERT_EQUAL(e2e_enroll_add(en, "site1", &pa, NULL), E2E_OK);
	CU_ASSERT_EQUAL(e2e_enroll_save(en, NULL, path), E2E_OK);
	e2e_enroll_free(en);
	en = NULL;
	CU_ASSERT_EQUAL_FATAL(e2e_enroll_load(&en, E2E_ENROLL_TRUST, NULL, path, 0, err,
		sizeof err), E2E_OK);
	CU_ASSERT_PTR_NOT_NULL(e2e_enroll_find_key(en, pa.sign_pk));
	CU_ASSERT_EQUAL(e2e_enroll_remove(en, "site1"), E2E_OK);
	CU_ASSERT_EQUAL(e2e_enroll_save(en, NULL, path), E2E_OK);
	e2e_enroll_free(en);
	en = NULL;
	CU_ASSERT_EQUAL_FATAL(e2e_enroll_load(&en, E2E_ENROLL_TRUST, NULL, path, 0, err,
		sizeof err), E2E_OK);
	CU_ASSERT_EQUAL(e2e_enroll_count(en), 0);
	e2e_enroll_free(en);
	/* A symlink is not followed: the list could be swapped under us. */
	CU_ASSERT_EQUAL(symlink(path, kt_file(dir, "link")), 0);
	CU_ASSERT_EQUAL(e2e_enroll_load(&en, E2E_ENROLL_TRUST, NULL, kt_file(dir, "link"), 0,
		err, sizeof err), E2E_ERR_PERM);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/link: "));
	kt_tmpdir_remove();
}

/*
 * trust, enrolled and scopes are not secret, but whoever may write them
 * decides whom we trust, who gets keys and which topics are sealed: the
 * same owner rule as secret files, and no group/other write bit.
 */
static void test_public_file_modes(void)
{
	static const mode_t refused[] = { 0664, 0646, 0620, 0602, 0666, 0777, 0622 };
	static const mode_t accepted[] = { 0600, 0644, 0640, 0604, 0400, 0444 };
	const char *dir = kt_tmpdir();
	char path[512], spath[512], want[600];
	struct e2e_enroll *en = NULL;
	struct e2e_scopes *stbl = calloc(1, sizeof *stbl);
	char line[200];

	CU_ASSERT_PTR_NOT_NULL_FATAL(stbl);
	snprintf(path, sizeof path, "%s", kt_file(dir, "trust"));
	snprintf(spath, sizeof spath, "%s", kt_file(dir, "scopes"));
	CU_ASSERT_EQUAL_FATAL(e2e_public_format(line, sizeof line, &pa, NULL), E2E_OK);
	{
		char text[300];

		snprintf(text, sizeof text, "site1 %s\n", line);
		CU_ASSERT_EQUAL_FATAL(kt_write(path, text, 0600), 0);
	}
	CU_ASSERT_EQUAL_FATAL(kt_write(spath, "scope 1 telemetry sensors/#\n", 0600), 0);
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		CU_ASSERT_EQUAL_FATAL(chmod(path, refused[i]), 0);
		err[0] = '\0';
		CU_ASSERT_EQUAL(e2e_enroll_load(&en, E2E_ENROLL_TRUST, NULL, path, 0, err,
			sizeof err), E2E_ERR_PERM);
		CU_ASSERT_PTR_NULL(en);
		snprintf(want, sizeof want, "%s: insecure permissions: owner uid %u, mode %04o",
			path, (unsigned)geteuid(), (unsigned)refused[i]);
		KT_CHECK(strncmp(err, want, strlen(want)) == 0, "mode %04o: \"%s\"",
			(unsigned)refused[i], err);
		CU_ASSERT_EQUAL_FATAL(chmod(spath, refused[i]), 0);
		CU_ASSERT_EQUAL(e2e_scopes_load(stbl, spath, err, sizeof err), E2E_ERR_PERM);
	}
	for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
		CU_ASSERT_EQUAL_FATAL(chmod(path, accepted[i]), 0);
		KT_CHECK(e2e_enroll_load(&en, E2E_ENROLL_TRUST, NULL, path, 0, err, sizeof err) ==
			E2E_OK, "mode %04o refused: %s", (unsigned)accepted[i], err);
		e2e_enroll_free(en);
		en = NULL;
		CU_ASSERT_EQUAL_FATAL(chmod(spath, accepted[i]), 0);
		CU_ASSERT_EQUAL(e2e_scopes_load(stbl, spath, err, sizeof err), E2E_OK);
	}
	/* Another owner, even with a safe mode (needs the right to give files away). */
	CU_ASSERT_EQUAL_FATAL(chmod(path, 0644), 0);
	if (geteuid() == 0 && chown(path, 65534, 65534) == 0) {
		CU_ASSERT_EQUAL(e2e_enroll_load(&en, E2E_ENROLL_SENDER, NULL, path, 0, err,
			sizeof err), E2E_ERR_PERM);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "owner uid 65534, mode 0644"));
	}
	/* A directory in its place. */
	CU_ASSERT_EQUAL_FATAL(mkdir(kt_file(dir, "enrolled"), 0700), 0);
	CU_ASSERT_EQUAL(e2e_enroll_load(&en, E2E_ENROLL_SENDER, NULL, kt_file(dir, "enrolled"), 0,
		err, sizeof err), E2E_ERR_PERM);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "enrolled: insecure permissions: not a regular file"));
	free(stbl);
	kt_tmpdir_remove();
}

static const struct kt_case cases[] = {
	{ "Safety: NULL and invalid arguments", test_safety },
	{ "Parse: enrolled entries and lookup", test_parse_enrolled },
	{ "Parse: errors name file and line", test_parse_errors },
	{ "Parse: duplicate names and keys", test_parse_duplicates },
	{ "Parse: trust file", test_parse_trust },
	{ "Files: trust/enrolled/scopes owner and group/other write refused", test_public_file_modes },
	{ "Edit: add, scopes, revoke, remove, capacity", test_edit },
	{ "Index: 3,000 keys, colliding hashes, removals, re-adds", test_index },
	{ "Files: enrolled round trip", test_round_trip },
	{ "Files: trust round trip and symlink refusal", test_trust_file },
	{ NULL, NULL },
};

int main(void)
{
	if (e2e_init() != E2E_OK || setup() != 0)
		return 1;
	return kt_run("enroll", cases);
}
