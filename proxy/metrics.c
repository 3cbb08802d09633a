/*
 * e2e-proxy's Prometheus metrics (metrics-listen). The loop thread keeps
 * its counters as plain integers (proxy_stats) and copies them into a
 * snapshot at its 250 ms tick, under a mutex taken only there and by a
 * scrape; the libmicrohttpd thread renders that snapshot. So the relay path
 * gains no lock, atomic or syscall; a scrape sees figures up to a tick old.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e2e/control.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"

struct proxy_snapshot {
	struct proxy_stats st;
	struct e2e_publisher_stats ps;
	uint32_t nconns;
	int draining;
	int have_up_days, have_down_days;
	int up_days, down_days;
};

/* Upper edges of the relay latency buckets, in nanoseconds and seconds. */
static const uint64_t lat_ns[PX_LAT_BUCKETS] = {
	50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 25000000,
	50000000, 100000000, 1000000000,
};
static const double lat_s[PX_LAT_BUCKETS] = {
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1,
};

/* @p n publishes flushed together, each read @p ns ago at most. */
void proxy_latency_observe(struct proxy_stats *st, uint64_t ns, uint32_t n)
{
	unsigned i = 0;

	while (i < PX_LAT_BUCKETS && ns > lat_ns[i])
		i++;
	st->lat[i] += n;
	st->lat_sum_ns += ns * n;
}

void proxy_metrics_publish(struct proxy *px)
{
	struct e2e_publisher_stats ps = { 0 };

	if (!px->snap)
		return;
	if (px->keys)
		e2e_publisher_stats(px->keys, &ps);
	pthread_mutex_lock(&px->snap_mu);
	px->snap->st = px->st;
	px->snap->ps = ps;
	px->snap->nconns = px->nconns;
	px->snap->draining = px->draining;
	px->snap->have_up_days = px->tls.have_cert_days;
	px->snap->up_days = px->tls.cert_days;
	px->snap->have_down_days = px->tls_down.have_cert_days;
	px->snap->down_days = px->tls_down.cert_days;
	pthread_mutex_unlock(&px->snap_mu);
}

static void per_qos(struct e2e_prom *b, const char *name, const char *help, const uint64_t *v)
{
	e2e_prom_head(b, name, "counter", help);
	e2e_prom_u64(b, name, "qos=\"0\"", v[0]);
	e2e_prom_u64(b, name, "qos=\"1\"", v[1]);
	e2e_prom_u64(b, name, "qos=\"2\"", v[2]);
}

static void render(void *ctx, struct e2e_prom *b)
{
	static const char *reasons[] = { NULL, "not_enrolled", "scope", "rate", "revoked",
		"stale" };
	struct proxy *px = ctx;
	struct proxy_snapshot s;
	char lab[64];

	pthread_mutex_lock(&px->snap_mu);
	s = *px->snap;
	pthread_mutex_unlock(&px->snap_mu);
	e2e_prom_head(b, "e2e_proxy_connections", "gauge", "Publisher connections open now.");
	e2e_prom_u64(b, "e2e_proxy_connections", NULL, s.nconns);
	e2e_prom_one(b, "e2e_proxy_connections_accepted_total", "counter",
		"Publisher connections accepted.", s.st.accepted);
	e2e_prom_one(b, "e2e_proxy_connections_refused_total", "counter",
		"Publisher connections refused (max-connections, draining).", s.st.refused_conns);
	e2e_prom_one(b, "e2e_proxy_connections_closed_total", "counter",
		"Publisher connections closed.", s.st.closed);
	per_qos(b, "e2e_proxy_messages_relayed_total",
		"PUBLISH packets received from publishers, per QoS.", s.st.publishes_qos);
	per_qos(b, "e2e_proxy_messages_sealed_total",
		"PUBLISH payloads sealed and queued to the broker, per QoS.", s.st.sealed_qos);
	e2e_prom_one(b, "e2e_proxy_messages_plaintext_total", "counter",
		"Payloads passed unencrypted (unmapped = plaintext).", s.st.plaintext_passed);
	e2e_prom_one(b, "e2e_proxy_messages_refused_total", "counter",
		"Publishes refused (topic in no scope, reserved topic, sealing failed).",
		s.st.refused_publishes);
	e2e_prom_one(b, "e2e_proxy_malformed_total", "counter",
		"Malformed MQTT packets from publishers.", s.st.malformed);
	e2e_prom_head(b, "e2e_proxy_bytes_total", "counter", "Bytes written, per direction.");
	e2e_prom_u64(b, "e2e_proxy_bytes_total", "direction=\"to_broker\"", s.st.bytes_up);
	e2e_prom_u64(b, "e2e_proxy_bytes_total", "direction=\"to_publishers\"", s.st.bytes_down);
	e2e_prom_one(b, "e2e_proxy_tls_failures_total", "counter",
		"TLS handshakes or records that failed (either side).", s.st.tls_failures);
	e2e_prom_one(b, "e2e_proxy_upstream_failures_total", "counter",
		"Broker connections for publishers that could not be made.",
		s.st.upstream_failures);
	e2e_prom_one(b, "e2e_proxy_timeouts_total", "counter",
		"Connections closed by connect or idle timeouts.", s.st.timeouts);
	e2e_prom_one(b, "e2e_proxy_key_requests_total", "counter",
		"Key requests seen by the key service.", s.ps.requests);
	e2e_prom_one(b, "e2e_proxy_key_requests_answered_total", "counter",
		"Key requests answered with keys (DELIVERY).", s.ps.delivered);
	e2e_prom_head(b, "e2e_proxy_key_requests_refused_total", "counter",
		"Key requests answered with a signed refusal, per reason.");
	for (unsigned r = 1; r < sizeof reasons / sizeof reasons[0]; r++) {
		snprintf(lab, sizeof lab, "reason=\"%s\"", reasons[r]);
		e2e_prom_u64(b, "e2e_proxy_key_requests_refused_total", lab, s.ps.refused_by[r]);
	}
	e2e_prom_one(b, "e2e_proxy_key_requests_ignored_total", "counter",
		"Key requests dropped unanswered (malformed, bad signature, replayed, rate).",
		s.ps.ignored);
	e2e_prom_one(b, "e2e_proxy_key_rotations_total", "counter",
		"New epochs announced (key rotations).", s.ps.announcements);
	e2e_prom_one(b, "e2e_proxy_summaries_sent_total", "counter",
		"Signed summary messages published.", s.ps.summaries);
	e2e_prom_one(b, "e2e_proxy_seals_waited_total", "counter",
		"Seals that found no durable counter reservation ready and waited for the I/O thread.",
		s.ps.seals_waited);
	e2e_prom_one(b, "e2e_proxy_seals_parked_total", "counter",
		"Seals that found no durable counter reservation ready and were parked (retried later).",
		s.ps.seals_parked);
	e2e_prom_one(b, "e2e_proxy_park_timeouts_total", "counter",
		"Parked publishes refused: no durable counter reservation within 5 s.",
		s.st.park_timeouts);
	e2e_prom_head(b, "e2e_proxy_key_service_up", "gauge",
		"1 while the key service is connected to the broker.");
	e2e_prom_u64(b, "e2e_proxy_key_service_up", NULL, (uint64_t)atomic_load_explicit(
		&px->ksv.up, memory_order_relaxed));
	{
		uint64_t c = atomic_load_explicit(&px->ksv.connects, memory_order_relaxed);

		e2e_prom_one(b, "e2e_proxy_upstream_reconnects_total", "counter",
			"Times the key service connection to the broker came back after a loss.",
			c ? c - 1 : 0);
		e2e_prom_one(b, "e2e_proxy_upstream_disconnects_total", "counter",
			"Times the key service lost its broker connection.",
			atomic_load_explicit(&px->ksv.losses, memory_order_relaxed));
	}
	e2e_prom_one(b, "e2e_proxy_reloads_total", "counter", "SIGHUP reloads.", s.st.reloads);
	e2e_prom_head(b, "e2e_proxy_draining", "gauge", "1 after SIGTERM, while draining.");
	e2e_prom_u64(b, "e2e_proxy_draining", NULL, (uint64_t)s.draining);
	if (s.have_up_days || s.have_down_days) {
		e2e_prom_head(b, "e2e_proxy_certificate_days_left", "gauge",
			"Days until the configured certificate expires.");
		if (s.have_up_days)
			e2e_prom_f64(b, "e2e_proxy_certificate_days_left", "side=\"broker\"",
				s.up_days);
		if (s.have_down_days)
			e2e_prom_f64(b, "e2e_proxy_certificate_days_left", "side=\"listen\"",
				s.down_days);
	}
	e2e_prom_head(b, "e2e_proxy_start_time_seconds", "gauge",
		"Start time of the process since the Unix epoch.");
	e2e_prom_u64(b, "e2e_proxy_start_time_seconds", NULL, px->started_ms / 1000);
	e2e_prom_histogram(b, "e2e_proxy_relay_latency_seconds",
		"From reading a publish to handing its sealed packet to the broker socket.",
		lat_s, s.st.lat, PX_LAT_BUCKETS, (double)s.st.lat_sum_ns / 1e9);
}

int proxy_metrics_start(struct proxy *px)
{
	char err[256];
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	px->started_ms = (uint64_t)ts.tv_sec * 1000U + (uint64_t)ts.tv_nsec / 1000000U;
	if (!px->cfg.metrics_listen)
		return 0;
	px->snap = calloc(1, sizeof *px->snap);
	if (!px->snap || pthread_mutex_init(&px->snap_mu, NULL) != 0) {
		free(px->snap);
		px->snap = NULL;
		plog(LOG_ERR, "metrics: out of memory");
		return -1;
	}
	px->metrics = e2e_metrics_start(px->cfg.metrics_listen, render, px, err, sizeof err);
	if (!px->metrics) {
		plog(LOG_ERR, "%s", err);
		return -1;
	}
	plog(LOG_INFO, "metrics on http://%s/metrics", px->cfg.metrics_listen);
	return 0;
}

void proxy_metrics_stop(struct proxy *px)
{
	e2e_metrics_stop(px->metrics);   /* joins the thread: no scrape after this */
	px->metrics = NULL;
	if (px->snap) {
		pthread_mutex_destroy(&px->snap_mu);
		free(px->snap);
		px->snap = NULL;
	}
}
