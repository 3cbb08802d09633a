/*
 * authority init | issue | revoke: the fleet authority (SPEC 13). Its
 * directory holds authority.key (0600, may stay offline), authority.pub
 * (the line senders and subscribers put in their `authorities` file) and
 * the numbered revocation lists it wrote.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "state/fileio.h"
#include "keytool.h"
#include "kt_authority.h"

#define KT_AUTH_DIR "/var/lib/mqtt-e2e/authority"

static const char authority_usage[] =
	"Usage: " KT_PROG " authority init [--dir DIR] [--name NAME] [--force]\n"
	"       " KT_PROG " authority issue [--dir DIR] (--sender | --subscriber) PUBLINE\n"
	"                 [--scope SCOPE]... [--filter SCOPE:FILTER]... [--ttl 90d] [-o FILE]\n"
	"       " KT_PROG " authority revoke [--dir DIR] [--control-topic C] PUBLINE | FINGERPRINT\n"
	"\n"
	"init   makes the authority identity: DIR/authority.key (0600) and\n"
	"       DIR/authority.pub, the public line for senders' and subscribers'\n"
	"       `authorities` files (printed too).\n"
	"issue  prints (or writes to FILE, mode 0600) a credential line \"e2e-cred1 ...\"\n"
	"       for the `credential` file of the holder. --subscriber: the scopes\n"
	"       granted (--scope, repeatable). --sender: the topic filters it may seal,\n"
	"       each with its scope (--filter SCOPE:FILTER, repeatable). SCOPE is a\n"
	"       number 0..255 or a name of DIR/scopes (a sender scopes file).\n"
	"       --ttl: validity from now (default 90d).\n"
	"revoke adds a subscriber's or sender's key to the revocation list and writes\n"
	"       the next numbered signed list to DIR/revocations (and prints its path),\n"
	"       for publication as is, retained, on C/authority/<fp> (the authority\n"
	"       service, or mosquitto_pub -r -t TOPIC -f DIR/revocations).\n"
	"       A FINGERPRINT is looked up in DIR/issued (every credential issued).\n"
	"\n"
	"DIR: --dir, else $E2E_DIR, else " KT_AUTH_DIR ".\n";

enum { OPT_DIR = 1, OPT_NAME, OPT_FORCE, OPT_SENDER, OPT_SUBSCRIBER, OPT_SCOPE, OPT_FILTER,
	OPT_TTL, OPT_CONTROL, OPT_HELP };

static const struct option long_opts[] = {
	{ "dir", required_argument, NULL, OPT_DIR },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "sender", no_argument, NULL, OPT_SENDER },
	{ "subscriber", no_argument, NULL, OPT_SUBSCRIBER },
	{ "scope", required_argument, NULL, OPT_SCOPE },
	{ "filter", required_argument, NULL, OPT_FILTER },
	{ "ttl", required_argument, NULL, OPT_TTL },
	{ "control-topic", required_argument, NULL, OPT_CONTROL },
	{ "out", required_argument, NULL, 'o' },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static int parse(int argc, char **argv, struct kt_auth_opts *a)
{
	int c;

	memset(a, 0, sizeof *a);
	a->ttl = "90d";
	a->control_topic = E2E_CTL_TOPIC_DEFAULT;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_DIR: a->dir = optarg; break;
		case OPT_NAME: a->name = optarg; break;
		case OPT_FORCE: a->force = 1; break;
		case OPT_SENDER: a->kind = E2E_CRED_SENDER; break;
		case OPT_SUBSCRIBER: a->kind = E2E_CRED_SUBSCRIBER; break;
		case OPT_TTL: a->ttl = optarg; break;
		case OPT_CONTROL: a->control_topic = optarg; break;
		case 'o': a->out = optarg; break;
		case OPT_SCOPE:
			if (a->nscopes == E2E_CRED_SCOPES_MAX)
				return kt_misuse(authority_usage);
			a->scopes[a->nscopes++] = optarg;
			break;
		case OPT_FILTER:
			if (a->nfilters == E2E_CRED_RULES_MAX)
				return kt_misuse(authority_usage);
			a->filters[a->nfilters++] = optarg;
			break;
		case 'h':
		case OPT_HELP:
			fputs(authority_usage, stdout);
			return 0;
		default:
			return kt_misuse(authority_usage);
		}
	}
	a->argc = argc - optind;
	a->argv = argv + optind;
	if (!a->dir)
		a->dir = getenv("E2E_DIR");
	if (!a->dir || !*a->dir)
		a->dir = KT_AUTH_DIR;
	return -1;
}

static int cmd_init(const struct kt_auth_opts *a)
{
	struct e2e_identity id;
	char key[PATH_MAX], pub[PATH_MAX], line[E2E_PUBLINE_MIN + E2E_NAME_MAX + 2];
	enum e2e_status st;
	size_t ll;
	int ret = 1;

	memset(&id, 0, sizeof id);
	if (a->argc != 0)
		return kt_misuse(authority_usage);
	if (a->name && kt_check_name(a->name) != 0)
		return 1;
	if (kt_mkdirs(a->dir) != 0 || kt_path(key, sizeof key, a->dir, "authority.key") != 0 ||
	    kt_path(pub, sizeof pub, a->dir, "authority.pub") != 0)
		return 1;
	st = e2e_identity_generate(&id);
	if (st == E2E_OK)
		st = e2e_identity_save(&id, key, a->force);
	if (st != E2E_OK) {
		kt_fail(st, key, st == E2E_ERR_EXISTS ? "an authority exists (--force replaces it "
			"and invalidates every credential it issued)" : NULL);
		goto out;
	}
	st = e2e_public_format(line, sizeof line - 1, &id.pub, a->name ? a->name : "authority");
	if (st != E2E_OK) {
		kt_fail(st, "public line", NULL);
		goto out;
	}
	ll = strlen(line);
	line[ll] = '\n';
	st = e2e_file_write_atomic(pub, (const uint8_t *)line, ll + 1, 0);
	line[ll] = '\0';
	if (st != E2E_OK) {
		kt_fail(st, pub, NULL);
		goto out;
	}
	printf("%s\n", line);
	ret = 0;
out:
	e2e_identity_destroy(&id);
	return ret;
}

int kt_authority_load(const struct kt_auth_opts *a, struct e2e_identity *id)
{
	char key[PATH_MAX];
	enum e2e_status st;

	if (kt_path(key, sizeof key, a->dir, "authority.key") != 0)
		return -1;
	st = e2e_identity_load(id, key);
	if (st != E2E_OK) {
		kt_fail(st, key, st == E2E_ERR_NOT_FOUND ? "run 'authority init' first" : NULL);
		return -1;
	}
	return 0;
}

/* SCOPE: a number 0..255, or a name of DIR/scopes. */
static int scope_ref(const char *ref, size_t len, const struct e2e_scopes *sc, uint8_t *id)
{
	char *end;
	unsigned long v;
	char buf[E2E_SCOPE_NAME_MAX + 1];

	if (len == 0 || len > E2E_SCOPE_NAME_MAX)
		goto bad;
	memcpy(buf, ref, len);
	buf[len] = '\0';
	if (buf[0] >= '0' && buf[0] <= '9') {
		v = strtoul(buf, &end, 10);
		if (*end || v > 255)
			goto bad;
		*id = (uint8_t)v;
		return 0;
	}
	if (sc && e2e_scopes_id(sc, buf, len, id) == E2E_OK)
		return 0;
bad:
	fprintf(stderr, "%s authority issue: unknown scope '%.*s' (a number 0..255, or a name "
		"of the scopes file in the authority directory)\n", KT_PROG, (int)len, ref);
	return -1;
}

static int write_or_print(const struct kt_auth_opts *a, const char *text)
{
	size_t tl = strlen(text);
	char *buf;
	enum e2e_status st;

	if (!a->out) {
		printf("%s\n", text);
		return 0;
	}
	buf = malloc(tl + 1);
	if (!buf)
		return kt_fail(E2E_ERR_NOMEM, a->out, NULL);
	memcpy(buf, text, tl);
	buf[tl] = '\n';
	st = e2e_file_write_atomic(a->out, (const uint8_t *)buf, tl + 1, 0);
	free(buf);
	return st == E2E_OK ? 0 : kt_fail(st, a->out, NULL);
}

static int cmd_issue(const struct kt_auth_opts *a)
{
	struct e2e_identity id;
	struct e2e_cred_spec spec;
	struct e2e_scope_rule rules[E2E_CRED_RULES_MAX];
	uint8_t scopes[E2E_CRED_SCOPES_MAX], cred[E2E_CRED_MAX];
	static char text[E2E_CRED_TEXT_MAX];
	struct e2e_scopes *sc = NULL;
	struct kt_opts po;
	uint64_t ttl, now = e2e_now_ms();
	size_t len = 0;
	enum e2e_status st;
	int ret = 1;

	memset(&id, 0, sizeof id);
	memset(&spec, 0, sizeof spec);
	memset(&po, 0, sizeof po);
	if (a->argc < 1 || !a->kind ||
	    (a->kind == E2E_CRED_SENDER ? (!a->nfilters || a->nscopes) : (!a->nscopes || a->nfilters)))
		return kt_misuse(authority_usage);
	if (kt_duration_parse(a->ttl, &ttl) != 0 || ttl == 0) {
		fprintf(stderr, "%s authority issue: bad --ttl '%s'\n", KT_PROG, a->ttl);
		return 1;
	}
	po.argc = a->argc;
	po.argv = a->argv;
	if (kt_read_public(&po, 0, &spec.holder) != 0)
		return 1;
	sc = kt_load_scopes(a->dir);
	if (!sc)
		return 1;
	for (uint32_t i = 0; i < a->nscopes; i++)
		if (scope_ref(a->scopes[i], strlen(a->scopes[i]), sc, &scopes[i]) != 0)
			goto out;
	for (uint32_t i = 0; i < a->nfilters; i++) {
		const char *colon = strchr(a->filters[i], ':');

		if (!colon || scope_ref(a->filters[i], (size_t)(colon - a->filters[i]), sc,
			&rules[i].scope) != 0) {
			if (!colon)
				fprintf(stderr, "%s authority issue: --filter wants SCOPE:FILTER\n",
					KT_PROG);
			goto out;
		}
		rules[i].filter = colon + 1;
		rules[i].filter_len = strlen(colon + 1);
	}
	if (kt_authority_load(a, &id) != 0)
		goto out;
	spec.kind = (uint8_t)a->kind;
	randombytes_buf(&spec.serial, sizeof spec.serial);
	spec.not_before_ms = now;
	spec.not_after_ms = now + ttl;
	spec.nrules = (uint16_t)a->nfilters;
	spec.rules = rules;
	spec.nscopes = (uint8_t)a->nscopes;
	spec.scopes = scopes;
	st = e2e_cred_issue(cred, sizeof cred, &len, &spec, &id);
	if (st == E2E_OK)
		st = e2e_cred_format(text, sizeof text, cred, len);
	if (st != E2E_OK) {
		kt_fail(st, "credential", st == E2E_ERR_ARG ? "invalid topic filter, or too many "
			"rules or scopes" : NULL);
		goto out;
	}
	if (kt_authority_log_issue(a, &spec.holder, spec.serial) != 0)
		goto out;
	ret = write_or_print(a, text);
out:
	e2e_identity_destroy(&id);
	return ret;
}

int kt_cmd_authority(int argc, char **argv)
{
	struct kt_auth_opts a;
	int r;

	if (argc < 2) {
		if (argc == 1)
			return kt_misuse(authority_usage);
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(authority_usage, stdout);
		return 0;
	}
	r = parse(argc - 1, argv + 1, &a);
	if (r >= 0)
		return r;
	if (!strcmp(argv[1], "init"))
		return cmd_init(&a);
	if (!strcmp(argv[1], "issue"))
		return cmd_issue(&a);
	if (!strcmp(argv[1], "revoke"))
		return kt_authority_revoke(&a);
	fprintf(stderr, "%s authority: unknown action '%s'\n", KT_PROG, argv[1]);
	return kt_misuse(authority_usage);
}
