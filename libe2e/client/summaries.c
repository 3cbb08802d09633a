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

static void evaluate(struct e2e_client *c, struct pending_summary *p)
{
	struct trusted *t = e2e_client_trusted(c, p->sender);
	char topic[300];
	struct e2e_ctl m;

	/* Verified on arrival; parse again to walk its entries. */
	if (t && e2e_ctl_sender_topic(topic, sizeof topic, c->control_topic, t->sender) == E2E_OK &&
	    e2e_ctl_parse(&m, p->msg, p->len, topic, &t->pub) == E2E_OK) {
		e2e_sumcheck_summary(c->sumcheck, t->sender, &m, p->index, e2e_mono_ms(),
			e2e_client_summarized, e2e_client_sum_report, c);
		if (p->index)
			t->sum_checked++;
		/* Envelopes under retired keys this summary may have confirmed. */
		e2e_client_release_retired(c, e2e_mono_ms());
	}
	free(p->msg);
	p->msg = NULL;
}

void e2e_client_expect_summaries(struct e2e_client *c, struct trusted *t, uint32_t interval_ms,
	uint64_t mono)
{
	(void)c;
	if (interval_ms == 0)
		return;
	if (!t->sum_boot)
		t->sum_interval_ms = interval_ms;   /* a summary's own interval wins */
	if (!t->sum_mono)
		t->sum_mono = mono;
}

/* The signed time against our clock: skew is reported, not silently trusted. */
static void check_clock(struct e2e_client *c, struct trusted *t, uint64_t time_ms)
{
	uint64_t now = e2e_now_ms();
	uint64_t diff = now > time_ms ? now - time_ms : time_ms - now;
	char d[200];

	if (diff <= c->cfg.clock_skew_ms) {
		t->skewed = 0;
		return;
	}
	if (t->skewed)
		return;
	t->skewed = 1;
	c->st.clock_skews++;
	snprintf(d, sizeof d, "%s's summary is signed %llu ms %s our clock (tolerance %u ms): "
		"clocks skewed, or the summary was held back", t->name,
		(unsigned long long)diff, now > time_ms ? "behind" : "ahead of",
		c->cfg.clock_skew_ms);
	e2e_client_event(c, E2E_EV_CLOCK_SKEW, t->sender, 0, 0, d);
}

/* Summaries (or parts) of @p t that should have come did not: stalled. */
static void missed(struct e2e_client *c, struct trusted *t, const char *what, const char *which)
{
	char d[300];

	snprintf(d, sizeof d, "%s of %s missing (%s): withheld?", what, t->name, which);
	c->st.stalls++;
	e2e_client_event(c, E2E_EV_STALLED, t->sender, 0, 0, d);
}

void e2e_client_on_summary(struct e2e_client *c, struct trusted *t, const char *topic,
	const uint8_t *msg, size_t len, const struct e2e_ctl *m)
{
	struct pending_summary *p;
	struct e2e_sumcheck_part pi;
	char what[60], which[60];

	(void)topic;
	/* Part binding and order (replays, gaps, restarts): SPEC 11.6. */
	if (e2e_sumcheck_accept(c->sumcheck, t->sender, m, &pi) != 0 || !pi.accepted) {
		c->st.parts_ignored++;
		return;
	}
	if (pi.parts_number) {
		snprintf(what, sizeof what, "%u summary part(s)", pi.parts_to - pi.parts_from + 1U);
		snprintf(which, sizeof which, "parts %u..%u of number %u", pi.parts_from,
			pi.parts_to, pi.parts_number);
		missed(c, t, what, which);
	}
	if (pi.gap_to) {
		snprintf(what, sizeof what, "%u summary(ies)", pi.gap_to - pi.gap_from + 1);
		snprintf(which, sizeof which, "numbers %u..%u", pi.gap_from, pi.gap_to);
		missed(c, t, what, which);
	}
	c->st.summaries++;
	t->sum_boot = m->boot;
	check_clock(c, t, m->time_ms);
	t->sum_interval_ms = m->interval_ms;
	t->sum_mono = e2e_mono_ms();
	t->stalled = 0;
	if (c->nsumq == SUMMARY_QUEUE) {
		/* Full: the oldest is checked now (in arrival order, parts in sequence). */
		evaluate(c, &c->sumq[0]);
		memmove(c->sumq, c->sumq + 1, --c->nsumq * sizeof *c->sumq);
	}
	p = &c->sumq[c->nsumq];
	p->msg = malloc(len);
	if (!p->msg)
		return;
	memcpy(p->msg, msg, len);
	p->len = len;
	p->sender = t->sender;
	/* Its arrival, counted now: what arrives from here on is not its business. */
	p->index = pi.index;
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
		if (!t->sum_mono || !t->sum_interval_ms || t->stalled ||
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
