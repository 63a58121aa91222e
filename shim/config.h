/* config.h - qshim configuration: where it is found, what it says (SPEC section 4).
 *
 * The file is libconfig syntax. It is read once per process and copied into a plain
 * struct (libconfig is not thread-safe and owns its strings), so the rest of the
 * shim only ever sees immutable values.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_CONFIG_H
#define QS_CONFIG_H

#include <stddef.h>

#define QS_CFG_MAX_GLOBS 32
#define QS_CFG_MAX_LIMITS 64
#define QS_CFG_MAX_FALLBACK 8
#define QS_CFG_NAME_MAX 128
#define QS_CFG_PATH_MAX 1024
#define QS_CFG_ERR_MAX 1280

enum qs_mode { QS_MODE_ENFORCE = 0, QS_MODE_OBSERVE = 1 };

/* One rate limit; 0 in a field means "not limited by this dimension" except that
 * a row with rpm == 0 and tpm == 0 and rps == 0 is a retired model (never granted). */
struct qs_limit {
    char model[QS_CFG_NAME_MAX]; /* glob on the model name */
    double rpm, tpm, rps, tps;
    int concurrency;
    int line; /* line in the file it came from, 0 for built-ins */
};

struct qs_fallback {
    char model[QS_CFG_NAME_MAX];
    char to[4][QS_CFG_NAME_MAX];
    int nto;
    long after_ms;
};

struct qs_config {
    char source[QS_CFG_PATH_MAX]; /* file it was read from, "" when defaults */
    int enabled;                  /* default 1 */
    enum qs_mode mode;            /* default enforce */
    char programs[QS_CFG_MAX_GLOBS][QS_CFG_NAME_MAX];
    int nprograms; /* 0 = every program */
    char exclude[QS_CFG_MAX_GLOBS][QS_CFG_NAME_MAX];
    int nexclude;
    char hosts[QS_CFG_MAX_GLOBS][QS_CFG_NAME_MAX];
    int nhosts;      /* defaults filled in when the file has no "hosts" */
    char region[32]; /* "auto" (default) or a region id */
    double headroom; /* default 0.95, 0 < headroom <= 1 */
    struct qs_limit limits[QS_CFG_MAX_LIMITS];
    int nlimits;
    int has_default_limit;         /* 1 when the file has default_limit (fields it omits keep the defaults) */
    struct qs_limit default_limit; /* default rpm 60, tpm 100000, model "*" */
    struct {
        int max_attempts;                   /* default 8 */
        long base_ms, max_ms, max_total_ms; /* defaults 1000, 30000, 120000 */
    } retry;
    struct qs_fallback fallback[QS_CFG_MAX_FALLBACK]; /* after_ms defaults to 10000 */
    int nfallback;
    struct {
        char backend[16]; /* "shm" (default), "redis", "none" */
        char redis[QS_CFG_PATH_MAX];
        char on_error[16]; /* "local" (default) or "pass" */
    } share;
    struct {
        char path[QS_CFG_PATH_MAX]; /* "~" expanded; default see qs_config_default_log_path */
        char level[16];             /* "info" (default), "debug", "warn" */
        long max_bytes;             /* rotate when the file reaches this size; 0 (default) = never */
        int keep;                   /* rotated files to keep; default 0 */
    } log;
};

/* Fills <cfg> with the built-in defaults (SPEC section 4: everything enabled, default
 * DashScope hosts, region auto, shipped tables). Never fails. */
void qs_config_defaults(struct qs_config *cfg);

/* Reads <path> into <cfg> (defaults first, then the file's settings on top).
 * Returns 0 on success. On failure returns -1, leaves <cfg> holding the defaults and
 * writes a one-line message "FILE:LINE: what is wrong" into <err> (size <errlen>).
 * Unknown keys, wrong types and out-of-range values are errors with their line; a
 * file that cannot be opened gives "FILE: reason". The environment is not applied. */
int qs_config_load_file(const char *path, struct qs_config *cfg, char *err, size_t errlen);

/* Applies the environment on top of <cfg> (defaults or a loaded file), because a
 * variable set for one command must beat the file: QSHIM_DISABLE (set, not "" or
 * "0") clears enabled, QSHIM_MODE ("enforce"|"observe", set by `qshim run
 * --observe`) sets mode, QSHIM_LOG sets log.path. Returns 0, or -1 with a one-line
 * message in <err> when QSHIM_MODE holds anything else (that variable is then
 * ignored, the others still apply). */
int qs_config_apply_env(struct qs_config *cfg, char *err, size_t errlen);

/* Finds the config file by the documented order: $QSHIM_CONFIG, then
 * $XDG_CONFIG_HOME/qshim/qshim.conf (or ~/.config/qshim/qshim.conf), then
 * /etc/qshim.conf. Writes the path into <out> and returns 0, or returns -1 when
 * none exists (QSHIM_CONFIG set to a missing file is returned as found, so that
 * loading it reports the error). */
int qs_config_find(char *out, size_t outlen);

/* The default audit log path: $QSHIM_LOG, else $XDG_STATE_HOME/qshim/audit.jsonl,
 * else ~/.local/state/qshim/audit.jsonl. Writes "" when none can be made (no
 * absolute $HOME, or the path does not fit in <outlen>). */
void qs_config_default_log_path(char *out, size_t outlen);

/* Program filter: 1 if a program whose names are <argv0_base> and <exe_base>
 * (either may be NULL) is enabled by programs/exclude globs, else 0. */
int qs_config_program_enabled(const struct qs_config *cfg, const char *argv0_base, const char *exe_base);

/* Host filter: 1 if <host> (no port, any case) matches one of the hosts globs. */
int qs_config_host_matches(const struct qs_config *cfg, const char *host, size_t host_len);

#endif
