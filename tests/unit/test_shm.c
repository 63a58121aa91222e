/* test_shm.c - unit tests for shim/shm.c: create, attach and unlink a uniquely named object,
 * its 0600 owner-only mode, two mappings and a forked child sharing one budget, the full
 * table's process-local fallback, old layouts refused, long keys, a claimer that died, a
 * lock holder killed with SIGKILL (robust mutex) or stopped (timeout), foreach.
 * shm.c is included to reach its bucket lookup and lock, as a killed holder needs.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/wait.h>

#include "shm.c"

#define MS 1000000ull
#define S QS_PACE_NS_1S
/* 60 RPM: one request per 1 s window, kept over 1 s + guard (pacer.h), so one per W1 span
 * (the minute's 60 per W60 span would allow them closer) */
#define GAP QS_PACE_W1_SPAN_NS
/* 60,000 TPM: 1,000 tokens per W1 span, so <n> tokens take n x W1 / 1,000 of token time (the
 * minute's n x W60 / 60,000 is less) */
#define TOK(n) ((uint64_t)(n) * (QS_PACE_W1_SPAN_NS / 1000))
_Static_assert(QS_PACE_W1_SPAN_NS % 1000 == 0, "TOK is exact");

static char name[64];

static int name_setup(void **state)
{
    static int n;
    (void)state;
    snprintf(name, sizeof name, "/qshim-test-%d-%d", (int)getpid(), n++);
    qs_shm_unlink(name);
    return 0;
}

static int name_teardown(void **state)
{
    (void)state;
    qs_shm_unlink(name);
    return 0;
}

static struct qs_shm *open_ok(void)
{
    char err[256] = "";
    struct qs_shm *m = qs_shm_open(name, err, sizeof err);
    if (m == NULL)
        fail_msg("qs_shm_open %s: %s", name, err);
    return m;
}

static struct qs_pace_rate rate(double rpm)
{
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, rpm, 0, 0, 0, 1.0);
    return r;
}

/* Runs stderr into a file while <fn> runs; returns what was written (static buffer). */
static const char *stderr_of(void (*fn)(void *), void *arg)
{
    static char out[4096];
    FILE *f = tmpfile();
    assert_non_null(f);
    int saved = dup(2);
    dup2(fileno(f), 2);
    fn(arg);
    dup2(saved, 2);
    close(saved);
    rewind(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    fclose(f);
    return out;
}

/* Assumption: the object is created 0600 and ours, a second mapping of the same name (or the
 * same name opened again) sees the same state, unlink removes the name while mappings keep
 * working, and the default name is per user and per layout version. */
static void test_create_attach_unlink(void **state)
{
    (void)state;
    struct qs_shm *a = open_ok(), *b = open_ok();
    struct stat st;
    int fd = shm_open(name, O_RDONLY, 0);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    close(fd);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_uid, geteuid());
    assert_int_equal((size_t)st.st_size, sizeof(struct qs_shm_region));

    struct qs_pace_rate r = rate(60);
    assert_int_equal(r.req_ns, GAP);
    uint64_t wait;
    assert_int_equal(qs_shm_reserve(a, "cn-beijing/qwen-plus", &r, 10 * S, 0, &wait), QS_PACE_GO);
    assert_int_equal(wait, 0);
    assert_int_equal(qs_shm_next_free(b, "cn-beijing/qwen-plus", &r, 10 * S), 10 * S + GAP);
    assert_int_equal(qs_shm_reserve(b, "cn-beijing/qwen-plus", &r, 10 * S, 0, &wait), QS_PACE_GO);
    assert_int_equal(wait, GAP);
    /* another key is another budget */
    assert_int_equal(qs_shm_next_free(a, "intl/qwen-plus", &r, 10 * S), 10 * S);
    qs_shm_cooldown(b, "intl/qwen-plus", 30 * S);
    assert_int_equal(qs_shm_next_free(a, "intl/qwen-plus", &r, 10 * S), 30 * S);

    assert_int_equal(qs_shm_unlink(name), 0);
    assert_true(shm_open(name, O_RDONLY, 0) < 0 && errno == ENOENT);
    assert_int_equal(qs_shm_next_free(a, "cn-beijing/qwen-plus", &r, 10 * S), 10 * S + 2 * GAP);
    assert_int_equal(qs_shm_unlink(name), -1);
    qs_shm_close(a);
    qs_shm_close(b);

    char buf[64];
    char want[64];
    snprintf(want, sizeof want, "/qshim-%u-v%d", (unsigned)geteuid(), QS_SHM_VERSION);
    assert_string_equal(object_name(NULL, buf, sizeof buf), want);
}

/* Assumption: an object other users could write is refused (they could stall or steer the
 * pacing of every process of ours). */
static void test_mode_refused(void **state)
{
    (void)state;
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, 0644), 0);
    close(fd);
    char err[256] = "";
    assert_null(qs_shm_open(name, err, sizeof err));
    assert_non_null(strstr(err, "mode 644"));
}

/* Assumption: an old or different layout under the same name is refused with a clear reason
 * (the caller then falls back to a private table): another version in the header, a header
 * that is not ours, another size. */
static void test_layout_mismatch(void **state)
{
    (void)state;
    char err[256] = "";
    struct qs_shm *m = open_ok();
    m->rg->h.version = 0;
    qs_shm_close(m);
    assert_null(qs_shm_open(name, err, sizeof err));
    assert_non_null(strstr(err, "layout version 0"));

    qs_shm_unlink(name);
    m = open_ok();
    m->rg->h.magic = 0x1234;
    qs_shm_close(m);
    assert_null(qs_shm_open(name, err, sizeof err));
    assert_non_null(strstr(err, "not a qshim"));

    qs_shm_unlink(name);
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 4096), 0);
    close(fd);
    assert_null(qs_shm_open(name, err, sizeof err));
    assert_non_null(strstr(err, "4096 bytes"));
}

struct res {
    struct qs_shm *m;
    const char *key;
    uint64_t wait;
};

static void reserve_60rpm(void *arg)
{
    struct res *x = arg;
    struct qs_pace_rate r = rate(60);
    assert_int_equal(qs_shm_reserve(x->m, x->key, &r, 100 * S, 0, &x->wait), QS_PACE_GO);
}

struct fill {
    struct qs_shm *m;
    const struct qs_pace_rate *r;
};

static void fill_table(void *arg)
{
    struct fill *f = arg;
    uint64_t wait;
    char key[32];
    for (int i = 0; i <= QS_SHM_BUCKETS; i++) {
        snprintf(key, sizeof key, "region/model-%d", i);
        assert_int_equal(qs_shm_reserve(f->m, key, f->r, 5 * S, 0, &wait), QS_PACE_GO);
        assert_int_equal(wait, 0);
    }
}

static void count_key(void *ctx, const char *key, const struct qs_pace_state *s)
{
    (void)key;
    (void)s;
    ++*(int *)ctx;
}

/* Assumption: with all buckets taken, a new key is paced by the process alone (one line on
 * stderr says so), still correctly within the process, and invisible to other mappings. */
static void test_full_table(void **state)
{
    (void)state;
    struct qs_shm *a = open_ok(), *b = open_ok();
    struct qs_pace_rate r = rate(60);
    struct fill f = {a, &r};
    const char *err = stderr_of(fill_table, &f);
    assert_non_null(strstr(err, "shared pacing table is full (region/model-256)"));
    assert_null(strstr(strstr(err, "full") + 1, "full")); /* said once */

    uint64_t wait;
    qs_shm_reserve(a, "region/model-256", &r, 5 * S, 0, &wait);
    assert_int_equal(wait, GAP); /* paced within the process */
    qs_shm_reserve(a, "region/model-3", &r, 5 * S, 0, &wait);
    assert_int_equal(wait, GAP); /* shared keys still shared */
    qs_shm_reserve(b, "region/model-3", &r, 5 * S, 0, &wait);
    assert_int_equal(wait, 2 * GAP);
    struct res x = {b, "region/model-256", 99};
    assert_non_null(strstr(stderr_of(reserve_60rpm, &x), "full"));
    assert_int_equal(x.wait, 0); /* b's own local table */
    assert_int_equal(qs_shm_next_free(a, "region/model-256", &r, 5 * S), 5 * S + 2 * GAP);

    int n = 0;
    assert_int_equal(qs_shm_foreach(a, count_key, &n), QS_SHM_BUCKETS + 1);
    assert_int_equal(n, QS_SHM_BUCKETS + 1);
    qs_shm_close(a);
    qs_shm_close(b);
}

/* Assumption: keys longer than a bucket holds are shortened with a hash of the whole, so two
 * that differ only at the end stay two budgets; settle and next_free on a key never reserved
 * create nothing. */
static void test_keys(void **state)
{
    (void)state;
    struct qs_shm *m = open_ok();
    struct qs_pace_rate r = rate(60);
    char k1[200], k2[200];
    memset(k1, 'a', sizeof k1 - 1);
    k1[sizeof k1 - 1] = '\0';
    memcpy(k2, k1, sizeof k2);
    k2[198] = 'b';
    uint64_t wait;
    qs_shm_reserve(m, k1, &r, 5 * S, 0, &wait);
    qs_shm_reserve(m, k2, &r, 5 * S, 0, &wait);
    assert_int_equal(wait, 0);
    qs_shm_reserve(m, k1, &r, 5 * S, 0, &wait);
    assert_int_equal(wait, GAP);

    qs_shm_settle(m, "never/seen", &r, 5 * S, 5 * S, -100);
    assert_int_equal(qs_shm_next_free(m, "never/seen", &r, 6 * S), 6 * S);
    int n = 0;
    qs_shm_foreach(m, count_key, &n);
    assert_int_equal(n, 2);

    struct qs_pace_rate retired;
    qs_pace_rate_init(&retired, 0, 0, 0, 0, 1.0);
    assert_int_equal(qs_shm_reserve(m, "cn-beijing/qwen-old", &retired, 5 * S, 10, &wait), QS_PACE_NEVER);
    n = 0;
    qs_shm_foreach(m, count_key, &n);
    assert_int_equal(n, 2);
    qs_shm_close(m);
}

static void wait_child(pid_t pid, int want_signal)
{
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (want_signal)
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == want_signal);
    else
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A child that locks <key>'s bucket and then stops (or waits to be killed) with it held. */
static pid_t child_holding(struct qs_shm *m, const char *key, int stop)
{
    int p[2];
    char k[QS_SHM_KEY_MAX], c = 0;
    assert_int_equal(pipe(p), 0);
    canon_key(key, k);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20);
        struct qs_shm_bucket *b = find_bucket(m->rg, k, 1);
        if (b == NULL || pthread_mutex_lock(&b->lock) != 0)
            _exit(1);
        if (write(p[1], "x", 1) != 1)
            _exit(1);
        /* A stopped process in a process group that becomes orphaned (the shell that started
         * `make test` in the background exits) gets SIGHUP and SIGCONT from the kernel; dying
         * of the SIGHUP would free the lock, so the test would see a dead holder instead. */
        signal(SIGHUP, SIG_IGN);
        if (stop)
            raise(SIGSTOP);
        for (;;)
            pause();
    }
    close(p[1]);
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    return pid;
}

/* Assumption: a process killed (SIGKILL) while it holds a bucket's lock does not stop the
 * others: the next reserve gets EOWNERDEAD, recovers at once and decides on the state as it
 * was; the lock stays usable after that. */
static void test_killed_holder(void **state)
{
    (void)state;
    struct qs_shm *m = open_ok();
    struct qs_pace_rate r = rate(60);
    uint64_t wait;
    qs_shm_reserve(m, "us/qwen-max", &r, 100 * S, 0, &wait);
    pid_t pid = child_holding(m, "us/qwen-max", 0);
    kill(pid, SIGKILL);
    wait_child(pid, SIGKILL);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(qs_shm_reserve(m, "us/qwen-max", &r, 100 * S, 0, &wait), QS_PACE_GO);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(wait, GAP); /* the shared state, as it was */
    assert_true(t1.tv_sec - t0.tv_sec < 1);
    assert_int_equal(qs_shm_reserve(m, "us/qwen-max", &r, 100 * S, 0, &wait), QS_PACE_GO);
    assert_int_equal(wait, 2 * GAP);
    char k[QS_SHM_KEY_MAX];
    canon_key("us/qwen-max", k);
    struct qs_shm_bucket *b = find_bucket(m->rg, k, 0);
    assert_int_equal(pthread_mutex_trylock(&b->lock), 0);
    pthread_mutex_unlock(&b->lock);
    qs_shm_close(m);
}

/* Assumption: a holder stopped inside its decision (SIGSTOP) costs the others a one-second
 * timeout, after which they pace by themselves and say so, instead of hanging. */
static void test_stopped_holder(void **state)
{
    (void)state;
    struct qs_shm *m = open_ok();
    struct qs_pace_rate r = rate(60);
    uint64_t wait;
    qs_shm_reserve(m, "eu/qwen-turbo", &r, 100 * S, 0, &wait);
    pid_t pid = child_holding(m, "eu/qwen-turbo", 1);
    struct res x = {m, "eu/qwen-turbo", 99};
    const char *err = stderr_of(reserve_60rpm, &x);
    assert_int_equal(x.wait, 0); /* decided on the (fresh) local table */
    assert_non_null(strstr(err, "held by a stopped process"));
    kill(pid, SIGKILL);
    wait_child(pid, SIGKILL);
    qs_shm_close(m);
}

/* Assumption: a bucket claimed by a process that died before finishing its set-up is taken
 * over; a forked child shares the mapping (MAP_SHARED) and so the budget. */
static void test_dead_claimer_and_fork(void **state)
{
    (void)state;
    struct qs_shm *m = open_ok();
    struct qs_pace_rate r = rate(60);
    char k[QS_SHM_KEY_MAX];
    canon_key("cn-hongkong/qwen-plus", k);
    pid_t dead = fork();
    assert_true(dead >= 0);
    if (dead == 0)
        _exit(0);
    wait_child(dead, 0);
    struct qs_shm_bucket *home = &m->rg->b[fnv1a(k) % QS_SHM_BUCKETS];
    home->state = (uint32_t)dead;
    uint64_t wait;
    assert_int_equal(qs_shm_reserve(m, "cn-hongkong/qwen-plus", &r, 7 * S, 0, &wait), QS_PACE_GO);
    assert_ptr_equal(find_bucket(m->rg, k, 0), home);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint64_t w = 0;
        qs_shm_reserve(m, "cn-hongkong/qwen-plus", &r, 7 * S, 0, &w);
        _exit(w == GAP ? 0 : 1);
    }
    wait_child(pid, 0);
    qs_shm_reserve(m, "cn-hongkong/qwen-plus", &r, 7 * S, 0, &wait);
    assert_int_equal(wait, 2 * GAP);
    qs_shm_close(m);

    /* the private table is shared with children forked after it too */
    m = qs_shm_private();
    assert_non_null(m);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint64_t w = 0;
        qs_shm_reserve(m, "k", &r, 7 * S, 0, &w);
        _exit(w == 0 ? 0 : 1);
    }
    wait_child(pid, 0);
    qs_shm_reserve(m, "k", &r, 7 * S, 0, &wait);
    assert_int_equal(wait, GAP);
    qs_shm_close(m);
}

struct seen {
    int n;
    uint64_t tok_tat;
};

static void see(void *ctx, const char *key, const struct qs_pace_state *s)
{
    struct seen *x = ctx;
    if (strcmp(key, "intl/qwen-plus") == 0)
        x->tok_tat = s->tok_tat;
    x->n++;
}

/* Assumption: settle goes to the shared state (a refund there is seen by the other mapping),
 * and foreach hands out copies of every key's state. */
static void test_settle_foreach(void **state)
{
    (void)state;
    struct qs_shm *a = open_ok(), *b = open_ok();
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, 0, 60000, 0, 0, 1.0);
    uint64_t wait;
    qs_shm_reserve(a, "intl/qwen-plus", &r, 20 * S, 3000, &wait);
    assert_int_equal(qs_shm_next_free(b, "intl/qwen-plus", &r, 20 * S), 20 * S + TOK(3000));
    qs_shm_settle(b, "intl/qwen-plus", &r, 20 * S + 500 * MS, 20 * S, -2500);
    /* the 500 left take TOK(500) from the slot; the window has room for them */
    uint64_t nf = qs_shm_next_free(a, "intl/qwen-plus", &r, 20 * S + 500 * MS);
    assert_int_equal(nf, 20 * S + TOK(500));
    assert_true(nf >= 20 * S + 500 * MS && nf < 21 * S);
    struct seen x = {0, 0};
    assert_int_equal(qs_shm_foreach(b, see, &x), 1);
    assert_int_equal(x.n, 1);
    assert_int_equal(x.tok_tat, 20 * S + TOK(500));
    qs_shm_close(a);
    qs_shm_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_attach_unlink, name_setup, name_teardown),
        cmocka_unit_test_setup_teardown(test_mode_refused, name_setup, name_teardown),
        cmocka_unit_test_setup_teardown(test_layout_mismatch, name_setup, name_teardown),
        cmocka_unit_test_setup_teardown(test_full_table, name_setup, name_teardown),
        cmocka_unit_test_setup_teardown(test_keys, name_setup, name_teardown),
        cmocka_unit_test_setup_teardown(test_killed_holder, name_setup, name_teardown),
        cmocka_unit_test_setup_teardown(test_stopped_holder, name_setup, name_teardown),
        cmocka_unit_test_setup_teardown(test_dead_claimer_and_fork, name_setup, name_teardown),
        cmocka_unit_test_setup_teardown(test_settle_foreach, name_setup, name_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
