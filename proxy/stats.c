/*
 * The stats JSON of e2e-proxy (stats socket and SIGUSR1), built and
 * written by Jansson like every other JSON the product writes: one object,
 * one line.
 */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "loop.h"
#include "proxy.h"

static json_t *uint_(uint64_t v)
{
	/* json_int_t is long long: counters never reach 2^63. */
	return json_integer(v > (uint64_t)LLONG_MAX ? LLONG_MAX : (json_int_t)v);
}

/* Days until a configured certificate expires; null when none is set. */
static json_t *days(const struct tls_ctx *t)
{
	return t->have_cert_days ? json_integer(t->cert_days) : json_null();
}

void proxy_stats_json(struct proxy *px, char *out, size_t cap)
{
	struct e2e_publisher_stats ps = { 0 };
	const struct proxy_stats *s = &px->st;
	json_t *o;
	size_t n = 0;

	if (!cap)
		return;
	out[0] = '\0';
	if (px->keys)
		e2e_publisher_stats(px->keys, &ps);
	o = json_pack("{s:{s:o, s:o, s:o, s:o}, s:{s:o, s:o, s:o, s:o, s:o}, s:{s:o, s:o},"
		" s:o, s:o, s:o, s:o, s:o, s:{s:o, s:o, s:o, s:o, s:o}}",
		"connections", "active", uint_(s->active), "accepted", uint_(s->accepted),
		"refused", uint_(s->refused_conns), "closed", uint_(s->closed),
		"messages", "publishes", uint_(s->publishes), "sealed", uint_(s->sealed),
		"plaintext", uint_(s->plaintext_passed), "refused", uint_(s->refused_publishes),
		"malformed", uint_(s->malformed),
		"bytes", "to_broker", uint_(s->bytes_up), "to_publishers", uint_(s->bytes_down),
		"tls_failures", uint_(s->tls_failures), "upstream_failures",
		uint_(s->upstream_failures), "timeouts", uint_(s->timeouts),
		"cert_days_left", days(&px->tls), "listen_cert_days_left", days(&px->tls_down),
		"key_service", "requests", uint_(ps.requests), "delivered", uint_(ps.delivered),
		"refused", uint_(ps.refused), "ignored", uint_(ps.ignored),
		"announcements", uint_(ps.announcements));
	/* Seals that found no durable reservation ready and waited for the disk. */
	if (o)
		json_object_set_new(o, "seals_waited", uint_(ps.seals_waited));
	/* Seals parked instead (the loop went on; retried after the I/O round),
	 * and parked publishes refused after the bound. */
	if (o)
		json_object_set_new(o, "seals_parked", uint_(ps.seals_parked));
	if (o)
		json_object_set_new(o, "park_timeouts", uint_(s->park_timeouts));
	/* Room for the newline and the NUL the callers expect. */
	if (o)
		n = json_dumpb(o, out, cap - 1, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (n == 0 || n + 2 > cap) {
		snprintf(out, cap, "{}\n");
		return;
	}
	out[n] = '\n';
	out[n + 1] = '\0';
}
