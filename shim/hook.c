/* hook.c - the interposed OpenSSL entry points; the only file with process state.
 *
 * Every hook has the same shape: find the real function, and unless this process
 * is enabled and the SSL* belongs to a DashScope connection, call it unchanged.
 * Process state lives in one struct (rt); a per-thread flag stops re-entry from
 * anything the shim itself calls. Initialisation (config, program filter) happens
 * on the first hooked call, not in a constructor: Python loads libssl late, and a
 * process that never speaks TLS should pay nothing.
 * SPDX-License-Identifier: MIT
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "config.h"
#include "conn.h"
#include "diag.h"
#include "http.h"
#include "resolve.h"
#include "table.h"

#define QS_EXPORT __attribute__((visibility("default")))
#define MAX_BUFFER_DEFAULT (64u * 1024 * 1024)
/* Output tokens reserved for a request that names no max_tokens: a typical chat answer.
 * The real count replaces it when the answer's usage arrives. */
#define DEFAULT_OUT_TOKENS 256

static struct {
    pthread_once_t once;
    pthread_mutex_t resolve_lock;
    atomic_int resolved;
    int complete; /* every real function was found (else calls only pass through) */
    int cpython;  /* the program is CPython (see may_yield) */
    int active;   /* this process is enabled */
    struct qs_real real;
    struct qs_config cfg;
    struct qs_table conns;
    struct qs_conn_env env;
    char prog[256];
    struct qs_audit *log; /* NULL: not logging (out of memory at start) */
} rt = {
    .once = PTHREAD_ONCE_INIT,
    .resolve_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* Set while the shim works on a call: anything it calls that comes back into a
 * hook goes straight to the real function. initial-exec keeps __tls_get_addr
 * (and its possible allocation) out of the hook path. */
static __thread int in_qs __attribute__((tls_model("initial-exec")));

/* Marks an SSL* that is not ours (another host, a server side): pass through. */
static char ignored_marker;
#define IGNORED ((struct qs_conn *)&ignored_marker)

/* The interposed functions (defined at the end), named here for the self-check. */
QS_EXPORT int SSL_write(SSL *s, const void *buf, int num);
QS_EXPORT int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written);
QS_EXPORT int SSL_read(SSL *s, void *buf, int num);
QS_EXPORT int SSL_read_ex(SSL *s, void *buf, size_t num, size_t *readbytes);
QS_EXPORT void SSL_free(SSL *s);
QS_EXPORT int SSL_connect(SSL *s);
QS_EXPORT int SSL_do_handshake(SSL *s);
QS_EXPORT int SSL_pending(const SSL *s);
QS_EXPORT int SSL_has_pending(const SSL *s);
QS_EXPORT int SSL_get_error(const SSL *s, int ret);

/* ======================= Resolution ======================= */

static const struct qs_real *real(void)
{
    if (atomic_load_explicit(&rt.resolved, memory_order_acquire))
        return &rt.real;
    pthread_mutex_lock(&rt.resolve_lock);
    if (!atomic_load_explicit(&rt.resolved, memory_order_relaxed)) {
        void *const self[QS_NHOOKS] = {
            (void *)SSL_write,       (void *)SSL_write_ex, (void *)SSL_read,         (void *)SSL_read_ex,
            (void *)SSL_free,        (void *)SSL_connect,  (void *)SSL_do_handshake, (void *)SSL_pending,
            (void *)SSL_has_pending, (void *)SSL_get_error};
        if (qs_resolve(&rt.real, self) != 0)
            qs_diag("some OpenSSL functions were not found; the shim stays inactive");
        else
            rt.complete = 1; /* published by the release store below */
        atomic_store_explicit(&rt.resolved, 1, memory_order_release);
    }
    pthread_mutex_unlock(&rt.resolve_lock);
    return &rt.real;
}

static int missing(const char *name)
{
    qs_diag("real %s not found", name);
    errno = ENOSYS;
    return -1;
}

/* ======================= Process set-up ======================= */

/* The backoff jitter's seed (rand01), per thread. A forked child, whose only thread is the
 * one that forked, starts it afresh: children forked from one parent would otherwise all
 * back off in step. */
static __thread uint64_t rand_seed __attribute__((tls_model("initial-exec")));

static void emit(const struct qs_audit_rec *rec);

/* fork: the child must not inherit a table lock held by another thread of the
 * parent, so the lock is taken around fork (jemalloc's prefork/postfork triple). */
static void prefork(void) { pthread_mutex_lock(&rt.conns.lock); }
static void postfork_parent(void) { pthread_mutex_unlock(&rt.conns.lock); }
static void postfork_child(void)
{
    qs_table_atfork_child(&rt.conns);
    qs_audit_atfork_child(rt.log);
    rt.env.pid = (int)getpid();
    rand_seed = 0;
}

/* A wait inside the program's own call. A signal ends it early (EINTR), so that a
 * program interrupted during a backoff gets control back at once (CPython checks
 * for signals only after the C call returns). */
static int sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    return nanosleep(&ts, NULL) == 0 ? 0 : -1;
}

/* CPython's ssl module calls SSL_write/SSL_read in a loop that, on WANT_WRITE, first runs
 * the program's signal handlers (an exception ends the call) and then calls again: so a
 * signal that interrupts a pacing wait can be left to the program to judge (conn.c). Not
 * for a memory BIO (no socket: asyncio's SSLObject, which would take WANT_WRITE as fatal). */
static int may_yield(SSL *s) { return rt.cpython && rt.real.SSL_get_fd(s) >= 0; }

/* Jitter only needs to differ between threads and processes, not be secret. */
static double rand01(void)
{
    uint64_t s = rand_seed;
    if (s == 0)
        s = ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&rand_seed ^ (uint64_t)time(NULL) ^
            0x9e3779b97f4a7c15ull;
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    rand_seed = s;
    return (double)(s >> 11) / 9007199254740992.0;
}

static const char *basename_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int program_enabled(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    snprintf(rt.prog, sizeof rt.prog, "%s", program_invocation_short_name);
    return qs_config_program_enabled(&rt.cfg, rt.prog, n > 0 ? basename_of(exe) : NULL);
}

static void init(void)
{
    const char *v = getenv("QSHIM_DEBUG");
    qs_diag_debug = v != NULL && *v != '\0' && strcmp(v, "0") != 0;
    v = getenv("QSHIM_DISABLE"); /* checked first so that a disabled process reads no file */
    if (v != NULL && *v != '\0' && strcmp(v, "0") != 0)
        return;

    qs_config_defaults(&rt.cfg);
    char path[QS_CFG_PATH_MAX], err[QS_CFG_ERR_MAX];
    if (qs_config_find(path, sizeof path) == 0 && qs_config_load_file(path, &rt.cfg, err, sizeof err) != 0) {
        qs_diag("%s; passing everything through", err);
        return;
    }
    if (qs_config_apply_env(&rt.cfg, err, sizeof err) != 0)
        qs_diag("%s", err);
    if (!rt.cfg.enabled || !program_enabled())
        return;
    if (qs_table_init(&rt.conns) != 0) {
        qs_diag("out of memory at start; passing everything through");
        return;
    }
    rt.log = qs_audit_new(rt.cfg.log.path, rt.cfg.log.max_bytes, rt.cfg.log.keep);

    rt.env.real = &rt.real;
    rt.env.prog = rt.prog;
    rt.env.pid = (int)getpid();
    rt.env.region = rt.cfg.region;
    rt.env.max_buffer = MAX_BUFFER_DEFAULT;
    rt.env.hold_answers = rt.cfg.mode == QS_MODE_ENFORCE;
    rt.env.retry_max_attempts = rt.cfg.retry.max_attempts;
    rt.env.retry_base_ms = rt.cfg.retry.base_ms;
    rt.env.retry_max_ms = rt.cfg.retry.max_ms;
    rt.env.retry_max_total_ms = rt.cfg.retry.max_total_ms;
    rt.env.sleep_ms = sleep_ms;
    rt.cpython = dlsym(RTLD_DEFAULT, "PyErr_CheckSignals") != NULL;
    rt.env.may_yield = may_yield;
    rt.env.rand01 = rand01;
    /* observe mode paces nothing, so its would-be waits come from a budget of its own and
     * never disturb processes that do pace */
    enum qs_budget_share share =
        rt.cfg.mode == QS_MODE_ENFORCE ? qs_budget_share_of(&rt.cfg) : QS_BUDGET_LOCAL;
    if (strcmp(rt.cfg.share.backend, "redis") == 0)
        qs_diag("share.backend \"redis\" is not built yet; sharing the budget on this machine only");
    v = getenv("QSHIM_SHM");
    rt.env.budget = qs_budget_new(&rt.cfg, share, v != NULL && *v == '/' ? v : NULL);
    if (rt.env.budget == NULL)
        qs_diag("out of memory at start; not pacing");
    rt.env.pace_wait = rt.cfg.mode == QS_MODE_ENFORCE;
    rt.env.default_out_tokens = DEFAULT_OUT_TOKENS;
    rt.env.fallback = rt.cfg.fallback;
    rt.env.nfallback = rt.cfg.nfallback;
    rt.env.emit = emit;
    pthread_atfork(prefork, postfork_parent, postfork_child);
    qs_debug("active in %s (config: %s, log: %s)", rt.prog, rt.cfg.source[0] ? rt.cfg.source : "defaults",
             rt.cfg.log.path);
    rt.active = 1;
}

/* Whether to act on a call. Every hook calls real() first, so <complete> is settled here;
 * with a function missing (an OpenSSL look-alike exporting only some of them) the shim
 * would call through NULL, so it only passes calls through. */
static int active(void)
{
    if (!rt.complete)
        return 0;
    pthread_once(&rt.once, init);
    return rt.active;
}

/* ======================= Audit log ======================= */

static void emit(const struct qs_audit_rec *rec)
{
    char line[2048];
    size_t n = qs_audit_format(rec, line, sizeof line);
    /* One write; rotation per log.max_bytes/keep; the first failure is one stderr line. */
    if (n > 0 && rt.log != NULL)
        qs_audit_log(rt.log, line, n);
}

/* ======================= Connection lookup ======================= */

/* The DashScope host of a new connection: SNI, else the Host header of its first
 * request (a client connecting by address sends no SNI). Returns the state to use,
 * IGNORED, or NULL when it cannot tell yet (no SNI and no request bytes). */
static struct qs_conn *classify(SSL *s, const char *first, size_t n)
{
    if (rt.real.SSL_is_server(s))
        return IGNORED;
    const char *host = rt.real.SSL_get_servername(s, 0);
    size_t len = host ? strlen(host) : 0;
    struct qs_http_request req;
    if (host == NULL && first != NULL && qs_http_parse_request(first, n, &req) > 0 && req.host != NULL) {
        host = req.host;
        len = req.host_len;
    }
    if (host == NULL)
        return first == NULL ? NULL : IGNORED;
    const char *colon = memchr(host, ':', len);
    size_t name_len = colon ? (size_t)(colon - host) : len;
    if (!qs_config_host_matches(&rt.cfg, host, name_len))
        return IGNORED;
    struct qs_conn *c = qs_conn_new(s, host, len);
    if (c == NULL) {
        qs_diag("out of memory; passing a connection through");
        return IGNORED;
    }
    qs_debug("DashScope connection to %.*s", (int)len, host);
    return c;
}

static struct qs_conn *lookup(SSL *s, const char *first, size_t n)
{
    struct qs_conn *c = qs_table_get(&rt.conns, s);
    if (c != NULL)
        return c;
    c = classify(s, first, n);
    if (c != NULL && qs_table_put(&rt.conns, s, c) != 0 && c != IGNORED) {
        qs_conn_free(c, &rt.env);
        c = IGNORED;
    }
    return c;
}

static void drop(SSL *s)
{
    struct qs_conn *c = qs_table_take(&rt.conns, s);
    if (c != NULL && c != IGNORED)
        qs_conn_free(c, &rt.env);
}

/* ======================= Hooks ======================= */

static int handshake(SSL *s, int (*fn)(SSL *))
{
    if (in_qs || !active())
        return fn(s);
    in_qs = 1;
    struct qs_conn *c = qs_table_get(&rt.conns, s);
    /* An SSL* we knew as established but that handshakes again was freed behind our
     * back and its address reused: start afresh. IGNORED ones are cheap to redo. */
    if (c != NULL && !rt.real.SSL_is_init_finished(s) && (c == IGNORED || qs_conn_established(c))) {
        drop(s);
        c = NULL;
    }
    if (c == NULL)
        c = lookup(s, NULL, 0);
    if (c != NULL && c != IGNORED) {
        qs_conn_clear_error(c);
        qs_conn_before_handshake(c, &rt.env);
    }
    in_qs = 0;
    int rc = fn(s);
    if (c != NULL && c != IGNORED) {
        in_qs = 1;
        qs_conn_after_handshake(c, &rt.env, rc);
        in_qs = 0;
    }
    return rc;
}

QS_EXPORT int SSL_connect(SSL *s)
{
    const struct qs_real *r = real();
    return r->SSL_connect ? handshake(s, r->SSL_connect) : missing("SSL_connect");
}

QS_EXPORT int SSL_do_handshake(SSL *s)
{
    const struct qs_real *r = real();
    return r->SSL_do_handshake ? handshake(s, r->SSL_do_handshake) : missing("SSL_do_handshake");
}

/* The write hooks share one path; <ex> selects which real function answers. */
static int write_common(SSL *s, int ex, const void *buf, size_t num, size_t *written)
{
    in_qs = 1;
    struct qs_conn *c = lookup(s, buf, num);
    int rc = -2; /* not ours */
    if (c != NULL && c != IGNORED)
        rc = qs_conn_write(c, &rt.env, ex, buf, num, written);
    in_qs = 0;
    return rc;
}

QS_EXPORT int SSL_write(SSL *s, const void *buf, int num)
{
    const struct qs_real *r = real();
    if (r->SSL_write == NULL)
        return missing("SSL_write");
    if (in_qs || num <= 0 || !active())
        return r->SSL_write(s, buf, num);
    size_t w = 0;
    int rc = write_common(s, 0, buf, (size_t)num, &w);
    if (rc == -2)
        return r->SSL_write(s, buf, num);
    return rc == 1 ? (int)w : rc;
}

QS_EXPORT int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written)
{
    const struct qs_real *r = real();
    if (r->SSL_write_ex == NULL)
        return missing("SSL_write_ex") + 1;
    if (in_qs || num == 0 || !active())
        return r->SSL_write_ex(s, buf, num, written);
    size_t w = 0;
    int rc = write_common(s, 1, buf, num, &w);
    if (rc == -2)
        return r->SSL_write_ex(s, buf, num, written);
    if (rc == 1 && written != NULL)
        *written = w;
    return rc == 1 ? 1 : 0;
}

/* Our state for <s>, or NULL. A WANT_WRITE the shim handed out for an earlier call is
 * forgotten here unless <keep>: any other call on <s> means that failure was dealt with. */
static struct qs_conn *ours_keep(SSL *s, int keep)
{
    if (in_qs || !active())
        return NULL;
    struct qs_conn *c = qs_table_get(&rt.conns, s);
    if (c == IGNORED)
        return NULL;
    if (c != NULL && !keep)
        qs_conn_clear_error(c);
    return c;
}

static struct qs_conn *ours(SSL *s) { return ours_keep(s, 0); }

QS_EXPORT int SSL_read(SSL *s, void *buf, int num)
{
    const struct qs_real *r = real();
    if (r->SSL_read == NULL)
        return missing("SSL_read");
    struct qs_conn *c = num > 0 ? ours(s) : NULL;
    if (c == NULL)
        return r->SSL_read(s, buf, num);
    size_t got = 0;
    in_qs = 1;
    int rc = qs_conn_read(c, &rt.env, 0, buf, (size_t)num, &got);
    in_qs = 0;
    return rc == 1 ? (int)got : rc;
}

QS_EXPORT int SSL_read_ex(SSL *s, void *buf, size_t num, size_t *readbytes)
{
    const struct qs_real *r = real();
    if (r->SSL_read_ex == NULL)
        return missing("SSL_read_ex") + 1;
    struct qs_conn *c = num > 0 ? ours(s) : NULL;
    if (c == NULL)
        return r->SSL_read_ex(s, buf, num, readbytes);
    size_t got = 0;
    in_qs = 1;
    int rc = qs_conn_read(c, &rt.env, 1, buf, num, &got);
    in_qs = 0;
    if (rc == 1 && readbytes != NULL)
        *readbytes = got;
    return rc == 1 ? 1 : 0;
}

/* Bytes we hold for the program are invisible to poll(); counting them here keeps
 * programs that ask SSL_pending before polling (curl, CPython) from waiting for
 * data they already have. */
QS_EXPORT int SSL_pending(const SSL *s)
{
    const struct qs_real *r = real();
    if (r->SSL_pending == NULL)
        return 0;
    int n = r->SSL_pending(s);
    struct qs_conn *c = ours((SSL *)s);
    if (c != NULL) {
        size_t held = qs_conn_pending(c);
        n = held > (size_t)(INT_MAX - n) ? INT_MAX : n + (int)held;
    }
    return n;
}

QS_EXPORT int SSL_has_pending(const SSL *s)
{
    const struct qs_real *r = real();
    if (r->SSL_has_pending == NULL)
        return 0;
    struct qs_conn *c = ours((SSL *)s);
    return (c != NULL && qs_conn_pending(c) > 0) || r->SSL_has_pending(s);
}

/* The shim's own failures (a wait handed back to the program) answer here; every other one
 * is the real call's, and OpenSSL answers it. */
QS_EXPORT int SSL_get_error(const SSL *s, int ret)
{
    const struct qs_real *r = real();
    if (r->SSL_get_error == NULL)
        return missing("SSL_get_error") + 6; /* SSL_ERROR_SYSCALL */
    struct qs_conn *c = ret <= 0 ? ours_keep((SSL *)s, 1) : NULL;
    int e = c != NULL ? qs_conn_error(c, ret) : -1;
    return e >= 0 ? e : r->SSL_get_error(s, ret);
}

QS_EXPORT void SSL_free(SSL *s)
{
    const struct qs_real *r = real();
    if (s != NULL && !in_qs && active()) {
        in_qs = 1;
        drop(s);
        in_qs = 0;
    }
    if (r->SSL_free != NULL)
        r->SSL_free(s);
    else
        missing("SSL_free");
}
