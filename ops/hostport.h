/* Splitting an address argument; one parser for the proxy's broker, listen
 * and metrics addresses and e2e-sub's metrics address. */
#ifndef E2E_OPS_HOSTPORT_H
#define E2E_OPS_HOSTPORT_H

#include <stddef.h>

/**
 * "HOST:PORT" or "[V6]:PORT" into @p host and @p port (NUL-terminated).
 * @return 0, or -1 when either part is empty or does not fit.
 */
int e2e_hostport_split(const char *s, char *host, size_t host_cap, char *port, size_t port_cap);

#endif
