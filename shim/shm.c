/* shm.c - the shared pacing table (see shm.h; the bytes are in shm_layout.h).
 *
 * Set-up without a creator to wait for: every opener runs the same idempotent steps, so a
 * process killed half-way through setting the object up leaves nothing anyone waits on.
 * ftruncate to the one size (zero-filled), stamp the header's constants, then move the magic
 * from 0 to QS_SHM_MAGIC with a CAS; all-zero bytes are a valid unstamped header, free
 * buckets and fresh pacer states. A bucket is claimed by a CAS of its state word from FREE to
 * the claimer's pid, set up (key, mutex attributes), then published as READY; a claimer found
 * dead is replaced, one stuck for a second is stepped over.
 *
 * Each bucket's mutex is PTHREAD_PROCESS_SHARED and PTHREAD_MUTEX_ROBUST, held only around
 * the pure decision (well under a microsecond), never while anyone sleeps. If its holder dies
 * (SIGKILL, OOM killer) the next locker gets EOWNERDEAD, marks it consistent and goes on: see
 * lock_bucket for why the state is still good.
 * SPDX-License-Identifier: MIT
 */
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "diag.h"
#include "shm_layout.h"

/* A lock held longer than this belongs to a process stopped (SIGSTOP, a debugger) inside its
 * decision; the caller then decides on the process-local table rather than hang. */
#define LOCK_TIMEOUT_NS 1000000000ull
/* A bucket being set up by a process that is gone after this long is taken over; one set up
 * by a live process for longer than CLAIM_STUCK_NS is stepped over. Setting up takes
 * microseconds. */
#define CLAIM_DEAD_NS 100000000ull
#define CLAIM_STUCK_NS 1000000000ull

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#else
#define CPU_RELAX() __asm__ __volatile__("" ::: "memory")
#endif

struct qs_shm {
    struct qs_shm_region *rg;
    struct qs_shm *local; /* process-local table for keys this one cannot take, made on need */
    int shared;           /* a named object (only those have a local table) */
    int warned;           /* the fallback to the local table was reported */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const char *object_name(const char *name, char *buf, size_t len)
{
    if (name != NULL)
        return name;
    snprintf(buf, len, "/qshim-%u-v%d", (unsigned)geteuid(), QS_SHM_VERSION);
    return buf;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* <key> as stored: itself, or when longer than a bucket holds, its first 78 characters, '#'
 * and a 64-bit hash of the whole. */
static void canon_key(const char *key, char out[QS_SHM_KEY_MAX])
{
    size_t n = strlen(key);
    memset(out, 0, QS_SHM_KEY_MAX);
    if (n < QS_SHM_KEY_MAX)
        memcpy(out, key, n);
    else
        snprintf(out, QS_SHM_KEY_MAX, "%.78s#%016llx", key, (unsigned long long)fnv1a(key));
}

/* Stamps an unstamped header (the same constants from every opener, so racing stampers agree)
 * and checks that it describes this build's layout. */
static int header_ok(struct qs_shm_region *rg, char *err, size_t errlen)
{
    struct qs_shm_header *h = &rg->h;
    if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) == 0) {
        __atomic_store_n(&h->version, QS_SHM_VERSION, __ATOMIC_RELAXED);
        __atomic_store_n(&h->nbuckets, QS_SHM_BUCKETS, __ATOMIC_RELAXED);
        __atomic_store_n(&h->size, sizeof *rg, __ATOMIC_RELAXED);
        __atomic_store_n(&h->bucket_size, sizeof rg->b[0], __ATOMIC_RELAXED);
        uint64_t unstamped = 0;
        __atomic_compare_exchange_n(&h->magic, &unstamped, QS_SHM_MAGIC, 0, __ATOMIC_RELEASE,
                                    __ATOMIC_RELAXED);
    }
    uint64_t magic = __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE);
    if (magic != QS_SHM_MAGIC) {
        set_err(err, errlen, "not a qshim pacing table (magic %#llx)", (unsigned long long)magic);
        return 0;
    }
    if (h->version != QS_SHM_VERSION) {
        set_err(err, errlen, "pacing table has layout version %u, this qshim uses %u", (unsigned)h->version,
                QS_SHM_VERSION);
        return 0;
    }
    if (h->nbuckets != QS_SHM_BUCKETS || h->size != sizeof *rg || h->bucket_size != sizeof rg->b[0]) {
        set_err(err, errlen, "pacing table layout differs (%u buckets of %llu bytes): another build or ABI",
                (unsigned)h->nbuckets, (unsigned long long)h->bucket_size);
        return 0;
    }
    return 1;
}

struct qs_shm *qs_shm_open(const char *name, char *err, size_t errlen)
{
    char buf[64];
    struct stat st;
    name = object_name(name, buf, sizeof buf);
    int fd = shm_open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        set_err(err, errlen, "shm_open %s: %s", name, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0) {
        set_err(err, errlen, "fstat %s: %s", name, strerror(errno));
        goto fail_fd;
    }
    /* /dev/shm is shared by all users: whoever else can write this object can stall or steer
     * our pacing, so it must be ours and closed to others. */
    if (st.st_uid != geteuid()) {
        set_err(err, errlen, "%s belongs to uid %u, not to us", name, (unsigned)st.st_uid);
        goto fail_fd;
    }
    if (st.st_mode & 077) {
        set_err(err, errlen, "%s has mode %03o: other users could change it", name,
                (unsigned)(st.st_mode & 0777));
        goto fail_fd;
    }
    if ((st.st_mode & 0777) != 0600 && fchmod(fd, 0600) != 0) { /* a umask that took our own bits */
        set_err(err, errlen, "fchmod %s: %s", name, strerror(errno));
        goto fail_fd;
    }
    /* Whoever finds it empty sizes it; two doing so at once set the same size. */
    if (st.st_size == 0 && (ftruncate(fd, sizeof(struct qs_shm_region)) != 0 || fstat(fd, &st) != 0)) {
        set_err(err, errlen, "ftruncate %s: %s", name, strerror(errno));
        goto fail_fd;
    }
    if ((size_t)st.st_size != sizeof(struct qs_shm_region)) {
        set_err(err, errlen, "%s is %lld bytes, this qshim's table is %zu: another layout version or ABI",
                name, (long long)st.st_size, sizeof(struct qs_shm_region));
        goto fail_fd;
    }
    void *p = mmap(NULL, sizeof(struct qs_shm_region), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        set_err(err, errlen, "mmap %s: %s", name, strerror(errno));
        goto fail_fd;
    }
    close(fd);
    struct qs_shm *m = calloc(1, sizeof *m);
    if (m == NULL) {
        set_err(err, errlen, "out of memory");
        munmap(p, sizeof(struct qs_shm_region));
        return NULL;
    }
    m->rg = p;
    m->shared = 1;
    if (!header_ok(m->rg, err, errlen)) {
        qs_shm_close(m);
        return NULL;
    }
    return m;
fail_fd:
    close(fd);
    return NULL;
}

struct qs_shm *qs_shm_private(void)
{
    /* MAP_SHARED, so that the robust mutexes and the budget keep working in children forked
     * later (a private copy of a mutex another thread held at fork would stay locked). */
    void *p =
        mmap(NULL, sizeof(struct qs_shm_region), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    struct qs_shm *m = calloc(1, sizeof *m);
    if (m == NULL) {
        munmap(p, sizeof(struct qs_shm_region));
        return NULL;
    }
    m->rg = p;
    header_ok(m->rg, NULL, 0); /* zeroed memory: always stamps */
    return m;
}

void qs_shm_close(struct qs_shm *m)
{
    if (m == NULL)
        return;
    qs_shm_close(m->local);
    munmap(m->rg, sizeof *m->rg);
    free(m);
}

int qs_shm_unlink(const char *name)
{
    char buf[64];
    return shm_unlink(object_name(name, buf, sizeof buf));
}

/* ===================== Buckets ===================== */

static int alive(uint32_t pid) { return kill((pid_t)pid, 0) == 0 || errno == EPERM; }

/* Sets up a bucket this process has claimed. The state is zeroed again because a claimer that
 * died may have left anything. */
static int setup_bucket(struct qs_shm_bucket *b, const char key[QS_SHM_KEY_MAX])
{
    pthread_mutexattr_t a;
    memset(&b->pace, 0, sizeof b->pace);
    memcpy(b->key, key, QS_SHM_KEY_MAX);
    int rc = pthread_mutexattr_init(&a);
    if (rc != 0)
        return rc;
    rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (rc == 0)
        rc = pthread_mutex_init(&b->lock, &a);
    pthread_mutexattr_destroy(&a);
    return rc;
}

/* The bucket holding <key> (canonical), claiming and setting up a free one when <create>. NULL
 * when the key is not there (!create) or the table has no room for it. No deletion, so the
 * probe for a key ends at the first free bucket. */
static struct qs_shm_bucket *find_bucket(struct qs_shm_region *rg, const char key[QS_SHM_KEY_MAX], int create)
{
    size_t h = (size_t)(fnv1a(key) % QS_SHM_BUCKETS);
    for (size_t i = 0; i < QS_SHM_BUCKETS; i++) {
        struct qs_shm_bucket *b = &rg->b[(h + i) % QS_SHM_BUCKETS];
        uint64_t since = 0;
        for (;;) {
            uint32_t st = __atomic_load_n(&b->state, __ATOMIC_ACQUIRE);
            if (st == QS_SHM_READY) {
                if (memcmp(b->key, key, QS_SHM_KEY_MAX) == 0)
                    return b;
                break;
            }
            if (st == QS_SHM_FREE && !create)
                return NULL;
            /* Being set up by process <st>, maybe for this very key: wait for it, unless it
             * died in the middle (then take the claim over, or look further when only
             * looking) or takes far too long. */
            if (st != QS_SHM_FREE) {
                uint64_t now = qs_now_ns();
                if (since == 0)
                    since = now;
                int dead = now - since >= CLAIM_DEAD_NS && !alive(st);
                if (now - since > CLAIM_STUCK_NS || (dead && !create))
                    break;
                if (!dead) {
                    sched_yield();
                    continue;
                }
            }
            uint32_t me = (uint32_t)getpid(); /* a system call: only on this slow path */
            if (__atomic_compare_exchange_n(&b->state, &st, me, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                if (setup_bucket(b, key) != 0) {
                    __atomic_store_n(&b->state, QS_SHM_FREE, __ATOMIC_RELEASE);
                    return NULL;
                }
                __atomic_store_n(&b->state, QS_SHM_READY, __ATOMIC_RELEASE);
                return b;
            }
        }
    }
    return NULL;
}

/* 0 with the bucket locked, or the error (ETIMEDOUT, ENOTRECOVERABLE...). */
static int lock_bucket(struct qs_shm_bucket *b)
{
    int rc = pthread_mutex_trylock(&b->lock);
    /* The lock is held for tens of nanoseconds: spinning briefly beats sleeping in the kernel
     * (robust mutexes cannot be PTHREAD_MUTEX_ADAPTIVE_NP, which would do this for us). */
    for (int spin = 0; rc == EBUSY && spin < 100; spin++) {
        CPU_RELAX();
        rc = pthread_mutex_trylock(&b->lock);
    }
    if (rc == EBUSY) {
        uint64_t until = qs_now_ns() + LOCK_TIMEOUT_NS;
        struct timespec ts = {.tv_sec = (time_t)(until / 1000000000u),
                              .tv_nsec = (long)(until % 1000000000u)};
        rc = pthread_mutex_clocklock(&b->lock, CLOCK_MONOTONIC, &ts);
    }
    if (rc == EOWNERDEAD) {
        /* The holder died inside a decision. The state is still good: the decision is a
         * series of aligned 64-bit stores ordered so that any prefix of them over-counts
         * (pacer.c, ORDERED), and a process that died before unlocking never got to sleep
         * or send on what it reserved. Marking the mutex consistent keeps it usable; not
         * doing so would make it unrecoverable for every process. */
        qs_debug("pacing: a process died holding the lock of %s; recovered", b->key);
        rc = pthread_mutex_consistent(&b->lock);
    }
    return rc;
}

/* ===================== Calls ===================== */

struct call {
    const struct qs_pace_rate *r;
    uint64_t now, tokens, slot, until;
    int64_t delta;
    uint64_t out;
    int rc;
};

static void do_reserve(struct qs_pace_state *s, struct call *c)
{
    c->rc = qs_pace_reserve(s, c->r, c->now, c->tokens, &c->out);
}

static void do_settle(struct qs_pace_state *s, struct call *c)
{
    qs_pace_settle(s, c->r, c->now, c->slot, c->delta);
}

static void do_cooldown(struct qs_pace_state *s, struct call *c) { qs_pace_cooldown(s, c->until); }
static void do_throttled(struct qs_pace_state *s, struct call *c) { qs_pace_throttled(s, c->r, c->slot); }

static void do_next_free(struct qs_pace_state *s, struct call *c)
{
    c->out = qs_pace_next_free(s, c->r, c->now);
}

/* The process-local table of a named one, made on first need; NULL for a local table itself
 * or when out of memory. Threads may race to make it: one wins, the others drop theirs. */
static struct qs_shm *local_table(struct qs_shm *m)
{
    if (!m->shared)
        return NULL;
    struct qs_shm *l = __atomic_load_n(&m->local, __ATOMIC_ACQUIRE);
    if (l != NULL)
        return l;
    l = qs_shm_private();
    struct qs_shm *none = NULL;
    if (l != NULL &&
        !__atomic_compare_exchange_n(&m->local, &none, l, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        qs_shm_close(l);
        l = none;
    }
    return l;
}

/* Runs <op> on the state of <key> under its lock: in <m>, or in the process-local table if <m>
 * has no room for the key or its lock is unusable. 0 if done, -1 if no state was found
 * (!create: a key never reserved) or could be had. */
static int run(struct qs_shm *m, const char *key, int create,
               void (*op)(struct qs_pace_state *, struct call *), struct call *c)
{
    char k[QS_SHM_KEY_MAX];
    canon_key(key, k);
    struct qs_shm_bucket *b = find_bucket(m->rg, k, create);
    const char *why = "is full";
    if (b != NULL) {
        int rc = lock_bucket(b);
        if (rc == 0) {
            op(&b->pace, c);
            pthread_mutex_unlock(&b->lock);
            return 0;
        }
        why = rc == ETIMEDOUT ? "lock is held by a stopped process" : "lock is unusable";
    } else if (!create) {
        struct qs_shm *l = m->shared ? __atomic_load_n(&m->local, __ATOMIC_ACQUIRE) : NULL;
        return l != NULL ? run(l, key, 0, op, c) : -1;
    }
    if (__atomic_exchange_n(&m->warned, 1, __ATOMIC_RELAXED) == 0)
        qs_diag("%s pacing table %s (%s): this process paces it on its own", m->shared ? "shared" : "local",
                why, k);
    struct qs_shm *l = local_table(m);
    return l != NULL ? run(l, key, create, op, c) : -1;
}

int qs_shm_reserve(struct qs_shm *m, const char *key, const struct qs_pace_rate *r, uint64_t now_ns,
                   uint64_t tokens, uint64_t *wait_ns)
{
    struct call c = {.r = r, .now = now_ns, .tokens = tokens};
    *wait_ns = 0;
    if (r->retired)
        return QS_PACE_NEVER;
    if (run(m, key, 1, do_reserve, &c) != 0)
        return QS_PACE_GO; /* no state anywhere: unpaced (reported by run) */
    *wait_ns = c.out;
    return c.rc;
}

void qs_shm_settle(struct qs_shm *m, const char *key, const struct qs_pace_rate *r, uint64_t now_ns,
                   uint64_t slot_ns, int64_t token_delta)
{
    struct call c = {.r = r, .now = now_ns, .slot = slot_ns, .delta = token_delta};
    run(m, key, 0, do_settle, &c);
}

void qs_shm_cooldown(struct qs_shm *m, const char *key, uint64_t until_ns)
{
    struct call c = {.until = until_ns};
    run(m, key, 1, do_cooldown, &c);
}

void qs_shm_throttled(struct qs_shm *m, const char *key, const struct qs_pace_rate *r, uint64_t slot_ns)
{
    struct call c = {.r = r, .slot = slot_ns};
    run(m, key, 0, do_throttled, &c);
}

uint64_t qs_shm_next_free(struct qs_shm *m, const char *key, const struct qs_pace_rate *r, uint64_t now_ns)
{
    struct call c = {.r = r, .now = now_ns, .out = now_ns};
    run(m, key, 0, do_next_free, &c);
    return c.out;
}

int qs_shm_foreach(struct qs_shm *m, void (*fn)(void *ctx, const char *key, const struct qs_pace_state *s),
                   void *ctx)
{
    int n = 0;
    for (size_t i = 0; i < QS_SHM_BUCKETS; i++) {
        struct qs_shm_bucket *b = &m->rg->b[i];
        if (__atomic_load_n(&b->state, __ATOMIC_ACQUIRE) != QS_SHM_READY || lock_bucket(b) != 0)
            continue;
        struct qs_pace_state copy = b->pace;
        pthread_mutex_unlock(&b->lock);
        fn(ctx, b->key, &copy); /* the key never changes once READY */
        n++;
    }
    struct qs_shm *l = m->shared ? __atomic_load_n(&m->local, __ATOMIC_ACQUIRE) : NULL;
    if (l != NULL)
        n += qs_shm_foreach(l, fn, ctx);
    return n;
}
