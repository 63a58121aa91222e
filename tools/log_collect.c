/* log_collect.c - per model and per program counters and points (see log_collect.h).
 * SPDX-License-Identifier: MIT
 */
#include "log_collect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log_vec.h"

/* The index of the group named <name> (and <region>) in *<g>, added if new; -1 when
 * memory runs out. The last one found is tried first: logs come in runs. */
static long group(struct qs_log_group **g, size_t *n, size_t *cap, const char *name, const char *region)
{
    static const char none[] = "-";
    if (name[0] == '\0')
        name = none;
    for (size_t i = *n; i-- > 0;)
        if (strcmp((*g)[i].name, name) == 0 && strcmp((*g)[i].region, region) == 0)
            return (long)i;
    if (qs_log_grow(g, cap, *n + 1, sizeof **g) != 0)
        return -1;
    struct qs_log_group *e = &(*g)[*n];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->region, sizeof e->region, "%s", region);
    return (long)(*n)++;
}

static void count(struct qs_log_group *g, const struct qs_log_rec *r, uint32_t kind)
{
    if (kind & QS_PT_REQUEST) {
        g->requests++;
        g->ok += (unsigned long)qs_log_rec_ok(r);
        g->passed += (kind & QS_PT_PASSED) != 0;
        g->input_tokens += r->input_tokens > 0 ? r->input_tokens : 0;
        g->output_tokens += r->output_tokens > 0 ? r->output_tokens : 0;
    } else if (kind & QS_PT_HIDDEN) {
        g->hidden++;
    } else {
        g->fallbacks++;
    }
}

int qs_log_data_add(struct qs_log_data *d, const struct qs_log_rec *r)
{
    uint32_t kind = 0;
    int fallback = strcmp(r->event, "fallback") == 0;

    if (strcmp(r->event, "request") == 0)
        kind = QS_PT_REQUEST | (qs_log_rec_throttle_passed(r) ? QS_PT_PASSED : 0);
    else if (strcmp(r->event, "throttled") == 0)
        kind = QS_PT_HIDDEN;
    if (kind != 0 || fallback) {
        size_t nm = d->nmodels, np = d->nprogs;
        long m = group(&d->models, &d->nmodels, &d->_mcap, r->model, r->region);
        long p = m < 0 ? -1 : group(&d->progs, &d->nprogs, &d->_pcap, r->prog, "");
        if (p < 0 || (kind != 0 && qs_log_grow(&d->pts, &d->_cap, d->npts + 1, sizeof *d->pts) != 0)) {
            d->nmodels = nm; /* a group added just now is dropped again */
            d->nprogs = np;
            return -1;
        }
        count(&d->models[m], r, kind);
        count(&d->progs[p], r, kind);
        if (kind != 0) {
            struct qs_log_point *pt = &d->pts[d->npts++];
            pt->ts_ms = r->ts_ms;
            pt->tokens = qs_log_rec_tokens(r);
            pt->wait_ms = qs_log_rec_wait_ms(r);
            pt->model = (uint32_t)m;
            pt->prog = (uint32_t)p;
            pt->kind = kind;
            d->no_ts += r->ts_ms < 0;
        }
    } else if (strcmp(r->event, "passthrough") == 0) {
        d->passthrough++;
    } else if (strcmp(r->event, "config") == 0) {
        d->config++;
    } else if (strcmp(r->event, "error") == 0) {
        d->error++;
    } else {
        d->other++;
    }
    d->records++;
    if (r->ts_ms >= 0) {
        if (!d->has_ts || r->ts_ms < d->first_ts)
            d->first_ts = r->ts_ms;
        if (!d->has_ts || r->ts_ms > d->last_ts)
            d->last_ts = r->ts_ms;
        d->has_ts = 1;
    }
    return 0;
}

/* A merge sort: qsort is not stable, and a log is mostly in order already, which
 * the run check below makes cheap. */
static void merge_sort(struct qs_log_point *a, struct qs_log_point *tmp, size_t n)
{
    size_t half = n / 2;
    if (n < 2)
        return;
    merge_sort(a, tmp, half);
    merge_sort(a + half, tmp, n - half);
    if (a[half - 1].ts_ms <= a[half].ts_ms)
        return;
    size_t i = 0, j = half, k = 0;
    while (i < half && j < n)
        tmp[k++] = a[j].ts_ms < a[i].ts_ms ? a[j++] : a[i++];
    while (i < half)
        tmp[k++] = a[i++];
    memcpy(a, tmp, k * sizeof *a); /* the rest of the right half is in place */
}

void qs_log_data_sort(struct qs_log_data *d)
{
    struct qs_log_point *tmp;
    size_t i;

    for (i = 1; i < d->npts && d->pts[i - 1].ts_ms <= d->pts[i].ts_ms; i++)
        ;
    if (i >= d->npts)
        return;
    tmp = malloc(d->npts * sizeof *tmp);
    if (tmp == NULL) { /* no room for a merge: an insertion sort is slow but stable */
        for (i = 1; i < d->npts; i++) {
            struct qs_log_point p = d->pts[i];
            size_t j = i;
            for (; j > 0 && d->pts[j - 1].ts_ms > p.ts_ms; j--)
                d->pts[j] = d->pts[j - 1];
            d->pts[j] = p;
        }
        return;
    }
    merge_sort(d->pts, tmp, d->npts);
    free(tmp);
}

void qs_log_data_index(const struct qs_log_data *d, int by_prog, size_t *idx, size_t *start)
{
    size_t ng = by_prog ? d->nprogs : d->nmodels;

    memset(start, 0, (ng + 1) * sizeof *start);
    for (size_t i = 0; i < d->npts; i++)
        start[(by_prog ? d->pts[i].prog : d->pts[i].model) + 1]++;
    for (size_t g = 0; g < ng; g++)
        start[g + 1] += start[g];
    /* start[g] is used as the fill position of g, then restored */
    for (size_t i = 0; i < d->npts; i++)
        idx[start[by_prog ? d->pts[i].prog : d->pts[i].model]++] = i;
    for (size_t g = ng; g > 0; g--)
        start[g] = start[g - 1];
    start[0] = 0;
}

void qs_log_data_free(struct qs_log_data *d)
{
    free(d->models);
    free(d->progs);
    free(d->pts);
    memset(d, 0, sizeof *d);
}
