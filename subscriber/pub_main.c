/*
 * e2e-pub: a mosquitto_pub that encrypts end to end. It is a sender with
 * its own state directory, and answers key requests while it is connected.
 * Options and wiring only; input handling is in pub_input.c.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cliparity.h"
#include "pub.h"

#define CONNECT_MS 10000U
#define SENDER_DIR "/var/lib/mqtt-e2e/sender"

enum { OPT_LINGER = CLI_OPT_OWN, OPT_SUMMARY, OPT_REPEAT, OPT_REPEAT_DELAY };

static const struct option long_opts[] = {
	CLI_CONN_LONG,
	CLI_PARITY_LONG,
	{ "topic", required_argument, NULL, 't' },
	{ "message", required_argument, NULL, 'm' },
	{ "file", required_argument, NULL, 'f' },
	{ "stdin-line", no_argument, NULL, 'l' },
	{ "stdin-file", no_argument, NULL, 's' },
	{ "null-message", no_argument, NULL, 'n' },
	{ "qos", required_argument, NULL, 'q' },
	{ "retain", no_argument, NULL, 'r' },
	{ "repeat", required_argument, NULL, OPT_REPEAT },
	{ "repeat-delay", required_argument, NULL, OPT_REPEAT_DELAY },
	{ "linger", required_argument, NULL, OPT_LINGER },
	{ "summary-interval", required_argument, NULL, OPT_SUMMARY },
	{ NULL, 0, NULL, 0 },
};

struct pub_args {
	struct cli_common cc;
	struct cli_parity par;
	struct pub_props props;       /* -D */
	unsigned long repeat;         /* --repeat: publish the one message this many times */
	unsigned long repeat_delay_ms;
	const char *topic, *message, *file;
	int source;                   /* the option letter of -m, -f, -l, -s or -n */
	int retain;
	unsigned long qos;
	uint64_t linger_ms, summary_ms;
};

static int usage(FILE *f)
{
	fprintf(f, "Usage: %s -t TOPIC (-m MESSAGE | -f FILE | -l | -s | -n) [options]\n"
		"Encrypt and publish MQTT messages end to end, serving key requests while connected.\n\n"
		"  -t TOPIC           topic to publish to\n"
		"  -m MESSAGE         publish MESSAGE\n"
		"  -f FILE            publish the content of FILE\n"
		"  -l                 publish each line of stdin (staying connected until EOF)\n"
		"  -s                 publish all of stdin as one message\n"
		"  -n                 publish an empty message\n"
		"  -q QOS             QoS 0-2 (default 0); 1 and 2 are all acknowledged before exit\n"
		"  -r                 retain\n"
		"  --repeat N         publish the message (-m, -f, -s, -n) N times, each sealed anew\n"
		"  --repeat-delay S   seconds (may be fractional) between repeats (default 0)\n"
		"  -D publish PROP V  MQTT 5 property on every message (content-type,\n"
		"                     correlation-data, message-expiry-interval, response-topic,\n"
		"                     user-property NAME V): PLAINTEXT, unauthenticated (SPEC 1)\n"
		"  --linger TIME      stay connected afterwards to answer key requests (default 0)\n"
		"  --summary-interval TIME  signed summaries this often (default 10s)\n"
		"TIME: a number and a unit (250ms, 10s, 5m, 24h); a bare number is seconds.\n",
		PUB_PROG);
	cli_common_usage(f, SENDER_DIR);
	cli_parity_usage(f);
	return f == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

static int set_source(struct pub_args *a, int c)
{
	if (a->source && a->source != c) {
		fprintf(stderr, "%s: use only one of -m, -f, -l, -s and -n\n", PUB_PROG);
		return -1;
	}
	a->source = c;
	return 0;
}

/* --repeat-delay: seconds >= 0, fractions allowed, as mosquitto_pub. */
static int repeat_delay(const char *arg, unsigned long *ms)
{
	char *end;
	double v = strtod(arg, &end);

	if (end == arg || *end || !(v >= 0.0) || v > 86400.0) {
		fprintf(stderr, "%s: --repeat-delay wants seconds from 0 to 86400 (e.g. 0.5), not "
			"'%s'\n", PUB_PROG, arg);
		return -1;
	}
	*ms = (unsigned long)(v * 1000.0 + 0.5);
	return 0;
}

/* -1 to go on, else the exit code. */
static int parse(int argc, char **argv, struct pub_args *a)
{
	int c, r = 0;

	while (r == 0 && (c = cli_next_opt(argc, argv, ":" CLI_CONN_SHORT CLI_PARITY_SHORT
			CLI_PARITY_REFUSED "t:m:f:lsnq:r", long_opts, &a->cc)) != -1) {
		switch (c) {
		case 0: r = -1; break;
		case 't': a->topic = optarg; break;
		case 'm': a->message = optarg; r = set_source(a, c); break;
		case 'f': a->file = optarg; r = set_source(a, c); break;
		case 'l': case 's': case 'n': r = set_source(a, c); break;
		case 'q': r = cli_number("-q", optarg, 0, 2, &a->qos); break;
		case 'r': a->retain = 1; break;
		case OPT_LINGER:
			r = cli_duration("--linger", optarg, 0, 31536000000ULL, &a->linger_ms);
			break;
		case OPT_SUMMARY:
			r = cli_duration("--summary-interval", optarg, 100, 3600000ULL, &a->summary_ms);
			break;
		case 'D': r = pub_prop_opt(&a->props, optarg, argc, argv); break;
		case OPT_REPEAT: r = cli_number("--repeat", optarg, 1, ULONG_MAX, &a->repeat); break;
		case OPT_REPEAT_DELAY: r = repeat_delay(optarg, &a->repeat_delay_ms); break;
		default:
			r = cli_parity_opt(&a->cc, &a->par, c, optarg, argv);
			if (r == 0)
				return cli_bad_option(c, argv);
			r = r == 1 ? 0 : -1;
			break;
		}
	}
	if (r == 0 && !a->topic)
		a->topic = a->par.url_topic;
	/* -D makes an MQTT 5 client, as in mosquitto_pub. */
	if (r == 0 && a->props.n)
		a->cc.conn.mqtt_version = 5;
	if (r == 0 && cli_parity_done(&a->cc, &a->par) != 0)
		r = -1;
	r = cli_parse_done(&a->cc, r, usage);
	if (r >= 0)
		return r;
	if (optind < argc || !a->topic || !a->source) {
		fprintf(stderr, "%s: %s\n", PUB_PROG, optind < argc ? "unexpected argument" :
			!a->topic ? "-t TOPIC is needed" : "one of -m, -f, -l, -s or -n is needed");
		return usage(stderr);
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct pub_args a = { 0 };
	struct e2e_publisher_config cfg = { 0 };
	struct pub_job job = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0;
	char dir[PATH_MAX], err[PATH_MAX + 200] = "";
	uint64_t until;
	unsigned long unacked;
	int ret;

	cli_prog = PUB_PROG;
	ret = parse(argc, argv, &a);
	if (ret >= 0)
		return ret;
	/* Input first, so a missing file costs no connection. */
	if (cli_dir(dir, sizeof dir, a.cc.dir, SENDER_DIR) || pub_load(a.source, a.file, &buf, &len))
		return CLI_EXIT_USAGE;
	cfg.conn = a.cc.conn;
	{
		char idf[PATH_MAX + 16];

		snprintf(idf, sizeof idf, "%s/identity.key", dir);
		if (cli_dir_exists(dir, "sender state") || cli_file_check("identity", idf, 0)) {
			free(buf);
			return CLI_EXIT_USAGE;
		}
	}
	cfg.dir = dir;
	cfg.control_topic = a.cc.control_topic;
	cfg.summary_ms = (uint32_t)a.summary_ms;
	cfg.on_event = cli_event_cb;
	cfg.err = err;
	cfg.err_len = sizeof err;
	cli_signals_hold();
	ret = CLI_EXIT_USAGE;
	if (e2e_publisher_create(&job.p, &cfg) != E2E_OK)
		goto out;
	if (a.props.n) {
		fprintf(stderr, "%s: note: the %zu -D propert%s travel%s in plaintext and "
			"unauthenticated (SPEC 1): only the payload is sealed\n", PUB_PROG, a.props.n,
			a.props.n == 1 ? "y" : "ies", a.props.n == 1 ? "s" : "");
		if (e2e_publisher_set_properties(job.p, a.props.p, a.props.n) != E2E_OK) {
			snprintf(err, sizeof err, "cannot attach the -D properties");
			goto out;
		}
	}
	ret = CLI_EXIT_CONNECT;
	if (e2e_publisher_connect(job.p, CONNECT_MS) != E2E_OK)
		goto out;
	cli_signals_release();
	job.topic = a.topic;
	job.qos = (int)a.qos;
	job.retain = a.retain;
	job.debug = a.par.debug;
	cli_debug(&a.par, "connected; publishing to '%s' (QoS %d%s)", job.topic, job.qos,
		job.retain ? ", retained" : "");
	if (a.source == 'l')
		pub_lines(&job);   /* --repeat does not apply to -l, as in mosquitto_pub */
	else if (a.source == 'm')
		pub_repeat(&job, a.message, strlen(a.message), a.repeat, a.repeat_delay_ms);
	else   /* -n, or an empty -f/-s */
		pub_repeat(&job, buf ? (const void *)buf : "", len, a.repeat, a.repeat_delay_ms);
	unacked = pub_finish(&job);
	/* Subscribers that meet our new key ask for it: stay to answer. */
	for (until = e2e_mono_ms() + a.linger_ms; !cli_stopped() && e2e_mono_ms() < until;)
		cli_sleep_ms(50);
	ret = CLI_EXIT_OK;
	if (unacked) {
		fprintf(stderr, "%s: %lu of %lu messages not published or not acknowledged\n",
			PUB_PROG, unacked, job.sent);
		ret = CLI_EXIT_UNACKED;
	}
out:
	e2e_publisher_destroy(job.p);
	if (ret == CLI_EXIT_USAGE || ret == CLI_EXIT_CONNECT)
		fprintf(stderr, "%s: %s\n", PUB_PROG, *err ? err : "setup failed");
	free(buf);
	return ret;
}
