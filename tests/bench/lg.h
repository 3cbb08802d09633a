/*
 * mqttload internals: raw MQTT 3.1.1 client connections (plain TCP or TLS)
 * for the load generator. Packets are framed and built with the proxy's
 * own codec (proxy/mqtt_codec.h); only SUBSCRIBE and the ack/ping packets,
 * which the codec does not write, are built here.
 */
#ifndef E2E_BENCH_LG_H
#define E2E_BENCH_LG_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt_codec.h"

#define LG_MAX_PACKET (1U << 20)

struct lg_addr {
	char host[64];
	uint16_t port;
};

/* One MQTT connection with its byte buffers. */
struct lg_conn {
	int fd;
	SSL *ssl;
	uint8_t *in;              /* received, not yet framed */
	size_t in_len, in_cap;
	uint8_t *out;             /* queued for writing: out[out_off .. out_len) */
	size_t out_off, out_len, out_cap;
	int ssl_want_read;        /* SSL_write asked for readability */
	/* load generator state */
	uint32_t idx;
	uint32_t seq;
	uint64_t sent_msgs;
	uint32_t inflight;
	uint16_t next_id;
	int state;
	uint64_t t_start;
};

uint64_t lg_now_ns(void);
int lg_parse_addr(struct lg_addr *a, const char *spec);

/* TLS client context (CA file, host name check against @p host); NULL on error. */
SSL_CTX *lg_tls_ctx(const char *cafile);

/*
 * Blocking setup: TCP connect from source 127.0.0.@p src (0: any), TLS when
 * @p ctx, MQTT CONNECT with @p client_id and wait for CONNACK (@p timeout_ms).
 * The socket is non-blocking afterwards. 0 or -1 (message on stderr).
 */
int lg_connect(struct lg_conn *c, const struct lg_addr *a, SSL_CTX *ctx, int src,
	const char *client_id, uint16_t keepalive, int timeout_ms);
/* Non-blocking TCP connect started (state for the caller's event loop). */
int lg_connect_start(struct lg_conn *c, const struct lg_addr *a, int src);
void lg_close(struct lg_conn *c);

/* Packet builders: append to c->out. */
int lg_put_connect(struct lg_conn *c, const char *client_id, uint16_t keepalive);
int lg_put_publish(struct lg_conn *c, const char *topic, size_t topic_len, int qos,
	uint16_t id, const uint8_t *payload, size_t len);
int lg_put_subscribe(struct lg_conn *c, uint16_t id, const char *filter, int qos);
int lg_put_puback(struct lg_conn *c, uint16_t id);
uint8_t *lg_out_reserve(struct lg_conn *c, size_t n);

/* Write queued bytes: 0 (all or EAGAIN) or -1 on error. */
int lg_flush(struct lg_conn *c);
/* Read what is available (non-blocking): bytes read, 0 on EAGAIN, -1 on EOF/error. */
long lg_read(struct lg_conn *c);
/* Next whole packet in c->in: 1 (*pkt, *len set), 0 need more, -1 malformed. */
int lg_next_packet(struct lg_conn *c, const uint8_t **pkt, size_t *len);
/* Drop the packets consumed so far (@p n bytes from the start). */
void lg_consume(struct lg_conn *c, size_t n);
static inline size_t lg_pending(const struct lg_conn *c)
{
	return c->out_len - c->out_off;
}

/* CPU seconds (utime + stime) of process @p pid from /proc/<pid>/stat, or -1. */
double lg_proc_cpu(int pid);
/* Busy, stolen (by the hypervisor) and total jiffies of the whole machine
 * (/proc/stat "cpu" line). */
int lg_machine_cpu(uint64_t *busy, uint64_t *steal, uint64_t *total);
/* VmRSS of @p pid in KiB, or -1. */
long lg_proc_rss_kib(int pid);

/* key service modes (lg_keys.c) */
int lg_keys_main(int argc, char **argv);

#endif
