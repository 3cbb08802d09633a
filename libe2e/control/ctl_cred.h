/* Internal: the credential field of REQUEST and DELIVERY (SPEC 13.4). */
#ifndef E2E_CTL_CRED_H
#define E2E_CTL_CRED_H

#include "e2e/cred.h"
#include "base/wire.h"

/* u16 c || cred[c]; c = 0 for none. A non-empty cred must parse (layout). */
enum e2e_status e2e_ctl_cred_write(struct e2e_wr *w, const uint8_t *cred, size_t len);
enum e2e_status e2e_ctl_cred_read(struct e2e_rd *r, const uint8_t **cred, size_t *len);

#endif
