/* authority revoke: the numbered, signed revocation list (SPEC 13.3). */
#include <stdio.h>

#include "kt_authority.h"

int kt_authority_revoke(const struct kt_auth_opts *a)
{
	(void)a;
	fprintf(stderr, "%s authority revoke: not available yet\n", KT_PROG);
	return 1;
}
