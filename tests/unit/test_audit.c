/* test_audit.c - unit tests for shim/audit.c: the JSONL record format (SPEC §7), opening
 * the log (directories 0700, file 0600) and whole-line appends from many writers.
 *
 * Formatted lines are parsed back with the shim's own JSON scanner, so a record that the
 * scanner (and qshim-log, which uses it) cannot read fails here.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "json.h"

#define WALL_MS 1795457045123ull /* 2026-11-23T18:04:05.123Z */

/* The record of the SPEC §7 example. */
static const struct qs_audit_rec spec_rec = {
    .ts_ms = WALL_MS,
    .pid = 4242,
    .prog = "python3",
    .event = "request",
    .host = "dashscope.aliyuncs.com",
    .region = "cn-beijing",
    .method = "POST",
    .path = "/compatible-mode/v1/chat/completions",
    .model = "qwen-plus",
    .stream = 0,
    .status = 200,
    .attempts = 2,
    .paced_ms = 120,
    .retry_ms = 1400,
    .latency_ms = 2310,
    .est_tokens = 812,
    .input_tokens = 640,
    .output_tokens = 151,
    .code = NULL,
    .key = "3fa2c1d9",
};

/* ==== Parsing a line back ==== */

struct field {
    char key[QS_JSON_KEY_MAX + 1];
    enum qs_json_type type;
    char val[QS_JSON_STR_MAX + 1];
};

struct fields {
    struct field f[32];
    int n;
    int bad; /* a value that was not a top-level member */
};

static void collect(void *ctx, const struct qs_json_value *v)
{
    struct fields *fs = ctx;
    if (v->depth != 1 || fs->n == (int)(sizeof fs->f / sizeof fs->f[0])) {
        fs->bad = 1;
        return;
    }
    struct field *f = &fs->f[fs->n++];
    snprintf(f->key, sizeof f->key, "%s", v->path[0]);
    f->type = v->type;
    memcpy(f->val, v->val, v->len);
    f->val[v->len] = '\0';
}

/* Parses one formatted line: a single JSON object of scalars, then exactly one '\n' at
 * its end. Returns 0, or -1 if the line is not that (no cmocka calls: threads use it). */
static int parse_line(const char *line, size_t n, struct fields *fs)
{
    struct qs_json j;
    memset(&j, 0, sizeof j);
    memset(fs, 0, sizeof *fs);
    if (n == 0 || line[n - 1] != '\n' || memchr(line, '\n', n - 1) != NULL || memchr(line, '\0', n) != NULL)
        return -1;
    long used = qs_json_feed(&j, line, n, collect, fs);
    return used == (long)n && j.done && !fs->bad ? 0 : -1;
}

static const struct field *field(const struct fields *fs, const char *key)
{
    for (int i = 0; i < fs->n; i++)
        if (strcmp(fs->f[i].key, key) == 0)
            return &fs->f[i];
    return NULL;
}

/* Checks member <key>: its type and, for strings and numbers, its text. */
static void check_field(const struct fields *fs, const char *key, enum qs_json_type type, const char *val)
{
    const struct field *f = field(fs, key);
    if (f == NULL)
        fail_msg("no \"%s\"", key);
    if (f->type != type || (val != NULL && strcmp(f->val, val) != 0))
        fail_msg("\"%s\": type %d \"%s\", want type %d \"%s\"", key, (int)f->type, f->val, (int)type,
                 val ? val : "");
}

/* Formats <r>, checks the result is one parseable line, and parses it into <fs>. */
static void format_parse(const struct qs_audit_rec *r, struct fields *fs)
{
    char line[4096];
    size_t n = qs_audit_format(r, line, sizeof line);
    assert_true(n > 0);
    assert_int_equal(parse_line(line, n, fs), 0);
}

/* ==== Format ==== */

static void test_format_spec_example(void **state)
{
    static const char want[] =
        "{\"ts\":\"2026-11-23T18:04:05.123Z\",\"pid\":4242,\"prog\":\"python3\",\"event\":\"request\","
        "\"host\":\"dashscope.aliyuncs.com\",\"region\":\"cn-beijing\",\"method\":\"POST\","
        "\"path\":\"/compatible-mode/v1/chat/completions\",\"model\":\"qwen-plus\",\"stream\":false,"
        "\"status\":200,\"attempts\":2,\"paced_ms\":120,\"retry_ms\":1400,\"latency_ms\":2310,\"est_tokens\":"
        "812,"
        "\"input_tokens\":640,\"output_tokens\":151,\"code\":null,\"key\":\"3fa2c1d9\"}\n";
    char line[1024];

    (void)state;
    /* Assumption: the SPEC §7 example record comes out byte for byte as written there. */
    size_t n = qs_audit_format(&spec_rec, line, sizeof line);
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(line, want, n);
}

static void test_format_every_field(void **state)
{
    struct qs_audit_rec r = spec_rec;
    struct fields fs;

    (void)state;
    r.event = "throttled";
    r.stream = 1;
    r.status = 429;
    r.code = "Throttling.RateQuota";
    r.reason = "hidden 429, retried";
    r.path = "/api/v1/services/aigc/text-generation/generation?api_key=secret&x=1";
    r.input_tokens = 0;
    r.est_tokens = 9007199254740993LL;
    /* Assumption: every member is there, once, in SPEC §7 order, with its value and type;
     * the query string is never logged; 0 is a number, not null. */
    format_parse(&r, &fs);
    static const char *const order[] = {
        "ts",         "pid",        "prog",         "event",         "host",     "region",   "method",
        "path",       "model",      "stream",       "status",        "attempts", "paced_ms", "retry_ms",
        "latency_ms", "est_tokens", "input_tokens", "output_tokens", "code",     "key",      "reason"};
    assert_int_equal(fs.n, sizeof order / sizeof order[0]);
    for (int i = 0; i < fs.n; i++)
        assert_string_equal(fs.f[i].key, order[i]);
    check_field(&fs, "ts", QS_JSON_STRING, "2026-11-23T18:04:05.123Z");
    check_field(&fs, "pid", QS_JSON_NUMBER, "4242");
    check_field(&fs, "prog", QS_JSON_STRING, "python3");
    check_field(&fs, "event", QS_JSON_STRING, "throttled");
    check_field(&fs, "host", QS_JSON_STRING, "dashscope.aliyuncs.com");
    check_field(&fs, "region", QS_JSON_STRING, "cn-beijing");
    check_field(&fs, "method", QS_JSON_STRING, "POST");
    check_field(&fs, "path", QS_JSON_STRING, "/api/v1/services/aigc/text-generation/generation");
    check_field(&fs, "model", QS_JSON_STRING, "qwen-plus");
    check_field(&fs, "stream", QS_JSON_TRUE, NULL);
    check_field(&fs, "status", QS_JSON_NUMBER, "429");
    check_field(&fs, "attempts", QS_JSON_NUMBER, "2");
    check_field(&fs, "paced_ms", QS_JSON_NUMBER, "120");
    check_field(&fs, "retry_ms", QS_JSON_NUMBER, "1400");
    check_field(&fs, "latency_ms", QS_JSON_NUMBER, "2310");
    check_field(&fs, "est_tokens", QS_JSON_NUMBER, "9007199254740993");
    check_field(&fs, "input_tokens", QS_JSON_NUMBER, "0");
    check_field(&fs, "output_tokens", QS_JSON_NUMBER, "151");
    check_field(&fs, "code", QS_JSON_STRING, "Throttling.RateQuota");
    check_field(&fs, "key", QS_JSON_STRING, "3fa2c1d9");
    check_field(&fs, "reason", QS_JSON_STRING, "hidden 429, retried");
}

static void test_format_nulls(void **state)
{
    struct qs_audit_rec r = {.ts_ms = 0,
                             .pid = 1,
                             .status = 0,
                             .attempts = -1,
                             .paced_ms = -1,
                             .retry_ms = -5,
                             .latency_ms = -1,
                             .est_tokens = -1,
                             .input_tokens = -1,
                             .output_tokens = INT64_MIN};
    struct fields fs;

    (void)state;
    /* Assumption: NULL strings, negative numbers and status 0 are null; a NULL reason is
     * left out; time 0 is the epoch. */
    format_parse(&r, &fs);
    check_field(&fs, "ts", QS_JSON_STRING, "1970-01-01T00:00:00.000Z");
    static const char *const nulls[] = {
        "prog",       "event",        "host",          "region",   "method",   "path",
        "model",      "status",       "attempts",      "paced_ms", "retry_ms", "latency_ms",
        "est_tokens", "input_tokens", "output_tokens", "code",     "key"};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        check_field(&fs, nulls[i], QS_JSON_NULL, NULL);
    check_field(&fs, "stream", QS_JSON_FALSE, NULL);
    assert_null(field(&fs, "reason"));
}

static void test_format_escapes(void **state)
{
    static const char nasty[] = "a\"b\\c\nd\re\tf\x01g\x1fh/\xe4\xbd\xa0";
    struct qs_audit_rec r = spec_rec;
    struct fields fs;
    char line[1024];

    (void)state;
    r.prog = nasty;
    r.reason = nasty;
    r.model = "\"},\"injected\":\"x";
    /* Assumption: quotes, backslashes and control bytes are escaped so the line stays one
     * JSON object that reads back as the original text; UTF-8 passes as is. */
    size_t n = qs_audit_format(&r, line, sizeof line);
    assert_true(n > 0);
    assert_null(memchr(line, '\r', n));
    assert_null(memchr(line, '\t', n));
    assert_int_equal(parse_line(line, n, &fs), 0);
    check_field(&fs, "prog", QS_JSON_STRING, nasty);
    check_field(&fs, "reason", QS_JSON_STRING, nasty);
    check_field(&fs, "model", QS_JSON_STRING, "\"},\"injected\":\"x");
    assert_null(field(&fs, "injected"));
}

static void test_format_caps(void **state)
{
    char prog[1000], line[4096];
    struct qs_audit_rec r = spec_rec;
    struct fields fs;

    (void)state;
    memset(prog, 'p', sizeof prog - 1);
    prog[sizeof prog - 1] = '\0';
    r.prog = prog;
    r.key = "0123456789abcdef";
    r.path = "?only=query";
    /* Assumption: long strings are cut (prog to 256 bytes, key to its 8 hex digits), and
     * a path that is all query string logs as "". */
    size_t n = qs_audit_format(&r, line, sizeof line);
    assert_true(n > 0);
    const char *p = strstr(line, "\"prog\":\"") + strlen("\"prog\":\"");
    assert_int_equal(strcspn(p, "\""), 256);
    assert_int_equal(parse_line(line, n, &fs), 0);
    check_field(&fs, "key", QS_JSON_STRING, "01234567");
    check_field(&fs, "path", QS_JSON_STRING, "");
}

static void test_format_small_buffer(void **state)
{
    char full[1024], buf[1024];
    struct qs_audit_rec r = spec_rec;

    (void)state;
    r.reason = "a reason";
    size_t n = qs_audit_format(&r, full, sizeof full);
    assert_true(n > 0);
    /* Assumption: every buffer too small for the line gives 0 and nothing is written past
     * its end. */
    for (size_t len = 0; len < n; len++) {
        memset(buf, 'Q', sizeof buf);
        assert_int_equal(qs_audit_format(&r, len ? buf : NULL, len), 0);
        for (size_t i = len; i < sizeof buf; i++)
            assert_int_equal(buf[i], 'Q');
    }
    /* Assumption: with room to spare the line is the same. */
    assert_int_equal(qs_audit_format(&r, buf, n + 1), n);
    assert_memory_equal(buf, full, n);
}

static void test_format_exact_fit(void **state)
{
    char full[1024], buf[1024];

    (void)state;
    size_t n = qs_audit_format(&spec_rec, full, sizeof full);
    assert_true(n > 0);
    /* Assumption (audit.h: "Returns the line's length, or 0 if it does not fit"): a
     * buffer of exactly the line's length holds it; no NUL is written or needed. */
    assert_int_equal(qs_audit_format(&spec_rec, buf, n), n);
    assert_memory_equal(buf, full, n);
}

/* ==== Open and write ==== */

struct tmp {
    char dir[64];
    char path[128];
};

static int tmp_setup(void **state)
{
    struct tmp *t = calloc(1, sizeof *t);
    if (t == NULL)
        return -1;
    snprintf(t->dir, sizeof t->dir, "/tmp/test_audit.XXXXXX");
    if (mkdtemp(t->dir) == NULL)
        return -1;
    *state = t;
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int tmp_teardown(void **state)
{
    struct tmp *t = *state;
    int rc = nftw(t->dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
    free(t);
    return rc;
}

static void assert_mode(const char *path, mode_t type, mode_t perm)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & S_IFMT, type);
    assert_int_equal(st.st_mode & 07777, perm);
}

static void test_open_creates(void **state)
{
    struct tmp *t = *state;
    char dir[128];

    mode_t old = umask(022);
    snprintf(t->path, sizeof t->path, "%s/state/qshim/audit.jsonl", t->dir);
    /* Assumption: missing directories are made 0700 and the file 0600; the descriptor
     * appends and is closed on exec. */
    int fd = qs_audit_open(t->path);
    umask(old);
    assert_true(fd >= 0);
    snprintf(dir, sizeof dir, "%s/state", t->dir);
    assert_mode(dir, S_IFDIR, 0700);
    snprintf(dir, sizeof dir, "%s/state/qshim", t->dir);
    assert_mode(dir, S_IFDIR, 0700);
    assert_mode(t->path, S_IFREG, 0600);
    assert_true(fcntl(fd, F_GETFL) & O_APPEND);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(qs_audit_write(fd, "one\n", 4), 0);
    close(fd);

    /* Assumption: opening an existing log keeps what it holds. */
    fd = qs_audit_open(t->path);
    assert_true(fd >= 0);
    assert_int_equal(qs_audit_write(fd, "two\n", 4), 0);
    close(fd);
    char buf[16] = "";
    FILE *fp = fopen(t->path, "r");
    assert_non_null(fp);
    assert_int_equal(fread(buf, 1, sizeof buf - 1, fp), 8);
    fclose(fp);
    assert_string_equal(buf, "one\ntwo\n");
}

static void test_open_fails(void **state)
{
    struct tmp *t = *state;

    snprintf(t->path, sizeof t->path, "%s/file", t->dir);
    int fd = open(t->path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(t->path, sizeof t->path, "%s/file/sub/audit.jsonl", t->dir);
    /* Assumption: a path that cannot be made fails with -1 and errno set. */
    errno = 0;
    assert_int_equal(qs_audit_open(t->path), -1);
    assert_int_equal(errno, ENOTDIR);
}

static void test_write_failures(void **state)
{
    int p[2];
    char big[6000];

    (void)state;
    /* Assumption: a bad descriptor is -1. */
    assert_int_equal(qs_audit_write(-1, "x\n", 2), -1);
    /* Assumption: a short write (a full non-blocking pipe takes part of a long line) is
     * -1, not success. */
    assert_int_equal(pipe(p), 0);
    fcntl(p[1], F_SETPIPE_SZ, 4096);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    memset(big, 'x', sizeof big);
    int pipe_size = fcntl(p[1], F_GETPIPE_SZ);
    if (pipe_size > 0 && (size_t)pipe_size < sizeof big)
        assert_int_equal(qs_audit_write(p[1], big, sizeof big), -1);
    close(p[0]);
    close(p[1]);
}

enum { WRITERS = 4, LINES = 500 };

struct writer {
    int id;
    int fds[2];
    int errors;
};

/* Writes LINES records tagged (pid = id, attempts = sequence), alternating between two
 * descriptors of the same file. No cmocka calls here: they are not thread-safe. */
static void *writer_main(void *arg)
{
    struct writer *w = arg;
    char reason[200], line[2048];
    memset(reason, 'r', sizeof reason - 1);
    reason[sizeof reason - 1] = '\0';
    for (int i = 0; i < LINES; i++) {
        struct qs_audit_rec r = spec_rec;
        r.pid = w->id;
        r.attempts = i;
        r.reason = reason;
        size_t n = qs_audit_format(&r, line, sizeof line);
        if (n == 0 || qs_audit_write(w->fds[i % 2], line, n) != 0)
            w->errors++;
    }
    return NULL;
}

static void test_concurrent_appends(void **state)
{
    struct tmp *t = *state;
    struct writer w[WRITERS];
    pthread_t th[WRITERS];
    int seen[WRITERS][LINES] = {{0}};

    snprintf(t->path, sizeof t->path, "%s/log/audit.jsonl", t->dir);
    int fd1 = qs_audit_open(t->path), fd2 = qs_audit_open(t->path);
    assert_true(fd1 >= 0 && fd2 >= 0);
    /* Assumption: four threads writing through two descriptors of one file never
     * interleave inside a line: every line parses, and every record is there once. */
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (struct writer){.id = i, .fds = {fd1, fd2}};
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].errors, 0);
    }
    close(fd1);
    close(fd2);

    FILE *fp = fopen(t->path, "r");
    assert_non_null(fp);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lines = 0;
    while ((n = getline(&line, &cap, fp)) > 0) {
        struct fields fs;
        lines++;
        assert_int_equal(parse_line(line, (size_t)n, &fs), 0);
        int id = atoi(field(&fs, "pid")->val), seq = atoi(field(&fs, "attempts")->val);
        assert_in_range(id, 0, WRITERS - 1);
        assert_in_range(seq, 0, LINES - 1);
        seen[id][seq]++;
    }
    free(line);
    fclose(fp);
    assert_int_equal(lines, WRITERS * LINES);
    for (int i = 0; i < WRITERS; i++)
        for (int k = 0; k < LINES; k++)
            assert_int_equal(seen[i][k], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_spec_example),
        cmocka_unit_test(test_format_every_field),
        cmocka_unit_test(test_format_nulls),
        cmocka_unit_test(test_format_escapes),
        cmocka_unit_test(test_format_caps),
        cmocka_unit_test(test_format_small_buffer),
        cmocka_unit_test(test_format_exact_fit),
        cmocka_unit_test_setup_teardown(test_open_creates, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_open_fails, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_write_failures),
        cmocka_unit_test_setup_teardown(test_concurrent_appends, tmp_setup, tmp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
