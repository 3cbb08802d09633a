/*
 * e2e-sub --metrics-listen: Prometheus metrics from the client's own
 * statistics (e2e_client_stats, safe from any thread) and the session's
 * connection counters, rendered on libmicrohttpd's thread at each scrape.
 * Nothing is added to the message path: a scrape takes the client's stats
 * lock once.
 */
#include <ctype.h>
#include <stdio.h>

#include "metrics.h"
#include "sub.h"

struct sub_metrics_ctx {
	struct e2e_client *c;
	struct sub_out *o;
};

static struct sub_metrics_ctx mctx;

static void counter(struct e2e_prom *b, const char *name, const char *help, uint64_t v)
{
	e2e_prom_one(b, name, "counter", help, v);
}

static void render(void *ctx, struct e2e_prom *b)
{
	struct sub_metrics_ctx *m = ctx;
	struct e2e_client_stats st;
	char lab[64], v[32];

	e2e_client_stats(m->c, &st);
	e2e_prom_head(b, "e2e_sub_messages_total", "counter",
		"Messages received on subscribed topics, per verdict.");
	for (int i = 0; i <= E2E_V_FORGOTTEN; i++) {
		const char *n = e2e_verdict_name((enum e2e_verdict)i);
		size_t k = 0;

		for (; n[k] && k < sizeof v - 1; k++)
			v[k] = (char)tolower((unsigned char)n[k]);
		v[k] = '\0';
		snprintf(lab, sizeof lab, "verdict=\"%s\"", v);
		e2e_prom_u64(b, "e2e_sub_messages_total", lab, st.verdicts[i]);
	}
	counter(b, "e2e_sub_delivered_bytes_total", "Payload bytes handed to the output.",
		atomic_load_explicit(&m->o->bytes, memory_order_relaxed));
	counter(b, "e2e_sub_gap_messages_total", "Sequence numbers skipped (GAP verdicts).",
		st.gap_total);
	counter(b, "e2e_sub_lost_total", "Skipped messages that never came late.", st.lost);
	e2e_prom_head(b, "e2e_sub_pending", "gauge", "Skipped messages that may still come late.");
	e2e_prom_u64(b, "e2e_sub_pending", NULL, st.pending);
	e2e_prom_head(b, "e2e_sub_held", "gauge", "Messages held now, waiting for a key.");
	e2e_prom_u64(b, "e2e_sub_held", NULL, st.held_now);
	counter(b, "e2e_sub_held_total", "Messages held for a key.", st.held);
	counter(b, "e2e_sub_key_requests_total", "Key requests sent.", st.key_requests);
	counter(b, "e2e_sub_keys_received_total", "Key deliveries installed.", st.keys_received);
	counter(b, "e2e_sub_keys_ahead_total", "Keys installed ahead of their rotation.",
		st.keys_ahead);
	counter(b, "e2e_sub_ahead_switches_total",
		"Switches to a key installed ahead, without a key request.", st.ahead_switches);
	counter(b, "e2e_sub_ahead_requests_total",
		"Key requests made only to fetch the next key ahead.", st.ahead_requests);
	counter(b, "e2e_sub_announce_requests_total",
		"Key requests an announced epoch we did not hold made.", st.announce_requests);
	counter(b, "e2e_sub_key_refusals_total", "Signed refusals received.", st.refusals);
	counter(b, "e2e_sub_control_rejected_total", "Control messages that failed verification.",
		st.control_rejected);
	counter(b, "e2e_sub_summaries_received_total", "Signed summaries received.", st.summaries);
	counter(b, "e2e_sub_summaries_verified_total",
		"Summary entries that matched the messages received.", st.summary_verified);
	counter(b, "e2e_sub_insider_forgeries_total",
		"Accepted messages a sender's summary contradicts.", st.insider_forgeries);
	counter(b, "e2e_sub_unconfirmed_total",
		"Messages a summary lists that never arrived.", st.unconfirmed);
	counter(b, "e2e_sub_unsummarized_total", "Accepted messages no summary covered.",
		st.unsummarized);
	counter(b, "e2e_sub_unchecked_total",
		"Accepted messages whose summaries never came.", st.unchecked);
	counter(b, "e2e_sub_stalls_total", "Senders whose summary was overdue (stalled?).",
		st.stalls);
	e2e_prom_head(b, "e2e_sub_connected", "gauge", "1 while connected to the broker.");
	e2e_prom_u64(b, "e2e_sub_connected", NULL,
		(uint64_t)atomic_load_explicit(&m->o->connected, memory_order_relaxed));
	{
		uint64_t n = atomic_load_explicit(&m->o->connects, memory_order_relaxed);

		counter(b, "e2e_sub_reconnects_total",
			"Times the broker connection came back after a loss.", n ? n - 1 : 0);
	}
}

struct e2e_metrics *sub_metrics_start(const char *hostport, struct e2e_client *c,
	struct sub_out *o)
{
	char err[256];
	struct e2e_metrics *m;

	mctx.c = c;
	mctx.o = o;
	m = e2e_metrics_start(hostport, render, &mctx, err, sizeof err);
	if (!m)
		fprintf(stderr, "%s: %s\n", SUB_PROG, err);
	return m;
}
