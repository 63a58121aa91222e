/* qshim-mock.c - local HTTPS DashScope simulator for qshim's tests, demo and benchmarks.
 *
 * A thread-per-connection HTTP/1.1 server over TLS that answers the OpenAI-compatible
 * (/compatible-mode/v1/...) and native (/api/v1/services/aigc/...) endpoints with the exact
 * envelopes of SPEC §6 and dashscope-wire.md §3-4, enforces per-model RPM/TPM over sliding 1 s
 * and 60 s windows, plays the error answers queued with POST /mock/script (the throttle, capacity
 * and billing errors that retry tests need on cue), and reports what it saw on GET /mock/stats.
 * Answers are a pure function of the request (no Date header, ids hashed from the body, a fixed
 * "created"), so a run through the shim can be compared byte for byte with a run without it.
 * Request bodies stream through shim/http.c and shim/json.c and are never buffered whole.
 * SPDX-License-Identifier: MIT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "http.h"
#include "json.h"
#include "mock_answer.h"
#include "mock_out.h"
#include "mock_util.h"
#include "mock_window.h"

#define IN_CAP (64 * 1024) /* per-connection input buffer; also the largest request head */
#define SLICE (16 * 1024)  /* chunk size for --chunked answers and /bulk writes */
#define MAX_TOKENS_CAP 2000000
#define DEFAULT_TOKENS 16 /* output tokens when the request gives no max_tokens */
#define SSE_TYPE "text/event-stream;charset=UTF-8"
#define JSON_TYPE "application/json"
#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

static uint64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ==== Per-model state and stats ==== */

/* Outcome of a model request; the limits' throttles are numbered as mock_err. */
enum verdict {
    V_OK,
    V_RPM = MOCK_ERR_RPM,
    V_TPM = MOCK_ERR_TPM,
    V_FREE = MOCK_ERR_FREE_QUOTA,
    V_BAD,
    V_SCRIPT
};

#define LAST_STATUSES 32

/* Counters for one model or for all of them. A scripted answer is outside the limiter's
 * bookkeeping: it counts in <attempts_seen>, <scripted>, <by_code> and <seen>, nothing else,
 * so attempts_seen = requests + scripted and requests = ok + throttled + errors. <seen> holds
 * every request that named a model (admitted, throttled or scripted: what a client-side pacer
 * controls); <okw> the admitted ones (what the limiter enforces). */
struct tally {
    uint64_t attempts_seen, requests, ok, throttled, errors, scripted, streams, input_tokens, output_tokens;
    uint64_t by_code[MOCK_ERR_END][2]; /* [error][native] */
    uint64_t by_reason[3];             /* V_RPM, V_TPM, V_FREE, minus one */
    struct mock_window seen, okw;
};

static void tally_reset(struct tally *t)
{
    mock_win_free(&t->seen);
    mock_win_free(&t->okw);
    memset(t, 0, sizeof *t);
}

/* One POST /mock/script: the next <left> requests for the model get error <err> with HTTP
 * <status>, the optional retry headers (-1: absent), and a close when <close>. */
struct rule {
    struct rule *next;
    enum mock_err err;
    int status, retry_ms, retry_s, close;
    uint64_t left;
};

struct model {
    struct model *next;
    char *name;
    int limited, free_quota;
    uint64_t rpm, tpm;
    struct rule *rules; /* queued in order; the head answers next */
    struct tally t;
    int last[LAST_STATUSES]; /* ring of the statuses decided, nlast in all */
    uint64_t nlast;
};

struct name_count {
    struct name_count *next;
    uint64_t n;
    char name[];
};

enum { AE_ABSENT, AE_IDENTITY, AE_GZIP, AE_OTHER };
enum { ALPN_HTTP11, ALPN_H2, ALPN_NONE };

/* Everything /mock/reset zeroes. */
struct stats {
    uint64_t connections, tls_failures, h2_preface, expect_continue, chunked_bodies, pipelined,
        other_requests, closed_after_429;
    uint64_t alpn[3];
    uint64_t accept_encoding[4];
    struct name_count *sni;
    struct tally tot;
};

struct conn {
    struct conn *next;
    pthread_t th;
    int fd;
    int done; /* thread finished; the main thread joins it and closes fd */
    int broken;
    uint64_t id;
    SSL *ssl;
    char *in;
    size_t in_off, in_len;
    uint64_t nreq;
};

static struct {
    /* Options, immutable once listening. */
    const char *cert, *key, *addr, *log_path;
    unsigned port, latency_ms, stream_delay_ms;
    int alpn_h2, close_on_429, chunked;
    int retry_after_ms; /* --retry-after-ms on the limits' 429s; -1: none */
    /* Runtime. */
    SSL_CTX *ctx;
    int stop_rd, stop_wr; /* written once at shutdown: wakes every sleeping connection */
    FILE *log;
    uint64_t start_ns;
    unsigned char bulk[SLICE];
    pthread_mutex_t mu; /* guards everything below */
    struct conn *conns;
    uint64_t next_conn_id;
    struct model *models, **models_tail;
    struct stats st;
} g = {.addr = "127.0.0.1", .retry_after_ms = -1, .mu = PTHREAD_MUTEX_INITIALIZER, .models_tail = &g.models};

/* Finds the model called <name>, creating it unlimited if absent. Caller holds g.mu. */
static struct model *model_get(const char *name)
{
    struct model *m;
    for (m = g.models; m != NULL; m = m->next)
        if (strcmp(m->name, name) == 0)
            return m;
    m = mock_calloc(sizeof *m);
    m->name = strdup(name);
    if (m->name == NULL)
        mock_die_oom();
    *g.models_tail = m;
    g.models_tail = &m->next;
    return m;
}

static void count_name(struct name_count **list, const char *name)
{
    struct name_count *e;
    for (e = *list; e != NULL; e = e->next)
        if (strcmp(e->name, name) == 0)
            break;
    if (e == NULL) {
        e = mock_calloc(sizeof *e + strlen(name) + 1);
        strcpy(e->name, name);
        e->next = *list;
        *list = e;
    }
    e->n++;
}

static void stats_reset(void)
{
    while (g.st.sni != NULL) {
        struct name_count *e = g.st.sni;
        g.st.sni = e->next;
        free(e);
    }
    tally_reset(&g.st.tot);
    memset(&g.st, 0, sizeof g.st);
    for (struct model *m = g.models; m != NULL; m = m->next) {
        tally_reset(&m->t);
        m->nlast = 0;
    }
}

/* Drops every queued rule. Returns the number of answers they still held. Caller holds g.mu. */
static uint64_t scripts_clear(void)
{
    uint64_t n = 0;
    for (struct model *m = g.models; m != NULL; m = m->next) {
        while (m->rules != NULL) {
            struct rule *u = m->rules;
            m->rules = u->next;
            n += u->left;
            free(u);
        }
    }
    return n;
}

/* Answers queued for <m>. Caller holds g.mu. */
static uint64_t scripts_pending(const struct model *m)
{
    uint64_t n = 0;
    for (const struct rule *u = m->rules; u != NULL; u = u->next)
        n += u->left;
    return n;
}

/* Is a request costing <cost> tokens admitted for <m> at <now>? Caller holds g.mu. */
static enum verdict admit(struct model *m, uint64_t now, uint64_t cost)
{
    if (m->free_quota)
        return V_FREE;
    if (!m->limited)
        return V_OK;
    switch (mock_limit_check(&m->t.okw, m->rpm, m->tpm, now, cost)) {
    case MOCK_ADMIT:
        return V_OK;
    case MOCK_OVER_RPM:
        return V_RPM;
    default:
        return V_TPM;
    }
}

/* ==== One request ==== */

enum route { R_MODEL, R_STATS, R_RESET, R_SCRIPT, R_UNSCRIPT, R_BULK, R_NONE };

struct rq {
    char method[16];
    char path[1024];
    enum route route;
    int native;  /* native envelope (/api/v1/...) */
    int ae;      /* AE_* class of Accept-Encoding */
    int gzip;    /* answer may be gzip-encoded */
    int sse;     /* X-DashScope-SSE: enable */
    int expect;  /* Expect: 100-continue */
    int chunked; /* chunked request body */
    int close;   /* close after this answer */
    /* From the body. */
    uint64_t hash;
    struct qs_json j;
    int json_err;
    char model[QS_JSON_STR_MAX + 1];
    int stream;
    int64_t max_tokens; /* -1 when absent */
    struct mock_answer a;
    /* The error answer account() decided on, from a limit or a script (err 0: none). */
    enum mock_err err;
    int err_status;
    int retry_ms, retry_s; /* retry-after-ms and Retry-After to send; -1: none */
    const char *code;      /* its wire code, for the log */
    /* POST /mock/script: the rule of the body, and the first field found wrong in it. */
    struct rule rule;
    int rule_bad;
    char bad_field[QS_JSON_KEY_MAX + 1];
};

static void on_json(void *ctx, const struct qs_json_value *v)
{
    struct rq *r = ctx;
    uint64_t n = 0;
    int num = v->type == QS_JSON_NUMBER && mock_parse_u64(v->val, v->len, &n) == 0;

    if (qs_json_path_is(v, 1, "model") && v->type == QS_JSON_STRING) {
        memcpy(r->model, v->val, v->len);
        r->model[v->len] = '\0';
    } else if (qs_json_path_is(v, 1, "stream")) {
        r->stream = v->type == QS_JSON_TRUE;
    } else if (qs_json_path_is(v, 2, "stream_options", "include_usage")) {
        r->a.include_usage = v->type == QS_JSON_TRUE;
    } else if (qs_json_path_is(v, 2, "parameters", "incremental_output")) {
        r->a.incremental = v->type == QS_JSON_TRUE;
    } else if (qs_json_path_is(v, 1, "max_tokens") || qs_json_path_is(v, 1, "max_completion_tokens") ||
               qs_json_path_is(v, 2, "parameters", "max_tokens")) {
        if (num)
            r->max_tokens = n > MAX_TOKENS_CAP ? MAX_TOKENS_CAP : (int64_t)n;
    } else if (qs_json_path_is(v, 1, "dimensions")) {
        if (num && n >= 1 && n <= 4096)
            r->a.dims = n;
    } else if (qs_json_path_is(v, 1, "input") || qs_json_path_is(v, 2, "input", "[]")) {
        r->a.n_inputs += v->type == QS_JSON_STRING;
    }
}

/* The body of POST /mock/script is one flat object (add_script's 400 answer lists the fields).
 * Anything else, unknown keys included, marks the rule bad, so that a typo in a test's rule
 * fails loudly instead of scripting something else. */
static void on_script_json(void *ctx, const struct qs_json_value *v)
{
    struct rq *r = ctx;
    struct rule *u = &r->rule;
    const char *key = v->depth >= 1 ? v->path[0] : "(not an object)";
    uint64_t n = 0;
    int num = v->type == QS_JSON_NUMBER && mock_parse_u64(v->val, v->len, &n) == 0;
    int str = v->type == QS_JSON_STRING && !v->truncated, ok = v->depth == 1;

    if (ok && strcmp(key, "model") == 0 && str && v->len > 0)
        memcpy(r->model, v->val, v->len + 1);
    else if (ok && strcmp(key, "kind") == 0 && str && mock_err_by_name(v->val) != 0)
        u->err = mock_err_by_name(v->val);
    else if (ok && strcmp(key, "count") == 0 && num && n >= 1)
        u->left = n;
    else if (ok && strcmp(key, "status") == 0 && num && n >= 400 && n <= 599)
        u->status = (int)n;
    else if (ok && strcmp(key, "retry_after_ms") == 0 && num && n <= 3600000)
        u->retry_ms = (int)n;
    else if (ok && strcmp(key, "retry_after_s") == 0 && num && n <= 3600)
        u->retry_s = (int)n;
    else if (ok && strcmp(key, "close") == 0 && (v->type == QS_JSON_TRUE || v->type == QS_JSON_FALSE))
        u->close = v->type == QS_JSON_TRUE;
    else
        ok = 0;
    if (!ok && !r->rule_bad) {
        r->rule_bad = 1;
        snprintf(r->bad_field, sizeof r->bad_field, "%s", key);
    }
}

/* Does this Accept-Encoding value allow gzip (by name or "*", with q > 0)? Returns AE_*. */
static int ae_class(const struct qs_http_header *h)
{
    int gzip = 0, other = 0;
    const char *p, *end;
    if (h == NULL)
        return AE_ABSENT;
    for (p = h->value, end = h->value + h->value_len; p < end;) {
        const char *tok = p, *comma = memchr(p, ',', (size_t)(end - p)), *stop = comma ? comma : end;
        const char *semi = memchr(tok, ';', (size_t)(stop - tok)), *nend = semi ? semi : stop;
        int q0 = 0;
        while (tok < nend && (*tok == ' ' || *tok == '\t'))
            tok++;
        while (nend > tok && (nend[-1] == ' ' || nend[-1] == '\t'))
            nend--;
        if (semi != NULL) {
            const char *q = semi + 1;
            while (q < stop && (*q == ' ' || *q == '\t'))
                q++;
            if (stop - q >= 2 && (q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
                char num[16] = {0};
                memcpy(num, q + 2, (size_t)(stop - q - 2) < 15 ? (size_t)(stop - q - 2) : 15);
                q0 = strtod(num, NULL) <= 0.0;
            }
        }
        size_t n = (size_t)(nend - tok);
        if (n == 0 || q0)
            ;
        else if ((n == 4 && strncasecmp(tok, "gzip", 4) == 0) ||
                 (n == 6 && strncasecmp(tok, "x-gzip", 6) == 0) || (n == 1 && *tok == '*'))
            gzip = 1;
        else if (!(n == 8 && strncasecmp(tok, "identity", 8) == 0))
            other = 1;
        p = comma ? comma + 1 : end;
    }
    return gzip ? AE_GZIP : other ? AE_OTHER : AE_IDENTITY;
}

static int path_is(const struct rq *r, const char *method, const char *path)
{
    size_t n = strcspn(r->path, "?");
    return strcmp(r->method, method) == 0 && strlen(path) == n && strncmp(r->path, path, n) == 0;
}

/* Copies what the answer needs out of the parsed head, before the buffer it points into moves. */
static void rq_from_head(struct rq *r, const struct qs_http_request *req)
{
    static const struct {
        const char *path;
        enum mock_kind kind;
    } routes[] = {
        {"/compatible-mode/v1/chat/completions", MOCK_CHAT},
        {"/compatible-mode/v1/completions", MOCK_COMPLETIONS},
        {"/compatible-mode/v1/embeddings", MOCK_EMBEDDINGS},
        {"/api/v1/services/aigc/text-generation/generation", MOCK_NATIVE_TEXT},
        {"/api/v1/services/aigc/multimodal-generation/generation", MOCK_NATIVE_MM},
    };
    size_t ml = req->method_len < sizeof r->method - 1 ? req->method_len : sizeof r->method - 1;
    size_t pl = req->path_len < sizeof r->path - 1 ? req->path_len : sizeof r->path - 1;

    memcpy(r->method, req->method, ml);
    memcpy(r->path, req->path, pl);
    r->route = R_NONE;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (path_is(r, "POST", routes[i].path)) {
            r->route = R_MODEL;
            r->a.kind = routes[i].kind;
        }
    }
    if (path_is(r, "GET", "/mock/stats"))
        r->route = R_STATS;
    else if (path_is(r, "POST", "/mock/reset"))
        r->route = R_RESET;
    else if (path_is(r, "POST", "/mock/script"))
        r->route = R_SCRIPT;
    else if (path_is(r, "DELETE", "/mock/script"))
        r->route = R_UNSCRIPT;
    else if (path_is(r, "GET", "/bulk"))
        r->route = R_BULK;
    r->native = r->route == R_MODEL && r->a.kind >= MOCK_NATIVE_TEXT;
    r->ae = ae_class(qs_http_find_header(req->headers, req->num_headers, "Accept-Encoding"));
    r->gzip = r->ae == AE_GZIP;
    r->sse = req->sse;
    r->expect = req->expect_continue;
    r->chunked = req->body_mode == QS_BODY_CHUNKED;
    r->close = req->connection_close;
    r->max_tokens = -1;
    r->retry_ms = r->retry_s = -1;
    r->rule = (struct rule){.left = 1, .retry_ms = -1, .retry_s = -1};
    r->a.model = r->model;
    r->hash = mock_fnv1a(mock_fnv1a(mock_fnv1a(MOCK_FNV_BASIS, r->method, ml), " ", 1), r->path, pl);
}

/* Takes the next answer of <m>'s first rule into <r>. Caller holds g.mu. */
static void take_script(struct model *m, struct rq *r)
{
    struct rule *u = m->rules;
    r->err = u->err;
    r->err_status = u->status;
    r->retry_ms = u->retry_ms;
    r->retry_s = u->retry_s;
    r->close |= u->close;
    if (--u->left == 0) {
        m->rules = u->next;
        free(u);
    }
}

/* Records a model request in the stats and decides it: a scripted answer first, then the
 * free-quota model and the limits. Sets r->err and what goes with it for an error answer. */
static enum verdict account(struct rq *r)
{
    uint64_t now = now_ns(CLOCK_MONOTONIC), cost = r->a.in_tok + r->a.out_tok;
    int stream = r->native ? r->sse : r->stream;
    enum verdict v = V_BAD;
    struct model *m;

    pthread_mutex_lock(&g.mu);
    g.st.accept_encoding[r->ae]++;
    g.st.expect_continue += (uint64_t)r->expect;
    g.st.chunked_bodies += (uint64_t)r->chunked;
    m = r->model[0] ? model_get(r->model) : NULL;
    if (m != NULL && r->j.done && !r->json_err && m->rules != NULL) {
        v = V_SCRIPT;
        take_script(m, r);
    } else if (m != NULL && r->j.done && !r->json_err) {
        v = admit(m, now, cost);
    }
    if (v == V_RPM || v == V_TPM || v == V_FREE) {
        r->err = (enum mock_err)v;
        r->err_status = 429;
        /* A real quota error says nothing about when to come back. */
        r->retry_ms = v != V_FREE ? g.retry_after_ms : -1;
    }
    if (r->err != 0)
        r->code = mock_err_code(r->native, r->err);
    for (int i = 0; i < 2; i++) {
        struct tally *t = i == 0 ? &g.st.tot : m != NULL ? &m->t : NULL;
        if (t == NULL)
            break;
        t->attempts_seen++;
        if (r->err != 0)
            t->by_code[r->err][r->native != 0]++;
        if (v == V_SCRIPT) {
            t->scripted++;
            mock_win_push(&t->seen, now, cost);
            continue;
        }
        t->requests++;
        if (v == V_BAD) {
            t->errors++;
            continue;
        }
        t->streams += (uint64_t)stream;
        mock_win_push(&t->seen, now, cost);
        if (v == V_OK) {
            t->ok++;
            t->input_tokens += r->a.in_tok;
            t->output_tokens += r->a.out_tok;
            mock_win_push(&t->okw, now, cost);
        } else {
            t->throttled++;
            t->by_reason[v - 1]++;
        }
    }
    if (m != NULL)
        m->last[m->nlast++ % LAST_STATUSES] = r->err ? r->err_status : v == V_BAD ? 400 : 200;
    pthread_mutex_unlock(&g.mu);
    return v;
}

/* ==== Connection I/O ==== */

/* Sleeps <ms> unless the server is stopping. Returns 0, or -1 when stopping. */
static int sleep_ms(unsigned ms)
{
    struct pollfd p = {.fd = g.stop_rd, .events = POLLIN};
    int n;
    do
        n = poll(&p, 1, (int)ms);
    while (n < 0 && errno == EINTR);
    return n == 0 ? 0 : -1;
}

/* Reads more input after the unconsumed bytes. Returns the count read, or -1 at EOF, on
 * error or when the buffer is full. */
static int fill(struct conn *c)
{
    int n;
    if (c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    if (c->in_len == IN_CAP)
        return -1;
    n = SSL_read(c->ssl, c->in + c->in_len, (int)(IN_CAP - c->in_len));
    if (n <= 0) {
        if (SSL_get_error(c->ssl, n) != SSL_ERROR_ZERO_RETURN)
            c->broken = 1;
        return -1;
    }
    c->in_len += (size_t)n;
    return n;
}

static int send_all(void *ctx, const void *p, size_t n)
{
    struct conn *c = ctx;
    const char *s = p;
    while (n > 0) {
        int k = SSL_write(c->ssl, s, n > (1u << 30) ? 1 << 30 : (int)n);
        if (k <= 0) {
            c->broken = 1;
            return -1;
        }
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

/* Writes a response head; <clen> < 0 means chunked. <extra> is more header lines, each
 * ending in CRLF, or NULL. */
static int send_head(struct conn *c, int status, const char *ctype, int64_t clen, int gzip, int close,
                     const char *extra)
{
    struct mock_buf b = {0};
    int rc;
    mock_buf_printf(&b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n", status, reason(status), ctype);
    if (extra != NULL)
        mock_buf_str(&b, extra);
    if (gzip)
        mock_buf_str(&b, "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n");
    if (clen >= 0)
        mock_buf_printf(&b, "Content-Length: %" PRId64 "\r\n", clen);
    else
        mock_buf_str(&b, "Transfer-Encoding: chunked\r\n");
    mock_buf_str(&b, close ? "Connection: close\r\n\r\n" : "\r\n");
    rc = send_all(c, b.p, b.len);
    mock_buf_free(&b);
    return rc;
}

/* Sends a complete body: with Content-Length, or chunked in SLICE pieces when <chunked>. */
static int send_body(struct conn *c, int status, const char *ctype, const struct mock_buf *body, int gzip,
                     int chunked, int close, const char *extra)
{
    struct mock_out o;
    struct mock_buf zb = {0};
    int rc;
    if (chunked) {
        rc = send_head(c, status, ctype, -1, gzip, close, extra);
        mock_out_open(&o, send_all, c, gzip, 1);
        for (size_t off = 0; rc == 0 && off < body->len; off += SLICE)
            rc = mock_out_write(&o, body->p + off, body->len - off < SLICE ? body->len - off : SLICE, 0);
        if (rc == 0)
            rc = mock_out_finish(&o);
        mock_out_close(&o);
        return rc;
    }
    if (gzip) {
        mock_gzip(&zb, body->p, body->len);
        body = &zb;
    }
    rc = send_head(c, status, ctype, (int64_t)body->len, gzip, close, extra);
    if (rc == 0)
        rc = send_all(c, body->p, body->len);
    mock_buf_free(&zb);
    return rc;
}

static int send_json(struct conn *c, int status, const char *json, int close)
{
    struct mock_buf b = {.p = (char *)json, .len = strlen(json)};
    return send_body(c, status, JSON_TYPE, &b, 0, 0, close, NULL);
}

/* ==== Answers ==== */

/* The error answer account() decided, with the envelope of the endpoint; a native stream gets
 * HTTP 200 and one error event, as DashScope does (wire §3.1). --close-on-429 closes after any
 * 429, scripted or not. */
static int send_error(struct conn *c, struct rq *r)
{
    struct mock_buf b = {0};
    char extra[80];
    int n = 0, rc;
    if (r->retry_ms >= 0)
        n += snprintf(extra + n, sizeof extra - (size_t)n, "retry-after-ms: %d\r\n", r->retry_ms);
    if (r->retry_s >= 0)
        n += snprintf(extra + n, sizeof extra - (size_t)n, "Retry-After: %d\r\n", r->retry_s);
    extra[n] = '\0';
    r->close |= g.close_on_429 && r->err_status == 429;
    if (r->native && r->sse) {
        struct mock_out o;
        mock_err_event(&b, r->err, r->err_status, r->a.id);
        rc = send_head(c, 200, SSE_TYPE, -1, r->gzip, r->close, extra);
        mock_out_open(&o, send_all, c, r->gzip, 1);
        if (rc == 0)
            rc = mock_out_write(&o, b.p, b.len, 1);
        if (rc == 0)
            rc = mock_out_finish(&o);
        mock_out_close(&o);
    } else {
        mock_err_body(&b, r->native, r->err, r->a.id);
        rc = send_body(c, r->err_status, JSON_TYPE, &b, r->gzip, g.chunked, r->close, extra);
    }
    mock_buf_free(&b);
    if (rc < 0)
        return -1;
    if (r->close && r->err_status == 429) {
        pthread_mutex_lock(&g.mu);
        g.st.closed_after_429++;
        pthread_mutex_unlock(&g.mu);
    }
    return r->err_status;
}

/* Streams the answer as SSE in chunked framing, one gzip sync flush per event when gzip. */
static int send_stream(struct conn *c, struct rq *r)
{
    uint64_t n = mock_answer_events(&r->a);
    struct mock_buf ev = {0};
    struct mock_out out;
    int rc = send_head(c, 200, SSE_TYPE, -1, r->gzip, r->close, NULL);

    mock_out_open(&out, send_all, c, r->gzip, 1);
    for (uint64_t k = 0; rc == 0 && k < n; k++) {
        if (k > 0 && sleep_ms(g.stream_delay_ms) < 0) {
            rc = -1;
            break;
        }
        ev.len = 0;
        mock_answer_event(&ev, &r->a, k);
        rc = mock_out_write(&out, ev.p, ev.len, 1);
    }
    if (rc == 0)
        rc = mock_out_finish(&out);
    mock_out_close(&out);
    mock_buf_free(&ev);
    return rc < 0 ? -1 : 200;
}

static int answer_model(struct conn *c, struct rq *r)
{
    struct mock_buf b = {0};
    int embeddings = r->a.kind == MOCK_EMBEDDINGS, status = 200, rc;
    enum verdict v;

    mock_uuid(r->a.id, r->hash);
    r->a.seed = mock_mix64(r->hash ^ 0x7e47u);
    /* Token estimate of SPEC §5: one per CJK character, one per four other characters. */
    r->a.in_tok = (r->j.text_chars - r->j.cjk_chars + 3) / 4 + r->j.cjk_chars;
    r->a.out_tok = embeddings ? 0 : r->max_tokens >= 0 ? (uint64_t)r->max_tokens : DEFAULT_TOKENS;
    r->stream &= !embeddings;
    v = account(r);
    if (sleep_ms(g.latency_ms) < 0)
        return -1;
    if (r->err != 0)
        return send_error(c, r);
    if (v == V_OK && (r->native ? r->sse : r->stream))
        return send_stream(c, r);
    if (v == V_BAD) {
        status = 400;
        mock_invalid_body(
            &b, r->native,
            !r->j.done || r->json_err ? "Request body is not valid JSON." : "Model not specified.", r->a.id);
    } else {
        mock_answer_body(&b, &r->a);
    }
    rc = send_body(c, status, JSON_TYPE, &b, r->gzip, g.chunked, r->close, NULL);
    mock_buf_free(&b);
    return rc < 0 ? -1 : status;
}

/* ==== Stats, reset, bulk ==== */

static void put_window(struct mock_buf *b, const char *prefix, const struct mock_window *w)
{
    mock_buf_printf(b,
                    ",\"%smax_req_1s\":%" PRIu64 ",\"%smax_tok_1s\":%" PRIu64 ",\"%smax_req_60s\":%" PRIu64
                    ",\"%smax_tok_60s\":%" PRIu64,
                    prefix, w->max_req_1s, prefix, w->max_tok_1s, prefix, w->max_req_60s, prefix,
                    w->max_tok_60s);
}

#define NERR (MOCK_ERR_END - 1)

/* Pair <k> of tally.by_code, numbered native codes first, then compatible ones. */
static const char *pair_code(int k) { return mock_err_code(k < NERR, (enum mock_err)(k % NERR + 1)); }
static uint64_t pair_count(const struct tally *t, int k) { return t->by_code[k % NERR + 1][k < NERR]; }

/* Every wire code once, with the count of all errors that carry it (the free-quota answer
 * shares the TPM codes, and several errors have the same code in both envelopes). */
static void put_codes(struct mock_buf *b, const struct tally *t)
{
    for (int k = 0; k < 2 * NERR; k++) {
        const char *name = pair_code(k);
        uint64_t n = 0;
        int j;
        for (j = 0; j < k && strcmp(pair_code(j), name) != 0; j++)
            ;
        if (j < k)
            continue; /* counted with pair j */
        for (j = k; j < 2 * NERR; j++)
            if (strcmp(pair_code(j), name) == 0)
                n += pair_count(t, j);
        mock_buf_printf(b, "%s\"%s\":%" PRIu64, k ? "," : "", name, n);
    }
}

static void put_tally(struct mock_buf *b, const struct tally *t)
{
    mock_buf_printf(b,
                    "{\"attempts_seen\":%" PRIu64 ",\"requests\":%" PRIu64 ",\"ok\":%" PRIu64
                    ",\"throttled\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"scripted\":%" PRIu64
                    ",\"streams\":%" PRIu64 ",\"input_tokens\":%" PRIu64 ",\"output_tokens\":%" PRIu64
                    ",\"throttled_by_code\":{",
                    t->attempts_seen, t->requests, t->ok, t->throttled, t->errors, t->scripted, t->streams,
                    t->input_tokens, t->output_tokens);
    put_codes(b, t);
    mock_buf_printf(
        b, "},\"throttled_by_reason\":{\"rpm\":%" PRIu64 ",\"tpm\":%" PRIu64 ",\"free_quota\":%" PRIu64 "}",
        t->by_reason[0], t->by_reason[1], t->by_reason[2]);
    put_window(b, "", &t->seen);
    put_window(b, "ok_", &t->okw);
}

static void put_names(struct mock_buf *b, const char *key, const struct name_count *e)
{
    mock_buf_printf(b, ",\"%s\":{", key);
    for (const struct name_count *f = e; f != NULL; f = f->next) {
        mock_buf_str(b, f == e ? "" : ",");
        mock_buf_jstr(b, f->name, strlen(f->name));
        mock_buf_printf(b, ":%" PRIu64, f->n);
    }
    mock_buf_str(b, "}");
}

static void stats_json(struct mock_buf *b)
{
    const struct stats *s = &g.st;
    uint64_t open = 0;
    pthread_mutex_lock(&g.mu);
    for (const struct conn *c = g.conns; c != NULL; c = c->next)
        open += (uint64_t)!c->done;
    mock_buf_printf(b,
                    "{\"uptime_ms\":%" PRIu64 ",\"connections\":%" PRIu64 ",\"open_connections\":%" PRIu64
                    ",\"tls_failures\":%" PRIu64 ",\"alpn\":{\"http/1.1\":%" PRIu64 ",\"h2\":%" PRIu64
                    ",\"none\":%" PRIu64 "},\"h2_preface\":%" PRIu64,
                    (now_ns(CLOCK_MONOTONIC) - g.start_ns) / 1000000, s->connections, open, s->tls_failures,
                    s->alpn[ALPN_HTTP11], s->alpn[ALPN_H2], s->alpn[ALPN_NONE], s->h2_preface);
    put_names(b, "sni", s->sni);
    mock_buf_printf(b,
                    ",\"accept_encoding\":{\"absent\":%" PRIu64 ",\"identity\":%" PRIu64 ",\"gzip\":%" PRIu64
                    ",\"other\":%" PRIu64 "},\"expect_continue\":%" PRIu64 ",\"chunked_bodies\":%" PRIu64
                    ",\"pipelined\":%" PRIu64 ",\"other_requests\":%" PRIu64 ",\"closed_after_429\":%" PRIu64
                    ",\"totals\":",
                    s->accept_encoding[AE_ABSENT], s->accept_encoding[AE_IDENTITY],
                    s->accept_encoding[AE_GZIP], s->accept_encoding[AE_OTHER], s->expect_continue,
                    s->chunked_bodies, s->pipelined, s->other_requests, s->closed_after_429);
    put_tally(b, &s->tot);
    mock_buf_str(b, "},\"models\":{");
    for (const struct model *m = g.models; m != NULL; m = m->next) {
        mock_buf_str(b, m == g.models ? "" : ",");
        mock_buf_jstr(b, m->name, strlen(m->name));
        mock_buf_str(b, ":");
        put_tally(b, &m->t);
        if (m->limited)
            mock_buf_printf(b, ",\"limit\":{\"rpm\":%" PRIu64 ",\"tpm\":%" PRIu64 "}", m->rpm, m->tpm);
        else
            mock_buf_str(b, ",\"limit\":null");
        mock_buf_printf(b, ",\"free_quota\":%s,\"scripted_pending\":%" PRIu64 ",\"last_statuses\":[",
                        m->free_quota ? "true" : "false", scripts_pending(m));
        for (uint64_t i = m->nlast > LAST_STATUSES ? m->nlast - LAST_STATUSES : 0; i < m->nlast; i++)
            mock_buf_printf(b, "%d%s", m->last[i % LAST_STATUSES], i + 1 < m->nlast ? "," : "");
        mock_buf_str(b, "]}");
    }
    mock_buf_str(b, "}}\n");
    pthread_mutex_unlock(&g.mu);
}

/* GET /bulk?bytes=N: N bytes of a fixed pseudo-random block, for throughput benchmarks. */
static int send_bulk(struct conn *c, struct rq *r)
{
    const char *q = strstr(r->path, "bytes=");
    uint64_t n = 0;
    int rc;
    if (q == NULL || mock_parse_u64(q + 6, strcspn(q + 6, "&"), &n) < 0 || n > INT64_MAX) {
        rc = send_json(c, 400, "{\"error\":\"usage: GET /bulk?bytes=N\"}\n", r->close);
        return rc < 0 ? -1 : 400;
    }
    rc = send_head(c, 200, "application/octet-stream", (int64_t)n, 0, r->close, NULL);
    for (uint64_t off = 0; rc == 0 && off < n; off += SLICE)
        rc = send_all(c, g.bulk, n - off < SLICE ? n - off : SLICE);
    return rc < 0 ? -1 : 200;
}

/* POST /mock/script: queues the rule of the body behind the model's others. */
static int add_script(struct conn *c, struct rq *r)
{
    struct mock_buf b = {0};
    struct rule *u, **tail;
    struct model *m;
    int status = 400, rc;
    if (!r->j.done || r->json_err) {
        mock_buf_str(&b, "{\"error\":\"the body is not valid JSON\"}\n");
    } else if (r->rule_bad) {
        mock_buf_str(&b, "{\"error\":\"unknown field or bad value\",\"field\":");
        mock_buf_jstr(&b, r->bad_field, strlen(r->bad_field));
        mock_buf_str(&b, ",\"usage\":{\"model\":\"M\",\"kind\":\"rpm|tpm|burst|generic|free_quota|capacity|"
                         "unavailable|arrearage|commodity|prepaid|postpaid|free_tier_only\",\"count\":1,"
                         "\"status\":\"400-599 (default: the kind's)\",\"retry_after_ms\":0,"
                         "\"retry_after_s\":0,\"close\":false}}\n");
    } else if (r->model[0] == '\0' || r->rule.err == 0) {
        mock_buf_str(&b, "{\"error\":\"a rule needs \\\"model\\\" and \\\"kind\\\"\"}\n");
    } else {
        status = 200;
        u = mock_calloc(sizeof *u);
        *u = r->rule;
        if (u->status == 0)
            u->status = mock_err_status(u->err);
        pthread_mutex_lock(&g.mu);
        m = model_get(r->model);
        for (tail = &m->rules; *tail != NULL; tail = &(*tail)->next)
            ;
        *tail = u;
        mock_buf_printf(&b, "{\"queued\":%" PRIu64 ",\"pending\":%" PRIu64 "}\n", u->left,
                        scripts_pending(m));
        pthread_mutex_unlock(&g.mu);
    }
    rc = send_body(c, status, JSON_TYPE, &b, 0, 0, r->close, NULL);
    mock_buf_free(&b);
    return rc < 0 ? -1 : status;
}

static int dispatch(struct conn *c, struct rq *r)
{
    struct mock_buf b = {0};
    int rc, status;
    switch (r->route) {
    case R_STATS:
        stats_json(&b);
        rc = send_body(c, 200, JSON_TYPE, &b, 0, 0, r->close, NULL);
        mock_buf_free(&b);
        return rc < 0 ? -1 : 200;
    case R_RESET:
        pthread_mutex_lock(&g.mu);
        stats_reset();
        scripts_clear();
        pthread_mutex_unlock(&g.mu);
        return send_json(c, 200, "{\"reset\":true}\n", r->close) < 0 ? -1 : 200;
    case R_SCRIPT:
        return add_script(c, r);
    case R_UNSCRIPT:
        pthread_mutex_lock(&g.mu);
        mock_buf_printf(&b, "{\"cleared\":%" PRIu64 "}\n", scripts_clear());
        pthread_mutex_unlock(&g.mu);
        rc = send_body(c, 200, JSON_TYPE, &b, 0, 0, r->close, NULL);
        mock_buf_free(&b);
        return rc < 0 ? -1 : 200;
    case R_BULK:
    case R_NONE:
        pthread_mutex_lock(&g.mu);
        g.st.other_requests++;
        pthread_mutex_unlock(&g.mu);
        if (r->route == R_BULK)
            return send_bulk(c, r);
        status = send_json(c, 404,
                           "{\"error\":{\"message\":\"Not found.\",\"type\":\"invalid_request_error\","
                           "\"param\":null,\"code\":\"not_found\"}}",
                           r->close);
        return status < 0 ? -1 : 404;
    default:
        return answer_model(c, r);
    }
}

/* ==== Connection loop ==== */

static void log_request(const struct conn *c, const struct rq *r, int status)
{
    if (g.log == NULL)
        return;
    pthread_mutex_lock(&g.mu);
    fprintf(g.log, "%" PRIu64 " conn=%" PRIu64 " model=%s status=%d code=%s %s %s\n",
            now_ns(CLOCK_REALTIME) / 1000000, c->id, r->model[0] ? r->model : "-", status,
            r->code ? r->code : "-", r->method, r->path);
    fflush(g.log);
    pthread_mutex_unlock(&g.mu);
}

/* Waits for a complete request head. Returns its length, or -1 when the connection must
 * close: EOF, an h2 preface (counted), or a bad or oversized head (answered). */
static int read_head(struct conn *c, struct qs_http_request *req, int *pipelined)
{
    *pipelined = c->nreq > 0;
    for (;;) {
        const char *p = c->in + c->in_off;
        size_t n = c->in_len - c->in_off;
        int rc;
        if (c->nreq == 0 && n > 0 && memcmp(p, H2_PREFACE, n < 24 ? n : 24) == 0) {
            if (n >= 24) {
                pthread_mutex_lock(&g.mu);
                g.st.h2_preface++;
                pthread_mutex_unlock(&g.mu);
                return -1;
            }
        } else if (n > 0) {
            rc = qs_http_parse_request(p, n, req);
            if (rc > 0)
                return rc;
            if (rc == QS_EBAD) {
                send_json(c, 400, "{\"error\":\"malformed request head\"}\n", 1);
                return -1;
            }
        }
        if (n == IN_CAP) {
            send_json(c, 431, "{\"error\":\"request head too large\"}\n", 1);
            return -1;
        }
        if (fill(c) < 0)
            return -1;
        *pipelined = 0;
    }
}

/* Reads the body, hashing every byte and scanning model requests' JSON. Returns 0, or -1
 * when the connection must close (bad framing is answered with 400). */
static int read_body(struct conn *c, struct rq *r, enum qs_body_mode mode, uint64_t clen)
{
    struct qs_http_body b;
    int scan = r->route == R_MODEL || r->route == R_SCRIPT;
    if (mode == QS_BODY_NONE || (mode == QS_BODY_LENGTH && clen == 0))
        return 0;
    qs_http_body_init(&b, mode, clen);
    for (;;) {
        const char *d = NULL;
        size_t used = 0, dl = 0;
        int rc = qs_http_body_feed(&b, c->in + c->in_off, c->in_len - c->in_off, &used, &d, &dl);
        if (rc == QS_EBAD) {
            send_json(c, 400, "{\"error\":\"malformed chunked body\"}\n", 1);
            return -1;
        }
        c->in_off += used;
        if (dl > 0) {
            r->hash = mock_fnv1a(r->hash, d, dl);
            if (scan && !r->j.done && !r->json_err &&
                qs_json_feed(&r->j, d, dl, r->route == R_MODEL ? on_json : on_script_json, r) < 0)
                r->json_err = 1;
        }
        if (rc == 1)
            return 0;
        if ((c->in_off == c->in_len || (used == 0 && dl == 0)) && fill(c) < 0)
            return -1;
    }
}

/* Serves one request. Returns 0 to go on with the next one, -1 to close. */
static int serve_request(struct conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct qs_http_request req;
    struct rq r;
    int status, pipelined, hl = read_head(c, &req, &pipelined);

    if (hl < 0)
        return -1;
    memset(&r, 0, sizeof r);
    rq_from_head(&r, &req);
    c->in_off += (size_t)hl;
    c->nreq++;
    if (pipelined) {
        pthread_mutex_lock(&g.mu);
        g.st.pipelined++;
        pthread_mutex_unlock(&g.mu);
    }
    /* curl and httpx wait (curl up to 1 s) for this before sending the body. */
    if (req.expect_continue && req.body_mode != QS_BODY_NONE && send_all(c, cont, sizeof cont - 1) < 0)
        return -1;
    if (read_body(c, &r, req.body_mode, req.content_length) < 0)
        return -1;
    status = dispatch(c, &r);
    log_request(c, &r, status);
    return status < 0 || r.close ? -1 : 0;
}

static void record_handshake(SSL *ssl)
{
    const unsigned char *alpn;
    unsigned alpn_len;
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    pthread_mutex_lock(&g.mu);
    g.st.alpn[alpn_len == 0 ? ALPN_NONE : alpn_len == 2 ? ALPN_H2 : ALPN_HTTP11]++;
    count_name(&g.st.sni, sni ? sni : "(none)");
    pthread_mutex_unlock(&g.mu);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    c->ssl = SSL_new(g.ctx);
    if (c->ssl != NULL && SSL_set_fd(c->ssl, c->fd) == 1 && SSL_accept(c->ssl) == 1) {
        record_handshake(c->ssl);
        while (serve_request(c) == 0)
            ;
        if (!c->broken)
            SSL_shutdown(c->ssl);
    } else {
        pthread_mutex_lock(&g.mu);
        g.st.tls_failures++;
        pthread_mutex_unlock(&g.mu);
    }
    /* The peer sees EOF now; the fd itself is closed by the main thread after the join, so
     * its number cannot be reused while the main thread may still shut it down. */
    shutdown(c->fd, SHUT_RDWR);
    SSL_free(c->ssl);
    c->ssl = NULL;
    pthread_mutex_lock(&g.mu);
    c->done = 1;
    pthread_mutex_unlock(&g.mu);
    return NULL;
}

/* ALPN: "h2" if offered and --alpn-h2, else "http/1.1" if offered, else no ALPN at all. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    const unsigned char *h1 = NULL, *h2 = NULL, *pick;
    (void)ssl;
    (void)arg;
    for (unsigned i = 0; i < inlen && i + 1 + in[i] <= inlen; i += 1 + in[i]) {
        if (in[i] == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0)
            h1 = in + i;
        else if (in[i] == 2 && memcmp(in + i + 1, "h2", 2) == 0)
            h2 = in + i;
    }
    pick = g.alpn_h2 && h2 != NULL ? h2 : h1;
    if (pick == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    *out = pick + 1;
    *outlen = pick[0];
    return SSL_TLSEXT_ERR_OK;
}

/* Joins finished connection threads, or all of them when <all>. */
static void reap(int all)
{
    struct conn *dead = NULL, **pp;
    pthread_mutex_lock(&g.mu);
    for (pp = &g.conns; *pp != NULL;) {
        struct conn *c = *pp;
        if (all || c->done) {
            *pp = c->next;
            c->next = dead;
            dead = c;
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&g.mu);
    while (dead != NULL) {
        struct conn *c = dead;
        dead = c->next;
        pthread_join(c->th, NULL);
        close(c->fd);
        free(c->in);
        free(c);
    }
}

static void accept_one(int lfd)
{
    int one = 1, fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    struct conn *c;
    if (fd < 0)
        return;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c = mock_calloc(sizeof *c);
    c->fd = fd;
    c->in = mock_realloc(NULL, IN_CAP);
    pthread_mutex_lock(&g.mu);
    c->id = ++g.next_conn_id;
    g.st.connections++;
    if (pthread_create(&c->th, NULL, conn_main, c) == 0) {
        c->next = g.conns;
        g.conns = c;
        c = NULL;
    }
    pthread_mutex_unlock(&g.mu);
    if (c != NULL) {
        fprintf(stderr, "qshim-mock: cannot start a connection thread\n");
        close(fd);
        free(c->in);
        free(c);
    }
}

/* ==== Startup and shutdown ==== */

static void usage(FILE *f)
{
    fputs("usage: qshim-mock --cert FILE --key FILE [--port N] [--addr IP] [--limit MODEL=RPM/TPM]...\n"
          "                  [--latency-ms N] [--stream-delay-ms N] [--alpn-h2] [--close-on-429]\n"
          "                  [--free-quota-model M]... [--retry-after-ms N] [--chunked] [--log FILE]\n"
          "Prints PORT=<n> once listening; runs until SIGTERM or SIGINT.\n"
          "HTTP: GET /mock/stats, POST /mock/reset, POST|DELETE /mock/script, GET /bulk?bytes=N.\n",
          f);
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
    uint64_t v;
    if (mock_parse_u64(s, strlen(s), &v) < 0 || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* MODEL=RPM/TPM */
static int parse_limit(const char *s)
{
    const char *eq = strrchr(s, '='), *slash = eq ? strchr(eq, '/') : NULL;
    uint64_t rpm, tpm;
    char name[QS_JSON_STR_MAX + 1];
    struct model *m;
    if (slash == NULL || eq == s || (size_t)(eq - s) > QS_JSON_STR_MAX ||
        mock_parse_u64(eq + 1, (size_t)(slash - eq - 1), &rpm) < 0 ||
        mock_parse_u64(slash + 1, strlen(slash + 1), &tpm) < 0)
        return -1;
    memcpy(name, s, (size_t)(eq - s));
    name[eq - s] = '\0';
    m = model_get(name);
    m->limited = 1;
    m->rpm = rpm;
    m->tpm = tpm;
    return 0;
}

static int parse_args(int argc, char **argv)
{
    static const struct option opts[] = {{"cert", 1, NULL, 'c'},
                                         {"key", 1, NULL, 'k'},
                                         {"port", 1, NULL, 'p'},
                                         {"addr", 1, NULL, 'a'},
                                         {"limit", 1, NULL, 'L'},
                                         {"latency-ms", 1, NULL, 'l'},
                                         {"stream-delay-ms", 1, NULL, 'd'},
                                         {"alpn-h2", 0, NULL, '2'},
                                         {"close-on-429", 0, NULL, 'C'},
                                         {"free-quota-model", 1, NULL, 'f'},
                                         {"retry-after-ms", 1, NULL, 'r'},
                                         {"chunked", 0, NULL, 'K'},
                                         {"log", 1, NULL, 'o'},
                                         {"help", 0, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int o, idx = 0;
    unsigned ms;
    while ((o = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        int bad = 0;
        switch (o) {
        case 'c':
            g.cert = optarg;
            break;
        case 'k':
            g.key = optarg;
            break;
        case 'a':
            g.addr = optarg;
            break;
        case 'o':
            g.log_path = optarg;
            break;
        case 'p':
            bad = parse_uint(optarg, 65535, &g.port);
            break;
        case 'l':
            bad = parse_uint(optarg, 3600000, &g.latency_ms);
            break;
        case 'd':
            bad = parse_uint(optarg, 3600000, &g.stream_delay_ms);
            break;
        case 'L':
            bad = parse_limit(optarg);
            break;
        case 'r':
            bad = parse_uint(optarg, 3600000, &ms);
            if (!bad)
                g.retry_after_ms = (int)ms;
            break;
        case 'f':
            if (strlen(optarg) > QS_JSON_STR_MAX)
                bad = 1;
            else
                model_get(optarg)->free_quota = 1;
            break;
        case '2':
            g.alpn_h2 = 1;
            break;
        case 'C':
            g.close_on_429 = 1;
            break;
        case 'K':
            g.chunked = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
        if (bad) {
            fprintf(stderr, "qshim-mock: bad value for --%s: %s\n", opts[idx].name, optarg);
            return -1;
        }
    }
    return optind == argc && g.cert != NULL && g.key != NULL ? 0 : -1;
}

static int make_ctx(void)
{
    g.ctx = SSL_CTX_new(TLS_server_method());
    if (g.ctx == NULL || SSL_CTX_use_certificate_chain_file(g.ctx, g.cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(g.ctx, g.key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(g.ctx) != 1) {
        fprintf(stderr, "qshim-mock: cannot load %s / %s:\n", g.cert, g.key);
        ERR_print_errors_fp(stderr);
        return -1;
    }
    SSL_CTX_set_alpn_select_cb(g.ctx, alpn_select, NULL);
    return 0;
}

static int make_listener(void)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    socklen_t len = sizeof ss;
    int one = 1, fd;

    memset(&ss, 0, sizeof ss);
    if (inet_pton(AF_INET, g.addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)g.port);
        len = sizeof *v4;
    } else if (inet_pton(AF_INET6, g.addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)g.port);
        len = sizeof *v6;
    } else {
        fprintf(stderr, "qshim-mock: bad --addr %s\n", g.addr);
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        fprintf(stderr, "qshim-mock: cannot listen on %s:%u: %s\n", g.addr, g.port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    g.port = ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
    return fd;
}

static void free_all(void)
{
    pthread_mutex_lock(&g.mu);
    stats_reset();
    scripts_clear();
    while (g.models != NULL) {
        struct model *m = g.models;
        g.models = m->next;
        free(m->name);
        free(m);
    }
    pthread_mutex_unlock(&g.mu);
    SSL_CTX_free(g.ctx);
    if (g.log != NULL)
        fclose(g.log);
}

int main(int argc, char **argv)
{
    sigset_t sigs;
    int lfd, sfd, pfd[2];
    uint64_t x = 0x6d6f636bu;

    if (parse_args(argc, argv) < 0) {
        usage(stderr);
        free_all();
        return 2;
    }
    /* TERM/INT are taken from a signalfd by the accept loop; blocking them before any thread
     * starts keeps them away from the connection threads. A peer that resets mid-write must
     * not kill us with SIGPIPE. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < sizeof g.bulk; i += 8) {
        x = mock_mix64(x);
        memcpy(g.bulk + i, &x, 8);
    }
    g.start_ns = now_ns(CLOCK_MONOTONIC);
    if (g.log_path != NULL && (g.log = fopen(g.log_path, "a")) == NULL) {
        fprintf(stderr, "qshim-mock: cannot open %s: %s\n", g.log_path, strerror(errno));
        free_all();
        return 1;
    }
    if (make_ctx() < 0 || (lfd = make_listener()) < 0) {
        free_all();
        return 1;
    }
    sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    if (sfd < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
        perror("qshim-mock");
        close(lfd);
        free_all();
        return 1;
    }
    g.stop_rd = pfd[0];
    g.stop_wr = pfd[1];
    printf("PORT=%u\n", g.port);
    fflush(stdout);

    for (;;) {
        struct pollfd p[2] = {{.fd = lfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        int n = poll(p, 2, 200);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && p[1].revents)
            break;
        if (n > 0 && (p[0].revents & POLLIN))
            accept_one(lfd);
        reap(0);
    }

    /* Wake every connection: sleepers through the stop pipe, readers and writers by
     * shutting their sockets down. Then join them all. */
    if (write(g.stop_wr, "x", 1) < 0)
        perror("qshim-mock");
    pthread_mutex_lock(&g.mu);
    for (struct conn *c = g.conns; c != NULL; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_unlock(&g.mu);
    reap(1);
    close(lfd);
    close(sfd);
    close(pfd[0]);
    close(pfd[1]);
    free_all();
    return 0;
}
