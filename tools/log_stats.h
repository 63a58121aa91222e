/* log_stats.h - the arithmetic of qshim-log summary and plot: percentiles, the busiest
 * sliding window, and round numbers for chart axes. Pure: no I/O, no allocation.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_LOG_STATS_H
#define QS_LOG_STATS_H

#include <stddef.h>
#include <stdint.h>

/* Sorts <v> (<n> values) ascending. */
void qs_log_sort_i64(int64_t *v, size_t n);

/* The <p>th percentile (0 < p <= 100) of the ascending <v> by nearest rank: the
 * smallest value with at least p% of the values at or below it (p50 of 1,2,3,4 is 2;
 * p100 is the maximum). Returns -1 when n is 0. */
int64_t qs_log_percentile(const int64_t *v, size_t n, double p);

/* A weighted instant: one request at ts_ms, counting w (1 for requests, its tokens for
 * tokens). */
struct qs_log_tw {
    int64_t ts_ms;
    int64_t w;
};

/* The largest sum of w over the instants inside any window [t, t + window_ms) of <a>
 * (<n> entries, ascending by ts_ms): the peak RPM with window_ms 60000 and w 1.
 * *<at_ms> (if not NULL) gets the start of the first such window, the ts of an instant;
 * -1 when n is 0. Returns 0 when n is 0. */
int64_t qs_log_peak_window(const struct qs_log_tw *a, size_t n, int64_t window_ms, int64_t *at_ms);

/* The smallest 1, 2 or 5 times a power of ten that is >= <v> (v > 0); 1 for v <= 0. */
double qs_log_nice_ceil(double v);

/* A round tick step for an axis from 0 to <top> with about <ticks> ticks: 1, 2 or 5
 * times a power of ten. */
double qs_log_nice_step(double top, int ticks);

/* A round tick step in ms for a time axis <span_ms> long with about <ticks> ticks:
 * one of 1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min, 1, 2, 3, 6, 12 h, 1 d, or
 * whole days. */
int64_t qs_log_time_step(int64_t span_ms, int ticks);

#endif
