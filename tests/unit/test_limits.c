/* test_limits.c - unit tests for shim/limtab.c: every embedded region table parses, spot
 * checks of rows against the seed they were transcribed from, the precedence of config
 * overrides, the table and default_limit, and the parser's errors.
 *
 * The seed is seeds/004_da777cd72bc3f0b6.txt (the flattened DashScope rate-limit page); each
 * spot check quotes the seed lines it comes from, one cell per line there ("/" here).
 * shim/limtab.c is included to reach its static parser (STYLE 2.7).
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "limtab.c"

/* ============================ Fixtures and helpers ============================ */

/* Every test starts from the built-in defaults: no overrides, default_limit 60 rpm / 100000 tpm. */
static int setup_cfg(void **state)
{
    struct qs_config *cfg = malloc(sizeof(*cfg));

    if (cfg == NULL)
        return -1;
    qs_config_defaults(cfg);
    *state = cfg;
    return 0;
}

static int teardown_cfg(void **state)
{
    free(*state);
    return 0;
}

/* Asserts that <model> in <region> comes from the region's table with exactly these values
 * (0 = not limited in that dimension; no table sets tps). */
static void expect_row(const struct qs_config *cfg, const char *region, const char *model, double rpm,
                       double tpm, double rps, int concurrency)
{
    struct qs_limit l;
    char src[256], want[64];

    assert_int_equal(qs_limits_lookup(cfg, region, model, &l, src, sizeof(src)), 0);
    snprintf(want, sizeof(want), "table %s", region);
    assert_string_equal(src, want);
    assert_string_equal(l.model, model);
    assert_true(l.rpm == rpm);
    assert_true(l.tpm == tpm);
    assert_true(l.rps == rps);
    assert_true(l.tps == 0);
    assert_int_equal(l.concurrency, concurrency);
    assert_true(l.line > 0);
}

/* ============================ The embedded tables ============================ */

static void *first_use(void *arg)
{
    const struct qs_limit *rows;
    size_t n;
    char err[QS_CFG_ERR_MAX];

    return qs_limits_table(arg, &rows, &n, err, sizeof(err)) == 0 ? (void *)rows : NULL;
}

/* First, before any other test parses it: threads racing to the first use of one table all
 * get the same parsed rows (the table is parsed once). */
static void test_first_use_threads(void **state)
{
    pthread_t t[8];
    void *got[8];
    int i;

    (void)state;
    for (i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, first_use, "eu"), 0);
    for (i = 0; i < 8; i++)
        assert_int_equal(pthread_join(t[i], &got[i]), 0);
    assert_non_null(got[0]);
    for (i = 1; i < 8; i++)
        assert_ptr_equal(got[i], got[0]);
}

/* The six deployment regions of the seed are embedded, each parses, its exact names are sorted
 * and unique, and every row is sane: a model name as DashScope spells it, at least one of
 * rpm/tpm/rps unless retired (0/0), and the 16 retired models of the seed in every region. */
static void test_every_table_parses(void **state)
{
    static const char *const regions[] = {"cn-beijing", "cn-hongkong", "eu", "global", "intl", "us"};
    const struct qs_limit *rows;
    char err[QS_CFG_ERR_MAX];
    size_t i, r, n, retired;

    (void)state;
    assert_int_equal(qs_limits_ntables, 6);
    for (i = 0; i < 6; i++) {
        assert_string_equal(qs_limits_tables[i].region, regions[i]);
        err[0] = '\0';
        assert_int_equal(qs_limits_table(regions[i], &rows, &n, err, sizeof(err)), 0);
        assert_string_equal(err, "");
        assert_true(n > 20);
        retired = 0;
        for (r = 0; r < n; r++) {
            assert_true(strlen(rows[r].model) > 1);
            assert_null(strpbrk(rows[r].model, "*?[ \t\""));
            if (r > 0)
                assert_true(strcmp(rows[r - 1].model, rows[r].model) < 0);
            assert_true(rows[r].rpm >= 0 && rows[r].tpm >= 0 && rows[r].rps >= 0 && rows[r].tps == 0);
            assert_true(rows[r].concurrency >= 0);
            retired += (size_t)qs_limits_retired(&rows[r]);
        }
        assert_int_equal(retired, 16);
    }
}

static void test_region_names(void **state)
{
    const struct qs_limit *rows = (const struct qs_limit *)1;
    size_t n = 1;
    char list[256], err[QS_CFG_ERR_MAX];

    (void)state;
    assert_true(qs_limits_region_valid("cn-beijing"));
    assert_true(qs_limits_region_valid("global"));
    /* "auto" is the caller's to resolve; the config's aliases are not table names either. */
    assert_false(qs_limits_region_valid("auto"));
    assert_false(qs_limits_region_valid("ap-southeast-1"));
    assert_false(qs_limits_region_valid(""));
    assert_false(qs_limits_region_valid(NULL));
    qs_limits_region_list(list, sizeof(list));
    assert_string_equal(list, "cn-beijing, cn-hongkong, eu, global, intl, us");
    qs_limits_region_list(list, 12);
    assert_string_equal(list, "cn-beijing,");
    assert_int_equal(qs_limits_table("mars", &rows, &n, err, sizeof(err)), -1);
    assert_null(rows);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err, "unknown region \"mars\" (known: cn-beijing, "));
}

/* ============================ Spot checks against the seed ============================ */

/* Text generation - Qwen, one row per region, own cells. */
static void test_seed_text_rows(void **state)
{
    const struct qs_config *cfg = *state;

    /* Chinese Mainland, seed 481-485: "qwen-plus / 30,000 / 5,000,000" */
    expect_row(cfg, "cn-beijing", "qwen-plus", 30000, 5000000, 0, 0);
    /* China (Hong Kong), seed 647-651: "qwen3.5-flash / 15,000 / 5,000,000" */
    expect_row(cfg, "cn-hongkong", "qwen3.5-flash", 15000, 5000000, 0, 0);
    /* EU, seed 695-699: "qwen3.5-flash / 30,000 / 10,000,000" */
    expect_row(cfg, "eu", "qwen3.5-flash", 30000, 10000000, 0, 0);
    /* Global, seed 167-171: "qwen-plus / 15,000 / 5,000,000" */
    expect_row(cfg, "global", "qwen-plus", 15000, 5000000, 0, 0);
    /* International, seed 349-353: "qwen-turbo / 240 / 100,000" */
    expect_row(cfg, "intl", "qwen-turbo", 240, 100000, 0, 0);
    /* Chinese Mainland, seed 603-609: "qwen-long-2025-01-25 / (qwen-long-0125) / 3 / 7,500" */
    expect_row(cfg, "cn-beijing", "qwen-long-2025-01-25", 3, 7500, 0, 0);
}

/* Rows without numbers share the merged cell above them: one entry per model of the group,
 * and an alias in parentheses gets the numbers of its model. */
static void test_seed_grouped_cells(void **state)
{
    const struct qs_config *cfg = *state;

    /* Global, seed 173-181: "qwen-plus-2025-12-01 / 60 / 1,000,000 / qwen-plus-2025-09-11 /
     * qwen-plus-2025-07-28" */
    expect_row(cfg, "global", "qwen-plus-2025-12-01", 60, 1000000, 0, 0);
    expect_row(cfg, "global", "qwen-plus-2025-09-11", 60, 1000000, 0, 0);
    expect_row(cfg, "global", "qwen-plus-2025-07-28", 60, 1000000, 0, 0);
    /* Chinese Mainland DeepSeek, seed 2317-2331: "deepseek-r1 / 15,000 / 1,200,000 / deepseek-v3 /
     * deepseek-r1-distill-qwen-7b / deepseek-r1-distill-qwen-14b / deepseek-r1-distill-qwen-32b /
     * deepseek-r1-distill-qwen-1.5b / 60 / 100,000" */
    expect_row(cfg, "cn-beijing", "deepseek-r1-distill-qwen-32b", 15000, 1200000, 0, 0);
    expect_row(cfg, "cn-beijing", "deepseek-r1-distill-qwen-1.5b", 60, 100000, 0, 0);
    /* Chinese Mainland Qwen-VL, seed 977-1017: "qwen-vl-plus-2025-08-15 / (qwen-vl-plus-0815) / 60 /
     * 100,000 / ... / qvq-plus-2025-05-15 / (qvq-plus-0515)": the cell spans to the last row */
    expect_row(cfg, "cn-beijing", "qvq-plus-0515", 60, 100000, 0, 0);
    /* International, seed 297-305: "qwen-plus-2025-07-28 / 60 / 100,000 / qwen-plus-2025-07-14 /
     * (qwen-plus-0714)" */
    expect_row(cfg, "intl", "qwen-plus-0714", 60, 100000, 0, 0);
    /* US, seed 401-407: "qwen-flash-us / 600 / 5,000,000 / qwen-flash-2025-07-28-us" */
    expect_row(cfg, "us", "qwen-flash-2025-07-28-us", 600, 5000000, 0, 0);
}

/* A lone number where the table has two columns; its size says which column it is, and the
 * other comes from the merged cell above. */
static void test_seed_lone_numbers(void **state)
{
    const struct qs_config *cfg = *state;

    /* International, seed 287-295: "qwen-plus-2025-12-01 / 120 / 1,000,000 / qwen-plus-2025-09-11 / 120" */
    expect_row(cfg, "intl", "qwen-plus-2025-09-11", 120, 1000000, 0, 0);
    /* Chinese Mainland, seed 499-523: "qwen-plus-2025-09-11 / 60 / ... / qwen-plus-2025-01-25 /
     * (qwen-plus-0125) / 150,000": 60 is the rpm carried down, 150,000 the tpm */
    expect_row(cfg, "cn-beijing", "qwen-plus-2025-01-25", 60, 150000, 0, 0);
    /* Chinese Mainland open source, seed 1847-1877: "qwen3.5-397b-a17b / 600 / 1,000,000 / ... /
     * qwen3-32b / 2400" */
    expect_row(cfg, "cn-beijing", "qwen3-32b", 2400, 1000000, 0, 0);
}

/* Ambiguous lone numbers take the conservative reading (the lower value of each column). */
static void test_seed_ambiguous(void **state)
{
    const struct qs_config *cfg = *state;

    /* Qwen-Omni-Realtime "International", seed 1173-1185: "qwen3-omni-flash-realtime / 60 / 100,000 /
     * qwen3-omni-flash-realtime-2025-12-01 / qwen3-omni-flash-realtime-2025-09-15 /
     * qwen-omni-turbo-realtime / 10,000": rpm 10,000 + tpm 100,000, or rpm 60 + tpm 10,000 */
    expect_row(cfg, "intl", "qwen-omni-turbo-realtime", 60, 10000, 0, 0);
    /* Chinese Mainland Wan image, seed 2803-2811: "wan2.6-t2i / 1 / 5 / wan2.5-t2i-preview / 5":
     * rps 5 + concurrency 5, or rps 1 + concurrency 5 */
    expect_row(cfg, "cn-beijing", "wan2.5-t2i-preview", 0, 0, 1, 5);
    /* International Wan video, seed 2955-2973: "wan2.2-i2v-flash / 2 / 2 / ... / wan2.2-kf2v-flash /
     * wan2.1-kf2v-plus / 1": rps 1 + concurrency 2, or rps 2 + concurrency 1 */
    expect_row(cfg, "intl", "wan2.1-kf2v-plus", 0, 0, 1, 1);
}

/* Image, video and speech rows: per-second and concurrency limits, RPM-only rows. */
static void test_seed_rps_rows(void **state)
{
    const struct qs_config *cfg = *state;

    /* International Qwen-Image, seed 2453-2457: "qwen-image-2.0-pro / 2 per minute / No limit for sync API"
     */
    expect_row(cfg, "intl", "qwen-image-2.0-pro", 2, 0, 0, 0);
    /* International Qwen-Image, seed 2491-2495: "qwen-image-plus / 2 per second /
     * No limit for sync API / Async API: 2" */
    expect_row(cfg, "intl", "qwen-image-plus", 0, 0, 2, 2);
    /* Global Wan video, seed 2895-2903: "wan2.6-t2v / 5 / 5 / Image-to-video - first frame / wan2.6-i2v" */
    expect_row(cfg, "global", "wan2.6-i2v", 0, 0, 5, 5);
    /* Chinese Mainland Paraformer, seed 3933-3937: "paraformer-8k-v2 / 20 / 100" */
    expect_row(cfg, "cn-beijing", "paraformer-8k-v2", 0, 0, 20, 100);
    /* Chinese Mainland text embedding, seed 4059-4069: "RPS / TPM/Number of tasks / ... /
     * text-embedding-v4 / 30 / 1,200,000" */
    expect_row(cfg, "cn-beijing", "text-embedding-v4", 0, 1200000, 30, 0);
    /* International Qwen3-TTS-Flash (RPM only), seed 3339-3341: "qwen3-tts-flash-2025-09-18 / 10" */
    expect_row(cfg, "intl", "qwen3-tts-flash-2025-09-18", 10, 0, 0, 0);
}

/* The largest number of the seed and the retired tables. */
static void test_seed_rerank_and_retired(void **state)
{
    const struct qs_config *cfg = *state;
    struct qs_limit l;
    char src[256];

    /* Text rerank, seed 4141-4145: "gte-rerank-v2 / 5,040 / 4,980,000,000" (above 2^31) */
    expect_row(cfg, "cn-beijing", "gte-rerank-v2", 5040, 4980000000.0, 0, 0);
    /* Retired on August 20, 2025, seed 4279-4297: "qwen2-72b-instruct / 0 / 0 / ... / qwen1.5-7b-chat" */
    expect_row(cfg, "global", "qwen1.5-7b-chat", 0, 0, 0, 0);
    assert_int_equal(qs_limits_lookup(cfg, "us", "qwen-vl-plus-2024-08-09", &l, src, sizeof(src)), 0);
    assert_true(qs_limits_retired(&l));
    /* Kimi, seed 2371-2375: "Moonshot-Kimi-K2-Instruct / 500 / 1,000,000": names are matched as
     * written; another spelling is another model. */
    expect_row(cfg, "cn-beijing", "Moonshot-Kimi-K2-Instruct", 500, 1000000, 0, 0);
    assert_int_equal(qs_limits_lookup(cfg, "cn-beijing", "moonshot-kimi-k2-instruct", &l, src, sizeof(src)),
                     0);
    assert_string_equal(src, "default_limit");
}

/* ============================ Precedence ============================ */

static void add_limit(struct qs_config *cfg, const char *model, double rpm, double tpm, int line)
{
    struct qs_limit *l = &cfg->limits[cfg->nlimits++];

    memset(l, 0, sizeof(*l));
    snprintf(l->model, sizeof(l->model), "%s", model);
    l->rpm = rpm;
    l->tpm = tpm;
    l->line = line;
}

/* A config glob beats the table; the first matching config entry wins even when a later one
 * names the model exactly; the table beats default_limit; an unknown model gets the default. */
static void test_precedence(void **state)
{
    struct qs_config *cfg = *state;
    struct qs_limit l;
    char src[256];

    snprintf(cfg->source, sizeof(cfg->source), "/etc/qshim.conf");
    add_limit(cfg, "qwen3-max-*", 1, 2, 7);
    add_limit(cfg, "qwen3-max-preview", 3, 4, 8);
    add_limit(cfg, "my-finetune", 5, 6, 9);

    assert_int_equal(qs_limits_lookup(cfg, "cn-beijing", "qwen3-max-preview", &l, src, sizeof(src)), 0);
    assert_string_equal(src, "config /etc/qshim.conf:7");
    assert_string_equal(l.model, "qwen3-max-*");
    assert_true(l.rpm == 1 && l.tpm == 2);
    /* The glob does not match the bare name, which the table has (seed 425-429: 30,000 / 5,000,000). */
    expect_row(cfg, "cn-beijing", "qwen3-max", 30000, 5000000, 0, 0);
    /* A model no table has, added by the config. */
    assert_int_equal(qs_limits_lookup(cfg, "intl", "my-finetune", &l, src, sizeof(src)), 0);
    assert_string_equal(src, "config /etc/qshim.conf:9");
    assert_true(l.rpm == 5 && l.tpm == 6);
    /* Found nowhere: the built-in default_limit. */
    assert_int_equal(qs_limits_lookup(cfg, "intl", "no-such-model", &l, src, sizeof(src)), 0);
    assert_string_equal(src, "default_limit");
    assert_string_equal(l.model, "*");
    assert_true(l.rpm == 60 && l.tpm == 100000);
    /* A table model absent from this region's table falls to the default too (cn-beijing has
     * qwen-long-latest, eu does not). */
    assert_int_equal(qs_limits_lookup(cfg, "eu", "qwen-long-latest", &l, src, sizeof(src)), 0);
    assert_string_equal(src, "default_limit");
}

/* default_limit from the file replaces the built-in one and says where it is. */
static void test_default_limit(void **state)
{
    struct qs_config *cfg = *state;
    struct qs_limit l;
    char src[256];

    snprintf(cfg->source, sizeof(cfg->source), "/home/u/.config/qshim/qshim.conf");
    cfg->has_default_limit = 1;
    cfg->default_limit.rpm = 10;
    cfg->default_limit.tpm = 20000;
    cfg->default_limit.line = 12;
    assert_int_equal(qs_limits_lookup(cfg, "us", "qwen-plus", &l, src, sizeof(src)), 0);
    assert_string_equal(src, "default_limit /home/u/.config/qshim/qshim.conf:12");
    assert_true(l.rpm == 10 && l.tpm == 20000);
    /* The table still comes first (seed 391-395: "qwen-plus-us / 600 / 1,000,000"). */
    expect_row(cfg, "us", "qwen-plus-us", 600, 1000000, 0, 0);
}

/* An unknown region is an error, but the override or default that applies is still given,
 * so that a caller can fail open. */
static void test_unknown_region(void **state)
{
    struct qs_config *cfg = *state;
    struct qs_limit l;
    char src[256];

    assert_int_equal(qs_limits_lookup(cfg, "auto", "qwen-plus", &l, src, sizeof(src)), -1);
    assert_string_equal(src, "default_limit");
    assert_true(l.rpm == 60 && l.tpm == 100000);
    add_limit(cfg, "qwen-*", 7, 8, 3);
    assert_int_equal(qs_limits_lookup(cfg, NULL, "qwen-plus", &l, src, sizeof(src)), -1);
    assert_true(l.rpm == 7 && l.tpm == 8);
    /* A long name fits no table row but is still looked up without overflow. */
    {
        char big[600];

        memset(big, 'q', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        cfg->nlimits = 0;
        assert_int_equal(qs_limits_lookup(cfg, "intl", big, &l, src, sizeof(src)), 0);
        assert_string_equal(src, "default_limit");
    }
}

/* ============================ The parser ============================ */

/* Parses <text> as table "t"; on failure asserts that the message starts with <prefix>. */
static int parse(const char *text, struct qs_lt_cache *c, const char *prefix)
{
    int rc;

    memset(c, 0, sizeof(*c));
    rc = qs_lt_parse("t", text, c);
    if (prefix != NULL) {
        assert_int_equal(rc, -1);
        assert_null(c->rows);
        if (strncmp(c->err, prefix, strlen(prefix)) != 0)
            fail_msg("error \"%s\" does not start with \"%s\"", c->err, prefix);
    }
    return rc;
}

/* Every malformed table is refused with its file and line: a table must never lose a limit
 * silently. */
static void test_parse_errors(void **state)
{
    struct qs_lt_cache c;

    (void)state;
    parse("limits = ( { model = \"a\"; rpm = 1; }", &c, "config/limits/t.conf:1: syntax error");
    parse("limit = ( { model = \"a\"; rpm = 1; } );", &c, "config/limits/t.conf:1: the file must hold");
    parse("limits = ( { model = \"a\"; rpm = 1; } );\nx = 1;", &c, "config/limits/t.conf:1: the file must");
    parse("limits = ( { model = \"a\";\n rqm = 1; } );", &c, "config/limits/t.conf:2: unknown key \"rqm\"");
    parse("limits = ( { model = \"a\"; rpm = -1; } );", &c, "config/limits/t.conf:1: rpm must be");
    parse("limits = ( { model = \"a\"; tpm = \"9\"; } );", &c, "config/limits/t.conf:1: tpm must be");
    parse("limits = ( { model = \"a\"; rps = 1; concurrency = 1.5; } );", &c,
          "config/limits/t.conf:1: concurrency must be");
    parse("limits = ( { rpm = 1; } );", &c, "config/limits/t.conf:1: entry has no model");
    parse("limits = ( { model = \"\"; rpm = 1; } );", &c, "config/limits/t.conf:1: model must be");
    parse("limits = ( { model = \"a\"; tps = 1; concurrency = 2; } );", &c,
          "config/limits/t.conf:1: \"a\" needs rpm, tpm or rps");
    parse("limits = ( 5 );", &c, "config/limits/t.conf:1: each entry must be a group");
    parse("limits = (\n { model = \"b\"; rpm = 1; },\n { model = \"a\"; rpm = 1; },\n"
          " { model = \"b\"; rpm = 2; } );",
          &c, "config/limits/t.conf:");
    assert_non_null(strstr(c.err, "\"b\" is listed twice"));
}

/* Globs in a table follow the exact names, in file order, and the first that matches wins;
 * an exact name beats any glob. 4,980,000,000 needs libconfig's L suffix or a float. */
static void test_parse_globs(void **state)
{
    struct qs_lt_cache c;
    const struct qs_limit *hit;

    (void)state;
    assert_int_equal(parse("limits = (\n"
                           "  { model = \"b-*\"; rpm = 1; },\n"
                           "  { model = \"c\"; rpm = 0; tpm = 0; },\n"
                           "  { model = \"b-x*\"; rpm = 3; },\n"
                           "  { model = \"b-xy\"; tpm = 4980000000L; },\n"
                           "  { model = \"a\"; rps = 2.5; concurrency = 3; }\n"
                           ");",
                           &c, NULL),
                     0);
    assert_int_equal(c.nrows, 5);
    assert_int_equal(c.nexact, 3);
    assert_string_equal(c.rows[0].model, "a");
    assert_string_equal(c.rows[1].model, "b-xy");
    assert_string_equal(c.rows[2].model, "c");
    assert_string_equal(c.rows[3].model, "b-*");
    assert_string_equal(c.rows[4].model, "b-x*");
    assert_int_equal(c.rows[3].line, 2);
    assert_true(c.rows[1].tpm == 4980000000.0);
    assert_true(c.rows[0].rps == 2.5 && c.rows[0].concurrency == 3);
    assert_true(qs_limits_retired(&c.rows[2]));
    hit = qs_lt_match(&c, "b-xz");
    assert_non_null(hit);
    assert_string_equal(hit->model, "b-*");
    hit = qs_lt_match(&c, "b-xy");
    assert_string_equal(hit->model, "b-xy");
    assert_null(qs_lt_match(&c, "d"));
    free(c.rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_use_threads),
        cmocka_unit_test(test_every_table_parses),
        cmocka_unit_test(test_region_names),
        cmocka_unit_test_setup_teardown(test_seed_text_rows, setup_cfg, teardown_cfg),
        cmocka_unit_test_setup_teardown(test_seed_grouped_cells, setup_cfg, teardown_cfg),
        cmocka_unit_test_setup_teardown(test_seed_lone_numbers, setup_cfg, teardown_cfg),
        cmocka_unit_test_setup_teardown(test_seed_ambiguous, setup_cfg, teardown_cfg),
        cmocka_unit_test_setup_teardown(test_seed_rps_rows, setup_cfg, teardown_cfg),
        cmocka_unit_test_setup_teardown(test_seed_rerank_and_retired, setup_cfg, teardown_cfg),
        cmocka_unit_test_setup_teardown(test_precedence, setup_cfg, teardown_cfg),
        cmocka_unit_test_setup_teardown(test_default_limit, setup_cfg, teardown_cfg),
        cmocka_unit_test_setup_teardown(test_unknown_region, setup_cfg, teardown_cfg),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_globs),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
