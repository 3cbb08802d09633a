/* Shared macros and the status codes of libe2e. */
#ifndef E2E_COMMON_H
#define E2E_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define E2E_WARN_UNUSED __attribute__((warn_unused_result))
#define E2E_API __attribute__((visibility("default")))
#else
#define E2E_WARN_UNUSED
#define E2E_API
#endif

/*
 * Every fallible libe2e function returns one of these. 0 is success; each
 * other value names one cause so callers can react without parsing text.
 */
enum e2e_status {
	E2E_OK = 0,
	E2E_ERR_ARG,          /* NULL pointer, zero size or out-of-range parameter */
	E2E_ERR_BUFFER,       /* caller buffer too small */
	E2E_ERR_MALFORMED,    /* input cannot be parsed */
	E2E_ERR_AUTH,         /* authentication failed */
	E2E_ERR_UNKNOWN_KEY,  /* no key held for this sender/scope/epoch */
	E2E_ERR_EXHAUSTED,    /* key usage limit or counter space reached: rotate */
	E2E_ERR_RESERVE,      /* the counter reservation could not be persisted */
	E2E_ERR_FULL,         /* a fixed-capacity table is full */
	E2E_ERR_EXISTS,       /* entry exists with different content */
	E2E_ERR_NOT_FOUND,    /* entry or file does not exist */
	E2E_ERR_IO,           /* read, write, fsync or rename failed (see errno) */
	E2E_ERR_PERM,         /* secret file is group/world accessible or not ours */
	E2E_ERR_CORRUPT,      /* state or key file fails validation */
	E2E_ERR_VERSION,      /* unsupported format or suite version */
	E2E_ERR_NOMEM,        /* allocation at create time failed */
	E2E_ERR_CRYPTO,       /* libsodium failed to initialise or refused a key */
	E2E_ERR_BUSY,         /* the state directory is owned by another process */
};

/** Static, human-readable text for a status; never NULL. */
E2E_API const char *e2e_strerror(enum e2e_status st);

/**
 * Parse a duration: digits and a unit (ms, s, m, h, d), e.g. "250ms", "10s",
 * "5m", "24h"; a bare number is seconds. E2E_ERR_ARG for anything else
 * (signs, blanks, other units, overflow). The one syntax of every tool.
 */
E2E_API enum e2e_status e2e_duration_parse(const char *s, uint64_t *ms) E2E_WARN_UNUSED;

/** Initialise libsodium once; safe to call repeatedly. */
E2E_API enum e2e_status e2e_init(void) E2E_WARN_UNUSED;

#ifdef __cplusplus
}
#endif

#endif
