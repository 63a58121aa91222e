/* limtab.c - the embedded per-region limit tables and the effective-limit lookup
 * (config overrides, then the region table, then default_limit; SPEC section 4).
 *
 * Pure apart from libconfig reading an in-memory string: the table texts are compiled in
 * (build/gen/limits_data.c), nothing here opens a file. Each table is parsed once, on its
 * first use, into an array sorted by model name so that an exact lookup is a bsearch.
 * SPDX-License-Identifier: MIT
 */
#include "limtab.h"

#include <fnmatch.h>
#include <libconfig.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds that only catch a misplaced digit; the same as config.c's. */
#define QS_LT_RATE_MAX 1e12
#define QS_LT_CONC_MAX 1000000

/* One parsed table. <state> is written last, with release order, so that a reader that
 * sees it non-zero (acquire) also sees everything before it without taking the lock: after
 * its first use a table costs no lock, and a fork can then never inherit one held.
 * (Helgrind does not model C11 atomics and reports these reads as races; TSan does not.) */
struct qs_lt_cache {
    struct qs_limit *rows; /* nexact exact names sorted by model, then the globs in file order */
    size_t nrows, nexact;
    char err[QS_CFG_ERR_MAX]; /* why it failed, when state is -1 */
    int state;                /* 0 not parsed yet, 1 ready, -1 failed */
};

static pthread_mutex_t qs_lt_lock = PTHREAD_MUTEX_INITIALIZER;
/* qs_limits_ntables slots, allocated on first use: the count is only known to the generated
 * file. Never freed; the tables serve the whole life of the process. */
static struct qs_lt_cache *qs_lt_caches;

/* Index of <region> in qs_limits_tables, or -1. */
static int qs_lt_find(const char *region)
{
    size_t i;

    if (region == NULL)
        return -1;
    for (i = 0; i < qs_limits_ntables; i++)
        if (strcmp(qs_limits_tables[i].region, region) == 0)
            return (int)i;
    return -1;
}

int qs_limits_region_valid(const char *region) { return qs_lt_find(region) >= 0; }

void qs_limits_region_list(char *out, size_t outlen)
{
    size_t i, used = 0;
    int n;

    if (outlen == 0)
        return;
    out[0] = '\0';
    for (i = 0; i < qs_limits_ntables && used < outlen; i++) {
        n = snprintf(out + used, outlen - used, "%s%s", i > 0 ? ", " : "", qs_limits_tables[i].region);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

int qs_limits_retired(const struct qs_limit *l) { return l->rpm == 0 && l->tpm == 0 && l->rps == 0; }

/* ================================ Parsing ================================ */

/* Writes "config/limits/NAME.conf:LINE: message" into err[errlen] and returns -1. */
static int qs_lt_fail(char *err, size_t errlen, const char *name, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int qs_lt_fail(char *err, size_t errlen, const char *name, int line, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "config/limits/%s.conf:%d: %s", name, line, msg);
    return -1;
}

/* Reads the number <s> (an integer, a 64-bit integer or a float) into *<out>, requiring
 * 0 <= value <= <hi>. */
static int qs_lt_number(const config_setting_t *s, double hi, double *out)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        *out = (double)config_setting_get_int64(s);
        break;
    case CONFIG_TYPE_FLOAT:
        *out = config_setting_get_float(s);
        break;
    default:
        return -1;
    }
    return *out >= 0 && *out <= hi ? 0 : -1;
}

/* Reads one `{ model = "..."; rpm = N; ... }` entry <e> into <l>. Unknown keys are errors,
 * as in the user's config, so that a typo in a table cannot silently drop a limit. */
static int qs_lt_entry(const char *name, const config_setting_t *e, struct qs_limit *l, char *err,
                       size_t errlen)
{
    static const struct {
        const char *key;
        size_t off;
    } nums[] = {
        {"rpm", offsetof(struct qs_limit, rpm)},
        {"tpm", offsetof(struct qs_limit, tpm)},
        {"rps", offsetof(struct qs_limit, rps)},
        {"tps", offsetof(struct qs_limit, tps)},
    };
    int line = (int)config_setting_source_line(e);
    int len, i, has_rate = 0;
    size_t k;

    memset(l, 0, sizeof(*l));
    l->line = line;
    if (!config_setting_is_group(e))
        return qs_lt_fail(err, errlen, name, line, "each entry must be a group { model = ...; rpm = ...; }");
    len = config_setting_length(e);
    for (i = 0; i < len; i++) {
        const config_setting_t *m = config_setting_get_elem(e, (unsigned)i);
        const char *key = config_setting_name(m);
        int mline = (int)config_setting_source_line(m);
        double v;

        if (strcmp(key, "model") == 0) {
            const char *s = config_setting_get_string(m);

            if (s == NULL || s[0] == '\0' || strlen(s) >= sizeof(l->model))
                return qs_lt_fail(err, errlen, name, mline,
                                  "model must be a non-empty string under %zu bytes", sizeof(l->model));
            memcpy(l->model, s, strlen(s) + 1);
            continue;
        }
        if (strcmp(key, "concurrency") == 0) {
            if (qs_lt_number(m, QS_LT_CONC_MAX, &v) < 0 || v != (double)(int)v)
                return qs_lt_fail(err, errlen, name, mline, "concurrency must be a whole number 0..%d",
                                  QS_LT_CONC_MAX);
            l->concurrency = (int)v;
            continue;
        }
        for (k = 0; k < sizeof(nums) / sizeof(nums[0]) && strcmp(key, nums[k].key) != 0; k++)
            ;
        if (k == sizeof(nums) / sizeof(nums[0]))
            return qs_lt_fail(err, errlen, name, mline,
                              "unknown key \"%s\" (known: model, rpm, tpm, rps, tps, concurrency)", key);
        if (qs_lt_number(m, QS_LT_RATE_MAX, &v) < 0)
            return qs_lt_fail(err, errlen, name, mline, "%s must be a number 0..%g", key, QS_LT_RATE_MAX);
        *(double *)((char *)l + nums[k].off) = v;
        has_rate |= strcmp(key, "tps") != 0;
    }
    if (l->model[0] == '\0')
        return qs_lt_fail(err, errlen, name, line, "entry has no model");
    /* Same rule as config.c: an entry with none of them would read as retired by accident. */
    if (!has_rate)
        return qs_lt_fail(err, errlen, name, line,
                          "\"%s\" needs rpm, tpm or rps (rpm = 0; tpm = 0; = retired)", l->model);
    return 0;
}

static int qs_lt_is_glob(const char *model) { return strpbrk(model, "*?[") != NULL; }

/* The table's order: exact names first, by name (for bsearch), then the globs by line, which
 * keeps the file order that first-match needs. */
static int qs_lt_order(const void *a, const void *b)
{
    const struct qs_limit *x = a, *y = b;
    int gx = qs_lt_is_glob(x->model), gy = qs_lt_is_glob(y->model);

    if (gx != gy)
        return gx - gy;
    return gx ? x->line - y->line : strcmp(x->model, y->model);
}

/* Parses the table text <text> of region <name> into <c> (rows allocated here).
 * Returns 0, or -1 with the reason in c->err and nothing allocated. */
static int qs_lt_parse(const char *name, const char *text, struct qs_lt_cache *c)
{
    const config_setting_t *root, *list;
    struct qs_limit *rows = NULL;
    config_t lc;
    size_t n = 0, nexact = 0, i;
    int rc = -1;

    config_init(&lc);
    if (config_read_string(&lc, text) != CONFIG_TRUE) {
        qs_lt_fail(c->err, sizeof(c->err), name, config_error_line(&lc), "%s", config_error_text(&lc));
        goto out;
    }
    root = config_root_setting(&lc);
    list = config_setting_get_member(root, "limits");
    if (config_setting_length(root) != 1 || list == NULL || !config_setting_is_list(list)) {
        qs_lt_fail(c->err, sizeof(c->err), name, 1, "the file must hold exactly one list: limits = ( ... );");
        goto out;
    }
    n = (size_t)config_setting_length(list);
    rows = calloc(n > 0 ? n : 1, sizeof(*rows));
    if (rows == NULL) {
        qs_lt_fail(c->err, sizeof(c->err), name, 0, "out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (qs_lt_entry(name, config_setting_get_elem(list, (unsigned)i), &rows[i], c->err, sizeof(c->err)) <
            0)
            goto out;
        nexact += !qs_lt_is_glob(rows[i].model);
    }
    qsort(rows, n, sizeof(*rows), qs_lt_order);
    /* A name listed twice would make the answer depend on the sort: refuse it. */
    for (i = 1; i < nexact; i++)
        if (strcmp(rows[i - 1].model, rows[i].model) == 0) {
            qs_lt_fail(c->err, sizeof(c->err), name, rows[i].line, "\"%s\" is listed twice (also line %d)",
                       rows[i].model, rows[i - 1].line);
            goto out;
        }
    c->rows = rows;
    c->nrows = n;
    c->nexact = nexact;
    rows = NULL;
    rc = 0;
out:
    free(rows);
    config_destroy(&lc);
    return rc;
}

/* The parsed cache of table <idx>, parsing it if this is its first use; NULL only when the
 * cache array cannot be allocated. */
static struct qs_lt_cache *qs_lt_get(int idx)
{
    struct qs_lt_cache *caches = __atomic_load_n(&qs_lt_caches, __ATOMIC_ACQUIRE);

    if (caches != NULL && __atomic_load_n(&caches[idx].state, __ATOMIC_ACQUIRE) != 0)
        return &caches[idx];
    pthread_mutex_lock(&qs_lt_lock);
    caches = qs_lt_caches;
    if (caches == NULL) {
        caches = calloc(qs_limits_ntables, sizeof(*caches));
        __atomic_store_n(&qs_lt_caches, caches, __ATOMIC_RELEASE);
    }
    if (caches != NULL && caches[idx].state == 0) {
        int st =
            qs_lt_parse(qs_limits_tables[idx].region, qs_limits_tables[idx].text, &caches[idx]) == 0 ? 1 : -1;

        __atomic_store_n(&caches[idx].state, st, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&qs_lt_lock);
    return caches != NULL ? &caches[idx] : NULL;
}

int qs_limits_table(const char *region, const struct qs_limit **rows, size_t *nrows, char *err, size_t errlen)
{
    int idx = qs_lt_find(region);
    struct qs_lt_cache *c;
    char list[256];

    *rows = NULL;
    *nrows = 0;
    if (idx < 0) {
        qs_limits_region_list(list, sizeof(list));
        snprintf(err, errlen, "unknown region \"%s\" (known: %s)", region != NULL ? region : "(null)", list);
        return -1;
    }
    c = qs_lt_get(idx);
    if (c == NULL) {
        snprintf(err, errlen, "limit tables: out of memory");
        return -1;
    }
    if (c->state < 0) {
        snprintf(err, errlen, "%s", c->err);
        return -1;
    }
    *rows = c->rows;
    *nrows = c->nrows;
    return 0;
}

/* ================================ Lookup ================================ */

/* bsearch's comparison: the key is the model name itself. */
static int qs_lt_key_cmp(const void *key, const void *row)
{
    return strcmp(key, ((const struct qs_limit *)row)->model);
}

/* The entry of the parsed table <c> for <model>: exact name, then the first matching glob. */
static const struct qs_limit *qs_lt_match(const struct qs_lt_cache *c, const char *model)
{
    const struct qs_limit *hit = bsearch(model, c->rows, c->nexact, sizeof(*c->rows), qs_lt_key_cmp);
    size_t i;

    for (i = c->nexact; hit == NULL && i < c->nrows; i++)
        if (fnmatch(c->rows[i].model, model, 0) == 0)
            hit = &c->rows[i];
    return hit;
}

int qs_limits_lookup(const struct qs_config *cfg, const char *region, const char *model, struct qs_limit *out,
                     char *source, size_t srclen)
{
    int idx = qs_lt_find(region);
    const struct qs_lt_cache *c = idx >= 0 ? qs_lt_get(idx) : NULL;
    int rc = c != NULL && c->state > 0 ? 0 : -1;
    const struct qs_limit *hit;
    int i;

    for (i = 0; i < cfg->nlimits; i++)
        if (fnmatch(cfg->limits[i].model, model, 0) == 0) {
            *out = cfg->limits[i];
            snprintf(source, srclen, "config %s:%d", cfg->source, out->line);
            return rc;
        }
    if (rc == 0 && (hit = qs_lt_match(c, model)) != NULL) {
        *out = *hit;
        snprintf(source, srclen, "table %s", region);
        return 0;
    }
    *out = cfg->default_limit;
    if (cfg->has_default_limit)
        snprintf(source, srclen, "default_limit %s:%d", cfg->source, out->line);
    else
        snprintf(source, srclen, "default_limit");
    return rc;
}
