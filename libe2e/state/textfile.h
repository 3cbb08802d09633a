/*
 * Internal: the line layer shared by the text files (scopes, enrolled,
 * trust, keys). One reader splits lines into fields and skips comments and
 * blank lines; one writer measures then fills an output buffer, so the three
 * parsers and savers do not each carry their own copy of this plumbing.
 */
#ifndef E2E_TEXTFILE_H
#define E2E_TEXTFILE_H

#include <stddef.h>
#include <stdint.h>

#include "e2e/common.h"

#define E2E_TEXT_FIELDS_MAX 24U   /* "scope" id name + 16 filters fits */

struct e2e_field {
	const char *p;
	size_t len;
};

struct e2e_text {
	const char *buf;
	size_t len;
	size_t off;
	uint32_t line;           /* number of the line last returned, 1-based */
	const char *origin;      /* file name used in messages */
	char *err;               /* caller's message buffer, may be NULL */
	size_t err_cap;
};

void e2e_text_init(struct e2e_text *t, const char *buf, size_t len, const char *origin,
	char *err, size_t err_cap);

/*
 * Next entry line, split on runs of spaces and tabs. Returns E2E_OK with
 * *n > 0, or *n == 0 at the end of input. A control byte or more than
 * @p max fields is E2E_ERR_MALFORMED with the message set.
 */
enum e2e_status e2e_text_next(struct e2e_text *t, struct e2e_field *f, size_t max, size_t *n);

/* Write "<origin>:<line>: <message>" to the error buffer and return @p st. */
enum e2e_status e2e_text_fail(struct e2e_text *t, enum e2e_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Read @p path for one of the parsers under e2e_file_read's owner and mode
 * rules (with @p secret, no group/world access; without, no group/world
 * write). A missing file is E2E_OK with *buf NULL and *len 0, because every
 * one of these files means "nothing yet" when absent. Other failures write
 * "<path>: <status>" to @p err, for a refusal with the owner and mode found.
 * Free *buf with e2e_file_free (it is zeroed).
 */
enum e2e_status e2e_text_read(const char *path, int secret, uint8_t **buf, size_t *len,
	char *err, size_t err_cap);

int e2e_field_is(const struct e2e_field *f, const char *word);

/* Strict unsigned decimal: digits only, no leading zero, at most @p max. */
int e2e_field_uint(const struct e2e_field *f, uint64_t max, uint64_t *v);

/*
 * Name check: 1..@p max bytes of [a-z0-9], [A-Z] when @p upper, and the
 * punctuation in @p punct.
 */
int e2e_name_ok(const char *p, size_t len, size_t max, int upper, const char *punct);

/* Copy a field to a NUL-terminated string; 0 if it does not fit. */
int e2e_field_copy(const struct e2e_field *f, char *dst, size_t cap);

/* Padded standard base64 of exactly @p n bytes; @p out is zeroed on failure. */
int e2e_field_base64(const struct e2e_field *f, uint8_t *out, size_t n);

/*
 * Output builder. With p == NULL it only counts, so e2e_text_save can size
 * the buffer exactly in a first pass and never needs realloc (which would
 * leave copies of secret lines behind in freed memory).
 */
struct e2e_textbuf {
	char *p;
	size_t len;
	size_t cap;
	int bad;
};

void e2e_textbuf_add(struct e2e_textbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

typedef void (*e2e_text_emit_fn)(struct e2e_textbuf *b, const void *ctx);

/*
 * Run @p emit twice (measure, fill), write the result to @p path atomically
 * (mode 0600) and wipe the buffer.
 */
enum e2e_status e2e_text_save(const char *path, e2e_text_emit_fn emit, const void *ctx);

#endif
