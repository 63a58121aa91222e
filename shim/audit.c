/* audit.c - JSONL audit records (see audit.h).
 *
 * One record per write(2) on O_APPEND: sslkeylog's "write at once rather than
 * using buffered I/O", so concurrent writers never interleave inside a line.
 * Rotation renames the full file away under an flock on PATH.lock; writers find out
 * by stat(PATH) before each record (inode changed or gone) and reopen, logrotate's
 * "create" scheme without the signal.
 * SPDX-License-Identifier: MIT
 */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"

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

static int open_append(const char *path, int extra_flags)
{
    int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | extra_flags;
    int fd = open(path, flags, 0600);
    if (fd < 0 && errno == ENOENT) {
        make_parents(path);
        fd = open(path, flags, 0600);
    }
    return fd;
}

int qs_audit_open(const char *path) { return open_append(path, 0); }

int qs_audit_write(int fd, const char *line, size_t len)
{
    ssize_t w;
    do
        w = write(fd, line, len);
    while (w < 0 && errno == EINTR);
    return w == (ssize_t)len ? 0 : -1;
}

/* ==== A log with rotation ==== */

struct qs_audit {
    pthread_mutex_t lock; /* held around the checks and the write, so a reopen never
                             closes a descriptor another thread is writing to */
    long max_bytes;       /* 0 = never rotate */
    int keep;
    int fd;    /* -1 until the first record */
    dev_t dev; /* the file <fd> is, to notice that PATH is another one now */
    ino_t ino;
    int regular; /* a regular file: rotated; else (FIFO, terminal) guarded for SIGPIPE */
    int dead;    /* opening failed: not tried again */
    int warned;  /* the one diagnostic line was printed */
    size_t path_len;
    char path[]; /* then room for ".lock" or ".NNNN" in the name buffers below */
};

#define SUFFIX_MAX 16 /* ".lock", "." and a number up to the config's 1000 */

struct qs_audit *qs_audit_new(const char *path, long max_bytes, int keep)
{
    size_t n = strlen(path);
    struct qs_audit *a = calloc(1, sizeof *a + n + 1);
    if (a == NULL)
        return NULL;
    pthread_mutex_init(&a->lock, NULL);
    a->max_bytes = max_bytes > 0 ? max_bytes : 0;
    a->keep = keep > 0 ? keep : 0;
    a->fd = -1;
    a->path_len = n;
    memcpy(a->path, path, n + 1);
    return a;
}

void qs_audit_free(struct qs_audit *a)
{
    if (a == NULL)
        return;
    if (a->fd >= 0)
        close(a->fd);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void qs_audit_atfork_child(struct qs_audit *a)
{
    if (a != NULL)
        pthread_mutex_init(&a->lock, NULL);
}

/* The one line on stderr a log may print; <err> is the errno of the failure. */
static void warn(struct qs_audit *a, const char *what, int err)
{
    if (a->warned)
        return;
    a->warned = 1;
    qs_diag("audit log %s: %s: %s (no further messages about it; the program is not affected)", a->path, what,
            strerror(err));
}

/* PATH with <suffix> ("lock", or a number) into <out> (path_len + SUFFIX_MAX bytes). */
static void name_with(const struct qs_audit *a, char *out, const char *suffix)
{
    memcpy(out, a->path, a->path_len);
    snprintf(out + a->path_len, SUFFIX_MAX, ".%s", suffix);
}

static void name_numbered(const struct qs_audit *a, char *out, int n)
{
    char num[12];
    snprintf(num, sizeof num, "%d", n);
    name_with(a, out, num);
}

/* Opens PATH (again). Non-blocking, so that a FIFO with no reader fails instead of
 * hanging the program. 0, or -1 with errno and the old descriptor kept. */
static int reopen(struct qs_audit *a)
{
    struct stat st;
    int fd = open_append(a->path, O_NONBLOCK);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (a->fd >= 0)
        close(a->fd);
    a->fd = fd;
    a->dev = st.st_dev;
    a->ino = st.st_ino;
    a->regular = S_ISREG(st.st_mode);
    return 0;
}

static int is_ours(const struct qs_audit *a, const struct stat *st)
{
    return st->st_dev == a->dev && st->st_ino == a->ino;
}

/* Would a record of <len> bytes go somewhere else than the end of our file, or take the
 * file at PATH past max_bytes? (A file holding nothing takes any record: one longer
 * than max_bytes is written alone rather than lost.) */
static int due(const struct qs_audit *a, size_t len)
{
    struct stat st;
    if (stat(a->path, &st) != 0 || !is_ours(a, &st))
        return 1;
    return st.st_size > 0 && (uint64_t)st.st_size + len > (uint64_t)a->max_bytes;
}

/* PATH -> PATH.1, PATH.1 -> PATH.2, ... the first missing number ends the chain, and
 * PATH.<keep> is overwritten (dropped). With keep 0 PATH is removed. 0, or -1 with errno. */
static int shift(struct qs_audit *a)
{
    char from[a->path_len + SUFFIX_MAX], to[a->path_len + SUFFIX_MAX];
    struct stat st;
    int top = 1;

    if (a->keep == 0)
        return unlink(a->path) == 0 || errno == ENOENT ? 0 : -1;
    while (top < a->keep) {
        name_numbered(a, from, top);
        if (lstat(from, &st) != 0)
            break;
        top++;
    }
    /* PATH.top is free, or it is PATH.keep and goes */
    for (int i = top - 1; i >= 1; i--) {
        name_numbered(a, from, i);
        name_numbered(a, to, i + 1);
        if (rename(from, to) != 0 && errno != ENOENT)
            return -1;
    }
    name_numbered(a, to, 1);
    return rename(a->path, to) == 0 || errno == ENOENT ? 0 : -1;
}

/* Under an exclusive flock of PATH.lock (opened here each time: a descriptor inherited
 * across fork would share the lock with the parent): rotates the file at PATH if <len>
 * more bytes would take it past max_bytes (another process may have rotated while we
 * waited; then the new file decides), and reopens PATH if it is not our file. 0, or -1
 * with errno, the current descriptor still usable. */
static int rotate(struct qs_audit *a, size_t len)
{
    char lock_path[a->path_len + SUFFIX_MAX];
    struct stat st;
    int rc = 0, e = 0;

    name_with(a, lock_path, "lock");
    int lk = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lk < 0)
        return -1;
    while ((rc = flock(lk, LOCK_EX)) != 0 && errno == EINTR)
        ;
    if (rc == 0 && stat(a->path, &st) == 0 && st.st_size > 0 &&
        (uint64_t)st.st_size + len > (uint64_t)a->max_bytes)
        rc = shift(a);
    if (rc == 0 && (stat(a->path, &st) != 0 || !is_ours(a, &st)))
        rc = reopen(a);
    e = errno;
    close(lk); /* releases the lock */
    errno = e;
    return rc;
}

/* One write(2). Into a FIFO or terminal, with SIGPIPE blocked for this thread and a
 * SIGPIPE it caused taken back, so a reader that went away cannot kill the program. */
static int write_record(struct qs_audit *a, const char *line, size_t len)
{
    sigset_t pipe_set, old, pending;
    struct timespec zero = {0, 0};
    int rc, e, was_pending;

    if (a->regular)
        return qs_audit_write(a->fd, line, len);
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    rc = qs_audit_write(a->fd, line, len);
    e = errno;
    if (rc != 0 && e == EPIPE && !was_pending)
        sigtimedwait(&pipe_set, NULL, &zero);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return rc;
}

int qs_audit_log(struct qs_audit *a, const char *line, size_t len)
{
    int rc = -1;

    pthread_mutex_lock(&a->lock);
    if (a->dead)
        goto out;
    if (a->fd < 0 && reopen(a) != 0) {
        a->dead = 1;
        warn(a, "cannot open", errno);
        goto out;
    }
    /* Rotation failing (a read-only directory, say) still leaves a file to write to. */
    if (a->max_bytes > 0 && a->regular && due(a, len) && rotate(a, len) != 0)
        warn(a, "cannot rotate", errno);
    rc = write_record(a, line, len);
    if (rc != 0)
        warn(a, "cannot write", errno != 0 ? errno : EIO);
out:
    pthread_mutex_unlock(&a->lock);
    return rc;
}
