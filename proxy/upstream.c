/* The proxy's brokers and their back-off; see upstream.h. */
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "hostport.h"
#include "log.h"
#include "upstream.h"

int px_upstreams_init(struct px_upstreams *u, const char *list, char *err, size_t cap)
{
	const char *cur = list;
	int r;

	memset(u, 0, sizeof *u);
	pthread_mutex_init(&u->mu, NULL);
	u->cur = -1;
	while (list && *cur) {
		struct px_broker *b = &u->b[u->n];
		struct addrinfo hints = { 0 };
		int rc;

		if (u->n == PX_UPSTREAM_MAX) {
			snprintf(err, cap, "broker: at most %d addresses", PX_UPSTREAM_MAX);
			return -1;
		}
		r = e2e_hostport_next(&cur, b->host, sizeof b->host, b->port, sizeof b->port);
		if (r <= 0 || !b->port[0]) {
			snprintf(err, cap, "broker: '%s' is not HOST:PORT (or a comma list of them)",
				list);
			return -1;
		}
		snprintf(b->name, sizeof b->name, strchr(b->host, ':') ? "[%s]:%s" : "%s:%s",
			b->host, b->port);
		hints.ai_socktype = SOCK_STREAM;
		rc = getaddrinfo(b->host, b->port, &hints, &b->ai);
		if (rc != 0) {
			snprintf(err, cap, "broker %s: %s", b->name, gai_strerror(rc));
			return -1;
		}
		b->backoff_ms = PX_UPSTREAM_BACKOFF_MIN_MS;
		u->n++;
	}
	if (u->n == 0) {
		snprintf(err, cap, "broker: no address");
		return -1;
	}
	return 0;
}

void px_upstreams_free(struct px_upstreams *u)
{
	for (int i = 0; i < u->n; i++)
		if (u->b[i].ai)
			freeaddrinfo(u->b[i].ai);
	if (u->n || u->cur)
		pthread_mutex_destroy(&u->mu);
	memset(u, 0, sizeof *u);
}

int px_upstream_pick(struct px_upstreams *u, uint64_t now_ms)
{
	int best = 0;

	pthread_mutex_lock(&u->mu);
	for (int i = 0; i < u->n; i++) {
		if (u->b[i].down_until_ms <= now_ms) {
			best = i;
			goto out;
		}
		if (u->b[i].down_until_ms < u->b[best].down_until_ms)
			best = i;
	}
out:
	pthread_mutex_unlock(&u->mu);
	return best;
}

void px_upstream_failed(struct px_upstreams *u, int i, uint64_t now_ms, const char *why)
{
	struct px_broker *b = &u->b[i];
	uint32_t wait;

	pthread_mutex_lock(&u->mu);
	wait = b->backoff_ms;
	b->down_until_ms = now_ms + wait;
	b->backoff_ms = wait * 2 > PX_UPSTREAM_BACKOFF_MAX_MS ? PX_UPSTREAM_BACKOFF_MAX_MS :
		wait * 2;
	pthread_mutex_unlock(&u->mu);
	if (u->n > 1)
		plog(LOG_WARNING, "broker %s unreachable (%s): not tried again for %u ms", b->name,
			why, (unsigned)wait);
}

void px_upstream_ok(struct px_upstreams *u, int i)
{
	int was;

	pthread_mutex_lock(&u->mu);
	u->b[i].down_until_ms = 0;
	u->b[i].backoff_ms = PX_UPSTREAM_BACKOFF_MIN_MS;
	was = u->cur;
	u->cur = i;
	if (was >= 0 && was != i)
		u->failovers++;
	pthread_mutex_unlock(&u->mu);
	if (was >= 0 && was > i)
		plog(LOG_WARNING, "upstream: broker %s is back, now used instead of %s",
			u->b[i].name, u->b[was].name);
	else if (was >= 0 && was != i)
		plog(LOG_WARNING, "upstream failover: broker %s lost, now %s", u->b[was].name,
			u->b[i].name);
}
