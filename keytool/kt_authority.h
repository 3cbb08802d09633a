/* e2e-keytool authority: options shared by init, issue and revoke. */
#ifndef KT_AUTHORITY_H
#define KT_AUTHORITY_H

#include "keytool.h"

struct kt_auth_opts {
	const char *dir;          /* the authority directory */
	const char *name;         /* init: name on the public line */
	const char *out;          /* issue: write the credential here */
	const char *ttl;          /* issue: validity */
	const char *control_topic; /* revoke: C of C/authority/<fp> */
	int force;
	unsigned kind;            /* E2E_CRED_SENDER or E2E_CRED_SUBSCRIBER */
	const char *scopes[E2E_CRED_SCOPES_MAX];
	uint32_t nscopes;
	const char *filters[E2E_CRED_RULES_MAX];
	uint32_t nfilters;
	int argc;
	char **argv;
};

/* The authority identity of a->dir; 0 or -1 (printed). */
int kt_authority_load(const struct kt_auth_opts *a, struct e2e_identity *id);

/* Append a line for an issued credential to DIR/issued; 0 or -1 (printed). */
int kt_authority_log_issue(const struct kt_auth_opts *a, const struct e2e_public *pub,
	uint64_t serial);

/* authority revoke: write the next numbered revocation list; 0 or 1. */
int kt_authority_revoke(const struct kt_auth_opts *a);

#endif
