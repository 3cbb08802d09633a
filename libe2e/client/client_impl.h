/* Subscriber client internals shared by client.c, keyfetch.c and hold.c. */
#ifndef E2E_CLIENT_IMPL_H
#define E2E_CLIENT_IMPL_H

#include <pthread.h>

#include "e2e/client.h"
#include "e2e/control.h"
#include "e2e/identity.h"
#include "e2e/keyring.h"
#include "e2e/rx.h"
#include "e2e/summary.h"
#include "session.h"

#define TRUST_MAX 256U

struct trusted {
	char name[E2E_NAME_MAX + 1];
	struct e2e_public pub;
	uint32_t sender;
	/* The one outstanding key request to this sender, if any. */
	int pending;
	int again;                        /* more keys wanted after this answer */
	uint8_t eph_pk[E2E_DH_BYTES];
	uint8_t eph_sk[E2E_DH_BYTES];
	uint8_t req_hash[E2E_CTL_HASH_BYTES];
	uint8_t prev_hash[E2E_CTL_HASH_BYTES];   /* a request we gave up waiting for */
	uint64_t sent_mono;
	uint32_t attempts;
	uint64_t last_announce_ms;        /* newest announcement accepted */
	uint32_t maps;                    /* topic maps installed from its deliveries */
	/* Summaries (SPEC 11.6) */
	uint32_t sum_number;              /* last summary number seen */
	uint64_t sum_time_ms;             /* its signed time: orders across restarts */
	uint32_t sum_interval_ms;
	uint64_t sum_mono;                /* when it arrived (0 = none yet) */
	int stalled;
};

/* A verified summary waiting a moment for reordered data to arrive. */
struct pending_summary {
	uint8_t *msg;
	size_t len;
	uint32_t sender;
	uint32_t index;                   /* arrival index (e2e_sumcheck_arrived) */
	uint64_t due_mono;
};

#define SUMMARY_QUEUE 64U
#define SUMMARY_DELAY_MS 1000U

struct held {
	char *topic;
	uint8_t *env;
	size_t len;
	int qos, retained;
	uint64_t since_mono;
	uint32_t sender;
	/* Held for a newer topic map (FORGED by a map that may be stale): decided
	 * once the sender's map count differs from @maps, or at the timeout. */
	int await_map;
	uint32_t maps;
};

/*
 * Control messages wait here until the client lock is released: Paho holds
 * its own global lock while it runs our callbacks, so publishing with our
 * lock held could deadlock against a callback waiting for it.
 */
#define OUTBOX_MAX 32U

struct outmsg {
	uint8_t msg[E2E_CTL_MSG_MAX];
	size_t len;
	uint32_t sender;
};

struct e2e_client {
	struct e2e_client_config cfg;
	struct e2e_session sess;
	int sess_ready;
	pthread_mutex_t mu;               /* everything below */
	pthread_cond_t keys_cond;
	struct e2e_identity id;
	struct trusted *trust;
	uint32_t ntrust;
	struct e2e_keyring *kr;
	struct e2e_rx *rx;
	char reply_topic[E2E_CTL_REPLY_MAX + 1];
	char announce_filter[300];
	const char *control_topic;
	struct held *hold;                /* ring of hold_max */
	uint32_t hold_head, hold_count;
	uint8_t *pt;                      /* scratch plaintext, grown as needed */
	size_t pt_cap;
	int dirty;
	uint64_t last_save_mono;
	struct e2e_client_stats st;
	struct e2e_sumcheck *sumcheck;
	struct pending_summary sumq[SUMMARY_QUEUE];
	uint32_t nsumq;
	struct outmsg outbox[OUTBOX_MAX];
	uint32_t out_head, out_count;
	pthread_t ticker;
	int ticker_running, stop;
};

/* keyfetch.c */
struct trusted *e2e_client_trusted(struct e2e_client *c, uint32_t sender);
void e2e_client_request_keys(struct e2e_client *c, struct trusted *t);
void e2e_client_on_reply(struct e2e_client *c, const uint8_t *msg, size_t len);
void e2e_client_on_announce(struct e2e_client *c, const char *topic, const uint8_t *msg,
	size_t len);

/* summaries.c */
void e2e_client_on_summary(struct e2e_client *c, struct trusted *t, const char *topic,
	const uint8_t *msg, size_t len, const struct e2e_ctl *m);
void e2e_client_check_summaries(struct e2e_client *c, uint64_t mono);
void e2e_client_retry_requests(struct e2e_client *c, uint64_t mono);

/* Publish what request_keys queued; call WITHOUT the client lock. */
void e2e_client_flush(struct e2e_client *c);

/* hold.c */
void e2e_client_hold(struct e2e_client *c, const char *topic, const uint8_t *env, size_t len,
	int qos, int retained, uint32_t sender, int await_map);
void e2e_client_release(struct e2e_client *c, uint64_t mono, int flush_all);

/* client.c */
void e2e_client_process(struct e2e_client *c, const char *topic, const uint8_t *env,
	size_t len, int qos, int retained, int from_hold);
void e2e_client_event(struct e2e_client *c, enum e2e_client_event_type type, uint32_t sender,
	uint8_t scope, uint32_t epoch, const char *detail);

#endif
