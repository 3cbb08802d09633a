/* Connection byte queues; see buf.h. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

uint8_t *buf_reserve(struct buf *b, size_t n, size_t limit)
{
	if (b->len + n > limit)
		return NULL;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *p;

		while (cap < b->len + n)
			cap *= 2;
		/* Not realloc: the old block may hold plaintext and must be wiped. */
		p = malloc(cap);
		if (!p)
			return NULL;
		if (b->p) {
			memcpy(p, b->p, b->len);
			sodium_memzero(b->p, b->cap);
			free(b->p);
		}
		b->p = p;
		b->cap = cap;
	}
	return b->p + b->len;
}

int buf_append(struct buf *b, const uint8_t *p, size_t n, size_t limit)
{
	uint8_t *at = buf_reserve(b, n, limit);

	if (!at)
		return -1;
	memcpy(at, p, n);
	b->len += n;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;   /* keep the memory while busy: buf_release frees it */
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

void buf_consume_wipe(struct buf *b, size_t n)
{
	size_t old = b->len;

	if (n > old)
		n = old;
	buf_consume(b, n);
	/* [len, old) held the consumed bytes or a stale copy of those that moved. */
	if (n)
		sodium_memzero(b->p + b->len, old - b->len);
}

size_t buf_release(struct buf *b)
{
	size_t n = b->cap;

	if (b->len || !b->p)
		return 0;
	free(b->p);
	memset(b, 0, sizeof *b);
	return n;
}

void buf_free_wipe(struct buf *b)
{
	if (b->p) {
		sodium_memzero(b->p, b->len);
		free(b->p);
	}
	memset(b, 0, sizeof *b);
}
