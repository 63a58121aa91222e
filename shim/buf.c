/* buf.c - growable byte buffer (see buf.h).
 * SPDX-License-Identifier: MIT
 */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

#define KEEP_MAX (64 * 1024) /* larger buffers are released when emptied */

int qs_buf_reserve(struct qs_buf *b, size_t n)
{
    if (b->len + n < b->len)
        return -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n) {
            if (cap > ((size_t)-1) / 2)
                return -1;
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    return 0;
}

int qs_buf_append(struct qs_buf *b, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    if (qs_buf_reserve(b, n) != 0)
        return -1;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

void qs_buf_drop(struct qs_buf *b, size_t n)
{
    if (n >= b->len) {
        qs_buf_reset(b);
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    b->off = b->off > n ? b->off - n : 0;
}

void qs_buf_reset(struct qs_buf *b)
{
    b->len = b->off = 0;
    if (b->cap > KEEP_MAX)
        qs_buf_free(b);
}

void qs_buf_free(struct qs_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->off = b->cap = 0;
}
