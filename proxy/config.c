/*
 * Configuration: one table describes every option, so the file format,
 * the flags and --help can never disagree.
 */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "config.h"
#include "e2e/common.h"

enum opt_type { T_STR, T_BROKER, T_BOOL, T_U32, T_U64, T_MS32, T_MS64, T_LEVEL, T_POLICY, T_LISTEN,
	T_LOGFMT };

struct opt {
	const char *name;
	enum opt_type type;
	size_t off;
	const char *help;
};

#define O(f) offsetof(struct proxy_config, f)

static const struct opt opts[] = {
	{ "listen", T_LISTEN, 0, "ADDR:PORT for publishers (repeatable; default 127.0.0.1:1883)" },
	{ "listen-tls", T_BOOL, O(listen_tls), "TLS towards publishers too: yes|no (default no)" },
	{ "listen-cert", T_STR, O(listen_cert), "server certificate shown to publishers (listen-tls)" },
	{ "listen-key", T_STR, O(listen_key), "its private key" },
	{ "listen-cafile", T_STR, O(listen_cafile), "require publisher certificates from this CA" },
	{ "broker", T_BROKER, O(broker),
	  "HOST:PORT of the broker (required); several (repeated, or a comma list): failover" },
	{ "tls", T_BOOL, O(tls), "TLS to the broker: yes|no (default yes)" },
	{ "cafile", T_STR, O(cafile), "CA certificates (PEM) to verify the broker" },
	{ "capath", T_STR, O(capath), "directory of CA certificates (default: system store)" },
	{ "insecure", T_BOOL, O(insecure), "skip broker certificate and hostname checks (warned)" },
	{ "tls-min", T_STR, O(tls_min), "minimum TLS version: 1.2 (default) or 1.3" },
	{ "ciphers", T_STR, O(ciphers), "OpenSSL cipher list for TLS 1.2" },
	{ "cert", T_STR, O(cert), "client certificate; %c is replaced by the client id" },
	{ "key", T_STR, O(key), "client private key; %c is replaced by the client id" },
	{ "psk", T_STR, O(psk), "TLS-PSK key (hex)" },
	{ "psk-identity", T_STR, O(psk_identity), "TLS-PSK identity" },
	{ "alpn", T_STR, O(alpn), "ALPN protocols, comma-separated (e.g. x-amzn-mqtt-ca)" },
	{ "sni", T_STR, O(sni), "server name for SNI and verification (default: broker host)" },
	{ "credentials", T_STR, O(credentials), "file of 'client-id username password' to inject" },
	{ "dir", T_STR, O(dir), "sender state directory (default /var/lib/mqtt-e2e/sender)" },
	{ "control-topic", T_STR, O(control_topic), "key distribution topic (default e2e/control)" },
	{ "service-id", T_STR, O(service_id),
	  "client id of the key service (default e2e-keys-<sender id>)" },
	{ "service-username", T_STR, O(service_username),
	  "username of the key service (default: its credentials line)" },
	{ "service-password-file", T_STR, O(service_password_file),
	  "file holding the key service's password (mode 0600)" },
	{ "unmapped", T_POLICY, O(unmapped), "topics in no scope: refuse (default) or plaintext" },
	{ "max-connections", T_U32, O(max_connections), "publisher connections (default 1024)" },
	{ "max-packet", T_U32, O(max_packet), "largest MQTT packet in bytes (default 1048576)" },
	{ "connect-timeout", T_MS32, O(connect_timeout_ms), "CONNECT and TLS deadline (default 10s)" },
	{ "idle-timeout", T_MS32, O(idle_timeout_ms), "idle limit (default 1.5 x keepalive)" },
	{ "drain-timeout", T_MS32, O(drain_timeout_ms), "SIGTERM: wait for in-flight QoS (default 10s)" },
	{ "summary-interval", T_MS32, O(summary_ms), "signed summary interval (default 10s)" },
	{ "rotate-age", T_MS64, O(rotate_age_ms), "rotate keys older than this (default never)" },
	{ "rotate-messages", T_U64, O(rotate_messages), "rotate after this many messages" },
	{ "rotate-lead", T_MS64, O(rotate_lead_ms),
		"make each next key this long before its scheduled rotation (default half of rotate-age)" },
	{ "grace", T_MS64, O(grace_ms), "old epochs stay valid this long (default 24h)" },
	{ "log-level", T_LEVEL, O(log_level), "error|warning|info|debug (default info)" },
	{ "syslog", T_BOOL, O(syslog), "log to syslog instead of stderr" },
	{ "stats-socket", T_STR, O(stats_socket), "unix socket path answering with JSON stats" },
	{ "user", T_STR, O(user), "drop privileges to this user after binding" },
	{ "config", T_STR, O(config_file), "configuration file (same names, 'name value' lines)" },
	/* Operators' observability: metrics and log format. */
	{ "metrics-listen", T_STR, O(metrics_listen),
		"ADDR:PORT serving Prometheus metrics at /metrics (default off)" },
	{ "log-format", T_LOGFMT, O(log_json), "text (default) or json: one JSON object per line" },
};

#define NOPTS (sizeof opts / sizeof opts[0])

void proxy_usage(FILE *out)
{
	fprintf(out, "usage: e2e-proxy --broker HOST:PORT [options]\n"
		"       e2e-proxy --config FILE [--check-config]\n\n"
		"Relays unmodified MQTT publishers to a broker over TLS and encrypts every\n"
		"PUBLISH payload end to end (see e2e-proxy(8)).\n\noptions:\n");
	for (size_t i = 0; i < NOPTS; i++)
		fprintf(out, "  --%-18s %s\n", opts[i].name, opts[i].help);
	fprintf(out, "  --%-18s %s\n  --%-18s %s\n  --%-18s %s\n", "check-config",
		"check what a start checks, list every problem, exit", "help", "this text",
		"version", "print the version");
	fprintf(out, "\nDurations: a number and a unit (250ms, 10s, 5m, 24h, 7d); a bare number "
		"is seconds.\n");
}

/* The duration syntax of every tool (e2e_duration_parse): a bare number is seconds. */
static int parse_ms(const char *v, uint64_t *out)
{
	return e2e_duration_parse(v, out) == E2E_OK ? 0 : -1;
}

static int parse_bool(const char *v, int *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1"))
		*out = 1;
	else if (!strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "0"))
		*out = 0;
	else
		return -1;
	return 0;
}

static int set(struct proxy_config *c, const struct opt *o, const char *v, const char *where)
{
	char *base = (char *)c;
	uint64_t u;
	char *end;

	switch (o->type) {
	case T_STR:
		free(*(char **)(base + o->off));
		*(char **)(base + o->off) = strdup(v);
		return 0;
	case T_BROKER:
		/* Several brokers, in failover order: repeated lines or flags
		 * append (a comma list is one step); the command line's first
		 * --broker replaces the file's, as with listen. */
		if (!strcmp(where, "command line") && !c->broker_from_flags) {
			free(c->broker);
			c->broker = NULL;
			c->broker_from_flags = 1;
		}
		if (c->broker) {
			size_t n = strlen(c->broker) + 1 + strlen(v) + 1;
			char *j = malloc(n);

			if (!j)
				return -1;
			snprintf(j, n, "%s,%s", c->broker, v);
			free(c->broker);
			c->broker = j;
		} else {
			c->broker = strdup(v);
		}
		return 0;
	case T_LISTEN:
		if (!strcmp(where, "command line") && !c->listen_from_flags) {
			/* The command line wins over the file for the same setting:
			 * its first --listen replaces the file's addresses. */
			for (int i = 0; i < c->nlisten; i++)
				free(c->listen[i]);
			c->nlisten = 0;
			c->listen_from_flags = 1;
		}
		if (c->nlisten == PROXY_LISTEN_MAX) {
			fprintf(stderr, "e2e-proxy: %s: at most %d listen addresses\n", where,
				PROXY_LISTEN_MAX);
			return -1;
		}
		c->listen[c->nlisten++] = strdup(v);
		return 0;
	case T_BOOL:
		if (parse_bool(v, (int *)(void *)(base + o->off)) == 0)
			return 0;
		break;
	case T_U32:
	case T_U64:
		errno = 0;
		u = strtoull(v, &end, 10);
		if (errno || end == v || *end || (o->type == T_U32 && u > UINT32_MAX))
			break;
		if (o->type == T_U32)
			*(uint32_t *)(void *)(base + o->off) = (uint32_t)u;
		else
			*(uint64_t *)(void *)(base + o->off) = u;
		return 0;
	case T_MS32:
	case T_MS64:
		if (parse_ms(v, &u) != 0 || (o->type == T_MS32 && u > UINT32_MAX))
			break;
		if (o->type == T_MS32)
			*(uint32_t *)(void *)(base + o->off) = (uint32_t)u;
		else
			*(uint64_t *)(void *)(base + o->off) = u;
		return 0;
	case T_LEVEL:
		if (!strcmp(v, "error")) c->log_level = LOG_ERR;
		else if (!strcmp(v, "warning")) c->log_level = LOG_WARNING;
		else if (!strcmp(v, "info")) c->log_level = LOG_INFO;
		else if (!strcmp(v, "debug")) c->log_level = LOG_DEBUG;
		else break;
		return 0;
	case T_LOGFMT:
		if (!strcmp(v, "text")) c->log_json = 0;
		else if (!strcmp(v, "json")) c->log_json = 1;
		else break;
		return 0;
	case T_POLICY:
		if (!strcmp(v, "refuse")) c->unmapped = UNMAPPED_REFUSE;
		else if (!strcmp(v, "plaintext")) c->unmapped = UNMAPPED_PLAINTEXT;
		else break;
		return 0;
	}
	if (o->type == T_MS32 || o->type == T_MS64)
		fprintf(stderr, "e2e-proxy: %s: invalid duration '%s' for %s (a number and a unit: "
			"250ms, 10s, 5m, 24h, 7d; a bare number is seconds)\n", where, v, o->name);
	else
		fprintf(stderr, "e2e-proxy: %s: invalid value '%s' for %s\n", where, v, o->name);
	return -1;
}

static const struct opt *find(const char *name)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (!strcmp(opts[i].name, name))
			return &opts[i];
	return NULL;
}

static int load_file(struct proxy_config *c, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4096], where[4200];
	unsigned n = 0;
	int ret = 0;

	if (!f) {
		fprintf(stderr, "e2e-proxy: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, f) && ret == 0) {
		char *name, *val, *end;
		const struct opt *o;

		n++;
		snprintf(where, sizeof where, "%s:%u", path, n);
		if (!strchr(line, '\n') && !feof(f)) {
			fprintf(stderr, "e2e-proxy: %s: line too long\n", where);
			ret = -1;
			break;
		}
		name = line + strspn(line, " \t");
		if (*name == '#' || *name == '\n' || *name == '\0')
			continue;
		val = name + strcspn(name, " \t=\n");
		end = val + strspn(val, " \t=");
		*val = '\0';
		val = end;
		end = val + strlen(val);
		while (end > val && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t' ||
			end[-1] == '\r'))
			*--end = '\0';
		o = find(name);
		if (!o || !strcmp(name, "config")) {
			fprintf(stderr, "e2e-proxy: %s: unknown option '%s'\n", where, name);
			ret = -1;
		} else if (*val == '\0') {
			fprintf(stderr, "e2e-proxy: %s: '%s' needs a value\n", where, name);
			ret = -1;
		} else {
			ret = set(c, o, val, where);
		}
	}
	fclose(f);
	return ret;
}

static void defaults(struct proxy_config *c)
{
	memset(c, 0, sizeof *c);
	c->tls = 1;
	c->max_connections = 1024;
	c->max_packet = 1U << 20;
	c->connect_timeout_ms = 10000;
	c->drain_timeout_ms = 10000;
	c->summary_ms = 10000;
	c->grace_ms = 24ULL * 3600 * 1000;
	c->log_level = LOG_INFO;
}

int proxy_config_load(struct proxy_config *c, int argc, char **argv)
{
	struct option lo[NOPTS + 4];
	int i, ch, idx;

	defaults(c);
	for (i = 0; i < (int)NOPTS; i++)
		lo[i] = (struct option){ opts[i].name, required_argument, NULL, 0 };
	lo[i++] = (struct option){ "check-config", no_argument, NULL, 0 };
	lo[i++] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[i++] = (struct option){ "version", no_argument, NULL, 'V' };
	lo[i] = (struct option){ NULL, 0, NULL, 0 };
	/* The file first, so flags override it wherever they appear. */
	for (i = 1; i < argc - 1; i++)
		if (!strcmp(argv[i], "--config") && load_file(c, argv[i + 1]) != 0)
			return 1;
	opterr = 1;
	optind = 0;   /* glibc: a full re-initialisation (SIGHUP parses again) */
	while ((ch = getopt_long(argc, argv, "hV", lo, &idx)) != -1) {
		if (ch == 'h') {
			proxy_usage(stdout);
			return 2;
		}
		if (ch == 'V') {
			printf("e2e-proxy " E2E_PROXY_VERSION "\n");
			return 2;
		}
		if (ch != 0) {
			proxy_usage(stderr);
			return 1;
		}
		if (idx == (int)NOPTS) {
			c->check_only = 1;
		} else if (!strcmp(opts[idx].name, "config")) {
			/* Already loaded above; remember it for SIGHUP. */
			free(c->config_file);
			c->config_file = strdup(optarg);
		} else if (set(c, &opts[idx], optarg, "command line")) {
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "e2e-proxy: unexpected argument '%s'\n", argv[optind]);
		return 1;
	}
	if (!c->broker) {
		fprintf(stderr, "e2e-proxy: --broker HOST:PORT is required\n");
		return 1;
	}
	if (c->nlisten == 0)
		c->listen[c->nlisten++] = strdup("127.0.0.1:1883");
	if (!c->dir)
		c->dir = strdup("/var/lib/mqtt-e2e/sender");
	if (c->listen_tls && (!c->listen_cert || !c->listen_key)) {
		fprintf(stderr, "e2e-proxy: --listen-tls needs --listen-cert and --listen-key\n");
		return 1;
	}
	if (c->metrics_listen) {
		char h[256], p[16];

		if (e2e_hostport_split(c->metrics_listen, h, sizeof h, p, sizeof p) != 0) {
			fprintf(stderr, "e2e-proxy: metrics-listen: '%s' is not ADDR:PORT\n",
				c->metrics_listen);
			return 1;
		}
	}
	if (c->psk && !c->psk_identity) {
		fprintf(stderr, "e2e-proxy: --psk needs --psk-identity\n");
		return 1;
	}
	return 0;
}

void proxy_config_free(struct proxy_config *c)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (opts[i].type == T_STR || opts[i].type == T_BROKER)
			free(*(char **)((char *)c + opts[i].off));
	for (int i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	memset(c, 0, sizeof *c);
}

