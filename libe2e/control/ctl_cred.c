/*
 * The credential carried by REQUEST (the subscriber's) and DELIVERY (the
 * sender's, in the clear before the sealed part), SPEC 13.4: u16 c ||
 * cred[c]. Its layout is part of the message layout (11.2 step 4), checked
 * before any signature; its authority signature is the receiver's business.
 */
#include <string.h>

#include "control/ctl_cred.h"
#include "e2e/control.h"

enum e2e_status e2e_ctl_cred_write(struct e2e_wr *w, const uint8_t *cred, size_t len)
{
	struct e2e_cred c;

	if (len && (!cred || len > E2E_CTL_CRED_MAX || e2e_cred_parse(&c, cred, len) != E2E_OK))
		return E2E_ERR_ARG;
	e2e_wr_u16(w, (uint16_t)len);
	if (len)
		e2e_wr_bytes(w, cred, len);
	return E2E_OK;
}

enum e2e_status e2e_ctl_cred_read(struct e2e_rd *r, const uint8_t **cred, size_t *len)
{
	struct e2e_cred c;
	uint16_t n = e2e_rd_u16(r);

	*cred = NULL;
	*len = 0;
	if (r->bad || n > E2E_CTL_CRED_MAX)
		return E2E_ERR_MALFORMED;
	if (n == 0)
		return E2E_OK;
	*cred = e2e_rd_skip(r, n);
	if (!*cred || e2e_cred_parse(&c, *cred, n) != E2E_OK) {
		*cred = NULL;
		return E2E_ERR_MALFORMED;
	}
	*len = n;
	return E2E_OK;
}
