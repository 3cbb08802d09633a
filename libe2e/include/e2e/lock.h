/* State directory locks (SPEC 6.5): the short write lock every
 * read-modify-write takes, and the owner lock of a long-running sender.
 * Implemented by libe2e's state layer (state/fileio.c). */
#ifndef E2E_LOCK_H
#define E2E_LOCK_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Take the write lock of state directory @p dir ("<dir>/.lock", flock,
 * blocking; SPEC 6.5). Every read-modify-write of `keys`, `enrolled` and
 * `txstate` happens under it, by the owner and by e2e-keytool alike, so
 * neither loses the other's changes (a lost txstate update would lower a
 * counter ceiling). Held only for the change itself, never for a process
 * lifetime by a sender. *@p fd receives the lock to pass to e2e_dir_unlock.
 */
E2E_API enum e2e_status e2e_dir_lock(const char *dir, int *fd) E2E_WARN_UNUSED;
E2E_API void e2e_dir_unlock(int fd);

/**
 * Become the owner of state directory @p dir ("<dir>/lock", flock
 * LOCK_EX|LOCK_NB, SPEC 6.5): one long-running sender per directory. The
 * caller's pid is written into the file. Release with e2e_dir_unlock.
 * @param holder (may be NULL) receives the owner's pid on E2E_ERR_BUSY
 *        (0 if it could not be read)
 * @return E2E_OK; E2E_ERR_BUSY if another open file holds it (another
 *         process, or another sender of this one); E2E_ERR_PERM, E2E_ERR_IO.
 */
E2E_API enum e2e_status e2e_dir_own(const char *dir, int *fd, long *holder) E2E_WARN_UNUSED;

/**
 * The same owner lock on the lock file @p path itself (created 0644 if
 * missing): one process per state file that is not in a sender's state
 * directory, e.g. a subscriber's replay state ("<state file>.lock").
 * Returns as e2e_dir_own; release with e2e_dir_unlock.
 */
E2E_API enum e2e_status e2e_lock_own(const char *path, int *fd, long *holder) E2E_WARN_UNUSED;

#ifdef __cplusplus
}
#endif

#endif
