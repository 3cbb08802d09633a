/* Internal: the peer list shared by enroll.c (parsing) and enroll_edit.c. */
#ifndef E2E_ENROLL_IMPL_H
#define E2E_ENROLL_IMPL_H

#include "e2e/enroll.h"

struct e2e_enroll {
	enum e2e_enroll_kind kind;
	uint32_t count;
	uint32_t cap;                  /* fixed at load: no realloc */
	struct e2e_enroll_entry *e;
};

#endif
