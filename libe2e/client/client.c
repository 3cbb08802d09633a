/*
 * Subscriber client: MQTT messages in, verdicts and plaintext out.
 * Data messages go through e2e_rx (window check before decryption, window
 * moved only after verification); control traffic goes to keyfetch.c.
 */
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_impl.h"
#include "e2e/enroll.h"
#include "e2e/lock.h"
#include "e2e/scopes.h"

#define TICK_MS 100

static int grow_scratch(struct e2e_client *c, size_t need)
{
	uint8_t *p;

	if (need <= c->pt_cap)
		return 0;
	/* Grows to the largest payload seen, then never again. */
	p = realloc(c->pt, need);
	if (!p)
		return -1;
	c->pt = p;
	c->pt_cap = need;
	return 0;
}

/* 1 if @p topic is delivered only through $share/<group>/<filter> subscriptions. */
static int only_shared(struct e2e_client *c, const char *topic, size_t tl)
{
	int shared = 0, plain = 0;

	pthread_mutex_lock(&c->sess.lock);
	for (int i = 0; i < c->sess.nsubs; i++) {
		const char *f = c->sess.subs[i];

		if (strncmp(f, "$share/", 7) == 0) {
			const char *rest = strchr(f + 7, '/');

			shared |= rest && e2e_topic_matches(rest + 1, strlen(rest + 1), topic, tl);
		} else {
			plain |= e2e_topic_matches(f, strlen(f), topic, tl);
		}
	}
	pthread_mutex_unlock(&c->sess.lock);
	return shared && !plain;
}

void e2e_client_process(struct e2e_client *c, const char *topic, const uint8_t *env,
	size_t len, int qos, int retained, int from_hold)
{
	struct e2e_rx_result res;
	struct e2e_client_msg m;
	struct trusted *t;
	size_t tl = strlen(topic);
	int shared;

	if (grow_scratch(c, len) != 0 || tl == 0 ||
	    (from_hold == FROM_CONFIRMED ?
		e2e_rx_open_confirmed(c->rx, c->kr, c->pt, c->pt_cap, &res, (const uint8_t *)topic,
			tl, env, len, e2e_now_ms()) :
		e2e_rx_open(c->rx, c->kr, c->pt, c->pt_cap, &res, (const uint8_t *)topic, tl, env,
			len, e2e_now_ms())) != E2E_OK) {
		e2e_client_event(c, E2E_EV_ERROR, 0, 0, 0, "cannot process message (out of memory)");
		return;
	}
	/* A shared subscription ($share/...) sees only part of each stream:
	 * its gaps are other members' messages, not losses. Replay detection
	 * stays on; only the gap alarm is switched off. Asked on a gap only:
	 * the walk over the subscriptions (under the session lock) cost every
	 * message its time (issue 15). */
	shared = res.verdict == E2E_V_GAP && only_shared(c, topic, tl);
	if (shared) {
		res.verdict = E2E_V_OK;
		res.gap = 0;
	}
	t = res.verdict == E2E_V_MALFORMED ? NULL : e2e_client_trusted(c, res.hdr.sender);
	/* Not in the trust store: perhaps a credential holder (SPEC 13.6). */
	if (!t && res.verdict == E2E_V_UNKNOWN_KEY && !from_hold)
		t = e2e_client_cred_sender(c, res.hdr.sender);
	if (res.flags & E2E_RX_NEXT)
		e2e_client_key_switched(c, &res.hdr);   /* the sender switched on schedule */
	/* Authentic under a retired key: only the sender's summary can tell
	 * its envelope from a revoked member's (SPEC 11.5). */
	if (res.verdict == E2E_V_UNKNOWN_KEY && (res.flags & E2E_RX_RETIRED) && t) {
		e2e_client_hold_retired(c, topic, env, len, qos, retained, &res.hdr);
		return;
	}
	if (res.verdict == E2E_V_UNKNOWN_KEY && t && !from_hold) {
		e2e_client_hold(c, topic, env, len, qos, retained, res.hdr.sender, 0);
		e2e_client_request_keys(c, t);
		return;
	}
	/* Refused by the sender's map: genuine if our map is older than its
	 * scopes table (a reload moved the topic). Fetch its current map and
	 * decide again, as for a missing key; forgeries are FORGED after that. */
	if (res.verdict == E2E_V_FORGED && (res.flags & E2E_RX_SCOPE_MISMATCH) && t &&
	    !from_hold) {
		e2e_client_hold(c, topic, env, len, qos, retained, res.hdr.sender, 1);
		e2e_client_request_keys(c, t);
		return;
	}
	memset(&m, 0, sizeof m);
	m.topic = topic;
	m.verdict = res.verdict;
	m.gap = res.gap;
	m.sender = res.hdr.sender;
	m.sender_name = t ? t->name : NULL;
	m.scope = res.hdr.scope;
	m.epoch = res.hdr.epoch;
	m.seq = res.hdr.seq;
	m.retained = retained;
	m.qos = qos;
	m.confirmed = from_hold == FROM_CONFIRMED;
	if (m.confirmed && e2e_verdict_delivers(res.verdict))
		c->st.retired_confirmed++;
	if (e2e_verdict_delivers(res.verdict)) {
		m.payload = c->pt;
		m.len = res.pt_len;
		c->dirty = 1;
		/* Its digest waits for the sender's summary (SPEC 11.6); not for
		 * topics only a shared subscription receives, whose entries are
		 * never checked (the record would end up "unsummarized"). */
		if (!m.confirmed && e2e_client_summarized(c, topic, tl))
			e2e_sumcheck_record(c->sumcheck, res.hdr.sender, res.hdr.run, topic, tl,
				res.hdr.seq, env, len, e2e_mono_ms(), e2e_client_sum_report, c);
	}
	c->st.verdicts[res.verdict]++;
	if (res.verdict == E2E_V_GAP)
		c->st.gap_total += res.gap;
	if ((res.verdict != E2E_V_DUPLICATE || c->cfg.deliver_duplicates) && c->cfg.on_message)
		c->cfg.on_message(c->cfg.ctx, &m);
	if (res.pt_len)
		sodium_memzero(c->pt, res.pt_len);
}

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void on_msg(void *ctx, const char *topic, const uint8_t *payload, size_t len, int qos,
	int retained)
{
	struct e2e_client *c = ctx;
	size_t cl = strlen(c->control_topic);

	pthread_mutex_lock(&c->mu);
	if (strcmp(topic, c->reply_topic) == 0)
		e2e_client_on_reply(c, payload, len);
	else if (e2e_client_is_authority_topic(c, topic))
		e2e_client_on_revocations(c, topic, payload, len);
	else if (starts_with(topic, c->control_topic) && topic[cl] == '/')
		e2e_client_on_announce(c, topic, payload, len);
	else if (strcmp(topic, c->control_topic) != 0 &&   /* others' key requests: ignore */
		 !starts_with(topic, E2E_CTL_REPLY_PREFIX))
		/* Nor others' key deliveries: a subscriber of '#' gets them too, and
		 * no sender seals there (SPEC 11.1), so they are not data at all:
		 * opened as envelopes they counted as UNKNOWN_KEY anomalies. */
		e2e_client_process(c, topic, payload, len, qos, retained, 0);
	pthread_mutex_unlock(&c->mu);
	e2e_client_flush(c);
}

static void on_state(void *ctx, int connected, const char *why, const char *broker,
	const char *lost)
{
	struct e2e_client *c = ctx;
	struct e2e_client_event ev = { connected ? E2E_EV_CONNECTED : E2E_EV_CONNECTION_LOST,
		0, 0, 0, why, broker, lost };

	pthread_mutex_lock(&c->mu);
	if (c->cfg.on_event)
		c->cfg.on_event(c->cfg.ctx, &ev);
	pthread_mutex_unlock(&c->mu);
}

static void save_state(struct e2e_client *c)
{
	enum e2e_status st;

	if (!c->cfg.state_file || !c->dirty || !c->state_ok)
		return;
	st = e2e_rx_save(c->rx, c->cfg.state_file);
	if (st != E2E_OK) {
		char detail[300];

		snprintf(detail, sizeof detail, "cannot save replay state %s: %s", c->cfg.state_file,
			e2e_strerror(st));
		e2e_client_event(c, E2E_EV_ERROR, 0, 0, 0, detail);
		return;
	}
	c->dirty = 0;
	c->last_save_mono = e2e_mono_ms();
}

static void *ticker(void *arg)
{
	struct e2e_client *c = arg;
	struct timespec ts = { 0, TICK_MS * 1000000L };

	for (;;) {
		uint64_t mono;

		nanosleep(&ts, NULL);
		pthread_mutex_lock(&c->mu);
		if (c->stop) {
			pthread_mutex_unlock(&c->mu);
			break;
		}
		mono = e2e_mono_ms();
		e2e_client_retry_requests(c, mono);
		e2e_client_refresh_keys(c, e2e_now_ms());
		e2e_client_release(c, mono, 0);
		e2e_client_check_summaries(c, mono);
		e2e_keyring_expire(c->kr, e2e_now_ms());
		if (mono - c->last_save_mono >= c->cfg.save_ms)
			save_state(c);
		pthread_mutex_unlock(&c->mu);
		e2e_client_flush(c);
	}
	return NULL;
}

static enum e2e_status fail(struct e2e_client_config *cfg, enum e2e_status st, const char *what,
	const char *path)
{
	if (cfg->err && cfg->err_len)
		snprintf(cfg->err, cfg->err_len, "%s%s%s: %s", what, path ? " " : "", path ? path : "",
			e2e_strerror(st));
	return st;
}

/* The senders we accept, indexed by the sender id their envelopes carry. */
static enum e2e_status load_trust(struct e2e_client *c)
{
	struct e2e_enroll *en = NULL;
	enum e2e_status st;
	uint32_t n;

	st = e2e_enroll_load(&en, E2E_ENROLL_TRUST, NULL, c->cfg.trust_file, 0, c->cfg.err,
		c->cfg.err_len);
	if (st != E2E_OK)
		return st;
	n = e2e_enroll_count(en);
	for (uint32_t i = 0; i < n && c->ntrust < TRUST_MAX; i++) {
		const struct e2e_enroll_entry *e = e2e_enroll_at(en, i);
		struct trusted *t = &c->trust[c->ntrust];

		if (e->revoked)
			continue;
		snprintf(t->name, sizeof t->name, "%s", e->name);
		t->pub = e->pub;
		t->sender = e2e_sender_id(&e->pub);
		/* Two senders whose ids collide could not be told apart: refuse. */
		if (e2e_client_trusted(c, t->sender)) {
			e2e_enroll_free(en);
			return fail(&c->cfg, E2E_ERR_EXISTS, "two trusted senders share a sender id in",
				c->cfg.trust_file);
		}
		c->ntrust++;
	}
	e2e_enroll_free(en);
	return E2E_OK;
}

/*
 * One process per replay state file: two subscribers saving the same file
 * would each write back their own window, and the older one would forget
 * what the newer one accepted, so a replay it saw would be accepted again.
 * The lock lives beside the file ("<file>.lock") for as long as we do.
 */
static enum e2e_status own_state(struct e2e_client *c)
{
	struct e2e_client_config *cfg = &c->cfg;
	char path[PATH_MAX];
	long holder = 0;
	enum e2e_status st;
	int n = snprintf(path, sizeof path, "%s.lock", cfg->state_file);

	if (n < 0 || (size_t)n >= sizeof path)
		return fail(cfg, E2E_ERR_ARG, "replay state path too long:", cfg->state_file);
	st = e2e_lock_own(path, &c->state_lock, &holder);
	if (st == E2E_ERR_BUSY && cfg->err && cfg->err_len) {
		if (holder > 0)
			snprintf(cfg->err, cfg->err_len, "replay state %s is in use by another "
				"process (pid %ld, lock %s): one subscriber per state file", cfg->state_file,
				holder, path);
		else
			snprintf(cfg->err, cfg->err_len, "replay state %s is in use by another "
				"process (lock %s): one subscriber per state file", cfg->state_file, path);
		return st;
	}
	if (st != E2E_OK)
		return fail(cfg, st, "cannot lock replay state", path);
	return E2E_OK;
}

static enum e2e_status setup(struct e2e_client *c)
{
	struct e2e_client_config *cfg = &c->cfg;
	struct e2e_rx_config rc = { cfg->max_streams, cfg->window, NULL, 0 };
	enum e2e_status st;

	st = e2e_identity_load(&c->id, cfg->identity_file);
	if (st != E2E_OK)
		return fail(cfg, st, "cannot load identity", cfg->identity_file);
	c->trust = calloc(TRUST_MAX, sizeof *c->trust);
	if (!c->trust)
		return fail(cfg, E2E_ERR_NOMEM, "trust store", NULL);
	st = load_trust(c);
	if (st == E2E_OK)
		st = e2e_client_fleet_setup(c);
	if (st != E2E_OK)
		return st;
	if (c->ntrust == 0 && c->au.n == 0)
		return fail(cfg, E2E_ERR_NOT_FOUND, "no trusted sender in", cfg->trust_file);
	st = e2e_keyring_create(&c->kr, 64U * (c->ntrust + (c->au.n ? CRED_SENDERS_MAX : 0)));
	if (st != E2E_OK)
		return fail(cfg, st, "key ring", NULL);
	/* A trusted sender's identity key verifies its signed envelopes. */
	for (uint32_t i = 0; i < c->ntrust; i++)
		if (e2e_keyring_set_signer(c->kr, c->trust[i].sender, c->trust[i].pub.sign_pk) != E2E_OK)
			return fail(cfg, E2E_ERR_FULL, "too many senders in", cfg->trust_file);
	/* More replay floors than the ring holds keys: a full floor table
	 * always has a key no longer held to drop (SPEC 5.8). */
	rc.max_floors = 64U * (c->ntrust + CRED_SENDERS_MAX) + 64U > E2E_RX_FLOORS_DEFAULT ?
		64U * (c->ntrust + CRED_SENDERS_MAX) + 64U : E2E_RX_FLOORS_DEFAULT;
	st = e2e_rx_create(&c->rx, &rc);
	if (st != E2E_OK)
		return fail(cfg, st, "replay state", NULL);
	if (cfg->state_file) {
		st = own_state(c);
		if (st != E2E_OK)
			return st;
		st = e2e_rx_load(c->rx, cfg->state_file);
		if (st == E2E_ERR_VERSION && cfg->err && cfg->err_len) {
			snprintf(cfg->err, cfg->err_len, "cannot load replay state %s: it was saved with "
				"another window size than %u (use the window it was saved with; to start "
				"over, remove the file: replays of older messages are then accepted once)",
				cfg->state_file, (unsigned)(rc.window ? rc.window : E2E_WINDOW_DEFAULT));
			return st;
		}
		if (st != E2E_OK && st != E2E_ERR_NOT_FOUND)
			return fail(cfg, st, "cannot load replay state", cfg->state_file);
	}
	{
		/* Sized for 10,000 msg/s with 10 s summaries (SPEC 11.6); open
		 * seqs close when the replay window has passed them. */
		struct e2e_sumcheck_config sc = { 0, 0, cfg->max_streams > 4096 ?
			cfg->max_streams : 0, cfg->window, 0 };

		st = e2e_sumcheck_create(&c->sumcheck, &sc);
	}
	if (st != E2E_OK)
		return fail(cfg, st, "summary check", NULL);
	c->hold = calloc(cfg->hold_max, sizeof *c->hold);
	if (!c->hold)
		return fail(cfg, E2E_ERR_NOMEM, "hold queue", NULL);
	e2e_ctl_reply_topic(c->reply_topic);
	snprintf(c->announce_filter, sizeof c->announce_filter, "%s/+", c->control_topic);
	return E2E_OK;
}

enum e2e_status e2e_client_create(struct e2e_client **out, const struct e2e_client_config *cfg)
{
	struct e2e_client *c = NULL;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!out || !cfg || !cfg->identity_file || !cfg->trust_file)
		goto out;
	*out = NULL;
	ret = E2E_ERR_CRYPTO;
	if (sodium_init() < 0)
		goto out;
	ret = E2E_ERR_NOMEM;
	c = calloc(1, sizeof *c);
	if (!c)
		goto out;
	c->cfg = *cfg;
	c->state_lock = -1;
	c->reprocess = e2e_client_process;
	if (!c->cfg.hold_max) c->cfg.hold_max = 10000;
	if (!c->cfg.hold_ms) c->cfg.hold_ms = 10000;
	if (!c->cfg.save_ms) c->cfg.save_ms = 1000;
	if (!c->cfg.summary_ms) c->cfg.summary_ms = 10000;
	if (!c->cfg.clock_skew_ms) c->cfg.clock_skew_ms = 30000;
	c->control_topic = cfg->control_topic ? cfg->control_topic : E2E_CTL_TOPIC_DEFAULT;
	{
		/* Recursive: e2e_client_stats may be called from inside a callback. */
		pthread_mutexattr_t a;

		pthread_mutexattr_init(&a);
		pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
		pthread_mutex_init(&c->mu, &a);
		pthread_mutexattr_destroy(&a);
	}
	pthread_cond_init(&c->keys_cond, NULL);
	ret = setup(c);
	if (ret != E2E_OK)
		goto out;
	ret = e2e_session_init(&c->sess, &cfg->conn, on_msg, on_state, c, cfg->err, cfg->err_len);
	if (ret != E2E_OK)
		goto out;
	c->sess_ready = 1;
	/* Our reply topic and the senders' announcements, before any data. */
	if (e2e_session_subscribe(&c->sess, c->reply_topic, 1, 0) != E2E_OK ||
	    e2e_session_subscribe(&c->sess, c->announce_filter, 1, 0) != E2E_OK ||
	    (c->au.n && e2e_session_subscribe(&c->sess, c->authority_filter, 1, 0) != E2E_OK)) {
		ret = fail(&c->cfg, E2E_ERR_FULL, "subscriptions", NULL);
		goto out;
	}
	/* Only now may destroy write the state file: a failed start leaves it
	 * byte for byte as it was (an empty or half-loaded receiver saved over
	 * it would wipe the replay history). */
	c->state_ok = 1;
	*out = c;
	c = NULL;
out:
	e2e_client_destroy(c);
	return ret;
}

enum e2e_status e2e_client_subscribe(struct e2e_client *c, const char *filter, int qos)
{
	if (!c || !filter || !*filter || qos < 0 || qos > 2)
		return E2E_ERR_ARG;
	return e2e_session_subscribe(&c->sess, filter, qos, 5000);
}

enum e2e_status e2e_client_unsubscribe(struct e2e_client *c, const char *filter)
{
	if (!c || !filter || !*filter)
		return E2E_ERR_ARG;
	return e2e_session_unsubscribe(&c->sess, filter);
}

enum e2e_status e2e_client_wait_subscribed(struct e2e_client *c, uint32_t timeout_ms)
{
	if (!c)
		return E2E_ERR_ARG;
	return e2e_session_wait_subscribed(&c->sess, timeout_ms) == 0 ? E2E_OK : E2E_ERR_IO;
}

enum e2e_status e2e_client_connect(struct e2e_client *c, uint32_t timeout_ms)
{
	enum e2e_status st;

	if (!c)
		return E2E_ERR_ARG;
	st = e2e_session_connect(&c->sess, timeout_ms, c->cfg.err, c->cfg.err_len);
	if (st != E2E_OK)
		return st;
	/* Answers come on the reply topic: be subscribed before asking. */
	if (e2e_session_subscribe_now(&c->sess, c->reply_topic, 1, (int)timeout_ms) != E2E_OK)
		e2e_client_event(c, E2E_EV_ERROR, 0, 0, 0, "reply topic subscription not confirmed");
	pthread_mutex_lock(&c->mu);
	for (uint32_t i = 0; i < c->ntrust; i++)
		e2e_client_request_keys(c, &c->trust[i]);
	if (!c->ticker_running && pthread_create(&c->ticker, NULL, ticker, c) == 0)
		c->ticker_running = 1;
	pthread_mutex_unlock(&c->mu);
	e2e_client_flush(c);
	return c->ticker_running ? E2E_OK : E2E_ERR_NOMEM;
}

enum e2e_status e2e_client_wait_keys(struct e2e_client *c, uint32_t timeout_ms)
{
	uint64_t end = e2e_mono_ms() + timeout_ms;
	int pending = 1;

	if (!c)
		return E2E_ERR_ARG;
	pthread_mutex_lock(&c->mu);
	while (pending) {
		struct timespec ts;

		pending = 0;
		for (uint32_t i = 0; i < c->ntrust; i++)
			pending |= c->trust[i].pending;
		if (!pending || e2e_mono_ms() >= end)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->keys_cond, &c->mu, &ts);
	}
	pthread_mutex_unlock(&c->mu);
	return pending ? E2E_ERR_IO : E2E_OK;
}

void e2e_client_stats(struct e2e_client *c, struct e2e_client_stats *st)
{
	struct e2e_rx_stats rs;

	if (!c || !st)
		return;
	pthread_mutex_lock(&c->mu);
	*st = c->st;
	e2e_rx_stats(c->rx, &rs);
	st->pending = rs.pending;
	st->lost = rs.lost;
	st->floors_dropped = rs.floors_dropped;
	st->held_now = c->hold_count;
	pthread_mutex_unlock(&c->mu);
}

void e2e_client_destroy(struct e2e_client *c)
{
	if (!c)
		return;
	if (c->ticker_running) {
		pthread_mutex_lock(&c->mu);
		c->stop = 1;
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->ticker, NULL);
	}
	if (c->sess_ready)
		e2e_session_fini(&c->sess);   /* no more callbacks after this */
	if (c->hold) {
		e2e_client_release(c, e2e_mono_ms(), 1);
		free(c->hold);
	}
	if (c->rx && c->state_ok) {
		c->dirty = 1;
		save_state(c);
	}
	/* Summaries still waiting are dropped, not checked early (false alarms). */
	for (uint32_t i = 0; i < c->nsumq; i++)
		free(c->sumq[i].msg);
	e2e_sumcheck_destroy(c->sumcheck);
	e2e_rx_destroy(c->rx);
	e2e_keyring_destroy(c->kr);
	e2e_client_fleet_free(c);
	if (c->trust)
		sodium_memzero(c->trust, TRUST_MAX * sizeof *c->trust);
	free(c->trust);
	e2e_identity_destroy(&c->id);
	/* After the last save: the next owner must see our final window. */
	if (c->state_lock >= 0)
		e2e_dir_unlock(c->state_lock);
	free(c->pt);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->keys_cond);
	free(c);
}
