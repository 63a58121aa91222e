/* log_stats.c - percentiles, sliding-window peaks, axis steps (see log_stats.h).
 * SPDX-License-Identifier: MIT
 */
#include "log_stats.h"

#include <stdlib.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void qs_log_sort_i64(int64_t *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_i64);
}

int64_t qs_log_percentile(const int64_t *v, size_t n, double p)
{
    if (n == 0)
        return -1;
    /* rank = ceil(p/100 * n), in integers to keep 95% of 20 from becoming 19.000001 */
    double exact = p / 100.0 * (double)n;
    size_t rank = (size_t)exact;
    if ((double)rank < exact - 1e-9)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

int64_t qs_log_peak_window(const struct qs_log_tw *a, size_t n, int64_t window_ms, int64_t *at_ms)
{
    int64_t best = 0, sum = 0, at = n > 0 ? a[0].ts_ms : -1;
    size_t hi = 0;

    /* Every window worth looking at starts at an instant; slide its end along. */
    for (size_t lo = 0; lo < n; lo++) {
        while (hi < n && a[hi].ts_ms < a[lo].ts_ms + window_ms)
            sum += a[hi++].w;
        if (sum > best) {
            best = sum;
            at = a[lo].ts_ms;
        }
        sum -= a[lo].w;
    }
    if (at_ms != NULL)
        *at_ms = at;
    return best;
}

double qs_log_nice_ceil(double v)
{
    double p = 1;

    if (!(v > 0))
        return 1;
    while (p * 10 < v)
        p *= 10;
    while (p > v)
        p /= 10;
    /* now p <= v < 10p */
    if (v <= p)
        return p;
    if (v <= 2 * p)
        return 2 * p;
    if (v <= 5 * p)
        return 5 * p;
    return 10 * p;
}

double qs_log_nice_step(double top, int ticks)
{
    if (ticks < 1)
        ticks = 1;
    return qs_log_nice_ceil(top / ticks);
}

int64_t qs_log_time_step(int64_t span_ms, int ticks)
{
    static const int64_t steps[] = {1000,    2000,    5000,     10000,    15000,    30000,
                                    60000,   120000,  300000,   600000,   900000,   1800000,
                                    3600000, 7200000, 10800000, 21600000, 43200000, 86400000};
    int64_t want;

    if (ticks < 1)
        ticks = 1;
    want = span_ms / ticks;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (steps[i] >= want)
            return steps[i];
    return (want + 86400000 - 1) / 86400000 * 86400000;
}
