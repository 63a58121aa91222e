/* log_collect.h - what `qshim-log summary` and `plot` keep of a log: counters per model
 * and per program, and a few numbers per request or throttle (struct qs_log_point), so
 * that a log far larger than memory streams through. Pure: no I/O.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_LOG_COLLECT_H
#define QS_LOG_COLLECT_H

#include <stddef.h>
#include <stdint.h>

#include "log_rec.h"

/* One model (in one region: two regions are two budgets) or one program. */
struct qs_log_group {
    char name[128];          /* model, or program; "-" when the records did not say */
    char region[32];         /* models: the records' region ("" when they did not say) */
    unsigned long requests;  /* event "request" */
    unsigned long ok;        /* of those, status 2xx */
    unsigned long hidden;    /* event "throttled": a throttle retried unseen */
    unsigned long passed;    /* requests whose answer was a throttle (qs_log_rec_throttle_passed) */
    unsigned long fallbacks; /* event "fallback" */
    int64_t input_tokens, output_tokens;
};

/* Kinds of points (bits). */
#define QS_PT_REQUEST 1u /* an event "request" */
#define QS_PT_HIDDEN 2u  /* an event "throttled" */
#define QS_PT_PASSED 4u  /* with QS_PT_REQUEST: its answer was a throttle */

struct qs_log_point {
    int64_t ts_ms;   /* -1: the record had no usable ts */
    int64_t tokens;  /* requests: qs_log_rec_tokens */
    int64_t wait_ms; /* requests: qs_log_rec_wait_ms */
    uint32_t model;  /* index into models */
    uint32_t prog;   /* index into progs */
    uint32_t kind;
};

/* Zero it before the first qs_log_data_add. */
struct qs_log_data {
    struct qs_log_group *models, *progs;
    size_t nmodels, nprogs;
    struct qs_log_point *pts;
    size_t npts;
    unsigned long records;                    /* every record added */
    unsigned long passthrough, config, error; /* events that are not requests */
    unsigned long other;                      /* events of no known kind */
    unsigned long no_ts;                      /* points without a usable ts */
    int64_t first_ts, last_ts;                /* over all records with a ts; valid when has_ts */
    int has_ts;
    size_t _mcap, _pcap, _cap;
};

/* Counts <r> and keeps its point when it is a request or a throttle. Returns 0, or -1
 * when memory runs out (<d> is then as it was before the call). */
int qs_log_data_add(struct qs_log_data *d, const struct qs_log_rec *r);

/* Orders the points by ts (stable: equal times keep the order they were read in). */
void qs_log_data_sort(struct qs_log_data *d);

/* For each of <ngroups> groups, the indexes of its points in ts order: <idx> (npts
 * entries) holds them group by group, group g's from <start>[g] to <start>[g + 1]
 * (<start> has ngroups + 1 entries). <by_prog> chooses programs, else models. Call after
 * qs_log_data_sort. */
void qs_log_data_index(const struct qs_log_data *d, int by_prog, size_t *idx, size_t *start);

void qs_log_data_free(struct qs_log_data *d);

#endif
