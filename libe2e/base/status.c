/* Status names and library initialisation. */
#include <sodium.h>

#include "e2e/common.h"

const char *e2e_strerror(enum e2e_status st)
{
	switch (st) {
	case E2E_OK: return "success";
	case E2E_ERR_ARG: return "invalid argument";
	case E2E_ERR_BUFFER: return "buffer too small";
	case E2E_ERR_MALFORMED: return "malformed input";
	case E2E_ERR_AUTH: return "authentication failed";
	case E2E_ERR_UNKNOWN_KEY: return "no key held for this sender, scope and epoch";
	case E2E_ERR_EXHAUSTED: return "key usage limit reached: rotate the key";
	case E2E_ERR_RESERVE: return "counter reservation could not be persisted";
	case E2E_ERR_FULL: return "table full";
	case E2E_ERR_EXISTS: return "entry already exists with different content";
	case E2E_ERR_NOT_FOUND: return "not found";
	case E2E_ERR_IO: return "input/output error";
	case E2E_ERR_PERM: return "insecure permissions: file must be mode 0600 and owned by the user";
	case E2E_ERR_CORRUPT: return "file is corrupt or truncated";
	case E2E_ERR_VERSION: return "unsupported version or incompatible parameters";
	case E2E_ERR_NOMEM: return "out of memory";
	case E2E_ERR_CRYPTO: return "cryptographic library failure";
	case E2E_ERR_BUSY: return "state directory in use by another process";
	}
	return "unknown status";
}

enum e2e_status e2e_init(void)
{
	/* sodium_init returns 1 when already initialised: both are fine. */
	return sodium_init() < 0 ? E2E_ERR_CRYPTO : E2E_OK;
}
