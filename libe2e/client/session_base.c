/*
 * The session's small shared helpers, below every other session_*.c file
 * (it calls none of them): the Paho client (made with the callbacks the
 * session was given at e2e_session_init, read-locked per call, renewed
 * with a new id), and waiting with a deadline.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <time.h>

#include "session.h"
#include "session_impl.h"

/* A fresh random client id (clean sessions only). */
void e2e_session_random_id(struct e2e_session *s)
{
	uint8_t r[8];
	char hex[17];

	randombytes_buf(r, sizeof r);
	sodium_bin2hex(hex, sizeof hex, r, sizeof r);
	snprintf(s->client_id, sizeof s->client_id, "e2e-%s", hex);
}

/* A Paho client with the session's id and callbacks. */
int e2e_session_make_handle(struct e2e_session *s, MQTTAsync *h)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	int rc;

	co.MQTTVersion = s->conn.mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
	/* Paho's command queue limit also applies while connected: room for the
	 * application window plus the library's own messages. */
	co.maxBufferedMessages = 65535;
	rc = MQTTAsync_createWithOptions(h, s->uri, s->client_id, MQTTCLIENT_PERSISTENCE_NONE,
		NULL, &co);
	if (rc != MQTTASYNC_SUCCESS)
		return rc;
	MQTTAsync_setCallbacks(*h, s, s->paho_lost, s->paho_arrived, NULL);
	MQTTAsync_setConnected(*h, s, s->paho_connected);
	return rc;
}

MQTTAsync e2e_session_handle_get(struct e2e_session *s)
{
	pthread_rwlock_rdlock(&s->hlock);
	return s->handle;
}

void e2e_session_handle_put(struct e2e_session *s)
{
	pthread_rwlock_unlock(&s->hlock);
}

void e2e_session_renew(struct e2e_session *s)
{
	MQTTAsync fresh = NULL, old;

	if (s->conn.client_id || !s->handle_used)
		return;
	e2e_session_random_id(s);
	if (e2e_session_make_handle(s, &fresh) != MQTTASYNC_SUCCESS)
		return;   /* keep the old one: its id may still work */
	pthread_rwlock_wrlock(&s->hlock);
	old = s->handle;
	s->handle = fresh;
	s->handle_used = 0;
	pthread_rwlock_unlock(&s->hlock);
	/* No caller holds it any more: each held the read lock around its call. */
	MQTTAsync_destroy(&old);
}

struct timespec e2e_session_deadline(uint32_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

int e2e_session_wait_flag(struct e2e_session *s, int *flag, uint32_t timeout_ms)
{
	struct timespec ts = e2e_session_deadline(timeout_ms);
	int rc = 0;

	while (!*flag && !s->stop && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	return *flag;
}
