/* e2e-proxy event loop and process-level operations. */
#ifndef E2E_PROXY_LOOP_H
#define E2E_PROXY_LOOP_H

#include <stddef.h>

struct proxy;

int proxy_loop_init(struct proxy *px);
int proxy_loop_run(struct proxy *px);     /* returns the exit status */
void proxy_stats_json(struct proxy *px, char *out, size_t cap);

/* setup.c */
int proxy_setup(struct proxy *px);          /* broker address, TLS, key service */
void proxy_teardown(struct proxy *px);
int proxy_check(struct proxy *px);          /* --check-config: number of problems */
void proxy_reload(struct proxy *px);        /* SIGHUP */
int proxy_drop_privileges(const struct proxy *px);

#endif
