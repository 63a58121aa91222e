/* shm_hammer.c - one process of test_shm_procs.sh: N reservations on one key of a shared
 * pacing table, each followed by a real sleep until its slot; every slot is then appended to
 * OUT as "slot_ns tokens" (one write per line, so a killed process leaves whole lines).
 *
 *   shm_hammer NAME KEY RPM TPM N OUT [DIE_AFTER]
 *
 * With DIE_AFTER, the process locks the key's bucket after that many reservations and kills
 * itself with SIGKILL while holding it (shm.c is included to reach the lock), which is what
 * the robust mutex is for. Token costs are 1..150, drawn from the pid.
 * SPDX-License-Identifier: MIT
 */
#include "shm.c"

#include <inttypes.h>

static int hold_and_die(struct qs_shm *m, const char *key)
{
    char k[QS_SHM_KEY_MAX];
    canon_key(key, k);
    struct qs_shm_bucket *b = find_bucket(m->rg, k, 1);
    if (b == NULL || pthread_mutex_lock(&b->lock) != 0)
        return 1;
    raise(SIGKILL);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: shm_hammer NAME KEY RPM TPM N OUT [DIE_AFTER]\n");
        return 2;
    }
    const char *key = argv[2];
    long n = atol(argv[5]), die_after = argc > 7 ? atol(argv[7]) : -1;
    char err[256];
    struct qs_shm *m = qs_shm_open(argv[1], err, sizeof err);
    if (m == NULL) {
        fprintf(stderr, "shm_hammer: %s\n", err);
        return 2;
    }
    int fd = open(argv[6], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(argv[6]);
        return 2;
    }
    struct qs_pace_rate r;
    qs_pace_rate_init(&r, atof(argv[3]), atof(argv[4]), 0, 0, 1.0);
    uint64_t x = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull | 1;
    for (long i = 0; i < n; i++) {
        if (i == die_after)
            return hold_and_die(m, key);
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t tokens = 1 + x % 150, wait = 0, now = qs_now_ns();
        if (qs_shm_reserve(m, key, &r, now, tokens, &wait) != QS_PACE_GO)
            return 1;
        uint64_t slot = now + wait;
        struct timespec ts = {.tv_sec = (time_t)(slot / 1000000000u), .tv_nsec = (long)(slot % 1000000000u)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        char line[64];
        int len = snprintf(line, sizeof line, "%" PRIu64 " %" PRIu64 "\n", slot, tokens);
        if (write(fd, line, (size_t)len) != len)
            return 1;
    }
    close(fd);
    qs_shm_close(m);
    return 0;
}
