/* log_series.c - binning for `qshim-log plot` (see log_series.h).
 * SPDX-License-Identifier: MIT
 */
#include "log_series.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log_stats.h"

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

int qs_log_series_build(struct qs_log_series *s, const struct qs_log_data *d, uint32_t model,
                        int64_t first_ms, int64_t last_ms, int64_t bin_ms, size_t max_bins)
{
    memset(s, 0, sizeof *s);
    if (bin_ms <= 0 || last_ms < first_ms)
        return -1;
    int64_t b0 = floor_div(first_ms, bin_ms), b1 = floor_div(last_ms, bin_ms);
    if ((uint64_t)(b1 - b0) >= max_bins)
        return -1;
    s->t0_ms = b0 * bin_ms;
    s->bin_ms = bin_ms;
    s->nbins = (size_t)(b1 - b0 + 1);
    s->req = calloc(s->nbins, sizeof *s->req);
    s->tok = calloc(s->nbins, sizeof *s->tok);
    s->hidden = calloc(s->nbins, sizeof *s->hidden);
    s->passed = calloc(s->nbins, sizeof *s->passed);
    if (!s->req || !s->tok || !s->hidden || !s->passed) {
        qs_log_series_free(s);
        return -1;
    }
    for (size_t i = 0; i < d->npts; i++) {
        const struct qs_log_point *p = &d->pts[i];
        if (p->model != model || p->ts_ms < first_ms || p->ts_ms > last_ms)
            continue;
        size_t b = (size_t)(floor_div(p->ts_ms, bin_ms) - b0);
        if (p->kind & QS_PT_REQUEST) {
            s->req[b]++;
            s->tok[b] += p->tokens;
            s->passed[b] += (p->kind & QS_PT_PASSED) != 0;
        }
        if (p->kind & QS_PT_HIDDEN)
            s->hidden[b]++;
    }
    return 0;
}

void qs_log_series_free(struct qs_log_series *s)
{
    free(s->req);
    free(s->tok);
    free(s->hidden);
    free(s->passed);
    memset(s, 0, sizeof *s);
}

double qs_log_chart_top(const struct qs_log_chart *c, int *limit_shown)
{
    int64_t peak = 0;

    for (size_t i = 0; i < c->n; i++)
        if (c->v[i] > peak)
            peak = c->v[i];
    *limit_shown = c->limit > 0 && (peak == 0 ? c->limit <= 4 : c->limit <= 4.0 * (double)peak);
    return qs_log_nice_ceil(*limit_shown && c->limit > (double)peak ? c->limit : (double)peak);
}

void qs_log_fmt_value(double v, char *out, size_t len)
{
    static const char sfx[] = {'k', 'M', 'G'};
    int k = -1;

    if (v < 0)
        v = 0;
    while (v >= 1000 && k < 2) {
        v /= 1000;
        k++;
    }
    /* one decimal below 10 unless whole; none from 10 up */
    if (v < 10 && v != (double)(int64_t)v)
        snprintf(out, len, "%.1f", v);
    else
        snprintf(out, len, "%.0f", v);
    if (k >= 0 && strlen(out) + 1 < len) {
        size_t n = strlen(out);
        out[n] = sfx[k];
        out[n + 1] = '\0';
    }
}
