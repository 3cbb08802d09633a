/*
 * status: per scope, the key epochs a sender holds, their age or expiry,
 * and how many messages each key may already have sealed. The count comes
 * from txstate, which holds counter *reservations* made ahead of use, so it
 * is an upper bound ("<=N sealed (reserved)"), never an exact tally.
 */
#include <stdio.h>
#include <string.h>

#include "keytool.h"

static const char status_usage[] =
	"Usage: " KT_PROG " status [--dir DIR]\n"
	"\n"
	"Show, per scope, the current epoch and its age, older epochs and when they\n"
	"expire, the messages reserved for each key (an upper bound of how many were\n"
	"sealed), and the number of enrolled and revoked subscribers.\n";

struct status_ctx {
	const struct e2e_scopes *scopes;
	const struct e2e_keystore *ks;
	char txstate[PATH_MAX];
	uint32_t sender;
	int have_sender;
	int tx_warned;
	uint64_t now;
};

static void print_reserved(struct status_ctx *c, const struct e2e_keystore_entry *e)
{
	struct e2e_keyid kid = { c->sender, e->scope, e->epoch };
	uint64_t ceiling = 0;
	enum e2e_status st;

	if (!c->have_sender) {
		printf("  ? sealed\n");
		return;
	}
	st = e2e_txstate_get(c->txstate, &kid, &ceiling);
	/* A record with ceiling 0 only notes that the key exists (SPEC 6.4);
	 * no record at all, or the highest ceiling, means its use is unknown:
	 * the sender never seals with it again (SPEC 6.2). */
	if (st == E2E_OK && ceiling == E2E_COUNTER_MAX)
		printf("  retired (usage unknown)\n");
	else if (st == E2E_OK && ceiling)
		printf("  \u2264%llu sealed (reserved)\n", (unsigned long long)ceiling);
	else if (st == E2E_OK)
		printf("  0 sealed\n");
	else if (st == E2E_ERR_NOT_FOUND)
		printf("  ? sealed (no txstate record: retired at its next use)\n");
	else {
		printf("  ? sealed\n");
		if (!c->tx_warned++)
			kt_fail(st, c->txstate, NULL);
	}
}

static void print_scope(struct status_ctx *c, uint8_t id, const char *name)
{
	const struct e2e_keystore_entry *cur = e2e_keystore_current(c->ks, id);
	char d[32];

	printf("scope %u %s\n", (unsigned)id, name);
	for (uint32_t i = e2e_keystore_count(c->ks); i-- > 0;) {
		const struct e2e_keystore_entry *e = e2e_keystore_at(c->ks, i);

		if (e->scope != id)
			continue;
		printf("  epoch %u", (unsigned)e->epoch);
		if (e == cur) {
			kt_duration_format(d, sizeof d, c->now > e->created_ms ?
				c->now - e->created_ms : 0);
			printf("  current, age %s", d);
		} else if (e->flags & E2E_KEYSTORE_NEXT) {
			/* Made ahead of a scheduled rotation (SPEC 11.5). */
			if (e->created_ms > c->now) {
				kt_duration_format(d, sizeof d, e->created_ms - c->now);
				printf("  next, current in %s", d);
			} else {
				printf("  next, %s", e->created_ms ? "due (a running sender "
					"switches within a second)" : "current when the current key "
					"reaches its message limit");
			}
		} else if (e->not_after_ms == 0) {
			printf("  superseded, no deadline");
		} else if (e->not_after_ms >= c->now) {
			kt_duration_format(d, sizeof d, e->not_after_ms - c->now);
			printf("  expires in %s", d);
		} else {
			kt_duration_format(d, sizeof d, c->now - e->not_after_ms);
			printf("  expired %s ago", d);
		}
		print_reserved(c, e);
	}
	if (!cur && e2e_scopes_get(c->scopes, id))
		printf("  no current key (run '%s rotate --scope %s')\n", KT_PROG, name);
}

static void load_sender(struct status_ctx *c, const struct kt_opts *o)
{
	struct e2e_identity id;
	char path[PATH_MAX];
	enum e2e_status st;

	if (kt_identity_path(path, sizeof path, o, NULL, 0) != 0)
		return;
	st = e2e_identity_load(&id, path);
	if (st != E2E_OK) {
		kt_fail(st, path, "message counts unknown");
		return;
	}
	c->sender = e2e_sender_id(&id.pub);
	c->have_sender = 1;
	e2e_identity_destroy(&id);
}

int kt_cmd_status(int argc, char **argv)
{
	static struct status_ctx c;
	struct kt_opts o;
	struct e2e_keystore *ks = NULL;
	struct e2e_enroll *en = NULL;
	uint32_t revoked = 0, n;
	char dir[PATH_MAX];
	int ret = kt_parse(argc, argv, "d", status_usage, &o);

	if (ret >= 0)
		return ret;
	if (o.argc != 0)
		return kt_misuse(status_usage);
	ret = 1;
	memset(&c, 0, sizeof c);
	if (kt_dir(dir, sizeof dir, &o, KT_SENDER) != 0 ||
	    kt_path(c.txstate, sizeof c.txstate, dir, "txstate") != 0)
		goto out;
	c.scopes = kt_load_scopes(dir);
	ks = c.scopes ? kt_load_keys(dir) : NULL;
	en = ks ? kt_load_peers(dir, E2E_ENROLL_SENDER, c.scopes) : NULL;
	if (!en)
		goto out;
	c.ks = ks;
	c.now = e2e_now_ms();
	load_sender(&c, &o);
	for (uint32_t i = 0; i < c.scopes->count; i++)
		print_scope(&c, c.scopes->scope[i].id, c.scopes->scope[i].name);
	/* Keys of scopes that were since removed from the scopes file. */
	for (uint32_t i = 0; i < e2e_keystore_count(ks); i++) {
		uint8_t id = e2e_keystore_at(ks, i)->scope;

		if (!e2e_scopes_get(c.scopes, id) &&
		    (i == 0 || e2e_keystore_at(ks, i - 1)->scope != id))
			print_scope(&c, id, "(not in scopes)");
	}
	n = e2e_enroll_count(en);
	for (uint32_t i = 0; i < n; i++)
		revoked += e2e_enroll_at(en, i)->revoked;
	printf("subscribers: %u enrolled, %u revoked\n", (unsigned)(n - revoked),
		(unsigned)revoked);
	ret = 0;
out:
	e2e_enroll_free(en);
	e2e_keystore_free(ks);
	return ret;
}
