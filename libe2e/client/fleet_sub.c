/*
 * The subscriber's fleet trust (SPEC 13.6): senders not in the trust store
 * are accepted on a sender credential of a listed authority, carried in
 * their DELIVERY; the map they deliver is cut to the rules of that
 * credential, so a topic outside it is FORGED (5.4 step 2); revocation
 * lists drop a revoked sender's keys. Runs with the client lock held.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

enum e2e_status e2e_client_fleet_setup(struct e2e_client *c)
{
	const struct e2e_client_config *cfg = &c->cfg;
	enum e2e_status st;

	snprintf(c->authority_filter, sizeof c->authority_filter, "%s/authority/+",
		c->control_topic);
	if (cfg->authorities_file) {
		st = e2e_authorities_load(&c->au, cfg->authorities_file, cfg->err, cfg->err_len);
		if (st != E2E_OK)
			return st;
	}
	if (cfg->credential_file) {
		st = e2e_cred_load(c->cred, sizeof c->cred, &c->cred_len, cfg->credential_file);
		if (st == E2E_ERR_NOT_FOUND) {
			c->cred_len = 0;
		} else if (st != E2E_OK) {
			if (cfg->err && cfg->err_len)
				snprintf(cfg->err, cfg->err_len, "cannot load credential %s: %s",
					cfg->credential_file, e2e_strerror(st));
			return st;
		}
	}
	if (c->au.n && cfg->fleet_dir) {
		st = e2e_revstate_init(&c->rev, cfg->fleet_dir, c->control_topic, &c->au);
		if (st != E2E_OK)
			return st;
		c->rev_ready = 1;
	}
	return E2E_OK;
}

void e2e_client_fleet_free(struct e2e_client *c)
{
	if (c->rev_ready)
		e2e_revstate_free(&c->rev);
	for (uint32_t i = 0; c->trust && i < c->ntrust; i++)
		free(c->trust[i].cred);
}

struct trusted *e2e_client_cred_sender(struct e2e_client *c, uint32_t sender)
{
	struct trusted *t = NULL;
	uint64_t mono = e2e_mono_ms();
	uint32_t added = 0;

	if (c->au.n == 0)
		return NULL;
	for (uint32_t i = 0; i < c->ntrust; i++) {
		struct trusted *o = &c->trust[i];

		added += (uint32_t)o->via_cred;
		/* A sender id nobody answered for (garbage envelopes name random
		 * ids) gives its slot up after a minute, so such ids cannot fill
		 * the table against real senders. */
		if (o->provisional && mono - o->sent_mono > 60000U &&
		    (!t || o->sent_mono < t->sent_mono))
			t = o;
	}
	if (added < CRED_SENDERS_MAX && c->ntrust < TRUST_MAX)
		t = &c->trust[c->ntrust++];
	if (!t)
		return NULL;
	free(t->cred);
	memset(t, 0, sizeof *t);
	t->sender = sender;
	t->via_cred = 1;
	t->provisional = 1;
	snprintf(t->name, sizeof t->name, "cred:%08x", sender);
	return t;
}

static int revoked(const struct e2e_client *c, const uint8_t *sign_pk)
{
	return c->rev_ready && e2e_revstate_has(&c->rev, sign_pk);
}

enum e2e_status e2e_client_cred_reply(struct e2e_client *c, struct trusted *t,
	struct e2e_ctl *m, const uint8_t *msg, size_t len)
{
	struct e2e_cred cred;
	uint8_t *copy;
	enum e2e_status st;

	if (t->revoked)
		return E2E_ERR_AUTH;
	/* Layout first (cheap): the credential rides in the clear. */
	st = e2e_ctl_peek(m, msg, len);
	if (st != E2E_OK)
		return st;
	if (m->type == E2E_CTL_REFUSAL && !t->provisional) {
		e2e_ctl_wipe(m);
		return e2e_ctl_parse(m, msg, len, c->reply_topic, &t->pub);
	}
	if (m->type != E2E_CTL_DELIVERY || !m->cred_len) {
		e2e_ctl_wipe(m);
		return E2E_ERR_AUTH;   /* nothing to know this sender by */
	}
	/* A sender credential of a listed authority, current, for the keys
	 * whose sender id the message names, not revoked. */
	st = e2e_cred_check(&cred, m->cred, m->cred_len, &c->au, E2E_CRED_SENDER, e2e_now_ms());
	if (st == E2E_OK && (e2e_sender_id(&cred.holder) != t->sender ||
	    revoked(c, cred.holder.sign_pk) ||
	    (!t->provisional && sodium_memcmp(&cred.holder, &t->pub, sizeof t->pub) != 0)))
		st = E2E_ERR_AUTH;
	if (st != E2E_OK) {
		e2e_ctl_wipe(m);
		return st == E2E_ERR_EXHAUSTED ? E2E_ERR_EXHAUSTED : E2E_ERR_AUTH;
	}
	copy = malloc(m->cred_len);
	if (!copy) {
		e2e_ctl_wipe(m);
		return E2E_ERR_NOMEM;
	}
	memcpy(copy, m->cred, m->cred_len);
	e2e_ctl_wipe(m);
	st = e2e_ctl_parse(m, msg, len, c->reply_topic, &cred.holder);
	if (st != E2E_OK) {
		free(copy);
		return st;
	}
	/* Known from now on: its signed envelopes, announcements, summaries. */
	if (e2e_keyring_set_signer(c->kr, t->sender, cred.holder.sign_pk) != E2E_OK) {
		free(copy);
		e2e_ctl_wipe(m);
		return E2E_ERR_FULL;
	}
	t->pub = cred.holder;
	t->provisional = 0;
	free(t->cred);
	t->cred = copy;
	t->cred_len = cred.raw_len;
	return E2E_OK;
}

uint32_t e2e_client_cred_rules(const struct trusted *t, struct e2e_scope_rule *rules, uint32_t n)
{
	struct e2e_cred cred;
	uint32_t k = 0;

	if (!t->via_cred)
		return n;
	if (!t->cred || e2e_cred_parse(&cred, t->cred, t->cred_len) != E2E_OK)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if (e2e_cred_has_rule(&cred, rules[i].scope, rules[i].filter, rules[i].filter_len))
			rules[k++] = rules[i];
	return k;
}

int e2e_client_is_authority_topic(const struct e2e_client *c, const char *topic)
{
	size_t cl = strlen(c->control_topic);

	return strncmp(topic, c->control_topic, cl) == 0 &&
		strncmp(topic + cl, "/authority/", 11) == 0;
}

/* A sender on the new list: its keys go, nothing of it is accepted again. */
static void drop_sender(void *ctx, const uint8_t sign_pk[E2E_SIGN_PK_BYTES])
{
	struct e2e_client *c = ctx;

	for (uint32_t i = 0; i < c->ntrust; i++) {
		struct trusted *t = &c->trust[i];
		char detail[160];

		if (t->provisional || sodium_memcmp(t->pub.sign_pk, sign_pk, 32) != 0)
			continue;
		t->revoked = 1;
		t->sum_mono = 0;   /* no summaries expected from it any more */
		for (unsigned sc = 0; sc < 256; sc++) {
			uint32_t ep;
			struct e2e_keyid id = { t->sender, (uint8_t)sc, 0 };

			while (e2e_keyring_latest(c->kr, t->sender, (uint8_t)sc, &ep) == E2E_OK) {
				id.epoch = ep;
				if (e2e_keyring_remove(c->kr, &id) != E2E_OK)
					break;
			}
		}
		snprintf(detail, sizeof detail, "%s is on the authority's revocation list: its keys "
			"are dropped", t->name);
		e2e_client_event(c, E2E_EV_CONTROL_REJECTED, t->sender, 0, 0, detail);
	}
}

void e2e_client_on_revocations(struct e2e_client *c, const char *topic, const uint8_t *msg,
	size_t len)
{
	enum e2e_status st;
	char detail[160];

	if (!c->rev_ready)
		return;
	st = e2e_revstate_apply(&c->rev, &c->au, msg, len, topic, drop_sender, c);
	if (st == E2E_OK || st == E2E_ERR_EXISTS)
		return;   /* applied, or an older list (a replay) ignored */
	c->st.control_rejected++;
	snprintf(detail, sizeof detail, "revocation list on %s rejected: %s", topic,
		e2e_strerror(st));
	e2e_client_event(c, E2E_EV_CONTROL_REJECTED, 0, 0, 0, detail);
}
