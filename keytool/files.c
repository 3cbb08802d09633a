/*
 * The state files as the subcommands see them: load with a readable
 * message on failure, save atomically, and read public keys from the
 * command line or stdin.
 */
#include <stdio.h>
#include <string.h>

#include "keytool.h"

#define ERR_CAP 512

int kt_check_name(const char *name)
{
	if (!e2e_peer_name_valid(name, strlen(name)) || strcmp(name, "revoked") == 0) {
		fprintf(stderr, "%s: invalid name '%s': use 1-64 of [A-Za-z0-9._@-] "
			"(and not \"revoked\")\n", KT_PROG, name);
		return -1;
	}
	return 0;
}

int kt_read_public(const struct kt_opts *o, int first, struct e2e_public *pub)
{
	char line[1024];
	size_t len = 0;
	enum e2e_status st;

	line[0] = '\0';
	if (o->argc - first == 1 && strcmp(o->argv[first], "-") == 0) {
		/* First line that is not blank or a comment, as in the files. */
		while (fgets(line, sizeof line, stdin)) {
			const char *p = line + strspn(line, " \t");

			if (*p != '#' && *p != '\n' && *p != '\0') {
				memmove(line, p, strlen(p) + 1);
				break;
			}
			line[0] = '\0';
		}
	} else {
		for (int i = first; i < o->argc; i++) {
			size_t al = strlen(o->argv[i]);

			if (len + al + 2 > sizeof line)
				break;
			if (len)
				line[len++] = ' ';
			memcpy(line + len, o->argv[i], al + 1);
			len += al;
		}
	}
	/* Pasted lines often end in blanks; a trailing name is accepted and ignored. */
	len = strlen(line);
	while (len && strchr(" \t\r\n", line[len - 1]))
		line[--len] = '\0';
	st = e2e_public_parse(pub, NULL, 0, line);
	if (st != E2E_OK) {
		fprintf(stderr, "%s: bad public key: %s (expected \"e2e1 <base64>\", as printed "
			"by '%s pubkey')\n", KT_PROG, e2e_strerror(st), KT_PROG);
		return -1;
	}
	return 0;
}

struct e2e_scopes *kt_load_scopes(const char *dir)
{
	static struct e2e_scopes scopes;   /* ~90 KiB: too big for the stack */
	char path[PATH_MAX], err[ERR_CAP] = "";
	enum e2e_status st;

	if (kt_path(path, sizeof path, dir, "scopes") != 0)
		return NULL;
	st = e2e_scopes_load(&scopes, path, err, sizeof err);
	if (st != E2E_OK) {
		fprintf(stderr, "%s: %s\n", KT_PROG, err[0] ? err : e2e_strerror(st));
		return NULL;
	}
	return &scopes;
}

/*
 * Every command that reads the sender's files holds the directory lock
 * until it exits, so its read-modify-write cannot interleave with a running
 * sender's (the kernel drops the lock when the process ends).
 */
static int kt_lock(const char *dir)
{
	static int held = -1;
	enum e2e_status st;

	if (held >= 0)
		return 0;
	st = e2e_dir_lock(dir, &held);
	return st == E2E_OK ? 0 : kt_fail(st, dir, "cannot lock the directory");
}

struct e2e_enroll *kt_load_peers(const char *dir, enum e2e_enroll_kind kind,
	const struct e2e_scopes *scopes)
{
	struct e2e_enroll *en = NULL;
	char path[PATH_MAX], err[ERR_CAP] = "";
	enum e2e_status st;

	if (kt_path(path, sizeof path, dir, kind == E2E_ENROLL_TRUST ? "trust" : "enrolled") != 0 ||
	    (kind == E2E_ENROLL_SENDER && kt_lock(dir) != 0))
		return NULL;
	/* Room for the one entry an enroll or trust may add. */
	st = e2e_enroll_load(&en, kind, scopes, path, 1, err, sizeof err);
	if (st != E2E_OK) {
		kt_load_fail(path, st, err);
		return NULL;
	}
	return en;
}

/*
 * Epochs the sender has used (its txstate) are never issued again, even if
 * the keys file lost them: a new key under a used epoch would clash with
 * what subscribers hold. Without an identity there is no sender id yet,
 * and nothing was sealed.
 */
static void kt_keys_floor(struct e2e_keystore *ks, const char *dir)
{
	struct e2e_identity id;
	uint32_t used[256];
	char path[PATH_MAX];

	if (kt_path(path, sizeof path, dir, "identity.key") != 0 ||
	    e2e_identity_load(&id, path) != E2E_OK)
		return;
	if (kt_path(path, sizeof path, dir, "txstate") == 0 &&
	    e2e_txstate_epochs(path, e2e_sender_id(&id.pub), used) == E2E_OK)
		for (unsigned sc = 0; sc < 256; sc++)
			e2e_keystore_set_floor(ks, (uint8_t)sc, used[sc]);
	e2e_identity_destroy(&id);
}

/* Record every key's epoch in txstate before the keys file changes (SPEC 6.4). */
static int kt_note_epochs(const struct e2e_keystore *ks, const char *dir)
{
	struct e2e_identity id;
	struct e2e_keyid ids[E2E_KEYSTORE_MAX > 4096 ? 4096 : E2E_KEYSTORE_MAX];
	char path[PATH_MAX];
	uint32_t n = e2e_keystore_count(ks), sender;
	enum e2e_status st;

	if (kt_path(path, sizeof path, dir, "identity.key") != 0)
		return 1;
	if (e2e_identity_load(&id, path) != E2E_OK)
		return 0;   /* no identity yet: nothing can have been sealed */
	sender = e2e_sender_id(&id.pub);
	e2e_identity_destroy(&id);
	if (n > sizeof ids / sizeof ids[0])
		n = sizeof ids / sizeof ids[0];
	for (uint32_t i = 0; i < n; i++) {
		const struct e2e_keystore_entry *e = e2e_keystore_at(ks, i);

		ids[i] = (struct e2e_keyid){ sender, e->scope, e->epoch };
	}
	if (kt_path(path, sizeof path, dir, "txstate") != 0)
		return 1;
	st = e2e_txstate_note(path, ids, n);
	return st == E2E_OK ? 0 : kt_fail(st, path, "key epochs not recorded");
}

struct e2e_keystore *kt_load_keys(const char *dir)
{
	struct e2e_keystore *ks = NULL;
	char path[PATH_MAX], err[ERR_CAP] = "";
	enum e2e_status st;

	if (kt_path(path, sizeof path, dir, "keys") != 0 || kt_lock(dir) != 0)
		return NULL;
	st = e2e_keystore_load(&ks, path, KT_SPARE_KEYS, err, sizeof err);
	if (st != E2E_OK) {
		kt_load_fail(path, st, err);
		return NULL;
	}
	kt_keys_floor(ks, dir);
	return ks;
}

int kt_save_peers(const struct e2e_enroll *en, const struct e2e_scopes *scopes,
	const char *dir)
{
	char path[PATH_MAX];
	enum e2e_status st;
	int trust = e2e_enroll_kind(en) == E2E_ENROLL_TRUST;

	if (kt_path(path, sizeof path, dir, trust ? "trust" : "enrolled") != 0)
		return 1;
	st = e2e_enroll_save(en, scopes, path);
	return st == E2E_OK ? 0 : kt_fail(st, path, "not saved");
}

int kt_save_keys(const struct e2e_keystore *ks, const char *dir)
{
	char path[PATH_MAX];
	enum e2e_status st;

	if (kt_path(path, sizeof path, dir, "keys") != 0 || kt_note_epochs(ks, dir) != 0)
		return 1;
	st = e2e_keystore_save(ks, path);
	return st == E2E_OK ? 0 : kt_fail(st, path, "not saved");
}

void kt_scope_list(char *buf, size_t cap, const struct e2e_scopes *scopes,
	const uint8_t bm[E2E_SCOPE_BITMAP_BYTES])
{
	size_t len = 0;

	buf[0] = '\0';
	for (unsigned id = 0; id < E2E_SCOPES_MAX; id++) {
		const struct e2e_scope *sc;
		int n;

		if (!e2e_scope_bitmap_has(bm, (uint8_t)id))
			continue;
		sc = e2e_scopes_get(scopes, (uint8_t)id);
		n = sc ? snprintf(buf + len, cap - len, "%s%s", len ? "," : "", sc->name) :
			snprintf(buf + len, cap - len, "%s%u", len ? "," : "", id);
		if (n < 0 || (size_t)n >= cap - len)
			return;
		len += (size_t)n;
	}
}
