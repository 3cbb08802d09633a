/* Logging for e2e-proxy: stderr with a level prefix, or syslog. */
#ifndef E2E_PROXY_LOG_H
#define E2E_PROXY_LOG_H

#include <syslog.h>

void plog_init(int level, int use_syslog);
void plog_set_level(int level);
void plog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
