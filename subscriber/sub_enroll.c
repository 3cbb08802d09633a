/*
 * e2e-sub --enroll TOKEN: redeem a one-time ticket before subscribing
 * (protocol/SPEC.md 14.5). Makes the directory and identity when missing,
 * installs `authorities` and `credential`; the subscriber then starts as
 * usual, trusting the senders that hold a credential of the authority.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cliopts.h"
#include "e2e/ticket.h"
#include "sub.h"

static int mkdirs(const char *dir)
{
	char buf[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
			fprintf(stderr, "%s: --enroll: cannot create %s: %s\n", SUB_PROG, buf,
				strerror(errno));
			return -1;
		}
		buf[i] = i == n ? '\0' : '/';
	}
	return 0;
}

int sub_enroll(const struct cli_common *cc, const char *dir, const char *identity,
	const char *token, uint32_t timeout_ms)
{
	struct e2e_redeem_config rc;
	char auth[PATH_MAX], cred[PATH_MAX], err[PATH_MAX + 300] = "";
	uint8_t reason = 0;
	enum e2e_status st;

	if (mkdirs(dir) != 0 || cli_join(auth, sizeof auth, dir, "authorities") ||
	    cli_join(cred, sizeof cred, dir, "credential"))
		return CLI_EXIT_USAGE;
	memset(&rc, 0, sizeof rc);
	rc.conn = cc->conn;
	rc.control_topic = cc->control_topic;
	rc.token = token;
	rc.identity_file = identity;
	rc.authorities_file = auth;
	rc.credential_file = cred;
	rc.timeout_ms = timeout_ms;
	rc.err = err;
	rc.err_len = sizeof err;
	st = e2e_client_redeem(&rc, &reason);
	if (st != E2E_OK) {
		fprintf(stderr, "%s: --enroll: %s\n", SUB_PROG, *err ? err : e2e_strerror(st));
		return st == E2E_ERR_IO ? CLI_EXIT_CONNECT : CLI_EXIT_USAGE;
	}
	fprintf(stderr, "%s: enrolled: %s and %s written\n", SUB_PROG, auth, cred);
	return -1;
}
