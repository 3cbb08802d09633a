/*
 * libFuzzer target for the text files an operator or an attacker with
 * write access to a directory may hand us: scopes, enrolled/trust lists,
 * the keys file, public key lines. Parsers must reject or accept, never
 * crash, and never accept a line they then cannot write back.
 */
#include <stdlib.h>
#include <string.h>

#include "e2e/e2e.h"
#include "e2e/enroll.h"
#include "e2e/keystore.h"
#include "e2e/scopes.h"

static struct e2e_scopes scopes;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct e2e_enroll *en = NULL;
	struct e2e_keystore *ks = NULL;
	struct e2e_public pub;
	char err[256], name[E2E_NAME_MAX + 1], line[512];
	uint8_t sid;

	if (e2e_init() != E2E_OK)
		abort();
	if (e2e_scopes_parse(&scopes, buf, size, "fuzz", err, sizeof err) == E2E_OK)
		(void)e2e_scopes_lookup(&scopes, "a/b", 3, &sid);
	else
		e2e_scopes_init(&scopes);
	if (e2e_enroll_parse(&en, E2E_ENROLL_SENDER, &scopes, buf, size, "fuzz", 1, err,
			sizeof err) == E2E_OK)
		e2e_enroll_free(en);
	en = NULL;
	if (e2e_enroll_parse(&en, E2E_ENROLL_TRUST, NULL, buf, size, "fuzz", 0, err,
			sizeof err) == E2E_OK)
		e2e_enroll_free(en);
	if (e2e_keystore_parse(&ks, buf, size, "fuzz", 0, err, sizeof err) == E2E_OK)
		e2e_keystore_free(ks);
	if (size < sizeof line) {
		memcpy(line, data, size);
		line[size] = '\0';
		if (e2e_public_parse(&pub, name, sizeof name, line) == E2E_OK) {
			char again[512];

			if (e2e_public_format(again, sizeof again, &pub, name[0] ? name : NULL) != E2E_OK)
				abort();
		}
	}
	return 0;
}
