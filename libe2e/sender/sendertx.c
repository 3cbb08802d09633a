/*
 * The tx contexts of a sender, by scope: their limits, creating one for a
 * key whose counters are already durable, dropping one. Memory only. The
 * leaf both halves of the sender use (sender.c seals, statedir.c and
 * statetick.c prepare keys), so neither calls back into the other.
 */
#include <string.h>

#include "sender/sender_impl.h"

void e2e_sender_drop_tx(struct e2e_sender *s, uint8_t scope)
{
	if (s->tx[scope].tx) {
		s->io_wanted = 1;   /* the scope's next key needs a reservation */
		s->tx[scope].gen++;
	}
	e2e_tx_destroy(s->tx[scope].tx);
	s->tx[scope].tx = NULL;
	s->tx[scope].epoch = 0;
}

/* The message limit and reservation block every tx of this sender uses. */
uint64_t e2e_sender_tx_limit(const struct e2e_sender *s)
{
	uint64_t l = s->cfg.max_messages ? s->cfg.max_messages : E2E_TX_LIMIT_DEFAULT;

	return l > E2E_COUNTER_MAX ? E2E_COUNTER_MAX : l;
}

uint32_t e2e_sender_tx_block(const struct e2e_sender *s)
{
	return s->cfg.reserve_block ? s->cfg.reserve_block : E2E_TX_BLOCK_DEFAULT;
}

/*
 * A tx for the current key @p cur of @p scope, counters in (floor, ceiling]
 * already durable. Creating it is memory work only: the tx never reserves
 * by itself (asynchronous reservation), so sealing never touches a file.
 */
enum e2e_status e2e_sender_open_tx(struct e2e_sender *s, uint8_t scope,
	const struct e2e_keystore_entry *cur, uint64_t floor, uint64_t ceiling, uint64_t limit,
	uint32_t block)
{
	struct e2e_tx_config tc;
	enum e2e_status st;

	e2e_sender_drop_tx(s, scope);
	memset(&tc, 0, sizeof tc);
	tc.id = (struct e2e_keyid){ s->self, scope, cur->epoch };
	tc.key = cur->key;
	tc.counter_floor = floor;
	tc.ceiling = ceiling;
	tc.limit = limit;
	tc.block = block;
	/* The key's own mode, the one it was delivered with. */
	tc.sign_sk = cur->flags & E2E_KEYSTORE_SIGNED ? s->id.sign_sk : NULL;
	st = e2e_tx_create(&s->tx[scope].tx, &tc);
	if (st == E2E_OK) {
		s->tx[scope].epoch = cur->epoch;
		s->tx[scope].gen++;
	}
	return st;
}

uint64_t e2e_sender_low_water(const struct e2e_sender *s)
{
	/* Half the limit: a rotation (about six fsyncs) has as long as the
	 * key's first half took, and at most four blocks for large limits. */
	uint64_t q = e2e_sender_tx_limit(s) / 2, b = 4ULL * e2e_sender_tx_block(s);

	return q < b ? q : b;
}
