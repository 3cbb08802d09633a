/*
 * The key service's way to the broker. Paho cannot express every upstream
 * setting (it sends and checks the URI's host as SNI, ignores the minimum
 * TLS version on OpenSSL 1.1+, reports a failed handshake as "Failure"), so
 * the key service does not speak TLS itself: Paho connects in plain MQTT to
 * a loopback port of this process, and this thread carries each such
 * connection to the broker with the SAME recipe as a publisher's relay
 * (broker address, tls_new(): CA, sni, tls-min, ciphers, ALPN, PSK, the
 * certificate template for the service's client id). One recipe, two users:
 * they cannot drift. Failures are logged with their real cause. Both
 * sides are dialled, read and written through the proxy's transport
 * interface (transport.h), as conn.c does: no recv/send or SSL_* I/O here.
 *
 * The loopback port would hand any local process an authenticated broker
 * connection, so a connection is served only if its peer address is a
 * socket of this very process (Paho's).
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "log.h"
#include "mqtt_codec.h"
#include "proxy.h"

#define LINK_POLL_MS 250

static void set_err(struct proxy *px, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(struct proxy *px, const char *fmt, ...)
{
	va_list ap;
	char buf[sizeof px->link.err];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&px->link.mu);
	memcpy(px->link.err, buf, sizeof buf);
	pthread_mutex_unlock(&px->link.mu);
	plog(LOG_WARNING, "key service: %s", buf);
}

void keylink_error(struct proxy *px, char *out, size_t cap)
{
	pthread_mutex_lock(&px->link.mu);
	snprintf(out, cap, "%s", px->link.err);
	pthread_mutex_unlock(&px->link.mu);
}

/* Is @p peer the local address of one of our own sockets (Paho's)? */
static int own_peer(const struct sockaddr_in *peer, int skip1, int skip2)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d)) != NULL) {
		struct sockaddr_in a;
		socklen_t al = sizeof a;
		char *end;
		long fd = strtol(e->d_name, &end, 10);

		if (*end || end == e->d_name || fd == skip1 || fd == skip2 || fd == dirfd(d))
			continue;
		if (getsockname((int)fd, (struct sockaddr *)&a, &al) == 0 && al == sizeof a &&
		    a.sin_family == AF_INET && a.sin_port == peer->sin_port &&
		    a.sin_addr.s_addr == peer->sin_addr.s_addr)
			found = 1;
	}
	closedir(d);
	return found;
}

/*
 * Wait until @p t can go on with what its last call asked: writable when
 * TLS wants to write (or @p writing on plain TCP), else readable. 0, or -1
 * after @p ms without it.
 */
static int wait_io(const struct px_transport *t, int writing, int ms)
{
	struct pollfd pf = { .fd = t->fd };

	pf.events = t->want_write || (writing && !t->buffered) ? POLLOUT : POLLIN;
	return poll(&pf, 1, ms) == 1 ? 0 : -1;
}

/* TCP to broker @p b, each of its addresses in turn within the connect
 * timeout. 0 with @p t connected, or -1 with the errno in *errp. */
static int dial_one(struct proxy *px, const struct px_broker *b, struct px_transport *t,
	int *errp)
{
	int err = ETIMEDOUT;

	for (const struct addrinfo *ai = b->ai; ai; ai = ai->ai_next) {
		struct addrinfo one = *ai;

		one.ai_next = NULL;   /* this address only: the next gets its own timeout */
		errno = 0;
		if (px_transport_tcp_dial(t, &one) != 0) {
			err = errno ? errno : EHOSTUNREACH;
			continue;
		}
		err = ETIMEDOUT;
		if (wait_io(t, 1, (int)px->cfg.connect_timeout_ms) == 0)
			err = px_transport_tcp_connected(t);
		if (err == 0)
			return 0;
		t->ops->close(t);
	}
	*errp = err;
	return -1;
}

/*
 * TCP to the broker px->ups picks (failover: the same order and back-off
 * as the publishers' relays): 0 with @p t connected (non-blocking), or -1
 * with the reason in @p why.
 */
static int dial(struct proxy *px, struct px_transport *t, char *why, size_t cap)
{
	int err = ETIMEDOUT, i = 0;

	for (int tries = 0; tries < px->ups.n; tries++) {
		i = px_upstream_pick(&px->ups, e2e_mono_ms());
		if (dial_one(px, &px->ups.b[i], t, &err) == 0) {
			px_upstream_ok(&px->ups, i);
			px->link_broker = i;
			return 0;
		}
		px_upstream_failed(&px->ups, i, e2e_mono_ms(), strerror(err));
	}
	snprintf(why, cap, "cannot reach broker %s: %s", px->ups.b[i].name, strerror(err));
	return -1;
}

/* The TLS handshake with the broker within the connect timeout. 0, or -1
 * with the reason in @p why. */
static int handshake(struct proxy *px, struct px_transport *t, char *why, size_t cap)
{
	uint64_t end = e2e_mono_ms() + px->cfg.connect_timeout_ms;
	int r = -1;

	/* Held across the handshake: SIGHUP must not swap the context (and
	 * the PSK the callback reads) under it. */
	pthread_mutex_lock(&px->tls_mu);
	if (px_transport_tls_client(t, &px->tls, px->service_id) != 0) {
		if (px->tls.per_client_cert)
			snprintf(why, cap, "no usable client certificate for client id '%s' from "
				"the cert/key template (see above)", px->service_id);
		else
			snprintf(why, cap, "%s", tls_error());
	} else {
		while ((r = t->ops->handshake(t, why, cap)) == 0) {
			uint64_t now = e2e_mono_ms();

			if (now >= end || wait_io(t, 0, (int)(end - now)) != 0) {
				snprintf(why, cap, "handshake timed out");
				r = -1;
				break;
			}
		}
	}
	pthread_mutex_unlock(&px->tls_mu);
	return r > 0 ? 0 : -1;
}

/* Write all of @p p through @p t (the broker's or Paho's). */
static int send_all(struct px_transport *t, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = t->ops->send(t, p, n);

		if (w < 0 || (w == 0 && wait_io(t, 1, 30000) != 0))
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * What the broker sends reaches Paho only as well-formed MQTT packets of
 * the kinds a server sends: each fixed header is checked as it streams by
 * (mqtt_frame: type 0, reserved flags, overlong lengths), and the bodies
 * pass untouched. A broker (or whatever answers on its port) speaking
 * anything else ends the link, and Paho's parser never sees it.
 */
struct frames {
	uint8_t hdr[5];
	size_t hlen;          /* header bytes of the next packet so far */
	size_t left;          /* body bytes of the current packet still to come */
};

static const char *frames_check(struct frames *f, const uint8_t *p, size_t n)
{
	while (n) {
		size_t plen = 0, hlen = 0;
		enum mqtt_status st;
		unsigned type;

		if (f->left) {
			size_t k = n < f->left ? n : f->left;

			f->left -= k;
			p += k;
			n -= k;
			continue;
		}
		f->hdr[f->hlen++] = *p++;
		n--;
		st = mqtt_frame(f->hdr, f->hlen, MQTT_MAX_REMAINING + 5U, &plen, &hlen);
		if (st == MQTT_NEED_MORE && !hlen) {
			if (f->hlen < sizeof f->hdr)
				continue;
			return "a fixed header longer than 5 bytes";
		}
		if (st != MQTT_OK && st != MQTT_NEED_MORE)
			return mqtt_strerror(st);
		type = f->hdr[0] >> 4;
		if (type == MQTT_CONNECT || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE ||
		    type == MQTT_PINGREQ)
			return "a packet only clients send";
		f->left = plen - hlen;
		f->hlen = 0;
	}
	return NULL;
}

/* Copy both ways until either side closes or the link stops. The upstream
 * is non-blocking: a TLS 1.3 session ticket makes the socket readable with
 * no application data, and a blocking read would then sit on it while
 * Paho's CONNECT waits unread in the other direction. */
static void pump(struct proxy *px, struct px_transport *paho, struct px_transport *up)
{
	uint8_t buf[16384];
	uint64_t got = 0;      /* bytes from the broker */
	struct frames fr = { 0 };
	const char *bad = NULL;

	while (!px->link.stop) {
		struct pollfd pf[2] = { { .fd = paho->fd, .events = POLLIN },
			{ .fd = up->fd, .events = (short)(up->want_write ? POLLOUT : POLLIN) } };
		int pending = up->ops->pending(up);
		ssize_t n;

		if (!pending && poll(pf, 2, LINK_POLL_MS) <= 0)
			continue;
		if (pf[0].revents) {
			n = paho->ops->recv(paho, buf, sizeof buf);
			if (n < 0 || (n > 0 && send_all(up, buf, (size_t)n) != 0))
				break;
		}
		if (pending || pf[1].revents) {
			n = up->ops->recv(up, buf, sizeof buf);
			if (n < 0)
				break;
			if (n == 0)
				continue;
			got += (uint64_t)n;
			if ((bad = frames_check(&fr, buf, (size_t)n)) != NULL)
				break;
			if (send_all(paho, buf, (size_t)n) != 0)
				break;
		}
	}
	if (bad)
		set_err(px, "broker %s sent what is not MQTT from a server (%s): link closed",
			px->ups.b[px->link_broker].name, bad);
	else if (!got && !px->link.stop)
		/* Not even a CONNACK: a broker that wants something else of the
		 * connection (ALPN, a client certificate) closes it like this. */
		set_err(px, "broker %s closed the connection without answering the MQTT CONNECT "
			"(does it require alpn, a client certificate, or another port?)",
			px->ups.b[px->link_broker].name);
	plog(LOG_DEBUG, "key service: broker connection closed");
}

/* Carry Paho's connection @p afd (non-blocking) to the broker and back. */
static void serve(struct proxy *px, int afd)
{
	char why[sizeof px->link.err];
	struct px_transport up, paho;

	px_transport_tcp(&paho, afd);
	if (dial(px, &up, why, sizeof why) != 0) {
		set_err(px, "%s", why);
		return;
	}
	if (px->cfg.tls) {
		if (handshake(px, &up, why, sizeof why) != 0) {
			set_err(px, "TLS to broker %s failed: %s", px->ups.b[px->link_broker].name,
				why);
			up.ops->close(&up);
			return;
		}
		up.ops->describe(&up, why, sizeof why);
		plog(LOG_DEBUG, "key service: upstream %s", why);
	}
	pthread_mutex_lock(&px->link.mu);
	px->link.err[0] = '\0';
	pthread_mutex_unlock(&px->link.mu);
	pump(px, &paho, &up);
	up.ops->close(&up);   /* TLS: close_notify first */
}

static void *link_main(void *arg)
{
	struct proxy *px = arg;

	while (!px->link.stop) {
		struct pollfd pf = { .fd = px->link.lfd, .events = POLLIN };
		struct sockaddr_in peer;
		socklen_t pl = sizeof peer;
		int afd;

		if (poll(&pf, 1, LINK_POLL_MS) <= 0)
			continue;
		afd = accept4(px->link.lfd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (afd < 0)
			continue;
		if (pl != sizeof peer || !own_peer(&peer, afd, px->link.lfd)) {
			char a[INET_ADDRSTRLEN] = "?";

			inet_ntop(AF_INET, &peer.sin_addr, a, sizeof a);
			plog(LOG_WARNING, "key service link: refused a connection from %s:%u: not "
				"this process", a, (unsigned)ntohs(peer.sin_port));
		} else {
			serve(px, afd);
		}
		close(afd);
		ERR_clear_error();
	}
	return NULL;
}

int keylink_start(struct proxy *px)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof a;

	pthread_mutex_init(&px->link.mu, NULL);
	px->link.inited = 1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	px->link.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (px->link.lfd < 0 || bind(px->link.lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    listen(px->link.lfd, 4) != 0 ||
	    getsockname(px->link.lfd, (struct sockaddr *)&a, &al) != 0) {
		plog(LOG_ERR, "key service: cannot open its loopback link: %s", strerror(errno));
		return -1;
	}
	px->link.port = ntohs(a.sin_port);
	if (pthread_create(&px->link.thread, NULL, link_main, px) != 0) {
		plog(LOG_ERR, "key service: cannot start its link thread");
		return -1;
	}
	px->link.running = 1;
	return 0;
}

void keylink_stop(struct proxy *px)
{
	px->link.stop = 1;
	if (px->link.running)
		pthread_join(px->link.thread, NULL);
	px->link.running = 0;
	if (px->link.lfd > 0)
		close(px->link.lfd);
	px->link.lfd = -1;
	if (px->link.inited)
		pthread_mutex_destroy(&px->link.mu);
	px->link.inited = 0;
}
