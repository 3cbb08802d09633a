/*
 * Sender context (protocol/SPEC.md sec. 4 and 5.1). The hot path is
 * e2e_tx_seal: one keyed hash of the topic, one table probe, one AEAD;
 * no syscall and no allocation except the once-per-block reservation.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/tx.h"
#include "base/lru.h"
#include "base/topichash.h"

struct e2e_tx {
	struct e2e_keyid id;
	uint8_t *key;                /* sodium_malloc: guarded, mlocked */
	struct topichash th;
	uint64_t limit;              /* last counter this key may use */
	uint64_t counter;            /* last counter used */
	uint64_t ceiling;            /* reserved on disk up to here */
	uint64_t sealed;
	uint32_t block;
	uint32_t run;
	uint32_t runs;
	e2e_reserve_fn reserve;
	void *reserve_ctx;
	const uint8_t *sign_sk;      /* NULL: suite 0x01 */
	struct e2e_lru topics;       /* topic hash -> index into seqs */
	uint32_t *seqs;              /* last seq used per topic in this run */
};

static uint32_t random_run(void)
{
	uint32_t r;

	do
		randombytes_buf(&r, sizeof r);
	while (r == 0);
	return r;
}

/* A new run: fresh random id, every topic's sequence restarts at 1. */
static void new_run(struct e2e_tx *tx, uint32_t run)
{
	tx->run = run ? run : random_run();
	tx->runs++;
	e2e_lru_clear(&tx->topics);
}

static enum e2e_status reserve_next(struct e2e_tx *tx)
{
	uint64_t want = tx->ceiling + tx->block;
	enum e2e_status st;

	if (want > tx->limit)
		want = tx->limit;
	/* Asynchronous reservation (no callback): the owner extends the
	 * ceiling from its I/O side (e2e_tx_extend); sealing past the durable
	 * ceiling is never allowed (SPEC 4.1), so here it stops. */
	if (!tx->reserve)
		return E2E_ERR_RESERVE;
	st = tx->reserve(tx->reserve_ctx, &tx->id, want);
	if (st != E2E_OK)
		return E2E_ERR_RESERVE;
	tx->ceiling = want;
	return E2E_OK;
}

enum e2e_status e2e_tx_create(struct e2e_tx **out, const struct e2e_tx_config *cfg)
{
	struct e2e_tx *tx = NULL;
	enum e2e_status ret = E2E_ERR_ARG;
	uint32_t streams;

	if (!out)
		goto out;
	*out = NULL;
	if (!cfg || !cfg->key || (!cfg->reserve && cfg->ceiling <= cfg->counter_floor))
		goto out;
	ret = E2E_ERR_CRYPTO;
	if (sodium_init() < 0)
		goto out;
	ret = E2E_ERR_NOMEM;
	tx = calloc(1, sizeof *tx);
	if (!tx)
		goto out;
	tx->key = sodium_malloc(E2E_KEY_BYTES);
	streams = cfg->max_streams ? cfg->max_streams : E2E_TX_STREAMS_DEFAULT;
	tx->seqs = calloc(streams, sizeof *tx->seqs);
	if (!tx->key || !tx->seqs)
		goto out;
	ret = e2e_lru_alloc(&tx->topics, streams);
	if (ret != E2E_OK)
		goto out;

	memcpy(tx->key, cfg->key, E2E_KEY_BYTES);
	randombytes_buf(tx->th.key, sizeof tx->th.key);
	tx->id = cfg->id;
	tx->limit = cfg->limit ? cfg->limit : E2E_TX_LIMIT_DEFAULT;
	if (tx->limit > E2E_COUNTER_MAX)
		tx->limit = E2E_COUNTER_MAX;
	tx->block = cfg->block ? cfg->block : E2E_TX_BLOCK_DEFAULT;
	tx->reserve = cfg->reserve;
	tx->reserve_ctx = cfg->reserve_ctx;
	tx->sign_sk = cfg->sign_sk;
	/* Resume strictly above everything an earlier process may have used. */
	tx->counter = tx->ceiling = cfg->counter_floor;
	ret = E2E_ERR_EXHAUSTED;
	if (tx->counter >= tx->limit)
		goto out;
	new_run(tx, cfg->run);
	if (!tx->reserve) {
		/* Already durable: the caller reserved it before creating us. */
		tx->ceiling = cfg->ceiling < tx->limit ? cfg->ceiling : tx->limit;
		ret = E2E_OK;
	} else {
		ret = reserve_next(tx);
	}
	if (ret != E2E_OK)
		goto out;
	*out = tx;
	tx = NULL;
out:
	e2e_tx_destroy(tx);
	return ret;
}

void e2e_tx_destroy(struct e2e_tx *tx)
{
	if (!tx)
		return;
	sodium_free(tx->key);
	e2e_lru_free(&tx->topics);
	free(tx->seqs);
	sodium_memzero(tx, sizeof *tx);
	free(tx);
}

/* Index of the topic's sequence slot in the current run, starting a new
 * run when the table is full. */
static uint32_t topic_slot(struct e2e_tx *tx, uint64_t h)
{
	uint32_t i = e2e_lru_find(&tx->topics, h, 0);

	if (i == E2E_LRU_NONE) {
		i = e2e_lru_insert(&tx->topics, h, 0);
		if (i == E2E_LRU_NONE) {
			new_run(tx, 0);
			i = e2e_lru_insert(&tx->topics, h, 0);
		}
		tx->seqs[i] = 0;
	}
	return i;
}

/* Argument checks and the counter reservation shared by both seals. */
static enum e2e_status seal_prepare(struct e2e_tx *tx, uint8_t *out, size_t out_cap,
	size_t *out_len, const uint8_t *topic, size_t topic_len, const uint8_t *pt, size_t pt_len)
{
	if (!tx || !out || !out_len || (!pt && pt_len) || !topic || topic_len == 0 ||
	    topic_len > E2E_TOPIC_MAX || pt_len > E2E_PLAINTEXT_MAX)
		return E2E_ERR_ARG;
	*out_len = 0;
	if (out_cap < pt_len + (tx->sign_sk ? E2E_SIGNED_OVERHEAD : E2E_ENVELOPE_OVERHEAD))
		return E2E_ERR_BUFFER;
	if (tx->counter >= tx->limit)
		return E2E_ERR_EXHAUSTED;
	if (tx->counter == tx->ceiling)
		return reserve_next(tx);
	return E2E_OK;
}

/* Seal with the next counter under (run, seq); the counter moves on success. */
static enum e2e_status seal_as(struct e2e_tx *tx, uint8_t *out, size_t out_cap,
	size_t *out_len, const uint8_t *topic, size_t topic_len, const uint8_t *pt, size_t pt_len,
	uint32_t run, uint32_t seq)
{
	struct e2e_header h;
	enum e2e_status st;

	h.suite = tx->sign_sk ? E2E_SUITE_V1_SIGNED : E2E_SUITE_V1_XCHACHA;
	h.scope = tx->id.scope;
	h.epoch = tx->id.epoch;
	h.sender = tx->id.sender;
	h.run = run;
	h.counter = tx->counter + 1;
	h.seq = seq;
	st = e2e_envelope_seal(out, out_cap, out_len, &h, tx->key, topic, topic_len, pt, pt_len);
	if (st == E2E_OK && tx->sign_sk)
		st = e2e_envelope_sign(out, out_cap, out_len, topic, topic_len, tx->sign_sk);
	if (st != E2E_OK)
		return st;
	tx->counter = h.counter;
	tx->sealed++;
	return E2E_OK;
}

enum e2e_status e2e_tx_seal(struct e2e_tx *tx, uint8_t *out, size_t out_cap,
	size_t *out_len, const uint8_t *topic, size_t topic_len,
	const uint8_t *pt, size_t pt_len)
{
	enum e2e_status st;
	uint64_t th;
	uint32_t i;

	st = seal_prepare(tx, out, out_cap, out_len, topic, topic_len, pt, pt_len);
	if (st != E2E_OK)
		return st;
	th = topichash(&tx->th, topic, topic_len);
	i = topic_slot(tx, th);
	if (tx->seqs[i] == (uint32_t)E2E_SEQ_MAX) {
		new_run(tx, 0);
		i = topic_slot(tx, th);
	}
	st = seal_as(tx, out, out_cap, out_len, topic, topic_len, pt, pt_len, tx->run,
		tx->seqs[i] + 1);
	if (st == E2E_OK)
		tx->seqs[i]++;
	return st;
}

enum e2e_status e2e_tx_seal_alone(struct e2e_tx *tx, uint8_t *out, size_t out_cap,
	size_t *out_len, const uint8_t *topic, size_t topic_len,
	const uint8_t *pt, size_t pt_len)
{
	enum e2e_status st;
	uint32_t run;

	st = seal_prepare(tx, out, out_cap, out_len, topic, topic_len, pt, pt_len);
	if (st != E2E_OK)
		return st;
	/* A run of its own: seq 1, and no seq of the current run is taken. */
	do
		run = random_run();
	while (run == tx->run);
	return seal_as(tx, out, out_cap, out_len, topic, topic_len, pt, pt_len, run, 1);
}

int e2e_tx_reserve_due(const struct e2e_tx *tx, struct e2e_keyid *id, uint64_t *ceiling)
{
	uint64_t want;

	/* Low-water mark: less than half a block left, and room under the limit. */
	if (!tx || tx->ceiling >= tx->limit || tx->ceiling - tx->counter >= tx->block / 2 + 1)
		return 0;
	want = tx->ceiling + tx->block;
	if (want > tx->limit || want < tx->ceiling)
		want = tx->limit;
	if (id)
		*id = tx->id;
	if (ceiling)
		*ceiling = want;
	return 1;
}

enum e2e_status e2e_tx_extend(struct e2e_tx *tx, uint64_t ceiling)
{
	if (!tx)
		return E2E_ERR_ARG;
	if (ceiling > tx->limit)
		ceiling = tx->limit;
	/* Never lowers: an older answer arriving late changes nothing. */
	if (ceiling > tx->ceiling)
		tx->ceiling = ceiling;
	return E2E_OK;
}

int e2e_tx_exhausted(const struct e2e_tx *tx)
{
	return !tx || tx->counter >= tx->limit;
}

void e2e_tx_stats(const struct e2e_tx *tx, struct e2e_tx_stats *st)
{
	if (!tx || !st)
		return;
	st->run = tx->run;
	st->counter = tx->sealed ? tx->counter : 0;
	st->ceiling = tx->ceiling;
	st->sealed = tx->sealed;
	st->streams = tx->topics.count;
	st->runs = tx->runs;
}
