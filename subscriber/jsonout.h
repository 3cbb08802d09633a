/*
 * Minimal JSON writer for one object per line (e2e-sub --json): string
 * escaping that always yields valid JSON (invalid UTF-8 becomes U+FFFD),
 * base64 for binary payloads, and a test for "printable text".
 */
#ifndef E2E_JSONOUT_H
#define E2E_JSONOUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* An object being written; fields are separated as they are added. */
struct json_obj {
	FILE *f;
	int fields;
};

void json_begin(struct json_obj *o, FILE *f);
/** Ends the object and the line. */
void json_end(struct json_obj *o);

void json_str(struct json_obj *o, const char *key, const char *s, size_t len);
void json_b64(struct json_obj *o, const char *key, const uint8_t *p, size_t len);
void json_u64(struct json_obj *o, const char *key, uint64_t v);
void json_bool(struct json_obj *o, const char *key, int v);
void json_null(struct json_obj *o, const char *key);

/** Whether @p p is valid UTF-8 without control characters (U+0000-001F, U+007F-009F). */
int json_is_text(const uint8_t *p, size_t len);

#endif
