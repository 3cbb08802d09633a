/* Logging; see log.h. One line per event, never secrets or payloads. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int max_level = LOG_INFO;
static int to_syslog, to_journal, as_json;

/* systemd sets JOURNAL_STREAM=DEV:INO for a stderr connected to journald;
 * it only counts if stderr is still that stream (not redirected since). */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void plog_init(int level, int use_syslog)
{
	max_level = level;
	to_syslog = use_syslog;
	to_journal = !use_syslog && stderr_is_journal();
	if (use_syslog)
		openlog("e2e-proxy", LOG_PID, LOG_DAEMON);
}

void plog_set_level(int level)
{
	/* SIGHUP on the main thread; the key service thread reads it too. */
	__atomic_store_n(&max_level, level, __ATOMIC_RELAXED);
}

void plog_set_json(int json)
{
	as_json = json;
}

static void line_json(int level, const char *name, const char *when, const char *msg,
	const struct plog_about *a)
{
	json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s}", "time", when, "level", name,
		"priority", level, "program", "e2e-proxy", "message", msg);
	char *s = NULL, hex[9];

	if (o && a) {
		if (a->event)
			json_object_set_new(o, "event", json_string(a->event));
		if (a->sender >= 0) {
			snprintf(hex, sizeof hex, "%08x", (unsigned)a->sender);
			json_object_set_new(o, "sender", json_string(hex));
		}
		if (a->scope >= 0)
			json_object_set_new(o, "scope", json_integer(a->scope));
		if (a->epoch >= 0)
			json_object_set_new(o, "epoch", json_integer(a->epoch));
		if (a->subscriber)
			json_object_set_new(o, "subscriber", json_string(a->subscriber));
	}
	s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (s && to_journal)
		fprintf(stderr, "<%d>%s\n", level, s);
	else if (s)
		fprintf(stderr, "%s\n", s);
	else   /* message not UTF-8 (a topic from a publisher): keep the line */
		fprintf(stderr, "%s%s e2e-proxy %s: %s\n", to_journal ? "<4>" : "", when, name, msg);
	free(s);
	json_decref(o);
}

static void vplog(int level, const struct plog_about *a, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void vplog(int level, const struct plog_about *a, const char *fmt, va_list ap)
{
	static const char *names[] = { "emerg", "alert", "crit", "error", "warning", "notice",
		"info", "debug" };

	if (level > __atomic_load_n(&max_level, __ATOMIC_RELAXED))
		return;
	if (to_syslog) {
		vsyslog(level, fmt, ap);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[48], msg[1024];

		vsnprintf(msg, sizeof msg, fmt, ap);
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(when + 19, sizeof when - 19, ".%03ldZ", ts.tv_nsec / 1000000);
		/* One call per line: the key service thread logs too. */
		if (as_json)
			line_json(level & 7, names[level & 7], when, msg, a);
		else if (to_journal)
			fprintf(stderr, "<%d>%s\n", level & 7, msg);
		else
			fprintf(stderr, "%s e2e-proxy %s: %s\n", when, names[level & 7], msg);
	}
}

void plog(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vplog(level, NULL, fmt, ap);
	va_end(ap);
}

void plog_event(int level, const struct plog_about *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vplog(level, a, fmt, ap);
	va_end(ap);
}
