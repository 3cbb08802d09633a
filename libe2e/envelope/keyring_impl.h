/* Key ring internals for the receiver (rx.c): not part of the public API. */
#ifndef E2E_KEYRING_IMPL_H
#define E2E_KEYRING_IMPL_H

#include "e2e/keyring.h"

/*
 * A value that changes whenever any profile (topic map) in @p kr changes,
 * random at creation, so a cached topic -> scope answer can tell it is stale
 * (also across a ring freed and another allocated at the same address).
 */
uint64_t e2e_keyring_generation(const struct e2e_keyring *kr);

#endif
