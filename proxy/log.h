/*
 * Logging for e2e-proxy: one line per event on stderr, or syslog. On
 * stderr a line is "<N>message" when stderr is the journal (JOURNAL_STREAM
 * names stderr's device and inode: journald reads the priority from the
 * prefix and stamps the time itself), else "TIME e2e-proxy LEVEL: message";
 * with log-format json, one JSON object per line (time, level, priority,
 * program, message; the <N> prefix still leads it on the journal).
 */
#ifndef E2E_PROXY_LOG_H
#define E2E_PROXY_LOG_H

#include <stdint.h>
#include <syslog.h>

void plog_init(int level, int use_syslog);
void plog_set_level(int level);
void plog_set_json(int json);
void plog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* What an audit line is about; JSON lines carry these as fields of their own
 * (event, sender as 8 hex digits, scope, epoch, subscriber) so log shippers
 * need not parse the message. Absent: NULL / -1. */
struct plog_about {
	const char *event;            /* "rotation", "refusal", "enrollment", ... */
	int64_t sender;               /* sender id, -1: none */
	int scope;                    /* -1: none */
	int64_t epoch;                /* -1: none */
	const char *subscriber;       /* name or key prefix */
};

void plog_event(int level, const struct plog_about *a, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
