/*
 * Keys ahead of rotation (SPEC 11.5; OPC UA Part 14's FutureKeys and
 * TimeToNextKey): a sender whose rotations are scheduled makes each next
 * key before it is needed and delivers it next to the current one, flagged
 * NEXT with the time it becomes current, so that subscribers switch at the
 * rotation without asking. By age: the key due at t is made at t - lead
 * (several ahead when the lead spans several periods, at most
 * AHEAD_MAX). By use: one key when the current one has fewer than twice
 * the low-water mark (e2e_sender_low_water) left; the tick switches to it
 * at the mark. Keys made ahead live in the keys file
 * (flag "next"), so a restart keeps them; a forced rotation discards them
 * (e2e_keystore_rotate).
 */
#include <string.h>

#include "e2e/txstate.h"
#include "state/fileio.h"
#include "sender/sender_impl.h"

#define AHEAD_MAX 8U

/* The lead in force: rotate-lead, else half the age; never more than
 * AHEAD_MAX - 1 periods, so the keys it wants ahead always fit AHEAD_MAX
 * (the refresh window then always names a time the next one exists). 0
 * when rotations are not scheduled by age. */
static uint64_t lead_ms(const struct e2e_sender *s)
{
	uint64_t age = s->cfg.max_age_ms, lead = s->cfg.rotate_lead_ms;

	if (!age)
		return 0;
	if (!lead)
		lead = age / 2U ? age / 2U : 1U;
	return lead / (AHEAD_MAX - 1U) > age ? age * (AHEAD_MAX - 1U) : lead;
}

/* The newest key of @p scope (made ahead or current), its count made ahead. */
static const struct e2e_keystore_entry *newest(const struct e2e_keystore *ks, uint8_t scope,
	uint32_t *ahead)
{
	const struct e2e_keystore_entry *top = NULL;
	uint32_t n = e2e_keystore_count(ks);

	*ahead = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct e2e_keystore_entry *e = e2e_keystore_at(ks, i);

		if (e->scope != scope)
			continue;
		if (e->flags & E2E_KEYSTORE_NEXT)
			(*ahead)++;
		if (e->not_after_ms == 0)
			top = e;
	}
	return top;
}

/* When the key after @p top is due by age (its time, or the current key's). */
static uint64_t due_after(const struct e2e_sender *s, const struct e2e_keystore_entry *top)
{
	uint64_t t = top->created_ms, age = s->cfg.max_age_ms;

	return t > UINT64_MAX - age ? UINT64_MAX : t + age;
}

static int used_up(const struct e2e_sender *s, uint8_t scope)
{
	const struct e2e_keystore_entry *cur = e2e_keystore_current(s->keys, scope);
	struct e2e_tx_stats st;

	if (!cur || !s->tx[scope].tx || s->tx[scope].epoch != cur->epoch)
		return 0;
	e2e_tx_stats(s->tx[scope].tx, &st);
	/* Twice the low-water mark at which the tick switches (statetick.c):
	 * made one low-water span before it is used. */
	return e2e_sender_tx_limit(s) - st.counter <= 2U * e2e_sender_low_water(s) ||
		st.counter >= e2e_sender_tx_limit(s);
}

/* How many keys @p scope should make ahead now, and the time of the first. */
static uint32_t wanted(const struct e2e_sender *s, uint8_t scope, uint64_t now_ms,
	uint64_t *from)
{
	uint32_t ahead, n = 0;
	const struct e2e_keystore_entry *top = newest(s->keys, scope, &ahead);
	uint64_t lead = lead_ms(s), t;

	*from = 0;
	if (!top)
		return 0;
	if (lead) {
		/* After a long stop the schedule restarts from now. */
		t = due_after(s, top);
		*from = t < now_ms ? now_ms : t;
		for (t = *from; ahead + n < AHEAD_MAX && t - lead <= now_ms; t += s->cfg.max_age_ms)
			n++;
	}
	if (n == 0 && ahead == 0 && used_up(s, scope))
		n = 1;   /* by use: due when the current key is exhausted */
	return n;
}

static int scope_signed(const struct e2e_sender *s, uint8_t scope)
{
	const struct e2e_scope *sc = e2e_scopes_get(s->scopes, scope);

	return sc && sc->sign;
}

/* A scheduled switch of @p scope by age is due: at its key ahead's time. */
static int due(const struct e2e_sender *s, uint8_t scope, uint64_t now_ms)
{
	const struct e2e_keystore_entry *cur = e2e_keystore_current(s->keys, scope);
	const struct e2e_keystore_entry *nx = e2e_keystore_next(s->keys, scope);

	if (!s->cfg.max_age_ms || !cur)
		return 0;
	return nx && nx->created_ms ? now_ms >= nx->created_ms :
		now_ms - cur->created_ms >= s->cfg.max_age_ms;
}

/* Make the keys wanted ahead of @p scope now (in memory). */
static enum e2e_status make_ahead(struct e2e_sender *s, uint8_t scope, uint64_t now_ms)
{
	uint64_t from;
	uint32_t n = wanted(s, scope, now_ms, &from);
	enum e2e_status st = E2E_OK;

	for (uint32_t k = 0; k < n && st == E2E_OK; k++)
		st = e2e_keystore_add_ahead(s->keys, scope, now_ms,
			from ? from + k * s->cfg.max_age_ms : 0,
			scope_signed(s, scope) ? E2E_KEYSTORE_SIGNED : 0, NULL);
	return st;
}

enum e2e_status e2e_sender_advance(struct e2e_sender *s, uint8_t scope, uint64_t now_ms)
{
	int lock = -1;
	enum e2e_status st;

	if (!s)
		return E2E_ERR_ARG;
	st = e2e_statedir_keys_begin(s, &lock);
	if (st != E2E_OK)
		return st;
	st = e2e_keystore_advance(s->keys, scope, now_ms, s->cfg.grace_ms, NULL);
	if (st != E2E_OK) {
		e2e_dir_unlock(lock);
		return st;
	}
	st = e2e_statedir_keys_commit(s, lock);
	if (st != E2E_OK)
		return st;
	e2e_sender_drop_tx(s, scope);
	s->announce[scope / 8] |= (uint8_t)(1U << (scope % 8));
	return E2E_OK;
}

/*
 * The first counter block of @p scope's next key, made durable now (a tick
 * that is not its switch), so that the switch itself writes no txstate
 * while the seals wait (see struct scope_tx). Only for a key recorded at
 * 0: one that never sealed anywhere.
 */
static enum e2e_status reserve_ahead(struct e2e_sender *s, uint8_t scope)
{
	const struct e2e_keystore_entry *nx = e2e_keystore_next(s->keys, scope);
	struct e2e_keyid id;
	uint64_t floor = 1, want;
	int lock = -1;
	enum e2e_status st;

	if (!nx || s->tx[scope].pre_epoch == nx->epoch)
		return E2E_OK;
	id = (struct e2e_keyid){ s->self, scope, nx->epoch };
	want = e2e_first_ceiling(0, e2e_sender_tx_block(s), e2e_sender_tx_limit(s));
	st = e2e_dir_lock_mode(s->cfg.dir, &lock, !s->in_tick);
	if (st != E2E_OK)
		return st;
	st = e2e_txstate_get(s->p_txstate, &id, &floor);
	if (st == E2E_OK && floor == 0)
		st = e2e_txstate_reserve(s->p_txstate, &id, want);
	e2e_dir_unlock(lock);
	if (st == E2E_OK) {
		/* Already reserved (by a run before a restart): used as usual. */
		s->tx[scope].pre_epoch = nx->epoch;
		s->tx[scope].pre_ceiling = floor == 0 ? want : UINT64_MAX;
	}
	return st == E2E_ERR_NOT_FOUND ? E2E_OK : st;
}

static enum e2e_status reserve_all(struct e2e_sender *s)
{
	enum e2e_status st = E2E_OK;

	for (uint32_t i = 0; i < s->scopes->count && st == E2E_OK; i++)
		st = reserve_ahead(s, s->scopes->scope[i].id);
	return st;
}

/*
 * A scheduled switch is made in memory only, with no file work while the
 * tick holds a threaded caller's sealing lock: the new key's first counter
 * block is durable already (reserve_ahead), and nothing else of the switch
 * needs to be durable before its use. The keys file records it at the next
 * tick, with the keys made ahead. A crash in between leaves the file as it
 * was: the restarted sender switches again, to the same key (it is in the
 * file with its time), and continues the counters above txstate's
 * ceilings. An e2e-keytool change read meanwhile wins the same way.
 */
/*
 * Whether every subscriber holds the key made ahead @p nx by its time:
 * made at least lead/2 before it, so that a DELIVERY's refresh window
 * ([t - lead/2, t - lead/4] for the first key not yet made) comes after it
 * was made. When it was made is bounded by its epoch, at least the Unix
 * second it was made in (SPEC 6.4): a later bound, so never a wrong "yes".
 */
static int delivered_ahead(const struct e2e_sender *s, const struct e2e_keystore_entry *nx)
{
	uint64_t made = nx ? (uint64_t)nx->epoch * 1000U : UINT64_MAX, lead = lead_ms(s);

	return nx && nx->created_ms && lead && made <= UINT64_MAX - lead / 2U &&
		made + lead / 2U <= nx->created_ms;
}

static int switch_due(struct e2e_sender *s, uint64_t now_ms, enum e2e_status *st)
{
	int any = 0, quiet;

	for (uint32_t i = 0; i < s->scopes->count; i++) {
		uint8_t sc = s->scopes->scope[i].id;

		if (!due(s, sc, now_ms))
			continue;
		/* No key made ahead (a first tick, a lead shorter than a tick):
		 * a new key, recorded and written before use, as always. */
		if (!e2e_keystore_next(s->keys, sc)) {
			enum e2e_status r = e2e_sender_advance(s, sc, now_ms);

			if (r != E2E_OK)
				*st = r;
			continue;
		}
		quiet = delivered_ahead(s, e2e_keystore_next(s->keys, sc));
		if (e2e_keystore_advance(s->keys, sc, now_ms, s->cfg.grace_ms, NULL) != E2E_OK)
			continue;
		e2e_sender_drop_tx(s, sc);
		/* A key its subscribers hold is not announced (SPEC 11.5): the
		 * ANNOUNCE would tell them nothing, yet its fan-out to every one
		 * of them (one per scope) sat in front of the first envelope of
		 * the new epoch: 2-3x the steady p99 for it with 1,000
		 * subscribers (docs/performance.md). One made too late for the
		 * refresh windows (a sender just started) is announced. */
		if (!quiet)
			s->announce[sc / 8] |= (uint8_t)(1U << (sc % 8));
		else
			s->switched[sc / 8] |= (uint8_t)(1U << (sc % 8));
		s->switch_unsaved = 1;
		any = 1;
	}
	return any;
}

/* Switches due now (memory only), or else: the unsaved switches and the
 * keys wanted ahead under ONE write of the keys file, then counter blocks. */
enum e2e_status e2e_nextkey_tick(struct e2e_sender *s, uint64_t now_ms)
{
	uint64_t from;
	int lock = -1, work = s->switch_unsaved;
	enum e2e_status st = E2E_OK, made = E2E_OK;

	if (switch_due(s, now_ms, &st) || st != E2E_OK)
		return st;
	for (uint32_t i = 0; i < s->scopes->count && !work; i++)
		work = wanted(s, s->scopes->scope[i].id, now_ms, &from) > 0;
	if (!work)
		return reserve_all(s);
	st = e2e_statedir_keys_begin(s, &lock);   /* may reload what keytool changed */
	if (st != E2E_OK)
		return st;
	/* One that cannot be made now (store full) is tried next tick. */
	for (uint32_t i = 0; i < s->scopes->count && made == E2E_OK; i++)
		made = make_ahead(s, s->scopes->scope[i].id, now_ms);
	st = e2e_statedir_keys_commit(s, lock);
	if (st != E2E_OK)
		return st;
	s->switch_unsaved = 0;
	if (made == E2E_ERR_FULL) {
		/* The store was sized at its last load: read it again (with room
		 * to spare) at the next tick and make the rest then. */
		memset(&s->sig_keys, 0, sizeof s->sig_keys);
		made = E2E_OK;
	}
	return made == E2E_OK ? reserve_all(s) : made;
}

void e2e_nextkey_refresh(const struct e2e_sender *s, uint64_t now_ms, uint64_t *from,
	uint64_t *by)
{
	uint64_t lead = lead_ms(s);

	*from = *by = 0;
	for (uint32_t i = 0; lead && i < s->scopes->count; i++) {
		uint32_t ahead;
		const struct e2e_keystore_entry *top = newest(s->keys, s->scopes->scope[i].id,
			&ahead);
		uint64_t t, f, b;

		if (!top)
			continue;
		/* The first key not made yet is due at t and made at t - lead:
		 * ask in [t - lead/2, t - lead/4], spread, well before t. */
		t = due_after(s, top);
		if (t < now_ms)
			t = now_ms;
		f = t - lead / 2U;
		b = t - lead / 4U;
		if (*from == 0 || f < *from) {
			*from = f;
			*by = b;
		}
	}
}

void e2e_sender_set_lead(struct e2e_sender *s, uint64_t lead_ms)
{
	if (s)
		s->cfg.rotate_lead_ms = lead_ms;
}
