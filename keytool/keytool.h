/*
 * e2e-keytool: shared option parsing, paths, and file helpers for the
 * subcommands. Every helper that fails has already printed why (to stderr),
 * so a subcommand only has to return 1.
 */
#ifndef E2E_KEYTOOL_H
#define E2E_KEYTOOL_H

#include <limits.h>
#include <stdint.h>

#include "e2e/e2e.h"

#define KT_PROG "e2e-keytool"
#define KT_SENDER_DIR "/var/lib/mqtt-e2e/sender"
#define KT_SPARE_KEYS E2E_SCOPES_MAX   /* rotating every scope adds one key each */
#define KT_GRACE_MS (24ULL * 3600 * 1000)
#define KT_SCOPE_LIST_MAX (E2E_SCOPES_MAX * (E2E_SCOPE_NAME_MAX + 1) + 1)

/* Parsed command line of one subcommand. */
struct kt_opts {
	const char *dir;          /* --dir */
	const char *out;          /* -o, --out */
	const char *name;         /* --name */
	const char *scope;        /* --scope */
	const char *grace;        /* --grace */
	int force;                /* --force */
	int fingerprint;          /* --fingerprint */
	int argc;                 /* positional arguments */
	char **argv;
};

/* Which default directory a subcommand uses. */
enum kt_side {
	KT_SENDER,                /* $E2E_DIR, else /var/lib/mqtt-e2e/sender */
	KT_SUBSCRIBER,            /* $E2E_DIR, else $HOME/.config/mqtt-e2e */
};

/*
 * Parse @p argv (argv[0] is the subcommand). @p allowed lists the short
 * letters of the options this subcommand accepts: d dir, o out, n name,
 * s scope, g grace, f force, F fingerprint. Returns -1 to go on, or the
 * exit code: 0 after --help (usage on stdout), 1 on misuse (on stderr).
 */
int kt_parse(int argc, char **argv, const char *allowed, const char *usage,
	struct kt_opts *o);

/* Print @p usage to stderr and return 1. */
int kt_misuse(const char *usage);

/* Print "e2e-keytool: <path>: <strerror>" (plus @p detail if set); returns 1. */
int kt_fail(enum e2e_status st, const char *path, const char *detail);

/* The state directory for @p side into @p buf; 0 or -1 (printed). */
int kt_dir(char *buf, size_t cap, const struct kt_opts *o, enum kt_side side);

/* @p dir "/" @p file into @p buf; 0 or -1 (printed). */
int kt_path(char *buf, size_t cap, const char *dir, const char *file);

/*
 * The identity file: @p file if set, else DIR/identity.key for the sender
 * side (with @p create, DIR is created first); 0 or -1 (printed).
 */
int kt_identity_path(char *buf, size_t cap, const struct kt_opts *o, const char *file,
	int create);

/* mkdir -p with mode 0700 for the components that do not exist yet. */
int kt_mkdirs(const char *dir);

/* "90s", "30m", "24h", "7d", "500ms" or plain seconds; 0 or -1. */
int kt_duration_parse(const char *s, uint64_t *ms);

/* What is really wrong with @p path after @p st (missing, a directory,
 * someone else's, readable by others), or NULL; written into @p buf. */
const char *kt_path_problem(const char *path, enum e2e_status st, char *buf, size_t cap);

/* A loader failed on @p path: the real cause (kt_path_problem) if there is
 * one, else the loader's own message @p err, else the status; to stderr. */
void kt_load_fail(const char *path, enum e2e_status st, const char *err);

/* Compact duration: "1d2h", "3h4m", "5m6s", "7s". */
void kt_duration_format(char *buf, size_t cap, uint64_t ms);

/*
 * Public key from the positional arguments from index @p first: one
 * argument "-" reads a line from stdin; otherwise the arguments are joined
 * with spaces (so an unquoted "e2e1 AAAA..." works). 0 or -1 (printed).
 */
int kt_read_public(const struct kt_opts *o, int first, struct e2e_public *pub);

/* A peer name for a file; refuses bad ones and "revoked" (printed). */
int kt_check_name(const char *name);

/* Loaders: NULL after printing "<file>:<line>: reason" or the status. */
struct e2e_scopes *kt_load_scopes(const char *dir);
struct e2e_enroll *kt_load_peers(const char *dir, enum e2e_enroll_kind kind,
	const struct e2e_scopes *scopes);
struct e2e_keystore *kt_load_keys(const char *dir);

/* Save and report; 0 or 1 (printed). */
int kt_save_peers(const struct e2e_enroll *en, const struct e2e_scopes *scopes,
	const char *dir);
int kt_save_keys(const struct e2e_keystore *ks, const char *dir);

/* "a,b" of the scope names in @p bm (names from @p scopes, else ids). */
void kt_scope_list(char *buf, size_t cap, const struct e2e_scopes *scopes,
	const uint8_t bm[E2E_SCOPE_BITMAP_BYTES]);

/* The subcommands. */
int kt_cmd_genkey(int argc, char **argv);
int kt_cmd_pubkey(int argc, char **argv);
int kt_cmd_enroll(int argc, char **argv);
int kt_cmd_revoke(int argc, char **argv);
int kt_cmd_list(int argc, char **argv);
int kt_cmd_trust(int argc, char **argv);
int kt_cmd_untrust(int argc, char **argv);
int kt_cmd_rotate(int argc, char **argv);
int kt_cmd_scopes(int argc, char **argv);
int kt_cmd_status(int argc, char **argv);
int kt_cmd_ticket(int argc, char **argv);
int kt_cmd_authority(int argc, char **argv);

/* Rotate the scopes set in @p bm (revoke and rotate share this); 0 or 1. */
int kt_rotate_scopes(const char *dir, const struct e2e_scopes *scopes,
	const uint8_t bm[E2E_SCOPE_BITMAP_BYTES], uint64_t grace_ms);

#endif
