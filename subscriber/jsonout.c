/*
 * JSON output for e2e-sub --json (see jsonout.h), through Jansson. Payloads
 * come from senders and topics from the broker, so nothing here trusts its
 * input to be valid UTF-8: Jansson refuses invalid UTF-8 in a string, so it
 * is first made valid (each bad byte becomes U+FFFD), and Jansson does all
 * the escaping.
 */
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "jsonout.h"

/*
 * Length of the UTF-8 sequence at @p s (at most @p len bytes) and its code
 * point, or 0 if it is not well-formed (overlong forms, surrogates and
 * values above U+10FFFF are refused, per RFC 3629).
 */
static size_t utf8_next(const uint8_t *s, size_t len, uint32_t *cp)
{
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t n;
	uint32_t c = s[0];

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xE0) == 0xC0) { n = 2; c &= 0x1F; }
	else if ((c & 0xF0) == 0xE0) { n = 3; c &= 0x0F; }
	else if ((c & 0xF8) == 0xF0) { n = 4; c &= 0x07; }
	else return 0;
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3F);
	}
	if (c < min[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

static int is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

int jout_is_text(const uint8_t *p, size_t len)
{
	uint32_t cp;

	for (size_t i = 0, n; i < len; i += n) {
		n = utf8_next(p + i, len - i, &cp);
		if (n == 0 || is_control(cp))
			return 0;
	}
	return 1;
}

/* Whether the whole of @p s is well-formed UTF-8 (control characters are
 * fine here: Jansson escapes them). */
static int utf8_valid(const uint8_t *s, size_t len)
{
	uint32_t cp;

	for (size_t i = 0, n; i < len; i += n)
		if ((n = utf8_next(s + i, len - i, &cp)) == 0)
			return 0;
	return 1;
}

/* A Jansson string of @p s: as it is when valid UTF-8, else with every
 * ill-formed byte replaced by U+FFFD (3 bytes: at most 3x the input). */
static json_t *utf8_string(const uint8_t *s, size_t len)
{
	static const uint8_t fffd[3] = { 0xEF, 0xBF, 0xBD };
	json_t *v = NULL;
	uint8_t *fixed;
	size_t k = 0;
	uint32_t cp;

	if (utf8_valid(s, len))
		return json_stringn((const char *)s, len);
	if (len > SIZE_MAX / 3 || !(fixed = malloc(len * 3 + 1)))
		return NULL;
	for (size_t i = 0, n; i < len; i += n) {
		n = utf8_next(s + i, len - i, &cp);
		if (n == 0) {
			memcpy(fixed + k, fffd, sizeof fffd);
			k += sizeof fffd;
			n = 1;
		} else {
			memcpy(fixed + k, s + i, n);
			k += n;
		}
	}
	v = json_stringn((const char *)fixed, k);
	free(fixed);
	return v;
}

static void put(struct jout *o, const char *k, json_t *v)
{
	/* _new steals v, also on failure (and ignores a NULL v). */
	if (o->obj && v)
		json_object_set_new(o->obj, k, v);
}

void jout_begin(struct jout *o, FILE *f)
{
	o->f = f;
	o->obj = json_object();
}

int jout_end(struct jout *o)
{
	int ret = -1;

	/* JSON_PRESERVE_ORDER: fields in the order they were added, as before. */
	if (o->obj && json_dumpf(o->obj, o->f, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0 &&
	    fputc('\n', o->f) != EOF)
		ret = 0;
	json_decref(o->obj);
	o->obj = NULL;
	return ret;
}

void jout_str(struct jout *o, const char *k, const char *s, size_t len)
{
	put(o, k, utf8_string((const uint8_t *)s, len));
}

void jout_b64(struct jout *o, const char *k, const uint8_t *p, size_t len)
{
	size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = malloc(cap);

	if (!b64)
		return;
	sodium_bin2base64(b64, cap, p, len, sodium_base64_VARIANT_ORIGINAL);
	put(o, k, json_stringn(b64, cap - 1));
	free(b64);
}

void jout_u64(struct jout *o, const char *k, uint64_t v)
{
	/* json_int_t is long long: values above its range (never for seqs,
	 * epochs or gaps, which are u32) are written as the largest one. */
	put(o, k, json_integer(v > (uint64_t)LLONG_MAX ? LLONG_MAX : (json_int_t)v));
}

void jout_bool(struct jout *o, const char *k, int v)
{
	put(o, k, json_boolean(v));
}

void jout_null(struct jout *o, const char *k)
{
	put(o, k, json_null());
}
