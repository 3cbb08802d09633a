/*
 * The subscriber client's leaf: what every part of it (client.c,
 * keyfetch.c, summaries.c, hold.c) uses and none of them owns: reporting
 * an event, finding a trusted sender, and the summary check's two
 * callbacks. It calls into no other file of the client, so the parts
 * depend on each other in one direction only (client, keyfetch,
 * summaries, hold, then this; tests/lib/circles.py holds it so).
 * Runs with the client lock held.
 */
#include <stdio.h>
#include <string.h>

#include "client_impl.h"
#include "e2e/scopes.h"

void e2e_client_event(struct e2e_client *c, enum e2e_client_event_type type, uint32_t sender,
	uint8_t scope, uint32_t epoch, const char *detail)
{
	struct e2e_client_event ev = { type, sender, scope, epoch, detail ? detail : "",
		NULL, NULL };

	if (c->cfg.on_event)
		c->cfg.on_event(c->cfg.ctx, &ev);
}

struct trusted *e2e_client_trusted(struct e2e_client *c, uint32_t sender)
{
	for (uint32_t i = 0; i < c->ntrust; i++)
		if (c->trust[i].sender == sender)
			return &c->trust[i];
	return NULL;
}

int e2e_client_summarized(void *ctx, const char *topic, size_t len)
{
	struct e2e_client *c = ctx;
	int hit = 0;

	pthread_mutex_lock(&c->sess.lock);
	for (int i = 0; i < c->sess.nsubs && !hit; i++) {
		const char *f = c->sess.subs[i];

		/* A shared subscription sees only part of a stream: never complete. */
		if (strncmp(f, "$share/", 7) == 0 || strcmp(f, c->reply_topic) == 0 ||
		    strcmp(f, c->announce_filter) == 0)
			continue;
		hit = e2e_topic_matches(f, strlen(f), topic, len);
	}
	pthread_mutex_unlock(&c->sess.lock);
	return hit;
}

void e2e_client_sum_report(void *ctx, const struct e2e_sumcheck_report *r)
{
	struct e2e_client *c = ctx;
	struct trusted *t = e2e_client_trusted(c, r->sender);
	const char *who = t ? t->name : "?";
	char d[400];
	int tl = r->topic_len > 200 ? 200 : (int)r->topic_len;

	/* Revoked (SPEC 13.3): its summaries are no longer read, so what they
	 * would have settled is not an alarm. */
	if (t && t->revoked)
		return;
	switch (r->result) {
	case E2E_SUM_VERIFIED:
		c->st.summary_verified++;
		return;
	case E2E_SUM_FORGED:
		c->st.insider_forgeries++;
		snprintf(d, sizeof d, "insider forgery: %s's summary contradicts the accepted message "
			"on '%.*s' seq %u (sealed with the shared key by someone else)", who, tl,
			r->topic ? r->topic : "", r->first);
		e2e_client_event(c, E2E_EV_INSIDER_FORGERY, r->sender, 0, 0, d);
		return;
	case E2E_SUM_UNCONFIRMED:
		c->st.unconfirmed += r->missing;
		snprintf(d, sizeof d, "%u message(s) of '%.*s' seqs %u..%u from %s never arrived "
			"(dropped or withheld)", r->missing, tl, r->topic, r->first, r->last, who);
		e2e_client_event(c, E2E_EV_UNCONFIRMED, r->sender, 0, 0, d);
		return;
	case E2E_SUM_UNSUMMARIZED:
		c->st.unsummarized++;
		snprintf(d, sizeof d, "accepted message seq %u (run %08x) from %s is in no summary: "
			"forged by an insider?", r->first, r->run, who);
		e2e_client_event(c, E2E_EV_UNSUMMARIZED, r->sender, 0, 0, d);
		return;
	case E2E_SUM_UNCHECKED:
		c->st.unchecked += r->missing;
		snprintf(d, sizeof d, "%u accepted message(s) from %s (seqs %u..%u) not checked: "
			"the summaries covering them never came (missing, or %s restarted) or the "
			"check's tables were full", r->missing, who, r->first, r->last, who);
		e2e_client_event(c, E2E_EV_UNCHECKED, r->sender, 0, 0, d);
		return;
	case E2E_SUM_HIST_LOST:
		/* Its summary was lost too; a later one's history kept its range. */
		c->st.unconfirmed += r->missing;
		c->st.hist_lost += r->missing;
		snprintf(d, sizeof d, "%u message(s) of '%.*s' seqs %u..%u from %s never arrived "
			"(listed by its summary %u, lost as well; from a later summary's history)",
			r->missing, tl, r->topic, r->first, r->last, who, r->number);
		e2e_client_event(c, E2E_EV_UNCONFIRMED, r->sender, 0, 0, d);
		return;
	case E2E_SUM_LATE:
		c->st.arrived_late += r->missing;
		c->st.unconfirmed -= r->missing <= c->st.unconfirmed ? r->missing : c->st.unconfirmed;
		snprintf(d, sizeof d, "%u message(s) from %s (seq %u, run %08x) arrived late, as "
			"summarized: not lost after all", r->missing, who, r->first, r->run);
		e2e_client_event(c, E2E_EV_ARRIVED_LATE, r->sender, 0, 0, d);
		return;
	}
}
