/*
 * Internal to libe2e-client: a publisher's state, shared by publisher.c
 * (create, seal, publish, destroy) and pubticker.c (its I/O thread).
 */
#ifndef E2E_PUBLISHER_IMPL_H
#define E2E_PUBLISHER_IMPL_H

#include <pthread.h>

#include "e2e/client.h"
#include "e2e/sender.h"
#include "pubevents.h"
#include "session.h"

struct e2e_publisher {
	struct e2e_publisher_config cfg;
	struct e2e_session sess;
	int sess_ready;
	/*
	 * Lock order: send_mu, then mu. The Paho callback thread takes only mu,
	 * and nothing calls Paho while holding mu (Paho runs callbacks under
	 * its own global lock). send_mu keeps out[] ours until Paho copied it.
	 */
	pthread_mutex_t send_mu;
	pthread_mutex_t mu;          /* guards sender, stats, io_kick */
	pthread_cond_t io_cv;        /* wakes the ticker: the sender wants I/O */
	pthread_cond_t done_cv;      /* the ticker finished a round */
	int io_kick;
	uint64_t ticks_planned, ticks_applied;
	uint64_t io_applied;         /* reservation rounds swapped in (on_io_done) */
	struct e2e_sender_io *io;    /* the ticker's plan (ticker only) */
	struct e2e_sender *sender;
	uint8_t *out;                /* envelope buffer, grown as needed */
	uint8_t *sum;                /* summary buffer (ticker only) */
	size_t out_cap;
	const char *control_topic;
	struct e2e_publisher_stats st;
	pthread_t ticker;
	int ticker_running, stop;    /* ticker_running: joined by destroy */
	int ticker_live;             /* under mu: seals may wait for the ticker */
	int parked;                  /* under mu: a seal parked since the last round */
	/* The sender writes reload errors here from the ticker thread, long
	 * after create returned: never into the caller's cfg.err. */
	char reload_err[256];
	struct e2e_refusal_log refusals;   /* Paho's callback thread only */
};

static inline void pub_event(struct e2e_publisher *p, enum e2e_client_event_type t, const char *detail)
{
	e2e_pub_event(p->cfg.on_event, p->cfg.ctx, t, detail);
}

/* pubticker.c: the ticker thread (@p arg: the publisher). */
void *e2e_pub_ticker(void *arg);
/* Called with mu held, after a seal: wake the ticker if the core wants I/O. */
void e2e_pub_kick(struct e2e_publisher *p);
/* Called with mu held: wake the ticker for a round now (a parked seal). */
void e2e_pub_kick_now(struct e2e_publisher *p);
/*
 * The reservations the sealing core asked for, made durable without mu.
 * Ticker thread (and create, before it starts).
 */
enum e2e_status e2e_pub_reserve_ahead(struct e2e_publisher *p);
/* Publish every rotation announcement due (without mu). */
void e2e_pub_announce_all(struct e2e_publisher *p);

#endif
