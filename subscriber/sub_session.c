/*
 * e2e-sub's session: each message the client hands over becomes a line on
 * stdout (its payload, or a JSON object), every verdict other than OK a
 * marker on stderr; the main thread waits for the end of the run, which
 * closes with a one-line summary on stderr.
 */
#include <stdio.h>
#include <string.h>

#include "cliopts.h"
#include "fmt.h"
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
	/* Sealed under a retired key and delivered once a summary confirmed it
	 * (SPEC 11.5): only then present. */
	if (m->confirmed)
		jout_bool(&j, "confirmed", 1);
	jout_end(&j);
}

/* As mosquitto_sub: an empty payload prints nothing, or "topic (null)" with -v. */
static void print_text(const struct sub_out *o, const struct e2e_client_msg *m)
{
	if (o->format) {
		sub_fmt_print(stdout, o->format, o->eol, m);
		return;
	}
	if (o->verbose && !m->len) {
		if (o->eol)
			printf("%s (null)\n", m->topic);
		return;
	}
	if (!m->len)
		return;
	if (o->verbose)
		printf("%s ", m->topic);
	fwrite(m->payload, 1, m->len, stdout);
	if (o->eol)
		putchar('\n');
}

int sub_topic_matches(const char *filter, const char *topic)
{
	/* Wildcards at the first level do not match $-topics (MQTT 4.7.2). */
	if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
		return 0;
	for (;;) {
		size_t fl = strcspn(filter, "/"), tl = strcspn(topic, "/");

		if (fl == 1 && filter[0] == '#')
			return 1;
		if (!(fl == 1 && filter[0] == '+') && (fl != tl || memcmp(filter, topic, fl) != 0))
			return 0;
		filter += fl;
		topic += tl;
		if (!*filter && !*topic)
			return 1;
		/* "a/#" also matches "a" */
		if (!*topic && filter[0] == '/' && !strcmp(filter + 1, "#"))
			return 1;
		if (!*filter || !*topic)
			return 0;
		filter++;
		topic++;
	}
}

static int filtered_out(const struct sub_out *o, const char *topic)
{
	for (int i = 0; i < o->nfilter_out; i++)
		if (sub_topic_matches(o->filter_out[i], topic))
			return 1;
	return 0;
}

/*
 * mosquitto_sub's order: --retained-only ends the run at the first fresh
 * message (not printed), -R hides stale ones, -T hides topics, then the
 * message is printed and counted for -C. Only authentic messages take
 * part; the others are markers and tallies, whatever the filters say.
 */
static int shown(struct sub_out *o, const struct e2e_client_msg *m)
{
	if (o->retained_only && !m->retained) {
		atomic_store(&o->done, 1);
		return 0;
	}
	return !(m->retained && o->no_retain) && !filtered_out(o, m->topic);
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
	int delivers = e2e_verdict_delivers(m->verdict), show;
	char hex[9];

	/* After -C is reached the run is over: what races in before the
	 * disconnect is neither shown nor counted. */
	if (atomic_load(&o->done))
		return;
	if (o->debug)
		fprintf(stderr, "%s: debug: received PUBLISH (q%d, r%d, '%s', %zu bytes): %s "
			"(sender %s, scope %u, epoch %u, seq %u)\n", SUB_PROG, m->qos, m->retained,
			m->topic, m->len, e2e_verdict_name(m->verdict), sender_str(m, hex), m->scope,
			m->epoch, m->seq);
	if ((unsigned)m->verdict <= E2E_V_FORGOTTEN)
		o->verdicts[m->verdict]++;
	if (m->verdict == E2E_V_GAP)
		o->gap_total += m->gap;
	if (is_anomaly(m->verdict))
		atomic_store(&o->anomaly, 1);
	if (m->verdict == E2E_V_DUPLICATE && !o->show_all)
		return;
	show = delivers ? shown(o, m) : !filtered_out(o, m->topic);
	if (show && o->json)
		print_json(m, delivers);
	else if (show && delivers)
		print_text(o, m);
	/* Data first, so a reader of both streams sees the marker after it. */
	fflush(stdout);
	if (m->verdict != E2E_V_OK && (show || is_anomaly(m->verdict)) &&
	    (!o->json || is_anomaly(m->verdict)))
		marker(m);
	if (delivers)
		atomic_fetch_add_explicit(&o->bytes, m->len, memory_order_relaxed);
	/* -C counts what was printed, as mosquitto_sub counts what it shows. */
	if (show && delivers && o->count && atomic_fetch_add(&o->delivered, 1) + 1 >= o->count)
		atomic_store(&o->done, 1);
}

/*
 * --json: a reconnection is a line of its own, naming the broker lost and
 * the one now used, so what follows can be tied to a node's outage.
 */
static void print_json_reconnect(const struct e2e_client_event *ev)
{
	struct jout j;

	jout_begin(&j, stdout);
	jout_str(&j, "event", "reconnected", strlen("reconnected"));
	jout_str(&j, "broker", ev->broker, strlen(ev->broker));
	jout_str(&j, "broker_lost", ev->broker_lost, strlen(ev->broker_lost));
	jout_bool(&j, "failover", strcmp(ev->broker, ev->broker_lost) != 0);
	jout_str(&j, "detail", ev->detail, strlen(ev->detail));
	(void)jout_end(&j);
	fflush(stdout);
}

void sub_on_event(void *ctx, const struct e2e_client_event *ev)
{
	struct sub_out *o = ctx;

	if (ev->type == E2E_EV_CONNECTED && o->json && ev->broker && ev->broker_lost)
		print_json_reconnect(ev);
	if (ev->type == E2E_EV_CONNECTED) {
		atomic_fetch_add_explicit(&o->connects, 1, memory_order_relaxed);
		atomic_store_explicit(&o->connected, 1, memory_order_relaxed);
	} else if (ev->type == E2E_EV_CONNECTION_LOST) {
		atomic_store_explicit(&o->connected, 0, memory_order_relaxed);
	}
	if (cli_report_event(ev))
		atomic_store(&o->anomaly, 1);
}

int sub_run(struct e2e_client *c, struct sub_out *o, uint64_t wait_ms)
{
	uint64_t start = e2e_mono_ms(), now;
	int keys_done = 0;

	/* Messages arrive on the client's thread; this one only watches the clock. */
	while (!cli_stopped() && !atomic_load(&o->done)) {
		now = e2e_mono_ms();
		if (wait_ms && now - start >= wait_ms) {
			/* Not done yet after -W: the run timed out. */
			atomic_store(&o->done, 1);
			return 1;
		}
		if (!keys_done && e2e_client_wait_keys(c, 0) == E2E_OK)
			keys_done = 1;
		if (!keys_done && now - start >= KEY_WAIT_MS) {
			fprintf(stderr, "%s: no keys yet from every trusted sender after %u s "
				"(still asking)\n", SUB_PROG, KEY_WAIT_MS / 1000);
			keys_done = 1;
		}
		cli_sleep_ms(TICK_MS);
	}
	return 0;
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
	/* Never silent: the replay guarantee no longer covers some keys. */
	if (st->floors_dropped)
		fprintf(stderr, "%s: warning: %llu replay floor(s) dropped (floor table full, or "
			"streams of an old state file forgotten before their key was known): replays "
			"of long-forgotten streams under those keys are not caught (SPEC 5.8)\n", SUB_PROG,
			(unsigned long long)st->floors_dropped);
	/* What the signed summaries settled, when a sender sends them. */
	if (st->summaries || st->stalls)
		fprintf(stderr, "%s: summaries: %llu received; entries verified %llu, contradicted "
			"%llu; messages never arrived %llu, unsummarized %llu, not checked %llu; "
			"stalls %llu; arrived late %llu, replayed parts ignored %llu, clock skews "
			"%llu; retired-key messages confirmed %llu, forged %llu, unconfirmed %llu\n",
			SUB_PROG, (unsigned long long)st->summaries,
			(unsigned long long)st->summary_verified,
			(unsigned long long)st->insider_forgeries,
			(unsigned long long)st->unconfirmed, (unsigned long long)st->unsummarized,
			(unsigned long long)st->unchecked, (unsigned long long)st->stalls,
			(unsigned long long)st->arrived_late, (unsigned long long)st->parts_ignored,
			(unsigned long long)st->clock_skews,
			(unsigned long long)st->retired_confirmed,
			(unsigned long long)st->retired_forged,
			(unsigned long long)st->retired_unconfirmed);
}
