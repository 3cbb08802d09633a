/* OpenSSL upstream contexts; see tls.h. */
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>
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

int tls_ctx_init(struct tls_ctx *t, const struct proxy_config *cfg, const char *host)
{
	unsigned char alpn[512];

	memset(t, 0, sizeof *t);
	t->cfg = cfg;
	snprintf(t->server_name, sizeof t->server_name, "%s", cfg->sni ? cfg->sni : host);
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (!t->ctx)
		goto fail;
	SSL_CTX_set_app_data(t->ctx, t);
	ctx_buffers(t->ctx);
	if (!SSL_CTX_set_min_proto_version(t->ctx, cfg->tls_min && !strcmp(cfg->tls_min, "1.3") ?
			TLS1_3_VERSION : TLS1_2_VERSION))
		goto fail;
	if (cfg->tls_min && strcmp(cfg->tls_min, "1.2") && strcmp(cfg->tls_min, "1.3")) {
		plog(LOG_ERR, "tls-min must be 1.2 or 1.3, not %s", cfg->tls_min);
		goto fail_quiet;
	}
	if (cfg->ciphers && !SSL_CTX_set_cipher_list(t->ctx, cfg->ciphers))
		goto fail;
	if (cfg->cafile || cfg->capath) {
		if (!SSL_CTX_load_verify_locations(t->ctx, cfg->cafile, cfg->capath))
			goto fail;
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
		if (SSL_CTX_use_certificate_chain_file(t->ctx, cfg->cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(t->ctx, cfg->key ? cfg->key : cfg->cert,
			    SSL_FILETYPE_PEM) != 1)
			goto fail;
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
	    (cfg->ciphers && !SSL_CTX_set_cipher_list(t->ctx, cfg->ciphers)) ||
	    SSL_CTX_use_certificate_chain_file(t->ctx, cfg->listen_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(t->ctx, cfg->listen_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(t->ctx) != 1)
		goto fail;
	check_expiry(t, cfg->listen_cert);
	if (cfg->listen_cafile) {
		/* Publishers must present a certificate from this CA. */
		if (!SSL_CTX_load_verify_locations(t->ctx, cfg->listen_cafile, NULL))
			goto fail;
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
		if (SSL_use_certificate_chain_file(ssl, cert) != 1 ||
		    SSL_use_PrivateKey_file(ssl, key, SSL_FILETYPE_PEM) != 1) {
			plog(LOG_WARNING, "client '%s': certificate %s / key %s: %s", client_id, cert,
				key, tls_error());
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
