/*
 * The sender's secret `keys` file; see e2e/keystore.h. Keys are decoded
 * straight into sodium_malloc memory and never pass through a plain stack
 * buffer that outlives the call.
 */
#include <sodium.h>
#include <string.h>

#include "e2e/keystore.h"
#include "state/fileio.h"
#include "state/textfile.h"
#include "keys/keystore_copy.h"

#define KEY_FIELDS 6U

struct e2e_keystore {
	uint32_t count;
	uint32_t cap;
	struct e2e_keystore_entry *e;   /* sodium_allocarray */
	uint32_t floor[256];            /* epochs known used (txstate) per scope */
};

enum e2e_status e2e_keystore_create(struct e2e_keystore **out, uint32_t capacity)
{
	struct e2e_keystore *ks = NULL;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!out || capacity == 0 || capacity > E2E_KEYSTORE_MAX)
		goto out;
	*out = NULL;
	ret = E2E_ERR_CRYPTO;
	if (sodium_init() < 0)
		goto out;
	ret = E2E_ERR_NOMEM;
	ks = sodium_malloc(sizeof *ks);
	if (!ks)
		goto out;
	/* sodium_malloc fills with garbage on purpose: start from zero. */
	sodium_memzero(ks, sizeof *ks);
	ks->e = sodium_allocarray(capacity, sizeof *ks->e);
	if (!ks->e) {
		sodium_free(ks);
		goto out;
	}
	sodium_memzero(ks->e, (size_t)capacity * sizeof *ks->e);
	ks->cap = capacity;
	ks->count = 0;
	*out = ks;
	ret = E2E_OK;
out:
	return ret;
}

void e2e_keystore_free(struct e2e_keystore *ks)
{
	if (!ks)
		return;
	sodium_free(ks->e);   /* zeroes before unmapping */
	sodium_free(ks);
}

/* The same capacity, so a copy grows exactly as the original would. */
enum e2e_status e2e_keystore_copy(struct e2e_keystore **out, const struct e2e_keystore *ks)
{
	enum e2e_status st;

	if (!out || !ks)
		return E2E_ERR_ARG;
	st = e2e_keystore_create(out, ks->cap);
	if (st != E2E_OK)
		return st;
	memcpy((*out)->e, ks->e, (size_t)ks->count * sizeof *ks->e);
	memcpy((*out)->floor, ks->floor, sizeof ks->floor);
	(*out)->count = ks->count;
	return E2E_OK;
}

static int id_cmp(uint8_t sa, uint32_t ea, uint8_t sb, uint32_t eb)
{
	if (sa != sb)
		return sa < sb ? -1 : 1;
	return ea == eb ? 0 : ea < eb ? -1 : 1;
}

/* Index where (scope, epoch) is or would be inserted. */
static uint32_t position(const struct e2e_keystore *ks, uint8_t scope, uint32_t epoch)
{
	uint32_t i = 0;

	while (i < ks->count && id_cmp(ks->e[i].scope, ks->e[i].epoch, scope, epoch) < 0)
		i++;
	return i;
}

/* Open a zeroed slot for (scope, epoch) keeping the order; NULL if taken or full. */
static struct e2e_keystore_entry *insert(struct e2e_keystore *ks, uint8_t scope,
	uint32_t epoch, enum e2e_status *st)
{
	uint32_t i = position(ks, scope, epoch);
	struct e2e_keystore_entry *e = &ks->e[i];

	*st = E2E_ERR_EXISTS;
	if (i < ks->count && e->scope == scope && e->epoch == epoch)
		return NULL;
	*st = E2E_ERR_FULL;
	if (ks->count == ks->cap)
		return NULL;
	memmove(e + 1, e, (ks->count - i) * sizeof *e);
	sodium_memzero(e, sizeof *e);
	e->scope = scope;
	e->epoch = epoch;
	ks->count++;
	*st = E2E_OK;
	return e;
}

/* Close the gap at @p i and wipe the slot that falls off the end. */
static void remove_at(struct e2e_keystore *ks, uint32_t i)
{
	memmove(&ks->e[i], &ks->e[i + 1], (ks->count - i - 1) * sizeof *ks->e);
	ks->count--;
	sodium_memzero(&ks->e[ks->count], sizeof *ks->e);
}

/*
 * Check value of a key line: 32 bits of BLAKE2b over what the line says, so
 * a flipped bit in the base64 key (still valid base64) is a clear error, not
 * a different key silently used under the same epoch.
 */
static uint32_t key_check(uint8_t scope, uint32_t epoch, const uint8_t key[E2E_KEY_BYTES])
{
	static const char ctx[] = "mqtt-e2e/v1/key-check";
	crypto_generichash_state st;
	uint8_t id[5] = { scope, (uint8_t)(epoch >> 24), (uint8_t)(epoch >> 16),
		(uint8_t)(epoch >> 8), (uint8_t)epoch };
	uint8_t h[4];

	crypto_generichash_init(&st, NULL, 0, sizeof h);
	crypto_generichash_update(&st, (const uint8_t *)ctx, sizeof ctx - 1);
	crypto_generichash_update(&st, id, sizeof id);
	crypto_generichash_update(&st, key, E2E_KEY_BYTES);
	crypto_generichash_final(&st, h, sizeof h);
	return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

static enum e2e_status parse_line(struct e2e_keystore *ks, struct e2e_text *t,
	const struct e2e_field *f, size_t n)
{
	char want[9];
	struct e2e_keystore_entry *e;
	uint64_t scope, epoch, created, not_after;
	enum e2e_status st;
	uint8_t flags = 0;
	int bad = 0;

	/* The 7th field (check value) is written by every version that has it;
	 * lines without it (older files) are accepted. Then "signed" marks a
	 * key made for a signed scope, "next" a key ahead of its rotation. */
	for (size_t i = KEY_FIELDS + 1; i < n; i++) {
		if (e2e_field_is(&f[i], "signed") && !(flags & E2E_KEYSTORE_SIGNED))
			flags |= E2E_KEYSTORE_SIGNED;
		else if (e2e_field_is(&f[i], "next") && !(flags & E2E_KEYSTORE_NEXT))
			flags |= E2E_KEYSTORE_NEXT;
		else
			bad = 1;
	}
	if (n < KEY_FIELDS || n > KEY_FIELDS + 3 || !e2e_field_is(&f[0], "key") || bad)
		return e2e_text_fail(t, E2E_ERR_MALFORMED,
			"expected: key <scope> <epoch> <created-ms> <not-after-ms> <base64 key> <check> "
			"[signed] [next]");
	if (!e2e_field_uint(&f[1], 255, &scope))
		return e2e_text_fail(t, E2E_ERR_MALFORMED, "scope must be 0..255");
	if (!e2e_field_uint(&f[2], UINT32_MAX, &epoch))
		return e2e_text_fail(t, E2E_ERR_MALFORMED, "epoch must be 0..4294967295");
	if (!e2e_field_uint(&f[3], UINT64_MAX, &created) ||
	    !e2e_field_uint(&f[4], UINT64_MAX, &not_after))
		return e2e_text_fail(t, E2E_ERR_MALFORMED, "times must be unix milliseconds");
	e = insert(ks, (uint8_t)scope, (uint32_t)epoch, &st);
	if (st == E2E_ERR_EXISTS)
		return e2e_text_fail(t, st, "scope %u epoch %u listed twice",
			(unsigned)scope, (unsigned)epoch);
	if (!e)
		return e2e_text_fail(t, st, "more than %u keys", (unsigned)ks->cap);
	e->created_ms = created;
	e->not_after_ms = not_after;
	e->flags = flags;
	if (!e2e_field_base64(&f[5], e->key, E2E_KEY_BYTES)) {
		remove_at(ks, (uint32_t)(e - ks->e));
		/* Say nothing about the key text itself: it is secret. */
		return e2e_text_fail(t, E2E_ERR_MALFORMED, "key is not base64 of 32 bytes");
	}
	snprintf(want, sizeof want, "%08x", key_check(e->scope, e->epoch, e->key));
	if (n > KEY_FIELDS && !e2e_field_is(&f[6], want)) {
		remove_at(ks, (uint32_t)(e - ks->e));
		return e2e_text_fail(t, E2E_ERR_CORRUPT,
			"check value does not match the key (the line is damaged)");
	}
	return E2E_OK;
}

enum e2e_status e2e_keystore_parse(struct e2e_keystore **out, const char *buf, size_t len,
	const char *origin, uint32_t spare, char *err, size_t err_cap)
{
	struct e2e_keystore *ks = NULL;
	struct e2e_text t;
	struct e2e_field f[KEY_FIELDS + 3];
	enum e2e_status ret = E2E_ERR_ARG;
	uint64_t lines = 0;
	size_t n;

	if (!out || (!buf && len))
		goto out;
	*out = NULL;
	/* Count first so the guarded array is allocated exactly once. */
	e2e_text_init(&t, buf, len, origin, err, err_cap);
	while ((ret = e2e_text_next(&t, f, KEY_FIELDS + 3, &n)) == E2E_OK && n)
		lines++;
	if (ret != E2E_OK)
		goto out;
	if (lines > E2E_KEYSTORE_MAX) {
		ret = e2e_text_fail(&t, E2E_ERR_FULL, "more than %u keys", E2E_KEYSTORE_MAX);
		goto out;
	}
	lines += spare;
	ret = e2e_keystore_create(&ks, (uint32_t)(lines == 0 ? 1 :
		lines > E2E_KEYSTORE_MAX ? E2E_KEYSTORE_MAX : lines));
	if (ret != E2E_OK)
		goto out;
	e2e_text_init(&t, buf, len, origin, err, err_cap);
	while ((ret = e2e_text_next(&t, f, KEY_FIELDS + 3, &n)) == E2E_OK && n) {
		ret = parse_line(ks, &t, f, n);
		if (ret != E2E_OK)
			break;
	}
out:
	if (ret == E2E_OK)
		*out = ks;
	else
		e2e_keystore_free(ks);
	return ret;
}

enum e2e_status e2e_keystore_load(struct e2e_keystore **out, const char *path, uint32_t spare,
	char *err, size_t err_cap)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!out || !path)
		goto out;
	*out = NULL;
	/* No file yet: an empty store, e2e_keystore_ensure creates the keys. */
	ret = e2e_text_read(path, 1, &buf, &len, err, err_cap);
	if (ret != E2E_OK)
		goto out;
	ret = e2e_keystore_parse(out, (const char *)buf, len, path, spare, err, err_cap);
out:
	e2e_file_free(buf, len);   /* zeroes the key text */
	return ret;
}

uint32_t e2e_keystore_count(const struct e2e_keystore *ks)
{
	return ks ? ks->count : 0;
}

const struct e2e_keystore_entry *e2e_keystore_at(const struct e2e_keystore *ks, uint32_t i)
{
	return ks && i < ks->count ? &ks->e[i] : NULL;
}

const struct e2e_keystore_entry *e2e_keystore_find(const struct e2e_keystore *ks,
	uint8_t scope, uint32_t epoch)
{
	uint32_t i;

	if (!ks)
		return NULL;
	i = position(ks, scope, epoch);
	return i < ks->count && ks->e[i].scope == scope && ks->e[i].epoch == epoch ?
		&ks->e[i] : NULL;
}

const struct e2e_keystore_entry *e2e_keystore_current(const struct e2e_keystore *ks,
	uint8_t scope)
{
	const struct e2e_keystore_entry *cur = NULL;

	/* Sorted by epoch within the scope: the last match is the highest. */
	for (uint32_t i = 0; ks && i < ks->count; i++)
		if (ks->e[i].scope == scope && ks->e[i].not_after_ms == 0 &&
		    !(ks->e[i].flags & E2E_KEYSTORE_NEXT))
			cur = &ks->e[i];
	return cur;
}

/* Highest epoch of @p scope; 0 if the scope has no key. */
static uint32_t highest(const struct e2e_keystore *ks, uint8_t scope, int *any)
{
	uint32_t top = 0;

	*any = 0;
	for (uint32_t i = 0; i < ks->count; i++) {
		if (ks->e[i].scope == scope) {
			top = ks->e[i].epoch;
			*any = 1;
		}
	}
	return top;
}

/*
 * Append a new epoch of @p scope with a fresh random key: max(highest
 * known + 1, Unix seconds now) (SPEC 6.4). The clock part is what keeps a
 * state directory restored from a backup from issuing again an epoch it
 * issued after that backup, with another key.
 */
static enum e2e_status add_next(struct e2e_keystore *ks, uint8_t scope, uint64_t now_ms,
	uint32_t *epoch)
{
	struct e2e_keystore_entry *e;
	enum e2e_status st;
	int any;
	uint32_t top = highest(ks, scope, &any), next;
	uint64_t now_s = now_ms / 1000U;

	/* A keys file that lost keys must not make us reissue their epochs. */
	if (ks->floor[scope] > top || (!any && ks->floor[scope])) {
		top = ks->floor[scope];
		any = 1;
	}
	/* Epochs never repeat: a reused epoch would reuse nonces. */
	if (any && top == UINT32_MAX)
		return E2E_ERR_EXHAUSTED;
	next = any ? top + 1 : 1;
	if (now_s > next)
		next = now_s > UINT32_MAX ? UINT32_MAX : (uint32_t)now_s;
	e = insert(ks, scope, next, &st);
	if (!e)
		return st;
	e->created_ms = now_ms;
	e->not_after_ms = 0;
	randombytes_buf(e->key, sizeof e->key);
	if (epoch)
		*epoch = e->epoch;
	return E2E_OK;
}

enum e2e_status e2e_keystore_set_flags(struct e2e_keystore *ks, uint8_t scope,
	uint32_t epoch, uint8_t flags)
{
	uint32_t i;

	if (!ks || (flags & ~(E2E_KEYSTORE_SIGNED | E2E_KEYSTORE_NEXT)))
		return E2E_ERR_ARG;
	i = position(ks, scope, epoch);
	if (i >= ks->count || ks->e[i].scope != scope || ks->e[i].epoch != epoch)
		return E2E_ERR_NOT_FOUND;
	ks->e[i].flags = flags;
	return E2E_OK;
}

void e2e_keystore_set_floor(struct e2e_keystore *ks, uint8_t scope, uint32_t epoch)
{
	if (ks && epoch > ks->floor[scope])
		ks->floor[scope] = epoch;
}

enum e2e_status e2e_keystore_ensure(struct e2e_keystore *ks, uint8_t scope, uint64_t now_ms,
	int *created)
{
	enum e2e_status ret;

	if (created)
		*created = 0;
	if (!ks)
		return E2E_ERR_ARG;
	if (e2e_keystore_current(ks, scope))
		return E2E_OK;
	/* A key made ahead takes the place of the missing current one. */
	ret = e2e_keystore_next(ks, scope) ? e2e_keystore_advance(ks, scope, now_ms, 0, NULL) :
		add_next(ks, scope, now_ms, NULL);
	if (ret == E2E_OK && created)
		*created = 1;
	return ret;
}

/* Remove (and zero) every key of @p scope made ahead of its rotation. */
static void drop_ahead(struct e2e_keystore *ks, uint8_t scope)
{
	uint32_t i = 0;

	while (i < ks->count) {
		if (ks->e[i].scope == scope && (ks->e[i].flags & E2E_KEYSTORE_NEXT))
			remove_at(ks, i);
		else
			i++;
	}
}

/* Every current key of @p scope but @p epoch gets @p deadline. */
static void retire_current(struct e2e_keystore *ks, uint8_t scope, uint32_t epoch,
	uint64_t deadline)
{
	for (uint32_t i = 0; i < ks->count; i++)
		if (ks->e[i].scope == scope && ks->e[i].epoch != epoch &&
		    ks->e[i].not_after_ms == 0 && !(ks->e[i].flags & E2E_KEYSTORE_NEXT))
			ks->e[i].not_after_ms = deadline;
}

enum e2e_status e2e_keystore_rotate(struct e2e_keystore *ks, uint8_t scope, uint64_t now_ms,
	uint64_t grace_ms, uint32_t *new_epoch)
{
	uint64_t deadline;
	uint32_t epoch = 0;
	enum e2e_status ret;

	if (!ks)
		return E2E_ERR_ARG;
	/* Saturate: a deadline that wraps to the past would expire the key now. */
	deadline = grace_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + grace_ms;
	/* 0 means "no deadline", so a retired key needs at least 1. */
	if (deadline == 0)
		deadline = 1;
	/* Above every key made ahead, which is then discarded (SPEC 11.5): a
	 * forced rotation (revocation, fewer scopes, sign mode) must not
	 * switch to a key its reason's subscriber already holds. */
	ret = add_next(ks, scope, now_ms, &epoch);
	if (ret != E2E_OK)
		return ret;
	drop_ahead(ks, scope);
	retire_current(ks, scope, epoch, deadline);
	if (new_epoch)
		*new_epoch = epoch;
	return E2E_OK;
}

const struct e2e_keystore_entry *e2e_keystore_next(const struct e2e_keystore *ks,
	uint8_t scope)
{
	for (uint32_t i = 0; ks && i < ks->count; i++)
		if (ks->e[i].scope == scope && (ks->e[i].flags & E2E_KEYSTORE_NEXT))
			return &ks->e[i];
	return NULL;
}

enum e2e_status e2e_keystore_add_ahead(struct e2e_keystore *ks, uint8_t scope,
	uint64_t now_ms, uint64_t from_ms, uint8_t flags, uint32_t *epoch)
{
	uint32_t e = 0;
	enum e2e_status ret;
	struct e2e_keystore_entry *k;

	if (!ks || (flags & ~E2E_KEYSTORE_SIGNED))
		return E2E_ERR_ARG;
	/* Above every epoch held, like any new key: never one issued before. */
	ret = add_next(ks, scope, now_ms, &e);
	if (ret != E2E_OK)
		return ret;
	k = &ks->e[position(ks, scope, e)];
	k->created_ms = from_ms;
	k->flags = (uint8_t)(flags | E2E_KEYSTORE_NEXT);
	if (epoch)
		*epoch = e;
	return E2E_OK;
}

enum e2e_status e2e_keystore_advance(struct e2e_keystore *ks, uint8_t scope, uint64_t now_ms,
	uint64_t grace_ms, uint32_t *new_epoch)
{
	struct e2e_keystore_entry *k;
	uint64_t deadline;

	if (!ks)
		return E2E_ERR_ARG;
	k = (struct e2e_keystore_entry *)e2e_keystore_next(ks, scope);
	if (!k)
		return e2e_keystore_rotate(ks, scope, now_ms, grace_ms, new_epoch);
	deadline = grace_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + grace_ms;
	retire_current(ks, scope, k->epoch, deadline ? deadline : 1);
	/* Its age counts from the announced time when it switches on time
	 * (no drift of the schedule), else from now. */
	if (k->created_ms == 0 || k->created_ms > now_ms)
		k->created_ms = now_ms;
	k->flags &= (uint8_t)~E2E_KEYSTORE_NEXT;
	if (new_epoch)
		*new_epoch = k->epoch;
	return E2E_OK;
}

uint32_t e2e_keystore_prune(struct e2e_keystore *ks, uint64_t now_ms)
{
	uint32_t removed = 0, i = 0;

	while (ks && i < ks->count) {
		if (ks->e[i].not_after_ms != 0 && ks->e[i].not_after_ms < now_ms) {
			remove_at(ks, i);
			removed++;
		} else {
			i++;
		}
	}
	return removed;
}

static void emit(struct e2e_textbuf *b, const void *arg)
{
	const struct e2e_keystore *ks = arg;
	char b64[sodium_base64_ENCODED_LEN(E2E_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL)];

	e2e_textbuf_add(b, "# mqtt-e2e payload keys: SECRET, keep mode 0600 (e2e-keytool rewrites this file)\n"
		"# key <scope> <epoch> <created-unix-ms> <not-after-unix-ms or 0> <base64 key> <check>"
		" [signed] [next]\n"
		"# (a \"next\" key is made ahead of its rotation: created = when it becomes current)\n");
	for (uint32_t i = 0; i < ks->count; i++) {
		const struct e2e_keystore_entry *e = &ks->e[i];

		sodium_bin2base64(b64, sizeof b64, e->key, sizeof e->key,
			sodium_base64_VARIANT_ORIGINAL);
		e2e_textbuf_add(b, "key %u %u %llu %llu %s %08x%s%s\n", (unsigned)e->scope,
			(unsigned)e->epoch, (unsigned long long)e->created_ms,
			(unsigned long long)e->not_after_ms, b64,
			(unsigned)key_check(e->scope, e->epoch, e->key),
			e->flags & E2E_KEYSTORE_SIGNED ? " signed" : "",
			e->flags & E2E_KEYSTORE_NEXT ? " next" : "");
	}
	sodium_memzero(b64, sizeof b64);
}

enum e2e_status e2e_keystore_save(const struct e2e_keystore *ks, const char *path)
{
	if (!ks || !path)
		return E2E_ERR_ARG;
	return e2e_text_save(path, emit, ks);
}
