/* HOST:PORT and [IPv6]:PORT, for every address the tools take; see hostport.h. */
#include <string.h>

#include "hostport.h"

int e2e_hostport_split(const char *s, char *host, size_t host_cap, char *port, size_t port_cap)
{
	const char *colon;
	size_t hl;

	if (!s)
		return -1;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - s - 1);
		s++;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= host_cap || !colon[1] || strlen(colon + 1) >= port_cap)
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	memcpy(port, colon + 1, strlen(colon + 1) + 1);
	return 0;
}

int e2e_hostport_next(const char **list, char *host, size_t host_cap, char *port,
	size_t port_cap)
{
	char item[300];
	const char *p = *list;
	size_t n;

	if (!p || !*p)
		return 0;
	n = strcspn(p, ",");
	*list = p[n] == ',' ? p + n + 1 : p + n;
	if (n == 0 || n >= sizeof item)
		return -1;
	memcpy(item, p, n);
	item[n] = '\0';
	/* "HOST:PORT" and "[V6]:PORT" have a port; "HOST", "[V6]" and a bare
	 * IPv6 address (two colons or more) do not. */
	if (item[0] == '[' && item[n - 1] == ']') {
		if (n - 2 == 0 || n - 2 >= host_cap || port_cap == 0)
			return -1;
		memcpy(host, item + 1, n - 2);
		host[n - 2] = '\0';
		port[0] = '\0';
		return 1;
	}
	if (item[0] != '[' && (!strchr(item, ':') || strchr(item, ':') != strrchr(item, ':'))) {
		if (n >= host_cap || port_cap == 0)
			return -1;
		memcpy(host, item, n + 1);
		port[0] = '\0';
		return 1;
	}
	return e2e_hostport_split(item, host, host_cap, port, port_cap) == 0 ? 1 : -1;
}
