/*
 * The revocation lists a sender or subscriber holds (SPEC 13.3): newest per
 * authority, persisted so that after a restart a replayed older list is
 * still refused, re-verified when loaded.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/revlist.h"
#include "state/fileio.h"

static enum e2e_status path_of(char *out, size_t cap, const struct e2e_revstate *rs,
	const uint8_t fp[E2E_FP_BYTES])
{
	char hex[2 * E2E_FP_BYTES + 1];
	int n;

	sodium_bin2hex(hex, sizeof hex, fp, E2E_FP_BYTES);
	n = snprintf(out, cap, "%s/revocations-%s", rs->dir, hex);
	return n < 0 || (size_t)n >= cap ? E2E_ERR_BUFFER : E2E_OK;
}

static struct e2e_revstate_entry *find(struct e2e_revstate *rs, const uint8_t fp[E2E_FP_BYTES])
{
	for (uint32_t i = 0; i < rs->n; i++)
		if (memcmp(rs->e[i].fp, fp, E2E_FP_BYTES) == 0)
			return &rs->e[i];
	return NULL;
}

/* Verify @p msg on the authority's topic and keep it in @p e (takes a copy). */
static enum e2e_status keep(struct e2e_revstate *rs, struct e2e_revstate_entry *e,
	const struct e2e_authorities *au, const uint8_t *msg, size_t len, const char *topic)
{
	struct e2e_revlist rl;
	uint8_t *copy;
	enum e2e_status st = e2e_revlist_parse(&rl, msg, len, topic, au);

	(void)rs;
	if (st != E2E_OK)
		return st;
	copy = malloc(len);
	if (!copy)
		return E2E_ERR_NOMEM;
	memcpy(copy, msg, len);
	free(e->msg);
	e->msg = copy;
	e->len = len;
	memcpy(e->fp, rl.authority, E2E_FP_BYTES);
	/* Re-point the parsed list into our copy. */
	return e2e_revlist_parse(&e->list, e->msg, e->len, topic, au);
}

enum e2e_status e2e_revstate_init(struct e2e_revstate *rs, const char *dir,
	const char *control_topic, const struct e2e_authorities *au)
{
	if (!rs || !dir || !control_topic || !au)
		return E2E_ERR_ARG;
	memset(rs, 0, sizeof *rs);
	if ((size_t)snprintf(rs->dir, sizeof rs->dir, "%s", dir) >= sizeof rs->dir ||
	    (size_t)snprintf(rs->control_topic, sizeof rs->control_topic, "%s", control_topic) >=
	    sizeof rs->control_topic)
		return E2E_ERR_ARG;
	for (uint32_t i = 0; i < au->n && rs->n < E2E_AUTHORITIES_MAX; i++) {
		char path[4200], topic[E2E_REVLIST_TOPIC_MAX];
		uint8_t *buf = NULL;
		size_t len = 0;
		struct e2e_revstate_entry *e = &rs->e[rs->n];

		if (path_of(path, sizeof path, rs, au->a[i].fp) != E2E_OK ||
		    e2e_revlist_topic(topic, sizeof topic, rs->control_topic, au->a[i].fp) != E2E_OK)
			continue;
		if (e2e_file_read(path, 0, &buf, &len) != E2E_OK)
			continue;
		if (keep(rs, e, au, buf, len, topic) == E2E_OK)
			rs->n++;
		else {
			free(e->msg);
			memset(e, 0, sizeof *e);
		}
		e2e_file_free(buf, len);
	}
	return E2E_OK;
}

void e2e_revstate_free(struct e2e_revstate *rs)
{
	for (uint32_t i = 0; rs && i < rs->n; i++)
		free(rs->e[i].msg);
	if (rs)
		rs->n = 0;
}

enum e2e_status e2e_revstate_apply(struct e2e_revstate *rs, const struct e2e_authorities *au,
	const uint8_t *msg, size_t len, const char *topic,
	void (*added)(void *ctx, const uint8_t sign_pk[E2E_SIGN_PK_BYTES]), void *ctx)
{
	struct e2e_revlist rl;
	struct e2e_revstate_entry *e, old;
	char path[4200];
	enum e2e_status st;

	if (!rs || !au)
		return E2E_ERR_ARG;
	st = e2e_revlist_parse(&rl, msg, len, topic, au);
	if (st != E2E_OK)
		return st;
	e = find(rs, rl.authority);
	if (e && rl.number <= e->list.number)
		return E2E_ERR_EXISTS;   /* a replayed or re-delivered older list */
	if (!e) {
		if (rs->n == E2E_AUTHORITIES_MAX)
			return E2E_ERR_FULL;
		e = &rs->e[rs->n];
		memset(e, 0, sizeof *e);
	}
	/* Persist first: what is not on disk could be replayed after a restart. */
	st = path_of(path, sizeof path, rs, rl.authority);
	if (st == E2E_OK)
		st = e2e_file_write_atomic(path, msg, len, 0);
	if (st != E2E_OK)
		return st;
	old = *e;
	e->msg = NULL;
	st = keep(rs, e, au, msg, len, topic);
	if (st != E2E_OK) {
		*e = old;
		return st;
	}
	if (e == &rs->e[rs->n])
		rs->n++;
	for (uint32_t i = 0; added && i < e->list.n; i++)
		if (!e2e_revlist_has(&old.list, e->list.keys + 32U * i))
			added(ctx, e->list.keys + 32U * i);
	free(old.msg);
	return E2E_OK;
}

int e2e_revstate_has(const struct e2e_revstate *rs, const uint8_t sign_pk[E2E_SIGN_PK_BYTES])
{
	for (uint32_t i = 0; rs && i < rs->n; i++)
		if (e2e_revlist_has(&rs->e[i].list, sign_pk))
			return 1;
	return 0;
}

uint64_t e2e_revstate_number(const struct e2e_revstate *rs, const uint8_t fp[E2E_FP_BYTES])
{
	for (uint32_t i = 0; rs && i < rs->n; i++)
		if (memcmp(rs->e[i].fp, fp, E2E_FP_BYTES) == 0)
			return rs->e[i].list.number;
	return 0;
}
