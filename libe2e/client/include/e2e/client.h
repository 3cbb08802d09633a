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

/* One broker address of a failover list (e2e_conn_config.brokers). */
struct e2e_broker {
	const char *host;            /* name, IPv4 or IPv6 address (no brackets) */
	int port;                    /* 0: e2e_conn_config.port, else 1883 (8883 with TLS) */
};

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
	/*
	 * Session and will, as mosquitto_sub/pub's -c, -x and --will-* (all zero:
	 * as before). The will is published by the broker, so it is NOT sealed:
	 * it travels and is delivered in plaintext, and e2e subscribers see it
	 * as MALFORMED.
	 */
	int clean;                   /* 0: clean unless client_id is set; 1: clean; -1: keep */
	int session_expiry_set;      /* MQTT 5: send session_expiry_s in CONNECT */
	uint32_t session_expiry_s;   /* Session Expiry Interval; 0xFFFFFFFF: never */
	const char *will_topic;      /* NULL: no will */
	const void *will_payload;
	size_t will_len;
	int will_qos, will_retain;
	int tls_version;             /* 0 or 12: TLS 1.2 only; 11: 1.1; 13: highest both support */
	/*
	 * Failover: several brokers (nbrokers > 0 replaces host and port; at
	 * most 16). Connecting tries them in this order; when the connection
	 * is lost, each round tries every one from the first on, so an earlier
	 * broker that comes back is used again, with a back-off between rounds
	 * (1 s doubling to 30 s). Every reconnection is an E2E_EV_CONNECTED
	 * event naming the broker lost and the one now used. Same TLS settings
	 * and session for all (a persistent session lives on one broker: on a
	 * cluster the new node may not have it).
	 */
	const struct e2e_broker *brokers;
	size_t nbrokers;
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
	/* Sealed under a retired key (SPEC 11.5) and delivered only because a
	 * summary of the sender lists this very envelope: it came later than
	 * the messages around it (held until that summary). */
	int confirmed;
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
	E2E_EV_UNCHECKED,            /* accepted messages no summary could judge */
	E2E_EV_ARRIVED_LATE,         /* a message reported never arrived came late after all
	                              * (matching its summary): the count is corrected */
	E2E_EV_CLOCK_SKEW,           /* a summary's signed time is off the local clock by more
	                              * than the tolerance (once, until it is back) */
	/* e2e_publisher only (the key service side): */
	E2E_EV_ROTATED,              /* new epoch announced: sender, scope, epoch set */
	E2E_EV_REQUEST_REFUSED,      /* a subscriber's key request got a signed refusal */
	E2E_EV_SWITCHED,             /* switched on schedule to a key made ahead in time, not
	                                announced (SPEC 11.5): sender, scope, epoch set */
};

struct e2e_client_event {
	enum e2e_client_event_type type;
	uint32_t sender;
	uint8_t scope;
	uint32_t epoch;
	const char *detail;          /* human-readable, never NULL */
	/* E2E_EV_CONNECTED: the broker ("host:port") now used; CONNECTION_LOST:
	 * the broker lost. NULL for other events. */
	const char *broker;
	/* E2E_EV_CONNECTED after a loss: the broker whose connection was lost
	 * (the same as broker when it came back, another one after failover). */
	const char *broker_lost;
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
	/* Summary interval to expect from a sender whose key delivery could
	 * not be installed with its profile (0 = 10 s); normally the interval
	 * comes signed in the sender's delivery (SPEC 11.2). */
	uint32_t summary_ms;
	uint32_t clock_skew_ms;      /* summary time vs local clock tolerance (0 = 30 s) */
	int deliver_duplicates;      /* also hand DUPLICATE messages to on_message */
	e2e_client_msg_fn on_message;
	e2e_client_event_fn on_event;
	void *ctx;
	/* Fleet trust (SPEC 13.6), all optional: the authorities whose sender
	 * credentials are accepted for senders not in the trust store, our own
	 * credential (sent with every key request), and the directory keeping
	 * the newest revocation list per authority. */
	const char *authorities_file;
	const char *credential_file;
	const char *fleet_dir;       /* default: none (revocation lists not persisted) */
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
	/* Replay floors the receiver had to drop for keys it still holds
	 * (e2e_rx_stats.floors_dropped): for those keys a replay of a stream
	 * forgotten long ago is no longer caught (SPEC 5.8). */
	uint64_t floors_dropped;
	uint64_t arrived_late;       /* reported never arrived, then came (E2E_EV_ARRIVED_LATE);
	                              * already subtracted from unconfirmed */
	uint64_t parts_ignored;      /* summary parts not bound to the current summary (replays) */
	uint64_t clock_skews;        /* E2E_EV_CLOCK_SKEW reports */
	/* Envelopes under a retired key (SPEC 11.5): held for a summary, then
	 * delivered (confirmed) or reported FORGED (insider: a revoked member). */
	uint64_t retired_held, retired_confirmed, retired_forged;
	/* Held under a retired key and not delivered without an accusation:
	 * nothing seen could confirm or refute it (E2E_EV_UNCHECKED). */
	uint64_t retired_unconfirmed;
	/* Keys ahead of rotation (SPEC 11.5): keys installed before they were
	 * used, switches to one without a request, and requests made only to
	 * fetch the next key ahead (also counted in key_requests); requests an
	 * announcement of an epoch we did not hold made (a forced rotation, or
	 * a scheduled one whose key we lacked). */
	uint64_t keys_ahead, ahead_switches, ahead_requests, announce_requests;
	/* Messages that never arrived, counted from the history of a later
	 * summary because their own summary was lost as well (SPEC 11.6);
	 * already in unconfirmed. */
	uint64_t hist_lost;
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

/** Unsubscribe @p filter (also one never subscribed here, as mosquitto_sub -U). */
E2E_API enum e2e_status e2e_client_unsubscribe(struct e2e_client *c, const char *filter) E2E_WARN_UNUSED;

/**
 * Wait until the broker has answered (SUBACK) every subscription made at
 * the current connection, at most @p timeout_ms (mosquitto_sub -E).
 * @return E2E_OK, or E2E_ERR_IO on time-out or when not connected.
 */
E2E_API enum e2e_status e2e_client_wait_subscribed(struct e2e_client *c,
	uint32_t timeout_ms) E2E_WARN_UNUSED;

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
 * Redeem a one-time enrollment ticket (SPEC 14.5): e2e-sub --enroll. Makes
 * the identity if @p identity_file does not exist, sends a REDEEM to the
 * authority the token names (on <control>/authority/<fp>/redeem) and, on a
 * GRANT, adds the authority's public line to @p authorities_file and writes
 * the credential to @p credential_file.
 */
struct e2e_redeem_config {
	struct e2e_conn_config conn;
	const char *control_topic;   /* default "e2e/control" */
	const char *token;           /* "e2et1-..." from e2e-keytool ticket */
	const char *identity_file;
	const char *authorities_file;
	const char *credential_file;
	uint32_t timeout_ms;         /* 0 = 30 s */
	char *err;                   /* why it failed (may be NULL) */
	size_t err_len;
};

/**
 * @return E2E_OK (installed); E2E_ERR_AUTH: refused, *@p reason says why
 *         (e2e_ticket_reason_name); E2E_ERR_IO: no valid answer in time or
 *         no broker; others: local failures. @p err has the words.
 */
E2E_API enum e2e_status e2e_client_redeem(const struct e2e_redeem_config *cfg,
	uint8_t *reason) E2E_WARN_UNUSED;

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
	uint64_t rotate_lead_ms;     /* keys ahead of rotation: see e2e_sender_config */
	/*
	 * Called on the I/O thread (no lock of the publisher held) after a round
	 * of its file work that followed a seal e2e_publisher_seal_nowait parked:
	 * a caller that must not wait (an event loop) retries its parked seals
	 * then. May be NULL. Must not call back into the publisher on that
	 * thread; hand the retry to the caller's own thread.
	 */
	void (*on_io_done)(void *ctx);
};

struct e2e_publisher_stats {
	uint64_t published, failed, announcements;
	uint64_t requests, delivered, refused, ignored;
	uint64_t refused_by[8];      /* refusals per enum e2e_refusal */
	uint64_t summaries;          /* summary messages published */
	/* Seals that found no durable counter reservation ready (a key's first
	 * use before the I/O thread prepared it, a key used up before the I/O
	 * thread rotated it ahead) and waited for the I/O thread (before
	 * e2e_publisher_connect: did the file work on the caller's thread):
	 * 0 in steady state. */
	uint64_t seals_waited;
	/* Seals e2e_publisher_seal_nowait answered E2E_ERR_RESERVE or
	 * E2E_ERR_EXHAUSTED at once (the caller parks them and retries after
	 * on_io_done): 0 in steady state too. */
	uint64_t seals_parked;
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

/** e2e_sender_seal_will behind the publisher's lock: seal a CONNECT's will. */
E2E_API enum e2e_status e2e_publisher_seal_will(struct e2e_publisher *p, uint8_t *out,
	size_t cap, size_t *out_len, const char *topic, size_t topic_len, const uint8_t *pt,
	size_t pt_len) E2E_WARN_UNUSED;

/**
 * e2e_publisher_seal (@p will 0) or e2e_publisher_seal_will (@p will 1) for a
 * caller that must never wait on the disk (e2e-proxy's event loop): when no
 * durable counter reservation is ready it wakes the I/O thread and returns
 * at once, and the caller retries the same seal after on_io_done. Before
 * e2e_publisher_connect (no I/O thread yet) it does the file work inline,
 * as e2e_publisher_seal does.
 * @return E2E_OK; E2E_ERR_RESERVE or E2E_ERR_EXHAUSTED: parked, nothing
 *         sealed, retry later; others as e2e_publisher_seal.
 */
E2E_API enum e2e_status e2e_publisher_seal_nowait(struct e2e_publisher *p, int will,
	uint8_t *out, size_t cap, size_t *out_len, const char *topic, size_t topic_len,
	const uint8_t *pt, size_t pt_len) E2E_WARN_UNUSED;

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

/*
 * An MQTT 5 PUBLISH property (e2e-pub -D). Properties are NOT sealed: they
 * travel in plaintext and unauthenticated (SPEC 1), and the broker or
 * anyone on the way may read, change or drop them.
 */
struct e2e_mqtt_property {
	int id;                      /* 2 message expiry, 3 content type, 8 response topic,
	                                9 correlation data, 38 user property */
	uint32_t num;                /* message expiry interval */
	const char *name;            /* user property: its name */
	const char *value;           /* the string or binary value */
	size_t value_len;
};

/**
 * Attach @p n properties (copied) to every message e2e_publisher_publish
 * sends from now on; @p n 0 removes them. MQTT 5 connections only.
 * @return E2E_OK, E2E_ERR_ARG (unsupported id, MQTT 3.1.1, too long),
 *         E2E_ERR_NOMEM.
 */
E2E_API enum e2e_status e2e_publisher_set_properties(struct e2e_publisher *p,
	const struct e2e_mqtt_property *props, size_t n) E2E_WARN_UNUSED;

E2E_API void e2e_publisher_stats(struct e2e_publisher *p, struct e2e_publisher_stats *st);

/** New grace, rotation and summary settings (as in the config; 0 = default). */
E2E_API void e2e_publisher_set_policy(struct e2e_publisher *p, uint64_t grace_ms,
	uint64_t max_age_ms, uint64_t max_messages, uint32_t summary_ms);

/** New rotation lead time (rotate_lead_ms; 0 = half the age). */
E2E_API void e2e_publisher_set_lead(struct e2e_publisher *p, uint64_t lead_ms);

/** Disconnect and free. */
E2E_API void e2e_publisher_destroy(struct e2e_publisher *p);

#ifdef __cplusplus
}
#endif

#endif
