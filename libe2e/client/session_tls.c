/*
 * The session's TLS: which settings mean TLS, the ALPN list, the PSK
 * callback, and OpenSSL's own words when Paho reports a handshake failure
 * only as "Failure".
 */
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include "session.h"
#include "session_impl.h"

int e2e_session_use_tls(const struct e2e_conn_config *c)
{
	return c->tls || c->cafile || c->capath || c->certfile || c->psk_hex || c->alpn;
}

int e2e_alpn_encode(unsigned char *out, size_t cap, unsigned int *len, const char *list)
{
	size_t o = 0;
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == 0 || n > 255 || o + 1 + n > cap)
			return -1;
		out[o++] = (unsigned char)n;
		memcpy(out + o, p, n);
		o += n;
		p += n;
		if (*p == ',')
			p++;
	}
	*len = (unsigned int)o;
	return o ? 0 : -1;
}

unsigned int e2e_session_psk_cb(const char *hint, char *identity, unsigned int max_identity_len,
	unsigned char *psk, unsigned int max_psk_len, void *u)
{
	struct e2e_session *s = u;
	size_t il = strlen(s->conn.psk_identity);

	(void)hint;
	if (il + 1 > max_identity_len || s->psk_len > max_psk_len)
		return 0;
	memcpy(identity, s->conn.psk_identity, il + 1);
	memcpy(psk, s->psk, s->psk_len);
	return s->psk_len;
}

int e2e_session_ssl_error(const char *str, size_t len, void *u)
{
	struct e2e_session *s = u;
	const char *r = str;

	/* "error:0A000086:SSL routines::certificate verify failed:..." -> the words. */
	for (int i = 0; i < 4 && memchr(r, ':', len - (size_t)(r - str)); i++)
		r = (const char *)memchr(r, ':', len - (size_t)(r - str)) + 1;
	if (r >= str + len)
		r = str;
	pthread_mutex_lock(&s->lock);
	snprintf(s->tls_err, sizeof s->tls_err, "%.*s", (int)(len - (size_t)(r - str)), r);
	s->tls_err[strcspn(s->tls_err, "\n")] = '\0';
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/*
 * Paho reports a failed TLS handshake only as "Failure"/"TCP/TLS connect
 * failure": shake hands once more with OpenSSL directly, with the same
 * settings, to say why (the certificate verification result, the alert).
 * Only called after a failed connect, so it costs nothing on the good path.
 */
void e2e_session_tls_diagnose(const struct e2e_session *s, const char *host, int port, char *out,
	size_t cap)
{
	const struct e2e_conn_config *c = &s->conn;
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct timeval tv = { 5, 0 };
	char ps[16], trust[600];
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	int fd = -1, r;
	long v;

	out[0] = '\0';
	snprintf(ps, sizeof ps, "%d", port);
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, ps, &hints, &ai) != 0 || !ai)
		goto out;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
	    connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
		goto out;
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		goto out;
	if (c->cafile || c->capath)
		(void)SSL_CTX_load_verify_locations(ctx, c->cafile, c->capath);
	else
		(void)SSL_CTX_set_default_verify_paths(ctx);
	if (c->certfile && (SSL_CTX_use_certificate_chain_file(ctx, c->certfile) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, c->keyfile ? c->keyfile : c->certfile,
		    SSL_FILETYPE_PEM) != 1)) {
		snprintf(out, cap, "client certificate %s / key %s not usable", c->certfile,
			c->keyfile ? c->keyfile : c->certfile);
		goto out;
	}
	if (s->alpn_len)
		(void)SSL_CTX_set_alpn_protos(ctx, s->alpn, s->alpn_len);
	SSL_CTX_set_verify(ctx, c->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	ssl = SSL_new(ctx);
	if (!ssl || !SSL_set_fd(ssl, fd))
		goto out;
	SSL_set_tlsext_host_name(ssl, host);
	if (!c->insecure)
		(void)SSL_set1_host(ssl, host);
	ERR_clear_error();
	r = SSL_connect(ssl);
	v = SSL_get_verify_result(ssl);
	if (c->cafile)
		snprintf(trust, sizeof trust, "CA file %s", c->cafile);
	else if (c->capath)
		snprintf(trust, sizeof trust, "CA directory %s", c->capath);
	else
		snprintf(trust, sizeof trust, "the system trust store");
	if (r != 1 && !c->insecure && v != X509_V_OK) {
		snprintf(out, cap, "certificate verify failed: %s (name checked: '%s'; trusted CAs: "
			"%s)", X509_verify_cert_error_string(v), host, trust);
	} else if (r != 1 && ERR_peek_last_error()) {
		const char *why = ERR_reason_error_string(ERR_peek_last_error());

		snprintf(out, cap, "%s%s", why && strstr(why, "alert") ? "the broker sent TLS alert: " :
			"TLS handshake failed: ", why ? why : "unknown reason");
	}
out:
	ERR_clear_error();
	if (ssl)
		SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	if (ai)
		freeaddrinfo(ai);
}

