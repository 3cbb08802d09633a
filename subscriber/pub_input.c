/*
 * e2e-pub input and publishing. Messages of any size (up to the MQTT limit)
 * are read into buffers that grow as needed, never fixed small ones.
 * QoS 1/2 messages are pipelined: published without waiting, and their
 * acknowledgements collected in batches, since waiting for each one in turn
 * would cost a round trip per line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cliopts.h"
#include "pub.h"

/* How long the broker may take to acknowledge what is in flight. */
#define ACK_WAIT_MS 10000U
/* Failures reported one by one; after that only the final count. */
#define REPORT_MAX 10UL
/* MQTT's largest remaining length; the envelope adds a little on top. */
#define MQTT_PAYLOAD_MAX 268435455UL

void pub_one(struct pub_job *j, const void *msg, size_t len)
{
	enum e2e_status st;

	j->sent++;
	st = e2e_publisher_publish(j->p, j->topic, msg, len, j->qos, j->retain, 0);
	if (j->debug)
		fprintf(stderr, "%s: debug: sealed and sent PUBLISH %lu (q%d, r%d, '%s', %zu bytes "
			"of plaintext): %s\n", PUB_PROG, j->sent, j->qos, j->retain, j->topic, len,
			e2e_strerror(st));
	if (st == E2E_OK)
		return;
	j->failed++;
	if (j->failed > REPORT_MAX)
		return;
	fprintf(stderr, "%s: message %lu (%zu bytes) on '%s': %s%s\n", PUB_PROG, j->sent, len,
		j->topic, st == E2E_ERR_IO ? "not sent (disconnected, or the client's queue is full)" :
		st == E2E_ERR_PERM ? "topic reserved for key distribution (the control topic and "
		"the e2e/k/ reply topics): publish elsewhere" :
		st == E2E_ERR_NOT_FOUND ? "topic is in no scope of the sender's scopes file" :
		e2e_strerror(st), j->failed == REPORT_MAX ? " (further failures only counted)" : "");
}

void pub_repeat(struct pub_job *j, const void *msg, size_t len, unsigned long times,
	unsigned long delay_ms)
{
	uint64_t failed = 0, unacked = 0;

	for (unsigned long i = 0; i < (times ? times : 1) && !cli_stopped(); i++) {
		if (i && delay_ms) {
			/* From delivery of one to the publish of the next, as mosquitto_pub. */
			/* Failures are counted by pub_finish; here only the wait matters. */
			if (j->qos > 0 && e2e_publisher_flush(j->p, ACK_WAIT_MS, NULL, &failed,
					&unacked) != E2E_OK && j->debug)
				fprintf(stderr, "%s: debug: %llu not acknowledged yet\n", PUB_PROG,
					(unsigned long long)unacked);
			for (uint64_t until = e2e_mono_ms() + delay_ms; !cli_stopped() &&
					e2e_mono_ms() < until;)
				cli_sleep_ms(delay_ms < 20 ? (unsigned)delay_ms : 20U);
		}
		pub_one(j, msg, len);
	}
}

void pub_lines(struct pub_job *j)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	/* A signal interrupts getline (no SA_RESTART): that ends the input too. */
	while (!cli_stopped() && (n = getline(&line, &cap, stdin)) != -1) {
		if (n > 0 && line[n - 1] == '\n')
			n--;
		/* The client pipelines: it waits by itself when too many are in flight. */
		pub_one(j, line, (size_t)n);
	}
	if (ferror(stdin) && !cli_stopped())
		fprintf(stderr, "%s: reading stdin: %s\n", PUB_PROG, strerror(errno));
	free(line);
}

unsigned long pub_finish(struct pub_job *j)
{
	uint64_t failed = 0, unacked = 0;

	if (j->qos > 0 && e2e_publisher_flush(j->p, ACK_WAIT_MS, NULL, &failed, &unacked) !=
			E2E_OK && unacked)
		fprintf(stderr, "%s: %llu acknowledgement(s) still missing after %u s\n", PUB_PROG,
			(unsigned long long)unacked, ACK_WAIT_MS / 1000);
	/* The client counts only our messages (not its key answers). */
	failed += unacked + j->failed;
	return failed < j->sent ? (unsigned long)failed : j->sent;
}

static int slurp(FILE *f, const char *name, uint8_t **buf, size_t *len)
{
	uint8_t *b = NULL, *nb;
	size_t cap = 0, used = 0, n;

	do {
		if (used == cap) {
			cap = cap ? cap * 2 : 65536;
			if (cap > MQTT_PAYLOAD_MAX + 1)
				cap = MQTT_PAYLOAD_MAX + 1;
			if (used == cap) {
				fprintf(stderr, "%s: %s: larger than an MQTT message can be (256 MiB)\n",
					PUB_PROG, name);
				goto fail;
			}
			nb = realloc(b, cap);
			if (!nb) {
				fprintf(stderr, "%s: %s: out of memory\n", PUB_PROG, name);
				goto fail;
			}
			b = nb;
		}
		n = fread(b + used, 1, cap - used, f);
		used += n;
	} while (n > 0);
	if (ferror(f)) {
		fprintf(stderr, "%s: reading %s: %s\n", PUB_PROG, name, strerror(errno));
		goto fail;
	}
	*buf = b;
	*len = used;
	return 0;
fail:
	free(b);
	return -1;
}

int pub_load(int source, const char *file, uint8_t **buf, size_t *len)
{
	FILE *f;
	int r;

	if (source == 's')
		return slurp(stdin, "stdin", buf, len);
	if (source != 'f')
		return 0;
	f = fopen(file, "rb");
	if (!f) {
		fprintf(stderr, "%s: cannot open %s: %s\n", PUB_PROG, file, strerror(errno));
		return -1;
	}
	r = slurp(f, file, buf, len);
	fclose(f);
	return r;
}
