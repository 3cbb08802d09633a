/* Plain TCP (or any stream socket) behind the proxy's transport interface. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport.h"

static ssize_t tcp_recv(struct px_transport *t, uint8_t *buf, size_t len)
{
	ssize_t r = recv(t->fd, buf, len, 0);

	/* An orderly shutdown (0) ends the connection like an error does. */
	return r > 0 ? r : r == 0 ? -1 : errno == EAGAIN || errno == EINTR ? 0 : -1;
}

static ssize_t tcp_send(struct px_transport *t, const uint8_t *buf, size_t len)
{
	ssize_t w = send(t->fd, buf, len, MSG_NOSIGNAL);

	return w >= 0 ? w : errno == EAGAIN || errno == EINTR ? 0 : -1;
}

static int tcp_handshake(struct px_transport *t, char *why, size_t cap)
{
	(void)t;
	(void)why;
	(void)cap;
	return 1;
}

static int tcp_pending(const struct px_transport *t)
{
	(void)t;
	return 0;
}

static size_t tcp_trim(struct px_transport *t)
{
	(void)t;
	return 0;
}

static void tcp_describe(const struct px_transport *t, char *out, size_t cap)
{
	(void)t;
	snprintf(out, cap, "tcp");
}

static void tcp_close(struct px_transport *t)
{
	if (t->fd >= 0)
		close(t->fd);
	px_transport_none(t);
}

const struct px_transport_ops px_tcp_ops = {
	.recv = tcp_recv,
	.send = tcp_send,
	.handshake = tcp_handshake,
	.pending = tcp_pending,
	.trim = tcp_trim,
	.describe = tcp_describe,
	.close = tcp_close,
};

void px_transport_tcp(struct px_transport *t, int fd)
{
	*t = (struct px_transport){ .ops = &px_tcp_ops, .fd = fd, .ready = 1 };
}

int px_transport_tcp_dial(struct px_transport *t, const struct addrinfo *ai)
{
	int one = 1;

	for (; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);

		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
			close(fd);
			continue;
		}
		px_transport_tcp(t, fd);
		return 0;
	}
	return -1;
}

int px_transport_tcp_connected(const struct px_transport *t)
{
	int err = 0;
	socklen_t el = sizeof err;

	if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
		return errno ? errno : EIO;
	return err;
}

static ssize_t none_recv(struct px_transport *t, uint8_t *buf, size_t len)
{
	(void)t;
	(void)buf;
	(void)len;
	return -1;
}

static ssize_t none_send(struct px_transport *t, const uint8_t *buf, size_t len)
{
	(void)t;
	(void)buf;
	(void)len;
	return -1;
}

static int none_handshake(struct px_transport *t, char *why, size_t cap)
{
	(void)t;
	snprintf(why, cap, "not connected");
	return -1;
}

static void none_close(struct px_transport *t)
{
	(void)t;
}

static const struct px_transport_ops none_ops = {
	.recv = none_recv,
	.send = none_send,
	.handshake = none_handshake,
	.pending = tcp_pending,
	.trim = tcp_trim,
	.describe = tcp_describe,
	.close = none_close,
};

void px_transport_none(struct px_transport *t)
{
	*t = (struct px_transport){ .ops = &none_ops, .fd = -1 };
}
