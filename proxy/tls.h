/*
 * OpenSSL side of the upstream connections: one SSL_CTX built from the
 * configuration (CA, verification, minimum version, ciphers, PSK, ALPN),
 * and per connection an SSL with SNI, hostname check and, when the
 * certificate path is a template, that client's own certificate and key.
 */
#ifndef E2E_PROXY_TLS_H
#define E2E_PROXY_TLS_H

#include <openssl/ssl.h>

#include "config.h"

struct tls_ctx {
	SSL_CTX *ctx;
	char server_name[256];
	const struct proxy_config *cfg;
	unsigned char psk[64];
	unsigned int psk_len;
	int per_client_cert;          /* cert/key contain %c */
	int cert_days;                /* days until the configured certificate expires */
	int have_cert_days;
};

/* Build from @p cfg; returns 0 or -1 after logging why. */
int tls_ctx_init(struct tls_ctx *t, const struct proxy_config *cfg, const char *host);
void tls_ctx_free(struct tls_ctx *t);

/* A new client SSL for connection of @p client_id on socket @p fd; NULL
 * after logging why (e.g. that client's certificate is missing). */
SSL *tls_new(struct tls_ctx *t, int fd, const char *client_id);

/* TLS towards publishers (listen-tls): a server context; 0 or -1 (logged). */
int tls_server_init(struct tls_ctx *t, const struct proxy_config *cfg);

/* Expand %c in @p tmpl with @p client_id (refusing '/' and '..' in ids). */
int tls_template(char *out, size_t cap, const char *tmpl, const char *client_id);

/* Why a handshake on @p ssl failed (SSL_connect returned @p r): the
 * certificate verification result with the name checked and the CA file
 * it came from, the TLS alert, or the socket error. */
void tls_why(const struct tls_ctx *t, SSL *ssl, int r, char *out, size_t cap);

/* Load a certificate chain and its key into @p ctx or @p ssl, checking
 * that they match; logs which option and file is wrong. 0 or -1. */
int tls_load_pair(SSL_CTX *ctx, SSL *ssl, const char *cert, const char *key,
	const char *cert_opt, const char *key_opt);

/* NULL if @p path is a readable file (@p want_dir: directory), else why not. */
const char *px_file_problem(const char *path, int want_dir);

/* Text of the last OpenSSL error (for logs). */
const char *tls_error(void);

#endif
