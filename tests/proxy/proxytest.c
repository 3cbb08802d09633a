/* Fixtures of the proxy's socket-level suites; see proxytest.h. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <sodium.h>

#include "log.h"
#include "mqtt_test.h"
#include "proxy.h"
#include "proxytest.h"

uint8_t pt_key[E2E_KEY_BYTES];
unsigned pt_seals;
static uint64_t g_counter;

/* ---- Stand-ins for what the relay calls outside conn.c/relay.c ---------- */

/* Topics under "plain/" are in no scope (passed as plaintext by policy). */
static enum e2e_status fake_seal(uint8_t *out, size_t cap, size_t *out_len, const char *topic,
	size_t tlen, const uint8_t *pt, size_t pt_len)
{
	struct e2e_header h = { .suite = E2E_SUITE_V1_XCHACHA, .scope = 1, .epoch = 7,
		.sender = 0x01020304, .run = 9, .counter = ++g_counter,
		.seq = (uint32_t)g_counter };

	if (tlen >= 6 && !memcmp(topic, "plain/", 6))
		return E2E_ERR_NOT_FOUND;
	pt_seals++;
	return e2e_envelope_seal(out, cap, out_len, &h, pt_key, (const uint8_t *)topic, tlen, pt,
		pt_len);
}

/* The first pt_park_left calls answer E2E_ERR_RESERVE: no durable
 * reservation yet, the relay parks (pt_parks counts them). */
unsigned pt_park_left, pt_parks;

enum e2e_status e2e_publisher_seal_nowait(struct e2e_publisher *p, int will, uint8_t *out,
	size_t cap, size_t *out_len, const char *topic, size_t topic_len, const uint8_t *pt,
	size_t pt_len)
{
	(void)p;
	(void)will;
	if (pt_park_left) {
		pt_park_left--;
		pt_parks++;
		return E2E_ERR_RESERVE;
	}
	return fake_seal(out, cap, out_len, topic, topic_len, pt, pt_len);
}

void proxy_latency_observe(struct proxy_stats *st, uint64_t ns, uint32_t n)
{
	(void)st;
	(void)ns;
	(void)n;
}

int upstream_credentials(const struct proxy *px, const char *client_id, const char **user,
	const char **pass)
{
	(void)px;
	(void)client_id;
	(void)user;
	(void)pass;
	return -1;
}

/* tls.c builds contexts from the configuration; these suites make no
 * client SSL towards a broker (tests/proxy_it covers that). */
SSL *tls_new(struct tls_ctx *t, int fd, const char *client_id)
{
	(void)t;
	(void)fd;
	(void)client_id;
	return NULL;
}

void tls_why(const struct tls_ctx *t, SSL *ssl, int r, char *out, size_t cap)
{
	(void)t;
	(void)ssl;
	(void)r;
	snprintf(out, cap, "no TLS in this test");
}

const char *tls_error(void)
{
	return "no TLS in this test";
}

/* ---- A fake peer's I/O ---------------------------------------------------- */

void pt_in_free(struct pt_in *in)
{
	free(in->p);
	memset(in, 0, sizeof *in);
}

void pt_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

ssize_t pt_slurp(struct pt_in *in, int fd)
{
	ssize_t total = 0;

	for (;;) {
		ssize_t r;

		if (in->cap - in->len < 65536) {
			in->cap = in->cap * 2 + 65536;
			in->p = realloc(in->p, in->cap);
			if (!in->p)
				abort();
		}
		r = recv(fd, in->p + in->len, in->cap - in->len, MSG_DONTWAIT);
		if (r > 0) {
			in->len += (size_t)r;
			total += r;
			continue;
		}
		if (r == 0 || errno != EAGAIN)
			return total ? total : -1;
		return total;
	}
}

size_t pt_next_packet(struct pt_in *in, uint8_t *out, size_t cap)
{
	size_t plen = 0, hlen = 0;

	if (!in->len || mqtt_frame(in->p, in->len, MQTT_MAX_REMAINING + 5U, &plen, &hlen) !=
	    MQTT_OK || plen > cap)
		return 0;
	memcpy(out, in->p, plen);
	memmove(in->p, in->p + plen, in->len - plen);
	in->len -= plen;
	return plen;
}

size_t pt_recv_packet(struct pt_in *in, int fd, uint8_t *out, size_t cap)
{
	for (int i = 0; i < 2000; i++) {
		size_t n = pt_next_packet(in, out, cap);

		if (n)
			return n;
		pt_pump_once(1);
		if (pt_slurp(in, fd) < 0 && !pt_next_packet(in, out, 0))
			return pt_next_packet(in, out, cap);
	}
	return 0;
}

void pt_send_all(int fd, const uint8_t *p, size_t n)
{
	for (int stuck = 0; n;) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			stuck = 0;
		} else if (w < 0 && errno == EAGAIN && ++stuck < 3000) {
			pt_pump_once(1);
		} else {
			CU_FAIL_FATAL("send failed: the proxy does not read");
		}
	}
}

int pt_check_sealed(const uint8_t *pkt, size_t len, uint8_t version, const char *topic,
	const void *pt, size_t pt_len)
{
	struct mqtt_publish p;
	struct e2e_header hd;
	uint8_t *out = malloc(pt_len + 1);
	size_t olen = 0;
	int ok;

	ok = out && mqtt_parse_publish(pkt, len, version, &p) == MQTT_OK &&
		span_eq_str(p.topic, topic) && e2e_header_parse(&hd, p.payload.p, p.payload.len) ==
		E2E_OK && e2e_envelope_open(out, pt_len + 1, &olen, pt_key, (const uint8_t *)topic,
		strlen(topic), p.payload.p, p.payload.len) == E2E_OK && olen == pt_len &&
		memcmp(out, pt, pt_len) == 0;
	free(out);
	return ok;
}

int pt_proxy_init(struct proxy *px, const char *brokers, uint32_t max_packet)
{
	char err[200];

	px->cfg.max_packet = max_packet;
	px->cfg.connect_timeout_ms = 10000;
	px->cfg.unmapped = UNMAPPED_PLAINTEXT;
	px->cfg.tls = 0;
	px->cfg.max_connections = 10000;
	snprintf(px->service_id, sizeof px->service_id, "e2e-proxy-keys");
	px->scratch_cap = (size_t)max_packet + E2E_OVERHEAD_MAX;
	px->scratch = malloc(px->scratch_cap);
	if (!px->scratch || px_upstreams_init(&px->ups, brokers, err, sizeof err) != 0)
		return -1;
	px->broker_ai = px->ups.b[0].ai;
	return 0;
}

void pt_proxy_free(struct proxy *px)
{
	px_upstreams_free(&px->ups);
	px->broker_ai = NULL;
	free(px->scratch);
	px->scratch = NULL;
}

int pt_listen_loopback(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

int pt_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3;   /* ".", ".." and the directory's own fd */
}

int pt_dial_loopback(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	pt_nonblock(fd);
	return fd;
}

int pt_run(const char *suite, const struct mt_test *tests)
{
	CU_pSuite s;
	unsigned fails;

	if (sodium_init() < 0 || CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	plog_init(LOG_CRIT, 0);
	randombytes_buf(pt_key, sizeof pt_key);
	s = CU_add_suite(suite, NULL, NULL);
	for (const struct mt_test *t = tests; t->name; t++)
		CU_add_test(s, t->name, t->fn);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
