/* test_log_stats.c - unit tests for tools/log_stats.c: nearest-rank percentiles, the
 * busiest sliding window (checked against brute force), and round axis steps.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "log_stats.h"

static void test_percentile(void **state)
{
    int64_t four[] = {4, 1, 3, 2}, one[] = {7}, hundred[100], twenty[20];
    (void)state;

    qs_log_sort_i64(four, 4);
    assert_int_equal(four[0], 1);
    assert_int_equal(four[3], 4);
    assert_int_equal(qs_log_percentile(four, 4, 50), 2); /* nearest rank: ceil(2) = 2nd */
    assert_int_equal(qs_log_percentile(four, 4, 51), 3);
    assert_int_equal(qs_log_percentile(four, 4, 95), 4);
    assert_int_equal(qs_log_percentile(four, 4, 100), 4);
    assert_int_equal(qs_log_percentile(four, 4, 1), 1);
    assert_int_equal(qs_log_percentile(one, 1, 50), 7);
    assert_int_equal(qs_log_percentile(one, 0, 50), -1);
    for (int i = 0; i < 100; i++)
        hundred[i] = 100 - i;
    qs_log_sort_i64(hundred, 100);
    assert_int_equal(qs_log_percentile(hundred, 100, 50), 50);
    assert_int_equal(qs_log_percentile(hundred, 100, 95), 95);
    assert_int_equal(qs_log_percentile(hundred, 100, 99), 99);
    /* 95% of 20 is exactly 19: the 19th, not the 20th (no floating-point creep) */
    for (int i = 0; i < 20; i++)
        twenty[i] = i + 1;
    assert_int_equal(qs_log_percentile(twenty, 20, 95), 19);
    /* with 8 values p95 is the 8th (7.6 rounds up): the summary's fixture has this */
    assert_int_equal(qs_log_percentile(twenty, 8, 95), 8);
}

static void test_peak_window_edges(void **state)
{
    struct qs_log_tw none[1] = {{0, 0}}, a[] = {{0, 1}, {60000, 1}}, b[] = {{0, 1}, {59999, 1}},
                     c[] = {{100, 50},    {900, 60},   {2000, 60},  {2700, 70},
                            {30000, 150}, {70000, 40}, {71000, 35}, {75000, 15}};
    int64_t at = 123;
    (void)state;

    assert_int_equal(qs_log_peak_window(none, 0, 60000, &at), 0);
    assert_int_equal(at, -1);
    assert_int_equal(qs_log_peak_window(a, 2, 60000, &at), 1); /* [t, t + 60 s): 60 s apart is two windows */
    assert_int_equal(at, 0);
    assert_int_equal(qs_log_peak_window(b, 2, 60000, &at), 2);
    assert_int_equal(at, 0);
    /* the summary fixture's qwen-plus: tokens 50+60+60+70+150 from 18:04:00.100 */
    assert_int_equal(qs_log_peak_window(c, 8, 60000, &at), 390);
    assert_int_equal(at, 100);
    /* later windows win only when larger: weigh the last three up */
    c[5].w = c[6].w = c[7].w = 200;
    assert_int_equal(qs_log_peak_window(c, 8, 60000, &at), 750);
    assert_int_equal(at, 30000);
    assert_int_equal(qs_log_peak_window(c, 8, 60000, NULL), 750);
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Random sorted instants: the answer equals the best of every window [t_i, t_i + w). */
static void test_peak_window_brute(void **state)
{
    struct qs_log_tw a[300];
    uint32_t seed = 7;
    (void)state;

    for (int round = 0; round < 50; round++) {
        size_t n = 1 + lcg(&seed) % 300;
        int64_t t = 0, window = 1000 + lcg(&seed) % 90000;
        for (size_t i = 0; i < n; i++) {
            t += lcg(&seed) % 5 == 0 ? 0 : lcg(&seed) % 3000; /* some equal times */
            a[i] = (struct qs_log_tw){t, 1 + lcg(&seed) % 500};
        }
        int64_t best = 0, best_at = -1;
        for (size_t i = 0; i < n; i++) {
            int64_t sum = 0;
            for (size_t j = i; j < n && a[j].ts_ms < a[i].ts_ms + window; j++)
                sum += a[j].w;
            if (sum > best) {
                best = sum;
                best_at = a[i].ts_ms;
            }
        }
        int64_t at;
        assert_int_equal(qs_log_peak_window(a, n, window, &at), best);
        assert_int_equal(at, best_at);
    }
}

static void test_nice(void **state)
{
    (void)state;
    assert_true(qs_log_nice_ceil(0) == 1);
    assert_true(qs_log_nice_ceil(-3) == 1);
    assert_true(qs_log_nice_ceil(1) == 1);
    assert_true(qs_log_nice_ceil(1.1) == 2);
    assert_true(qs_log_nice_ceil(2) == 2);
    assert_true(qs_log_nice_ceil(3) == 5);
    assert_true(qs_log_nice_ceil(4) == 5);
    assert_true(qs_log_nice_ceil(5) == 5);
    assert_true(qs_log_nice_ceil(7) == 10);
    assert_true(qs_log_nice_ceil(120) == 200);
    assert_true(qs_log_nice_ceil(1000) == 1000);
    assert_true(qs_log_nice_ceil(1667) == 2000);
    assert_true(qs_log_nice_ceil(0.3) > 0.49 && qs_log_nice_ceil(0.3) < 0.51);
    assert_true(qs_log_nice_step(100, 5) == 20);
    assert_true(qs_log_nice_step(5, 5) == 1);
    assert_true(qs_log_nice_step(2, 5) > 0.49 && qs_log_nice_step(2, 5) < 0.51);
    assert_true(qs_log_nice_step(10, 0) == 10);
}

static void test_time_step(void **state)
{
    (void)state;
    assert_int_equal(qs_log_time_step(76000, 8), 10000); /* 9.5 s wanted */
    assert_int_equal(qs_log_time_step(76000, 5), 30000); /* 15.2 s: past 15 */
    assert_int_equal(qs_log_time_step(5000, 8), 1000);
    assert_int_equal(qs_log_time_step(3600000, 6), 600000);
    assert_int_equal(qs_log_time_step(86400000, 8), 10800000);
    assert_int_equal(qs_log_time_step(30LL * 86400000, 10), 3 * 86400000LL); /* whole days */
    assert_int_equal(qs_log_time_step(1000, 0), 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentile),        cmocka_unit_test(test_peak_window_edges),
        cmocka_unit_test(test_peak_window_brute), cmocka_unit_test(test_nice),
        cmocka_unit_test(test_time_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
