/*
 * Command-line plumbing shared by e2e-sub and e2e-pub: the broker and TLS
 * options (one table fragment, one parser, one usage text), the state
 * directory defaults, number parsing, event reporting and signals.
 * Everything that fails here has already printed why, prefixed with the
 * program name, so callers only pick the exit code.
 */
#ifndef E2E_CLIOPTS_H
#define E2E_CLIOPTS_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "e2e/client.h"
#include "e2e/e2e.h"

/* Exit codes of both binaries (see the EXIT STATUS of their man pages). */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_USAGE = 1,       /* misuse or setup error */
	CLI_EXIT_CONNECT = 2,     /* the broker could not be reached */
	CLI_EXIT_ANOMALY = 3,     /* e2e-sub --strict: a security anomaly was seen */
	CLI_EXIT_UNACKED = 4,     /* e2e-pub: a message was not published/acknowledged */
};

/* Long-only options get values above any character. */
enum cli_long {
	CLI_OPT_CAFILE = 0x100,
	CLI_OPT_CAPATH,
	CLI_OPT_CERT,
	CLI_OPT_KEY,
	CLI_OPT_PSK,
	CLI_OPT_PSK_ID,
	CLI_OPT_ALPN,
	CLI_OPT_INSECURE,
	CLI_OPT_TLS,
	CLI_OPT_DIR,
	CLI_OPT_CONTROL,
	CLI_OPT_HELP,
	CLI_OPT_VERSION,
	CLI_OPT_BROKER,
	CLI_OPT_OWN,              /* first value free for a binary's own options */
};

/* Short options of the connection ("-h" is the host, as in mosquitto_sub). */
#define CLI_CONN_SHORT "h:p:i:u:P:V:"

/* getopt_long entries of the shared options; a binary's table starts with these. */
#define CLI_CONN_LONG \
	{ "cafile", required_argument, NULL, CLI_OPT_CAFILE }, \
	{ "capath", required_argument, NULL, CLI_OPT_CAPATH }, \
	{ "cert", required_argument, NULL, CLI_OPT_CERT }, \
	{ "key", required_argument, NULL, CLI_OPT_KEY }, \
	{ "psk", required_argument, NULL, CLI_OPT_PSK }, \
	{ "psk-identity", required_argument, NULL, CLI_OPT_PSK_ID }, \
	{ "alpn", required_argument, NULL, CLI_OPT_ALPN }, \
	{ "insecure", no_argument, NULL, CLI_OPT_INSECURE }, \
	{ "tls", no_argument, NULL, CLI_OPT_TLS }, \
	{ "dir", required_argument, NULL, CLI_OPT_DIR }, \
	{ "control-topic", required_argument, NULL, CLI_OPT_CONTROL }, \
	{ "help", no_argument, NULL, CLI_OPT_HELP }, \
	{ "version", no_argument, NULL, CLI_OPT_VERSION }, \
	{ "broker", required_argument, NULL, CLI_OPT_BROKER }

/* Brokers of -h / --broker (failover, in this order). */
#define CLI_BROKERS_MAX 16

/* What the shared options set. */
struct cli_common {
	struct e2e_conn_config conn;
	struct e2e_broker brokers[CLI_BROKERS_MAX];
	char broker_host[CLI_BROKERS_MAX][256];
	int nbrokers;
	const char *dir;              /* --dir, NULL: default */
	const char *control_topic;    /* --control-topic, NULL: library default */
	int help, version;
};

/* Name used as the prefix of every diagnostic; set once by main. */
extern const char *cli_prog;

/**
 * Apply option @p opt (a getopt_long result) with argument @p arg.
 * @return 1 if it was a shared option, 0 if it is not ours, -1 on a bad value
 *         (printed).
 */
int cli_common_opt(struct cli_common *cc, int opt, const char *arg);

/**
 * The next option that is not a shared one, as getopt_long returns it
 * (@p optstring must start with ':' and include CLI_CONN_SHORT; @p longs
 * start with CLI_CONN_LONG). Shared options are applied to @p cc on the way.
 * @return the option, -1 at the end, or 0 after a bad value (printed).
 */
int cli_next_opt(int argc, char **argv, const char *optstring, const struct option *longs,
	struct cli_common *cc);

/**
 * After the option loop: @p bad (a value was refused) gives CLI_EXIT_USAGE,
 * --help prints @p usage to stdout, --version the version.
 * @return -1 to go on, else the exit code.
 */
int cli_parse_done(const struct cli_common *cc, int bad, int (*usage)(FILE *f));

/**
 * Report getopt_long's '?' (unknown) or ':' (missing value; the option
 * string must start with ':') as @p c. Returns CLI_EXIT_USAGE.
 */
int cli_bad_option(int c, char **argv);

/** Usage lines of the shared options. */
void cli_common_usage(FILE *f, const char *default_dir);

/** Parse an unsigned decimal in [min, max] for option @p name; 0 or -1 (printed). */
int cli_number(const char *name, const char *arg, unsigned long min, unsigned long max,
	unsigned long *out);

/** Parse a duration (e2e_duration_parse: "250ms", "10s", "5m"; a bare number
 * is seconds) in [min_ms, max_ms] for option @p name; 0 or -1 (printed). */
int cli_duration(const char *name, const char *arg, uint64_t min_ms, uint64_t max_ms,
	uint64_t *out_ms);

/**
 * The state directory: --dir, else $E2E_DIR, else @p fallback; with
 * @p fallback NULL, $HOME/.config/mqtt-e2e. 0 or -1 (printed).
 */
int cli_dir(char *buf, size_t cap, const char *dir, const char *fallback);

/**
 * Say what is wrong with a file option before the library's generic words:
 * a directory where the file belongs, or (@p may_be_missing: a file created
 * later) a directory that does not exist or cannot be written. 0 or -1
 * (printed, naming @p what).
 */
int cli_file_check(const char *what, const char *path, int may_be_missing);

/** 0 if @p dir is a directory, else -1 after saying so (@p kind: "state"). */
int cli_dir_exists(const char *dir, const char *kind);

/** @p dir "/" @p file into @p buf; 0 or -1 (printed). */
int cli_join(char *buf, size_t cap, const char *dir, const char *file);

/**
 * Print a client or publisher event to stderr.
 * @return 1 if it is a security anomaly (refused key, rejected control
 *         message, anomaly), else 0.
 */
int cli_report_event(const struct e2e_client_event *ev);

/** cli_report_event as an e2e_client_event_fn (ctx unused). */
void cli_event_cb(void *ctx, const struct e2e_client_event *ev);

/**
 * SIGINT/SIGTERM only set a flag. Call cli_signals_hold before the MQTT
 * threads exist (they inherit a blocked mask) and cli_signals_release once
 * they run, so the signal lands in the main thread and interrupts its
 * blocking reads.
 */
void cli_signals_hold(void);
void cli_signals_release(void);
int cli_stopped(void);

/** A short sleep for the main loops (the clock is e2e_mono_ms()). */
void cli_sleep_ms(unsigned ms);

#endif
