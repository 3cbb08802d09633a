/*
 * OpenSSL behind the proxy's transport interface: the broker side (client)
 * and, with listen-tls, the publisher side (server). The SSL object is the
 * transport's ctx; want_write records what OpenSSL last asked for, so the
 * event loop waits for the right readiness.
 */
#include <openssl/ssl.h>
#include <stdio.h>
#include <unistd.h>

#include "tls.h"
#include "transport.h"

/* One SSL_write moves at most this much (an int length, bounded records). */
#define TLS_WRITE_MAX 65536U

/* SSL I/O result: >0 bytes, 0 would block (want_write set), -1 closed/error. */
static ssize_t result(struct px_transport *t, int r)
{
	if (r > 0) {
		t->want_write = 0;
		return r;
	}
	switch (SSL_get_error(t->ctx, r)) {
	case SSL_ERROR_WANT_READ:
		return 0;
	case SSL_ERROR_WANT_WRITE:
		t->want_write = 1;
		return 0;
	default:
		return -1;
	}
}

static ssize_t tls_recv(struct px_transport *t, uint8_t *buf, size_t len)
{
	return result(t, SSL_read(t->ctx, buf, (int)(len > TLS_WRITE_MAX ? TLS_WRITE_MAX : len)));
}

static ssize_t tls_send(struct px_transport *t, const uint8_t *buf, size_t len)
{
	return result(t, SSL_write(t->ctx, buf, (int)(len > TLS_WRITE_MAX ? TLS_WRITE_MAX : len)));
}

static int tls_handshake(struct px_transport *t, char *why, size_t cap)
{
	SSL *ssl = t->ctx;
	int server = SSL_is_server(ssl);
	int r;

	if (t->ready)
		return 1;
	r = server ? SSL_accept(ssl) : SSL_connect(ssl);
	if (r == 1) {
		t->want_write = 0;
		t->ready = 1;
		return 1;
	}
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ:
		t->want_write = 0;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		t->want_write = 1;
		return 0;
	default:
		if (server || !t->tls)
			snprintf(why, cap, "%s", tls_error());
		else
			tls_why(t->tls, ssl, r, why, cap);
		return -1;
	}
}

static int tls_pending(const struct px_transport *t)
{
	return t->ready && SSL_has_pending(t->ctx);
}

/* A TLS connection's read and write record buffers, about 17 KiB each;
 * SSL_free_buffers refuses while they hold data. */
static size_t tls_trim(struct px_transport *t)
{
	if (t->want_write || (!t->ready && SSL_is_server(t->ctx)))
		return 0;
	return SSL_free_buffers(t->ctx) ? 2U * 17U * 1024U : 0;
}

static void tls_describe(const struct px_transport *t, char *out, size_t cap)
{
	const unsigned char *alpn = NULL;
	unsigned alen = 0;

	SSL_get0_alpn_selected(t->ctx, &alpn, &alen);
	snprintf(out, cap, "%s%s%.*s", SSL_get_version(t->ctx), alen ? " alpn " : "", (int)alen,
		alpn ? (const char *)alpn : "");
}

static void tls_close(struct px_transport *t)
{
	/* close_notify only on an established session: mid-handshake there is
	 * nothing to close gracefully (OpenSSL refuses it then). */
	if (SSL_is_init_finished(t->ctx))
		SSL_shutdown(t->ctx);
	SSL_free(t->ctx);
	if (t->fd >= 0)
		close(t->fd);
	px_transport_none(t);
}

static const struct px_transport_ops tls_ops = {
	.recv = tls_recv,
	.send = tls_send,
	.handshake = tls_handshake,
	.pending = tls_pending,
	.trim = tls_trim,
	.describe = tls_describe,
	.close = tls_close,
};

static void take_over(struct px_transport *t, SSL *ssl, const struct tls_ctx *tls)
{
	int fd = t->fd;

	*t = (struct px_transport){ .ops = &tls_ops, .ctx = ssl, .tls = tls, .fd = fd,
		.buffered = 1 };
}

int px_transport_tls_client(struct px_transport *t, struct tls_ctx *tls, const char *client_id)
{
	SSL *ssl = tls_new(tls, t->fd, client_id);

	if (!ssl)
		return -1;
	take_over(t, ssl, tls);
	return 0;
}

int px_transport_tls_server(struct px_transport *t, struct tls_ctx *tls)
{
	SSL *ssl = SSL_new(tls->ctx);

	if (!ssl || !SSL_set_fd(ssl, t->fd)) {
		SSL_free(ssl);
		return -1;
	}
	SSL_set_accept_state(ssl);
	take_over(t, ssl, tls);
	return 0;
}
