/*
 * The one clock of mqtt-e2e: every program and library of the tree reads
 * time through these, so protocol timestamps and timers agree.
 * The library's own functions take the time as a parameter (tests stay
 * deterministic); these are for the callers that pass it in.
 */
#ifndef E2E_CLOCK_H
#define E2E_CLOCK_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Milliseconds since the Unix epoch (CLOCK_REALTIME): the time of protocol
 * fields (control messages, key expiry, epochs). Steps when the clock is set.
 */
E2E_API uint64_t e2e_now_ms(void);

/**
 * Milliseconds of CLOCK_MONOTONIC: for timeouts and intervals, which must
 * not jump when the wall clock is set.
 */
E2E_API uint64_t e2e_mono_ms(void);

/**
 * Nanoseconds of CLOCK_MONOTONIC, for latency measurements (a vDSO read,
 * no system call).
 */
E2E_API uint64_t e2e_mono_ns(void);

#ifdef __cplusplus
}
#endif

#endif
