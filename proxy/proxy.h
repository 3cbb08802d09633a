/* e2e-proxy internals shared by the event loop, connections and relay. */
#ifndef E2E_PROXY_H
#define E2E_PROXY_H

#include <netdb.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "e2e/client.h"
#include "e2e/clock.h"
#include "mqtt_codec.h"
#include "tls.h"
#include "transport.h"
#include "upstream.h"


enum conn_state {
	ST_CONNECT = 0,   /* waiting for the publisher's CONNECT */
	ST_UP_TCP,        /* upstream TCP connect in progress */
	ST_UP_TLS,        /* upstream TLS handshake */
	ST_RELAY,
};

struct alias {
	uint16_t id;
	uint16_t len;
	char *topic;
};

#define ALIAS_MAX 64U

struct conn {
	struct proxy *px;
	struct conn *prev, *next;
	/* The publisher side (plain, or TLS with listen-tls) and the broker
	 * side (plain or TLS; fd -1 until the upstream connect starts). */
	struct px_transport down, up;
	int up_idx;               /* px->ups broker of the upstream */
	int up_tries;             /* brokers tried for this connection */
	enum conn_state st;
	struct buf din, dout, uout, uin;
	uint8_t *connect_pkt;     /* rewritten CONNECT, sent when the upstream is up */
	size_t connect_len;
	uint8_t version;
	uint16_t keepalive;
	char client_id[128];
	char peer[64];
	struct alias aliases[ALIAS_MAX];
	uint32_t naliases;
	uint32_t inflight;        /* QoS>0 publishes not yet acknowledged by the broker */
	/*
	 * QoS 2 packet ids, two bitmaps of 65536 bits, allocated at the first
	 * QoS 2 PUBLISH only: [0] sent to the broker, no PUBREC/PUBACK yet;
	 * [1] the broker answered PUBACK (it downgrades QoS 2: RabbitMQ 3.x),
	 * we sent the publisher a PUBREC and owe it the PUBCOMP.
	 */
	uint8_t *q2;
	int q2_noted;             /* the downgrade was logged for this connection */
	int connack_seen;         /* the broker answered the CONNECT */
	size_t din_need;          /* size of the incomplete packet at din's head, 0 unknown */
	uint64_t down_read;       /* bytes read from the publisher (progress check) */
	uint64_t deadline_ms;     /* connect/handshake deadline, 0 in relay */
	uint64_t last_down_ms;
	uint8_t idle_ticks;       /* sweeps since the last event (loop.c trims when idle) */
	uint32_t ev_down, ev_up;  /* current epoll interest */
	uint64_t batch_t0_ns;     /* read time of the oldest publish not yet flushed up */
	uint32_t batch_pubs;      /* sealed publishes queued since then (latency histogram) */
	int closing;
	int dead;                 /* closed; freed after the current event batch */
	/*
	 * Parked: a PUBLISH (or CONNECT's will) at din's head found no durable
	 * counter reservation; it and all after it wait in din, unread, until
	 * the ticker's round posts px->io_work (conn_resume_parked), at most
	 * px->park_timeout_ms (then refused like a failed seal).
	 */
	int parked;
	int park_expired;         /* the retry after the bound: seal() refuses */
	uint64_t parked_ms;       /* when the packet at din's head first parked */
	struct conn *park_prev, *park_next;   /* px->parked list */
};

/* Relay latency buckets (seconds, upper edges); metrics.c names them. */
#define PX_LAT_BUCKETS 12U

/* Loop thread only: plain integers, published to the metrics thread as a
 * snapshot at the loop's tick (metrics.c), never read across threads. */
struct proxy_stats {
	uint64_t accepted, refused_conns, active, closed;
	uint64_t publishes, sealed, plaintext_passed, refused_publishes, malformed;
	uint64_t bytes_down, bytes_up;
	uint64_t tls_failures, upstream_failures, timeouts;
	uint64_t publishes_qos[3], sealed_qos[3];
	uint64_t lat[PX_LAT_BUCKETS + 1];   /* relay latency: count per bucket, last = +Inf */
	uint64_t lat_sum_ns;
	uint64_t reloads;
	uint64_t park_timeouts;   /* parked publishes refused after the bound */
};

/* The key service's loopback link to the broker (keylink.c). */
struct keylink {
	int lfd, port;
	pthread_t thread;
	int running, inited;
	volatile int stop;
	pthread_mutex_t mu;           /* guards err */
	char err[512];                /* why the last upstream attempt failed, "" if it worked */
};

/* Key service connection (written on Paho's thread, read anywhere). */
struct proxy_keysvc_state {
	atomic_uint_fast64_t connects, losses;
	atomic_int up;
};

/*
 * Work another thread hands to the event loop (proxy_loop_post): embedded
 * in the poster's own struct, so posting allocates nothing and cannot fail.
 * The loop calls fn on its thread; until then the item must stay alive and
 * must not be posted again.
 */
struct proxy;
struct proxy_work {
	void (*fn)(struct proxy *px, struct proxy_work *w);
	struct proxy_work *next;
};

struct e2e_metrics;
struct proxy_snapshot;
struct proxy_audit;

struct proxy {
	struct proxy_config cfg;
	pthread_mutex_t tls_mu;       /* px->tls against SIGHUP while keylink uses it */
	struct keylink link;
	char service_id[64];          /* client id of the key service */
	char *service_pass;           /* service-password-file, read at start and SIGHUP */
	struct tls_ctx tls;
	struct tls_ctx tls_down;      /* listen-tls: server side */
	struct e2e_publisher *keys;   /* key service + sealing */
	int epfd, sigfd, statsfd;
	int evfd;                     /* eventfd: other threads wake the loop (loop.h) */
	uint64_t next_tick;           /* loop.c: when its next 250 ms tick is due */
	pthread_mutex_t post_mu;      /* guards posted */
	struct proxy_work *posted;    /* handed to the loop thread, newest first */
	atomic_int stop_req;          /* proxy_loop_stop: end at the next round */
	int loop_inited;              /* proxy_loop_init ran: proxy_loop_free has work */
	int lfds[PROXY_LISTEN_MAX];
	int nlfds;
	/* Brokers in failover order (upstream.h); broker_* name the first (the
	 * TLS name and the startup line). */
	struct px_upstreams ups;
	int link_broker;              /* the key service link's broker (keylink thread) */
	struct addrinfo *broker_ai;
	char broker_host[256], broker_port[16];
	struct conn *conns;
	struct conn *dead;            /* closed this batch, freed after it */
	uint32_t nconns;
	uint8_t *scratch;             /* one envelope: max_packet + overhead */
	size_t scratch_cap;
	char **cred_ids, **cred_users, **cred_pass;
	uint32_t ncreds;
	int draining;
	uint64_t drain_deadline;
	int argc;                     /* the command line, parsed again on SIGHUP */
	char **argv;
	struct proxy_stats st;
	struct proxy_keysvc_state ksv;
	struct e2e_metrics *metrics;      /* --metrics-listen: MHD thread */
	pthread_mutex_t snap_mu;          /* taken at the tick and per scrape only */
	struct proxy_snapshot *snap;
	uint64_t started_ms;
	uint64_t watchdog_us;             /* systemd watchdog (0: off) */
	uint64_t next_watchdog_ms, next_status_ms;
	struct proxy_audit *audit;        /* audit.c: enrollment changes */
	/* Parked connections (struct conn's parked), loop thread only; the
	 * ticker's on_io_done posts io_work once (io_posted) to resume them. */
	struct conn *parked;
	uint64_t park_timeout_ms;         /* 0: 5 s (tests set less) */
	struct proxy_work io_work;
	atomic_int io_posted;
	/* The key service's on_io_done, set by proxy_loop_init (setup.c, which
	 * the loop calls, hands it on without calling into the loop). */
	void (*io_done)(void *px);
};

/* metrics.c */
int proxy_metrics_start(struct proxy *px);      /* --metrics-listen; 0 if none */
void proxy_metrics_publish(struct proxy *px);   /* at the loop's tick */
void proxy_metrics_stop(struct proxy *px);
void proxy_latency_observe(struct proxy_stats *st, uint64_t ns, uint32_t n);

/* audit.c: log enrollment changes (its own thread: the loop reads no file) */
int proxy_audit_start(struct proxy *px);
void proxy_audit_free(struct proxy *px);   /* stops the thread */

/* notify.c: systemd sd_notify (no-ops without NOTIFY_SOCKET) */
void proxy_notify_ready(struct proxy *px);
void proxy_notify_tick(struct proxy *px, uint64_t now_ms);
void proxy_notify_reloading(struct proxy *px);
void proxy_notify_stopping(struct proxy *px);

/* conn.c */
struct conn *conn_new(struct proxy *px, int dfd, const char *peer);
void conn_close(struct conn *c, const char *why);
void conn_reap(struct proxy *px);
void conn_on_down(struct conn *c, uint32_t events);
void conn_on_up(struct conn *c, uint32_t events);
size_t conn_trim(struct conn *c);
void conn_update(struct conn *c);
/* Loop thread: retry every parked connection (the ticker finished a round). */
void conn_resume_parked(struct proxy *px);
/* Loop tick: refuse what stayed parked past the bound (logged). */
void conn_expire_parked(struct proxy *px, uint64_t now_ms);

/* relay.c: called by conn.c only, never calling back into it. */
#define RELAY_DIAL 1   /* relay_down: CONNECT accepted, dial the broker now */
#define RELAY_PARKED 2 /* relay_down: the head packet's seal must wait for the disk */
#define PARK_TIMEOUT_MS 5000U
/* Process complete packets from the publisher: 0, RELAY_DIAL, RELAY_PARKED
 * (that packet and all after it left in din, unprocessed), or -1 (close). */
int relay_down(struct conn *c);
int relay_up_frames(struct conn *c);    /* frames from the broker: track acks */
void relay_broker_closed(struct conn *c); /* the broker closed: tell the publisher why */

/* creds.c */
int creds_load(struct proxy *px);
void creds_free(struct proxy *px);
int creds_find(const struct proxy *px, const char *client_id, const char **user,
	const char **pass);
/* The username/password a connection with @p client_id presents to the
 * broker (publishers and the key service alike); 0 if there are any. */
int upstream_credentials(const struct proxy *px, const char *client_id, const char **user,
	const char **pass);

/* keylink.c */
int keylink_start(struct proxy *px);
void keylink_stop(struct proxy *px);
/* Why the key service's last upstream attempt failed ("" if it did not). */
void keylink_error(struct proxy *px, char *out, size_t cap);

#endif
