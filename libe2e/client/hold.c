/*
 * Messages that wait for a key (verdict UNKNOWN_KEY from a trusted sender)
 * are held, bounded in number and time, and re-processed when keys arrive.
 * A message that cannot be held or waits too long is reported to the app as
 * UNKNOWN_KEY: never dropped silently. Messages FORGED by a sender's topic
 * map wait the same way for the next map (ours may predate a reload of its
 * scopes) and then get the verdict of that map, FORGED at the latest at the
 * timeout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

/* A retired-key envelope waits at most this many summary intervals. */
#define RETIRED_INTERVALS 3U

static void report(struct e2e_client *c, struct held *h)
{
	struct e2e_client_msg m;
	struct e2e_header hdr;
	struct trusted *t = e2e_client_trusted(c, h->sender);

	memset(&m, 0, sizeof m);
	m.topic = h->topic;
	m.verdict = E2E_V_UNKNOWN_KEY;
	m.sender = h->sender;
	m.sender_name = t ? t->name : NULL;
	/* Held messages passed the header check when they arrived. */
	if (h->env && e2e_header_parse(&hdr, h->env, h->len) == E2E_OK) {
		m.scope = hdr.scope;
		m.epoch = hdr.epoch;
		m.seq = hdr.seq;
	}
	m.qos = h->qos;
	m.retained = h->retained;
	c->st.verdicts[E2E_V_UNKNOWN_KEY]++;
	if (c->cfg.on_message)
		c->cfg.on_message(c->cfg.ctx, &m);
}

/* Give up waiting: a key waiter is reported UNKNOWN_KEY, a map waiter gets
 * its verdict under the map we have (FORGED if it still disagrees). */
static void retired_unconfirmed(struct e2e_client *c, const char *topic, const uint8_t *env,
	size_t len, int qos, int retained, const char *why);

static void give_up(struct e2e_client *c, struct held *h)
{
	if (h->retired && h->env)
		retired_unconfirmed(c, h->topic, h->env, h->len, h->qos, h->retained,
			"no room to wait for its summary");
	else if (h->await_map && h->env)
		c->reprocess(c, h->topic, h->env, h->len, h->qos, h->retained, 1);
	else
		report(c, h);
}

static void drop(struct held *h)
{
	free(h->topic);
	free(h->env);
	memset(h, 0, sizeof *h);
}

/* A message that found no room in the hold queue is reported at once, as
 * a held one would be when given up. */
static void report_unheld(struct e2e_client *c, const char *topic, size_t len, int qos,
	int retained, uint32_t sender)
{
	struct held tmp;

	memset(&tmp, 0, sizeof tmp);
	tmp.topic = (char *)(uintptr_t)topic;
	tmp.len = len;
	tmp.qos = qos;
	tmp.retained = retained;
	tmp.sender = sender;
	report(c, &tmp);
}

static struct held *hold_slot(struct e2e_client *c, const char *topic, const uint8_t *env,
	size_t len, int qos, int retained, uint32_t sender, int await_map)
{
	struct trusted *t = e2e_client_trusted(c, sender);
	uint32_t cap = c->cfg.hold_max;
	struct held *h;

	if (c->hold_count == cap) {
		/* Full: the oldest gives way and is reported. Out of the ring
		 * first: deciding it may hold another message (a retired key). */
		struct held old = c->hold[c->hold_head];

		memset(&c->hold[c->hold_head], 0, sizeof c->hold[0]);
		c->hold_head = (c->hold_head + 1) % cap;
		c->hold_count--;
		give_up(c, &old);
		drop(&old);
		if (c->hold_count == cap) {
			report_unheld(c, topic, len, qos, retained, sender);
			return NULL;
		}
	}
	h = &c->hold[(c->hold_head + c->hold_count) % cap];
	h->topic = strdup(topic);
	h->env = malloc(len ? len : 1);
	if (!h->topic || !h->env) {
		drop(h);
		report_unheld(c, topic, len, qos, retained, sender);
		return NULL;
	}
	memcpy(h->env, env, len);
	h->len = len;
	h->qos = qos;
	h->retained = retained;
	h->sender = sender;
	h->await_map = await_map;
	h->maps = t ? t->maps : 0;
	h->since_mono = e2e_mono_ms();
	c->hold_count++;
	c->st.held++;
	return h;
}

void e2e_client_hold(struct e2e_client *c, const char *topic, const uint8_t *env, size_t len,
	int qos, int retained, uint32_t sender, int await_map)
{
	(void)hold_slot(c, topic, env, len, qos, retained, sender, await_map);
}

/*
 * The end of a held retired-key envelope that is not delivered (SPEC 11.5):
 * FORGED with an insider-forgery event when its sender's summaries say so
 * (only a holder of the retired key, e.g. a revoked member, can seal it), or
 * UNKNOWN_KEY with a "could not be confirmed" event and no accusation when
 * nothing this subscriber saw can confirm or refute it (no summaries for it,
 * summaries withheld, or it arrived before any summary of its sender, as a
 * retained message at start does).
 */
static void retired_end(struct e2e_client *c, const char *topic, const uint8_t *env,
	size_t len, int qos, int retained, int forged, const char *why)
{
	struct e2e_client_msg m;
	struct e2e_header hdr;
	struct trusted *t;
	char d[600];

	memset(&m, 0, sizeof m);
	if (e2e_header_parse(&hdr, env, len) != E2E_OK)
		return;
	t = e2e_client_trusted(c, hdr.sender);
	m.topic = topic;
	m.verdict = forged ? E2E_V_FORGED : E2E_V_UNKNOWN_KEY;
	m.sender = hdr.sender;
	m.sender_name = t ? t->name : NULL;
	m.scope = hdr.scope;
	m.epoch = hdr.epoch;
	m.seq = hdr.seq;
	m.qos = qos;
	m.retained = retained;
	c->st.verdicts[m.verdict]++;
	if (forged) {
		c->st.retired_forged++;
		snprintf(d, sizeof d, "retired key forgery: message on '%.200s' seq %u (run %08x) "
			"sealed under %s's retired epoch %u is %s (sealed by another holder of the "
			"old key, e.g. a revoked member)", topic, hdr.seq, hdr.run,
			t ? t->name : "?", hdr.epoch, why);
	} else {
		c->st.retired_unconfirmed++;
		snprintf(d, sizeof d, "not delivered: message on '%.200s' seq %u (run %08x) under "
			"%s's retired epoch %u could not be confirmed: %s", topic, hdr.seq, hdr.run,
			t ? t->name : "?", hdr.epoch, why);
	}
	e2e_client_event(c, forged ? E2E_EV_INSIDER_FORGERY : E2E_EV_UNCHECKED, hdr.sender,
		hdr.scope, hdr.epoch, d);
	if (c->cfg.on_message)
		c->cfg.on_message(c->cfg.ctx, &m);
}

static void retired_forged(struct e2e_client *c, const char *topic, const uint8_t *env,
	size_t len, int qos, int retained, const char *why)
{
	retired_end(c, topic, env, len, qos, retained, 1, why);
}

static void retired_unconfirmed(struct e2e_client *c, const char *topic, const uint8_t *env,
	size_t len, int qos, int retained, const char *why)
{
	retired_end(c, topic, env, len, qos, retained, 0, why);
}

/* 1 when held retired-key envelope @p h got its verdict (delivered or FORGED). */
static int retired_decided(struct e2e_client *c, const struct held *h, uint64_t mono,
	int flush_all)
{
	struct e2e_header hdr;
	const struct trusted *t;
	enum e2e_sum_verdict v;

	if (e2e_header_parse(&hdr, h->env, h->len) != E2E_OK)
		return 1;
	v = e2e_sumcheck_verify(c->sumcheck, hdr.sender, hdr.run, h->topic, strlen(h->topic),
		hdr.seq, h->env, h->len, e2e_mono_ms(), e2e_client_sum_report, c);
	if (v == E2E_SUMV_VERIFIED) {
		c->reprocess(c, h->topic, h->env, h->len, h->qos, h->retained, FROM_CONFIRMED);
		return 1;
	}
	if (v == E2E_SUMV_FORGED) {
		retired_forged(c, h->topic, h->env, h->len, h->qos, h->retained,
			"contradicted by its sender's summary");
		return 1;
	}
	t = e2e_client_trusted(c, hdr.sender);
	/* Two summaries checked after it without listing it, by a subscriber
	 * that had already received one before it arrived: the sender did not
	 * seal it. Arrived before any summary (retained at start): it may be
	 * in one this subscriber never saw, so it is only unconfirmed. */
	if (t && t->sum_checked - h->sums_at >= 2) {
		if (h->after_summary)
			retired_forged(c, h->topic, h->env, h->len, h->qos, h->retained,
				"in no summary of its sender");
		else
			retired_unconfirmed(c, h->topic, h->env, h->len, h->qos, h->retained,
				"it came before any summary of its sender and none since lists it");
		return 1;
	}
	if (mono >= h->until_mono) {
		retired_unconfirmed(c, h->topic, h->env, h->len, h->qos, h->retained,
			"no summary of its sender came in time (withheld?)");
		return 1;
	}
	if (flush_all) {
		/* Shutting down before its summary: not judged, not delivered. */
		struct held tmp = *h;

		tmp.retired = 0;
		report(c, &tmp);
		return 1;
	}
	return 0;
}

void e2e_client_hold_retired(struct e2e_client *c, const char *topic, const uint8_t *env,
	size_t len, int qos, int retained, const struct e2e_header *hdr)
{
	struct trusted *t = e2e_client_trusted(c, hdr->sender);
	enum e2e_sum_verdict v = E2E_SUMV_UNKNOWN;
	uint32_t interval = t && t->sum_interval_ms ? t->sum_interval_ms : 0;
	uint64_t wait;
	struct held *h;

	c->st.retired_held++;
	/* Summaries off for this sender: nothing can ever confirm it. Topics we
	 * receive only through a shared subscription are never checked either. */
	if (!interval || !e2e_client_summarized(c, topic, strlen(topic))) {
		retired_unconfirmed(c, topic, env, len, qos, retained,
			"no summaries for this topic (summaries off, or a shared subscription)");
		return;
	}
	v = e2e_sumcheck_hold(c->sumcheck, hdr->sender, hdr->run, topic, strlen(topic),
		hdr->seq, env, len, e2e_mono_ms(), e2e_client_sum_report, c);
	if (v == E2E_SUMV_VERIFIED) {
		c->reprocess(c, topic, env, len, qos, retained, FROM_CONFIRMED);
		return;
	}
	if (v == E2E_SUMV_FORGED) {
		retired_forged(c, topic, env, len, qos, retained,
			"contradicted by its sender's summary");
		return;
	}
	h = hold_slot(c, topic, env, len, qos, retained, hdr->sender, 0);
	if (!h)
		return;
	h->retired = 1;
	h->sums_at = t->sum_checked;
	h->after_summary = t->sum_boot != 0;
	wait = (uint64_t)interval * RETIRED_INTERVALS + SUMMARY_DELAY_MS;
	h->until_mono = h->since_mono + (wait > c->cfg.hold_ms ? wait : c->cfg.hold_ms);
}

void e2e_client_release_retired(struct e2e_client *c, uint64_t mono)
{
	uint32_t n = c->hold_count, cap = c->cfg.hold_max;

	for (uint32_t k = 0; k < n; k++) {
		struct held h = c->hold[c->hold_head];

		memset(&c->hold[c->hold_head], 0, sizeof c->hold[0]);
		c->hold_head = (c->hold_head + 1) % cap;
		c->hold_count--;
		if (h.retired && retired_decided(c, &h, mono, 0)) {
			drop(&h);
			continue;
		}
		c->hold[(c->hold_head + c->hold_count) % cap] = h;
		c->hold_count++;
	}
}

/* 1 if held message @p h can get its final verdict now. */
static int decidable(struct e2e_client *c, const struct held *h)
{
	struct e2e_header hdr;
	struct e2e_keyid id;
	const struct trusted *t;
	enum e2e_status rs;
	uint8_t sc = 0;

	if (e2e_header_parse(&hdr, h->env, h->len) != E2E_OK)
		return 0;
	rs = e2e_keyring_resolve(c->kr, hdr.sender, (const uint8_t *)h->topic, strlen(h->topic),
		&sc);
	if (rs != E2E_ERR_UNKNOWN_KEY && (rs != E2E_OK || sc != hdr.scope)) {
		/* The map refuses it (FORGED, no key needed); one that a map
		 * already refused waits for a newer map of the sender. */
		t = e2e_client_trusted(c, hdr.sender);
		return !h->await_map || (t && t->maps != h->maps);
	}
	id = (struct e2e_keyid){ hdr.sender, hdr.scope, hdr.epoch };
	return e2e_keyring_find(c->kr, &id, e2e_now_ms()) != NULL;
}

void e2e_client_release(struct e2e_client *c, uint64_t mono, int flush_all)
{
	uint32_t n = c->hold_count, cap = c->cfg.hold_max;

	/* Take every held message out once, in arrival order; those still
	 * undecided go back to the end of the ring (or expire). */
	for (uint32_t k = 0; k < n; k++) {
		struct held h = c->hold[c->hold_head];

		memset(&c->hold[c->hold_head], 0, sizeof c->hold[0]);
		c->hold_head = (c->hold_head + 1) % cap;
		c->hold_count--;
		if (h.retired) {
			if (retired_decided(c, &h, mono, flush_all))
				drop(&h);
			else
				goto keep;
			continue;
		}
		if (decidable(c, &h)) {
			c->reprocess(c, h.topic, h.env, h.len, h.qos, h.retained, 1);
			drop(&h);
			continue;
		}
		if (flush_all || mono - h.since_mono >= c->cfg.hold_ms) {
			give_up(c, &h);
			drop(&h);
			continue;
		}
keep:
		c->hold[(c->hold_head + c->hold_count) % cap] = h;
		c->hold_count++;
	}
}
