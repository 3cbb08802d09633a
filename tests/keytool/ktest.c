/* Test helpers for the keytool-layer suites; see ktest.h. */
#include <CUnit/Basic.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ktest.h"

static char tmpdir[PATH_MAX];

int kt_run(const char *suite, const struct kt_case *cases)
{
	CU_pSuite s;
	unsigned failed;

	if (e2e_init() != E2E_OK || CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite(suite, NULL, NULL);
	for (size_t i = 0; s && cases[i].name; i++)
		if (!CU_add_test(s, cases[i].name, cases[i].fn))
			s = NULL;
	if (!s) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}

const char *kt_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof tmpdir, "%s/e2e-kt-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		abort();
	}
	return tmpdir;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void kt_tmpdir_remove(void)
{
	if (tmpdir[0])
		(void)nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	tmpdir[0] = '\0';
}

const char *kt_file(const char *dir, const char *name)
{
	static char path[PATH_MAX];

	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
		abort();
	return path;
}

int kt_write(const char *path, const char *text, mode_t mode)
{
	size_t len = strlen(text);
	int fd;

	(void)unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return -1;
	/* fchmod, not the open mode: the umask must not hide a 0640 file. */
	if (write(fd, text, len) != (ssize_t)len || fchmod(fd, mode) != 0) {
		close(fd);
		return -1;
	}
	return close(fd);
}

int kt_mode(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (int)(sb.st_mode & 07777) : -1;
}

void kt_pub(struct e2e_public *pub, char *line, size_t cap)
{
	struct e2e_identity id;

	if (e2e_identity_generate(&id) != E2E_OK || e2e_public_format(line, cap, &id.pub,
			NULL) != E2E_OK)
		abort();
	*pub = id.pub;
	e2e_identity_destroy(&id);
}
