/*
 * Hot-path proof: "no syscall and no heap allocation per seal or open".
 *
 * hotpath N sets up a sender (reservations in a state file in a temporary
 * directory), a key ring and a receiver, then seals and opens N messages.
 * It replaces malloc/calloc/realloc/free (forwarding to glibc's __libc_*
 * entry points) and counts every call made while the loop runs, printing
 * "allocs=<n>". syscalls.sh runs it under strace for two values of N: the
 * syscall totals must be identical, so the loop itself makes none.
 *
 * Exit: 0 clean; 1 an allocation or a wrong verdict in the loop; 2 setup
 * failed; 77 (skip) in an AddressSanitizer build, which owns malloc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define BLOCK 65536U   /* reservation block: no reservation inside the loop */

#if defined(__SANITIZE_ADDRESS__)
#define HOTPATH_INTERPOSE 0
#else
#define HOTPATH_INTERPOSE 1
#endif

static volatile int counting;
static unsigned long allocs;

#if HOTPATH_INTERPOSE
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);

void *malloc(size_t n)
{
	if (counting)
		allocs++;
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
	if (counting)
		allocs++;
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
	if (counting)
		allocs++;
	return __libc_realloc(p, n);
}

void free(void *p)
{
	if (counting && p)
		allocs++;
	__libc_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	void *p;

	if (counting)
		allocs++;
	p = __libc_memalign(align, n);
	if (!p)
		return 12; /* ENOMEM */
	*out = p;
	return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
	if (counting)
		allocs++;
	return __libc_memalign(align, n);
}
#endif

static const char *const topics[] = { "plant/l1/temp", "plant/l1/hum", "plant/l2/temp", "x" };

struct ctx {
	char *dir;
	char state[4096];
	uint8_t key[E2E_KEY_BYTES];
	struct e2e_tx *tx;
	struct e2e_keyring *kr;
	struct e2e_rx *rx;
};

static int setup(struct ctx *c)
{
	static const struct e2e_keyid id = { .sender = 0x600DF00DU, .scope = 1, .epoch = 1 };
	struct e2e_tx_config cfg;

	if (e2e_init() != E2E_OK || !(c->dir = tu_tmpdir()))
		return -1;
	tu_path(c->state, sizeof c->state, c->dir, "tx.state");
	tu_key(c->key, 0x42);
	memset(&cfg, 0, sizeof cfg);
	cfg.id = id;
	cfg.key = c->key;
	cfg.block = BLOCK;
	cfg.reserve = e2e_txstate_reserve_cb;
	cfg.reserve_ctx = c->state;
	if (e2e_tx_create(&c->tx, &cfg) != E2E_OK || e2e_keyring_create(&c->kr, 4) != E2E_OK ||
	    e2e_keyring_add(c->kr, &id, c->key, 0) != E2E_OK ||
	    e2e_keyring_set_single_scope(c->kr, id.sender, id.scope) != E2E_OK ||
	    e2e_rx_create(&c->rx, NULL) != E2E_OK)
		return -1;
	return 0;
}

static void teardown(struct ctx *c)
{
	e2e_rx_destroy(c->rx);
	e2e_keyring_destroy(c->kr);
	e2e_tx_destroy(c->tx);
	tu_rmtree(c->dir);
	free(c->dir);
}

/* The measured loop: nothing here may allocate or enter the kernel. */
static unsigned long run(struct ctx *c, unsigned long n)
{
	uint8_t pt[64], env[64 + E2E_ENVELOPE_OVERHEAD], back[64];
	unsigned long bad = 0;

	memset(pt, 0x5A, sizeof pt);
	for (unsigned long i = 0; i < n; i++) {
		const char *t = topics[i % 4];
		size_t tl = strlen(t), el = 0;
		struct e2e_rx_result res;

		memcpy(pt, &i, sizeof i);
		if (e2e_tx_seal(c->tx, env, sizeof env, &el, (const uint8_t *)t, tl, pt,
				sizeof pt) != E2E_OK ||
		    e2e_rx_open(c->rx, c->kr, back, sizeof back, &res, (const uint8_t *)t, tl,
				env, el, 1000) != E2E_OK ||
		    res.verdict != E2E_V_OK || res.pt_len != sizeof pt ||
		    memcmp(back, pt, sizeof pt) != 0)
			bad++;
	}
	return bad;
}

int main(int argc, char **argv)
{
	struct ctx c;
	unsigned long n, bad;
	char *end;

	if (argc != 2 || (n = strtoul(argv[1], &end, 10)) == 0 || *end || n > 100000000UL) {
		fprintf(stderr, "usage: hotpath N   (seal and open N messages)\n");
		return 2;
	}
	if (!HOTPATH_INTERPOSE) {
		printf("allocs=skipped (AddressSanitizer build)\n");
		return 77;
	}
	memset(&c, 0, sizeof c);
	if (setup(&c) != 0) {
		fprintf(stderr, "hotpath: setup failed\n");
		teardown(&c);
		return 2;
	}
	counting = 1;
	bad = run(&c, n);
	counting = 0;
	teardown(&c);
	/* One line, one write(), whatever N is. */
	printf("allocs=%lu bad=%lu\n", allocs, bad);
	return allocs || bad ? 1 : 0;
}
