/*
 * Shared command-line plumbing of e2e-sub and e2e-pub (see cliopts.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pthread.h>

#include "cliopts.h"
#include "hostport.h"

const char *cli_prog = "e2e";

static volatile sig_atomic_t stop_flag;

/* The first connection is the expected one; only a reconnection is news.
 * Events arrive on one callback thread, so a plain int will do. */
static int was_lost;

int cli_number(const char *name, const char *arg, unsigned long min, unsigned long max,
	unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	/* strtoul accepts "-1" and wraps it: refuse any sign up front. */
	if (arg[0] < '0' || arg[0] > '9')
		goto bad;
	v = strtoul(arg, &end, 10);
	if (errno || *end || v < min || v > max)
		goto bad;
	*out = v;
	return 0;
bad:
	fprintf(stderr, "%s: %s wants a number from %lu to %lu, not '%s'\n", cli_prog, name,
		min, max, arg);
	return -1;
}

int cli_duration(const char *name, const char *arg, uint64_t min_ms, uint64_t max_ms,
	uint64_t *out_ms)
{
	uint64_t v;

	if (e2e_duration_parse(arg, &v) != E2E_OK) {
		fprintf(stderr, "%s: %s wants a duration (a number and a unit: 250ms, 10s, 5m, 24h, "
			"7d; a bare number is seconds), not '%s'\n", cli_prog, name, arg);
		return -1;
	}
	if (v < min_ms || v > max_ms) {
		fprintf(stderr, "%s: %s must be from %llums to %llus, not '%s'\n", cli_prog, name,
			(unsigned long long)min_ms, (unsigned long long)(max_ms / 1000), arg);
		return -1;
	}
	*out_ms = v;
	return 0;
}

static int protocol_version(const char *arg)
{
	/* mosquitto_sub spells them "mqttv311" and "mqttv5"; accept both forms. */
	if (!strcmp(arg, "311") || !strcmp(arg, "mqttv311") || !strcmp(arg, "3.1.1"))
		return 4;
	if (!strcmp(arg, "5") || !strcmp(arg, "mqttv5"))
		return 5;
	fprintf(stderr, "%s: -V wants 311 or 5, not '%s'\n", cli_prog, arg);
	return -1;
}

/*
 * -h HOST and --broker HOST[:PORT], each repeatable and each a comma list:
 * every address is appended (before, a second -h silently replaced the
 * first). One address without a port stays host and port as ever (-p
 * applies); otherwise the list goes to e2e_conn_config.brokers, where an
 * address without a port takes -p's.
 */
static int add_brokers(struct cli_common *cc, const char *opt, const char *arg)
{
	struct e2e_conn_config *c = &cc->conn;
	const char *cur = arg;
	unsigned long port;
	int r, ported = 0;
	char ps[16];

	if (!*cur) {
		fprintf(stderr, "%s: %s wants an address, not ''\n", cli_prog, opt);
		return -1;
	}
	while (*cur) {
		if (cc->nbrokers == CLI_BROKERS_MAX) {
			fprintf(stderr, "%s: at most %d brokers\n", cli_prog, CLI_BROKERS_MAX);
			return -1;
		}
		r = e2e_hostport_next(&cur, cc->broker_host[cc->nbrokers],
			sizeof cc->broker_host[0], ps, sizeof ps);
		if (r <= 0) {
			fprintf(stderr, "%s: %s wants HOST, HOST:PORT or [IPv6]:PORT (a comma list "
				"for several brokers), not '%s'\n", cli_prog, opt, arg);
			return -1;
		}
		port = 0;
		if (ps[0] && cli_number(opt, ps, 1, 65535, &port) != 0)
			return -1;
		cc->brokers[cc->nbrokers].host = cc->broker_host[cc->nbrokers];
		cc->brokers[cc->nbrokers].port = (int)port;
		cc->nbrokers++;
	}
	for (int i = 0; i < cc->nbrokers; i++)
		ported |= cc->brokers[i].port != 0;
	c->host = cc->nbrokers ? cc->broker_host[0] : NULL;
	c->brokers = cc->nbrokers > 1 || ported ? cc->brokers : NULL;
	c->nbrokers = cc->nbrokers > 1 || ported ? (size_t)cc->nbrokers : 0;
	return 0;
}

int cli_common_opt(struct cli_common *cc, int opt, const char *arg)
{
	struct e2e_conn_config *c = &cc->conn;
	unsigned long port;

	switch (opt) {
	case 'h':
		return add_brokers(cc, "-h", arg) == 0 ? 1 : -1;
	case CLI_OPT_BROKER:
		return add_brokers(cc, "--broker", arg) == 0 ? 1 : -1;
	case 'p':
		if (cli_number("-p", arg, 1, 65535, &port) != 0)
			return -1;
		c->port = (int)port;
		break;
	case 'i': c->client_id = arg; break;
	case 'u': c->username = arg; break;
	case 'P': c->password = arg; break;
	case 'V':
		c->mqtt_version = protocol_version(arg);
		return c->mqtt_version < 0 ? -1 : 1;
	case CLI_OPT_CAFILE: c->cafile = arg; break;
	case CLI_OPT_CAPATH: c->capath = arg; break;
	case CLI_OPT_CERT: c->certfile = arg; break;
	case CLI_OPT_KEY: c->keyfile = arg; break;
	case CLI_OPT_PSK: c->psk_hex = arg; break;
	case CLI_OPT_PSK_ID: c->psk_identity = arg; break;
	case CLI_OPT_ALPN: c->alpn = arg; break;
	case CLI_OPT_INSECURE: c->insecure = 1; break;
	case CLI_OPT_TLS: c->tls = 1; break;
	case CLI_OPT_DIR: cc->dir = arg; break;
	case CLI_OPT_CONTROL: cc->control_topic = arg; break;
	case CLI_OPT_HELP: cc->help = 1; break;
	case CLI_OPT_VERSION: cc->version = 1; break;
	default: return 0;
	}
	return 1;
}

int cli_next_opt(int argc, char **argv, const char *optstring, const struct option *longs,
	struct cli_common *cc)
{
	int c, r;

	opterr = 0;   /* cli_bad_option words the errors */
	do {
		c = getopt_long(argc, argv, optstring, longs, NULL);
		if (c == -1)
			return -1;
		r = cli_common_opt(cc, c, optarg);
	} while (r == 1);
	return r < 0 ? 0 : c;
}

int cli_parse_done(const struct cli_common *cc, int bad, int (*usage)(FILE *f))
{
	if (bad)
		return CLI_EXIT_USAGE;
	if (cc->help)
		return usage(stdout);
	if (cc->version)
		return printf("%s %s\n", cli_prog, E2E_VERSION_STRING) < 0;
	return -1;
}

int cli_bad_option(int c, char **argv)
{
	const char *why = c == ':' ? "needs a value" : "is not valid";

	/* For a short option in a cluster ("-vx") argv names the whole cluster. */
	if (optopt > 0 && optopt < CLI_OPT_CAFILE)
		fprintf(stderr, "%s: option '-%c' %s\n", cli_prog, optopt, why);
	else
		fprintf(stderr, "%s: option '%s' %s\n", cli_prog, argv[optind - 1], why);
	fprintf(stderr, "Try '%s --help'.\n", cli_prog);
	return CLI_EXIT_USAGE;
}

void cli_common_usage(FILE *f, const char *default_dir)
{
	fprintf(f,
		"Broker:\n"
		"  -h HOST            broker host (default 127.0.0.1); repeat it, or give a\n"
		"                     comma list, for brokers to fail over to, in order\n"
		"  --broker HOST[:PORT][,HOST[:PORT]...]\n"
		"                     brokers to fail over to, in order (repeatable)\n"
		"  -p PORT            broker port (default 1883, 8883 with TLS; for every\n"
		"                     broker given without one)\n"
		"  -i ID              client id (default random, clean session)\n"
		"  -u USER, -P PASS   username and password\n"
		"  -V 311|5           MQTT protocol version (default 311)\n"
		"TLS (any of these enables TLS):\n"
		"  --tls              use TLS with the system trust store\n"
		"  --cafile FILE      CA certificates (PEM)\n"
		"  --capath DIR       directory of CA certificates\n"
		"  --cert FILE        client certificate (PEM)\n"
		"  --key FILE         client private key (PEM)\n"
		"  --psk HEX          TLS pre-shared key (needs --psk-identity)\n"
		"  --psk-identity ID  TLS-PSK identity\n"
		"  --alpn LIST        comma-separated ALPN protocols (e.g. x-amzn-mqtt-ca)\n"
		"  --insecure         skip the host name check of the server certificate\n"
		"End to end:\n"
		"  --dir DIR          state directory (default $E2E_DIR or %s)\n"
		"  --control-topic T  key distribution topic (default %s)\n"
		"  --help, --version\n", default_dir, E2E_CTL_TOPIC_DEFAULT);
}

int cli_dir(char *buf, size_t cap, const char *dir, const char *fallback)
{
	const char *env = getenv("E2E_DIR"), *home = getenv("HOME");
	const char *base = dir ? dir : env && *env ? env : fallback;
	int n = -1;

	/* Only the subscriber's default lives under $HOME. */
	if (base)
		n = snprintf(buf, cap, "%s", base);
	else if (home && *home)
		n = snprintf(buf, cap, "%s/.config/mqtt-e2e", home);
	if (n > 0 && (size_t)n < cap)
		return 0;
	fprintf(stderr, "%s: %s\n", cli_prog, n < 0 ? "no state directory: use --dir, or set "
		"$E2E_DIR or $HOME" : "state directory name empty or too long");
	return -1;
}

int cli_file_check(const char *what, const char *path, int may_be_missing)
{
	char parent[4096];
	struct stat sb;
	char *slash;

	if (stat(path, &sb) == 0) {
		if (!S_ISDIR(sb.st_mode))
			return 0;
		fprintf(stderr, "%s: %s %s: is a directory, not a file\n", cli_prog, what, path);
		return -1;
	}
	if (!may_be_missing)
		return 0;   /* the library says "not found" with the path */
	snprintf(parent, sizeof parent, "%s", path);
	slash = strrchr(parent, '/');
	if (!slash)
		return 0;
	*slash = '\0';
	if (slash == parent)
		return 0;
	if (stat(parent, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "%s: %s %s: directory %s does not exist\n", cli_prog, what, path,
			parent);
		return -1;
	}
	if (access(parent, W_OK | X_OK) != 0) {
		fprintf(stderr, "%s: %s %s: directory %s is not writable: %s\n", cli_prog, what, path,
			parent, strerror(errno));
		return -1;
	}
	return 0;
}

int cli_dir_exists(const char *dir, const char *kind)
{
	struct stat sb;

	if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode))
		return 0;
	if (stat(dir, &sb) == 0)
		fprintf(stderr, "%s: %s directory %s: not a directory\n", cli_prog, kind, dir);
	else
		fprintf(stderr, "%s: %s directory %s does not exist (e2e-keytool genkey --dir %s "
			"creates it; or give --dir)\n", cli_prog, kind, dir, dir);
	return -1;
}

int cli_join(char *buf, size_t cap, const char *dir, const char *file)
{
	int n = snprintf(buf, cap, "%s/%s", dir, file);

	if (n >= 0 && (size_t)n < cap)
		return 0;
	fprintf(stderr, "%s: file name too long: %s/%s\n", cli_prog, dir, file);
	return -1;
}

/*
 * How each event is labelled, and whether --strict counts it. Signed
 * summaries: a contradiction or an unsummarized message means a forgery
 * with the shared key; messages or summaries that never came are losses,
 * reported but not counted, like GAP (honest brokers lose messages too).
 */
static const struct {
	const char *label;
	int anomaly;
} event_kinds[] = {
	[E2E_EV_CONNECTED] = { "reconnected", 0 },
	[E2E_EV_CONNECTION_LOST] = { "connection lost (reconnecting)", 0 },
	[E2E_EV_KEY_RECEIVED] = { "key received", 0 },
	[E2E_EV_KEY_REFUSED] = { "key refused", 1 },
	[E2E_EV_KEY_TIMEOUT] = { "key request", 0 },
	[E2E_EV_ANOMALY] = { "anomaly", 1 },
	[E2E_EV_CONTROL_REJECTED] = { "control message rejected", 1 },
	[E2E_EV_ERROR] = { "error", 0 },
	[E2E_EV_STALLED] = { "summary", 0 },
	[E2E_EV_INSIDER_FORGERY] = { "summary", 1 },
	[E2E_EV_UNCONFIRMED] = { "summary", 0 },
	[E2E_EV_UNSUMMARIZED] = { "summary", 1 },
	[E2E_EV_UNCHECKED] = { "summary", 0 },
	[E2E_EV_ARRIVED_LATE] = { "summary", 0 },
	[E2E_EV_CLOCK_SKEW] = { "summary", 0 },
	[E2E_EV_ROTATED] = { "key rotated", 0 },
	[E2E_EV_REQUEST_REFUSED] = { "key service", 0 },
	[E2E_EV_SWITCHED] = { "key rotated", 0 },
};

int cli_report_event(const struct e2e_client_event *ev)
{
	size_t t = (size_t)ev->type;

	if (t >= sizeof event_kinds / sizeof event_kinds[0] || !event_kinds[t].label) {
		fprintf(stderr, "%s: event %zu: %s\n", cli_prog, t, ev->detail);
		return 0;
	}
	if (ev->type == E2E_EV_CONNECTED || ev->type == E2E_EV_CONNECTION_LOST) {
		if (ev->type == E2E_EV_CONNECTED && !was_lost)
			return 0;
		was_lost = ev->type == E2E_EV_CONNECTION_LOST;
	}
	if (ev->type == E2E_EV_KEY_RECEIVED)
		fprintf(stderr, "%s: key received from %s (sender %08x, scope %u, epoch %u)\n",
			cli_prog, ev->detail, (unsigned)ev->sender, ev->scope, (unsigned)ev->epoch);
	else if (ev->type == E2E_EV_ROTATED || ev->type == E2E_EV_SWITCHED)
		fprintf(stderr, "%s: key rotated: sender %08x scope %u epoch %u %s\n",
			cli_prog, (unsigned)ev->sender, ev->scope, (unsigned)ev->epoch,
			ev->type == E2E_EV_SWITCHED ?
			"switched on schedule (made ahead, not announced)" : "announced");
	else
		fprintf(stderr, "%s: %s%s%s\n", cli_prog, event_kinds[t].label,
			*ev->detail ? ": " : "", ev->detail);
	return event_kinds[t].anomaly;
}

void cli_event_cb(void *ctx, const struct e2e_client_event *ev)
{
	(void)ctx;
	(void)cli_report_event(ev);
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void signal_mask(int how)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(how, &set, NULL);
}

void cli_signals_hold(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	/* No SA_RESTART: a blocked getline(3) on stdin must return on Ctrl-C. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal_mask(SIG_BLOCK);
}

void cli_signals_release(void)
{
	signal_mask(SIG_UNBLOCK);
}

int cli_stopped(void)
{
	return stop_flag != 0;
}

void cli_sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}
