/*
 * Payload keys and scopes on the sender: rotate epochs and show the scope
 * table. Rotation also prunes keys whose grace period has ended.
 */
#include <stdio.h>
#include <string.h>

#include "keytool.h"

static const char rotate_usage[] =
	"Usage: " KT_PROG " rotate [--scope SCOPE] [--grace DURATION] [--dir DIR]\n"
	"\n"
	"Start a new key epoch for SCOPE (default: every scope in the scopes file).\n"
	"A new epoch is the highest known + 1, or the current Unix time in seconds\n"
	"if that is larger. The previous key stays valid for the\n"
	"grace period (default 24h; e.g. 30m, 90s, 7d), then is pruned. A running\n"
	"sender picks the change up within a second.\n";

static const char scopes_usage[] =
	"Usage: " KT_PROG " scopes [--dir DIR]\n"
	"\n"
	"Print the scope table of DIR/scopes: id, name, topic filters, in match order.\n";

static const char *scope_name(const struct e2e_scopes *scopes, uint8_t id)
{
	const struct e2e_scope *sc = e2e_scopes_get(scopes, id);

	return sc ? sc->name : "(not in scopes)";
}

int kt_rotate_scopes(const char *dir, const struct e2e_scopes *scopes,
	const uint8_t bm[E2E_SCOPE_BITMAP_BYTES], uint64_t grace_ms)
{
	struct e2e_keystore *ks = kt_load_keys(dir);
	uint64_t now = e2e_now_ms();
	uint32_t pruned;
	int ret = 1;

	if (!ks)
		goto out;
	for (unsigned id = 0; id < E2E_SCOPES_MAX; id++) {
		uint32_t epoch;
		enum e2e_status st;

		if (!e2e_scope_bitmap_has(bm, (uint8_t)id))
			continue;
		st = e2e_keystore_rotate(ks, (uint8_t)id, now, grace_ms, &epoch);
		/* The new key in the scope's mode (a running sender checks it). */
		if (st == E2E_OK)
			st = e2e_keystore_set_flags(ks, (uint8_t)id, epoch,
				e2e_scopes_get(scopes, (uint8_t)id) &&
				e2e_scopes_get(scopes, (uint8_t)id)->sign ? E2E_KEYSTORE_SIGNED : 0);
		if (st != E2E_OK) {
			fprintf(stderr, "%s: scope %s (%u): %s\n", KT_PROG,
				scope_name(scopes, (uint8_t)id), id, e2e_strerror(st));
			goto out;
		}
		printf("scope %s (%u): epoch %u\n", scope_name(scopes, (uint8_t)id), id,
			(unsigned)epoch);
	}
	pruned = e2e_keystore_prune(ks, now);
	if (pruned)
		fprintf(stderr, "%s: pruned %u expired key(s)\n", KT_PROG, (unsigned)pruned);
	ret = kt_save_keys(ks, dir);
out:
	e2e_keystore_free(ks);
	return ret;
}

int kt_cmd_rotate(int argc, char **argv)
{
	struct kt_opts o;
	struct e2e_scopes *scopes;
	uint8_t bm[E2E_SCOPE_BITMAP_BYTES];
	uint64_t grace = KT_GRACE_MS;
	char dir[PATH_MAX];
	uint8_t id;
	int ret = kt_parse(argc, argv, "dsg", rotate_usage, &o);

	if (ret >= 0)
		return ret;
	if (o.argc != 0)
		return kt_misuse(rotate_usage);
	if (o.grace && kt_duration_parse(o.grace, &grace) != 0) {
		fprintf(stderr, "%s: bad duration '%s' (e.g. 24h, 30m, 90s)\n", KT_PROG, o.grace);
		return 1;
	}
	if (kt_dir(dir, sizeof dir, &o, KT_SENDER) != 0)
		return 1;
	scopes = kt_load_scopes(dir);
	if (!scopes)
		return 1;
	memset(bm, 0, sizeof bm);
	if (o.scope) {
		if (e2e_scopes_id(scopes, o.scope, strlen(o.scope), &id) != E2E_OK) {
			fprintf(stderr, "%s: unknown scope '%s' (see '%s scopes')\n", KT_PROG,
				o.scope, KT_PROG);
			return 1;
		}
		e2e_scope_bitmap_set(bm, id);
	} else {
		for (uint32_t i = 0; i < scopes->count; i++)
			e2e_scope_bitmap_set(bm, scopes->scope[i].id);
	}
	return kt_rotate_scopes(dir, scopes, bm, grace);
}

int kt_cmd_scopes(int argc, char **argv)
{
	struct kt_opts o;
	struct e2e_scopes *scopes;
	char dir[PATH_MAX];
	int ret = kt_parse(argc, argv, "d", scopes_usage, &o);

	if (ret >= 0)
		return ret;
	if (o.argc != 0)
		return kt_misuse(scopes_usage);
	if (kt_dir(dir, sizeof dir, &o, KT_SENDER) != 0)
		return 1;
	scopes = kt_load_scopes(dir);
	if (!scopes)
		return 1;
	for (uint32_t i = 0; i < scopes->count; i++) {
		const struct e2e_scope *sc = &scopes->scope[i];

		printf("%u\t%s\t", (unsigned)sc->id, sc->name);
		for (uint32_t k = 0; k < sc->nfilters; k++)
			printf("%s%s", k ? " " : "", e2e_scope_filter(scopes, sc, k));
		printf("%s\n", sc->line ? "" : "\t(implied)");
	}
	return 0;
}
