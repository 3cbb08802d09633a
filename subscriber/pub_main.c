/*
 * e2e-pub: a mosquitto_pub that encrypts end to end. It is a sender with
 * its own state directory, and answers key requests while it is connected.
 * Options and wiring only; input handling is in pub_input.c.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cliopts.h"
#include "pub.h"

#define CONNECT_MS 10000U
#define SENDER_DIR "/var/lib/mqtt-e2e/sender"

enum { OPT_LINGER = CLI_OPT_OWN, OPT_SUMMARY };

static const struct option long_opts[] = {
	CLI_CONN_LONG,
	{ "linger", required_argument, NULL, OPT_LINGER },
	{ "summary-interval", required_argument, NULL, OPT_SUMMARY },
	{ NULL, 0, NULL, 0 },
};

struct pub_args {
	struct cli_common cc;
	const char *topic, *message, *file;
	int source;                   /* the option letter of -m, -f, -l, -s or -n */
	int retain;
	unsigned long qos, linger, summary_ms;
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
		"  --linger SECONDS   stay connected afterwards to answer key requests (default 0)\n"
		"  --summary-interval MS  signed summaries every MS milliseconds (default 10000)\n",
		PUB_PROG);
	cli_common_usage(f, SENDER_DIR);
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

/* -1 to go on, else the exit code. */
static int parse(int argc, char **argv, struct pub_args *a)
{
	int c, r = 0;

	while (r == 0 && (c = cli_next_opt(argc, argv, ":" CLI_CONN_SHORT "t:m:f:lsnq:r", long_opts,
			&a->cc)) != -1) {
		switch (c) {
		case 0: r = -1; break;
		case 't': a->topic = optarg; break;
		case 'm': a->message = optarg; r = set_source(a, c); break;
		case 'f': a->file = optarg; r = set_source(a, c); break;
		case 'l': case 's': case 'n': r = set_source(a, c); break;
		case 'q': r = cli_number("-q", optarg, 0, 2, &a->qos); break;
		case 'r': a->retain = 1; break;
		case OPT_LINGER: r = cli_number("--linger", optarg, 0, 31536000UL, &a->linger); break;
		case OPT_SUMMARY:
			r = cli_number("--summary-interval", optarg, 100, 3600000UL, &a->summary_ms);
			break;
		default: return cli_bad_option(c, argv);
		}
	}
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
	ret = CLI_EXIT_CONNECT;
	if (e2e_publisher_connect(job.p, CONNECT_MS) != E2E_OK)
		goto out;
	cli_signals_release();
	job.topic = a.topic;
	job.qos = (int)a.qos;
	job.retain = a.retain;
	if (a.source == 'l')
		pub_lines(&job);
	else if (a.source == 'm')
		pub_one(&job, a.message, strlen(a.message));
	else
		pub_one(&job, buf ? (const void *)buf : "", len);   /* -n, or an empty -f/-s */
	unacked = pub_finish(&job);
	/* Subscribers that meet our new key ask for it: stay to answer. */
	for (until = e2e_mono_ms() + a.linger * 1000U; !cli_stopped() && e2e_mono_ms() < until;)
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
