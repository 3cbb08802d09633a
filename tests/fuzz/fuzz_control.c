/*
 * libFuzzer target for control traffic: arbitrary bytes through
 * e2e_ctl_parse (every type, with and without a signer), the summary
 * iterator, and the key service (which must never answer garbage).
 */
#include <stdlib.h>
#include <string.h>

#include "e2e/e2e.h"

static struct e2e_identity id;
static struct e2e_keysvc *svc;

static enum e2e_status enrolled(void *ctx, const struct e2e_public *who, uint8_t scopes[32])
{
	(void)ctx;
	(void)who;
	memset(scopes, 0xff, 32);
	return E2E_OK;
}

static uint8_t keys(void *ctx, uint8_t scope, struct e2e_ctl_key *out, uint8_t cap, uint64_t now)
{
	(void)ctx;
	(void)now;
	if (!cap)
		return 0;
	memset(out, 0, sizeof *out);
	out->scope = scope;
	out->epoch = 1;
	return 1;
}

static enum e2e_status map(void *ctx, struct e2e_ctl_map *m)
{
	static const struct e2e_scope_rule all = { 0, "#", 1 };

	(void)ctx;
	*m = (struct e2e_ctl_map){ 0, 1, &all, 0, 0 };
	return E2E_OK;
}

static void setup(void)
{
	struct e2e_keysvc_config kc = { 0 };

	if (e2e_init() != E2E_OK || e2e_identity_generate(&id) != E2E_OK)
		abort();
	kc.identity = &id;
	kc.enrolled = enrolled;
	kc.keys = keys;
	kc.map = map;
	if (e2e_keysvc_create(&svc, &kc) != E2E_OK)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[E2E_CTL_DELIVERY_MAX];
	char reply[E2E_CTL_REPLY_MAX + 1];
	struct e2e_ctl m;
	size_t olen;

	if (!svc)
		setup();
	if (e2e_ctl_parse(&m, data, size, "e2e/control", &id.pub) == E2E_OK) {
		/* Only a valid signature by id could get here: impossible for fuzz input. */
		abort();
	}
	if (e2e_ctl_parse(&m, data, size, "e2e/control", NULL) == E2E_OK &&
	    m.type != E2E_CTL_REQUEST)
		abort();
	if (e2e_keysvc_handle(svc, data, size, "e2e/control", out, sizeof out, &olen, reply,
			1000) == E2E_OK) {
		/* An answer needs a request signed by its own key: possible only if
		 * the fuzzer built one, which it cannot without the signing key. */
		if (size < E2E_CTL_HEAD_BYTES + E2E_CTL_SIG_BYTES)
			abort();
	}
	return 0;
}
