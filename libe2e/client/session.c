/*
 * Paho C async session; see session.h. This file: the session's life
 * (create, the broker list, destroy). Connections and failover are in
 * session_conn.c, subscriptions in session_sub.c, publishing in
 * session_send.c, TLS in session_tls.c, the Paho client and waiting in
 * session_base.c (which the others use and which uses none of them).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "session.h"
#include "session_impl.h"

/* Every broker as a Paho URI and as "host:port"; the list or host and port. */
static enum e2e_status brokers(struct e2e_session *s, const struct e2e_conn_config *conn,
	char *err, size_t err_len)
{
	const struct e2e_broker one = { conn->host ? conn->host : "127.0.0.1", conn->port };
	const struct e2e_broker *b = conn->nbrokers ? conn->brokers : &one;
	size_t n = conn->nbrokers ? conn->nbrokers : 1;
	int tls = e2e_session_use_tls(conn);

	if (n > E2E_SESSION_BROKERS_MAX || !b) {
		snprintf(err, err_len, "at most %d brokers", E2E_SESSION_BROKERS_MAX);
		return E2E_ERR_ARG;
	}
	for (size_t i = 0; i < n; i++) {
		const char *h = b[i].host ? b[i].host : "127.0.0.1";
		int port = b[i].port ? b[i].port : conn->port ? conn->port : tls ? 8883 : 1883;
		int v6 = strchr(h, ':') != NULL;

		if (!*h || strlen(h) >= sizeof s->hosts[i] || port < 1 || port > 65535) {
			snprintf(err, err_len, "bad broker address '%s' port %d", h, port);
			return E2E_ERR_ARG;
		}
		snprintf(s->hosts[i], sizeof s->hosts[i], "%s", h);
		s->ports[i] = port;
		snprintf(s->uris[i], sizeof s->uris[i], v6 ? "%s://[%s]:%d" : "%s://%s:%d",
			tls ? "ssl" : "tcp", h, port);
		snprintf(s->names[i], sizeof s->names[i], v6 ? "[%s]:%d" : "%s:%d", h, port);
		s->uri_ptr[i] = s->uris[i];
	}
	s->nbrokers = (int)n;
	s->cur = s->trying = s->lost_idx = -1;
	/* The list is copied: the caller's array need not outlive this call. */
	s->conn.brokers = NULL;
	s->conn.nbrokers = 0;
	return E2E_OK;
}

enum e2e_status e2e_session_init(struct e2e_session *s, const struct e2e_conn_config *conn,
	e2e_session_msg_fn on_msg, e2e_session_state_fn on_state, void *ctx,
	char *err, size_t err_len)
{
	enum e2e_status ret;
	int rc;
	size_t pl;

	memset(s, 0, sizeof *s);
	s->conn = *conn;
	s->on_msg = on_msg;
	s->on_state = on_state;
	s->ctx = ctx;
	/* Paho's callbacks, set on every client (session_base.c makes them). */
	s->paho_lost = e2e_session_on_lost;
	s->paho_arrived = e2e_session_on_arrived;
	s->paho_connected = e2e_session_on_connected;
	ret = brokers(s, conn, err, err_len);
	if (ret != E2E_OK)
		return ret;
	snprintf(s->uri, sizeof s->uri, "%s", s->uris[0]);
	if (conn->client_id)
		snprintf(s->client_id, sizeof s->client_id, "%s", conn->client_id);
	else
		e2e_session_random_id(s);
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
	pthread_rwlock_init(&s->hlock, NULL);
	s->tally[0] = (struct tally){ s, 0 };
	s->tally[1] = (struct tally){ s, 1 };
	rc = e2e_session_make_handle(s, &s->handle);
	if (rc != MQTTASYNC_SUCCESS) {
		snprintf(err, err_len, "cannot create MQTT client for %s: %s", s->uri,
			MQTTAsync_strerror(rc));
		return E2E_ERR_ARG;
	}
	return E2E_OK;
}

void e2e_session_fini(struct e2e_session *s)
{
	if (!s->handle)
		return;
	/* The reconnector first: it may be inside a connection attempt. */
	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (s->reconnector_running)
		pthread_join(s->reconnector, NULL);
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
	pthread_rwlock_destroy(&s->hlock);
	sodium_memzero(s->psk, sizeof s->psk);
}

