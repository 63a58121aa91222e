/* conn.c - per-connection request assembly (see conn.h); answers are in answer.c.
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
#include "conn_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "diag.h"

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

void qs_conn_region(const struct qs_conn_env *env, const struct qs_conn *c, char *out, size_t outlen)
{
    if (strcmp(env->region, "auto") != 0)
        snprintf(out, outlen, "%s", env->region);
    else if (!qs_ds_region_from_host(c->host, strlen(c->host), out, outlen))
        snprintf(out, outlen, "cn-beijing");
}

void qs_conn_emit(const struct qs_conn_env *env, const struct qs_conn *c, const struct exchange *x,
                  const char *event, const char *reason)
{
    char region[32];
    qs_conn_region(env, c, region, sizeof region);

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
        .paced_ms = x ? x->paced_ms : -1,
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

uint64_t qs_conn_pace(struct qs_conn *c, const struct qs_conn_env *env, struct exchange *x)
{
    x->paced = 0;
    if (env->budget == NULL || x->model[0] == '\0' || x->est_tokens < 0)
        return 0;
    char region[32];
    qs_conn_region(env, c, region, sizeof region);
    uint64_t now = qs_now_ns(), wait = 0;
    int rc = qs_budget_reserve(env->budget, region, x->model, (uint64_t)x->est_tokens, now, &wait);
    if (rc != QS_BUDGET_GO)
        return 0;
    x->paced = 1;
    x->slot_ns = now + wait;
    return wait;
}

/* The tokens the server counted for <x>: its usage when the answer carried it, otherwise
 * the prompt estimate plus what the streamed text suggests (or the reserved maximum). */
static int64_t tokens_used(const struct exchange *x)
{
    const struct qs_ds_resp *r = &x->resp;
    if (r->total_tokens >= 0 && r->input_tokens < 0)
        return r->total_tokens;
    if (r->input_tokens >= 0 || r->output_tokens >= 0)
        return (r->input_tokens > 0 ? r->input_tokens : 0) + (r->output_tokens > 0 ? r->output_tokens : 0);
    if (x->status < 200 || x->status > 299)
        return x->est_prompt; /* no answer text: the prompt was read at most */
    if (x->stream && r->out_chars > 0)
        return x->est_prompt + (int64_t)(r->out_cjk + (r->out_chars - r->out_cjk + 3) / 4);
    return x->est_tokens;
}

void qs_conn_settle(struct qs_conn *c, const struct qs_conn_env *env, struct exchange *x, int sent)
{
    if (!x->paced)
        return;
    char region[32];
    qs_conn_region(env, c, region, sizeof region);
    qs_budget_settle(env->budget, region, x->model, qs_now_ns(), x->slot_ns,
                     (sent ? tokens_used(x) : 0) - x->est_tokens);
    x->paced = 0;
}

void qs_conn_finish(struct qs_conn *c, const struct qs_conn_env *env, struct exchange *x, const char *reason)
{
    qs_conn_settle(c, env, x, 1);
    if (x->passthrough)
        qs_conn_emit(env, c, x, "passthrough", x->reason);
    else
        qs_conn_emit(env, c, x, "request", reason);
}

void qs_conn_free(struct qs_conn *c, const struct qs_conn_env *env)
{
    if (c == NULL)
        return;
    qs_conn_abandon_replay(c, env);
    for (int i = 0; i < c->qlen; i++) {
        struct exchange *x = &c->q[(c->qhead + i) % INFLIGHT_MAX];
        qs_conn_finish(c, env, x, "connection closed before the answer ended");
        qs_buf_free(&x->sent);
    }
    qs_buf_free(&c->cur.sent);
    qs_buf_free(&c->kept);
    qs_buf_free(&c->orig_sent);
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
    qs_conn_emit(env, c, x.method[0] ? &x : NULL, "passthrough", why);
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
    if (len == 2 && memcmp(proto, "h2", 2) == 0) {
        c->rstate = R_OFF; /* h2 frames are not ours to read */
        degrade(c, env, "the server chose HTTP/2");
    }
}

int qs_conn_established(const struct qs_conn *c) { return c->established; }

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
int qs_conn_drain(const struct qs_conn_env *env, SSL *s, int ex, struct qs_buf *b)
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
    int rc = qs_conn_drain(env, c->ssl, ex, &c->wire);
    if (rc == 1 && c->passthrough)
        rc = qs_conn_drain(env, c->ssl, ex, &c->in);
    return rc;
}

void qs_conn_copy_span(char *dst, size_t dstlen, const char *s, size_t n)
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
int qs_conn_build_head(struct qs_buf *out, const struct qs_http_request *req, int64_t content_length)
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
    qs_conn_copy_span(x->method, sizeof x->method, req->method, req->method_len);
    qs_conn_copy_span(x->path, sizeof x->path, req->path, req->path_len);
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
    if (qs_conn_build_head(&c->head, req, -1) != 0)
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

/* Moves the finished request to the answer queue (finish_request made sure it has room);
 * <cur> is then empty, so nothing later is logged under its name. */
static void enqueue(struct qs_conn *c)
{
    c->q[(c->qhead + c->qlen) % INFLIGHT_MAX] = c->cur;
    c->qlen++;
    memset(&c->cur, 0, sizeof c->cur);
}

/* Copies what the body scan found into the request's record. */
static void take_body_facts(struct qs_conn *c, const struct qs_conn_env *env)
{
    struct exchange *x = &c->cur;
    qs_conn_copy_span(x->model, sizeof x->model, c->req.model, strlen(c->req.model));
    x->stream |= c->req.stream;
    x->est_prompt = (int64_t)qs_ds_estimate_tokens(&c->json, &c->req, 0) -
                    (c->req.max_tokens > 0 ? c->req.max_tokens : 0);
    x->est_tokens = (int64_t)qs_ds_estimate_tokens(&c->json, &c->req, env->default_out_tokens);
}

/* The request in <in>[0, end) is complete: queue it for sending. */
static int finish_request(struct qs_conn *c, const struct qs_conn_env *env, size_t end)
{
    struct exchange *x = &c->cur;
    /* Without room in the answer queue the request still goes out (in order, rewritten like
     * the others) and the connection then passes through: nothing is paced or kept for it. */
    int room = c->qlen < INFLIGHT_MAX;
    x->t_start_ns = qs_now_ns();
    if (c->wstate == W_BODY) {
        take_body_facts(c, env);
        x->attempts = 1;
        uint64_t wait = room ? qs_conn_pace(c, env, x) : 0;
        x->paced_ms = (int64_t)((wait + 999999u) / 1000000u);
        if (wait > 0 && env->pace_wait && x->slot_ns > c->send_at_ns)
            c->send_at_ns = x->slot_ns;
        memcpy(x->first_model, x->model, sizeof x->model);
        size_t start = c->wire.len;
        if (qs_buf_append(&c->wire, c->head.p, c->head.len) != 0 ||
            qs_buf_append(&c->wire, c->in.p + c->head_len, end - c->head_len) != 0)
            return -1;
        /* kept for a replay; without memory for it the request is simply not retried */
        if (room && env->hold_answers && qs_buf_append(&x->sent, c->wire.p + start, c->wire.len - start) != 0)
            qs_buf_free(&x->sent);
        qs_buf_reset(&c->head);
    } else if (qs_buf_append(&c->wire, c->in.p, end) != 0) {
        return -1;
    }
    qs_buf_drop(&c->in, end);
    c->wstate = W_HEAD;
    if (!room)
        return -1;
    enqueue(c);
    return 0;
}

/* Runs the body decoder over <in> from <scanned>. Returns 1 when the request
 * completed (and was queued), 0 when more bytes are needed, -1 to degrade. */
static int scan_body(struct qs_conn *c, const struct qs_conn_env *env)
{
    for (;;) { /* at least once: an empty body (no length, or length 0) is complete at once */
        size_t used = 0, dlen = 0;
        const char *data = NULL;
        int rc =
            qs_http_body_feed(&c->body, c->in.p + c->scanned, c->in.len - c->scanned, &used, &data, &dlen);
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
        take_body_facts(c, env);
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

/* Holds this call until the pacer's slot of the requests about to go out. The wait is in the
 * program's own write, the one that completed the request, in its own thread and with no
 * shim lock held. A signal ends it early. A program that can be asked (env->may_yield:
 * CPython over a socket) is then handed WANT_WRITE and decides itself, as PEP 475 has it:
 * its handler raises (Ctrl-C) and it stops, or it calls again and the wait goes on. Any
 * other program gets control back with the request sent early (a throttle that this may
 * cause is hidden like any other). Returns 0 to send, -1 to hand the program WANT_WRITE. */
static int wait_for_slot(struct qs_conn *c, const struct qs_conn_env *env)
{
    uint64_t now = qs_now_ns();
    if (c->send_at_ns > now && env->sleep_ms((c->send_at_ns - now + 999999u) / 1000000u) != 0 &&
        env->may_yield != NULL && env->may_yield(c->ssl))
        return -1;
    c->send_at_ns = 0;
    return 0;
}

int qs_conn_error(struct qs_conn *c, int ret) { return c->again && ret <= 0 ? SSL_ERROR_WANT_WRITE_ : -1; }

void qs_conn_clear_error(struct qs_conn *c) { c->again = 0; }

int qs_conn_write(struct qs_conn *c, const struct qs_conn_env *env, int ex, const void *buf, size_t num,
                  size_t *written)
{
    c->again = 0;
    /* A new request while a throttle's replay waits (its wait was cut short and the program,
     * instead of reading on, writes): it has given up on that answer, so it gets the throttle
     * first, as without the shim, and its new request is an ordinary one. */
    if (c->replay_phase != REPLAY_NONE)
        qs_conn_give_up(c, env, "another request follows");
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
    if (wait_for_slot(c, env) != 0) {
        c->again = 1; /* SSL_get_error says WANT_WRITE (qs_conn_error); the call comes again */
        return ex ? 0 : -1;
    }
    int rc = flush(c, env, ex);
    if (rc != 1)
        return rc;
    c->flushing = 0;
    *written = c->flush_num;
    return 1;
}
