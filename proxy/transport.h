/*
 * The proxy's byte transport, in the manner of coreMQTT's transport
 * interface: a connection reads and writes through a small table of
 * function pointers, so conn.c never calls recv/send or SSL_* itself and
 * the relay can be driven in tests over socketpairs with transports that
 * misbehave on purpose (one byte per write, would-block, close mid-packet).
 *
 * One struct px_transport lives inside each side of a struct conn: no
 * allocation per read or write, one indirect call each.
 */
#ifndef E2E_PROXY_TRANSPORT_H
#define E2E_PROXY_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct px_transport;
struct tls_ctx;

struct px_transport_ops {
	/* >0 bytes moved, 0 would block (want_write says which way), -1 closed or error. */
	ssize_t (*recv)(struct px_transport *t, uint8_t *buf, size_t len);
	ssize_t (*send)(struct px_transport *t, const uint8_t *buf, size_t len);
	/* 1 done, 0 in progress (wait for want_write ? writable : readable),
	 * -1 failed with the reason in @p why. Plain TCP is done at once. */
	int (*handshake)(struct px_transport *t, char *why, size_t cap);
	/* Bytes taken off the socket but not yet returned by recv: no epoll
	 * event will announce them. */
	int (*pending)(const struct px_transport *t);
	/* An idle connection gives back its buffers; bytes returned to the heap. */
	size_t (*trim)(struct px_transport *t);
	/* "TLSv1.3 alpn mqtt", "tcp": for the debug log after the handshake. */
	void (*describe)(const struct px_transport *t, char *out, size_t cap);
	/* Close gracefully when it can (TLS close_notify), free the state and
	 * close the socket. The transport is unusable (fd -1) afterwards. */
	void (*close)(struct px_transport *t);
};

struct px_transport {
	const struct px_transport_ops *ops;
	void *ctx;                /* the implementation's state (TLS: the SSL) */
	const struct tls_ctx *tls;  /* TLS: the context it came from (error texts) */
	int fd;                   /* for epoll; -1 when closed */
	uint8_t want_write;       /* the last call needs the socket writable */
	uint8_t ready;            /* handshake done: application data may flow */
	uint8_t buffered;         /* may hold bytes the socket no longer signals
	                           * (TLS): read until recv would block */
};

/* transport_tcp.c: a plain socket, ready at once. */
extern const struct px_transport_ops px_tcp_ops;
void px_transport_tcp(struct px_transport *t, int fd);

/* Start a non-blocking connect to the first address of @p ai that takes
 * it; 0 with @p t a plain transport, or -1. */
struct addrinfo;
int px_transport_tcp_dial(struct px_transport *t, const struct addrinfo *ai);

/* After a dial, once the socket is writable: 0 connected, else the errno. */
int px_transport_tcp_connected(const struct px_transport *t);

/* A closed transport: every call fails, close does nothing. */
void px_transport_none(struct px_transport *t);

/* transport_tls.c: OpenSSL over @p fd, taking over the transport (the fd
 * stays). Client side for the broker, with @p client_id's certificate when
 * the configuration has a template; server side for listen-tls. 0, or -1
 * (logged) when the SSL cannot be made. */
int px_transport_tls_client(struct px_transport *t, struct tls_ctx *tls, const char *client_id);
int px_transport_tls_server(struct px_transport *t, struct tls_ctx *tls);

#endif
