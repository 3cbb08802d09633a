/* Atomic writes and checked reads; see fileio.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "e2e/lock.h"
#include "state/fileio.h"

/*
 * Crash points for tests (security.md: kill -9 keeps the page cache, so
 * durability needs crashes at chosen places): E2E_FAILPOINT=<name>:<n>
 * makes the n-th passage through <name> end the process at once with
 * _exit(86), as a power cut would. Names: write:before_fsync,
 * write:before_rename, write:before_dirsync, write:done. Compiled in only
 * with meson -Dfailpoints=true (the test builds of scripts/test), so an
 * installed library has no hook an environment variable could trigger;
 * the crash tests check that the build under test has them. The only
 * process-wide state of libe2e is this counter.
 */
#ifdef E2E_FAILPOINTS
static void failpoint(const char *name)
{
	static unsigned long hits;
	const char *fp = getenv("E2E_FAILPOINT");
	size_t nl = strlen(name);

	if (!fp || strncmp(fp, name, nl) != 0 || fp[nl] != ':')
		return;
	if (++hits == strtoul(fp + nl + 1, NULL, 10))
		_exit(86);
}

/*
 * A slow disk for tests: E2E_FSYNC_DELAY_MS=<ms> delays every fsync of a
 * state file or directory (and of the fleet's journal lines, sender/
 * fleet.c), so a test can show that sealing goes on while a reservation
 * waits on the disk and scripts/bench can measure the relay meanwhile
 * (issue 15). Failpoint builds only.
 */
int e2e_file_sync(int fd)
{
	const char *d = getenv("E2E_FSYNC_DELAY_MS");

	if (d && *d) {
		unsigned long ms = strtoul(d, NULL, 10);
		struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	return fsync(fd);
}

/*
 * The relay thread never touches a file (issue 15): with
 * E2E_FILEIO_GUARD=1 the first thread that seals without waiting
 * (e2e_sender_seal_nowait, the proxy's event loop) is marked, and any
 * open, lock, read, write or sync of a state file on it ends the process
 * with _exit(87) and a note on stderr. Failpoint builds only.
 */
static _Thread_local int sealing_thread;

void e2e_fileio_mark_sealing(void)
{
	const char *g;

	if (sealing_thread)
		return;
	g = getenv("E2E_FILEIO_GUARD");
	sealing_thread = g && *g == '1' ? 1 : -1;
}

static void guard(const char *what)
{
	static const char msg[] = "e2e: file I/O on the sealing thread: ";

	if (sealing_thread != 1)
		return;
	if (write(2, msg, sizeof msg - 1) < 0 || write(2, what, strlen(what)) < 0 ||
	    write(2, "\n", 1) < 0)
		_exit(87);
	_exit(87);
}
#else
static void failpoint(const char *name)
{
	(void)name;
}

static void guard(const char *what)
{
	(void)what;
}

int e2e_file_sync(int fd)
{
	return fsync(fd);
}
#endif

static enum e2e_status write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return E2E_ERR_IO;
		p += n;
		len -= (size_t)n;
	}
	return E2E_OK;
}

/* fsync the directory holding @p path so the rename itself is durable. */
static enum e2e_status sync_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	enum e2e_status ret = E2E_ERR_IO;
	int fd;

	if (!slash) {
		strcpy(dir, ".");
	} else if (slash == path) {
		strcpy(dir, "/");
	} else {
		if ((size_t)(slash - path) >= sizeof dir)
			return E2E_ERR_ARG;
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return E2E_ERR_IO;
	if (e2e_file_sync(fd) == 0)
		ret = E2E_OK;
	close(fd);
	return ret;
}

enum e2e_status e2e_file_write_atomic(const char *path, const uint8_t *data, size_t len,
	int no_replace)
{
	char tmp[PATH_MAX];
	enum e2e_status ret = E2E_ERR_ARG;
	int fd = -1, n;

	guard("write");
	if (!path || !*path || (!data && len))
		goto out;
	n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof tmp)
		goto out;
	ret = E2E_ERR_EXISTS;
	if (no_replace && access(path, F_OK) == 0)
		goto out;
	ret = E2E_ERR_IO;
	/* A stale temp file from a crash of this same pid is safe to replace. */
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		goto out;
	ret = write_all(fd, data, len);
	if (ret != E2E_OK)
		goto out;
	failpoint("write:before_fsync");
	ret = E2E_ERR_IO;
	if (e2e_file_sync(fd) != 0)
		goto out;
	if (close(fd) != 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	failpoint("write:before_rename");
	if (no_replace) {
		/* link() fails if path appeared meanwhile: never clobber. */
		if (link(tmp, path) != 0) {
			ret = errno == EEXIST ? E2E_ERR_EXISTS : E2E_ERR_IO;
			goto out;
		}
		(void)unlink(tmp);
	} else if (rename(tmp, path) != 0) {
		goto out;
	}
	failpoint("write:before_dirsync");
	ret = sync_dir(path);
	failpoint("write:done");
out:
	if (fd >= 0)
		close(fd);
	if (ret != E2E_OK && ret != E2E_ERR_ARG)
		(void)unlink(tmp);
	return ret;
}

int e2e_file_mode_ok(const struct stat *sb, int secret)
{
	/* Others may read a public file, but nobody else may change it. */
	mode_t forbidden = secret ? 077 : 022;

	return S_ISREG(sb->st_mode) && !(sb->st_mode & forbidden) && sb->st_uid == geteuid();
}

void e2e_file_explain(const char *path, int secret, enum e2e_status st, char *err,
	size_t err_cap)
{
	struct stat sb;

	if (!err || !err_cap)
		return;
	if (st != E2E_ERR_PERM || lstat(path, &sb) != 0) {
		(void)snprintf(err, err_cap, "%s: %s", path, e2e_strerror(st));
		return;
	}
	/* Not e2e_strerror's text: it states the secret-file rule for every file. */
	if (S_ISLNK(sb.st_mode))
		(void)snprintf(err, err_cap, "%s: insecure permissions: a symbolic link (not "
			"followed: name the file itself)", path);
	else if (!S_ISREG(sb.st_mode))
		(void)snprintf(err, err_cap, "%s: insecure permissions: not a regular file", path);
	else
		(void)snprintf(err, err_cap, "%s: insecure permissions: owner uid %u, mode %04o; "
			"it must be owned by uid %u and %s (chmod %s)", path, (unsigned)sb.st_uid,
			(unsigned)(sb.st_mode & 07777), (unsigned)geteuid(),
			secret ? "not accessible to group or others" :
			"not writable by group or others", secret ? "600" : "go-w");
}

enum e2e_status e2e_file_read(const char *path, int secret, uint8_t **out, size_t *out_len)
{
	struct stat sb;
	uint8_t *buf = NULL;
	size_t got = 0;
	enum e2e_status ret = E2E_ERR_ARG;
	int fd = -1;

	guard("read");
	if (!path || !out || !out_len)
		goto out;
	*out = NULL;
	*out_len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		ret = errno == ENOENT ? E2E_ERR_NOT_FOUND :
		      errno == ELOOP ? E2E_ERR_PERM : E2E_ERR_IO;
		goto out;
	}
	ret = E2E_ERR_IO;
	if (fstat(fd, &sb) != 0)
		goto out;
	ret = E2E_ERR_PERM;
	if (!e2e_file_mode_ok(&sb, secret))
		goto out;
	ret = E2E_ERR_CORRUPT;
	if (sb.st_size < 0 || (uint64_t)sb.st_size > E2E_FILE_MAX)
		goto out;
	ret = E2E_ERR_NOMEM;
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf)
		goto out;
	ret = E2E_ERR_IO;
	while (got < (size_t)sb.st_size + 1) {
		/* Read one byte past the stat size to notice a growing file. */
		ssize_t n = read(fd, buf + got, (size_t)sb.st_size + 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	ret = E2E_ERR_CORRUPT;
	if (got != (size_t)sb.st_size)
		goto out;
	*out = buf;
	*out_len = got;
	buf = NULL;
	ret = E2E_OK;
out:
	if (buf)
		e2e_file_free(buf, (size_t)sb.st_size + 1);
	if (fd >= 0)
		close(fd);
	return ret;
}

enum e2e_status e2e_state_load(const char *path, const char magic[E2E_STATE_MAGIC_LEN],
	uint8_t **buf, size_t *len, const uint8_t **body, size_t *body_len)
{
	uint8_t sum[E2E_STATE_SUM_LEN];
	enum e2e_status ret = e2e_file_read(path, 1, buf, len);

	if (ret != E2E_OK)
		return ret;
	if (*len < E2E_STATE_MAGIC_LEN + E2E_STATE_SUM_LEN ||
	    memcmp(*buf, magic, E2E_STATE_MAGIC_LEN) != 0)
		return E2E_ERR_CORRUPT;
	crypto_generichash(sum, sizeof sum, *buf, *len - E2E_STATE_SUM_LEN, NULL, 0);
	if (sodium_memcmp(sum, *buf + *len - E2E_STATE_SUM_LEN, E2E_STATE_SUM_LEN) != 0)
		return E2E_ERR_CORRUPT;
	*body = *buf + E2E_STATE_MAGIC_LEN;
	*body_len = *len - E2E_STATE_MAGIC_LEN - E2E_STATE_SUM_LEN;
	return E2E_OK;
}

enum e2e_status e2e_state_store(const char *path, uint8_t *buf, size_t len)
{
	if (!buf || len < E2E_STATE_MAGIC_LEN + E2E_STATE_SUM_LEN)
		return E2E_ERR_ARG;
	crypto_generichash(buf + len - E2E_STATE_SUM_LEN, E2E_STATE_SUM_LEN, buf,
		len - E2E_STATE_SUM_LEN, NULL, 0);
	return e2e_file_write_atomic(path, buf, len, 0);
}

void e2e_file_free(uint8_t *buf, size_t len)
{
	if (!buf)
		return;
	sodium_memzero(buf, len);
	free(buf);
}

/*
 * A lock file holds no secret (nothing, or a pid), and anyone who may
 * enter the directory must be able to open it: e2e-keytool run as root
 * must not leave a lock the service user cannot take, which would stop
 * its counter reservations. So 0644 whatever the umask, if it is ours.
 */
static void lock_readable(int fd)
{
	struct stat sb;

	if (fstat(fd, &sb) == 0 && sb.st_uid == geteuid() && (sb.st_mode & 0777) != 0644)
		(void)fchmod(fd, 0644);
}

enum e2e_status e2e_dir_lock(const char *dir, int *fd)
{
	return e2e_dir_lock_mode(dir, fd, 1);
}

enum e2e_status e2e_dir_lock_mode(const char *dir, int *fd, int wait)
{
	char path[PATH_MAX];
	int n, f;

	guard("lock");
	if (!dir || !fd)
		return E2E_ERR_ARG;
	*fd = -1;
	n = snprintf(path, sizeof path, "%s/.lock", dir);
	if (n < 0 || (size_t)n >= sizeof path)
		return E2E_ERR_ARG;
	/* Read-only is enough to flock; see lock_readable. */
	f = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (f < 0)
		return errno == EACCES ? E2E_ERR_PERM : E2E_ERR_IO;
	lock_readable(f);
	while (flock(f, wait ? LOCK_EX : LOCK_EX | LOCK_NB) != 0) {
		if (errno != EINTR) {
			int busy = errno == EWOULDBLOCK;

			close(f);
			return busy ? E2E_ERR_BUSY : E2E_ERR_IO;
		}
	}
	*fd = f;
	return E2E_OK;
}

void e2e_dir_unlock(int fd)
{
	if (fd >= 0)
		close(fd);   /* releases the flock */
}

/* The pid an owner wrote into its lock file, or 0 if there is none yet. */
static long lock_holder(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	long pid;
	char *end;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	return end != buf && pid > 0 ? pid : 0;
}

enum e2e_status e2e_dir_own(const char *dir, int *fd, long *holder)
{
	char path[PATH_MAX];
	int n;

	guard("own");
	if (!dir || !fd)
		return E2E_ERR_ARG;
	*fd = -1;
	if (holder)
		*holder = 0;
	n = snprintf(path, sizeof path, "%s/lock", dir);
	if (n < 0 || (size_t)n >= sizeof path)
		return E2E_ERR_ARG;
	return e2e_lock_own(path, fd, holder);
}

enum e2e_status e2e_lock_own(const char *path, int *fd, long *holder)
{
	char pid[32];
	enum e2e_status ret = E2E_ERR_ARG;
	int n, f = -1;

	if (!path || !fd)
		goto out;
	*fd = -1;
	if (holder)
		*holder = 0;
	f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	/* A lock file another user created still locks; it just gets no pid. */
	if (f < 0 && errno == EACCES)
		f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (f < 0) {
		ret = errno == EACCES || errno == ELOOP ? E2E_ERR_PERM :
		      errno == ENOENT ? E2E_ERR_NOT_FOUND : E2E_ERR_IO;
		goto out;
	}
	lock_readable(f);
	while (flock(f, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EINTR)
			continue;
		ret = E2E_ERR_IO;
		if (errno == EWOULDBLOCK) {
			ret = E2E_ERR_BUSY;
			if (holder)
				*holder = lock_holder(f);
		}
		goto out;
	}
	/* For the error message of whoever comes second (best effort). */
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(f, 0) == 0 && pwrite(f, pid, (size_t)n, 0) != n)
		(void)ftruncate(f, 0);
	*fd = f;
	f = -1;
	ret = E2E_OK;
out:
	if (f >= 0)
		close(f);
	return ret;
}
