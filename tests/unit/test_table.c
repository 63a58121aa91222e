/* test_table.c - unit tests for shim/table.c, the SSL* -> state map that every hooked
 * call consults: put/get/take, replacing, growth to many keys, four threads at once, and
 * the fresh lock a fork child gets.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "table.h"

/* Keys as SSL* pointers look: aligned heap addresses, here spaced by <stride> bytes. */
#define KEY(i, stride) ((const void *)(uintptr_t)(0x10000 + (uintptr_t)(i) * (stride)))
#define VAL(i) ((void *)(uintptr_t)(0x1000000 + (uintptr_t)(i)))

static int table_setup(void **state)
{
    struct qs_table *t = calloc(1, sizeof *t);
    if (t == NULL || qs_table_init(t) != 0)
        return -1;
    *state = t;
    return 0;
}

/* table.h has no destroy (the shim's table lives as long as the process): each test
 * takes out every key it put, which frees the entries, and the teardown checks that and
 * frees the slot array. */
static int table_teardown(void **state)
{
    struct qs_table *t = *state;
    int rc = t->count == 0 ? 0 : -1;
    free(t->slots);
    pthread_mutex_destroy(&t->lock);
    free(t);
    return rc;
}

static void test_put_get_take(void **state)
{
    struct qs_table *t = *state;
    int a = 0, b = 0; /* only their addresses are used */

    /* Assumption: an empty table knows nothing; take of an absent key is NULL. */
    assert_null(qs_table_get(t, &a));
    assert_null(qs_table_take(t, &a));
    /* Assumption: put then get gives the value; keys are told apart by address only. */
    assert_int_equal(qs_table_put(t, &a, VAL(1)), 0);
    assert_int_equal(qs_table_put(t, &b, VAL(2)), 0);
    assert_ptr_equal(qs_table_get(t, &a), VAL(1));
    assert_ptr_equal(qs_table_get(t, &b), VAL(2));
    assert_int_equal(t->count, 2);
    /* Assumption: put on a present key replaces its value without a second entry. */
    assert_int_equal(qs_table_put(t, &a, VAL(3)), 0);
    assert_ptr_equal(qs_table_get(t, &a), VAL(3));
    assert_int_equal(t->count, 2);
    /* Assumption: take returns the value and removes only that key. */
    assert_ptr_equal(qs_table_take(t, &a), VAL(3));
    assert_null(qs_table_get(t, &a));
    assert_null(qs_table_take(t, &a));
    assert_ptr_equal(qs_table_get(t, &b), VAL(2));
    assert_int_equal(t->count, 1);
    /* Assumption: a NULL key is a key like any other. */
    assert_int_equal(qs_table_put(t, NULL, VAL(4)), 0);
    assert_ptr_equal(qs_table_get(t, NULL), VAL(4));
    assert_ptr_equal(qs_table_take(t, NULL), VAL(4));
    assert_ptr_equal(qs_table_take(t, &b), VAL(2));
}

static void test_growth(void **state)
{
    static const uintptr_t strides[] = {8, 4096, 1u << 20};
    struct qs_table *t = *state;
    enum { N = 20000 };

    for (size_t s = 0; s < sizeof strides / sizeof strides[0]; s++) {
        /* Assumption: thousands of keys, dense or on page and megabyte boundaries, are all
         * found after the slot array grew (load kept at most 2 per slot). */
        for (int i = 0; i < N; i++)
            assert_int_equal(qs_table_put(t, KEY(i, strides[s]), VAL(i)), 0);
        assert_int_equal(t->count, N);
        assert_true(t->nslots * 2 >= N);
        for (int i = 0; i < N; i++)
            assert_ptr_equal(qs_table_get(t, KEY(i, strides[s])), VAL(i));
        /* Assumption: taking every other key leaves the rest intact. */
        for (int i = 0; i < N; i += 2)
            assert_ptr_equal(qs_table_take(t, KEY(i, strides[s])), VAL(i));
        for (int i = 0; i < N; i++)
            assert_ptr_equal(qs_table_get(t, KEY(i, strides[s])), i % 2 ? VAL(i) : NULL);
        for (int i = 1; i < N; i += 2)
            assert_ptr_equal(qs_table_take(t, KEY(i, strides[s])), VAL(i));
        assert_int_equal(t->count, 0);
    }
}

enum { THREADS = 4, ROUNDS = 3000, SHARED = 64 };

struct worker {
    struct qs_table *t;
    int id;
    int errors;
};

/* Each thread puts, reads, replaces and takes its own keys while reading the shared ones
 * the others never change. No cmocka calls here: they are not thread-safe. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int r = 0; r < ROUNDS; r++) {
        const void *k = KEY(w->id * ROUNDS + r, 64);
        w->errors += qs_table_put(w->t, k, VAL(r)) != 0;
        w->errors += qs_table_get(w->t, k) != VAL(r);
        w->errors += qs_table_put(w->t, k, VAL(r + 1)) != 0;
        w->errors += qs_table_get(w->t, KEY(1000000 + r % SHARED, 64)) != VAL(r % SHARED);
        if (r % 3 != 0) {
            w->errors += qs_table_take(w->t, k) != VAL(r + 1);
            w->errors += qs_table_get(w->t, k) != NULL;
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct qs_table *t = *state;
    struct worker w[THREADS];
    pthread_t th[THREADS];

    for (int i = 0; i < SHARED; i++)
        assert_int_equal(qs_table_put(t, KEY(1000000 + i, 64), VAL(i)), 0);
    /* Assumption: four threads at once see only their own writes on their keys and the
     * untouched shared keys, and the count ends right. */
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.t = t, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].errors, 0);
    }
    int kept = (ROUNDS + 2) / 3;
    assert_int_equal(t->count, SHARED + THREADS * kept);
    for (int i = 0; i < THREADS; i++)
        for (int r = 0; r < ROUNDS; r += 3)
            assert_ptr_equal(qs_table_take(t, KEY(i * ROUNDS + r, 64)), VAL(r + 1));
    for (int i = 0; i < SHARED; i++)
        assert_ptr_equal(qs_table_take(t, KEY(1000000 + i, 64)), VAL(i));
}

struct holder {
    struct qs_table *t;
    int pipe_fd; /* closed by the test to let the holder go */
};

static void *hold_lock(void *arg)
{
    struct holder *h = arg;
    char c;
    pthread_mutex_lock(&h->t->lock);
    while (read(h->pipe_fd, &c, 1) > 0)
        ;
    pthread_mutex_unlock(&h->t->lock);
    return NULL;
}

static void test_atfork_child(void **state)
{
    struct qs_table *t = *state;
    struct holder h = {.t = t};
    int p[2];
    pthread_t th;

    assert_int_equal(qs_table_put(t, KEY(1, 8), VAL(1)), 0);
    assert_int_equal(pipe(p), 0);
    h.pipe_fd = p[0];
    assert_int_equal(pthread_create(&th, NULL, hold_lock, &h), 0);
    while (pthread_mutex_trylock(&t->lock) == 0) { /* wait until the holder has the lock */
        pthread_mutex_unlock(&t->lock);
        usleep(1000);
    }
    /* Assumption: a child forked while another thread holds the lock gets a usable
     * table from qs_table_atfork_child, with the parent's entries. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(10); /* a deadlock ends the child instead of the test run */
        qs_table_atfork_child(t);
        _exit(qs_table_get(t, KEY(1, 8)) == VAL(1) ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(p[1]);
    pthread_join(th, NULL);
    close(p[0]);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_ptr_equal(qs_table_take(t, KEY(1, 8)), VAL(1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_take, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_growth, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_threads, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_atfork_child, table_setup, table_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
