/*
 * Subscriber side: trust and untrust senders in DIR/trust, the subscriber's
 * equivalent of ssh's known_hosts.
 */
#include <stdio.h>
#include <string.h>

#include "keytool.h"

static const char trust_usage[] =
	"Usage: " KT_PROG " trust NAME PUBKEY-LINE|- [--dir DIR]\n"
	"\n"
	"Accept messages and keys from sender NAME (an e2e-proxy or publisher),\n"
	"identified by its public line (\"e2e1 <base64>\", or '-' for stdin).\n"
	"Compare the fingerprint printed with 'pubkey --fingerprint' on the sender.\n"
	"\n"
	"  --dir DIR  subscriber directory (default $E2E_DIR, else $HOME/.config/mqtt-e2e)\n";

static const char untrust_usage[] =
	"Usage: " KT_PROG " untrust NAME [--dir DIR]\n"
	"\n"
	"Stop accepting sender NAME.\n";

int kt_cmd_trust(int argc, char **argv)
{
	struct kt_opts o;
	struct e2e_public pub;
	struct e2e_enroll *en = NULL;
	const struct e2e_enroll_entry *e;
	char dir[PATH_MAX], fp[E2E_FINGERPRINT_LEN];
	enum e2e_status st;
	int ret = kt_parse(argc, argv, "d", trust_usage, &o);

	if (ret >= 0)
		return ret;
	if (o.argc < 2)
		return kt_misuse(trust_usage);
	ret = 1;
	if (kt_check_name(o.argv[0]) != 0 || kt_read_public(&o, 1, &pub) != 0 ||
	    kt_dir(dir, sizeof dir, &o, KT_SUBSCRIBER) != 0 || kt_mkdirs(dir) != 0)
		goto out;
	en = kt_load_peers(dir, E2E_ENROLL_TRUST, NULL);
	if (!en)
		goto out;
	e2e_public_fingerprint(fp, &pub);
	e = e2e_enroll_find_key(en, pub.sign_pk);
	if (e && strcmp(e->name, o.argv[0]) == 0) {
		fprintf(stderr, "%s: %s (%s) is already trusted\n", KT_PROG, o.argv[0], fp);
		ret = 0;
		goto out;
	}
	st = e2e_enroll_add(en, o.argv[0], &pub, NULL);
	if (st == E2E_ERR_EXISTS) {
		fprintf(stderr, "%s: %s\n", KT_PROG, e ?
			"this key is already trusted under another name" :
			"that name is trusted with another key: untrust it first");
		goto out;
	}
	if (st != E2E_OK) {
		kt_fail(st, "trust", NULL);
		goto out;
	}
	if (kt_save_peers(en, NULL, dir) != 0)
		goto out;
	fprintf(stderr, "%s: trusted %s (%s)\n", KT_PROG, o.argv[0], fp);
	ret = 0;
out:
	e2e_enroll_free(en);
	return ret;
}

int kt_cmd_untrust(int argc, char **argv)
{
	struct kt_opts o;
	struct e2e_enroll *en = NULL;
	char dir[PATH_MAX];
	enum e2e_status st;
	int ret = kt_parse(argc, argv, "d", untrust_usage, &o);

	if (ret >= 0)
		return ret;
	if (o.argc != 1)
		return kt_misuse(untrust_usage);
	ret = 1;
	if (kt_dir(dir, sizeof dir, &o, KT_SUBSCRIBER) != 0)
		goto out;
	en = kt_load_peers(dir, E2E_ENROLL_TRUST, NULL);
	if (!en)
		goto out;
	st = e2e_enroll_remove(en, o.argv[0]);
	if (st == E2E_ERR_NOT_FOUND) {
		fprintf(stderr, "%s: no trusted sender named '%s'\n", KT_PROG, o.argv[0]);
		goto out;
	}
	if (st != E2E_OK || kt_save_peers(en, NULL, dir) != 0)
		goto out;
	fprintf(stderr, "%s: untrusted %s\n", KT_PROG, o.argv[0]);
	ret = 0;
out:
	e2e_enroll_free(en);
	return ret;
}
