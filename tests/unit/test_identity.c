/*
 * Identity tests: identity.json vectors (public line, fingerprint, sender
 * id from a secret file), secret file save/load and its refusals, and the
 * public key line codec.
 */
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "testcu.h"

#define LINE_CAP 256U

/* Write @p text as a secret file with @p mode and load it. */
static enum e2e_status load_text(const struct tu_tmp *t, const char *text, mode_t mode,
	struct e2e_identity *id)
{
	CU_ASSERT_EQUAL_FATAL(tu_write_file(t->path, text, strlen(text), mode), 0);
	return e2e_identity_load(id, t->path);
}

static void generate(struct e2e_identity *id)
{
	CU_ASSERT_EQUAL_FATAL(e2e_identity_generate(id), E2E_OK);
}

/* Same keys (the secrets live in separate blocks: compare their bytes). */
static int same_identity(const struct e2e_identity *a, const struct e2e_identity *b)
{
	return !memcmp(&a->pub, &b->pub, sizeof a->pub) &&
		!memcmp(a->sign_sk, b->sign_sk, E2E_SIGN_SK_BYTES) &&
		!memcmp(a->dh_sk, b->dh_sk, E2E_DH_BYTES);
}

/* ---- Safety ------------------------------------------------------------ */

static void test_safety_args(void)
{
	struct e2e_identity id, other;
	struct e2e_public pub;
	char line[LINE_CAP], name[E2E_NAME_MAX + 1];

	generate(&id);
	CU_ASSERT_EQUAL(e2e_identity_generate(NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_identity_save(NULL, "x", 0), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_identity_save(&id, NULL, 0), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_identity_load(NULL, "x"), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_identity_load(&other, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_public_format(NULL, sizeof line, &id.pub, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_public_format(line, sizeof line, NULL, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_public_format(line, sizeof line, &id.pub, NULL), E2E_OK);
	CU_ASSERT_EQUAL(e2e_public_parse(NULL, name, sizeof name, line), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_public_parse(&pub, name, sizeof name, NULL), E2E_ERR_ARG);
	/* The name is optional on output. */
	CU_ASSERT_EQUAL(e2e_public_parse(&pub, NULL, 0, line), E2E_OK);
	CU_ASSERT(!memcmp(&pub, &id.pub, sizeof pub));
	e2e_identity_destroy(NULL);
	e2e_identity_destroy(&id);
}

static void test_safety_short_buffers(void)
{
	struct e2e_identity id;
	struct e2e_public pub;
	char line[LINE_CAP], name[8];

	generate(&id);
	/* Exactly E2E_PUBLINE_MIN for a line without name, one more byte per name char. */
	CU_ASSERT_EQUAL(e2e_public_format(line, E2E_PUBLINE_MIN - 1, &id.pub, NULL), E2E_ERR_BUFFER);
	CU_ASSERT_EQUAL(e2e_public_format(line, E2E_PUBLINE_MIN, &id.pub, NULL), E2E_OK);
	CU_ASSERT_EQUAL(strlen(line), E2E_PUBLINE_MIN - 1);
	CU_ASSERT_EQUAL(e2e_public_format(line, E2E_PUBLINE_MIN + 5, &id.pub, "alice"), E2E_ERR_BUFFER);
	CU_ASSERT_EQUAL(e2e_public_format(line, E2E_PUBLINE_MIN + 6, &id.pub, "alice"), E2E_OK);
	/* A name that does not fit the caller's buffer. */
	CU_ASSERT_EQUAL(e2e_public_format(line, sizeof line, &id.pub, "longername"), E2E_OK);
	CU_ASSERT_EQUAL(e2e_public_parse(&pub, name, sizeof name, line), E2E_ERR_BUFFER);
	e2e_identity_destroy(&id);
}

/* ---- Guarded memory ------------------------------------------------------ */

#define FAULT_EXIT 99

static void on_fault(int sig)
{
	(void)sig;
	_exit(FAULT_EXIT);
}

/*
 * Run @p fn(@p p) in a child: 1 if the child took a memory fault, 0 if @p fn
 * returned normally. The child's own SIGSEGV/SIGBUS handler reports the
 * fault (quietly, also under a sanitizer that would print a report).
 */
static int faults(void (*fn)(volatile uint8_t *), volatile uint8_t *p)
{
	int status = 0;
	pid_t pid = fork();

	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct sigaction sa;

		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_fault;
		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
		fn(p);
		_exit(0);
	}
	CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
	return WIFEXITED(status) && WEXITSTATUS(status) == FAULT_EXIT;
}

static void poke(volatile uint8_t *p)
{
	p[0] ^= 1;
}

static void peek(volatile uint8_t *p)
{
	(void)p[0];
}

/*
 * The secrets come from sodium_malloc: one block whose end touches a guard
 * page (sodium_malloc's layout), read-only once filled, unmapped by destroy.
 * An identity from each creating function is checked the same way.
 */
static void check_guarded(struct e2e_identity *id, const char *how)
{
	long page = sysconf(_SC_PAGESIZE);
	const uint8_t *sk = id->sign_sk;

	TU_CHECK(sk && id->dh_sk == sk + E2E_SIGN_SK_BYTES, "%s: one block, sign then dh", how);
	if (!sk)
		return;
	TU_CHECK(((uintptr_t)(sk + E2E_SIGN_SK_BYTES + E2E_DH_BYTES)) % (uintptr_t)page == 0,
		"%s: block does not end at a page boundary (not from sodium_malloc)", how);
	TU_CHECK(!faults(peek, (volatile uint8_t *)(uintptr_t)sk), "%s: secret not readable", how);
	TU_CHECK(faults(poke, (volatile uint8_t *)(uintptr_t)id->dh_sk),
		"%s: dh secret is writable (not read-only)", how);
	TU_CHECK(faults(poke, (volatile uint8_t *)(uintptr_t)sk),
		"%s: sign secret is writable (not read-only)", how);
	TU_CHECK(faults(peek, (volatile uint8_t *)(uintptr_t)(sk + E2E_SIGN_SK_BYTES +
		E2E_DH_BYTES)), "%s: no guard page after the block", how);
	e2e_identity_destroy(id);
	TU_CHECK(id->sign_sk == NULL && id->dh_sk == NULL, "%s: destroy leaves pointers", how);
	TU_CHECK(sodium_is_zero((const unsigned char *)id, sizeof *id), "%s: destroy leaves bytes",
		how);
	/* Unmapped, not merely released to a heap that keeps the bytes. */
	TU_CHECK(faults(peek, (volatile uint8_t *)(uintptr_t)sk), "%s: block still mapped", how);
	e2e_identity_destroy(id);   /* twice: a no-op on an empty identity */
}

static void test_guarded_memory(void)
{
	static const uint8_t seed[32] = { 7 }, dh[32] = { 9 };
	struct e2e_identity id, loaded;
	struct tu_tmp t;

	generate(&id);
	tu_tmp_open(&t, "id.secret");
	CU_ASSERT_EQUAL_FATAL(e2e_identity_save(&id, t.path, 0), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_identity_load(&loaded, t.path), E2E_OK);
	CU_ASSERT(same_identity(&id, &loaded));
	CU_ASSERT(id.sign_sk != loaded.sign_sk);
	check_guarded(&id, "generate");
	check_guarded(&loaded, "load");
	CU_ASSERT_EQUAL_FATAL(e2e_identity_from_secrets(&id, seed, dh), E2E_OK);
	CU_ASSERT(!memcmp(id.sign_sk, seed, 32) && !memcmp(id.dh_sk, dh, 32));
	check_guarded(&id, "from_secrets");
	tu_tmp_close(&t);
}

/* A failed fill leaves an empty identity: destroy is safe, nothing leaks. */
static void test_failed_fill_is_empty(void)
{
	static const uint8_t seed[32] = { 7 };
	struct e2e_identity id;
	struct tu_tmp t;

	memset(&id, 0xAA, sizeof id);
	CU_ASSERT_EQUAL(e2e_identity_load(&id, NULL), E2E_ERR_ARG);
	CU_ASSERT(sodium_is_zero((const unsigned char *)&id, sizeof id));
	memset(&id, 0xAA, sizeof id);
	CU_ASSERT_EQUAL(e2e_identity_from_secrets(&id, seed, NULL), E2E_ERR_ARG);
	CU_ASSERT(sodium_is_zero((const unsigned char *)&id, sizeof id));
	CU_ASSERT_EQUAL(e2e_identity_from_secrets(NULL, seed, seed), E2E_ERR_ARG);
	/* An empty identity has nothing to save. */
	CU_ASSERT_EQUAL(e2e_identity_save(&id, "x", 0), E2E_ERR_ARG);
	tu_tmp_open(&t, "id.secret");
	memset(&id, 0xAA, sizeof id);
	CU_ASSERT_EQUAL(load_text(&t, "e2e-secret1 AAAA\n", 0600, &id), E2E_ERR_CORRUPT);
	CU_ASSERT(sodium_is_zero((const unsigned char *)&id, sizeof id));
	e2e_identity_destroy(&id);
	tu_tmp_close(&t);
}

/* ---- Vectors ----------------------------------------------------------- */

static void check_identity_vector(const json_t *v)
{
	const char *publine = tu_jstr(v, "public_line"), *fp = tu_jstr(v, "fingerprint");
	const char *secret = tu_jstr(v, "secret_file"), *vname = tu_jstr(v, "name");
	uint8_t seed[32], dh_sk[32], sign_pk[32], dh_pk[32];
	size_t l1 = 0, l2 = 0, l3 = 0, l4 = 0;
	uint64_t sid = 0;
	struct e2e_identity id;
	struct e2e_public pub;
	char line[LINE_CAP], fpr[E2E_FINGERPRINT_LEN], name[E2E_NAME_MAX + 1];
	struct tu_tmp t;

	if (!publine || !fp || !secret || !vname || tu_jhex(v, "seed", seed, 32, &l1) ||
	    tu_jhex(v, "dh_sk", dh_sk, 32, &l2) || tu_jhex(v, "sign_pk", sign_pk, 32, &l3) ||
	    tu_jhex(v, "dh_pk", dh_pk, 32, &l4) || tu_juint(v, "sender_id", &sid) ||
	    l1 != 32 || l2 != 32 || l3 != 32 || l4 != 32)
		return;
	tu_tmp_open(&t, "id.secret");
	CU_ASSERT_EQUAL_FATAL(load_text(&t, secret, 0600, &id), E2E_OK);
	TU_CHECK(!memcmp(id.pub.sign_pk, sign_pk, 32), "%s: sign_pk differs", publine);
	TU_CHECK(!memcmp(id.pub.dh_pk, dh_pk, 32), "%s: dh_pk differs", publine);
	TU_CHECK(!memcmp(id.sign_sk, seed, 32) && !memcmp(id.sign_sk + 32, sign_pk, 32),
		"%s: sign_sk is not seed || pk", publine);
	TU_CHECK(!memcmp(id.dh_sk, dh_sk, 32), "%s: dh_sk differs", publine);
	/* The public line, with the vector's name if it has one. */
	CU_ASSERT_EQUAL(e2e_public_format(line, sizeof line, &id.pub, *vname ? vname : NULL), E2E_OK);
	TU_CHECK(!strcmp(line, publine), "public line \"%s\", expected \"%s\"", line, publine);
	e2e_public_fingerprint(fpr, &id.pub);
	TU_CHECK(!strcmp(fpr, fp), "fingerprint %s, expected %s", fpr, fp);
	TU_CHECK(strlen(fpr) == E2E_FINGERPRINT_LEN - 1, "fingerprint length %zu", strlen(fpr));
	TU_CHECK(e2e_sender_id(&id.pub) == sid, "sender id %08x, expected %08llx",
		e2e_sender_id(&id.pub), (unsigned long long)sid);
	/* And back from the line alone. */
	memset(name, 'x', sizeof name);
	CU_ASSERT_EQUAL(e2e_public_parse(&pub, name, sizeof name, publine), E2E_OK);
	CU_ASSERT(!memcmp(&pub, &id.pub, sizeof pub));
	TU_CHECK(!strcmp(name, vname), "parsed name \"%s\", expected \"%s\"", name, vname);
	e2e_identity_destroy(&id);
	tu_tmp_close(&t);
}

static void test_vectors(void)
{
	tu_each_vector("identity.json", "vectors", check_identity_vector);
}

/* ---- Secret files ------------------------------------------------------ */

static void test_save_load_round_trip(void)
{
	struct e2e_identity id, back;
	struct tu_tmp t;
	struct stat sb;
	uint8_t *text;
	size_t len = 0;

	generate(&id);
	tu_tmp_open(&t, "id.secret");
	CU_ASSERT_EQUAL_FATAL(e2e_identity_save(&id, t.path, 0), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(stat(t.path, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 07777, 0600);
	CU_ASSERT(S_ISREG(sb.st_mode));
	CU_ASSERT_EQUAL(tu_dir_entries(t.dir), 1);
	text = tu_read_file(t.path, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	/* Text with exactly one secret line. */
	CU_ASSERT_PTR_NOT_NULL(strstr((char *)text, "e2e-secret1 "));
	CU_ASSERT_PTR_NULL(strstr(strstr((char *)text, "e2e-secret1 ") + 1, "e2e-secret1 "));
	free(text);
	memset(&back, 0xAA, sizeof back);
	CU_ASSERT_EQUAL(e2e_identity_load(&back, t.path), E2E_OK);
	CU_ASSERT(same_identity(&back, &id));
	e2e_identity_destroy(&back);
	e2e_identity_destroy(&id);
	tu_tmp_close(&t);
}

/* genkey -o - / pubkey from stdin: the text form is the file's, byte for byte. */
static void test_text_form(void)
{
	struct e2e_identity id, back;
	struct tu_tmp t;
	char text[E2E_IDENTITY_TEXT_LEN + 8], small[E2E_IDENTITY_TEXT_LEN - 1];
	uint8_t *file;
	size_t len = 0, flen = 0;

	generate(&id);
	CU_ASSERT_EQUAL(e2e_identity_format(NULL, sizeof text, &len, &id), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_identity_format(text, sizeof text, NULL, &id), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_identity_format(text, sizeof text, &len, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_identity_format(small, sizeof small, &len, &id), E2E_ERR_ARG);
	CU_ASSERT_EQUAL_FATAL(e2e_identity_format(text, sizeof text, &len, &id), E2E_OK);
	CU_ASSERT_EQUAL(len, E2E_IDENTITY_TEXT_LEN);
	tu_tmp_open(&t, "id.secret");
	CU_ASSERT_EQUAL_FATAL(e2e_identity_save(&id, t.path, 0), E2E_OK);
	file = tu_read_file(t.path, &flen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(file);
	CU_ASSERT(flen == len && !memcmp(file, text, len));
	free(file);
	memset(&back, 0xAA, sizeof back);
	CU_ASSERT_EQUAL(e2e_identity_parse(&back, text, len), E2E_OK);
	CU_ASSERT(same_identity(&back, &id));
	/* Output only, as load: release what it holds before parsing into it again. */
	e2e_identity_destroy(&back);
	/* What load refuses, parse refuses: garbage, a cut line, nothing. */
	memset(&back, 0xAA, sizeof back);
	CU_ASSERT_EQUAL(e2e_identity_parse(&back, text, len - 10), E2E_ERR_CORRUPT);
	/* An empty identity on failure, whatever the struct held before. */
	CU_ASSERT(back.sign_sk == NULL && back.dh_sk == NULL);
	CU_ASSERT_EQUAL(e2e_identity_parse(&back, "e2e1 AAAA\n", 10), E2E_ERR_CORRUPT);
	CU_ASSERT_EQUAL(e2e_identity_parse(&back, "", 0), E2E_ERR_CORRUPT);
	CU_ASSERT_EQUAL(e2e_identity_parse(&back, NULL, 0), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_identity_parse(NULL, text, len), E2E_ERR_ARG);
	sodium_memzero(text, sizeof text);
	e2e_identity_destroy(&back);
	e2e_identity_destroy(&id);
	tu_tmp_close(&t);
}

static void test_save_refuses_overwrite(void)
{
	struct e2e_identity a, b, back;
	struct tu_tmp t;

	generate(&a);
	generate(&b);
	tu_tmp_open(&t, "id.secret");
	CU_ASSERT_EQUAL_FATAL(e2e_identity_save(&a, t.path, 0), E2E_OK);
	CU_ASSERT_EQUAL(e2e_identity_save(&b, t.path, 0), E2E_ERR_EXISTS);
	CU_ASSERT_EQUAL(e2e_identity_load(&back, t.path), E2E_OK);
	CU_ASSERT(same_identity(&back, &a));
	e2e_identity_destroy(&back);
	CU_ASSERT_EQUAL(e2e_identity_save(&b, t.path, 1), E2E_OK);
	CU_ASSERT_EQUAL(e2e_identity_load(&back, t.path), E2E_OK);
	CU_ASSERT(same_identity(&back, &b));
	CU_ASSERT_EQUAL(tu_dir_entries(t.dir), 1);
	e2e_identity_destroy(&a);
	e2e_identity_destroy(&b);
	e2e_identity_destroy(&back);
	tu_tmp_close(&t);
}

static void test_load_permissions(void)
{
	static const mode_t refused[] = { 0640, 0604, 0660, 0644, 0606, 0610, 0601, 0666 };
	static const mode_t accepted[] = { 0600, 0400 };
	struct e2e_identity id, back;
	struct tu_tmp t;

	generate(&id);
	tu_tmp_open(&t, "id.secret");
	CU_ASSERT_EQUAL_FATAL(e2e_identity_save(&id, t.path, 0), E2E_OK);
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		CU_ASSERT_EQUAL_FATAL(chmod(t.path, refused[i]), 0);
		TU_CHECK(e2e_identity_load(&back, t.path) == E2E_ERR_PERM, "mode %04o accepted",
			(unsigned)refused[i]);
	}
	for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
		CU_ASSERT_EQUAL_FATAL(chmod(t.path, accepted[i]), 0);
		TU_CHECK(e2e_identity_load(&back, t.path) == E2E_OK, "mode %04o refused",
			(unsigned)accepted[i]);
		e2e_identity_destroy(&back);
	}
	/* Not owned by us: only testable with the right to give files away. */
	CU_ASSERT_EQUAL_FATAL(chmod(t.path, 0600), 0);
	if (geteuid() == 0 && chown(t.path, 65534, 65534) == 0)
		CU_ASSERT_EQUAL(e2e_identity_load(&back, t.path), E2E_ERR_PERM);
	e2e_identity_destroy(&id);
	e2e_identity_destroy(&back);
	tu_tmp_close(&t);
}

static void test_load_not_regular(void)
{
	struct e2e_identity id, back;
	struct tu_tmp t;
	char link[4096], sub[4096];

	generate(&id);
	tu_tmp_open(&t, "id.secret");
	CU_ASSERT_EQUAL_FATAL(e2e_identity_save(&id, t.path, 0), E2E_OK);
	/* A directory is not a key file. */
	tu_path(sub, sizeof sub, t.dir, "subdir");
	CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0700), 0);
	CU_ASSERT_NOT_EQUAL(e2e_identity_load(&back, sub), E2E_OK);
	/* Nor a symlink, even to a good one (it could be swapped under us). */
	tu_path(link, sizeof link, t.dir, "link.secret");
	CU_ASSERT_EQUAL_FATAL(symlink(t.path, link), 0);
	CU_ASSERT_NOT_EQUAL(e2e_identity_load(&back, link), E2E_OK);
	/* Missing. */
	tu_path(link, sizeof link, t.dir, "absent");
	CU_ASSERT_EQUAL(e2e_identity_load(&back, link), E2E_ERR_NOT_FOUND);
	e2e_identity_destroy(&id);
	e2e_identity_destroy(&back);
	tu_tmp_close(&t);
}

static void test_load_corrupt(void)
{
	/* A valid encoding of 64 bytes (0..63), for building near-misses. */
	static const char b64[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g"
		"ISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
	/* prefix, then the first n characters of b64, then suffix */
	static const struct { const char *pre; int n; const char *post; } bad[] = {
		{ "", 0, "" },                             /* empty file */
		{ "# only a comment\n\n", 0, "" },
		{ "garbage\n", 0, "" },
		{ "e2e-secret1\n", 0, "" },
		{ "e2e-secret1 ", 87, "\n" },              /* one padding character short */
		{ "e2e-secret1 ", 84, "\n" },              /* a whole group short */
		{ "e2e-secret2 ", 88, "\n" },              /* unknown tag */
		{ "e2e-secret1 ", 88, " x\n" },            /* trailing garbage */
		{ "e2e-secret1  ", 88, "\n" },             /* two spaces */
		{ "e2e-secret1 ", 88, "\ne2e-secret1 AAAA\n" },
	};
	struct e2e_identity id;
	struct tu_tmp t;
	char text[512];

	tu_tmp_open(&t, "id.secret");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum e2e_status st;

		snprintf(text, sizeof text, "%s%.*s%s", bad[i].pre, bad[i].n, b64, bad[i].post);
		st = load_text(&t, text, 0600, &id);
		TU_CHECK(st == E2E_ERR_CORRUPT, "bad file %zu: %s", i, e2e_strerror(st));
	}
	/* A character outside the base64 alphabet. */
	snprintf(text, sizeof text, "e2e-secret1 %s\n", b64);
	text[12 + 40] = '$';
	CU_ASSERT_EQUAL(load_text(&t, text, 0600, &id), E2E_ERR_CORRUPT);
	/* Two secret lines, even identical ones. */
	snprintf(text, sizeof text, "e2e-secret1 %s\ne2e-secret1 %s\n", b64, b64);
	CU_ASSERT_EQUAL(load_text(&t, text, 0600, &id), E2E_ERR_CORRUPT);
	/* The same line between comments and blank lines is fine. */
	snprintf(text, sizeof text, "# comment\n\n# another\ne2e-secret1 %s\n\n# trailing\n", b64);
	CU_ASSERT_EQUAL(load_text(&t, text, 0600, &id), E2E_OK);
	e2e_identity_destroy(&id);
	tu_tmp_close(&t);
}

/* ---- Public lines ------------------------------------------------------ */

static void test_public_round_trip(void)
{
	static const char *const names[] = { NULL, "a", "alice@plant-1",
		"~!#$%&'()*+,-./:;<=>?@[]^_`{|}",
		"0123456789012345678901234567890123456789012345678901234567890123" };
	struct e2e_identity id;
	struct e2e_public pub;
	char line[LINE_CAP], name[E2E_NAME_MAX + 1];

	generate(&id);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		CU_ASSERT_EQUAL_FATAL(e2e_public_format(line, sizeof line, &id.pub, names[i]), E2E_OK);
		CU_ASSERT(!strncmp(line, "e2e1 ", 5));
		CU_ASSERT_EQUAL(strlen(line), 93 + (names[i] ? 1 + strlen(names[i]) : 0));
		memset(&pub, 0, sizeof pub);
		memset(name, 'x', sizeof name);
		CU_ASSERT_EQUAL(e2e_public_parse(&pub, name, sizeof name, line), E2E_OK);
		CU_ASSERT(!memcmp(&pub, &id.pub, sizeof pub));
		TU_CHECK(!strcmp(name, names[i] ? names[i] : ""), "name \"%s\" came back as \"%s\"",
			names[i] ? names[i] : "(none)", name);
	}
	e2e_identity_destroy(&id);
}

static void test_public_rejects(void)
{
	struct e2e_identity id;
	struct e2e_public pub, zero_dh;
	char good[E2E_PUBLINE_MIN], bad[LINE_CAP], name[E2E_NAME_MAX + 1];
	static const char *const bad_names[] = { "a b", "tab\there", "del\x7f", "",
		"01234567890123456789012345678901234567890123456789012345678901234" };

	generate(&id);
	CU_ASSERT_EQUAL_FATAL(e2e_public_format(good, sizeof good, &id.pub, NULL), E2E_OK);
	/* Prefix. */
	snprintf(bad, sizeof bad, "e2e2 %s", good + 5);
	CU_ASSERT_EQUAL(e2e_public_parse(&pub, name, sizeof name, bad), E2E_ERR_MALFORMED);
	snprintf(bad, sizeof bad, "E2E1 %s", good + 5);
	CU_ASSERT_EQUAL(e2e_public_parse(&pub, name, sizeof name, bad), E2E_ERR_MALFORMED);
	snprintf(bad, sizeof bad, "e2e1%s", good + 5);
	CU_ASSERT_EQUAL(e2e_public_parse(&pub, name, sizeof name, bad), E2E_ERR_MALFORMED);
	CU_ASSERT_EQUAL(e2e_public_parse(&pub, name, sizeof name, good + 5), E2E_ERR_MALFORMED);
	/* Length: one base64 character short or extra. */
	memcpy(bad, good, strlen(good) + 1);
	bad[strlen(bad) - 1] = '\0';
	CU_ASSERT_EQUAL(e2e_public_parse(&pub, name, sizeof name, bad), E2E_ERR_MALFORMED);
	snprintf(bad, sizeof bad, "%sA", good);
	CU_ASSERT_EQUAL(e2e_public_parse(&pub, name, sizeof name, bad), E2E_ERR_MALFORMED);
	/* Not the standard alphabet. */
	memcpy(bad, good, strlen(good) + 1);
	bad[10] = '-';
	CU_ASSERT_EQUAL(e2e_public_parse(&pub, name, sizeof name, bad), E2E_ERR_MALFORMED);
	/* Names: only 1..64 characters in 0x21..0x7e. */
	for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
		snprintf(bad, sizeof bad, "%s %s", good, bad_names[i]);
		TU_CHECK(e2e_public_parse(&pub, name, sizeof name, bad) == E2E_ERR_MALFORMED,
			"name \"%s\" accepted", bad_names[i]);
		TU_CHECK(e2e_public_format(bad, sizeof bad, &id.pub, bad_names[i]) != E2E_OK,
			"name \"%s\" formatted", bad_names[i]);
	}
	/* An all-zero X25519 key is never a valid public key. */
	zero_dh = id.pub;
	memset(zero_dh.dh_pk, 0, sizeof zero_dh.dh_pk);
	memcpy(bad, "e2e1 ", 5);
	sodium_bin2base64(bad + 5, sizeof bad - 5, (const uint8_t *)&zero_dh, sizeof zero_dh,
		sodium_base64_VARIANT_ORIGINAL);
	CU_ASSERT_EQUAL(strlen(bad), 93);
	CU_ASSERT_EQUAL(e2e_public_parse(&pub, name, sizeof name, bad), E2E_ERR_MALFORMED);
	e2e_identity_destroy(&id);
}

static void test_fingerprint_and_sender_id(void)
{
	struct e2e_identity a, b;
	char fa[E2E_FINGERPRINT_LEN], fb[E2E_FINGERPRINT_LEN];
	struct e2e_public p;

	generate(&a);
	generate(&b);
	e2e_public_fingerprint(fa, &a.pub);
	e2e_public_fingerprint(fb, &b.pub);
	CU_ASSERT_EQUAL(strlen(fa), 43);
	CU_ASSERT(!strncmp(fa, "e2e:", 4));
	for (size_t i = 4; i < 43; i++) {
		int colon = (i - 4) % 5 == 4;

		TU_CHECK(colon ? fa[i] == ':' : ((fa[i] >= '0' && fa[i] <= '9') ||
			(fa[i] >= 'a' && fa[i] <= 'f')), "fingerprint %s: char %zu", fa, i);
	}
	CU_ASSERT(strcmp(fa, fb) != 0);
	/* The fingerprint covers both keys; the sender id only the signing key. */
	p = a.pub;
	p.dh_pk[0] ^= 1;
	e2e_public_fingerprint(fb, &p);
	CU_ASSERT(strcmp(fa, fb) != 0);
	CU_ASSERT_EQUAL(e2e_sender_id(&p), e2e_sender_id(&a.pub));
	p = a.pub;
	p.sign_pk[31] ^= 1;
	CU_ASSERT_NOT_EQUAL(e2e_sender_id(&p), e2e_sender_id(&a.pub));
	e2e_identity_destroy(&a);
	e2e_identity_destroy(&b);
}

static const struct tu_test safety_tests[] = {
	{ "Safety: NULL arguments", test_safety_args },
	{ "Safety: short output buffers", test_safety_short_buffers },
	{ "Safety: a failed fill leaves an empty identity", test_failed_fill_is_empty },
	{ "Secrets: sodium_malloc block, read-only, guard page, destroy unmaps",
		test_guarded_memory },
	{ NULL, NULL },
};

static const struct tu_test vector_tests[] = {
	{ "Vectors: identity.json public line, fingerprint, sender id", test_vectors },
	{ NULL, NULL },
};

static const struct tu_test identity_tests[] = {
	{ "Secret file: save/load round trip, mode 0600", test_save_load_round_trip },
	{ "Secret text: format = file bytes, parse = load, refusals", test_text_form },
	{ "Secret file: save refuses to overwrite unless forced", test_save_refuses_overwrite },
	{ "Secret file: load refuses group/world bits and foreign owner", test_load_permissions },
	{ "Secret file: load refuses directories and symlinks", test_load_not_regular },
	{ "Secret file: garbage, truncated base64, two secret lines are corrupt", test_load_corrupt },
	{ "Public line: format/parse round trip with and without name", test_public_round_trip },
	{ "Public line: rejects prefix, length, alphabet, names, zero DH key", test_public_rejects },
	{ "Fingerprint and sender id: format and coverage", test_fingerprint_and_sender_id },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "identity safety", safety_tests },
		{ "identity vectors", vector_tests },
		{ "identity", identity_tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
