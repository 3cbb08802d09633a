/*
 * e2e-sub: what sub_main.c hands to the session side (sub_session.c): the
 * client's callbacks (text or JSON on stdout, markers and anomalies on
 * stderr), the run loop and the summary at exit.
 */
#ifndef E2E_SUB_H
#define E2E_SUB_H

#include <stdatomic.h>

#include "e2e/client.h"

#define SUB_PROG "e2e-sub"

#define SUB_FILTER_OUT_MAX 32

struct sub_out {
	/* Set by main before connecting. */
	int json, verbose, show_all;
	unsigned long count;          /* -C: stop after this many printed; 0 = no limit */
	/* mosquitto_sub's output options. */
	const char *format;           /* -F, or NULL */
	int eol;                      /* 0 with -N */
	int no_retain;                /* -R: retained (stale) messages are not printed */
	int retained_only;            /* --retained-only: the first fresh message ends the run */
	int debug;                    /* -d */
	const char *filter_out[SUB_FILTER_OUT_MAX];   /* -T */
	int nfilter_out;
	/* Written on the client's callback thread, polled by main. */
	atomic_int done;              /* -C reached, or --retained-only saw a fresh message */
	atomic_ulong delivered;
	atomic_int anomaly;           /* a security anomaly was seen (for --strict) */
	/* Callback thread only, read by main after e2e_client_destroy. */
	uint64_t verdicts[E2E_V_FORGOTTEN + 1];
	uint64_t gap_total;
	/* Callback thread, read by the metrics thread (--metrics-listen). */
	atomic_uint_fast64_t bytes;   /* payload bytes delivered */
	atomic_uint_fast64_t connects;
	atomic_int connected;
};

struct e2e_metrics;

/** --metrics-listen: serve Prometheus metrics of @p c; NULL if it failed (printed). */
struct e2e_metrics *sub_metrics_start(const char *hostport, struct e2e_client *c,
	struct sub_out *o);

/* e2e_client callbacks; ctx is a struct sub_out. */
void sub_on_message(void *ctx, const struct e2e_client_msg *m);
void sub_on_event(void *ctx, const struct e2e_client_event *ev);

/**
 * Until -C printed messages (or --retained-only's end), @p wait_ms
 * milliseconds (-W; 0: no limit), or a signal.
 * @return 1 if the run ended because @p wait_ms passed (-W), else 0.
 */
int sub_run(struct e2e_client *c, struct sub_out *o, uint64_t wait_ms);

/** Whether MQTT filter @p filter matches @p topic (+, #, and $-topics as MQTT says). */
int sub_topic_matches(const char *filter, const char *topic);

/** One line to stderr: per-verdict counts, then lost and pending from @p st. */
void sub_summary(const struct sub_out *o, const struct e2e_client_stats *st);

/* --enroll TOKEN (sub_enroll.c): -1 to go on subscribing, else the exit status. */
struct cli_common;
int sub_enroll(const struct cli_common *cc, const char *dir, const char *identity,
	const char *token, uint32_t timeout_ms);

#endif
