/*
 * Key service with and without credential checks (issue 18 item 5, SPEC
 * 13.5), calling e2e_keysvc_handle directly, no network:
 *
 *   enrolled   N requests from 100 enrolled subscribers (the baseline);
 *   cred-warm  the same from 100 credential holders nobody enrolled, their
 *              credentials verified once before (the steady state);
 *   cred-cold  one request each from 10,000 distinct credential holders:
 *              every credential's authority signature checked once.
 *
 * Requests are built and signed before the clock starts; each timed call
 * verifies the request, checks the credential and builds a sealed, signed
 * delivery. The rate limits are opened wide (the figure is CPU, not policy);
 * times are the process's CPU time (requests/s = 1 / CPU seconds per request).
 * Prints one line per case and the ratio; exits 1 if a goal is missed
 * (cred-warm <= 1.10 x enrolled per request, cred-cold >= 1,000 req/s), so
 * a run can fail. Usage: bench_keysvc_cred [--quick]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e2e/e2e.h"

#define HOLDERS 100U
#define DISTINCT 10000U
#define NOW 1700000000000ULL

static struct e2e_identity sender, auth;
static struct e2e_authorities au;
static struct e2e_identity *subs;
static int enrolled_mode;

static enum e2e_status enrolled(void *ctx, const struct e2e_public *who, uint8_t scopes[32])
{
	(void)ctx; (void)who;
	if (!enrolled_mode)
		return E2E_ERR_NOT_FOUND;
	memset(scopes, 0, 32);
	scopes[0] = 0x02;   /* scope 1 */
	return E2E_OK;
}

static uint8_t keys(void *ctx, uint8_t scope, struct e2e_ctl_key *out, uint8_t cap, uint64_t now)
{
	(void)ctx; (void)now;
	if (!cap || scope != 1)
		return 0;
	memset(out, 0x11, sizeof *out);
	out->scope = 1;
	out->epoch = 1;
	out->not_after_ms = 0;
	out->flags = 0;
	return 1;
}

static enum e2e_status map(void *ctx, struct e2e_ctl_map *m)
{
	static const struct e2e_scope_rule r[] = { { 1, "plant/#", 7 }, { 0, "#", 1 } };

	(void)ctx;
	*m = (struct e2e_ctl_map){ 0, 2, r, 0, 0 };
	return E2E_OK;
}

static void fleet(void *ctx, const struct e2e_authorities **a, const uint8_t **c, size_t *cl)
{
	(void)ctx;
	*a = &au;
	*c = NULL;
	*cl = 0;
}

struct req {
	uint8_t msg[E2E_CTL_MSG_MAX];
	size_t len;
};

static double now_s(void)
{
	struct timespec ts;

	/* CPU time of this process: the machine may be shared, and the figure
	 * is what one request costs the key service, not what others took. */
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void build(struct req *r, const struct e2e_identity *who, int with_cred)
{
	static const uint8_t scopes[] = { 1 };
	struct e2e_cred_spec s = { .kind = E2E_CRED_SUBSCRIBER, .serial = 1,
		.not_before_ms = 0, .not_after_ms = NOW * 2, .holder = who->pub, .nscopes = 1,
		.scopes = scopes };
	struct e2e_ctl req;
	struct e2e_ctl_want w = { 1, 0 };
	uint8_t cred[E2E_CRED_MAX], eph[32];
	size_t cl = 0;

	if (with_cred && e2e_cred_issue(cred, sizeof cred, &cl, &s, &auth) != E2E_OK)
		abort();
	if (e2e_ctl_request_cred(r->msg, sizeof r->msg, &r->len, &req, eph, who,
		e2e_sender_id(&sender.pub), &w, 1, NULL, E2E_CTL_TOPIC_DEFAULT,
		with_cred ? cred : NULL, cl, NOW) != E2E_OK)
		abort();
}

/* Seconds for handling @p n requests; every one must be answered with a delivery. */
static double run(struct e2e_keysvc *ks, struct req *rq, uint32_t n)
{
	static uint8_t out[E2E_CTL_DELIVERY_MAX];
	char reply[E2E_CTL_REPLY_MAX + 1];
	size_t olen;
	double t0 = now_s();

	for (uint32_t i = 0; i < n; i++)
		if (e2e_keysvc_handle(ks, rq[i].msg, rq[i].len, E2E_CTL_TOPIC_DEFAULT, out, sizeof out,
			&olen, reply, NOW) != E2E_OK || out[1] != E2E_CTL_DELIVERY) {
			fprintf(stderr, "request %u not delivered\n", i);
			exit(1);
		}
	return now_s() - t0;
}

static struct e2e_keysvc *service(void)
{
	struct e2e_keysvc_config kc;
	struct e2e_keysvc *ks;

	memset(&kc, 0, sizeof kc);
	kc.identity = &sender;
	kc.enrolled = enrolled;
	kc.keys = keys;
	kc.map = map;
	kc.fleet = fleet;
	kc.per_identity_burst = 1U << 30;
	kc.per_identity_ms = 1;
	kc.global_burst = 1U << 30;
	kc.global_ms = 1;
	kc.replay_cache = 1U << 17;
	if (e2e_keysvc_create(&ks, &kc) != E2E_OK)
		abort();
	return ks;
}

int main(int argc, char **argv)
{
	uint32_t n = argc > 1 && !strcmp(argv[1], "--quick") ? 2000U : 20000U;
	uint32_t distinct = n < DISTINCT ? n : DISTINCT;
	struct req *plain = calloc(n, sizeof *plain), *cred = calloc(n, sizeof *cred),
		*cold = calloc(DISTINCT, sizeof *cold), warmup[HOLDERS];
	struct e2e_keysvc *ks;
	double te, tw, tc, ratio, rate;
	int ok;

	subs = calloc(DISTINCT, sizeof *subs);
	if (!plain || !cred || !cold || !subs || e2e_init() != E2E_OK ||
	    e2e_identity_generate(&sender) != E2E_OK || e2e_identity_generate(&auth) != E2E_OK)
		return 1;
	au.n = 1;
	au.a[0].pub = auth.pub;
	e2e_public_fp(au.a[0].fp, &auth.pub);
	for (uint32_t i = 0; i < DISTINCT; i++)
		if (e2e_identity_generate(&subs[i]) != E2E_OK)
			return 1;
	for (uint32_t i = 0; i < n; i++) {
		build(&plain[i], &subs[i % HOLDERS], 0);
		build(&cred[i], &subs[i % HOLDERS], 1);
	}
	for (uint32_t i = 0; i < HOLDERS; i++)
		build(&warmup[i], &subs[i], 1);
	for (uint32_t i = 0; i < DISTINCT; i++)
		build(&cold[i], &subs[i], 1);

	/* Baseline and warm credentials, interleaved twice against drift. */
	te = tw = 0;
	for (int round = 0; round < 2; round++) {
		uint32_t half = n / 2, off = round ? half : 0;

		enrolled_mode = 1;
		ks = service();
		te += run(ks, plain + off, half);
		e2e_keysvc_destroy(ks);
		enrolled_mode = 0;
		ks = service();
		(void)run(ks, warmup, HOLDERS);   /* each credential verified once */
		tw += run(ks, cred + off, half);
		e2e_keysvc_destroy(ks);
	}
	enrolled_mode = 0;
	ks = service();
	tc = run(ks, cold, distinct);
	e2e_keysvc_destroy(ks);

	ratio = (tw / n) / (te / n);
	rate = distinct / tc;
	printf("enrolled   %u requests  %.1f us/request\n", n, te / n * 1e6);
	printf("cred-warm  %u requests  %.1f us/request  (x%.3f of enrolled; goal <= 1.10)\n", n,
		tw / n * 1e6, ratio);
	printf("cred-cold  %u distinct credentials  %.1f us/request  %.0f requests/s "
		"(goal >= 1000)\n", distinct, tc / distinct * 1e6, rate);
	ok = ratio <= 1.10 && rate >= 1000.0;
	printf("%s\n", ok ? "goals met" : "GOAL MISSED");
	return ok ? 0 : 1;
}
