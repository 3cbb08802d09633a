/*
 * Peer lists: the sender's `enrolled` file (subscribers and the scopes they
 * may fetch keys for) and the subscriber's `trust` file (senders it accepts).
 *
 *   enrolled:  <name> <scope-name>[,<scope-name>...] e2e1 <base64 public key>
 *              revoked <name> e2e1 <base64 public key>
 *   trust:     <name> e2e1 <base64 public key>
 *
 * Names match [A-Za-z0-9._@-]{1,64}; "revoked" is reserved in `enrolled`
 * because it starts a revocation line. A key appears at most once per file;
 * a revoked key stays listed so that it is refused forever. Names are unique
 * among active entries (a revoked "alice" may coexist with a new "alice").
 *
 * Memory: the entry array is allocated once, at parse/load time, with room
 * for the entries of the file plus @p spare more, at most E2E_ENROLL_MAX
 * (about 170 bytes each). e2e_enroll_add beyond that is E2E_ERR_FULL.
 * Saving rewrites the whole file: comments are not preserved.
 */
#ifndef E2E_ENROLL_H
#define E2E_ENROLL_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"
#include "identity.h"
#include "scopes.h"

#define E2E_ENROLL_MAX         65536U
#define E2E_SCOPE_BITMAP_BYTES (E2E_SCOPES_MAX / 8U)

enum e2e_enroll_kind {
	E2E_ENROLL_SENDER = 1,   /* the `enrolled` file */
	E2E_ENROLL_TRUST = 2,    /* the `trust` file */
};

struct e2e_enroll_entry {
	char name[E2E_NAME_MAX + 1];
	struct e2e_public pub;
	uint8_t scopes[E2E_SCOPE_BITMAP_BYTES];  /* bit (id & 7) of byte id >> 3 */
	uint8_t revoked;
	uint32_t line;                           /* line in the file, 0 if added */
};

struct e2e_enroll;

/**
 * Parse the text of an `enrolled` (@p kind E2E_ENROLL_SENDER, needs @p scopes
 * to resolve scope names) or `trust` file (@p scopes may be NULL).
 * @param err receives "<origin>:<line>: <reason>" on failure (may be NULL)
 * @return E2E_OK; E2E_ERR_MALFORMED (bad line, unknown scope), E2E_ERR_EXISTS
 *         (duplicate name or key), E2E_ERR_FULL, E2E_ERR_NOMEM, E2E_ERR_ARG.
 */
E2E_API enum e2e_status e2e_enroll_parse(struct e2e_enroll **out, enum e2e_enroll_kind kind,
	const struct e2e_scopes *scopes, const char *buf, size_t len, const char *origin,
	uint32_t spare, char *err, size_t err_cap) E2E_WARN_UNUSED;

/** Read and parse @p path; a missing file gives an empty list. */
E2E_API enum e2e_status e2e_enroll_load(struct e2e_enroll **out, enum e2e_enroll_kind kind,
	const struct e2e_scopes *scopes, const char *path, uint32_t spare,
	char *err, size_t err_cap) E2E_WARN_UNUSED;

/**
 * Write the list to @p path atomically (mode 0600). @p scopes names the
 * scope ids of an `enrolled` list; a bit without a scope is E2E_ERR_NOT_FOUND.
 */
E2E_API enum e2e_status e2e_enroll_save(const struct e2e_enroll *en,
	const struct e2e_scopes *scopes, const char *path) E2E_WARN_UNUSED;

/** Free the list; NULL is accepted. */
E2E_API void e2e_enroll_free(struct e2e_enroll *en);

E2E_API enum e2e_enroll_kind e2e_enroll_kind(const struct e2e_enroll *en);
E2E_API uint32_t e2e_enroll_count(const struct e2e_enroll *en);

/** Entry @p i in file order, or NULL; valid until the next change. */
E2E_API const struct e2e_enroll_entry *e2e_enroll_at(const struct e2e_enroll *en, uint32_t i);

/**
 * The entry (active or revoked) holding signing key @p sign_pk, or NULL.
 * A hash lookup built at load (the key service does one per request, before
 * any cryptography); candidates are compared with sodium_memcmp.
 */
E2E_API const struct e2e_enroll_entry *e2e_enroll_find_key(const struct e2e_enroll *en,
	const uint8_t sign_pk[E2E_SIGN_PK_BYTES]);

/** The active (not revoked) entry named @p name, or NULL. */
E2E_API const struct e2e_enroll_entry *e2e_enroll_find_name(const struct e2e_enroll *en,
	const char *name);

/**
 * Add an active entry. @p scopes is the bitmap of allowed scopes (ignored,
 * may be NULL, for a trust list).
 * @return E2E_OK; E2E_ERR_EXISTS if the name is active or the key is listed
 *         (also if revoked); E2E_ERR_ARG for a bad name; E2E_ERR_FULL.
 */
E2E_API enum e2e_status e2e_enroll_add(struct e2e_enroll *en, const char *name,
	const struct e2e_public *pub, const uint8_t *scopes) E2E_WARN_UNUSED;

/** Replace the scopes of active entry @p name; E2E_ERR_NOT_FOUND if absent. */
E2E_API enum e2e_status e2e_enroll_set_scopes(struct e2e_enroll *en, const char *name,
	const uint8_t scopes[E2E_SCOPE_BITMAP_BYTES]) E2E_WARN_UNUSED;

/** Delete active entry @p name entirely (e.g. untrust). */
E2E_API enum e2e_status e2e_enroll_remove(struct e2e_enroll *en, const char *name) E2E_WARN_UNUSED;

/**
 * Turn active entry @p name of an `enrolled` list into a revocation. The
 * scopes it held are copied to @p held (may be NULL) so the caller can
 * rotate them.
 */
E2E_API enum e2e_status e2e_enroll_revoke(struct e2e_enroll *en, const char *name,
	uint8_t held[E2E_SCOPE_BITMAP_BYTES]) E2E_WARN_UNUSED;

/** 1 if @p e is active and allowed scope @p scope. */
E2E_API int e2e_enroll_allows(const struct e2e_enroll_entry *e, uint8_t scope);

/** 1 if @p name matches [A-Za-z0-9._@-]{1,64}. */
E2E_API int e2e_peer_name_valid(const char *name, size_t len);

/** Set bit @p scope in a scope bitmap. */
E2E_API void e2e_scope_bitmap_set(uint8_t bm[E2E_SCOPE_BITMAP_BYTES], uint8_t scope);

/** 1 if bit @p scope is set. */
E2E_API int e2e_scope_bitmap_has(const uint8_t bm[E2E_SCOPE_BITMAP_BYTES], uint8_t scope);

#ifdef __cplusplus
}
#endif

#endif
