/*
 * DELIVERY's sealed part (SPEC 11.2): u8 k || k x key record ||
 * u32 summary interval || u64 refresh from || u64 refresh by ||
 * u16 r || r x (scope, str16 filter). Its map's size (control.c writes
 * it), opening it with the request's ephemeral key, and iterating its
 * rules. Uses nothing of control.c.
 */
#include <sodium.h>

#include "e2e/control.h"
#include "base/wire.h"

size_t e2e_ctl_map_size(const struct e2e_ctl_map *map)
{
	size_t n = 2;

	if (!map || !map->rules || map->nrules == 0 || map->nrules > 65535U)
		return 0;
	for (uint32_t i = 0; i < map->nrules; i++) {
		if (map->rules[i].filter_len > 65535U ||
		    !e2e_topic_filter_valid(map->rules[i].filter, map->rules[i].filter_len))
			return 0;
		n += 3U + map->rules[i].filter_len;
	}
	return n;
}

/* The map after the keys: u32 interval || u64 refresh from || u64 refresh by ||
 * u16 r || r x (scope, str16 filter), r >= 1, every filter a valid MQTT
 * filter, consumed exactly. */
static enum e2e_status parse_map(struct e2e_ctl *m, struct e2e_rd *r)
{
	m->summary_interval_ms = e2e_rd_u32(r);
	m->refresh_from_ms = e2e_rd_u64(r);
	m->refresh_by_ms = e2e_rd_u64(r);
	m->nrules = (uint16_t)((unsigned)e2e_rd_u8(r) << 8);
	m->nrules = (uint16_t)(m->nrules | e2e_rd_u8(r));
	if (r->bad || m->nrules == 0)
		return E2E_ERR_MALFORMED;
	m->rules = r->p + r->off;
	m->rules_len = e2e_rd_left(r);
	for (uint32_t i = 0; i < m->nrules; i++) {
		const uint8_t *f;
		size_t fl;

		(void)e2e_rd_u8(r);
		fl = (size_t)e2e_rd_u8(r) << 8;
		fl |= e2e_rd_u8(r);
		f = e2e_rd_skip(r, fl);
		if (!f || !e2e_topic_filter_valid((const char *)f, fl))
			return E2E_ERR_MALFORMED;
	}
	return r->bad || e2e_rd_left(r) != 0 ? E2E_ERR_MALFORMED : E2E_OK;
}

void e2e_ctl_rules_init(struct e2e_ctl_rule_iter *it, const struct e2e_ctl *m)
{
	it->p = m->rules;
	it->len = m->rules_len;
	it->off = 0;
	it->left = m->type == E2E_CTL_DELIVERY && m->rules ? m->nrules : 0;
}

int e2e_ctl_rule_next(struct e2e_ctl_rule_iter *it, struct e2e_scope_rule *rule)
{
	struct e2e_rd r;

	if (it->left == 0)
		return 0;
	e2e_rd_init(&r, it->p + it->off, it->len - it->off);
	rule->scope = e2e_rd_u8(&r);
	rule->filter_len = (size_t)e2e_rd_u8(&r) << 8;
	rule->filter_len |= e2e_rd_u8(&r);
	rule->filter = (const char *)e2e_rd_skip(&r, rule->filter_len);
	it->off += r.off;
	it->left--;
	return !r.bad;
}

enum e2e_status e2e_ctl_open_delivery(struct e2e_ctl *m, const uint8_t eph_pk[E2E_DH_BYTES],
	const uint8_t eph_sk[E2E_DH_BYTES], uint8_t *plain, size_t plain_cap)
{
	size_t plen = 0;
	struct e2e_rd r;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!m || m->type != E2E_CTL_DELIVERY || !m->sealed || !eph_pk || !eph_sk || !plain ||
	    m->sealed_len < crypto_box_SEALBYTES)
		goto out;
	plen = m->sealed_len - crypto_box_SEALBYTES;
	ret = E2E_ERR_BUFFER;
	if (plain_cap < plen)
		goto out;
	ret = E2E_ERR_AUTH;
	if (crypto_box_seal_open(plain, m->sealed, m->sealed_len, eph_pk, eph_sk) != 0)
		goto out;
	e2e_rd_init(&r, plain, plen);
	m->nkeys = e2e_rd_u8(&r);
	ret = E2E_ERR_MALFORMED;
	if (m->nkeys > E2E_CTL_KEYS_MAX)
		goto out;
	for (uint8_t i = 0; i < m->nkeys; i++) {
		m->keys[i].scope = e2e_rd_u8(&r);
		m->keys[i].epoch = e2e_rd_u32(&r);
		m->keys[i].not_after_ms = e2e_rd_u64(&r);
		m->keys[i].flags = e2e_rd_u8(&r);
		e2e_rd_bytes(&r, m->keys[i].key, E2E_KEY_BYTES);
		if (m->keys[i].flags & ~(E2E_KEY_SIGNED | E2E_KEY_NEXT))
			goto out;   /* SPEC 11.2: other bits MUST be 0 */
	}
	if (r.bad)
		goto out;
	ret = parse_map(m, &r);
out:
	if (ret != E2E_OK && m && ret != E2E_ERR_ARG) {
		if (plen && ret != E2E_ERR_BUFFER)
			sodium_memzero(plain, plen);
		sodium_memzero(m->keys, sizeof m->keys);
		m->nkeys = 0;
		m->nrules = 0;
		m->rules = NULL;
		m->rules_len = 0;
	}
	return ret;
}
