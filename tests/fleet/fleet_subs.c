/*
 * Many subscribers in one process for the fleet test (tests/fleet/fleet.py):
 * one e2e_client (libe2e-client, its own MQTT connection) per directory made
 * by e2e-sub --enroll, trusting senders through the directory's authorities
 * and credential only. 200 e2e-sub processes would cost ~200 x 10 MB; these
 * are the same library sessions, sharing Paho's threads.
 *
 * usage: fleet_subs HOST PORT CAFILE FILTER DIR...
 * stdin: "report" prints one line per client, "i delivered anomalies refused
 *        keys"; delivered counts payloads starting with the phase letter in
 *        a per-phase column: "i a b c anomalies refused keys". "quit" ends.
 * stdout: "ready N" once every client is connected and subscribed.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/client.h"

#define PHASES 3
#define THREADS 16

struct sub {
	struct e2e_client *c;
	atomic_ulong got[PHASES];
	atomic_ulong anomalies, refused, keys, timeouts, rejected, events;
	char id[PATH_MAX + 32], auth[PATH_MAX + 32], cred[PATH_MAX + 32], trust[PATH_MAX + 32];
	const char *dir;
	char **argv;
	int ok;
};

static void on_message(void *ctx, const struct e2e_client_msg *m)
{
	struct sub *s = ctx;

	if (m->payload && m->len > 0 && m->payload[0] >= 'a' && m->payload[0] < 'a' + PHASES)
		atomic_fetch_add(&s->got[m->payload[0] - 'a'], 1);
	else if (!m->payload)
		atomic_fetch_add(&s->anomalies, 1);
}

static void on_event(void *ctx, const struct e2e_client_event *ev)
{
	struct sub *s = ctx;

	if (ev->type == E2E_EV_KEY_REFUSED)
		atomic_fetch_add(&s->refused, 1);
	else if (ev->type == E2E_EV_KEY_RECEIVED)
		atomic_fetch_add(&s->keys, 1);
	else if (ev->type == E2E_EV_KEY_TIMEOUT)
		atomic_fetch_add(&s->timeouts, 1);
	else if (ev->type == E2E_EV_CONTROL_REJECTED)
		atomic_fetch_add(&s->rejected, 1);
	else
		atomic_fetch_add(&s->events, 1);
	if (getenv("FLEET_SUBS_EVENTS"))
		fprintf(stderr, "%p event %d: %s\n", (void *)s, (int)ev->type, ev->detail);
}

struct start {
	struct sub *subs;
	int n, first;
};

static void start_one(struct sub *s)
{
	struct e2e_client_config cfg;
	char err[512] = "";
	const char *d = s->dir;
	char **argv = s->argv;

	memset(&cfg, 0, sizeof cfg);
	snprintf(s->id, sizeof s->id, "%s/identity.key", d);
	snprintf(s->auth, sizeof s->auth, "%s/authorities", d);
	snprintf(s->cred, sizeof s->cred, "%s/credential", d);
	snprintf(s->trust, sizeof s->trust, "%s/trust", d);
	cfg.conn.host = argv[1];
	cfg.conn.port = atoi(argv[2]);
	cfg.conn.cafile = *argv[3] ? argv[3] : NULL;
	cfg.identity_file = s->id;
	cfg.trust_file = s->trust;
	cfg.authorities_file = s->auth;
	cfg.credential_file = s->cred;
	cfg.fleet_dir = d;
	/* 1,000 first key requests arrive at once on a loaded 2-core machine:
	 * hold messages for their key a minute rather than 10 s (the test is
	 * about who may decrypt, not about the first message's latency). */
	cfg.hold_ms = 60000;
	cfg.on_message = on_message;
	cfg.on_event = on_event;
	cfg.ctx = s;
	cfg.err = err;
	cfg.err_len = sizeof err;
	if (e2e_client_create(&s->c, &cfg) != E2E_OK ||
	    e2e_client_subscribe(s->c, argv[4], 1) != E2E_OK ||
	    e2e_client_connect(s->c, 30000) != E2E_OK ||
	    e2e_client_wait_subscribed(s->c, 30000) != E2E_OK)
		fprintf(stderr, "fleet_subs: %s: %s\n", d, *err ? err : "cannot start");
	else
		s->ok = 1;
}

static void *start_some(void *arg)
{
	struct start *st = arg;

	for (int i = st->first; i < st->n; i += THREADS)
		start_one(&st->subs[i]);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sub *subs;
	struct start starts[THREADS];
	pthread_t tids[THREADS];
	char line[64];
	int n = argc - 5, ret = 1;

	if (argc < 6) {
		fprintf(stderr, "usage: fleet_subs HOST PORT CAFILE FILTER DIR...\n");
		return 1;
	}
	subs = calloc((size_t)n, sizeof *subs);
	if (!subs || e2e_init() != E2E_OK)
		return 1;
	for (int i = 0; i < n; i++) {
		subs[i].dir = argv[5 + i];
		subs[i].argv = argv;
	}
	/* Connecting is mostly waiting for TLS and SUBACKs: 16 at a time. */
	for (int t = 0; t < THREADS; t++) {
		starts[t].subs = subs;
		starts[t].n = n;
		starts[t].first = t;
		pthread_create(&tids[t], NULL, start_some, &starts[t]);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(tids[t], NULL);
	for (int i = 0; i < n; i++)
		if (!subs[i].ok)
			goto out;
	printf("ready %d\n", n);
	fflush(stdout);
	while (fgets(line, sizeof line, stdin)) {
		if (strncmp(line, "quit", 4) == 0)
			break;
		if (strncmp(line, "report", 6) != 0)
			continue;
		for (int i = 0; i < n; i++)
			printf("%d %lu %lu %lu %lu %lu %lu %lu %lu %lu\n", i,
				atomic_load(&subs[i].got[0]), atomic_load(&subs[i].got[1]),
				atomic_load(&subs[i].got[2]), atomic_load(&subs[i].anomalies),
				atomic_load(&subs[i].refused), atomic_load(&subs[i].keys),
				atomic_load(&subs[i].timeouts), atomic_load(&subs[i].rejected),
				atomic_load(&subs[i].events));
		printf("end\n");
		fflush(stdout);
	}
	ret = 0;
out:
	for (int i = 0; i < n; i++)
		if (subs[i].c)
			e2e_client_destroy(subs[i].c);
	free(subs);
	return ret;
}
