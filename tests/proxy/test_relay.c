/*
 * The proxy's connection, relay and event handling (conn.c, relay.c) driven
 * directly: a fake publisher on one end of a socketpair, a fake broker on a
 * loopback listener, and the test dispatching epoll events the way loop.c
 * does. The sealing call is replaced by one that seals with libe2e and the
 * test's key, so every PUBLISH the broker gets is opened and compared.
 *
 * What it checks: a PUBLISH split at every byte is sealed once and arrives
 * intact; a broker transport that takes one byte per write; back-pressure
 * (the broker does not read: the publisher is no longer read, nothing is
 * lost); QoS 1 and 2 flows in 3.1.1 and 5.0 with the in-flight count; v5
 * topic aliases bound to the real topic; a packet near max-packet; a
 * publisher or broker closing mid-packet. The stand-ins and the fake peers'
 * I/O are proxytest.c's, shared with test_loop and test_keylink.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "e2e/envelope.h"
#include "log.h"
#include "mqtt_test.h"
#include "proxy.h"
#include "proxytest.h"

/* ---- Harness ---------------------------------------------------------------- */

#define MAXP (1024U * 1024U)

struct h {
	struct proxy px;
	int lfd;          /* the fake broker's listener */
	int pub;          /* the fake publisher's end */
	int brk;          /* the fake broker's accepted connection */
	struct conn *c;
	uint8_t version;
	struct pt_in in;  /* what the broker (or publisher) read and did not consume */
};

static struct h H;
static SSL_CTX *g_listen_tls;   /* set: the next connection uses listen-tls */

/* Handle every ready event, as proxy_loop_run_once does; 1 if there were any.
 * (test_loop drives the loop itself.) */
int pt_pump_once(int timeout_ms)
{
	struct epoll_event evs[16];
	int n = epoll_wait(H.px.epfd, evs, 16, timeout_ms);

	for (int i = 0; i < n; i++) {
		struct conn *c = (struct conn *)((uintptr_t)evs[i].data.ptr & ~(uintptr_t)1);

		if (c->dead)
			continue;
		if ((uintptr_t)evs[i].data.ptr & 1)
			conn_on_up(c, evs[i].events);
		else
			conn_on_down(c, evs[i].events);
	}
	conn_reap(&H.px);
	return n > 0;
}

/* Until quiet. A connection that keeps one side always ready (EPOLLOUT
 * with a byte-per-write transport) stops after @p max rounds. */
static void pump_n(int max)
{
	for (int i = 0, idle = 0; i < max && idle < 2; i++)
		idle = pt_pump_once(5) ? 0 : idle + 1;
}

static void pump(void)
{
	pump_n(100000);
}

/* The fake peers' reads share H.in (only one side is read at a time). */
static ssize_t slurp(int fd)
{
	return pt_slurp(&H.in, fd);
}

static size_t recv_packet(int fd, uint8_t *out, size_t cap)
{
	return pt_recv_packet(&H.in, fd, out, cap);
}

static int up(void)
{
	char list[40];
	int port = 0, sp[2];

	memset(&H, 0, sizeof H);
	H.px.epfd = epoll_create1(EPOLL_CLOEXEC);
	H.px.tls_down.ctx = g_listen_tls;
	H.lfd = pt_listen_loopback(&port);
	snprintf(list, sizeof list, "127.0.0.1:%d", port);
	if (H.px.epfd < 0 || H.lfd < 0 || pt_proxy_init(&H.px, list, MAXP) != 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
		return -1;
	H.pub = sp[0];
	pt_nonblock(H.pub);
	H.c = conn_new(&H.px, sp[1], "test-peer");
	H.brk = -1;
	return H.c ? 0 : -1;
}

static void down(void)
{
	while (H.px.conns)
		conn_close(H.px.conns, NULL);
	conn_reap(&H.px);
	if (H.pub >= 0)
		close(H.pub);
	if (H.brk >= 0)
		close(H.brk);
	close(H.lfd);
	close(H.px.epfd);
	pt_proxy_free(&H.px);
	pt_in_free(&H.in);
	memset(&H, 0, sizeof H);
}

/* A relaying connection: CONNECT from the publisher, CONNACK from the broker. */
static int connected(uint8_t version)
{
	struct cspec cs = { .version = version, .keepalive = 60, .clean = 1, .client_id = "pub-1" };
	uint8_t pkt[512];
	size_t n;

	if (up() != 0)
		return -1;
	H.version = version;
	n = build_connect(pkt, sizeof pkt, &cs);
	pt_send_all(H.pub, pkt, n);
	pump();
	H.brk = accept(H.lfd, NULL, NULL);
	if (H.brk < 0)
		return -1;
	pt_nonblock(H.brk);
	pump();
	if (H.c->st != ST_RELAY)
		return -1;
	n = recv_packet(H.brk, pkt, sizeof pkt);
	if (!n || pkt[0] != 0x10)
		return -1;
	if (version == MQTT_V5)
		pt_send_all(H.brk, (const uint8_t[]){ 0x20, 3, 0, 0, 0 }, 5);
	else
		pt_send_all(H.brk, (const uint8_t[]){ 0x20, 2, 0, 0 }, 4);
	n = recv_packet(H.pub, pkt, sizeof pkt);
	return n && pkt[0] == 0x20 && H.c->connack_seen ? 0 : -1;
}

/* Open a PUBLISH the broker got: topic and payload as the publisher sent them. */
static int check_sealed(const uint8_t *pkt, size_t len, const char *topic, const void *pt,
	size_t pt_len)
{
	return pt_check_sealed(pkt, len, H.version, topic, pt, pt_len);
}

static uint8_t pkt_a[MAXP + 64], pkt_b[MAXP + 256];

/* ---- Tests --------------------------------------------------------------- */

/* Split a QoS 1 PUBLISH at every byte: nothing is sealed until it is whole,
 * then once, and the broker gets it intact. */
static void split_at(uint8_t version)
{
	static const char msg[] = "split me at every byte";
	size_t n = build_publish(pkt_a, sizeof pkt_a, version, 0x02, "a/b", 1, NULL, msg,
		sizeof msg - 1);

	CU_ASSERT_FATAL(connected(version) == 0);
	for (size_t k = 1; k < n; k++) {
		unsigned before = pt_seals;
		size_t got;

		pt_send_all(H.pub, pkt_a, k);
		pump();
		MT_CHECK(pt_seals == before, "split %zu: sealed before the packet was whole", k);
		MT_CHECK(slurp(H.brk) == 0, "split %zu: broker got bytes early", k);
		pt_send_all(H.pub, pkt_a + k, n - k);
		got = recv_packet(H.brk, pkt_b, sizeof pkt_b);
		MT_CHECK(pt_seals == before + 1, "split %zu: sealed %u times", k, pt_seals - before);
		MT_CHECK(got && check_sealed(pkt_b, got, "a/b", msg, sizeof msg - 1),
			"split %zu: envelope does not open to the message", k);
		MT_CHECK(H.c->inflight == k, "split %zu: inflight %u", k, H.c->inflight);
	}
	down();
}

static void test_split_v311(void)
{
	split_at(MQTT_V311);
}

static void test_split_v5(void)
{
	split_at(MQTT_V5);
}

/* A broker transport that takes one byte per call. */
static ssize_t one_byte_send(struct px_transport *t, const uint8_t *buf, size_t len)
{
	return px_tcp_ops.send(t, buf, len ? 1 : 0);
}

static void test_partial_writes(void)
{
	static struct px_transport_ops slow;
	static uint8_t msg[3000];
	size_t n, got;

	randombytes_buf(msg, sizeof msg);
	CU_ASSERT_FATAL(connected(MQTT_V311) == 0);
	slow = px_tcp_ops;
	slow.send = one_byte_send;
	H.c->up.ops = &slow;
	n = build_publish(pkt_a, sizeof pkt_a, MQTT_V311, 0x00, "p/w", 0, NULL, msg, sizeof msg);
	pt_send_all(H.pub, pkt_a, n);
	got = recv_packet(H.brk, pkt_b, sizeof pkt_b);
	CU_ASSERT(got == n + E2E_ENVELOPE_OVERHEAD);
	CU_ASSERT(got && check_sealed(pkt_b, got, "p/w", msg, sizeof msg));
	CU_ASSERT(H.c->uout.len == 0);
	H.c->up.ops = &px_tcp_ops;
	down();
}

/* The broker does not read: the proxy stops reading the publisher; once
 * the broker reads again, every message arrives, in order. */
static void test_backpressure(void)
{
	static uint8_t msg[8192];
	uint32_t sent = 0, got = 0, stopped = 0;

	CU_ASSERT_FATAL(connected(MQTT_V311) == 0);
	for (int i = 0; i < 4000 && !stopped; i++) {
		size_t n;
		ssize_t w;

		memcpy(msg, &sent, sizeof sent);
		n = build_publish(pkt_a, sizeof pkt_a, MQTT_V311, 0x00, "bp/t", 0, NULL, msg,
			sizeof msg);
		/* Whole packets only, or wait: the publisher's socket fills up. */
		w = send(H.pub, pkt_a, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0 && (size_t)w < n) {
			pt_send_all(H.pub, pkt_a + w, n - (size_t)w);
			w = (ssize_t)n;
		}
		if (w == (ssize_t)n)
			sent++;
		pump_n(4);
		if (!(H.c->ev_down & EPOLLIN) && w < 0)
			stopped = 1;
	}
	CU_ASSERT_FATAL(stopped);
	CU_ASSERT(H.px.nconns == 1);
	CU_ASSERT(H.c->uout.len < 2U * MAXP);
	while (got < sent) {
		size_t n = recv_packet(H.brk, pkt_b, sizeof pkt_b);
		uint32_t id;
		struct mqtt_publish p;

		if (!n)
			break;
		if (mqtt_parse_publish(pkt_b, n, MQTT_V311, &p) != MQTT_OK ||
		    e2e_envelope_open(msg, sizeof msg, &n, pt_key, (const uint8_t *)"bp/t", 4,
			    p.payload.p, p.payload.len) != E2E_OK)
			break;
		memcpy(&id, msg, sizeof id);
		MT_CHECK(id == got, "message %u arrived as %u", got, id);
		got++;
	}
	CU_ASSERT(got == sent);
	CU_ASSERT(H.px.nconns == 1);
	down();
}

/* Read one packet at @p fd and check its first byte. */
static size_t expect(int fd, uint8_t b0)
{
	size_t n = recv_packet(fd, pkt_b, sizeof pkt_b);

	MT_CHECK(n && pkt_b[0] == b0, "expected packet 0x%02x, got 0x%02x (%zu bytes)", b0,
		n ? pkt_b[0] : 0, n);
	return n;
}

static void qos_flows(uint8_t v)
{
	size_t n;

	CU_ASSERT_FATAL(connected(v) == 0);
	/* QoS 1: PUBLISH, the broker's PUBACK reaches the publisher. */
	n = build_publish(pkt_a, sizeof pkt_a, v, 0x02, "q/1", 10, NULL, "one", 3);
	pt_send_all(H.pub, pkt_a, n);
	n = expect(H.brk, 0x32);
	CU_ASSERT(n && check_sealed(pkt_b, n, "q/1", "one", 3));
	CU_ASSERT(H.c->inflight == 1);
	pt_send_all(H.brk, (const uint8_t[]){ 0x40, 2, 0, 10 }, 4);
	expect(H.pub, 0x40);
	CU_ASSERT(H.c->inflight == 0);

	/* QoS 2 through a broker that speaks it: PUBREC, PUBREL, PUBCOMP. */
	n = build_publish(pkt_a, sizeof pkt_a, v, 0x04, "q/2", 11, NULL, "two", 3);
	pt_send_all(H.pub, pkt_a, n);
	n = expect(H.brk, 0x34);
	CU_ASSERT(n && check_sealed(pkt_b, n, "q/2", "two", 3));
	CU_ASSERT(H.c->inflight == 1);
	pt_send_all(H.brk, (const uint8_t[]){ 0x50, 2, 0, 11 }, 4);
	expect(H.pub, 0x50);
	CU_ASSERT(H.c->inflight == 1);
	pt_send_all(H.pub, (const uint8_t[]){ 0x62, 2, 0, 11 }, 4);
	expect(H.brk, 0x62);
	pt_send_all(H.brk, (const uint8_t[]){ 0x70, 2, 0, 11 }, 4);
	expect(H.pub, 0x70);
	CU_ASSERT(H.c->inflight == 0);

	/* QoS 2 through a broker that downgrades it: its PUBACK becomes PUBREC,
	 * the publisher's PUBREL is answered by the proxy and never relayed. */
	n = build_publish(pkt_a, sizeof pkt_a, v, 0x04, "q/2", 12, NULL, "three", 5);
	pt_send_all(H.pub, pkt_a, n);
	expect(H.brk, 0x34);
	pt_send_all(H.brk, (const uint8_t[]){ 0x40, 2, 0, 12 }, 4);
	n = expect(H.pub, 0x50);
	CU_ASSERT(n == 4 && pkt_b[3] == 12);
	CU_ASSERT(H.c->inflight == 0);
	pt_send_all(H.pub, (const uint8_t[]){ 0x62, 2, 0, 12 }, 4);
	n = expect(H.pub, 0x70);
	CU_ASSERT(n == 4 && pkt_b[3] == 12);
	pump();
	CU_ASSERT(slurp(H.brk) == 0);

	if (v == MQTT_V5) {
		/* A v5 PUBREC with a failure reason ends the flow, even when its
		 * Remaining Length takes two bytes (a long reason string). */
		struct pb body;

		n = build_publish(pkt_a, sizeof pkt_a, v, 0x04, "q/2", 13, NULL, "four", 4);
		pt_send_all(H.pub, pkt_a, n);
		expect(H.brk, 0x34);
		CU_ASSERT(H.c->inflight == 1);
		pb_init(&body);
		pb_u16(&body, 13);
		pb_u8(&body, 0x87);
		pb_varint(&body, 3 + 200);
		pb_u8(&body, 0x1F);
		{
			char why[201];

			memset(why, 'x', 200);
			why[200] = 0;
			pb_str(&body, why);
		}
		n = pb_packet(pkt_a, sizeof pkt_a, 0x50, &body);
		pt_send_all(H.brk, pkt_a, n);
		expect(H.pub, 0x50);
		CU_ASSERT(H.c->inflight == 0);
	}
	down();
}

static void test_qos_v311(void)
{
	qos_flows(MQTT_V311);
}

static void test_qos_v5(void)
{
	qos_flows(MQTT_V5);
}

/* v5 topic aliases: the envelope is bound to the real topic, the broker
 * gets the real topic and no alias. */
static void test_topic_alias(void)
{
	struct pb props;
	struct mqtt_publish p;
	size_t n;

	CU_ASSERT_FATAL(connected(MQTT_V5) == 0);
	pb_init(&props);
	pb_u8(&props, 0x23);
	pb_u16(&props, 3);
	n = build_publish(pkt_a, sizeof pkt_a, MQTT_V5, 0x00, "al/real", 0, &props, "x", 1);
	pt_send_all(H.pub, pkt_a, n);
	n = expect(H.brk, 0x30);
	CU_ASSERT(n && check_sealed(pkt_b, n, "al/real", "x", 1));
	n = build_publish(pkt_a, sizeof pkt_a, MQTT_V5, 0x00, "", 0, &props, "y", 1);
	pt_send_all(H.pub, pkt_a, n);
	n = expect(H.brk, 0x30);
	CU_ASSERT(n && check_sealed(pkt_b, n, "al/real", "y", 1));
	CU_ASSERT(n && mqtt_parse_publish(pkt_b, n, MQTT_V5, &p) == MQTT_OK && !p.has_alias);
	/* An alias never set: the connection is closed. */
	pb_init(&props);
	pb_u8(&props, 0x23);
	pb_u16(&props, 4);
	n = build_publish(pkt_a, sizeof pkt_a, MQTT_V5, 0x00, "", 0, &props, "z", 1);
	pt_send_all(H.pub, pkt_a, n);
	pump();
	CU_ASSERT(H.px.nconns == 0);
	down();
}

/* A PUBLISH near max-packet, far larger than one read: arrives whole. */
static void test_large_packet(void)
{
	size_t plen = MAXP - 64, n, got;
	uint8_t *msg = malloc(plen);
	uint8_t *p = pkt_a;

	CU_ASSERT_FATAL(msg != NULL);
	randombytes_buf(msg, plen);
	CU_ASSERT_FATAL(connected(MQTT_V311) == 0);
	/* Hand-built: the shared builder's body is 32 KiB at most. Remaining
	 * Length: topic (2 + 3), packet id (2), payload; three varint bytes. */
	{
		uint32_t rl = (uint32_t)(2 + 3 + 2 + plen);

		*p++ = 0x32;
		*p++ = (uint8_t)(0x80 | (rl & 0x7F));
		*p++ = (uint8_t)(0x80 | ((rl >> 7) & 0x7F));
		*p++ = (uint8_t)(rl >> 14);
	}
	*p++ = 0;
	*p++ = 3;
	memcpy(p, "b/i", 3);
	p += 3;
	*p++ = 0;
	*p++ = 5;
	memcpy(p, msg, plen);
	p += plen;
	n = (size_t)(p - pkt_a);
	CU_ASSERT_FATAL(n <= MAXP);
	pt_send_all(H.pub, pkt_a, n);
	got = recv_packet(H.brk, pkt_b, sizeof pkt_b);
	CU_ASSERT(got > plen);
	CU_ASSERT(got && check_sealed(pkt_b, got, "b/i", msg, plen));
	CU_ASSERT(H.px.nconns == 1);
	free(msg);
	down();
}

/* The publisher goes away half-way through a PUBLISH: closed, nothing sent. */
static void test_publisher_closes_mid_packet(void)
{
	size_t n;
	unsigned before;

	CU_ASSERT_FATAL(connected(MQTT_V311) == 0);
	before = pt_seals;
	n = build_publish(pkt_a, sizeof pkt_a, MQTT_V311, 0x02, "m/p", 5, NULL, "halfway", 7);
	pt_send_all(H.pub, pkt_a, n / 2);
	pump();
	close(H.pub);
	H.pub = -1;
	pump();
	CU_ASSERT(H.px.nconns == 0);
	CU_ASSERT(pt_seals == before);
	/* The broker sees the close and no bytes. */
	CU_ASSERT(slurp(H.brk) < 0);
	CU_ASSERT(H.in.len == 0);
	down();
}

/* The broker goes away half-way through a PUBACK: closed, the publisher
 * gets no fragment of it. */
static void test_broker_closes_mid_packet(void)
{
	size_t n;

	CU_ASSERT_FATAL(connected(MQTT_V311) == 0);
	n = build_publish(pkt_a, sizeof pkt_a, MQTT_V311, 0x02, "m/b", 6, NULL, "q", 1);
	pt_send_all(H.pub, pkt_a, n);
	expect(H.brk, 0x32);
	pt_send_all(H.brk, (const uint8_t[]){ 0x40, 2 }, 2);
	pump();
	close(H.brk);
	H.brk = -1;
	pump();
	CU_ASSERT(H.px.nconns == 0);
	CU_ASSERT(slurp(H.pub) < 0);
	CU_ASSERT(H.in.len == 0);
	down();
}

/* A server context with a fresh self-signed P-256 certificate, with the
 * modes tls.c gives the proxy's (read-ahead: OpenSSL takes many records off
 * the socket at once, which is what leaves bytes no epoll event announces). */
static SSL_CTX *server_ctx(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *nm;
	SSL_CTX *s = SSL_CTX_new(TLS_server_method());
	int ok;

	ok = k && x && s && X509_set_version(x, 2) &&
		ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
		X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
		X509_gmtime_adj(X509_getm_notAfter(x), 3600) && X509_set_pubkey(x, k) &&
		(nm = X509_get_subject_name(x)) != NULL &&
		X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"t", -1,
			-1, 0) && X509_set_issuer_name(x, nm) && X509_sign(x, k, EVP_sha256()) &&
		SSL_CTX_use_certificate(s, x) == 1 && SSL_CTX_use_PrivateKey(s, k) == 1;
	X509_free(x);
	EVP_PKEY_free(k);
	if (ok) {
		SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE |
			SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		SSL_CTX_set_read_ahead(s, 1);
	}
	if (!ok) {
		SSL_CTX_free(s);
		return NULL;
	}
	return s;
}

/* Drive a non-blocking SSL call to completion, pumping the proxy between. */
static int ssl_io(SSL *ssl, int r)
{
	int e = SSL_get_error(ssl, r);

	if (r > 0)
		return 1;
	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
		return -1;
	pt_pump_once(1);
	return 0;
}

/*
 * listen-tls: the publisher's CONNECT and many PUBLISHes arrive in one TLS
 * write while the broker is not even connected. OpenSSL takes them off the
 * socket in a few reads and holds the rest, which no epoll event announces:
 * the transport's pending() must bring every one out once the broker side
 * has room.
 */
static void test_listen_tls(void)
{
	struct cspec cs = { .version = MQTT_V311, .keepalive = 60, .clean = 1, .client_id = "tls-1" };
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	static uint8_t msg[1000], all[200000];
	size_t n = 0, off = 0, got;
	SSL *cli;
	int r = 0, i;

	g_listen_tls = server_ctx();
	CU_ASSERT_FATAL(g_listen_tls && cctx);
	CU_ASSERT_FATAL(up() == 0);
	H.version = MQTT_V311;
	CU_ASSERT(H.c->down.buffered && !H.c->down.ready);
	cli = SSL_new(cctx);
	CU_ASSERT_FATAL(cli && SSL_set_fd(cli, H.pub));
	SSL_set_connect_state(cli);
	for (i = 0; i < 3000 && (r = ssl_io(cli, SSL_do_handshake(cli))) == 0; i++)
		;
	CU_ASSERT_FATAL(r == 1);
	pump();
	CU_ASSERT(H.c->down.ready);
	n = build_connect(all, sizeof all, &cs);
	for (uint32_t k = 0; k < 150; k++) {
		memcpy(msg, &k, sizeof k);
		n += build_publish(all + n, sizeof all - n, MQTT_V311, 0x00, "tls/t", 0, NULL, msg,
			sizeof msg);
	}
	while (off < n) {
		size_t w = 0;

		r = ssl_io(cli, SSL_write_ex(cli, all + off, n - off, &w));
		CU_ASSERT_FATAL(r >= 0);
		off += w;
	}
	pump();
	H.brk = accept(H.lfd, NULL, NULL);
	CU_ASSERT_FATAL(H.brk >= 0);
	pt_nonblock(H.brk);
	pump();
	CU_ASSERT(H.c->st == ST_RELAY);
	expect(H.brk, 0x10);
	for (uint32_t k = 0; k < 150; k++) {
		got = recv_packet(H.brk, pkt_b, sizeof pkt_b);
		memcpy(msg, &k, sizeof k);
		MT_CHECK(got && check_sealed(pkt_b, got, "tls/t", msg, sizeof msg),
			"publish %u did not arrive intact", k);
		if (!got)
			break;
	}
	/* The broker's CONNACK reaches the publisher through TLS. */
	pt_send_all(H.brk, (const uint8_t[]){ 0x20, 2, 0, 0 }, 4);
	off = 0;
	for (i = 0; i < 3000 && off < 4; i++) {
		size_t rd = 0;

		r = ssl_io(cli, SSL_read_ex(cli, all + off, 4 - off, &rd));
		CU_ASSERT_FATAL(r >= 0);
		off += rd;
	}
	CU_ASSERT(off == 4 && all[0] == 0x20);
	SSL_free(cli);
	SSL_CTX_free(cctx);
	down();
	SSL_CTX_free(g_listen_tls);
	g_listen_tls = NULL;
}

/*
 * A transport that holds bytes no epoll event announces (what OpenSSL's
 * read-ahead does): recv serves them in small pieces, pending() says they
 * are there, the socket itself never becomes readable.
 */
struct held {
	uint8_t *p;
	size_t len, off;
};

static ssize_t held_recv(struct px_transport *t, uint8_t *buf, size_t len)
{
	struct held *h = t->ctx;
	size_t n = h->len - h->off;

	if (!n)
		return 0;
	n = n < len ? n : len;
	n = n < 1500 ? n : 1500;
	memcpy(buf, h->p + h->off, n);
	h->off += n;
	return (ssize_t)n;
}

static int held_pending(const struct px_transport *t)
{
	const struct held *h = t->ctx;

	return h->off < h->len;
}

static void test_held_bytes(void)
{
	static struct px_transport_ops ops;
	static uint8_t msg[1000];
	struct held h = { 0 };
	uint32_t count = 1000, got = 0;
	int small = 8192;

	CU_ASSERT_FATAL(connected(MQTT_V311) == 0);
	/* Small kernel buffers towards the broker: its back-pressure comes soon. */
	setsockopt(H.c->up.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	setsockopt(H.brk, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	h.p = malloc(count * 1100U);
	CU_ASSERT_FATAL(h.p != NULL);
	for (uint32_t k = 0; k < count; k++) {
		memcpy(msg, &k, sizeof k);
		h.len += build_publish(h.p + h.len, count * 1100U - h.len, MQTT_V311, 0x00, "held/t",
			0, NULL, msg, sizeof msg);
	}
	ops = px_tcp_ops;
	ops.recv = held_recv;
	ops.pending = held_pending;
	H.c->down.ops = &ops;
	H.c->down.ctx = &h;
	H.c->down.buffered = 1;
	/* One readable event, as the socket would give once: the broker does
	 * not read yet, so the proxy stops at its high-water mark. */
	conn_on_down(H.c, EPOLLIN);
	pump();
	CU_ASSERT(held_pending(&H.c->down));
	for (; got < count; got++) {
		size_t n = recv_packet(H.brk, pkt_b, sizeof pkt_b);

		memcpy(msg, &got, sizeof got);
		if (!n || !check_sealed(pkt_b, n, "held/t", msg, sizeof msg))
			break;
	}
	MT_CHECK(got == count, "%u of %u publishes held inside the transport arrived", got,
		count);
	H.c->down.ops = &px_tcp_ops;
	H.c->down.ctx = NULL;
	free(h.p);
	down();
}

/* The transports themselves: a closed one fails everything. */
static void test_transport_none(void)
{
	struct px_transport t;
	uint8_t b[4] = { 0 };
	char why[32];

	px_transport_none(&t);
	CU_ASSERT(t.fd == -1);
	CU_ASSERT(t.ops->recv(&t, b, sizeof b) == -1);
	CU_ASSERT(t.ops->send(&t, b, sizeof b) == -1);
	CU_ASSERT(t.ops->handshake(&t, why, sizeof why) == -1);
	CU_ASSERT(t.ops->pending(&t) == 0);
	t.ops->close(&t);
}

/* Plain TCP: would-block is 0, the peer's close is -1. */
static void test_transport_tcp(void)
{
	struct px_transport t;
	uint8_t b[4] = { 1, 2, 3, 4 };
	int sp[2];

	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
	pt_nonblock(sp[0]);
	px_transport_tcp(&t, sp[0]);
	CU_ASSERT(t.ready && !t.buffered);
	CU_ASSERT(t.ops->recv(&t, b, sizeof b) == 0);
	CU_ASSERT(t.ops->send(&t, b, sizeof b) == 4);
	CU_ASSERT(write(sp[1], b, 2) == 2);
	CU_ASSERT(t.ops->recv(&t, b, sizeof b) == 2);
	close(sp[1]);
	CU_ASSERT(t.ops->recv(&t, b, sizeof b) == -1);
	t.ops->close(&t);
	CU_ASSERT(t.fd == -1);
}

int main(void)
{
	static const struct mt_test tests[] = {
		{ "Transport: closed", test_transport_none },
		{ "Transport: plain TCP", test_transport_tcp },
		{ "Relay: PUBLISH split at every byte (3.1.1)", test_split_v311 },
		{ "Relay: PUBLISH split at every byte (5.0)", test_split_v5 },
		{ "Relay: broker takes one byte per write", test_partial_writes },
		{ "Relay: back-pressure, nothing lost", test_backpressure },
		{ "Relay: QoS 1 and 2 flows (3.1.1)", test_qos_v311 },
		{ "Relay: QoS 1 and 2 flows (5.0)", test_qos_v5 },
		{ "Relay: topic aliases (5.0)", test_topic_alias },
		{ "Relay: packet near max-packet", test_large_packet },
		{ "Relay: publisher closes mid-packet", test_publisher_closes_mid_packet },
		{ "Relay: broker closes mid-packet", test_broker_closes_mid_packet },
		{ "Relay: listen-tls handshake and relay", test_listen_tls },
		{ "Relay: bytes held inside the transport (no epoll event)", test_held_bytes },
		{ NULL, NULL },
	};

	return pt_run("proxy relay", tests);
}
