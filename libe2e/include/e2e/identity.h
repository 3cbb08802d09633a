/*
 * Long-term identities: an Ed25519 signing key pair and an X25519 key pair.
 * Secret files are written atomically with mode 0600 and refused on load if
 * group/world accessible or not owned by the caller (protocol/SPEC.md sec. 7).
 */
#ifndef E2E_IDENTITY_H
#define E2E_IDENTITY_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"

#define E2E_SIGN_PK_BYTES 32U
#define E2E_SIGN_SK_BYTES 64U
#define E2E_DH_BYTES      32U
#define E2E_PUB_BYTES     (E2E_SIGN_PK_BYTES + E2E_DH_BYTES)
/* "e2e1 " + base64(64 bytes, 88 chars) + NUL; a name may follow on the line */
#define E2E_PUBLINE_MIN   94U
#define E2E_NAME_MAX      64U
/* "e2e:" + 32 hex digits in 8 groups of 4 separated by ':' + NUL */
#define E2E_FINGERPRINT_LEN 44U

struct e2e_public {
	uint8_t sign_pk[E2E_SIGN_PK_BYTES];
	uint8_t dh_pk[E2E_DH_BYTES];
};

/*
 * An identity: the public keys as a plain value, the two secrets in one
 * block from sodium_malloc (guard pages around it, mlock'ed so it is not
 * swapped, excluded from core dumps where the system allows) and made
 * read-only once filled, so a stray write faults instead of changing a key.
 * Not "no access": the sender signs with sign_sk per message, and two
 * mprotect calls per message are not practical.
 *
 * Every function that fills an identity (generate, load, from_secrets)
 * treats *id as output only and allocates the block; each such identity
 * must be released with e2e_identity_destroy, exactly once. A struct that
 * was zeroed, or whose fill failed, holds nothing: destroy is a no-op on it.
 * Do not copy the struct by value to keep a second identity: both copies
 * would point at one block. The fill functions return E2E_ERR_NOMEM when no
 * guarded memory can be had (each identity takes a few pages of address
 * space), E2E_ERR_ARG on a NULL argument.
 */
struct e2e_identity {
	struct e2e_public pub;
	const uint8_t *sign_sk;      /* E2E_SIGN_SK_BYTES (seed || pk); NULL when empty */
	const uint8_t *dh_sk;        /* E2E_DH_BYTES; NULL when empty */
};

/** Fresh random identity (see above: destroy it with e2e_identity_destroy). */
E2E_API enum e2e_status e2e_identity_generate(struct e2e_identity *id) E2E_WARN_UNUSED;

/**
 * The identity of Ed25519 seed @p seed and X25519 secret @p dh_sk (test
 * vectors, key import). E2E_ERR_CORRUPT if @p dh_sk gives the zero point.
 */
E2E_API enum e2e_status e2e_identity_from_secrets(struct e2e_identity *id,
	const uint8_t seed[32], const uint8_t dh_sk[E2E_DH_BYTES]) E2E_WARN_UNUSED;

/**
 * Zero and free the secret block (sodium_free wipes it before unmapping)
 * and zero the rest of @p id. NULL or an empty identity: nothing to do.
 */
E2E_API void e2e_identity_destroy(struct e2e_identity *id);

/* The name this function had before the secrets moved to guarded memory. */
#define e2e_identity_wipe e2e_identity_destroy

/** Write @p id to @p path atomically, mode 0600. Refuses to overwrite unless @p force. */
E2E_API enum e2e_status e2e_identity_save(const struct e2e_identity *id, const char *path,
	int force) E2E_WARN_UNUSED;

/**
 * Load and validate (output only, as generate); E2E_ERR_PERM if the file is
 * readable by others or not owned by the effective user.
 */
E2E_API enum e2e_status e2e_identity_load(struct e2e_identity *id, const char *path) E2E_WARN_UNUSED;

/* Length of the secret file text e2e_identity_format writes (comment line,
 * "e2e-secret1 " and 88 base64 characters, newline); no NUL. */
#define E2E_IDENTITY_TEXT_LEN 162U

/**
 * The secret file's text (as e2e_identity_save writes it) into @p out, for
 * "genkey -o -". @p out_cap must be at least E2E_IDENTITY_TEXT_LEN; the
 * caller wipes @p out after use. No NUL is written.
 * @return E2E_OK, E2E_ERR_ARG (NULL or too small).
 */
E2E_API enum e2e_status e2e_identity_format(char *out, size_t out_cap, size_t *out_len,
	const struct e2e_identity *id) E2E_WARN_UNUSED;

/**
 * Parse secret file text (as e2e_identity_load reads it from a file: '#'
 * comments, blank lines and exactly one "e2e-secret1" line), e.g. from
 * standard input. No permission check: the caller chose the source.
 * @return E2E_OK, E2E_ERR_ARG, E2E_ERR_CORRUPT; @p id wiped on failure.
 */
E2E_API enum e2e_status e2e_identity_parse(struct e2e_identity *id, const char *text,
	size_t len) E2E_WARN_UNUSED;

/** One-line public key: "e2e1 <base64> [name]" (no newline). */
E2E_API enum e2e_status e2e_public_format(char *out, size_t out_cap,
	const struct e2e_public *pub, const char *name) E2E_WARN_UNUSED;

/** Parse a public key line; the optional name is copied to @p name. */
E2E_API enum e2e_status e2e_public_parse(struct e2e_public *pub, char *name, size_t name_cap,
	const char *line) E2E_WARN_UNUSED;

/** "e2e:xxxx:xxxx:..." — 128 bits of BLAKE2b over the public keys. */
E2E_API void e2e_public_fingerprint(char out[E2E_FINGERPRINT_LEN], const struct e2e_public *pub);

/** The 32-bit sender id carried in envelopes (SPEC section 3.3). */
E2E_API uint32_t e2e_sender_id(const struct e2e_public *pub);

#ifdef __cplusplus
}
#endif

#endif
