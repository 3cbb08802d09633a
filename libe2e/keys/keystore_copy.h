/*
 * Internal to libe2e: a copy of a key store, so the sender's tick can
 * rotate, reload and prune a copy without the sealing lock and swap it in
 * afterwards (statetick.c, docs/architecture.md).
 */
#ifndef E2E_KEYSTORE_COPY_H
#define E2E_KEYSTORE_COPY_H

#include "e2e/keystore.h"

/* A deep copy of @p ks (entries and floors) in fresh guarded memory. */
enum e2e_status e2e_keystore_copy(struct e2e_keystore **out, const struct e2e_keystore *ks);

#endif
