/*
 * The proxy's brokers (--broker A,B,...): failover for the publishers'
 * relays and the key service's link. Each new upstream connection goes to
 * the first broker not in back-off, so an earlier broker is used again once
 * its back-off ends; a broker that cannot be reached waits 1 s, doubling to
 * 30 s, before it is tried again (unless every broker waits: then the one
 * whose wait ends first). A switch of broker is logged naming the broker
 * lost and the one now used.
 */
#ifndef E2E_PROXY_UPSTREAM_H
#define E2E_PROXY_UPSTREAM_H

#include <netdb.h>
#include <pthread.h>
#include <stdint.h>

#define PX_UPSTREAM_MAX 16
#define PX_UPSTREAM_BACKOFF_MIN_MS 1000U
#define PX_UPSTREAM_BACKOFF_MAX_MS 30000U

struct px_broker {
	char host[256], port[16];
	char name[280];               /* "host:port" for logs */
	struct addrinfo *ai;
	uint64_t down_until_ms;       /* e2e_mono_ms(); 0: usable */
	uint32_t backoff_ms;          /* the next wait after a failure */
};

struct px_upstreams {
	pthread_mutex_t mu;           /* the relay loop and the key service's link */
	struct px_broker b[PX_UPSTREAM_MAX];
	int n;
	int cur;                      /* the broker the last connection reached, -1: none */
	uint64_t failovers;           /* switches of broker */
};

/**
 * Parse @p list ("HOST:PORT[,HOST:PORT...]") and resolve every broker.
 * 0, or -1 with the reason in @p err.
 */
int px_upstreams_init(struct px_upstreams *u, const char *list, char *err, size_t cap);
void px_upstreams_free(struct px_upstreams *u);

/** The broker for the next connection attempt at @p now_ms. */
int px_upstream_pick(struct px_upstreams *u, uint64_t now_ms);
/** Broker @p i could not be reached: back-off. */
void px_upstream_failed(struct px_upstreams *u, int i, uint64_t now_ms, const char *why);
/** A connection reached broker @p i: no back-off; a switch is logged. */
void px_upstream_ok(struct px_upstreams *u, int i);

#endif
