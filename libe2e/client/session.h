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
/*
 * A connection came (@p connected) or went. @p broker names the broker
 * ("host:port") connected to, or lost; on a connection after a loss,
 * @p lost names the broker that was lost (else NULL).
 */
typedef void (*e2e_session_state_fn)(void *ctx, int connected, const char *why,
	const char *broker, const char *lost);

/* Brokers of one session (e2e_conn_config.brokers, else host and port). */
#define E2E_SESSION_BROKERS_MAX 16
/* Back-off between rounds over every broker, doubling: 1 s to 30 s. */
#define E2E_SESSION_BACKOFF_MIN_MS 1000U
#define E2E_SESSION_BACKOFF_MAX_MS 30000U

struct e2e_session {
	/* Paho's client; replaced (e2e_session_renew) only under hlock's write
	 * side, so every call into Paho holds the read side
	 * (e2e_session_handle_get/put). */
	MQTTAsync handle;
	pthread_rwlock_t hlock;
	int handle_used;                   /* it connected once (a clean session's id is spent) */
	struct e2e_conn_config conn;
	char uri[300];                      /* the first broker's URI (Paho's create) */
	/* Failover (session_conn.c): every broker as a Paho URI and as
	 * "host:port" for events; the one connected to, the one being tried. */
	char uris[E2E_SESSION_BROKERS_MAX][300];
	char names[E2E_SESSION_BROKERS_MAX][280];
	char hosts[E2E_SESSION_BROKERS_MAX][256];
	int ports[E2E_SESSION_BROKERS_MAX];
	char *uri_ptr[E2E_SESSION_BROKERS_MAX];
	int nbrokers, cur, trying, lost_idx;
	int lost;                          /* the connection is down: the reconnector works */
	int stop;                          /* e2e_session_fini: the reconnector ends */
	pthread_t reconnector;
	int reconnector_running;
	uint32_t attempt_ms;               /* one connection attempt's deadline */
	uint64_t reconnects;               /* connections made after a loss */
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
	/* Paho's callbacks for every client of the session (set by
	 * e2e_session_init, so session_base.c calls back no other file). */
	MQTTAsync_connectionLost *paho_lost;
	MQTTAsync_messageArrived *paho_arrived;
	MQTTAsync_connected *paho_connected;
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

/*
 * Connect to the first broker that answers, in the order given, each
 * attempt at most @p timeout_ms. After that the session reconnects by
 * itself when the connection is lost: each round tries every broker from
 * the first on (so a broker that comes back is used again), and waits a
 * back-off between rounds (1 s doubling to 30 s).
 */
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
