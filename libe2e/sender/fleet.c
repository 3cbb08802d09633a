/* A sender's fleet trust; see fleet.h. Files via fileio/textfile only. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state/fileio.h"
#include "sender/fleet.h"
#include "base/lru.h"
#include "sender/sender_impl.h"

#define SERVED_MAX 65536U

struct e2e_fleet {
	char p_auth[PATH_MAX], p_cred[PATH_MAX], p_served[PATH_MAX];
	struct file_sig sig_auth, sig_cred;
	struct e2e_authorities au;
	uint8_t cred[E2E_CRED_MAX];
	size_t cred_len;
	struct e2e_revstate rev;
	struct e2e_lru served;            /* sign_pk -> index into scopes */
	uint8_t (*scopes)[32];
	int served_lost;                  /* entries evicted or unreadable: rotate all */
	uint64_t now_ms;                  /* of the revocation being applied */
};

/* Append @p n bytes to @p path (created 0600, no symlink followed), synced. */
static enum e2e_status append_line(const char *path, const char *line, size_t n)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	enum e2e_status ret = E2E_ERR_IO;

	if (fd < 0)
		return ret;
	if (write(fd, line, n) == (ssize_t)n && e2e_file_sync(fd) == 0)
		ret = E2E_OK;
	close(fd);
	return ret;
}

static void k2(const uint8_t *pk, uint64_t *a, uint64_t *b)
{
	memcpy(a, pk, 8);
	memcpy(b, pk + 8, 8);
}

static uint8_t *served_slot(struct e2e_fleet *f, const uint8_t *pk, int create)
{
	uint64_t a, b;
	uint32_t i;

	k2(pk, &a, &b);
	i = e2e_lru_find(&f->served, a, b);
	if (i == E2E_LRU_NONE && create) {
		i = e2e_lru_insert(&f->served, a, b);
		if (i == E2E_LRU_NONE) {
			(void)e2e_lru_evict(&f->served);
			f->served_lost = 1;
			i = e2e_lru_insert(&f->served, a, b);
		}
		if (i != E2E_LRU_NONE)
			memset(f->scopes[i], 0, 32);
	}
	return i == E2E_LRU_NONE ? NULL : f->scopes[i];
}

/* cred-served: one line per grant, "<64 hex sign_pk> <64 hex scope bitmap>". */
static void load_served(struct e2e_fleet *f)
{
	uint8_t *buf = NULL, pk[32], bm[32];
	size_t len = 0, off = 0;
	enum e2e_status st = e2e_file_read(f->p_served, 1, &buf, &len);

	if (st == E2E_ERR_NOT_FOUND)
		return;
	if (st != E2E_OK) {
		f->served_lost = 1;
		return;
	}
	while (off + 130 <= len) {
		uint8_t *slot;

		if (sodium_hex2bin(pk, 32, (const char *)buf + off, 64, NULL, NULL, NULL) != 0 ||
		    sodium_hex2bin(bm, 32, (const char *)buf + off + 65, 64, NULL, NULL, NULL) != 0) {
			f->served_lost = 1;
			break;
		}
		slot = served_slot(f, pk, 1);
		for (unsigned j = 0; slot && j < 32; j++)
			slot[j] |= bm[j];
		off += 130;
	}
	e2e_file_free(buf, len);
}

static enum e2e_status load_files(struct e2e_sender *s, struct e2e_fleet *f)
{
	struct e2e_authorities au;
	enum e2e_status st;

	e2e_file_sig(&f->sig_auth, f->p_auth);
	e2e_file_sig(&f->sig_cred, f->p_cred);
	st = e2e_authorities_load(&au, f->p_auth, s->cfg.err, s->cfg.err_len);
	if (st != E2E_OK)
		return st;
	f->au = au;
	f->cred_len = 0;
	st = e2e_cred_load(f->cred, sizeof f->cred, &f->cred_len, f->p_cred);
	if (st == E2E_ERR_NOT_FOUND)
		st = E2E_OK;
	else if (st != E2E_OK && s->cfg.err && s->cfg.err_len)
		snprintf(s->cfg.err, s->cfg.err_len, "%s: %s", f->p_cred, e2e_strerror(st));
	return st;
}

enum e2e_status e2e_fleet_open(struct e2e_sender *s, struct e2e_fleet **out)
{
	struct e2e_fleet *f = calloc(1, sizeof *f);
	enum e2e_status ret = E2E_ERR_NOMEM;

	*out = NULL;
	if (!f)
		goto out;
	snprintf(f->p_auth, PATH_MAX, "%s/authorities", s->cfg.dir);
	snprintf(f->p_cred, PATH_MAX, "%s/credential", s->cfg.dir);
	snprintf(f->p_served, PATH_MAX, "%s/cred-served", s->cfg.dir);
	f->scopes = calloc(SERVED_MAX, sizeof *f->scopes);
	if (!f->scopes || e2e_lru_alloc(&f->served, SERVED_MAX) != E2E_OK)
		goto out;
	ret = load_files(s, f);
	if (ret != E2E_OK)
		goto out;
	ret = e2e_revstate_init(&f->rev, s->cfg.dir, s->control_topic, &f->au);
	if (ret != E2E_OK)
		goto out;
	load_served(f);
	*out = f;
	f = NULL;
out:
	e2e_fleet_close(f);
	return ret;
}

void e2e_fleet_close(struct e2e_fleet *f)
{
	if (!f)
		return;
	e2e_revstate_free(&f->rev);
	e2e_lru_free(&f->served);
	free(f->scopes);
	free(f);
}

enum e2e_status e2e_fleet_tick(struct e2e_sender *s, struct e2e_fleet *f)
{
	struct file_sig a, c;

	if (!f)
		return E2E_OK;
	e2e_file_sig(&a, f->p_auth);
	e2e_file_sig(&c, f->p_cred);
	if (!e2e_file_sig_changed(&a, &f->sig_auth) && !e2e_file_sig_changed(&c, &f->sig_cred))
		return E2E_OK;
	return load_files(s, f);
}

static void on_fleet(void *ctx, const struct e2e_authorities **au, const uint8_t **cred,
	size_t *cred_len)
{
	struct e2e_sender *s = ctx;

	*au = s->fleet ? &s->fleet->au : NULL;
	*cred = s->fleet && s->fleet->cred_len ? s->fleet->cred : NULL;
	*cred_len = s->fleet ? s->fleet->cred_len : 0;
}

static int on_revoked(void *ctx, const uint8_t sign_pk[E2E_SIGN_PK_BYTES])
{
	struct e2e_sender *s = ctx;

	return s->fleet && e2e_revstate_has(&s->fleet->rev, sign_pk);
}

static void on_served(void *ctx, const struct e2e_public *who, const uint8_t scopes[32])
{
	struct e2e_sender *s = ctx;
	struct e2e_fleet *f = s->fleet;
	uint8_t *slot;
	char line[131];
	int fresh = 0;

	if (!f || !(slot = served_slot(f, who->sign_pk, 1)))
		return;
	for (unsigned j = 0; j < 32; j++)
		fresh |= scopes[j] & ~slot[j];
	if (!fresh)
		return;
	for (unsigned j = 0; j < 32; j++)
		slot[j] |= scopes[j];
	/* Append-only: a crash loses at most this line (then the holder's
	 * scopes are unknown and a revocation rotates every scope). */
	sodium_bin2hex(line, 65, who->sign_pk, 32);
	line[64] = ' ';
	sodium_bin2hex(line + 65, 65, slot, 32);
	line[129] = '\n';
	if (append_line(f->p_served, line, 130) != E2E_OK)
		f->served_lost = 1;
}

void e2e_fleet_keysvc(struct e2e_keysvc_config *kc)
{
	kc->fleet = on_fleet;
	kc->revoked = on_revoked;
	kc->served = on_served;
}

int e2e_fleet_is_authority_topic(const struct e2e_sender *s, const char *topic)
{
	size_t cl = strlen(s->control_topic);

	return strncmp(topic, s->control_topic, cl) == 0 &&
		strncmp(topic + cl, "/authority/", 11) == 0;
}

/* Rotated by the next tick (e2e_sender_tick_plan/run/apply), off the
 * caller's lock, like every other rotation the sealing side asks for. */
static void rotate(struct e2e_sender *s, struct e2e_fleet *f, uint8_t sc)
{
	(void)f;
	s->rotate_req[sc / 8] |= (uint8_t)(1U << (sc % 8));
	s->rotate_due = 1;
}

/* A key newly revoked: rotate every scope it was served (all if unknown). */
static void on_added(void *ctx, const uint8_t sign_pk[E2E_SIGN_PK_BYTES])
{
	struct e2e_sender *s = ctx;
	struct e2e_fleet *f = s->fleet;
	const uint8_t *slot = served_slot(f, sign_pk, 0);
	const struct e2e_enroll_entry *e = e2e_enroll_find_key(s->enrolled, sign_pk);

	if (e && !slot) {
		slot = e->scopes;   /* enrolled here too: what it was allowed */
	} else if (e) {
		for (uint32_t i = 0; i < s->scopes->count; i++) {
			uint8_t sc = s->scopes->scope[i].id;

			if (e->scopes[sc / 8] & (1U << (sc % 8)))
				rotate(s, f, sc);
		}
	}
	if (!slot && !f->served_lost)
		return;   /* never served here: nothing to take back */
	for (uint32_t i = 0; i < s->scopes->count; i++) {
		uint8_t sc = s->scopes->scope[i].id;

		if (!slot || (slot[sc / 8] & (1U << (sc % 8))))
			rotate(s, f, sc);
	}
}

enum e2e_status e2e_fleet_revocations(struct e2e_sender *s, const uint8_t *msg, size_t len,
	const char *topic, uint64_t now_ms)
{
	if (!s->fleet)
		return E2E_ERR_NOT_FOUND;
	s->fleet->now_ms = now_ms;
	return e2e_revstate_apply(&s->fleet->rev, &s->fleet->au, msg, len, topic, on_added, s);
}
