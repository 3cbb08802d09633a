/*
 * Internal to libe2e-client and e2e-proxy (both hand ALPN lists to TLS):
 * not exported by libe2e-client.so, reached through the static archive.
 */
#ifndef E2E_ALPN_H
#define E2E_ALPN_H

#include <stddef.h>

/*
 * "a,b" (comma-separated protocol names) to the ALPN wire format
 * (length-prefixed names). Returns 0, or -1 for an empty, too long or
 * malformed list.
 */
int e2e_alpn_encode(unsigned char *out, size_t cap, unsigned int *len, const char *list);

#endif
