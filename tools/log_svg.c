/* log_svg.c - SVG charts for `qshim-log plot --svg` (see log_svg.h).
 *
 * Plain SVG 1.1 with presentation attributes only (no CSS, no scripts, no fonts to
 * fetch), so that rsvg-convert, browsers and office suites draw it the same.
 * SPDX-License-Identifier: MIT
 */
#include "log_svg.h"

#include <string.h>

#include "log_stats.h"
#include "log_time.h"

#define W 960
#define ML 80 /* left margin: value labels and the axis title */
#define MR 30
#define PW (W - ML - MR)
#define TOP 76 /* title and subtitle */
#define PH 270 /* one chart: its title, the plot area, the time axis */
#define PT 34  /* plot area's top within the chart */
#define PA 170 /* plot area's height */
#define LEG 60 /* the legend: two rows */

#define C_LIMIT "#d62728"
#define C_HIDDEN "#ff7f0e"
#define C_PASSED "#d62728"
static const char *const bar_colors[] = {"#1f77b4", "#2ca02c"};

static void text(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t')
                fputc(*s, out);
        }
    }
}

/* The markers: a ring for a throttle retried unseen, a cross for one passed on. */
static void marker_hidden(FILE *out, double x, double y)
{
    fprintf(out,
            "<circle class=\"throttle hidden\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"none\" stroke=\"%s\" "
            "stroke-width=\"1.8\"/>\n",
            x, y, C_HIDDEN);
}

static void marker_passed(FILE *out, double x, double y)
{
    fprintf(out,
            "<path class=\"throttle passed\" d=\"M%.1f %.1fl8 8m0 -8l-8 8\" stroke=\"%s\" "
            "stroke-width=\"2.2\" fill=\"none\"/>\n",
            x - 4, y - 4, C_PASSED);
}

static void chart(FILE *out, const struct qs_log_chart *c, double y0, const char *color)
{
    int shown;
    double top = qs_log_chart_top(c, &shown);
    double px = ML, py = y0 + PT, bottom = py + PA;
    size_t group = c->n > (size_t)PW ? (c->n + PW - 1) / PW : 1; /* bins per bar */
    size_t nbars = (c->n + group - 1) / group;
    double bw = nbars ? (double)PW / (double)nbars : PW;
    char v[16], tl[16], date[32];

    fprintf(out, "<g class=\"chart\">\n<text x=\"%d\" y=\"%.1f\" font-size=\"14\" font-weight=\"bold\">", ML,
            y0 + 18);
    text(out, c->title);
    fputs("</text>\n", out);

    /* value axis: grid lines and labels at round steps */
    double step = qs_log_nice_step(top, 5);
    for (double t = 0; t <= top * 1.0001; t += step) {
        double y = bottom - t / top * PA;
        qs_log_fmt_value(t, v, sizeof v);
        fprintf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1\"/>\n",
                ML - 5, ML + PW, y, y, t == 0 ? "#444" : "#e2e2e2");
        fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%s</text>\n", ML - 8,
                y + 4, v);
    }
    fprintf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n", ML, ML, py, bottom);
    fprintf(out,
            "<text transform=\"translate(%d %.1f) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">", 22,
            py + PA / 2.0);
    text(out, c->unit);
    fputs("</text>\n", out);

    /* time axis: ticks at round times */
    int64_t span = (int64_t)c->n * c->bin_ms;
    int64_t tstep = qs_log_time_step(span, 8);
    if (tstep < c->bin_ms)
        tstep = c->bin_ms;
    for (int64_t t = (c->t0_ms + tstep - 1) / tstep * tstep; t <= c->t0_ms + span; t += tstep) {
        double x = px + (double)(t - c->t0_ms) / (double)span * PW;
        qs_log_fmt_ts(t, tstep % 60000 == 0 ? QS_TS_HM : QS_TS_HMS, tl, sizeof tl);
        fprintf(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n", x, x,
                bottom, bottom + 5);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">%s</text>\n", x,
                bottom + 18, tl);
    }
    qs_log_fmt_ts(c->t0_ms, QS_TS_ISO, date, sizeof date);
    date[10] = '\0';
    fprintf(out,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\">time (UTC, %s), %s per bar",
            px + PW / 2.0, bottom + 38, date, c->bin_ms >= 60000 ? "a minute" : "a second");
    if (group > 1)
        fprintf(out, ": the highest of %zu", group);
    fputs("</text>\n", out);

    /* the series; the limit over it; the markers over both */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && c->limit > 0 && shown) {
            double y = bottom - c->limit / top * PA;
            fprintf(out,
                    "<line class=\"limit\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                    "stroke-width=\"1.6\" stroke-dasharray=\"7 5\"/>\n",
                    ML, ML + PW, y, y, C_LIMIT);
        }
        for (size_t b = 0; b < nbars; b++) {
            int64_t hi = 0, hid = 0, pas = 0;
            for (size_t i = b * group; i < (b + 1) * group && i < c->n; i++) {
                hi = c->v[i] > hi ? c->v[i] : hi;
                hid += c->hidden ? c->hidden[i] : 0;
                pas += c->passed ? c->passed[i] : 0;
            }
            double h = (double)hi / top * PA, x = px + (double)b * bw, w = bw > 3 ? bw * 0.8 : bw;
            double my = bottom - h - 8;
            if (pass == 0 && hi > 0)
                fprintf(out,
                        "<rect class=\"bar\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                        "fill=\"%s\"/>\n",
                        x + (bw - w) / 2, bottom - h, w, h, color);
            if (pass == 1 && hid > 0) {
                marker_hidden(out, x + bw / 2, my);
                my -= 11;
            }
            if (pass == 1 && pas > 0)
                marker_passed(out, x + bw / 2, my);
        }
    }

    /* what the limit is, in the chart's heading, right: a dashed stroke before it when drawn */
    qs_log_fmt_value(c->limit, v, sizeof v);
    fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\" fill=\"%s\">", ML + PW,
            y0 + 18, c->limit > 0 ? C_LIMIT : "#444");
    if (c->limit > 0) {
        fprintf(out, "%slimit %s ", shown ? "- - -  " : "", v);
        text(out, c->unit);
        fputs(" (", out);
        text(out, c->limit_note);
        fputs(shown ? ")" : "), above the chart", out);
    } else {
        fputs("no limit", out);
    }
    fputs("</text>\n</g>\n", out);
}

/* Legend text is 12px: about 6.5px a character, enough not to run into the next item. */
#define TEXT_W(s) (6.5 * (double)strlen(s))

static void legend(FILE *out, double y)
{
    static const char *const label[] = {"requests, tokens", "rate limit (per minute / 60 for a second)",
                                        "429 retried unseen by qshim", "429 passed on to the program"};
    double x = ML;

    fprintf(out, "<g class=\"legend\" font-size=\"12\">\n");
    fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>", x, y - 10,
            bar_colors[0]);
    fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>", x + 14, y - 10,
            bar_colors[1]);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x + 32, y, label[0]);
    x += 32 + TEXT_W(label[0]) + 24;
    fprintf(out,
            "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.6\" "
            "stroke-dasharray=\"7 5\"/>",
            x, x + 30, y - 4, y - 4, C_LIMIT);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x + 36, y, label[1]);
    x += 36 + TEXT_W(label[1]) + 24;
    marker_hidden(out, x + 5, y - 4);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x + 16, y, label[2]);
    /* the fourth item starts a second row */
    x = ML + 32 + TEXT_W(label[0]) + 24;
    marker_passed(out, x + 5, y + 16);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n</g>\n", x + 16, y + 20, label[3]);
}

int qs_log_svg_write(FILE *out, const struct qs_log_chart *charts, size_t n, const char *title,
                     const char *subtitle)
{
    int h = TOP + (int)n * PH + LEG;

    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n",
            W, h, W, h);
    fputs("<title>", out);
    text(out, title);
    fputs("</title>\n", out);
    fprintf(out, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", W, h);
    fprintf(out, "<text x=\"%d\" y=\"30\" font-size=\"19\" font-weight=\"bold\">", ML);
    text(out, title);
    fprintf(out, "</text>\n<text x=\"%d\" y=\"52\" font-size=\"12\" fill=\"#555\">", ML);
    text(out, subtitle);
    fputs("</text>\n", out);
    for (size_t i = 0; i < n; i++)
        chart(out, &charts[i], TOP + (double)i * PH, bar_colors[i % 2]);
    legend(out, TOP + (double)n * PH + 20);
    fputs("</svg>\n", out);
    return ferror(out) ? -1 : 0;
}
