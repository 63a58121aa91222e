/* log_series.h - `qshim-log plot` data: one model's requests, tokens and throttles per
 * second or per minute, and the chart description the terminal and SVG renderers share.
 * Pure: no I/O.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_LOG_SERIES_H
#define QS_LOG_SERIES_H

#include <stddef.h>
#include <stdint.h>

#include "log_collect.h"

/* Bin i covers [t0_ms + i * bin_ms, t0_ms + (i + 1) * bin_ms). */
struct qs_log_series {
    int64_t t0_ms, bin_ms;
    size_t nbins;
    int64_t *req;    /* requests that ended in the bin */
    int64_t *tok;    /* their tokens (qs_log_rec_tokens) */
    int64_t *hidden; /* throttles qshim retried unseen */
    int64_t *passed; /* requests whose final answer was a throttle */
};

/* Bins the points of model number <model> of <d> from <first_ms> to <last_ms> (both
 * inside the result; t0 is first_ms rounded down to a whole bin). Points without a ts or
 * outside the range are left out. Returns 0; -1 when memory runs out or more than
 * <max_bins> bins would be needed (then <s> holds nothing to free). */
int qs_log_series_build(struct qs_log_series *s, const struct qs_log_data *d, uint32_t model,
                        int64_t first_ms, int64_t last_ms, int64_t bin_ms, size_t max_bins);

void qs_log_series_free(struct qs_log_series *s);

/* One chart: a series of values per bin against a limit, with throttle markers. */
struct qs_log_chart {
    const char *title;      /* "qwen-plus (cn-beijing): requests per second" */
    const char *what;       /* what a bar counts, for the legend: "requests per second" */
    const char *unit;       /* short, for the axis: "req/s" */
    const char *limit_note; /* where the limit comes from: "120 rpm / 60, table cn-beijing" */
    const int64_t *v;
    const int64_t *hidden, *passed; /* markers; NULL for none */
    size_t n;
    int64_t t0_ms, bin_ms;
    double limit; /* in v's unit; 0 = not limited */
};

/* The top of a chart's value axis: a round number at or above the highest value and the
 * limit; but when the limit is more than 4 times the highest value, the limit is left off
 * the chart (so that the bars are not flattened) and *<limit_shown> is 0. */
double qs_log_chart_top(const struct qs_log_chart *c, int *limit_shown);

/* Compact value text: "0", "2.5", "120", "1.2k", "35k", "1.2M" (at most 5 characters
 * for values below 1e9). */
void qs_log_fmt_value(double v, char *out, size_t len);

#endif
