/* e2e-proxy event loop and process-level operations. */
#ifndef E2E_PROXY_LOOP_H
#define E2E_PROXY_LOOP_H

#include <stddef.h>

struct proxy;
struct proxy_work;

/* epoll, signalfd, the wake-up eventfd, listeners, stats socket, metrics. */
int proxy_loop_init(struct proxy *px);
/* Audit, metrics, READY, then proxy_loop_run_once until it ends; the exit status. */
int proxy_loop_run(struct proxy *px);
/*
 * One round of the loop: wait for events at most @p timeout_ms (-1: until
 * the next tick; never past it), handle them, run the work other threads
 * posted, and the 250 ms tick when it is due. 0 to go on; 1 when the loop
 * has ended (proxy_loop_stop, or a SIGTERM drain done), its connections
 * closed; -1 when epoll failed. Tests drive the loop in-process with it.
 */
int proxy_loop_run_once(struct proxy *px, int timeout_ms);
/* Any thread: the loop ends at its next round, woken at once. */
void proxy_loop_stop(struct proxy *px);
/* Any thread: run @p w->fn on the loop thread at its next round, woken at once. */
void proxy_loop_post(struct proxy *px, struct proxy_work *w);
/* Close what proxy_loop_init opened (after the loop ended). */
void proxy_loop_free(struct proxy *px);
void proxy_stats_json(struct proxy *px, char *out, size_t cap);

/* setup.c */
int proxy_setup(struct proxy *px);          /* broker address, TLS, key service */
void proxy_teardown(struct proxy *px);
int proxy_check(struct proxy *px);          /* --check-config: number of problems */
void proxy_reload(struct proxy *px);        /* SIGHUP */
int proxy_drop_privileges(const struct proxy *px);

#endif
