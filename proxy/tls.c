/* OpenSSL upstream contexts; see tls.h. */
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "alpn.h"
#include "e2e/client.h"
#include "log.h"
#include "tls.h"

const char *tls_error(void)
{
	static char buf[256];
	unsigned long e = ERR_get_error();

	if (!e)
		return "unknown TLS error";
	ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	return buf;
}

const char *px_file_problem(const char *path, int want_dir)
{
	struct stat sb;

	if (stat(path, &sb) != 0)
		return strerror(errno);
	if (want_dir && !S_ISDIR(sb.st_mode))
		return "not a directory";
	if (!want_dir && S_ISDIR(sb.st_mode))
		return "is a directory, not a file";
	if (access(path, want_dir ? R_OK | X_OK : R_OK) != 0)
		return strerror(errno);
	return NULL;
}

/* OpenSSL's reason for the last error, without the "error:0A000086:..." prefix. */
static const char *reason(void)
{
	static char buf[256];
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	if (!e)
		snprintf(buf, sizeof buf, "unknown TLS error");
	else if (r)
		snprintf(buf, sizeof buf, "%s", r);
	else
		ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	return buf;
}

void tls_why(const struct tls_ctx *t, SSL *ssl, int r, char *out, size_t cap)
{
	const struct proxy_config *c = t->cfg;
	int serr = SSL_get_error(ssl, r), err = errno;
	long v = SSL_get_verify_result(ssl);
	unsigned long e = ERR_peek_last_error();
	char trust[1100];

	if (c->cafile)
		snprintf(trust, sizeof trust, "CA file %s", c->cafile);
	else if (c->capath)
		snprintf(trust, sizeof trust, "CA directory %s", c->capath);
	else
		snprintf(trust, sizeof trust, "the system trust store");
	if (!c->psk && !c->insecure && v != X509_V_OK) {
		/* The verification result says what is wrong with the certificate. */
		snprintf(out, cap, "certificate verify failed: %s (name checked: '%s'; trusted "
			"CAs: %s)", X509_verify_cert_error_string(v), t->server_name, trust);
		ERR_clear_error();
	} else if (e) {
		const char *why = reason();
		const char *hint = "";

		if (strstr(why, "wrong version number") || strstr(why, "packet length too long"))
			hint = " (the broker port does not speak TLS? 'tls no' for plain MQTT)";
		else if (strstr(why, "protocol version") || strstr(why, "unsupported protocol") ||
			 strstr(why, "no protocols available"))
			hint = c->tls_min ? " (tls-min is set: the broker does not offer that version)" :
				" (the broker offers no TLS version >= 1.2)";
		else if (strstr(why, "no shared cipher") || strstr(why, "handshake failure"))
			hint = c->ciphers ? " (check 'ciphers')" : "";
		snprintf(out, cap, "%s%s%s", strstr(why, "alert") ? "the broker sent TLS alert: " :
			"", why, hint);
	} else if (serr == SSL_ERROR_SYSCALL && (err == EAGAIN || err == EWOULDBLOCK)) {
		snprintf(out, cap, "no TLS answer within connect-timeout");
	} else if (serr == SSL_ERROR_SYSCALL && err && r < 0) {
		snprintf(out, cap, "handshake failed: %s", strerror(err));
	} else {
		snprintf(out, cap, "the broker closed the connection during the TLS handshake%s",
			c->psk ? " (wrong psk or psk-identity?)" : "");
	}
}

int tls_template(char *out, size_t cap, const char *tmpl, const char *client_id)
{
	size_t o = 0;

	/* A client id is chosen by the (untrusted) device: never a path. */
	if (strchr(client_id, '/') || strstr(client_id, "..") || !*client_id)
		return -1;
	for (const char *p = tmpl; *p; p++) {
		const char *add = p;
		size_t n = 1;

		if (p[0] == '%' && p[1] == 'c') {
			add = client_id;
			n = strlen(client_id);
			p++;
		}
		if (o + n >= cap)
			return -1;
		memcpy(out + o, add, n);
		o += n;
	}
	out[o] = '\0';
	return 0;
}

static unsigned int psk_cb(SSL *ssl, const char *hint, char *identity,
	unsigned int max_identity_len, unsigned char *psk, unsigned int max_psk_len)
{
	struct tls_ctx *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	size_t il = strlen(t->cfg->psk_identity);

	(void)hint;
	if (il + 1 > max_identity_len || t->psk_len > max_psk_len)
		return 0;
	memcpy(identity, t->cfg->psk_identity, il + 1);
	memcpy(psk, t->psk, t->psk_len);
	return t->psk_len;
}

/* Warn before a certificate expires (30 days); remember the days left for the stats. */
static void check_expiry(struct tls_ctx *t, const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;
	int days = 0, secs = 0;

	if (!f)
		return;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x)
		return;
	if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x))) {
		t->cert_days = days < 0 || secs < 0 ? (days < 0 ? days : -1) : days;
		t->have_cert_days = 1;
		if (days < 0 || secs < 0)
			plog(LOG_ERR, "certificate %s has EXPIRED", path);
		else if (days < 30)
			plog(LOG_WARNING, "certificate %s expires in %d days", path, days);
	}
	X509_free(x);
}

/*
 * Record buffers and reads, for both directions. No SSL_MODE_RELEASE_BUFFERS:
 * it frees and reallocates the record buffers around every record, i.e. per
 * message; conn_trim() gives them back once a connection has been idle for a
 * second instead. Read-ahead: one read() per batch of records, not two per
 * record.
 */
static void ctx_buffers(SSL_CTX *ctx)
{
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(ctx, 1);
}

int tls_load_pair(SSL_CTX *ctx, SSL *ssl, const char *cert, const char *key,
	const char *cert_opt, const char *key_opt)
{
	const char *why;

	/* Each failure names the option and the file, and says what is wrong. */
	if ((why = px_file_problem(cert, 0)) != NULL) {
		plog(LOG_ERR, "%s %s: %s", cert_opt, cert, why);
		return -1;
	}
	if ((why = px_file_problem(key, 0)) != NULL) {
		plog(LOG_ERR, "%s %s: %s", key_opt, key, why);
		return -1;
	}
	if ((ctx ? SSL_CTX_use_certificate_chain_file(ctx, cert) :
			SSL_use_certificate_chain_file(ssl, cert)) != 1) {
		plog(LOG_ERR, "%s %s: not a PEM certificate: %s", cert_opt, cert, reason());
		return -1;
	}
	if ((ctx ? SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) :
			SSL_use_PrivateKey_file(ssl, key, SSL_FILETYPE_PEM)) != 1) {
		plog(LOG_ERR, "%s %s: not a PEM private key, or it does not match %s %s: %s",
			key_opt, key, cert_opt, cert, reason());
		return -1;
	}
	if ((ctx ? SSL_CTX_check_private_key(ctx) : SSL_check_private_key(ssl)) != 1) {
		plog(LOG_ERR, "%s %s does not match %s %s", key_opt, key, cert_opt, cert);
		ERR_clear_error();
		return -1;
	}
	return 0;
}

int tls_ctx_init(struct tls_ctx *t, const struct proxy_config *cfg, const char *host)
{
	unsigned char alpn[512];
	const char *why;

	memset(t, 0, sizeof *t);
	t->cfg = cfg;
	snprintf(t->server_name, sizeof t->server_name, "%s", cfg->sni ? cfg->sni : host);
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (!t->ctx)
		goto fail;
	SSL_CTX_set_app_data(t->ctx, t);
	ctx_buffers(t->ctx);
	if (cfg->tls_min && strcmp(cfg->tls_min, "1.2") && strcmp(cfg->tls_min, "1.3")) {
		plog(LOG_ERR, "tls-min must be 1.2 or 1.3, not %s", cfg->tls_min);
		goto fail_quiet;
	}
	if (!SSL_CTX_set_min_proto_version(t->ctx, cfg->tls_min && !strcmp(cfg->tls_min, "1.3") ?
			TLS1_3_VERSION : TLS1_2_VERSION))
		goto fail;
	if (cfg->ciphers && !SSL_CTX_set_cipher_list(t->ctx, cfg->ciphers)) {
		plog(LOG_ERR, "ciphers '%s': %s", cfg->ciphers, reason());
		goto fail_quiet;
	}
	if (cfg->cafile && (why = px_file_problem(cfg->cafile, 0)) != NULL) {
		plog(LOG_ERR, "cafile %s: %s", cfg->cafile, why);
		goto fail_quiet;
	}
	if (cfg->capath && (why = px_file_problem(cfg->capath, 1)) != NULL) {
		plog(LOG_ERR, "capath %s: %s", cfg->capath, why);
		goto fail_quiet;
	}
	if (cfg->cafile || cfg->capath) {
		if (!SSL_CTX_load_verify_locations(t->ctx, cfg->cafile, cfg->capath)) {
			plog(LOG_ERR, "%s %s: no CA certificate could be loaded: %s",
				cfg->cafile ? "cafile" : "capath", cfg->cafile ? cfg->cafile :
				cfg->capath, reason());
			goto fail_quiet;
		}
	} else if (!SSL_CTX_set_default_verify_paths(t->ctx)) {
		goto fail;
	}
	if (cfg->insecure) {
		plog(LOG_WARNING, "--insecure: the broker's certificate is NOT verified");
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	}
	if (cfg->psk) {
		long len;
		unsigned char *raw = OPENSSL_hexstr2buf(cfg->psk, &len);

		if (!raw || len <= 0 || (size_t)len > sizeof t->psk) {
			OPENSSL_free(raw);
			plog(LOG_ERR, "psk must be hex, at most %zu bytes", sizeof t->psk);
			goto fail_quiet;
		}
		memcpy(t->psk, raw, (size_t)len);
		OPENSSL_clear_free(raw, (size_t)len);
		t->psk_len = (unsigned int)len;
		SSL_CTX_set_psk_client_callback(t->ctx, psk_cb);
	}
	if (cfg->alpn) {
		unsigned int n = 0;

		if (e2e_alpn_encode(alpn, sizeof alpn, &n, cfg->alpn) != 0 ||
		    SSL_CTX_set_alpn_protos(t->ctx, alpn, n) != 0) {
			plog(LOG_ERR, "bad ALPN list '%s'", cfg->alpn);
			goto fail_quiet;
		}
	}
	t->per_client_cert = cfg->cert && strstr(cfg->cert, "%c");
	if (cfg->cert && !t->per_client_cert) {
		if (tls_load_pair(t->ctx, NULL, cfg->cert, cfg->key ? cfg->key : cfg->cert, "cert",
				"key") != 0)
			goto fail_quiet;
		check_expiry(t, cfg->cert);
	}
	return 0;
fail:
	plog(LOG_ERR, "TLS setup failed: %s", tls_error());
fail_quiet:
	tls_ctx_free(t);
	return -1;
}

int tls_server_init(struct tls_ctx *t, const struct proxy_config *cfg)
{
	memset(t, 0, sizeof *t);
	t->cfg = cfg;
	t->ctx = SSL_CTX_new(TLS_server_method());
	if (!t->ctx)
		goto fail;
	ctx_buffers(t->ctx);
	if (!SSL_CTX_set_min_proto_version(t->ctx, cfg->tls_min && !strcmp(cfg->tls_min, "1.3") ?
			TLS1_3_VERSION : TLS1_2_VERSION) ||
	    (cfg->ciphers && !SSL_CTX_set_cipher_list(t->ctx, cfg->ciphers)))
		goto fail;
	if (tls_load_pair(t->ctx, NULL, cfg->listen_cert, cfg->listen_key, "listen-cert",
			"listen-key") != 0) {
		tls_ctx_free(t);
		return -1;
	}
	check_expiry(t, cfg->listen_cert);
	if (cfg->listen_cafile) {
		const char *why = px_file_problem(cfg->listen_cafile, 0);

		/* Publishers must present a certificate from this CA. */
		if (why || !SSL_CTX_load_verify_locations(t->ctx, cfg->listen_cafile, NULL)) {
			plog(LOG_ERR, "listen-cafile %s: %s", cfg->listen_cafile,
				why ? why : reason());
			tls_ctx_free(t);
			return -1;
		}
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return 0;
fail:
	plog(LOG_ERR, "TLS towards publishers: %s", tls_error());
	tls_ctx_free(t);
	return -1;
}

void tls_ctx_free(struct tls_ctx *t)
{
	SSL_CTX_free(t->ctx);
	OPENSSL_cleanse(t->psk, sizeof t->psk);
	t->ctx = NULL;
}

SSL *tls_new(struct tls_ctx *t, int fd, const char *client_id)
{
	SSL *ssl = SSL_new(t->ctx);
	char cert[1024], key[1024];

	if (!ssl) {
		plog(LOG_ERR, "SSL_new: %s", tls_error());
		return NULL;
	}
	if (t->per_client_cert) {
		if (tls_template(cert, sizeof cert, t->cfg->cert, client_id) != 0 ||
		    tls_template(key, sizeof key, t->cfg->key ? t->cfg->key : t->cfg->cert,
			    client_id) != 0) {
			plog(LOG_WARNING, "client '%s': id not usable in a certificate path", client_id);
			goto fail;
		}
		if (tls_load_pair(NULL, ssl, cert, key, "certificate", "key") != 0) {
			plog(LOG_WARNING, "client '%s': no usable certificate %s / key %s (cert/key "
				"template)", client_id, cert, key);
			goto fail;
		}
	}
	if (!t->cfg->psk) {
		/* SNI, and the name the broker's certificate must carry. */
		SSL_set_tlsext_host_name(ssl, t->server_name);
		if (!t->cfg->insecure && !SSL_set1_host(ssl, t->server_name))
			goto fail;
	}
	if (!SSL_set_fd(ssl, fd))
		goto fail;
	SSL_set_connect_state(ssl);
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}
