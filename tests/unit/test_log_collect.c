/* test_log_collect.c - unit tests for what summary and plot build from records:
 * tools/log_collect.c (counters per model and program, points, stable ts order),
 * log_summary.c's per-group statistics, log_series.c (bins, chart scale, value text),
 * log_filter.c (filter conditions) and log_limit.c (the limit that applied).
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log_collect.h"
#include "log_filter.h"
#include "log_limit.h"
#include "log_series.h"
#include "log_summary.h"

#define T0 1795457040000LL /* 2026-11-23T18:04:00.000Z */

/* A record: event, model, region, prog, ts offset (ms after T0; -1 = no ts), status,
 * wait (all paced), tokens in+out (0,0 = no usage: est 9 then). */
static struct qs_log_rec rec(const char *event, const char *model, const char *region, const char *prog,
                             int64_t at, int status, int64_t wait, int64_t in, int64_t out)
{
    struct qs_log_rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.event, sizeof r.event, "%s", event);
    snprintf(r.model, sizeof r.model, "%s", model);
    snprintf(r.region, sizeof r.region, "%s", region);
    snprintf(r.prog, sizeof r.prog, "%s", prog);
    r.ts_ms = at < 0 ? -1 : T0 + at;
    r.pid = 1;
    r.status = status;
    r.paced_ms = wait;
    r.retry_ms = -1;
    r.est_tokens = 9;
    r.input_tokens = in || out ? in : -1;
    r.output_tokens = in || out ? out : -1;
    return r;
}

static void add(struct qs_log_data *d, struct qs_log_rec r) { assert_int_equal(qs_log_data_add(d, &r), 0); }

/* A small log: two models (one in two regions), two programs, out of order. */
static void fill(struct qs_log_data *d)
{
    memset(d, 0, sizeof *d);
    add(d, rec("config", "", "", "p1", 0, 0, -1, 0, 0));
    add(d, rec("request", "qwen-plus", "cn-beijing", "p1", 3000, 200, 10, 5, 5)); /* 1 */
    add(d, rec("request", "qwen-plus", "cn-beijing", "p2", 1000, 200, 30, 1, 1)); /* 2: earlier */
    add(d, rec("throttled", "qwen-plus", "cn-beijing", "p1", 2000, 429, -1, 0, 0));
    add(d, rec("request", "qwen-plus", "cn-beijing", "p1", 1000, 429, 20, 0, 0)); /* passed; same ts as 2 */
    add(d, rec("fallback", "qwen-plus", "cn-beijing", "p2", 4000, 429, -1, 0, 0));
    add(d, rec("request", "qwen-plus", "intl", "p2", 65000, 200, 0, 2, 2));      /* another budget */
    add(d, rec("request", "qwen-turbo", "cn-beijing", "p2", -1, 503, 40, 0, 0)); /* no ts */
    add(d, rec("passthrough", "", "", "p2", 5000, 0, -1, 0, 0));
    add(d, rec("error", "", "", "p2", 6000, 0, -1, 0, 0));
    add(d, rec("mystery", "", "", "p2", 7000, 0, -1, 0, 0));
}

static const struct qs_log_group *find(const struct qs_log_group *g, size_t n, const char *name,
                                       const char *region)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(g[i].name, name) == 0 && strcmp(g[i].region, region) == 0)
            return &g[i];
    fail_msg("no group %s %s", name, region);
    return NULL;
}

static void test_counters(void **state)
{
    struct qs_log_data d;
    (void)state;

    fill(&d);
    assert_int_equal(d.records, 11);
    assert_int_equal(d.passthrough, 1);
    assert_int_equal(d.config, 1);
    assert_int_equal(d.error, 1);
    assert_int_equal(d.other, 1);
    assert_int_equal(d.nmodels, 3); /* qwen-plus twice (two regions), qwen-turbo */
    assert_int_equal(d.nprogs, 2);
    assert_int_equal(d.npts, 6); /* 5 requests and 1 throttle; not the fallback */
    assert_int_equal(d.no_ts, 1);
    assert_true(d.has_ts);
    assert_int_equal(d.first_ts, T0);
    assert_int_equal(d.last_ts, T0 + 65000);
    const struct qs_log_group *g = find(d.models, d.nmodels, "qwen-plus", "cn-beijing");
    assert_int_equal(g->requests, 3);
    assert_int_equal(g->ok, 2);
    assert_int_equal(g->hidden, 1);
    assert_int_equal(g->passed, 1);
    assert_int_equal(g->fallbacks, 1);
    assert_int_equal(g->input_tokens, 6);
    assert_int_equal(g->output_tokens, 6);
    g = find(d.models, d.nmodels, "qwen-turbo", "cn-beijing");
    assert_int_equal(g->requests, 1);
    assert_int_equal(g->ok, 0);
    assert_int_equal(g->passed, 0); /* 503 without a capacity code is no throttle */
    g = find(d.progs, d.nprogs, "p2", "");
    assert_int_equal(g->requests, 3);
    assert_int_equal(g->fallbacks, 1);
    g = find(d.progs, d.nprogs, "p1", "");
    assert_int_equal(g->requests, 2);
    assert_int_equal(g->hidden, 1);
    qs_log_data_free(&d);
}

/* Sorting is by ts and stable; the index lists each group's points in that order. */
static void test_sort_and_index(void **state)
{
    struct qs_log_data d;
    size_t idx[16], start[4];
    (void)state;

    fill(&d);
    qs_log_data_sort(&d);
    for (size_t i = 1; i < d.npts; i++)
        assert_true(d.pts[i - 1].ts_ms <= d.pts[i].ts_ms);
    assert_int_equal(d.pts[0].ts_ms, -1);
    /* the two at T0 + 1000: the 200 (read first) stays before the 429 */
    assert_int_equal(d.pts[1].ts_ms, T0 + 1000);
    assert_int_equal(d.pts[1].kind, QS_PT_REQUEST);
    assert_int_equal(d.pts[2].kind, QS_PT_REQUEST | QS_PT_PASSED);
    qs_log_data_index(&d, 0, idx, start);
    assert_int_equal(start[0], 0);
    assert_int_equal(start[3], d.npts);
    size_t total = 0;
    for (size_t g = 0; g < d.nmodels; g++) {
        for (size_t i = start[g]; i < start[g + 1]; i++) {
            assert_int_equal(d.pts[idx[i]].model, g);
            if (i > start[g])
                assert_true(idx[i - 1] < idx[i]); /* ts order kept */
        }
        total += start[g + 1] - start[g];
    }
    assert_int_equal(total, d.npts);
    qs_log_data_index(&d, 1, idx, start);
    assert_int_equal(start[2], d.npts);
    qs_log_data_free(&d);
}

/* A log read in reverse sorts like one read in order (merge sort path, many points). */
static void test_sort_many(void **state)
{
    struct qs_log_data d;
    (void)state;

    memset(&d, 0, sizeof d);
    for (int i = 999; i >= 0; i--)
        add(&d, rec("request", "m", "", "p", (i % 500) * 10, 200, i, 1, 1));
    qs_log_data_sort(&d);
    for (size_t i = 1; i < d.npts; i++) {
        assert_true(d.pts[i - 1].ts_ms <= d.pts[i].ts_ms);
        if (d.pts[i - 1].ts_ms == d.pts[i].ts_ms) /* stable: read order, i.e. larger wait first */
            assert_true(d.pts[i - 1].wait_ms > d.pts[i].wait_ms);
    }
    qs_log_data_free(&d);
}

static void test_group_stats(void **state)
{
    struct qs_log_data d;
    size_t idx[16], start[4];
    struct qs_log_gstats st;
    (void)state;

    fill(&d);
    qs_log_data_sort(&d);
    qs_log_data_index(&d, 0, idx, start);
    for (size_t g = 0; g < d.nmodels; g++) {
        assert_int_equal(qs_log_group_stats(&d, idx + start[g], start[g + 1] - start[g], &st), 0);
        if (strcmp(d.models[g].name, "qwen-plus") == 0 && strcmp(d.models[g].region, "cn-beijing") == 0) {
            /* waits 30, 20, 10 (the throttle is no request): p50 20, p95 30 */
            assert_int_equal(st.wait_p50, 20);
            assert_int_equal(st.wait_p95, 30);
            assert_int_equal(st.wait_max, 30);
            assert_int_equal(st.peak_rpm, 3);
            assert_int_equal(st.peak_rpm_at, T0 + 1000);
            assert_int_equal(st.peak_tpm, 2 + 9 + 10); /* usage, the estimate, usage */
        } else if (strcmp(d.models[g].name, "qwen-turbo") == 0) {
            /* its only request has no ts: a wait, but no peak */
            assert_int_equal(st.wait_max, 40);
            assert_int_equal(st.peak_rpm, 0);
            assert_int_equal(st.peak_rpm_at, -1);
        }
    }
    assert_int_equal(qs_log_group_stats(&d, idx, 0, &st), 0);
    assert_int_equal(st.wait_p50, -1);
    assert_int_equal(st.peak_tpm, 0);
    qs_log_data_free(&d);
}

static void test_series(void **state)
{
    struct qs_log_data d;
    struct qs_log_series s;
    (void)state;

    fill(&d);
    qs_log_data_sort(&d);
    uint32_t m = (uint32_t)(find(d.models, d.nmodels, "qwen-plus", "cn-beijing") - d.models);
    assert_int_equal(qs_log_series_build(&s, &d, m, T0 + 500, T0 + 65000, 1000, 100), 0);
    assert_int_equal(s.t0_ms, T0); /* floored to a whole second */
    assert_int_equal(s.nbins, 66);
    assert_int_equal(s.req[1], 2);
    assert_int_equal(s.tok[1], 2 + 9);
    assert_int_equal(s.passed[1], 1);
    assert_int_equal(s.hidden[2], 1);
    assert_int_equal(s.req[2], 0);
    assert_int_equal(s.req[3], 1);
    assert_int_equal(s.tok[3], 10);
    assert_int_equal(s.req[65], 0); /* the intl request is another model's */
    qs_log_series_free(&s);
    assert_int_equal(qs_log_series_build(&s, &d, m, T0, T0 + 65000, 60000, 100), 0);
    assert_int_equal(s.nbins, 2);
    assert_int_equal(s.req[0], 3);
    qs_log_series_free(&s);
    /* a range outside leaves the points out; too many bins is refused */
    assert_int_equal(qs_log_series_build(&s, &d, m, T0 + 2500, T0 + 2600, 1000, 100), 0);
    assert_int_equal(s.nbins, 1);
    assert_int_equal(s.req[0], 0);
    qs_log_series_free(&s);
    assert_int_equal(qs_log_series_build(&s, &d, m, T0, T0 + 65000, 1000, 65), -1);
    assert_null(s.req);
    qs_log_data_free(&d);
}

static void test_chart_scale(void **state)
{
    int64_t v[] = {0, 3, 1};
    struct qs_log_chart c = {.v = v, .n = 3, .limit = 4};
    int shown;
    char t[16];
    (void)state;

    assert_true(qs_log_chart_top(&c, &shown) == 5); /* the limit sets the top */
    assert_true(shown);
    c.limit = 2;
    assert_true(qs_log_chart_top(&c, &shown) == 5); /* the peak does */
    assert_true(shown);
    c.limit = 12;
    assert_true(qs_log_chart_top(&c, &shown) == 20);
    assert_true(shown);
    c.limit = 13; /* over 4 x the peak: off the chart */
    assert_true(qs_log_chart_top(&c, &shown) == 5);
    assert_false(shown);
    c.limit = 0;
    qs_log_chart_top(&c, &shown);
    assert_false(shown);

    static const struct {
        double v;
        const char *text;
    } values[] = {{0, "0"},       {2.5, "2.5"},      {120, "120"},   {1666.67, "1.7k"},
                  {35000, "35k"}, {1200000, "1.2M"}, {5000000, "5M"}};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        qs_log_fmt_value(values[i].v, t, sizeof t);
        assert_string_equal(t, values[i].text);
    }
}

static void test_filter(void **state)
{
    struct qs_log_rec r = rec("request", "qwen-plus", "cn-beijing", "python3", 30000, 429, 0, 1, 1);
    struct qs_log_filter f = {0};
    (void)state;

    assert_true(qs_log_filter_match(&f, &r));
    f.model = "qwen-*";
    assert_true(qs_log_filter_match(&f, &r));
    f.model = "qwen-turbo";
    assert_false(qs_log_filter_match(&f, &r));
    f.model = NULL;
    f.prog = "py*";
    assert_true(qs_log_filter_match(&f, &r));
    f.prog = "curl";
    assert_false(qs_log_filter_match(&f, &r));
    f.prog = NULL;
    f.event = "throttled,request";
    assert_true(qs_log_filter_match(&f, &r));
    f.event = "throttled,req"; /* whole words only */
    assert_false(qs_log_filter_match(&f, &r));
    f.event = NULL;
    f.status = "429";
    assert_true(qs_log_filter_match(&f, &r));
    f.status = "200,4xx";
    assert_true(qs_log_filter_match(&f, &r));
    f.status = "5xx";
    assert_false(qs_log_filter_match(&f, &r));
    f.status = "-";
    assert_false(qs_log_filter_match(&f, &r));
    r.status = 0;
    assert_true(qs_log_filter_match(&f, &r));
    f.status = NULL;
    /* since is inclusive, until exclusive */
    f.has_since = 1;
    f.since_ms = T0 + 30000;
    assert_true(qs_log_filter_match(&f, &r));
    f.since_ms = T0 + 30001;
    assert_false(qs_log_filter_match(&f, &r));
    f.has_since = 0;
    f.has_until = 1;
    f.until_ms = T0 + 30000;
    assert_false(qs_log_filter_match(&f, &r));
    f.until_ms = T0 + 30001;
    assert_true(qs_log_filter_match(&f, &r));
    r.ts_ms = -1; /* no ts: never in a time range */
    assert_false(qs_log_filter_match(&f, &r));

    assert_int_equal(qs_log_filter_status_valid("429"), 0);
    assert_int_equal(qs_log_filter_status_valid("2xx,503,-"), 0);
    assert_int_equal(qs_log_filter_status_valid("42"), -1);
    assert_int_equal(qs_log_filter_status_valid("ok"), -1);
    assert_int_equal(qs_log_filter_status_valid("429,"), -1);
    assert_int_equal(qs_log_filter_status_valid("0xx"), -1);
}

static void test_limit(void **state)
{
    struct qs_config *cfg = malloc(sizeof *cfg);
    struct qs_log_limit l;
    (void)state;

    assert_non_null(cfg);
    qs_config_defaults(cfg);
    /* from the compiled-in table of the records' region (config/limits/intl.conf) */
    qs_log_limit_of(cfg, "qwen-turbo", "intl", &l);
    assert_string_equal(l.region, "intl");
    assert_string_equal(l.source, "table intl");
    assert_true(l.rpm == 240 && l.tpm == 100000);
    assert_true(l.rps == 4);
    assert_false(l.retired);
    /* no region, or one that names no table: as the shim, the config's, else cn-beijing */
    qs_log_limit_of(cfg, "qwen-turbo", "", &l);
    assert_string_equal(l.region, "cn-beijing");
    qs_log_limit_of(cfg, "qwen-turbo", "mars", &l);
    assert_string_equal(l.region, "cn-beijing");
    strcpy(cfg->region, "intl");
    qs_log_limit_of(cfg, "qwen-turbo", "", &l);
    assert_string_equal(l.region, "intl");
    /* a config entry wins; an rps of its own is tighter than rpm / 60 */
    strcpy(cfg->limits[0].model, "qwen-t*");
    cfg->limits[0].rpm = 600;
    cfg->limits[0].tpm = 6000;
    cfg->limits[0].rps = 2;
    cfg->limits[0].line = 3;
    strcpy(cfg->source, "/etc/qshim.conf");
    cfg->nlimits = 1;
    qs_log_limit_of(cfg, "qwen-turbo", "intl", &l);
    assert_string_equal(l.source, "config /etc/qshim.conf:3");
    assert_true(l.rpm == 600 && l.rps == 2 && l.tpm == 6000 && l.tps == 100);
    /* only rps: it is the per-minute limit too */
    cfg->limits[0].rpm = 0;
    qs_log_limit_of(cfg, "qwen-turbo", "intl", &l);
    assert_true(l.rpm == 120 && l.rps == 2);
    /* retired: nothing granted */
    cfg->limits[0].tpm = cfg->limits[0].rps = 0;
    qs_log_limit_of(cfg, "qwen-turbo", "intl", &l);
    assert_true(l.retired);
    free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters),  cmocka_unit_test(test_sort_and_index),
        cmocka_unit_test(test_sort_many), cmocka_unit_test(test_group_stats),
        cmocka_unit_test(test_series),    cmocka_unit_test(test_chart_scale),
        cmocka_unit_test(test_filter),    cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
