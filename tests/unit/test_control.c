/*
 * Control message tests (protocol/SPEC.md sec. 11.2): control.json vectors
 * (every positive parses to its listed fields, every negative gives its
 * listed status), request -> delivery -> open round trips, forward secrecy
 * of deliveries and large signed summaries.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "testcu.h"

/* A delivery's refresh window, none: u64 from, u64 by (SPEC 11.2). */
#define NO_REFRESH 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0

#define BUF_CAP 4096U
#define TIME0 1700000000000ULL

static const struct e2e_ctl_want want_1_2[] = { { 1, 0 }, { 2, 7 } };

static struct e2e_ctl_key make_key(uint8_t scope, uint32_t epoch, uint64_t not_after, uint8_t seed)
{
	struct e2e_ctl_key k;

	memset(&k, 0, sizeof k);
	k.scope = scope;
	k.epoch = epoch;
	k.not_after_ms = not_after;
	tu_key(k.key, seed);
	return k;
}

/* A delivery of @p keys from @p sender answering @p r. */
static size_t deliver(uint8_t *out, size_t cap, const struct e2e_identity *sender,
	const struct tu_request *r, const struct e2e_ctl_key *keys, uint8_t nkeys)
{
	size_t len = 0;
	enum e2e_status st = e2e_ctl_delivery(out, cap, &len, sender, &r->req, r->hash, keys, nkeys, &TU_MAP,
		TIME0 + 1);

	TU_CHECK(st == E2E_OK, "e2e_ctl_delivery: %s", e2e_strerror(st));
	return st == E2E_OK ? len : 0;
}

/* ---- Safety ------------------------------------------------------------ */

static void test_safety_request(void)
{
	struct e2e_identity alice;
	struct e2e_ctl req;
	uint8_t out[BUF_CAP], eph[E2E_DH_BYTES];
	size_t len = 0, need;
	const char *reply = "e2e/k/0123456789abcdef0123456789abcdef";
	const char *C = E2E_CTL_TOPIC_DEFAULT;
	struct e2e_ctl_want many[E2E_CTL_WANT_MAX + 1];

	tu_identity(&alice);
	memset(many, 0, sizeof many);
	CU_ASSERT_EQUAL(e2e_ctl_request(NULL, sizeof out, &len, &req, eph, &alice, 1, NULL, 0, reply,
		C, 1), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_request(out, sizeof out, NULL, &req, eph, &alice, 1, NULL, 0, reply,
		C, 1), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_request(out, sizeof out, &len, NULL, eph, &alice, 1, NULL, 0, reply,
		C, 1), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_request(out, sizeof out, &len, &req, NULL, &alice, 1, NULL, 0, reply,
		C, 1), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_request(out, sizeof out, &len, &req, eph, NULL, 1, NULL, 0, reply,
		C, 1), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_request(out, sizeof out, &len, &req, eph, &alice, 1, NULL, 1, reply,
		C, 1), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_request(out, sizeof out, &len, &req, eph, &alice, 1, many,
		E2E_CTL_WANT_MAX + 1, reply, C, 1), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_request(out, sizeof out, &len, &req, eph, &alice, 1, NULL, 0, reply,
		NULL, 1), E2E_ERR_ARG);
	/* Reply topics a sender would refuse are refused when building, too. */
	CU_ASSERT_EQUAL(e2e_ctl_request(out, sizeof out, &len, &req, eph, &alice, 1, NULL, 0,
		"e2e/k/0123456789ABCDEF0123456789abcdef", C, 1), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_request(out, sizeof out, &len, &req, eph, &alice, 1, NULL, 0,
		"e2e/k/0123456789abcdef0123456789abcde", C, 1), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_request(out, sizeof out, &len, &req, eph, &alice, 1, NULL, 0,
		"e2e/x/0123456789abcdef0123456789abcdef", C, 1), E2E_ERR_ARG);
	/* head 14 + keys 96 + nonce 16 + str8 (1 + 38) + n 1 + 2 x 5 + sig 64 */
	need = 14 + 96 + 16 + 1 + strlen(reply) + 1 + 2 * 5 + 2 + 64;
	CU_ASSERT_EQUAL(e2e_ctl_request(out, need - 1, &len, &req, eph, &alice, 1, want_1_2, 2, reply,
		C, 1), E2E_ERR_BUFFER);
	CU_ASSERT_EQUAL(e2e_ctl_request(out, need - 64, &len, &req, eph, &alice, 1, want_1_2, 2, reply,
		C, 1), E2E_ERR_BUFFER);
	CU_ASSERT_EQUAL(e2e_ctl_request(out, need, &len, &req, eph, &alice, 1, want_1_2, 2, reply,
		C, 1), E2E_OK);
	CU_ASSERT_EQUAL(len, need);
	e2e_identity_destroy(&alice);
}

static void test_safety_parse(void)
{
	struct e2e_identity alice;
	struct tu_request r;
	struct e2e_ctl m;
	uint8_t out[BUF_CAP];
	size_t len = 0;

	tu_identity(&alice);
	tu_request(&r, &alice, 7, want_1_2, 2, TIME0);
	CU_ASSERT_EQUAL(e2e_ctl_parse(NULL, r.msg, r.len, E2E_CTL_TOPIC_DEFAULT, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_parse(&m, NULL, r.len, E2E_CTL_TOPIC_DEFAULT, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_parse(&m, r.msg, r.len, NULL, NULL), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_parse(&m, NULL, 0, E2E_CTL_TOPIC_DEFAULT, NULL), E2E_ERR_MALFORMED);
	/* Every length short of head + signature. */
	for (size_t n = 0; n < E2E_CTL_HEAD_BYTES + E2E_CTL_SIG_BYTES; n++)
		TU_CHECK(e2e_ctl_parse(&m, r.msg, n, E2E_CTL_TOPIC_DEFAULT, NULL) == E2E_ERR_MALFORMED,
			"%zu bytes accepted", n);
	CU_ASSERT_EQUAL(e2e_ctl_parse(&m, r.msg, r.len, E2E_CTL_TOPIC_DEFAULT, NULL), E2E_OK);
	/* Only a request carries its own key: anything else needs a signer. */
	CU_ASSERT_EQUAL(e2e_ctl_announce(out, sizeof out, &len, &alice, "e2e/control/00000001", 1, 2,
		TIME0), E2E_OK);
	CU_ASSERT_EQUAL(e2e_ctl_parse(&m, out, len, "e2e/control/00000001", NULL), E2E_ERR_ARG);
	CU_ASSERT(tu_all_zero((const uint8_t *)&m, sizeof m));
	e2e_ctl_wipe(NULL);
	e2e_identity_destroy(&alice);
}

static void test_safety_answers(void)
{
	struct e2e_identity alice, sender;
	struct tu_request r;
	struct e2e_ctl_key keys[E2E_CTL_KEYS_MAX + 1];
	struct e2e_ctl m;
	uint8_t out[BUF_CAP];
	size_t len = 0, need;

	tu_identity(&alice);
	tu_identity(&sender);
	tu_request(&r, &alice, e2e_sender_id(&sender.pub), want_1_2, 2, TIME0);
	for (unsigned i = 0; i <= E2E_CTL_KEYS_MAX; i++)
		keys[i] = make_key(1, i + 1, 0, (uint8_t)i);
	CU_ASSERT_EQUAL(e2e_ctl_delivery(NULL, sizeof out, &len, &sender, &r.req, r.hash, keys, 1, &TU_MAP, 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_delivery(out, sizeof out, NULL, &sender, &r.req, r.hash, keys, 1, &TU_MAP, 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_delivery(out, sizeof out, &len, NULL, &r.req, r.hash, keys, 1, &TU_MAP, 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_delivery(out, sizeof out, &len, &sender, NULL, r.hash, keys, 1, &TU_MAP, 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_delivery(out, sizeof out, &len, &sender, &r.req, NULL, keys, 1, &TU_MAP, 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_delivery(out, sizeof out, &len, &sender, &r.req, r.hash, NULL, 1, &TU_MAP, 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_delivery(out, sizeof out, &len, &sender, &r.req, r.hash, keys,
		E2E_CTL_KEYS_MAX + 1, &TU_MAP, 1), E2E_ERR_ARG);
	/* head 14 + hash 32 + u16 cred + u16 + sealed (48 + 1 + 46 + map:
	 * interval 4, refresh 16, u16 r, rule (0, "#") 4) + sig 64 */
	need = 14 + 32 + 2 + 2 + 48 + 1 + 46 + 4 + 16 + 2 + 4 + 64;
	CU_ASSERT_EQUAL(e2e_ctl_delivery(out, need - 1, &len, &sender, &r.req, r.hash, keys, 1, &TU_MAP, 1),
		E2E_ERR_BUFFER);
	CU_ASSERT_EQUAL(e2e_ctl_delivery(out, need - 64, &len, &sender, &r.req, r.hash, keys, 1, &TU_MAP, 1),
		E2E_ERR_BUFFER);
	CU_ASSERT_EQUAL(e2e_ctl_delivery(out, need, &len, &sender, &r.req, r.hash, keys, 1, &TU_MAP, 1), E2E_OK);
	CU_ASSERT_EQUAL(len, need);
	/* The largest delivery still fits a control message. */
	CU_ASSERT_EQUAL(e2e_ctl_delivery(out, sizeof out, &len, &sender, &r.req, r.hash, keys,
		E2E_CTL_KEYS_MAX, &TU_MAP, 1), E2E_OK);
	CU_ASSERT(len <= E2E_CTL_MSG_MAX);

	CU_ASSERT_EQUAL(e2e_ctl_refusal(NULL, sizeof out, &len, &sender, &r.req, r.hash, 1, 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_refusal(out, sizeof out, NULL, &sender, &r.req, r.hash, 1, 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_refusal(out, sizeof out, &len, NULL, &r.req, r.hash, 1, 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_refusal(out, sizeof out, &len, &sender, NULL, r.hash, 1, 1),
		E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_refusal(out, sizeof out, &len, &sender, &r.req, NULL, 1, 1),
		E2E_ERR_ARG);
	need = 14 + 32 + 1 + 64;
	CU_ASSERT_EQUAL(e2e_ctl_refusal(out, need - 1, &len, &sender, &r.req, r.hash, 1, 1),
		E2E_ERR_BUFFER);
	CU_ASSERT_EQUAL(e2e_ctl_refusal(out, need, &len, &sender, &r.req, r.hash, 1, 1), E2E_OK);
	CU_ASSERT_EQUAL(len, need);

	CU_ASSERT_EQUAL(e2e_ctl_announce(NULL, sizeof out, &len, &sender, "t", 1, 1, 1), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_announce(out, sizeof out, NULL, &sender, "t", 1, 1, 1), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_announce(out, sizeof out, &len, NULL, "t", 1, 1, 1), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_announce(out, sizeof out, &len, &sender, NULL, 1, 1, 1), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_announce(out, sizeof out, &len, &sender, "", 1, 1, 1), E2E_ERR_ARG);
	need = 14 + 5 + 64;
	CU_ASSERT_EQUAL(e2e_ctl_announce(out, need - 1, &len, &sender, "t", 1, 1, 1), E2E_ERR_BUFFER);
	CU_ASSERT_EQUAL(e2e_ctl_announce(out, need, &len, &sender, "t", 1, 1, 1), E2E_OK);
	CU_ASSERT_EQUAL(len, need);

	/* open_delivery: only a parsed delivery, with both halves of the key. */
	CU_ASSERT_EQUAL(e2e_ctl_open_delivery(NULL, r.req.eph_pk, r.eph_sk, TU_PLAIN), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_parse(&m, r.msg, r.len, E2E_CTL_TOPIC_DEFAULT, NULL), E2E_OK);
	CU_ASSERT_EQUAL(e2e_ctl_open_delivery(&m, r.req.eph_pk, r.eph_sk, TU_PLAIN), E2E_ERR_ARG);
	len = deliver(out, sizeof out, &sender, &r, keys, 2);
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(&m, out, len, r.req.reply_topic, &sender.pub), E2E_OK);
	CU_ASSERT_EQUAL(e2e_ctl_open_delivery(&m, NULL, r.eph_sk, TU_PLAIN), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_open_delivery(&m, r.req.eph_pk, NULL, TU_PLAIN), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_open_delivery(&m, r.req.eph_pk, r.eph_sk, TU_PLAIN), E2E_OK);
	CU_ASSERT_EQUAL(m.nkeys, 2);
	e2e_ctl_wipe(&m);
	CU_ASSERT(tu_all_zero((const uint8_t *)&m, sizeof m));
	e2e_identity_destroy(&alice);
	e2e_identity_destroy(&sender);
}

static void test_safety_topics(void)
{
	char t[32], reply[E2E_CTL_REPLY_MAX + 1];

	CU_ASSERT_EQUAL(e2e_ctl_sender_topic(NULL, sizeof t, "e2e/control", 1), E2E_ERR_ARG);
	CU_ASSERT_EQUAL(e2e_ctl_sender_topic(t, sizeof t, NULL, 1), E2E_ERR_ARG);
	/* "e2e/control/" + 8 hex digits + NUL = 21 */
	CU_ASSERT_EQUAL(e2e_ctl_sender_topic(t, 20, "e2e/control", 0xA1B2C3D4U), E2E_ERR_BUFFER);
	CU_ASSERT_EQUAL(e2e_ctl_sender_topic(t, 21, "e2e/control", 0xA1B2C3D4U), E2E_OK);
	CU_ASSERT_STRING_EQUAL(t, "e2e/control/a1b2c3d4");
	CU_ASSERT_EQUAL(e2e_ctl_sender_topic(t, sizeof t, "c", 0), E2E_OK);
	CU_ASSERT_STRING_EQUAL(t, "c/00000000");
	e2e_ctl_reply_topic(reply);
	CU_ASSERT_EQUAL(strlen(reply), 6 + 32);
	CU_ASSERT_EQUAL(strncmp(reply, E2E_CTL_REPLY_PREFIX, 6), 0);
	CU_ASSERT_EQUAL(strspn(reply + 6, "0123456789abcdef"), 32);
	for (uint8_t reason = 1; reason <= 5; reason++)
		CU_ASSERT_STRING_NOT_EQUAL(e2e_refusal_name(reason), e2e_refusal_name(0));
	CU_ASSERT_STRING_EQUAL(e2e_refusal_name(E2E_REFUSE_NOT_ENROLLED), "not enrolled");
	CU_ASSERT_PTR_NOT_NULL(e2e_refusal_name(200));
}

/* e2e_ctl_sign with NULL arguments, in a child: a crash must not end the suite. */
struct sign_misuse {
	int which;
	struct e2e_identity *id;
};

static int sign_misuse_child(void *ctx)
{
	const struct sign_misuse *c = ctx;
	uint8_t out[256] = { E2E_CTL_VERSION, E2E_CTL_ANNOUNCE };
	size_t len = 19;
	enum e2e_status st = E2E_OK;

	switch (c->which) {
	case 0: st = e2e_ctl_sign(NULL, sizeof out, &len, "t", c->id); break;
	case 1: st = e2e_ctl_sign(out, sizeof out, NULL, "t", c->id); break;
	case 2: st = e2e_ctl_sign(out, sizeof out, &len, NULL, c->id); break;
	case 3: st = e2e_ctl_sign(out, sizeof out, &len, "t", NULL); break;
	default: break;
	}
	return 100 + (int)st;
}

static void test_safety_sign(void)
{
	struct e2e_identity id;
	struct sign_misuse c = { 0, &id };
	uint8_t out[E2E_CTL_SUMMARY_MAX + 1], topic[300];
	size_t len;

	tu_identity(&id);
	for (c.which = 0; c.which < 4; c.which++) {
		int status = tu_child_status(sign_misuse_child, &c);

		TU_CHECK(status == 100 + E2E_ERR_ARG,
			"e2e_ctl_sign with NULL argument #%d: %s %d, expected E2E_ERR_ARG", c.which,
			status >= 256 ? "killed by signal" : "status", status >= 256 ? status - 256 :
			status - 100);
	}
	memset(out, 0, sizeof out);
	out[0] = E2E_CTL_VERSION;
	out[1] = E2E_CTL_ANNOUNCE;
	len = 19;
	CU_ASSERT_EQUAL(e2e_ctl_sign(out, 19 + 63, &len, "t", &id), E2E_ERR_BUFFER);
	CU_ASSERT_EQUAL(len, 19);
	CU_ASSERT_EQUAL(e2e_ctl_sign(out, sizeof out, &len, "", &id), E2E_ERR_ARG);
	/* T is 1..256 bytes. */
	memset(topic, 'a', sizeof topic);
	topic[257] = '\0';
	CU_ASSERT_EQUAL(e2e_ctl_sign(out, sizeof out, &len, (const char *)topic, &id), E2E_ERR_ARG);
	topic[256] = '\0';
	CU_ASSERT_EQUAL(e2e_ctl_sign(out, sizeof out, &len, (const char *)topic, &id), E2E_OK);
	CU_ASSERT_EQUAL(len, 19 + 64);
	e2e_identity_destroy(&id);
}

/* ---- Vectors ----------------------------------------------------------- */

/* The vector's signer as a public key (only sign_pk verifies). */
static int vec_signer(const json_t *v, struct e2e_public *pub)
{
	size_t n = 0;

	memset(pub, 0, sizeof *pub);
	return tu_jhex(v, "signer", pub->sign_pk, sizeof pub->sign_pk, &n) || n != 32 ? -1 : 0;
}

static int vec_hex_eq(const json_t *v, const char *key, const uint8_t *p, size_t len)
{
	static uint8_t buf[E2E_CTL_SUMMARY_MAX];
	size_t n = 0;

	return tu_jhex(v, key, buf, sizeof buf, &n) == 0 && n == len && !memcmp(buf, p, len);
}

static int vec_uint_eq(const json_t *v, const char *key, uint64_t want)
{
	uint64_t x = 0;

	return tu_juint(v, key, &x) == 0 && x == want;
}

/* Parse a positive item: E2E_OK with its signer, its head fields, AUTH elsewhere. */
static int parse_positive(const json_t *v, struct e2e_ctl *m, uint8_t type, int carried)
{
	static uint8_t msg[E2E_CTL_SUMMARY_MAX];
	const char *name = tu_jstr(v, "name"), *topic = tu_jstr(v, "topic");
	struct e2e_public signer, other;
	size_t len = 0;
	enum e2e_status st;

	if (!name || !topic || vec_signer(v, &signer) || tu_jhex(v, "message", msg, sizeof msg, &len))
		return -1;
	st = e2e_ctl_parse(m, msg, len, topic, carried ? NULL : &signer);
	TU_CHECK(st == E2E_OK, "%s: %s", name, e2e_strerror(st));
	if (st != E2E_OK)
		return -1;
	TU_CHECK(m->type == type, "%s: type %u", name, m->type);
	TU_CHECK(vec_uint_eq(v, "sender", m->sender), "%s: sender %08x", name, m->sender);
	TU_CHECK(vec_uint_eq(v, "time_ms", m->time_ms), "%s: time", name);
	/* The same bytes fail under another key or on another topic. */
	other = signer;
	other.sign_pk[0] ^= 0x01;
	{
		struct e2e_ctl x;
		char t2[300];

		TU_CHECK(e2e_ctl_parse(&x, msg, len, topic, &other) == E2E_ERR_AUTH,
			"%s: verifies under another key", name);
		snprintf(t2, sizeof t2, "%s/", topic);
		TU_CHECK(e2e_ctl_parse(&x, msg, len, t2, carried ? NULL : &signer) == E2E_ERR_AUTH,
			"%s: verifies on topic %s", name, t2);
	}
	return 0;
}

static void check_request_vector(const json_t *v)
{
	static uint8_t msg[E2E_CTL_MSG_MAX];
	const char *name = tu_jstr(v, "name"), *reply = tu_jstr(v, "reply_topic");
	const json_t *want = json_object_get(v, "want"), *w;
	struct e2e_public signer;
	struct e2e_ctl m, m2;
	uint8_t hash[E2E_CTL_HASH_BYTES];
	size_t len = 0, i;

	if (!name || !reply || parse_positive(v, &m, E2E_CTL_REQUEST, 1) ||
	    tu_jhex(v, "message", msg, sizeof msg, &len) || vec_signer(v, &signer))
		return;
	/* The carried key is the signer's: an explicit signer gives the same. */
	CU_ASSERT_EQUAL(e2e_ctl_parse(&m2, msg, len, tu_jstr(v, "topic"), &signer), E2E_OK);
	TU_CHECK(vec_hex_eq(v, "requester_sign_pk", m.requester.sign_pk, 32), "%s: sign_pk", name);
	TU_CHECK(vec_hex_eq(v, "requester_dh_pk", m.requester.dh_pk, 32), "%s: dh_pk", name);
	TU_CHECK(vec_hex_eq(v, "eph_pk", m.eph_pk, 32), "%s: eph_pk", name);
	TU_CHECK(vec_hex_eq(v, "nonce", m.nonce, 16), "%s: nonce", name);
	TU_CHECK(!strcmp(m.reply_topic, reply), "%s: reply topic %s", name, m.reply_topic);
	TU_CHECK(json_is_array(want) && m.nwant == json_array_size(want), "%s: nwant %u", name,
		m.nwant);
	json_array_foreach(want, i, w) {
		if (i >= m.nwant)
			break;
		TU_CHECK(vec_uint_eq(w, "scope", m.want[i].scope) &&
			vec_uint_eq(w, "epoch", m.want[i].epoch), "%s: want #%zu", name, i);
	}
	e2e_ctl_hash(hash, msg, len);
	TU_CHECK(vec_hex_eq(v, "req_hash", hash, sizeof hash), "%s: req_hash", name);
}

static void check_delivery_vector(const json_t *v)
{
	const char *name = tu_jstr(v, "name");
	const json_t *keys = json_object_get(v, "keys"), *k;
	const json_t *rules = json_object_get(v, "rules");
	struct e2e_ctl_rule_iter it;
	struct e2e_scope_rule rule;
	uint8_t eph_pk[32], eph_sk[32], dh_sk[32], dh_pk[32];
	size_t n1 = 0, n2 = 0, i;
	struct e2e_ctl m;

	if (!name || parse_positive(v, &m, E2E_CTL_DELIVERY, 0) ||
	    tu_jhex(v, "eph_pk", eph_pk, 32, &n1) || tu_jhex(v, "eph_sk", eph_sk, 32, &n2))
		return;
	TU_CHECK(vec_hex_eq(v, "req_hash", m.request_hash, 32), "%s: req_hash", name);
	TU_CHECK(vec_hex_eq(v, "sealed", m.sealed, m.sealed_len), "%s: sealed", name);
	/* Another X25519 key (say the subscriber's long-term one) opens nothing. */
	memcpy(dh_sk, eph_sk, sizeof dh_sk);
	dh_sk[0] ^= 0x40;
	CU_ASSERT_EQUAL(crypto_scalarmult_base(dh_pk, dh_sk), 0);
	CU_ASSERT_EQUAL(e2e_ctl_open_delivery(&m, dh_pk, dh_sk, TU_PLAIN), E2E_ERR_AUTH);
	CU_ASSERT_EQUAL(m.nkeys, 0);
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_open_delivery(&m, eph_pk, eph_sk, TU_PLAIN), E2E_OK);
	TU_CHECK(json_is_array(keys) && m.nkeys == json_array_size(keys), "%s: %u keys", name,
		m.nkeys);
	json_array_foreach(keys, i, k) {
		if (i >= m.nkeys)
			break;
		TU_CHECK(vec_uint_eq(k, "scope", m.keys[i].scope) &&
			vec_uint_eq(k, "epoch", m.keys[i].epoch) &&
			vec_uint_eq(k, "not_after_ms", m.keys[i].not_after_ms) &&
			vec_uint_eq(k, "flags", m.keys[i].flags) &&
			vec_hex_eq(k, "key", m.keys[i].key, 32), "%s: key #%zu", name, i);
	}
	/* The sender's map, rule by rule in its order, and its summary interval. */
	TU_CHECK(vec_uint_eq(v, "summary_interval_ms", m.summary_interval_ms), "%s: interval",
		name);
	TU_CHECK(json_is_array(rules) && m.nrules == json_array_size(rules), "%s: %u rules", name,
		m.nrules);
	e2e_ctl_rules_init(&it, &m);
	json_array_foreach(rules, i, k) {
		const char *flt = tu_jstr(k, "filter");

		if (!e2e_ctl_rule_next(&it, &rule) || !flt)
			break;
		TU_CHECK(vec_uint_eq(k, "scope", rule.scope) && strlen(flt) == rule.filter_len &&
			!memcmp(flt, rule.filter, rule.filter_len), "%s: rule #%zu", name, i);
	}
	e2e_ctl_wipe(&m);
}

static void check_refusal_vector(const json_t *v)
{
	const char *name = tu_jstr(v, "name");
	struct e2e_ctl m;

	if (!name || parse_positive(v, &m, E2E_CTL_REFUSAL, 0))
		return;
	TU_CHECK(vec_hex_eq(v, "req_hash", m.request_hash, 32), "%s: req_hash", name);
	TU_CHECK(vec_uint_eq(v, "reason", m.reason), "%s: reason %u", name, m.reason);
}

/* Deterministic Ed25519: the library re-creates the announcement byte for byte. */
static void check_announce_vector(const json_t *v)
{
	const char *name = tu_jstr(v, "name");
	uint8_t seed[32], out[E2E_CTL_MSG_MAX];
	size_t n = 0, len = 0;
	uint64_t time_ms = 0;
	struct e2e_identity id;
	struct e2e_ctl m;

	if (!name || parse_positive(v, &m, E2E_CTL_ANNOUNCE, 0) ||
	    tu_jhex(v, "seed", seed, sizeof seed, &n) || n != 32 || tu_juint(v, "time_ms", &time_ms))
		return;
	TU_CHECK(vec_uint_eq(v, "scope", m.scope) && vec_uint_eq(v, "epoch", m.epoch),
		"%s: scope %u epoch %u", name, m.scope, m.epoch);
	tu_identity_from_seed(&id, seed, NULL);
	CU_ASSERT_EQUAL(e2e_ctl_announce(out, sizeof out, &len, &id, tu_jstr(v, "topic"), m.scope,
		m.epoch, time_ms), E2E_OK);
	TU_CHECK(vec_hex_eq(v, "message", out, len), "%s: e2e_ctl_announce gives other bytes", name);
	e2e_identity_destroy(&id);
}

/* The entry's "digests" array (hex d_s per seq) equals @p d. */
static int digests_eq(const json_t *e, const uint8_t *d, size_t n)
{
	const json_t *a = json_object_get(e, "digests");

	if (!json_is_array(a) || json_array_size(a) != n)
		return 0;
	for (size_t k = 0; k < n; k++) {
		const char *h = json_string_value(json_array_get(a, k));
		uint8_t b[E2E_SUMMARY_DIGEST_BYTES];

		if (!h || strlen(h) != 2 * sizeof b ||
		    sodium_hex2bin(b, sizeof b, h, strlen(h), NULL, NULL, NULL) != 0 ||
		    memcmp(b, d + k * sizeof b, sizeof b) != 0)
			return 0;
	}
	return 1;
}

static void check_summary_vector(const json_t *v)
{
	const char *name = tu_jstr(v, "name");
	const json_t *entries = json_object_get(v, "entries"), *e;
	struct e2e_summary_iter it;
	struct e2e_summary_entry se;
	struct e2e_ctl m;
	size_t i = 0;

	if (!name || parse_positive(v, &m, E2E_CTL_SUMMARY, 0))
		return;
	TU_CHECK(vec_uint_eq(v, "interval_ms", m.interval_ms) && vec_uint_eq(v, "number", m.number) &&
		vec_uint_eq(v, "part", m.part) && vec_uint_eq(v, "parts", m.parts) &&
		vec_uint_eq(v, "boot", m.boot), "%s: interval/boot/number/part/parts", name);
	TU_CHECK(json_is_array(entries) && m.nentries == json_array_size(entries), "%s: %u entries",
		name, m.nentries);
	e2e_summary_iter_init(&it, &m);
	while (e2e_summary_entry_next(&it, &se)) {
		const char *topic;

		e = json_array_get(entries, i++);
		topic = e ? tu_jstr(e, "topic") : NULL;
		if (!topic)
			break;
		TU_CHECK(vec_uint_eq(e, "run", se.run) && vec_uint_eq(e, "first", se.first) &&
			vec_uint_eq(e, "last", se.last) &&
			digests_eq(e, se.digests, (size_t)se.last - se.first + 1) &&
			se.topic_len == strlen(topic) && !memcmp(se.topic, topic, se.topic_len),
			"%s: entry #%zu", name, i - 1);
	}
	TU_CHECK(i == json_array_size(entries), "%s: iterated %zu entries", name, i);
}

static enum e2e_status expect_status(const char *s)
{
	if (s && !strcmp(s, "MALFORMED"))
		return E2E_ERR_MALFORMED;
	if (s && !strcmp(s, "VERSION"))
		return E2E_ERR_VERSION;
	if (s && !strcmp(s, "AUTH"))
		return E2E_ERR_AUTH;
	TU_CHECK(0, "unknown expected outcome %s", s ? s : "(null)");
	return E2E_OK;
}

/* The named request's hash, from the vector file. */
static int request_hash(json_t *root, const char *name, uint8_t hash[E2E_CTL_HASH_BYTES],
	uint64_t *target, uint8_t eph_pk[32], uint8_t eph_sk[32])
{
	const json_t *r;
	size_t i, n = 0, n1 = 0, n2 = 0;

	json_array_foreach(json_object_get(root, "requests"), i, r) {
		const char *rn = tu_jstr(r, "name");

		if (rn && !strcmp(rn, name))
			return tu_jhex(r, "req_hash", hash, E2E_CTL_HASH_BYTES, &n) || n != 32 ||
				tu_juint(r, "sender", target) || tu_jhex(r, "eph_pk", eph_pk, 32, &n1) ||
				tu_jhex(r, "eph_sk", eph_sk, 32, &n2) ? -1 : 0;
	}
	TU_CHECK(0, "no request named %s", name);
	return -1;
}

static void check_negatives(json_t *root)
{
	static uint8_t msg[E2E_CTL_SUMMARY_MAX];
	const json_t *q;
	size_t i;

	json_array_foreach(tu_jarray(root, "negative"), i, q) {
		const char *name = tu_jstr(q, "name"), *topic = tu_jstr(q, "topic");
		const json_t *js = json_object_get(q, "signer"), *jr = json_object_get(q, "request");
		struct e2e_public signer;
		struct e2e_ctl m;
		size_t len = 0;
		enum e2e_status want, st;

		if (!name || !topic || tu_jhex(q, "message", msg, sizeof msg, &len))
			continue;
		want = expect_status(tu_jstr(q, "expect"));
		if (!json_is_null(js) && vec_signer(q, &signer))
			continue;
		st = e2e_ctl_parse(&m, msg, len, topic, json_is_null(js) ? NULL : &signer);
		if (st != E2E_OK)
			TU_CHECK(tu_all_zero((const uint8_t *)&m, sizeof m), "%s: not wiped", name);
		/* An authentic answer must still answer the outstanding request, to
		 * the sender asked (11.4), and a delivery must open to a valid layout. */
		if (st == E2E_OK && json_is_string(jr)) {
			uint8_t hash[E2E_CTL_HASH_BYTES], eph_pk[32], eph_sk[32];
			uint64_t target = 0;

			if (request_hash(root, json_string_value(jr), hash, &target, eph_pk, eph_sk))
				continue;
			if (memcmp(hash, m.request_hash, sizeof hash) || m.sender != target)
				st = E2E_ERR_AUTH;
			else if (m.type == E2E_CTL_DELIVERY)
				st = e2e_ctl_open_delivery(&m, eph_pk, eph_sk, TU_PLAIN);
			e2e_ctl_wipe(&m);
		}
		TU_CHECK(st == want, "%s: %s, expected %s", name, e2e_strerror(st), e2e_strerror(want));
	}
}

static void test_vectors_positive(void)
{
	tu_each_vector("control.json", "requests", check_request_vector);
	tu_each_vector("control.json", "deliveries", check_delivery_vector);
	tu_each_vector("control.json", "refusals", check_refusal_vector);
	tu_each_vector("control.json", "announces", check_announce_vector);
	tu_each_vector("control.json", "summaries", check_summary_vector);
}

static void test_vectors_negative(void)
{
	json_t *root = tu_vectors("control.json");

	if (root)
		check_negatives(root);
	json_decref(root);
}

/* A refusal built by the library from a vector request equals the vector's refusal. */
static void test_vectors_refusal_bytes(void)
{
	json_t *root = tu_vectors("control.json");
	const json_t *v;
	size_t i;

	json_array_foreach(root ? tu_jarray(root, "refusals") : NULL, i, v) {
		const char *name = tu_jstr(v, "name"), *topic = tu_jstr(v, "topic");
		uint8_t seed[32], hash[32], out[E2E_CTL_MSG_MAX];
		size_t n1 = 0, n2 = 0, len = 0;
		uint64_t reason = 0, time_ms = 0;
		struct e2e_identity id;
		struct e2e_ctl req;

		if (!name || !topic || tu_jhex(v, "seed", seed, 32, &n1) ||
		    tu_jhex(v, "req_hash", hash, 32, &n2) || tu_juint(v, "reason", &reason) ||
		    tu_juint(v, "time_ms", &time_ms))
			continue;
		tu_identity_from_seed(&id, seed, NULL);
		memset(&req, 0, sizeof req);
		snprintf(req.reply_topic, sizeof req.reply_topic, "%s", topic);
		CU_ASSERT_EQUAL(e2e_ctl_refusal(out, sizeof out, &len, &id, &req, hash,
			(enum e2e_refusal)reason, time_ms), E2E_OK);
		TU_CHECK(vec_hex_eq(v, "message", out, len), "%s: e2e_ctl_refusal gives other bytes",
			name);
		e2e_identity_destroy(&id);
	}
	json_decref(root);
}

/* ---- Behaviour --------------------------------------------------------- */

static void test_round_trip(void)
{
	struct e2e_identity alice, sender;
	struct tu_request r;
	struct e2e_ctl m;
	struct e2e_ctl_key keys[3];
	uint8_t out[BUF_CAP];
	size_t len;
	uint32_t sid;

	tu_identity(&alice);
	tu_identity(&sender);
	sid = e2e_sender_id(&sender.pub);
	tu_request(&r, &alice, sid, want_1_2, 2, TIME0);
	/* What was sent is what the sender reads. */
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(&m, r.msg, r.len, E2E_CTL_TOPIC_DEFAULT, NULL), E2E_OK);
	CU_ASSERT_EQUAL(m.type, E2E_CTL_REQUEST);
	CU_ASSERT_EQUAL(m.sender, sid);
	CU_ASSERT_EQUAL(m.time_ms, TIME0);
	CU_ASSERT(!memcmp(&m.requester, &alice.pub, sizeof alice.pub));
	CU_ASSERT(!memcmp(m.eph_pk, r.req.eph_pk, 32));
	CU_ASSERT(!memcmp(m.nonce, r.req.nonce, 16));
	CU_ASSERT_STRING_EQUAL(m.reply_topic, r.req.reply_topic);
	CU_ASSERT_EQUAL(m.nwant, 2);
	CU_ASSERT(m.want[0].scope == 1 && m.want[0].epoch == 0);
	CU_ASSERT(m.want[1].scope == 2 && m.want[1].epoch == 7);
	/* The ephemeral pair matches, and is not the long-term one. */
	{
		uint8_t pk[32];

		CU_ASSERT_EQUAL(crypto_scalarmult_base(pk, r.eph_sk), 0);
		CU_ASSERT(!memcmp(pk, r.req.eph_pk, 32));
		CU_ASSERT(memcmp(pk, alice.pub.dh_pk, 32) != 0);
	}
	/* The sender answers from the parsed request. */
	keys[0] = make_key(1, 4, 0, 0x10);
	keys[1] = make_key(1, 3, TIME0 + 86400000ULL, 0x20);
	keys[2] = make_key(2, 7, 0, 0x30);
	{
		uint8_t hash[32];

		e2e_ctl_hash(hash, r.msg, r.len);
		CU_ASSERT_EQUAL(e2e_ctl_delivery(out, sizeof out, &len, &sender, &m, hash, keys, 3, &TU_MAP,
			TIME0 + 2), E2E_OK);
	}
	CU_ASSERT_EQUAL_FATAL(tu_answer(&m, &r, out, len, r.req.reply_topic, &sender.pub),
		E2E_CTL_DELIVERY);
	CU_ASSERT_EQUAL(m.time_ms, TIME0 + 2);
	CU_ASSERT_EQUAL_FATAL(m.nkeys, 3);
	for (unsigned i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(m.keys[i].scope, keys[i].scope);
		CU_ASSERT_EQUAL(m.keys[i].epoch, keys[i].epoch);
		CU_ASSERT_EQUAL(m.keys[i].not_after_ms, keys[i].not_after_ms);
		CU_ASSERT(!memcmp(m.keys[i].key, keys[i].key, 32));
	}
	/* The delivery is bound to the reply topic and to the sender's key. */
	{
		struct e2e_ctl x;
		char other[E2E_CTL_REPLY_MAX + 1];

		e2e_ctl_reply_topic(other);
		CU_ASSERT_EQUAL(e2e_ctl_parse(&x, out, len, other, &sender.pub), E2E_ERR_AUTH);
		CU_ASSERT_EQUAL(e2e_ctl_parse(&x, out, len, r.req.reply_topic, &alice.pub), E2E_ERR_AUTH);
		/* Flip any bit of it: refused (AUTH, or MALFORMED for a length field). */
		for (size_t i = 0; i < len; i++) {
			enum e2e_status st;

			out[i] ^= 0x10;
			st = e2e_ctl_parse(&x, out, len, r.req.reply_topic, &sender.pub);
			out[i] ^= 0x10;
			TU_CHECK(st != E2E_OK, "delivery with byte %zu changed accepted", i);
		}
	}
	e2e_ctl_wipe(&m);
	e2e_identity_destroy(&alice);
	e2e_identity_destroy(&sender);
}

static void test_forward_secrecy(void)
{
	struct e2e_identity alice, sender;
	struct tu_request r, r2;
	struct e2e_ctl m;
	struct e2e_ctl_key key = make_key(5, 9, 0, 0x77);
	uint8_t out[BUF_CAP];
	size_t len;

	tu_identity(&alice);
	tu_identity(&sender);
	tu_request(&r, &alice, e2e_sender_id(&sender.pub), NULL, 0, TIME0);
	len = deliver(out, sizeof out, &sender, &r, &key, 1);
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(&m, out, len, r.req.reply_topic, &sender.pub), E2E_OK);
	/* Alice's long-term X25519 key, later compromised, opens nothing. */
	CU_ASSERT_EQUAL(e2e_ctl_open_delivery(&m, alice.pub.dh_pk, alice.dh_sk, TU_PLAIN), E2E_ERR_AUTH);
	CU_ASSERT_EQUAL(m.nkeys, 0);
	CU_ASSERT(tu_all_zero((const uint8_t *)m.keys, sizeof m.keys));
	/* Nor does the ephemeral key of another request of hers. */
	tu_request(&r2, &alice, e2e_sender_id(&sender.pub), NULL, 0, TIME0);
	CU_ASSERT(memcmp(r2.req.eph_pk, r.req.eph_pk, 32) != 0);
	CU_ASSERT_STRING_NOT_EQUAL(r2.req.reply_topic, r.req.reply_topic);
	CU_ASSERT(memcmp(r2.req.nonce, r.req.nonce, 16) != 0);
	CU_ASSERT_EQUAL(e2e_ctl_open_delivery(&m, r2.req.eph_pk, r2.eph_sk, TU_PLAIN), E2E_ERR_AUTH);
	/* The right public key with a wrong secret fails as well. */
	CU_ASSERT_EQUAL(e2e_ctl_open_delivery(&m, r.req.eph_pk, r2.eph_sk, TU_PLAIN), E2E_ERR_AUTH);
	/* Only this request's ephemeral key does. */
	CU_ASSERT_EQUAL(e2e_ctl_open_delivery(&m, r.req.eph_pk, r.eph_sk, TU_PLAIN), E2E_OK);
	CU_ASSERT_EQUAL(m.nkeys, 1);
	CU_ASSERT(m.keys[0].scope == 5 && m.keys[0].epoch == 9 && !memcmp(m.keys[0].key, key.key, 32));
	/* The key is not in the message in clear. */
	CU_ASSERT(memmem(out, len, key.key, sizeof key.key) == NULL);
	e2e_ctl_wipe(&m);
	e2e_identity_destroy(&alice);
	e2e_identity_destroy(&sender);
}

/* A sealed plaintext whose count byte disagrees with its records. */
static void test_delivery_plaintext_layout(void)
{
	struct e2e_identity alice, sender;
	struct tu_request r;
	struct e2e_ctl m;
	uint8_t out[BUF_CAP], plain[1 + 2 * 46 + 4 + 16 + 2 + 4];
	size_t len = 0, sealed_len;
	uint32_t sid;
	static const uint8_t map[] = { 0, 0, 0, 0, NO_REFRESH, 0, 1, 0, 0, 1, '#' };

	tu_identity(&alice);
	tu_identity(&sender);
	sid = e2e_sender_id(&sender.pub);
	tu_request(&r, &alice, sid, NULL, 0, TIME0);
	memset(plain, 0x5a, sizeof plain);
	plain[1 + 13] = plain[1 + 46 + 13] = 0;   /* flags */
	memcpy(plain + 1 + 2 * 46, map, sizeof map);
	for (uint8_t k = 0; k < 4; k++) {
		plain[0] = k;   /* 2 records follow: only k = 2 is well formed */
		sealed_len = crypto_box_SEALBYTES + sizeof plain;
		out[0] = E2E_CTL_VERSION;
		out[1] = E2E_CTL_DELIVERY;
		out[2] = (uint8_t)(sid >> 24);
		out[3] = (uint8_t)(sid >> 16);
		out[4] = (uint8_t)(sid >> 8);
		out[5] = (uint8_t)sid;
		memset(out + 6, 0, 8);
		memcpy(out + 14, r.hash, 32);
		out[46] = out[47] = 0;   /* no credential */
		out[48] = (uint8_t)(sealed_len >> 8);
		out[49] = (uint8_t)sealed_len;
		CU_ASSERT_EQUAL_FATAL(crypto_box_seal(out + 50, plain, sizeof plain, r.req.eph_pk), 0);
		len = 50 + sealed_len;
		CU_ASSERT_EQUAL_FATAL(e2e_ctl_sign(out, sizeof out, &len, r.req.reply_topic, &sender),
			E2E_OK);
		CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(&m, out, len, r.req.reply_topic, &sender.pub),
			E2E_OK);
		TU_CHECK(e2e_ctl_open_delivery(&m, r.req.eph_pk, r.eph_sk, TU_PLAIN) ==
			(k == 2 ? E2E_OK : E2E_ERR_MALFORMED), "count byte %u", k);
		TU_CHECK(m.nkeys == (k == 2 ? 2 : 0), "count byte %u: %u keys", k, m.nkeys);
	}
	e2e_identity_destroy(&alice);
	e2e_identity_destroy(&sender);
}

static void test_refusal_and_announce(void)
{
	struct e2e_identity alice, sender;
	struct tu_request r;
	struct e2e_ctl m;
	uint8_t out[BUF_CAP];
	size_t len = 0;
	char topic[64];
	uint32_t sid;

	tu_identity(&alice);
	tu_identity(&sender);
	sid = e2e_sender_id(&sender.pub);
	tu_request(&r, &alice, sid, want_1_2, 2, TIME0);
	for (uint8_t reason = E2E_REFUSE_NOT_ENROLLED; reason <= E2E_REFUSE_STALE; reason++) {
		CU_ASSERT_EQUAL(e2e_ctl_refusal(out, sizeof out, &len, &sender, &r.req, r.hash,
			(enum e2e_refusal)reason, TIME0 + reason), E2E_OK);
		CU_ASSERT_EQUAL(tu_answer(&m, &r, out, len, r.req.reply_topic, &sender.pub),
			E2E_CTL_REFUSAL);
		CU_ASSERT_EQUAL(m.reason, reason);
		CU_ASSERT_EQUAL(m.time_ms, TIME0 + reason);
	}
	CU_ASSERT_EQUAL(e2e_ctl_sender_topic(topic, sizeof topic, "site/ctl", sid), E2E_OK);
	CU_ASSERT_EQUAL(e2e_ctl_announce(out, sizeof out, &len, &sender, topic, 200, 0xFFFFFFFFU,
		TIME0), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(&m, out, len, topic, &sender.pub), E2E_OK);
	CU_ASSERT_EQUAL(m.type, E2E_CTL_ANNOUNCE);
	CU_ASSERT_EQUAL(m.sender, sid);
	CU_ASSERT_EQUAL(m.scope, 200);
	CU_ASSERT_EQUAL(m.epoch, 0xFFFFFFFFU);
	/* An announcement of one sender replayed under another's topic. */
	CU_ASSERT_EQUAL(e2e_ctl_sender_topic(topic, sizeof topic, "site/ctl", sid ^ 1), E2E_OK);
	CU_ASSERT_EQUAL(e2e_ctl_parse(&m, out, len, topic, &sender.pub), E2E_ERR_AUTH);
	e2e_identity_destroy(&alice);
	e2e_identity_destroy(&sender);
}

/* Write a SUMMARY head and body by hand: @p n entries with topics of @p tl bytes. */
static size_t summary_by_hand(uint8_t *out, uint8_t type, uint32_t sid, uint16_t n, size_t tl)
{
	size_t off = 0;

	out[off++] = E2E_CTL_VERSION;
	out[off++] = type;
	for (int i = 3; i >= 0; i--)
		out[off++] = (uint8_t)(sid >> (8 * i));
	memset(out + off, 0, 8);
	off += 8;
	/* 10 s, boot 0x0b007001, #1, part 0/1 */
	memcpy(out + off, "\x00\x00\x27\x10\x0b\x00\x70\x01\x00\x00\x00\x01\x00\x01", 14);
	off += 14;
	out[off++] = (uint8_t)(n >> 8);
	out[off++] = (uint8_t)n;
	for (uint16_t i = 0; i < n; i++) {
		memcpy(out + off, "\x00\x00\x00\x09", 4);           /* run */
		off += 4;
		out[off++] = (uint8_t)(tl >> 8);
		out[off++] = (uint8_t)tl;
		memset(out + off, 'a' + i % 26, tl);
		off += tl;
		memcpy(out + off, "\x00\x00\x00\x01\x00\x00\x00\x03", 8); /* seqs 1..3 */
		off += 8;
		memset(out + off, i, 3 * E2E_SUMMARY_DIGEST_BYTES);   /* d_1..d_3 */
		off += 3 * E2E_SUMMARY_DIGEST_BYTES;
	}
	out[off++] = 0;   /* no history (SPEC 11.6) */
	return off;
}

static void test_sign_large_summary(void)
{
	static uint8_t out[E2E_CTL_SUMMARY_MAX + 4096];
	struct e2e_identity sender;
	struct e2e_summary_iter it;
	struct e2e_summary_entry e;
	struct e2e_ctl m;
	size_t len;
	uint32_t sid;
	unsigned count = 0;

	tu_identity(&sender);
	sid = e2e_sender_id(&sender.pub);
	/* 3 entries of 1030 bytes: about 3.1 KiB, beyond every other message's limit. */
	len = summary_by_hand(out, E2E_CTL_SUMMARY, sid, 3, 1000);
	CU_ASSERT(len + E2E_CTL_SIG_BYTES > E2E_CTL_MSG_MAX);
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_sign(out, sizeof out, &len, "e2e/control/x", &sender), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(&m, out, len, "e2e/control/x", &sender.pub), E2E_OK);
	CU_ASSERT_EQUAL(m.type, E2E_CTL_SUMMARY);
	CU_ASSERT_EQUAL(m.interval_ms, 10000);
	CU_ASSERT_EQUAL(m.number, 1);
	CU_ASSERT_EQUAL(m.boot, 0x0b007001);
	CU_ASSERT_EQUAL(m.nentries, 3);
	e2e_summary_iter_init(&it, &m);
	while (e2e_summary_entry_next(&it, &e)) {
		CU_ASSERT(e.run == 9 && e.first == 1 && e.last == 3 && e.topic_len == 1000);
		CU_ASSERT(e.topic[0] == 'a' + (int)count && e.digests[0] == count &&
			e.digests[3 * E2E_SUMMARY_DIGEST_BYTES - 1] == count);
		count++;
	}
	CU_ASSERT_EQUAL(count, 3);
	CU_ASSERT_EQUAL(e2e_ctl_parse(&m, out, len, "e2e/control/y", &sender.pub), E2E_ERR_AUTH);
	/* The same size as an announcement: over 2048, refused to sign and to parse. */
	len = summary_by_hand(out, E2E_CTL_ANNOUNCE, sid, 3, 1000);
	CU_ASSERT_EQUAL(e2e_ctl_sign(out, sizeof out, &len, "e2e/control/x", &sender), E2E_ERR_BUFFER);
	/* A summary up to exactly 65535 bytes, and not one more. */
	len = summary_by_hand(out, E2E_CTL_SUMMARY, sid, 1, 65535 - 64 - 14 - 16 - 39);
	CU_ASSERT_EQUAL(len + 64, 65535);
	CU_ASSERT_EQUAL(e2e_ctl_sign(out, sizeof out, &len, "t", &sender), E2E_OK);
	CU_ASSERT_EQUAL(e2e_ctl_parse(&m, out, len, "t", &sender.pub), E2E_OK);
	len = summary_by_hand(out, E2E_CTL_SUMMARY, sid, 1, 65535 - 64 - 14 - 16 - 38);
	CU_ASSERT_EQUAL(e2e_ctl_sign(out, sizeof out, &len, "t", &sender), E2E_ERR_BUFFER);
	e2e_identity_destroy(&sender);
}

/* ---- Registration ------------------------------------------------------ */

static const struct tu_test safety_tests[] = {
	{ "Safety: e2e_ctl_request NULL arguments, bad reply topic, short buffer", test_safety_request },
	{ "Safety: e2e_ctl_parse NULL arguments and short input", test_safety_parse },
	{ "Safety: delivery, refusal, announce, open NULL and short buffers", test_safety_answers },
	{ "Safety: sender topic, reply topic, refusal names", test_safety_topics },
	{ "Safety: e2e_ctl_sign NULL arguments, short buffer, topic length", test_safety_sign },
	{ NULL, NULL },
};

/* A signed delivery whose sealed plaintext is exactly @p plain. */
static size_t deliver_plain(uint8_t *out, size_t cap, const struct e2e_identity *sender,
	const struct tu_request *r, const uint8_t *plain, size_t plen)
{
	uint32_t sid = e2e_sender_id(&sender->pub);
	size_t sealed_len = crypto_box_SEALBYTES + plen, len;

	CU_ASSERT_FATAL(50 + sealed_len + 64 <= cap);
	memset(out, 0, 14);
	out[0] = E2E_CTL_VERSION;
	out[1] = E2E_CTL_DELIVERY;
	out[2] = (uint8_t)(sid >> 24);
	out[3] = (uint8_t)(sid >> 16);
	out[4] = (uint8_t)(sid >> 8);
	out[5] = (uint8_t)sid;
	memcpy(out + 14, r->hash, 32);
	out[46] = out[47] = 0;   /* no credential (SPEC 13.4) */
	out[48] = (uint8_t)(sealed_len >> 8);
	out[49] = (uint8_t)sealed_len;
	CU_ASSERT_EQUAL_FATAL(crypto_box_seal(out + 50, plain, plen, r->req.eph_pk), 0);
	len = 50 + sealed_len;
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_sign(out, cap, &len, r->req.reply_topic, sender), E2E_OK);
	return len;
}

/* The map of a delivery (SPEC 11.2): interval and rules in order, every
 * filter a valid MQTT filter, at least one rule, consumed exactly. */
static void test_delivery_map(void)
{
	struct e2e_identity alice, sender;
	struct tu_request r;
	struct e2e_ctl m;
	struct e2e_ctl_rule_iter it;
	struct e2e_scope_rule rule;
	static uint8_t out[E2E_CTL_DELIVERY_MAX];
	static struct e2e_scope_rule big[600];
	static char filters[600][16];
	struct e2e_ctl_map map = { 4321, 600, big, 0, 0 };
	size_t len;
	uint32_t n = 0;
	/* k = 0 || interval 1234 || refresh (0, 0) || r = 2 || (3, "a/#") || (0, "#") */
	static const uint8_t good[] = { 0, 0, 0, 0x04, 0xd2, NO_REFRESH, 0, 2, 3, 0, 3, 'a', '/', '#',
		0, 0, 1, '#' };
	struct { const char *name; uint8_t p[48]; size_t len; enum e2e_status want; } bad[] = {
		{ "no rule", { 0, 0, 0, 0, 1, NO_REFRESH, 0, 0, 0, 0, 0, 0 }, 27, E2E_ERR_MALFORMED },
		{ "invalid filter a/#/b", { 0, 0, 0, 0, 1, NO_REFRESH, 0, 1, 3, 0, 5, 'a', '/', '#', '/', 'b' }, 31, E2E_ERR_MALFORMED },
		{ "invalid filter a+", { 0, 0, 0, 0, 1, NO_REFRESH, 0, 1, 3, 0, 2, 'a', '+' }, 28,
			E2E_ERR_MALFORMED },
		{ "empty filter", { 0, 0, 0, 0, 1, NO_REFRESH, 0, 1, 3, 0, 0, 0, 0 }, 28, E2E_ERR_MALFORMED },
		{ "NUL in filter", { 0, 0, 0, 0, 1, NO_REFRESH, 0, 1, 3, 0, 2, 'a', 0 }, 28, E2E_ERR_MALFORMED },
		{ "filter past the end", { 0, 0, 0, 0, 1, NO_REFRESH, 0, 1, 3, 0, 3, 'a', 'b' }, 28,
			E2E_ERR_MALFORMED },
		{ "count above rules", { 0, 0, 0, 0, 1, NO_REFRESH, 0, 2, 3, 0, 1, '#' }, 27, E2E_ERR_MALFORMED },
		{ "trailing byte", { 0, 0, 0, 0, 1, NO_REFRESH, 0, 1, 3, 0, 1, '#', 0 }, 28, E2E_ERR_MALFORMED },
	};

	tu_identity(&alice);
	tu_identity(&sender);
	tu_request(&r, &alice, e2e_sender_id(&sender.pub), NULL, 0, TIME0);
	len = deliver_plain(out, sizeof out, &sender, &r, good, sizeof good);
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(&m, out, len, r.req.reply_topic, &sender.pub), E2E_OK);
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_open_delivery(&m, r.req.eph_pk, r.eph_sk, TU_PLAIN), E2E_OK);
	CU_ASSERT_EQUAL(m.nkeys, 0);
	CU_ASSERT_EQUAL(m.summary_interval_ms, 1234);
	CU_ASSERT_EQUAL(m.nrules, 2);
	e2e_ctl_rules_init(&it, &m);
	CU_ASSERT(e2e_ctl_rule_next(&it, &rule) && rule.scope == 3 && rule.filter_len == 3 &&
		!memcmp(rule.filter, "a/#", 3));
	CU_ASSERT(e2e_ctl_rule_next(&it, &rule) && rule.scope == 0 && rule.filter_len == 1 &&
		rule.filter[0] == '#');
	CU_ASSERT_FALSE(e2e_ctl_rule_next(&it, &rule));
	/* Too small a plain buffer: nothing decrypted. */
	CU_ASSERT_EQUAL(e2e_ctl_open_delivery(&m, r.req.eph_pk, r.eph_sk, tu_plain, sizeof good - 1),
		E2E_ERR_BUFFER);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum e2e_status st;

		len = deliver_plain(out, sizeof out, &sender, &r, bad[i].p, bad[i].len);
		st = e2e_ctl_parse(&m, out, len, r.req.reply_topic, &sender.pub);
		TU_CHECK(st == E2E_OK, "%s: parse %s", bad[i].name, e2e_strerror(st));
		st = e2e_ctl_open_delivery(&m, r.req.eph_pk, r.eph_sk, TU_PLAIN);
		TU_CHECK(st == bad[i].want, "%s: open gives %s", bad[i].name, e2e_strerror(st));
		CU_ASSERT_EQUAL(m.nrules, 0);
	}
	/* Without the interval and map the sealed box is too short for a delivery. */
	{
		static const uint8_t keys_only[] = { 0 };

		len = deliver_plain(out, sizeof out, &sender, &r, keys_only, sizeof keys_only);
		CU_ASSERT_EQUAL(e2e_ctl_parse(&m, out, len, r.req.reply_topic, &sender.pub),
			E2E_ERR_MALFORMED);
	}
	/* A key flag other than bits 0 and 1: MALFORMED (SPEC 11.2). */
	{
		struct e2e_ctl_key k = make_key(1, 1, 0, 9);

		k.flags = 0x04;
		len = deliver(out, sizeof out, &sender, &r, &k, 1);
		CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(&m, out, len, r.req.reply_topic, &sender.pub),
			E2E_OK);
		CU_ASSERT_EQUAL(e2e_ctl_open_delivery(&m, r.req.eph_pk, r.eph_sk, TU_PLAIN),
			E2E_ERR_MALFORMED);
	}
	/* A large map: the delivery outgrows 2048 bytes and still round-trips. */
	for (unsigned i = 0; i < 600; i++) {
		int fl = snprintf(filters[i], sizeof filters[i], "site%u/+/x", i);

		big[i] = (struct e2e_scope_rule){ (uint8_t)(i % 7), filters[i], (size_t)fl };
	}
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_delivery(out, sizeof out, &len, &sender, &r.req, r.hash, NULL,
		0, &map, TIME0), E2E_OK);
	CU_ASSERT(len > E2E_CTL_MSG_MAX && len <= E2E_CTL_DELIVERY_MAX);
	CU_ASSERT_EQUAL_FATAL(tu_answer(&m, &r, out, len, r.req.reply_topic, &sender.pub),
		E2E_CTL_DELIVERY);
	CU_ASSERT_EQUAL(m.summary_interval_ms, 4321);
	e2e_ctl_rules_init(&it, &m);
	while (e2e_ctl_rule_next(&it, &rule)) {
		TU_CHECK(n < 600 && rule.scope == big[n].scope && rule.filter_len == big[n].filter_len &&
			!memcmp(rule.filter, big[n].filter, rule.filter_len), "rule %u", n);
		n++;
	}
	CU_ASSERT_EQUAL(n, 600);
	/* Too big for one delivery: E2E_ERR_BUFFER, nothing half-built is sent. */
	{
		static struct e2e_scope_rule huge[E2E_CTL_PLAIN_MAX / 4];
		struct e2e_ctl_map hm = { 0, E2E_CTL_PLAIN_MAX / 4, huge, 0, 0 };

		for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++)
			huge[i] = (struct e2e_scope_rule){ 1, "#", 1 };
		CU_ASSERT(e2e_ctl_map_size(&hm) > E2E_CTL_MAP_MAX);
		CU_ASSERT_EQUAL(e2e_ctl_delivery(out, sizeof out, &len, &sender, &r.req, r.hash,
			NULL, 0, &hm, TIME0), E2E_ERR_BUFFER);
	}
	e2e_ctl_wipe(&m);
	e2e_identity_wipe(&alice);
	e2e_identity_wipe(&sender);
}

static const struct tu_test vector_tests[] = {
	{ "Vectors: control.json positives parse to their fields", test_vectors_positive },
	{ "Vectors: control.json negatives give their status", test_vectors_negative },
	{ "Vectors: e2e_ctl_refusal reproduces the refusals", test_vectors_refusal_bytes },
	{ NULL, NULL },
};

static const struct tu_test control_tests[] = {
	{ "Round trip: request -> delivery -> open", test_round_trip },
	{ "Delivery: forward secrecy (only the ephemeral key opens)", test_forward_secrecy },
	{ "Delivery: key count must match the sealed records", test_delivery_plaintext_layout },
	{ "Delivery: the sender's map round-trips; malformed maps are refused", test_delivery_map },
	{ "Refusal reasons and announcements round trip", test_refusal_and_announce },
	{ "e2e_ctl_sign: summaries beyond 2048 bytes", test_sign_large_summary },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = {
		{ "control safety", safety_tests },
		{ "control vectors", vector_tests },
		{ "control", control_tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
