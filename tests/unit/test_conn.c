/* test_conn.c - unit tests for shim/conn.c: request assembly, rewriting, write-behind and
 * retries on the write side; answer observation and audit records on the read side.
 *
 * conn.c reaches OpenSSL only through struct qs_real, so the tests give it a fake SSL layer:
 * the "server" is a byte buffer that SSL_write/SSL_write_ex append to (scriptable to take k
 * bytes per call, as with SSL_MODE_ENABLE_PARTIAL_WRITE, or to fail like WANT_WRITE on a
 * non-blocking socket), SSL_read/SSL_read_ex hand out a scripted answer in scripted slices
 * and then fail with a scripted SSL_get_error code. Requests and answers follow the captures
 * in research/dashscope-wire.md (§1.4 requests, §3 error envelopes, §4 usage and SSE).
 * In enforce mode (env.hold_answers, the "Holding answers back" section) the fake server can
 * also answer successive copies of a request in turns, each readable only once the server
 * has received that copy; env.sleep_ms and env.rand01 are fakes that record each wait (and
 * advance the fake monotonic clock by it) and draw a fixed jitter.
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

#include "audit.h"
#include "clock.h"
#include "conn.h"
#include "dashscope.h"

#define HOST "dashscope.aliyuncs.com"
#define KEY "sk-test-0123456789"
#define CHAT "/compatible-mode/v1/chat/completions"
#define NATIVE "/api/v1/services/aigc/text-generation/generation"
#define CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"
#define JSON_HEAD "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
#define SSE_HEAD "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream;charset=UTF-8\r\n"
#define MAX_RECS 64
#define MAX_TURNS 8              /* answers the fake server gives to successive requests */
#define MAX_SLEEPS 64            /* backoff waits a test records */
#define WALL_MS 1795457045123ull /* 2026-11-23T18:04:05.123Z */

/* OpenSSL's SSL_get_error codes the fake reports. */
enum { ERR_WANT_READ = 2, ERR_SYSCALL = 5, ERR_ZERO_RETURN = 6 };

/* A compatible chat request: 18 characters of string values ("user", "hello",
 * "qwen-plus") make (18 + 3) / 4 = 5 prompt tokens, plus max_tokens 100. */
static const char chat_body[] =
    "{\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],\"model\":\"qwen-plus\",\"max_tokens\":100}";
#define CHAT_EST 105

/* A compatible answer with usage (dashscope-wire.md §4.1). */
static const char chat_answer[] =
    "{\"id\":\"chatcmpl-1\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},"
    "\"finish_reason\":\"stop\",\"index\":0}],\"object\":\"chat.completion\","
    "\"usage\":{\"prompt_tokens\":22,\"completion_tokens\":17,\"total_tokens\":39},\"model\":\"qwen-plus\"}";

/* ==== Growable bytes ==== */

struct bytes {
    char *p; /* NUL-terminated once anything was added */
    size_t len, cap;
};

static void bytes_add(struct bytes *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n > 0)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void bytes_addf(struct bytes *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bytes_addf(struct bytes *b, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    bytes_add(b, s, (size_t)n);
    free(s);
}

static void bytes_free(struct bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Appends <s>/<n> in chunked framing, <size> payload bytes per chunk. */
static void add_chunked(struct bytes *b, const char *s, size_t n, size_t size)
{
    for (size_t i = 0; i < n; i += size) {
        size_t k = n - i < size ? n - i : size;
        bytes_addf(b, "%zx\r\n", k);
        bytes_add(b, s + i, k);
        bytes_add(b, "\r\n", 2);
    }
    bytes_add(b, "0\r\n\r\n", 5);
}

/* ==== Requests ==== */

enum { RQ_EXPECT = 1, RQ_CHUNKED = 2, RQ_SSE = 4 };

/* One request as the program writes it (<orig>) and as the server must receive it
 * (<want>): Accept-Encoding replaced by "identity" after the other headers, Expect
 * dropped, everything else (body included) byte for byte. */
struct req {
    struct bytes orig, want;
    size_t head_len; /* of orig */
};

static void make_req(struct req *r, const char *method, const char *path, const char *body, int flags)
{
    struct bytes framing = {0}, wire = {0};
    bytes_add(&framing, "", 0);
    if (body != NULL && (flags & RQ_CHUNKED)) {
        bytes_addf(&framing, "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n");
        add_chunked(&wire, body, strlen(body), 7);
    } else if (body != NULL) {
        bytes_addf(&framing, "Content-Type: application/json\r\nContent-Length: %zu\r\n", strlen(body));
        bytes_add(&wire, body, strlen(body));
    }
    const char *sse = flags & RQ_SSE ? "X-DashScope-SSE: enable\r\n" : "";
    memset(r, 0, sizeof *r);
    bytes_addf(&r->orig,
               "%s %s HTTP/1.1\r\nHost: " HOST "\r\nAccept-Encoding: gzip, deflate\r\n"
               "Authorization: Bearer " KEY "\r\n%s%s%s\r\n",
               method, path, sse, framing.p, flags & RQ_EXPECT ? "Expect: 100-continue\r\n" : "");
    r->head_len = r->orig.len;
    bytes_add(&r->orig, wire.p, wire.len);
    bytes_addf(&r->want,
               "%s %s HTTP/1.1\r\nHost: " HOST "\r\nAuthorization: Bearer " KEY
               "\r\n%s%sAccept-Encoding: identity\r\n\r\n",
               method, path, sse, framing.p);
    bytes_add(&r->want, wire.p, wire.len);
    bytes_free(&framing);
    bytes_free(&wire);
}

static void free_req(struct req *r)
{
    bytes_free(&r->orig);
    bytes_free(&r->want);
}

/* ==== Answers ==== */

enum framing { A_LENGTH, A_CHUNKED, A_CLOSE };

/* <head> is the status line and headers without framing or the blank line. */
static void make_answer(struct bytes *b, const char *head, const char *body, enum framing how)
{
    bytes_add(b, head, strlen(head));
    if (how == A_LENGTH)
        bytes_addf(b, "content-length: %zu\r\n", strlen(body));
    else if (how == A_CHUNKED)
        bytes_addf(b, "transfer-encoding: chunked\r\n");
    bytes_add(b, "\r\n", 2);
    if (how == A_CHUNKED)
        add_chunked(b, body, strlen(body), 50);
    else
        bytes_add(b, body, strlen(body));
}

/* ==== The fake SSL layer ==== */

struct fake {
    /* writes */
    size_t chunk;      /* most bytes one write takes (0: all) */
    int fail_first;    /* so many write calls fail first */
    int fail_every;    /* then every n-th call fails (0: none) */
    int fail_rc;       /* what a failing SSL_write returns (-1 or 0); SSL_write_ex returns 0 */
    size_t fail_above; /* writes of more bytes fail without reading them (0: no limit) */
    int wcalls[2];     /* SSL_write, SSL_write_ex */
    const void *last_buf;
    size_t last_num;
    struct bytes server; /* everything the server received, in order */
    /* reads */
    struct bytes ans; /* the server's answer */
    size_t ans_off;
    size_t slice;  /* most bytes one read returns (0: all) */
    int end_rc;    /* SSL_read's result once <ans> is used up (SSL_read_ex returns 0) */
    int end_err;   /* ... and SSL_get_error's code then */
    int err;       /* what SSL_get_error answers now */
    int rcalls[2]; /* SSL_read, SSL_read_ex */
    int err_ret;   /* the ret argument of the last SSL_get_error */
    /* later answers: turn[i] is added to <ans> once <ans> is used up and the server has
     * received turn_after[i] bytes (it answers only what it was sent) */
    struct bytes turn[MAX_TURNS];
    size_t turn_after[MAX_TURNS];
    int nturns, next_turn;
    /* handshake */
    unsigned char alpn[32];
    unsigned alpn_len;
    int alpn_calls;
    const char *selected; /* the ALPN protocol the server chose, NULL for none */
};

struct fx {
    struct qs_real real;
    struct qs_conn_env env;
    struct qs_conn *c;
    int ex; /* the program uses SSL_write_ex/SSL_read_ex */
    struct fake fk;
    struct qs_audit_rec recs[MAX_RECS]; /* what env.emit received, strings copied */
    int nrecs;
    char ctx[128]; /* the variant under test, for failure messages */
    /* enforce mode: what env.sleep_ms was asked to wait, the call (1-based) that reports
     * an interrupted wait (0: none), and what env.rand01 draws */
    uint64_t slept[MAX_SLEEPS];
    int nslept, sleep_fail_at;
    double rnd;
};

static struct fx *cur;   /* the fixture the fakes and the emitter work on */
static uint64_t fake_ns; /* the monotonic clock conn.c sees */
static uint64_t (*saved_now)(void), (*saved_wall)(void);

static uint64_t fake_now(void) { return fake_ns; }
static uint64_t fake_wall(void) { return WALL_MS; }

static struct fake *fake_of(const SSL *s)
{
    assert_ptr_equal(s, (const SSL *)cur);
    return &cur->fk;
}

/* Returns 1 with *w set, or 0 for a scripted failure. */
static int fake_write(int ex, SSL *s, const void *buf, size_t num, size_t *w)
{
    struct fake *k = fake_of(s);
    int call = ++k->wcalls[ex];
    k->last_buf = buf;
    k->last_num = num;
    if (k->fail_first > 0) {
        k->fail_first--;
        return 0;
    }
    if ((k->fail_every > 0 && call % k->fail_every == 0) || (k->fail_above > 0 && num > k->fail_above))
        return 0;
    size_t n = k->chunk > 0 && k->chunk < num ? k->chunk : num;
    bytes_add(&k->server, buf, n);
    *w = n;
    return 1;
}

static int fake_SSL_write(SSL *s, const void *buf, int num)
{
    size_t w = 0;
    assert_true(num > 0);
    return fake_write(0, s, buf, (size_t)num, &w) ? (int)w : cur->fk.fail_rc;
}

static int fake_SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written)
{
    return fake_write(1, s, buf, num, written);
}

/* Returns 1 with *got set, or 0 once the answer is used up. */
static int fake_read(int ex, SSL *s, void *buf, size_t num, size_t *got)
{
    struct fake *k = fake_of(s);
    k->rcalls[ex]++;
    size_t left = k->ans.len - k->ans_off;
    if (left == 0 && k->next_turn < k->nturns && k->server.len >= k->turn_after[k->next_turn]) {
        const struct bytes *t = &k->turn[k->next_turn++];
        bytes_add(&k->ans, t->p, t->len);
        left = t->len;
    }
    if (left == 0) {
        k->err = k->end_err;
        return 0;
    }
    size_t n = num < left ? num : left;
    if (k->slice > 0 && k->slice < n)
        n = k->slice;
    memcpy(buf, k->ans.p + k->ans_off, n);
    k->ans_off += n;
    k->err = 0;
    *got = n;
    return 1;
}

static int fake_SSL_read(SSL *s, void *buf, int num)
{
    size_t got = 0;
    assert_true(num > 0);
    return fake_read(0, s, buf, (size_t)num, &got) ? (int)got : cur->fk.end_rc;
}

static int fake_SSL_read_ex(SSL *s, void *buf, size_t num, size_t *readbytes)
{
    return fake_read(1, s, buf, num, readbytes);
}

static int fake_SSL_get_error(const SSL *s, int ret)
{
    struct fake *k = fake_of(s);
    k->err_ret = ret;
    return k->err;
}

static int fake_SSL_set_alpn_protos(SSL *s, const unsigned char *p, unsigned int len)
{
    struct fake *k = fake_of(s);
    assert_true(len <= sizeof k->alpn);
    memcpy(k->alpn, p, len);
    k->alpn_len = len;
    k->alpn_calls++;
    return 0;
}

static void fake_SSL_get0_alpn_selected(const SSL *s, const unsigned char **p, unsigned int *len)
{
    struct fake *k = fake_of(s);
    *p = (const unsigned char *)k->selected;
    *len = k->selected ? (unsigned)strlen(k->selected) : 0;
}

/* ==== Records ==== */

/* The string members of a record, for copying and freeing them alike. */
static const char **rec_strings(struct qs_audit_rec *r, int i)
{
    const char **s[] = {&r->prog, &r->event, &r->host, &r->region, &r->method,
                        &r->path, &r->model, &r->code, &r->key,    &r->reason};
    return i < (int)(sizeof s / sizeof s[0]) ? s[i] : NULL;
}

static void record(const struct qs_audit_rec *r)
{
    assert_true(cur->nrecs < MAX_RECS);
    struct qs_audit_rec *c = &cur->recs[cur->nrecs++];
    *c = *r;
    for (int i = 0; rec_strings(c, i) != NULL; i++) {
        const char **s = rec_strings(c, i);
        *s = *s ? strdup(*s) : NULL;
    }
}

static void recs_clear(struct fx *f)
{
    for (int n = 0; n < f->nrecs; n++)
        for (int i = 0; rec_strings(&f->recs[n], i) != NULL; i++)
            free((void *)*rec_strings(&f->recs[n], i));
    f->nrecs = 0;
}

static const char ANY[] = "<any non-null>";

/* The fields of a record a test cares about. Strings: NULL means null, ANY any non-null;
 * numbers: -1 means null. */
struct want {
    const char *event, *method, *path, *model, *code, *reason;
    int status, stream;
    int64_t input, output;
};

static void check_str(struct bytes *msg, const char *name, const char *got, const char *want)
{
    int ok = want == ANY ? got != NULL : (got == NULL || want == NULL) ? got == want : strcmp(got, want) == 0;
    if (!ok)
        bytes_addf(msg, " %s=%s (want %s)", name, got ? got : "null", want ? want : "null");
}

static void check_num(struct bytes *msg, const char *name, int64_t got, int64_t want)
{
    if (got != want)
        bytes_addf(msg, " %s=%lld (want %lld)", name, (long long)got, (long long)want);
}

/* Checks record <i> against <w>, reporting every field that differs at once. */
static void check_rec(struct fx *f, int i, const struct want *w)
{
    assert_true(i < f->nrecs);
    const struct qs_audit_rec *r = &f->recs[i];
    struct bytes msg = {0};
    bytes_add(&msg, "", 0);
    check_str(&msg, "event", r->event, w->event);
    check_str(&msg, "method", r->method, w->method);
    check_str(&msg, "path", r->path, w->path);
    check_str(&msg, "model", r->model, w->model);
    check_str(&msg, "code", r->code, w->code);
    check_str(&msg, "reason", r->reason, w->reason);
    check_num(&msg, "status", r->status > 0 ? r->status : -1, w->status > 0 ? w->status : -1);
    check_num(&msg, "stream", r->stream != 0, w->stream);
    check_num(&msg, "input_tokens", r->input_tokens < 0 ? -1 : r->input_tokens, w->input);
    check_num(&msg, "output_tokens", r->output_tokens < 0 ? -1 : r->output_tokens, w->output);
    if (msg.len > 0) {
        print_error("%s, record %d:%s\n", f->ctx, i, msg.p);
        bytes_free(&msg);
        fail();
    }
    bytes_free(&msg);
}

/* The record of a POST to <path> for qwen-plus with the given outcome (0 / -1: null). */
static struct want posted(const char *event, const char *path, int status, int64_t input, int64_t output)
{
    return (struct want){.event = event,
                         .method = "POST",
                         .path = path,
                         .model = "qwen-plus",
                         .status = status,
                         .input = input,
                         .output = output};
}

static void check_posted(struct fx *f, int i, const char *event, const char *path, int status, int64_t input,
                         int64_t output)
{
    struct want w = posted(event, path, status, input, output);
    check_rec(f, i, &w);
}

/* The record of a connection, or of bytes, that never were a request. */
static const struct want bare_passthrough = {
    .event = "passthrough", .reason = ANY, .input = -1, .output = -1};

/* ==== Fixture and connection life ==== */

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->real.SSL_write = fake_SSL_write;
    f->real.SSL_write_ex = fake_SSL_write_ex;
    f->real.SSL_read = fake_SSL_read;
    f->real.SSL_read_ex = fake_SSL_read_ex;
    f->real.SSL_get_error = fake_SSL_get_error;
    f->real.SSL_set_alpn_protos = fake_SSL_set_alpn_protos;
    f->real.SSL_get0_alpn_selected = fake_SSL_get0_alpn_selected;
    f->env.real = &f->real;
    f->env.prog = "testprog";
    f->env.pid = 4242;
    f->env.region = "auto";
    f->env.max_buffer = 64u * 1024 * 1024;
    f->env.emit = record;
    cur = f;
    saved_now = qs_now_ns;
    saved_wall = qs_wall_ms;
    qs_now_ns = fake_now;
    qs_wall_ms = fake_wall;
    fake_ns = 1000000000u;
    *state = f;
    return 0;
}

static void fake_reset(struct fx *f)
{
    for (int i = 0; i < f->fk.nturns; i++)
        bytes_free(&f->fk.turn[i]);
    bytes_free(&f->fk.server);
    bytes_free(&f->fk.ans);
    memset(&f->fk, 0, sizeof f->fk);
    f->fk.fail_rc = -1;
    f->fk.end_err = ERR_ZERO_RETURN;
}

static void conn_close(struct fx *f)
{
    if (f->c != NULL)
        qs_conn_free(f->c, &f->env);
    f->c = NULL;
}

static void conn_open(struct fx *f, const char *host)
{
    conn_close(f);
    fake_reset(f);
    recs_clear(f);
    f->c = qs_conn_new((SSL *)f, host, strlen(host));
    assert_non_null(f->c);
    snprintf(f->ctx, sizeof f->ctx, "%s", f->ex ? "SSL_write_ex/SSL_read_ex" : "SSL_write/SSL_read");
}

static int teardown(void **state)
{
    struct fx *f = *state;
    conn_close(f);
    fake_reset(f);
    recs_clear(f);
    qs_now_ns = saved_now;
    qs_wall_ms = saved_wall;
    free(f);
    return 0;
}

/* ==== Program actions ==== */

/* One program write of <n> bytes, repeated with the same arguments while it fails, as
 * OpenSSL requires. Each failure must be the real call's own value; the call that
 * succeeds must report all <n> bytes. Returns how many times it failed. */
static int prog_write(struct fx *f, const void *p, size_t n)
{
    for (int fails = 0; fails < 100000; fails++) {
        size_t w = 0x5eed;
        int rc = qs_conn_write(f->c, &f->env, f->ex, p, n, &w);
        if (rc == 1) {
            assert_int_equal(w, n);
            return fails;
        }
        assert_int_equal(rc, f->ex ? 0 : f->fk.fail_rc);
    }
    fail_msg("%s: a write never completed", f->ctx);
    return -1;
}

static void assert_server(struct fx *f, const char *want, size_t n)
{
    if (f->fk.server.len != n || (n > 0 && memcmp(f->fk.server.p, want, n) != 0)) {
        print_error("%s: server got %zu bytes:\n%.*s\nwant %zu bytes:\n%.*s\n", f->ctx, f->fk.server.len,
                    (int)(f->fk.server.len > 2000 ? 2000 : f->fk.server.len),
                    f->fk.server.p ? f->fk.server.p : "", n, (int)(n > 2000 ? 2000 : n), want);
        fail();
    }
}

/* What the server got so far must be the start of <want>. */
static void assert_server_prefix(struct fx *f, const char *want, size_t n)
{
    assert_true(f->fk.server.len <= n);
    if (f->fk.server.len > 0)
        assert_memory_equal(f->fk.server.p, want, f->fk.server.len);
}

/* Writes <p>/<n> in writes of <piece> bytes. While <held> is set nothing may reach the
 * server before the last write; after every write it has seen a prefix of <want>. */
static void write_pieces(struct fx *f, const char *p, size_t n, size_t piece, const struct bytes *want,
                         int held)
{
    for (size_t i = 0; i < n; i += piece) {
        size_t k = n - i < piece ? n - i : piece;
        prog_write(f, p + i, k);
        if (held && i + k < n)
            assert_int_equal(f->fk.server.len, 0);
        assert_server_prefix(f, want->p, want->len);
    }
}

/* Sends a whole request in one write; the server must get <want> at once. */
static void send_req(struct fx *f, const struct req *r)
{
    prog_write(f, r->orig.p, r->orig.len);
    assert_server(f, r->want.p, r->want.len);
}

static void script_answer(struct fx *f, const struct bytes *ans, size_t slice, int end_rc, int end_err)
{
    bytes_add(&f->fk.ans, ans->p, ans->len);
    f->fk.slice = slice;
    f->fk.end_rc = end_rc;
    f->fk.end_err = end_err;
}

/* Reads as the program would, <num> bytes per call, until the real read fails. The
 * program must get exactly the answer bytes not yet read, each successful call must
 * return 1 with 1..num bytes, and the failure must be the real call's value. */
static void read_all(struct fx *f, size_t num)
{
    struct bytes got = {0};
    size_t start = f->fk.ans_off;
    char *buf = malloc(num);
    assert_non_null(buf);
    for (;;) {
        size_t n = 0x5eed;
        int rc = qs_conn_read(f->c, &f->env, f->ex, buf, num, &n);
        if (rc != 1) {
            assert_int_equal(rc, f->ex ? 0 : f->fk.end_rc);
            break;
        }
        assert_in_range(n, 1, num);
        bytes_add(&got, buf, n);
    }
    free(buf);
    assert_int_equal(got.len, f->fk.ans.len - start);
    if (got.len > 0)
        assert_memory_equal(got.p, f->fk.ans.p + start, got.len);
    bytes_free(&got);
}

/* Runs <fn> once for SSL_write/SSL_read and once for the _ex pair. */
static void for_each_api(struct fx *f, void (*fn)(struct fx *f))
{
    for (f->ex = 0; f->ex <= 1; f->ex++)
        fn(f);
}

/* ==== Handshake ==== */

static void test_alpn_http11_once(void **state)
{
    struct fx *f = *state;
    struct req r;

    conn_open(f, HOST);
    /* Assumption: before the handshake the connection offers exactly http/1.1 in ALPN,
     * once per connection however often the handshake is retried. */
    qs_conn_before_handshake(f->c, &f->env);
    qs_conn_before_handshake(f->c, &f->env);
    assert_int_equal(f->fk.alpn_calls, 1);
    assert_int_equal(f->fk.alpn_len, 9);
    assert_memory_equal(f->fk.alpn, "\x08http/1.1", 9);

    /* Assumption: a handshake call that did not finish (WANT_READ) decides nothing; one
     * that finished with http/1.1 leaves the connection recognising requests (held). */
    f->fk.selected = "http/1.1";
    qs_conn_after_handshake(f->c, &f->env, -1);
    assert_false(qs_conn_established(f->c));
    qs_conn_after_handshake(f->c, &f->env, 1);
    assert_true(qs_conn_established(f->c));
    assert_int_equal(f->nrecs, 0);
    make_req(&r, "POST", CHAT, chat_body, 0);
    prog_write(f, r.orig.p, r.head_len);
    assert_int_equal(f->fk.server.len, 0);
    free_req(&r);
}

static void h2_case(struct fx *f)
{
    static const char frame[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    size_t w = 0;

    conn_open(f, HOST);
    qs_conn_before_handshake(f->c, &f->env);
    f->fk.selected = "h2";
    qs_conn_after_handshake(f->c, &f->env, 1);
    /* Assumption: a server that still chose h2 turns the connection into pass-through,
     * logged once as "passthrough" with a reason. */
    assert_int_equal(f->nrecs, 1);
    check_rec(f, 0, &bare_passthrough);

    /* Assumption: every write then goes straight to the real call with the program's own
     * buffer, and a partial write is reported as partial. */
    f->fk.chunk = 5;
    assert_int_equal(qs_conn_write(f->c, &f->env, f->ex, frame, sizeof frame - 1, &w), 1);
    assert_ptr_equal(f->fk.last_buf, frame);
    assert_int_equal(f->fk.last_num, sizeof frame - 1);
    assert_int_equal(w, 5);
    assert_server(f, frame, 5);
    f->fk.chunk = 0;
    assert_int_equal(qs_conn_write(f->c, &f->env, f->ex, frame + 5, sizeof frame - 6, &w), 1);
    assert_server(f, frame, sizeof frame - 1);

    /* Assumption: what the server sends is handed over unread, even if it looks like HTTP/1.1. */
    struct bytes ans = {0};
    make_answer(&ans, "HTTP/1.1 200 OK\r\n", chat_answer, A_LENGTH);
    script_answer(f, &ans, 0, 0, ERR_ZERO_RETURN);
    read_all(f, 64);
    conn_close(f);
    assert_int_equal(f->nrecs, 1);
    bytes_free(&ans);
}

static void test_h2_passthrough(void **state) { for_each_api(*state, h2_case); }

/* ==== Write side ==== */

static void split_case(struct fx *f)
{
    struct req r;

    make_req(&r, "POST", CHAT, chat_body, 0);
    for (size_t i = 1; i < r.orig.len; i++) {
        conn_open(f, HOST);
        snprintf(f->ctx, sizeof f->ctx, "ex=%d split at %zu", f->ex, i);
        /* Assumption: the first part is accepted whole and nothing reaches the server;
         * the second completes the request, which the server gets exactly once, rewritten. */
        prog_write(f, r.orig.p, i);
        assert_int_equal(f->fk.server.len, 0);
        prog_write(f, r.orig.p + i, r.orig.len - i);
        assert_server(f, r.want.p, r.want.len);
        assert_int_equal(f->fk.wcalls[!f->ex], 0);
        conn_close(f);
        assert_int_equal(f->nrecs, 1);
    }
    free_req(&r);
}

static void test_split_two_writes(void **state) { for_each_api(*state, split_case); }

static void byte_case(struct fx *f)
{
    struct req r;

    conn_open(f, HOST);
    make_req(&r, "POST", CHAT, chat_body, 0);
    /* Assumption: one byte per write is held until the body's last byte. */
    write_pieces(f, r.orig.p, r.orig.len, 1, &r.want, 1);
    assert_server(f, r.want.p, r.want.len);
    free_req(&r);
}

static void test_one_byte_writes(void **state) { for_each_api(*state, byte_case); }

static void retry_case(struct fx *f)
{
    static const size_t chunks[] = {1, 3, 17, 0};
    static const struct {
        int first, every, rc;
    } fails[] = {{0, 0, -1}, {3, 0, -1}, {0, 2, -1}, {2, 3, 0}};
    struct req r;

    make_req(&r, "POST", CHAT, chat_body, 0);
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        for (size_t m = 0; m < sizeof fails / sizeof fails[0]; m++) {
            conn_open(f, HOST);
            snprintf(f->ctx, sizeof f->ctx, "ex=%d chunk=%zu fail first %d every %d rc %d", f->ex, chunks[c],
                     fails[m].first, fails[m].every, fails[m].rc);
            f->fk.chunk = chunks[c];
            f->fk.fail_first = fails[m].first;
            f->fk.fail_every = fails[m].every;
            f->fk.fail_rc = fails[m].rc;
            /* Assumption: the head (httpx writes it alone) is held without a real write. */
            assert_int_equal(prog_write(f, r.orig.p, r.head_len), 0);
            assert_int_equal(f->fk.wcalls[0] + f->fk.wcalls[1], 0);
            /* Assumption: the body's write sends the request with partial real writes; each
             * real failure is returned to the program, whose retry with the same arguments
             * continues where the server stopped: nothing lost, nothing twice. */
            int failed = prog_write(f, r.orig.p + r.head_len, r.orig.len - r.head_len);
            assert_true(failed >= fails[m].first);
            assert_server(f, r.want.p, r.want.len);
            assert_int_equal(f->fk.wcalls[!f->ex], 0);
            /* Assumption: the next request on the connection starts clean. */
            f->fk.fail_first = 1;
            prog_write(f, r.orig.p, r.orig.len);
            assert_int_equal(f->fk.server.len, 2 * r.want.len);
            assert_memory_equal(f->fk.server.p + r.want.len, r.want.p, r.want.len);
        }
    }
    free_req(&r);
}

static void test_partial_and_failing_writes(void **state) { for_each_api(*state, retry_case); }

static void big_case(struct fx *f)
{
    struct bytes body = {0};
    struct req r;

    conn_open(f, HOST);
    bytes_addf(&body, "{\"messages\":[{\"role\":\"user\",\"content\":\"");
    for (int i = 0; i < 1024; i++)
        bytes_addf(&body, "%01024d", i);
    bytes_addf(&body, "\"}],\"model\":\"qwen-max\"}");
    make_req(&r, "POST", CHAT, body.p, 0);
    /* Assumption: 1 MiB of messages written 64 KiB at a time is held whole, then sent
     * unchanged, and "model" after it is found. Estimate: "user" + 1 MiB + "qwen-max" =
     * 1048588 characters, (1048588 + 3) / 4 tokens, no max_tokens. */
    write_pieces(f, r.orig.p, r.orig.len, 65536, &r.want, 1);
    assert_server(f, r.want.p, r.want.len);
    conn_close(f);
    assert_int_equal(f->nrecs, 1);
    struct want w = posted("request", CHAT, 0, -1, -1);
    w.model = "qwen-max";
    w.reason = ANY;
    check_rec(f, 0, &w);
    assert_int_equal(f->recs[0].est_tokens, (1048588 + 3) / 4);
    free_req(&r);
    bytes_free(&body);
}

static void test_model_after_1mb(void **state) { for_each_api(*state, big_case); }

static void chunked_case(struct fx *f)
{
    struct req r;

    conn_open(f, HOST);
    make_req(&r, "POST", CHAT, chat_body, RQ_CHUNKED);
    /* Assumption: a chunked body (7-byte chunks, so "model" spans chunks) is held to its
     * last chunk, framed as written, and its JSON is read through the framing. */
    write_pieces(f, r.orig.p, r.orig.len, 5, &r.want, 1);
    assert_server(f, r.want.p, r.want.len);
    conn_close(f);
    struct want w = posted("request", CHAT, 0, -1, -1);
    w.reason = ANY;
    check_rec(f, 0, &w);
    assert_int_equal(f->recs[0].est_tokens, CHAT_EST);
    free_req(&r);
}

static void test_chunked_request(void **state) { for_each_api(*state, chunked_case); }

static void get_case(struct fx *f)
{
    static const char task[] =
        "{\"request_id\":\"r1\",\"output\":{\"task_id\":\"x\",\"task_status\":\"SUCCEEDED\"},"
        "\"usage\":{\"image_count\":1}}";
    struct bytes ans = {0};
    struct req r;

    conn_open(f, HOST);
    make_req(&r, "GET", "/api/v1/tasks/x", NULL, 0);
    /* Assumption: a GET with no body goes out (rewritten) as soon as its head is complete. */
    send_req(f, &r);
    make_answer(&ans, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n", task, A_LENGTH);
    script_answer(f, &ans, 0, -1, ERR_WANT_READ);
    read_all(f, 4096);
    assert_int_equal(f->nrecs, 1);
    struct want w = posted("request", "/api/v1/tasks/x", 200, -1, -1);
    w.method = "GET";
    w.model = NULL;
    check_rec(f, 0, &w);
    assert_int_equal(f->recs[0].est_tokens, 0);
    bytes_free(&ans);
    free_req(&r);
}

static void test_get_without_body(void **state) { for_each_api(*state, get_case); }

static void empty_body_case(struct fx *f)
{
    struct req r;

    conn_open(f, HOST);
    make_req(&r, "POST", "/api/v1/tasks/x/cancel", "", 0);
    /* Assumption: a POST with "Content-Length: 0" (requests.post(url) sends one; DashScope's
     * task cancel is such a call) is complete with its head and goes out at once; holding
     * it would leave the program waiting for an answer to a request never sent. */
    send_req(f, &r);
    free_req(&r);
}

static void test_empty_body_request(void **state) { for_each_api(*state, empty_body_case); }

static void pipeline_case(struct fx *f)
{
    static const char body2[] =
        "{\"model\":\"qwen-turbo\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    static const char answer2[] = "{\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6}}";
    struct bytes both = {0}, want = {0}, ans = {0};
    struct req r1, r2;

    make_req(&r1, "POST", CHAT, chat_body, 0);
    make_req(&r2, "POST", CHAT, body2, 0);
    bytes_add(&both, r1.orig.p, r1.orig.len);
    bytes_add(&both, r2.orig.p, r2.orig.len);
    bytes_add(&want, r1.want.p, r1.want.len);
    bytes_add(&want, r2.want.p, r2.want.len);
    make_answer(&ans, "HTTP/1.1 200 OK\r\n", chat_answer, A_LENGTH);
    make_answer(&ans, "HTTP/1.1 200 OK\r\n", answer2, A_CHUNKED);
    for (size_t slice = 0; slice <= 1; slice++) {
        conn_open(f, HOST);
        /* Assumption: two requests in one write both go out, in order, each rewritten; the
         * two answers read back to back are matched to them in order. */
        prog_write(f, both.p, both.len);
        assert_server(f, want.p, want.len);
        script_answer(f, &ans, slice, 0, ERR_ZERO_RETURN);
        read_all(f, 4096);
        assert_int_equal(f->nrecs, 2);
        check_posted(f, 0, "request", CHAT, 200, 22, 17);
        struct want w = posted("request", CHAT, 200, 5, 6);
        w.model = "qwen-turbo";
        check_rec(f, 1, &w);
    }
    bytes_free(&both);
    bytes_free(&want);
    bytes_free(&ans);
    free_req(&r1);
    free_req(&r2);
}

static void test_pipelined(void **state) { for_each_api(*state, pipeline_case); }

static void overflow_case(struct fx *f)
{
    enum { N = 17 }; /* one more than conn.c queues */
    struct bytes all = {0}, want = {0}, ans = {0};
    struct req r;

    conn_open(f, HOST);
    make_req(&r, "POST", CHAT, chat_body, 0);
    for (int i = 0; i < N; i++) {
        bytes_add(&all, r.orig.p, r.orig.len);
        bytes_add(&want, r.want.p, r.want.len);
        make_answer(&ans, "HTTP/1.1 200 OK\r\n", chat_answer, A_LENGTH);
    }
    /* Assumption: more pipelined requests than conn.c can track still all reach the
     * server, in order, none twice; the connection then passes through. */
    prog_write(f, all.p, all.len);
    assert_server(f, want.p, want.len);
    prog_write(f, r.orig.p, r.orig.len);
    assert_ptr_equal(f->fk.last_buf, r.orig.p);
    assert_int_equal(f->fk.server.len, want.len + r.orig.len);
    assert_memory_equal(f->fk.server.p + want.len, r.orig.p, r.orig.len);
    /* Assumption: every one of the N requests gets exactly one record. */
    script_answer(f, &ans, 0, 0, ERR_ZERO_RETURN);
    read_all(f, 65536);
    conn_close(f);
    assert_int_equal(f->nrecs, N);
    bytes_free(&all);
    bytes_free(&want);
    bytes_free(&ans);
    free_req(&r);
}

static void test_pipeline_overflow(void **state) { for_each_api(*state, overflow_case); }

static void other_path_case(struct fx *f)
{
    struct bytes ans = {0};
    struct req r;

    conn_open(f, HOST);
    make_req(&r, "POST", "/v1/other", chat_body, 0);
    /* Assumption: a path that is not a model call is not held or rewritten: the head goes
     * out as written once complete, then the body as it comes. */
    prog_write(f, r.orig.p, r.head_len);
    assert_server(f, r.orig.p, r.head_len);
    write_pieces(f, r.orig.p + r.head_len, r.orig.len - r.head_len, 10, &r.orig, 0);
    assert_server(f, r.orig.p, r.orig.len);
    /* Assumption: its answer is logged as "passthrough", without a token estimate. */
    make_answer(&ans, "HTTP/1.1 200 OK\r\n", chat_answer, A_LENGTH);
    script_answer(f, &ans, 0, 0, ERR_ZERO_RETURN);
    read_all(f, 4096);
    assert_int_equal(f->nrecs, 1);
    struct want w = posted("passthrough", "/v1/other", 200, 22, 17);
    w.model = NULL;
    w.reason = ANY;
    check_rec(f, 0, &w);
    assert_true(f->recs[0].est_tokens < 0);
    bytes_free(&ans);
    free_req(&r);
}

static void test_non_model_path(void **state) { for_each_api(*state, other_path_case); }

static void expect_case(struct fx *f)
{
    char buf[64];
    size_t n = 0;
    struct bytes ans = {0};
    struct req r;

    conn_open(f, HOST);
    make_req(&r, "POST", CHAT, chat_body, RQ_EXPECT);
    /* Assumption: after a head with Expect: 100-continue the shim holds a "100 Continue"
     * for the program (counted as pending, delivered before any real read, in pieces
     * if the program's buffer is small), so a client waiting for it cannot deadlock. */
    assert_int_equal(qs_conn_pending(f->c), 0);
    prog_write(f, r.orig.p, r.head_len);
    assert_int_equal(f->fk.server.len, 0);
    assert_int_equal(qs_conn_pending(f->c), strlen(CONTINUE));
    assert_int_equal(qs_conn_read(f->c, &f->env, f->ex, buf, 10, &n), 1);
    assert_int_equal(n, 10);
    assert_int_equal(qs_conn_pending(f->c), strlen(CONTINUE) - 10);
    assert_int_equal(qs_conn_read(f->c, &f->env, f->ex, buf + 10, sizeof buf - 10, &n), 1);
    assert_int_equal(n, strlen(CONTINUE) - 10);
    assert_memory_equal(buf, CONTINUE, strlen(CONTINUE));
    assert_int_equal(qs_conn_pending(f->c), 0);
    assert_int_equal(f->fk.rcalls[0] + f->fk.rcalls[1], 0);
    /* Assumption: the server never sees the Expect header (it would answer 100 too). */
    prog_write(f, r.orig.p + r.head_len, r.orig.len - r.head_len);
    assert_server(f, r.want.p, r.want.len);
    assert_null(strstr(f->fk.server.p, "Expect"));
    make_answer(&ans, "HTTP/1.1 200 OK\r\n", chat_answer, A_LENGTH);
    script_answer(f, &ans, 0, 0, ERR_ZERO_RETURN);
    read_all(f, 4096);
    check_posted(f, 0, "request", CHAT, 200, 22, 17);
    bytes_free(&ans);
    free_req(&r);
}

static void test_expect_continue(void **state) { for_each_api(*state, expect_case); }

static void garbage_case(struct fx *f)
{
    static const char garbage[] = "GARBAGE\r\n\r\n";
    struct req r;

    conn_open(f, HOST);
    /* Assumption: bytes that are not HTTP reach the server unchanged, with one
     * passthrough record, and later writes go straight to the real call. */
    prog_write(f, garbage, sizeof garbage - 1);
    assert_server(f, garbage, sizeof garbage - 1);
    assert_int_equal(f->nrecs, 1);
    check_rec(f, 0, &bare_passthrough);
    make_req(&r, "POST", CHAT, chat_body, 0);
    prog_write(f, r.orig.p, r.orig.len);
    assert_ptr_equal(f->fk.last_buf, r.orig.p);
    assert_int_equal(f->fk.server.len, sizeof garbage - 1 + r.orig.len);
    assert_memory_equal(f->fk.server.p + sizeof garbage - 1, r.orig.p, r.orig.len);
    free_req(&r);
}

static void test_malformed_request(void **state) { for_each_api(*state, garbage_case); }

static void huge_head_case(struct fx *f)
{
    struct bytes orig = {0};

    conn_open(f, HOST);
    bytes_addf(&orig, "POST " CHAT " HTTP/1.1\r\nHost: " HOST "\r\n");
    for (int i = 0; i < 20; i++)
        bytes_addf(&orig, "X-Pad-%d: %03500d\r\n", i, i);
    bytes_addf(&orig, "Content-Length: %zu\r\n\r\n%s", strlen(chat_body), chat_body);
    /* Assumption: a head that grows past 64 KiB without ending is not held for ever: it
     * goes out as written, and so does everything after it. */
    write_pieces(f, orig.p, orig.len, 10000, &orig, 0);
    assert_server(f, orig.p, orig.len);
    assert_int_equal(f->nrecs, 1);
    check_rec(f, 0, &bare_passthrough);
    bytes_free(&orig);
}

static void garbage_after_request_case(struct fx *f)
{
    static const char garbage[] = "GARBAGE\r\n\r\n";
    struct bytes ans = {0};
    struct req r;

    conn_open(f, HOST);
    make_req(&r, "POST", CHAT, chat_body, 0);
    send_req(f, &r);
    /* Assumption: garbage after a complete request is logged as a passthrough of its own,
     * not under the earlier request's method, path and model. */
    prog_write(f, garbage, sizeof garbage - 1);
    assert_int_equal(f->nrecs, 1);
    check_rec(f, 0, &bare_passthrough);
    /* Assumption: the earlier request still gets its own record when answered. */
    make_answer(&ans, JSON_HEAD, chat_answer, A_LENGTH);
    script_answer(f, &ans, 0, 0, ERR_ZERO_RETURN);
    read_all(f, 4096);
    assert_int_equal(f->nrecs, 2);
    check_posted(f, 1, "request", CHAT, 200, 22, 17);
    bytes_free(&ans);
    free_req(&r);
}

static void test_malformed_after_request(void **state) { for_each_api(*state, garbage_after_request_case); }

static void test_head_too_large(void **state) { for_each_api(*state, huge_head_case); }

/* Sends a 10000-byte body in 1000-byte writes on a connection that holds at most 4096
 * body bytes, checking that nothing goes out while the body fits and that, once it does
 * not, everything written so far is on the server, in order. Then answers it. */
static void send_over_limit(struct fx *f)
{
    struct bytes body = {0}, ans = {0};
    struct req r;

    bytes_addf(&body,
               "{\"model\":\"qwen-plus\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"%"
               "010000d\"}]}",
               7);
    make_req(&r, "POST", CHAT, body.p, 0);
    f->env.max_buffer = 4096;
    conn_open(f, HOST);
    prog_write(f, r.orig.p, r.head_len);
    for (size_t i = r.head_len; i < r.orig.len; i += 1000) {
        size_t k = r.orig.len - i < 1000 ? r.orig.len - i : 1000;
        prog_write(f, r.orig.p + i, k);
        size_t body_sent = i + k - r.head_len;
        if (body_sent <= 4096)
            assert_int_equal(f->fk.server.len, 0);
        else
            assert_server(f, r.want.p, r.want.len - (r.orig.len - i - k));
    }
    assert_server(f, r.want.p, r.want.len);
    f->env.max_buffer = 64u * 1024 * 1024;
    make_answer(&ans, "HTTP/1.1 200 OK\r\n", chat_answer, A_LENGTH);
    script_answer(f, &ans, 0, 0, ERR_ZERO_RETURN);
    read_all(f, 4096);
    assert_int_equal(f->nrecs, 1);
    bytes_free(&ans);
    bytes_free(&body);
    free_req(&r);
}

static void over_limit_case(struct fx *f)
{
    /* Assumption: a body over env->max_buffer stops being held: the head (with the
     * documented Accept-Encoding rewrite) and the body reach the server unchanged and in
     * order; the request is logged as "passthrough" and its answer is still observed. */
    send_over_limit(f);
    struct want w = posted("passthrough", CHAT, 200, 22, 17);
    w.reason = ANY;
    w.stream = f->recs[0].stream;
    check_rec(f, 0, &w);
}

static void test_body_over_limit(void **state) { for_each_api(*state, over_limit_case); }

static void over_limit_stream_case(struct fx *f)
{
    send_over_limit(f);
    /* Assumption: "stream": true seen before the limit is still logged (SPEC §7 "stream"). */
    struct want w = posted("passthrough", CHAT, 200, 22, 17);
    w.reason = ANY;
    w.stream = 1;
    check_rec(f, 0, &w);
}

static void test_body_over_limit_stream_flag(void **state) { for_each_api(*state, over_limit_stream_case); }

static void unheld_case(struct fx *f)
{
    static char huge_marker;
    struct req r;
    size_t w = 0;

    if (!f->ex)
        return; /* SSL_write's int size cannot overflow the buffer */
    conn_open(f, HOST);
    make_req(&r, "POST", CHAT, chat_body, 0);
    prog_write(f, r.orig.p, 20);
    /* Assumption: a write that cannot be held (its size overflows the buffer, as when
     * memory runs out) sends what was held, then the program's own buffer straight to
     * the real call, whose result it returns; the connection passes through from then on. */
    f->fk.fail_above = 1u << 30;
    assert_int_equal(qs_conn_write(f->c, &f->env, 1, &huge_marker, SIZE_MAX - 8, &w), 0);
    assert_server(f, r.orig.p, 20);
    assert_ptr_equal(f->fk.last_buf, &huge_marker);
    assert_int_equal(f->fk.last_num, SIZE_MAX - 8);
    assert_int_equal(f->nrecs, 1);
    check_rec(f, 0, &bare_passthrough);
    prog_write(f, r.orig.p + 20, r.orig.len - 20);
    assert_ptr_equal(f->fk.last_buf, r.orig.p + 20);
    assert_server(f, r.orig.p, r.orig.len);
    free_req(&r);
}

static void test_unholdable_write(void **state) { for_each_api(*state, unheld_case); }

/* ==== Read side ==== */

/* The requests the answer tests send, all for qwen-plus. */
struct req_kind {
    const char *path, *body;
    int flags; /* RQ_* */
};

static const char stream_body[] =
    "{\"model\":\"qwen-plus\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],"
    "\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
static const char native_body[] =
    "{\"model\":\"qwen-plus\",\"input\":{\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]},"
    "\"parameters\":{\"incremental_output\":true}}";
static const struct req_kind chat_req = {CHAT, chat_body, 0};
static const struct req_kind stream_req = {CHAT, stream_body, 0};
static const struct req_kind native_req = {NATIVE, native_body, RQ_SSE};

/* One request and the server's answer to it. */
struct exchange_case {
    const struct req_kind *req;
    const char *prelude; /* bytes before the answer (an interim 100), or NULL */
    const char *head;    /* status line and headers, without framing */
    const char *answer;  /* body payload */
    enum framing framing;
    size_t cut;          /* if > 0, the server stops after this many payload bytes */
    int end_rc, end_err; /* how the read ends after the answer (0, 0: a clean close) */
};

/* Runs <x> for both APIs and read slices of every size from 1 byte to all: the program
 * must get the answer unchanged, and exactly one record must match <want>. */
static void check_exchange(struct fx *f, const struct exchange_case *x, const struct want *want)
{
    static const size_t slices[] = {0, 1, 2, 7, 100};
    struct bytes ans = {0};
    struct req r;

    if (x->prelude != NULL)
        bytes_add(&ans, x->prelude, strlen(x->prelude));
    make_answer(&ans, x->head, x->answer, x->framing);
    if (x->cut > 0)
        ans.len -= strlen(x->answer) - x->cut;
    make_req(&r, "POST", x->req->path, x->req->body, x->req->flags);
    for (f->ex = 0; f->ex <= 1; f->ex++) {
        for (size_t s = 0; s < sizeof slices / sizeof slices[0]; s++) {
            conn_open(f, HOST);
            snprintf(f->ctx, sizeof f->ctx, "ex=%d read slice=%zu", f->ex, slices[s]);
            send_req(f, &r);
            script_answer(f, &ans, slices[s], x->end_rc, x->end_err ? x->end_err : ERR_ZERO_RETURN);
            read_all(f, 4096);
            assert_int_equal(f->nrecs, 1);
            check_rec(f, 0, want);
            conn_close(f);
            assert_int_equal(f->nrecs, 1);
        }
    }
    free_req(&r);
    bytes_free(&ans);
}

static void test_answer_content_length(void **state)
{
    const struct exchange_case x = {.req = &chat_req, .head = JSON_HEAD, .answer = chat_answer};
    struct want w = posted("request", CHAT, 200, 22, 17);

    /* Assumption: a Content-Length JSON answer gives status 200 and its usage. */
    check_exchange(*state, &x, &w);
}

static void test_answer_chunked(void **state)
{
    const struct exchange_case x = {
        .req = &chat_req, .head = JSON_HEAD, .answer = chat_answer, .framing = A_CHUNKED};
    struct want w = posted("request", CHAT, 200, 22, 17);

    /* Assumption: the same answer in 50-byte chunks gives the same facts. */
    check_exchange(*state, &x, &w);
}

static void test_answer_compat_429(void **state)
{
    static const char body[] = "{\"error\":{\"message\":\"You have exceeded your current request limit.\","
                               "\"type\":\"limit_requests\",\"code\":\"limit_requests\"}}";
    const struct exchange_case x = {
        .req = &chat_req,
        .head = "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n",
        .answer = body};
    struct want w = posted("request", CHAT, 429, -1, -1);

    w.code = "limit_requests";
    /* Assumption: a compatible-mode 429 gives its status and error.code. */
    check_exchange(*state, &x, &w);
}

static void test_answer_native_sse(void **state)
{
    static const char sse[] =
        "id:1\nevent:result\n:HTTP_STATUS/200\n"
        "data:{\"output\":{\"choices\":[{\"message\":{\"content\":\"hi\",\"role\":\"assistant\"},"
        "\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":27,\"output_tokens\":1,"
        "\"input_tokens\":26},\"request_id\":\"d30a\"}\n\n"
        "id:2\nevent:result\n:HTTP_STATUS/200\n"
        "data:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"role\":\"assistant\"},"
        "\"finish_reason\":\"stop\"}]},\"usage\":{\"total_tokens\":92,\"output_tokens\":66,"
        "\"input_tokens\":26},\"request_id\":\"d30a\"}\n\n";
    const struct exchange_case x = {
        .req = &native_req, .head = SSE_HEAD, .answer = sse, .framing = A_CHUNKED};
    struct want w = posted("request", NATIVE, 200, 26, 66);

    w.stream = 1;
    /* Assumption: native SSE usage is cumulative, so the last event's counts are logged;
     * X-DashScope-SSE: enable makes the request a stream. */
    check_exchange(*state, &x, &w);
}

static void test_answer_native_sse_429(void **state)
{
    static const char sse[] = "id:1\nevent:error\n:HTTP_STATUS/429\n"
                              "data:{\"request_id\":\"70acdc21\",\"code\":\"Throttling.RateQuota\","
                              "\"message\":\"Requests rate limit exceeded, please try again later.\"}\n\n";
    const struct exchange_case x = {
        .req = &native_req, .head = SSE_HEAD, .answer = sse, .framing = A_CHUNKED};
    struct want w = posted("request", NATIVE, 429, -1, -1);

    w.code = "Throttling.RateQuota";
    w.stream = 1;
    /* Assumption: a native stream that opens with HTTP 200 and an event:error carrying
     * ":HTTP_STATUS/429" is logged as status 429 with its code (dashscope-wire.md §3.1),
     * however the program's reads cut the comment line. */
    check_exchange(*state, &x, &w);
}

static void test_answer_compat_sse(void **state)
{
    static const char sse[] =
        "data: {\"choices\":[{\"delta\":{\"content\":\"hi\",\"role\":\"assistant\"},\"index\":0}],"
        "\"object\":\"chat.completion.chunk\",\"usage\":null,\"model\":\"qwen-plus\"}\n\n"
        "data: {\"choices\":[{\"finish_reason\":\"stop\",\"delta\":{\"content\":\"\"},\"index\":0}],"
        "\"usage\":null}\n\n"
        "data: {\"choices\":[],\"object\":\"chat.completion.chunk\",\"usage\":{\"prompt_tokens\":22,"
        "\"completion_tokens\":17,\"total_tokens\":39}}\n\n"
        "data: [DONE]\n\n";
    const struct exchange_case x = {
        .req = &stream_req, .head = SSE_HEAD, .answer = sse, .framing = A_CHUNKED};
    struct want w = posted("request", CHAT, 200, 22, 17);

    w.stream = 1;
    /* Assumption: a compatible stream with include_usage has usage in its last chunk before
     * [DONE]; "stream": true in the body makes the request a stream. */
    check_exchange(*state, &x, &w);
}

static void test_answer_after_interim_100(void **state)
{
    const struct exchange_case x = {
        .req = &chat_req, .prelude = CONTINUE, .head = JSON_HEAD, .answer = chat_answer};
    struct want w = posted("request", CHAT, 200, 22, 17);

    /* Assumption: a 100 Continue from the server is passed on and skipped; the answer after
     * it is the one logged. */
    check_exchange(*state, &x, &w);
}

static void test_answer_gzip_unreadable(void **state)
{
    const struct exchange_case x = {.req = &chat_req,
                                    .head = JSON_HEAD "content-encoding: gzip\r\n",
                                    .answer = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\xae\x05\x00"};
    struct want w = posted("request", CHAT, 200, -1, -1);

    /* Assumption: a server that compresses anyway is passed on unchanged; the record has
     * the status and no tokens. */
    check_exchange(*state, &x, &w);
}

static void test_answer_until_close(void **state)
{
    struct exchange_case x = {.req = &chat_req, .head = JSON_HEAD, .answer = chat_answer, .framing = A_CLOSE};
    struct want w = posted("request", CHAT, 200, 22, 17);

    /* Assumption: an answer framed by the connection's close ends cleanly at EOF, whether
     * with close_notify (ZERO_RETURN) or without (SYSCALL). */
    check_exchange(*state, &x, &w);
    x.end_rc = -1;
    x.end_err = ERR_SYSCALL;
    check_exchange(*state, &x, &w);
}

static void test_answer_eof_mid_body(void **state)
{
    struct exchange_case x = {.req = &chat_req, .head = JSON_HEAD, .answer = chat_answer, .cut = 40};
    struct want w = posted("request", CHAT, 200, -1, -1);

    w.reason = ANY;
    /* Assumption: a connection that ends inside a Content-Length or chunked body ends the
     * record with the status seen and a reason; the program gets the real EOF result. */
    check_exchange(*state, &x, &w);
    x.end_rc = -1;
    x.end_err = ERR_SYSCALL;
    x.framing = A_CHUNKED;
    check_exchange(*state, &x, &w);
}

static void test_answer_no_body(void **state)
{
    const struct exchange_case x = {.req = &chat_req,
                                    .head = "HTTP/1.1 204 No Content\r\n",
                                    .answer = "",
                                    .framing = A_CLOSE,
                                    .end_rc = -1,
                                    .end_err = ERR_WANT_READ};
    struct want w = posted("request", CHAT, 204, -1, -1);

    /* Assumption: a 204 answer has no body and ends with its head. */
    check_exchange(*state, &x, &w);
}

static void test_answer_empty_length(void **state)
{
    const struct exchange_case x = {
        .req = &chat_req, .head = JSON_HEAD, .answer = "", .end_rc = -1, .end_err = ERR_WANT_READ};
    struct want w = posted("request", CHAT, 200, -1, -1);

    /* Assumption: an answer with "content-length: 0" ends with its head: it is logged at
     * once, with no reason, even if nothing follows on the connection. */
    check_exchange(*state, &x, &w);
}

static void want_read_case(struct fx *f)
{
    struct bytes ans = {0}, half = {0};
    struct req r;

    conn_open(f, HOST);
    make_req(&r, "POST", CHAT, chat_body, 0);
    send_req(f, &r);
    make_answer(&ans, JSON_HEAD, chat_answer, A_LENGTH);
    bytes_add(&half, ans.p, ans.len / 2);
    /* Assumption: WANT_READ in the middle of an answer is returned unchanged (-1 from
     * SSL_read, 0 from SSL_read_ex, SSL_get_error asked with that value) and ends nothing. */
    script_answer(f, &half, 0, -1, ERR_WANT_READ);
    read_all(f, 4096);
    assert_int_equal(f->nrecs, 0);
    assert_int_equal(f->fk.err_ret, f->ex ? 0 : -1);
    /* Assumption: the rest of the answer then completes the record, with no reason. */
    bytes_add(&f->fk.ans, ans.p + half.len, ans.len - half.len);
    f->fk.end_rc = 0;
    f->fk.end_err = ERR_ZERO_RETURN;
    read_all(f, 4096);
    assert_int_equal(f->nrecs, 1);
    check_posted(f, 0, "request", CHAT, 200, 22, 17);
    bytes_free(&ans);
    bytes_free(&half);
    free_req(&r);
}

static void test_want_read_mid_answer(void **state) { for_each_api(*state, want_read_case); }

static void unanswered_case(struct fx *f)
{
    struct bytes ans = {0};
    struct req r;

    conn_open(f, HOST);
    make_req(&r, "POST", CHAT, chat_body, 0);
    /* Assumption: a request still waiting for its answer when the connection is freed
     * gets one record with status null and a reason. */
    send_req(f, &r);
    conn_close(f);
    assert_int_equal(f->nrecs, 1);
    struct want w = posted("request", CHAT, 0, -1, -1);
    w.reason = ANY;
    check_rec(f, 0, &w);
    assert_int_equal(f->recs[0].status, 0);
    /* Assumption: one whose answer head and first 10 body bytes arrived keeps that status. */
    conn_open(f, HOST);
    send_req(f, &r);
    make_answer(&ans, JSON_HEAD, chat_answer, A_LENGTH);
    ans.len -= strlen(chat_answer) - 10;
    script_answer(f, &ans, 0, -1, ERR_WANT_READ);
    read_all(f, 4096);
    assert_int_equal(f->nrecs, 0);
    conn_close(f);
    assert_int_equal(f->nrecs, 1);
    w = posted("request", CHAT, 200, -1, -1);
    w.reason = ANY;
    check_rec(f, 0, &w);
    bytes_free(&ans);
    free_req(&r);
}

static void test_free_unanswered(void **state) { for_each_api(*state, unanswered_case); }

/* Opens a connection to <host>, sends the chat request with the clock at 1 s, answers it
 * at 2.5 s, and returns the one record. */
static const struct qs_audit_rec *one_exchange(struct fx *f, const char *host)
{
    struct bytes ans = {0};
    struct req r;

    conn_open(f, host);
    make_req(&r, "POST", CHAT, chat_body, 0);
    fake_ns = 1000000000u;
    send_req(f, &r);
    fake_ns += 1500000000u;
    make_answer(&ans, JSON_HEAD, chat_answer, A_LENGTH);
    script_answer(f, &ans, 0, 0, ERR_ZERO_RETURN);
    read_all(f, 4096);
    assert_int_equal(f->nrecs, 1);
    bytes_free(&ans);
    free_req(&r);
    return &f->recs[0];
}

static void test_record_fields(void **state)
{
    struct fx *f = *state;
    char key[9];

    /* Assumption: a record carries the process, the host without its port, the region the
     * host names (env region "auto"), the latency from the request's last byte to its
     * answer's, one attempt, no pacing, and the key's fingerprint, never the key. */
    const struct qs_audit_rec *r = one_exchange(f, "dashscope-intl.aliyuncs.com:443");
    qs_ds_key_fingerprint("Bearer " KEY, strlen("Bearer " KEY), key);
    assert_int_equal(r->ts_ms, WALL_MS);
    assert_int_equal(r->pid, 4242);
    assert_string_equal(r->prog, "testprog");
    assert_string_equal(r->host, "dashscope-intl.aliyuncs.com");
    assert_string_equal(r->region, "intl");
    assert_int_equal(r->latency_ms, 1500);
    assert_int_equal(r->attempts, 1);
    assert_int_equal(r->paced_ms, 0);
    assert_int_equal(r->retry_ms, 0);
    assert_int_equal(r->est_tokens, CHAT_EST);
    assert_false(r->stream);
    assert_string_equal(r->key, key);
    for (int i = 0; rec_strings(&f->recs[0], i) != NULL; i++) {
        const char *s = *rec_strings(&f->recs[0], i);
        assert_true(s == NULL || strstr(s, "sk-") == NULL);
    }

    /* Assumption: a configured region wins over the host's. */
    f->env.region = "us";
    assert_string_equal(one_exchange(f, "dashscope-intl.aliyuncs.com")->region, "us");
    /* Assumption: a host that names no region falls back to cn-beijing. */
    f->env.region = "auto";
    r = one_exchange(f, "localhost:8443");
    assert_string_equal(r->region, "cn-beijing");
    assert_string_equal(r->host, "localhost");
}

/* ==== Holding answers back: hidden throttles, replays, fallback (SPEC §6) ==== */

/* A compatible RPM 429 (dashscope-wire.md §3.3). */
#define HEAD_429 "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
static const char rpm_429[] =
    "{\"error\":{\"message\":\"You have exceeded your current request limit. For details, see: "
    "https://help.aliyun.com/zh/model-studio/error-code#rate-limit\",\"type\":\"limit_requests\","
    "\"code\":\"limit_requests\"},\"request_id\":\"8605e472\"}";

/* A native stream that opens with HTTP 200 and reports a TPM throttle in its first event
 * (dashscope-wire.md §3.1), and a good native stream (§4.2) of two events. */
static const char sse_throttle[] =
    "id:1\nevent:error\n:HTTP_STATUS/429\n"
    "data:{\"request_id\":\"70acdc21\",\"code\":\"Throttling.AllocationQuota\","
    "\"message\":\"Allocated quota exceeded, please increase your quota limit.\"}\n\n";
static const char sse_event1[] =
    "id:1\nevent:result\n:HTTP_STATUS/200\n"
    "data:{\"output\":{\"choices\":[{\"message\":{\"content\":\"hi\",\"role\":\"assistant\"},"
    "\"finish_reason\":\"null\"}]},\"usage\":{\"total_tokens\":27,\"output_tokens\":1,"
    "\"input_tokens\":26},\"request_id\":\"d30a\"}\n\n";
static const char sse_event2[] =
    "id:2\nevent:result\n:HTTP_STATUS/200\n"
    "data:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"role\":\"assistant\"},"
    "\"finish_reason\":\"stop\"}]},\"usage\":{\"total_tokens\":92,\"output_tokens\":66,"
    "\"input_tokens\":26},\"request_id\":\"d30a\"}\n\n";
/* A compatible stream's first chunk and the rest (§4.3). */
static const char compat_event1[] =
    "data: {\"choices\":[{\"delta\":{\"content\":\"hi\",\"role\":\"assistant\"},\"index\":0}],"
    "\"object\":\"chat.completion.chunk\",\"usage\":null,\"model\":\"qwen-plus\"}\n\n";
static const char compat_rest[] =
    "data: {\"choices\":[],\"object\":\"chat.completion.chunk\",\"usage\":{\"prompt_tokens\":22,"
    "\"completion_tokens\":17,\"total_tokens\":39}}\n\n"
    "data: [DONE]\n\n";

static int fake_sleep(uint64_t ms)
{
    struct fx *f = cur;
    assert_true(f->nslept < MAX_SLEEPS);
    f->slept[f->nslept++] = ms;
    if (f->nslept == f->sleep_fail_at)
        return -1;
    fake_ns += ms * 1000000u; /* the wait takes its time on the shim's clock */
    return 0;
}

static double fake_rand01(void) { return cur->rnd; }

/* Enforce mode as hook.c sets it up: answers held, 8 attempts, backoff from 1 s capped at
 * 30 s, 120 s in all; the jitter draw is 0.5, so the n-th wait is 500 * 2^(n-1) ms. */
static void hold_env(struct fx *f)
{
    f->env.hold_answers = 1;
    f->env.retry_max_attempts = 8;
    f->env.retry_base_ms = 1000;
    f->env.retry_max_ms = 30000;
    f->env.retry_max_total_ms = 120000;
    f->env.sleep_ms = fake_sleep;
    f->env.rand01 = fake_rand01;
    f->rnd = 0.5;
    f->sleep_fail_at = 0;
    f->nslept = 0;
    f->env.fallback = NULL;
    f->env.nfallback = 0;
}

/* How every read ends once the server has nothing more to say, and how much one read
 * returns at most (0: all there is). */
static void reads_end(struct fx *f, size_t slice, int end_rc, int end_err)
{
    f->fk.slice = slice;
    f->fk.end_rc = end_rc;
    f->fk.end_err = end_err;
}

/* conn_open for a run in enforce mode whose reads come in <slice>s and end with a clean
 * close; the sleeps of earlier runs are forgotten. */
static void hold_open(struct fx *f, const char *what, size_t slice)
{
    conn_open(f, HOST);
    f->nslept = 0;
    reads_end(f, slice, 0, ERR_ZERO_RETURN);
    snprintf(f->ctx, sizeof f->ctx, "%s: ex=%d slice=%zu", what, f->ex, slice);
}

/* The server answers the request it receives <n>th (1-based) with <ans>, once it has
 * received <after> bytes in all. */
static void add_turn(struct fx *f, const struct bytes *ans, size_t after)
{
    assert_true(f->fk.nturns < MAX_TURNS);
    bytes_add(&f->fk.turn[f->fk.nturns], ans->p, ans->len);
    f->fk.turn_after[f->fk.nturns++] = after;
}

/* Reads as the program would, <num> bytes per call, until a call fails, adding what it
 * got to <got>: every successful call returns 1 with 1..num bytes, and the failure is the
 * real read's own value (-1 or 0 from SSL_read as scripted, 0 from SSL_read_ex). */
static void prog_read(struct fx *f, size_t num, struct bytes *got)
{
    char *buf = malloc(num);
    assert_non_null(buf);
    bytes_add(got, "", 0);
    for (;;) {
        size_t n = 0x5eed;
        int rc = qs_conn_read(f->c, &f->env, f->ex, buf, num, &n);
        if (rc != 1) {
            assert_int_equal(rc, f->ex ? 0 : f->fk.end_rc);
            break;
        }
        assert_in_range(n, 1, num);
        bytes_add(got, buf, n);
    }
    free(buf);
}

/* The program got exactly <want>/<n>. */
static void assert_got(struct fx *f, const struct bytes *got, const char *want, size_t n)
{
    if (got->len != n || (n > 0 && memcmp(got->p, want, n) != 0)) {
        print_error("%s: program got %zu bytes:\n%.*s\nwant %zu bytes:\n%.*s\n", f->ctx, got->len,
                    (int)(got->len > 1500 ? 1500 : got->len), got->p ? got->p : "", n,
                    (int)(n > 1500 ? 1500 : n), want);
        fail();
    }
}

/* The server received <r> exactly <times> times, byte for byte the same. */
static void assert_sent_times(struct fx *f, const struct req *r, int times)
{
    struct bytes all = {0};
    bytes_add(&all, "", 0);
    for (int i = 0; i < times; i++)
        bytes_add(&all, r->want.p, r->want.len);
    assert_server(f, all.p, all.len);
    bytes_free(&all);
}

/* Checks record <i> as check_rec does, and its attempts and retry_ms. */
static void check_rec_n(struct fx *f, int i, const struct want *w, int attempts, int64_t retry_ms)
{
    check_rec(f, i, w);
    if (f->recs[i].attempts != attempts || f->recs[i].retry_ms != retry_ms)
        fail_msg("%s, record %d: attempts %d retry_ms %lld, want %d and %lld", f->ctx, i, f->recs[i].attempts,
                 (long long)f->recs[i].retry_ms, attempts, (long long)retry_ms);
}

/* The record of a throttle on <kind>'s request (qwen-plus) with <status> and <code>. */
static struct want throttle_want(const struct req_kind *kind, const char *event, int status, const char *code)
{
    struct want w = posted(event, kind->path, status, -1, -1);
    w.code = code;
    w.stream = (kind->flags & RQ_SSE) || kind->body == stream_body;
    return w;
}

/* Sends <kind>'s request in enforce mode; the server answers its successive copies with
 * <answers>; the program reads with <num>-byte calls until the connection ends cleanly.
 * Fills <r> (free_req it) and <got> (what the program read). */
static void run_turns(struct fx *f, const char *what, const struct req_kind *kind,
                      const struct bytes *answers, int n, size_t slice, size_t num, struct req *r,
                      struct bytes *got)
{
    make_req(r, "POST", kind->path, kind->body, kind->flags);
    hold_open(f, what, slice);
    send_req(f, r);
    for (int i = 0; i < n; i++)
        add_turn(f, &answers[i], (size_t)(i + 1) * r->want.len);
    prog_read(f, num, got);
}

static void free_answers(struct bytes *a, int n)
{
    for (int i = 0; i < n; i++)
        bytes_free(&a[i]);
}

static const size_t hold_slices[] = {0, 1, 7};

static void retry_429_case(struct fx *f)
{
    struct bytes ans[2] = {{0}}, got = {0};
    struct req r;

    make_answer(&ans[0], HEAD_429, rpm_429, A_LENGTH);
    make_answer(&ans[1], JSON_HEAD, chat_answer, A_LENGTH);
    for (size_t s = 0; s < sizeof hold_slices / sizeof hold_slices[0]; s++) {
        hold_env(f);
        run_turns(f, "429 then 200", &chat_req, ans, 2, hold_slices[s], 4096, &r, &got);
        /* Assumption: the program reads exactly the 200, never a byte of the 429; the server
         * got the request twice, byte for byte the same; the shim waited once, the first
         * backoff (0.5 * 1000 ms). */
        assert_got(f, &got, ans[1].p, ans[1].len);
        assert_sent_times(f, &r, 2);
        assert_int_equal(f->nslept, 1);
        assert_int_equal(f->slept[0], 500);
        /* Assumption: records "throttled" (429, its code, attempt 1), then "request" (200,
         * usage, attempt 2, retry_ms = the wait), and nothing else. */
        assert_int_equal(f->nrecs, 2);
        struct want w = throttle_want(&chat_req, "throttled", 429, "limit_requests");
        check_rec_n(f, 0, &w, 1, 0);
        w = posted("request", CHAT, 200, 22, 17);
        check_rec_n(f, 1, &w, 2, 500);
        bytes_free(&got);
        free_req(&r);
    }
    free_answers(ans, 2);
}

static void test_hold_429_then_200(void **state) { for_each_api(*state, retry_429_case); }

static void retry_small_reads_case(struct fx *f)
{
    struct bytes ans[3] = {{0}}, got = {0};
    struct req r;

    make_answer(&ans[0], HEAD_429, rpm_429, A_CHUNKED);
    make_answer(&ans[1], HEAD_429 "connection: keep-alive\r\n", "", A_LENGTH);
    make_answer(&ans[2], JSON_HEAD, chat_answer, A_CHUNKED);
    hold_env(f);
    /* Assumption: two throttles in a row (chunked, then a bare 429 without a body or code)
     * are both hidden, however small the program's reads (1 byte per call) and the
     * server's slices; the waits are the first two backoffs. */
    run_turns(f, "two 429s, 1-byte reads", &chat_req, ans, 3, 1, 1, &r, &got);
    assert_got(f, &got, ans[2].p, ans[2].len);
    assert_sent_times(f, &r, 3);
    assert_int_equal(f->nslept, 2);
    assert_int_equal(f->slept[0], 500);
    assert_int_equal(f->slept[1], 1000);
    assert_int_equal(f->nrecs, 3);
    struct want w = throttle_want(&chat_req, "throttled", 429, "limit_requests");
    check_rec_n(f, 0, &w, 1, 0);
    w.code = NULL;
    check_rec_n(f, 1, &w, 2, 500);
    w = posted("request", CHAT, 200, 22, 17);
    check_rec_n(f, 2, &w, 3, 1500);
    bytes_free(&got);
    free_req(&r);
    free_answers(ans, 3);
}

static void test_hold_two_429s_small_reads(void **state) { for_each_api(*state, retry_small_reads_case); }

static void sse_throttle_case(struct fx *f)
{
    struct bytes ans[2] = {{0}}, got = {0}, good = {0};
    struct req r;

    bytes_addf(&good, "%s%s", sse_event1, sse_event2);
    make_answer(&ans[0], SSE_HEAD, sse_throttle, A_CHUNKED);
    make_answer(&ans[1], SSE_HEAD, good.p, A_CHUNKED);
    for (size_t s = 0; s < sizeof hold_slices / sizeof hold_slices[0]; s++) {
        hold_env(f);
        run_turns(f, "native SSE throttle", &native_req, ans, 2, hold_slices[s], 4096, &r, &got);
        /* Assumption: a native stream whose HTTP 200 opens with event:error and
         * ":HTTP_STATUS/429" (Throttling.AllocationQuota, the TPM throttle) is hidden whole:
         * the program sees only the good stream of the replay. */
        assert_got(f, &got, ans[1].p, ans[1].len);
        assert_sent_times(f, &r, 2);
        assert_int_equal(f->nslept, 1);
        assert_int_equal(f->nrecs, 2);
        struct want w = throttle_want(&native_req, "throttled", 429, "Throttling.AllocationQuota");
        check_rec_n(f, 0, &w, 1, 0);
        w = posted("request", NATIVE, 200, 26, 66);
        w.stream = 1;
        check_rec_n(f, 1, &w, 2, 500);
        bytes_free(&got);
        free_req(&r);
    }
    free_answers(ans, 2);
    bytes_free(&good);
}

static void test_hold_native_sse_throttle(void **state) { for_each_api(*state, sse_throttle_case); }

static void test_hold_every_throttle_shape(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *head, *body, *code;
        int status;
    } cases[] = {
        {HEAD_429,
         "{\"error\":{\"code\":\"insufficient_quota\",\"message\":\"You exceeded your current quota, please "
         "check your plan and billing details.\",\"param\":null,\"type\":\"insufficient_quota\"}}",
         "insufficient_quota", 429},
        {HEAD_429,
         "{\"error\":{\"code\":\"limit_burst_rate\",\"message\":\"Request rate increased too quickly.\"}}",
         "limit_burst_rate", 429},
        {HEAD_429,
         "{\"request_id\":\"r\",\"code\":\"Throttling.RateQuota\",\"message\":\"Requests rate limit "
         "exceeded, please try again later.\"}",
         "Throttling.RateQuota", 429},
        {HEAD_429, "{\"code\":\"Throttling\",\"message\":\"Requests throttling triggered.\"}", "Throttling",
         429},
        {"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n",
         "{\"code\":\"ModelServingError\",\"message\":\"Too many requests. Your requests are being throttled "
         "due to system capacity limits. Please try again later.\"}",
         "ModelServingError", 500},
        {"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n",
         "{\"code\":\"ModelUnavailable\",\"message\":\"Model is unavailable, try again later.\"}",
         "ModelUnavailable", 503},
        {"HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/html\r\n", "<html>Too Many Requests</html>",
         NULL, 429},
    };
    struct bytes ans[2] = {{0}}, got = {0};
    struct req r;

    make_answer(&ans[1], JSON_HEAD, chat_answer, A_LENGTH);
    for (f->ex = 0; f->ex <= 1; f->ex++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            make_answer(&ans[0], cases[i].head, cases[i].body, i % 2 ? A_CHUNKED : A_LENGTH);
            hold_env(f);
            /* Assumption: every retryable row of SPEC §6 (TPM, burst, native RPM, generic,
             * 500/503 capacity, a gateway's bare 429) is hidden and replayed like the RPM 429:
             * the program reads only the 200; "throttled" carries the status and code. */
            run_turns(f, cases[i].head, &chat_req, ans, 2, 0, 4096, &r, &got);
            assert_got(f, &got, ans[1].p, ans[1].len);
            assert_sent_times(f, &r, 2);
            assert_int_equal(f->nrecs, 2);
            struct want w = throttle_want(&chat_req, "throttled", cases[i].status, cases[i].code);
            check_rec_n(f, 0, &w, 1, 0);
            w = posted("request", CHAT, 200, 22, 17);
            check_rec_n(f, 1, &w, 2, 500);
            bytes_free(&got);
            bytes_free(&ans[0]);
            free_req(&r);
        }
    }
    bytes_free(&ans[1]);
}

/* Head and one chunk per event: "<head>transfer-encoding: chunked\r\n\r\n<first chunk>"
 * into <first>, the other chunks and the last-chunk into <rest>. */
static void chunked_events(struct bytes *first, struct bytes *rest, const char *head, const char *ev1,
                           const char *ev2)
{
    bytes_addf(first, "%stransfer-encoding: chunked\r\n\r\n%zx\r\n%s\r\n", head, strlen(ev1), ev1);
    bytes_addf(rest, "%zx\r\n%s\r\n0\r\n\r\n", strlen(ev2), ev2);
}

static void first_event_case(struct fx *f, const struct req_kind *kind, const char *ev1, const char *ev2,
                             int64_t in, int64_t out)
{
    struct bytes first = {0}, rest = {0}, got = {0};
    struct req r;

    chunked_events(&first, &rest, SSE_HEAD, ev1, ev2);
    for (size_t s = 0; s < sizeof hold_slices / sizeof hold_slices[0]; s++) {
        hold_env(f);
        make_req(&r, "POST", kind->path, kind->body, kind->flags);
        hold_open(f, "first event released", hold_slices[s]);
        send_req(f, &r);
        /* Assumption: a good stream is released as soon as its first event is complete:
         * the server sends the head and the first event, then nothing (WANT_READ); the
         * program's reads return exactly those bytes, then the real WANT_READ. */
        bytes_add(&f->fk.ans, first.p, first.len);
        reads_end(f, hold_slices[s], -1, ERR_WANT_READ);
        prog_read(f, 4096, &got);
        assert_got(f, &got, first.p, first.len);
        assert_int_equal(f->nrecs, 0);
        /* Assumption: the rest of the stream then flows through; one record, no retry. */
        bytes_add(&f->fk.ans, rest.p, rest.len);
        reads_end(f, hold_slices[s], 0, ERR_ZERO_RETURN);
        bytes_free(&got);
        prog_read(f, 4096, &got);
        assert_got(f, &got, rest.p, rest.len);
        assert_sent_times(f, &r, 1);
        assert_int_equal(f->nslept, 0);
        assert_int_equal(f->nrecs, 1);
        struct want w = posted("request", kind->path, 200, in, out);
        w.stream = 1;
        check_rec_n(f, 0, &w, 1, 0);
        bytes_free(&got);
        free_req(&r);
    }
    bytes_free(&first);
    bytes_free(&rest);
}

static void first_event_both(struct fx *f)
{
    first_event_case(f, &native_req, sse_event1, sse_event2, 26, 66);
    first_event_case(f, &stream_req, compat_event1, compat_rest, 22, 17);
}

static void first_event_cut_case(struct fx *f)
{
    struct bytes first = {0}, rest = {0}, got = {0};
    struct req r;

    chunked_events(&first, &rest, SSE_HEAD, sse_event1, sse_event2);
    /* the first event ends with its blank line, before the chunk's CRLF */
    size_t event_end = strstr(first.p, "\r\n\r\n") + 4 - first.p;
    event_end = strchr(first.p + event_end, '\n') + 1 - first.p + strlen(sse_event1);
    make_req(&r, "POST", NATIVE, native_body, RQ_SSE);
    hold_env(f);
    for (size_t cut = 0; cut <= first.len; cut++) {
        hold_open(f, "stream cut", 0);
        snprintf(f->ctx, sizeof f->ctx, "stream cut after %zu bytes: ex=%d", cut, f->ex);
        send_req(f, &r);
        /* Assumption: when the server stops (WANT_READ) anywhere before the first event's
         * blank line, the program gets nothing but the real failure; from there on it gets
         * everything that arrived. */
        bytes_add(&f->fk.ans, first.p, cut);
        reads_end(f, 0, -1, ERR_WANT_READ);
        prog_read(f, 4096, &got);
        assert_got(f, &got, first.p, cut >= event_end ? cut : 0);
        bytes_free(&got);
        /* Assumption: then the stream continues unchanged, and is logged once. */
        bytes_add(&f->fk.ans, first.p + cut, first.len - cut);
        bytes_add(&f->fk.ans, rest.p, rest.len);
        reads_end(f, 0, 0, ERR_ZERO_RETURN);
        prog_read(f, 4096, &got);
        if (cut < event_end) {
            bytes_add(&first, rest.p, rest.len);
            assert_got(f, &got, first.p, first.len);
            first.len -= rest.len;
        } else {
            struct bytes tail = {0};
            bytes_addf(&tail, "%.*s%s", (int)(first.len - cut), first.p + cut, rest.p);
            assert_got(f, &got, tail.p, tail.len);
            bytes_free(&tail);
        }
        assert_int_equal(f->nrecs, 1);
        bytes_free(&got);
    }
    free_req(&r);
    bytes_free(&first);
    bytes_free(&rest);
}

static void test_hold_stream_cut(void **state) { for_each_api(*state, first_event_cut_case); }

static void test_hold_releases_first_event(void **state) { for_each_api(*state, first_event_both); }

static void test_hold_non_throttles_pass(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *head, *body, *code;
        int status;
    } cases[] = {
        {HEAD_429,
         "{\"error\":{\"code\":\"insufficient_quota\",\"message\":\"Free allocated quota exceeded.\","
         "\"param\":null,\"type\":\"insufficient_quota\"},\"request_id\":\"57553be3\"}",
         "insufficient_quota", 429},
        {HEAD_429,
         "{\"request_id\":\"r\",\"code\":\"Throttling.AllocationQuota\",\"message\":\"Free allocated quota "
         "exceeded.\"}",
         "Throttling.AllocationQuota", 429},
        {HEAD_429, "{\"code\":\"PrepaidBillOverdue\",\"message\":\"The prepaid bill is overdue.\"}",
         "PrepaidBillOverdue", 429},
        {"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n",
         "{\"error\":{\"message\":\"Access denied, please make sure your account is in good standing.\","
         "\"type\":\"Arrearage\",\"param\":null,\"code\":\"Arrearage\"},\"request_id\":\"8605e472\"}",
         "Arrearage", 400},
        {"HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\n",
         "{\"error\":{\"message\":\"The free tier of the model has been exhausted.\","
         "\"type\":\"AllocationQuota.FreeTierOnly\",\"code\":\"AllocationQuota.FreeTierOnly\"}}",
         "AllocationQuota.FreeTierOnly", 403},
        {"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n",
         "{\"code\":\"InternalError\",\"message\":\"An internal error has occured, try again later.\"}",
         "InternalError", 500},
        {"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\n", "Not Found", NULL, 404},
    };
    static const enum framing framings[] = {A_LENGTH, A_CHUNKED};
    struct req req;

    make_req(&req, "POST", CHAT, chat_body, 0);

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t k = 0; k < sizeof framings / sizeof framings[0]; k++) {
            const struct exchange_case x = {
                .req = &chat_req, .head = cases[i].head, .answer = cases[i].body, .framing = framings[k]};
            struct want w = posted("request", CHAT, cases[i].status, -1, -1);
            w.code = cases[i].code;
            hold_env(f);
            /* Assumption: in enforce mode an error the program must see (free quota even
             * under a throttling code, billing, 400 Arrearage, 403, 500 InternalError, 404)
             * reaches it byte for byte, in every read slicing, with one record and no wait
             * (so no replay). */
            check_exchange(f, &x, &w);
            assert_int_equal(f->nslept, 0);
            assert_sent_times(f, &req, 1); /* the last run's server */
        }
    }
    /* Assumption: the same for a native stream whose first event is a non-throttle error. */
    const struct exchange_case x = {.req = &native_req,
                                    .head = SSE_HEAD,
                                    .answer =
                                        "id:1\nevent:error\n:HTTP_STATUS/400\n"
                                        "data:{\"code\":\"InvalidParameter\",\"message\":\"Role must be "
                                        "user or assistant\",\"request_id\":\"7671ecd8\"}\n\n",
                                    .framing = A_CHUNKED};
    struct want w = throttle_want(&native_req, "request", 400, "InvalidParameter");
    hold_env(f);
    check_exchange(f, &x, &w);
    assert_int_equal(f->nslept, 0);
    free_req(&req);
}

/* Sum of the first <n> recorded waits. */
static int64_t slept_sum(const struct fx *f, int n)
{
    int64_t sum = 0;
    for (int i = 0; i < n && i < f->nslept; i++)
        sum += (int64_t)f->slept[i];
    return sum;
}

/* Checks that the records start with one "throttled" per hidden 429 (<hidden> of them, each
 * with its attempt and the waits before it) and end with the "request" record <w> after
 * <attempts> sends and the waits of all the replays. */
static void check_hidden_then(struct fx *f, int hidden, const struct want *w, int attempts)
{
    assert_true(f->nrecs >= hidden + 1);
    struct want t = throttle_want(&chat_req, "throttled", 429, "limit_requests");
    for (int i = 0; i < hidden; i++)
        check_rec_n(f, i, &t, i + 1, slept_sum(f, i));
    check_rec_n(f, f->nrecs - 1, w, attempts, slept_sum(f, attempts - 1));
}

static void test_hold_success_unchanged(void **state)
{
    struct fx *f = *state;
    char sse[1024];
    snprintf(sse, sizeof sse, "%s%s", sse_event1, sse_event2);
    char compat[1024];
    snprintf(compat, sizeof compat, "%s%s", compat_event1, compat_rest);
    const struct exchange_case cases[] = {
        {.req = &chat_req, .head = JSON_HEAD, .answer = chat_answer},
        {.req = &chat_req, .head = JSON_HEAD, .answer = chat_answer, .framing = A_CHUNKED},
        {.req = &chat_req, .prelude = CONTINUE, .head = JSON_HEAD, .answer = chat_answer},
        {.req = &chat_req, .head = JSON_HEAD, .answer = chat_answer, .framing = A_CLOSE},
        {.req = &native_req, .head = SSE_HEAD, .answer = sse, .framing = A_CHUNKED},
        {.req = &stream_req, .head = SSE_HEAD, .answer = compat, .framing = A_CHUNKED},
        {.req = &stream_req, .head = SSE_HEAD, .answer = compat, .framing = A_CLOSE},
    };
    static const int64_t usage[][2] = {{22, 17}, {22, 17}, {22, 17}, {22, 17}, {26, 66}, {22, 17}, {22, 17}};

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct want w = posted("request", cases[i].req->path, 200, usage[i][0], usage[i][1]);
        w.stream = cases[i].req != &chat_req;
        hold_env(f);
        /* Assumption: in enforce mode a success reaches the program byte for byte, in every
         * read slicing and with both APIs (Content-Length, chunked, after an interim 100,
         * framed by close, native and compatible streams), logged once, never replayed. */
        check_exchange(f, &cases[i], &w);
        assert_int_equal(f->nslept, 0);
    }
    /* Assumption: a 204 without a body is released with its head. */
    const struct exchange_case none = {.req = &chat_req,
                                       .head = "HTTP/1.1 204 No Content\r\n",
                                       .answer = "",
                                       .framing = A_CLOSE,
                                       .end_rc = -1,
                                       .end_err = ERR_WANT_READ};
    struct want w = posted("request", CHAT, 204, -1, -1);
    check_exchange(f, &none, &w);
}

static void test_hold_expect_continue(void **state)
{
    struct fx *f = *state;
    static const struct req_kind expect_req = {CHAT, chat_body, RQ_EXPECT};
    struct bytes ans[2] = {{0}}, got = {0}, want = {0};
    struct req r;

    make_answer(&ans[0], HEAD_429, rpm_429, A_LENGTH);
    make_answer(&ans[1], JSON_HEAD, chat_answer, A_LENGTH);
    bytes_addf(&want, "%s%s", CONTINUE, ans[1].p);
    for (f->ex = 0; f->ex <= 1; f->ex++) {
        for (size_t s = 0; s < sizeof hold_slices / sizeof hold_slices[0]; s++) {
            hold_env(f);
            /* Assumption: a request with Expect: 100-continue gets the shim's own "100
             * Continue", then, its 429 hidden, only the 200: the replay carries no Expect. */
            run_turns(f, "Expect with a 429", &expect_req, ans, 2, hold_slices[s], 4096, &r, &got);
            assert_got(f, &got, want.p, want.len);
            assert_sent_times(f, &r, 2);
            assert_int_equal(f->nrecs, 2);
            bytes_free(&got);
            free_req(&r);
        }
    }
    bytes_free(&want);
    free_answers(ans, 2);
}

/* Runs the chat request against <n> answers (env already set), for both APIs and the
 * usual slicings, and checks that the program got answer <sends> - 1 unchanged after
 * <sleeps> waits, that the server got <sends> copies, and that the records are one
 * "throttled" per hidden 429, then "request" with the last answer's status and <reason>. */
static void check_give_up(struct fx *f, const char *what, const struct bytes *ans, int n, int sends,
                          int sleeps, const char *reason)
{
    struct bytes got = {0};
    struct req r;

    for (f->ex = 0; f->ex <= 1; f->ex++) {
        for (size_t s = 0; s < sizeof hold_slices / sizeof hold_slices[0]; s++) {
            run_turns(f, what, &chat_req, ans, n, hold_slices[s], 4096, &r, &got);
            assert_got(f, &got, ans[sends - 1].p, ans[sends - 1].len);
            assert_sent_times(f, &r, sends);
            assert_int_equal(f->nslept, sleeps);
            struct want w = throttle_want(&chat_req, "request", 429, "limit_requests");
            w.reason = reason;
            check_hidden_then(f, sends - 1, &w, sends);
            bytes_free(&got);
            free_req(&r);
        }
    }
}

static void test_hold_give_up_close(void **state)
{
    struct fx *f = *state;
    struct bytes ans[2] = {{0}};

    make_answer(&ans[0], HEAD_429 "connection: close\r\n", rpm_429, A_LENGTH);
    make_answer(&ans[1], JSON_HEAD, chat_answer, A_LENGTH);
    hold_env(f);
    /* Assumption: a 429 that closes the connection cannot be replayed on it: the program
     * gets it unchanged at once (no wait), and its own retry takes over. */
    check_give_up(f, "429 with Connection: close", ans, 2, 1, 0, "the server closed the connection");
    free_answers(ans, 2);
}

static void test_hold_replay_unanswered(void **state)
{
    struct fx *f = *state;
    struct bytes ans[1] = {{0}}, got = {0};
    struct req r;

    make_answer(&ans[0], HEAD_429, rpm_429, A_LENGTH);
    hold_env(f);
    for (f->ex = 0; f->ex <= 1; f->ex++) {
        for (size_t s = 0; s < sizeof hold_slices / sizeof hold_slices[0]; s++) {
            /* Assumption (SPEC section 6): the connection ends after the replay went out but
             * before a byte of its answer (a server closing an idle keep-alive connection
             * during the backoff): the program gets the throttle it was hiding, byte for
             * byte, and then the end, not a connection broken mid-request. That throttle
             * was not hidden after all: one "request" record with it, no "throttled". */
            run_turns(f, "closed before the replay's answer", &chat_req, ans, 1, hold_slices[s], 4096, &r,
                      &got);
            assert_got(f, &got, ans[0].p, ans[0].len);
            assert_sent_times(f, &r, 2);
            assert_int_equal(f->nslept, 1);
            struct want w = throttle_want(&chat_req, "request", 429, "limit_requests");
            w.reason = "the server closed the connection before the replay was answered";
            assert_int_equal(f->nrecs, 1);
            check_rec_n(f, 0, &w, 2, slept_sum(f, 1));
            bytes_free(&got);
            free_req(&r);
        }
    }
    free_answers(ans, 1);
}

static void test_hold_give_up_max_attempts(void **state)
{
    struct fx *f = *state;
    struct bytes ans[4] = {{0}};

    for (int i = 0; i < 4; i++)
        make_answer(&ans[i], HEAD_429, rpm_429, A_LENGTH);
    hold_env(f);
    f->env.retry_max_attempts = 3;
    /* Assumption: max_attempts counts sends: with 3, the server gets the request 3 times,
     * the shim waits twice (500, 1000 ms), and the third 429 reaches the program. */
    check_give_up(f, "max_attempts 3", ans, 4, 3, 2, "retry.max_attempts reached");
    assert_int_equal(f->slept[0], 500);
    assert_int_equal(f->slept[1], 1000);
    /* Assumption: max_attempts 1 means no replay at all, and no wait. */
    f->env.retry_max_attempts = 1;
    check_give_up(f, "max_attempts 1", ans, 4, 1, 0, "retry.max_attempts reached");
    free_answers(ans, 4);
}

static void test_hold_give_up_max_total(void **state)
{
    struct fx *f = *state;
    struct bytes ans[4] = {{0}};

    for (int i = 0; i < 4; i++)
        make_answer(&ans[i], HEAD_429, rpm_429, A_LENGTH);
    hold_env(f);
    f->env.retry_max_total_ms = 1200;
    /* Assumption: a wait that would end past max_total_ms (counted from the request's send)
     * is not started: the first (500 ms) fits, the second (500 + 1000 > 1200) does not, so
     * the second 429 reaches the program after one wait. */
    check_give_up(f, "max_total_ms 1200", ans, 4, 2, 1, "retry.max_total_ms reached");
    assert_int_equal(f->slept[0], 500);
    free_answers(ans, 4);
}

static void test_hold_give_up_interrupted(void **state)
{
    struct fx *f = *state;
    struct bytes ans[3] = {{0}};

    for (int i = 0; i < 3; i++)
        make_answer(&ans[i], HEAD_429, rpm_429, A_LENGTH);
    hold_env(f);
    f->sleep_fail_at = 2;
    /* Assumption: a wait interrupted by a signal (sleep_ms -1) gives the program the 429 it
     * was hiding: the first wait completes and the request is replayed once; the second is
     * interrupted, and the second 429 is delivered. Interrupted time is not counted. */
    check_give_up(f, "second wait interrupted", ans, 3, 2, 2, "interrupted");
    f->sleep_fail_at = 1;
    check_give_up(f, "first wait interrupted", ans, 3, 1, 1, "interrupted");
    free_answers(ans, 3);
}

/* A 429 and a 200 for a chat request, answers held. */
static void throttle_then_ok(struct fx *f, struct bytes *a429, struct bytes *ok, struct req *r)
{
    make_answer(a429, HEAD_429, rpm_429, A_LENGTH);
    make_answer(ok, JSON_HEAD, chat_answer, A_LENGTH);
    make_req(r, "POST", CHAT, chat_body, 0);
    hold_env(f);
}

static int yes(SSL *s)
{
    (void)s;
    return 1;
}

/* A held 429 whose backoff a signal cuts short in a program that can be asked: the read
 * returns the shim's WANT_WRITE (after the checks of yield_case). */
static void interrupted_backoff(struct fx *f, const char *what, struct bytes *a429, struct bytes *ok,
                                struct req *r)
{
    char buf[64];
    throttle_then_ok(f, a429, ok, r);
    f->env.may_yield = yes;
    hold_open(f, what, 0);
    send_req(f, r);
    add_turn(f, a429, r->want.len);
    add_turn(f, ok, 2 * r->want.len);
    f->sleep_fail_at = 1;
    size_t n = 0x5eed;
    int rc = qs_conn_read(f->c, &f->env, f->ex, buf, sizeof buf, &n);
    f->sleep_fail_at = 0;
    assert_int_equal(rc, f->ex ? 0 : -1);
    assert_int_equal(qs_conn_error(f->c, rc), 3 /* SSL_ERROR_WANT_WRITE */);
}

static void yield_case(struct fx *f)
{
    struct bytes a429 = {0}, ok = {0}, got = {0};
    struct req r;

    /* Assumption: a signal during the backoff of a program that can be asked (CPython over a
     * socket) hands it WANT_WRITE from its read: nothing delivered, the replay not yet sent,
     * nothing logged; SSL_get_error for that failure is the shim's. */
    interrupted_backoff(f, "backoff interrupted, program asked", &a429, &ok, &r);
    assert_sent_times(f, &r, 1);
    assert_int_equal(f->nrecs, 0);
    /* Assumption: its handler did not raise, so it reads again: the wait resumes, the request
     * is replayed, and the program gets only the 200; the shim's failure is forgotten. */
    prog_read(f, 4096, &got);
    assert_got(f, &got, ok.p, ok.len);
    assert_sent_times(f, &r, 2);
    assert_int_equal(qs_conn_error(f->c, 0), -1);
    assert_int_equal(f->nrecs, 2);
    assert_string_equal(f->recs[0].event, "throttled");
    assert_int_equal(f->recs[1].status, 200);
    f->env.may_yield = NULL;
    bytes_free(&a429);
    bytes_free(&ok);
    bytes_free(&got);
    free_req(&r);
}

static void yield_then_write_case(struct fx *f)
{
    struct bytes a429 = {0}, ok = {0}, got = {0}, want = {0}, server = {0};
    struct req r;

    interrupted_backoff(f, "backoff interrupted, then a new request", &a429, &ok, &r);
    /* Assumption: a program that, handed WANT_WRITE during a backoff, writes a new request
     * instead of reading on has given up on that answer: no replay is sent, it reads the
     * throttle first and then the new request's answer, as without the shim; the throttle's
     * request is logged with the 429 it got. */
    prog_write(f, r.orig.p, r.orig.len);
    bytes_add(&server, r.want.p, r.want.len);
    bytes_add(&server, r.want.p, r.want.len);
    assert_server(f, server.p, server.len);
    prog_read(f, 4096, &got);
    bytes_add(&want, a429.p, a429.len);
    bytes_add(&want, ok.p, ok.len);
    assert_got(f, &got, want.p, want.len);
    assert_int_equal(f->nrecs, 2);
    assert_string_equal(f->recs[0].event, "request");
    assert_int_equal(f->recs[0].status, 429);
    assert_string_equal(f->recs[0].reason, "another request follows");
    assert_int_equal(f->recs[1].status, 200);
    f->env.may_yield = NULL;
    bytes_free(&a429);
    bytes_free(&ok);
    bytes_free(&got);
    bytes_free(&want);
    bytes_free(&server);
    free_req(&r);
}

static void test_hold_yield_then_write(void **state) { for_each_api(*state, yield_then_write_case); }

static void test_hold_backoff_yield(void **state) { for_each_api(*state, yield_case); }

static void test_hold_give_up_not_hidden(void **state)
{
    struct fx *f = *state;
    struct bytes ans[3] = {{0}}, got = {0};
    struct req r;

    for (int i = 0; i < 3; i++)
        make_answer(&ans[i], HEAD_429, rpm_429, A_LENGTH);
    hold_env(f);
    f->env.retry_max_attempts = 2;
    f->ex = 0;
    run_turns(f, "not hidden", &chat_req, ans, 3, 0, 4096, &r, &got);
    /* Assumption (SPEC §7: "throttled" is "a hidden 429"; qshim-log summary counts throttles
     * hidden and throttles passed on): of two 429s, the first was hidden and the second
     * passed on, so there is one "throttled" record and one "request" record with status
     * 429, not a "throttled" record for the 429 the program saw. */
    assert_got(f, &got, ans[1].p, ans[1].len);
    int throttled = 0;
    for (int i = 0; i < f->nrecs; i++)
        throttled += strcmp(f->recs[i].event, "throttled") == 0;
    bytes_free(&got);
    free_req(&r);
    free_answers(ans, 3);
    if (throttled != 1 || f->nrecs != 2)
        fail_msg("%d records, %d of them \"throttled\"; want 2 records, 1 \"throttled\"", f->nrecs,
                 throttled);
}

static void retry_after_case(struct fx *f, const char *header, uint64_t want_ms)
{
    struct bytes ans[2] = {{0}}, got = {0}, head = {0};
    struct req r;

    bytes_addf(&head, "%s%s\r\n", HEAD_429, header);
    make_answer(&ans[0], head.p, rpm_429, A_LENGTH);
    make_answer(&ans[1], JSON_HEAD, chat_answer, A_LENGTH);
    hold_env(f);
    run_turns(f, header, &chat_req, ans, 2, 0, 4096, &r, &got);
    /* Assumption: the server's delay is the one waited (not the backoff) and logged. */
    assert_got(f, &got, ans[1].p, ans[1].len);
    assert_int_equal(f->nslept, 1);
    if (f->slept[0] != want_ms)
        fail_msg("%s: waited %llu ms, want %llu", header, (unsigned long long)f->slept[0],
                 (unsigned long long)want_ms);
    assert_int_equal(f->nrecs, 2);
    struct want w = posted("request", CHAT, 200, 22, 17);
    check_rec_n(f, 1, &w, 2, (int64_t)want_ms);
    bytes_free(&got);
    bytes_free(&head);
    free_req(&r);
    free_answers(ans, 2);
}

static void retry_after_all(struct fx *f)
{
    retry_after_case(f, "retry-after-ms: 1234", 1234);
    retry_after_case(f, "Retry-After-Ms: 250.7", 251); /* rounded up */
    retry_after_case(f, "retry-after: 2", 2000);
    /* Assumption: retry-after-ms wins over Retry-After when both are given. */
    retry_after_case(f, "retry-after: 7\r\nretry-after-ms: 300", 300);
}

static void test_hold_retry_after(void **state) { for_each_api(*state, retry_after_all); }

static void test_hold_retry_after_too_long(void **state)
{
    struct fx *f = *state;
    struct bytes ans[2] = {{0}};

    make_answer(&ans[0], HEAD_429 "retry-after: 600\r\n", rpm_429, A_LENGTH);
    make_answer(&ans[1], JSON_HEAD, chat_answer, A_LENGTH);
    hold_env(f);
    /* Assumption: a server delay longer than max_total_ms (600 s > 120 s) is not waited:
     * the program gets the 429 (with its Retry-After) at once. */
    check_give_up(f, "Retry-After 600", ans, 2, 1, 0, "retry.max_total_ms reached");
    free_answers(ans, 2);
}

static void want_read_hold_case(struct fx *f)
{
    struct bytes a429 = {0}, ok = {0}, got = {0};
    struct req r;
    char buf[4096];

    throttle_then_ok(f, &a429, &ok, &r);
    for (size_t cut = 0; cut < a429.len; cut++) {
        hold_open(f, "WANT_READ while holding", 0);
        snprintf(f->ctx, sizeof f->ctx, "WANT_READ after %zu bytes of the 429: ex=%d", cut, f->ex);
        send_req(f, &r);
        /* Assumption: with a non-blocking socket or memory BIO, when the real read has
         * nothing more (WANT_READ) while a possible throttle is held, the program's read
         * returns that real failure (SSL_get_error asked with it) and nothing is delivered
         * or counted as pending. */
        bytes_add(&f->fk.ans, a429.p, cut);
        reads_end(f, 0, -1, ERR_WANT_READ);
        size_t n = 0x5eed;
        int rc = qs_conn_read(f->c, &f->env, f->ex, buf, sizeof buf, &n);
        assert_int_equal(rc, f->ex ? 0 : -1);
        assert_int_equal(f->fk.err_ret, rc);
        assert_int_equal(qs_conn_pending(f->c), 0);
        assert_int_equal(f->nrecs, 0);
        /* Assumption: the next calls continue: the rest of the 429 is hidden, the request
         * replayed, and the program gets only the 200. */
        bytes_add(&f->fk.ans, a429.p + cut, a429.len - cut);
        add_turn(f, &ok, 2 * r.want.len);
        reads_end(f, 0, 0, ERR_ZERO_RETURN);
        prog_read(f, sizeof buf, &got);
        assert_got(f, &got, ok.p, ok.len);
        assert_sent_times(f, &r, 2);
        assert_int_equal(f->nrecs, 2);
        bytes_free(&got);
    }
    /* Assumption: WANT_READ while waiting for the replay's answer is returned too, after
     * the replay went out; nothing is delivered until that answer comes, and the throttle
     * is recorded as hidden only then (until then it may still reach the program). */
    hold_open(f, "WANT_READ awaiting the replay's answer", 0);
    send_req(f, &r);
    bytes_add(&f->fk.ans, a429.p, a429.len);
    reads_end(f, 0, -1, ERR_WANT_READ);
    prog_read(f, sizeof buf, &got);
    assert_int_equal(got.len, 0);
    assert_sent_times(f, &r, 2);
    assert_int_equal(f->nrecs, 0);
    bytes_add(&f->fk.ans, ok.p, ok.len);
    prog_read(f, sizeof buf, &got);
    assert_got(f, &got, ok.p, ok.len);
    assert_int_equal(f->nrecs, 2);
    bytes_free(&got);
    bytes_free(&a429);
    bytes_free(&ok);
    free_req(&r);
}

static void test_hold_want_read(void **state) { for_each_api(*state, want_read_hold_case); }

static void replay_want_write_case(struct fx *f, size_t chunk, int every)
{
    struct bytes ans[2] = {{0}}, got = {0};
    struct req r;
    char buf[4096];

    make_answer(&ans[0], HEAD_429, rpm_429, A_LENGTH);
    make_answer(&ans[1], JSON_HEAD, chat_answer, A_LENGTH);
    make_req(&r, "POST", CHAT, chat_body, 0);
    hold_env(f);
    hold_open(f, "replay WANT_WRITE", 0);
    send_req(f, &r);
    add_turn(f, &ans[0], r.want.len);
    add_turn(f, &ans[1], 2 * r.want.len);
    reads_end(f, 0, 0, ERR_ZERO_RETURN);
    f->fk.fail_first = 1;
    f->fk.chunk = chunk;
    f->fk.fail_every = every;
    /* Assumption: the replay's first real write fails (WANT_WRITE on a non-blocking
     * socket): the program's read returns the real failure value (what SSL_write /
     * SSL_write_ex returned: SSL_get_error then says WANT_WRITE, which a reader handles),
     * with nothing delivered and nothing of the replay lost. */
    size_t n = 0x5eed;
    int rc = qs_conn_read(f->c, &f->env, f->ex, buf, sizeof buf, &n);
    assert_int_equal(rc, f->ex ? 0 : f->fk.fail_rc);
    assert_int_equal(qs_conn_pending(f->c), 0);
    assert_int_equal(f->nslept, 1);
    /* Assumption: the next read calls finish the replay (partial writes continue where
     * they stopped) and then read its answer: exactly the 200. */
    int fails = 0;
    for (;;) {
        n = 0x5eed;
        rc = qs_conn_read(f->c, &f->env, f->ex, buf, sizeof buf, &n);
        if (rc == 1) {
            bytes_add(&got, buf, n);
            continue;
        }
        if (f->fk.ans_off < f->fk.ans.len || f->fk.next_turn < f->fk.nturns) {
            assert_int_equal(rc, f->ex ? 0 : f->fk.fail_rc); /* a write failure */
            assert_true(++fails < 1000);
            continue;
        }
        assert_int_equal(rc, f->ex ? 0 : f->fk.end_rc);
        break;
    }
    assert_got(f, &got, ans[1].p, ans[1].len);
    assert_sent_times(f, &r, 2);
    assert_int_equal(f->nslept, 1);
    assert_int_equal(f->nrecs, 2);
    struct want w = posted("request", CHAT, 200, 22, 17);
    check_rec_n(f, 1, &w, 2, 500);
    bytes_free(&got);
    free_req(&r);
    free_answers(ans, 2);
}

static void replay_want_write_all(struct fx *f)
{
    replay_want_write_case(f, 0, 0);
    replay_want_write_case(f, 7, 2);
}

static void test_hold_replay_want_write(void **state) { for_each_api(*state, replay_want_write_all); }

/* Two chat requests in one write (the second for qwen-turbo); the server answers them
 * with <a1> and <a2> at once. */
static void pipelined_answers(struct fx *f, const struct bytes *a1, const struct bytes *a2, struct bytes *got)
{
    static const char body2[] =
        "{\"model\":\"qwen-turbo\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    struct bytes both = {0}, want = {0};
    struct req r1, r2;

    make_req(&r1, "POST", CHAT, chat_body, 0);
    make_req(&r2, "POST", CHAT, body2, 0);
    bytes_addf(&both, "%s%s", r1.orig.p, r2.orig.p);
    bytes_addf(&want, "%s%s", r1.want.p, r2.want.p);
    prog_write(f, both.p, both.len);
    assert_server(f, want.p, want.len);
    bytes_add(&f->fk.ans, a1->p, a1->len);
    bytes_add(&f->fk.ans, a2->p, a2->len);
    prog_read(f, 4096, got);
    /* no replay: the server got each request once */
    assert_server(f, want.p, want.len);
    bytes_free(&both);
    bytes_free(&want);
    free_req(&r1);
    free_req(&r2);
}

static void pipelined_hold_case(struct fx *f)
{
    struct bytes a429 = {0}, ok = {0}, got = {0}, want = {0};

    make_answer(&a429, HEAD_429, rpm_429, A_LENGTH);
    make_answer(&ok, JSON_HEAD, chat_answer, A_LENGTH);
    bytes_addf(&want, "%s%s", a429.p, ok.p);
    for (size_t s = 0; s < sizeof hold_slices / sizeof hold_slices[0]; s++) {
        hold_env(f);
        hold_open(f, "pipelined", hold_slices[s]);
        /* Assumption: with two requests in flight the first answer is not held (replaying
         * it would reorder the answers): its 429 reaches the program as is, then the 200. */
        pipelined_answers(f, &a429, &ok, &got);
        assert_got(f, &got, want.p, want.len);
        assert_int_equal(f->nslept, 0);
        assert_int_equal(f->nrecs, 2);
        struct want w = throttle_want(&chat_req, "request", 429, "limit_requests");
        check_rec_n(f, 0, &w, 1, 0);
        bytes_free(&got);
    }
    bytes_free(&a429);
    bytes_free(&ok);
    bytes_free(&want);
}

static void test_hold_pipelined_not_held(void **state) { for_each_api(*state, pipelined_hold_case); }

static void pipelined_during_hold_case(struct fx *f)
{
    static const char body2[] =
        "{\"model\":\"qwen-turbo\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    struct bytes a429 = {0}, ok = {0}, got = {0}, want = {0};
    struct req r1, r2;
    char buf[64];

    make_answer(&a429, HEAD_429, rpm_429, A_LENGTH);
    make_answer(&ok, JSON_HEAD, chat_answer, A_LENGTH);
    bytes_addf(&want, "%s%s", a429.p, ok.p);
    make_req(&r1, "POST", CHAT, chat_body, 0);
    make_req(&r2, "POST", CHAT, body2, 0);
    hold_env(f);
    hold_open(f, "pipelined while holding", 0);
    send_req(f, &r1);
    /* The program (non-blocking) reads once before any answer: the shim starts holding
     * the one answer in flight; then it pipelines a second request. */
    reads_end(f, 0, -1, ERR_WANT_READ);
    size_t n = 0;
    assert_int_equal(qs_conn_read(f->c, &f->env, f->ex, buf, sizeof buf, &n), f->ex ? 0 : -1);
    prog_write(f, r2.orig.p, r2.orig.len);
    /* Assumption (SPEC §3 "pipelining must not break"; answer.c: replaying one of several
     * pipelined requests would reorder the answers): the server answers both, 429 then
     * 200, in one burst. The program must get both answers, in order, byte for byte;
     * the first request must not be replayed behind the second. */
    bytes_addf(&f->fk.ans, "%s%s", a429.p, ok.p);
    reads_end(f, 0, 0, ERR_ZERO_RETURN);
    prog_read(f, 4096, &got);
    /* (checked after freeing, so that a failure leaks nothing under valgrind) */
    int got_ok = got.len == want.len && memcmp(got.p, want.p, want.len) == 0;
    size_t got_len = got.len, server_len = f->fk.server.len;
    bytes_free(&want);
    bytes_addf(&want, "%s%s", r1.want.p, r2.want.p);
    int server_ok = server_len == want.len && memcmp(f->fk.server.p, want.p, want.len) == 0;
    size_t want_server = want.len, want_got = a429.len + ok.len;
    bytes_free(&got);
    bytes_free(&a429);
    bytes_free(&ok);
    bytes_free(&want);
    free_req(&r1);
    free_req(&r2);
    if (!got_ok || !server_ok)
        fail_msg("%s: program got %zu bytes (want the 429 and the 200, %zu bytes%s); server got %zu bytes "
                 "(want the two requests once, %zu bytes%s)",
                 f->ctx, got_len, want_got, got_ok ? ", ok" : "", server_len, want_server,
                 server_ok ? ", ok" : "");
}

static void test_hold_pipelined_while_holding(void **state)
{
    for_each_api(*state, pipelined_during_hold_case);
}

static void test_observe_mode_no_hold(void **state)
{
    struct fx *f = *state;
    const struct exchange_case x = {.req = &chat_req, .head = HEAD_429, .answer = rpm_429};
    const struct exchange_case sse = {
        .req = &native_req, .head = SSE_HEAD, .answer = sse_throttle, .framing = A_CHUNKED};
    struct want w = throttle_want(&chat_req, "request", 429, "limit_requests");
    struct req r;

    /* Assumption: with hold_answers = 0 (observe mode) a throttle reaches the program as it
     * comes, in every slicing, logged once, never waited for or replayed, even with the
     * retry settings and sleep function in place. */
    hold_env(f);
    f->env.hold_answers = 0;
    check_exchange(f, &x, &w);
    assert_int_equal(f->nslept, 0);
    make_req(&r, "POST", CHAT, chat_body, 0);
    assert_sent_times(f, &r, 1);
    free_req(&r);
    w = throttle_want(&native_req, "request", 429, "Throttling.AllocationQuota");
    check_exchange(f, &sse, &w);
    assert_int_equal(f->nslept, 0);
}

/* A JSON body of about <size> bytes: {"error":{"code":"<code>","message":"xxx..."}}. */
static void big_body(struct bytes *b, const char *code, size_t size)
{
    bytes_addf(b, "{\"error\":{\"code\":\"%s\",\"message\":\"", code);
    while (b->len < size)
        bytes_add(b, "0123456789abcdef", 16);
    bytes_addf(b, "\"}}");
}

/* Sends the chat request in enforce mode; the server sends the first <part> bytes of
 * <ans> and then WANT_READ. Returns, in <got>, what the program could read meanwhile. */
static void partial_answer(struct fx *f, const char *what, const struct bytes *ans, size_t part, size_t slice,
                           struct bytes *got)
{
    struct req r;

    make_req(&r, "POST", CHAT, chat_body, 0);
    hold_open(f, what, slice);
    send_req(f, &r);
    bytes_add(&f->fk.ans, ans->p, part);
    reads_end(f, slice, -1, ERR_WANT_READ);
    prog_read(f, 4096, got);
    free_req(&r);
}

/* Lets the server send the rest of its answer and end; the program must get it all. */
static void rest_of_answer(struct fx *f, const struct bytes *ans, size_t part)
{
    struct bytes got = {0};

    bytes_add(&f->fk.ans, ans->p + part, ans->len - part);
    reads_end(f, f->fk.slice, 0, ERR_ZERO_RETURN);
    prog_read(f, 4096, &got);
    assert_got(f, &got, ans->p + part, ans->len - part);
    bytes_free(&got);
}

static void big_answers_case(struct fx *f, size_t slice)
{
    struct bytes body = {0}, ok = {0}, a429 = {0}, got = {0};

    big_body(&body, "none", 100 * 1024);
    make_answer(&ok, JSON_HEAD, body.p, A_LENGTH);
    bytes_free(&body);
    big_body(&body, "limit_requests", 100 * 1024);
    make_answer(&a429, HEAD_429, body.p, A_LENGTH);
    hold_env(f);

    /* Assumption: a 200 that is not a stream cannot be a throttle: it is released with its
     * head, so the program reads the head and the first 10 body bytes before the rest of a
     * 100 KiB answer arrives. */
    size_t head_len = strstr(ok.p, "\r\n\r\n") + 4 - ok.p;
    partial_answer(f, "big 200", &ok, head_len + 10, slice, &got);
    assert_got(f, &got, ok.p, head_len + 10);
    rest_of_answer(f, &ok, head_len + 10);
    assert_int_equal(f->nrecs, 1);
    bytes_free(&got);

    /* Assumption (answer.c HOLD_MAX): an undecided answer is held up to 64 KiB past what
     * was released; a 429 with a 100 KiB body is then released, not swallowed: nothing
     * is delivered while 60 KiB of it are held, everything once 70 KiB are. */
    head_len = strstr(a429.p, "\r\n\r\n") + 4 - a429.p;
    partial_answer(f, "big 429, 60 KiB", &a429, head_len + 60 * 1024, slice, &got);
    assert_int_equal(got.len, 0);
    bytes_free(&got);
    partial_answer(f, "big 429, 70 KiB", &a429, head_len + 70 * 1024, slice, &got);
    assert_got(f, &got, a429.p, head_len + 70 * 1024);
    /* Assumption: the rest follows; the 429 is logged once as passed on, never replayed. */
    rest_of_answer(f, &a429, head_len + 70 * 1024);
    assert_int_equal(f->nslept, 0);
    assert_int_equal(f->nrecs, 1);
    struct want w = throttle_want(&chat_req, "request", 429, "limit_requests");
    check_rec_n(f, 0, &w, 1, 0);
    bytes_free(&got);
    bytes_free(&body);
    bytes_free(&ok);
    bytes_free(&a429);
}

static void big_all(struct fx *f)
{
    big_answers_case(f, 0);
    big_answers_case(f, 1000);
}

static void test_hold_big_answers(void **state) { for_each_api(*state, big_all); }

/* ---- fallback ---- */

static const char max_body[] =
    "{\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],\"model\":\"qwen3-max\",\"max_tokens\":100}";

/* <body> with the model qwen3-max replaced by <to>. */
static void body_with_model(struct bytes *out, const char *to)
{
    const char *at = strstr(max_body, "qwen3-max");
    bytes_addf(out, "%.*s%s%s", (int)(at - max_body), max_body, to, at + strlen("qwen3-max"));
}

/* Sets env.fallback to one chain qwen3-max -> <to>..., after <after_ms>. */
static void set_chain(struct fx *f, struct qs_fallback *fb, long after_ms, const char *to1, const char *to2)
{
    memset(fb, 0, sizeof *fb);
    snprintf(fb->model, sizeof fb->model, "qwen3-max");
    snprintf(fb->to[0], sizeof fb->to[0], "%s", to1);
    fb->nto = 1;
    if (to2 != NULL) {
        snprintf(fb->to[1], sizeof fb->to[1], "%s", to2);
        fb->nto = 2;
    }
    fb->after_ms = after_ms;
    f->env.fallback = fb;
    f->env.nfallback = 1;
}

/* Sends the qwen3-max request (framed by <flags>) in enforce mode with base 100 ms, so the
 * waits are 50, 100, 200, 400 ms; the server answers the first <n429> copies with a 429
 * and the next with a 200. <sends>[i] is what the server must receive as the i-th copy
 * (gating the answers), n429 + 1 of them. The program must get exactly the 200. */
static void run_fallback(struct fx *f, int flags, struct bytes *sends, int n429)
{
    struct bytes a429 = {0}, ok = {0}, got = {0}, all = {0};
    struct req r;

    make_answer(&a429, HEAD_429, rpm_429, A_LENGTH);
    make_answer(&ok, JSON_HEAD, chat_answer, A_LENGTH);
    make_req(&r, "POST", CHAT, max_body, flags);
    f->env.retry_base_ms = 100;
    hold_open(f, "fallback", 0);
    send_req(f, &r);
    bytes_add(&all, "", 0);
    for (int i = 0; i <= n429; i++) {
        bytes_add(&all, sends[i].p, sends[i].len);
        add_turn(f, i < n429 ? &a429 : &ok, all.len);
    }
    reads_end(f, 0, 0, ERR_ZERO_RETURN);
    prog_read(f, 4096, &got);
    assert_got(f, &got, ok.p, ok.len);
    assert_server(f, all.p, all.len);
    assert_int_equal(f->nslept, n429);
    bytes_free(&got);
    bytes_free(&all);
    bytes_free(&a429);
    bytes_free(&ok);
    free_req(&r);
}

/* The request record of attempt <attempts> after throttling, or a throttled/fallback one,
 * for <model>. */
static void check_model_rec(struct fx *f, int i, const char *event, const char *model, int status,
                            const char *reason)
{
    struct want w = posted(event, CHAT, status, -1, -1);
    w.model = model;
    w.reason = reason;
    w.code = status == 429 ? "limit_requests" : NULL;
    if (status == 200) {
        w.input = 22;
        w.output = 17;
    }
    check_rec(f, i, &w);
}

static void fallback_case(struct fx *f)
{
    struct qs_fallback fb;
    struct bytes sends[4] = {{0}}, plus = {0};
    struct req orig, alt;

    hold_env(f);
    set_chain(f, &fb, 300, "qwen-plus", NULL);
    make_req(&orig, "POST", CHAT, max_body, 0);
    body_with_model(&plus, "qwen-plus");
    make_req(&alt, "POST", CHAT, plus.p, 0);
    for (int i = 0; i < 3; i++)
        bytes_add(&sends[i], orig.want.p, orig.want.len);
    bytes_add(&sends[3], alt.want.p, alt.want.len);
    /* Assumption: waits of 50, 100, 200 ms: the replays at 50 and 150 ms of throttling keep
     * qwen3-max; the one at 350 ms (>= after_ms 300) names qwen-plus, with the body
     * otherwise unchanged and Content-Length its new length (here the same length, see
     * fallback_length_case). */
    run_fallback(f, 0, sends, 3);
    /* Assumption: records: three "throttled" for qwen3-max, one "fallback" for qwen3-max
     * with reason "qwen3-max -> qwen-plus", then the "request" for qwen-plus, attempt 4. */
    assert_int_equal(f->nrecs, 5);
    for (int i = 0; i < 3; i++)
        check_model_rec(f, i, "throttled", "qwen3-max", 429, NULL);
    check_model_rec(f, 3, "fallback", "qwen3-max", 429, "qwen3-max -> qwen-plus");
    check_model_rec(f, 4, "request", "qwen-plus", 200, NULL);
    assert_int_equal(f->recs[4].attempts, 4);
    assert_int_equal(f->recs[4].retry_ms, 350);
    free_answers(sends, 4);
    bytes_free(&plus);
    free_req(&orig);
    free_req(&alt);
}

static void test_fallback_rewrites_model(void **state) { for_each_api(*state, fallback_case); }

static void fallback_interrupted_case(struct fx *f)
{
    struct qs_fallback fb;
    struct bytes a429 = {0}, got = {0};
    struct req r;

    hold_env(f);
    set_chain(f, &fb, 1, "qwen-plus", NULL);
    f->env.retry_base_ms = 100;
    make_answer(&a429, HEAD_429, rpm_429, A_LENGTH);
    make_req(&r, "POST", CHAT, max_body, 0);
    hold_open(f, "fallback interrupted", 0);
    f->sleep_fail_at = 1;
    send_req(f, &r);
    add_turn(f, &a429, r.want.len);
    prog_read(f, 4096, &got);
    f->sleep_fail_at = 0;
    /* Assumption: a signal during the wait before a replay that would fall back gives the
     * program the throttle of the model it named, and its record names that model: nothing
     * was sent for the fallback model. */
    assert_got(f, &got, a429.p, a429.len);
    assert_sent_times(f, &r, 1);
    assert_int_equal(f->nrecs, 1);
    check_model_rec(f, 0, "request", "qwen3-max", 429, "interrupted");
    bytes_free(&a429);
    bytes_free(&got);
    free_req(&r);
}

static void test_fallback_interrupted(void **state) { for_each_api(*state, fallback_interrupted_case); }

static void fallback_length_case(struct fx *f)
{
    struct qs_fallback fb;
    struct bytes sends[5] = {{0}}, b1 = {0}, b2 = {0};
    struct req orig, alt1, alt2;

    hold_env(f);
    set_chain(f, &fb, 300, "qwen-plus", "qwen-turbo-2025-07-15");
    make_req(&orig, "POST", CHAT, max_body, 0);
    body_with_model(&b1, "qwen-plus");
    body_with_model(&b2, "qwen-turbo-2025-07-15");
    make_req(&alt1, "POST", CHAT, b1.p, 0);
    make_req(&alt2, "POST", CHAT, b2.p, 0);
    for (int i = 0; i < 3; i++)
        bytes_add(&sends[i], orig.want.p, orig.want.len);
    bytes_add(&sends[3], alt1.want.p, alt1.want.len);
    bytes_add(&sends[4], alt2.want.p, alt2.want.len);
    /* Assumption: the chain moves one step per after_ms: the replay at 750 ms (350 + 400)
     * names the second model, whose longer name gives a larger Content-Length. */
    run_fallback(f, 0, sends, 4);
    assert_true(alt2.want.len > orig.want.len);
    assert_int_equal(f->nrecs, 7);
    check_model_rec(f, 3, "fallback", "qwen3-max", 429, "qwen3-max -> qwen-plus");
    check_model_rec(f, 4, "throttled", "qwen-plus", 429, NULL);
    check_model_rec(f, 5, "fallback", "qwen-plus", 429, "qwen-plus -> qwen-turbo-2025-07-15");
    check_model_rec(f, 6, "request", "qwen-turbo-2025-07-15", 200, NULL);
    free_answers(sends, 5);
    bytes_free(&b1);
    bytes_free(&b2);
    free_req(&orig);
    free_req(&alt1);
    free_req(&alt2);
}

static void test_fallback_new_length(void **state) { for_each_api(*state, fallback_length_case); }

static void fallback_chunked_case(struct fx *f)
{
    struct qs_fallback fb;
    struct bytes sends[5] = {{0}};
    struct req orig;

    hold_env(f);
    set_chain(f, &fb, 300, "qwen-plus", NULL);
    make_req(&orig, "POST", CHAT, max_body, RQ_CHUNKED);
    for (int i = 0; i < 5; i++)
        bytes_add(&sends[i], orig.want.p, orig.want.len);
    /* Assumption: a chunked body is never rewritten: every replay is the request as first
     * sent, no "fallback" record; the final record still names qwen3-max. */
    run_fallback(f, RQ_CHUNKED, sends, 4);
    assert_int_equal(f->nrecs, 5);
    for (int i = 0; i < f->nrecs; i++)
        assert_string_not_equal(f->recs[i].event, "fallback");
    check_model_rec(f, 4, "request", "qwen3-max", 200, NULL);
    free_answers(sends, 5);
    free_req(&orig);
}

static void test_fallback_chunked_unchanged(void **state) { for_each_api(*state, fallback_chunked_case); }

static void test_fallback_other_model_unchanged(void **state)
{
    struct fx *f = *state;
    struct qs_fallback fb;
    struct bytes ans[3] = {{0}}, got = {0};
    struct req r;

    make_answer(&ans[0], HEAD_429, rpm_429, A_LENGTH);
    make_answer(&ans[1], HEAD_429, rpm_429, A_LENGTH);
    make_answer(&ans[2], JSON_HEAD, chat_answer, A_LENGTH);
    hold_env(f);
    set_chain(f, &fb, 1, "qwen-turbo", NULL);
    /* Assumption: a chain for another model leaves a qwen-plus request alone, however long
     * it was throttled. */
    run_turns(f, "chain of another model", &chat_req, ans, 3, 0, 4096, &r, &got);
    assert_got(f, &got, ans[2].p, ans[2].len);
    assert_sent_times(f, &r, 3);
    assert_int_equal(f->nrecs, 3);
    bytes_free(&got);
    free_req(&r);
    free_answers(ans, 3);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_alpn_http11_once),
        T(test_h2_passthrough),
        T(test_split_two_writes),
        T(test_one_byte_writes),
        T(test_partial_and_failing_writes),
        T(test_model_after_1mb),
        T(test_chunked_request),
        T(test_get_without_body),
        T(test_empty_body_request),
        T(test_pipelined),
        T(test_pipeline_overflow),
        T(test_non_model_path),
        T(test_expect_continue),
        T(test_malformed_request),
        T(test_malformed_after_request),
        T(test_head_too_large),
        T(test_body_over_limit),
        T(test_body_over_limit_stream_flag),
        T(test_unholdable_write),
        T(test_answer_content_length),
        T(test_answer_chunked),
        T(test_answer_compat_429),
        T(test_answer_native_sse),
        T(test_answer_native_sse_429),
        T(test_answer_compat_sse),
        T(test_answer_after_interim_100),
        T(test_answer_gzip_unreadable),
        T(test_answer_until_close),
        T(test_answer_no_body),
        T(test_answer_empty_length),
        T(test_answer_eof_mid_body),
        T(test_want_read_mid_answer),
        T(test_free_unanswered),
        T(test_record_fields),
        T(test_hold_429_then_200),
        T(test_hold_two_429s_small_reads),
        T(test_hold_native_sse_throttle),
        T(test_hold_every_throttle_shape),
        T(test_hold_releases_first_event),
        T(test_hold_stream_cut),
        T(test_hold_success_unchanged),
        T(test_hold_expect_continue),
        T(test_hold_non_throttles_pass),
        T(test_hold_give_up_close),
        T(test_hold_replay_unanswered),
        T(test_hold_backoff_yield),
        T(test_hold_yield_then_write),
        T(test_hold_give_up_max_attempts),
        T(test_hold_give_up_max_total),
        T(test_hold_give_up_interrupted),
        T(test_hold_give_up_not_hidden),
        T(test_hold_retry_after),
        T(test_hold_retry_after_too_long),
        T(test_hold_want_read),
        T(test_hold_replay_want_write),
        T(test_hold_pipelined_not_held),
        T(test_hold_pipelined_while_holding),
        T(test_observe_mode_no_hold),
        T(test_hold_big_answers),
        T(test_fallback_rewrites_model),
        T(test_fallback_interrupted),
        T(test_fallback_new_length),
        T(test_fallback_chunked_unchanged),
        T(test_fallback_other_model_unchanged),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
