/*
 * Envelope tests: header codec, seal/open, the wire construction checked
 * against libsodium directly, and the envelope.json vectors (positive ones
 * byte-exact, negative ones through a fresh receiver).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "testcu.h"
#include "base/topichash.h"

#define BIG 2048U

static const char TOPIC[] = "plant/line1/temp";

static struct e2e_header sample_header(void)
{
	return tu_header(0x1A2B3C4DU, 3, 7, 0x5EED0001U, 0x010203040506ULL, 0x0A0B0C0DU);
}

/* ---- Safety ------------------------------------------------------------ */

static void test_safety_parse(void)
{
	uint8_t env[E2E_ENVELOPE_OVERHEAD + 4];
	struct e2e_header h = sample_header(), out;
	enum e2e_status st;

	e2e_header_write(env, &h);
	memset(env + E2E_HEADER_BYTES, 0, sizeof env - E2E_HEADER_BYTES);
	CU_ASSERT_EQUAL(e2e_header_parse(NULL, env, sizeof env), E2E_ERR_ARG);
	st = e2e_header_parse(&out, NULL, sizeof env);
	CU_ASSERT(st == E2E_ERR_MALFORMED || st == E2E_ERR_ARG);
	/* Anything shorter than header + tag is not an envelope. */
	for (size_t n = 0; n < E2E_ENVELOPE_OVERHEAD; n++)
		TU_CHECK(e2e_header_parse(&out, env, n) == E2E_ERR_MALFORMED,
			"length %zu accepted", n);
	CU_ASSERT_EQUAL(e2e_header_parse(&out, env, E2E_ENVELOPE_OVERHEAD), E2E_OK);
}

static void test_safety_seal(void)
{
	uint8_t key[E2E_KEY_BYTES], out[64], pt[8] = "payload";
	struct e2e_header h = sample_header();
	const uint8_t *t = (const uint8_t *)TOPIC;
	size_t n = 99, tl = strlen(TOPIC);

	tu_key(key, 1);
	CU_ASSERT_EQUAL(e2e_envelope_seal(NULL, sizeof out, &n, &h, key, t, tl, pt, 8), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_envelope_seal(out, sizeof out, NULL, &h, key, t, tl, pt, 8), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_envelope_seal(out, sizeof out, &n, NULL, key, t, tl, pt, 8), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_envelope_seal(out, sizeof out, &n, &h, NULL, t, tl, pt, 8), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_envelope_seal(out, sizeof out, &n, &h, key, NULL, tl, pt, 8), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_envelope_seal(out, sizeof out, &n, &h, key, t, tl, NULL, 8), E2E_ERR_ARG);
	/* One byte short: E2E_ERR_BUFFER and nothing written. */
	memset(out, 0xA5, sizeof out);
	CU_ASSERT_EQUAL(e2e_envelope_seal(out, e2e_envelope_size(8) - 1, &n, &h, key, t, tl, pt, 8),
		E2E_ERR_BUFFER);
	CU_ASSERT_EQUAL(n, 0);
	for (size_t i = 0; i < sizeof out; i++)
		CU_ASSERT_EQUAL(out[i], 0xA5);
	CU_ASSERT_EQUAL(e2e_envelope_seal(out, 0, &n, &h, key, t, tl, pt, 0), E2E_ERR_BUFFER);
	CU_ASSERT_EQUAL(e2e_envelope_seal(out, e2e_envelope_size(8), &n, &h, key, t, tl, pt, 8), E2E_OK);
	CU_ASSERT_EQUAL(n, e2e_envelope_size(8));
}

/* A sender must never produce what a receiver calls MALFORMED. */
static void test_safety_seal_bad_header(void)
{
	uint8_t key[E2E_KEY_BYTES], out[64];
	struct e2e_header bad[5];
	size_t n;

	tu_key(key, 1);
	for (size_t i = 0; i < 5; i++)
		bad[i] = sample_header();
	bad[0].run = 0;
	bad[1].counter = 0;
	bad[2].seq = 0;
	bad[3].suite = 3;
	bad[4].counter = E2E_COUNTER_MAX + 1;
	for (size_t i = 0; i < 5; i++) {
		n = 0;
		TU_CHECK(e2e_envelope_seal(out, sizeof out, &n, &bad[i], key,
			(const uint8_t *)"t", 1, NULL, 0) != E2E_OK, "bad header %zu sealed", i);
		CU_ASSERT_EQUAL(n, 0);
	}
}

static void test_safety_open(void)
{
	uint8_t key[E2E_KEY_BYTES], env[64], pt[32];
	struct e2e_header h = sample_header();
	const uint8_t *t = (const uint8_t *)TOPIC;
	size_t n, tl = strlen(TOPIC), len;

	tu_key(key, 2);
	len = tu_seal(env, sizeof env, &h, key, TOPIC, (const uint8_t *)"0123456789", 10);
	CU_ASSERT_EQUAL_FATAL(len, 50);
	CU_ASSERT_EQUAL(e2e_envelope_open(pt, sizeof pt, NULL, key, t, tl, env, len), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_envelope_open(pt, sizeof pt, &n, NULL, t, tl, env, len), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_envelope_open(pt, sizeof pt, &n, key, NULL, tl, env, len), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_envelope_open(NULL, sizeof pt, &n, key, t, tl, env, len), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_envelope_open(pt, sizeof pt, &n, key, t, tl, NULL, len), E2E_ERR_MALFORMED);
	for (size_t l = 0; l < E2E_ENVELOPE_OVERHEAD; l++)
		TU_CHECK(e2e_envelope_open(pt, sizeof pt, &n, key, t, tl, env, l) == E2E_ERR_MALFORMED,
			"open of %zu bytes not MALFORMED", l);
	CU_ASSERT_EQUAL(e2e_envelope_open(pt, 9, &n, key, t, tl, env, len), E2E_ERR_BUFFER);
	CU_ASSERT_EQUAL(e2e_envelope_open(pt, 10, &n, key, t, tl, env, len), E2E_OK);
	CU_ASSERT_EQUAL(n, 10);
	CU_ASSERT(!memcmp(pt, "0123456789", 10));
}

/* ---- Header codec ------------------------------------------------------ */

static void test_header_layout(void)
{
	static const uint8_t want[E2E_HEADER_BYTES] = {
		0x01, 0x03, 0x00, 0x00, 0x00, 0x07, 0x1A, 0x2B, 0x3C, 0x4D, 0x5E, 0xED,
		0x00, 0x01, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0A, 0x0B, 0x0C, 0x0D,
	};
	struct e2e_header h = sample_header();
	uint8_t out[E2E_HEADER_BYTES + 2];

	memset(out, 0xEE, sizeof out);
	e2e_header_write(out, &h);
	CU_ASSERT(!memcmp(out, want, sizeof want));
	/* Exactly 24 bytes written. */
	CU_ASSERT_EQUAL(out[E2E_HEADER_BYTES], 0xEE);
	CU_ASSERT_EQUAL(out[E2E_HEADER_BYTES + 1], 0xEE);
}

static void test_header_round_trip(void)
{
	struct e2e_header cases[4];
	uint8_t env[E2E_ENVELOPE_OVERHEAD];

	cases[0] = sample_header();
	cases[1] = tu_header(0xFFFFFFFFU, 0xFF, 0xFFFFFFFFU, 0xFFFFFFFFU, E2E_COUNTER_MAX, 0xFFFFFFFFU);
	cases[2] = tu_header(0, 0, 0, 1, 1, 1);
	cases[3] = tu_header(0x80000001U, 0x80, 0x00010000U, 0x7FFFFFFFU, 0x800000000001ULL, 0x80000000U);
	memset(env, 0, sizeof env);
	for (size_t i = 0; i < 4; i++) {
		struct e2e_header back;

		e2e_header_write(env, &cases[i]);
		CU_ASSERT_EQUAL_FATAL(e2e_header_parse(&back, env, sizeof env), E2E_OK);
		TU_CHECK(back.suite == cases[i].suite && back.scope == cases[i].scope &&
			back.epoch == cases[i].epoch && back.sender == cases[i].sender &&
			back.run == cases[i].run && back.counter == cases[i].counter &&
			back.seq == cases[i].seq, "header %zu does not round-trip", i);
	}
}

static void test_header_parse_rejects(void)
{
	uint8_t env[E2E_ENVELOPE_OVERHEAD];
	struct e2e_header h, out;
	static const uint8_t suites[] = { 0x00, 0x02, 0x81, 0xFF };

	memset(env, 0, sizeof env);
	h = sample_header();
	h.run = 0;
	e2e_header_write(env, &h);
	CU_ASSERT_EQUAL(e2e_header_parse(&out, env, sizeof env), E2E_ERR_MALFORMED);
	h = sample_header();
	h.counter = 0;
	e2e_header_write(env, &h);
	CU_ASSERT_EQUAL(e2e_header_parse(&out, env, sizeof env), E2E_ERR_MALFORMED);
	h = sample_header();
	h.seq = 0;
	e2e_header_write(env, &h);
	CU_ASSERT_EQUAL(e2e_header_parse(&out, env, sizeof env), E2E_ERR_MALFORMED);
	for (size_t i = 0; i < sizeof suites; i++) {
		enum e2e_status st;

		h = sample_header();
		e2e_header_write(env, &h);
		env[0] = suites[i];
		st = e2e_header_parse(&out, env, sizeof env);
		TU_CHECK(st == E2E_ERR_VERSION || st == E2E_ERR_MALFORMED,
			"suite 0x%02x: %s", suites[i], e2e_strerror(st));
	}
}

/* ---- Seal / open ------------------------------------------------------- */

/* The construction of SPEC section 3 rebuilt from libsodium primitives. */
static void test_wire_construction(void)
{
	static const size_t sizes[] = { 0, 1, 15, 16, 17, 64, 1000 };
	uint8_t key[E2E_KEY_BYTES], pt[1000], env[1100], back[1000], aad[E2E_HEADER_BYTES + 64];
	size_t tl = strlen(TOPIC);

	tu_key(key, 0x30);
	for (size_t i = 0; i < sizeof pt; i++)
		pt[i] = (uint8_t)(i * 7 + 3);
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		struct e2e_header h = tu_header(5, 1, 2, 3, 100 + k, 1 + (uint32_t)k);
		size_t len = tu_seal(env, sizeof env, &h, key, TOPIC, pt, sizes[k]);
		unsigned long long mlen = 0;

		TU_CHECK(len == sizes[k] + E2E_ENVELOPE_OVERHEAD, "size %zu: envelope %zu",
			sizes[k], len);
		if (len != sizes[k] + E2E_ENVELOPE_OVERHEAD)
			continue;
		/* nonce = header, AAD = header || topic. */
		memcpy(aad, env, E2E_HEADER_BYTES);
		memcpy(aad + E2E_HEADER_BYTES, TOPIC, tl);
		TU_CHECK(crypto_aead_xchacha20poly1305_ietf_decrypt(back, &mlen, NULL,
			env + E2E_HEADER_BYTES, len - E2E_HEADER_BYTES, aad, E2E_HEADER_BYTES + tl,
			env, key) == 0 && mlen == sizes[k] && !memcmp(back, pt, sizes[k]),
			"size %zu: not XChaCha20-Poly1305(nonce=header, aad=header||topic)", sizes[k]);
		if (sizes[k] >= 16)
			CU_ASSERT(memcmp(env + E2E_HEADER_BYTES, pt, sizes[k]) != 0);
	}
}

static void test_round_trip(void)
{
	uint8_t key[E2E_KEY_BYTES], pt[300], env[400], back[300];
	size_t n = 0, tl = strlen(TOPIC);

	tu_key(key, 0x50);
	for (size_t len = 0; len <= sizeof pt; len += 37) {
		struct e2e_header h = tu_header(9, 9, 9, 9, len + 1, 1);
		size_t el;

		randombytes_buf(pt, sizeof pt);
		el = tu_seal(env, sizeof env, &h, key, TOPIC, pt, len);
		CU_ASSERT_EQUAL(el, e2e_envelope_size(len));
		memset(back, 0xCC, sizeof back);
		CU_ASSERT_EQUAL(e2e_envelope_open(back, sizeof back, &n, key,
			(const uint8_t *)TOPIC, tl, env, el), E2E_OK);
		CU_ASSERT_EQUAL(n, len);
		CU_ASSERT(!memcmp(back, pt, len));
	}
}

/* Any single bit flip anywhere is caught, and the plaintext is wiped. */
static void test_tamper_zeroes_plaintext(void)
{
	uint8_t key[E2E_KEY_BYTES], env[80], bad[80], pt[40];
	struct e2e_header h = sample_header();
	size_t n, tl = strlen(TOPIC);
	size_t len;

	tu_key(key, 0x70);
	len = tu_seal(env, sizeof env, &h, key, TOPIC, (const uint8_t *)"the quick brown fox", 19);
	CU_ASSERT_EQUAL_FATAL(len, 59);
	for (size_t i = 0; i < len; i++) {
		for (unsigned bit = 0; bit < 8; bit += 7) {
			enum e2e_status st;

			memcpy(bad, env, len);
			bad[i] ^= (uint8_t)(1U << bit);
			memset(pt, 0xAA, sizeof pt);
			n = 77;
			st = e2e_envelope_open(pt, sizeof pt, &n, key, (const uint8_t *)TOPIC, tl, bad, len);
			TU_CHECK(st == E2E_ERR_AUTH, "flip byte %zu bit %u: %s", i, bit, e2e_strerror(st));
			TU_CHECK(tu_all_zero(pt, len - E2E_ENVELOPE_OVERHEAD), "flip byte %zu: plaintext left", i);
			CU_ASSERT_EQUAL(n, 0);
		}
	}
}

static void test_wrong_topic_or_key(void)
{
	static const char *const topics[] = { "plant/line1/tem", "plant/line1/temp/",
		"Plant/line1/temp", "plant/line1/temp\0" };
	uint8_t key[E2E_KEY_BYTES], other[E2E_KEY_BYTES], env[80], pt[40];
	struct e2e_header h = sample_header();
	size_t n, len;

	tu_key(key, 0x10);
	tu_key(other, 0x11);
	len = tu_seal(env, sizeof env, &h, key, TOPIC, (const uint8_t *)"secret", 6);
	for (size_t i = 0; i < 4; i++) {
		size_t tl = strlen(topics[i]) + (i == 3);

		memset(pt, 0xAA, sizeof pt);
		CU_ASSERT_EQUAL(e2e_envelope_open(pt, sizeof pt, &n, key,
			(const uint8_t *)topics[i], tl, env, len), E2E_ERR_AUTH);
		CU_ASSERT(tu_all_zero(pt, 6));
	}
	memset(pt, 0xAA, sizeof pt);
	CU_ASSERT_EQUAL(e2e_envelope_open(pt, sizeof pt, &n, other,
		(const uint8_t *)TOPIC, strlen(TOPIC), env, len), E2E_ERR_AUTH);
	CU_ASSERT(tu_all_zero(pt, 6));
}

/* ---- Vectors ----------------------------------------------------------- */

static int read_header(const json_t *o, struct e2e_header *h)
{
	uint64_t v[7];
	static const char *const f[7] = { "suite", "scope", "epoch", "sender", "run", "counter", "seq" };

	for (size_t i = 0; i < 7; i++) {
		if (tu_juint(o, f[i], &v[i]))
			return -1;
	}
	*h = tu_header((uint32_t)v[3], (uint8_t)v[1], (uint32_t)v[2], (uint32_t)v[4], v[5],
		(uint32_t)v[6]);
	h->suite = (uint8_t)v[0];
	return 0;
}

static void check_positive(const json_t *p)
{
	const char *name = tu_jstr(p, "name");
	uint8_t key[E2E_KEY_BYTES], topic[E2E_TOPIC_MAX], pt[BIG], want[BIG], env[BIG], back[BIG];
	size_t kl = 0, tl = 0, pl = 0, wl = 0, el = 0, bl = 0;
	struct e2e_header h, parsed;
	enum e2e_status st;

	if (!name || tu_jhex(p, "key", key, sizeof key, &kl) || kl != E2E_KEY_BYTES ||
	    read_header(json_object_get(p, "header"), &h) ||
	    tu_jhex(p, "topic_hex", topic, sizeof topic, &tl) ||
	    tu_jhex(p, "plaintext", pt, sizeof pt, &pl) ||
	    tu_jhex(p, "envelope", want, sizeof want, &wl)) {
		TU_CHECK(0, "positive vector %s unreadable", name ? name : "?");
		return;
	}
	/* The topic string and its hex agree: we test the bytes on the wire. */
	TU_CHECK(strlen(tu_jstr(p, "topic")) == tl && !memcmp(tu_jstr(p, "topic"), topic, tl),
		"%s: topic and topic_hex differ", name);
	st = e2e_envelope_seal(env, sizeof env, &el, &h, key, topic, tl, pt, pl);
	TU_CHECK(st == E2E_OK, "%s: seal: %s", name, e2e_strerror(st));
	TU_CHECK(el == wl && !memcmp(env, want, wl), "%s: sealed bytes differ", name);
	st = e2e_header_parse(&parsed, want, wl);
	TU_CHECK(st == E2E_OK && parsed.suite == h.suite && parsed.scope == h.scope &&
		parsed.epoch == h.epoch && parsed.sender == h.sender && parsed.run == h.run &&
		parsed.counter == h.counter && parsed.seq == h.seq,
		"%s: parsed header differs (%s)", name, e2e_strerror(st));
	st = e2e_envelope_open(back, sizeof back, &bl, key, topic, tl, want, wl);
	TU_CHECK(st == E2E_OK && bl == pl && !memcmp(back, pt, pl), "%s: open: %s", name,
		e2e_strerror(st));
}

static struct e2e_keyring *ring_of(const json_t *keys, const char *name)
{
	struct e2e_keyring *kr = NULL;
	const json_t *k;
	size_t i;

	CU_ASSERT_EQUAL_FATAL(e2e_keyring_create(&kr, 8), E2E_OK);
	TU_CHECK(json_is_array(keys), "%s: keys is not an array", name);
	json_array_foreach(keys, i, k) {
		uint64_t sender = 0, scope = 0, epoch = 0, flags = 0;
		uint8_t key[E2E_KEY_BYTES];
		size_t kl = 0;
		struct e2e_keyid id;

		if (tu_juint(k, "sender", &sender) || tu_juint(k, "scope", &scope) ||
		    tu_juint(k, "epoch", &epoch) || tu_jhex(k, "key", key, sizeof key, &kl))
			continue;
		id.sender = (uint32_t)sender;
		id.scope = (uint8_t)scope;
		id.epoch = (uint32_t)epoch;
		/* Optional "flags" (signed.json): the key came with E2E_KEY_SIGNED. */
		if (tu_jopt_uint(k, "flags", &flags) != 1)
			flags = 0;
		TU_CHECK(e2e_keyring_add_flags(kr, &id, key, 0, (uint8_t)flags) == E2E_OK,
			"%s: key %zu refused", name, i);
	}
	return kr;
}

/* "maps": each sender's topic map as its deliveries carry it (SPEC 11.2). */
static void add_maps(struct e2e_keyring *kr, const json_t *maps, const char *name)
{
	const json_t *mp, *r;
	size_t i, j;

	TU_CHECK(json_is_array(maps), "%s: maps is not an array", name);
	json_array_foreach(maps, i, mp) {
		struct e2e_scope_rule rules[16];
		uint64_t sender = 0, scope = 0;
		const json_t *jr = json_object_get(mp, "rules");
		size_t n = 0;

		if (tu_juint(mp, "sender", &sender) || !json_is_array(jr) ||
		    json_array_size(jr) > 16) {
			TU_CHECK(0, "%s: map %zu unreadable", name, i);
			continue;
		}
		json_array_foreach(jr, j, r) {
			const char *flt = tu_jstr(r, "filter");

			if (!flt || tu_juint(r, "scope", &scope))
				break;
			rules[n++] = (struct e2e_scope_rule){ (uint8_t)scope, flt, strlen(flt) };
		}
		TU_CHECK(n == json_array_size(jr) &&
			e2e_keyring_set_profile(kr, (uint32_t)sender, rules, (uint32_t)n, 0) == E2E_OK,
			"%s: map %zu refused", name, i);
	}
}

/* Optional "signers" (signed.json): sender ids and their Ed25519 keys. */
static void add_signers(struct e2e_keyring *kr, const json_t *signers, const char *name)
{
	const json_t *sg;
	size_t i;

	json_array_foreach(signers, i, sg) {
		uint64_t sender = 0;
		uint8_t pk[32];
		size_t pl = 0;

		if (tu_juint(sg, "sender", &sender) || tu_jhex(sg, "sign_pk", pk, sizeof pk, &pl) ||
		    pl != 32) {
			TU_CHECK(0, "%s: signer %zu unreadable", name, i);
			continue;
		}
		TU_CHECK(e2e_keyring_set_signer(kr, (uint32_t)sender, pk) == E2E_OK,
			"%s: signer refused", name);
	}
}

static void check_negative(const json_t *n)
{
	const char *name = tu_jstr(n, "name");
	uint8_t topic[E2E_TOPIC_MAX], env[BIG], pt[BIG];
	size_t tl = 0, el = 0;
	struct e2e_keyring *kr;
	struct e2e_rx *rx;
	struct e2e_rx_result res;
	struct e2e_rx_stats stats;
	enum e2e_verdict want;
	enum e2e_status st;

	if (!name || tu_jhex(n, "topic_hex", topic, sizeof topic, &tl) ||
	    tu_jhex(n, "envelope", env, sizeof env, &el) || tu_jverdict(n, "verdict", &want)) {
		TU_CHECK(0, "negative vector %s unreadable", name ? name : "?");
		return;
	}
	kr = ring_of(json_object_get(n, "keys"), name);
	add_maps(kr, json_object_get(n, "maps"), name);
	add_signers(kr, json_object_get(n, "signers"), name);
	rx = tu_rx_new(0, 0);
	memset(pt, 0xAA, sizeof pt);
	memset(&res, 0, sizeof res);
	st = e2e_rx_open(rx, kr, pt, sizeof pt, &res, topic, tl, env, el, 1000);
	TU_CHECK(st == E2E_OK && res.verdict == want, "%s: %s / %s, expected %s", name,
		e2e_strerror(st), tu_verdict_str(res.verdict), tu_verdict_str(want));
	/* Nothing is delivered and no stream is created for a rejected envelope. */
	TU_CHECK(res.pt_len == 0, "%s: %zu plaintext bytes reported", name, res.pt_len);
	/* Either wiped after a failed AEAD, or never written (refused before it). */
	if (want == E2E_V_FORGED && el >= e2e_suite_overhead(env[0]))
		TU_CHECK(tu_all_zero(pt, el - e2e_suite_overhead(env[0])) ||
			(pt[0] == 0xAA && !memcmp(pt, pt + 1, el - e2e_suite_overhead(env[0]) - 1)),
			"%s: plaintext not wiped", name);
	e2e_rx_stats(rx, &stats);
	TU_CHECK(stats.streams == 0 && stats.verdicts[want] == 1, "%s: receiver state moved", name);
	e2e_rx_destroy(rx);
	e2e_keyring_destroy(kr);
}

/* Suite 0x02: seal + sign reproduce the vector (Ed25519 is deterministic)
 * and a receiver knowing the signer accepts it. */
static void check_signed_positive(const json_t *p)
{
	const char *name = tu_jstr(p, "name");
	const json_t *sg = json_object_get(p, "signer");
	uint8_t key[E2E_KEY_BYTES], topic[256], pt[BIG], want[BIG], env[BIG], back[BIG];
	uint8_t seed[32], pk[32], sk[64];
	size_t kl = 0, tl = 0, pl = 0, wl = 0, el = 0, sl = 0;
	struct e2e_header h;
	struct e2e_keyring *kr;
	struct e2e_rx *rx;
	struct e2e_rx_result res;
	struct e2e_keyid id;

	if (!name || tu_jhex(p, "key", key, sizeof key, &kl) ||
	    read_header(json_object_get(p, "header"), &h) ||
	    tu_jhex(p, "topic_hex", topic, sizeof topic, &tl) ||
	    tu_jhex(p, "plaintext", pt, sizeof pt, &pl) ||
	    tu_jhex(p, "envelope", want, sizeof want, &wl) ||
	    tu_jhex(sg, "seed", seed, sizeof seed, &sl) || sl != 32) {
		TU_CHECK(0, "signed vector %s unreadable", name ? name : "?");
		return;
	}
	crypto_sign_seed_keypair(pk, sk, seed);
	CU_ASSERT_EQUAL(e2e_envelope_seal(env, sizeof env, &el, &h, key, topic, tl, pt, pl), E2E_OK);
	CU_ASSERT_EQUAL(e2e_envelope_sign(env, sizeof env, &el, topic, tl, sk), E2E_OK);
	TU_CHECK(el == wl && el == pl + E2E_SIGNED_OVERHEAD && !memcmp(env, want, wl),
		"%s: signed envelope differs", name);
	CU_ASSERT_EQUAL(e2e_envelope_verify(want, wl, topic, tl, pk), E2E_OK);
	/* The signature is Ed25519 over the listed BLAKE2b-512 digest (SPEC 3.4). */
	{
		uint8_t digest[64], sig[64];
		size_t dl = 0, gl = 0;

		if (!tu_jhex(p, "digest", digest, sizeof digest, &dl) &&
		    !tu_jhex(p, "signature", sig, sizeof sig, &gl))
			TU_CHECK(dl == 64 && gl == 64 && !memcmp(sig, want + wl - 64, 64) &&
				crypto_sign_verify_detached(sig, digest, 64, pk) == 0,
				"%s: signature is not over the digest", name);
	}
	id = (struct e2e_keyid){ h.sender, h.scope, h.epoch };
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_create(&kr, 2), E2E_OK);
	CU_ASSERT_EQUAL(e2e_keyring_add_flags(kr, &id, key, 0, E2E_KEYRING_SIGNED), E2E_OK);
	/* The vector's sender is the id of its key: the ring takes the pair. */
	CU_ASSERT_EQUAL(e2e_keyring_set_signer(kr, h.sender, pk), E2E_OK);
	add_maps(kr, json_object_get(p, "maps"), name);
	rx = tu_rx_new(0, 0);
	CU_ASSERT_EQUAL(e2e_rx_open(rx, kr, back, sizeof back, &res, topic, tl, want, wl, 1), E2E_OK);
	TU_CHECK(res.verdict == E2E_V_OK && res.pt_len == pl && !memcmp(back, pt, pl),
		"%s: receiver says %s", name, tu_verdict_str(res.verdict));
	e2e_rx_destroy(rx);
	e2e_keyring_destroy(kr);
	sodium_memzero(sk, sizeof sk);
}

static void test_vectors_signed(void)
{
	tu_each_vector("signed.json", "positive", check_signed_positive);
	tu_each_vector("signed.json", "negative", check_negative);
}

static void test_vectors_positive(void)
{
	tu_each_vector("envelope.json", "positive", check_positive);
}

static void test_vectors_negative(void)
{
	tu_each_vector("envelope.json", "negative", check_negative);
}

/* SPEC 5.2: the receiver's topic hash is SipHash-2-4, read little-endian. */
static void check_topic_hash(const json_t *t)
{
	uint8_t key[16], topic[1024], out[8], be[8];
	uint64_t want = 0;
	size_t kl = 0, tl = 0, bl = 0;
	struct topichash th;

	if (tu_jhex(t, "key", key, sizeof key, &kl) || kl != 16 ||
	    tu_jhex(t, "topic_hex", topic, sizeof topic, &tl) ||
	    tu_jhex(t, "topic_hash", be, sizeof be, &bl) || bl != 8)
		return;
	for (size_t i = 0; i < 8; i++)
		want = want << 8 | be[i];   /* written big-endian, as in files (6.3) */
	memset(&th, 0, sizeof th);
	memcpy(th.key, key, sizeof key);
	CU_ASSERT_EQUAL(crypto_shorthash(out, topic, tl, key), 0);
	{
		uint8_t sh[8];
		size_t sl = 0;

		TU_CHECK(!tu_jhex(t, "siphash", sh, sizeof sh, &sl) && sl == 8 && !memcmp(sh, out, 8),
			"siphash of %zu-byte topic", tl);
	}
	TU_CHECK(topichash(&th, topic, tl) == want, "topic_hash of %zu-byte topic", tl);
	/* The one-entry cache gives the same answer. */
	TU_CHECK(topichash(&th, topic, tl) == want, "cached topic_hash of %zu-byte topic", tl);
}

static void test_vectors_topic_hash(void)
{
	tu_each_vector("envelope.json", "topic_hashes", check_topic_hash);
}

static const struct tu_test safety_tests[] = {
	{ "Safety: header parse NULL and short input", test_safety_parse },
	{ "Safety: seal NULL arguments and short output buffer", test_safety_seal },
	{ "Safety: seal refuses headers a receiver would reject", test_safety_seal_bad_header },
	{ "Safety: open NULL arguments, short input and short buffer", test_safety_open },
	{ NULL, NULL },
};

static const struct tu_test vector_tests[] = {
	{ "Vectors: positive envelopes byte-exact (seal and open)", test_vectors_positive },
	{ "Vectors: negative envelopes give their verdict", test_vectors_negative },
	{ "Vectors: signed envelopes (suite 0x02) and signed scopes", test_vectors_signed },
	{ "Vectors: topic hash (SipHash-2-4, SPEC 5.2)", test_vectors_topic_hash },
	{ NULL, NULL },
};

static const struct tu_test envelope_tests[] = {
	{ "Header: byte layout big-endian at spec offsets", test_header_layout },
	{ "Header: write/parse round trip incl. maximum values", test_header_round_trip },
	{ "Header: parse rejects zero run/counter/seq and foreign suites", test_header_parse_rejects },
	{ "Envelope: XChaCha20-Poly1305 with nonce=header, AAD=header||topic", test_wire_construction },
	{ "Envelope: seal/open round trip", test_round_trip },
	{ "Envelope: any bit flip fails and zeroes the plaintext", test_tamper_zeroes_plaintext },
	{ "Envelope: wrong topic or key fails", test_wrong_topic_or_key },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "envelope safety", safety_tests },
		{ "envelope vectors", vector_tests },
		{ "envelope", envelope_tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
