/*
 * The enrollment audit log: the key service re-reads `enrolled` on its own
 * (the publisher's tick), silently. This watches the same file from a
 * thread of its own (one stat a second, nothing per message; never the
 * event loop, which reads no file) and logs each change once: a
 * subscriber enrolled (with its scopes), its scopes changed, revoked or
 * removed, each with the first 8 bytes of its key.
 */
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "e2e/enroll.h"
#include "e2e/scopes.h"
#include "log.h"
#include "proxy.h"

struct audit_entry {
	char name[E2E_NAME_MAX + 1];
	uint8_t key[E2E_SIGN_PK_BYTES];
	uint8_t scopes[E2E_SCOPE_BITMAP_BYTES];
	uint8_t revoked;
};

struct proxy_audit {
	pthread_t thread;
	pthread_mutex_t mu;           /* guards stop */
	pthread_cond_t cv;
	int stop, running;
	char dir[4096];               /* the state directory, fixed at start */
	struct stat last;
	int have_last, primed;
	struct audit_entry *e;
	uint32_t n;
	struct e2e_scopes scopes;     /* ~90 KiB: why this lives on the heap */
};

static void hex8(char out[17], const uint8_t *key)
{
	for (unsigned i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", key[i]);
}

static void scope_names(const struct proxy_audit *a, const uint8_t *bits, char *out, size_t cap)
{
	size_t off = 0;

	out[0] = '\0';
	for (unsigned id = 0; id < E2E_SCOPES_MAX && off < cap; id++) {
		const struct e2e_scope *sc;
		int n;

		if (!(bits[id >> 3] & (1U << (id & 7))))
			continue;
		sc = e2e_scopes_get(&a->scopes, (uint8_t)id);
		n = sc ? snprintf(out + off, cap - off, "%s%s (%u)", off ? ", " : "", sc->name, id) :
			snprintf(out + off, cap - off, "%s%u", off ? ", " : "", id);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

static const struct audit_entry *find(const struct audit_entry *v, uint32_t n, const uint8_t *key)
{
	for (uint32_t i = 0; i < n; i++)
		if (!memcmp(v[i].key, key, sizeof v[i].key))
			return &v[i];
	return NULL;
}

static void diff(struct proxy_audit *a, const struct audit_entry *nv, uint32_t nn)
{
	char key[17], sc[512];
	struct plog_about ab = { "enrollment", -1, -1, -1, NULL };

	for (uint32_t i = 0; i < nn; i++) {
		const struct audit_entry *o = find(a->e, a->n, nv[i].key);

		hex8(key, nv[i].key);
		ab.subscriber = nv[i].name;
		ab.event = nv[i].revoked ? "revocation" : "enrollment";
		if (nv[i].revoked) {
			if (!o || !o->revoked)
				plog_event(LOG_NOTICE, &ab, "enrollment: %s revoked (key %s)", nv[i].name, key);
			continue;
		}
		scope_names(a, nv[i].scopes, sc, sizeof sc);
		if (!o)
			plog_event(LOG_NOTICE, &ab, "enrollment: %s enrolled for scope(s) %s (key %s)",
				nv[i].name, sc, key);
		else if (memcmp(o->scopes, nv[i].scopes, sizeof o->scopes))
			plog_event(LOG_NOTICE, &ab, "enrollment: %s now allowed scope(s) %s (key %s)",
				nv[i].name, sc, key);
	}
	for (uint32_t i = 0; i < a->n; i++)
		if (!find(nv, nn, a->e[i].key)) {
			hex8(key, a->e[i].key);
			ab.subscriber = a->e[i].name;
			ab.event = "enrollment";
			plog_event(LOG_NOTICE, &ab, "enrollment: %s removed (key %s)", a->e[i].name, key);
		}
}

static void reload(struct proxy_audit *a, const char *dir)
{
	char path[4200], err[256] = "";
	struct e2e_enroll *en = NULL;
	struct audit_entry *nv = NULL;
	uint32_t nn = 0;

	snprintf(path, sizeof path, "%s/scopes", dir);
	if (e2e_scopes_load(&a->scopes, path, err, sizeof err) != E2E_OK)
		goto out;   /* the key service reports a bad file itself */
	snprintf(path, sizeof path, "%s/enrolled", dir);
	if (e2e_enroll_load(&en, E2E_ENROLL_SENDER, &a->scopes, path, 0, err, sizeof err) != E2E_OK)
		goto out;
	nn = e2e_enroll_count(en);
	nv = calloc(nn ? nn : 1, sizeof *nv);
	if (!nv)
		goto out;
	for (uint32_t i = 0; i < nn; i++) {
		const struct e2e_enroll_entry *x = e2e_enroll_at(en, i);

		snprintf(nv[i].name, sizeof nv[i].name, "%s", x->name);
		memcpy(nv[i].key, x->pub.sign_pk, sizeof nv[i].key);
		memcpy(nv[i].scopes, x->scopes, sizeof nv[i].scopes);
		nv[i].revoked = x->revoked;
	}
	if (a->primed)
		diff(a, nv, nn);
	else
		plog(LOG_INFO, "enrollment: %u subscriber key(s) listed", nn);
	a->primed = 1;
	free(a->e);
	a->e = nv;
	a->n = nn;
	nv = NULL;
out:
	free(nv);
	e2e_enroll_free(en);
}

static void audit_tick(struct proxy_audit *a)
{
	char path[4200];
	struct stat st;

	snprintf(path, sizeof path, "%s/enrolled", a->dir);
	if (stat(path, &st) != 0)
		memset(&st, 0, sizeof st);   /* missing: an empty list */
	if (a->have_last && st.st_ino == a->last.st_ino && st.st_size == a->last.st_size &&
	    st.st_mtim.tv_sec == a->last.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == a->last.st_mtim.tv_nsec)
		return;
	a->last = st;
	a->have_last = 1;
	reload(a, a->dir);
}

static void *audit_main(void *arg)
{
	struct proxy_audit *a = arg;

	pthread_mutex_lock(&a->mu);
	while (!a->stop) {
		struct timespec ts;

		pthread_mutex_unlock(&a->mu);
		audit_tick(a);
		pthread_mutex_lock(&a->mu);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 1;
		while (!a->stop && pthread_cond_timedwait(&a->cv, &a->mu, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

int proxy_audit_start(struct proxy *px)
{
	struct proxy_audit *a = calloc(1, sizeof *a);
	pthread_condattr_t ca;

	if (!a)
		return -1;
	snprintf(a->dir, sizeof a->dir, "%s", px->cfg.dir);
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cv, &ca);
	pthread_condattr_destroy(&ca);
	px->audit = a;
	if (pthread_create(&a->thread, NULL, audit_main, a) != 0) {
		plog(LOG_ERR, "cannot start the enrollment audit thread");
		return -1;
	}
	a->running = 1;
	return 0;
}

void proxy_audit_free(struct proxy *px)
{
	struct proxy_audit *a = px->audit;

	if (!a)
		return;
	if (a->running) {
		pthread_mutex_lock(&a->mu);
		a->stop = 1;
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thread, NULL);
	}
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	free(a->e);
	free(a);
	px->audit = NULL;
}
