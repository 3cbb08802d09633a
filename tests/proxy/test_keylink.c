/*
 * The key service's link to the broker (keylink.c) with its real thread:
 * the test plays Paho (the key service's MQTT client, which connects to the
 * link's loopback port from this very process) and the broker (loopback
 * listeners the link dials through px->ups).
 *
 * What it checks: the key service's CONNECT and SUBSCRIBE to the control
 * topic reach the broker byte for byte and the broker's answers come back;
 * a key REQUEST published by the broker (sent one byte at a time, and one
 * far larger than the link's buffer) reaches the key service whole, and the
 * DELIVERY it publishes reaches the broker; a broken link is served again
 * on Paho's reconnect, by the same broker while it answers and by the next
 * one of the list once it does not; no broker at all, and a TLS context
 * that cannot make a connection, leave their reason for the startup error;
 * whatever is not MQTT from a server is refused (Paho gets none of it and
 * the link closes) and the link serves the next connection; the thread
 * leaves no descriptor open.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
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

#define MAXP (1024U * 1024U)
#define CONTROL "e2e/control/keys"

static struct {
	struct proxy px;
	int fds_before;
	int blfd[2];      /* the fake brokers' listeners */
	int nb;
	struct pt_in in;
} H;

static uint8_t pkt[MAXP], got[MAXP];

/* The link runs on its own thread: a round is a short wait. */
int pt_pump_once(int timeout_ms)
{
	usleep((useconds_t)(timeout_ms > 0 ? timeout_ms : 1) * 1000U);
	return 0;
}

static int up(int nbrokers, int tls)
{
	char list[80] = "";

	memset(&H, 0, sizeof H);
	H.fds_before = pt_count_fds();
	H.nb = nbrokers;
	for (int i = 0; i < nbrokers; i++) {
		int port = 0;

		H.blfd[i] = pt_listen_loopback(&port);
		if (H.blfd[i] < 0)
			return -1;
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s127.0.0.1:%d",
			i ? "," : "", port);
	}
	if (pt_proxy_init(&H.px, list, MAXP) != 0)
		return -1;
	H.px.cfg.connect_timeout_ms = 2000;
	H.px.cfg.tls = tls;
	pthread_mutex_init(&H.px.tls_mu, NULL);
	H.px.link.lfd = -1;
	return keylink_start(&H.px);
}

static void down(void)
{
	keylink_stop(&H.px);
	pthread_mutex_destroy(&H.px.tls_mu);
	pt_proxy_free(&H.px);
	for (int i = 0; i < H.nb; i++)
		if (H.blfd[i] >= 0)
			close(H.blfd[i]);
	pt_in_free(&H.in);
	MT_CHECK(pt_count_fds() == H.fds_before, "%d descriptors open, %d before the link",
		pt_count_fds(), H.fds_before);
}

/* Paho's connection to the link's loopback port. */
static int paho_connect(void)
{
	return pt_dial_loopback((int)H.px.link.port);
}

/* The link's connection at broker @p i (within 3 s), or -1. */
static int accept_broker(int i)
{
	struct pollfd pf = { .fd = H.blfd[i], .events = POLLIN };
	int fd;

	if (poll(&pf, 1, 3000) != 1)
		return -1;
	fd = accept4(H.blfd[i], NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		pt_nonblock(fd);
	return fd;
}

/* @p n bytes from @p from arrive unchanged at @p to as one packet. The
 * receiver reads while the sender writes: a packet larger than the
 * sockets' buffers passes only so. */
static int relayed(int from, int to, const uint8_t *p, size_t n)
{
	size_t off = 0, m;

	for (int stuck = 0; off < n && stuck < 3000;) {
		ssize_t w = send(from, p + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w > 0) {
			off += (size_t)w;
			stuck = 0;
		} else {
			stuck++;
			usleep(1000);
		}
		(void)pt_slurp(&H.in, to);
	}
	m = pt_recv_packet(&H.in, to, got, sizeof got);
	return off == n && m == n && memcmp(got, p, n) == 0;
}

/* The peer at @p fd closed (within about 3 s), having sent nothing more. */
static int closed(int fd)
{
	for (int i = 0; i < 600; i++) {
		if (pt_slurp(&H.in, fd) < 0)
			return H.in.len == 0;
		usleep(5000);
	}
	return 0;
}

/* Paho connected through the link to broker @p i: CONNECT, CONNACK. */
static int session(int i, int *paho, int *brk)
{
	struct cspec cs = { .version = MQTT_V311, .keepalive = 30, .clean = 1,
		.client_id = "e2e-keys-test", .username = "svc", .password = "pw",
		.password_len = 2 };
	size_t n;

	*brk = -1;
	*paho = paho_connect();
	if (*paho < 0)
		return -1;
	*brk = accept_broker(i);
	if (*brk < 0)
		return -1;
	n = build_connect(pkt, sizeof pkt, &cs);
	if (!relayed(*paho, *brk, pkt, n))
		return -1;
	return relayed(*brk, *paho, (const uint8_t[]){ 0x20, 2, 0, 0 }, 4) ? 0 : -1;
}

static void link_error(char *out, size_t cap)
{
	keylink_error(&H.px, out, cap);
}

/* ---- Tests --------------------------------------------------------------- */

static void test_session(void)
{
	static uint8_t big[200000];
	struct pb body;
	uint8_t msg[600];
	char err[512];
	int paho, brk;
	size_t n;

	CU_ASSERT_FATAL(up(1, 0) == 0);
	CU_ASSERT_FATAL(session(0, &paho, &brk) == 0);
	/* SUBSCRIBE to the control topic, SUBACK. */
	pb_init(&body);
	pb_u16(&body, 1);
	pb_str(&body, CONTROL "/#");
	pb_u8(&body, 1);
	n = pb_packet(pkt, sizeof pkt, 0x82, &body);
	CU_ASSERT(relayed(paho, brk, pkt, n));
	CU_ASSERT(relayed(brk, paho, (const uint8_t[]){ 0x90, 3, 0, 1, 1 }, 5));
	/* A REQUEST from the broker, one byte per write: whole at the key service. */
	randombytes_buf(msg, sizeof msg);
	n = build_publish(pkt, sizeof pkt, MQTT_V311, 0x02, CONTROL "/req", 5, NULL, msg, 300);
	for (size_t k = 0; k < n; k++) {
		pt_send_all(brk, pkt + k, 1);
		usleep(200);
	}
	MT_CHECK(pt_recv_packet(&H.in, paho, got, sizeof got) == n && !memcmp(got, pkt, n),
		"the request did not reach the key service whole");
	CU_ASSERT(relayed(paho, brk, (const uint8_t[]){ 0x40, 2, 0, 5 }, 4));
	/* The DELIVERY the key service publishes, and its PUBACK. */
	n = build_publish(pkt, sizeof pkt, MQTT_V311, 0x02, CONTROL "/dlv/s1", 1, NULL, msg,
		sizeof msg);
	CU_ASSERT(relayed(paho, brk, pkt, n));
	CU_ASSERT(relayed(brk, paho, (const uint8_t[]){ 0x40, 2, 0, 1 }, 4));
	/* A packet many times the link's buffer, then a PINGRESP after it. */
	randombytes_buf(big, sizeof big);
	{
		uint8_t *p = pkt;
		uint32_t rl = (uint32_t)(2 + sizeof CONTROL - 1 + sizeof big);

		*p++ = 0x30;
		*p++ = (uint8_t)(0x80 | (rl & 0x7F));
		*p++ = (uint8_t)(0x80 | ((rl >> 7) & 0x7F));
		*p++ = (uint8_t)(rl >> 14);
		*p++ = 0;
		*p++ = (uint8_t)(sizeof CONTROL - 1);
		memcpy(p, CONTROL, sizeof CONTROL - 1);
		p += sizeof CONTROL - 1;
		memcpy(p, big, sizeof big);
		n = (size_t)(p + sizeof big - pkt);
	}
	CU_ASSERT(relayed(brk, paho, pkt, n));
	CU_ASSERT(relayed(brk, paho, (const uint8_t[]){ 0xD0, 0 }, 2));
	link_error(err, sizeof err);
	CU_ASSERT_STRING_EQUAL(err, "");
	close(paho);
	CU_ASSERT(closed(brk));   /* Paho's close ends the broker connection */
	close(brk);
	down();
}

/* The broker ends the link: Paho's reconnect is served by it again while
 * it answers, and by the next broker once it does not. */
static void test_reconnect_failover(void)
{
	int paho, brk;

	CU_ASSERT_FATAL(up(2, 0) == 0);
	CU_ASSERT_FATAL(session(0, &paho, &brk) == 0);
	CU_ASSERT(H.px.link_broker == 0);
	close(brk);
	CU_ASSERT(closed(paho));
	close(paho);
	CU_ASSERT_FATAL(session(0, &paho, &brk) == 0);
	CU_ASSERT(H.px.link_broker == 0);
	CU_ASSERT(H.px.ups.failovers == 0);
	/* Broker 0 goes away altogether. */
	close(H.blfd[0]);
	H.blfd[0] = -1;
	close(brk);
	CU_ASSERT(closed(paho));
	close(paho);
	CU_ASSERT_FATAL(session(1, &paho, &brk) == 0);
	CU_ASSERT(H.px.link_broker == 1);
	CU_ASSERT(H.px.ups.failovers == 1);
	CU_ASSERT(H.px.ups.b[0].down_until_ms > 0);   /* in back-off */
	CU_ASSERT(relayed(paho, brk, (const uint8_t[]){ 0xC0, 0 }, 2));
	close(paho);
	close(brk);
	down();
}

/* No broker answers: Paho's connection is closed and the reason kept for
 * the startup error (setup.c prints it). */
static void test_no_broker(void)
{
	char err[512];
	int paho;

	CU_ASSERT_FATAL(up(1, 0) == 0);
	close(H.blfd[0]);
	H.blfd[0] = -1;
	paho = paho_connect();
	CU_ASSERT_FATAL(paho >= 0);
	CU_ASSERT(closed(paho));
	link_error(err, sizeof err);
	MT_CHECK(strstr(err, "cannot reach broker 127.0.0.1:") != NULL, "error: '%s'", err);
	close(paho);
	down();
}

/* tls = yes and the context makes no connection (the stand-in tls_new
 * fails as a missing client certificate would): the link closes, the
 * reason is kept, nothing leaks. */
static void test_tls_refused(void)
{
	char err[512];
	int paho, brk;

	CU_ASSERT_FATAL(up(1, 1) == 0);
	paho = paho_connect();
	CU_ASSERT_FATAL(paho >= 0);
	brk = accept_broker(0);
	CU_ASSERT(brk >= 0);
	CU_ASSERT(closed(paho));
	CU_ASSERT(brk >= 0 && closed(brk));
	link_error(err, sizeof err);
	MT_CHECK(strstr(err, "TLS to broker 127.0.0.1:") && strstr(err, "no TLS in this test"),
		"error: '%s'", err);
	close(paho);
	if (brk >= 0)
		close(brk);
	down();
}

struct bad {
	const char *what;
	uint8_t b[32];
	size_t n;
};

/* After a CONNACK, bytes no broker may send: Paho gets none of them, the
 * link closes and says why, and serves the next connection. */
static void test_malformed(void)
{
	static const struct bad bad[] = {
		{ "type 0", { 0x00, 0x00 }, 2 },
		{ "overlong Remaining Length", { 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 }, 6 },
		{ "PUBREL with flags 0", { 0x60, 0x02, 0x00, 0x01 }, 4 },
		{ "PUBLISH with QoS 3", { 0x36, 0x05, 0x00, 0x01, 'a', 0x00, 0x01 }, 7 },
		{ "CONNECT from the broker", { 0x10, 0x00 }, 2 },
		{ "SUBSCRIBE from the broker", { 0x82, 0x00 }, 2 },
		{ "PINGREQ from the broker", { 0xC0, 0x00 }, 2 },
		{ "an HTTP answer", "HTTP/1.1 400 Bad Request\r\n\r\n", 28 },
	};
	char err[512];
	int paho, brk;

	CU_ASSERT_FATAL(up(1, 0) == 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CU_ASSERT_FATAL(session(0, &paho, &brk) == 0);
		pt_send_all(brk, bad[i].b, bad[i].n);
		MT_CHECK(closed(paho), "%s: reached Paho, or the link stayed open", bad[i].what);
		link_error(err, sizeof err);
		MT_CHECK(strstr(err, "not MQTT from a server") != NULL, "%s: error '%s'",
			bad[i].what, err);
		close(paho);
		close(brk);
		H.in.len = 0;
	}
	/* Still serving. */
	CU_ASSERT_FATAL(session(0, &paho, &brk) == 0);
	link_error(err, sizeof err);
	CU_ASSERT_STRING_EQUAL(err, "");
	close(paho);
	close(brk);
	down();
}

int main(void)
{
	static const struct mt_test tests[] = {
		{ "Key link: CONNECT, SUBSCRIBE, request in, delivery out", test_session },
		{ "Key link: a broken link reconnects, then fails over", test_reconnect_failover },
		{ "Key link: no broker reachable: the reason is kept", test_no_broker },
		{ "Key link: TLS that cannot start: the reason is kept", test_tls_refused },
		{ "Key link: malformed packets from the broker refused", test_malformed },
		{ NULL, NULL },
	};

	return pt_run("proxy key link", tests);
}
