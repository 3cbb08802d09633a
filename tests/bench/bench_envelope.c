/*
 * bench_envelope: cost of libe2e's seal and open over the bare AEAD.
 *
 *   ninja -C build && build/tests/bench/bench_envelope [--quick]
 *
 * For 64 B, 1 KiB and 16 KiB payloads, in one run, it measures ns/op as the
 * median of several batches (each ~20 ms, clock_gettime(CLOCK_MONOTONIC)):
 *   seal: crypto_aead_xchacha20poly1305_ietf_encrypt (nonce = a fixed
 *         24-byte header, AAD = header || topic)  vs  e2e_tx_seal
 *   open: crypto_aead_xchacha20poly1305_ietf_decrypt  vs  e2e_rx_open
 * e2e_rx_open goes through the whole accepted path (parse, key lookup,
 * stream lookup, window check, AEAD, window update, verdict OK): every batch
 * opens a ring of envelopes pre-sealed by a fresh sender run (a new stream),
 * and the raw decrypt reads the very same ring, so both see the same memory.
 * Raw and ours alternate batch by batch so drift hits both alike.
 *
 * Output: a table and a final line "RESULT seal_ratio=x.xx open_ratio=y.yy"
 * (ours / raw, the largest over the sizes). Exit 1 if a verdict is not OK.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "e2e/e2e.h"

#define MAX_BATCHES 15U

static const char TOPIC[] = "plant/line1/temperature";
static const struct e2e_keyid BENCH_ID = { .sender = 0xBE5C0001U, .scope = 1, .epoch = 1 };

struct bench {
	size_t size;                /* payload bytes */
	size_t env_size;
	size_t iters;               /* operations per batch */
	uint8_t key[E2E_KEY_BYTES];
	uint8_t *pt, *out, *back;
	uint8_t *ring;              /* iters envelopes of env_size */
	uint8_t aad[E2E_HEADER_BYTES + sizeof TOPIC];
	struct e2e_tx *tx;
	struct e2e_keyring *kr;
	struct e2e_rx *rx;
	uint64_t floor;             /* next sender's counter floor */
	uint32_t run;               /* next sender's run (a fresh stream each) */
	unsigned long not_ok;
};

static enum e2e_status reserve_mem(void *ctx, const struct e2e_keyid *id, uint64_t ceiling)
{
	(void)id;
	*(uint64_t *)ctx = ceiling;
	return E2E_OK;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static struct e2e_tx *new_sender(struct bench *b, uint64_t *ceiling)
{
	struct e2e_tx_config cfg;
	struct e2e_tx *tx = NULL;

	memset(&cfg, 0, sizeof cfg);
	cfg.id = BENCH_ID;
	cfg.key = b->key;
	cfg.counter_floor = b->floor;
	cfg.run = ++b->run;
	cfg.reserve = reserve_mem;
	cfg.reserve_ctx = ceiling;
	if (e2e_tx_create(&tx, &cfg) != E2E_OK) {
		fprintf(stderr, "bench: e2e_tx_create failed\n");
		exit(2);
	}
	return tx;
}

/* ---- the four operations, one batch each, returning ns/op ---------------- */

static double raw_seal(struct bench *b)
{
	unsigned long long clen;
	uint64_t t0 = now_ns();

	for (size_t i = 0; i < b->iters; i++)
		crypto_aead_xchacha20poly1305_ietf_encrypt(b->out + E2E_HEADER_BYTES, &clen,
			b->pt, b->size, b->aad, sizeof b->aad - 1, NULL, b->aad, b->key);
	return (double)(now_ns() - t0) / (double)b->iters;
}

static double our_seal(struct bench *b)
{
	size_t len;
	uint64_t t0 = now_ns();

	for (size_t i = 0; i < b->iters; i++)
		if (e2e_tx_seal(b->tx, b->out, b->env_size, &len, (const uint8_t *)TOPIC,
				sizeof TOPIC - 1, b->pt, b->size) != E2E_OK)
			b->not_ok++;
	return (double)(now_ns() - t0) / (double)b->iters;
}

static double raw_open(struct bench *b)
{
	uint8_t aad[sizeof b->aad];
	unsigned long long mlen;
	uint64_t t0 = now_ns();

	memcpy(aad + E2E_HEADER_BYTES, TOPIC, sizeof TOPIC - 1);
	for (size_t i = 0; i < b->iters; i++) {
		const uint8_t *env = b->ring + i * b->env_size;

		memcpy(aad, env, E2E_HEADER_BYTES);
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(b->back, &mlen, NULL,
				env + E2E_HEADER_BYTES, b->env_size - E2E_HEADER_BYTES,
				aad, sizeof aad - 1, env, b->key) != 0)
			b->not_ok++;
	}
	return (double)(now_ns() - t0) / (double)b->iters;
}

static double our_open(struct bench *b)
{
	struct e2e_rx_result res;
	uint64_t t0 = now_ns();

	for (size_t i = 0; i < b->iters; i++) {
		if (e2e_rx_open(b->rx, b->kr, b->back, b->size, &res, (const uint8_t *)TOPIC,
				sizeof TOPIC - 1, b->ring + i * b->env_size, b->env_size,
				1000) != E2E_OK || res.verdict != E2E_V_OK)
			b->not_ok++;
	}
	return (double)(now_ns() - t0) / (double)b->iters;
}

/* Fill the ring with a fresh stream: seqs 1..iters of a new run. */
static void fill_ring(struct bench *b)
{
	uint64_t ceiling = 0;
	struct e2e_tx *tx = new_sender(b, &ceiling);
	size_t len;

	for (size_t i = 0; i < b->iters; i++)
		if (e2e_tx_seal(tx, b->ring + i * b->env_size, b->env_size, &len,
				(const uint8_t *)TOPIC, sizeof TOPIC - 1, b->pt, b->size) != E2E_OK)
			b->not_ok++;
	b->floor = ceiling;
	e2e_tx_destroy(tx);
}

/* Operations per batch so that one raw seal batch takes about @p batch_ns. */
static size_t calibrate(struct bench *b, uint64_t batch_ns)
{
	b->iters = 64;
	for (;;) {
		uint64_t t0 = now_ns(), dt;

		(void)raw_seal(b);
		dt = now_ns() - t0;
		if (dt >= batch_ns / 8 || b->iters >= (1U << 24))
			return (size_t)((double)b->iters * (double)batch_ns / (double)(dt ? dt : 1)) + 1;
		b->iters *= 2;
	}
}

static void run_size(struct bench *b, unsigned batches, uint64_t batch_ns, double res[4])
{
	double v[4][MAX_BATCHES];
	uint64_t ceiling = 0;

	b->env_size = e2e_envelope_size(b->size);
	b->pt = malloc(b->size);
	b->out = malloc(b->env_size);
	b->back = malloc(b->size);
	if (!b->pt || !b->out || !b->back) {
		fprintf(stderr, "bench: out of memory\n");
		exit(2);
	}
	randombytes_buf(b->pt, b->size);
	b->iters = calibrate(b, batch_ns);
	b->ring = malloc(b->iters * b->env_size);
	if (!b->ring) {
		fprintf(stderr, "bench: out of memory for the ring\n");
		exit(2);
	}
	b->tx = new_sender(b, &ceiling);
	/* One untimed round first: page faults, caches and clock ramp-up. */
	(void)raw_seal(b);
	(void)our_seal(b);
	fill_ring(b);
	(void)raw_open(b);
	(void)our_open(b);
	for (unsigned k = 0; k < batches; k++) {
		/* Alternate which side goes first. */
		if (k % 2) {
			v[1][k] = our_seal(b);
			v[0][k] = raw_seal(b);
		} else {
			v[0][k] = raw_seal(b);
			v[1][k] = our_seal(b);
		}
		fill_ring(b);
		if (k % 2) {
			v[3][k] = our_open(b);
			v[2][k] = raw_open(b);
		} else {
			v[2][k] = raw_open(b);
			v[3][k] = our_open(b);
		}
	}
	for (int i = 0; i < 4; i++)
		res[i] = median(v[i], batches);
	e2e_tx_destroy(b->tx);
	/* The live sender's counters must stay above the ring senders' ones. */
	b->floor = ceiling > b->floor ? ceiling : b->floor;
	free(b->ring);
	free(b->pt);
	free(b->out);
	free(b->back);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 64, 1024, 16384 };
	unsigned batches = MAX_BATCHES;
	uint64_t batch_ns = 20000000ULL;
	double seal_max = 0, open_max = 0;
	struct e2e_rx_config rcfg;
	struct e2e_header h;
	struct bench b;

	if (argc == 2 && !strcmp(argv[1], "--quick")) {
		batches = 3;
		batch_ns = 2000000ULL;
	} else if (argc != 1) {
		fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
		return 2;
	}
	if (e2e_init() != E2E_OK)
		return 2;
	memset(&b, 0, sizeof b);
	randombytes_buf(b.key, sizeof b.key);
	/* The raw baseline's header: same shape as a real one. */
	h = (struct e2e_header){ .suite = E2E_SUITE_V1_XCHACHA, .scope = BENCH_ID.scope,
		.epoch = BENCH_ID.epoch, .sender = BENCH_ID.sender, .run = 0x12345678U,
		.counter = 1, .seq = 1 };
	e2e_header_write(b.aad, &h);
	memcpy(b.aad + E2E_HEADER_BYTES, TOPIC, sizeof TOPIC - 1);
	memset(&rcfg, 0, sizeof rcfg);
	rcfg.max_streams = 4096;
	if (e2e_keyring_create(&b.kr, 4) != E2E_OK ||
	    e2e_keyring_add(b.kr, &BENCH_ID, b.key, 0) != E2E_OK ||
	    e2e_keyring_set_single_scope(b.kr, BENCH_ID.sender, BENCH_ID.scope) != E2E_OK ||
	    e2e_rx_create(&b.rx, &rcfg) != E2E_OK) {
		fprintf(stderr, "bench: set-up failed\n");
		return 2;
	}

	printf("libe2e %s, libsodium %s, %u batches of ~%.0f ms, median ns/op\n",
		E2E_VERSION_STRING, sodium_version_string(), batches, (double)batch_ns / 1e6);
	printf("%8s  %10s %10s %6s  %10s %10s %6s\n", "size", "raw seal", "e2e seal", "ratio",
		"raw open", "e2e open", "ratio");
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		double r[4], sr, opr;

		b.size = sizes[i];
		run_size(&b, batches, batch_ns, r);
		sr = r[1] / r[0];
		opr = r[3] / r[2];
		seal_max = sr > seal_max ? sr : seal_max;
		open_max = opr > open_max ? opr : open_max;
		printf("%8zu  %10.1f %10.1f %6.2f  %10.1f %10.1f %6.2f\n", sizes[i], r[0], r[1], sr,
			r[2], r[3], opr);
	}
	e2e_rx_destroy(b.rx);
	e2e_keyring_destroy(b.kr);
	if (b.not_ok) {
		fprintf(stderr, "bench: %lu operations did not succeed with verdict OK\n", b.not_ok);
		return 1;
	}
	printf("RESULT seal_ratio=%.2f open_ratio=%.2f\n", seal_max, open_max);
	return 0;
}
