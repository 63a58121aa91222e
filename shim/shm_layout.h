/* shm_layout.h - the bytes of the shared pacing table (types only; shm.c owns the code).
 *
 * One POSIX shared memory object per user and layout version (/qshim-<uid>-v<version>):
 * a header, then a fixed table of buckets, one per budget key (region "/" model), found by
 * open addressing and never freed. All-zero bytes are a valid state throughout: a header
 * that nobody stamped yet, free buckets, zeroed pacer states. Anything that changes these
 * bytes bumps QS_SHM_VERSION, which changes the object's name.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_SHM_LAYOUT_H
#define QS_SHM_LAYOUT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pacer.h"

#define QS_SHM_MAGIC 0x31766d6873717351ull /* "Qsqshmv1" little-endian */
#define QS_SHM_VERSION 5
#define QS_SHM_BUCKETS 256
#define QS_SHM_KEY_MAX 96 /* bytes with the NUL: keys up to 95 characters */

/* qs_shm_bucket.state: QS_SHM_FREE, the pid of the process setting the bucket up, or
 * QS_SHM_READY once key and lock are valid. */
#define QS_SHM_FREE 0u
#define QS_SHM_READY 0xffffffffu

struct qs_shm_header {
    uint64_t magic;       /* QS_SHM_MAGIC once stamped, 0 before */
    uint32_t version;     /* QS_SHM_VERSION */
    uint32_t nbuckets;    /* QS_SHM_BUCKETS */
    uint64_t size;        /* sizeof(struct qs_shm_region) */
    uint64_t bucket_size; /* sizeof(struct qs_shm_bucket): differs between ABIs (pthread_mutex_t) */
    uint8_t pad[32];
};

struct qs_shm_bucket {
    uint32_t state;
    uint32_t pad;
    char key[QS_SHM_KEY_MAX];
    pthread_mutex_t lock; /* PTHREAD_PROCESS_SHARED + PTHREAD_MUTEX_ROBUST, set up by the claimer */
    struct qs_pace_state pace __attribute__((aligned(64)));
};

struct qs_shm_region {
    struct qs_shm_header h;
    struct qs_shm_bucket b[QS_SHM_BUCKETS];
};

_Static_assert(sizeof(struct qs_shm_header) == 64, "header is one cache line");
_Static_assert(offsetof(struct qs_shm_bucket, key) == 8, "key follows the state word");
_Static_assert(sizeof(struct qs_shm_bucket) % 64 == 0, "buckets do not share cache lines");
_Static_assert(sizeof(struct qs_pace_state) % 8 == 0, "pacer state is 64-bit words");
_Static_assert(sizeof(pid_t) <= sizeof(uint32_t), "a pid fits the state word");

#endif
