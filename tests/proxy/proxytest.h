/*
 * Fixtures shared by the proxy's socket-level suites (test_relay,
 * test_loop, test_keylink): stand-ins for what conn.c and relay.c call
 * outside themselves (the sealing call seals with libe2e and the test's
 * key, so every envelope can be opened and compared), a loopback listener
 * for the fake broker, and a fake peer's reading and writing that keeps
 * the proxy running meanwhile.
 *
 * Each suite defines pt_pump_once(): one round of the proxy, the way that
 * suite drives it (test_relay dispatches epoll events itself, test_loop
 * calls proxy_loop_run_once, test_keylink waits for the link's thread).
 */
#ifndef E2E_PROXY_TEST_H
#define E2E_PROXY_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "e2e/envelope.h"

/* The key the stand-in sealing call uses, and how often it sealed. */
extern uint8_t pt_key[E2E_KEY_BYTES];
extern unsigned pt_seals;
/* The sealing call answers E2E_ERR_RESERVE (parks) pt_park_left more
 * times; pt_parks counts those answers. */
extern unsigned pt_park_left, pt_parks;

/* Defined by each suite: one round of the proxy; 1 if there was anything to do. */
int pt_pump_once(int timeout_ms);

/* What a fake peer read and has not consumed yet. */
struct pt_in {
	uint8_t *p;
	size_t len, cap;
};

void pt_in_free(struct pt_in *in);
void pt_nonblock(int fd);

/* Append what @p fd has now; -1 on EOF or error (nothing read), else bytes read. */
ssize_t pt_slurp(struct pt_in *in, int fd);
/* The next whole packet in @p in (copied to @p out, consumed); its size or 0. */
size_t pt_next_packet(struct pt_in *in, uint8_t *out, size_t cap);
/* Read from @p fd, pumping the proxy, until one whole packet is there; its size or 0. */
size_t pt_recv_packet(struct pt_in *in, int fd, uint8_t *out, size_t cap);
/* Write all of @p p, pumping the proxy meanwhile; a proxy that stops reading
 * for good (about 3 s without progress) fails the test. */
void pt_send_all(int fd, const uint8_t *p, size_t n);

/* Does PUBLISH @p pkt carry @p topic and an envelope that opens with pt_key
 * to exactly @p pt? */
int pt_check_sealed(const uint8_t *pkt, size_t len, uint8_t version, const char *topic,
	const void *pt, size_t pt_len);

struct proxy;

/* The relay's configuration for a test (max packet @p max_packet, no TLS,
 * unmapped topics passed as plaintext), its scratch buffer, and the
 * broker list @p brokers ("127.0.0.1:P[,...]"). 0 or -1. */
int pt_proxy_init(struct proxy *px, const char *brokers, uint32_t max_packet);
void pt_proxy_free(struct proxy *px);

/* A listener on 127.0.0.1, a free port; the fd (port in *port) or -1. */
int pt_listen_loopback(int *port);
/* A non-blocking connection to 127.0.0.1:@p port; the fd or -1. */
int pt_dial_loopback(int port);
/* Open file descriptors of this process (leak checks). */
int pt_count_fds(void);

struct mt_test;
/* A suite's main: libsodium, quiet proxy logging, a fresh pt_key, CUnit's
 * verbose run of @p tests (ending with { NULL, NULL }); 0 when all passed. */
int pt_run(const char *suite, const struct mt_test *tests);

#endif
