/*
 * Internal: a sender's fleet trust (SPEC 13.5, 13.3) — its `authorities`
 * and `credential` files (reloaded when changed), the revocation lists it
 * accepted, and which credential holders it served which scopes (file
 * `cred-served`), so a revoked holder's scopes are rotated.
 */
#ifndef E2E_FLEET_H
#define E2E_FLEET_H

#include "e2e/keysvc.h"
#include "e2e/revlist.h"

struct e2e_sender;
struct e2e_fleet;

enum e2e_status e2e_fleet_open(struct e2e_sender *s, struct e2e_fleet **out);
void e2e_fleet_close(struct e2e_fleet *f);
/* Reload changed files; E2E_OK or the load error (the old state stays). */
enum e2e_status e2e_fleet_tick(struct e2e_sender *s, struct e2e_fleet *f);
/* Hook the key service's fleet callbacks (ctx stays the sender). */
void e2e_fleet_keysvc(struct e2e_keysvc_config *kc);
/* 1 if @p topic is "<control>/authority/..." (a revocation list). */
int e2e_fleet_is_authority_topic(const struct e2e_sender *s, const char *topic);
/* A revocation list arrived: accept if newer, rotate what revoked holders held. */
enum e2e_status e2e_fleet_revocations(struct e2e_sender *s, const uint8_t *msg, size_t len,
	const char *topic, uint64_t now_ms);

#endif
