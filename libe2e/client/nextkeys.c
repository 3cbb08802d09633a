/*
 * The subscriber's side of keys ahead of rotation (SPEC 11.5): keys a
 * delivery marks NEXT are installed at once, so the first envelope of a
 * new epoch opens without a request and without being held; the first one
 * accepted under such a key promotes it (the previous epoch is retired from
 * then on). A delivery's refresh window says when to ask again for the keys
 * the sender will have made ahead by then: each subscriber picks its own
 * random moment in it, so a thousand of them do not ask at once.
 */
#include <sodium.h>

#include "client_impl.h"
#include "e2e/clock.h"

uint8_t e2e_client_key_flags(const struct e2e_ctl_key *k, uint64_t *not_after_ms)
{
	/* For a NEXT key the field is the time it becomes current, not a
	 * deadline: it has none yet. */
	*not_after_ms = k->flags & E2E_KEY_NEXT ? 0 : k->not_after_ms;
	return (uint8_t)((k->flags & E2E_KEY_SIGNED ? E2E_KEYRING_SIGNED : 0) |
		(k->flags & E2E_KEY_NEXT ? E2E_KEYRING_NEXT : 0));
}

void e2e_client_after_delivery(struct e2e_client *c, struct trusted *t,
	const struct e2e_ctl *m)
{
	uint32_t keep[E2E_CTL_KEYS_MAX];
	uint64_t span;

	/* Per delivered scope: keys still NEXT that the sender no longer
	 * lists were discarded by a forced rotation: never used by it, but
	 * held by whom the rotation removed. Kept retired as long as the
	 * scope's old keys are accepted (the latest grace deadline listed),
	 * so what that member seals under them is FORGED (SPEC 11.5). */
	for (uint8_t i = 0; i < m->nkeys; i++) {
		uint32_t n = 0;
		uint64_t until = 0;
		int first = 1;

		for (uint8_t j = 0; j < m->nkeys && first; j++)
			first = !(j < i && m->keys[j].scope == m->keys[i].scope);
		if (!first)
			continue;
		for (uint8_t j = 0; j < m->nkeys; j++) {
			if (m->keys[j].scope != m->keys[i].scope)
				continue;
			keep[n++] = m->keys[j].epoch;
			if (!(m->keys[j].flags & E2E_KEY_NEXT) && m->keys[j].not_after_ms > until)
				until = m->keys[j].not_after_ms;
		}
		(void)e2e_keyring_retire_next(c->kr, t->sender, m->keys[i].scope, keep, n, until);
	}
	for (uint8_t i = 0; i < m->nkeys; i++)
		if (m->keys[i].flags & E2E_KEY_NEXT)
			c->st.keys_ahead++;
	t->refresh_at = 0;
	if (m->refresh_from_ms == 0)
		return;
	span = m->refresh_by_ms > m->refresh_from_ms ? m->refresh_by_ms - m->refresh_from_ms : 0;
	t->refresh_at = m->refresh_from_ms + (span ? randombytes_uniform(
		span > UINT32_MAX ? UINT32_MAX : (uint32_t)span) : 0);
}

void e2e_client_key_switched(struct e2e_client *c, const struct e2e_header *h)
{
	struct e2e_keyid id = { h->sender, h->scope, h->epoch };

	if (e2e_keyring_promote(c->kr, &id) == E2E_OK)
		c->st.ahead_switches++;
}

int e2e_client_wants_scope(struct e2e_client *c, struct trusted *t, uint8_t scope)
{
	uint32_t epoch;

	/* No delivery yet (no map): the one on its way answers anyway. */
	if (t->maps == 0)
		return 1;
	return e2e_keyring_latest(c->kr, t->sender, scope, &epoch) == E2E_OK;
}

int e2e_client_announce_moot(struct e2e_client *c, struct trusted *t, const uint8_t *msg,
	size_t len)
{
	struct e2e_keyid id;
	struct e2e_ctl m;

	/* Read through the control parser's cheap half: nothing is trusted yet. */
	if (e2e_ctl_peek(&m, msg, len) != E2E_OK)
		return 0;
	if (m.type != E2E_CTL_ANNOUNCE) {
		e2e_ctl_wipe(&m);
		return 0;
	}
	id.sender = t->sender;
	id.scope = m.scope;
	id.epoch = m.epoch;
	e2e_ctl_wipe(&m);
	/* Whether genuine or not, it would change nothing: a scope we hold no
	 * key of, or an epoch we hold (delivered ahead: its first envelope
	 * promotes it and retires the older ones). Ignored unverified, it
	 * costs a thousand subscribers no signature check at each scheduled
	 * rotation. */
	return !e2e_client_wants_scope(c, t, id.scope) || e2e_keyring_find(c->kr, &id, 0) != NULL;
}
