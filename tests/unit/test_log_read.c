/* test_log_read.c - unit tests for tools/log_read.c: files read in turn, rotated files
 * oldest first, one warning per line skipped (naming FILE:LINE), long lines, and
 * following a file that grows, is truncated, or is rotated away.
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
#include <unistd.h>

#include "log_read.h"

struct fx {
    char dir[64];
    char *warn_text;
    size_t warn_len;
    FILE *warn;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    strcpy(fx->dir, "/tmp/qs-test-log-read.XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    fx->warn = open_memstream(&fx->warn_text, &fx->warn_len);
    *state = fx;
    return fx->warn ? 0 : -1;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    char cmd[128];
    fclose(fx->warn);
    free(fx->warn_text);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

static char *path(struct fx *fx, const char *name)
{
    static char p[16][128];
    static int k;
    k = (k + 1) % 16;
    snprintf(p[k], sizeof p[k], "%s/%s", fx->dir, name);
    return p[k];
}

static void write_file(const char *p, const char *mode, const char *text)
{
    FILE *f = fopen(p, mode);
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The warnings written so far. */
static const char *warnings(struct fx *fx)
{
    fflush(fx->warn);
    return fx->warn_text ? fx->warn_text : "";
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Sets <rd> up on <files>, warnings into the fixture's stream. */
static void start(struct fx *fx, struct qs_log_reader *rd, const char *const *files, size_t n, int rotated)
{
    assert_int_equal(qs_log_reader_init(rd, files, n, rotated), 0);
    rd->warn = fx->warn;
}

/* The models of every record read, joined by spaces. */
static void read_all(struct qs_log_reader *rd, char *out, size_t len)
{
    const char *line;
    size_t n;
    struct qs_log_rec r;
    out[0] = '\0';
    while (qs_log_reader_next(rd, &line, &n, &r) == 1) {
        assert_true(n > 0 && line[0] == '{' && (line[n - 1] == '}' || line[n - 1] == '\r')); /* as it was */
        snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? " " : "", r.model);
    }
}

/* A truncated last line is skipped with exactly one warning, naming file and line; a
 * malformed one in the middle too; blank lines are no records and no warnings. */
static void test_skips_with_one_warning(void **state)
{
    struct fx *fx = *state;
    struct qs_log_reader rd;
    char got[256], want[512];
    const char *files[] = {path(fx, "a.jsonl")};
    (void)state;

    write_file(files[0], "w",
               "{\"model\":\"a\"}\n\n  "
               "\r\n{\"model\":\"b\",oops}\n{\"model\":\"c\"}\r\n{\"model\":\"d\",\"ts\":\"20");
    start(fx, &rd, files, 1, 0);
    read_all(&rd, got, sizeof got);
    assert_string_equal(got, "a c");
    assert_int_equal(rd.bad, 2);
    snprintf(want, sizeof want,
             "qshim-log: %s:4: malformed record, skipped\n"
             "qshim-log: %s:6: truncated record (the file ends inside it), skipped\n",
             files[0], files[0]);
    assert_string_equal(warnings(fx), want);
    assert_true(qs_log_reader_done(&rd));
    qs_log_reader_free(&rd);
}

/* A last line without its '\n' that is whole is a record like any other. */
static void test_last_line_whole(void **state)
{
    struct fx *fx = *state;
    struct qs_log_reader rd;
    char got[256];
    const char *files[] = {path(fx, "b.jsonl")};

    write_file(files[0], "w", "{\"model\":\"a\"}\n{\"model\":\"b\"}");
    start(fx, &rd, files, 1, 0);
    read_all(&rd, got, sizeof got);
    assert_string_equal(got, "a b");
    assert_int_equal(rd.bad, 0);
    assert_string_equal(warnings(fx), "");
    qs_log_reader_free(&rd);
}

/* Several files in turn, each FILE after its rotated FILE.N ... FILE.1; a missing file
 * is reported, counted and passed over. */
static void test_files_and_rotation(void **state)
{
    struct fx *fx = *state;
    struct qs_log_reader rd;
    char got[256];
    const char *files[] = {path(fx, "log"), path(fx, "missing"), path(fx, "other")};

    write_file(path(fx, "log.3"), "w", "{\"model\":\"r3\"}\n");
    write_file(path(fx, "log.2"), "w", "{\"model\":\"r2\"}\n");
    write_file(path(fx, "log.1"), "w", "{\"model\":\"r1\"}\n");
    write_file(path(fx, "log.5"), "w", "{\"model\":\"gap\"}\n"); /* after a gap: not one of them */
    write_file(path(fx, "log"), "w", "{\"model\":\"live\"}");    /* no '\n' at the end */
    write_file(path(fx, "other"), "w", "{\"model\":\"o\"}\n");
    start(fx, &rd, files, 3, 1);
    read_all(&rd, got, sizeof got);
    assert_string_equal(got, "r3 r2 r1 live o");
    assert_int_equal(rd.nopen, 1);
    assert_non_null(strstr(warnings(fx), "cannot open"));
    assert_non_null(strstr(warnings(fx), "missing"));
    qs_log_reader_free(&rd);
    /* without rotated: only the files named */
    assert_int_equal(qs_log_reader_init(&rd, files, 1, 0), 0);
    rd.warn = NULL;
    read_all(&rd, got, sizeof got);
    assert_string_equal(got, "live");
    qs_log_reader_free(&rd);
}

/* A line longer than the limit is one warning, and the line after it is read. */
static void test_long_line(void **state)
{
    struct fx *fx = *state;
    struct qs_log_reader rd;
    char got[256];
    const char *files[] = {path(fx, "long.jsonl")};
    FILE *f = fopen(files[0], "w");

    assert_non_null(f);
    fputs("{\"model\":\"a\"}\n{\"reason\":\"", f);
    for (int i = 0; i < QS_LOG_LINE_MAX / 1000 + 200; i++)
        fprintf(f, "%01000d", i);
    fputs("\"}\n{\"model\":\"b\"}\n", f);
    fclose(f);
    start(fx, &rd, files, 1, 0);
    read_all(&rd, got, sizeof got);
    assert_string_equal(got, "a b");
    assert_int_equal(rd.bad, 1);
    assert_int_equal(count_lines(warnings(fx)), 1);
    assert_non_null(strstr(warnings(fx), "long.jsonl:2: line too long"));
    qs_log_reader_free(&rd);
}

static int next_model(struct qs_log_reader *rd, char *model, size_t len)
{
    const char *line;
    size_t n;
    struct qs_log_rec r;
    int rc = qs_log_reader_next(rd, &line, &n, &r);
    if (rc == 1)
        snprintf(model, len, "%s", r.model);
    return rc;
}

/* Following: new lines are read as they come, a half-written one is waited for (not
 * warned about), a truncated file is read again, a rotated one is drained and then the
 * new file at the path is read from its start. */
static void test_follow(void **state)
{
    struct fx *fx = *state;
    struct qs_log_reader rd;
    char m[sizeof((struct qs_log_rec *)0)->model];
    const char *files[] = {path(fx, "live.jsonl")};

    write_file(files[0], "w", "{\"model\":\"a\"}\n");
    start(fx, &rd, files, 1, 0);
    rd.follow = 1;
    assert_int_equal(next_model(&rd, m, sizeof m), 1);
    assert_string_equal(m, "a");
    assert_int_equal(next_model(&rd, m, sizeof m), 0);
    assert_false(qs_log_reader_done(&rd));

    write_file(files[0], "a", "{\"model\":\"b\"}\n{\"model\":");
    qs_log_reader_poll(&rd);
    assert_int_equal(next_model(&rd, m, sizeof m), 1);
    assert_string_equal(m, "b");
    assert_int_equal(next_model(&rd, m, sizeof m), 0); /* half a line: wait */
    write_file(files[0], "a", "\"c\"}\n");
    qs_log_reader_poll(&rd);
    assert_int_equal(next_model(&rd, m, sizeof m), 1);
    assert_string_equal(m, "c");

    /* truncated in place, then written again (shorter than what was read) */
    write_file(files[0], "w", "{\"model\":\"d\"}\n");
    qs_log_reader_poll(&rd);
    assert_int_equal(next_model(&rd, m, sizeof m), 1);
    assert_string_equal(m, "d");
    assert_non_null(strstr(warnings(fx), "file truncated"));

    /* rotated: the old file gets one more line after the rename, the new one has its own */
    assert_int_equal(rename(files[0], path(fx, "live.jsonl.1")), 0);
    write_file(path(fx, "live.jsonl.1"), "a", "{\"model\":\"e\"}\n");
    write_file(files[0], "w", "{\"model\":\"f\"}\n");
    qs_log_reader_poll(&rd);
    assert_int_equal(next_model(&rd, m, sizeof m), 1);
    assert_string_equal(m, "e");
    assert_int_equal(next_model(&rd, m, sizeof m), 1);
    assert_string_equal(m, "f");
    assert_int_equal(next_model(&rd, m, sizeof m), 0);
    assert_int_equal(rd.bad, 0);
    qs_log_reader_free(&rd);
}

/* Following a file that is not there yet: said once, read when it appears. */
static void test_follow_missing(void **state)
{
    struct fx *fx = *state;
    struct qs_log_reader rd;
    char m[sizeof((struct qs_log_rec *)0)->model];
    const char *files[] = {path(fx, "later.jsonl")};

    start(fx, &rd, files, 1, 0);
    rd.follow = 1;
    assert_int_equal(next_model(&rd, m, sizeof m), 0);
    qs_log_reader_poll(&rd);
    assert_int_equal(next_model(&rd, m, sizeof m), 0);
    assert_int_equal(count_lines(warnings(fx)), 1);
    assert_non_null(strstr(warnings(fx), "later.jsonl: No such file or directory; waiting for it"));
    assert_int_equal(rd.nopen, 0); /* not a failure while it may yet appear */
    write_file(files[0], "w", "{\"model\":\"a\"}\n");
    qs_log_reader_poll(&rd);
    assert_int_equal(next_model(&rd, m, sizeof m), 1);
    assert_string_equal(m, "a");
    qs_log_reader_free(&rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_skips_with_one_warning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_line_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_and_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_missing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
