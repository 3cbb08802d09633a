/*
 * The one duration syntax of every tool (proxy configuration, e2e-keytool,
 * e2e-sub, e2e-pub): digits and a unit, "250ms", "10s", "5m", "24h", "7d".
 * A bare number is seconds everywhere, so the same text never means two
 * different times in two tools.
 */
#include <string.h>

#include "e2e/common.h"

enum e2e_status e2e_duration_parse(const char *s, uint64_t *ms)
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	uint64_t v = 0;
	const char *p = s;

	/* No sign, no blanks: strtoull would take "-1" and wrap it. */
	if (!s || !ms || *s < '0' || *s > '9')
		return E2E_ERR_ARG;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return E2E_ERR_ARG;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		if (v > UINT64_MAX / units[i].ms)
			return E2E_ERR_ARG;
		*ms = v * units[i].ms;
		return E2E_OK;
	}
	return E2E_ERR_ARG;
}
