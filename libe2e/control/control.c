/*
 * Control messages (protocol/SPEC.md sec. 11). Layout:
 *   version u8 | type u8 | sender u32 | time_ms u64 | body | Ed25519 sig
 * signed over CONTEXT || u16 topic length || topic || message-without-sig.
 * Opening DELIVERY's sealed part and reading its map: ctl_deliv.c.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/control.h"
#include "base/wire.h"
#include "control/ctl_cred.h"
#include "control/reply.h"
#include "control/sumhist.h"

#define CONTEXT "mqtt-e2e/v1/ctl"   /* 15 bytes + the NUL: 16 */
#define CONTEXT_LEN 16U
#define TOPIC_MAX 256U
#define KEY_REC 46U                  /* scope 1, epoch 4, not_after 8, flags 1, key 32 */
#define RULE_MIN 4U                  /* scope 1, u16 length, a filter of 1 byte */
#define PLAIN_MIN (1U + 4U + 16U + 2U + RULE_MIN)   /* no key, interval, refresh, one rule */

static enum e2e_status sig_input(uint8_t *buf, size_t cap, size_t *len, const char *topic,
	const uint8_t *msg, size_t msg_len)
{
	size_t tl = topic ? strlen(topic) : 0;
	struct e2e_wr w;

	if (tl == 0 || tl > TOPIC_MAX)
		return E2E_ERR_ARG;
	e2e_wr_init(&w, buf, cap);
	e2e_wr_bytes(&w, (const uint8_t *)CONTEXT, CONTEXT_LEN);
	e2e_wr_u8(&w, (uint8_t)(tl >> 8));
	e2e_wr_u8(&w, (uint8_t)tl);
	e2e_wr_bytes(&w, (const uint8_t *)topic, tl);
	e2e_wr_bytes(&w, msg, msg_len);
	if (w.bad)
		return E2E_ERR_BUFFER;
	*len = w.off;
	return E2E_OK;
}

/* Append the signature to the message of @p *len bytes in @p out. */
static size_t msg_max(uint8_t type)
{
	switch (type) {
	case E2E_CTL_SUMMARY:
		return E2E_CTL_SUMMARY_MAX;
	case E2E_CTL_DELIVERY:
		return E2E_CTL_DELIVERY_MAX;   /* it carries the sender's whole map */
	default:
		return E2E_CTL_MSG_MAX;
	}
}

/* Ed25519 needs the signed bytes contiguous: small messages use the
 * stack, summaries and deliveries (up to 64 KiB, rare) the heap. */
static uint8_t *sig_buf(uint8_t *stack, size_t stack_len, size_t need)
{
	return need <= stack_len ? stack : malloc(need);
}

/* Append the signature to the message of @p *len bytes in @p out. */
enum e2e_status e2e_ctl_sign(uint8_t *out, size_t cap, size_t *len, const char *topic,
	const struct e2e_identity *id)
{
	uint8_t stack[CONTEXT_LEN + 2 + TOPIC_MAX + E2E_CTL_MSG_MAX], *buf;
	size_t blen, need;
	enum e2e_status ret;

	if (!out || !len || !topic || !id || *len < 2)
		return E2E_ERR_ARG;
	need = CONTEXT_LEN + 2 + TOPIC_MAX + *len;
	if (*len + E2E_CTL_SIG_BYTES > cap || *len + E2E_CTL_SIG_BYTES > msg_max(out[1]))
		return E2E_ERR_BUFFER;
	buf = sig_buf(stack, sizeof stack, need);
	if (!buf)
		return E2E_ERR_NOMEM;
	ret = sig_input(buf, need, &blen, topic, out, *len);
	if (ret == E2E_OK) {
		crypto_sign_detached(out + *len, NULL, buf, blen, id->sign_sk);
		*len += E2E_CTL_SIG_BYTES;
	}
	if (buf != stack)
		free(buf);
	return ret;
}

static void write_head(struct e2e_wr *w, uint8_t type, uint32_t sender, uint64_t now_ms)
{
	e2e_wr_u8(w, E2E_CTL_VERSION);
	e2e_wr_u8(w, type);
	e2e_wr_u32(w, sender);
	e2e_wr_u64(w, now_ms);
}

void e2e_ctl_wipe(struct e2e_ctl *m)
{
	if (m)
		sodium_memzero(m, sizeof *m);
}

void e2e_ctl_hash(uint8_t out[E2E_CTL_HASH_BYTES], const uint8_t *msg, size_t len)
{
	crypto_generichash(out, E2E_CTL_HASH_BYTES, msg, len, NULL, 0);
}

/* SPEC 11.2: a reply topic is the prefix and at least 32 lowercase hex
 * digits; REQUEST and REDEEM (SPEC 14.3) share the rule. */
int e2e_ctl_reply_topic_ok(const char *t, size_t len)
{
	size_t pl = sizeof E2E_CTL_REPLY_PREFIX - 1;

	if (len < pl + 32 || len > E2E_CTL_REPLY_MAX || memcmp(t, E2E_CTL_REPLY_PREFIX, pl) != 0)
		return 0;
	for (size_t i = pl; i < len; i++)
		if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
			return 0;
	return 1;
}

void e2e_ctl_reply_topic(char out[E2E_CTL_REPLY_MAX + 1])
{
	uint8_t rnd[16];
	char hex[2 * sizeof rnd + 1];

	/* 128 random bits: unguessable, so only its owner subscribes to it. */
	randombytes_buf(rnd, sizeof rnd);
	sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
	snprintf(out, E2E_CTL_REPLY_MAX + 1, "%s%s", E2E_CTL_REPLY_PREFIX, hex);
}

enum e2e_status e2e_ctl_request_cred(uint8_t *out, size_t cap, size_t *len,
	struct e2e_ctl *req, uint8_t eph_sk[E2E_DH_BYTES],
	const struct e2e_identity *subscriber, uint32_t target_sender,
	const struct e2e_ctl_want *want, uint8_t nwant, const char *reply_topic,
	const char *control_topic, const uint8_t *cred, size_t cred_len, uint64_t now_ms)
{
	struct e2e_wr w;
	size_t rl;

	if (!out || !len || !req || !eph_sk || !subscriber || (!want && nwant) ||
	    nwant > E2E_CTL_WANT_MAX || !control_topic ||
	    (reply_topic && !e2e_ctl_reply_topic_ok(reply_topic, strlen(reply_topic))))
		return E2E_ERR_ARG;
	memset(req, 0, sizeof *req);
	req->type = E2E_CTL_REQUEST;
	req->sender = target_sender;
	req->time_ms = now_ms;
	req->requester = subscriber->pub;
	crypto_box_keypair(req->eph_pk, eph_sk);
	randombytes_buf(req->nonce, sizeof req->nonce);
	if (reply_topic)
		snprintf(req->reply_topic, sizeof req->reply_topic, "%s", reply_topic);
	else
		e2e_ctl_reply_topic(req->reply_topic);
	rl = strlen(req->reply_topic);
	req->nwant = nwant;
	if (nwant)
		memcpy(req->want, want, nwant * sizeof *want);

	e2e_wr_init(&w, out, cap);
	write_head(&w, E2E_CTL_REQUEST, target_sender, now_ms);
	e2e_wr_bytes(&w, req->requester.sign_pk, E2E_SIGN_PK_BYTES);
	e2e_wr_bytes(&w, req->requester.dh_pk, E2E_DH_BYTES);
	e2e_wr_bytes(&w, req->eph_pk, E2E_DH_BYTES);
	e2e_wr_bytes(&w, req->nonce, sizeof req->nonce);
	e2e_wr_u8(&w, (uint8_t)rl);
	e2e_wr_bytes(&w, (const uint8_t *)req->reply_topic, rl);
	e2e_wr_u8(&w, nwant);
	for (uint8_t i = 0; i < nwant; i++) {
		e2e_wr_u8(&w, want[i].scope);
		e2e_wr_u32(&w, want[i].epoch);
	}
	if (e2e_ctl_cred_write(&w, cred, cred_len) != E2E_OK)
		return E2E_ERR_ARG;
	if (w.bad)
		return E2E_ERR_BUFFER;
	*len = w.off;
	return e2e_ctl_sign(out, cap, len, control_topic, subscriber);
}

/* Validate every entry now, so iterating later cannot fail. */
static enum e2e_status parse_summary(struct e2e_ctl *m, struct e2e_rd *r)
{
	m->interval_ms = e2e_rd_u32(r);
	m->boot = e2e_rd_u32(r);
	m->number = e2e_rd_u32(r);
	m->part = e2e_rd_u8(r);
	m->parts = e2e_rd_u8(r);
	/* Two statements: the order of the two reads must not be left to C. */
	m->nentries = (uint16_t)((unsigned)e2e_rd_u8(r) << 8);
	m->nentries = (uint16_t)(m->nentries | e2e_rd_u8(r));
	if (r->bad || m->parts == 0 || m->part >= m->parts || m->number == 0 || m->boot == 0)
		return E2E_ERR_MALFORMED;
	m->entries = r->p + r->off;
	m->entries_len = e2e_rd_left(r);
	for (uint16_t i = 0; i < m->nentries; i++) {
		uint32_t first, last;
		size_t tl;

		(void)e2e_rd_u32(r);
		tl = (size_t)e2e_rd_u8(r) << 8;
		tl |= e2e_rd_u8(r);
		if (tl == 0 || !e2e_rd_skip(r, tl))
			return E2E_ERR_MALFORMED;
		first = e2e_rd_u32(r);
		last = e2e_rd_u32(r);
		if (r->bad || first == 0 || last < first ||
		    ((uint64_t)last - first + 1) * E2E_SUMMARY_DIGEST_BYTES > e2e_rd_left(r) ||
		    !e2e_rd_skip(r, ((size_t)last - first + 1) * E2E_SUMMARY_DIGEST_BYTES))
			return E2E_ERR_MALFORMED;
	}
	m->entries_len = (size_t)(r->p + r->off - m->entries);
	return r->bad ? E2E_ERR_MALFORMED : e2e_sumhist_parse(m, r);
}

void e2e_summary_iter_init(struct e2e_summary_iter *it, const struct e2e_ctl *m)
{
	it->p = m->entries;
	it->len = m->entries_len;
	it->off = 0;
	it->left = m->type == E2E_CTL_SUMMARY ? m->nentries : 0;
}

int e2e_summary_entry_next(struct e2e_summary_iter *it, struct e2e_summary_entry *e)
{
	struct e2e_rd r;

	if (it->left == 0)
		return 0;
	e2e_rd_init(&r, it->p + it->off, it->len - it->off);
	e->run = e2e_rd_u32(&r);
	e->topic_len = (size_t)e2e_rd_u8(&r) << 8;
	e->topic_len |= e2e_rd_u8(&r);
	e->topic = (const char *)e2e_rd_skip(&r, e->topic_len);
	e->first = e2e_rd_u32(&r);
	e->last = e2e_rd_u32(&r);
	e->digests = r.bad ? NULL :
		e2e_rd_skip(&r, ((size_t)e->last - e->first + 1) * E2E_SUMMARY_DIGEST_BYTES);
	it->off += r.off;
	it->left--;
	return !r.bad;
}

static enum e2e_status parse_body(struct e2e_ctl *m, struct e2e_rd *r)
{
	size_t n;

	switch (m->type) {
	case E2E_CTL_REQUEST:
		e2e_rd_bytes(r, m->requester.sign_pk, E2E_SIGN_PK_BYTES);
		e2e_rd_bytes(r, m->requester.dh_pk, E2E_DH_BYTES);
		e2e_rd_bytes(r, m->eph_pk, E2E_DH_BYTES);
		e2e_rd_bytes(r, m->nonce, sizeof m->nonce);
		n = e2e_rd_u8(r);
		if (r->bad || n > E2E_CTL_REPLY_MAX)
			return E2E_ERR_MALFORMED;
		e2e_rd_bytes(r, (uint8_t *)m->reply_topic, n);
		m->reply_topic[n] = '\0';
		if (!e2e_ctl_reply_topic_ok(m->reply_topic, n))
			return E2E_ERR_MALFORMED;
		m->nwant = e2e_rd_u8(r);
		if (m->nwant > E2E_CTL_WANT_MAX)
			return E2E_ERR_MALFORMED;
		for (uint8_t i = 0; i < m->nwant; i++) {
			m->want[i].scope = e2e_rd_u8(r);
			m->want[i].epoch = e2e_rd_u32(r);
		}
		if (e2e_ctl_cred_read(r, &m->cred, &m->cred_len) != E2E_OK)
			return E2E_ERR_MALFORMED;
		break;
	case E2E_CTL_DELIVERY:
		e2e_rd_bytes(r, m->request_hash, E2E_CTL_HASH_BYTES);
		if (e2e_ctl_cred_read(r, &m->cred, &m->cred_len) != E2E_OK)
			return E2E_ERR_MALFORMED;
		n = (size_t)e2e_rd_u8(r) << 8;
		n |= e2e_rd_u8(r);
		if (n < crypto_box_SEALBYTES + PLAIN_MIN || n > crypto_box_SEALBYTES + E2E_CTL_PLAIN_MAX)
			return E2E_ERR_MALFORMED;
		m->sealed = e2e_rd_skip(r, n);
		m->sealed_len = n;
		break;
	case E2E_CTL_REFUSAL:
		e2e_rd_bytes(r, m->request_hash, E2E_CTL_HASH_BYTES);
		m->reason = e2e_rd_u8(r);
		break;
	case E2E_CTL_ANNOUNCE:
		m->scope = e2e_rd_u8(r);
		m->epoch = e2e_rd_u32(r);
		break;
	case E2E_CTL_SUMMARY:
		return parse_summary(m, r);
	default:
		return E2E_ERR_MALFORMED;
	}
	return r->bad || e2e_rd_left(r) != 0 ? E2E_ERR_MALFORMED : E2E_OK;
}

enum e2e_status e2e_ctl_peek(struct e2e_ctl *m, const uint8_t *msg, size_t len)
{
	struct e2e_rd r;
	enum e2e_status ret;

	if (!m || (!msg && len))
		return E2E_ERR_ARG;
	memset(m, 0, sizeof *m);
	if (len < E2E_CTL_HEAD_BYTES + E2E_CTL_SIG_BYTES || len > msg_max(msg[1]))
		return E2E_ERR_MALFORMED;
	if (msg[0] != E2E_CTL_VERSION)
		return E2E_ERR_VERSION;
	e2e_rd_init(&r, msg, len - E2E_CTL_SIG_BYTES);
	(void)e2e_rd_u8(&r);
	m->type = e2e_rd_u8(&r);
	m->sender = e2e_rd_u32(&r);
	m->time_ms = e2e_rd_u64(&r);
	ret = parse_body(m, &r);
	if (ret != E2E_OK)
		e2e_ctl_wipe(m);
	return ret;
}

enum e2e_status e2e_ctl_parse(struct e2e_ctl *m, const uint8_t *msg, size_t len,
	const char *topic, const struct e2e_public *signer)
{
	uint8_t stack[CONTEXT_LEN + 2 + TOPIC_MAX + E2E_CTL_MSG_MAX], *buf = NULL;
	size_t blen;
	enum e2e_status ret;

	if (!m || (!msg && len) || !topic)
		return E2E_ERR_ARG;
	/* Cheap checks first: size, version, type, layout; then the signature. */
	ret = e2e_ctl_peek(m, msg, len);
	if (ret != E2E_OK)
		return ret;
	if (!signer && m->type != E2E_CTL_REQUEST) {
		ret = E2E_ERR_ARG;
		goto fail;
	}
	ret = E2E_ERR_NOMEM;
	buf = sig_buf(stack, sizeof stack, CONTEXT_LEN + 2 + TOPIC_MAX + len);
	if (!buf)
		goto fail;
	ret = sig_input(buf, CONTEXT_LEN + 2 + TOPIC_MAX + len, &blen, topic, msg,
		len - E2E_CTL_SIG_BYTES);
	if (ret != E2E_OK)
		goto fail;
	if (crypto_sign_verify_detached(msg + len - E2E_CTL_SIG_BYTES, buf, blen,
			signer ? signer->sign_pk : m->requester.sign_pk) != 0) {
		ret = E2E_ERR_AUTH;
		goto fail;
	}
	ret = E2E_OK;
fail:
	if (buf && buf != stack)
		free(buf);
	if (ret != E2E_OK)
		e2e_ctl_wipe(m);
	return ret;
}

enum e2e_status e2e_ctl_delivery_cred(uint8_t *out, size_t cap, size_t *len,
	const struct e2e_identity *sender, const struct e2e_ctl *req,
	const uint8_t req_hash[E2E_CTL_HASH_BYTES],
	const struct e2e_ctl_key *keys, uint8_t nkeys, const struct e2e_ctl_map *map,
	const uint8_t *cred, size_t cred_len, uint64_t now_ms)
{
	uint8_t *plain = NULL;
	size_t map_len = e2e_ctl_map_size(map), plen, sealed_len;
	struct e2e_wr w, pw;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!out || !len || !sender || !req || !req_hash || (!keys && nkeys) ||
	    nkeys > E2E_CTL_KEYS_MAX || map_len == 0)
		goto out;
	plen = 1U + (size_t)nkeys * KEY_REC + 4U + 16U + map_len;
	sealed_len = crypto_box_SEALBYTES + plen;
	ret = E2E_ERR_BUFFER;
	if (plen > E2E_CTL_PLAIN_MAX)
		goto out;
	ret = E2E_ERR_NOMEM;
	plain = malloc(plen);
	if (!plain)
		goto out;
	/* u8 k || keys || u32 summary interval || u64 refresh from || u64 refresh by ||
	 * u16 r || r x (scope, str16 filter) */
	e2e_wr_init(&pw, plain, plen);
	e2e_wr_u8(&pw, nkeys);
	for (uint8_t i = 0; i < nkeys; i++) {
		e2e_wr_u8(&pw, keys[i].scope);
		e2e_wr_u32(&pw, keys[i].epoch);
		e2e_wr_u64(&pw, keys[i].not_after_ms);
		e2e_wr_u8(&pw, keys[i].flags);
		e2e_wr_bytes(&pw, keys[i].key, E2E_KEY_BYTES);
	}
	e2e_wr_u32(&pw, map->summary_interval_ms);
	e2e_wr_u64(&pw, map->refresh_from_ms);
	e2e_wr_u64(&pw, map->refresh_by_ms);
	e2e_wr_u8(&pw, (uint8_t)(map->nrules >> 8));
	e2e_wr_u8(&pw, (uint8_t)map->nrules);
	for (uint32_t i = 0; i < map->nrules; i++) {
		e2e_wr_u8(&pw, map->rules[i].scope);
		e2e_wr_u8(&pw, (uint8_t)(map->rules[i].filter_len >> 8));
		e2e_wr_u8(&pw, (uint8_t)map->rules[i].filter_len);
		e2e_wr_bytes(&pw, (const uint8_t *)map->rules[i].filter, map->rules[i].filter_len);
	}
	e2e_wr_init(&w, out, cap);
	write_head(&w, E2E_CTL_DELIVERY, e2e_sender_id(&sender->pub), now_ms);
	e2e_wr_bytes(&w, req_hash, E2E_CTL_HASH_BYTES);
	ret = E2E_ERR_ARG;
	if (e2e_ctl_cred_write(&w, cred, cred_len) != E2E_OK)
		goto out;
	e2e_wr_u8(&w, (uint8_t)(sealed_len >> 8));
	e2e_wr_u8(&w, (uint8_t)sealed_len);
	ret = E2E_ERR_BUFFER;
	if (w.bad || pw.bad || pw.off != plen || cap - w.off < sealed_len)
		goto out;
	/* Sealed to the request's ephemeral key: forward secrecy. */
	ret = E2E_ERR_CRYPTO;
	if (crypto_box_seal(out + w.off, plain, plen, req->eph_pk) != 0)
		goto out;
	*len = w.off + sealed_len;
	ret = e2e_ctl_sign(out, cap, len, req->reply_topic, sender);
out:
	if (plain) {
		sodium_memzero(plain, plen);
		free(plain);
	}
	return ret;
}

enum e2e_status e2e_ctl_refusal(uint8_t *out, size_t cap, size_t *len,
	const struct e2e_identity *sender, const struct e2e_ctl *req,
	const uint8_t req_hash[E2E_CTL_HASH_BYTES], enum e2e_refusal reason, uint64_t now_ms)
{
	struct e2e_wr w;

	if (!out || !len || !sender || !req || !req_hash)
		return E2E_ERR_ARG;
	e2e_wr_init(&w, out, cap);
	write_head(&w, E2E_CTL_REFUSAL, e2e_sender_id(&sender->pub), now_ms);
	e2e_wr_bytes(&w, req_hash, E2E_CTL_HASH_BYTES);
	e2e_wr_u8(&w, (uint8_t)reason);
	if (w.bad)
		return E2E_ERR_BUFFER;
	*len = w.off;
	return e2e_ctl_sign(out, cap, len, req->reply_topic, sender);
}

enum e2e_status e2e_ctl_announce(uint8_t *out, size_t cap, size_t *len,
	const struct e2e_identity *sender, const char *topic, uint8_t scope, uint32_t epoch,
	uint64_t now_ms)
{
	struct e2e_wr w;

	if (!out || !len || !sender || !topic)
		return E2E_ERR_ARG;
	e2e_wr_init(&w, out, cap);
	write_head(&w, E2E_CTL_ANNOUNCE, e2e_sender_id(&sender->pub), now_ms);
	e2e_wr_u8(&w, scope);
	e2e_wr_u32(&w, epoch);
	if (w.bad)
		return E2E_ERR_BUFFER;
	*len = w.off;
	return e2e_ctl_sign(out, cap, len, topic, sender);
}

enum e2e_status e2e_ctl_sender_topic(char *out, size_t cap, const char *control_topic,
	uint32_t sender)
{
	int n;

	if (!out || !control_topic)
		return E2E_ERR_ARG;
	n = snprintf(out, cap, "%s/%08x", control_topic, sender);
	return n < 0 || (size_t)n >= cap ? E2E_ERR_BUFFER : E2E_OK;
}

const char *e2e_refusal_name(uint8_t reason)
{
	switch (reason) {
	case E2E_REFUSE_NOT_ENROLLED: return "not enrolled";
	case E2E_REFUSE_SCOPE: return "scope not allowed";
	case E2E_REFUSE_RATE: return "rate limited";
	case E2E_REFUSE_REVOKED: return "revoked";
	case E2E_REFUSE_STALE: return "stale request";
	}
	return "unknown reason";
}
