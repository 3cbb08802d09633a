/*
 * Internal to libe2e-client: the events a publisher reports (rotations
 * announced, key requests refused), read from the control messages
 * through the control parser (e2e_ctl_peek), never at fixed offsets.
 * publisher.c owns the state; this file only formats.
 */
#ifndef E2E_PUBEVENTS_H
#define E2E_PUBEVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "e2e/client.h"

/* Refusal reporting (Paho's callback thread only). */
struct e2e_refusal_log {
	uint64_t window;              /* start of the current window (monotonic ms) */
	unsigned logged, quiet;
};

void e2e_pub_event(e2e_client_event_fn fn, void *ctx, enum e2e_client_event_type t,
	const char *detail);

/* An ANNOUNCE we just published: sender, scope and epoch from the message. */
void e2e_pub_event_rotated(e2e_client_event_fn fn, void *ctx, const uint8_t *msg, size_t len);
/* A scheduled switch to a key made ahead, not announced (SPEC 11.5):
 * E2E_EV_SWITCHED, E2E_PUB_SWITCHED as its detail. */
#define E2E_PUB_SWITCHED "switched on schedule to a key made ahead (not announced)"
void e2e_pub_event_switched(e2e_client_event_fn fn, void *ctx, uint32_t sender, uint8_t scope,
	uint32_t epoch);

/* A refusal just answered to the request @p req (of @p len bytes):
 * @p before / @p after are the key service's refused_by counters. */
void e2e_pub_event_refused(e2e_client_event_fn fn, void *ctx, struct e2e_refusal_log *rl,
	uint32_t self, const uint8_t *req, size_t len, const uint64_t before[8],
	const uint64_t after[8]);

#endif
