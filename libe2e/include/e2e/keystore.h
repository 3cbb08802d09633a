/*
 * The sender's payload keys: the SECRET `keys` file, one line per key:
 *
 *   key <scope-id> <epoch u32> <created-unix-ms> <not-after-unix-ms or 0> <base64 32-byte key>
 *
 * A line may end in "signed" and/or "next". The current key of a scope is
 * its highest epoch with not-after 0 that is not "next". Rotation
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
/*
 * A key made ahead of a scheduled rotation (SPEC 11.5): delivered with the
 * NEXT flag, never sealed under before it is advanced to. Its created_ms is
 * the time it is due to become current (0 = when the current key reaches
 * its message limit). In the keys file: the word "next" after the check.
 */
#define E2E_KEYSTORE_NEXT 0x02U

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
 * every current key of the scope gets not-after = @p now_ms + @p grace_ms,
 * every key made ahead (E2E_KEYSTORE_NEXT) is removed: a forced rotation.
 * @return E2E_OK; E2E_ERR_EXHAUSTED at epoch 2^32-1; E2E_ERR_FULL.
 */
E2E_API enum e2e_status e2e_keystore_rotate(struct e2e_keystore *ks, uint8_t scope,
	uint64_t now_ms, uint64_t grace_ms, uint32_t *new_epoch) E2E_WARN_UNUSED;

/** The lowest key of @p scope made ahead (E2E_KEYSTORE_NEXT), or NULL. */
E2E_API const struct e2e_keystore_entry *e2e_keystore_next(const struct e2e_keystore *ks,
	uint8_t scope);

/**
 * Make a key ahead of a scheduled rotation: epoch (highest + 1, or Unix
 * seconds if larger) with a random key, flagged E2E_KEYSTORE_NEXT, due at
 * @p from_ms (0 = unscheduled: on exhaustion), in mode @p flags
 * (E2E_KEYSTORE_SIGNED or 0).
 * @return E2E_OK; E2E_ERR_EXHAUSTED; E2E_ERR_FULL; E2E_ERR_ARG.
 */
E2E_API enum e2e_status e2e_keystore_add_ahead(struct e2e_keystore *ks, uint8_t scope,
	uint64_t now_ms, uint64_t from_ms, uint8_t flags, uint32_t *epoch) E2E_WARN_UNUSED;

/**
 * A scheduled rotation: the lowest key made ahead becomes current (its
 * created time stays the announced one unless that is 0 or in the
 * future), the current key gets not-after = @p now_ms + @p grace_ms. With
 * no key made ahead, the same as e2e_keystore_rotate. (e2e_keystore_rotate
 * itself is the forced rotation: it discards the keys made ahead.)
 */
E2E_API enum e2e_status e2e_keystore_advance(struct e2e_keystore *ks, uint8_t scope,
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
