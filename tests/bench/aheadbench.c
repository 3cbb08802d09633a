/*
 * aheadbench: many real libe2e-client subscriber sessions across scheduled
 * key rotations (issue 17.4, SPEC 11.5: keys ahead of rotation).
 *
 *   aheadbench setup --sender-dir SDIR --work DIR --n N
 *     N subscriber identities DIR/sNNNN/identity.key, each trusting the
 *     sender of SDIR (DIR/sNNNN/trust), and N lines appended to
 *     SDIR/enrolled (scope "telemetry"). Run before the sender starts.
 *
 *   aheadbench run --port P --work DIR --n N --topic FILTER --ready FILE --out FILE
 *     N e2e_client sessions in this process, each its own MQTT connection
 *     (plain TCP to 127.0.0.1:P), identity, key fetch, key ring, replay
 *     window, hold queue and ticker: exactly what e2e-sub runs, N times.
 *     Connects them in batches, waits for every first key delivery, then
 *     writes FILE (--ready) and records every delivery: payload "<seq>
 *     <send-unix-ns>" gives the latency. Stdin: the number of messages
 *     published; at EOF it waits until every session has them all (at
 *     most 300 s), then writes --out:
 *     "<seq> <epoch> <latency_us>" per delivery, and prints one line
 *       AHEAD n=... delivered=... held=... key_requests=... ahead_requests=...
 *             announce_requests=... keys_ahead=... switches=... other=...
 *     summed over the sessions, counted from the moment all are keyed
 *     (key_requests: after the first fetch;
 *     the requests a rotation causes are those of held messages, none when
 *     held=0, and of announcements of an epoch not held: announce_requests).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "e2e/client.h"
#include "e2e/identity.h"

#define MAX_SAMPLES (8U * 1024U * 1024U)

struct sample {
	uint32_t seq, epoch, lat_us;
};

static struct sample *samples;
static _Atomic uint32_t nsamples;
static _Atomic uint64_t other;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void on_msg(void *ctx, const struct e2e_client_msg *m)
{
	char buf[64];
	unsigned long seq;
	unsigned long long sent;
	uint64_t t = now_ns();
	uint32_t i;

	(void)ctx;
	if (!e2e_verdict_delivers(m->verdict) || m->len >= sizeof buf) {
		atomic_fetch_add(&other, 1);
		return;
	}
	memcpy(buf, m->payload, m->len);
	buf[m->len] = '\0';
	if (sscanf(buf, "%lu %llu", &seq, &sent) != 2)
		return;
	i = atomic_fetch_add(&nsamples, 1);
	if (i < MAX_SAMPLES)
		samples[i] = (struct sample){ (uint32_t)seq, m->epoch,
			(uint32_t)(t > sent ? (t - sent) / 1000U : 0) };
}

static int write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	int ret = -1;

	if (!f)
		return -1;
	if (fputs(text, f) >= 0)
		ret = 0;
	if (fclose(f) != 0)
		ret = -1;
	return ret == 0 ? chmod(path, mode) : -1;
}

static int setup(const char *sdir, const char *work, unsigned n)
{
	char path[4096], line[256], spub[256];
	struct e2e_identity sender, sub;
	FILE *en;

	snprintf(path, sizeof path, "%s/identity.key", sdir);
	if (e2e_identity_load(&sender, path) != E2E_OK ||
	    e2e_public_format(spub, sizeof spub, &sender.pub, NULL) != E2E_OK)
		return -1;
	e2e_identity_destroy(&sender);
	snprintf(path, sizeof path, "%s/enrolled", sdir);
	en = fopen(path, "a");
	if (!en)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		char text[300];

		snprintf(path, sizeof path, "%s/s%04u", work, i);
		if (mkdir(path, 0700) != 0 || e2e_identity_generate(&sub) != E2E_OK)
			return -1;
		snprintf(path, sizeof path, "%s/s%04u/identity.key", work, i);
		if (e2e_identity_save(&sub, path, 0) != E2E_OK ||
		    e2e_public_format(line, sizeof line, &sub.pub, NULL) != E2E_OK)
			return -1;
		e2e_identity_destroy(&sub);
		fprintf(en, "s%04u telemetry %s\n", i, line);
		snprintf(path, sizeof path, "%s/s%04u/trust", work, i);
		snprintf(text, sizeof text, "edge %s\n", spub);
		if (write_file(path, text, 0600) != 0)
			return -1;
	}
	return fclose(en) == 0 ? 0 : -1;
}

struct sess {
	struct e2e_client *c;
	char idf[4096], trf[4096], err[256];
	int failed;
};

#define CONNECTORS 50U

struct connector {
	struct sess *s;
	unsigned from, n, step;
};

/* Paho's connect and subscribe waits poll: connect in parallel. */
static void *connect_some(void *arg)
{
	struct connector *k = arg;

	for (unsigned i = k->from; i < k->n; i += k->step)
		k->s[i].failed = e2e_client_connect(k->s[i].c, 60000) != E2E_OK;
	return NULL;
}

static int run(int port, const char *work, unsigned n, const char *topic, const char *ready,
	const char *out)
{
	struct sess *s = calloc(n, sizeof *s);
	struct e2e_client_stats st;
	uint64_t held = 0, req = 0, areq = 0, ahead = 0, sw = 0, delivered = 0, want = 0, ann = 0,
		retired = 0, held0 = 0, ann0 = 0, req0 = 0;
	char line[64];
	FILE *f;

	samples = malloc(MAX_SAMPLES * sizeof *samples);
	if (!s || !samples)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		struct e2e_client_config cfg = { .conn = { .host = "127.0.0.1", .port = port,
			.keepalive_s = 60 }, .identity_file = s[i].idf, .trust_file = s[i].trf,
			.on_message = on_msg, .err = s[i].err, .err_len = sizeof s[i].err };

		snprintf(s[i].idf, sizeof s[i].idf, "%s/s%04u/identity.key", work, i);
		snprintf(s[i].trf, sizeof s[i].trf, "%s/s%04u/trust", work, i);
		if (e2e_client_create(&s[i].c, &cfg) != E2E_OK ||
		    e2e_client_subscribe(s[i].c, topic, 1) != E2E_OK) {
			fprintf(stderr, "aheadbench: session %u: %s\n", i, s[i].err);
			return -1;
		}
	}
	{
		pthread_t th[CONNECTORS];
		struct connector k[CONNECTORS];

		for (unsigned t = 0; t < CONNECTORS; t++) {
			k[t] = (struct connector){ s, t, n, CONNECTORS };
			if (pthread_create(&th[t], NULL, connect_some, &k[t]) != 0)
				return -1;
		}
		for (unsigned t = 0; t < CONNECTORS; t++)
			pthread_join(th[t], NULL);
	}
	fprintf(stderr, "aheadbench: %u sessions connected\n", n);
	for (unsigned i = 0; i < n; i++) {
		if (s[i].failed) {
			fprintf(stderr, "aheadbench: session %u: %s\n", i, s[i].err);
			return -1;
		}
	}
	for (unsigned i = 0; i < n; i++)
		if (e2e_client_wait_keys(s[i].c, 30000) != E2E_OK)
			fprintf(stderr, "aheadbench: session %u: no keys\n", i);
	/* What keying cost is not the rotations': sessions still waiting
	 * for their first answer when a rotation was announced asked again. */
	for (unsigned i = 0; i < n; i++) {
		e2e_client_stats(s[i].c, &st);
		req += st.key_requests;
		held0 += st.held;
		ann0 += st.announce_requests;
		req0 += st.key_requests > 0 ? st.key_requests - 1 : 0;
	}
	fprintf(stderr, "aheadbench: %u sessions keyed (%llu requests)\n", n,
		(unsigned long long)req);
	if (write_file(ready, "ready\n", 0644) != 0)
		return -1;
	/* Stdin: the number of messages published, then EOF. Wait (at most
	 * 300 s) until every session has them all: under load the fan-out of
	 * N sessions lags the publisher. */
	while (fgets(line, sizeof line, stdin))
		want = strtoull(line, NULL, 10) * n;
	for (int w = 0; w < 3000 && atomic_load(&nsamples) + atomic_load(&other) < want; w++)
		usleep(100000);
	req = 0;
	for (unsigned i = 0; i < n; i++) {
		e2e_client_stats(s[i].c, &st);
		held += st.held;
		req += st.key_requests > 0 ? st.key_requests - 1 : 0;
		areq += st.ahead_requests;
		ann += st.announce_requests;
		retired += st.retired_held;
		ahead += st.keys_ahead;
		sw += st.ahead_switches;
		delivered += st.verdicts[E2E_V_OK] + st.verdicts[E2E_V_GAP] + st.verdicts[E2E_V_LATE];
	}
	f = fopen(out, "w");
	if (!f)
		return -1;
	for (uint32_t i = 0; i < atomic_load(&nsamples) && i < MAX_SAMPLES; i++)
		fprintf(f, "%u %u %u\n", samples[i].seq, samples[i].epoch, samples[i].lat_us);
	fclose(f);
	printf("AHEAD n=%u delivered=%llu held=%llu key_requests=%llu ahead_requests=%llu "
		"announce_requests=%llu keys_ahead=%llu switches=%llu retired_held=%llu other=%llu\n", n,
		(unsigned long long)delivered, (unsigned long long)(held - held0),
		(unsigned long long)(req - req0), (unsigned long long)areq,
		(unsigned long long)(ann - ann0),
		(unsigned long long)ahead, (unsigned long long)sw, (unsigned long long)retired,
		(unsigned long long)atomic_load(&other));
	fflush(stdout);
	/* No e2e_client_destroy: a thousand clean disconnects take minutes
	 * and measure nothing; the process ends, the broker sees the sockets
	 * close. */
	_exit(0);
}

int main(int argc, char **argv)
{
	const char *sdir = NULL, *work = NULL, *topic = "sensors/#", *ready = NULL, *out = NULL;
	unsigned n = 0;
	int port = 1883;

	if (argc < 2)
		goto usage;
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--sender-dir"))
			sdir = argv[i + 1];
		else if (!strcmp(argv[i], "--work"))
			work = argv[i + 1];
		else if (!strcmp(argv[i], "--n"))
			n = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--topic"))
			topic = argv[i + 1];
		else if (!strcmp(argv[i], "--ready"))
			ready = argv[i + 1];
		else if (!strcmp(argv[i], "--out"))
			out = argv[i + 1];
		else
			goto usage;
	}
	if (!strcmp(argv[1], "setup") && sdir && work && n)
		return setup(sdir, work, n) == 0 ? 0 : 1;
	if (!strcmp(argv[1], "run") && work && n && ready && out)
		return run(port, work, n, topic, ready, out) == 0 ? 0 : 1;
usage:
	fprintf(stderr, "usage: aheadbench setup --sender-dir SDIR --work DIR --n N\n"
		"       aheadbench run --port P --work DIR --n N --topic FILTER --ready FILE "
		"--out FILE\n");
	return 1;
}
