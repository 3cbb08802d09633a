/*
 * Publisher for native apps: an e2e_sender behind one Paho session. The
 * session's callback thread answers key requests; a ticker thread (the I/O
 * thread) reloads the state directory once a second, publishes rotation
 * announcements, and keeps every key's counter reservation durable ahead
 * of use, so a seal (the proxy's event loop) never waits on a file: the
 * sealing core asks for more (e2e_sender_io_wanted), the ticker is woken
 * (io_cv), plans under mu, writes and fsyncs WITHOUT mu, and swaps the
 * result in under mu (docs/architecture.md). The ticker is in pubticker.c,
 * the publisher's state in publisher_impl.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e2e/client.h"
#include "e2e/scopes.h"
#include "e2e/sender.h"
#include "publisher_impl.h"

static void on_msg(void *ctx, const char *topic, const uint8_t *payload, size_t len, int qos,
	int retained)
{
	struct e2e_publisher *p = ctx;
	uint8_t *out;
	char reply[E2E_CTL_REPLY_MAX + 1];
	struct e2e_keysvc_stats ks0, ks1;
	uint32_t self;
	size_t olen;
	enum e2e_status st;

	(void)qos;
	(void)retained;
	/* C (key requests) and C/authority/+ (revocation lists, SPEC 13.3):
	 * the sender tells them apart. */
	if (strncmp(topic, p->control_topic, strlen(p->control_topic)) != 0)
		return;
	/* A delivery carries the whole topic map: up to 64 KiB, too big for
	 * a callback's stack; requests are rare and rate-limited. */
	out = malloc(E2E_CTL_DELIVERY_MAX);
	if (!out) {
		pub_event(p, E2E_EV_ERROR, "cannot answer key request: out of memory");
		return;
	}
	pthread_mutex_lock(&p->mu);
	e2e_sender_keysvc_stats(p->sender, &ks0);
	st = e2e_sender_control(p->sender, payload, len, topic, out, E2E_CTL_DELIVERY_MAX, &olen,
		reply, e2e_now_ms());
	e2e_sender_keysvc_stats(p->sender, &ks1);
	self = e2e_sender_self(p->sender);   /* the refusal's issuer */
	pthread_mutex_unlock(&p->mu);
	/* Anything but OK (garbage, replays, other senders) gets no answer. */
	if (st == E2E_OK && e2e_session_publish(&p->sess, reply, out, olen, 1, 0) != E2E_OK)
		pub_event(p, E2E_EV_ERROR, "cannot publish key answer");
	else if (st == E2E_OK && ks1.refused != ks0.refused)
		e2e_pub_event_refused(p->cfg.on_event, p->cfg.ctx, &p->refusals, self, payload,
			len, ks0.refused_by, ks1.refused_by);
	free(out);
}

static void on_state(void *ctx, int connected, const char *why, const char *broker,
	const char *lost)
{
	struct e2e_publisher *p = ctx;
	struct e2e_client_event ev = { connected ? E2E_EV_CONNECTED : E2E_EV_CONNECTION_LOST,
		0, 0, 0, why, broker, lost };

	if (p->cfg.on_event)
		p->cfg.on_event(p->cfg.ctx, &ev);
}

/* Wait on done_cv (mu held) until @p deadline_ms (monotonic); 0 on timeout. */
static int wait_done(struct e2e_publisher *p, uint64_t deadline_ms)
{
	uint64_t now = e2e_mono_ms();
	struct timespec ts;

	if (now >= deadline_ms)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)((deadline_ms - now) / 1000);
	ts.tv_nsec += (long)((deadline_ms - now) % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return pthread_cond_timedwait(&p->done_cv, &p->mu, &ts) == 0;
}

#define SEAL_WAIT_MS 5000U   /* longest a seal waits for the I/O thread */

/*
 * Seal under mu without file I/O. When no durable reservation is ready
 * (a key's first use before the ticker prepared it, a key used up faster
 * than the ticker rotated ahead; counted in seals_waited) the seal waits
 * for the ticker's next rounds, releasing mu, never doing the file work
 * on this thread. Without a ticker (before e2e_publisher_connect) the
 * caller's thread does it inline, as e2e_sender_seal does.
 */
static enum e2e_status seal_locked(struct e2e_publisher *p, int will, uint8_t *out, size_t cap,
	size_t *out_len, const char *topic, size_t topic_len, const uint8_t *pt, size_t pt_len)
{
	enum e2e_status st = e2e_sender_seal_nowait(p->sender, will, out, cap, out_len, topic,
		topic_len, pt, pt_len);
	uint64_t deadline;

	if (st != E2E_ERR_RESERVE && st != E2E_ERR_EXHAUSTED)
		goto out;
	p->st.seals_waited++;
	if (!p->ticker_live) {
		st = (will ? e2e_sender_seal_will : e2e_sender_seal)(p->sender, out, cap, out_len,
			topic, topic_len, pt, pt_len);
		goto out;
	}
	deadline = e2e_mono_ms() + SEAL_WAIT_MS;
	while ((st == E2E_ERR_RESERVE || st == E2E_ERR_EXHAUSTED) && p->ticker_live) {
		e2e_pub_kick(p);
		if (!wait_done(p, deadline))
			break;
		st = e2e_sender_seal_nowait(p->sender, will, out, cap, out_len, topic, topic_len,
			pt, pt_len);
	}
out:
	e2e_pub_kick(p);
	return st;
}

enum e2e_status e2e_publisher_create(struct e2e_publisher **out,
	const struct e2e_publisher_config *cfg)
{
	struct e2e_publisher *p = NULL;
	struct e2e_sender_config sc;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!out || !cfg || !cfg->dir)
		goto out;
	*out = NULL;
	ret = E2E_ERR_NOMEM;
	p = calloc(1, sizeof *p);
	if (!p)
		goto out;
	p->cfg = *cfg;
	p->control_topic = cfg->control_topic ? cfg->control_topic : E2E_CTL_TOPIC_DEFAULT;
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->send_mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&p->io_cv, &ca);
		pthread_cond_init(&p->done_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	memset(&sc, 0, sizeof sc);
	sc.dir = cfg->dir;
	sc.control_topic = p->control_topic;
	sc.grace_ms = cfg->grace_ms;
	sc.max_age_ms = cfg->max_age_ms;
	sc.max_messages = cfg->max_messages;
	sc.rotate_lead_ms = cfg->rotate_lead_ms;
	sc.err = p->reload_err;
	sc.err_len = sizeof p->reload_err;
	sc.summary_ms = cfg->summary_ms;
	sc.no_summaries = cfg->no_summaries;
	sc.prepare_keys = 1;
	p->sum = malloc(E2E_CTL_SUMMARY_MAX);
	p->io = malloc(sizeof *p->io);
	if (!p->sum || !p->io)
		goto out;
	ret = e2e_sender_open(&p->sender, &sc);
	if (ret != E2E_OK) {
		if (cfg->err && cfg->err_len)
			snprintf(cfg->err, cfg->err_len, "%s", p->reload_err);
		goto out;
	}
	/* Every scope's key ready (reservation durable) before the first seal;
	 * a failure here is met again by the seal's own path. */
	(void)e2e_pub_reserve_ahead(p);
	ret = e2e_session_init(&p->sess, &cfg->conn, on_msg, on_state, p, cfg->err, cfg->err_len);
	if (ret != E2E_OK)
		goto out;
	p->sess_ready = 1;
	ret = e2e_session_subscribe(&p->sess, p->control_topic, 1, 0);
	if (ret == E2E_OK) {
		char at[300];

		snprintf(at, sizeof at, "%s/authority/+", p->control_topic);
		ret = e2e_session_subscribe(&p->sess, at, 1, 0);
	}
	if (ret != E2E_OK)
		goto out;
	*out = p;
	p = NULL;
out:
	e2e_publisher_destroy(p);
	return ret;
}

enum e2e_status e2e_publisher_connect(struct e2e_publisher *p, uint32_t timeout_ms)
{
	enum e2e_status st;

	if (!p)
		return E2E_ERR_ARG;
	st = e2e_session_connect(&p->sess, timeout_ms, p->cfg.err, p->cfg.err_len);
	if (st != E2E_OK)
		return st;
	pthread_mutex_lock(&p->mu);
	if (!p->ticker_running && pthread_create(&p->ticker, NULL, e2e_pub_ticker, p) == 0)
		p->ticker_running = p->ticker_live = 1;
	pthread_mutex_unlock(&p->mu);
	return p->ticker_running ? E2E_OK : E2E_ERR_NOMEM;
}

enum e2e_status e2e_publisher_publish(struct e2e_publisher *p, const char *topic,
	const void *payload, size_t len, int qos, int retained, int wait_ms)
{
	enum e2e_status st;
	size_t need = len + E2E_OVERHEAD_MAX, elen = 0;

	if (!p || !topic || (!payload && len) || qos < 0 || qos > 2)
		return E2E_ERR_ARG;
	pthread_mutex_lock(&p->send_mu);
	st = E2E_ERR_NOMEM;
	if (need > p->out_cap) {
		uint8_t *n = realloc(p->out, need);

		if (!n)
			goto out;
		p->out = n;
		p->out_cap = need;
	}
	pthread_mutex_lock(&p->mu);
	st = seal_locked(p, 0, p->out, p->out_cap, &elen, topic, strlen(topic), payload, len);
	pthread_mutex_unlock(&p->mu);
	if (st == E2E_OK)
		st = e2e_session_send(&p->sess, topic, p->out, elen, qos, retained, 1);
out:
	pthread_mutex_lock(&p->mu);
	if (st == E2E_OK)
		p->st.published++;
	else
		p->st.failed++;
	pthread_mutex_unlock(&p->mu);
	pthread_mutex_unlock(&p->send_mu);
	if (st != E2E_OK || wait_ms <= 0 || qos == 0)
		return st;
	/* Wait outside the lock: Paho's thread may need it to answer requests. */
	return e2e_session_flush(&p->sess, wait_ms);
}

enum e2e_status e2e_publisher_set_properties(struct e2e_publisher *p,
	const struct e2e_mqtt_property *props, size_t n)
{
	enum e2e_status st;

	if (!p || (n && !props))
		return E2E_ERR_ARG;
	/* send_mu: no publish reads them while they change. */
	pthread_mutex_lock(&p->send_mu);
	st = e2e_session_set_app_props(&p->sess, props, n);
	pthread_mutex_unlock(&p->send_mu);
	return st;
}

enum e2e_status e2e_publisher_seal(struct e2e_publisher *p, uint8_t *out, size_t cap,
	size_t *out_len, const char *topic, size_t topic_len, const uint8_t *pt, size_t pt_len)
{
	enum e2e_status st;

	if (!p)
		return E2E_ERR_ARG;
	pthread_mutex_lock(&p->mu);
	st = seal_locked(p, 0, out, cap, out_len, topic, topic_len, pt, pt_len);
	pthread_mutex_unlock(&p->mu);
	return st;
}

enum e2e_status e2e_publisher_seal_will(struct e2e_publisher *p, uint8_t *out, size_t cap,
	size_t *out_len, const char *topic, size_t topic_len, const uint8_t *pt, size_t pt_len)
{
	enum e2e_status st;

	if (!p)
		return E2E_ERR_ARG;
	pthread_mutex_lock(&p->mu);
	st = seal_locked(p, 1, out, cap, out_len, topic, topic_len, pt, pt_len);
	pthread_mutex_unlock(&p->mu);
	return st;
}

enum e2e_status e2e_publisher_seal_nowait(struct e2e_publisher *p, int will, uint8_t *out,
	size_t cap, size_t *out_len, const char *topic, size_t topic_len, const uint8_t *pt,
	size_t pt_len)
{
	enum e2e_status st;

	if (!p)
		return E2E_ERR_ARG;
	pthread_mutex_lock(&p->mu);
	if (!p->ticker_live) {
		/* No I/O thread to wait for: the inline path of seal_locked. */
		st = seal_locked(p, will, out, cap, out_len, topic, topic_len, pt, pt_len);
		goto out;
	}
	st = e2e_sender_seal_nowait(p->sender, will != 0, out, cap, out_len, topic, topic_len,
		pt, pt_len);
	if (st == E2E_ERR_RESERVE || st == E2E_ERR_EXHAUSTED) {
		/* Parked: the ticker's round ends in on_io_done, the caller retries. */
		p->st.seals_parked++;
		e2e_pub_kick_now(p);
	} else {
		e2e_pub_kick(p);
	}
out:
	pthread_mutex_unlock(&p->mu);
	return st;
}

enum e2e_status e2e_publisher_flush(struct e2e_publisher *p, uint32_t timeout_ms,
	uint64_t *acked, uint64_t *failed, uint64_t *unacked)
{
	enum e2e_status st;

	if (!p)
		return E2E_ERR_ARG;
	st = e2e_session_flush(&p->sess, (int)timeout_ms);
	pthread_mutex_lock(&p->sess.lock);
	if (acked)
		*acked = p->sess.app_acked;
	if (failed)
		*failed = p->sess.app_failed;
	if (unacked)
		*unacked = p->sess.inflight[1];
	pthread_mutex_unlock(&p->sess.lock);
	return st == E2E_OK && (!failed || *failed == 0) ? st : (st == E2E_OK ? E2E_ERR_IO : st);
}

enum e2e_status e2e_publisher_rotate(struct e2e_publisher *p, const char *topic)
{
	enum e2e_status st;

	if (!p || !topic)
		return E2E_ERR_ARG;
	pthread_mutex_lock(&p->mu);
	if (!p->ticker_live) {
		st = e2e_sender_rotate_topic(p->sender, topic, e2e_now_ms());
	} else {
		/* The ticker rotates (its files without mu); wait for the tick
		 * planned after this request to be applied. */
		uint64_t want = p->ticks_planned + 1, deadline = e2e_mono_ms() + SEAL_WAIT_MS;

		st = e2e_sender_rotate_later(p->sender, topic);
		while (st == E2E_OK && p->ticks_applied < want && p->ticker_live) {
			e2e_pub_kick(p);
			if (!wait_done(p, deadline)) {
				st = E2E_ERR_BUSY;
				break;
			}
		}
	}
	e2e_pub_kick(p);
	pthread_mutex_unlock(&p->mu);
	if (st == E2E_OK)
		e2e_pub_announce_all(p);
	return st;
}

void e2e_publisher_set_policy(struct e2e_publisher *p, uint64_t grace_ms, uint64_t max_age_ms,
	uint64_t max_messages, uint32_t summary_ms)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	e2e_sender_set_policy(p->sender, grace_ms, max_age_ms, max_messages, summary_ms);
	pthread_mutex_unlock(&p->mu);
}

void e2e_publisher_set_lead(struct e2e_publisher *p, uint64_t lead_ms)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	e2e_sender_set_lead(p->sender, lead_ms);
	pthread_mutex_unlock(&p->mu);
}

void e2e_publisher_stats(struct e2e_publisher *p, struct e2e_publisher_stats *st)
{
	struct e2e_keysvc_stats ks;

	if (!p || !st)
		return;
	pthread_mutex_lock(&p->mu);
	*st = p->st;
	e2e_sender_keysvc_stats(p->sender, &ks);
	pthread_mutex_unlock(&p->mu);
	st->requests = ks.requests;
	st->delivered = ks.delivered;
	st->refused = ks.refused;
	memcpy(st->refused_by, ks.refused_by, sizeof st->refused_by);
	st->ignored = ks.ignored_malformed + ks.ignored_bad_sig + ks.ignored_replay +
		ks.rate_limited;
}

void e2e_publisher_destroy(struct e2e_publisher *p)
{
	if (!p)
		return;
	if (p->ticker_running) {
		pthread_mutex_lock(&p->mu);
		p->stop = 1;
		pthread_cond_signal(&p->io_cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->ticker, NULL);
	}
	if (p->sess_ready)
		e2e_session_fini(&p->sess);
	e2e_sender_close(p->sender);
	free(p->out);
	free(p->sum);
	free(p->io);
	pthread_cond_destroy(&p->io_cv);
	pthread_cond_destroy(&p->done_cv);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->send_mu);
	free(p);
}
