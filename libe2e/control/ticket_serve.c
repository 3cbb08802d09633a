/*
 * The two ends of a redemption (protocol/SPEC.md 14.4, 14.5), without
 * MQTT: the authority's decision on one REDEEM (e2e_ticket_serve, pure: the
 * caller persists the ticket records before publishing a GRANT), the
 * redeemer's check of the answer (e2e_ticket_accept) and installation of
 * what it got (e2e_ticket_install: `authorities` and `credential`).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/ticket.h"
#include "state/fileio.h"

/* Credentials start a minute early: a redeemer whose clock is a little
 * behind the authority's can use its credential at once. */
#define NOT_BEFORE_SLACK_MS 60000ULL

enum e2e_status e2e_ticket_serve(uint8_t *out, size_t cap, size_t *out_len,
	struct e2e_ticket_outcome *res, struct e2e_tickets *ts,
	const struct e2e_identity *authority, const uint8_t *msg, size_t len, const char *topic,
	uint64_t now_ms, uint64_t window_ms, uint64_t cred_ttl_ms)
{
	struct e2e_redeem r;
	struct e2e_ticket *t;
	const struct e2e_ticket_use *u;
	struct e2e_cred_spec spec;
	uint8_t cred[E2E_TICKET_CRED_MAX];
	const uint8_t *answer_cred = NULL;
	size_t cred_len = 0;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!out || !out_len || !res || !ts || !authority || !msg || !topic || cred_ttl_ms == 0)
		return E2E_ERR_ARG;
	memset(res, 0, sizeof *res);
	*out_len = 0;
	/* Steps 1-2: layout and the redeemer's signature over this topic; a
	 * failure gets no answer (no amplification, nothing learnt). */
	ret = e2e_ticket_redeem_parse(&r, msg, len, topic);
	if (ret != E2E_OK)
		return ret;
	e2e_ctl_hash(res->req_hash, msg, len);
	memcpy(res->ticket_id, r.ticket_id, sizeof res->ticket_id);
	res->redeemer = r.redeemer;
	snprintf(res->reply_topic, sizeof res->reply_topic, "%s", r.reply_topic);
	t = e2e_tickets_find(ts, r.ticket_id);
	if (!t) {
		res->reason = E2E_REFUSE_TICKET_UNKNOWN;
	} else if (!e2e_ticket_redeem_mac_ok(msg, len, t->secret)) {
		res->reason = E2E_REFUSE_TICKET_MAC;
	} else if ((u = e2e_ticket_use_find(t, res->req_hash)) != NULL) {
		/* The same REDEEM again (its GRANT was lost, or a replay): the
		 * same answer, and no second use. */
		res->replayed = 1;
		answer_cred = u->cred;
		cred_len = u->cred_len;
	} else if (r.time_ms + window_ms < now_ms || r.time_ms > now_ms + window_ms) {
		res->reason = E2E_REFUSE_STALE;
	} else if (now_ms >= t->expires_ms) {
		res->reason = E2E_REFUSE_TICKET_EXPIRED;
	} else if (t->uses_left == 0) {
		res->reason = E2E_REFUSE_TICKET_USED;
	} else {
		memset(&spec, 0, sizeof spec);
		spec.kind = E2E_CRED_SUBSCRIBER;
		randombytes_buf(&spec.serial, sizeof spec.serial);
		spec.not_before_ms = now_ms > NOT_BEFORE_SLACK_MS ? now_ms - NOT_BEFORE_SLACK_MS : 0;
		spec.not_after_ms = now_ms + cred_ttl_ms;
		spec.holder = r.redeemer;
		spec.nscopes = t->nscopes;
		spec.scopes = t->scopes;
		ret = e2e_cred_issue(cred, sizeof cred, &cred_len, &spec, authority);
		if (ret == E2E_OK)
			ret = e2e_ticket_consume(t, res->req_hash, cred, cred_len);
		if (ret != E2E_OK)
			goto out;
		res->consumed = 1;
		res->serial = spec.serial;
		answer_cred = cred;
	}
	ret = e2e_ticket_grant(out, cap, out_len, authority, &r, res->req_hash, res->reason,
		answer_cred, res->reason ? 0 : cred_len, now_ms);
out:
	sodium_memzero(cred, sizeof cred);
	return ret;
}

enum e2e_status e2e_ticket_accept(struct e2e_redeem *g, struct e2e_cred *c,
	const uint8_t *msg, size_t len, const char *topic, const struct e2e_redeem *sent,
	const uint8_t req_hash[E2E_CTL_HASH_BYTES], const uint8_t fp[E2E_FP_BYTES])
{
	enum e2e_status ret;

	if (!g || !c || !msg || !topic || !sent || !req_hash || !fp)
		return E2E_ERR_ARG;
	memset(c, 0, sizeof *c);
	ret = e2e_ticket_grant_parse(g, msg, len, topic, fp);
	if (ret != E2E_OK)
		return ret;
	/* An answer to another REDEEM (another redeemer's, or an old one). */
	if (sodium_memcmp(g->request_hash, req_hash, E2E_CTL_HASH_BYTES) != 0)
		return E2E_ERR_EXISTS;
	if (g->reason != 0)
		return E2E_OK;
	ret = e2e_cred_parse(c, g->cred, g->cred_len);
	if (ret == E2E_OK)
		ret = e2e_cred_verify(c, &g->authority);
	if (ret == E2E_OK && (c->kind != E2E_CRED_SUBSCRIBER ||
	    sodium_memcmp(c->holder.sign_pk, sent->redeemer.sign_pk, E2E_SIGN_PK_BYTES) != 0 ||
	    sodium_memcmp(c->holder.dh_pk, sent->redeemer.dh_pk, E2E_DH_BYTES) != 0))
		ret = E2E_ERR_AUTH;
	return ret;
}

enum e2e_status e2e_ticket_install(const char *auth_path, const char *cred_path,
	const struct e2e_public *authority, const uint8_t *cred, size_t cred_len,
	char *err, size_t err_cap)
{
	struct e2e_authorities *au = NULL;
	uint8_t *old = NULL, *buf = NULL, fp[E2E_FP_BYTES];
	size_t old_len = 0, cap, n = 0;
	char line[E2E_PUBLINE_MIN + E2E_NAME_MAX + 2];
	char *text = NULL;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!auth_path || !cred_path || !authority || !cred || !cred_len)
		goto out;
	ret = E2E_ERR_NOMEM;
	au = calloc(1, sizeof *au);
	text = malloc(E2E_CRED_TEXT_MAX + 1);
	if (!au || !text)
		goto out;
	/* authorities: add the line unless it is there (other entries stay). */
	ret = e2e_authorities_load(au, auth_path, err, err_cap);
	if (ret != E2E_OK)
		goto out;
	e2e_public_fp(fp, authority);
	if (!e2e_authorities_find(au, fp)) {
		ret = e2e_public_format(line, sizeof line, authority, "authority");
		if (ret != E2E_OK)
			goto out;
		ret = e2e_file_read(auth_path, 0, &old, &old_len);
		if (ret == E2E_ERR_NOT_FOUND) {
			old = NULL;
			old_len = 0;
		} else if (ret != E2E_OK) {
			e2e_file_explain(auth_path, 0, ret, err, err_cap);
			goto out;
		}
		cap = old_len + strlen(line) + 2;
		ret = E2E_ERR_NOMEM;
		buf = malloc(cap);
		if (!buf)
			goto out;
		if (old_len)
			memcpy(buf, old, old_len);
		n = old_len;
		if (n && buf[n - 1] != '\n')
			buf[n++] = '\n';
		memcpy(buf + n, line, strlen(line));
		n += strlen(line);
		buf[n++] = '\n';
		ret = e2e_file_write_atomic(auth_path, buf, n, 0);
		if (ret != E2E_OK) {
			e2e_file_explain(auth_path, 0, ret, err, err_cap);
			goto out;
		}
	}
	ret = e2e_cred_format(text, E2E_CRED_TEXT_MAX, cred, cred_len);
	if (ret != E2E_OK)
		goto out;
	n = strlen(text);
	text[n++] = '\n';
	ret = e2e_file_write_atomic(cred_path, (const uint8_t *)text, n, 0);
	if (ret != E2E_OK)
		e2e_file_explain(cred_path, 0, ret, err, err_cap);
out:
	if (old)
		e2e_file_free(old, old_len);
	free(buf);
	free(text);
	free(au);
	return ret;
}
