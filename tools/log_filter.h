/* log_filter.h - which records `qshim-log filter` keeps (and plot's --model): every
 * condition given must hold. Pure: no I/O.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_LOG_FILTER_H
#define QS_LOG_FILTER_H

#include <stdint.h>

#include "log_rec.h"

/* Zero it for "everything". */
struct qs_log_filter {
    const char *model;  /* glob (fnmatch) on the model */
    const char *prog;   /* glob on the program */
    const char *event;  /* comma-separated events: "throttled,fallback" */
    const char *status; /* comma-separated statuses or classes: "429", "2xx,5xx", "-" (none) */
    int64_t since_ms;   /* ts >= since (when has_since) */
    int64_t until_ms;   /* ts < until (when has_until) */
    int has_since, has_until;
};

/* Checks <status> as a --status argument: 0 when valid, -1 if not. */
int qs_log_filter_status_valid(const char *status);

/* 1 when <r> meets every condition of <f>, else 0. A record without a ts never meets
 * since or until; one without a model or program never meets a glob on it. */
int qs_log_filter_match(const struct qs_log_filter *f, const struct qs_log_rec *r);

#endif
