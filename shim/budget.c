/* budget.c - limits and shared state for pacing (see budget.h).
 *
 * The limit of a key is looked up on every call rather than cached: the lookup is a short
 * glob scan and a binary search (well under a microsecond next to a network request), and
 * without a cache there is nothing to lock or to invalidate.
 * SPDX-License-Identifier: MIT
 */
#include "budget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "limtab.h"
#include "pacer.h"
#include "shm.h"

struct qs_budget {
    const struct qs_config *cfg;
    enum qs_budget_share share;
    char shm_name[64];  /* "" = the default */
    struct qs_shm *shm; /* published once by CAS; NULL until the first request */
    int failed;         /* SHARED_OR_PASS and the object could not be had: nothing paced */
};

struct qs_budget *qs_budget_new(const struct qs_config *cfg, enum qs_budget_share share, const char *shm_name)
{
    struct qs_budget *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->cfg = cfg;
    b->share = share;
    if (shm_name != NULL)
        snprintf(b->shm_name, sizeof b->shm_name, "%s", shm_name);
    return b;
}

void qs_budget_free(struct qs_budget *b)
{
    if (b == NULL)
        return;
    qs_shm_close(b->shm);
    free(b);
}

enum qs_budget_share qs_budget_share_of(const struct qs_config *cfg)
{
    if (strcmp(cfg->share.backend, "none") == 0)
        return QS_BUDGET_LOCAL;
    return strcmp(cfg->share.on_error, "pass") == 0 ? QS_BUDGET_SHARED_OR_PASS : QS_BUDGET_SHARED;
}

/* The table, mapped on first use. Racing threads each map one; the loser unmaps its own. */
static struct qs_shm *table(struct qs_budget *b)
{
    struct qs_shm *m = __atomic_load_n(&b->shm, __ATOMIC_ACQUIRE);
    if (m != NULL || __atomic_load_n(&b->failed, __ATOMIC_RELAXED))
        return m;
    char err[160] = "";
    if (b->share == QS_BUDGET_LOCAL) {
        m = qs_shm_private();
    } else {
        m = qs_shm_open(b->shm_name[0] ? b->shm_name : NULL, err, sizeof err);
        if (m == NULL && b->share == QS_BUDGET_SHARED) {
            qs_diag("%s; pacing this process on its own", err);
            m = qs_shm_private();
        } else if (m == NULL) {
            qs_diag("%s; share.on_error is \"pass\": not pacing", err);
        }
    }
    if (m == NULL) {
        __atomic_store_n(&b->failed, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    struct qs_shm *none = NULL;
    if (!__atomic_compare_exchange_n(&b->shm, &none, m, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        qs_shm_close(m);
        m = none;
    }
    return m;
}

#define KEY_MAX 160

/* The budget key of <model> in <region>: REGION "/" MODEL. */
static void key_of(const char *region, const char *model, char key[KEY_MAX])
{
    snprintf(key, KEY_MAX, "%s/%s", region, model);
}

/* The pacing rate of <model> in <region>. */
static void rate_of(const struct qs_budget *b, const char *region, const char *model, struct qs_pace_rate *r)
{
    struct qs_limit l;
    char source[QS_CFG_PATH_MAX + 32];
    qs_limits_lookup(b->cfg, region, model, &l, source, sizeof source);
    qs_pace_rate_init(r, l.rpm, l.tpm, l.rps, l.tps, b->cfg->headroom);
}

int qs_budget_reserve(struct qs_budget *b, const char *region, const char *model, uint64_t tokens,
                      uint64_t now_ns, uint64_t *wait_ns)
{
    *wait_ns = 0;
    struct qs_shm *m = table(b);
    if (m == NULL)
        return QS_BUDGET_UNPACED;
    char key[KEY_MAX];
    struct qs_pace_rate r;
    key_of(region, model, key);
    rate_of(b, region, model, &r);
    if (qs_shm_reserve(m, key, &r, now_ns, tokens, wait_ns) == QS_PACE_NEVER)
        return QS_BUDGET_RETIRED;
    return QS_BUDGET_GO;
}

void qs_budget_settle(struct qs_budget *b, const char *region, const char *model, uint64_t now_ns,
                      uint64_t slot_ns, int64_t delta)
{
    struct qs_shm *m = table(b);
    if (m == NULL || delta == 0)
        return;
    char key[KEY_MAX];
    struct qs_pace_rate r;
    key_of(region, model, key);
    rate_of(b, region, model, &r);
    qs_shm_settle(m, key, &r, now_ns, slot_ns, delta);
}

void qs_budget_cooldown(struct qs_budget *b, const char *region, const char *model, uint64_t until_ns)
{
    struct qs_shm *m = table(b);
    char key[KEY_MAX];
    key_of(region, model, key);
    if (m != NULL)
        qs_shm_cooldown(m, key, until_ns);
}

void qs_budget_throttled(struct qs_budget *b, const char *region, const char *model, uint64_t slot_ns)
{
    struct qs_shm *m = table(b);
    if (m == NULL)
        return;
    char key[KEY_MAX];
    struct qs_pace_rate r;
    key_of(region, model, key);
    rate_of(b, region, model, &r);
    qs_shm_throttled(m, key, &r, slot_ns);
}
