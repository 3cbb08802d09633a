/*
 * e2e-authority's MQTT side. Redemptions are answered on Paho's thread, one
 * at a time: each takes the directory's write lock (SPEC 6.5; e2e-keytool
 * ticket adds records meanwhile), reads the ticket records, decides
 * (e2e_ticket_serve), writes the records back durably when a use was
 * consumed and only then publishes the GRANT, so a crash can lose a GRANT
 * (the redeemer resends the same REDEEM and gets it again) but never hand
 * out a use twice.
 */
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "authority.h"
#include "e2e/ticket.h"
#include "state/fileio.h"
#include "session.h"

#define REVOCATIONS_MAX 65535U

struct service {
	const struct auth_args *a;
	struct e2e_identity id;
	char redeem_topic[E2E_TICKET_TOPIC_MAX + 1];
	char list_topic[E2E_TICKET_TOPIC_MAX + 1];
	char tickets[PATH_MAX], revocations[PATH_MAX];
	struct e2e_session sess;
	atomic_int connected_gen;     /* bumped on every (re)connection */
	uint64_t granted, refused, replayed, dropped;
};

static volatile sig_atomic_t hup;

static void on_hup(int sig)
{
	(void)sig;
	hup = 1;
}

/* DIR/issued, as e2e-keytool authority issue keeps it (SPEC 13): so that
 * "authority revoke FINGERPRINT" finds ticket-enrolled subscribers too. */
static void log_issue(struct service *s, const struct e2e_ticket_outcome *res)
{
	char path[PATH_MAX], fp[E2E_FINGERPRINT_LEN], pl[E2E_PUBLINE_MIN + 1];
	FILE *f;

	if (cli_join(path, sizeof path, s->a->dir, "issued") != 0 ||
	    e2e_public_format(pl, sizeof pl, &res->redeemer, NULL) != E2E_OK)
		return;
	e2e_public_fingerprint(fp, &res->redeemer);
	f = fopen(path, "a");
	if (f && fprintf(f, "%s subscriber %llu %s\n", fp, (unsigned long long)res->serial,
			pl) < 0) {
		fclose(f);
		f = NULL;
	}
	if (!f || fclose(f) != 0)
		fprintf(stderr, "%s: cannot append to %s\n", AUTH_PROG, path);
}

static void answer(struct service *s, const char *topic, const uint8_t *msg, size_t len)
{
	struct e2e_tickets ts = { 0 };
	struct e2e_ticket_outcome res;
	uint8_t out[E2E_CTL_MSG_MAX];
	char err[512] = "", id[2 * E2E_TICKET_ID_BYTES + 1], fp[E2E_FINGERPRINT_LEN];
	size_t out_len = 0;
	int lock = -1;
	enum e2e_status st;

	st = e2e_dir_lock(s->a->dir, &lock);
	if (st == E2E_OK)
		st = e2e_tickets_load(&ts, s->tickets, err, sizeof err);
	if (st != E2E_OK) {
		/* No answer: the redeemer resends, and we may read the file then. */
		fprintf(stderr, "%s: %s: %s\n", AUTH_PROG, s->tickets, *err ? err : e2e_strerror(st));
		goto out;
	}
	st = e2e_ticket_serve(out, sizeof out, &out_len, &res, &ts, &s->id, msg, len, topic,
		e2e_now_ms(), s->a->window_ms, s->a->cred_ttl_ms);
	if (st != E2E_OK) {
		s->dropped++;
		if (s->a->verbose)
			fprintf(stderr, "%s: dropped a message on %s: %s\n", AUTH_PROG, topic,
				e2e_strerror(st));
		goto out;
	}
	/* Durable before it is announced: the use is spent even if we crash now. */
	if (res.consumed && (st = e2e_tickets_save(&ts, s->tickets)) != E2E_OK) {
		fprintf(stderr, "%s: %s: %s: no GRANT sent\n", AUTH_PROG, s->tickets,
			e2e_strerror(st));
		goto out;
	}
	if (res.consumed)
		log_issue(s, &res);
	e2e_dir_unlock(lock);
	lock = -1;
	if (e2e_session_publish(&s->sess, res.reply_topic, out, out_len, 1, 0) != E2E_OK)
		fprintf(stderr, "%s: cannot publish the answer on %s\n", AUTH_PROG, res.reply_topic);
	if (res.reason)
		s->refused++;
	else if (res.replayed)
		s->replayed++;
	else
		s->granted++;
	if (s->a->verbose || res.reason) {
		sodium_bin2hex(id, sizeof id, res.ticket_id, sizeof res.ticket_id);
		e2e_public_fingerprint(fp, &res.redeemer);
		fprintf(stderr, "%s: ticket %s, redeemer %s: %s%s\n", AUTH_PROG, id, fp,
			e2e_ticket_reason_name(res.reason), res.replayed ?
			" (the same redemption again: the same answer, no use consumed)" : "");
	}
out:
	if (lock >= 0)
		e2e_dir_unlock(lock);
	e2e_tickets_free(&ts);
}

static void on_msg(void *ctx, const char *topic, const uint8_t *payload, size_t len, int qos,
	int retained)
{
	struct service *s = ctx;

	(void)qos;
	if (retained || strcmp(topic, s->redeem_topic) != 0)
		return;   /* a retained REDEEM would be answered at every start */
	answer(s, topic, payload, len);
}

static void on_state(void *ctx, int connected, const char *why, const char *broker,
	const char *lost)
{
	struct service *s = ctx;

	if (connected) {
		atomic_fetch_add(&s->connected_gen, 1);
		if (lost)
			fprintf(stderr, "%s: reconnected: broker %s lost, now %s\n", AUTH_PROG, lost,
				broker ? broker : "?");
	} else
		fprintf(stderr, "%s: connection lost%s%s%s%s\n", AUTH_PROG, broker ? " to " : "",
			broker ? broker : "", why ? ": " : "", why ? why : "");
}

/* Publish DIR/revocations (as authority revoke wrote it) retained, if any. */
static void publish_revocations(struct service *s)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	enum e2e_status st = e2e_file_read(s->revocations, 0, &buf, &len);

	if (st == E2E_ERR_NOT_FOUND)
		return;
	if (st != E2E_OK) {
		char err[512];

		e2e_file_explain(s->revocations, 0, st, err, sizeof err);
		fprintf(stderr, "%s: %s\n", AUTH_PROG, err);
		return;
	}
	if (len < 2 || len > REVOCATIONS_MAX || buf[0] != E2E_CTL_VERSION || buf[1] != 0x06)
		fprintf(stderr, "%s: %s: not a revocation list (SPEC 13); not published\n",
			AUTH_PROG, s->revocations);
	else if (e2e_session_publish(&s->sess, s->list_topic, buf, len, 1, 1) != E2E_OK)
		fprintf(stderr, "%s: cannot publish the revocation list\n", AUTH_PROG);
	else if (s->a->verbose)
		fprintf(stderr, "%s: revocation list published on %s (retained)\n", AUTH_PROG,
			s->list_topic);
	e2e_file_free(buf, len);
}

int auth_serve(const struct auth_args *a)
{
	static struct service s;
	struct sigaction sa;
	uint8_t fp[E2E_FP_BYTES];
	char key[PATH_MAX], err[PATH_MAX + 200] = "", fps[E2E_FINGERPRINT_LEN];
	const char *control = a->cc.control_topic ? a->cc.control_topic : E2E_CTL_TOPIC_DEFAULT;
	int owner = -1, gen = 0, ret = CLI_EXIT_USAGE, sess_up = 0;
	long holder = 0;
	enum e2e_status st;

	memset(&s, 0, sizeof s);
	s.a = a;
	atomic_init(&s.connected_gen, 0);
	if (cli_join(key, sizeof key, a->dir, "authority.key") ||
	    cli_join(s.tickets, sizeof s.tickets, a->dir, "tickets") ||
	    cli_join(s.revocations, sizeof s.revocations, a->dir, "revocations"))
		goto out;
	st = e2e_identity_load(&s.id, key);
	if (st != E2E_OK) {
		e2e_file_explain(key, 1, st, err, sizeof err);
		snprintf(err + strlen(err), sizeof err - strlen(err), "%s", st == E2E_ERR_NOT_FOUND ?
			" (make it with 'e2e-keytool authority init')" : "");
		goto out;
	}
	/* One service per directory (the owner lock of SPEC 6.5). */
	st = e2e_dir_own(a->dir, &owner, &holder);
	if (st != E2E_OK) {
		snprintf(err, sizeof err, "%s: %s%s%ld", a->dir, e2e_strerror(st),
			st == E2E_ERR_BUSY ? ": another e2e-authority serves it, pid " : "",
			st == E2E_ERR_BUSY ? holder : 0L);
		goto out;
	}
	e2e_public_fp(fp, &s.id.pub);
	if (e2e_ticket_redeem_topic(s.redeem_topic, sizeof s.redeem_topic, control, fp) ||
	    e2e_ticket_authority_topic(s.list_topic, sizeof s.list_topic, control, fp)) {
		snprintf(err, sizeof err, "--control-topic too long");
		goto out;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_hup;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	cli_signals_hold();
	if (e2e_session_init(&s.sess, &a->cc.conn, on_msg, on_state, &s, err, sizeof err) != E2E_OK)
		goto out;
	sess_up = 1;
	ret = CLI_EXIT_CONNECT;
	if (e2e_session_subscribe(&s.sess, s.redeem_topic, 1, 0) != E2E_OK ||
	    e2e_session_connect(&s.sess, 10000, err, sizeof err) != E2E_OK ||
	    e2e_session_wait_subscribed(&s.sess, 10000) != 0) {
		if (!*err)
			snprintf(err, sizeof err, "cannot connect and subscribe to the broker");
		goto out;
	}
	cli_signals_release();
	e2e_public_fingerprint(fps, &s.id.pub);
	fprintf(stderr, "%s: authority %s serving redemptions on %s\n", AUTH_PROG, fps,
		s.redeem_topic);
	ret = CLI_EXIT_OK;
	while (!cli_stopped()) {
		int g = atomic_load(&s.connected_gen);

		/* At every (re)connection, and on SIGHUP: the list, retained. */
		if (g != gen || hup) {
			hup = 0;
			gen = g;
			publish_revocations(&s);
		}
		cli_sleep_ms(200);
	}
out:
	if (sess_up)
		e2e_session_fini(&s.sess);
	if (ret == CLI_EXIT_OK)
		fprintf(stderr, "%s: %llu granted, %llu refused, %llu answered again, %llu dropped\n",
			AUTH_PROG, (unsigned long long)s.granted, (unsigned long long)s.refused,
			(unsigned long long)s.replayed, (unsigned long long)s.dropped);
	else
		fprintf(stderr, "%s: %s\n", AUTH_PROG, *err ? err : "setup failed");
	if (owner >= 0)
		e2e_dir_unlock(owner);
	e2e_identity_destroy(&s.id);
	return ret;
}
