/*
 * libFuzzer target for the fleet-trust parsers (SPEC 13): arbitrary bytes
 * as a credential (binary and text), an `authorities` file, a revocation
 * list, and a key request to a key service that lists an authority (the
 * credential path of 11.3/13.5, which must never answer garbage). None may
 * crash, read out of bounds, or accept what only the authority can sign.
 */
#include <stdlib.h>
#include <string.h>

#include "e2e/e2e.h"

static struct e2e_identity sender, auth;
static struct e2e_authorities au;
static struct e2e_keysvc *svc;

static enum e2e_status nobody(void *ctx, const struct e2e_public *who, uint8_t scopes[32])
{
	(void)ctx; (void)who; (void)scopes;
	return E2E_ERR_NOT_FOUND;
}

static uint8_t keys(void *ctx, uint8_t scope, struct e2e_ctl_key *out, uint8_t cap, uint64_t now)
{
	(void)ctx; (void)now;
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

static void fleet(void *ctx, const struct e2e_authorities **a, const uint8_t **c, size_t *cl)
{
	(void)ctx;
	*a = &au;
	*c = NULL;
	*cl = 0;
}

static void setup(void)
{
	struct e2e_keysvc_config kc = { 0 };

	if (e2e_init() != E2E_OK || e2e_identity_generate(&sender) != E2E_OK ||
	    e2e_identity_generate(&auth) != E2E_OK)
		abort();
	au.n = 1;
	au.a[0].pub = auth.pub;
	e2e_public_fp(au.a[0].fp, &auth.pub);
	kc.identity = &sender;
	kc.enrolled = nobody;
	kc.keys = keys;
	kc.map = map;
	kc.fleet = fleet;
	if (e2e_keysvc_create(&svc, &kc) != E2E_OK)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[E2E_CTL_DELIVERY_MAX], bin[E2E_CRED_MAX];
	struct e2e_cred c;
	struct e2e_revlist rl;
	struct e2e_authorities parsed;
	char reply[E2E_CTL_REPLY_MAX + 1], topic[E2E_REVLIST_TOPIC_MAX], err[128];
	size_t olen, blen;

	if (!svc)
		setup();
	/* Only the authority can sign: nothing the fuzzer makes verifies. */
	if (e2e_cred_parse(&c, data, size) == E2E_OK) {
		if (e2e_cred_verify(&c, &auth.pub) == E2E_OK)
			abort();
		(void)e2e_cred_grants(&c, data[0]);
		(void)e2e_cred_has_rule(&c, 0, "#", 1);
	}
	if (e2e_cred_decode(bin, sizeof bin, &blen, (const char *)data, size) == E2E_OK &&
	    blen > E2E_CRED_MAX)
		abort();
	(void)e2e_authorities_parse(&parsed, (const char *)data, size, err, sizeof err);
	if (e2e_revlist_topic(topic, sizeof topic, "e2e/control", au.a[0].fp) != E2E_OK ||
	    e2e_revlist_parse(&rl, data, size, topic, &au) == E2E_OK)
		abort();
	if (e2e_keysvc_handle(svc, data, size, "e2e/control", out, sizeof out, &olen, reply,
			1000) == E2E_OK) {
		/* A signed REQUEST the fuzzer built with a key of its own can be
		 * refused (no valid credential), never delivered to. */
		struct e2e_ctl m;

		if (e2e_ctl_peek(&m, out, olen) != E2E_OK || m.type != E2E_CTL_REFUSAL)
			abort();
	}
	return 0;
}
