/*
 * Line reader and output builder for the text files; see textfile.h.
 * Format rules (protocol/kd-facts): one entry per line, '#' as the first
 * non-blank byte makes a comment line, fields separated by spaces/tabs.
 */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/fileio.h"
#include "state/textfile.h"

void e2e_text_init(struct e2e_text *t, const char *buf, size_t len, const char *origin,
	char *err, size_t err_cap)
{
	t->buf = buf;
	t->len = buf ? len : 0;
	t->off = 0;
	t->line = 0;
	t->origin = origin ? origin : "(buffer)";
	t->err = err_cap ? err : NULL;
	t->err_cap = err_cap;
	if (t->err)
		t->err[0] = '\0';
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

enum e2e_status e2e_text_next(struct e2e_text *t, struct e2e_field *f, size_t max, size_t *n)
{
	*n = 0;
	while (t->off < t->len) {
		const char *line = t->buf + t->off;
		const char *nl = memchr(line, '\n', t->len - t->off);
		size_t ll = nl ? (size_t)(nl - line) : t->len - t->off;
		size_t i = 0;

		t->off += ll + (nl ? 1U : 0U);
		t->line++;
		if (ll && line[ll - 1] == '\r')
			ll--;
		for (size_t k = 0; k < ll; k++) {
			unsigned char c = (unsigned char)line[k];

			/* NUL or escape bytes in a key file are damage, not data. */
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return e2e_text_fail(t, E2E_ERR_MALFORMED,
					"control character 0x%02x", c);
		}
		while (i < ll && is_blank(line[i]))
			i++;
		if (i == ll || line[i] == '#')
			continue;
		while (i < ll) {
			size_t start = i;

			while (i < ll && !is_blank(line[i]))
				i++;
			if (*n == max)
				return e2e_text_fail(t, E2E_ERR_MALFORMED,
					"too many fields (at most %zu)", max);
			f[*n].p = line + start;
			f[*n].len = i - start;
			(*n)++;
			while (i < ll && is_blank(line[i]))
				i++;
		}
		return E2E_OK;
	}
	return E2E_OK;
}

enum e2e_status e2e_text_fail(struct e2e_text *t, enum e2e_status st, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!t->err)
		return st;
	n = snprintf(t->err, t->err_cap, "%s:%u: ", t->origin, (unsigned)t->line);
	if (n >= 0 && (size_t)n < t->err_cap) {
		va_start(ap, fmt);
		(void)vsnprintf(t->err + n, t->err_cap - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return st;
}

enum e2e_status e2e_text_read(const char *path, int secret, uint8_t **buf, size_t *len,
	char *err, size_t err_cap)
{
	enum e2e_status st = e2e_file_read(path, secret, buf, len);

	if (st == E2E_ERR_NOT_FOUND)
		return E2E_OK;
	if (st != E2E_OK)
		e2e_file_explain(path, secret, st, err, err_cap);
	return st;
}

int e2e_field_is(const struct e2e_field *f, const char *word)
{
	size_t wl = strlen(word);

	return f->len == wl && memcmp(f->p, word, wl) == 0;
}

int e2e_field_uint(const struct e2e_field *f, uint64_t max, uint64_t *v)
{
	uint64_t x = 0;

	/* "007" would parse, but a canonical form keeps files diff-able. */
	if (f->len == 0 || f->len > 20 || (f->len > 1 && f->p[0] == '0'))
		return 0;
	for (size_t i = 0; i < f->len; i++) {
		unsigned d = (unsigned)(unsigned char)f->p[i] - '0';

		if (d > 9 || x > (UINT64_MAX - d) / 10)
			return 0;
		x = x * 10 + d;
	}
	if (x > max)
		return 0;
	*v = x;
	return 1;
}

int e2e_name_ok(const char *p, size_t len, size_t max, int upper, const char *punct)
{
	if (!p || len == 0 || len > max)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    (upper && c >= 'A' && c <= 'Z'))
			continue;
		if (c == '\0' || !strchr(punct, c))
			return 0;
	}
	return 1;
}

int e2e_field_copy(const struct e2e_field *f, char *dst, size_t cap)
{
	if (f->len >= cap)
		return 0;
	memcpy(dst, f->p, f->len);
	dst[f->len] = '\0';
	return 1;
}

int e2e_field_base64(const struct e2e_field *f, uint8_t *out, size_t n)
{
	size_t got = 0;

	/* Exactly the padded length: no whitespace, no trailing garbage. */
	if (f->len != sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL) - 1 ||
	    sodium_base642bin(out, n, f->p, f->len, NULL, &got, NULL,
			sodium_base64_VARIANT_ORIGINAL) != 0 || got != n) {
		sodium_memzero(out, n);
		return 0;
	}
	return 1;
}

void e2e_textbuf_add(struct e2e_textbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->bad)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (b->p && (size_t)n >= b->cap - b->len)) {
		b->bad = 1;
		return;
	}
	b->len += (size_t)n;
}

enum e2e_status e2e_text_save(const char *path, e2e_text_emit_fn emit, const void *ctx)
{
	struct e2e_textbuf b = { NULL, 0, 0, 0 };
	enum e2e_status ret = E2E_ERR_ARG;

	if (!path || !emit)
		goto out;
	emit(&b, ctx);
	ret = E2E_ERR_MALFORMED;
	if (b.bad)
		goto out;
	b.cap = b.len + 1;   /* vsnprintf always wants room for its NUL */
	b.len = 0;
	ret = E2E_ERR_NOMEM;
	b.p = malloc(b.cap);
	if (!b.p)
		goto out;
	emit(&b, ctx);
	ret = E2E_ERR_MALFORMED;
	if (b.bad)
		goto out;
	ret = e2e_file_write_atomic(path, (const uint8_t *)b.p, b.len, 0);
out:
	e2e_file_free((uint8_t *)b.p, b.cap);
	return ret;
}
