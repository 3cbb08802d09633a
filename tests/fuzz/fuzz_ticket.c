/*
 * libFuzzer target for the ticket parsers (SPEC 14): arbitrary bytes as a
 * token, as a REDEEM through the authority's whole decision (which must
 * never answer: an answer needs a valid signature by the key a REDEEM
 * carries, and nothing valid can come from a fuzzer without the secret...
 * except a REDEEM signed by the fuzzer's own key, which it cannot make
 * either), and as a GRANT checked by a redeemer (which must never accept
 * without the authority's signature).
 */
#include <stdlib.h>
#include <string.h>

#include "e2e/e2e.h"

static struct e2e_identity auth;
static struct e2e_tickets ts;
static char topic[E2E_TICKET_TOPIC_MAX + 1];
static uint8_t fp[E2E_FP_BYTES];

static void setup(void)
{
	static const uint8_t scopes[] = { 1 };
	const struct e2e_ticket *t;

	if (e2e_init() != E2E_OK || e2e_identity_generate(&auth) != E2E_OK)
		abort();
	e2e_public_fp(fp, &auth.pub);
	if (e2e_ticket_redeem_topic(topic, sizeof topic, "e2e/control", fp) != E2E_OK ||
	    e2e_tickets_add(&ts, scopes, 1, UINT64_MAX / 2, 5, 1, &t) != E2E_OK)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[E2E_CTL_MSG_MAX];
	char text[128];
	struct e2e_ticket_token tok;
	struct e2e_ticket_outcome res;
	struct e2e_redeem r, sent;
	struct e2e_cred c;
	uint8_t h[E2E_CTL_HASH_BYTES] = { 0 };
	size_t olen, n = size < sizeof text - 1 ? size : sizeof text - 1;

	if (!auth.sign_sk)
		setup();
	memcpy(text, data, n);
	text[n] = '\0';
	if (e2e_ticket_token_parse(&tok, text) == E2E_OK) {
		char back[E2E_TICKET_TOKEN_LEN + 1];

		/* A token that parses formats back to its trimmed self. */
		e2e_ticket_token_format(back, &tok);
		if (!strstr(text, back))
			abort();
	}
	if (e2e_ticket_redeem_parse(&r, data, size, topic) == E2E_OK)
		abort();   /* a signature by the carried key: not from a fuzzer */
	if (e2e_ticket_serve(out, sizeof out, &olen, &res, &ts, &auth, data, size, topic, 1000,
			300000, 1000) == E2E_OK)
		abort();
	memset(&sent, 0, sizeof sent);
	if (e2e_ticket_accept(&r, &c, data, size, "e2e/k/00000000000000000000000000000000",
			&sent, h, fp) == E2E_OK)
		abort();   /* would need the authority's signature */
	return 0;
}
