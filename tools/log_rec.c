/* log_rec.c - audit records read back (see log_rec.h).
 *
 * The shim writes flat objects (shim/audit.c), so only depth-1 scalars are fields; a
 * nested value is allowed and ignored, as an unknown key is, so that a later format with
 * more in it still reads.
 * SPDX-License-Identifier: MIT
 */
#include "log_rec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log_time.h"
#include "retry.h"

enum kind { K_STR, K_NUM, K_LONG, K_INT, K_BOOL, K_TS };

static const struct field {
    const char *key;
    enum kind kind;
    size_t off;
    size_t size; /* K_STR: the buffer's size */
} fields[] = {
#define STR(k)                                                                                               \
    {                                                                                                        \
#k, K_STR, offsetof(struct qs_log_rec, k), sizeof(((struct qs_log_rec *)0)->k)                       \
    }
#define NUM(k, t)                                                                                            \
    {                                                                                                        \
#k, t, offsetof(struct qs_log_rec, k), 0                                                             \
    }
    NUM(ts_ms, K_TS),
    NUM(pid, K_LONG),
    STR(prog),
    STR(event),
    STR(host),
    STR(region),
    STR(method),
    STR(path),
    STR(model),
    NUM(stream, K_BOOL),
    NUM(status, K_INT),
    NUM(attempts, K_LONG),
    NUM(paced_ms, K_NUM),
    NUM(retry_ms, K_NUM),
    NUM(latency_ms, K_NUM),
    NUM(est_tokens, K_NUM),
    NUM(input_tokens, K_NUM),
    NUM(output_tokens, K_NUM),
    STR(code),
    STR(key),
    STR(reason),
#undef STR
#undef NUM
};

/* "ts" is the key of ts_ms; every other field is named as its key. */
static const char *key_of(const struct field *f) { return f->kind == K_TS ? "ts" : f->key; }

/* A JSON number's text as a whole number, or -1 when it is negative or not finite. */
static int64_t number(const char *val)
{
    char *end;
    double d = strtod(val, &end);
    if (*end != '\0' || !(d >= 0) || d > 9.0e18)
        return -1;
    return (int64_t)(d + 0.5);
}

static void on_value(void *ctx, const struct qs_json_value *v)
{
    struct qs_log_rec *r = ctx;
    if (v->depth != 1)
        return;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const struct field *f = &fields[i];
        char *at = (char *)r + f->off;
        if (strcmp(v->path[0], key_of(f)) != 0)
            continue;
        switch (f->kind) {
        case K_STR:
            if (v->type == QS_JSON_STRING)
                snprintf(at, f->size, "%s", v->val);
            break;
        case K_TS:
            if (v->type != QS_JSON_STRING || qs_log_parse_iso(v->val, &r->ts_ms) != 0)
                r->ts_ms = -1;
            break;
        case K_BOOL:
            r->stream = v->type == QS_JSON_TRUE ? 1 : v->type == QS_JSON_FALSE ? 0 : -1;
            break;
        case K_INT:
            if (v->type == QS_JSON_NUMBER) {
                int64_t n = number(v->val);
                *(int *)at = n > 0 && n < 1000 ? (int)n : 0;
            }
            break;
        case K_LONG:
            if (v->type == QS_JSON_NUMBER)
                *(long *)at = (long)number(v->val);
            break;
        case K_NUM:
            if (v->type == QS_JSON_NUMBER)
                *(int64_t *)at = number(v->val);
            break;
        }
        return;
    }
}

int qs_log_rec_parse(const char *line, size_t len, struct qs_log_rec *r)
{
    struct qs_json j;
    size_t i;
    long n;

    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    for (i = 0; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
        ;
    if (i == len)
        return QS_LOG_BLANK;
    /* The scanner reports scalars only: a top-level scalar would look like an empty record. */
    if (line[i] != '{')
        return QS_LOG_EBAD;
    memset(r, 0, sizeof *r);
    r->ts_ms = r->pid = r->attempts = -1;
    r->stream = -1;
    r->paced_ms = r->retry_ms = r->latency_ms = -1;
    r->est_tokens = r->input_tokens = r->output_tokens = -1;
    memset(&j, 0, sizeof j);
    n = qs_json_feed(&j, line + i, len - i, on_value, r);
    if (n == QS_JSON_EBAD || (size_t)n != len - i)
        return QS_LOG_EBAD;
    return j.done ? QS_LOG_OK : QS_LOG_EPARTIAL;
}

int64_t qs_log_rec_tokens(const struct qs_log_rec *r)
{
    if (r->input_tokens >= 0 || r->output_tokens >= 0)
        return (r->input_tokens > 0 ? r->input_tokens : 0) + (r->output_tokens > 0 ? r->output_tokens : 0);
    return r->est_tokens > 0 ? r->est_tokens : 0;
}

int64_t qs_log_rec_wait_ms(const struct qs_log_rec *r)
{
    return (r->paced_ms > 0 ? r->paced_ms : 0) + (r->retry_ms > 0 ? r->retry_ms : 0);
}

int qs_log_rec_ok(const struct qs_log_rec *r) { return r->status >= 200 && r->status <= 299; }

int qs_log_rec_throttle_passed(const struct qs_log_rec *r)
{
    if (strcmp(r->event, "request") != 0)
        return 0;
    return r->status == 429 || (r->status >= 500 && qs_retry_is_throttle(r->status, r->code, NULL));
}

/* Appends printf output to <out> at *<at>, never past <len>. */
static void add(char *out, size_t len, size_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(char *out, size_t len, size_t *at, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*at >= len)
        return;
    va_start(ap, fmt);
    n = vsnprintf(out + *at, len - *at, fmt, ap);
    va_end(ap);
    if (n > 0)
        *at = *at + (size_t)n < len ? *at + (size_t)n : len - 1;
}

void qs_log_rec_describe(const struct qs_log_rec *r, char *out, size_t len)
{
    char ts[32] = "-", who[96];
    size_t at = 0;

    if (len == 0)
        return;
    out[0] = '\0';
    if (r->ts_ms >= 0)
        qs_log_fmt_ts(r->ts_ms, QS_TS_HUMAN, ts, sizeof ts);
    if (r->pid >= 0)
        snprintf(who, sizeof who, "%s[%ld]", r->prog[0] ? r->prog : "?", r->pid);
    else
        snprintf(who, sizeof who, "%s", r->prog[0] ? r->prog : "?");
    add(out, len, &at, "%-23s %-18s %-11s %-16s", ts, who, r->event[0] ? r->event : "?",
        r->model[0] ? r->model : "-");
    if (r->status > 0)
        add(out, len, &at, " %3d", r->status);
    else
        add(out, len, &at, " %3s", "-");
    if (r->attempts >= 0)
        add(out, len, &at, " x%ld", r->attempts);
    if (r->paced_ms >= 0 || r->retry_ms >= 0)
        add(out, len, &at, " wait %lld+%lldms", (long long)(r->paced_ms > 0 ? r->paced_ms : 0),
            (long long)(r->retry_ms > 0 ? r->retry_ms : 0));
    if (r->input_tokens >= 0 || r->output_tokens >= 0)
        add(out, len, &at, " tok %lld+%lld", (long long)(r->input_tokens > 0 ? r->input_tokens : 0),
            (long long)(r->output_tokens > 0 ? r->output_tokens : 0));
    else if (r->est_tokens >= 0)
        add(out, len, &at, " tok ~%lld", (long long)r->est_tokens);
    if (r->latency_ms >= 0)
        add(out, len, &at, " %lldms", (long long)r->latency_ms);
    if (r->code[0])
        add(out, len, &at, " code=%s", r->code);
    if (r->reason[0])
        add(out, len, &at, " (%s)", r->reason);
}
