/* fuzz_json.c - libFuzzer target for shim/json.c: the input fed whole, split in two at
 * a data-derived point, and (up to 4 KiB) one byte at a time must give the same
 * callbacks, result and counts; each callback's value is checked against json.h.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ishim tests/fuzz/fuzz_json.c shim/json.c
 *   cc -DQS_FUZZ_MAIN -Ishim tests/fuzz/fuzz_json.c shim/json.c   (then: ./a.out FILE...)
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

struct run {
    uint64_t hash; /* FNV-1a over every callback's depth, path, type, flag and value */
    long consumed; /* sum of the feeds' results, up to an error */
    int err;
    int done;
    uint64_t text_chars, cjk_chars;
};

static void mix(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *s = p;

    for (size_t i = 0; i < n; i++)
        *h = (*h ^ s[i]) * 0x100000001b3u;
}

static void hash_cb(void *ctx, const struct qs_json_value *v)
{
    struct run *r = ctx;

    if (v->depth < 0 || v->depth > QS_JSON_MAX_DEPTH || v->type < QS_JSON_STRING || v->type > QS_JSON_NULL ||
        v->len > QS_JSON_STR_MAX || v->val[v->len] != '\0' || (v->truncated && v->type > QS_JSON_NUMBER))
        abort();
    for (int i = 0; i < v->depth; i++) {
        size_t n = strlen(v->path[i]);
        if (n > QS_JSON_KEY_MAX)
            abort();
        mix(&r->hash, v->path[i], n + 1);
    }
    mix(&r->hash, &v->depth, sizeof v->depth);
    mix(&r->hash, &v->type, sizeof v->type);
    mix(&r->hash, &v->truncated, sizeof v->truncated);
    mix(&r->hash, &v->len, sizeof v->len);
    mix(&r->hash, v->val, v->len);
}

/* Feeds a first piece of <first> bytes, then pieces of <step>, each in a heap block of
 * exactly its size so that ASan sees any read past a feed. */
static void feed(const uint8_t *data, size_t size, size_t first, size_t step, struct run *r)
{
    struct qs_json j;
    size_t off = 0, n = first < size ? first : size;

    memset(&j, 0, sizeof j);
    memset(r, 0, sizeof *r);
    r->hash = 0xcbf29ce484222325u;
    for (;;) {
        char *piece = malloc(n > 0 ? n : 1);
        long rc;

        if (piece == NULL)
            abort();
        memcpy(piece, data + off, n);
        rc = qs_json_feed(&j, piece, n, hash_cb, r);
        free(piece);
        if (r->err && rc != QS_JSON_EBAD)
            abort(); /* an error must stick */
        if (rc == QS_JSON_EBAD)
            r->err = 1;
        else if (rc < 0 || (size_t)rc > n)
            abort();
        else
            r->consumed += rc;
        off += n;
        if (off >= size)
            break;
        n = size - off < step ? size - off : step;
    }
    r->done = j.done;
    r->text_chars = j.text_chars;
    r->cjk_chars = j.cjk_chars;
}

static void check_same(const struct run *a, const struct run *b)
{
    if (a->hash != b->hash || a->err != b->err || a->done != b->done || a->text_chars != b->text_chars ||
        a->cjk_chars != b->cjk_chars || (!a->err && a->consumed != b->consumed))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run whole, other;
    uint64_t h = 0xcbf29ce484222325u;
    size_t step = size > 0 ? size : 1;

    mix(&h, data, size);
    feed(data, size, size, step, &whole);
    feed(data, size, (size_t)(h % (size + 1)), step, &other);
    check_same(&whole, &other);
    if (size <= 4096) {
        feed(data, size, 1, 1, &other);
        check_same(&whole, &other);
    }
    return 0;
}

#ifdef QS_FUZZ_MAIN
/* Without libFuzzer: runs the target once over each file named on the command line. */
int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0, n;

        if (f == NULL) {
            perror(argv[i]);
            return 1;
        }
        do {
            if (len == cap) {
                cap = cap ? cap * 2 : 65536;
                buf = realloc(buf, cap);
                if (buf == NULL)
                    abort();
            }
            n = fread(buf + len, 1, cap - len, f);
            len += n;
        } while (n > 0);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, len);
        free(buf);
    }
    printf("fuzz_json: %d input(s) ok\n", argc - 1);
    return 0;
}
#endif
