/* test_config.c - unit tests for shim/config.c: defaults, every key, error lines, lookup
 * order, environment, program and host globs, and the shipped example config/qshim.conf.
 *
 * Config files are written to temporary files; errors are checked for the exact
 * "FILE:LINE: " prefix. The environment is saved before each test and restored after.
 * Run from the repository root (the example config is opened by a relative path).
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

/* ============================ Fixtures and helpers ============================ */

static const char *const qs_env_names[] = {
    "QSHIM_CONFIG", "QSHIM_LOG", "QSHIM_MODE", "QSHIM_DISABLE", "HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"};
#define QS_NENV (sizeof(qs_env_names) / sizeof(qs_env_names[0]))

struct qs_env_saved {
    char *value[QS_NENV];
};

/* Saves the variables the config code reads, then gives every test the same start:
 * HOME=/home/t and nothing else set. */
static int setup_env(void **state)
{
    struct qs_env_saved *saved = calloc(1, sizeof(*saved));
    size_t i;

    if (saved == NULL)
        return -1;
    for (i = 0; i < QS_NENV; i++) {
        const char *v = getenv(qs_env_names[i]);
        saved->value[i] = v != NULL ? strdup(v) : NULL;
        unsetenv(qs_env_names[i]);
    }
    setenv("HOME", "/home/t", 1);
    *state = saved;
    return 0;
}

static int teardown_env(void **state)
{
    struct qs_env_saved *saved = *state;
    size_t i;

    for (i = 0; i < QS_NENV; i++) {
        if (saved->value[i] != NULL)
            setenv(qs_env_names[i], saved->value[i], 1);
        else
            unsetenv(qs_env_names[i]);
        free(saved->value[i]);
    }
    free(saved);
    return 0;
}

/* Writes <text> to a new temporary file whose name goes to path[64]. */
static void write_tmp(const char *text, char *path)
{
    int fd;
    size_t len = strlen(text);

    strcpy(path, "/tmp/qs_test_config_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static struct qs_config *load_ok(const char *text)
{
    struct qs_config *cfg = malloc(sizeof(*cfg));
    char path[64], err[QS_CFG_ERR_MAX];

    assert_non_null(cfg);
    write_tmp(text, path);
    if (qs_config_load_file(path, cfg, err, sizeof(err)) != 0)
        fail_msg("unexpected error: %s", err);
    assert_string_equal(cfg->source, path);
    unlink(path);
    return cfg;
}

/* Loads <text> and expects exactly "TMPFILE:<line>: ..." containing <what>, with the
 * struct left at the defaults. */
static void expect_error(const char *text, int line, const char *what)
{
    struct qs_config *cfg = malloc(sizeof(*cfg));
    char path[64], prefix[96], err[QS_CFG_ERR_MAX];

    assert_non_null(cfg);
    write_tmp(text, path);
    assert_int_equal(qs_config_load_file(path, cfg, err, sizeof(err)), -1);
    snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, what) == NULL)
        fail_msg("config:\n%s\ngot  \"%s\"\nwant \"%s...%s...\"", text, err, prefix, what);
    assert_string_equal(cfg->source, "");
    assert_true(cfg->headroom == 0.95);
    assert_int_equal(cfg->nhosts, 5);
    assert_int_equal(cfg->nlimits, 0);
    unlink(path);
    free(cfg);
}

/* ================================ Loading ================================ */

/* No file: enabled for all programs, default hosts, region auto, SPEC section 4 values. */
static void test_defaults(void **state)
{
    struct qs_config cfg;

    (void)state;
    qs_config_defaults(&cfg);
    assert_string_equal(cfg.source, "");
    assert_int_equal(cfg.enabled, 1);
    assert_int_equal(cfg.mode, QS_MODE_ENFORCE);
    assert_int_equal(cfg.nprograms, 0);
    assert_int_equal(cfg.nexclude, 0);
    assert_int_equal(cfg.nhosts, 5);
    assert_string_equal(cfg.hosts[0], "dashscope.aliyuncs.com");
    assert_string_equal(cfg.hosts[1], "dashscope-intl.aliyuncs.com");
    assert_string_equal(cfg.hosts[2], "dashscope-us.aliyuncs.com");
    assert_string_equal(cfg.hosts[3], "*.dashscope.aliyuncs.com");
    assert_string_equal(cfg.hosts[4], "*.maas.aliyuncs.com");
    assert_string_equal(cfg.region, "auto");
    assert_true(cfg.headroom == 0.95);
    assert_int_equal(cfg.nlimits, 0);
    assert_int_equal(cfg.has_default_limit, 0);
    assert_string_equal(cfg.default_limit.model, "*");
    assert_true(cfg.default_limit.rpm == 60 && cfg.default_limit.tpm == 100000);
    assert_true(cfg.default_limit.rps == 0 && cfg.default_limit.tps == 0);
    assert_int_equal(cfg.retry.max_attempts, 8);
    assert_int_equal(cfg.retry.base_ms, 1000);
    assert_int_equal(cfg.retry.max_ms, 30000);
    assert_int_equal(cfg.retry.max_total_ms, 120000);
    assert_int_equal(cfg.nfallback, 0);
    assert_string_equal(cfg.share.backend, "shm");
    assert_string_equal(cfg.share.redis, "redis://127.0.0.1:6379/0");
    assert_string_equal(cfg.share.on_error, "local");
    assert_string_equal(cfg.log.path, "/home/t/.local/state/qshim/audit.jsonl");
    assert_string_equal(cfg.log.level, "info");
    assert_int_equal(cfg.log.max_bytes, 0);
    assert_int_equal(cfg.log.keep, 0);
}

/* Every key with a value other than its default; numbers as ints and as floats. */
static void test_full_file(void **state)
{
    struct qs_config *cfg;

    (void)state;
    cfg = load_ok(
        "enabled = false;\n"
        "mode = \"observe\";\n"
        "programs = [ \"python3*\", \"curl\" ];\n"
        "exclude = [ \"ssh*\" ];\n"
        "hosts = [ \"dashscope.aliyuncs.com\", \"*.maas.aliyuncs.com\", \"localhost\" ];\n"
        "region = \"ap-southeast-1\";\n"
        "headroom = 1;\n"
        "limits = (\n"
        "  { model = \"qwen-plus\"; rpm = 600; tpm = 1000000; },\n"
        "  { model = \"qwen3-max-*\"; rpm = 60.5; tpm = 1e5; rps = 2; tps = 1500.5; concurrency = 3; },\n"
        "  { model = \"wan2.*\"; rps = 2; concurrency = 2; }\n"
        ");\n"
        "default_limit = { rpm = 30; tps = 10; };\n"
        "retry = { max_attempts = 3; base_ms = 200; max_ms = 5000.0; max_total_ms = 60000; };\n"
        "fallback = ( { model = \"qwen3-max\"; to = [ \"qwen-plus\", \"qwen-turbo\" ]; after_ms = 2000; },\n"
        "             { model = \"qwen-plus\"; to = [ \"qwen-turbo\" ]; } );\n"
        "share = { backend = \"redis\"; redis = \"redis://10.0.0.1:6380/2\"; on_error = \"pass\"; };\n"
        "log = { path = \"~/logs/q.jsonl\"; level = \"debug\"; max_bytes = 10000000000L; keep = 3; };\n");
    assert_int_equal(cfg->enabled, 0);
    assert_int_equal(cfg->mode, QS_MODE_OBSERVE);
    assert_int_equal(cfg->nprograms, 2);
    assert_string_equal(cfg->programs[0], "python3*");
    assert_string_equal(cfg->programs[1], "curl");
    assert_int_equal(cfg->nexclude, 1);
    assert_string_equal(cfg->exclude[0], "ssh*");
    assert_int_equal(cfg->nhosts, 3);
    assert_string_equal(cfg->hosts[2], "localhost");
    assert_string_equal(cfg->region, "intl");
    assert_true(cfg->headroom == 1.0);

    assert_int_equal(cfg->nlimits, 3);
    assert_string_equal(cfg->limits[0].model, "qwen-plus");
    assert_true(cfg->limits[0].rpm == 600 && cfg->limits[0].tpm == 1000000);
    assert_true(cfg->limits[0].rps == 0 && cfg->limits[0].tps == 0);
    assert_int_equal(cfg->limits[0].concurrency, 0);
    assert_int_equal(cfg->limits[0].line, 9);
    assert_true(cfg->limits[1].rpm == 60.5 && cfg->limits[1].tpm == 100000);
    assert_true(cfg->limits[1].rps == 2 && cfg->limits[1].tps == 1500.5);
    assert_int_equal(cfg->limits[1].concurrency, 3);
    assert_int_equal(cfg->limits[1].line, 10);
    assert_true(cfg->limits[2].rpm == 0 && cfg->limits[2].tpm == 0 && cfg->limits[2].rps == 2);
    assert_int_equal(cfg->limits[2].concurrency, 2);

    /* Keys default_limit leaves out keep their built-in values. */
    assert_int_equal(cfg->has_default_limit, 1);
    assert_int_equal(cfg->default_limit.line, 13);
    assert_true(cfg->default_limit.rpm == 30 && cfg->default_limit.tpm == 100000);
    assert_true(cfg->default_limit.tps == 10);

    assert_int_equal(cfg->retry.max_attempts, 3);
    assert_int_equal(cfg->retry.base_ms, 200);
    assert_int_equal(cfg->retry.max_ms, 5000);
    assert_int_equal(cfg->retry.max_total_ms, 60000);

    assert_int_equal(cfg->nfallback, 2);
    assert_string_equal(cfg->fallback[0].model, "qwen3-max");
    assert_int_equal(cfg->fallback[0].nto, 2);
    assert_string_equal(cfg->fallback[0].to[0], "qwen-plus");
    assert_string_equal(cfg->fallback[0].to[1], "qwen-turbo");
    assert_int_equal(cfg->fallback[0].after_ms, 2000);
    assert_int_equal(cfg->fallback[1].nto, 1);
    assert_int_equal(cfg->fallback[1].after_ms, 10000);

    assert_string_equal(cfg->share.backend, "redis");
    assert_string_equal(cfg->share.redis, "redis://10.0.0.1:6380/2");
    assert_string_equal(cfg->share.on_error, "pass");
    assert_string_equal(cfg->log.path, "/home/t/logs/q.jsonl");
    assert_string_equal(cfg->log.level, "debug");
    assert_true(cfg->log.max_bytes == 10000000000L);
    assert_int_equal(cfg->log.keep, 3);
    free(cfg);
}

/* An empty file is valid and means the defaults; comments of all three kinds are fine. */
static void test_empty_and_comments(void **state)
{
    struct qs_config *cfg;

    (void)state;
    cfg = load_ok("# nothing\n// still nothing\n/* nor here */\n");
    assert_int_equal(cfg->enabled, 1);
    assert_int_equal(cfg->nhosts, 5);
    free(cfg);
    /* An empty hosts list is taken literally: nothing is DashScope. */
    cfg = load_ok("hosts = [ ];\nprograms = [ ];\n");
    assert_int_equal(cfg->nhosts, 0);
    assert_int_equal(cfg->nprograms, 0);
    free(cfg);
}

/* The shipped example loads cleanly and says what the defaults say. */
static void test_example_config(void **state)
{
    struct qs_config *cfg = malloc(sizeof(*cfg)), *def = malloc(sizeof(*def));
    char err[QS_CFG_ERR_MAX];

    (void)state;
    assert_non_null(cfg);
    assert_non_null(def);
    if (qs_config_load_file("config/qshim.conf", cfg, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_string_equal(err, "");
    qs_config_defaults(def);
    /* Equal to the defaults except for where it came from and the explicit default_limit. */
    assert_string_equal(cfg->source, "config/qshim.conf");
    assert_int_equal(cfg->has_default_limit, 1);
    cfg->has_default_limit = 0;
    cfg->default_limit.line = 0;
    memcpy(cfg->source, def->source, sizeof(cfg->source));
    assert_memory_equal(cfg, def, sizeof(*cfg));
    free(cfg);
    free(def);
}

/* ================================ Errors ================================ */

static void test_error_syntax(void **state)
{
    (void)state;
    expect_error("enabled = true;\n\nheadroom = ;\n", 3, "syntax error");
    expect_error("a = 1;\na = 2;\n", 2, "duplicate setting");
    expect_error("limits = (\n { model = \"x\"; rpm = 1; }\n { model = \"y\"; rpm = 1; }\n);\n", 3,
                 "syntax error");
}

static void test_error_unknown_key(void **state)
{
    (void)state;
    expect_error("enabled = true;\nretyr = { max_attempts = 3; };\n", 2,
                 "unknown key 'retyr' (did you mean 'retry'?)");
    expect_error("retry = {\n  max_attempts = 3;\n  bse_ms = 5;\n};\n", 3,
                 "unknown key 'retry.bse_ms' (did you mean 'retry.base_ms'?)");
    expect_error("limits = (\n  { model = \"a\"; rpm = 1; },\n  { model = \"b\";\n    rmp = 1; }\n);\n", 4,
                 "unknown key 'limits[1].rmp' (did you mean 'limits[1].rpm'?)");
    expect_error("log = { path = \"/tmp/x\"; colour = \"red\"; };\n", 1, "unknown key 'log.colour'");
    /* Nothing close enough: no suggestion. */
    expect_error("\nwhatever = 1;\n", 2, "unknown key 'whatever'");
    /* A key from another group is unknown where it stands. */
    expect_error("share = { backend = \"shm\"; level = \"info\"; };\n", 1, "unknown key 'share.level'");
    /* model names no key in default_limit. */
    expect_error("default_limit = { model = \"x\"; rpm = 1; };\n", 1, "unknown key 'default_limit.model'");
}

static void test_error_wrong_type(void **state)
{
    (void)state;
    expect_error("\nenabled = \"yes\";\n", 2, "enabled must be true or false");
    expect_error("enabled = 1;\n", 1, "enabled must be true or false");
    expect_error("mode = 1;\n", 1, "mode must be a string");
    expect_error("programs = \"curl\";\n", 1, "programs must be a list of strings");
    expect_error("exclude = [ 1, 2 ];\n", 1, "exclude[0] must be a string");
    expect_error("hosts = ( \"a\",\n  5 );\n", 2, "hosts[1] must be a string");
    expect_error("headroom = \"0.5\";\n", 1, "headroom must be a number");
    expect_error("limits = { model = \"x\"; rpm = 1; };\n", 1, "limits must be a list");
    expect_error("limits = ( \"qwen\" );\n", 1, "limits[0] must be a group");
    expect_error("limits = (\n  { model = \"x\";\n    rpm = \"600\"; } );\n", 3,
                 "limits[0].rpm must be a number");
    expect_error("limits = ( { model = 5; rpm = 1; } );\n", 1, "limits[0].model must be a string");
    expect_error("retry = 5;\n", 1, "retry must be a group");
    expect_error("retry = {\n max_attempts = 2.5; };\n", 2, "retry.max_attempts must be a whole number");
    expect_error("retry = { base_ms = true; };\n", 1, "retry.base_ms must be a whole number");
    expect_error("fallback = ( { model = \"a\"; to = \"b\"; } );\n", 1, "fallback[0].to must be a list");
    expect_error("share = [ \"shm\" ];\n", 1, "share must be a group");
    expect_error("log = { keep = \"3\"; };\n", 1, "log.keep must be a whole number");
}

static void test_error_range(void **state)
{
    (void)state;
    expect_error("\n\nheadroom = 1.5;\n", 3, "headroom must be greater than 0 and at most 1 (got 1.5)");
    expect_error("headroom = 0;\n", 1, "headroom must be greater than 0");
    expect_error("headroom = -0.5;\n", 1, "headroom must be greater than 0");
    expect_error("mode = \"enforcing\";\n", 1,
                 "mode must be one of \"enforce\", \"observe\" (got \"enforcing\")");
    expect_error("region = \"mars\";\n", 1, "region must be one of auto, cn-beijing");
    expect_error("limits = ( { model = \"x\"; rpm = -1; } );\n", 1, "limits[0].rpm must be between 0 and");
    expect_error("limits = ( { model = \"x\"; rpm = 1; concurrency = 2.5; } );\n", 1,
                 "limits[0].concurrency must be a whole number");
    expect_error("retry = { max_attempts = 0; };\n", 1,
                 "retry.max_attempts must be between 1 and 100 (got 0)");
    /* libconfig 1.5 wraps 3000000000 to a negative int; the range check still catches it. */
    expect_error("retry = { max_total_ms = 3000000000; };\n", 1, "retry.max_total_ms must be between");
    expect_error("retry = {\n  max_ms = 500;\n  base_ms = 1000;\n};\n", 3,
                 "retry.base_ms (1000) must not exceed retry.max_ms (500)");
    expect_error("share = { backend = \"memcached\"; };\n", 1,
                 "share.backend must be one of \"shm\", \"redis\", \"none\"");
    expect_error("share = { on_error = \"retry\"; };\n", 1, "share.on_error must be one of");
    expect_error("share = { redis = \"127.0.0.1:6379\"; };\n", 1, "share.redis must be a URL");
    expect_error("log = { level = \"trace\"; };\n", 1,
                 "log.level must be one of \"debug\", \"info\", \"warn\"");
    expect_error("log = { path = \"audit.jsonl\"; };\n", 1, "log.path must be absolute or start with ~/");
    expect_error("log = { path = \"~bob/a\"; };\n", 1, "~user is not supported");
    expect_error("log = { max_bytes = -1; };\n", 1, "log.max_bytes must be between 0 and");
    expect_error("hosts = [ \"dashscope.aliyuncs.com\",\n  \"dashscope.aliyuncs.com:443\" ];\n", 2,
                 "hosts[1] \"dashscope.aliyuncs.com:443\" must be a bare host name");
    expect_error("hosts = [ \"https://dashscope.aliyuncs.com\" ];\n", 1, "must be a bare host name");
    expect_error("programs = [ \"\" ];\n", 1, "programs[0] must not be empty");
}

/* Lists longer than the struct holds are errors, not truncations. */
static void test_error_too_many(void **state)
{
    char text[8192];
    size_t used;
    int i;

    (void)state;
    used = (size_t)snprintf(text, sizeof(text), "\nprograms = [ ");
    for (i = 0; i <= QS_CFG_MAX_GLOBS; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, "%s\"p%d\"", i > 0 ? ", " : "", i);
    snprintf(text + used, sizeof(text) - used, " ];\n");
    expect_error(text, 2, "programs has too many entries (33, at most 32)");

    used = (size_t)snprintf(text, sizeof(text), "limits = (\n");
    for (i = 0; i <= QS_CFG_MAX_LIMITS; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, "%s{ model = \"m%d\"; rpm = 1; }\n",
                                 i > 0 ? "," : "", i);
    snprintf(text + used, sizeof(text) - used, ");\n");
    expect_error(text, 1, "limits has too many entries (65, at most 64)");

    expect_error("fallback = ( { model = \"a\";\n  to = [ \"b\", \"c\", \"d\", \"e\", \"f\" ]; } );\n", 2,
                 "fallback[0].to has too many entries (5, at most 4)");

    /* Too long a string is an error too. */
    memset(text, 'x', 300);
    memcpy(text, "exclude = [ \"", 13);
    strcpy(text + 300, "\" ];\n");
    expect_error(text, 1, "exclude[0] is too long (at most 127 characters)");
}

static void test_error_missing(void **state)
{
    char err[QS_CFG_ERR_MAX], dir[] = "/tmp/qs_test_config_dir_XXXXXX";
    struct qs_config *cfg = malloc(sizeof(*cfg));

    (void)state;
    assert_non_null(cfg);
    expect_error("limits = (\n  { rpm = 1; }\n);\n", 2, "limits[0] has no model");
    expect_error("limits = (\n  { model = \"x\"; concurrency = 2; }\n);\n", 2,
                 "limits[0] (\"x\") needs rpm, tpm or rps");
    expect_error("fallback = (\n  { model = \"x\"; after_ms = 5; }\n);\n", 2,
                 "fallback[0] needs model and to");
    expect_error("fallback = ( { model = \"x\"; to = [ ]; } );\n", 1,
                 "fallback[0].to must name at least one");
    expect_error("fallback = ( { model = \"x\";\n  to = [ \"y\", \"x\" ]; } );\n", 2,
                 "fallback[0].to must not name \"x\" itself");

    /* No such file, and a directory: "FILE: reason", there is no line to give. */
    assert_int_equal(qs_config_load_file("/nonexistent/qshim.conf", cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "/nonexistent/qshim.conf: cannot open: No such file or directory");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(qs_config_load_file(dir, cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, ": is a directory"));
    assert_int_equal(cfg->nhosts, 5);
    rmdir(dir);
    free(cfg);
}

/* ============================ Lookup and environment ============================ */

/* $QSHIM_CONFIG, then $XDG_CONFIG_HOME/qshim/qshim.conf (or ~/.config/...), then /etc. */
static void test_find_order(void **state)
{
    char dir[] = "/tmp/qs_test_config_home_XXXXXX", p[512], out[QS_CFG_PATH_MAX], etc[QS_CFG_PATH_MAX];
    const char *want_etc;

    (void)state;
    assert_non_null(mkdtemp(dir));
    setenv("HOME", dir, 1);
    /* /etc/qshim.conf is outside the test's control: expect whatever is there. */
    want_etc = access("/etc/qshim.conf", F_OK) == 0 ? "/etc/qshim.conf" : "";
    strcpy(etc, want_etc);

    /* Nothing in HOME. */
    assert_int_equal(qs_config_find(out, sizeof(out)), etc[0] != '\0' ? 0 : -1);
    assert_string_equal(out, etc);

    /* ~/.config/qshim/qshim.conf */
    snprintf(p, sizeof(p), "%s/.config", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/.config/qshim", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/.config/qshim/qshim.conf", dir);
    write_file(p, "enabled = true;\n");
    assert_int_equal(qs_config_find(out, sizeof(out)), 0);
    assert_string_equal(out, p);

    /* A relative XDG_CONFIG_HOME is ignored (XDG base directory spec). */
    setenv("XDG_CONFIG_HOME", "relative/dir", 1);
    assert_int_equal(qs_config_find(out, sizeof(out)), 0);
    assert_string_equal(out, p);

    /* An absolute XDG_CONFIG_HOME replaces ~/.config, even when it holds no file. */
    setenv("XDG_CONFIG_HOME", "/nonexistent/xdg", 1);
    assert_int_equal(qs_config_find(out, sizeof(out)), etc[0] != '\0' ? 0 : -1);
    assert_string_equal(out, etc);
    snprintf(p, sizeof(p), "%s/.config", dir);
    setenv("XDG_CONFIG_HOME", p, 1);
    snprintf(p, sizeof(p), "%s/.config/qshim/qshim.conf", dir);
    assert_int_equal(qs_config_find(out, sizeof(out)), 0);
    assert_string_equal(out, p);

    /* QSHIM_CONFIG beats everything and is returned even when missing. */
    setenv("QSHIM_CONFIG", "/nonexistent/mine.conf", 1);
    assert_int_equal(qs_config_find(out, sizeof(out)), 0);
    assert_string_equal(out, "/nonexistent/mine.conf");
    /* ... but an empty one counts as unset. */
    setenv("QSHIM_CONFIG", "", 1);
    assert_int_equal(qs_config_find(out, sizeof(out)), 0);
    assert_string_equal(out, p);

    /* A path that does not fit the caller's buffer is not returned truncated. */
    assert_int_equal(qs_config_find(out, 8), -1);
    assert_string_equal(out, "");

    unlink(p);
    snprintf(p, sizeof(p), "%s/.config/qshim", dir);
    rmdir(p);
    snprintf(p, sizeof(p), "%s/.config", dir);
    rmdir(p);
    rmdir(dir);
}

static void test_default_log_path(void **state)
{
    char out[QS_CFG_PATH_MAX];
    struct qs_config *cfg;

    (void)state;
    qs_config_default_log_path(out, sizeof(out));
    assert_string_equal(out, "/home/t/.local/state/qshim/audit.jsonl");
    setenv("XDG_STATE_HOME", "/var/state", 1);
    qs_config_default_log_path(out, sizeof(out));
    assert_string_equal(out, "/var/state/qshim/audit.jsonl");
    setenv("QSHIM_LOG", "/tmp/q.jsonl", 1);
    qs_config_default_log_path(out, sizeof(out));
    assert_string_equal(out, "/tmp/q.jsonl");
    unsetenv("QSHIM_LOG");
    unsetenv("XDG_STATE_HOME");
    unsetenv("HOME");
    qs_config_default_log_path(out, sizeof(out));
    assert_string_equal(out, "");
    /* Without HOME, "~" in the file cannot be expanded: an error, not a relative path. */
    expect_error("log = { path = \"~/a.jsonl\"; };\n", 1, "cannot expand ~, HOME is not set");
    setenv("HOME", "/home/u", 1);
    cfg = load_ok("log = { path = \"~\"; };\n");
    assert_string_equal(cfg->log.path, "/home/u");
    free(cfg);
}

/* The environment beats the file; a bad QSHIM_MODE is reported and ignored. */
static void test_apply_env(void **state)
{
    struct qs_config cfg;
    char err[QS_CFG_ERR_MAX];

    (void)state;
    qs_config_defaults(&cfg);
    assert_int_equal(qs_config_apply_env(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.enabled, 1);
    assert_int_equal(cfg.mode, QS_MODE_ENFORCE);

    setenv("QSHIM_DISABLE", "0", 1);
    setenv("QSHIM_MODE", "observe", 1);
    setenv("QSHIM_LOG", "/tmp/env.jsonl", 1);
    assert_int_equal(qs_config_apply_env(&cfg, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(cfg.enabled, 1);
    assert_int_equal(cfg.mode, QS_MODE_OBSERVE);
    assert_string_equal(cfg.log.path, "/tmp/env.jsonl");

    setenv("QSHIM_DISABLE", "1", 1);
    setenv("QSHIM_MODE", "obsrve", 1);
    assert_int_equal(qs_config_apply_env(&cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "QSHIM_MODE: must be \"enforce\" or \"observe\" (got \"obsrve\")");
    assert_int_equal(cfg.enabled, 0);
    assert_int_equal(cfg.mode, QS_MODE_OBSERVE);
}

/* ================================ Filters ================================ */

static void test_program_globs(void **state)
{
    struct qs_config cfg;

    (void)state;
    qs_config_defaults(&cfg);
    /* No programs and no exclude: everything, even with no name at all. */
    assert_int_equal(qs_config_program_enabled(&cfg, "anything", NULL), 1);
    assert_int_equal(qs_config_program_enabled(&cfg, NULL, NULL), 1);

    strcpy(cfg.programs[0], "python3*");
    strcpy(cfg.programs[1], "curl");
    cfg.nprograms = 2;
    assert_int_equal(qs_config_program_enabled(&cfg, "python3.11", "python3.11"), 1);
    assert_int_equal(qs_config_program_enabled(&cfg, "python3", NULL), 1);
    assert_int_equal(qs_config_program_enabled(&cfg, "curl", "curl"), 1);
    assert_int_equal(qs_config_program_enabled(&cfg, "curly", "curly"), 0);
    assert_int_equal(qs_config_program_enabled(&cfg, "wget", "wget"), 0);
    assert_int_equal(qs_config_program_enabled(&cfg, NULL, NULL), 0);
    /* Either name may match: a venv's "python" is the executable python3.11. */
    assert_int_equal(qs_config_program_enabled(&cfg, "python", "python3.11"), 1);
    assert_int_equal(qs_config_program_enabled(&cfg, "myscript", "python3.11"), 1);
    assert_int_equal(qs_config_program_enabled(&cfg, "python3.11", ""), 1);
    /* Globs are case-sensitive, like file names. */
    assert_int_equal(qs_config_program_enabled(&cfg, "CURL", NULL), 0);

    /* exclude wins over programs, by either name. */
    strcpy(cfg.exclude[0], "python3.1?");
    cfg.nexclude = 1;
    assert_int_equal(qs_config_program_enabled(&cfg, "python3.11", "python3.11"), 0);
    assert_int_equal(qs_config_program_enabled(&cfg, "python3", "python3.11"), 0);
    assert_int_equal(qs_config_program_enabled(&cfg, "python3.9", "python3.9"), 1);

    /* exclude alone. */
    cfg.nprograms = 0;
    strcpy(cfg.exclude[0], "ssh*");
    assert_int_equal(qs_config_program_enabled(&cfg, "ssh-agent", NULL), 0);
    assert_int_equal(qs_config_program_enabled(&cfg, "git", "ssh"), 0);
    assert_int_equal(qs_config_program_enabled(&cfg, "git", "git"), 1);
}

static int host(const struct qs_config *cfg, const char *h)
{
    return qs_config_host_matches(cfg, h, strlen(h));
}

static void test_host_globs(void **state)
{
    struct qs_config cfg;
    const char *buf = "dashscope.aliyuncs.com:443";

    (void)state;
    qs_config_defaults(&cfg);
    assert_int_equal(host(&cfg, "dashscope.aliyuncs.com"), 1);
    assert_int_equal(host(&cfg, "dashscope-intl.aliyuncs.com"), 1);
    assert_int_equal(host(&cfg, "dashscope-us.aliyuncs.com"), 1);
    assert_int_equal(host(&cfg, "ws1.cn-beijing.maas.aliyuncs.com"), 1);
    assert_int_equal(host(&cfg, "trial.ap-southeast-1.maas.aliyuncs.com"), 1);
    assert_int_equal(host(&cfg, "cn-hongkong.dashscope.aliyuncs.com"), 1);
    /* Any case; a trailing dot is the same host. */
    assert_int_equal(host(&cfg, "DashScope.Aliyuncs.COM"), 1);
    assert_int_equal(host(&cfg, "WS1.CN-BEIJING.MAAS.ALIYUNCS.COM"), 1);
    assert_int_equal(host(&cfg, "dashscope.aliyuncs.com."), 1);
    /* Not DashScope. */
    assert_int_equal(host(&cfg, "maas.aliyuncs.com"), 0);
    assert_int_equal(host(&cfg, "aliyuncs.com"), 0);
    assert_int_equal(host(&cfg, "api.openai.com"), 0);
    assert_int_equal(host(&cfg, "dashscope.aliyuncs.com.evil.example"), 0);
    assert_int_equal(host(&cfg, "xdashscope.aliyuncs.com"), 0);
    assert_int_equal(host(&cfg, ""), 0);
    assert_int_equal(host(&cfg, "."), 0);
    /* The length bounds the name: "dashscope.aliyuncs.com" out of a "host:port" buffer. */
    assert_int_equal(qs_config_host_matches(&cfg, buf, 22), 1);
    assert_int_equal(qs_config_host_matches(&cfg, buf, strlen(buf)), 0);
    /* An embedded NUL is never a match. */
    assert_int_equal(qs_config_host_matches(&cfg, "dashscope.aliyuncs.com\0x", 24), 0);

    /* A configured list replaces the defaults. */
    strcpy(cfg.hosts[0], "localhost");
    cfg.nhosts = 1;
    assert_int_equal(host(&cfg, "LOCALHOST"), 1);
    assert_int_equal(host(&cfg, "dashscope.aliyuncs.com"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup_env, teardown_env),
        cmocka_unit_test_setup_teardown(test_full_file, setup_env, teardown_env),
        cmocka_unit_test_setup_teardown(test_empty_and_comments, setup_env, teardown_env),
        cmocka_unit_test_setup_teardown(test_example_config, setup_env, teardown_env),
        cmocka_unit_test_setup_teardown(test_error_syntax, setup_env, teardown_env),
        cmocka_unit_test_setup_teardown(test_error_unknown_key, setup_env, teardown_env),
        cmocka_unit_test_setup_teardown(test_error_wrong_type, setup_env, teardown_env),
        cmocka_unit_test_setup_teardown(test_error_range, setup_env, teardown_env),
        cmocka_unit_test_setup_teardown(test_error_too_many, setup_env, teardown_env),
        cmocka_unit_test_setup_teardown(test_error_missing, setup_env, teardown_env),
        cmocka_unit_test_setup_teardown(test_find_order, setup_env, teardown_env),
        cmocka_unit_test_setup_teardown(test_default_log_path, setup_env, teardown_env),
        cmocka_unit_test_setup_teardown(test_apply_env, setup_env, teardown_env),
        cmocka_unit_test_setup_teardown(test_program_globs, setup_env, teardown_env),
        cmocka_unit_test_setup_teardown(test_host_globs, setup_env, teardown_env),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
