/*
 * Publisher for native apps: an e2e_sender behind one Paho session. The
 * session's callback thread answers key requests; a ticker thread (the I/O
 * thread) reloads the state directory once a second, publishes rotation
 * announcements, and keeps every key's counter reservation durable ahead
 * of use, so a seal (the proxy's event loop) never waits on a file: the
 * sealing core asks for more (e2e_sender_io_wanted), the ticker is woken
 * (io_cv), plans under mu, writes and fsyncs WITHOUT mu, and swaps the
 * result in under mu (docs/architecture.md).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e2e/client.h"
#include "e2e/scopes.h"
#include "e2e/sender.h"
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
	int io_kick;
	struct e2e_sender_io *io;    /* the ticker's plan (ticker only) */
	struct e2e_sender *sender;
	uint8_t *out;                /* envelope buffer, grown as needed */
	uint8_t *sum;                /* summary buffer (ticker only) */
	size_t out_cap;
	const char *control_topic;
	struct e2e_publisher_stats st;
	pthread_t ticker;
	int ticker_running, stop;
	/* The sender writes reload errors here from the ticker thread, long
	 * after create returned: never into the caller's cfg.err. */
	char reload_err[256];
	/* Paho's callback thread only: refusal reporting (event_refused). */
	uint64_t refusal_window;
	unsigned refusals_logged, refusals_quiet;
};

static void event(struct e2e_publisher *p, enum e2e_client_event_type t, const char *detail)
{
	struct e2e_client_event ev = { t, 0, 0, 0, detail ? detail : "", NULL, NULL };

	if (p->cfg.on_event)
		p->cfg.on_event(p->cfg.ctx, &ev);
}

static uint32_t be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* An ANNOUNCE we just published (SPEC 11.2: 14-byte head, scope u8, epoch u32). */
static void event_rotated(struct e2e_publisher *p, const uint8_t *msg, size_t len)
{
	struct e2e_client_event ev = { E2E_EV_ROTATED, 0, 0, 0, "new epoch announced", NULL,
		NULL };

	if (!p->cfg.on_event || len < E2E_CTL_HEAD_BYTES + 5)
		return;
	ev.sender = be32(msg + 2);
	ev.scope = msg[E2E_CTL_HEAD_BYTES];
	ev.epoch = be32(msg + E2E_CTL_HEAD_BYTES + 1);
	p->cfg.on_event(p->cfg.ctx, &ev);
}

/*
 * A refusal just answered: say which key asked and why. Strangers share the
 * global bucket (up to 100 refusals a second), so at most REFUSAL_LOGS per
 * REFUSAL_WINDOW_MS are reported one by one, then how many were not.
 */
#define REFUSAL_LOGS 20U
#define REFUSAL_WINDOW_MS 10000U

static void event_refused(struct e2e_publisher *p, uint32_t self, const uint8_t *req,
	size_t len, const uint64_t before[8], const uint64_t after[8])
{
	struct e2e_client_event ev = { E2E_EV_REQUEST_REFUSED, self, 0, 0, "", NULL, NULL };
	uint64_t now = e2e_mono_ms();
	char detail[160], key[17] = "?";
	unsigned reason = 0;

	if (!p->cfg.on_event)
		return;
	for (unsigned r = 1; r < 8; r++)
		if (after[r] != before[r])
			reason = r;
	if (now - p->refusal_window >= REFUSAL_WINDOW_MS) {
		if (p->refusals_quiet) {
			snprintf(detail, sizeof detail, "%u more key request refusal(s) not logged "
				"(see the refusal metrics)", p->refusals_quiet);
			ev.detail = detail;
			p->cfg.on_event(p->cfg.ctx, &ev);
		}
		p->refusal_window = now;
		p->refusals_logged = p->refusals_quiet = 0;
	}
	if (p->refusals_logged >= REFUSAL_LOGS) {
		p->refusals_quiet++;
		return;
	}
	p->refusals_logged++;
	/* The requester's signing key (parsed and verified by the key service);
	 * its first 8 bytes in hex are enough to find it in `enrolled`. */
	if (len >= E2E_CTL_HEAD_BYTES + 8)
		for (unsigned i = 0; i < 8; i++)
			snprintf(key + 2 * i, 3, "%02x", req[E2E_CTL_HEAD_BYTES + i]);
	snprintf(detail, sizeof detail, "key request refused (%s): subscriber key %s",
		e2e_refusal_name((uint8_t)reason), key);
	ev.detail = detail;
	p->cfg.on_event(p->cfg.ctx, &ev);
}

static void on_msg(void *ctx, const char *topic, const uint8_t *payload, size_t len, int qos,
	int retained)
{
	struct e2e_publisher *p = ctx;
	uint8_t *out;
	char reply[E2E_CTL_REPLY_MAX + 1];
	struct e2e_keysvc_stats ks0, ks1;
	size_t olen;
	enum e2e_status st;

	(void)qos;
	(void)retained;
	if (strcmp(topic, p->control_topic) != 0)
		return;
	/* A delivery carries the whole topic map: up to 64 KiB, too big for
	 * a callback's stack; requests are rare and rate-limited. */
	out = malloc(E2E_CTL_DELIVERY_MAX);
	if (!out) {
		event(p, E2E_EV_ERROR, "cannot answer key request: out of memory");
		return;
	}
	pthread_mutex_lock(&p->mu);
	e2e_sender_keysvc_stats(p->sender, &ks0);
	st = e2e_sender_control(p->sender, payload, len, topic, out, E2E_CTL_DELIVERY_MAX, &olen,
		reply, e2e_now_ms());
	e2e_sender_keysvc_stats(p->sender, &ks1);
	pthread_mutex_unlock(&p->mu);
	/* Anything but OK (garbage, replays, other senders) gets no answer. */
	if (st == E2E_OK && e2e_session_publish(&p->sess, reply, out, olen, 1, 0) != E2E_OK)
		event(p, E2E_EV_ERROR, "cannot publish key answer");
	else if (st == E2E_OK && ks1.refused != ks0.refused)
		event_refused(p, olen >= 6 ? be32(out + 2) : 0, payload, len, ks0.refused_by,
			ks1.refused_by);
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

static void announce_all(struct e2e_publisher *p)
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
			event_rotated(p, msg, len);
		}
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
			event(p, E2E_EV_ERROR, e2e_strerror(st));
			break;
		}
		if (e2e_session_publish(&p->sess, topic, p->sum, len, 1, 0) != E2E_OK) {
			event(p, E2E_EV_ERROR, "cannot publish summary");
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
static enum e2e_status reserve_ahead(struct e2e_publisher *p)
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
	pthread_mutex_unlock(&p->mu);
	return st == E2E_ERR_NOT_FOUND || st == E2E_ERR_EXHAUSTED ? E2E_OK : st;
}

/* Called with mu held, after a seal: wake the ticker if the core wants I/O. */
static void kick(struct e2e_publisher *p)
{
	if (!p->io_kick && e2e_sender_io_wanted(p->sender)) {
		p->io_kick = 1;
		pthread_cond_signal(&p->io_cv);
	}
}

static void *ticker(void *arg)
{
	struct e2e_publisher *p = arg;
	uint64_t last = 0;
	int failing = 0;

	for (;;) {
		struct timespec ts;
		uint64_t now;
		int stop;

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
		now = e2e_mono_ms();
		/* Reloads and rotations still hold mu (the keys file). */
		if (!stop && now - last >= 1000) {
			last = now;
			if (e2e_sender_tick(p->sender, e2e_now_ms()) != E2E_OK)
				event(p, E2E_EV_ERROR, p->reload_err[0] ? p->reload_err :
					"reload failed");
		}
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;
		/* After a tick too: a rotated scope's new key is made ready
		 * before the next seal needs it. */
		if (reserve_ahead(p) == E2E_OK) {
			failing = 0;
		} else if (!failing) {
			failing = 1;   /* said once per episode: seals then wait inline */
			event(p, E2E_EV_ERROR, "cannot reserve counters in txstate");
		}
		announce_all(p);
		summaries(p);
	}
	return NULL;
}

/*
 * Seal under mu without file I/O; only when no durable reservation is
 * ready (counted in seals_waited) fall back to the sealing path that
 * does the file work inline, as before the I/O thread existed.
 */
static enum e2e_status seal_locked(struct e2e_publisher *p, int will, uint8_t *out, size_t cap,
	size_t *out_len, const char *topic, size_t topic_len, const uint8_t *pt, size_t pt_len)
{
	enum e2e_status st = e2e_sender_seal_nowait(p->sender, will, out, cap, out_len, topic,
		topic_len, pt, pt_len);

	if (st == E2E_ERR_RESERVE || st == E2E_ERR_EXHAUSTED) {
		p->st.seals_waited++;
		st = (will ? e2e_sender_seal_will : e2e_sender_seal)(p->sender, out, cap, out_len,
			topic, topic_len, pt, pt_len);
	}
	kick(p);
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
		pthread_condattr_destroy(&ca);
	}
	memset(&sc, 0, sizeof sc);
	sc.dir = cfg->dir;
	sc.control_topic = p->control_topic;
	sc.grace_ms = cfg->grace_ms;
	sc.max_age_ms = cfg->max_age_ms;
	sc.max_messages = cfg->max_messages;
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
	(void)reserve_ahead(p);
	ret = e2e_session_init(&p->sess, &cfg->conn, on_msg, on_state, p, cfg->err, cfg->err_len);
	if (ret != E2E_OK)
		goto out;
	p->sess_ready = 1;
	ret = e2e_session_subscribe(&p->sess, p->control_topic, 1, 0);
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
	if (!p->ticker_running && pthread_create(&p->ticker, NULL, ticker, p) == 0)
		p->ticker_running = 1;
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
	st = e2e_sender_rotate_topic(p->sender, topic, e2e_now_ms());
	kick(p);
	pthread_mutex_unlock(&p->mu);
	if (st == E2E_OK)
		announce_all(p);
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
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->send_mu);
	free(p);
}
