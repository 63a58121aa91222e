/* test_audit.c - unit tests for shim/audit.c: the JSONL record format (SPEC §7), opening
 * the log (directories 0700, file 0600), whole-line appends from many writers, and the
 * rotating log the shim writes through (size rotation across processes, one diagnostic
 * for a log that cannot be written).
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* ==== The rotating log ==== */

/* Lines in <path>, or -1 if it does not exist. */
static int count_lines(const char *path)
{
    FILE *fp = fopen(path, "r");
    int c, n = 0;
    if (fp == NULL)
        return -1;
    while ((c = getc(fp)) != EOF)
        n += c == '\n';
    fclose(fp);
    return n;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void numbered(const struct tmp *t, int n, char *out, size_t len)
{
    snprintf(out, len, "%s.%d", t->path, n);
}

/* A 100-byte line "SEQ xxx...\n" (SEQ zero-padded to 6). */
static void hundred(char line[100], int seq)
{
    memset(line, 'x', 100);
    char head[8];
    snprintf(head, sizeof head, "%06d ", seq);
    memcpy(line, head, 7);
    line[99] = '\n';
}

/* The sequence numbers in <path>, in file order, into seqs[] (at most max); how many. */
static int read_seqs(const char *path, int *seqs, int max)
{
    FILE *fp = fopen(path, "r");
    char line[256];
    int n = 0;
    if (fp == NULL)
        return -1;
    while (n < max && fgets(line, sizeof line, fp) != NULL)
        seqs[n++] = atoi(line);
    fclose(fp);
    return n;
}

static void test_log_creates_private(void **state)
{
    struct tmp *t = *state;
    char dir[128];

    /* Assumption: a log made under a wide umask still gets directories 0700 and a file
     * 0600 (SPEC §7: the log is the user's own), and holds the record. */
    mode_t old = umask(0);
    snprintf(t->path, sizeof t->path, "%s/xdg/qshim/audit.jsonl", t->dir);
    struct qs_audit *a = qs_audit_new(t->path, 0, 0);
    assert_non_null(a);
    assert_false(exists(t->path)); /* nothing is made before the first record */
    assert_int_equal(qs_audit_log(a, "one\n", 4), 0);
    umask(old);
    snprintf(dir, sizeof dir, "%s/xdg", t->dir);
    assert_mode(dir, S_IFDIR, 0700);
    snprintf(dir, sizeof dir, "%s/xdg/qshim", t->dir);
    assert_mode(dir, S_IFDIR, 0700);
    assert_mode(t->path, S_IFREG, 0600);
    assert_int_equal(count_lines(t->path), 1);
    qs_audit_free(a);
}

static void test_log_rotates_keeping_keep(void **state)
{
    struct tmp *t = *state;
    char name[160], line[100];
    int seqs[16];

    snprintf(t->path, sizeof t->path, "%s/audit.jsonl", t->dir);
    /* Assumption: with max_bytes 300 a file takes three 100-byte records; the fourth
     * renames it to .1 (.1 to .2), and keep 2 leaves at most two rotated files. After 20
     * records: the log holds 18-19, .1 holds 15-17, .2 holds 12-14, and there is no .3. */
    struct qs_audit *a = qs_audit_new(t->path, 300, 2);
    assert_non_null(a);
    for (int i = 0; i < 20; i++) {
        hundred(line, i);
        assert_int_equal(qs_audit_log(a, line, sizeof line), 0);
        assert_true(file_size(t->path) <= 300);
    }
    qs_audit_free(a);
    assert_int_equal(read_seqs(t->path, seqs, 16), 2);
    assert_int_equal(seqs[0], 18);
    assert_int_equal(seqs[1], 19);
    numbered(t, 1, name, sizeof name);
    assert_int_equal(read_seqs(name, seqs, 16), 3);
    assert_int_equal(seqs[0], 15);
    assert_int_equal(seqs[2], 17);
    assert_mode(name, S_IFREG, 0600);
    numbered(t, 2, name, sizeof name);
    assert_int_equal(read_seqs(name, seqs, 16), 3);
    assert_int_equal(seqs[0], 12);
    assert_int_equal(seqs[2], 14);
    numbered(t, 3, name, sizeof name);
    assert_false(exists(name));
}

static void test_log_rotates_keep0_and_big_records(void **state)
{
    struct tmp *t = *state;
    char name[160], line[100], big[500];

    snprintf(t->path, sizeof t->path, "%s/audit.jsonl", t->dir);
    /* Assumption: keep 0 removes the full file instead of renaming it. */
    struct qs_audit *a = qs_audit_new(t->path, 250, 0);
    for (int i = 0; i < 5; i++) {
        hundred(line, i);
        assert_int_equal(qs_audit_log(a, line, sizeof line), 0);
    }
    assert_int_equal(count_lines(t->path), 1); /* 0-1, 2-3, then 4 */
    numbered(t, 1, name, sizeof name);
    assert_false(exists(name));
    /* Assumption: a record longer than max_bytes is written alone into an empty file,
     * not dropped, and the next record starts a new file. */
    memset(big, 'b', sizeof big);
    big[sizeof big - 1] = '\n';
    assert_int_equal(qs_audit_log(a, big, sizeof big), 0);
    assert_int_equal(file_size(t->path), (off_t)sizeof big);
    assert_int_equal(qs_audit_log(a, line, sizeof line), 0);
    assert_int_equal(file_size(t->path), 100);
    qs_audit_free(a);
}

static void test_log_follows_rotation_by_others(void **state)
{
    struct tmp *t = *state;
    char name[160], line[100];
    int seqs[8];

    snprintf(t->path, sizeof t->path, "%s/audit.jsonl", t->dir);
    /* Two logs on one path stand for two processes. Assumption: when B rotates, A's next
     * record goes into the new file (A notices and reopens), not into .1 behind it. */
    struct qs_audit *a = qs_audit_new(t->path, 250, 3), *b = qs_audit_new(t->path, 250, 3);
    hundred(line, 1);
    assert_int_equal(qs_audit_log(a, line, sizeof line), 0);
    hundred(line, 2);
    assert_int_equal(qs_audit_log(b, line, sizeof line), 0);
    hundred(line, 3);
    assert_int_equal(qs_audit_log(b, line, sizeof line), 0); /* B rotates: 1, 2 -> .1 */
    hundred(line, 4);
    assert_int_equal(qs_audit_log(a, line, sizeof line), 0);
    assert_int_equal(read_seqs(t->path, seqs, 8), 2);
    assert_int_equal(seqs[0], 3);
    assert_int_equal(seqs[1], 4);
    numbered(t, 1, name, sizeof name);
    assert_int_equal(read_seqs(name, seqs, 8), 2);
    /* Assumption: a log removed from under the writers is made again by the next record. */
    assert_int_equal(unlink(t->path), 0);
    hundred(line, 5);
    assert_int_equal(qs_audit_log(a, line, sizeof line), 0);
    assert_int_equal(read_seqs(t->path, seqs, 8), 1);
    assert_int_equal(seqs[0], 5);
    qs_audit_free(a);
    qs_audit_free(b);
}

enum { PROC_LINES = 400 };

/* One forked writer: PROC_LINES records "ID SEQ ...", each a little over 60 bytes. */
static void proc_writer(struct qs_audit *a, int id)
{
    char line[128];
    int bad = 0;
    for (int i = 0; i < PROC_LINES; i++) {
        int n = snprintf(line, sizeof line, "%d %06d %0*d\n", id, i, 40 + i % 20, 0);
        bad += qs_audit_log(a, line, (size_t)n) != 0;
    }
    qs_audit_free(a);
    _exit(bad == 0 ? 0 : 1);
}

static void test_log_two_processes_rotating(void **state)
{
    struct tmp *t = *state;
    static int seen[2][PROC_LINES];
    char name[160], line[256];
    pid_t pid[2];
    int total = 0, files = 0;

    snprintf(t->path, sizeof t->path, "%s/audit.jsonl", t->dir);
    memset(seen, 0, sizeof seen);
    /* Two processes, one with the log it inherited across fork and one with its own,
     * rotate a 1000-byte log about 50 times between them. Assumption: keep (1000, the
     * config's maximum) being more than the rotations, no record is lost and none is
     * torn: the lines across the log and its rotated files are exactly the records. */
    struct qs_audit *a = qs_audit_new(t->path, 1000, 1000);
    for (int k = 0; k < 2; k++) {
        pid[k] = fork();
        assert_true(pid[k] >= 0);
        if (pid[k] == 0) {
            if (k == 0) {
                qs_audit_atfork_child(a);
                proc_writer(a, 0);
            }
            qs_audit_free(a);
            proc_writer(qs_audit_new(t->path, 1000, 1000), 1);
        }
    }
    for (int k = 0; k < 2; k++) {
        int st;
        assert_int_equal(waitpid(pid[k], &st, 0), pid[k]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    qs_audit_free(a);
    for (int n = 0; n <= 1000; n++) {
        if (n == 0)
            snprintf(name, sizeof name, "%s", t->path);
        else
            numbered(t, n, name, sizeof name);
        FILE *fp = fopen(name, "r");
        if (fp == NULL)
            continue;
        files++;
        while (fgets(line, sizeof line, fp) != NULL) {
            int id = -1, seq = -1;
            size_t len = strlen(line);
            assert_true(len > 40 && line[len - 1] == '\n');
            assert_int_equal(sscanf(line, "%d %d", &id, &seq), 2);
            assert_in_range(id, 0, 1);
            assert_in_range(seq, 0, PROC_LINES - 1);
            seen[id][seq]++;
            total++;
        }
        fclose(fp);
    }
    assert_int_equal(total, 2 * PROC_LINES);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < PROC_LINES; i++)
            assert_int_equal(seen[k][i], 1);
    assert_true(files > 20); /* it did rotate, many times */
}

/* Runs <n> records into a log on <path> with stderr captured; returns the lines it got and
 * how many records were written. */
static int diag_lines(struct tmp *t, const char *path, long max_bytes, int n, int *written, char *first,
                      size_t first_len)
{
    char cap[160];
    snprintf(cap, sizeof cap, "%s/stderr", t->dir);
    int fd = open(cap, O_RDWR | O_CREAT | O_TRUNC, 0600), saved = dup(2);
    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, 2);
    struct qs_audit *a = qs_audit_new(path, max_bytes, 1);
    *written = 0;
    for (int i = 0; i < n; i++)
        *written += qs_audit_log(a, "record\n", 7) == 0;
    qs_audit_free(a);
    dup2(saved, 2);
    close(saved);
    close(fd);
    FILE *fp = fopen(cap, "r");
    first[0] = '\0';
    if (fgets(first, (int)first_len, fp) == NULL)
        first[0] = '\0';
    fclose(fp);
    return count_lines(cap);
}

static void test_log_unwritable_one_diagnostic(void **state)
{
    struct tmp *t = *state;
    char first[512];
    int written;

    snprintf(t->path, sizeof t->path, "%s/file", t->dir);
    int fd = open(t->path, O_WRONLY | O_CREAT, 0600);
    close(fd);
    snprintf(t->path, sizeof t->path, "%s/file/qshim/audit.jsonl", t->dir);
    /* Assumption (SPEC §2 fail open): a log that cannot be made says so once, on stderr,
     * whatever number of records follow, and every record just fails. (Not a permission
     * test: the tests may run as root.) */
    assert_int_equal(diag_lines(t, t->path, 0, 5, &written, first, sizeof first), 1);
    assert_int_equal(written, 0);
    assert_non_null(strstr(first, "cannot open"));
    assert_non_null(strstr(first, t->path));
    /* Assumption: a log whose writes fail (a full disk) also says so once. */
    assert_int_equal(diag_lines(t, "/dev/full", 0, 5, &written, first, sizeof first), 1);
    assert_int_equal(written, 0);
    assert_non_null(strstr(first, "cannot write"));
}

static void test_log_fifo_never_hangs_or_kills(void **state)
{
    struct tmp *t = *state;
    char first[512];
    int written;

    snprintf(t->path, sizeof t->path, "%s/fifo", t->dir);
    assert_int_equal(mkfifo(t->path, 0600), 0);
    /* Assumption: a FIFO nobody reads fails at once (no blocking open), with one line. */
    assert_int_equal(diag_lines(t, t->path, 1000, 3, &written, first, sizeof first), 1);
    assert_int_equal(written, 0);
    /* Assumption: a reader that goes away makes the write fail with EPIPE; the process
     * is not killed by SIGPIPE, and no SIGPIPE is left pending for it. */
    int rd = open(t->path, O_RDONLY | O_NONBLOCK);
    assert_true(rd >= 0);
    struct qs_audit *a = qs_audit_new(t->path, 1000, 1);
    assert_int_equal(qs_audit_log(a, "x\n", 2), 0);
    close(rd);
    int saved = dup(2), null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    int rc = qs_audit_log(a, "y\n", 2);
    dup2(saved, 2);
    close(saved);
    close(null);
    assert_int_equal(rc, -1);
    sigset_t pending;
    sigpending(&pending);
    assert_false(sigismember(&pending, SIGPIPE));
    qs_audit_free(a);
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
        cmocka_unit_test_setup_teardown(test_log_creates_private, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_log_rotates_keeping_keep, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_log_rotates_keep0_and_big_records, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_log_follows_rotation_by_others, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_log_two_processes_rotating, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_log_unwritable_one_diagnostic, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_log_fifo_never_hangs_or_kills, tmp_setup, tmp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
