/*
 * The session's subscriptions: remembered, made again at each connection
 * (on whichever broker), and counted so a caller can wait for the SUBACKs;
 * and the messages that arrive.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"
#include "session_impl.h"

int e2e_session_on_arrived(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	struct e2e_session *s = ctx;
	char *t = topic;

	/* Paho passes topic_len 0 when the topic is NUL-terminated. */
	(void)topic_len;
	s->on_msg(s->ctx, t, m->payload, (size_t)m->payloadlen, m->qos, m->retained);
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

/* A SUBACK (or a failure) of a subscription made at connection. */
static void suback(void *ctx)
{
	struct e2e_session *s = ctx;

	pthread_mutex_lock(&s->lock);
	s->subs_answered++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void sub_ok(void *ctx, MQTTAsync_successData *d) { (void)d; suback(ctx); }
static void sub_fail(void *ctx, MQTTAsync_failureData *d) { (void)d; suback(ctx); }
static void sub_ok5(void *ctx, MQTTAsync_successData5 *d) { (void)d; suback(ctx); }
static void sub_fail5(void *ctx, MQTTAsync_failureData5 *d) { (void)d; suback(ctx); }

/* Called with s->lock held. */
void e2e_session_resubscribe(struct e2e_session *s)
{
	s->subs_asked = s->subs_answered = 0;
	for (int i = 0; i < s->nsubs; i++) {
		MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;

		/* Counted, so a caller can wait for them (mosquitto_sub -E). */
		ro.context = s;
		if (s->conn.mqtt_version == 5) {
			ro.onSuccess5 = sub_ok5;
			ro.onFailure5 = sub_fail5;
		} else {
			ro.onSuccess = sub_ok;
			ro.onFailure = sub_fail;
		}
		int rc = MQTTAsync_subscribe(e2e_session_handle_get(s), s->subs[i], s->sub_qos[i],
			&ro);

		e2e_session_handle_put(s);
		if (rc == MQTTASYNC_SUCCESS)
			s->subs_asked++;
	}
}

int e2e_session_wait_subscribed(struct e2e_session *s, uint32_t timeout_ms)
{
	struct timespec ts = e2e_session_deadline(timeout_ms);
	int rc = 0, done;

	pthread_mutex_lock(&s->lock);
	while (!(s->connected && s->subs_answered >= s->subs_asked) && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	done = s->connected && s->subs_answered >= s->subs_asked;
	pthread_mutex_unlock(&s->lock);
	return done ? 0 : -1;
}

struct waiter {
	struct e2e_session *s;
	int done, rc;
};

static void op_ok(void *ctx, MQTTAsync_successData *d)
{
	struct waiter *w = ctx;

	(void)d;
	pthread_mutex_lock(&w->s->lock);
	w->done = 1;
	pthread_cond_broadcast(&w->s->cond);
	pthread_mutex_unlock(&w->s->lock);
}

static void op_fail(void *ctx, MQTTAsync_failureData *d)
{
	struct waiter *w = ctx;

	pthread_mutex_lock(&w->s->lock);
	w->rc = d && d->code ? d->code : -1;
	w->done = 1;
	pthread_cond_broadcast(&w->s->cond);
	pthread_mutex_unlock(&w->s->lock);
}

static void op_ok5(void *ctx, MQTTAsync_successData5 *d)
{
	(void)d;
	op_ok(ctx, NULL);
}

static void op_fail5(void *ctx, MQTTAsync_failureData5 *d)
{
	MQTTAsync_failureData f = { 0 };

	f.code = d ? (d->code ? d->code : (int)d->reasonCode) : -1;
	op_fail(ctx, &f);
}

/* Fill response options that signal @p w; returns whether to wait. */
static void waiter_opts(struct e2e_session *s, MQTTAsync_responseOptions *ro, struct waiter *w)
{
	w->s = s;
	w->done = w->rc = 0;
	ro->context = w;
	if (s->conn.mqtt_version == 5) {
		ro->onSuccess5 = op_ok5;
		ro->onFailure5 = op_fail5;
	} else {
		ro->onSuccess = op_ok;
		ro->onFailure = op_fail;
	}
}

/* Wait for an operation and free the heap waiter. On timeout it must stay
 * alive because Paho may still call back, so it is deliberately leaked in
 * that rare case. */
static enum e2e_status waiter_wait(struct waiter *w, int wait_ms)
{
	int done, rc;

	pthread_mutex_lock(&w->s->lock);
	done = e2e_session_wait_flag(w->s, &w->done, (uint32_t)wait_ms);
	rc = w->rc;
	pthread_mutex_unlock(&w->s->lock);
	if (!done)
		return E2E_ERR_IO;
	free(w);
	return rc ? E2E_ERR_IO : E2E_OK;
}

enum e2e_status e2e_session_subscribe(struct e2e_session *s, const char *filter, int qos,
	int wait_ms)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	struct waiter *w;
	enum e2e_status ret = E2E_ERR_FULL;
	int connected, rc;

	pthread_mutex_lock(&s->lock);
	if (s->nsubs < E2E_SESSION_SUBS_MAX) {
		s->subs[s->nsubs] = strdup(filter);
		s->sub_qos[s->nsubs] = qos;
		if (s->subs[s->nsubs]) {
			s->nsubs++;
			ret = E2E_OK;
		} else {
			ret = E2E_ERR_NOMEM;
		}
	}
	connected = s->connected;
	pthread_mutex_unlock(&s->lock);
	if (ret != E2E_OK || !connected)
		return ret;
	if (wait_ms <= 0) {
		rc = MQTTAsync_subscribe(e2e_session_handle_get(s), filter, qos, &ro);
		e2e_session_handle_put(s);
		return rc == MQTTASYNC_SUCCESS ? E2E_OK : E2E_ERR_IO;
	}
	w = calloc(1, sizeof *w);
	if (!w)
		return E2E_ERR_NOMEM;
	waiter_opts(s, &ro, w);
	rc = MQTTAsync_subscribe(e2e_session_handle_get(s), filter, qos, &ro);
	e2e_session_handle_put(s);
	if (rc != MQTTASYNC_SUCCESS) {
		free(w);
		return E2E_ERR_IO;
	}
	return waiter_wait(w, wait_ms);
}

enum e2e_status e2e_session_subscribe_now(struct e2e_session *s, const char *filter, int qos,
	int wait_ms)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;

	MQTTAsync h = e2e_session_handle_get(s);
	int rc = MQTTAsync_subscribe(h, filter, qos, &ro);

	if (rc == MQTTASYNC_SUCCESS)
		rc = MQTTAsync_waitForCompletion(h, ro.token, (unsigned long)wait_ms);
	e2e_session_handle_put(s);
	return rc == MQTTASYNC_SUCCESS ? E2E_OK : E2E_ERR_IO;
}

enum e2e_status e2e_session_unsubscribe(struct e2e_session *s, const char *filter)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	int rc;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->nsubs; i++) {
		if (strcmp(s->subs[i], filter) == 0) {
			free(s->subs[i]);
			s->subs[i] = s->subs[s->nsubs - 1];
			s->sub_qos[i] = s->sub_qos[s->nsubs - 1];
			s->nsubs--;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	rc = MQTTAsync_unsubscribe(e2e_session_handle_get(s), filter, &ro);
	e2e_session_handle_put(s);
	return rc == MQTTASYNC_SUCCESS ? E2E_OK : E2E_ERR_IO;
}

#define APP_WINDOW 4096U        /* application messages in flight before waiting */
#define APP_WAIT_MS 10000
