/*
 * Command-line plumbing shared by the subcommands: one option table for
 * all of them (each says which options it accepts), default directories,
 * and durations.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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

int kt_fail(enum e2e_status st, const char *path, const char *detail)
{
	fprintf(stderr, "%s: %s: %s%s%s\n", KT_PROG, path, e2e_strerror(st),
		detail ? ": " : "", detail ? detail : "");
	return 1;
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
	return 0;
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
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	uint64_t v = 0;
	const char *p = s;

	if (!s || *s < '0' || *s > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		if (v > UINT64_MAX / units[i].ms)
			return -1;
		*ms = v * units[i].ms;
		return 0;
	}
	return -1;
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
