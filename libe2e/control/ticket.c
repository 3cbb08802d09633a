/*
 * Ticket tokens and the REDEEM / GRANT control messages (protocol/SPEC.md
 * sec. 14). Both use the control head and signature of 11.2:
 *   REDEEM: head(type 0x07, sender 0) || ticket_id[8] || sign_pk[32] ||
 *           dh_pk[32] || nonce[16] || str8 reply_topic || mac[32] || sig
 *   GRANT:  head(type 0x08, sender = authority id) || req_hash[32] ||
 *           sign_pk[32] || dh_pk[32] || u8 reason || u16 c || cred[c] || sig
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "e2e/ticket.h"
#include "base/wire.h"
#include "control/reply.h"

#define TOKEN_PREFIX "e2et1-"
#define TOKEN_RAW (E2E_TICKET_ID_BYTES + E2E_TICKET_SECRET_BYTES + E2E_TICKET_FP_BYTES)
#define TOKEN_B64 54U                       /* unpadded base64 of 40 bytes */
#define MAC_CONTEXT "mqtt-e2e/v1/ticket"    /* + its NUL */
#define CTL_CONTEXT "mqtt-e2e/v1/ctl"       /* SPEC 11.2, + its NUL */
#define TOPIC_MAX 256U
#define REDEEM_MIN (E2E_CTL_HEAD_BYTES + E2E_TICKET_ID_BYTES + E2E_PUB_BYTES + \
	E2E_CTL_NONCE_BYTES + 1U + E2E_TICKET_MAC_BYTES + E2E_CTL_SIG_BYTES)

void e2e_ticket_token_format(char out[E2E_TICKET_TOKEN_LEN + 1], const struct e2e_ticket_token *t)
{
	uint8_t raw[TOKEN_RAW];

	memcpy(raw, t->id, E2E_TICKET_ID_BYTES);
	memcpy(raw + E2E_TICKET_ID_BYTES, t->secret, E2E_TICKET_SECRET_BYTES);
	memcpy(raw + E2E_TICKET_ID_BYTES + E2E_TICKET_SECRET_BYTES, t->fp, E2E_TICKET_FP_BYTES);
	memcpy(out, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1);
	sodium_bin2base64(out + sizeof TOKEN_PREFIX - 1, TOKEN_B64 + 1, raw, sizeof raw,
		sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof raw);
}

enum e2e_status e2e_ticket_token_parse(struct e2e_ticket_token *t, const char *text)
{
	uint8_t raw[TOKEN_RAW];
	char back[E2E_TICKET_TOKEN_LEN + 1];
	size_t len, rawlen = 0;
	const char *end;
	enum e2e_status ret = E2E_ERR_MALFORMED;

	if (!t || !text)
		return E2E_ERR_ARG;
	memset(t, 0, sizeof *t);
	while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
		text++;
	len = strlen(text);
	while (len && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\n' ||
		       text[len - 1] == '\r'))
		len--;
	if (len != E2E_TICKET_TOKEN_LEN || memcmp(text, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1) != 0)
		goto out;
	if (sodium_base642bin(raw, sizeof raw, text + sizeof TOKEN_PREFIX - 1, TOKEN_B64, NULL,
			&rawlen, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    rawlen != sizeof raw || end != text + len)
		goto out;
	memcpy(t->id, raw, E2E_TICKET_ID_BYTES);
	memcpy(t->secret, raw + E2E_TICKET_ID_BYTES, E2E_TICKET_SECRET_BYTES);
	memcpy(t->fp, raw + E2E_TICKET_ID_BYTES + E2E_TICKET_SECRET_BYTES, E2E_TICKET_FP_BYTES);
	/* Canonical only: the last character's 4 unused bits must be 0, so one
	 * ticket has exactly one token. */
	e2e_ticket_token_format(back, t);
	if (sodium_memcmp(back, text, E2E_TICKET_TOKEN_LEN) != 0) {
		memset(t, 0, sizeof *t);
		goto out;
	}
	ret = E2E_OK;
out:
	sodium_memzero(back, sizeof back);
	sodium_memzero(raw, sizeof raw);
	return ret;
}

static enum e2e_status fp_topic(char *out, size_t cap, const char *control,
	const uint8_t fp[E2E_TICKET_FP_BYTES], const char *suffix)
{
	char hex[2 * E2E_TICKET_FP_BYTES + 1];
	int n;

	if (!out || !control || !fp || !*control)
		return E2E_ERR_ARG;
	sodium_bin2hex(hex, sizeof hex, fp, E2E_TICKET_FP_BYTES);
	n = snprintf(out, cap, "%s/authority/%s%s", control, hex, suffix);
	return n < 0 || (size_t)n >= cap || (size_t)n > TOPIC_MAX ? E2E_ERR_BUFFER : E2E_OK;
}

enum e2e_status e2e_ticket_authority_topic(char *out, size_t cap, const char *control_topic,
	const uint8_t fp[E2E_TICKET_FP_BYTES])
{
	return fp_topic(out, cap, control_topic, fp, "");
}

enum e2e_status e2e_ticket_redeem_topic(char *out, size_t cap, const char *control_topic,
	const uint8_t fp[E2E_TICKET_FP_BYTES])
{
	return fp_topic(out, cap, control_topic, fp, "/redeem");
}

/* MAC over the REDEEM's head and body up to the MAC (SPEC 14.3). */
static void redeem_mac(uint8_t mac[E2E_TICKET_MAC_BYTES], const uint8_t *msg, size_t len,
	const uint8_t secret[E2E_TICKET_SECRET_BYTES])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, secret, E2E_TICKET_SECRET_BYTES, E2E_TICKET_MAC_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)MAC_CONTEXT, sizeof MAC_CONTEXT);
	crypto_generichash_update(&st, msg, len);
	crypto_generichash_final(&st, mac, E2E_TICKET_MAC_BYTES);
	sodium_memzero(&st, sizeof st);
}

static void write_head(struct e2e_wr *w, uint8_t type, uint32_t sender, uint64_t now_ms)
{
	e2e_wr_u8(w, E2E_CTL_VERSION);
	e2e_wr_u8(w, type);
	e2e_wr_u32(w, sender);
	e2e_wr_u64(w, now_ms);
}

enum e2e_status e2e_ticket_redeem(uint8_t *out, size_t cap, size_t *len, struct e2e_redeem *r,
	const struct e2e_identity *redeemer, const struct e2e_ticket_token *tok,
	const char *reply_topic, const char *topic, uint64_t now_ms)
{
	struct e2e_wr w;
	size_t rl;

	if (!out || !len || !r || !redeemer || !tok || !topic ||
	    (reply_topic && !e2e_ctl_reply_topic_ok(reply_topic, strlen(reply_topic))))
		return E2E_ERR_ARG;
	memset(r, 0, sizeof *r);
	r->type = E2E_CTL_REDEEM;
	r->time_ms = now_ms;
	memcpy(r->ticket_id, tok->id, sizeof r->ticket_id);
	r->redeemer = redeemer->pub;
	randombytes_buf(r->nonce, sizeof r->nonce);
	if (reply_topic)
		snprintf(r->reply_topic, sizeof r->reply_topic, "%s", reply_topic);
	else
		e2e_ctl_reply_topic(r->reply_topic);
	rl = strlen(r->reply_topic);

	e2e_wr_init(&w, out, cap);
	write_head(&w, E2E_CTL_REDEEM, 0, now_ms);
	e2e_wr_bytes(&w, r->ticket_id, sizeof r->ticket_id);
	e2e_wr_bytes(&w, r->redeemer.sign_pk, E2E_SIGN_PK_BYTES);
	e2e_wr_bytes(&w, r->redeemer.dh_pk, E2E_DH_BYTES);
	e2e_wr_bytes(&w, r->nonce, sizeof r->nonce);
	e2e_wr_u8(&w, (uint8_t)rl);
	e2e_wr_bytes(&w, (const uint8_t *)r->reply_topic, rl);
	if (w.bad || cap - w.off < E2E_TICKET_MAC_BYTES)
		return E2E_ERR_BUFFER;
	redeem_mac(r->mac, out, w.off, tok->secret);
	e2e_wr_bytes(&w, r->mac, sizeof r->mac);
	*len = w.off;
	return e2e_ctl_sign(out, cap, len, topic, redeemer);
}

/* The control signature of 11.2 over @p topic, checked with @p pk. */
static enum e2e_status verify(const uint8_t *msg, size_t len, const char *topic,
	const uint8_t pk[E2E_SIGN_PK_BYTES])
{
	uint8_t buf[sizeof CTL_CONTEXT + 2 + TOPIC_MAX + E2E_CTL_MSG_MAX];
	size_t tl = strlen(topic), n = 0;

	if (tl == 0 || tl > TOPIC_MAX || len > E2E_CTL_MSG_MAX)
		return E2E_ERR_ARG;
	memcpy(buf, CTL_CONTEXT, sizeof CTL_CONTEXT);
	n = sizeof CTL_CONTEXT;
	buf[n++] = (uint8_t)(tl >> 8);
	buf[n++] = (uint8_t)tl;
	memcpy(buf + n, topic, tl);
	n += tl;
	memcpy(buf + n, msg, len - E2E_CTL_SIG_BYTES);
	n += len - E2E_CTL_SIG_BYTES;
	return crypto_sign_verify_detached(msg + len - E2E_CTL_SIG_BYTES, buf, n, pk) == 0 ?
		E2E_OK : E2E_ERR_AUTH;
}

/* Size, version and head: the checks both types share (11.2 steps 1-3). */
static enum e2e_status parse_head(struct e2e_redeem *r, struct e2e_rd *rd, const uint8_t *msg,
	size_t len, uint8_t type)
{
	memset(r, 0, sizeof *r);
	if (len < E2E_CTL_HEAD_BYTES + E2E_CTL_SIG_BYTES || len > E2E_CTL_MSG_MAX)
		return E2E_ERR_MALFORMED;
	if (msg[0] != E2E_CTL_VERSION)
		return E2E_ERR_VERSION;
	if (msg[1] != type)
		return E2E_ERR_MALFORMED;
	e2e_rd_init(rd, msg, len - E2E_CTL_SIG_BYTES);
	(void)e2e_rd_u8(rd);
	r->type = e2e_rd_u8(rd);
	r->sender = e2e_rd_u32(rd);
	r->time_ms = e2e_rd_u64(rd);
	return E2E_OK;
}

enum e2e_status e2e_ticket_redeem_parse(struct e2e_redeem *r, const uint8_t *msg, size_t len,
	const char *topic)
{
	struct e2e_rd rd;
	size_t n;
	enum e2e_status ret;

	if (!r || !msg || !topic)
		return E2E_ERR_ARG;
	ret = parse_head(r, &rd, msg, len, E2E_CTL_REDEEM);
	if (ret != E2E_OK)
		goto out;
	ret = E2E_ERR_MALFORMED;
	if (len < REDEEM_MIN || r->sender != 0)
		goto out;
	e2e_rd_bytes(&rd, r->ticket_id, sizeof r->ticket_id);
	e2e_rd_bytes(&rd, r->redeemer.sign_pk, E2E_SIGN_PK_BYTES);
	e2e_rd_bytes(&rd, r->redeemer.dh_pk, E2E_DH_BYTES);
	e2e_rd_bytes(&rd, r->nonce, sizeof r->nonce);
	n = e2e_rd_u8(&rd);
	if (rd.bad || n > E2E_CTL_REPLY_MAX)
		goto out;
	e2e_rd_bytes(&rd, (uint8_t *)r->reply_topic, n);
	r->reply_topic[n] = '\0';
	if (rd.bad || !e2e_ctl_reply_topic_ok(r->reply_topic, n))
		goto out;
	e2e_rd_bytes(&rd, r->mac, sizeof r->mac);
	if (rd.bad || e2e_rd_left(&rd) != 0)
		goto out;
	ret = verify(msg, len, topic, r->redeemer.sign_pk);
out:
	if (ret != E2E_OK)
		memset(r, 0, sizeof *r);
	return ret;
}

int e2e_ticket_redeem_mac_ok(const uint8_t *msg, size_t len,
	const uint8_t secret[E2E_TICKET_SECRET_BYTES])
{
	uint8_t mac[E2E_TICKET_MAC_BYTES];
	size_t body;
	int ok;

	if (!msg || !secret || len < REDEEM_MIN)
		return 0;
	body = len - E2E_CTL_SIG_BYTES - E2E_TICKET_MAC_BYTES;
	redeem_mac(mac, msg, body, secret);
	ok = sodium_memcmp(mac, msg + body, sizeof mac) == 0;
	sodium_memzero(mac, sizeof mac);
	return ok;
}

enum e2e_status e2e_ticket_grant(uint8_t *out, size_t cap, size_t *len,
	const struct e2e_identity *authority, const struct e2e_redeem *r,
	const uint8_t req_hash[E2E_CTL_HASH_BYTES], uint8_t reason, const uint8_t *cred,
	size_t cred_len, uint64_t now_ms)
{
	struct e2e_wr w;

	if (!out || !len || !authority || !r || !req_hash || (reason == 0) != (cred_len != 0) ||
	    (cred_len && !cred) || cred_len > E2E_TICKET_CRED_MAX)
		return E2E_ERR_ARG;
	e2e_wr_init(&w, out, cap);
	write_head(&w, E2E_CTL_GRANT, e2e_sender_id(&authority->pub), now_ms);
	e2e_wr_bytes(&w, req_hash, E2E_CTL_HASH_BYTES);
	e2e_wr_bytes(&w, authority->pub.sign_pk, E2E_SIGN_PK_BYTES);
	e2e_wr_bytes(&w, authority->pub.dh_pk, E2E_DH_BYTES);
	e2e_wr_u8(&w, reason);
	e2e_wr_u16(&w, (uint16_t)cred_len);
	if (cred_len)
		e2e_wr_bytes(&w, cred, cred_len);
	if (w.bad)
		return E2E_ERR_BUFFER;
	*len = w.off;
	return e2e_ctl_sign(out, cap, len, r->reply_topic, authority);
}

enum e2e_status e2e_ticket_grant_parse(struct e2e_redeem *g, const uint8_t *msg, size_t len,
	const char *topic, const uint8_t fp[E2E_TICKET_FP_BYTES])
{
	uint8_t have[E2E_TICKET_FP_BYTES];
	struct e2e_rd rd;
	size_t c;
	enum e2e_status ret;

	if (!g || !msg || !topic || !fp)
		return E2E_ERR_ARG;
	ret = parse_head(g, &rd, msg, len, E2E_CTL_GRANT);
	if (ret != E2E_OK)
		goto out;
	ret = E2E_ERR_MALFORMED;
	e2e_rd_bytes(&rd, g->request_hash, sizeof g->request_hash);
	e2e_rd_bytes(&rd, g->authority.sign_pk, E2E_SIGN_PK_BYTES);
	e2e_rd_bytes(&rd, g->authority.dh_pk, E2E_DH_BYTES);
	g->reason = e2e_rd_u8(&rd);
	c = e2e_rd_u16(&rd);
	g->cred = c ? e2e_rd_skip(&rd, c) : NULL;
	g->cred_len = c;
	/* A grant carries a credential, a refusal none. */
	if (rd.bad || e2e_rd_left(&rd) != 0 || (g->reason == 0) != (c != 0) ||
	    c > E2E_TICKET_CRED_MAX)
		goto out;
	/* The keys must be the authority's of the token: the broker cannot
	 * answer with keys of its own. */
	e2e_public_fp(have, &g->authority);
	ret = E2E_ERR_AUTH;
	if (sodium_memcmp(have, fp, sizeof have) != 0)
		goto out;
	ret = E2E_ERR_MALFORMED;
	if (g->sender != e2e_sender_id(&g->authority))
		goto out;
	ret = verify(msg, len, topic, g->authority.sign_pk);
out:
	if (ret != E2E_OK)
		memset(g, 0, sizeof *g);
	return ret;
}

const char *e2e_ticket_reason_name(uint8_t reason)
{
	switch (reason) {
	case 0: return "granted";
	case E2E_REFUSE_TICKET_UNKNOWN: return "unknown ticket";
	case E2E_REFUSE_TICKET_EXPIRED: return "ticket expired";
	case E2E_REFUSE_TICKET_USED: return "ticket already redeemed (used up)";
	case E2E_REFUSE_TICKET_MAC: return "forged ticket (bad mac)";
	}
	return e2e_refusal_name(reason);
}
