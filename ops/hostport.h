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

/**
 * The next item of a comma-separated address list ("HOST", "HOST:PORT",
 * "[V6]:PORT", "[V6]" or a bare IPv6 address), advancing @p list; @p port
 * is empty when the item has none.
 * @return 1 for an item, 0 at the end, -1 for an empty or bad item.
 */
int e2e_hostport_next(const char **list, char *host, size_t host_cap, char *port,
	size_t port_cap);

#endif
