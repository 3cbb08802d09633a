/*
 * genkey and pubkey: create an identity and show its public half. The
 * secret key is printed only when asked for (genkey -o -, for pipes); pubkey
 * reads it from a file or from stdin.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keytool.h"

static const char genkey_usage[] =
	"Usage: " KT_PROG " genkey [--dir DIR | -o FILE] [--name NAME] [--force]\n"
	"\n"
	"Create a new identity (Ed25519 + X25519) in DIR/identity.key, mode 0600,\n"
	"and print its public line on stdout.\n"
	"\n"
	"  --dir DIR     state directory (default $E2E_DIR, else " KT_SENDER_DIR ");\n"
	"                created with mode 0700 if missing\n"
	"  -o, --out FILE  write the identity to FILE instead; with FILE \"-\", write the\n"
	"                secret to stdout and nothing else (as wg genkey), e.g.\n"
	"                " KT_PROG " genkey -o - | " KT_PROG " pubkey\n"
	"  --name NAME   append NAME to the printed public line\n"
	"  --force       replace an existing identity file (its key is lost)\n";

static const char pubkey_usage[] =
	"Usage: " KT_PROG " pubkey [--dir DIR] [--name NAME] [--fingerprint] [FILE]\n"
	"\n"
	"Print the public line \"e2e1 <base64> [NAME]\" of an identity file\n"
	"(default DIR/identity.key), or with --fingerprint its fingerprint.\n"
	"Refuses identity files that are group or world accessible.\n"
	"FILE \"-\" reads the secret from stdin; so does a call without FILE and\n"
	"without --dir whose stdin is a pipe or a file (as wg pubkey does).\n";

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

/*
 * genkey -o -: the secret file's text on stdout, and nothing else there, so
 * the output can be piped into pubkey or a secret store. --force has nothing
 * to replace, and --name belongs to the public line pubkey prints.
 */
static int genkey_stdout(const struct kt_opts *o)
{
	struct e2e_identity id;
	char text[E2E_IDENTITY_TEXT_LEN];
	size_t len = 0;
	enum e2e_status st;
	int ret = 1;

	memset(&id, 0, sizeof id);
	if (o->name || o->force) {
		fprintf(stderr, "%s genkey: with -o -, --name and --force do not apply (nothing "
			"is printed but the secret; give --name to pubkey)\n", KT_PROG);
		goto out;
	}
	st = e2e_identity_generate(&id);
	if (st == E2E_OK)
		st = e2e_identity_format(text, sizeof text, &len, &id);
	if (st != E2E_OK) {
		kt_fail(st, "generate", NULL);
		goto out;
	}
	if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0) {
		fprintf(stderr, "%s genkey: cannot write to stdout\n", KT_PROG);
		goto out;
	}
	ret = 0;
out:
	sodium_memzero(text, sizeof text);
	e2e_identity_wipe(&id);
	return ret;
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
	if (o.out && strcmp(o.out, "-") == 0)
		return genkey_stdout(&o);
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

/*
 * Whether stdin carries data meant for us: a pipe or a redirected file.
 * A terminal, /dev/null (services, cron) or a closed stdin keep the old
 * meaning of a bare "pubkey": the identity in the state directory.
 */
static int stdin_piped(void)
{
	struct stat sb;

	return fstat(STDIN_FILENO, &sb) == 0 && (S_ISFIFO(sb.st_mode) || S_ISREG(sb.st_mode));
}

/* pubkey from a secret on stdin (at most a few lines; wiped after use). */
static int pubkey_stdin(const struct kt_opts *o)
{
	struct e2e_identity id;
	char buf[4096];
	size_t len = 0, n;
	enum e2e_status st = E2E_ERR_CORRUPT;
	int ret = 1;

	memset(&id, 0, sizeof id);
	while (len < sizeof buf && (n = fread(buf + len, 1, sizeof buf - len, stdin)) > 0)
		len += n;
	if (ferror(stdin)) {
		fprintf(stderr, "%s pubkey: cannot read stdin\n", KT_PROG);
		goto out;
	}
	/* More than a secret file holds is not one. */
	if (len < sizeof buf)
		st = e2e_identity_parse(&id, buf, len);
	if (st != E2E_OK) {
		kt_fail(st, "stdin", len ? "expected an identity (as genkey -o - writes)" :
			"empty: expected an identity (as genkey -o - writes)");
		goto out;
	}
	ret = print_public(&id.pub, o->name, o->fingerprint);
out:
	sodium_memzero(buf, sizeof buf);
	e2e_identity_wipe(&id);
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
	if ((o.argc == 1 && strcmp(o.argv[0], "-") == 0) || (o.argc == 0 && !o.dir && stdin_piped()))
		return pubkey_stdin(&o);
	if (kt_identity_path(path, sizeof path, &o, o.argc ? o.argv[0] : NULL, 0) != 0)
		return 1;
	st = e2e_identity_load(&id, path);
	if (st != E2E_OK)
		return kt_fail(st, path, st == E2E_ERR_PERM ? "run chmod 600 on it" : NULL);
	ret = print_public(&id.pub, o.name, o.fingerprint);
	e2e_identity_destroy(&id);
	return ret;
}
