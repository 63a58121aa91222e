/* audit.c - JSONL audit records (see audit.h).
 *
 * One record per write(2) on O_APPEND: sslkeylog's "write at once rather than
 * using buffered I/O", so concurrent writers never interleave inside a line.
 * SPDX-License-Identifier: MIT
 */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct out {
    char *p;
    size_t len, cap;
    int overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        o->overflow = 1;
    else
        put(o, tmp, (size_t)n);
}

/* ,"key": -- written directly: a record is formatted on every request, and one
 * vsnprintf per field was most of the shim's cost per request (make bench). */
static void put_key(struct out *o, const char *key)
{
    put(o, ",\"", 2);
    put(o, key, strlen(key));
    put(o, "\":", 2);
}

/* A JSON string, or null; stops at <max> bytes (a path's query string is cut by
 * the caller passing the length up to '?'). Runs of plain bytes are copied whole. */
static void put_str(struct out *o, const char *key, const char *s, size_t max)
{
    put_key(o, key);
    if (s == NULL) {
        put(o, "null", 4);
        return;
    }
    put(o, "\"", 1);
    size_t i = 0, run = 0;
    for (; i < max && s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c != '"' && c != '\\' && c >= 0x20)
            continue;
        put(o, s + run, i - run);
        run = i + 1;
        if (c < 0x20) {
            putf(o, "\\u%04x", c);
        } else {
            char e[2] = {'\\', (char)c};
            put(o, e, 2);
        }
    }
    put(o, s + run, i - run);
    put(o, "\"", 1);
}

static void put_num(struct out *o, const char *key, int64_t v)
{
    put_key(o, key);
    if (v < 0) {
        put(o, "null", 4);
        return;
    }
    char digits[24];
    size_t n = sizeof digits;
    do
        digits[--n] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    put(o, digits + n, sizeof digits - n);
}

size_t qs_audit_format(const struct qs_audit_rec *r, char *buf, size_t len)
{
    struct out o = {buf, 0, len, 0};
    time_t secs = (time_t)(r->ts_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    putf(&o, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03uZ\",\"pid\":%d", tm.tm_year + 1900, tm.tm_mon + 1,
         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(r->ts_ms % 1000), r->pid);
    put_str(&o, "prog", r->prog, 256);
    put_str(&o, "event", r->event, 32);
    put_str(&o, "host", r->host, 256);
    put_str(&o, "region", r->region, 32);
    put_str(&o, "method", r->method, 16);
    size_t plen = 0;
    if (r->path != NULL)
        plen = strcspn(r->path, "?");
    put_str(&o, "path", r->path, plen);
    put_str(&o, "model", r->model, 128);
    put_key(&o, "stream");
    put(&o, r->stream ? "true" : "false", r->stream ? 4 : 5);
    put_num(&o, "status", r->status > 0 ? r->status : -1);
    put_num(&o, "attempts", r->attempts);
    put_num(&o, "paced_ms", r->paced_ms);
    put_num(&o, "retry_ms", r->retry_ms);
    put_num(&o, "latency_ms", r->latency_ms);
    put_num(&o, "est_tokens", r->est_tokens);
    put_num(&o, "input_tokens", r->input_tokens);
    put_num(&o, "output_tokens", r->output_tokens);
    put_str(&o, "code", r->code, 64);
    put_str(&o, "key", r->key, 8);
    if (r->reason != NULL)
        put_str(&o, "reason", r->reason, 200);
    put(&o, "}\n", 2);
    return o.overflow ? 0 : o.len;
}

/* mkdir -p for the directories above <path>, mode 0700. */
static void make_parents(const char *path)
{
    char dir[4096];
    size_t n = strlen(path);
    if (n >= sizeof dir)
        return;
    memcpy(dir, path, n + 1);
    for (char *p = dir + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return;
        *p = '/';
    }
}

int qs_audit_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) {
        make_parents(path);
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    }
    return fd;
}

int qs_audit_write(int fd, const char *line, size_t len)
{
    ssize_t w;
    do
        w = write(fd, line, len);
    while (w < 0 && errno == EINTR);
    return w == (ssize_t)len ? 0 : -1;
}
