/* config.c - reads qshim.conf (libconfig) into the plain struct qs_config (SPEC section 4).
 *
 * One table of known keys per group drives the reading, so every key in the file is
 * either understood or reported with its line: a typo must never fall back silently
 * to a default. Reading stops at the first error, reported as "FILE:LINE: message".
 * No globals: libconfig's strings are copied out and its tree is freed before return.
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <errno.h>
#include <fnmatch.h>
#include <libconfig.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Upper bounds that only catch nonsense (a misplaced digit), not policy. */
#define QS_RATE_MAX 1e12
#define QS_MS_MAX 3600000L /* one hour */

/* A reading in progress: where errors go. */
struct qs_rd {
    const char *path; /* for settings libconfig knows no file of (the top-level file) */
    char *err;
    size_t errlen;
};

struct qs_field;
typedef int (*qs_field_fn)(struct qs_rd *rd, const config_setting_t *s, const char *name, void *base);

enum qs_kind {
    QS_K_BOOL,   /* int, from true/false */
    QS_K_INT,    /* int, whole number in [lo, hi] */
    QS_K_LONG,   /* long, whole number in [lo, hi] */
    QS_K_NUM,    /* double in [lo, hi], from an integer or a float */
    QS_K_STR,    /* char[size], not empty */
    QS_K_CHOICE, /* char[size], one of choices */
    QS_K_GLOBS,  /* char[QS_CFG_MAX_GLOBS][QS_CFG_NAME_MAX] at off, count at off_n */
    QS_K_GROUP,  /* a group read with the table sub[nsub] into the same base */
    QS_K_FUNC,   /* anything else: fn */
};

/* One known key: how to read it and where in <base> (the struct being filled) it goes. */
struct qs_field {
    const char *name;
    enum qs_kind kind;
    size_t off, off_n, size;
    double lo, hi;
    const char *const *choices; /* NULL-terminated */
    const struct qs_field *sub;
    size_t nsub;
    qs_field_fn fn;
};

static const char *const qs_default_hosts[] = {
    "dashscope.aliyuncs.com",   "dashscope-intl.aliyuncs.com", "dashscope-us.aliyuncs.com",
    "*.dashscope.aliyuncs.com", "*.maas.aliyuncs.com",
};

/* Region ids of SPEC section 4, then the cloud region ids of the same deployments as they
 * appear in {ws}.{region}.maas.aliyuncs.com (research/dashscope-wire.md), as aliases. */
static const struct {
    const char *name, *id;
} qs_regions[] = {
    {"auto", "auto"},       {"cn-beijing", "cn-beijing"},   {"intl", "intl"},
    {"us", "us"},           {"cn-hongkong", "cn-hongkong"}, {"eu", "eu"},
    {"global", "global"},   {"ap-southeast-1", "intl"},     {"us-east-1", "us"},
    {"eu-central-1", "eu"},
};

static const char *const qs_modes[] = {"enforce", "observe", NULL};
static const char *const qs_backends[] = {"shm", "redis", "none", NULL};
static const char *const qs_on_errors[] = {"local", "pass", NULL};
static const char *const qs_levels[] = {"debug", "info", "warn", NULL};

/* ============================ Paths and environment ============================ */

/* Copies <src> into <out>; -1 (and "") when it does not fit. */
static int qs_copy(char *out, size_t outlen, const char *src)
{
    size_t n = strlen(src);

    if (n >= outlen) {
        if (outlen > 0)
            out[0] = '\0';
        return -1;
    }
    memcpy(out, src, n + 1);
    return 0;
}

/* $<env>/<leaf>, or $HOME/<home_rel>/<leaf> when <env> is unset. The XDG base directory
 * spec says a relative value is invalid and must be ignored; so is a relative $HOME. */
static int qs_xdg_path(char *out, size_t outlen, const char *env, const char *home_rel, const char *leaf)
{
    const char *dir = getenv(env);
    const char *home = getenv("HOME");
    int n;

    if (dir != NULL && dir[0] == '/')
        n = snprintf(out, outlen, "%s/%s", dir, leaf);
    else if (home != NULL && home[0] == '/')
        n = snprintf(out, outlen, "%s/%s/%s", home, home_rel, leaf);
    else
        n = -1;
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen > 0)
            out[0] = '\0';
        return -1;
    }
    return 0;
}

void qs_config_default_log_path(char *out, size_t outlen)
{
    const char *env = getenv("QSHIM_LOG");

    if (env != NULL && env[0] != '\0')
        qs_copy(out, outlen, env);
    else
        qs_xdg_path(out, outlen, "XDG_STATE_HOME", ".local/state", "qshim/audit.jsonl");
}

int qs_config_find(char *out, size_t outlen)
{
    const char *env = getenv("QSHIM_CONFIG");
    struct stat st;

    if (env != NULL && env[0] != '\0')
        return qs_copy(out, outlen, env);
    /* Anything at the path counts (even a directory), so that loading it says what is wrong
     * instead of quietly moving on to /etc. */
    if (qs_xdg_path(out, outlen, "XDG_CONFIG_HOME", ".config", "qshim/qshim.conf") == 0 &&
        stat(out, &st) == 0)
        return 0;
    if (stat("/etc/qshim.conf", &st) == 0)
        return qs_copy(out, outlen, "/etc/qshim.conf");
    if (outlen > 0)
        out[0] = '\0';
    return -1;
}

void qs_config_defaults(struct qs_config *cfg)
{
    size_t i;

    memset(cfg, 0, sizeof(*cfg));
    cfg->enabled = 1;
    cfg->mode = QS_MODE_ENFORCE;
    for (i = 0; i < sizeof(qs_default_hosts) / sizeof(qs_default_hosts[0]); i++)
        qs_copy(cfg->hosts[i], sizeof(cfg->hosts[i]), qs_default_hosts[i]);
    cfg->nhosts = (int)i;
    qs_copy(cfg->region, sizeof(cfg->region), "auto");
    cfg->headroom = 0.95;
    qs_copy(cfg->default_limit.model, sizeof(cfg->default_limit.model), "*");
    cfg->default_limit.rpm = 60;
    cfg->default_limit.tpm = 100000;
    cfg->retry.max_attempts = 8;
    cfg->retry.base_ms = 1000;
    cfg->retry.max_ms = 30000;
    cfg->retry.max_total_ms = 120000;
    qs_copy(cfg->share.backend, sizeof(cfg->share.backend), "shm");
    qs_copy(cfg->share.redis, sizeof(cfg->share.redis), "redis://127.0.0.1:6379/0");
    qs_copy(cfg->share.on_error, sizeof(cfg->share.on_error), "local");
    qs_config_default_log_path(cfg->log.path, sizeof(cfg->log.path));
    qs_copy(cfg->log.level, sizeof(cfg->log.level), "info");
}

int qs_config_apply_env(struct qs_config *cfg, char *err, size_t errlen)
{
    const char *disable = getenv("QSHIM_DISABLE");
    const char *mode = getenv("QSHIM_MODE");
    const char *log = getenv("QSHIM_LOG");
    int rc = 0;

    if (errlen > 0)
        err[0] = '\0';
    if (disable != NULL && disable[0] != '\0' && strcmp(disable, "0") != 0)
        cfg->enabled = 0;
    if (log != NULL && log[0] != '\0')
        qs_copy(cfg->log.path, sizeof(cfg->log.path), log);
    if (mode != NULL && mode[0] != '\0') {
        if (strcmp(mode, "enforce") == 0) {
            cfg->mode = QS_MODE_ENFORCE;
        } else if (strcmp(mode, "observe") == 0) {
            cfg->mode = QS_MODE_OBSERVE;
        } else {
            if (errlen > 0)
                snprintf(err, errlen, "QSHIM_MODE: must be \"enforce\" or \"observe\" (got \"%s\")", mode);
            rc = -1;
        }
    }
    return rc;
}

/* ================================ Reading values ================================ */

/* Writes "FILE:LINE: message" about setting <s> and returns -1. */
static int qs_fail(struct qs_rd *rd, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int qs_fail(struct qs_rd *rd, const config_setting_t *s, const char *fmt, ...)
{
    const char *file = config_setting_source_file(s);
    char msg[QS_CFG_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (rd->errlen > 0)
        snprintf(rd->err, rd->errlen, "%s:%u: %s", file != NULL ? file : rd->path,
                 (unsigned)config_setting_source_line(s), msg);
    return -1;
}

/* Reads a number into <out>. <whole> also demands a whole number; a float such as 1e9 is
 * accepted there, because libconfig 1.5 silently wraps integers beyond 2^31 that lack the
 * L suffix (10000000000 reads as 1410065408), and the float form is the natural escape. */
static int qs_number(struct qs_rd *rd, const config_setting_t *s, const char *name, int whole, double lo,
                     double hi, double *out)
{
    double v = 0;

    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        v = (double)config_setting_get_int64(s);
        break;
    case CONFIG_TYPE_FLOAT:
        v = config_setting_get_float(s);
        break;
    default:
        return qs_fail(rd, s, "%s must be %s", name, whole ? "a whole number" : "a number");
    }
    if (!(v >= lo && v <= hi))
        return qs_fail(rd, s, "%s must be between %.15g and %.15g (got %.15g)", name, lo, hi, v);
    /* After the range check, so the cast cannot overflow; no floor(), the shim has no -lm. */
    if (whole && v != (double)(long long)v)
        return qs_fail(rd, s, "%s must be a whole number (got %g)", name, v);
    *out = v;
    return 0;
}

/* Copies a non-empty string setting into dst[size]. */
static int qs_string(struct qs_rd *rd, const config_setting_t *s, const char *name, char *dst, size_t size)
{
    const char *v = config_setting_get_string(s);

    if (config_setting_type(s) != CONFIG_TYPE_STRING || v == NULL)
        return qs_fail(rd, s, "%s must be a string", name);
    if (v[0] == '\0')
        return qs_fail(rd, s, "%s must not be empty", name);
    if (qs_copy(dst, size, v) < 0)
        return qs_fail(rd, s, "%s is too long (at most %zu characters)", name, size - 1);
    return 0;
}

/* Copies one of <choices> into dst[size]; returns its index, or -1. */
static int qs_choice(struct qs_rd *rd, const config_setting_t *s, const char *name,
                     const char *const *choices, char *dst, size_t size)
{
    const char *v = config_setting_get_string(s);
    char list[256] = "";
    size_t used = 0;
    int i;

    if (config_setting_type(s) != CONFIG_TYPE_STRING || v == NULL)
        return qs_fail(rd, s, "%s must be a string", name);
    for (i = 0; choices[i] != NULL; i++) {
        if (strcmp(v, choices[i]) == 0)
            return qs_copy(dst, size, v) == 0 ? i : -1;
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s\"%s\"", i > 0 ? ", " : "", choices[i]);
    }
    return qs_fail(rd, s, "%s must be one of %s (got \"%s\")", name, list, v);
}

/* Reads an array or list of at most <max> non-empty strings into dst[max][QS_CFG_NAME_MAX]. */
static int qs_strings(struct qs_rd *rd, const config_setting_t *s, const char *name,
                      char (*dst)[QS_CFG_NAME_MAX], int max, int *n)
{
    char ename[96];
    int len, i;

    if (!config_setting_is_array(s) && !config_setting_is_list(s))
        return qs_fail(rd, s, "%s must be a list of strings like [ \"a\", \"b*\" ]", name);
    len = config_setting_length(s);
    if (len > max)
        return qs_fail(rd, s, "%s has too many entries (%d, at most %d)", name, len, max);
    for (i = 0; i < len; i++) {
        snprintf(ename, sizeof(ename), "%s[%d]", name, i);
        if (qs_string(rd, config_setting_get_elem(s, (unsigned)i), ename, dst[i], QS_CFG_NAME_MAX) < 0)
            return -1;
    }
    *n = len;
    return 0;
}

/* Edit distance between two short names (longer ones never match), to suggest the
 * key a typo was meant to be. */
static int qs_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    int row[32], diag, up, best;

    if (la >= 32 || lb >= 32)
        return 99;
    for (j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (i = 1; i <= la; i++) {
        diag = row[0];
        row[0] = (int)i;
        for (j = 1; j <= lb; j++) {
            up = row[j];
            best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static int qs_unknown(struct qs_rd *rd, const config_setting_t *s, const char *prefix,
                      const struct qs_field *fields, size_t n)
{
    const char *name = config_setting_name(s);
    const char *near = NULL;
    int best = 3; /* suggest only within two edits */
    size_t i;

    for (i = 0; i < n; i++) {
        int d = qs_distance(name, fields[i].name);
        if (d < best) {
            best = d;
            near = fields[i].name;
        }
    }
    if (near != NULL)
        return qs_fail(rd, s, "unknown key '%s%s' (did you mean '%s%s'?)", prefix, name, prefix, near);
    return qs_fail(rd, s, "unknown key '%s%s'", prefix, name);
}

static int qs_group(struct qs_rd *rd, const config_setting_t *s, const char *name,
                    const struct qs_field *fields, size_t n, void *base);

static int qs_field(struct qs_rd *rd, const config_setting_t *s, const char *name, const struct qs_field *f,
                    void *base)
{
    char *p = (char *)base + f->off;
    double v = 0;

    switch (f->kind) {
    case QS_K_BOOL:
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
            return qs_fail(rd, s, "%s must be true or false", name);
        *(int *)p = config_setting_get_bool(s);
        return 0;
    case QS_K_INT:
        if (qs_number(rd, s, name, 1, f->lo, f->hi, &v) < 0)
            return -1;
        *(int *)p = (int)v;
        return 0;
    case QS_K_LONG:
        if (qs_number(rd, s, name, 1, f->lo, f->hi, &v) < 0)
            return -1;
        *(long *)p = (long)v;
        return 0;
    case QS_K_NUM:
        return qs_number(rd, s, name, 0, f->lo, f->hi, (double *)p);
    case QS_K_STR:
        return qs_string(rd, s, name, p, f->size);
    case QS_K_CHOICE:
        return qs_choice(rd, s, name, f->choices, p, f->size) < 0 ? -1 : 0;
    case QS_K_GLOBS:
        return qs_strings(rd, s, name, (char(*)[QS_CFG_NAME_MAX])p, QS_CFG_MAX_GLOBS,
                          (int *)((char *)base + f->off_n));
    case QS_K_GROUP:
        return qs_group(rd, s, name, f->sub, f->nsub, base);
    case QS_K_FUNC:
        return f->fn(rd, s, name, base);
    }
    return -1;
}

/* Reads every member of the group <s> (named <name>, "" for the root) with <fields>. */
static int qs_group(struct qs_rd *rd, const config_setting_t *s, const char *name,
                    const struct qs_field *fields, size_t n, void *base)
{
    char prefix[96], full[160];
    int len, i;
    size_t k;

    if (!config_setting_is_group(s))
        return qs_fail(rd, s, "%s must be a group like { key = value; ... }", name);
    snprintf(prefix, sizeof(prefix), "%s%s", name, name[0] != '\0' ? "." : "");
    len = config_setting_length(s);
    for (i = 0; i < len; i++) {
        const config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
        const char *key = config_setting_name(m);

        for (k = 0; k < n && strcmp(key, fields[k].name) != 0; k++)
            ;
        if (k == n)
            return qs_unknown(rd, m, prefix, fields, n);
        snprintf(full, sizeof(full), "%s%s", prefix, key);
        if (qs_field(rd, m, full, &fields[k], base) < 0)
            return -1;
    }
    return 0;
}

/* ================================ The keys ================================ */

static int qs_f_mode(struct qs_rd *rd, const config_setting_t *s, const char *name, void *base)
{
    char v[16];
    int i = qs_choice(rd, s, name, qs_modes, v, sizeof(v));

    if (i < 0)
        return -1;
    ((struct qs_config *)base)->mode = i == 1 ? QS_MODE_OBSERVE : QS_MODE_ENFORCE;
    return 0;
}

static int qs_f_hosts(struct qs_rd *rd, const config_setting_t *s, const char *name, void *base)
{
    struct qs_config *cfg = base;
    int i;

    if (qs_strings(rd, s, name, cfg->hosts, QS_CFG_MAX_GLOBS, &cfg->nhosts) < 0)
        return -1;
    /* Matching sees the bare host name, so a URL or host:port here could never match. */
    for (i = 0; i < cfg->nhosts; i++)
        if (strpbrk(cfg->hosts[i], ":/ \t") != NULL)
            return qs_fail(rd, config_setting_get_elem(s, (unsigned)i),
                           "%s[%d] \"%s\" must be a bare host name or glob (no scheme, port or path)", name,
                           i, cfg->hosts[i]);
    return 0;
}

static int qs_f_region(struct qs_rd *rd, const config_setting_t *s, const char *name, void *base)
{
    struct qs_config *cfg = base;
    const char *v = config_setting_get_string(s);
    char list[256] = "";
    size_t i, used = 0;

    if (config_setting_type(s) != CONFIG_TYPE_STRING || v == NULL)
        return qs_fail(rd, s, "%s must be a string", name);
    for (i = 0; i < sizeof(qs_regions) / sizeof(qs_regions[0]); i++) {
        if (strcasecmp(v, qs_regions[i].name) == 0)
            return qs_copy(cfg->region, sizeof(cfg->region), qs_regions[i].id);
        used +=
            (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i > 0 ? ", " : "", qs_regions[i].name);
    }
    return qs_fail(rd, s, "%s must be one of %s (got \"%s\")", name, list, v);
}

static int qs_f_headroom(struct qs_rd *rd, const config_setting_t *s, const char *name, void *base)
{
    double v = 0;

    if (qs_number(rd, s, name, 0, -INFINITY, INFINITY, &v) < 0)
        return -1;
    if (!(v > 0 && v <= 1))
        return qs_fail(rd, s, "%s must be greater than 0 and at most 1 (got %g)", name, v);
    ((struct qs_config *)base)->headroom = v;
    return 0;
}

/* The first entry (model) is left out for default_limit. */
static const struct qs_field qs_limit_fields[] = {
    {.name = "model", .kind = QS_K_STR, .off = offsetof(struct qs_limit, model), .size = QS_CFG_NAME_MAX},
    {.name = "rpm", .kind = QS_K_NUM, .off = offsetof(struct qs_limit, rpm), .hi = QS_RATE_MAX},
    {.name = "tpm", .kind = QS_K_NUM, .off = offsetof(struct qs_limit, tpm), .hi = QS_RATE_MAX},
    {.name = "rps", .kind = QS_K_NUM, .off = offsetof(struct qs_limit, rps), .hi = QS_RATE_MAX},
    {.name = "tps", .kind = QS_K_NUM, .off = offsetof(struct qs_limit, tps), .hi = QS_RATE_MAX},
    {.name = "concurrency", .kind = QS_K_INT, .off = offsetof(struct qs_limit, concurrency), .hi = 1000000},
};
#define QS_NLIMIT_FIELDS (sizeof(qs_limit_fields) / sizeof(qs_limit_fields[0]))

static int qs_f_limits(struct qs_rd *rd, const config_setting_t *s, const char *name, void *base)
{
    struct qs_config *cfg = base;
    char ename[64];
    int len, i;

    if (!config_setting_is_list(s))
        return qs_fail(
            rd, s, "%s must be a list like ( { model = \"qwen-plus\"; rpm = 600; tpm = 1000000; } )", name);
    len = config_setting_length(s);
    if (len > QS_CFG_MAX_LIMITS)
        return qs_fail(rd, s, "%s has too many entries (%d, at most %d)", name, len, QS_CFG_MAX_LIMITS);
    for (i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        struct qs_limit *l = &cfg->limits[i];

        snprintf(ename, sizeof(ename), "%s[%d]", name, i);
        l->line = config_setting_source_line(e);
        if (qs_group(rd, e, ename, qs_limit_fields, QS_NLIMIT_FIELDS, l) < 0)
            return -1;
        if (l->model[0] == '\0')
            return qs_fail(rd, e, "%s has no model", ename);
        /* All three absent would read as 0/0/0, the retired-model marker: say it explicitly. */
        if (config_setting_get_member(e, "rpm") == NULL && config_setting_get_member(e, "tpm") == NULL &&
            config_setting_get_member(e, "rps") == NULL)
            return qs_fail(rd, e,
                           "%s (\"%s\") needs rpm, tpm or rps (rpm = 0; tpm = 0; marks a retired model)",
                           ename, l->model);
    }
    cfg->nlimits = len;
    return 0;
}

static int qs_f_default_limit(struct qs_rd *rd, const config_setting_t *s, const char *name, void *base)
{
    struct qs_config *cfg = base;

    if (qs_group(rd, s, name, qs_limit_fields + 1, QS_NLIMIT_FIELDS - 1, &cfg->default_limit) < 0)
        return -1;
    cfg->has_default_limit = 1;
    cfg->default_limit.line = config_setting_source_line(s);
    return 0;
}

static const struct qs_field qs_retry_fields[] = {
    {.name = "max_attempts",
     .kind = QS_K_INT,
     .off = offsetof(struct qs_config, retry.max_attempts),
     .lo = 1,
     .hi = 100},
    {.name = "base_ms",
     .kind = QS_K_LONG,
     .off = offsetof(struct qs_config, retry.base_ms),
     .lo = 1,
     .hi = QS_MS_MAX},
    {.name = "max_ms",
     .kind = QS_K_LONG,
     .off = offsetof(struct qs_config, retry.max_ms),
     .lo = 1,
     .hi = QS_MS_MAX},
    {.name = "max_total_ms",
     .kind = QS_K_LONG,
     .off = offsetof(struct qs_config, retry.max_total_ms),
     .lo = 1,
     .hi = QS_MS_MAX},
};

static int qs_f_retry(struct qs_rd *rd, const config_setting_t *s, const char *name, void *base)
{
    struct qs_config *cfg = base;
    const config_setting_t *at;

    if (qs_group(rd, s, name, qs_retry_fields, sizeof(qs_retry_fields) / sizeof(qs_retry_fields[0]), cfg) < 0)
        return -1;
    if (cfg->retry.base_ms > cfg->retry.max_ms) {
        at = config_setting_get_member(s, "base_ms");
        return qs_fail(rd, at != NULL ? at : s, "%s.base_ms (%ld) must not exceed %s.max_ms (%ld)", name,
                       cfg->retry.base_ms, name, cfg->retry.max_ms);
    }
    return 0;
}

static int qs_f_fallback_to(struct qs_rd *rd, const config_setting_t *s, const char *name, void *base)
{
    struct qs_fallback *fb = base;

    if (qs_strings(rd, s, name, fb->to, 4, &fb->nto) < 0)
        return -1;
    if (fb->nto == 0)
        return qs_fail(rd, s, "%s must name at least one model", name);
    return 0;
}

static const struct qs_field qs_fallback_fields[] = {
    {.name = "model", .kind = QS_K_STR, .off = offsetof(struct qs_fallback, model), .size = QS_CFG_NAME_MAX},
    {.name = "to", .kind = QS_K_FUNC, .fn = qs_f_fallback_to},
    {.name = "after_ms", .kind = QS_K_LONG, .off = offsetof(struct qs_fallback, after_ms), .hi = QS_MS_MAX},
};

static int qs_f_fallback(struct qs_rd *rd, const config_setting_t *s, const char *name, void *base)
{
    struct qs_config *cfg = base;
    char ename[64];
    int len, i, j;

    if (!config_setting_is_list(s))
        return qs_fail(
            rd, s, "%s must be a list like ( { model = \"a\"; to = [ \"b\" ]; after_ms = 10000; } )", name);
    len = config_setting_length(s);
    if (len > QS_CFG_MAX_FALLBACK)
        return qs_fail(rd, s, "%s has too many entries (%d, at most %d)", name, len, QS_CFG_MAX_FALLBACK);
    for (i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        struct qs_fallback *fb = &cfg->fallback[i];

        snprintf(ename, sizeof(ename), "%s[%d]", name, i);
        fb->after_ms = 10000;
        if (qs_group(rd, e, ename, qs_fallback_fields,
                     sizeof(qs_fallback_fields) / sizeof(qs_fallback_fields[0]), fb) < 0)
            return -1;
        if (fb->model[0] == '\0' || fb->nto == 0)
            return qs_fail(rd, e, "%s needs model and to", ename);
        for (j = 0; j < fb->nto; j++)
            if (strcmp(fb->to[j], fb->model) == 0)
                return qs_fail(rd, config_setting_get_member(e, "to"), "%s.to must not name \"%s\" itself",
                               ename, fb->model);
    }
    cfg->nfallback = len;
    return 0;
}

static int qs_f_redis(struct qs_rd *rd, const config_setting_t *s, const char *name, void *base)
{
    struct qs_config *cfg = base;

    if (qs_string(rd, s, name, cfg->share.redis, sizeof(cfg->share.redis)) < 0)
        return -1;
    if (strncmp(cfg->share.redis, "redis://", 8) != 0 && strncmp(cfg->share.redis, "unix://", 7) != 0)
        return qs_fail(rd, s, "%s must be a URL like redis://HOST:PORT/DB or unix:///PATH (got \"%s\")", name,
                       cfg->share.redis);
    return 0;
}

static const struct qs_field qs_share_fields[] = {
    {.name = "backend",
     .kind = QS_K_CHOICE,
     .off = offsetof(struct qs_config, share.backend),
     .size = sizeof(((struct qs_config *)0)->share.backend),
     .choices = qs_backends},
    {.name = "redis", .kind = QS_K_FUNC, .fn = qs_f_redis},
    {.name = "on_error",
     .kind = QS_K_CHOICE,
     .off = offsetof(struct qs_config, share.on_error),
     .size = sizeof(((struct qs_config *)0)->share.on_error),
     .choices = qs_on_errors},
};

/* A leading "~" is the one expansion done, because the file is shared by every program and a
 * relative path would land in each program's own working directory. */
static int qs_f_log_path(struct qs_rd *rd, const config_setting_t *s, const char *name, void *base)
{
    struct qs_config *cfg = base;
    char raw[QS_CFG_PATH_MAX];
    const char *home = getenv("HOME");
    int n;

    if (qs_string(rd, s, name, raw, sizeof(raw)) < 0)
        return -1;
    if (raw[0] == '/')
        return qs_copy(cfg->log.path, sizeof(cfg->log.path), raw);
    if (raw[0] != '~')
        return qs_fail(rd, s, "%s must be absolute or start with ~/ (got \"%s\")", name, raw);
    if (raw[1] != '\0' && raw[1] != '/')
        return qs_fail(rd, s, "%s: ~user is not supported, write the full path", name);
    if (home == NULL || home[0] != '/')
        return qs_fail(rd, s, "%s: cannot expand ~, HOME is not set", name);
    n = snprintf(cfg->log.path, sizeof(cfg->log.path), "%s%s", home, raw + 1);
    if (n < 0 || (size_t)n >= sizeof(cfg->log.path))
        return qs_fail(rd, s, "%s is too long once ~ is expanded", name);
    return 0;
}

static const struct qs_field qs_log_fields[] = {
    {.name = "path", .kind = QS_K_FUNC, .fn = qs_f_log_path},
    {.name = "level",
     .kind = QS_K_CHOICE,
     .off = offsetof(struct qs_config, log.level),
     .size = sizeof(((struct qs_config *)0)->log.level),
     .choices = qs_levels},
    {.name = "max_bytes", .kind = QS_K_LONG, .off = offsetof(struct qs_config, log.max_bytes), .hi = 1e15},
    {.name = "keep", .kind = QS_K_INT, .off = offsetof(struct qs_config, log.keep), .hi = 1000},
};

static const struct qs_field qs_root_fields[] = {
    {.name = "enabled", .kind = QS_K_BOOL, .off = offsetof(struct qs_config, enabled)},
    {.name = "mode", .kind = QS_K_FUNC, .fn = qs_f_mode},
    {.name = "programs",
     .kind = QS_K_GLOBS,
     .off = offsetof(struct qs_config, programs),
     .off_n = offsetof(struct qs_config, nprograms)},
    {.name = "exclude",
     .kind = QS_K_GLOBS,
     .off = offsetof(struct qs_config, exclude),
     .off_n = offsetof(struct qs_config, nexclude)},
    {.name = "hosts", .kind = QS_K_FUNC, .fn = qs_f_hosts},
    {.name = "region", .kind = QS_K_FUNC, .fn = qs_f_region},
    {.name = "headroom", .kind = QS_K_FUNC, .fn = qs_f_headroom},
    {.name = "limits", .kind = QS_K_FUNC, .fn = qs_f_limits},
    {.name = "default_limit", .kind = QS_K_FUNC, .fn = qs_f_default_limit},
    {.name = "retry", .kind = QS_K_FUNC, .fn = qs_f_retry},
    {.name = "fallback", .kind = QS_K_FUNC, .fn = qs_f_fallback},
    {.name = "share",
     .kind = QS_K_GROUP,
     .sub = qs_share_fields,
     .nsub = sizeof(qs_share_fields) / sizeof(qs_share_fields[0])},
    {.name = "log",
     .kind = QS_K_GROUP,
     .sub = qs_log_fields,
     .nsub = sizeof(qs_log_fields) / sizeof(qs_log_fields[0])},
};

int qs_config_load_file(const char *path, struct qs_config *cfg, char *err, size_t errlen)
{
    struct qs_rd rd = {.path = path, .err = err, .errlen = errlen};
    struct stat st;
    config_t lc;
    FILE *fp;
    int rc;

    qs_config_defaults(cfg);
    if (errlen > 0)
        err[0] = '\0';
    /* Opened here rather than by config_read_file so that a missing file is reported with
     * its errno, which libconfig 1.5 folds into a bare "file I/O error". */
    fp = fopen(path, "r");
    if (fp == NULL) {
        if (errlen > 0)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        if (errlen > 0)
            snprintf(err, errlen, "%s: is a directory", path);
        fclose(fp);
        return -1;
    }
    config_init(&lc);
    if (config_read(&lc, fp) != CONFIG_TRUE) {
        if (errlen > 0)
            snprintf(err, errlen, "%s:%d: %s", config_error_file(&lc) != NULL ? config_error_file(&lc) : path,
                     config_error_line(&lc), config_error_text(&lc));
        rc = -1;
    } else {
        rc = qs_group(&rd, config_root_setting(&lc), "", qs_root_fields,
                      sizeof(qs_root_fields) / sizeof(qs_root_fields[0]), cfg);
    }
    config_destroy(&lc);
    fclose(fp);
    if (rc < 0) {
        qs_config_defaults(cfg);
        return -1;
    }
    if (qs_copy(cfg->source, sizeof(cfg->source), path) < 0) {
        qs_config_defaults(cfg);
        if (errlen > 0)
            snprintf(err, errlen, "%.*s...: path too long", 200, path);
        return -1;
    }
    return 0;
}

/* ================================ Filters ================================ */

static int qs_any_match(const char (*globs)[QS_CFG_NAME_MAX], int n, const char *name, int flags)
{
    int i;

    if (name == NULL || name[0] == '\0')
        return 0;
    for (i = 0; i < n; i++)
        if (fnmatch(globs[i], name, flags) == 0)
            return 1;
    return 0;
}

int qs_config_program_enabled(const struct qs_config *cfg, const char *argv0_base, const char *exe_base)
{
    if (cfg->nprograms > 0 && !qs_any_match(cfg->programs, cfg->nprograms, argv0_base, 0) &&
        !qs_any_match(cfg->programs, cfg->nprograms, exe_base, 0))
        return 0;
    return !qs_any_match(cfg->exclude, cfg->nexclude, argv0_base, 0) &&
           !qs_any_match(cfg->exclude, cfg->nexclude, exe_base, 0);
}

int qs_config_host_matches(const struct qs_config *cfg, const char *host, size_t host_len)
{
    char h[256]; /* a DNS name is at most 253 characters */

    /* "dashscope.aliyuncs.com." is the same host written as an absolute name. */
    if (host_len > 0 && host[host_len - 1] == '.')
        host_len--;
    if (host_len == 0 || host_len >= sizeof(h) || memchr(host, '\0', host_len) != NULL)
        return 0;
    memcpy(h, host, host_len);
    h[host_len] = '\0';
    return qs_any_match(cfg->hosts, cfg->nhosts, h, FNM_CASEFOLD);
}
