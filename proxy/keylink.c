/*
 * The key service's way to the broker. Paho cannot express every upstream
 * setting (it sends and checks the URI's host as SNI, ignores the minimum
 * TLS version on OpenSSL 1.1+, reports a failed handshake as "Failure"), so
 * the key service does not speak TLS itself: Paho connects in plain MQTT to
 * a loopback port of this process, and this thread carries each such
 * connection to the broker with the SAME recipe as a publisher's relay
 * (broker address, tls_new(): CA, sni, tls-min, ciphers, ALPN, PSK, the
 * certificate template for the service's client id). One recipe, two users:
 * they cannot drift. Failures are logged with their real cause.
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
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "log.h"
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

/* TCP to broker @p b within the connect timeout; the fd (blocking) or -1. */
static int dial_one(struct proxy *px, const struct px_broker *b, int *errp)
{
	int fd = -1, err = ETIMEDOUT;

	for (struct addrinfo *ai = b->ai; ai; ai = ai->ai_next) {
		struct pollfd pf;
		socklen_t el = sizeof err;
		int fl;

		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = errno;
			continue;
		}
		fl = fcntl(fd, F_GETFL);
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			err = 0;
		else if (errno != EINPROGRESS)
			err = errno;
		else {
			pf = (struct pollfd){ .fd = fd, .events = POLLOUT };
			err = ETIMEDOUT;
			if (poll(&pf, 1, (int)px->cfg.connect_timeout_ms) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
				err = errno;
		}
		if (err == 0) {
			(void)fcntl(fd, F_SETFL, fl);
			return fd;
		}
		close(fd);
		fd = -1;
	}
	*errp = err;
	return -1;
}

/*
 * TCP to the broker px->ups picks (failover: the same order and back-off
 * as the publishers' relays); the fd (blocking) or -1.
 */
static int dial(struct proxy *px, char *why, size_t cap)
{
	int fd = -1, err = ETIMEDOUT, i = 0;

	for (int tries = 0; tries < px->ups.n && fd < 0; tries++) {
		i = px_upstream_pick(&px->ups, e2e_mono_ms());
		fd = dial_one(px, &px->ups.b[i], &err);
		if (fd < 0)
			px_upstream_failed(&px->ups, i, e2e_mono_ms(), strerror(err));
	}
	if (fd >= 0) {
		px_upstream_ok(&px->ups, i);
		px->link_broker = i;
		return fd;
	}
	snprintf(why, cap, "cannot reach broker %s: %s", px->ups.b[i].name, strerror(err));
	return -1;
}

static void timeouts(int fd, uint32_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Wait until @p fd is ready for what the last SSL call asked (or @p ev). */
static int wait_fd(int fd, short ev)
{
	struct pollfd pf = { .fd = fd, .events = ev };

	return poll(&pf, 1, 30000) == 1 ? 0 : -1;
}

/* Write all of @p p: to the non-blocking upstream (TLS or not) or to Paho. */
static int send_all(int fd, SSL *ssl, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w;

		if (ssl) {
			int r = SSL_write(ssl, p, (int)(n > 65536 ? 65536 : n));

			if (r <= 0) {
				int e = SSL_get_error(ssl, r);

				if ((e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) ||
				    wait_fd(fd, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN) != 0)
					return -1;
				continue;
			}
			w = r;
		} else {
			w = send(fd, p, n, MSG_NOSIGNAL);
			if (w < 0 && (errno == EINTR || errno == EAGAIN)) {
				if (errno == EAGAIN && wait_fd(fd, POLLOUT) != 0)
					return -1;
				continue;
			}
			if (w <= 0)
				return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copy both ways until either side closes or the link stops. The upstream
 * is non-blocking: a TLS 1.3 session ticket makes the socket readable with
 * no application data, and a blocking SSL_read would then sit on it while
 * Paho's CONNECT waits unread in the other direction. */
static void pump(struct proxy *px, int afd, int ufd, SSL *ssl)
{
	uint8_t buf[16384];
	uint64_t got = 0;      /* bytes from the broker */

	(void)fcntl(ufd, F_SETFL, fcntl(ufd, F_GETFL) | O_NONBLOCK);

	while (!px->link.stop) {
		struct pollfd pf[2] = { { .fd = afd, .events = POLLIN }, { .fd = ufd, .events = POLLIN } };
		int pending = ssl && SSL_has_pending(ssl);
		ssize_t n;

		if (!pending && poll(pf, 2, LINK_POLL_MS) <= 0)
			continue;
		if (pf[0].revents) {
			n = recv(afd, buf, sizeof buf, 0);
			if (n <= 0 || send_all(ufd, ssl, buf, (size_t)n) != 0)
				break;
		}
		if (pending || pf[1].revents) {
			if (ssl) {
				int r = SSL_read(ssl, buf, sizeof buf);

				if (r <= 0) {
					int e = SSL_get_error(ssl, r);

					if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
						continue;
					break;
				}
				n = r;
			} else {
				n = recv(ufd, buf, sizeof buf, 0);
				if (n < 0 && errno == EAGAIN)
					continue;
				if (n <= 0)
					break;
			}
			got += (uint64_t)n;
			if (send_all(afd, NULL, buf, (size_t)n) != 0)
				break;
		}
	}
	if (!got && !px->link.stop)
		/* Not even a CONNACK: a broker that wants something else of the
		 * connection (ALPN, a client certificate) closes it like this. */
		set_err(px, "broker %s closed the connection without answering the MQTT CONNECT "
			"(does it require alpn, a client certificate, or another port?)",
			px->ups.b[px->link_broker].name);
	plog(LOG_DEBUG, "key service: broker connection closed");
}

static void serve(struct proxy *px, int afd)
{
	char why[sizeof px->link.err];
	SSL *ssl = NULL;
	int ufd = dial(px, why, sizeof why);

	if (ufd < 0) {
		set_err(px, "%s", why);
		return;
	}
	if (px->cfg.tls) {
		int r;

		/* Held across the handshake: SIGHUP must not swap the context
		 * (and the PSK the callback reads) under it. */
		pthread_mutex_lock(&px->tls_mu);
		ssl = tls_new(&px->tls, ufd, px->service_id);
		timeouts(ufd, px->cfg.connect_timeout_ms);
		r = ssl ? SSL_connect(ssl) : -1;
		if (r != 1) {
			if (ssl)
				tls_why(&px->tls, ssl, r, why, sizeof why);
			else if (px->tls.per_client_cert)
				snprintf(why, sizeof why, "no usable client certificate for client id "
					"'%s' from the cert/key template (see above)", px->service_id);
			else
				snprintf(why, sizeof why, "%s", tls_error());
		}
		pthread_mutex_unlock(&px->tls_mu);
		if (r != 1) {
			set_err(px, "TLS to broker %s failed: %s", px->ups.b[px->link_broker].name,
				why);
			SSL_free(ssl);
			close(ufd);
			return;
		}
		timeouts(ufd, 0);
		plog(LOG_DEBUG, "key service: upstream %s", SSL_get_version(ssl));
	}
	pthread_mutex_lock(&px->link.mu);
	px->link.err[0] = '\0';
	pthread_mutex_unlock(&px->link.mu);
	pump(px, afd, ufd, ssl);
	if (ssl) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	close(ufd);
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
		afd = accept4(px->link.lfd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
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
