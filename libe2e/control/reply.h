/*
 * The reply-topic rule that REQUEST (SPEC 11.2) and REDEEM (SPEC 14.3)
 * share: one check, so the two parsers cannot drift apart. Internal.
 */
#ifndef E2E_CTL_REPLY_H
#define E2E_CTL_REPLY_H

#include <stddef.h>

/* 1 when t[0..len) is E2E_CTL_REPLY_PREFIX, then at least 32 lowercase hex
 * digits, at most E2E_CTL_REPLY_MAX bytes in all; else 0. */
int e2e_ctl_reply_topic_ok(const char *t, size_t len);

#endif
