/* Logging; see log.h. One line per event, never secrets or payloads. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

static int max_level = LOG_INFO;
static int to_syslog;

void plog_init(int level, int use_syslog)
{
	max_level = level;
	to_syslog = use_syslog;
	if (use_syslog)
		openlog("e2e-proxy", LOG_PID, LOG_DAEMON);
}

void plog_set_level(int level)
{
	/* SIGHUP on the main thread; the key service thread reads it too. */
	__atomic_store_n(&max_level, level, __ATOMIC_RELAXED);
}

void plog(int level, const char *fmt, ...)
{
	static const char *names[] = { "emerg", "alert", "crit", "error", "warning", "notice",
		"info", "debug" };
	va_list ap;

	if (level > __atomic_load_n(&max_level, __ATOMIC_RELAXED))
		return;
	va_start(ap, fmt);
	if (to_syslog) {
		vsyslog(level, fmt, ap);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32], msg[1024];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
		vsnprintf(msg, sizeof msg, fmt, ap);
		/* One call per line: the key service thread logs too. */
		fprintf(stderr, "%s.%03ldZ e2e-proxy %s: %s\n", when, ts.tv_nsec / 1000000,
			names[level & 7], msg);
	}
	va_end(ap);
}
