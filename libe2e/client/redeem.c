/*
 * The redeemer of a one-time ticket (protocol/SPEC.md 14.5): make an
 * identity if there is none, send one REDEEM to the authority named by the
 * token, and install the credential of the GRANT that answers it. The same
 * REDEEM bytes are resent while no answer came: the authority answers a
 * REDEEM it already served with the same GRANT, so a lost answer costs no
 * second use of the ticket.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e2e/ticket.h"
#include "session.h"

#define REDEEM_TIMEOUT_MS 30000U
#define RESEND_MS 3000U

struct redeemer {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct e2e_redeem sent;
	uint8_t req_hash[E2E_CTL_HASH_BYTES];
	uint8_t fp[E2E_FP_BYTES];
	int done;
	uint8_t reason;
	enum e2e_status st;          /* of the accepted answer */
	uint32_t others;             /* answers to other REDEEMs (a replayed GRANT) */
	uint32_t rejected;           /* answers that failed verification */
	struct e2e_public authority;
	uint8_t cred[E2E_TICKET_CRED_MAX];
	size_t cred_len;
};

static void on_msg(void *ctx, const char *topic, const uint8_t *payload, size_t len, int qos,
	int retained)
{
	struct redeemer *r = ctx;
	struct e2e_redeem g;
	struct e2e_cred c;
	enum e2e_status st;

	(void)qos;
	(void)retained;
	if (strcmp(topic, r->sent.reply_topic) != 0)
		return;
	pthread_mutex_lock(&r->lock);
	if (r->done)
		goto out;
	st = e2e_ticket_accept(&g, &c, payload, len, topic, &r->sent, r->req_hash, r->fp);
	if (st == E2E_ERR_EXISTS) {
		r->others++;
		goto out;
	}
	if (st != E2E_OK) {
		/* Forged, keys not the token's authority, a credential for other
		 * keys: ignored; the genuine answer may still come. */
		r->rejected++;
		goto out;
	}
	r->done = 1;
	r->reason = g.reason;
	r->authority = g.authority;
	if (g.reason == 0 && g.cred_len <= sizeof r->cred) {
		memcpy(r->cred, g.cred, g.cred_len);
		r->cred_len = g.cred_len;
	}
	pthread_cond_broadcast(&r->cond);
out:
	pthread_mutex_unlock(&r->lock);
}

static void on_state(void *ctx, int connected, const char *why, const char *broker,
	const char *lost)
{
	(void)ctx;
	(void)connected;
	(void)why;
	(void)broker;
	(void)lost;
}

/* The identity at @p path, made (0600) if there is none. */
static enum e2e_status own_identity(struct e2e_identity *id, const char *path, int *made)
{
	enum e2e_status st = e2e_identity_load(id, path);

	*made = 0;
	if (st != E2E_ERR_NOT_FOUND)
		return st;
	st = e2e_identity_generate(id);
	if (st == E2E_OK)
		st = e2e_identity_save(id, path, 0);
	if (st == E2E_OK)
		*made = 1;
	return st;
}

static void wait_until(struct redeemer *r, uint64_t deadline_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(deadline_ms / 1000);
	ts.tv_nsec += (long)(deadline_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	if (!r->done)
		pthread_cond_timedwait(&r->cond, &r->lock, &ts);
}

enum e2e_status e2e_client_redeem(const struct e2e_redeem_config *cfg, uint8_t *reason)
{
	struct redeemer *rp = NULL;
	struct e2e_session sess;
	struct e2e_ticket_token tok;
	struct e2e_identity id = { 0 };
	uint8_t msg[E2E_CTL_MSG_MAX];
	char topic[E2E_TICKET_TOPIC_MAX + 1], ierr[512] = "";
	char *err = cfg ? cfg->err : NULL;
	size_t err_len = cfg && cfg->err ? cfg->err_len : 0, len = 0;
	uint32_t timeout, waited = 0;
	int made = 0, sess_up = 0;
	enum e2e_status st = E2E_ERR_ARG;

	if (reason)
		*reason = 0;
	if (!cfg || !cfg->token || !cfg->identity_file || !cfg->authorities_file ||
	    !cfg->credential_file)
		return E2E_ERR_ARG;
	rp = calloc(1, sizeof *rp);   /* shared with Paho's thread until fini */
	if (!rp)
		return E2E_ERR_NOMEM;
	pthread_mutex_init(&rp->lock, NULL);
	pthread_cond_init(&rp->cond, NULL);
	timeout = cfg->timeout_ms ? cfg->timeout_ms : REDEEM_TIMEOUT_MS;
	st = e2e_ticket_token_parse(&tok, cfg->token);
	if (st != E2E_OK) {
		snprintf(err, err_len, "not a ticket token (want e2et1-... as printed by "
			"e2e-keytool ticket)");
		goto out;
	}
	memcpy(rp->fp, tok.fp, sizeof rp->fp);
	st = own_identity(&id, cfg->identity_file, &made);
	if (st != E2E_OK) {
		snprintf(err, err_len, "%s: %s", cfg->identity_file, e2e_strerror(st));
		goto out;
	}
	st = e2e_ticket_redeem_topic(topic, sizeof topic, cfg->control_topic ?
		cfg->control_topic : E2E_CTL_TOPIC_DEFAULT, tok.fp);
	if (st == E2E_OK)
		st = e2e_ticket_redeem(msg, sizeof msg, &len, &rp->sent, &id, &tok, NULL, topic,
			e2e_now_ms());
	if (st != E2E_OK) {
		snprintf(err, err_len, "cannot build the redemption: %s", e2e_strerror(st));
		goto out;
	}
	e2e_ctl_hash(rp->req_hash, msg, len);
	st = e2e_session_init(&sess, &cfg->conn, on_msg, on_state, rp, err, err_len);
	if (st != E2E_OK)
		goto out;
	sess_up = 1;
	st = e2e_session_subscribe(&sess, rp->sent.reply_topic, 1, 0);
	if (st == E2E_OK)
		st = e2e_session_connect(&sess, 10000, err, err_len);
	if (st == E2E_OK)
		st = e2e_session_subscribe_now(&sess, rp->sent.reply_topic, 1, 10000);
	if (st != E2E_OK) {
		if (err && !*err)
			snprintf(err, err_len, "cannot connect and subscribe to the broker");
		goto out;
	}
	pthread_mutex_lock(&rp->lock);
	while (!rp->done && waited < timeout) {
		pthread_mutex_unlock(&rp->lock);
		/* Always the same bytes: a resend can never consume a second use. */
		(void)e2e_session_publish(&sess, topic, msg, len, 1, 0);
		pthread_mutex_lock(&rp->lock);
		wait_until(rp, RESEND_MS);
		waited += RESEND_MS;
	}
	pthread_mutex_unlock(&rp->lock);
	e2e_session_fini(&sess);
	sess_up = 0;
	if (!rp->done) {
		st = E2E_ERR_IO;
		snprintf(err, err_len, "no valid answer from the authority in %u s (is e2e-authority "
			"running on this broker?)%s", timeout / 1000, rp->others ?
			"; answers to another redemption were dropped (a replayed GRANT?)" :
			rp->rejected ? "; answers that failed verification were dropped" : "");
		goto out;
	}
	if (reason)
		*reason = rp->reason;
	if (rp->reason != 0) {
		st = E2E_ERR_AUTH;
		snprintf(err, err_len, "the authority refused the ticket: %s",
			e2e_ticket_reason_name(rp->reason));
		goto out;
	}
	st = e2e_ticket_install(cfg->authorities_file, cfg->credential_file, &rp->authority,
		rp->cred, rp->cred_len, ierr, sizeof ierr);
	if (st != E2E_OK)
		snprintf(err, err_len, "cannot install the credential: %s", *ierr ? ierr :
			e2e_strerror(st));
out:
	if (sess_up)
		e2e_session_fini(&sess);
	sodium_memzero(&tok, sizeof tok);
	e2e_identity_destroy(&id);
	pthread_cond_destroy(&rp->cond);
	pthread_mutex_destroy(&rp->lock);
	free(rp);
	return st;
}
