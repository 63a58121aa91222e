/* buf.h - a growable byte buffer with a read offset.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_BUF_H
#define QS_BUF_H

#include <stddef.h>

struct qs_buf {
    char *p;
    size_t len; /* bytes stored */
    size_t off; /* bytes already taken from the front */
    size_t cap;
};

/* Appends <n> bytes. Returns 0, or -1 (out of memory; <b> unchanged). */
int qs_buf_append(struct qs_buf *b, const void *data, size_t n);
/* Makes room for <n> more bytes without storing any. Returns 0, or -1 (out of memory). */
int qs_buf_reserve(struct qs_buf *b, size_t n);
/* Bytes not yet taken. */
static inline size_t qs_buf_avail(const struct qs_buf *b) { return b->len - b->off; }
/* Drops the first <n> stored bytes (from p, not from off), keeping the rest. */
void qs_buf_drop(struct qs_buf *b, size_t n);
/* Empties the buffer, keeping its memory when small and releasing it when large. */
void qs_buf_reset(struct qs_buf *b);
void qs_buf_free(struct qs_buf *b);

#endif
