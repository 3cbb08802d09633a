/*
 * Revocation lists (SPEC 13.3):
 *   head (version 0x01, type 0x06, sender = the authority's sender id, time)
 *   || fp[16] || number u64 || u16 n || n x sign_pk[32] || sig[64]
 * sig = Ed25519(authority, "mqtt-e2e/v1/revocations" || 0x00 || u16 len(T)
 *       || T || everything before sig), T the topic it is published on: its
 * own domain, so no authority signature can pass for a sender's control
 * message or a credential.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/control.h"
#include "e2e/revlist.h"
#include "state/fileio.h"
#include "base/wire.h"

static const char rev_label[] = "mqtt-e2e/v1/revocations";
#define HEAD 14U
#define FIXED (HEAD + E2E_FP_BYTES + 8U + 2U)
#define SIG 64U
#define TOPIC_MAX 256U

enum e2e_status e2e_revlist_topic(char *out, size_t cap, const char *control_topic,
	const uint8_t fp[E2E_FP_BYTES])
{
	char hex[2 * E2E_FP_BYTES + 1];
	int n;

	if (!out || !control_topic || !fp)
		return E2E_ERR_ARG;
	sodium_bin2hex(hex, sizeof hex, fp, E2E_FP_BYTES);
	n = snprintf(out, cap, "%s/authority/%s", control_topic, hex);
	return n < 0 || (size_t)n >= cap || (size_t)n > TOPIC_MAX ? E2E_ERR_BUFFER : E2E_OK;
}

/* label || 0x00 || u16 len(T) || T || msg, into a fresh buffer. */
static uint8_t *signed_bytes(const char *topic, const uint8_t *msg, size_t len, size_t *out_len)
{
	size_t tl = strlen(topic), ll = sizeof rev_label, n = ll + 2 + tl + len;
	uint8_t *b;

	if (tl == 0 || tl > TOPIC_MAX)
		return NULL;
	b = malloc(n);
	if (!b)
		return NULL;
	memcpy(b, rev_label, ll);
	b[ll] = (uint8_t)(tl >> 8);
	b[ll + 1] = (uint8_t)tl;
	memcpy(b + ll + 2, topic, tl);
	memcpy(b + ll + 2 + tl, msg, len);
	*out_len = n;
	return b;
}

enum e2e_status e2e_revlist_build(uint8_t *out, size_t cap, size_t *len,
	const struct e2e_identity *authority, const char *topic, uint64_t number,
	const uint8_t *keys, uint16_t n, uint64_t now_ms)
{
	enum e2e_status ret = E2E_ERR_ARG;
	uint8_t fp[E2E_FP_BYTES], *sb = NULL;
	struct e2e_wr w;
	size_t sl = 0;

	if (!out || !len || !authority || !authority->sign_sk || !topic || (!keys && n) ||
	    n > E2E_REVLIST_KEYS_MAX || number == 0)
		goto out;
	e2e_public_fp(fp, &authority->pub);
	e2e_wr_init(&w, out, cap);
	e2e_wr_u8(&w, E2E_CTL_VERSION);
	e2e_wr_u8(&w, E2E_CTL_REVOCATIONS);
	e2e_wr_u32(&w, e2e_sender_id(&authority->pub));
	e2e_wr_u64(&w, now_ms);
	e2e_wr_bytes(&w, fp, sizeof fp);
	e2e_wr_u64(&w, number);
	e2e_wr_u16(&w, n);
	e2e_wr_bytes(&w, keys, (size_t)n * 32U);
	ret = E2E_ERR_BUFFER;
	if (w.bad || w.off + SIG > cap)
		goto out;
	ret = E2E_ERR_NOMEM;
	sb = signed_bytes(topic, out, w.off, &sl);
	if (!sb)
		goto out;
	crypto_sign_detached(out + w.off, NULL, sb, sl, authority->sign_sk);
	*len = w.off + SIG;
	ret = E2E_OK;
out:
	free(sb);
	return ret;
}

enum e2e_status e2e_revlist_parse(struct e2e_revlist *rl, const uint8_t *msg, size_t len,
	const char *topic, const struct e2e_authorities *au)
{
	const struct e2e_authority *a;
	enum e2e_status ret = E2E_ERR_ARG;
	struct e2e_rd r;
	uint8_t *sb = NULL;
	size_t sl = 0;
	uint32_t sender;

	if (!rl || (!msg && len) || !topic)
		goto out;
	memset(rl, 0, sizeof *rl);
	/* Cheap first: size, version, type, layout, a listed authority. */
	ret = E2E_ERR_MALFORMED;
	if (len < FIXED + SIG || len > E2E_REVLIST_MAX)
		goto out;
	ret = E2E_ERR_VERSION;
	if (msg[0] != E2E_CTL_VERSION)
		goto out;
	ret = E2E_ERR_MALFORMED;
	if (msg[1] != E2E_CTL_REVOCATIONS)
		goto out;
	e2e_rd_init(&r, msg + 2, len - 2 - SIG);
	sender = e2e_rd_u32(&r);
	rl->time_ms = e2e_rd_u64(&r);
	e2e_rd_bytes(&r, rl->authority, E2E_FP_BYTES);
	rl->number = e2e_rd_u64(&r);
	rl->n = e2e_rd_u16(&r);
	rl->keys = e2e_rd_skip(&r, (size_t)rl->n * 32U);
	if (r.bad || e2e_rd_left(&r) != 0 || rl->number == 0)
		goto out;
	ret = E2E_ERR_NOT_FOUND;
	a = e2e_authorities_find(au, rl->authority);
	if (!a)
		goto out;
	ret = E2E_ERR_AUTH;
	if (sender != e2e_sender_id(&a->pub))
		goto out;
	ret = E2E_ERR_NOMEM;
	sb = signed_bytes(topic, msg, len - SIG, &sl);
	if (!sb)
		goto out;
	ret = crypto_sign_verify_detached(msg + len - SIG, sb, sl, a->pub.sign_pk) == 0 ?
		E2E_OK : E2E_ERR_AUTH;
out:
	free(sb);
	if (ret != E2E_OK && rl)
		memset(rl, 0, sizeof *rl);
	return ret;
}

int e2e_revlist_has(const struct e2e_revlist *rl, const uint8_t sign_pk[E2E_SIGN_PK_BYTES])
{
	for (uint32_t i = 0; rl && rl->keys && i < rl->n; i++)
		if (memcmp(rl->keys + 32U * i, sign_pk, 32) == 0)
			return 1;
	return 0;
}
