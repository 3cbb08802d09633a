/*
 * libFuzzer target for the receiver (security.md fuzzing plan): arbitrary
 * bytes as (topic, envelope) pairs go through e2e_rx_open with a key ring
 * that holds the key of the first vector, so both the cheap checks and the
 * AEAD path are reached. Invariants: never a crash, a verdict for every
 * input, plaintext only with a delivering verdict, and its length exact.
 */
#include <stdlib.h>
#include <string.h>

#include "e2e/e2e.h"

static struct e2e_rx *rx;
static struct e2e_keyring *kr;
static uint8_t pt[1 << 16];

/* At exit, before LeakSanitizer looks: the key ring lives in guarded
 * (mmapped) memory it does not scan, so what only the ring points to (the
 * sender's topic map) would read as leaked. */
static void teardown(void)
{
	e2e_keyring_destroy(kr);
	e2e_rx_destroy(rx);
	kr = NULL;
	rx = NULL;
}

static void setup(void)
{
	struct e2e_rx_config rc = { 16, 64, NULL };
	static const uint8_t key[32] = { 1 };
	struct e2e_keyid id = { 0x01020304, 1, 1 };

	/* A map with wildcards, so the scope step's matching is fuzzed too. */
	static const struct e2e_scope_rule map[] = {
		{ 2, "a/#", 3 }, { 1, "+/b", 3 }, { 3, "$x/+", 4 }, { 1, "#", 1 },
	};

	if (e2e_init() != E2E_OK || e2e_rx_create(&rx, &rc) != E2E_OK ||
	    e2e_keyring_create(&kr, 4) != E2E_OK || e2e_keyring_add(kr, &id, key, 0) != E2E_OK ||
	    e2e_keyring_set_profile(kr, id.sender, map, 4, 0) != E2E_OK || atexit(teardown) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct e2e_rx_result res;
	size_t tl;

	if (!rx)
		setup();
	/* First byte: topic length; then topic; the rest is the envelope. */
	if (size < 1)
		return 0;
	tl = data[0] % 32 + 1;
	if (size < 1 + tl)
		return 0;
	if (e2e_rx_open(rx, kr, pt, sizeof pt, &res, data + 1, tl, data + 1 + tl,
			size - 1 - tl, 0) != E2E_OK) {
		if (size - 1 - tl >= E2E_ENVELOPE_OVERHEAD &&
		    size - 1 - tl - E2E_ENVELOPE_OVERHEAD <= sizeof pt)
			abort();   /* a verdict is owed for every input that fits */
		return 0;
	}
	if (res.verdict > E2E_V_FORGOTTEN)
		abort();
	if (e2e_verdict_delivers(res.verdict) && res.pt_len != size - 1 - tl - E2E_ENVELOPE_OVERHEAD)
		abort();
	if (!e2e_verdict_delivers(res.verdict) && res.pt_len)
		abort();
	return 0;
}
