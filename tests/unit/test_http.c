/* test_http.c - unit tests for shim/http.c: heads, framing facts, Retry-After, body decoding.
 *
 * Every input is copied so that it ends right before a PROT_NONE page (picohttpparser's
 * test.c trick), so any read past <len> faults. Heads are parsed at every prefix (each
 * must be QS_PARTIAL until the head is complete); bodies are fed whole, split in two at
 * every byte, and one byte at a time, and must decode to the same payload each way.
 * Inputs are DashScope captures (research/dashscope-wire.md §3.1, §3.3, §4.2, §4.3;
 * cnblogs/dashscope-sdk RawHttpData, whose header files are stored with LF-only lines).
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http.h"

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
    a->cap = 16 * page;
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

static void assert_span(const char *p, size_t n, const char *want)
{
    assert_non_null(p);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(p, want, n);
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

/* Converts LF line ends to CR LF (the stored captures lost their CRs). */
static size_t crlf(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s != '\0'; s++) {
        if (*s == '\n')
            out[o++] = '\r';
        out[o++] = *s;
        assert_true(o < cap);
    }
    out[o] = '\0';
    return o;
}

/* ---- head drivers ---- */

/* Parses <s>/<n> as a request at every prefix length. A well-formed head of H bytes
 * must give QS_PARTIAL for every prefix shorter than H and H for every longer one
 * (bytes after the head are body). A malformed one must give QS_EBAD in full, and its
 * prefixes QS_PARTIAL until some point and QS_EBAD from there on. The last parse is of
 * the whole input into <req>, which is filled with junk first so that a missing reset
 * shows; its pointers stay valid until the next place(). */
static int req_all(struct arena *a, const char *s, size_t n, struct qs_http_request *req)
{
    static struct qs_http_request scratch;
    int full = qs_http_parse_request(place(a, s, n), n, &scratch);
    int seen_bad = 0;
    CHECK(full > 0 || full == QS_EBAD, s, n);
    for (size_t k = 0; k < n; k++) {
        int rc = qs_http_parse_request(place(a, s, k), k, &scratch);
        if (full > 0) {
            CHECK(rc == (k < (size_t)full ? QS_PARTIAL : full), s, k);
        } else {
            CHECK(rc == QS_PARTIAL || rc == QS_EBAD, s, k);
            CHECK(!seen_bad || rc == QS_EBAD, s, k);
            seen_bad = rc == QS_EBAD;
        }
    }
    memset(req, 0x5a, sizeof(*req));
    int rc = qs_http_parse_request(place(a, s, n), n, req);
    CHECK(rc == full, s, n);
    return rc;
}

/* Same for a response answering <method> (may be NULL). */
static int resp_all(struct arena *a, const char *s, size_t n, const char *method,
                    struct qs_http_response *resp)
{
    static struct qs_http_response scratch;
    size_t ml = method != NULL ? strlen(method) : 0;
    int full = qs_http_parse_response(place(a, s, n), n, method, ml, &scratch);
    int seen_bad = 0;
    CHECK(full > 0 || full == QS_EBAD, s, n);
    for (size_t k = 0; k < n; k++) {
        int rc = qs_http_parse_response(place(a, s, k), k, method, ml, &scratch);
        if (full > 0) {
            CHECK(rc == (k < (size_t)full ? QS_PARTIAL : full), s, k);
        } else {
            CHECK(rc == QS_PARTIAL || rc == QS_EBAD, s, k);
            CHECK(!seen_bad || rc == QS_EBAD, s, k);
            seen_bad = rc == QS_EBAD;
        }
    }
    memset(resp, 0x5a, sizeof(*resp));
    int rc = qs_http_parse_response(place(a, s, n), n, method, ml, resp);
    CHECK(rc == full, s, n);
    return rc;
}

#define REQ(a, lit, req) req_all((a), (lit), sizeof(lit) - 1, (req))
#define RESP(a, lit, method, resp) resp_all((a), (lit), sizeof(lit) - 1, (method), (resp))

static struct qs_http_request g_req; /* 3 KiB each: kept off the cmocka stack */
static struct qs_http_response g_resp;

/* ---- request heads ---- */

/* Request headers of a native streaming call as dashscope-python 1.26.2 sends them
 * (§2.1; http_request.py), CRLF, with its JSON body after the head. */
#define NATIVE_BODY                                                                                          \
    "{\"model\": \"qwen-plus\", \"parameters\": {\"stream\": true, \"incremental_output\": true}, "          \
    "\"input\": {\"messages\": [{\"role\": \"user\", \"content\": \"\xe4\xbd\xa0\xe5\xa5\xbd\"}]}}"
#define NATIVE_HEAD                                                                                          \
    "POST /api/v1/services/aigc/text-generation/generation HTTP/1.1\r\n"                                     \
    "Host: dashscope.aliyuncs.com\r\n"                                                                       \
    "user-agent: dashscope/1.26.2; python/3.11.7; platform/Linux-6.1.0-x86_64-with-glibc2.36; "              \
    "processor/; incremental_to_full/0\r\n"                                                                  \
    "Accept-Encoding: gzip, deflate\r\n"                                                                     \
    "Accept: text/event-stream\r\n"                                                                          \
    "Connection: keep-alive\r\n"                                                                             \
    "Authorization: Bearer sk-test-0123456789abcdef\r\n"                                          \
    "Content-Type: application/json; charset=utf-8\r\n"                                                      \
    "X-Accel-Buffering: no\r\n"                                                                              \
    "X-DashScope-SSE: enable\r\n"                                                                            \
    "Content-Length: 146\r\n"                                                                                \
    "\r\n"

static void test_req_native_sse(void **state)
{
    struct qs_http_request *r = &g_req;
    assert_int_equal(sizeof(NATIVE_BODY) - 1, 146);
    int head = REQ(*state, NATIVE_HEAD NATIVE_BODY, r);
    assert_int_equal(head, sizeof(NATIVE_HEAD) - 1);
    assert_span(r->method, r->method_len, "POST");
    assert_span(r->path, r->path_len, "/api/v1/services/aigc/text-generation/generation");
    assert_int_equal(r->minor_version, 1);
    assert_span(r->host, r->host_len, "dashscope.aliyuncs.com");
    assert_int_equal(r->body_mode, QS_BODY_LENGTH);
    assert_int_equal(r->content_length, 146);
    assert_int_equal(r->sse, 1);
    assert_int_equal(r->expect_continue, 0);
    assert_int_equal(r->connection_close, 0);
    assert_int_equal(r->num_headers, 10);
    assert_span(r->headers[1].name, r->headers[1].name_len, "user-agent");
    assert_span(r->headers[2].value, r->headers[2].value_len, "gzip, deflate");
    assert_span(r->headers[9].name, r->headers[9].name_len, "Content-Length");
    assert_span(r->headers[9].value, r->headers[9].value_len, "146");
}

/* cnblogs conversation-generation-message-sse.request.header.txt, exactly as stored
 * (LF-only lines), then the same head with CR LF. */
static const char cnblogs_req[] = "POST /api/v1/services/aigc/text-generation/generation HTTP/1.1\n"
                                  "Accept: text/event-stream\n"
                                  "Content-Type: application/json\n"
                                  "Cache-Control: no-cache\n"
                                  "Host: dashscope.aliyuncs.com\n"
                                  "Accept-Encoding: gzip, deflate, br\n"
                                  "Connection: keep-alive\n"
                                  "Content-Length: 829\n"
                                  "\n";

static void check_cnblogs_req(const struct qs_http_request *r)
{
    assert_span(r->method, r->method_len, "POST");
    assert_span(r->path, r->path_len, "/api/v1/services/aigc/text-generation/generation");
    assert_span(r->host, r->host_len, "dashscope.aliyuncs.com");
    assert_int_equal(r->body_mode, QS_BODY_LENGTH);
    assert_int_equal(r->content_length, 829);
    assert_int_equal(r->sse, 0); /* this SDK asks with Accept only */
    assert_int_equal(r->connection_close, 0);
    assert_int_equal(r->num_headers, 7);
    assert_span(r->headers[6].value, r->headers[6].value_len, "829");
}

static void test_req_capture_lf_and_crlf(void **state)
{
    char buf[1024];
    size_t n;
    assert_int_equal(REQ(*state, cnblogs_req, &g_req), sizeof(cnblogs_req) - 1);
    check_cnblogs_req(&g_req);
    n = crlf(buf, sizeof(buf), cnblogs_req);
    assert_int_equal(req_all(*state, buf, n, &g_req), (int)n);
    check_cnblogs_req(&g_req);
}

/* openai-python 3.3.1 on the compatible route (§2.3), with its body. */
#define COMPAT_BODY                                                                                          \
    "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"model\":\"qwen-plus\",\"stream\":true,"        \
    "\"stream_options\":{\"include_usage\":true}}"
#define COMPAT_HEAD                                                                                          \
    "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\n"                                                 \
    "Host: dashscope.aliyuncs.com\r\n"                                                                       \
    "Accept-Encoding: gzip, deflate\r\n"                                                                     \
    "Connection: keep-alive\r\n"                                                                             \
    "Accept: application/json\r\n"                                                                           \
    "Content-Type: application/json\r\n"                                                                     \
    "User-Agent: OpenAI/Python 3.3.1\r\n"                                                                    \
    "X-Stainless-Lang: python\r\n"                                                                           \
    "X-Stainless-Package-Version: 3.3.1\r\n"                                                                 \
    "X-Stainless-OS: Linux\r\n"                                                                              \
    "X-Stainless-Arch: x64\r\n"                                                                              \
    "X-Stainless-Runtime: CPython\r\n"                                                                       \
    "X-Stainless-Runtime-Version: 3.11.7\r\n"                                                                \
    "Authorization: Bearer sk-test-0123456789abcdef\r\n"                                          \
    "X-Stainless-Async: false\r\n"                                                                           \
    "x-stainless-retry-count: 0\r\n"                                                                         \
    "x-stainless-read-timeout: 600\r\n"                                                                      \
    "Content-Length: 119\r\n"                                                                                \
    "\r\n"

static void test_req_openai_compat(void **state)
{
    struct qs_http_request *r = &g_req;
    assert_int_equal(sizeof(COMPAT_BODY) - 1, 119);
    assert_int_equal(REQ(*state, COMPAT_HEAD COMPAT_BODY, r), sizeof(COMPAT_HEAD) - 1);
    assert_span(r->path, r->path_len, "/compatible-mode/v1/chat/completions");
    assert_int_equal(r->body_mode, QS_BODY_LENGTH);
    assert_int_equal(r->content_length, 119);
    assert_int_equal(r->sse, 0);
    assert_int_equal(r->num_headers, 17);
    const struct qs_http_header *h =
        qs_http_find_header(r->headers, r->num_headers, "X-STAINLESS-RETRY-COUNT");
    assert_non_null(h);
    assert_span(h->value, h->value_len, "0");
}

/* curl sends Expect: 100-continue for large POSTs; the shim must not wait for a body then. */
static void test_req_expect(void **state)
{
    struct qs_http_request *r = &g_req;
    REQ(*state,
        "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\n"
        "Host: dashscope-intl.aliyuncs.com\r\n"
        "User-Agent: curl/7.88.1\r\n"
        "Accept: */*\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: 2000000\r\n"
        "Expect: 100-continue\r\n"
        "\r\n",
        r);
    assert_int_equal(r->expect_continue, 1);
    assert_int_equal(r->content_length, 2000000);
    assert_span(r->host, r->host_len, "dashscope-intl.aliyuncs.com");

    REQ(*state, "POST / HTTP/1.1\r\nexpect:   100-Continue  \r\nContent-Length: 1\r\n\r\n", r);
    assert_int_equal(r->expect_continue, 1);
    REQ(*state, "POST / HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n", r);
    assert_int_equal(r->expect_continue, 0);
    REQ(*state, "POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\n", r);
    assert_int_equal(r->expect_continue, 0);
}

static void test_req_chunked(void **state)
{
    struct qs_http_request *r = &g_req;
    /* httpx streams a generator body this way. */
#define CHUNKED_HEAD                                                                                         \
    "POST /compatible-mode/v1/embeddings HTTP/1.1\r\n"                                                       \
    "Host: dashscope.aliyuncs.com\r\n"                                                                       \
    "Transfer-Encoding: chunked\r\n"                                                                         \
    "\r\n"
    assert_int_equal(REQ(*state, CHUNKED_HEAD "5\r\nhello\r\n0\r\n\r\n", r), sizeof(CHUNKED_HEAD) - 1);
#undef CHUNKED_HEAD
    assert_int_equal(r->body_mode, QS_BODY_CHUNKED);
    assert_int_equal(r->content_length, 0);

    /* Codings listed over two header lines form one list; chunked is last. */
    REQ(*state, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\ntransfer-encoding: CHUNKED\r\n\r\n", r);
    assert_int_equal(r->body_mode, QS_BODY_CHUNKED);
    REQ(*state, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, , chunked\r\n\r\n", r);
    assert_int_equal(r->body_mode, QS_BODY_CHUNKED);

    /* A request whose last coding is not chunked has no knowable length. */
    assert_int_equal(REQ(*state, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", r), QS_EBAD);
    assert_int_equal(REQ(*state, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", r), QS_EBAD);
    assert_int_equal(REQ(*state, "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", r), QS_EBAD);
    assert_int_equal(REQ(*state, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", r),
                     QS_EBAD);
    assert_int_equal(REQ(*state, "POST / HTTP/1.1\r\nTransfer-Encoding: chunkedx\r\n\r\n", r), QS_EBAD);
    assert_int_equal(REQ(*state, "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", r), QS_EBAD);
    /* Both framings: a smuggling signal. */
    assert_int_equal(
        REQ(*state, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", r),
        QS_EBAD);
    assert_int_equal(
        REQ(*state, "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", r),
        QS_EBAD);
}

static void test_req_connection(void **state)
{
    struct qs_http_request *r = &g_req;
    REQ(*state, "GET /api/v1/tasks HTTP/1.0\r\nHost: dashscope.aliyuncs.com\r\n\r\n", r);
    assert_int_equal(r->minor_version, 0);
    assert_int_equal(r->connection_close, 1);
    REQ(*state, "GET /api/v1/tasks HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", r);
    assert_int_equal(r->connection_close, 0);
    REQ(*state, "GET /api/v1/tasks HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", r);
    assert_int_equal(r->connection_close, 1);
    REQ(*state, "GET / HTTP/1.1\r\n\r\n", r);
    assert_int_equal(r->minor_version, 1);
    assert_int_equal(r->connection_close, 0);
    REQ(*state, "GET / HTTP/1.1\r\nConnection: CLOSE\r\n\r\n", r);
    assert_int_equal(r->connection_close, 1);
    REQ(*state, "GET / HTTP/1.1\r\nConnection: Upgrade\r\nConnection: te,close\r\n\r\n", r);
    assert_int_equal(r->connection_close, 1);
    REQ(*state, "GET / HTTP/1.1\r\nConnection: closed, keep-alive\r\n\r\n", r);
    assert_int_equal(r->connection_close, 0);
    REQ(*state, "GET / HTTP/1.1\r\nX-Connection: close\r\n\r\n", r);
    assert_int_equal(r->connection_close, 0);
}

/* Task polls carry no body (§1.3); neither does any request without framing headers. */
static void test_req_no_body(void **state)
{
    struct qs_http_request *r = &g_req;
    REQ(*state,
        "GET /api/v1/tasks/9e2b6ef6-285d-4efa-8651-4dbda7d571fa HTTP/1.1\r\n"
        "Host: dashscope.aliyuncs.com\r\n"
        "Authorization: Bearer sk-test-0123\r\n"
        "\r\n",
        r);
    assert_span(r->method, r->method_len, "GET");
    assert_span(r->path, r->path_len, "/api/v1/tasks/9e2b6ef6-285d-4efa-8651-4dbda7d571fa");
    assert_int_equal(r->body_mode, QS_BODY_NONE);
    assert_int_equal(r->content_length, 0);

    REQ(*state, "POST /api/v1/tasks/x/cancel HTTP/1.1\r\n\r\n", r);
    assert_int_equal(r->body_mode, QS_BODY_NONE);
    assert_null(r->host);
    assert_int_equal(r->host_len, 0);
    assert_int_equal(r->num_headers, 0);
    REQ(*state, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", r);
    assert_int_equal(r->body_mode, QS_BODY_LENGTH);
    assert_int_equal(r->content_length, 0);
}

/* LF-only and mixed line ends, blank trimming, the absolute form seen in the bruno
 * capture (create-batch-compatible-nosse), and one leading empty line. */
static void test_req_lenient(void **state)
{
    struct qs_http_request *r = &g_req;
    REQ(*state,
        "POST /compatible-mode/v1/batches HTTP/1.1\n"
        "Host:dashscope.aliyuncs.com\r\n"
        "content-type: \t application/json \t\n"
        "X-Empty:\n"
        "X-Spaces:    \r\n"
        "\n",
        r);
    assert_span(r->host, r->host_len, "dashscope.aliyuncs.com");
    assert_int_equal(r->num_headers, 4);
    assert_span(r->headers[1].value, r->headers[1].value_len, "application/json");
    assert_int_equal(r->headers[2].value_len, 0);
    assert_int_equal(r->headers[3].value_len, 0);

    REQ(*state, "POST https://dashscope.aliyuncs.com/compatible-mode/v1/batches HTTP/1.1\r\n\r\n", r);
    assert_span(r->path, r->path_len, "https://dashscope.aliyuncs.com/compatible-mode/v1/batches");

    assert_int_equal(REQ(*state, "\r\nGET / HTTP/1.1\r\n\r\n", r), 20);
    assert_span(r->method, r->method_len, "GET");
    assert_int_equal(REQ(*state, "\nGET / HTTP/1.1\n\n", r), 17);
    assert_int_equal(REQ(*state, "GET  /x  HTTP/1.1\r\n\r\n", r), 21);
    assert_span(r->path, r->path_len, "/x");

    /* Header values may carry obs-text (UTF-8 here) and HTAB. */
    REQ(*state, "GET / HTTP/1.1\r\nX-Name: \xe9\x80\x9a\xe4\xb9\x89\tqwen\r\n\r\n", r);
    assert_span(r->headers[0].value, r->headers[0].value_len, "\xe9\x80\x9a\xe4\xb9\x89\tqwen");
}

static void test_req_content_length(void **state)
{
    struct qs_http_request *r = &g_req;
    REQ(*state, "POST / HTTP/1.1\r\nContent-Length: 42\r\ncontent-length: 42\r\n\r\n", r);
    assert_int_equal(r->content_length, 42);
    REQ(*state, "POST / HTTP/1.1\r\nContent-Length: 42, 42\r\n\r\n", r);
    assert_int_equal(r->content_length, 42);
    REQ(*state, "POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n", r);
    assert_true(r->content_length == UINT64_MAX);
    REQ(*state, "POST / HTTP/1.1\r\nContent-Length: 007\r\n\r\n", r);
    assert_int_equal(r->content_length, 7);

    static const char *const bad[] = {
        "POST / HTTP/1.1\r\nContent-Length: 42\r\nContent-Length: 43\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 42, 43\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(req_all(*state, bad[i], strlen(bad[i]), r) == QS_EBAD, bad[i], strlen(bad[i]));
}

/* Malformed request heads. Bytes that are only wrong once their line is complete
 * make the parse QS_EBAD from that line's LF on (checked by req_all). */
static void test_req_bad(void **state)
{
    static const struct {
        const char *s;
        size_t n;
    } bad[] = {
#define B(lit) {lit, sizeof(lit) - 1}
        B("GET /\x01 HTTP/1.1\r\n\r\n"), /* control byte in the target */
        B("GET /\x7f HTTP/1.1\r\n\r\n"),
        B("GET /a\tb HTTP/1.1\r\n\r\n"),
        B("GET /\0 HTTP/1.1\r\n\r\n"),
        B("G\x01T / HTTP/1.1\r\n\r\n"), /* control byte in the method */
        B("GET / HTTP/1.1\r\r\n\r\n"),  /* bare CR */
        B("GET / HTTP/1.1\rX: y\r\n\r\n"),
        B("GET\r\n\r\n"),
        B("GET /\r\n\r\n"), /* HTTP/0.9 */
        B("GET / \r\n\r\n"),
        B(" GET / HTTP/1.1\r\n\r\n"),
        B("/ HTTP/1.1\r\n\r\n"),
        B("GET / HTTP/2.0\r\n\r\n"),
        B("GET / HTTP/1.2\r\n\r\n"),
        B("GET / http/1.1\r\n\r\n"),
        B("GET / HTTP/1.1 \r\n\r\n"),
        B("GET / HTTP/1.10\r\n\r\n"),
        B("GET / HTTP/1.\r\n\r\n"),
        B("G(T / HTTP/1.1\r\n\r\n"),                      /* '(' is not a tchar */
        B("GET / HTTP/1.1\r\nHost\r\n\r\n"),              /* header without colon */
        B("GET / HTTP/1.1\r\nHost : x\r\n\r\n"),          /* blank before the colon */
        B("GET / HTTP/1.1\r\n: x\r\n\r\n"),               /* empty name */
        B("GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n"), /* obs-fold */
        B("GET / HTTP/1.1\r\nX-A: a\x01z\r\n\r\n"),       /* control byte in a value */
        B("GET / HTTP/1.1\r\nX-A: a\0z\r\n\r\n"),
        B("GET / HTTP/1.1\r\nX-A: a\rz\r\n\r\n"),
        B("GET / HTTP/1.1\r\nX-A: a\x7fz\r\n\r\n"),
        B("GET / HTTP/1.1\r\nX\x80Y: 1\r\n\r\n"), /* obs-text in a name */
        B("GET / HTTP/1.1\r\n\r\r\n"),            /* "\r\r\n" is not a blank line */
        B("\r\n\r\nGET / HTTP/1.1\r\n\r\n"),      /* only one leading empty line */
        B("\rGET / HTTP/1.1\r\n\r\n"),
#undef B
    };
    struct qs_http_request *r = &g_req;
    assert_int_equal(REQ(*state, "GET / HTTP/1.1\r\n\r\n\x01", r), 18); /* fine: the \x01 is body */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(req_all(*state, bad[i].s, bad[i].n, r) == QS_EBAD, bad[i].s, bad[i].n);
}

/* Builds a head with <n> "X-Hdr-i: i" headers. */
static size_t many_headers(char *buf, size_t cap, const char *start, int n)
{
    size_t o = (size_t)snprintf(buf, cap, "%s\r\n", start);
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(buf + o, cap - o, "X-Hdr-%d: %d\r\n", i, i);
    o += (size_t)snprintf(buf + o, cap - o, "\r\n");
    assert_true(o < cap);
    return o;
}

static void test_max_headers(void **state)
{
    char buf[4096];
    size_t n = many_headers(buf, sizeof(buf), "POST / HTTP/1.1", QS_HTTP_MAX_HEADERS);
    assert_int_equal(req_all(*state, buf, n, &g_req), (int)n);
    assert_int_equal(g_req.num_headers, QS_HTTP_MAX_HEADERS);
    assert_span(g_req.headers[99].name, g_req.headers[99].name_len, "X-Hdr-99");
    n = many_headers(buf, sizeof(buf), "POST / HTTP/1.1", QS_HTTP_MAX_HEADERS + 1);
    assert_int_equal(req_all(*state, buf, n, &g_req), QS_EBAD);

    n = many_headers(buf, sizeof(buf), "HTTP/1.1 200 OK", QS_HTTP_MAX_HEADERS);
    assert_int_equal(resp_all(*state, buf, n, NULL, &g_resp), (int)n);
    assert_int_equal(g_resp.num_headers, QS_HTTP_MAX_HEADERS);
    n = many_headers(buf, sizeof(buf), "HTTP/1.1 200 OK", QS_HTTP_MAX_HEADERS + 1);
    assert_int_equal(resp_all(*state, buf, n, NULL, &g_resp), QS_EBAD);
}

static void test_find_header(void **state)
{
    struct qs_http_request *r = &g_req;
    REQ(*state, "GET / HTTP/1.1\r\nX-DashScope-SSE: enable\r\nx-dashscope-sse: disable\r\nHost: h\r\n\r\n",
        r);
    const struct qs_http_header *h = qs_http_find_header(r->headers, r->num_headers, "x-dashscope-sse");
    assert_ptr_equal(h, &r->headers[0]);
    assert_span(h->value, h->value_len, "enable");
    assert_ptr_equal(qs_http_find_header(r->headers, r->num_headers, "HOST"), &r->headers[2]);
    assert_null(qs_http_find_header(r->headers, r->num_headers, "Hos"));
    assert_null(qs_http_find_header(r->headers, r->num_headers, "Hostx"));
    assert_null(qs_http_find_header(r->headers, 0, "Host"));
    assert_int_equal(r->sse, 1);

    REQ(*state, "GET / HTTP/1.1\r\nX-DashScope-SSE: ENABLE\r\n\r\n", r);
    assert_int_equal(r->sse, 1);
    REQ(*state, "GET / HTTP/1.1\r\nX-DashScope-SSE: disable\r\nX-DashScope-Async: enable\r\n\r\n", r);
    assert_int_equal(r->sse, 0);
}

/* ---- response heads ---- */

/* cnblogs parameter-error-sse.response.header.txt as stored (LF-only). */
static const char cnblogs_sse_resp[] = "HTTP/1.1 200 OK\n"
                                       "eagleeye-traceid: d7f0c8626e36534247f3d416fd2e2b43\n"
                                       "x-request-id: 7671ecd8-93cc-9ee9-bc89-739f0fd8b809\n"
                                       "content-type: text/event-stream;charset=UTF-8\n"
                                       "x-dashscope-call-gateway: true\n"
                                       "content-encoding: gzip\n"
                                       "req-cost-time: 98\n"
                                       "req-arrive-time: 1708955688754\n"
                                       "resp-start-time: 1708955688852\n"
                                       "x-envoy-upstream-service-time: 91\n"
                                       "date: Mon, 26 Feb 2024 13:54:48 GMT\n"
                                       "server: istio-envoy\n"
                                       "transfer-encoding: chunked\n"
                                       "\n";

/* cnblogs get-task-test-running-nosse.response.header.txt as stored. */
static const char cnblogs_json_resp[] = "HTTP/1.1 200 OK\n"
                                        "server: istio-envoy\n"
                                        "date: Fri, 01 Mar 2024 09:38:37 GMT\n"
                                        "content-type: application/json;charset=UTF-8\n"
                                        "vary: Accept-Encoding\n"
                                        "content-encoding: gzip\n"
                                        "req-cost-time: 27\n"
                                        "req-arrive-time: 1709285917033\n"
                                        "resp-start-time: 1709285917060\n"
                                        "x-envoy-upstream-service-time: 21\n"
                                        "transfer-encoding: chunked\n"
                                        "\n";

static void check_sse_resp(const struct qs_http_response *r)
{
    assert_int_equal(r->status, 200);
    assert_int_equal(r->minor_version, 1);
    assert_span(r->reason, r->reason_len, "OK");
    assert_int_equal(r->body_mode, QS_BODY_CHUNKED);
    assert_int_equal(r->event_stream, 1);
    assert_int_equal(r->connection_close, 0);
    assert_int_equal(r->retry_after_ms, -1);
    assert_int_equal(r->num_headers, 12);
    assert_span(r->headers[9].value, r->headers[9].value_len, "Mon, 26 Feb 2024 13:54:48 GMT");
}

static void test_resp_captures(void **state)
{
    char buf[1024];
    size_t n;
    struct qs_http_response *r = &g_resp;
    assert_int_equal(RESP(*state, cnblogs_sse_resp, NULL, r), sizeof(cnblogs_sse_resp) - 1);
    check_sse_resp(r);
    n = crlf(buf, sizeof(buf), cnblogs_sse_resp);
    assert_int_equal(resp_all(*state, buf, n, "POST", r), (int)n);
    check_sse_resp(r);

    assert_int_equal(RESP(*state, cnblogs_json_resp, "POST", r), sizeof(cnblogs_json_resp) - 1);
    assert_int_equal(r->body_mode, QS_BODY_CHUNKED);
    assert_int_equal(r->event_stream, 0);
    n = crlf(buf, sizeof(buf), cnblogs_json_resp);
    assert_int_equal(resp_all(*state, buf, n, "GET", r), (int)n);
    assert_int_equal(r->event_stream, 0);
}

/* Compatible-mode TPM throttle body (§3.3, "ALIYUN_QUOTA_BODY"); the headers are what
 * the 200s carry (§3.4) plus the Connection: close that qshim-mock sends on 429. */
#define QUOTA_BODY                                                                                           \
    "{\"error\":{\"code\":\"insufficient_quota\",\"message\":\"You exceeded your current quota, please "     \
    "check your plan and billing details. For details, see: "                                                \
    "https://help.aliyun.com/zh/model-studio/error-code#token-limit\",\"param\":null,\"type\":"              \
    "\"insufficient_quota\"},\"request_id\":\"57553be3-dea8-49f1-ba1e-7a820c152999\"}"
#define QUOTA_HEAD                                                                                           \
    "HTTP/1.1 429 Too Many Requests\r\n"                                                                     \
    "content-type: application/json\r\n"                                                                     \
    "content-length: 302\r\n"                                                                                \
    "x-request-id: 57553be3-dea8-49f1-ba1e-7a820c152999\r\n"                                                 \
    "date: Mon, 26 Feb 2024 13:54:48 GMT\r\n"                                                                \
    "server: istio-envoy\r\n"                                                                                \
    "connection: close\r\n"                                                                                  \
    "\r\n"

static void test_resp_429(void **state)
{
    struct qs_http_response *r = &g_resp;
    assert_int_equal(sizeof(QUOTA_BODY) - 1, 302);
    assert_int_equal(RESP(*state, QUOTA_HEAD QUOTA_BODY, "POST", r), sizeof(QUOTA_HEAD) - 1);
    assert_int_equal(r->status, 429);
    assert_span(r->reason, r->reason_len, "Too Many Requests");
    assert_int_equal(r->body_mode, QS_BODY_LENGTH);
    assert_int_equal(r->content_length, 302);
    assert_int_equal(r->connection_close, 1);
    assert_int_equal(r->event_stream, 0);
    assert_int_equal(r->retry_after_ms, -1);

    /* Status line variants: no reason, empty reason, extra blanks, HTTP/1.0. */
    RESP(*state, "HTTP/1.1 429\r\n\r\n", NULL, r);
    assert_int_equal(r->status, 429);
    assert_int_equal(r->reason_len, 0);
    RESP(*state, "HTTP/1.1 503 \r\n\r\n", NULL, r);
    assert_int_equal(r->status, 503);
    assert_int_equal(r->reason_len, 0);
    RESP(*state, "HTTP/1.1  500  Internal\tServer Error\r\n\r\n", NULL, r);
    assert_int_equal(r->status, 500);
    assert_span(r->reason, r->reason_len, "Internal\tServer Error");
}

/* RFC 9112 §6.3: HEAD answers, 1xx, 204 and 304 never have a body, whatever they say. */
static void test_resp_no_body(void **state)
{
    struct qs_http_response *r = &g_resp;
    RESP(*state, "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", "DELETE", r);
    assert_int_equal(r->body_mode, QS_BODY_NONE);
    assert_int_equal(r->content_length, 0);
    RESP(*state, "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", r);
    assert_int_equal(r->body_mode, QS_BODY_NONE);
    RESP(*state, "HTTP/1.1 100 Continue\r\n\r\n", "POST", r);
    assert_int_equal(r->status, 100);
    assert_int_equal(r->body_mode, QS_BODY_NONE);
    RESP(*state, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
         "GET", r);
    assert_int_equal(r->body_mode, QS_BODY_NONE);
    assert_int_equal(r->connection_close, 0);
    RESP(*state, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\ncontent-type: application/json\r\n\r\n", "HEAD",
         r);
    assert_int_equal(r->body_mode, QS_BODY_NONE);
    RESP(*state, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HEAD", r);
    assert_int_equal(r->body_mode, QS_BODY_NONE);

    /* Method names are case-sensitive: "head" and "HEADER" are other methods. */
    RESP(*state, "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", "head", r);
    assert_int_equal(r->body_mode, QS_BODY_LENGTH);
    assert_int_equal(r->content_length, 12);
    RESP(*state, "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", "HEADER", r);
    assert_int_equal(r->body_mode, QS_BODY_LENGTH);
    /* A 404 with neither framing header runs to the close. */
    RESP(*state, "HTTP/1.1 404 Not Found\r\n\r\n", "GET", r);
    assert_int_equal(r->body_mode, QS_BODY_CLOSE);
}

static void test_resp_close(void **state)
{
    struct qs_http_response *r = &g_resp;
    RESP(*state, "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", "POST", r);
    assert_int_equal(r->minor_version, 0);
    assert_int_equal(r->body_mode, QS_BODY_CLOSE);
    assert_int_equal(r->connection_close, 1);
    assert_int_equal(r->event_stream, 1);
    RESP(*state, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n", "POST", r);
    assert_int_equal(r->connection_close, 0);
    assert_int_equal(r->body_mode, QS_BODY_LENGTH);
    RESP(*state, "HTTP/1.1 200 OK\r\n\r\n", "POST", r);
    assert_int_equal(r->body_mode, QS_BODY_CLOSE);
    assert_int_equal(r->connection_close, 0);
    RESP(*state, "HTTP/1.1 200 OK\r\nConnection: Close\r\n\r\n", "POST", r);
    assert_int_equal(r->connection_close, 1);
    /* A response whose last coding is not chunked ends at the close (RFC 9112 §6.3 rule 4). */
    RESP(*state, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "POST", r);
    assert_int_equal(r->body_mode, QS_BODY_CLOSE);
    RESP(*state, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "POST", r);
    assert_int_equal(r->body_mode, QS_BODY_CLOSE);
    RESP(*state, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "POST", r);
    assert_int_equal(r->body_mode, QS_BODY_CHUNKED);
}

static void test_resp_event_stream(void **state)
{
    static const struct {
        const char *ct;
        int want;
    } cases[] = {
        {"text/event-stream;charset=UTF-8", 1},
        {"text/event-stream", 1},
        {"Text/Event-Stream; charset=utf-8", 1},
        {"text/event-stream ;charset=utf-8", 1},
        {"text/event-streams", 0},
        {"application/json", 0},
        {"text/event", 0},
        {"", 0},
    };
    char buf[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n =
            (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", cases[i].ct);
        CHECK(resp_all(*state, buf, n, "POST", &g_resp) == (int)n, buf, n);
        CHECK(g_resp.event_stream == cases[i].want, buf, n);
    }
    RESP(*state, "HTTP/1.1 200 OK\r\n\r\n", "POST", &g_resp);
    assert_int_equal(g_resp.event_stream, 0);
}

static void test_resp_retry_after(void **state)
{
    static const struct {
        const char *headers;
        int64_t want;
    } cases[] = {
        {"", -1},
        {"retry-after-ms: 1500\r\n", 1500},
        {"Retry-After-Ms: 1500.2\r\n", 1501},
        {"retry-after-ms: 0.0001\r\n", 1},
        {"retry-after-ms: 0\r\n", 0},
        {"retry-after-ms: 250\r\nretry-after: 7\r\n", 250},
        {"Retry-After: 7\r\nretry-after-ms: 250\r\n", 250},
        {"retry-after-ms: soon\r\nRetry-After: 3\r\n", 3000},
        {"Retry-After: 120\r\n", 120000},
        {"retry-after:   2  \r\n", 2000},
        {"Retry-After: 1.5\r\n", 1500},
        {"Retry-After: 0.0011\r\n", 2},
        {"Retry-After: 0.001\r\n", 1},
        {"Retry-After: 0.0010000\r\n", 1},
        {"Retry-After: 0\r\n", 0},
        {"Retry-After: .5\r\n", 500},
        {"Retry-After: 5.\r\n", 5000},
        {"Retry-After: .\r\n", -1},
        {"Retry-After: -5\r\n", -1},
        {"Retry-After: 5s\r\n", -1},
        {"Retry-After: 1e3\r\n", -1},
        {"Retry-After: 1 2\r\n", -1},
        {"Retry-After:\r\n", -1},
        {"Retry-After: 9223372036854775\r\n", 9223372036854775000},
        {"Retry-After: 9223372036854776\r\n", INT64_MAX},
        {"Retry-After: 99999999999999999999999\r\n", INT64_MAX},
        {"retry-after-ms: 99999999999999999999999.9\r\n", INT64_MAX},
        /* HTTP-dates count from the Date header of the same response. */
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mon, 26 Feb 2024 13:55:18 GMT\r\n", 30000},
        {"Retry-After: Mon, 26 Feb 2024 13:55:18 GMT\r\ndate: Mon, 26 Feb 2024 13:54:48 GMT\r\n", 30000},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mon, 26 Feb 2024 13:54:00 GMT\r\n", 0},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mon, 26 Feb 2024 13:54:48 GMT\r\n", 0},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Monday, 26-Feb-24 13:55:48 GMT\r\n", 60000},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mon Feb 26 13:56:48 2024\r\n", 120000},
        {"Date: Thu, 29 Feb 2024 23:59:59 GMT\r\nRetry-After: Fri Mar  1 00:00:01 2024\r\n", 2000},
        {"Date: Sun, 31 Dec 2023 23:59:59 GMT\r\nRetry-After: Mon, 01 Jan 2024 00:00:09 GMT\r\n", 10000},
        {"Date: Sunday, 31-Dec-99 23:59:59 GMT\r\nRetry-After: Sat, 01 Jan 2000 00:00:01 GMT\r\n", 2000},
        {"Date: Tue, 30 Jun 2015 23:59:59 GMT\r\nRetry-After: Tue, 30 Jun 2015 23:59:60 GMT\r\n", 1000},
        {"Date: Wed, 01 Mar 2023 00:00:00 GMT\r\nRetry-After: Tue, 28 Feb 2023 23:59:00 GMT\r\n", 0},
        /* No Date, or a bad one on either side: the delay is unknown. */
        {"Retry-After: Mon, 26 Feb 2024 13:55:18 GMT\r\n", -1},
        {"Date: yesterday\r\nRetry-After: Mon, 26 Feb 2024 13:55:18 GMT\r\n", -1},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mon, 30 Feb 2024 13:55:18 GMT\r\n", -1},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mon, 29 Feb 2023 13:55:18 GMT\r\n", -1},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mon, 26 Feb 2024 13:55:18 UTC\r\n", -1},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mon, 26 Feb 2024 24:00:00 GMT\r\n", -1},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mon, 26 Feb 2024 13:60:00 GMT\r\n", -1},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mon, 26 Feb 2024 13:55:61 GMT\r\n", -1},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mon, 26 Xyz 2024 13:55:18 GMT\r\n", -1},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mon, 26 Feb 2024 13:55:18 GMT x\r\n", -1},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mon, 6 Feb 2024 13:55:18 GMT\r\n", -1},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mon, 26 Feb 24 13:55:18 GMT\r\n", -1},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mo, 26 Feb 2024 13:55:18 GMT\r\n", -1},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mon Feb 6 13:56:48 2024\r\n", -1},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mon, 26 Feb 2024 13:55\r\n", -1},
        {"Date: Mon, 26 Feb 2024 13:54:48 GMT\r\nRetry-After: Mon, 26 Feb 2024 13:55:18 GM\r\n", -1},
    };
    char buf[512];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n =
            (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 429 Too Many Requests\r\n%s\r\n", cases[i].headers);
        CHECK(resp_all(*state, buf, n, "POST", &g_resp) == (int)n, buf, n);
        CHECK(g_resp.retry_after_ms == cases[i].want, buf, n);
    }
}

/* Cross-checks the date arithmetic against glibc's gmtime_r over 1970-2106: pairs of
 * IMF-fixdates d seconds apart must give d * 1000 ms. */
static void test_retry_after_dates(void **state)
{
    char buf[256], now[64], then[64];
    for (int64_t t = 0; t < 4200000000; t += 2654435) {
        int64_t d = (t / 7919) % 200000;
        time_t a = (time_t)t, b = (time_t)(t + d);
        struct tm ta, tb;
        gmtime_r(&a, &ta);
        gmtime_r(&b, &tb);
        strftime(now, sizeof(now), "%a, %d %b %Y %H:%M:%S GMT", &ta);
        strftime(then, sizeof(then), "%a, %d %b %Y %H:%M:%S GMT", &tb);
        int n =
            snprintf(buf, sizeof(buf), "HTTP/1.1 429 x\r\nDate: %s\r\nRetry-After: %s\r\n\r\n", now, then);
        CHECK(qs_http_parse_response(place(*state, buf, (size_t)n), (size_t)n, NULL, 0, &g_resp) == n, buf,
              (size_t)n);
        CHECK(g_resp.retry_after_ms == d * 1000, buf, (size_t)n);
    }
}

static void test_resp_bad(void **state)
{
    static const char *const bad[] = {
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 abc OK\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1200 OK\r\n\r\n",
        "HTTP/1.1\r\n\r\n",
        "HTTP/1.2 200 OK\r\n\r\n",
        "HTTP/2 200\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "http/1.1 200 OK\r\n\r\n",
        " HTTP/1.1 200 OK\r\n\r\n",
        "\r\nHTTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 200 O\x01K\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: five\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: \r\n\r\n",
        "HTTP/1.1 200 OK\r\nserver istio-envoy\r\n\r\n",
        "HTTP/1.1 200 OK\r\nx: 1\r\n  continued\r\n\r\n",
        "HTTP/1.1 204 No Content\r\ncontent-length: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\r\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(resp_all(*state, bad[i], strlen(bad[i]), "GET", &g_resp) == QS_EBAD, bad[i], strlen(bad[i]));
}

/* ---- body decoder ---- */

struct body_out {
    char data[16384]; /* decoded payload */
    size_t len;
    size_t pos; /* framed bytes consumed so far */
    int rc;     /* last return value */
};

/* Feeds one piece (placed against the guard page) as the header says callers must:
 * again with buf + consumed until non-zero or the input is used up. Every span must
 * lie inside the bytes consumed by the call that returned it. */
static void feed_piece(struct arena *a, struct qs_http_body *b, const char *s, size_t n, struct body_out *o)
{
    const char *p = place(a, s, n);
    size_t off = 0;
    for (size_t iter = 0; o->rc == 0; iter++) {
        size_t used = 12345, dl = 12345;
        const char *d = NULL;
        CHECK(iter <= n + 1, s, n);
        int rc = qs_http_body_feed(b, p + off, n - off, &used, &d, &dl);
        CHECK(used <= n - off, s, n);
        if (dl > 0) {
            CHECK(d >= p + off && d + dl <= p + off + used, s, n);
            CHECK(o->len + dl <= sizeof(o->data), s, n);
            memcpy(o->data + o->len, d, dl);
            o->len += dl;
        }
        off += used;
        o->pos += used;
        o->rc = rc;
        if (rc == 0 && off == n)
            break;
        if (rc == 0)
            CHECK(used > 0, s, n); /* more spans remain: the call must have made progress */
    }
}

/* Decodes <in> with a body of <mode>/<cl> whole, split in two at every offset, and one
 * byte at a time. Each way must end with <want_rc>: 1 (complete after <want_end>
 * bytes), 0 (input used up, for QS_BODY_CLOSE) or QS_EBAD; and, unless QS_EBAD, yield
 * exactly <want>/<want_len>. */
static void check_body(struct arena *a, enum qs_body_mode mode, uint64_t cl, const char *in, size_t n,
                       int want_rc, size_t want_end, const char *want, size_t want_len)
{
    static struct body_out o;
    struct qs_http_body b;
    for (size_t way = 0; way <= n + 2; way++) {
        memset(&o, 0, sizeof(o));
        qs_http_body_init(&b, mode, cl);
        if (way <= n) { /* split at <way>: the first piece may be empty, or the whole */
            feed_piece(a, &b, in, way, &o);
            if (o.rc == 0)
                feed_piece(a, &b, in + way, n - way, &o);
        } else if (way == n + 1) { /* one byte at a time */
            for (size_t i = 0; i < n && o.rc == 0; i++)
                feed_piece(a, &b, in + i, 1, &o);
        } else { /* whole, then an empty feed, which must change nothing */
            feed_piece(a, &b, in, n, &o);
            if (o.rc != QS_EBAD)
                feed_piece(a, &b, in + o.pos, 0, &o);
        }
        CHECK(o.rc == want_rc, in, n);
        if (want_rc == QS_EBAD)
            continue;
        CHECK(o.pos == (want_rc == 1 ? want_end : n), in, n);
        CHECK(o.len == want_len, in, n);
        CHECK(memcmp(o.data, want, want_len) == 0, in, n);
        CHECK(b.total == want_len, in, n);
        if (want_rc == 1) { /* a finished body stays finished and takes nothing more */
            size_t used = 1, dl = 1;
            const char *d;
            assert_int_equal(qs_http_body_feed(&b, place(a, "X", 1), 1, &used, &d, &dl), 1);
            assert_int_equal(used, 0);
            assert_int_equal(dl, 0);
        }
    }
}

#define CHECK_BODY(a, mode, cl, in, rc, end, want)                                                           \
    check_body((a), (mode), (cl), (in), sizeof(in) - 1, (rc), (end), (want), sizeof(want) - 1)

/* Frames <payload> as chunks of <piece> bytes, sizes alternately in lower- and
 * upper-case hex, line ends <eol>, then the last chunk, <trailer> (lines, each ending
 * in <eol>) and the final <eol>, then <next>. *body_end gets the length of the framing. */
static size_t chunkify(char *out, size_t cap, const char *payload, size_t n, size_t piece, const char *eol,
                       const char *trailer, const char *next, size_t *body_end)
{
    size_t o = 0;
    for (size_t i = 0, k = 0; i < n; i += piece, k++) {
        size_t m = n - i < piece ? n - i : piece;
        o += (size_t)snprintf(out + o, cap - o, k % 2 ? "%zX%s" : "%zx%s", m, eol);
        assert_true(o + m < cap);
        memcpy(out + o, payload + i, m);
        o += m;
        o += (size_t)snprintf(out + o, cap - o, "%s", eol);
    }
    o += (size_t)snprintf(out + o, cap - o, "0%s%s%s", eol, trailer, eol);
    *body_end = o;
    o += (size_t)snprintf(out + o, cap - o, "%s", next);
    assert_true(o < cap);
    return o;
}

/* The native SSE stream of cnblogs conversation-generation-message-sse, in its wire
 * form (events separated by blank lines, §4.2). */
#define NATIVE_SSE                                                                                           \
    "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":"        \
    "\"\xe6\x82\xa8\",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":25," \
    "\"input_tokens\":24,\"output_tokens\":1},\"request_id\":\"9188e907-56c2-9849-97f6-23f130f7fed7\"}\n\n"  \
    "id:2\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":"        \
    "\"\xe5\x88\x9a\xe6\x89\x8d\",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":"          \
    "{\"total_tokens\":26,\"input_tokens\":24,\"output_tokens\":2},\"request_id\":"                          \
    "\"9188e907-56c2-9849-97f6-23f130f7fed7\"}\n\n"                                                          \
    "id:3\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":"        \
    "\"\",\"role\":\"assistant\"},\"finish_reason\":\"stop\"}]},\"usage\":{\"total_tokens\":33,"             \
    "\"input_tokens\":24,\"output_tokens\":9},\"request_id\":\"9188e907-56c2-9849-97f6-23f130f7fed7\"}\n\n"

/* The compatible stream of §4.3, usage chunk and [DONE] included. */
#define COMPAT_SSE                                                                                           \
    "data: {\"choices\":[{\"delta\":{\"content\":\"\",\"role\":\"assistant\"},\"index\":0,\"logprobs\":"     \
    "null,\"finish_reason\":null}],\"object\":\"chat.completion.chunk\",\"usage\":null,\"created\":"         \
    "1726132850,\"system_fingerprint\":null,\"model\":\"qwen-plus\",\"id\":"                                 \
    "\"chatcmpl-428b414f-fdd4-94c6-b179-8f576ad653a8\"}\n\n"                                                 \
    "data: {\"choices\":[{\"finish_reason\":\"stop\",\"delta\":{\"content\":\"\"},\"index\":0,"              \
    "\"logprobs\":null}],\"object\":\"chat.completion.chunk\",\"usage\":null,\"created\":1726132850,"        \
    "\"system_fingerprint\":null,\"model\":\"qwen-plus\",\"id\":"                                            \
    "\"chatcmpl-428b414f-fdd4-94c6-b179-8f576ad653a8\"}\n\n"                                                 \
    "data: {\"choices\":[],\"object\":\"chat.completion.chunk\",\"usage\":{\"prompt_tokens\":22,"            \
    "\"completion_tokens\":17,\"total_tokens\":39},\"created\":1726132850,\"system_fingerprint\":null,"      \
    "\"model\":\"qwen-plus\",\"id\":\"chatcmpl-428b414f-fdd4-94c6-b179-8f576ad653a8\"}\n\n"                  \
    "data: [DONE]\n\n"

/* The native 429 inside an HTTP 200 (qwen-code rateLimit.test.ts, §3.1). */
#define THROTTLE_SSE                                                                                         \
    "id:1\nevent:error\n:HTTP_STATUS/429\ndata:{\"request_id\":\"70acdc21-a546-489a-b5d6-650df970a4ef\","    \
    "\"code\":\"Throttling.AllocationQuota\",\"message\":\"Allocated quota exceeded, please increase your "  \
    "quota limit.\"}\n\n"

static void test_body_length(void **state)
{
    /* A 429 envelope, then the first bytes of the next response on the connection. */
    CHECK_BODY(*state, QS_BODY_LENGTH, 302, QUOTA_BODY "HTTP/1.1 200 OK\r\n", 1, 302, QUOTA_BODY);
    CHECK_BODY(*state, QS_BODY_LENGTH, 302, QUOTA_BODY, 1, 302, QUOTA_BODY);
    /* Not all there yet: the input is used up and the body is not complete. */
    struct qs_http_body b;
    size_t used, dl;
    const char *d;
    qs_http_body_init(&b, QS_BODY_LENGTH, 1000);
    assert_int_equal(qs_http_body_feed(&b, place(*state, QUOTA_BODY, 302), 302, &used, &d, &dl), 0);
    assert_int_equal(used, 302);
    assert_int_equal(dl, 302);
    assert_int_equal(b.left, 698);
    CHECK_BODY(*state, QS_BODY_LENGTH, 0, "HTTP/1.1 200 OK\r\n", 1, 0, "");
}

static void test_body_none_and_zeroed(void **state)
{
    struct qs_http_body b;
    size_t used = 99, dl = 99;
    const char *d;
    memset(&b, 0, sizeof(b));
    assert_int_equal(qs_http_body_feed(&b, place(*state, "HTTP/1.1", 8), 8, &used, &d, &dl), 1);
    assert_int_equal(used, 0);
    assert_int_equal(dl, 0);
    assert_int_equal(qs_http_body_feed(&b, NULL, 0, &used, &d, &dl), 1);
    CHECK_BODY(*state, QS_BODY_NONE, 77, "HTTP/1.1 200 OK\r\n", 1, 0, "");
}

static void test_body_close(void **state)
{
    CHECK_BODY(*state, QS_BODY_CLOSE, 0, COMPAT_SSE, 0, 0, COMPAT_SSE);
    CHECK_BODY(*state, QS_BODY_CLOSE, 0, "", 0, 0, "");
}

/* A complete chunked body <framed>, followed by bytes of the next message <next>. */
#define CHECK_CHUNKED(a, framed, next, want)                                                                 \
    check_body((a), QS_BODY_CHUNKED, 0, framed next, sizeof(framed next) - 1, 1, sizeof(framed) - 1, (want), \
               sizeof(want) - 1)

/* Handwritten chunked bodies: extensions, trailers, hex case, BWS, leading zeros. */
static void test_body_chunked_literal(void **state)
{
    CHECK_CHUNKED(*state,
                  "4\r\nWiki\r\n"
                  "6;name=value;q=\"a b\"\r\npedia \r\n"
                  "E\r\nin \r\n\r\nchunks.\r\n"
                  "0\r\nExpires: never\r\nX-Foo: bar\r\n\r\n",
                  "HTTP/1.1 200 OK\r\n", "Wikipedia in \r\n\r\nchunks.");
    CHECK_CHUNKED(*state, "0\r\n\r\n", "", "");
    CHECK_CHUNKED(*state, "0\r\n\r\n", "next", "");
    CHECK_CHUNKED(*state, "000;last\r\n\r\n", "", "");
    CHECK_CHUNKED(*state, "0005\r\nhello\r\n0\r\n\r\n", "", "hello");
    CHECK_CHUNKED(*state, "000000000000000000000000000000000005\r\nhello\r\n0\r\n\r\n", "", "hello");
    CHECK_CHUNKED(*state, "a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", "", "0123456789abcdefghij");
    CHECK_CHUNKED(*state, "5 ;ext\r\nhello\r\n0 \t\r\n\r\n", "", "hello");
    CHECK_CHUNKED(*state, "5  \r\nhello\r\n0\r\n\r\n", "", "hello");
    CHECK_CHUNKED(*state, "1\r\n\n\r\n1\r\n\r\r\n0\r\n\r\n", "", "\n\r");
    /* LF-only framing, as picohttpparser accepts. */
    CHECK_CHUNKED(*state, "4\nWiki\n5\npedia\n0\nx: y\n\n", "next", "Wikipedia");
    CHECK_CHUNKED(*state, "4\r\nWiki\n0\n\r\n", "0\r\n\r\n", "Wiki");
    /* Unfinished: everything so far decodes, nothing completes. */
    CHECK_BODY(*state, QS_BODY_CHUNKED, 0, "4\r\nWiki\r\n0\r\nTrailer: x\r\n", 0, 0, "Wiki");
    CHECK_BODY(*state, QS_BODY_CHUNKED, 0, "ffffffffffffffff\r\nabc", 0, 0, "abc");
}

/* The three DashScope streams as a chunked body cut in several ways: the payload must
 * come back byte for byte and the body must end exactly at its "0" chunk. */
static void test_body_chunked_captures(void **state)
{
    static const struct {
        const char *payload;
        size_t n;
    } streams[] = {
        {NATIVE_SSE, sizeof(NATIVE_SSE) - 1},
        {COMPAT_SSE, sizeof(COMPAT_SSE) - 1},
        {THROTTLE_SSE, sizeof(THROTTLE_SSE) - 1},
        {QUOTA_BODY, sizeof(QUOTA_BODY) - 1},
    };
    static const struct {
        size_t piece;
        const char *eol, *trailer;
    } framings[] = {
        {4096, "\r\n", ""}, {333, "\r\n", ""},           {64, "\r\n", "x-dashscope-finished: true\r\n"},
        {1, "\r\n", ""},    {100, "\n", "a: b\nc: d\n"},
    };
    static char buf[16384];
    for (size_t s = 0; s < sizeof(streams) / sizeof(streams[0]); s++) {
        for (size_t f = 0; f < sizeof(framings) / sizeof(framings[0]); f++) {
            size_t end;
            size_t n = chunkify(buf, sizeof(buf), streams[s].payload, streams[s].n, framings[f].piece,
                                framings[f].eol, framings[f].trailer, "HTTP/1.1 200 OK\r\n", &end);
            check_body(*state, QS_BODY_CHUNKED, 0, buf, n, 1, end, streams[s].payload, streams[s].n);
        }
    }
}

static void test_body_chunked_bad(void **state)
{
    static const char *const bad[] = {
        "zz\r\nhello\r\n0\r\n\r\n",   /* not hex */
        "\r\nhello\r\n0\r\n\r\n",     /* no size */
        ";ext\r\nhello\r\n0\r\n\r\n", /* no size before the extension */
        "-5\r\nhello\r\n0\r\n\r\n",
        "0x5\r\nhello\r\n0\r\n\r\n",
        "5g\r\nhello\r\n0\r\n\r\n",
        "5 5\r\nhello\r\n0\r\n\r\n",
        "5\rhello\r\n0\r\n\r\n",         /* CR without LF after the size */
        "5;a\x01\r\nhello\r\n0\r\n\r\n", /* control byte in an extension */
        "5\r\nhelloX\r\n0\r\n\r\n",      /* data longer than its size */
        "5\r\nhello\r0\r\n\r\n",         /* CR without LF after the data */
        "5\r\nhello\rX0\r\n\r\n",
        "5\r\nhello0\r\n\r\n",   /* no CRLF after the data at all */
        "10000000000000000\r\n", /* 2^64 does not fit */
        "0\r\n\rX",              /* CR without LF ending the body */
        "4\r\nWiki\r\n\r\n",     /* an empty size line */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        check_body(*state, QS_BODY_CHUNKED, 0, bad[i], strlen(bad[i]), QS_EBAD, 0, NULL, 0);
}

/* What a caller sees call by call: one span per call, framing eaten around it. */
static void test_body_chunked_calls(void **state)
{
    static const char in[] = "4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\nNEXT";
    struct qs_http_body b;
    size_t used, dl;
    const char *d;
    const char *p = place(*state, in, sizeof(in) - 1);
    qs_http_body_init(&b, QS_BODY_CHUNKED, 0);
    assert_int_equal(qs_http_body_feed(&b, p, 30, &used, &d, &dl), 0);
    assert_int_equal(used, 12); /* "4\r\nWiki\r\n5\r\n" */
    assert_ptr_equal(d, p + 3);
    assert_int_equal(dl, 4);
    assert_int_equal(qs_http_body_feed(&b, p + 12, 30 - 12, &used, &d, &dl), 1);
    assert_int_equal(used, 12); /* "pedia\r\n0\r\n\r\n" */
    assert_ptr_equal(d, p + 12);
    assert_int_equal(dl, 5);
    assert_true(b.total == 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_req_native_sse),
        cmocka_unit_test(test_req_capture_lf_and_crlf),
        cmocka_unit_test(test_req_openai_compat),
        cmocka_unit_test(test_req_expect),
        cmocka_unit_test(test_req_chunked),
        cmocka_unit_test(test_req_connection),
        cmocka_unit_test(test_req_no_body),
        cmocka_unit_test(test_req_lenient),
        cmocka_unit_test(test_req_content_length),
        cmocka_unit_test(test_req_bad),
        cmocka_unit_test(test_max_headers),
        cmocka_unit_test(test_find_header),
        cmocka_unit_test(test_resp_captures),
        cmocka_unit_test(test_resp_429),
        cmocka_unit_test(test_resp_no_body),
        cmocka_unit_test(test_resp_close),
        cmocka_unit_test(test_resp_event_stream),
        cmocka_unit_test(test_resp_retry_after),
        cmocka_unit_test(test_retry_after_dates),
        cmocka_unit_test(test_resp_bad),
        cmocka_unit_test(test_body_length),
        cmocka_unit_test(test_body_none_and_zeroed),
        cmocka_unit_test(test_body_close),
        cmocka_unit_test(test_body_chunked_literal),
        cmocka_unit_test(test_body_chunked_captures),
        cmocka_unit_test(test_body_chunked_bad),
        cmocka_unit_test(test_body_chunked_calls),
    };
    return cmocka_run_group_tests(tests, arena_setup, arena_teardown);
}
