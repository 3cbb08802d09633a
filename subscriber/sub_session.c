/*
 * e2e-sub's session: each message the client hands over becomes a line on
 * stdout (its payload, or a JSON object), every verdict other than OK a
 * marker on stderr; the main thread waits for the end of the run, which
 * closes with a one-line summary on stderr.
 */
#include <stdio.h>
#include <string.h>

#include "cliopts.h"
#include "jsonout.h"
#include "sub.h"

#define KEY_WAIT_MS 5000U
#define TICK_MS 20U

/* The verdicts that --strict turns into exit status 3. */
static int is_anomaly(enum e2e_verdict v)
{
	switch (v) {
	case E2E_V_FORGED:
	case E2E_V_TOO_OLD:
	case E2E_V_MALFORMED:
	case E2E_V_FORGOTTEN:
	case E2E_V_UNKNOWN_KEY:
		return 1;
	default:
		return 0;
	}
}

/* The trust store's name for the sender, else its 32-bit id in hex. */
static const char *sender_str(const struct e2e_client_msg *m, char hex[9])
{
	if (m->sender_name)
		return m->sender_name;
	snprintf(hex, 9, "%08x", (unsigned)m->sender);
	return hex;
}

static void print_json(const struct e2e_client_msg *m, int delivers)
{
	struct jout j;
	const char *verdict = e2e_verdict_name(m->verdict);
	char hex[9];
	const char *sender = sender_str(m, hex);

	jout_begin(&j, stdout);
	jout_str(&j, "topic", m->topic, strlen(m->topic));
	/* Undelivered verdicts carry no plaintext: say so rather than omit it. */
	if (!delivers)
		jout_null(&j, "payload");
	else if (jout_is_text(m->payload, m->len))
		jout_str(&j, "payload", (const char *)m->payload, m->len);
	else
		jout_b64(&j, "payload_b64", m->payload, m->len);
	jout_str(&j, "verdict", verdict, strlen(verdict));
	jout_str(&j, "sender", sender, strlen(sender));
	jout_u64(&j, "epoch", m->epoch);
	jout_u64(&j, "scope", m->scope);
	jout_u64(&j, "seq", m->seq);
	jout_u64(&j, "gap", m->gap);
	jout_bool(&j, "retained", m->retained);
	jout_u64(&j, "qos", (uint64_t)m->qos);
	jout_end(&j);
}

static void print_text(const struct sub_out *o, const struct e2e_client_msg *m)
{
	if (o->verbose)
		printf("%s ", m->topic);
	fwrite(m->payload, 1, m->len, stdout);
	putchar('\n');
}

static void marker(const struct e2e_client_msg *m)
{
	char hex[9], gap[32] = "";

	if (m->verdict == E2E_V_MALFORMED) {
		/* No envelope, so no header fields worth showing. */
		fprintf(stderr, "%s: [MALFORMED] %s (not an envelope%s)\n", SUB_PROG, m->topic,
			m->retained ? ", retained" : "");
		return;
	}
	if (m->verdict == E2E_V_GAP)
		snprintf(gap, sizeof gap, " %llu", (unsigned long long)m->gap);
	fprintf(stderr, "%s: [%s%s] %s (sender %s, scope %u, epoch %u, seq %u%s)\n", SUB_PROG,
		e2e_verdict_name(m->verdict), gap, m->topic, sender_str(m, hex), m->scope,
		m->epoch, m->seq, m->retained ? ", retained" : "");
}

void sub_on_message(void *ctx, const struct e2e_client_msg *m)
{
	struct sub_out *o = ctx;
	int delivers = e2e_verdict_delivers(m->verdict);

	/* After -C is reached the run is over: what races in before the
	 * disconnect is neither shown nor counted. */
	if (o->count && atomic_load(&o->delivered) >= o->count)
		return;
	if ((unsigned)m->verdict <= E2E_V_FORGOTTEN)
		o->verdicts[m->verdict]++;
	if (m->verdict == E2E_V_GAP)
		o->gap_total += m->gap;
	if (is_anomaly(m->verdict))
		atomic_store(&o->anomaly, 1);
	if (m->verdict == E2E_V_DUPLICATE && !o->show_all)
		return;
	if (o->json)
		print_json(m, delivers);
	else if (delivers)
		print_text(o, m);
	/* Data first, so a reader of both streams sees the marker after it. */
	fflush(stdout);
	if (m->verdict != E2E_V_OK && (!o->json || is_anomaly(m->verdict)))
		marker(m);
	if (delivers)
		atomic_fetch_add(&o->delivered, 1);
}

void sub_on_event(void *ctx, const struct e2e_client_event *ev)
{
	struct sub_out *o = ctx;

	if (cli_report_event(ev))
		atomic_store(&o->anomaly, 1);
}

void sub_run(struct e2e_client *c, struct sub_out *o, unsigned long wait_s)
{
	uint64_t start = e2e_mono_ms(), now;
	int keys_done = 0;

	/* Messages arrive on the client's thread; this one only watches the clock. */
	while (!cli_stopped() && !(o->count && atomic_load(&o->delivered) >= o->count)) {
		now = e2e_mono_ms();
		if (wait_s && now - start >= wait_s * 1000U)
			break;
		if (!keys_done && e2e_client_wait_keys(c, 0) == E2E_OK)
			keys_done = 1;
		if (!keys_done && now - start >= KEY_WAIT_MS) {
			fprintf(stderr, "%s: no keys yet from every trusted sender after %u s "
				"(still asking)\n", SUB_PROG, KEY_WAIT_MS / 1000);
			keys_done = 1;
		}
		cli_sleep_ms(TICK_MS);
	}
}

void sub_summary(const struct sub_out *o, const struct e2e_client_stats *st)
{
	unsigned long long total = 0;

	for (int v = 0; v <= E2E_V_FORGOTTEN; v++)
		total += o->verdicts[v];
	fprintf(stderr, "%s: %llu received: ", SUB_PROG, total);
	for (int v = 0; v <= E2E_V_FORGOTTEN; v++) {
		fprintf(stderr, "%s%s %llu", v ? ", " : "", e2e_verdict_name((enum e2e_verdict)v),
			(unsigned long long)o->verdicts[v]);
		if (v == E2E_V_GAP)
			fprintf(stderr, " (%llu missing)", (unsigned long long)o->gap_total);
	}
	fprintf(stderr, "; lost %llu pending %llu\n", (unsigned long long)st->lost,
		(unsigned long long)st->pending);
	/* What the signed summaries settled, when a sender sends them. */
	if (st->summaries || st->stalls)
		fprintf(stderr, "%s: summaries: %llu received; entries verified %llu, contradicted "
			"%llu; messages never arrived %llu, unsummarized %llu, not checked %llu; "
			"stalls %llu\n", SUB_PROG, (unsigned long long)st->summaries,
			(unsigned long long)st->summary_verified,
			(unsigned long long)st->insider_forgeries,
			(unsigned long long)st->unconfirmed, (unsigned long long)st->unsummarized,
			(unsigned long long)st->unchecked, (unsigned long long)st->stalls);
}
