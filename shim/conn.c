/* conn.c - per-connection request assembly and answer observation (see conn.h).
 *
 * The write side is write-behind: a program's SSL_write is answered "all written"
 * as soon as its bytes are stored, and the whole request goes out when its last
 * byte arrives (httpx writes head and body in separate calls, and openai-python puts
 * "model" after the messages, so nothing can be decided earlier). The final call of
 * a request blocks in the real SSL_write as the program's own call would have; on a
 * non-blocking socket it fails with the real WANT_WRITE and completes when the
 * program repeats it.
 * SPDX-License-Identifier: MIT
 */
#include "conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "clock.h"
#include "dashscope.h"
#include "diag.h"
#include "http.h"
#include "json.h"
#include "retry.h"
#include "sse.h"

#define HEAD_MAX (64 * 1024) /* a longer request or answer head is not HTTP we handle */
#define INFLIGHT_MAX 16      /* pipelined requests awaiting answers */
#define SSL_ERROR_SSL_ 1     /* OpenSSL's SSL_get_error values we act on */
#define SSL_ERROR_SYSCALL_ 5
#define SSL_ERROR_ZERO_RETURN_ 6
#define TLSEXT_NAMETYPE_host_name_ 0

/* A request sent (or being assembled) and the facts logged when its answer ends. */
struct exchange {
    char method[16];
    char path[256];
    char model[QS_DS_MODEL_MAX];
    char key[9];
    int stream;
    int passthrough;
    const char *reason;
    uint64_t t_start_ns;
    int64_t est_tokens;
    int status;
    struct qs_ds_resp resp;
    int attempts;         /* sends of this request so far */
    int fallback_step;    /* models of the fallback chain used so far */
    char first_model[QS_DS_MODEL_MAX]; /* the model the program asked for */
    int64_t retry_ms;     /* time waited before replays */
    struct qs_buf sent;   /* the bytes sent, kept for a replay until the answer is known */
};

enum wstate { W_HEAD, W_BODY, W_PASS_BODY };
enum rstate { R_HEAD, R_BODY, R_OFF };

struct qs_conn {
    SSL *ssl;
    char host[256];
    int passthrough;      /* the whole connection is plain pass-through */
    int alpn_done, established;

    /* write side */
    struct qs_buf in;     /* program bytes of the request being assembled */
    struct qs_buf head;   /* its rewritten head, built when the head is complete */
    enum wstate wstate;
    size_t head_len;      /* length of the original head inside <in> */
    size_t scanned;       /* bytes of <in> already given to the body decoder */
    struct qs_http_body body;
    struct qs_json json;
    struct qs_ds_req req;
    int json_bad;
    struct exchange cur;
    struct qs_buf wire;   /* bytes ready for the server, sent from wire.off */
    int flushing;         /* a program call is waiting for <wire> to drain */
    size_t flush_num;

    /* answers, in request order */
    struct exchange q[INFLIGHT_MAX];
    int qhead, qlen;

    /* read side */
    enum rstate rstate;
    struct qs_buf rhead;
    struct qs_http_body rbody;
    int event_stream;
    struct qs_sse sse;
    int sse_in_data, sse_in_comment;
    char comment[24];     /* start of the current SSE comment line (":HTTP_STATUS/429") */
    size_t comment_len;
    struct qs_json rjson;
    int rjson_bad;

    /* Bytes for the program that it has not read yet: [hold.off, release_end) may be
     * delivered; [release_end, hold.len) is an answer held back until it is known not
     * to be a throttle. A synthesised "100 Continue" goes here too. */
    struct qs_buf hold;
    size_t release_end;
    int holding;          /* answer bytes go to <hold>, not to the program */
    enum { AWAIT_NONE, AWAIT_BODY, AWAIT_EVENT } await; /* what the verdict waits for */
    int retry_ready;      /* a throttle's answer is complete: replay it or give up */
    int answer_close;     /* that answer said Connection: close */
    int64_t retry_after_ms;
};

/* ======================= Creation and logging ======================= */

struct qs_conn *qs_conn_new(SSL *ssl, const char *host, size_t host_len)
{
    struct qs_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->ssl = ssl;
    if (host_len >= sizeof c->host)
        host_len = sizeof c->host - 1;
    memcpy(c->host, host, host_len);
    return c;
}

static void emit(const struct qs_conn_env *env, const struct qs_conn *c, const struct exchange *x,
                 const char *event, const char *reason)
{
    char region[32] = "";
    if (strcmp(env->region, "auto") != 0)
        snprintf(region, sizeof region, "%s", env->region);
    else if (!qs_ds_region_from_host(c->host, strlen(c->host), region, sizeof region))
        snprintf(region, sizeof region, "cn-beijing");

    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)strcspn(c->host, ":"), c->host);

    struct qs_audit_rec r = {
        .ts_ms = qs_wall_ms(),
        .pid = env->pid,
        .prog = env->prog,
        .event = event,
        .host = host,
        .region = region,
        .method = x && x->method[0] ? x->method : NULL,
        .path = x && x->path[0] ? x->path : NULL,
        .model = x && x->model[0] ? x->model : NULL,
        .stream = x ? x->stream : 0,
        .status = x ? x->status : 0,
        .attempts = x ? (x->attempts > 0 ? x->attempts : 1) : -1,
        .paced_ms = x ? 0 : -1,
        .retry_ms = x ? x->retry_ms : -1,
        .latency_ms = x && x->t_start_ns ? (int64_t)((qs_now_ns() - x->t_start_ns) / 1000000u) : -1,
        .est_tokens = x && !x->passthrough ? x->est_tokens : -1,
        .input_tokens = x ? x->resp.input_tokens : -1,
        .output_tokens = x ? x->resp.output_tokens : -1,
        .code = x && x->resp.code[0] ? x->resp.code : NULL,
        .key = x && x->key[0] ? x->key : NULL,
        .reason = reason,
    };
    env->emit(&r);
}

static void finish_exchange(struct qs_conn *c, const struct qs_conn_env *env, struct exchange *x,
                            const char *reason)
{
    if (x->passthrough)
        emit(env, c, x, "passthrough", x->reason);
    else
        emit(env, c, x, "request", reason);
}

void qs_conn_free(struct qs_conn *c, const struct qs_conn_env *env)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->qlen; i++) {
        struct exchange *x = &c->q[(c->qhead + i) % INFLIGHT_MAX];
        finish_exchange(c, env, x, "connection closed before the answer ended");
        qs_buf_free(&x->sent);
    }
    qs_buf_free(&c->in);
    qs_buf_free(&c->head);
    qs_buf_free(&c->wire);
    qs_buf_free(&c->rhead);
    qs_buf_free(&c->hold);
    free(c);
}

/* Turns the whole connection into pass-through: whatever was held goes out as the
 * program wrote it (after what is already queued), nothing is observed any more. */
static void degrade(struct qs_conn *c, const struct qs_conn_env *env, const char *why)
{
    qs_diag("%s: %s; passing this connection through", c->host, why);
    c->passthrough = 1;
    struct exchange x = c->cur;
    x.passthrough = 1;
    x.reason = why;
    emit(env, c, x.method[0] ? &x : NULL, "passthrough", why);
    /* <in> is flushed after <wire> by flush(); see there. */
}

/* ======================= Connection set-up ======================= */

void qs_conn_before_handshake(struct qs_conn *c, const struct qs_conn_env *env)
{
    if (c->alpn_done)
        return;
    c->alpn_done = 1;
    /* Offer only http/1.1 so the answer can be read (curl offers h2 by default).
     * A per-connection list overrides the context's list for this SSL only. */
    static const unsigned char http11[] = "\x08http/1.1";
    if (env->real->SSL_set_alpn_protos(c->ssl, http11, sizeof http11 - 1) != 0)
        qs_debug("%s: could not set ALPN", c->host);
}

void qs_conn_after_handshake(struct qs_conn *c, const struct qs_conn_env *env, int rc)
{
    if (rc != 1 || c->established)
        return;
    c->established = 1;
    const unsigned char *proto = NULL;
    unsigned int len = 0;
    env->real->SSL_get0_alpn_selected(c->ssl, &proto, &len);
    if (len == 2 && memcmp(proto, "h2", 2) == 0)
    {
        c->rstate = R_OFF; /* h2 frames are not ours to read */
        degrade(c, env, "the server chose HTTP/2");
    }
}

int qs_conn_established(const struct qs_conn *c)
{
    return c->established;
}

/* ======================= Write side ======================= */

/* Calls the real write the program called, so that failures are OpenSSL's own
 * values. Returns 1 with *w set, or the real return value (<= 0). */
static int real_write(const struct qs_conn_env *env, SSL *s, int ex, const char *p, size_t n, size_t *w)
{
    if (ex)
        return env->real->SSL_write_ex(s, p, n, w) == 1 ? 1 : 0;
    int rc = env->real->SSL_write(s, p, n > 0x40000000 ? 0x40000000 : (int)n);
    if (rc > 0)
        *w = (size_t)rc;
    return rc > 0 ? 1 : rc;
}

/* Sends the unsent part of <b>. Returns 1 when all is sent, or the real failure. */
static int drain(const struct qs_conn_env *env, SSL *s, int ex, struct qs_buf *b)
{
    while (qs_buf_avail(b) > 0) {
        size_t w = 0;
        int rc = real_write(env, s, ex, b->p + b->off, qs_buf_avail(b), &w);
        if (rc <= 0)
            return rc;
        b->off += w;
    }
    qs_buf_reset(b);
    return 1;
}

/* Sends everything ready: the queued requests, then (on a degraded connection)
 * the bytes that were still being assembled. */
static int flush(struct qs_conn *c, const struct qs_conn_env *env, int ex)
{
    int rc = drain(env, c->ssl, ex, &c->wire);
    if (rc == 1 && c->passthrough)
        rc = drain(env, c->ssl, ex, &c->in);
    return rc;
}

static void copy_span(char *dst, size_t dstlen, const char *s, size_t n)
{
    if (n >= dstlen)
        n = dstlen - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static int header_is(const struct qs_http_header *h, const char *name)
{
    return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

/* The head as sent: the program's head with Accept-Encoding set to identity (so the
 * answer's usage and error codes are readable; the program decodes identity as
 * well as gzip) and Expect dropped (we answer the 100 Continue ourselves, since
 * the head is held until the body is complete); Content-Length replaced when
 * <content_length> >= 0 (a fallback changed the body). */
static int build_head(struct qs_buf *out, const struct qs_http_request *req, int64_t content_length)
{
    char line[64];
    int rc = 0;
    rc |= qs_buf_append(out, req->method, req->method_len);
    rc |= qs_buf_append(out, " ", 1);
    rc |= qs_buf_append(out, req->path, req->path_len);
    snprintf(line, sizeof line, " HTTP/1.%d\r\n", req->minor_version);
    rc |= qs_buf_append(out, line, strlen(line));
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct qs_http_header *h = &req->headers[i];
        if (header_is(h, "accept-encoding") || header_is(h, "expect"))
            continue;
        if (content_length >= 0 && header_is(h, "content-length")) {
            snprintf(line, sizeof line, "Content-Length: %lld\r\n", (long long)content_length);
            rc |= qs_buf_append(out, line, strlen(line));
            continue;
        }
        rc |= qs_buf_append(out, h->name, h->name_len);
        rc |= qs_buf_append(out, ": ", 2);
        rc |= qs_buf_append(out, h->value, h->value_len);
        rc |= qs_buf_append(out, "\r\n", 2);
    }
    static const char identity[] = "Accept-Encoding: identity\r\n\r\n";
    rc |= qs_buf_append(out, identity, sizeof identity - 1);
    return rc ? -1 : 0;
}

/* Starts a request whose head is complete. Returns 0, or -1 to degrade. */
static int start_request(struct qs_conn *c, const struct qs_conn_env *env, const struct qs_http_request *req,
                         size_t head_len)
{
    struct exchange *x = &c->cur;
    memset(x, 0, sizeof *x);
    copy_span(x->method, sizeof x->method, req->method, req->method_len);
    copy_span(x->path, sizeof x->path, req->path, req->path_len);
    x->stream = req->sse;
    x->est_tokens = -1;
    qs_ds_resp_init(&x->resp);
    const struct qs_http_header *auth = qs_http_find_header(req->headers, req->num_headers, "authorization");
    if (auth != NULL)
        qs_ds_key_fingerprint(auth->value, auth->value_len, x->key);

    c->head_len = head_len;
    c->scanned = head_len;
    qs_http_body_init(&c->body, req->body_mode, req->content_length);

    if (qs_ds_path_family(req->path, req->path_len) == QS_DS_NONE) {
        /* not a model call: goes out as written, body streamed through */
        x->passthrough = 1;
        x->reason = "not a model call";
        c->wstate = W_PASS_BODY;
        if (qs_buf_append(&c->wire, c->in.p, head_len) != 0)
            return -1;
        qs_buf_drop(&c->in, head_len);
        c->scanned = 0;
        return 0;
    }
    memset(&c->json, 0, sizeof c->json);
    qs_ds_req_init(&c->req);
    c->json_bad = 0;
    qs_buf_reset(&c->head);
    if (build_head(&c->head, req, -1) != 0)
        return -1;
    if (req->expect_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (qs_buf_append(&c->hold, cont, sizeof cont - 1) != 0)
            return -1;
        c->release_end = c->hold.len;
    }
    (void)env;
    c->wstate = W_BODY;
    return 0;
}

/* Moves the finished request to the answer queue; <cur> is then empty, so nothing
 * later is logged under its name. */
static int enqueue(struct qs_conn *c)
{
    if (c->qlen == INFLIGHT_MAX)
        return -1;
    c->q[(c->qhead + c->qlen) % INFLIGHT_MAX] = c->cur;
    c->qlen++;
    memset(&c->cur, 0, sizeof c->cur);
    return 0;
}

/* Copies what the body scan found into the request's record. */
static void take_body_facts(struct qs_conn *c)
{
    struct exchange *x = &c->cur;
    copy_span(x->model, sizeof x->model, c->req.model, strlen(c->req.model));
    x->stream |= c->req.stream;
    x->est_tokens = (int64_t)qs_ds_estimate_tokens(&c->json, &c->req, 0);
}

/* The request in <in>[0, end) is complete: queue it for sending. */
static int finish_request(struct qs_conn *c, const struct qs_conn_env *env, size_t end)
{
    struct exchange *x = &c->cur;
    x->t_start_ns = qs_now_ns();
    if (c->wstate == W_BODY) {
        take_body_facts(c);
        x->attempts = 1;
        memcpy(x->first_model, x->model, sizeof x->model);
        size_t start = c->wire.len;
        if (qs_buf_append(&c->wire, c->head.p, c->head.len) != 0 ||
            qs_buf_append(&c->wire, c->in.p + c->head_len, end - c->head_len) != 0)
            return -1;
        /* kept for a replay; without memory for it the request is simply not retried */
        if (env->hold_answers && qs_buf_append(&x->sent, c->wire.p + start, c->wire.len - start) != 0)
            qs_buf_free(&x->sent);
        qs_buf_reset(&c->head);
    } else if (qs_buf_append(&c->wire, c->in.p, end) != 0) {
        return -1;
    }
    qs_buf_drop(&c->in, end);
    c->wstate = W_HEAD;
    return enqueue(c);
}

/* Runs the body decoder over <in> from <scanned>. Returns 1 when the request
 * completed (and was queued), 0 when more bytes are needed, -1 to degrade. */
static int scan_body(struct qs_conn *c, const struct qs_conn_env *env)
{
    for (;;) { /* at least once: an empty body (no length, or length 0) is complete at once */
        size_t used = 0, dlen = 0;
        const char *data = NULL;
        int rc = qs_http_body_feed(&c->body, c->in.p + c->scanned, c->in.len - c->scanned, &used, &data, &dlen);
        if (rc == QS_EBAD)
            return -1;
        c->scanned += used;
        if (dlen > 0 && c->wstate == W_BODY && !c->json_bad && !c->json.done &&
            qs_json_feed(&c->json, data, dlen, qs_ds_req_cb, &c->req) < 0)
            c->json_bad = 1; /* not JSON we understand: sent as is, model unknown */
        if (rc == 1)
            return finish_request(c, env, c->scanned) == 0 ? 1 : -1;
        if (used == 0 || c->scanned == c->in.len)
            break;
    }
    if (c->wstate == W_PASS_BODY) {
        /* stream a pass-through body as it comes */
        if (qs_buf_append(&c->wire, c->in.p, c->scanned) != 0)
            return -1;
        qs_buf_drop(&c->in, c->scanned);
        c->scanned = 0;
    } else if (c->in.len - c->head_len > env->max_buffer) {
        qs_diag("%s: request body over %zu bytes; sending it unpaced", c->host, env->max_buffer);
        c->cur.passthrough = 1;
        c->cur.reason = "body over the buffer limit";
        take_body_facts(c);
        if (qs_buf_append(&c->wire, c->head.p, c->head.len) != 0 ||
            qs_buf_append(&c->wire, c->in.p + c->head_len, c->scanned - c->head_len) != 0)
            return -1;
        qs_buf_drop(&c->in, c->scanned);
        c->scanned = 0;
        c->wstate = W_PASS_BODY;
    }
    return 0;
}

/* Takes as many whole requests out of <in> as it holds. Returns 0, or -1 when the
 * connection must degrade (reason already chosen). */
static int assemble(struct qs_conn *c, const struct qs_conn_env *env, const char **why)
{
    for (;;) {
        if (c->wstate == W_HEAD) {
            if (c->in.len == 0)
                return 0;
            struct qs_http_request req;
            int n = qs_http_parse_request(c->in.p, c->in.len, &req);
            if (n == QS_PARTIAL) {
                *why = "request head too large";
                return c->in.len > HEAD_MAX ? -1 : 0;
            }
            *why = n == QS_EBAD ? "malformed HTTP request" : "out of memory";
            if (n == QS_EBAD || start_request(c, env, &req, (size_t)n) != 0)
                return -1;
        }
        int rc = scan_body(c, env);
        if (rc < 0) {
            *why = c->qlen == INFLIGHT_MAX ? "too many pipelined requests" : "malformed request body";
            return -1;
        }
        if (rc == 0)
            return 0;
    }
}

int qs_conn_write(struct qs_conn *c, const struct qs_conn_env *env, int ex, const void *buf, size_t num,
                  size_t *written)
{
    if (!c->flushing) {
        if (c->passthrough && qs_buf_avail(&c->wire) == 0 && qs_buf_avail(&c->in) == 0) {
            size_t w = 0;
            int rc = real_write(env, c->ssl, ex, buf, num, &w);
            if (rc == 1)
                *written = w;
            return rc;
        }
        if (qs_buf_append(&c->in, buf, num) != 0) {
            /* cannot hold it: send what we hold, then this call's bytes as they are */
            degrade(c, env, "out of memory");
            int rc = flush(c, env, ex);
            if (rc != 1)
                return rc;
            size_t w = 0;
            rc = real_write(env, c->ssl, ex, buf, num, &w);
            if (rc == 1)
                *written = w;
            return rc;
        }
        const char *why = NULL;
        if (!c->passthrough && assemble(c, env, &why) != 0)
            degrade(c, env, why);
        c->flushing = 1;
        c->flush_num = num;
    }
    int rc = flush(c, env, ex);
    if (rc != 1)
        return rc;
    c->flushing = 0;
    *written = c->flush_num;
    return 1;
}

/* ======================= Read side ======================= */

#define HOLD_MAX (64 * 1024) /* an undecided answer larger than this is released */
#define READ_CHUNK 16384

static struct exchange *front(struct qs_conn *c)
{
    return c->qlen > 0 ? &c->q[c->qhead] : NULL;
}

/* Lets the program have everything held so far and stops holding. */
static void release(struct qs_conn *c)
{
    c->release_end = c->hold.len;
    c->holding = 0;
    c->await = AWAIT_NONE;
}

static void answer_done(struct qs_conn *c, const struct qs_conn_env *env, const char *reason)
{
    struct exchange *x = front(c);
    if (x != NULL) {
        finish_exchange(c, env, x, reason);
        qs_buf_free(&x->sent);
        c->qhead = (c->qhead + 1) % INFLIGHT_MAX;
        c->qlen--;
    }
    c->rstate = R_HEAD;
}

/* The verdict on a held answer whose body (or first event) is complete. */
static int is_throttle(const struct exchange *x)
{
    return qs_retry_is_throttle(x->status, x->resp.code, x->resp.message);
}

/* Reads ":HTTP_STATUS/429" comments: native streams report errors in an HTTP 200.
 * The comment may arrive in pieces, so its start is collected until the line ends. */
static void sse_comment_end(struct qs_conn *c, struct exchange *x)
{
    static const char tag[] = "HTTP_STATUS/";
    c->comment[c->comment_len] = '\0';
    c->comment_len = 0;
    if (strncmp(c->comment, tag, sizeof tag - 1) != 0)
        return;
    int st = atoi(c->comment + sizeof tag - 1);
    if (st >= 400 && st <= 599)
        x->status = st;
}

/* The first event of a held stream is complete: an error event that is a throttle
 * is swallowed with the rest of the stream; anything else goes to the program. */
static void first_event_done(struct qs_conn *c, const struct exchange *x)
{
    if (x->status >= 400 && is_throttle(x))
        c->await = AWAIT_BODY;
    else
        release(c);
}

static void observe_payload(struct qs_conn *c, struct exchange *x, const char *p, size_t n)
{
    if (!c->event_stream) {
        if (!c->rjson_bad && !c->rjson.done && qs_json_feed(&c->rjson, p, n, qs_ds_resp_cb, &x->resp) < 0)
            c->rjson_bad = 1;
        return;
    }
    while (n > 0) {
        size_t used = 0, vlen = 0;
        const char *v = NULL;
        enum qs_sse_kind k = qs_sse_feed(&c->sse, p, n, &used, &v, &vlen);
        p += used;
        n -= used;
        if (k == QS_SSE_FIELD) {
            c->sse_in_data = !c->sse.is_comment && strcmp(c->sse.name, "data") == 0;
            c->sse_in_comment = c->sse.is_comment;
            c->comment_len = 0;
            if (c->sse_in_data) {
                memset(&c->rjson, 0, sizeof c->rjson); /* each data line is one JSON document */
                c->rjson_bad = 0;
            }
        } else if (k == QS_SSE_VALUE && c->sse_in_data) {
            if (!c->rjson_bad && !c->rjson.done && qs_json_feed(&c->rjson, v, vlen, qs_ds_resp_cb, &x->resp) < 0)
                c->rjson_bad = 1; /* "[DONE]" and friends */
        } else if (k == QS_SSE_VALUE && c->sse_in_comment) {
            size_t room = sizeof c->comment - 1 - c->comment_len;
            size_t take = vlen < room ? vlen : room;
            memcpy(c->comment + c->comment_len, v, take);
            c->comment_len += take;
        } else if (k == QS_SSE_LINE_END && c->sse_in_comment) {
            sse_comment_end(c, x);
            c->sse_in_comment = 0;
        } else if (k == QS_SSE_EVENT_END && c->await == AWAIT_EVENT) {
            first_event_done(c, x);
        } else if (k == QS_SSE_NONE && used == 0) {
            break;
        }
    }
}

/* The body of the current answer is complete. A held throttle waits for its
 * replay (qs_conn_read does that); anything else is finished and logged. */
static void body_done(struct qs_conn *c, const struct qs_conn_env *env)
{
    struct exchange *x = front(c);
    if (c->holding && c->await == AWAIT_BODY && x != NULL && is_throttle(x)) {
        c->retry_ready = 1;
        return;
    }
    if (c->holding)
        release(c);
    answer_done(c, env, NULL);
}

/* Feeds answer body bytes. Returns how many belong to this answer. */
static size_t observe_body(struct qs_conn *c, const struct qs_conn_env *env, const char *p, size_t n)
{
    struct exchange *x = front(c);
    size_t done = 0;
    for (;;) { /* at least once, as in scan_body */
        size_t used = 0, dlen = 0;
        const char *data = NULL;
        int rc = qs_http_body_feed(&c->rbody, p + done, n - done, &used, &data, &dlen);
        if (rc == QS_EBAD) {
            qs_diag("%s: malformed answer framing; no longer observing", c->host);
            c->rstate = R_OFF;
            release(c);
            return n;
        }
        done += used;
        if (dlen > 0 && x != NULL)
            observe_payload(c, x, data, dlen);
        if (rc == 1) {
            body_done(c, env);
            break;
        }
        if (used == 0 || done == n)
            break;
    }
    return done;
}

/* Parses an answer head from <rhead>. Returns bytes of the head, 0 if partial,
 * -1 when observation must stop. Decides what a held answer waits for. */
static long observe_head(struct qs_conn *c)
{
    struct exchange *x = front(c);
    struct qs_http_response resp;
    int n = qs_http_parse_response(c->rhead.p, c->rhead.len, x ? x->method : NULL, x ? strlen(x->method) : 0,
                                   &resp);
    if (n == QS_PARTIAL)
        return c->rhead.len > HEAD_MAX ? -1 : 0;
    if (n == QS_EBAD)
        return -1;
    if (resp.status >= 100 && resp.status < 200)
        return n; /* interim answer: the real one follows */
    if (x != NULL) {
        x->status = resp.status;
        qs_ds_resp_init(&x->resp);
    }
    qs_http_body_init(&c->rbody, resp.body_mode, resp.content_length);
    c->event_stream = resp.event_stream;
    memset(&c->sse, 0, sizeof c->sse);
    memset(&c->rjson, 0, sizeof c->rjson);
    c->rjson_bad = 0;
    c->sse_in_data = c->sse_in_comment = 0;
    c->rstate = R_BODY;
    if (c->holding) {
        c->answer_close = resp.connection_close;
        c->retry_after_ms = resp.retry_after_ms;
        if (qs_retry_may_throttle(resp.status))
            c->await = AWAIT_BODY;
        else if (resp.status == 200 && resp.event_stream)
            c->await = AWAIT_EVENT; /* DashScope reports throttles in a stream's first event */
        else
            release(c);
    }
    return n;
}

static void observe(struct qs_conn *c, const struct qs_conn_env *env, const char *p, size_t n)
{
    while (n > 0 && c->rstate != R_OFF && !c->retry_ready) {
        if (c->rstate == R_BODY) {
            size_t used = observe_body(c, env, p, n);
            p += used;
            n -= used;
            continue;
        }
        size_t before = c->rhead.len;
        if (qs_buf_append(&c->rhead, p, n) != 0) {
            c->rstate = R_OFF;
            release(c);
            return;
        }
        long h = observe_head(c);
        if (h < 0) {
            qs_diag("%s: unreadable answer head; no longer observing", c->host);
            c->rstate = R_OFF;
            release(c);
            return;
        }
        if (h == 0)
            return;
        /* the bytes after the head were part of this read */
        size_t used = (size_t)h - before;
        qs_buf_reset(&c->rhead);
        p += used;
        n -= used;
        if (c->rstate == R_BODY && n == 0)
            observe_body(c, env, p, 0); /* an empty body ends with its head */
    }
    if (c->holding && c->hold.len - c->release_end > HOLD_MAX)
        release(c); /* too big to be a throttle envelope */
}

/* Whether the answer about to start should be held back: only in enforce mode, for
 * a recognised request whose bytes we kept, and only when it is the one request in
 * flight (replaying one of several pipelined requests would reorder the answers). */
static int should_hold(const struct qs_conn *c, const struct qs_conn_env *env)
{
    const struct exchange *x = c->qlen == 1 ? &c->q[c->qhead] : NULL;
    return env->hold_answers && !c->passthrough && c->rstate == R_HEAD && x != NULL && !x->passthrough &&
           x->sent.len > 0;
}

static const struct qs_fallback *chain_of(const struct qs_conn_env *env, const char *model)
{
    for (int i = 0; i < env->nfallback; i++)
        if (strcmp(env->fallback[i].model, model) == 0)
            return &env->fallback[i];
    return NULL;
}

/* The fallback chain (off unless configured): after <throttled_ms> of throttling,
 * the kept request names the next model of its chain, one step per after_ms, with
 * Content-Length fixed. Only Content-Length bodies with one unambiguous top-level
 * "model" are rewritten; anything else keeps its model. */
static void fall_back(struct qs_conn *c, const struct qs_conn_env *env, struct exchange *x, uint64_t throttled_ms)
{
    const struct qs_fallback *fb = chain_of(env, x->first_model);
    if (fb == NULL || fb->after_ms <= 0)
        return;
    uint64_t step = throttled_ms / (uint64_t)fb->after_ms;
    if (step > (uint64_t)fb->nto)
        step = (uint64_t)fb->nto;
    if (step <= (uint64_t)x->fallback_step)
        return;
    const char *to = fb->to[step - 1];
    struct qs_http_request req;
    int hl = qs_http_parse_request(x->sent.p, x->sent.len, &req);
    size_t at, len;
    if (hl <= 0 || req.body_mode != QS_BODY_LENGTH || strpbrk(to, "\"\\") != NULL ||
        qs_ds_find_model(x->sent.p + hl, x->sent.len - (size_t)hl, x->model, &at, &len) != 0) {
        qs_debug("%s: cannot rewrite the model of this request; no fallback", c->host);
        x->fallback_step = fb->nto; /* do not try again */
        return;
    }
    const char *body = x->sent.p + hl;
    size_t blen = x->sent.len - (size_t)hl, tlen = strlen(to);
    struct qs_buf out = {0};
    if (build_head(&out, &req, (int64_t)(blen - len + tlen + 2)) != 0 || qs_buf_append(&out, body, at) != 0 ||
        qs_buf_append(&out, "\"", 1) != 0 || qs_buf_append(&out, to, tlen) != 0 ||
        qs_buf_append(&out, "\"", 1) != 0 || qs_buf_append(&out, body + at + len, blen - at - len) != 0) {
        qs_buf_free(&out);
        return;
    }
    char why[2 * QS_DS_MODEL_MAX + 8];
    snprintf(why, sizeof why, "%s -> %s", x->model, to);
    emit(env, c, x, "fallback", why);
    qs_buf_free(&x->sent);
    x->sent = out;
    copy_span(x->model, sizeof x->model, to, tlen);
    x->fallback_step = (int)step;
}

/* A held throttle is complete: wait and replay the request on this connection, or
 * give the program the throttle as it came (the server closed the connection, the
 * attempts or the time ran out, or a signal interrupted the wait). */
static void retry(struct qs_conn *c, const struct qs_conn_env *env)
{
    struct exchange *x = front(c);
    c->retry_ready = 0;
    emit(env, c, x, "throttled", NULL);
    uint64_t delay = qs_retry_delay_ms(x->attempts, c->retry_after_ms, env->retry_base_ms, env->retry_max_ms,
                                       env->rand01());
    uint64_t elapsed = (qs_now_ns() - x->t_start_ns) / 1000000u;
    const char *why = NULL;
    if (c->answer_close)
        why = "the server closed the connection";
    else if (x->attempts >= env->retry_max_attempts)
        why = "retry.max_attempts reached";
    else if (elapsed + delay > (uint64_t)env->retry_max_total_ms)
        why = "retry.max_total_ms reached";
    else if (env->sleep_ms(delay) != 0)
        why = "interrupted";
    if (why == NULL) {
        fall_back(c, env, x, elapsed + delay);
        if (qs_buf_append(&c->wire, x->sent.p, x->sent.len) != 0)
            why = "out of memory";
    }
    if (why != NULL) {
        release(c);
        answer_done(c, env, why);
        return;
    }
    x->retry_ms += (int64_t)delay;
    x->attempts++;
    x->status = 0;
    qs_ds_resp_init(&x->resp);
    c->hold.len = c->release_end; /* the throttle is never seen */
    qs_buf_reset(&c->rhead);
    c->rstate = R_HEAD;
    c->await = AWAIT_NONE;
}

/* Calls the real read the program called. Returns 1 with *got set, or the real
 * return value (<= 0). */
static int real_read(const struct qs_conn_env *env, SSL *s, int ex, void *buf, size_t num, size_t *got)
{
    if (ex)
        return env->real->SSL_read_ex(s, buf, num, got) == 1 ? 1 : 0;
    int rc = env->real->SSL_read(s, buf, num > 0x40000000 ? 0x40000000 : (int)num);
    *got = rc > 0 ? (size_t)rc : 0;
    return rc > 0 ? 1 : rc;
}

/* The connection ended (EOF or error) during an answer. */
static void ended(struct qs_conn *c, const struct qs_conn_env *env)
{
    if (c->holding)
        release(c);
    if (c->rstate == R_BODY)
        answer_done(c, env, c->rbody.mode == QS_BODY_CLOSE ? NULL : "connection closed mid-answer");
}

static int is_final(const struct qs_conn *c, const struct qs_conn_env *env, int rc)
{
    int err = env->real->SSL_get_error(c->ssl, rc);
    return err == SSL_ERROR_ZERO_RETURN_ || err == SSL_ERROR_SYSCALL_ || err == SSL_ERROR_SSL_;
}

int qs_conn_read(struct qs_conn *c, const struct qs_conn_env *env, int ex, void *buf, size_t num,
                 size_t *readbytes)
{
    for (;;) {
        if (qs_buf_avail(&c->wire) > 0) { /* a replay still on its way out */
            int rc = drain(env, c->ssl, ex, &c->wire);
            if (rc != 1)
                return rc;
        }
        size_t ready = c->release_end - c->hold.off;
        if (ready > 0) {
            size_t n = ready < num ? ready : num;
            memcpy(buf, c->hold.p + c->hold.off, n);
            c->hold.off += n;
            if (c->hold.off == c->hold.len) {
                qs_buf_reset(&c->hold);
                c->release_end = 0;
            }
            *readbytes = n;
            return 1;
        }
        if (!c->holding && should_hold(c, env)) {
            c->holding = 1;
            c->await = AWAIT_NONE;
        }
        size_t got = 0;
        if (!c->holding) {
            int rc = real_read(env, c->ssl, ex, buf, num, &got);
            if (rc == 1) {
                if (c->rstate != R_OFF)
                    observe(c, env, buf, got);
                *readbytes = got;
            } else if (is_final(c, env, rc)) {
                ended(c, env);
            }
            return rc;
        }
        /* holding: the answer goes to <hold> until its verdict */
        if (qs_buf_reserve(&c->hold, READ_CHUNK) != 0) {
            release(c); /* no room to hold: stop holding before reading anything */
            continue;
        }
        int rc = real_read(env, c->ssl, ex, c->hold.p + c->hold.len, READ_CHUNK, &got);
        if (rc != 1) {
            if (!is_final(c, env, rc))
                return rc; /* WANT_READ: the program (or its event loop) calls again */
            ended(c, env);
            if (c->release_end > c->hold.off)
                continue;
            return rc;
        }
        c->hold.len += got;
        observe(c, env, c->hold.p + c->hold.len - got, got);
        if (c->retry_ready)
            retry(c, env);
    }
}

size_t qs_conn_pending(const struct qs_conn *c)
{
    return c->release_end - c->hold.off;
}
