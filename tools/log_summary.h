/* log_summary.h - `qshim-log summary`: per model and per program, requests and their
 * outcomes, waits, tokens, and the busiest minute against the limit that applied.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_LOG_SUMMARY_H
#define QS_LOG_SUMMARY_H

#include <stdio.h>

#include "config.h"
#include "log_collect.h"

/* What is worked out from one group's points (its requests). -1 where there is nothing
 * to work it out from. */
struct qs_log_gstats {
    int64_t wait_p50, wait_p95, wait_max; /* paced_ms + retry_ms of its requests */
    int64_t peak_rpm, peak_rpm_at;        /* most requests in any 60 s window, and its start */
    int64_t peak_tpm, peak_tpm_at;        /* most tokens in any 60 s window, and its start */
};

/* Works out <st> from the points <idx>[0..n-1] of <d> (in ts order, as
 * qs_log_data_index gives them); points that are not requests are passed over, and
 * requests without a ts count for waits but not for peaks. Returns 0, or -1 when
 * memory runs out. */
int qs_log_group_stats(const struct qs_log_data *d, const size_t *idx, size_t n, struct qs_log_gstats *st);

/* Prints the summary of <d> (after qs_log_data_sort) on <out>: tables, or with <json>
 * one JSON document. Limits are looked up with <cfg>. <skipped> is the number of lines
 * the reader passed over. Returns 0, or -1 when memory runs out. */
int qs_log_summary_print(FILE *out, const struct qs_log_data *d, const struct qs_config *cfg, int json,
                         unsigned long skipped);

#endif
