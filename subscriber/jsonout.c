/*
 * JSON output for e2e-sub --json (see jsonout.h). Payloads come from
 * senders and topics from the broker, so nothing here trusts its input to
 * be valid UTF-8.
 */
#include <sodium.h>

#include "jsonout.h"

/* Base64 is written in slices so a 256 MiB payload needs no big buffer. */
#define B64_SLICE 3072U

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

int json_is_text(const uint8_t *p, size_t len)
{
	uint32_t cp;

	for (size_t i = 0, n; i < len; i += n) {
		n = utf8_next(p + i, len - i, &cp);
		if (n == 0 || is_control(cp))
			return 0;
	}
	return 1;
}

static void key(struct json_obj *o, const char *k)
{
	fprintf(o->f, "%s\"%s\":", o->fields++ ? "," : "", k);
}

static void put_escaped(FILE *f, const uint8_t *s, size_t len)
{
	uint32_t cp;

	fputc('"', f);
	for (size_t i = 0, n; i < len; i += n) {
		n = utf8_next(s + i, len - i, &cp);
		if (n == 0) {
			fputs("\\ufffd", f);   /* one replacement per bad byte */
			n = 1;
		} else if (cp == '"' || cp == '\\') {
			fprintf(f, "\\%c", (int)cp);
		} else if (cp == '\n') {
			fputs("\\n", f);
		} else if (cp == '\t') {
			fputs("\\t", f);
		} else if (cp == '\r') {
			fputs("\\r", f);
		} else if (is_control(cp)) {
			fprintf(f, "\\u%04x", (unsigned)cp);
		} else {
			fwrite(s + i, 1, n, f);
		}
	}
	fputc('"', f);
}

void json_begin(struct json_obj *o, FILE *f)
{
	o->f = f;
	o->fields = 0;
	fputc('{', f);
}

void json_end(struct json_obj *o)
{
	fputs("}\n", o->f);
}

void json_str(struct json_obj *o, const char *k, const char *s, size_t len)
{
	key(o, k);
	put_escaped(o->f, (const uint8_t *)s, len);
}

void json_b64(struct json_obj *o, const char *k, const uint8_t *p, size_t len)
{
	char out[sodium_base64_ENCODED_LEN(B64_SLICE, sodium_base64_VARIANT_ORIGINAL)];

	key(o, k);
	fputc('"', o->f);
	/* Slices are a multiple of 3 bytes, so only the last one is padded. */
	for (size_t i = 0; i < len; i += B64_SLICE) {
		size_t n = len - i < B64_SLICE ? len - i : B64_SLICE;

		fputs(sodium_bin2base64(out, sizeof out, p + i, n, sodium_base64_VARIANT_ORIGINAL),
			o->f);
	}
	fputc('"', o->f);
}

void json_u64(struct json_obj *o, const char *k, uint64_t v)
{
	key(o, k);
	fprintf(o->f, "%llu", (unsigned long long)v);
}

void json_bool(struct json_obj *o, const char *k, int v)
{
	key(o, k);
	fputs(v ? "true" : "false", o->f);
}

void json_null(struct json_obj *o, const char *k)
{
	key(o, k);
	fputs("null", o->f);
}
