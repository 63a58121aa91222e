/* test_log_rec.c - unit tests for tools/log_rec.c: audit records read back.
 *
 * The lines come from shim/audit.c's own formatter wherever possible, so that a change
 * of the written format that the reader does not follow fails here. Every prefix of a
 * record is a truncated record, never a crash or a wrong record.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "log_rec.h"

#define WALL_MS 1795457045123ull /* 2026-11-23T18:04:05.123Z */

/* The example record of SPEC section 7, on one line. */
static const char spec_line[] =
    "{\"ts\":\"2026-11-23T18:04:05.123Z\",\"pid\":4242,\"prog\":\"python3\",\"event\":\"request\","
    "\"host\":\"dashscope.aliyuncs.com\",\"region\":\"cn-beijing\",\"method\":\"POST\","
    "\"path\":\"/compatible-mode/v1/chat/completions\",\"model\":\"qwen-plus\",\"stream\":false,"
    "\"status\":200,\"attempts\":2,\"paced_ms\":120,\"retry_ms\":1400,\"latency_ms\":2310,\"est_tokens\":812,"
    "\"input_tokens\":640,\"output_tokens\":151,\"code\":null,\"key\":\"3fa2c1d9\"}";

/* The record <r> as the shim holds it before writing (unknown back to NULL and -1). */
static struct qs_audit_rec to_audit(const struct qs_log_rec *r)
{
#define S(f) (r->f[0] ? r->f : NULL)
    struct qs_audit_rec a = {
        .ts_ms = (uint64_t)r->ts_ms,
        .pid = (int)r->pid,
        .prog = S(prog),
        .event = S(event),
        .host = S(host),
        .region = S(region),
        .method = S(method),
        .path = S(path),
        .model = S(model),
        .stream = r->stream == 1,
        .status = r->status,
        .attempts = (int)r->attempts,
        .paced_ms = r->paced_ms,
        .retry_ms = r->retry_ms,
        .latency_ms = r->latency_ms,
        .est_tokens = r->est_tokens,
        .input_tokens = r->input_tokens,
        .output_tokens = r->output_tokens,
        .code = S(code),
        .key = S(key),
        .reason = S(reason),
    };
#undef S
    return a;
}

/* Formats <a> as the shim does and parses it back; the '\n' is left off as the reader does. */
static int round_trip(const struct qs_audit_rec *a, struct qs_log_rec *r, char *line, size_t *len)
{
    *len = qs_audit_format(a, line, 2048);
    assert_true(*len > 1);
    assert_int_equal(line[*len - 1], '\n');
    (*len)--;
    return qs_log_rec_parse(line, *len, r);
}

/* The SPEC example reads field by field; written again by shim/audit.c it is the same
 * line byte for byte, so reader and writer agree on every field. */
static void test_spec_record(void **state)
{
    char line[2048];
    size_t len;
    struct qs_log_rec r, back;
    (void)state;

    assert_int_equal(qs_log_rec_parse(spec_line, strlen(spec_line), &r), QS_LOG_OK);
    assert_int_equal(r.ts_ms, (int64_t)WALL_MS);
    assert_int_equal(r.pid, 4242);
    assert_string_equal(r.prog, "python3");
    assert_string_equal(r.event, "request");
    assert_string_equal(r.host, "dashscope.aliyuncs.com");
    assert_string_equal(r.region, "cn-beijing");
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.path, "/compatible-mode/v1/chat/completions");
    assert_string_equal(r.model, "qwen-plus");
    assert_int_equal(r.stream, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.attempts, 2);
    assert_int_equal(r.paced_ms, 120);
    assert_int_equal(r.retry_ms, 1400);
    assert_int_equal(r.latency_ms, 2310);
    assert_int_equal(r.est_tokens, 812);
    assert_int_equal(r.input_tokens, 640);
    assert_int_equal(r.output_tokens, 151);
    assert_string_equal(r.code, "");
    assert_string_equal(r.key, "3fa2c1d9");
    assert_string_equal(r.reason, "");
    assert_int_equal(qs_log_rec_tokens(&r), 640 + 151);
    assert_int_equal(qs_log_rec_wait_ms(&r), 120 + 1400);
    assert_true(qs_log_rec_ok(&r));
    assert_false(qs_log_rec_throttle_passed(&r));

    struct qs_audit_rec a = to_audit(&r);
    assert_int_equal(round_trip(&a, &back, line, &len), QS_LOG_OK);
    assert_int_equal(len, strlen(spec_line));
    assert_memory_equal(line, spec_line, len);
    assert_memory_equal(&back, &r, sizeof r);
}

/* The SPEC example, parsed: the start of the records below. */
static struct qs_audit_rec spec_rec(struct qs_log_rec *keep)
{
    assert_int_equal(qs_log_rec_parse(spec_line, strlen(spec_line), keep), QS_LOG_OK);
    return to_audit(keep);
}

/* What the shim writes as null reads as unknown; the optional reason is read when there. */
static void test_nulls(void **state)
{
    struct qs_audit_rec a = {.ts_ms = WALL_MS,
                             .pid = 7,
                             .prog = "curl",
                             .event = "passthrough",
                             .stream = 1,
                             .attempts = -1,
                             .paced_ms = -1,
                             .retry_ms = -1,
                             .latency_ms = -1,
                             .est_tokens = -1,
                             .input_tokens = -1,
                             .output_tokens = -1,
                             .reason = "the server chose HTTP/2"};
    char line[2048];
    size_t len;
    struct qs_log_rec r;
    (void)state;

    assert_int_equal(round_trip(&a, &r, line, &len), QS_LOG_OK);
    assert_non_null(strstr(line, "\"status\":null")); /* the premise */
    assert_string_equal(r.model, "");
    assert_string_equal(r.host, "");
    assert_int_equal(r.stream, 1);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.attempts, -1);
    assert_int_equal(r.paced_ms, -1);
    assert_int_equal(r.input_tokens, -1);
    assert_string_equal(r.reason, "the server chose HTTP/2");
    assert_int_equal(qs_log_rec_tokens(&r), 0);
    assert_int_equal(qs_log_rec_wait_ms(&r), 0);
    assert_false(qs_log_rec_ok(&r));
}

/* Fields may be absent altogether; keys the format does not have and nested values are
 * passed over; a ts that is no time leaves the rest of the record. */
static void test_sparse_and_foreign(void **state)
{
    struct qs_log_rec r;
    const char *l1 = "{\"event\":\"request\",\"model\":\"m\"}";
    const char *l2 =
        "{\"usage\":{\"input_tokens\":5},\"model\":\"m2\",\"extra\":[1,{\"a\":2}],\"status\":429}";
    const char *l3 = "{\"ts\":\"yesterday\",\"pid\":-3,\"status\":1e3,\"est_tokens\":12.6,\"stream\":null}";
    const char *l4 = "  {\"model\":\"crlf\"} \r";
    (void)state;

    assert_int_equal(qs_log_rec_parse(l1, strlen(l1), &r), QS_LOG_OK);
    assert_int_equal(r.ts_ms, -1);
    assert_int_equal(r.pid, -1);
    assert_int_equal(r.stream, -1);
    assert_string_equal(r.model, "m");
    assert_int_equal(qs_log_rec_parse(l2, strlen(l2), &r), QS_LOG_OK);
    assert_string_equal(r.model, "m2");
    assert_int_equal(r.input_tokens, -1); /* only top-level fields count */
    assert_int_equal(r.status, 429);
    assert_int_equal(qs_log_rec_parse(l3, strlen(l3), &r), QS_LOG_OK);
    assert_int_equal(r.ts_ms, -1);
    assert_int_equal(r.pid, -1);        /* negative: unknown */
    assert_int_equal(r.status, 0);      /* 1000 is no HTTP status */
    assert_int_equal(r.est_tokens, 13); /* rounded */
    assert_int_equal(r.stream, -1);
    assert_int_equal(qs_log_rec_parse(l4, strlen(l4), &r), QS_LOG_OK);
    assert_string_equal(r.model, "crlf");
}

/* Long strings are cut to the field, never past it. */
static void test_long_strings(void **state)
{
    char line[1400], reason[600];
    struct qs_log_rec r;
    (void)state;

    memset(reason, 'r', sizeof reason - 1);
    reason[sizeof reason - 1] = '\0';
    snprintf(line, sizeof line, "{\"reason\":\"%s\",\"prog\":\"%s\"}", reason, reason);
    assert_int_equal(qs_log_rec_parse(line, strlen(line), &r), QS_LOG_OK);
    assert_int_equal(strlen(r.reason), sizeof r.reason - 1);
    assert_int_equal(strlen(r.prog), sizeof r.prog - 1);
}

static void test_blank_and_malformed(void **state)
{
    static const char *const bad[] = {
        "x",
        "42",
        "\"str\"",
        "[1,2]",
        "{\"a\":}",
        "{\"a\":1}x",
        "{\"a\":1}{\"b\":2}",
        "{\"a\" 1}",
        "{,}",
        "null",
        "{\"a\":tru}",
        "{\"ts\":\"2026-11-23T18:04:05.123Z\",\"event\":\"request\" \"model\":\"m\"}",
    };
    struct qs_log_rec r;
    (void)state;

    assert_int_equal(qs_log_rec_parse("", 0, &r), QS_LOG_BLANK);
    assert_int_equal(qs_log_rec_parse("  \t\r", 4, &r), QS_LOG_BLANK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (qs_log_rec_parse(bad[i], strlen(bad[i]), &r) != QS_LOG_EBAD)
            fail_msg("'%s' was not malformed", bad[i]);
}

/* Every proper prefix of a record (a writer that died mid-line) is a truncated record. */
static void test_every_prefix_truncated(void **state)
{
    struct qs_log_rec keep;
    struct qs_audit_rec a = spec_rec(&keep);
    char line[2048];
    size_t len;
    struct qs_log_rec r;
    (void)state;

    a.code = "Throttling.RateQuota";
    a.reason = "quote \" and backslash \\ and \x01";
    assert_int_equal(round_trip(&a, &r, line, &len), QS_LOG_OK);
    assert_string_equal(r.reason, a.reason);
    for (size_t n = 1; n < len; n++) {
        int rc = qs_log_rec_parse(line, n, &r);
        if (rc != QS_LOG_EPARTIAL)
            fail_msg("prefix of %zu bytes gave %d", n, rc);
    }
}

/* Throttles passed on: the final answer of a request was one the retry policy calls a
 * throttle (or any 429); a hidden throttle (event "throttled") is not passed on. */
static void test_throttle_passed(void **state)
{
    struct qs_log_rec r;
    (void)state;

    memset(&r, 0, sizeof r);
    strcpy(r.event, "request");
    r.status = 429;
    assert_true(qs_log_rec_throttle_passed(&r));
    strcpy(r.code, "SomethingElse");
    assert_true(qs_log_rec_throttle_passed(&r)); /* a 429 the program saw, whatever its code */
    r.status = 503;
    assert_false(qs_log_rec_throttle_passed(&r));
    strcpy(r.code, "ModelServingError");
    assert_true(qs_log_rec_throttle_passed(&r));
    r.status = 400;
    assert_false(qs_log_rec_throttle_passed(&r));
    r.status = 429;
    strcpy(r.event, "throttled");
    assert_false(qs_log_rec_throttle_passed(&r));
}

/* Tokens: usage when the answer had it (either half), else the estimate. */
static void test_tokens(void **state)
{
    struct qs_log_rec r;
    (void)state;

    memset(&r, 0, sizeof r);
    r.est_tokens = 50;
    r.input_tokens = r.output_tokens = -1;
    assert_int_equal(qs_log_rec_tokens(&r), 50);
    r.input_tokens = 7;
    assert_int_equal(qs_log_rec_tokens(&r), 7);
    r.output_tokens = 3;
    assert_int_equal(qs_log_rec_tokens(&r), 10);
    r.input_tokens = r.output_tokens = r.est_tokens = -1;
    assert_int_equal(qs_log_rec_tokens(&r), 0);
}

static void test_describe(void **state)
{
    struct qs_log_rec keep;
    struct qs_audit_rec a = spec_rec(&keep);
    char line[2048], out[512];
    size_t len;
    struct qs_log_rec r;
    (void)state;

    assert_int_equal(round_trip(&a, &r, line, &len), QS_LOG_OK);
    qs_log_rec_describe(&r, out, sizeof out);
    assert_string_equal(out, "2026-11-23 18:04:05.123 python3[4242]      request     qwen-plus        200 x2 "
                             "wait 120+1400ms tok 640+151 2310ms");
    a.event = "throttled";
    a.status = 429;
    a.code = "Throttling";
    a.input_tokens = a.output_tokens = -1;
    a.reason = "why";
    assert_int_equal(round_trip(&a, &r, line, &len), QS_LOG_OK);
    qs_log_rec_describe(&r, out, sizeof out);
    assert_string_equal(out, "2026-11-23 18:04:05.123 python3[4242]      throttled   qwen-plus        429 x2 "
                             "wait 120+1400ms tok ~812 2310ms code=Throttling (why)");
    /* nothing known at all */
    assert_int_equal(qs_log_rec_parse("{}", 2, &r), QS_LOG_OK);
    qs_log_rec_describe(&r, out, sizeof out);
    assert_string_equal(out, "-                       ?                  ?           -                  -");
    /* a short buffer is cut, terminated */
    qs_log_rec_describe(&r, out, 8);
    assert_int_equal(strlen(out), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_record),
        cmocka_unit_test(test_nulls),
        cmocka_unit_test(test_sparse_and_foreign),
        cmocka_unit_test(test_long_strings),
        cmocka_unit_test(test_blank_and_malformed),
        cmocka_unit_test(test_every_prefix_truncated),
        cmocka_unit_test(test_throttle_passed),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_describe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
