/*
 * One publisher connection and its upstream: non-blocking sockets, bounded
 * buffers with back-pressure, and the upstream TCP + TLS state machine.
 * Both sides are read and written through their transport (transport.h):
 * nothing here calls recv/send or OpenSSL. Buffers are freed whenever they
 * drain, so an idle connection costs the struct and OpenSSL's (released)
 * state only.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "log.h"
#include "proxy.h"

#define READ_CHUNK 16384U
#define HIGH_WATER (256U * 1024U)   /* stop reading the other side above this */

/*
 * Idle for a while: give back empty buffers and OpenSSL's record buffers
 * (SSL_free_buffers refuses while they hold data), so an idle publisher
 * costs little more than its SSL object. Called from the 250 ms sweep;
 * returns about how many bytes went back to the heap.
 */
size_t conn_trim(struct conn *c)
{
	return buf_release(&c->din) + buf_release(&c->dout) + buf_release(&c->uin) +
		buf_release(&c->uout) + c->up.ops->trim(&c->up) + c->down.ops->trim(&c->down);
}

static size_t buf_limit(const struct conn *c)
{
	/* A whole packet plus what is already queued must fit. */
	return (size_t)c->px->cfg.max_packet + HIGH_WATER + 1024;
}

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void *tag(struct conn *c, int up)
{
	return (void *)((uintptr_t)c | (uintptr_t)up);
}

struct conn *conn_new(struct proxy *px, int dfd, const char *peer)
{
	struct conn *c = calloc(1, sizeof *c);
	struct epoll_event ev;
	int one = 1;

	if (!c)
		return NULL;
	c->px = px;
	px_transport_tcp(&c->down, dfd);
	px_transport_none(&c->up);
	snprintf(c->peer, sizeof c->peer, "%s", peer);
	c->deadline_ms = e2e_mono_ms() + px->cfg.connect_timeout_ms;
	c->last_down_ms = e2e_mono_ms();
	set_nonblock(dfd);
	setsockopt(dfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (px->tls_down.ctx && px_transport_tls_server(&c->down, &px->tls_down) != 0) {
		free(c);
		return NULL;
	}
	ev.events = EPOLLIN;
	ev.data.ptr = tag(c, 0);
	if (epoll_ctl(px->epfd, EPOLL_CTL_ADD, dfd, &ev) != 0) {
		/* The caller closes the socket: free the transport's state only. */
		c->down.fd = -1;
		c->down.ops->close(&c->down);
		free(c);
		return NULL;
	}
	c->ev_down = EPOLLIN;
	c->next = px->conns;
	if (px->conns)
		px->conns->prev = c;
	px->conns = c;
	px->nconns++;
	px->st.active++;
	return c;
}

/* Off px->parked (if on it); its bytes stay in din for relay_down. */
static void unpark(struct conn *c)
{
	struct proxy *px = c->px;

	if (!c->parked)
		return;
	if (c->park_prev)
		c->park_prev->park_next = c->park_next;
	else
		px->parked = c->park_next;
	if (c->park_next)
		c->park_next->park_prev = c->park_prev;
	c->park_prev = c->park_next = NULL;
	c->parked = 0;
}

/* relay_down said RELAY_PARKED: read nothing more (down_room) until resumed. */
static void park(struct conn *c)
{
	struct proxy *px = c->px;

	if (c->parked)
		return;
	c->parked = 1;
	if (!c->parked_ms)
		c->parked_ms = e2e_mono_ms();
	c->park_prev = NULL;
	c->park_next = px->parked;
	if (px->parked)
		px->parked->park_prev = c;
	px->parked = c;
}

void conn_close(struct conn *c, const char *why)
{
	struct proxy *px = c->px;

	if (why)
		plog(LOG_INFO, "%s (%s): closed: %s", c->peer, c->client_id[0] ? c->client_id : "-",
			why);
	/* Best effort: hand the publisher what the broker said last (e.g. CONNACK). */
	if (c->dout.len && c->down.ready)
		(void)c->down.ops->send(&c->down, c->dout.p, c->dout.len);
	c->down.ops->close(&c->down);
	c->up.ops->close(&c->up);
	/* din and uout may hold a publisher's plaintext or a CONNECT password. */
	buf_free_wipe(&c->din);
	buf_free_wipe(&c->dout);
	buf_free_wipe(&c->uout);
	buf_free_wipe(&c->uin);
	if (c->connect_pkt)
		sodium_memzero(c->connect_pkt, c->connect_len);
	free(c->connect_pkt);
	for (uint32_t i = 0; i < c->naliases; i++)
		free(c->aliases[i].topic);
	free(c->q2);
	unpark(c);   /* the parked list never holds a closed connection */
	if (c->prev)
		c->prev->next = c->next;
	else
		px->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	px->nconns--;
	px->st.active--;
	px->st.closed++;
	/* Events for it may still be in the current epoll batch. */
	c->dead = 1;
	c->next = px->dead;
	px->dead = c;
}

void conn_reap(struct proxy *px)
{
	while (px->dead) {
		struct conn *c = px->dead;

		px->dead = c->next;
		free(c);
	}
}

static void set_interest(struct conn *c, int fd, int up, uint32_t want, uint32_t *cur)
{
	struct epoll_event ev;

	if (want == *cur || fd < 0)
		return;
	ev.events = want;
	ev.data.ptr = tag(c, up);
	epoll_ctl(c->px->epfd, EPOLL_CTL_MOD, fd, &ev);
	*cur = want;
}

/*
 * Room to take more from the publisher: back-pressure from the broker side.
 * din holds at most one incomplete packet once relay_down has run, and
 * that packet must be able to arrive whole (up to max-packet), or a PUBLISH
 * larger than the READ_CHUNK * 4 window would wait for bytes we never read.
 */
static int down_room(const struct conn *c)
{
	size_t want = c->din_need > READ_CHUNK * 4 ? c->din_need : READ_CHUNK * 4;

	/* Parked: din's head waits for the disk, and so does all after it. */
	return !c->parked && c->din.len < want && c->uout.len < HIGH_WATER;
}

/* Recompute what each socket waits for: back-pressure lives here. */
void conn_update(struct conn *c)
{
	uint32_t down = 0, up = 0;

	if (!c->px->draining && down_room(c))
		down |= EPOLLIN;
	if (c->dout.len || c->down.want_write)
		down |= EPOLLOUT;
	switch (c->st) {
	case ST_UP_TCP:
		up = EPOLLOUT;
		break;
	case ST_UP_TLS:
		up = c->up.want_write ? EPOLLOUT : EPOLLIN;
		break;
	case ST_RELAY:
		if (c->dout.len < HIGH_WATER)
			up |= EPOLLIN;
		if (c->uout.len || c->up.want_write)
			up |= EPOLLOUT;
		break;
	default:
		break;
	}
	set_interest(c, c->down.fd, 0, down, &c->ev_down);
	set_interest(c, c->up.fd, 1, up, &c->ev_up);
}

/*
 * Dial the broker px->ups picks (failover, upstream.h); one that cannot
 * even be dialled is put in back-off and the next one tried, each broker
 * at most once per publisher connection.
 */
static int start_upstream(struct conn *c)
{
	struct proxy *px = c->px;
	struct epoll_event ev;

	for (;;) {
		c->up_idx = px_upstream_pick(&px->ups, e2e_mono_ms());
		if (px_transport_tcp_dial(&c->up, px->ups.b[c->up_idx].ai) == 0)
			break;
		px->st.upstream_failures++;
		px_upstream_failed(&px->ups, c->up_idx, e2e_mono_ms(), "cannot dial");
		if (++c->up_tries >= px->ups.n)
			return -1;
	}
	ev.events = EPOLLOUT;
	ev.data.ptr = tag(c, 1);
	if (epoll_ctl(px->epfd, EPOLL_CTL_ADD, c->up.fd, &ev) != 0)
		return -1;
	c->ev_up = EPOLLOUT;
	c->st = ST_UP_TCP;
	return 0;
}

/*
 * What relay_down returned, acted on: dial the broker (RELAY_DIAL), park
 * (RELAY_PARKED). 0, or -1 to close (logged).
 */
static int relayed(struct conn *c, int rd)
{
	if (rd < 0)
		return -1;   /* relay_down said why */
	if (rd == RELAY_PARKED)
		park(c);
	if (rd == RELAY_DIAL && start_upstream(c) != 0) {
		plog(LOG_WARNING, "%s (%s): cannot connect to broker %s:%s", c->peer,
			c->client_id, c->px->broker_host, c->px->broker_port);
		return -1;
	}
	return 0;
}

/* The upstream is usable: queue the (rewritten) CONNECT and relay. */
static int become_relay(struct conn *c)
{
	c->st = ST_RELAY;
	c->deadline_ms = 0;
	if (buf_append(&c->uout, c->connect_pkt, c->connect_len, buf_limit(c)) != 0)
		return -1;
	/* It carries the password the broker gets; uout wipes its copy once sent. */
	sodium_memzero(c->connect_pkt, c->connect_len);
	free(c->connect_pkt);
	c->connect_pkt = NULL;
	/* Packets the publisher sent after CONNECT waited in din. */
	return relayed(c, relay_down(c));
}

static int tls_step(struct conn *c)
{
	char why[1400];
	int r;

	if (!c->px->cfg.tls)
		return become_relay(c);
	if (c->st != ST_UP_TLS) {
		if (px_transport_tls_client(&c->up, &c->px->tls, c->client_id) != 0)
			return -1;
		c->st = ST_UP_TLS;
	}
	r = c->up.ops->handshake(&c->up, why, sizeof why);
	if (r > 0) {
		c->up.ops->describe(&c->up, why, sizeof why);
		plog(LOG_DEBUG, "%s: upstream %s", c->client_id, why);
		return become_relay(c);
	}
	if (r < 0) {
		c->px->st.tls_failures++;
		plog(LOG_WARNING, "%s (%s): TLS to broker failed: %s", c->peer, c->client_id, why);
	}
	return r;
}

/* Write uout into the broker's transport. */
static int flush_up_bytes(struct conn *c)
{
	while (c->uout.len) {
		ssize_t w = c->up.ops->send(&c->up, c->uout.p, c->uout.len);

		if (w <= 0)
			return (int)w;
		c->px->st.bytes_up += (uint64_t)w;
		buf_consume_wipe(&c->uout, (size_t)w);
	}
	return 0;
}

/*
 * Everything sealed since batch_t0_ns is now with the broker socket: one
 * clock read (vDSO, no syscall) per flushed batch, not per message.
 */
static void observe_batch(struct conn *c)
{
	uint64_t now = e2e_mono_ns();

	proxy_latency_observe(&c->px->st, now > c->batch_t0_ns ? now - c->batch_t0_ns : 0,
		c->batch_pubs);
	c->batch_pubs = 0;
}

/* flush_up_bytes, then the latency of what went out whole. */
static int flush_up(struct conn *c)
{
	int r = flush_up_bytes(c);

	if (r == 0 && !c->uout.len && c->batch_pubs)
		observe_batch(c);
	return r;
}

/* Read from the broker into uin, then frame and forward to the publisher. */
static int read_up(struct conn *c)
{
	for (;;) {
		uint8_t *at = buf_reserve(&c->uin, READ_CHUNK, buf_limit(c));
		ssize_t r;

		if (!at)
			return -1;
		r = c->up.ops->recv(&c->up, at, READ_CHUNK);
		if (r <= 0)
			return (int)r;
		c->uin.len += (size_t)r;
		if (relay_up_frames(c) != 0)
			return -1;
		/*
		 * Stop when dout is full (level-triggered epoll brings the rest
		 * of the socket once it has room; bytes OpenSSL already holds get
		 * no event: conn_on_down() reads them when dout drains), or when a
		 * short plain read emptied the socket.
		 */
		if (c->dout.len >= HIGH_WATER || (!c->up.buffered && (size_t)r < READ_CHUNK))
			return 0;
	}
}

static int flush_down(struct conn *c)
{
	while (c->dout.len) {
		ssize_t w = c->down.ops->send(&c->down, c->dout.p, c->dout.len);

		if (w <= 0)
			return (int)w;
		c->px->st.bytes_down += (uint64_t)w;
		buf_consume(&c->dout, (size_t)w);
	}
	return 0;
}

/* listen-tls: finish the publisher's handshake first. 1 ready, 0 later, -1 failed. */
static int down_handshake(struct conn *c)
{
	char why[1400];
	int r;

	if (c->down.ready)
		return 1;
	r = c->down.ops->handshake(&c->down, why, sizeof why);
	if (r < 0) {
		c->px->st.tls_failures++;
		plog(LOG_WARNING, "%s: TLS handshake with the publisher failed: %s", c->peer, why);
	}
	return r;
}

/*
 * Read from the publisher until the socket is empty or the broker side is
 * full. Bytes that TLS (listen-tls) has already taken off the socket get no
 * epoll event: conn_on_up() comes back here when uout drains. 0, or -1 with
 * *why (NULL: already logged).
 */
static int read_down(struct conn *c, int sock_ready, const char **why)
{
	for (int more = sock_ready || c->down.buffered; more && down_room(c);) {
		uint8_t *at = buf_reserve(&c->din, READ_CHUNK, buf_limit(c));
		ssize_t r;

		if (!at)
			return *why = "publisher input exceeds limits", -1;
		r = c->down.ops->recv(&c->down, at, READ_CHUNK);
		if (r < 0)
			return *why = "publisher disconnected", -1;
		more = r > 0 && (c->down.buffered || (size_t)r == READ_CHUNK);
		if (r > 0) {
			/* The clock read this loop always did, now in ns: it also
			 * stamps the publishes of this read for the latency histogram. */
			uint64_t t = e2e_mono_ns();

			c->din.len += (size_t)r;
			c->down_read += (uint64_t)r;
			c->last_down_ms = t / 1000000U;
			if (!c->batch_pubs)
				c->batch_t0_ns = t;
			if (relayed(c, relay_down(c)) != 0)
				return *why = NULL, -1;
		}
	}
	return 0;
}

/*
 * listen-tls: publisher bytes OpenSSL has already taken off the socket get no
 * epoll event, so whenever the broker side makes room they must be read here,
 * until TLS holds none or the room is gone again. A flush that frees room
 * with nothing else to wake us (QoS 0: no acks come back) would otherwise
 * leave the last packets stuck inside TLS. 0, or -1 with *why.
 */
static int drain_tls_down(struct conn *c, const char **why)
{
	while (c->st == ST_RELAY && down_room(c) && c->down.ops->pending(&c->down)) {
		uint64_t before = c->down_read;

		if (read_down(c, 0, why) != 0)
			return -1;
		if (flush_up(c) != 0)
			return *why = "broker connection lost", -1;
		/* Pending but nothing came out (a partial record): epoll brings the rest. */
		if (c->down_read == before)
			break;
	}
	return 0;
}

void conn_on_down(struct conn *c, uint32_t events)
{
	const char *why = NULL;
	int hs;

	c->idle_ticks = 0;
	hs = down_handshake(c);
	if (hs < 0)
		{ conn_close(c, NULL); return; }
	if (hs == 0)
		{ conn_update(c); return; }
	/* Parked, nothing is read: a reset would be reported again and again. */
	if (c->parked && (events & (EPOLLHUP | EPOLLERR)))
		{ conn_close(c, "publisher disconnected (while parked)"); return; }
	if ((events & EPOLLOUT) && flush_down(c) != 0)
		{ conn_close(c, "publisher socket error"); return; }
	if (read_down(c, (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0, &why) != 0)
		{ conn_close(c, why); return; }
	if (c->st == ST_RELAY && flush_up(c) != 0)
		{ conn_close(c, "broker connection lost"); return; }
	/* That flush may have made room for what TLS already holds. */
	if (drain_tls_down(c, &why) != 0)
		{ conn_close(c, why); return; }
	/* The publisher made room: broker bytes held inside TLS get no epoll
	 * event, so take them now. */
	if (c->st == ST_RELAY && c->dout.len < HIGH_WATER && c->up.ops->pending(&c->up) &&
	    read_up(c) != 0) {
		relay_broker_closed(c);
		conn_close(c, c->closing ? NULL : "broker closed the connection");
		return;
	}
	if (c->st == ST_RELAY && flush_down(c) != 0)
		{ conn_close(c, "publisher socket error"); return; }
	conn_update(c);
}

void conn_on_up(struct conn *c, uint32_t events)
{
	const char *why = NULL;
	int err;

	c->idle_ticks = 0;
	if (c->st == ST_UP_TCP) {
		if ((err = px_transport_tcp_connected(&c->up)) != 0) {
			struct proxy *px = c->px;

			px->st.upstream_failures++;
			plog(LOG_WARNING, "%s (%s): cannot reach broker %s: %s", c->peer,
				c->client_id, px->ups.b[c->up_idx].name, strerror(err));
			px_upstream_failed(&px->ups, c->up_idx, e2e_mono_ms(), strerror(err));
			/* Failover: the same publisher connection tries the next broker. */
			if (++c->up_tries < px->ups.n) {
				c->up.ops->close(&c->up);
				c->ev_up = 0;
				if (start_upstream(c) == 0)
					return;
			}
			{ conn_close(c, NULL); return; }
		}
		px_upstream_ok(&c->px->ups, c->up_idx);
		if (tls_step(c) != 0)
			{ conn_close(c, "upstream setup failed"); return; }
	} else if (c->st == ST_UP_TLS) {
		if (tls_step(c) != 0)
			{ conn_close(c, NULL); return; }
	}
	if (c->st == ST_RELAY) {
		if (flush_up(c) != 0)
			{ conn_close(c, "broker connection lost"); return; }
		if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && read_up(c) != 0) {
			relay_broker_closed(c);
			conn_close(c, c->closing ? NULL : "broker closed the connection");
			return;
		}
		if (flush_down(c) != 0)
			{ conn_close(c, "publisher socket error"); return; }
		/* The broker made room: take what TLS already holds. */
		if (drain_tls_down(c, &why) != 0)
			{ conn_close(c, why); return; }
	}
	conn_update(c);
}

/*
 * Process a parked connection's din again (the ticker finished a round, or
 * the bound passed: park_expired). The bound counts from the first park of
 * the packet at din's head, not from each retry.
 */
static void resume(struct conn *c)
{
	size_t before = c->din.len;
	uint64_t t0 = c->parked_ms;
	const char *why = NULL;

	unpark(c);
	c->parked_ms = 0;
	if (relayed(c, relay_down(c)) != 0)
		{ conn_close(c, NULL); return; }
	if (c->parked && c->din.len == before)
		c->parked_ms = t0;
	/* Resumed: what TLS already took off the socket gets no epoll event. */
	if (drain_tls_down(c, &why) != 0)
		{ conn_close(c, why); return; }
	conn_update(c);
}

void conn_resume_parked(struct proxy *px)
{
	/* One that parks again goes to the head, behind this walk. */
	struct conn *c = px->parked, *next;

	for (; c; c = next) {
		next = c->park_next;
		resume(c);
	}
}

void conn_expire_parked(struct proxy *px, uint64_t now_ms)
{
	uint64_t bound = px->park_timeout_ms ? px->park_timeout_ms : PARK_TIMEOUT_MS;
	struct conn *c = px->parked, *next;

	for (; c; c = next) {
		next = c->park_next;
		if (now_ms - c->parked_ms < bound)
			continue;
		/* One last try; seal() refuses it if still no reservation. */
		c->park_expired = 1;
		resume(c);
	}
}
