/*
 * Process-level set-up of e2e-proxy: the broker's address, the TLS context,
 * the key service (an e2e_publisher on its own MQTT connection, same TLS
 * settings), SIGHUP reload and dropping privileges.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e/envelope.h"
#include "log.h"
#include "loop.h"
#include "proxy.h"

static int resolve_broker(struct proxy *px)
{
	struct addrinfo hints = { 0 };
	int rc;

	if (proxy_split_hostport(px->cfg.broker, px->broker_host, sizeof px->broker_host,
			px->broker_port, sizeof px->broker_port) != 0) {
		plog(LOG_ERR, "broker: '%s' is not HOST:PORT", px->cfg.broker);
		return -1;
	}
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(px->broker_host, px->broker_port, &hints, &px->broker_ai);
	if (rc != 0) {
		plog(LOG_ERR, "broker %s: %s", px->cfg.broker, gai_strerror(rc));
		return -1;
	}
	return 0;
}

static void on_key_event(void *ctx, const struct e2e_client_event *ev)
{
	struct proxy *px = ctx;

	/* Paho's thread: the metrics and the STATUS line read these. */
	if (ev->type == E2E_EV_CONNECTED) {
		atomic_fetch_add_explicit(&px->ksv.connects, 1, memory_order_relaxed);
		atomic_store_explicit(&px->ksv.up, 1, memory_order_relaxed);
	} else if (ev->type == E2E_EV_CONNECTION_LOST) {
		atomic_fetch_add_explicit(&px->ksv.losses, 1, memory_order_relaxed);
		atomic_store_explicit(&px->ksv.up, 0, memory_order_relaxed);
	}
	if (ev->type == E2E_EV_ROTATED) {
		struct plog_about a = { "rotation", ev->sender, ev->scope, ev->epoch, NULL };

		plog_event(LOG_NOTICE, &a, "key service: rotation: sender %08x scope %u epoch %u "
			"announced", (unsigned)ev->sender, ev->scope, (unsigned)ev->epoch);
	} else if (ev->type == E2E_EV_REQUEST_REFUSED) {
		/* The detail ends with the requester's key prefix (publisher.c). */
		const char *k = strstr(ev->detail, "subscriber key ");
		struct plog_about a = { "refusal", ev->sender, -1, -1, k ? k + 15 : NULL };

		plog_event(LOG_WARNING, &a, "key service: sender %08x: %s", (unsigned)ev->sender,
			ev->detail);
	} else if (ev->type == E2E_EV_CONNECTED || ev->type == E2E_EV_CONNECTION_LOST) {
		struct plog_about a = { "upstream", -1, -1, -1, NULL };

		plog_event(ev->type == E2E_EV_CONNECTED ? LOG_INFO : LOG_WARNING, &a,
			"key service: %s", ev->detail);
	} else {
		plog(ev->type == E2E_EV_ERROR ? LOG_WARNING : LOG_INFO, "key service: %s",
			ev->detail);
	}
}

static int start_keys(struct proxy *px)
{
	struct e2e_publisher_config pc;
	char err[512] = "", cert[1024], key[1024], id[64];
	const struct proxy_config *c = &px->cfg;
	enum e2e_status st;
	uint_fast64_t losses;

	memset(&pc, 0, sizeof pc);
	snprintf(id, sizeof id, "%s", c->service_id ? c->service_id : "e2e-proxy-keys");
	pc.conn.host = px->broker_host;
	pc.conn.port = atoi(px->broker_port);
	pc.conn.client_id = id;
	pc.conn.tls = c->tls;
	pc.conn.cafile = c->cafile;
	pc.conn.capath = c->capath;
	pc.conn.insecure = c->insecure;
	pc.conn.psk_hex = c->psk;
	pc.conn.psk_identity = c->psk_identity;
	pc.conn.alpn = c->alpn;
	if (c->cert) {
		/* A per-client template gives the key service its own certificate. */
		if (tls_template(cert, sizeof cert, c->cert, id) != 0 ||
		    tls_template(key, sizeof key, c->key ? c->key : c->cert, id) != 0)
			return -1;
		pc.conn.certfile = cert;
		pc.conn.keyfile = key;
	}
	pc.dir = c->dir;
	pc.control_topic = c->control_topic;
	pc.grace_ms = c->grace_ms;
	pc.max_age_ms = c->rotate_age_ms;
	pc.max_messages = c->rotate_messages;
	pc.summary_ms = c->summary_ms;
	pc.on_event = on_key_event;
	pc.ctx = px;
	pc.err = err;
	pc.err_len = sizeof err;
	st = e2e_publisher_create(&px->keys, &pc);
	if (st != E2E_OK) {
		plog(LOG_ERR, "key service: %s", err[0] ? err : e2e_strerror(st));
		return -1;
	}
	losses = atomic_load_explicit(&px->ksv.losses, memory_order_relaxed);
	st = e2e_publisher_connect(px->keys, c->connect_timeout_ms);
	if (st != E2E_OK) {
		/* Paho reports TLS failures only as "Failure": say where to look. */
		plog(LOG_ERR, "key service: %s (check broker address and TLS settings: cafile, "
			"cert/key, psk/psk-identity, alpn; the broker must be reachable at start)",
			err[0] ? err : e2e_strerror(st));
		return -1;
	}
	/* Paho reports the connection to the waiter before its "connected"
	 * callback runs: mark it up now (READY's STATUS reads it), unless a
	 * loss came in between. */
	if (atomic_load_explicit(&px->ksv.losses, memory_order_relaxed) == losses)
		atomic_store_explicit(&px->ksv.up, 1, memory_order_relaxed);
	plog(LOG_INFO, "key service connected as '%s'", id);
	return 0;
}

int proxy_setup(struct proxy *px)
{
	px->scratch_cap = (size_t)px->cfg.max_packet + E2E_OVERHEAD_MAX;
	px->scratch = malloc(px->scratch_cap);
	if (!px->scratch || resolve_broker(px) != 0 || creds_load(px) != 0)
		return -1;
	if (px->cfg.tls && tls_ctx_init(&px->tls, &px->cfg, px->broker_host) != 0)
		return -1;
	if (px->cfg.listen_tls && tls_server_init(&px->tls_down, &px->cfg) != 0)
		return -1;
	if (!px->cfg.tls)
		plog(LOG_WARNING, "tls = no: the connection to the broker is NOT encrypted "
			"(payloads still are)");
	if (px->cfg.unmapped == UNMAPPED_PLAINTEXT)
		plog(LOG_WARNING, "unmapped = plaintext: topics in no scope are NOT encrypted");
	return px->cfg.check_only ? 0 : start_keys(px);
}

void proxy_teardown(struct proxy *px)
{
	proxy_metrics_stop(px);   /* its thread reads px: stopped first */
	proxy_audit_free(px);
	e2e_publisher_destroy(px->keys);
	px->keys = NULL;
	tls_ctx_free(&px->tls);
	tls_ctx_free(&px->tls_down);
	if (px->broker_ai)
		freeaddrinfo(px->broker_ai);
	creds_free(px);
	free(px->scratch);
	if (px->cfg.stats_socket && px->statsfd >= 0)
		unlink(px->cfg.stats_socket);
	proxy_config_free(&px->cfg);
}

/*
 * SIGHUP: certificates, CA, credentials and limits are re-read; open
 * connections keep their TLS session (OpenSSL reference-counts the old
 * context). Enrollment, scopes and keys are reloaded by the key service on
 * its own within a second. Listen and broker addresses need a restart.
 */
void proxy_reload(struct proxy *px)
{
	struct proxy_config nc;
	struct tls_ctx nt;

	/* The same command line again, so flags still win over the file. */
	if (!px->cfg.config_file) {
		plog(LOG_INFO, "SIGHUP: no config file; re-reading credentials and certificates");
		nc = px->cfg;
	} else if (proxy_config_load(&nc, px->argc, px->argv) != 0) {
		plog(LOG_ERR, "SIGHUP: configuration has errors; keeping the running one");
		proxy_config_free(&nc);   /* what was parsed before the error */
		return;
	}
	if (nc.tls && tls_ctx_init(&nt, px->cfg.config_file ? &nc : &px->cfg, px->broker_host) != 0) {
		plog(LOG_ERR, "SIGHUP: TLS settings invalid; keeping the running ones");
		if (px->cfg.config_file)
			proxy_config_free(&nc);
		return;
	}
	if (px->cfg.config_file) {
		/* Take over what can change at run time. */
		char *cf = px->cfg.credentials;

		px->cfg.credentials = nc.credentials;
		nc.credentials = cf;
		px->cfg.max_connections = nc.max_connections;
		px->cfg.connect_timeout_ms = nc.connect_timeout_ms;
		px->cfg.idle_timeout_ms = nc.idle_timeout_ms;
		px->cfg.unmapped = nc.unmapped;
		/* The metrics thread keeps its socket: say so rather than ignore it. */
		if ((nc.metrics_listen != NULL) != (px->cfg.metrics_listen != NULL) ||
		    (nc.metrics_listen && strcmp(nc.metrics_listen, px->cfg.metrics_listen)))
			plog(LOG_WARNING, "SIGHUP: metrics-listen changed: takes effect at the next "
				"restart");
	}
	if (nc.tls) {
		tls_ctx_free(&px->tls);
		px->tls = nt;
		px->tls.cfg = &px->cfg;
		/* The context's callbacks find the struct through app data: it
		 * must point at its new home, not at the stack copy (PSK). */
		SSL_CTX_set_app_data(px->tls.ctx, &px->tls);
	}
	if (px->cfg.config_file)
		proxy_config_free(&nc);
	if (creds_load(px) != 0)
		plog(LOG_ERR, "SIGHUP: credentials not reloaded");
	{
		struct plog_about a = { "reload", -1, -1, -1, NULL };

		plog_event(LOG_INFO, &a, "SIGHUP: reloaded (%u connection(s) kept)", px->nconns);
	}
}

int proxy_drop_privileges(const struct proxy *px)
{
	struct passwd *pw;

	if (!px->cfg.user)
		return 0;
	pw = getpwnam(px->cfg.user);
	if (!pw) {
		plog(LOG_ERR, "user '%s' does not exist", px->cfg.user);
		return -1;
	}
	if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		plog(LOG_ERR, "cannot drop privileges to %s: %s", px->cfg.user, strerror(errno));
		return -1;
	}
	plog(LOG_INFO, "running as %s", px->cfg.user);
	return 0;
}
