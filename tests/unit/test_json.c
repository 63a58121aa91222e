/* test_json.c - unit tests for shim/json.c, the streaming JSON scanner.
 *
 * Real DashScope bodies (research/dashscope-wire.md §1.4 requests, §3 error envelopes,
 * §4 usage and SSE payloads) are fed whole, split in two at every byte, and one byte
 * at a time; every way must give the same callbacks, result and character counts.
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

#include "json.h"

/* ==== Recording and feeding ==== */

struct rec {
    char *buf; /* NUL-terminated */
    size_t len, cap;
};

static void rec_add(struct rec *r, const void *s, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        r->cap = (r->len + n + 1) * 2;
        r->buf = realloc(r->buf, r->cap);
        assert_non_null(r->buf);
    }
    memcpy(r->buf + r->len, s, n);
    r->len += n;
    r->buf[r->len] = '\0';
}

/* One line per value: "path/with/[] <type>[+] <value>\n", type s n t f z (string,
 * number, true, false, null), '+' when truncated. */
static void record_cb(void *ctx, const struct qs_json_value *v)
{
    struct rec *r = ctx;

    assert_in_range(v->depth, 0, QS_JSON_MAX_DEPTH);
    assert_in_range(v->type, QS_JSON_STRING, QS_JSON_NULL);
    assert_in_range(v->len, 0, QS_JSON_STR_MAX);
    assert_int_equal(v->val[v->len], '\0'); /* handy for callers, and promised by json.c */
    for (int i = 0; i < v->depth; i++) {
        assert_in_range(strlen(v->path[i]), 0, QS_JSON_KEY_MAX);
        if (i > 0)
            rec_add(r, "/", 1);
        rec_add(r, v->path[i], strlen(v->path[i]));
    }
    rec_add(r, " ", 1);
    rec_add(r, &"?sntfz"[v->type], 1);
    if (v->truncated)
        rec_add(r, "+", 1);
    rec_add(r, " ", 1);
    rec_add(r, v->val, v->len);
    rec_add(r, "\n", 1);
}

struct outcome {
    struct rec rec;
    long consumed; /* sum of the feeds' results, up to an error */
    int err;       /* a feed returned QS_JSON_EBAD */
    int done;
    uint64_t text_chars, cjk_chars;
};

/* Feeds <len> bytes of <doc>: a first piece of <first> bytes (0 is an empty feed), then
 * pieces of <step>. Each piece is copied to a heap block of exactly its size, so that
 * reading past the end of a feed trips ASan or valgrind. Once a feed has failed, every
 * later one must fail too. */
static void scan(const char *doc, size_t len, size_t first, size_t step, struct outcome *o)
{
    struct qs_json j;
    size_t off = 0, n = first < len ? first : len;

    memset(&j, 0, sizeof j);
    memset(o, 0, sizeof *o);
    for (;;) {
        char *piece = malloc(n > 0 ? n : 1);
        long r;

        assert_non_null(piece);
        memcpy(piece, doc + off, n);
        r = qs_json_feed(&j, piece, n, record_cb, &o->rec);
        free(piece);
        if (o->err) {
            assert_int_equal(r, QS_JSON_EBAD);
        } else if (r == QS_JSON_EBAD) {
            o->err = 1;
        } else {
            assert_in_range(r, 0, n);
            o->consumed += r;
        }
        off += n;
        if (off >= len)
            break;
        n = len - off < step ? len - off : step;
    }
    o->done = j.done;
    o->text_chars = j.text_chars;
    o->cjk_chars = j.cjk_chars;
}

static void assert_same(const struct outcome *a, const struct outcome *b)
{
    assert_int_equal(a->err, b->err);
    assert_int_equal(a->done, b->done);
    if (!a->err) /* else it depends on where the feed that failed began */
        assert_int_equal(a->consumed, b->consumed);
    assert_int_equal(a->text_chars, b->text_chars);
    assert_int_equal(a->cjk_chars, b->cjk_chars);
    assert_int_equal(a->rec.len, b->rec.len);
    if (a->rec.len > 0)
        assert_memory_equal(a->rec.buf, b->rec.buf, a->rec.len);
}

/* Every two-way split and the byte-at-a-time feed must match <whole>. */
static void check_splits(const char *doc, size_t len, const struct outcome *whole)
{
    struct outcome o;

    for (size_t k = 0; k <= len; k++) {
        scan(doc, len, k, len, &o);
        assert_same(whole, &o);
        free(o.rec.buf);
    }
    scan(doc, len, 1, 1, &o);
    assert_same(whole, &o);
    free(o.rec.buf);
}

/* <doc> is one complete document: its values must be <gold> in every split. */
static void check_doc(const char *doc, const char *gold, uint64_t text_chars, uint64_t cjk_chars)
{
    struct outcome whole;
    size_t len = strlen(doc);

    scan(doc, len, len, len, &whole);
    assert_false(whole.err);
    assert_true(whole.done);
    assert_int_equal(whole.consumed, len);
    assert_string_equal(whole.rec.buf ? whole.rec.buf : "", gold);
    assert_int_equal(whole.text_chars, text_chars);
    assert_int_equal(whole.cjk_chars, cjk_chars);
    check_splits(doc, len, &whole);
    free(whole.rec.buf);
}

/* <doc> is malformed: every way of feeding it must end in QS_JSON_EBAD. */
static void check_bad(const char *doc)
{
    struct outcome o;
    size_t len = strlen(doc);

    scan(doc, len, len, len, &o);
    if (!o.err)
        print_error("accepted malformed input: %s\n", doc);
    assert_true(o.err);
    check_splits(doc, len, &o);
    free(o.rec.buf);
}

/* <doc> is a valid prefix: all of it is consumed, no error, not done. */
static void check_partial(const char *doc)
{
    struct outcome o;
    size_t len = strlen(doc);

    scan(doc, len, len, len, &o);
    assert_false(o.err);
    assert_false(o.done);
    assert_int_equal(o.consumed, len);
    check_splits(doc, len, &o);
    free(o.rec.buf);
}

/* What the shim wants from a body, picked with qs_json_path_is as shim/dashscope.c does. */
struct facts {
    char model[64], code[64];
    int stream;                 /* -1 absent, else 0/1 */
    long in_tokens, out_tokens; /* -1 absent */
};

static void copy_val(char dst[64], const struct qs_json_value *v)
{
    snprintf(dst, 64, "%.*s", (int)v->len, v->val);
}

static void facts_cb(void *ctx, const struct qs_json_value *v)
{
    struct facts *f = ctx;

    if (qs_json_path_is(v, 1, "model") && v->type == QS_JSON_STRING)
        copy_val(f->model, v);
    else if (qs_json_path_is(v, 1, "stream") || qs_json_path_is(v, 2, "parameters", "stream"))
        f->stream = v->type == QS_JSON_TRUE;
    else if (qs_json_path_is(v, 2, "usage", "input_tokens") ||
             qs_json_path_is(v, 2, "usage", "prompt_tokens"))
        f->in_tokens = strtol(v->val, NULL, 10);
    else if (qs_json_path_is(v, 2, "usage", "output_tokens") ||
             qs_json_path_is(v, 2, "usage", "completion_tokens"))
        f->out_tokens = strtol(v->val, NULL, 10);
    else if (qs_json_path_is(v, 1, "code") || qs_json_path_is(v, 2, "error", "code"))
        copy_val(f->code, v);
}

static struct facts facts(const char *doc)
{
    struct facts f = {.stream = -1, .in_tokens = -1, .out_tokens = -1};
    struct qs_json j;

    memset(&j, 0, sizeof j);
    assert_int_equal(qs_json_feed(&j, doc, strlen(doc), facts_cb, &f), strlen(doc));
    assert_true(j.done);
    return f;
}

/* ==== Real bodies (research/dashscope-wire.md) ==== */

/* openai-python v3.3.1: separators=(",", ":"), ensure_ascii=False, "messages" before "model" (§1.4). */
/* text_chars 58, cjk_chars 11 */
static const char OPENAI_V3[] =
    "{\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful "
    "assistant.\"},{\"role\":\"user\",\"content\":\"你好，请介绍一下你自己\"}],\"model\":\"qwen-plus\","
    "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"max_tokens\":512,\"temperature\":0.7}";
static const char GOLD_OPENAI_V3[] = "messages/[]/role s system\n"
                                     "messages/[]/content s You are a helpful assistant.\n"
                                     "messages/[]/role s user\n"
                                     "messages/[]/content s 你好，请介绍一下你自己\n"
                                     "model s qwen-plus\n"
                                     "stream t true\n"
                                     "stream_options/include_usage t true\n"
                                     "max_tokens n 512\n"
                                     "temperature n 0.7\n";

/* text_chars 31, cjk_chars 5 */
static const char HTTPX_OLD[] =
    "{\"messages\": [{\"role\": \"user\", \"content\": \"\\u4f60\\u597d\\uff0c\\u4e16\\u754c! Say "
    "\\\"hi\\\"\\n\\ud83d\\ude00\"}], \"model\": \"qwen-turbo\", \"max_tokens\": 100, \"stream\": false, "
    "\"frequency_penalty\": -0.5, \"top_p\": 1e-05}";
static const char GOLD_HTTPX_OLD[] = "messages/[]/role s user\n"
                                     "messages/[]/content s 你好，世界! Say \"hi\"\n😀\n"
                                     "model s qwen-turbo\n"
                                     "max_tokens n 100\n"
                                     "stream f false\n"
                                     "frequency_penalty n -0.5\n"
                                     "top_p n 1e-05\n";

/* text_chars 23, cjk_chars 4 */
static const char NATIVE[] =
    "{\"model\": \"qwen-max\", \"parameters\": {\"result_format\": \"message\", \"incremental_output\": "
    "true, \"stream\": true}, \"input\": {\"messages\": [{\"role\": \"user\", \"content\": \"你是谁？\"}]}}";
static const char GOLD_NATIVE[] = "model s qwen-max\n"
                                  "parameters/result_format s message\n"
                                  "parameters/incremental_output t true\n"
                                  "parameters/stream t true\n"
                                  "input/messages/[]/role s user\n"
                                  "input/messages/[]/content s 你是谁？\n";

/* text_chars 30, cjk_chars 6 */
static const char NATIVE_PRETTY[] = "{\n"
                                    "  \"model\": \"qwen-max\",\n"
                                    "  \"input\": {\n"
                                    "    \"messages\": [\n"
                                    "      {\n"
                                    "        \"role\": \"user\",\n"
                                    "        \"content\": \"请问 1+1 是多少？\"\n"
                                    "      }\n"
                                    "    ]\n"
                                    "  },\n"
                                    "  \"parameters\": {\n"
                                    "    \"result_format\": \"message\",\n"
                                    "    \"seed\": 1234,\n"
                                    "    \"max_completion_tokens\": 1500,\n"
                                    "    \"top_p\": 0.8,\n"
                                    "    \"top_k\": 100,\n"
                                    "    \"repetition_penalty\": 1.1,\n"
                                    "    \"temperature\": 0.85,\n"
                                    "    \"stop\": [[37763, 367]],\n"
                                    "    \"enable_search\": false,\n"
                                    "    \"incremental_output\": false\n"
                                    "  }\n"
                                    "}\n";
static const char GOLD_NATIVE_PRETTY[] = "model s qwen-max\n"
                                         "input/messages/[]/role s user\n"
                                         "input/messages/[]/content s 请问 1+1 是多少？\n"
                                         "parameters/result_format s message\n"
                                         "parameters/seed n 1234\n"
                                         "parameters/max_completion_tokens n 1500\n"
                                         "parameters/top_p n 0.8\n"
                                         "parameters/top_k n 100\n"
                                         "parameters/repetition_penalty n 1.1\n"
                                         "parameters/temperature n 0.85\n"
                                         "parameters/stop/[]/[] n 37763\n"
                                         "parameters/stop/[]/[] n 367\n"
                                         "parameters/enable_search f false\n"
                                         "parameters/incremental_output f false\n";

/* text_chars 63, cjk_chars 13 */
static const char USAGE_NATIVE[] =
    "{\"output\":{\"choices\":[{\"message\":{\"content\":\"2。这是最基本的数学加法之一\",\"role\":"
    "\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":24,\"input_tokens\":8,\"output_"
    "tokens\":16},\"request_id\":\"d272255f-82d7-9cc7-93c5-17ff77024349\"}";
static const char GOLD_USAGE_NATIVE[] = "output/choices/[]/message/content s 2。这是最基本的数学加法之一\n"
                                        "output/choices/[]/message/role s assistant\n"
                                        "output/choices/[]/finish_reason s null\n"
                                        "usage/total_tokens n 24\n"
                                        "usage/input_tokens n 8\n"
                                        "usage/output_tokens n 16\n"
                                        "request_id s d272255f-82d7-9cc7-93c5-17ff77024349\n";

/* text_chars 75, cjk_chars 0 */
static const char USAGE_COMPAT[] =
    "{\"choices\":[],\"object\":\"chat.completion.chunk\",\"usage\":{\"prompt_tokens\":22,\"completion_"
    "tokens\":17,\"total_tokens\":39},\"created\":1726132850,\"system_fingerprint\":null,\"model\":\"qwen-"
    "plus\",\"id\":\"chatcmpl-428b414f-fdd4-94c6-b179-8f576ad653a8\"}";
static const char GOLD_USAGE_COMPAT[] = "object s chat.completion.chunk\n"
                                        "usage/prompt_tokens n 22\n"
                                        "usage/completion_tokens n 17\n"
                                        "usage/total_tokens n 39\n"
                                        "created n 1726132850\n"
                                        "system_fingerprint z null\n"
                                        "model s qwen-plus\n"
                                        "id s chatcmpl-428b414f-fdd4-94c6-b179-8f576ad653a8\n";

/* text_chars 84, cjk_chars 0 */
static const char SSE_COMPAT_FIRST[] =
    "{\"choices\":[{\"delta\":{\"content\":\"\",\"role\":\"assistant\"},\"index\":0,\"logprobs\":null,"
    "\"finish_reason\":null}],\"object\":\"chat.completion.chunk\",\"usage\":null,\"created\":1726132850,"
    "\"system_fingerprint\":null,\"model\":\"qwen-plus\",\"id\":\"chatcmpl-428b414f-fdd4-94c6-b179-"
    "8f576ad653a8\"}";
static const char GOLD_SSE_COMPAT_FIRST[] = "choices/[]/delta/content s \n"
                                            "choices/[]/delta/role s assistant\n"
                                            "choices/[]/index n 0\n"
                                            "choices/[]/logprobs z null\n"
                                            "choices/[]/finish_reason z null\n"
                                            "object s chat.completion.chunk\n"
                                            "usage z null\n"
                                            "created n 1726132850\n"
                                            "system_fingerprint z null\n"
                                            "model s qwen-plus\n"
                                            "id s chatcmpl-428b414f-fdd4-94c6-b179-8f576ad653a8\n";

/* text_chars 121, cjk_chars 0 */
static const char ERR_NATIVE[] =
    "{\"request_id\":\"70acdc21-a546-489a-b5d6-650df970a4ef\",\"code\":\"Throttling.AllocationQuota\","
    "\"message\":\"Allocated quota exceeded, please increase your quota limit.\"}";
static const char GOLD_ERR_NATIVE[] =
    "request_id s 70acdc21-a546-489a-b5d6-650df970a4ef\n"
    "code s Throttling.AllocationQuota\n"
    "message s Allocated quota exceeded, please increase your quota limit.\n";

/* text_chars 229, cjk_chars 0 */
static const char ERR_COMPAT[] =
    "{\"error\":{\"code\":\"insufficient_quota\",\"message\":\"You exceeded your current quota, please check "
    "your plan and billing details. For details, see: "
    "https://help.aliyun.com/zh/model-studio/"
    "error-code#token-limit\",\"param\":null,\"type\":\"insufficient_quota\"},\"request_id\":\"57553be3-dea8-"
    "49f1-ba1e-7a820c152999\"}";
static const char GOLD_ERR_COMPAT[] =
    "error/code s insufficient_quota\n"
    "error/message s You exceeded your current quota, please check your plan and billing details. For "
    "details, see: https://help.aliyun.com/zh/model-studio/error-code#token-limit\n"
    "error/param z null\n"
    "error/type s insufficient_quota\n"
    "request_id s 57553be3-dea8-49f1-ba1e-7a820c152999\n";

/* text_chars 145, cjk_chars 0 */
static const char ERR_RELAY[] = "{\"code\":\"Throttling.RateQuota\",\"message\":\"{\\\"error\\\":{"
                                "\\\"message\\\":\\\"The engine is currently "
                                "overloaded\\\",\\\"type\\\":\\\"EngineOverloadedError\\\"}}\",\"request_"
                                "id\":\"9ad5f6e5-c95f-905a-8c49-cea387148724\"}";
static const char GOLD_ERR_RELAY[] = "code s Throttling.RateQuota\n"
                                     "message s {\"error\":{\"message\":\"The engine is currently "
                                     "overloaded\",\"type\":\"EngineOverloadedError\"}}\n"
                                     "request_id s 9ad5f6e5-c95f-905a-8c49-cea387148724\n";

static void test_openai_v3_request(void **state)
{
    struct facts f = facts(OPENAI_V3);

    (void)state;
    check_doc(OPENAI_V3, GOLD_OPENAI_V3, 58, 11);
    assert_string_equal(f.model, "qwen-plus");
    assert_int_equal(f.stream, 1);
}

/* openai-python v1.30 through httpx: ", " and ": " separators, \uXXXX escapes, a
 * surrogate pair (one character), exponent and negative numbers. */
static void test_httpx_request(void **state)
{
    struct facts f = facts(HTTPX_OLD);

    (void)state;
    check_doc(HTTPX_OLD, GOLD_HTTPX_OLD, 31, 5);
    assert_string_equal(f.model, "qwen-turbo");
    assert_int_equal(f.stream, 0);
}

/* dashscope-python native route: model, parameters (with "stream"), then input. */
static void test_native_request(void **state)
{
    struct facts f = facts(NATIVE);

    (void)state;
    check_doc(NATIVE, GOLD_NATIVE, 23, 4);
    assert_string_equal(f.model, "qwen-max");
    assert_int_equal(f.stream, 1);
}

/* cnblogs capture: pretty-printed with newlines, nested "stop" arrays, trailing newline
 * (consumed as trailing whitespace). */
static void test_native_pretty_request(void **state)
{
    struct facts f = facts(NATIVE_PRETTY);

    (void)state;
    check_doc(NATIVE_PRETTY, GOLD_NATIVE_PRETTY, 30, 6);
    assert_string_equal(f.model, "qwen-max");
    assert_int_equal(f.stream, -1);
}

/* Native SSE data payload: cumulative usage in every event (§4.2). */
static void test_native_usage(void **state)
{
    struct facts f = facts(USAGE_NATIVE);

    (void)state;
    check_doc(USAGE_NATIVE, GOLD_USAGE_NATIVE, 63, 13);
    assert_int_equal(f.in_tokens, 8);
    assert_int_equal(f.out_tokens, 16);
}

/* Compatible SSE: the usage chunk with "choices":[] (§4.3), and a first chunk with
 * choices/[]/delta/content and nulls. */
static void test_compatible_sse(void **state)
{
    struct facts f = facts(USAGE_COMPAT);

    (void)state;
    check_doc(USAGE_COMPAT, GOLD_USAGE_COMPAT, 75, 0);
    assert_int_equal(f.in_tokens, 22);
    assert_int_equal(f.out_tokens, 17);
    assert_string_equal(f.model, "qwen-plus");
    check_doc(SSE_COMPAT_FIRST, GOLD_SSE_COMPAT_FIRST, 84, 0);
}

/* 429 envelopes: native {"code","message","request_id"} (§3.1), compatible
 * {"error":{...}} (§3.3), and a relay's JSON-in-a-string message full of \" escapes. */
static void test_error_envelopes(void **state)
{
    (void)state;
    check_doc(ERR_NATIVE, GOLD_ERR_NATIVE, 121, 0);
    assert_string_equal(facts(ERR_NATIVE).code, "Throttling.AllocationQuota");
    check_doc(ERR_COMPAT, GOLD_ERR_COMPAT, 229, 0);
    assert_string_equal(facts(ERR_COMPAT).code, "insufficient_quota");
    check_doc(ERR_RELAY, GOLD_ERR_RELAY, 145, 0);
    assert_string_equal(facts(ERR_RELAY).code, "Throttling.RateQuota");
}

/* ==== Scanner properties ==== */

/* "model" after 5 MB of "messages" (§1.4), fed whole and in SSL_write-sized and odd
 * pieces: the path survives, the content is counted, and only 255 bytes of it are kept. */
static void test_model_after_5mb(void **state)
{
    static const char head[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"";
    /* 27 characters, 7 of them CJK: "你好，世界。" and \u4f60 */
    static const char unit[] = "Hello, world. 你好，世界。\\n\\\"q\\\" \\u4f60 ";
    static const char tail[] = "\"}],\"model\":\"qwen-max\",\"stream\":false}";
    const size_t units = (5u << 20) / (sizeof unit - 1);
    size_t len = 0;
    char *doc = malloc(sizeof head + units * (sizeof unit - 1) + sizeof tail);
    struct outcome whole, o;
    const size_t steps[] = {16384, 4093, 1 << 20};

    (void)state;
    assert_non_null(doc);
    memcpy(doc, head, sizeof head - 1);
    len += sizeof head - 1;
    for (size_t i = 0; i < units; i++, len += sizeof unit - 1)
        memcpy(doc + len, unit, sizeof unit - 1);
    memcpy(doc + len, tail, sizeof tail);
    len += sizeof tail - 1;

    scan(doc, len, len, len, &whole);
    assert_false(whole.err);
    assert_true(whole.done);
    assert_int_equal(whole.consumed, len);
    assert_int_equal(whole.text_chars, units * 27 + 4 + 8); /* + "user" + "qwen-max" */
    assert_int_equal(whole.cjk_chars, units * 7);
    assert_non_null(strstr(whole.rec.buf, "\nmessages/[]/content s+ Hello, world. "));
    assert_non_null(strstr(whole.rec.buf, "\nmodel s qwen-max\nstream f false\n"));
    assert_string_equal(facts(doc).model, "qwen-max");
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        scan(doc, len, steps[i], steps[i], &o);
        assert_same(&whole, &o);
        free(o.rec.buf);
    }
    free(whole.rec.buf);
    free(doc);
}

/* cjk_chars counts CJK ideographs (and Ext A), CJK symbols, kana, Hangul syllables and
 * fullwidth forms, raw or escaped, only in values. Range ends are checked on both sides. */
static void test_cjk_counting(void **state)
{
    (void)state;
    check_doc("{\"a\":\"你好\"}", "a s 你好\n", 2, 2);
    check_doc("{\"你好\":\"x\"}", "你好 s x\n", 1, 0); /* keys are not counted */
    /* 12 inside: U+3000 303F 3040 30FF 3400 4DBF 4E00 9FFF AC00 D7AF FF00 FFEF */
    check_doc("[\"\u3000\u303F\u3040\u30FF\u3400\u4DBF\u4E00\u9FFF\uAC00\uD7AF\uFF00\uFFEF\"]",
              "[] s \u3000\u303F\u3040\u30FF\u3400\u4DBF\u4E00\u9FFF\uAC00\uD7AF\uFF00\uFFEF\n", 12, 12);
    check_doc("[\"\\u3000\\u303f\\u3040\\u30ff\\u3400\\u4dbf\\u4e00\\u9fff\\uac00\\ud7af\\uff00\\uffef\"]",
              "[] s \u3000\u303F\u3040\u30FF\u3400\u4DBF\u4E00\u9FFF\uAC00\uD7AF\uFF00\uFFEF\n", 12, 12);
    /* 12 outside: U+2FFF 3100 33FF 4DC0 4DFF A000 ABFF D7B0 FFF0 1F600 E9 'a' */
    check_doc("[\"\u2FFF\u3100\u33FF\u4DC0\u4DFF\uA000\uABFF\uD7B0\uFFF0\U0001F600\u00E9a\"]",
              "[] s \u2FFF\u3100\u33FF\u4DC0\u4DFF\uA000\uABFF\uD7B0\uFFF0\U0001F600\u00E9a\n", 12, 0);
    check_doc("[\"\\u2fff\\u3100\\u33ff\\u4dc0\\u4dff\\ua000\\uabff\\ud7b0\\ufff0\\ud83d\\ude00\\u00e9a\"]",
              "[] s \u2FFF\u3100\u33FF\u4DC0\u4DFF\uA000\uABFF\uD7B0\uFFF0\U0001F600\u00E9a\n", 12, 0);
}

/* All RFC 8259 escapes, upper and lower case hex, a surrogate pair as one character,
 * and escapes in keys. Lone surrogates become U+FFFD, one character each. */
static void test_escapes(void **state)
{
    (void)state;
    check_doc("{\"v\":\"q\\\"b\\\\s\\/n\\nt\\tr\\rb\\bf\\fu\\u4f60\\u4F60e\\ud83d\\ude00x\"}",
              "v s q\"b\\s/n\nt\tr\rb\bf\fu你你e\U0001F600x\n", 22, 2);
    check_doc("{\"mo\\u0064el\":\"m\"}", "model s m\n", 1, 0);
    check_doc(
        "[\"\\ud83dx\",\"\\ude00\",\"\\ud83d\\n\",\"\\ud83d\\u0041\",\"\\ud83d\\ud83d\\ude00\",\"\\ud83d\"]",
        "[] s \uFFFDx\n[] s \uFFFD\n[] s \uFFFD\n\n[] s \uFFFDA\n[] s \uFFFD\U0001F600\n[] s \uFFFD\n", 10,
        0);
}

/* \u0000 is a character like any other: val keeps it, len counts it. */
static void test_escaped_nul(void **state)
{
    struct outcome o;
    const char *doc = "{\"a\":\"x\\u0000y\"}";

    (void)state;
    scan(doc, strlen(doc), strlen(doc), 1, &o);
    assert_true(o.done);
    assert_int_equal(o.rec.len, 8);
    assert_memory_equal(o.rec.buf, "a s x\0y\n", 8);
    assert_int_equal(o.text_chars, 3);
    check_splits(doc, strlen(doc), &o);
    free(o.rec.buf);
}

/* Strings keep QS_JSON_STR_MAX bytes and say truncated; counts still cover all of them.
 * Numbers are cut the same way; keys keep QS_JSON_KEY_MAX bytes. */
static void test_truncation(void **state)
{
    char doc[1024], gold[1024], big[400];

    (void)state;
    memset(big, 'a', sizeof big);
    snprintf(doc, sizeof doc, "[\"%.255s\",\"%.256s\",\"%.300s\"]", big, big, big);
    snprintf(gold, sizeof gold, "[] s %.255s\n[] s+ %.255s\n[] s+ %.255s\n", big, big, big);
    check_doc(doc, gold, 255 + 256 + 300, 0);

    /* 100 CJK characters are 300 bytes: 85 whole characters fit. */
    strcpy(doc, "{\"c\":\"");
    gold[0] = '\0';
    for (int i = 0; i < 100; i++)
        strcat(doc, "你");
    strcat(doc, "\"}");
    strcpy(gold, "c s+ ");
    for (int i = 0; i < 85; i++)
        strcat(gold, "你");
    strcat(gold, "\n");
    check_doc(doc, gold, 100, 100);

    memset(big, '7', sizeof big);
    snprintf(doc, sizeof doc, "{\"n\":%.300s,\"m\":1}", big);
    snprintf(gold, sizeof gold, "n n+ %.255s\nm n 1\n", big);
    check_doc(doc, gold, 0, 0);

    memset(big, 'k', sizeof big);
    snprintf(doc, sizeof doc, "{\"%.40s\":true}", big);
    snprintf(gold, sizeof gold, "%.31s t true\n", big);
    check_doc(doc, gold, 0, 0);
}

/* Array elements are "[]" in the path, at any level. */
static void test_nested_paths(void **state)
{
    (void)state;
    check_doc("{\"choices\":[{\"delta\":{\"content\":\"hi\"}},{\"delta\":{}}],\"x\":[]}",
              "choices/[]/delta/content s hi\n", 2, 0);
    check_doc("[[1,2],[3,[4,{\"k\":[null]}]],[]]",
              "[]/[] n 1\n[]/[] n 2\n[]/[] n 3\n[]/[]/[] n 4\n[]/[]/[]/k/[] z null\n", 0, 0);
    check_doc("{}", "", 0, 0);
    check_doc(" [ ] ", "", 0, 0);
}

/* Values up to QS_JSON_MAX_DEPTH levels are reported; deeper ones are scanned (bracket
 * kinds checked, strings counted) but not reported; 288 levels are the hard limit. */
static void test_depth(void **state)
{
    char doc[700];

    (void)state;
    check_doc("{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":1}}}}}}}}", "a/b/c/d/e/f/g/h n 1\n", 0,
              0);
    check_doc("[[[[[[[[8]]]]]]]]", "[]/[]/[]/[]/[]/[]/[]/[] n 8\n", 0, 0);
    check_doc("[[[[[[[[[9]]]]]]]]]", "", 0, 0);
    check_doc("{\"a\":[[[[[[[[[{\"k\":\"深\"},{\"k\":[\"x\",{\"y\":\"z\"}]}]]]]]]]]],\"model\":\"m\"}",
              "model s m\n", 4, 1);
    check_bad("[[[[[[[[[{\"a\":1]]]]]]]]]]");
    check_bad("[[[[[[[[[[1}]]]]]]]]]");
    memset(doc, '[', 288);
    memset(doc + 288, ']', 288);
    doc[576] = '\0';
    check_doc(doc, "", 0, 0);
    memset(doc, '[', 289);
    memset(doc + 289, ']', 289);
    doc[578] = '\0';
    check_bad(doc);
}

/* Scalars as whole documents; what is consumed around them. */
static void test_top_level(void **state)
{
    struct qs_json j;
    struct rec r = {0};
    struct outcome o;

    (void)state;
    check_doc("\"x\"", " s x\n", 1, 0);
    check_doc("  true\r\n", " t true\n", 0, 0);
    check_doc("null", " z null\n", 0, 0);
    check_doc("\t-12.5e+3 ", " n -12.5e+3\n", 0, 0); /* a number ends at the byte after it */
    check_partial("123");
    check_partial(" \n");
    check_partial("");

    /* Bytes after the document are not consumed; whitespace is, in later feeds too,
     * but only up to the first other byte, however the input is split. */
    scan("{\"a\":1} \n x y", 13, 13, 13, &o);
    assert_int_equal(o.consumed, 10);
    check_splits("{\"a\":1} \n x y", 13, &o);
    free(o.rec.buf);
    memset(&j, 0, sizeof j);
    assert_int_equal(qs_json_feed(&j, "{\"a\":1} \n", 9, record_cb, &r), 9);
    assert_true(j.done);
    assert_int_equal(qs_json_feed(&j, "  {\"b\":2}", 9, record_cb, &r), 2);
    assert_int_equal(qs_json_feed(&j, " {}", 3, record_cb, &r), 0);
    assert_string_equal(r.buf, "a n 1\n");
    free(r.buf);

    /* A top-level number followed by junk is a complete document plus trailing bytes. */
    memset(&j, 0, sizeof j);
    r = (struct rec){0};
    assert_int_equal(qs_json_feed(&j, "01", 2, record_cb, &r), 1);
    assert_true(j.done);
    assert_string_equal(r.buf, " n 0\n");
    free(r.buf);
}

/* Truncated input is not malformed: the scanner waits for more. */
static void test_partial(void **state)
{
    (void)state;
    check_partial("{\"messages\":[{\"role\":\"user\",\"content\":\"abc");
    check_partial("{\"a\":\"\\");
    check_partial("{\"a\":\"\\u4f");
    check_partial("{\"a\":\"\\ud83d");
    check_partial("{\"a\":\"\\ud83d\\");
    check_partial("{\"a\":\"\xe4\xbd");
    check_partial("{\"a\":12");
    check_partial("{\"a\":-");
    check_partial("{\"a\":1.");
    check_partial("{\"a\":1e");
    check_partial("{\"a\":1e-");
    check_partial("{\"a\":tr");
    check_partial("{\"a\":[1,");
    check_partial("{\"a\"");
    check_partial("{\"a\":1,");
    check_partial("[");
}

/* Malformed JSON is QS_JSON_EBAD, at whatever feed it shows up, and stays so. */
static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "{\"a\":}",
        "{\"a\" 1}",
        "[1,]",
        "{\"a\":1,}",
        "[,1]",
        "{,}",
        "[1 2]",
        "{\"a\":1 \"b\":2}",
        "{\"a\":1]",
        "[}",
        "]",
        "}",
        ":",
        ",",
        "{1:2}",
        "{\"a\"::1}",
        "{\"a\":\"\\x\"}",
        "[\"\\u12G4\"]",
        "[\"\\U0041\"]",
        "[tru e]",
        "tru e",
        "[truex]",
        "[nul]",
        "[True]",
        "[\"a\tb\"]",
        "[\"a\nb\"]",
        "{\"a\x01\":1}",
        "[01]",
        "[-]",
        "[-a]",
        "[1.]",
        "[1.e5]",
        "[.5]",
        "[+1]",
        "[1e]",
        "[1e+]",
        "[0x10]",
        "{\"a\":[1]]}",
        "\"\\\xe4\"",
        "'a'",
        "[NaN]",
    };

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_bad(bad[i]);
}

static void test_path_is(void **state)
{
    struct qs_json_value v = {.depth = 2, .path = {"usage", "input_tokens"}, .type = QS_JSON_NUMBER};

    (void)state;
    assert_true(qs_json_path_is(&v, 2, "usage", "input_tokens"));
    assert_false(qs_json_path_is(&v, 2, "usage", "output_tokens"));
    assert_false(qs_json_path_is(&v, 1, "usage"));
    assert_false(qs_json_path_is(&v, 3, "usage", "input_tokens", "x"));
    v.depth = 0;
    assert_true(qs_json_path_is(&v, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_v3_request), cmocka_unit_test(test_httpx_request),
        cmocka_unit_test(test_native_request),    cmocka_unit_test(test_native_pretty_request),
        cmocka_unit_test(test_native_usage),      cmocka_unit_test(test_compatible_sse),
        cmocka_unit_test(test_error_envelopes),   cmocka_unit_test(test_model_after_5mb),
        cmocka_unit_test(test_cjk_counting),      cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_escaped_nul),       cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_nested_paths),      cmocka_unit_test(test_depth),
        cmocka_unit_test(test_top_level),         cmocka_unit_test(test_partial),
        cmocka_unit_test(test_malformed),         cmocka_unit_test(test_path_is),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
