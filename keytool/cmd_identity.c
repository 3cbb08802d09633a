/*
 * genkey and pubkey: create an identity and show its public half. The
 * secret key is never printed: only the public line or its fingerprint.
 */
#include <stdio.h>
#include <string.h>

#include "keytool.h"

static const char genkey_usage[] =
	"Usage: " KT_PROG " genkey [--dir DIR | -o FILE] [--name NAME] [--force]\n"
	"\n"
	"Create a new identity (Ed25519 + X25519) in DIR/identity.key, mode 0600,\n"
	"and print its public line on stdout.\n"
	"\n"
	"  --dir DIR     state directory (default $E2E_DIR, else " KT_SENDER_DIR ");\n"
	"                created with mode 0700 if missing\n"
	"  -o, --out FILE  write the identity to FILE instead\n"
	"  --name NAME   append NAME to the printed public line\n"
	"  --force       replace an existing identity file (its key is lost)\n";

static const char pubkey_usage[] =
	"Usage: " KT_PROG " pubkey [--dir DIR] [--name NAME] [--fingerprint] [FILE]\n"
	"\n"
	"Print the public line \"e2e1 <base64> [NAME]\" of an identity file\n"
	"(default DIR/identity.key), or with --fingerprint its fingerprint.\n"
	"Refuses identity files that are group or world accessible.\n";

static int print_public(const struct e2e_public *pub, const char *name, int fingerprint)
{
	char line[E2E_PUBLINE_MIN + E2E_NAME_MAX + 1], fp[E2E_FINGERPRINT_LEN];
	enum e2e_status st;

	if (fingerprint) {
		e2e_public_fingerprint(fp, pub);
		printf("%s\n", fp);
		return 0;
	}
	st = e2e_public_format(line, sizeof line, pub, name);
	if (st != E2E_OK)
		return kt_fail(st, "public line", NULL);
	printf("%s\n", line);
	return 0;
}

int kt_cmd_genkey(int argc, char **argv)
{
	struct kt_opts o;
	struct e2e_identity id;
	char path[PATH_MAX];
	enum e2e_status st;
	int ret = kt_parse(argc, argv, "donf", genkey_usage, &o);

	if (ret >= 0)
		return ret;
	if (o.argc != 0 || (o.dir && o.out))
		return kt_misuse(genkey_usage);
	if (o.name && kt_check_name(o.name) != 0)
		return 1;
	ret = 1;
	memset(&id, 0, sizeof id);
	if (kt_identity_path(path, sizeof path, &o, o.out, 1) != 0)
		goto out;
	st = e2e_identity_generate(&id);
	if (st != E2E_OK) {
		kt_fail(st, "generate", NULL);
		goto out;
	}
	st = e2e_identity_save(&id, path, o.force);
	if (st == E2E_ERR_EXISTS)
		fprintf(stderr, "%s: %s exists: refusing to replace an identity (use --force)\n",
			KT_PROG, path);
	else if (st != E2E_OK)
		kt_fail(st, path, NULL);
	if (st != E2E_OK)
		goto out;
	fprintf(stderr, "%s: wrote %s\n", KT_PROG, path);
	ret = print_public(&id.pub, o.name, 0);
out:
	e2e_identity_destroy(&id);
	return ret;
}

int kt_cmd_pubkey(int argc, char **argv)
{
	struct kt_opts o;
	struct e2e_identity id;
	char path[PATH_MAX];
	enum e2e_status st;
	int ret = kt_parse(argc, argv, "dnF", pubkey_usage, &o);

	if (ret >= 0)
		return ret;
	if (o.argc > 1 || (o.argc == 1 && o.dir))
		return kt_misuse(pubkey_usage);
	if (o.name && kt_check_name(o.name) != 0)
		return 1;
	if (kt_identity_path(path, sizeof path, &o, o.argc ? o.argv[0] : NULL, 0) != 0)
		return 1;
	st = e2e_identity_load(&id, path);
	if (st != E2E_OK)
		return kt_fail(st, path, st == E2E_ERR_PERM ? "run chmod 600 on it" : NULL);
	ret = print_public(&id.pub, o.name, o.fingerprint);
	e2e_identity_destroy(&id);
	return ret;
}
