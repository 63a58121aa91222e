/* answer.c - the answers of a DashScope connection: observed on their way to the
 * program (status, usage, error code), and held back while they might be throttles.
 *
 * A held answer is read into conn->hold instead of the program's buffer until its
 * verdict: a success or an error the program must see is released byte for byte; a
 * retryable throttle (retry.h) is read to its end, never delivered, and the kept
 * request is replayed on the same connection after the backoff. The program's read
 * returns only when it has bytes to deliver, or with the real call's own failure
 * (WANT_READ on a non-blocking socket or an empty memory BIO), so every client style
 * keeps driving the connection as it would without us; the one failure of the shim's own
 * is WANT_WRITE for a program that can be asked when a signal cut a wait short (conn.h).
 * SPDX-License-Identifier: MIT
 */
#include "conn_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "diag.h"
#include "retry.h"

#define HOLD_MAX (64 * 1024) /* an undecided answer larger than this is released */
#define READ_CHUNK 16384

static struct exchange *front(struct qs_conn *c) { return c->qlen > 0 ? &c->q[c->qhead] : NULL; }

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
        qs_conn_finish(c, env, x, reason);
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
            if (!c->rjson_bad && !c->rjson.done &&
                qs_json_feed(&c->rjson, v, vlen, qs_ds_resp_cb, &x->resp) < 0)
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

/* Observes <n> answer bytes. Returns how many were observed: all of them, or fewer when
 * a held throttle ended before them (they belong to whatever the server sent next). */
static size_t observe(struct qs_conn *c, const struct qs_conn_env *env, const char *p, size_t n)
{
    size_t total = n;
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
            return total;
        }
        long h = observe_head(c);
        if (h < 0) {
            qs_diag("%s: unreadable answer head; no longer observing", c->host);
            c->rstate = R_OFF;
            release(c);
            return total;
        }
        if (h == 0)
            return total;
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
    return total - n;
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
 * "model" are rewritten; anything else keeps its model. Returns 1 when it rewrote it,
 * with the bytes it replaced moved to <orig> (the caller frees them, or puts them back if
 * the replay does not happen). */
static int fall_back(struct qs_conn *c, const struct qs_conn_env *env, struct exchange *x,
                     uint64_t throttled_ms, struct qs_buf *orig)
{
    const struct qs_fallback *fb = chain_of(env, x->first_model);
    if (fb == NULL || fb->after_ms <= 0)
        return 0;
    uint64_t step = throttled_ms / (uint64_t)fb->after_ms;
    if (step > (uint64_t)fb->nto)
        step = (uint64_t)fb->nto;
    if (step <= (uint64_t)x->fallback_step)
        return 0;
    const char *to = fb->to[step - 1];
    struct qs_http_request req;
    int hl = qs_http_parse_request(x->sent.p, x->sent.len, &req);
    size_t at, len;
    if (hl <= 0 || req.body_mode != QS_BODY_LENGTH || strpbrk(to, "\"\\") != NULL ||
        qs_ds_find_model(x->sent.p + hl, x->sent.len - (size_t)hl, x->model, &at, &len) != 0) {
        qs_debug("%s: cannot rewrite the model of this request; no fallback", c->host);
        x->fallback_step = fb->nto; /* do not try again */
        return 0;
    }
    const char *body = x->sent.p + hl;
    size_t blen = x->sent.len - (size_t)hl, tlen = strlen(to);
    struct qs_buf out = {0};
    if (qs_conn_build_head(&out, &req, (int64_t)(blen - len + tlen + 2)) != 0 ||
        qs_buf_append(&out, body, at) != 0 || qs_buf_append(&out, "\"", 1) != 0 ||
        qs_buf_append(&out, to, tlen) != 0 || qs_buf_append(&out, "\"", 1) != 0 ||
        qs_buf_append(&out, body + at + len, blen - at - len) != 0) {
        qs_buf_free(&out);
        return 0;
    }
    *orig = x->sent;
    x->sent = out;
    qs_conn_copy_span(x->model, sizeof x->model, to, tlen);
    x->fallback_step = (int)step;
    return 1;
}

/* Tells the budget about the throttle of <throttled> (the request before a fallback rewrote
 * its model): after a 429 the model's requests are spaced wider in every process sharing its
 * budget (qs_pace_throttled; not after a capacity 500/503, which is the server's state, not
 * the account's limit), and when the server said how long to wait (Retry-After) the model goes
 * into cooldown for that long. A backoff drawn at random by one request says nothing about
 * the server's window, so it is that request's wait alone: sharing it stalled every sender of
 * the model (half the goodput when the real limit was half the configured one). */
static void tell_budget(struct qs_conn *c, const struct qs_conn_env *env, const struct exchange *throttled,
                        uint64_t delay_ms)
{
    if (env->budget == NULL || !env->pace_wait || !throttled->model[0])
        return;
    char region[32];
    qs_conn_region(env, c, region, sizeof region);
    if (throttled->paced && throttled->status == 429) /* a capacity 5xx says nothing of the limit */
        qs_budget_throttled(env->budget, region, throttled->model, throttled->slot_ns);
    if (c->retry_after_ms > 0)
        qs_budget_cooldown(env->budget, region, throttled->model, qs_now_ns() + delay_ms * 1000000u);
}

/* The replay's answer has begun: the throttle it replaced is hidden for good. */
static void replay_answered(struct qs_conn *c, const struct qs_conn_env *env)
{
    c->replay_pending = 0;
    qs_conn_emit(env, c, &c->kept_x, "throttled", NULL);
    if (c->kept_step[0])
        qs_conn_emit(env, c, &c->kept_x, "fallback", c->kept_step);
    qs_buf_free(&c->kept);
}

/* The connection failed before the replay was answered (the server closed an idle
 * connection during the backoff, say): the program gets the throttle it replaced, as
 * it came, and then the connection's end. */
static void give_kept(struct qs_conn *c, const struct qs_conn_env *env)
{
    struct exchange *x = front(c);
    c->replay_pending = 0;
    if (qs_buf_append(&c->hold, c->kept.p, c->kept.len) != 0)
        qs_diag("%s: out of memory; a throttle is lost with its connection", c->host);
    qs_buf_free(&c->kept);
    if (x != NULL) { /* the record says what the program got: the throttle of the model it named */
        x->status = c->kept_x.status;
        x->resp = c->kept_x.resp;
        qs_conn_settle(c, env, x, 1);
        memcpy(x->model, c->kept_x.model, sizeof x->model);
        x->fallback_step = c->kept_x.fallback_step;
    }
    qs_buf_reset(&c->wire); /* whatever of the replay did not go out */
    release(c);
    answer_done(c, env, "the server closed the connection before the replay was answered");
}

void qs_conn_give_up(struct qs_conn *c, const struct qs_conn_env *env, const char *why)
{
    qs_conn_abandon_replay(c, env);
    release(c);
    answer_done(c, env, why);
}

/* A held throttle is complete: decide whether to replay the request on this connection
 * (advance_replay then waits and sends it), or give the program the throttle as it came
 * (the server closed the connection or sent more after it, the program pipelined another
 * request behind it, the attempts or the time ran out). <more> is 1 when bytes followed
 * the throttle in the same read. Returns 1 when a replay is under way. */
static int retry(struct qs_conn *c, const struct qs_conn_env *env, int more)
{
    struct exchange *x = front(c);
    c->retry_ready = 0;
    uint64_t delay = qs_retry_delay_ms(x->attempts, c->retry_after_ms, env->retry_base_ms, env->retry_max_ms,
                                       env->rand01());
    uint64_t elapsed = (qs_now_ns() - x->t_start_ns) / 1000000u;
    const char *why = NULL;
    if (c->answer_close)
        why = "the server closed the connection";
    else if (c->qlen > 1 || more)
        why = "another answer follows"; /* a replay would come after it: out of order */
    else if (x->attempts >= env->retry_max_attempts)
        why = "retry.max_attempts reached";
    else if (elapsed + delay > (uint64_t)env->retry_max_total_ms)
        why = "retry.max_total_ms reached";
    if (why != NULL) {
        qs_conn_give_up(c, env, why);
        return 0;
    }
    c->kept_x = *x; /* the throttle's record, written once the replay is answered */
    c->kept_x.sent = (struct qs_buf){0};
    tell_budget(c, env, &c->kept_x, delay);
    qs_conn_settle(c, env, x, 1); /* the throttled send: the server read its prompt at most */
    c->replay_phase = REPLAY_BACKOFF;
    c->replay_delay_ms = delay;
    c->replay_throttled_ms = elapsed + delay;
    c->replay_at_ns = qs_now_ns() + delay * 1000000u;
    c->fell_back = 0;
    return 1;
}

/* Sleeps until <at_ns>. 0, or -1 when a signal ended the sleep. */
static int wait_until(const struct qs_conn_env *env, uint64_t at_ns)
{
    uint64_t now = qs_now_ns();
    return at_ns > now && env->sleep_ms((at_ns - now + 999999u) / 1000000u) != 0 ? -1 : 0;
}

void qs_conn_abandon_replay(struct qs_conn *c, const struct qs_conn_env *env)
{
    struct exchange *x = front(c);
    if (c->replay_phase == REPLAY_NONE || x == NULL)
        return;
    if (c->replay_phase == REPLAY_SLOT)
        qs_conn_settle(c, env, x, 0); /* the replay's slot went unused */
    if (c->fell_back) {
        qs_buf_free(&x->sent);
        x->sent = c->orig_sent;
        c->orig_sent = (struct qs_buf){0};
        memcpy(x->model, c->kept_x.model, sizeof x->model);
        x->fallback_step = c->kept_x.fallback_step;
        c->fell_back = 0;
    }
    c->replay_phase = REPLAY_NONE;
}

/* A signal ended a replay's wait. A program that can be asked (CPython over a socket, see
 * conn.h may_yield) is handed WANT_WRITE: its handler runs, and unless it raises, the next
 * read resumes the wait where it was (-1). Any other program gets the throttle (0). */
static int interrupted(struct qs_conn *c, const struct qs_conn_env *env)
{
    if (env->may_yield != NULL && env->may_yield(c->ssl))
        return -1;
    qs_conn_give_up(c, env, "interrupted");
    return 0;
}

/* Moves a replay on: the backoff, then (with the fallback rewrite, if its time has come)
 * the pacer's slot, taken only then so that the replay leaves at its slot like any request,
 * then the replay queued for sending. Returns 1 when queued, 0 when given up, -1 when the
 * program is to be handed WANT_WRITE and call again (interrupted). */
static int advance_replay(struct qs_conn *c, const struct qs_conn_env *env)
{
    struct exchange *x = front(c);
    if (c->replay_phase == REPLAY_BACKOFF) {
        if (wait_until(env, c->replay_at_ns) != 0)
            return interrupted(c, env);
        x->retry_ms += (int64_t)c->replay_delay_ms;
        c->fell_back = fall_back(c, env, x, c->replay_throttled_ms, &c->orig_sent);
        uint64_t wait = env->pace_wait ? qs_conn_pace(c, env, x) : 0;
        x->retry_ms += (int64_t)((wait + 999999u) / 1000000u);
        c->replay_at_ns = qs_now_ns() + wait;
        c->replay_phase = REPLAY_SLOT;
    }
    if (wait_until(env, c->replay_at_ns) != 0)
        return interrupted(c, env);
    if (qs_buf_append(&c->wire, x->sent.p, x->sent.len) != 0) {
        qs_conn_give_up(c, env, "out of memory");
        return 0;
    }
    qs_buf_free(&c->orig_sent); /* the replay is committed: no undo any more */
    c->replay_phase = REPLAY_NONE;
    c->kept_step[0] = '\0';
    if (c->fell_back)
        snprintf(c->kept_step, sizeof c->kept_step, "%s -> %s", c->kept_x.model, x->model);
    qs_buf_reset(&c->kept);
    if (qs_buf_append(&c->kept, c->hold.p + c->release_end, c->hold.len - c->release_end) == 0)
        c->replay_pending = 1;
    else
        replay_answered(c, env); /* no memory to keep the throttle: hidden now */
    x->attempts++;
    x->status = 0;
    qs_ds_resp_init(&x->resp);
    c->hold.len = c->release_end; /* the throttle is not seen (unless the replay fails) */
    qs_buf_reset(&c->rhead);
    c->rstate = R_HEAD;
    c->await = AWAIT_NONE;
    return 1;
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
    c->again = 0;
    for (;;) {
        if (c->replay_phase != REPLAY_NONE && advance_replay(c, env) < 0) {
            c->again = 1; /* SSL_get_error says WANT_WRITE (qs_conn_error); the read comes again */
            return ex ? 0 : -1;
        }
        if (qs_buf_avail(&c->wire) > 0) { /* a replay still on its way out */
            int rc = qs_conn_drain(env, c->ssl, ex, &c->wire);
            if (rc != 1 && c->replay_pending && is_final(c, env, rc)) {
                give_kept(c, env);
                continue;
            }
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
            if (rc != 1 && c->replay_pending && is_final(c, env, rc)) {
                give_kept(c, env);
                continue;
            }
            if (rc == 1 && c->replay_pending)
                replay_answered(c, env);
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
            if (c->replay_pending) {
                give_kept(c, env);
                continue;
            }
            ended(c, env);
            if (c->release_end > c->hold.off)
                continue;
            return rc;
        }
        if (c->replay_pending)
            replay_answered(c, env);
        c->hold.len += got;
        size_t seen = observe(c, env, c->hold.p + c->hold.len - got, got);
        if (c->retry_ready && !retry(c, env, seen < got) && seen < got && c->rstate != R_OFF)
            observe(c, env, c->hold.p + c->hold.len - got + seen, got - seen); /* the next answer */
    }
}

size_t qs_conn_pending(const struct qs_conn *c) { return c->release_end - c->hold.off; }
