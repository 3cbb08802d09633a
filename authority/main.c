/*
 * e2e-authority: options and checks only; the service is in serve.c, the
 * protocol in libe2e (ticket_serve.c).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authority.h"

enum { OPT_CRED_TTL = CLI_OPT_OWN, OPT_WINDOW };

static const struct option long_opts[] = {
	CLI_CONN_LONG,
	{ "cred-ttl", required_argument, NULL, OPT_CRED_TTL },
	{ "window", required_argument, NULL, OPT_WINDOW },
	{ "verbose", no_argument, NULL, 'v' },
	{ NULL, 0, NULL, 0 },
};

static int usage(FILE *f)
{
	fprintf(f, "Usage: %s [--dir DIR] [options]\n"
		"The fleet authority's service: redeem one-time tickets (e2e-keytool ticket)\n"
		"for subscriber credentials, and publish the revocation list, retained.\n\n"
		"  --dir DIR          authority directory: authority.key, tickets, revocations\n"
		"                     (default $E2E_DIR, else %s)\n"
		"  --cred-ttl TIME    validity of the credentials granted (default 90d)\n"
		"  --window TIME      accepted clock difference of a redemption (default 5m)\n"
		"  -v, --verbose      one line per answered redemption\n"
		"SIGHUP re-reads DIR/revocations and publishes it again.\n",
		AUTH_PROG, AUTH_DIR_DEFAULT);
	cli_common_usage(f, AUTH_DIR_DEFAULT);
	return f == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

/* The directory holds the authority's secret: ours, not writable by others. */
static int dir_ok(const char *dir)
{
	struct stat sb;

	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "%s: %s: not a directory (make it with 'e2e-keytool authority "
			"init --dir %s')\n", AUTH_PROG, dir, dir);
		return -1;
	}
	if (sb.st_uid != geteuid() || (sb.st_mode & 022)) {
		fprintf(stderr, "%s: %s: owned by uid %u with mode %04o; it must be owned by uid "
			"%u and not writable by group or others (chmod go-w)\n", AUTH_PROG, dir,
			(unsigned)sb.st_uid, (unsigned)(sb.st_mode & 07777), (unsigned)geteuid());
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char dir[PATH_MAX];
	struct auth_args a;
	int c, r = 0;

	cli_prog = AUTH_PROG;
	memset(&a, 0, sizeof a);
	a.cred_ttl_ms = 90ULL * 24 * 3600 * 1000;
	a.window_ms = 300000;
	while (r == 0 && (c = cli_next_opt(argc, argv, ":" CLI_CONN_SHORT "v", long_opts,
			&a.cc)) != -1) {
		switch (c) {
		case 0: r = -1; break;
		case 'v': a.verbose = 1; break;
		case OPT_CRED_TTL:
			r = cli_duration("--cred-ttl", optarg, 1000, 3650ULL * 24 * 3600 * 1000,
				&a.cred_ttl_ms);
			break;
		case OPT_WINDOW:
			r = cli_duration("--window", optarg, 1000, 24ULL * 3600 * 1000, &a.window_ms);
			break;
		default:
			return cli_bad_option(c, argv);
		}
	}
	r = cli_parse_done(&a.cc, r, usage);
	if (r >= 0)
		return r;
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", AUTH_PROG, argv[optind]);
		return usage(stderr);
	}
	if (cli_dir(dir, sizeof dir, a.cc.dir, AUTH_DIR_DEFAULT) != 0 || dir_ok(dir) != 0)
		return CLI_EXIT_USAGE;
	a.dir = dir;
	return auth_serve(&a);
}
