/*
 * Byte queues of one proxy connection (din, dout, uin, uout). Pure: no
 * sockets, no OpenSSL, so tests/proxy can check them alone.
 *
 * The queues that carry the publisher's plaintext (its PUBLISH payloads,
 * its CONNECT with a password, the rewritten CONNECT with the injected
 * password) are consumed with buf_consume_wipe: what leaves the queue is
 * zeroed, so no copy of it stays behind in the buffer's unused tail. Growth
 * never uses realloc, which could leave the old block in the heap unwiped.
 */
#ifndef E2E_PROXY_BUF_H
#define E2E_PROXY_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *p;
	size_t len, cap;
};

/*
 * Room for @p n more bytes at b->p + b->len (the caller adds to b->len what
 * it wrote); NULL when that would exceed @p limit bytes or memory is short.
 */
uint8_t *buf_reserve(struct buf *b, size_t n, size_t limit);

/* Append @p n bytes; -1 over @p limit or out of memory. */
int buf_append(struct buf *b, const uint8_t *p, size_t n, size_t limit);

/* Drop the first @p n bytes (memmove; callers consume once per batch). */
void buf_consume(struct buf *b, size_t n);

/*
 * buf_consume, then zero every byte past the new end that held data, so
 * nothing consumed (nor a stale copy of what moved) remains in the block.
 * Costs a memset of @p n bytes: no allocation, no system call.
 */
void buf_consume_wipe(struct buf *b, size_t n);

/* Free an empty queue's memory; returns how many bytes went back. */
size_t buf_release(struct buf *b);

/* Zero what the queue holds and free it (a closing connection). */
void buf_free_wipe(struct buf *b);

#endif
