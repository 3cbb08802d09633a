/*
 * The authority's ticket records, file `tickets` (protocol/SPEC.md 14.2):
 *   ticket <id hex> <secret hex> <expires_ms> <uses_left> <scope,scope,...>
 *   used <id hex> <req_hash hex> <credential base64>
 * Secret (the ticket secrets redeem tickets): mode 0600, written atomically.
 * A `used` line records one redemption and the credential granted, so a
 * replayed REDEEM is answered again without consuming a second use.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/ticket.h"
#include "state/fileio.h"
#include "state/textfile.h"

#define KEEP_EXPIRED_MS (24ULL * 3600 * 1000)
#define TICKETS_MAX 100000U
#define USES_MAX 100000U

void e2e_tickets_free(struct e2e_tickets *ts)
{
	if (!ts)
		return;
	for (uint32_t i = 0; i < ts->n; i++) {
		if (ts->t[i].used) {
			sodium_memzero(ts->t[i].used, ts->t[i].nused * sizeof *ts->t[i].used);
			free(ts->t[i].used);
		}
	}
	if (ts->t) {
		sodium_memzero(ts->t, ts->n * sizeof *ts->t);
		free(ts->t);
	}
	memset(ts, 0, sizeof *ts);
}

static struct e2e_ticket *grow(struct e2e_tickets *ts)
{
	struct e2e_ticket *t;

	if (ts->n >= TICKETS_MAX)
		return NULL;
	/* calloc and copy rather than realloc: no stale copy of a secret is
	 * left behind in freed memory. */
	t = calloc(ts->n + 1, sizeof *t);
	if (!t)
		return NULL;
	if (ts->n) {
		memcpy(t, ts->t, ts->n * sizeof *t);
		sodium_memzero(ts->t, ts->n * sizeof *t);
	}
	free(ts->t);
	ts->t = t;
	return &ts->t[ts->n++];
}

struct e2e_ticket *e2e_tickets_find(struct e2e_tickets *ts, const uint8_t id[E2E_TICKET_ID_BYTES])
{
	if (!ts || !id)
		return NULL;
	for (uint32_t i = 0; i < ts->n; i++)
		if (sodium_memcmp(ts->t[i].id, id, E2E_TICKET_ID_BYTES) == 0)
			return &ts->t[i];
	return NULL;
}

const struct e2e_ticket_use *e2e_ticket_use_find(const struct e2e_ticket *t,
	const uint8_t req_hash[E2E_CTL_HASH_BYTES])
{
	if (!t || !req_hash)
		return NULL;
	for (uint32_t i = 0; i < t->nused; i++)
		if (memcmp(t->used[i].req_hash, req_hash, E2E_CTL_HASH_BYTES) == 0)
			return &t->used[i];
	return NULL;
}

static enum e2e_status add_use(struct e2e_ticket *t, const uint8_t req_hash[E2E_CTL_HASH_BYTES],
	const uint8_t *cred, size_t cred_len)
{
	struct e2e_ticket_use *u;

	if (cred_len == 0 || cred_len > E2E_TICKET_CRED_MAX || t->nused >= USES_MAX)
		return E2E_ERR_ARG;
	u = calloc(t->nused + 1, sizeof *u);
	if (!u)
		return E2E_ERR_NOMEM;
	if (t->nused)
		memcpy(u, t->used, t->nused * sizeof *u);
	free(t->used);
	t->used = u;
	u = &t->used[t->nused++];
	memcpy(u->req_hash, req_hash, E2E_CTL_HASH_BYTES);
	memcpy(u->cred, cred, cred_len);
	u->cred_len = (uint16_t)cred_len;
	return E2E_OK;
}

enum e2e_status e2e_ticket_consume(struct e2e_ticket *t,
	const uint8_t req_hash[E2E_CTL_HASH_BYTES], const uint8_t *cred, size_t cred_len)
{
	enum e2e_status ret;

	if (!t || !req_hash || !cred || t->uses_left == 0)
		return E2E_ERR_ARG;
	ret = add_use(t, req_hash, cred, cred_len);
	if (ret == E2E_OK)
		t->uses_left--;
	return ret;
}

static int hex_field(const struct e2e_field *f, uint8_t *out, size_t n)
{
	size_t got = 0;
	const char *end;

	return f->len == 2 * n && sodium_hex2bin(out, n, f->p, f->len, NULL, &got, &end) == 0 &&
		got == n && end == f->p + f->len;
}

static int scopes_field(const struct e2e_field *f, struct e2e_ticket *t)
{
	size_t i = 0;

	t->nscopes = 0;
	while (i < f->len) {
		unsigned v = 0;
		size_t start = i;

		while (i < f->len && f->p[i] >= '0' && f->p[i] <= '9' && i - start < 3)
			v = v * 10 + (unsigned)(f->p[i++] - '0');
		if (i == start || v > 255 || t->nscopes >= E2E_TICKET_SCOPES_MAX)
			return 0;
		t->scopes[t->nscopes++] = (uint8_t)v;
		if (i < f->len && f->p[i++] != ',')
			return 0;
		if (i == f->len && f->p[i - 1] == ',')
			return 0;
	}
	return t->nscopes > 0;
}

static enum e2e_status parse_ticket(struct e2e_tickets *ts, struct e2e_text *tx,
	const struct e2e_field *f, const uint8_t id[E2E_TICKET_ID_BYTES])
{
	struct e2e_ticket *t;
	uint64_t uses;

	if (e2e_tickets_find(ts, id))
		return e2e_text_fail(tx, E2E_ERR_CORRUPT, "ticket listed twice");
	t = grow(ts);
	if (!t)
		return e2e_text_fail(tx, E2E_ERR_NOMEM, "too many tickets");
	memcpy(t->id, id, E2E_TICKET_ID_BYTES);
	if (!hex_field(&f[2], t->secret, sizeof t->secret) ||
	    !e2e_field_uint(&f[3], UINT64_MAX, &t->expires_ms) ||
	    !e2e_field_uint(&f[4], USES_MAX, &uses) || !scopes_field(&f[5], t))
		return e2e_text_fail(tx, E2E_ERR_CORRUPT, "bad ticket line");
	t->uses_left = (uint32_t)uses;
	return E2E_OK;
}

static enum e2e_status parse_used(struct e2e_tickets *ts, struct e2e_text *tx,
	const struct e2e_field *f, const uint8_t id[E2E_TICKET_ID_BYTES])
{
	struct e2e_ticket *t = e2e_tickets_find(ts, id);
	uint8_t h[E2E_CTL_HASH_BYTES], cred[E2E_TICKET_CRED_MAX];
	size_t cl = 0;
	const char *end = NULL;
	enum e2e_status ret = E2E_OK;

	if (!t || !hex_field(&f[2], h, sizeof h) ||
	    sodium_base642bin(cred, sizeof cred, f[3].p, f[3].len, NULL, &cl, &end,
		    sodium_base64_VARIANT_ORIGINAL) != 0 || end != f[3].p + f[3].len ||
	    cl == 0 || add_use(t, h, cred, cl) != E2E_OK)
		ret = e2e_text_fail(tx, E2E_ERR_CORRUPT, "bad used line (ticket listed before?)");
	sodium_memzero(cred, sizeof cred);
	return ret;
}

static enum e2e_status parse(struct e2e_tickets *ts, const char *buf, size_t len,
	const char *origin, char *err, size_t err_cap)
{
	struct e2e_text tx;
	struct e2e_field f[6];
	size_t n;
	enum e2e_status ret;

	e2e_text_init(&tx, buf, len, origin, err, err_cap);
	while ((ret = e2e_text_next(&tx, f, 6, &n)) == E2E_OK && n) {
		uint8_t id[E2E_TICKET_ID_BYTES];

		if (n < 2 || !hex_field(&f[1], id, sizeof id))
			return e2e_text_fail(&tx, E2E_ERR_CORRUPT, "bad ticket id");
		if (n == 6 && e2e_field_is(&f[0], "ticket"))
			ret = parse_ticket(ts, &tx, f, id);
		else if (n == 4 && e2e_field_is(&f[0], "used"))
			ret = parse_used(ts, &tx, f, id);
		else
			ret = e2e_text_fail(&tx, E2E_ERR_CORRUPT, "want 'ticket ID SECRET EXPIRES "
				"USES SCOPES' or 'used ID HASH CREDENTIAL'");
		if (ret != E2E_OK)
			return ret;
	}
	return ret;
}

enum e2e_status e2e_tickets_load(struct e2e_tickets *ts, const char *path, char *err,
	size_t err_cap)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	enum e2e_status ret;

	if (!ts || !path)
		return E2E_ERR_ARG;
	memset(ts, 0, sizeof *ts);
	ret = e2e_text_read(path, 1, &buf, &len, err, err_cap);
	if (ret == E2E_OK && buf)
		ret = parse(ts, (const char *)buf, len, path, err, err_cap);
	if (buf)
		e2e_file_free(buf, len);
	if (ret != E2E_OK)
		e2e_tickets_free(ts);
	return ret;
}

static void emit(struct e2e_textbuf *b, const void *ctx)
{
	const struct e2e_tickets *ts = ctx;

	e2e_textbuf_add(b, "# e2e-keytool ticket records (SPEC 14.2). Secret: mode 0600.\n");
	for (uint32_t i = 0; i < ts->n; i++) {
		const struct e2e_ticket *t = &ts->t[i];
		char id[2 * E2E_TICKET_ID_BYTES + 1], sec[2 * E2E_TICKET_SECRET_BYTES + 1];

		sodium_bin2hex(id, sizeof id, t->id, sizeof t->id);
		sodium_bin2hex(sec, sizeof sec, t->secret, sizeof t->secret);
		e2e_textbuf_add(b, "ticket %s %s %llu %u ", id, sec,
			(unsigned long long)t->expires_ms, t->uses_left);
		for (uint8_t s = 0; s < t->nscopes; s++)
			e2e_textbuf_add(b, "%s%u", s ? "," : "", t->scopes[s]);
		e2e_textbuf_add(b, "\n");
		sodium_memzero(sec, sizeof sec);
		for (uint32_t u = 0; u < t->nused; u++) {
			char h[2 * E2E_CTL_HASH_BYTES + 1];
			char c[sodium_base64_ENCODED_LEN(E2E_TICKET_CRED_MAX,
				sodium_base64_VARIANT_ORIGINAL)];

			sodium_bin2hex(h, sizeof h, t->used[u].req_hash, E2E_CTL_HASH_BYTES);
			sodium_bin2base64(c, sizeof c, t->used[u].cred, t->used[u].cred_len,
				sodium_base64_VARIANT_ORIGINAL);
			e2e_textbuf_add(b, "used %s %s %s\n", id, h, c);
		}
	}
}

enum e2e_status e2e_tickets_save(const struct e2e_tickets *ts, const char *path)
{
	if (!ts || !path)
		return E2E_ERR_ARG;
	return e2e_text_save(path, emit, ts);
}

enum e2e_status e2e_tickets_add(struct e2e_tickets *ts, const uint8_t *scopes, uint8_t nscopes,
	uint64_t expires_ms, uint32_t uses, uint64_t now_ms, const struct e2e_ticket **out)
{
	struct e2e_ticket *t;
	uint32_t k = 0;

	if (!ts || !scopes || !out || nscopes == 0 || nscopes > E2E_TICKET_SCOPES_MAX ||
	    uses == 0 || uses > USES_MAX || expires_ms <= now_ms)
		return E2E_ERR_ARG;
	/* Drop records that expired more than a day ago: the file stays small,
	 * and a day is long enough to answer a late replay of a redemption. */
	for (uint32_t i = 0; i < ts->n; i++) {
		if (ts->t[i].expires_ms + KEEP_EXPIRED_MS < now_ms) {
			if (ts->t[i].used) {
				sodium_memzero(ts->t[i].used, ts->t[i].nused * sizeof *ts->t[i].used);
				free(ts->t[i].used);
			}
			sodium_memzero(&ts->t[i], sizeof ts->t[i]);
			continue;
		}
		if (k != i) {
			ts->t[k] = ts->t[i];
			sodium_memzero(&ts->t[i], sizeof ts->t[i]);
		}
		k++;
	}
	ts->n = k;
	t = grow(ts);
	if (!t)
		return E2E_ERR_FULL;
	do
		randombytes_buf(t->id, sizeof t->id);
	while (ts->n > 1 && e2e_tickets_find(ts, t->id) != t);
	randombytes_buf(t->secret, sizeof t->secret);
	t->expires_ms = expires_ms;
	t->uses_left = uses;
	t->nscopes = nscopes;
	memcpy(t->scopes, scopes, nscopes);
	*out = t;
	return E2E_OK;
}
