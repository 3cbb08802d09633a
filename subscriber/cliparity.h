/*
 * mosquitto_sub/mosquitto_pub parity for e2e-sub and e2e-pub: the options
 * both share with the mosquitto clients beyond the broker and TLS basics
 * of cliopts.h (-L URL, -k, -c, -x, -d, --will-*, --tls-version, long
 * aliases), and the mosquitto options that cannot apply to an end-to-end
 * client, refused with the reason. Kept apart from cliopts.c so the two
 * change independently.
 */
#ifndef E2E_CLIPARITY_H
#define E2E_CLIPARITY_H

#include "cliopts.h"

/* Long-only parity options: above the binaries' own (CLI_OPT_OWN + a few). */
enum cli_parity_long {
	CLI_OPT_WILL_TOPIC = 0x200,
	CLI_OPT_WILL_PAYLOAD,
	CLI_OPT_WILL_QOS,
	CLI_OPT_WILL_RETAIN,
	CLI_OPT_TLS_VERSION,
	CLI_OPT_UNSUPPORTED,      /* a mosquitto option we refuse: see cli_unsupported */
	CLI_OPT_UNSUPPORTED_ARG,  /* the same, taking a value */
};

/* Short options of both binaries, as in mosquitto_sub/pub. */
#define CLI_PARITY_SHORT "L:k:x:cd"

/* Long names: mosquitto's spellings of the shared options, and the wills. */
#define CLI_PARITY_LONG \
	{ "host", required_argument, NULL, 'h' }, \
	{ "port", required_argument, NULL, 'p' }, \
	{ "id", required_argument, NULL, 'i' }, \
	{ "username", required_argument, NULL, 'u' }, \
	{ "pw", required_argument, NULL, 'P' }, \
	{ "protocol-version", required_argument, NULL, 'V' }, \
	{ "url", required_argument, NULL, 'L' }, \
	{ "keepalive", required_argument, NULL, 'k' }, \
	{ "session-expiry-interval", required_argument, NULL, 'x' }, \
	{ "disable-clean-session", no_argument, NULL, 'c' }, \
	{ "debug", no_argument, NULL, 'd' }, \
	{ "tls-alpn", required_argument, NULL, CLI_OPT_ALPN }, \
	{ "tls-use-os-certs", no_argument, NULL, CLI_OPT_TLS }, \
	{ "will-topic", required_argument, NULL, CLI_OPT_WILL_TOPIC }, \
	{ "will-payload", required_argument, NULL, CLI_OPT_WILL_PAYLOAD }, \
	{ "will-qos", required_argument, NULL, CLI_OPT_WILL_QOS }, \
	{ "will-retain", no_argument, NULL, CLI_OPT_WILL_RETAIN }, \
	{ "tls-version", required_argument, NULL, CLI_OPT_TLS_VERSION }, \
	{ "quiet", no_argument, NULL, CLI_OPT_UNSUPPORTED }, \
	{ "unix", required_argument, NULL, CLI_OPT_UNSUPPORTED_ARG }, \
	{ "proxy", required_argument, NULL, CLI_OPT_UNSUPPORTED_ARG }, \
	{ "id-prefix", required_argument, NULL, CLI_OPT_UNSUPPORTED_ARG }, \
	{ "ciphers", required_argument, NULL, CLI_OPT_UNSUPPORTED_ARG }, \
	{ "tls-engine", required_argument, NULL, CLI_OPT_UNSUPPORTED_ARG }, \
	{ "keyform", required_argument, NULL, CLI_OPT_UNSUPPORTED_ARG }, \
	{ "tls-engine-kpass-sha1", required_argument, NULL, CLI_OPT_UNSUPPORTED_ARG }, \
	{ "nodelay", no_argument, NULL, CLI_OPT_UNSUPPORTED }, \
	{ "property", required_argument, NULL, 'D' }

/* Short mosquitto options refused with a reason (see cli_unsupported). */
#define CLI_PARITY_REFUSED "A:I:SD:"

/* What the parity options set besides cli_common's connection. */
struct cli_parity {
	int debug;
	int keep_session;             /* -c */
	int expiry_set;               /* -x given */
	unsigned long expiry;
	int keepalive_set;
	const char *url_topic;        /* the topic of -L */
	const char *will_payload;
	unsigned long will_qos;
	int will_qos_set, will_retain;
	char url_buf[1024];           /* -L's pieces, NUL-separated */
};

/**
 * Apply parity option @p opt with argument @p arg (@p prog names the binary).
 * @return 1 if it was ours, 0 if not, -1 on a bad value or a refused
 *         option (printed).
 */
int cli_parity_opt(struct cli_common *cc, struct cli_parity *p, int opt, const char *arg,
	char **argv);

/**
 * After the option loop: checks that need every option (-c needs -i, as in
 * mosquitto) and settles defaults (-c with MQTT 5 keeps the session
 * forever unless -x says otherwise). 0, or -1 (printed).
 */
int cli_parity_done(struct cli_common *cc, struct cli_parity *p);

/** Usage lines of the parity options. */
void cli_parity_usage(FILE *f);

/** A debug line (-d) on stderr, prefixed with the program name. */
void cli_debug(const struct cli_parity *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
