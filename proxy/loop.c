/*
 * The event loop: listeners, signals (signalfd), the stats socket, timers
 * and dispatch to connections. Single-threaded; the key service runs on
 * Paho's threads inside e2e_publisher and shares only its locked sender.
 * Other threads reach the loop only through its eventfd: proxy_loop_stop
 * and proxy_loop_post (work run on the loop thread; the key service's
 * ticker posts px->io_work so parked seals retry, io_done).
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
#include <sys/eventfd.h>
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
#define TAG_WAKE   ((void *)(uintptr_t)8)
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
	if (px->parked)
		return 0;   /* a parked PUBLISH is still to go (bounded by the park timeout) */
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

/* Loop thread: the ticker finished a round; parked seals retry. */
static void resume_parked(struct proxy *px, struct proxy_work *w)
{
	(void)w;
	/* Cleared first: a round that ends during the retries posts again. */
	atomic_store(&px->io_posted, 0);
	conn_resume_parked(px);
}

/*
 * The key service's on_io_done (e2e_publisher_config), on its I/O thread:
 * hand the parked connections' retry to the loop (posted once until run).
 */
static void io_done(void *ctx)
{
	struct proxy *px = ctx;

	/* --check-config makes no loop; an item still pending is not posted twice. */
	if (!px->loop_inited || atomic_exchange(&px->io_posted, 1))
		return;
	proxy_loop_post(px, &px->io_work);
}

int proxy_loop_init(struct proxy *px)
{
	sigset_t set;

	/* Nothing open yet: proxy_loop_free closes only what is set below. */
	px->sigfd = px->evfd = -1;
	px->statsfd = -1;
	px->nlfds = 0;
	pthread_mutex_init(&px->post_mu, NULL);
	px->posted = NULL;
	px->io_work.fn = resume_parked;
	px->io_done = io_done;
	atomic_store(&px->io_posted, 0);
	atomic_store(&px->stop_req, 0);
	px->loop_inited = 1;
	px->next_tick = e2e_mono_ms() + TICK_MS;
	px->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (px->epfd < 0)
		return -1;
	px->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (px->evfd < 0 || add_fd(px, px->evfd, TAG_WAKE) != 0)
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

/* Another thread asked for the loop: run what it posted, oldest first. */
static void on_wake(struct proxy *px)
{
	struct proxy_work *list, *fifo = NULL;
	uint64_t n;

	(void)!read(px->evfd, &n, sizeof n);   /* resets the count; EAGAIN if none */
	pthread_mutex_lock(&px->post_mu);
	list = px->posted;
	px->posted = NULL;
	pthread_mutex_unlock(&px->post_mu);
	while (list) {
		struct proxy_work *next = list->next;

		list->next = fifo;
		fifo = list;
		list = next;
	}
	while (fifo) {
		struct proxy_work *w = fifo;

		/* Taken off before the call: fn may free it or post it again. */
		fifo = w->next;
		w->next = NULL;
		w->fn(px, w);
	}
}

static void wake(struct proxy *px)
{
	uint64_t one = 1;

	/* Fails only when the counter would overflow: the loop is awake then. */
	(void)!write(px->evfd, &one, sizeof one);
}

void proxy_loop_post(struct proxy *px, struct proxy_work *w)
{
	pthread_mutex_lock(&px->post_mu);
	w->next = px->posted;
	px->posted = w;
	pthread_mutex_unlock(&px->post_mu);
	wake(px);
}

void proxy_loop_stop(struct proxy *px)
{
	atomic_store(&px->stop_req, 1);
	wake(px);
}

/* The loop ends: close every connection now. */
static void finish(struct proxy *px)
{
	while (px->conns)
		conn_close(px->conns, NULL);
	conn_reap(px);
}

static void dispatch(struct proxy *px, const struct epoll_event *ev)
{
	void *p = ev->data.ptr;

	if (p == TAG_SIGNAL) {
		on_signal(px);
	} else if (p == TAG_WAKE) {
		on_wake(px);
	} else if (p == TAG_STATS) {
		on_stats(px);
	} else if (p == TAG_LISTEN) {
		for (int l = 0; l < px->nlfds; l++)
			on_accept(px, px->lfds[l]);
	} else {
		struct conn *c = (struct conn *)((uintptr_t)p & ~(uintptr_t)1);

		if (c->dead)
			return;   /* closed earlier in this batch */
		if ((uintptr_t)p & 1)
			conn_on_up(c, ev->events);
		else
			conn_on_down(c, ev->events);
	}
}

int proxy_loop_run_once(struct proxy *px, int timeout_ms)
{
	struct epoll_event evs[128];
	uint64_t now = e2e_mono_ms();
	uint64_t to_tick = px->next_tick > now ? px->next_tick - now : 0;
	int n;

	if (timeout_ms < 0 || (uint64_t)timeout_ms > to_tick)
		timeout_ms = (int)to_tick;
	n = epoll_wait(px->epfd, evs, 128, timeout_ms);
	if (n < 0 && errno != EINTR) {
		plog(LOG_ERR, "epoll_wait: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++)
		dispatch(px, &evs[i]);
	conn_reap(px);
	if (atomic_load(&px->stop_req)) {
		plog(LOG_INFO, "stopped; closing %u connection(s)", px->nconns);
		finish(px);
		return 1;
	}
	now = e2e_mono_ms();
	if (now >= px->next_tick) {
		px->next_tick = now + TICK_MS;
		/* A short WatchdogSec must not wait for the next tick. */
		if (px->watchdog_us && px->next_watchdog_ms < px->next_tick)
			px->next_tick = px->next_watchdog_ms > now ? px->next_watchdog_ms : now + 1;
		sweep_timeouts(px, now);
		conn_expire_parked(px, now);
		conn_reap(px);
		proxy_metrics_publish(px);
		proxy_notify_tick(px, now);
	}
	if (px->draining && (drained(px) || now > px->drain_deadline)) {
		int clean = drained(px);

		plog(clean ? LOG_INFO : LOG_WARNING, "drain %s; closing %u connection(s)",
			clean ? "complete" : "timed out with messages in flight", px->nconns);
		finish(px);
		return 1;
	}
	return 0;
}

int proxy_loop_run(struct proxy *px)
{
	int r;

	/* Listeners bound (loop_init) and key service connected (setup). */
	if (proxy_audit_start(px) != 0)
		return 1;
	proxy_metrics_publish(px);
	proxy_notify_ready(px);
	while ((r = proxy_loop_run_once(px, -1)) == 0)
		;
	return r < 0 ? 1 : 0;
}

void proxy_loop_free(struct proxy *px)
{
	int *fds[] = { &px->sigfd, &px->evfd, &px->statsfd, &px->epfd };

	if (!px->loop_inited)
		return;
	for (int i = 0; i < px->nlfds; i++)
		close(px->lfds[i]);
	px->nlfds = 0;
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	/* Work still posted belongs to its posters: dropped, not run. */
	px->posted = NULL;
	pthread_mutex_destroy(&px->post_mu);
	px->loop_inited = 0;
}
