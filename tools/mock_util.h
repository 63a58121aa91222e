/* mock_util.h - allocation, growable byte buffers and hashing for qshim-mock.
 *
 * The mock is a test server, not a preloaded library: running out of memory has no useful
 * recovery, so these helpers exit the program instead of returning errors.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_MOCK_UTIL_H
#define QS_MOCK_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Prints "out of memory" and exits 1. */
void mock_die_oom(void);
/* realloc/calloc that never return NULL (they call mock_die_oom). */
void *mock_realloc(void *p, size_t n);
void *mock_calloc(size_t n);

/* Growable byte buffer; valid when zeroed. */
struct mock_buf {
    char *p;
    size_t len, cap;
};

/* Makes room for <more> bytes after len. */
void mock_buf_grow(struct mock_buf *b, size_t more);
void mock_buf_add(struct mock_buf *b, const void *p, size_t n);
void mock_buf_str(struct mock_buf *b, const char *s);
__attribute__((format(printf, 2, 3))) void mock_buf_printf(struct mock_buf *b, const char *fmt, ...);
/* Appends <s>/<n> as a quoted JSON string; bytes >= 0x80 pass through (UTF-8). */
void mock_buf_jstr(struct mock_buf *b, const char *s, size_t n);
/* Frees the memory and zeroes <b>. */
void mock_buf_free(struct mock_buf *b);

#define MOCK_FNV_BASIS 0xcbf29ce484222325ull

/* FNV-1a over <p>/<n>, continuing from <h> (MOCK_FNV_BASIS to start). */
uint64_t mock_fnv1a(uint64_t h, const void *p, size_t n);
/* splitmix64 finaliser: spreads <x> into well-mixed bits. */
uint64_t mock_mix64(uint64_t x);
/* Writes a UUID-shaped id (36 characters and a NUL) derived from <h>. */
void mock_uuid(char out[37], uint64_t h);
/* Parses exactly <n> decimal digits. Returns 0, or -1 (empty, non-digit, overflow; *out untouched). */
int mock_parse_u64(const char *s, size_t n, uint64_t *out);

#endif
