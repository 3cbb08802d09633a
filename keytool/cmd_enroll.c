/*
 * Sender side: enroll, revoke and list subscribers in DIR/enrolled.
 * Revocation rotates every scope the subscriber held, so whatever it
 * already has stops being used for new messages.
 */
#include <stdio.h>
#include <string.h>

#include "keytool.h"

static const char enroll_usage[] =
	"Usage: " KT_PROG " enroll NAME PUBKEY-LINE|- --scope SCOPE[,SCOPE...] [--dir DIR]\n"
	"\n"
	"Allow subscriber NAME, identified by its public line (\"e2e1 <base64>\",\n"
	"or '-' to read it from stdin), to fetch the keys of the given scopes.\n"
	"Enrolling an enrolled NAME with the same key replaces its scopes; scopes\n"
	"it loses are rotated (grace 24h), so it gets nothing new under them.\n"
	"Refuses unknown scope names and keys that were revoked.\n"
	"\n"
	"  --scope LIST  comma-separated scope names (see '" KT_PROG " scopes')\n"
	"  --dir DIR     sender directory (default $E2E_DIR, else " KT_SENDER_DIR ")\n";

static const char revoke_usage[] =
	"Usage: " KT_PROG " revoke NAME [--grace DURATION] [--dir DIR]\n"
	"\n"
	"Revoke subscriber NAME: its key is refused from now on, and every scope it\n"
	"held is rotated so it gets nothing new. Old epochs stay valid for the\n"
	"grace period (default 24h) so messages in flight can still be read.\n";

static const char list_usage[] =
	"Usage: " KT_PROG " list [--dir DIR]\n"
	"\n"
	"Print the enrolled subscribers: name, scopes (or \"(revoked)\"), fingerprint.\n";

/* "a,b" -> bitmap, refusing names that are not in the scope table. */
static int parse_scopes(const struct e2e_scopes *scopes, const char *list,
	uint8_t bm[E2E_SCOPE_BITMAP_BYTES])
{
	const char *p = list;

	memset(bm, 0, E2E_SCOPE_BITMAP_BYTES);
	for (;;) {
		size_t len = strcspn(p, ",");
		uint8_t id;

		if (e2e_scopes_id(scopes, p, len, &id) != E2E_OK) {
			fprintf(stderr, "%s: unknown scope '%.*s' (see '%s scopes')\n", KT_PROG,
				(int)len, p, KT_PROG);
			return -1;
		}
		e2e_scope_bitmap_set(bm, id);
		if (p[len] == '\0')
			return 0;
		p += len + 1;
	}
}

/*
 * Add or update; refuses revoked keys and a name held by another key.
 * @p lost gets the scopes an update takes away: the subscriber holds their
 * keys, so they must be rotated like a revocation's.
 */
static int enroll_one(struct e2e_enroll *en, const char *name, const struct e2e_public *pub,
	const uint8_t bm[E2E_SCOPE_BITMAP_BYTES], uint8_t lost[E2E_SCOPE_BITMAP_BYTES])
{
	const struct e2e_enroll_entry *e = e2e_enroll_find_key(en, pub->sign_pk);
	enum e2e_status st;

	memset(lost, 0, E2E_SCOPE_BITMAP_BYTES);

	if (e && e->revoked) {
		fprintf(stderr, "%s: this key was revoked (as '%s'): refusing to enroll it again; "
			"the subscriber needs a new identity\n", KT_PROG, e->name);
		return -1;
	}
	if (e && strcmp(e->name, name) != 0) {
		fprintf(stderr, "%s: this key is already enrolled as '%s'\n", KT_PROG, e->name);
		return -1;
	}
	if (!e && e2e_enroll_find_name(en, name)) {
		fprintf(stderr, "%s: '%s' is enrolled with another key: revoke it first\n",
			KT_PROG, name);
		return -1;
	}
	for (unsigned i = 0; e && i < E2E_SCOPE_BITMAP_BYTES; i++)
		lost[i] = (uint8_t)(e->scopes[i] & ~bm[i]);
	st = e ? e2e_enroll_set_scopes(en, name, bm) : e2e_enroll_add(en, name, pub, bm);
	if (st != E2E_OK) {
		kt_fail(st, "enrolled", NULL);
		return -1;
	}
	return 0;
}

int kt_cmd_enroll(int argc, char **argv)
{
	struct kt_opts o;
	struct e2e_public pub;
	struct e2e_scopes *scopes;
	struct e2e_enroll *en = NULL;
	uint8_t bm[E2E_SCOPE_BITMAP_BYTES], lost[E2E_SCOPE_BITMAP_BYTES];
	char dir[PATH_MAX], fp[E2E_FINGERPRINT_LEN];
	int ret = kt_parse(argc, argv, "ds", enroll_usage, &o), any = 0;

	if (ret >= 0)
		return ret;
	if (o.argc < 2 || !o.scope)
		return kt_misuse(enroll_usage);
	ret = 1;
	if (kt_check_name(o.argv[0]) != 0 || kt_read_public(&o, 1, &pub) != 0 ||
	    kt_dir(dir, sizeof dir, &o, KT_SENDER) != 0)
		goto out;
	scopes = kt_load_scopes(dir);
	if (!scopes || parse_scopes(scopes, o.scope, bm) != 0)
		goto out;
	en = kt_load_peers(dir, E2E_ENROLL_SENDER, scopes);
	if (!en || enroll_one(en, o.argv[0], &pub, bm, lost) != 0 ||
	    kt_save_peers(en, scopes, dir) != 0)
		goto out;
	e2e_public_fingerprint(fp, &pub);
	fprintf(stderr, "%s: enrolled %s (%s) for %s\n", KT_PROG, o.argv[0], fp, o.scope);
	for (unsigned i = 0; i < E2E_SCOPE_BITMAP_BYTES; i++)
		any |= lost[i];
	/* Saved first: the sender refuses the lost scopes within a second. */
	if (any && kt_rotate_scopes(dir, scopes, lost, KT_GRACE_MS) != 0) {
		fprintf(stderr, "%s: %s lost scopes that were NOT rotated: run '%s rotate'\n",
			KT_PROG, o.argv[0], KT_PROG);
		goto out;
	}
	ret = 0;
out:
	e2e_enroll_free(en);
	return ret;
}

int kt_cmd_revoke(int argc, char **argv)
{
	struct kt_opts o;
	struct e2e_scopes *scopes;
	struct e2e_enroll *en = NULL;
	uint8_t held[E2E_SCOPE_BITMAP_BYTES];
	uint64_t grace = KT_GRACE_MS;
	char dir[PATH_MAX];
	enum e2e_status st;
	int ret = kt_parse(argc, argv, "dg", revoke_usage, &o);

	if (ret >= 0)
		return ret;
	if (o.argc != 1)
		return kt_misuse(revoke_usage);
	if (o.grace && kt_duration_parse(o.grace, &grace) != 0) {
		fprintf(stderr, "%s: bad duration '%s' (e.g. 24h, 30m, 90s)\n", KT_PROG, o.grace);
		return 1;
	}
	ret = 1;
	if (kt_dir(dir, sizeof dir, &o, KT_SENDER) != 0)
		goto out;
	scopes = kt_load_scopes(dir);
	en = scopes ? kt_load_peers(dir, E2E_ENROLL_SENDER, scopes) : NULL;
	if (!en)
		goto out;
	st = e2e_enroll_revoke(en, o.argv[0], held);
	if (st == E2E_ERR_NOT_FOUND) {
		fprintf(stderr, "%s: no enrolled subscriber named '%s'\n", KT_PROG, o.argv[0]);
		goto out;
	}
	/* Revoke first: once saved, the sender refuses the key within a second. */
	if (st != E2E_OK || kt_save_peers(en, scopes, dir) != 0)
		goto out;
	fprintf(stderr, "%s: revoked %s\n", KT_PROG, o.argv[0]);
	if (kt_rotate_scopes(dir, scopes, held, grace) != 0) {
		fprintf(stderr, "%s: %s is revoked but its scopes were NOT rotated: "
			"run '%s rotate'\n", KT_PROG, o.argv[0], KT_PROG);
		goto out;
	}
	ret = 0;
out:
	e2e_enroll_free(en);
	return ret;
}

int kt_cmd_list(int argc, char **argv)
{
	static char list[KT_SCOPE_LIST_MAX];
	struct kt_opts o;
	struct e2e_scopes *scopes;
	struct e2e_enroll *en;
	char dir[PATH_MAX], fp[E2E_FINGERPRINT_LEN];
	int ret = kt_parse(argc, argv, "d", list_usage, &o);

	if (ret >= 0)
		return ret;
	if (o.argc != 0)
		return kt_misuse(list_usage);
	if (kt_dir(dir, sizeof dir, &o, KT_SENDER) != 0)
		return 1;
	scopes = kt_load_scopes(dir);
	en = scopes ? kt_load_peers(dir, E2E_ENROLL_SENDER, scopes) : NULL;
	if (!en)
		return 1;
	for (uint32_t i = 0; i < e2e_enroll_count(en); i++) {
		const struct e2e_enroll_entry *e = e2e_enroll_at(en, i);

		e2e_public_fingerprint(fp, &e->pub);
		if (e->revoked)
			snprintf(list, sizeof list, "(revoked)");
		else
			kt_scope_list(list, sizeof list, scopes, e->scopes);
		printf("%s\t%s\t%s\n", e->name, list, fp);
	}
	e2e_enroll_free(en);
	return 0;
}
