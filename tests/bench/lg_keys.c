/*
 * mqttload key-service modes.
 *
 *   mqttload keys-inproc [--n N]
 *     libe2e's key service in this process, rate limits lifted: signed key
 *     requests from 64 enrolled identities handled per second (Ed25519
 *     verify + sealed, signed delivery), and forged ones (bad signature).
 *     Prints "KEYS valid_per_s=... forged_per_s=... ...".
 *
 *   mqttload keyreq --broker HOST:PORT --sender-dir DIR --subs DIR[,DIR...]
 *                   [--rate R] [--duration S] [--flood F] [--wait S]
 *     Over MQTT (plain TCP to the broker): signed key requests at R/s from
 *     the enrolled subscriber identities in --subs to the sender of
 *     --sender-dir (its key service answers through the broker); every
 *     answer is verified with the sender's public key and deliveries are
 *     opened. --flood F adds F forged requests/s (0: none; -1: as fast as the
 *     socket takes them) with bad signatures and fresh hashes on a second
 *     connection. Prints "KEYREQ sent=... delivered=... p50_ms=... ...".
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "e2e/e2e.h"
#include "lg.h"

#define NSUBS_MAX 64
#define POOL 16384U
#define CONTROL "e2e/control"

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000U + (uint64_t)ts.tv_nsec / 1000000U;
}

/* ---- in process ------------------------------------------------------------ */

static enum e2e_status all_enrolled(void *ctx, const struct e2e_public *who, uint8_t scopes[32])
{
	(void)ctx;
	(void)who;
	scopes[0] = 0x02;   /* scope 1 */
	return E2E_OK;
}

static uint8_t one_key(void *ctx, uint8_t scope, struct e2e_ctl_key *out, uint8_t cap,
	uint64_t now_ms)
{
	(void)ctx;
	(void)now_ms;
	if (!cap)
		return 0;
	memset(out, 0, sizeof *out);
	out->scope = scope;
	out->epoch = 1;
	memset(out->key, 0x5A, sizeof out->key);
	return 1;
}

/* Every topic in scope 0, no summaries: the smallest map a delivery carries. */
static enum e2e_status one_rule(void *ctx, struct e2e_ctl_map *map)
{
	static const struct e2e_scope_rule all = { 0, "#", 1 };

	(void)ctx;
	*map = (struct e2e_ctl_map){ 0, 1, &all, 0, 0 };
	return E2E_OK;
}

struct msgs {
	uint8_t (*m)[E2E_CTL_MSG_MAX];
	size_t *len;
	uint32_t n;
};

static int build_requests(struct msgs *M, uint32_t n, const struct e2e_identity *ids, uint32_t nids,
	uint32_t target, int forge)
{
	M->m = malloc((size_t)n * sizeof *M->m);
	M->len = calloc(n, sizeof *M->len);
	M->n = n;
	if (!M->m || !M->len)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		struct e2e_ctl req;
		uint8_t eph_sk[E2E_DH_BYTES];

		if (e2e_ctl_request(M->m[i], E2E_CTL_MSG_MAX, &M->len[i], &req, eph_sk,
			    &ids[i % nids], target, NULL, 0, NULL, CONTROL, wall_ms()) != E2E_OK)
			return -1;
		if (forge)
			M->m[i][M->len[i] - 1] ^= 0x01;   /* last signature byte */
		sodium_memzero(eph_sk, sizeof eph_sk);
	}
	return 0;
}

static double handle_all(struct e2e_keysvc *ks, const struct msgs *M, uint32_t *ok)
{
	static uint8_t out[E2E_CTL_DELIVERY_MAX];
	char reply[E2E_CTL_REPLY_MAX + 1];
	uint64_t t0 = lg_now_ns(), now = wall_ms();

	*ok = 0;
	for (uint32_t i = 0; i < M->n; i++) {
		size_t olen;

		if (e2e_keysvc_handle(ks, M->m[i], M->len[i], CONTROL, out, sizeof out, &olen, reply,
			    now) == E2E_OK)
			(*ok)++;
	}
	return (double)(lg_now_ns() - t0) / 1e9;
}

static int inproc(uint32_t n)
{
	static struct e2e_identity sender, subs[NSUBS_MAX];
	struct e2e_keysvc *ks = NULL;
	struct msgs valid = { 0 }, forged = { 0 };
	struct e2e_keysvc_config cfg = { .identity = &sender, .enrolled = all_enrolled,
		.keys = one_key, .map = one_rule, .per_identity_burst = 1000000000U, .per_identity_ms = 1,
		.global_burst = 1000000000U, .global_ms = 1, .replay_cache = 4096 };
	uint32_t ok_v = 0, ok_f = 0;
	double tv, tf;
	int ret = 1;

	if (e2e_init() != E2E_OK || e2e_identity_generate(&sender) != E2E_OK)
		return 1;
	for (uint32_t i = 0; i < NSUBS_MAX; i++)
		if (e2e_identity_generate(&subs[i]) != E2E_OK)
			return 1;
	if (build_requests(&valid, n, subs, NSUBS_MAX, e2e_sender_id(&sender.pub), 0) != 0 ||
	    build_requests(&forged, n, subs, NSUBS_MAX, e2e_sender_id(&sender.pub), 1) != 0 ||
	    e2e_keysvc_create(&ks, &cfg) != E2E_OK)
		goto out;
	tv = handle_all(ks, &valid, &ok_v);
	tf = handle_all(ks, &forged, &ok_f);
	printf("KEYS n=%u valid_ok=%u valid_per_s=%.0f us_valid=%.1f forged_answered=%u "
		"forged_per_s=%.0f us_forged=%.1f\n", n, ok_v, n / tv, 1e6 * tv / n, ok_f, n / tf,
		1e6 * tf / n);
	ret = ok_v == n && ok_f == 0 ? 0 : 1;
out:
	e2e_keysvc_destroy(ks);
	free(valid.m);
	free(valid.len);
	free(forged.m);
	free(forged.len);
	e2e_identity_destroy(&sender);
	for (uint32_t i = 0; i < NSUBS_MAX; i++)
		e2e_identity_destroy(&subs[i]);
	return ret;
}

/* ---- over MQTT --------------------------------------------------------------- */

struct pending {
	uint64_t sent_ns, answered_ns;
	uint8_t eph_pk[E2E_DH_BYTES], eph_sk[E2E_DH_BYTES];
	uint8_t kind;           /* 0 none, 2 delivery, 3 refusal */
	uint8_t reason;
};

struct keyreq {
	struct lg_addr broker;
	struct e2e_identity subs[NSUBS_MAX];
	uint32_t nsubs, target;
	struct e2e_public sender;
	double rate, flood, duration, wait;
	struct pending *p;
	uint32_t np, cap;
	uint64_t delivered, refused, refused_rate, bad_answers, flood_sent;
	uint32_t prefix;        /* random, so reply topics of other runs never match */
};

static int load_id(struct e2e_identity *id, const char *dir)
{
	char path[512];

	snprintf(path, sizeof path, "%s/identity.key", dir);
	if (e2e_identity_load(id, path) != E2E_OK) {
		fprintf(stderr, "mqttload: cannot load %s\n", path);
		return -1;
	}
	return 0;
}

static void on_answer(struct keyreq *K, const uint8_t *pkt, size_t len)
{
	struct mqtt_publish p;
	char topic[E2E_CTL_REPLY_MAX + 1];
	struct e2e_ctl *m;
	static uint8_t plain[E2E_CTL_PLAIN_MAX];
	unsigned prefix = 0, k = 0;
	struct pending *q;

	if (mqtt_parse_publish(pkt, len, MQTT_V311, &p) != MQTT_OK || p.topic.len >= sizeof topic)
		return;
	memcpy(topic, p.topic.p, p.topic.len);
	topic[p.topic.len] = '\0';
	if (sscanf(topic, "e2e/k/%8x%*16x%8x", &prefix, &k) != 2 || prefix != K->prefix ||
	    k >= K->np)
		return;
	q = &K->p[k];
	m = sodium_malloc(sizeof *m);
	if (!m)
		return;
	if (q->kind || e2e_ctl_parse(m, p.payload.p, p.payload.len, topic, &K->sender) != E2E_OK) {
		K->bad_answers++;
	} else if (m->type == E2E_CTL_DELIVERY &&
		   e2e_ctl_open_delivery(m, q->eph_pk, q->eph_sk, plain, sizeof plain) == E2E_OK && m->nkeys > 0) {
		q->kind = 2;
		q->answered_ns = lg_now_ns();
		K->delivered++;
	} else if (m->type == E2E_CTL_REFUSAL) {
		q->kind = 3;
		q->reason = m->reason;
		q->answered_ns = lg_now_ns();
		K->refused++;
		if (m->reason == E2E_REFUSE_RATE)
			K->refused_rate++;
	} else {
		K->bad_answers++;
	}
	e2e_ctl_wipe(m);
	sodium_free(m);
}

static int send_request(struct keyreq *K, struct lg_conn *c)
{
	struct pending *q = &K->p[K->np];
	struct e2e_ctl req;
	char reply[E2E_CTL_REPLY_MAX + 1];
	uint8_t msg[E2E_CTL_MSG_MAX];
	size_t len;

	snprintf(reply, sizeof reply, "e2e/k/%08x%016x%08x", K->prefix,
		(unsigned)randombytes_random(), K->np);
	if (e2e_ctl_request(msg, sizeof msg, &len, &req, q->eph_sk, &K->subs[K->np % K->nsubs],
		    K->target, NULL, 0, reply, CONTROL, wall_ms()) != E2E_OK)
		return -1;
	memcpy(q->eph_pk, req.eph_pk, sizeof q->eph_pk);
	q->sent_ns = lg_now_ns();
	K->np++;
	return lg_put_publish(c, CONTROL, strlen(CONTROL), 0, 0, msg, len);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report(const struct keyreq *K, double secs)
{
	uint64_t *lat = calloc(K->np + 1, sizeof *lat);
	uint32_t n = 0;

	for (uint32_t i = 0; lat && i < K->np; i++)
		if (K->p[i].kind == 2)
			lat[n++] = K->p[i].answered_ns - K->p[i].sent_ns;
	if (lat)
		qsort(lat, n, sizeof *lat, cmp_u64);
	printf("KEYREQ sent=%u delivered=%" PRIu64 " refused=%" PRIu64 " refused_rate=%" PRIu64
		" unanswered=%" PRIu64 " bad_answers=%" PRIu64 " delivered_per_s=%.1f p50_ms=%.2f"
		" p99_ms=%.2f flood_sent=%" PRIu64 " flood_per_s=%.0f\n",
		K->np, K->delivered, K->refused, K->refused_rate,
		K->np - K->delivered - K->refused, K->bad_answers, (double)K->delivered / secs,
		n ? (double)lat[n / 2] / 1e6 : -1.0, n ? (double)lat[(size_t)(0.99 * (n - 1))] / 1e6 : -1.0,
		K->flood_sent, (double)K->flood_sent / secs);
	free(lat);
}

static int sub_answers(struct lg_conn *c)
{
	const uint8_t *pkt;
	size_t len;
	uint64_t end = lg_now_ns() + 10000000000ULL;

	if (lg_put_subscribe(c, 1, "e2e/k/+", 0) != 0 || lg_flush(c) != 0)
		return -1;
	while (lg_now_ns() < end) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int r = lg_next_packet(c, &pkt, &len);

		if (r < 0)
			return -1;
		if (r == 1) {
			int ok = (pkt[0] >> 4) == MQTT_SUBACK;

			lg_consume(c, len);
			if (ok)
				return 0;
			continue;
		}
		if (poll(&pfd, 1, 100) == 1 && lg_read(c) < 0)
			return -1;
	}
	return -1;
}

static int keyreq_loop(struct keyreq *K, struct lg_conn *legit, struct lg_conn *fl,
	const struct msgs *pool)
{
	uint64_t t0 = lg_now_ns(), end = t0 + (uint64_t)(K->duration * 1e9), kf = 0;
	uint64_t stop = end + (uint64_t)(K->wait * 1e9);

	for (;;) {
		uint64_t now = lg_now_ns();
		struct pollfd pfd[2] = { { .fd = legit->fd, .events = POLLIN },
			{ .fd = fl ? fl->fd : -1, .events = POLLOUT } };
		const uint8_t *pkt;
		size_t len;
		int r;

		if (now >= stop || (now >= end && K->delivered + K->refused >= K->np))
			break;
		while (now < end && K->np < K->cap &&
		       t0 + (uint64_t)((double)K->np * 1e9 / K->rate) <= now)
			if (send_request(K, legit) != 0)
				return -1;
		if (fl && now < end) {
			/* Forged requests: at the given rate, or while the socket takes them. */
			while ((K->flood < 0 ? lg_pending(fl) < 65536 :
				t0 + (uint64_t)((double)kf * 1e9 / K->flood) <= now)) {
				uint32_t i = (uint32_t)(kf++ % pool->n);

				if (lg_put_publish(fl, CONTROL, strlen(CONTROL), 0, 0, pool->m[i],
					    pool->len[i]) != 0)
					return -1;
				K->flood_sent++;
			}
			if (lg_flush(fl) != 0)
				return -1;
		}
		if (lg_flush(legit) != 0)
			return -1;
		pfd[1].events = fl && lg_pending(fl) ? POLLOUT : 0;
		poll(pfd, 2, 1);
		if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && lg_read(legit) < 0)
			return -1;
		while ((r = lg_next_packet(legit, &pkt, &len)) == 1) {
			if ((pkt[0] >> 4) == MQTT_PUBLISH)
				on_answer(K, pkt, len);
			lg_consume(legit, len);
		}
		if (r < 0)
			return -1;
		if (fl && lg_read(fl) < 0)
			return -1;
		if (fl)
			fl->in_len = 0;   /* nothing expected back but PINGRESP */
	}
	report(K, K->duration);
	return 0;
}

static int keyreq(struct keyreq *K, const char *sender_dir, char *subs)
{
	struct lg_conn legit = { .fd = -1 }, fl = { .fd = -1 };
	struct e2e_identity sid, junk;
	struct msgs pool = { 0 };
	char id[64];
	int ret = 1;

	if (e2e_init() != E2E_OK || load_id(&sid, sender_dir) != 0)
		return 1;
	K->sender = sid.pub;
	K->target = e2e_sender_id(&sid.pub);
	e2e_identity_destroy(&sid);
	for (char *tok = strtok(subs, ","); tok && K->nsubs < NSUBS_MAX; tok = strtok(NULL, ","))
		if (load_id(&K->subs[K->nsubs++], tok) != 0)
			goto out;   /* out destroys the identities loaded so far */
	K->prefix = randombytes_random();
	K->cap = (uint32_t)(K->rate * K->duration) + 16;
	K->p = calloc(K->cap, sizeof *K->p);
	snprintf(id, sizeof id, "keyreq-%d", (int)getpid());
	if (!K->p || !K->nsubs || lg_connect(&legit, &K->broker, NULL, 0, id, 60, 10000) != 0 ||
	    sub_answers(&legit) != 0)
		goto out;
	if (K->flood != 0) {
		/* Unenrolled identity, signature broken: costs the attacker no signing. */
		int bad = e2e_identity_generate(&junk) != E2E_OK ||
			build_requests(&pool, POOL, &junk, 1, K->target, 1) != 0;

		e2e_identity_destroy(&junk);
		if (bad)
			goto out;
		snprintf(id, sizeof id, "keyflood-%d", (int)getpid());
		if (lg_connect(&fl, &K->broker, NULL, 0, id, 60, 10000) != 0)
			goto out;
	}
	ret = keyreq_loop(K, &legit, K->flood != 0 ? &fl : NULL, &pool) ? 1 : 0;
out:
	lg_close(&legit);
	lg_close(&fl);
	if (K->p)
		sodium_memzero(K->p, K->cap * sizeof *K->p);
	free(K->p);
	free(pool.m);
	free(pool.len);
	for (uint32_t i = 0; i < K->nsubs; i++)
		e2e_identity_destroy(&K->subs[i]);
	return ret;
}

int lg_keys_main(int argc, char **argv)
{
	static struct keyreq K = { .rate = 50, .duration = 3, .wait = 3 };
	const char *sender_dir = NULL;
	char *subs = NULL;
	uint32_t n = 2000;

	for (int i = 1; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];

		if (!strcmp(a, "--n"))
			n = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--broker") && lg_parse_addr(&K.broker, v) == 0)
			continue;
		else if (!strcmp(a, "--sender-dir"))
			sender_dir = v;
		else if (!strcmp(a, "--subs"))
			subs = argv[i + 1];
		else if (!strcmp(a, "--rate"))
			K.rate = atof(v);
		else if (!strcmp(a, "--flood"))
			K.flood = atof(v);
		else if (!strcmp(a, "--duration"))
			K.duration = atof(v);
		else if (!strcmp(a, "--wait"))
			K.wait = atof(v);
		else
			goto usage;
	}
	if (!strcmp(argv[0], "keys-inproc"))
		return n ? inproc(n) : 2;
	if (!strcmp(argv[0], "keyreq") && sender_dir && subs && K.broker.port && K.rate > 0)
		return keyreq(&K, sender_dir, subs);
usage:
	fprintf(stderr, "usage: mqttload keys-inproc [--n N]\n"
		"       mqttload keyreq --broker HOST:PORT --sender-dir DIR --subs DIR[,DIR]\n"
		"                       [--rate R] [--duration S] [--flood F|-1] [--wait S]\n");
	return 2;
}
