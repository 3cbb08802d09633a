/*
 * mosquitto_sub/mosquitto_pub parity options of e2e-sub and e2e-pub (see
 * cliparity.h). Values and error cases follow mosquitto 2.0's clients;
 * where an option cannot apply to an end-to-end client, the refusal says
 * why instead of pretending to honour it.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cliparity.h"

#define EXPIRY_NEVER 4294967295UL

/* mosquitto options that do not apply here, and why. */
static const struct {
	const char *name;             /* as the user typed it */
	const char *why;
} refused[] = {
	{ "-D", "MQTT 5 properties travel in plaintext and unauthenticated (SPEC 1): they "
		"are not sent, so nothing is implied to be protected" },
	{ "--property", "MQTT 5 properties travel in plaintext and unauthenticated (SPEC 1): "
		"they are not sent, so nothing is implied to be protected" },
	{ "-A", "binding to a local address is not offered by the MQTT library (Paho)" },
	{ "-S", "SRV lookups are not offered by the MQTT library (Paho): give -h and -p" },
	{ "--unix", "unix sockets are not offered by the MQTT library (Paho)" },
	{ "--proxy", "SOCKS proxies are not offered here; use a tunnel" },
	{ "-I", "give the full client id with -i" },
	{ "--id-prefix", "give the full client id with -i" },
	{ "--ciphers", "cipher lists are left to the TLS library's defaults" },
	{ "--tls-engine", "OpenSSL engines are not offered by the MQTT library (Paho)" },
	{ "--keyform", "OpenSSL engines are not offered by the MQTT library (Paho)" },
	{ "--tls-engine-kpass-sha1", "OpenSSL engines are not offered by the MQTT library (Paho)" },
	{ "--nodelay", "the MQTT library (Paho) sets its sockets itself" },
	{ "--remove-retained", "clearing a retained message takes a plaintext empty publish, "
		"which e2e-sub does not send: use mosquitto_pub -r -n -t TOPIC" },
	{ "--retain-as-published", "MQTT 5 subscription options are not offered by the client "
		"library (libe2e-client)" },
	{ "--random-filter", "every message is checked and counted; thin out the output "
		"downstream instead" },
	{ "--pretty", "JSON is printed one object per line; pipe it through jq for layout" },
	{ "--quiet", "security verdicts and anomalies are reported on stderr; redirect it "
		"(2>/dev/null) if you must" },
};

static int refuse(const char *typed)
{
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		if (strcmp(refused[i].name, typed) != 0)
			continue;
		fprintf(stderr, "%s: option '%s' is not supported: %s\n", cli_prog, typed,
			refused[i].why);
		return -1;
	}
	fprintf(stderr, "%s: option '%s' is not supported\n", cli_prog, typed);
	return -1;
}

/* The option as typed: "--name" (possibly "--name=value") or "-X". */
static int refuse_current(int opt, char **argv)
{
	char name[64];
	const char *a = argv[optind - 1];

	/* With a separate value argv[optind - 1] is the value: look one back. */
	if (optarg && a == optarg && optind >= 2)
		a = argv[optind - 2];
	if (opt == 'A' || opt == 'I' || opt == 'S' || opt == 'D') {
		snprintf(name, sizeof name, "-%c", opt);
		if (strncmp(a, "--", 2) != 0)
			return refuse(name);
	}
	snprintf(name, sizeof name, "%.*s", (int)strcspn(a, "="), a);
	return refuse(name);
}

/*
 * -L mqtt(s)://[user[:password]@]host[:port]/topic, as mosquitto_sub/pub.
 * The pieces are copied into p->url_buf, since the conn config keeps
 * pointers to them.
 */
static int parse_url(struct cli_common *cc, struct cli_parity *p, const char *url)
{
	struct e2e_conn_config *c = &cc->conn;
	char *s = p->url_buf, *host, *at, *colon, *slash, *rb;
	unsigned long port;
	int tls;

	if (strncmp(url, "mqtt://", 7) == 0)
		tls = 0;
	else if (strncmp(url, "mqtts://", 8) == 0)
		tls = 1;
	else
		goto bad;
	if (strlen(url) >= sizeof p->url_buf)
		goto bad;
	strcpy(s, url + (tls ? 8 : 7));
	slash = strchr(s, '/');
	if (!slash || !slash[1])
		goto bad;
	*slash = '\0';
	p->url_topic = slash + 1;
	host = s;
	at = strrchr(s, '@');
	if (at) {
		*at = '\0';
		host = at + 1;
		colon = strchr(s, ':');
		if (colon) {
			*colon = '\0';
			c->password = colon + 1;
		}
		c->username = s;
	}
	/* [v6]:port, as everywhere else in the project. */
	colon = NULL;
	if (*host == '[' && (rb = strchr(host, ']')) != NULL) {
		*rb = '\0';
		colon = rb[1] == ':' ? rb + 1 : NULL;
		host++;
	} else {
		colon = strrchr(host, ':');
	}
	if (colon) {
		*colon = '\0';
		if (cli_number("-L port", colon + 1, 1, 65535, &port) != 0)
			return -1;
		c->port = (int)port;
	} else {
		c->port = tls ? 8883 : 1883;
	}
	if (!*host)
		goto bad;
	c->host = host;
	if (tls)
		c->tls = 1;
	return 0;
bad:
	fprintf(stderr, "%s: -L wants mqtt(s)://[user[:password]@]host[:port]/topic, not '%s'\n",
		cli_prog, url);
	return -1;
}

static int tls_version(struct e2e_conn_config *c, const char *arg)
{
	if (!strcmp(arg, "tlsv1.3"))
		c->tls_version = 13;
	else if (!strcmp(arg, "tlsv1.2"))
		c->tls_version = 12;
	else if (!strcmp(arg, "tlsv1.1"))
		c->tls_version = 11;
	else {
		fprintf(stderr, "%s: --tls-version wants tlsv1.3, tlsv1.2 or tlsv1.1, not '%s'\n",
			cli_prog, arg);
		return -1;
	}
	return 0;
}

int cli_parity_opt(struct cli_common *cc, struct cli_parity *p, int opt, const char *arg,
	char **argv)
{
	struct e2e_conn_config *c = &cc->conn;
	unsigned long v;

	switch (opt) {
	case 'L': return parse_url(cc, p, arg) == 0 ? 1 : -1;
	case 'k':
		/* mosquitto's range: 0 (no keepalive) is refused there too. */
		if (cli_number("-k", arg, 5, 65535, &v) != 0)
			return -1;
		c->keepalive_s = (int)v;
		p->keepalive_set = 1;
		return 1;
	case 'x':
		/* -1 and "∞" mean never, as in mosquitto; -x implies MQTT 5 there too. */
		if (!strcmp(arg, "-1") || !strcmp(arg, "\xe2\x88\x9e"))
			v = EXPIRY_NEVER;
		else if (cli_number("-x", arg, 0, EXPIRY_NEVER, &v) != 0)
			return -1;
		p->expiry = v;
		p->expiry_set = 1;
		return 1;
	case 'c': p->keep_session = 1; return 1;
	case 'd': p->debug = 1; return 1;
	case CLI_OPT_WILL_TOPIC: c->will_topic = arg; return 1;
	case CLI_OPT_WILL_PAYLOAD: p->will_payload = arg; return 1;
	case CLI_OPT_WILL_QOS:
		if (cli_number("--will-qos", arg, 0, 2, &p->will_qos) != 0)
			return -1;
		p->will_qos_set = 1;
		return 1;
	case CLI_OPT_WILL_RETAIN: p->will_retain = 1; return 1;
	case CLI_OPT_TLS_VERSION: return tls_version(c, arg) == 0 ? 1 : -1;
	case CLI_OPT_UNSUPPORTED:
	case CLI_OPT_UNSUPPORTED_ARG:
	case 'A': case 'I': case 'S': case 'D':
		return refuse_current(opt, argv);
	default: return 0;
	}
}

int cli_parity_done(struct cli_common *cc, struct cli_parity *p)
{
	struct e2e_conn_config *c = &cc->conn;

	if (p->keep_session && !c->client_id) {
		fprintf(stderr, "%s: -c needs a client id (-i), as in mosquitto: a random id "
			"could never resume its session\n", cli_prog);
		return -1;
	}
	if (p->expiry_set && p->expiry == EXPIRY_NEVER && !c->client_id) {
		fprintf(stderr, "%s: a session that never expires needs a client id (-i)\n",
			cli_prog);
		return -1;
	}
	if ((p->will_payload || p->will_qos_set || p->will_retain) && !c->will_topic) {
		fprintf(stderr, "%s: --will-payload, --will-qos and --will-retain need "
			"--will-topic\n", cli_prog);
		return -1;
	}
	/* Unlike mosquitto, a named client already keeps its session (QoS 1/2
	 * messages survive a restart, which the replay state then checks), so
	 * -c only makes that explicit. */
	c->clean = p->keep_session ? -1 : 0;
	if (p->expiry_set) {
		c->mqtt_version = 5;
		c->session_expiry_set = 1;
		c->session_expiry_s = (uint32_t)p->expiry;
	} else if (p->keep_session && c->mqtt_version == 5) {
		c->session_expiry_set = 1;
		c->session_expiry_s = (uint32_t)EXPIRY_NEVER;
	}
	if (c->will_topic) {
		c->will_payload = p->will_payload ? p->will_payload : "";
		c->will_len = p->will_payload ? strlen(p->will_payload) : 0;
		c->will_qos = (int)p->will_qos;
		c->will_retain = p->will_retain;
	}
	if (c->tls_version && !(c->tls || c->cafile || c->capath || c->certfile || c->psk_hex ||
			c->alpn)) {
		fprintf(stderr, "%s: --tls-version needs TLS (--tls, --cafile, --capath, --psk "
			"or -L mqtts://)\n", cli_prog);
		return -1;
	}
	return 0;
}

void cli_parity_usage(FILE *f)
{
	fprintf(f,
		"Session (as in mosquitto_sub/pub):\n"
		"  -L URL             mqtt(s)://[user[:pass]@]host[:port]/topic\n"
		"  -k SECONDS         keepalive, 5-65535 (default 30: a lost broker is noticed\n"
		"                     sooner than with mosquitto's 60)\n"
		"  -c                 keep the session (needs -i; a named client keeps it anyway)\n"
		"  -x SECONDS|-1      MQTT 5 session expiry interval (implies -V 5)\n"
		"  -d                 debug lines on stderr\n"
		"  --will-topic T     will topic; --will-payload P, --will-qos Q, --will-retain\n"
		"                     (the broker publishes the will: it is NOT encrypted)\n"
		"  --tls-version V    tlsv1.2 (default), tlsv1.1, or tlsv1.3 (the highest both\n"
		"                     sides support: Paho cannot insist on 1.3)\n"
		"  --host, --port, --id, --username, --pw, --protocol-version, --url,\n"
		"  --keepalive, --disable-clean-session, --debug, --tls-alpn,\n"
		"  --tls-use-os-certs: mosquitto's long names of the options above\n"
		"Refused, with the reason: e2e-sub -D/--property (MQTT 5 properties are\n"
		"  plaintext and unauthenticated, SPEC 1),\n"
		"  -A, -I, -S, --unix, --proxy, --nodelay, --quiet, --ciphers, --tls-engine,\n"
		"  --keyform\n");
}

void cli_debug(const struct cli_parity *p, const char *fmt, ...)
{
	va_list ap;

	if (!p->debug)
		return;
	fprintf(stderr, "%s: debug: ", cli_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
