/*
 * A publisher's ticker (its I/O thread): reloads the state directory once
 * a second, rotates keys, keeps every key's counter reservation durable
 * ahead of use, and publishes rotation announcements and due summaries.
 * File work and fsyncs without mu, plans and swaps under it
 * (publisher.c's header comment). Calls nothing of publisher.c.
 */
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "publisher_impl.h"

void e2e_pub_announce_all(struct e2e_publisher *p)
{
	uint8_t msg[E2E_CTL_MSG_MAX];
	char topic[300];
	size_t len;

	for (;;) {
		enum e2e_status st;

		pthread_mutex_lock(&p->mu);
		st = e2e_sender_next_announce(p->sender, msg, sizeof msg, &len, topic, sizeof topic,
			e2e_now_ms());
		pthread_mutex_unlock(&p->mu);
		if (st != E2E_OK)
			break;
		if (e2e_session_publish(&p->sess, topic, msg, len, 1, 0) == E2E_OK) {
			pthread_mutex_lock(&p->mu);   /* read by e2e_publisher_stats */
			p->st.announcements++;
			pthread_mutex_unlock(&p->mu);
			e2e_pub_event_rotated(p->cfg.on_event, p->cfg.ctx, msg, len);
		}
	}
	/* Switches on schedule are not announced: reported all the same. */
	for (;;) {
		uint8_t sc;
		uint32_t ep, self;
		enum e2e_status st;

		pthread_mutex_lock(&p->mu);
		st = e2e_sender_next_switch(p->sender, &sc, &ep);
		self = e2e_sender_self(p->sender);
		pthread_mutex_unlock(&p->mu);
		if (st != E2E_OK)
			break;
		e2e_pub_event_switched(p->cfg.on_event, p->cfg.ctx, self, sc, ep);
	}
}

/* Publish due summaries, built under the lock, sent outside it. */
static void summaries(struct e2e_publisher *p)
{
	char topic[300];
	size_t len;

	for (;;) {
		enum e2e_status st;

		pthread_mutex_lock(&p->mu);
		st = e2e_sender_next_summary(p->sender, p->sum, E2E_CTL_SUMMARY_MAX, &len, topic,
			sizeof topic, e2e_now_ms());
		pthread_mutex_unlock(&p->mu);
		if (st == E2E_ERR_NOT_FOUND)
			break;
		if (st != E2E_OK) {
			pub_event(p, E2E_EV_ERROR, e2e_strerror(st));
			break;
		}
		if (e2e_session_publish(&p->sess, topic, p->sum, len, 1, 0) != E2E_OK) {
			pub_event(p, E2E_EV_ERROR, "cannot publish summary");
		} else {
			pthread_mutex_lock(&p->mu);   /* read by e2e_publisher_stats */
			p->st.summaries++;
			pthread_mutex_unlock(&p->mu);
		}
	}
}

/*
 * The reservations the sealing core asked for: planned under mu, made
 * durable without it (seals go on meanwhile from the old reservation),
 * swapped in under mu. Ticker thread (and create, before it starts).
 * E2E_ERR_NOT_FOUND / E2E_ERR_EXHAUSTED: an unrecorded or exhausted key,
 * which the seal's own path or the next tick rotates.
 */
enum e2e_status e2e_pub_reserve_ahead(struct e2e_publisher *p)
{
	enum e2e_status st;
	uint32_t n;

	pthread_mutex_lock(&p->mu);
	n = e2e_sender_io_plan(p->sender, p->io);
	pthread_mutex_unlock(&p->mu);
	if (!n)
		return E2E_OK;
	st = e2e_sender_io_run(p->sender, p->io);
	pthread_mutex_lock(&p->mu);
	if (e2e_sender_io_apply(p->sender, p->io) != E2E_OK && st == E2E_OK)
		st = E2E_ERR_RESERVE;
	p->io_applied++;
	pthread_mutex_unlock(&p->mu);
	return st == E2E_ERR_NOT_FOUND || st == E2E_ERR_EXHAUSTED ? E2E_OK : st;
}

/*
 * The tick's file work without mu: plan (copies, under mu), run (reloads,
 * rotations, pruning, new keys' reservations: files and fsyncs, no lock),
 * apply (swap in, under mu). Ticker thread only.
 */
static enum e2e_status tick(struct e2e_publisher *p)
{
	struct e2e_sender_tick *t = NULL;
	enum e2e_status st;

	pthread_mutex_lock(&p->mu);
	st = e2e_sender_tick_plan(p->sender, e2e_now_ms(), &t);
	if (st == E2E_OK)
		p->ticks_planned++;
	pthread_mutex_unlock(&p->mu);
	if (st != E2E_OK)
		return st;
	(void)e2e_sender_tick_run(t);
	pthread_mutex_lock(&p->mu);
	st = e2e_sender_tick_apply(p->sender, t);
	p->ticks_applied = p->ticks_planned;
	pthread_mutex_unlock(&p->mu);
	return st;
}

/* Called with mu held, after a seal: wake the ticker if the core wants I/O. */
void e2e_pub_kick(struct e2e_publisher *p)
{
	if (!p->io_kick && (e2e_sender_io_wanted(p->sender) ||
	                    e2e_sender_tick_wanted(p->sender))) {
		p->io_kick = 1;
		pthread_cond_signal(&p->io_cv);
	}
}

/* Called with mu held: a parked seal wants a round even if the core asked
 * for none (a failing disk: the ticker retries every 100 ms anyway). */
void e2e_pub_kick_now(struct e2e_publisher *p)
{
	p->parked = 1;
	e2e_pub_kick(p);
}

/*
 * Tell a non-blocking caller its parked seals may go now (without mu), if
 * this round applied anything (@p before: ticks and reservation rounds
 * applied before it; UINT64_MAX: the ticker ends). A round with nothing
 * to apply changes no seal's answer: retrying then would only spin the
 * caller and this thread against each other until the next tick is due.
 */
static void io_done(struct e2e_publisher *p, uint64_t before)
{
	int parked;

	pthread_mutex_lock(&p->mu);
	parked = p->parked && p->ticks_applied + p->io_applied != before;
	if (parked)
		p->parked = 0;
	pthread_mutex_unlock(&p->mu);
	if (parked && p->cfg.on_io_done)
		p->cfg.on_io_done(p->cfg.ctx);
}

void *e2e_pub_ticker(void *arg)
{
	struct e2e_publisher *p = arg;
	uint64_t last = 0;
	int failing = 0;

	for (;;) {
		struct timespec ts;
		uint64_t now, before;
		int stop, due;

		pthread_mutex_lock(&p->mu);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 100000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		/* A failing disk is retried every 100 ms, not at every seal's kick. */
		while (!p->stop && (failing || !p->io_kick))
			if (pthread_cond_timedwait(&p->io_cv, &p->mu, &ts) != 0)
				break;
		p->io_kick = 0;
		stop = p->stop;
		before = p->ticks_applied + p->io_applied;
		now = e2e_mono_ms();
		/* A rotation due or asked for ticks at once, but at most every
		 * 100 ms: a tick that keeps failing (a full disk) is not redone
		 * at every seal's kick. */
		due = !stop && (now - last >= 1000 ||
		                (now - last >= 100 && e2e_sender_tick_wanted(p->sender)));
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;
		/* Reloads and rotations (by age, usage ahead of the limit, or
		 * asked for): their files and fsyncs without mu. */
		if (due) {
			last = now;
			if (tick(p) != E2E_OK)
				pub_event(p, E2E_EV_ERROR, p->reload_err[0] ? p->reload_err :
					"reload failed");
		}
		/* After a tick too: a rotated scope's new key is made ready
		 * before the next seal needs it. */
		if (e2e_pub_reserve_ahead(p) == E2E_OK) {
			failing = 0;
		} else if (!failing) {
			failing = 1;   /* said once per episode; seals wait for a round */
			pub_event(p, E2E_EV_ERROR, "cannot reserve counters in txstate");
		}
		pthread_mutex_lock(&p->mu);
		pthread_cond_broadcast(&p->done_cv);   /* seals waiting for this round */
		pthread_mutex_unlock(&p->mu);
		/* Seals parked before this round retry now; one parked during it
		 * and not served by it parks again and gets the next round. */
		io_done(p, before);
		e2e_pub_announce_all(p);
		summaries(p);
	}
	pthread_mutex_lock(&p->mu);
	p->ticker_live = 0;   /* seals no longer wait for it */
	pthread_cond_broadcast(&p->done_cv);
	pthread_mutex_unlock(&p->mu);
	io_done(p, UINT64_MAX);   /* parked seals retry: now inline, or refused */
	return NULL;
}
