/*
 * Test helper for cli.sh: record a counter reservation in a sender's
 * txstate the way a running sender would, so that `e2e-keytool status`
 * can be checked against a known number.
 *   txreserve DIR SCOPE EPOCH CEILING
 */
#include <stdio.h>
#include <stdlib.h>

#include "e2e/e2e.h"

int main(int argc, char **argv)
{
	struct e2e_identity id;
	struct e2e_keyid kid;
	char path[4096];
	enum e2e_status st;

	if (argc != 5)
		return 2;
	snprintf(path, sizeof path, "%s/identity.key", argv[1]);
	st = e2e_identity_load(&id, path);
	if (st != E2E_OK) {
		fprintf(stderr, "txreserve: %s: %s\n", path, e2e_strerror(st));
		return 1;
	}
	kid.sender = e2e_sender_id(&id.pub);
	kid.scope = (uint8_t)strtoul(argv[2], NULL, 10);
	kid.epoch = (uint32_t)strtoul(argv[3], NULL, 10);
	e2e_identity_destroy(&id);
	snprintf(path, sizeof path, "%s/txstate", argv[1]);
	st = e2e_txstate_reserve(path, &kid, strtoull(argv[4], NULL, 10));
	if (st != E2E_OK) {
		fprintf(stderr, "txreserve: %s: %s\n", path, e2e_strerror(st));
		return 1;
	}
	return 0;
}
