/*
 * Plain test helpers shared by the unit suites and the hot-path program:
 * hex, files, temporary directories and libe2e fixtures. No CUnit here, so
 * programs that must not pull in the test framework can link it too.
 */
#ifndef E2E_TESTUTIL_H
#define E2E_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "e2e/e2e.h"

/** Decode lowercase or uppercase hex; returns 0 on success, -1 on bad input or overflow. */
int tu_unhex(uint8_t *out, size_t cap, size_t *out_len, const char *hex);

/** Fresh private directory under $TMPDIR (or /tmp); malloc'd path, NULL on failure. */
char *tu_tmpdir(void);

/** Remove @p path and everything below it (no symlink following). */
void tu_rmtree(const char *path);

/** out = dir "/" name; aborts the process if it does not fit. */
void tu_path(char *out, size_t cap, const char *dir, const char *name);

/** Create or replace @p path with @p len bytes and mode @p mode; 0 on success. */
int tu_write_file(const char *path, const void *data, size_t len, mode_t mode);

/** Whole file into a malloc'd buffer (NUL-terminated for convenience); NULL on failure. */
uint8_t *tu_read_file(const char *path, size_t *len);

/** Number of directory entries other than "." and ".."; -1 on error. */
int tu_dir_entries(const char *dir);

/** Recompute the trailing BLAKE2b-256 checksum of a state file image. */
void tu_reseal(uint8_t *buf, size_t len);

/** 1 if all @p n bytes are zero. */
int tu_all_zero(const uint8_t *p, size_t n);

/** Deterministic 32-byte key: byte i = seed + i. */
void tu_key(uint8_t key[E2E_KEY_BYTES], uint8_t seed);

/** Deterministic xorshift64* generator for randomised-but-repeatable tests. */
uint64_t tu_rand(uint64_t *state);

/** A reserve callback that records its calls in memory (ctx: struct tu_reserve). */
struct tu_reserve {
	unsigned calls;
	uint64_t last;              /* last ceiling requested */
	struct e2e_keyid last_id;
	enum e2e_status fail;       /* returned instead of E2E_OK when not E2E_OK */
};
enum e2e_status tu_reserve_cb(void *ctx, const struct e2e_keyid *id, uint64_t ceiling);

/** A v1 header with the given fields (suite set). */
struct e2e_header tu_header(uint32_t sender, uint8_t scope, uint32_t epoch, uint32_t run,
	uint64_t counter, uint32_t seq);

/** Canonical verdict names of the spec, independent of e2e_verdict_name(). */
const char *tu_verdict_str(enum e2e_verdict v);

/** Parse a verdict name ("OK", "GAP", ...); 0 on success. */
int tu_verdict_parse(const char *name, enum e2e_verdict *v);


/**
 * Run @p fn(@p ctx) in a forked child: its return value as exit status
 * (0..255), 256 + the signal if it was killed (e.g. a NULL dereference),
 * -1 if fork failed. For misuse tests that must not take the suite down.
 */
int tu_child_status(int (*fn)(void *ctx), void *ctx);

struct e2e_identity;
/*
 * A subscriber's files in @p dir for a one-sender client: a fresh identity
 * saved to @p p_id ("identity.key") and a `trust` file (@p p_trust) naming a
 * fresh sender identity, returned in @p sender. 0, or -1 on any failure.
 */
int tu_subscriber_files(const char *dir, char *p_id, size_t id_cap, char *p_trust,
	size_t trust_cap, struct e2e_identity *sender);

#endif
