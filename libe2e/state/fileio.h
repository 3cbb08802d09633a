/*
 * The only place libe2e touches the file system: atomic replacement and
 * checked reading of small state and key files.
 */
#ifndef E2E_FILEIO_H
#define E2E_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "e2e/common.h"

#define E2E_FILE_MAX (64U << 20)   /* refuse to read larger state files */

/*
 * Replace @p path with @p data: a temporary file in the same directory
 * (O_EXCL, mode 0600), write, fsync, rename over @p path, fsync the
 * directory. On any failure the old file is untouched and the temporary
 * removed. With @p no_replace, an existing @p path is E2E_ERR_EXISTS.
 */
enum e2e_status e2e_file_write_atomic(const char *path, const uint8_t *data, size_t len,
	int no_replace);

/*
 * Read all of @p path into a fresh malloc'd buffer (*out, *out_len; free
 * with e2e_file_free which zeroes it). E2E_ERR_PERM for a symlink, a
 * non-regular file, another owner than the effective user, or mode bits
 * the kind of file forbids: with @p secret any group/other bit (keys,
 * identity, state), else group/other write (trust, enrolled, scopes: not
 * secret, but whoever can change them decides whom we trust, whom the
 * sender gives keys to and which topics are sealed). SPEC section 7.
 */
enum e2e_status e2e_file_read(const char *path, int secret, uint8_t **out, size_t *out_len);

/* The owner and mode rule of e2e_file_read, on a stat result. */
struct stat;
int e2e_file_mode_ok(const struct stat *sb, int secret);

/*
 * "<path>: <status>" into @p err; for E2E_ERR_PERM also why: a symlink,
 * not a regular file, or the owner and mode found and the ones required.
 */
void e2e_file_explain(const char *path, int secret, enum e2e_status st, char *err,
	size_t err_cap);

void e2e_file_free(uint8_t *buf, size_t len);

/* e2e_dir_lock; with @p wait 0 it never blocks: E2E_ERR_BUSY when another
 * process (e2e-keytool) holds the lock now. */
enum e2e_status e2e_dir_lock_mode(const char *dir, int *fd, int wait);

/*
 * Binary state files (SPEC 6.2, 6.3): 8-byte magic, body, BLAKE2b-256 of
 * everything before it. e2e_state_load reads @p path (0600 rules), checks
 * size, magic and checksum and returns the body inside *buf (free the
 * buffer with e2e_file_free(*buf, *len)). e2e_state_store fills in the
 * checksum (the last 32 bytes of @p buf) and writes atomically.
 */
#define E2E_STATE_MAGIC_LEN 8U
#define E2E_STATE_SUM_LEN 32U
enum e2e_status e2e_state_load(const char *path, const char magic[E2E_STATE_MAGIC_LEN],
	uint8_t **buf, size_t *len, const uint8_t **body, size_t *body_len);
enum e2e_status e2e_state_store(const char *path, uint8_t *buf, size_t len);

/* fsync(fd); in failpoint builds first sleeps E2E_FSYNC_DELAY_MS (a slow
 * disk for tests). Every fsync of libe2e goes through it. */
int e2e_file_sync(int fd);

#ifdef E2E_FAILPOINTS
/* Test builds: with E2E_FILEIO_GUARD=1, mark the calling thread as the
 * sealing thread; any state file I/O on it then ends the process. */
void e2e_fileio_mark_sealing(void);
#endif

#endif
