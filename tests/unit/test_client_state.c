/*
 * Subscriber client start-up and its replay state file (SPEC 6.3): a start
 * that fails (an incompatible --window, a corrupt file) leaves the file
 * byte for byte as it was and says which file and why; only a successful
 * start may write it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "e2e/client.h"
#include "e2e/enroll.h"
#include "e2e/rx.h"
#include "testcu.h"

struct cfx {
	char *dir;
	char p_id[4096], p_trust[4096], p_state[4096];
	uint8_t *orig;
	size_t orig_len;
	char err[1024];
	struct e2e_client_config cfg;
};

static void read_all(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long n = -1;

	*buf = NULL;
	*len = 0;
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_FATAL(fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0);
	rewind(f);
	*buf = malloc((size_t)n + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(*buf);
	*len = fread(*buf, 1, (size_t)n, f);
	fclose(f);
	CU_ASSERT_EQUAL_FATAL(*len, (size_t)n);
}

/* A subscriber directory: identity, one trusted sender, a saved 1024 state. */
static void cfx_init(struct cfx *f)
{
	struct e2e_identity me, sender;
	struct e2e_enroll *en = NULL;
	struct e2e_rx *rx;

	memset(f, 0, sizeof *f);
	f->dir = tu_tmpdir();
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->dir);
	tu_path(f->p_id, sizeof f->p_id, f->dir, "identity.key");
	tu_path(f->p_trust, sizeof f->p_trust, f->dir, "trust");
	tu_path(f->p_state, sizeof f->p_state, f->dir, "rxstate");
	CU_ASSERT_EQUAL_FATAL(e2e_identity_generate(&me), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_identity_generate(&sender), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_identity_save(&me, f->p_id, 0), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_enroll_load(&en, E2E_ENROLL_TRUST, NULL, f->p_trust, 1, NULL, 0),
		E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_enroll_add(en, "site1", &sender.pub, NULL), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_enroll_save(en, NULL, f->p_trust), E2E_OK);
	e2e_enroll_free(en);
	/* Some replay history: one stream with messages 1..5 seen. */
	rx = tu_rx_new(0, 1024);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rx);
	{
		struct e2e_keyid id = { e2e_sender_id(&sender.pub), 0, 1 };
		uint8_t key[E2E_KEY_BYTES], env[256], pt[256];
		struct e2e_keyring *kr;
		struct e2e_rx_result res;

		randombytes_buf(key, sizeof key);
		kr = tu_keyring_with(&id, key);
		for (uint32_t seq = 1; seq <= 5; seq++) {
			struct e2e_header h = { E2E_SUITE_V1_XCHACHA, 0, 1, id.sender, 7, seq, seq };
			size_t n = tu_seal(env, sizeof env, &h, key, "a/b", (const uint8_t *)"x", 1);

			(void)tu_rx_open(rx, kr, &res, pt, sizeof pt, "a/b", env, n);
		}
		e2e_keyring_destroy(kr);
	}
	CU_ASSERT_EQUAL_FATAL(e2e_rx_save(rx, f->p_state), E2E_OK);
	e2e_rx_destroy(rx);
	read_all(f->p_state, &f->orig, &f->orig_len);
	e2e_identity_wipe(&me);
	e2e_identity_wipe(&sender);
	f->cfg.conn.host = "127.0.0.1";
	f->cfg.conn.port = 1;
	f->cfg.identity_file = f->p_id;
	f->cfg.trust_file = f->p_trust;
	f->cfg.state_file = f->p_state;
	f->cfg.window = 1024;
	f->cfg.err = f->err;
	f->cfg.err_len = sizeof f->err;
}

static void cfx_free(struct cfx *f)
{
	free(f->orig);
	tu_rmtree(f->dir);
	free(f->dir);
}

/* The state file holds exactly @p want (or the original). */
static int state_is(const struct cfx *f, const uint8_t *want, size_t want_len)
{
	uint8_t *now;
	size_t len;
	int same;

	read_all(f->p_state, &now, &len);
	same = len == want_len && memcmp(now, want, len) == 0;
	free(now);
	return same;
}

static void test_window_mismatch_keeps_file(void)
{
	struct cfx f;
	struct e2e_client *c = NULL;
	enum e2e_status st;

	cfx_init(&f);
	f.cfg.window = 2048;
	st = e2e_client_create(&c, &f.cfg);
	CU_ASSERT_EQUAL(st, E2E_ERR_VERSION);
	CU_ASSERT_PTR_NULL(c);
	TU_CHECK(strstr(f.err, f.p_state) && strstr(f.err, "window"),
		"the error names the file and the window: %s", f.err);
	TU_CHECK(state_is(&f, f.orig, f.orig_len), "rxstate byte-identical after a failed start");
	cfx_free(&f);
}

static void test_corrupt_state_keeps_file(void)
{
	struct cfx f;
	struct e2e_client *c = NULL;
	uint8_t *bad;
	FILE *out;

	cfx_init(&f);
	/* One flipped byte in a stream record: the checksum fails. */
	bad = malloc(f.orig_len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bad);
	memcpy(bad, f.orig, f.orig_len);
	bad[f.orig_len / 2] ^= 0x40;
	out = fopen(f.p_state, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	CU_ASSERT_EQUAL(fwrite(bad, 1, f.orig_len, out), f.orig_len);
	fclose(out);
	CU_ASSERT_EQUAL(e2e_client_create(&c, &f.cfg), E2E_ERR_CORRUPT);
	TU_CHECK(strstr(f.err, f.p_state) && strstr(f.err, "corrupt"),
		"the error names the file and why: %s", f.err);
	TU_CHECK(state_is(&f, bad, f.orig_len), "corrupt rxstate left as it was (not emptied)");
	free(bad);
	cfx_free(&f);
}

static void test_good_start_keeps_history(void)
{
	struct cfx f;
	struct e2e_client *c = NULL;
	enum e2e_status st;

	cfx_init(&f);
	st = e2e_client_create(&c, &f.cfg);
	TU_CHECK(st == E2E_OK, "create with the saved window: %s (%s)", e2e_strerror(st), f.err);
	e2e_client_destroy(c);
	/* Saved again on the way out: the same history, so the same bytes. */
	TU_CHECK(state_is(&f, f.orig, f.orig_len), "rxstate unchanged by a start without messages");
	cfx_free(&f);
}

static const struct tu_test client_tests[] = {
	{ "Failed start: --window other than saved keeps rxstate byte-identical",
		test_window_mismatch_keeps_file },
	{ "Failed start: corrupt rxstate is left as it was, error names it",
		test_corrupt_state_keeps_file },
	{ "Control: a good start with no messages leaves the same bytes", test_good_start_keeps_history },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "client state", client_tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
