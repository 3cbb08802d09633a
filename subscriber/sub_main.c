/*
 * e2e-sub: a mosquitto_sub for end-to-end encrypted topics. Options and
 * wiring only; output and the run loop are in sub_session.c, the protocol
 * in libe2e-client.
 */
#include <unistd.h>
#include <limits.h>
#include <string.h>

#include "cliopts.h"
#include "e2e/scopes.h"
#include "metrics.h"
#include "cliparity.h"
#include "fmt.h"
#include "sub.h"

#define TOPICS_MAX 32             /* the session keeps 64 filters; ours are a few */
#define CONNECT_MS 10000U
#define SUBACK_MS 10000U
/* mosquitto_sub's exit status when -W ends the run (MOSQ_ERR_TIMEOUT). */
#define SUB_EXIT_TIMEOUT 27

enum { OPT_IDENTITY = CLI_OPT_OWN, OPT_TRUST, OPT_STATE, OPT_WINDOW, OPT_MAX_STREAMS, OPT_JSON, OPT_SHOW_ALL,
	OPT_STRICT, OPT_METRICS, OPT_RETAINED_ONLY, OPT_ENROLL,
	OPT_ENROLL_TIMEOUT };

static const struct option long_opts[] = {
	CLI_CONN_LONG,
	CLI_PARITY_LONG,
	{ "topic", required_argument, NULL, 't' },
	{ "qos", required_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "filter-out", required_argument, NULL, 'T' },
	{ "unsubscribe", required_argument, NULL, 'U' },
	{ "retained-only", no_argument, NULL, OPT_RETAINED_ONLY },
	{ "pretty", no_argument, NULL, CLI_OPT_UNSUPPORTED },
	{ "remove-retained", no_argument, NULL, CLI_OPT_UNSUPPORTED },
	{ "retain-as-published", no_argument, NULL, CLI_OPT_UNSUPPORTED },
	{ "random-filter", required_argument, NULL, CLI_OPT_UNSUPPORTED_ARG },
	{ "identity", required_argument, NULL, OPT_IDENTITY },
	{ "trust", required_argument, NULL, OPT_TRUST },
	{ "state", required_argument, NULL, OPT_STATE },
	{ "window", required_argument, NULL, OPT_WINDOW },
	{ "max-streams", required_argument, NULL, OPT_MAX_STREAMS },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "show-all", no_argument, NULL, OPT_SHOW_ALL },
	{ "strict", no_argument, NULL, OPT_STRICT },
	{ "metrics-listen", required_argument, NULL, OPT_METRICS },
	{ "enroll", required_argument, NULL, OPT_ENROLL },
	{ "enroll-timeout", required_argument, NULL, OPT_ENROLL_TIMEOUT },
	{ NULL, 0, NULL, 0 },
};

struct sub_args {
	struct cli_common cc;
	struct cli_parity par;
	const char *topics[TOPICS_MAX];
	const char *unsub[TOPICS_MAX];   /* -U */
	int ntopics, nunsub, strict, exit_after_sub;
	unsigned long qos, window, max_streams;
	uint64_t wait_ms;
	const char *identity, *trust, *state;
	const char *metrics;          /* --metrics-listen ADDR:PORT */
	const char *enroll;           /* --enroll TOKEN */
	uint64_t enroll_ms;           /* --enroll-timeout */
};

static int usage(FILE *f)
{
	fprintf(f, "Usage: %s -t TOPIC [-t TOPIC...] [options]\n"
		"Subscribe, decrypt and check end-to-end encrypted MQTT messages.\n\n"
		"  -t TOPIC           topic filter to subscribe to (repeatable, required)\n"
		"  -q QOS             subscription QoS 0-2 (default 0)\n"
		"  -v                 print the topic before the payload\n"
		"  -N                 no newline after each payload\n"
		"  -F FORMAT          mosquitto_sub's output format (%%t %%p %%x %%X %%l %%q %%r %%I\n"
		"                     %%U %%j %%J @X \\n ...; flags, width, precision), plus %%V\n"
		"                     verdict, %%n sender, %%e epoch, %%s seq, %%o scope, %%g gap\n"
		"  -T FILTER          do not print topics matching FILTER (repeatable)\n"
		"  -R                 do not print retained (stale) messages\n"
		"  --retained-only    print only retained messages; exit at the first fresh one\n"
		"  -U FILTER          unsubscribe from FILTER after connecting (repeatable)\n"
		"  -E                 exit once the subscriptions are acknowledged\n"
		"  -C COUNT           exit after COUNT printed messages\n"
		"  -W TIME            exit after TIME (10s, 5m; a bare number is seconds),\n"
		"                     status 27 as mosquitto_sub\n"
		"  --identity FILE    identity (default DIR/identity.key)\n"
		"  --trust FILE       trusted senders (default DIR/trust)\n"
		"  --state FILE|none  replay windows (default DIR/rxstate; none: not kept)\n"
		"  --window N         replay window, multiple of 64 (default %u)\n"
		"  --max-streams N    streams tracked (and as many remembered), default %u;\n"
		"                     a replay is refused however many came between\n"
		"  --json             one JSON object per message\n"
		"  --show-all         also show DUPLICATE messages\n"
		"  --strict           exit 3 if a security anomaly was seen\n"
		"  --enroll TOKEN     first redeem a one-time ticket (e2e-keytool ticket): make\n"
		"                     the identity if none, write DIR/authorities and\n"
		"                     DIR/credential, then subscribe as usual\n"
		"  --enroll-timeout TIME  give up the redemption after TIME (default 30s)\n"
		"  --metrics-listen ADDR:PORT\n"
		"                     serve Prometheus metrics at http://ADDR:PORT/metrics\n",
		SUB_PROG, E2E_WINDOW_DEFAULT, E2E_RX_STREAMS_DEFAULT);
	cli_common_usage(f, "$HOME/.config/mqtt-e2e");
	cli_parity_usage(f);
	fprintf(f, "  --remove-retained, --retain-as-published, --random-filter, --pretty\n");
	return f == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

static int add_filter(const char **list, int *n, const char *f, const char *opt)
{
	if (*n >= TOPICS_MAX) {
		fprintf(stderr, "%s: at most %d %s options\n", SUB_PROG, TOPICS_MAX, opt);
		return -1;
	}
	if (!e2e_topic_filter_valid(f, strlen(f))) {
		/* The broker would refuse it on every reconnect, forever. */
		fprintf(stderr, "%s: %s '%s' is not a valid topic filter ('#' only as the whole "
			"last level, '+' only as a whole level)\n", SUB_PROG, opt, f);
		return -1;
	}
	list[(*n)++] = f;
	return 0;
}

/* mosquitto_sub's own options and the shared parity ones: 0, -1 (printed),
 * -2 unknown. */
static int sub_parity_opt(struct sub_args *a, struct sub_out *o, int c, char **argv)
{
	char why[64];
	int r;

	switch (c) {
	case 'N': o->eol = 0; return 0;
	case 'F':
		o->format = optarg;
		if (sub_fmt_check(optarg, why, sizeof why) == 0)
			return 0;
		fprintf(stderr, "%s: -F: %s\n", SUB_PROG, why);
		return -1;
	case 'R': o->no_retain = 1; return 0;
	case OPT_RETAINED_ONLY: o->retained_only = 1; return 0;
	case 'E': a->exit_after_sub = 1; return 0;
	case 'U': return add_filter(a->unsub, &a->nunsub, optarg, "-U");
	case 'T':
		if (o->nfilter_out < SUB_FILTER_OUT_MAX) {
			o->filter_out[o->nfilter_out++] = optarg;
			return 0;
		}
		fprintf(stderr, "%s: at most %d -T options\n", SUB_PROG, SUB_FILTER_OUT_MAX);
		return -1;
	default:
		r = cli_parity_opt(&a->cc, &a->par, c, optarg, argv);
		return r == 1 ? 0 : r == 0 ? -2 : -1;
	}
}

/* -1 to go on, else the exit code. */
static int parse(int argc, char **argv, struct sub_args *a, struct sub_out *o)
{
	int c, r = 0;

	while (r == 0 && (c = cli_next_opt(argc, argv, ":" CLI_CONN_SHORT CLI_PARITY_SHORT
			CLI_PARITY_REFUSED "t:q:vC:W:NF:T:REU:", long_opts, &a->cc)) != -1) {
		switch (c) {
		case 0: r = -1; break;
		case 't': r = add_filter(a->topics, &a->ntopics, optarg, "-t"); break;
		case 'q': r = cli_number("-q", optarg, 0, 2, &a->qos); break;
		case 'v': o->verbose = 1; break;
		case 'C': r = cli_number("-C", optarg, 1, ULONG_MAX, &o->count); break;
		case 'W': r = cli_duration("-W", optarg, 1, 31536000000ULL, &a->wait_ms); break;
		case OPT_IDENTITY: a->identity = optarg; break;
		case OPT_TRUST: a->trust = optarg; break;
		case OPT_STATE: a->state = optarg; break;
		case OPT_MAX_STREAMS:
			r = cli_number("--max-streams", optarg, 1, 1U << 24, &a->max_streams);
			break;
		case OPT_WINDOW:
			r = cli_number("--window", optarg, E2E_WINDOW_MIN, E2E_WINDOW_MAX, &a->window);
			if (r == 0 && a->window % 64) {
				fprintf(stderr, "%s: --window must be a multiple of 64\n", SUB_PROG);
				r = -1;
			}
			break;
		case OPT_JSON: o->json = 1; break;
		case OPT_SHOW_ALL: o->show_all = 1; break;
		case OPT_STRICT: a->strict = 1; break;
		case OPT_METRICS: a->metrics = optarg; break;
		case OPT_ENROLL: a->enroll = optarg; break;
		case OPT_ENROLL_TIMEOUT:
			r = cli_duration("--enroll-timeout", optarg, 1000, 3600000, &a->enroll_ms);
			break;
		default: r = sub_parity_opt(a, o, c, argv); break;
		}
	}
	if (r == -2)
		return cli_bad_option(c, argv);
	if (r == 0 && a->par.url_topic)
		r = add_filter(a->topics, &a->ntopics, a->par.url_topic, "-t");
	if (r == 0 && cli_parity_done(&a->cc, &a->par) != 0)
		r = -1;
	if (r == 0 && o->json && o->format) {
		fprintf(stderr, "%s: use one of --json and -F\n", SUB_PROG);
		r = -1;
	}
	if (r == 0 && o->no_retain && o->retained_only) {
		fprintf(stderr, "%s: -R and --retained-only exclude each other\n", SUB_PROG);
		r = -1;
	}
	r = cli_parse_done(&a->cc, r, usage);
	if (r >= 0)
		return r;
	if (optind < argc || a->ntopics == 0) {
		fprintf(stderr, "%s: %s\n", SUB_PROG, optind < argc ? "unexpected argument" :
			"at least one -t TOPIC is needed");
		return usage(stderr);
	}
	return -1;
}

/* After connecting: -U, then -E or the run. The exit status. */
static int session(struct e2e_client *c, const struct sub_args *a, struct sub_out *o,
	char *err, size_t err_len)
{
	for (int i = 0; i < a->nunsub; i++) {
		if (e2e_client_unsubscribe(c, a->unsub[i]) != E2E_OK)
			fprintf(stderr, "%s: cannot unsubscribe from '%s'\n", SUB_PROG, a->unsub[i]);
		else
			cli_debug(&a->par, "unsubscribed from '%s'", a->unsub[i]);
	}
	if (a->exit_after_sub) {
		if (e2e_client_wait_subscribed(c, SUBACK_MS) != E2E_OK) {
			snprintf(err, err_len, "subscriptions not acknowledged within %u s (-E)",
				SUBACK_MS / 1000);
			return CLI_EXIT_CONNECT;
		}
		cli_debug(&a->par, "subscriptions acknowledged: exiting (-E)");
		atomic_store(&o->done, 1);
		return CLI_EXIT_OK;
	}
	if (sub_run(c, o, a->wait_ms)) {
		fprintf(stderr, "%s: timed out after %llu ms (-W)\n", SUB_PROG,
			(unsigned long long)a->wait_ms);
		return SUB_EXIT_TIMEOUT;
	}
	return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
	static struct sub_out out;
	struct sub_args a = { 0 };
	struct e2e_client_config cfg = { 0 };
	struct e2e_client *c = NULL;
	struct e2e_metrics *metrics = NULL;
	struct e2e_client_stats st = { 0 };
	char dir[PATH_MAX], idf[PATH_MAX], trf[PATH_MAX], stf[PATH_MAX], auf[PATH_MAX], crf[PATH_MAX], err[PATH_MAX + 200] = "";
	int ret, i;

	cli_prog = SUB_PROG;
	atomic_init(&out.delivered, 0);
	atomic_init(&out.anomaly, 0);
	atomic_init(&out.bytes, 0);
	atomic_init(&out.connects, 0);
	atomic_init(&out.connected, 0);
	atomic_init(&out.done, 0);
	out.eol = 1;
	ret = parse(argc, argv, &a, &out);
	if (ret >= 0)
		return ret;
	out.debug = a.par.debug;
	if (cli_dir(dir, sizeof dir, a.cc.dir, NULL) || cli_join(idf, sizeof idf, dir, "identity.key") ||
	    cli_join(trf, sizeof trf, dir, "trust") || cli_join(stf, sizeof stf, dir, "rxstate") ||
	    cli_join(auf, sizeof auf, dir, "authorities") ||
	    cli_join(crf, sizeof crf, dir, "credential"))
		return CLI_EXIT_USAGE;
	/* Fleet trust (SPEC 13.6): with an authorities file the trust store may be absent. */
	cfg.authorities_file = access(auf, F_OK) == 0 ? auf : NULL;
	cfg.credential_file = crf;
	cfg.fleet_dir = dir;
	cfg.conn = a.cc.conn;
	cfg.identity_file = a.identity ? a.identity : idf;
	cfg.trust_file = a.trust ? a.trust : trf;
	cfg.state_file = !a.state ? stf : strcmp(a.state, "none") ? a.state : NULL;
	if (a.enroll && (ret = sub_enroll(&a.cc, dir, cfg.identity_file, a.enroll,
			(uint32_t)a.enroll_ms)) >= 0)
		return ret;
	if (a.enroll)
		cfg.authorities_file = auf;   /* written just now */
	if ((!a.identity && cli_dir_exists(dir, "state")) ||
	    cli_file_check("identity", cfg.identity_file, 0) ||
	    cli_file_check("trust", cfg.trust_file, cfg.authorities_file != NULL) ||
	    (cfg.state_file && cli_file_check("--state", cfg.state_file, 1)))
		return CLI_EXIT_USAGE;
	cfg.control_topic = a.cc.control_topic;
	cfg.window = (uint32_t)a.window;
	cfg.max_streams = (uint32_t)a.max_streams;
	cfg.deliver_duplicates = 1;   /* counted for the summary; shown with --show-all */
	cfg.on_message = sub_on_message;
	cfg.on_event = sub_on_event;
	cfg.ctx = &out;
	cfg.err = err;
	cfg.err_len = sizeof err;
	cli_signals_hold();
	ret = CLI_EXIT_USAGE;
	if (e2e_client_create(&c, &cfg) != E2E_OK)
		goto out;
	for (i = 0; i < a.ntopics; i++)
		if (e2e_client_subscribe(c, a.topics[i], (int)a.qos) != E2E_OK) {
			snprintf(err, sizeof err, "cannot subscribe to '%s'", a.topics[i]);
			goto out;
		}
	/* Signals still held: the metrics thread inherits the blocked mask. */
	if (a.metrics && !(metrics = sub_metrics_start(a.metrics, c, &out))) {
		snprintf(err, sizeof err, "--metrics-listen %s: cannot serve metrics", a.metrics);
		goto out;
	}
	ret = CLI_EXIT_CONNECT;
	cli_debug(&a.par, "connecting to %s:%d (MQTT %s, keepalive %d s)", cfg.conn.host ?
		cfg.conn.host : "127.0.0.1", cfg.conn.port, cfg.conn.mqtt_version == 5 ? "5" : "3.1.1",
		cfg.conn.keepalive_s);
	if (e2e_client_connect(c, CONNECT_MS) != E2E_OK)
		goto out;
	cli_debug(&a.par, "connected; subscribed to %d filter(s) at QoS %lu", a.ntopics, a.qos);
	cli_signals_release();
	ret = session(c, &a, &out, err, sizeof err);
	e2e_client_stats(c, &st);
out:
	e2e_metrics_stop(metrics);   /* its thread reads c: stopped first */
	e2e_client_destroy(c);   /* held messages are reported here, before the summary */
	if (ret == CLI_EXIT_USAGE || ret == CLI_EXIT_CONNECT)
		fprintf(stderr, "%s: %s\n", SUB_PROG, *err ? err : "setup failed");
	else
		sub_summary(&out, &st);
	/* After destroy: messages still held for a key count as anomalies too. */
	if ((ret == CLI_EXIT_OK || ret == SUB_EXIT_TIMEOUT) && a.strict && atomic_load(&out.anomaly))
		ret = CLI_EXIT_ANOMALY;
	return ret;
}
