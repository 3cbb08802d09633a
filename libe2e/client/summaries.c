/*
 * Checking the senders' signed summaries in the subscriber client
 * (protocol/SPEC.md sec. 11.6): queue each verified summary for a moment
 * (data on other topics may still be in flight), then compare it with the
 * digests of what we accepted; watch for summaries that stop coming.
 * Runs with the client lock held.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"
#include "e2e/scopes.h"

static int subscribed(void *ctx, const char *topic, size_t len)
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

static void on_report(void *ctx, const struct e2e_sumcheck_report *r)
{
	struct e2e_client *c = ctx;
	struct trusted *t = e2e_client_trusted(c, r->sender);
	const char *who = t ? t->name : "?";
	char d[400];
	int tl = r->topic_len > 200 ? 200 : (int)r->topic_len;

	switch (r->result) {
	case E2E_SUM_VERIFIED:
		c->st.summary_verified++;
		return;
	case E2E_SUM_FORGED:
		c->st.insider_forgeries++;
		snprintf(d, sizeof d, "insider forgery: %s's summary contradicts accepted messages on "
			"'%.*s' seqs %u..%u (sealed with the shared key by someone else)", who, tl,
			r->topic, r->first, r->last);
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
			"the summaries covering them never came (missing, or %s restarted)",
			r->missing, who, r->first, r->last, who);
		e2e_client_event(c, E2E_EV_UNCHECKED, r->sender, 0, 0, d);
		return;
	}
}

static void evaluate(struct e2e_client *c, struct pending_summary *p)
{
	struct trusted *t = e2e_client_trusted(c, p->sender);
	char topic[300];
	struct e2e_ctl m;

	/* Verified on arrival; parse again to walk its entries. */
	if (t && e2e_ctl_sender_topic(topic, sizeof topic, c->control_topic, t->sender) == E2E_OK &&
	    e2e_ctl_parse(&m, p->msg, p->len, topic, &t->pub) == E2E_OK)
		e2e_sumcheck_summary(c->sumcheck, t->sender, &m, p->index, subscribed, on_report, c);
	free(p->msg);
	p->msg = NULL;
}

void e2e_client_on_summary(struct e2e_client *c, struct trusted *t, const char *topic,
	const uint8_t *msg, size_t len, const struct e2e_ctl *m)
{
	struct pending_summary *p;
	char d[200];

	(void)topic;
	c->st.summaries++;
	/* Signed times order summaries across sender restarts, which start the
	 * numbers again; numbers find gaps within one sender run. */
	if (m->part == 0 && t->sum_mono) {
		if (m->time_ms < t->sum_time_ms ||
		    (m->time_ms == t->sum_time_ms && m->number <= t->sum_number))
			return;   /* an old summary replayed: nothing new */
		if (m->number <= t->sum_number) {
			/* Newer but numbered from the start again: the sender
			 * restarted. What it sealed since its last summary here
			 * was never summarized. */
			t->sum_number = 0;
			e2e_sumcheck_missed(c->sumcheck, t->sender);
		}
	} else if (m->part == 0 && m->number > 1) {
		/* The first one we see, and not the sender's first: what we
		 * accepted before it (retained, queued in our session, sealed
		 * before a broker outage) may be in summaries we never saw. */
		e2e_sumcheck_missed(c->sumcheck, t->sender);
	}
	if (t->sum_number && m->number > t->sum_number + 1) {
		snprintf(d, sizeof d, "%u summary(ies) of %s missing (numbers %u..%u): withheld?",
			m->number - t->sum_number - 1, t->name, t->sum_number + 1, m->number - 1);
		c->st.stalls++;
		e2e_client_event(c, E2E_EV_STALLED, t->sender, 0, 0, d);
		e2e_sumcheck_missed(c->sumcheck, t->sender);
	}
	if (m->number > t->sum_number)
		t->sum_number = m->number;
	if (m->time_ms > t->sum_time_ms)
		t->sum_time_ms = m->time_ms;
	t->sum_interval_ms = m->interval_ms;
	t->sum_mono = e2e_mono_ms();
	t->stalled = 0;
	if (c->nsumq == SUMMARY_QUEUE)
		evaluate(c, &c->sumq[--c->nsumq]);   /* full: no more waiting */
	p = &c->sumq[c->nsumq];
	p->msg = malloc(len);
	if (!p->msg)
		return;
	memcpy(p->msg, msg, len);
	p->len = len;
	p->sender = t->sender;
	/* Its arrival, counted now: what arrives from here on is not its business. */
	p->index = m->part + 1 == m->parts ? e2e_sumcheck_arrived(c->sumcheck, t->sender) : 0;
	p->due_mono = t->sum_mono + SUMMARY_DELAY_MS;
	c->nsumq++;
}

void e2e_client_check_summaries(struct e2e_client *c, uint64_t mono)
{
	uint32_t k = 0;

	/* In arrival order, so parts and numbers are checked in sequence. */
	for (uint32_t i = 0; i < c->nsumq; i++) {
		if (c->sumq[i].due_mono <= mono)
			evaluate(c, &c->sumq[i]);
		else
			c->sumq[k++] = c->sumq[i];
	}
	c->nsumq = k;
	for (uint32_t i = 0; i < c->ntrust; i++) {
		struct trusted *t = &c->trust[i];
		char d[200];

		/* 2.5 intervals without a summary: the broker is withholding it. */
		if (!t->sum_mono || t->stalled ||
		    mono - t->sum_mono <= (uint64_t)t->sum_interval_ms * 5 / 2)
			continue;
		t->stalled = 1;
		c->st.stalls++;
		snprintf(d, sizeof d, "no summary from %s for %llu ms (interval %u ms): "
			"its traffic may be withheld", t->name,
			(unsigned long long)(mono - t->sum_mono), t->sum_interval_ms);
		e2e_client_event(c, E2E_EV_STALLED, t->sender, 0, 0, d);
	}
}
