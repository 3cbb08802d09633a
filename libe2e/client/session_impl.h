/*
 * What the session_*.c files share inside the session (session.h is the
 * interface of the session to client.c and publisher.c): the TLS helpers
 * (session_tls.c), the Paho client and waiting (session_base.c),
 * subscriptions made again at each connection (session_sub.c) and Paho's
 * connection callbacks (session_conn.c).
 *
 * Only declarations on an opaque struct e2e_session: this header includes
 * no session header (session.c includes it, so including session.h here
 * would make a circle); each session_*.c includes session.h itself.
 */
#ifndef E2E_SESSION_IMPL_H
#define E2E_SESSION_IMPL_H

#include <MQTTAsync.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct e2e_session;
struct e2e_conn_config;

/* session_tls.c */
int e2e_session_use_tls(const struct e2e_conn_config *c);
unsigned int e2e_session_psk_cb(const char *hint, char *identity,
	unsigned int max_identity_len, unsigned char *psk, unsigned int max_psk_len, void *u);
int e2e_session_ssl_error(const char *str, size_t len, void *u);
/* Why a TLS handshake with @p host:@p port fails, in words (empty if unknown). */
void e2e_session_tls_diagnose(const struct e2e_session *s, const char *host, int port,
	char *out, size_t cap);

/* session_base.c: a fresh random client id (clean sessions only). */
void e2e_session_random_id(struct e2e_session *s);
/* session_base.c: a Paho client with the session's id and callbacks. */
int e2e_session_make_handle(struct e2e_session *s, MQTTAsync *h);
/* session_base.c: Paho's client for one call (read lock held until put). */
MQTTAsync e2e_session_handle_get(struct e2e_session *s);
void e2e_session_handle_put(struct e2e_session *s);
/*
 * Before a reconnection: a session with a random id (a clean session) gets
 * a new Paho client with a new random id once the old one has connected.
 * A cluster keeps a clean session's queue on the node that died until that
 * node returns (RabbitMQ 3.x: declaring it again from another node fails
 * and the connection is closed), so the same id cannot fail over.
 */
void e2e_session_renew(struct e2e_session *s);

/* session_base.c: absolute CLOCK_REALTIME deadline @p ms from now. */
struct timespec e2e_session_deadline(uint32_t ms);
/* With s->lock held: wait until *flag (or s->stop), at most @p timeout_ms. */
int e2e_session_wait_flag(struct e2e_session *s, int *flag, uint32_t timeout_ms);

/* session_sub.c: called with s->lock held at each connection. */
void e2e_session_resubscribe(struct e2e_session *s);
int e2e_session_on_arrived(void *ctx, char *topic, int topic_len, MQTTAsync_message *m);

/* session_conn.c: Paho's connection callbacks. */
void e2e_session_on_connected(void *ctx, char *cause);
void e2e_session_on_lost(void *ctx, char *cause);

#endif
