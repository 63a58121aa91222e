/* shm.h - one pacing budget per key shared by every process of the user on the machine.
 *
 * The only user of shm_open, mmap and atomics. A POSIX shared memory object (mode 0600, the
 * user's own) holds a table of buckets keyed by region "/" model, each with a pacer state
 * (pacer.h) behind a process-shared robust mutex that is held only for the pure decision,
 * never while anyone sleeps. Keys the table cannot take (full, or its lock unusable) are paced
 * in a process-local table instead, with one diagnostic line.
 *
 * Fork: the mapping is MAP_SHARED, so a child inherits it and it stays valid; parent and
 * child go on sharing one budget (also with qs_shm_private, whose memory is shared with the
 * children forked after it was made). Threads: every call may be made from any thread.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_SHM_H
#define QS_SHM_H

#include <stddef.h>
#include <stdint.h>

#include "pacer.h"

struct qs_shm; /* opaque */

/* Maps (creating it if need be) the table named <name> ("/name", NULL = the default per-user
 * name /qshim-<euid>-v<version>). NULL on failure with the reason in <err>: shm_open/mmap
 * errors, an object owned by another user or open to others, another layout version or ABI.
 * The caller then falls back to qs_shm_private. */
struct qs_shm *qs_shm_open(const char *name, char *err, size_t errlen);

/* The same table in memory of this process (and the children it forks later): the fallback
 * when shared memory is unavailable, and for tests. NULL if out of memory. */
struct qs_shm *qs_shm_private(void);

/* qs_pace_* (pacer.h) on the state of <key> (region "/" model; longer than 95 characters it
 * is shortened with a hash). Keys are created by reserve and cooldown; settle and next_free on
 * a key never reserved see a fresh state. If no state can be had at all (out of memory) a
 * request goes unpaced: QS_PACE_GO with *wait_ns = 0. */
int qs_shm_reserve(struct qs_shm *m, const char *key, const struct qs_pace_rate *r, uint64_t now_ns,
                   uint64_t tokens, uint64_t *wait_ns);
void qs_shm_settle(struct qs_shm *m, const char *key, const struct qs_pace_rate *r, uint64_t now_ns,
                   uint64_t slot_ns, int64_t token_delta);
void qs_shm_cooldown(struct qs_shm *m, const char *key, uint64_t until_ns);
void qs_shm_throttled(struct qs_shm *m, const char *key, const struct qs_pace_rate *r, uint64_t slot_ns);
uint64_t qs_shm_next_free(struct qs_shm *m, const char *key, const struct qs_pace_rate *r, uint64_t now_ns);

/* Unmaps <m> (NULL is fine). Its state stays in the object for the other processes. */
void qs_shm_close(struct qs_shm *m);

/* Removes the object <name> (NULL = default): processes that have it mapped keep theirs, new
 * ones start afresh. 0, or -1 with errno. */
int qs_shm_unlink(const char *name);

/* Calls <fn> for every key with a copy of its state taken under its lock (so <fn> may be
 * slow), shared keys first, then process-local ones. Returns how many. */
int qs_shm_foreach(struct qs_shm *m, void (*fn)(void *ctx, const char *key, const struct qs_pace_state *s),
                   void *ctx);

#endif
