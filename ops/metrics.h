/*
 * Prometheus text exposition for e2e-proxy and e2e-sub: a small buffer
 * builder for the text format (version 0.0.4) and an HTTP listener run by
 * libmicrohttpd on its own thread. The listener calls the binary's render
 * function on each scrape; render reads counters the binary published
 * (relaxed atomics or a snapshot), so nothing here touches the relay path.
 */
#ifndef E2E_OPS_METRICS_H
#define E2E_OPS_METRICS_H

#include <stddef.h>
#include <stdint.h>

/** A growing text buffer; on allocation failure it stops growing and sets oom. */
struct e2e_prom {
	char *p;
	size_t len, cap;
	int oom;
};

/** "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram). */
void e2e_prom_head(struct e2e_prom *b, const char *name, const char *type, const char *help);

/** One sample: name{labels} value; @p labels without braces, NULL or "" for none. */
void e2e_prom_u64(struct e2e_prom *b, const char *name, const char *labels, uint64_t v);
void e2e_prom_f64(struct e2e_prom *b, const char *name, const char *labels, double v);

/** Head and a single unlabelled sample. */
void e2e_prom_one(struct e2e_prom *b, const char *name, const char *type, const char *help,
	uint64_t v);

/**
 * A histogram from @p n cumulative-free bucket counts (count[i] = observations
 * <= le[i] and > le[i-1]; count[n] = above the last edge), in seconds.
 */
void e2e_prom_histogram(struct e2e_prom *b, const char *name, const char *help,
	const double *le, const uint64_t *count, size_t n, double sum);

typedef void (*e2e_metrics_render_fn)(void *ctx, struct e2e_prom *b);

struct e2e_metrics;

/**
 * Serve GET /metrics on @p hostport ("127.0.0.1:9464", "[::1]:9464") from a
 * libmicrohttpd thread. Returns NULL with a reason in @p err on failure.
 * Block signals before calling: the thread inherits the mask.
 */
struct e2e_metrics *e2e_metrics_start(const char *hostport, e2e_metrics_render_fn fn, void *ctx,
	char *err, size_t err_len);

/** Stop the listener and join its thread (NULL is fine). */
void e2e_metrics_stop(struct e2e_metrics *m);

#endif
