/* Verdict names (SPEC 5.5): the receive procedure's results, named for
 * logs and tools, and which of them deliver the payload (SPEC 8). */
#include "e2e/window.h"

const char *e2e_verdict_name(enum e2e_verdict v)
{
	switch (v) {
	case E2E_V_OK: return "OK";
	case E2E_V_DUPLICATE: return "DUPLICATE";
	case E2E_V_LATE: return "LATE";
	case E2E_V_GAP: return "GAP";
	case E2E_V_TOO_OLD: return "TOO_OLD";
	case E2E_V_FORGED: return "FORGED";
	case E2E_V_UNKNOWN_KEY: return "UNKNOWN_KEY";
	case E2E_V_MALFORMED: return "MALFORMED";
	case E2E_V_FORGOTTEN: return "FORGOTTEN";
	}
	return "INVALID";
}

int e2e_verdict_delivers(enum e2e_verdict v)
{
	return v == E2E_V_OK || v == E2E_V_GAP || v == E2E_V_LATE;
}
