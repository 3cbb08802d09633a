/*
 * Publishing on the session: messages counted in flight until Paho
 * completes them, the application's window, and MQTT 5 properties.
 */
#include <errno.h>
#include <string.h>

#include "session.h"
#include "session_impl.h"

#define APP_WINDOW 4096U        /* application messages in flight before waiting */
#define APP_WAIT_MS 10000

#define APP_WAIT_MS 10000

static void pub_done(struct tally *t, int ok)
{
	struct e2e_session *s = t->s;

	pthread_mutex_lock(&s->lock);
	if (s->inflight[t->app])
		s->inflight[t->app]--;
	if (t->app && ok)
		s->app_acked++;
	else if (t->app)
		s->app_failed++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void pub_ok(void *ctx, MQTTAsync_successData *d)
{
	(void)d;
	pub_done(ctx, 1);
}

static void pub_fail(void *ctx, MQTTAsync_failureData *d)
{
	(void)d;
	pub_done(ctx, 0);
}

static void pub_ok5(void *ctx, MQTTAsync_successData5 *d)
{
	(void)d;
	pub_done(ctx, 1);
}

static void pub_fail5(void *ctx, MQTTAsync_failureData5 *d)
{
	(void)d;
	pub_done(ctx, 0);
}

/* Wait while @p idx has at least @p limit in flight; 0 if it got below. */
static int wait_below(struct e2e_session *s, int idx, uint64_t limit, int wait_ms)
{
	struct timespec ts = e2e_session_deadline((uint32_t)wait_ms);
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	while (s->inflight[idx] >= limit && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	rc = s->inflight[idx] >= limit ? -1 : 0;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

enum e2e_status e2e_session_send(struct e2e_session *s, const char *topic,
	const uint8_t *payload, size_t len, int qos, int retained, int app)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTAsync_message m = MQTTAsync_message_initializer;
	struct tally *t;
	int rc;

	if (len > 268435455U)
		return E2E_ERR_ARG;
	if (app && wait_below(s, 1, APP_WINDOW, APP_WAIT_MS) != 0)
		return E2E_ERR_IO;
	t = &s->tally[app ? 1 : 0];
	m.payload = (void *)(uintptr_t)payload;
	m.payloadlen = (int)len;
	m.qos = qos;
	m.retained = retained;
	/* Paho copies them with the message. Set before the first send only. */
	if (app && s->app_props.count)
		m.properties = s->app_props;
	/* Completion is counted in callbacks, not polled: Paho's own
	 * waitForCompletion sleeps 100 ms between checks. */
	ro.context = t;
	if (s->conn.mqtt_version == 5) {
		ro.onSuccess5 = pub_ok5;
		ro.onFailure5 = pub_fail5;
	} else {
		ro.onSuccess = pub_ok;
		ro.onFailure = pub_fail;
	}
	pthread_mutex_lock(&s->lock);
	s->inflight[app ? 1 : 0]++;
	pthread_mutex_unlock(&s->lock);
	/* Paho copies the payload before returning. */
	rc = MQTTAsync_sendMessage(e2e_session_handle_get(s), topic, &m, &ro);
	e2e_session_handle_put(s);
	if (rc != MQTTASYNC_SUCCESS) {
		pthread_mutex_lock(&s->lock);
		s->inflight[app ? 1 : 0]--;
		pthread_mutex_unlock(&s->lock);
		return E2E_ERR_IO;
	}
	return E2E_OK;
}

enum e2e_status e2e_session_set_app_props(struct e2e_session *s,
	const struct e2e_mqtt_property *props, size_t n)
{
	MQTTProperties np = MQTTProperties_initializer;
	enum e2e_status ret = E2E_ERR_ARG;

	if (n && s->conn.mqtt_version != 5)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct e2e_mqtt_property *q = &props[i];
		MQTTProperty p;

		memset(&p, 0, sizeof p);
		p.identifier = (enum MQTTPropertyCodes)q->id;
		if (q->value_len > 65535 || (q->name && strlen(q->name) > 65535))
			goto out;
		switch (q->id) {
		case MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL:
			p.value.integer4 = q->num;
			break;
		case MQTTPROPERTY_CODE_USER_PROPERTY:
			if (!q->name || !q->value)
				goto out;
			p.value.data.data = (char *)(uintptr_t)q->name;
			p.value.data.len = (int)strlen(q->name);
			p.value.value.data = (char *)(uintptr_t)q->value;
			p.value.value.len = (int)q->value_len;
			break;
		case MQTTPROPERTY_CODE_CONTENT_TYPE:
		case MQTTPROPERTY_CODE_RESPONSE_TOPIC:
		case MQTTPROPERTY_CODE_CORRELATION_DATA:
			if (!q->value)
				goto out;
			p.value.data.data = (char *)(uintptr_t)q->value;
			p.value.data.len = (int)q->value_len;
			break;
		default:
			goto out;
		}
		/* Paho copies the strings. */
		ret = E2E_ERR_NOMEM;
		if (MQTTProperties_add(&np, &p) != 0)
			goto out;
		ret = E2E_ERR_ARG;
	}
	MQTTProperties_free(&s->app_props);
	s->app_props = np;
	np = (MQTTProperties)MQTTProperties_initializer;
	ret = E2E_OK;
out:
	MQTTProperties_free(&np);
	return ret;
}

enum e2e_status e2e_session_flush(struct e2e_session *s, int wait_ms)
{
	return wait_below(s, 1, 1, wait_ms) == 0 ? E2E_OK : E2E_ERR_IO;
}

enum e2e_status e2e_session_publish(struct e2e_session *s, const char *topic,
	const uint8_t *payload, size_t len, int qos, int retained)
{
	/* May run on Paho's callback thread: never waits. */
	return e2e_session_send(s, topic, payload, len, qos, retained, 0);
}
