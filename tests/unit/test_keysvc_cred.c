/*
 * Key service and credentials (SPEC 13.5): a requester nobody enrolled is
 * answered on a valid subscriber credential of a listed authority, with the
 * scopes it grants; every other credential (other authority, expired, other
 * keys, sender kind, bad signature, revoked) is refused, and the sender's
 * own credential rides in every delivery.
 */
#include <string.h>

#include <sodium.h>

#include "testcu.h"

#define NOW 1700000000000ULL

static struct e2e_identity sender, auth, rogue, sub, other;
static struct e2e_authorities au;
static uint8_t sender_cred[E2E_CRED_MAX];
static size_t sender_cred_len;
static int revoked_sub;
static unsigned served_calls;

static enum e2e_status no_one(void *ctx, const struct e2e_public *who, uint8_t scopes[32])
{
	(void)ctx; (void)who; (void)scopes;
	return E2E_ERR_NOT_FOUND;
}

static uint8_t keys_of(void *ctx, uint8_t scope, struct e2e_ctl_key *out, uint8_t cap,
	uint64_t now_ms)
{
	(void)ctx; (void)now_ms;
	if (cap < 1 || (scope != 1 && scope != 2))
		return 0;
	out[0] = (struct e2e_ctl_key){ .scope = scope, .epoch = 7 };
	tu_key(out[0].key, scope);
	return 1;
}

static const struct e2e_scope_rule rules[] = { { 2, "alarm/#", 7 }, { 1, "#", 1 } };

static enum e2e_status map_of(void *ctx, struct e2e_ctl_map *map)
{
	(void)ctx;
	*map = (struct e2e_ctl_map){ 0, 2, rules, 0, 0 };
	return E2E_OK;
}

static void fleet(void *ctx, const struct e2e_authorities **a, const uint8_t **c, size_t *cl)
{
	(void)ctx;
	*a = &au;
	*c = sender_cred;
	*cl = sender_cred_len;
}

static int is_revoked(void *ctx, const uint8_t pk[32])
{
	(void)ctx;
	return revoked_sub && !memcmp(pk, sub.pub.sign_pk, 32);
}

static void served(void *ctx, const struct e2e_public *who, const uint8_t scopes[32])
{
	(void)ctx; (void)who; (void)scopes;
	served_calls++;
}

static size_t sub_cred(uint8_t *out, const struct e2e_identity *by, const struct e2e_public *for_,
	uint8_t kind, uint64_t nb, uint64_t na)
{
	static const uint8_t scopes[] = { 1 };
	static const struct e2e_scope_rule r[] = { { 1, "#", 1 } };
	struct e2e_cred_spec s = { .kind = kind, .serial = 1, .not_before_ms = nb,
		.not_after_ms = na, .holder = *for_, .nscopes = 1, .scopes = scopes,
		.nrules = 1, .rules = r };
	size_t len = 0;

	CU_ASSERT_EQUAL_FATAL(e2e_cred_issue(out, E2E_CRED_MAX, &len, &s, by), E2E_OK);
	return len;
}

/* One request from @p who carrying @p cred wanting @p scope (0: all); the answer's type/reason. */
static int ask(struct e2e_keysvc *ks, const struct e2e_identity *who, const uint8_t *cred,
	size_t cl, uint8_t scope, struct e2e_ctl *m, uint8_t *plain)
{
	static uint8_t msg[E2E_CTL_MSG_MAX], out[E2E_CTL_DELIVERY_MAX];
	struct e2e_ctl req;
	struct e2e_ctl_want w = { scope, 0 };
	uint8_t eph_sk[32];
	char reply[E2E_CTL_REPLY_MAX + 1];
	size_t len, olen;

	CU_ASSERT_EQUAL_FATAL(e2e_ctl_request_cred(msg, sizeof msg, &len, &req, eph_sk, who,
		e2e_sender_id(&sender.pub), &w, scope ? 1 : 0, NULL, E2E_CTL_TOPIC_DEFAULT, cred, cl,
		NOW), E2E_OK);
	if (e2e_keysvc_handle(ks, msg, len, E2E_CTL_TOPIC_DEFAULT, out, sizeof out, &olen, reply,
		NOW) != E2E_OK)
		return -1;
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_parse(m, out, olen, reply, &sender.pub), E2E_OK);
	if (m->type == E2E_CTL_REFUSAL)
		return m->reason;
	CU_ASSERT_EQUAL_FATAL(e2e_ctl_open_delivery(m, req.eph_pk, eph_sk, plain,
		E2E_CTL_PLAIN_MAX), E2E_OK);
	return 0;
}

static struct e2e_keysvc *service(void)
{
	struct e2e_keysvc_config cfg;
	struct e2e_keysvc *ks = NULL;

	memset(&cfg, 0, sizeof cfg);
	cfg.identity = &sender;
	cfg.enrolled = no_one;
	cfg.keys = keys_of;
	cfg.map = map_of;
	cfg.fleet = fleet;
	cfg.revoked = is_revoked;
	cfg.served = served;
	CU_ASSERT_EQUAL_FATAL(e2e_keysvc_create(&ks, &cfg), E2E_OK);
	return ks;
}

static void test_cred_answered(void)
{
	static uint8_t cred[E2E_CRED_MAX], plain[E2E_CTL_PLAIN_MAX];
	struct e2e_keysvc *ks = service();
	struct e2e_keysvc_stats st;
	struct e2e_ctl m;
	struct e2e_cred sc;
	size_t cl = sub_cred(cred, &auth, &sub.pub, E2E_CRED_SUBSCRIBER, NOW - 1000, NOW + 1000);

	served_calls = 0;
	CU_ASSERT_EQUAL(ask(ks, &sub, cred, cl, 0, &m, plain), 0);
	CU_ASSERT_EQUAL(m.nkeys, 1);
	CU_ASSERT_EQUAL(m.keys[0].scope, 1);
	/* The sender's credential in the clear, as the subscriber checks it. */
	CU_ASSERT_EQUAL(m.cred_len, sender_cred_len);
	CU_ASSERT_EQUAL(e2e_cred_check(&sc, m.cred, m.cred_len, &au, E2E_CRED_SENDER, NOW), E2E_OK);
	CU_ASSERT_EQUAL(served_calls, 1);
	/* A second request: the credential is known, no second verification. */
	CU_ASSERT_EQUAL(ask(ks, &sub, cred, cl, 1, &m, plain), 0);
	e2e_keysvc_stats(ks, &st);
	CU_ASSERT_EQUAL(st.cred_verified, 1);
	CU_ASSERT_EQUAL(st.cred_delivered, 2);
	/* Out of the credential's scopes: refused. */
	CU_ASSERT_EQUAL(ask(ks, &sub, cred, cl, 2, &m, plain), E2E_REFUSE_SCOPE);
	/* Revoked by a list: refused as revoked, known credential or not. */
	revoked_sub = 1;
	CU_ASSERT_EQUAL(ask(ks, &sub, cred, cl, 1, &m, plain), E2E_REFUSE_REVOKED);
	revoked_sub = 0;
	e2e_keysvc_destroy(ks);
}

static void test_cred_refused(void)
{
	static uint8_t cred[E2E_CRED_MAX], plain[E2E_CTL_PLAIN_MAX];
	struct e2e_keysvc *ks = service();
	struct e2e_ctl m;
	size_t cl;

	CU_ASSERT_EQUAL(ask(ks, &sub, NULL, 0, 1, &m, plain), E2E_REFUSE_NOT_ENROLLED);
	cl = sub_cred(cred, &rogue, &sub.pub, E2E_CRED_SUBSCRIBER, NOW - 1000, NOW + 1000);
	CU_ASSERT_EQUAL(ask(ks, &sub, cred, cl, 1, &m, plain), E2E_REFUSE_NOT_ENROLLED);
	cl = sub_cred(cred, &auth, &sub.pub, E2E_CRED_SUBSCRIBER, NOW - 1000, NOW);
	CU_ASSERT_EQUAL(ask(ks, &sub, cred, cl, 1, &m, plain), E2E_REFUSE_NOT_ENROLLED);
	cl = sub_cred(cred, &auth, &sub.pub, E2E_CRED_SUBSCRIBER, NOW + 1, NOW + 1000);
	CU_ASSERT_EQUAL(ask(ks, &sub, cred, cl, 1, &m, plain), E2E_REFUSE_NOT_ENROLLED);
	/* Someone else's credential carried in my request. */
	cl = sub_cred(cred, &auth, &other.pub, E2E_CRED_SUBSCRIBER, NOW - 1000, NOW + 1000);
	CU_ASSERT_EQUAL(ask(ks, &sub, cred, cl, 1, &m, plain), E2E_REFUSE_NOT_ENROLLED);
	cl = sub_cred(cred, &auth, &sub.pub, E2E_CRED_SENDER, NOW - 1000, NOW + 1000);
	CU_ASSERT_EQUAL(ask(ks, &sub, cred, cl, 1, &m, plain), E2E_REFUSE_NOT_ENROLLED);
	/* A forged signature (flipped bit): refused, and never remembered. */
	cl = sub_cred(cred, &auth, &sub.pub, E2E_CRED_SUBSCRIBER, NOW - 1000, NOW + 1000);
	cred[cl - 1] ^= 1;
	CU_ASSERT_EQUAL(ask(ks, &sub, cred, cl, 1, &m, plain), E2E_REFUSE_NOT_ENROLLED);
	CU_ASSERT_EQUAL(ask(ks, &sub, cred, cl, 1, &m, plain), E2E_REFUSE_NOT_ENROLLED);
	e2e_keysvc_destroy(ks);
}

static const struct tu_test tests[] = {
	{ "A valid credential is answered with its scopes, the sender's attached", test_cred_answered },
	{ "Other authority, expired, early, other keys, sender kind, forged: refused", test_cred_refused },
	{ NULL, NULL },
};

int main(void)
{
	static const struct tu_suite suites[] = { { "keysvc-cred", tests }, { NULL, NULL } };
	static const struct e2e_scope_rule sr[] = { { 1, "#", 1 } };
	struct e2e_cred_spec s;

	if (e2e_init() != E2E_OK || e2e_identity_generate(&sender) != E2E_OK ||
	    e2e_identity_generate(&auth) != E2E_OK || e2e_identity_generate(&rogue) != E2E_OK ||
	    e2e_identity_generate(&sub) != E2E_OK || e2e_identity_generate(&other) != E2E_OK)
		return 1;
	au.n = 1;
	au.a[0].pub = auth.pub;
	e2e_public_fp(au.a[0].fp, &auth.pub);
	s = (struct e2e_cred_spec){ .kind = E2E_CRED_SENDER, .serial = 2, .not_before_ms = 0,
		.not_after_ms = NOW * 2, .holder = sender.pub, .nrules = 1, .rules = sr };
	if (e2e_cred_issue(sender_cred, sizeof sender_cred, &sender_cred_len, &s, &auth) != E2E_OK)
		return 1;
	return tu_main(suites);
}
