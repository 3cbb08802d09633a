/*
 * Prometheus text exposition (ops/metrics.c): the builder's lines, a
 * histogram's cumulative buckets, growth past the first allocation, and the
 * libmicrohttpd listener answering /metrics and 404 over a real socket.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testcu.h"
#include "../../ops/metrics.h"

static void test_lines(void)
{
	struct e2e_prom b = { 0 };

	e2e_prom_one(&b, "x_total", "counter", "Things.", 42);
	e2e_prom_u64(&b, "y_total", "qos=\"1\"", 18446744073709551615ULL);
	e2e_prom_f64(&b, "z", NULL, 0.25);
	CU_ASSERT_FALSE(b.oom);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b.p);
	CU_ASSERT_STRING_EQUAL(b.p, "# HELP x_total Things.\n# TYPE x_total counter\nx_total 42\n"
		"y_total{qos=\"1\"} 18446744073709551615\nz 0.25\n");
	CU_ASSERT_EQUAL(b.len, strlen(b.p));
	free(b.p);
}

static void test_histogram(void)
{
	static const double le[] = { 0.001, 0.01 };
	static const uint64_t count[] = { 2, 3, 5 };   /* last: above 0.01 */
	struct e2e_prom b = { 0 };

	e2e_prom_histogram(&b, "lat_seconds", "Latency.", le, count, 2, 1.5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b.p);
	/* Buckets are cumulative; +Inf and _count hold every observation. */
	CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "lat_seconds_bucket{le=\"0.001\"} 2\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "lat_seconds_bucket{le=\"0.01\"} 5\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "lat_seconds_bucket{le=\"+Inf\"} 10\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "lat_seconds_sum 1.5\nlat_seconds_count 10\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "# TYPE lat_seconds histogram\n"));
	free(b.p);
}

static void test_growth(void)
{
	struct e2e_prom b = { 0 };
	char name[32];

	for (unsigned i = 0; i < 2000; i++) {
		snprintf(name, sizeof name, "m%u_total", i);
		e2e_prom_u64(&b, name, NULL, i);
	}
	CU_ASSERT_FALSE(b.oom);
	CU_ASSERT(b.len > 8192 && b.len < b.cap);
	CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "\nm1999_total 1999\n"));
	CU_ASSERT_EQUAL(b.len, strlen(b.p));
	free(b.p);
}

static void render(void *ctx, struct e2e_prom *b)
{
	e2e_prom_one(b, "t_scrapes_total", "counter", "Scrapes.", ++*(uint64_t *)ctx);
}

/* One HTTP/1.0 GET of @p path on 127.0.0.1:@p port; the whole answer. */
static size_t get(unsigned port, const char *path, char *out, size_t cap)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char req[128];
	size_t got = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
	(void)!write(fd, req, strlen(req));
	while (got < cap - 1 && (n = read(fd, out + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(fd);
	return got;
}

static void test_server(void)
{
	struct e2e_metrics *m = NULL;
	uint64_t scrapes = 0;
	char err[256], spec[32], resp[4096];
	unsigned port = 0;

	/* A free port: bind to 0, read it, release it, then serve on it. */
	for (int attempt = 0; attempt < 5 && !m; attempt++) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		socklen_t sl = sizeof sa;
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		CU_ASSERT_FATAL(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
			getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
		port = ntohs(sa.sin_port);
		close(fd);
		snprintf(spec, sizeof spec, "127.0.0.1:%u", port);
		m = e2e_metrics_start(spec, render, &scrapes, err, sizeof err);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT(get(port, "/metrics", resp, sizeof resp) > 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, " 200 "));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "text/plain; version=0.0.4"));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "\nt_scrapes_total 1\n"));
	get(port, "/metrics", resp, sizeof resp);
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "\nt_scrapes_total 2\n"));
	get(port, "/", resp, sizeof resp);
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, " 404 "));
	CU_ASSERT_EQUAL(scrapes, 2);   /* only /metrics renders */
	e2e_metrics_stop(m);
	/* Bad addresses are refused with a reason. */
	CU_ASSERT_PTR_NULL(e2e_metrics_start("no-port", render, &scrapes, err, sizeof err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "not ADDR:PORT"));
	e2e_metrics_stop(NULL);
}

int main(void)
{
	static const struct tu_test tests[] = {
		{ "builder lines", test_lines },
		{ "histogram", test_histogram },
		{ "growth", test_growth },
		{ "server", test_server },
		{ NULL, NULL },
	};
	static const struct tu_suite suites[] = { { "prom", tests }, { NULL, NULL } };

	return tu_main(suites);
}
