/*
 * Messages that wait for a key (verdict UNKNOWN_KEY from a trusted sender)
 * are held, bounded in number and time, and re-processed when keys arrive.
 * A message that cannot be held or waits too long is reported to the app as
 * UNKNOWN_KEY: never dropped silently. Messages FORGED by a sender's topic
 * map wait the same way for the next map (ours may predate a reload of its
 * scopes) and then get the verdict of that map, FORGED at the latest at the
 * timeout.
 */
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

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
static void give_up(struct e2e_client *c, struct held *h)
{
	if (h->await_map && h->env)
		e2e_client_process(c, h->topic, h->env, h->len, h->qos, h->retained, 1);
	else
		report(c, h);
}

static void drop(struct held *h)
{
	free(h->topic);
	free(h->env);
	memset(h, 0, sizeof *h);
}

void e2e_client_hold(struct e2e_client *c, const char *topic, const uint8_t *env, size_t len,
	int qos, int retained, uint32_t sender, int await_map)
{
	struct trusted *t = e2e_client_trusted(c, sender);
	uint32_t cap = c->cfg.hold_max;
	struct held *h;

	if (c->hold_count == cap) {
		/* Full: the oldest gives way and is reported. */
		h = &c->hold[c->hold_head];
		give_up(c, h);
		drop(h);
		c->hold_head = (c->hold_head + 1) % cap;
		c->hold_count--;
	}
	h = &c->hold[(c->hold_head + c->hold_count) % cap];
	h->topic = strdup(topic);
	h->env = malloc(len ? len : 1);
	if (!h->topic || !h->env) {
		struct held tmp = { (char *)(uintptr_t)topic, NULL, len, qos, retained, 0, sender,
			0, 0 };

		drop(h);
		report(c, &tmp);
		return;
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
		if (decidable(c, &h)) {
			e2e_client_process(c, h.topic, h.env, h.len, h.qos, h.retained, 1);
			drop(&h);
			continue;
		}
		if (flush_all || mono - h.since_mono >= c->cfg.hold_ms) {
			give_up(c, &h);
			drop(&h);
			continue;
		}
		c->hold[(c->hold_head + c->hold_count) % cap] = h;
		c->hold_count++;
	}
}
