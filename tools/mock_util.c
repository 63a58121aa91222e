/* mock_util.c - allocation, growable byte buffers and hashing for qshim-mock.
 * SPDX-License-Identifier: MIT
 */
#include "mock_util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mock_die_oom(void)
{
    fputs("qshim-mock: out of memory\n", stderr);
    exit(1);
}

void *mock_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        mock_die_oom();
    return q;
}

void *mock_calloc(size_t n) { return memset(mock_realloc(NULL, n), 0, n); }

void mock_buf_grow(struct mock_buf *b, size_t more)
{
    size_t cap = b->cap ? b->cap : 256;
    if (b->len + more <= b->cap)
        return;
    while (cap < b->len + more)
        cap *= 2;
    b->p = mock_realloc(b->p, cap);
    b->cap = cap;
}

void mock_buf_add(struct mock_buf *b, const void *p, size_t n)
{
    mock_buf_grow(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void mock_buf_str(struct mock_buf *b, const char *s) { mock_buf_add(b, s, strlen(s)); }

void mock_buf_printf(struct mock_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    mock_buf_grow(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void mock_buf_jstr(struct mock_buf *b, const char *s, size_t n)
{
    mock_buf_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            mock_buf_printf(b, "\\%c", ch);
        else if (ch < 0x20)
            mock_buf_printf(b, "\\u%04x", ch);
        else
            mock_buf_add(b, &s[i], 1);
    }
    mock_buf_add(b, "\"", 1);
}

void mock_buf_free(struct mock_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

uint64_t mock_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    while (n--) {
        h ^= *s++;
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t mock_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void mock_uuid(char out[37], uint64_t h)
{
    uint64_t a = mock_mix64(h), b = mock_mix64(h ^ 0x5bd1e9955bd1e995ull);
    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012" PRIx64, (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
             (unsigned)a & 0xffff, (unsigned)(b >> 48), (uint64_t)(b & 0xffffffffffffu));
}

int mock_parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}
