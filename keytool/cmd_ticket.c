/*
 * e2e-keytool ticket: record a one-time enrollment ticket in the authority
 * directory's `tickets` file and print its token (SPEC 14). The token is
 * handed to a new machine (e2e-sub --enroll TOKEN), which redeems it with
 * the authority service (e2e-authority) over MQTT.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "keytool.h"

#define KT_AUTH_DIR_DEFAULT "/var/lib/mqtt-e2e/authority"

static const char ticket_usage[] =
	"Usage: " KT_PROG " ticket --scope SCOPE [--scope SCOPE]... [--ttl 1h] [--uses 1]\n"
	"                   [--dir DIR]\n"
	"\n"
	"Record a one-time enrollment ticket in DIR/tickets (mode 0600) and print its\n"
	"token (e2et1-...) on stdout. Whoever holds the token can redeem it, --uses\n"
	"times, before --ttl has passed, with the authority service (e2e-authority),\n"
	"and so gets a subscriber credential for the scopes: hand it over like a\n"
	"password. e2e-sub --enroll TOKEN redeems it.\n"
	"\n"
	"  --scope SCOPE   scope granted: a number 0..255 or a name of DIR/scopes\n"
	"                  (repeatable, at least one)\n"
	"  --ttl TIME      the ticket expires after TIME (default 1h)\n"
	"  --uses N        redemptions allowed (default 1)\n"
	"  --dir DIR       authority directory (default $E2E_DIR, else "
	KT_AUTH_DIR_DEFAULT ")\n";

enum { OPT_DIR = 1, OPT_SCOPE, OPT_TTL, OPT_USES, OPT_HELP };

static const struct option long_opts[] = {
	{ "dir", required_argument, NULL, OPT_DIR },
	{ "scope", required_argument, NULL, OPT_SCOPE },
	{ "ttl", required_argument, NULL, OPT_TTL },
	{ "uses", required_argument, NULL, OPT_USES },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* SCOPE: a number 0..255, or a name of DIR/scopes (as authority issue). */
static int scope_ref(const char *ref, const struct e2e_scopes *sc, uint8_t *id)
{
	char *end;
	unsigned long v;

	if (*ref >= '0' && *ref <= '9') {
		v = strtoul(ref, &end, 10);
		if (*end == '\0' && v <= 255) {
			*id = (uint8_t)v;
			return 0;
		}
	} else if (sc && e2e_scopes_id(sc, ref, strlen(ref), id) == E2E_OK) {
		return 0;
	}
	fprintf(stderr, "%s ticket: unknown scope '%s' (a number 0..255, or a name of the "
		"scopes file in the authority directory)\n", KT_PROG, ref);
	return -1;
}

int kt_cmd_ticket(int argc, char **argv)
{
	const char *dir = NULL, *ttl = "1h", *uses_s = "1";
	const char *scope_refs[E2E_TICKET_SCOPES_MAX];
	uint8_t scopes[E2E_TICKET_SCOPES_MAX];
	struct e2e_tickets ts = { 0 };
	const struct e2e_ticket *t = NULL;
	struct e2e_scopes *sc = NULL;
	struct e2e_ticket_token tok;
	struct e2e_identity id = { 0 };
	char path[PATH_MAX], key[PATH_MAX], token[E2E_TICKET_TOKEN_LEN + 1], err[512] = "";
	uint64_t ttl_ms, now = e2e_now_ms();
	unsigned long uses;
	unsigned n = 0;
	int c, lock = -1, ret = 1;
	enum e2e_status st;
	char *end;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_DIR: dir = optarg; break;
		case OPT_TTL: ttl = optarg; break;
		case OPT_USES: uses_s = optarg; break;
		case OPT_SCOPE:
			if (n == E2E_TICKET_SCOPES_MAX) {
				fprintf(stderr, "%s ticket: at most %u scopes\n", KT_PROG,
					E2E_TICKET_SCOPES_MAX);
				return 1;
			}
			scope_refs[n++] = optarg;
			break;
		case 'h':
		case OPT_HELP:
			fputs(ticket_usage, stdout);
			return 0;
		default:
			fprintf(stderr, "%s ticket: bad option '%s'\n", KT_PROG, argv[optind - 1]);
			return kt_misuse(ticket_usage);
		}
	}
	if (optind != argc || n == 0)
		return kt_misuse(ticket_usage);
	if (kt_duration_parse(ttl, &ttl_ms) != 0 || ttl_ms == 0) {
		fprintf(stderr, "%s ticket: --ttl takes a duration (30m, 1h, 7d)\n",
			KT_PROG);
		return 1;
	}
	uses = strtoul(uses_s, &end, 10);
	if (*uses_s < '1' || *uses_s > '9' || *end || uses > 100000) {
		fprintf(stderr, "%s ticket: --uses takes a number 1..100000\n", KT_PROG);
		return 1;
	}
	if (!dir)
		dir = getenv("E2E_DIR");
	if (!dir || !*dir)
		dir = KT_AUTH_DIR_DEFAULT;
	/* Only an authority directory: its key names the authority in the token. */
	if (kt_path(key, sizeof key, dir, "authority.key") != 0 ||
	    kt_path(path, sizeof path, dir, "tickets") != 0)
		goto out;
	st = e2e_identity_load(&id, key);
	if (st != E2E_OK) {
		if (st == E2E_ERR_NOT_FOUND)   /* kt_fail's own words would say only "missing" */
			fprintf(stderr, "%s: %s: not found: not an authority directory (make one with "
				"'e2e-keytool authority init --dir %s')\n", KT_PROG, key, dir);
		else
			kt_fail(st, key, NULL);
		goto out;
	}
	sc = kt_load_scopes(dir);
	if (!sc)
		goto out;
	for (unsigned i = 0; i < n; i++)
		if (scope_ref(scope_refs[i], sc, &scopes[i]) != 0)
			goto out;
	/* The write lock of SPEC 6.5: e2e-authority consumes tickets from this
	 * file while we add one. */
	st = e2e_dir_lock(dir, &lock);
	if (st != E2E_OK) {
		kt_fail(st, dir, "cannot take the directory's write lock");
		goto out;
	}
	st = e2e_tickets_load(&ts, path, err, sizeof err);
	if (st != E2E_OK) {
		kt_fail(st, path, err[0] ? err : NULL);
		goto out;
	}
	st = e2e_tickets_add(&ts, scopes, (uint8_t)n, now + ttl_ms, (uint32_t)uses, now, &t);
	if (st == E2E_OK)
		st = e2e_tickets_save(&ts, path);
	if (st != E2E_OK) {
		kt_fail(st, path, NULL);
		goto out;
	}
	memcpy(tok.id, t->id, sizeof tok.id);
	memcpy(tok.secret, t->secret, sizeof tok.secret);
	e2e_public_fp(tok.fp, &id.pub);
	e2e_ticket_token_format(token, &tok);
	printf("%s\n", token);
	fflush(stdout);
	kt_duration_format(err, sizeof err, ttl_ms);
	fprintf(stderr, "%s: ticket for %u scope(s), %lu use(s), expires in %s\n", KT_PROG, n,
		uses, err);
	ret = 0;
out:
	if (lock >= 0)
		e2e_dir_unlock(lock);
	sodium_memzero(&tok, sizeof tok);
	sodium_memzero(token, sizeof token);
	e2e_tickets_free(&ts);
	e2e_identity_destroy(&id);
	return ret;
}
