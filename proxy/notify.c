/*
 * systemd service notification (Type=notify): READY once the listeners are
 * bound and the key service is connected, RELOADING/READY around SIGHUP,
 * STOPPING at SIGTERM, WATCHDOG at half WatchdogSec and a STATUS line with
 * live figures. libsystemd's sd_notify does nothing without NOTIFY_SOCKET,
 * so the proxy run by hand pays one getenv. All calls are on the loop
 * thread at its tick or at a signal, never per message.
 */
#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "log.h"
#include "proxy.h"

#define STATUS_MS 5000U

static void status(struct proxy *px, const char *head)
{
	char line[512];

	snprintf(line, sizeof line, "%sSTATUS=%s%u connection(s), %llu sealed, %llu refused, "
		"key service %s", head ? head : "", px->draining ? "draining: " : "",
		px->nconns, (unsigned long long)px->st.sealed,
		(unsigned long long)px->st.refused_publishes,
		atomic_load_explicit(&px->ksv.up, memory_order_relaxed) ? "up" : "down");
	(void)sd_notify(0, line);
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000U + (uint64_t)ts.tv_nsec / 1000U;
}

void proxy_notify_ready(struct proxy *px)
{
	uint64_t usec = 0;

	/* WATCHDOG_USEC (and WATCHDOG_PID, if set, naming us) come from systemd. */
	/* Called again after each reload: log the interval only when it is new. */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec >= 2000 && usec != px->watchdog_us) {
		px->watchdog_us = usec;
		plog(LOG_INFO, "systemd watchdog: every %llu ms",
			(unsigned long long)(usec / 2000));
	}
	status(px, "READY=1\n");
	px->next_watchdog_ms = e2e_mono_ms() + px->watchdog_us / 2000;
	px->next_status_ms = e2e_mono_ms() + STATUS_MS;
}

/* The loop is alive when this runs: ping at half the watchdog interval. */
void proxy_notify_tick(struct proxy *px, uint64_t now_ms)
{
	if (px->watchdog_us && now_ms >= px->next_watchdog_ms) {
		(void)sd_notify(0, "WATCHDOG=1");
		px->next_watchdog_ms = now_ms + px->watchdog_us / 2000;
	}
	if (now_ms >= px->next_status_ms) {
		status(px, NULL);
		px->next_status_ms = now_ms + STATUS_MS;
	}
}

void proxy_notify_reloading(struct proxy *px)
{
	char line[64];

	/* MONOTONIC_USEC lets Type=notify-reload (systemd >= 253) match the
	 * reload to this request; older systemd ignores it. */
	(void)px;
	snprintf(line, sizeof line, "RELOADING=1\nMONOTONIC_USEC=%llu",
		(unsigned long long)mono_us());
	(void)sd_notify(0, line);
}

void proxy_notify_stopping(struct proxy *px)
{
	status(px, "STOPPING=1\n");
}
