/* Paho C async session; see session.h. */
#include <errno.h>
#include <MQTTReasonCodes.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "session.h"

static int use_tls(const struct e2e_conn_config *c)
{
	return c->tls || c->cafile || c->capath || c->certfile || c->psk_hex || c->alpn;
}

int e2e_alpn_encode(unsigned char *out, size_t cap, unsigned int *len, const char *list)
{
	size_t o = 0;
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == 0 || n > 255 || o + 1 + n > cap)
			return -1;
		out[o++] = (unsigned char)n;
		memcpy(out + o, p, n);
		o += n;
		p += n;
		if (*p == ',')
			p++;
	}
	*len = (unsigned int)o;
	return o ? 0 : -1;
}

static unsigned int psk_cb(const char *hint, char *identity, unsigned int max_identity_len,
	unsigned char *psk, unsigned int max_psk_len, void *u)
{
	struct e2e_session *s = u;
	size_t il = strlen(s->conn.psk_identity);

	(void)hint;
	if (il + 1 > max_identity_len || s->psk_len > max_psk_len)
		return 0;
	memcpy(identity, s->conn.psk_identity, il + 1);
	memcpy(psk, s->psk, s->psk_len);
	return s->psk_len;
}

static int on_arrived(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
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
static void resubscribe(struct e2e_session *s)
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
		if (MQTTAsync_subscribe(s->handle, s->subs[i], s->sub_qos[i], &ro) ==
				MQTTASYNC_SUCCESS)
			s->subs_asked++;
	}
}

static void on_connected(void *ctx, char *cause)
{
	struct e2e_session *s = ctx;

	(void)cause;
	pthread_mutex_lock(&s->lock);
	s->connected = 1;
	resubscribe(s);
	pthread_mutex_unlock(&s->lock);
	if (s->on_state)
		s->on_state(s->ctx, 1, "connected");
}

static void on_lost(void *ctx, char *cause)
{
	struct e2e_session *s = ctx;

	pthread_mutex_lock(&s->lock);
	s->connected = 0;
	pthread_mutex_unlock(&s->lock);
	if (s->on_state)
		s->on_state(s->ctx, 0, cause ? cause : "connection lost");
}

enum e2e_status e2e_session_init(struct e2e_session *s, const struct e2e_conn_config *conn,
	e2e_session_msg_fn on_msg, e2e_session_state_fn on_state, void *ctx,
	char *err, size_t err_len)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	const char *host;
	int port, rc;
	size_t pl;

	memset(s, 0, sizeof *s);
	s->conn = *conn;
	s->on_msg = on_msg;
	s->on_state = on_state;
	s->ctx = ctx;
	host = conn->host ? conn->host : "127.0.0.1";
	port = conn->port ? conn->port : (use_tls(conn) ? 8883 : 1883);
	snprintf(s->uri, sizeof s->uri, strchr(host, ':') ? "%s://[%s]:%d" : "%s://%s:%d",
		use_tls(conn) ? "ssl" : "tcp", host, port);
	if (conn->client_id) {
		snprintf(s->client_id, sizeof s->client_id, "%s", conn->client_id);
	} else {
		uint8_t r[8];
		char hex[17];

		randombytes_buf(r, sizeof r);
		sodium_bin2hex(hex, sizeof hex, r, sizeof r);
		snprintf(s->client_id, sizeof s->client_id, "e2e-%s", hex);
	}
	if (conn->alpn && e2e_alpn_encode(s->alpn, sizeof s->alpn, &s->alpn_len, conn->alpn) != 0) {
		snprintf(err, err_len, "bad ALPN list '%s'", conn->alpn);
		return E2E_ERR_ARG;
	}
	if (conn->psk_hex) {
		if (!conn->psk_identity || sodium_hex2bin(s->psk, sizeof s->psk, conn->psk_hex,
				strlen(conn->psk_hex), NULL, &pl, NULL) != 0 || pl == 0) {
			snprintf(err, err_len, "PSK must be hex (at most 64 bytes) with a PSK identity");
			return E2E_ERR_ARG;
		}
		s->psk_len = (unsigned int)pl;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	co.MQTTVersion = conn->mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
	/* Paho's command queue limit also applies while connected: room for the
	 * application window plus the library's own messages. */
	co.maxBufferedMessages = 65535;
	s->tally[0] = (struct tally){ s, 0 };
	s->tally[1] = (struct tally){ s, 1 };
	rc = MQTTAsync_createWithOptions(&s->handle, s->uri, s->client_id,
		MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
	if (rc != MQTTASYNC_SUCCESS) {
		snprintf(err, err_len, "cannot create MQTT client for %s: %s", s->uri,
			MQTTAsync_strerror(rc));
		return E2E_ERR_ARG;
	}
	MQTTAsync_setCallbacks(s->handle, s, on_lost, on_arrived, NULL);
	MQTTAsync_setConnected(s->handle, s, on_connected);
	return E2E_OK;
}

void e2e_session_fini(struct e2e_session *s)
{
	if (!s->handle)
		return;
	if (MQTTAsync_isConnected(s->handle)) {
		MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;

		d.timeout = 1000;
		(void)MQTTAsync_disconnect(s->handle, &d);
		for (int i = 0; i < 100 && MQTTAsync_isConnected(s->handle); i++)
			nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	}
	MQTTAsync_destroy(&s->handle);
	MQTTProperties_free(&s->connect_props);
	MQTTProperties_free(&s->app_props);
	for (int i = 0; i < s->nsubs; i++)
		free(s->subs[i]);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	sodium_memzero(s->psk, sizeof s->psk);
}

static void conn_ok(void *ctx, MQTTAsync_successData *d)
{
	struct e2e_session *s = ctx;

	(void)d;
	pthread_mutex_lock(&s->lock);
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
	(void)d;
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

static int on_ssl_error(const char *str, size_t len, void *u)
{
	struct e2e_session *s = u;
	const char *r = str;

	/* "error:0A000086:SSL routines::certificate verify failed:..." -> the words. */
	for (int i = 0; i < 4 && memchr(r, ':', len - (size_t)(r - str)); i++)
		r = (const char *)memchr(r, ':', len - (size_t)(r - str)) + 1;
	if (r >= str + len)
		r = str;
	pthread_mutex_lock(&s->lock);
	snprintf(s->tls_err, sizeof s->tls_err, "%.*s", (int)(len - (size_t)(r - str)), r);
	s->tls_err[strcspn(s->tls_err, "\n")] = '\0';
	pthread_mutex_unlock(&s->lock);
	return 0;
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
 * Paho reports a failed TLS handshake only as "Failure"/"TCP/TLS connect
 * failure": shake hands once more with OpenSSL directly, with the same
 * settings, to say why (the certificate verification result, the alert).
 * Only called after a failed connect, so it costs nothing on the good path.
 */
static void tls_diagnose(const struct e2e_session *s, const char *host, int port, char *out,
	size_t cap)
{
	const struct e2e_conn_config *c = &s->conn;
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct timeval tv = { 5, 0 };
	char ps[16], trust[600];
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	int fd = -1, r;
	long v;

	out[0] = '\0';
	snprintf(ps, sizeof ps, "%d", port);
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, ps, &hints, &ai) != 0 || !ai)
		goto out;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
	    connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
		goto out;
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		goto out;
	if (c->cafile || c->capath)
		(void)SSL_CTX_load_verify_locations(ctx, c->cafile, c->capath);
	else
		(void)SSL_CTX_set_default_verify_paths(ctx);
	if (c->certfile && (SSL_CTX_use_certificate_chain_file(ctx, c->certfile) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, c->keyfile ? c->keyfile : c->certfile,
		    SSL_FILETYPE_PEM) != 1)) {
		snprintf(out, cap, "client certificate %s / key %s not usable", c->certfile,
			c->keyfile ? c->keyfile : c->certfile);
		goto out;
	}
	if (s->alpn_len)
		(void)SSL_CTX_set_alpn_protos(ctx, s->alpn, s->alpn_len);
	SSL_CTX_set_verify(ctx, c->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	ssl = SSL_new(ctx);
	if (!ssl || !SSL_set_fd(ssl, fd))
		goto out;
	SSL_set_tlsext_host_name(ssl, host);
	if (!c->insecure)
		(void)SSL_set1_host(ssl, host);
	ERR_clear_error();
	r = SSL_connect(ssl);
	v = SSL_get_verify_result(ssl);
	if (c->cafile)
		snprintf(trust, sizeof trust, "CA file %s", c->cafile);
	else if (c->capath)
		snprintf(trust, sizeof trust, "CA directory %s", c->capath);
	else
		snprintf(trust, sizeof trust, "the system trust store");
	if (r != 1 && !c->insecure && v != X509_V_OK) {
		snprintf(out, cap, "certificate verify failed: %s (name checked: '%s'; trusted CAs: "
			"%s)", X509_verify_cert_error_string(v), host, trust);
	} else if (r != 1 && ERR_peek_last_error()) {
		const char *why = ERR_reason_error_string(ERR_peek_last_error());

		snprintf(out, cap, "%s%s", why && strstr(why, "alert") ? "the broker sent TLS alert: " :
			"TLS handshake failed: ", why ? why : "unknown reason");
	}
out:
	ERR_clear_error();
	if (ssl)
		SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	if (ai)
		freeaddrinfo(ai);
}

/* Absolute CLOCK_REALTIME deadline @p ms from now, for pthread_cond_timedwait. */
static struct timespec deadline(uint32_t ms)
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

static int wait_flag(struct e2e_session *s, int *flag, uint32_t timeout_ms)
{
	struct timespec ts = deadline(timeout_ms);
	int rc = 0;

	while (!*flag && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	return *flag;
}

static int port_of(const struct e2e_session *s)
{
	return s->conn.port ? s->conn.port : (use_tls(&s->conn) ? 8883 : 1883);
}

int e2e_session_wait_subscribed(struct e2e_session *s, uint32_t timeout_ms)
{
	struct timespec ts = deadline(timeout_ms);
	int rc = 0, done;

	pthread_mutex_lock(&s->lock);
	while (!(s->connected && s->subs_answered >= s->subs_asked) && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	done = s->connected && s->subs_answered >= s->subs_asked;
	pthread_mutex_unlock(&s->lock);
	return done ? 0 : -1;
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

enum e2e_status e2e_session_connect(struct e2e_session *s, uint32_t timeout_ms, char *err,
	size_t err_len)
{
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
	MQTTAsync_connectOptions co5 = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	MQTTAsync_connectOptions *o = s->conn.mqtt_version == 5 ? &co5 : &co;
	char tls_err[sizeof s->tls_err];
	int rc, done, reason;

	/* The version asked for, no silent fall back to 3.1: a refusal is then
	 * reported once, with its own reason. */
	o->MQTTVersion = s->conn.mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
	o->keepAliveInterval = s->conn.keepalive_s ? s->conn.keepalive_s : 30;
	o->username = s->conn.username;
	o->password = s->conn.password;
	o->automaticReconnect = 1;
	o->minRetryInterval = 1;
	o->maxRetryInterval = 30;
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
	if (use_tls(&s->conn)) {
		ssl.trustStore = s->conn.cafile;
		ssl.CApath = s->conn.capath;
		ssl.keyStore = s->conn.certfile;
		ssl.privateKey = s->conn.keyfile ? s->conn.keyfile : NULL;
		ssl.sslVersion = s->conn.tls_version == 11 ? MQTT_SSL_VERSION_TLS_1_1 :
			s->conn.tls_version == 13 ? MQTT_SSL_VERSION_DEFAULT : MQTT_SSL_VERSION_TLS_1_2;
		ssl.enableServerCertAuth = s->conn.psk_hex ? 0 : 1;
		ssl.verify = s->conn.insecure || s->conn.psk_hex ? 0 : 1;
		if (s->conn.psk_hex) {
			ssl.ssl_psk_cb = psk_cb;
			ssl.ssl_psk_context = s;
			ssl.disableDefaultTrustStore = 1;
		}
		if (s->alpn_len) {
			ssl.protos = s->alpn;
			ssl.protos_len = s->alpn_len;
		}
		ssl.ssl_error_cb = on_ssl_error;
		ssl.ssl_error_context = s;
		o->ssl = &ssl;
	}
	rc = MQTTAsync_connect(s->handle, o);
	if (rc != MQTTASYNC_SUCCESS) {
		snprintf(err, err_len, "connect to %s failed: %s", s->uri, MQTTAsync_strerror(rc));
		return E2E_ERR_IO;
	}
	pthread_mutex_lock(&s->lock);
	done = wait_flag(s, &s->connect_done, timeout_ms);
	rc = s->connect_rc;
	reason = s->connect_reason;
	snprintf(tls_err, sizeof tls_err, "%s", s->tls_err);
	pthread_mutex_unlock(&s->lock);
	if (done && rc == 0)
		return E2E_OK;
	if (done && connack_text(rc, reason)) {
		snprintf(err, err_len, "%s refused the connection: %s (CONNACK)", s->uri,
			connack_text(rc, reason));
	} else {
		char why[900] = "";

		if (use_tls(&s->conn))
			tls_diagnose(s, s->conn.host ? s->conn.host : "127.0.0.1", port_of(s), why,
				sizeof why);
		snprintf(err, err_len, "cannot connect to %s: %s", s->uri, why[0] ? why :
			tls_err[0] ? tls_err : !done ? "timed out" : rc == MQTTASYNC_FAILURE &&
			use_tls(&s->conn) ? "TCP or TLS connection failed" :
			rc == MQTTASYNC_FAILURE ? "TCP connection failed (is the broker running?)" :
			MQTTAsync_strerror(rc));
	}
	return E2E_ERR_IO;
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
	done = wait_flag(w->s, &w->done, (uint32_t)wait_ms);
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
	if (wait_ms <= 0)
		return MQTTAsync_subscribe(s->handle, filter, qos, &ro) == MQTTASYNC_SUCCESS ?
			E2E_OK : E2E_ERR_IO;
	w = calloc(1, sizeof *w);
	if (!w)
		return E2E_ERR_NOMEM;
	waiter_opts(s, &ro, w);
	rc = MQTTAsync_subscribe(s->handle, filter, qos, &ro);
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

	if (MQTTAsync_subscribe(s->handle, filter, qos, &ro) != MQTTASYNC_SUCCESS)
		return E2E_ERR_IO;
	return MQTTAsync_waitForCompletion(s->handle, ro.token, (unsigned long)wait_ms) ==
	       MQTTASYNC_SUCCESS ? E2E_OK : E2E_ERR_IO;
}

enum e2e_status e2e_session_unsubscribe(struct e2e_session *s, const char *filter)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;

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
	return MQTTAsync_unsubscribe(s->handle, filter, &ro) == MQTTASYNC_SUCCESS ?
		E2E_OK : E2E_ERR_IO;
}

#define APP_WINDOW 4096U        /* application messages in flight before waiting */
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
	struct timespec ts = deadline((uint32_t)wait_ms);
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
	if (MQTTAsync_sendMessage(s->handle, topic, &m, &ro) != MQTTASYNC_SUCCESS) {
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
