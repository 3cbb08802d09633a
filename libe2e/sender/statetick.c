/*
 * The sender's tick without the sealing lock (see e2e/sender.h and
 * docs/architecture.md): plan copies the tables the tick rewrites into a
 * second, private e2e_sender (the copy), run does the whole tick on the
 * copy (every file read, lock, write and fsync, statedir.c) while the
 * caller keeps sealing with the sender, apply swaps the result in. Plan
 * and apply are memory only.
 */
#include <stdlib.h>
#include <string.h>

#include "keys/keystore_copy.h"
#include "sender/fleet.h"
#include "sender/sender_impl.h"

struct e2e_sender_tick {
	struct e2e_sender copy;          /* shares id and paths, owns its tables and tx */
	uint64_t now_ms;
	uint8_t rotate[E2E_SCOPES_MAX / 8];    /* forced: requests, revocations */
	uint8_t used[E2E_SCOPES_MAX / 8];      /* near the usage limit: switch ahead */
	uint64_t have_epoch[E2E_SCOPES_MAX];   /* the sender's tx per scope: epoch + 1 */
	uint32_t gen[E2E_SCOPES_MAX];          /* its generation when planned */
	enum e2e_status st;
};

static int bit(const uint8_t *map, unsigned sc)
{
	return map[sc / 8] >> (sc % 8) & 1;
}

int e2e_sender_tick_wanted(const struct e2e_sender *s)
{
	return s && s->rotate_due;
}

enum e2e_status e2e_sender_rotate_later(struct e2e_sender *s, const char *topic)
{
	uint8_t scope;
	enum e2e_status st;

	if (!s || !topic)
		return E2E_ERR_ARG;
	st = e2e_scopes_lookup(s->scopes, topic, strlen(topic), &scope);
	if (st != E2E_OK)
		return st;
	s->rotate_req[scope / 8] |= (uint8_t)(1U << (scope % 8));
	s->rotate_due = 1;
	return E2E_OK;
}

void e2e_sender_tick_free(struct e2e_sender_tick *t)
{
	if (!t)
		return;
	for (unsigned sc = 0; sc < E2E_SCOPES_MAX; sc++)
		e2e_tx_destroy(t->copy.tx[sc].tx);
	e2e_keystore_free(t->copy.keys);
	e2e_enroll_free(t->copy.enrolled);
	free(t->copy.scopes);
	free(t->copy.rules);
	free(t);
}

/* Under the caller's lock: copies, and the scopes to rotate. */
enum e2e_status e2e_sender_tick_plan(struct e2e_sender *s, uint64_t now_ms,
	struct e2e_sender_tick **out)
{
	struct e2e_sender_tick *t = NULL;
	struct e2e_sender *c;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!s || !out)
		goto out;
	*out = NULL;
	ret = E2E_ERR_NOMEM;
	t = calloc(1, sizeof *t);
	if (!t)
		goto out;
	c = &t->copy;
	/* Paths, identity, config, file signatures: read-only in the copy. */
	memcpy(c, s, sizeof *c);
	c->owner = -1;
	c->svc = NULL;
	c->sum_cur = c->sum_ready = NULL;
	c->scopes = NULL;
	c->rules = NULL;
	c->keys = NULL;
	c->enrolled = NULL;   /* set only if the tick reloads it */
	memset(c->tx, 0, sizeof c->tx);
	memset(c->announce, 0, sizeof c->announce);
	memset(c->switched, 0, sizeof c->switched);
	memset(c->rotate_req, 0, sizeof c->rotate_req);
	c->rotate_due = c->io_wanted = c->in_tick = c->scopes_changed = 0;
	c->have_epoch = t->have_epoch;
	c->scopes = malloc(sizeof *c->scopes);
	c->rules = calloc(s->nrules ? s->nrules : 1, sizeof *c->rules);
	if (!c->scopes || !c->rules)
		goto out;
	memcpy(c->scopes, s->scopes, sizeof *c->scopes);
	memcpy(c->rules, s->rules, (size_t)s->nrules * sizeof *c->rules);
	ret = e2e_keystore_copy(&c->keys, s->keys);
	if (ret != E2E_OK)
		goto out;
	t->now_ms = now_ms;
	memcpy(t->rotate, s->rotate_req, sizeof t->rotate);
	memset(s->rotate_req, 0, sizeof s->rotate_req);
	s->rotate_due = 0;
	for (unsigned sc = 0; sc < E2E_SCOPES_MAX; sc++) {
		struct e2e_tx_stats ts;
		uint64_t limit = e2e_sender_tx_limit(s);

		t->gen[sc] = s->tx[sc].gen;
		if (!s->tx[sc].tx)
			continue;
		t->have_epoch[sc] = (uint64_t)s->tx[sc].epoch + 1;
		/* Usage: rotate ahead, while the old key still has counters. */
		e2e_tx_stats(s->tx[sc].tx, &ts);
		if (ts.counter >= limit || limit - ts.counter <= e2e_sender_low_water(s))
			t->used[sc / 8] |= (uint8_t)(1U << (sc % 8));
	}
	*out = t;
	t = NULL;
	ret = E2E_OK;
out:
	e2e_sender_tick_free(t);
	return ret;
}

/* WITHOUT the caller's lock: reads nothing the sender changes. */
enum e2e_status e2e_sender_tick_run(struct e2e_sender_tick *t)
{
	struct e2e_sender *c;
	enum e2e_status st;

	if (!t)
		return E2E_ERR_ARG;
	c = &t->copy;
	t->st = E2E_OK;
	for (unsigned sc = 0; sc < E2E_SCOPES_MAX; sc++) {
		const struct e2e_keystore_entry *cur = e2e_keystore_current(c->keys, (uint8_t)sc);

		/* Only the key the sender is using: a reload may have
		 * replaced it already. */
		if (!(bit(t->rotate, sc) || bit(t->used, sc)) || !cur ||
		    (t->have_epoch[sc] && t->have_epoch[sc] != (uint64_t)cur->epoch + 1))
			continue;
		/* Forced: a new epoch above any key made ahead (SPEC 11.5). Used
		 * up: the scheduled switch, to the key made ahead if there is one
		 * (subscribers hold it already), while the old key still seals. */
		st = bit(t->rotate, sc) ? e2e_sender_rotate(c, (uint8_t)sc, t->now_ms) :
			e2e_sender_advance(c, (uint8_t)sc, t->now_ms);
		if (st != E2E_OK && t->st == E2E_OK)
			t->st = st;
	}
	/* Reloads, rotations by age and sign mode, pruning, and a durable
	 * reservation for every new current key (cfg.prepare_keys). The copy
	 * waits for e2e-keytool's directory lock: nobody waits for the copy. */
	st = e2e_statedir_tick(c, t->now_ms);
	return t->st == E2E_OK ? (t->st = st) : t->st;
}

/* Under the caller's lock: swap the copy's tables and prepared tx in. */
enum e2e_status e2e_sender_tick_apply(struct e2e_sender *s, struct e2e_sender_tick *t)
{
	struct e2e_sender *c;
	enum e2e_status st;

	if (!s || !t)
		return E2E_ERR_ARG;
	c = &t->copy;
	/* No tx of a scope came or went since the plan: the copy's tx, whose
	 * reservation starts above the sender's durable ceiling (only this
	 * caller's I/O thread raises it), may replace the sender's. */
	for (unsigned sc = 0; sc < E2E_SCOPES_MAX; sc++)
		if (s->tx[sc].gen != t->gen[sc]) {
			e2e_tx_destroy(c->tx[sc].tx);
			c->tx[sc].tx = NULL;
		}
	if (c->scopes_changed) {
		struct e2e_scopes *sp = s->scopes;
		struct e2e_scope_rule *r = s->rules;

		s->scopes = c->scopes;
		s->rules = c->rules;
		s->nrules = c->nrules;
		c->scopes = sp;
		c->rules = r;
		s->sig_scopes = c->sig_scopes;
		/* A scope may have changed its signing mode: no old tx stays. */
		for (unsigned sc = 0; sc < E2E_SCOPES_MAX; sc++)
			e2e_sender_drop_tx(s, (uint8_t)sc);
	}
	if (c->enrolled) {
		struct e2e_enroll *e = s->enrolled;

		s->enrolled = c->enrolled;
		c->enrolled = e;
		s->sig_enrolled = c->sig_enrolled;
	}
	{
		struct e2e_keystore *k = s->keys;

		s->keys = c->keys;
		c->keys = k;
		s->sig_keys = c->sig_keys;
	}
	for (unsigned sc = 0; sc < E2E_SCOPES_MAX; sc++) {
		const struct e2e_keystore_entry *cur = e2e_keystore_current(s->keys, (uint8_t)sc);

		if (s->tx[sc].tx && (!cur || cur->epoch != s->tx[sc].epoch))
			e2e_sender_drop_tx(s, (uint8_t)sc);
		if (!s->tx[sc].tx && cur && c->tx[sc].tx && c->tx[sc].epoch == cur->epoch) {
			s->tx[sc].tx = c->tx[sc].tx;
			s->tx[sc].epoch = c->tx[sc].epoch;
			s->tx[sc].gen++;
			c->tx[sc].tx = NULL;
		}
		if (!s->tx[sc].tx && cur)
			s->io_wanted = 1;   /* left to e2e_sender_io_run */
		s->announce[sc / 8] = (uint8_t)(s->announce[sc / 8] |
		    (c->announce[sc / 8] & (1U << (sc % 8))));
		s->switched[sc / 8] = (uint8_t)(s->switched[sc / 8] |
		    (c->switched[sc / 8] & (1U << (sc % 8))));
	}
	st = t->st;
	e2e_sender_tick_free(t);
	/* Fleet trust files (authorities, credential): two stats, a read only
	 * when one changed; the key service reads them under this lock. */
	if (st == E2E_OK)
		st = e2e_fleet_tick(s, s->fleet);
	return st;
}
