/*
 * One JSON object per line (e2e-sub --json), built and escaped by Jansson:
 * strings are always valid JSON (invalid UTF-8 becomes U+FFFD, control
 * characters are escaped), binary payloads go as base64, and a test for
 * "printable text" decides which.
 */
#ifndef E2E_JSONOUT_H
#define E2E_JSONOUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* An object being built; written as one line by jout_end. A field that
 * cannot be allocated is left out, never written half. */
struct jout {
	FILE *f;
	void *obj;              /* json_t *: Jansson stays out of the callers */
};

void jout_begin(struct jout *o, FILE *f);
/** Writes the object and a newline, then frees it. -1 if it could not be written. */
int jout_end(struct jout *o);

void jout_str(struct jout *o, const char *key, const char *s, size_t len);
void jout_b64(struct jout *o, const char *key, const uint8_t *p, size_t len);
void jout_u64(struct jout *o, const char *key, uint64_t v);
void jout_bool(struct jout *o, const char *key, int v);
void jout_null(struct jout *o, const char *key);

/** Whether @p p is valid UTF-8 without control characters (U+0000-001F, U+007F-009F). */
int jout_is_text(const uint8_t *p, size_t len);

#endif
