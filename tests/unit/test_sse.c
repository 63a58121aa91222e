/* test_sse.c - unit tests for shim/sse.c, the resumable text/event-stream framer.
 *
 * Each input is framed whole, split in two at every byte, and one byte at a time,
 * every piece copied so that it ends right before a PROT_NONE page. The events are
 * written down as a transcript in which consecutive value spans merge, so all the
 * ways of cutting the input must give the same text:
 *     F(name)   a field line starts          C:   a comment line starts
 *     value     the bytes of QS_SSE_VALUE    $\n  QS_SSE_LINE_END    E\n  QS_SSE_EVENT_END
 * Streams are DashScope's (research/dashscope-wire.md §3.1, §4.2, §4.3).
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "sse.h"

/* ---- guard-page arena ---- */

struct arena {
    char *map; /* the whole mapping */
    size_t map_len;
    char *guard; /* first byte of the PROT_NONE page */
    size_t cap;  /* usable bytes before it */
};

static int arena_setup(void **state)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    struct arena *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return -1;
    a->cap = 4 * page;
    a->map_len = a->cap + page;
    a->map = mmap(NULL, a->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a->map == MAP_FAILED)
        return -1;
    a->guard = a->map + a->cap;
    if (mprotect(a->guard, page, PROT_NONE) != 0)
        return -1;
    *state = a;
    return 0;
}

static int arena_teardown(void **state)
{
    struct arena *a = *state;
    munmap(a->map, a->map_len);
    free(a);
    return 0;
}

/* Copies <n> bytes of <s> so that they end right at the guard page. */
static const char *place(struct arena *a, const char *s, size_t n)
{
    assert_true(n <= a->cap);
    char *p = a->guard - n;
    if (n > 0)
        memcpy(p, s, n);
    return p;
}

/* Escapes the start of <s>/<n> for a failure message (one static buffer). */
static const char *show(const char *s, size_t n)
{
    static char out[256];
    size_t o = 0;
    for (size_t i = 0; i < n && o < sizeof(out) - 8; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n')
            o += (size_t)snprintf(out + o, sizeof(out) - o, c == '\r' ? "\\r" : "\\n");
        else if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
    return out;
}

/* An assertion inside a loop over inputs: on failure it names the input. */
#define CHECK(cond, s, n)                                                                                    \
    do {                                                                                                     \
        if (!(cond))                                                                                         \
            fail_msg("%s:%d: %s failed for \"%s\"", __FILE__, __LINE__, #cond, show((s), (n)));              \
    } while (0)

/* ---- transcript driver ---- */

struct transcript {
    char text[16384];
    size_t len;
};

static void put(struct transcript *t, const char *s, size_t n)
{
    assert_true(t->len + n < sizeof(t->text));
    memcpy(t->text + t->len, s, n);
    t->len += n;
}

/* Feeds one piece as the header says callers must: again with buf + consumed until
 * QS_SSE_NONE with everything consumed. Value spans must lie in the bytes the call
 * consumed, and a comment must come with an empty name. */
static void feed_piece(struct arena *a, struct qs_sse *sse, const char *s, size_t n, struct transcript *t)
{
    const char *p = place(a, s, n);
    size_t off = 0;
    for (size_t iter = 0;; iter++) {
        size_t used = 12345, vl = 12345;
        const char *v = NULL;
        /* Each byte yields at most a FIELD and a LINE_END or EVENT_END, plus the final NONE. */
        CHECK(iter <= 3 * n + 1, s, n);
        enum qs_sse_kind k = qs_sse_feed(sse, p + off, n - off, &used, &v, &vl);
        CHECK(used <= n - off, s, n);
        switch (k) {
        case QS_SSE_NONE:
            CHECK(used == n - off, s, n);
            return;
        case QS_SSE_FIELD:
            if (sse->is_comment) {
                CHECK(sse->name[0] == '\0', s, n);
                put(t, "C:", 2);
            } else {
                CHECK(strlen(sse->name) <= QS_SSE_NAME_MAX, s, n);
                put(t, "F(", 2);
                put(t, sse->name, strlen(sse->name));
                put(t, ")", 1);
            }
            break;
        case QS_SSE_VALUE:
            CHECK(vl > 0 && v >= p + off && v + vl <= p + off + used, s, n);
            put(t, v, vl);
            break;
        case QS_SSE_LINE_END:
            CHECK(used > 0, s, n);
            put(t, "$\n", 2);
            break;
        case QS_SSE_EVENT_END:
            CHECK(used > 0, s, n);
            put(t, "E\n", 2);
            break;
        default:
            fail_msg("unknown kind %d", (int)k);
        }
        off += used;
    }
}

/* Frames <in>/<n> whole, split at every offset, and byte by byte, each time from a
 * zeroed state; every transcript must be <want>/<want_len>. */
static void check_sse(struct arena *a, const char *in, size_t n, const char *want, size_t want_len)
{
    static struct transcript t;
    struct qs_sse sse;
    for (size_t way = 0; way <= n + 1; way++) {
        memset(&sse, 0, sizeof(sse));
        t.len = 0;
        if (way <= n) {
            feed_piece(a, &sse, in, way, &t);
            feed_piece(a, &sse, in + way, n - way, &t);
        } else {
            for (size_t i = 0; i < n; i++)
                feed_piece(a, &sse, in + i, 1, &t);
        }
        CHECK(t.len == want_len && memcmp(t.text, want, want_len) == 0, in, n);
    }
}

#define CHECK_SSE(a, in, want) check_sse((a), (in), sizeof(in) - 1, (want), sizeof(want) - 1)

/* ---- DashScope streams ---- */

/* cnblogs conversation-generation-message-sse, in its wire form (blank lines between
 * events, §4.2): native fields with no space after the colon. */
#define D1                                                                                                   \
    "{\"output\":{\"choices\":[{\"message\":{\"content\":\"\xe6\x82\xa8\",\"role\":\"assistant\"},"          \
    "\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":25,\"input_tokens\":24,\"output_tokens\":1}," \
    "\"request_id\":\"9188e907-56c2-9849-97f6-23f130f7fed7\"}"
#define D2                                                                                                   \
    "{\"output\":{\"choices\":[{\"message\":{\"content\":\"\xe5\x88\x9a\xe6\x89\x8d\",\"role\":"             \
    "\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":26,\"input_tokens\":24,"       \
    "\"output_tokens\":2},\"request_id\":\"9188e907-56c2-9849-97f6-23f130f7fed7\"}"
#define D6                                                                                                   \
    "{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"role\":\"assistant\"},\"finish_reason\":"    \
    "\"stop\"}]},\"usage\":{\"total_tokens\":33,\"input_tokens\":24,\"output_tokens\":9},\"request_id\":"    \
    "\"9188e907-56c2-9849-97f6-23f130f7fed7\"}"

static void test_native_stream(void **state)
{
    CHECK_SSE(*state,
              "id:1\nevent:result\n:HTTP_STATUS/200\ndata:" D1 "\n\n"
              "id:2\nevent:result\n:HTTP_STATUS/200\ndata:" D2 "\n\n"
              "id:6\nevent:result\n:HTTP_STATUS/200\ndata:" D6 "\n\n",
              "F(id)1$\nF(event)result$\nC:HTTP_STATUS/200$\nF(data)" D1 "$\nE\n"
              "F(id)2$\nF(event)result$\nC:HTTP_STATUS/200$\nF(data)" D2 "$\nE\n"
              "F(id)6$\nF(event)result$\nC:HTTP_STATUS/200$\nF(data)" D6 "$\nE\n");
}

/* cnblogs parameter-error-sse.response.body.txt exactly as stored: an error event
 * inside HTTP 200 (§3.1), with no blank line after it, so no event end. */
#define PARAM_ERR                                                                                            \
    "{\"code\":\"InvalidParameter\",\"message\":\"Role must be user or assistant and Content length must "   \
    "be greater than 0\",\"request_id\":\"7671ecd8-93cc-9ee9-bc89-739f0fd8b809\"}"

static void test_native_error_capture(void **state)
{
    CHECK_SSE(*state, "id:1\nevent:error\n:HTTP_STATUS/400\ndata:" PARAM_ERR "\n",
              "F(id)1$\nF(event)error$\nC:HTTP_STATUS/400$\nF(data)" PARAM_ERR "$\n");
}

/* The throttle the shim must catch: 429 as the first event of a 200 stream (§3.1,
 * QwenLM/qwen-code rateLimit.test.ts), as LF, CR LF and CR-only lines. */
#define THROTTLE                                                                                             \
    "{\"request_id\":\"70acdc21-a546-489a-b5d6-650df970a4ef\",\"code\":\"Throttling.AllocationQuota\","      \
    "\"message\":\"Allocated quota exceeded, please increase your quota limit.\"}"
#define THROTTLE_WANT "F(id)1$\nF(event)error$\nC:HTTP_STATUS/429$\nF(data)" THROTTLE "$\nE\n"

static void test_native_throttle(void **state)
{
    CHECK_SSE(*state, "id:1\nevent:error\n:HTTP_STATUS/429\ndata:" THROTTLE "\n\n", THROTTLE_WANT);
    CHECK_SSE(*state, "id:1\r\nevent:error\r\n:HTTP_STATUS/429\r\ndata:" THROTTLE "\r\n\r\n", THROTTLE_WANT);
    CHECK_SSE(*state, "id:1\revent:error\r:HTTP_STATUS/429\rdata:" THROTTLE "\r\r", THROTTLE_WANT);
    CHECK_SSE(*state, "id:1\r\nevent:error\r:HTTP_STATUS/429\ndata:" THROTTLE "\r\n\n", THROTTLE_WANT);
}

/* The compatible stream of §4.3: "data: " with one space, usage chunk, [DONE]. */
#define C1                                                                                                   \
    "{\"choices\":[{\"delta\":{\"content\":\"\",\"role\":\"assistant\"},\"index\":0,\"logprobs\":null,"      \
    "\"finish_reason\":null}],\"object\":\"chat.completion.chunk\",\"usage\":null,\"created\":1726132850,"   \
    "\"system_fingerprint\":null,\"model\":\"qwen-plus\",\"id\":"                                            \
    "\"chatcmpl-428b414f-fdd4-94c6-b179-8f576ad653a8\"}"
#define C2                                                                                                   \
    "{\"choices\":[{\"finish_reason\":\"stop\",\"delta\":{\"content\":\"\"},\"index\":0,\"logprobs\":null}]" \
    ","                                                                                                      \
    "\"object\":\"chat.completion.chunk\",\"usage\":null,\"created\":1726132850,\"system_fingerprint\":"     \
    "null,\"model\":\"qwen-plus\",\"id\":\"chatcmpl-428b414f-fdd4-94c6-b179-8f576ad653a8\"}"
#define C3                                                                                                   \
    "{\"choices\":[],\"object\":\"chat.completion.chunk\",\"usage\":{\"prompt_tokens\":22,"                  \
    "\"completion_tokens\":17,\"total_tokens\":39},\"created\":1726132850,\"system_fingerprint\":null,"      \
    "\"model\":\"qwen-plus\",\"id\":\"chatcmpl-428b414f-fdd4-94c6-b179-8f576ad653a8\"}"

static void test_compat_stream(void **state)
{
    CHECK_SSE(*state, "data: " C1 "\n\ndata: " C2 "\n\ndata: " C3 "\n\ndata: [DONE]\n\n",
              "F(data)" C1 "$\nE\nF(data)" C2 "$\nE\nF(data)" C3 "$\nE\nF(data)[DONE]$\nE\n");
    CHECK_SSE(*state, "data: " C3 "\r\n\r\ndata: [DONE]\r\n\r\n", "F(data)" C3 "$\nE\nF(data)[DONE]$\nE\n");
}

/* ---- framing details ---- */

static void test_fields(void **state)
{
    CHECK_SSE(*state, "", "");
    CHECK_SSE(*state, "data:x\n", "F(data)x$\n");
    CHECK_SSE(*state, "data: x\n", "F(data)x$\n");
    CHECK_SSE(*state, "data:  x \n", "F(data) x $\n"); /* only one space is dropped */
    CHECK_SSE(*state, "data:\tx\n", "F(data)\tx$\n");
    CHECK_SSE(*state, "data:\n", "F(data)$\n");
    CHECK_SSE(*state, "data: \n", "F(data)$\n");
    CHECK_SSE(*state, "event:a:b\n", "F(event)a:b$\n"); /* only the first colon splits */
    CHECK_SSE(*state, "retry:3000\n\n", "F(retry)3000$\nE\n");
    /* No colon: the whole line is the name, the value is empty. */
    CHECK_SSE(*state, "data\n\n", "F(data)$\nE\n");
    CHECK_SSE(*state, "data\r\nid\rx\n", "F(data)$\nF(id)$\nF(x)$\n");
    CHECK_SSE(*state, "data x\n", "F(data x)$\n");
    /* Comments keep everything after the colon, the space included. */
    CHECK_SSE(*state, ": ping\n\n", "C: ping$\nE\n");
    CHECK_SSE(*state, ":\n", "C:$\n");
    CHECK_SSE(*state, "::x\n", "C::x$\n");
    /* Names longer than QS_SSE_NAME_MAX are cut; the value is unaffected. */
    CHECK_SSE(*state, "abcdefghijklmno:v\n", "F(abcdefghijklmno)v$\n");
    CHECK_SSE(*state, "abcdefghijklmnopqrstuvwxyz:v\n", "F(abcdefghijklmno)v$\n");
    CHECK_SSE(*state, "abcdefghijklmnopqrstuvwxyz\n", "F(abcdefghijklmno)$\n");
    /* Bytes other than CR and LF pass through as they are. */
    CHECK_SSE(*state, "data:a\0b\xff\n", "F(data)a\0b\xff$\n");
    /* An unfinished line reports what it can: a value so far, but no name before its end. */
    CHECK_SSE(*state, "data:abc", "F(data)abc");
    CHECK_SSE(*state, "data", "");
    CHECK_SSE(*state, "data:", "F(data)");
}

/* Blank lines in every line-end style; a CR LF is one line end even when cut. */
static void test_line_ends(void **state)
{
    CHECK_SSE(*state, "\n\n\n", "E\nE\nE\n");
    CHECK_SSE(*state, "\r\n\r\n", "E\nE\n");
    CHECK_SSE(*state, "\r\r", "E\nE\n");
    CHECK_SSE(*state, "\n\r\n", "E\nE\n");
    CHECK_SSE(*state, "\r\n\n", "E\nE\n");
    CHECK_SSE(*state, "\n\r", "E\nE\n");
    CHECK_SSE(*state, "\r\n\r", "E\nE\n");
    CHECK_SSE(*state, "data:x\r\r\n", "F(data)x$\nE\n");
    CHECK_SSE(*state, "data:x\n\r\n", "F(data)x$\nE\n");
    CHECK_SSE(*state, "data:x\r\n\r\nid:2\r\n", "F(data)x$\nE\nF(id)2$\n");
    CHECK_SSE(*state, "data:x\r\ndata:y\rdata:z\n\r", "F(data)x$\nF(data)y$\nF(data)z$\nE\n");
    /* A CR LF is never two line ends, but LF CR is. */
    CHECK_SSE(*state, "data:x\n\rid:1\n", "F(data)x$\nE\nF(id)1$\n");
}

/* A data line far longer than any feed streams through in spans, never buffered. */
static void test_long_value(void **state)
{
    static char in[3000], want[3100];
    memcpy(in, "data:", 5);
    for (size_t i = 5; i < sizeof(in) - 2; i++)
        in[i] = (char)('a' + i % 26);
    in[sizeof(in) - 2] = '\n';
    in[sizeof(in) - 1] = '\n';
    int n = snprintf(want, sizeof(want), "F(data)%.*s$\nE\n", (int)sizeof(in) - 7, in + 5);
    assert_true(n > 0 && (size_t)n < sizeof(want));
    check_sse(*state, in, sizeof(in), want, (size_t)n);

    /* One feed: the whole value is a single span pointing into the input. */
    struct qs_sse sse;
    size_t used, vl;
    const char *v;
    const char *p = place(*state, in, sizeof(in));
    memset(&sse, 0, sizeof(sse));
    assert_int_equal(qs_sse_feed(&sse, p, sizeof(in), &used, &v, &vl), QS_SSE_FIELD);
    assert_int_equal(used, 5);
    assert_int_equal(qs_sse_feed(&sse, p + 5, sizeof(in) - 5, &used, &v, &vl), QS_SSE_VALUE);
    assert_ptr_equal(v, p + 5);
    assert_int_equal(vl, sizeof(in) - 7);
    assert_int_equal(used, sizeof(in) - 7);
}

/* What a caller sees call by call, including the two cases that consume nothing or
 * span feeds: a colon-less name ended by the next feed, and a CR LF cut in two. */
static void test_calls(void **state)
{
    struct qs_sse sse;
    size_t used, vl;
    const char *v, *p;
    memset(&sse, 0, sizeof(sse));

    p = place(*state, "eve", 3);
    assert_int_equal(qs_sse_feed(&sse, p, 3, &used, &v, &vl), QS_SSE_NONE);
    assert_int_equal(used, 3);
    p = place(*state, "nt:error\r", 9);
    assert_int_equal(qs_sse_feed(&sse, p, 9, &used, &v, &vl), QS_SSE_FIELD);
    assert_int_equal(used, 3);
    assert_string_equal(sse.name, "event");
    assert_int_equal(sse.is_comment, 0);
    assert_int_equal(qs_sse_feed(&sse, p + 3, 6, &used, &v, &vl), QS_SSE_VALUE);
    assert_ptr_equal(v, p + 3);
    assert_int_equal(vl, 5);
    assert_int_equal(used, 5);
    assert_int_equal(qs_sse_feed(&sse, p + 8, 1, &used, &v, &vl), QS_SSE_LINE_END);
    assert_int_equal(used, 1);
    assert_int_equal(qs_sse_feed(&sse, p + 9, 0, &used, &v, &vl), QS_SSE_NONE);
    assert_int_equal(used, 0);

    /* The LF completing that CR is skipped; then ":HTTP_STATUS/429" and a colon-less "data". */
    p = place(*state, "\n:HTTP_STATUS/429\ndata", 22);
    assert_int_equal(qs_sse_feed(&sse, p, 22, &used, &v, &vl), QS_SSE_FIELD);
    assert_int_equal(used, 2);
    assert_int_equal(sse.is_comment, 1);
    assert_string_equal(sse.name, "");
    assert_int_equal(qs_sse_feed(&sse, p + 2, 20, &used, &v, &vl), QS_SSE_VALUE);
    assert_int_equal(vl, 15);
    assert_memory_equal(v, "HTTP_STATUS/429", 15);
    assert_int_equal(qs_sse_feed(&sse, p + 17, 5, &used, &v, &vl), QS_SSE_LINE_END);
    assert_int_equal(qs_sse_feed(&sse, p + 18, 4, &used, &v, &vl), QS_SSE_NONE);
    assert_int_equal(used, 4);
    p = place(*state, "\n\n", 2);
    assert_int_equal(qs_sse_feed(&sse, p, 2, &used, &v, &vl), QS_SSE_FIELD);
    assert_int_equal(used, 0); /* the LF is left for the LINE_END */
    assert_string_equal(sse.name, "data");
    assert_int_equal(sse.is_comment, 0);
    assert_int_equal(qs_sse_feed(&sse, p, 2, &used, &v, &vl), QS_SSE_LINE_END);
    assert_int_equal(used, 1);
    assert_int_equal(qs_sse_feed(&sse, p + 1, 1, &used, &v, &vl), QS_SSE_EVENT_END);
    assert_int_equal(used, 1);
    assert_int_equal(qs_sse_feed(&sse, p + 2, 0, &used, &v, &vl), QS_SSE_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_native_stream),   cmocka_unit_test(test_native_error_capture),
        cmocka_unit_test(test_native_throttle), cmocka_unit_test(test_compat_stream),
        cmocka_unit_test(test_fields),          cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_long_value),      cmocka_unit_test(test_calls),
    };
    return cmocka_run_group_tests(tests, arena_setup, arena_teardown);
}
