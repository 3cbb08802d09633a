/* Plain helpers for the tests: see testutil.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "testutil.h"
#include "e2e/enroll.h"
#include "e2e/identity.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int tu_unhex(uint8_t *out, size_t cap, size_t *out_len, const char *hex)
{
	size_t n;

	if (!hex)
		return -1;
	n = strlen(hex);
	if (n % 2 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	if (out_len)
		*out_len = n / 2;
	return 0;
}

char *tu_tmpdir(void)
{
	/* Not mkdtemp: glibc draws its random name by rejection sampling, so its
	 * number of getrandom calls varies from run to run, and the hot-path
	 * test compares syscall counts exactly. The pid and a counter are unique
	 * here; mkdir fails on anything already there (a planted symlink too). */
	static unsigned seq;
	const char *base = getenv("TMPDIR");
	char *path;
	size_t n;

	if (!base || !*base)
		base = "/tmp";
	n = strlen(base) + sizeof "/e2e-test--" + 2 * 20;
	path = malloc(n);
	if (!path)
		return NULL;
	for (int i = 0; i < 1000; i++) {
		snprintf(path, n, "%s/e2e-test-%ld-%u", base, (long)getpid(), seq++);
		if (mkdir(path, 0700) == 0)
			return path;
		if (errno != EEXIST)
			break;
	}
	free(path);
	return NULL;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) ? -1 : 0;
}

void tu_rmtree(const char *path)
{
	if (path)
		(void)nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void tu_path(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= cap) {
		fprintf(stderr, "tu_path: path too long\n");
		abort();
	}
}

int tu_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	const uint8_t *p = data;
	int fd, ret = -1;

	(void)unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto out;
		p += w;
		len -= (size_t)w;
	}
	/* open() applies the umask; the tests want the exact mode. */
	ret = fchmod(fd, mode);
out:
	close(fd);
	return ret;
}

uint8_t *tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		goto out;
	buf = malloc((size_t)n + 1);
	if (!buf)
		goto out;
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = 0;
	*len = (size_t)n;
out:
	fclose(f);
	return buf;
}

int tu_dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	}
	closedir(d);
	return n;
}

void tu_reseal(uint8_t *buf, size_t len)
{
	crypto_generichash(buf + len - 32, 32, buf, len - 32, NULL, 0);
}

int tu_all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

void tu_key(uint8_t key[E2E_KEY_BYTES], uint8_t seed)
{
	for (unsigned i = 0; i < E2E_KEY_BYTES; i++)
		key[i] = (uint8_t)(seed + i);
}

uint64_t tu_rand(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

enum e2e_status tu_reserve_cb(void *ctx, const struct e2e_keyid *id, uint64_t ceiling)
{
	struct tu_reserve *r = ctx;

	r->calls++;
	r->last = ceiling;
	r->last_id = *id;
	return r->fail;
}

struct e2e_header tu_header(uint32_t sender, uint8_t scope, uint32_t epoch, uint32_t run,
	uint64_t counter, uint32_t seq)
{
	struct e2e_header h;

	memset(&h, 0, sizeof h);
	h.suite = E2E_SUITE_V1_XCHACHA;
	h.scope = scope;
	h.epoch = epoch;
	h.sender = sender;
	h.run = run;
	h.counter = counter;
	h.seq = seq;
	return h;
}

static const char *const verdict_names[] = {
	[E2E_V_OK] = "OK",
	[E2E_V_DUPLICATE] = "DUPLICATE",
	[E2E_V_LATE] = "LATE",
	[E2E_V_GAP] = "GAP",
	[E2E_V_TOO_OLD] = "TOO_OLD",
	[E2E_V_FORGED] = "FORGED",
	[E2E_V_UNKNOWN_KEY] = "UNKNOWN_KEY",
	[E2E_V_MALFORMED] = "MALFORMED",
	[E2E_V_FORGOTTEN] = "FORGOTTEN",
};

const char *tu_verdict_str(enum e2e_verdict v)
{
	if ((unsigned)v < sizeof verdict_names / sizeof verdict_names[0])
		return verdict_names[v];
	return "?";
}

int tu_verdict_parse(const char *name, enum e2e_verdict *v)
{
	for (unsigned i = 0; name && i < sizeof verdict_names / sizeof verdict_names[0]; i++) {
		if (!strcmp(name, verdict_names[i])) {
			*v = (enum e2e_verdict)i;
			return 0;
		}
	}
	return -1;
}

int tu_child_status(int (*fn)(void *ctx), void *ctx)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(fn(ctx) & 0xff);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	if (WIFSIGNALED(status))
		return 256 + WTERMSIG(status);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int tu_subscriber_files(const char *dir, char *p_id, size_t id_cap, char *p_trust,
	size_t trust_cap, struct e2e_identity *sender)
{
	struct e2e_identity me;
	struct e2e_enroll *en = NULL;
	int ret = -1;

	tu_path(p_id, id_cap, dir, "identity.key");
	tu_path(p_trust, trust_cap, dir, "trust");
	if (e2e_identity_generate(&me) != E2E_OK)
		return -1;
	if (e2e_identity_generate(sender) != E2E_OK ||
	    e2e_identity_save(&me, p_id, 0) != E2E_OK ||
	    e2e_enroll_load(&en, E2E_ENROLL_TRUST, NULL, p_trust, 1, NULL, 0) != E2E_OK ||
	    e2e_enroll_add(en, "site1", &sender->pub, NULL) != E2E_OK ||
	    e2e_enroll_save(en, NULL, p_trust) != E2E_OK)
		goto out;
	ret = 0;
out:
	e2e_enroll_free(en);
	e2e_identity_wipe(&me);
	return ret;
}
