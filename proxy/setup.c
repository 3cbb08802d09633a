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
#include <sys/stat.h>
#include <unistd.h>

#include "e2e/envelope.h"
#include "e2e/identity.h"
#include "e2e/scopes.h"
#include "log.h"
#include "loop.h"
#include "proxy.h"

static int resolve_broker(struct proxy *px)
{
	char err[600];

	if (px_upstreams_init(&px->ups, px->cfg.broker, err, sizeof err) != 0) {
		plog(LOG_ERR, "%s", err);
		return -1;
	}
	/* The first broker names the TLS peer (unless --sni) and the logs. */
	snprintf(px->broker_host, sizeof px->broker_host, "%s", px->ups.b[0].host);
	snprintf(px->broker_port, sizeof px->broker_port, "%s", px->ups.b[0].port);
	px->broker_ai = px->ups.b[0].ai;
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
	if (ev->type == E2E_EV_ROTATED || ev->type == E2E_EV_SWITCHED) {
		struct plog_about a = { "rotation", ev->sender, ev->scope, ev->epoch, NULL };

		/* A switch on schedule to a key made ahead is not announced
		 * (SPEC 11.5): the same line says so. */
		plog_event(LOG_NOTICE, &a, "key service: rotation: sender %08x scope %u epoch %u "
			"%s", (unsigned)ev->sender, ev->scope, (unsigned)ev->epoch,
			ev->type == E2E_EV_SWITCHED ?
			"switched on schedule (made ahead, not announced)" : "announced");
	} else if (ev->type == E2E_EV_REQUEST_REFUSED) {
		/* The detail ends with the requester's key prefix (publisher.c). */
		const char *k = strstr(ev->detail, "subscriber key ");
		struct plog_about a = { "refusal", ev->sender, -1, -1, k ? k + 15 : NULL };

		plog_event(LOG_WARNING, &a, "key service: sender %08x: %s", (unsigned)ev->sender,
			ev->detail);
	} else if (ev->type == E2E_EV_CONNECTED || ev->type == E2E_EV_CONNECTION_LOST) {
		struct plog_about a = { "upstream", -1, -1, -1, NULL };

		/* Paho's broker is keylink's loopback port: name the real one. */
		plog_event(ev->type == E2E_EV_CONNECTED ? LOG_INFO : LOG_WARNING, &a,
			"key service: %s broker %s", ev->type == E2E_EV_CONNECTED ?
			"connected to" : "connection lost with",
			px->ups.n ? px->ups.b[px->link_broker].name : "?");
	} else {
		plog(ev->type == E2E_EV_ERROR ? LOG_WARNING : LOG_INFO, "key service: %s",
			ev->detail);
	}
}

/*
 * Why @p path cannot be a secret file of ours: missing, a directory, not
 * ours, or readable by others. NULL if fine. The words say what to fix
 * (never just "insecure permissions").
 */
static const char *secret_problem(const char *path, char *buf, size_t cap)
{
	struct stat sb;

	if (stat(path, &sb) != 0)
		return strerror(errno);
	if (S_ISDIR(sb.st_mode))
		return "is a directory, not a file";
	if (sb.st_uid != geteuid()) {
		snprintf(buf, cap, "owned by uid %u, but the proxy runs as uid %u (run e2e-keytool "
			"as the service user, or chown)", (unsigned)sb.st_uid, (unsigned)geteuid());
		return buf;
	}
	if (sb.st_mode & 077) {
		snprintf(buf, cap, "mode %04o: readable by group or others (chmod 600)",
			(unsigned)(sb.st_mode & 07777));
		return buf;
	}
	return NULL;
}

/* The key service's client id: configured, else derived from the sender id
 * so that two proxies (two state dirs) never share one on a broker. */
static int service_identity(struct proxy *px)
{
	struct e2e_identity idn;
	char path[4096], buf[200];
	const char *why;
	enum e2e_status st;

	if (px->cfg.service_id) {
		if (strlen(px->cfg.service_id) >= sizeof px->service_id) {
			plog(LOG_ERR, "service-id: longer than %zu characters",
				sizeof px->service_id - 1);
			return -1;
		}
		snprintf(px->service_id, sizeof px->service_id, "%s", px->cfg.service_id);
		return 0;
	}
	snprintf(px->service_id, sizeof px->service_id, "e2e-keys");
	snprintf(path, sizeof path, "%s/identity.key", px->cfg.dir);
	if ((why = secret_problem(path, buf, sizeof buf)) != NULL) {
		plog(LOG_ERR, "sender identity %s: %s", path, why);
		return -1;
	}
	st = e2e_identity_load(&idn, path);
	if (st != E2E_OK) {
		plog(LOG_ERR, "sender identity %s: %s", path, e2e_strerror(st));
		return -1;
	}
	snprintf(px->service_id, sizeof px->service_id, "e2e-keys-%08x",
		(unsigned)e2e_sender_id(&idn.pub));
	e2e_identity_wipe(&idn);
	return 0;
}

static int start_keys(struct proxy *px)
{
	struct e2e_publisher_config pc;
	char err[512] = "", lerr[sizeof px->link.err];
	const struct proxy_config *c = &px->cfg;
	const char *user = NULL, *pass = NULL;
	enum e2e_status st;
	uint_fast64_t losses;

	/* Paho speaks plain MQTT to keylink, which reaches the broker exactly
	 * like a relay does (keylink.c); credentials the same way too. */
	if (keylink_start(px) != 0)
		return -1;
	memset(&pc, 0, sizeof pc);
	pc.conn.host = "127.0.0.1";
	pc.conn.port = px->link.port;
	pc.conn.client_id = px->service_id;
	if (upstream_credentials(px, px->service_id, &user, &pass) == 0) {
		pc.conn.username = user;
		pc.conn.password = pass;
	}
	pc.dir = c->dir;
	pc.control_topic = c->control_topic;
	pc.grace_ms = c->grace_ms;
	pc.max_age_ms = c->rotate_age_ms;
	pc.max_messages = c->rotate_messages;
	pc.rotate_lead_ms = c->rotate_lead_ms;
	pc.summary_ms = c->summary_ms;
	pc.on_event = on_key_event;
	pc.on_io_done = px->io_done;   /* parked seals retry on the loop (loop.c) */
	pc.ctx = px;
	pc.err = err;
	pc.err_len = sizeof err;
	st = e2e_publisher_create(&px->keys, &pc);
	if (st != E2E_OK) {
		plog(LOG_ERR, "key service: %s", err[0] ? err : e2e_strerror(st));
		return -1;
	}
	losses = atomic_load_explicit(&px->ksv.losses, memory_order_relaxed);
	/* TCP and TLS each get connect-timeout in keylink, then the CONNACK. */
	st = e2e_publisher_connect(px->keys, c->connect_timeout_ms * 2 + 1000);
	if (st != E2E_OK) {
		char link[64];
		const char *at;

		keylink_error(px, lerr, sizeof lerr);
		/* Paho's words name its loopback URI: the operator's broker is meant. */
		snprintf(link, sizeof link, "tcp://127.0.0.1:%d", px->link.port);
		at = strstr(err, link);
		if (lerr[0])
			plog(LOG_ERR, "key service as '%s': %s", px->service_id, lerr);
		else if (at)
			plog(LOG_ERR, "key service as '%s': %.*sbroker %s:%s%s", px->service_id,
				(int)(at - err), err, px->broker_host, px->broker_port,
				at + strlen(link));
		else
			plog(LOG_ERR, "key service as '%s': %s", px->service_id,
				err[0] ? err : e2e_strerror(st));
		return -1;
	}
	/* Paho reports the connection to the waiter before its "connected"
	 * callback runs: mark it up now (READY's STATUS reads it), unless a
	 * loss came in between. */
	if (atomic_load_explicit(&px->ksv.losses, memory_order_relaxed) == losses)
		atomic_store_explicit(&px->ksv.up, 1, memory_order_relaxed);
	plog(LOG_INFO, "key service connected as '%s'", px->service_id);
	return 0;
}

int proxy_setup(struct proxy *px)
{
	px->scratch_cap = (size_t)px->cfg.max_packet + E2E_OVERHEAD_MAX;
	px->scratch = malloc(px->scratch_cap);
	pthread_mutex_init(&px->tls_mu, NULL);
	px->link.lfd = -1;
	if (!px->scratch || resolve_broker(px) != 0 || service_identity(px) != 0 ||
	    creds_load(px) != 0)
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
	return start_keys(px);
}

/* Count a problem found by --check-config (already logged). */
static void problem(int *n, int bad)
{
	if (bad)
		(*n)++;
}

static void check_dir(const char *opt, const char *dir, int *n)
{
	struct stat sb;

	if (stat(dir, &sb) != 0) {
		plog(LOG_ERR, "%s %s: %s", opt, dir, strerror(errno));
		(*n)++;
	} else if (!S_ISDIR(sb.st_mode)) {
		plog(LOG_ERR, "%s %s: not a directory", opt, dir);
		(*n)++;
	} else if (access(dir, W_OK | X_OK) != 0) {
		plog(LOG_ERR, "%s %s: not writable by uid %u: %s", opt, dir, (unsigned)geteuid(),
			strerror(errno));
		(*n)++;
	}
}

/*
 * --check-config: what the start checks, without starting: every problem is
 * logged and counted, nothing is created, bound, connected or removed (a
 * running instance with the same files is left alone).
 */
int proxy_check(struct proxy *px)
{
	static const char *state_files[] = { "scopes", "enrolled", "keys", "txstate" };
	char path[4096], buf[200], serr[512];
	const char *why;
	struct e2e_scopes *sc;
	int n = 0;

	pthread_mutex_init(&px->tls_mu, NULL);
	px->link.lfd = -1;
	problem(&n, resolve_broker(px) != 0);
	for (int i = 0; i < px->cfg.nlisten; i++) {
		char host[256], port[16];
		struct addrinfo hints = { 0 }, *ai = NULL;
		int rc;

		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
		if (e2e_hostport_split(px->cfg.listen[i], host, sizeof host, port, sizeof port)) {
			plog(LOG_ERR, "listen: '%s' is not ADDR:PORT", px->cfg.listen[i]);
			n++;
		} else if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
			plog(LOG_ERR, "listen %s: %s", px->cfg.listen[i], gai_strerror(rc));
			n++;
		}
		if (ai)
			freeaddrinfo(ai);
	}
	check_dir("dir", px->cfg.dir, &n);
	if (service_identity(px) != 0)
		n++;
	else   /* what a certificate template or a credentials line must name */
		plog(LOG_INFO, "key service client id: %s", px->service_id);
	for (size_t i = 0; i < sizeof state_files / sizeof state_files[0]; i++) {
		const char *f = state_files[i];
		struct stat sb;

		snprintf(path, sizeof path, "%s/%s", px->cfg.dir, f);
		if (stat(path, &sb) != 0 && errno == ENOENT)
			continue;   /* created at the first start (no scopes: the default table) */
		if ((why = px_file_problem(path, 0)) != NULL) {
			plog(LOG_ERR, "%s: %s", path, why);
			n++;
		} else if (sb.st_uid != geteuid()) {
			plog(LOG_ERR, "%s: owned by uid %u, but the proxy runs as uid %u (run "
				"e2e-keytool as the service user, or chown)", path,
				(unsigned)sb.st_uid, (unsigned)geteuid());
			n++;
		} else if (i > 0 && secret_problem(path, buf, sizeof buf)) {   /* not scopes */
			plog(LOG_ERR, "%s: %s", path, secret_problem(path, buf, sizeof buf));
			n++;
		}
	}
	snprintf(path, sizeof path, "%s/scopes", px->cfg.dir);
	sc = malloc(sizeof *sc);
	serr[0] = '\0';
	if (sc && px_file_problem(path, 0) == NULL &&
	    e2e_scopes_load(sc, path, serr, sizeof serr) != E2E_OK) {
		if (serr[0])
			plog(LOG_ERR, "%s", serr);   /* names the file and line */
		else
			plog(LOG_ERR, "%s: invalid", path);
		n++;
	}
	free(sc);
	problem(&n, creds_load(px) != 0);
	problem(&n, px->cfg.tls && tls_ctx_init(&px->tls, &px->cfg, px->broker_host) != 0);
	problem(&n, px->cfg.listen_tls && tls_server_init(&px->tls_down, &px->cfg) != 0);
	if (px->cfg.tls && px->cfg.cert && strstr(px->cfg.cert, "%c") && px->service_id[0]) {
		/* A certificate template: the key service needs the files of its
		 * own client id (publishers' are checked when they connect). */
		char cert[1024], key[1024];
		SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

		if (!ctx || tls_template(cert, sizeof cert, px->cfg.cert, px->service_id) != 0 ||
		    tls_template(key, sizeof key, px->cfg.key ? px->cfg.key : px->cfg.cert,
			    px->service_id) != 0 ||
		    tls_load_pair(ctx, NULL, cert, key, "cert (key service)", "key (key service)"))
			n++;
		SSL_CTX_free(ctx);
	}
	if (px->cfg.service_username && !px->cfg.service_password_file) {
		plog(LOG_ERR, "service-username needs service-password-file");
		n++;
	}
	if (px->cfg.stats_socket) {
		char d[4096];
		char *slash;

		snprintf(d, sizeof d, "%s", px->cfg.stats_socket);
		slash = strrchr(d, '/');
		if (slash && slash != d) {
			*slash = '\0';
			check_dir("stats-socket", d, &n);
		}
	}
	if (px->cfg.user && !getpwnam(px->cfg.user)) {
		plog(LOG_ERR, "user '%s' does not exist", px->cfg.user);
		n++;
	}
	return n;
}

void proxy_teardown(struct proxy *px)
{
	proxy_metrics_stop(px);   /* its thread reads px: stopped first */
	proxy_audit_free(px);
	e2e_publisher_destroy(px->keys);
	px->keys = NULL;
	keylink_stop(px);
	tls_ctx_free(&px->tls);
	tls_ctx_free(&px->tls_down);
	px_upstreams_free(&px->ups);
	px->broker_ai = NULL;
	creds_free(px);
	if (px->service_pass) {
		memset(px->service_pass, 0, strlen(px->service_pass));
		free(px->service_pass);
		px->service_pass = NULL;
	}
	free(px->scratch);
	/* Only a socket this process bound (never a running instance's). */
	if (px->cfg.stats_socket && px->statsfd >= 0)
		unlink(px->cfg.stats_socket);
	proxy_config_free(&px->cfg);
}

static int str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b));
}

/*
 * SIGHUP: the file and the same command line are read again (flags still
 * win). Applied at once: log level, max packet, limits and timeouts, drain
 * timeout, summary interval, rotation and grace, publishers' credentials, and
 * the TLS files and settings for new connections (the key service's too, at
 * its next connect) (open ones keep their session; OpenSSL
 * reference-counts the old context). Enrollment, scopes and keys are
 * reloaded by the key service on its own within a second. Every other
 * changed setting is named with "needs a restart".
 */
void proxy_reload(struct proxy *px)
{
	struct proxy_config nc, *c = &px->cfg;
	struct tls_ctx nt;
	char changed[512] = "", restart[512] = "";
	int have_nt = 0;

#define NOTE(list, name) \
	snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "", name)
	if (proxy_config_load(&nc, px->argc, px->argv) != 0) {
		plog(LOG_ERR, "SIGHUP: configuration has errors; keeping the running one");
		proxy_config_free(&nc);   /* what was parsed before the error */
		return;
	}
	if (nc.tls && tls_ctx_init(&nt, &nc, px->broker_host) != 0) {
		plog(LOG_ERR, "SIGHUP: TLS settings invalid; keeping the running ones");
		proxy_config_free(&nc);
		return;
	}
	have_nt = nc.tls;
	/* What needs a restart: said, and the running value kept. */
	{
		int ls = nc.nlisten != c->nlisten;

		for (int i = 0; !ls && i < nc.nlisten; i++)
			ls = strcmp(nc.listen[i], c->listen[i]) != 0;
		if (ls)
			NOTE(restart, "listen");
		/* The metrics thread keeps its socket: say so rather than ignore it. */
		if ((nc.metrics_listen != NULL) != (px->cfg.metrics_listen != NULL) ||
		    (nc.metrics_listen && strcmp(nc.metrics_listen, px->cfg.metrics_listen)))
			plog(LOG_WARNING, "SIGHUP: metrics-listen changed: takes effect at the next "
				"restart");
	}
	if (str_differs(nc.broker, c->broker)) NOTE(restart, "broker");
	if (nc.tls != c->tls) NOTE(restart, "tls");
	if (str_differs(nc.dir, c->dir)) NOTE(restart, "dir");
	if (str_differs(nc.control_topic, c->control_topic)) NOTE(restart, "control-topic");
	if (str_differs(nc.service_id, c->service_id)) NOTE(restart, "service-id");
	if (nc.listen_tls != c->listen_tls || str_differs(nc.listen_cert, c->listen_cert) ||
	    str_differs(nc.listen_key, c->listen_key) ||
	    str_differs(nc.listen_cafile, c->listen_cafile))
		NOTE(restart, "listen-tls/listen-cert/listen-key/listen-cafile");
	if (str_differs(nc.stats_socket, c->stats_socket)) NOTE(restart, "stats-socket");
	/* The key service's MQTT login is given to its client once, at start
	 * (its TLS settings and certificate do follow, at its next connect). */
	if (str_differs(nc.service_username, c->service_username) ||
	    str_differs(nc.service_password_file, c->service_password_file))
		NOTE(restart, "service-username/service-password-file");
	if (str_differs(nc.user, c->user)) NOTE(restart, "user");
	if (nc.syslog != c->syslog) NOTE(restart, "syslog");

	/* What applies now. */
	if (nc.log_level != c->log_level) {
		NOTE(changed, "log-level");
		c->log_level = nc.log_level;
		plog_set_level(c->log_level);
	}
	if (nc.max_packet != c->max_packet) {
		size_t cap = (size_t)nc.max_packet + E2E_OVERHEAD_MAX;
		uint8_t *sp = malloc(cap);

		if (!sp) {
			NOTE(restart, "max-packet (out of memory)");
		} else {
			NOTE(changed, "max-packet");
			free(px->scratch);
			px->scratch = sp;
			px->scratch_cap = cap;
			c->max_packet = nc.max_packet;
		}
	}
#define TAKE(field, name) \
	do { if (nc.field != c->field) { NOTE(changed, name); c->field = nc.field; } } while (0)
	TAKE(max_connections, "max-connections");
	TAKE(connect_timeout_ms, "connect-timeout");
	TAKE(idle_timeout_ms, "idle-timeout");
	TAKE(drain_timeout_ms, "drain-timeout");
	TAKE(unmapped, "unmapped");
	TAKE(summary_ms, "summary-interval");
	TAKE(rotate_age_ms, "rotate-age");
	TAKE(rotate_messages, "rotate-messages");
	TAKE(rotate_lead_ms, "rotate-lead");
	TAKE(grace_ms, "grace");
	TAKE(insecure, "insecure");
#undef TAKE
	e2e_publisher_set_policy(px->keys, c->grace_ms, c->rotate_age_ms, c->rotate_messages,
		c->summary_ms);
	e2e_publisher_set_lead(px->keys, c->rotate_lead_ms);
	/* Strings used by new connections and the TLS context: swap them in
	 * under the lock keylink takes (it reads them in its handshakes). */
	pthread_mutex_lock(&px->tls_mu);
	{
		char **mine[] = { &c->credentials, &c->cafile, &c->capath, &c->tls_min, &c->ciphers,
			&c->cert, &c->key, &c->psk, &c->psk_identity, &c->alpn, &c->sni };
		char **theirs[] = { &nc.credentials, &nc.cafile, &nc.capath, &nc.tls_min,
			&nc.ciphers, &nc.cert, &nc.key, &nc.psk, &nc.psk_identity, &nc.alpn, &nc.sni };
		static const char *names[] = { "credentials", "cafile", "capath", "tls-min",
			"ciphers", "cert", "key", "psk", "psk-identity", "alpn", "sni" };

		for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++) {
			char *t = *mine[i];

			if (str_differs(t, *theirs[i]))
				NOTE(changed, names[i]);
			*mine[i] = *theirs[i];
			*theirs[i] = t;
		}
	}
	if (c->listen_tls) {
		/* Renewed files under the same names: publishers' new TLS
		 * connections get them (the old context lives on in open ones). */
		struct tls_ctx nd;

		if (tls_server_init(&nd, c) == 0) {
			tls_ctx_free(&px->tls_down);
			px->tls_down = nd;
		} else {
			plog(LOG_ERR, "SIGHUP: listen-cert/listen-key invalid; keeping the running ones");
		}
	}
	if (have_nt) {
		tls_ctx_free(&px->tls);
		px->tls = nt;
		px->tls.cfg = &px->cfg;
		/* The context's callbacks find the struct through app data: it
		 * must point at its new home, not at the stack copy (PSK). */
		SSL_CTX_set_app_data(px->tls.ctx, &px->tls);
	}
	pthread_mutex_unlock(&px->tls_mu);
	proxy_config_free(&nc);
	if (creds_load(px) != 0)
		plog(LOG_ERR, "SIGHUP: credentials not reloaded");
	if (changed[0])
		plog(LOG_INFO, "SIGHUP: applied %s", changed);
	if (restart[0])
		plog(LOG_WARNING, "SIGHUP: changed but needs a restart (still the old value): %s",
			restart);
	/* Certificates, CA and credentials were re-read for new connections. */
	{
		struct plog_about a = { "reload", -1, -1, -1, NULL };

		plog_event(LOG_INFO, &a, "SIGHUP: reloaded (%u connection(s) kept)", px->nconns);
	}
#undef NOTE
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
