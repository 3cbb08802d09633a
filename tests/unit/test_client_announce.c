/*
 * The subscriber client's key requests at a rotation (SPEC 11.5), without a
 * broker: a client that never connects, fed signed announcements and a
 * signed delivery through its internal entry points (e2e_client_on_announce,
 * e2e_client_on_reply). A sender rotating two scopes announces each; the
 * one answer to the request the first announcement caused carries both new
 * keys, so one request per rotation is enough. An announcement the answer
 * does not cover (a later rotation) is still asked for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client_impl.h"
#include "e2e/enroll.h"
#include "testcu.h"

struct afx {
	char *dir;
	char p_id[4096], p_trust[4096], topic[64];
	struct e2e_identity sender;
	uint32_t sid;
	struct e2e_client_config cfg;
	struct e2e_client *c;
	struct trusted *t;
	uint64_t now;
};

static void afx_init(struct afx *f)
{
	struct e2e_scope_rule rules[2] = { { 1, "a/#", 1 }, { 2, "b/#", 1 } };
	uint8_t key[E2E_KEY_BYTES];
	struct e2e_keyid id;

	memset(f, 0, sizeof *f);
	f->dir = tu_tmpdir();
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->dir);
	CU_ASSERT_EQUAL_FATAL(tu_subscriber_files(f->dir, f->p_id, sizeof f->p_id, f->p_trust,
		sizeof f->p_trust, &f->sender), 0);
	f->sid = e2e_sender_id(&f->sender.pub);
	f->cfg.conn.host = "127.0.0.1";
	f->cfg.conn.port = 1;
	f->cfg.identity_file = f->p_id;
	f->cfg.trust_file = f->p_trust;
	CU_ASSERT_EQUAL_FATAL(e2e_client_create(&f->c, &f->cfg), E2E_OK);
	/* Keys of epoch 1 for both scopes, as a first delivery installed them. */
	CU_ASSERT_EQUAL_FATAL(e2e_keyring_set_profile(f->c->kr, f->sid, rules, 2, 1000), E2E_OK);
	for (uint8_t s = 1; s <= 2; s++) {
		tu_key(key, (uint8_t)(0x10 + s));
		id = (struct e2e_keyid){ f->sid, s, 1 };
		CU_ASSERT_EQUAL_FATAL(e2e_keyring_add(f->c->kr, &id, key, 0), E2E_OK);
	}
	f->t = e2e_client_trusted(f->c, f->sid);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->t);
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_sender_topic(f->topic, sizeof f->topic, f->c->control_topic,
		f->sid), E2E_OK);
	f->now = e2e_now_ms();
}

static void afx_free(struct afx *f)
{
	e2e_client_destroy(f->c);
	e2e_identity_wipe(&f->sender);
	tu_rmtree(f->dir);
	free(f->dir);
}

static void announce_at(struct afx *f, uint8_t scope, uint32_t epoch, uint64_t time_ms)
{
	uint8_t msg[E2E_CTL_MSG_MAX];
	size_t len = 0;

	CU_ASSERT_EQUAL_FATAL(e2e_ctl_announce(msg, sizeof msg, &len, &f->sender, f->topic, scope,
		epoch, time_ms), E2E_OK);
	e2e_client_on_announce(f->c, f->topic, msg, len);
}

static void announce(struct afx *f, uint8_t scope, uint32_t epoch)
{
	announce_at(f, scope, epoch, ++f->now);
}

static uint64_t requests(struct afx *f)
{
	return f->c->st.key_requests;
}

/* The sender answers the newest queued request with keys of @p epoch for
 * both scopes. */
static void answer(struct afx *f, uint32_t epoch)
{
	static uint8_t out[E2E_CTL_DELIVERY_MAX];
	const struct outmsg *o;
	struct e2e_scope_rule rules[2] = { { 1, "a/#", 1 }, { 2, "b/#", 1 } };
	struct e2e_ctl_map map = { 1000, 2, rules, 0, 0 };
	struct e2e_ctl_key keys[2];
	uint8_t hash[E2E_CTL_HASH_BYTES];
	struct e2e_ctl req;
	size_t len = 0;

	CU_ASSERT_FATAL(f->c->out_count > 0);
	o = &f->c->outbox[(f->c->out_head + f->c->out_count - 1) % OUTBOX_MAX];
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(&req, o->msg, o->len, f->c->control_topic, NULL),
		E2E_OK);
	e2e_ctl_hash(hash, o->msg, o->len);
	memset(keys, 0, sizeof keys);
	for (uint8_t s = 1; s <= 2; s++) {
		keys[s - 1].scope = s;
		keys[s - 1].epoch = epoch;
		tu_key(keys[s - 1].key, (uint8_t)(0x20 + s + epoch));
	}
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_delivery(out, sizeof out, &len, &f->sender, &req, hash, keys,
		2, &map, ++f->now), E2E_OK);
	e2e_ctl_wipe(&req);
	f->c->out_head = f->c->out_count = 0;   /* "published" */
	e2e_client_on_reply(f->c, out, len);
}

static int holds(struct afx *f, uint8_t scope, uint32_t epoch)
{
	struct e2e_keyid id = { f->sid, scope, epoch };

	return e2e_keyring_find(f->c->kr, &id, 0) != NULL;
}

static void test_one_request_per_rotation(void)
{
	struct afx f;

	afx_init(&f);
	/* Both scopes rotate to epoch 2: two announcements, one request. */
	announce(&f, 1, 2);
	CU_ASSERT_EQUAL(requests(&f), 1);
	announce(&f, 2, 2);
	CU_ASSERT_EQUAL(requests(&f), 1);
	answer(&f, 2);
	CU_ASSERT(holds(&f, 1, 2) && holds(&f, 2, 2));
	CU_ASSERT_EQUAL(requests(&f), 1);   /* not asked again: the answer had both */
	CU_ASSERT_EQUAL(f.c->out_count, 0);
	CU_ASSERT_FALSE(f.t->pending);
	afx_free(&f);
}

static void test_uncovered_announcement_asked(void)
{
	struct afx f;

	afx_init(&f);
	/* Epoch 3 of scope 2 is announced while the request for epoch 2 is out,
	 * and the answer brings epoch 2 only: epoch 3 is asked for. */
	announce(&f, 1, 2);
	announce(&f, 2, 3);
	CU_ASSERT_EQUAL(requests(&f), 1);
	answer(&f, 2);
	CU_ASSERT_FALSE(holds(&f, 2, 3));
	CU_ASSERT_EQUAL(requests(&f), 2);
	CU_ASSERT_EQUAL(f.c->out_count, 1);
	CU_ASSERT_TRUE(f.t->pending);
	afx_free(&f);
}

static void test_same_millisecond(void)
{
	struct afx f;

	afx_init(&f);
	/* Two scopes announced in the same millisecond: the second is not a
	 * replay. Its epoch (3) is not in the answer (epoch 2): asked for. */
	announce_at(&f, 1, 2, f.now + 1);
	announce_at(&f, 2, 3, f.now + 1);
	announce_at(&f, 2, 3, f.now + 1);   /* an exact replay: noted once */
	CU_ASSERT_EQUAL(f.t->nwant, 1);
	CU_ASSERT_EQUAL(requests(&f), 1);
	f.now++;
	answer(&f, 2);
	CU_ASSERT_EQUAL(requests(&f), 2);
	/* An older announcement changes nothing. */
	announce_at(&f, 1, 9, f.now - 10);
	CU_ASSERT_EQUAL(f.t->nwant, 0);
	CU_ASSERT_EQUAL(requests(&f), 2);
	afx_free(&f);
}

int main(void)
{
	static const struct tu_test tests[] = {
		{ "Two scopes rotate: one key request, both keys (SPEC 11.5)",
			test_one_request_per_rotation },
		{ "An announcement the answer lacks is asked for again",
			test_uncovered_announcement_asked },
		{ "Announcements of the same millisecond are not replays",
			test_same_millisecond },
		{ NULL, NULL },
	};
	static const struct tu_suite suites[] = {
		{ "client announcements", tests },
		{ NULL, NULL },
	};

	return tu_main(suites);
}
