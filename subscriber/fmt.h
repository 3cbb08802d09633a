/*
 * e2e-sub -F: mosquitto_sub 2.0's output format (%, @ and \ sequences with
 * its flags, widths and precisions) over decrypted messages, plus
 * sequences for what only an end-to-end subscriber knows: %V verdict,
 * %n sender, %e epoch, %s sequence number, %o scope, %g gap.
 */
#ifndef E2E_FMT_H
#define E2E_FMT_H

#include <stdio.h>

#include "e2e/client.h"

/**
 * Print @p m to @p f as @p format says, then a newline when @p eol (not -N).
 * Only delivered messages carry a payload; others print it empty.
 */
void sub_fmt_print(FILE *f, const char *format, int eol, const struct e2e_client_msg *m);

/**
 * Check @p format as mosquitto_sub checks -F (incomplete or unknown
 * sequences are refused). 0, or -1 with the reason in @p why.
 */
int sub_fmt_check(const char *format, char *why, size_t cap);

#endif
