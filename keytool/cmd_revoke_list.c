/*
 * authority revoke: the numbered, signed revocation list (SPEC 13.3). The
 * authority keeps its current list in DIR/revocations (the signed message
 * itself, ready to publish retained); each revoke writes list number + 1
 * with one more key. A fingerprint is looked up in DIR/issued, the log of
 * every credential issued (a fingerprint alone cannot give the key).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/fileio.h"
#include "kt_authority.h"

/* A line of DIR/issued: "<fingerprint> <kind> <serial> e2e1 <base64>". */
static int lookup_issued(const struct kt_auth_opts *a, const char *fpr, struct e2e_public *pub)
{
	char path[PATH_MAX], line[512];
	FILE *f;
	int ret = -1;

	if (kt_path(path, sizeof path, a->dir, "issued") != 0)
		return -1;
	f = fopen(path, "r");
	while (f && fgets(line, sizeof line, f)) {
		char *pl = strstr(line, " e2e1 ");

		line[strcspn(line, "\n")] = '\0';
		if (pl && strncmp(line, fpr, strlen(fpr)) == 0 && line[strlen(fpr)] == ' ' &&
		    e2e_public_parse(pub, NULL, 0, pl + 1) == E2E_OK) {
			ret = 0;
			break;
		}
	}
	if (f)
		fclose(f);
	if (ret != 0)
		fprintf(stderr, "%s authority revoke: %s was not issued a credential here (give "
			"its public line instead)\n", KT_PROG, fpr);
	return ret;
}

int kt_authority_log_issue(const struct kt_auth_opts *a, const struct e2e_public *pub,
	uint64_t serial)
{
	char path[PATH_MAX], fp[E2E_FINGERPRINT_LEN], pl[E2E_PUBLINE_MIN + 1];
	FILE *f;

	if (kt_path(path, sizeof path, a->dir, "issued") != 0 ||
	    e2e_public_format(pl, sizeof pl, pub, NULL) != E2E_OK)
		return -1;
	e2e_public_fingerprint(fp, pub);
	f = fopen(path, "a");
	if (!f || fprintf(f, "%s %s %llu %s\n", fp, a->kind == E2E_CRED_SENDER ? "sender" :
		"subscriber", (unsigned long long)serial, pl) < 0 || fclose(f) != 0) {
		fprintf(stderr, "%s: cannot append to %s\n", KT_PROG, path);
		return -1;
	}
	return 0;
}

int kt_authority_revoke(const struct kt_auth_opts *a)
{
	struct e2e_identity id;
	struct e2e_authorities au;
	struct e2e_revlist old;
	struct e2e_public pub;
	struct kt_opts po;
	char path[PATH_MAX], topic[E2E_REVLIST_TOPIC_MAX];
	uint8_t *buf = NULL, *keys = NULL, *out = NULL;
	size_t blen = 0, len = 0;
	uint16_t n = 0;
	enum e2e_status st;
	int ret = 1;

	memset(&id, 0, sizeof id);
	memset(&old, 0, sizeof old);
	memset(&po, 0, sizeof po);
	po.argc = a->argc;
	po.argv = a->argv;
	if (a->argc < 1)
		return kt_misuse("Usage: " KT_PROG " authority revoke [--dir DIR] PUBLINE | "
			"FINGERPRINT\n");
	if (a->argc == 1 && strncmp(a->argv[0], "e2e:", 4) == 0) {
		if (lookup_issued(a, a->argv[0], &pub) != 0)
			return 1;
	} else if (kt_read_public(&po, 0, &pub) != 0) {
		return 1;
	}
	if (kt_authority_load(a, &id) != 0 || kt_path(path, sizeof path, a->dir, "revocations"))
		goto out;
	memset(&au, 0, sizeof au);
	au.n = 1;
	au.a[0].pub = id.pub;
	e2e_public_fp(au.a[0].fp, &id.pub);
	st = e2e_revlist_topic(topic, sizeof topic, a->control_topic, au.a[0].fp);
	if (st != E2E_OK) {
		kt_fail(st, "control topic", NULL);
		goto out;
	}
	st = e2e_file_read(path, 0, &buf, &blen);
	if (st == E2E_OK)
		st = e2e_revlist_parse(&old, buf, blen, topic, &au);
	if (st != E2E_OK && st != E2E_ERR_NOT_FOUND) {
		kt_fail(st, path, "not this authority's list for this control topic");
		goto out;
	}
	if (e2e_revlist_has(&old, pub.sign_pk)) {
		fprintf(stderr, "%s authority revoke: already revoked (list %llu)\n", KT_PROG,
			(unsigned long long)old.number);
		ret = 0;
		goto out;
	}
	if (old.n >= E2E_REVLIST_KEYS_MAX) {
		fprintf(stderr, "%s authority revoke: the list is full\n", KT_PROG);
		goto out;
	}
	n = (uint16_t)(old.n + 1);
	keys = malloc((size_t)n * 32U);
	out = malloc(E2E_REVLIST_MAX);
	if (!keys || !out) {
		kt_fail(E2E_ERR_NOMEM, "revocations", NULL);
		goto out;
	}
	if (old.n)
		memcpy(keys, old.keys, (size_t)old.n * 32U);
	memcpy(keys + (size_t)old.n * 32U, pub.sign_pk, 32);
	st = e2e_revlist_build(out, E2E_REVLIST_MAX, &len, &id, topic, old.number + 1, keys, n,
		e2e_now_ms());
	if (st == E2E_OK)
		st = e2e_file_write_atomic(path, out, len, 0);
	if (st != E2E_OK) {
		kt_fail(st, path, NULL);
		goto out;
	}
	printf("%s\nlist %llu, %u key(s); publish it retained on %s\n", path,
		(unsigned long long)(old.number + 1), (unsigned)n, topic);
	ret = 0;
out:
	free(keys);
	free(out);
	e2e_file_free(buf, blen);
	e2e_identity_destroy(&id);
	return ret;
}
