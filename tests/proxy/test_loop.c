/*
 * The proxy's event loop (loop.c) driven in-process: proxy_loop_init binds a
 * real listener on 127.0.0.1 (a free port), the broker is a loopback
 * listener this test holds, and every round is proxy_loop_run_once, the
 * same call proxy_loop_run makes. The relay's stand-ins (proxytest.c) seal
 * with the test's key, so the broker's envelopes are opened and compared.
 *
 * What it checks: a publisher accepted, its CONNECT and PUBLISH relayed (an
 * envelope, not the plaintext); proxy_loop_stop from another thread wakes a
 * loop that would otherwise sleep for seconds; work posted from several
 * threads runs on the loop thread, in each poster's order; a publisher
 * closing mid-packet and a broker closing are cleaned up, and nothing the
 * loop opened stays open (file descriptors counted before and after); many
 * publishers accepted in one round; SIGTERM drains what is in flight, then
 * ends the loop.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <sodium.h>

#include "log.h"
#include "loop.h"
#include "mqtt_test.h"
#include "proxy.h"
#include "proxytest.h"

/* ---- Stand-ins for what loop.c calls in files this test does not link ---- */

static unsigned g_ticks;      /* proxy_metrics_publish: once per tick */
static unsigned g_stopping;   /* proxy_notify_stopping: SIGTERM began a drain */

int proxy_metrics_start(struct proxy *px)
{
	(void)px;
	return 0;
}

void proxy_metrics_publish(struct proxy *px)
{
	(void)px;
	g_ticks++;
}

void proxy_notify_tick(struct proxy *px, uint64_t now_ms)
{
	(void)px;
	(void)now_ms;
}

void proxy_notify_ready(struct proxy *px)
{
	(void)px;
}

void proxy_notify_reloading(struct proxy *px)
{
	(void)px;
}

void proxy_notify_stopping(struct proxy *px)
{
	(void)px;
	g_stopping++;
}

void proxy_reload(struct proxy *px)
{
	(void)px;
}

int proxy_audit_start(struct proxy *px)
{
	(void)px;
	return 0;
}

void proxy_stats_json(struct proxy *px, char *out, size_t cap)
{
	snprintf(out, cap, "{\"active\":%u}\n", px->nconns);
}

/* ---- Harness ---------------------------------------------------------------- */

#define MAXP (64U * 1024U)

static struct {
	struct proxy px;
	int fds_before;   /* open before the loop existed */
	int blfd;         /* the fake broker's listener */
	int lport;        /* the proxy's listening port */
	int ended;        /* proxy_loop_run_once said the loop is over */
	struct pt_in in;
} H;

static char g_listen[] = "127.0.0.1:0";
static uint8_t pkt[MAXP + 256];

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000U + (uint64_t)ts.tv_nsec / 1000000U;
}

/* One round of the real loop, as proxy_loop_run makes it. */
int pt_pump_once(int timeout_ms)
{
	int r;

	if (H.ended)
		return 0;
	r = proxy_loop_run_once(&H.px, timeout_ms);
	CU_ASSERT(r >= 0);
	H.ended = r == 1;
	return 0;
}

static int up(void)
{
	struct sockaddr_in a;
	socklen_t al = sizeof a;
	char list[40];
	int port = 0;

	memset(&H, 0, sizeof H);
	H.fds_before = pt_count_fds();
	H.blfd = pt_listen_loopback(&port);
	snprintf(list, sizeof list, "127.0.0.1:%d", port);
	H.px.cfg.listen[0] = g_listen;
	H.px.cfg.nlisten = 1;
	H.px.cfg.drain_timeout_ms = 10000;
	if (H.blfd < 0 || pt_proxy_init(&H.px, list, MAXP) != 0 || proxy_loop_init(&H.px) != 0 ||
	    H.px.nlfds != 1 || getsockname(H.px.lfds[0], (struct sockaddr *)&a, &al) != 0)
		return -1;
	H.lport = ntohs(a.sin_port);
	return 0;
}

/* Everything closed: the loop's descriptors, the broker's, the test's. */
static void down(void)
{
	if (!H.ended)
		proxy_loop_stop(&H.px);
	for (int i = 0; i < 10 && !H.ended; i++)
		pt_pump_once(100);
	CU_ASSERT(H.ended);
	CU_ASSERT(H.px.nconns == 0);
	proxy_loop_free(&H.px);
	pt_proxy_free(&H.px);
	close(H.blfd);
	pt_in_free(&H.in);
	MT_CHECK(pt_count_fds() == H.fds_before, "%d descriptors open, %d before the loop",
		pt_count_fds(), H.fds_before);
}

/* A publisher's TCP connection to the proxy's listener (not yet accepted). */
static int dial_proxy(void)
{
	return pt_dial_loopback(H.lport);
}

/* Pump the loop until the proxy dials the broker; the broker's end or -1. */
static int accept_broker(void)
{
	for (int i = 0; i < 500; i++) {
		struct pollfd pf = { .fd = H.blfd, .events = POLLIN };

		if (poll(&pf, 1, 0) == 1) {
			int fd = accept4(H.blfd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0)
				pt_nonblock(fd);
			return fd;
		}
		pt_pump_once(10);
	}
	return -1;
}

/* A publisher relaying through the loop (MQTT @p version): CONNECT out, CONNACK back. */
static int relaying_v(uint8_t version, const char *client_id, int *pub, int *brk)
{
	struct cspec cs = { .version = version, .keepalive = 60, .clean = 1,
		.client_id = client_id };
	struct mqtt_connect c;
	size_t n;

	*brk = -1;
	*pub = dial_proxy();
	if (*pub < 0)
		return -1;
	n = build_connect(pkt, sizeof pkt, &cs);
	pt_send_all(*pub, pkt, n);
	*brk = accept_broker();
	if (*brk < 0)
		return -1;
	n = pt_recv_packet(&H.in, *brk, pkt, sizeof pkt);
	MT_CHECK(n && pkt[0] == 0x10 && mqtt_parse_connect(pkt, n, &c) == MQTT_OK &&
		span_eq_str(c.client_id, client_id), "the broker got no CONNECT of %s", client_id);
	if (!n || pkt[0] != 0x10)
		return -1;
	if (version == MQTT_V5)
		pt_send_all(*brk, (const uint8_t[]){ 0x20, 3, 0, 0, 0 }, 5);
	else
		pt_send_all(*brk, (const uint8_t[]){ 0x20, 2, 0, 0 }, 4);
	n = pt_recv_packet(&H.in, *pub, pkt, sizeof pkt);
	return n == (version == MQTT_V5 ? 5U : 4U) && pkt[0] == 0x20 ? 0 : -1;
}

static int relaying(const char *client_id, int *pub, int *brk)
{
	return relaying_v(MQTT_V311, client_id, pub, brk);
}

/* Run the loop for about @p ms. */
static void pump_ms(int ms)
{
	for (uint64_t t = now_ms(); now_ms() - t < (uint64_t)ms;)
		pt_pump_once(10);
}

/* Pump until @p cond holds or about 2 s pass. */
#define PUMP_UNTIL(cond) \
	do { for (int i_ = 0; i_ < 200 && !(cond); i_++) pt_pump_once(10); } while (0)

/* ---- Tests --------------------------------------------------------------- */

static void test_relay_through_loop(void)
{
	static const char msg[] = "the plaintext the broker must never see";
	int pub, brk;
	size_t n;

	CU_ASSERT_FATAL(up() == 0);
	CU_ASSERT_FATAL(relaying("loop-1", &pub, &brk) == 0);
	CU_ASSERT(H.px.nconns == 1 && H.px.st.accepted == 1);
	n = build_publish(pkt, sizeof pkt, MQTT_V311, 0x02, "loop/t", 7, NULL, msg,
		sizeof msg - 1);
	pt_send_all(pub, pkt, n);
	n = pt_recv_packet(&H.in, brk, pkt, sizeof pkt);
	CU_ASSERT(n && pkt[0] == 0x32);
	CU_ASSERT(n && pt_check_sealed(pkt, n, MQTT_V311, "loop/t", msg, sizeof msg - 1));
	CU_ASSERT(n && !memmem(pkt, n, msg, sizeof msg - 1));
	/* The broker's PUBACK comes back to the publisher. */
	pt_send_all(brk, (const uint8_t[]){ 0x40, 2, 0, 7 }, 4);
	n = pt_recv_packet(&H.in, pub, pkt, sizeof pkt);
	CU_ASSERT(n == 4 && pkt[0] == 0x40 && pkt[3] == 7);
	/* The tick runs within rounds that wait for nothing. */
	{
		unsigned t0 = g_ticks;
		uint64_t t = now_ms();

		while (g_ticks == t0 && now_ms() - t < 2000)
			pt_pump_once(-1);
		CU_ASSERT(g_ticks > t0);
	}
	close(pub);
	close(brk);
	down();
}

struct stopper {
	struct proxy *px;
	uint64_t at;      /* when it called proxy_loop_stop */
};

static void *stop_later(void *arg)
{
	struct stopper *s = arg;

	usleep(100 * 1000);
	s->at = now_ms();
	proxy_loop_stop(s->px);
	return NULL;
}

/* The loop waits for 5 s with no tick due; a stop from another thread
 * must end that wait at once and close the open connection. */
static void test_stop_wakes(void)
{
	struct stopper s = { .px = &H.px };
	pthread_t th;
	int pub, brk, r;
	uint64_t done;

	CU_ASSERT_FATAL(up() == 0);
	CU_ASSERT_FATAL(relaying("loop-stop", &pub, &brk) == 0);
	H.px.next_tick = now_ms() + 60000;
	CU_ASSERT_FATAL(pthread_create(&th, NULL, stop_later, &s) == 0);
	r = proxy_loop_run_once(&H.px, 5000);
	done = now_ms();
	pthread_join(th, NULL);
	CU_ASSERT(r == 1);
	H.ended = r == 1;
	MT_CHECK(s.at && done - s.at < 1000, "the loop ended %llu ms after the stop",
		(unsigned long long)(done - s.at));
	CU_ASSERT(H.px.nconns == 0);
	/* The broker and the publisher see their connections closed. */
	CU_ASSERT(pt_slurp(&H.in, brk) < 0);
	CU_ASSERT(pt_slurp(&H.in, pub) < 0);
	close(pub);
	close(brk);
	down();
}

#define POSTERS 4
#define POSTS 50

struct item {
	struct proxy_work w;   /* first: the loop hands back this pointer */
	int poster, seq;
};

static struct item g_items[POSTERS][POSTS];
static pthread_t g_loop_thread;
static atomic_int g_ran, g_wrong_thread, g_out_of_order;
static int g_last[POSTERS];

static void run_item(struct proxy *px, struct proxy_work *w)
{
	struct item *it = (struct item *)w;

	(void)px;
	if (!pthread_equal(pthread_self(), g_loop_thread))
		atomic_fetch_add(&g_wrong_thread, 1);
	if (it->seq != g_last[it->poster] + 1)
		atomic_fetch_add(&g_out_of_order, 1);
	g_last[it->poster] = it->seq;
	atomic_fetch_add(&g_ran, 1);
}

static void *poster(void *arg)
{
	int p = (int)(intptr_t)arg;

	for (int i = 0; i < POSTS; i++) {
		g_items[p][i] = (struct item){ .w.fn = run_item, .poster = p, .seq = i };
		proxy_loop_post(&H.px, &g_items[p][i].w);
		if (i % 10 == 0)
			usleep(1000);
	}
	return NULL;
}

/* Work handed over by other threads (as the key service or the ticker
 * would) runs on the loop thread, each poster's items in its order, and
 * wakes a loop that has nothing else to do for seconds. */
static void test_posted_work(void)
{
	pthread_t th[POSTERS];
	uint64_t t0;

	CU_ASSERT_FATAL(up() == 0);
	g_loop_thread = pthread_self();
	for (int p = 0; p < POSTERS; p++)
		g_last[p] = -1;
	H.px.next_tick = now_ms() + 60000;
	for (int p = 0; p < POSTERS; p++)
		CU_ASSERT_FATAL(pthread_create(&th[p], NULL, poster, (void *)(intptr_t)p) == 0);
	t0 = now_ms();
	while (atomic_load(&g_ran) < POSTERS * POSTS && now_ms() - t0 < 3000) {
		H.px.next_tick = now_ms() + 60000;
		CU_ASSERT(proxy_loop_run_once(&H.px, 5000) == 0);
	}
	for (int p = 0; p < POSTERS; p++)
		pthread_join(th[p], NULL);
	MT_CHECK(atomic_load(&g_ran) == POSTERS * POSTS, "%d of %d posted items ran",
		atomic_load(&g_ran), POSTERS * POSTS);
	CU_ASSERT(now_ms() - t0 < 3000);
	CU_ASSERT(atomic_load(&g_wrong_thread) == 0);
	CU_ASSERT(atomic_load(&g_out_of_order) == 0);
	down();
}

/* A publisher that leaves half-way through a PUBLISH, and a broker that
 * closes: both connections are gone, nothing sealed from the fragment,
 * and (down) no descriptor stays open. */
static void test_closes_cleaned_up(void)
{
	int pub, brk;
	unsigned seals;
	size_t n;

	CU_ASSERT_FATAL(up() == 0);
	CU_ASSERT_FATAL(relaying("loop-half", &pub, &brk) == 0);
	seals = pt_seals;
	n = build_publish(pkt, sizeof pkt, MQTT_V311, 0x02, "half/t", 3, NULL, "halfway", 7);
	pt_send_all(pub, pkt, n / 2);
	pump_ms(50);
	close(pub);
	PUMP_UNTIL(H.px.nconns == 0);
	CU_ASSERT(H.px.nconns == 0);
	CU_ASSERT(pt_seals == seals);
	CU_ASSERT(pt_slurp(&H.in, brk) < 0 && H.in.len == 0);
	close(brk);

	CU_ASSERT_FATAL(relaying("loop-brk", &pub, &brk) == 0);
	CU_ASSERT(H.px.nconns == 1);
	close(brk);
	PUMP_UNTIL(H.px.nconns == 0);
	CU_ASSERT(H.px.nconns == 0);
	CU_ASSERT(pt_slurp(&H.in, pub) < 0);
	CU_ASSERT(H.px.st.closed == 2);
	close(pub);
	down();
}

/* Publishers waiting in the backlog all come in with one round. */
static void test_many_accepts(void)
{
	enum { N = 60 };
	int fds[N];

	CU_ASSERT_FATAL(up() == 0);
	for (int i = 0; i < N; i++) {
		fds[i] = dial_proxy();
		CU_ASSERT_FATAL(fds[i] >= 0);
	}
	CU_ASSERT(proxy_loop_run_once(&H.px, 1000) == 0);
	MT_CHECK(H.px.nconns == N, "%u of %d accepted in one round", H.px.nconns, N);
	CU_ASSERT(H.px.st.accepted == N);
	proxy_loop_stop(&H.px);
	pt_pump_once(1000);
	CU_ASSERT(H.ended && H.px.nconns == 0);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	down();
}

/* SIGTERM: the listener closes, a QoS 1 message in flight is waited for,
 * and once the broker acknowledged it the loop ends by itself. */
static void test_sigterm_drains(void)
{
	int pub, brk;
	size_t n;

	CU_ASSERT_FATAL(up() == 0);
	CU_ASSERT_FATAL(relaying("loop-drain", &pub, &brk) == 0);
	n = build_publish(pkt, sizeof pkt, MQTT_V311, 0x02, "drain/t", 9, NULL, "last", 4);
	pt_send_all(pub, pkt, n);
	n = pt_recv_packet(&H.in, brk, pkt, sizeof pkt);
	CU_ASSERT_FATAL(n && pkt[0] == 0x32 && H.px.conns && H.px.conns->inflight == 1);
	/* Blocked in this thread since proxy_loop_init: its signalfd takes it. */
	CU_ASSERT_FATAL(pthread_kill(pthread_self(), SIGTERM) == 0);
	PUMP_UNTIL(H.px.draining);
	CU_ASSERT(H.px.draining && g_stopping == 1 && H.px.nlfds == 0);
	pump_ms(300);
	CU_ASSERT(!H.ended);   /* still in flight */
	pt_send_all(brk, (const uint8_t[]){ 0x40, 2, 0, 9 }, 4);
	PUMP_UNTIL(H.ended);
	CU_ASSERT(H.ended && H.px.nconns == 0);
	/* The PUBACK reached the publisher before its connection closed. */
	n = pt_recv_packet(&H.in, pub, pkt, sizeof pkt);
	CU_ASSERT(n == 4 && pkt[0] == 0x40);
	close(pub);
	close(brk);
	down();
}

/* ---- Parked seals (no durable counter reservation: the loop never waits) ---- */

/* Has @p fd anything to read within @p ms (pumping the loop meanwhile)? */
static int readable_within(int fd, int ms)
{
	for (uint64_t t = now_ms(); now_ms() - t < (uint64_t)ms;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };

		if (poll(&pf, 1, 0) == 1)
			return 1;
		pt_pump_once(10);
	}
	return 0;
}

/* The ticker's end of a round, from its own thread: twice, posted once. */
static void *ticker_round(void *arg)
{
	(void)arg;
	H.px.io_done(&H.px);
	H.px.io_done(&H.px);   /* still pending: not posted again */
	return NULL;
}

static const char *const park_msg[] = { "m1", "m2", "m3", "m4", "m5" };
static const uint8_t park_qos[] = { 0, 1, 2, 0, 1 };

/* PUBLISH @p i of the parked run: v5 sets alias 5 first, then uses it. */
static size_t park_publish(uint8_t version, int i)
{
	struct pb props;

	pb_init(&props);
	pb_u8(&props, 0x23);
	pb_u16(&props, 5);
	return build_publish(pkt, sizeof pkt, version, (uint8_t)(park_qos[i] << 1),
		version == MQTT_V5 && i > 0 ? "" : "park/a", (uint16_t)(park_qos[i] ? 20 + i : 0),
		version == MQTT_V5 ? &props : NULL, park_msg[i], 2);
}

/*
 * The first seal parks: the connection reads nothing more, the broker gets
 * nothing; the loop's io_done hook (from another thread, as the ticker calls it, twice: posted
 * once) resumes it, and the parked PUBLISH and all after it reach the
 * broker exactly once, in order, counted once.
 */
static void park_resume(uint8_t version)
{
	static uint8_t all[5 * 64];
	unsigned seals0;
	size_t n, len = 0, din;
	int pub, brk;
	struct conn *c;

	CU_ASSERT_FATAL(up() == 0);
	CU_ASSERT_FATAL(relaying_v(version, "park-1", &pub, &brk) == 0);
	c = H.px.conns;
	seals0 = pt_seals;
	pt_parks = 0;
	pt_park_left = 1;
	for (int i = 0; i < 4; i++) {
		n = park_publish(version, i);
		memcpy(all + len, pkt, n);
		len += n;
	}
	pt_send_all(pub, all, len);
	CU_ASSERT(!readable_within(brk, 300));
	CU_ASSERT_FATAL(c->parked && H.px.parked == c && pt_parks == 1);
	CU_ASSERT(!(c->ev_down & EPOLLIN));
	/* Nothing counted or tracked twice when it is processed again. */
	CU_ASSERT(H.px.st.publishes == 0 && c->inflight == 0 && !c->q2);
	/* Parked: a fifth PUBLISH stays in the socket. */
	din = c->din.len;
	n = park_publish(version, 4);
	pt_send_all(pub, pkt, n);
	pump_ms(200);
	CU_ASSERT(c->din.len == din && c->parked);
	{
		pthread_t th;

		CU_ASSERT_FATAL(pthread_create(&th, NULL, ticker_round, NULL) == 0);
		pthread_join(th, NULL);
	}
	CU_ASSERT(H.px.posted == &H.px.io_work && !H.px.io_work.next);
	for (int i = 0; i < 5; i++) {
		struct mqtt_publish p;

		n = pt_recv_packet(&H.in, brk, pkt, sizeof pkt);
		MT_CHECK(n && pt_check_sealed(pkt, n, version, "park/a", park_msg[i], 2),
			"publish %d (%s) not relayed in order, sealed", i, park_msg[i]);
		CU_ASSERT(n && mqtt_parse_publish(pkt, n, version, &p) == MQTT_OK &&
			p.qos == park_qos[i] && !p.has_alias);
	}
	CU_ASSERT(!readable_within(brk, 200));   /* exactly once */
	CU_ASSERT(pt_seals - seals0 == 5 && pt_parks == 1);
	CU_ASSERT(!c->parked && !H.px.parked && (c->ev_down & EPOLLIN));
	CU_ASSERT(H.px.st.publishes == 5 && H.px.st.publishes_qos[0] == 2 &&
		H.px.st.publishes_qos[1] == 2 && H.px.st.publishes_qos[2] == 1);
	CU_ASSERT(c->inflight == 3 && c->naliases == (version == MQTT_V5 ? 1U : 0U));
	CU_ASSERT(!atomic_load(&H.px.io_posted));
	close(pub);
	close(brk);
	down();
}

static void test_park_v311(void)
{
	park_resume(MQTT_V311);
}

static void test_park_v5_alias(void)
{
	park_resume(MQTT_V5);
}

/* No reservation within the bound: the PUBLISH refused (as a failed seal:
 * the connection closes), nothing reaches the broker, the list is empty. */
static void test_park_timeout(void)
{
	int pub, brk;
	size_t n;
	uint64_t t0;

	CU_ASSERT_FATAL(up() == 0);
	H.px.park_timeout_ms = 400;
	CU_ASSERT_FATAL(relaying("park-2", &pub, &brk) == 0);
	pt_park_left = 1000000;
	n = build_publish(pkt, sizeof pkt, MQTT_V311, 0x02, "park/t", 3, NULL, "late", 4);
	pt_send_all(pub, pkt, n);
	PUMP_UNTIL(H.px.parked);
	CU_ASSERT_FATAL(H.px.parked != NULL);
	t0 = now_ms();
	/* Rounds of the ticker that bring no reservation keep the first park's time. */
	H.px.io_done(&H.px);
	PUMP_UNTIL(H.px.nconns == 0);
	CU_ASSERT(H.px.nconns == 0 && !H.px.parked);
	CU_ASSERT(now_ms() - t0 >= 250 && now_ms() - t0 < 2000);
	CU_ASSERT(H.px.st.refused_publishes == 1 && H.px.st.park_timeouts == 1);
	CU_ASSERT(!readable_within(brk, 100) || pt_slurp(&H.in, brk) < 0);
	pt_park_left = 0;
	close(pub);
	close(brk);
	down();
}

/* Parked connections closing: a reset publisher (taken off the list from
 * its middle), then the rest at the loop's end; nothing left behind
 * (descriptors counted in down(), ASan for the memory). */
static void test_park_close(void)
{
	int pub[3], brk[3];
	size_t n;

	CU_ASSERT_FATAL(up() == 0);
	for (int i = 0; i < 3; i++) {
		char id[16];

		snprintf(id, sizeof id, "park-c%d", i);
		CU_ASSERT_FATAL(relaying(id, &pub[i], &brk[i]) == 0);
	}
	pt_park_left = 1000000;
	for (int i = 0; i < 3; i++) {
		n = build_publish(pkt, sizeof pkt, MQTT_V311, 0x00, "park/c", 0, NULL, "c", 1);
		pt_send_all(pub[i], pkt, n);
	}
	PUMP_UNTIL(H.px.parked && H.px.parked->park_next && H.px.parked->park_next->park_next);
	CU_ASSERT_FATAL(H.px.parked && H.px.parked->park_next &&
		H.px.parked->park_next->park_next);
	/* The middle one (parked second) resets its connection. */
	setsockopt(pub[1], SOL_SOCKET, SO_LINGER, &(struct linger){ 1, 0 }, sizeof(struct linger));
	close(pub[1]);
	PUMP_UNTIL(H.px.nconns == 2);
	CU_ASSERT(H.px.nconns == 2 && H.px.parked && H.px.parked->park_next &&
		!H.px.parked->park_next->park_next && !H.px.parked->park_prev);
	pt_park_left = 0;
	close(pub[0]);
	close(pub[2]);
	for (int i = 0; i < 3; i++)
		close(brk[i]);
	down();   /* the loop's end closes the two still parked */
	CU_ASSERT(!H.px.parked);
}

/* A CONNECT's will parks like a PUBLISH: the broker is dialled only once
 * the will is sealed, and gets the sealed will. */
static void test_park_will(void)
{
	struct cspec cs = { .version = MQTT_V311, .keepalive = 60, .clean = 1,
		.client_id = "park-w", .will_topic = "park/will", .will_payload = "gone",
		.will_payload_len = 4 };
	struct mqtt_connect cn;
	struct pollfd pf;
	unsigned seals0 = pt_seals;
	int pub, brk;
	size_t n;

	CU_ASSERT_FATAL(up() == 0);
	pub = dial_proxy();
	CU_ASSERT_FATAL(pub >= 0);
	pt_park_left = 1;
	n = build_connect(pkt, sizeof pkt, &cs);
	pt_send_all(pub, pkt, n);
	PUMP_UNTIL(H.px.parked);
	CU_ASSERT_FATAL(H.px.parked != NULL);
	pump_ms(200);
	pf = (struct pollfd){ .fd = H.blfd, .events = POLLIN };
	CU_ASSERT(poll(&pf, 1, 0) == 0);   /* not dialled while the will waits */
	H.px.io_done(&H.px);
	brk = accept_broker();
	CU_ASSERT_FATAL(brk >= 0);
	n = pt_recv_packet(&H.in, brk, pkt, sizeof pkt);
	CU_ASSERT(n && mqtt_parse_connect(pkt, n, &cn) == MQTT_OK && cn.will &&
		span_eq_str(cn.will_topic, "park/will") && !span_eq(cn.will_payload, "gone", 4));
	CU_ASSERT(pt_seals - seals0 == 1 && !H.px.parked);
	close(pub);
	close(brk);
	down();
}

int main(void)
{
	static const struct mt_test tests[] = {
		{ "Loop: publisher accepted, CONNECT and PUBLISH relayed", test_relay_through_loop },
		{ "Loop: stop from another thread wakes it", test_stop_wakes },
		{ "Loop: work posted from other threads runs on the loop thread", test_posted_work },
		{ "Loop: closes mid-packet cleaned up, no descriptor leaks", test_closes_cleaned_up },
		{ "Loop: many publishers accepted in one round", test_many_accepts },
		{ "Loop: SIGTERM drains in-flight messages, then ends", test_sigterm_drains },
		{ "Park: v3.1.1 QoS 0/1/2 parked, resumed by posted work, in order once",
			test_park_v311 },
		{ "Park: v5 with a topic alias parked and resumed", test_park_v5_alias },
		{ "Park: no reservation within the bound: refused, closed", test_park_timeout },
		{ "Park: parked connections closing leave the list", test_park_close },
		{ "Park: a CONNECT's will parks; the broker is dialled after", test_park_will },
		{ NULL, NULL },
	};

	return pt_run("proxy loop", tests);
}
