/*
 * The smallest useful end-to-end subscriber: identity, trust store and
 * replay state from one directory (see e2e-keytool(1)), every message of
 * sensors/# printed with its verdict. Usage: subscriber DIR [HOST [PORT]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "e2e/client.h"

static void on_message(void *ctx, const struct e2e_client_msg *m)
{
	(void)ctx;
	/* Only delivering verdicts (OK, GAP, LATE) carry a payload. */
	printf("%-11s %s %.*s\n", e2e_verdict_name(m->verdict), m->topic,
		m->payload ? (int)m->len : 0, m->payload ? (const char *)m->payload : "");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	char id[4096], trust[4096], state[4096], err[512] = "";
	struct e2e_client_config cfg = { 0 };
	struct e2e_client *c = NULL;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR [HOST [PORT]]\n", argv[0]);
		return 1;
	}
	snprintf(id, sizeof id, "%s/identity.key", argv[1]);
	snprintf(trust, sizeof trust, "%s/trust", argv[1]);
	snprintf(state, sizeof state, "%s/rxstate", argv[1]);
	cfg.conn.host = argc > 2 ? argv[2] : NULL;
	cfg.conn.port = argc > 3 ? atoi(argv[3]) : 0;
	cfg.identity_file = id;
	cfg.trust_file = trust;
	cfg.state_file = state;
	cfg.on_message = on_message;
	cfg.err = err;
	cfg.err_len = sizeof err;
	if (e2e_client_create(&c, &cfg) != E2E_OK ||
	    e2e_client_subscribe(c, "sensors/#", 1) != E2E_OK ||
	    e2e_client_connect(c, 10000) != E2E_OK) {
		fprintf(stderr, "subscriber: %s\n", *err ? err : "cannot subscribe");
		e2e_client_destroy(c);
		return 1;
	}
	for (;;)
		pause();   /* messages arrive on the client's thread; Ctrl-C ends */
}
