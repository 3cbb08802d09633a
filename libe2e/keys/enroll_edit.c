/*
 * Lookup, editing and saving of peer lists; see e2e/enroll.h. Saving
 * rewrites the whole file from the array, in its order.
 */
#include <sodium.h>
#include <string.h>

#include "e2e/enroll.h"
#include "keys/enroll_impl.h"
#include "state/textfile.h"

enum e2e_enroll_kind e2e_enroll_kind(const struct e2e_enroll *en)
{
	return en ? en->kind : E2E_ENROLL_SENDER;
}

uint32_t e2e_enroll_count(const struct e2e_enroll *en)
{
	return en ? en->count : 0;
}

const struct e2e_enroll_entry *e2e_enroll_at(const struct e2e_enroll *en, uint32_t i)
{
	return en && i < en->count ? &en->e[i] : NULL;
}

static int bitmap_empty(const uint8_t bm[E2E_SCOPE_BITMAP_BYTES])
{
	uint8_t any = 0;

	for (size_t i = 0; i < E2E_SCOPE_BITMAP_BYTES; i++)
		any |= bm[i];
	return any == 0;
}

static struct e2e_enroll_entry *find_name(const struct e2e_enroll *en, const char *name)
{
	for (uint32_t i = 0; i < en->count; i++)
		if (!en->e[i].revoked && strcmp(en->e[i].name, name) == 0)
			return &en->e[i];
	return NULL;
}

const struct e2e_enroll_entry *e2e_enroll_find_name(const struct e2e_enroll *en,
	const char *name)
{
	return en && name ? find_name(en, name) : NULL;
}

int e2e_enroll_allows(const struct e2e_enroll_entry *e, uint8_t scope)
{
	return e && !e->revoked && e2e_scope_bitmap_has(e->scopes, scope);
}

enum e2e_status e2e_enroll_add(struct e2e_enroll *en, const char *name,
	const struct e2e_public *pub, const uint8_t *scopes)
{
	struct e2e_enroll_entry *e;
	size_t nl;

	/* An entry without scopes could not be written back: refuse it here. */
	if (!en || !name || !pub ||
	    (en->kind == E2E_ENROLL_SENDER && (!scopes || bitmap_empty(scopes))))
		return E2E_ERR_ARG;
	nl = strlen(name);
	if (!e2e_peer_name_valid(name, nl) ||
	    (en->kind == E2E_ENROLL_SENDER && strcmp(name, "revoked") == 0))
		return E2E_ERR_ARG;
	if (find_name(en, name) || e2e_enroll_find_key(en, pub->sign_pk))
		return E2E_ERR_EXISTS;
	if (en->count == en->cap)
		return E2E_ERR_FULL;
	e = &en->e[en->count];
	memset(e, 0, sizeof *e);
	memcpy(e->name, name, nl + 1);
	e->pub = *pub;
	if (en->kind == E2E_ENROLL_SENDER)
		memcpy(e->scopes, scopes, E2E_SCOPE_BITMAP_BYTES);
	e2e_enroll_index_add(en, en->count++);
	return E2E_OK;
}

enum e2e_status e2e_enroll_set_scopes(struct e2e_enroll *en, const char *name,
	const uint8_t scopes[E2E_SCOPE_BITMAP_BYTES])
{
	struct e2e_enroll_entry *e;

	if (!en || !name || !scopes || en->kind != E2E_ENROLL_SENDER || bitmap_empty(scopes))
		return E2E_ERR_ARG;
	e = find_name(en, name);
	if (!e)
		return E2E_ERR_NOT_FOUND;
	memcpy(e->scopes, scopes, E2E_SCOPE_BITMAP_BYTES);
	return E2E_OK;
}

enum e2e_status e2e_enroll_remove(struct e2e_enroll *en, const char *name)
{
	struct e2e_enroll_entry *e;
	size_t i;

	if (!en || !name)
		return E2E_ERR_ARG;
	e = find_name(en, name);
	if (!e)
		return E2E_ERR_NOT_FOUND;
	i = (size_t)(e - en->e);
	/* memmove keeps file order, which operators rely on when diffing. */
	memmove(e, e + 1, (en->count - i - 1) * sizeof *e);
	en->count--;
	e2e_enroll_index_rebuild(en);
	return E2E_OK;
}

enum e2e_status e2e_enroll_revoke(struct e2e_enroll *en, const char *name,
	uint8_t held[E2E_SCOPE_BITMAP_BYTES])
{
	struct e2e_enroll_entry *e;

	if (!en || !name || en->kind != E2E_ENROLL_SENDER)
		return E2E_ERR_ARG;
	e = find_name(en, name);
	if (!e)
		return E2E_ERR_NOT_FOUND;
	if (held)
		memcpy(held, e->scopes, E2E_SCOPE_BITMAP_BYTES);
	memset(e->scopes, 0, sizeof e->scopes);
	e->revoked = 1;
	return E2E_OK;
}

struct save_ctx {
	const struct e2e_enroll *en;
	const struct e2e_scopes *scopes;
};

static void emit(struct e2e_textbuf *b, const void *arg)
{
	const struct save_ctx *c = arg;
	char pub[E2E_PUBLINE_MIN];

	if (c->en->kind == E2E_ENROLL_TRUST)
		e2e_textbuf_add(b, "# mqtt-e2e trusted senders (e2e-keytool rewrites this file)\n"
			"# <name> e2e1 <public key>\n");
	else
		e2e_textbuf_add(b, "# mqtt-e2e enrolled subscribers (e2e-keytool rewrites this file)\n"
			"# <name> <scope>[,<scope>...] e2e1 <public key>\n"
			"# revoked <name> e2e1 <public key>\n");
	for (uint32_t i = 0; i < c->en->count; i++) {
		const struct e2e_enroll_entry *e = &c->en->e[i];
		const char *sep = " ";

		if (e2e_public_format(pub, sizeof pub, &e->pub, NULL) != E2E_OK) {
			b->bad = 1;
			return;
		}
		e2e_textbuf_add(b, "%s%s", e->revoked ? "revoked " : "", e->name);
		for (uint32_t k = 0; c->en->kind == E2E_ENROLL_SENDER && k < E2E_SCOPES_MAX; k++) {
			if (!e2e_scope_bitmap_has(e->scopes, (uint8_t)k))
				continue;
			e2e_textbuf_add(b, "%s%s", sep, e2e_scopes_get(c->scopes, (uint8_t)k)->name);
			sep = ",";
		}
		e2e_textbuf_add(b, " %s\n", pub);
	}
}

enum e2e_status e2e_enroll_save(const struct e2e_enroll *en, const struct e2e_scopes *scopes,
	const char *path)
{
	struct save_ctx c = { en, scopes };

	if (!en || !path || (en->kind == E2E_ENROLL_SENDER && !scopes))
		return E2E_ERR_ARG;
	/* Every scope bit must have a name before anything is written. */
	for (uint32_t i = 0; en->kind == E2E_ENROLL_SENDER && i < en->count; i++)
		for (uint32_t k = 0; k < E2E_SCOPES_MAX; k++)
			if (e2e_scope_bitmap_has(en->e[i].scopes, (uint8_t)k) &&
			    !e2e_scopes_get(scopes, (uint8_t)k))
				return E2E_ERR_NOT_FOUND;
	return e2e_text_save(path, emit, &c);
}
