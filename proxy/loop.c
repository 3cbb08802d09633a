/*
 * The event loop: listeners, signals (signalfd), the stats socket, timers
 * and dispatch to connections. Single-threaded; the key service runs on
 * Paho's threads inside e2e_publisher and shares only its locked sender.
 */
#include <arpa/inet.h>
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "proxy.h"

#define TAG_LISTEN ((void *)(uintptr_t)2)
#define TAG_SIGNAL ((void *)(uintptr_t)4)
#define TAG_STATS  ((void *)(uintptr_t)6)
#define TICK_MS 250
#define IDLE_TRIM_TICKS 4   /* free an idle connection's buffers after ~1 s */
#define TRIM_RETURN_BYTES (4U << 20)

static int listen_on(struct proxy *px, const char *spec)
{
	char host[256], port[16];
	struct addrinfo hints = { 0 }, *ai = NULL;
	int fd = -1, one = 1, rc;

	if (e2e_hostport_split(spec, host, sizeof host, port, sizeof port) != 0) {
		plog(LOG_ERR, "listen: '%s' is not ADDR:PORT", spec);
		return -1;
	}
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0) {
		plog(LOG_ERR, "listen %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 512) != 0) {
		plog(LOG_ERR, "listen %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	px->lfds[px->nlfds++] = fd;
	plog(LOG_INFO, "listening on %s", spec);
	return 0;
}

static int add_fd(struct proxy *px, int fd, void *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(px->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int stats_socket(struct proxy *px)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (!px->cfg.stats_socket)
		return 0;
	if (strlen(px->cfg.stats_socket) >= sizeof sa.sun_path) {
		plog(LOG_ERR, "stats-socket path too long");
		return -1;
	}
	strcpy(sa.sun_path, px->cfg.stats_socket);
	/* A socket someone still answers on belongs to a running instance:
	 * never take it over. A stale one (nobody listening) is replaced. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
		close(fd);
		plog(LOG_ERR, "stats-socket %s: in use by a running instance", sa.sun_path);
		return -1;
	}
	if (fd >= 0)
		close(fd);
	unlink(sa.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 8) != 0) {
		plog(LOG_ERR, "stats-socket %s: %s", sa.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	px->statsfd = fd;
	return add_fd(px, fd, TAG_STATS);
}

static void on_stats(struct proxy *px)
{
	char buf[2048];
	int fd = accept4(px->statsfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	proxy_stats_json(px, buf, sizeof buf);
	(void)!write(fd, buf, strlen(buf));   /* small: fits the socket buffer */
	close(fd);
}

static void on_accept(struct proxy *px, int lfd)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		char host[INET6_ADDRSTRLEN] = "?", peer[64];
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof host);
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof host);
		snprintf(peer, sizeof peer, "%s:%u", host, ss.ss_family == AF_INET ?
			ntohs(((struct sockaddr_in *)&ss)->sin_port) :
			ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
		if (px->draining || px->nconns >= px->cfg.max_connections) {
			px->st.refused_conns++;
			plog(LOG_WARNING, "%s: refused: %s", peer, px->draining ? "draining" :
				"max-connections reached");
			close(fd);
			continue;
		}
		px->st.accepted++;
		if (!conn_new(px, fd, peer))
			close(fd);
	}
}

static void sweep_timeouts(struct proxy *px, uint64_t now)
{
	struct conn *c = px->conns, *next;
	size_t freed = 0;

	for (; c; c = next) {
		uint64_t idle = px->cfg.idle_timeout_ms ? px->cfg.idle_timeout_ms :
			(uint64_t)c->keepalive * 1500U;

		next = c->next;
		if (c->deadline_ms && now > c->deadline_ms) {
			px->st.timeouts++;
			conn_close(c, c->st == ST_CONNECT ? "no CONNECT in time" :
				"broker connection/TLS handshake timed out");
		} else if (c->st == ST_RELAY && idle && now - c->last_down_ms > idle) {
			px->st.timeouts++;
			conn_close(c, "idle (keepalive exceeded)");
		} else if (c->st == ST_RELAY && c->idle_ticks < 255 &&
			   ++c->idle_ticks == IDLE_TRIM_TICKS) {
			freed += conn_trim(c);
		}
	}
#ifdef __GLIBC__
	/* Many connections went idle at once (after a burst of connects): hand
	 * the pages back to the kernel, or they stay in RSS inside the heap. */
	if (freed >= TRIM_RETURN_BYTES)
		(void)malloc_trim(0);
#else
	(void)freed;
#endif
}

/* Draining is done when nothing is in flight or queued towards the broker. */
static int drained(const struct proxy *px)
{
	for (const struct conn *c = px->conns; c; c = c->next)
		if (c->st != ST_CONNECT && (c->inflight || c->uout.len))
			return 0;
	return 1;
}

static void start_drain(struct proxy *px)
{
	plog(LOG_INFO, "SIGTERM: draining %u connection(s)", px->nconns);
	px->draining = 1;
	proxy_notify_stopping(px);
	px->drain_deadline = e2e_mono_ms() + px->cfg.drain_timeout_ms;
	for (int i = 0; i < px->nlfds; i++) {
		epoll_ctl(px->epfd, EPOLL_CTL_DEL, px->lfds[i], NULL);
		close(px->lfds[i]);
	}
	px->nlfds = 0;
	for (struct conn *c = px->conns; c; c = c->next)
		conn_update(c);   /* stop reading publishers */
}

/* Returns 1 when the loop should end. */
static int on_signal(struct proxy *px)
{
	struct signalfd_siginfo si;

	while (read(px->sigfd, &si, sizeof si) == sizeof si) {
		char buf[2048];

		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			if (!px->draining)
				start_drain(px);
			break;
		case SIGHUP:
			proxy_notify_reloading(px);
			proxy_reload(px);
			px->st.reloads++;
			proxy_notify_ready(px);
			break;
		case SIGUSR1:
			proxy_stats_json(px, buf, sizeof buf);
			plog(LOG_NOTICE, "stats %.*s", (int)strcspn(buf, "\n"), buf);
			break;
		}
	}
	return 0;
}

int proxy_loop_init(struct proxy *px)
{
	sigset_t set;

	px->epfd = epoll_create1(EPOLL_CLOEXEC);
	px->statsfd = -1;
	if (px->epfd < 0)
		return -1;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	/* Blocked in every thread created after this (Paho's too). */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	px->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (px->sigfd < 0 || add_fd(px, px->sigfd, TAG_SIGNAL) != 0)
		return -1;
	for (int i = 0; i < px->cfg.nlisten; i++)
		if (listen_on(px, px->cfg.listen[i]) != 0 ||
		    add_fd(px, px->lfds[px->nlfds - 1], TAG_LISTEN) != 0)
			return -1;
	/* After the signal mask: the metrics thread inherits it. */
	return stats_socket(px) != 0 ? -1 : proxy_metrics_start(px);
}

int proxy_loop_run(struct proxy *px)
{
	struct epoll_event evs[128];
	uint64_t next_tick = e2e_mono_ms() + TICK_MS;

	/* Listeners bound (loop_init) and key service connected (setup). */
	if (proxy_audit_start(px) != 0)
		return 1;
	proxy_metrics_publish(px);
	proxy_notify_ready(px);

	for (;;) {
		uint64_t now = e2e_mono_ms();
		int n = epoll_wait(px->epfd, evs, 128, (int)(next_tick > now ? next_tick - now : 0));

		if (n < 0 && errno != EINTR) {
			plog(LOG_ERR, "epoll_wait: %s", strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == TAG_SIGNAL) {
				on_signal(px);
			} else if (p == TAG_STATS) {
				on_stats(px);
			} else if (p == TAG_LISTEN) {
				for (int l = 0; l < px->nlfds; l++)
					on_accept(px, px->lfds[l]);
			} else {
				struct conn *c = (struct conn *)((uintptr_t)p & ~(uintptr_t)1);

				if (c->dead)
					continue;   /* closed earlier in this batch */
				if ((uintptr_t)p & 1)
					conn_on_up(c, evs[i].events);
				else
					conn_on_down(c, evs[i].events);
			}
		}
		conn_reap(px);
		now = e2e_mono_ms();
		if (now >= next_tick) {
			next_tick = now + TICK_MS;
			/* A short WatchdogSec must not wait for the next tick. */
			if (px->watchdog_us && px->next_watchdog_ms < next_tick)
				next_tick = px->next_watchdog_ms > now ? px->next_watchdog_ms : now + 1;
			sweep_timeouts(px, now);
			conn_reap(px);
			proxy_metrics_publish(px);
			proxy_notify_tick(px, now);
		}
		if (px->draining && (drained(px) || now > px->drain_deadline)) {
			int clean = drained(px);

			plog(clean ? LOG_INFO : LOG_WARNING, "drain %s; closing %u connection(s)",
				clean ? "complete" : "timed out with messages in flight", px->nconns);
			while (px->conns)
				conn_close(px->conns, NULL);
			conn_reap(px);
			return 0;
		}
	}
}
