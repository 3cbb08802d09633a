/*
 * Connections and failover: the first connection, and after a loss the
 * reconnector thread, which tries the brokers in order, round after round
 * with a bounded exponential back-off, and says which broker was lost and
 * which one is now used.
 *
 * Paho's own automatic reconnect (and its serverURIs list) is not used: it
 * does not say which broker it reached, and the events must.
 */
#include <errno.h>
#include <MQTTReasonCodes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "session.h"
#include "session_impl.h"

void e2e_session_on_connected(void *ctx, char *cause)
{
	struct e2e_session *s = ctx;
	char why[700], now[280], lost[280] = "";

	(void)cause;
	pthread_mutex_lock(&s->lock);
	s->connected = 1;
	s->handle_used = 1;
	s->cur = s->trying >= 0 ? s->trying : 0;
	snprintf(now, sizeof now, "%s", s->names[s->cur]);
	if (s->lost_idx >= 0) {
		snprintf(lost, sizeof lost, "%s", s->names[s->lost_idx]);
		s->reconnects++;
	}
	s->lost_idx = -1;
	e2e_session_resubscribe(s);
	pthread_mutex_unlock(&s->lock);
	if (!lost[0])
		snprintf(why, sizeof why, "connected to broker %s", now);
	else if (strcmp(lost, now) == 0)
		snprintf(why, sizeof why, "broker %s lost, now %s again", lost, now);
	else
		snprintf(why, sizeof why, "broker %s lost, now %s (failover)", lost, now);
	if (s->on_state)
		s->on_state(s->ctx, 1, why, now, lost[0] ? lost : NULL);
}

void e2e_session_on_lost(void *ctx, char *cause)
{
	struct e2e_session *s = ctx;
	char why[700], name[280] = "";

	pthread_mutex_lock(&s->lock);
	s->connected = 0;
	if (s->cur >= 0) {
		s->lost_idx = s->cur;
		snprintf(name, sizeof name, "%s", s->names[s->cur]);
	}
	s->cur = -1;
	s->lost = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	snprintf(why, sizeof why, "broker %s: %s", name, cause ? cause : "connection lost");
	if (s->on_state)
		s->on_state(s->ctx, 0, why, name, NULL);
}

/* Which broker Paho reached: its own word (the URI it connected to). */
static void reached(struct e2e_session *s, const char *uri)
{
	for (int i = 0; uri && i < s->nbrokers; i++)
		if (strcmp(s->uris[i], uri) == 0)
			s->trying = i;
}

static void conn_ok(void *ctx, MQTTAsync_successData *d)
{
	struct e2e_session *s = ctx;

	pthread_mutex_lock(&s->lock);
	if (d)
		reached(s, d->alt.connect.serverURI);
	/* Connected: the reconnector must not start another round before
	 * Paho's connected callback (e2e_session_on_connected) has run. */
	s->lost = 0;
	s->connect_done = 1;
	s->connect_rc = 0;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void conn_fail(void *ctx, MQTTAsync_failureData *d)
{
	struct e2e_session *s = ctx;

	pthread_mutex_lock(&s->lock);
	s->connect_done = 1;
	s->connect_rc = d && d->code ? d->code : -1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void conn_ok5(void *ctx, MQTTAsync_successData5 *d)
{
	struct e2e_session *s = ctx;

	if (d) {
		pthread_mutex_lock(&s->lock);
		reached(s, d->alt.connect.serverURI);
		pthread_mutex_unlock(&s->lock);
	}
	conn_ok(ctx, NULL);
}

static void conn_fail5(void *ctx, MQTTAsync_failureData5 *d)
{
	struct e2e_session *s = ctx;
	MQTTAsync_failureData f = { 0 };

	pthread_mutex_lock(&s->lock);
	s->connect_reason = d && (int)d->reasonCode >= 0x80 ? (int)d->reasonCode : 0;
	pthread_mutex_unlock(&s->lock);
	f.code = d ? (d->code ? d->code : (int)d->reasonCode) : -1;
	conn_fail(ctx, &f);
}

/* A refused CONNECT in words: MQTT 3.1.1 return codes (Paho hands them over
 * as positive codes) and MQTT 5 reason codes. */
static const char *connack_text(int code, int reason)
{
	static const char *v311[] = { NULL, "unacceptable protocol version",
		"identifier rejected (client id refused or in use)", "server unavailable",
		"bad user name or password", "not authorized" };

	if (reason >= 0x80)
		return MQTTReasonCode_toString((enum MQTTReasonCodes)reason);
	if (code > 0 && code < (int)(sizeof v311 / sizeof v311[0]))
		return v311[code];
	return NULL;
}

/*
 * What mosquitto_sub/pub's -c, -x and --will-* set (e2e_conn_config's
 * session and will fields); nothing when they are zero.
 */
static void conn_extras(struct e2e_session *s, MQTTAsync_connectOptions *o)
{
	const struct e2e_conn_config *c = &s->conn;

	if (c->clean && s->conn.mqtt_version == 5)
		o->cleanstart = c->clean > 0;
	else if (c->clean)
		o->cleansession = c->clean > 0;
	if (c->session_expiry_set && s->conn.mqtt_version == 5) {
		MQTTProperty p;

		memset(&p, 0, sizeof p);
		p.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
		p.value.integer4 = c->session_expiry_s;
		MQTTProperties_free(&s->connect_props);
		if (MQTTProperties_add(&s->connect_props, &p) == 0)
			o->connectProperties = &s->connect_props;
	}
	if (c->will_topic) {
		MQTTAsync_willOptions w = MQTTAsync_willOptions_initializer;

		s->will = w;
		s->will.topicName = c->will_topic;
		s->will.qos = c->will_qos;
		s->will.retained = c->will_retain;
		/* Binary payload (may be empty): payload.data/len, not message. */
		s->will.message = NULL;
		s->will.payload.data = c->will_len ? c->will_payload : "";
		s->will.payload.len = (int)c->will_len;
		o->will = &s->will;
	}
}


/*
 * One attempt to connect to broker @p i, at most @p timeout_ms; E2E_OK or
 * E2E_ERR_IO with the reason in @p err.
 */
static enum e2e_status attempt(struct e2e_session *s, int i, uint32_t timeout_ms, char *err,
	size_t err_len)
{
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
	MQTTAsync_connectOptions co5 = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	MQTTAsync_connectOptions *o = s->conn.mqtt_version == 5 ? &co5 : &co;
	int tls = e2e_session_use_tls(&s->conn);
	char tls_err[sizeof s->tls_err];
	int rc, done, reason;

	/* The version asked for, no silent fall back to 3.1: a refusal is then
	 * reported once, with its own reason. */
	o->MQTTVersion = s->conn.mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
	o->keepAliveInterval = s->conn.keepalive_s ? s->conn.keepalive_s : 30;
	o->username = s->conn.username;
	o->password = s->conn.password;
	/* This broker only: the reconnector picks the next one itself. */
	o->serverURIs = &s->uri_ptr[i];
	o->serverURIcount = 1;
	o->connectTimeout = (int)(timeout_ms / 1000 ? timeout_ms / 1000 : 1);
	o->context = s;
	if (s->conn.mqtt_version == 5) {
		o->cleanstart = s->conn.client_id ? 0 : 1;
		o->onSuccess5 = conn_ok5;
		o->onFailure5 = conn_fail5;
	} else {
		/* A named client keeps its session so QoS1 messages survive reconnects. */
		o->cleansession = s->conn.client_id ? 0 : 1;
		o->onSuccess = conn_ok;
		o->onFailure = conn_fail;
	}
	conn_extras(s, o);
	if (tls) {
		ssl.trustStore = s->conn.cafile;
		ssl.CApath = s->conn.capath;
		ssl.keyStore = s->conn.certfile;
		ssl.privateKey = s->conn.keyfile ? s->conn.keyfile : NULL;
		ssl.sslVersion = s->conn.tls_version == 11 ? MQTT_SSL_VERSION_TLS_1_1 :
			s->conn.tls_version == 13 ? MQTT_SSL_VERSION_DEFAULT : MQTT_SSL_VERSION_TLS_1_2;
		ssl.enableServerCertAuth = s->conn.psk_hex ? 0 : 1;
		ssl.verify = s->conn.insecure || s->conn.psk_hex ? 0 : 1;
		if (s->conn.psk_hex) {
			ssl.ssl_psk_cb = e2e_session_psk_cb;
			ssl.ssl_psk_context = s;
			ssl.disableDefaultTrustStore = 1;
		}
		if (s->alpn_len) {
			ssl.protos = s->alpn;
			ssl.protos_len = s->alpn_len;
		}
		ssl.ssl_error_cb = e2e_session_ssl_error;
		ssl.ssl_error_context = s;
		o->ssl = &ssl;
	}
	pthread_mutex_lock(&s->lock);
	s->trying = i;
	s->connect_done = s->connect_rc = s->connect_reason = 0;
	s->tls_err[0] = '\0';
	pthread_mutex_unlock(&s->lock);
	/* Right after a failure Paho may still hold the last connect command
	 * and ignores a new one: ask again shortly (at most 3 s). */
	/* Only this thread (or the first connect) replaces the handle. */
	for (int k = 0; (rc = MQTTAsync_connect(s->handle, o)) == MQTTASYNC_COMMAND_IGNORED &&
	     k < 60; k++)
		nanosleep(&(struct timespec){ 0, 50000000L }, NULL);
	if (rc != MQTTASYNC_SUCCESS) {
		snprintf(err, err_len, "connect to %s failed: %s", s->uris[i], MQTTAsync_strerror(rc));
		return E2E_ERR_IO;
	}
	pthread_mutex_lock(&s->lock);
	done = e2e_session_wait_flag(s, &s->connect_done, timeout_ms);
	rc = s->connect_rc;
	reason = s->connect_reason;
	snprintf(tls_err, sizeof tls_err, "%s", s->tls_err);
	pthread_mutex_unlock(&s->lock);
	if (done && rc == 0)
		return E2E_OK;
	if (done && connack_text(rc, reason)) {
		snprintf(err, err_len, "%s refused the connection: %s (CONNACK)", s->uris[i],
			connack_text(rc, reason));
	} else {
		char why[900] = "";

		if (tls)
			e2e_session_tls_diagnose(s, s->hosts[i], s->ports[i], why, sizeof why);
		snprintf(err, err_len, "cannot connect to %s: %s", s->uris[i], why[0] ? why :
			tls_err[0] ? tls_err : !done ? "timed out" : rc == MQTTASYNC_FAILURE &&
			tls ? "TCP or TLS connection failed" :
			rc == MQTTASYNC_FAILURE ? "TCP connection failed (is the broker running?)" :
			MQTTAsync_strerror(rc));
	}
	return E2E_ERR_IO;
}

/* One round over every broker from the first on; 1 once connected. */
static int round_robin(struct e2e_session *s)
{
	char why[1200];

	for (int i = 0; i < s->nbrokers; i++) {
		int stop, connected;

		pthread_mutex_lock(&s->lock);
		stop = s->stop;
		/* A late success of an attempt that timed out here. */
		connected = s->connected;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			return 0;
		if (connected)
			return 1;
		/* A clean session's id is spent with the broker that had it. */
		e2e_session_renew(s);
		if (attempt(s, i, s->attempt_ms, why, sizeof why) == E2E_OK)
			return 1;
	}
	return 0;
}

static void *reconnector(void *arg)
{
	struct e2e_session *s = arg;
	uint32_t backoff = E2E_SESSION_BACKOFF_MIN_MS;

	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		struct timespec ts;
		int rc = 0, ok;

		if (!s->lost) {
			backoff = E2E_SESSION_BACKOFF_MIN_MS;
			pthread_cond_wait(&s->cond, &s->lock);
			continue;
		}
		pthread_mutex_unlock(&s->lock);
		ok = round_robin(s);
		pthread_mutex_lock(&s->lock);
		if (ok || s->stop)
			continue;
		/* Every broker failed: wait, longer each round, then from the first. */
		ts = e2e_session_deadline(backoff);
		while (!s->stop && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&s->cond, &s->lock, &ts);
		backoff = backoff * 2 > E2E_SESSION_BACKOFF_MAX_MS ? E2E_SESSION_BACKOFF_MAX_MS :
			backoff * 2;
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

enum e2e_status e2e_session_connect(struct e2e_session *s, uint32_t timeout_ms, char *err,
	size_t err_len)
{
	enum e2e_status ret = E2E_ERR_IO;
	sigset_t all, old;
	size_t used = 0;
	char one[1200];

	/* Reconnection attempts: long enough for TLS, short enough to move on. */
	s->attempt_ms = timeout_ms < 1000 ? 1000 : timeout_ms > 10000 ? 10000 : timeout_ms;
	if (err_len)
		err[0] = '\0';
	for (int i = 0; i < s->nbrokers && ret != E2E_OK; i++) {
		ret = attempt(s, i, timeout_ms, one, sizeof one);
		if (ret != E2E_OK && used < err_len) {
			int n = snprintf(err + used, err_len - used, "%s%s", used ? "; " : "", one);

			used = n < 0 ? err_len : used + (size_t)n;
		}
	}
	if (ret != E2E_OK)
		return ret;
	/* The reconnector takes no signal: they belong to the application's
	 * threads (e2e-sub and e2e-pub wait for theirs in the main thread). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&s->reconnector, NULL, reconnector, s) == 0)
		s->reconnector_running = 1;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!s->reconnector_running) {
		snprintf(err, err_len, "cannot start the reconnection thread");
		return E2E_ERR_NOMEM;
	}
	return E2E_OK;
}
