/*
 * Sender counter reservations on disk (protocol/SPEC.md sec. 6.2):
 * "E2ETX1\0\0" | count u32 | count x {sender u32, scope u8, 0 0 0,
 * epoch u32, ceiling u64} sorted | BLAKE2b-256 of everything before.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/txstate.h"
#include "state/fileio.h"
#include "base/wire.h"

#define MAGIC "E2ETX1\0\0"
#define MAGIC_LEN 8U
#define REC_LEN 20U
#define SUM_LEN 32U
#define MAX_RECS 65536U

struct rec {
	struct e2e_keyid id;
	uint64_t ceiling;
};

static int id_cmp(const struct e2e_keyid *a, const struct e2e_keyid *b)
{
	if (a->sender != b->sender)
		return a->sender < b->sender ? -1 : 1;
	if (a->scope != b->scope)
		return a->scope < b->scope ? -1 : 1;
	if (a->epoch != b->epoch)
		return a->epoch < b->epoch ? -1 : 1;
	return 0;
}

/* Parse and validate the whole file into a fresh array (*recs, *n). */
static enum e2e_status load(const char *path, struct rec **recs, uint32_t *n)
{
	uint8_t *buf = NULL;
	const uint8_t *body;
	size_t len = 0, body_len;
	struct e2e_rd r;
	uint8_t pad[3];
	uint32_t count, i;
	enum e2e_status ret;

	*recs = NULL;
	*n = 0;
	ret = e2e_state_load(path, MAGIC, &buf, &len, &body, &body_len);
	if (ret != E2E_OK)
		goto out;
	ret = E2E_ERR_CORRUPT;
	e2e_rd_init(&r, body, body_len);
	count = e2e_rd_u32(&r);
	if (r.bad || count > MAX_RECS || e2e_rd_left(&r) != (size_t)count * REC_LEN)
		goto out;
	ret = E2E_ERR_NOMEM;
	*recs = calloc(count ? count : 1, sizeof **recs);
	if (!*recs)
		goto out;
	ret = E2E_ERR_CORRUPT;
	for (i = 0; i < count; i++) {
		struct rec *x = &(*recs)[i];

		x->id.sender = e2e_rd_u32(&r);
		x->id.scope = e2e_rd_u8(&r);
		e2e_rd_bytes(&r, pad, sizeof pad);
		x->id.epoch = e2e_rd_u32(&r);
		x->ceiling = e2e_rd_u64(&r);
		if (r.bad || pad[0] || pad[1] || pad[2])
			goto out;
		/* Strictly sorted: also rules out duplicate records. */
		if (i && id_cmp(&(*recs)[i - 1].id, &x->id) >= 0)
			goto out;
	}
	*n = count;
	ret = E2E_OK;
out:
	e2e_file_free(buf, len);
	if (ret != E2E_OK) {
		free(*recs);
		*recs = NULL;
	}
	return ret;
}

static enum e2e_status store(const char *path, const struct rec *recs, uint32_t n)
{
	size_t len = MAGIC_LEN + 4 + (size_t)n * REC_LEN + SUM_LEN;
	uint8_t *buf = malloc(len);
	struct e2e_wr w;
	enum e2e_status ret = E2E_ERR_NOMEM;

	if (!buf)
		goto out;
	e2e_wr_init(&w, buf, len);
	e2e_wr_bytes(&w, (const uint8_t *)MAGIC, MAGIC_LEN);
	e2e_wr_u32(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		static const uint8_t pad[3];

		e2e_wr_u32(&w, recs[i].id.sender);
		e2e_wr_u8(&w, recs[i].id.scope);
		e2e_wr_bytes(&w, pad, sizeof pad);
		e2e_wr_u32(&w, recs[i].id.epoch);
		e2e_wr_u64(&w, recs[i].ceiling);
	}
	ret = w.bad || w.off != len - SUM_LEN ? E2E_ERR_BUFFER : e2e_state_store(path, buf, len);
out:
	free(buf);
	return ret;
}

enum e2e_status e2e_txstate_get(const char *path, const struct e2e_keyid *id, uint64_t *ceiling)
{
	struct rec *recs = NULL;
	uint32_t n = 0;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!path || !id || !ceiling)
		goto out;
	*ceiling = 0;
	ret = load(path, &recs, &n);
	if (ret != E2E_OK)
		goto out;
	ret = E2E_ERR_NOT_FOUND;
	for (uint32_t i = 0; i < n; i++) {
		if (id_cmp(&recs[i].id, id) == 0) {
			*ceiling = recs[i].ceiling;
			ret = E2E_OK;
			break;
		}
	}
out:
	free(recs);
	return ret;
}

/* Load, apply one change (set ceiling, or remove when @p forget), store. */
static enum e2e_status update(const char *path, const struct e2e_keyid *id,
	uint64_t ceiling, int forget)
{
	struct rec *recs = NULL, *grown;
	uint32_t n = 0, i;
	enum e2e_status ret;

	ret = load(path, &recs, &n);
	if (ret == E2E_ERR_NOT_FOUND && !forget)
		ret = E2E_OK;    /* first reservation creates the file */
	if (ret != E2E_OK)
		goto out;
	for (i = 0; i < n && id_cmp(&recs[i].id, id) < 0; i++)
		;
	if (i < n && id_cmp(&recs[i].id, id) == 0) {
		if (forget) {
			memmove(&recs[i], &recs[i + 1], (n - i - 1) * sizeof *recs);
			n--;
		} else if (ceiling > recs[i].ceiling) {
			recs[i].ceiling = ceiling;   /* never lowered */
		}
	} else if (forget) {
		ret = E2E_ERR_NOT_FOUND;
		goto out;
	} else {
		ret = E2E_ERR_FULL;
		if (n >= MAX_RECS)
			goto out;
		ret = E2E_ERR_NOMEM;
		grown = realloc(recs, (n + 1) * sizeof *recs);
		if (!grown)
			goto out;
		recs = grown;
		memmove(&recs[i + 1], &recs[i], (n - i) * sizeof *recs);
		recs[i].id = *id;
		recs[i].ceiling = ceiling;
		n++;
	}
	ret = store(path, recs, n);
out:
	free(recs);
	return ret;
}

enum e2e_status e2e_txstate_note(const char *path, const struct e2e_keyid *ids, uint32_t n)
{
	struct rec *recs = NULL, *grown;
	uint32_t count = 0, added = 0;
	enum e2e_status ret;

	if (!path || (!ids && n))
		return E2E_ERR_ARG;
	ret = load(path, &recs, &count);
	if (ret == E2E_ERR_NOT_FOUND)
		ret = E2E_OK;
	if (ret != E2E_OK)
		goto out;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i;

		for (i = 0; i < count && id_cmp(&recs[i].id, &ids[k]) < 0; i++)
			;
		if (i < count && id_cmp(&recs[i].id, &ids[k]) == 0)
			continue;
		ret = E2E_ERR_FULL;
		if (count >= MAX_RECS)
			goto out;
		ret = E2E_ERR_NOMEM;
		grown = realloc(recs, (count + 1) * sizeof *recs);
		if (!grown)
			goto out;
		recs = grown;
		memmove(&recs[i + 1], &recs[i], (count - i) * sizeof *recs);
		recs[i].id = ids[k];
		recs[i].ceiling = 0;
		count++;
		added++;
	}
	ret = added ? store(path, recs, count) : E2E_OK;
out:
	free(recs);
	return ret;
}

enum e2e_status e2e_txstate_epochs(const char *path, uint32_t sender, uint32_t max_epoch[256])
{
	struct rec *recs = NULL;
	uint32_t n = 0;
	enum e2e_status ret;

	if (!path || !max_epoch)
		return E2E_ERR_ARG;
	memset(max_epoch, 0, 256 * sizeof *max_epoch);
	ret = load(path, &recs, &n);
	if (ret == E2E_ERR_NOT_FOUND)
		return E2E_OK;
	for (uint32_t i = 0; ret == E2E_OK && i < n; i++)
		if (recs[i].id.sender == sender && recs[i].id.epoch > max_epoch[recs[i].id.scope])
			max_epoch[recs[i].id.scope] = recs[i].id.epoch;
	free(recs);
	return ret;
}

enum e2e_status e2e_txstate_reserve(const char *path, const struct e2e_keyid *id,
	uint64_t ceiling)
{
	if (!path || !id)
		return E2E_ERR_ARG;
	return update(path, id, ceiling, 0);
}

enum e2e_status e2e_txstate_reserve_cb(void *path, const struct e2e_keyid *id,
	uint64_t ceiling)
{
	return e2e_txstate_reserve(path, id, ceiling);
}

enum e2e_status e2e_txstate_forget(const char *path, const struct e2e_keyid *id)
{
	if (!path || !id)
		return E2E_ERR_ARG;
	return update(path, id, 0, 1);
}
