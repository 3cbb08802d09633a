/*
 * The sender's counter reservations on disk: one record per key
 * (sender, scope, epoch) with the highest counter that may be used.
 * Written atomically (temp file, fsync, rename, fsync of the directory).
 */
#ifndef E2E_TXSTATE_H
#define E2E_TXSTATE_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"
#include "keyring.h"

/**
 * Read the reservation for @p id from @p path into @p ceiling.
 * E2E_ERR_NOT_FOUND if the file or the record is absent (a new key:
 * ceiling 0); E2E_ERR_CORRUPT if the file is damaged.
 */
E2E_API enum e2e_status e2e_txstate_get(const char *path, const struct e2e_keyid *id,
	uint64_t *ceiling) E2E_WARN_UNUSED;

/** Set the reservation for @p id (never lowers it) and persist durably. */
E2E_API enum e2e_status e2e_txstate_reserve(const char *path, const struct e2e_keyid *id,
	uint64_t ceiling) E2E_WARN_UNUSED;

/** An e2e_reserve_fn whose ctx is the path (const char *). */
E2E_API enum e2e_status e2e_txstate_reserve_cb(void *path, const struct e2e_keyid *id,
	uint64_t ceiling) E2E_WARN_UNUSED;

/**
 * The highest epoch with a reservation, per scope, for @p sender: the
 * epochs that have sealed (or may have sealed) something. A missing file
 * gives all zeros. Used so that a damaged or restored keys file never makes
 * a sender issue a new key under an epoch already used.
 */
E2E_API enum e2e_status e2e_txstate_epochs(const char *path, uint32_t sender,
	uint32_t max_epoch[256]) E2E_WARN_UNUSED;

/**
 * Record that keys @p ids exist (ceiling 0 for new records, existing ones
 * untouched), so their epochs count as used by e2e_txstate_epochs even
 * before they seal anything: a keys file that later loses them cannot make
 * the sender reissue those epochs with other keys. One write for all.
 */
E2E_API enum e2e_status e2e_txstate_note(const char *path, const struct e2e_keyid *ids,
	uint32_t n) E2E_WARN_UNUSED;

/** Drop the record of a retired key. */
E2E_API enum e2e_status e2e_txstate_forget(const char *path, const struct e2e_keyid *id) E2E_WARN_UNUSED;

#ifdef __cplusplus
}
#endif

#endif
