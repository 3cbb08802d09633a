/* The tree's one clock; see e2e/clock.h. */
#include <time.h>

#include "e2e/clock.h"

static uint64_t read_ms(clockid_t id)
{
	struct timespec ts;

	/* Cannot fail for these two clocks on Linux; a zero time would be
	 * refused later as expired rather than trusted. */
	if (clock_gettime(id, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000U + (uint64_t)ts.tv_nsec / 1000000U;
}

uint64_t e2e_now_ms(void)
{
	return read_ms(CLOCK_REALTIME);
}

uint64_t e2e_mono_ms(void)
{
	return read_ms(CLOCK_MONOTONIC);
}

uint64_t e2e_mono_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000U + (uint64_t)ts.tv_nsec;
}
