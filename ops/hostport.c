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
