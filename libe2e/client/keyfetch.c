/*
 * Fetching payload keys for the subscriber client (protocol/SPEC.md 11.2):
 * one outstanding signed request per trusted sender, answered on the
 * client's private reply topic, matched by request hash, retried with
 * exponential back-off. Runs with the client lock held.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

#define RETRY_FIRST_MS 2000U
#define RETRY_MAX_MS 30000U
#define RESEND_AFTER_MS 500U
#define REFUSED_FIRST_MS 5000U
#define REFUSED_MAX_MS 300000U


/* Remember the hash of our current request as one we gave up on. */
static void give_up(struct trusted *t)
{
	/* A rate-limited request was given up on already: once is enough. */
	if (t->old_next && sodium_memcmp(t->old_hash[(t->old_next - 1) % REQ_OLD], t->req_hash,
			sizeof t->req_hash) == 0)
		return;
	memcpy(t->old_hash[t->old_next % REQ_OLD], t->req_hash, sizeof t->req_hash);
	t->old_next++;
}

/*
 * An answer to a request we gave up on: dropped quietly, once. Taking the
 * hash out means a second copy (a replay) is reported like any other.
 */
static int late_answer(struct trusted *t, const uint8_t hash[E2E_CTL_HASH_BYTES])
{
	static const uint8_t none[E2E_CTL_HASH_BYTES];

	if (sodium_memcmp(hash, none, sizeof none) == 0)
		return 0;
	for (uint32_t i = 0; i < REQ_OLD; i++) {
		if (sodium_memcmp(hash, t->old_hash[i], sizeof t->old_hash[i]) == 0) {
			memset(t->old_hash[i], 0, sizeof t->old_hash[i]);
			return 1;
		}
	}
	return 0;
}

/* Queue a new signed request (replacing an unanswered one). */
static void send_request(struct e2e_client *c, struct trusted *t)
{
	struct outmsg *o;
	struct e2e_ctl req;
	enum e2e_status st;

	if (c->out_count == OUTBOX_MAX) {
		/* Oldest queued request gives way; its sender is retried later. */
		c->out_head = (c->out_head + 1) % OUTBOX_MAX;
		c->out_count--;
	}
	o = &c->outbox[(c->out_head + c->out_count) % OUTBOX_MAX];
	st = e2e_ctl_request_cred(o->msg, sizeof o->msg, &o->len, &req, t->eph_sk, &c->id,
		t->sender, NULL, 0, c->reply_topic, c->control_topic, c->cred_len ? c->cred : NULL,
		c->cred_len, e2e_now_ms());
	if (st != E2E_OK) {
		e2e_client_event(c, E2E_EV_ERROR, t->sender, 0, 0, e2e_strerror(st));
		return;
	}
	memcpy(t->eph_pk, req.eph_pk, sizeof t->eph_pk);
	if (t->pending)
		give_up(t);
	e2e_ctl_hash(t->req_hash, o->msg, o->len);
	o->sender = t->sender;
	c->out_count++;
	t->pending = 1;
	t->again = 0;
	t->sent_mono = e2e_mono_ms();
	t->attempts++;
	c->st.key_requests++;
	e2e_ctl_wipe(&req);
}

void e2e_client_request_keys(struct e2e_client *c, struct trusted *t)
{
	/* Refused: every data message of a busy topic would ask again at once.
	 * An operator's enrollment is picked up at the next try (5 s after the
	 * first refusal, then 10 s, 20 s ... at most 5 min). */
	if (t->revoked || (!t->pending && t->quiet_until && e2e_mono_ms() < t->quiet_until))
		return;
	if (t->pending) {
		/* Data from this sender proves it is up now: an old unanswered
		 * request (sent before it started) is not worth waiting out. */
		if (e2e_mono_ms() - t->sent_mono < RESEND_AFTER_MS) {
			t->again = 1;   /* ask once more when the current answer is in */
			return;
		}
		t->attempts = 0;
	}
	send_request(c, t);
}

void e2e_client_flush(struct e2e_client *c)
{
	struct outmsg o;

	for (;;) {
		pthread_mutex_lock(&c->mu);
		if (c->out_count == 0) {
			pthread_mutex_unlock(&c->mu);
			return;
		}
		o = c->outbox[c->out_head];
		c->out_head = (c->out_head + 1) % OUTBOX_MAX;
		c->out_count--;
		pthread_mutex_unlock(&c->mu);
		/* A lost request is retried by the ticker after its timeout. */
		if (e2e_session_publish(&c->sess, c->control_topic, o.msg, o.len, 1, 0) != E2E_OK) {
			pthread_mutex_lock(&c->mu);
			e2e_client_event(c, E2E_EV_ERROR, o.sender, 0, 0,
				"cannot publish key request (will retry)");
			pthread_mutex_unlock(&c->mu);
		}
	}
}

static void finish_request(struct e2e_client *c, struct trusted *t)
{
	t->pending = 0;
	t->attempts = 0;
	sodium_memzero(t->eph_sk, sizeof t->eph_sk);   /* forward secrecy */
	pthread_cond_broadcast(&c->keys_cond);
}

/* The trusted sender whose outstanding request has hash @p h, or NULL. */
static struct trusted *asked(struct e2e_client *c, const uint8_t h[E2E_CTL_HASH_BYTES])
{
	for (uint32_t i = 0; i < c->ntrust; i++)
		if (c->trust[i].pending &&
		    sodium_memcmp(c->trust[i].req_hash, h, E2E_CTL_HASH_BYTES) == 0)
			return &c->trust[i];
	return NULL;
}

/* The sender's map and summary interval, as delivered (SPEC 11.2): from now
 * on its envelopes are accepted only under the scope it uses per topic. */
static enum e2e_status install_profile(struct e2e_client *c, struct trusted *t,
	const struct e2e_ctl *m)
{
	struct e2e_scope_rule *rules = calloc(m->nrules, sizeof *rules);
	struct e2e_ctl_rule_iter it;
	uint32_t n = 0;
	enum e2e_status st = E2E_ERR_NOMEM;

	if (!rules)
		goto out;
	e2e_ctl_rules_init(&it, m);
	while (n < m->nrules && e2e_ctl_rule_next(&it, &rules[n]))
		n++;
	if (n == m->nrules && t->via_cred)
		n = e2e_client_cred_rules(t, rules, n);   /* only what its credential allows */
	st = n == m->nrules || (t->via_cred && n) ? e2e_keyring_set_profile(c->kr, t->sender,
		rules, n, m->summary_interval_ms) : E2E_ERR_MALFORMED;
	if (st == E2E_OK)
		t->maps++;   /* messages held for a newer map are decided now */
out:
	free(rules);
	return st;
}

void e2e_client_on_reply(struct e2e_client *c, const uint8_t *msg, size_t len)
{
	struct e2e_ctl m;
	struct trusted *t, *target;
	uint8_t *plain = NULL;
	char detail[200];
	enum e2e_status st;
	int profiled = 0;

	/* The issuer named in the message picks the key that must have signed
	 * it: read through the control parser (layout only, nothing trusted). */
	st = e2e_ctl_peek(&m, msg, len);
	if (st != E2E_OK) {
		c->st.control_rejected++;
		snprintf(detail, sizeof detail, "malformed message on reply topic: %s",
			e2e_strerror(st));
		e2e_client_event(c, E2E_EV_CONTROL_REJECTED, 0, 0, 0, detail);
		return;
	}
	t = e2e_client_trusted(c, m.sender);
	e2e_ctl_wipe(&m);
	if (!t) {
		c->st.control_rejected++;
		e2e_client_event(c, E2E_EV_CONTROL_REJECTED, 0, 0, 0, "reply from an untrusted sender");
		return;
	}
	st = t->revoked ? E2E_ERR_AUTH : t->via_cred ? e2e_client_cred_reply(c, t, &m, msg, len) :
		e2e_ctl_parse(&m, msg, len, c->reply_topic, &t->pub);
	if (st == E2E_OK && (m.type != E2E_CTL_DELIVERY && m.type != E2E_CTL_REFUSAL))
		st = E2E_ERR_MALFORMED;
	/* The late answer to a request we replaced: expected, not an attack. */
	if (st == E2E_OK && late_answer(t, m.request_hash)) {
		e2e_ctl_wipe(&m);
		return;
	}
	/*
	 * Bound to our outstanding request to exactly this sender (SPEC 11.4):
	 * an old or redirected answer fails the hash, and an answer signed by
	 * another trusted sender than the one we asked is refused even though
	 * its signature is good (it would install that sender's map and keys
	 * under the wrong name otherwise).
	 */
	target = st == E2E_OK ? asked(c, m.request_hash) : NULL;
	if (st == E2E_OK && target && target != t)
		st = E2E_ERR_AUTH;
	else if (st == E2E_OK && (!t->pending ||
	    sodium_memcmp(m.request_hash, t->req_hash, sizeof t->req_hash) != 0))
		st = E2E_ERR_EXISTS;
	if (st == E2E_OK && m.type == E2E_CTL_DELIVERY) {
		plain = malloc(E2E_CTL_PLAIN_MAX);
		st = plain ? e2e_ctl_open_delivery(&m, t->eph_pk, t->eph_sk, plain,
			E2E_CTL_PLAIN_MAX) : E2E_ERR_NOMEM;
	}
	if (st != E2E_OK) {
		c->st.control_rejected++;
		snprintf(detail, sizeof detail, "key answer from %s rejected: %s", t->name,
			st == E2E_ERR_EXISTS ? "not an answer to our request (replayed or redirected)" :
			st == E2E_ERR_AUTH && target && target != t ?
			"it answers our request to another sender" : e2e_strerror(st));
		e2e_client_event(c, E2E_EV_CONTROL_REJECTED, t->sender, 0, 0, detail);
		goto out;
	}
	if (m.type == E2E_CTL_REFUSAL) {
		c->st.refusals++;
		if (m.reason == E2E_REFUSE_RATE) {
			/* Not a no: ask again when the back-off timer fires. */
			t->sent_mono = e2e_mono_ms();
			give_up(t);
			snprintf(detail, sizeof detail, "%s is rate-limiting our key requests; "
				"retrying", t->name);
			e2e_client_event(c, E2E_EV_KEY_TIMEOUT, t->sender, 0, 0, detail);
			goto out;
		}
		finish_request(c, t);
		t->quiet_ms = !t->quiet_ms ? REFUSED_FIRST_MS :
			t->quiet_ms >= REFUSED_MAX_MS / 2 ? REFUSED_MAX_MS : t->quiet_ms * 2;
		t->quiet_until = e2e_mono_ms() + t->quiet_ms;
		snprintf(detail, sizeof detail, "%s refused our key request: %s (next request in "
			"%u s)", t->name, e2e_refusal_name(m.reason), t->quiet_ms / 1000);
		e2e_client_event(c, E2E_EV_KEY_REFUSED, t->sender, 0, 0, detail);
		goto out;
	}
	/* The map first: keys without it would leave every envelope UNKNOWN_KEY. */
	st = install_profile(c, t, &m);
	profiled = st == E2E_OK;
	if (st != E2E_OK)
		e2e_client_event(c, E2E_EV_ERROR, t->sender, 0, 0, e2e_strerror(st));
	for (uint8_t i = 0; i < m.nkeys; i++) {
		struct e2e_keyid id = { t->sender, m.keys[i].scope, m.keys[i].epoch };
		int known = e2e_keyring_find(c->kr, &id, 0) != NULL;
		uint64_t not_after;
		uint8_t flags = e2e_client_key_flags(&m.keys[i], &not_after);

		st = e2e_keyring_add_flags(c->kr, &id, m.keys[i].key, not_after, flags);
		if (st != E2E_OK && st != E2E_ERR_EXISTS) {
			e2e_client_event(c, E2E_EV_ERROR, t->sender, id.scope, id.epoch, e2e_strerror(st));
			continue;
		}
		if (st == E2E_ERR_EXISTS) {
			/* Same id, different key: the sender lost its key file. */
			e2e_client_event(c, E2E_EV_CONTROL_REJECTED, t->sender, id.scope, id.epoch,
				"sender delivered a different key for an epoch we hold");
			continue;
		}
		if (known)
			continue;   /* a key we hold, sent again with its deadline */
		c->st.keys_received++;
		e2e_client_event(c, E2E_EV_KEY_RECEIVED, t->sender, id.scope, id.epoch, t->name);
	}
	e2e_client_after_delivery(c, t, &m);
	finish_request(c, t);
	t->quiet_ms = 0;   /* keys delivered: a later refusal starts the wait anew */
	t->quiet_until = 0;
	/* Holding its keys, we expect its summaries at the interval its signed
	 * delivery names (0: it sends none): a broker that withholds them from
	 * our first connection on is reported stalled (SPEC 11.4, 11.6). */
	e2e_client_expect_summaries(c, t, profiled ? m.summary_interval_ms : c->cfg.summary_ms,
		e2e_mono_ms());
	e2e_client_release(c, e2e_mono_ms(), 0);
	for (uint32_t i = 0; i < t->nwant; i++)
		if (!e2e_keyring_find(c->kr, &t->want[i], 0))
			t->again = 1;   /* the answer predates that rotation */
	t->nwant = 0;
	if (t->again)
		e2e_client_request_keys(c, t);
out:
	if (plain) {
		sodium_memzero(plain, E2E_CTL_PLAIN_MAX);
		free(plain);
	}
	e2e_ctl_wipe(&m);
}

void e2e_client_on_announce(struct e2e_client *c, const char *topic, const uint8_t *msg,
	size_t len)
{
	const char *hex = strrchr(topic, '/');
	unsigned long sender;
	struct trusted *t;
	struct e2e_ctl m;
	struct e2e_keyid id;
	char *end;

	sender = hex ? strtoul(hex + 1, &end, 16) : 0;
	t = hex && *end == '\0' ? e2e_client_trusted(c, (uint32_t)sender) : NULL;
	if (!t || t->provisional || t->revoked || e2e_client_announce_moot(c, t, msg, len))
		return;   /* not a sender we trust, or nothing to do: not our business */
	if (e2e_ctl_parse(&m, msg, len, topic, &t->pub) != E2E_OK || m.sender != t->sender ||
	    (m.type != E2E_CTL_ANNOUNCE && m.type != E2E_CTL_SUMMARY)) {
		c->st.control_rejected++;
		e2e_client_event(c, E2E_EV_CONTROL_REJECTED, t->sender, 0, 0,
			"announcement or summary failed verification");
		return;
	}
	if (m.type == E2E_CTL_SUMMARY) {
		e2e_client_on_summary(c, t, topic, msg, len, &m);
		return;
	}
	/* Older announcements (replays) change nothing. The same millisecond
	 * is not older: a rotation of several scopes announces each at once,
	 * and the second one's epoch must be noted too (SPEC 11.5). */
	if (m.time_ms < t->last_announce_ms)
		return;
	t->last_announce_ms = m.time_ms;
	/* From now on the older epochs of this scope are retired (SPEC 11.5):
	 * a revoked member must not forge while our key request is on its way. */
	if (e2e_keyring_note_epoch(c->kr, t->sender, m.scope, m.epoch) != E2E_OK)
		e2e_client_event(c, E2E_EV_ERROR, t->sender, m.scope, m.epoch,
			"cannot note the announced epoch (too many senders)");
	id = (struct e2e_keyid){ t->sender, m.scope, m.epoch };
	if (e2e_keyring_find(c->kr, &id, e2e_now_ms()) || !e2e_client_wants_scope(c, t, m.scope))
		return;
	/* The answer to the request just sent (for another scope's
	 * announcement, moments ago) most likely brings this key too: a second
	 * request per subscriber and sender at each rotation doubled the storm
	 * every key service sees (docs/performance.md, "Many senders"). */
	if (t->pending && e2e_mono_ms() - t->sent_mono < RESEND_AFTER_MS && t->nwant < WANT_MAX) {
		uint32_t i = 0;

		while (i < t->nwant && (t->want[i].scope != id.scope || t->want[i].epoch != id.epoch))
			i++;
		if (i == t->nwant)
			t->want[t->nwant++] = id;
		return;
	}
	c->st.announce_requests++;
	e2e_client_request_keys(c, t);
}

void e2e_client_retry_requests(struct e2e_client *c, uint64_t mono)
{
	for (uint32_t i = 0; i < c->ntrust; i++) {
		struct trusted *t = &c->trust[i];
		uint64_t wait = RETRY_FIRST_MS;
		char detail[120];

		if (!t->pending)
			continue;
		for (uint32_t a = 1; a < t->attempts && wait < RETRY_MAX_MS; a++)
			wait *= 2;
		if (wait > RETRY_MAX_MS)
			wait = RETRY_MAX_MS;
		if (mono - t->sent_mono < wait)
			continue;
		snprintf(detail, sizeof detail, "no answer from %s after %u ms (attempt %u); retrying",
			t->name, (unsigned)wait, t->attempts);
		e2e_client_event(c, E2E_EV_KEY_TIMEOUT, t->sender, 0, 0, detail);
		send_request(c, t);   /* keeps the back-off going */
	}
}

/* Keys made ahead (nextkeys.c): ask again in the refresh window a delivery named. */
void e2e_client_refresh_keys(struct e2e_client *c, uint64_t now_ms)
{
	for (uint32_t i = 0; i < c->ntrust; i++) {
		struct trusted *t = &c->trust[i];

		/* A request on its way: its answer brings them, and sets the next
		 * refresh; if it is not answered, ask at the next tick. */
		if (!t->refresh_at || now_ms < t->refresh_at || t->pending)
			continue;
		t->refresh_at = 0;   /* the answer sets the next one */
		c->st.ahead_requests++;
		e2e_client_request_keys(c, t);
	}
}
