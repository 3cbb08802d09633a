/*
 * e2e-keytool: the operator's tool for identities, enrollment, trust and
 * payload keys. Only the subcommand table lives here (after wg.c); each
 * subcommand parses its own options and prints its own --help.
 */
#include <stdio.h>
#include <string.h>

#include "keytool.h"

struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *description;
};

static const struct subcommand subcommands[] = {
	{ "genkey",  kt_cmd_genkey,  "Create an identity file and print its public line (-o -: stdout)" },
	{ "pubkey",  kt_cmd_pubkey,  "Print the public line or fingerprint of an identity (file or stdin)" },
	{ "enroll",  kt_cmd_enroll,  "Allow a subscriber to fetch the keys of some scopes" },
	{ "revoke",  kt_cmd_revoke,  "Revoke a subscriber and rotate the scopes it held" },
	{ "list",    kt_cmd_list,    "List enrolled and revoked subscribers" },
	{ "trust",   kt_cmd_trust,   "Subscriber: accept a sender's public key" },
	{ "untrust", kt_cmd_untrust, "Subscriber: stop accepting a sender" },
	{ "rotate",  kt_cmd_rotate,  "Start a new key epoch for one or all scopes" },
	{ "scopes",  kt_cmd_scopes,  "Show the scope table (topic filters per scope)" },
	{ "authority", kt_cmd_authority, "Fleet authority: init, issue credentials, revoke (SPEC 13)" },
	{ "status",  kt_cmd_status,  "Show key epochs, their age and use, and subscriber counts" },
	{ "ticket",  kt_cmd_ticket,  "Authority: record a one-time enrollment ticket, print its token" },
};

#define N_SUBCOMMANDS (sizeof subcommands / sizeof subcommands[0])

static void show_usage(FILE *f)
{
	fprintf(f, "Usage: %s <cmd> [<args>]\n\nAvailable subcommands:\n", KT_PROG);
	for (size_t i = 0; i < N_SUBCOMMANDS; i++)
		fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].description);
	fprintf(f, "\nUse '%s <cmd> --help' or '%s help <cmd>' for details.\n"
		"Default directory: $E2E_DIR, else %s (sender commands)\n"
		"or $HOME/.config/mqtt-e2e (trust, untrust).\n", KT_PROG, KT_PROG, KT_SENDER_DIR);
}

static const struct subcommand *find(const char *name)
{
	for (size_t i = 0; i < N_SUBCOMMANDS; i++)
		if (strcmp(name, subcommands[i].name) == 0)
			return &subcommands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct subcommand *cmd;
	char *help_argv[] = { NULL, (char *)"--help", NULL };

	if (argc < 2) {
		show_usage(stderr);
		return 1;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("%s %s\n", KT_PROG, E2E_VERSION_STRING);
		return 0;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		if (argc < 3) {
			show_usage(stdout);
			return 0;
		}
		/* "help CMD" is "CMD --help". */
		cmd = find(argv[2]);
		if (!cmd) {
			fprintf(stderr, "%s: unknown subcommand '%s'\n", KT_PROG, argv[2]);
			return 1;
		}
		help_argv[0] = argv[2];
		return cmd->fn(2, help_argv);
	}
	cmd = find(argv[1]);
	if (!cmd) {
		fprintf(stderr, "%s: invalid subcommand '%s'\n\n", KT_PROG, argv[1]);
		show_usage(stderr);
		return 1;
	}
	if (e2e_init() != E2E_OK) {
		fprintf(stderr, "%s: libsodium failed to initialise\n", KT_PROG);
		return 1;
	}
	return cmd->fn(argc - 1, argv + 1);
}
