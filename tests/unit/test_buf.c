/* test_buf.c - unit tests for shim/buf.c, the growable byte buffer behind every held
 * request and answer: append, drop with a read offset, reset (keeping small memory,
 * releasing large), free, and sizes so large that they must fail without harm.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "buf.h"

static void assert_content(const struct qs_buf *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    assert_true(b->cap >= b->len);
    if (b->len > 0)
        assert_memory_equal(b->p, want, b->len);
}

static void test_append(void **state)
{
    struct qs_buf b = {0};

    (void)state;
    /* Assumption: a zeroed buffer is empty and valid; appending nothing needs no data. */
    assert_int_equal(qs_buf_append(&b, NULL, 0), 0);
    assert_int_equal(qs_buf_avail(&b), 0);
    /* Assumption: appends accumulate in order. */
    assert_int_equal(qs_buf_append(&b, "hello ", 6), 0);
    assert_int_equal(qs_buf_append(&b, "world", 5), 0);
    assert_content(&b, "hello world");
    assert_int_equal(qs_buf_avail(&b), 11);
    qs_buf_free(&b);
}

static void test_growth(void **state)
{
    struct qs_buf b = {0};
    char chunk[1000];

    (void)state;
    /* Assumption: growth past many doublings keeps every byte (4 MB in 1000-byte appends,
     * then one byte at a time). */
    for (int i = 0; i < 4000; i++) {
        memset(chunk, 'a' + i % 26, sizeof chunk);
        assert_int_equal(qs_buf_append(&b, chunk, sizeof chunk), 0);
    }
    for (int i = 0; i < 5000; i++)
        assert_int_equal(qs_buf_append(&b, "z", 1), 0);
    assert_int_equal(b.len, 4000 * 1000 + 5000);
    for (int i = 0; i < 4000; i++)
        assert_int_equal(b.p[i * 1000 + 999], 'a' + i % 26);
    assert_int_equal(b.p[b.len - 1], 'z');
    qs_buf_free(&b);
}

static void test_drop(void **state)
{
    struct qs_buf b = {0};

    (void)state;
    assert_int_equal(qs_buf_append(&b, "0123456789", 10), 0);
    /* Assumption: drop removes stored bytes from the front and moves the read offset back
     * with them, never below 0. */
    b.off = 4;
    qs_buf_drop(&b, 2);
    assert_content(&b, "23456789");
    assert_int_equal(b.off, 2);
    qs_buf_drop(&b, 5);
    assert_content(&b, "789");
    assert_int_equal(b.off, 0);
    assert_int_equal(qs_buf_avail(&b), 3);
    qs_buf_drop(&b, 0);
    assert_content(&b, "789");
    /* Assumption: dropping all or more empties it. */
    qs_buf_drop(&b, 3);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.off, 0);
    assert_int_equal(qs_buf_append(&b, "ab", 2), 0);
    qs_buf_drop(&b, 100);
    assert_int_equal(b.len, 0);
    qs_buf_free(&b);
}

static void test_reset_and_free(void **state)
{
    static char big[100 * 1024];
    struct qs_buf b = {0};

    (void)state;
    /* Assumption: reset empties a small buffer and keeps its memory for reuse. */
    assert_int_equal(qs_buf_append(&b, "abc", 3), 0);
    b.off = 1;
    char *p = b.p;
    qs_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.off, 0);
    assert_ptr_equal(b.p, p);
    assert_true(b.cap > 0);
    /* Assumption: reset releases a large buffer (over 64 KiB), which stays usable. */
    assert_int_equal(qs_buf_append(&b, big, sizeof big), 0);
    qs_buf_reset(&b);
    assert_null(b.p);
    assert_int_equal(b.cap, 0);
    assert_int_equal(qs_buf_append(&b, "x", 1), 0);
    assert_content(&b, "x");
    /* Assumption: free leaves a zeroed buffer, so freeing twice is harmless. */
    qs_buf_free(&b);
    assert_null(b.p);
    assert_int_equal(b.len + b.off + b.cap, 0);
    qs_buf_free(&b);
}

static void test_huge_sizes_fail(void **state)
{
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 5, SIZE_MAX / 2 + 1,
                                  SIZE_MAX / 2 + 4096};
    struct qs_buf b = {0};
    char small[8] = "1234567";

    (void)state;
    assert_int_equal(qs_buf_append(&b, "keep", 4), 0);
    b.off = 1;
    struct qs_buf before = b;
    /* Assumption: a size that cannot be held fails with -1 before reading <data> (here far
     * smaller than the size) and leaves the buffer exactly as it was. */
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        assert_int_equal(qs_buf_append(&b, small, huge[i]), -1);
        assert_memory_equal(&b, &before, sizeof b);
        assert_content(&b, "keep");
    }
    /* Assumption: a size that would overflow len + n fails the same way. */
    assert_int_equal(qs_buf_append(&b, small, SIZE_MAX - 2), -1);
    assert_memory_equal(&b, &before, sizeof b);
    /* Assumption: the buffer still works afterwards. */
    assert_int_equal(qs_buf_append(&b, "!", 1), 0);
    assert_content(&b, "keep!");
    qs_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_drop),
        cmocka_unit_test(test_reset_and_free),
        cmocka_unit_test(test_huge_sizes_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
