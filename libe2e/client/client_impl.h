/* Subscriber client internals shared by client.c, keyfetch.c, summaries.c, hold.c
 * and clientbase.c. */
#ifndef E2E_CLIENT_IMPL_H
#define E2E_CLIENT_IMPL_H

#include <pthread.h>

#include "e2e/client.h"
#include "e2e/control.h"
#include "e2e/cred.h"
#include "e2e/revlist.h"
#include "e2e/identity.h"
#include "e2e/keyring.h"
#include "e2e/rx.h"
#include "e2e/summary.h"
#include "session.h"

#define TRUST_MAX 256U
/* A key service that was down answers every request queued for it (the
 * old ones with a stale-request refusal): with the back-off (2 s doubling
 * to 30 s) 64 requests cover an outage of about half an hour. 2 KiB per
 * trusted sender, in pages touched only for the senders in use. */
#define REQ_OLD 64U
#define WANT_MAX 4U

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
	/* Requests we gave up waiting for (retried, replaced, rate-limited),
	 * newest REQ_OLD: their late answers are ours, not attacks. */
	uint8_t old_hash[REQ_OLD][E2E_CTL_HASH_BYTES];
	uint32_t old_next;
	uint64_t sent_mono;
	uint32_t attempts;
	/* After a signed refusal (not enrolled, scope, revoked, stale): no new
	 * request before quiet_until, the wait doubling from 5 s to 5 min, so
	 * a refused subscriber of a busy topic does not ask per message. */
	uint64_t quiet_until;
	uint32_t quiet_ms;
	uint64_t last_announce_ms;        /* newest announcement accepted */
	/* Announced epochs not held, seen while a fresh request was out: asked
	 * for again only if its answer lacks one. A rotation of all scopes
	 * announces each; one answer (every scope) carries them all. */
	struct e2e_keyid want[WANT_MAX];
	uint32_t nwant;
	uint32_t maps;                    /* topic maps installed from its deliveries */
	/* Summaries (SPEC 11.6) */
	/* (the order of parts and numbers is kept by e2e_sumcheck_accept) */
	uint32_t sum_boot;                /* sender run of the last part accepted (0 = none) */
	uint32_t sum_interval_ms;
	uint64_t sum_mono;                /* last summary, or key install (0 = not expected) */
	int stalled;
	int skewed;                       /* clock skew reported, not yet back */
	uint32_t sum_checked;             /* complete summaries checked (retired-key holds) */
	/* Fleet trust (SPEC 13.6): a sender known by its credential, not the trust store. */
	int via_cred;
	int provisional;                  /* no delivery accepted yet: pub unknown */
	int revoked;                      /* on a revocation list: nothing accepted */
	uint8_t *cred;                    /* its credential from the last delivery */
	size_t cred_len;
	uint64_t refresh_at;              /* wall ms: ask for the keys made ahead (0 = never) */
};

/* Senders added by credential, beyond the trust store. */
#define CRED_SENDERS_MAX 64U

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
	/* Held under a retired key (SPEC 11.5) until a summary of the sender
	 * confirms or contradicts it; once two of its complete summaries were
	 * checked after it (sum_checked >= @sums_at + 2) FORGED if one had
	 * arrived before it (@after_summary), else unconfirmed; unconfirmed
	 * at @until_mono. */
	int retired;
	uint32_t sums_at;
	/* A summary of the sender had arrived before it: had the sender sealed
	 * it, the summaries this receiver goes on to see would list it. */
	int after_summary;
	uint64_t until_mono;
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
	char authority_filter[300];       /* "<C>/authority/+": revocation lists */
	struct e2e_authorities au;        /* fleet trust (fleet_sub.c) */
	uint8_t cred[E2E_CRED_MAX];       /* our credential, sent in requests */
	size_t cred_len;
	struct e2e_revstate rev;
	int rev_ready;
	const char *control_topic;
	struct held *hold;                /* ring of hold_max */
	uint32_t hold_head, hold_count;
	uint8_t *pt;                      /* scratch plaintext, grown as needed */
	size_t pt_cap;
	int dirty;
	int state_ok;                     /* rx came from the state file (or none existed) */
	int state_lock;                   /* "<state file>.lock", held while we live; -1 none */
	uint64_t last_save_mono;
	struct e2e_client_stats st;
	struct e2e_sumcheck *sumcheck;
	struct pending_summary sumq[SUMMARY_QUEUE];
	uint32_t nsumq;
	struct outmsg outbox[OUTBOX_MAX];
	uint32_t out_head, out_count;
	pthread_t ticker;
	int ticker_running, stop;
	/* client.c's e2e_client_process, for the hold queue to hand back what
	 * it held: hold.c sits below client.c and never calls up into it. */
	void (*reprocess)(struct e2e_client *c, const char *topic, const uint8_t *env,
		size_t len, int qos, int retained, int from_hold);
};

/*
 * The parts, each calling only the ones after it: client.c, keyfetch.c,
 * summaries.c, hold.c, clientbase.c (tests/lib/circles.py).
 */

/* clientbase.c: the leaf */
struct trusted *e2e_client_trusted(struct e2e_client *c, uint32_t sender);
void e2e_client_event(struct e2e_client *c, enum e2e_client_event_type type, uint32_t sender,
	uint8_t scope, uint32_t epoch, const char *detail);
/* Whether summary entries on @p topic are checked: it is matched by a
 * subscription of ours other than a shared one (ctx = the client). */
int e2e_client_summarized(void *ctx, const char *topic, size_t len);
/* Where e2e_sumcheck reports go (ctx = the client). */
void e2e_client_sum_report(void *ctx, const struct e2e_sumcheck_report *r);

/* keyfetch.c */
void e2e_client_request_keys(struct e2e_client *c, struct trusted *t);
void e2e_client_on_reply(struct e2e_client *c, const uint8_t *msg, size_t len);
void e2e_client_on_announce(struct e2e_client *c, const char *topic, const uint8_t *msg,
	size_t len);

/* nextkeys.c: keys ahead of rotation (SPEC 11.5). */
/* The flags a delivered key is installed with, and its deadline. */
uint8_t e2e_client_key_flags(const struct e2e_ctl_key *k, uint64_t *not_after_ms);
/* After an accepted DELIVERY: drop keys made ahead that it no longer lists,
 * plan the next request for keys ahead (its refresh window). */
void e2e_client_after_delivery(struct e2e_client *c, struct trusted *t,
	const struct e2e_ctl *m);
/* An envelope was accepted under a key held as NEXT (E2E_RX_NEXT). */
void e2e_client_key_switched(struct e2e_client *c, const struct e2e_header *h);
/* Whether an ANNOUNCE of @p scope concerns us: we hold a key of that
 * (sender, scope), so we are enrolled for it (or know nothing of the
 * sender yet). Other scopes' rotations cost no request (SPEC 11.5). */
int e2e_client_wants_scope(struct e2e_client *c, struct trusted *t, uint8_t scope);
/* An ANNOUNCE on @p t's topic that would change nothing whether genuine or
 * not (SPEC 11.5): ignored before its signature is checked. */
int e2e_client_announce_moot(struct e2e_client *c, struct trusted *t, const uint8_t *msg,
	size_t len);
/* Ticker: the requests for keys ahead that are due. */
void e2e_client_refresh_keys(struct e2e_client *c, uint64_t now_ms);

/* summaries.c */
void e2e_client_on_summary(struct e2e_client *c, struct trusted *t, const char *topic,
	const uint8_t *msg, size_t len, const struct e2e_ctl *m);
void e2e_client_check_summaries(struct e2e_client *c, uint64_t mono);
void e2e_client_retry_requests(struct e2e_client *c, uint64_t mono);
/* Summaries of @p t are expected every @p interval_ms (0: none) from @p mono
 * on: called when its keys are installed, so a subscriber that never sees one
 * reports the stall (SPEC 11.6). The seam for the DELIVERY's interval. */
void e2e_client_expect_summaries(struct e2e_client *c, struct trusted *t, uint32_t interval_ms,
	uint64_t mono);

/* Publish what request_keys queued; call WITHOUT the client lock. */
void e2e_client_flush(struct e2e_client *c);

/* hold.c */
void e2e_client_hold(struct e2e_client *c, const char *topic, const uint8_t *env, size_t len,
	int qos, int retained, uint32_t sender, int await_map);
void e2e_client_release(struct e2e_client *c, uint64_t mono, int flush_all);
/* Hold an authentic envelope under a retired key (E2E_RX_RETIRED) or decide
 * it at once when the summaries already tell. */
void e2e_client_hold_retired(struct e2e_client *c, const char *topic, const uint8_t *env,
	size_t len, int qos, int retained, const struct e2e_header *hdr);
/* Retired-key holds only, after a summary was checked. */
void e2e_client_release_retired(struct e2e_client *c, uint64_t mono);

/* fleet_sub.c */
enum e2e_status e2e_client_fleet_setup(struct e2e_client *c);
void e2e_client_fleet_free(struct e2e_client *c);
/* A sender not in the trust store, known by its credential once it answers
 * (added provisionally when its data arrives); NULL without authorities. */
struct trusted *e2e_client_cred_sender(struct e2e_client *c, uint32_t sender);
/* Parse a reply of a credential sender: its credential, then its signature. */
enum e2e_status e2e_client_cred_reply(struct e2e_client *c, struct trusted *t,
	struct e2e_ctl *m, const uint8_t *msg, size_t len);
/* Keep only the map rules its credential has (SPEC 13.6); returns the new count. */
uint32_t e2e_client_cred_rules(const struct trusted *t, struct e2e_scope_rule *rules, uint32_t n);
int e2e_client_is_authority_topic(const struct e2e_client *c, const char *topic);
void e2e_client_on_revocations(struct e2e_client *c, const char *topic, const uint8_t *msg,
	size_t len);

/* client.c */
/* @p from_hold: 0 new, 1 re-processed from the hold queue, FROM_CONFIRMED a
 * retired-key envelope a summary confirmed (e2e_rx_open_confirmed). */
#define FROM_CONFIRMED 2
void e2e_client_process(struct e2e_client *c, const char *topic, const uint8_t *env,
	size_t len, int qos, int retained, int from_hold);

#endif
