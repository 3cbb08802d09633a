/*
 * The sender's payload keys: the SECRET `keys` file, one line per key:
 *
 *   key <scope-id> <epoch u32> <created-unix-ms> <not-after-unix-ms or 0> <base64 32-byte key>
 *
 * The current key of a scope is its highest epoch with not-after 0. Rotation
 * adds epoch (highest + 1) with a fresh random key and gives the previous
 * current key a deadline of now + grace, so messages in flight stay
 * readable. The file must be mode 0600 and owned by the caller: anything
 * group/world accessible is refused (E2E_ERR_PERM), never just warned about.
 *
 * Memory: entries live in sodium_malloc memory (guard pages, mlocked) sized
 * once at load for the file's keys plus @p spare, at most E2E_KEYSTORE_MAX;
 * they are zeroed when freed. Entries stay sorted by (scope, epoch).
 */
#ifndef E2E_KEYSTORE_H
#define E2E_KEYSTORE_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"
#include "envelope.h"
#include "lock.h"

#define E2E_KEYSTORE_MAX 65536U

struct e2e_keystore_entry {
	uint8_t scope;
	uint32_t epoch;
	uint64_t created_ms;
	uint64_t not_after_ms;           /* 0: no deadline (a current key) */
	uint8_t flags;                   /* E2E_KEYSTORE_SIGNED */
	uint8_t key[E2E_KEY_BYTES];
};

/*
 * The key was made for a signed scope: every envelope under it is suite
 * 0x02 and it is delivered with the signed flag. A key keeps the mode it was
 * made in; a scope whose `sign` setting no longer matches its current key
 * is rotated (SPEC 11.5). In the keys file: an 8th field "signed".
 */
#define E2E_KEYSTORE_SIGNED 0x01U

struct e2e_keystore;

/** An empty store with room for @p capacity keys (1..E2E_KEYSTORE_MAX). */
E2E_API enum e2e_status e2e_keystore_create(struct e2e_keystore **out,
	uint32_t capacity) E2E_WARN_UNUSED;

/**
 * Parse the text of a keys file (no permission check: see _load).
 * @param err receives "<origin>:<line>: <reason>" on failure; never key bytes
 * @return E2E_OK; E2E_ERR_MALFORMED (bad line), E2E_ERR_EXISTS (an epoch
 *         twice), E2E_ERR_FULL, E2E_ERR_NOMEM, E2E_ERR_CRYPTO, E2E_ERR_ARG.
 */
E2E_API enum e2e_status e2e_keystore_parse(struct e2e_keystore **out, const char *buf,
	size_t len, const char *origin, uint32_t spare, char *err, size_t err_cap) E2E_WARN_UNUSED;

/**
 * Read and parse @p path. A missing file gives an empty store (then call
 * e2e_keystore_ensure); E2E_ERR_PERM if the file is group/world accessible
 * or owned by someone else.
 */
E2E_API enum e2e_status e2e_keystore_load(struct e2e_keystore **out, const char *path,
	uint32_t spare, char *err, size_t err_cap) E2E_WARN_UNUSED;

/** Write the store to @p path atomically, mode 0600. */
E2E_API enum e2e_status e2e_keystore_save(const struct e2e_keystore *ks,
	const char *path) E2E_WARN_UNUSED;

/** Zero and free; NULL is accepted. */
E2E_API void e2e_keystore_free(struct e2e_keystore *ks);

E2E_API uint32_t e2e_keystore_count(const struct e2e_keystore *ks);

/** Entry @p i in (scope, epoch) order, or NULL; valid until the next change. */
E2E_API const struct e2e_keystore_entry *e2e_keystore_at(const struct e2e_keystore *ks,
	uint32_t i);

/** Set the flags of key (@p scope, @p epoch); E2E_ERR_NOT_FOUND if absent. */
E2E_API enum e2e_status e2e_keystore_set_flags(struct e2e_keystore *ks, uint8_t scope,
	uint32_t epoch, uint8_t flags) E2E_WARN_UNUSED;

/** The key (@p scope, @p epoch), or NULL. */
E2E_API const struct e2e_keystore_entry *e2e_keystore_find(const struct e2e_keystore *ks,
	uint8_t scope, uint32_t epoch);

/** The current key of @p scope (highest epoch without deadline), or NULL. */
E2E_API const struct e2e_keystore_entry *e2e_keystore_current(const struct e2e_keystore *ks,
	uint8_t scope);

/**
 * Make sure @p scope has a current key: if it has none, add epoch
 * (highest + 1), i.e. 1 for a new scope. E2E_OK also when nothing changed;
 * @p created (may be NULL) says whether a key was added.
 */
E2E_API enum e2e_status e2e_keystore_ensure(struct e2e_keystore *ks, uint8_t scope,
	uint64_t now_ms, int *created) E2E_WARN_UNUSED;

/**
 * Start a new epoch for @p scope: epoch (highest + 1) with a random key;
 * every current key of the scope gets not-after = @p now_ms + @p grace_ms.
 * @return E2E_OK; E2E_ERR_EXHAUSTED at epoch 2^32-1; E2E_ERR_FULL.
 */
E2E_API enum e2e_status e2e_keystore_rotate(struct e2e_keystore *ks, uint8_t scope,
	uint64_t now_ms, uint64_t grace_ms, uint32_t *new_epoch) E2E_WARN_UNUSED;

/**
 * Never issue an epoch of @p scope at or below @p epoch (e.g. the highest
 * one txstate shows in use), even if the keys file no longer lists it:
 * ensure and rotate then pick max(highest held, floor) + 1.
 */
E2E_API void e2e_keystore_set_floor(struct e2e_keystore *ks, uint8_t scope, uint32_t epoch);

/** Remove (and zero) every key whose not-after is set and before @p now_ms; returns how many. */
E2E_API uint32_t e2e_keystore_prune(struct e2e_keystore *ks, uint64_t now_ms);

/* e2e_dir_lock, e2e_dir_unlock, e2e_dir_own: e2e/lock.h (included above). */

#ifdef __cplusplus
}
#endif

#endif
