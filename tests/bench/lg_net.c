/* mqttload connections: TCP/TLS, buffers, packet builders; see lg.h. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lg.h"

uint64_t lg_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000U + (uint64_t)ts.tv_nsec;
}

int lg_parse_addr(struct lg_addr *a, const char *spec)
{
	const char *colon = strrchr(spec, ':');
	long port;

	if (!colon || (size_t)(colon - spec) >= sizeof a->host)
		return -1;
	memcpy(a->host, spec, (size_t)(colon - spec));
	a->host[colon - spec] = '\0';
	port = strtol(colon + 1, NULL, 10);
	if (port <= 0 || port > 65535)
		return -1;
	a->port = (uint16_t)port;
	return 0;
}

SSL_CTX *lg_tls_ctx(const char *cafile)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx || !SSL_CTX_load_verify_locations(ctx, cafile, NULL)) {
		fprintf(stderr, "mqttload: TLS context / CA %s: %s\n", cafile,
			ERR_error_string(ERR_get_error(), NULL));
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* An ordinary client: OpenSSL keeps its buffers (no RELEASE_BUFFERS). */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;
}

static int socket_to(const struct lg_addr *a, int src, int nonblock)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(a->port) };
	int fd, one = 1;

	if (inet_pton(AF_INET, a->host, &sa.sin_addr) != 1) {
		fprintf(stderr, "mqttload: %s is not an IPv4 address\n", a->host);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (src > 0) {
		/* Several 127.0.0.x sources: more 4-tuples than one ephemeral range. */
		struct sockaddr_in me = { .sin_family = AF_INET };

		me.sin_addr.s_addr = htonl(0x7F000000U | (uint32_t)src);
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
		if (bind(fd, (struct sockaddr *)&me, sizeof me) != 0) {
			close(fd);
			return -1;
		}
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

int lg_connect_start(struct lg_conn *c, const struct lg_addr *a, int src)
{
	c->fd = socket_to(a, src, 1);
	return c->fd < 0 ? -1 : 0;
}

uint8_t *lg_out_reserve(struct lg_conn *c, size_t n)
{
	if (c->out_off && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 65536;
		uint8_t *p;

		if (c->out_off) {   /* compact first */
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		while (cap < c->out_len + n)
			cap *= 2;
		if (cap != c->out_cap) {
			p = realloc(c->out, cap);
			if (!p)
				return NULL;
			c->out = p;
			c->out_cap = cap;
		}
	}
	return c->out + c->out_len;
}

int lg_put_connect(struct lg_conn *c, const char *client_id, uint16_t keepalive)
{
	struct mqtt_connect cn = { .version = MQTT_V311, .flags = 0x02, .keepalive = keepalive,
		.client_id = { (const uint8_t *)client_id, strlen(client_id) } };
	struct mqtt_span none = { NULL, 0 };
	size_t need = 0;
	uint8_t *at;

	(void)mqtt_write_connect(NULL, 0, &need, &cn, none, 0, NULL, NULL);
	at = lg_out_reserve(c, need);
	if (!at || mqtt_write_connect(at, need, &need, &cn, none, 0, NULL, NULL) != MQTT_OK)
		return -1;
	c->out_len += need;
	return 0;
}

int lg_put_publish(struct lg_conn *c, const char *topic, size_t topic_len, int qos,
	uint16_t id, const uint8_t *payload, size_t len)
{
	struct mqtt_publish p = { .flags = (uint8_t)(qos << 1), .qos = (uint8_t)qos,
		.packet_id = id };
	size_t need = 5 + 2 + topic_len + 2 + len;
	uint8_t *at = lg_out_reserve(c, need);

	if (!at || mqtt_write_publish(at, need, &need, MQTT_V311, &p,
		    (struct mqtt_span){ (const uint8_t *)topic, topic_len },
		    (struct mqtt_span){ payload, len }) != MQTT_OK)
		return -1;
	c->out_len += need;
	return 0;
}

int lg_put_subscribe(struct lg_conn *c, uint16_t id, const char *filter, int qos)
{
	size_t fl = strlen(filter), rl = 2 + 2 + fl + 1;
	uint8_t *at = lg_out_reserve(c, rl + 5), vi[4];
	size_t vl = mqtt_varint_write(vi, (uint32_t)rl), o = 0;

	if (!at || fl > 0xFFFF)
		return -1;
	at[o++] = 0x82;                       /* SUBSCRIBE, reserved flags 0010 */
	memcpy(at + o, vi, vl);
	o += vl;
	at[o++] = (uint8_t)(id >> 8);
	at[o++] = (uint8_t)id;
	at[o++] = (uint8_t)(fl >> 8);
	at[o++] = (uint8_t)fl;
	memcpy(at + o, filter, fl);
	o += fl;
	at[o++] = (uint8_t)qos;
	c->out_len += o;
	return 0;
}

int lg_put_puback(struct lg_conn *c, uint16_t id)
{
	uint8_t *at = lg_out_reserve(c, 4);

	if (!at)
		return -1;
	at[0] = MQTT_PUBACK << 4;
	at[1] = 2;
	at[2] = (uint8_t)(id >> 8);
	at[3] = (uint8_t)id;
	c->out_len += 4;
	return 0;
}

int lg_flush(struct lg_conn *c)
{
	while (c->out_off < c->out_len) {
		size_t n = c->out_len - c->out_off;

		if (c->ssl) {
			int w = SSL_write(c->ssl, c->out + c->out_off, (int)(n > 65536 ? 65536 : n));

			if (w <= 0) {
				int e = SSL_get_error(c->ssl, w);

				c->ssl_want_read = e == SSL_ERROR_WANT_READ;
				return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? 0 : -1;
			}
			c->out_off += (size_t)w;
		} else {
			ssize_t w = send(c->fd, c->out + c->out_off, n, MSG_NOSIGNAL);

			if (w < 0)
				return errno == EAGAIN || errno == EINTR ? 0 : -1;
			c->out_off += (size_t)w;
		}
	}
	c->out_off = c->out_len = 0;
	return 0;
}

long lg_read(struct lg_conn *c)
{
	long total = 0;

	errno = 0;
	for (;;) {
		if (c->in_cap - c->in_len < 65536) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 262144;
			uint8_t *p = realloc(c->in, cap);

			if (!p)
				return -1;
			c->in = p;
			c->in_cap = cap;
		}
		if (c->ssl) {
			int r = SSL_read(c->ssl, c->in + c->in_len, (int)(c->in_cap - c->in_len));

			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);

				return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? total : -1;
			}
			c->in_len += (size_t)r;
			total += r;
		} else {
			ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);

			if (r == 0)
				return -1;
			if (r < 0)
				return errno == EAGAIN || errno == EINTR ? total : -1;
			c->in_len += (size_t)r;
			total += r;
			if ((size_t)r < 65536)
				return total;   /* socket drained (one syscall saved) */
		}
	}
}

int lg_next_packet(struct lg_conn *c, const uint8_t **pkt, size_t *len)
{
	size_t plen = 0, hlen = 0;
	enum mqtt_status st;

	st = mqtt_frame(c->in, c->in_len, LG_MAX_PACKET, &plen, &hlen);
	if (st == MQTT_NEED_MORE)
		return 0;
	if (st != MQTT_OK)
		return -1;
	*pkt = c->in;
	*len = plen;
	return 1;
}

void lg_consume(struct lg_conn *c, size_t n)
{
	if (n >= c->in_len) {
		c->in_len = 0;
		return;
	}
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
}

/* Wait until @p fd is ready for @p ev, at most until @p deadline_ns. */
static int wait_fd(int fd, short ev, uint64_t deadline_ns)
{
	struct pollfd p = { .fd = fd, .events = ev };
	uint64_t now = lg_now_ns();

	if (now >= deadline_ns)
		return -1;
	return poll(&p, 1, (int)((deadline_ns - now) / 1000000U) + 1) == 1 ? 0 : -1;
}

int lg_connect(struct lg_conn *c, const struct lg_addr *a, SSL_CTX *ctx, int src,
	const char *client_id, uint16_t keepalive, int timeout_ms)
{
	uint64_t deadline = lg_now_ns() + (uint64_t)timeout_ms * 1000000U;
	const uint8_t *pkt;
	size_t plen;
	int err = 0, r;
	socklen_t el = sizeof err;

	if (lg_connect_start(c, a, src) != 0 || wait_fd(c->fd, POLLOUT, deadline) != 0 ||
	    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err) {
		fprintf(stderr, "mqttload: connect %s:%u: %s\n", a->host, a->port,
			strerror(err ? err : errno));
		return -1;
	}
	if (ctx) {
		c->ssl = SSL_new(ctx);
		if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) || !SSL_set1_host(c->ssl, a->host))
			return -1;
		while ((r = SSL_connect(c->ssl)) != 1) {
			int e = SSL_get_error(c->ssl, r);

			if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
			    wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
				fprintf(stderr, "mqttload: TLS to %s:%u: %s\n", a->host, a->port,
					ERR_error_string(ERR_get_error(), NULL));
				return -1;
			}
		}
	}
	if (lg_put_connect(c, client_id, keepalive) != 0)
		return -1;
	while (lg_pending(c)) {
		if (lg_flush(c) != 0 || (lg_pending(c) && wait_fd(c->fd, POLLOUT, deadline)))
			return -1;
	}
	for (;;) {
		r = lg_next_packet(c, &pkt, &plen);
		if (r < 0)
			return -1;
		if (r == 1)
			break;
		if (wait_fd(c->fd, POLLIN, deadline) != 0 || lg_read(c) < 0) {
			fprintf(stderr, "mqttload: no CONNACK from %s:%u\n", a->host, a->port);
			return -1;
		}
	}
	if ((pkt[0] >> 4) != MQTT_CONNACK || plen != 4 || pkt[3] != 0) {
		fprintf(stderr, "mqttload: CONNECT refused by %s:%u\n", a->host, a->port);
		return -1;
	}
	lg_consume(c, plen);
	return 0;
}

void lg_close(struct lg_conn *c)
{
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->out);
	memset(c, 0, sizeof *c);
	c->fd = -1;
}

double lg_proc_cpu(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the command name "(...)": state is field 3, utime 14, stime 15. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		    &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int lg_machine_cpu(uint64_t *busy, uint64_t *steal, uint64_t *total)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (!f)
		return -1;
	/* user nice system idle iowait irq softirq steal */
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		&v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return -1;
	*total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
	*busy = *total - v[3] - v[4];
	*steal = v[7];
	return 0;
}

long lg_proc_rss_kib(int pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}
