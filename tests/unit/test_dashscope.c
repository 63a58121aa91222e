/* test_dashscope.c - unit tests for shim/dashscope.c: path families, regions from host
 * names, request and answer facts read through the JSON scanner, token estimates and
 * key fingerprints.
 *
 * Hosts and paths are those of SPEC §3 and research/dashscope-wire.md §1; bodies are the
 * request and answer shapes of dashscope-wire.md §1.4, §3 and §4. Every JSON body is
 * scanned whole and one byte at a time, and both ways must give the same facts.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dashscope.h"
#include "json.h"

/* ==== Path families ==== */

static void check_family(const char *path, enum qs_ds_family want)
{
    enum qs_ds_family got = qs_ds_path_family(path, strlen(path));
    if (got != want)
        fail_msg("%s: family %d, want %d", path, (int)got, (int)want);
}

static void test_path_families(void **state)
{
    (void)state;
    /* Assumption: the four documented prefixes are model calls, with or without a query. */
    check_family("/compatible-mode/v1/chat/completions", QS_DS_COMPAT);
    check_family("/compatible-mode/v1/chat/completions?stream=true", QS_DS_COMPAT);
    check_family("/compatible-mode/v1/embeddings", QS_DS_COMPAT);
    check_family("/compatible-mode/v1/responses", QS_DS_COMPAT);
    check_family("/api/v1/services/aigc/text-generation/generation", QS_DS_NATIVE);
    check_family("/api/v1/services/aigc/multimodal-generation/generation?x=1", QS_DS_NATIVE);
    check_family("/api/v1/services/rerank/text-rerank/text-rerank", QS_DS_NATIVE);
    check_family("/api/v1/tasks/0f5e9c3a", QS_DS_TASKS);
    check_family("/api/v1/tasks/", QS_DS_TASKS);
    check_family("/api/v1/tasks", QS_DS_TASKS);
    check_family("/api/v1/tasks?status=RUNNING", QS_DS_TASKS);
    check_family("/apps/anthropic/v1/messages", QS_DS_ANTHROPIC);

    /* Assumption: prefixes that only look similar, other case, other versions, and the
     * prefix appearing only in the query are not model calls. */
    check_family("/compatible-mode/v10/chat/completions", QS_DS_NONE);
    check_family("/compatible-mode/v1", QS_DS_NONE);
    check_family("/compatible-mode/v2/chat/completions", QS_DS_NONE);
    check_family("/Compatible-Mode/v1/chat/completions", QS_DS_NONE);
    check_family("/api/v1/servicesx/aigc", QS_DS_NONE);
    check_family("/api/v1/services", QS_DS_NONE);
    check_family("/api/v10/services/aigc", QS_DS_NONE);
    check_family("/api/v1/tasksx", QS_DS_NONE);
    check_family("/api/v1/tasks-list", QS_DS_NONE);
    check_family("/apps/anthropicx/v1/messages", QS_DS_NONE);
    check_family("/api/v1/agentstudio", QS_DS_NONE);
    check_family("/v1/other", QS_DS_NONE);
    check_family("/other?/compatible-mode/v1/chat", QS_DS_NONE);
    check_family("compatible-mode/v1/chat/completions", QS_DS_NONE);
    check_family("/", QS_DS_NONE);
    check_family("", QS_DS_NONE);

    /* Assumption: only <len> bytes are looked at (the path is not NUL-terminated on the wire). */
    assert_int_equal(qs_ds_path_family("/compatible-mode/v1/chat", 12), QS_DS_NONE);
    assert_int_equal(qs_ds_path_family("/api/v1/tasksXYZ", 13), QS_DS_TASKS);
}

/* ==== Regions ==== */

static void check_region(const char *host, const char *want)
{
    char out[32] = "untouched";
    int got = qs_ds_region_from_host(host, strlen(host), out, sizeof out);
    if (want == NULL ? got != 0 : got != 1 || strcmp(out, want) != 0)
        fail_msg("%s: %d \"%s\", want %s", host, got, got ? out : "", want ? want : "none");
}

static void test_regions(void **state)
{
    (void)state;
    /* Assumption: every host form of SPEC §3, with a port, a trailing dot or in upper case. */
    check_region("dashscope.aliyuncs.com", "cn-beijing");
    check_region("dashscope.aliyuncs.com:443", "cn-beijing");
    check_region("DASHSCOPE.ALIYUNCS.COM", "cn-beijing");
    check_region("dashscope.aliyuncs.com.", "cn-beijing");
    check_region("dashscope-intl.aliyuncs.com", "intl");
    check_region("Dashscope-Intl.Aliyuncs.Com:443", "intl");
    check_region("dashscope-us.aliyuncs.com", "us");
    check_region("cn-hongkong.dashscope.aliyuncs.com", "cn-hongkong");
    check_region("cn-hongkong.dashscope.aliyuncs.com:443", "cn-hongkong");
    check_region("ws-1a2b.cn-beijing.maas.aliyuncs.com", "cn-beijing");
    check_region("ws-1a2b.ap-southeast-1.maas.aliyuncs.com", "intl");
    check_region("WS-1A2B.AP-SOUTHEAST-1.MAAS.ALIYUNCS.COM:443", "intl");
    check_region("trial.ap-northeast-1.maas.aliyuncs.com", "intl");
    check_region("ws-1a2b.us-east-1.maas.aliyuncs.com", "us");
    check_region("ws-1a2b.eu-central-1.maas.aliyuncs.com", "eu");
    check_region("ws-1a2b.cn-hongkong.maas.aliyuncs.com", "cn-hongkong");

    /* Assumption: hosts that name no region (test hosts, unknown maas regions, other
     * clouds) give none, whatever their port. */
    check_region("localhost", NULL);
    check_region("localhost:8443", NULL);
    check_region("127.0.0.1:443", NULL);
    check_region("ws-1a2b.xx-nowhere-9.maas.aliyuncs.com", NULL);
    check_region("maas.aliyuncs.com", NULL);
    check_region("example.com", NULL);
    check_region("", NULL);

    /* Assumption: only <len> bytes are looked at, and <out> is cut to its size. */
    char out[4];
    assert_int_equal(qs_ds_region_from_host("dashscope-intl.aliyuncs.com/x", 27, out, sizeof out), 1);
    assert_string_equal(out, "int");
}

/* ==== Request facts ==== */

/* Scans <json> whole and then one byte at a time; both must give the same facts, which
 * are returned in <r> (and the scanner's counts in <scan>). */
static void scan_req(const char *json, struct qs_ds_req *r, struct qs_json *scan)
{
    struct qs_ds_req bytewise;
    struct qs_json j;
    size_t n = strlen(json);

    memset(scan, 0, sizeof *scan);
    qs_ds_req_init(r);
    assert_true(qs_json_feed(scan, json, n, qs_ds_req_cb, r) >= 0);
    memset(&j, 0, sizeof j);
    qs_ds_req_init(&bytewise);
    for (size_t i = 0; i < n; i++)
        assert_true(qs_json_feed(&j, json + i, 1, qs_ds_req_cb, &bytewise) >= 0);
    assert_string_equal(bytewise.model, r->model);
    assert_int_equal(bytewise.stream, r->stream);
    assert_int_equal(bytewise.include_usage, r->include_usage);
    assert_int_equal(bytewise.max_tokens, r->max_tokens);
    assert_int_equal(j.text_chars, scan->text_chars);
    assert_int_equal(j.cjk_chars, scan->cjk_chars);
}

struct req_case {
    const char *json;
    const char *model;
    int stream, include_usage;
    int64_t max_tokens;
};

static void test_request_facts(void **state)
{
    static const struct req_case cases[] = {
        /* openai-python puts "model" after the messages; "model" inside them is not it. */
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"model\":\"fake\"}],\"model\":\"qwen-plus\"}",
         "qwen-plus", 0, 0, -1},
        {"{\"model\": \"qwen-max\", \"stream\": true, \"stream_options\": {\"include_usage\": true}, "
         "\"max_tokens\": 512}",
         "qwen-max", 1, 1, 512},
        {"{\"model\":\"qwen-max\",\"stream\":false,\"stream_options\":{\"include_usage\":false}}", "qwen-max",
         0, 0, -1},
        /* native: stream and max_tokens inside "parameters" */
        {"{\"model\":\"qwen-turbo\",\"input\":{\"messages\":[]},\"parameters\":{\"stream\":true,\"max_"
         "tokens\":"
         "64,\"incremental_output\":true}}",
         "qwen-turbo", 1, 0, 64},
        {"{\"model\":\"qwen-turbo\",\"max_output_tokens\":300}", "qwen-turbo", 0, 0, 300},
        {"{\"model\":\"o\",\"max_completion_tokens\":7.0}", "o", 0, 0, 7},
        /* things that are not the facts: nested model/stream, wrong types, negative numbers */
        {"{\"input\":{\"model\":\"x\",\"stream\":true,\"max_tokens\":5},\"model\":42}", "", 0, 0, -1},
        {"{\"model\":\"m\",\"stream\":\"true\",\"max_tokens\":-3}", "m", 0, 0, -1},
        {"{\"model\":\"m\",\"max_tokens\":\"100\"}", "m", 0, 0, -1},
        /* an absurd count is held to 10^15 (converting 1e19 to int64 would be undefined) */
        {"{\"model\":\"m\",\"max_tokens\":1e19}", "m", 0, 0, 1000000000000000},
        {"{\"model\":\"qwen\\u002dplus\"}", "qwen-plus", 0, 0, -1},
        {"{}", "", 0, 0, -1},
    };
    struct qs_ds_req r;
    struct qs_json scan;

    (void)state;
    /* Assumption: the facts come only from the documented places, in any split. */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        scan_req(cases[i].json, &r, &scan);
        if (strcmp(r.model, cases[i].model) != 0 || r.stream != cases[i].stream ||
            r.include_usage != cases[i].include_usage || r.max_tokens != cases[i].max_tokens)
            fail_msg("%s: model \"%s\" stream %d include_usage %d max_tokens %lld", cases[i].json, r.model,
                     r.stream, r.include_usage, (long long)r.max_tokens);
    }
}

static void test_long_model_truncated(void **state)
{
    char json[400], model[300];
    struct qs_ds_req r;
    struct qs_json scan;

    (void)state;
    memset(model, 'm', 200);
    model[200] = '\0';
    snprintf(json, sizeof json, "{\"model\":\"%s\"}", model);
    /* Assumption: a model name longer than the record holds is cut, NUL-terminated. */
    scan_req(json, &r, &scan);
    assert_int_equal(strlen(r.model), QS_DS_MODEL_MAX - 1);
    assert_memory_equal(r.model, model, QS_DS_MODEL_MAX - 1);
}

/* ==== Token estimates ==== */

static void check_estimate(const char *json, uint64_t default_out, uint64_t want)
{
    struct qs_ds_req r;
    struct qs_json scan;

    scan_req(json, &r, &scan);
    uint64_t got = qs_ds_estimate_tokens(&scan, &r, default_out);
    if (got != want)
        fail_msg("%s (default %llu): %llu tokens, want %llu", json, (unsigned long long)default_out,
                 (unsigned long long)got, (unsigned long long)want);
}

static void test_token_estimate(void **state)
{
    (void)state;
    /* Assumption: one token per CJK character, four other characters per token rounded
     * up, over string values only (keys are not counted), plus max_tokens, or the
     * default when the request names none. */
    check_estimate("{\"messages\":[{\"content\":\"abcdefgh\"}]}", 0, 2);
    check_estimate("{\"messages\":[{\"content\":\"abcdefghi\"}]}", 0, 3);
    check_estimate("{\"messages\":[{\"content\":\"\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c\"}]}", 0,
                   4); /* 你好世界 */
    check_estimate("{\"messages\":[{\"content\":\"\xe4\xbd\xa0\xe5\xa5\xbd ab\"}]}", 0, 2 + 1);
    check_estimate("{\"messages\":[{\"content\":\"\\u4f60\\u597d\"}]}", 0, 2);
    check_estimate("{\"messages\":[{\"content\":\"\xe3\x81\x82\xea\xb0\x80\"}]}", 0, 2); /* あ가 */
    check_estimate("{\"messages\":[{\"content\":\"abcd\"}],\"max_tokens\":100}", 0, 101);
    check_estimate("{\"messages\":[{\"content\":\"abcd\"}]}", 1000, 1001);
    check_estimate("{\"messages\":[{\"content\":\"abcd\"}],\"max_tokens\":0}", 1000, 1);
    check_estimate("{}", 0, 0);
}

/* ==== Answer facts ==== */

struct resp_case {
    const char *json;
    int64_t input, output, total;
    const char *code;
};

static void test_response_facts(void **state)
{
    static const struct resp_case cases[] = {
        /* native */
        {"{\"output\":{\"text\":\"hi\"},\"usage\":{\"input_tokens\":26,\"output_tokens\":66,\"total_tokens\":"
         "92,"
         "\"prompt_tokens_details\":{\"cached_tokens\":5}},\"request_id\":\"r\"}",
         26, 66, 92, ""},
        {"{\"output\":{},\"usage\":{\"input_tokens\":3,\"output_tokens\":4,\"image_tokens\":9}}", 3, 4, -1,
         ""},
        /* compatible */
        {"{\"choices\":[],\"usage\":{\"prompt_tokens\":22,\"completion_tokens\":17,\"total_tokens\":39}}", 22,
         17, 39, ""},
        {"{\"choices\":[{\"delta\":{\"content\":\"\"}}],\"usage\":null}", -1, -1, -1, ""},
        {"{\"data\":[],\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}", 8, -1, 8, ""},
        /* errors: native "code", compatible "error": {"code"} */
        {"{\"request_id\":\"70acdc21\",\"code\":\"Throttling.AllocationQuota\",\"message\":\"Allocated quota "
         "exceeded, please increase your quota limit.\"}",
         -1, -1, -1, "Throttling.AllocationQuota"},
        {"{\"error\":{\"code\":\"insufficient_quota\",\"message\":\"You exceeded your current quota\","
         "\"param\":null,\"type\":\"insufficient_quota\"},\"request_id\":\"57553be3\"}",
         -1, -1, -1, "insufficient_quota"},
        {"{\"error\":{\"message\":\"x\",\"type\":\"limit_requests\",\"code\":\"limit_requests\"}}", -1, -1,
         -1, "limit_requests"},
        {"{\"error\":{\"message\":\"x\",\"code\":null}}", -1, -1, -1, ""},
        /* usage or code deeper than documented is not the answer's */
        {"{\"output\":{\"usage\":{\"input_tokens\":1},\"code\":\"Inner\"}}", -1, -1, -1, ""},
    };

    (void)state;
    /* Assumption: usage and error codes come from the documented places, in any split. */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *json = cases[i].json;
        struct qs_ds_resp whole, bytewise;
        struct qs_json j1, j2;
        memset(&j1, 0, sizeof j1);
        memset(&j2, 0, sizeof j2);
        qs_ds_resp_init(&whole);
        qs_ds_resp_init(&bytewise);
        assert_true(qs_json_feed(&j1, json, strlen(json), qs_ds_resp_cb, &whole) >= 0);
        for (size_t k = 0; json[k] != '\0'; k++)
            assert_true(qs_json_feed(&j2, json + k, 1, qs_ds_resp_cb, &bytewise) >= 0);
        assert_memory_equal(&whole, &bytewise, sizeof whole);
        if (whole.input_tokens != cases[i].input || whole.output_tokens != cases[i].output ||
            whole.total_tokens != cases[i].total || strcmp(whole.code, cases[i].code) != 0)
            fail_msg("%s: in %lld out %lld total %lld code \"%s\"", json, (long long)whole.input_tokens,
                     (long long)whole.output_tokens, (long long)whole.total_tokens, whole.code);
    }
}

/* Assumption (SPEC section 5): a compatible stream without include_usage is reconciled from its
 * streamed text, so the characters of choices[].delta.content are counted over the chunks of
 * a recorded stream (one JSON document per data line), CJK apart; nothing else is text. */
static void test_streamed_text_counted(void **state)
{
    static const char *chunks[] = {
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"qwen-plus\","
        "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}",
        "{\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello, \"}}]}",
        "{\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\u4f60\u597d\u4e16\u754c\"}}]}",
        "{\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\xe5\x90\x97!\"},"
        "\"finish_reason\":\"stop\"}]}",
    };
    struct qs_ds_resp r;

    (void)state;
    qs_ds_resp_init(&r);
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        struct qs_json j;
        memset(&j, 0, sizeof j);
        assert_true(qs_json_feed(&j, chunks[i], strlen(chunks[i]), qs_ds_resp_cb, &r) >= 0);
    }
    /* "Hello, " (7) + 4 CJK as escapes + one CJK in UTF-8 + "!" */
    assert_int_equal(r.out_chars, 7 + 4 + 2);
    assert_int_equal(r.out_cjk, 5);
    assert_int_equal(r.output_tokens, -1);
}

static void test_response_init(void **state)
{
    struct qs_ds_resp r;

    (void)state;
    memset(&r, 0x55, sizeof r);
    /* Assumption: init means "nothing seen": -1 counts, empty code. */
    qs_ds_resp_init(&r);
    assert_int_equal(r.input_tokens, -1);
    assert_int_equal(r.output_tokens, -1);
    assert_int_equal(r.total_tokens, -1);
    assert_string_equal(r.code, "");
}

/* ==== Finding "model" for a fallback rewrite ==== */

/* Runs qs_ds_find_model over a copy of <body>/<len> in a buffer of exactly <len> bytes (no
 * NUL after it, so that valgrind sees any read past the end). With <anchor> NULL the call
 * must fail; otherwise it must succeed with the span of the quoted value "<from>" that
 * starts where the (unique) <anchor> starts in <body>. */
static void check_find_n(const char *body, size_t len, const char *from, const char *anchor)
{
    char *copy = malloc(len > 0 ? len : 1);
    size_t at = 0x5eed, span = 0x5eed;

    assert_non_null(copy);
    memcpy(copy, body, len);
    int rc = qs_ds_find_model(copy, len, from, &at, &span);
    free(copy);
    if (anchor == NULL) {
        if (rc != -1)
            fail_msg("%.200s: found \"%s\" at %zu, want none", body, from, at);
        return;
    }
    const char *a = strstr(body, anchor);
    assert_non_null(a);
    assert_null(strstr(a + 1, anchor)); /* the test's anchor is unique */
    if (rc != 0 || at != (size_t)(a - body) || span != strlen(from) + 2)
        fail_msg("%.200s: rc %d at %zu len %zu, want 0 at %zu len %zu", body, rc, at, span,
                 (size_t)(a - body), strlen(from) + 2);
    assert_memory_equal(body + at + 1, from, strlen(from));
    assert_int_equal(body[at], '"');
    assert_int_equal(body[at + span - 1], '"');
}

static void check_find(const char *body, const char *from, const char *anchor)
{
    check_find_n(body, strlen(body), from, anchor);
}

static void test_find_model_found(void **state)
{
    (void)state;
    /* Assumption: the span is the quoted value, whatever blanks surround the colon (as
     * json.dumps, JSON.stringify with indent, or hand-written bodies put them). */
    check_find("{\"model\":\"qwen-plus\",\"messages\":[]}", "qwen-plus", "\"qwen-plus\"");
    check_find("{\"messages\":[],\"model\":\"qwen-plus\"}", "qwen-plus", "\"qwen-plus\"");
    check_find("{\"model\": \"qwen-plus\", \"messages\": []}", "qwen-plus", "\"qwen-plus\"");
    check_find("{\n  \"model\" :\t\"qwen-plus\",\r\n  \"messages\": []\n}", "qwen-plus", "\"qwen-plus\"");
    check_find("{\"model\"\r\n:\r\n\"qwen-plus\"}", "qwen-plus", "\"qwen-plus\"");
    /* Assumption: other keys naming a model ("model_name", "xmodel", a nested "model" with
     * another value) and the value appearing elsewhere as a plain string do not count. */
    check_find("{\"model_name\":\"qwen-plus\",\"xmodel\":\"qwen-plus\",\"model\":\"qwen-plus\"}", "qwen-plus",
               "\"qwen-plus\"}");
    check_find("{\"messages\":[{\"role\":\"user\",\"content\":\"qwen-plus\",\"model\":\"fake\"}],"
               "\"model\":\"qwen-plus\"}",
               "qwen-plus", "\"qwen-plus\"}");
    /* Assumption: "model" written inside a string (escaped quotes) is not a key. */
    check_find(
        "{\"messages\":[{\"content\":\"say \\\"model\\\":\\\"qwen-plus\\\"\"}],\"model\":\"qwen-plus\"}",
        "qwen-plus", "\"qwen-plus\"}");
    /* Assumption: the value may end the buffer exactly (a body cut after it is still read
     * only within its length). */
    check_find_n("{\"model\":\"qwen-plus\"}", strlen("{\"model\":\"qwen-plus\""), "qwen-plus",
                 "\"qwen-plus\"");
}

static void test_find_model_after_1mb(void **state)
{
    static const char tail[] = "\"}],\"model\":\"qwen-max\"}";
    static const char head[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"";
    size_t fill = 1024 * 1024;
    size_t len = strlen(head) + fill + strlen(tail);
    char *body = malloc(len + 1);

    (void)state;
    assert_non_null(body);
    memcpy(body, head, strlen(head));
    /* the prompt mentions "model" and the name, unquoted, many times */
    for (size_t i = 0; i < fill; i++)
        body[strlen(head) + i] = "model: qwen-max "[i % 16];
    memcpy(body + strlen(head) + fill, tail, strlen(tail) + 1);
    /* Assumption: "model" after 1 MiB of messages (openai-python's order) is found. */
    check_find(body, "qwen-max", "\"qwen-max\"");
    free(body);
}

static void test_find_model_none(void **state)
{
    (void)state;
    /* Assumption: no "model" key, or a model key whose value is another string, a number,
     * null, an object, or the name without quotes, gives -1. */
    check_find("{\"messages\":[]}", "qwen-plus", NULL);
    check_find("", "qwen-plus", NULL);
    check_find("{\"model\":\"qwen-max\"}", "qwen-plus", NULL);
    check_find("{\"model\":\"Qwen-Plus\"}", "qwen-plus", NULL);
    check_find("{\"model\":42}", "qwen-plus", NULL);
    check_find("{\"model\":null}", "qwen-plus", NULL);
    check_find("{\"model\":{\"name\":\"qwen-plus\"}}", "qwen-plus", NULL);
    check_find("{\"model\":qwen-plus}", "qwen-plus", NULL);
    check_find("{\"model\" \"qwen-plus\"}", "qwen-plus", NULL);
    /* Assumption: the key as a value ("x": "model", "qwen-plus") is not a key. */
    check_find("[\"model\",\"qwen-plus\"]", "qwen-plus", NULL);
    /* Assumption: an escaped value is not the same bytes; it is not rewritten. */
    check_find("{\"model\":\"qwen\\u002dplus\"}", "qwen-plus", NULL);
    /* Assumption: a body cut inside the key, after the colon or inside the value is read
     * only within its length and gives -1. */
    static const char whole[] = "{\"model\":\"qwen-plus\"}";
    for (size_t n = 0; n < strlen("{\"model\":\"qwen-plus\""); n++)
        check_find_n(whole, n, "qwen-plus", NULL);
}

static void test_find_model_ambiguous(void **state)
{
    (void)state;
    /* Assumption: two places with "model": "<from>" (a nested one, or a duplicate key) are
     * ambiguous: nothing may be rewritten. */
    check_find("{\"model\":\"qwen-plus\",\"input\":{\"model\":\"qwen-plus\"}}", "qwen-plus", NULL);
    check_find("{\"metadata\":{\"model\": \"qwen-plus\"},\"model\":\"qwen-plus\"}", "qwen-plus", NULL);
    check_find("{\"model\":\"qwen-plus\",\"model\":\"qwen-plus\"}", "qwen-plus", NULL);
    /* Assumption: a nested "model" with another value does not make it ambiguous. */
    check_find("{\"metadata\":{\"model\":\"qwen-max\"},\"model\":\"qwen-plus\"}", "qwen-plus",
               "\"qwen-plus\"");
}

static void test_find_model_prefix(void **state)
{
    (void)state;
    /* Assumption: a value that merely starts with <from> is another model, and so is one
     * that <from> starts with: "qwen-plus" vs "qwen-plus-latest" both ways. */
    check_find("{\"model\":\"qwen-plus-latest\"}", "qwen-plus", NULL);
    check_find("{\"model\":\"qwen-plus\"}", "qwen-plus-latest", NULL);
    check_find("{\"model\":\"qwen-plusx\"}", "qwen-plus", NULL);
    /* Assumption: with both present, only the exact one is found, in either order. */
    check_find("{\"metadata\":{\"model\":\"qwen-plus-latest\"},\"model\":\"qwen-plus\"}", "qwen-plus",
               "\"qwen-plus\"}");
    check_find("{\"model\":\"qwen-plus\",\"metadata\":{\"model\":\"qwen-plus-latest\"}}", "qwen-plus",
               "\"qwen-plus\",");
    /* The nested one is not the request's model, so it is never the one rewritten. */
    check_find("{\"model\":\"qwen-plus\",\"metadata\":{\"model\":\"qwen-plus-latest\"}}", "qwen-plus-latest",
               NULL);
}

static void test_find_model_escaped_top_level(void **state)
{
    (void)state;
    /* Assumption (dashscope.h: "Finds the top-level \"model\""; answer.c fall_back: "only
     * bodies with one unambiguous top-level model are rewritten"): when the top-level value
     * is written with an escape (the JSON scanner reads it as "qwen-plus", so that is the
     * <from> the caller passes) and a nested object has a literal "model": "qwen-plus", the
     * nested one is not the top-level model and must not be returned. */
    check_find("{\"model\":\"qwen\\u002dplus\",\"metadata\":{\"model\":\"qwen-plus\"}}", "qwen-plus", NULL);
}

/* ==== Key fingerprints ==== */

static void fingerprint(const char *auth, char out[9])
{
    memset(out, 'Z', 9);
    qs_ds_key_fingerprint(auth, strlen(auth), out);
    assert_int_equal(out[8], '\0');
    for (int i = 0; i < 8; i++)
        assert_true(isxdigit((unsigned char)out[i]) && !isupper((unsigned char)out[i]));
}

static void test_key_fingerprint(void **state)
{
    char a[9], b[9], c[9];

    (void)state;
    /* Assumption: 8 lower-case hex digits, the same for the same key in every process and
     * version (log continuity), pinned here. */
    fingerprint("Bearer sk-test-0123456789", a);
    assert_string_equal(a, "24de466b");
    /* Assumption: the "Bearer " scheme (any case) is not part of the key. */
    fingerprint("sk-test-0123456789", b);
    assert_string_equal(a, b);
    fingerprint("bearer sk-test-0123456789", b);
    assert_string_equal(a, b);
    /* Assumption: different keys, even one character apart, differ. */
    fingerprint("Bearer sk-test-0123456780", c);
    assert_string_not_equal(a, c);
    fingerprint("Bearer sk-test-other", c);
    assert_string_not_equal(a, c);
    /* Assumption: a key made of hex digits is never logged as itself. */
    fingerprint("Bearer 0123abcd", c);
    assert_string_not_equal(c, "0123abcd");
    /* Assumption: only <len> bytes are read. */
    qs_ds_key_fingerprint("Bearer sk-test-0123456789TRAILING", strlen("Bearer sk-test-0123456789"), b);
    assert_string_equal(a, b);
    fingerprint("", c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_families),     cmocka_unit_test(test_regions),
        cmocka_unit_test(test_request_facts),     cmocka_unit_test(test_long_model_truncated),
        cmocka_unit_test(test_token_estimate),    cmocka_unit_test(test_response_facts),
        cmocka_unit_test(test_response_init),     cmocka_unit_test(test_key_fingerprint),
        cmocka_unit_test(test_streamed_text_counted),
        cmocka_unit_test(test_find_model_found),  cmocka_unit_test(test_find_model_after_1mb),
        cmocka_unit_test(test_find_model_none),   cmocka_unit_test(test_find_model_ambiguous),
        cmocka_unit_test(test_find_model_prefix), cmocka_unit_test(test_find_model_escaped_top_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
