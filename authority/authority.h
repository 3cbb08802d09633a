/*
 * e2e-authority: the fleet authority's online service (protocol/SPEC.md
 * 14.4): answers ticket redemptions and publishes the retained revocation
 * list. main.c parses options; serve.c runs the MQTT side.
 */
#ifndef E2E_AUTHORITY_H
#define E2E_AUTHORITY_H

#include <stdint.h>

#include "cliopts.h"

#define AUTH_PROG "e2e-authority"
#define AUTH_DIR_DEFAULT "/var/lib/mqtt-e2e/authority"

struct auth_args {
	struct cli_common cc;
	const char *dir;              /* resolved authority directory */
	uint64_t cred_ttl_ms;         /* validity of the credentials granted */
	uint64_t window_ms;           /* REDEEM time tolerance */
	int verbose;
};

/* Run until SIGINT/SIGTERM; SIGHUP re-reads and republishes DIR/revocations.
 * The exit status (CLI_EXIT_*). */
int auth_serve(const struct auth_args *a);

#endif
