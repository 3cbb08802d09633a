/*
 * The `enrolled` and `trust` files: parsing and loading; see e2e/enroll.h.
 * Entries live in one array sized at load time (enroll_edit.c changes and
 * saves it).
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/enroll.h"
#include "keys/enroll_impl.h"
#include "state/fileio.h"
#include "state/textfile.h"

#define PEER_PUNCT "._@-"
#define PUB_TAG "e2e1"
#define PUB_B64 88U   /* base64 of the 64-byte public key */


int e2e_peer_name_valid(const char *name, size_t len)
{
	return e2e_name_ok(name, len, E2E_NAME_MAX, 1, PEER_PUNCT);
}

void e2e_scope_bitmap_set(uint8_t bm[E2E_SCOPE_BITMAP_BYTES], uint8_t scope)
{
	bm[scope >> 3] = (uint8_t)(bm[scope >> 3] | (1U << (scope & 7U)));
}

int e2e_scope_bitmap_has(const uint8_t bm[E2E_SCOPE_BITMAP_BYTES], uint8_t scope)
{
	return (int)(((unsigned)bm[scope >> 3] >> (scope & 7U)) & 1U);
}

/* "e2e1" <base64> as two fields: reuse the one public-line parser. */
static int parse_pub(const struct e2e_field *f, struct e2e_public *pub)
{
	char line[sizeof PUB_TAG + PUB_B64 + 1];

	if (!e2e_field_is(&f[0], PUB_TAG) || f[1].len != PUB_B64)
		return 0;
	memcpy(line, PUB_TAG " ", sizeof PUB_TAG);
	memcpy(line + sizeof PUB_TAG, f[1].p, PUB_B64);
	line[sizeof PUB_TAG + PUB_B64] = '\0';
	return e2e_public_parse(pub, NULL, 0, line) == E2E_OK;
}

/* "a,b,c" -> bitmap; every name must be a scope of @p scopes. */
static enum e2e_status parse_scope_list(struct e2e_text *t, const struct e2e_scopes *scopes,
	const struct e2e_field *f, uint8_t bm[E2E_SCOPE_BITMAP_BYTES])
{
	size_t i = 0;

	while (i <= f->len) {
		const char *comma = memchr(f->p + i, ',', f->len - i);
		size_t end = comma ? (size_t)(comma - f->p) : f->len;
		uint8_t id;

		if (end == i)
			return e2e_text_fail(t, E2E_ERR_MALFORMED, "empty scope name in list");
		if (e2e_scopes_id(scopes, f->p + i, end - i, &id) != E2E_OK)
			return e2e_text_fail(t, E2E_ERR_MALFORMED, "unknown scope '%.*s'",
				(int)(end - i > 32 ? 32 : end - i), f->p + i);
		e2e_scope_bitmap_set(bm, id);
		i = end + 1;
	}
	return E2E_OK;
}

static enum e2e_status parse_entry(struct e2e_enroll *en, struct e2e_text *t,
	const struct e2e_scopes *scopes, const struct e2e_field *f, size_t n)
{
	struct e2e_enroll_entry *e = &en->e[en->count];
	const struct e2e_field *name = &f[0], *key = &f[1];
	enum e2e_status ret;
	size_t want = en->kind == E2E_ENROLL_TRUST ? 3 : 4;

	memset(e, 0, sizeof *e);
	e->line = t->line;
	if (n != want)
		return e2e_text_fail(t, E2E_ERR_MALFORMED, en->kind == E2E_ENROLL_TRUST ?
			"expected: <name> e2e1 <public key>" :
			"expected: <name> <scope>[,<scope>...] e2e1 <public key>");
	if (en->kind == E2E_ENROLL_SENDER) {
		e->revoked = e2e_field_is(&f[0], "revoked") ? 1 : 0;
		name = &f[e->revoked ? 1 : 0];
		key = &f[2];
	}
	if (!e2e_peer_name_valid(name->p, name->len) ||
	    (en->kind == E2E_ENROLL_SENDER && e2e_field_is(name, "revoked")))
		return e2e_text_fail(t, E2E_ERR_MALFORMED, "name must match [A-Za-z0-9._@-]{1,64}");
	(void)e2e_field_copy(name, e->name, sizeof e->name);
	if (!parse_pub(key, &e->pub))
		return e2e_text_fail(t, E2E_ERR_MALFORMED, "bad public key (want: e2e1 <base64>)");
	if (en->kind == E2E_ENROLL_SENDER && !e->revoked) {
		ret = parse_scope_list(t, scopes, &f[1], e->scopes);
		if (ret != E2E_OK)
			return ret;
	}
	e2e_enroll_index_add(en, en->count++);
	return E2E_OK;
}

static int cmp_key(const void *a, const void *b)
{
	const struct e2e_enroll_entry *x = *(const struct e2e_enroll_entry *const *)a;
	const struct e2e_enroll_entry *y = *(const struct e2e_enroll_entry *const *)b;
	int c = memcmp(x->pub.sign_pk, y->pub.sign_pk, E2E_SIGN_PK_BYTES);

	return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int cmp_name(const void *a, const void *b)
{
	const struct e2e_enroll_entry *x = *(const struct e2e_enroll_entry *const *)a;
	const struct e2e_enroll_entry *y = *(const struct e2e_enroll_entry *const *)b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x->line > y->line) - (x->line < y->line);
}

/*
 * Duplicate keys (anywhere) and duplicate active names, found by sorting
 * so that a file at the 65536-entry limit does not take n^2 comparisons.
 */
static enum e2e_status check_unique(const struct e2e_enroll *en, struct e2e_text *t)
{
	const struct e2e_enroll_entry **v = calloc(en->count ? en->count : 1, sizeof *v);
	enum e2e_status ret = E2E_ERR_NOMEM;
	uint32_t n = 0;

	if (!v)
		goto out;
	for (uint32_t i = 0; i < en->count; i++)
		v[i] = &en->e[i];
	qsort(v, en->count, sizeof *v, cmp_key);
	ret = E2E_ERR_EXISTS;
	for (uint32_t i = 1; i < en->count; i++) {
		if (memcmp(v[i - 1]->pub.sign_pk, v[i]->pub.sign_pk, E2E_SIGN_PK_BYTES) == 0) {
			t->line = v[i]->line;
			(void)e2e_text_fail(t, ret, "public key already listed on line %u",
				(unsigned)v[i - 1]->line);
			goto out;
		}
	}
	for (uint32_t i = 0; i < en->count; i++)
		if (!en->e[i].revoked)
			v[n++] = &en->e[i];
	qsort(v, n, sizeof *v, cmp_name);
	for (uint32_t i = 1; i < n; i++) {
		if (strcmp(v[i - 1]->name, v[i]->name) == 0) {
			t->line = v[i]->line;
			(void)e2e_text_fail(t, ret, "name '%s' already on line %u", v[i]->name,
				(unsigned)v[i - 1]->line);
			goto out;
		}
	}
	ret = E2E_OK;
out:
	free(v);
	return ret;
}

static enum e2e_status create(struct e2e_enroll **out, enum e2e_enroll_kind kind,
	uint64_t cap)
{
	struct e2e_enroll *en = calloc(1, sizeof *en);
	uint32_t slots = 4;

	if (cap > E2E_ENROLL_MAX)
		cap = E2E_ENROLL_MAX;
	while (slots < 2 * cap)
		slots *= 2;
	if (en) {
		en->e = calloc(cap ? cap : 1, sizeof *en->e);
		en->slot = calloc(slots, sizeof *en->slot);
	}
	if (!en || !en->e || !en->slot) {
		e2e_enroll_free(en);
		return E2E_ERR_NOMEM;
	}
	en->kind = kind;
	en->cap = (uint32_t)cap;
	en->mask = slots - 1;
	*out = en;
	return E2E_OK;
}

static uint32_t key_hash(const uint8_t sign_pk[E2E_SIGN_PK_BYTES])
{
	uint32_t h;

	/* Ed25519 public keys are uniform enough to index by their bytes. */
	memcpy(&h, sign_pk, sizeof h);
	return h;
}

void e2e_enroll_index_add(struct e2e_enroll *en, uint32_t i)
{
	uint32_t h = key_hash(en->e[i].pub.sign_pk) & en->mask;

	while (en->slot[h])
		h = (h + 1) & en->mask;
	en->slot[h] = i + 1;
}

void e2e_enroll_index_rebuild(struct e2e_enroll *en)
{
	memset(en->slot, 0, ((size_t)en->mask + 1) * sizeof *en->slot);
	for (uint32_t i = 0; i < en->count; i++)
		e2e_enroll_index_add(en, i);
}

/*
 * Public keys are not secret: the probe sequence may depend on them (a
 * key service looks up every request's key before any cryptography, so the
 * cost must not grow with the list). Keys are compared with sodium_memcmp.
 */
const struct e2e_enroll_entry *e2e_enroll_find_key(const struct e2e_enroll *en,
	const uint8_t sign_pk[E2E_SIGN_PK_BYTES])
{
	uint32_t h;

	if (!en || !sign_pk)
		return NULL;
	for (h = key_hash(sign_pk) & en->mask; en->slot[h]; h = (h + 1) & en->mask) {
		const struct e2e_enroll_entry *e = &en->e[en->slot[h] - 1];

		if (sodium_memcmp(e->pub.sign_pk, sign_pk, E2E_SIGN_PK_BYTES) == 0)
			return e;
	}
	return NULL;
}

enum e2e_status e2e_enroll_parse(struct e2e_enroll **out, enum e2e_enroll_kind kind,
	const struct e2e_scopes *scopes, const char *buf, size_t len, const char *origin,
	uint32_t spare, char *err, size_t err_cap)
{
	struct e2e_enroll *en = NULL;
	struct e2e_text t;
	struct e2e_field f[5];
	enum e2e_status ret = E2E_ERR_ARG;
	uint64_t lines = 0;
	size_t n;

	if (!out || (!buf && len) || (kind != E2E_ENROLL_SENDER && kind != E2E_ENROLL_TRUST) ||
	    (kind == E2E_ENROLL_SENDER && !scopes))
		goto out;
	*out = NULL;
	/* Pass 1 counts entries, so the array is allocated exactly once. */
	e2e_text_init(&t, buf, len, origin, err, err_cap);
	while ((ret = e2e_text_next(&t, f, 5, &n)) == E2E_OK && n)
		lines++;
	if (ret != E2E_OK)
		goto out;
	if (lines > E2E_ENROLL_MAX) {
		ret = e2e_text_fail(&t, E2E_ERR_FULL, "more than %u entries", E2E_ENROLL_MAX);
		goto out;
	}
	ret = create(&en, kind, lines + spare);
	if (ret != E2E_OK)
		goto out;
	e2e_text_init(&t, buf, len, origin, err, err_cap);
	while ((ret = e2e_text_next(&t, f, 5, &n)) == E2E_OK && n) {
		ret = parse_entry(en, &t, scopes, f, n);
		if (ret != E2E_OK)
			goto out;
	}
	if (ret == E2E_OK)
		ret = check_unique(en, &t);
out:
	if (ret == E2E_OK)
		*out = en;
	else
		e2e_enroll_free(en);
	return ret;
}

enum e2e_status e2e_enroll_load(struct e2e_enroll **out, enum e2e_enroll_kind kind,
	const struct e2e_scopes *scopes, const char *path, uint32_t spare,
	char *err, size_t err_cap)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!out || !path)
		goto out;
	*out = NULL;
	/* No file yet: nobody enrolled or trusted, an empty list. */
	ret = e2e_text_read(path, 0, &buf, &len, err, err_cap);
	if (ret != E2E_OK)
		goto out;
	ret = e2e_enroll_parse(out, kind, scopes, (const char *)buf, len, path, spare,
		err, err_cap);
out:
	e2e_file_free(buf, len);
	return ret;
}

void e2e_enroll_free(struct e2e_enroll *en)
{
	if (!en)
		return;
	free(en->e);
	free(en->slot);
	free(en);
}
