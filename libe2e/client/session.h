/*
 * One MQTT connection on Paho C async, shared by the subscriber client and
 * the publisher: TLS options (CA, client cert, PSK, ALPN, SNI), automatic
 * reconnect with back-off, resubscription, and small synchronous helpers.
 */
#ifndef E2E_SESSION_H
#define E2E_SESSION_H

#include <MQTTAsync.h>
#include <pthread.h>

#include "alpn.h"
#include "e2e/client.h"
#include "e2e/clock.h"

#define E2E_SESSION_SUBS_MAX 64

struct e2e_session;

struct tally {
	struct e2e_session *s;
	int app;
};

/* Called on Paho's thread for every message; return nothing (always consumed). */
typedef void (*e2e_session_msg_fn)(void *ctx, const char *topic, const uint8_t *payload,
	size_t len, int qos, int retained);
typedef void (*e2e_session_state_fn)(void *ctx, int connected, const char *why);

struct e2e_session {
	MQTTAsync handle;
	struct e2e_conn_config conn;
	char uri[300];
	char client_id[64];
	unsigned char alpn[256];
	unsigned int alpn_len;
	unsigned char psk[64];
	unsigned int psk_len;
	pthread_mutex_t lock;        /* guards subs and connected */
	pthread_cond_t cond;
	int connected;
	int connect_done;            /* first connect attempt finished */
	int connect_rc;
	int connect_reason;          /* MQTT 5 CONNACK reason code of a refusal, else 0 */
	char tls_err[256];           /* OpenSSL's words from Paho's ssl_error_cb */
	/* Messages handed to Paho and not yet completed: [0] the library's own
	 * (key answers, requests, summaries), [1] the application's. */
	uint64_t inflight[2];
	uint64_t app_acked, app_failed;
	struct tally tally[2];       /* completion contexts for the two kinds */
	char *subs[E2E_SESSION_SUBS_MAX];
	int sub_qos[E2E_SESSION_SUBS_MAX];
	int nsubs;
	int subs_asked, subs_answered;  /* SUBACKs of the current connection's subscriptions */
	MQTTAsync_willOptions will;
	MQTTProperties connect_props;   /* MQTT 5 CONNECT: session expiry */
	MQTTProperties app_props;       /* MQTT 5 properties of application messages */
	e2e_session_msg_fn on_msg;
	e2e_session_state_fn on_state;
	void *ctx;
};

enum e2e_status e2e_session_init(struct e2e_session *s, const struct e2e_conn_config *conn,
	e2e_session_msg_fn on_msg, e2e_session_state_fn on_state, void *ctx,
	char *err, size_t err_len);
void e2e_session_fini(struct e2e_session *s);

/* Remember a subscription (re-made on every reconnect) and subscribe now if connected. */
enum e2e_status e2e_session_subscribe(struct e2e_session *s, const char *filter, int qos,
	int wait_ms);
/* Subscribe now and wait for the SUBACK (the filter must already be
 * remembered): used before publishing anything whose answer comes there. */
enum e2e_status e2e_session_subscribe_now(struct e2e_session *s, const char *filter, int qos,
	int wait_ms);
enum e2e_status e2e_session_unsubscribe(struct e2e_session *s, const char *filter);
/* Wait until every subscription made at connection got its SUBACK; 0 if so. */
int e2e_session_wait_subscribed(struct e2e_session *s, uint32_t timeout_ms);

enum e2e_status e2e_session_connect(struct e2e_session *s, uint32_t timeout_ms, char *err,
	size_t err_len);

/*
 * Queue a message, counted in flight until Paho completes it (written for
 * QoS 0, acknowledged for QoS 1/2). With @p app, it is the application's:
 * when too many are in flight this waits (at most 10 s) instead of failing,
 * so a fast producer is slowed down rather than losing sealed messages.
 * The library's own messages (@p app = 0) never wait: they may be sent from
 * Paho's callback thread.
 */
enum e2e_status e2e_session_send(struct e2e_session *s, const char *topic,
	const uint8_t *payload, size_t len, int qos, int retained, int app);

/*
 * Wait until every application message sent so far completed (acknowledged
 * or failed), at most @p wait_ms. E2E_OK only if none is left in flight.
 */
enum e2e_status e2e_session_flush(struct e2e_session *s, int wait_ms);

/* Properties of every application message from now on (MQTT 5; n 0: none). */
enum e2e_status e2e_session_set_app_props(struct e2e_session *s,
	const struct e2e_mqtt_property *props, size_t n);

/* Publish one of the library's own messages (never blocks). */
enum e2e_status e2e_session_publish(struct e2e_session *s, const char *topic,
	const uint8_t *payload, size_t len, int qos, int retained);

#endif
