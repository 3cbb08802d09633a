/*
 * Prometheus text exposition over libmicrohttpd; see metrics.h. The MHD
 * thread owns the sockets; a scrape builds the text into a fresh buffer
 * that MHD frees once sent, so nothing is shared between scrapes.
 */
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hostport.h"
#include "metrics.h"

#define CONN_LIMIT 16U        /* scrapers, not clients: a few at most */
#define CONN_TIMEOUT_S 10U

struct e2e_metrics {
	struct MHD_Daemon *d;
	e2e_metrics_render_fn fn;
	void *ctx;
};

static void put(struct e2e_prom *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct e2e_prom *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap ? b->cap * 2 : 8192;
			char *p;

			while (cap - b->len <= (size_t)n)
				cap *= 2;
			p = realloc(b->p, cap);
			if (!p) {
				b->oom = 1;
				return;
			}
			b->p = p;
			b->cap = cap;
		}
	}
}

void e2e_prom_head(struct e2e_prom *b, const char *name, const char *type, const char *help)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void e2e_prom_u64(struct e2e_prom *b, const char *name, const char *labels, uint64_t v)
{
	if (labels && *labels)
		put(b, "%s{%s} %llu\n", name, labels, (unsigned long long)v);
	else
		put(b, "%s %llu\n", name, (unsigned long long)v);
}

void e2e_prom_f64(struct e2e_prom *b, const char *name, const char *labels, double v)
{
	if (labels && *labels)
		put(b, "%s{%s} %.9g\n", name, labels, v);
	else
		put(b, "%s %.9g\n", name, v);
}

void e2e_prom_one(struct e2e_prom *b, const char *name, const char *type, const char *help,
	uint64_t v)
{
	e2e_prom_head(b, name, type, help);
	e2e_prom_u64(b, name, NULL, v);
}

void e2e_prom_histogram(struct e2e_prom *b, const char *name, const char *help,
	const double *le, const uint64_t *count, size_t n, double sum)
{
	uint64_t cum = 0;

	e2e_prom_head(b, name, "histogram", help);
	for (size_t i = 0; i < n; i++) {
		cum += count[i];
		put(b, "%s_bucket{le=\"%g\"} %llu\n", name, le[i], (unsigned long long)cum);
	}
	cum += count[n];
	put(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", name,
		(unsigned long long)cum, name, sum, name, (unsigned long long)cum);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *type,
	char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
	const char *method, const char *version, const char *upload, size_t *upload_len,
	void **req)
{
	static char not_found[] = "not found: the metrics are at /metrics\n";
	static char bad_method[] = "only GET\n";
	struct e2e_metrics *m = cls;
	struct e2e_prom b = { 0 };

	(void)version;
	(void)upload;
	(void)req;
	if (*upload_len)
		return MHD_NO;   /* GET carries no body */
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", bad_method,
			sizeof bad_method - 1, MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics"))
		return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", not_found,
			sizeof not_found - 1, MHD_RESPMEM_PERSISTENT);
	m->fn(m->ctx, &b);
	if (b.oom || !b.p) {
		free(b.p);
		return MHD_NO;
	}
	return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len,
		MHD_RESPMEM_MUST_FREE);
}

struct e2e_metrics *e2e_metrics_start(const char *hostport, e2e_metrics_render_fn fn, void *ctx,
	char *err, size_t err_len)
{
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct e2e_metrics *m = NULL;
	char host[256], port[16];
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
	int rc;

	if (e2e_hostport_split(hostport, host, sizeof host, port, sizeof port) != 0) {
		snprintf(err, err_len, "metrics-listen: '%s' is not ADDR:PORT", hostport);
		goto out;
	}
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, err_len, "metrics-listen %s: %s", hostport, gai_strerror(rc));
		goto out;
	}
	m = calloc(1, sizeof *m);
	if (!m) {
		snprintf(err, err_len, "metrics-listen: out of memory");
		goto out;
	}
	m->fn = fn;
	m->ctx = ctx;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* MHD_OPTION_SOCK_ADDR binds exactly this address (the port argument is
	 * then ignored); the thread inherits the caller's blocked signals. */
	m->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, m,
		MHD_OPTION_SOCK_ADDR, ai->ai_addr,
		MHD_OPTION_CONNECTION_LIMIT, CONN_LIMIT,
		MHD_OPTION_CONNECTION_TIMEOUT, CONN_TIMEOUT_S,
		MHD_OPTION_END);
	if (!m->d) {
		snprintf(err, err_len, "metrics-listen %s: cannot listen (address in use or "
			"not local?)", hostport);
		free(m);
		m = NULL;
	}
out:
	if (ai)
		freeaddrinfo(ai);
	return m;
}

void e2e_metrics_stop(struct e2e_metrics *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->d);
	free(m);
}
