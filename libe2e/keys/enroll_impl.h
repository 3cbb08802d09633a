/* Internal: the peer list shared by enroll.c (parsing) and enroll_edit.c. */
#ifndef E2E_ENROLL_IMPL_H
#define E2E_ENROLL_IMPL_H

#include "e2e/enroll.h"

struct e2e_enroll {
	enum e2e_enroll_kind kind;
	uint32_t count;
	uint32_t cap;                  /* fixed at load: no realloc */
	struct e2e_enroll_entry *e;
	/* Open-addressing index by sign_pk: entry number + 1, 0 = empty; at
	 * least twice cap slots, a power of two, also sized at load. */
	uint32_t *slot;
	uint32_t mask;
};

/* Index entry i (after it was appended); rebuild after a removal. */
void e2e_enroll_index_add(struct e2e_enroll *en, uint32_t i);
void e2e_enroll_index_rebuild(struct e2e_enroll *en);

#endif
