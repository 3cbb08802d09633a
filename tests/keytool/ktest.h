/*
 * Helpers for the keytool-layer suites (scopes, enroll, keystore): a CUnit
 * runner over a table of cases, and private temporary directories.
 */
#ifndef E2E_KTEST_H
#define E2E_KTEST_H

#include <CUnit/CUnit.h>
#include <sys/types.h>

#include "e2e/e2e.h"

struct kt_case {
	const char *name;
	CU_TestFunc fn;
};

/* Run @p cases (ends with { NULL, NULL }) as suite @p suite; exit code 0 only if all pass. */
int kt_run(const char *suite, const struct kt_case *cases);

/* Fresh mode-0700 directory under $TMPDIR or /tmp (static buffer; one at a time). */
const char *kt_tmpdir(void);

/* Remove the directory from kt_tmpdir() and everything in it. */
void kt_tmpdir_remove(void);

/* @p dir "/" @p name into a static buffer. */
const char *kt_file(const char *dir, const char *name);

/* Create or replace @p path with @p text and exactly mode @p mode; 0 on success. */
int kt_write(const char *path, const char *text, mode_t mode);

/* Permission bits of @p path, or -1. */
int kt_mode(const char *path);

/* A fresh random public key and its "e2e1 <base64>" line (cap >= E2E_PUBLINE_MIN). */
void kt_pub(struct e2e_public *pub, char *line, size_t cap);

#endif
