/*
 * A publisher's events about its control messages: rotations announced,
 * key requests refused. Every field comes from the control parser
 * (e2e_ctl_peek: layout checked, the same reader as everywhere else),
 * never from a byte offset here.
 */
#include <stdio.h>

#include "e2e/clock.h"
#include "e2e/control.h"
#include "pubevents.h"

void e2e_pub_event(e2e_client_event_fn fn, void *ctx, enum e2e_client_event_type t,
	const char *detail)
{
	struct e2e_client_event ev = { t, 0, 0, 0, detail ? detail : "", NULL, NULL };

	if (fn)
		fn(ctx, &ev);
}

void e2e_pub_event_rotated(e2e_client_event_fn fn, void *ctx, const uint8_t *msg, size_t len)
{
	struct e2e_client_event ev = { E2E_EV_ROTATED, 0, 0, 0, "new epoch announced", NULL,
		NULL };
	struct e2e_ctl m;

	if (!fn || e2e_ctl_peek(&m, msg, len) != E2E_OK)
		return;
	if (m.type == E2E_CTL_ANNOUNCE) {
		ev.sender = m.sender;
		ev.scope = m.scope;
		ev.epoch = m.epoch;
		fn(ctx, &ev);
	}
	e2e_ctl_wipe(&m);
}

void e2e_pub_event_switched(e2e_client_event_fn fn, void *ctx, uint32_t sender, uint8_t scope,
	uint32_t epoch)
{
	struct e2e_client_event ev = { E2E_EV_SWITCHED, sender, scope, epoch, E2E_PUB_SWITCHED,
		NULL, NULL };

	if (fn)
		fn(ctx, &ev);
}

/*
 * Say which key asked and why. Strangers share the global bucket (up to
 * 100 refusals a second), so at most REFUSAL_LOGS per REFUSAL_WINDOW_MS
 * are reported one by one, then how many were not.
 */
#define REFUSAL_LOGS 20U
#define REFUSAL_WINDOW_MS 10000U

void e2e_pub_event_refused(e2e_client_event_fn fn, void *ctx, struct e2e_refusal_log *rl,
	uint32_t self, const uint8_t *req, size_t len, const uint64_t before[8],
	const uint64_t after[8])
{
	struct e2e_client_event ev = { E2E_EV_REQUEST_REFUSED, self, 0, 0, "", NULL, NULL };
	uint64_t now = e2e_mono_ms();
	char detail[160], key[17] = "?";
	unsigned reason = 0;
	struct e2e_ctl m;

	if (!fn)
		return;
	for (unsigned r = 1; r < 8; r++)
		if (after[r] != before[r])
			reason = r;
	if (now - rl->window >= REFUSAL_WINDOW_MS) {
		if (rl->quiet) {
			snprintf(detail, sizeof detail, "%u more key request refusal(s) not logged "
				"(see the refusal metrics)", rl->quiet);
			ev.detail = detail;
			fn(ctx, &ev);
		}
		rl->window = now;
		rl->logged = rl->quiet = 0;
	}
	if (rl->logged >= REFUSAL_LOGS) {
		rl->quiet++;
		return;
	}
	rl->logged++;
	/* The requester's signing key (the key service verified the request);
	 * its first 8 bytes in hex are enough to find it in `enrolled`. */
	if (e2e_ctl_peek(&m, req, len) == E2E_OK) {
		if (m.type == E2E_CTL_REQUEST)
			for (unsigned i = 0; i < 8; i++)
				snprintf(key + 2 * i, 3, "%02x", m.requester.sign_pk[i]);
		e2e_ctl_wipe(&m);
	}
	snprintf(detail, sizeof detail, "key request refused (%s): subscriber key %s",
		e2e_refusal_name((uint8_t)reason), key);
	ev.detail = detail;
	fn(ctx, &ev);
}
