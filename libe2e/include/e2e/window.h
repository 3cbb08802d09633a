/*
 * Anti-replay and loss window for one stream (RFC 6479 style bitmap).
 * Check first (cheap, no state change), authenticate, then update: the window
 * moves only for messages whose AEAD verified.
 */
#ifndef E2E_WINDOW_H
#define E2E_WINDOW_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"

#define E2E_WINDOW_DEFAULT 1024U
#define E2E_WINDOW_MIN     64U
#define E2E_WINDOW_MAX     (1U << 20)

/** Per-message verdicts (protocol/SPEC.md section 5). */
enum e2e_verdict {
	E2E_V_OK = 0,      /* next in order (or first of a new stream) */
	E2E_V_DUPLICATE,   /* seen before: suppress */
	E2E_V_LATE,        /* older than the newest but unseen and in window: deliver, flag */
	E2E_V_GAP,         /* newer with n missing before it: deliver, n pending */
	E2E_V_TOO_OLD,     /* behind the window: cannot tell replay from loss; suppress */
	E2E_V_FORGED,      /* authentication failed */
	E2E_V_UNKNOWN_KEY, /* epoch/sender not held: fetch key, hold the message */
	E2E_V_MALFORMED,   /* not an envelope */
	E2E_V_FORGOTTEN,   /* authentic, but its stream was evicted: replay status unknown */
};

/** Name of a verdict ("OK", "GAP", ...); never NULL. */
E2E_API const char *e2e_verdict_name(enum e2e_verdict v);

/** Whether a message with this verdict is handed to the application. */
E2E_API int e2e_verdict_delivers(enum e2e_verdict v);

/* Number of 64-bit words of bitmap for a window of @p size bits. */
#define E2E_WINDOW_WORDS(size) (((size) / 64U) + 1U)

/**
 * Window state. The bitmap is caller-owned memory of
 * E2E_WINDOW_WORDS(size) words. top == 0 means "nothing seen yet".
 */
struct e2e_window {
	uint64_t top;       /* highest accepted sequence number */
	uint64_t base;      /* first accepted sequence number of the stream */
	uint64_t received;  /* distinct accepted sequence numbers */
	uint32_t size;      /* window size in sequence numbers (multiple of 64) */
	uint32_t top_pos;   /* (top / 64) mod words, kept so no division runs per message */
	uint64_t *bits;
};

/** Prepare @p w over @p bits (zeroed here). size: multiple of 64 in [MIN, MAX]. */
E2E_API enum e2e_status e2e_window_init(struct e2e_window *w, uint64_t *bits,
	uint32_t size) E2E_WARN_UNUSED;

/**
 * Classify @p seq (> 0) without changing state. For E2E_V_GAP, *gap receives
 * the number of sequence numbers skipped; otherwise 0.
 */
E2E_API enum e2e_verdict e2e_window_check(const struct e2e_window *w, uint64_t seq,
	uint64_t *gap) E2E_WARN_UNUSED;

/** Record @p seq as accepted. Call only after check said OK, GAP or LATE
 * and the message authenticated. */
E2E_API void e2e_window_update(struct e2e_window *w, uint64_t seq);

/**
 * Holes still inside the window (may yet arrive as LATE) and holes that fell
 * behind it (confirmed losses). pending + lost == top - base + 1 - received.
 */
E2E_API void e2e_window_losses(const struct e2e_window *w, uint64_t *pending, uint64_t *lost);

#ifdef __cplusplus
}
#endif

#endif
