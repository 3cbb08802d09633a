/* Internal: window set-up without validation, for sizes already checked. */
#ifndef E2E_WINDOW_IMPL_H
#define E2E_WINDOW_IMPL_H

#include "e2e/window.h"

void e2e_window_reset(struct e2e_window *w, uint64_t *bits, uint32_t size);

/* Set top (e.g. from a state file), keeping top_pos consistent. */
void e2e_window_set_top(struct e2e_window *w, uint64_t top);

#endif
