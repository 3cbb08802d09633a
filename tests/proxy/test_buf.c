/*
 * The proxy's connection queues (proxy/buf.c): a consumed CONNECT password
 * or PUBLISH payload leaves no byte behind in the block, and a PUBLISH cut
 * at every byte boundary is framed whole exactly once, the way relay_down
 * reads din (frame; NEED_MORE says how much to wait for; consume wiping).
 * Registered as meson test 'proxy_buf'.
 */
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <sodium.h>

#include "buf.h"
#include "mqtt_test.h"

static const char secret_pw[] = "hunter2-correct-horse";

/* 1 if @p needle occurs anywhere in the whole block of @p b (used or not). */
static int block_has(const struct buf *b, const void *needle, size_t n)
{
	for (size_t i = 0; b->p && i + n <= b->cap; i++)
		if (memcmp(b->p + i, needle, n) == 0)
			return 1;
	return 0;
}

static void test_buf_safety(void)
{
	struct buf b = { NULL, 0, 0 };

	buf_consume_wipe(&b, 0);
	buf_consume_wipe(&b, 5);
	buf_free_wipe(&b);
	MT_CHECK(buf_release(&b) == 0, "empty release");
	MT_CHECK(buf_reserve(&b, 10, 9) == NULL, "over the limit");
	MT_CHECK(buf_append(&b, (const uint8_t *)"abc", 3, 2) == -1 && b.len == 0,
		"append over the limit");
}

/* The publisher's CONNECT with a password, then the start of a PUBLISH. */
static void test_buf_connect_password_wiped(void)
{
	uint8_t pkt[512];
	struct cspec cs = { .version = MQTT_V311, .client_id = "dev-1", .username = "u",
		.password = secret_pw, .password_len = sizeof secret_pw - 1, .clean = 1 };
	size_t n = build_connect(pkt, sizeof pkt, &cs), pl, hl;
	struct buf b = { NULL, 0, 0 };
	struct mqtt_connect c;
	size_t used;

	MT_CHECK(buf_append(&b, pkt, n, 1 << 20) == 0, "append CONNECT");
	MT_CHECK(buf_append(&b, (const uint8_t *)"\x30\x7f\x00\x01t", 5, 1 << 20) == 0,
		"append a partial PUBLISH");
	MT_ST(mqtt_frame(b.p, b.len, 1 << 20, &pl, &hl), MQTT_OK);
	MT_ST(mqtt_parse_connect(b.p, pl, &c), MQTT_OK);
	used = b.len;
	MT_CHECK(span_eq(c.password, secret_pw, sizeof secret_pw - 1), "password parsed");
	MT_CHECK(block_has(&b, secret_pw, sizeof secret_pw - 1), "password in the block");
	buf_consume_wipe(&b, pl);
	MT_CHECK(!block_has(&b, secret_pw, sizeof secret_pw - 1),
		"password bytes left in the block after consume");
	MT_CHECK(b.len == 5 && memcmp(b.p, "\x30\x7f\x00\x01t", 5) == 0, "rest kept");
	for (size_t i = b.len; i < used; i++)
		if (b.p[i]) {
			MT_CHECK(0, "byte %zu of the unused tail is 0x%02x", i, b.p[i]);
			break;
		}
	/* Consuming more than is there empties and wipes it too. */
	buf_consume_wipe(&b, 99);
	MT_CHECK(b.len == 0 && !block_has(&b, "\x30\x7f", 2), "all wiped");
	MT_CHECK(buf_release(&b) > 0 && b.p == NULL, "released");
}

/* Growth copies the queue and keeps it whole (the old block is wiped, not realloc'ed). */
static void test_buf_growth(void)
{
	struct buf b = { NULL, 0, 0 };
	uint8_t chunk[1000];

	for (int i = 0; i < 100; i++) {
		memset(chunk, i, sizeof chunk);
		MT_CHECK(buf_append(&b, chunk, sizeof chunk, 1 << 20) == 0, "append %d", i);
	}
	MT_CHECK(b.len == 100000 && b.cap >= b.len, "len %zu cap %zu", b.len, b.cap);
	for (int i = 0; i < 100; i++)
		if (b.p[i * 1000] != i || b.p[i * 1000 + 999] != i) {
			MT_CHECK(0, "chunk %d damaged by growth", i);
			break;
		}
	buf_free_wipe(&b);
	MT_CHECK(b.p == NULL && b.len == 0 && b.cap == 0, "freed");
}

/*
 * relay_down's reading of din: append what arrived, frame, take whole
 * packets, consume with wipe. Returns how many whole packets were taken;
 * *need is what NEED_MORE said the head packet will be.
 */
static int take(struct buf *b, const uint8_t *p, size_t n, size_t max, uint8_t *got,
	size_t *got_len, size_t *need)
{
	size_t off = 0;
	int k = 0;

	*need = 0;
	if (n && buf_append(b, p, n, max + 65536) != 0)
		return -1;
	while (off < b->len) {
		size_t pl, hl;
		enum mqtt_status st = mqtt_frame(b->p + off, b->len - off, max, &pl, &hl);

		if (st == MQTT_NEED_MORE) {
			*need = pl;
			break;
		}
		if (st != MQTT_OK)
			return -1;
		memcpy(got, b->p + off, pl);
		*got_len = pl;
		off += pl;
		k++;
	}
	buf_consume_wipe(b, off);
	return k;
}

/* A PUBLISH with a 1..4-byte Remaining Length, cut in two at every byte. */
static void test_buf_publish_split_every_byte(void)
{
	static const size_t sizes[] = { 100, 1000, 70000, 2100000 };
	static const uint8_t marker[] = "PLAINTEXT-MARKER";

	for (size_t s = 0; s < 4; s++) {
		size_t plen = sizes[s], max = plen + 64, n, step;
		uint8_t *payload = malloc(plen), *pkt = malloc(plen + 64), *got = malloc(plen + 64);
		memset(payload, 'x', plen);
		memcpy(payload + plen / 2, marker, sizeof marker - 1);
		/* Hand-built: 0x32, varint, topic "a/b", packet id 7, payload. */
		{
			size_t rl = 2 + 3 + 2 + plen, vn;

			pkt[0] = 0x32;
			vn = mqtt_varint_write(pkt + 1, (uint32_t)rl);
			n = 1 + vn;
			memcpy(pkt + n, "\x00\x03" "a/b" "\x00\x07", 7);
			n += 7;
			memcpy(pkt + n, payload, plen);
			n += plen;
			MT_CHECK(vn == (s < 3 ? s + 1 : 4), "%zu-byte payload: %zu-byte varint", plen,
				vn);
		}
		/* Every cut for the small ones; for the big ones every cut in the header
		 * and around the ends, then a stride (2 MiB cuts x 2 MiB copies is too slow). */
		step = n < 5000 ? 1 : n < 100000 ? 997 : n / 64;
		for (size_t cut = 0; cut <= n; cut += (cut < 16 || cut + 16 > n) ? 1 : step) {
			struct buf b = { NULL, 0, 0 };
			size_t got_len = 0, need;
			int k1 = take(&b, pkt, cut, max, got, &got_len, &need);
			int k2;

			if (k1 != (cut == n)) {
				MT_CHECK(0, "size %zu cut %zu: %d packets from the first part", plen, cut,
					k1);
				buf_free_wipe(&b);
				break;
			}
			/* The header is whole from byte 1 + varint on: the size is known. */
			if (cut < n && cut >= n - plen - 7 && need != n) {
				MT_CHECK(0, "size %zu cut %zu: NEED_MORE size %zu, want %zu", plen, cut,
					need, n);
				buf_free_wipe(&b);
				break;
			}
			k2 = take(&b, pkt + cut, n - cut, max, got, &got_len, &need);
			if (k1 + k2 != 1 || got_len != n || memcmp(got, pkt, n) != 0 || b.len != 0 ||
			    block_has(&b, marker, sizeof marker - 1)) {
				MT_CHECK(0, "size %zu cut %zu: %d+%d packets, %zu bytes, %zu left, "
					"plaintext %s", plen, cut, k1, k2, got_len, b.len,
					block_has(&b, marker, sizeof marker - 1) ? "left" : "gone");
				buf_free_wipe(&b);
				break;
			}
			buf_free_wipe(&b);
		}
		free(payload);
		free(pkt);
		free(got);
	}
}

static const struct mt_test buf_tests[] = {
	{ "Buf: safety", test_buf_safety },
	{ "Buf: a consumed CONNECT's password is wiped", test_buf_connect_password_wiped },
	{ "Buf: growth keeps the data", test_buf_growth },
	{ "Buf: PUBLISH split at every byte boundary", test_buf_publish_split_every_byte },
	{ NULL, NULL },
};

int main(void)
{
	CU_pSuite cs;
	int ret = 1;

	if (sodium_init() < 0 || CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	cs = CU_add_suite("buf", NULL, NULL);
	if (!cs)
		goto out;
	for (const struct mt_test *t = buf_tests; t->name; t++)
		if (!CU_add_test(cs, t->name, t->fn))
			goto out;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	if (CU_basic_run_tests() != CUE_SUCCESS)
		goto out;
	ret = CU_get_number_of_failures() != 0 || CU_get_number_of_asserts() == 0;
out:
	CU_cleanup_registry();
	return ret;
}
