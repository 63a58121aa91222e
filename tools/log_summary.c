/* log_summary.c - `qshim-log summary` (see log_summary.h).
 *
 * Two groupings of the same records: per model (in its region, with the limit the shim
 * paced it under) and per program. Peaks are over sliding 60 s windows of the records'
 * ts, the time each request ended.
 * SPDX-License-Identifier: MIT
 */
#include "log_summary.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log_limit.h"
#include "log_stats.h"
#include "log_time.h"

#define MINUTE_MS 60000

int qs_log_group_stats(const struct qs_log_data *d, const size_t *idx, size_t n, struct qs_log_gstats *st)
{
    int64_t *waits = malloc((n ? n : 1) * sizeof *waits);
    struct qs_log_tw *req = malloc((n ? n : 1) * sizeof *req), *tok = malloc((n ? n : 1) * sizeof *tok);
    size_t nw = 0, nt = 0;

    if (waits == NULL || req == NULL || tok == NULL) {
        free(waits);
        free(req);
        free(tok);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct qs_log_point *p = &d->pts[idx[i]];
        if (!(p->kind & QS_PT_REQUEST))
            continue;
        waits[nw++] = p->wait_ms;
        if (p->ts_ms < 0)
            continue;
        req[nt] = (struct qs_log_tw){p->ts_ms, 1};
        tok[nt++] = (struct qs_log_tw){p->ts_ms, p->tokens};
    }
    qs_log_sort_i64(waits, nw);
    st->wait_p50 = qs_log_percentile(waits, nw, 50);
    st->wait_p95 = qs_log_percentile(waits, nw, 95);
    st->wait_max = qs_log_percentile(waits, nw, 100);
    st->peak_rpm = qs_log_peak_window(req, nt, MINUTE_MS, &st->peak_rpm_at);
    st->peak_tpm = qs_log_peak_window(tok, nt, MINUTE_MS, &st->peak_tpm_at);
    free(waits);
    free(req);
    free(tok);
    return 0;
}

/* ==== JSON ==== */

static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

/* A number, or null when it is negative (unknown). */
static void json_num(FILE *out, int64_t v)
{
    if (v < 0)
        fputs("null", out);
    else
        fprintf(out, "%" PRId64, v);
}

static void json_ts(FILE *out, int64_t ms)
{
    char ts[32];
    if (ms < 0) {
        fputs("null", out);
        return;
    }
    qs_log_fmt_ts(ms, QS_TS_ISO, ts, sizeof ts);
    json_str(out, ts);
}

/* A limit number: 0 (not limited) is null. */
static void json_lim(FILE *out, double v)
{
    if (v > 0)
        fprintf(out, "%.15g", v);
    else
        fputs("null", out);
}

static void json_group(FILE *out, const struct qs_log_group *g, const struct qs_log_gstats *st,
                       const struct qs_log_limit *lim)
{
    fputs("{\"name\":", out);
    json_str(out, g->name);
    if (lim != NULL) {
        fputs(",\"region\":", out);
        json_str(out, lim->region);
    }
    fprintf(
        out,
        ",\"requests\":%lu,\"ok\":%lu,\"throttles_hidden\":%lu,\"throttles_passed\":%lu,\"fallbacks\":%lu",
        g->requests, g->ok, g->hidden, g->passed, g->fallbacks);
    fputs(",\"wait_ms\":{\"p50\":", out);
    json_num(out, st->wait_p50);
    fputs(",\"p95\":", out);
    json_num(out, st->wait_p95);
    fputs(",\"max\":", out);
    json_num(out, st->wait_max);
    fprintf(out, "},\"input_tokens\":%" PRId64 ",\"output_tokens\":%" PRId64, g->input_tokens,
            g->output_tokens);
    fprintf(out, ",\"peak_rpm\":%" PRId64 ",\"peak_rpm_at\":", st->peak_rpm);
    json_ts(out, st->peak_rpm_at);
    fprintf(out, ",\"peak_tpm\":%" PRId64 ",\"peak_tpm_at\":", st->peak_tpm);
    json_ts(out, st->peak_tpm_at);
    if (lim != NULL) {
        fputs(",\"limit\":{\"rpm\":", out);
        json_lim(out, lim->rpm);
        fputs(",\"tpm\":", out);
        json_lim(out, lim->tpm);
        fputs(",\"rps\":", out);
        json_lim(out, lim->lim.rps);
        fputs(",\"tps\":", out);
        json_lim(out, lim->lim.tps);
        fprintf(out, ",\"retired\":%s,\"source\":", lim->retired ? "true" : "false");
        json_str(out, lim->source);
        fputc('}', out);
    }
    fputc('}', out);
}

/* ==== Tables ==== */

/* "12/15000", "12/-" (not limited) or "12/retired" into <buf>. */
static const char *of_limit(char *buf, size_t len, int64_t peak, double limit, int retired)
{
    if (retired)
        snprintf(buf, len, "%" PRId64 "/retired", peak);
    else if (limit > 0)
        snprintf(buf, len, "%" PRId64 "/%.15g", peak, limit);
    else
        snprintf(buf, len, "%" PRId64 "/-", peak);
    return buf;
}

static const char *waits(char *buf, size_t len, const struct qs_log_gstats *st)
{
    if (st->wait_max < 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%" PRId64 "/%" PRId64 "/%" PRId64, st->wait_p50, st->wait_p95, st->wait_max);
    return buf;
}

static void print_tables(FILE *out, const char *what, const struct qs_log_group *g, size_t ng,
                         const struct qs_log_gstats *st, const struct qs_log_limit *lims)
{
    char a[64], b[64], c[64], w[64];
    int nw = (int)strlen(what), rw = lims ? 11 : 0; /* models have a region column */

    for (size_t i = 0; i < ng; i++)
        if ((int)strlen(g[i].name) > nw)
            nw = (int)strlen(g[i].name);
    fprintf(out, "%-*s %-*s %8s %6s %10s %10s %9s\n", nw, what, rw, lims ? "region" : "", "requests", "ok",
            "429 hidden", "429 passed", "fallbacks");
    for (size_t i = 0; i < ng; i++)
        fprintf(out, "%-*s %-*s %8lu %6lu %10lu %10lu %9lu\n", nw, g[i].name, rw, lims ? lims[i].region : "",
                g[i].requests, g[i].ok, g[i].hidden, g[i].passed, g[i].fallbacks);
    fputc('\n', out);
    fprintf(out, "%-*s %-*s %18s %13s %14s %16s\n", nw, what, rw, lims ? "region" : "", "wait ms p50/95/max",
            "tokens in/out", lims ? "peak rpm/limit" : "peak rpm", lims ? "peak tpm/limit" : "peak tpm");
    for (size_t i = 0; i < ng; i++) {
        snprintf(b, sizeof b, "%" PRId64 "/%" PRId64, g[i].input_tokens, g[i].output_tokens);
        if (lims) {
            of_limit(a, sizeof a, st[i].peak_rpm, lims[i].rpm, lims[i].retired);
            of_limit(c, sizeof c, st[i].peak_tpm, lims[i].tpm, lims[i].retired);
        } else {
            snprintf(a, sizeof a, "%" PRId64, st[i].peak_rpm);
            snprintf(c, sizeof c, "%" PRId64, st[i].peak_tpm);
        }
        fprintf(out, "%-*s %-*s %18s %13s %14s %16s\n", nw, g[i].name, rw, lims ? lims[i].region : "",
                waits(w, sizeof w, &st[i]), b, a, c);
    }
}

static void print_limits(FILE *out, const struct qs_log_group *g, size_t ng, const struct qs_log_limit *lims,
                         double headroom)
{
    fprintf(out, "\nlimits (qshim paces to %g of them):\n", headroom);
    for (size_t i = 0; i < ng; i++) {
        fprintf(out, "  %s in %s: ", g[i].name, lims[i].region);
        if (lims[i].retired)
            fputs("retired (never granted)", out);
        else
            fprintf(out, "rpm %.15g, tpm %.15g", lims[i].rpm, lims[i].tpm);
        if (lims[i].lim.rps > 0)
            fprintf(out, ", rps %.15g", lims[i].lim.rps);
        fprintf(out, " (%s)\n", lims[i].source);
    }
}

/* ==== Both ==== */

/* Stats of every group of one grouping; NULL when memory runs out. */
static struct qs_log_gstats *grouping(const struct qs_log_data *d, int by_prog)
{
    size_t ng = by_prog ? d->nprogs : d->nmodels;
    size_t *idx = malloc((d->npts ? d->npts : 1) * sizeof *idx), *start = malloc((ng + 1) * sizeof *start);
    struct qs_log_gstats *st = calloc(ng ? ng : 1, sizeof *st);

    if (idx == NULL || start == NULL || st == NULL)
        goto fail;
    qs_log_data_index(d, by_prog, idx, start);
    for (size_t g = 0; g < ng; g++)
        if (qs_log_group_stats(d, idx + start[g], start[g + 1] - start[g], &st[g]) != 0)
            goto fail;
    free(idx);
    free(start);
    return st;
fail:
    free(idx);
    free(start);
    free(st);
    return NULL;
}

int qs_log_summary_print(FILE *out, const struct qs_log_data *d, const struct qs_config *cfg, int json,
                         unsigned long skipped)
{
    struct qs_log_gstats *ms = grouping(d, 0), *ps = grouping(d, 1);
    struct qs_log_limit *lims = calloc(d->nmodels ? d->nmodels : 1, sizeof *lims);
    char t1[32], t2[32];

    if (ms == NULL || ps == NULL || lims == NULL) {
        free(ms);
        free(ps);
        free(lims);
        return -1;
    }
    for (size_t i = 0; i < d->nmodels; i++)
        qs_log_limit_of(cfg, d->models[i].name, d->models[i].region, &lims[i]);
    if (json) {
        fprintf(out, "{\"records\":%lu,\"skipped_lines\":%lu,\"first_ts\":", d->records, skipped);
        json_ts(out, d->has_ts ? d->first_ts : -1);
        fputs(",\"last_ts\":", out);
        json_ts(out, d->has_ts ? d->last_ts : -1);
        fprintf(out, ",\"headroom\":%g,\"models\":[", cfg->headroom);
        for (size_t i = 0; i < d->nmodels; i++) {
            fputs(i ? "," : "", out);
            json_group(out, &d->models[i], &ms[i], &lims[i]);
        }
        fputs("],\"programs\":[", out);
        for (size_t i = 0; i < d->nprogs; i++) {
            fputs(i ? "," : "", out);
            json_group(out, &d->progs[i], &ps[i], NULL);
        }
        fprintf(out, "],\"events\":{\"passthrough\":%lu,\"config\":%lu,\"error\":%lu,\"other\":%lu}}\n",
                d->passthrough, d->config, d->error, d->other);
    } else {
        fprintf(out, "%lu records", d->records);
        if (d->has_ts) {
            qs_log_fmt_ts(d->first_ts, QS_TS_HUMAN, t1, sizeof t1);
            qs_log_fmt_ts(d->last_ts, QS_TS_HUMAN, t2, sizeof t2);
            fprintf(out, ", %s to %s UTC", t1, t2);
        }
        if (skipped)
            fprintf(out, "; %lu line%s skipped (see the warnings)", skipped, skipped == 1 ? "" : "s");
        fputs("\n\n", out);
        if (d->nmodels == 0) {
            fputs("no requests\n", out);
        } else {
            print_tables(out, "model", d->models, d->nmodels, ms, lims);
            print_limits(out, d->models, d->nmodels, lims, cfg->headroom);
            fputc('\n', out);
            print_tables(out, "program", d->progs, d->nprogs, ps, NULL);
        }
        fprintf(out, "\nother events: %lu passthrough, %lu config, %lu error", d->passthrough, d->config,
                d->error);
        if (d->other)
            fprintf(out, ", %lu of unknown kind", d->other);
        fputc('\n', out);
        fputs("(429 hidden: throttles qshim retried unseen; 429 passed: requests whose final answer,\n"
              "as the program saw it, was a throttle)\n",
              out);
    }
    free(ms);
    free(ps);
    free(lims);
    return 0;
}
