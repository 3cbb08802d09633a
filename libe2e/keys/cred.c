/*
 * Credentials and the `authorities` list (SPEC 13.1, 13.2).
 *
 * cred = u8 version || u8 kind || fp[16] || serial u64 || not_before u64 ||
 *        not_after u64 || sign_pk[32] || dh_pk[32] || kind body || sig[64]
 * kind 1: u16 r || r x (scope u8, str16 filter); kind 2: u8 n || n x scope.
 * sig = Ed25519(authority, "mqtt-e2e/v1/cred" || 0x00 || all before sig).
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "e2e/cred.h"
#include "state/fileio.h"
#include "state/textfile.h"
#include "base/wire.h"

#define B64_VARIANT sodium_base64_VARIANT_ORIGINAL
static const char cred_label[] = "mqtt-e2e/v1/cred";
static const char cred_prefix[] = "e2e-cred1";

void e2e_public_fp(uint8_t fp[E2E_FP_BYTES], const struct e2e_public *pub)
{
	static const char label[] = "mqtt-e2e/v1/fingerprint";
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, E2E_FP_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)label, sizeof label - 1);
	crypto_generichash_update(&st, pub->sign_pk, sizeof pub->sign_pk);
	crypto_generichash_update(&st, pub->dh_pk, sizeof pub->dh_pk);
	crypto_generichash_final(&st, fp, E2E_FP_BYTES);
}

/*
 * The signed message, contiguous for plain Ed25519 (not the prehashed
 * crypto_sign_init/update variant): label, 0x00, the credential without its
 * signature. @p buf holds sizeof cred_label + E2E_CRED_MAX bytes.
 */
static size_t cred_signed(uint8_t *buf, const uint8_t *p, size_t n)
{
	size_t ll = sizeof cred_label;   /* the label and its NUL: the 0x00 */

	memcpy(buf, cred_label, ll);
	memcpy(buf + ll, p, n);
	return ll + n;
}

static int spec_ok(const struct e2e_cred_spec *s)
{
	if (s->not_after_ms <= s->not_before_ms)
		return 0;
	if (s->kind == E2E_CRED_SENDER) {
		if (s->nrules == 0 || s->nrules > E2E_CRED_RULES_MAX || !s->rules)
			return 0;
		for (uint16_t i = 0; i < s->nrules; i++)
			if (!s->rules[i].filter || s->rules[i].filter_len > UINT16_MAX ||
			    !e2e_topic_filter_valid(s->rules[i].filter, s->rules[i].filter_len))
				return 0;
		return 1;
	}
	if (s->kind == E2E_CRED_SUBSCRIBER)
		return s->nscopes >= 1 && s->nscopes <= E2E_CRED_SCOPES_MAX && s->scopes;
	return 0;
}

enum e2e_status e2e_cred_issue(uint8_t *out, size_t cap, size_t *len,
	const struct e2e_cred_spec *spec, const struct e2e_identity *authority)
{
	enum e2e_status ret = E2E_ERR_ARG;
	uint8_t buf[sizeof cred_label + E2E_CRED_MAX];
	struct e2e_wr w;
	uint8_t fp[E2E_FP_BYTES];
	size_t bl;

	if (!out || !len || !spec || !authority || !authority->sign_sk || !spec_ok(spec))
		goto out;
	e2e_public_fp(fp, &authority->pub);
	e2e_wr_init(&w, out, cap);
	e2e_wr_u8(&w, E2E_CRED_VERSION);
	e2e_wr_u8(&w, spec->kind);
	e2e_wr_bytes(&w, fp, sizeof fp);
	e2e_wr_u64(&w, spec->serial);
	e2e_wr_u64(&w, spec->not_before_ms);
	e2e_wr_u64(&w, spec->not_after_ms);
	e2e_wr_bytes(&w, spec->holder.sign_pk, E2E_SIGN_PK_BYTES);
	e2e_wr_bytes(&w, spec->holder.dh_pk, E2E_DH_BYTES);
	if (spec->kind == E2E_CRED_SENDER) {
		e2e_wr_u16(&w, spec->nrules);
		for (uint16_t i = 0; i < spec->nrules; i++) {
			e2e_wr_u8(&w, spec->rules[i].scope);
			e2e_wr_u16(&w, (uint16_t)spec->rules[i].filter_len);
			e2e_wr_bytes(&w, (const uint8_t *)spec->rules[i].filter,
				spec->rules[i].filter_len);
		}
	} else {
		e2e_wr_u8(&w, spec->nscopes);
		e2e_wr_bytes(&w, spec->scopes, spec->nscopes);
	}
	if (w.off + E2E_CRED_SIG_BYTES > E2E_CRED_MAX)
		goto out;
	ret = E2E_ERR_BUFFER;
	if (w.bad || w.off + E2E_CRED_SIG_BYTES > cap)
		goto out;
	bl = cred_signed(buf, out, w.off);
	crypto_sign_detached(out + w.off, NULL, buf, bl, authority->sign_sk);
	*len = w.off + E2E_CRED_SIG_BYTES;
	ret = E2E_OK;
out:
	return ret;
}

static enum e2e_status parse_body(struct e2e_cred *c, struct e2e_rd *r)
{
	if (c->kind == E2E_CRED_SENDER) {
		c->nrules = e2e_rd_u16(r);
		if (r->bad || c->nrules == 0 || c->nrules > E2E_CRED_RULES_MAX)
			return E2E_ERR_MALFORMED;
		for (uint16_t i = 0; i < c->nrules; i++) {
			struct e2e_scope_rule *ru = &c->rules[i];
			uint16_t fl;

			ru->scope = e2e_rd_u8(r);
			fl = e2e_rd_u16(r);
			ru->filter = (const char *)e2e_rd_skip(r, fl);
			ru->filter_len = fl;
			if (r->bad || !ru->filter || !e2e_topic_filter_valid(ru->filter, fl))
				return E2E_ERR_MALFORMED;
		}
		return E2E_OK;
	}
	if (c->kind != E2E_CRED_SUBSCRIBER)
		return E2E_ERR_MALFORMED;
	c->nscopes = e2e_rd_u8(r);
	if (r->bad || c->nscopes == 0 || c->nscopes > E2E_CRED_SCOPES_MAX)
		return E2E_ERR_MALFORMED;
	e2e_rd_bytes(r, c->scopes, c->nscopes);
	return r->bad ? E2E_ERR_MALFORMED : E2E_OK;
}

enum e2e_status e2e_cred_parse(struct e2e_cred *c, const uint8_t *p, size_t len)
{
	enum e2e_status ret = E2E_ERR_ARG;
	struct e2e_rd r;

	if (!c || (!p && len))
		goto out;
	memset(c, 0, sizeof *c);
	ret = E2E_ERR_MALFORMED;
	if (len < E2E_CRED_FIXED_BYTES + 1U + E2E_CRED_SIG_BYTES || len > E2E_CRED_MAX)
		goto out;
	ret = E2E_ERR_VERSION;
	if (p[0] != E2E_CRED_VERSION)
		goto out;
	ret = E2E_ERR_MALFORMED;
	e2e_rd_init(&r, p, len - E2E_CRED_SIG_BYTES);
	e2e_rd_u8(&r);
	c->kind = e2e_rd_u8(&r);
	e2e_rd_bytes(&r, c->authority, E2E_FP_BYTES);
	c->serial = e2e_rd_u64(&r);
	c->not_before_ms = e2e_rd_u64(&r);
	c->not_after_ms = e2e_rd_u64(&r);
	e2e_rd_bytes(&r, c->holder.sign_pk, E2E_SIGN_PK_BYTES);
	e2e_rd_bytes(&r, c->holder.dh_pk, E2E_DH_BYTES);
	if (r.bad || parse_body(c, &r) != E2E_OK || e2e_rd_left(&r) != 0)
		goto out;
	c->raw = p;
	c->raw_len = len;
	ret = E2E_OK;
out:
	if (ret != E2E_OK && c)
		memset(c, 0, sizeof *c);
	return ret;
}

enum e2e_status e2e_cred_verify(const struct e2e_cred *c, const struct e2e_public *authority)
{
	uint8_t buf[sizeof cred_label + E2E_CRED_MAX];
	uint8_t fp[E2E_FP_BYTES];
	size_t n, bl;

	if (!c || !authority || !c->raw || c->raw_len < E2E_CRED_SIG_BYTES)
		return E2E_ERR_ARG;
	e2e_public_fp(fp, authority);
	if (sodium_memcmp(fp, c->authority, sizeof fp) != 0)
		return E2E_ERR_AUTH;
	n = c->raw_len - E2E_CRED_SIG_BYTES;
	if (n > E2E_CRED_MAX)
		return E2E_ERR_ARG;
	bl = cred_signed(buf, c->raw, n);
	if (crypto_sign_verify_detached(c->raw + n, buf, bl, authority->sign_pk) != 0)
		return E2E_ERR_AUTH;
	return E2E_OK;
}

int e2e_cred_current(const struct e2e_cred *c, uint64_t now_ms)
{
	return c && now_ms >= c->not_before_ms && now_ms < c->not_after_ms;
}

int e2e_cred_grants(const struct e2e_cred *c, uint8_t scope)
{
	if (!c || c->kind != E2E_CRED_SUBSCRIBER)
		return 0;
	for (uint8_t i = 0; i < c->nscopes; i++)
		if (c->scopes[i] == scope)
			return 1;
	return 0;
}

int e2e_cred_has_rule(const struct e2e_cred *c, uint8_t scope, const char *filter,
	size_t filter_len)
{
	if (!c || c->kind != E2E_CRED_SENDER || !filter)
		return 0;
	for (uint16_t i = 0; i < c->nrules; i++)
		if (c->rules[i].scope == scope && c->rules[i].filter_len == filter_len &&
		    memcmp(c->rules[i].filter, filter, filter_len) == 0)
			return 1;
	return 0;
}

enum e2e_status e2e_cred_format(char *out, size_t cap, const uint8_t *cred, size_t len)
{
	size_t pl = sizeof cred_prefix - 1;

	if (!out || !cred || len == 0 || len > E2E_CRED_MAX ||
	    cap < pl + 1 + sodium_base64_ENCODED_LEN(len, B64_VARIANT))
		return E2E_ERR_ARG;
	memcpy(out, cred_prefix, pl);
	out[pl] = ' ';
	sodium_bin2base64(out + pl + 1, cap - pl - 1, cred, len, B64_VARIANT);
	return E2E_OK;
}

enum e2e_status e2e_cred_decode(uint8_t *out, size_t cap, size_t *len, const char *text,
	size_t text_len)
{
	enum e2e_status ret = E2E_ERR_ARG;
	struct e2e_text t;
	struct e2e_field f[2];
	struct e2e_cred c;
	size_t n, found = 0, bin = 0;

	if (!out || !len || (!text && text_len))
		goto out;
	e2e_text_init(&t, text, text_len, NULL, NULL, 0);
	for (;;) {
		ret = e2e_text_next(&t, f, 2, &n);
		if (ret != E2E_OK)
			goto out;
		if (n == 0)
			break;
		ret = E2E_ERR_CORRUPT;
		if (n != 2 || !e2e_field_is(&f[0], cred_prefix) || found++ ||
		    sodium_base642bin(out, cap, f[1].p, f[1].len, NULL, &bin, NULL,
			B64_VARIANT) != 0)
			goto out;
	}
	ret = E2E_ERR_CORRUPT;
	if (found != 1 || e2e_cred_parse(&c, out, bin) != E2E_OK)
		goto out;
	*len = bin;
	ret = E2E_OK;
out:
	if (ret != E2E_OK && len)
		*len = 0;
	return ret;
}

enum e2e_status e2e_cred_load(uint8_t *out, size_t cap, size_t *len, const char *path)
{
	uint8_t *buf = NULL;
	size_t blen = 0;
	enum e2e_status ret;

	if (!path)
		return E2E_ERR_ARG;
	ret = e2e_file_read(path, 0, &buf, &blen);
	if (ret == E2E_OK)
		ret = e2e_cred_decode(out, cap, len, (const char *)buf, blen);
	e2e_file_free(buf, blen);
	return ret;
}

enum e2e_status e2e_authorities_parse(struct e2e_authorities *au, const char *buf, size_t len,
	char *err, size_t err_cap)
{
	enum e2e_status ret = E2E_ERR_ARG;
	struct e2e_text t;
	struct e2e_field f[3];
	char line[E2E_PUBLINE_MIN + E2E_NAME_MAX + 2];
	size_t n;

	if (!au)
		goto out;
	memset(au, 0, sizeof *au);
	e2e_text_init(&t, buf, len, "authorities", err, err_cap);
	for (;;) {
		struct e2e_authority *a;
		size_t used;

		ret = e2e_text_next(&t, f, 3, &n);
		if (ret != E2E_OK || n == 0)
			goto out;
		if (n < 2 || !e2e_field_is(&f[0], "e2e1") || f[1].len != 88 ||
		    (n == 3 && f[2].len > E2E_NAME_MAX)) {
			ret = e2e_text_fail(&t, E2E_ERR_CORRUPT, "not a public line (e2e1 ...)");
			goto out;
		}
		if (au->n == E2E_AUTHORITIES_MAX) {
			ret = e2e_text_fail(&t, E2E_ERR_CORRUPT, "more than %u authorities",
				E2E_AUTHORITIES_MAX);
			goto out;
		}
		used = (size_t)snprintf(line, sizeof line, "e2e1 %.*s%s%.*s", (int)f[1].len,
			f[1].p, n == 3 ? " " : "", n == 3 ? (int)f[2].len : 0, n == 3 ? f[2].p : "");
		a = &au->a[au->n];
		if (used >= sizeof line ||
		    e2e_public_parse(&a->pub, a->name, sizeof a->name, line) != E2E_OK) {
			ret = e2e_text_fail(&t, E2E_ERR_CORRUPT, "bad public line");
			goto out;
		}
		e2e_public_fp(a->fp, &a->pub);
		au->n++;
	}
out:
	if (ret != E2E_OK && au)
		memset(au, 0, sizeof *au);
	return ret;
}

enum e2e_status e2e_authorities_load(struct e2e_authorities *au, const char *path, char *err,
	size_t err_cap)
{
	uint8_t *buf = NULL;
	size_t blen = 0;
	enum e2e_status ret;

	if (!au || !path)
		return E2E_ERR_ARG;
	ret = e2e_text_read(path, 0, &buf, &blen, err, err_cap);
	if (ret == E2E_OK)
		ret = e2e_authorities_parse(au, (const char *)buf, blen, err, err_cap);
	e2e_file_free(buf, blen);
	return ret;
}

const struct e2e_authority *e2e_authorities_find(const struct e2e_authorities *au,
	const uint8_t fp[E2E_FP_BYTES])
{
	if (!au || !fp)
		return NULL;
	for (uint32_t i = 0; i < au->n && i < E2E_AUTHORITIES_MAX; i++)
		if (memcmp(au->a[i].fp, fp, E2E_FP_BYTES) == 0)
			return &au->a[i];
	return NULL;
}

enum e2e_status e2e_cred_check(struct e2e_cred *c, const uint8_t *p, size_t len,
	const struct e2e_authorities *au, uint8_t kind, uint64_t now_ms)
{
	const struct e2e_authority *a;
	enum e2e_status ret = e2e_cred_parse(c, p, len);

	if (ret != E2E_OK)
		return ret;
	if (c->kind != kind)
		return E2E_ERR_ARG;
	a = e2e_authorities_find(au, c->authority);
	if (!a)
		return E2E_ERR_NOT_FOUND;
	ret = e2e_cred_verify(c, &a->pub);
	if (ret != E2E_OK)
		return ret;
	return e2e_cred_current(c, now_ms) ? E2E_OK : E2E_ERR_EXHAUSTED;
}
