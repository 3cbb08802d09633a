/*
 * Command-line plumbing shared by the subcommands: one option table for
 * all of them (each says which options it accepts), default directories,
 * and durations.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keytool.h"

static const struct option long_opts[] = {
	{ "dir", required_argument, NULL, 'd' },
	{ "out", required_argument, NULL, 'o' },
	{ "name", required_argument, NULL, 'n' },
	{ "scope", required_argument, NULL, 's' },
	{ "grace", required_argument, NULL, 'g' },
	{ "force", no_argument, NULL, 'f' },
	{ "fingerprint", no_argument, NULL, 'F' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int kt_misuse(const char *usage)
{
	fputs(usage, stderr);
	return 1;
}

int kt_parse(int argc, char **argv, const char *allowed, const char *usage,
	struct kt_opts *o)
{
	int c;

	memset(o, 0, sizeof *o);
	/* Each subcommand parses once; reset getopt in case of reuse in tests. */
	optind = 1;
	opterr = 0;
	/* Only -o has a short form: the rest are long options only. */
	while ((c = getopt_long(argc, argv, ":o:h", long_opts, NULL)) != -1) {
		if (c == 'h')
			return fputs(usage, stdout) == EOF;
		if (c == ':') {
			fprintf(stderr, "%s %s: option '%s' needs a value\n", KT_PROG, argv[0],
				argv[optind - 1]);
			return kt_misuse(usage);
		}
		if (c == '?' || !strchr(allowed, c)) {
			fprintf(stderr, "%s %s: option '%s' is not valid here\n", KT_PROG,
				argv[0], argv[optind - 1]);
			return kt_misuse(usage);
		}
		switch (c) {
		case 'd': o->dir = optarg; break;
		case 'o': o->out = optarg; break;
		case 'n': o->name = optarg; break;
		case 's': o->scope = optarg; break;
		case 'g': o->grace = optarg; break;
		case 'f': o->force = 1; break;
		case 'F': o->fingerprint = 1; break;
		default: return kt_misuse(usage);
		}
	}
	o->argc = argc - optind;
	o->argv = argv + optind;
	return -1;
}

/*
 * What is really wrong with @p path when a library call said "permissions",
 * "I/O error" or "not found": missing (and which directory), a directory
 * where a file belongs, someone else's file, or readable by others. NULL
 * when none of these (the library's word stands).
 */
const char *kt_path_problem(const char *path, enum e2e_status st, char *buf, size_t cap)
{
	char parent[PATH_MAX];
	struct stat sb;
	char *slash;

	if (!strchr(path, '/'))
		return NULL;
	if (stat(path, &sb) != 0) {
		int err = errno;

		snprintf(parent, sizeof parent, "%s", path);
		slash = strrchr(parent, '/');
		if (slash && slash != parent) {
			*slash = '\0';
			if (stat(parent, &sb) != 0) {
				snprintf(buf, cap, "directory %s does not exist (create it with "
					"genkey, or give --dir)", parent);
				return buf;
			}
		}
		snprintf(buf, cap, "%s", strerror(err));
		return buf;
	}
	if (S_ISDIR(sb.st_mode) && st != E2E_ERR_IO)
		return "is a directory, not a file";
	if (sb.st_uid != geteuid()) {
		snprintf(buf, cap, "owned by uid %u, but this runs as uid %u: run e2e-keytool as "
			"the owner (e.g. sudo -u mqtt-e2e e2e-keytool ...)", (unsigned)sb.st_uid,
			(unsigned)geteuid());
		return buf;
	}
	/* Public files (trust, enrolled, scopes) may be read by others, never
	 * written; a secret file may be neither (SPEC 7.1, 7.4). A refused file
	 * that others may only read is therefore a secret one. */
	if (st == E2E_ERR_PERM && !S_ISDIR(sb.st_mode) && (sb.st_mode & 022)) {
		snprintf(buf, cap, "mode %04o: writable by group or others (chmod go-w it)",
			(unsigned)(sb.st_mode & 07777));
		return buf;
	}
	if (st == E2E_ERR_PERM && !S_ISDIR(sb.st_mode) && (sb.st_mode & 077)) {
		snprintf(buf, cap, "mode %04o: readable by group or others (chmod 600 it)",
			(unsigned)(sb.st_mode & 07777));
		return buf;
	}
	return NULL;
}

void kt_load_fail(const char *path, enum e2e_status st, const char *err)
{
	char buf[PATH_MAX + 128];
	const char *why = kt_path_problem(path, st, buf, sizeof buf);

	/* The loader's message names the file and line already. */
	if (why)
		fprintf(stderr, "%s: %s: %s\n", KT_PROG, path, why);
	else
		fprintf(stderr, "%s: %s\n", KT_PROG, err && err[0] ? err : e2e_strerror(st));
}

int kt_fail(enum e2e_status st, const char *path, const char *detail)
{
	char buf[PATH_MAX + 128];
	const char *why = NULL;

	if (st == E2E_ERR_PERM || st == E2E_ERR_IO || st == E2E_ERR_NOT_FOUND)
		why = kt_path_problem(path, st, buf, sizeof buf);
	if (why)
		detail = NULL;   /* the generic advice would contradict the real cause */
	fprintf(stderr, "%s: %s: %s%s%s\n", KT_PROG, path, why ? why : e2e_strerror(st),
		detail ? ": " : "", detail ? detail : "");
	return 1;
}

/*
 * Run as root on a directory someone else owns (the service user's state
 * directory): become that owner before touching anything, so every file
 * written stays readable by the service ("insecure permissions" otherwise).
 * The nearest existing ancestor decides for a directory not created yet.
 */
static int adopt_owner(const char *dir)
{
	static int done;
	char p[PATH_MAX];
	struct stat sb;
	struct passwd *pw;

	if (done || geteuid() != 0)
		return 0;
	done = 1;
	snprintf(p, sizeof p, "%s", dir);
	while (stat(p, &sb) != 0) {
		char *slash = strrchr(p, '/');

		if (!slash || slash == p)
			return 0;
		*slash = '\0';
	}
	if (sb.st_uid == 0)
		return 0;
	if (setgroups(0, NULL) != 0 || setgid(sb.st_gid) != 0 || setuid(sb.st_uid) != 0) {
		fprintf(stderr, "%s: cannot switch to uid %u, the owner of %s: %s\n", KT_PROG,
			(unsigned)sb.st_uid, p, strerror(errno));
		return -1;
	}
	pw = getpwuid(sb.st_uid);
	fprintf(stderr, "%s: running as %s (uid %u), the owner of %s\n", KT_PROG,
		pw ? pw->pw_name : "?", (unsigned)sb.st_uid, p);
	return 0;
}

int kt_dir(char *buf, size_t cap, const struct kt_opts *o, enum kt_side side)
{
	const char *env = getenv("E2E_DIR"), *home = getenv("HOME");
	int n;

	if (o->dir)
		n = snprintf(buf, cap, "%s", o->dir);
	else if (env && *env)
		n = snprintf(buf, cap, "%s", env);
	else if (side == KT_SENDER)
		n = snprintf(buf, cap, "%s", KT_SENDER_DIR);
	else if (home && *home)
		n = snprintf(buf, cap, "%s/.config/mqtt-e2e", home);
	else {
		fprintf(stderr, "%s: HOME is not set: use --dir or E2E_DIR\n", KT_PROG);
		return -1;
	}
	if (n < 0 || (size_t)n >= cap || n == 0) {
		fprintf(stderr, "%s: directory name empty or too long\n", KT_PROG);
		return -1;
	}
	return adopt_owner(buf);
}

int kt_path(char *buf, size_t cap, const char *dir, const char *file)
{
	int n = snprintf(buf, cap, "%s/%s", dir, file);

	if (n < 0 || (size_t)n >= cap) {
		fprintf(stderr, "%s: path too long: %s/%s\n", KT_PROG, dir, file);
		return -1;
	}
	return 0;
}

int kt_identity_path(char *buf, size_t cap, const struct kt_opts *o, const char *file,
	int create)
{
	char dir[PATH_MAX];

	if (file) {
		if ((size_t)snprintf(buf, cap, "%s", file) < cap)
			return 0;
		fprintf(stderr, "%s: path too long: %s\n", KT_PROG, file);
		return -1;
	}
	if (kt_dir(dir, sizeof dir, o, KT_SENDER) != 0 || (create && kt_mkdirs(dir) != 0))
		return -1;
	return kt_path(buf, cap, dir, "identity.key");
}

int kt_mkdirs(const char *dir)
{
	char p[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof p)
		return -1;
	memcpy(p, dir, len + 1);
	/* Create each missing component; private, since key files go inside. */
	for (size_t i = 1; i <= len; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST) {
			fprintf(stderr, "%s: cannot create %s: %s\n", KT_PROG, p, strerror(errno));
			return -1;
		}
		p[i] = i == len ? '\0' : '/';
	}
	return 0;
}

int kt_duration_parse(const char *s, uint64_t *ms)
{
	/* The syntax shared with e2e-proxy, e2e-sub and e2e-pub. */
	return e2e_duration_parse(s, ms) == E2E_OK ? 0 : -1;
}

void kt_duration_format(char *buf, size_t cap, uint64_t ms)
{
	uint64_t s = ms / 1000, d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;

	if (d)
		snprintf(buf, cap, "%llud%lluh", (unsigned long long)d, (unsigned long long)h);
	else if (h)
		snprintf(buf, cap, "%lluh%llum", (unsigned long long)h, (unsigned long long)m);
	else if (m)
		snprintf(buf, cap, "%llum%llus", (unsigned long long)m, (unsigned long long)(s % 60));
	else
		snprintf(buf, cap, "%llus", (unsigned long long)s);
}
