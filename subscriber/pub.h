/*
 * e2e-pub: where the messages come from (-m, -f, -l, -s, -n) and how each
 * one is published and accounted for.
 */
#ifndef E2E_PUB_H
#define E2E_PUB_H

#include <stdint.h>
#include <stdio.h>

#include "e2e/client.h"

#define PUB_PROG "e2e-pub"

/* One publishing run: the fixed parameters and its tally. */
struct pub_job {
	struct e2e_publisher *p;
	const char *topic;
	int qos, retain;
	unsigned long sent;           /* attempted */
	unsigned long failed;         /* could not be sealed or handed to the MQTT client */
	int debug;                    /* -d: a line per message on stderr */
};

#define PUB_PROPS_MAX 32

/* -D publish properties (plaintext, unauthenticated: SPEC 1). */
struct pub_props {
	struct e2e_mqtt_property p[PUB_PROPS_MAX];
	size_t n;
};

/**
 * -D @p command, with the identifier and value(s) taken from argv at optind
 * (which moves past them), as mosquitto_pub reads them. 0, or -1 (printed).
 */
int pub_prop_opt(struct pub_props *pp, const char *command, int argc, char **argv);

/** Publish one message; acknowledgements are collected by pub_finish. */
void pub_one(struct pub_job *j, const void *msg, size_t len);

/**
 * --repeat: publish the message @p times times (at least once), each sealed
 * anew (its own sequence number), waiting @p delay_ms between them; for
 * QoS 1/2 each is acknowledged before the delay starts, as mosquitto_pub
 * waits for delivery. Stops early on a signal.
 */
void pub_repeat(struct pub_job *j, const void *msg, size_t len, unsigned long times,
	unsigned long delay_ms);

/** One message per line of stdin, without its newline, until EOF or a signal. */
void pub_lines(struct pub_job *j);

/**
 * Wait for the outstanding acknowledgements (QoS > 0).
 * @return how many messages were not published or not acknowledged.
 */
unsigned long pub_finish(struct pub_job *j);

/**
 * The message of -f (@p source 'f', from @p file) or -s ('s', stdin) into a
 * malloc'd @p *buf; nothing for other sources. 0, or -1 after printing why.
 */
int pub_load(int source, const char *file, uint8_t **buf, size_t *len);

#endif
