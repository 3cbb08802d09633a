/*
 * mqttload: MQTT 3.1.1 load generator for scripts/bench (raw MQTT over TCP
 * or TLS, epoll, no client library in the way).
 *
 *   mqttload run  --pub HOST:PORT [--tls --cafile F] --sub HOST:PORT --pubs N
 *                 --qos 0|1 --size BYTES [--rate MSG/S] [--warmup S] [--duration S]
 *                 [--open SENDER_DIR] [--watch NAME=PID]...
 *   mqttload idle --pub HOST:PORT --conns N [--src K] [--steps N1,N2,...]
 *   mqttload keys-inproc | keyreq ...     (lg_keys.c)
 *
 * run: N publishers (topic <prefix>/<i>) send to --pub, one subscriber on
 * --sub receives <prefix>/#. Every payload starts with the send time
 * (CLOCK_MONOTONIC ns), the publisher index and a sequence number; the
 * subscriber takes the latency when the message arrives, after opening the
 * envelope with libe2e when --open is given (keys read from the sender's
 * state directory, as a subscriber holds them after a key delivery).
 * --rate 0 saturates: every publisher keeps at most --window messages
 * between sending and arrival at the subscriber (default: ~1 MiB over all
 * publishers, 64..2000 messages; --window 0: open loop, as fast as the
 * socket takes them), and QoS 1 ones at most --inflight (20) unacknowledged. Throughput counts messages that
 * ARRIVE within the window [warmup, warmup + duration]; latency percentiles
 * cover messages SENT within it (all of them are waited for, bounded).
 * CPU of the --watch processes (utime + stime from /proc/<pid>/stat) and of
 * mqttload itself (getrusage) is taken over the same window.
 * Output: one line "RUN key=value ..." on stdout.
 *
 * idle: opens N connections (CONNECT/CONNACK, keep-alive 900 s) with at
 * most --parallel in progress, from 127.0.0.1..K; at each step prints
 * "STEP n ..." and waits for a line on stdin; at the end prints "DONE ..."
 * and holds the connections until stdin is closed.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <poll.h>
#include <unistd.h>

#include "e2e/e2e.h"
#include "lg.h"

#define PROBE_SEQ 0xFFFFFFFFU
#define HDR 16U                  /* send time u64, publisher u32, seq u32 */
#define MAX_WATCH 4
#define MAX_LAT (4U << 20)
#define BATCH_BYTES 65536U

struct watch {
	char name[32];
	int pid;
	double cpu0, cpu1;
};

struct opts {
	struct lg_addr pub, sub;
	int tls;
	const char *cafile, *open_dir, *prefix;
	uint32_t pubs, inflight, size, src, window;
	int qos;
	double rate, warmup, duration, drain;
	struct watch watch[MAX_WATCH];
	int nwatch;
};

/* What the subscriber thread shares with the publishers. */
struct shared {
	_Atomic uint64_t win_start, win_end;   /* ns; 0 until known */
	_Atomic int stop, probe_seen, sub_failed, want_wake;
	_Atomic uint64_t recv_total, recv_win, bad_verdicts, dups;
	_Atomic int bad_last;        /* verdict of the last message not opened, -1: an error */
	_Atomic uint64_t *recv_pub;             /* per publisher: end-to-end window */
	int wake_fd;                            /* eventfd: window space for the publishers */
	uint32_t *lat;                          /* ns, messages sent in the window */
	_Atomic uint32_t nlat;
	uint32_t *last_seq;                     /* per publisher */
};

static struct opts O = { .inflight = 20, .window = UINT32_MAX, .size = 64, .pubs = 1, .warmup = 0.3,
	.duration = 1.5, .drain = 3.0, .prefix = "bench" };
static struct shared S;

static double ns_s(uint64_t ns)
{
	return (double)ns / 1e9;
}

static double self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof v);
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

/* ---- the subscriber ------------------------------------------------------ */

struct sub_ctx {
	struct lg_conn c;
	struct e2e_rx *rx;
	struct e2e_keyring *kr;
	uint8_t *pt;
	size_t pt_cap;
	const char *dir;             /* the sender's directory: keys read again after a rotation */
	uint32_t sender;
	uint64_t reloads;            /* times the keys file was read again */
};

/* Add every key of the sender's keys file to the keyring (again: known
 * keys are kept as they are). */
static int add_keys(struct sub_ctx *x)
{
	char path[512], err[256] = "";
	struct e2e_keystore *ks = NULL;
	int ret = -1;

	snprintf(path, sizeof path, "%s/keys", x->dir);
	if (e2e_keystore_load(&ks, path, 0, err, sizeof err) != E2E_OK) {
		fprintf(stderr, "mqttload: keys %s: %s\n", path, err);
		return -1;
	}
	for (uint32_t i = 0; i < e2e_keystore_count(ks); i++) {
		const struct e2e_keystore_entry *e = e2e_keystore_at(ks, i);
		struct e2e_keyid kid = { .sender = x->sender, .scope = e->scope, .epoch = e->epoch };

		if (e2e_keyring_add(x->kr, &kid, e->key, e->not_after_ms) != E2E_OK)
			goto out;
	}
	ret = e2e_keystore_count(ks) ? 0 : -1;
	if (ret)
		fprintf(stderr, "mqttload: no key in %s\n", path);
out:
	e2e_keystore_free(ks);
	return ret;
}

static int load_keys(struct sub_ctx *x, const char *dir)
{
	char path[512], err[256] = "";
	struct e2e_identity id;
	struct e2e_scopes *tbl = malloc(sizeof *tbl);
	struct e2e_scope_rule *rules = NULL;
	uint32_t sender, nrules = 0;
	int ret = -1;

	snprintf(path, sizeof path, "%s/identity.key", dir);
	if (!tbl || e2e_identity_load(&id, path) != E2E_OK) {
		fprintf(stderr, "mqttload: cannot load %s\n", path);
		free(tbl);
		return -1;
	}
	sender = e2e_sender_id(&id.pub);
	e2e_identity_destroy(&id);
	x->dir = dir;
	x->sender = sender;
	/* Room for a rotation a second over a long run (scripts/bench slowdisk). */
	if (e2e_keyring_create(&x->kr, 4096) != E2E_OK ||
	    e2e_rx_create(&x->rx, &(struct e2e_rx_config){ 0 }) != E2E_OK) {
		fprintf(stderr, "mqttload: keyring or rx: out of memory\n");
		goto out;
	}
	if (add_keys(x) != 0)
		goto out;
	/* The sender's own topic map, as its deliveries would carry it. */
	snprintf(path, sizeof path, "%s/scopes", dir);
	if (e2e_scopes_load(tbl, path, err, sizeof err) != E2E_OK ||
	    e2e_scopes_rules(tbl, NULL, 0, &nrules) == E2E_ERR_ARG || nrules == 0 ||
	    !(rules = calloc(nrules, sizeof *rules)) ||
	    e2e_scopes_rules(tbl, rules, nrules, &nrules) != E2E_OK ||
	    e2e_keyring_set_profile(x->kr, sender, rules, nrules, 0) != E2E_OK) {
		fprintf(stderr, "mqttload: scopes %s: %s\n", path, err);
		goto out;
	}
	ret = 0;
out:
	free(rules);
	free(tbl);
	return ret;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000U + (uint64_t)ts.tv_nsec / 1000000U;
}

static void on_message(struct sub_ctx *x, const uint8_t *pkt, size_t len)
{
	struct mqtt_publish p;
	const uint8_t *pl;
	size_t pl_len;
	uint64_t ts, now, ws, we;
	uint32_t idx, seq;

	if (mqtt_parse_publish(pkt, len, MQTT_V311, &p) != MQTT_OK)
		return;
	if (p.qos)
		(void)lg_put_puback(&x->c, p.packet_id);
	pl = p.payload.p;
	pl_len = p.payload.len;
	if (x->rx) {
		struct e2e_rx_result res;
		enum e2e_status st = E2E_ERR_ARG;

		if (p.payload.len <= x->pt_cap)
			st = e2e_rx_open(x->rx, x->kr, x->pt, x->pt_cap, &res, p.topic.p, p.topic.len,
				p.payload.p, p.payload.len, wall_ms());
		/* A key the proxy rotated to since the keys file was read (a real
		 * subscriber would have it delivered): read the file again and open
		 * once more. The time that takes counts in this message's latency
		 * (against the rotating proxy, never for it). */
		if (st == E2E_OK && res.verdict == E2E_V_UNKNOWN_KEY && !(res.flags & E2E_RX_RETIRED)) {
			x->reloads++;
			if (add_keys(x) == 0)
				st = e2e_rx_open(x->rx, x->kr, x->pt, x->pt_cap, &res, p.topic.p,
					p.topic.len, p.payload.p, p.payload.len, wall_ms());
		}
		/* Under a key the file already retires (sealed just before a
		 * rotation, met after the file listed the newer key): a subscriber
		 * holds it until the sender's summary lists it (SPEC 11.5). This
		 * reader is no subscriber: it reads the sender's own keys file and
		 * measures relay latency, so it takes the envelope as a summary
		 * would have confirmed it (2-4 a window at a rotation a second
		 * stayed unopened before). The retired-key rule itself is tested
		 * by tests/adversary. */
		if (st == E2E_OK && res.verdict == E2E_V_UNKNOWN_KEY && (res.flags & E2E_RX_RETIRED)) {
			st = e2e_rx_open_confirmed(x->rx, x->kr, x->pt, x->pt_cap, &res, p.topic.p,
				p.topic.len, p.payload.p, p.payload.len, wall_ms());
		}
		if (st != E2E_OK || !e2e_verdict_delivers(res.verdict)) {
			atomic_fetch_add(&S.bad_verdicts, 1);
			/* Which verdict: the RUN line names the last one. */
			atomic_store(&S.bad_last, st != E2E_OK ? -1 : (int)res.verdict);
			return;
		}
		pl = x->pt;
		pl_len = res.pt_len;
	}
	if (pl_len < HDR)
		return;
	now = lg_now_ns();
	memcpy(&ts, pl, sizeof ts);
	idx = get_u32(pl + 8);
	seq = get_u32(pl + 12);
	if (seq == PROBE_SEQ) {
		atomic_store(&S.probe_seen, 1);
		return;
	}
	if (idx < O.pubs) {
		if (seq <= S.last_seq[idx])
			atomic_fetch_add(&S.dups, 1);
		else
			S.last_seq[idx] = seq;
	}
	atomic_fetch_add(&S.recv_total, 1);
	if (idx < O.pubs)
		atomic_fetch_add(&S.recv_pub[idx], 1);
	ws = atomic_load(&S.win_start);
	we = atomic_load(&S.win_end);
	if (ws && now >= ws && now < we)
		atomic_fetch_add(&S.recv_win, 1);
	if (ws && ts >= ws && ts < we) {
		uint32_t n = atomic_load(&S.nlat);

		if (n < MAX_LAT) {
			S.lat[n] = now - ts > UINT32_MAX ? UINT32_MAX : (uint32_t)(now - ts);
			atomic_store(&S.nlat, n + 1);
		}
	}
}

static void *sub_thread(void *arg)
{
	struct sub_ctx *x = arg;
	struct pollfd pfd = { .fd = x->c.fd, .events = POLLIN };

	while (!atomic_load(&S.stop)) {
		const uint8_t *pkt;
		size_t len;
		int r;

		pfd.events = (short)(POLLIN | (lg_pending(&x->c) ? POLLOUT : 0));
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if (lg_read(&x->c) < 0) {
			fprintf(stderr, "mqttload: subscriber connection closed\n");
			atomic_store(&S.sub_failed, 1);
			break;
		}
		while ((r = lg_next_packet(&x->c, &pkt, &len)) == 1) {
			if ((pkt[0] >> 4) == MQTT_PUBLISH)
				on_message(x, pkt, len);
			lg_consume(&x->c, len);
		}
		if (atomic_exchange(&S.want_wake, 0))
			(void)!write(S.wake_fd, &(uint64_t){ 1 }, sizeof(uint64_t));
		if (r < 0 || lg_flush(&x->c) != 0) {
			atomic_store(&S.sub_failed, 1);
			break;
		}
	}
	return NULL;
}

static int sub_setup(struct sub_ctx *x)
{
	char id[64], filter[128];
	const uint8_t *pkt;
	size_t len;
	uint64_t deadline = lg_now_ns() + 10000000000ULL;
	int r;

	snprintf(id, sizeof id, "mqttload-sub-%d", (int)getpid());
	snprintf(filter, sizeof filter, "%s/#", O.prefix);
	if (lg_connect(&x->c, &O.sub, NULL, 0, id, 60, 10000) != 0 ||
	    lg_put_subscribe(&x->c, 1, filter, O.qos) != 0 || lg_flush(&x->c) != 0)
		return -1;
	for (;;) {
		struct pollfd pfd = { .fd = x->c.fd, .events = POLLIN };

		r = lg_next_packet(&x->c, &pkt, &len);
		if (r < 0)
			return -1;
		if (r == 1) {
			int suback = (pkt[0] >> 4) == MQTT_SUBACK;

			lg_consume(&x->c, len);
			if (suback)
				return 0;
			continue;
		}
		if (lg_now_ns() > deadline || (poll(&pfd, 1, 100) == 1 && lg_read(&x->c) < 0))
			return -1;
	}
}

/* ---- the publishers ------------------------------------------------------ */

struct pubs {
	struct lg_conn *c;
	int ep;
	uint8_t *payload;
	char (*topic)[64];
	uint64_t sent, sent_win;
	int filling;                 /* saturating (--rate 0) inside the run */
};

static int pub_send(struct pubs *P, struct lg_conn *c, uint32_t seq, uint64_t win_start,
	uint64_t win_end)
{
	uint64_t now = lg_now_ns();
	uint16_t id = 0;

	memcpy(P->payload, &now, sizeof now);
	put_u32(P->payload + 8, c->idx);
	put_u32(P->payload + 12, seq);
	if (O.qos) {
		if (++c->next_id == 0)
			c->next_id = 1;
		id = c->next_id;
		c->inflight++;
	}
	if (lg_put_publish(c, P->topic[c->idx], strlen(P->topic[c->idx]), O.qos, id, P->payload,
		    O.size) != 0)
		return -1;
	if (seq != PROBE_SEQ) {
		P->sent++;
		c->sent_msgs++;
		if (win_start && now >= win_start && now < win_end)
			P->sent_win++;
	}
	return 0;
}

/*
 * QoS 1: at most --inflight unacknowledged. Saturation (both QoS): also at
 * most --window messages per publisher between send and arrival at the
 * subscriber, so the run measures the path and not how deep the kernel's
 * socket buffers (tcp_rmem autotunes up to 32 MiB here) or the broker's
 * queue towards the subscriber grow.
 */
static int can_send(struct pubs *P, const struct lg_conn *c)
{
	if (O.qos ? c->inflight >= O.inflight : lg_pending(c) >= BATCH_BYTES)
		return 0;
	if (P->filling && O.window &&
	    c->sent_msgs - atomic_load(&S.recv_pub[c->idx]) >= O.window) {
		/* Ask for a wakeup, then look again: the subscriber counts before
		 * it reads want_wake, so one of the two sees the other. */
		atomic_store(&S.want_wake, 1);
		return c->sent_msgs - atomic_load(&S.recv_pub[c->idx]) < O.window;
	}
	return 1;
}

/* Read acknowledgements; -1 if the connection is gone. */
static int pub_read(struct lg_conn *c)
{
	const uint8_t *pkt;
	size_t len;
	int r;

	if (lg_read(c) < 0) {
		fprintf(stderr, "mqttload: publisher %u: %s\n", c->idx,
			errno ? strerror(errno) : "closed by peer");
		return -1;
	}
	while ((r = lg_next_packet(c, &pkt, &len)) == 1) {
		if ((pkt[0] >> 4) == MQTT_PUBACK && c->inflight)
			c->inflight--;
		lg_consume(c, len);
	}
	if (r < 0)
		fprintf(stderr, "mqttload: publisher %u: malformed packet from the server\n", c->idx);
	return r < 0 ? -1 : 0;
}

static void set_out(struct pubs *P, struct lg_conn *c, int want)
{
	struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0U), .data.ptr = c };

	if (c->state != want) {
		epoll_ctl(P->ep, EPOLL_CTL_MOD, c->fd, &ev);
		c->state = want;
	}
}

static int pub_flush_more(struct pubs *P, struct lg_conn *c, int more)
{
	if (lg_flush(c) != 0)
		return -1;
	/* Open-loop saturating QoS 0 publishers always want to write, and so
	 * does one that stopped with room left (see pump). */
	set_out(P, c, lg_pending(c) > 0 || more || (P->filling && O.qos == 0 && !O.window));
	return 0;
}

static int pub_flush(struct pubs *P, struct lg_conn *c)
{
	return pub_flush_more(P, c, 0);
}

/*
 * Saturation: send while the publisher may (window, socket), in bounded
 * rounds so the other publishers and the clock get their turn; stopping
 * with room left keeps EPOLLOUT, which brings it back at once.
 */
static int pump(struct pubs *P, struct lg_conn *c)
{
	int more = 0;

	for (int round = 0; round < 16; round++) {
		while (P->filling && can_send(P, c))
			if (pub_send(P, c, ++c->seq, atomic_load(&S.win_start),
				    atomic_load(&S.win_end)) != 0)
				return -1;
		if (lg_flush(c) != 0)
			return -1;
		more = !lg_pending(c) && P->filling && can_send(P, c);
		if (!more)
			break;
	}
	return pub_flush_more(P, c, more);
}

static int pubs_setup(struct pubs *P, SSL_CTX *ctx)
{
	P->c = calloc(O.pubs, sizeof *P->c);
	P->topic = calloc(O.pubs, sizeof *P->topic);
	P->payload = calloc(1, O.size);
	P->ep = epoll_create1(EPOLL_CLOEXEC);
	if (!P->c || !P->topic || !P->payload || P->ep < 0)
		return -1;
	memset(P->payload, 'x', O.size);
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

		if (epoll_ctl(P->ep, EPOLL_CTL_ADD, S.wake_fd, &ev) != 0)
			return -1;
	}
	for (uint32_t i = 0; i < O.pubs; i++) {
		struct lg_conn *c = &P->c[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		char id[64];

		c->fd = -1;
		c->idx = i;
		snprintf(id, sizeof id, "mqttload-%d-%u", (int)getpid(), i);
		snprintf(P->topic[i], sizeof P->topic[i], "%s/%u", O.prefix, i);
		if (lg_connect(c, &O.pub, ctx, O.src ? (int)(1 + i % O.src) : 0, id, 60, 15000) != 0 ||
		    epoll_ctl(P->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
			return -1;
	}
	return 0;
}

/* Handle socket events for at most @p timeout_ns. */
static int pubs_poll(struct pubs *P, uint64_t timeout_ns)
{
	struct epoll_event evs[256];
	struct timespec ts = { .tv_sec = (time_t)(timeout_ns / 1000000000U),
		.tv_nsec = (long)(timeout_ns % 1000000000U) };
	int n = epoll_pwait2(P->ep, evs, 256, &ts, NULL);

	for (int i = 0; i < n; i++) {
		struct lg_conn *c = evs[i].data.ptr;

		if (!c) {
			/* The subscriber made room in the end-to-end window. */
			uint64_t v;

			(void)!read(S.wake_fd, &v, sizeof v);
			for (uint32_t k = 0; k < O.pubs; k++)
				if (pump(P, &P->c[k]) != 0)
					return -1;
			continue;
		}
		if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && pub_read(c) != 0) {
			fprintf(stderr, "mqttload: publisher %u lost its connection\n", c->idx);
			return -1;
		}
		if (pump(P, c) != 0)
			return -1;
	}
	return n < 0 && errno != EINTR ? -1 : 0;
}

static int probe(struct pubs *P)
{
	uint64_t end = lg_now_ns() + 15000000000ULL, next = 0;

	while (!atomic_load(&S.probe_seen)) {
		uint64_t now = lg_now_ns();

		if (now > end || atomic_load(&S.sub_failed)) {
			fprintf(stderr, "mqttload: the subscriber never saw a probe message\n");
			return -1;
		}
		if (now >= next) {
			if (pub_send(P, &P->c[0], PROBE_SEQ, 0, 0) != 0 || pub_flush(P, &P->c[0]) != 0)
				return -1;
			next = now + 200000000U;
		}
		if (pubs_poll(P, 10000000U) != 0)
			return -1;
	}
	return 0;
}

/* Saturation, or a fixed total rate spread round-robin over the publishers. */
static uint64_t mbusy[2], msteal[2], mtotal[2];   /* machine jiffies, window start/end */
static clockid_t sub_clock;             /* CPU clock of the subscriber thread */
static double tcpu[2][2];               /* [pub, sub][start, end] thread CPU seconds */

static double clock_s(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) != 0)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sample_threads(int end)
{
	tcpu[0][end] = clock_s(CLOCK_THREAD_CPUTIME_ID);
	tcpu[1][end] = clock_s(sub_clock);
}

static int drive(struct pubs *P, uint64_t t0, uint64_t ws, uint64_t we, double *cpu_self)
{
	uint64_t k = 0;
	int sampled = 0;

	P->filling = O.rate == 0;
	for (uint32_t i = 0; i < O.pubs; i++)
		if (pump(P, &P->c[i]) != 0)
			return -1;
	for (;;) {
		uint64_t now = lg_now_ns(), wait = 1000000U;

		if (!sampled && now >= ws) {
			for (int i = 0; i < O.nwatch; i++)
				O.watch[i].cpu0 = lg_proc_cpu(O.watch[i].pid);
			cpu_self[0] = self_cpu();
			(void)lg_machine_cpu(&mbusy[0], &msteal[0], &mtotal[0]);
			sample_threads(0);
			sampled = 1;
		}
		if (now >= we)
			break;
		if (O.rate > 0) {
			for (;;) {
				uint64_t due = t0 + (uint64_t)((double)k * 1e9 / O.rate);
				struct lg_conn *c = &P->c[k % O.pubs];

				if (due > now) {
					wait = due - now;
					break;
				}
				if (!can_send(P, c))
					break;     /* back-pressure: this publisher is behind */
				if (pub_send(P, c, ++c->seq, ws, we) != 0 ||
				    (!lg_pending(c) ? 0 : pub_flush(P, c)) != 0)
					return -1;
				k++;
			}
		}
		if (atomic_load(&S.sub_failed) || pubs_poll(P, wait < 1000000U ? wait : 1000000U) != 0)
			return -1;
	}
	for (int i = 0; i < O.nwatch; i++)
		O.watch[i].cpu1 = lg_proc_cpu(O.watch[i].pid);
	cpu_self[1] = self_cpu();
	(void)lg_machine_cpu(&mbusy[1], &msteal[1], &mtotal[1]);
	sample_threads(1);
	P->filling = 0;
	for (uint32_t i = 0; i < O.pubs; i++)
		set_out(P, &P->c[i], lg_pending(&P->c[i]) > 0);
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(const uint32_t *v, uint32_t n, double q)
{
	size_t i;

	if (!n)
		return -1;
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return (double)v[i] / 1000.0;
}

static int run_main(void)
{
	struct sub_ctx x = { .c = { .fd = -1 } };
	struct pubs P = { 0 };
	SSL_CTX *ctx = NULL;
	pthread_t th;
	uint64_t t0, ws, we, end;
	double cpu_self[2] = { 0, 0 }, dur;
	int ret = 1, started = 0;
	uint32_t n;

	S.lat = malloc(MAX_LAT * sizeof *S.lat);
	S.last_seq = calloc(O.pubs, sizeof *S.last_seq);
	S.recv_pub = calloc(O.pubs, sizeof *S.recv_pub);
	S.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!S.lat || !S.last_seq || !S.recv_pub || S.wake_fd < 0 || O.size < HDR)
		goto out;
	if (O.window == UINT32_MAX) {
		/* Auto: about 1 MiB in flight in all, 64..2000 messages. */
		uint32_t total = (uint32_t)((1U << 20) / (O.size + 64U));

		total = total < 64 ? 64 : total > 2000 ? 2000 : total;
		O.window = O.rate == 0 ? (total / O.pubs > 2 ? total / O.pubs : 2) : 0;
	}
	if (O.open_dir) {
		x.pt_cap = O.size + 64;
		x.pt = malloc(x.pt_cap);
		if (!x.pt || load_keys(&x, O.open_dir) != 0)
			goto out;
	}
	if (O.tls && !(ctx = lg_tls_ctx(O.cafile)))
		goto out;
	if (sub_setup(&x) != 0) {
		fprintf(stderr, "mqttload: subscriber setup failed\n");
		goto out;
	}
	if (pthread_create(&th, NULL, sub_thread, &x) != 0)
		goto out;
	started = 1;
	if (pthread_getcpuclockid(th, &sub_clock) != 0)
		goto out;
	if (pubs_setup(&P, ctx) != 0 || probe(&P) != 0)
		goto out;
	t0 = lg_now_ns();
	ws = t0 + (uint64_t)(O.warmup * 1e9);
	we = ws + (uint64_t)(O.duration * 1e9);
	atomic_store(&S.win_end, we);
	atomic_store(&S.win_start, ws);
	if (drive(&P, t0, ws, we, cpu_self) != 0)
		goto out;
	/* Drain: every acknowledgement, every message, or the deadline. */
	end = lg_now_ns() + (uint64_t)(O.drain * 1e9);
	for (;;) {
		uint32_t inflight = 0;

		for (uint32_t i = 0; i < O.pubs; i++)
			inflight += P.c[i].inflight;
		if ((inflight == 0 && atomic_load(&S.recv_total) >= P.sent) || lg_now_ns() > end ||
		    atomic_load(&S.sub_failed))
			break;
		if (pubs_poll(&P, 5000000U) != 0)
			goto out;
	}
	dur = ns_s(we - ws);
	n = atomic_load(&S.nlat);
	qsort(S.lat, n, sizeof *S.lat, cmp_u32);
	printf("RUN tput=%.0f pub_rate=%.0f sent=%" PRIu64 " recv=%" PRIu64 " lost=%" PRId64
		" dups=%" PRIu64 " bad=%" PRIu64 " nlat=%u p50_us=%.1f p99_us=%.1f p999_us=%.1f"
		" max_us=%.1f window=%u cpu_machine=%.1f steal=%.1f cpu_mqttload=%.1f cpu_loadpub=%.1f"
		" cpu_loadsub=%.1f",
		(double)atomic_load(&S.recv_win) / dur, (double)P.sent_win / dur, P.sent,
		atomic_load(&S.recv_total), (int64_t)P.sent - (int64_t)atomic_load(&S.recv_total),
		atomic_load(&S.dups), atomic_load(&S.bad_verdicts), n, pct(S.lat, n, 0.50),
		pct(S.lat, n, 0.99), pct(S.lat, n, 0.999), pct(S.lat, n, 1.0), O.window,
		mtotal[1] > mtotal[0] ? 100.0 * (double)(mbusy[1] - mbusy[0]) /
			(double)(mtotal[1] - mtotal[0]) : -1.0,
		mtotal[1] > mtotal[0] ? 100.0 * (double)(msteal[1] - msteal[0]) /
			(double)(mtotal[1] - mtotal[0]) : -1.0,
		100.0 * (cpu_self[1] - cpu_self[0]) / dur, 100.0 * (tcpu[0][1] - tcpu[0][0]) / dur,
		100.0 * (tcpu[1][1] - tcpu[1][0]) / dur);
	if (atomic_load(&S.bad_verdicts))
		printf(" bad_last=%s", atomic_load(&S.bad_last) < 0 ? "error" :
			e2e_verdict_name((enum e2e_verdict)atomic_load(&S.bad_last)));
	for (int i = 0; i < O.nwatch; i++)
		printf(" cpu_%s=%.1f", O.watch[i].name,
			O.watch[i].cpu0 < 0 || O.watch[i].cpu1 < 0 ? -1.0 :
			100.0 * (O.watch[i].cpu1 - O.watch[i].cpu0) / dur);
	printf("\n");
	fflush(stdout);
	ret = atomic_load(&S.sub_failed) ? 1 : 0;
out:
	atomic_store(&S.stop, 1);
	if (started)
		pthread_join(th, NULL);
	for (uint32_t i = 0; P.c && i < O.pubs; i++)
		lg_close(&P.c[i]);
	lg_close(&x.c);
	e2e_rx_destroy(x.rx);
	e2e_keyring_destroy(x.kr);
	SSL_CTX_free(ctx);
	free(P.c);
	free(P.topic);
	free(P.payload);
	free(x.pt);
	free(S.lat);
	free(S.last_seq);
	free(S.recv_pub);
	if (S.wake_fd >= 0)
		close(S.wake_fd);
	return ret;
}

/* ---- idle connections ------------------------------------------------------ */

enum { I_FREE = 0, I_CONNECTING, I_CONNACK, I_IDLE, I_DEAD };

static int idle_connect_pkt(uint8_t *out, size_t cap, uint32_t i)
{
	char id[64];
	struct lg_conn tmp = { .fd = -1 };
	int n = -1;

	snprintf(id, sizeof id, "idle-%d-%u", (int)getpid(), i);
	if (lg_put_connect(&tmp, id, 900) == 0 && tmp.out_len <= cap) {
		memcpy(out, tmp.out, tmp.out_len);
		n = (int)tmp.out_len;
	}
	free(tmp.out);
	return n;
}

struct idle {
	struct lg_conn *c;
	int ep;
	uint32_t started, inprog, connected, failed, dropped;
};

static void idle_fail(struct idle *I, struct lg_conn *c, int was_up)
{
	epoll_ctl(I->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	if (was_up) {
		I->dropped++;
		I->connected--;
	} else {
		I->failed++;
		I->inprog--;
	}
	c->state = I_DEAD;
}

static void idle_event(struct idle *I, struct lg_conn *c, uint32_t ev)
{
	uint8_t buf[256];
	int err = 0, n;
	socklen_t el = sizeof err;

	if (c->state == I_CONNECTING) {
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };

		n = idle_connect_pkt(buf, sizeof buf, c->idx);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err || n < 0 ||
		    send(c->fd, buf, (size_t)n, MSG_NOSIGNAL) != n) {
			idle_fail(I, c, 0);
			return;
		}
		epoll_ctl(I->ep, EPOLL_CTL_MOD, c->fd, &e);
		c->state = I_CONNACK;
		return;
	}
	if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	n = (int)recv(c->fd, buf, sizeof buf, 0);
	if (c->state == I_CONNACK) {
		if (n == 4 && (buf[0] >> 4) == MQTT_CONNACK && buf[3] == 0) {
			c->state = I_IDLE;
			I->inprog--;
			I->connected++;
		} else if (n != -1 || errno != EAGAIN) {
			idle_fail(I, c, 0);
		}
	} else if (c->state == I_IDLE && (n == 0 || (n < 0 && errno != EAGAIN))) {
		idle_fail(I, c, 1);
	}
}

static void idle_sweep(struct idle *I, uint64_t now)
{
	for (uint32_t i = 0; i < I->started; i++) {
		struct lg_conn *c = &I->c[i];

		if ((c->state == I_CONNECTING || c->state == I_CONNACK) &&
		    now - c->t_start > 30000000000ULL)
			idle_fail(I, c, 0);
	}
}

static int idle_main(uint32_t conns, uint32_t parallel, const char *steps)
{
	struct idle I = { 0 };
	uint64_t t0 = lg_now_ns(), last_sweep = t0;
	uint32_t step[64], nstep = 0;
	char line[64];

	for (const char *p = steps; p && *p && nstep < 63;) {
		step[nstep++] = (uint32_t)strtoul(p, (char **)&p, 10);
		if (*p == ',')
			p++;
		else
			break;
	}
	step[nstep++] = conns;
	I.c = calloc(conns, sizeof *I.c);
	I.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!I.c || I.ep < 0)
		return 1;
	for (uint32_t s = 0; s < nstep; s++) {
		uint32_t target = step[s] < conns ? step[s] : conns;

		while (I.connected + I.failed + I.dropped < target) {
			struct epoll_event evs[512];
			int n;

			while (I.started < target && I.inprog < parallel) {
				struct lg_conn *c = &I.c[I.started];
				struct epoll_event e = { .events = EPOLLOUT, .data.ptr = c };

				c->idx = I.started++;
				c->t_start = lg_now_ns();
				I.inprog++;
				c->state = I_CONNECTING;
				if (lg_connect_start(c, &O.pub, O.src ? (int)(1 + c->idx % O.src) : 0) != 0 ||
				    epoll_ctl(I.ep, EPOLL_CTL_ADD, c->fd, &e) != 0) {
					if (c->fd >= 0)
						close(c->fd);
					c->fd = -1;
					c->state = I_DEAD;
					I.inprog--;
					I.failed++;
				}
			}
			n = epoll_wait(I.ep, evs, 512, 100);
			for (int i = 0; i < n; i++)
				idle_event(&I, evs[i].data.ptr, evs[i].events);
			if (lg_now_ns() - last_sweep > 1000000000U) {
				last_sweep = lg_now_ns();
				idle_sweep(&I, last_sweep);
			}
		}
		printf("%s %u connected=%u failed=%u dropped=%u t=%.2f\n",
			s + 1 == nstep ? "DONE" : "STEP", target, I.connected, I.failed, I.dropped,
			ns_s(lg_now_ns() - t0));
		fflush(stdout);
		if (s + 1 < nstep && !fgets(line, sizeof line, stdin))
			break;
	}
	/* Hold until stdin closes; notice connections the proxy drops meanwhile. */
	for (;;) {
		struct pollfd pfd = { .fd = 0, .events = POLLIN };
		struct epoll_event evs[512];
		int n = epoll_wait(I.ep, evs, 512, 0);

		for (int i = 0; i < n; i++)
			idle_event(&I, evs[i].data.ptr, evs[i].events);
		if (poll(&pfd, 1, 200) == 1 && (!fgets(line, sizeof line, stdin) ||
						 !strncmp(line, "quit", 4)))
			break;
	}
	printf("CLOSED connected=%u dropped=%u\n", I.connected, I.dropped);
	for (uint32_t i = 0; i < I.started; i++)
		if (I.c[i].fd >= 0)
			close(I.c[i].fd);
	free(I.c);
	close(I.ep);
	return 0;
}

/* ---- options ---------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: mqttload run --pub HOST:PORT [--tls --cafile F] --sub HOST:PORT [--pubs N]\n"
		"                    [--qos 0|1] [--size B] [--rate R] [--warmup S] [--duration S]\n"
		"                    [--inflight W] [--window N] [--open SENDER_DIR] [--watch NAME=PID]...\n"
		"                    [--src K] [--prefix TOPIC]\n"
		"       mqttload idle --pub HOST:PORT --conns N [--parallel P] [--src K] [--steps a,b]\n"
		"       mqttload keys-inproc|keyreq ... (see lg_keys.c)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint32_t conns = 0, parallel = 64;
	const char *steps = NULL;

	if (argc < 2)
		usage();
	if (!strncmp(argv[1], "key", 3))
		return lg_keys_main(argc - 1, argv + 1);
	signal(SIGPIPE, SIG_IGN);
	if (e2e_init() != E2E_OK)
		return 1;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--tls")) {
			O.tls = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--pub")) {
			if (lg_parse_addr(&O.pub, v))
				usage();
		} else if (!strcmp(a, "--sub")) {
			if (lg_parse_addr(&O.sub, v))
				usage();
		} else if (!strcmp(a, "--cafile")) {
			O.cafile = v;
		} else if (!strcmp(a, "--open")) {
			O.open_dir = v;
		} else if (!strcmp(a, "--prefix")) {
			O.prefix = v;
		} else if (!strcmp(a, "--pubs")) {
			O.pubs = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(a, "--qos")) {
			O.qos = atoi(v) ? 1 : 0;
		} else if (!strcmp(a, "--size")) {
			O.size = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(a, "--rate")) {
			O.rate = atof(v);
		} else if (!strcmp(a, "--warmup")) {
			O.warmup = atof(v);
		} else if (!strcmp(a, "--duration")) {
			O.duration = atof(v);
		} else if (!strcmp(a, "--drain")) {
			O.drain = atof(v);
		} else if (!strcmp(a, "--window")) {
			O.window = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(a, "--inflight")) {
			O.inflight = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(a, "--src")) {
			O.src = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(a, "--conns")) {
			conns = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(a, "--parallel")) {
			parallel = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(a, "--steps")) {
			steps = v;
		} else if (!strcmp(a, "--watch") && O.nwatch < MAX_WATCH && strchr(v, '=')) {
			struct watch *w = &O.watch[O.nwatch++];

			snprintf(w->name, sizeof w->name, "%.*s", (int)(strchr(v, '=') - v), v);
			w->pid = atoi(strchr(v, '=') + 1);
		} else {
			usage();
		}
	}
	if (!O.pub.port)
		usage();
	if (!strcmp(argv[1], "idle"))
		return conns ? idle_main(conns, parallel ? parallel : 1, steps) : (usage(), 2);
	if (strcmp(argv[1], "run") || !O.sub.port || !O.pubs || (O.tls && !O.cafile))
		usage();
	return run_main();
}
