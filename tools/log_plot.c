/* log_plot.c - terminal charts for `qshim-log plot` (see log_plot.h).
 *
 *   qwen-plus (cn-beijing): requests per second
 *     req/s, times UTC on 2026-11-23
 *        4 |
 *        2 |----##-------------   <- the limit row: '-' where no bar reaches it
 *          | ## ## ##
 *        0 ++------------+----
 *           18:04:00     18:04:15
 *      429    x  X                <- x: retried unseen, X: passed on to the program
 *     # requests per second   - limit 2 req/s   (120 rpm / 60, table cn-beijing)
 * SPDX-License-Identifier: MIT
 */
#include "log_plot.h"

#include <stdlib.h>
#include <string.h>

#include "log_stats.h"
#include "log_time.h"

#define MARGIN 8 /* "%6s |" */

/* Columns: how bins map onto them. With fewer bins than columns each bin gets <per>
 * columns; with more, every column is used and column c stands for bins
 * [c * nbins / n, (c + 1) * nbins / n): <gmin> or <gmax> of them. */
struct cols {
    size_t n;   /* columns used */
    size_t per; /* columns per bin, >= 1 */
    size_t nbins;
    size_t gmin, gmax; /* bins per column, 1 and 1 unless squeezed */
};

static struct cols layout(size_t nbins, size_t avail)
{
    struct cols k = {0, 1, nbins, 1, 1};
    if (nbins == 0)
        return k;
    if (nbins <= avail) {
        k.per = avail / nbins;
        k.n = nbins * k.per;
    } else {
        k.n = avail;
        k.gmin = nbins / avail;
        k.gmax = (nbins + avail - 1) / avail;
    }
    return k;
}

/* The bin range of column <c>: [*lo, *hi). 0 when the column is a gap between bars. */
static int bins_of(const struct cols *k, size_t c, size_t *lo, size_t *hi)
{
    if (k->per > 1) {
        *lo = c / k->per;
        *hi = *lo + 1;
        return !(k->per >= 3 && c % k->per == k->per - 1);
    }
    *lo = c * k->nbins / k->n;
    *hi = (c + 1) * k->nbins / k->n;
    return 1;
}

/* The column that shows bin <b> (its first, when stretched). */
static size_t col_of(const struct cols *k, size_t b)
{
    if (k->per > 1 || k->gmax == 1)
        return b * k->per;
    /* the c with c * nbins / n <= b < (c + 1) * nbins / n */
    return ((b + 1) * k->n + k->nbins - 1) / k->nbins - 1;
}

/* Prints <s> without trailing blanks, then a newline. */
static void put_line(FILE *out, char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        n--;
    s[n] = '\0';
    fprintf(out, "%s\n", s);
}

/* Word-wraps <items> (each kept whole) into lines of <width>, indented by 2 after the first. */
static void wrap(FILE *out, const char *const *items, size_t n, int width)
{
    int col = 0;
    for (size_t i = 0; i < n; i++) {
        int len = (int)strlen(items[i]);
        if (len == 0)
            continue;
        if (col > 0 && col + 3 + len > width) {
            fputc('\n', out);
            col = 0;
        }
        if (col == 0)
            col = fprintf(out, "  %.*s", width - 2, items[i]); /* cut when it cannot fit at all */
        else
            col += fprintf(out, "   %s", items[i]);
    }
    if (col > 0)
        fputc('\n', out);
}

void qs_log_plot_text(FILE *out, const struct qs_log_chart *c, int width, int height)
{
    int shown;
    double top = qs_log_chart_top(c, &shown);
    size_t avail, i;
    struct cols k;
    char *row, lab[16], lim[16], date[32], per[96], limit_item[64], bar_item[128], note[256];
    int lr = 0, any_marks = 0;

    if (width < QS_PLOT_MIN_WIDTH)
        width = QS_PLOT_MIN_WIDTH;
    if (height < 3)
        height = 3;
    avail = (size_t)(width - MARGIN - 1);
    k = layout(c->n, avail);
    row = malloc((size_t)width + 1);
    double *colv = calloc(k.n ? k.n : 1, sizeof *colv);
    char *mark = calloc(k.n ? k.n : 1, 1);
    if (row == NULL || colv == NULL || mark == NULL)
        goto out;

    for (size_t col = 0; col < k.n; col++) {
        size_t lo, hi;
        if (!bins_of(&k, col, &lo, &hi)) {
            colv[col] = -1; /* gap */
            continue;
        }
        for (size_t b = lo; b < hi; b++) {
            if ((double)c->v[b] > colv[col])
                colv[col] = (double)c->v[b];
            /* a stretched bin's marker goes in its first column only */
            if (k.per > 1 && col % k.per != 0)
                continue;
            if (c->passed && c->passed[b] > 0)
                mark[col] = 'X';
            else if (c->hidden && c->hidden[b] > 0 && mark[col] != 'X')
                mark[col] = 'x';
        }
        any_marks |= mark[col] != 0;
    }
    if (shown) {
        lr = (int)(c->limit / top * height + 0.5);
        if (lr < 1)
            lr = 1;
        if (lr > height)
            lr = height;
    }

    /* title; the date of the first bin, since the axis shows times of day only */
    qs_log_fmt_ts(c->t0_ms, QS_TS_ISO, date, sizeof date);
    date[10] = '\0';
    snprintf(row, (size_t)width + 1, "%s", c->title);
    put_line(out, row);
    snprintf(row, (size_t)width + 1, "  %s, times UTC on %s", c->unit, date);
    put_line(out, row);

    for (int r = height; r >= 1; r--) {
        double at = top * r / height;
        lab[0] = '\0';
        if (r == height || r == lr || (r == (height + 1) / 2 && abs(r - lr) > 1 && lr != height))
            qs_log_fmt_value(r == lr ? c->limit : at, lab, sizeof lab);
        int n = snprintf(row, (size_t)width + 1, "%6s |", lab);
        for (size_t col = 0; col < k.n && n < width; col++, n++) {
            double v = colv[col];
            int h = v <= 0 ? 0 : (int)(v / top * height + 0.5);
            if (v > 0 && h == 0)
                h = 1; /* anything at all shows */
            row[n] = h >= r ? '#' : r == lr && v >= 0 ? '-' : ' ';
        }
        row[n] = '\0';
        put_line(out, row);
    }

    /* the time axis: ticks at round times, labelled where there is room */
    int64_t span = (int64_t)c->n * c->bin_ms;
    int64_t step = qs_log_time_step(span, (int)(k.n / 12 > 0 ? k.n / 12 : 1));
    if (step < c->bin_ms)
        step = c->bin_ms;
    int64_t first = (c->t0_ms + step - 1) / step * step;
    int n = snprintf(row, (size_t)width + 1, "%6s +", "0");
    for (i = 0; i < k.n; i++)
        row[n + (int)i] = '-';
    row[n + (int)k.n] = '\0';
    char *labels = malloc((size_t)width + 1);
    if (labels == NULL)
        goto out;
    memset(labels, ' ', (size_t)width);
    labels[width] = '\0';
    int free_from = 0;
    for (int64_t t = first; t < c->t0_ms + span; t += step) {
        size_t bin = (size_t)((t - c->t0_ms) / c->bin_ms);
        size_t col = col_of(&k, bin);
        char tl[16];
        if (col >= k.n)
            break;
        row[MARGIN + col] = '+';
        qs_log_fmt_ts(t, c->bin_ms >= 60000 && step % 60000 == 0 ? QS_TS_HM : QS_TS_HMS, tl, sizeof tl);
        int at = MARGIN + (int)col, len = (int)strlen(tl);
        if (at >= free_from && at + len <= width) {
            memcpy(labels + at, tl, (size_t)len);
            free_from = at + len + 2;
        }
    }
    put_line(out, row);
    put_line(out, labels);
    if (any_marks) {
        n = snprintf(row, (size_t)width + 1, "%6s  ", "429");
        for (i = 0; i < k.n; i++)
            row[n + (int)i] = mark[i] ? mark[i] : ' ';
        row[n + (int)k.n] = '\0';
        put_line(out, row);
    }
    free(labels);

    /* legend */
    if (k.gmax > 1 && k.gmin == k.gmax)
        snprintf(per, sizeof per, " (a column: the highest of %zu)", k.gmax);
    else if (k.gmax > 1)
        snprintf(per, sizeof per, " (a column: the highest of %zu or %zu)", k.gmin, k.gmax);
    else
        per[0] = '\0';
    snprintf(bar_item, sizeof bar_item, "# %s%s", c->what, per);
    qs_log_fmt_value(c->limit, lim, sizeof lim);
    if (c->limit <= 0)
        snprintf(limit_item, sizeof limit_item, "no limit");
    else if (shown)
        snprintf(limit_item, sizeof limit_item, "- limit %s %s", lim, c->unit);
    else
        snprintf(limit_item, sizeof limit_item, "limit %s %s is above the chart", lim, c->unit);
    snprintf(note, sizeof note, "(%s)", c->limit_note);
    const char *items[5] = {bar_item, limit_item, note, "x 429 retried unseen", "X 429 passed on"};
    if (c->limit <= 0)
        items[2] = "";
    wrap(out, items, any_marks ? 5 : 3, width);
out:
    free(row);
    free(colv);
    free(mark);
}
