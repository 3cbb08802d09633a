/*
 * subbench: the receiving cost of an e2e_client application against a plain
 * Paho (MQTTAsync) subscriber on the same stream.
 *
 *   subbench e2e   --host H --port P --topic FILTER --qos Q --dir SUBSCRIBER_DIR
 *   subbench plain --host H --port P --topic FILTER --qos Q
 *
 * Both use Paho C async with the same create/connect options (MQTT 3.1.1,
 * plain TCP); e2e mode goes through libe2e-client (verify, decrypt, replay
 * window, verdict, state saved every second to DIR/rxstate). Both touch
 * every payload byte, as an application would. "READY" is printed once
 * subscribed (and, for e2e, once the keys are in); when stdin closes it
 * prints one line:
 *   SUB kind=... msgs=N delivered=N other=N cpu_us_per_msg=x per_cpu_s=y rate=z
 * CPU (getrusage, every thread of the process) and time are taken between
 * the first message and the last sample point (every 256th message), so
 * the idle time before and after the stream does not count.
 */
#include <MQTTAsync.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "e2e/client.h"

struct tally {
	_Atomic uint64_t msgs, delivered, other, sum;
	double cpu0, cpu1, t0, t1;
	uint64_t n0, n1;
};

static struct tally T;
static _Atomic int plain_state;   /* 1 connected, 2 subscribed, -1 failed */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Callbacks run one at a time (Paho's receive thread). */
static void count(const void *payload, size_t len, int delivered)
{
	uint64_t n = atomic_fetch_add(&T.msgs, 1) + 1, s = 0;
	const unsigned char *p = payload;

	for (size_t i = 0; i < len; i++)
		s += p[i];
	atomic_fetch_add(&T.sum, s);
	atomic_fetch_add(delivered ? &T.delivered : &T.other, 1);
	if (n == 1) {
		T.cpu0 = cpu_s();
		T.t0 = now_s();
		T.n0 = 1;
	} else if (n % 256 == 0) {
		T.cpu1 = cpu_s();
		T.t1 = now_s();
		T.n1 = n;
	}
}

static void on_e2e(void *ctx, const struct e2e_client_msg *m)
{
	(void)ctx;
	count(m->payload, m->payload ? m->len : 0, e2e_verdict_delivers(m->verdict));
}

static int on_plain(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	(void)ctx;
	(void)topic_len;
	count(m->payload, (size_t)m->payloadlen, 1);
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

static void sub_ok(void *ctx, MQTTAsync_successData *d)
{
	(void)ctx;
	(void)d;
	atomic_store(&plain_state, 2);
}

static void fail(void *ctx, MQTTAsync_failureData *d)
{
	(void)ctx;
	(void)d;
	atomic_store(&plain_state, -1);
}

struct plain {
	MQTTAsync h;
	const char *topic;
	int qos;
};

static void conn_ok(void *ctx, MQTTAsync_successData *d)
{
	struct plain *p = ctx;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;

	(void)d;
	ro.onSuccess = sub_ok;
	ro.onFailure = fail;
	if (MQTTAsync_subscribe(p->h, p->topic, p->qos, &ro) != MQTTASYNC_SUCCESS)
		atomic_store(&plain_state, -1);
}

static int plain_start(struct plain *p, const char *host, int port)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
	char uri[128], id[64];

	/* The same options as libe2e/client/session.c. */
	co.MQTTVersion = MQTTVERSION_3_1_1;
	co.maxBufferedMessages = 65535;
	snprintf(uri, sizeof uri, "tcp://%s:%d", host, port);
	snprintf(id, sizeof id, "subbench-plain-%d", (int)getpid());
	if (MQTTAsync_createWithOptions(&p->h, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) !=
	    MQTTASYNC_SUCCESS)
		return -1;
	MQTTAsync_setCallbacks(p->h, p, NULL, on_plain, NULL);
	o.keepAliveInterval = 30;
	o.cleansession = 1;
	o.onSuccess = conn_ok;
	o.onFailure = fail;
	o.context = p;
	if (MQTTAsync_connect(p->h, &o) != MQTTASYNC_SUCCESS)
		return -1;
	for (int i = 0; i < 1000 && atomic_load(&plain_state) != 2; i++) {
		if (atomic_load(&plain_state) < 0)
			return -1;
		usleep(10000);
	}
	return atomic_load(&plain_state) == 2 ? 0 : -1;
}

static int e2e_start(struct e2e_client **c, const char *host, int port, const char *topic,
	int qos, const char *dir)
{
	static char idf[512], trf[512], stf[512], err[256];
	struct e2e_client_config cfg = { .conn = { .host = host, .port = port },
		.identity_file = idf, .trust_file = trf, .state_file = stf, .on_message = on_e2e,
		.err = err, .err_len = sizeof err };

	snprintf(idf, sizeof idf, "%s/identity.key", dir);
	snprintf(trf, sizeof trf, "%s/trust", dir);
	snprintf(stf, sizeof stf, "%s/rxstate", dir);
	if (e2e_client_create(c, &cfg) != E2E_OK || e2e_client_subscribe(*c, topic, qos) != E2E_OK ||
	    e2e_client_connect(*c, 10000) != E2E_OK || e2e_client_wait_keys(*c, 10000) != E2E_OK) {
		fprintf(stderr, "subbench: e2e client: %s\n", err[0] ? err : "keys not received");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *topic = "bench/#", *dir = NULL;
	int port = 1883, qos = 0, e2e;
	struct e2e_client *c = NULL;
	struct plain p = { 0 };
	char line[64];
	double cpu, t;
	uint64_t n;

	if (argc < 2 || (strcmp(argv[1], "e2e") && strcmp(argv[1], "plain")))
		goto usage;
	e2e = !strcmp(argv[1], "e2e");
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--host"))
			host = argv[i + 1];
		else if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--topic"))
			topic = argv[i + 1];
		else if (!strcmp(argv[i], "--qos"))
			qos = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--dir"))
			dir = argv[i + 1];
		else
			goto usage;
	}
	if (e2e && !dir)
		goto usage;
	p.topic = topic;
	p.qos = qos;
	if (e2e ? e2e_start(&c, host, port, topic, qos, dir) : plain_start(&p, host, port)) {
		fprintf(stderr, "subbench: %s subscriber could not start\n", argv[1]);
		return 1;
	}
	printf("READY\n");
	fflush(stdout);
	while (fgets(line, sizeof line, stdin))
		;
	n = T.n1 > T.n0 ? T.n1 - T.n0 : 0;
	cpu = T.cpu1 - T.cpu0;
	t = T.t1 - T.t0;
	printf("SUB kind=%s msgs=%llu delivered=%llu other=%llu cpu_us_per_msg=%.2f per_cpu_s=%.0f"
		" rate=%.0f cpu_pct=%.1f\n", argv[1], (unsigned long long)atomic_load(&T.msgs),
		(unsigned long long)atomic_load(&T.delivered), (unsigned long long)atomic_load(&T.other),
		n ? 1e6 * cpu / (double)n : -1.0, cpu > 0 ? (double)n / cpu : -1.0,
		t > 0 ? (double)n / t : -1.0, t > 0 ? 100.0 * cpu / t : -1.0);
	fflush(stdout);
	if (e2e)
		e2e_client_destroy(c);
	else
		MQTTAsync_destroy(&p.h);
	return 0;
usage:
	fprintf(stderr, "usage: subbench e2e|plain --host H --port P --topic F --qos Q [--dir D]\n");
	return 2;
}
