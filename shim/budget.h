/* budget.h - the pacing budget of a process: which limit applies to a request, and the
 * shared state (shm.h) that paces it.
 *
 * Glue between the config (limits, default_limit, headroom, share), the region tables
 * (limtab.h), the pure pacer (pacer.h) and the shared memory table (shm.h). A budget key is
 * REGION "/" MODEL: DashScope counts per model over the whole account.
 * The shared table is mapped on the first request that needs it, not when the process starts,
 * so that a program that never calls DashScope never touches shared memory; the mapping is
 * published with a compare-and-swap, so no lock is held (and none can be inherited by fork).
 * Time comes in as an argument (monotonic ns): the caller decides when "now" is.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_BUDGET_H
#define QS_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct qs_budget; /* opaque */

/* Where the state lives, from share.backend and share.on_error of <cfg>. */
enum qs_budget_share {
    QS_BUDGET_SHARED,         /* the user's shared memory object; process-local if it cannot be had */
    QS_BUDGET_SHARED_OR_PASS, /* the shared object; nothing paced if it cannot be had */
    QS_BUDGET_LOCAL,          /* this process (and its children) only */
};

/* A budget for <cfg>, which must outlive it. <shm_name> names the shared object ("/name";
 * NULL = the per-user default). NULL when out of memory. */
struct qs_budget *qs_budget_new(const struct qs_config *cfg, enum qs_budget_share share,
                                const char *shm_name);
void qs_budget_free(struct qs_budget *b);

/* The share mode <cfg> asks for: backend "none" is local; "shm" and "redis" (not built yet:
 * the machine's shared memory stands in) are shared, with on_error "pass" meaning
 * SHARED_OR_PASS. */
enum qs_budget_share qs_budget_share_of(const struct qs_config *cfg);

/* Outcome of a reservation. */
enum {
    QS_BUDGET_GO = 0,      /* send at now + *wait_ns */
    QS_BUDGET_RETIRED = 1, /* the model's limits are 0/0: not paced, the server answers */
    QS_BUDGET_UNPACED = 2, /* no state could be had (share "pass", out of memory) */
};

/* Reserves the slot of one request of <tokens> for <model> in <region> at <now_ns>.
 * Sets *wait_ns (0 unless GO). */
int qs_budget_reserve(struct qs_budget *b, const char *region, const char *model, uint64_t tokens,
                      uint64_t now_ns, uint64_t *wait_ns);

/* Usage is known: <delta> = actual - reserved tokens of the request granted <slot_ns>. */
void qs_budget_settle(struct qs_budget *b, const char *region, const char *model, uint64_t now_ns,
                      uint64_t slot_ns, int64_t delta);

/* A throttle was seen: no slot for <model> before <until_ns>, in every process sharing it. */
void qs_budget_cooldown(struct qs_budget *b, const char *region, const char *model, uint64_t until_ns);

/* The server throttled the paced request of <model> granted <slot_ns> (qs_pace_throttled). */
void qs_budget_throttled(struct qs_budget *b, const char *region, const char *model, uint64_t slot_ns);

#endif
