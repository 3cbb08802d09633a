/*
 * libe2e-client: MQTT sessions on Eclipse Paho C (async) for subscriber and
 * publisher applications. Links libe2e (the pure core) and paho-mqtt3as.
 *
 * Threading: Paho delivers messages on its own thread; callbacks run there,
 * one at a time, with the client's lock held. Do not call e2e_client_* or
 * e2e_publisher_* from inside a callback (except the *_stats functions).
 */
#ifndef E2E_CLIENT_H
#define E2E_CLIENT_H

#ifdef __cplusplus
extern "C" {
#endif

#include "e2e/common.h"
#include "e2e/window.h"

/* Connection parameters shared by subscriber and publisher. */
struct e2e_conn_config {
	const char *host;            /* default 127.0.0.1 */
	int port;                    /* default 1883, or 8883 with TLS */
	const char *client_id;       /* NULL: random, clean session */
	const char *username, *password;
	int mqtt_version;            /* 4 (3.1.1, default) or 5 */
	int keepalive_s;             /* default 30 */
	/* TLS: enabled when tls != 0 or any TLS option is set */
	int tls;
	const char *cafile, *capath;
	const char *certfile, *keyfile;
	const char *psk_hex, *psk_identity;
	const char *alpn;            /* comma-separated, e.g. "x-amzn-mqtt-ca" */
	int insecure;                /* skip certificate hostname verification */
};

/* What the application receives for each message, and for anomalies. */
struct e2e_client_msg {
	const char *topic;
	const uint8_t *payload;      /* plaintext; NULL for anomalies without one */
	size_t len;
	enum e2e_verdict verdict;
	uint64_t gap;                /* for E2E_V_GAP */
	uint32_t sender;
	const char *sender_name;     /* from the trust store, or NULL */
	uint8_t scope;
	uint32_t epoch;
	uint32_t seq;
	int retained;
	int qos;
};

enum e2e_client_event_type {
	E2E_EV_CONNECTED = 1,
	E2E_EV_CONNECTION_LOST,
	E2E_EV_KEY_RECEIVED,         /* keys for sender/scope/epoch installed */
	E2E_EV_KEY_REFUSED,          /* signed refusal: detail names the reason */
	E2E_EV_KEY_TIMEOUT,          /* no answer to a key request yet; retrying */
	E2E_EV_ANOMALY,              /* forged, replayed, too old, malformed... */
	E2E_EV_CONTROL_REJECTED,     /* control message failed verification */
	E2E_EV_ERROR,                /* local failure (state file, publish) */
	E2E_EV_STALLED,              /* no summary from a sender in time: withheld? */
	E2E_EV_INSIDER_FORGERY,      /* a summary contradicts accepted messages */
	E2E_EV_UNCONFIRMED,          /* a summary lists messages that never arrived */
	E2E_EV_UNSUMMARIZED,         /* an accepted message no summary covered */
	E2E_EV_UNCHECKED,            /* accepted messages whose summaries never came */
};

struct e2e_client_event {
	enum e2e_client_event_type type;
	uint32_t sender;
	uint8_t scope;
	uint32_t epoch;
	const char *detail;          /* human-readable, never NULL */
};

typedef void (*e2e_client_msg_fn)(void *ctx, const struct e2e_client_msg *m);
typedef void (*e2e_client_event_fn)(void *ctx, const struct e2e_client_event *ev);

struct e2e_client;

struct e2e_client_config {
	struct e2e_conn_config conn;
	const char *identity_file;   /* subscriber identity (0600) */
	const char *trust_file;      /* accepted senders */
	const char *state_file;      /* replay windows; NULL = not persisted */
	const char *control_topic;   /* default "e2e/control" */
	uint32_t window;             /* replay window (0 = default 1024) */
	uint32_t max_streams;        /* 0 = default */
	uint32_t hold_max;           /* messages held while a key is fetched (0 = 10000) */
	uint32_t hold_ms;            /* then reported UNKNOWN_KEY (0 = 10000) */
	uint32_t save_ms;            /* persist windows at most this often (0 = 1000) */
	int deliver_duplicates;      /* also hand DUPLICATE messages to on_message */
	e2e_client_msg_fn on_message;
	e2e_client_event_fn on_event;
	void *ctx;
	/* Error text of create and connect (may be NULL); used only until
	 * e2e_client_connect returns. Later errors arrive as events. */
	char *err;
	size_t err_len;
};

struct e2e_client_stats {
	uint64_t verdicts[E2E_V_FORGOTTEN + 1];
	uint64_t gap_total, pending, lost;
	uint64_t held, held_now, key_requests, keys_received, refusals, control_rejected;
	uint64_t summaries, summary_verified, insider_forgeries, unconfirmed, unsummarized, stalls;
	uint64_t unchecked;          /* accepted messages no summary could judge (E2E_EV_UNCHECKED) */
};

/** Load identity, trust store and state; does not connect yet. */
E2E_API enum e2e_status e2e_client_create(struct e2e_client **out,
	const struct e2e_client_config *cfg) E2E_WARN_UNUSED;

/**
 * Subscribe (before or after connecting; kept across reconnects). A
 * "$share/<group>/<filter>" subscription sees only part of each stream: its
 * messages never get GAP (replays are still caught) and summaries skip it.
 */
E2E_API enum e2e_status e2e_client_subscribe(struct e2e_client *c, const char *filter,
	int qos) E2E_WARN_UNUSED;

/**
 * Connect, subscribe, request keys from every trusted sender. Blocks up to
 * @p timeout_ms for the first connection. Reconnects automatically after.
 */
E2E_API enum e2e_status e2e_client_connect(struct e2e_client *c, uint32_t timeout_ms) E2E_WARN_UNUSED;

/**
 * Wait until every key request has been answered (or @p timeout_ms passed).
 * E2E_OK when no request is outstanding.
 */
E2E_API enum e2e_status e2e_client_wait_keys(struct e2e_client *c, uint32_t timeout_ms) E2E_WARN_UNUSED;

/** Statistics (safe from any thread, including callbacks). */
E2E_API void e2e_client_stats(struct e2e_client *c, struct e2e_client_stats *st);

/** Save state, disconnect, free. Held messages are reported UNKNOWN_KEY. */
E2E_API void e2e_client_destroy(struct e2e_client *c);

/*
 * Publisher: for native apps that encrypt themselves. It is a sender (see
 * e2e/sender.h) with its state directory, and runs the key service on its
 * own connection: it answers key requests on the control topic and
 * announces rotations.
 */
struct e2e_publisher;

struct e2e_publisher_config {
	struct e2e_conn_config conn;
	const char *dir;             /* sender state directory (identity.key, scopes, ...) */
	const char *control_topic;   /* default "e2e/control" */
	uint64_t grace_ms;           /* see e2e_sender_config */
	uint64_t max_age_ms;
	uint64_t max_messages;
	uint32_t summary_ms;         /* signed summary interval (0 = 10 s) */
	int no_summaries;
	e2e_client_event_fn on_event;
	void *ctx;
	/* Error text of create and connect (may be NULL); used only until
	 * e2e_publisher_connect returns. Later errors arrive as events. */
	char *err;
	size_t err_len;
};

struct e2e_publisher_stats {
	uint64_t published, failed, announcements;
	uint64_t requests, delivered, refused, ignored;
};

E2E_API enum e2e_status e2e_publisher_create(struct e2e_publisher **out,
	const struct e2e_publisher_config *cfg) E2E_WARN_UNUSED;

/** Connect and start serving key requests; blocks up to @p timeout_ms. */
E2E_API enum e2e_status e2e_publisher_connect(struct e2e_publisher *p,
	uint32_t timeout_ms) E2E_WARN_UNUSED;

/**
 * Encrypt and publish. With @p wait_ms > 0 and QoS > 0, wait for the
 * broker's acknowledgement (E2E_ERR_IO if it did not come in time).
 */
E2E_API enum e2e_status e2e_publisher_publish(struct e2e_publisher *p, const char *topic,
	const void *payload, size_t len, int qos, int retained, int wait_ms) E2E_WARN_UNUSED;

/**
 * Seal without publishing (for e2e-proxy, which writes the envelope into its
 * own upstream connection). Thread-safe against the key service thread.
 */
E2E_API enum e2e_status e2e_publisher_seal(struct e2e_publisher *p, uint8_t *out, size_t cap,
	size_t *out_len, const char *topic, size_t topic_len, const uint8_t *pt,
	size_t pt_len) E2E_WARN_UNUSED;

/**
 * Wait until every QoS 1/2 message published so far is acknowledged by the
 * broker (or failed), at most @p timeout_ms. Totals since creation go to
 * the optional counters. E2E_OK only if none is in flight and none failed.
 * Publishing with wait_ms = 0 and flushing at the end pipelines the
 * acknowledgements (thousands of messages per second at QoS 1).
 */
E2E_API enum e2e_status e2e_publisher_flush(struct e2e_publisher *p, uint32_t timeout_ms,
	uint64_t *acked, uint64_t *failed, uint64_t *unacked) E2E_WARN_UNUSED;

/** Rotate the key of the scope that @p topic belongs to, and announce it. */
E2E_API enum e2e_status e2e_publisher_rotate(struct e2e_publisher *p, const char *topic) E2E_WARN_UNUSED;

E2E_API void e2e_publisher_stats(struct e2e_publisher *p, struct e2e_publisher_stats *st);

/** Disconnect and free. */
E2E_API void e2e_publisher_destroy(struct e2e_publisher *p);

#ifdef __cplusplus
}
#endif

#endif
