/* bench_pacer.c - what one pacing decision costs: the pure GCRA + window decision, the same
 * on a key of the shared table (lookup, robust mutex), with a real clock read, and with two
 * processes deciding on one key at once. Prints figures; asserts nothing (the machine is
 * shared and noisy). Built by make as build/tests/bench_pacer; not run by make test.
 *
 *   bench_pacer [DECISIONS]     (default 2,000,000 per process and figure)
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "pacer.h"
#include "shm.h"

#define KEY "cn-beijing/qwen-plus"

static double elapsed_ns(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e9 + (double)(b->tv_nsec - a->tv_nsec);
}

/* A rate at which a decision every microsecond of (fake) time never queues for long: one
 * million requests and 100 million tokens per second. The windows still do all their work. */
static void bench_rate(struct qs_pace_rate *r) { qs_pace_rate_init(r, 6e7, 6e9, 0, 0, 0.95); }

/* <n> decisions, 1 us of fake time apart (or on the real clock): ns per decision. */
static double run_shm(struct qs_shm *m, long n, int real_clock)
{
    struct qs_pace_rate r;
    bench_rate(&r);
    uint64_t base = qs_now_ns(), wait, sink = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        uint64_t now = real_clock ? qs_now_ns() : base + (uint64_t)i * 1000;
        qs_shm_reserve(m, KEY, &r, now, 50, &wait);
        sink += wait;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (sink == 1) /* keeps the loop honest */
        puts("");
    return elapsed_ns(&a, &b) / (double)n;
}

static double run_pure(long n)
{
    struct qs_pace_rate r;
    bench_rate(&r);
    struct qs_pace_state *s = calloc(1, sizeof *s);
    uint64_t base = qs_now_ns(), wait, sink = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        qs_pace_reserve(s, &r, base + (uint64_t)i * 1000, 50, &wait);
        sink += wait;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    free(s);
    if (sink == 1)
        puts("");
    return elapsed_ns(&a, &b) / (double)n;
}

/* Two processes on one key at once, started together: each one's ns per decision. */
static int run_pair(struct qs_shm *m, long n, double out[2])
{
    int go[2], res[2];
    if (pipe(go) != 0 || pipe(res) != 0)
        return -1;
    pid_t pid[2];
    for (int k = 0; k < 2; k++) {
        pid[k] = fork();
        if (pid[k] < 0)
            return -1;
        if (pid[k] == 0) {
            char c;
            close(go[1]);
            if (read(go[0], &c, 1) != 0) /* released when the parent closes its end */
                _exit(1);
            double ns = run_shm(m, n, 0);
            _exit(write(res[1], &ns, sizeof ns) == sizeof ns ? 0 : 1);
        }
    }
    close(go[0]);
    close(go[1]);
    int ok = 0;
    for (int k = 0; k < 2; k++) {
        int status = 0;
        ok += read(res[0], &out[k], sizeof out[k]) == sizeof out[k];
        waitpid(pid[k], &status, 0);
    }
    close(res[0]);
    close(res[1]);
    return ok == 2 ? 0 : -1;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    char name[64], err[256];
    snprintf(name, sizeof name, "/qshim-bench-%d", (int)getpid());
    struct qs_shm *m = qs_shm_open(name, err, sizeof err);
    if (m == NULL || n <= 0) {
        fprintf(stderr, "bench_pacer: %s\n", m ? "bad count" : err);
        return 1;
    }
    printf("bench_pacer: %ld decisions per figure, one key, 50 tokens each, 1 us of time apart\n", n);
    printf("%-52s %8.1f ns/decision\n", "qs_pace_reserve, pure (no lookup, no lock)", run_pure(n));
    printf("%-52s %8.1f ns/decision\n", "qs_shm_reserve, shared memory, 1 process", run_shm(m, n, 0));
    printf("%-52s %8.1f ns/decision\n", "qs_shm_reserve + clock read, 1 process", run_shm(m, n, 1));
    double pair[2];
    if (run_pair(m, n, pair) == 0)
        printf("%-52s %8.1f ns/decision (%.1f and %.1f; %.1f M decisions/s together)\n",
               "qs_shm_reserve, 2 processes contending on the key", (pair[0] + pair[1]) / 2, pair[0], pair[1],
               1e3 / pair[0] + 1e3 / pair[1]);
    else
        printf("2 processes: fork or pipe failed\n");
    qs_shm_close(m);
    qs_shm_unlink(name);
    return 0;
}
